/**
 * An ingest worker's ClickHouse rows: each finished chunk encoded as a Native block per table
 * (ml_sensor_data and ml_scores) straight from the engine's columns on the worker's thread, the
 * blocks of a table gathered back to back in one buffer until they make an insert — `rowsMax`
 * rows, or `ageMs` after the first (the sink's batchRowsMax and flushIntervalMs), or earlier when
 * the worker must know its rows durable (a JetStream round, a sync, the stop) — then handed to the
 * main thread as one body, in the worker's body ring (body-ring.ts) or else transferred, which the
 * sink inserts as it is (ClickHouseSink.insertEncoded
 * with `sendNow`: no copy into a batch of its own, no cut; retries, spill). Before, every drain's
 * blocks crossed, and the main thread copied them into its batches and cut them at batchRowsMax:
 * about a tenth of its busy time, and most of its garbage. Key and label names are encoded once.
 *
 * Native rather than RowBinary: the same rows, and the server reads a Native column almost as it
 * stores it where it parses RowBinary field by field. Measured with `npm run bench -- clickhouse`
 * on 18.16 (docs/benchmarks.md): reading the format costs the server about half the CPU, the whole
 * insert into linewatch's tables 10–15 % less per row.
 */
import type { OutputChunk } from "../../core/mod.js";
import {
  type AuditColumns,
  type ClickHouseTable,
  appendScoreNative,
  appendSensorDataNative,
  encodeRowBinaryString,
  type KeyNames,
  keyNames,
  type LabelNames,
  labelNames,
  type NativeBlock,
  NativeWriter,
  type RejectedRow,
  type ScoreLayout,
  SharedReadingCells,
} from "../../../connectors/clickhouse/mod.js";
import type { LabelTable } from "../../../connectors/wire/mod.js";
import { rollingMinCount } from "../../../operators/rolling/mod.js";
import type { AnalysisSpec } from "./analysis-spec.js";
import type { BodyRingWriter, RingBody } from "./body-ring.js";

/** Rows of one table, as they cross to the main thread (an EncodeError does not survive the copy: its parts do). */
export interface EncodedTableRows {
  table: ClickHouseTable;
  /** The blocks; with `ring`, their bytes are there and `rows.bytes` is empty. */
  rows: NativeBlock;
  /** Where the blocks are in the worker's body ring (body-ring.ts); absent: `rows.bytes` holds them (transferred). */
  ring?: RingBody;
  rejected: Array<{ index: number; line: string; reason: string; field: string; message: string }>;
}

/** When a table's gathered rows go to the main thread: at `rowsMax` rows, or `ageMs` after the first. */
export interface RowsHandOver {
  rowsMax: number;
  ageMs: number;
}

/** The sink's defaults (DEFAULT_CLICKHOUSE_BATCH_ROWS_MAX, DEFAULT_CLICKHOUSE_FLUSH_INTERVAL_MS): one insert per table a second, or per 100 000 rows. */
export const DEFAULT_ROWS_HAND_OVER: RowsHandOver = { rowsMax: 100_000, ageMs: 1_000 };

/** One table's blocks gathered since the last hand-over, with the rows their encoder refused. */
class GatheredTable {
  readonly writer = new NativeWriter(1 << 16);
  rejected: EncodedTableRows["rejected"] = [];

  constructor(readonly table: ClickHouseTable) {}

  /** The gathered blocks: copied into `ring` when it has room, else into a buffer of their own (to transfer). */
  take(ring: BodyRingWriter | null): EncodedTableRows {
    const w = this.writer;
    const rows = w.rowsHeld;
    const body = ring === null || rows === 0 ? null : ring.write(w.held());
    const rejected = this.rejected;
    this.rejected = [];
    if (body === null) return { table: this.table, rows: w.finish(), rejected };
    w.reset();
    return { table: this.table, rows: { format: "Native", bytes: new Uint8Array(0), rows }, ring: body, rejected };
  }
}

export class ClickHouseRows {
  private readonly keys: (KeyNames | undefined)[] = [];
  private readonly labelNames: (LabelNames | undefined)[] = [];
  private readonly layout: ScoreLayout;
  private readonly data = new GatheredTable("ml_sensor_data");
  private readonly scores = new GatheredTable("ml_scores");
  /** performance.now() of the first row gathered since the last hand-over; NaN: none gathered. */
  private firstAt = Number.NaN;
  private modelHash: { text: string; bytes: Uint8Array } | null = null;
  /** The cells of a chunk's ml_sensor_data block its ml_scores block copies (native-columns.ts SharedReadingCells). */
  private readonly shared = new SharedReadingCells();
  /**
   * Bodies sealed before a chunk that would have taken them past `rowsMax`, to go with the next
   * take: a body over the sink's batchRowsMax is not sent as it is but copied and cut on the main
   * thread, its last part waiting for the flush timer.
   */
  private sealed: EncodedTableRows[] = [];

