/**
 * Training and validation of the failure-prediction model on C-MAPSS run-to-failure data.
 *
 * - Target: RUL capped at `rulCap` (125): the piecewise-linear target of Heimes (2008) and Babu
 *   et al. (2016) — flat while an engine is healthy, falling one per cycle once it degrades.
 * - Model: the mean of `ensemble` (8) MLPs F → 32 → 16 → 1 (ReLU) on standardised features, each
 *   trained on the mean squared error with Adam (Kingma & Ba 2015) in mini-batches, the learning
 *   rate annealed along a half cosine; merged into one MLP for the graph (mergeEnsemble). Chosen by
 *   5-fold cross-validation against the previous single MLP (`npm run bench -- rul`, docs/prediction.md:
 *   RMSE under random cuts 13.54 → 10.14 cycles). Every random choice (held-out units,
 *   initial weights, batch order, truncation points) comes from one SeededRandom (engine/core), so a
 *   seed gives the same model byte for byte.
 * - Validation: `holdout` units, drawn by the seed, are kept out of training. On them we report
 *   the RMSE over every row, the RMSE under a test-set-like protocol (each unit cut at random
 *   cycles, RUL predicted at the last cycle seen, true RUL capped) and the PHM08 score.
 */
import { ConfigError, SeededRandom } from "../../../engine/core/mod.js";
import { remainingUsefulLife, type CmapssUnit } from "../../../connectors/files/mod.js";
import { buildReferenceHistograms, trainingFingerprint, DEFAULT_REFERENCE_BINS, REFERENCE_BINS_MAX } from "../../drift/mod.js";
import { backwardLayer, forwardLayer } from "./dense-layer.js";
import { mlpForward, type DenseLayer, type RulModelSpec } from "./onnx-export.js";
import {
  DEFAULT_RUL_WINDOW,
  informativeSensors,
  RUL_DEFAULT_STATISTICS,
  rulFeatureNames,
  rulFeatureRows,
  type RulFeatureStatistic,
} from "../rul-features.js";

/**
 * The test-set-like protocol cuts each held-out unit after at least this many cycles (or all of a
 * shorter unit): the shortest engine of the FD001 test file stops after 31. Fixed, not the model's
 * window, so models with different windows are measured on the same cuts.
 */
export const RUL_CUT_MIN_CYCLES = 30;

export interface RulTrainOptions {
  seed: number;
  epochs: number;
  /** Units kept out of training for validation (and for the residual σ). */
  holdout: number;
  window: number;
  /** Widths of the hidden layers. */
  hidden: readonly number[];
  batchSize: number;
  learningRate: number;
  rulCap: number;
  horizonCycles: number;
  cycleHours: number;
  /** Sensors to use; undefined: those that vary on the training units ({@link informativeSensors}). */
  sensors?: readonly string[];
  /** Rolling statistics per sensor (features `<sensor>.<statistic>`, sensor-major). */
  statistics: readonly RulFeatureStatistic[];
  /** MLPs trained from different seeds and averaged (one wider MLP in the graph, see mergeEnsemble). */
  ensemble: number;
  /** Anneal the learning rate from `learningRate` to 0 over the epochs along a half cosine; false: constant. */
  cosineDecay: boolean;
  /** Units to hold out (unit numbers) instead of `holdout` drawn by the seed: the folds of a cross-validation. */
  heldOutUnits?: readonly number[];
  /** Random truncation points per held-out unit in the test-set-like protocol. */
  truncationsPerUnit: number;
  /** Quantile bins per feature of the reference histograms stored for drift PSI (operators/drift). */
  referenceBins: number;
}

export const DEFAULT_RUL_TRAIN_OPTIONS: Readonly<RulTrainOptions> = Object.freeze({
  seed: 1,
  epochs: 60,
  holdout: 20,
  window: DEFAULT_RUL_WINDOW,
  hidden: [32, 16],
  batchSize: 64,
  learningRate: 3e-3,
  rulCap: 125,
  horizonCycles: 30,
  cycleHours: 1,
  truncationsPerUnit: 10,
  referenceBins: DEFAULT_REFERENCE_BINS,
  statistics: RUL_DEFAULT_STATISTICS,
  ensemble: 8,
  cosineDecay: true,
});

