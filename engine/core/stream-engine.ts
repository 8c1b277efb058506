/**
 * The stream engine: routes records by key to key-group buffers in shared kernel memory, runs one
 * kernel task per group at a time on the executor, and hands each finished buffer's outputs to
 * the caller in per-key order.
 *
 * Ordering: a key lives in exactly one group; a group's buffers are processed one after the
 * other, so each key's records reach the kernel in the order the engine accepted them.
 * Backpressure: a group has two buffers — the one a task is reading and the one being filled.
 * When the second fills while the first is still in flight, `push` waits for that task, so a
 * fast source is slowed to the pool's pace and no queue grows without bound.
 * Event time: with `lateness` set, a per-key reorder buffer releases records in time order and
 * hands late ones to `onLate`; without it, records keep arrival order and those behind their
 * key's newest time are marked out of order.
 */
import type { RecordBatch } from "./batch.js";
import { BatchRejectedError, ConfigError, KernelTaskError } from "./errors.js";
import { createKernelExecutor, DEFAULT_WORKERS, type KernelCall, type KernelExecutor } from "./kernel-pool.js";
import { compileKernels, createSharedMemory, instantiateKernels, type KernelExports } from "./kernel-module.js";
import { KeyDictionary } from "./key-dictionary.js";
import { MemoryLayout, type BufferOffsets } from "./memory-layout.js";
import { ReorderBuffer, type PendingRecord } from "./reorder-buffer.js";
import type { EngineCheckpoint } from "./checkpoint.js";
import { CheckpointError } from "./errors.js";

/** Pointers of one kernel task, for an analysis that builds its own calls. */
export interface KernelCallContext {
  /** This analysis's state block of slot 0 of the group, and the distance between slots. */
  stateBase: number;
  stateStride: number;
  slots: number;
  times: number;
  values: number;
  n: number;
  /** This analysis's output rows, and those of every analysis (by index) for this buffer. */
  out: number;
  outs: readonly number[];
  /** This analysis's static region (0 when it asked for none). */
  staticPtr: number;
  /** The records' fixed-width payload (payloadBytes each), 0 when the engine carries none. */
  payload: number;
  payloadBytes: number;
}

/** What the engine needs to know of an analysis's kernel. */
export interface StreamKernel {
  readonly name: string;
  /** Bytes of state per key, a multiple of 8 (0 for a stateless analysis). */
  readonly stateBytesPerKey: number;
  /** f64 per output row. */
  readonly outFields: number;
  /** Export called as fn(stateBase, stateStride, slots, times, values, n, out, ...extraArgs[, events]). */
  readonly processFn: keyof KernelExports;
  readonly extraArgs: readonly number[];
  /**
   * The kernel writes an event list (rows where something changes state) to the address passed
   * after `extraArgs`: a u32 count m, then m ascending row indices (room for 1 + n u32). The
   * chunk's `events` has it; readers visit those rows instead of every row.
   */
  readonly eventRows?: boolean;
  /**
   * The calls of one task, when the analysis needs more than the standard call — e.g. gathering
   * features from earlier analyses' rows, then scoring them. Runs after every earlier analysis's calls.
   */
  calls?(ctx: KernelCallContext): KernelCall[];
  /** Bytes of read-only data shared by all keys (models), laid out once in the static region. */
  readonly staticBytes?: number;
  /** Receives the engine's memory and this analysis's static region once, before any task. */
  attach?(memory: WebAssembly.Memory, kernels: KernelExports, staticPtr: number): void;
  /** Initialises a new key's state block (runs on the engine thread); `key` is the key's name. */
  initKey(kernels: KernelExports, statePtr: number, key: string): void;
}

