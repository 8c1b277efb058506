/**
 * The rolling-statistics analysis: its options, the kernel's output row, and how a row becomes
 * the fields a user sees. The compute is kernels/rolling.ts.
 */
import { ConfigError, type KernelExports, type OutputChunk, type StreamKernel } from "../../engine/core/mod.js";
import { formatStatistic, STATISTIC_BYTES_MAX, writeAscii, writeInteger, writeStatisticAt } from "../number-format.js";
import { statisticValue, type RecordAnalysis, type RowTextWriter } from "../analysis.js";

/** Output fields of one record, in the kernel's row order. */
export const ROLLING_FIELDS = ["count", "mean", "std", "std_pop", "min", "max", "slope", "ewma", "z"] as const;
export type RollingField = (typeof ROLLING_FIELDS)[number];
/** f64 per output row: the fields above plus a flags word. */
export const ROLLING_OUT_FIELDS = 10;
/** Offset of the flags word in a row; bit 0: a time window hit its capacity and lost its oldest. */
export const ROLLING_FLAGS_INDEX = 9;
export const ROLLING_FLAG_TRUNCATED = 1;

export const DEFAULT_ROLLING_ALPHA = 0.1;
/** Most records a time window may hold per key (ring positions are 16-bit in the kernel). */
export const ROLLING_CAPACITY_MAX = 65535;
export const DEFAULT_TIME_WINDOW_CAPACITY = 4096;

export type RollingWindow = { kind: "count"; records: number } | { kind: "time"; span: number; capacity: number };

export interface RollingOptions {
  window: RollingWindow;
  /** EWMA smoothing factor in (0, 1]: ewma_i = alpha·x_i + (1 − alpha)·ewma_{i−1}, ewma_0 = x_0. */
  alpha: number;
  /** Divisor that turns time units into slope units: 1000 for epoch ms (slope per second), 1 for plain numbers. */
  timeScale: number;
}

/** Kernel mode code for a window kind. */
export function rollingMode(window: RollingWindow): 0 | 1 {
  return window.kind === "count" ? 0 : 1;
}

/** Ring capacity of a window: N for a count window, the configured capacity for a time window. */
export function rollingCapacity(window: RollingWindow): number {
  return window.kind === "count" ? window.records : window.capacity;
}

/** Records a key's window must hold before its statistics are defined (null until then): N for a count window, 1 for a time window. */
export function rollingMinCount(window: RollingWindow): number {
  return window.kind === "count" ? window.records : 1;
}

/** Bytes of kernel state per key; must equal the kernel's rollingStateBytes (checked by a test). */
export function rollingStateBytes(window: RollingWindow): number {
  const cap = rollingCapacity(window);
  const times = window.kind === "time" ? cap * 8 : 0;
  // Header, value ring, time ring, then two deques of cap + 4 + ⌊cap/4⌋ u16 slots.
  const dequeSlots = cap + 4 + (cap >> 2);
  return (176 + cap * 8 + times + dequeSlots * 4 + 7) & ~7;
}

export function validateRollingOptions(options: RollingOptions): RollingOptions {
  const w = options.window;
  if (w.kind === "count") {
    if (!Number.isInteger(w.records) || w.records < 1 || w.records > ROLLING_CAPACITY_MAX) {
      throw new ConfigError("window", `count window must be an integer in 1..${ROLLING_CAPACITY_MAX}, got ${w.records}`);
    }
  } else {
    if (!(w.span > 0) || !Number.isFinite(w.span)) {
      throw new ConfigError("span", `time window span must be a positive finite duration, got ${w.span}`);
    }
    if (!Number.isInteger(w.capacity) || w.capacity < 2 || w.capacity > ROLLING_CAPACITY_MAX) {
      throw new ConfigError("windowRecordsMax", `time window capacity must be an integer in 2..${ROLLING_CAPACITY_MAX}, got ${w.capacity}`);
    }
  }
  if (!(options.alpha > 0 && options.alpha <= 1)) {
    throw new ConfigError("alpha", `EWMA alpha must be in (0, 1], got ${options.alpha}`);
  }
  if (!(options.timeScale > 0) || !Number.isFinite(options.timeScale)) {
    throw new ConfigError("timeScale", `must be a positive finite number, got ${options.timeScale}`);
  }
  return options;
}

/** The engine's view of the rolling kernel for these options. */
export function rollingKernel(options: RollingOptions): StreamKernel {
  validateRollingOptions(options);
  const mode = rollingMode(options.window);
  const cap = rollingCapacity(options.window);
  const span = options.window.kind === "time" ? options.window.span : 0;
  return {
    name: "rolling",
    stateBytesPerKey: rollingStateBytes(options.window),
    outFields: ROLLING_OUT_FIELDS,
    processFn: "rollingProcess",
    extraArgs: [],
    initKey(kernels: KernelExports, statePtr: number): void {
      kernels.rollingInit(statePtr, mode, cap, span, options.alpha, options.timeScale);
    },
  };
}

/** JSON members of every field null: a record without statistics. */
export const ROLLING_NULL_JSON = ROLLING_FIELDS.map((f) => `"${f}":null`).join(",");