/** Feature rows of a set of units with their targets. */
export interface RulDataset {
  names: readonly string[];
  rows: number;
  /** Row-major rows × names.length. */
  features: Float64Array;
  /** RUL capped at rulCap. */
  target: Float64Array;
  /** Unit number and 0-based cycle index of each row. */
  unit: Int32Array;
  cycleIndex: Int32Array;
}

/** Figures on held-out units, in cycles. */
export interface RulEvaluation {
  units: number;
  rows: number;
  /** RMSE over every row of the units, against the capped RUL. */
  rmseAllRows: number;
  /** Mean and standard deviation of predicted − true over every row. */
  residualMean: number;
  residualSigma: number;
  /** Test-set-like protocol: each unit cut at random cycles, prediction at the last cycle seen. */
  truncated: { points: number; rmse: number; meanScorePerDraw: number };
  /** Last cycle of every unit (true RUL 0). */
  rmseLastCycle: number;
}

export interface TrainedRulModel {
  spec: RulModelSpec;
  trainUnits: number[];
  heldOutUnits: number[];
  validation: RulEvaluation;
  /** Mean squared error (capped RUL, cycles²) on the training rows after each epoch. */
  trainLoss: number[];
  trainSeconds: number;
}

/** A batch predictor: rows × F raw features in, RUL (cycles) per row out. */
export type RulPredictor = (features: Float64Array, rows: number) => Float64Array | Promise<Float64Array>;

/** Feature rows and capped targets of these units. */
export function buildRulDataset(units: readonly CmapssUnit[], names: readonly string[], window: number, rulCap: number): RulDataset {
  const rows = units.reduce((a, u) => a + u.cycles.length, 0);
  const f = names.length;
  const ds: RulDataset = {
    names,
    rows,
    features: new Float64Array(rows * f),
    target: new Float64Array(rows),
    unit: new Int32Array(rows),
    cycleIndex: new Int32Array(rows),
  };
  let r = 0;
  for (const u of units) {
    ds.features.set(rulFeatureRows(u, names, window), r * f);
    for (let i = 0; i < u.cycles.length; i++, r++) {
      ds.target[r] = Math.min(rulCap, remainingUsefulLife(u, i));
      ds.unit[r] = u.unit;
      ds.cycleIndex[r] = i;
    }
  }
  return ds;
}

/** Splits units into training and held-out sets: `holdout` units drawn without replacement by the seed. */
export function splitUnits<T extends { unit: number }>(units: readonly T[], holdout: number, seed: number): { train: T[]; heldOut: T[] } {
  if (!Number.isInteger(holdout) || holdout < 1 || holdout >= units.length) {
    throw new ConfigError("holdout", `must be an integer in 1..${units.length - 1} (the file has ${units.length} units), got ${holdout}`);
  }
  const rng = new SeededRandom(seed ^ 0x5eed);
  const order = units.map((_, i) => i);
  rng.shuffle(order);
  const held = new Set(order.slice(0, holdout));
  return { train: units.filter((_, i) => !held.has(i)), heldOut: units.filter((_, i) => held.has(i)) };
}

/**
 * The unit numbers of `folds` disjoint held-out sets covering every unit once (k-fold
 * cross-validation): the units in an order shuffled by the seed, dealt into folds of equal size
 * (the first `units % folds` folds one larger).
 */
export function unitFolds(units: readonly { unit: number }[], folds: number, seed: number): number[][] {
  if (!Number.isInteger(folds) || folds < 2 || folds > units.length) {
    throw new ConfigError("folds", `must be an integer in 2..${units.length}, got ${folds}`);
  }
  const order = units.map((u) => u.unit);
  new SeededRandom(seed ^ 0xf01d).shuffle(order);
  const out: number[][] = [];
  let at = 0;
  for (let k = 0; k < folds; k++) {
    const size = Math.floor(units.length / folds) + (k < units.length % folds ? 1 : 0);
    out.push(order.slice(at, at + size).sort((a, b) => a - b));
    at += size;
  }
  return out;
}

