/**
 * Dead-letter routing: every rejected message (or frame reading) is published to
 * `lw.<site>.deadletter` with why, where it came from and (up to a cap) what it was — and counted
 * by reason, whether or not the publish got through. Nothing is rejected silently.
 *
 * Goals
 * - Counts a user can trust: `counts()` has every rejection; `unpublished()` the ones without a
 *   dead-letter message on the bus (shed or unconfirmed).
 * - Bounded: at most `inFlightMax` publishes await confirmation; beyond that, dead letters are
 *   shed and counted instead of queued, so a slow or absent NATS cannot grow memory.
 * - Testable against a real server: the router takes a publish function; {@link natsDeadLetterPublish}
 *   is the one for a `NatsConnection`.
 * Non-goals: retrying (the counts say what is missing), persistence (a JetStream stream on the
 * dead-letter subject does that, if the plant wants it).
 *
 * The message. JSON (default; readable with `nats sub 'lw.*.deadletter'`) or MessagePack, one
 * map with these fields:
 *   version       1
 *   reason        the reason code (`not_finite`, `too_large`… see DecodeReason), also header `Lw-Reason`
 *   subject       the original subject (first 1024 chars), also header `Lw-Subject`
 *   received_at   epoch ms when the router saw the rejection
 *   error         `Name: message` of the error, first `errorTextMax` chars (absent without an error)
 *   field         the record field or frame part concerned, when the error names one
 *   bytes         the original payload's length, also header `Lw-Bytes`
 *   truncated     true when the payload below is cut to `deadLetterBytesMax`, also header `Lw-Truncated`
 *   payload_base64 (JSON) / payload (MessagePack, bin): the first `deadLetterBytesMax` payload bytes
 *   readings      frame readings rejected on their own: [{ index, field }], first `readingsListMax`
 *   readings_count how many readings this dead letter stands for (all of them, even past the list)
 * Headers also carry `Content-Type` (`application/json` or `application/msgpack`).
 */
import { Encoder } from "@msgpack/msgpack";
import { headers as natsHeaders, type NatsConnection } from "nats";
import { ConfigError } from "../../engine/core/mod.js";
import { DecodeError, EncodeError, SubjectError } from "../errors.js";
import { type RejectedReading, deadLetterSubject } from "../wire/mod.js";

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/** Publishes one message; a returned promise settles when the message is confirmed (or not). */
export type DeadLetterPublish = (subject: string, data: Uint8Array, headers: Readonly<Record<string, string>>) => void | Promise<void>;

export interface DeadLetterOptions {
  /** Site token: messages go to `lw.<site>.deadletter`. */
  site: string;
  publish: DeadLetterPublish;
  /** Body encoding (default json). */
  format?: "json" | "msgpack";
  /** Payload bytes kept per dead letter (default {@link DEFAULT_DEAD_LETTER_BYTES_MAX}). */
  deadLetterBytesMax?: number;
  /** Publishes awaiting confirmation before further dead letters are shed (default {@link DEFAULT_DEAD_LETTER_IN_FLIGHT_MAX}). */
  inFlightMax?: number;
  /** Characters of the error text kept (default {@link DEFAULT_DEAD_LETTER_ERROR_TEXT_MAX}). */
  errorTextMax?: number;
  /** Rejected readings listed per dead letter (default {@link DEFAULT_DEAD_LETTER_READINGS_LIST_MAX}); all are counted. */
  readingsListMax?: number;
  /** Clock for `received_at` (default Date.now). */
  now?: () => number;
}

export const DEFAULT_DEAD_LETTER_BYTES_MAX = 4096;
export const DEFAULT_DEAD_LETTER_IN_FLIGHT_MAX = 256;
export const DEFAULT_DEAD_LETTER_ERROR_TEXT_MAX = 1024;
export const DEFAULT_DEAD_LETTER_READINGS_LIST_MAX = 1000;
export const DEAD_LETTER_VERSION = 1;

/** One rejection to route. */
export interface DeadLetter {
  /** The subject the rejected message arrived on. */
  subject: string;
  /** Its payload, as received. */
  bytes: Uint8Array;
  /** A reason code: a DecodeReason, or another lower_snake_case code of the caller's (`late`…). */
  reason: string;
  /** The error that rejected it, if any (its text and `field` go into the message). */
  error?: unknown;
  /** For readings of a frame rejected on their own: which (all with this `reason`). They count one each. */
  readings?: readonly RejectedReading[];
}

/** Totals across reasons, in rejected items (a message, or a frame reading). */
export interface DeadLetterStats {
  rejected: number;
  /** Confirmed by the publish function. */
  published: number;
  /** Not handed to NATS: `inFlightMax` publishes were awaiting confirmation. */
  shed: number;
  /** Handed to NATS but not confirmed (publish threw, its promise rejected): may or may not have arrived. */
  failed: number;
  /** Dead-letter messages awaiting confirmation now. */
  inFlight: number;
}

