/**
 * From a NATS message on `lw.<site>.process.<line>` or `lw.<site>.quality.<line>` to a process
 * reading or a quality outcome, by the bounded batch codec (connectors/wire/batch-codec.ts);
 * whatever it rejects goes to the dead-letter subject `lw.<site>.deadletter` with its reason (the
 * sensor input's router, dead-letter.ts) and is counted. Nothing is dropped silently.
 */
import type { NatsConnection } from "nats";
import {
  DEFAULT_DECODE_LIMITS,
  type DecodeLimits,
  decodeProcessRecord,
  decodeQualityRecord,
  type ProcessRecord,
  type QualityRecord,
} from "../wire/mod.js";
import { DeadLetterRouter, type DeadLetterPublish, natsDeadLetterPublish, reasonOf } from "./dead-letter.js";

export type BatchMessage = { kind: "process"; record: ProcessRecord } | { kind: "quality"; record: QualityRecord };

export class BatchNatsInput {
  private readonly deadLetters: DeadLetterRouter;
  private messages = 0;

  constructor(
    publish: NatsConnection | DeadLetterPublish,
    site: string,
    private readonly limits: Readonly<DecodeLimits> = DEFAULT_DECODE_LIMITS,
  ) {
    this.deadLetters = new DeadLetterRouter({ site, publish: typeof publish === "function" ? publish : natsDeadLetterPublish(publish) });
  }

  /**
   * The message's record (its kind from the subject's), or null when it was dead-lettered.
   * `replay`: the message was taken before a restart (a JetStream replay) and dead-lettered then;
   * a rejection is neither dead-lettered nor counted again.
   */
  decode(subject: string, data: Uint8Array, kind: "process" | "quality", replay = false): BatchMessage | null {
    if (!replay) this.messages++;
    try {
      const options = { limits: this.limits, subject };
      return kind === "process"
        ? { kind, record: decodeProcessRecord(data, options) }
        : { kind, record: decodeQualityRecord(data, options) };
    } catch (error) {
      if (!replay) this.deadLetters.reject({ subject, bytes: data, reason: reasonOf(error), error });
      return null;
    }
  }

  counts(): { messages: number; deadLettered: number; byReason: Record<string, number> } {
    const byReason = this.deadLetters.counts();
    return { messages: this.messages, deadLettered: Object.values(byReason).reduce((a, b) => a + b, 0), byReason };
  }

  /** Waits for the dead letters handed to NATS. */
  settled(): Promise<void> {
    return this.deadLetters.flush();
  }
}
