/**
 * The isolation-forest scoring benchmark (`node dist/bench/iforest-bench.js [--smoke] [--rows n]
 * [--seed s] [--json]`).
 *
 * Goals: score the same rows (default 1 M rows × 8 features, seeded) with the same forest
 * (100 trees, ψ = 256) and print rows/s side by side from one run:
 *   - the WASM kernel on the main thread and on the piscina pool with 1 and 2 workers, the rows
 *     staged in shared memory once, so a timed run is kernel tasks only;
 *   - the plain TypeScript reference (kernels/reference/iforest-reference.ts);
 *   - scikit-learn's score_samples in a python3 subprocess with n_jobs 1 and 2, timed inside
 *     Python around score_samples alone (the rows already in memory);
 * then the ratios, the issue's target (≥ 10× scikit-learn per core) as met / not met, and a
 * checksum (Σ scores) per variant: all must agree to 1e-9 relative, else MISMATCH.
 *
 * The forest: when python3-sklearn is there, scikit-learn fits it (on the first 10,000 rows,
 * random_state = seed) and linewatch imports it, so every variant scores the very same trees
 * (float32 comparisons, as scikit-learn does). Without Python, linewatch trains it. A second WASM
 * line scores a forest trained by linewatch (f64 comparisons) for the cost of the f32 mode.
 *
 * Non-goals: asserting anything about time; measuring CSV parsing (see `iforest score`).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { createSharedMemory, KERNEL_MEMORY_PAGES_MAX, createKernelExecutor, ConfigError, SeededRandom } from "../engine/core/mod.js";
import { modelBytes, writeModel, type IsolationForestModel } from "../operators/iforest/mod.js";
import { importSklearnExport } from "../operators/iforest/training/sklearn.js";
import { trainIsolationForest, type FeatureMatrix } from "../operators/iforest/training/train.js";
import { referenceScores } from "../kernels/reference/mod.js";
import { align64, benchMachine, machineLine } from "./bench-kit.js";
import { findSklearnPython, runSklearnExport, type SklearnPython } from "./sklearn-python.js";

export interface IforestBenchOptions {
  rows?: number;
  seed?: number;
  /** Small sizes, one timed run: a check that the benchmark runs. */
  smoke?: boolean;
  /** Run scikit-learn (default: when it can be imported). */
  sklearn?: boolean;
  progress?: ((line: string) => void) | null;
}

export interface BenchVariant {
  label: string;
  /** Threads computing. */
  threads: number;
  rowsPerSecond: number;
  method: string;
  checksum: number;
}

export interface IforestBenchReport {
  machine: { cpus: number; node: string; loadAverageAtStart: number };
  seed: number;
  rows: number;
  features: number;
  trees: number;
  sampleSize: number;
  forest: string;
  variants: BenchVariant[];
  ratios: { label: string; value: number }[];
  target: { goal: string; measured: number; met: boolean } | null;
  checksumsAgree: boolean;
  mismatches: string[];
  sklearnNote: string | null;
  seconds: number;
}

export const DEFAULT_IFOREST_BENCH_ROWS = 1_000_000;
export const SMOKE_IFOREST_BENCH_ROWS = 20_000;
export const DEFAULT_IFOREST_BENCH_SEED = 20240611;
export const IFOREST_BENCH_FEATURES = 8;
export const TARGET_RATIO_VS_SKLEARN_PER_CORE = 10;
const TREES = 100;
const SAMPLE_SIZE = 256;
const FIT_ROWS = 10_000;
const TASK_ROWS = 16_384;
const CHECKSUM_TOLERANCE = 1e-9;

