/**
 * The features of the failure-prediction model: for each informative sensor of a machine, rolling
 * statistics over its last `window` readings, exactly as the rolling analysis (kernels/rolling.ts)
 * reports them for the key `<machine>/<sensor>` after each reading. A feature is named
 * `<sensor_type>.<statistic>`, e.g. `s2.mean`, `s2.slope`; the statistic is a member name of the
 * rolling analysis's output.
 *
 * While the window fills, the statistics cover the readings so far (min(window, i + 1)), as the
 * analysis's output row does (`observe` sees it; replay's JSON writes null members until a count
 * window is full, so a model can score a machine from its first reading). Where
 * the rolling analysis reports a statistic as undefined — std and slope of a one-reading window,
 * whose spread and trend are zero by any sensible reading — the feature is 0.
 */
import { ConfigError } from "../../engine/core/mod.js";
import { CMAPSS_SENSORS, type CmapssUnit } from "../../connectors/files/mod.js";
import type { RollingField } from "../rolling/mod.js";

/** Rolling statistics a feature may use (ewma and z depend on more than the window, so they are not offered). */
export const RUL_FEATURE_STATISTICS = ["count", "mean", "std", "std_pop", "min", "max", "slope"] as const satisfies readonly RollingField[];
export type RulFeatureStatistic = (typeof RUL_FEATURE_STATISTICS)[number];

/**
 * The statistics the model uses per sensor: level, trend, and the count of readings in the window —
 * the machine's age in cycles until the window is full. With a window longer than the shortest
 * FD001 life (128 cycles) the count says "young, so healthy" (the capped RUL); it and the wider
 * window took the cross-validated RMSE of the MLP from 13.5 to 12.2 cycles (docs/prediction.md).
 */
export const RUL_DEFAULT_STATISTICS: readonly RulFeatureStatistic[] = ["mean", "slope", "count"];
export const DEFAULT_RUL_WINDOW = 150;

/**
 * The 14 sensors that vary on C-MAPSS FD001 (one operating condition, one fault mode). The other
 * seven (s1 s5 s6 s10 s16 s18 s19) are constant or nearly so there — s6 takes two values — and
 * carry no degradation signal; {@link informativeSensors} finds the same set from the data.
 */
export const FD001_INFORMATIVE_SENSORS: readonly string[] = [
  "s2",
  "s3",
  "s4",
  "s7",
  "s8",
  "s9",
  "s11",
  "s12",
  "s13",
  "s14",
  "s15",
  "s17",
  "s20",
  "s21",
];

/**
 * Sensors whose readings vary over the given units: at least `distinctMin` distinct readings.
 * A spread criterion does not separate them on FD001 — s6 flips between two readings (21.60 and
 * 21.61) with a relative spread larger than that of s8, which carries a real trend — so this
 * counts readings instead.
 */
export function informativeSensors(units: readonly CmapssUnit[], distinctMin = 10): string[] {
  return CMAPSS_SENSORS.filter((_, k) => {
    const seen = new Set<number>();
    for (const u of units) {
      for (const v of u.sensors[k]) {
        seen.add(v);
        if (seen.size >= distinctMin) return true;
      }
    }
    return false;
  }).map((s) => s.name);
}

/** Feature names for these sensors and statistics, sensor-major: s2.mean, s2.slope, s3.mean, … */
export function rulFeatureNames(sensors: readonly string[], statistics: readonly RulFeatureStatistic[] = RUL_DEFAULT_STATISTICS): string[] {
  return sensors.flatMap((s) => statistics.map((st) => `${s}.${st}`));
}

export interface ParsedFeature {
  sensor: string;
  /** Index of the sensor in CMAPSS_SENSORS (and CmapssUnit.sensors). */
  sensorIndex: number;
  statistic: RulFeatureStatistic;
}

/** Splits `<sensor_type>.<statistic>`; an unknown sensor or statistic is a ConfigError. */
export function parseFeatureName(name: string): ParsedFeature {
  const dot = name.lastIndexOf(".");
  const sensor = dot > 0 ? name.slice(0, dot) : "";
  const statistic = dot > 0 ? name.slice(dot + 1) : "";
  if (!(RUL_FEATURE_STATISTICS as readonly string[]).includes(statistic)) {
    throw new ConfigError("features", `"${name}": statistic "${statistic}" is not one of ${RUL_FEATURE_STATISTICS.join(", ")}`);
  }
  const sensorIndex = CMAPSS_SENSORS.findIndex((s) => s.name === sensor);
  if (sensorIndex < 0) throw new ConfigError("features", `"${name}": sensor "${sensor}" is not a C-MAPSS sensor (s1..s21)`);
  return { sensor, sensorIndex, statistic: statistic as RulFeatureStatistic };
}

/** One feature row per cycle of the unit, each computed over the last min(window, i+1) cycles exactly as the rolling analysis emits it. */
export function rulFeatureRows(unit: CmapssUnit, names: readonly string[], window: number): Float64Array {
  if (!Number.isInteger(window) || window < 1) throw new ConfigError("window", `must be a positive integer, got ${window}`);
  const parsed = names.map(parseFeatureName);
  const n = unit.cycles.length;
  const f = parsed.length;
  const out = new Float64Array(n * f);
  // Statistics of one sensor are shared by its features: compute each sensor once per cycle.
  const bySensor = new Map<number, number[]>();
  parsed.forEach((p, j) => bySensor.set(p.sensorIndex, [...(bySensor.get(p.sensorIndex) ?? []), j]));
  for (const [k, columns] of bySensor) {
    const xs = unit.sensors[k];
    for (let i = 0; i < n; i++) {
      const stats = windowStatistics(xs, Math.max(0, i + 1 - window), i + 1);
      for (const j of columns) out[i * f + j] = stats[parsed[j].statistic];
    }
  }
  return out;
}

/**
 * Statistics of xs[from, to) by two passes (mean first, then centred sums), with the record index
 * as the slope's abscissa, as count windows of the rolling kernel define it. Undefined ones are 0.
 */
export function windowStatistics(xs: ArrayLike<number>, from: number, to: number): Record<RulFeatureStatistic, number> {
  const n = to - from;
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let i = from; i < to; i++) {
    const v = xs[i];
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const mean = sum / n;
  const tMean = (n - 1) / 2;
  let ss = 0;
  let stx = 0;
  let stt = 0;
  for (let i = from; i < to; i++) {
    const d = xs[i] - mean;
    const t = i - from - tMean;
    ss += d * d;
    stx += t * d;
    stt += t * t;
  }
  return {
    count: n,
    mean,
    std: n > 1 ? Math.sqrt(ss / (n - 1)) : 0,
    std_pop: Math.sqrt(ss / n),
    min,
    max,
    slope: stt > 0 ? stx / stt : 0,
  };
}