  /**
   * `audit`: the run's audit columns (kernel_hash, config_hash), encoded once; undefined: both "".
   * `ring`: where the bodies go when they fit (body-ring.ts); null: each in a buffer of its own, to transfer.
   */
  constructor(
    specs: readonly AnalysisSpec[],
    private readonly labels: LabelTable,
    private readonly activeModel: () => string | undefined,
    private readonly handOver: RowsHandOver,
    private readonly audit?: AuditColumns,
    private readonly ring: BodyRingWriter | null = null,
  ) {
    this.layout = scoreLayout(specs);
  }

  /** Names a new key (machine_id, sensor_type). */
  addKey(keyId: number, machine: string, sensor: string): void {
    this.keys[keyId] = keyNames([machine, sensor]);
  }

  /** The chunk's rows of both tables, after those gathered; `labels` are the records' 4-byte label ids (the engine payload). */
  add(chunk: OutputChunk): void {
    if (this.waiting > 0 && this.waiting + chunk.length > this.handOver.rowsMax) this.seal();
    this.nameLabels(chunk.payload, chunk.length);
    const columns = { ...chunk, labels: chunk.payload };
    const before = this.waiting;
    const data = appendSensorDataNative(columns, {
      keys: this.keys,
      labels: this.labelNames,
      writer: this.data.writer,
      shared: this.shared,
    });
    for (const r of data) this.data.rejected.push(plain(r));
    const scores = appendScoreNative(columns, {
      keys: this.keys,
      layout: this.layout,
      modelHash: this.hash(),
      audit: this.audit,
      writer: this.scores.writer,
      shared: this.shared,
    });
    for (const r of scores) this.scores.rejected.push(plain(r));
    if (before === 0 && this.waiting > 0) this.firstAt = performance.now();
  }

  /** Rows gathered and not handed over, refused ones (dead letters to be) included: the larger of the two tables'. */
  private get waiting(): number {
    return Math.max(this.data.writer.rowsHeld + this.data.rejected.length, this.scores.writer.rowsHeld + this.scores.rejected.length);
  }

  /** Milliseconds until the gathered rows are due (0 with bodies sealed and not taken; Infinity: none gathered). */
  dueInMs(now = performance.now()): number {
    return this.sealed.length > 0 ? 0 : this.gatheredDueInMs(now);
  }

  /** Milliseconds until the rows gathered (not sealed) are due by age (Infinity: none gathered). */
  private gatheredDueInMs(now = performance.now()): number {
    return this.waiting === 0 ? Number.POSITIVE_INFINITY : Math.max(0, this.firstAt + this.handOver.ageMs - now);
  }

  /**
   * What was gathered, when it is due (`rowsMax` rows, or `ageMs` old) or `now`, and the buffers
   * to transfer with it (none for a body copied into `ring`); no tables when nothing is due.
   */
  take(now: boolean): { tables: EncodedTableRows[]; transfer: ArrayBuffer[] } {
    if (now || this.waiting >= this.handOver.rowsMax || this.gatheredDueInMs() === 0) this.seal();
    const tables = this.sealed;
    this.sealed = [];
    return { tables, transfer: tables.filter((t) => t.ring === undefined).map((t) => t.rows.bytes.buffer as ArrayBuffer) };
  }

  /** Both tables' gathered rows as bodies for the next take. */
  private seal(): void {
    for (const t of [this.data, this.scores]) if (t.writer.rowsHeld > 0 || t.rejected.length > 0) this.sealed.push(t.take(this.ring));
    this.firstAt = Number.NaN;
  }

  private nameLabels(payload: Uint8Array, n: number): void {
    for (let i = 0; i < n; i++) {
      const id = (payload[4 * i] | (payload[4 * i + 1] << 8) | (payload[4 * i + 2] << 16) | (payload[4 * i + 3] << 24)) >>> 0;
      if (id === 0 || this.labelNames[id] !== undefined) continue;
      const triple = this.labels.get(id);
      if (triple !== undefined) this.labelNames[id] = labelNames(triple);
    }
  }

  private hash(): Uint8Array | undefined {
    const text = this.activeModel();
    if (text === undefined) return undefined;
    if (this.modelHash?.text !== text) this.modelHash = { text, bytes: encodeRowBinaryString(text) };
    return this.modelHash.bytes;
  }
}

/** Where each analysis's rows are in a chunk, for the ml_scores encoders. */
export function scoreLayout(specs: readonly AnalysisSpec[]): ScoreLayout {
  const layout: ScoreLayout = {};
  specs.forEach((s, index) => {
    if (s.name === "rolling") layout.rolling = { index, minCount: rollingMinCount(s.options.window) };
    else if (s.name === "spc") layout.spc = { index, ewmaField: s.options.ewmaField === "ewma" ? "ewma" : "spc_ewma" };
    else layout.iforest = { index, features: s.options.features.length };
  });
  return layout;
}

function plain(r: RejectedRow): EncodedTableRows["rejected"][number] {
  return { index: r.index, line: r.line, reason: r.error.reason, field: r.error.field, message: r.error.message };
}