export interface StreamEngineOptions {
  /** The analyses, run in this order on every buffer; each key has a state block per analysis. */
  kernels: readonly StreamKernel[];
  /** Worker threads; 0 runs kernels on the engine thread. */
  workers: number;
  /** Key groups: the unit of parallelism and of ordering. */
  groups: number;
  keysMax: number;
  /** Records per group buffer (per kernel task). */
  batchRecordsMax: number;
  /** Allowed lateness in time units; null keeps arrival order and only flags out-of-order records. */
  lateness: number | null;
  reorderRecordsPerKeyMax: number;
  /** Fixed-width bytes carried with each record to the kernels (batches' `payload`); default 0. */
  payloadBytes?: number;
  /**
   * Where the kernel tasks run, when not on the engine's own pool of `workers` threads (or inline):
   * given the engine's memory and the compiled kernel module, an executor that runs each task's
   * calls over that memory — e.g. a thread the caller already keeps busy (the serial job's ledger
   * thread), so that no pool thread is woken per task. `workers` is then not used.
   */
  executor?: (memory: WebAssembly.Memory, module: WebAssembly.Module) => KernelExecutor;
  /**
   * Keys `a/b/…` that share their first `parts` parts share a group (one sensor's charts per
   * operating mode, at most `keysPerPrefix` of them): their rows reach the outputs in their order
   * across those keys. Groups are sized for the prefixes hashing unevenly (the mean number per
   * group + 6 standard deviations + 6); should one still fill, a key goes to the next group and
   * keeps its order within itself only. Undefined: keys are grouped one by one.
   */
  groupByKeyPrefix?: { parts: number; keysPerPrefix: number };
}

export const DEFAULT_ENGINE_OPTIONS = {
  workers: DEFAULT_WORKERS,
  groups: 16,
  keysMax: 4096,
  batchRecordsMax: 4096,
  lateness: null,
  reorderRecordsPerKeyMax: 65536,
} as const satisfies Omit<StreamEngineOptions, "kernels">;

/** Record flag: the record's time is behind the newest time its key had when it arrived. */
export const FLAG_OUT_OF_ORDER = 1;

/** Records of one group in a row from which accepting copies them as columns (below: one by one; a copy has a fixed cost). */
const RUN_COPY_MIN = 32;

/** The outputs of one finished kernel task. Views into shared memory: valid during the callback only. */
export interface OutputChunk {
  group: number;
  length: number;
  keyIds: Uint32Array;
  positions: Float64Array;
  flags: Uint8Array;
  times: Float64Array;
  values: Float64Array;
  /** Per analysis (in `kernels` order): `length` rows of `outFields[k]` f64. */
  outs: Float64Array[];
  outFields: readonly number[];
  /** The records' payload bytes (`payloadBytes` each); empty when the engine carries none. */
  payload: Uint8Array;
  /** Per analysis: the row indices its kernel listed as events (StreamKernel.eventRows), else null. */
  events: ReadonlyArray<Uint32Array | null>;
}

export interface EngineSinks {
  onOutput(chunk: OutputChunk): void;
  /** A record later than the allowed lateness: not processed, handed here to count and route. */
  onLate?(record: PendingRecord): void;
}

export interface EngineMetrics {
  recordsIn: number;
  recordsOut: number;
  recordsLate: number;
  recordsOutOfOrder: number;
  reorderPending: number;
  reorderForcedReleases: number;
  tasks: number;
  tasksInFlight: number;
  keys: number;
  /** Milliseconds the kernels have run, summed over worker threads. */
  kernelBusyMs: number;
  workers: number;
}

export class StreamEngine {
  readonly keys: KeyDictionary;
  readonly layout: MemoryLayout;
  readonly memory: WebAssembly.Memory;
  readonly options: StreamEngineOptions;
  private readonly kernels: KernelExports;
  private readonly executor: KernelExecutor;
  private readonly groups: GroupBuffers[];
  private readonly reorder: ReorderBuffer | null;
  private readonly newestTime: Float64Array;
  private readonly f64: Float64Array;
  private readonly u32: Uint32Array;
  private readonly u8: Uint8Array;
  private readonly payloadBytes: number;
  private readonly released: PendingRecord[] = [];
  private failure: Error | null = null;
  private serial: Promise<unknown> = Promise.resolve();
  private readonly counts = { recordsIn: 0, recordsOut: 0, recordsLate: 0, recordsOutOfOrder: 0, tasks: 0, inFlight: 0 };
  /** Byte offset of each analysis's state inside a key's block. */
  private readonly stateOffsets: number[];
  private readonly stateStride: number;
  private readonly outFields: number[];
  /** f64 offset of each analysis's output rows inside a buffer's out region. */
  private readonly outOffsets: number[];
  /** Static region pointer of each analysis (0: none). */
  private readonly staticPtrs: number[];

