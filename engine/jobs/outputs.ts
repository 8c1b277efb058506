/**
 * Where a run's results go besides the scores file: ClickHouse (`--clickhouse URL`), the live
 * server (`--port`: WebSocket topics, HTTP API, Prometheus metrics) and the failure predictions
 * (`--predict MODEL.onnx`, engine/jobs/prediction-service.ts). The jobs hand every scored record and
 * every alert event here; this module turns them into table rows and topic messages, keeps what
 * the API serves (open alerts, each key's SPC limits, each machine's health and predictions), and
 * exports the engine's figures as metrics.
 *
 * Health score of a machine (0–100). From the SPC alert episodes open on its keys: 100 minus 30
 * per open high-severity episode, 15 per medium and 5 per low, floored at 0. With a prediction model, the
 * machine's latest failure probability p folds in: health_score = min(alert score,
 * round(100 × (1 − p))), so either many open out-of-control patterns or a likely failure within
 * the model's horizon lowers it. Risk level by the combined score: from 80 low, from 60 medium,
 * from 40 high, below 40 critical. Without a model the prediction endpoints answer
 * "not_configured" and the score is the alert score alone. */
import type { AuditStamp } from "./audit/mod.js";
import type { QualityOutcomeRow as QualityOutcome, QualityPredictionRow as QualityPrediction } from "./quality-job.js";
import { readFileSync } from "node:fs";
import { ConfigError, type Logger, type StreamEngine } from "../core/mod.js";
import {
  type AccessTokenConfig,
  startLiveServer,
  type LiveServer,
  ApiReplyError,
  type ApiProviders,
  type EquipmentHealth,
  type QuarantineProvider,
  type QualityBatchesProvider,
  type PlantMachine,
  MetricsRegistry,
  defineEngineMetrics,
  type EngineMetrics as MetricHandles,
  machineTopic,
  analysisTopic,
  type FrameAudit,
  ScoreFrameMessage,
  ServerListenError,
  TOPIC_ALERTS,
  ANALYSIS_PREDICTION,
} from "../../connectors/live/mod.js";
import {
  ClickHouseSink,
  type ClickHouseTable,
  EncodeError,
  type EncodedRows,
  encodeRowBinary,
  RowBinaryWriter,
  isNativeBlock,
  type NativeBlock,
  type RejectedRow,
  type EquipmentHealthRow,
  type MaintenancePredictionRow,
  type ScoreRow,
  type SensorDataRow,
} from "../../connectors/clickhouse/mod.js";
import { DEFAULT_LIVE_FRAMES, HISTORY_COLUMNS, historyFrameOfRows, LiveFrames } from "./live-frames.js";
import { healthOfProbability, riskOfScore, type MachinePrediction, type PredictionService } from "./prediction-service.js";
import { type AckResult, type AlertEpisodeEvent, MR_RULES, type SpcLimitsChange, applySpcLimitsChange } from "../../operators/spc/mod.js";
import { EpisodeBook } from "./episode-book.js";
import { AlertRowsBinary } from "./alert-rows.js";
import type { ModelEntry } from "../../connectors/registry/mod.js";
import { modelRow } from "./model-follow.js";
import { DEFAULT_RETAINED_UNITS, type RetainedUnits, unitsFromReadings } from "./retained-units.js";
import type { Retrainer, UnitsSource } from "./retrain.js";
import { CMAPSS_SENSORS } from "../../connectors/files/mod.js";
import { DEFAULT_MODEL_DRIFT, ModelDriftWatch, type ModelDriftOptions, type WatchedModel } from "./model-drift.js";
import { IforestDriftFeed } from "./iforest-drift.js";
import type { DriftRows } from "./ingest/mod.js";
import type { IforestAnalysis } from "../../operators/iforest/mod.js";

export interface OutputsOptions {
  clickhouse?: { url: string; database?: string; spillDir: string };
  /**
   * The live server. `portFallback`: when `port` is taken, listen on a free one instead (and log
   * it); `announce`: called with the dashboard's address (the token in its fragment) before the
   * server's start events are logged — the CLI prints it as its first line.
   */
  live?: { port: number; host: string; tokensFile?: string; portFallback?: boolean; announce?: (dashboardUrl: string) => void };
  /** How often each machine's health row goes to ClickHouse. */
  healthIntervalMs: number;
  /** Failure predictions (`--predict`): fed every record's rolling row; served, stored, published. */
  predictions?: PredictionService;
  /**
   * The true remaining useful life (cycles) of a machine at an event time, where the source knows
   * it (a C-MAPSS training file replayed): each prediction's absolute error is counted
   * (`linewatch_prediction_rul_abs_error_cycles_total` / `linewatch_prediction_truth_total`: the mean
   * absolute error between two scrapes).
   */
  groundTruth?: (machineId: string, timeMs: number) => number | null;
  /** Drift of the prediction model (engine/jobs/model-drift.ts); default {@link DEFAULT_MODEL_DRIFT}. */
  drift?: Readonly<ModelDriftOptions>;
  /**
   * The run has an iforest analysis: its model's drift is watched too (PSI of its features, ADWIN
   * on its score), from the rows of {@link Outputs.watchIforest} (the main-thread job) or
   * {@link Outputs.iforestDriftRows} (ingest workers).
   */
  iforestDrift?: boolean;
  /**
   * `--retrain-on-drift`: every reading is kept in `history` (a machine becomes a unit once the
   * ground truth says it failed), and every model_drift episode event goes to the retrainer.
   */
  retrain?: { history: RetainedUnits; retrainer: Retrainer };
  /** Operational events: ClickHouse lost and restored, spills, refused rows, limits set through the API, the live server's. */
  log: Logger;
}

/** One scored record as the jobs see it: its key parts and the merged members of every analysis. */
export interface ScoredRecord {
  machineId: string;
  sensorType: string;
  /** Operating mode: the key's when keyed by mode, or the record's own `operating_mode` (NATS single records). */
  mode?: string;
  /** The record's `sensor_unit` and `work_order_id` (NATS single records), when it has them. */
  unit?: string;
  workOrder?: string;
  key: string;
  time: number;
  value: number;
  seq: number;
  /** The members of every analysis, JSON without braces (as in the scores file); read when `members` is not given. */
  membersJson?: string;
  /** The same members as values (operators/analysis.ts recordFields): spares parsing `membersJson`. Taken over, not copied. */
  members?: Record<string, unknown>;
  /** The rolling analysis's output row (operators/rolling/rolling.ts ROLLING_FIELDS order) when the run has one; read during the call only. */
  rolling?: Float64Array;
  /** Every analysis's output row, in the order `attach` named their columns; read during the call only. With them the machine topic gets score frames (live-frames.ts). */
  rows?: readonly Float64Array[];
}

