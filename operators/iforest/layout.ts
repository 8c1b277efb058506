/**
 * The isolation-forest model as the kernel reads it (kernels/iforest.ts): one block at a pointer
 * in the shared kernel memory, written once by {@link writeModel}, then only read — by any number
 * of threads at once.
 *
 * ## Block layout (little-endian; offsets in bytes from the block start, which must be 8-aligned)
 *
 * ```
 *   0  u32  magic 0x4649574C (the bytes "LWIF")
 *   4  u32  layout version = 1
 *   8  u32  flags: bit 0 = compare x as float32 ("compare": "f32")
 *  12  u32  T, trees
 *  16  u32  F, features (featureIdx entries the kernel reads)
 *  20  u32  N, nodes
 *  24  u32  tree table offset (= 64)
 *  28  u32  node table offset (16-aligned)
 *  32  u32  leaf table offset
 *  36  u32  block bytes (= modelBytes(model))
 *  40  f64  ψ (max_samples)
 *  48  f64  c(ψ)
 *  56  u32  deepest leaf over all trees (steps)
 *  60  u32  0
 *  64  tree table, T × 8 bytes:  u32 root (byte offset of the root in the node table),
 *                                u32 depth (steps from the root to the tree's deepest leaf)
 *      node table, N × 16 bytes: +0 f64 threshold
 *                                +8 i32 feature × 8 (byte offset of the value within a row whose
 *                                       columns are the model's features in order)
 *                               +12 i32 child (byte offset of the left child in the node table)
 *      leaf table, N × 8 bytes:  f64 depth + c(leaf size) for the node at the same index (node
 *                                table offset / 2), 0 for internal nodes
 * ```
 *
 * Each tree keeps its index range of the model's node arrays (its root stays first) but its
 * nodes are stored breadth first, so a node's children are adjacent: x[feature] <= threshold goes
 * to `child`, otherwise to `child + 16`. A leaf is absorbing: threshold NaN (no x is <= NaN, so a
 * step always takes child + 16), feature 0, child = its own offset − 16 — a walk that reaches a
 * leaf stays there, and the kernel walks every row exactly `depth` steps without testing for
 * leaves. Offsets instead of indices spare the kernel two shifts per step (about 10%). The leaf
 * terms and c(ψ) are computed here with {@link averagePathLength}, once per model.
 */
import { ConfigError } from "../../engine/core/mod.js";
import { averagePathLength, treeCount, type IsolationForestModel } from "./model.js";

export const IFOREST_LAYOUT_MAGIC = 0x4649574c;
export const IFOREST_LAYOUT_VERSION = 1;
export const IFOREST_FLAG_F32 = 1;
export const IFOREST_HEADER_BYTES = 64;
/** Kernel return values other than n (kernels/iforest.ts). */
export const IFOREST_ERR_MODEL = -1;
export const IFOREST_ERR_ARGS = -2;

/** Byte offsets of the tables within a block. */
export interface IforestBlockPlan {
  treeTable: number;
  nodeTable: number;
  leafTable: number;
  bytes: number;
}

export function planModelBlock(model: IsolationForestModel): IforestBlockPlan {
  const trees = treeCount(model);
  const nodes = model.feature.length;
  const treeTable = IFOREST_HEADER_BYTES;
  const nodeTable = alignUp(treeTable + trees * 8, 16);
  const leafTable = nodeTable + nodes * 16;
  return { treeTable, nodeTable, leafTable, bytes: alignUp(leafTable + nodes * 8, 64) };
}

/** Bytes the model's block takes (a multiple of 64). */
export function modelBytes(model: IsolationForestModel): number {
  return planModelBlock(model).bytes;
}

/**
 * Writes the model's block at byte offset `ptr` of `buffer` (the kernel memory's buffer).
 * The model must have been validated (every model from iforest-model.ts is).
 */
export function writeModel(buffer: ArrayBuffer | SharedArrayBuffer, ptr: number, model: IsolationForestModel): IforestBlockPlan {
  const plan = planModelBlock(model);
  if (!Number.isInteger(ptr) || ptr < 0 || ptr % 8 !== 0)
    throw new ConfigError("modelPtr", `must be a non-negative multiple of 8, got ${ptr}`);
  if (ptr + plan.bytes > buffer.byteLength) {
    throw new ConfigError("modelPtr", `the model needs ${plan.bytes} bytes at ${ptr}, past the memory's ${buffer.byteLength}`);
  }
  const trees = treeCount(model);
  const nodes = model.feature.length;
  const header = new DataView(buffer, ptr, IFOREST_HEADER_BYTES);
  const treeTable = new Uint32Array(buffer, ptr + plan.treeTable, trees * 2);
  const nodeF64 = new Float64Array(buffer, ptr + plan.nodeTable, nodes * 2);
  const nodeI32 = new Int32Array(buffer, ptr + plan.nodeTable, nodes * 4);
  const leafTable = new Float64Array(buffer, ptr + plan.leafTable, nodes);
  let deepest = 0;
  for (let t = 0; t < trees; t++) {
    const depth = layOutTree(model, t, nodeF64, nodeI32, leafTable);
    treeTable[2 * t] = model.treeOffsets[t] * 16;
    treeTable[2 * t + 1] = depth;
    deepest = Math.max(deepest, depth);
  }
  header.setUint32(0, IFOREST_LAYOUT_MAGIC, true);
  header.setUint32(4, IFOREST_LAYOUT_VERSION, true);
  header.setUint32(8, model.compare === "f32" ? IFOREST_FLAG_F32 : 0, true);
  header.setUint32(12, trees, true);
  header.setUint32(16, model.nFeatures, true);
  header.setUint32(20, nodes, true);
  header.setUint32(24, plan.treeTable, true);
  header.setUint32(28, plan.nodeTable, true);
  header.setUint32(32, plan.leafTable, true);
  header.setUint32(36, plan.bytes, true);
  header.setFloat64(40, model.maxSamples, true);
  header.setFloat64(48, averagePathLength(model.maxSamples), true);
  header.setUint32(56, deepest, true);
  header.setUint32(60, 0, true);
  return plan;
}

// ---- internals ----

/**
 * Tree t breadth first into its own index range of the node table (the range the model gives
 * it, so the root stays at treeOffsets[t]). Returns the depth of its deepest leaf.
 */
function layOutTree(model: IsolationForestModel, t: number, nodeF64: Float64Array, nodeI32: Int32Array, leafTable: Float64Array): number {
  const base = model.treeOffsets[t];
  const size = model.treeOffsets[t + 1] - base;
  // queue[k] = the model's local index of the node stored at base + k; depthOf alike.
  const queue = new Int32Array(size);
  const depthOf = new Int32Array(size);
  let next = 1;
  let deepest = 0;
  for (let k = 0; k < size; k++) {
    const j = queue[k];
    const i = base + j;
    const at = base + k;
    if (model.feature[i] === -1) {
      nodeF64[2 * at] = NaN;
      nodeI32[4 * at + 2] = 0;
      nodeI32[4 * at + 3] = (at - 1) * 16;
      leafTable[at] = depthOf[k] + averagePathLength(model.leafSize[i]);
      deepest = Math.max(deepest, depthOf[k]);
    } else {
      nodeF64[2 * at] = model.threshold[i];
      nodeI32[4 * at + 2] = model.feature[i] * 8;
      nodeI32[4 * at + 3] = (base + next) * 16;
      leafTable[at] = 0;
      queue[next] = model.left[i];
      queue[next + 1] = model.right[i];
      depthOf[next] = depthOf[next + 1] = depthOf[k] + 1;
      next += 2;
    }
  }
  return deepest;
}

function alignUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}