export async function runIforestBench(options: IforestBenchOptions = {}): Promise<IforestBenchReport> {
  const started = performance.now();
  const machine = benchMachine();
  const smoke = options.smoke === true;
  const rows = options.rows ?? (smoke ? SMOKE_IFOREST_BENCH_ROWS : DEFAULT_IFOREST_BENCH_ROWS);
  const seed = options.seed ?? DEFAULT_IFOREST_BENCH_SEED;
  if (!Number.isInteger(rows) || rows < 1 || rows > 1 << 24) throw new ConfigError("rows", `must be an integer in 1..2^24, got ${rows}`);
  const say = options.progress ?? ((): void => {});
  const runs = smoke ? 1 : 3;
  const F = IFOREST_BENCH_FEATURES;
  say(`data: ${rows} rows × ${F} features, seed ${seed}`);
  const values = generateRows(rows, seed);
  const fit = {
    values: values.subarray(0, Math.min(rows, FIT_ROWS) * F),
    rows: Math.min(rows, FIT_ROWS),
    columns: F,
    names: featureNames(),
  };
  const ownForest = trainIsolationForest(fit, { trees: TREES, sampleSize: SAMPLE_SIZE, seed });
  const python = options.sklearn === false ? null : findSklearnPython();
  let sklearnNote: string | null = options.sklearn === false ? "not asked for" : python !== null && !python.ok ? python.reason : null;
  const tmp = mkdtempSync(join(tmpdir(), "linewatch-iforest-bench-"));
  const variants: BenchVariant[] = [];
  let forest = ownForest;
  let forestLabel = `trained by linewatch on the first ${fit.rows} rows (compare f64)`;
  try {
    let sklearnRuns: SklearnTiming[] = [];
    if (python?.ok) {
      say(`sklearn ${python.python.sklearnVersion}: fit on ${fit.rows} rows, then score_samples on ${rows} rows with n_jobs 1 and 2`);
      const fitted = await sklearnForest(python.python, fit, values, seed, tmp);
      forest = fitted.forest;
      forestLabel = `fitted by scikit-learn ${python.python.sklearnVersion} on the first ${fit.rows} rows, imported (compare f32)`;
      sklearnRuns = fitted.runs;
    }
    for (const workers of [0, 1, 2]) {
      say(`wasm: ${workers} worker${workers === 1 ? "" : "s"}`);
      variants.push(
        await measureWasm(
          forest,
          values,
          rows,
          workers,
          runs,
          `WASM kernel, ${workers === 0 ? "main thread" : `pool, ${workers} worker${workers === 1 ? "" : "s"}`}`,
        ),
      );
    }
    if (forest !== ownForest) {
      variants.push(await measureWasm(ownForest, values, rows, 0, runs, "WASM kernel, main thread, linewatch-trained forest (f64)"));
    }
    say("typescript reference");
    variants.push(measureReference(forest, values, rows));
    for (const r of sklearnRuns) {
      variants.push({
        label: `scikit-learn score_samples, n_jobs=${r.n_jobs}`,
        threads: r.n_jobs,
        rowsPerSecond: rows / Math.min(...r.seconds),
        method: `${r.seconds.length} run${r.seconds.length === 1 ? "" : "s"}, best`,
        checksum: r.checksum,
      });
    }
    if (python?.ok && sklearnRuns.length === 0) sklearnNote = "the export script returned no timing";
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const { ratios, target, mismatches } = summarise(variants, forest === ownForest);
  return {
    machine,
    seed,
    rows,
    features: F,
    trees: TREES,
    sampleSize: SAMPLE_SIZE,
    forest: forestLabel,
    variants,
    ratios,
    target,
    checksumsAgree: mismatches.length === 0,
    mismatches,
    sklearnNote,
    seconds: (performance.now() - started) / 1000,
  };
}

export function formatIforestBenchReport(r: IforestBenchReport): string {
  const lines: string[] = [];
  lines.push(`linewatch isolation-forest scoring benchmark — ${r.trees} trees, ψ = ${r.sampleSize}`);
  lines.push(`data: ${r.rows} rows × ${r.features} features (3 Gaussian clusters + 1% uniform outliers), seed ${r.seed}`);
  lines.push(`forest: ${r.forest}`);
  lines.push(machineLine(r.machine));
  lines.push("");
  lines.push(`${"throughput".padEnd(62)} ${"M rows/s".padStart(9)}  threads  ${"method".padEnd(16)}  checksum (Σ scores)`);
  for (const v of r.variants) {
    lines.push(
      `  ${v.label.padEnd(60)} ${(v.rowsPerSecond / 1e6).toFixed(4).padStart(9)}  ${String(v.threads).padStart(7)}  ${v.method.padEnd(16)}  ${v.checksum.toPrecision(15)}`,
    );
  }
  lines.push("");
  lines.push(
    r.checksumsAgree
      ? `checksums: every variant scoring the benchmark forest agrees with the TypeScript reference (relative ≤ ${CHECKSUM_TOLERANCE})`
      : `******** MISMATCH ******** checksums differ by more than ${CHECKSUM_TOLERANCE} relative: ${r.mismatches.join("; ")}`,
  );
  lines.push("");
  lines.push("ratios");
  for (const q of r.ratios) lines.push(`  ${q.label.padEnd(60)} ${q.value.toFixed(2).padStart(8)}×`);
  lines.push("");
  const scaling = r.ratios.find((q) => q.label === "scikit-learn n_jobs=2 / n_jobs=1");
  if (scaling !== undefined && scaling.value < 1.2) {
    lines.push(
      "note: scikit-learn's score_samples did not scale with n_jobs — in 1.2 (sklearn/ensemble/_iforest.py) it walks the " +
        "trees in one thread and n_jobs only parallelises fit",
    );
  }
  lines.push(
    r.target === null
      ? `target (informational): ≥ ${TARGET_RATIO_VS_SKLEARN_PER_CORE}× scikit-learn per core — not measured (${r.sklearnNote ?? "no sklearn"})`
      : `target (informational): ${r.target.goal}: measured ${r.target.measured.toFixed(1)}× — ${r.target.met ? "met" : "NOT MET"}`,
  );
  lines.push(`total ${r.seconds.toFixed(1)} s; checksum ${r.checksumsAgree ? "ok" : "MISMATCH"}`);
  return lines.join("\n");
}

// ---- internals ----

/** Checksum agreement (the linewatch-trained forest is other trees: not compared), ratios, target. */
function summarise(variants: BenchVariant[], sameForest: boolean): Pick<IforestBenchReport, "ratios" | "target" | "mismatches"> {
  // The linewatch-trained forest scores other trees: its checksum is not compared.
  const compared = variants.filter((v) => !v.label.includes("linewatch-trained") || sameForest);
  const reference = variants.find((v) => v.label.startsWith("TypeScript")) as BenchVariant;
  const mismatches = compared
    .filter((v) => !(Math.abs(v.checksum - reference.checksum) <= CHECKSUM_TOLERANCE * Math.abs(reference.checksum)))
    .map((v) => v.label);
  const by = (prefix: string): BenchVariant | undefined => variants.find((v) => v.label.startsWith(prefix));
  const w0 = by("WASM kernel, main thread") as BenchVariant;
  const w1 = by("WASM kernel, pool, 1 worker") as BenchVariant;
  const w2 = by("WASM kernel, pool, 2 workers") as BenchVariant;
  const s1 = by("scikit-learn score_samples, n_jobs=1");
  const s2 = by("scikit-learn score_samples, n_jobs=2");
  const ratios = [
    { label: "WASM main thread / TypeScript reference", value: w0.rowsPerSecond / reference.rowsPerSecond },
    { label: "WASM pool 2 workers / 1 worker", value: w2.rowsPerSecond / w1.rowsPerSecond },
  ];
  let target: IforestBenchReport["target"] = null;
  if (s1 !== undefined && s2 !== undefined) {
    ratios.push({ label: "WASM pool 1 worker / scikit-learn n_jobs=1 (per core)", value: w1.rowsPerSecond / s1.rowsPerSecond });
    ratios.push({ label: "WASM pool 2 workers / scikit-learn n_jobs=2", value: w2.rowsPerSecond / s2.rowsPerSecond });
    ratios.push({ label: "WASM main thread / scikit-learn n_jobs=1 (per core)", value: w0.rowsPerSecond / s1.rowsPerSecond });
    ratios.push({ label: "scikit-learn n_jobs=2 / n_jobs=1", value: s2.rowsPerSecond / s1.rowsPerSecond });
    const perCore = w1.rowsPerSecond / s1.rowsPerSecond;
    target = {
      goal: `≥ ${TARGET_RATIO_VS_SKLEARN_PER_CORE}× scikit-learn per core`,
      measured: perCore,
      met: perCore >= TARGET_RATIO_VS_SKLEARN_PER_CORE,
    };
  }
  return { ratios, target, mismatches };
}

interface SklearnTiming {
  n_jobs: number;
  seconds: number[];
  checksum: number;
}

/**
 * scikit-learn fits the forest on the fit rows (written as CSV) and times score_samples on all
 * rows (written raw); the forest comes back imported.
 */
async function sklearnForest(
  python: SklearnPython,
  fit: FeatureMatrix,
  values: Float64Array,
  seed: number,
  tmp: string,
): Promise<{ forest: IsolationForestModel; runs: SklearnTiming[] }> {
  const F = fit.columns;
  const csv = join(tmp, "fit.csv");
  const lines = Array.from({ length: fit.rows }, (_, i) => Array.from(fit.values.subarray(i * F, (i + 1) * F)).join(","));
  writeFileSync(csv, `${[fit.names.join(","), ...lines].join("\n")}\n`);
  const raw = join(tmp, "rows.f64");
  writeFileSync(raw, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  const exported = (await runSklearnExport(
    python,
    [
      "--csv",
      csv,
      "--trees",
      String(TREES),
      "--max-samples",
      String(SAMPLE_SIZE),
      "--seed",
      String(seed),
      "--time-rows",
      raw,
      "--time-columns",
      String(F),
      "--time-n-jobs",
      "1,2",
      "--time-repeats",
      "1",
    ],
    join(tmp, "export.json"),
  )) as { timing?: { runs: SklearnTiming[] } };
  return { forest: importSklearnExport(exported, "sklearn export"), runs: exported.timing?.runs ?? [] };
}

function featureNames(): string[] {
  return Array.from({ length: IFOREST_BENCH_FEATURES }, (_, k) => `f${k}`);
}

/** Three Gaussian clusters with their own centres and scales, and 1% of rows uniform over a wide box. */
function generateRows(rows: number, seed: number): Float64Array {
  const rng = new SeededRandom(seed);
  const F = IFOREST_BENCH_FEATURES;
  const centres = Array.from({ length: 3 }, () => Array.from({ length: F }, () => rng.uniform(-10, 10)));
  const scales = Array.from({ length: 3 }, () => Array.from({ length: F }, () => rng.uniform(0.5, 2)));
  const values = new Float64Array(rows * F);
  for (let i = 0; i < rows; i++) {
    const outlier = rng.next() < 0.01;
    const c = rng.int(0, 2);
    for (let k = 0; k < F; k++) values[i * F + k] = outlier ? rng.uniform(-25, 25) : centres[c][k] + scales[c][k] * rng.normal();
  }
  return values;
}

/**
 * Memory: [64 KiB][model block][featureIdx: F × i32][rows: all, f64][out: all, f64]; each task
 * scores TASK_ROWS rows in place. At most 2 × workers tasks are outstanding.
 */
async function measureWasm(
  model: IsolationForestModel,
  values: Float64Array,
  rows: number,
  workers: number,
  runs: number,
  label: string,
): Promise<BenchVariant> {
  const F = IFOREST_BENCH_FEATURES;
  const modelPtr = 65_536;
  const idxPtr = align64(modelPtr + modelBytes(model));
  const rowsPtr = align64(idxPtr + F * 4);
  const outPtr = align64(rowsPtr + rows * F * 8);
  const pages = Math.ceil(align64(outPtr + rows * 8) / 65_536);
  if (pages > KERNEL_MEMORY_PAGES_MAX) throw new ConfigError("rows", `${rows} rows need ${pages} pages of kernel memory`);
  const memory = createSharedMemory(pages);
  writeModel(memory.buffer, modelPtr, model);
  new Int32Array(memory.buffer, idxPtr, F).set(Array.from({ length: F }, (_, k) => k));
  new Float64Array(memory.buffer, rowsPtr, rows * F).set(values);
  const inFlightMax = Math.max(1, 2 * workers);
  const executor = createKernelExecutor(memory, workers, inFlightMax);
  const once = async (): Promise<number> => {
    const t0 = performance.now();
    const pending: Promise<number>[] = [];
    for (let first = 0; first < rows; first += TASK_ROWS) {
      if (pending.length === inFlightMax) await pending.shift();
      const m = Math.min(TASK_ROWS, rows - first);
      pending.push(executor.run({ fn: "iforestScore", args: [modelPtr, rowsPtr + first * F * 8, F, idxPtr, m, outPtr + first * 8, 1] }, 0));
    }
    const done = await Promise.all(pending);
    if (done.some((d) => d < 0)) throw new Error(`iforestScore failed: ${done.join(", ")}`);
    return performance.now() - t0;
  };
  try {
    await once(); // warm-up: compiles, starts threads, touches the pages
    const times: number[] = [];
    for (let r = 0; r < runs; r++) times.push(await once());
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)];
    let checksum = 0;
    const out = new Float64Array(memory.buffer, outPtr, rows);
    for (let i = 0; i < rows; i++) checksum += out[i];
    return {
      label,
      threads: Math.max(1, workers),
      rowsPerSecond: (rows / median) * 1000,
      method: `median of ${runs}`,
      checksum,
    };
  } finally {
    await executor.close();
  }
}

