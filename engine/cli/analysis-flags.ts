/**
 * The analysis flags shared by `replay` and `run`: which analyses, and the options of each.
 * Turns them into RecordAnalysis objects with one validation pass and precise messages.
 */
import { readFileSync } from "node:fs";
import { type Command, InvalidArgumentError, Option } from "commander";
import { ConfigError, type Logger, parseDuration, type TimeUnit } from "../core/mod.js";
import { cliLogger } from "./logging.js";
import type { RecordAnalysis } from "../../operators/mod.js";
import { type AnalysisSpec, iforestFollow, type RegistryFollowSpec } from "../jobs/mod.js";
import { DEFAULT_ROLLING_ALPHA, DEFAULT_TIME_WINDOW_CAPACITY, rollingAnalysis, type RollingWindow } from "../../operators/rolling/mod.js";
import {
  type AlertEpisodeEvent,
  DEFAULT_EPISODE_CLOSE_AFTER,
  DEFAULT_EPISODE_SETTINGS,
  DEFAULT_SPC_PARAMS,
  planForBudget,
  type RuleSelection,
  type SpcParams,
  spcAnalysis,
  type SpcLimits,
} from "../../operators/spc/mod.js";
import { iforestAnalysis, type IsolationForestModel, parseModel } from "../../operators/iforest/mod.js";
import { integerOption, numberOption } from "./options.js";
import { durationIn } from "./options.js";
import { addSerialFlags, serialAnalysisFromFlags, type SerialFlags } from "./serial-flags.js";

export const ANALYSES = ["rolling", "spc", "iforest", "serial"] as const;
/** `--model registry` / `--predict registry`: the registry's production model instead of a file. */
export const REGISTRY_MODEL = "registry";
export type AnalysisName = (typeof ANALYSES)[number];

/** The SPC run lengths, as `--we4-run` … `--n8-run` give them (the `spc` analysis and the `rules` command). */
export type RunLengthFlags = Pick<SpcParams, "n2Run" | "n3Run" | "n4Run" | "n7Run" | "n8Run"> & {
  /** Undefined: the default, or what a false-alarm budget sets (these four). */
  we4Run?: number;
  jumpLimit?: number;
  noisyRun?: number;
  stuckRun?: number;
};

/**
 * The SPC settings a command that raises alerts for people (`run`, `demo`) starts from: a longer
 * baseline, a centre line that follows slow process changes, and a false-alarm budget planned for
 * one false alarm per key per 12 hours of independent normal readings, which lands within issue
 * 14's one per 8 hours on the simulator (docs/spc.md, "Alerts a person can act on"). `replay`
 * keeps the textbook chart (fixed limits, every rule on).
 */
export const ALERTING_SPC_DEFAULTS = Object.freeze({
  baselineN: 300,
  trackRecords: 2000,
  trackHold: 18_000,
  trackGap: "60s",
  cusumCap: 2,
  baselineTiesMax: 0.1,
  faBudget: "1/12h",
  /** 30 s at 10 Hz: a fault's intermittent firings stay one episode (8 h on the simulator: 0.67 false episodes per key instead of 1.6 with 50). */
  episodeCloseAfter: 300,
});

export interface AnalysisFlags extends SerialFlags, RunLengthFlags {
  analysis: string;
  window?: number;
  span?: string;
  windowRecordsMax: number;
  alpha: number;
  baseline?: number;
  sigma: "std" | "mr";
  cl?: number;
  sigmaValue?: number;
  cusumK: number;
  /** Undefined: the default, or what a false-alarm budget sets. */
  cusumH?: number;
  ewmaLambda: number;
  /** Undefined: the default, or what a false-alarm budget sets. */
  ewmaL?: number;
  trackRecords: number;
  trackHold: number;
  /** A duration (or a number with --time-unit number); undefined: 0, no restarts. */
  trackGap?: string;
  cusumCap: number;
  baselineTiesMax: number;
  /** False alarms per reading (`0.0027`), or one per key per duration (`1/8h`, read at `rate`). */
  faBudget?: number | string;
  /** Readings per second per key, for a budget given per duration. */
  rate?: number;
  spcConfig?: string;
  episodeCloseAfter: number;
  episodeUpdateInterval?: string;
  model?: string;
  features?: string;
  watchModel: boolean;
}

