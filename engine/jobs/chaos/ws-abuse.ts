/**
 * WebSocket abuse of a live `linewatch run --port --tokens` (connectors/live/ws-server.ts, the
 * protocol in docs/api.md#websocket), beside a subscriber that must not notice: upgrades without
 * a token, with a wrong one (query, header, cookie), past the token's rate, with a bad format;
 * after the upgrade, a topic outside the grant and invalid topics, a flood of messages past the
 * token's rate, malformed messages (not JSON, not msgpack, not an object, unknown type, no
 * topics, a bad rate, nested-array bombs, a msgpack map declaring 2^31 entries), a message past
 * wsClientMessageBytesMax, text that is not UTF-8, a frame with a reserved opcode. Each must get
 * its documented answer: the upgrade's status, an `error` message of its code with the
 * connection left open, or the connection closed (uWS: no close frame, 1006) and counted in
 * `linewatch_ws_protocol_closes_total`.
 */
import { randomBytes } from "node:crypto";
import { connect } from "node:net";
import { ChaosWsClient, isRefusal } from "./ws-client.js";
import { waitFor } from "./env.js";

/** The live server's tokens the abuse uses. */
export interface WsAbuseTokens {
  /** Every topic. */
  admin: string;
  /** The `alerts` topic only. */
  reader: string;
  /** A burst of 2 at 2 requests a second. */
  slow: string;
  /** `machine/+`, 20 client messages a second (burst 20). */
  flood: string;
}

/** How many messages the flood sends at once (ten times the flood token's burst). */
export const WS_FLOOD_MESSAGES = 200;
/** Bytes of the oversized message: past the server's wsClientMessageBytesMax (16 KiB). */
const OVERSIZED_BYTES = 20_000;

export interface WsAbuse {
  name: string;
  /** The outcomes it may get: `upgrade <status>`, `error <code>`, `closed`, `flood …`. */
  expect: readonly string[];
  go: () => Promise<string>;
}

const wsUrl = (port: number, query: string): string => `ws://127.0.0.1:${port}/ws${query}`;

/** An upgrade's outcome: `upgrade <status>` (101 when accepted; the connection is closed again). */
async function upgrade(port: number, query: string, headers: Record<string, string> = {}): Promise<string> {
  const c = await ChaosWsClient.connect(wsUrl(port, query), headers);
  if (isRefusal(c)) return `upgrade ${c.refused}`;
  c.close();
  return "upgrade 101";
}

/**
 * Opens a connection with `token`, sends `payload` (text, or binary for a Buffer) and gives the
 * first answer: `error <code>` (the connection still open: a ping is answered), `subscribed`, or
 * `closed` when the server closed it.
 */
async function answer(port: number, token: string, payload: string | Buffer, binary = false): Promise<string> {
  const c = await ChaosWsClient.connect(wsUrl(port, `?token=${token}`));
  if (isRefusal(c)) return `upgrade ${c.refused}`;
  try {
    await waitFor(() => c.count("welcome") > 0 || !c.open, 10_000, 10);
    const seen = c.controls.length;
    c.ws.send(payload, { binary });
    await waitFor(() => c.controls.length > seen || !c.open, 10_000, 10);
    if (!c.open) return "closed";
    const first = c.controls[seen];
    if (first === undefined) return "no answer";
    const outcome = first.type === "error" ? `error ${String(first.code)}` : first.type;
    // Still usable after an error: a ping is answered.
    c.send({ type: "ping", id: "after" });
    const usable = await waitFor(() => c.count("pong") > 0 || !c.open, 10_000, 10);
    return usable && c.open ? outcome : `${outcome}, then closed`;
  } finally {
    c.close();
  }
}

/** Sends {@link WS_FLOOD_MESSAGES} pings at once: `flood answered` when each got a pong or rate_limited, at least one refused, the connection open. */
async function flood(port: number, token: string): Promise<string> {
  const c = await ChaosWsClient.connect(wsUrl(port, `?token=${token}`));
  if (isRefusal(c)) return `upgrade ${c.refused}`;
  try {
    for (let i = 0; i < WS_FLOOD_MESSAGES; i++) c.send({ type: "ping", id: i });
    const answered = () => c.count("pong") + c.count("error:rate_limited");
    await waitFor(() => answered() >= WS_FLOOD_MESSAGES || !c.open, 10_000, 20);
    if (!c.open) return "flood closed the connection";
    if (c.count("error:rate_limited") === 0) return "flood: none rate_limited";
    return answered() === WS_FLOOD_MESSAGES ? "flood answered" : `flood: ${answered()} of ${WS_FLOOD_MESSAGES} answered`;
  } finally {
    c.close();
  }
}

