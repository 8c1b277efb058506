/**
 * The fault-detection scorecard of a run on the plant simulator: the injected faults' labels
 * (connectors/sim FaultLabel, the ground truth) against the alert openings the run raised, in
 * event time. Pure logic, no I/O: the run feeds labels, readings' times and openings as they come
 * and reads the {@link Scorecard} at its end ({@link scoreFaults} does it in one call).
 *
 * Definitions (a "sensor" is machine_id + sensor_type, whatever further parts — operating mode,
 * settling — the alert's key has):
 * - a fault's window is [start, end + grace] of its sensor, cut at the last reading; a fault that
 *   starts after the last reading is left out (it was never seen);
 * - an opening inside a window is attributed to that fault; when the windows of two faults of the
 *   sensor overlap, to the one under way at the opening (a fault queued right after another),
 *   else to the earliest-starting; every other opening is a false episode;
 * - an escalation — an `updated` event of an open episode that has a rule it did not have at its
 *   previous event, or a higher severity ({@link EpisodeEscalations}) — at its last firing is
 *   attributed the same way; it is no opening (no episode of its own), but a person watching the
 *   open episode sees it change: a fault that starts while an episode of its sensor is open (the
 *   simulator queues a fault that arrives during another, so one often follows another at once)
 *   folds into that episode and shows only this way;
 * - a fault is detected when at least one opening or escalation is attributed to it; its delay
 *   is its first attributed opening or escalation − start; episodes per fault count openings;
 * - false episodes per key per hour = false openings / (sensor keys × simulated hours), the hours
 *   running from the first to the last reading.
 *
 * Wear (connectors/sim wear-model.ts) is not a fault but it moves readings: an opening that no
 * fault explains, on a sensor that a machine's degradation phase moves (from its onset, the P
 * point, to the failure or replacement that ends it), is a wear detection — true, counted apart —
 * not a false episode; the key-hours under degradation leave the false rate's exposure.
 */
import { type DegradationLabel, FAULT_KINDS, type FaultKind, type FaultLabel } from "../../connectors/sim/mod.js";

/** A fault counts as detected by an opening up to this long after its last faulty reading. */
export const DEFAULT_SCORECARD_GRACE_MS = 60_000;
/** Issue 14's target: at most one false episode per sensor key per 8 simulated hours. */
export const FALSE_EPISODES_TARGET_PER_KEY_HOUR = 1 / 8;
/** Faults a scorecard keeps (a fault costs ~100 bytes); further labels are counted in `labelsUnscored`. */
export const SCORECARD_FAULTS_MAX = 1_000_000;

/** One alert opening on a sensor, at the event time of the reading that opened it. */
export interface AlertOpening {
  machine_id: string;
  sensor_type: string;
  /** Epoch ms of event time. */
  at: number;
}

/**
 * An alert episode event (issue 14, point 1) as far as the scorecard reads it: an episode opens
 * with `event: "opened"` at `opened_at`.
 */
export interface AlertEpisodeEventShape {
  type: "alert_episode";
  event: string;
  key: string;
  fields: Record<string, string>;
  opened_at: number;
  /** What an escalation is read from (absent: the event escalates nothing). */
  episode_id?: string;
  rules?: readonly string[];
  severity?: string;
  last_fired_at?: number;
}

/**
 * A per-rule SPC alert event (operators/spc SpcAlertEvent, before episodes) as far as the
 * scorecard reads it: it opens with `state: "open"` at `opened_at`.
 */
export interface SpcAlertEventShape {
  type: "spc_alert";
  state: string;
  key: string;
  fields: Record<string, string>;
  opened_at: number;
}

/**
 * The alert events the scorecard understands: per-rule SPC alerts, or episodes — by their shape,
 * so the scorecard reads whichever the analyses emit.
 */
export type ScoredAlertEvent = SpcAlertEventShape | AlertEpisodeEventShape;

export interface KindScore {
  kind: FaultKind;
  injected: number;
  detected: number;
  /** Of the detected, those with no opening: detected by an escalation of an open episode only. */
  detectedByEscalation: number;
  /** detected / injected; null when none was injected. */
  rate: number | null;
  /** Seconds of event time from a detected fault's start to its first opening; null when none detected. */
  delayMedianS: number | null;
  delayP90S: number | null;
  /** Openings attributed to each fault with at least one. */
  episodesPerFaultMedian: number | null;
  episodesPerFaultMean: number | null;
  episodesPerFaultMax: number | null;
  /**
   * The detection rate chance alone would give: the mean over the faults of 1 − e^(−λ·w), the
   * chance that openings arriving at random at their sensor's false-episode rate λ fall at least
   * once in the fault's window of length w. Near `rate`, the detections say little.
   */
  chanceRate: number | null;
}

