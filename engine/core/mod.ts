/** engine/core: the names other folders use. Import from here, never from a file inside. */
export { allocateBatch, appendRecord, type RecordBatch } from "./batch.js";
export { decodeCheckpoint, encodeCheckpoint, type EngineCheckpoint } from "./checkpoint.js";
export { DURATION_FORMS, DurationParseError, parseDuration } from "./duration.js";
export * from "./errors.js";
export {
  daysFromCivil,
  daysInMonth,
  decimalFromBytes,
  epochDigitsFromBytes,
  isoTimeFromBytes,
  parseEventTime,
  parseReading,
  type TimeUnit,
} from "./event-time.js";
export {
  compileKernels,
  createSharedMemory,
  instantiateKernels,
  KERNEL_MEMORY_PAGES_MAX,
  type KernelExports,
  kernelHash,
} from "./kernel-module.js";
export {
  createKernelExecutor,
  DEFAULT_WORKERS,
  type KernelCall,
  type KernelExecutor,
  type KernelTask,
  runCalls,
} from "./kernel-pool.js";
export { fnv1a, KeyDictionary } from "./key-dictionary.js";
export {
  createLogger,
  DEFAULT_LOG_LEVEL,
  LOG_LEVELS,
  type LogEntry,
  type Logger,
  type LoggerOptions,
  type LogLevel,
  memoryLogger,
  parseLogLevel,
} from "./log.js";
export { type LayoutSpec, MEMORY_RESERVED_BYTES, MemoryLayout } from "./memory-layout.js";
export { type PendingRecord, ReorderBuffer } from "./reorder-buffer.js";
export {
  DEFAULT_ENGINE_OPTIONS,
  type EngineMetrics,
  type EngineSinks,
  FLAG_OUT_OF_ORDER,
  type KernelCallContext,
  type OutputChunk,
  StreamEngine,
  type StreamEngineOptions,
  type StreamKernel,
  validateEngineOptions,
} from "./stream-engine.js";
export { fmix32, normalAt, SeededRandom, seedSfc32At, sfc32At, streamKey, uniformAt } from "./prng.js";
export { packageRoot } from "./package-root.js";
