/**
 * The alert evaluation (`npm run bench -- alerts`): the plant simulator at full speed for a stated
 * simulated time (default 8 h, 8 machines × 6 sensors, seed fixed) through the analyses of
 * `linewatch run` — the same job (runJob), the same flags (engine/cli parseRunAnalysisSettings) —
 * and the fault-detection scorecard of each setting, settings side by side. This is how the
 * default rule set is tuned: every setting sees the same readings and the same injected faults.
 *
 * Each setting also runs on the simulator's fault-free twin (the same seed without faults: the
 * same readings outside the fault windows), and a second scorecard counts only the openings the
 * twin does not have at the same key, family and reading — the openings the faults caused. At a
 * high false-alarm rate a fault window catches a false opening by chance; the caused scorecard
 * leaves those out, so settings with very different false rates compare on what they detect.
 */
import { Writable } from "node:stream";
import { loadavg } from "node:os";
import { DEFAULT_WORKERS } from "../engine/core/mod.js";
import {
  type AlertOpening,
  alertOpening,
  DEFAULT_SCORECARD_GRACE_MS,
  EpisodeEscalations,
  FaultScorecard,
  formatScorecard,
  runJob,
  type Scorecard,
} from "../engine/jobs/mod.js";
import { parseRunAnalysisSettings, type RunAnalysisSettings, runAnalyses } from "../engine/cli/mod.js";
import type { DegradationLabel, FaultLabel } from "../connectors/sim/mod.js";
import type { AlertEpisodeEvent } from "../operators/spc/mod.js";

export const DEFAULT_ALERT_EVAL_HOURS = 8;
export const DEFAULT_ALERT_EVAL_SEED = 1;
export const DEFAULT_ALERT_EVAL_MACHINES = 8;
export const DEFAULT_ALERT_EVAL_GRACE_MS = DEFAULT_SCORECARD_GRACE_MS;

export interface AlertSetting {
  /** What the report calls it: the arguments, or "default". */
  name: string;
  /** `run` flags on top of the defaults (analyses, their options, keying). */
  args: readonly string[];
}

export interface AlertEvalOptions {
  hours: number;
  seed: number;
  machines: number;
  graceMs: number;
  settings: readonly AlertSetting[];
  progress?: (line: string) => void;
}

export interface AlertSettingResult {
  name: string;
  args: readonly string[];
  scorecard: Scorecard;
  /** The same, counting only the openings the fault-free twin does not have (key, family, reading). */
  caused: Scorecard;
  /** Openings of the fault-free twin run. */
  twinOpenings: number;
  readings: number;
  /** Wall time of the setting's run (the machine is shared: informational). */
  seconds: number;
}

export interface AlertEvalReport {
  hours: number;
  seed: number;
  machines: number;
  sensors: number;
  graceMs: number;
  settings: AlertSettingResult[];
  loadAverage: number[];
}

/** A setting from its text, e.g. `--fa-budget 0.0027 --we4-run 6` (split at spaces), or `default`. */
export function alertSetting(text: string): AlertSetting {
  const args =
    text.trim() === "default"
      ? []
      : text
          .trim()
          .split(/\s+/)
          .filter((a) => a.length > 0);
  return { name: args.length === 0 ? "default" : args.join(" "), args };
}

/** Runs every setting over the same simulated time; a setting with a bad flag fails before any runs. */
export async function runAlertEval(o: AlertEvalOptions): Promise<AlertEvalReport> {
  const parsed = o.settings.map((s) => ({ ...s, settings: parseRunAnalysisSettings(s.args) }));
  const results: AlertSettingResult[] = [];
  for (const s of parsed) {
    o.progress?.(`${s.name}: ${o.hours} simulated hours, then the fault-free twin …`);
    const caused = new FaultScorecard(o.graceMs);
    const scorecard = new TeeScorecard(o.graceMs, caused);
    const openings: Array<{ id: string; opening: AlertOpening }> = [];
    const escalations: Array<{ id: string; escalation: AlertOpening }> = [];
    const escalationsOf = new EpisodeEscalations();
    const t0 = performance.now();
    const readings = await runSetting(o, s.settings, {}, scorecard, (e) => {
      scorecard.observe(e);
      const opening = alertOpening(e);
      if (opening !== null) openings.push({ id: openingId(e), opening });
      const escalation = escalationsOf.observe(e);
      if (escalation !== null) escalations.push({ id: escalationId(e), escalation });
    });
    const seconds = (performance.now() - t0) / 1000;
    const twin = new Set<string>();
    const twinEscalationsOf = new EpisodeEscalations();
    await runSetting(o, s.settings, { faultRate: 0 }, undefined, (e) => {
      if (alertOpening(e) !== null) twin.add(openingId(e));
      if (twinEscalationsOf.observe(e) !== null) twin.add(escalationId(e));
    });
    for (const { id, opening } of openings) if (!twin.has(id)) caused.addOpening(opening);
    for (const { id, escalation } of escalations) if (!twin.has(id)) caused.addEscalation(escalation);
    results.push({
      name: s.name,
      args: s.args,
      scorecard: scorecard.result(),
      caused: caused.result(),
      twinOpenings: twin.size,
      readings,
      seconds,
    });
    o.progress?.(`${s.name}: ${readings} readings in ${seconds.toFixed(1)} s`);
  }
  return {
    hours: o.hours,
    seed: o.seed,
    machines: o.machines,
    sensors: results[0]?.scorecard.sensorKeys ?? 0,
    graceMs: o.graceMs,
    settings: results,
    loadAverage: loadavg(),
  };
}

