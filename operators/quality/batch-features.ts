/**
 * The quality model's features: aggregates of a batch's process readings so far, computed one
 * reading at a time so a running batch can be scored at any point (in the stream, O(1) per
 * reading, no allocation) and a finished one gives the same numbers as a file replay.
 *
 * Per numeric series (the five process parameters and the two ambient numbers), over every reading
 * of the batch so far — the rolling analysis's statistics (operators/rolling) for a time window
 * that covers the whole batch, keyed by batch, with timeScale 3 600 000 (slope per hour):
 *   mean, std (sample, n − 1), min, max, slope (least squares on u = (t − t_first) / 1 h).
 * Where the rolling analysis reports a statistic as undefined (std and slope of one reading, the
 * slope of readings at one time) the feature is 0, as in the failure model's features
 * (operators/prediction/rul-features.ts). The sums are Welford's updates (Welford 1962; the
 * co-moment as in Pébay 2008, "Formulas for robust, one-pass parallel computation of covariances
 * and arbitrary-order statistical moments", eq. 3.12), which agree with the kernel's two-pass sums
 * to rounding.
 * Besides: `progress` = units_produced / planned_units of the latest reading, and one-hots of the
 * latest reading's supplier (`supplier=SUP-A`…) and cleanroom grade (`cleanroom_grade=C`…); a
 * value the model did not see in training sets none of its one-hots.
 */
import { ConfigError } from "../../engine/core/mod.js";
import { ENVIRONMENT_NUMBERS, PROCESS_PARAMETERS, type ProcessRecord } from "./batch-record.js";

/** The numeric series of a reading, in feature order. */
export const QUALITY_SERIES = [...PROCESS_PARAMETERS, ...ENVIRONMENT_NUMBERS] as const;
export type QualitySeries = (typeof QUALITY_SERIES)[number];
export const QUALITY_STATISTICS = ["mean", "std", "min", "max", "slope"] as const;
export type QualityStatistic = (typeof QUALITY_STATISTICS)[number];
/** Slope time unit: per hour of batch time. */
export const QUALITY_SLOPE_TIME_MS = 3_600_000;

/** Feature names for these suppliers and grades: series statistics, progress, then the one-hots. */
export function qualityFeatureNames(suppliers: readonly string[], grades: readonly string[]): string[] {
  return [
    ...QUALITY_SERIES.flatMap((s) => QUALITY_STATISTICS.map((st) => `${s}.${st}`)),
    "progress",
    ...suppliers.map((s) => `supplier=${s}`),
    ...grades.map((g) => `cleanroom_grade=${g}`),
  ];
}

/** The running aggregates of one batch. */
export class BatchFeatureState {
  /** Readings added since the last reset. */
  count = 0;
  progress = 0;
  supplier = "";
  grade = "";
  private t0 = 0;
  private uMean = 0;
  private suu = 0;
  /** Per series k: mean, M2, min, max, Σ(u − ū)(x − x̄) at k·5 + 0…4. */
  private readonly sums = new Float64Array(QUALITY_SERIES.length * 5);

  reset(): void {
    this.count = 0;
    this.progress = 0;
    this.supplier = "";
    this.grade = "";
    this.uMean = 0;
    this.suu = 0;
    this.sums.fill(0);
  }

  /** Adds one reading of the batch (readings in time order; the caller keys states by batch). */
  add(r: ProcessRecord): void {
    const n = ++this.count;
    if (n === 1) this.t0 = r.timestamp;
    const u = (r.timestamp - this.t0) / QUALITY_SLOPE_TIME_MS;
    const du = u - this.uMean;
    this.uMean += du / n;
    const duAfter = u - this.uMean;
    this.suu += du * duAfter;
    const p = r.process_parameters;
    const e = r.environmental_conditions;
    this.addValue(0, p.temperature, n, du);
    this.addValue(1, p.humidity, n, du);
    this.addValue(2, p.pressure, n, du);
    this.addValue(3, p.speed, n, du);
    this.addValue(4, p.feed_rate, n, du);
    this.addValue(5, e.ambient_temperature, n, du);
    this.addValue(6, e.ambient_humidity, n, du);
    this.progress = r.planned_units > 0 ? r.units_produced / r.planned_units : 0;
    this.supplier = r.material_properties.supplier;
    this.grade = e.cleanroom_grade;
  }