/** Splits units into training and held-out sets by unit number; a number not in `units` is a ConfigError. */
export function splitByUnits<T extends { unit: number }>(
  units: readonly T[],
  heldOutUnits: readonly number[],
): { train: T[]; heldOut: T[] } {
  const held = new Set(heldOutUnits);
  const heldOut = units.filter((u) => held.has(u.unit));
  if (heldOut.length !== held.size || heldOut.length === 0 || heldOut.length === units.length) {
    throw new ConfigError("heldOutUnits", `must name 1..${units.length - 1} distinct units of the file, got ${heldOutUnits.join(" ")}`);
  }
  return { train: units.filter((u) => !held.has(u.unit)), heldOut };
}

/** Trains the model on all but the held-out units and measures it on them. */
export function trainRulModel(units: readonly CmapssUnit[], options: RulTrainOptions, trainedOnFile: string): TrainedRulModel {
  validateTrainOptions(options);
  const started = performance.now();
  const { train, heldOut } =
    options.heldOutUnits === undefined ? splitUnits(units, options.holdout, options.seed) : splitByUnits(units, options.heldOutUnits);
  const sensors = options.sensors ?? informativeSensors(train);
  if (sensors.length === 0) throw new ConfigError("sensors", "no sensor varies on the training units");
  const names = rulFeatureNames(sensors, options.statistics);
  const data = buildRulDataset(train, names, options.window, options.rulCap);
  const { featureMean, featureStd } = standardisation(data);
  const fit = fitEnsemble(data, featureMean, featureStd, options);
  const partial = { featureMean, featureStd, layers: fit.layers };
  const predictor = (x: Float64Array, rows: number): Float64Array => clipRul(mlpForward(partial, x, rows), options.rulCap);
  const validation = evaluateRulSync(predictor, heldOut, names, options.window, options.rulCap, options.seed, options.truncationsPerUnit);
  const spec: RulModelSpec = {
    featureNames: names,
    window: options.window,
    featureMean,
    featureStd,
    layers: fit.layers,
    rulCap: options.rulCap,
    horizonCycles: options.horizonCycles,
    cycleHours: options.cycleHours,
    residualSigma: validation.residualSigma,
    trainedOn:
      `${trainedOnFile}: ${train.length} units (held out by seed ${options.seed}: ${heldOut.map((u) => u.unit).join(" ")}), ` +
      `${data.rows} rows, ${options.ensemble > 1 ? `mean of ${options.ensemble} MLPs` : "MLP"} ${[names.length, ...options.hidden, 1].join("-")}, ` +
      `${options.epochs} epochs, batch ${options.batchSize}, lr ${options.learningRate}`,
    validationRmse: validation.rmseAllRows,
    // The rows the network was fitted on, binned now: drift PSI compares live feature rows with them.
    referenceHistograms: buildReferenceHistograms(data.features, data.rows, names, options.referenceBins),
    trainingFingerprint: trainingFingerprint(data.features, data.rows, names),
  };
  return {
    spec,
    trainUnits: train.map((u) => u.unit),
    heldOutUnits: heldOut.map((u) => u.unit),
    validation,
    trainLoss: fit.loss,
    trainSeconds: (performance.now() - started) / 1000,
  };
}

/** Figures of a predictor on these units (see {@link RulEvaluation}). */
export async function evaluateRul(
  predict: RulPredictor,
  units: readonly CmapssUnit[],
  names: readonly string[],
  window: number,
  rulCap: number,
  seed: number,
  truncationsPerUnit: number,
): Promise<RulEvaluation> {
  const data = buildRulDataset(units, names, window, rulCap);
  const predicted = await predict(data.features, data.rows);
  return summarise(data, predicted, units, rulCap, seed, truncationsPerUnit);
}

function evaluateRulSync(
  predict: (x: Float64Array, rows: number) => Float64Array,
  units: readonly CmapssUnit[],
  names: readonly string[],
  window: number,
  rulCap: number,
  seed: number,
  truncationsPerUnit: number,
): RulEvaluation {
  const data = buildRulDataset(units, names, window, rulCap);
  return summarise(data, predict(data.features, data.rows), units, rulCap, seed, truncationsPerUnit);
}

