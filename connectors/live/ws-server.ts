/**
 * The WebSocket side of the live server: subscribers, topics and the engine's `publish`.
 *
 * Connect: `ws://<host>:<port>/ws?token=<token>[&format=json|msgpack]` (or the token in
 * `Authorization: Bearer …`, or the dashboard's `lw_token` cookie). No or an unknown token: HTTP 401 instead of the upgrade; over the
 * token's request rate: 429; over `wsConnectionsMax`: 503.
 *
 * Client → server (JSON text; msgpack clients may send msgpack binary):
 *   {"type":"subscribe","topics":["machine/M-001","alerts"],"rate":5,"id":1}
 *   {"type":"unsubscribe","topics":["alerts"],"id":2}
 *   {"type":"ping","id":3}
 * `rate` (optional, messages/s per topic, 0 = as fast as allowed) applies to the connection's
 * subscriptions and never exceeds the token's `topicRatePerSecMax`; `id` is echoed back.
 *
 * Server → client (JSON text frames, or msgpack binary frames for `format=msgpack`):
 *   {"topic":"machine/M-001","seq":42,"data":{…}}     a message; `seq` counts per topic from 1
 *   {"type":"welcome","format":"json","topics_allowed":["machine/+"],"rate_max":0,"send_buffer_bytes_max":1048576}
 *   {"type":"subscribed","id":1,"topics":["machine/M-001"],"seq":{"machine/M-001":41},"rate":5}
 *   {"type":"unsubscribed","id":2,"topics":["alerts"]}
 *   {"type":"error","id":1,"code":"forbidden_topic","topic":"alerts","message":"…"}
 *   {"type":"sampled","reason":"slow_subscriber","rate":1}  /  {"type":"resumed"}
 *   {"type":"pong","id":3}
 * Error codes: `bad_message`, `invalid_topic`, `forbidden_topic` (refused by the token's
 * grant), `too_many_subscriptions`, `too_many_topics`, `bad_rate`, `rate_limited`. Refusals are
 * counted in `linewatch_ws_subscribe_refused_total{reason}`. An error leaves the connection open.
 *
 * What uWS itself refuses closes the connection at once, without a close frame (the client sees
 * 1006): a client message past `wsClientMessageBytesMax`, fragments included (`too_big`), a text
 * message that is not UTF-8 (`invalid_utf8`), no traffic for `wsIdleTimeoutSeconds` (`idle`),
 * any other protocol violation uWS names (`protocol`). Each is counted in
 * `linewatch_ws_protocol_closes_total{reason}` and its first occurrence logged.
 *
 * `seq` is the topic's publish count, the same for every subscriber: a message a subscriber did
 * not get (downsampled, or skipped while it was slow) shows as a gap, and is counted in
 * `linewatch_ws_dropped_total{reason="rate"|"slow"}`. `subscribed.seq` gives the last seq
 * published before the subscription, so the first message after it shows any gap too.
 *
 * Delivery, and why a slow subscriber never slows the engine or the others:
 * - A subscription with no rate limit *streams*: the socket joins a uWS pub/sub topic per format
 *   (`j:<topic>` / `m:<topic>`), and `publish` encodes the message once per format in use and hands
 *   it to uWS, which fans out in C++ and writes each socket once per event-loop turn. No
 *   per-subscriber work on the engine's thread; nothing waits for a socket.
 * - A subscription with a rate (the client's, the token's, or the sampled rate of a slow
 *   subscriber) is *paced*: `publish` only keeps the topic's latest message (O(1)); a timer every
 *   `wsPaceIntervalMs` sends each paced subscriber the latest message of each topic once its
 *   interval has passed and its buffer is below the limit. The rest is dropped and counted.
 * - Every `wsSlowCheckIntervalMs` the hub reads each socket's buffered amount; past
 *   `wsSendBufferBytesMax` the token's policy applies: `disconnect` (close code 4001) or `sample`
 *   (every subscription becomes paced at `wsSampledRatePerSec`, latest message per topic, until the
 *   buffer has stayed empty for `wsRecoverAfterMs`). Both are counted in
 *   `linewatch_ws_slow_subscribers_total{action}`. uWS's own cap (`maxBackpressure`) is eight times
 *   the limit, so the bursts between two checks are held rather than silently skipped even when a
 *   loaded machine runs the check late; the per-subscriber memory stays bounded by that cap. Past
 *   it uWS skips the socket (the gap is visible, not counted).
 *
 * `publish(topic, data)` takes `data` by reference: for paced subscribers it is serialised later,
 * so the caller must not mutate it after publishing. It must be JSON-able (for JSON clients) and
 * msgpack-able (for msgpack clients); a value that is not is counted in
 * `linewatch_ws_encode_errors_total` and skipped, never thrown at the engine.
 */