/** A frame with reserved opcode 0x3 (masked, empty) after a hand-made upgrade: `closed` when the server drops the connection. */
function reservedOpcode(port: number, token: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    const timer = setTimeout(() => {
      s.destroy();
      resolve("still open after 10 s");
    }, 10_000);
    let head = "";
    s.on("data", (d) => {
      head += d.toString("latin1");
      if (head.startsWith("HTTP/1.1 101") && head.includes("\r\n\r\n")) s.write(Buffer.from([0x83, 0x80, 1, 2, 3, 4]));
    });
    s.on("close", () => {
      clearTimeout(timer);
      resolve(head.startsWith("HTTP/1.1 101") ? "closed" : `upgrade ${head.slice(9, 12)}`);
    });
    s.on("error", () => {});
    s.write(
      `GET /ws?token=${token} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
  });
}

/** Nested arrays `depth` deep: JSON text, and MessagePack (0x91: an array of one). */
const jsonBomb = (depth: number): string => `${"[".repeat(depth)}${"]".repeat(depth)}`;
const msgpackBomb = (depth: number): Buffer => Buffer.concat([Buffer.alloc(depth, 0x91), Buffer.from([0xc0])]);

export function wsAbuses(port: number, t: WsAbuseTokens): WsAbuse[] {
  const wrong = randomBytes(20).toString("hex");
  const bad = (name: string, payload: string | Buffer, code = "bad_message", binary = false): WsAbuse => ({
    name,
    expect: [`error ${code}`],
    go: () => answer(port, t.admin, payload, binary),
  });
  return [
    { name: "WS upgrade without a token", expect: ["upgrade 401"], go: () => upgrade(port, "") },
    { name: "WS upgrade, wrong token in the query", expect: ["upgrade 401"], go: () => upgrade(port, `?token=${wrong}`) },
    { name: "WS upgrade, wrong bearer token", expect: ["upgrade 401"], go: () => upgrade(port, "", { authorization: `Bearer ${wrong}` }) },
    { name: "WS upgrade, wrong cookie", expect: ["upgrade 401"], go: () => upgrade(port, "", { cookie: `lw_token=${wrong}` }) },
    { name: "WS upgrade, bad format", expect: ["upgrade 400"], go: () => upgrade(port, `?token=${t.admin}&format=xml`) },
    // The slow token's 2-request burst: of three upgrades at once, at least one is refused (checked by the caller).
    ...Array.from(
      { length: 3 },
      (): WsAbuse => ({
        name: "WS upgrade over the rate",
        expect: ["upgrade 101", "upgrade 429"],
        go: () => upgrade(port, `?token=${t.slow}`),
      }),
    ),
    {
      name: "WS topic outside the grant",
      expect: ["error forbidden_topic"],
      go: () => answer(port, t.reader, JSON.stringify({ type: "subscribe", topics: ["machine/M-001"] })),
    },
    {
      name: "WS wildcard topic",
      expect: ["error invalid_topic"],
      go: () => answer(port, t.admin, '{"type":"subscribe","topics":["machine/+"]}'),
    },
    {
      name: "WS traversal topic",
      expect: ["error invalid_topic"],
      go: () => answer(port, t.admin, '{"type":"subscribe","topics":["../../etc/passwd"]}'),
    },
    { name: "WS flood past the rate", expect: ["flood answered"], go: () => flood(port, t.flood) },
    bad("WS not JSON", '{"type": "subscribe", "topics": ['),
    bad("WS not an object", "[1,2,3]"),
    bad("WS unknown type", '{"type":"publish","topic":"alerts","data":1}'),
    bad("WS subscribe without topics", '{"type":"subscribe"}'),
    bad("WS negative rate", '{"type":"subscribe","topics":["alerts"],"rate":-1}', "bad_rate"),
    bad("WS JSON nested-array bomb", jsonBomb(8000)),
    bad("WS not msgpack", Buffer.from([0xc1, 0xff, 0x00]), "bad_message", true),
    bad("WS msgpack nested-array bomb", msgpackBomb(16_000), "bad_message", true),
    bad("WS msgpack map declaring 2^31 entries", Buffer.from([0xdf, 0x80, 0, 0, 0]), "bad_message", true),
    { name: "WS message past 16 KiB", expect: ["closed"], go: () => answer(port, t.admin, "x".repeat(OVERSIZED_BYTES)) },
    { name: "WS text not UTF-8", expect: ["closed"], go: () => answer(port, t.admin, Buffer.from([0x7b, 0xff, 0xfe, 0x7d])) },
    { name: "WS reserved opcode", expect: ["closed"], go: () => reservedOpcode(port, t.admin) },
  ];
}

/** A subscriber of every machine topic, streaming, that must see every message (no seq gap) and stay open through the abuse. */
export async function wsWatcher(port: number, token: string, topics: readonly string[]): Promise<ChaosWsClient> {
  const c = await ChaosWsClient.connect(wsUrl(port, `?token=${token}&format=msgpack`));
  if (isRefusal(c)) throw new Error(`the watcher was refused: ${c.refused} ${c.body}`);
  if (!(await c.subscribe(topics))) throw new Error("the watcher's subscribe was not answered");
  return c;
}

export interface WsAbuseCounts {
  checks: number;
  /** Outcomes not among those expected. */
  wrong: number;
  /** Upgrades refused with 429 (the burst must get at least one). */
  upgrades429: number;
  notes: string[];
}

/** Runs every abuse once (one at a time), counting the outcomes not expected into `c`. */
export async function runWsAbuses(port: number, t: WsAbuseTokens, c: WsAbuseCounts): Promise<void> {
  for (const a of wsAbuses(port, t)) {
    const outcome = await a.go();
    c.checks++;
    if (outcome === "upgrade 429") c.upgrades429++;
    if (!a.expect.includes(outcome)) {
      c.wrong++;
      if (c.notes.length < 10) c.notes.push(`${a.name}: ${outcome}, expected ${a.expect.join(" or ")}`);
    }
  }
}
