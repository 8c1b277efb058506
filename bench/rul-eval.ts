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
  splitByUnits,
  splitUnits,
  trainRulModel,
  unitFolds,
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

/**
 * The model `predict train` wrote before the fold comparison was added (MLP 28-32-16-1 on the
 * rolling mean and slope over 30 cycles, 60 epochs): the baseline of {@link compareRulFolds}.
 */
export const PREVIOUS_RUL_TRAIN_OPTIONS: Readonly<RulTrainOptions> = Object.freeze<RulTrainOptions>({
  ...DEFAULT_RUL_TRAIN_OPTIONS,
  window: 30,
  statistics: ["mean", "slope"],
  hidden: [32, 16],
  epochs: 60,
  batchSize: 64,
  learningRate: 1e-3,
  cosineDecay: false,
  ensemble: 1,
});

/** Held-out figures of one model on one fold: the test-set-like protocol's RMSE and PHM08 score, and the RMSE over all rows. */
export interface FoldFigures {
  rmse: number;
  phm08: number;
  rmseAllRows: number;
}

export interface RulFold {
  heldOutUnits: number[];
  previous: FoldFigures;
  current: FoldFigures;
  /** scikit-learn's forest on the current model's features, and on the previous model's; null without scikit-learn. */
  forest: FoldFigures | null;
  forestPrevious: FoldFigures | null;
  /** Training of the current model: wall and main-thread CPU seconds. */
  trainSeconds: number;
  trainCpuSeconds: number;
}

export interface RulFoldComparison {
  folds: RulFold[];
  seed: number;
  forestTrees: number;
  current: RulTrainOptions;
  previous: RulTrainOptions;
}

function figures(e: RulEvaluation): FoldFigures {
  return { rmse: e.truncated.rmse, phm08: e.truncated.meanScorePerDraw, rmseAllRows: e.rmseAllRows };
}

/**
 * k-fold comparison on units held out of the training file ({@link unitFolds}: every unit held out
 * once): per fold the previous model, the current `predict train` defaults and scikit-learn's
 * random forest on each model's features, all measured on the same held-out units and the same
 * random cuts (the cuts depend on the seed and the units only, not on the model).
 */
export async function compareRulFolds(
  units: CmapssUnit[],
  file: string,
  o: { folds: number; seed: number; forestTrees: number; current?: RulTrainOptions; progress?: (line: string) => void },
): Promise<RulFoldComparison> {
  const current = { ...(o.current ?? DEFAULT_RUL_TRAIN_OPTIONS), seed: o.seed };
  const previous = { ...PREVIOUS_RUL_TRAIN_OPTIONS, seed: o.seed };
  const sklearn = findSklearnPython();
  const folds: RulFold[] = [];
  for (const [k, heldOutUnits] of unitFolds(units, o.folds, o.seed).entries()) {
    const old = trainRulModel(units, { ...previous, heldOutUnits }, file);
    const cpu = process.cpuUsage();
    const now = trainRulModel(units, { ...current, heldOutUnits }, file);
    const used = process.cpuUsage(cpu);
    const fold: RulFold = {
      heldOutUnits,
      previous: figures(old.validation),
      current: figures(now.validation),
      forest: null,
      forestPrevious: null,
      trainSeconds: now.trainSeconds,
      trainCpuSeconds: (used.user + used.system) / 1e6,
    };
    if (sklearn.ok) {
      fold.forest = figures(await forestOnFold(sklearn.python, units, heldOutUnits, now.spec.featureNames, current, o.forestTrees));
      fold.forestPrevious = figures(
        await forestOnFold(sklearn.python, units, heldOutUnits, old.spec.featureNames, previous, o.forestTrees),
      );
    }
    o.progress?.(
      `fold ${k + 1}/${o.folds}: previous ${fold.previous.rmse.toFixed(2)}, current ${fold.current.rmse.toFixed(2)}, forest ${fold.forest?.rmse.toFixed(2) ?? "-"}`,
    );
    folds.push(fold);
  }
  return { folds, seed: o.seed, forestTrees: o.forestTrees, current, previous };
}

