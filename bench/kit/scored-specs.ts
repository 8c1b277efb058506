/**
 * The analyses the ClickHouse-row benches score with (audit-bench, clickhouse-rows-ab): rolling
 * W = 64, SPC and an isolation forest trained on 512 seeded rows of (value, mean, std, z) — the
 * same model in every run, so two builds encode the same rows.
 */
import { SeededRandom } from "../../engine/core/mod.js";
import type { AnalysisSpec } from "../../engine/jobs/mod.js";
import { trainIsolationForest } from "../../operators/iforest/training/train.js";
import { DEFAULT_SPC_PARAMS } from "../../operators/spc/mod.js";

export function scoredAnalysisSpecs(): AnalysisSpec[] {
  const rng = new SeededRandom(9);
  const rows = 512;
  const values = new Float64Array(rows * 4);
  for (let i = 0; i < rows; i++) {
    values[4 * i] = 50 + 5 * rng.normal();
    values[4 * i + 1] = 50 + rng.normal();
    values[4 * i + 2] = 5 + 0.5 * rng.normal();
    values[4 * i + 3] = rng.normal();
  }
  const forest = trainIsolationForest(
    { values, rows, columns: 4, names: ["value", "mean", "std", "z"] },
    { trees: 100, sampleSize: 256, seed: 9 },
  );
  return [
    { name: "rolling", options: { window: { kind: "count", records: 64 }, alpha: 0.1, timeScale: 1000 } },
    { name: "spc", options: { params: { ...DEFAULT_SPC_PARAMS, baselineN: 100 }, ewmaField: "spc_ewma" } },
    { name: "iforest", options: { model: forest, features: ["value", "mean", "std", "z"], rollingIndex: 0 } },
  ];
}
