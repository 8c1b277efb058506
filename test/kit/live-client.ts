/**
 * A real WebSocket client (the `ws` package) for the live-server tests: keeps every message it
 * gets, decoded, and waits for the ones a test expects.
 */
import { decode as msgpackDecode } from "@msgpack/msgpack";
import WebSocket from "ws";

export interface DataMessage {
  topic: string;
  seq: number;
  data: unknown;
}

export type ServerMessage = DataMessage | ({ type: string } & Record<string, unknown>);

export function isData(m: ServerMessage): m is DataMessage {
  return "topic" in m && "seq" in m && !("type" in m);
}

export class LiveClient {
  readonly messages: ServerMessage[] = [];
  closeCode: number | undefined;
  private waiters: Array<() => void> = [];

  private constructor(readonly ws: WebSocket) {
    ws.on("message", (raw, isBinary) => {
      const bytes = raw as Buffer;
      this.messages.push((isBinary ? msgpackDecode(bytes) : JSON.parse(bytes.toString("utf8"))) as ServerMessage);
      this.wake();
    });
    ws.on("close", (code) => {
      this.closeCode = code;
      this.wake();
    });
  }

  /** Connects; rejects with the HTTP status when the server refuses the upgrade. */
  static connect(url: string, headers: Record<string, string> = {}): Promise<LiveClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers });
      const client = new LiveClient(ws);
      ws.once("open", () => resolve(client));
      ws.once("unexpected-response", (_req, res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => reject(new UpgradeRefused(res.statusCode ?? 0, body, res.headers)));
      });
      ws.once("error", (e) => reject(e));
    });
  }

  send(message: Record<string, unknown>): void {
    this.ws.send(JSON.stringify(message));
  }

  data(topic?: string): DataMessage[] {
    return this.messages.filter(isData).filter((m) => topic === undefined || m.topic === topic);
  }

  controls(type?: string): Array<{ type: string } & Record<string, unknown>> {
    return this.messages.filter(
      (m): m is { type: string } & Record<string, unknown> => !isData(m) && (type === undefined || m.type === type),
    );
  }

  /** Resolves when `condition()` holds (checked on every message and close); rejects after `timeoutMs`. */
  async until(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what} (${this.messages.length} messages so far)`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Subscribes and waits for the `subscribed` answer (or an error for every topic). */
  async subscribe(topics: string[], extra: Record<string, unknown> = {}): Promise<void> {
    const id = Math.random();
    this.send({ type: "subscribe", topics, id, ...extra });
    await this.until(
      () =>
        this.messages.some((m) => !isData(m) && m.id === id && m.type === "subscribed") ||
        this.controls("error").filter((e) => e.id === id).length === topics.length,
      `subscribed ${topics.join(",")}`,
    );
  }

  close(): void {
    this.ws.close();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

export class UpgradeRefused extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    readonly headers: Record<string, string | string[] | undefined>,
  ) {
    super(`upgrade refused with HTTP ${status}: ${body}`);
  }
}

/** Resolves after the event loop had a chance to do I/O. */
export function turn(ms = 0): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
