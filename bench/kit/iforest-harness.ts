/**
 * Runs the isolation-forest kernel (build/kernels.wasm) on the calling thread over its own shared
 * memory, for tests and benchmarks, and builds random forests that satisfy the model format.
 *
 * Memory: [0, 65536) left to the module | model block | featureIdx (F × i32) | rows | out,
 * each region 64-byte aligned, sized for the call.
 */
import { createSharedMemory, instantiateKernels, type KernelExports } from "../../engine/core/mod.js";
import { modelBytes, writeModel, buildModel, type IforestCompare, type IsolationForestModel } from "../../operators/iforest/mod.js";
import type { SeededRandom } from "../../engine/core/mod.js";

export interface KernelScoreCall {
  /** Row-major, `stride` f64 per row. */
  values: Float64Array;
  rows: number;
  stride: number;
  /** Column of model feature k. */
  columns: ArrayLike<number>;
  /** f64 between outputs (default 1). */
  outStride?: number;
}

/** Scores with the kernel; returns the n scores and the kernel's return value. */
export function kernelScores(
  model: IsolationForestModel,
  call: KernelScoreCall,
): { scores: Float64Array; result: number; kernels: KernelExports } {
  const outStride = call.outStride ?? 1;
  const modelPtr = 65_536;
  const idxPtr = align64(modelPtr + modelBytes(model));
  const rowsPtr = align64(idxPtr + model.nFeatures * 4);
  const outPtr = align64(rowsPtr + Math.max(1, call.rows * call.stride) * 8);
  const end = align64(outPtr + Math.max(1, call.rows * outStride) * 8);
  const memory = createSharedMemory(Math.ceil(end / 65_536));
  const kernels = instantiateKernels(memory);
  writeModel(memory.buffer, modelPtr, model);
  new Int32Array(memory.buffer, idxPtr, model.nFeatures).set(Array.from(call.columns));
  new Float64Array(memory.buffer, rowsPtr, call.rows * call.stride).set(call.values.subarray(0, call.rows * call.stride));
  new Float64Array(memory.buffer, outPtr, call.rows * outStride).fill(-7);
  const result = kernels.iforestScore(modelPtr, rowsPtr, call.stride, idxPtr, call.rows, outPtr, outStride);
  const out = new Float64Array(memory.buffer, outPtr, call.rows * outStride);
  const scores = new Float64Array(call.rows);
  for (let i = 0; i < call.rows; i++) scores[i] = out[i * outStride];
  return { scores, result, kernels };
}

export interface RandomForestSpec {
  trees: number;
  features: number;
  /** Deepest a leaf may be. */
  depthMax: number;
  /** Probability that a node above depthMax is a leaf. */
  leafProbability: number;
  compare: IforestCompare;
  /** Thresholds are drawn from these values when given (to make ties with the data). */
  thresholds?: readonly number[];
}

/**
 * A random forest in the model format: random shapes (leaves at every depth up to depthMax,
 * single-leaf trees), random features and thresholds, leaf sizes 1..6 that sum upwards; ψ is the
 * largest root size.
 */
export function randomForest(rng: SeededRandom, spec: RandomForestSpec): IsolationForestModel {
  const feature: number[] = [];
  const threshold: number[] = [];
  const left: number[] = [];
  const right: number[] = [];
  const size: number[] = [];
  const offsets = [0];
  let psi = 1;
  for (let t = 0; t < spec.trees; t++) {
    const base = feature.length;
    const grow = (depth: number): number => {
      const local = feature.length - base;
      feature.push(-1);
      threshold.push(0);
      left.push(-1);
      right.push(-1);
      size.push(0);
      const i = base + local;
      if (depth >= spec.depthMax || rng.next() < spec.leafProbability) {
        size[i] = rng.int(1, 6);
        return local;
      }
      feature[i] = rng.int(0, spec.features - 1);
      threshold[i] = spec.thresholds ? spec.thresholds[rng.int(0, spec.thresholds.length - 1)] : rng.uniform(-3, 3);
      const l = grow(depth + 1);
      left[i] = l;
      const r = grow(depth + 1);
      right[i] = r;
      size[i] = size[base + l] + size[base + r];
      return local;
    };
    grow(0);
    psi = Math.max(psi, size[base]);
    offsets.push(feature.length);
  }
  return buildModel(
    {
      maxSamples: psi,
      nFeatures: spec.features,
      featureNames: Array.from({ length: spec.features }, (_, k) => `f${k}`),
      compare: spec.compare,
      treeOffsets: Int32Array.from(offsets),
      feature: Int32Array.from(feature),
      threshold: Float64Array.from(threshold),
      left: Int32Array.from(left),
      right: Int32Array.from(right),
      leafSize: Int32Array.from(size),
      provenance: { source: "test" },
    },
    "random forest",
  );
}

function align64(n: number): number {
  return Math.ceil(n / 64) * 64;
}