  constructor(
    options: StreamEngineOptions,
    private readonly sinks: EngineSinks,
  ) {
    validateEngineOptions(options);
    this.options = options;
    this.keys = new KeyDictionary(options.groups, slotsPerGroupOf(options), options.groupByKeyPrefix?.parts);
    this.stateOffsets = [];
    this.outFields = options.kernels.map((k) => k.outFields);
    this.outOffsets = [];
    let stride = 0;
    let fields = 0;
    for (const k of options.kernels) {
      this.stateOffsets.push(stride);
      this.outOffsets.push(fields * options.batchRecordsMax);
      stride += k.stateBytesPerKey;
      fields += k.outFields;
    }
    this.stateStride = Math.max(8, stride);
    const staticSizes = options.kernels.map((k) => Math.ceil((k.staticBytes ?? 0) / 64) * 64);
    this.layout = new MemoryLayout({
      groups: options.groups,
      slotsPerGroup: this.keys.slotsPerGroup,
      stateStride: this.stateStride,
      batchRecordsMax: options.batchRecordsMax,
      outFields: fields,
      staticBytes: staticSizes.reduce((a, b) => a + b, 0),
      payloadBytes: options.payloadBytes ?? 0,
      eventLists: options.kernels.filter((k) => k.eventRows === true).length,
    });
    this.staticPtrs = [];
    let staticAt = this.layout.staticBase;
    for (const size of staticSizes) {
      this.staticPtrs.push(size > 0 ? staticAt : 0);
      staticAt += size;
    }
    this.memory = createSharedMemory(this.layout.pages);
    this.kernels = instantiateKernels(this.memory);
    options.kernels.forEach((k, i) => k.attach?.(this.memory, this.kernels, this.staticPtrs[i]));
    this.executor = options.executor?.(this.memory, compileKernels()) ?? createKernelExecutor(this.memory, options.workers, options.groups);
    this.f64 = new Float64Array(this.memory.buffer);
    this.u32 = new Uint32Array(this.memory.buffer);
    this.u8 = new Uint8Array(this.memory.buffer);
    this.payloadBytes = options.payloadBytes ?? 0;
    this.groups = [];
    for (let g = 0; g < options.groups; g++) this.groups.push(new GroupBuffers(this.layout, g, options.batchRecordsMax));
    this.reorder = options.lateness === null ? null : new ReorderBuffer(options.lateness, options.reorderRecordsPerKeyMax);
    this.newestTime = new Float64Array(this.keys.capacity).fill(-Infinity);
  }

  /** The id of a key, creating and initialising its state on first sight. */
  internKey(name: string): number {
    return this.keys.intern(name, (id) => {
      const block = this.layout.statePtr(this.keys.group(id), this.keys.slot(id));
      this.options.kernels.forEach((k, i) => k.initKey(this.kernels, block + this.stateOffsets[i], name));
    });
  }

  /**
   * Runs `fn` on one key's state block of analysis `kernelIndex`, on the engine thread, once no
   * task of the key's group is in flight (limits changes, re-baselines). Ordered with `push`:
   * records accepted before this call are processed with the old state.
   */
  withKeyState<T>(keyId: number, kernelIndex: number, fn: (kernels: KernelExports, statePtr: number) => T): Promise<T> {
    return this.exclusive(async () => {
      const group = this.keys.group(keyId);
      const gb = this.groups[group];
      if (gb.count > 0) await this.dispatch(group);
      await gb.inFlight;
      this.throwIfFailed();
      const block = this.layout.statePtr(group, this.keys.slot(keyId));
      return fn(this.kernels, block + this.stateOffsets[kernelIndex]);
    });
  }

  /**
   * Accepts a batch (its key ids from {@link internKey}). Resolves when every record is in a
   * group buffer; waits while the groups it needs are busy, which is the backpressure a source feels.
   * The batch may be reused by the caller once this resolves.
   */
  push(batch: RecordBatch): Promise<void> {
    checkBatch(batch, this.keys.size, this.payloadBytes);
    return this.exclusive(() => this.accept(batch));
  }

