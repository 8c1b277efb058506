/**
 * ml_sensor_data and ml_scores as one Native block per batch, straight from the batch's columns:
 * the inputs of encodeSensorDataColumns / encodeScoreColumns (reading-columns.ts), the same row
 * values — every NULL, mask, derived field, and the same refused rows with the same EncodeError —
 * written column by column: a Float64 statistic is one strided gather from the engine's row-major
 * output rows into a scratch column, copied into the block in one piece. Pure functions of their
 * arguments, for an ingest worker's thread.
 *
 * The block's columns — names, types, order — are the table's declaration (schema.ts); each
 * column's data comes from the writer of that name below, and loading this module fails if a
 * declared column has no writer of its type. test/clickhouse-native.test.ts checks the rows
 * against the RowBinary encoders' for random and adversarial batches.
 */
import { columnHeader, type NativeBlock, NativeWriter } from "./native.js";
import {
  checkCount,
  checkKey,
  checkLimitsVersion,
  checkTime,
  checkWeMask,
  checkZone,
  EMPTY,
  finiteOrThrow,
  hasLimits,
  type KeyNames,
  type KeyRules,
  keyOf,
  type LabelNames,
  labelId,
  type ReadingColumns,
  type ReadingEncodeOptions,
  type RejectedRow,
  ROLLING,
  ROLLING_MIDDLE,
  type Rows,
  mrMask,
  rejectedRow,
  ruleMask,
  S,
  type ScoreColumns,
  type ScoreEncodeOptions,
  type ScorePlan,
  scorePlan,
  seqOf,
  spcEwmaOf,
} from "./reading-columns.js";
import { type ColumnSpec, columnTypeName } from "./row-binary.js";
import { TABLE_SCHEMAS } from "./schema.js";

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

export interface NativeReadingOptions extends Omit<ReadingEncodeOptions, "writer"> {
  /** Reused across batches to keep its grown buffers; a new one when absent. */
  writer?: NativeWriter;
  /** Where the block's cells that ml_scores repeats are noted, for {@link appendScoreNative} of the same batch. */
  shared?: SharedReadingCells;
}

export interface NativeScoreOptions extends Omit<ScoreEncodeOptions, "writer"> {
  writer?: NativeWriter;
  /** The cells the batch's ml_sensor_data block noted ({@link NativeReadingOptions.shared}), copied where they are the same. */
  shared?: SharedReadingCells;
}

/**
 * The columns ml_sensor_data and ml_scores both have with the same data for the same rows:
 * machine_id, sensor_type, timestamp, timestamp_ms (the first four of both, headers alike), the
 * value (sensor_value, value) and seq. When the sensor-data block of a batch kept every row,
 * {@link appendSensorDataNative} notes where those cells are in its writer; when the score block
 * of the same batch keeps every row too, {@link appendScoreNative} copies them instead of
 * encoding them again: the same writers would write the same bytes. One per pair of writers.
 */
export class SharedReadingCells {
  /** The batch noted (null: none); compared by identity. */
  batch: ReadingColumns | null = null;
  /** The sensor-data writer's bytes (a view, valid until it writes again). */
  bytes: Uint8Array = new Uint8Array(0);
  /** [start, end) in `bytes` of the first four columns, headers included. */
  headAt = 0;
  headEnd = 0;
  /** [start, end) of the value's data and of seq's (no header). */
  valueAt = 0;
  valueEnd = 0;
  seqAt = 0;
  seqEnd = 0;
}

export interface NativeEncoding {
  /** The rows not refused, one block (no bytes and 0 rows when every row was refused). */
  block: NativeBlock;
  rejected: RejectedRow[];
}

/** The batch's ml_sensor_data rows as one Native block. */
export function encodeSensorDataNative(batch: ReadingColumns, o: NativeReadingOptions): NativeEncoding {
  const w = o.writer ?? new NativeWriter(batch.length * 64 + 1024);
  w.reset();
  const rejected = appendSensorDataNative(batch, { ...o, writer: w });
  return { block: w.rowsHeld === 0 ? emptyBlock() : w.finish(), rejected };
}

/**
 * The batch's ml_sensor_data rows as one more Native block in `o.writer`, after the blocks it
 * holds (none when every row is refused): an ingest worker gathers a second of rows this way and
 * takes them with one `finish`. The rows refused.
 */