  /** Statistic `st` of series `k` (index in {@link QUALITY_SERIES}); undefined ones are 0, NaN before any reading. */
  statistic(k: number, st: QualityStatistic): number {
    const n = this.count;
    if (n === 0) return Number.NaN;
    const s = this.sums;
    const at = k * 5;
    switch (st) {
      case "mean":
        return s[at];
      case "std":
        return n > 1 ? Math.sqrt(Math.max(0, s[at + 1]) / (n - 1)) : 0;
      case "min":
        return s[at + 2];
      case "max":
        return s[at + 3];
      case "slope":
        return n > 1 && this.suu > 0 ? s[at + 4] / this.suu : 0;
    }
  }

  /** Welford's update of series k with value x (du = u − ū before this reading's update). */
  private addValue(k: number, x: number, n: number, du: number): void {
    const s = this.sums;
    const at = k * 5;
    if (n === 1) {
      s[at] = x;
      s[at + 1] = 0;
      s[at + 2] = x;
      s[at + 3] = x;
      s[at + 4] = 0;
      return;
    }
    const dx = x - s[at];
    s[at] += dx / n;
    s[at + 1] += dx * (x - s[at]);
    if (x < s[at + 2]) s[at + 2] = x;
    if (x > s[at + 3]) s[at + 3] = x;
    // Co-moment: C_n = C_{n−1} + (n − 1)/n · du · dx, with du and dx taken before the means moved.
    s[at + 4] += ((n - 1) / n) * du * dx;
  }
}

/** How a feature row is read from a {@link BatchFeatureState}: parsed once from the model's names. */
export class QualityFeatureLayout {
  readonly names: readonly string[];
  private readonly ops: readonly FeatureOp[];

  /** Throws ConfigError for a name that is not a quality feature. */
  constructor(names: readonly string[]) {
    this.names = Object.freeze([...names]);
    this.ops = names.map(parseQualityFeature);
  }

  get width(): number {
    return this.ops.length;
  }

  /** Writes the state's feature row into out[offset … offset + width). */
  write(state: BatchFeatureState, out: Float64Array, offset: number): void {
    for (let j = 0; j < this.ops.length; j++) {
      const op = this.ops[j];
      let v: number;
      if (op.kind === "series") v = state.statistic(op.series, op.statistic);
      else if (op.kind === "progress") v = state.progress;
      else if (op.kind === "supplier") v = state.supplier === op.value ? 1 : 0;
      else v = state.grade === op.value ? 1 : 0;
      out[offset + j] = v;
    }
  }
}

type FeatureOp =
  | { kind: "series"; series: number; statistic: QualityStatistic }
  | { kind: "progress" }
  | { kind: "supplier" | "grade"; value: string };

function parseQualityFeature(name: string): FeatureOp {
  if (name === "progress") return { kind: "progress" };
  if (name.startsWith("supplier=") && name.length > 9) return { kind: "supplier", value: name.slice(9) };
  if (name.startsWith("cleanroom_grade=") && name.length > 16) return { kind: "grade", value: name.slice(16) };
  const dot = name.lastIndexOf(".");
  const series = (QUALITY_SERIES as readonly string[]).indexOf(name.slice(0, dot));
  const statistic = name.slice(dot + 1) as QualityStatistic;
  if (dot < 0 || series < 0 || !QUALITY_STATISTICS.includes(statistic)) {
    throw new ConfigError(
      "features",
      `"${name}" is not a quality feature (<series>.<${QUALITY_STATISTICS.join("|")}>, progress, supplier=…, cleanroom_grade=…)`,
    );
  }
  return { kind: "series", series, statistic };
}
