/**
 * Training of the quality model (docs/quality.md): an MLP F → 48 → 24 → (1 + 4) on standardised
 * batch features (quality-dataset.ts), fitted jointly on
 *   - the first-pass yield: squared error of the standardised yield (y − ȳ) / s_y, and
 *   - each defect category c: cross-entropy of σ(z_c) against the batch's rate t_c, weighted by
 *     λ / t̄_c so that rare and common categories pull alike (λ = `defectLossWeight`),
 * with Adam (Kingma & Ba 2015) in mini-batches, the step size falling on a half cosine to 10 % of
 * `learningRate` over the epochs, L2 weight decay and an L1 penalty on the first layer. The data
 * are few batches (hundreds) seen at many fractions, so the net overfits easily: the penalties are
 * strong (on 600 simulated batches, weight decay 0.05 took the held-out yield MAE from 0.0108 to
 * 0.0100, the L1 term to 0.0098; averaging 4 nets of different seeds changed nothing). The yield scale is folded back into the
 * head at the end. Every random choice (held-out batches, initial weights, batch order) comes
 * from the seed: a seed gives the same model byte for byte.
 */
import { ConfigError, SeededRandom } from "../../../engine/core/mod.js";
import { backwardLayer, forwardLayer } from "../../prediction/training/dense-layer.js";
import type { DenseLayer } from "../../prediction/training/onnx-export.js";
import { DEFECT_CATEGORIES } from "../batch-record.js";
import {
  type BatchHistory,
  buildQualityDataset,
  DEFAULT_QUALITY_FRACTIONS,
  type QualityDataset,
  qualityNamesFor,
  splitBatches,
} from "./quality-dataset.js";
import { evaluateQuality, type QualityEvaluation } from "./quality-eval.js";
import { QUALITY_HEAD_OUTPUTS, type QualityModelSpec, qualityForward } from "./quality-onnx.js";

export interface QualityTrainOptions {
  seed: number;
  epochs: number;
  /** Fraction of the batches kept out of training for validation (0: none). */
  holdout: number;
  hidden: readonly number[];
  batchSize: number;
  learningRate: number;
  /** L2 penalty on every weight (added to the gradient as weightDecay·w). */
  weightDecay: number;
  /** L1 penalty on the first layer's weights (inputL1·sign(w)): pushes the inputs that do not help towards 0. */
  inputL1: number;
  /** Progress fractions at which each batch gives a training row. */
  fractions: readonly number[];
  /** Weight λ of the defect-category losses beside the yield's. */
  defectLossWeight: number;
}

export const DEFAULT_QUALITY_TRAIN_OPTIONS: Readonly<QualityTrainOptions> = Object.freeze({
  seed: 1,
  epochs: 15,
  holdout: 0.2,
  hidden: [48, 24],
  batchSize: 64,
  learningRate: 3e-3,
  weightDecay: 0.05,
  inputL1: 1e-3,
  fractions: DEFAULT_QUALITY_FRACTIONS,
  defectLossWeight: 0.25,
});

export interface TrainedQualityModel {
  spec: QualityModelSpec;
  trainBatches: number;
  heldOutBatches: number;
  /** On the held-out batches at their end (fraction 1) and halfway (0.5); null with holdout 0. */
  validation: { atEnd: QualityEvaluation; atHalf: QualityEvaluation } | null;
  /** Mean loss per epoch (standardised yield squared error + weighted cross-entropies). */
  loss: number[];
  trainRows: number;
  trainSeconds: number;
}

/** Trains on all but the held-out batches and measures the model on them. */
export function trainQualityModel(
  batches: readonly BatchHistory[],
  options: QualityTrainOptions,
  trainedOnFile: string,
): TrainedQualityModel {
  validateQualityTrainOptions(options);
  const started = performance.now();
  const usable = batches.filter((b) => b.outcome !== null && b.readings.length > 0);
  const { train, heldOut } = splitBatches(usable, options.holdout, options.seed);
  const names = qualityNamesFor(train);
  const data = buildQualityDataset(train, names, options.fractions);
  const fit = fitQualityMlp(data, options);
  let validation: TrainedQualityModel["validation"] = null;
  if (heldOut.length > 0) {
    const held = buildQualityDataset(heldOut, names, withHalfAndEnd(options.fractions));
    const predicted = qualityForward(fit, held.features, held.rows);
    validation = {
      atEnd: evaluateQuality(held, predicted.yield, predicted.defects, 1),
      atHalf: evaluateQuality(held, predicted.yield, predicted.defects, 0.5),
    };
  }
  const spec: QualityModelSpec = {
    featureNames: names,
    categories: DEFECT_CATEGORIES,
    featureMean: fit.featureMean,
    featureStd: fit.featureStd,
    layers: fit.layers,
    trainYieldMean: mean(data.yield),
    trainedOn:
      `${trainedOnFile}: ${train.length} batches (${heldOut.length} held out by seed ${options.seed}), ${data.rows} rows at progress ` +
      `${options.fractions.join(",")}, MLP ${[names.length, ...options.hidden, QUALITY_HEAD_OUTPUTS].join("-")}, ${options.epochs} epochs, ` +
      `batch ${options.batchSize}, lr ${options.learningRate}`,
    validationYieldMae: validation?.atEnd.yieldMae ?? Number.NaN,
  };
  return {
    spec,
    trainBatches: train.length,
    heldOutBatches: heldOut.length,
    validation,
    loss: fit.loss,
    trainRows: data.rows,
    trainSeconds: (performance.now() - started) / 1000,
  };
}

