/**
 * A WebSocket client of the live server (connectors/live/ws-server.ts) for the chaos harness, on
 * the `ws` package: connects with a token, reports a refused upgrade by its HTTP status, hands
 * each data message to a callback, counts the control messages by type (and errors by code),
 * checks each topic's `seq` for gaps, and keeps the bytes received and the close code.
 */
import { decode as msgpackDecode } from "@msgpack/msgpack";
import WebSocket from "ws";
import { waitFor } from "./env.js";

export interface WsDataMessage {
  topic: string;
  seq: number;
  data: unknown;
}

export type WsControlMessage = { type: string } & Record<string, unknown>;

/** An upgrade the server answered with an HTTP status instead of 101 (0: no answer at all). */
export interface WsRefusal {
  refused: number;
  body: string;
}

/** Control messages kept for a report (the latest); the rest are only counted. */
const CONTROLS_KEPT = 64;

export class ChaosWsClient {
  /** Control messages by `type`, errors by `error:<code>`. */
  readonly counts = new Map<string, number>();
  /** The latest control messages (at most {@link CONTROLS_KEPT}). */
  readonly controls: WsControlMessage[] = [];
  /** Messages missing from a topic's seq run after the `subscribed` answer (sampled or skipped). */
  gaps = 0;
  data = 0;
  bytes = 0;
  closeCode: number | undefined;
  /** Called with each data message and the wall-clock time it arrived (epoch ms, fractional). */
  onData: ((m: WsDataMessage, atMs: number) => void) | undefined;
  private readonly lastSeq = new Map<string, number>();

  private constructor(readonly ws: WebSocket) {
    ws.on("message", (raw: Buffer, isBinary: boolean) => this.received(raw, isBinary));
    ws.on("close", (code: number) => (this.closeCode = code));
  }

  /** Connects (`ws://…/ws?…`, headers such as Authorization); a refused upgrade resolves as a {@link WsRefusal}. */
  static connect(url: string, headers: Record<string, string> = {}): Promise<ChaosWsClient | WsRefusal> {
    return new Promise((resolve) => {
      const ws = new WebSocket(url, { headers, handshakeTimeout: 10_000 });
      const client = new ChaosWsClient(ws);
      ws.once("open", () => resolve(client));
      ws.once("unexpected-response", (_req, res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (body = (body + d).slice(0, 4096)));
        res.on("end", () => resolve({ refused: res.statusCode ?? 0, body }));
        res.on("error", () => resolve({ refused: res.statusCode ?? 0, body }));
      });
      ws.once("error", (e) => resolve({ refused: 0, body: e.message }));
    });
  }

  count(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  get open(): boolean {
    return this.closeCode === undefined && this.ws.readyState === WebSocket.OPEN;
  }

  send(message: Record<string, unknown>): void {
    this.ws.send(JSON.stringify(message));
  }

  /** Subscribes; true once the `subscribed` answer came (false: refused or no answer within `timeoutMs`). */
  async subscribe(topics: readonly string[], timeoutMs = 20_000): Promise<boolean> {
    const before = this.count("subscribed");
    this.send({ type: "subscribe", topics });
    return waitFor(() => this.count("subscribed") > before || !this.open, timeoutMs, 20).then(() => this.count("subscribed") > before);
  }

  /** Resolves once the socket has closed (its code), or undefined after `timeoutMs`. */
  async closed(timeoutMs: number): Promise<number | undefined> {
    await waitFor(() => this.closeCode !== undefined, timeoutMs, 20);
    return this.closeCode;
  }

  close(): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close();
  }

  private received(raw: Buffer, isBinary: boolean): void {
    const atMs = performance.timeOrigin + performance.now();
    this.bytes += raw.length;
    let m: unknown;
    try {
      m = isBinary ? msgpackDecode(raw) : JSON.parse(raw.toString("utf8"));
    } catch {
      this.bump("undecodable");
      return;
    }
    if (typeof m !== "object" || m === null) return this.bump("undecodable");
    const r = m as Record<string, unknown>;
    if (typeof r.type === "string") return this.control(r as WsControlMessage);
    if (typeof r.topic !== "string" || typeof r.seq !== "number") return this.bump("undecodable");
    this.data++;
    const last = this.lastSeq.get(r.topic);
    if (last !== undefined && r.seq > last + 1) this.gaps += r.seq - last - 1;
    this.lastSeq.set(r.topic, Math.max(last ?? 0, r.seq));
    this.onData?.(r as unknown as WsDataMessage, atMs);
  }

  private control(c: WsControlMessage): void {
    this.bump(c.type === "error" ? `error:${String(c.code)}` : c.type);
    if (this.controls.push(c) > CONTROLS_KEPT) this.controls.shift();
    // The subscription's starting point: the seq published before it (a gap after it shows).
    if (c.type === "subscribed" && typeof c.seq === "object" && c.seq !== null)
      for (const [topic, seq] of Object.entries(c.seq as Record<string, number>))
        if (!this.lastSeq.has(topic)) this.lastSeq.set(topic, seq);
  }

  private bump(key: string): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }
}

export function isRefusal(c: ChaosWsClient | WsRefusal): c is WsRefusal {
  return "refused" in c;
}

/** The live server's /metrics as text ("" when it does not answer). */
export async function scrapeMetrics(port: number): Promise<string> {
  try {
    return await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  } catch {
    return "";
  }
}

/** The value of one series in a Prometheus scrape (0 when absent). */
export function metricValue(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}
