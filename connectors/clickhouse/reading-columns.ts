/**
 * ml_sensor_data and ml_scores rows as RowBinary straight from one batch's columns — times,
 * values, positions, key ids, label ids and each analysis's output rows (an engine OutputChunk
 * holds exactly these) — without a row object or a line of text per record. Pure functions of
 * their arguments: an ingest worker thread encodes its batches and hands the bytes to
 * ClickHouseSink.insertEncoded on the main thread.
 *
 * The rows equal what engine/jobs/outputs.ts writes through the row objects (Outputs.record →
 * ScoreRow / SensorDataRow → schema.ts) for the same records, column for column, except that the
 * statistics are the kernels' exact doubles where the row objects carry them rounded to 15
 * significant digits (operators/analysis.ts statisticValue). Every rule is kept: NaN/±Infinity and
 * statistics an analysis has not defined yet are NULL, masks and alarms 0 without SPC limits, the
 * rule masks cut to the key's rules, no isolation-forest score when a feature is undefined, the
 * rows a table's rules refuse are not written but returned with the same EncodeError. The column
 * order is the declaration's (schema.ts); test/clickhouse-row-binary.test.ts checks the bytes
 * against it.
 */
import { ROLLING_FIELDS } from "../../operators/rolling/mod.js";
import { MR_RULES, type RuleSelection, SPC_COL } from "../../operators/spc/mod.js";
import { EncodeError } from "../errors.js";
import { encodeRowBinaryString, type EncodedRows, RowBinaryWriter } from "./row-binary.js";
import { isDateTimeMs } from "./schema.js";

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/** One batch of readings as columns (the first `length` entries of each). */
export interface ReadingColumns {
  length: number;
  keyIds: Uint32Array;
  /** Event times, epoch ms. */
  times: Float64Array;
  values: Float64Array;
  /** Source positions: the rows' `seq`. */
  positions: Float64Array;
  /**
   * The records' label ids (engine/jobs/record-labels.ts: the interned sensor_unit,
   * operating_mode, work_order_id), 4 bytes little-endian each as the engine carries them in its
   * payload; absent or empty when the run has none (then every id is 0, "none").
   */
  labels?: Uint8Array;
}

/** A batch of scored readings: the readings and each analysis's output rows. */
export interface ScoreColumns extends ReadingColumns {
  /** Per analysis, `length` rows of `outFields[k]` f64 (the engine's OutputChunk.outs). */
  outs: readonly Float64Array[];
  outFields: readonly number[];
}

/** A key's names, encoded once as RowBinary Strings ({@link keyNames}). */
export interface KeyNames {
  /** machine_id, sensor_type and (a key by operating mode) the mode, as given. */
  parts: readonly string[];
  machineId: Uint8Array | null;
  sensorType: Uint8Array | null;
  /** The key's operating mode; null: the record's own (its label's), else "". */
  mode: Uint8Array | null;
}

/** A label's (sensor_unit, operating_mode, work_order_id), each encoded once ("" when absent). */
export interface LabelNames {
  unit: Uint8Array;
  mode: Uint8Array;
  workOrder: Uint8Array;
}

/** Where each analysis's output row is in a batch, and the settings its rows depend on. */
export interface ScoreLayout {
  /** The rolling analysis; `minCount`: records a key's window needs before its statistics are defined (operators/rolling rollingMinCount). */
  rolling?: { index: number; minCount: number };
  /** The SPC analysis; `ewmaField` as its options name the EWMA member ("spc_ewma" beside rolling). */
  spc?: { index: number; ewmaField: "ewma" | "spc_ewma" };
  /** The isolation forest; `features`: the model's feature count (its output row: features, score, …). */
  iforest?: { index: number; features: number };
}

export interface ReadingEncodeOptions {
  /** Per key id. */
  keys: readonly (KeyNames | undefined)[];
  /** Per label id (id 0, "none", needs no entry). */
  labels?: readonly (LabelNames | undefined)[];
  /** Reused across batches to keep its grown buffer; a new one when absent. */
  writer?: RowBinaryWriter;
}

/** The rule masks a key keeps (operators/spc RuleSelection): bit r − 1 of each for rule r of its family. */
export type KeyRules = Pick<RuleSelection, "we" | "nelson" | "mr">;

