/**
 * The duplicate ledger on a thread of its own (docs/serial-job.md, "Measured"): the thread owns a
 * {@link SerialLedger} — its filter generations, batches and exact serial sets — and asks it, in
 * the order they were submitted, about batches of events whose payloads the caller wrote into
 * shared memory (encodeSerialRanges: text whole, in ASCII), writing each event's verdict bits
 * into its payload as the in-thread encoder's `settle` does (SerialInput.askPayloads, the same
 * code). The caller fills one slot while the thread asks about another: `submit` hands a slot
 * over through shared memory (its number into a ring, a counter the thread waits on with
 * Atomics.waitAsync — no message, and no wake-up while the thread is busy; the slots and the
 * requests on the port are answered in the one order they were made, ledger-slots.ts), `wait` blocks until
 * the thread has answered it (Atomics, no event-loop turn). Line names seen for the first time and
 * events with strings go beside the slot as one message on a port of their own, which the thread
 * reads synchronously when it reaches the slot (receiveMessageOnPort).
 *
 * Bounded: `slots` batches of `batchRecords` events each, allocated once; line names cross once,
 * on first sight, then as 16-bit ids (linesMax at most).
 */
import { join } from "node:path";
import { MessageChannel, type MessagePort, Worker } from "node:worker_threads";
import { ConfigError, KernelTaskError, type KernelExecutor, type KernelTask, packageRoot, type TimeUnit } from "../../engine/core/mod.js";
import { SERIAL_PAYLOAD_BYTES } from "./layout.js";
import { bloomBlocks } from "./bloom-filter.js";
import {
  DEFAULT_LEDGER_OPTIONS,
  filterFalsePositiveRateAt,
  type LedgerCounters,
  type LedgerSnapshot,
  type SerialLedgerOptions,
} from "./ledger.js";
import {
  countEntry,
  HANDED,
  handOverWords,
  requestsEntry,
  ringEntry,
  SLOT_FAILED,
  SLOT_FREE,
  SLOT_SUBMITTED,
  SLOT_SUBMITTED_EXTRAS,
} from "./ledger-slots.js";
import type { SerialFields } from "./payload.js";

export interface SerialLedgerThreadOptions {
  /** Events per slot at most (≤ 1024, the encoder's staging bound). */
  batchRecords: number;
  /** Slots the caller and the thread take turns on (≥ 2: one filled while another is asked about). */
  slots: number;
  /** Distinct lines at most (their ids cross as 16 bits). */
  linesMax: number;
  ledger?: Partial<SerialLedgerOptions>;
  timeUnit: TimeUnit;
  /** Serial patterns per GTIN (parseSerialPatterns), asked on the thread as in-thread. */
  patterns?: ReadonlyMap<string, RegExp>;
  /**
   * A stream engine's memory and kernel module: the thread also runs that engine's kernel tasks
   * ({@link SerialLedgerThread.kernelExecutor}), in order with the slots.
   */
  kernels?: LedgerThreadKernels;
}

/** What the thread needs to run an engine's kernel tasks: its shared memory and the compiled module. */
export interface LedgerThreadKernels {
  memory: WebAssembly.Memory;
  module: WebAssembly.Module;
}

/** One slot's shared columns: event k's payload at `offsets[k]` of `payload`, its time and line id. */
export interface LedgerSlot {
  payload: Uint8Array;
  offsets: Int32Array;
  times: Float64Array;
  lines: Uint16Array;
}

/** What the thread reports about itself (SerialLedgerThread.report). */
export interface LedgerThreadReport {
  /** Events the thread's ledger was asked about. */
  events: number;
  /** The thread's CPU time, µs (NaN where the platform cannot tell). */
  cpuMicros: number;
}

/** What crosses to the thread at start (ledger-worker.ts reads it). */
export interface LedgerWorkerData {
  batchRecords: number;
  ledger: Partial<SerialLedgerOptions>;
  timeUnit: TimeUnit;
  patterns: Map<string, RegExp> | undefined;
  slots: Array<{ payload: SharedArrayBuffer; offsets: SharedArrayBuffer; times: SharedArrayBuffer; lines: SharedArrayBuffer }>;
  /** Int32 per slot: SLOT_FREE, SLOT_SUBMITTED, SLOT_SUBMITTED_EXTRAS, SLOT_FAILED. */
  state: SharedArrayBuffer;
  /** The hand-over words (ledger-slots.ts HANDED, the ring, the slots' event counts). */
  handOver: SharedArrayBuffer;
  /** Where a slot's {@link SlotExtras} arrive (one message per slot submitted as SLOT_SUBMITTED_EXTRAS, in order). */
  extras: MessagePort;
  /** Float64 pairs per slot: the filter's keys in its current and previous generation (−1: none) right after the slot's events. */
  filterKeys: SharedArrayBuffer;
  kernels: LedgerThreadKernels | null;
}