export function appendSensorDataNative(batch: ReadingColumns, o: NativeReadingOptions & { writer: NativeWriter }): RejectedRow[] {
  const w = o.writer;
  const rejected: RejectedRow[] = [];
  const labels = batch.labels !== undefined && batch.labels.length > 0 ? batch.labels : null;
  const rows = rowArrays(batch.length);
  const c: SensorContext = { w, batch, keep: rows.keep, n: 0, keys: rows.keys, labels: rows.labels };
  for (let i = 0; i < batch.length; i++) {
    const key = keyOf(o.keys, batch.keyIds[i]);
    try {
      checkKey(key);
      checkTime(batch.times[i]);
      finiteOrThrow(batch.values[i], "sensor_value");
      seqOf(batch.positions[i]);
    } catch (error) {
      rejected.push(rejectedRow(error, i, key, batch));
      continue;
    }
    c.keys[c.n] = key;
    c.labels[c.n] = labels === null ? undefined : o.labels?.[labelId(labels, i)];
    c.keep[c.n++] = i;
  }
  const shared = o.shared;
  if (shared !== undefined) shared.batch = null;
  writeBlock(w, SENSOR_DATA_WRITERS, c, shared === undefined ? null : COLUMN_STARTS);
  if (shared !== undefined && c.n === batch.length && c.n > 0) noteShared(shared, batch, w.held());
  return rejected;
}

/** Where {@link writeBlock} wrote each column: [k] its header's start, [k + 1] its end (reused; one encoder at a time per thread). */
const COLUMN_STARTS: number[] = [];

/** Notes where the shared cells of the sensor-data block just written are (its columns at COLUMN_STARTS of `bytes`). */
function noteShared(shared: SharedReadingCells, batch: ReadingColumns, bytes: Uint8Array): void {
  const s = SHARED_COLUMNS;
  if (s === null) return;
  const data = (k: number) => COLUMN_STARTS[k] + SENSOR_DATA_WRITERS[k].header.length;
  shared.batch = batch;
  shared.bytes = bytes;
  shared.headAt = COLUMN_STARTS[0];
  shared.headEnd = COLUMN_STARTS[SHARED_HEAD];
  shared.valueAt = data(s.dataValue);
  shared.valueEnd = COLUMN_STARTS[s.dataValue + 1];
  shared.seqAt = data(s.dataSeq);
  shared.seqEnd = COLUMN_STARTS[s.dataSeq + 1];
}

/** The batch's ml_scores rows as one Native block. */
export function encodeScoreNative(batch: ScoreColumns, o: NativeScoreOptions): NativeEncoding {
  const w = o.writer ?? new NativeWriter(batch.length * 256 + 1024);
  w.reset();
  const rejected = appendScoreNative(batch, { ...o, writer: w });
  return { block: w.rowsHeld === 0 ? emptyBlock() : w.finish(), rejected };
}

/** The batch's ml_scores rows as one more Native block in `o.writer` (as {@link appendSensorDataNative}); the rows refused. */
export function appendScoreNative(batch: ScoreColumns, o: NativeScoreOptions & { writer: NativeWriter }): RejectedRow[] {
  const w = o.writer;
  const rejected: RejectedRow[] = [];
  const plan = scorePlan(batch, o);
  const c = scoreContext(w, batch, plan);
  for (let i = 0; i < batch.length; i++) {
    const keyId = batch.keyIds[i];
    const key = keyOf(o.keys, keyId);
    const rules = o.spcRules?.[keyId];
    let version: number;
    try {
      version = scoreChecks(batch, plan, rules, key, i);
    } catch (error) {
      rejected.push(rejectedRow(error, i, key, batch));
      continue;
    }
    keepScoreRow(c, i, key, rules, version);
  }
  const shared = o.shared;
  if (shared !== undefined && shared.batch === batch && c.n === batch.length && SHARED_COLUMNS !== null) {
    writeBlockWithShared(w, c, shared, SHARED_COLUMNS);
    shared.batch = null;
  } else writeBlock(w, SCORE_WRITERS, c, null);
  return rejected;
}

/**
 * The score block of a batch whose sensor-data block kept every row, as every row here: the
 * shared columns' bytes copied from that block (see {@link SharedReadingCells}), the others written.
 */
