/**
 * The failure-prediction model trained on C-MAPSS FD001: deterministic for a seed, better than
 * a constant and a linear baseline on held-out units, close to scikit-learn's random forest on the
 * same features, and the ONNX file it writes predicts what training measured.
 *
 * The held-out units come from the training file (the FD001 test file is not shipped), so the
 * figures are not the published test-set figures (docs/prediction.md).
 */
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { ConfigError } from "../engine/core/errors.js";
import { readCmapss, type CmapssUnit } from "../connectors/files/cmapss.js";
import { encodeRulModel, mlpForward, type DenseLayer } from "../operators/prediction/training/onnx-export.js";
import { SeededRandom } from "../engine/core/prng.js";
import { FailureModel } from "../operators/prediction/failure-model.js";
import {
  buildRulDataset,
  DEFAULT_RUL_TRAIN_OPTIONS,
  evaluateRul,
  fitRidge,
  mergeEnsemble,
  phm08Score,
  rmse,
  splitByUnits,
  splitUnits,
  trainRulModel,
  unitFolds,
  type RulTrainOptions,
} from "../operators/prediction/training/rul-train.js";
import { compareRulModels, formatEvaluation, PREVIOUS_RUL_TRAIN_OPTIONS, type RulComparison } from "../bench/rul-eval.js";
import { findSklearnPython } from "../bench/sklearn-python.js";
import { referenceDataDir } from "../connectors/files/reference-data.js";

const TRAIN = join(referenceDataDir(), "cmapss", "train_FD001.txt");
/** Fewer epochs than the CLI's 60 keep this file fast; the bounds below were measured at 30. */
const OPTIONS: RulTrainOptions = { ...DEFAULT_RUL_TRAIN_OPTIONS, epochs: 30, ensemble: 1, seed: 1 };

const sklearn = findSklearnPython();
if (!sklearn.ok) process.stderr.write(`\n******** RUL scikit-learn baseline SKIPPED: ${sklearn.reason} ********\n\n`);

let units: CmapssUnit[];
let comparison: RulComparison;
beforeAll(async () => {
  units = readCmapss(TRAIN);
  comparison = await compareRulModels(units, OPTIONS, TRAIN, 20);
  for (const [name, e] of [
    ["MLP", comparison.mlp],
    ["ridge", comparison.ridge],
    ["forest", comparison.forest],
    ["constant", comparison.constant],
  ] as const) {
    if (e) process.stderr.write(`${formatEvaluation(name, e)}\n`);
  }
}, 120_000);

describe("RUL model - quality on held-out FD001 units", () => {
  it("MLP: RMSE ≤ 20 cycles over all held-out rows and ≤ 21 under random cuts; a constant predictor is far off", () => {
    const { mlp, constant } = comparison;
    expect(mlp.units).toBe(20);
    expect(mlp.rmseAllRows).toBeLessThanOrEqual(20);
    expect(mlp.truncated.rmse).toBeLessThanOrEqual(21);
    expect(mlp.rmseLastCycle).toBeLessThanOrEqual(10);
    expect(Math.abs(mlp.residualMean)).toBeLessThanOrEqual(5);
    // The bound separates a trained model from an untrained one: the mean predictor sits near 40.
    expect(constant.rmseAllRows).toBeGreaterThan(35);
    expect(constant.truncated.rmse).toBeGreaterThan(30);
    expect(mlp.truncated.meanScorePerDraw).toBeLessThan(constant.truncated.meanScorePerDraw / 10);
  });

  it("MLP beats closed-form ridge regression on the same features", () => {
    const { mlp, ridge } = comparison;
    expect(ridge.rmseAllRows).toBeLessThan(30);
    expect(mlp.rmseAllRows).toBeLessThanOrEqual(ridge.rmseAllRows - 3);
  });

  it("beats the previous model (MLP on the mean and slope over 30 cycles) on the same held-out units and cuts", () => {
    // Both at 30 epochs and one MLP: the default ensemble of 5 at 60 epochs is measured by `npm run bench -- rul`.
    const previous = trainRulModel(units, { ...PREVIOUS_RUL_TRAIN_OPTIONS, epochs: 30, seed: 1 }, "FD001").validation;
    process.stderr.write(`${formatEvaluation("previous MLP", previous)}\n`);
    expect(comparison.mlp.truncated.rmse).toBeLessThan(previous.truncated.rmse);
    expect(comparison.mlp.rmseAllRows).toBeLessThan(previous.rmseAllRows);
  }, 60_000);

  // On the count-carrying features the forest is the stronger model: one MLP at 30 epochs measured
  // 13.33 (all rows) and 12.13 (cuts) against the forest's 8.72 and 9.42 on this split (seed 1);
  // the default ensemble of 5 at 60 epochs is compared fold by fold in `npm run bench -- rul`.
  it.skipIf(!sklearn.ok)(
    "one quick MLP is within 60% (all rows) and 30% + 2 (cuts) of scikit-learn's RandomForestRegressor (20 trees) on the same features and units",
    () => {
      const forest = comparison.forest!;
      expect(forest.rmseAllRows).toBeLessThanOrEqual(20);
      expect(comparison.mlp.rmseAllRows).toBeLessThanOrEqual(1.6 * forest.rmseAllRows);
      expect(comparison.mlp.truncated.rmse).toBeLessThanOrEqual(1.3 * forest.truncated.rmse + 2);
    },
  );
});

