/**
 * Loading the kernel module (build/kernels.wasm) over a shared memory.
 *
 * The module imports `env.memory`; every worker instantiates the same compiled module over the
 * same `WebAssembly.Memory`, so key-group regions written by the main thread are read by the
 * worker without copies.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { KernelLoadError } from "./errors.js";
import { instantiateKernelModule } from "./kernel-calls.js";
import type { KernelExports } from "./kernel-exports.js";
import { packageRoot } from "./package-root.js";

export type { KernelExports } from "./kernel-exports.js";

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
let compiledHash: string | undefined;

/** Compiles the kernel module once per thread. */
export function compileKernels(path: string = kernelWasmPath()): WebAssembly.Module {
  if (compiled === undefined) {
    try {
      const bytes = readFileSync(path);
      compiled = new WebAssembly.Module(bytes);
      compiledHash = createHash("sha256").update(bytes).digest("hex");
    } catch (cause) {
      throw new KernelLoadError(`cannot compile ${path}`, { cause });
    }
  }
  return compiled;
}

/**
 * SHA-256 (hex) of the kernel module's bytes as this thread compiled them (compiling it first if
 * it has not been): the audit record's `kernel_hash`, computed once per thread from the very bytes
 * the engine runs, so a rebuilt kernels.wasm shows as a different hash.
 */
export function kernelHash(): string {
  compileKernels();
  return compiledHash as string;
}

/** Instantiates the kernel module over `memory` (which must be shared). */
export function instantiateKernels(memory: WebAssembly.Memory, module: WebAssembly.Module = compileKernels()): KernelExports {
  return instantiateKernelModule(memory, module);
}

/** A shared memory of `pages` 64 KiB pages, the form the kernel module imports. */
export function createSharedMemory(pages: number): WebAssembly.Memory {
  if (!Number.isInteger(pages) || pages < 1 || pages > KERNEL_MEMORY_PAGES_MAX) {
    throw new KernelLoadError(`shared memory of ${pages} pages is outside 1..${KERNEL_MEMORY_PAGES_MAX}`);
  }
  return new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
}