import { Encoder, decode as msgpackDecode } from "@msgpack/msgpack";
import type { Logger } from "../../engine/core/mod.js";
import type { AccessControl, AccessGrant } from "./access.js";
import { presentedToken } from "./access.js";
import { writeError, writeRateLimited, writeUnauthorized } from "./http-reply.js";
import { METRIC, type MetricsRegistry } from "./metrics.js";
import { ScoreFrameMessage } from "./frame-message.js";
import { isValidTopic } from "./topics.js";
import type { TemplatedApp, WebSocket } from "./uws.js";

export type WireFormat = "json" | "msgpack";

export interface WsHubOptions {
  /** Buffered bytes per socket past which the slow-subscriber policy applies (uWS's hard cap is twice this). */
  wsSendBufferBytesMax: number;
  /** Messages/s per topic for a subscriber sampled down for being slow. */
  wsSampledRatePerSec: number;
  /** How often each socket's buffered amount is checked. */
  wsSlowCheckIntervalMs: number;
  /** How often paced subscriptions are served. */
  wsPaceIntervalMs: number;
  /** A sampled subscriber returns to full rate after its buffer stayed empty this long (0: never). */
  wsRecoverAfterMs: number;
  wsConnectionsMax: number;
  wsSubscriptionsPerConnectionMax: number;
  /** Topics tracked (each keeps its seq); a publish to a new topic past it is counted and skipped. */
  wsTopicsMax: number;
  /** Largest client message; a larger one closes the connection (uWS `maxPayloadLength`). */
  wsClientMessageBytesMax: number;
  /** Seconds without traffic before uWS closes a socket (pings are sent automatically). */
  wsIdleTimeoutSeconds: number;
}

export const DEFAULT_WS_HUB_OPTIONS: Readonly<WsHubOptions> = Object.freeze({
  wsSendBufferBytesMax: 1 << 20,
  wsSampledRatePerSec: 1,
  wsSlowCheckIntervalMs: 50,
  wsPaceIntervalMs: 20,
  wsRecoverAfterMs: 5_000,
  wsConnectionsMax: 1_000,
  wsSubscriptionsPerConnectionMax: 256,
  wsTopicsMax: 100_000,
  wsClientMessageBytesMax: 16 * 1024,
  wsIdleTimeoutSeconds: 120,
});

/** Close code sent to a subscriber disconnected for being slow (4000–4999: application codes). */
export const CLOSE_SLOW_SUBSCRIBER = 4001;
/** Control messages held for a subscriber whose buffer is full. */
const NOTICES_MAX = 16;

/** Close code when the server stops. */
export const CLOSE_GOING_AWAY = 1001;

export interface WsHubStats {
  connections: number;
  subscriptions: number;
  topics: number;
  published: number;
  /** Messages handed to sockets (streamed and paced). */
  delivered: number;
  dropped: { rate: number; slow: number; topics_max: number; invalid_topic: number };
  slowSubscribers: { sampled: number; disconnected: number };
  refused: Record<RefusalReason, number>;
  encodeErrors: number;
  protocolCloses: Record<ProtocolCloseReason, number>;
}

export type ProtocolCloseReason = "too_big" | "invalid_utf8" | "idle" | "protocol";

/**
 * The reason of a connection uWS closed itself (code 1006 with a message), from its message
 * (uWebSockets' WebSocketProtocol.h / WebSocketContext.h: ERR_TOO_BIG_MESSAGE, ERR_INVALID_TEXT,
 * the idle timeout); null for a close that is not one (a client's close frame, or its TCP
 * connection dropped: 1006 without a message).
 */
export function protocolCloseReason(code: number, message: string): ProtocolCloseReason | null {
  if (code !== 1006 || message === "") return null;
  if (message.startsWith("Received too big message")) return "too_big";
  if (message.startsWith("Received invalid UTF-8")) return "invalid_utf8";
  if (message.includes("timed out")) return "idle";
  return "protocol";
}

type RefusalReason = "invalid_topic" | "forbidden_topic" | "too_many_subscriptions" | "too_many_topics";

interface TopicState {
  readonly name: string;
  readonly jsonName: string;
  /** uWS pub/sub topic per format (index 0 json, 1 msgpack). */
  readonly wire: readonly [string, string];
  seq: number;
  /** Streaming subscribers per format. */
  readonly stream: [number, number];
  readonly paced: Set<Subscription>;
  latest: unknown;
  /** The latest message encoded per format (filled on first paced send). */
  latestWire: [string | undefined, Uint8Array | undefined];
}