export interface Scorecard {
  graceMs: number;
  /** Event time of the first and last reading (epoch ms); null before any reading. */
  firstReadingAt: number | null;
  lastReadingAt: number | null;
  simulatedHours: number;
  sensorKeys: number;
  /** One row per fault kind (FAULT_KINDS order), then `all`. */
  kinds: KindScore[];
  all: Omit<KindScore, "kind">;
  openings: number;
  falseEpisodes: number;
  /** Escalations of open episodes, and those attributed to no fault. */
  escalations: number;
  falseEscalations: number;
  /** falseEpisodes / (sensorKeys × simulatedHours); null when no time or no key was covered. */
  falsePerKeyPerHour: number | null;
  /** Openings no fault explains on a sensor under a degradation phase of its machine (see the header). */
  wearEpisodes: number;
  /** Sensor key-hours under a degradation phase, left out of the false rate's exposure. */
  degradedKeyHours: number;
  /** The sensor with the most false episodes (first in key order on a tie); null when there were none. */
  worst: { key: string; falseEpisodes: number; perHour: number | null } | null;
  targetFalsePerKeyPerHour: number;
  /** Labels of faults that start after the last reading: left out. */
  labelsAfterEnd: number;
  /** Labels beyond SCORECARD_FAULTS_MAX: not scored. */
  labelsUnscored: number;
}

/**
 * The opening an alert event stands for, or null: a today-event with state "open", or an episode
 * event "opened". The sensor comes from the event's fields, else from the key's first two parts.
 */
export function alertOpening(event: ScoredAlertEvent): AlertOpening | null {
  const opens = event.type === "alert_episode" ? event.event === "opened" : event.state === "open";
  if (!opens) return null;
  const { machine_id, sensor_type } = event.fields;
  if (machine_id !== undefined && sensor_type !== undefined) return { machine_id, sensor_type, at: event.opened_at };
  const [machine, sensor] = event.key.split("/");
  return { machine_id: machine_id ?? machine, sensor_type: sensor_type ?? sensor ?? "", at: event.opened_at };
}

const SEVERITY_RANK: Readonly<Record<string, number>> = { low: 0, medium: 1, high: 2 };

/**
 * Reads escalations from a stream of episode events: an `updated` event whose episode has a rule
 * it did not have at its previous event, or a higher severity. Keeps the open episodes' rule
 * counts and severities (bounded as the open episodes are: keys × families), forgetting an
 * episode at its close.
 */
export class EpisodeEscalations {
  private readonly open = new Map<string, { rules: number; rank: number }>();

  /** The escalation `event` stands for (at its last firing), or null. */
  observe(event: ScoredAlertEvent): AlertOpening | null {
    if (event.type !== "alert_episode" || event.episode_id === undefined || event.rules === undefined) return null;
    const id = event.episode_id;
    if (event.event === "closed") {
      this.open.delete(id);
      return null;
    }
    const now = { rules: event.rules.length, rank: SEVERITY_RANK[event.severity ?? "low"] ?? 0 };
    const before = this.open.get(id);
    this.open.set(id, now);
    if (event.event !== "updated" || before === undefined || (now.rules <= before.rules && now.rank <= before.rank)) return null;
    const sensor = alertOpening({ ...event, event: "opened" });
    return sensor === null ? null : { ...sensor, at: event.last_fired_at ?? event.opened_at };
  }
}

/** The scorecard of `labels` and `openings` over readings from `firstReadingAt` to `lastReadingAt`. */
export function scoreFaults(
  labels: readonly FaultLabel[],
  openings: readonly AlertOpening[],
  coverage: { firstReadingAt: number; lastReadingAt: number; sensorKeys: readonly string[] },
  graceMs = DEFAULT_SCORECARD_GRACE_MS,
): Scorecard {
  const card = new FaultScorecard(graceMs);
  card.addSensorKeys(coverage.sensorKeys);
  card.coverReadings(coverage.firstReadingAt, coverage.lastReadingAt);
  card.addLabels([...labels].sort((a, b) => a.start - b.start));
  for (const o of openings) card.addOpening(o);
  return card.result();
}

/**
 * The scorecard, fed as a run goes. Order: a fault's label before the openings it may explain
 * (the simulator emits a label with the fault's first reading, before the engine sees it), and a
 * sensor's labels in start order.
 */