export class DeadLetterRouter {
  /** `lw.<site>.deadletter`. */
  readonly subject: string;
  private readonly publish: DeadLetterPublish;
  private readonly format: "json" | "msgpack";
  private readonly bytesMax: number;
  private readonly inFlightMax: number;
  private readonly errorTextMax: number;
  private readonly readingsListMax: number;
  private readonly now: () => number;
  private readonly rejectedBy = new Map<string, number>();
  private readonly unpublishedBy = new Map<string, number>();
  private readonly totals = { rejected: 0, published: 0, shed: 0, failed: 0 };
  private inFlight = 0;
  /** Waiting for {@link room}. */
  private roomWaiters: Array<() => void> = [];
  private idle: Array<() => void> = [];

  constructor(options: DeadLetterOptions) {
    this.subject = deadLetterSubject(options.site);
    if (typeof options.publish !== "function") throw new ConfigError("publish", "must be a function");
    this.publish = options.publish;
    this.format = options.format ?? "json";
    if (this.format !== "json" && this.format !== "msgpack")
      throw new ConfigError("format", `must be "json" or "msgpack", got ${String(options.format)}`);
    this.bytesMax = integerAtLeast("deadLetterBytesMax", options.deadLetterBytesMax ?? DEFAULT_DEAD_LETTER_BYTES_MAX, 0);
    this.inFlightMax = integerAtLeast("inFlightMax", options.inFlightMax ?? DEFAULT_DEAD_LETTER_IN_FLIGHT_MAX, 1);
    this.errorTextMax = integerAtLeast("errorTextMax", options.errorTextMax ?? DEFAULT_DEAD_LETTER_ERROR_TEXT_MAX, 0);
    this.readingsListMax = integerAtLeast("readingsListMax", options.readingsListMax ?? DEFAULT_DEAD_LETTER_READINGS_LIST_MAX, 0);
    this.now = options.now ?? Date.now;
  }

  /**
   * Counts the rejection and publishes its dead letter. Returns true when the message was handed
   * to the publish function, false when it was shed (counted in `unpublished()`). Never throws for
   * a publish failure — that is counted too; throws RangeError only for a malformed reason code.
   */
  reject(letter: DeadLetter): boolean {
    const reason = letter.reason;
    if (typeof reason !== "string" || !REASON.test(reason))
      throw new RangeError(`dead-letter reason must be lower_snake_case, got ${JSON.stringify(reason)}`);
    const items = letter.readings === undefined ? 1 : letter.readings.length;
    this.rejectedBy.set(reason, (this.rejectedBy.get(reason) ?? 0) + items);
    this.totals.rejected += items;
    if (this.inFlight >= this.inFlightMax) {
      this.lose(reason, items, "shed");
      return false;
    }
    const { data, headers } = this.message(letter, reason, items);
    let pending: void | Promise<void>;
    try {
      pending = this.publish(this.subject, data, headers);
    } catch {
      this.lose(reason, items, "failed");
      return true;
    }
    if (!(pending instanceof Promise)) {
      this.totals.published += items;
      return true;
    }
    this.inFlight++;
    pending.then(
      () => {
        this.totals.published += items;
        this.settle();
      },
      () => {
        this.lose(reason, items, "failed");
        this.settle();
      },
    );
    return true;
  }

  /**
   * Dead-letters the readings a frame decoder rejected on their own: one message per reason, each
   * carrying the frame (capped) and its readings' indices. Returns how many messages were handed over.
   */
  rejectReadings(subject: string, bytes: Uint8Array, rejected: readonly RejectedReading[]): number {
    const byReason = new Map<string, RejectedReading[]>();
    for (const r of rejected) {
      const list = byReason.get(r.reason);
      if (list === undefined) byReason.set(r.reason, [r]);
      else list.push(r);
    }
    let handed = 0;
    for (const [reason, readings] of byReason) if (this.reject({ subject, bytes, reason, readings })) handed++;
    return handed;
  }

  /** Rejected items by reason since the start (a message counts 1, a frame reading 1). */
  counts(): Record<string, number> {
    return Object.fromEntries(this.rejectedBy);
  }

  /** Of those, the items whose dead letter is not confirmed on the bus (shed or failed), by reason. */
  unpublished(): Record<string, number> {
    return Object.fromEntries(this.unpublishedBy);
  }

  stats(): DeadLetterStats {
    return { ...this.totals, inFlight: this.inFlight };
  }