/**
 * Adds the analysis flags to a command; `alerting`: start from {@link ALERTING_SPC_DEFAULTS}
 * (commands that raise alerts for people) instead of the textbook chart.
 */
export function addAnalysisFlags(command: Command, defaultAnalysis: string, alerting = false): Command {
  const d = alerting ? { ...DEFAULT_SPC_PARAMS, ...ALERTING_SPC_DEFAULTS } : DEFAULT_SPC_PARAMS;
  command
    .option("--analysis <list>", `analyses, comma separated (${ANALYSES.join(", ")}); their fields merge into one line`, defaultAnalysis)
    .option(
      "--window <N>",
      "rolling: count window, the last N records of each key; serial: the last K serials of each line (≤ 1024, default 256)",
      integerOption("--window", 1, 65535),
    )
    .option("--span <D>", "rolling: time window of duration D (90s, 15m, 1h, 24h, 7d; a plain number with --time-unit number)")
    .option(
      "--window-records-max <n>",
      "rolling: most records a time window holds per key",
      integerOption("--window-records-max", 2, 65535),
      DEFAULT_TIME_WINDOW_CAPACITY,
    )
    .option("--alpha <a>", "rolling: EWMA smoothing factor in (0, 1]", numberOption("--alpha"), DEFAULT_ROLLING_ALPHA)
    .option(
      "--baseline <N>",
      `spc: limits from each key's first N records (default ${d.baselineN} unless --cl/--sigma-value; a baseline of mostly repeated readings is collected again)`,
      integerOption("--baseline", 2, 2 ** 31 - 1),
    )
    .addOption(
      new Option("--sigma <method>", "spc: baseline sigma, sample std or mean moving range / 1.128")
        .choices(["std", "mr"])
        .default(d.sigmaMethod),
    )
    .option("--cl <c>", "spc: fixed centre line for every key (with --sigma-value)", numberOption("--cl"))
    .option("--sigma-value <s>", "spc: fixed sigma for every key (with --cl)", numberOption("--sigma-value"))
    .option("--cusum-k <k>", "spc: CUSUM reference value, in sigma", numberOption("--cusum-k"), d.cusumK)
    .option(
      "--cusum-h <h>",
      `spc: CUSUM decision interval, in sigma (default ${d.cusumH}, or what --fa-budget sets)`,
      numberOption("--cusum-h"),
    )
    .option("--ewma-lambda <l>", "spc: EWMA chart weight λ", numberOption("--ewma-lambda"), d.ewmaLambda)
    .option("--ewma-l <L>", `spc: EWMA chart limit width (default ${d.ewmaL}, or what --fa-budget sets)`, numberOption("--ewma-l"));
  addCentreLineFlags(command, d, alerting);
  addRunLengthFlags(command)
    .option(
      "--fa-budget <p|1/D>",
      "spc: false alarms a key may have in control, per reading (0.0027) or one per duration (1/8h, at --rate readings/s); picks the rules and sets CUSUM h, EWMA L",
      faBudgetOption,
      alerting ? ALERTING_SPC_DEFAULTS.faBudget : undefined,
    )
    .option(
      "--episode-close-after <n>",
      "spc: an alert episode closes after this many readings of its key without a firing of its rule family",
      integerOption("--episode-close-after", 1, 2 ** 31 - 1),
      alerting ? ALERTING_SPC_DEFAULTS.episodeCloseAfter : DEFAULT_EPISODE_CLOSE_AFTER,
    )
    .option(
      "--episode-update-interval <D>",
      "spc: event time between two `updated` events of an alert episode at least (0: at every firing; default 10s, with --time-unit number 10)",
    )
    .option(
      "--model <file>",
      "iforest: the model (model.json from `linewatch iforest train` or `import-sklearn`); run: `registry` for the registry's production iforest model, followed while running",
    )
    .option(
      "--features <list>",
      "iforest: the model's features in order: value, time, or rolling statistics (mean,std,slope,z,…); default: the model's feature names",
    )
    .option("--no-watch-model", "iforest: do not swap in a new version of the model file while running")
    .option(
      "--spc-config <file>",
      'spc: JSON {"keys": {"<key>": {"cl": c, "sigma": s, "fa_budget": p}}} for fixed limits and budgets per key',
    );
  return addSerialFlags(command);
}

