/**
 * Typed errors of the connectors (codecs, subjects, dead-letter). Each sets `name` (from
 * {@link LinewatchError}), keeps `cause`, and carries a machine-readable `reason` that the
 * dead-letter router counts by and tests assert on — never the message text.
 */
import { LinewatchError } from "../engine/errors.js";

/**
 * Why a message (or one reading of a frame) was rejected. Stable strings: they are dead-letter
 * headers, count labels and metric labels.
 */
export type DecodeReason =
  /** The message is larger than its limit (checked before any decoding). */
  | "too_large"
  /** The message ends before the content it declares (a cut-off frame, a string past the end). */
  | "truncated"
  /** Bytes remain after the complete value (or the frame's declared size). */
  | "trailing_bytes"
  /** Not valid MessagePack / JSON / frame syntax: unknown type byte, bad magic, invalid UTF-8, non-zero padding, key index out of range. */
  | "malformed"
  /** A frame of a version (or with flag bits) this build does not know. */
  | "unsupported_version"
  /** Containers nested deeper than `depthMax`. */
  | "too_deep"
  /** A declared length is over its limit: string, binary, extension, array, map, readings, keys. */
  | "length_exceeded"
  /** The top-level value is not a map / object. */
  | "not_a_record"
  /** A required field is absent or null. */
  | "missing_field"
  /** A field has the wrong type (a string value, a numeric machine id…). */
  | "wrong_type"
  /** A field has the right type but unusable content (empty id, a machine id that cannot be a subject token). */
  | "invalid_field"
  /** NaN or ±Infinity where a finite number is required. */
  | "not_finite"
  /** A timestamp that is neither epoch ms nor ISO-8601, or outside the representable date range. */
  | "bad_timestamp"
  /** The payload's machine/sensor disagrees with the subject it arrived on. */
  | "subject_mismatch"
  /** The subject itself is not one of ours or has invalid tokens. */
  | "bad_subject";

export const DECODE_REASONS: readonly DecodeReason[] = Object.freeze([
  "too_large", "truncated", "trailing_bytes", "malformed", "unsupported_version", "too_deep", "length_exceeded",
  "not_a_record", "missing_field", "wrong_type", "invalid_field", "not_finite", "bad_timestamp", "subject_mismatch",
  "bad_subject",
] as const);

/** Where in the input a decode failed, as far as it is known. */
export interface DecodeErrorContext {
  /** The record field concerned (`sensor_value`, `timestamp`…) or the frame part (`keyTable`, `keyIndex`…). */
  field?: string;
  /** The limit that was passed (`stringBytesMax`…). */
  limit?: string;
  /** Byte offset in the message. */
  offset?: number;
  /** The subject the message arrived on. */
  subject?: string;
  cause?: unknown;
}

/** A message (or frame) that cannot be accepted; `reason` says why in a countable way. */
export class DecodeError extends LinewatchError {
  readonly reason: DecodeReason;
  /** The message without the reason prefix. */
  readonly detail: string;
  readonly field?: string;
  readonly limit?: string;
  readonly offset?: number;
  readonly subject?: string;

  constructor(reason: DecodeReason, message: string, context: DecodeErrorContext = {}) {
    super(`${reason}: ${message}`, context.cause === undefined ? undefined : { cause: context.cause });
    this.reason = reason;
    this.detail = message;
    if (context.field !== undefined) this.field = context.field;
    if (context.limit !== undefined) this.limit = context.limit;
    if (context.offset !== undefined) this.offset = context.offset;
    if (context.subject !== undefined) this.subject = context.subject;
  }
}

/** A subject (or a token for one) that is not valid: wrong shape, empty token, `.`/`*`/`>`/whitespace, too long. */
export class SubjectError extends LinewatchError {
  readonly reason = "bad_subject" as const;

  constructor(readonly subject: string, message: string) {
    super(`subject ${JSON.stringify(subject.length > 300 ? `${subject.slice(0, 300)}…` : subject)}: ${message}`);
  }
}

/** What an encoder refuses (the decoder would reject it, or the format cannot carry it). */
export type EncodeReason = "invalid_field" | "wrong_type" | "missing_field" | "not_finite" | "bad_timestamp" | "length_exceeded";

/** A producer handed an encoder something it cannot put on the wire. */
export class EncodeError extends LinewatchError {
  constructor(readonly reason: EncodeReason, readonly field: string, message: string) {
    super(`${reason}: ${field}: ${message}`);
  }
}
