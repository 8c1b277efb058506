/**
 * Wire codec of the process and quality streams (DESIGN.md §4, docs/wire-formats.md): one record
 * per message, MessagePack (the default) or JSON, with the source field names —
 * a process reading on `lw.<site>.process.<line>`, a batch's quality outcome on
 * `lw.<site>.quality.<line>` (operators/quality/batch-record.ts has the records). Decoding is the
 * sensor records' bounded decode (size, structure, lengths, depth: codecs.ts `decodeFieldMap`)
 * followed by these field rules; every rejection is a {@link DecodeError} with a countable reason,
 * for the dead-letter router.
 *
 * Field rules (both formats; null means absent; unknown fields are ignored but count against the limits):
 * - `record_type`: optional; when present "process" or "quality", as the decoder expects (`invalid_field`).
 * - `line_id`: a valid subject token, equal to the subject's `<line>` (`subject_mismatch`).
 * - `work_order_id`, `batch_id`: non-empty strings.
 * - `timestamp` (and the quality record's optional `start_timestamp`): epoch ms, ISO-8601 text or
 *   the MessagePack timestamp extension, as the sensor records' `timestamp`.
 * - Process: `units_produced` an integer ≥ 0, `planned_units` an integer ≥ 1;
 *   `process_parameters` a map of finite numbers `temperature`, `humidity` (0–100), `pressure`,
 *   `speed` (≥ 0), `feed_rate` (≥ 0); `environmental_conditions` a map of finite numbers
 *   `ambient_temperature`, `ambient_humidity` (0–100) and a non-empty string `cleanroom_grade`;
 *   `material_properties` a map of non-empty strings `supplier`, `material_batch_number`.
 * - Quality: `units_produced` an integer ≥ 1; `first_pass_yield`, `defect_rate` finite numbers in
 *   [0, 1]; `defects` a map of integers ≥ 0 `packaging`, `labelling`, `serialization`, `other`
 *   whose sum is at most `units_produced`; optional `reworked_units` an integer ≥ 0.
 * NaN/±Inf is `not_finite`, a number of the wrong kind or range `invalid_field`, a string where a
 * number belongs (or a number where a map belongs) `wrong_type`, a required field absent `missing_field`.
 */
import { Encoder } from "@msgpack/msgpack";
import type { ProcessRecord, QualityRecord } from "../../operators/quality/mod.js";
import { decodeFieldMap, decodeTimeField, describeValue } from "./codecs.js";
import { DEFAULT_DECODE_LIMITS, type DecodeLimits } from "./decode-limits.js";
import { DecodeError, EncodeError, SubjectError, type DecodeReason } from "../errors.js";
import { describeTokenProblem, parseSubject, tokenProblem, utf8Length } from "./subjects.js";

export type { ProcessRecord, QualityRecord };

export interface BatchRecordDecodeOptions {
  limits?: Readonly<DecodeLimits>;
  /** The subject the message arrived on: it must be a subject of the record's kind (`bad_subject`) whose line is the record's (`subject_mismatch`). */
  subject?: string;
}

/** A process reading from its message bytes; throws {@link DecodeError}. */
export function decodeProcessRecord(bytes: Uint8Array, options: BatchRecordDecodeOptions = {}): ProcessRecord {
  const limits = options.limits ?? DEFAULT_DECODE_LIMITS;
  const line = subjectLine(options.subject, "process", limits);
  return processRecordFromFields(decodeFieldMap(bytes, limits, options.subject), limits, options.subject, line);
}

/** A quality outcome from its message bytes; throws {@link DecodeError}. */
export function decodeQualityRecord(bytes: Uint8Array, options: BatchRecordDecodeOptions = {}): QualityRecord {
  const limits = options.limits ?? DEFAULT_DECODE_LIMITS;
  const line = subjectLine(options.subject, "quality", limits);
  return qualityRecordFromFields(decodeFieldMap(bytes, limits, options.subject), limits, options.subject, line);
}

