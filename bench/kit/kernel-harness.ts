/**
 * Runs the rolling-statistics kernel (build/kernels.wasm) the way the engine does — one shared
 * memory, K keys' state blocks side by side, input columns and output rows in the same memory —
 * for tests and benchmarks, without the engine's pool or batches. Also a seeded PRNG, so that
 * tests and benchmarks draw the same streams on every run.
 *
 * Layout of the memory (every region starts on a 64-byte boundary):
 *
 *   [0, 65536)            left to the kernel module (static data, if it ever has any)
 *   stateBase             K × stateStride bytes: key k's state block at stateBase + k·stateStride
 *   slots                 chunkRecordsMax × u32   key slot of each record
 *   times                 chunkRecordsMax × f64
 *   values                chunkRecordsMax × f64
 *   out                   chunkRecordsMax × ROLLING_OUT_FIELDS f64
 *
 * Longer inputs are run through `rollingProcess` a chunk at a time; key state carries over
 * between chunks exactly as it does between the engine's batches.
 */
import { createSharedMemory, instantiateKernels, type KernelExports } from "../../engine/core/mod.js";

/** One key's kernel configuration, the arguments of `rollingInit`. */
export interface RollingKernelConfig {
  /** 0 = count window (the last `cap` records), 1 = time window of duration `span`. */
  mode: 0 | 1;
  /** Count window length (mode 0) or the most records a time window holds (mode 1). */
  cap: number;
  /** Time window duration in input time units (ignored in mode 0). */
  span: number;
  /** EWMA smoothing factor. */
  alpha: number;
  /** Divisor from input time units to slope time units. */
  timeScale: number;
}

/** A batch of records as the kernel reads it: three columns of equal length. */
export interface RollingInput {
  /** Key slot of each record, in 0..keys − 1. */
  slots: Uint32Array;
  times: Float64Array;
  values: Float64Array;
}

export interface RollingKernelHarnessOptions {
  /** Records per `rollingProcess` call; longer inputs are split. */
  chunkRecordsMax?: number;
}

/** f64 per output row (kernels/rolling.ts ROLLING_OUT_FIELDS). */
export const KERNEL_OUT_FIELDS = 10;
/** Bytes below which the harness places nothing. */
export const HARNESS_RESERVED_BYTES = 65536;
export const DEFAULT_CHUNK_RECORDS_MAX = 4096;
const ALIGN_BYTES = 64;
export const PAGE_BYTES = 65536;

/** Byte offsets of a harness's regions in the shared memory (the rolling and SPC harnesses alike). */
export interface KernelHarnessLayout {
  stateBase: number;
  stateStride: number;
  slots: number;
  times: number;
  values: number;
  out: number;
  /** First byte past the last region. */
  endBytes: number;
}

export class RollingKernelHarness {
  readonly config: Readonly<RollingKernelConfig>;
  readonly keys: number;
  readonly chunkRecordsMax: number;
  readonly memory: WebAssembly.Memory;
  readonly kernels: KernelExports;
  readonly layout: KernelHarnessLayout;

  /** Allocates the memory, instantiates the kernels and initialises `keys` state blocks. */
  constructor(config: RollingKernelConfig, keys: number, options: RollingKernelHarnessOptions = {}) {
    const chunk = options.chunkRecordsMax ?? DEFAULT_CHUNK_RECORDS_MAX;
    if (!Number.isInteger(keys) || keys < 1) throw new RangeError(`keys must be a positive integer, got ${keys}`);
    if (!Number.isInteger(chunk) || chunk < 1) throw new RangeError(`chunkRecordsMax must be a positive integer, got ${chunk}`);
    this.config = { ...config };
    this.keys = keys;
    this.chunkRecordsMax = chunk;

    // The module is needed for rollingStateBytes before the final memory size is known, so it
    // is first instantiated over a one-page memory (it keeps no state of its own).
    const stateStride = instantiateKernels(createSharedMemory(1)).rollingStateBytes(config.mode, config.cap);
    this.layout = planLayout(keys, stateStride, chunk);
    this.memory = createSharedMemory(Math.ceil(this.layout.endBytes / PAGE_BYTES));
    this.kernels = instantiateKernels(this.memory);
    this.reset();
  }

