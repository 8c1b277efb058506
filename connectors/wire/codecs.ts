/**
 * Wire codecs of sensor readings (DESIGN.md §4, issue 7 point 2): single records as MessagePack
 * (the default) or JSON with the source field names, and — re-exported from `frame-codec.ts` — the
 * columnar frame. This module is the codecs' public API; subjects and limits are re-exported too.
 *
 * Goals
 * - Every decoder is bounded: the message size is checked before anything is parsed, every
 *   declared length and the nesting depth before anything is allocated (`msgpack-scan.ts`).
 * - A decoded {@link SensorReading} is fully valid: required fields present and typed, the value
 *   finite, the time epoch ms, ids usable as subject tokens and equal to the subject's.
 * - Every rejection is a {@link DecodeError} with a countable `reason`, for the dead-letter router.
 * Non-goals: process events; transport. Serial events have their field rules in `serial-codec.ts`,
 * on the same bounded decode ({@link decodeFieldMap}).
 *
 * Field rules (both formats):
 * - `machine_id`, `sensor_type`: non-empty strings that are valid subject tokens.
 * - `timestamp`: epoch milliseconds as a number, or a string — ISO-8601 (no zone = UTC) or
 *   numeric epoch ms, as `engine/core/event-time.ts` reads them — or (MessagePack) the timestamp
 *   extension type −1. Within ±8.64e15 ms (the range of a JS Date).
 * - `sensor_value`: a number (MessagePack int or float, JSON number); NaN/±Inf are rejected —
 *   MessagePack carries them, JSON carries them as `1e999`. A numeric string is `wrong_type`.
 * - `sensor_unit`, `operating_mode`, `work_order_id`: optional strings; null means absent.
 * - Unknown fields are ignored (producers may add fields) but count against the limits.
 */
import { Decoder, Encoder } from "@msgpack/msgpack";
import { parseEventTime } from "../../engine/core/mod.js";
import { DEFAULT_DECODE_LIMITS, type DecodeLimits } from "./decode-limits.js";
import { DecodeError, EncodeError, SubjectError, type DecodeReason, type EncodeReason } from "../errors.js";
import { FRAME_MAGIC, TIME_ABS_MAX_MS } from "./frame-codec.js";
import { scanMsgpack } from "./msgpack-scan.js";
import { describeTokenProblem, parseSubject, tokenProblem, utf8Length, type SensorSubject } from "./subjects.js";

export * from "./decode-limits.js";
export * from "./frame-codec.js";
export * from "./subjects.js";
export { DECODE_REASONS, DecodeError, EncodeError, SubjectError, type DecodeReason, type EncodeReason } from "../errors.js";

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/** One decoded, valid sensor reading. */
export interface SensorReading {
  machine_id: string;
  sensor_type: string;
  /** Event time, epoch milliseconds. */
  timestamp: number;
  /** Finite. */
  sensor_value: number;
  sensor_unit?: string;
  operating_mode?: string;
  work_order_id?: string;
}

/** What the encoders take: a reading whose time may still be a string (the simulator's `SensorRecord` fits). */
export type SensorReadingInput = Omit<SensorReading, "timestamp"> & { timestamp: number | string };

export type PayloadFormat = "msgpack" | "json" | "frame";

export interface RecordDecodeOptions {
  /** Limits (default {@link DEFAULT_DECODE_LIMITS}); pass the result of `validateDecodeLimits`. */
  limits?: Readonly<DecodeLimits>;
  /**
   * The subject the message arrived on (a string, or parsed once by the caller and reused). When
   * given, the payload's machine and sensor must match its tokens (`subject_mismatch`), and a
   * subject that is not a sensor subject is `bad_subject`.
   */
  subject?: string | SensorSubject;
}

