/**
 * Code inside a pool thread: instantiate the kernel module over the shared memory once, then run
 * whatever kernel entry points a task names. A task carries pointers and counts, never data.
 *
 * CommonJS on purpose: piscina loads a worker script with require() first, and on Node 20.19+
 * require() of an ES module goes through Node's require(esm) path, which was seen to abort the
 * process with a native assertion (ModuleWrap::CreateRequiredModuleFacade) when several pools
 * start at once. A CommonJS entry avoids that path; the ES modules load with import().
 */
import type { KernelTask, KernelWorkerData } from "./kernel-pool.js";

type Runner = (task: KernelTask) => [number, number];

const { workerData } = require("node:worker_threads") as typeof import("node:worker_threads");

const ready: Promise<Runner> = (async () => {
  const [{ instantiateKernels }, { runCalls }] = await Promise.all([import("./kernel-module.js"), import("./kernel-pool.js")]);
  const data = workerData as KernelWorkerData;
  const entries = instantiateKernels(data.memory, data.module) as unknown as Record<string, (...args: number[]) => number>;
  return (task: KernelTask) => runCalls(entries, task);
})();

/** Runs the task; returns [the kernels' result, milliseconds spent in them] (the pool's busy time). */
module.exports = async function runKernelTask(task: KernelTask): Promise<[number, number]> {
  return (await ready)(task);
};
