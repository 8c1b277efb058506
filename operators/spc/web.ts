/**
 * operators/spc for code that also runs in a browser (the dashboard's what-if preview): the
 * kernel's layout, parameters and rules, and the alert conditions, from files without Node
 * imports (test/tidy.test.ts checks). Import from here, or from mod.ts, never from a file inside.
 */
export {
  alertConditions,
  conditionWindows,
  type AlertEpisodeEvent,
  DEFAULT_EPISODE_SETTINGS,
  EpisodeTracker,
  type EpisodeSettings,
} from "./alerts.js";
export {
  DEFAULT_SPC_PARAMS,
  MR_RULES,
  NELSON_RULES,
  SPC_COL,
  SPC_FIELDS,
  SPC_OUT_FIELDS,
  type SpcField,
  type SpcParams,
  spcInitArgs,
  spcStateBytes,
  validateSpcLimits,
  validateSpcParams,
  validateSpcRebaseline,
  WE_RULES,
} from "./layout.js";
export {
  applySpcLimitsChange,
  initSpcKey,
  type SpcKeyKernel,
  type SpcLimits,
  type SpcLimitsChange,
  validateFixedLimits,
} from "./limits.js";
export { ALL_RULES, maskRules, type RuleSelection, rulesForBudget, settlingRules, TEXTBOOK_RULES } from "./rules.js";