/** The tracked centre line, the CUSUM ceiling and the baseline's ties (kernels/spc.ts). */
function addCentreLineFlags(
  command: Command,
  d: Pick<SpcParams, "trackRecords" | "trackHold" | "cusumCap" | "baselineTiesMax">,
  alerting: boolean,
): Command {
  return command
    .option(
      "--track-records <T>",
      "spc: the centre line follows the process over about T records (double exponential smoothing); 0: fixed at the baseline",
      numberOption("--track-records"),
      d.trackRecords,
    )
    .option(
      "--track-hold <n>",
      "spc: the tracked centre line holds still for up to n records in a row while CUSUM or EWMA signals",
      integerOption("--track-hold", 0, 2 ** 31 - 1),
      d.trackHold,
    )
    .option(
      "--track-gap <D>",
      "spc: a pause longer than D in a key's records restarts its tracked centre line from the next 50 records (a chart per operating mode)",
      alerting ? ALERTING_SPC_DEFAULTS.trackGap : undefined,
    )
    .option("--cusum-cap <c>", "spc: ceiling of the CUSUM sums, in multiples of H (0: none)", numberOption("--cusum-cap"), d.cusumCap)
    .option(
      "--baseline-ties-max <f>",
      "spc: a baseline with a larger share of repeated readings is collected again (stuck), or, when the others are the readings held at its minimum, charted as censored there (held at a physical limit)",
      numberOption("--baseline-ties-max"),
      d.baselineTiesMax,
    );
}

/** The run lengths of the SPC run rules (also used by `linewatch rules`). */
export function addRunLengthFlags(command: Command): Command {
  const d = DEFAULT_SPC_PARAMS;
  return command
    .option(
      "--we4-run <n>",
      `spc: points on one side for WE4 (default ${d.we4Run}, or what --fa-budget sets)`,
      integerOption("--we4-run", 2, 32),
    )
    .option("--n2-run <n>", "spc: points on one side for Nelson 2", integerOption("--n2-run", 2, 32), d.n2Run)
    .option("--n3-run <n>", "spc: points steadily rising or falling for Nelson 3", integerOption("--n3-run", 3, 32), d.n3Run)
    .option("--n4-run <n>", "spc: points alternating for Nelson 4", integerOption("--n4-run", 3, 32), d.n4Run)
    .option("--n7-run <n>", "spc: points within 1σ for Nelson 7", integerOption("--n7-run", 2, 32), d.n7Run)
    .option("--n8-run <n>", "spc: points beyond 1σ for Nelson 8", integerOption("--n8-run", 2, 32), d.n8Run)
    .option(
      "--jump-limit <c>",
      `spc: JUMP fires at a reading more than c·σ from the one before (default ${d.jumpLimit.toFixed(2)}, or what --fa-budget sets)`,
      numberOption("--jump-limit"),
    )
    .option(
      "--noisy-run <n>",
      `spc: moving ranges beyond 2σ in a row for NOISY (default ${d.noisyRun}, or what --fa-budget sets)`,
      integerOption("--noisy-run", 1, 31),
    )
    .option(
      "--stuck-run <n>",
      `spc: readings equal to the one before in a row for STUCK (default ${d.stuckRun}, or what --fa-budget sets)`,
      integerOption("--stuck-run", 1, 31),
    );
}

export interface AnalysisContext {
  timeUnit: TimeUnit;
  /** Count window when neither --window nor --span is given (run: 64; replay: required). */
  defaultWindow?: number;
  onAlert?: (event: AlertEpisodeEvent) => void;
  keyParts?: readonly string[];
  /** Where analyses log (model swaps); default the CLI's logger. */
  log?: Logger;
  /** The command raises alerts for people: {@link ALERTING_SPC_DEFAULTS}. */
  alerting?: boolean;
  /** `--model registry` (run): the production iforest model read at start, and the registry to follow. */
  iforestRegistry?: { model: IsolationForestModel; follow: RegistryFollowSpec };
}

