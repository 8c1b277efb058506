/**
 * The failure-prediction models of the prediction tests: trained on C-MAPSS FD001 with the
 * project's own trainer (operators/prediction/training/rul-train.ts) and written with its ONNX writer
 * (operators/prediction/training/onnx-export.ts). Few epochs and one MLP keep the tests fast; the
 * tests check that the service feeds a model what the engine computed and reports what it answers,
 * not its accuracy (test/rul-train.test.ts and `npm run bench -- rul` do that).
 *
 * - {@link testModelBytes}: mean and slope of FD001's informative sensors over a count window of 30
 *   (28 features) — the model the drift, registry and dashboard tests measured their figures with
 *   (PSI per feature, s11.mean at major; docs/drift.md), kept when `predict train`'s defaults changed.
 * - {@link defaultModelBytes}: `predict train`'s default features (mean, slope and count over 150).
 */
import type { CmapssUnit } from "../../connectors/files/cmapss.js";
import { encodeRulModel } from "../../operators/prediction/training/onnx-export.js";
import { DEFAULT_RUL_TRAIN_OPTIONS, type RulTrainOptions, trainRulModel } from "../../operators/prediction/training/rul-train.js";

/** The 28-feature test model's training options (the previous defaults' features, one MLP). */
export const TEST_MODEL_OPTIONS: Readonly<RulTrainOptions> = Object.freeze<RulTrainOptions>({
  ...DEFAULT_RUL_TRAIN_OPTIONS,
  window: 30,
  statistics: ["mean", "slope"],
  ensemble: 1,
  learningRate: 1e-3,
  cosineDecay: false,
});

export const TEST_MODEL_WINDOW = TEST_MODEL_OPTIONS.window;
export const DEFAULT_MODEL_WINDOW = DEFAULT_RUL_TRAIN_OPTIONS.window;

export function testModelBytes(units: readonly CmapssUnit[]): Uint8Array {
  return encodeRulModel(
    trainRulModel(units, { ...TEST_MODEL_OPTIONS, epochs: 5 }, "train_FD001.txt (5 epochs, linewatch prediction tests)").spec,
  );
}

export function defaultModelBytes(units: readonly CmapssUnit[]): Uint8Array {
  return encodeRulModel(
    trainRulModel(
      units,
      { ...DEFAULT_RUL_TRAIN_OPTIONS, epochs: 5, ensemble: 1 },
      "train_FD001.txt (default features, 5 epochs, linewatch prediction tests)",
    ).spec,
  );
}
