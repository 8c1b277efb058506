/**
 * `linewatch replay`: a file (or stdin) through one analysis, one NDJSON line out per input
 * row, in input order. The contract of the output is in README.md ("linewatch replay").
 */
import { basename, extname } from "node:path";
import type { Writable } from "node:stream";
import { allocateBatch, appendRecord } from "./batch.js";
import { ConfigError } from "./errors.js";
import { parseEventTime, parseReading, type TimeUnit } from "./event-time.js";
import { OrderedLines } from "./ordered-lines.js";
import { FLAG_OUT_OF_ORDER, StreamEngine, type OutputChunk } from "./stream-engine.js";
import { readTable, type TableHeader, type TableRow } from "../connectors/table-reader.js";
import {
  DEFAULT_ROLLING_ALPHA, ROLLING_FIELDS, ROLLING_FLAG_TRUNCATED, ROLLING_FLAGS_INDEX, rollingKernel, type RollingWindow,
} from "../operators/rolling.js";

export interface ReplayOptions {
  input: string;
  window: RollingWindow;
  /** Key columns; undefined: machine_id,sensor_type where present, else one key for the file. */
  keyColumns?: string[];
  timeColumn: string;
  timeUnit: TimeUnit;
  /** Value column; undefined: sensor_value, else value. */
  valueColumn?: string;
  alpha: number;
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
  late: number;
  outOfOrder: number;
  truncated: number;
  keys: number;
  seconds: number;
}

export const DEFAULT_REPLAY_BATCH_RECORDS = 4096;
export const DEFAULT_REPLAY_KEYS_MAX = 4096;

export async function runReplay(options: ReplayOptions): Promise<ReplaySummary> {
  const started = performance.now();
  const timeScale = options.timeUnit === "ms" ? 1000 : 1;
  const kernel = rollingKernel({ window: options.window, alpha: options.alpha, timeScale });
  const minCount = options.window.kind === "count" ? options.window.records : 1;
  const lines = new OrderedLines();
  const summary: ReplaySummary = { rows: 0, rejected: 0, late: 0, outOfOrder: 0, truncated: 0, keys: 0, seconds: 0 };
  const engine = new StreamEngine(
    {
      kernel,
      workers: options.workers,
      groups: Math.min(16, options.keysMax),
      keysMax: options.keysMax,
      batchRecordsMax: options.batchRecordsMax,
      lateness: options.lateness,
      reorderRecordsPerKeyMax: 1 << 20,
    },
    {
      onOutput(chunk: OutputChunk) {
        for (let i = 0; i < chunk.length; i++) {
          const row = chunk.out.subarray(i * chunk.outFields, (i + 1) * chunk.outFields);
          let extra = "";
          if ((chunk.flags[i] & FLAG_OUT_OF_ORDER) !== 0) extra += ',"out_of_order":true';
          if ((row[ROLLING_FLAGS_INDEX] & ROLLING_FLAG_TRUNCATED) !== 0) {
            extra += ',"window_truncated":true';
            summary.truncated++;
          }
          lines.complete(chunk.positions[i], `"value":${chunk.values[i]},${row[0] >= minCount ? statsJson(row) : NULL_STATS}${extra}`);
        }
      },
      onLate(record) {
        summary.late++;
        lines.complete(record.position, `"value":${record.value},${NULL_STATS},"late":true`);
      },
    },
  );
  let columns: Columns | null = null;
  const batch = allocateBatch(options.batchRecordsMax);
  const write = (text: string): Promise<void> | undefined => (text.length > 0 ? writeWithBackpressure(options.output, text) : undefined);
  const singleKey = options.input === "-" ? "stdin" : basename(options.input, extname(options.input));
  const progress = startProgress(options.progress, () => summary.rows);
  try {
    summary.rows = await readTable(
      options.input,
      (header) => {
        columns = resolveColumns(header, options);
      },
      async (row: TableRow) => {
        const c = columns as Columns;
        const key = c.key.length === 0 ? singleKey : c.key.map((k) => String(row.get(k) ?? "")).join("/");
        const rawTime = row.get(c.time);
        lines.add(row.row, key, timestampJson(rawTime));
        const time = parseEventTime(rawTime, options.timeUnit);
        const value = parseReading(row.get(c.value));
        if (typeof time === "string" || typeof value === "string") {
          summary.rejected++;
          lines.complete(row.row, `"value":null,${NULL_STATS},"error":${JSON.stringify(typeof time === "string" ? time : value)}`);
        } else {
          appendRecord(batch, engine.internKey(key), time, value, row.row);
          if (batch.length === options.batchRecordsMax) {
            await engine.push(batch);
            batch.length = 0;
          }
        }
        if (lines.pending >= 4096) await write(lines.drain());
      },
    );
    if (batch.length > 0) await engine.push(batch);
    await engine.flush(true);
    await write(lines.drain());
  } finally {
    progress.stop();
    await engine.close();
  }
  const m = engine.metrics();
  summary.outOfOrder = m.recordsOutOfOrder;
  summary.keys = m.keys;
  summary.seconds = (performance.now() - started) / 1000;
  return summary;
}

// ---- internals ----

interface Columns {
  key: string[];
  time: string;
  value: string;
}

const NULL_STATS = ROLLING_FIELDS.map((f) => `"${f}":null`).join(",");

function statsJson(row: Float64Array): string {
  let s = "";
  for (let k = 0; k < ROLLING_FIELDS.length; k++) {
    const v = row[k];
    s += `${k === 0 ? "" : ","}"${ROLLING_FIELDS[k]}":${Number.isFinite(v) ? String(v) : "null"}`;
  }
  return s;
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

function resolveColumns(header: TableHeader, o: ReplayOptions): Columns {
  const has = (c: string) => header.columns.includes(c);
  // NDJSON records may differ from the first one; only CSV headers are checked strictly.
  const strict = header.format === "csv";
  const key = o.keyColumns ?? ["machine_id", "sensor_type"].filter(has);
  const value = o.valueColumn ?? (has("sensor_value") || !has("value") ? "sensor_value" : "value");
  if (strict) {
    for (const [flag, col] of [...key.map((k) => ["--key", k]), ["--time", o.timeColumn], ["--value", value]]) {
      if (!has(col)) throw new ConfigError(flag, `column "${col}" is not in ${o.input} (columns: ${header.columns.join(", ")})`);
    }
  }
  return { key, time: o.timeColumn, value };
}

function writeWithBackpressure(out: Writable, text: string): Promise<void> | undefined {
  if (out.write(text)) return undefined;
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

export { DEFAULT_ROLLING_ALPHA };