  /**
   * Runs `fn` on the engine thread when no task is in flight, in order with `push` (what was
   * accepted before is processed before `fn` runs). For swapping shared data such as a model:
   * every batch sees either the old or the new, never a mix.
   */
  quiesce<T>(fn: () => T): Promise<T> {
    return this.exclusive(async () => {
      for (let g = 0; g < this.groups.length; g++) if (this.groups[g].count > 0) await this.dispatch(g);
      await Promise.all(this.groups.map((gb) => gb.inFlight));
      this.throwIfFailed();
      return fn();
    });
  }

  /**
   * The state of the keys `include` selects (all by default), taken when no task is in flight,
   * after every record accepted before this call. With a lateness, records still waiting in the
   * reorder buffer are not in the state: checkpoint where the source can resume before them
   * (flush(true) first, or use no lateness).
   */
  checkpoint(position: number, include: (key: string) => boolean = () => true): Promise<EngineCheckpoint> {
    return this.quiesce(() => {
      const ids: number[] = [];
      for (let id = 0; id < this.keys.size; id++) if (include(this.keys.name(id))) ids.push(id);
      const stride = this.stateStride;
      const state = new Uint8Array(ids.length * stride);
      ids.forEach((id, i) => {
        const block = this.layout.statePtr(this.keys.group(id), this.keys.slot(id));
        state.set(this.u8.subarray(block, block + stride), i * stride);
      });
      return {
        kernels: this.options.kernels.map((k) => ({ name: k.name, stateBytesPerKey: k.stateBytesPerKey })),
        stateStride: stride,
        position,
        keys: ids.map((id) => ({
          name: this.keys.name(id),
          newestTime: Number.isFinite(this.newestTime[id]) ? this.newestTime[id] : null,
        })),
        state,
      };
    });
  }

  /**
   * Puts a checkpoint's keys back: each key gets a slot (new or its existing one) and its state
   * block is overwritten with the checkpoint's. The analyses must be the same, in the same order.
   */
  restore(checkpoint: EngineCheckpoint): Promise<void> {
    const mine = this.options.kernels.map((k) => `${k.name}:${k.stateBytesPerKey}`).join(",");
    const theirs = checkpoint.kernels.map((k) => `${k.name}:${k.stateBytesPerKey}`).join(",");
    if (mine !== theirs || checkpoint.stateStride !== this.stateStride) {
      return Promise.reject(new CheckpointError(`checkpoint of analyses [${theirs}] cannot restore into [${mine}]`));
    }
    return this.quiesce(() => {
      const stride = this.stateStride;
      checkpoint.keys.forEach((k, i) => {
        const id = this.internKey(k.name);
        const block = this.layout.statePtr(this.keys.group(id), this.keys.slot(id));
        this.u8.set(checkpoint.state.subarray(i * stride, (i + 1) * stride), block);
        this.newestTime[id] = k.newestTime ?? -Infinity;
      });
    });
  }

  /** Dispatches partly filled buffers and waits for all tasks; `end` also releases the reorder buffers. */
  flush(end = false): Promise<void> {
    return this.exclusive(async () => {
      if (end && this.reorder !== null) {
        this.released.length = 0;
        this.reorder.drain(this.released);
        await this.enqueueReleased();
      }
      for (let g = 0; g < this.groups.length; g++) if (this.groups[g].count > 0) await this.dispatch(g);
      await Promise.all(this.groups.map((gb) => gb.inFlight));
      this.throwIfFailed();
    });
  }

  metrics(): EngineMetrics {
    return {
      recordsIn: this.counts.recordsIn,
      recordsOut: this.counts.recordsOut,
      recordsLate: this.counts.recordsLate,
      recordsOutOfOrder: this.counts.recordsOutOfOrder,
      reorderPending: this.reorder?.size ?? 0,
      reorderForcedReleases: this.reorder?.forcedReleases ?? 0,
      tasks: this.counts.tasks,
      tasksInFlight: this.counts.inFlight,
      keys: this.keys.size,
      kernelBusyMs: this.executor.busyMs(),
      workers: this.executor.workers,
    };
  }

