/**
 * Code inside a pool thread: instantiate the kernel module over the shared memory once, then run
 * whatever kernel entry point a task names. A task carries pointers and counts, never data.
 */
import { workerData } from "node:worker_threads";
import { instantiateKernels, type KernelExports } from "./kernel-module.js";
import { runCalls, type KernelTask, type KernelWorkerData } from "./kernel-pool.js";

const data = workerData as KernelWorkerData;
const kernels = instantiateKernels(data.memory, data.module);
const entries = kernels as unknown as Record<string, (...args: number[]) => number>;

/** Runs the task; returns [the kernel's result, milliseconds spent in it] (the pool's busy time). */
export default function runKernelTask(task: KernelTask): [number, number] {
  return runCalls(entries, task);
}

export type { KernelExports };
