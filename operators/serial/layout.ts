/**
 * The byte-level contract between the serial-integrity operator and its kernel
 * (kernels/serial.ts): the record payload, the reason bits, the output row, the state block and
 * the parameters. The kernel mirrors every offset here; test/serial-kernel.test.ts checks the
 * two agree (state size, output width).
 *
 * Payload: SERIAL_PAYLOAD_BYTES per record, written by the encoder on the main thread.
 *
 *   off  size  field
 *     0     8  f64  arrival time: when the record reached linewatch (the `received_timestamp`
 *                   column, else the processing clock), in time units; NaN = unknown
 *     8     4  u32  ledger bits: the main thread's verdicts (duplicates, behaviour, per-GTIN
 *                   pattern), REASON bits 12–18 plus MARK_PATTERN_SET
 *    12     1  u8   serial length in characters (code points), clamped to 255
 *    13     1  u8   serial bytes stored (UTF-8, ≤ 32)
 *    14     1  u8   gtin bytes stored (≤ 20)
 *    15     1  u8   batch bytes stored (≤ 20)
 *    16     1  u8   machine bytes stored (≤ 20)
 *    17     1  u8   operator bytes stored (≤ 20)
 *    18     1  u8   record flags (REC_*)
 *    19     1  u8   gtin length in characters, clamped to 255
 *    20    32  serial_number, UTF-8 (whole characters, at most 32 bytes)
 *    52    20  gtin
 *    72    20  batch_number
 *    92    20  machine_id
 *   112    20  operator_id
 *   132     4  unused
 *
 * 136 bytes = 17 × 8, so the f64 of every record is 8-byte aligned. Text fields are read by
 * their stored lengths; the bytes after them are unspecified (the encoder does not clear them).
 */
import { ConfigError } from "../../engine/core/web.js";

export const SERIAL_PAYLOAD_BYTES = 136;

export const PAYLOAD = {
  arrival: 0,
  ledger: 8,
  serialChars: 12,
  serialBytes: 13,
  gtinBytes: 14,
  batchBytes: 15,
  machineBytes: 16,
  operatorBytes: 17,
  recordFlags: 18,
  gtinChars: 19,
  serial: 20,
  gtin: 52,
  batch: 72,
  machine: 92,
  operator: 112,
} as const;

export const PAYLOAD_FIELD_BYTES = { serial: 32, gtin: 20, batch: 20, machine: 20, operator: 20 } as const;

/** Record flags (payload byte 18). */
export const REC_SERIAL_TRUNCATED = 1;
export const REC_SERIAL_NON_ASCII = 2;
/** The record is a batch-close event, not a serial: the kernel passes it through. */
export const REC_BATCH_CLOSE = 4;
export const REC_GTIN_TRUNCATED = 8;
export const REC_TEXT_TRUNCATED = 16;

/**
 * Reason bits of an output row (field `flags`). Bits 0–11 are decided by the kernel, 12–18 by
 * the main thread (the ledger, carried in the payload and OR-ed in by the operator).
 */
export const REASON = {
  gtin_check_digit: 1 << 0,
  serial_length: 1 << 1,
  serial_charset: 1 << 2,
  sequential_delta: 1 << 3,
  repeated_prefix: 1 << 4,
  low_position_variability: 1 << 5,
  low_entropy: 1 << 6,
  burst: 1 << 7,
  above_line_rate: 1 << 8,
  long_gap: 1 << 9,
  timestamp_backwards: 1 << 10,
  timestamp_future: 1 << 11,
  pattern_mismatch: 1 << 12,
  duplicate_in_batch: 1 << 13,
  duplicate_across_batches: 1 << 14,
  new_machine_for_batch: 1 << 15,
  new_operator_for_batch: 1 << 16,
  batch_reopened: 1 << 17,
  serial_after_batch_close: 1 << 18,
} as const;
export type Reason = keyof typeof REASON;
export const REASONS = Object.keys(REASON) as Reason[];

/** Not anomalies: a per-GTIN pattern applied to the record; the record is a batch-close event. */
export const MARK_PATTERN_SET = 1 << 24;
export const MARK_CONTROL = 1 << 25;
export const KERNEL_REASON_MASK = 0xfff;
export const LEDGER_REASON_MASK = 0x7f000;
export const ANOMALY_MASK = KERNEL_REASON_MASK | LEDGER_REASON_MASK;

