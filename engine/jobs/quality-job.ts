/**
 * The quality job of a run (issue 16, point 3): one {@link BatchFeatureState} per running batch,
 * fed by the process stream; the batch is scored by the quality model every `intervalMs` of event
 * time while it runs and once more at its end (when its quality record arrives), and the outcome
 * is joined to its predictions (prediction vs actual kept for the API).
 *
 * Bounded: at most `openBatchesMax` running batches (the one with the oldest reading is evicted,
 * counted; its episode closes), `recentMax` completed ones, `historyMax` predictions per batch.
 *
 * Episodes (the same AlertEpisodeEvent as SPC alerts, routed by the run's AlertRouter; family
 * "quality", key `quality:<line>/<batch_id>`), from each prediction:
 *   critical (severity high)   predicted_yield < 0.90 or predicted_defect_rate > 0.10
 *   warning  (severity medium) predicted_yield < 0.95 or predicted_defect_rate > 0.05
 * An episode opens at the first prediction at or above warning, rises to critical (an `updated`
 * event), and closes when the batch ends (its quality record, or its eviction) or after
 * {@link QUALITY_CLEAR_SCORINGS} predictions in a row clear of both warning thresholds by
 * {@link QUALITY_CLEAR_MARGIN} (hysteresis, like an SPC episode's quiet readings).
 * Drivers (the episode's `fields.drivers`, JSON): occlusion against the model's training means —
 * for each feature j, Δ_j = ŷ(x) − ŷ(x with x_j := training mean_j), for yield and defect rate;
 * the three features that lowered the predicted yield most (most negative Δ yield) are listed.
 * The training means are the graph's `feature_mean` initializer (training/quality-onnx.ts).
 * `progress` is never a driver ({@link QUALITY_NON_DRIVERS}): nothing to act on.
 *
 * Model swap (`run --quality-model registry` follows the registry, engine/cli/quality-run.ts):
 * {@link QualityJob.swapModel} makes the new model score every prediction from the next one on,
 * running batches included; each prediction row names its model (`model_version`).
 *
 * Replay (a JetStream restart, quality-jetstream.ts): records may carry their stream position.
 * Those at or below {@link QualityJob.replayThrough}'s position were taken before the restart:
 * they rebuild the state (features, schedule, predictions, episodes, exactly as the first time:
 * the job is a function of the records in order) with every output muted — no row, no episode
 * event, no count but `replayed`. {@link QualityJob.replayFrom} is where a restart must start
 * for every running batch's features to be whole: the position of the oldest running batch's
 * first reading.
 */
import { LinewatchError } from "../core/mod.js";
import type { QualityModel, QualityPrediction, ProcessRecord, QualityRecord } from "../../operators/quality/mod.js";
import { BatchFeatureState } from "../../operators/quality/mod.js";
import { type AlertEpisodeEvent, type AlertSeverity, episodeId } from "../../operators/spc/mod.js";

export const QUALITY_THRESHOLDS = Object.freeze({ yieldWarning: 0.95, yieldCritical: 0.9, defectWarning: 0.05, defectCritical: 0.1 });
/** Predictions in a row clear of the warning thresholds that close an episode before the batch ends. */
export const QUALITY_CLEAR_SCORINGS = 2;
/** How far clear: yield ≥ 0.95 + margin and defect rate ≤ 0.05 − margin. */
export const QUALITY_CLEAR_MARGIN = 0.005;
export const QUALITY_DRIVERS_MAX = 3;

export interface QualityJobOptions {
  model: QualityModel;
  /** Event time between two predictions of a running batch (0: every reading). */
  intervalMs: number;
  openBatchesMax: number;
  recentMax: number;
  historyMax: number;
  /** Every episode event (opened, updated, closed): the run's AlertRouter.route. */
  onEpisode: (e: AlertEpisodeEvent) => void;
  /** Every prediction and every joined outcome (ClickHouse rows, live topics). */
  onPrediction?: (p: QualityPredictionRow) => void;
  onOutcome?: (o: QualityOutcomeRow) => void;
}

export const DEFAULT_QUALITY_JOB = Object.freeze({ intervalMs: 300_000, openBatchesMax: 1000, recentMax: 500, historyMax: 200 });

