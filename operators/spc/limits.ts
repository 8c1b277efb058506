/**
 * A key's limits: fixed at its start, or changed while it runs (set, or re-baseline over the next
 * records), applied to its kernel state. Browser-clean (no Node imports at run time): the
 * dashboard's what-if preview starts and changes its key with the same calls as the engine.
 */
import { ConfigError, type KernelExports } from "../../engine/core/web.js";
import { type spcInitArgs, type SpcParams, validateSpcLimits } from "./layout.js";

type SpcInitArgs = ReturnType<typeof spcInitArgs>;

export interface SpcLimits {
  cl: number;
  sigma: number;
}

/** A change of one key's limits while running. */
export type SpcLimitsChange = { kind: "set"; cl: number; sigma: number } | { kind: "rebaseline"; records: number };

/** The kernel entry points a key's start and its limit changes call. */
export type SpcKeyKernel = Pick<KernelExports, "spcInit" | "spcSetLimits" | "spcRebaseline">;

/** Checks fixed limits for every key (`--cl c --sigma-value s`): valid, and no baseline beside them. */
export function validateFixedLimits(params: SpcParams, limits: SpcLimits | undefined): void {
  if (limits === undefined) return;
  validateSpcLimits(limits.cl, limits.sigma);
  if (params.baselineN !== 0) throw new ConfigError("baseline", "fixed limits (--cl/--sigma-value) and a baseline exclude each other");
}

/** Starts a key's state: spcInit with `args` (spcInitArgs), then its fixed limits if it has any. */
export function initSpcKey(kernels: SpcKeyKernel, statePtr: number, args: SpcInitArgs, fixed: SpcLimits | undefined): void {
  kernels.spcInit(statePtr, ...args);
  if (fixed !== undefined) kernels.spcSetLimits(statePtr, fixed.cl, fixed.sigma);
}

/** Applies a limits change to a key's SPC state (call through StreamEngine.withKeyState). */
export function applySpcLimitsChange(kernels: SpcKeyKernel, statePtr: number, change: SpcLimitsChange): void {
  if (change.kind === "set") {
    validateSpcLimits(change.cl, change.sigma);
    kernels.spcSetLimits(statePtr, change.cl, change.sigma);
  } else {
    if (!Number.isInteger(change.records) || change.records < 2)
      throw new ConfigError("rebaseline", `needs an integer ≥ 2 records, got ${change.records}`);
    kernels.spcRebaseline(statePtr, change.records);
  }
}
