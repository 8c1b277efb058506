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
  type AlertEpisodeEvent,
  DEFAULT_EPISODE_SETTINGS,
  EpisodeTracker,
  type EpisodeSettings,
  type KeyEpisodesState,
} from "./alerts.js";
import {
  NELSON_RULES,
  SPC_COL,
  SPC_FIELDS,
  SPC_OUT_FIELDS,
  WE_RULES,
  spcInitArgs,
  spcRuleRate,
  spcStateBytes,
  validateSpcLimits,
  validateSpcParams,
  type SpcParams,
} from "./layout.js";

export interface SpcLimits {
  cl: number;
  sigma: number;
}

export interface SpcAnalysisOptions {
  params: SpcParams;
  /** Fixed limits for every key (`--cl c --sigma-value s`); baselineN must then be 0. */
  limits?: SpcLimits;
  /** Fixed limits for some keys (configuration); others use the baseline. */
  limitsByKey?: ReadonlyMap<string, SpcLimits>;
  /**
   * False alarms per point a key may have on in-control data; chooses which rules are on (see
   * {@link rulesForBudget}). Undefined: every rule on.
   */
  falseAlarmBudget?: number;
  budgetByKey?: ReadonlyMap<string, number>;
  /** Output name of the EWMA chart statistic: "ewma", or "spc_ewma" beside the rolling analysis's ewma. */
  ewmaField: string;
  /** Receives alert episode events (opened, updated, closed, acknowledged), in per-key order. */
  onAlert?: (event: AlertEpisodeEvent) => void;
  /** Families, hysteresis and update rate of the episodes; default {@link DEFAULT_EPISODE_SETTINGS}. */
  episodes?: Partial<EpisodeSettings>;
  /** Names of the key's parts ("M-001/temperature" → machine_id, sensor_type), for alert events. */
  keyParts?: readonly string[];
}

/** The rule masks a key reports: bit r − 1 of `we` for WE rule r, of `nelson` for Nelson rule r. */
export interface RuleSelection {
  we: number;
  nelson: number;
  /** Upper bound on the false-alarm probability per point of the rules on (union bound). */
  rate: number;
}

export const ALL_RULES: RuleSelection = Object.freeze({ we: 0b1111, nelson: 0b11111111, rate: Number.NaN });

/** The engine's view of the SPC kernel. */
export function spcKernel(options: Pick<SpcAnalysisOptions, "params" | "limits" | "limitsByKey">): StreamKernel {
  const params = validateSpcParams(options.params);
  const args = spcInitArgs(params);
  if (options.limits !== undefined) {
    validateSpcLimits(options.limits.cl, options.limits.sigma);
    if (params.baselineN !== 0) throw new ConfigError("baseline", "fixed limits (--cl/--sigma-value) and a baseline exclude each other");
  }
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
      kernels.spcInit(statePtr, ...args);
      const fixed = options.limitsByKey?.get(key) ?? options.limits;
      if (fixed !== undefined) kernels.spcSetLimits(statePtr, fixed.cl, fixed.sigma);
    },
  };
}

/**
 * The rules a false-alarm budget allows, most informative first: beyond 3σ, 2 of 3 beyond 2σ,
 * 4 of 5 beyond 1σ, the run on one side (WE4, then Nelson 2), the trend (N3), the mixture (N8),
 * the alternation (N4), the stratification (N7). A rule is on while the sum of the rates of the
 * rules on stays within the budget; the sum bounds the union's rate from above, so the budget is
 * never exceeded. A Nelson rule with a Western Electric twin (1, 5, 6) follows its twin.
 */