export interface QualityPredictionRow extends QualityPrediction {
  line_id: string;
  work_order_id: string;
  batch_id: string;
  /** Event time of the latest reading scored. */
  timestamp: number;
  progress: number;
  readings: number;
  /** True for the prediction made when the batch ended (all its readings). */
  final: boolean;
  model_version: string;
}

export interface QualityOutcomeRow {
  line_id: string;
  work_order_id: string;
  batch_id: string;
  timestamp: number;
  units_produced: number;
  first_pass_yield: number;
  defect_rate: number;
  defects: QualityRecord["defects"];
  /** The final prediction (null: the batch was never scored, e.g. its readings came before the run). */
  predicted_yield: number | null;
  predicted_defect_rate: number | null;
  yield_error: number | null;
}

/** A batch as the API shows it. */
export interface QualityBatchView {
  batch_id: string;
  line_id: string;
  work_order_id: string;
  status: "running" | "completed";
  started_at: number;
  last_reading_at: number;
  readings: number;
  progress: number;
  latest: QualityPredictionRow | null;
  history: QualityPredictionRow[];
  outcome: QualityOutcomeRow | null;
  episode: AlertEpisodeEvent | null;
}

interface BatchState {
  view: QualityBatchView;
  features: BatchFeatureState | null;
  /** Source position of the batch's first reading (Infinity: none given). */
  firstPosition: number;
  nextScoreAt: number;
  clearRun: number;
}

/** A feature row taken when a batch was due, scored at the next flush. */
interface Pending {
  batch: BatchState;
  /** The model whose layout wrote `row`: it scores the row, also after a swap. */
  model: QualityModel;
  row: Float64Array;
  timestamp: number;
  progress: number;
  readings: number;
  outcome: QualityRecord | null;
  /** Taken again after a restart (at or below the replay position): outputs muted. */
  muted: boolean;
}

export interface QualityJobCounts {
  processRecords: number;
  qualityRecords: number;
  predictions: number;
  outcomes: number;
  running: number;
  completed: number;
  evicted: number;
  outOfOrder: number;
  episodesOpened: number;
  episodesClosed: number;
  /** Batches given a first prediction (outputs not muted). */
  batchesScored: number;
  /** Records taken again after a restart to rebuild the state (outputs muted). */
  replayed: number;
}

export class QualityJob {
  private readonly running = new Map<string, BatchState>();
  private readonly recent = new Map<string, BatchState>();
  private pending: Pending[] = [];
  private readonly counts = {
    processRecords: 0,
    qualityRecords: 0,
    predictions: 0,
    outcomes: 0,
    evicted: 0,
    outOfOrder: 0,
    episodesOpened: 0,
    episodesClosed: 0,
    batchesScored: 0,
    replayed: 0,
  };
  /** Records at or below this source position are replays (module comment). */
  private replayTop = Number.NEGATIVE_INFINITY;
  /** The model of the next snapshot (swapModel changes it). */
  private model: QualityModel;
  /** Models swapped out whose rows may still wait for a flush; closed once none does (close() closes the rest). */
  private retired: QualityModel[] = [];
  private flushing = 0;
  private ended = false;

  constructor(private readonly o: QualityJobOptions) {
    this.model = o.model;
  }

  /** The model that makes the next predictions. */
  get modelInUse(): QualityModel {
    return this.model;
  }

  /**
   * Makes `next` the model of every prediction from now on, running batches included (their
   * features are the batch's statistics so far, whatever model reads them; a model with other
   * features reads its own row from the same state). Rows already taken are still scored by the
   * model whose layout wrote them; the replaced model is then closed by the job. Returns it
   * (for the log: its version). After {@link close} (a registry read that finished late) `next`
   * is closed and refused.
   */
  async swapModel(next: QualityModel): Promise<QualityModel> {
    if (this.ended) {
      await next.close();
      throw new LinewatchError(`${next.source}: the quality job has ended`);
    }
    const old = this.model;
    if (next === old) return old;
    this.model = next;
    this.retired.push(old);
    await this.closeRetired();
    return old;
  }

