/**
 * Exact ROC AUC from scores and binary labels, via the Mann–Whitney U statistic (Hanley & McNeil,
 * Radiology 143, 1982): AUC = (R₊ − n₊(n₊ + 1)/2) / (n₊·n₋), R₊ the rank sum of the positives with
 * tied scores given their average rank — so a tie counts one half, as the trapezoidal ROC does.
 */

/** AUC of `scores` (higher = more likely positive) for `labels` (1 = positive, 0 = negative). */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const n = scores.length;
  if (labels.length !== n) throw new RangeError(`${n} scores for ${labels.length} labels`);
  let positives = 0;
  for (let i = 0; i < n; i++) {
    if (labels[i] !== 0 && labels[i] !== 1) throw new RangeError(`label ${i} is ${labels[i]}, not 0 or 1`);
    if (Number.isNaN(scores[i])) throw new RangeError(`score ${i} is NaN`);
    positives += labels[i];
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return NaN;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let rankSum = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]] === scores[order[i]]) j++;
    const averageRank = (i + j) / 2 + 1; // ranks are 1-based
    for (let k = i; k <= j; k++) if (labels[order[k]] === 1) rankSum += averageRank;
    i = j + 1;
  }
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}