export class FaultScorecard {
  private readonly sensors = new Map<string, SensorFaults>();
  private firstAt = Infinity;
  private lastAt = -Infinity;
  private openings = 0;
  private escalationCount = 0;
  private readonly escalations = new EpisodeEscalations();
  private faults = 0;
  private labelsUnscored = 0;
  /** Degradation phases by machine: the sensors they move and [start, end] (end Infinity while under way). */
  private readonly degradation = new Map<string, Array<{ sensors: readonly string[]; start: number; end: number }>>();
  private wearEpisodes = 0;

  constructor(readonly graceMs = DEFAULT_SCORECARD_GRACE_MS) {}

  /** The sensor keys (`machine/sensor`) of the run, so a key without any alert counts too. */
  addSensorKeys(keys: readonly string[]): void {
    for (const k of keys) this.sensorOf(k);
  }

  /** Readings from `first` to `last` (event time, ms) were handed to the analyses. */
  coverReadings(first: number, last: number): void {
    if (first < this.firstAt) this.firstAt = first;
    if (last > this.lastAt) this.lastAt = last;
  }

  addLabels(labels: readonly FaultLabel[]): void {
    for (const l of labels) {
      if (this.faults >= SCORECARD_FAULTS_MAX) {
        this.labelsUnscored++;
        continue;
      }
      this.faults++;
      const s = this.sensorOf(`${l.machine_id}/${l.sensor_type}`);
      s.faults.push({
        kind: l.fault,
        start: l.start,
        end: l.end,
        firstOpeningAt: Number.NaN,
        openings: 0,
        firstEscalationAt: Number.NaN,
        escalations: 0,
        chance: 0,
      });
      s.longestWindow = Math.max(s.longestWindow, l.end + this.graceMs - l.start);
    }
  }

  /** Degradation phases: labelled at the onset (end null), then again with the end (same machine and start). */
  addDegradation(labels: readonly DegradationLabel[]): void {
    for (const l of labels) {
      const list = this.degradation.get(l.machine_id) ?? [];
      const known = list.find((p) => p.start === l.start);
      if (known !== undefined) known.end = l.end ?? Number.POSITIVE_INFINITY;
      else list.push({ sensors: l.sensor_types, start: l.start, end: l.end ?? Number.POSITIVE_INFINITY });
      this.degradation.set(l.machine_id, list);
    }
  }

  /** Feeds an alert event; openings and escalations count. */
  observe(event: ScoredAlertEvent): void {
    const o = alertOpening(event);
    if (o !== null) this.addOpening(o);
    const e = this.escalations.observe(event);
    if (e !== null) this.addEscalation(e);
  }

  addEscalation(o: AlertOpening): void {
    this.escalationCount++;
    const s = this.sensorOf(`${o.machine_id}/${o.sensor_type}`);
    const f = this.faultAt(s, o.at);
    if (f === undefined) {
      s.falseEscalations++;
      return;
    }
    f.escalations++;
    if (!(f.firstEscalationAt <= o.at)) f.firstEscalationAt = o.at;
  }

  addOpening(o: AlertOpening): void {
    this.openings++;
    const s = this.sensorOf(`${o.machine_id}/${o.sensor_type}`);
    const f = this.faultAt(s, o.at);
    if (f === undefined) {
      if (this.degrading(o)) this.wearEpisodes++;
      else s.falseEpisodes++;
      return;
    }
    f.openings++;
    if (!(f.firstOpeningAt <= o.at)) f.firstOpeningAt = o.at;
  }

  result(): Scorecard {
    const covered = this.lastAt >= this.firstAt;
    const hours = covered ? (this.lastAt - this.firstAt) / 3_600_000 : 0;
    const byKind = new Map<FaultKind, Fault[]>(FAULT_KINDS.map((k) => [k, []]));
    let labelsAfterEnd = 0;
    let falseEpisodes = 0;
    let falseEscalations = 0;
    let worst: Scorecard["worst"] = null;
    for (const [key, s] of this.sensors) {
      // False openings per ms of the sensor, the rate chance detections would come at.
      const perMs = hours > 0 ? s.falseEpisodes / (this.lastAt - this.firstAt) : 0;
      for (const f of s.faults) {
        if (!covered || f.start > this.lastAt) labelsAfterEnd++;
        else byKind.get(f.kind)?.push(f);
        f.chance = 1 - Math.exp(-perMs * (Math.min(f.end + this.graceMs, this.lastAt) - f.start));
      }
      falseEpisodes += s.falseEpisodes;
      falseEscalations += s.falseEscalations;
      if (s.falseEpisodes > 0 && (worst === null || s.falseEpisodes > worst.falseEpisodes))
        worst = { key, falseEpisodes: s.falseEpisodes, perHour: hours > 0 ? s.falseEpisodes / hours : null };
    }
    const keys = this.sensors.size;
    const degraded = covered ? this.degradedKeyHours() : 0;
    const exposure = keys * hours - degraded;
    return {
      graceMs: this.graceMs,
      firstReadingAt: covered ? this.firstAt : null,
      lastReadingAt: covered ? this.lastAt : null,
      simulatedHours: hours,
      sensorKeys: keys,
      kinds: FAULT_KINDS.map((kind) => ({ kind, ...scoreOf(byKind.get(kind) ?? []) })),
      all: scoreOf([...byKind.values()].flat()),
      openings: this.openings,
      falseEpisodes,
      escalations: this.escalationCount,
      falseEscalations,
      falsePerKeyPerHour: exposure > 0 ? falseEpisodes / exposure : null,
      wearEpisodes: this.wearEpisodes,
      degradedKeyHours: degraded,
      worst,
      targetFalsePerKeyPerHour: FALSE_EPISODES_TARGET_PER_KEY_HOUR,
      labelsAfterEnd,
      labelsUnscored: this.labelsUnscored,
    };
  }

