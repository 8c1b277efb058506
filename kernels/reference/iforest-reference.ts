/**
 * Plain TypeScript reference for kernels/iforest.ts, written from the definitions, not from the
 * kernel: it walks the model's own arrays (model.json order, explicit left and right children,
 * leaves marked by feature −1) one row and one tree at a time, counting the depth, and adds
 * c(leaf size) at the leaf. No breadth-first re-layout, no absorbing leaves, no precomputed
 * leaf terms, no blocks.
 *
 *   s(x) = 2^(−E[h(x)] / c(ψ)),  h(x) = depth + c(size of x's leaf)   (Liu, Ting & Zhou 2008)
 *   c(n) = 2H(n − 1) − 2(n − 1)/n,  H(i) = ln(i) + γ,  c(2) = 1,  c(1) = c(0) = 0
 *   c(ψ) = 0 (ψ = 1) scores 1, as scikit-learn does.
 *
 * x[feature] <= threshold goes left; with compare "f32", x is rounded to float32 first
 * (Math.fround), as scikit-learn rounds X.
 */
import type { IsolationForestModel } from "../../operators/iforest/mod.js";

const GAMMA = 0.5772156649015329;

export function referenceC(n: number): number {
  if (n <= 1) return 0;
  if (n === 2) return 1;
  const harmonic = Math.log(n - 1) + GAMMA;
  return 2 * harmonic - (2 * (n - 1)) / n;
}

/** Path length h(x) of one row in tree t: edges from the root to its leaf, plus c(leaf size). */
export function referencePathLength(model: IsolationForestModel, t: number, x: (feature: number) => number): number {
  const base = model.treeOffsets[t];
  let node = 0;
  let depth = 0;
  while (model.feature[base + node] !== -1) {
    let value = x(model.feature[base + node]);
    if (model.compare === "f32") value = Math.fround(value);
    if (value <= model.threshold[base + node]) node = model.left[base + node];
    else node = model.right[base + node];
    depth++;
  }
  return depth + referenceC(model.leafSize[base + node]);
}

/** s(x) for one row; `x(k)` gives the row's value of model feature k. */
export function referenceScore(model: IsolationForestModel, x: (feature: number) => number): number {
  const trees = model.treeOffsets.length - 1;
  let sum = 0;
  for (let t = 0; t < trees; t++) sum += referencePathLength(model, t, x);
  const cPsi = referenceC(model.maxSamples);
  if (cPsi === 0) return 1;
  return 2 ** (-(sum / trees) / cPsi);
}

/**
 * Scores `rows` rows of a row-major matrix (`stride` values per row), model feature k read from
 * column `columns[k]`.
 */
export function referenceScores(
  model: IsolationForestModel,
  values: Float64Array,
  rows: number,
  stride: number,
  columns: ArrayLike<number>,
): Float64Array {
  const out = new Float64Array(rows);
  for (let i = 0; i < rows; i++) out[i] = referenceScore(model, (k) => values[i * stride + columns[k]]);
  return out;
}