  /** Closes the current model and every one swapped out (the job is done). */
  async close(): Promise<void> {
    this.ended = true;
    const all = [...this.retired, this.model];
    this.retired = [];
    await Promise.all(all.map((m) => m.close()));
  }

  countsNow(): QualityJobCounts {
    return { ...this.counts, running: this.running.size, completed: this.recent.size };
  }

  /** Records at or below source position `top` are replays: they rebuild the state, outputs muted. */
  replayThrough(top: number): void {
    this.replayTop = top;
  }

  /** Where a restart must start for every running batch's features to be whole (module comment); `top + 1` when none runs. */
  replayFrom(top: number): number {
    let from = top + 1;
    for (const b of this.running.values()) if (b.features !== null && b.firstPosition < from) from = b.firstPosition;
    return from;
  }

  /**
   * Adds a process reading (at source position `position`, when the source has one); the batch is
   * due for a prediction when `intervalMs` has passed since its last one.
   */
  process(r: ProcessRecord, position = Number.POSITIVE_INFINITY): void {
    const muted = this.isReplay(position);
    if (!muted) this.counts.processRecords++;
    let b = this.running.get(r.batch_id);
    if (b === undefined) {
      if (this.recent.has(r.batch_id)) {
        // A reading after the batch's outcome: nothing left to predict.
        if (!muted) this.counts.outOfOrder++;
        return;
      }
      b = this.startBatch(r, position, muted);
    }
    const v = b.view;
    if (r.timestamp < v.last_reading_at) {
      if (!muted) this.counts.outOfOrder++;
      return;
    }
    const f = b.features as BatchFeatureState;
    f.add(r);
    v.last_reading_at = r.timestamp;
    v.readings = f.count;
    v.progress = f.progress;
    if (r.timestamp >= b.nextScoreAt) {
      b.nextScoreAt = r.timestamp + this.o.intervalMs;
      this.pending.push(this.snapshot(b, null, muted));
    }
  }

  /** Counts the record, as a replay when at or below the replay position; true then. */
  private isReplay(position: number): boolean {
    const muted = position <= this.replayTop;
    if (muted) this.counts.replayed++;
    return muted;
  }

  /** Joins a batch's outcome: its final prediction is made at the next flush, then it is completed. */
  quality(q: QualityRecord, position = Number.POSITIVE_INFINITY): void {
    const muted = this.isReplay(position);
    if (!muted) this.counts.qualityRecords++;
    const b = this.running.get(q.batch_id);
    if (b === undefined || b.features === null || b.features.count === 0) {
      // An outcome of a batch whose readings this run did not see: kept, with no prediction.
      const state = b ?? this.newState(q.line_id, q.work_order_id, q.batch_id, q.start_timestamp ?? q.timestamp);
      this.running.delete(q.batch_id);
      this.complete(state, q, muted);
      return;
    }
    this.pending.push(this.snapshot(b, q, muted));
  }