export function rulesForBudget(budget: number, params: SpcParams): RuleSelection {
  if (!(budget >= 0) || !Number.isFinite(budget)) throw new ConfigError("falseAlarmBudget", `must be a probability ≥ 0, got ${budget}`);
  const order: Array<{ we?: number; nelson?: number; rate: number }> = [
    { we: 1, nelson: 1, rate: spcRuleRate.beyond3() },
    { we: 2, nelson: 5, rate: spcRuleRate.twoOfThree() },
    { we: 3, nelson: 6, rate: spcRuleRate.fourOfFive() },
    { we: 4, rate: spcRuleRate.sameSide(params.we4Run) },
    { nelson: 2, rate: spcRuleRate.sameSide(params.n2Run) },
    { nelson: 3, rate: spcRuleRate.monotone(params.n3Run) },
    { nelson: 8, rate: spcRuleRate.beyond1(params.n8Run) },
    { nelson: 4, rate: spcRuleRate.alternating(params.n4Run) },
    { nelson: 7, rate: spcRuleRate.within1(params.n7Run) },
  ];
  const selection = { we: 0, nelson: 0, rate: 0 };
  for (const r of order) {
    if (selection.rate + r.rate > budget) continue;
    selection.rate += r.rate;
    if (r.we !== undefined) selection.we |= 1 << (r.we - 1);
    if (r.nelson !== undefined) selection.nelson |= 1 << (r.nelson - 1);
  }
  return selection;
}

/** The SPC analysis for replay and the run job. */
export function spcAnalysis(options: SpcAnalysisOptions): RecordAnalysis & { alerts: EpisodeTracker; rulesOf(key: string): RuleSelection } {
  const kernel = spcKernel(options);
  const params = options.params;
  const ruleCache = new Map<string, RuleSelection>();
  const rulesOf = (key: string): RuleSelection => {
    let r = ruleCache.get(key);
    if (r === undefined) {
      const budget = options.budgetByKey?.get(key) ?? options.falseAlarmBudget;
      r = budget === undefined ? ALL_RULES : rulesForBudget(budget, params);
      ruleCache.set(key, r);
    }
    return r;
  };
  // Per engine key id: looked up once per key, not once per row.
  const rulesById: Array<RuleSelection | undefined> = [];
  const alerts = new EpisodeTracker(
    alertConditions({
      we: WE_RULES.map((r) => (r.runParam ? params[r.runParam] : r.window)),
      nelson: NELSON_RULES.map((r) => (r.runParam ? params[r.runParam] : r.window)),
    }),
    { ...DEFAULT_EPISODE_SETTINGS, ...options.episodes },
    (event) => options.onAlert?.(event),
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

/** Clears the bits of the rules that are off for the key (rows without limits have NaN masks: left as they are). */
function maskRules(rows: Float64Array, at: number, rules: RuleSelection): void {
  if (!Number.isFinite(rows[at + SPC_COL.we_mask])) return;
  rows[at + SPC_COL.we_mask] = rows[at + SPC_COL.we_mask] & rules.we;
  rows[at + SPC_COL.nelson_mask] = rows[at + SPC_COL.nelson_mask] & rules.nelson;
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
  ];
}

/** keyFields, split once per key (as many keys as the engine has); each event gets its own copy. */
function cachedKeyFields(parts: readonly string[]): (key: string) => Record<string, string> {
  const byKey = new Map<string, Record<string, string>>();
  return (key) => {
    let fields = byKey.get(key);
    if (fields === undefined) {
      fields = keyFields(parts, key);
      byKey.set(key, fields);
    }
    return { ...fields };
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
    `"ewma_alarm":${row[13] === 1},"limits_version":${row[14]}`
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
  into.limits_version = row[14];
}

/** A change of one key's limits while running. */
export type SpcLimitsChange = { kind: "set"; cl: number; sigma: number } | { kind: "rebaseline"; records: number };

/** Applies a limits change to a key's SPC state (call through StreamEngine.withKeyState). */
export function applySpcLimitsChange(kernels: KernelExports, statePtr: number, change: SpcLimitsChange): void {
  if (change.kind === "set") {
    validateSpcLimits(change.cl, change.sigma);
    kernels.spcSetLimits(statePtr, change.cl, change.sigma);
  } else {
    if (!Number.isInteger(change.records) || change.records < 2)
      throw new ConfigError("rebaseline", `needs an integer ≥ 2 records, got ${change.records}`);
    kernels.spcRebaseline(statePtr, change.records);
  }
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
