/**
 * The ledger thread's side (ledger-thread.ts): a SerialLedger and the serial encoder's payload
 * questions (SerialInput.askPayloads), answering each submitted slot in the order submitted.
 */
import { parentPort, workerData } from "node:worker_threads";
// The web face and ledger-slots.ts, not engine/core/mod.ts and ledger-thread.ts: this thread's start
// is what its imports cost (the whole core — piscina, the logger — was ≈ 60 ms of CPU).
import { instantiateKernelModule, runCalls } from "../../engine/core/web.js";
import type { LedgerWorkerData, LedgerWorkerReply, LedgerWorkerRequest } from "./ledger-thread.js";
import { ownThreadCpuMicros, SLOT_FAILED, SLOT_FREE } from "./ledger-slots.js";
import { SerialLedger } from "./ledger.js";
import { serialInput } from "./serial.js";

const d = workerData as LedgerWorkerData;
const ledger = new SerialLedger(d.ledger);
// The clock is never asked here: the caller wrote each arrival time into the payload.
const input = serialInput({ timeUnit: d.timeUnit, patterns: d.patterns, clock: () => Number.NaN }, ledger);
const state = new Int32Array(d.state);
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

/** A slot's events in order: runs from their payloads, the events with strings between them. */
function askSlot(m: Extract<LedgerWorkerRequest, { kind: "batch" }>): void {
  for (const name of m.names) names.push(name);
  const s = slots[m.slot];
  let from = 0;
  for (const e of m.fields) {
    askRun(s, from, e.k);
    input.encodeFields(e.fields, s.times[e.k], s.payload, s.offsets[e.k]);
    from = e.k + 1;
  }
  askRun(s, from, m.n);
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
  if (m.kind === "kernel") return runKernelTask(m);
  if (m.kind === "report") return reply({ kind: "report", id: m.id, events, cpuMicros: ownThreadCpuMicros() });
  if (m.kind === "snapshot") {
    const snapshot = ledger.snapshot();
    const bits = [snapshot.current.bits.buffer, ...(snapshot.previous === null ? [] : [snapshot.previous.bits.buffer])];
    return reply({ kind: "snapshot", id: m.id, snapshot }, bits as ArrayBuffer[]);
  }
  if (m.kind === "stats") return reply({ kind: "stats", id: m.id, stats: ledger.stats() });
  if (m.kind === "restore") {
    try {
      ledger.restore(m.snapshot);
      return reply({ kind: "restore", id: m.id, error: null });
    } catch (e) {
      return reply({ kind: "restore", id: m.id, error: (e as Error).message });
    }
  }
  try {
    askSlot(m);
    events += m.n;
    // The key counts, not the rate (a Poisson sum): the caller computes it where a verdict reads it.
    filterKeys[2 * m.slot] = ledger.filterCurrentKeys();
    filterKeys[2 * m.slot + 1] = ledger.filterPreviousKeys();
    Atomics.store(state, m.slot, SLOT_FREE);
  } catch (e) {
    Atomics.store(state, m.slot, SLOT_FAILED);
    throw e;
  } finally {
    Atomics.notify(state, m.slot);
  }
});
