/**
 * The isolation-forest kernel (build/kernels.wasm, kernels/iforest.ts) against the plain
 * TypeScript reference (kernels/reference/iforest-reference.ts) and against the definitions.
 * Build the kernel first: `npm run build:kernels`.
 *
 * Tolerance: both sides reach the same leaves (the comparisons are exact and the same) and sum
 * the same per-tree terms depth + c(size) in tree order, so Σh is the same double; the last step
 * 2^(−Σh/t / c(ψ)) uses AssemblyScript's pow in the kernel and V8's Math.pow in the reference,
 * which may differ in the last bits. Scores must agree to 1e-14 relative; a different leaf moves
 * a score by at least ~1e-4 at these sizes, so the tolerance cannot hide a wrong walk.
 */
import { describe, expect, it } from "vitest";
import { SeededRandom } from "../engine/core/mod.js";
import { kernelScores, randomForest } from "../bench/kit/iforest-harness.js";
import { referenceC, referenceScores } from "../kernels/reference/iforest-reference.js";
import { averagePathLength, buildModel, type IsolationForestModel } from "../operators/iforest/model.js";
import { trainIsolationForest, type FeatureMatrix } from "../operators/iforest/training/train.js";
import { IforestScorer } from "../operators/iforest/scorer.js";
import { IFOREST_ERR_ARGS, IFOREST_ERR_MODEL } from "../operators/iforest/layout.js";
import { createSharedMemory, instantiateKernels } from "../engine/core/kernel-module.js";
import { BatchRejectedError } from "../engine/core/errors.js";

const TOLERANCE = 1e-14;

function expectAgree(kernel: Float64Array, reference: Float64Array): void {
  expect(kernel.length).toBe(reference.length);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < kernel.length; i++) {
    const d = Math.abs(kernel[i] - reference[i]) / Math.abs(reference[i]);
    if (!(d <= worst)) {
      worst = d;
      at = i;
    }
  }
  expect(worst, `row ${at}: kernel ${kernel[at]}, reference ${reference[at]}`).toBeLessThanOrEqual(TOLERANCE);
}

function randomMatrix(rng: SeededRandom, rows: number, columns: number, gen: (rng: SeededRandom, k: number) => number): FeatureMatrix {
  const values = new Float64Array(rows * columns);
  for (let i = 0; i < rows; i++) for (let k = 0; k < columns; k++) values[i * columns + k] = gen(rng, k);
  return { values, rows, columns, names: Array.from({ length: columns }, (_, k) => `x${k}`) };
}

function identity(n: number): number[] {
  return Array.from({ length: n }, (_, k) => k);
}

function compare(model: IsolationForestModel, values: Float64Array, rows: number, stride: number, columns: number[], outStride = 1): void {
  const { scores, result } = kernelScores(model, { values, rows, stride, columns, outStride });
  expect(result).toBe(rows);
  expectAgree(scores, referenceScores(model, values, rows, stride, columns));
}

describe("iforest - c(n)", () => {
  const kernels = instantiateKernels(createSharedMemory(1));
  const definition = (n: number): number => 2 * (Math.log(n - 1) + 0.5772156649015329) - (2 * (n - 1)) / n;

  it("c(0) = c(1) = 0, c(2) = 1, c(256) ≈ 10.2448, and the definition for 3..5000 in the kernel, the model module and the reference", () => {
    for (const c of [kernels.iforestAveragePathLength, averagePathLength, referenceC]) {
      expect(c(0)).toBe(0);
      expect(c(1)).toBe(0);
      expect(c(2)).toBe(1);
      expect(c(256)).toBeCloseTo(10.2448, 4);
      for (let n = 3; n <= 5000; n++) expect(Math.abs(c(n) - definition(n))).toBeLessThanOrEqual(1e-14 * definition(n));
    }
  });

  it("c(n) tracks the exact mean unsuccessful-search path 2H(n−1) − 2(n−1)/n with H the harmonic number (error < 1/n)", () => {
    let harmonic = 0;
    for (let n = 2; n <= 2000; n++) {
      harmonic += 1 / (n - 1);
      const exact = 2 * harmonic - (2 * (n - 1)) / n;
      expect(Math.abs(averagePathLength(n) - exact)).toBeLessThan(1 / (n - 1));
    }
  });
});

