/**
 * Drift of the models a run uses, watched in the stream (operators/drift): every prediction's
 * feature row goes to the PSI monitor of the model that made it (its training reference
 * histograms, stored in the model file), and — where ground truth arrives — the prediction
 * residual goes to a Page–Hinkley test; a scoring model's output (the isolation forest's anomaly
 * score, in (0, 1]) goes to ADWIN instead, as means of blocks of consecutive scores
 * ({@link ModelDriftWatch.observeRow}, the per-record path). A model leaving `stable` opens a
 * `model_drift` episode, routed as the SPC alert episodes are (alerts file, console, API,
 * ml_alerts, NATS).
 *
 * The model_drift episode. Key `model:<kind>/<version>` (machine_id `model:<kind>`, sensor_type
 * the version in ml_alerts); family `model_drift`; `rules` the features that moved (and
 * `residual` when the Page–Hinkley test fired, `score` when ADWIN cut the score window), in the
 * order first seen; severity medium while the model is at `moderate` (and for a score change),
 * high once `major` or the residual test fired; `points` the PSI of the most moved feature at each
 * change (the block mean after a score change). `updated` when a feature joins or the level
 * changes; `closed` when every feature is stable again (the monitor's hysteresis keeps it from
 * flickering) and neither the residual nor the score test has fired within the last window of
 * predictions.
 *
 * The score reading: consecutive scores are strongly autocorrelated (an iforest row of rolling
 * statistics shares all but one reading with its key's previous row), and ADWIN's bound assumes
 * independent readings (operators/drift/adwin.ts); the mean of `scoreBlock` consecutive scores of
 * the stream is one reading, which also spares ADWIN all but one call in `scoreBlock`.
 *
 * The residual reading: the C-MAPSS convention — a unit's predictions are judged once its
 * failure is known, so the test takes one reading per unit at its failure (true RUL 0): the mean
 * of predicted − true RUL (the truth capped at the model's RUL cap) over its predictions. One
 * machine's consecutive residuals are strongly autocorrelated; per-unit means are not
 * (operators/drift/page-hinkley.ts). With no ground truth the residual test is off, and says so.
 */
import type { Logger } from "../core/mod.js";
import type { MetricsRegistry } from "../../connectors/live/mod.js";
import {
  DEFAULT_PAGE_HINKLEY_OPTIONS,
  DEFAULT_PSI_MONITOR_OPTIONS,
  type DriftChange,
  type DriftLevel,
  type FeatureDrift,
  type MeanChange,
  PageHinkley,
  type PageHinkleyOptions,
  PsiMonitor,
  type PsiMonitorOptions,
  type ReferenceHistograms,
  Adwin,
  type AdwinOptions,
  DEFAULT_ADWIN_OPTIONS,
} from "../../operators/drift/mod.js";
import { type AlertEpisodeEvent, type AlertPoint, episodeId } from "../../operators/spc/mod.js";

export const MODEL_DRIFT_FAMILY = "model_drift";
/** Points kept per episode (the PSI of the most moved feature at each change). */
const POINTS_MAX = 32;
/** Units whose residuals are held before the test knows σ: the Page–Hinkley test's minReadings for residuals. */
export const RESIDUAL_MIN_UNITS = 20;

/**
 * Scores averaged into one ADWIN reading (see the file comment). Measured with
 * bench/iforest-drift-bench.ts (4 interleaved keys, rolling window 16: a row's features share
 * readings with the key's previous 15 rows, so scores are correlated over about 64 records;
 * 10⁶ unshifted readings, then value +1σ): 1 score per reading raised 47 false score changes, a
 * block of 4 one; 8, 16, 32, 64 and 256 none. The change is seen after 2528, 4832, 8928, 18 144
 * and 81 632 readings: ADWIN's range term (2R/3m)·ln(2/δ′) with R = 1 counts blocks, not
 * readings, so the delay grows with the block. 32 keeps 8× the block that first alarmed.
 */
export const DEFAULT_SCORE_BLOCK = 32;

export interface ModelDriftOptions {
  psi: Readonly<PsiMonitorOptions>;
  residual: Readonly<PageHinkleyOptions>;
  /** ADWIN on the score's block means (R = 1: a score lies in (0, 1], and so does a mean of scores). */
  score: Readonly<AdwinOptions>;
  scoreBlock: number;
  /**
   * The PSI of a scoring model (one row per record, 10⁵ rows/s and more) is evaluated every this
   * many readings (`psi.evaluateEvery` for the others). 16: on bench/iforest-drift-bench.ts the
   * watch's CPU fell from 0.225 to 0.094–0.124 µs per record and a 1σ shift was seen 3 readings
   * later (a change is seen at most 15 readings late).
   */
  scoredEvaluateEvery: number;
}

