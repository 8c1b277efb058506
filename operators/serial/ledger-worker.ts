/**
 * The ledger thread's side (ledger-thread.ts): a SerialLedger and the serial encoder's payload
 * questions (SerialInput.askPayloads), answering each slot handed over in the order handed (the
 * hand-over ring in shared memory, waited on with Atomics.waitAsync so that the requests on the
 * port — kernel tasks, reports, snapshots — are served between slots): slots and requests in the
 * one order they were made (ledger-slots.ts).
 */
import { parentPort, receiveMessageOnPort, workerData } from "node:worker_threads";
// The web face and ledger-slots.ts, not engine/core/mod.ts and ledger-thread.ts: this thread's start
// is what its imports cost (the whole core — piscina, the logger — was ≈ 60 ms of CPU).
import { instantiateKernelModule, runCalls } from "../../engine/core/web.js";
import type { LedgerWorkerData, LedgerWorkerReply, LedgerWorkerRequest, SlotExtras, SlotFieldsEvent } from "./ledger-thread.js";
import {
  countEntry,
  HANDED,
  ownThreadCpuMicros,
  requestsEntry,
  ringEntry,
  SLOT_FAILED,
  SLOT_FREE,
  SLOT_SUBMITTED_EXTRAS,
  waitAsync,
} from "./ledger-slots.js";
import { SerialLedger } from "./ledger.js";
import { serialInput } from "./serial.js";

const d = workerData as LedgerWorkerData;
const ledger = new SerialLedger(d.ledger);
// The clock is never asked here: the caller wrote each arrival time into the payload.
const input = serialInput({ timeUnit: d.timeUnit, patterns: d.patterns, clock: () => Number.NaN }, ledger);
const state = new Int32Array(d.state);
const handOver = new Int32Array(d.handOver);
const slotCount = d.slots.length;
/** Slots taken from the hand-over ring so far (modulo 2^32, as HANDED counts them). */
let taken = 0;
/** Requests (messages on the port) handled so far (modulo 2^32). */
let handled = 0;
const filterKeys = new Float64Array(d.filterKeys);
const slots = d.slots.map((s) => ({
  payload: new Uint8Array(s.payload),
  offsets: new Int32Array(s.offsets),
  times: new Float64Array(s.times),
  lines: new Uint16Array(s.lines),
}));
const names: string[] = [];
const machines: string[] = new Array<string>(d.batchRecords).fill("");
let events = 0;
/** The engine's kernels over its memory, when the thread runs its tasks too (instantiated at start: a failure shows at once). */
const kernels =
  d.kernels === null
    ? null
    : (instantiateKernelModule(d.kernels.memory, d.kernels.module) as unknown as Record<string, (...args: number[]) => number>);

function reply(r: LedgerWorkerReply, transfer: ArrayBuffer[] = []): void {
  parentPort?.postMessage(r, transfer);
}

/** Events [from, to) of slot `s` asked from their payloads, in order. */
function askRun(s: (typeof slots)[number], from: number, to: number): void {
  if (to <= from) return;
  for (let k = from; k < to; k++) machines[k - from] = names[s.lines[k]];
  input.askPayloads(s.payload, s.offsets.subarray(from, to), machines, s.times.subarray(from, to), to - from);
}

/** A slot's `n` events in order: runs from their payloads, the events with strings (`fields`) between them. */
function askSlot(slot: number, n: number, fields: readonly SlotFieldsEvent[]): void {
  const s = slots[slot];
  let from = 0;
  for (const e of fields) {
    askRun(s, from, e.k);
    input.encodeFields(e.fields, s.times[e.k], s.payload, s.offsets[e.k]);
    from = e.k + 1;
  }
  askRun(s, from, n);
}

/** The extras handed with slot `slot` (posted before the slot was marked, so already on the port). */
function extrasOf(slot: number): SlotExtras {
  const m = receiveMessageOnPort(d.extras)?.message as SlotExtras | undefined;
  if (m === undefined || m.slot !== slot) throw new Error(`ledger thread: slot ${slot} handed with extras that are not there`);
  for (const name of m.names) names.push(name);
  return m;
}

/** Answers slot `slot`: its verdicts into its payloads, the filter's key counts after it, then frees it (or marks it failed). */
function answerSlot(slot: number): void {
  try {
    const n = handOver[countEntry(slotCount, slot)];
    const fields = Atomics.load(state, slot) === SLOT_SUBMITTED_EXTRAS ? extrasOf(slot).fields : [];
    askSlot(slot, n, fields);
    events += n;
    // The key counts, not the rate (a Poisson sum): the caller computes it where a verdict reads it.
    filterKeys[2 * slot] = ledger.filterCurrentKeys();
    filterKeys[2 * slot + 1] = ledger.filterPreviousKeys();
    Atomics.store(state, slot, SLOT_FREE);
  } catch (e) {
    Atomics.store(state, slot, SLOT_FAILED);
    throw e;
  } finally {
    Atomics.notify(state, slot);
  }
}

/** Every slot handed over and not yet answered, in the order handed, up to one handed after a request not yet handled. */
function answerHanded(): void {
  while (Atomics.load(handOver, HANDED) !== taken && ((handled - handOver[requestsEntry(slotCount, taken)]) | 0) >= 0) {
    answerSlot(handOver[ringEntry(slotCount, taken)]);
    taken = (taken + 1) | 0;
  }
}

/**
 * One chain of these runs from the start (never two: the requests only call answerHanded).
 * Answers what was handed, then waits (without blocking the port's requests) for the next hand-over;
 * when one came meanwhile, or a slot waits for a request still on the port, goes on after the
 * requests already queued (setImmediate).
 */
function serveHandOver(): void {
  answerHanded();
  const w = waitAsync(handOver, HANDED, taken);
  if (!w.async) setImmediate(serveHandOver);
  else void w.value.then(serveHandOver);
}

/** One kernel task of the engine, as a pool worker runs it. */
function runKernelTask(m: Extract<LedgerWorkerRequest, { kind: "kernel" }>): void {
  try {
    if (kernels === null) throw new Error("this ledger thread was started without the engine's kernels");
    const [result, ms] = runCalls(kernels, m.task);
    reply({ kind: "kernel", id: m.id, result, ms, error: null });
  } catch (e) {
    reply({ kind: "kernel", id: m.id, result: 0, ms: 0, error: (e as Error).message });
  }
}

parentPort?.on("message", (m: LedgerWorkerRequest) => {
  // The slots handed over before this request first (a report, snapshot or stats covers them, and
  // only them), then the request, then the slots that waited for it.
  answerHanded();
  try {
    handleRequest(m);
  } finally {
    handled = (handled + 1) | 0;
  }
  answerHanded();
});

function handleRequest(m: LedgerWorkerRequest): void {
  if (m.kind === "kernel") return runKernelTask(m);
  if (m.kind === "report") return reply({ kind: "report", id: m.id, events, cpuMicros: ownThreadCpuMicros() });
  if (m.kind === "snapshot") {
    const snapshot = ledger.snapshot();
    const bits = [snapshot.current.bits.buffer, ...(snapshot.previous === null ? [] : [snapshot.previous.bits.buffer])];
    return reply({ kind: "snapshot", id: m.id, snapshot }, bits as ArrayBuffer[]);
  }
  if (m.kind === "stats") return reply({ kind: "stats", id: m.id, stats: ledger.stats() });
  try {
    ledger.restore(m.snapshot);
    return reply({ kind: "restore", id: m.id, error: null });
  } catch (e) {
    return reply({ kind: "restore", id: m.id, error: (e as Error).message });
  }
}
serveHandOver();