  /** Resolves when no publish awaits confirmation. */
  flush(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private lose(reason: string, items: number, how: "shed" | "failed"): void {
    this.unpublishedBy.set(reason, (this.unpublishedBy.get(reason) ?? 0) + items);
    this.totals[how] += items;
  }

  /**
   * Undefined while a dead letter would be handed to NATS now; else a promise that resolves once
   * one would (fewer than `inFlightMax` await confirmation). A source that can hold its messages
   * (JetStream: they wait in the stream) waits on it instead of having dead letters shed; core
   * NATS cannot, and sheds (counted). Found by `linewatch chaos --scenario fuzz`: a fetch of
   * 2000 messages, 1000 of them malformed, had all but 256 of its dead letters shed per round.
   */
  room(): Promise<void> | undefined {
    if (this.inFlight < this.inFlightMax) return undefined;
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  private settle(): void {
    this.inFlight--;
    if (this.roomWaiters.length > 0 && this.inFlight < this.inFlightMax) {
      const waiting = this.roomWaiters;
      this.roomWaiters = [];
      for (const resolve of waiting) resolve();
    }
    if (this.inFlight === 0 && this.idle.length > 0) {
      const waiting = this.idle;
      this.idle = [];
      for (const resolve of waiting) resolve();
    }
  }

  private message(letter: DeadLetter, reason: string, items: number): { data: Uint8Array; headers: Record<string, string> } {
    const bytes = letter.bytes;
    const truncated = bytes.length > this.bytesMax;
    const payload = truncated ? bytes.subarray(0, this.bytesMax) : bytes;
    const subject = String(letter.subject).slice(0, SUBJECT_TEXT_MAX);
    const body: Record<string, unknown> = { version: DEAD_LETTER_VERSION, reason, subject, received_at: this.now() };
    if (letter.error !== undefined) {
      body.error = errorText(letter.error).slice(0, this.errorTextMax);
      const field = (letter.error as { field?: unknown }).field;
      if (typeof field === "string") body.field = field;
    }
    body.bytes = bytes.length;
    body.truncated = truncated;
    if (this.format === "json")
      body.payload_base64 = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString("base64");
    else body.payload = payload;
    if (letter.readings !== undefined) {
      body.readings = letter.readings.slice(0, this.readingsListMax).map((r) => ({ index: r.index, field: r.field }));
      body.readings_count = items;
    }
    const data = this.format === "json" ? TEXT.encode(JSON.stringify(body)) : MSGPACK.encode(body);
    const headers: Record<string, string> = {
      "Content-Type": this.format === "json" ? "application/json" : "application/msgpack",
      "Lw-Reason": reason,
      "Lw-Subject": headerValue(subject),
      "Lw-Bytes": String(bytes.length),
      "Lw-Truncated": String(truncated),
    };
    return { data, headers };
  }
}

/** The reason code of a connector error (`DecodeError`, `SubjectError`, `EncodeError`), else `unexpected_error`. */
export function reasonOf(error: unknown): string {
  if (error instanceof DecodeError || error instanceof SubjectError || error instanceof EncodeError) return error.reason;
  return "unexpected_error";
}

/**
 * A {@link DeadLetterPublish} for a NATS connection. Core NATS publish is fire-and-forget into the
 * client's outbound buffer; the returned promise is that of the next `flush()` (one PING/PONG per
 * batch of publishes made in the same tick), so it resolves once the server has the message and
 * stays pending while the server is unreachable — which is what bounds the router's in-flight
 * count. A closed connection throws; a disconnect rejects pending flushes (counted as failed).
 */
export function natsDeadLetterPublish(nc: NatsConnection): DeadLetterPublish {
  let nextFlush: Promise<void> | null = null;
  return (subject, data, hdrs) => {
    const h = natsHeaders();
    for (const [k, v] of Object.entries(hdrs)) h.set(k, v);
    nc.publish(subject, data, { headers: h });
    // One flush for all publishes of this tick: it is issued after them, so its PONG confirms them all.
    nextFlush ??= Promise.resolve().then(() => {
      nextFlush = null;
      return nc.flush();
    });
    return nextFlush;
  };
}

// ---------------------------------------------------------------------------------------------
// Internals
// ---------------------------------------------------------------------------------------------

const REASON = /^[a-z][a-z0-9_]{0,63}$/;
const SUBJECT_TEXT_MAX = 1024;
const TEXT = new TextEncoder();
const MSGPACK = new Encoder();

function errorText(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

/** Header values are one line of visible text (NATS headers are MIME-like). */
function headerValue(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]/g, "?").slice(0, 256);
}

function integerAtLeast(option: string, value: number, min: number): number {
  if (!Number.isSafeInteger(value) || value < min) throw new ConfigError(option, `must be an integer ≥ ${min}, got ${String(value)}`);
  return value;
}
