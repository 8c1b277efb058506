/**
 * A small failure-prediction model for the prediction tests, written with the project's own ONNX
 * writer (operators/onnx-export.ts): FD001's informative sensors, mean and slope over a count
 * window of 30, standardised with the features' real mean and spread on units 1–20, and a
 * seeded random two-layer network. Its numbers are not a forecast; the tests check that the
 * service feeds it what the engine computed and reports what it answers.
 */
import type { CmapssUnit } from "../../connectors/cmapss.js";
import { Xoshiro128 } from "../../operators/iforest-train.js";
import { encodeRulModel, type DenseLayer, type RulModelSpec } from "../../operators/onnx-export.js";
import { FD001_INFORMATIVE_SENSORS, rulFeatureNames, rulFeatureRows } from "../../operators/rul-features.js";

export const TEST_MODEL_WINDOW = 30;

export function testModelSpec(units: readonly CmapssUnit[], seed = 11): RulModelSpec {
  const featureNames = rulFeatureNames(FD001_INFORMATIVE_SENSORS);
  const f = featureNames.length;
  const sum = new Float64Array(f);
  const sq = new Float64Array(f);
  let n = 0;
  for (const u of units.slice(0, 20)) {
    const rows = rulFeatureRows(u, featureNames, TEST_MODEL_WINDOW);
    for (let r = 0; r < u.cycles.length; r++, n++) {
      for (let j = 0; j < f; j++) {
        sum[j] += rows[r * f + j];
        sq[j] += rows[r * f + j] ** 2;
      }
    }
  }
  const mean = Float32Array.from(sum, (s) => s / n);
  const std = Float32Array.from(sq, (s, j) => Math.max(1e-6, Math.sqrt(Math.max(0, s / n - (sum[j] / n) ** 2))));
  const rng = new Xoshiro128(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
  const layers: DenseLayer[] = [];
  let width = f;
  for (const [k, out] of [8, 1].entries()) {
    layers.push({
      inputs: width, outputs: out, relu: k === 0,
      weights: Float32Array.from({ length: width * out }, () => gauss() * Math.sqrt(2 / width) * (k === 1 ? 10 : 1)),
      bias: Float32Array.from({ length: out }, () => (k === 1 ? 60 : 0.1 * gauss())),
    });
    width = out;
  }
  return {
    featureNames, window: TEST_MODEL_WINDOW, featureMean: mean, featureStd: std, layers,
    rulCap: 125, horizonCycles: 30, cycleHours: 1, residualSigma: 18, trainedOn: "seeded random weights (linewatch prediction tests)", validationRmse: 0,
  };
}

export function testModelBytes(units: readonly CmapssUnit[], seed = 11): Uint8Array {
  return encodeRulModel(testModelSpec(units, seed));
}