const PENALTY: Record<string, number> = { high: 30, medium: 15, low: 5 };

/** Applies a limits change to a key's SPC state wherever it lives (the engine here, or an ingest worker); false: no such key. */
type LimitsControl = (key: string, change: SpcLimitsChange) => Promise<boolean>;

/**
 * Acknowledges an open episode where its tracker runs (this thread's SPC analysis, or the ingest
 * worker owning the key); the tracker emits the `acknowledged` event through the alert routing.
 */
export type EpisodeAckControl = (episode: AlertEpisodeEvent, at: number, by: string | null, note: string | null) => Promise<AckResult>;

/** What the outputs read of the ingest workers of `run --nats` (engine/jobs/ingest IngestJob has it). */
export interface IngestSteering {
  /** `shed`: core NATS messages a worker dropped because its pending records were full. */
  counts(): { readings: number; scored: number; kernelMs: number; shed: number };
  /** Iforest rows the workers did not send to the drift watch (it was that far behind). */
  driftRowsShed?(): number;
  deadLettersByReason(): Record<string, number>;
  changeLimits(key: string, change: SpcLimitsChange): Promise<boolean>;
}

/** A key's limits as the API serves them. */
export interface ServedLimits {
  key: string;
  cl: number | null;
  sigma: number | null;
  ucl: number | null;
  lcl: number | null;
  limits_version: number;
}

/** Engine figures the metrics move by (between two scrapes). */
interface EngineFigures {
  in: number;
  out: number;
  /** Core NATS messages shed (the input's bounded queue full); 0 on other sources. */
  shed: number;
  late: number;
  busy: number;
  workers: number;
  reorder: number;
  inFlight: number;
}

/** The part of the ClickHouse sink that takes encoded rows ({@link Outputs.encodedRows}). */
export type EncodedRowsSink = Pick<ClickHouseSink, "room" | "metrics" | "rowsPending" | "sendOpen" | "flush"> & {
  readonly options: { pendingRowsMax: number; batchRowsMax: number; flushIntervalMs: number };
  insertEncoded(
    table: ClickHouseTable,
    rows: EncodedRows | NativeBlock,
    rejected?: readonly RejectedRow[],
    sendNow?: boolean,
  ): Promise<void>;
};

export class Outputs {
  readonly metrics: MetricHandles;
  readonly registry: MetricsRegistry;
  private sink: ClickHouseSink | null = null;
  /** Drift of the prediction model and the iforest model; null without either. */
  drift: ModelDriftWatch | null = null;
  /** The iforest rows to the drift watch: the main thread's analysis (its index among the analyses), and per ingest worker. */
  private iforestFeed: IforestDriftFeed | null = null;
  private iforestIndex = -1;
  private readonly workerFeeds: IforestDriftFeed[] = [];
  private readonly retained: RetainedUnits | null;
  private readonly retrainer: Retrainer | null;
  private closing = false;
  /** The audit columns of every score row ({@link startAudit}); null: the run is not audited. */
  private auditHashes: { kernel_hash: string; config_hash: string } | null = null;
  private modelVersions: () => readonly string[] = () => [];
  /** RowBinary of audited score rows, reused. */
  private scoreWriter: RowBinaryWriter | null = null;
  /** The ml_alerts rows' encoder (RowBinary, one insert per batch of events). */
  private readonly alertRows = new AlertRowsBinary();
  private auditStamp: AuditStamp | null = null;

  /** The run's audit stamp ({@link startAudit}), for the jobs that write score lines; null when not audited. */
  get audit(): AuditStamp | null {
    return this.auditStamp;
  }
  private live: LiveServer | null = null;
  private limitsControl: LimitsControl | null = null;
  private scores: ScoreRow[] = [];
  private readings: SensorDataRow[] = [];
  /** Writes not settled yet: `flush` waits for them; each leaves the set as it settles. */
  private readonly pendingWrites = new Set<Promise<void>>();
  /** Open and recent alert episodes (the API, the health score). */
  readonly episodes = new EpisodeBook();
  /** Where an open episode's acknowledgement is applied; null: the run has no SPC tracker to ask. */
  episodeAcks: EpisodeAckControl | null = null;
  /** Told of the open episodes a restart restored from a checkpoint (the alert router: their closing is printed). */
  onEpisodesRestored: ((events: readonly AlertEpisodeEvent[]) => void) | null = null;
  /** Routes an event this thread makes (the acknowledgement of a closed episode) as the trackers' are routed. */
  routeEpisodeEvent: ((e: AlertEpisodeEvent) => void) | null = null;
  private readonly limitsByKey = new Map<string, ServedLimits>();
  private readonly machines = new Set<string>();
  /** Keys seen per machine (the plant view's sensors and keys). */
  private readonly keysOf = new Map<string, Set<string>>();
  /** Score frames on the machine topics and the history (when the analyses name their columns). */
  private frames: LiveFrames | null = null;
  /** Indexes of the analyses whose rows go into the frames. */
  private framedRows: number[] = [];
  private readonly framedScratch: Float64Array[] = [];
  private healthTimer: NodeJS.Timeout | null = null;
  private writeErrors = 0;
  private deadLetters: (() => Record<string, number>) | null = null;
  private shed: (() => number) | null = null;
  private readonly deadLettersSeen = new Map<string, number>();
  /** What the API serves; later providers (the serial job's quarantine list) join this object. */
  private readonly apiProviders: ApiProviders;

  private readonly predictions: PredictionService | null;
  private readonly iforestDriftWanted: boolean;
  private readonly clickhouseLog: Logger;
  private readonly spcLog: Logger;