  /** Scores every due batch (one model call), then applies predictions, episodes and outcomes in arrival order. */
  async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const items = this.pending;
    this.pending = [];
    this.flushing++;
    try {
      const predictions = await scoreByModel(items);
      for (let i = 0; i < items.length; i++) {
        const item = items[i];
        const row = this.predictionRow(item, predictions[i]);
        this.record(item.batch, row, item.muted);
        await this.judge(item, row);
        if (item.outcome !== null) this.complete(item.batch, item.outcome, item.muted);
      }
    } finally {
      this.flushing--;
      await this.closeRetired();
    }
  }

  /** Closes the swapped-out models no waiting row and no flush under way needs. */
  private async closeRetired(): Promise<void> {
    if (this.flushing > 0 || this.retired.length === 0) return;
    const needed = new Set(this.pending.map((p) => p.model));
    const done = this.retired.filter((m) => !needed.has(m));
    this.retired = this.retired.filter((m) => needed.has(m));
    await Promise.all(done.map((m) => m.close()));
  }

  /** Ends the job: running batches' episodes stay open (their batches have not ended). */
  batches(q: { line?: string; status?: "running" | "completed" }): QualityBatchView[] {
    const out: QualityBatchView[] = [];
    const keep = (b: BatchState) => q.line === undefined || b.view.line_id === q.line;
    if (q.status !== "completed") for (const b of this.running.values()) if (keep(b)) out.push(summaryOf(b.view));
    if (q.status !== "running") {
      const done = [...this.recent.values()].reverse();
      for (const b of done) if (keep(b)) out.push(summaryOf(b.view));
    }
    return out;
  }

  batch(id: string): QualityBatchView | null {
    return (this.running.get(id) ?? this.recent.get(id))?.view ?? null;
  }

  private startBatch(r: ProcessRecord, position: number, muted: boolean): BatchState {
    if (this.running.size >= this.o.openBatchesMax) this.evictOldest(muted);
    const b = this.newState(r.line_id, r.work_order_id, r.batch_id, r.timestamp);
    b.features = new BatchFeatureState();
    b.firstPosition = position;
    this.running.set(r.batch_id, b);
    return b;
  }

  private newState(line: string, workOrder: string, batch: string, at: number): BatchState {
    const view: QualityBatchView = {
      batch_id: batch,
      line_id: line,
      work_order_id: workOrder,
      status: "running",
      started_at: at,
      last_reading_at: at,
      readings: 0,
      progress: 0,
      latest: null,
      history: [],
      outcome: null,
      episode: null,
    };
    return { view, features: null, firstPosition: Number.POSITIVE_INFINITY, nextScoreAt: Number.NEGATIVE_INFINITY, clearRun: 0 };
  }

  private evictOldest(muted: boolean): void {
    let oldest: BatchState | null = null;
    for (const b of this.running.values()) if (oldest === null || b.view.last_reading_at < oldest.view.last_reading_at) oldest = b;
    if (oldest === null) return;
    if (!muted) this.counts.evicted++;
    this.running.delete(oldest.view.batch_id);
    oldest.features = null;
    this.closeEpisode(oldest, oldest.view.last_reading_at, muted);
  }

  private snapshot(b: BatchState, outcome: QualityRecord | null, muted: boolean): Pending {
    const f = b.features as BatchFeatureState;
    const model = this.model;
    const row = new Float64Array(model.layout.width);
    model.layout.write(f, row, 0);
    const timestamp = outcome?.timestamp ?? b.view.last_reading_at;
    return { batch: b, model, row, timestamp, progress: f.progress, readings: f.count, outcome, muted };
  }

  private predictionRow(item: Pending, p: QualityPrediction): QualityPredictionRow {
    const v = item.batch.view;
    return {
      line_id: v.line_id,
      work_order_id: v.work_order_id,
      batch_id: v.batch_id,
      timestamp: item.timestamp,
      progress: item.progress,
      readings: item.readings,
      final: item.outcome !== null,
      ...p,
      model_version: item.model.modelVersion,
    };
  }

  private record(b: BatchState, row: QualityPredictionRow, muted: boolean): void {
    const v = b.view;
    if (!muted && v.latest === null) this.counts.batchesScored++;
    v.latest = row;
    v.history.push(row);
    if (v.history.length > this.o.historyMax) v.history.splice(0, v.history.length - this.o.historyMax);
    if (muted) return;
    this.counts.predictions++;
    this.o.onPrediction?.(row);
  }

  private complete(b: BatchState, q: QualityRecord, muted: boolean): void {
    const v = b.view;
    this.running.delete(v.batch_id);
    b.features = null;
    v.status = "completed";
    const p = v.latest;
    v.outcome = {
      line_id: v.line_id,
      work_order_id: v.work_order_id,
      batch_id: v.batch_id,
      timestamp: q.timestamp,
      units_produced: q.units_produced,
      first_pass_yield: q.first_pass_yield,
      defect_rate: q.defect_rate,
      defects: { ...q.defects },
      predicted_yield: p === null ? null : p.predicted_yield,
      predicted_defect_rate: p === null ? null : p.predicted_defect_rate,
      yield_error: p === null ? null : p.predicted_yield - q.first_pass_yield,
    };
    if (!muted) {
      this.counts.outcomes++;
      this.o.onOutcome?.(v.outcome);
    }
    this.closeEpisode(b, q.timestamp, muted);
    this.recent.delete(v.batch_id);
    this.recent.set(v.batch_id, b);
    if (this.recent.size > this.o.recentMax) this.recent.delete(this.recent.keys().next().value as string);
  }

  /** Opens, raises or clears the batch's episode from its latest prediction (module comment). */
  private async judge(item: Pending, p: QualityPredictionRow): Promise<void> {
    const b = item.batch;
    const level = qualityLevel(p);
    const open = b.view.episode !== null && b.view.episode.closed_at === null ? b.view.episode : null;
    if (level === null) {
      if (open === null) return;
      b.clearRun = isClear(p) ? b.clearRun + 1 : 0;
      if (b.clearRun >= QUALITY_CLEAR_SCORINGS) this.closeEpisode(b, p.timestamp, item.muted);
      return;
    }
    b.clearRun = 0;
    if (open !== null && (open.severity === "high" || level.severity === "medium")) {
      this.emit(b, { ...open, event: "updated", last_fired_at: p.timestamp, firings: open.firings + 1 }, item.muted);
      return;
    }
    const drivers = await qualityDrivers(item.model, item.row);
    const base = open ?? this.newEpisode(b, p);
    const rules = base.rules.includes(level.rule) ? base.rules : [...base.rules, level.rule];
    this.emit(
      b,
      {
        ...base,
        event: open === null ? "opened" : "updated",
        rules,
        severity: level.severity,
        description: `${level.text}; drivers ${drivers.map((d) => `${d.feature} ${d.delta_yield.toFixed(4)}`).join(", ")}`,
        fields: {
          ...base.fields,
          drivers: JSON.stringify(drivers),
          predicted_yield: String(p.predicted_yield),
          predicted_defect_rate: String(p.predicted_defect_rate),
        },
        last_fired_at: p.timestamp,
        firings: open === null ? 1 : open.firings + 1,
        cl: level.threshold,
      },
      item.muted,
    );
  }

  private newEpisode(b: BatchState, p: QualityPredictionRow): AlertEpisodeEvent {
    const v = b.view;
    const key = `quality:${v.line_id}/${v.batch_id}`;
    const level = qualityLevel(p) as QualityLevel;
    return {
      type: "alert_episode",
      event: "opened",
      episode_id: episodeId(key, "quality", p.timestamp, p.readings),
      key,
      // machine_id/sensor_type: the line and batch, as ml_alerts and the API's machine filter read them.
      fields: { machine_id: v.line_id, sensor_type: v.batch_id, line_id: v.line_id, batch_id: v.batch_id, work_order_id: v.work_order_id },
      family: "quality",
      rules: [level.rule],
      first_rule: level.rule,
      description: level.text,
      severity: level.severity,
      opened_at: p.timestamp,
      last_fired_at: p.timestamp,
      closed_at: null,
      firings: 0,
      limits_version: 0,
      cl: level.threshold,
      sigma: 0,
      points: [],
      acknowledged_at: null,
      acknowledged_by: null,
      ack_note: null,
    };
  }

  private closeEpisode(b: BatchState, at: number, muted: boolean): void {
    const e = b.view.episode;
    if (e === null || e.closed_at !== null) return;
    b.clearRun = 0;
    this.emit(b, { ...e, event: "closed", closed_at: Math.max(at, e.last_fired_at) }, muted);
  }

  /** The batch's episode becomes `e`; routed and counted unless a replay's. */
  private emit(b: BatchState, e: AlertEpisodeEvent, muted: boolean): void {
    b.view.episode = e;
    if (muted) return;
    if (e.event === "opened") this.counts.episodesOpened++;
    if (e.event === "closed") this.counts.episodesClosed++;
    this.o.onEpisode(e);
  }
}