/**
 * An event of a slot whose text is not in its payload whole, in ASCII (text past its field, not
 * ASCII): asked with its strings (SerialInput.encodeFields), which also write its payload.
 */
export interface SlotFieldsEvent {
  /** Its index in the slot. */
  k: number;
  fields: Omit<SerialFields, "ledgerBits">;
}

/** What goes beside a slot handed over: line names first seen since the last slot, events with strings. */
export interface SlotExtras {
  slot: number;
  names: string[];
  fields: SlotFieldsEvent[];
}

/** A message to the thread (each is answered after every slot handed over before it). */
export type LedgerWorkerRequest =
  | { kind: "report"; id: number }
  | { kind: "snapshot"; id: number }
  | { kind: "stats"; id: number }
  | { kind: "restore"; id: number; snapshot: LedgerSnapshot }
  | { kind: "kernel"; id: number; task: KernelTask };

/** The thread's answer to a request with an id. */
export type LedgerWorkerReply =
  | ({ kind: "report"; id: number } & LedgerThreadReport)
  | { kind: "snapshot"; id: number; snapshot: LedgerSnapshot }
  | { kind: "stats"; id: number; stats: LedgerCounters }
  | { kind: "restore"; id: number; error: string | null }
  /** A kernel task's result (records processed) and the milliseconds its calls took, or why it failed. */
  | { kind: "kernel"; id: number; result: number; ms: number; error: string | null };

export { ownThreadCpuMicros, SLOT_FAILED, SLOT_FREE, SLOT_SUBMITTED, SLOT_SUBMITTED_EXTRAS } from "./ledger-slots.js";

export class SerialLedgerThread {
  readonly slots: LedgerSlot[];
  private readonly worker: Worker;
  private readonly state: Int32Array;
  private readonly handOver: Int32Array;
  /** Slots handed over so far (modulo 2^32): the next one's ring entry. */
  private handed = 0;
  /** Requests posted to the thread so far (modulo 2^32): each slot handed over notes how many came before it. */
  private requests = 0;
  private readonly extras: MessagePort;
  private readonly filterKeys: Float64Array;
  /** Blocks of each filter generation (the ledger's options'), with the key counts the filter's rate; found when a rate is first asked (−1: not yet). */
  private filterBlocks = -1;
  private readonly lineIds = new Map<string, number>();
  /** Line names first seen since the last submit: they go with it. */
  private newNames: string[] = [];
  /** Events submitted per slot and not yet taken back ({@link take}). */
  private readonly pending: Int32Array;
  private failure: Error | null = null;
  private readonly replies = new Map<number, Waiting>();
  private nextId = 1;
  /** Milliseconds the engine's kernel tasks took on the thread. */
  private kernelMs = 0;

  constructor(private readonly o: SerialLedgerThreadOptions) {
    if (!(o.batchRecords >= 1 && o.batchRecords <= 1024))
      throw new ConfigError("batchRecords", `1…1024 for the ledger thread, got ${o.batchRecords}`);
    if (!(o.slots >= 2)) throw new ConfigError("slots", `at least 2, got ${o.slots}`);
    if (!(o.linesMax >= 1 && o.linesMax <= 65536)) throw new ConfigError("linesMax", `1…65536 for the ledger thread, got ${o.linesMax}`);
    const shared = Array.from({ length: o.slots }, () => ({
      payload: new SharedArrayBuffer(o.batchRecords * SERIAL_PAYLOAD_BYTES),
      offsets: new SharedArrayBuffer(4 * o.batchRecords),
      times: new SharedArrayBuffer(8 * o.batchRecords),
      lines: new SharedArrayBuffer(2 * o.batchRecords),
    }));
    this.slots = shared.map((s) => ({
      payload: new Uint8Array(s.payload),
      offsets: new Int32Array(s.offsets),
      times: new Float64Array(s.times),
      lines: new Uint16Array(s.lines),
    }));
    const state = new SharedArrayBuffer(4 * o.slots);
    const handOver = new SharedArrayBuffer(4 * handOverWords(o.slots));
    const filterKeys = new SharedArrayBuffer(16 * o.slots);
    const channel = new MessageChannel();
    this.extras = channel.port1;
    // Only posted on: it must not keep the process alive.
    this.extras.unref();
    this.pending = new Int32Array(o.slots);
    this.state = new Int32Array(state);
    this.handOver = new Int32Array(handOver);
    this.filterKeys = new Float64Array(filterKeys);
    const data: LedgerWorkerData = {
      batchRecords: o.batchRecords,
      ledger: { ...o.ledger },
      timeUnit: o.timeUnit,
      patterns: o.patterns === undefined ? undefined : new Map(o.patterns),
      slots: shared,
      state,
      handOver,
      extras: channel.port2,
      filterKeys,
      kernels: o.kernels ?? null,
    };
    this.worker = new Worker(ledgerWorkerScript(), { workerData: data, transferList: [channel.port2] });
    this.worker.on("message", (m: LedgerWorkerReply) => {
      const w = this.replies.get(m.id);
      this.replies.delete(m.id);
      w?.resolve(m);
    });
    this.worker.on("error", (e) => {
      this.failure = e;
      this.failWaiting(e);
    });
    this.worker.on("exit", (code) => {
      // No reply comes after this: later requests fail at once (a kernel task after close, say).
      this.failure ??= new Error(`ledger thread exited (code ${code})`);
      this.failWaiting(this.failure);
    });
  }