export interface ScoreEncodeOptions {
  keys: readonly (KeyNames | undefined)[];
  layout: ScoreLayout;
  /**
   * Per key id, the SPC rules the key has (spcAnalysis `rulesOf`): what its `observe` keeps of
   * the kernel's masks. Undefined (for the array or a key): every rule, the masks as they are.
   */
  spcRules?: readonly (KeyRules | undefined)[];
  /** The model that scored this batch (IforestAnalysis.activeHash), encoded; required with an isolation forest. */
  modelHash?: Uint8Array;
  /** The audit record's constants of the run (kernel_hash, config_hash), encoded; absent: both "". */
  audit?: AuditColumns;
  writer?: RowBinaryWriter;
}

/** kernel_hash and config_hash of every row of a run, encoded once ({@link auditColumns}). */
export interface AuditColumns {
  kernelHash: Uint8Array;
  configHash: Uint8Array;
}

/** The audit columns of a run, encoded once: a row costs two copies of 65 bytes. */
export function auditColumns(kernelHash: string, configHash: string): AuditColumns {
  return { kernelHash: encodeRowBinaryString(kernelHash), configHash: encodeRowBinaryString(configHash) };
}

/** A record whose row the table's rules refuse: not written; for the dead-letter output. */
export interface RejectedRow {
  /** Index of the record in the batch. */
  index: number;
  /** The record as JSON (key names, time, seq, value), for a person. */
  line: string;
  error: EncodeError;
}

export interface ColumnEncoding {
  rows: EncodedRows;
  rejected: RejectedRow[];
}

/** A key's names, encoded: `parts` are machine_id, sensor_type and, for a key by mode, the operating mode. */
export function keyNames(parts: readonly string[]): KeyNames {
  const at = (i: number) => (typeof parts[i] === "string" ? encodeRowBinaryString(parts[i]) : null);
  return { parts, machineId: at(0), sensorType: at(1), mode: at(2) };
}

/** A label's names, encoded (RecordLabels.get's triple). */
export function labelNames(triple: readonly [string | undefined, string | undefined, string | undefined]): LabelNames {
  return {
    unit: encodeRowBinaryString(triple[0] ?? ""),
    mode: encodeRowBinaryString(triple[1] ?? ""),
    workOrder: encodeRowBinaryString(triple[2] ?? ""),
  };
}

/** The batch's ml_sensor_data rows. */
export function encodeSensorDataColumns(batch: ReadingColumns, o: ReadingEncodeOptions): ColumnEncoding {
  const w = o.writer ?? new RowBinaryWriter(batch.length * 64 + 64);
  w.reset();
  const rejected: RejectedRow[] = [];
  const labels = batch.labels !== undefined && batch.labels.length > 0 ? batch.labels : null;
  for (let i = 0; i < batch.length; i++) {
    const key = keyOf(o.keys, batch.keyIds[i]);
    try {
      writeReading(w, key, batch.times[i], batch.values[i], "sensor_value");
      const label = labels === null ? undefined : o.labels?.[labelId(labels, i)];
      w.raw(label?.unit ?? EMPTY);
      w.raw(key.mode ?? label?.mode ?? EMPTY);
      w.raw(label?.workOrder ?? EMPTY);
      w.uint64(seqOf(batch.positions[i]));
      w.uint64(0); // version
      w.endRow();
    } catch (error) {
      reject(w, rejected, error, i, key, batch);
    }
  }
  return { rows: w.finish(), rejected };
}

/** The batch's ml_scores rows. */
export function encodeScoreColumns(batch: ScoreColumns, o: ScoreEncodeOptions): ColumnEncoding {
  const w = o.writer ?? new RowBinaryWriter(batch.length * 256 + 64);
  w.reset();
  const rejected: RejectedRow[] = [];
  const plan = scorePlan(batch, o);
  for (let i = 0; i < batch.length; i++) {
    const keyId = batch.keyIds[i];
    const key = keyOf(o.keys, keyId);
    try {
      writeReading(w, key, batch.times[i], batch.values[i], null);
      w.uint64(seqOf(batch.positions[i]));
      w.float64(finiteOrThrow(batch.values[i], "value"));
      const spcEwma = plan.spc === null ? null : spcEwmaOf(plan.spc, i);
      writeRolling(w, plan, i, spcEwma);
      const limitsVersion = writeSpc(w, plan, i, o.spcRules?.[keyId], spcEwma);
      writeIforest(w, plan, i);
      w.raw(plan.audit.kernelHash);
      w.raw(plan.audit.configHash);
      w.uint64(limitsVersion); // version: a re-scoring with newer limits wins
      w.endRow();
    } catch (error) {
      reject(w, rejected, error, i, key, batch);
    }
  }
  return { rows: w.finish(), rejected };
}