/** scikit-learn's forest trained on the fold's training units with these features, evaluated like the MLPs. */
async function forestOnFold(
  python: SklearnPython,
  units: CmapssUnit[],
  heldOutUnits: readonly number[],
  names: readonly string[],
  options: RulTrainOptions,
  trees: number,
): Promise<RulEvaluation> {
  const { train, heldOut } = splitByUnits(units, heldOutUnits);
  const trainData = buildRulDataset(train, names, options.window, options.rulCap);
  return evaluateRul(
    (x, rows) =>
      sklearnForestPredictions(python, trainData, { ...trainData, rows, features: x, target: new Float64Array(rows) }, trees, options.seed),
    heldOut,
    names,
    options.window,
    options.rulCap,
    options.seed,
    options.truncationsPerUnit,
  );
}

/** Mean and sample standard deviation. */
export function meanAndSpread(xs: readonly number[]): { mean: number; sd: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, xs.length - 1));
  return { mean, sd };
}

function describeOptions(o: RulTrainOptions): string {
  const members = o.ensemble > 1 ? `mean of ${o.ensemble} MLPs` : "MLP";
  return `${members} ${o.hidden.join("-")}, ${o.statistics.join("/")} over ${o.window} cycles, ${o.epochs} epochs`;
}

/** The comparison as a table: RMSE (PHM08 score per draw) per fold and model, then mean ± standard deviation over the folds. */
export function formatFoldTable(c: RulFoldComparison): string {
  const cell = (f: FoldFigures | null) => (f === null ? "-" : `${f.rmse.toFixed(2)} (${f.phm08.toFixed(0)})`).padStart(16);
  const summary = (pick: (fold: RulFold) => FoldFigures | null) => {
    const fs = c.folds.map(pick);
    if (fs.some((f) => f === null)) return "-".padStart(16);
    const r = meanAndSpread(fs.map((f) => (f as FoldFigures).rmse));
    const p = meanAndSpread(fs.map((f) => (f as FoldFigures).phm08));
    return `${r.mean.toFixed(2)}±${r.sd.toFixed(2)} (${p.mean.toFixed(0)}±${p.sd.toFixed(0)})`.padStart(16);
  };
  const columns: Array<[string, (fold: RulFold) => FoldFigures | null]> = [
    ["previous MLP", (f) => f.previous],
    ["current model", (f) => f.current],
    ["forest, current", (f) => f.forest],
    ["forest, previous", (f) => f.forestPrevious],
  ];
  const lines = [
    `RUL on held-out units, ${c.folds.length} folds of the training file (every unit held out once; seed ${c.seed}): ` +
      "RMSE in cycles under random cuts (10 per unit from cycle 30, true RUL capped at 125), (PHM08 score per draw of one cut per unit)",
    `  previous MLP:  ${describeOptions(c.previous)}`,
    `  current model: ${describeOptions(c.current)}`,
    `  forest: scikit-learn RandomForestRegressor, ${c.forestTrees} trees, leaf ≥ 5, max_features 0.5, on each model's features`,
    `${"fold".padEnd(6)}${columns.map(([name]) => name.padStart(20)).join("")}${"train s (CPU s)".padStart(18)}`,
    ...c.folds.map(
      (fold, k) =>
        `${String(k + 1).padEnd(6)}${columns.map(([, pick]) => cell(pick(fold)).padStart(20)).join("")}` +
        `${`${fold.trainSeconds.toFixed(1)} (${fold.trainCpuSeconds.toFixed(1)})`.padStart(18)}`,
    ),
    `${"mean".padEnd(6)}${columns.map(([, pick]) => summary(pick).padStart(20)).join("")}`,
  ];
  const ratio = meanAndSpread(c.folds.map((f) => f.current.rmse)).mean / meanAndSpread(c.folds.map((f) => f.previous.rmse)).mean;
  lines.push(`current / previous mean RMSE: ${ratio.toFixed(3)} (${((1 - ratio) * 100).toFixed(1)} % lower)`);
  return lines.join("\n");
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