/** The field rules of a process reading over an already decoded map (a file line's JSON object). */
export function processRecordFromFields(
  o: Record<string, unknown>,
  limits: Readonly<DecodeLimits> = DEFAULT_DECODE_LIMITS,
  subject?: string,
  line?: string,
): ProcessRecord {
  const f = new FieldRules(limits, subject);
  f.recordType(o, "process");
  const p = f.map(o, "process_parameters");
  const e = f.map(o, "environmental_conditions");
  const m = f.map(o, "material_properties");
  return {
    line_id: f.line(o, line),
    work_order_id: f.text(o, "work_order_id"),
    batch_id: f.text(o, "batch_id"),
    timestamp: decodeTimeField(o.timestamp, "timestamp", subject),
    units_produced: f.integer(o, "units_produced", 0),
    planned_units: f.integer(o, "planned_units", 1),
    process_parameters: {
      temperature: f.number(p, "process_parameters.temperature"),
      humidity: f.number(p, "process_parameters.humidity", 0, 100),
      pressure: f.number(p, "process_parameters.pressure"),
      speed: f.number(p, "process_parameters.speed", 0),
      feed_rate: f.number(p, "process_parameters.feed_rate", 0),
    },
    environmental_conditions: {
      ambient_temperature: f.number(e, "environmental_conditions.ambient_temperature"),
      ambient_humidity: f.number(e, "environmental_conditions.ambient_humidity", 0, 100),
      cleanroom_grade: f.text(e, "environmental_conditions.cleanroom_grade"),
    },
    material_properties: {
      supplier: f.text(m, "material_properties.supplier"),
      material_batch_number: f.text(m, "material_properties.material_batch_number"),
    },
  };
}

/** The field rules of a quality outcome over an already decoded map. */
export function qualityRecordFromFields(
  o: Record<string, unknown>,
  limits: Readonly<DecodeLimits> = DEFAULT_DECODE_LIMITS,
  subject?: string,
  line?: string,
): QualityRecord {
  const f = new FieldRules(limits, subject);
  f.recordType(o, "quality");
  const d = f.map(o, "defects");
  const units = f.integer(o, "units_produced", 1);
  const record: QualityRecord = {
    line_id: f.line(o, line),
    work_order_id: f.text(o, "work_order_id"),
    batch_id: f.text(o, "batch_id"),
    timestamp: decodeTimeField(o.timestamp, "timestamp", subject),
    units_produced: units,
    first_pass_yield: f.number(o, "first_pass_yield", 0, 1),
    defect_rate: f.number(o, "defect_rate", 0, 1),
    defects: {
      packaging: f.integer(d, "defects.packaging", 0),
      labelling: f.integer(d, "defects.labelling", 0),
      serialization: f.integer(d, "defects.serialization", 0),
      other: f.integer(d, "defects.other", 0),
    },
  };
  const c = record.defects;
  if (c.packaging + c.labelling + c.serialization + c.other > units)
    f.fail("invalid_field", "defects", `add up to more than units_produced (${units})`);
  if (o.start_timestamp !== undefined && o.start_timestamp !== null)
    record.start_timestamp = decodeTimeField(o.start_timestamp, "start_timestamp", subject);
  if (o.reworked_units !== undefined && o.reworked_units !== null) record.reworked_units = f.integer(o, "reworked_units", 0);
  return record;
}

/**
 * A process reading as one message (MessagePack by default, or JSON), times as epoch ms, with
 * `record_type`. Checks what the decoder would reject and throws {@link EncodeError}.
 */
export function encodeProcessRecord(
  r: ProcessRecord,
  format: "msgpack" | "json" = "msgpack",
  limits: Readonly<DecodeLimits> = DEFAULT_DECODE_LIMITS,
): Uint8Array {
  const out = { record_type: "process", ...r };
  checkEncodable(() => processRecordFromFields(out as unknown as Record<string, unknown>, limits));
  return finishEncoding(out, format, limits);
}

/** A quality outcome as one message, with `record_type`; throws {@link EncodeError}. Fields beyond the record's (the simulator's `expected`) are left out. */
export function encodeQualityRecord(
  q: QualityRecord,
  format: "msgpack" | "json" = "msgpack",
  limits: Readonly<DecodeLimits> = DEFAULT_DECODE_LIMITS,
): Uint8Array {
  const out: Record<string, unknown> = {
    record_type: "quality",
    line_id: q.line_id,
    work_order_id: q.work_order_id,
    batch_id: q.batch_id,
    timestamp: q.timestamp,
    units_produced: q.units_produced,
    first_pass_yield: q.first_pass_yield,
    defect_rate: q.defect_rate,
    defects: q.defects,
  };
  if (q.start_timestamp !== undefined) out.start_timestamp = q.start_timestamp;
  if (q.reworked_units !== undefined) out.reworked_units = q.reworked_units;
  checkEncodable(() => qualityRecordFromFields(out, limits));
  return finishEncoding(out, format, limits);
}

// ---- internals ----

const TEXT = new TextEncoder();
const MSGPACK = new Encoder();

