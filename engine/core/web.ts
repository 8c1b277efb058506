/**
 * engine/core for code that also runs in a browser (the dashboard's what-if preview): only files
 * without Node imports. Import from here, or from mod.ts, never from a file inside.
 */
export * from "./errors.js";
export type { KernelExports } from "./kernel-exports.js";
export { instantiateKernelModule, type KernelCall, type KernelTask, runCalls } from "./kernel-calls.js";
export { parseEventTime, type TimeUnit } from "./event-time.js";
