/**
 * Wire codec of serial events (DESIGN.md §4): one event per message on `lw.<site>.serial.<line>`,
 * MessagePack (the default) or JSON, with the source field names. Decoding is the sensor
 * records' bounded decode (size, structure, lengths, depth: codecs.ts `decodeFieldMap`) followed
 * by these field rules; every rejection is a {@link DecodeError} with a countable reason, for the
 * dead-letter router.
 *
 * Field rules (both formats):
 * - `machine_id`: the line; a valid subject token, equal to the subject's `<line>` (`subject_mismatch`).
 * - `serial_number`, `gtin`, `batch_number`: strings (empty allowed: the analysis judges
 *   content — an empty serial is `serial_length`). A numeric GTIN is `wrong_type`: a number loses
 *   a GTIN's leading zeros.
 * - `production_timestamp`: required; `received_timestamp`: optional — each epoch ms, ISO-8601
 *   text or the MessagePack timestamp extension, finite, within a Date's range.
 * - `operator_id`, `event_type`: optional strings (`event_type` `batch_close` closes a batch).
 * - null means absent; unknown fields are ignored (they count against the limits).
 */
import { Encoder } from "@msgpack/msgpack";
import { decodeFieldMap, decodeTimeField, describeValue } from "./codecs.js";
import type { SerialEventFields } from "../../operators/serial/mod.js";
import { DEFAULT_DECODE_LIMITS, type DecodeLimits } from "./decode-limits.js";
import { DecodeError, EncodeError, SubjectError } from "../errors.js";
import { describeTokenProblem, parseSubject, tokenProblem } from "./subjects.js";

/** One decoded serial event, times in epoch ms: what the serial analysis takes (its `SerialEventFields`). */
export type SerialRecord = SerialEventFields;

/** What the encoder takes: times as epoch ms or ISO-8601 text (the simulator's `SerialEvent` fits). */
export interface SerialRecordInput {
  serial_number: string;
  gtin: string;
  batch_number: string;
  production_timestamp: number | string;
  machine_id: string;
  operator_id?: string;
  received_timestamp?: number | string;
  event_type?: string;
}

/**
 * A serial event from its message bytes. With `subject`, the subject must be a serial subject
 * (`bad_subject`) whose line is the event's `machine_id` (`subject_mismatch`). Throws {@link DecodeError}.
 */
export function decodeSerialRecord(bytes: Uint8Array, options: { limits?: Readonly<DecodeLimits>; subject?: string } = {}): SerialRecord {
  const limits = options.limits ?? DEFAULT_DECODE_LIMITS;
  const subject = options.subject;
  let line: string | undefined;
  if (subject !== undefined) {
    try {
      const parsed = parseSubject(subject, limits);
      if (parsed.kind !== "serial") throw new SubjectError(subject, `a ${parsed.kind} subject on the serial input`);
      line = parsed.line;
    } catch (e) {
      if (e instanceof SubjectError) throw new DecodeError("bad_subject", e.message, { cause: e, subject });
      throw e;
    }
  }
  const o = decodeFieldMap(bytes, limits, subject);
  const fail = (reason: "missing_field" | "wrong_type" | "invalid_field" | "length_exceeded", field: string, message: string): never => {
    throw new DecodeError(reason, `${field}: ${message}`, { field, subject });
  };
  const text = (field: string, required: boolean): string | undefined => {
    const v = o[field];
    if (v === undefined || v === null) return required ? fail("missing_field", field, "is missing") : undefined;
    if (typeof v !== "string") {
      return fail(
        "wrong_type",
        field,
        `is ${describeValue(v)}, not a string${field === "gtin" ? " (send GTINs as strings: a number loses leading zeros)" : ""}`,
      );
    }
    return v;
  };
  const machine = text("machine_id", true) as string;
  const problem = tokenProblem(machine, limits.tokenBytesMax);
  if (problem !== null)
    fail(
      problem === "too_long" ? "length_exceeded" : "invalid_field",
      "machine_id",
      `${JSON.stringify(machine.slice(0, 80))} ${describeTokenProblem(problem, limits.tokenBytesMax)}`,
    );
  if (line !== undefined && machine !== line) {
    throw new DecodeError("subject_mismatch", `machine_id "${machine}" arrived on line "${line}"'s subject`, {
      field: "machine_id",
      subject,
    });
  }
  const record: SerialRecord = {
    serial_number: text("serial_number", true) as string,
    gtin: text("gtin", true) as string,
    batch_number: text("batch_number", true) as string,
    production_timestamp: decodeTimeField(o.production_timestamp, "production_timestamp", subject),
    machine_id: machine,
    operator_id: text("operator_id", false) ?? "",
  };
  if (o.received_timestamp !== undefined && o.received_timestamp !== null)
    record.received_timestamp = decodeTimeField(o.received_timestamp, "received_timestamp", subject);
  const eventType = text("event_type", false);
  if (eventType !== undefined) record.event_type = eventType;
  return record;
}

/**
 * A serial event as one message: MessagePack (default) or JSON, the source field names, times as
 * given. Checks what the decoder would reject in the fields it can see (a missing field, a
 * machine id that cannot be a subject token, a bad time) and throws {@link EncodeError}.
 */
export function encodeSerialRecord(
  e: SerialRecordInput,
  format: "msgpack" | "json" = "msgpack",
  limits: Readonly<DecodeLimits> = DEFAULT_DECODE_LIMITS,
): Uint8Array {
  for (const field of ["serial_number", "gtin", "batch_number", "machine_id"] as const) {
    if (typeof e[field] !== "string")
      throw new EncodeError(e[field] === undefined ? "missing_field" : "wrong_type", field, "expected a string");
  }
  const problem = tokenProblem(e.machine_id, limits.tokenBytesMax);
  if (problem !== null) throw new EncodeError("invalid_field", "machine_id", describeTokenProblem(problem, limits.tokenBytesMax));
  for (const field of ["production_timestamp", "received_timestamp"] as const) {
    const t = e[field];
    if (t === undefined && field === "received_timestamp") continue;
    try {
      decodeTimeField(t, field);
    } catch (error) {
      throw new EncodeError(
        (error as DecodeError).reason === "missing_field" ? "missing_field" : "bad_timestamp",
        field,
        (error as Error).message,
      );
    }
  }
  const out: Record<string, unknown> = {
    serial_number: e.serial_number,
    gtin: e.gtin,
    batch_number: e.batch_number,
    production_timestamp: e.production_timestamp,
    machine_id: e.machine_id,
  };
  if (e.operator_id !== undefined) out.operator_id = e.operator_id;
  if (e.received_timestamp !== undefined) out.received_timestamp = e.received_timestamp;
  if (e.event_type !== undefined) out.event_type = e.event_type;
  const bytes = format === "json" ? TEXT.encode(JSON.stringify(out)) : MSGPACK.encode(out);
  if (bytes.length > limits.recordBytesMax)
    throw new EncodeError("length_exceeded", "event", `encodes to ${bytes.length} bytes, over recordBytesMax (${limits.recordBytesMax})`);
  return bytes;
}

const TEXT = new TextEncoder();
const MSGPACK = new Encoder();