  private constructor(o: OutputsOptions) {
    this.registry = new MetricsRegistry();
    this.metrics = defineEngineMetrics(this.registry);
    this.predictions = o.predictions ?? null;
    this.iforestDriftWanted = o.iforestDrift === true;
    this.retained = o.retrain?.history ?? null;
    this.retrainer = o.retrain?.retrainer ?? null;
    this.clickhouseLog = o.log.child({ component: "clickhouse" });
    this.spcLog = o.log.child({ component: "spc" });
    const service = this.predictions;
    if (service !== null) {
      const made = this.registry.counter({
        name: "linewatch_predictions_total",
        help: "Failure predictions made, by risk level.",
        labelNames: ["risk_level"],
      });
      const machines = this.registry.gauge({
        name: "linewatch_prediction_machines",
        help: "Machines the prediction service knows, by whether their features are complete.",
        labelNames: ["features"],
      });
      const runs = this.registry.gauge({
        name: "linewatch_model_runs",
        help: "Calls of the prediction model so far (the model latency: linewatch_model_seconds / linewatch_model_runs between two scrapes).",
      });
      const seconds = this.registry.gauge({
        name: "linewatch_model_seconds",
        help: "Wall time of every call of the prediction model so far.",
      });
      service.listen((list) => {
        for (const p of list) made.labels({ risk_level: p.risk_level }).inc();
        this.onPredictions(list);
      });
      if (o.groundTruth !== undefined) this.countAccuracy(service, o.groundTruth);
      this.drift = this.newDriftWatch(o);
      this.feedPredictions(this.drift, service, o);
      this.registry.onCollect(() => {
        const c = service.counters();
        machines.labels({ features: "complete" }).set(c.machinesComplete);
        machines.labels({ features: "incomplete" }).set(c.machines - c.machinesComplete);
        runs.set(c.modelRuns);
        seconds.set(c.modelSeconds);
      });
    }
    if (o.iforestDrift === true) this.drift ??= this.newDriftWatch(o);
    this.apiProviders = this.providers();
  }

  /** The drift watch of the run's models; its episodes are routed as the SPC ones (and to the retrainer). */
  private newDriftWatch(o: OutputsOptions): ModelDriftWatch {
    const retrainer = o.retrain?.retrainer;
    const drift = new ModelDriftWatch({
      options: o.drift ?? DEFAULT_MODEL_DRIFT,
      route: (e) => {
        (this.routeEpisodeEvent ?? this.alert.bind(this))(e);
        retrainer?.onEpisode(e);
      },
      metrics: this.registry,
      log: o.log,
      truth: o.groundTruth !== undefined,
    });
    this.registry.onCollect(() => drift.collect());
    return drift;
  }

  /** Feeds every prediction to the drift watch of the model that made it (a model swapped in is watched from its first prediction). */
  private feedPredictions(drift: ModelDriftWatch, service: PredictionService, o: OutputsOptions): void {
    const watched = () => watchedPredictionModel(service.model);
    drift.use(watched());
    let inUse = service.model.modelVersion;
    const truth = o.groundTruth;
    service.listen((list) => {
      for (const p of list) {
        if (p.model_version !== inUse && p.model_version === service.model.modelVersion) {
          drift.use(watched());
          inUse = p.model_version;
        }
        const t = truth?.(p.machine_id, p.predicted_at_ms) ?? null;
        if (t === 0) this.retained?.failed(p.machine_id, p.predicted_at_ms);
        const capped = t === null ? null : Math.min(t, service.model.rulCap ?? Number.POSITIVE_INFINITY);
        const residual = capped === null || !Number.isFinite(p.rul_cycles) ? null : p.rul_cycles - capped;
        drift.observe(p.model_version, p.features, p.predicted_at_ms, p.machine_id, residual, t);
      }
    });
  }

  /** The main-thread job's iforest analysis (`index` among the run's analyses): each record's row goes to its model's drift watch. */
  watchIforest(analysis: IforestAnalysis, index: number): void {
    if (this.drift === null) return;
    this.iforestIndex = index;
    this.iforestFeed = new IforestDriftFeed(this.drift, analysis.featureCount, (g) => analysis.modelAt(g));
    this.iforestFeed.models(0, [analysis.modelAt(0)]);
  }

  /** Whether the ingest workers should send their iforest rows ({@link iforestDriftRows}). */
  get watchesIforest(): boolean {
    return this.drift !== null && this.iforestDriftWanted;
  }

  /** An ingest worker's iforest rows, to its model's drift watch. */
  iforestDriftRows(worker: number, rows: DriftRows): void {
    const drift = this.drift;
    if (drift === null) return;
    const feed = (this.workerFeeds[worker] ??= new IforestDriftFeed(drift, rows.fields - 2));
    feed.observeRows(rows);
  }

  /** Counts each prediction's absolute RUL error against the source's ground truth. */
  private countAccuracy(service: PredictionService, truth: (machineId: string, timeMs: number) => number | null): void {
    const judged = this.registry.counter({
      name: "linewatch_prediction_truth_total",
      help: "Predictions whose true remaining useful life the source knows (a C-MAPSS training file).",
    });
    const error = this.registry.counter({
      name: "linewatch_prediction_rul_abs_error_cycles_total",
      help: "Sum of |predicted − true| remaining useful life, in cycles (the truth capped at the model's RUL cap), over those predictions (÷ linewatch_prediction_truth_total: the mean absolute error).",
    });
    service.listen((list) => {
      for (const p of list) {
        const t = truth(p.machine_id, Date.parse(p.predicted_at));
        if (t === null || !Number.isFinite(p.rul_cycles)) continue;
        judged.inc();
        // The truth capped as the model's target is (piecewise-linear RUL, the C-MAPSS convention `predict eval` uses too).
        error.inc(Math.abs(p.rul_cycles - Math.min(t, service.model.rulCap ?? Number.POSITIVE_INFINITY)));
      }
    });
  }

  /**
   * Stamps every ml_scores row this thread writes with the run's audit record and stores its
   * settings document once (ml_audit_configs, keyed by config_hash and kernel_hash).
   */
  startAudit(stamp: AuditStamp): void {
    this.auditStamp = stamp;
    this.auditHashes = { kernel_hash: stamp.kernelHash, config_hash: stamp.configHash };
    const row = { config_hash: stamp.configHash, kernel_hash: stamp.kernelHash, created_at: Date.now(), config: stamp.configJson };
    if (this.sink !== null) this.track(this.sink.write("ml_audit_configs", [row]));
  }

  /** Where the audit record of frames finds the model of each generation (the sensor job's isolation forest). */
  auditModels(versions: () => readonly string[]): void {
    this.modelVersions = versions;
  }

  /** The audit members of a per-record machine message (no frames): as a score line's. */
  private auditMessage(members: Record<string, unknown>): Record<string, unknown> {
    const limits = "limits_version" in members ? {} : { limits_version: null };
    return { ...this.auditHashes, model_version: typeof members.model_hash === "string" ? members.model_hash : null, ...limits };
  }

  private frameAudit(): FrameAudit | null {
    if (this.auditHashes === null) return null;
    return { ...this.auditHashes, model_versions: [...this.modelVersions()] };
  }