  private degrading(o: AlertOpening): boolean {
    const phases = this.degradation.get(o.machine_id);
    return phases?.some((p) => p.start <= o.at && o.at <= p.end && p.sensors.includes(o.sensor_type)) ?? false;
  }

  /** Hours of the sensor keys the run has under a degradation phase, within the readings. */
  private degradedKeyHours(): number {
    let ms = 0;
    for (const [machine, phases] of this.degradation) {
      for (const p of phases) {
        const overlap = Math.min(p.end, this.lastAt) - Math.max(p.start, this.firstAt);
        if (overlap > 0) ms += overlap * p.sensors.filter((s) => this.sensors.has(`${machine}/${s}`)).length;
      }
    }
    return ms / 3_600_000;
  }

  private sensorOf(key: string): SensorFaults {
    let s = this.sensors.get(key);
    if (s === undefined) {
      s = { faults: [], longestWindow: 0, falseEpisodes: 0, falseEscalations: 0 };
      this.sensors.set(key, s);
    }
    return s;
  }

  /**
   * The fault of the sensor that is under way at `at` (the earliest-starting such), else the
   * earliest-starting one whose grace holds it, if any. Windows are at most
   * `longestWindow` long, so only faults starting in [at − longestWindow, at] can hold it.
   */
  private faultAt(s: SensorFaults, at: number): Fault | undefined {
    const faults = s.faults;
    let lo = 0;
    let hi = faults.length;
    const from = at - s.longestWindow;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (faults[mid].start < from) lo = mid + 1;
      else hi = mid;
    }
    let inGrace: Fault | undefined;
    for (let i = lo; i < faults.length && faults[i].start <= at; i++) {
      const f = faults[i];
      if (at <= Math.min(f.end, this.lastAt)) return f;
      if (inGrace === undefined && at <= Math.min(f.end + this.graceMs, this.lastAt)) inGrace = f;
    }
    return inGrace;
  }
}

interface Fault {
  kind: FaultKind;
  start: number;
  end: number;
  /** Event time of the first opening attributed to it; NaN while none. */
  firstOpeningAt: number;
  openings: number;
  /** Event time of the first escalation attributed to it; NaN while none. */
  firstEscalationAt: number;
  escalations: number;
  /** Chance of an opening in its window at its sensor's false rate (set by `result`). */
  chance: number;
}

interface SensorFaults {
  /** In start order. */
  faults: Fault[];
  /** Longest window (end + grace − start) of its faults. */
  longestWindow: number;
  falseEpisodes: number;
  falseEscalations: number;
}

function scoreOf(faults: readonly Fault[]): Omit<KindScore, "kind"> {
  const detected = faults.filter((f) => f.openings > 0 || f.escalations > 0);
  // NaN (none) loses to any time in Math.min, so take the defined one.
  const firstAt = (f: Fault) =>
    f.openings === 0 ? f.firstEscalationAt : f.escalations === 0 ? f.firstOpeningAt : Math.min(f.firstOpeningAt, f.firstEscalationAt);
  const delays = detected.map((f) => (firstAt(f) - f.start) / 1000).sort((a, b) => a - b);
  const episodes = detected
    .filter((f) => f.openings > 0)
    .map((f) => f.openings)
    .sort((a, b) => a - b);
  return {
    injected: faults.length,
    detected: detected.length,
    detectedByEscalation: detected.length - episodes.length,
    rate: faults.length > 0 ? detected.length / faults.length : null,
    delayMedianS: quantile(delays, 0.5),
    delayP90S: quantile(delays, 0.9),
    episodesPerFaultMedian: quantile(episodes, 0.5),
    episodesPerFaultMean: episodes.length > 0 ? episodes.reduce((a, b) => a + b, 0) / episodes.length : null,
    episodesPerFaultMax: episodes.length > 0 ? episodes[episodes.length - 1] : null,
    chanceRate: faults.length > 0 ? faults.reduce((sum, f) => sum + f.chance, 0) / faults.length : null,
  };
}