/**
 * Features never listed as drivers: not process conditions an engineer can act on. `progress`
 * (the batch's fraction produced) is where the batch is, not how it is made — early in a batch it
 * is far from its training mean (about 0.5), which lowers the predicted yield, and "progress
 * −0.02" would head most young batches' episodes. The supplier and cleanroom-grade one-hots stay:
 * the material and the room are what a quality engineer checks and changes.
 */
export const QUALITY_NON_DRIVERS: ReadonlySet<string> = new Set(["progress"]);

/**
 * Occlusion against the training means (module comment), over the features that can be drivers
 * ({@link QUALITY_NON_DRIVERS} excepted); empty when the model carries no means.
 */
export async function qualityDrivers(m: QualityModel, row: Float64Array): Promise<QualityDriver[]> {
  const means = m.featureMean;
  if (means === null) return [];
  const f = row.length;
  const candidates = m.featureNames.flatMap((name, j) => (QUALITY_NON_DRIVERS.has(name) || row[j] === means[j] ? [] : [j]));
  const n = candidates.length;
  // Row k: the features with candidate k at its training mean; the last row: the features as they are.
  const rows = new Float64Array((n + 1) * f);
  for (let k = 0; k <= n; k++) {
    rows.set(row, k * f);
    if (k < n) rows[k * f + candidates[k]] = means[candidates[k]];
  }
  const p = await m.predict(rows, n + 1);
  const full = p[n];
  const out: QualityDriver[] = candidates.map((j, k) => ({
    feature: m.featureNames[j],
    value: row[j],
    training_mean: means[j],
    delta_yield: full.predicted_yield - p[k].predicted_yield,
    delta_defect_rate: full.predicted_defect_rate - p[k].predicted_defect_rate,
  }));
  out.sort((a, b) => a.delta_yield - b.delta_yield);
  return out.slice(0, QUALITY_DRIVERS_MAX);
}