  /** Flushes everything (end of input) and stops the workers. */
  async close(): Promise<void> {
    try {
      await this.flush(true);
    } finally {
      // A flush that failed (a kernel task failed) leaves other groups' tasks in flight: the pool
      // is destroyed only once they are settled (they never reject; their failures are recorded).
      await Promise.all(this.groups.map((gb) => gb.inFlight));
      await this.executor.close();
    }
  }

  // ---- internals ----

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.serial.then(fn, fn);
    this.serial = run.catch(() => undefined);
    return run;
  }

  private async accept(batch: RecordBatch): Promise<void> {
    this.throwIfFailed();
    this.counts.recordsIn += batch.length;
    const { keyIds, times, values, positions } = batch;
    if (this.reorder === null) {
      for (let i = this.acceptInOrder(batch, 0); i < batch.length; i = this.acceptInOrder(batch, i)) {
        await this.dispatch(this.keys.group(keyIds[i]));
      }
      return;
    }
    for (let i = 0; i < batch.length; i++) {
      this.released.length = 0;
      const record: PendingRecord = { keyId: keyIds[i], time: times[i], value: values[i], position: positions[i] };
      if (this.payloadBytes > 0) record.payload = (batch.payload as Uint8Array).slice(i * this.payloadBytes, (i + 1) * this.payloadBytes);
      if (!this.reorder.offer(record, this.released)) {
        this.counts.recordsLate++;
        this.sinks.onLate?.(record);
        continue;
      }
      if (this.released.length > 0) await this.enqueueReleased();
    }
  }

  /**
   * Records `from` … of a batch into their group buffers, in arrival order, until one's buffer is
   * full: returns that record's index (to dispatch the buffer and go on), or the batch's length.
   * Synchronous, so that no record's time or value lives across an await (V8 would box each one).
   */
  private acceptInOrder(batch: RecordBatch, from: number): number {
    if (this.payloadBytes === 0) return this.acceptInOrderBare(batch, from);
    const { keyIds, times, values, positions } = batch;
    const words = payloadWords(batch.payload, this.payloadBytes);
    for (let i = from; i < batch.length; i++) {
      const id = keyIds[i];
      const gb = this.groups[this.keys.group(id)];
      if (gb.count === this.options.batchRecordsMax) return i;
      const t = times[i];
      let flags = 0;
      if (t < this.newestTime[id]) {
        flags = FLAG_OUT_OF_ORDER;
        this.counts.recordsOutOfOrder++;
      } else this.newestTime[id] = t;
      this.write(gb, id, t, values[i], positions[i], flags, batch.payload, i, words);
    }
    return batch.length;
  }

  /**
   * {@link acceptInOrder} without payloads, a run at a time: the records from `i` on that go to
   * one group (all of them when the engine has one group, as an ingest worker's has), up to the
   * room left in its buffer, are copied as columns — times, values, key ids, positions — and only
   * the slot and the order check (event time against the key's newest) are per record. The same
   * buffer contents and counts as one record at a time; a short run (keys of several groups
   * interleaved) takes the per-record path, where a copy per run would cost more.
   */
  private acceptInOrderBare(batch: RecordBatch, from: number): number {
    const { keyIds } = batch;
    const { groups, keys } = this;
    const max = this.options.batchRecordsMax;
    const n = batch.length;
    const single = groups.length === 1;
    let i = from;
    while (i < n) {
      const g = keys.group(keyIds[i]);
      const gb = groups[g];
      const k = gb.count;
      if (k === max) break;
      const limit = Math.min(n, i + max - k);
      let end = i + 1;
      if (single) end = limit;
      else while (end < limit && keys.group(keyIds[end]) === g) end++;
      if (end - i >= RUN_COPY_MIN) this.copyRun(batch, i, end, gb);
      else this.writeRecords(batch, i, end, gb);
      i = end;
    }
    return i;
  }

  /** Records i … end−1 of a batch, all of group buffer `gb` (room checked), as column copies. */
  private copyRun(batch: RecordBatch, i: number, end: number, gb: GroupBuffers): void {
    const { keyIds, times } = batch;
    const { keys, newestTime, u32 } = this;
    const k0 = gb.count;
    const filling = gb.filling;
    const off = gb.offsets[filling];
    this.f64.set(times.subarray(i, end), (off.times >>> 3) + k0);
    this.f64.set(batch.values.subarray(i, end), (off.values >>> 3) + k0);
    gb.keyIds[filling].set(keyIds.subarray(i, end), k0);
    gb.positions[filling].set(batch.positions.subarray(i, end), k0);
    const flags = gb.flags[filling];
    const slots = (off.slots >>> 2) + k0 - i;
    const at = k0 - i;
    let outOfOrder = 0;
    for (let r = i; r < end; r++) {
      const id = keyIds[r];
      u32[slots + r] = keys.slot(id);
      const t = times[r];
      if (t < newestTime[id]) {
        flags[at + r] = FLAG_OUT_OF_ORDER;
        outOfOrder++;
      } else {
        flags[at + r] = 0;
        newestTime[id] = t;
      }
    }
    gb.count = k0 + end - i;
    this.counts.recordsOutOfOrder += outOfOrder;
  }

  /** Records i … end−1 of a batch, all of group buffer `gb` (room checked), one at a time. */
  private writeRecords(batch: RecordBatch, i: number, end: number, gb: GroupBuffers): void {
    const { keyIds, times, values, positions } = batch;
    const { keys, newestTime, f64, u32 } = this;
    const filling = gb.filling;
    const off = gb.offsets[filling];
    let outOfOrder = 0;
    for (let r = i; r < end; r++) {
      const id = keyIds[r];
      const k = gb.count++;
      const t = times[r];
      let flags = 0;
      if (t < newestTime[id]) {
        flags = FLAG_OUT_OF_ORDER;
        outOfOrder++;
      } else newestTime[id] = t;
      u32[(off.slots >>> 2) + k] = keys.slot(id);
      f64[(off.times >>> 3) + k] = t;
      f64[(off.values >>> 3) + k] = values[r];
      gb.keyIds[filling][k] = id;
      gb.positions[filling][k] = positions[r];
      gb.flags[filling][k] = flags;
    }
    this.counts.recordsOutOfOrder += outOfOrder;
  }

  private async enqueueReleased(): Promise<void> {
    for (const r of this.released) {
      const gb = this.groups[this.keys.group(r.keyId)];
      if (gb.count === this.options.batchRecordsMax) await this.dispatch(gb.group);
      this.write(gb, r.keyId, r.time, r.value, r.position, 0, r.payload, 0, null);
    }
  }

  private write(
    gb: GroupBuffers,
    id: number,
    t: number,
    x: number,
    position: number,
    flags: number,
    payload: Uint8Array | undefined,
    index: number,
    words: Uint32Array | null,
  ): void {
    const k = gb.count++;
    const off = gb.offsets[gb.filling];
    if (this.payloadBytes > 0) {
      const p = this.payloadBytes;
      if (words !== null) {
        // Word by word: no view object per record (the buffer's payload is 64-byte aligned, p a multiple of 4).
        const n = p >>> 2;
        const from = index * n;
        const to = (off.payload + k * p) >>> 2;
        for (let w = 0; w < n; w++) this.u32[to + w] = words[from + w];
      } else this.u8.set((payload as Uint8Array).subarray(index * p, (index + 1) * p), off.payload + k * p);
    }
    this.u32[(off.slots >>> 2) + k] = this.keys.slot(id);
    this.f64[(off.times >>> 3) + k] = t;
    this.f64[(off.values >>> 3) + k] = x;
    gb.keyIds[gb.filling][k] = id;
    gb.positions[gb.filling][k] = position;
    gb.flags[gb.filling][k] = flags;
  }

  /** Sends the group's filling buffer to the executor once its previous task is done. */
  private async dispatch(group: number): Promise<void> {
    const gb = this.groups[group];
    await gb.inFlight;
    this.throwIfFailed();
    const which = gb.filling;
    const n = gb.count;
    const off = gb.offsets[which];
    const base = this.layout.statePtr(group, 0);
    const outs = this.outOffsets.map((o) => off.out + o * 8);
    const calls: KernelCall[] = [];
    let list = 0;
    this.options.kernels.forEach((k, i) => {
      const stateBase = base + this.stateOffsets[i];
      if (k.calls !== undefined) {
        const ctx = {
          stateBase,
          stateStride: this.stateStride,
          slots: off.slots,
          times: off.times,
          values: off.values,
          n,
          out: outs[i],
          outs,
          staticPtr: this.staticPtrs[i],
          payload: this.payloadBytes > 0 ? off.payload : 0,
          payloadBytes: this.payloadBytes,
        };
        calls.push(...k.calls(ctx));
      } else {
        const args = [stateBase, this.stateStride, off.slots, off.times, off.values, n, outs[i], ...k.extraArgs];
        if (k.eventRows === true) args.push(this.layout.eventList(off, list++));
        calls.push({ fn: k.processFn, args });
      }
    });
    this.counts.tasks++;
    this.counts.inFlight++;
    gb.inFlight = this.executor
      .run(calls.length === 1 ? calls[0] : { calls }, group)
      .then((processed) => {
        this.counts.inFlight--;
        if (processed !== n) throw new KernelTaskError(group, `kernel processed ${processed} of ${n} records`);
        this.deliver(gb, which, n);
      })
      .catch((error: Error) => {
        if (this.failure === null) this.failure = error;
      });
    gb.filling = which === 0 ? 1 : 0;
    gb.count = 0;
  }

  private deliver(gb: GroupBuffers, which: 0 | 1, n: number): void {
    const off = gb.offsets[which];
    const outBase = off.out >>> 3;
    this.counts.recordsOut += n;
    this.sinks.onOutput({
      group: gb.group,
      length: n,
      keyIds: gb.keyIds[which],
      positions: gb.positions[which],
      flags: gb.flags[which],
      times: this.f64.subarray(off.times >>> 3, (off.times >>> 3) + n),
      values: this.f64.subarray(off.values >>> 3, (off.values >>> 3) + n),
      outs: this.outFields.map((f, i) => this.f64.subarray(outBase + this.outOffsets[i], outBase + this.outOffsets[i] + n * f)),
      outFields: this.outFields,
      payload: this.u8.subarray(off.payload, off.payload + n * this.payloadBytes),
      events: this.eventLists(off),
    });
  }

  /** Each analysis's event list of a finished buffer: a view of the indices its kernel wrote (count first). */
  private eventLists(off: BufferOffsets): Array<Uint32Array | null> {
    let list = 0;
    return this.options.kernels.map((k) => {
      if (k.eventRows !== true) return null;
      const at = this.layout.eventList(off, list++) >>> 2;
      return this.u32.subarray(at + 1, at + 1 + this.u32[at]);
    });
  }

  private throwIfFailed(): void {
    if (this.failure !== null) throw this.failure;
  }
}