function subjectLine(subject: string | undefined, kind: "process" | "quality", limits: Readonly<DecodeLimits>): string | undefined {
  if (subject === undefined) return undefined;
  try {
    const parsed = parseSubject(subject, limits);
    if (parsed.kind !== kind) throw new SubjectError(subject, `a ${parsed.kind} subject on the ${kind} input`);
    return parsed.line;
  } catch (e) {
    if (e instanceof SubjectError) throw new DecodeError("bad_subject", e.message, { cause: e, subject });
    throw e;
  }
}

/** The field rules, each failing with a DecodeError naming the field. */
class FieldRules {
  constructor(
    private readonly limits: Readonly<DecodeLimits>,
    private readonly subject: string | undefined,
  ) {}

  fail(reason: DecodeReason, field: string, message: string): never {
    throw new DecodeError(reason, `${field}: ${message}`, { field, subject: this.subject });
  }

  recordType(o: Record<string, unknown>, kind: string): void {
    const v = o.record_type;
    if (v !== undefined && v !== null && v !== kind)
      this.fail("invalid_field", "record_type", `is ${describeValue(v)}, this input takes "${kind}" records`);
  }

  line(o: Record<string, unknown>, expected: string | undefined): string {
    const v = this.text(o, "line_id");
    const problem = tokenProblem(v, this.limits.tokenBytesMax);
    if (problem !== null)
      this.fail(
        problem === "too_long" ? "length_exceeded" : "invalid_field",
        "line_id",
        `${JSON.stringify(v.slice(0, 80))} ${describeTokenProblem(problem, this.limits.tokenBytesMax)}`,
      );
    if (expected !== undefined && v !== expected)
      throw new DecodeError("subject_mismatch", `line_id "${v}" arrived on line "${expected}"'s subject`, {
        field: "line_id",
        subject: this.subject,
      });
    return v;
  }

  map(o: Record<string, unknown>, field: string): Record<string, unknown> {
    const v = o[field];
    if (v === undefined || v === null) return this.fail("missing_field", field, "is missing");
    if (typeof v !== "object" || Array.isArray(v) || Object.getPrototypeOf(v) !== Object.prototype)
      return this.fail("wrong_type", field, `is ${describeValue(v)}, not a map`);
    return v as Record<string, unknown>;
  }

  text(o: Record<string, unknown>, path: string): string {
    const v = o[path.slice(path.lastIndexOf(".") + 1)];
    if (v === undefined || v === null) return this.fail("missing_field", path, "is missing");
    if (typeof v !== "string") return this.fail("wrong_type", path, `is ${describeValue(v)}, not a string`);
    if (v.length === 0) return this.fail("invalid_field", path, "is empty");
    if (utf8Length(v, this.limits.stringBytesMax) > this.limits.stringBytesMax)
      return this.fail("length_exceeded", path, `is over stringBytesMax (${this.limits.stringBytesMax})`);
    return v;
  }

  number(o: Record<string, unknown>, path: string, min = -Infinity, max = Infinity): number {
    const v = o[path.slice(path.lastIndexOf(".") + 1)];
    if (v === undefined || v === null) return this.fail("missing_field", path, "is missing");
    if (typeof v !== "number") return this.fail("wrong_type", path, `is ${describeValue(v)}, not a number`);
    if (!Number.isFinite(v)) return this.fail("not_finite", path, `${v} is not finite`);
    if (v < min || v > max) return this.fail("invalid_field", path, `${v} is outside [${min}, ${max}]`);
    return v;
  }

  integer(o: Record<string, unknown>, path: string, min: number): number {
    const v = this.number(o, path, min);
    if (!Number.isSafeInteger(v)) this.fail("invalid_field", path, `${v} is not an integer`);
    return v;
  }
}

/** Runs the decoder's rules on what is about to be encoded; a rejection becomes an {@link EncodeError}. */
function checkEncodable(rules: () => unknown): void {
  try {
    rules();
  } catch (error) {
    if (!(error instanceof DecodeError)) throw error;
    const reason = error.reason;
    const encodeReason =
      reason === "missing_field" ||
      reason === "wrong_type" ||
      reason === "not_finite" ||
      reason === "bad_timestamp" ||
      reason === "length_exceeded"
        ? reason
        : "invalid_field";
    throw new EncodeError(encodeReason, error.field ?? "record", error.detail);
  }
}

function finishEncoding(out: object, format: "msgpack" | "json", limits: Readonly<DecodeLimits>): Uint8Array {
  const bytes = format === "json" ? TEXT.encode(JSON.stringify(out)) : MSGPACK.encode(out);
  if (bytes.length > limits.recordBytesMax)
    throw new EncodeError("length_exceeded", "record", `encodes to ${bytes.length} bytes, over recordBytesMax (${limits.recordBytesMax})`);
  return bytes;
}
