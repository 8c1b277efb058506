/**
 * Training and validation figures of the failure-prediction model on C-MAPSS FD001, next to two
 * independent baselines on the same features and held-out units: closed-form ridge regression
 * (TypeScript) and scikit-learn's RandomForestRegressor (when /usr/bin/python3 imports sklearn).
 * `node dist/bench/rul-eval.js [train_FD001.txt] [--seed N] [--epochs N]`
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { readCmapss, type CmapssUnit } from "../connectors/files/mod.js";
import { findSklearnPython, type SklearnPython } from "./sklearn-python.js";
import {
  buildRulDataset,
  DEFAULT_RUL_TRAIN_OPTIONS,
  evaluateRul,
  fitRidge,
  splitUnits,
  trainRulModel,
  type RulDataset,
  type RulEvaluation,
  type RulTrainOptions,
} from "../operators/prediction/training/rul-train.js";

/** The Python side of the scikit-learn baseline: fit on train.csv, predict test.csv, print JSON. */
const SKLEARN_RUL_SCRIPT = `
import json, sys
import numpy as np
from sklearn.ensemble import RandomForestRegressor
train = np.loadtxt(sys.argv[1], delimiter=",")
test = np.loadtxt(sys.argv[2], delimiter=",")
model = RandomForestRegressor(n_estimators=int(sys.argv[3]), min_samples_leaf=5, max_features=0.5, random_state=int(sys.argv[4]), n_jobs=1)
model.fit(train[:, 1:], train[:, 0])
print(json.dumps(model.predict(test).tolist()))
`;

/** RandomForestRegressor fitted on `train`, predicting `test` rows (capped RUL in cycles). */
export async function sklearnForestPredictions(
  python: SklearnPython,
  train: RulDataset,
  test: RulDataset,
  trees: number,
  seed: number,
): Promise<Float64Array> {
  const dir = mkdtempSync(join(tmpdir(), "lw-rul-sklearn-"));
  try {
    const f = train.names.length;
    const rowsCsv = (d: RulDataset, withTarget: boolean) => {
      const lines: string[] = [];
      for (let r = 0; r < d.rows; r++) {
        const x = Array.from(d.features.subarray(r * f, (r + 1) * f), (v) => v.toPrecision(17));
        lines.push((withTarget ? [String(d.target[r]), ...x] : x).join(","));
      }
      return `${lines.join("\n")}\n`;
    };
    writeFileSync(join(dir, "train.csv"), rowsCsv(train, true));
    writeFileSync(join(dir, "test.csv"), rowsCsv(test, false));
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(
        python.python,
        ["-c", SKLEARN_RUL_SCRIPT, join(dir, "train.csv"), join(dir, "test.csv"), String(trees), String(seed)],
        { timeout: 10 * 60_000, maxBuffer: 1 << 26 },
        (error, out, stderr) =>
          error ? reject(new Error(`scikit-learn baseline failed: ${stderr.trim() || error.message}`, { cause: error })) : resolve(out),
      );
    });
    const predicted = Float64Array.from(JSON.parse(stdout) as number[]);
    if (predicted.length !== test.rows)
      throw new Error(`scikit-learn baseline returned ${predicted.length} predictions for ${test.rows} rows`);
    return predicted;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface RulComparison {
  mlp: RulEvaluation;
  ridge: RulEvaluation;
  forest: RulEvaluation | null;
  constant: RulEvaluation;
  trainSeconds: number;
  forestSeconds: number;
  heldOutUnits: number[];
}

/** Trains the MLP and the baselines on the same split and features; evaluates all on the held-out units. */
export async function compareRulModels(
  units: CmapssUnit[],
  options: RulTrainOptions,
  file: string,
  forestTrees = 60,
): Promise<RulComparison> {
  const trained = trainRulModel(units, options, file);
  const { train, heldOut } = splitUnits(units, options.holdout, options.seed);
  const names = trained.spec.featureNames;
  const trainData = buildRulDataset(train, names, options.window, options.rulCap);
  const evaluate = (p: Parameters<typeof evaluateRul>[0]) =>
    evaluateRul(p, heldOut, names, options.window, options.rulCap, options.seed, options.truncationsPerUnit);
  const ridge = await evaluate(fitRidge(trainData, 1, options.rulCap));
  const meanTarget = trainData.target.reduce((a, b) => a + b, 0) / trainData.rows;
  const constant = await evaluate((_, rows) => new Float64Array(rows).fill(meanTarget));
  const sklearn = findSklearnPython();
  let forest: RulEvaluation | null = null;
  let forestSeconds = 0;
  if (sklearn.ok) {
    const started = performance.now();
    forest = await evaluate(async (x, rows) => {
      const test: RulDataset = { ...trainData, rows, features: x, target: new Float64Array(rows) };
      return sklearnForestPredictions(sklearn.python, trainData, test, forestTrees, options.seed);
    });
    forestSeconds = (performance.now() - started) / 1000;
  }
  return {
    mlp: trained.validation,
    ridge,
    forest,
    constant,
    trainSeconds: trained.trainSeconds,
    forestSeconds,
    heldOutUnits: trained.heldOutUnits,
  };
}

export function formatEvaluation(name: string, e: RulEvaluation): string {
  return (
    `${name.padEnd(22)} RMSE all rows ${e.rmseAllRows.toFixed(2).padStart(6)}   truncated ${e.truncated.rmse.toFixed(2).padStart(6)} ` +
    `(${e.truncated.points} cuts, PHM08 score ${e.truncated.meanScorePerDraw.toFixed(0)} per ${e.units} units)   last cycle ${e.rmseLastCycle.toFixed(2).padStart(6)}   ` +
    `residual mean ${e.residualMean.toFixed(2)} σ ${e.residualSigma.toFixed(2)}`
  );
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const flag = (name: string, fallback: number) => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : fallback;
  };
  const file =
    args.find((a, i) => !a.startsWith("--") && (i === 0 || !args[i - 1].startsWith("--"))) ??
    join("..", "shared", "data", "cmapss", "train_FD001.txt");
  const options: RulTrainOptions = {
    ...DEFAULT_RUL_TRAIN_OPTIONS,
    seed: flag("--seed", DEFAULT_RUL_TRAIN_OPTIONS.seed),
    epochs: flag("--epochs", DEFAULT_RUL_TRAIN_OPTIONS.epochs),
  };
  const c = await compareRulModels(readCmapss(file), options, file);
  process.stdout.write(`held-out units (seed ${options.seed}): ${c.heldOutUnits.join(" ")}\n`);
  process.stdout.write(`${formatEvaluation(`MLP (${options.epochs} epochs)`, c.mlp)}   [trained in ${c.trainSeconds.toFixed(1)} s]\n`);
  process.stdout.write(`${formatEvaluation("ridge (λ = 1)", c.ridge)}\n`);
  if (c.forest) process.stdout.write(`${formatEvaluation("sklearn random forest", c.forest)}   [${c.forestSeconds.toFixed(1)} s]\n`);
  else process.stdout.write("sklearn random forest: skipped (no python3 with scikit-learn)\n");
  process.stdout.write(`${formatEvaluation("constant (train mean)", c.constant)}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