/** One feature's share of a prediction: Δ = ŷ(x) − ŷ(x with the feature at its training mean). */
export interface QualityDriver {
  feature: string;
  value: number;
  training_mean: number;
  delta_yield: number;
  delta_defect_rate: number;
}

interface QualityLevel {
  severity: AlertSeverity;
  rule: string;
  threshold: number;
  text: string;
}

/** The highest threshold a prediction crosses (module comment), or null. */
export function qualityLevel(p: QualityPrediction): QualityLevel | null {
  const t = QUALITY_THRESHOLDS;
  const y = p.predicted_yield;
  const d = p.predicted_defect_rate;
  const yText = `predicted yield ${y.toFixed(4)}`;
  const dText = `predicted defect rate ${d.toFixed(4)}`;
  if (y < t.yieldCritical)
    return { severity: "high", rule: "QUALITY_YIELD_CRITICAL", threshold: t.yieldCritical, text: `${yText} < ${t.yieldCritical}` };
  if (d > t.defectCritical)
    return { severity: "high", rule: "QUALITY_DEFECT_CRITICAL", threshold: t.defectCritical, text: `${dText} > ${t.defectCritical}` };
  if (y < t.yieldWarning)
    return { severity: "medium", rule: "QUALITY_YIELD_WARNING", threshold: t.yieldWarning, text: `${yText} < ${t.yieldWarning}` };
  if (d > t.defectWarning)
    return { severity: "medium", rule: "QUALITY_DEFECT_WARNING", threshold: t.defectWarning, text: `${dText} > ${t.defectWarning}` };
  return null;
}

/** The predictions of `items`, in their order: one model call per model that wrote rows (two at most, around a swap). */
async function scoreByModel(items: readonly Pending[]): Promise<QualityPrediction[]> {
  const out: QualityPrediction[] = new Array(items.length);
  for (const model of new Set(items.map((i) => i.model))) {
    const mine = items.flatMap((item, i) => (item.model === model ? [i] : []));
    const width = model.layout.width;
    const rows = new Float64Array(mine.length * width);
    mine.forEach((i, k) => rows.set(items[i].row, k * width));
    const predictions = await model.predict(rows, mine.length);
    mine.forEach((i, k) => (out[i] = predictions[k]));
  }
  return out;
}

function isClear(p: QualityPrediction): boolean {
  const t = QUALITY_THRESHOLDS;
  return p.predicted_yield >= t.yieldWarning + QUALITY_CLEAR_MARGIN && p.predicted_defect_rate <= t.defectWarning - QUALITY_CLEAR_MARGIN;
}

/** A list entry: the batch without its prediction history. */
function summaryOf(v: QualityBatchView): QualityBatchView {
  return { ...v, history: [] };
}
