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
import { trainRulModel } from "../../operators/prediction/training/rul-train.js";
import { TEST_MODEL_OPTIONS } from "./prediction-model.js";

export interface RegistryTestModels {
  rulA: Uint8Array;
  rulB: Uint8Array;
  iforest: Uint8Array;
  /** A quality model: no format yet, so any bytes that are neither an ONNX failure model nor a forest. */
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
    quality: new TextEncoder().encode("quality model v0: opaque bytes\n"),
  };
}
