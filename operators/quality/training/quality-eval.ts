/**
 * Figures of a quality model on batches (docs/quality.md): at one progress fraction (one row per
 * batch), the yield's mean absolute and root-mean-square error, the ROC AUC of "first-pass yield
 * below {@link LOW_YIELD}" scored by the predicted yield (lower predicted yield = more likely low),
 * and the error of the predicted defect rate overall and per category.
 */
import { DEFECT_CATEGORIES, type DefectCategory } from "../batch-record.js";
import { type QualityDataset, rowsAt } from "./quality-dataset.js";

/** The yield warning threshold of the seed's quality alerts. */
export const LOW_YIELD = 0.95;

export interface QualityEvaluation {
  fraction: number;
  batches: number;
  /** Batches whose true first-pass yield is below LOW_YIELD. */
  lowYieldBatches: number;
  yieldMae: number;
  yieldRmse: number;
  /** AUC of yield < LOW_YIELD (NaN when every batch is on one side). */
  lowYieldAuc: number;
  /** Mean absolute error of Σ_c defect probability against the batch's defect rate. */
  defectRateMae: number;
  categoryMae: Record<DefectCategory, number>;
}

/** Figures of the predictions (rows of `data`; defects rows × 4) over the rows taken at `fraction`. */
export function evaluateQuality(
  data: QualityDataset,
  predictedYield: ArrayLike<number>,
  predictedDefects: ArrayLike<number> | null,
  fraction: number,
): QualityEvaluation {
  const rows = rowsAt(data, fraction);
  const k = DEFECT_CATEGORIES.length;
  let abs = 0;
  let sq = 0;
  let low = 0;
  let rateAbs = 0;
  const catAbs = new Float64Array(k);
  const scores = new Float64Array(rows.length);
  const labels = new Uint8Array(rows.length);
  rows.forEach((r, i) => {
    const e = predictedYield[r] - data.yield[r];
    abs += Math.abs(e);
    sq += e * e;
    labels[i] = data.yield[r] < LOW_YIELD ? 1 : 0;
    low += labels[i];
    scores[i] = -predictedYield[r];
    if (predictedDefects === null) return;
    let predicted = 0;
    let actual = 0;
    for (let c = 0; c < k; c++) {
      predicted += predictedDefects[r * k + c];
      actual += data.defects[r * k + c];
      catAbs[c] += Math.abs(predictedDefects[r * k + c] - data.defects[r * k + c]);
    }
    rateAbs += Math.abs(predicted - actual);
  });
  const n = rows.length;
  const none = predictedDefects === null;
  return {
    fraction,
    batches: n,
    lowYieldBatches: low,
    yieldMae: abs / n,
    yieldRmse: Math.sqrt(sq / n),
    lowYieldAuc: rocAuc(scores, labels),
    defectRateMae: none ? Number.NaN : rateAbs / n,
    categoryMae: Object.fromEntries(DEFECT_CATEGORIES.map((c, i) => [c, none ? Number.NaN : catAbs[i] / n])) as Record<
      DefectCategory,
      number
    >,
  };
}

/**
 * Exact ROC AUC via the Mann–Whitney U statistic (Hanley & McNeil 1982), ties at their average
 * rank; NaN when one class is empty. (bench/roc-auc.ts is the benches' copy; the CLI cannot load bench/.)
 */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const n = scores.length;
  let positives = 0;
  for (let i = 0; i < n; i++) positives += labels[i];
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return Number.NaN;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let rankSum = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]] === scores[order[i]]) j++;
    for (let m = i; m <= j; m++) if (labels[order[m]] === 1) rankSum += (i + j) / 2 + 1;
    i = j + 1;
  }
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}
