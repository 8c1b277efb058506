/**
 * From reason bits to what a security officer acts on: an anomaly score in [0, 1], a confidence
 * level, a risk level and the quarantine decision.
 *
 * Score: each reason has a weight, the probability-like strength of that evidence alone; the
 * reasons of an event combine as independent evidence (noisy-OR): s ← s + w − s·w, which is
 * 1 − Π(1 − w_i) and equals w exactly for a single reason. Weights (REASON_WEIGHT) put a proven
 * violation — a duplicate in a batch, a wrong check digit, a serial after its batch closed — at
 * high or critical on its own, and statistical signals (entropy, rhythm, prefixes) at low or
 * medium unless they coincide.
 *
 * Risk levels (source design): score < 0.3 none, ≥ 0.3 low, ≥ 0.6 medium, ≥ 0.8 high,
 * ≥ 0.95 critical; compared in f64 exactly as written.
 *
 * Confidence: how sure the verdict is. With reasons, the confidence of the strongest evidence:
 * 1 for exact checks, 1 − (the filter's current false-positive rate) for a filter duplicate, the
 * line's readiness (window fill × rate warm-up) for window and rhythm statistics. Without
 * reasons, the readiness: a clean verdict from a full window and a learned rate is worth more
 * than one from the first few serials of a line.
 */
import { ANOMALY_MASK, ANOMALY_TYPES, REASON, REASONS, TYPE_MASK, type AnomalyType, type Reason } from "./layout.js";

export const RISK_LEVELS = ["none", "low", "medium", "high", "critical"] as const;
export type RiskLevel = (typeof RISK_LEVELS)[number];
/** Lower bound of each level above none. */
export const RISK_THRESHOLDS: Readonly<Record<Exclude<RiskLevel, "none">, number>> = Object.freeze({
  low: 0.3,
  medium: 0.6,
  high: 0.8,
  critical: 0.95,
});

export const REASON_WEIGHT: Readonly<Record<Reason, number>> = Object.freeze({
  gtin_check_digit: 0.9,
  serial_length: 0.8,
  serial_charset: 0.8,
  pattern_mismatch: 0.6,
  duplicate_in_batch: 0.96,
  duplicate_across_batches: 0.85,
  sequential_delta: 0.7,
  repeated_prefix: 0.4,
  low_position_variability: 0.4,
  low_entropy: 0.6,
  burst: 0.6,
  above_line_rate: 0.7,
  long_gap: 0.3,
  timestamp_backwards: 0.5,
  timestamp_future: 0.6,
  new_machine_for_batch: 0.85,
  new_operator_for_batch: 0.3,
  batch_reopened: 0.5,
  serial_after_batch_close: 0.85,
});

/** Reasons whose evidence is statistical: their confidence is the line's readiness. */
const STATISTICAL = REASON.low_entropy | REASON.low_position_variability | REASON.burst | REASON.long_gap;

const WEIGHTS = REASONS.map((r) => [REASON[r], REASON_WEIGHT[r]] as const);

export function anomalyScore(flags: number): number {
  if ((flags & ANOMALY_MASK) === 0) return 0;
  let s = 0;
  for (const [bit, w] of WEIGHTS) if ((flags & bit) !== 0) s = s + w - s * w;
  return s;
}

export function riskCode(score: number): number {
  if (score >= RISK_THRESHOLDS.critical) return 4;
  if (score >= RISK_THRESHOLDS.high) return 3;
  if (score >= RISK_THRESHOLDS.medium) return 2;
  if (score >= RISK_THRESHOLDS.low) return 1;
  return 0;
}

export function riskLevel(score: number): RiskLevel {
  return RISK_LEVELS[riskCode(score)];
}

/** Confidence of a verdict (see the file comment); readiness and filterFp in [0, 1]. */
export function confidenceLevel(flags: number, readiness: number, filterFalsePositiveRate: number): number {
  const ready = Number.isFinite(readiness) ? readiness : 0;
  if ((flags & ANOMALY_MASK) === 0) return ready;
  let best = -1;
  for (const [bit] of WEIGHTS) {
    if ((flags & bit) === 0) continue;
    const c = bit === REASON.duplicate_across_batches ? 1 - filterFalsePositiveRate : (bit & STATISTICAL) !== 0 ? ready : 1;
    if (c > best) best = c;
  }
  return best < 0 ? ready : best;
}

export function reasonsOf(flags: number): Reason[] {
  return REASONS.filter((r) => (flags & REASON[r]) !== 0);
}

export function anomalyTypesOf(flags: number): AnomalyType[] {
  return ANOMALY_TYPES.filter((t) => (flags & TYPE_MASK[t]) !== 0);
}
