/**
 * What the quality view reads: the quality job's batches (`GET /api/ml/quality/batches/`, docs/quality.md
 * "In a run"), typed as the job's QualityBatchView (engine/jobs/quality-job.ts) arrives in JSON, and
 * the thresholds a prediction is coloured by.
 */
import { getJson } from "./api.js";

/**
 * The quality job's thresholds (engine/jobs/quality-job.ts QUALITY_THRESHOLDS, issue 16): the page
 * cannot import the engine, so they are repeated here; the browser test compares the colours it
 * sees with the engine's constants.
 */
export const QUALITY_THRESHOLDS = Object.freeze({ yieldWarning: 0.95, yieldCritical: 0.9, defectWarning: 0.05, defectCritical: 0.1 });

export const DEFECT_CATEGORIES = ["packaging", "labelling", "serialization", "other"] as const;
export type DefectCategory = (typeof DEFECT_CATEGORIES)[number];

/** A threshold band: `ok` inside both warnings, `warning` past a warning, `critical` past a critical threshold. */
export type QualityLevel = "ok" | "warning" | "critical";

export interface QualityPrediction {
  timestamp: number;
  progress: number;
  readings: number;
  final: boolean;
  predicted_yield: number;
  defect_probability: Record<DefectCategory, number>;
  predicted_defect_rate: number;
  quality_score: number;
  model_version: string;
}

export interface QualityOutcome {
  timestamp: number;
  units_produced: number;
  first_pass_yield: number;
  defect_rate: number;
  defects: Record<DefectCategory, number>;
  predicted_yield: number | null;
  predicted_defect_rate: number | null;
  yield_error: number | null;
}

/** One driver of an episode (the job's QualityDriver): Δ = ŷ(x) − ŷ(x with the feature at its training mean). */
export interface QualityDriver {
  feature: string;
  value: number;
  training_mean: number;
  delta_yield: number;
  delta_defect_rate: number;
}

export interface QualityEpisode {
  episode_id: string;
  severity: string;
  rules: string[];
  description: string;
  opened_at: number;
  last_fired_at: number;
  closed_at: number | null;
  firings: number;
  acknowledged_at: number | null;
  fields: { drivers?: string };
}

export interface QualityBatch {
  batch_id: string;
  line_id: string;
  work_order_id: string;
  status: "running" | "completed";
  started_at: number;
  last_reading_at: number;
  readings: number;
  progress: number;
  latest: QualityPrediction | null;
  outcome: QualityOutcome | null;
  episode: QualityEpisode | null;
}

/** Every batch the job keeps: running ones first, then completed ones newest first (the API's order). */
export async function loadBatches(): Promise<QualityBatch[]> {
  return (await getJson<{ results: QualityBatch[] }>("/api/ml/quality/batches/")).results;
}

export function yieldLevel(y: number): QualityLevel {
  const t = QUALITY_THRESHOLDS;
  return y < t.yieldCritical ? "critical" : y < t.yieldWarning ? "warning" : "ok";
}

export function defectLevel(d: number): QualityLevel {
  const t = QUALITY_THRESHOLDS;
  return d > t.defectCritical ? "critical" : d > t.defectWarning ? "warning" : "ok";
}

/** The worse of the yield's and the defect rate's bands (as the job opens episodes). */
export function predictionLevel(p: { predicted_yield: number; predicted_defect_rate: number }): QualityLevel {
  const levels = [yieldLevel(p.predicted_yield), defectLevel(p.predicted_defect_rate)];
  return levels.includes("critical") ? "critical" : levels.includes("warning") ? "warning" : "ok";
}

/** The episode's drivers (a JSON text in its fields); empty when it has none or they do not parse. */
export function driversOf(e: QualityEpisode): QualityDriver[] {
  if (e.fields.drivers === undefined) return [];
  try {
    const parsed: unknown = JSON.parse(e.fields.drivers);
    return Array.isArray(parsed) ? (parsed as QualityDriver[]) : [];
  } catch {
    return [];
  }
}

/** Whether the batch's episode is open now. */
export function openEpisode(b: QualityBatch): QualityEpisode | null {
  return b.episode !== null && b.episode.closed_at === null ? b.episode : null;
}
