/**
 * `linewatch replay`: a file (or stdin) through one or more analyses, one NDJSON line out per
 * input row, in input order, with the members of every analysis merged. The contract of the
 * output is in docs/commands/replay.md. Two pipelines write it: the rows pipeline here (any input,
 * any analysis: a TableRow, then a string line per row) and the columns pipeline
 * (replay-columns.ts: CSV files with analyses that write their members as bytes), byte for byte
 * the same.
 */
import type { Writable } from "node:stream";
import { allocateBatch, ConfigError, type TimeUnit, FLAG_OUT_OF_ORDER, StreamEngine, type OutputChunk } from "../core/mod.js";
import { formatOfPath, LineBuffer, readTable, type TableRow } from "../../connectors/files/mod.js";
import { ReplayOutput, ROW_OUT_OF_ORDER } from "./replay-output.js";
import { observeRecord, type RecordAnalysis, type RecordInput, type RowContext, rowTextSpecs } from "../../operators/mod.js";
import { runColumnReplay } from "./replay-columns.js";
import { AuditMembers } from "./audit/members.js";
import type { AuditStamp } from "./audit/config.js";
import {
  appendRow,
  type Columns,
  emptySummary,
  finishSummary,
  replayEngineOptions,
  resolveColumns,
  type RowTarget,
  singleKeyOf,
  startProgress,
  writeWithBackpressure,
} from "./replay-table.js";

export interface ReplayOptions {
  input: string;
  /** The analyses, in output order; built for the time unit below (slope per second or per unit). */
  analyses: readonly RecordAnalysis[];
  /** Key columns; undefined: machine_id,sensor_type where present, else one key for the file. */
  keyColumns?: string[];
  timeColumn: string;
  timeUnit: TimeUnit;
  /** Value column; undefined: sensor_value, else value. */
  valueColumn?: string;
  /** Allowed lateness in time units; null: arrival order, out-of-order records flagged. */
  lateness: number | null;
  workers: number;
  keysMax: number;
  batchRecordsMax: number;
  /** Where the NDJSON goes. */
  output: Writable;
  /** Progress lines (stderr), or null for none. */
  progress: Writable | null;
  /**
   * How rows become lines: "columns" — a CSV file's bytes parsed into columns, the text made from
   * the output columns on a worker thread — where the input and the analyses allow it
   * ({@link columnReplayFits}), else "rows" — a line per row on this thread, the reference the
   * columns are tested against (the output is byte for byte the same). Default: columns where they fit.
   */
  pipeline?: "rows" | "columns";
  /**
   * The audit record (`--audit`): each line ends with kernel_hash, config_hash, model_version
   * (and limits_version where no SPC analysis writes one). The rows pipeline writes it.
   */
  audit?: AuditStamp;
}

export interface ReplaySummary {
  rows: number;
  rejected: number;
  /** Where and why the first rejected row was rejected (`file:line: reason`), or null when none was. */
  firstRejection: string | null;
  late: number;
  outOfOrder: number;
  keys: number;
  seconds: number;
  /** Warnings from the analyses (e.g. truncated windows). */
  notes: string[];
}

/**
 * Records per kernel task (`--batch-records`), as `linewatch run` has it: with 1024 the replay of a
 * CSV spent an eighth of its CPU waking the kernel workers for tasks four times as many (measured,
 * docs/benchmarks.md). The lines do not depend on it (each key's records stay in order).
 */
export const DEFAULT_REPLAY_BATCH_RECORDS = 4096;
export const DEFAULT_REPLAY_KEYS_MAX = 4096;

/** The replay, through the pipeline `options.pipeline` names, by default the columns one where it fits. */
export function runReplay(options: ReplayOptions): Promise<ReplaySummary> {
  const fits = columnReplayFits(options);
  if (options.pipeline === "columns" && fits !== null) return Promise.reject(new ConfigError("pipeline", `columns: ${fits}`));
  return options.pipeline === "rows" || fits !== null ? runRowReplay(options) : runColumnReplay(options);
}

/** Null when the columns pipeline can run this replay, else why not. */
export function columnReplayFits(options: ReplayOptions): string | null {
  if (options.input === "-" || formatOfPath(options.input) !== "csv") return "the input is not a CSV file";
  if (options.audit !== undefined) return "the audit members are written by the rows pipeline";
  if (options.analyses.some((a) => a.input !== undefined)) return "an analysis reads extra input";
  if (rowTextSpecs(options.analyses) === null) return "an analysis has no byte writer for its members";
  return null;
}