describe("RUL model - training", () => {
  it("is deterministic for a seed (same ONNX bytes) and differs across seeds", () => {
    // Two members: the ensemble path (seeds per member, the merge) is deterministic too.
    const quick = { ...OPTIONS, epochs: 2, ensemble: 2 };
    const a = encodeRulModel(trainRulModel(units, quick, "FD001").spec);
    const b = encodeRulModel(trainRulModel(units, quick, "FD001").spec);
    const c = encodeRulModel(trainRulModel(units, { ...quick, seed: 2 }, "FD001").spec);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    expect(Buffer.from(a).equals(Buffer.from(c))).toBe(false);
  }, 60_000);

  it("the ONNX file predicts what training measured, with σ and the validation RMSE in its metadata", async () => {
    // An ensemble of 2: onnxruntime runs the merged network as training evaluated it.
    const trained = trainRulModel(units, { ...OPTIONS, epochs: 3, ensemble: 2 }, "FD001");
    const model = await FailureModel.fromBytes(encodeRulModel(trained.spec), "trained.onnx");
    try {
      expect(model.residualSigma).toBe(trained.validation.residualSigma);
      expect(model.validationRmse).toBe(trained.validation.rmseAllRows);
      expect(model.featureNames).toEqual(trained.spec.featureNames);
      expect(model.trainedOn).toContain(trained.heldOutUnits.join(" "));
      const heldOut = units.filter((u) => trained.heldOutUnits.includes(u.unit));
      const onnx = await evaluateRul(
        async (x, rows) => Float64Array.from(await model.predict(x, rows), (p) => p.rul_cycles),
        heldOut,
        model.featureNames,
        model.window,
        model.rulCap,
        OPTIONS.seed,
        OPTIONS.truncationsPerUnit,
      );
      // The graph takes float32 features (s9.mean ≈ 9065 keeps 4 decimals): hundredths of a cycle apart at most.
      expect(Math.abs(onnx.rmseAllRows - trained.validation.rmseAllRows)).toBeLessThan(0.01);
      expect(Math.abs(onnx.truncated.rmse - trained.validation.truncated.rmse)).toBeLessThan(0.01);
    } finally {
      await model.close();
    }
  }, 60_000);

  it("holds out distinct units by seed, and rejects a hold-out that leaves nothing to train on", () => {
    const a = splitUnits(units, 20, 1);
    expect(a.heldOut.length).toBe(20);
    expect(a.train.length).toBe(80);
    expect(new Set([...a.train, ...a.heldOut].map((u) => u.unit)).size).toBe(100);
    expect(splitUnits(units, 20, 1).heldOut.map((u) => u.unit)).toEqual(a.heldOut.map((u) => u.unit));
    expect(splitUnits(units, 20, 2).heldOut.map((u) => u.unit)).not.toEqual(a.heldOut.map((u) => u.unit));
    expect(() => splitUnits(units, 100, 1)).toThrow(ConfigError);
    expect(() => splitUnits(units, 0, 1)).toThrow(ConfigError);
    expect(() => trainRulModel(units, { ...OPTIONS, epochs: 0 }, "x")).toThrow(ConfigError);
  });

  it("folds hold out every unit once, in disjoint sets of equal size; a fold trains on the other units", () => {
    const folds = unitFolds(units, 5, 1);
    expect(folds.map((f) => f.length)).toEqual([20, 20, 20, 20, 20]);
    expect(new Set(folds.flat()).size).toBe(100);
    expect(unitFolds(units, 5, 1)).toEqual(folds);
    expect(unitFolds(units, 5, 2)).not.toEqual(folds);
    const { train, heldOut } = splitByUnits(units, folds[2]);
    expect(heldOut.map((u) => u.unit)).toEqual(folds[2]);
    expect(train.length).toBe(80);
    expect(() => splitByUnits(units, [1, 1000])).toThrow(ConfigError);
    expect(() => unitFolds(units, 1, 1)).toThrow(ConfigError);
  });

  it("targets are the RUL capped at 125", () => {
    const ds = buildRulDataset([units[0]], ["s2.mean"], 30, 125);
    const n = units[0].cycles.length;
    expect(ds.rows).toBe(n);
    for (let i = 0; i < n; i++) expect(ds.target[i]).toBe(Math.min(125, n - 1 - i));
  });
});