  /** Opens ClickHouse (creating the tables) and the live server, as configured. */
  static async start(o: OutputsOptions): Promise<Outputs> {
    const out = new Outputs(o);
    if (o.clickhouse !== undefined) {
      out.sink = new ClickHouseSink({
        url: o.clickhouse.url,
        database: o.clickhouse.database,
        spillDir: o.clickhouse.spillDir,
        onDeadLetter: (d) => out.clickhouseLog.error({ table: d.table, err: d.error }, "row refused by the server (dead-lettered)"),
        onAvailabilityChange: (up, err) => {
          if (up) out.clickhouseLog.info("available again; draining the spill");
          else out.clickhouseLog.warn({ err, spill_dir: o.clickhouse?.spillDir }, "unavailable; spilling rows to disk");
        },
        onColumnAdded: (statement) => out.clickhouseLog.info({ statement }, "added a column an earlier version's table lacks"),
      });
    }
    if (o.live !== undefined) out.live = await startLive(o.live, out.registry, out.apiProviders, o.log);
    out.healthTimer = setInterval(() => out.writeHealth(), o.healthIntervalMs);
    out.healthTimer.unref();
    return out;
  }

  get active(): boolean {
    return this.sink !== null || this.live !== null || this.predictions !== null || this.drift !== null;
  }

  /** Whether `record` reads the members (ClickHouse or the live server); predictions alone read only the rolling row. */
  get wantsMembers(): boolean {
    return this.sink !== null || this.live !== null;
  }

  /**
   * The engine whose SPC limits the API reads and changes; `spcIndex` is the spc analysis's index.
   * `outColumns`: each analysis's column names (RecordAnalysis.outColumns), when its rows go to the
   * live machine topics as score frames (records then carry `rows`).
   */
  attach(
    engine: StreamEngine,
    spcIndex: number,
    source = "simulator",
    analyses: readonly string[] = [],
    outColumns: ReadonlyArray<readonly string[] | undefined> = [],
  ): void {
    this.startFrames(outColumns);
    this.limitsControl =
      spcIndex < 0
        ? null
        : async (key, change) => {
            const id = engine.keys.lookup(key);
            if (id < 0) return false;
            await engine.withKeyState(id, spcIndex, (k, ptr) => applySpcLimitsChange(k, ptr, change));
            return true;
          };
    this.collect(source, analyses, () => {
      const m = engine.metrics();
      return {
        in: m.recordsIn,
        out: m.recordsOut,
        shed: this.shed?.() ?? 0,
        late: m.recordsLate,
        busy: m.kernelBusyMs,
        workers: m.workers,
        reorder: m.reorderPending,
        inFlight: m.tasksInFlight,
      };
    });
  }

  /**
   * The ingest workers of `run --nats` instead of an engine on this thread: their counters move the
   * metrics (kernels inline: the workers are the pool), the API's limits changes go to them, and
   * what they report — new keys' machines, limits versions — feeds the API and the health rows.
   */
  attachIngest(job: IngestSteering, workers: number, hasSpc: boolean, source: string, analyses: readonly string[]): void {
    this.limitsControl = hasSpc ? (key, change) => job.changeLimits(key, change) : null;
    this.countDeadLetters(() => job.deadLettersByReason());
    if (this.watchesIforest && job.driftRowsShed !== undefined) this.countDriftRowsShed(() => job.driftRowsShed?.() ?? 0);
    this.collect(source, analyses, () => {
      const c = job.counts();
      return { in: c.readings, out: c.scored, shed: c.shed, late: 0, busy: c.kernelMs, workers, reorder: 0, inFlight: 0 };
    });
  }

  /** `linewatch_model_drift_rows_shed_total`: the ingest workers' iforest rows the drift watch did not see. */
  private countDriftRowsShed(shed: () => number): void {
    const counter = this.registry.counter({
      name: "linewatch_model_drift_rows_shed_total",
      help: "Iforest rows ingest workers did not send to the drift watch because 65 536 of theirs were still waiting for the main thread (the watch saw a sample).",
    });
    let seen = 0;
    this.registry.onCollect(() => {
      const n = shed();
      if (n > seen) counter.inc(n - seen);
      seen = n;
    });
  }

  private startFrames(outColumns: ReadonlyArray<readonly string[] | undefined>): void {
    const live = this.live;
    if (live === null || outColumns.length === 0) return;
    this.framedRows = outColumns.flatMap((c, k) => (c === undefined ? [] : [k]));
    const names = this.framedRows.flatMap((k) => outColumns[k] as readonly string[]);
    this.frames = new LiveFrames(names, (machine, frame) =>
      live.publish(machineTopic(machine), new ScoreFrameMessage(frame, this.frameAudit())),
    );
  }

  /**
   * A machine's recent readings for a screen opened later: the history this thread keeps (runs
   * whose records pass here), else — ingest workers, or after a restart — ml_scores when the run
   * writes ClickHouse; an empty frame for a machine the run knows without any (the ingest
   * workers' path without ClickHouse: the live topic fills the charts); null for an unknown one.
   */
  private async historyFrame(machineId: string): Promise<Uint8Array | null> {
    const kept = this.frames?.historyFrame(machineId) ?? null;
    if (kept !== null) return kept;
    const rows = this.sink === null ? [] : await this.sink.recentScores(machineId, DEFAULT_LIVE_FRAMES.historyPerKey, HISTORY_COLUMNS);
    if (rows.length > 0) return historyFrameOfRows(machineId, rows);
    return this.machines.has(machineId) ? historyFrameOfRows(machineId, []) : null;
  }

  /** A machine an ingest worker saw (its health is served and written from now on). */
  machineSeen(machineId: string): void {
    this.machines.add(machineId);
  }

  /** A key's limits at a new version, as an ingest worker reported them. */
  limitsSeen(limits: ServedLimits): void {
    this.limitsByKey.set(limits.key, limits);
  }

  private collect(source: string, analyses: readonly string[], figures: () => EngineFigures): void {
    const last = { in: 0, out: 0, shed: 0, late: 0, busy: 0, t: performance.now() };
    this.registry.onCollect(() => {
      const m = figures();
      // Counters move by what happened since the last scrape.
      this.metrics.recordsIn.labels({ source }).inc(m.in - last.in);
      for (const a of analyses) this.metrics.recordsOut.labels({ analysis: a }).inc(m.out - last.out);
      this.metrics.natsShed.labels({ source }).inc(m.shed - last.shed);
      this.metrics.lateRecords.labels({ source }).inc(m.late - last.late);
      const now = performance.now();
      this.metrics.poolUtilisation.set(Math.min(1, (m.busy - last.busy) / ((now - last.t) * Math.max(1, m.workers))));
      Object.assign(last, { in: m.in, out: m.out, shed: m.shed, late: m.late, busy: m.busy, t: now });
      if (this.deadLetters !== null) {
        for (const [reason, n] of Object.entries(this.deadLetters())) {
          const before = this.deadLettersSeen.get(reason) ?? 0;
          if (n > before) this.metrics.deadLetter.labels({ reason }).inc(n - before);
          this.deadLettersSeen.set(reason, n);
        }
      }
      this.metrics.poolWorkers.set(m.workers);
      this.metrics.queueDepth.labels({ queue: "reorder" }).set(m.reorder);
      this.metrics.queueDepth.labels({ queue: "tasks_in_flight" }).set(m.inFlight);
      if (this.sink !== null) {
        const s = this.sink.metrics();
        this.metrics.queueDepth.labels({ queue: "sink_clickhouse" }).set(s.rowsPending);
        this.metrics.queueDepth.labels({ queue: "spill_bytes" }).set(s.spillBytes);
      }
    });
  }