export const DEFAULT_MODEL_DRIFT: Readonly<ModelDriftOptions> = Object.freeze({
  psi: DEFAULT_PSI_MONITOR_OPTIONS,
  residual: Object.freeze({ ...DEFAULT_PAGE_HINKLEY_OPTIONS, minReadings: RESIDUAL_MIN_UNITS }),
  score: DEFAULT_ADWIN_OPTIONS,
  scoreBlock: DEFAULT_SCORE_BLOCK,
  scoredEvaluateEvery: 16,
});

/** A model as the watch needs it. */
export interface WatchedModel {
  kind: string;
  version: string;
  featureNames: readonly string[];
  /** The training reference; null when the model has none (`unavailable` says why). */
  reference: ReferenceHistograms | null;
  unavailable: string | null;
  /** The cap of the model's remaining-life target (residuals compare with the capped truth). */
  rulCap?: number;
  /** The model's output is a score in (0, 1] (the isolation forest): ADWIN watches its block means. */
  scored?: boolean;
}

/** One model's drift, as GET /api/ml/models/{id}/drift serves it. */
export interface ModelDriftReport {
  kind: string;
  version: string;
  /** Whether the run uses it now (a swapped-out model keeps its last report). */
  in_use: boolean;
  level: DriftLevel | null;
  /** Why PSI is not measured (no reference histograms), else null. */
  unavailable: string | null;
  window: number;
  readings: number;
  /** Rows refused because a feature was not finite. */
  skipped: number;
  thresholds: { moderate: number; major: number };
  /** Every feature's PSI at the last evaluation (null before the window first fills) and level, highest PSI first. */
  features: Array<{ name: string; psi: number | null; level: DriftLevel }>;
  residual: {
    /** Units judged at their failure; null without ground truth. */
    units: number | null;
    detections: number;
    last: (MeanChange & { at: number }) | null;
  };
  /** ADWIN on the score's block means; null for a model without a score (the rul model). */
  score: {
    block: number;
    /** Block means ADWIN took, and its window's length and mean now. */
    blocks: number;
    width: number;
    mean: number | null;
    detections: number;
    last: (ScoreChange & { at: number }) | null;
  } | null;
  episode: { episode_id: string; opened_at: number; rules: string[]; severity: string } | null;
  episodes_opened: number;
}

/** A change ADWIN found in the score's block means. */
export interface ScoreChange {
  direction: "increase" | "decrease";
  /** Mean score of the blocks dropped and of the window kept. */
  before: number;
  mean: number;
  /** Blocks dropped. */
  dropped: number;
}

interface Watched {
  model: WatchedModel;
  monitor: PsiMonitor | null;
  /** The row column of each reference feature (the monitor's order) in the model's feature order; null: the same order. */
  columns: Int32Array | null;
  score: Adwin | null;
  scoreSum: number;
  scoreN: number;
  scoreDetections: number;
  lastScore: (ScoreChange & { at: number }) | null;
  residual: PageHinkley;
  residualUnits: number;
  residualDetections: number;
  lastResidual: (MeanChange & { at: number }) | null;
  /** Readings of the monitor when the residual or score test last fired (the episode stays open a window after). */
  testFiredAt: number;
  /** Per machine: the sum and count of its residuals so far (the unit's mean at its failure). */
  units: Map<string, { sum: number; n: number }>;
  episode: AlertEpisodeEvent | null;
  episodesOpened: number;
  row: Float64Array;
}

export class ModelDriftWatch {
  private readonly watched = new Map<string, Watched>();
  private readonly current = new Map<string, string>();
  private readonly psiGauge;
  private readonly levelGauge;
  private readonly episodes;
  private readonly log: Logger | undefined;
  /** The model of the last row (observeRow): one string comparison per record instead of a map lookup. */
  private lastWatched: Watched | null = null;