function measureReference(model: IsolationForestModel, values: Float64Array, rows: number): BenchVariant {
  const F = IFOREST_BENCH_FEATURES;
  const t0 = performance.now();
  const scores = referenceScores(
    model,
    values,
    rows,
    F,
    Array.from({ length: F }, (_, k) => k),
  );
  const ms = performance.now() - t0;
  let checksum = 0;
  for (let i = 0; i < rows; i++) checksum += scores[i];
  return { label: "TypeScript reference (test/reference)", threads: 1, rowsPerSecond: (rows / ms) * 1000, method: "1 run", checksum };
}

function parseArgs(argv: string[]): IforestBenchOptions & { json: boolean } {
  const o: IforestBenchOptions & { json: boolean } = { json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--smoke") o.smoke = true;
    else if (a === "--json") o.json = true;
    else if (a === "--no-sklearn") o.sklearn = false;
    else if (a === "--rows" || a === "--seed") {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < 0) throw new ConfigError(a, `must be a non-negative integer, got "${argv[i]}"`);
      if (a === "--rows") o.rows = n;
      else o.seed = n;
    } else throw new ConfigError(a, "unknown flag (flags: --smoke, --rows n, --seed s, --no-sklearn, --json)");
  }
  return o;
}

async function main(): Promise<void> {
  const flags = parseArgs(process.argv.slice(2));
  const report = await runIforestBench({ ...flags, progress: (line) => process.stderr.write(`bench: ${line}\n`) });
  process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatIforestBenchReport(report)}\n`);
  if (!report.checksumsAgree) process.exitCode = 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().catch((error: unknown) => {
    process.stderr.write(`iforest-bench: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}