/** The rows pipeline: each table row through readTable, each finished row a string line. */
async function runRowReplay(options: ReplayOptions): Promise<ReplaySummary> {
  const started = performance.now();
  const analyses = options.analyses;
  const { input, payloadBytes, needsValue } = replayInput(analyses);
  const keyJson: string[] = [];
  const keyNames: string[] = [];
  const audit = options.audit === undefined ? null : new AuditMembers(options.audit, analyses);
  const lines = rowOutput(analyses, keyJson, payloadBytes, needsValue, audit);
  const summary = emptySummary();
  const engine = replayEngine(options, payloadBytes, lines, summary, keyNames);
  for (const a of analyses) a.start?.(engine);
  const internKey = (name: string): number => {
    const id = engine.internKey(name);
    if (keyJson[id] === undefined) {
      keyJson[id] = JSON.stringify(name);
      keyNames[id] = name;
    }
    return id;
  };
  let columns: Columns | null = null;
  const batch = allocateBatch(options.batchRecordsMax, payloadBytes);
  const bytes = new LineBuffer();
  const write = (): Promise<void> | undefined => {
    lines.drain(bytes);
    return bytes.bytes > 0 ? writeWithBackpressure(options.output, bytes.take()) : undefined;
  };
  const target: RowTarget = {
    options,
    input,
    payloadBytes,
    needsValue,
    singleKey: singleKeyOf(options.input),
    internKey,
    lines,
    summary,
    batch,
  };
  let rowsRead = 0;
  const progress = startProgress(options.progress, () => rowsRead);
  try {
    summary.rows = await readTable(
      options.input,
      (header) => {
        columns = resolveColumns(header, options, input, needsValue);
      },
      (row: TableRow): Promise<void> | undefined => {
        if (!appendRow(row, columns as Columns, target)) return undefined;
        rowsRead = row.row + 1;
        if (batch.length < options.batchRecordsMax) return undefined;
        // A full batch: hand it to the engine (waiting if the pool is busy), then write what is done.
        return engine.push(batch).then(() => {
          batch.length = 0;
          return write();
        });
      },
    );
    if (batch.length > 0) await engine.push(batch);
    await engine.flush(true);
    await write();
  } finally {
    progress.stop();
    for (const a of analyses) a.stop?.();
    await engine.close();
  }
  return finishSummary(summary, engine, analyses, started);
}

/** The rows pipeline's output: each finished row a line of every analysis's rowJson. */
function rowOutput(
  analyses: readonly RecordAnalysis[],
  keyJson: readonly string[],
  payloadBytes: number,
  needsValue: boolean,
  audit: AuditMembers | null,
): ReplayOutput {
  const outputs = analyses.map((a) => ({
    fields: a.kernel.outFields,
    rowJson: (row: Float64Array, payload?: Uint8Array) => a.rowJson(row, payload),
    nullJson: a.nullJson,
  }));
  return new ReplayOutput((id) => keyJson[id], outputs, payloadBytes, needsValue, undefined, audit);
}

/** The one analysis that reads extra input (at most one), its payload width, and whether rows need a value. */
function replayInput(analyses: readonly RecordAnalysis[]): {
  input: RecordInput | undefined;
  payloadBytes: number;
  needsValue: boolean;
} {
  const inputs = analyses.filter((a) => a.input !== undefined);
  if (inputs.length > 1)
    throw new ConfigError("--analysis", `${inputs.map((a) => a.name).join(" and ")} both read extra input; run them separately`);
  const input = inputs[0]?.input;
  const needsValue = input === undefined || input.needsValue || analyses.some((a) => a.input === undefined);
  return { input, payloadBytes: input?.payloadBytes ?? 0, needsValue };
}

/** The replay's engine: each finished record through the analyses into its output line; late records as late lines. */
function replayEngine(
  options: ReplayOptions,
  payloadBytes: number,
  lines: ReplayOutput,
  summary: ReplaySummary,
  keyNames: readonly string[],
): StreamEngine {
  const rows: Float64Array[] = options.analyses.map(() => new Float64Array(0));
  const ctx: RowContext = { keyId: 0, key: "", position: 0, time: 0, value: 0 };
  return new StreamEngine(replayEngineOptions(options, payloadBytes), {
    onOutput(chunk: OutputChunk) {
      for (let i = 0; i < chunk.length; i++) {
        const position = chunk.positions[i];
        const payload = payloadBytes > 0 ? chunk.payload.subarray(i * payloadBytes, (i + 1) * payloadBytes) : undefined;
        observeRecord(options.analyses, chunk, i, keyNames[chunk.keyIds[i]], ctx, rows, false, payload);
        lines.complete(position, chunk.values[i], rows, (chunk.flags[i] & FLAG_OUT_OF_ORDER) !== 0 ? ROW_OUT_OF_ORDER : 0, payload);
      }
    },
    onLate(record) {
      summary.late++;
      lines.late(record.position, record.value);
    },
  });
}
