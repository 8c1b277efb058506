/**
 * Training rows of the quality model: each batch with a quality outcome is replayed reading by
 * reading through the run-time feature state (../batch-features.ts), and a row is taken at the
 * first reading where the batch's progress (units_produced / planned_units) reaches each of
 * `fractions` — so the model learns to score a batch partway through, as the stream will ask it
 * to. Targets: the outcome's first_pass_yield and its defect rate per category
 * (defects_c / units_produced). A batch without an outcome, or without readings, gives no rows.
 */
import { ConfigError, SeededRandom } from "../../../engine/core/mod.js";
import { DEFECT_CATEGORIES, type ProcessRecord, type QualityRecord } from "../batch-record.js";
import { BatchFeatureState, QualityFeatureLayout, qualityFeatureNames } from "../batch-features.js";

/** 5 %, 10 %, … 100 %: twenty rows per batch (against ten at 10 % steps, the same training time for half the epochs gave 0.0097 against 0.0100 held-out yield MAE). */
export const DEFAULT_QUALITY_FRACTIONS: readonly number[] = Object.freeze(Array.from({ length: 20 }, (_, i) => (i + 1) / 20));

/** One batch's readings (time order) and outcome. */
export interface BatchHistory {
  batchId: string;
  lineId: string;
  readings: ProcessRecord[];
  outcome: QualityRecord | null;
}

export interface QualityDataset {
  names: readonly string[];
  rows: number;
  /** Row-major rows × names.length. */
  features: Float64Array;
  /** first_pass_yield of the row's batch. */
  yield: Float64Array;
  /** Defect rate per category, rows × 4 (DEFECT_CATEGORIES order). */
  defects: Float64Array;
  /** Index into `batches` of each row's batch, and the fraction the row was taken at. */
  batch: Int32Array;
  fraction: Float64Array;
  batches: readonly BatchHistory[];
}

/** Groups records by batch (readings sorted by time, stable); batches in order of their first record. */
export function batchHistories(process: readonly ProcessRecord[], quality: readonly QualityRecord[]): BatchHistory[] {
  const byId = new Map<string, BatchHistory>();
  const history = (batchId: string, lineId: string): BatchHistory => {
    let h = byId.get(batchId);
    if (h === undefined) byId.set(batchId, (h = { batchId, lineId, readings: [], outcome: null }));
    return h;
  };
  for (const r of process) history(r.batch_id, r.line_id).readings.push(r);
  for (const q of quality) history(q.batch_id, q.line_id).outcome = q;
  for (const h of byId.values()) h.readings.sort((a, b) => a.timestamp - b.timestamp);
  return [...byId.values()];
}

/** The suppliers and cleanroom grades of these batches' readings, sorted: the model's one-hot vocabulary. */
export function categoricalVocabulary(batches: readonly BatchHistory[]): { suppliers: string[]; grades: string[] } {
  const suppliers = new Set<string>();
  const grades = new Set<string>();
  for (const b of batches) {
    for (const r of b.readings) {
      suppliers.add(r.material_properties.supplier);
      grades.add(r.environmental_conditions.cleanroom_grade);
    }
  }
  return { suppliers: [...suppliers].sort(), grades: [...grades].sort() };
}

/** Feature rows at `fractions` of every batch with an outcome and readings. */
export function buildQualityDataset(
  batches: readonly BatchHistory[],
  names: readonly string[],
  fractions: readonly number[] = DEFAULT_QUALITY_FRACTIONS,
): QualityDataset {
  checkFractions(fractions);
  const layout = new QualityFeatureLayout(names);
  const f = layout.width;
  const usable = batches.filter((b) => b.outcome !== null && b.readings.length > 0);
  const capacity = usable.length * fractions.length;
  const features = new Float64Array(capacity * f);
  const batchOf = new Int32Array(capacity);
  const fractionOf = new Float64Array(capacity);
  const state = new BatchFeatureState();
  let rows = 0;
  usable.forEach((b, index) => {
    state.reset();
    let next = 0;
    const last = b.readings.length - 1;
    b.readings.forEach((r, i) => {
      state.add(r);
      // The last reading stands for every fraction not reached yet (a batch that ended short of plan).
      while (next < fractions.length && (state.progress >= fractions[next] || i === last)) {
        layout.write(state, features, rows * f);
        batchOf[rows] = index;
        fractionOf[rows] = fractions[next];
        rows++;
        next++;
      }
    });
  });
  const yieldOf = new Float64Array(rows);
  const defects = new Float64Array(rows * DEFECT_CATEGORIES.length);
  for (let r = 0; r < rows; r++) {
    const q = usable[batchOf[r]].outcome as QualityRecord;
    yieldOf[r] = q.first_pass_yield;
    DEFECT_CATEGORIES.forEach((c, k) => (defects[r * DEFECT_CATEGORIES.length + k] = q.defects[c] / q.units_produced));
  }
  return {
    names,
    rows,
    features: features.subarray(0, rows * f),
    yield: yieldOf,
    defects,
    batch: batchOf.subarray(0, rows),
    fraction: fractionOf.subarray(0, rows),
    batches: usable,
  };
}

/** The feature names for these batches (their vocabulary). */
export function qualityNamesFor(batches: readonly BatchHistory[]): string[] {
  const v = categoricalVocabulary(batches);
  return qualityFeatureNames(v.suppliers, v.grades);
}

/** Splits batches into training and held-out sets: round(holdout × n) batches drawn by the seed (0: none held out). */
export function splitBatches<T>(batches: readonly T[], holdout: number, seed: number): { train: T[]; heldOut: T[] } {
  if (!(holdout >= 0 && holdout < 1)) throw new ConfigError("holdout", `must be a fraction in [0, 1), got ${holdout}`);
  const n = Math.round(holdout * batches.length);
  if (batches.length - n < 2) throw new ConfigError("holdout", `leaves ${batches.length - n} of ${batches.length} batches to train on`);
  const rng = new SeededRandom(seed ^ 0x9a11);
  const order = batches.map((_, i) => i);
  rng.shuffle(order);
  const held = new Set(order.slice(0, n));
  return { train: batches.filter((_, i) => !held.has(i)), heldOut: batches.filter((_, i) => held.has(i)) };
}

/** Rows of the dataset taken at `fraction` (one per batch). */
export function rowsAt(data: QualityDataset, fraction: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < data.rows; r++) if (data.fraction[r] === fraction) out.push(r);
  return out;
}

function checkFractions(fractions: readonly number[]): void {
  if (fractions.length === 0) throw new ConfigError("fractions", "needs at least one fraction");
  for (let i = 0; i < fractions.length; i++) {
    const v = fractions[i];
    if (!(v > 0 && v <= 1) || (i > 0 && !(v > fractions[i - 1])))
      throw new ConfigError("fractions", `must be increasing fractions in (0, 1], got ${fractions.join(",")}`);
  }
}
