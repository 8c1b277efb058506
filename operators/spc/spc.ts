/**
 * The statistical process control analysis: control limits per key (baseline or fixed), Western
 * Electric and Nelson rules, CUSUM and EWMA charts. The compute is kernels/spc.ts; this module
 * gives the engine its view of the kernel, writes the output members, chooses the rules a key's
 * false-alarm budget allows, raises alert events, and changes limits while running.
 */
import { ConfigError, KernelTaskError, type KernelExports, type OutputChunk, type StreamKernel } from "../../engine/core/mod.js";
import { formatStatistic } from "../number-format.js";
import { statisticValue, type RecordAnalysis, type RowContext } from "../analysis.js";
import {
  alertConditions,
  conditionWindows,
  type AlertEpisodeEvent,
  DEFAULT_EPISODE_SETTINGS,
  EpisodeTracker,
  type EpisodeEventSink,
  type EpisodeSettings,
  type KeyEpisodesState,
} from "./alerts.js";
import { ALL_RULES, maskRules, type RuleSelection, rulesForBudget, settlingRules, TEXTBOOK_RULES } from "./rules.js";
import {
  MR_RULES,
  SPC_COL,
  SPC_FIELDS,
  SPC_OUT_FIELDS,
  spcInitArgs,
  spcStateBytes,
  validateSpcLimits,
  validateSpcParams,
  type SpcParams,
} from "./layout.js";

import { initSpcKey, type SpcLimits, validateFixedLimits } from "./limits.js";

export { ALL_RULES, type RuleSelection, rulesForBudget } from "./rules.js";
export { applySpcLimitsChange, type SpcLimits, type SpcLimitsChange } from "./limits.js";

export interface SpcAnalysisOptions {
  params: SpcParams;
  /** Fixed limits for every key (`--cl c --sigma-value s`); baselineN must then be 0. */
  limits?: SpcLimits;
  /** Fixed limits for some keys (configuration); others use the baseline. */
  limitsByKey?: ReadonlyMap<string, SpcLimits>;
  /**
   * False alarms per point a key may have on in-control data; chooses which rules are on (see
   * {@link rulesForBudget}). Undefined: every Western Electric and Nelson rule on (TEXTBOOK_RULES).
   */
  falseAlarmBudget?: number;
  /** The rules of every key without a budget of its own (a plan's, operators/spc/budget.ts); wins over falseAlarmBudget. */
  rules?: RuleSelection;
  budgetByKey?: ReadonlyMap<string, number>;
  /**
   * Keys ending in this (a sensor settling after a mode change) report their moving-range rules
   * only: the other rule bits and the CUSUM/EWMA alarms are cleared (rules.ts settlingRules).
   */
  silentKeySuffix?: string;
  /**
   * The parameters of the keys ending in silentKeySuffix, when they differ (STEP's window and
   * limit on: a budget plan's settlingStep); absent: `params`.
   */
  settlingParams?: SpcParams;
  /** Output name of the EWMA chart statistic: "ewma", or "spc_ewma" beside the rolling analysis's ewma. */
  ewmaField: string;
  /** Receives alert episode events (opened, updated, closed, acknowledged), in per-key order. */
  onAlert?: (event: AlertEpisodeEvent) => void;
  /** Receives the same events as numbers, no object each (an ingest worker's encoder); when set, `onAlert` is not called. */
  alertSink?: EpisodeEventSink;
  /** Families, hysteresis and update rate of the episodes; default {@link DEFAULT_EPISODE_SETTINGS}. */
  episodes?: Partial<EpisodeSettings>;
  /** Names of the key's parts ("M-001/temperature" → machine_id, sensor_type), for alert events. */
  keyParts?: readonly string[];
}

/** The engine's view of the SPC kernel. */
export function spcKernel(
  options: Pick<SpcAnalysisOptions, "params" | "limits" | "limitsByKey" | "silentKeySuffix" | "settlingParams">,
): StreamKernel {
  const params = validateSpcParams(options.params);
  const args = spcInitArgs(params);
  const suffix = options.silentKeySuffix;
  const settlingArgs = suffix !== undefined && options.settlingParams !== undefined ? spcInitArgs(options.settlingParams) : args;
  validateFixedLimits(params, options.limits);
  for (const [key, l] of options.limitsByKey ?? []) {
    try {
      validateSpcLimits(l.cl, l.sigma);
    } catch (e) {
      throw new ConfigError(`limits of ${key}`, (e as Error).message);
    }
  }
  return {
    name: "spc",
    stateBytesPerKey: spcStateBytes(),
    outFields: SPC_OUT_FIELDS,
    processFn: "spcProcess",
    extraArgs: [],
    eventRows: true,
    initKey(kernels: KernelExports, statePtr: number, key: string): void {
      const keyArgs = suffix !== undefined && key.endsWith(suffix) ? settlingArgs : args;
      initSpcKey(kernels, statePtr, keyArgs, options.limitsByKey?.get(key) ?? options.limits);
    },
  };
}

