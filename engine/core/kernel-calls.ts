/**
 * Running kernel tasks over an instance of the kernel module: what every thread that runs kernels
 * needs (the pool's workers, the inline executor, the serial job's ledger thread), without the
 * pool itself or the module's loading from disk — no Node import, so a thread that only runs
 * tasks loads this and not the engine's whole core (piscina, the logger: ≈ 60 ms of a thread's
 * start).
 */
import { KernelLoadError } from "./errors.js";
import type { KernelExports } from "./kernel-exports.js";

/** A call of a kernel entry point: its export name and its (pointer, count, parameter) arguments. */
export interface KernelCall {
  fn: keyof KernelExports;
  args: number[];
}

/** One call, or several run in order in one task (the analyses of one key group's buffer). */
export type KernelTask = KernelCall | { calls: KernelCall[] };

/** Instantiates a compiled kernel module over `memory` (which must be shared). */
export function instantiateKernelModule(memory: WebAssembly.Memory, module: WebAssembly.Module): KernelExports {
  const instance = new WebAssembly.Instance(module, {
    env: {
      memory,
      abort(_msg: number, _file: number, line: number, column: number): never {
        throw new KernelLoadError(`kernel assertion failed at line ${line}:${column}`);
      },
    },
  });
  return instance.exports as unknown as KernelExports;
}

/**
 * Runs a task's calls in order over `entries` (a kernel instance's exports). Returns the smallest
 * result (each analysis returns the records it processed) and the milliseconds spent.
 */
export function runCalls(entries: Record<string, (...args: number[]) => number>, task: KernelTask): [number, number] {
  const calls = "calls" in task ? task.calls : [task];
  const t0 = performance.now();
  let result = Infinity;
  for (const call of calls) {
    const fn = entries[call.fn];
    if (typeof fn !== "function") throw new TypeError(`unknown kernel entry point "${call.fn}"`);
    result = Math.min(result, fn(...call.args));
  }
  return [result, performance.now() - t0];
}