  constructor(
    private readonly o: {
      options: Readonly<ModelDriftOptions>;
      /** Where episode events go (the run's alert router). */
      route: (event: AlertEpisodeEvent) => void;
      metrics?: MetricsRegistry;
      log?: Logger;
      /** Ground truth is known (a C-MAPSS training file): the residual test runs. */
      truth: boolean;
    },
  ) {
    this.log = o.log?.child({ component: "drift" });
    this.psiGauge = o.metrics?.gauge({
      name: "linewatch_model_drift_psi",
      help: "PSI of a model input feature over the drift window against the model's training reference (stable < 0.1 ≤ moderate < 0.25 ≤ major by default).",
      labelNames: ["model", "feature"],
    });
    this.levelGauge = o.metrics?.gauge({
      name: "linewatch_model_drift_level",
      help: "Drift level of a model in use: 0 stable, 1 moderate, 2 major (the highest of its features').",
      labelNames: ["model"],
    });
    this.episodes = o.metrics?.counter({
      name: "linewatch_model_drift_episodes_total",
      help: "model_drift episodes opened.",
      labelNames: ["model"],
    });
  }

  /** Makes `model` its kind's model in use (at start and at each swap); a model seen before keeps its state. */
  use(model: WatchedModel): void {
    this.current.set(model.kind, model.version);
    if (this.watched.has(model.version)) return;
    const psi = this.o.options.psi;
    const options =
      model.scored === true ? { ...psi, evaluateEvery: Math.max(psi.evaluateEvery, this.o.options.scoredEvaluateEvery) } : psi;
    const monitor = model.reference === null ? null : new PsiMonitor(model.reference, options);
    this.watched.set(model.version, {
      model,
      monitor,
      columns: monitor === null ? null : columnsOf(monitor.featureNames, model.featureNames),
      score: model.scored === true ? new Adwin(this.o.options.score) : null,
      scoreSum: 0,
      scoreN: 0,
      scoreDetections: 0,
      lastScore: null,
      residual: new PageHinkley(this.o.options.residual),
      residualUnits: 0,
      residualDetections: 0,
      lastResidual: null,
      testFiredAt: Number.NEGATIVE_INFINITY,
      units: new Map(),
      episode: null,
      episodesOpened: 0,
      row: new Float64Array(model.featureNames.length),
    });
    if (monitor === null) this.log?.warn({ model: model.version, reason: model.unavailable }, "drift PSI unavailable for this model");
  }

  /**
   * One prediction of model `version`: its feature row (by name), event time, machine, and the
   * residual predicted − true RUL when the truth is known (`trueRul` 0 marks the unit's failure).
   */
  observe(
    version: string,
    features: Readonly<Record<string, number>>,
    atMs: number,
    machineId: string,
    residual: number | null,
    trueRul: number | null,
  ): void {
    const w = this.watched.get(version);
    if (w === undefined) return;
    // In the reference's order (the monitor's), which need not be the model's.
    const names = w.monitor?.featureNames ?? w.model.featureNames;
    for (let j = 0; j < names.length; j++) w.row[j] = features[names[j]] ?? Number.NaN;
    const change = w.monitor?.observe(w.row) ?? null;
    if (change !== null) this.onChange(w, change, atMs);
    if (residual !== null && trueRul !== null) this.observeResidual(w, machineId, residual, trueRul, atMs);
    else if (w.episode !== null && this.quiet(w)) this.close(w, atMs);
  }

  /**
   * One score of a scoring model, the per-record path (no allocation): its features are
   * row[offset … offset + features − 1] in the model's feature order (read in the reference's
   * order through the column map built at `use`), its score `score` (NaN: not scored — a window
   * still filling — and not a reading), its event time `atMs`. A row with a non-finite feature is
   * skipped by the monitor and counted.
   */
  observeRow(version: string, row: Float64Array, offset: number, score: number, atMs: number): void {
    let w = this.lastWatched;
    if (w === null || w.model.version !== version) {
      w = this.watched.get(version) ?? null;
      if (w === null) return;
      this.lastWatched = w;
    }
    const monitor = w.monitor;
    if (monitor !== null) {
      let change: DriftChange | null;
      const columns = w.columns;
      if (columns === null) change = monitor.observe(row, offset);
      else {
        for (let j = 0; j < columns.length; j++) w.row[j] = row[offset + columns[j]];
        change = monitor.observe(w.row);
      }
      if (change !== null) this.onChange(w, change, atMs);
    }
    if (w.score === null || !Number.isFinite(score)) return;
    w.scoreSum += score;
    if (++w.scoreN < this.o.options.scoreBlock) return;
    this.observeScoreBlock(w, w.scoreSum / w.scoreN, atMs);
    w.scoreSum = 0;
    w.scoreN = 0;
  }