function writeBlockWithShared(w: NativeWriter, c: ScoreContext, shared: SharedReadingCells, s: SharedColumns): void {
  w.begin(SCORE_WRITERS.length, c.n);
  w.columnsCopied(shared.bytes.subarray(shared.headAt, shared.headEnd), SHARED_HEAD);
  for (let k = SHARED_HEAD; k < SCORE_WRITERS.length; k++) {
    const column = SCORE_WRITERS[k];
    w.columnHeader(column.header);
    if (k === s.scoreValue) w.raw(shared.bytes.subarray(shared.valueAt, shared.valueEnd));
    else if (k === s.scoreSeq) w.raw(shared.bytes.subarray(shared.seqAt, shared.seqEnd));
    else column.write(c);
  }
}

// ---------------------------------------------------------------------------------------------
// The rows kept, and what their columns derive from
// ---------------------------------------------------------------------------------------------

/** What every column writer sees: the batch and the rows kept (`keep[j]`, j < n: a batch index). */
interface Context {
  w: NativeWriter;
  batch: ReadingColumns;
  keep: Uint32Array;
  n: number;
  /** Per kept row, its key's names. */
  keys: KeyNames[];
}

interface SensorContext extends Context {
  /** Per kept row, its label's names (undefined: none). */
  labels: (LabelNames | undefined)[];
}

/** Per kept row (index j), the values several ml_scores columns derive from, computed once. */
interface ScoreContext extends Context {
  batch: ScoreColumns;
  plan: ScorePlan;
  rules: (KeyRules | undefined)[];
  /** 1 where the rolling statistics are defined (a window full, operators/rolling rowFields). */
  defined: Uint8Array;
  /** 1 where the key has SPC limits (else SPC's statistics are NULL, masks and alarms 0). */
  limits: Uint8Array;
  /** SPC's EWMA, NaN for NULL. */
  spcEwma: Float64Array;
  /** limits_version, also the row's version. */
  version: Float64Array;
  /** The isolation-forest score, NaN for NULL (then model_hash is ""). */
  score: Float64Array;
}

function scoreContext(w: NativeWriter, batch: ScoreColumns, plan: ScorePlan): ScoreContext {
  return { w, batch, plan, n: 0, ...rowArrays(batch.length) };
}

/** The per-row arrays of a call. */
interface RowArrays {
  keep: Uint32Array;
  keys: KeyNames[];
  labels: (LabelNames | undefined)[];
  rules: (KeyRules | undefined)[];
  defined: Uint8Array;
  limits: Uint8Array;
  spcEwma: Float64Array;
  version: Float64Array;
  score: Float64Array;
}

/**
 * Reused by every call (an encoder runs to its end before the next starts, one thread each):
 * allocating them per batch cost a third of the encoding time of a small batch (256 rows).
 */
let ROW_ARRAYS: RowArrays = rowArraysOf(0);

function rowArrays(n: number): RowArrays {
  if (ROW_ARRAYS.keep.length < n) ROW_ARRAYS = rowArraysOf(2 ** Math.ceil(Math.log2(n)));
  return ROW_ARRAYS;
}

function rowArraysOf(n: number): RowArrays {
  return {
    keep: new Uint32Array(n),
    keys: [],
    labels: [],
    rules: [],
    defined: new Uint8Array(n),
    limits: new Uint8Array(n),
    spcEwma: new Float64Array(n),
    version: new Float64Array(n),
    score: new Float64Array(n),
  };
}

/**
 * The checks encodeScoreColumns makes of record i, in its column order, so the first one
 * failing throws the same EncodeError; returns the row's limits_version.
 */
function scoreChecks(batch: ScoreColumns, plan: ScorePlan, rules: KeyRules | undefined, key: KeyNames, i: number): number {
  checkKey(key);
  checkTime(batch.times[i]);
  seqOf(batch.positions[i]);
  finiteOrThrow(batch.values[i], "value");
  const r = plan.rolling;
  if (r !== null) {
    const count = r.rows[i * r.fields + ROLLING.count];
    if (!(count < r.minCount) && Number.isFinite(count)) checkCount(count);
  }
  const s = plan.spc;
  if (s === null || !hasLimits(s, i)) {
    const version = s === null ? 0 : s.rows[i * s.fields + S.limits_version] || 0;
    checkLimitsVersion(version);
    return version;
  }
  const b = i * s.fields;
  if (Number.isFinite(s.rows[b + S.zone])) checkZone(s.rows[b + S.zone]);
  checkWeMask(ruleMask(s.rows[b + S.we_mask], rules?.we));
  checkLimitsVersion(s.rows[b + S.limits_version]);
  return s.rows[b + S.limits_version];
}