/** The analyses the flags ask for, in the order given. */
export function analysesFromFlags(flags: AnalysisFlags, ctx: AnalysisContext): RecordAnalysis[] {
  const names = analysisNames(flags);
  const timeScale = ctx.timeUnit === "ms" ? 1000 : 1;
  return names.map((name) => {
    if (name === "rolling") return rollingAnalysis({ window: windowOf(flags, ctx), alpha: flags.alpha, timeScale });
    if (name === "iforest") return iforestFromFlags(flags, names.indexOf("rolling"), ctx);
    if (name === "serial") return serialAnalysisFromFlags(flags, ctx.timeUnit);
    return spcAnalysis({
      ...spcOptionsOf(flags, ctx.alerting === true, ctx.timeUnit, ctx.keyParts),
      ewmaField: names.includes("rolling") ? "spc_ewma" : "ewma",
      onAlert: ctx.onAlert,
      keyParts: ctx.keyParts,
    });
  });
}

/**
 * The same sensor analyses as data, for ingest workers (engine/jobs AnalysisSpec): the options of
 * {@link analysesFromFlags} without callbacks — per-key limits and budgets travel as maps, alert
 * events come back from the workers, and a watched model file is watched by each worker.
 */
export function analysisSpecsFromFlags(flags: AnalysisFlags, ctx: AnalysisContext): AnalysisSpec[] {
  const names = analysisNames(flags);
  const timeScale = ctx.timeUnit === "ms" ? 1000 : 1;
  return names.map((name): AnalysisSpec => {
    if (name === "rolling") return { name, options: { window: windowOf(flags, ctx), alpha: flags.alpha, timeScale } };
    if (name === "iforest") return { name, options: iforestOptionsOf(flags, names.indexOf("rolling"), ctx) };
    if (name === "serial")
      throw new ConfigError("--analysis", "serial runs as the serial job beside the sensor analyses, not on ingest workers");
    return {
      name: "spc",
      options: {
        ...spcOptionsOf(flags, ctx.alerting === true, ctx.timeUnit, ctx.keyParts),
        ewmaField: names.includes("rolling") ? "spc_ewma" : "ewma",
        keyParts: ctx.keyParts,
      },
    };
  });
}

function analysisNames(flags: AnalysisFlags): string[] {
  const names = flags.analysis
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (names.length === 0) throw new ConfigError("--analysis", "name at least one analysis");
  for (const n of names) {
    if (!(ANALYSES as readonly string[]).includes(n))
      throw new ConfigError("--analysis", `unknown analysis "${n}" (known: ${ANALYSES.join(", ")})`);
  }
  if (new Set(names).size !== names.length) throw new ConfigError("--analysis", "an analysis is named twice");
  return names;
}

function iforestFromFlags(flags: AnalysisFlags, rollingIndex: number, ctx: AnalysisContext): RecordAnalysis {
  const log = (ctx.log ?? cliLogger()).child({ component: "iforest" });
  const { followRegistry, ...options } = iforestOptionsOf(flags, rollingIndex, ctx);
  if (followRegistry !== undefined) return iforestAnalysis({ ...options, follow: iforestFollow(followRegistry, ctx.log ?? cliLogger()) });
  return iforestAnalysis({
    ...options,
    onSwap: (from, to) =>
      log.info({ file: flags.model, from: from.slice(0, 12), to: to.slice(0, 12) }, "model swapped; used from the next batch on"),
    onSwapError: (e) => log.warn({ file: flags.model, err: e }, "new version of the model not used; the current model stays"),
  });
}

/** The iforest options of the flags: a model file (watched unless --no-watch-model), or the registry's production model, followed. */
function iforestOptionsOf(flags: AnalysisFlags, rollingIndex: number, ctx: AnalysisContext) {
  if (flags.model === undefined) throw new ConfigError("--model", "the iforest analysis needs --model model.json");
  const registry = flags.model === REGISTRY_MODEL ? ctx.iforestRegistry : undefined;
  if (flags.model === REGISTRY_MODEL && registry === undefined)
    throw new ConfigError(
      "--model",
      "registry: only `linewatch run` follows the model registry; give a model file (linewatch models show ID names it)",
    );
  const model = registry?.model ?? parseModel(readModelText(flags.model), flags.model);
  const features = flags.features
    ?.split(",")
    .map((f) => f.trim())
    .filter((f) => f.length > 0) ?? [...model.featureNames];
  return {
    model,
    features,
    rollingIndex: rollingIndex >= 0 ? rollingIndex : undefined,
    watchPath: registry !== undefined || flags.watchModel === false ? undefined : flags.model,
    followRegistry: registry?.follow,
  };
}