interface Subscription {
  readonly topic: TopicState;
  readonly subscriber: Subscriber;
  paced: boolean;
  intervalMs: number;
  lastSeq: number;
  dueMs: number;
  /** A send was held back for a full buffer since the last one (its gap counts as "slow"). */
  blocked: boolean;
}

interface Subscriber {
  readonly grant: AccessGrant;
  readonly format: WireFormat;
  readonly fi: 0 | 1;
  ws: WebSocket<Subscriber> | undefined;
  readonly subscriptions: Map<string, Subscription>;
  requestedRate: number;
  sampled: boolean;
  clearSinceMs: number;
  /** Control messages held back while the buffer was over the limit (uWS would drop them); at most NOTICES_MAX, oldest dropped. */
  notices: Array<Record<string, unknown>>;
}

/** Auth and rate-limit failures, shared with the HTTP API's counters. */
export interface AccessCounters {
  authFailure(surface: "ws" | "http", reason: "missing" | "invalid" | "forbidden"): void;
  rateLimited(surface: "ws" | "http"): void;
}

/** The subscribers and topics of one server; the engine calls {@link WsHub.publish}. */
/** uWS's hard send-buffer cap, in units of wsSendBufferBytesMax (see the header). */
export const WS_HARD_CAP_FACTOR = 8;

export class WsHub {
  private readonly topics = new Map<string, TopicState>();
  private readonly subscribers = new Set<Subscriber>();
  private readonly dirty = new Set<TopicState>();
  private readonly encoder = new Encoder({ ignoreUndefined: true });
  private readonly counts = {
    published: 0,
    delivered: 0,
    droppedRate: 0,
    droppedSlow: 0,
    droppedTopicsMax: 0,
    droppedInvalidTopic: 0,
    sampled: 0,
    disconnected: 0,
    encodeErrors: 0,
    subscriptions: 0,
    refused: { invalid_topic: 0, forbidden_topic: 0, too_many_subscriptions: 0, too_many_topics: 0 } as Record<RefusalReason, number>,
    protocolCloses: { too_big: 0, invalid_utf8: 0, idle: 0, protocol: 0 } as Record<ProtocolCloseReason, number>,
  };
  /** Bytes handed to uWS for streaming subscribers since the last slow check. */
  private streamedBytes = 0;
  private checkScheduled = false;
  private readonly checkNow = (): void => {
    this.checkScheduled = false;
    this.checkSlow(performance.now());
  };
  private paceTimer: NodeJS.Timeout | undefined;
  private slowTimer: NodeJS.Timeout | undefined;
  private readonly logged = new Set<string>();

  constructor(
    private readonly app: TemplatedApp,
    private readonly access: AccessControl,
    private readonly o: WsHubOptions,
    private readonly accessCounters: AccessCounters,
    private readonly log: Logger,
  ) {
    app.ws<Subscriber>("/ws", {
      maxPayloadLength: o.wsClientMessageBytesMax,
      maxBackpressure: WS_HARD_CAP_FACTOR * o.wsSendBufferBytesMax,
      closeOnBackpressureLimit: 0,
      idleTimeout: o.wsIdleTimeoutSeconds,
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => {
        const token = presentedToken(req.getHeader("authorization"), req.getQuery("token") ?? "", req.getHeader("cookie"));
        const formatText = req.getQuery("format") ?? "";
        const key = req.getHeader("sec-websocket-key");
        const protocol = req.getHeader("sec-websocket-protocol");
        const extensions = req.getHeader("sec-websocket-extensions");
        if (token === "") {
          this.accessCounters.authFailure("ws", "missing");
          return writeUnauthorized(res, true);
        }
        const grant = this.access.lookup(token);
        if (grant === undefined) {
          this.accessCounters.authFailure("ws", "invalid");
          return writeUnauthorized(res, false);
        }
        const wait = grant.bucket.take();
        if (wait > 0) {
          this.accessCounters.rateLimited("ws");
          return writeRateLimited(res, wait);
        }
        if (formatText !== "" && formatText !== "json" && formatText !== "msgpack") {
          return writeError(res, 400, "bad_format", `format must be json or msgpack, got ${JSON.stringify(formatText)}`);
        }
        if (this.subscribers.size >= o.wsConnectionsMax) {
          return writeError(
            res,
            503,
            "too_many_connections",
            `the server holds wsConnectionsMax (${o.wsConnectionsMax}) WebSocket connections`,
            {},
            [["retry-after", "5"]],
          );
        }
        const format: WireFormat = formatText === "msgpack" ? "msgpack" : "json";
        const subscriber: Subscriber = {
          grant,
          format,
          fi: format === "json" ? 0 : 1,
          ws: undefined,
          subscriptions: new Map(),
          requestedRate: 0,
          sampled: false,
          clearSinceMs: -1,
          notices: [],
        };
        res.upgrade(subscriber, key, protocol, extensions, context);
      },
      open: (ws) => {
        const s = ws.getUserData();
        s.ws = ws;
        this.subscribers.add(s);
        this.control(s, {
          type: "welcome",
          format: s.format,
          topics_allowed: [...s.grant.topics.patterns],
          rate_max: s.grant.topicRatePerSecMax,
          send_buffer_bytes_max: o.wsSendBufferBytesMax,
          slow_policy: s.grant.slowPolicy,
        });
      },
      message: (ws, message, isBinary) => this.onMessage(ws.getUserData(), message, isBinary),
      close: (ws, code, message) => this.onClose(ws.getUserData(), code, message),
    });
  }

