/**
 * The ledger thread's side (ledger-thread.ts): a SerialLedger and the serial encoder's payload
 * questions (SerialInput.askPayloads), answering each submitted slot in the order submitted.
 */
import { parentPort, workerData } from "node:worker_threads";
import { type LedgerWorkerData, type LedgerWorkerRequest, ownThreadCpuMicros, SLOT_FAILED, SLOT_FREE } from "./ledger-thread.js";
import { SerialLedger } from "./ledger.js";
import { serialInput } from "./serial.js";

const d = workerData as LedgerWorkerData;
const ledger = new SerialLedger(d.ledger);
// The clock is never asked here: the caller wrote each arrival time into the payload.
const input = serialInput({ timeUnit: d.timeUnit, patterns: d.patterns, clock: () => Number.NaN }, ledger);
const state = new Int32Array(d.state);
const filterRate = new Float64Array(d.filterRate);
const slots = d.slots.map((s) => ({
  payload: new Uint8Array(s.payload),
  offsets: new Int32Array(s.offsets),
  times: new Float64Array(s.times),
  lines: new Uint16Array(s.lines),
}));
const names: string[] = [];
const machines: string[] = new Array<string>(d.batchRecords).fill("");
let events = 0;

parentPort?.on("message", (m: LedgerWorkerRequest) => {
  if (m.kind === "report") {
    parentPort?.postMessage({ kind: "report", events, cpuMicros: ownThreadCpuMicros() });
    return;
  }
  try {
    for (const name of m.names) names.push(name);
    const s = slots[m.slot];
    for (let k = 0; k < m.n; k++) machines[k] = names[s.lines[k]];
    input.askPayloads(s.payload, s.offsets, machines, s.times, m.n);
    events += m.n;
    filterRate[m.slot] = ledger.filterFalsePositiveRate();
    Atomics.store(state, m.slot, SLOT_FREE);
  } catch (e) {
    Atomics.store(state, m.slot, SLOT_FAILED);
    throw e;
  } finally {
    Atomics.notify(state, m.slot);
  }
});
