/**
 * The worker thread of a drift-triggered retraining (engine/jobs/retrain.ts): trains a candidate
 * remaining-useful-life model on the retained units with the production model's settings (its
 * sensors, window, RUL cap, horizon, hours per cycle), and measures the candidate and the
 * production model on the same held-out units. Posts a RetrainResult, or {error}.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { RetrainRequest, RetrainResult } from "../jobs/mod.js";
import { FailureModel, parseFeatureName } from "../../operators/prediction/mod.js";
import { encodeRulModel } from "../../operators/prediction/training/onnx-export.js";
import { DEFAULT_RUL_TRAIN_OPTIONS, evaluateRul, trainRulModel } from "../../operators/prediction/training/rul-train.js";

async function retrain(r: RetrainRequest): Promise<RetrainResult> {
  const production = await FailureModel.fromBytes(r.productionBytes, "the production model");
  try {
    const sensors = [...new Set(production.featureNames.map((f) => f.slice(0, f.lastIndexOf("."))))];
    // The production model's statistics per sensor, in its order (names are sensor-major).
    const statistics = [...new Set(production.featureNames.map((f) => parseFeatureName(f).statistic))];
    const options = {
      ...DEFAULT_RUL_TRAIN_OPTIONS,
      sensors,
      statistics,
      // One MLP: the retraining runs beside the job, bounded by --retrain-epochs; the ensemble of
      // `predict train` (5 MLPs) would take five times as long (the ClickHouse retrain test then
      // ran past its 2 minutes on the shared machine).
      ensemble: 1,
      window: production.window,
      rulCap: production.rulCap,
      horizonCycles: production.horizonCycles,
      cycleHours: production.cycleHours,
      epochs: r.epochs,
      holdout: r.holdout,
      seed: r.seed,
    };
    const trained = trainRulModel(r.units, options, r.trainedOn);
    if (trained.spec.featureNames.join(",") !== production.featureNames.join(","))
      throw new Error(
        `the candidate reads ${trained.spec.featureNames.join(", ")}, the production model ${production.featureNames.join(", ")}`,
      );
    const heldOut = r.units.filter((u) => trained.heldOutUnits.includes(u.unit));
    const cap = production.rulCap;
    const predict = async (x: Float64Array, rows: number) =>
      Float64Array.from(await production.rawRul(x, rows), (v) => Math.min(cap, Math.max(0, v)));
    const before = await evaluateRul(predict, heldOut, production.featureNames, production.window, cap, r.seed, options.truncationsPerUnit);
    return {
      bytes: encodeRulModel(trained.spec),
      candidateRmse: trained.validation.rmseAllRows,
      productionRmse: before.rmseAllRows,
      trainUnits: trained.trainUnits.length,
      heldOutUnits: heldOut.length,
      trainSeconds: trained.trainSeconds,
    };
  } finally {
    await production.close();
  }
}

retrain(workerData as RetrainRequest).then(
  (result) => parentPort?.postMessage({ result }, [result.bytes.buffer as ArrayBuffer]),
  (error: Error) => parentPort?.postMessage({ error: error.message }),
);
