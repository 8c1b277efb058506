/**
 * The alert evaluation (`npm run bench -- alerts`): the plant simulator at full speed for a stated
 * simulated time (default 8 h, 8 machines × 6 sensors, seed fixed) through the analyses of
 * `linewatch run` — the same job (runJob), the same flags (engine/cli parseRunAnalysisSettings) —
 * and the fault-detection scorecard of each setting, settings side by side. This is how the
 * default rule set is tuned: every setting sees the same readings and the same injected faults.
 */
import { Writable } from "node:stream";
import { loadavg } from "node:os";
import { DEFAULT_WORKERS } from "../engine/core/mod.js";
import { DEFAULT_SCORECARD_GRACE_MS, FaultScorecard, formatScorecard, runJob, type Scorecard } from "../engine/jobs/mod.js";
import { parseRunAnalysisSettings, runAnalyses } from "../engine/cli/mod.js";

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
    o.progress?.(`${s.name}: ${o.hours} simulated hours …`);
    const scorecard = new FaultScorecard(o.graceMs);
    const t0 = performance.now();
    const result = await runJob({
      simulator: { seed: o.seed, machines: o.machines, durationMs: o.hours * 3_600_000, rateHz: s.settings.flags.rate },
      analyses: runAnalyses(s.settings, (e) => scorecard.observe(e)),
      keyByMode: s.settings.keyByMode,
      settleMs: s.settings.settleMs,
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
    const seconds = (performance.now() - t0) / 1000;
    results.push({ name: s.name, args: s.args, scorecard: scorecard.result(), readings: result.metrics.recordsOut, seconds });
    o.progress?.(`${s.name}: ${result.metrics.recordsOut} readings in ${seconds.toFixed(1)} s`);
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

/** One table per setting, then a summary line each. */
export function formatAlertEvalReport(r: AlertEvalReport): string {
  const out = [
    `alert evaluation: plant simulator, seed ${r.seed}, ${r.machines} machines × ${r.sensors / r.machines} sensors, ${r.hours} simulated hours per setting, ` +
      `grace ${r.graceMs / 1000} s; load average ${r.loadAverage.map((l) => l.toFixed(2)).join(" ")}`,
  ];
  for (const s of r.settings) {
    out.push("", `setting: ${s.name}  (${s.readings} readings, ${s.seconds.toFixed(1)} s)`, formatScorecard(s.scorecard));
  }
  out.push("", "summary (detected: all kinds; worst kind: lowest rate; false: per sensor key per 8 simulated hours, target ≤ 1):");
  const width = Math.max(...r.settings.map((s) => s.name.length));
  for (const s of r.settings) out.push(`  ${s.name.padEnd(width)}  ${summaryLine(s.scorecard)}`);
  return out.join("\n");
}

function summaryLine(c: Scorecard): string {
  const rated = c.kinds.filter((k) => k.rate !== null);
  const worst = rated.reduce<(typeof rated)[number] | null>((w, k) => (w === null || (k.rate ?? 0) < (w.rate ?? 0) ? k : w), null);
  const pct = (x: number | null) => (x === null ? "—" : `${(100 * x).toFixed(1)}%`);
  const per8h = c.falsePerKeyPerHour === null ? "—" : per8hText(8 * c.falsePerKeyPerHour);
  return (
    `detected ${pct(c.all.rate)} (worst kind ${worst === null ? "—" : `${worst.kind} ${pct(worst.rate)}`}), ` +
    `median delay ${c.all.delayMedianS === null ? "—" : `${c.all.delayMedianS.toFixed(1)} s`}, ` +
    `episodes/fault median ${c.all.episodesPerFaultMedian ?? "—"} max ${c.all.episodesPerFaultMax ?? "—"}, ` +
    `false ${c.falseEpisodes} = ${per8h} per key per 8 h`
  );
}

/** Whole numbers from 100 up, else three significant digits. */
function per8hText(x: number): string {
  return x >= 100 ? x.toFixed(0) : x.toPrecision(3);
}