export function validateQualityTrainOptions(o: QualityTrainOptions): void {
  const int = (name: string, v: number, min: number, max: number) => {
    if (!Number.isInteger(v) || v < min || v > max) throw new ConfigError(name, `must be an integer in ${min}..${max}, got ${v}`);
  };
  int("seed", o.seed, 0, 0xffffffff);
  int("epochs", o.epochs, 1, 100_000);
  int("batchSize", o.batchSize, 1, 1 << 20);
  if (o.hidden.length === 0) throw new ConfigError("hidden", "the MLP needs at least one hidden layer");
  for (const h of o.hidden) int("hidden", h, 1, 4096);
  if (!(o.learningRate > 0 && o.learningRate < 1)) throw new ConfigError("learningRate", `must be in (0, 1), got ${o.learningRate}`);
  if (!(o.weightDecay >= 0 && o.weightDecay < 1)) throw new ConfigError("weightDecay", `must be in [0, 1), got ${o.weightDecay}`);
  if (!(o.inputL1 >= 0 && o.inputL1 < 1)) throw new ConfigError("inputL1", `must be in [0, 1), got ${o.inputL1}`);
  if (!(o.defectLossWeight >= 0 && Number.isFinite(o.defectLossWeight)))
    throw new ConfigError("defectLossWeight", `must be a number ≥ 0, got ${o.defectLossWeight}`);
  if (!(o.holdout >= 0 && o.holdout < 1)) throw new ConfigError("holdout", `must be a fraction in [0, 1), got ${o.holdout}`);
}

/** Per-feature mean and standard deviation (a constant feature gets std 1, so it stays 0). */
export function featureStandardisation(data: QualityDataset): { featureMean: Float32Array; featureStd: Float32Array } {
  const f = data.names.length;
  const m = new Float64Array(f);
  const m2 = new Float64Array(f);
  for (let r = 0; r < data.rows; r++) {
    for (let j = 0; j < f; j++) {
      const v = data.features[r * f + j];
      const d = v - m[j];
      m[j] += d / (r + 1);
      m2[j] += d * (v - m[j]);
    }
  }
  const std = Float32Array.from(m2, (v) => Math.sqrt(v / Math.max(1, data.rows - 1)));
  return { featureMean: Float32Array.from(m), featureStd: std.map((s) => (s > 0 && Number.isFinite(s) ? s : 1)) };
}

// ── helpers ────────────────────────────────────────────────────────────────────────────────

function withHalfAndEnd(fractions: readonly number[]): number[] {
  return [...new Set([...fractions, 0.5, 1])].sort((a, b) => a - b);
}

function mean(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  return s / x.length;
}

interface MlpFit {
  featureMean: Float32Array;
  featureStd: Float32Array;
  layers: DenseLayer[];
  loss: number[];
}

/** The network's parameters and Adam's moments, layer by layer. */
interface Params {
  widths: number[];
  W: Float64Array[];
  B: Float64Array[];
  gW: Float64Array[];
  gB: Float64Array[];
  mW: Float64Array[];
  vW: Float64Array[];
  mB: Float64Array[];
  vB: Float64Array[];
  step: number;
}

