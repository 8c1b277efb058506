/**
 * Two isolation forests for the audit tests, made by the project's own trainer: the features a
 * replay or an ingest run gives them (value, mean, std, z of the rolling analysis), trained on
 * seeded tables that differ, so the two score the same readings differently.
 */
import { SeededRandom } from "../../engine/core/mod.js";
import { modelToJson } from "../../operators/iforest/model.js";
import { trainIsolationForest } from "../../operators/iforest/training/train.js";

export const AUDIT_MODEL_FEATURES = ["value", "mean", "std", "z"] as const;

/** model.json texts: `a` and `b`, 20 trees each. */
export function auditTestModels(): { a: string; b: string } {
  return { a: forest(5, 80, 10), b: forest(6, 40, 30) };
}

/** A forest over rows around `centre` with spread `spread` in value and mean, std about spread/4, z standard normal. */
function forest(seed: number, centre: number, spread: number): string {
  const rng = new SeededRandom(seed);
  const rows = 400;
  const columns = AUDIT_MODEL_FEATURES.length;
  const values = new Float64Array(rows * columns);
  for (let r = 0; r < rows; r++) {
    values[r * columns] = centre + spread * rng.normal();
    values[r * columns + 1] = centre + (spread / 2) * rng.normal();
    values[r * columns + 2] = Math.abs((spread / 4) * (1 + 0.3 * rng.normal()));
    values[r * columns + 3] = rng.normal();
  }
  const model = trainIsolationForest({ values, rows, columns, names: [...AUDIT_MODEL_FEATURES] }, { trees: 20, sampleSize: 64, seed });
  return modelToJson(model);
}
