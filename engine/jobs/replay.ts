/**
 * `linewatch replay`: a file (or stdin) through one or more analyses, one NDJSON line out per
 * input row, in input order, with the members of every analysis merged. The contract of the
 * output is in docs/commands/replay.md.
 */
import { basename, extname } from "node:path";
import type { Writable } from "node:stream";
import {
  allocateBatch,
  appendRecord,
  ConfigError,
  parseEventTime,
  parseReading,
  type TimeUnit,
  FLAG_OUT_OF_ORDER,
  StreamEngine,
  type OutputChunk,
  type RecordBatch,
} from "../core/mod.js";
import { LineBuffer, readTable, type TableHeader, type TableRow } from "../../connectors/files/mod.js";
import { ReplayOutput, ROW_OUT_OF_ORDER } from "./replay-output.js";
import { observeRecord, type RecordAnalysis, type RecordInput, type RowContext } from "../../operators/mod.js";

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

export const DEFAULT_REPLAY_BATCH_RECORDS = 1024;
export const DEFAULT_REPLAY_KEYS_MAX = 4096;

export async function runReplay(options: ReplayOptions): Promise<ReplaySummary> {
  const started = performance.now();
  const analyses = options.analyses;
  const { input, payloadBytes, needsValue } = replayInput(analyses);
  const keyJson: string[] = [];
  const keyNames: string[] = [];
  const lines = new ReplayOutput(
    (id) => keyJson[id],
    analyses.map((a) => ({
      fields: a.kernel.outFields,
      rowJson: (row: Float64Array, payload?: Uint8Array) => a.rowJson(row, payload),
      nullJson: a.nullJson,
    })),
    payloadBytes,
    needsValue,
  );
  const summary: ReplaySummary = { rows: 0, rejected: 0, firstRejection: null, late: 0, outOfOrder: 0, keys: 0, seconds: 0, notes: [] };
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
  const singleKey = options.input === "-" ? "stdin" : basename(options.input, extname(options.input));
  const target: RowTarget = { options, input, payloadBytes, needsValue, singleKey, internKey, lines, summary, batch };
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
  const m = engine.metrics();
  summary.outOfOrder = m.recordsOutOfOrder;
  summary.keys = m.keys;
  summary.notes = analyses.flatMap((a) => a.notes?.() ?? []);
  summary.seconds = (performance.now() - started) / 1000;
  return summary;
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
  return new StreamEngine(
    {
      kernels: options.analyses.map((a) => a.kernel),
      workers: options.workers,
      groups: Math.min(8, options.keysMax),
      keysMax: options.keysMax,
      batchRecordsMax: options.batchRecordsMax,
      lateness: options.lateness,
      reorderRecordsPerKeyMax: 1 << 20,
      payloadBytes,
    },
    {
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
    },
  );
}

/** What {@link appendRow} writes to. */
interface RowTarget {
  options: ReplayOptions;
  input: RecordInput | undefined;
  payloadBytes: number;
  needsValue: boolean;
  /** The key of every row when the table has no key columns (the file's name). */
  singleKey: string;
  internKey: (name: string) => number;
  lines: ReplayOutput;
  summary: ReplaySummary;
  batch: RecordBatch;
}

/** A table row into `batch`, its output line begun; false when it is rejected (its line says why, and it is counted). */
function appendRow(row: TableRow, c: Columns, t: RowTarget): boolean {
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

// ---- internals ----

interface Columns {
  key: string[];
  time: string;
  value: string;
}

/** The timestamp as given: numbers stay numbers (a numeric CSV cell too), text stays text. */
function timestampJson(raw: unknown): string {
  if (raw === undefined || raw === null) return "null";
  if (typeof raw === "number") return Number.isFinite(raw) ? String(raw) : "null";
  const text = String(raw);
  const trimmed = text.trim();
  if (/^-?\d+(\.\d+)?$/.test(trimmed) && Number.isFinite(Number(trimmed))) return String(Number(trimmed));
  return JSON.stringify(text);
}

function resolveColumns(header: TableHeader, o: ReplayOptions, input: RecordInput | undefined, needsValue: boolean): Columns {
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

function writeWithBackpressure(out: Writable, chunk: Buffer): Promise<void> | undefined {
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

function startProgress(sink: Writable | null, rows: () => number): { stop(): void } {
  if (sink === null) return { stop() {} };
  const t0 = performance.now();
  const timer = setInterval(() => {
    const s = (performance.now() - t0) / 1000;
    sink.write(`replay: ${rows()} rows read, ${Math.round(rows() / s)} rows/s\n`);
  }, 1000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
