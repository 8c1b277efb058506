/**
 * One WebSocket to the live server (`/ws`, docs/api.md "WebSocket") for the whole page: views
 * subscribe to topics and get each message's data; score frames arrive decoded. The cookie
 * carries the token (a browser sends it on the upgrade). Reconnects with a growing pause and
 * subscribes again; a gap in a topic's seq is counted, not hidden.
 */
import { base64Bytes, decodeScoreFrame, type ScoreFrame } from "./score-frame.js";

export type TopicHandler = (data: unknown, frame: ScoreFrame | null) => void;

interface TopicMessage {
  topic?: string;
  seq?: number;
  data?: unknown;
}

export class LiveSocket {
  private ws: WebSocket | null = null;
  private readonly handlers = new Map<string, Set<TopicHandler>>();
  private readonly lastSeq = new Map<string, number>();
  private retryMs = 500;
  private closed = false;
  /** Messages received, frames decoded and sequence gaps seen (shown in the header). */
  readonly stats = { messages: 0, frames: 0, gaps: 0, connected: false };

  constructor(private readonly onState: () => void) {
    this.connect();
  }

  /** Calls `handler` with each message of `topic` until the returned function is called. */
  subscribe(topic: string, handler: TopicHandler): () => void {
    let set = this.handlers.get(topic);
    if (set === undefined) {
      set = new Set();
      this.handlers.set(topic, set);
      this.send({ type: "subscribe", topics: [topic] });
    }
    set.add(handler);
    return () => {
      const s = this.handlers.get(topic);
      if (s === undefined) return;
      s.delete(handler);
      if (s.size === 0) {
        this.handlers.delete(topic);
        this.send({ type: "unsubscribe", topics: [topic] });
      }
    };
  }

  close(): void {
    this.closed = true;
    this.ws?.close();
  }

  private connect(): void {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/ws?format=json`);
    this.ws = ws;
    ws.onopen = () => {
      this.retryMs = 500;
      this.stats.connected = true;
      this.onState();
      if (this.handlers.size > 0) this.send({ type: "subscribe", topics: [...this.handlers.keys()] });
    };
    ws.onmessage = (ev) => this.onMessage(typeof ev.data === "string" ? ev.data : "");
    ws.onclose = () => {
      this.stats.connected = false;
      this.onState();
      if (this.closed) return;
      setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(10_000, this.retryMs * 2);
    };
  }

  private onMessage(text: string): void {
    let msg: TopicMessage;
    try {
      msg = JSON.parse(text) as TopicMessage;
    } catch {
      return;
    }
    if (msg.topic === undefined) return;
    this.stats.messages++;
    const before = this.lastSeq.get(msg.topic);
    if (before !== undefined && msg.seq !== undefined && msg.seq > before + 1) this.stats.gaps++;
    if (msg.seq !== undefined) this.lastSeq.set(msg.topic, msg.seq);
    const data = msg.data as { kind?: string; frame?: string } | undefined;
    let frame: ScoreFrame | null = null;
    if (data?.kind === "score_frame" && typeof data.frame === "string") {
      frame = decodeScoreFrame(base64Bytes(data.frame));
      this.stats.frames++;
    }
    for (const h of this.handlers.get(msg.topic) ?? []) h(msg.data, frame);
  }

  private send(message: object): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }
}
