/**
 * Model files for the registry tests, made by the project's own trainers: two RUL models (ONNX
 * written by operators/prediction/training/onnx-export.ts, C-MAPSS FD001, 2 epochs, seeds 1 and 2:
 * two files with different bytes) and an isolation forest (linewatch-iforest JSON of
 * operators/iforest/model.ts, 20 trees over a seeded normal table).
 */
import { join } from "node:path";
import { SeededRandom } from "../../engine/core/mod.js";
import { readCmapss } from "../../connectors/files/cmapss.js";
import { referenceDataDir } from "../../connectors/files/reference-data.js";
import { modelToJson } from "../../operators/iforest/model.js";
import { trainIsolationForest } from "../../operators/iforest/training/train.js";
import { encodeRulModel } from "../../operators/prediction/training/onnx-export.js";
import { DEFECT_CATEGORIES } from "../../operators/quality/mod.js";
import { encodeQualityModel } from "../../operators/quality/training/quality-onnx.js";
import { trainRulModel } from "../../operators/prediction/training/rul-train.js";
import { TEST_MODEL_OPTIONS } from "./prediction-model.js";

export interface RegistryTestModels {
  rulA: Uint8Array;
  rulB: Uint8Array;
  iforest: Uint8Array;
  /** A quality model (ONNX of operators/quality/training/quality-onnx.ts): two features, a head of fixed weights. */
  quality: Uint8Array;
}

export function registryTestModels(): RegistryTestModels {
  const units = readCmapss(join(referenceDataDir(), "cmapss", "train_FD001.txt"));
  const rul = (seed: number) =>
    encodeRulModel(
      trainRulModel(units, { ...TEST_MODEL_OPTIONS, epochs: 2, seed }, `train_FD001.txt (2 epochs, seed ${seed}, registry tests)`).spec,
    );
  const rng = new SeededRandom(3);
  const rows = 300;
  const columns = 3;
  const values = new Float64Array(rows * columns);
  for (let i = 0; i < values.length; i++) values[i] = rng.normal();
  const forest = trainIsolationForest(
    { values, rows, columns, names: ["fill_weight", "seal_temp", "torque"] },
    { trees: 20, sampleSize: 64, seed: 7 },
  );
  return {
    rulA: rul(1),
    rulB: rul(2),
    iforest: new TextEncoder().encode(modelToJson(forest)),
    quality: encodeQualityModel({
      featureNames: ["temperature.mean", "progress"],
      categories: DEFECT_CATEGORIES,
      trainYieldMean: 0.95,
      trainedOn: "registry tests (fixed weights)",
      validationYieldMae: 0.01,
      featureMean: Float32Array.from([21.5, 0.5]),
      featureStd: Float32Array.from([1, 0.3]),
      layers: [
        { inputs: 2, outputs: 3, weights: new Float32Array(6).fill(0.1), bias: new Float32Array(3), relu: true },
        { inputs: 3, outputs: 5, weights: new Float32Array(15).fill(0.01), bias: Float32Array.from([0.95, -4, -4, -5, -5]), relu: false },
      ],
    }),
  };
}
