/**
 * The quality model against scikit-learn's GradientBoostingRegressor on the same features and
 * the same held-out batches (`npm run bench -- quality`): training batches from the process
 * simulator with one seed, held-out batches from another, the feature rows of both built once
 * (operators/quality/training/quality-dataset.ts); ours trained on them (`quality train`'s
 * defaults, nothing held out inside), the forest of boosted trees fitted on the same rows and
 * yields by /usr/bin/python3. Both are scored on the held-out batches at their end and halfway:
 * yield MAE / RMSE and the AUC of "yield < 0.95" (scored by the predicted yield); beside them the
 * trivial baseline (the training batches' mean yield) and the process model's own expectation
 * (the simulator's noise-free yield: how close any model can get).
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BatchSimulator } from "../connectors/sim/mod.js";
import type { ProcessRecord, QualityRecord } from "../operators/quality/mod.js";
import {
  batchHistories,
  buildQualityDataset,
  type BatchHistory,
  type QualityDataset,
} from "../operators/quality/training/quality-dataset.js";
import { evaluateQuality, type QualityEvaluation } from "../operators/quality/training/quality-eval.js";
import { qualityForward } from "../operators/quality/training/quality-onnx.js";
import { DEFAULT_QUALITY_TRAIN_OPTIONS, trainQualityModel } from "../operators/quality/training/quality-train.js";
import { findSklearnPython, type SklearnPython } from "./sklearn-python.js";

export const DEFAULT_QUALITY_EVAL_SEED = 1;
export const DEFAULT_QUALITY_TRAIN_BATCHES = 600;
export const DEFAULT_QUALITY_TEST_BATCHES = 300;
export const SMOKE_QUALITY_TRAIN_BATCHES = 60;
export const SMOKE_QUALITY_TEST_BATCHES = 30;
/** The boosted trees: a usual setting for a few thousand rows (shrinkage with more trees, row subsampling). */
export const SKLEARN_GBR = { n_estimators: 300, learning_rate: 0.05, max_depth: 3, subsample: 0.8 } as const;

export interface QualityEvalOptions {
  seed: number;
  trainBatches: number;
  testBatches: number;
  /** Epochs of our model (default: quality train's). */
  epochs?: number;
  progress?: (line: string) => void;
}

export interface QualityEvalRow {
  name: string;
  atEnd: QualityEvaluation;
  atHalf: QualityEvaluation;
  seconds: number;
}

export interface QualityEvalReport {
  seed: number;
  trainBatches: number;
  testBatches: number;
  trainRows: number;
  features: number;
  rows: QualityEvalRow[];
  /** Why the scikit-learn row is missing, when it is. */
  sklearnSkipped: string | null;
}

/** The whole comparison (see the module comment). */
export async function runQualityEval(o: QualityEvalOptions): Promise<QualityEvalReport> {
  const say = o.progress ?? (() => {});
  say(`simulating ${o.trainBatches} training batches (seed ${o.seed}) and ${o.testBatches} held-out batches (seed ${o.seed + 1})`);
  const train = simulateBatches(o.seed, o.trainBatches);
  const test = simulateBatches(o.seed + 1, o.testBatches);
  const options = { ...DEFAULT_QUALITY_TRAIN_OPTIONS, seed: o.seed, holdout: 0, epochs: o.epochs ?? DEFAULT_QUALITY_TRAIN_OPTIONS.epochs };
  say("training the MLP");
  const trained = trainQualityModel(train.batches, options, "simulator");
  const names = trained.spec.featureNames;
  const trainData = buildQualityDataset(train.batches, names, options.fractions);
  const testData = buildQualityDataset(test.batches, names, [0.5, 1]);
  const rows: QualityEvalRow[] = [];
  const row = (name: string, yieldOf: ArrayLike<number>, defects: ArrayLike<number> | null, seconds: number) =>
    rows.push({
      name,
      atEnd: evaluateQuality(testData, yieldOf, defects, 1),
      atHalf: evaluateQuality(testData, yieldOf, defects, 0.5),
      seconds,
    });
  const ours = qualityForward(trained.spec, testData.features, testData.rows);
  row(`linewatch MLP (${options.epochs} epochs)`, ours.yield, ours.defects, trained.trainSeconds);
  const sklearn = findSklearnPython();
  let sklearnSkipped: string | null = null;
  if (sklearn.ok) {
    say(`fitting scikit-learn ${sklearn.python.sklearnVersion} GradientBoostingRegressor`);
    const started = performance.now();
    const predicted = await sklearnBoostedYield(sklearn.python, trainData, testData, o.seed);
    row("sklearn gradient boosting", predicted, null, (performance.now() - started) / 1000);
  } else sklearnSkipped = sklearn.reason;
  row("mean yield (baseline)", new Float64Array(testData.rows).fill(trained.spec.trainYieldMean), null, 0);
  const expected = Float64Array.from(testData.batch, (b) => expectedYieldOf(test.outcomes, testData.batches[b].batchId));
  row("process model's expectation", expected, null, 0);
  return {
    seed: o.seed,
    trainBatches: trained.trainBatches,
    testBatches: testData.batches.length,
    trainRows: trained.trainRows,
    features: names.length,
    rows,
    sklearnSkipped,
  };
}