  /** Re-initialises every key's state, as if no record had been seen. */
  reset(): void {
    const { mode, cap, span, alpha, timeScale } = this.config;
    for (let k = 0; k < this.keys; k++) {
      this.kernels.rollingInit(this.statePtr(k), mode, cap, span, alpha, timeScale);
    }
  }

  /** Byte offset of key `slot`'s state block. */
  statePtr(slot: number): number {
    return this.layout.stateBase + slot * this.layout.stateStride;
  }

  /** Runs the records through the kernel; returns n rows of KERNEL_OUT_FIELDS f64, row i at i·KERNEL_OUT_FIELDS. */
  process(input: RollingInput): Float64Array {
    const all = new Float64Array(input.values.length * KERNEL_OUT_FIELDS);
    this.processChunks(input, (first, rows) => all.set(rows, first * KERNEL_OUT_FIELDS));
    return all;
  }

  /**
   * Runs the records chunk by chunk and hands each chunk's rows to `onRows` (first = index of
   * the chunk's first record). `rows` is a copy, so a long stream need not be kept whole.
   */
  processChunks(input: RollingInput, onRows: (first: number, rows: Float64Array) => void): void {
    const n = input.values.length;
    if (input.times.length !== n || input.slots.length !== n) {
      throw new RangeError(`columns differ in length: slots ${input.slots.length}, times ${input.times.length}, values ${n}`);
    }
    const { layout } = this;
    const buffer = this.memory.buffer;
    const slots = new Uint32Array(buffer, layout.slots, this.chunkRecordsMax);
    const times = new Float64Array(buffer, layout.times, this.chunkRecordsMax);
    const values = new Float64Array(buffer, layout.values, this.chunkRecordsMax);
    const out = new Float64Array(buffer, layout.out, this.chunkRecordsMax * KERNEL_OUT_FIELDS);
    for (let first = 0; first < n; first += this.chunkRecordsMax) {
      const m = Math.min(this.chunkRecordsMax, n - first);
      slots.set(checkedSlots(input.slots, first, m, this.keys));
      times.set(input.times.subarray(first, first + m));
      values.set(input.values.subarray(first, first + m));
      out.fill(NaN, 0, m * KERNEL_OUT_FIELDS);
      const done = this.kernels.rollingProcess(
        layout.stateBase,
        layout.stateStride,
        layout.slots,
        layout.times,
        layout.values,
        m,
        layout.out,
      );
      if (done !== m) throw new Error(`rollingProcess returned ${done} for ${m} records`);
      onRows(first, out.slice(0, m * KERNEL_OUT_FIELDS));
    }
  }

  /** Runs an empty batch (n = 0) straight through the kernel; returns what it reports done. */
  processEmpty(): number {
    const { layout } = this;
    return this.kernels.rollingProcess(layout.stateBase, layout.stateStride, layout.slots, layout.times, layout.values, 0, layout.out);
  }
}

/** Row i of a flat output array (a view, not a copy). */
export function outputRow(rows: Float64Array, i: number): Float64Array {
  return rows.subarray(i * KERNEL_OUT_FIELDS, (i + 1) * KERNEL_OUT_FIELDS);
}

/** Records [first, first + m) of `slots`, each checked to be below `keys` (a view). */
export function checkedSlots(slots: Uint32Array, first: number, m: number, keys: number): Uint32Array {
  const chunk = slots.subarray(first, first + m);
  for (let i = 0; i < m; i++) {
    if (chunk[i] >= keys) throw new RangeError(`record ${first + i}: slot ${chunk[i]} ≥ keys ${keys}`);
  }
  return chunk;
}

/** Plans the regions for `keys` state blocks of `stateStride` bytes and `chunk`-record buffers, output rows of `outFields` f64. */
export function planLayout(keys: number, stateStride: number, chunk: number, outFields = KERNEL_OUT_FIELDS): KernelHarnessLayout {
  const stateBase = HARNESS_RESERVED_BYTES;
  const slots = alignUp(stateBase + keys * stateStride);
  const times = alignUp(slots + chunk * 4);
  const values = alignUp(times + chunk * 8);
  const out = alignUp(values + chunk * 8);
  const endBytes = alignUp(out + chunk * 8 * outFields);
  return { stateBase, stateStride, slots, times, values, out, endBytes };
}

function alignUp(bytes: number): number {
  return Math.ceil(bytes / ALIGN_BYTES) * ALIGN_BYTES;
}
