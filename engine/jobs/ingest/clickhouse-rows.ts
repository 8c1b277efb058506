/**
 * An ingest worker's ClickHouse rows: each finished chunk encoded as a Native block per table
 * (ml_sensor_data and ml_scores) straight from the engine's columns on the worker's thread,
 * collected per drain and handed to the main thread as transferable bytes, where the sink inserts
 * them (ClickHouseSink.insertEncoded: batching, retries, spill). Key and label names are encoded
 * once.
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
  encodeRowBinaryString,
  encodeScoreNative,
  encodeSensorDataNative,
  type KeyNames,
  keyNames,
  type LabelNames,
  labelNames,
  type NativeBlock,
  NativeWriter,
  type RejectedRow,
  type ScoreLayout,
} from "../../../connectors/clickhouse/mod.js";
import type { LabelTable } from "../../../connectors/wire/mod.js";
import { rollingMinCount } from "../../../operators/rolling/mod.js";
import type { AnalysisSpec } from "./analysis-spec.js";

/** Rows of one table, as they cross to the main thread (an EncodeError does not survive the copy: its parts do). */
export interface EncodedTableRows {
  table: ClickHouseTable;
  rows: NativeBlock;
  rejected: Array<{ index: number; line: string; reason: string; field: string; message: string }>;
}

export class ClickHouseRows {
  private readonly keys: (KeyNames | undefined)[] = [];
  private readonly labelNames: (LabelNames | undefined)[] = [];
  private readonly layout: ScoreLayout;
  private readonly writer = new NativeWriter(1 << 16);
  private collected: EncodedTableRows[] = [];
  private modelHash: { text: string; bytes: Uint8Array } | null = null;

  /** `audit`: the run's audit columns (kernel_hash, config_hash), encoded once; undefined: both "". */
  constructor(
    specs: readonly AnalysisSpec[],
    private readonly labels: LabelTable,
    private readonly activeModel: () => string | undefined,
    private readonly audit?: AuditColumns,
  ) {
    this.layout = scoreLayout(specs);
  }

  /** Names a new key (machine_id, sensor_type). */
  addKey(keyId: number, machine: string, sensor: string): void {
    this.keys[keyId] = keyNames([machine, sensor]);
  }

  /** The chunk's rows of both tables; `labels` are the records' 4-byte label ids (the engine payload). */
  add(chunk: OutputChunk): void {
    this.nameLabels(chunk.payload, chunk.length);
    const columns = { ...chunk, labels: chunk.payload };
    const data = encodeSensorDataNative(columns, { keys: this.keys, labels: this.labelNames, writer: this.writer });
    this.collected.push({ table: "ml_sensor_data", rows: data.block, rejected: data.rejected.map(plain) });
    const scores = encodeScoreNative(columns, {
      keys: this.keys,
      layout: this.layout,
      modelHash: this.hash(),
      audit: this.audit,
      writer: this.writer,
    });
    this.collected.push({ table: "ml_scores", rows: scores.block, rejected: scores.rejected.map(plain) });
  }

  /** What was collected since the last call, and the buffers to transfer with it. */
  take(): { tables: EncodedTableRows[]; transfer: ArrayBuffer[] } {
    const tables = this.collected;
    this.collected = [];
    const transfer = tables.map((t) => t.rows.bytes.buffer as ArrayBuffer);
    return { tables, transfer };
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