export function validateEngineOptions(o: StreamEngineOptions): void {
  const positive: Array<keyof StreamEngineOptions> = ["groups", "keysMax", "batchRecordsMax", "reorderRecordsPerKeyMax"];
  if (o.payloadBytes !== undefined && (!Number.isInteger(o.payloadBytes) || o.payloadBytes < 0 || o.payloadBytes > 4096)) {
    throw new ConfigError("payloadBytes", `must be an integer in 0..4096, got ${o.payloadBytes}`);
  }
  for (const name of positive) {
    const v = o[name] as number;
    if (!Number.isInteger(v) || v < 1) throw new ConfigError(name, `must be a positive integer, got ${v}`);
  }
  if (!Number.isInteger(o.workers) || o.workers < 0 || o.workers > 256) {
    throw new ConfigError("workers", `must be an integer in 0..256, got ${o.workers}`);
  }
  if (o.keysMax < o.groups) throw new ConfigError("keysMax", `(${o.keysMax}) must be at least groups (${o.groups})`);
  if (o.lateness !== null && !(o.lateness >= 0 && Number.isFinite(o.lateness))) {
    throw new ConfigError("lateness", `must be a finite duration ≥ 0 or null, got ${o.lateness}`);
  }
  if (o.kernels.length === 0) throw new ConfigError("kernels", "at least one analysis is needed");
  for (const k of o.kernels) {
    if (k.stateBytesPerKey % 8 !== 0 || k.stateBytesPerKey < 0) {
      throw new ConfigError(`${k.name}.stateBytesPerKey`, `must be a multiple of 8, got ${k.stateBytesPerKey}`);
    }
    if (k.eventRows === true && k.calls !== undefined) {
      throw new ConfigError(
        `${k.name}.eventRows`,
        "an event list is passed to the standard call only; an analysis with its own calls cannot have one",
      );
    }
  }
}