function keepScoreRow(c: ScoreContext, i: number, key: KeyNames, rules: KeyRules | undefined, version: number): void {
  const j = c.n++;
  const { rolling: r, spc: s, iforest: f } = c.plan;
  c.keep[j] = i;
  c.keys[j] = key;
  c.rules[j] = rules;
  c.version[j] = version;
  c.defined[j] = r !== null && !(r.rows[i * r.fields + ROLLING.count] < r.minCount) ? 1 : 0;
  c.limits[j] = s !== null && hasLimits(s, i) ? 1 : 0;
  c.spcEwma[j] = s === null ? Number.NaN : (spcEwmaOf(s, i) ?? Number.NaN);
  if (f === null) c.score[j] = Number.NaN;
  else {
    // No score when a feature of the record is undefined (iforest observe).
    const b = i * f.fields;
    let score = f.rows[b + f.features];
    for (let k = 0; k < f.features; k++) if (!Number.isFinite(f.rows[b + k])) score = Number.NaN;
    c.score[j] = Number.isFinite(score) ? score : Number.NaN;
  }
}

// ---------------------------------------------------------------------------------------------
// The columns
// ---------------------------------------------------------------------------------------------

interface ColumnWriter<C> {
  /** The type the writer writes, as the table declares it. */
  type: string;
  write(c: C): void;
}

/** Each column: its header (name and type as Strings, encoded once) and its writer. */
type TableWriters<C> = ReadonlyArray<{ header: Uint8Array; write: (c: C) => void }>;

/** The table's columns in declared order, each with its writer; throws at load when the two disagree. */
function bind<C>(table: "ml_sensor_data" | "ml_scores", writers: Readonly<Record<string, ColumnWriter<C>>>): TableWriters<C> {
  const columns = TABLE_SCHEMAS[table].columns;
  for (const c of columns) {
    const writer = writers[c.name];
    if (writer === undefined || writer.type !== columnTypeName(c))
      throw new Error(`${table}.${c.name} ${columnTypeName(c)} has no Native writer of that type (native-columns.ts)`);
  }
  for (const name of Object.keys(writers))
    if (!columns.some((c) => c.name === name)) throw new Error(`${table} declares no column ${name} (native-columns.ts)`);
  return columns.map((c) => ({ header: columnHeader(c.name, columnTypeName(c)), write: writers[c.name].write }));
}

/** The kept rows as one block after what `w` holds; none when no row is kept. `starts`: where each column's header starts, and the block's end, noted. */
function writeBlock<C extends Context>(w: NativeWriter, columns: TableWriters<C>, c: C, starts: number[] | null): void {
  if (c.n === 0) return;
  w.begin(columns.length, c.n);
  for (let k = 0; k < columns.length; k++) {
    if (starts !== null) starts[k] = w.bytesHeld;
    w.columnHeader(columns[k].header);
    columns[k].write(c);
  }
  if (starts !== null) starts[columns.length] = w.bytesHeld;
}

/** No rows: no bytes (a fresh array each time: a caller may transfer it). */
function emptyBlock(): NativeBlock {
  return { format: "Native", bytes: new Uint8Array(0), rows: 0 };
}

/** Each kept row's cell of a String column, gathered before the column is copied in one pass (reused: one encoder at a time per thread). */
let CELLS: Uint8Array[] = [];

function cellsFor(n: number): Uint8Array[] {
  if (CELLS.length < n) CELLS = new Array<Uint8Array>(2 ** Math.ceil(Math.log2(n))).fill(EMPTY);
  return CELLS;
}

/** machine_id, or with `sensor` sensor_type, of each kept row's key (checked to be named). */
function keyParts(c: Context, sensor: boolean): void {
  const cells = cellsFor(c.n);
  const keys = c.keys;
  if (sensor) for (let j = 0; j < c.n; j++) cells[j] = keys[j].sensorType as Uint8Array;
  else for (let j = 0; j < c.n; j++) cells[j] = keys[j].machineId as Uint8Array;
  c.w.cells(cells, c.n);
}

