/**
 * The failure-prediction model of the prediction tests: trained on C-MAPSS FD001 with the
 * project's own trainer (operators/prediction/training/rul-train.ts) and written with its ONNX writer
 * (operators/prediction/training/onnx-export.ts) — mean and slope of FD001's informative sensors over a count window
 * of 30. Five epochs instead of the CLI's sixty keep the tests fast; the tests check that the
 * service feeds it what the engine computed and reports what it answers, not its accuracy
 * (test/rul-train.test.ts does that).
 */
import type { CmapssUnit } from "../../connectors/files/cmapss.js";
import { encodeRulModel } from "../../operators/prediction/training/onnx-export.js";
import { DEFAULT_RUL_TRAIN_OPTIONS, trainRulModel } from "../../operators/prediction/training/rul-train.js";

export const TEST_MODEL_WINDOW = DEFAULT_RUL_TRAIN_OPTIONS.window;

export function testModelBytes(units: readonly CmapssUnit[]): Uint8Array {
  return encodeRulModel(
    trainRulModel(units, { ...DEFAULT_RUL_TRAIN_OPTIONS, epochs: 5 }, "train_FD001.txt (5 epochs, linewatch prediction tests)").spec,
  );
}
