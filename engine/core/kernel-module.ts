/**
 * Loading the kernel module (build/kernels.wasm) over a shared memory.
 *
 * The module imports `env.memory`; every worker instantiates the same compiled module over the
 * same `WebAssembly.Memory`, so key-group regions written by the main thread are read by the
 * worker without copies.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { KernelLoadError } from "./errors.js";
import { packageRoot } from "./package-root.js";

/** The exports of kernels/index.ts. Pointers are byte offsets into the shared memory. */
export interface KernelExports {
  rollingStateBytes(mode: number, cap: number): number;
  rollingInit(state: number, mode: number, cap: number, span: number, alpha: number, timeScale: number): void;
  rollingProcess(stateBase: number, stateStride: number, slots: number, times: number, values: number, n: number, out: number): number;
  memSum(ptr: number, bytes: number): number;
  /** Serial integrity (kernels/serial.ts; layouts: operators/serial/layout.ts). */
  serialStateBytes(window: number): number;
  serialInit(
    state: number,
    window: number,
    recent: number,
    prefixMin: number,
    prefixRepeat: number,
    lowVarPositions: number,
    statMin: number,
    warmup: number,
    deltaMax: number,
    lowVarShare: number,
    guessMax: number,
    fastAlpha: number,
    slowAlpha: number,
    burstRatio: number,
    gapFactor: number,
    minInterval: number,
    futureSkew: number,
    surprisalRatio: number,
  ): void;
  serialProcess(
    stateBase: number,
    stateStride: number,
    slots: number,
    times: number,
    payload: number,
    payloadBytes: number,
    n: number,
    out: number,
    tables: number,
  ): number;
  /** 1 when the ASCII digits at ptr end in their GS1 mod-10 check digit. */
  gs1CheckDigitValid(ptr: number, len: number): number;
  gatherColumn(dst: number, dstStride: number, dstCol: number, src: number, srcStride: number, srcCol: number, n: number): number;
  spcStateBytes(): number;
  spcInit(
    state: number,
    baselineN: number,
    sigmaMethod: number,
    k: number,
    h: number,
    lambda: number,
    L: number,
    we4Run: number,
    n2Run: number,
    n3Run: number,
    n4Run: number,
    n7Run: number,
    n8Run: number,
    trackRecords: number,
    cusumCap: number,
    tiesMax: number,
    trackHold: number,
    trackGap: number,
  ): void;
  spcSetLimits(state: number, cl: number, sigma: number): void;
  spcRebaseline(state: number, n: number): void;
  spcProcess(
    stateBase: number,
    stateStride: number,
    slots: number,
    times: number,
    values: number,
    n: number,
    out: number,
    events?: number,
  ): number;
  /** Isolation forest scores of n rows (kernels/iforest.ts; model block: operators/iforest/layout.ts). */
  iforestScore(
    modelPtr: number,
    rowsPtr: number,
    rowStride: number,
    featureIdxPtr: number,
    n: number,
    outPtr: number,
    outStride: number,
  ): number;
  /** c(n) of the isolation forest. */
  iforestAveragePathLength(n: number): number;
}

/** Largest memory the module accepts (asconfig.json `maximumMemory`, in 64 KiB pages). */
export const KERNEL_MEMORY_PAGES_MAX = 32768;

/** Path of the release build, found from this file whether it runs from source or from dist/. */
export function kernelWasmPath(): string {
  const root = packageRoot(import.meta.url);
  const path = root === null ? null : join(root, "build", "kernels.wasm");
  if (path !== null && existsSync(path)) return path;
  throw new KernelLoadError("build/kernels.wasm not found: run `npm run build:kernels` first");
}

let compiled: WebAssembly.Module | undefined;

/** Compiles the kernel module once per thread. */
export function compileKernels(path: string = kernelWasmPath()): WebAssembly.Module {
  if (compiled === undefined) {
    try {
      compiled = new WebAssembly.Module(readFileSync(path));
    } catch (cause) {
      throw new KernelLoadError(`cannot compile ${path}`, { cause });
    }
  }
  return compiled;
}

/** Instantiates the kernel module over `memory` (which must be shared). */
export function instantiateKernels(memory: WebAssembly.Memory, module: WebAssembly.Module = compileKernels()): KernelExports {
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

/** A shared memory of `pages` 64 KiB pages, the form the kernel module imports. */
export function createSharedMemory(pages: number): WebAssembly.Memory {
  if (!Number.isInteger(pages) || pages < 1 || pages > KERNEL_MEMORY_PAGES_MAX) {
    throw new KernelLoadError(`shared memory of ${pages} pages is outside 1..${KERNEL_MEMORY_PAGES_MAX}`);
  }
  return new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
}