/** sensor_unit (0), operating_mode (1: the key's mode, else the label's) or work_order_id (2) of each kept row; "" without a label. */
function labelParts(c: SensorContext, part: 0 | 1 | 2): void {
  const cells = cellsFor(c.n);
  const { keys, labels } = c;
  for (let j = 0; j < c.n; j++) {
    const label = labels[j];
    if (part === 1) cells[j] = keys[j].mode ?? label?.mode ?? EMPTY;
    else if (label === undefined) cells[j] = EMPTY;
    else cells[j] = part === 0 ? label.unit : label.workOrder;
  }
  c.w.cells(cells, c.n);
}

/** model_hash: the model's where a row has a score, "" elsewhere. */
function modelHashes(c: ScoreContext): void {
  const forest = c.plan.iforest;
  if (forest === null) return c.w.repeated(EMPTY, c.n);
  const cells = cellsFor(c.n);
  for (let j = 0; j < c.n; j++) cells[j] = Number.isFinite(c.score[j]) ? forest.hash : EMPTY;
  c.w.cells(cells, c.n);
}

/** DateTime: the whole seconds of the records' times (checked to fit). */
function seconds(c: Context): void {
  const out = c.w.u32(c.n);
  for (let j = 0; j < c.n; j++) out[j] = Math.floor(Math.floor(c.batch.times[c.keep[j]]) / 1000);
  c.w.uint32s(out, c.n);
}

/** UInt64 of `src` at the kept rows (whole milliseconds when `floor`), checked to be safe integers. */
function uint64Of(c: Context, src: Float64Array, floor: boolean): void {
  const out = c.w.f64(c.n);
  for (let j = 0; j < c.n; j++) out[j] = floor ? Math.floor(src[c.keep[j]]) : src[c.keep[j]];
  c.w.uint64s(out, c.n);
}

/** Float64 of `src` at the kept rows. */
function float64Of(c: Context, src: Float64Array): void {
  const out = c.w.f64(c.n);
  for (let j = 0; j < c.n; j++) out[j] = src[c.keep[j]];
  c.w.float64s(out, c.n);
}

/** UInt64 (or UInt32) of one value for every row. */
function constant(c: Context, v: number, bytes: 4 | 8): void {
  const out = c.w.f64(c.n);
  out.fill(v, 0, c.n);
  if (bytes === 8) c.w.uint64s(out, c.n);
  else c.w.uint32s(Uint32Array.from(out.subarray(0, c.n)), c.n);
}

/**
 * Nullable(Float64) of field `k` of an analysis's output rows (row-major, so a strided gather),
 * NULL where `when` is 0, the analysis is absent, or the value is not finite.
 */
function nullableField(c: ScoreContext, rows: Rows | null, k: number, when: Uint8Array): void {
  const { w, keep, n } = c;
  const nulls = w.u8(n);
  const values = w.f64(n);
  for (let j = 0; j < n; j++) {
    const v = rows === null ? Number.NaN : rows.rows[keep[j] * rows.fields + k];
    const isNull = when[j] === 0 || !Number.isFinite(v);
    nulls[j] = isNull ? 1 : 0;
    values[j] = isNull ? 0 : v;
  }
  w.uint8s(nulls, n);
  w.float64s(values, n);
}

/** Nullable(Float64) of per-row values, NaN for NULL (`null`: all NULL). */
function nullableValues(c: ScoreContext, src: Float64Array | null): void {
  const { w, n } = c;
  const nulls = w.u8(n);
  const values = w.f64(n);
  for (let j = 0; j < n; j++) {
    const v = src === null ? Number.NaN : src[j];
    nulls[j] = Number.isFinite(v) ? 0 : 1;
    values[j] = Number.isFinite(v) ? v : 0;
  }
  w.uint8s(nulls, n);
  w.float64s(values, n);
}

/** A UInt8 of SPC's row where the key has limits, 0 elsewhere. */
function spcByte(c: ScoreContext, byte: (row: Float64Array, b: number, j: number) => number): void {
  const out = c.w.u8(c.n);
  const s = c.plan.spc;
  for (let j = 0; j < c.n; j++) out[j] = s !== null && c.limits[j] === 1 ? byte(s.rows, c.keep[j] * s.fields, j) : 0;
  c.w.uint8s(out, c.n);
}