export function formatQualityEvalReport(r: QualityEvalReport): string {
  const lines = [
    `quality model: ${r.trainBatches} training batches (seed ${r.seed}, ${r.trainRows} rows × ${r.features} features), ` +
      `${r.testBatches} held-out batches (seed ${r.seed + 1}); yield < 0.95 in ${r.rows[0]?.atEnd.lowYieldBatches ?? 0} of them`,
    `${"model".padEnd(34)}${"at batch end: MAE    RMSE    AUC".padEnd(36)}${"halfway: MAE    RMSE    AUC".padEnd(32)}fit s`,
  ];
  const f = (e: QualityEvaluation) =>
    `${e.yieldMae.toFixed(4).padStart(8)} ${e.yieldRmse.toFixed(4).padStart(7)} ${e.lowYieldAuc.toFixed(3).padStart(6)}`;
  for (const row of r.rows)
    lines.push(
      `${row.name.padEnd(34)}${"".padEnd(10)}${f(row.atEnd).padEnd(26)}${"".padEnd(6)}${f(row.atHalf).padEnd(26)}${row.seconds.toFixed(1)}`,
    );
  if (r.sklearnSkipped !== null) lines.push(`sklearn gradient boosting: skipped (${r.sklearnSkipped})`);
  lines.push(
    "MAE/RMSE of first-pass yield (fraction); AUC of yield < 0.95 ranked by predicted yield. The process model's expectation is the",
    "simulator's noise-free yield for the batch: the error left there is the batch noise no model can see.",
  );
  return lines.join("\n");
}

// ---- internals ----

/** Fit on train.csv (yield, features…), predict test.csv rows, print JSON. */
const SKLEARN_QUALITY_SCRIPT = `
import json, sys
import numpy as np
from sklearn.ensemble import GradientBoostingRegressor
train = np.loadtxt(sys.argv[1], delimiter=",")
test = np.loadtxt(sys.argv[2], delimiter=",", ndmin=2)
params = json.loads(sys.argv[3])
model = GradientBoostingRegressor(random_state=int(sys.argv[4]), **params)
model.fit(train[:, 1:], train[:, 0])
print(json.dumps(model.predict(test).tolist()))
`;

async function sklearnBoostedYield(
  python: SklearnPython,
  train: QualityDataset,
  test: QualityDataset,
  seed: number,
): Promise<Float64Array> {
  const dir = mkdtempSync(join(tmpdir(), "lw-quality-sklearn-"));
  try {
    const f = train.names.length;
    const csv = (d: QualityDataset, withTarget: boolean) => {
      const lines: string[] = [];
      for (let r = 0; r < d.rows; r++) {
        const x = Array.from(d.features.subarray(r * f, (r + 1) * f), (v) => v.toPrecision(17));
        lines.push((withTarget ? [d.yield[r].toPrecision(17), ...x] : x).join(","));
      }
      return `${lines.join("\n")}\n`;
    };
    writeFileSync(join(dir, "train.csv"), csv(train, true));
    writeFileSync(join(dir, "test.csv"), csv(test, false));
    const args = ["-c", SKLEARN_QUALITY_SCRIPT, join(dir, "train.csv"), join(dir, "test.csv"), JSON.stringify(SKLEARN_GBR), String(seed)];
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(python.python, args, { timeout: 10 * 60_000, maxBuffer: 1 << 26 }, (error, out, stderr) =>
        error ? reject(new Error(`scikit-learn baseline failed: ${stderr.trim() || error.message}`, { cause: error })) : resolve(out),
      );
    });
    const predicted = Float64Array.from(JSON.parse(stdout) as number[]);
    if (predicted.length !== test.rows) throw new Error(`scikit-learn returned ${predicted.length} predictions for ${test.rows} rows`);
    return predicted;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface SimulatedBatches {
  batches: BatchHistory[];
  /** Outcomes with the process model's expectation, by batch id. */
  outcomes: Map<string, number>;
}

function simulateBatches(seed: number, batches: number): SimulatedBatches {
  const sim = new BatchSimulator({ seed, batches });
  const process: ProcessRecord[] = [];
  const quality: QualityRecord[] = [];
  const outcomes = new Map<string, number>();
  for (let kind = sim.next(); kind !== null; kind = sim.next()) {
    if (kind === "process") process.push(structuredClone(sim.reading));
    else if (sim.outcome !== null) {
      quality.push(sim.outcome);
      outcomes.set(sim.outcome.batch_id, sim.outcome.expected?.first_pass_yield ?? Number.NaN);
    }
  }
  return { batches: batchHistories(process, quality), outcomes };
}

function expectedYieldOf(outcomes: Map<string, number>, batchId: string): number {
  return outcomes.get(batchId) ?? Number.NaN;
}