  /**
   * Publishes `data` on `topic` and returns its seq; 0 when the message was not taken: the topic
   * is not a valid topic name, or is new past `wsTopicsMax` (both counted in
   * `linewatch_ws_dropped_total` and logged once). Cost: a map lookup, one encoding per wire
   * format that has streaming subscribers, one uWS publish per such format (uWS's C++ fan-out);
   * paced subscribers only mark the topic. Never throws at the engine.
   */
  publish(topic: string, data: unknown): number {
    let t = this.topics.get(topic);
    if (t === undefined) {
      if (!isValidTopic(topic)) {
        this.counts.droppedInvalidTopic++;
        this.logOnce(
          "invalid_topic",
          { topic: topic.slice(0, 300) },
          `published on a name that is not a topic (see topics.ts); counted in ${METRIC.wsDropped}{reason="invalid_topic"}, further ones not logged`,
        );
        return 0;
      }
      const added = this.addTopic(topic);
      if (added === null) {
        this.counts.droppedTopicsMax++;
        this.logOnce(
          "topics_max",
          { topics_max: this.o.wsTopicsMax },
          `wsTopicsMax topics tracked; messages on new topics are counted in ${METRIC.wsDropped}{reason="topics_max"}, further ones not logged`,
        );
        return 0;
      }
      t = added;
    }
    const seq = ++t.seq;
    this.counts.published++;
    if (t.stream[0] > 0) {
      const json = this.encodeJson(t, seq, data);
      if (json !== null) {
        this.app.publish(t.wire[0], json, false, false);
        this.counts.delivered += t.stream[0];
        this.streamedBytes += json.length;
      }
    }
    if (t.stream[1] > 0) {
      const bytes = this.encodeMsgpack(t, seq, data, true);
      if (bytes !== null) {
        this.app.publish(t.wire[1], bytes, true, false);
        this.counts.delivered += t.stream[1];
        this.streamedBytes += bytes.length;
      }
    }
    // A quarter of a subscriber's buffer was published since the last check: check again after
    // this turn of the event loop rather than waiting for the timer (amortised, never per subscriber).
    if (this.streamedBytes > this.o.wsSendBufferBytesMax >>> 2 && !this.checkScheduled) {
      this.checkScheduled = true;
      setImmediate(this.checkNow);
    }
    if (t.paced.size > 0) {
      // Kept for a later send: a score frame viewing shared memory is copied now.
      t.latest = data instanceof ScoreFrameMessage ? data.lasting(t.latest) : data;
      t.latestWire = [undefined, undefined];
      this.dirty.add(t);
    }
    return seq;
  }

  /** The last seq published on `topic` (0: none yet). */
  seqOf(topic: string): number {
    return this.topics.get(topic)?.seq ?? 0;
  }

  /** Subscribers on `topic` (streaming and paced). */
  subscribersOf(topic: string): number {
    const t = this.topics.get(topic);
    return t === undefined ? 0 : t.stream[0] + t.stream[1] + t.paced.size;
  }

  stats(): WsHubStats {
    const c = this.counts;
    return {
      connections: this.subscribers.size,
      subscriptions: c.subscriptions,
      topics: this.topics.size,
      published: c.published,
      delivered: c.delivered,
      dropped: { rate: c.droppedRate, slow: c.droppedSlow, topics_max: c.droppedTopicsMax, invalid_topic: c.droppedInvalidTopic },
      slowSubscribers: { sampled: c.sampled, disconnected: c.disconnected },
      refused: { ...c.refused },
      encodeErrors: c.encodeErrors,
      protocolCloses: { ...c.protocolCloses },
    };
  }

