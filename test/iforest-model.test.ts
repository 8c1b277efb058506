/**
 * The model file (operators/iforest/model.ts) and training (operators/iforest/training/train.ts): round
 * trips, typed rejection of every kind of malformed model, the content hash, and determinism.
 */
import { describe, expect, it } from "vitest";
import { SeededRandom } from "../engine/core/mod.js";
import { randomForest } from "../bench/kit/iforest-harness.js";
import {
  buildModel,
  IFOREST_NODES_MAX,
  ModelError,
  modelFromJson,
  modelToJson,
  parseModel,
  type IsolationForestModel,
} from "../operators/iforest/model.js";
import { modelBytes, writeModel } from "../operators/iforest/layout.js";
import { trainIsolationForest, type FeatureMatrix } from "../operators/iforest/training/train.js";
import { ConfigError, InputError } from "../engine/core/errors.js";

function matrix(seed: number, rows = 500, columns = 4): FeatureMatrix {
  const rng = new SeededRandom(seed);
  const values = new Float64Array(rows * columns);
  for (let i = 0; i < values.length; i++) values[i] = rng.normal();
  return { values, rows, columns, names: Array.from({ length: columns }, (_, k) => `c${k}`) };
}

/** model.json of a 3-node tree and a 1-node tree, as a plain object to break. */
function smallJson(): Record<string, unknown> {
  const model = buildModel({
    maxSamples: 2,
    nFeatures: 1,
    featureNames: ["c0"],
    compare: "f64",
    treeOffsets: Int32Array.of(0, 3, 4),
    feature: Int32Array.of(0, -1, -1, -1),
    threshold: Float64Array.of(0.5, 0, 0, 0),
    left: Int32Array.of(1, -1, -1, -1),
    right: Int32Array.of(2, -1, -1, -1),
    leafSize: Int32Array.of(2, 1, 1, 2),
    provenance: { source: "test" },
  });
  return JSON.parse(modelToJson(model)) as Record<string, unknown>;
}

/** Re-hashes a changed model object so that only the structural checks can reject it. */
function withFields(fields: Record<string, unknown>): Record<string, unknown> {
  const o = { ...smallJson(), ...fields };
  try {
    modelFromJson(o);
  } catch (error) {
    const match = /content hashes to ([0-9a-f]{64})/.exec((error as Error).message);
    if (match) return { ...o, hash: match[1] };
  }
  return o;
}

