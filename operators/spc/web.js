/**
 * operators/spc for code that also runs in a browser (the dashboard's what-if preview): the
 * kernel's layout, parameters and rules, and the alert conditions, from files without Node
 * imports (test/tidy.test.ts checks). Import from here, or from mod.ts, never from a file inside.
 */
export { alertConditions, SpcAlertTracker } from "./alerts.js";
export { DEFAULT_SPC_PARAMS, NELSON_RULES, SPC_COL, SPC_FIELDS, SPC_OUT_FIELDS, spcInitArgs, spcStateBytes, validateSpcLimits, validateSpcParams, validateSpcRebaseline, WE_RULES, } from "./layout.js";
export { applySpcLimitsChange, initSpcKey, validateFixedLimits, } from "./limits.js";
export { ALL_RULES, maskRules, rulesForBudget } from "./rules.js";
