/**
 * The isolation-forest quality harness (`npm run eval:iforest`).
 *
 * Goals: on the three ODDS sets of Liu, Ting & Zhou (ICDM 2008) — breastw, pima, shuttle in
 * data/odds, last column `label`, 1 = outlier — train on all rows (unsupervised, as the
 * paper does) with t = 100, ψ = 256, score the same rows with the WASM kernel, and print the ROC
 * AUC (exact, ties averaged) of each seed and their mean beside the paper's Table 2 and, when
 * python3-sklearn is there, beside scikit-learn's IsolationForest with the same settings and
 * seeds. The scikit-learn forests are also imported and scored by linewatch: the largest
 * |linewatch − (−score_samples)| over all rows is printed, a check of the import on real data.
 *
 * Non-goals: timing (see bench/iforest-bench.ts), tuning: the settings are the paper's.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { pathToFileURL } from "node:url";
import { readFeatureMatrix, type LabelledMatrix } from "../operators/iforest/training/data.js";
import { scoreMatrix } from "../operators/iforest/mod.js";
import { importSklearnExport } from "../operators/iforest/training/sklearn.js";
import { trainIsolationForest } from "../operators/iforest/training/train.js";
import { referenceDataDir } from "../connectors/files/mod.js";
import { rocAuc } from "./roc-auc.js";
import { findSklearnPython, runSklearnExport } from "./sklearn-python.js";

/** Liu, Ting & Zhou (ICDM 2008), Table 2, iForest AUC with t = 100, ψ = 256. */
export const PAPER_AUC: Readonly<Record<string, number>> = { breastw: 0.99, pima: 0.67, shuttle: 1.0 };
export const EVAL_SETS = ["breastw", "pima", "shuttle"] as const;
export const DEFAULT_EVAL_SEEDS = [1, 2, 3, 4, 5] as const;

export interface IforestEvalOptions {
  sets?: readonly string[];
  seeds?: readonly number[];
  trees?: number;
  sampleSize?: number;
  /** Run scikit-learn beside (default: when it can be imported). */
  sklearn?: boolean;
  /** Directory of the ODDS CSVs (default: data/odds/). */
  dataDir?: string;
  progress?: ((line: string) => void) | null;
}

export interface SklearnSetResult {
  version: string;
  aucs: number[];
  mean: number;
  /** Largest |linewatch score of the imported forest − (−score_samples)| over every row and seed. */
  importMaxAbsDifference: number;
}

export interface EvalSetResult {
  name: string;
  rows: number;
  features: number;
  outliers: number;
  paper: number;
  aucs: number[];
  mean: number;
  sklearn: SklearnSetResult | null;
}

export interface IforestEvalReport {
  trees: number;
  sampleSize: number;
  seeds: number[];
  sets: EvalSetResult[];
  /** Why scikit-learn is missing from the report, if it is. */
  sklearnNote: string | null;
  seconds: number;
}

