/**
 * From a NATS message on `lw.<site>.serial.<line>` to a serial event: first the schema-specialised
 * reader ({@link SerialNatsInput.read}: no object, no string — the event stays in the message's
 * bytes), and whatever it cannot prove valid by the bounded serial codec ({@link SerialNatsInput.decode});
 * whatever that rejects goes to the dead-letter subject `lw.<site>.deadletter` with its reason (the
 * router of the sensor input, dead-letter.ts) and is counted. Nothing is dropped silently.
 */
import type { NatsConnection } from "nats";
import {
  DEFAULT_DECODE_LIMITS,
  type DecodeLimits,
  decodeSerialRecord,
  parseSubject,
  type SerialRecord,
  SerialRecordReader,
  SerialRecordView,
} from "../wire/mod.js";
import { DeadLetterRouter, natsDeadLetterPublish, reasonOf, type DeadLetterPublish } from "./dead-letter.js";
import type { InputCounts } from "./sensor-input.js";

/** Subjects remembered with their line; past this many the memory starts afresh (a flood of distinct subjects). */
const SUBJECT_LINES_MAX = 16_384;

export class SerialNatsInput {
  /** The event of the last message {@link read} took: times, and its text as ranges of that message's bytes. */
  readonly view = new SerialRecordView();
  /** Events {@link read} took (the rest went through {@link decode}). */
  fastEvents = 0;
  private readonly deadLetters: DeadLetterRouter;
  private readonly reader: SerialRecordReader;
  /** Subject → its line, or null when it is not a serial subject (the generic decoder says why). */
  private readonly lines = new Map<string, string | null>();
  private messages = 0;
  private events = 0;

  /** `fastPath: false`: every message through the generic decoder (the comparisons of the tests and the benchmark). */
  constructor(
    publish: NatsConnection | DeadLetterPublish,
    site: string,
    private readonly limits: Readonly<DecodeLimits> = DEFAULT_DECODE_LIMITS,
    private readonly fastPath = true,
  ) {
    this.deadLetters = new DeadLetterRouter({ site, publish: typeof publish === "function" ? publish : natsDeadLetterPublish(publish) });
    this.reader = new SerialRecordReader(limits);
  }

  /**
   * The line of the message's event when the schema reader proves it valid — then {@link view}
   * holds the event, exactly what {@link decode} would have returned (connectors/wire
   * serial-record-reader.ts) — or null: call `decode`, which decodes it or dead-letters it.
   */
  read(subject: string, data: Uint8Array): string | null {
    if (!this.fastPath) return null;
    let line = this.lines.get(subject);
    if (line === undefined) {
      line = serialLine(subject, this.limits);
      if (this.lines.size >= SUBJECT_LINES_MAX) this.lines.clear();
      this.lines.set(subject, line);
    }
    if (line === null || !this.reader.read(data, line, this.view)) return null;
    this.messages++;
    this.events++;
    this.fastEvents++;
    return line;
  }

  /** The message's event, or null when it was dead-lettered. */
  decode(subject: string, data: Uint8Array): SerialRecord | null {
    this.messages++;
    try {
      const record = decodeSerialRecord(data, { limits: this.limits, subject });
      this.events++;
      return record;
    } catch (error) {
      this.deadLetters.reject({ subject, bytes: data, reason: reasonOf(error), error });
      return null;
    }
  }

  /** Dead-letters a decoded event the job could not take (e.g. `too_many_lines`), counted like the rest. */
  reject(subject: string, data: Uint8Array, reason: string, error: unknown): void {
    this.events--;
    this.deadLetters.reject({ subject, bytes: data, reason, error });
  }

  /** Messages, events (as `readings`) and dead letters by reason. */
  counts(): InputCounts {
    const byReason = this.deadLetters.counts();
    const deadLettered = Object.values(byReason).reduce((a, b) => a + b, 0);
    return { messages: this.messages, readings: this.events, deadLettered, byReason };
  }

  /** Resolves when every dead letter so far is confirmed by the server (or failed). */
  flush(): Promise<void> {
    return this.deadLetters.flush();
  }
}

/** The line of a serial subject, or null when the subject is not one (decodeSerialRecord rejects its messages as `bad_subject`). */
function serialLine(subject: string, limits: Readonly<DecodeLimits>): string | null {
  try {
    const parsed = parseSubject(subject, limits);
    return parsed.kind === "serial" ? parsed.line : null;
  } catch {
    return null;
  }
}