  /** Where the dead-letter counts by reason come from (the NATS input). */
  countDeadLetters(counts: () => Record<string, number>): void {
    this.deadLetters = counts;
  }

  /** Where the count of core NATS messages shed comes from (the main-thread job's core source; ingest workers report theirs in counts()). */
  countShed(shed: () => number): void {
    this.shed = shed;
  }

  /** A scored record: a ClickHouse row (reading and scores) and a message on its machine's topic. */
  record(r: ScoredRecord): void {
    this.machines.add(r.machineId);
    this.keySeen(r.machineId, r.key);
    if (this.predictions !== null && r.rolling !== undefined) this.predictions.observe(r.key, r.machineId, r.sensorType, r.time, r.rolling);
    this.retained?.observe(r.machineId, r.sensorType, r.time, r.value);
    if (this.iforestFeed !== null && r.rows !== undefined) this.iforestFeed.observe(r.rows[this.iforestIndex], 0, r.time);
    if (this.live === null && this.sink === null) return;
    const members = r.members ?? (JSON.parse(`{${r.membersJson ?? ""}}`) as Record<string, unknown>);
    if (typeof members.limits_version === "number" && members.limits_version > 0) {
      this.limitsByKey.set(r.key, {
        key: r.key,
        cl: members.cl as number,
        sigma: members.sigma as number,
        ucl: members.ucl as number,
        lcl: members.lcl as number,
        limits_version: members.limits_version,
      });
    }
    if (this.frames !== null && r.rows !== undefined) {
      const framed = this.framedScratch;
      for (let j = 0; j < this.framedRows.length; j++) framed[j] = r.rows[this.framedRows[j]];
      framed.length = this.framedRows.length;
      this.frames.add(r.machineId, `${r.machineId}.${r.sensorType}`, r.time, r.value, framed);
      if (members.iforest_score !== undefined)
        this.live?.publish(analysisTopic("iforest"), { key: r.key, timestamp: r.time, iforest_score: members.iforest_score });
    } else if (this.live !== null) {
      this.live.publish(machineTopic(r.machineId), {
        key: r.key,
        sensor_type: r.sensorType,
        mode: r.mode,
        timestamp: r.time,
        value: r.value,
        seq: r.seq,
        ...members,
        ...(this.auditHashes === null ? {} : this.auditMessage(members)),
      });
      if (members.iforest_score !== undefined)
        this.live.publish(analysisTopic("iforest"), { key: r.key, timestamp: r.time, iforest_score: members.iforest_score });
    }
    if (this.sink !== null) {
      this.readings.push(sensorDataRow(r));
      const score = scoreRow(r, members);
      if (this.auditHashes !== null) Object.assign(score, this.auditHashes);
      this.scores.push(score);
      // Rows are encoded on this thread as they are handed over: small hand-overs keep each pause short.
      if (this.scores.length >= 1024) this.writeRows();
    }
  }

  /** An alert episode event: the alerts table (one row per episode), the `alerts` topic, the API's episode lists. */
  alert(e: AlertEpisodeEvent): void {
    this.alerts([e]);
  }

  /** Alert episode events in their order (an ingest worker's batch): as {@link alert} each, their ml_alerts rows one insert (alert-rows.ts). */
  alerts(events: readonly AlertEpisodeEvent[]): void {
    for (const e of events) {
      this.episodes.apply(e);
      this.live?.publish(TOPIC_ALERTS, e);
    }
    this.writeAlertRows(events);
  }

  private writeAlertRows(events: readonly AlertEpisodeEvent[]): void {
    if (this.sink === null || events.length === 0) return;
    this.track(this.sink.insertEncoded("ml_alerts", ...this.alertRows.encode(events)));
  }

  /**
   * Episodes open at a checkpoint a restart restored (no event: they were routed before the
   * restart). An acknowledged one's row is written again: its `acknowledged` event may have been
   * lost with the process (it is no record the restart re-reads), the checkpoint holds it.
   */
  restoreEpisodes(events: readonly AlertEpisodeEvent[]): void {
    for (const e of events) this.episodes.apply(e);
    this.writeAlertRows(events.filter((e) => e.acknowledged_at !== null));
    this.onEpisodesRestored?.(events);
  }

  /**
   * A person's acknowledgement (POST /api/alerts/episodes/{id}/ack): of an open episode by its
   * tracker (so its later events carry it), of a closed one here. Null: unknown; 409 when
   * acknowledged already.
   */
  async acknowledge(id: string, ack: { by?: string; note?: string }): Promise<AlertEpisodeEvent | null> {
    const e = this.episodes.find(id);
    if (e === undefined) return null;
    if (e.acknowledged_at !== null) throw alreadyAcknowledged(e);
    const at = Date.now();
    const by = ack.by ?? null;
    const note = ack.note ?? null;
    if (e.closed_at === null && this.episodeAcks !== null) {
      const r = await this.episodeAcks(e, at, by, note);
      if (r.ok) return r.event;
      if (r.reason === "already") throw alreadyAcknowledged(e);
      // Closed meanwhile: acknowledged as a closed episode below.
      const now = this.episodes.find(id);
      if (now === undefined || now.closed_at === null) return null;
      return this.acknowledge(id, ack);
    }
    const acked: AlertEpisodeEvent = { ...e, event: "acknowledged", acknowledged_at: at, acknowledged_by: by, ack_note: note };
    if (this.routeEpisodeEvent !== null) this.routeEpisodeEvent(acked);
    else this.alert(acked);
    // A closed episode is in no checkpoint: its acknowledgement lives only in its ml_alerts row,
    // so the answer waits until that row is durable (a kill -9 after the answer keeps it).
    await this.writesDurable();
    return acked;
  }

  /**
   * Hands buffered rows to ClickHouse and waits until everything written so far is durable.
   * `endOfInput`: the input is over (a file or simulator run's end), so each machine's last time
   * step is predicted too.
   */
  async flush(endOfInput = false): Promise<void> {
    await this.predictions?.flush(endOfInput);
    this.writeRows();
    await this.writesDurable();
  }