  /** Adds the hub's series to `registry` (sampled from plain counters at scrape time). */
  registerMetrics(registry: MetricsRegistry): void {
    registry.gauge({ name: METRIC.wsConnections, help: "Open WebSocket connections.", collect: (g) => g.set(this.subscribers.size) });
    registry.gauge({
      name: METRIC.wsSubscriptions,
      help: "WebSocket topic subscriptions.",
      collect: (g) => g.set(this.counts.subscriptions),
    });
    registry.gauge({
      name: METRIC.wsTopics,
      help: "WebSocket topics tracked (each keeps its seq).",
      collect: (g) => g.set(this.topics.size),
    });
    const published = registry.counter({ name: METRIC.wsPublished, help: "Messages published by the engine to WebSocket topics." });
    const delivered = registry.counter({ name: METRIC.wsDelivered, help: "Messages handed to WebSocket subscribers." });
    const dropped = registry.counter({
      name: METRIC.wsDropped,
      help: "Messages a subscriber did not get: downsampled (rate), skipped while slow (slow); messages not taken: new topic past wsTopicsMax (topics_max), not a topic name (invalid_topic).",
      labelNames: ["reason"],
    });
    const slow = registry.counter({
      name: METRIC.wsSlowSubscribers,
      help: "Subscribers past wsSendBufferBytesMax, by the action taken.",
      labelNames: ["action"],
    });
    const refused = registry.counter({
      name: METRIC.wsRefused,
      help: "Topics refused in subscribe requests, by reason.",
      labelNames: ["reason"],
    });
    const encodeErrors = registry.counter({
      name: METRIC.wsEncodeErrors,
      help: "Published values that could not be encoded (not JSON- or msgpack-able).",
    });
    const protocolCloses = registry.counter({
      name: METRIC.wsProtocolCloses,
      help: "Connections uWS closed for the client's doing (no close frame): a message past wsClientMessageBytesMax (too_big), text not UTF-8 (invalid_utf8), idle past wsIdleTimeoutSeconds (idle), another protocol violation (protocol).",
      labelNames: ["reason"],
    });
    registry.onCollect(() => {
      const c = this.counts;
      for (const [reason, n] of Object.entries(c.protocolCloses)) catchUp(protocolCloses.labels({ reason }), n);
      catchUp(published.labels({}), c.published);
      catchUp(delivered.labels({}), c.delivered);
      catchUp(dropped.labels({ reason: "rate" }), c.droppedRate);
      catchUp(dropped.labels({ reason: "slow" }), c.droppedSlow);
      catchUp(dropped.labels({ reason: "topics_max" }), c.droppedTopicsMax);
      catchUp(dropped.labels({ reason: "invalid_topic" }), c.droppedInvalidTopic);
      catchUp(slow.labels({ action: "sampled" }), c.sampled);
      catchUp(slow.labels({ action: "disconnected" }), c.disconnected);
      for (const [reason, n] of Object.entries(c.refused)) catchUp(refused.labels({ reason }), n);
      catchUp(encodeErrors.labels({}), c.encodeErrors);
    });
  }

  start(): void {
    this.paceTimer ??= setInterval(() => this.pace(performance.now()), this.o.wsPaceIntervalMs);
    this.slowTimer ??= setInterval(() => this.checkSlow(performance.now()), this.o.wsSlowCheckIntervalMs);
  }

  /** Stops the timers and closes every connection (code 1001). */
  stop(): void {
    clearInterval(this.paceTimer);
    clearInterval(this.slowTimer);
    this.paceTimer = this.slowTimer = undefined;
    for (const s of [...this.subscribers]) s.ws?.end(CLOSE_GOING_AWAY, "server stopping");
  }

  private onMessage(s: Subscriber, message: ArrayBuffer, isBinary: boolean): void {
    let request: unknown;
    try {
      request = isBinary ? msgpackDecode(new Uint8Array(message)) : JSON.parse(Buffer.from(message).toString("utf8"));
    } catch {
      return this.refuse(s, undefined, "bad_message", `not ${isBinary ? "msgpack" : "JSON"}`);
    }
    if (typeof request !== "object" || request === null || Array.isArray(request))
      return this.refuse(s, undefined, "bad_message", "a message is an object with a type");
    const r = request as Record<string, unknown>;
    const id = typeof r.id === "string" || typeof r.id === "number" ? r.id : undefined;
    const wait = s.grant.bucket.take();
    if (wait > 0) {
      this.accessCounters.rateLimited("ws");
      return this.refuse(s, id, "rate_limited", `too many messages for this token; retry after ${Math.ceil(wait)} ms`, {
        retry_after_ms: Math.ceil(wait),
      });
    }
    const topics = Array.isArray(r.topics) ? r.topics : typeof r.topic === "string" ? [r.topic] : undefined;
    switch (r.type) {
      case "subscribe":
        if (topics === undefined) return this.refuse(s, id, "bad_message", 'subscribe needs topics: ["machine/<id>", …]');
        if (r.rate !== undefined && !(typeof r.rate === "number" && r.rate >= 0 && Number.isFinite(r.rate)))
          return this.refuse(s, id, "bad_rate", "rate is messages/s per topic, ≥ 0 (0: as fast as allowed)");
        return this.subscribe(s, id, topics, r.rate as number | undefined);
      case "unsubscribe":
        if (topics === undefined) return this.refuse(s, id, "bad_message", "unsubscribe needs topics");
        return this.unsubscribe(s, id, topics);
      case "ping":
        return this.control(s, { type: "pong", ...(id === undefined ? {} : { id }) });
      default:
        return this.refuse(s, id, "bad_message", `unknown type ${JSON.stringify(r.type)} (subscribe, unsubscribe, ping)`);
    }
  }