export async function runIforestEval(options: IforestEvalOptions = {}): Promise<IforestEvalReport> {
  const started = performance.now();
  const trees = options.trees ?? 100;
  const sampleSize = options.sampleSize ?? 256;
  const seeds = [...(options.seeds ?? DEFAULT_EVAL_SEEDS)];
  const dataDir = options.dataDir ?? join(referenceDataDir(), "odds");
  const say = options.progress ?? ((): void => {});
  const python = options.sklearn === false ? null : findSklearnPython();
  const sklearnNote = options.sklearn === false ? "not asked for" : python !== null && !python.ok ? python.reason : null;
  const tmp = mkdtempSync(join(tmpdir(), "linewatch-iforest-eval-"));
  const sets: EvalSetResult[] = [];
  try {
    for (const name of options.sets ?? EVAL_SETS) {
      const path = join(dataDir, `${name}.csv`);
      const data = await readFeatureMatrix(path, { exclude: ["label"], extra: "label" });
      const labels = data.extra as Float64Array;
      const aucs: number[] = [];
      for (const seed of seeds) {
        say(`${name}: linewatch seed ${seed}`);
        const model = trainIsolationForest(data, { trees, sampleSize, seed });
        aucs.push(rocAuc(await scoreMatrix(model, data.values, data.rows), labels));
      }
      const sklearn = python?.ok ? await sklearnSet(python.python, path, data, labels, seeds, trees, sampleSize, tmp, say) : null;
      sets.push({
        name,
        rows: data.rows,
        features: data.columns,
        outliers: labels.reduce((a, b) => a + b, 0),
        paper: PAPER_AUC[name] ?? NaN,
        aucs,
        mean: mean(aucs),
        sklearn,
      });
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return { trees, sampleSize, seeds, sets, sklearnNote, seconds: (performance.now() - started) / 1000 };
}

export function formatIforestEvalReport(r: IforestEvalReport): string {
  const lines: string[] = [];
  lines.push(`isolation forest ROC AUC — t = ${r.trees}, ψ = ${r.sampleSize}, trained and scored on all rows, seeds ${r.seeds.join(", ")}`);
  lines.push("");
  lines.push(
    `${"set".padEnd(9)} ${"rows".padStart(6)} ${"out".padStart(5)}  ${"paper".padStart(5)}  ${"linewatch".padStart(9)} ${"(min–max)".padStart(15)}  ` +
      `${"sklearn".padStart(7)} ${"(min–max)".padStart(15)}  ${"Δ vs paper".padStart(10)}  import max |Δscore|`,
  );
  for (const s of r.sets) {
    const sk = s.sklearn;
    lines.push(
      `${s.name.padEnd(9)} ${String(s.rows).padStart(6)} ${String(s.outliers).padStart(5)}  ${s.paper.toFixed(2).padStart(5)}  ` +
        `${s.mean.toFixed(4).padStart(9)} ${range(s.aucs).padStart(15)}  ` +
        `${sk ? sk.mean.toFixed(4).padStart(7) : "—".padStart(7)} ${sk ? range(sk.aucs).padStart(15) : "".padStart(15)}  ` +
        `${((s.mean - s.paper >= 0 ? "+" : "") + (s.mean - s.paper).toFixed(4)).padStart(10)}  ` +
        `${sk ? sk.importMaxAbsDifference.toExponential(2) : "—"}`,
    );
  }
  lines.push("");
  const sk = r.sets.find((s) => s.sklearn !== null)?.sklearn;
  lines.push(
    sk
      ? `sklearn: scikit-learn ${sk.version} IsolationForest(n_estimators=${r.trees}, max_samples=${r.sampleSize}, random_state=seed); ` +
          "its forests imported into linewatch score −score_samples to the difference shown"
      : `sklearn: not run (${r.sklearnNote ?? "unavailable"})`,
  );
  lines.push(
    `bar (tests): linewatch mean ≥ paper − 0.03 on each set: ${r.sets.every((s) => s.mean >= s.paper - 0.03) ? "met" : "NOT MET"}`,
  );
  lines.push(`total ${r.seconds.toFixed(1)} s`);
  return lines.join("\n");
}

// ---- internals ----

async function sklearnSet(
  python: Parameters<typeof runSklearnExport>[0],
  path: string,
  data: LabelledMatrix,
  labels: Float64Array,
  seeds: number[],
  trees: number,
  sampleSize: number,
  tmp: string,
  say: (line: string) => void,
): Promise<SklearnSetResult> {
  const aucs: number[] = [];
  let worst = 0;
  for (const seed of seeds) {
    say(`${basename(path, ".csv")}: sklearn seed ${seed}`);
    const out = join(tmp, `export-${seed}.json`);
    const exported = (await runSklearnExport(
      python,
      [
        "--csv",
        path,
        "--exclude",
        "label",
        "--trees",
        String(trees),
        "--max-samples",
        String(sampleSize),
        "--seed",
        String(seed),
        "--scores",
      ],
      out,
    )) as { score_samples: number[] };
    const sklearnScores = exported.score_samples.map((s) => -s);
    aucs.push(rocAuc(sklearnScores, labels));
    const imported = await scoreMatrix(importSklearnExport(exported, out), data.values, data.rows);
    for (let i = 0; i < data.rows; i++) worst = Math.max(worst, Math.abs(imported[i] - sklearnScores[i]));
  }
  return { version: python.sklearnVersion, aucs, mean: mean(aucs), importMaxAbsDifference: worst };
}

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function range(xs: readonly number[]): string {
  return `(${Math.min(...xs).toFixed(4)}–${Math.max(...xs).toFixed(4)})`;
}

async function main(): Promise<void> {
  const report = await runIforestEval({ progress: (line) => process.stderr.write(`eval: ${line}\n`) });
  process.stdout.write(`${formatIforestEvalReport(report)}\n`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().catch((error: unknown) => {
    process.stderr.write(`eval:iforest: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}
