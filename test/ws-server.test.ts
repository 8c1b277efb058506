import { afterEach, describe, expect, it } from "vitest";
import { TopicError } from "../connectors/errors.js";
import { startLiveServer, type LiveServer, type LiveServerOptions } from "../connectors/live/live-server.js";
import { machineTopic, TopicGrant } from "../connectors/live/topics.js";
import { CLOSE_SLOW_SUBSCRIBER, protocolCloseReason } from "../connectors/live/ws-server.js";
import { LiveClient, UpgradeRefused, isData, turn } from "./kit/live-client.js";
import { type LogEntry, memoryLogger } from "../engine/core/mod.js";

const READER = "reader-token-0123456789";
const ALERTS_ONLY = "alerts-only-token-0123456789";
const SLOW_SAMPLE = "slow-sample-token-0123456789";
const SLOW_DROP = "slow-drop-token-0123456789";
const PACED = "paced-token-0123456789";

const servers: LiveServer[] = [];
const clients: LiveClient[] = [];

async function server(options: Partial<LiveServerOptions> = {}): Promise<{ s: LiveServer; log: LogEntry[] }> {
  const { log: logger, entries: log } = memoryLogger();
  const s = await startLiveServer({
    host: "127.0.0.1",
    port: 0,
    log: logger,
    tokens: [
      { token: READER, name: "reader", topics: ["machine/+", "alerts", "line/L1"], scopes: ["*:read"] },
      { token: ALERTS_ONLY, name: "alerts-only", topics: ["alerts"] },
      { token: SLOW_SAMPLE, name: "slow-sample", topics: ["#"], slowPolicy: "sample" },
      { token: SLOW_DROP, name: "slow-drop", topics: ["#"], slowPolicy: "disconnect" },
      { token: PACED, name: "paced", topics: ["#"], topicRatePerSecMax: 5 },
    ],
    ...options,
  });
  servers.push(s);
  return { s, log };
}

async function client(s: LiveServer, token: string, query = ""): Promise<LiveClient> {
  const c = await LiveClient.connect(`${s.wsUrl}?token=${encodeURIComponent(token)}${query}`);
  clients.push(c);
  return c;
}

async function refusal(url: string, headers: Record<string, string> = {}): Promise<UpgradeRefused> {
  try {
    const c = await LiveClient.connect(url, headers);
    c.close();
  } catch (e) {
    if (e instanceof UpgradeRefused) return e;
    throw e;
  }
  throw new Error(`${url} was accepted`);
}

/** The value of one series in a Prometheus text scrape (0 when absent). */
function sample(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

async function scrape(s: LiveServer): Promise<string> {
  return (await fetch(`${s.url}/metrics`)).text();
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) await s.close();
});

describe("topics", () => {
  it("topics - names and grant patterns", () => {
    expect(machineTopic("M-001")).toBe("machine/M-001");
    expect(() => machineTopic("M 1")).toThrow(TopicError);
    expect(() => machineTopic("a/b")).toThrow(TopicError);
    expect(machineTopic("Füllmaschine_3")).toBe("machine/Füllmaschine_3");
    const g = new TopicGrant(["machine/+", "analysis/#", "alerts"]);
    expect(g.matches("machine/M-001")).toBe(true);
    expect(g.matches("machine/M-001/x")).toBe(false);
    expect(g.matches("analysis/spc")).toBe(true);
    expect(g.matches("alerts")).toBe(true);
    expect(g.matches("quarantine")).toBe(false);
    expect(g.matches("line/L1")).toBe(false);
    expect(new TopicGrant(["#"]).matches("quarantine")).toBe(true);
    expect(new TopicGrant([]).matches("alerts")).toBe(false);
    expect(() => new TopicGrant(["sensors/+"])).toThrow(TopicError);
    expect(() => new TopicGrant(["machine/#/x"])).toThrow(TopicError);
  });
});

describe("protocol closes", () => {
  it("ws - uWS's own closes are told from a client's by their message", () => {
    expect(protocolCloseReason(1006, "Received too big message")).toBe("too_big");
    expect(protocolCloseReason(1006, "Received invalid UTF-8")).toBe("invalid_utf8");
    expect(protocolCloseReason(1006, "WebSocket timed out from inactivity")).toBe("idle");
    expect(protocolCloseReason(1006, "Received unsupported opcode")).toBe("protocol");
    expect(protocolCloseReason(1006, "")).toBeNull();
    expect(protocolCloseReason(1000, "")).toBeNull();
    expect(protocolCloseReason(4000, "Received too big message")).toBeNull();
  });
});

