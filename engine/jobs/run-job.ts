/**
 * The main job of `linewatch run` without NATS: the sensor job (sensor-job.ts) on a paced reading
 * source — the plant simulator, or a C-MAPSS fleet replay (plant-source.ts) — with an NDJSON file
 * of scores, alert events, and a live console summary.
 */
import type { AuditStamp } from "./audit/mod.js";
import type { Writable } from "node:stream";
import type { Logger, EngineMetrics } from "../core/mod.js";
import { type FaultLabel, SENSOR_SPECS, type SensorType, type SimulatorOptions } from "../../connectors/sim/mod.js";
import type { RecordAnalysis } from "../../operators/mod.js";
import type { SpcLimitsChange } from "../../operators/spc/mod.js";
import type { Outputs } from "./outputs.js";
import { PacedReadingSource, type PacedSourceOptions, type ReadingSource, type SourceKey, simulatorSource } from "./plant-source.js";
import { NdjsonScoreFile } from "./score-writers.js";
import { runSensorJob } from "./sensor-job.js";

export { type ReadingSource, type SourceColumns, type SourceKey, simulatorSource } from "./plant-source.js";

/**
 * A first-order response has settled when what is left of the largest step between two modes'
 * levels is below this share of the sensor's noise σ: Δ·e^(−t/τ) ≤ 0.1σ, so t = τ·ln(Δ / 0.1σ).
 * (Five time constants leave 0.7 % of the step: for line speed's 240 packs/min that is still a
 * whole σ, which a CUSUM tuned for one false alarm in 8 hours reads as a shift.) With a tracked
 * centre line the share applies to what the chart sees — the line's tracking error — not to the
 * step left ({@link trackingErrorShare}).
 */
const SETTLED_SIGMA_SHARE = 0.1;

/**
 * How long a simulated sensor's readings settle after a mode change: τ·ln(Δ / 0.1σ), 0 when its
 * levels are all equal. `trackMs`: the time constant of the mode chart's tracked centre line
 * ({@link trackTimeConstantMs}; 0: a fixed line), which restarts at the level it finds after the
 * pause and follows the rest of the approach: the chart sees only the line's tracking error, at
 * most the share {@link trackingErrorShare} of the step left at the restart, so the step may be
 * 0.1σ over that share when the key leaves "settling".
 */
export function sensorSettleMs(key: SourceKey, trackMs = 0): number {
  const spec = SENSOR_SPECS[key.sensor_type as SensorType];
  const levels = Object.values(spec.levels);
  const step = Math.max(...levels) - Math.min(...levels);
  const left = (SETTLED_SIGMA_SHARE * spec.noiseSigma) / trackingErrorShare(spec.responseTimeMs, trackMs);
  const ratio = step / left;
  return ratio > 1 ? spec.responseTimeMs * Math.log(ratio) : 0;
}

/**
 * The time constant (ms) of a tracked centre line's level: gain α = 1 − ω² per record, ω = 1 − 1/T
 * (kernels/spc.ts), so the line forgets as e^(−t/Tₛ) with Tₛ = −1/ln(ω²) records; 0 when T ≤ 0
 * (no tracking) or the line does not restart after a pause (trackGapMs ≤ 0).
 */
export function trackTimeConstantMs(trackRecords: number, rateHz: number, trackGapMs: number): number {
  if (trackRecords <= 1 || trackGapMs <= 0) return 0;
  return (-1 / (2 * Math.log(1 - 1 / trackRecords)) / rateHz) * 1000;
}

/**
 * The largest error of a line that restarts at the level of a first-order approach and then follows
 * it as an exponential smoother, as a share of the step R left at the restart. The approach is
 * x = R·e^(−t/τ); the line ℓ′ = (x − ℓ)/Tₛ from ℓ(0) = x(0) lags it by
 * e(t) = R·Tₛ/(τ − Tₛ)·(e^(−t/τ) − e^(−t/Tₛ)), largest at t* = τ·Tₛ·ln(τ/Tₛ)/(τ − Tₛ)
 * (R/e at τ = Tₛ; the solution of a linear first-order equation with an exponential input). The
 * line's trend term only moves it towards the readings, so it can only make the error smaller.
 * τ = 600 s (temperature), Tₛ = 100 s: 0.116. Tₛ = 0: 1 (a fixed line sees the whole step).
 */
export function trackingErrorShare(tauMs: number, trackMs: number): number {
  if (trackMs <= 0 || tauMs <= 0) return 1;
  if (Math.abs(tauMs - trackMs) < 1e-9 * tauMs) return Math.exp(-1);
  const peakAt = (tauMs * trackMs * Math.log(tauMs / trackMs)) / (tauMs - trackMs);
  return Math.min(1, (trackMs / (tauMs - trackMs)) * (Math.exp(-peakAt / tauMs) - Math.exp(-peakAt / trackMs)));
}

export interface RunJobOptions extends PacedSourceOptions {
  /** The audit record on every line of the scores file; null or absent: none. */
  audit?: AuditStamp | null;
  /** Where readings come from; default: the plant simulator with `simulator`'s options. */
  source?: ReadingSource;
  simulator?: Partial<SimulatorOptions>;
  /** In output order; their members merge into one line per reading. */
  analyses: readonly RecordAnalysis[];
  workers: number;
  groups: number;
  batchRecordsMax: number;
  /** Scores file (NDJSON), or null for none. */
  outPath: string | null;
  fileBytesMax: number;
  /** |z| of the rolling analysis at or above this counts as an anomaly in the summary. */
  zAlarm: number;
  /** The alert episodes for the summary ("episodes open 3 (…)"; the caller's alert router says it). */
  alertsSummary?: () => string;
  /**
   * Limits changes to apply while running, polled every flush: key name → change. Applied in
   * order with the stream, to the key's SPC state (analysis "spc").
   */
  limitsChanges?: () => Array<{ key: string; change: SpcLimitsChange }>;
  /** ClickHouse and the live server (WebSocket, HTTP API, metrics), when the run has them. */
  outputs?: Outputs;
  /** Console summary interval; 0 for none. */
  summaryIntervalMs: number;
  console: Writable;
  /** Operational events (limits changes); default: JSON lines on `console`. */
  log?: Logger;
  /** Resolves when the job should stop (Ctrl-C); the source's own end stops it too. */
  stop: Promise<void>;
}

export interface RunJobResult {
  metrics: EngineMetrics;
  anomalies: number;
  faultsInjected: number;
  bytesWritten: number;
  seconds: number;
}

export async function runJob(o: RunJobOptions): Promise<RunJobResult> {
  // The simulator's ground truth goes to the log (component "simulator"), beside the alerts it should raise.
  const faultLog = o.log?.child({ component: "simulator" });
  const onFault = (l: FaultLabel) =>
    faultLog?.info({ ...l, start: new Date(l.start).toISOString(), end: new Date(l.end).toISOString() }, "fault injected");
  const source = new PacedReadingSource(o.source ?? simulatorSource(o.simulator ?? {}, onFault), o);
  const result = await runSensorJob(source, {
    ...o,
    scores: o.outPath === null ? null : new NdjsonScoreFile(o.outPath, o.fileBytesMax),
  });
  return {
    metrics: result.metrics,
    anomalies: result.anomalies,
    faultsInjected: source.faults,
    bytesWritten: result.bytesWritten,
    seconds: result.seconds,
  };
}