/** count: Nullable(UInt32), NULL until the window is full or when not finite. */
function counts(c: ScoreContext): void {
  const { w, n } = c;
  const r = c.plan.rolling;
  const nulls = w.u8(n);
  const values = w.u32(n);
  for (let j = 0; j < n; j++) {
    const v = r === null ? Number.NaN : r.rows[c.keep[j] * r.fields + ROLLING.count];
    const isNull = c.defined[j] === 0 || !Number.isFinite(v);
    nulls[j] = isNull ? 1 : 0;
    values[j] = isNull ? 0 : v;
  }
  w.uint8s(nulls, n);
  w.uint32s(values, n);
}

/** zone: Nullable(Int8), NULL without limits or when not finite. */
function zones(c: ScoreContext): void {
  const { w, n } = c;
  const s = c.plan.spc;
  const both = w.u8(2 * n);
  const nulls = both.subarray(0, n);
  const values = both.subarray(n, 2 * n);
  for (let j = 0; j < n; j++) {
    const v = s === null ? Number.NaN : s.rows[c.keep[j] * s.fields + S.zone];
    const isNull = c.limits[j] === 0 || !Number.isFinite(v);
    nulls[j] = isNull ? 1 : 0;
    values[j] = isNull ? 0 : v & 0xff;
  }
  w.uint8s(nulls, n);
  w.uint8s(values, n);
}

/** The `ewma` column: SPC's EWMA where SPC writes that name after rolling (the row objects' merged members), else rolling's. */
function ewmas(c: ScoreContext): void {
  if (c.plan.ewmaFromSpc) nullableValues(c, c.spcEwma);
  else nullableField(c, c.plan.rolling, ROLLING.ewma, c.defined);
}

/** spc_ewma: SPC's own member, or without rolling the `ewma` SPC wrote (outputs.ts scoreRow). */
function spcEwmas(c: ScoreContext): void {
  const s = c.plan.spc;
  nullableValues(c, s !== null && (s.ewmaField === "spc_ewma" || c.plan.rolling === null) ? c.spcEwma : null);
}

function versions(c: ScoreContext, bytes: 4 | 8): void {
  if (bytes === 8) c.w.uint64s(c.version, c.n);
  else {
    const out = c.w.u32(c.n);
    for (let j = 0; j < c.n; j++) out[j] = c.version[j];
    c.w.uint32s(out, c.n);
  }
}

const F64 = "Float64";
const NULLABLE_F64 = "Nullable(Float64)";

/** Columns both tables start with. */
function readingWriters<C extends Context>(): Record<string, ColumnWriter<C>> {
  return {
    machine_id: { type: "String", write: (c) => keyParts(c, false) },
    sensor_type: { type: "String", write: (c) => keyParts(c, true) },
    timestamp: { type: "DateTime", write: seconds },
    timestamp_ms: { type: "UInt64", write: (c) => uint64Of(c, c.batch.times, true) },
    seq: { type: "UInt64", write: (c) => uint64Of(c, c.batch.positions, false) },
  };
}

const SENSOR_DATA_WRITERS = bind<SensorContext>("ml_sensor_data", {
  ...readingWriters<SensorContext>(),
  sensor_value: { type: F64, write: (c) => float64Of(c, c.batch.values) },
  sensor_unit: { type: "String", write: (c) => labelParts(c, 0) },
  operating_mode: { type: "String", write: (c) => labelParts(c, 1) },
  work_order_id: { type: "String", write: (c) => labelParts(c, 2) },
  version: { type: "UInt64", write: (c) => constant(c, 0, 8) },
});

/** A rolling statistic: NULL until the window is full. */
const rolling = (k: number): ColumnWriter<ScoreContext> => ({
  type: NULLABLE_F64,
  write: (c) => nullableField(c, c.plan.rolling, k, c.defined),
});
/** An SPC statistic: NULL without limits. */
const spc = (k: number): ColumnWriter<ScoreContext> => ({ type: NULLABLE_F64, write: (c) => nullableField(c, c.plan.spc, k, c.limits) });
const [MEAN, STD, STD_POP, MIN, MAX, SLOPE] = ROLLING_MIDDLE;