/** A batch's payload as 32-bit words, when records and the buffer are word-aligned (else null: copied byte-wise). */
function payloadWords(payload: Uint8Array | undefined, payloadBytes: number): Uint32Array | null {
  if (payload === undefined || payloadBytes === 0 || (payloadBytes & 3) !== 0 || (payload.byteOffset & 3) !== 0) return null;
  return new Uint32Array(payload.buffer, payload.byteOffset, payload.length >>> 2);
}

/**
 * The WASM boundary check: every key known, every time and value finite. Over the columns first
 * — the largest key id, and a sum of t·0 + x·0, which is NaN when any of them is NaN or ±∞ —
 * and record by record only when that fails, to name the first bad record.
 */
function checkBatch(batch: RecordBatch, keys: number, payloadBytes: number): void {
  const { keyIds, times, values } = batch;
  if (batch.length > values.length) throw new BatchRejectedError(`batch length ${batch.length} exceeds its columns (${values.length})`);
  if (payloadBytes > 0 && (batch.payload === undefined || batch.payload.length < batch.length * payloadBytes)) {
    throw new BatchRejectedError(
      `the engine carries ${payloadBytes} payload bytes per record; the batch has ${batch.payload?.length ?? 0} bytes for ${batch.length} records`,
    );
  }
  let keyMax = 0;
  let zero = 0;
  for (let i = 0; i < batch.length; i++) {
    const id = keyIds[i];
    if (id > keyMax) keyMax = id;
    zero += times[i] * 0 + values[i] * 0;
  }
  if (batch.length > 0 && (keyMax >= keys || zero !== 0)) rejectFirstBad(batch, keys);
}