// ---------------------------------------------------------------------------------------------
// Internals (the rules are shared with the Native encoders, native-columns.ts)
// ---------------------------------------------------------------------------------------------

/** A RowBinary String of no bytes (a Native String cell is the same bytes). */
export const EMPTY = encodeRowBinaryString("");
/** Where ml_scores' rolling columns are in a rolling output row (operators/rolling ROLLING_FIELDS). */
export const ROLLING = Object.fromEntries(ROLLING_FIELDS.map((f, i) => [f, i])) as {
  readonly [F in (typeof ROLLING_FIELDS)[number]]: number;
};
/** mean, std, std_pop, min, max, slope: the rolling columns between count and ewma, in table order. */
export const ROLLING_MIDDLE = [ROLLING.mean, ROLLING.std, ROLLING.std_pop, ROLLING.min, ROLLING.max, ROLLING.slope];
export const S = SPC_COL;

/** One analysis's rows in the batch: `rows[i * fields + k]` is field k of record i. */
export interface Rows {
  rows: Float64Array;
  fields: number;
}

export interface ScorePlan {
  rolling: (Rows & { minCount: number }) | null;
  spc: (Rows & { ewmaField: "ewma" | "spc_ewma" }) | null;
  iforest: (Rows & { features: number; hash: Uint8Array }) | null;
  /** Which analysis the `ewma` column comes from: the one written last under that name, as in the row objects' merged members. */
  ewmaFromSpc: boolean;
  audit: AuditColumns;
}

const NO_AUDIT: AuditColumns = { kernelHash: EMPTY, configHash: EMPTY };

export function scorePlan(batch: ScoreColumns, o: Pick<ScoreEncodeOptions, "layout" | "modelHash" | "audit">): ScorePlan {
  const rowsOf = (index: number): Rows => {
    if (!(index >= 0 && index < batch.outs.length)) throw new RangeError(`no analysis output ${index} in the batch`);
    return { rows: batch.outs[index], fields: batch.outFields[index] };
  };
  const { rolling, spc, iforest } = o.layout;
  if (iforest !== undefined && o.modelHash === undefined) throw new RangeError("an isolation-forest layout needs the batch's modelHash");
  return {
    rolling: rolling === undefined ? null : { ...rowsOf(rolling.index), minCount: rolling.minCount },
    spc: spc === undefined ? null : { ...rowsOf(spc.index), ewmaField: spc.ewmaField },
    iforest: iforest === undefined ? null : { ...rowsOf(iforest.index), features: iforest.features, hash: o.modelHash as Uint8Array },
    ewmaFromSpc: spc?.ewmaField === "ewma" && (rolling === undefined || spc.index > rolling.index),
    audit: o.audit ?? NO_AUDIT,
  };
}

export function keyOf(keys: readonly (KeyNames | undefined)[], id: number): KeyNames {
  const key = keys[id];
  if (key === undefined) throw new RangeError(`key id ${id} has no names in the table given`);
  return key;
}

export function labelId(labels: Uint8Array, i: number): number {
  const at = 4 * i;
  return (labels[at] | (labels[at + 1] << 8) | (labels[at + 2] << 16) | (labels[at + 3] << 24)) >>> 0;
}

/** machine_id, sensor_type, timestamp, timestamp_ms, and (`valueColumn` given) the value: the columns both tables start with. */
function writeReading(w: RowBinaryWriter, key: KeyNames, time: number, value: number, valueColumn: string | null): void {
  checkKey(key);
  w.raw(key.machineId as Uint8Array);
  w.raw(key.sensorType as Uint8Array);
  checkTime(time);
  const ms = Math.floor(time);
  w.dateTime(Math.floor(ms / 1000));
  w.uint64(ms);
  if (valueColumn !== null) w.float64(finiteOrThrow(value, valueColumn));
}