const SCORE_WRITERS = bind<ScoreContext>("ml_scores", {
  ...readingWriters<ScoreContext>(),
  value: { type: F64, write: (c) => float64Of(c, c.batch.values) },
  count: { type: "Nullable(UInt32)", write: counts },
  mean: rolling(MEAN),
  std: rolling(STD),
  std_pop: rolling(STD_POP),
  min: rolling(MIN),
  max: rolling(MAX),
  slope: rolling(SLOPE),
  ewma: { type: NULLABLE_F64, write: ewmas },
  z: rolling(ROLLING.z),
  cl: spc(S.cl),
  ucl: spc(S.ucl),
  lcl: spc(S.lcl),
  sigma: spc(S.sigma),
  zone: { type: "Nullable(Int8)", write: zones },
  we_mask: { type: "UInt8", write: (c) => spcByte(c, (row, b, j) => ruleMask(row[b + S.we_mask], c.rules[j]?.we)) },
  nelson_mask: { type: "UInt8", write: (c) => spcByte(c, (row, b, j) => ruleMask(row[b + S.nelson_mask], c.rules[j]?.nelson)) },
  mr_mask: { type: "UInt8", write: (c) => spcByte(c, (row, b, j) => mrMask(row[b + S.mr_mask], c.rules[j]?.mr)) },
  cusum_pos: spc(S.cusum_pos),
  cusum_neg: spc(S.cusum_neg),
  cusum_alarm: { type: "UInt8", write: (c) => spcByte(c, (row, b) => (row[b + S.cusum_alarm] === 1 ? 1 : 0)) },
  spc_ewma: { type: NULLABLE_F64, write: spcEwmas },
  ewma_ucl: spc(S.ewma_ucl),
  ewma_lcl: spc(S.ewma_lcl),
  ewma_alarm: { type: "UInt8", write: (c) => spcByte(c, (row, b) => (row[b + S.ewma_alarm] === 1 ? 1 : 0)) },
  limits_version: { type: "UInt32", write: (c) => versions(c, 4) },
  iforest_score: { type: NULLABLE_F64, write: (c) => nullableValues(c, c.plan.iforest === null ? null : c.score) },
  model_hash: {
    type: "String",
    write: modelHashes,
  },
  // The same two hashes on every row of a run: one cell repeated.
  kernel_hash: { type: "String", write: (c) => c.w.repeated(c.plan.audit.kernelHash, c.n) },
  config_hash: { type: "String", write: (c) => c.w.repeated(c.plan.audit.configHash, c.n) },
  version: { type: "UInt64", write: (c) => versions(c, 8) },
});

/** The first four columns of both tables, copied as one run. */
const READING_HEAD = ["machine_id", "sensor_type", "timestamp", "timestamp_ms"];
const SHARED_HEAD = READING_HEAD.length;

interface SharedColumns {
  dataValue: number;
  dataSeq: number;
  scoreValue: number;
  scoreSeq: number;
}

/**
 * Where the shared columns are in each table, checked once: the first four alike in both (name,
 * type, so header bytes), the value and seq of the same types. Null (nothing shared) should a
 * declaration ever make them differ.
 */
const SHARED_COLUMNS: SharedColumns | null = sharedColumns();

function sharedColumns(): SharedColumns | null {
  const data = TABLE_SCHEMAS.ml_sensor_data.columns;
  const score = TABLE_SCHEMAS.ml_scores.columns;
  for (let k = 0; k < SHARED_HEAD; k++) {
    const a = data[k];
    const b = score[k];
    if (a.name !== b.name || columnTypeName(a) !== columnTypeName(b) || a.name !== READING_HEAD[k]) return null;
  }
  const at = (columns: readonly ColumnSpec[], name: string, type: string) => {
    const k = columns.findIndex((c) => c.name === name);
    return k >= SHARED_HEAD && columnTypeName(columns[k]) === type ? k : -1;
  };
  const s = {
    dataValue: at(data, "sensor_value", F64),
    dataSeq: at(data, "seq", "UInt64"),
    scoreValue: at(score, "value", F64),
    scoreSeq: at(score, "seq", "UInt64"),
  };
  return Object.values(s).every((k) => k >= 0) ? s : null;
}