  /** Every model the run has used, in use first. */
  list(): ModelDriftReport[] {
    return [...this.watched.values()].map((w) => this.report(w)).sort((a, b) => Number(b.in_use) - Number(a.in_use));
  }

  /** The report of the model whose version is or starts with `id` (a registry id names the version's hash). */
  drift(id: string): ModelDriftReport | null {
    const w = [...this.watched.values()].find(
      (x) => x.model.version === id || x.model.version.endsWith(id.slice(0, 12)) || x.model.version.startsWith(id),
    );
    return w === undefined ? null : this.report(w);
  }

  /** Refreshes the gauges (at each scrape). */
  collect(): void {
    for (const w of this.watched.values()) {
      if (w.monitor === null) continue;
      const model = w.model.version;
      w.monitor.featureNames.forEach((feature, j) => {
        if (Number.isFinite(w.monitor?.psi[j])) this.psiGauge?.labels({ model, feature }).set(w.monitor?.psi[j] as number);
      });
      this.levelGauge?.labels({ model }).set(["stable", "moderate", "major"].indexOf(w.monitor.level));
    }
  }

  /** One block mean of the score to ADWIN; a cut is a score change (rule `score`). */
  private observeScoreBlock(w: Watched, mean: number, atMs: number): void {
    const adwin = w.score as Adwin;
    const cut = adwin.update(mean);
    if (cut === null) {
      if (w.episode !== null && this.quiet(w)) this.close(w, atMs);
      return;
    }
    const change: ScoreChange = {
      direction: cut.mean > cut.droppedMean ? "increase" : "decrease",
      before: cut.droppedMean,
      mean: cut.mean,
      dropped: cut.dropped,
    };
    w.scoreDetections++;
    w.lastScore = { ...change, at: atMs };
    w.testFiredAt = this.position(w);
    const a = this.o.options.score;
    const what = `mean anomaly score ${change.direction === "increase" ? "rose" : "fell"} from ${change.before.toFixed(4)} to ${change.mean.toFixed(4)} (ADWIN δ ${a.delta} over means of ${this.o.options.scoreBlock} scores; ${change.dropped} blocks dropped)`;
    this.fire(w, ["score"], "medium", what, atMs, change.mean);
  }

  private observeResidual(w: Watched, machineId: string, residual: number, trueRul: number, atMs: number): void {
    const unit = w.units.get(machineId) ?? { sum: 0, n: 0 };
    unit.sum += residual;
    unit.n++;
    w.units.set(machineId, unit);
    if (trueRul > 0) return;
    // The unit failed: its mean residual is one reading of the test.
    w.units.delete(machineId);
    w.residualUnits++;
    const change = w.residual.update(unit.sum / unit.n);
    if (change === null) {
      if (w.episode !== null && this.quiet(w)) this.close(w, atMs);
      return;
    }
    w.residualDetections++;
    w.lastResidual = { ...change, at: atMs };
    w.testFiredAt = this.position(w);
    const what = `mean residual (predicted − true RUL) per failed unit ${change.direction === "increase" ? "rose" : "fell"} to ${change.mean.toFixed(1)} cycles (Page–Hinkley ${change.statistic.toFixed(1)}σ > λ ${this.o.options.residual.lambda})`;
    this.fire(w, ["residual"], "high", what, atMs, change.statistic);
  }

  private onChange(w: Watched, change: DriftChange, atMs: number): void {
    const top = change.moved[0];
    if (change.to === "stable") {
      if (w.episode !== null && this.quiet(w)) this.close(w, atMs);
      return;
    }
    const moved = change.moved.map((f) => `${f.name} ${f.psi.toFixed(3)}`).join(", ");
    const what = `PSI ${change.to} (≥ ${change.to === "major" ? this.o.options.psi.major : this.o.options.psi.moderate}) over the last ${this.o.options.psi.window} predictions: ${moved}`;
    this.fire(
      w,
      change.moved.map((f) => f.name),
      change.to === "major" ? "high" : "medium",
      what,
      atMs,
      top?.psi ?? 0,
    );
  }