/** A scorecard that hands the run's labels, keys and reading times to a second one as well. */
class TeeScorecard extends FaultScorecard {
  constructor(
    graceMs: number,
    private readonly also: FaultScorecard,
  ) {
    super(graceMs);
  }
  override addSensorKeys(keys: readonly string[]): void {
    super.addSensorKeys(keys);
    this.also.addSensorKeys(keys);
  }
  override coverReadings(first: number, last: number): void {
    super.coverReadings(first, last);
    this.also.coverReadings(first, last);
  }
  override addLabels(labels: readonly FaultLabel[]): void {
    super.addLabels(labels);
    this.also.addLabels(labels);
  }
  override addDegradation(labels: readonly DegradationLabel[]): void {
    super.addDegradation(labels);
    this.also.addDegradation(labels);
  }
}

/** An opening's identity across the faulty run and its twin: key, family and the reading's time. */
function openingId(e: AlertEpisodeEvent): string {
  return `${e.key}\u0000${e.family}\u0000${e.opened_at}`;
}

/** An escalation's identity across the faulty run and its twin: key, family and the firing's time. */
function escalationId(e: AlertEpisodeEvent): string {
  return `${e.key}\u0000${e.family}\u0000${e.last_fired_at}\u0000escalation`;
}

/** One run of a setting through `run`'s job at full speed, without files; returns the readings. */
async function runSetting(
  o: AlertEvalOptions,
  settings: RunAnalysisSettings,
  simulator: { faultRate?: number },
  scorecard: FaultScorecard | undefined,
  onAlert: (e: AlertEpisodeEvent) => void,
): Promise<number> {
  const result = await runJob({
    simulator: { seed: o.seed, machines: o.machines, durationMs: o.hours * 3_600_000, rateHz: settings.flags.rate, ...simulator },
    analyses: runAnalyses(settings, onAlert),
    keyByMode: settings.keyByMode,
    settleMs: settings.settleMs,
    scorecard,
    // `run`'s defaults, at full speed, without files.
    workers: DEFAULT_WORKERS,
    groups: 16,
    batchRecordsMax: 4096,
    speed: Infinity,
    flushIntervalMs: 250,
    outPath: null,
    fileBytesMax: 1 << 30,
    zAlarm: 4,
    summaryIntervalMs: 0,
    console: new Writable({ write: (_chunk, _encoding, done) => done() }),
    stop: new Promise(() => {}),
  });
  return result.metrics.recordsOut;
}

/** One table per setting, then a summary line each. */
export function formatAlertEvalReport(r: AlertEvalReport): string {
  const out = [
    `alert evaluation: plant simulator, seed ${r.seed}, ${r.machines} machines × ${r.sensors / r.machines} sensors, ${r.hours} simulated hours per setting, ` +
      `grace ${r.graceMs / 1000} s; load average ${r.loadAverage.map((l) => l.toFixed(2)).join(" ")}`,
  ];
  for (const s of r.settings) {
    out.push(
      "",
      `setting: ${s.name}  (${s.readings} readings, ${s.seconds.toFixed(1)} s)`,
      formatScorecard(s.scorecard),
      `caused by the faults (openings the fault-free twin, ${s.twinOpenings} openings, does not have at the same key, family and reading): ` +
        `${causedLine(s.caused)}`,
    );
  }
  out.push("", "summary (detected: all kinds; worst kind: lowest rate; false: per sensor key per 8 simulated hours, target ≤ 1):");
  const width = Math.max(...r.settings.map((s) => s.name.length));
  for (const s of r.settings)
    out.push(
      `  ${s.name.padEnd(width)}  ${summaryLine(s.scorecard)}; caused by the faults ${((s.caused.all.rate ?? 0) * 100).toFixed(1)}%`,
    );
  return out.join("\n");
}

/** Detection per kind, and false openings, of the caused scorecard. */
function causedLine(c: Scorecard): string {
  const pct = (x: number | null) => (x === null ? "—" : `${(100 * x).toFixed(1)}%`);
  const esc = (k: { detectedByEscalation: number }) => (k.detectedByEscalation > 0 ? ` (${k.detectedByEscalation} by escalation)` : "");
  return `${c.kinds.map((k) => `${k.kind} ${pct(k.rate)}${esc(k)}`).join(", ")}, all ${pct(c.all.rate)}${esc(c.all)}; false ${c.falseEpisodes}`;
}

function summaryLine(c: Scorecard): string {
  const rated = c.kinds.filter((k) => k.rate !== null);
  const worst = rated.reduce<(typeof rated)[number] | null>((w, k) => (w === null || (k.rate ?? 0) < (w.rate ?? 0) ? k : w), null);
  const pct = (x: number | null) => (x === null ? "—" : `${(100 * x).toFixed(1)}%`);
  const per8h = c.falsePerKeyPerHour === null ? "—" : per8hText(8 * c.falsePerKeyPerHour);
  return (
    `detected ${pct(c.all.rate)} (worst kind ${worst === null ? "—" : `${worst.kind} ${pct(worst.rate)}`}), ` +
    `median delay ${c.all.delayMedianS === null ? "—" : `${c.all.delayMedianS.toFixed(1)} s`}, ` +
    `episodes/fault median ${c.all.episodesPerFaultMedian ?? "—"} mean ${c.all.episodesPerFaultMean?.toFixed(2) ?? "—"} max ${c.all.episodesPerFaultMax ?? "—"}, ` +
    `false ${c.falseEpisodes} = ${per8h} per key per 8 h` +
    (c.wearEpisodes > 0 ? `, wear ${c.wearEpisodes}` : "")
  );
}

/** Whole numbers from 100 up, else three significant digits. */
function per8hText(x: number): string {
  return x >= 100 ? x.toFixed(0) : x.toPrecision(3);
}