/**
 * PHM08 challenge score (Saxena et al. 2008): Σ e^(−d/13) − 1 for d < 0 (early), e^(d/10) − 1
 * for d ≥ 0 (late), d = predicted − true RUL; late predictions cost more.
 */
export function phm08Score(predicted: ArrayLike<number>, truth: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < predicted.length; i++) {
    const d = predicted[i] - truth[i];
    s += d < 0 ? Math.exp(-d / 13) - 1 : Math.exp(d / 10) - 1;
  }
  return s;
}

export function rmse(predicted: ArrayLike<number>, truth: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < predicted.length; i++) s += (predicted[i] - truth[i]) ** 2;
  return Math.sqrt(s / predicted.length);
}

/**
 * Ridge regression in closed form, w = (XᵀX + λI)⁻¹ Xᵀy on standardised features with an
 * unpenalised intercept: an independent linear baseline for the MLP.
 */
export function fitRidge(data: RulDataset, lambda: number, rulCap: number): RulPredictor {
  const { featureMean, featureStd } = standardisation(data);
  const f = data.names.length;
  const d = f + 1;
  const a = new Float64Array(d * d);
  const b = new Float64Array(d);
  const z = new Float64Array(d);
  for (let r = 0; r < data.rows; r++) {
    z[0] = 1;
    for (let j = 0; j < f; j++) z[j + 1] = (data.features[r * f + j] - featureMean[j]) / featureStd[j];
    for (let i = 0; i < d; i++) {
      b[i] += z[i] * data.target[r];
      for (let k = 0; k <= i; k++) a[i * d + k] += z[i] * z[k];
    }
  }
  for (let i = 0; i < d; i++) for (let k = 0; k < i; k++) a[k * d + i] = a[i * d + k];
  for (let i = 1; i < d; i++) a[i * d + i] += lambda;
  const w = solveSpd(a, b, d);
  return (x, rows) => {
    const out = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      let s = w[0];
      for (let j = 0; j < f; j++) s += w[j + 1] * ((x[r * f + j] - featureMean[j]) / featureStd[j]);
      out[r] = Math.min(rulCap, Math.max(0, s));
    }
    return out;
  };
}

/** Per-feature mean and standard deviation of the rows (std 0 becomes 1: a constant feature stays 0). */
export function standardisation(data: RulDataset): { featureMean: Float32Array; featureStd: Float32Array } {
  const f = data.names.length;
  const mean = new Float64Array(f);
  const m2 = new Float64Array(f);
  for (let r = 0; r < data.rows; r++) {
    for (let j = 0; j < f; j++) {
      const v = data.features[r * f + j];
      const d = v - mean[j];
      mean[j] += d / (r + 1);
      m2[j] += d * (v - mean[j]);
    }
  }
  const std = Array.from(m2, (v) => Math.sqrt(v / Math.max(1, data.rows - 1)));
  return {
    featureMean: Float32Array.from(mean),
    featureStd: Float32Array.from(std, (s) => (s > 0 && Number.isFinite(Math.fround(s)) && Math.fround(s) > 0 ? s : 1)),
  };
}

export function validateTrainOptions(o: RulTrainOptions): void {
  const int = (name: string, v: number, min: number, max: number) => {
    if (!Number.isInteger(v) || v < min || v > max) throw new ConfigError(name, `must be an integer in ${min}..${max}, got ${v}`);
  };
  int("seed", o.seed, 0, 0xffffffff);
  int("epochs", o.epochs, 1, 100_000);
  int("window", o.window, 1, 65535);
  int("batchSize", o.batchSize, 1, 1 << 20);
  int("truncationsPerUnit", o.truncationsPerUnit, 1, 1000);
  int("ensemble", o.ensemble, 1, 64);
  if (o.statistics.length === 0 || new Set(o.statistics).size !== o.statistics.length)
    throw new ConfigError("statistics", `must name distinct rolling statistics, got ${o.statistics.join(", ")}`);
  int("referenceBins", o.referenceBins, 2, REFERENCE_BINS_MAX);
  if (o.hidden.length === 0) throw new ConfigError("hidden", "the MLP needs at least one hidden layer");
  for (const h of o.hidden) int("hidden", h, 1, 4096);
  if (!(o.learningRate > 0 && o.learningRate < 1)) throw new ConfigError("learningRate", `must be in (0, 1), got ${o.learningRate}`);
  if (!(o.rulCap > 0 && Number.isFinite(o.rulCap))) throw new ConfigError("rulCap", `must be a positive number of cycles, got ${o.rulCap}`);
  if (!(o.horizonCycles >= 0 && Number.isFinite(o.horizonCycles)))
    throw new ConfigError("horizon", `must be a number of cycles ≥ 0, got ${o.horizonCycles}`);
  if (!(o.cycleHours > 0 && Number.isFinite(o.cycleHours)))
    throw new ConfigError("cycleHours", `must be a positive number of hours, got ${o.cycleHours}`);
}

