/**
 * What the ledger thread (ledger-thread.ts) and its worker (ledger-worker.ts) share at run time: a
 * slot's states and the thread's own CPU clock. A file of its own so that the worker does not load
 * ledger-thread.ts, which needs the engine's whole core (package root, executor types): the worker's
 * imports are what its start costs.
 */
import { readFileSync } from "node:fs";

export const SLOT_FREE = 0;
export const SLOT_SUBMITTED = 1;
export const SLOT_FAILED = 2;

/** CPU µs of the calling thread (Linux: its schedstat; NaN elsewhere). */
export function ownThreadCpuMicros(): number {
  try {
    return Number(readFileSync("/proc/thread-self/schedstat", "latin1").split(" ")[0]) / 1000;
  } catch {
    return Number.NaN;
  }
}