  private subscribe(s: Subscriber, id: string | number | undefined, topics: unknown[], rate: number | undefined): void {
    const accepted: string[] = [];
    const seqs: Record<string, number> = {};
    if (rate !== undefined && rate !== s.requestedRate) {
      s.requestedRate = rate;
      for (const sub of s.subscriptions.values()) this.applyMode(sub);
    }
    for (const topic of topics) {
      if (typeof topic !== "string" || !isValidTopic(topic)) {
        this.refuseTopic(s, id, "invalid_topic", topic, "not a topic: machine/<id>, line/<line>, analysis/<name>, alerts, quarantine");
        continue;
      }
      if (!s.grant.topics.matches(topic)) {
        this.refuseTopic(s, id, "forbidden_topic", topic, "this token may not subscribe to it");
        continue;
      }
      const known = s.subscriptions.get(topic);
      if (known !== undefined) {
        accepted.push(topic);
        seqs[topic] = known.topic.seq;
        continue;
      }
      if (s.subscriptions.size >= this.o.wsSubscriptionsPerConnectionMax) {
        this.refuseTopic(
          s,
          id,
          "too_many_subscriptions",
          topic,
          `a connection holds at most wsSubscriptionsPerConnectionMax (${this.o.wsSubscriptionsPerConnectionMax}) topics`,
        );
        continue;
      }
      const t = this.topics.get(topic) ?? this.addTopic(topic);
      if (t === null) {
        this.refuseTopic(s, id, "too_many_topics", topic, `the server tracks at most wsTopicsMax (${this.o.wsTopicsMax}) topics`);
        continue;
      }
      const sub: Subscription = { topic: t, subscriber: s, paced: false, intervalMs: 0, lastSeq: t.seq, dueMs: 0, blocked: false };
      s.subscriptions.set(topic, sub);
      this.counts.subscriptions++;
      this.attach(sub);
      accepted.push(topic);
      seqs[topic] = t.seq;
    }
    if (accepted.length > 0 || topics.length === 0) {
      this.control(s, { type: "subscribed", ...(id === undefined ? {} : { id }), topics: accepted, seq: seqs, rate: this.rateOf(s) });
    }
  }

  private unsubscribe(s: Subscriber, id: string | number | undefined, topics: unknown[]): void {
    const removed: string[] = [];
    for (const topic of topics) {
      if (typeof topic !== "string") continue;
      const sub = s.subscriptions.get(topic);
      if (sub === undefined) continue;
      this.detach(sub, true);
      s.subscriptions.delete(topic);
      this.counts.subscriptions--;
      this.forgetIfIdle(sub.topic);
      removed.push(topic);
    }
    this.control(s, { type: "unsubscribed", ...(id === undefined ? {} : { id }), topics: removed });
  }

  private countProtocolClose(s: Subscriber, code: number, message: ArrayBuffer): void {
    const text = Buffer.from(message).toString("utf8");
    const reason = protocolCloseReason(code, text);
    if (reason === null) return;
    this.counts.protocolCloses[reason]++;
    this.logOnce(
      `close_${reason}`,
      { token: s.grant.name, reason: text.slice(0, 200), client_message_bytes_max: this.o.wsClientMessageBytesMax },
      `closed a WebSocket connection: ${text.slice(0, 200)}; counted in ${METRIC.wsProtocolCloses}{reason="${reason}"}, further ones not logged`,
    );
  }

  private onClose(s: Subscriber, code: number, message: ArrayBuffer): void {
    this.countProtocolClose(s, code, message);
    // The socket is gone: uWS has already left its pub/sub topics; only our counts change.
    for (const sub of s.subscriptions.values()) {
      this.detach(sub, false);
      this.counts.subscriptions--;
      this.forgetIfIdle(sub.topic);
    }
    s.subscriptions.clear();
    s.ws = undefined;
    this.subscribers.delete(s);
  }

