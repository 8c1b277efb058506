/**
 * Scoring rows with the isolation-forest kernel outside the stream engine (the `iforest score`
 * command, the evaluation harness, tests): a shared memory holding the model block and a few
 * row buffers, and a kernel executor (inline or piscina workers) running `iforestScore` tasks.
 *
 * Memory (every region 64-byte aligned):
 *
 *   [0, 65536)         left to the kernel module
 *   model              modelBytes(model): the block of operators/iforest/layout.ts, written once
 *   slot s = 0..S−1    featureIdx: F × i32 (column of each model feature, written once)
 *                      rows:       chunkRowsMax × stride f64
 *                      out:        chunkRowsMax f64
 *
 * S = workers + 1 (1 inline): one slot fills while the others are being scored. A slot is only
 * reused after its task has finished, so no two threads touch the same bytes.
 */
import {
  BatchRejectedError,
  ConfigError,
  KernelTaskError,
  createSharedMemory,
  KERNEL_MEMORY_PAGES_MAX,
  createKernelExecutor,
  type KernelExecutor,
} from "../../engine/core/mod.js";
import { modelBytes, writeModel } from "./layout.js";
import type { IsolationForestModel } from "./model.js";

export interface IforestScorerOptions {
  /** f64 per input row. */
  stride: number;
  /** Column of the row holding model feature k, for k in 0..F − 1. */
  columns: ArrayLike<number>;
  /** Worker threads (0: the kernel runs on the calling thread). */
  workers: number;
  /** Rows per kernel task. */
  chunkRowsMax?: number;
}

export const DEFAULT_SCORER_CHUNK_ROWS = 16_384;
const RESERVED_BYTES = 65_536;
const PAGE_BYTES = 65_536;

interface Slot {
  featureIdx: number;
  rows: number;
  out: number;
}

export class IforestScorer {
  readonly model: IsolationForestModel;
  readonly stride: number;
  readonly chunkRowsMax: number;
  readonly memory: WebAssembly.Memory;
  readonly modelPtr: number;
  private readonly executor: KernelExecutor;
  private readonly slots: Slot[];

  constructor(model: IsolationForestModel, options: IforestScorerOptions) {
    const { stride, columns, workers } = options;
    const chunk = options.chunkRowsMax ?? DEFAULT_SCORER_CHUNK_ROWS;
    if (!Number.isInteger(stride) || stride < 1) throw new ConfigError("stride", `must be a positive integer, got ${stride}`);
    if (!Number.isInteger(chunk) || chunk < 1) throw new ConfigError("chunkRowsMax", `must be a positive integer, got ${chunk}`);
    if (!Number.isInteger(workers) || workers < 0) throw new ConfigError("workers", `must be an integer ≥ 0, got ${workers}`);
    if (columns.length !== model.nFeatures)
      throw new ConfigError("columns", `${columns.length} columns for ${model.nFeatures} model features`);
    for (let k = 0; k < columns.length; k++) {
      if (!Number.isInteger(columns[k]) || columns[k] < 0 || columns[k] >= stride) {
        throw new ConfigError("columns", `feature ${k} ("${model.featureNames[k]}") reads column ${columns[k]}, outside 0..${stride - 1}`);
      }
    }
    this.model = model;
    this.stride = stride;
    this.chunkRowsMax = chunk;
    this.modelPtr = RESERVED_BYTES;
    const slotCount = workers + 1;
    const idxBytes = align64(model.nFeatures * 4);
    const rowBytes = align64(chunk * stride * 8);
    const slotBytes = idxBytes + rowBytes + align64(chunk * 8);
    const firstSlot = this.modelPtr + align64(modelBytes(model));
    const pages = Math.ceil((firstSlot + slotCount * slotBytes) / PAGE_BYTES);
    if (pages > KERNEL_MEMORY_PAGES_MAX) {
      throw new ConfigError(
        "memory",
        `the model and ${slotCount} buffers of ${chunk} rows need ${pages} pages, more than ${KERNEL_MEMORY_PAGES_MAX}; lower the chunk size`,
      );
    }
    this.memory = createSharedMemory(pages);
    writeModel(this.memory.buffer, this.modelPtr, model);
    this.slots = [];
    const i32 = new Int32Array(this.memory.buffer);
    for (let s = 0; s < slotCount; s++) {
      const featureIdx = firstSlot + s * slotBytes;
      for (let k = 0; k < columns.length; k++) i32[(featureIdx >> 2) + k] = columns[k];
      this.slots.push({ featureIdx, rows: featureIdx + idxBytes, out: featureIdx + idxBytes + rowBytes });
    }
    this.executor = createKernelExecutor(this.memory, workers, slotCount);
  }

