/**
 * A key's limits: fixed at its start, or changed while it runs (set, or re-baseline over the next
 * records), applied to its kernel state. Browser-clean (no Node imports at run time): the
 * dashboard's what-if preview starts and changes its key with the same calls as the engine.
 */
import { ConfigError } from "../../engine/core/web.js";
import { validateSpcLimits } from "./layout.js";
/** Checks fixed limits for every key (`--cl c --sigma-value s`): valid, and no baseline beside them. */
export function validateFixedLimits(params, limits) {
    if (limits === undefined)
        return;
    validateSpcLimits(limits.cl, limits.sigma);
    if (params.baselineN !== 0)
        throw new ConfigError("baseline", "fixed limits (--cl/--sigma-value) and a baseline exclude each other");
}
/** Starts a key's state: spcInit with `args` (spcInitArgs), then its fixed limits if it has any. */
export function initSpcKey(kernels, statePtr, args, fixed) {
    kernels.spcInit(statePtr, ...args);
    if (fixed !== undefined)
        kernels.spcSetLimits(statePtr, fixed.cl, fixed.sigma);
}
/** Applies a limits change to a key's SPC state (call through StreamEngine.withKeyState). */
export function applySpcLimitsChange(kernels, statePtr, change) {
    if (change.kind === "set") {
        validateSpcLimits(change.cl, change.sigma);
        kernels.spcSetLimits(statePtr, change.cl, change.sigma);
    }
    else {
        if (!Number.isInteger(change.records) || change.records < 2)
            throw new ConfigError("rebaseline", `needs an integer ≥ 2 records, got ${change.records}`);
        kernels.spcRebaseline(statePtr, change.records);
    }
}
