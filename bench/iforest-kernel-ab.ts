/**
 * The isolation-forest kernel (kernels/iforest.ts iforestScore) of two kernel builds side by side
 * (`node dist/bench/iforest-kernel-ab.js <before.wasm> [after.wasm] [--rounds n]`; after: this
 * build's build/kernels.wasm): thread CPU ns per row, each build over its own memory and the same
 * rows, alternately (before, after, after, before, …) so a noisy machine weighs on both alike; the
 * median of each and their ratio. Before timing, both builds score every row and their scores are
 * compared bit for bit (a difference exits with 1).
 *
 * The shape is an ingest worker's in `bench e2e`: a forest of 100 trees, ψ = 256, trained by
 * linewatch on (value, mean, std, z) (f64 comparisons); each call scores one drain's rows in the
 * analysis's own output rows (the features gathered into the row, then the score: row stride 6,
 * featureIdx the identity), calls of 8–300 rows at random (drains at the sustained maximum hold
 * 100–250).
 */
import { readFileSync } from "node:fs";
import { createSharedMemory, instantiateKernels, type KernelExports, SeededRandom } from "../engine/core/mod.js";
import { modelBytes, writeModel } from "../operators/iforest/mod.js";
import { trainIsolationForest } from "../operators/iforest/training/train.js";
import { median, threadCpuMicros } from "./bench-kit.js";
import { PAGE_BYTES as PAGE } from "./kit/kernel-harness.js";

const FEATURES = 4;
const ROW_FIELDS = 6;
const ROWS = 200_000;

interface Build {
  name: string;
  kernels: KernelExports;
  memory: WebAssembly.Memory;
  modelPtr: number;
  idxPtr: number;
  rowsPtr: number;
}

function align64(n: number): number {
  return Math.ceil(n / 64) * 64;
}

function build(name: string, wasm: string, features: Float64Array, model: ReturnType<typeof trainIsolationForest>): Build {
  // Above the module's own data (its static segments are written at instantiation).
  const modelPtr = 65_536;
  const idxPtr = align64(modelPtr + modelBytes(model));
  const rowsPtr = align64(idxPtr + 4 * FEATURES);
  const pages = Math.ceil((rowsPtr + ROWS * ROW_FIELDS * 8) / PAGE) + 1;
  const memory = createSharedMemory(pages);
  writeModel(memory.buffer, modelPtr, model);
  new Int32Array(memory.buffer, idxPtr, FEATURES).set([0, 1, 2, 3]);
  const rows = new Float64Array(memory.buffer, rowsPtr, ROWS * ROW_FIELDS);
  for (let i = 0; i < ROWS; i++) for (let k = 0; k < FEATURES; k++) rows[i * ROW_FIELDS + k] = features[i * FEATURES + k];
  const kernels = instantiateKernels(memory, new WebAssembly.Module(readFileSync(wasm)));
  return { name, kernels, memory, modelPtr, idxPtr, rowsPtr };
}

/** Scores every row in calls of the given sizes; the scores land in field 4 of each row. */
function scoreAll(b: Build, calls: readonly number[]): void {
  let first = 0;
  for (const m of calls) {
    const at = b.rowsPtr + first * ROW_FIELDS * 8;
    const done = b.kernels.iforestScore(b.modelPtr, at, ROW_FIELDS, b.idxPtr, m, at + FEATURES * 8, ROW_FIELDS);
    if (done !== m) throw new Error(`${b.name}: iforestScore returned ${done} for ${m} rows`);
    first += m;
  }
}

function scores(b: Build): Float64Array {
  const rows = new Float64Array(b.memory.buffer, b.rowsPtr, ROWS * ROW_FIELDS);
  return Float64Array.from({ length: ROWS }, (_, i) => rows[i * ROW_FIELDS + FEATURES]);
}

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

function main(): void {
  const args = process.argv.slice(2);
  const roundsAt = args.indexOf("--rounds");
  const rounds = roundsAt >= 0 ? Number(args[roundsAt + 1]) : 9;
  const files = args.filter((a, i) => !a.startsWith("--") && (roundsAt < 0 || i !== roundsAt + 1));
  if (files.length < 1) throw new Error("usage: iforest-kernel-ab.js <before.wasm> [after.wasm] [--rounds n]");
  const random = new SeededRandom(20260107);
  // (value, mean, std, z) of noisy sensor readings, with outliers now and then.
  const features = new Float64Array(ROWS * FEATURES);
  for (let i = 0; i < ROWS; i++) {
    const mean = 20 + 5 * Math.sin(i / 5000);
    const std = 0.5 + 0.2 * random.next();
    const value = mean + std * (random.next() + random.next() + random.next() - 1.5) * (random.next() < 0.01 ? 8 : 1);
    features.set([value, mean, std, (value - mean) / std], i * FEATURES);
  }
  const model = trainIsolationForest(
    { values: features.subarray(0, 20_000 * FEATURES), rows: 20_000, columns: FEATURES, names: ["value", "mean", "std", "z"] },
    { trees: 100, sampleSize: 256, seed: 20260108 },
  );
  const calls: number[] = [];
  for (let left = ROWS; left > 0; ) {
    const m = Math.min(left, 8 + Math.floor(random.next() * 293));
    calls.push(m);
    left -= m;
  }
  const before = build("before", files[0], features, model);
  const after = build("after", files[1] ?? "build/kernels.wasm", features, model);
  scoreAll(before, calls);
  scoreAll(after, calls);
  const a = scores(before);
  const b = scores(after);
  const bits = (x: Float64Array) => new BigUint64Array(x.buffer);
  const differ = bits(a).findIndex((v, i) => v !== bits(b)[i]);
  if (differ >= 0) {
    out(`row ${differ}: before ${a[differ]}, after ${b[differ]} — the scores differ`);
    process.exit(1);
  }
  const ns: Record<string, number[]> = { before: [], after: [] };
  for (let r = 0; r < rounds; r++) {
    for (const x of r % 2 === 0 ? [before, after] : [after, before]) {
      const t0 = threadCpuMicros();
      scoreAll(x, calls);
      ns[x.name].push(((threadCpuMicros() - t0) * 1000) / ROWS);
    }
  }
  const mb = median(ns.before);
  const ma = median(ns.after);
  out(`iforestScore, 100 trees, ψ 256, ${ROWS} rows in calls of 8–300, ${rounds} rounds (thread CPU, median)`);
  out(`  before (${files[0]}): ${mb.toFixed(1)} ns/row`);
  out(`  after  (${files[1] ?? "build/kernels.wasm"}): ${ma.toFixed(1)} ns/row`);
  out(`  after / before: ${(ma / mb).toFixed(3)}; the same scores, bit for bit`);
}

main();