/** The q-quantile of sorted values, linear between order statistics (Hyndman & Fan type 7, numpy's default). */
export function quantile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const h = (sorted.length - 1) * q;
  const i = Math.floor(h);
  return i + 1 < sorted.length ? sorted[i] + (h - i) * (sorted[i + 1] - sorted[i]) : sorted[i];
}

/**
 * The scorecard as a person reads it at the end of a run: a table by fault kind, then the false
 * episodes against issue 14's target.
 */
export function formatScorecard(s: Scorecard): string {
  const header = [
    "fault kind",
    "injected",
    "detected",
    "by escalation",
    "rate",
    "median delay",
    "p90 delay",
    "episodes/fault (median, mean, max)",
  ];
  const rows = [...s.kinds, { kind: "all", ...s.all }].map((k) => [
    k.kind,
    String(k.injected),
    String(k.detected),
    String(k.detectedByEscalation),
    k.rate === null ? "—" : `${(100 * k.rate).toFixed(1)}%`,
    seconds(k.delayMedianS),
    seconds(k.delayP90S),
    k.episodesPerFaultMedian === null
      ? "—"
      : `${round1(k.episodesPerFaultMedian)}, ${(k.episodesPerFaultMean ?? 0).toFixed(2)}, ${k.episodesPerFaultMax}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(" | ");
  const worst = s.worst === null ? "none" : `${s.worst.key} ${s.worst.perHour === null ? "—" : rateText(s.worst.perHour)} per hour`;
  const notes = [
    s.labelsAfterEnd > 0 ? `${s.labelsAfterEnd} labels start after the last reading (left out)` : "",
    s.labelsUnscored > 0 ? `${s.labelsUnscored} labels beyond ${SCORECARD_FAULTS_MAX} not scored` : "",
  ].filter((n) => n !== "");
  return [
    `fault-detection scorecard: ${s.openings} alert openings, ${s.escalations} escalations of open episodes (${s.falseEscalations} outside faults); ` +
      `a fault is detected by an opening, or an escalation of an open episode, on its sensor within [start, end + ${s.graceMs / 1000} s] of event time`,
    line(header),
    widths.map((w) => "-".repeat(w)).join("-|-"),
    ...rows.map(line),
    `false episodes: ${s.falseEpisodes} over ${s.simulatedHours >= 1 ? s.simulatedHours.toFixed(2) : s.simulatedHours.toPrecision(3)} simulated hours, ${s.sensorKeys} sensor keys: ` +
      `${s.falsePerKeyPerHour === null ? "—" : rateText(s.falsePerKeyPerHour)} per key per hour (worst: ${worst}); target ≤ 1 per key per 8 h`,
    chanceLine(s),
    s.wearEpisodes > 0 || s.degradedKeyHours > 0
      ? `wear: ${s.wearEpisodes} openings on sensors of machines in a degradation phase toward a failure (detections of wear, not false episodes); ${s.degradedKeyHours.toFixed(1)} key-hours under degradation left out of the false rate`
      : "",
    ...notes,
  ]
    .filter((l) => l !== "")
    .join("\n");
}

/** What chance alone would detect, by kind; "" without faults. */
function chanceLine(s: Scorecard): string {
  if (s.all.chanceRate === null) return "";
  const rows = [...s.kinds, { kind: "all", ...s.all }].filter((k) => k.chanceRate !== null);
  return `detected by chance alone (openings at each sensor's false rate): ${rows.map((k) => `${k.kind} ${(100 * (k.chanceRate ?? 0)).toFixed(1)}%`).join(", ")}`;
}

function seconds(s: number | null): string {
  return s === null ? "—" : `${s.toFixed(1)} s`;
}

/** A count or a median of counts: whole, or one decimal. */
function round1(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(1);
}

/** A rate: two significant digits below 1 (the target is 0.125), else one decimal, whole from 100 up. */
function rateText(x: number): string {
  if (x === 0) return "0";
  return x >= 100 ? x.toFixed(0) : x >= 1 ? x.toFixed(1) : x.toPrecision(2);
}
