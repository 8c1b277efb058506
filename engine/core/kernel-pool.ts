/**
 * The kernel executor: a piscina pool whose workers share the kernel memory, or (workers = 0)
 * the calling thread itself. Both run the same tasks; the inline form is for tools and tests
 * that want no threads.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Piscina } from "piscina";
import { KernelLoadError, KernelTaskError } from "./errors.js";
import { type KernelTask, runCalls } from "./kernel-calls.js";
import { compileKernels, instantiateKernels, type KernelExports } from "./kernel-module.js";
import { packageRoot } from "./package-root.js";

export { type KernelCall, type KernelTask, runCalls } from "./kernel-calls.js";

export interface KernelWorkerData {
  memory: WebAssembly.Memory;
  module: WebAssembly.Module;
}

export interface KernelExecutor {
  readonly workers: number;
  run(task: KernelTask, group: number): Promise<number>;
  /** Milliseconds the kernels have run, summed over threads, since the executor started. */
  busyMs(): number;
  close(): Promise<void>;
}

export const DEFAULT_WORKERS = 2;

/** Runs kernel tasks on `workers` threads over `memory`; `workers = 0` runs them inline. */
export function createKernelExecutor(memory: WebAssembly.Memory, workers: number, tasksQueuedMax: number): KernelExecutor {
  const module = compileKernels();
  if (workers === 0) return new InlineExecutor(instantiateKernels(memory, module));
  return new PoolExecutor(memory, module, workers, tasksQueuedMax);
}

class PoolExecutor implements KernelExecutor {
  private readonly pool: Piscina;
  private busy = 0;

  constructor(
    memory: WebAssembly.Memory,
    module: WebAssembly.Module,
    readonly workers: number,
    tasksQueuedMax: number,
  ) {
    const data: KernelWorkerData = { memory, module };
    this.pool = new Piscina({
      filename: pathToFileURL(workerScriptPath()).href,
      workerData: data,
      minThreads: workers,
      maxThreads: workers,
      // The engine never has more than one task per key group outstanding; this is the hard stop.
      maxQueue: tasksQueuedMax,
      concurrentTasksPerWorker: 1,
      idleTimeout: 60_000,
    });
  }

  async run(task: KernelTask, group: number): Promise<number> {
    try {
      const [result, ms] = (await this.pool.run(task)) as [number, number];
      this.busy += ms;
      return result;
    } catch (cause) {
      throw new KernelTaskError(group, `${taskName(task)} failed: ${(cause as Error).message}`, { cause });
    }
  }

  busyMs(): number {
    return this.busy;
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}

class InlineExecutor implements KernelExecutor {
  readonly workers = 0;
  private busy = 0;
  private readonly entries: Record<string, (...args: number[]) => number>;

  constructor(kernels: KernelExports) {
    this.entries = kernels as unknown as Record<string, (...args: number[]) => number>;
  }

  async run(task: KernelTask, group: number): Promise<number> {
    try {
      const [result, ms] = runCalls(this.entries, task);
      this.busy += ms;
      return result;
    } catch (cause) {
      throw new KernelTaskError(group, `${taskName(task)} failed: ${(cause as Error).message}`, { cause });
    }
  }

  busyMs(): number {
    return this.busy;
  }

  async close(): Promise<void> {}
}

function taskName(task: KernelTask): string {
  return "calls" in task ? task.calls.map((c) => c.fn).join("+") : task.fn;
}

/**
 * The compiled worker script. Threads cannot load TypeScript, so even when the engine itself
 * runs from source (vitest) the workers use the build in dist/ (`npm run build`).
 */
function workerScriptPath(): string {
  const root = packageRoot(import.meta.url);
  if (root === null) throw new KernelLoadError(`package root not found above ${fileURLToPath(import.meta.url)}`);
  const path = join(root, "dist", "engine", "core", "kernel-worker.cjs");
  if (existsSync(path)) return path;
  throw new KernelLoadError(`${path} not found: run \`npm run build\` first`);
}