  /** The per-topic rate for a subscriber (0: unlimited): the lowest non-zero of client, token, sampled. */
  private rateOf(s: Subscriber): number {
    let rate = 0;
    for (const r of [s.requestedRate, s.grant.topicRatePerSecMax, s.sampled ? this.o.wsSampledRatePerSec : 0])
      if (r > 0 && (rate === 0 || r < rate)) rate = r;
    return rate;
  }

  private attach(sub: Subscription): void {
    const rate = this.rateOf(sub.subscriber);
    const t = sub.topic;
    const s = sub.subscriber;
    if (rate === 0) {
      sub.paced = false;
      sub.intervalMs = 0;
      s.ws?.subscribe(t.wire[s.fi]);
      t.stream[s.fi]++;
    } else {
      sub.paced = true;
      sub.intervalMs = 1000 / rate;
      t.paced.add(sub);
    }
  }

  private detach(sub: Subscription, socketOpen: boolean): void {
    const t = sub.topic;
    const s = sub.subscriber;
    if (sub.paced) t.paced.delete(sub);
    else {
      if (socketOpen) s.ws?.unsubscribe(t.wire[s.fi]);
      t.stream[s.fi]--;
    }
  }

  /** Moves a subscription between streaming and paced when the subscriber's rate changed. */
  private applyMode(sub: Subscription): void {
    const wantPaced = this.rateOf(sub.subscriber) > 0;
    if (wantPaced && sub.paced) {
      sub.intervalMs = 1000 / this.rateOf(sub.subscriber);
      return;
    }
    if (!wantPaced && !sub.paced) return;
    const wasPaced = sub.paced;
    this.detach(sub, true);
    if (wasPaced) {
      // Back to streaming: what was published since the last paced send is skipped.
      this.countDropped(sub, sub.topic.seq - sub.lastSeq);
    } else {
      // What the socket holds was sent; pacing starts from here.
      sub.lastSeq = sub.topic.seq;
      sub.dueMs = 0;
    }
    this.attach(sub);
  }

  /** Serves paced subscriptions: the latest message of each topic, once per interval, buffer permitting. */
  private pace(now: number): void {
    const limit = this.o.wsSendBufferBytesMax;
    for (const t of this.dirty) {
      let pending = false;
      for (const sub of t.paced) {
        if (sub.lastSeq >= t.seq) continue;
        if (now < sub.dueMs) {
          pending = true;
          continue;
        }
        const s = sub.subscriber;
        const ws = s.ws;
        if (ws === undefined) continue;
        if (ws.getBufferedAmount() > limit) {
          sub.blocked = true;
          pending = true;
          continue;
        }
        if (s.notices.length > 0) this.flushNotices(s);
        const wire = this.latestWire(t, s.fi);
        if (wire === null) {
          sub.lastSeq = t.seq;
          continue;
        }
        ws.send(wire, s.fi === 1, false);
        this.counts.delivered++;
        this.countDropped(sub, t.seq - sub.lastSeq - 1);
        sub.lastSeq = t.seq;
        sub.dueMs = now + sub.intervalMs;
        sub.blocked = false;
      }
      if (!pending) this.dirty.delete(t);
    }
  }

  /** Applies the slow-subscriber policy to sockets past the limit; lets sampled ones recover. */
  private checkSlow(now: number): void {
    const limit = this.o.wsSendBufferBytesMax;
    this.streamedBytes = 0;
    for (const s of this.subscribers) {
      const ws = s.ws;
      if (ws === undefined) continue;
      const buffered = ws.getBufferedAmount();
      if (s.notices.length > 0 && buffered <= limit) this.flushNotices(s);
      if (buffered > limit) {
        s.clearSinceMs = -1;
        if (s.sampled) continue;
        if (s.grant.slowPolicy === "disconnect") {
          this.counts.disconnected++;
          this.log.warn(
            { token: s.grant.name, buffered_bytes: buffered, send_buffer_bytes_max: limit },
            "disconnected a slow subscriber: more bytes buffered than wsSendBufferBytesMax",
          );
          ws.end(CLOSE_SLOW_SUBSCRIBER, "slow subscriber");
          continue;
        }
        s.sampled = true;
        this.counts.sampled++;
        for (const sub of s.subscriptions.values()) this.applyMode(sub);
        this.control(s, { type: "sampled", reason: "slow_subscriber", rate: this.rateOf(s), buffered_bytes: buffered });
      } else if (s.sampled && this.o.wsRecoverAfterMs > 0) {
        if (buffered > 0) s.clearSinceMs = -1;
        else if (s.clearSinceMs < 0) s.clearSinceMs = now;
        else if (now - s.clearSinceMs >= this.o.wsRecoverAfterMs) {
          s.sampled = false;
          s.clearSinceMs = -1;
          for (const sub of s.subscriptions.values()) this.applyMode(sub);
          this.control(s, { type: "resumed", rate: this.rateOf(s) });
        }
      }
    }
  }