// ── helpers ────────────────────────────────────────────────────────────────────────────────

function summarise(
  data: RulDataset,
  predicted: Float64Array,
  units: readonly CmapssUnit[],
  rulCap: number,
  seed: number,
  truncationsPerUnit: number,
): RulEvaluation {
  let sum = 0;
  for (let r = 0; r < data.rows; r++) sum += predicted[r] - data.target[r];
  const residualMean = sum / data.rows;
  let ss = 0;
  for (let r = 0; r < data.rows; r++) ss += (predicted[r] - data.target[r] - residualMean) ** 2;
  // Row index of each unit's first row, to pick truncation points.
  const firstRow = new Map<number, number>();
  for (let r = data.rows - 1; r >= 0; r--) firstRow.set(data.unit[r], r);
  const rng = new SeededRandom(seed ^ 0x7e57);
  const cutPred: number[] = [];
  const cutTrue: number[] = [];
  let scoreSum = 0;
  for (let t = 0; t < truncationsPerUnit; t++) {
    const p: number[] = [];
    const y: number[] = [];
    for (const u of units) {
      const n = u.cycles.length;
      // The test files cut each engine somewhere in its life, at least a few cycles in; here uniformly
      // in [min(RUL_CUT_MIN_CYCLES, n), n] cycles seen, the same cuts whatever the model's window.
      const lo = Math.min(RUL_CUT_MIN_CYCLES, n);
      const seen = lo + Math.floor(rng.next() * (n - lo + 1));
      const r = (firstRow.get(u.unit) as number) + seen - 1;
      p.push(predicted[r]);
      y.push(Math.min(rulCap, remainingUsefulLife(u, seen - 1)));
    }
    scoreSum += phm08Score(p, y);
    cutPred.push(...p);
    cutTrue.push(...y);
  }
  const lastPred: number[] = [];
  const lastTrue: number[] = [];
  for (const u of units) {
    lastPred.push(predicted[(firstRow.get(u.unit) as number) + u.cycles.length - 1]);
    lastTrue.push(0);
  }
  return {
    units: units.length,
    rows: data.rows,
    rmseAllRows: rmse(predicted, data.target),
    residualMean,
    residualSigma: Math.sqrt(ss / Math.max(1, data.rows - 1)),
    truncated: { points: cutPred.length, rmse: rmse(cutPred, cutTrue), meanScorePerDraw: scoreSum / truncationsPerUnit },
    rmseLastCycle: rmse(lastPred, lastTrue),
  };
}

function clipRul(x: Float64Array, rulCap: number): Float64Array {
  for (let i = 0; i < x.length; i++) x[i] = Math.min(rulCap, Math.max(0, x[i]));
  return x;
}

/**
 * Mini-batch Adam on the mean squared error of target / rulCap (outputs of order 1 train
 * better); the scale is folded back into the last layer at the end. He-normal initial weights,
 * zero biases. Parameters are kept in float64 and rounded to float32 once, for the graph.
 */
