// The engine's public interface: what operators, connectors and tools may import.
export { allocateBatch, appendRecord, type RecordBatch } from "./batch.js";
export * from "./errors.js";
export { KeyDictionary, fnv1a } from "./key-dictionary.js";
export { MemoryLayout, MEMORY_RESERVED_BYTES, type LayoutSpec } from "./memory-layout.js";
export { createSharedMemory, instantiateKernels, compileKernels, type KernelExports } from "./kernel-module.js";
export { createKernelExecutor, DEFAULT_WORKERS, type KernelExecutor, type KernelTask } from "./kernel-pool.js";
export { ReorderBuffer, type PendingRecord } from "./reorder-buffer.js";
export {
  StreamEngine, DEFAULT_ENGINE_OPTIONS, FLAG_OUT_OF_ORDER, validateEngineOptions,
  type StreamKernel, type StreamEngineOptions, type OutputChunk, type EngineSinks, type EngineMetrics,
} from "./stream-engine.js";
