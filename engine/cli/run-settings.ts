/**
 * The settings of `linewatch run` that decide its alerts on the simulator: the analyses and their
 * options (analysis-flags.ts), keying by operating mode and the settling time after a mode change.
 * `run` adds and reads them here; the alert evaluation (bench alerts) parses a list of arguments
 * with the same flags, so a setting it scores is exactly what `run` would do with those flags.
 */
import { Command, CommanderError } from "commander";
import { ConfigError, parseDuration } from "../core/mod.js";
import { type AnalysisSpec, type SourceKey, sensorSettleMs, trackTimeConstantMs } from "../jobs/mod.js";
import type { RecordAnalysis } from "../../operators/mod.js";
import { type AnalysisContext, type AnalysisFlags, addAnalysisFlags, analysesFromFlags, analysisSpecsFromFlags } from "./analysis-flags.js";
import { durationOption, numberOption } from "./options.js";

/** `run`'s default analyses. */
export const RUN_DEFAULT_ANALYSIS = "rolling,spc";

export interface KeyingFlags {
  keyByMode: boolean;
  settle?: string;
}

/** A run's alert-deciding settings, parsed. */
export interface RunAnalysisSettings {
  flags: AnalysisFlags;
  keyByMode: boolean;
  /** Per source key: how long its readings settle after a mode change. */
  settleMs: (key: SourceKey) => number;
}

/** `--no-key-by-mode` and `--settle`. */
export function addKeyingFlags(command: Command): Command {
  return command
    .option("--no-key-by-mode", "key by machine/sensor only (default: machine/sensor/operating mode, one chart and window per mode)")
    .option(
      "--settle <D>",
      "time after a mode change a sensor's readings count as settling (default: until what the mode chart's tracked line lags of the largest step between modes is below 0.1σ of the sensor's noise)",
      durationOption,
    );
}

/** What the analyses call with each alert event. */
export type AlertCallback = NonNullable<AnalysisContext["onAlert"]>;

/**
 * How the run's analyses are built: ms timestamps, a count window of 64 by default, alerts keyed
 * by machine and sensor; `iforestRegistry`: `--model registry`'s model, read at start.
 */
export function runAnalysisContext(onAlert: AlertCallback, iforestRegistry?: AnalysisContext["iforestRegistry"]): AnalysisContext {
  return { timeUnit: "ms", defaultWindow: 64, onAlert, keyParts: ["machine_id", "sensor_type"], alerting: true, iforestRegistry };
}

/**
 * How long a key's readings settle after a mode change: `--settle`, or until its sensor's remaining
 * approach is too small for the mode chart to see (sensorSettleMs: the chart's tracked centre line,
 * `--track-records` at `--rate`, restarts after a pause longer than `--track-gap` and follows it).
 */
export function settleTime(
  flags: Pick<AnalysisFlags, "trackRecords" | "trackGap"> & KeyingFlags & { rate?: number },
): (key: SourceKey) => number {
  if (flags.settle !== undefined) {
    const ms = parseDuration(flags.settle);
    return () => ms;
  }
  const gapMs = flags.trackGap === undefined ? 0 : parseDuration(flags.trackGap);
  const trackMs = flags.rate === undefined ? 0 : trackTimeConstantMs(flags.trackRecords ?? 0, flags.rate, gapMs);
  return (key) => sensorSettleMs(key, trackMs);
}

/**
 * `args` (e.g. `["--fa-budget", "0.0027", "--we4-run", "6"]`) read as `run` reads its analysis and
 * keying flags; anything else, or a bad value, is a ConfigError naming it.
 */
export function parseRunAnalysisSettings(args: readonly string[]): RunAnalysisSettings {
  const command = addKeyingFlags(addAnalysisFlags(new Command("setting"), RUN_DEFAULT_ANALYSIS, true))
    .option("--rate <hz>", "readings per second per sensor (the simulator's, and a per-duration budget's)", numberOption("--rate"), 10)
    .exitOverride()
    .configureOutput({ writeErr: () => {}, writeOut: () => {} });
  try {
    command.parse([...args], { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) throw new ConfigError(args.join(" ") || "(default)", error.message.replace(/^error: /, ""));
    throw error;
  }
  if (command.args.length > 0) throw new ConfigError(args.join(" "), `unexpected argument "${command.args[0]}"`);
  const flags = command.opts<AnalysisFlags & KeyingFlags>();
  if (flags.analysis.split(",").some((a) => a.trim() === "serial"))
    throw new ConfigError("--analysis", "serial is the serial job, not an analysis of sensor readings");
  return { flags, keyByMode: flags.keyByMode, settleMs: settleTime(flags) };
}

/** The sensor analyses of a setting, as `run` builds them. */
export function runAnalyses(settings: RunAnalysisSettings, onAlert: AlertCallback): RecordAnalysis[] {
  return analysesFromFlags(settings.flags, runAnalysisContext(onAlert));
}

/** The same analyses as data for ingest workers (AnalysisSpec), as `run` builds them on its ingest path; alerts come back from the workers. */
export function runAnalysisSpecs(settings: RunAnalysisSettings): AnalysisSpec[] {
  return analysisSpecsFromFlags(
    settings.flags,
    runAnalysisContext(() => {}),
  );
}