  /** Waits until every ClickHouse write handed over so far is durable (or has failed, counted). */
  private async writesDurable(): Promise<void> {
    const writes = [...this.pendingWrites];
    // Send the sink's open batches now: a write resolves only once its batch is sent, and a batch
    // otherwise waits out the sink's flush interval (1 s) — holding every JetStream fetch, whose
    // acks wait for this, to one batch interval (about 400 records/s with --fetch 1000).
    await this.sink?.flush();
    await Promise.all(writes);
  }

  /**
   * For sources that acknowledge nothing (core NATS, the simulator, a file): hands buffered rows
   * to ClickHouse without waiting for them to be durable, so scoring never waits on an insert.
   * Waits only while the sink's memory queue is half full (`pendingRowsMax`), until inserts or
   * the spill make room: bounded memory, and nothing dropped. Failed writes are logged and
   * counted as with `flush`; `flush`/`close` still wait for everything.
   */
  async handOver(): Promise<void> {
    await this.predictions?.flush(false);
    this.writeRows();
    await this.room();
  }

  /** Resolves at once unless the sink's memory queue is half full; then when it is below that again. */
  room(): Promise<void> {
    if (this.sink === null) return Promise.resolve();
    return this.sink.room(Math.floor(this.sink.options.pendingRowsMax / 2));
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.healthTimer !== null) clearInterval(this.healthTimer);
    this.frames?.close();
    await this.predictions?.close();
    this.writeHealth();
    await this.flush().catch((e: Error) => this.clickhouseLog.error({ err: e }, "final flush failed"));
    await this.sink?.close();
    await this.live?.close();
  }

  /** What another job of this run (the serial job) writes through: the same ClickHouse sink and live server. */
  serialTargets(): { sink: ClickHouseSink | null; live: LiveServer | null } {
    return { sink: this.sink, live: this.live };
  }

  /**
   * Where rows encoded elsewhere (ingest workers' RowBinary) go: the run's sink, counted in the
   * same metrics as the rows of `record` (rows written, sink latency, write errors), and waited
   * for by `flush`. Null without ClickHouse.
   */
  encodedRows(): EncodedRowsSink | null {
    const sink = this.sink;
    if (sink === null) return null;
    return {
      options: sink.options,
      room: (rows) => sink.room(rows),
      metrics: () => sink.metrics(),
      sendOpen: () => sink.sendOpen(),
      flush: () => sink.flush(),
      get rowsPending(): number {
        return sink.rowsPending;
      },
      insertEncoded: (table, rows, rejected, sendNow) => {
        const t0 = performance.now();
        const done = sink.insertEncoded(table, rows, rejected, sendNow).then(() => {
          this.metrics.sinkRows.labels({ sink: "clickhouse" }).inc(isNativeBlock(rows) ? rows.rows : rows.rowStarts.length - 1);
          this.metrics.sinkLatency.labels({ sink: "clickhouse" }).observe((performance.now() - t0) / 1000);
        });
        this.track(done);
        return done;
      },
    };
  }

  /** Serves the quarantine list and its release (`/api/quarantine…`) and the lines' status (`/api/serial/lines`) from the serial job. */
  serveSerial(provider: QuarantineProvider, lines: () => readonly object[]): void {
    this.apiProviders.quarantine = provider;
    this.apiProviders.serialLines = { lines };
  }

  /** The quality job's predictions and joined outcomes: rows of ml_quality_predictions and ml_quality_outcomes. */
  qualityRows(predictions: readonly QualityPrediction[], outcomes: readonly QualityOutcome[]): void {
    const sink = this.sink;
    if (sink === null) return;
    if (predictions.length > 0)
      this.track(
        sink.write(
          "ml_quality_predictions",
          predictions.map((p) => ({ ...p, predicted_at: p.timestamp })),
        ),
      );
    if (outcomes.length > 0)
      this.track(
        sink.write(
          "ml_quality_outcomes",
          outcomes.map((o) => ({ ...o, completed_at: o.timestamp })),
        ),
      );
  }

  /** Serves the quality job's batches (`/api/ml/quality/batches…`). */
  serveQuality(provider: QualityBatchesProvider): void {
    this.apiProviders.quality = provider;
  }

  /** Where the live server is, its dashboard's address (with the generated token in the fragment), and the token it generated when none was configured. */
  liveAccess(): { url: string; wsUrl: string; dashboardUrl: string; generatedToken: string | undefined } | null {
    const l = this.live;
    return l === null ? null : { url: l.url, wsUrl: l.wsUrl, dashboardUrl: l.dashboardUrl, generatedToken: l.generatedToken };
  }

  // ---- internals ----

  private writeRows(): void {
    if (this.sink === null || this.scores.length === 0) return;
    const t0 = performance.now();
    const scores = this.scores.splice(0);
    const readings = this.readings.splice(0);
    // Audited rows go as RowBinary, the exact doubles (18.16's JSON parser moves a few by an ulp), so audit verify finds them equal.
    const written =
      this.auditHashes === null
        ? this.sink.write("ml_scores", scores)
        : this.sink.insertEncoded("ml_scores", ...scoreRowsBinary(scores, (this.scoreWriter ??= new RowBinaryWriter())));
    const done = Promise.all([this.sink.write("ml_sensor_data", readings), written]).then(() => {
      this.metrics.sinkRows.labels({ sink: "clickhouse" }).inc(scores.length + readings.length);
      this.metrics.sinkLatency.labels({ sink: "clickhouse" }).observe((performance.now() - t0) / 1000);
    });
    this.track(done);
  }

  private track(p: Promise<unknown>): void {
    const settled: Promise<void> = p
      .then(
        () => undefined,
        (e: Error) => {
          this.writeErrors++;
          this.metrics.sinkErrors.labels({ sink: "clickhouse", kind: "fatal" }).inc();
          this.clickhouseLog.error({ err: e }, "write failed");
        },
      )
      .finally(() => this.pendingWrites.delete(settled));
    this.pendingWrites.add(settled);
  }

  private keySeen(machineId: string, key: string): void {
    let keys = this.keysOf.get(machineId);
    if (keys === undefined) this.keysOf.set(machineId, (keys = new Set()));
    if (!keys.has(key)) keys.add(key);
  }

  /** Every machine the run has seen, for the dashboard's plant view: health, open alerts, sensors and keys, the latest prediction. */
  private plant(): PlantMachine[] {
    const open = new Map<string, number>();
    for (const e of this.episodes.open()) {
      const m = e.key.split("/")[0];
      open.set(m, (open.get(m) ?? 0) + 1);
    }
    return [...this.machines].sort().map((m) => {
      const h = this.health(m) as EquipmentHealth;
      const keys = [...(this.keysOf.get(m) ?? [])].sort();
      const p = this.predictions?.latest(m);
      return {
        machine_id: m,
        health_score: h.health_score,
        risk_level: h.risk_level,
        open_alerts: open.get(m) ?? 0,
        sensors: [...new Set(keys.map((k) => k.split("/")[1] ?? k))].sort(),
        keys,
        prediction:
          p === undefined
            ? null
            : {
                failure_probability: p.failure_probability,
                time_to_failure_hours: p.time_to_failure_hours,
                rul_cycles: p.rul_cycles,
                predicted_at: new Date(p.predicted_at_ms).toISOString(),
              },
      };
    });
  }

  private health(machineId: string): EquipmentHealth | null {
    if (!this.machines.has(machineId)) return null;
    const counts: Record<string, number> = { high: 0, medium: 0, low: 0 };
    for (const e of this.episodes.openOf(machineId)) counts[e.severity]++;
    const alertScore = Math.max(0, 100 - counts.high * PENALTY.high - counts.medium * PENALTY.medium - counts.low * PENALTY.low);
    const features: Record<string, number> = {
      open_alerts_high: counts.high,
      open_alerts_medium: counts.medium,
      open_alerts_low: counts.low,
      alert_score: alertScore,
    };
    let score = alertScore;
    const p = this.predictions?.latest(machineId);
    if (p !== undefined) {
      const predicted = healthOfProbability(p.failure_probability);
      score = Math.min(alertScore, predicted);
      Object.assign(features, {
        prediction_score: predicted,
        failure_probability: p.failure_probability,
        rul_cycles: p.rul_cycles,
        time_to_failure_hours: p.time_to_failure_hours,
        predicted_at_ms: p.predicted_at_ms,
      });
    }
    return { machine_id: machineId, health_score: score, risk_level: riskOfScore(score), updated_at: new Date().toISOString(), features };
  }

  /**
   * With ClickHouse: where a drift-triggered retraining reads its units — the failed machines'
   * readings back from ml_sensor_data (after a flush, so every reading written so far is there);
   * `history` says which machines failed and when. Null without ClickHouse.
   */
  sensorHistorySource(history: RetainedUnits): UnitsSource | null {
    const sink = this.sink;
    if (sink === null) return null;
    return {
      name: "ClickHouse ml_sensor_data",
      units: async () => {
        await this.flush();
        const machines = [];
        for (const f of history.failedMachines())
          machines.push({
            ...f,
            readings: await sink.sensorHistory(f.machineId, f.failedAt, DEFAULT_RETAINED_UNITS.stepsMax * CMAPSS_SENSORS.length),
          });
        return unitsFromReadings(machines);
      },
    };
  }

  /** The model registry's entries (when one was added or changed stage): ml_models rows, replacing an entry's earlier row. */
  modelEntries(entries: readonly ModelEntry[]): void {
    // A change seen while closing is written by the next run, which mirrors every entry at its start.
    if (this.sink !== null && !this.closing && entries.length > 0) this.track(this.sink.write("ml_models", entries.map(modelRow)));
  }

  /** New predictions: ml_maintenance_predictions rows, the machine's topic and `analysis/prediction`. */
  private onPredictions(list: readonly MachinePrediction[]): void {
    if (this.live !== null) {
      for (const p of list) {
        this.live.publish(machineTopic(p.machine_id), { kind: "prediction", ...p });
        this.live.publish(analysisTopic(ANALYSIS_PREDICTION), p);
      }
    }
    if (this.sink !== null && list.length > 0) {
      const rows = list.map(
        (p): MaintenancePredictionRow => ({
          machine_id: p.machine_id,
          predicted_at: p.predicted_at_ms,
          failure_probability: p.failure_probability,
          time_to_failure_hours: p.time_to_failure_hours,
          rul_cycles: p.rul_cycles,
          risk_level: p.risk_level,
          model_version: p.model_version,
          features: p.features,
        }),
      );
      this.track(this.sink.write("ml_maintenance_predictions", rows));
    }
  }

  private writeHealth(): void {
    if (this.sink === null || this.machines.size === 0) return;
    const now = Date.now();
    const rows: EquipmentHealthRow[] = [];
    for (const m of this.machines) {
      const h = this.health(m);
      if (h !== null) rows.push({ machine_id: m, computed_at: now, health_score: h.health_score, risk_level: h.risk_level });
    }
    this.track(this.sink.write("ml_equipment_health", rows));
  }

  private providers(): ApiProviders {
    const change = (key: string, c: SpcLimitsChange): Promise<boolean> => {
      if (this.limitsControl === null) throw new ConfigError("spc", "this run has no SPC analysis");
      return this.limitsControl(key, c);
    };
    const service = this.predictions;
    return {
      health: { health: (machineId: string) => this.health(machineId) },
      models:
        this.drift === null
          ? undefined
          : {
              list: () => (this.drift as ModelDriftWatch).list(),
              drift: (id: string) => (this.drift as ModelDriftWatch).drift(id),
              events: () => this.retrainer?.events() ?? [],
            },
      predictions:
        service === null
          ? undefined
          : {
              predictions: (q) => service.predictions(q),
              predict: async (machineId: string) => {
                // A machine the run knows but whose sensors the model does not read: nothing to predict from.
                if (!service.knows(machineId) && this.machines.has(machineId)) {
                  const missing = service.missing(machineId);
                  throw new ApiReplyError(
                    409,
                    "features_incomplete",
                    `machine ${machineId} reports none of the sensors the model reads (${service.sensors.join(", ")})`,
                    { machine_id: machineId, missing_features: missing },
                  );
                }
                return service.predictNow(machineId);
              },
            },
      alerts: {
        openAlerts: () => this.episodes.open(),
        episodes: (q) => this.episodes.query(q),
        acknowledge: (id, ack) => this.acknowledge(id, ack),
      },
      plant: { machines: () => this.plant() },
      history: { frame: (machineId: string) => this.historyFrame(machineId) },
      spcLimits: {
        limits: (key: string) => this.limitsByKey.get(key) ?? null,
        rebaseline: async (key: string, records?: number) => {
          const n = records ?? 100;
          if (!(await change(key, { kind: "rebaseline", records: n }))) return null;
          this.spcLog.info({ key, rebaseline_records: n, by: "api" }, "limits re-baselining on the next records");
          return { key, rebaseline_records: n, current: this.limitsByKey.get(key) ?? null };
        },
        setLimits: async (key: string, l: { cl: number; sigma: number }) => {
          if (!(await change(key, { kind: "set", cl: l.cl, sigma: l.sigma }))) return null;
          this.spcLog.info({ key, cl: l.cl, sigma: l.sigma, by: "api" }, "limits set");
          return { key, cl: l.cl, sigma: l.sigma, effective: "next record" };
        },
      },
      status: () => ({
        clickhouse: this.sink === null ? null : { available: this.sink.metrics().available, write_errors: this.writeErrors },
        predictions: service === null ? null : { model_version: service.model.modelVersion, ...service.counters() },
      }),
    };
  }
}