/** The SPC analysis for replay and the run job. */
export function spcAnalysis(options: SpcAnalysisOptions): RecordAnalysis & { alerts: EpisodeTracker; rulesOf(key: string): RuleSelection } {
  const kernel = spcKernel(options);
  const params = options.params;
  const ruleCache = new Map<string, RuleSelection>();
  const rulesOf = (key: string): RuleSelection => {
    let r = ruleCache.get(key);
    if (r === undefined) {
      const own = options.budgetByKey?.get(key);
      const budget = own ?? options.falseAlarmBudget;
      if (own === undefined && options.rules !== undefined) r = options.rules;
      else r = budget === undefined ? TEXTBOOK_RULES : rulesForBudget(budget, params);
      if (options.silentKeySuffix !== undefined && key.endsWith(options.silentKeySuffix)) r = settlingRules(r);
      ruleCache.set(key, r);
    }
    return r;
  };
  // Per engine key id: looked up once per key, not once per row.
  const rulesById: Array<RuleSelection | undefined> = [];
  const alerts = new EpisodeTracker(
    alertConditions(conditionWindows(params), params),
    { ...DEFAULT_EPISODE_SETTINGS, ...options.episodes },
    options.alertSink ?? ((event) => options.onAlert?.(event)),
    cachedKeyFields(options.keyParts ?? []),
  );
  const ewma = JSON.stringify(options.ewmaField);
  const nullFields = spcNullFields(options.ewmaField);
  const nullJson = `${nullFields.map((f) => `${JSON.stringify(f)}:null`).join(",")},"limits_version":0`;
  return {
    name: "spc",
    kernel,
    outColumns: SPC_FIELDS.map((f) => (f === "ewma" ? options.ewmaField : f)),
    nullJson,
    alerts,
    rulesOf,
    observe(row: Float64Array, ctx: RowContext): void {
      // Rules that are off for this key leave the row here, before it is written or alerted.
      let rules = rulesById[ctx.keyId];
      if (rules === undefined) rules = rulesById[ctx.keyId] = rulesOf(ctx.key);
      if (rules !== ALL_RULES) maskRules(row, 0, rules);
      if (row[SPC_COL.limits_version] > 0) alerts.observe(ctx.keyId, ctx.key, row, ctx.position, ctx.time, ctx.value);
    },
    observeChunk(chunk: OutputChunk, k: number, keyName: (keyId: number) => string): void {
      const rows = chunk.outs[k];
      const events = chunk.events[k];
      if (events == null) throw new KernelTaskError(chunk.group, "the SPC kernel wrote no event list");
      // A row off the list has no rule bit set (it is not loud), so masking only the listed rows
      // masks every row as `observe` does.
      alerts.observeChunk(chunk, rows, events, keyName, (i) => {
        const keyId = chunk.keyIds[i];
        let rules = rulesById[keyId];
        if (rules === undefined) rules = rulesById[keyId] = rulesOf(keyName(keyId));
        if (rules !== ALL_RULES) maskRules(rows, i * SPC_OUT_FIELDS, rules);
      });
    },
    rowJson: (row: Float64Array): string => spcRowJson(row, ewma, nullJson),
    rowFields: (row: Float64Array, into: Record<string, unknown>): void => spcRowFields(row, into, options.ewmaField, nullFields),
    notes(): string[] {
      return alerts.open > 0 ? [`${alerts.open} SPC alert episodes still open at the end of the input`] : [];
    },
    saveState: (keys, keyIdOf) => alerts.saveKeys(keys, keyIdOf),
    restoreState: (state, keyIdOf) => alerts.restoreKeys(state as KeyEpisodesState[], keyIdOf),
  };
}

/** The alert episode tracker of a run's SPC analysis (undefined: not an SPC analysis). */
export function episodeTrackerOf(a: RecordAnalysis): EpisodeTracker | undefined {
  const alerts = (a as { alerts?: unknown }).alerts;
  return a.name === "spc" && alerts instanceof EpisodeTracker ? alerts : undefined;
}