describe("ws server", () => {
  it("ws - a client receives its topics in sequence and nothing else", async () => {
    const { s } = await server();
    const json = await client(s, READER);
    const packed = await client(s, READER, "&format=msgpack");
    for (const c of [json, packed]) await c.subscribe(["machine/M-001", "alerts"]);
    const published: Record<string, number> = {};
    for (let i = 0; i < 300; i++) {
      for (const topic of ["machine/M-001", "machine/M-002", "alerts", "line/L1", "quarantine"]) {
        if (topic === "alerts" && i % 10 !== 0) continue;
        const seq = s.publish(topic, { i, topic, value: i * 0.5 });
        published[topic] = seq;
      }
      if (i % 50 === 0) await turn();
    }
    expect(published).toEqual({ "machine/M-001": 300, "machine/M-002": 300, alerts: 30, "line/L1": 300, quarantine: 300 });
    for (const c of [json, packed]) {
      await c.until(() => c.data("machine/M-001").length === 300 && c.data("alerts").length === 30, "every message of both topics");
      await turn(50);
      expect(new Set(c.data().map((m) => m.topic))).toEqual(new Set(["machine/M-001", "alerts"]));
      expect(c.data("machine/M-001").map((m) => m.seq)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
      expect(c.data("alerts").map((m) => m.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
      expect(c.data("machine/M-001")[7].data).toEqual({ i: 7, topic: "machine/M-001", value: 3.5 });
      expect(c.controls("error")).toEqual([]);
    }
    expect(json.controls("welcome")[0]).toMatchObject({ format: "json", topics_allowed: ["machine/+", "alerts", "line/L1"] });
    expect(packed.controls("welcome")[0]).toMatchObject({ format: "msgpack" });

    // Unsubscribing stops that topic only; the seq goes on counting for the others.
    json.send({ type: "unsubscribe", topics: ["alerts"], id: "u" });
    await json.until(() => json.controls("unsubscribed").length === 1, "unsubscribed");
    s.publish("alerts", { late: true });
    s.publish("machine/M-001", { i: 300 });
    await json.until(() => json.data("machine/M-001").length === 301, "message after unsubscribe");
    expect(json.data("alerts")).toHaveLength(30);
    expect(json.data("machine/M-001").at(-1)?.seq).toBe(301);
  });

  it("ws - no token, an unknown token: 401; over the token's rate: 429", async () => {
    const { s } = await server({ requestsPerSec: 0.05, requestBurst: 2 });
    const missing = await refusal(s.wsUrl);
    expect(missing.status).toBe(401);
    expect(JSON.parse(missing.body)).toMatchObject({ error: "unauthorized" });
    expect(missing.headers["www-authenticate"]).toMatch(/^Bearer/);
    expect((await refusal(`${s.wsUrl}?token=not-a-real-token-at-all`)).status).toBe(401);
    expect((await refusal(s.wsUrl, { authorization: "Bearer not-a-real-token-at-all" })).status).toBe(401);

    // The header works as well as the query; the third connect in a burst of two is refused.
    clients.push(await LiveClient.connect(s.wsUrl, { authorization: `Bearer ${ALERTS_ONLY}` }));
    clients.push(await client(s, ALERTS_ONLY));
    const limited = await refusal(`${s.wsUrl}?token=${ALERTS_ONLY}`);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    // Another token has its own budget.
    clients.push(await client(s, READER));

    const m = await scrape(s);
    expect(sample(m, 'linewatch_auth_failures_total{surface="ws",reason="missing"}')).toBe(1);
    expect(sample(m, 'linewatch_auth_failures_total{surface="ws",reason="invalid"}')).toBe(2);
    expect(sample(m, 'linewatch_rate_limited_total{surface="ws"}')).toBe(1);
  });

  it("ws - a subscribe to a forbidden or invalid topic is refused with an error and counted", async () => {
    const { s } = await server();
    const c = await client(s, ALERTS_ONLY);
    c.send({ type: "subscribe", topics: ["alerts", "machine/M-001", "quarantine", "nonsense/x", 42], id: 7 });
    await c.until(() => c.controls("subscribed").length === 1 && c.controls("error").length === 4, "answers");
    expect(c.controls("subscribed")[0]).toMatchObject({ id: 7, topics: ["alerts"], seq: { alerts: 0 } });
    const errors = c.controls("error");
    expect(errors.map((e) => [e.code, e.topic, e.id])).toEqual([
      ["forbidden_topic", "machine/M-001", 7],
      ["forbidden_topic", "quarantine", 7],
      ["invalid_topic", "nonsense/x", 7],
      ["invalid_topic", "42", 7],
    ]);
    s.publish("machine/M-001", { x: 1 });
    s.publish("alerts", { x: 2 });
    await c.until(() => c.data().length === 1, "the alert");
    expect(c.data()[0]).toEqual({ topic: "alerts", seq: 1, data: { x: 2 } });

    c.send({ type: "subscribe" });
    c.send({ type: "dance" });
    c.ws.send("{not json");
    await c.until(() => c.controls("error").length === 7, "bad messages answered");
    expect(
      c
        .controls("error")
        .slice(4)
        .map((e) => e.code),
    ).toEqual(["bad_message", "bad_message", "bad_message"]);

    const m = await scrape(s);
    expect(sample(m, 'linewatch_ws_subscribe_refused_total{reason="forbidden_topic"}')).toBe(2);
    expect(sample(m, 'linewatch_ws_subscribe_refused_total{reason="invalid_topic"}')).toBe(2);
    expect(sample(m, "linewatch_ws_subscriptions")).toBe(1);
    expect(sample(m, "linewatch_ws_connections")).toBe(1);
  });

  it("ws - a slow client is sampled down while a fast one keeps up, and publish never waits", async () => {
    const { s } = await server({ wsSendBufferBytesMax: 256 * 1024, wsSampledRatePerSec: 2, wsRecoverAfterMs: 0 });
    const fast = await client(s, SLOW_SAMPLE);
    const slow = await client(s, SLOW_SAMPLE);
    await fast.subscribe(["machine/M-001"]);
    await slow.subscribe(["machine/M-001"]);
    // The slow client stops reading: the kernel's socket buffers fill, then uWS's.
    slow.ws.pause();
    const payload = "x".repeat(2000);
    const total = 20_000;
    let sampledAt = 0;
    for (let i = 1; i <= total; i++) {
      expect(s.publish("machine/M-001", { i, payload })).toBe(i);
      if (i % 200 === 0) {
        await turn(); // the engine yields between batches; publish itself returned at once
        if (sampledAt === 0 && s.wsStats().slowSubscribers.sampled === 1) sampledAt = i;
        await fast.until(() => fast.data().length >= i - 2000, "the fast client to keep up");
      }
    }
    await fast.until(() => fast.data().length === total, "the fast client to get everything");
    expect(fast.data().map((m) => m.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(fast.controls("sampled")).toEqual([]);
    expect(sampledAt).toBeGreaterThan(0);
    expect(sampledAt).toBeLessThan(total);
    const stats = s.wsStats();
    expect(stats.slowSubscribers).toEqual({ sampled: 1, disconnected: 0 });

    // The slow client reads again: what it gets has gaps, seqs only rise, and it ends on the last message.
    slow.ws.resume();
    await slow.until(() => slow.data().at(-1)?.seq === total, "the slow client to get the latest message");
    const seqs = slow.data().map((m) => m.seq);
    expect(seqs.every((q, i) => i === 0 || q > seqs[i - 1])).toBe(true);
    expect(seqs.length).toBeLessThan(total);
    expect(slow.controls("sampled")).toHaveLength(1);
    expect(slow.controls("sampled")[0]).toMatchObject({ reason: "slow_subscriber", rate: 2 });
    // Before the notice: what the stream had queued, in order without a gap; after it: the samples.
    const notice = slow.messages.findIndex((m) => "type" in m && m.type === "sampled");
    const streamed = slow.messages
      .slice(0, notice)
      .filter(isData)
      .map((d) => d.seq);
    const sampled = slow.messages
      .slice(notice)
      .filter(isData)
      .map((d) => d.seq);
    expect(streamed).toEqual(Array.from({ length: streamed.length }, (_, i) => i + 1));
    expect(sampled.length).toBeGreaterThan(0);
    const m = await scrape(s);
    expect(sample(m, 'linewatch_ws_slow_subscribers_total{action="sampled"}')).toBe(1);
    // What the slow client did not get is counted — except what uWS would skip at its hard cap
    // (8 × wsSendBufferBytesMax, 2 MiB here: ten of these 200-message bursts) before a late check
    // ran: at most one burst, visible only as the gap before the notice.
    const notGot = total - streamed.length - sampled.length;
    const counted = sample(m, 'linewatch_ws_dropped_total{reason="slow"}');
    expect(counted).toBeLessThanOrEqual(notGot);
    expect(notGot - counted).toBeLessThanOrEqual(200);
    expect(sample(m, 'linewatch_ws_dropped_total{reason="rate"}')).toBe(0);
  });

  it("ws - a slow client under the disconnect policy is closed and counted", async () => {
    const { s, log } = await server({ wsSendBufferBytesMax: 256 * 1024 });
    const fast = await client(s, SLOW_DROP);
    const slow = await client(s, SLOW_DROP);
    await fast.subscribe(["line/L1"]);
    await slow.subscribe(["line/L1"]);
    slow.ws.pause();
    const payload = "y".repeat(2000);
    const total = 20_000;
    for (let i = 1; i <= total; i++) {
      s.publish("line/L1", { i, payload });
      if (i % 200 === 0) await turn();
    }
    await fast.until(() => fast.data().length === total, "the fast client to get everything");
    expect(fast.data().map((m) => m.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(s.wsStats().slowSubscribers).toEqual({ sampled: 0, disconnected: 1 });
    expect(s.wsStats().connections).toBe(1);
    expect(log.find((e) => e.msg.startsWith("disconnected a slow subscriber"))).toMatchObject({
      level: "warn",
      component: "live",
      token: "slow-drop",
      send_buffer_bytes_max: 256 * 1024,
    });
    slow.ws.resume();
    await slow.until(() => slow.closeCode !== undefined, "the slow client to see the close");
    expect([CLOSE_SLOW_SUBSCRIBER, 1006]).toContain(slow.closeCode);
    expect(sample(await scrape(s), 'linewatch_ws_slow_subscribers_total{action="disconnected"}')).toBe(1);
  });

  it("ws - per-topic downsampling: at most N messages/s per topic, the latest delivered, the gap counted", async () => {
    const { s } = await server();
    const paced = await client(s, PACED); // token: at most 5/s per topic
    const chosen = await client(s, READER); // asks for 4/s itself
    const full = await client(s, READER);
    await paced.subscribe(["machine/M-001", "machine/M-002"]);
    await chosen.subscribe(["machine/M-001"], { rate: 4 });
    await full.subscribe(["machine/M-001"]);
    expect(paced.controls("subscribed")[0].rate).toBe(5);
    expect(chosen.controls("subscribed")[0].rate).toBe(4);
    const t0 = performance.now();
    const total = 600;
    for (let i = 1; i <= total; i++) {
      s.publish("machine/M-001", { i });
      if (i % 3 === 0) s.publish("machine/M-002", { i });
      if (i % 20 === 0) await turn(20);
    }
    await paced.until(
      () => paced.data("machine/M-001").at(-1)?.seq === total && paced.data("machine/M-002").at(-1)?.seq === total / 3,
      "the latest of both topics",
    );
    await chosen.until(() => chosen.data().at(-1)?.seq === total, "the latest message");
    await full.until(() => full.data().length === total, "every message");
    const seconds = (performance.now() - t0) / 1000;
    for (const [c, rate] of [
      [paced, 5],
      [chosen, 4],
    ] as const) {
      for (const topic of c === paced ? ["machine/M-001", "machine/M-002"] : ["machine/M-001"]) {
        const got = c.data(topic);
        // The rate bound can only get looser on a slow machine: never a timing assertion.
        expect(got.length).toBeLessThanOrEqual(Math.ceil(seconds * rate) + 1);
        expect(got.length).toBeGreaterThan(1);
        expect(got.every((m, i) => i === 0 || m.seq > got[i - 1].seq)).toBe(true);
      }
    }
    const received = paced.data().length + chosen.data().length;
    const published = total + total / 3 + total;
    const m = await scrape(s);
    expect(sample(m, 'linewatch_ws_dropped_total{reason="rate"}')).toBe(published - received);
    expect(sample(m, 'linewatch_ws_dropped_total{reason="slow"}')).toBe(0);
    expect(full.data().map((d) => d.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  });

  it("ws - publish never throws at the engine: a bad topic, a topic past wsTopicsMax or a value that cannot be encoded is counted and skipped", async () => {
    const { s, log } = await server({ wsTopicsMax: 2 });
    const c = await client(s, READER);
    await c.subscribe(["machine/M-001"]);
    expect(s.publish("machine/M-001", { ok: 1 })).toBe(1);
    expect(s.publish("sensors/x", { no: 1 })).toBe(0);
    expect(s.publish("machine/a b", { no: 1 })).toBe(0);
    expect(s.publish("alerts", { ok: 2 })).toBe(1);
    expect(s.publish("quarantine", { no: 3 })).toBe(0); // a third topic
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(s.publish("machine/M-001", circular)).toBe(2);
    expect(s.publish("machine/M-001", { big: 10n })).toBe(3);
    expect(s.publish("machine/M-001", { ok: 4 })).toBe(4);
    await c.until(() => c.data().length === 2, "the two encodable messages");
    expect(c.data().map((m) => [m.seq, m.data])).toEqual([
      [1, { ok: 1 }],
      [4, { ok: 4 }],
    ]);
    expect(s.wsStats().dropped).toMatchObject({ invalid_topic: 2, topics_max: 1 });
    expect(s.wsStats().encodeErrors).toBe(2);
    expect(log.filter((e) => e.msg.includes("not a topic"))).toHaveLength(1);
    expect(log.filter((e) => e.msg.includes("cannot be encoded"))).toHaveLength(1);
    const m = await scrape(s);
    expect(sample(m, 'linewatch_ws_dropped_total{reason="invalid_topic"}')).toBe(2);
    expect(sample(m, "linewatch_ws_encode_errors_total")).toBe(2);
  });

  it("ws - a message past wsClientMessageBytesMax or text that is not UTF-8 closes that connection only, counted by reason", async () => {
    const { s, log } = await server({ wsClientMessageBytesMax: 4096 });
    const other = await client(s, READER);
    await other.subscribe(["machine/M-001"]);
    const big = await client(s, READER);
    big.ws.send("x".repeat(4097));
    await big.until(() => big.closeCode !== undefined, "the oversized sender closed");
    const bad = await client(s, READER);
    bad.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    await bad.until(() => bad.closeCode !== undefined, "the invalid UTF-8 sender closed");
    // uWS drops the TCP connection without a close frame.
    expect([big.closeCode, bad.closeCode]).toEqual([1006, 1006]);
    // A message at the limit passes (an error answer: it is no request), and a client's own close is no protocol close.
    const edge = await client(s, READER);
    edge.ws.send(" ".repeat(4096));
    await edge.until(() => edge.controls("error").length === 1, "the answer to a message at the limit");
    expect(edge.controls("error")[0]).toMatchObject({ code: "bad_message" });
    edge.close();
    await edge.until(() => edge.closeCode !== undefined, "the client's own close");
    expect(s.publish("machine/M-001", { after: 1 })).toBe(1);
    await other.until(() => other.data().length === 1, "the other subscriber's message");
    expect(other.closeCode).toBeUndefined();
    expect(s.wsStats().protocolCloses).toEqual({ too_big: 1, invalid_utf8: 1, idle: 0, protocol: 0 });
    expect(log.filter((e) => e.msg.startsWith("closed a WebSocket connection")).map((e) => e.reason)).toEqual([
      "Received too big message",
      "Received invalid UTF-8",
    ]);
    const m = await scrape(s);
    expect(sample(m, 'linewatch_ws_protocol_closes_total{reason="too_big"}')).toBe(1);
    expect(sample(m, 'linewatch_ws_protocol_closes_total{reason="invalid_utf8"}')).toBe(1);
    expect(sample(m, "linewatch_ws_connections")).toBe(1);
  });

  it("ws - ping, and close on server stop", async () => {
    const { s } = await server();
    const c = await client(s, READER);
    c.send({ type: "ping", id: "p1" });
    await c.until(() => c.controls("pong").length === 1, "pong");
    expect(c.controls("pong")[0]).toEqual({ type: "pong", id: "p1" });
    await s.close();
    await c.until(() => c.closeCode !== undefined, "close");
    expect(c.closeCode).toBe(1001);
  });

  it("ws - generated token: printed with the URL when none is configured; it opens the WebSocket", async () => {
    const { s, log } = await server({ tokens: [] });
    expect(s.generatedToken).toMatch(/^[A-Za-z0-9_-]{32}$/);
    const event = log.find((e) => e.msg.includes("generated one for this run"));
    expect(event).toMatchObject({ level: "warn", component: "live" });
    const wsUrl = event?.ws_url as string | undefined;
    expect(wsUrl).toBe(`${s.wsUrl}?token=${s.generatedToken}`);
    const c = await LiveClient.connect(wsUrl!);
    clients.push(c);
    await c.subscribe(["quarantine", "machine/M-9"]);
    expect(c.controls("subscribed")[0].topics).toEqual(["quarantine", "machine/M-9"]);
    expect((await refusal(s.wsUrl)).status).toBe(401);
    const other = await server({ tokens: [] });
    expect(other.s.generatedToken).not.toBe(s.generatedToken);
  });
});