export interface RecordEncodeOptions {
  limits?: Readonly<DecodeLimits>;
  /** Write the time as epoch ms or ISO-8601 (`Date#toISOString`); default: as given. */
  timestamp?: "ms" | "iso";
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/**
 * Which decoder a payload needs, from its first bytes: the frame magic, else `{` or JSON
 * whitespace, else MessagePack. Unambiguous for valid input: a MessagePack record starts with a
 * map header (0x80–0x8f, 0xde, 0xdf), and `L`, `{` and whitespace are bare integers there.
 */
export function sniffPayload(bytes: Uint8Array): PayloadFormat {
  if (
    bytes.length >= 4 &&
    bytes[0] === FRAME_MAGIC[0] &&
    bytes[1] === FRAME_MAGIC[1] &&
    bytes[2] === FRAME_MAGIC[2] &&
    bytes[3] === FRAME_MAGIC[3]
  ) {
    return "frame";
  }
  const b = bytes.length > 0 ? bytes[0] : 0;
  return b === 0x7b || b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09 ? "json" : "msgpack";
}

/** A single MessagePack record; throws {@link DecodeError}. */
export function decodeMsgpackRecord(bytes: Uint8Array, options: RecordDecodeOptions = {}): SensorReading {
  const limits = options.limits ?? DEFAULT_DECODE_LIMITS;
  const subject = expectedSubject(options.subject, limits);
  checkSize(bytes, limits, subject);
  scanMsgpack(bytes, limits, subject?.text);
  let value: unknown;
  try {
    value = decoderFor(limits).decode(bytes);
  } catch (e) {
    // The scan admitted the structure, so what is left is content the library refuses: a map key
    // that is not a string or number, `__proto__`, a timestamp extension of a wrong size.
    throw new DecodeError("malformed", `MessagePack: ${(e as Error).message}`, { cause: e, subject: subject?.text });
  }
  return toReading(value, limits, subject, false);
}

/** A single JSON record (UTF-8); throws {@link DecodeError}. */
export function decodeJsonRecord(bytes: Uint8Array, options: RecordDecodeOptions = {}): SensorReading {
  const limits = options.limits ?? DEFAULT_DECODE_LIMITS;
  const subject = expectedSubject(options.subject, limits);
  checkSize(bytes, limits, subject);
  let value: unknown;
  try {
    value = JSON.parse(UTF8.decode(bytes));
  } catch (e) {
    const truncated = e instanceof SyntaxError && jsonEndsOpen(bytes);
    throw new DecodeError(truncated ? "truncated" : "malformed", `JSON: ${(e as Error).message}`, { cause: e, subject: subject?.text });
  }
  checkJsonLimits(value, limits, subject);
  return toReading(value, limits, subject, false);
}

/** A single record in either format, told apart by {@link sniffPayload}; a frame here is `malformed`. */
export function decodeRecord(bytes: Uint8Array, options: RecordDecodeOptions = {}): SensorReading {
  const format = sniffPayload(bytes);
  if (format === "json") return decodeJsonRecord(bytes, options);
  if (format === "msgpack") return decodeMsgpackRecord(bytes, options);
  throw new DecodeError("malformed", "a frame where a single record was expected", {
    subject: typeof options.subject === "string" ? options.subject : undefined,
  });
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/**
 * A reading as a MessagePack map with the source field names. Validates what the decoder would
 * reject, except a non-finite `sensor_value`, which MessagePack carries: a failed sensor's NaN
 * reaches the consumer and is dead-lettered there, visibly, rather than vanishing at the producer.
 * Throws {@link EncodeError}.
 */
export function encodeMsgpackRecord(reading: SensorReadingInput, options: RecordEncodeOptions = {}): Uint8Array {
  const limits = options.limits ?? DEFAULT_DECODE_LIMITS;
  const bytes = ENCODER.encode(wireObject(reading, limits, options.timestamp, true));
  return checkEncodedSize(bytes, limits);
}

/** A reading as a JSON object with the source field names. JSON has no NaN/Inf: those throw {@link EncodeError}. */
export function encodeJsonRecord(reading: SensorReadingInput, options: RecordEncodeOptions = {}): Uint8Array {
  const limits = options.limits ?? DEFAULT_DECODE_LIMITS;
  const bytes = TEXT.encode(JSON.stringify(wireObject(reading, limits, options.timestamp, false)));
  return checkEncodedSize(bytes, limits);
}

// ---------------------------------------------------------------------------------------------
// Other single-record kinds (serial events: connectors/wire/serial-codec.ts)
// ---------------------------------------------------------------------------------------------

/**
 * The bounded part of decoding any single record: the size, the MessagePack structure scan or
 * the JSON limits, then the plain map of fields — with the same reasons as a sensor record.
 * `subject` is only context for the errors. Throws {@link DecodeError}.
 */
export function decodeFieldMap(bytes: Uint8Array, limits: Readonly<DecodeLimits>, subject?: string): Record<string, unknown> {
  const expected = subject === undefined ? undefined : { text: subject, machineId: "" };
  checkSize(bytes, limits, expected);
  const format = sniffPayload(bytes);
  let value: unknown;
  if (format === "frame") throw new DecodeError("malformed", "a frame where a single record was expected", { subject });
  if (format === "msgpack") {
    scanMsgpack(bytes, limits, subject);
    try {
      value = decoderFor(limits).decode(bytes);
    } catch (e) {
      throw new DecodeError("malformed", `MessagePack: ${(e as Error).message}`, { cause: e, subject });
    }
  } else {
    try {
      value = JSON.parse(UTF8.decode(bytes));
    } catch (e) {
      const truncated = e instanceof SyntaxError && jsonEndsOpen(bytes);
      throw new DecodeError(truncated ? "truncated" : "malformed", `JSON: ${(e as Error).message}`, { cause: e, subject });
    }
    checkJsonLimits(value, limits, expected);
  }
  if (typeof value !== "object" || value === null || Object.getPrototypeOf(value) !== Object.prototype) {
    throw new DecodeError("not_a_record", `the message is ${describe(value)}, not a map of fields`, { subject });
  }
  return value as Record<string, unknown>;
}

/**
 * A time field by the rules of `timestamp` (epoch ms, ISO-8601 text, the MessagePack timestamp
 * extension; finite, within a Date's range). Throws {@link DecodeError} naming `field`.
 */
export function decodeTimeField(v: unknown, field: string, subject?: string): number {
  return timeField(
    v,
    (reason, f, message) => {
      throw new DecodeError(reason, `${f}: ${message}`, { field: f, subject });
    },
    field,
  );
}

/** How a value reads in an error message (`a string ("…")`, `an array`, `number 3`). */
export function describeValue(v: unknown): string {
  return describe(v);
}

// ---------------------------------------------------------------------------------------------
// Internals
// ---------------------------------------------------------------------------------------------

const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
const TEXT = new TextEncoder();
const ENCODER = new Encoder();
const decoders = new WeakMap<Readonly<DecodeLimits>, Decoder>();
/** Parsed subjects (or why they are bad), per limits: a source sees the same few thousand subjects over and over. */
const subjectCaches = new WeakMap<Readonly<DecodeLimits>, Map<string, Expected | DecodeError>>();
const SUBJECT_CACHE_MAX = 16_384;

/** A subject to check payloads against, with its text for error context. */
interface Expected {
  text: string;
  machineId: string;
  sensorType?: string;
}

/** One Decoder per limits object: its options are fixed at construction. */
function decoderFor(limits: Readonly<DecodeLimits>): Decoder {
  let d = decoders.get(limits);
  if (d === undefined) {
    d = new Decoder({
      maxStrLength: limits.stringBytesMax,
      maxBinLength: limits.binBytesMax,
      maxArrayLength: limits.arrayLengthMax,
      maxMapLength: limits.mapEntriesMax,
      maxExtLength: limits.extBytesMax,
    });
    decoders.set(limits, d);
  }
  return d;
}

function expectedSubject(subject: string | SensorSubject | undefined, limits: Readonly<DecodeLimits>): Expected | undefined {
  if (subject === undefined) return undefined;
  if (typeof subject !== "string")
    return { text: `sensor.${subject.machineId}${subject.sensorType === undefined ? "" : `.${subject.sensorType}`}`, ...subject };
  let cache = subjectCaches.get(limits);
  if (cache === undefined) subjectCaches.set(limits, (cache = new Map()));
  let known = cache.get(subject);
  if (known === undefined) {
    known = parseSensorSubject(subject, limits);
    // Bounded: a flood of distinct (bad) subjects resets the cache instead of growing it.
    if (cache.size >= SUBJECT_CACHE_MAX) cache.clear();
    cache.set(subject, known);
  }
  if (known instanceof DecodeError) throw new DecodeError(known.reason, known.detail, { cause: known.cause, subject });
  return known;
}

function parseSensorSubject(subject: string, limits: Readonly<DecodeLimits>): Expected | DecodeError {
  let parsed: ReturnType<typeof parseSubject>;
  try {
    parsed = parseSubject(subject, limits);
  } catch (e) {
    if (e instanceof SubjectError) return new DecodeError("bad_subject", e.message, { cause: e, subject });
    throw e;
  }
  if (parsed.kind !== "sensor") return new DecodeError("bad_subject", `a ${parsed.kind} subject carries no sensor readings`, { subject });
  return { text: subject, machineId: parsed.machineId, sensorType: parsed.sensorType };
}

function checkSize(bytes: Uint8Array, limits: Readonly<DecodeLimits>, subject: Expected | undefined): void {
  if (bytes.length > limits.recordBytesMax) {
    throw new DecodeError("too_large", `${bytes.length} bytes, recordBytesMax is ${limits.recordBytesMax}`, {
      limit: "recordBytesMax",
      subject: subject?.text,
    });
  }
  if (bytes.length === 0) throw new DecodeError("truncated", "empty message", { offset: 0, subject: subject?.text });
}

/**
 * JSON.parse output is linear in its input (checked ≤ recordBytesMax), so checking after parsing
 * is safe; this applies the same depth and length limits as the MessagePack scan. Recursion is
 * bounded by depthMax.
 */
function checkJsonLimits(root: unknown, limits: Readonly<DecodeLimits>, subject: Expected | undefined): void {
  const problem = jsonProblem(root, 0, limits);
  if (problem !== null) throw new DecodeError(problem.reason, problem.message, { limit: problem.limit, subject: subject?.text });
}

interface LimitProblem {
  reason: "too_deep" | "length_exceeded";
  limit: string;
  message: string;
}

function jsonProblem(v: unknown, depth: number, limits: Readonly<DecodeLimits>): LimitProblem | null {
  if (typeof v === "string") {
    return utf8Length(v, limits.stringBytesMax) > limits.stringBytesMax
      ? { reason: "length_exceeded", limit: "stringBytesMax", message: `a string is over stringBytesMax (${limits.stringBytesMax})` }
      : null;
  }
  if (typeof v !== "object" || v === null) return null;
  if (depth + 1 > limits.depthMax)
    return { reason: "too_deep", limit: "depthMax", message: `containers nested deeper than depthMax (${limits.depthMax})` };
  if (Array.isArray(v)) {
    if (v.length > limits.arrayLengthMax)
      return {
        reason: "length_exceeded",
        limit: "arrayLengthMax",
        message: `an array of ${v.length} is over arrayLengthMax (${limits.arrayLengthMax})`,
      };
    for (const x of v) {
      const p = jsonProblem(x, depth + 1, limits);
      if (p !== null) return p;
    }
    return null;
  }
  let entries = 0;
  for (const k in v) {
    if (++entries > limits.mapEntriesMax)
      return { reason: "length_exceeded", limit: "mapEntriesMax", message: `an object is over mapEntriesMax (${limits.mapEntriesMax})` };
    const p = jsonProblem(k, depth + 1, limits) ?? jsonProblem((v as Record<string, unknown>)[k], depth + 1, limits);
    if (p !== null) return p;
  }
  return null;
}

type Fail = (reason: DecodeReason & EncodeReason, field: string, message: string) => never;

/** The decoded value as a reading, or a DecodeError (subject, fields, finiteness). */
function toReading(value: unknown, limits: Readonly<DecodeLimits>, subject: Expected | undefined, allowNonFinite: boolean): SensorReading {
  const fail: Fail = (reason, field, message) => {
    throw new DecodeError(reason, `${field}: ${message}`, { field, subject: subject?.text });
  };
  // Both decoders build maps as plain objects; arrays, binaries, dates and ExtData are not records.
  if (typeof value !== "object" || value === null || Object.getPrototypeOf(value) !== Object.prototype) {
    throw new DecodeError("not_a_record", `the message is ${describe(value)}, not a map of fields`, { subject: subject?.text });
  }
  const reading = readFields(value as Record<string, unknown>, limits, fail, allowNonFinite, subject);
  if (subject !== undefined) {
    if (reading.machine_id !== subject.machineId) {
      throw new DecodeError("subject_mismatch", `machine_id "${reading.machine_id}" arrived on machine "${subject.machineId}"'s subject`, {
        field: "machine_id",
        subject: subject.text,
      });
    }
    if (subject.sensorType !== undefined && reading.sensor_type !== subject.sensorType) {
      throw new DecodeError(
        "subject_mismatch",
        `sensor_type "${reading.sensor_type}" arrived on sensor "${subject.sensorType}"'s subject`,
        { field: "sensor_type", subject: subject.text },
      );
    }
  }
  return reading;
}

/** The field rules of the module comment, shared by decoders (DecodeError) and encoders (EncodeError). */
function readFields(
  o: Record<string, unknown>,
  limits: Readonly<DecodeLimits>,
  fail: Fail,
  allowNonFinite: boolean,
  subject?: Expected,
): SensorReading {
  const reading: SensorReading = {
    machine_id: tokenField(o, "machine_id", limits, fail, subject?.machineId),
    sensor_type: tokenField(o, "sensor_type", limits, fail, subject?.sensorType),
    timestamp: timeField(o.timestamp, fail),
    sensor_value: valueField(o.sensor_value, fail, allowNonFinite),
  };
  optionalString(o, "sensor_unit", reading, limits, fail);
  optionalString(o, "operating_mode", reading, limits, fail);
  optionalString(o, "work_order_id", reading, limits, fail);
  return reading;
}

/** `known`: the subject's token, already validated — equal to it means valid, with no scan of the text. */
function tokenField(
  o: Record<string, unknown>,
  field: string,
  limits: Readonly<DecodeLimits>,
  fail: Fail,
  known: string | undefined,
): string {
  const v = o[field];
  if (known !== undefined && v === known) return known;
  if (v === undefined || v === null) fail("missing_field", field, "is missing");
  if (typeof v !== "string") return fail("wrong_type", field, `is ${describe(v)}, not a string`);
  const problem = tokenProblem(v, limits.tokenBytesMax);
  if (problem === null) return v;
  const text = `${JSON.stringify(v.slice(0, 80))} ${describeTokenProblem(problem, limits.tokenBytesMax)}`;
  return fail(problem === "too_long" ? "length_exceeded" : "invalid_field", field, text);
}

function timeField(v: unknown, fail: Fail, field = "timestamp"): number {
  let t: number;
  if (typeof v === "number") {
    if (!Number.isFinite(v)) fail("not_finite", field, `${v} is not finite`);
    t = v;
  } else if (typeof v === "string") {
    // Fast path for the `Date#toISOString` form producers send; Date.parse reads it exactly as
    // parseEventTime would (it ends up calling Date.parse on the same text), NaN falls through.
    const fast = isCanonicalIso(v) ? Date.parse(v) : NaN;
    const parsed = Number.isNaN(fast) ? parseEventTime(v, "ms") : fast;
    if (typeof parsed === "string") return fail("bad_timestamp", field, parsed);
    t = parsed;
  } else if (v instanceof Date) {
    t = v.getTime();
    if (Number.isNaN(t)) fail("bad_timestamp", field, "the timestamp extension is out of range");
  } else if (v === undefined || v === null) {
    return fail("missing_field", field, "is missing");
  } else {
    return fail("wrong_type", field, `is ${describe(v)}, not epoch ms or an ISO-8601 string`);
  }
  if (Math.abs(t) > TIME_ABS_MAX_MS) fail("bad_timestamp", field, `${t} ms is outside the date range (±${TIME_ABS_MAX_MS})`);
  return t;
}

/** `YYYY-MM-DDTHH:MM:SS.sssZ`, by its separators (the digits are Date.parse's to judge). */
function isCanonicalIso(v: string): boolean {
  return (
    v.length === 24 &&
    v.charCodeAt(23) === 0x5a &&
    v.charCodeAt(10) === 0x54 &&
    v.charCodeAt(4) === 0x2d &&
    v.charCodeAt(7) === 0x2d &&
    v.charCodeAt(13) === 0x3a &&
    v.charCodeAt(16) === 0x3a &&
    v.charCodeAt(19) === 0x2e
  );
}

function valueField(v: unknown, fail: Fail, allowNonFinite: boolean): number {
  if (typeof v === "number") {
    if (!allowNonFinite && !Number.isFinite(v)) fail("not_finite", "sensor_value", `${v} is not finite`);
    return v;
  }
  if (v === undefined || v === null) return fail("missing_field", "sensor_value", "is missing");
  return fail("wrong_type", "sensor_value", `is ${describe(v)}, not a number`);
}

function optionalString(
  o: Record<string, unknown>,
  field: "sensor_unit" | "operating_mode" | "work_order_id",
  into: SensorReading,
  limits: Readonly<DecodeLimits>,
  fail: Fail,
): void {
  const v = o[field];
  if (v === undefined || v === null) return;
  if (typeof v !== "string") fail("wrong_type", field, `is ${describe(v)}, not a string`);
  if (utf8Length(v as string, limits.stringBytesMax) > limits.stringBytesMax)
    fail("length_exceeded", field, `is over stringBytesMax (${limits.stringBytesMax})`);
  into[field] = v as string;
}

/** The object an encoder writes, fields in the source order, absent optionals left out. */
function wireObject(
  input: SensorReadingInput,
  limits: Readonly<DecodeLimits>,
  timeAs: "ms" | "iso" | undefined,
  allowNonFinite: boolean,
): Record<string, unknown> {
  const fail: Fail = (reason, field, message) => {
    throw new EncodeError(reason, field, message);
  };
  if (typeof input !== "object" || input === null) throw new EncodeError("wrong_type", "reading", `is ${describe(input)}, not an object`);
  const r = readFields(input as unknown as Record<string, unknown>, limits, fail, allowNonFinite);
  const time = timeAs === "ms" ? r.timestamp : timeAs === "iso" ? new Date(r.timestamp).toISOString() : input.timestamp;
  const out: Record<string, unknown> = {
    machine_id: r.machine_id,
    timestamp: time,
    sensor_type: r.sensor_type,
    sensor_value: r.sensor_value,
  };
  if (r.sensor_unit !== undefined) out.sensor_unit = r.sensor_unit;
  if (r.operating_mode !== undefined) out.operating_mode = r.operating_mode;
  if (r.work_order_id !== undefined) out.work_order_id = r.work_order_id;
  return out;
}

/**
 * Whether invalid JSON stopped inside a string or an open object/array — a cut-off message rather
 * than a garbled one. Decided from the bytes, not from the parser's (engine-specific) message.
 */
function jsonEndsOpen(bytes: Uint8Array): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (inString) {
      if (b === 0x5c)
        i++; // backslash: skip the escaped byte
      else if (b === 0x22) inString = false;
    } else if (b === 0x22) inString = true;
    else if (b === 0x7b || b === 0x5b) depth++;
    else if (b === 0x7d || b === 0x5d) depth--;
  }
  return inString || depth > 0;
}

function checkEncodedSize(bytes: Uint8Array, limits: Readonly<DecodeLimits>): Uint8Array {
  if (bytes.length > limits.recordBytesMax) {
    throw new EncodeError("length_exceeded", "reading", `encodes to ${bytes.length} bytes, over recordBytesMax (${limits.recordBytesMax})`);
  }
  return bytes;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (v instanceof Uint8Array) return "binary";
  if (v instanceof Date) return "a timestamp";
  if (typeof v === "object") return "a map";
  if (typeof v === "string") return `a string (${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)})`;
  return `${typeof v} ${String(v)}`;
}
