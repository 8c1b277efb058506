/**
 * From a NATS message on `lw.<site>.serial.<line>` to a serial event: decoded by the bounded
 * serial codec; whatever is rejected goes to the dead-letter subject `lw.<site>.deadletter` with
 * its reason (the router of the sensor input, dead-letter.ts) and is counted. Nothing is dropped
 * silently.
 */
import type { NatsConnection } from "nats";
import { DEFAULT_DECODE_LIMITS, type DecodeLimits, decodeSerialRecord, type SerialRecord } from "../wire/mod.js";
import { DeadLetterRouter, natsDeadLetterPublish, reasonOf, type DeadLetterPublish } from "./dead-letter.js";
import type { InputCounts } from "./sensor-input.js";

export class SerialNatsInput {
  private readonly deadLetters: DeadLetterRouter;
  private messages = 0;
  private events = 0;

  constructor(
    publish: NatsConnection | DeadLetterPublish,
    site: string,
    private readonly limits: Readonly<DecodeLimits> = DEFAULT_DECODE_LIMITS,
  ) {
    this.deadLetters = new DeadLetterRouter({ site, publish: typeof publish === "function" ? publish : natsDeadLetterPublish(publish) });
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