function readModelText(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (cause) {
    throw new ConfigError("--model", `cannot read ${file}: ${(cause as Error).message}`);
  }
}

function windowOf(flags: AnalysisFlags, ctx: AnalysisContext): RollingWindow {
  if (flags.window !== undefined && flags.span !== undefined)
    throw new ConfigError("--window/--span", "give one: --window N (count) or --span D (time)");
  if (flags.span !== undefined)
    return { kind: "time", span: durationIn(flags.span, ctx.timeUnit, "--span"), capacity: flags.windowRecordsMax };
  const records = flags.window ?? ctx.defaultWindow;
  if (records === undefined) throw new ConfigError("--window/--span", "the rolling analysis needs --window N (count) or --span D (time)");
  return { kind: "count", records };
}

function spcOptionsOf(flags: AnalysisFlags, alerting: boolean, timeUnit: TimeUnit, keyParts?: readonly string[]) {
  const fixed = flags.cl !== undefined || flags.sigmaValue !== undefined;
  if (fixed && (flags.cl === undefined || flags.sigmaValue === undefined))
    throw new ConfigError("--cl/--sigma-value", "give both, or neither");
  if (fixed && flags.baseline !== undefined) throw new ConfigError("--baseline", "excludes --cl/--sigma-value (fixed limits)");
  const d = DEFAULT_SPC_PARAMS;
  const baselineN = alerting ? ALERTING_SPC_DEFAULTS.baselineN : d.baselineN;
  let params: SpcParams = {
    baselineN: fixed ? 0 : (flags.baseline ?? baselineN),
    sigmaMethod: flags.sigma,
    cusumK: flags.cusumK,
    cusumH: flags.cusumH ?? d.cusumH,
    ewmaLambda: flags.ewmaLambda,
    ewmaL: flags.ewmaL ?? d.ewmaL,
    we4Run: flags.we4Run ?? d.we4Run,
    n2Run: flags.n2Run,
    n3Run: flags.n3Run,
    n4Run: flags.n4Run,
    n7Run: flags.n7Run,
    n8Run: flags.n8Run,
    trackRecords: flags.trackRecords,
    trackHold: flags.trackHold,
    trackGap: flags.trackGap === undefined ? 0 : durationIn(flags.trackGap, timeUnit, "--track-gap"),
    cusumCap: flags.cusumCap,
    baselineTiesMax: flags.baselineTiesMax,
    jumpLimit: flags.jumpLimit ?? d.jumpLimit,
    noisyRun: flags.noisyRun ?? d.noisyRun,
    stuckRun: flags.stuckRun ?? d.stuckRun,
  };
  const budget = flags.faBudget === undefined ? undefined : parseFaBudget(flags.faBudget, flags.rate);
  let rules: RuleSelection | undefined;
  let settlingParams: SpcParams | undefined;
  if (budget !== undefined) {
    const plan = planForBudget(budget, params, {
      cusumH: flags.cusumH !== undefined,
      ewmaL: flags.ewmaL !== undefined,
      we4Run: flags.we4Run !== undefined,
      jumpLimit: flags.jumpLimit !== undefined,
      noisyRun: flags.noisyRun !== undefined,
      stuckRun: flags.stuckRun !== undefined,
    });
    params = plan.params;
    rules = plan.rules;
    // A settling key runs STEP on the budget share its charts of levels leave unused.
    if (alerting) settlingParams = { ...params, stepWindow: plan.settlingStep.window, stepLimit: plan.settlingStep.limit };
  }
  const perKey = flags.spcConfig === undefined ? undefined : readSpcConfig(flags.spcConfig);
  return {
    params,
    limits: fixed ? { cl: flags.cl as number, sigma: flags.sigmaValue as number } : undefined,
    limitsByKey: perKey?.limits,
    rules,
    budgetByKey: perKey?.budgets,
    // Readings while a sensor settles after a mode change are not in control by construction.
    silentKeySuffix: alerting ? "/settling" : undefined,
    settlingParams,
    episodes: {
      families: DEFAULT_EPISODE_SETTINGS.families,
      closeAfter: flags.episodeCloseAfter ?? DEFAULT_EPISODE_CLOSE_AFTER,
      updateIntervalMs:
        flags.episodeUpdateInterval === undefined
          ? timeUnit === "ms"
            ? DEFAULT_EPISODE_SETTINGS.updateIntervalMs
            : DEFAULT_EPISODE_SETTINGS.updateIntervalMs / 1000
          : durationIn(flags.episodeUpdateInterval, timeUnit, "--episode-update-interval"),
      // Keys beyond the named parts (machine/sensor/operating mode) are one sensor's charts per mode.
      sensorKeyParts: alerting ? keyParts?.length : undefined,
    },
  };
}