function alreadyAcknowledged(e: AlertEpisodeEvent): ApiReplyError {
  return new ApiReplyError(409, "already_acknowledged", `alert episode ${e.episode_id} was acknowledged already`, {
    episode_id: e.episode_id,
    acknowledged_at: e.acknowledged_at,
    acknowledged_by: e.acknowledged_by,
  });
}

/** A scored record's ml_sensor_data row. */
export function sensorDataRow(r: ScoredRecord): SensorDataRow {
  return {
    machine_id: r.machineId,
    sensor_type: r.sensorType,
    timestamp: r.time,
    sensor_value: r.value,
    sensor_unit: r.unit,
    operating_mode: r.mode,
    work_order_id: r.workOrder,
    seq: r.seq,
  };
}

/**
 * A scored record's ml_scores row from its members (recordFields, or its members' JSON parsed).
 * The RowBinary column encoder (connectors/clickhouse encodeScoreColumns) writes the same rows
 * from a batch's columns, with exact statistics; test/clickhouse-row-binary.test.ts holds both to it.
 */
export function scoreRow(r: ScoredRecord, m: Record<string, unknown>): ScoreRow {
  const num = (v: unknown) => (typeof v === "number" ? v : null);
  const mask = (v: unknown) => (Array.isArray(v) ? v.reduce((a: number, k: number) => a | (1 << (k - 1)), 0) : 0);
  return {
    machine_id: r.machineId,
    sensor_type: r.sensorType,
    timestamp: r.time,
    seq: r.seq,
    value: r.value,
    count: num(m.count),
    mean: num(m.mean),
    std: num(m.std),
    std_pop: num(m.std_pop),
    min: num(m.min),
    max: num(m.max),
    slope: num(m.slope),
    ewma: num(m.ewma),
    z: num(m.z),
    cl: num(m.cl),
    ucl: num(m.ucl),
    lcl: num(m.lcl),
    sigma: num(m.sigma),
    zone: num(m.zone),
    we_mask: mask(m.we),
    nelson_mask: mask(m.nelson),
    mr_mask: mrMask(m.mr),
    cusum_pos: num(m.cusum_pos),
    cusum_neg: num(m.cusum_neg),
    cusum_alarm: m.cusum_alarm === true,
    spc_ewma: num(m.spc_ewma ?? (m.ewma_ucl !== undefined && m.count === undefined ? m.ewma : undefined)),
    ewma_ucl: num(m.ewma_ucl),
    ewma_lcl: num(m.ewma_lcl),
    ewma_alarm: m.ewma_alarm === true,
    limits_version: typeof m.limits_version === "number" ? m.limits_version : 0,
    iforest_score: num(m.iforest_score),
    model_hash: typeof m.model_hash === "string" ? m.model_hash : "",
  };
}