/** A key without machine_id or sensor_type names no row: EncodeError. */
export function checkKey(key: KeyNames): void {
  if (key.machineId === null) throw new EncodeError("missing_field", "machine_id", "expected a string");
  if (key.sensorType === null) throw new EncodeError("missing_field", "sensor_type", "expected a string");
}

/** A reading's time must fit DateTime (and so its `_ms` column): EncodeError otherwise. */
export function checkTime(time: number): void {
  if (!Number.isFinite(time)) throw new EncodeError("bad_timestamp", "timestamp", `not a finite epoch-ms number: ${time}`);
  if (!isDateTimeMs(time)) throw new EncodeError("bad_timestamp", "timestamp", `${time} is outside DateTime's range (1970 … 2106)`);
}

export function finiteOrThrow(v: number, field: string): number {
  if (!Number.isFinite(v)) throw new EncodeError("not_finite", field, String(v));
  return v;
}

export function seqOf(position: number): number {
  finiteOrThrow(position, "seq");
  if (!Number.isSafeInteger(position) || position < 0)
    throw new EncodeError("invalid_field", "seq", `not a non-negative integer: ${position}`);
  return position;
}

/** Whether record i has SPC limits: its statistics are defined (else they are NULL, masks and alarms 0). */
export function hasLimits(spc: Rows, i: number): boolean {
  const b = i * spc.fields;
  return spc.rows[b + S.limits_version] > 0 && Number.isFinite(spc.rows[b + S.cl]);
}

/** The SPC EWMA of record i, null when undefined. */
export function spcEwmaOf(spc: Rows, i: number): number | null {
  if (!hasLimits(spc, i)) return null;
  const v = spc.rows[i * spc.fields + S.ewma];
  return Number.isFinite(v) ? v : null;
}

/** count, mean, std, std_pop, min, max, slope, ewma, z. */
function writeRolling(w: RowBinaryWriter, plan: ScorePlan, i: number, spcEwma: number | null): void {
  const r = plan.rolling;
  const b = r === null ? 0 : i * r.fields;
  // A window not yet full (operators/rolling rowFields): every statistic NULL, count too.
  const defined = r !== null && !(r.rows[b + ROLLING.count] < r.minCount);
  if (!defined) {
    for (let k = 0; k < 7; k++) w.isNull(true);
    w.nullableFloat64(plan.ewmaFromSpc ? spcEwma : null);
    w.isNull(true);
    return;
  }
  const count = r.rows[b + ROLLING.count];
  if (!Number.isFinite(count)) w.isNull(true);
  else {
    checkCount(count);
    w.isNull(false);
    w.uint32(count);
  }
  for (const k of ROLLING_MIDDLE) w.nullableFloat64(r.rows[b + k]);
  w.nullableFloat64(plan.ewmaFromSpc ? spcEwma : r.rows[b + ROLLING.ewma]);
  w.nullableFloat64(r.rows[b + ROLLING.z]);
}

/** cl … limits_version; returns limits_version (also the row's version). */
function writeSpc(w: RowBinaryWriter, plan: ScorePlan, i: number, rules: KeyRules | undefined, spcEwma: number | null): number {
  const s = plan.spc;
  if (s === null || !hasLimits(s, i)) {
    for (let k = 0; k < 5; k++) w.isNull(true); // cl, ucl, lcl, sigma, zone
    w.uint8(0);
    w.uint8(0);
    w.uint8(0);
    w.isNull(true);
    w.isNull(true);
    w.uint8(0);
    // spc_ewma: SPC's own member, or without rolling the `ewma` SPC wrote (outputs.ts scoreRow).
    w.isNull(true);
    w.isNull(true);
    w.isNull(true);
    w.uint8(0);
    const version = s === null ? 0 : s.rows[i * s.fields + S.limits_version] || 0;
    return limitsVersionOf(w, version);
  }
  const row = s.rows;
  const b = i * s.fields;
  w.nullableFloat64(row[b + S.cl]);
  w.nullableFloat64(row[b + S.ucl]);
  w.nullableFloat64(row[b + S.lcl]);
  w.nullableFloat64(row[b + S.sigma]);
  const zone = row[b + S.zone];
  if (!Number.isFinite(zone)) w.isNull(true);
  else {
    checkZone(zone);
    w.isNull(false);
    w.int8(zone);
  }
  const we = ruleMask(row[b + S.we_mask], rules?.we);
  checkWeMask(we);
  w.uint8(we);
  w.uint8(ruleMask(row[b + S.nelson_mask], rules?.nelson));
  w.uint8(mrMask(row[b + S.mr_mask], rules?.mr));
  w.nullableFloat64(row[b + S.cusum_pos]);
  w.nullableFloat64(row[b + S.cusum_neg]);
  w.uint8(row[b + S.cusum_alarm] === 1 ? 1 : 0);
  w.nullableFloat64(s.ewmaField === "spc_ewma" || plan.rolling === null ? spcEwma : null);
  w.nullableFloat64(row[b + S.ewma_ucl]);
  w.nullableFloat64(row[b + S.ewma_lcl]);
  w.uint8(row[b + S.ewma_alarm] === 1 ? 1 : 0);
  return limitsVersionOf(w, row[b + S.limits_version]);
}