describe("iforest - model file", () => {
  it("model.json round-trips: same arrays, same hash; the hash ignores provenance", () => {
    const model = trainIsolationForest(matrix(2), { trees: 20, sampleSize: 64, seed: 7 });
    const back = parseModel(modelToJson(model));
    expect(back.hash).toBe(model.hash);
    expect(Array.from(back.threshold)).toEqual(Array.from(model.threshold));
    expect(Array.from(back.left)).toEqual(Array.from(model.left));
    const json = JSON.parse(modelToJson(model)) as Record<string, unknown>;
    expect(modelFromJson({ ...json, provenance: { source: "elsewhere" } }).hash).toBe(model.hash);
  });

  it("a changed threshold without a new hash is rejected as damaged", () => {
    const o = smallJson();
    const threshold = [...(o.threshold as number[])];
    threshold[0] += 1e-9;
    expect(() => modelFromJson({ ...o, threshold })).toThrow(ModelError);
  });

  it("malformed models are ModelErrors: lengths, indices, cycles, orphans, features, sizes, limits, format", () => {
    const o = smallJson();
    // Tree 0: root 0 (feature 0) with leaves 1 and 2; tree 1: a single leaf (node 3).
    expect(o.left).toEqual([1, -1, -1, -1]);
    const cases: [string, unknown][] = [
      ["not an object", [1, 2]],
      ["format", { ...o, format: "other" }],
      ["version", { ...o, version: 2 }],
      ["compare", withFields({ compare: "f16" })],
      ["hash missing", { ...o, hash: undefined }],
      ["threshold short", withFields({ threshold: [0.5, 0, 0] })],
      ["threshold not finite", withFields({ threshold: [null, 0, 0, 0] })],
      ["left longer", withFields({ left: [1, -1, -1, -1, -1] })],
      ["child past the tree", withFields({ left: [3, -1, -1, -1] })],
      ["child before its parent (cycle)", withFields({ left: [0, -1, -1, -1] })],
      ["two parents", withFields({ left: [2, -1, -1, -1] })],
      ["leaf with a child", withFields({ left: [1, 2, -1, -1] })],
      ["feature out of range", withFields({ feature: [1, -1, -1, -1] })],
      ["feature below −1", withFields({ feature: [-2, -1, -1, -1] })],
      ["leaf size 0", withFields({ leaf_size: [2, 1, 0, 1] })],
      ["sizes do not sum", withFields({ leaf_size: [3, 1, 1, 1] })],
      ["root above max_samples", withFields({ max_samples: 1 })],
      ["tree offsets not ending at the node count", withFields({ tree_offsets: [0, 3, 5] })],
      ["empty tree", withFields({ tree_offsets: [0, 3, 3, 4] })],
      ["offsets not starting at 0", withFields({ tree_offsets: [1, 3, 4] })],
      ["n_features vs names", withFields({ n_features: 2 })],
      ["duplicate feature names", withFields({ n_features: 2, feature_names: ["c0", "c0"] })],
      ["max_samples not an integer", withFields({ max_samples: 2.5 })],
      ["too many nodes", withFields({ feature: new Array(IFOREST_NODES_MAX + 1).fill(-1) })],
    ];
    for (const [name, json] of cases) {
      let thrown: unknown;
      try {
        modelFromJson(json);
      } catch (error) {
        thrown = error;
      }
      expect(thrown, name).toBeInstanceOf(ModelError);
    }
    expect(() => parseModel("{not json", "x.json")).toThrow(ModelError);
  });

  it("the kernel block: size is a multiple of 64, and writing it outside the memory is a ConfigError", () => {
    const model: IsolationForestModel = randomForest(new SeededRandom(3), {
      trees: 5,
      features: 2,
      depthMax: 6,
      leafProbability: 0.2,
      compare: "f64",
    });
    const bytes = modelBytes(model);
    expect(bytes % 64).toBe(0);
    expect(bytes).toBeGreaterThanOrEqual(64 + 5 * 8 + model.feature.length * 24);
    const buffer = new ArrayBuffer(bytes + 64);
    expect(() => writeModel(buffer, 64, model)).not.toThrow();
    expect(() => writeModel(buffer, 72, model)).toThrow(ConfigError);
    expect(() => writeModel(buffer, 4, model)).toThrow(ConfigError);
  });
});

describe("iforest - training", () => {
  it("is deterministic: the same seed gives the same hash, another seed another", () => {
    const data = matrix(4, 3000, 6);
    const a = trainIsolationForest(data, { trees: 100, sampleSize: 256, seed: 42 });
    const b = trainIsolationForest(data, { trees: 100, sampleSize: 256, seed: 42 });
    const c = trainIsolationForest(data, { trees: 100, sampleSize: 256, seed: 43 });
    expect(a.hash).toBe(b.hash);
    expect(modelToJson(a)).toBe(modelToJson(b));
    expect(c.hash).not.toBe(a.hash);
  });

  it("grows trees of the paper's shape: ψ-row roots, height limit ceil(log2 ψ), splits inside the node's range", () => {
    const data = matrix(5, 2000, 3);
    const model = trainIsolationForest(data, { trees: 30, sampleSize: 100, seed: 1 });
    expect(model.maxSamples).toBe(100);
    expect(model.treeOffsets.length).toBe(31);
    for (let t = 0; t < 30; t++) {
      const base = model.treeOffsets[t];
      expect(model.leafSize[base]).toBe(100);
      const walk = (j: number, depth: number): void => {
        const i = base + j;
        if (model.feature[i] === -1) {
          expect(depth).toBeLessThanOrEqual(7); // ceil(log2 100)
          expect(depth === 7 || model.leafSize[i] === 1).toBe(true);
          return;
        }
        walk(model.left[i], depth + 1);
        walk(model.right[i], depth + 1);
      };
      walk(0, 0);
    }
  });

  it("rejects bad options with ConfigError and non-finite data with InputError", () => {
    const data = matrix(6, 10, 2);
    expect(() => trainIsolationForest(data, { trees: 0, sampleSize: 8, seed: 1 })).toThrow(ConfigError);
    expect(() => trainIsolationForest(data, { trees: 1, sampleSize: 0, seed: 1 })).toThrow(ConfigError);
    expect(() => trainIsolationForest(data, { trees: 1, sampleSize: 8, seed: -1 })).toThrow(ConfigError);
    const bad = { ...data, values: data.values.slice() };
    bad.values[5] = NaN;
    expect(() => trainIsolationForest(bad, { trees: 1, sampleSize: 8, seed: 1 })).toThrow(InputError);
  });
});
