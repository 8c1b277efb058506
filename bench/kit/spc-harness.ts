/**
 * Runs the SPC kernel (build/kernels.wasm, kernels/spc.ts) the way the engine does — one shared
 * memory, K keys' state blocks side by side, input columns and output rows in the same memory —
 * for tests, without the engine's pool or batches. Same layout as bench/kit/kernel-harness.ts
 * (state blocks from 64 KiB, then slots, times, values, out, each 64-byte aligned), with
 * SPC_OUT_FIELDS f64 per output row.
 */
import { createSharedMemory, instantiateKernels, type KernelExports } from "../../engine/core/mod.js";
import { SPC_OUT_FIELDS, spcInitArgs, type SpcParams } from "../../operators/spc/mod.js";
import { checkedSlots, DEFAULT_CHUNK_RECORDS_MAX, type KernelHarnessLayout, PAGE_BYTES, planLayout } from "./kernel-harness.js";

/** A batch of records as the kernel reads it. */
export interface SpcInput {
  /** Key slot of each record, in 0..keys − 1. */
  slots: Uint32Array;
  values: Float64Array;
  /** Record times: read only for the gaps that restart a tracked centre line; absent: all 0. */
  times?: Float64Array;
}

export class SpcKernelHarness {
  readonly keys: number;
  readonly chunkRecordsMax: number;
  readonly memory: WebAssembly.Memory;
  readonly kernels: KernelExports;
  readonly layout: KernelHarnessLayout;
  private readonly params: readonly SpcParams[];

  /** `params`: one set for every key, or one per key. */
  constructor(params: SpcParams | readonly SpcParams[], keys: number, options: { chunkRecordsMax?: number } = {}) {
    const chunk = options.chunkRecordsMax ?? DEFAULT_CHUNK_RECORDS_MAX;
    if (!Number.isInteger(keys) || keys < 1) throw new RangeError(`keys must be a positive integer, got ${keys}`);
    if (!Number.isInteger(chunk) || chunk < 1) throw new RangeError(`chunkRecordsMax must be a positive integer, got ${chunk}`);
    this.params = Array.isArray(params) ? params : Array.from({ length: keys }, () => params as SpcParams);
    if (this.params.length !== keys) throw new RangeError(`${this.params.length} parameter sets for ${keys} keys`);
    this.keys = keys;
    this.chunkRecordsMax = chunk;
    const stateStride = instantiateKernels(createSharedMemory(1)).spcStateBytes();
    this.layout = planLayout(keys, stateStride, chunk, SPC_OUT_FIELDS);
    this.memory = createSharedMemory(Math.ceil(this.layout.endBytes / PAGE_BYTES));
    this.kernels = instantiateKernels(this.memory);
    for (let k = 0; k < keys; k++) this.kernels.spcInit(this.statePtr(k), ...spcInitArgs(this.params[k]));
  }

  statePtr(slot: number): number {
    return this.layout.stateBase + slot * this.layout.stateStride;
  }

  setLimits(slot: number, cl: number, sigma: number): void {
    this.kernels.spcSetLimits(this.statePtr(slot), cl, sigma);
  }

  rebaseline(slot: number, n: number): void {
    this.kernels.spcRebaseline(this.statePtr(slot), n);
  }

  /** Runs the records through the kernel; returns n rows of SPC_OUT_FIELDS f64, row i at i·SPC_OUT_FIELDS. */
  process(input: SpcInput): Float64Array {
    const all = new Float64Array(input.values.length * SPC_OUT_FIELDS);
    this.processChunks(input, (first, rows) => all.set(rows, first * SPC_OUT_FIELDS));
    return all;
  }

  /** Runs the records chunk by chunk, handing each chunk's rows (a view, valid during the call) to `onRows`. */
  processChunks(input: SpcInput, onRows: (first: number, rows: Float64Array) => void): void {
    const n = input.values.length;
    if (input.slots.length !== n) throw new RangeError(`columns differ in length: slots ${input.slots.length}, values ${n}`);
    const { layout } = this;
    const buffer = this.memory.buffer;
    const slots = new Uint32Array(buffer, layout.slots, this.chunkRecordsMax);
    const values = new Float64Array(buffer, layout.values, this.chunkRecordsMax);
    const times = new Float64Array(buffer, layout.times, this.chunkRecordsMax);
    const out = new Float64Array(buffer, layout.out, this.chunkRecordsMax * SPC_OUT_FIELDS);
    for (let first = 0; first < n; first += this.chunkRecordsMax) {
      const m = Math.min(this.chunkRecordsMax, n - first);
      slots.set(checkedSlots(input.slots, first, m, this.keys));
      values.set(input.values.subarray(first, first + m));
      if (input.times === undefined) times.fill(0, 0, m);
      else times.set(input.times.subarray(first, first + m));
      out.fill(-1, 0, m * SPC_OUT_FIELDS);
      const done = this.kernels.spcProcess(layout.stateBase, layout.stateStride, layout.slots, layout.times, layout.values, m, layout.out);
      if (done !== m) throw new Error(`spcProcess returned ${done} for ${m} records`);
      onRows(first, out.subarray(0, m * SPC_OUT_FIELDS));
    }
  }
}