/** The anomaly types of the source design, and the reasons each stands for. */
export const ANOMALY_TYPES = ["pattern", "duplicate", "sequence", "entropy", "temporal", "behavioral"] as const;
export type AnomalyType = (typeof ANOMALY_TYPES)[number];
export const TYPE_OF_REASON: Readonly<Record<Reason, AnomalyType>> = {
  gtin_check_digit: "pattern",
  serial_length: "pattern",
  serial_charset: "pattern",
  pattern_mismatch: "pattern",
  duplicate_in_batch: "duplicate",
  duplicate_across_batches: "duplicate",
  sequential_delta: "sequence",
  repeated_prefix: "sequence",
  low_position_variability: "sequence",
  low_entropy: "entropy",
  burst: "temporal",
  above_line_rate: "temporal",
  long_gap: "temporal",
  timestamp_backwards: "temporal",
  timestamp_future: "temporal",
  new_machine_for_batch: "behavioral",
  new_operator_for_batch: "behavioral",
  batch_reopened: "behavioral",
  serial_after_batch_close: "behavioral",
};

/** Bit mask of the reasons of each anomaly type. */
export const TYPE_MASK: Readonly<Record<AnomalyType, number>> = Object.fromEntries(
  ANOMALY_TYPES.map((t) => [t, REASONS.filter((r) => TYPE_OF_REASON[r] === t).reduce((m, r) => m | REASON[r], 0)]),
) as Record<AnomalyType, number>;

/** Output row: SERIAL_OUT_FIELDS f64 per record. The kernel writes 0–12, the operator 13–16. */
export const SERIAL_COL = {
  flags: 0,
  entropy_bits_per_char: 1,
  min_entropy_mcv: 2,
  serial_min_entropy_bits: 3,
  guess_probability: 4,
  window_serials: 5,
  position_entropy_min: 6,
  interval: 7,
  learned_interval: 8,
  sequence_delta_min: 9,
  line_serials: 10,
  readiness: 11,
  serial_surprisal_bits: 12,
  anomaly_score: 13,
  confidence_level: 14,
  risk: 15,
  quarantine: 16,
} as const;
export const SERIAL_OUT_FIELDS = 17;
/** Fields the kernel writes (the operator fills the rest). */
export const SERIAL_KERNEL_FIELDS = 13;

/** Positions with their own histograms: GS1 AI (21) serials have at most 20 characters. */
export const SERIAL_POSITIONS = 20;
export const SERIAL_WINDOW_MAX = 1024;
export const SERIAL_RECENT_MAX = 32;
/**
 * NIST SP 800-90B §6.3.1: the 99.5 % normal quantile unrounded, as NIST's own tool uses it
 * (ZALPHA in ea_non_iid's utils.h); the standard's text rounds it to 2.576, which moves the bound
 * by about 1e−7 bits at a million samples.
 */
export const MCV_Z = 2.5758293035489008;
/** Fixed-point scale of the c·log2(c) table: sums of table entries are exact integers in f64. */
export const ENTROPY_FIXED_SCALE = 4294967296;

export interface SerialParams {
  /** K: serials in each line's sliding window (entropy, per-position statistics). */
  window: number;
  /** Recent serials each new one is compared with for deltas and prefixes. */
  recent: number;
  /** A serial within this many steps (base 10, 36 or 62) of a recent one is sequential; 0: off. */
  sequenceDeltaMax: number;
  /** Shared prefix length that counts as repeated; 0: off. */
  prefixMin: number;
  /** Recent serials that must share the prefix. */
  prefixRepeat: number;
  /** A position is low-variability when its most common character has this share of the window. */
  lowVariabilityShare: number;
  /** Low-variability positions a serial must carry the common character of to be flagged. */
  lowVariabilityPositions: number;
  /** Window serials before the window checks (low variability, entropy) speak. */
  statisticsMinSerials: number;
  /** Implied probability of guessing a valid serial above which entropy is flagged (EU FMD: 1/10,000). */
  guessProbabilityMax: number;
  /**
   * A poor window flags only serials whose surprisal under it is below this share of L × H_ref
   * (length × the line's baseline Shannon bits per character): the predictable ones.
   */
  surprisalRatio: number;
  /** Intervals learned before the rate checks (burst, gap) speak. */
  rateWarmup: number;
  /** EWMA weight of the short-term interval (burst detector). */
  fastAlpha: number;
  /** EWMA weight of the learned interval. */
  slowAlpha: number;
  /** Burst: short-term interval below this share of the learned one (rate above 1/ratio × learned). */
  burstRatio: number;
  /** Gap: an interval above this many learned intervals; 0: off. */
  gapFactor: number;
  /** Shortest interval the line can physically produce, in time units; 0: off. */
  minInterval: number;
  /** How far a production timestamp may lie ahead of its arrival time, in time units; Infinity: off. */
  futureSkew: number;
}