describe("iforest - kernel equals the TypeScript reference", () => {
  it("trained forests on random data, ψ = 256, 100 trees", () => {
    const rng = new SeededRandom(11);
    for (const columns of [1, 3, 8]) {
      const data = randomMatrix(rng, 2000, columns, (r, k) => (k % 2 === 0 ? r.normal() * (k + 1) : r.uniform(-5, 5)));
      const model = trainIsolationForest(data, { trees: 100, sampleSize: 256, seed: columns });
      compare(model, data.values, data.rows, columns, identity(columns));
    }
  });

  it("random forests: leaves at every depth, single-leaf trees, f64 and f32 comparison, ties on thresholds", () => {
    const rng = new SeededRandom(12);
    const grid = [-1, -0.5, 0, 0.25, 1 / 3, 0.5, 1.1, 2];
    for (const compareMode of ["f64", "f32"] as const) {
      for (let trial = 0; trial < 20; trial++) {
        const features = rng.int(1, 6);
        const model = randomForest(rng, {
          trees: rng.int(1, 30),
          features,
          depthMax: rng.int(0, 14),
          leafProbability: rng.next() * 0.4,
          compare: compareMode,
          thresholds: trial % 2 === 0 ? grid : undefined,
        });
        // Half the values sit exactly on a threshold, the rest anywhere.
        const data = randomMatrix(rng, 517, features, (r) => (r.next() < 0.5 ? grid[r.int(0, grid.length - 1)] : r.uniform(-3, 3)));
        compare(model, data.values, data.rows, features, identity(features));
      }
    }
  });

  it("features picked from wider rows through featureIdx (any order, repeated columns), strided output", () => {
    const rng = new SeededRandom(13);
    for (let trial = 0; trial < 10; trial++) {
      const features = rng.int(1, 5);
      const stride = features + rng.int(0, 7);
      const model = randomForest(rng, { trees: 25, features, depthMax: 10, leafProbability: 0.15, compare: trial % 2 ? "f32" : "f64" });
      const columns = Array.from({ length: features }, () => rng.int(0, stride - 1));
      const data = randomMatrix(rng, 300, stride, (r) => r.uniform(-3, 3));
      compare(model, data.values, data.rows, stride, columns, rng.int(1, 4));
    }
  });

  it("leaves at the height limit: 2^h distinct rows with ψ = 2^h fill trees to depth h", () => {
    const rng = new SeededRandom(14);
    const data = randomMatrix(rng, 4096, 2, (r) => r.uniform(0, 1));
    const model = trainIsolationForest(data, { trees: 50, sampleSize: 64, seed: 3 });
    // Height limit ceil(log2 64) = 6: leaves there hold several rows and add c(size).
    const depthOf = (t: number): number[] => {
      const base = model.treeOffsets[t];
      const depths: number[] = [];
      const walk = (j: number, d: number): void => {
        if (model.feature[base + j] === -1) depths.push(d);
        else {
          walk(model.left[base + j], d + 1);
          walk(model.right[base + j], d + 1);
        }
      };
      walk(0, 0);
      return depths;
    };
    const all = Array.from({ length: 50 }, (_, t) => depthOf(t)).flat();
    expect(Math.max(...all)).toBe(6);
    let fullLeaves = 0;
    for (let t = 0; t < 50; t++) {
      for (let i = model.treeOffsets[t]; i < model.treeOffsets[t + 1]; i++)
        if (model.feature[i] === -1 && model.leafSize[i] > 1) fullLeaves++;
    }
    expect(fullLeaves).toBeGreaterThan(0);
    compare(model, data.values, 1000, 2, [0, 1]);
  });

  it("constant features are never split on; all-constant data makes single-leaf trees scoring exactly 0.5", () => {
    const rng = new SeededRandom(15);
    const data = randomMatrix(rng, 500, 3, (r, k) => (k === 1 ? 7 : r.normal()));
    const model = trainIsolationForest(data, { trees: 40, sampleSize: 128, seed: 5 });
    expect(Array.from(model.feature).filter((f) => f === 1)).toEqual([]);
    compare(model, data.values, data.rows, 3, [0, 1, 2]);

    const flat = randomMatrix(rng, 300, 2, () => 4.5);
    const flatModel = trainIsolationForest(flat, { trees: 10, sampleSize: 256, seed: 5 });
    expect(flatModel.feature.length).toBe(10);
    const { scores } = kernelScores(flatModel, { values: flat.values, rows: 5, stride: 2, columns: [0, 1] });
    // One leaf of ψ rows: h = c(ψ), s = 2^(−1).
    for (const s of scores) expect(s).toBeCloseTo(0.5, 15);
  });

  it("ψ > rows: the model's max_samples is the row count and every tree holds every row; ψ = 1 scores 1", () => {
    const rng = new SeededRandom(16);
    const data = randomMatrix(rng, 37, 4, (r) => r.normal());
    const model = trainIsolationForest(data, { trees: 30, sampleSize: 256, seed: 9 });
    expect(model.maxSamples).toBe(37);
    for (let t = 0; t < 30; t++) expect(model.leafSize[model.treeOffsets[t]]).toBe(37);
    compare(model, data.values, data.rows, 4, identity(4));

    const one = trainIsolationForest({ ...data, rows: 1 }, { trees: 3, sampleSize: 256, seed: 1 });
    expect(one.maxSamples).toBe(1);
    const { scores } = kernelScores(one, { values: data.values, rows: 10, stride: 4, columns: identity(4) });
    expect(Array.from(scores)).toEqual(new Array(10).fill(1));
    expect(Array.from(referenceScores(one, data.values, 10, 4, identity(4)))).toEqual(new Array(10).fill(1));
  });

  it("f32 comparison: a value above the threshold in f64 that rounds onto it in f32 goes left, as in scikit-learn", () => {
    const thr = Math.fround(0.1); // a float32 value, as double
    const above = thr + 1e-12; // > thr in f64; fround(above) === thr
    expect(Math.fround(above)).toBe(thr);
    // One split at thr; the left leaf holds 1 row, the right 5, so the two leaves score differently.
    const make = (compareMode: "f64" | "f32"): IsolationForestModel =>
      buildModel({
        maxSamples: 6,
        nFeatures: 1,
        featureNames: ["x"],
        compare: compareMode,
        treeOffsets: Int32Array.of(0, 3),
        feature: Int32Array.of(0, -1, -1),
        threshold: Float64Array.of(thr, 0, 0),
        left: Int32Array.of(1, -1, -1),
        right: Int32Array.of(2, -1, -1),
        leafSize: Int32Array.of(6, 1, 5),
        provenance: { source: "test" },
      });
    const f64 = make("f64");
    const f32 = make("f32");
    const values = Float64Array.of(above);
    const s64 = kernelScores(f64, { values, rows: 1, stride: 1, columns: [0] }).scores[0];
    const s32 = kernelScores(f32, { values, rows: 1, stride: 1, columns: [0] }).scores[0];
    const leftScore = kernelScores(f64, { values: Float64Array.of(thr), rows: 1, stride: 1, columns: [0] }).scores[0];
    expect(s32).toBe(leftScore);
    expect(s64).not.toBe(leftScore);
    expect(s32).toBe(referenceScores(f32, values, 1, 1, [0])[0]);
  });

  it("NaN and ±Inf walk the same path in kernel and reference (NaN goes right; the scorer rejects them before)", async () => {
    const rng = new SeededRandom(17);
    const model = randomForest(rng, { trees: 20, features: 3, depthMax: 8, leafProbability: 0.1, compare: "f32" });
    const specials = [NaN, Infinity, -Infinity, 0, -0, 1e300, -1e300, 3.4e38, 3.5e38];
    const data = randomMatrix(rng, 200, 3, (r) => specials[r.int(0, specials.length - 1)]);
    compare(model, data.values, data.rows, 3, [0, 1, 2]);
    const scorer = new IforestScorer(model, { stride: 3, columns: [0, 1, 2], workers: 0 });
    await expect(scorer.score(Float64Array.of(1, NaN, 2), 1)).rejects.toBeInstanceOf(BatchRejectedError);
    await scorer.close();
  });

  it("empty input returns 0; a pointer that is not a model and bad strides return the error codes", () => {
    const rng = new SeededRandom(18);
    const model = randomForest(rng, { trees: 2, features: 2, depthMax: 3, leafProbability: 0.2, compare: "f64" });
    const { result, kernels } = kernelScores(model, { values: new Float64Array(0), rows: 0, stride: 2, columns: [0, 1] });
    expect(result).toBe(0);
    expect(kernels.iforestScore(0, 0, 2, 0, 1, 0, 1)).toBe(IFOREST_ERR_MODEL);
    expect(kernels.iforestScore(65_536, 0, 0, 0, 1, 0, 1)).toBe(IFOREST_ERR_ARGS);
    expect(kernels.iforestScore(65_536, 0, 2, 0, -1, 0, 1)).toBe(IFOREST_ERR_ARGS);
  });
});

describe("iforest - scorer on the worker pool", () => {
  it("2 workers, chunks of 1000 rows, non-identity columns: the same scores as inline and as the reference", async () => {
    const rng = new SeededRandom(19);
    const data = randomMatrix(rng, 12_345, 6, (r) => r.normal());
    const model = trainIsolationForest(
      { ...data, columns: 4, names: ["x0", "x1", "x2", "x3"], values: data.values.filter((_, i) => i % 6 < 4) },
      {
        trees: 60,
        sampleSize: 200,
        seed: 2,
      },
    );
    const columns = [5, 0, 3, 1];
    const pool = new IforestScorer(model, { stride: 6, columns, workers: 2, chunkRowsMax: 1000 });
    const inline = new IforestScorer(model, { stride: 6, columns, workers: 0, chunkRowsMax: 777 });
    try {
      const a = await pool.score(data.values, data.rows);
      const b = await inline.score(data.values, data.rows);
      expect(Array.from(a)).toEqual(Array.from(b));
      expectAgree(a, referenceScores(model, data.values, data.rows, 6, columns));
    } finally {
      await pool.close();
      await inline.close();
    }
  });
});