function fitMlp(
  data: RulDataset,
  featureMean: Float32Array,
  featureStd: Float32Array,
  o: RulTrainOptions,
  seed: number,
): { layers: DenseLayer[]; loss: number[] } {
  const rng = new SeededRandom(seed);
  const f = data.names.length;
  const widths = [f, ...o.hidden, 1];
  const nl = widths.length - 1;
  const W: Float64Array[] = [];
  const B: Float64Array[] = [];
  for (let l = 0; l < nl; l++) {
    const sd = Math.sqrt(2 / widths[l]);
    W.push(Float64Array.from({ length: widths[l] * widths[l + 1] }, () => rng.normal() * sd));
    B.push(new Float64Array(widths[l + 1]));
  }
  const gW = W.map((w) => new Float64Array(w.length));
  const gB = B.map((b) => new Float64Array(b.length));
  const mW = W.map((w) => new Float64Array(w.length));
  const vW = W.map((w) => new Float64Array(w.length));
  const mB = B.map((b) => new Float64Array(b.length));
  const vB = B.map((b) => new Float64Array(b.length));
  // Standardised inputs, computed once.
  const x = new Float64Array(data.rows * f);
  for (let r = 0; r < data.rows; r++)
    for (let j = 0; j < f; j++) x[r * f + j] = (data.features[r * f + j] - featureMean[j]) / featureStd[j];
  const y = Float64Array.from(data.target, (t) => t / o.rulCap);
  const bs = o.batchSize;
  // Activations and deltas of one batch, per layer (index 0: the input).
  const act = widths.map((w) => new Float64Array(bs * w));
  const delta = widths.map((w) => new Float64Array(bs * w));
  const order = Int32Array.from({ length: data.rows }, (_, i) => i);
  const { beta1, beta2, eps } = ADAM;
  let step = 0;
  const loss: number[] = [];
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    rng.shuffle(order);
    let sse = 0;
    for (let start = 0; start < data.rows; start += bs) {
      const n = Math.min(bs, data.rows - start);
      for (let i = 0; i < n; i++) act[0].set(x.subarray(order[start + i] * f, order[start + i] * f + f), i * f);
      for (let l = 0; l < nl; l++) forwardLayer(act[l], act[l + 1], W[l], B[l], n, widths[l], widths[l + 1], l < nl - 1);
      // Output delta: d(mean squared error)/d(output).
      const out = act[nl];
      const dOut = delta[nl];
      for (let i = 0; i < n; i++) {
        const e = out[i] - y[order[start + i]];
        sse += e * e;
        dOut[i] = (2 * e) / n;
      }
      for (let l = nl - 1; l >= 0; l--) {
        backwardLayer(act[l], delta[l + 1], W[l], gW[l], gB[l], l > 0 ? delta[l] : null, n, widths[l], widths[l + 1]);
      }
      // Adam update.
      step++;
      const c1 = 1 - beta1 ** step;
      const c2 = 1 - beta2 ** step;
      const lr = learningRateAt(o, step, Math.ceil(data.rows / bs) * o.epochs);
      for (let l = 0; l < nl; l++) {
        adam(W[l], gW[l], mW[l], vW[l], lr, beta1, beta2, eps, c1, c2);
        adam(B[l], gB[l], mB[l], vB[l], lr, beta1, beta2, eps, c1, c2);
      }
    }
    loss.push((sse / data.rows) * o.rulCap * o.rulCap);
  }
  return { layers: exportLayers(W, B, widths, o.rulCap), loss };
}

/** Adam's moment decay rates and ε (Kingma & Ba 2015's defaults). */
const ADAM = { beta1: 0.9, beta2: 0.999, eps: 1e-8 } as const;

/** The learning rate of step `step` (1-based) of `steps`: constant, or cosine-annealed to 0 (Loshchilov & Hutter 2017). */
function learningRateAt(o: RulTrainOptions, step: number, steps: number): number {
  return o.cosineDecay ? o.learningRate * 0.5 * (1 + Math.cos((Math.PI * (step - 1)) / steps)) : o.learningRate;
}

/**
 * `o.ensemble` MLPs, member m from seed + m·0x9e3779b9 (member 0 from the seed itself, so an
 * ensemble of 1 is the single MLP), merged into one MLP computing their mean. Loss: the members'
 * mean training loss per epoch.
 */