  /**
   * The engine's kernel executor on this thread (needs the `kernels` option): each task is a
   * message after the slots submitted before it, run over the engine's memory as a pool worker
   * runs it (runCalls). One thread: the tasks run one at a time, in the order dispatched.
   */
  kernelExecutor(): KernelExecutor {
    if (this.o.kernels === undefined) throw new ConfigError("kernels", "the ledger thread was started without an engine's kernels");
    return {
      workers: 1,
      run: (task: KernelTask, group: number) => this.runKernels(task, group),
      busyMs: () => this.kernelMs,
      // The thread is the job's; it stops with close().
      close: () => Promise.resolve(),
    };
  }

  /** The id of line `name` for a slot's `lines` column, given on first sight (ConfigError past linesMax). */
  lineId(name: string): number {
    let id = this.lineIds.get(name);
    if (id === undefined) {
      if (this.lineIds.size >= this.o.linesMax) throw new ConfigError("linesMax", `more than ${this.o.linesMax} lines`);
      id = this.lineIds.size;
      this.lineIds.set(name, id);
      this.newNames.push(name);
    }
    return id;
  }

  /** Hands slot `slot`'s first `n` events to the thread; the slot is the thread's until {@link wait} returns. */
  submit(slot: number, n: number, fields: SlotFieldsEvent[] = []): void {
    if (Atomics.load(this.state, slot) !== SLOT_FREE) throw new Error(`ledger thread: slot ${slot} submitted twice`);
    if (!(n >= 0 && n <= this.o.batchRecords)) throw new RangeError(`ledger thread: ${n} events in a slot of ${this.o.batchRecords}`);
    this.pending[slot] = n;
    const o = this.o;
    const extras = this.newNames.length > 0 || fields.length > 0;
    if (extras) {
      const m: SlotExtras = { slot, names: this.newNames, fields };
      this.extras.postMessage(m);
      this.newNames = [];
    }
    const words = this.handOver;
    words[countEntry(o.slots, slot)] = n;
    Atomics.store(this.state, slot, extras ? SLOT_SUBMITTED_EXTRAS : SLOT_SUBMITTED);
    words[ringEntry(o.slots, this.handed)] = slot;
    words[requestsEntry(o.slots, this.handed)] = this.requests;
    this.handed = (this.handed + 1) | 0;
    // The store publishes the words above (Atomics are sequentially consistent); notify wakes the thread only when it waits.
    Atomics.store(words, HANDED, this.handed);
    Atomics.notify(words, HANDED);
  }

  /** Blocks until the thread has answered slot `slot` (at once when it was not submitted). Throws when the thread failed. */
  wait(slot: number): void {
    for (;;) {
      const s = Atomics.load(this.state, slot);
      if (s === SLOT_FREE) return;
      if (s === SLOT_FAILED) throw new Error("ledger thread failed", { cause: this.failure ?? undefined });
      // Bounded waits: an exit without an answer (the error event needs the event loop) is seen by the caller's timeout.
      if (Atomics.wait(this.state, slot, s, 10_000) === "timed-out") throw new Error(`ledger thread: slot ${slot} unanswered after 10 s`);
    }
  }