/**
 * The rolling analysis for replay and the run job. Count windows report null statistics until a
 * key's window holds N records; a row whose time window hit its capacity says so
 * (`"window_truncated": true`) and is counted in the notes.
 */
export function rollingAnalysis(options: RollingOptions): RecordAnalysis & { truncatedRows(): number } {
  const kernel = rollingKernel(options);
  const minCount = rollingMinCount(options.window);
  const capacity = rollingCapacity(options.window);
  let truncated = 0;
  return {
    name: "rolling",
    kernel,
    // The kernel's row: the fields, then the flags word (bit 0: the time window hit its capacity).
    outColumns: [...ROLLING_FIELDS, "rolling_flags"],
    nullJson: ROLLING_NULL_JSON,
    rowText: { name: "rolling", minCount },
    rowJson(row: Float64Array): string {
      if (row[0] < minCount) return ROLLING_NULL_JSON;
      const members =
        `"count":${row[0]},"mean":${formatStatistic(row[1])},"std":${formatStatistic(row[2])},` +
        `"std_pop":${formatStatistic(row[3])},"min":${formatStatistic(row[4])},"max":${formatStatistic(row[5])},` +
        `"slope":${formatStatistic(row[6])},"ewma":${formatStatistic(row[7])},"z":${formatStatistic(row[8])}`;
      return (row[ROLLING_FLAGS_INDEX] & ROLLING_FLAG_TRUNCATED) !== 0 ? `${members},"window_truncated":true` : members;
    },
    rowFields(row: Float64Array, into: Record<string, unknown>): void {
      if (row[0] < minCount) {
        for (const f of ROLLING_FIELDS) into[f] = null;
        return;
      }
      // ROLLING_FIELDS are the row's first columns in order; count is always finite.
      into.count = row[0];
      for (let i = 1; i < ROLLING_FIELDS.length; i++) into[ROLLING_FIELDS[i]] = statisticValue(row[i]);
      if ((row[ROLLING_FLAGS_INDEX] & ROLLING_FLAG_TRUNCATED) !== 0) into.window_truncated = true;
    },
    // Only a time window is ever truncated (the kernel flags nothing else): a count window needs no look at its rows.
    observe:
      options.window.kind === "time"
        ? (row: Float64Array): void => {
            if ((row[ROLLING_FLAGS_INDEX] & ROLLING_FLAG_TRUNCATED) !== 0) truncated++;
          }
        : undefined,
    observeChunk:
      options.window.kind === "time"
        ? (chunk: OutputChunk, k: number): void => {
            // The flags column, strided: one load a row, no view or call.
            const rows = chunk.outs[k];
            for (let at = ROLLING_FLAGS_INDEX; at < rows.length; at += ROLLING_OUT_FIELDS)
              if ((rows[at] & ROLLING_FLAG_TRUNCATED) !== 0) truncated++;
          }
        : undefined,
    notes(): string[] {
      if (truncated === 0) return [];
      return [
        `${truncated} rows had a time window longer than its capacity (${capacity} records per key; ` +
          `--window-records-max); their statistics cover only the newest records (marked "window_truncated")`,
      ];
    },
    truncatedRows: () => truncated,
  };
}

const ascii = (text: string): Uint8Array => Uint8Array.from(text, (c) => c.charCodeAt(0));
const NULL_BYTES = ascii(ROLLING_NULL_JSON);
/** `"count":`, then `,"<field>":` before each statistic (ROLLING_FIELDS order). */
const NAME_BYTES = ROLLING_FIELDS.map((f, i) => ascii(`${i === 0 ? "" : ","}"${f}":`));
const TRUNCATED_BYTES = ascii(',"window_truncated":true');

/**
 * The rolling analysis's rowJson as bytes, for a thread that writes replay's lines from output
 * rows: the same text (the test compares them), without strings.
 */
export function rollingRowText(minCount: number): RowTextWriter {
  return {
    fields: ROLLING_OUT_FIELDS,
    bytesMax: NULL_BYTES.length + NAME_BYTES.reduce((n, b) => n + b.length + STATISTIC_BYTES_MAX, 0) + TRUNCATED_BYTES.length,
    nullJson: ROLLING_NULL_JSON,
    write(out: Uint8Array, at: number, rows: Float64Array, offset: number): number {
      const count = rows[offset];
      if (count < minCount) return put(out, at, NULL_BYTES);
      at = put(out, at, NAME_BYTES[0]);
      // `${count}`: an integer (passed as one, so not boxed), else its String.
      const whole = count | 0;
      at = whole === count ? writeInteger(out, at, whole) : writeAscii(out, at, String(count));
      for (let i = 1; i < NAME_BYTES.length; i++) at = writeStatisticAt(out, put(out, at, NAME_BYTES[i]), rows, offset + i);
      return (rows[offset + ROLLING_FLAGS_INDEX] & ROLLING_FLAG_TRUNCATED) !== 0 ? put(out, at, TRUNCATED_BYTES) : at;
    },
  };
}

function put(out: Uint8Array, at: number, bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) out[at++] = bytes[i];
  return at;
}