/** Throws for the first record of the batch with an unknown key or a time or value not finite. */
function rejectFirstBad(batch: RecordBatch, keys: number): void {
  const { keyIds, times, values } = batch;
  for (let i = 0; i < batch.length; i++) {
    if (keyIds[i] >= keys) throw new BatchRejectedError(`record ${i}: key id ${keyIds[i]} was never interned`);
    if (!Number.isFinite(times[i])) throw new BatchRejectedError(`record ${i}: time ${times[i]} is not finite`);
    if (!Number.isFinite(values[i])) throw new BatchRejectedError(`record ${i}: value ${values[i]} is not finite`);
  }
}

class GroupBuffers {
  filling: 0 | 1 = 0;
  count = 0;
  inFlight: Promise<void> = Promise.resolve();
  readonly offsets: [BufferOffsets, BufferOffsets];
  readonly keyIds: [Uint32Array, Uint32Array];
  readonly positions: [Float64Array, Float64Array];
  readonly flags: [Uint8Array, Uint8Array];

  constructor(
    layout: MemoryLayout,
    readonly group: number,
    capacity: number,
  ) {
    this.offsets = [layout.buffer(group, 0), layout.buffer(group, 1)];
    this.keyIds = [new Uint32Array(capacity), new Uint32Array(capacity)];
    this.positions = [new Float64Array(capacity), new Float64Array(capacity)];
    this.flags = [new Uint8Array(capacity), new Uint8Array(capacity)];
  }
}

/**
 * Key slots per group: an even share of keysMax, or with prefix grouping room for the prefixes a
 * group may get by hashing — Poisson with mean μ = prefixes / groups, taken as μ + 6√μ + 6 —
 * times the keys per prefix, never more than keysMax.
 */
function slotsPerGroupOf(o: StreamEngineOptions): number {
  const even = Math.ceil(o.keysMax / o.groups);
  const p = o.groupByKeyPrefix;
  if (p === undefined) return even;
  const mean = Math.ceil(o.keysMax / p.keysPerPrefix) / o.groups;
  return Math.min(o.keysMax, Math.max(even, Math.ceil(mean + 6 * Math.sqrt(mean) + 6) * p.keysPerPrefix));
}