  /** Opens the model's episode, or folds the rules in and sends `updated`. */
  private fire(w: Watched, rules: readonly string[], severity: "medium" | "high", description: string, atMs: number, value: number): void {
    const position = this.position(w);
    const point: AlertPoint = { position, time: atMs, value };
    const e = w.episode;
    if (e === null) {
      w.episode = this.opened(w, rules, severity, description, atMs, point);
      w.episodesOpened++;
      this.episodes?.labels({ model: w.model.version }).inc();
      this.log?.warn({ model: w.model.version, rules, description }, "model drift episode opened");
      this.o.route(w.episode);
      return;
    }
    for (const r of rules) if (!e.rules.includes(r)) e.rules.push(r);
    if (severity === "high") e.severity = "high";
    e.description = description;
    e.firings++;
    e.last_fired_at = atMs;
    e.points.push(point);
    if (e.points.length > POINTS_MAX) e.points.splice(0, e.points.length - POINTS_MAX);
    this.o.route({ ...e, event: "updated", rules: [...e.rules], points: [...e.points] });
  }

  private opened(
    w: Watched,
    rules: readonly string[],
    severity: "medium" | "high",
    description: string,
    atMs: number,
    point: AlertPoint,
  ): AlertEpisodeEvent {
    const key = `model:${w.model.kind}/${w.model.version}`;
    return {
      type: "alert_episode",
      event: "opened",
      episode_id: episodeId(key, MODEL_DRIFT_FAMILY, atMs, point.position),
      key,
      fields: { machine_id: `model:${w.model.kind}`, sensor_type: w.model.version },
      family: MODEL_DRIFT_FAMILY,
      rules: [...rules],
      first_rule: rules[0] ?? "psi",
      description,
      severity,
      opened_at: atMs,
      last_fired_at: atMs,
      closed_at: null,
      firings: 1,
      limits_version: 0,
      cl: 0,
      sigma: 0,
      points: [point],
      acknowledged_at: null,
      acknowledged_by: null,
      ack_note: null,
    };
  }

  /** Where the model's stream is: the monitor's readings, else the scores taken, else the units judged. */
  private position(w: Watched): number {
    if (w.monitor !== null) return w.monitor.readings;
    return w.score === null ? w.residualUnits : w.score.readings * this.o.options.scoreBlock;
  }

  /** Every feature stable and no residual or score alarm within the last window of predictions. */
  private quiet(w: Watched): boolean {
    const stable = w.monitor === null || w.monitor.level === "stable";
    const since = this.position(w) - w.testFiredAt;
    return stable && since >= (w.monitor === null && w.score === null ? RESIDUAL_MIN_UNITS : this.o.options.psi.window);
  }

  private close(w: Watched, atMs: number): void {
    const e = w.episode as AlertEpisodeEvent;
    w.episode = null;
    this.log?.info({ model: w.model.version, episode_id: e.episode_id }, "model drift episode closed");
    this.o.route({ ...e, event: "closed", closed_at: atMs, rules: [...e.rules], points: [...e.points] });
  }

  private report(w: Watched): ModelDriftReport {
    const features: FeatureDrift[] = w.monitor?.features() ?? [];
    const e = w.episode;
    return {
      kind: w.model.kind,
      version: w.model.version,
      in_use: this.current.get(w.model.kind) === w.model.version,
      level: w.monitor?.level ?? null,
      unavailable: w.model.unavailable,
      window: this.o.options.psi.window,
      readings: w.monitor?.readings ?? 0,
      skipped: w.monitor?.skipped ?? 0,
      thresholds: { moderate: this.o.options.psi.moderate, major: this.o.options.psi.major },
      features: features
        .map((f) => ({ name: f.name, psi: Number.isFinite(f.psi) ? f.psi : null, level: f.level }))
        .sort((a, b) => (b.psi ?? -1) - (a.psi ?? -1)),
      residual: { units: this.o.truth ? w.residualUnits : null, detections: w.residualDetections, last: w.lastResidual },
      score:
        w.score === null
          ? null
          : {
              block: this.o.options.scoreBlock,
              blocks: w.score.readings,
              width: w.score.width,
              mean: w.score.width > 0 ? w.score.mean : null,
              detections: w.scoreDetections,
              last: w.lastScore,
            },
      episode: e === null ? null : { episode_id: e.episode_id, opened_at: e.opened_at, rules: [...e.rules], severity: e.severity },
      episodes_opened: w.episodesOpened,
    };
  }
}

/** The column of each of `reference` in `model` (null when they are the same list, the usual case: training writes them so). */
function columnsOf(reference: readonly string[], model: readonly string[]): Int32Array | null {
  if (reference.length === model.length && reference.every((n, j) => n === model[j])) return null;
  return Int32Array.from(reference, (n) => model.indexOf(n));
}