export const DEFAULT_SERIAL_PARAMS: Readonly<SerialParams> = Object.freeze({
  window: 256,
  recent: 8,
  sequenceDeltaMax: 64,
  prefixMin: 4,
  prefixRepeat: 3,
  lowVariabilityShare: 0.25,
  lowVariabilityPositions: 4,
  statisticsMinSerials: 64,
  guessProbabilityMax: 1e-4,
  surprisalRatio: 0.75,
  rateWarmup: 32,
  fastAlpha: 0.25,
  slowAlpha: 0.01,
  burstRatio: 0.5,
  gapFactor: 30,
  minInterval: 0,
  futureSkew: 60_000,
});

export function validateSerialParams(p: SerialParams): SerialParams {
  const int = (name: keyof SerialParams, lo: number, hi: number) => {
    const v = p[name];
    if (!Number.isInteger(v) || v < lo || v > hi) throw new ConfigError(`serial.${name}`, `must be an integer in ${lo}..${hi}, got ${v}`);
  };
  const real = (name: keyof SerialParams, lo: number, hi: number, openLo = false) => {
    const v = p[name];
    if (!(openLo ? v > lo : v >= lo) || !(v <= hi))
      throw new ConfigError(`serial.${name}`, `must be in ${openLo ? "(" : "["}${lo}, ${hi}], got ${v}`);
  };
  int("window", 1, SERIAL_WINDOW_MAX);
  int("recent", 1, Math.min(SERIAL_RECENT_MAX, p.window));
  real("sequenceDeltaMax", 0, 2 ** 52);
  int("prefixMin", 0, SERIAL_POSITIONS);
  int("prefixRepeat", 1, p.recent);
  real("lowVariabilityShare", 0, 1, true);
  int("lowVariabilityPositions", 1, SERIAL_POSITIONS);
  int("statisticsMinSerials", 2, p.window);
  real("guessProbabilityMax", 0, 1, true);
  real("surprisalRatio", 0, 1, true);
  int("rateWarmup", 1, 1 << 20);
  real("fastAlpha", 0, 1, true);
  real("slowAlpha", 0, 1, true);
  real("burstRatio", 0, 1, true);
  real("gapFactor", 0, Number.MAX_VALUE);
  real("minInterval", 0, Number.MAX_VALUE);
  if (!(p.futureSkew >= 0)) throw new ConfigError("serial.futureSkew", `must be ≥ 0 (Infinity: off), got ${p.futureSkew}`);
  return p;
}

/** The arguments of the kernel's serialInit after the state pointer, in order. */
export function serialInitArgs(p: SerialParams): number[] {
  return [
    p.window,
    p.recent,
    p.prefixMin,
    p.prefixRepeat,
    p.lowVariabilityPositions,
    p.statisticsMinSerials,
    p.rateWarmup,
    p.sequenceDeltaMax,
    p.lowVariabilityShare,
    p.guessProbabilityMax,
    p.fastAlpha,
    p.slowAlpha,
    p.burstRatio,
    p.gapFactor,
    p.minInterval,
    p.futureSkew,
    p.surprisalRatio,
  ];
}

/**
 * Bytes of kernel state per line (kernels/serial.ts): a 6528-byte header and histograms, the
 * ring of K serials (24 bytes each), count-of-counts for the overall mode (20K + 1 u16) and per
 * position (20 × (K + 1) u16), rounded up to 8. About 33 KiB at K = 256, 110 KiB at K = 1024.
 */
export function serialStateBytes(window: number): number {
  return (6528 + 24 * window + 2 * (SERIAL_POSITIONS * window + 1) + 2 * SERIAL_POSITIONS * (window + 1) + 7) & ~7;
}

/** Entries of each static table: character counts 0..20K. */
export function serialTableEntries(window: number): number {
  return SERIAL_POSITIONS * window + 1;
}

/** Bytes of the static tables: F[c] = round(c·log2 c · 2^32) and L2[n] = log2 n, f64 each. */
export function serialStaticBytes(window: number): number {
  return 16 * serialTableEntries(window);
}

/**
 * Fills the static tables at `f64[offset…]`. F is fixed point so that the kernel's running sums
 * of F over a histogram are exact integers (below 2^53) and the kernel and any TypeScript port
 * agree bit for bit; the tables are computed here, once, by JavaScript's Math.log2.
 */
export function fillSerialTables(f64: Float64Array, offset: number, window: number): void {
  const n = serialTableEntries(window);
  for (let c = 0; c < n; c++) {
    f64[offset + c] = c < 2 ? 0 : Math.round(c * Math.log2(c) * ENTROPY_FIXED_SCALE);
    f64[offset + n + c] = c < 1 ? 0 : Math.log2(c);
  }
}