  get workers(): number {
    return this.executor.workers;
  }

  /**
   * Scores `rows` rows of `values` (row-major, `stride` f64 per row). Every value a model feature
   * reads must be finite (BatchRejectedError otherwise: the row and feature are named).
   */
  async score(values: Float64Array, rows: number): Promise<Float64Array> {
    if (values.length < rows * this.stride) throw new BatchRejectedError(`${values.length} values for ${rows} rows of ${this.stride}`);
    this.checkFinite(values, rows);
    const scores = new Float64Array(rows);
    const buffer = this.memory.buffer;
    const pending: { task: Promise<number>; slot: Slot; first: number; m: number }[] = [];
    const collect = async (): Promise<void> => {
      const p = pending.shift() as (typeof pending)[number];
      const done = await p.task;
      if (done !== p.m) throw new KernelTaskError(0, `iforestScore returned ${done} for ${p.m} rows`);
      const out = new Float64Array(buffer, p.slot.out, p.m);
      for (let i = 0; i < p.m; i++) {
        // The invariant of the formula: 2^(−x) with x ≥ 0 lies in (0, 1].
        if (!(out[i] > 0 && out[i] <= 1)) throw new KernelTaskError(0, `score ${out[i]} of row ${p.first + i} is outside (0, 1]`);
      }
      scores.set(out, p.first);
    };
    for (let first = 0, c = 0; first < rows; first += this.chunkRowsMax, c++) {
      if (pending.length === this.slots.length) await collect();
      const slot = this.slots[c % this.slots.length];
      const m = Math.min(this.chunkRowsMax, rows - first);
      new Float64Array(buffer, slot.rows, m * this.stride).set(values.subarray(first * this.stride, (first + m) * this.stride));
      const args = [this.modelPtr, slot.rows, this.stride, slot.featureIdx, m, slot.out, 1];
      pending.push({ task: this.executor.run({ fn: "iforestScore", args }, c % this.slots.length), slot, first, m });
    }
    while (pending.length > 0) await collect();
    return scores;
  }

  async close(): Promise<void> {
    await this.executor.close();
  }

  private checkFinite(values: Float64Array, rows: number): void {
    const i32 = new Int32Array(this.memory.buffer, this.slots[0].featureIdx, this.model.nFeatures);
    for (let i = 0; i < rows; i++) {
      for (let k = 0; k < i32.length; k++) {
        const v = values[i * this.stride + i32[k]];
        if (!Number.isFinite(v)) throw new BatchRejectedError(`row ${i}, feature "${this.model.featureNames[k]}": ${v} is not finite`);
      }
    }
  }
}

/** Scores a whole matrix whose columns are the model's features in order (stride = F). */
export async function scoreMatrix(model: IsolationForestModel, values: Float64Array, rows: number, workers = 0): Promise<Float64Array> {
  const scorer = new IforestScorer(model, { stride: model.nFeatures, columns: model.featureNames.map((_, k) => k), workers });
  try {
    return await scorer.score(values, rows);
  } finally {
    await scorer.close();
  }
}

function align64(n: number): number {
  return Math.ceil(n / 64) * 64;
}