describe("RUL model - figures", () => {
  it("PHM08 score: e^(−d/13) − 1 early, e^(d/10) − 1 late", () => {
    expect(phm08Score([87], [100])).toBeCloseTo(Math.E - 1, 12);
    expect(phm08Score([110], [100])).toBeCloseTo(Math.E - 1, 12);
    expect(phm08Score([50, 50], [50, 50])).toBe(0);
    expect(phm08Score([100 + 20], [100])).toBeGreaterThan(phm08Score([100 - 20], [100]));
    expect(rmse([1, 2, 3], [1, 2, 7])).toBeCloseTo(Math.sqrt(16 / 3), 12);
  });

  it("an ensemble merged into one MLP outputs the mean of its members' outputs", () => {
    const rng = new SeededRandom(7);
    const dense = (inputs: number, outputs: number, relu: boolean): DenseLayer => ({
      inputs,
      outputs,
      weights: Float32Array.from({ length: inputs * outputs }, () => rng.normal()),
      bias: Float32Array.from({ length: outputs }, () => rng.normal()),
      relu,
    });
    const members = [0, 1, 2].map(() => [dense(4, 5, true), dense(5, 3, true), dense(3, 1, false)]);
    const merged = mergeEnsemble(members);
    expect(merged.map((l) => [l.inputs, l.outputs])).toEqual([
      [4, 15],
      [15, 9],
      [9, 1],
    ]);
    const norm = { featureMean: new Float32Array(4), featureStd: new Float32Array(4).fill(1) };
    const rows = 50;
    const x = Float64Array.from({ length: rows * 4 }, () => 3 * rng.normal());
    const got = mlpForward({ ...norm, layers: merged }, x, rows);
    const each = members.map((layers) => mlpForward({ ...norm, layers }, x, rows));
    for (let r = 0; r < rows; r++) {
      const want = (each[0][r] + each[1][r] + each[2][r]) / 3;
      // The output weights are divided by 3 in float32: agreement to float32 rounding.
      expect(Math.abs(got[r] - want)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(want)));
    }
  });

  it("ridge recovers an exactly linear target", () => {
    const f = 3;
    const rows = 200;
    const features = new Float64Array(rows * f);
    const target = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      const x = [Math.sin(r), Math.cos(3 * r) * 10, (r % 17) - 8];
      features.set(x, r * f);
      target[r] = 50 + 2 * x[0] - 0.5 * x[1] + 1.5 * x[2];
    }
    const ds = {
      names: ["s2.mean", "s3.mean", "s4.mean"],
      rows,
      features,
      target,
      unit: new Int32Array(rows),
      cycleIndex: new Int32Array(rows),
    };
    const predict = fitRidge(ds, 1e-9, 125) as (x: Float64Array, rows: number) => Float64Array;
    const got = predict(features, rows);
    for (let r = 0; r < rows; r++) expect(got[r]).toBeCloseTo(target[r], 6);
  });
});