  private countDropped(sub: Subscription, n: number): void {
    if (n <= 0) return;
    if (sub.blocked || sub.subscriber.sampled) this.counts.droppedSlow += n;
    else this.counts.droppedRate += n;
  }

  private addTopic(name: string): TopicState | null {
    if (this.topics.size >= this.o.wsTopicsMax) return null;
    const t: TopicState = {
      name,
      jsonName: JSON.stringify(name),
      wire: [`j:${name}`, `m:${name}`],
      seq: 0,
      stream: [0, 0],
      paced: new Set(),
      latest: undefined,
      latestWire: [undefined, undefined],
    };
    this.topics.set(name, t);
    return t;
  }

  /** Drops a topic nobody subscribes to that was never published (created by a subscribe only). */
  private forgetIfIdle(t: TopicState): void {
    if (t.seq === 0 && t.stream[0] + t.stream[1] + t.paced.size === 0) this.topics.delete(t.name);
  }

  private latestWire(t: TopicState, fi: 0 | 1): string | Uint8Array | null {
    const cached = t.latestWire[fi];
    if (cached !== undefined) return cached;
    if (fi === 0) {
      const json = this.encodeJson(t, t.seq, t.latest);
      if (json !== null) t.latestWire[0] = json;
      return json;
    }
    const bytes = this.encodeMsgpack(t, t.seq, t.latest, false);
    if (bytes !== null) t.latestWire[1] = bytes;
    return bytes;
  }

  private encodeJson(t: TopicState, seq: number, data: unknown): string | null {
    try {
      return `{"topic":${t.jsonName},"seq":${seq},"data":${JSON.stringify(data) ?? "null"}}`;
    } catch (e) {
      this.encodeFailed(t, e);
      return null;
    }
  }

  /** `shared`: a view of the encoder's buffer, valid until the next encode (uWS copies on publish). */
  private encodeMsgpack(t: TopicState, seq: number, data: unknown, shared: boolean): Uint8Array | null {
    try {
      const value = { topic: t.name, seq, data };
      return shared ? this.encoder.encodeSharedRef(value) : this.encoder.encode(value);
    } catch (e) {
      this.encodeFailed(t, e);
      return null;
    }
  }

  private encodeFailed(t: TopicState, e: unknown): void {
    this.counts.encodeErrors++;
    this.logOnce(
      "encode",
      { topic: t.name, err: e },
      `a published value cannot be encoded; counted in ${METRIC.wsEncodeErrors}, further ones not logged`,
    );
  }

  /** A warning the first time a kind of bad publish happens (the counter keeps counting the rest). */
  private logOnce(kind: string, fields: Record<string, unknown>, message: string): void {
    if (this.logged.has(kind)) return;
    this.logged.add(kind);
    this.log.warn(fields, message);
  }

  private refuseTopic(s: Subscriber, id: string | number | undefined, reason: RefusalReason, topic: unknown, message: string): void {
    this.counts.refused[reason]++;
    this.refuse(s, id, reason, message, { topic: typeof topic === "string" ? topic.slice(0, 300) : String(topic) });
  }

  private refuse(s: Subscriber, id: string | number | undefined, code: string, message: string, extra: Record<string, unknown> = {}): void {
    this.control(s, { type: "error", ...(id === undefined ? {} : { id }), code, message, ...extra });
  }

  /** Sends a control message, or holds it while the socket's buffer is over the limit. */
  private control(s: Subscriber, message: Record<string, unknown>): void {
    const ws = s.ws;
    if (ws === undefined) return;
    if (s.notices.length > 0 || ws.getBufferedAmount() > this.o.wsSendBufferBytesMax) {
      if (s.notices.push(message) > NOTICES_MAX) s.notices.shift();
      return;
    }
    this.sendControl(ws, s.fi, message);
  }

  private flushNotices(s: Subscriber): void {
    const ws = s.ws;
    if (ws === undefined) return;
    for (const m of s.notices.splice(0)) this.sendControl(ws, s.fi, m);
  }

  private sendControl(ws: WebSocket<Subscriber>, fi: 0 | 1, message: Record<string, unknown>): void {
    if (fi === 0) ws.send(JSON.stringify(message), false, false);
    else ws.send(this.encoder.encodeSharedRef(message), true, false);
  }
}

function catchUp(child: { inc(n: number): void; readonly value: number }, total: number): void {
  if (total > child.value) child.inc(total - child.value);
}
