/**
 * What the ledger thread (ledger-thread.ts) and its worker (ledger-worker.ts) share at run time: a
 * slot's states, the hand-over ring and the thread's own CPU clock. A file of its own so that the
 * worker does not load ledger-thread.ts, which needs the engine's whole core (package root,
 * executor types): the worker's imports are what its start costs.
 */
import { readFileSync } from "node:fs";

export const SLOT_FREE = 0;
export const SLOT_SUBMITTED = 1;
export const SLOT_FAILED = 2;
/** Submitted with line names or events with strings: those wait on the extras port (one message, in submit order). */
export const SLOT_SUBMITTED_EXTRAS = 3;

/**
 * The hand-over's Int32 words (shared): [HANDED] how many slots were handed over so far (modulo
 * 2^32; the thread waits on this word), then a ring of the handed slots' numbers in the order
 * handed, a ring of how many requests (messages on the port) had been posted before each, then
 * each slot's event count. The rings have a power of two ≥ 2 × slots entries: at most `slots` are
 * handed and not yet answered, and a slot is handed again only after the thread read its entries,
 * so no entry is overwritten before it is read. The thread answers a slot only once it has handled
 * every request posted before it, and a request only after every slot handed before it: one order,
 * as when the slots went on the port too.
 */
export const HANDED = 0;

export function handOverRing(slots: number): number {
  return 1 << Math.ceil(Math.log2(2 * slots));
}

export function handOverWords(slots: number): number {
  return 1 + 2 * handOverRing(slots) + slots;
}

/** The ring entry of the `seq`-th slot handed over (seq as the int32 HANDED holds). */
export function ringEntry(slots: number, seq: number): number {
  return 1 + ((seq >>> 0) & (handOverRing(slots) - 1));
}

/** The requests posted before the `seq`-th slot handed over (modulo 2^32). */
export function requestsEntry(slots: number, seq: number): number {
  return 1 + handOverRing(slots) + ((seq >>> 0) & (handOverRing(slots) - 1));
}

/** The word holding slot `slot`'s event count. */
export function countEntry(slots: number, slot: number): number {
  return 1 + 2 * handOverRing(slots) + slot;
}

/** Atomics.waitAsync (ES2024; Node ≥ 16), typed here: the project's lib is ES2022. */
export function waitAsync(
  words: Int32Array,
  index: number,
  value: number,
): { async: false; value: "not-equal" | "timed-out" } | { async: true; value: Promise<"ok" | "timed-out"> } {
  return (Atomics as unknown as { waitAsync: typeof waitAsync }).waitAsync(words, index, value);
}

/** CPU µs of the calling thread (Linux: its schedstat; NaN elsewhere). */
export function ownThreadCpuMicros(): number {
  try {
    return Number(readFileSync("/proc/thread-self/schedstat", "latin1").split(" ")[0]) / 1000;
  } catch {
    return Number.NaN;
  }
}