/** The SPC members of a row before the key has limits: every one null. */
function spcNullFields(ewmaField: string): string[] {
  return [
    "cl",
    "ucl",
    "lcl",
    "sigma",
    "zone",
    "we",
    "nelson",
    "cusum_pos",
    "cusum_neg",
    "cusum_alarm",
    ewmaField,
    "ewma_ucl",
    "ewma_lcl",
    "ewma_alarm",
    "mr",
  ];
}

/**
 * keyFields, split once per key (as many keys as the engine has) and frozen: the tracker's
 * episodes of a key share it (none changes it; an event handed out gets its own copy).
 */
function cachedKeyFields(parts: readonly string[]): (key: string) => Record<string, string> {
  const byKey = new Map<string, Record<string, string>>();
  return (key) => {
    let fields = byKey.get(key);
    if (fields === undefined) {
      fields = Object.freeze(keyFields(parts, key));
      byKey.set(key, fields);
    }
    return fields;
  };
}

/** An alert's key fields (`machine_id`, `sensor_type`, …) from the engine key `a/b/…`. */
function keyFields(parts: readonly string[], key: string): Record<string, string> {
  const values = parts.length > 1 ? key.split("/") : [key];
  const fields: Record<string, string> = {};
  parts.forEach((p, i) => {
    if (values[i] !== undefined) fields[p] = values[i];
  });
  return fields;
}

function spcRowJson(row: Float64Array, ewma: string, nullJson: string): string {
  if (!(row[SPC_COL.limits_version] > 0) || !Number.isFinite(row[SPC_COL.cl])) {
    return nullJson.replace('"limits_version":0', `"limits_version":${row[SPC_COL.limits_version] || 0}`);
  }
  const f = formatStatistic;
  return (
    `"cl":${f(row[0])},"ucl":${f(row[1])},"lcl":${f(row[2])},"sigma":${f(row[3])},"zone":${f(row[4])},` +
    `"we":${ruleList(row[5])},"nelson":${ruleList(row[6])},"cusum_pos":${f(row[7])},"cusum_neg":${f(row[8])},` +
    `"cusum_alarm":${row[9] === 1},${ewma}:${f(row[10])},"ewma_ucl":${f(row[11])},"ewma_lcl":${f(row[12])},` +
    `"ewma_alarm":${row[13] === 1},"mr":${mrList(row[15])},"limits_version":${row[14]}`
  );
}

function spcRowFields(row: Float64Array, into: Record<string, unknown>, ewmaField: string, nullFields: readonly string[]): void {
  if (!(row[SPC_COL.limits_version] > 0) || !Number.isFinite(row[SPC_COL.cl])) {
    for (const f of nullFields) into[f] = null;
    into.limits_version = row[SPC_COL.limits_version] || 0;
    return;
  }
  const v = statisticValue;
  into.cl = v(row[0]);
  into.ucl = v(row[1]);
  into.lcl = v(row[2]);
  into.sigma = v(row[3]);
  into.zone = v(row[4]);
  into.we = ruleArray(row[5]);
  into.nelson = ruleArray(row[6]);
  into.cusum_pos = v(row[7]);
  into.cusum_neg = v(row[8]);
  into.cusum_alarm = row[9] === 1;
  into[ewmaField] = v(row[10]);
  into.ewma_ucl = v(row[11]);
  into.ewma_lcl = v(row[12]);
  into.ewma_alarm = row[13] === 1;
  into.mr = mrNames(row[15]);
  into.limits_version = row[14];
}

/** ["JUMP", "STUCK"] for mr_mask 0b101: the moving-range rules fired, by name. */
function mrNames(mask: number): string[] {
  return mask > 0 ? MR_RULES.filter((r) => (mask & r.bit) !== 0).map((r) => r.name) : [];
}

function mrList(mask: number): string {
  return mask > 0 ? JSON.stringify(mrNames(mask)) : "[]";
}

/** [1, 3] for mask 0b101; [] for none (the values of ruleList's text). */
function ruleArray(mask: number): number[] {
  const out: number[] = [];
  if (!(mask > 0)) return out;
  for (let r = 1; r <= 8; r++) if ((mask & (1 << (r - 1))) !== 0) out.push(r);
  return out;
}

/** "[1,3]" for mask 0b101; "[]" for none. */
function ruleList(mask: number): string {
  if (!(mask > 0)) return "[]";
  let s = "";
  for (let r = 1; r <= 8; r++) if ((mask & (1 << (r - 1))) !== 0) s += s.length === 0 ? String(r) : `,${r}`;
  return `[${s}]`;
}