/** The moving-range rules' bits by name (the members' `mr`: ["JUMP", "STUCK"], operators/spc/spc.ts). */
const MR_BIT = new Map(MR_RULES.map((r) => [r.name, r.bit]));

/**
 * mr_mask of the members' `mr` names; 0 without them (no limits yet, or a line written before the
 * rules). A name that is no rule sets bit 7: the table refuses the row (bits outside 0x7), which
 * dead-letters it with the reason, rather than drop the name.
 */
function mrMask(names: unknown): number {
  return Array.isArray(names) ? names.reduce((bits: number, name: unknown) => bits | (MR_BIT.get(String(name)) ?? 0x80), 0) : 0;
}

/** The live server on `live.port`, or — with `portFallback`, when that port is taken — on a free one. */
async function startLive(
  live: NonNullable<OutputsOptions["live"]>,
  metrics: MetricsRegistry,
  providers: ApiProviders,
  log: Logger,
): Promise<LiveServer> {
  const options = {
    host: live.host,
    metrics,
    log,
    tokens: live.tokensFile === undefined ? [] : readTokens(live.tokensFile),
    providers,
    announced: live.announce !== undefined,
  };
  let server: LiveServer;
  let taken = false;
  try {
    server = await startLiveServer({ ...options, port: live.port });
  } catch (error) {
    if (!(live.portFallback === true && live.port !== 0 && error instanceof ServerListenError)) throw error;
    server = await startLiveServer({ ...options, port: 0 });
    taken = true;
  }
  live.announce?.(server.dashboardUrl);
  if (live.announce !== undefined) server.logStart();
  const port = server.port;
  if (taken)
    log.warn({ component: "live", port_wanted: live.port, port }, `port ${live.port} is taken; the live server listens on ${port}`);
  return server;
}

/** Access tokens from a file: {"tokens": [...]} (checked by the live server, connectors/access.ts). */
function readTokens(path: string): AccessTokenConfig[] {
  let parsed: { tokens?: unknown };
  try {
    parsed = JSON.parse(readFileSync(path, "utf8")) as { tokens?: unknown };
  } catch (cause) {
    throw new ConfigError("--tokens", `cannot read ${path}: ${(cause as Error).message}`);
  }
  if (!Array.isArray(parsed.tokens)) throw new ConfigError("--tokens", `${path}: expected {"tokens": [...]}`);
  return parsed.tokens as AccessTokenConfig[];
}

/** The prediction model as the drift watch takes it. */
function watchedPredictionModel(m: PredictionService["model"]): WatchedModel {
  return {
    kind: "rul",
    version: m.modelVersion,
    featureNames: m.featureNames,
    reference: m.referenceHistograms ?? null,
    unavailable: m.referenceHistograms ? null : (m.driftUnavailable ?? `${m.modelVersion} has no reference histograms`),
    rulCap: m.rulCap,
  };
}

/** Score rows as RowBinary, and those the table refuses (for the dead-letter output) apart. */
function scoreRowsBinary(rows: readonly ScoreRow[], writer: RowBinaryWriter): [EncodedRows, RejectedRow[]] {
  writer.reset();
  const rejected: RejectedRow[] = [];
  rows.forEach((row, index) => {
    try {
      encodeRowBinary("ml_scores", row, writer);
    } catch (error) {
      if (!(error instanceof EncodeError)) throw error;
      rejected.push({ index, line: JSON.stringify(row), error });
    }
  });
  return [writer.finish(), rejected];
}