function fitEnsemble(
  data: RulDataset,
  featureMean: Float32Array,
  featureStd: Float32Array,
  o: RulTrainOptions,
): { layers: DenseLayer[]; loss: number[] } {
  const members: DenseLayer[][] = [];
  const loss = new Array<number>(o.epochs).fill(0);
  for (let m = 0; m < o.ensemble; m++) {
    const fit = fitMlp(data, featureMean, featureStd, o, (o.seed + m * 0x9e3779b9) >>> 0);
    members.push(fit.layers);
    fit.loss.forEach((v, e) => (loss[e] += v / o.ensemble));
  }
  return { layers: members.length === 1 ? members[0] : mergeEnsemble(members), loss };
}

/**
 * k MLPs of the same shape as one MLP that outputs their mean: the first layers side by side
 * (F × k·h₁), the hidden layers block-diagonal (k·hₗ × k·hₗ₊₁: member m's units only feed member
 * m's), the output layer's weights divided by k and its bias the members' mean bias. The graph
 * stays a plain MLP (onnx-export.ts), at k² times the weights of the hidden layers — small here.
 */
export function mergeEnsemble(members: readonly (readonly DenseLayer[])[]): DenseLayer[] {
  const k = members.length;
  return members[0].map((first, l) => {
    const last = l === members[0].length - 1;
    const inputs = l === 0 ? first.inputs : k * first.inputs;
    const outputs = last ? 1 : k * first.outputs;
    const weights = new Float32Array(inputs * outputs);
    const bias = new Float32Array(outputs);
    members.forEach((layers, m) => {
      const layer = layers[l];
      const rowOffset = l === 0 ? 0 : m * layer.inputs;
      const colOffset = last ? 0 : m * layer.outputs;
      for (let i = 0; i < layer.inputs; i++) {
        for (let j = 0; j < layer.outputs; j++)
          weights[(rowOffset + i) * outputs + colOffset + j] = last ? layer.weights[i] / k : layer.weights[i * layer.outputs + j];
      }
      for (let j = 0; j < layer.outputs; j++) bias[colOffset + j] += last ? layer.bias[j] / k : layer.bias[j];
    });
    return { inputs, outputs, weights, bias, relu: first.relu };
  });
}

/** The trained layers as float32, the last scaled back from RUL / rulCap to cycles. */
function exportLayers(W: readonly Float64Array[], B: readonly Float64Array[], widths: readonly number[], rulCap: number): DenseLayer[] {
  const nl = widths.length - 1;
  const layers: DenseLayer[] = [];
  for (let l = 0; l < nl; l++) {
    const last = l === nl - 1;
    const scale = last ? rulCap : 1;
    layers.push({
      inputs: widths[l],
      outputs: widths[l + 1],
      weights: Float32Array.from(W[l], (v) => v * scale),
      bias: Float32Array.from(B[l], (v) => v * scale),
      relu: !last,
    });
  }
  return layers;
}

function adam(
  p: Float64Array,
  g: Float64Array,
  m: Float64Array,
  v: Float64Array,
  lr: number,
  b1: number,
  b2: number,
  eps: number,
  c1: number,
  c2: number,
): void {
  for (let i = 0; i < p.length; i++) {
    m[i] = b1 * m[i] + (1 - b1) * g[i];
    v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
    p[i] -= (lr * (m[i] / c1)) / (Math.sqrt(v[i] / c2) + eps);
  }
}

/** Solves A x = b for a symmetric positive definite A (d × d, row-major) by Cholesky. */
function solveSpd(a: Float64Array, b: Float64Array, d: number): Float64Array {
  const l = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * d + j];
      for (let k = 0; k < j; k++) s -= l[i * d + k] * l[j * d + k];
      if (i === j) {
        if (!(s > 0)) throw new ConfigError("lambda", "the ridge system is not positive definite; raise lambda");
        l[i * d + i] = Math.sqrt(s);
      } else l[i * d + j] = s / l[j * d + j];
    }
  }
  const y = new Float64Array(d);
  for (let i = 0; i < d; i++) {
    let s = b[i];
    for (let k = 0; k < i; k++) s -= l[i * d + k] * y[k];
    y[i] = s / l[i * d + i];
  }
  const x = new Float64Array(d);
  for (let i = d - 1; i >= 0; i--) {
    let s = y[i];
    for (let k = i + 1; k < d; k++) s -= l[k * d + i] * x[k];
    x[i] = s / l[i * d + i];
  }
  return x;
}