  /**
   * Blocks until slot `slot` is answered; returns how many of its events were answered since it
   * was last taken (0: it was not submitted) — their verdict bits are in its payloads — and frees it.
   */
  take(slot: number): number {
    this.wait(slot);
    const n = this.pending[slot];
    this.pending[slot] = 0;
    return n;
  }

  /** The filter's false-positive rate right after the events of the slot last answered (after {@link take}). */
  filterRateAfter(slot: number): number {
    return this.filterRateAt(this.filterCurrentKeysAfter(slot), this.filterPreviousKeysAfter(slot));
  }

  /** Keys in the filter's current generation right after the events of the slot last answered. */
  filterCurrentKeysAfter(slot: number): number {
    return this.filterKeys[2 * slot];
  }

  /** Keys in the filter's previous generation right after the events of the slot last answered; −1: none. */
  filterPreviousKeysAfter(slot: number): number {
    return this.filterKeys[2 * slot + 1];
  }

  /** The thread's filter's false-positive rate at those key counts (ledger.ts filterFalsePositiveRateAt). */
  filterRateAt(currentKeys: number, previousKeys: number): number {
    if (this.filterBlocks < 0) {
      const ledger = { ...DEFAULT_LEDGER_OPTIONS, ...this.o.ledger };
      this.filterBlocks = bloomBlocks(ledger.filterCapacity, ledger.filterFpRate);
    }
    return filterFalsePositiveRateAt(this.filterBlocks, currentKeys, previousKeys);
  }

  /** Events asked and the thread's CPU time so far (after every submitted slot is answered). */
  async report(): Promise<LedgerThreadReport> {
    const r = await this.ask({ kind: "report", id: this.nextId++ });
    if (r.kind !== "report") throw new Error(`ledger thread: a ${r.kind} reply to a report`);
    return { events: r.events, cpuMicros: r.cpuMicros };
  }

  /** The ledger's snapshot (SerialLedger.snapshot) once every slot submitted before is answered. */
  async snapshot(): Promise<LedgerSnapshot> {
    const r = await this.ask({ kind: "snapshot", id: this.nextId++ });
    if (r.kind !== "snapshot") throw new Error(`ledger thread: a ${r.kind} reply to a snapshot`);
    return r.snapshot;
  }

  /** The ledger's counters (SerialLedger.stats) once every slot submitted before is answered. */
  async stats(): Promise<LedgerCounters> {
    const r = await this.ask({ kind: "stats", id: this.nextId++ });
    if (r.kind !== "stats") throw new Error(`ledger thread: a ${r.kind} reply to stats`);
    return r.stats;
  }

  /** Puts a snapshot into the thread's ledger (SerialLedger.restore); RangeError with its message when it does not fit. */
  async restore(snapshot: LedgerSnapshot): Promise<void> {
    const r = await this.ask({ kind: "restore", id: this.nextId++, snapshot });
    if (r.kind !== "restore") throw new Error(`ledger thread: a ${r.kind} reply to a restore`);
    if (r.error !== null) throw new RangeError(r.error);
  }

  private async runKernels(task: KernelTask, group: number): Promise<number> {
    const r = await this.ask({ kind: "kernel", id: this.nextId++, task });
    if (r.kind !== "kernel") throw new Error(`ledger thread: a ${r.kind} reply to a kernel task`);
    if (r.error !== null) throw new KernelTaskError(group, `kernel task on the ledger thread failed: ${r.error}`);
    this.kernelMs += r.ms;
    return r.result;
  }

  private ask(request: LedgerWorkerRequest): Promise<LedgerWorkerReply> {
    if (this.failure !== null) return Promise.reject(new Error("ledger thread failed", { cause: this.failure }));
    return new Promise((resolve, reject) => {
      this.replies.set(request.id, { resolve, reject });
      this.worker.postMessage(request);
      this.requests = (this.requests + 1) | 0;
    });
  }

  /** Every request still waiting for its reply fails with `cause` (the thread died: none will come). */
  private failWaiting(cause: Error): void {
    for (const w of this.replies.values()) w.reject(new Error("ledger thread failed", { cause }));
    this.replies.clear();
  }

  async close(): Promise<void> {
    this.extras.close();
    await this.worker.terminate();
  }
}

/** A request waiting for the thread's reply. */
interface Waiting {
  resolve(r: LedgerWorkerReply): void;
  reject(e: Error): void;
}

function ledgerWorkerScript(): string {
  const root = packageRoot(import.meta.url);
  if (root === null) throw new ConfigError("ledger thread", "package root not found: run `npm run build` first");
  return join(root, "dist", "operators", "serial", "ledger-worker.js");
}
