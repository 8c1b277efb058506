/** operators/spc: the names other folders use. Import from here, never from a file inside. */
export {
  ALERT_FAMILIES,
  alertConditions,
  conditionWindows,
  type AckResult,
  type AlertEpisodeEvent,
  type AlertPoint,
  type AlertSeverity,
  DEFAULT_EPISODE_CLOSE_AFTER,
  DEFAULT_EPISODE_SETTINGS,
  DEFAULT_EPISODE_UPDATE_INTERVAL_MS,
  EpisodeTracker,
  type EpisodeEventKind,
  type EpisodeEventSink,
  type SunkEpisode,
  type EpisodeSettings,
  episodeId,
} from "./alerts.js";
export { type BudgetPlan, cusumArl, cusumHForArl, type ExplicitSpcParams, ewmaArl, ewmaLForArl, planForBudget } from "./budget.js";
export { AlertDecoder, AlertEncoder, decodeAlerts, type EncodedAlerts, STRINGS_KEPT_MAX } from "./alert-codec.js";
export {
  DEFAULT_SPC_PARAMS,
  jumpDescription,
  MR_RULES,
  movingRangeRunRate,
  NELSON_RULES,
  SPC_COL,
  SPC_FIELDS,
  SPC_OUT_FIELDS,
  spcInitArgs,
  type SpcParams,
  type SpcRule,
  spcRuleRate,
  WE_RULES,
} from "./layout.js";
export { NO_ALERTS, settlingRules, TEXTBOOK_RULES } from "./rules.js";
export {
  ALL_RULES,
  applySpcLimitsChange,
  episodeTrackerOf,
  type RuleSelection,
  rulesForBudget,
  spcAnalysis,
  type SpcAnalysisOptions,
  spcKernel,
  type SpcLimits,
  type SpcLimitsChange,
} from "./spc.js";