/** `--fa-budget` as typed: a number stays a number, `1/D` stays text (read with the rate later). */
function faBudgetOption(text: string): number | string {
  const p = Number(text);
  if (text.trim() !== "" && Number.isFinite(p)) return p;
  if (/^1\/./.test(text.trim())) return text.trim();
  throw new InvalidArgumentError(`--fa-budget must be a probability or 1/<duration> (1/8h), got "${text}"`);
}

/**
 * `--fa-budget`: a probability per reading (`0.0027`), or `1/D` — one false alarm per key per
 * duration D, at `rate` readings per second per key.
 */
export function parseFaBudget(value: number | string, rate: number | undefined): number {
  const text = String(value).trim();
  const perDuration = /^1\/(.+)$/.exec(text);
  if (perDuration === null) {
    const p = Number(text);
    if (!(p > 0 && p < 1)) throw new ConfigError("--fa-budget", `must be a probability in (0, 1) or 1/<duration>, got "${text}"`);
    return p;
  }
  if (rate === undefined || !(rate > 0))
    throw new ConfigError("--fa-budget", `"${text}" is per duration: it needs the readings per second per key (--rate)`);
  let ms: number;
  try {
    ms = parseDuration(perDuration[1]);
  } catch (e) {
    throw new ConfigError("--fa-budget", `"${text}": ${(e as Error).message}`);
  }
  const readings = (ms / 1000) * rate;
  if (!(readings > 1)) throw new ConfigError("--fa-budget", `"${text}" at ${rate} readings/s is at most one reading`);
  return 1 / readings;
}

/** Per-key limits and budgets: {"keys": {"M-001/temperature": {"cl": 70, "sigma": 0.4, "fa_budget": 0.003}}}. */
export function readSpcConfig(path: string): { limits: Map<string, SpcLimits>; budgets: Map<string, number> } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (cause) {
    throw new ConfigError("--spc-config", `cannot read ${path}: ${(cause as Error).message}`);
  }
  const keys = (parsed as { keys?: unknown })?.keys;
  if (keys === null || typeof keys !== "object") throw new ConfigError("--spc-config", `${path}: expected {"keys": {...}}`);
  const limits = new Map<string, SpcLimits>();
  const budgets = new Map<string, number>();
  for (const [key, v] of Object.entries(keys as Record<string, unknown>)) {
    const e = v as { cl?: unknown; sigma?: unknown; fa_budget?: unknown };
    if (e.cl !== undefined || e.sigma !== undefined) {
      if (typeof e.cl !== "number" || typeof e.sigma !== "number")
        throw new ConfigError("--spc-config", `${path}: key "${key}" needs numbers cl and sigma`);
      limits.set(key, { cl: e.cl, sigma: e.sigma });
    }
    if (e.fa_budget !== undefined) {
      if (typeof e.fa_budget !== "number") throw new ConfigError("--spc-config", `${path}: key "${key}": fa_budget must be a number`);
      budgets.set(key, e.fa_budget);
    }
  }
  return { limits, budgets };
}