function fitQualityMlp(data: QualityDataset, o: QualityTrainOptions): MlpFit {
  const rng = new SeededRandom(o.seed);
  const { featureMean, featureStd } = featureStandardisation(data);
  const f = data.names.length;
  const k = DEFECT_CATEGORIES.length;
  const p = initParams([f, ...o.hidden, QUALITY_HEAD_OUTPUTS], rng);
  const x = new Float64Array(data.rows * f);
  for (let r = 0; r < data.rows; r++)
    for (let j = 0; j < f; j++) x[r * f + j] = (data.features[r * f + j] - featureMean[j]) / featureStd[j];
  const yMean = mean(data.yield);
  let ss = 0;
  for (let r = 0; r < data.rows; r++) ss += (data.yield[r] - yMean) ** 2;
  const yStd = Math.sqrt(ss / Math.max(1, data.rows - 1)) || 1;
  const weight = new Float64Array(k);
  for (let c = 0; c < k; c++) {
    let s = 0;
    for (let r = 0; r < data.rows; r++) s += data.defects[r * k + c];
    weight[c] = o.defectLossWeight / Math.max(1e-6, s / data.rows);
  }
  const bs = o.batchSize;
  const nl = p.widths.length - 1;
  const act = p.widths.map((w) => new Float64Array(bs * w));
  const delta = p.widths.map((w) => new Float64Array(bs * w));
  const order = Int32Array.from({ length: data.rows }, (_, i) => i);
  const loss: number[] = [];
  const steps = o.epochs * Math.ceil(data.rows / bs);
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    rng.shuffle(order);
    let total = 0;
    for (let start = 0; start < data.rows; start += bs) {
      const n = Math.min(bs, data.rows - start);
      for (let i = 0; i < n; i++) act[0].set(x.subarray(order[start + i] * f, order[start + i] * f + f), i * f);
      for (let l = 0; l < nl; l++) forwardLayer(act[l], act[l + 1], p.W[l], p.B[l], n, p.widths[l], p.widths[l + 1], l < nl - 1);
      const out = act[nl];
      const dOut = delta[nl];
      for (let i = 0; i < n; i++) {
        const row = order[start + i];
        const e = out[i * QUALITY_HEAD_OUTPUTS] - (data.yield[row] - yMean) / yStd;
        total += e * e;
        dOut[i * QUALITY_HEAD_OUTPUTS] = (2 * e) / n;
        for (let c = 0; c < k; c++) {
          const z = out[i * QUALITY_HEAD_OUTPUTS + 1 + c];
          const q = 1 / (1 + Math.exp(-z));
          const t = data.defects[row * k + c];
          total += weight[c] * crossEntropy(q, t);
          dOut[i * QUALITY_HEAD_OUTPUTS + 1 + c] = (weight[c] * (q - t)) / n;
        }
      }
      for (let l = nl - 1; l >= 0; l--)
        backwardLayer(act[l], delta[l + 1], p.W[l], p.gW[l], p.gB[l], l > 0 ? delta[l] : null, n, p.widths[l], p.widths[l + 1]);
      // Half-cosine decay of the step size from learningRate to 10 % of it.
      const lr = o.learningRate * (0.1 + 0.45 * (1 + Math.cos((Math.PI * p.step) / steps)));
      adamStep(p, lr, o.weightDecay, o.inputL1);
    }
    loss.push(total / data.rows);
  }
  return { featureMean, featureStd, layers: exportLayers(p, yMean, yStd), loss };
}

function initParams(widths: number[], rng: SeededRandom): Params {
  const nl = widths.length - 1;
  const W: Float64Array[] = [];
  const B: Float64Array[] = [];
  for (let l = 0; l < nl; l++) {
    const sd = Math.sqrt(2 / widths[l]); // He-normal
    W.push(Float64Array.from({ length: widths[l] * widths[l + 1] }, () => rng.normal() * sd));
    B.push(new Float64Array(widths[l + 1]));
  }
  const zeros = (a: Float64Array[]) => a.map((v) => new Float64Array(v.length));
  return { widths, W, B, gW: zeros(W), gB: zeros(B), mW: zeros(W), vW: zeros(W), mB: zeros(B), vB: zeros(B), step: 0 };
}

/** −[t log q + (1 − t) log(1 − q)], q kept off 0 and 1. */
function crossEntropy(q: number, t: number): number {
  const e = 1e-12;
  return -(t * Math.log(q + e) + (1 - t) * Math.log(1 - q + e));
}

/** Adam on every layer; weight decay (L2, on weights only) is added to the gradient. */
function adamStep(p: Params, lr: number, decay: number, l1: number): void {
  p.step++;
  const b1 = 0.9;
  const b2 = 0.999;
  const c1 = 1 - b1 ** p.step;
  const c2 = 1 - b2 ** p.step;
  const update = (x: Float64Array, g: Float64Array, m: Float64Array, v: Float64Array, l2: number, l1w = 0) => {
    for (let i = 0; i < x.length; i++) {
      const gi = g[i] + l2 * x[i] + l1w * Math.sign(x[i]);
      m[i] = b1 * m[i] + (1 - b1) * gi;
      v[i] = b2 * v[i] + (1 - b2) * gi * gi;
      x[i] -= (lr * (m[i] / c1)) / (Math.sqrt(v[i] / c2) + 1e-8);
    }
  };
  for (let l = 0; l < p.W.length; l++) {
    update(p.W[l], p.gW[l], p.mW[l], p.vW[l], decay, l === 0 ? l1 : 0);
    update(p.B[l], p.gB[l], p.mB[l], p.vB[l], 0);
  }
}

/** The layers as float32; the head's yield column scaled back from standardised yield: y = ȳ + s_y·z. */
function exportLayers(p: Params, yMean: number, yStd: number): DenseLayer[] {
  const nl = p.widths.length - 1;
  return p.W.map((w, l) => {
    const last = l === nl - 1;
    const wo = p.widths[l + 1];
    const weights = Float32Array.from(w, (v, i) => (last && i % wo === 0 ? v * yStd : v));
    const bias = Float32Array.from(p.B[l], (v, i) => (last && i === 0 ? v * yStd + yMean : v));
    return { inputs: p.widths[l], outputs: wo, weights, bias, relu: !last };
  });
}