/** A defined count must be a UInt32. */
export function checkCount(count: number): void {
  if (!(Number.isInteger(count) && count >= 0 && count <= 0xffffffff))
    throw new EncodeError("invalid_field", "count", `not a UInt32: ${count}`);
}

/** A defined zone must be an Int8. */
export function checkZone(zone: number): void {
  if (!(Number.isInteger(zone) && zone >= -128 && zone <= 127)) throw new EncodeError("invalid_field", "zone", `not an Int8: ${zone}`);
}

/** Western Electric has rules 1–4. */
export function checkWeMask(we: number): void {
  if (we > 0x0f) throw new EncodeError("invalid_field", "we_mask", `bits outside 0xf: ${we}`);
}

/** A kernel's rule mask as the row objects store it: cut to the key's rules (spc observe), rules 1–8 of it, 0 when none fired. */
export function ruleMask(mask: number, allowed: number | undefined): number {
  const m = allowed !== undefined && Number.isFinite(mask) ? mask & allowed : mask;
  return m > 0 ? m & 0xff : 0;
}

/** JUMP | NOISY | STUCK: the bits of mr_mask that name a rule. */
const MR_BITS = MR_RULES.reduce((bits, r) => bits | r.bit, 0);

/**
 * A kernel's moving-range mask as the row objects store it: cut to the key's rules, the bits of
 * MR_RULES only (the NDJSON `mr` names them, operators/spc/spc.ts), 0 when none fired.
 */
export function mrMask(mask: number, allowed: number | undefined): number {
  return ruleMask(mask, allowed) & MR_BITS;
}

function limitsVersionOf(w: RowBinaryWriter, version: number): number {
  checkLimitsVersion(version);
  w.uint32(version);
  return version;
}

/** limits_version (also the row's version) must be a UInt32. */
export function checkLimitsVersion(version: number): void {
  finiteOrThrow(version, "limits_version");
  if (!Number.isSafeInteger(version) || version < 0 || version > 0xffffffff)
    throw new EncodeError("invalid_field", "limits_version", `not a UInt32: ${version}`);
}

/** iforest_score and model_hash: none when a feature of the record is undefined (iforest observe) or there is no forest. */
function writeIforest(w: RowBinaryWriter, plan: ScorePlan, i: number): void {
  const f = plan.iforest;
  if (f === null) {
    w.isNull(true);
    w.raw(EMPTY);
    return;
  }
  const b = i * f.fields;
  let score = f.rows[b + f.features];
  for (let k = 0; k < f.features; k++) if (!Number.isFinite(f.rows[b + k])) score = Number.NaN;
  if (!Number.isFinite(score)) {
    w.isNull(true);
    w.raw(EMPTY);
    return;
  }
  w.nullableFloat64(score);
  w.raw(f.hash);
}

function reject(w: RowBinaryWriter, rejected: RejectedRow[], error: unknown, i: number, key: KeyNames, batch: ReadingColumns): void {
  w.abortRow();
  rejected.push(rejectedRow(error, i, key, batch));
}

/** Record i refused with `error` (rethrown unless an EncodeError: anything else is a bug). */
export function rejectedRow(error: unknown, i: number, key: KeyNames, batch: ReadingColumns): RejectedRow {
  if (!(error instanceof EncodeError)) throw error;
  const line = JSON.stringify({
    machine_id: key.parts[0] ?? null,
    sensor_type: key.parts[1] ?? null,
    timestamp: batch.times[i],
    seq: batch.positions[i],
    value: batch.values[i],
  });
  return { index: i, line, error };
}
