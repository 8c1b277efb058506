/**
 * What both ways of replaying share (engine/jobs/replay.ts): which columns a table's rows are
 * read from, how a row becomes a record and the start of its output line (or a rejected line),
 * the engine's options, the output's backpressure and the progress lines.
 */
import { basename, extname } from "node:path";
import type { Writable } from "node:stream";
import {
  appendRecord,
  ConfigError,
  parseEventTime,
  parseReading,
  type RecordBatch,
  type StreamEngine,
  type StreamEngineOptions,
} from "../core/mod.js";
import type { TableHeader, TableRow } from "../../connectors/files/mod.js";
import type { RecordAnalysis, RecordInput } from "../../operators/mod.js";
import type { ReplayOptions, ReplaySummary } from "./replay.js";

/** Where rows' lines are begun and rejected rows said so (ReplayOutput, ReplayBlocks). */
export interface ReplayLines {
  /** Registers the next row (rows come consecutively) with its timestamp's JSON text. */
  add(row: number, keyId: number, timestampJson: string): void;
  reject(row: number, reason: string): void;
}

/** The replay's engine options (the analyses' kernels, its sizes, the lateness). */
export function replayEngineOptions(options: ReplayOptions, payloadBytes: number): StreamEngineOptions {
  return {
    kernels: options.analyses.map((a) => a.kernel),
    workers: options.workers,
    groups: Math.min(8, options.keysMax),
    keysMax: options.keysMax,
    batchRecordsMax: options.batchRecordsMax,
    lateness: options.lateness,
    reorderRecordsPerKeyMax: 1 << 20,
    payloadBytes,
  };
}

/** The key of every row of a table without key columns: the file's name (stdin: "stdin"). */
export function singleKeyOf(input: string): string {
  return input === "-" ? "stdin" : basename(input, extname(input));
}

export function emptySummary(): ReplaySummary {
  return { rows: 0, rejected: 0, firstRejection: null, late: 0, outOfOrder: 0, keys: 0, seconds: 0, notes: [] };
}

/** The summary's counts from the engine and the analyses' notes, and the seconds since `started`. */
export function finishSummary(
  summary: ReplaySummary,
  engine: StreamEngine,
  analyses: readonly RecordAnalysis[],
  started: number,
): ReplaySummary {
  const m = engine.metrics();
  summary.outOfOrder = m.recordsOutOfOrder;
  summary.keys = m.keys;
  summary.notes = analyses.flatMap((a) => a.notes?.() ?? []);
  summary.seconds = (performance.now() - started) / 1000;
  return summary;
}

/** What {@link appendRow} writes to. */
export interface RowTarget {
  options: ReplayOptions;
  input: RecordInput | undefined;
  payloadBytes: number;
  needsValue: boolean;
  /** The key of every row when the table has no key columns (the file's name). */
  singleKey: string;
  internKey: (name: string) => number;
  lines: ReplayLines;
  summary: ReplaySummary;
  batch: RecordBatch;
}

/** A table row into `batch`, its output line begun; false when it is rejected (its line says why, and it is counted). */
export function appendRow(row: TableRow, c: Columns, t: RowTarget): boolean {
  const key = c.key.length === 0 ? t.singleKey : c.key.map((k) => String(row.get(k) ?? "")).join("/");
  const rawTime = row.get(c.time);
  const keyId = t.internKey(key);
  t.lines.add(row.row, keyId, timestampJson(rawTime));
  const time = parseEventTime(rawTime, t.options.timeUnit);
  const value = t.needsValue ? parseReading(row.get(c.value)) : 0;
  const payloadError = t.input === undefined ? null : t.input.encode(row, t.batch.payload as Uint8Array, t.batch.length * t.payloadBytes);
  const error = typeof time === "string" ? time : typeof value === "string" ? value : payloadError;
  if (error !== null) {
    if (t.summary.rejected++ === 0)
      t.summary.firstRejection = `${t.options.input === "-" ? "stdin" : t.options.input}:${row.line}: ${error}`;
    t.lines.reject(row.row, error);
    return false;
  }
  appendRecord(t.batch, keyId, time as number, value as number, row.row);
  return true;
}

export interface Columns {
  key: string[];
  time: string;
  value: string;
}

/** The timestamp as given: numbers stay numbers (a numeric CSV cell too), text stays text. */
export function timestampJson(raw: unknown): string {
  if (raw === undefined || raw === null) return "null";
  if (typeof raw === "number") return Number.isFinite(raw) ? String(raw) : "null";
  const text = String(raw);
  const trimmed = text.trim();
  if (/^-?\d+(\.\d+)?$/.test(trimmed) && Number.isFinite(Number(trimmed))) return String(Number(trimmed));
  return JSON.stringify(text);
}

export function resolveColumns(header: TableHeader, o: ReplayOptions, input: RecordInput | undefined, needsValue: boolean): Columns {
  const has = (c: string) => header.columns.includes(c);
  // NDJSON records may differ from the first one; only CSV headers are checked strictly.
  const strict = header.format === "csv";
  const key = o.keyColumns ?? (input?.keyColumns ? [...input.keyColumns] : ["machine_id", "sensor_type"].filter(has));
  const value = o.valueColumn ?? (has("sensor_value") || !has("value") ? "sensor_value" : "value");
  const time = o.timeColumn === "timestamp" && input?.timeColumn !== undefined && !has("timestamp") ? input.timeColumn : o.timeColumn;
  if (strict) {
    const needed = [...key.map((k) => ["--key", k]), ["--time", time], ...(needsValue ? [["--value", value]] : [])];
    for (const [flag, col] of needed) {
      if (!has(col)) throw new ConfigError(flag, `column "${col}" is not in ${o.input} (columns: ${header.columns.join(", ")})`);
    }
  }
  return { key, time, value };
}

export function writeWithBackpressure(out: Writable, chunk: Uint8Array): Promise<void> | undefined {
  if (out.write(chunk)) return undefined;
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    out.once("error", onError);
    out.once("drain", () => {
      out.off("error", onError);
      resolve();
    });
  });
}

export function startProgress(sink: Writable | null, rows: () => number): { stop(): void } {
  if (sink === null) return { stop() {} };
  const t0 = performance.now();
  const timer = setInterval(() => {
    const s = (performance.now() - t0) / 1000;
    sink.write(`replay: ${rows()} rows read, ${Math.round(rows() / s)} rows/s\n`);
  }, 1000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
