/**
 * The quality part of `linewatch run` and `demo` (issue 16, point 3): with `--quality-model`, the
 * quality job (engine/jobs/quality-job.ts) beside the sensor job — fed by the batch simulator
 * (with the plant simulator) or by NATS `lw.<site>.process.>` / `lw.<site>.quality.>` (`run
 * --nats`: core NATS; with `--stream`, and in `demo`: a JetStream stream, checkpointed and
 * replayed at restart, engine/jobs/quality-jetstream.ts) — its episodes through the run's alert
 * router, its batches on the API (`/api/ml/quality/batches…`) and its predictions and outcomes in
 * ClickHouse when the run has it.
 */
import type { Writable } from "node:stream";
import type { Command } from "commander";
import { connectNats } from "../../connectors/nats/mod.js";
import type { QualityBatchesProvider } from "../../connectors/live/mod.js";
import type { ModelEntry } from "../../connectors/registry/mod.js";
import { QualityModel } from "../../operators/quality/mod.js";
import type { AlertEpisodeEvent } from "../../operators/spc/mod.js";
import { parseDuration, type Logger } from "../core/mod.js";
import {
  consumeQualityJetStream,
  consumeQualityNats,
  DEFAULT_QUALITY_JETSTREAM,
  DEFAULT_QUALITY_JOB,
  followRegistry,
  QualityJob,
  type QualityOutcomeRow,
  type QualityJetStreamResult,
  type QualityPredictionRow,
  type QualitySourceResult,
  type RegistryFollowSpec,
  runQualitySimulation,
} from "../jobs/mod.js";
import { durationOption, integerOption } from "./options.js";
import { BUILTIN_QUALITY_MODEL, builtinQualityModelPath } from "./builtin-quality.js";
import type { SimulatorPartSource } from "./serial-run.js";

const note = (line: string) => process.stderr.write(`${line}\n`);

/** `builtin` on the built-in simulator at a paced speed when no --quality-model was given (not with --nats or --cmapss: not the simulator's plant). */
export function resolveQualityModel(flags: RunQualityFlags, o: { speed: number; nats: boolean; cmapss: boolean }): void {
  if (flags.qualityModel === undefined && !o.nats && !o.cmapss && Number.isFinite(o.speed)) flags.qualityModel = BUILTIN_QUALITY_MODEL;
}

export interface RunQualityFlags {
  /** A file, `builtin`, `registry`, or false (`--no-quality-model`). */
  qualityModel?: string | false;
  /** Not a flag: `--quality-model registry`'s production quality model, read at start, and how to follow the alias from then on. */
  qualityRegistry?: { bytes: Uint8Array; source: string; follow: RegistryFollowSpec };
  qualityInterval: string;
  qualityBatchesMax: number;
  qualityLines: number;
}

export function addRunQualityFlags(command: Command): Command {
  return command
    .option(
      "--quality-model <model.onnx>",
      "quality predictions per running batch from this model (linewatch quality train): scored at --quality-interval, episodes at the yield/defect thresholds, GET /api/ml/quality/batches/. `builtin`: a model trained on the batch simulator on first start and cached (the default on the simulator at a paced --speed); `registry`: the registry's production quality model, followed while running (a promoted one makes each running batch's next prediction)",
    )
    .option("--no-quality-model", "no quality job")
    .option(
      "--quality-interval <D>",
      "with --quality-model: event time between two predictions of a running batch (0: every reading)",
      durationOption,
      "5m",
    )
    .option(
      "--quality-batches-max <n>",
      "with --quality-model: running batches kept at once (past it the batch with the oldest reading is evicted, counted)",
      integerOption("--quality-batches-max", 1, 1_000_000),
      DEFAULT_QUALITY_JOB.openBatchesMax,
    )
    .option("--quality-lines <n>", "batch simulator: packaging lines (L-001 …)", integerOption("--quality-lines", 1, 999), 4);
}

/** What the quality job writes through: the run's outputs (engine/jobs/outputs.ts). */
export interface QualityOutputHost {
  serveQuality(provider: QualityBatchesProvider): void;
  qualityRows?(predictions: readonly QualityPredictionRow[], outcomes: readonly QualityOutcomeRow[]): void;
  /** Waits until the rows handed over so far are durable (a JetStream ack waits for it). */
  flush?(): Promise<void>;
}

/** NATS: core (no `stream`) or the JetStream stream of the run's --stream (and its checkpoint interval). */
export interface QualityNatsSource {
  kind: "nats";
  url: string;
  site: string;
  flushIntervalMs: number;
  stream?: string;
  checkpointIntervalMs?: number;
}

export interface QualityPartOptions {
  flags: RunQualityFlags;
  host: QualityOutputHost;
  /** The run's alert router (console, API, ml_alerts, NATS). */
  route: (e: AlertEpisodeEvent) => void;
  source: SimulatorPartSource | QualityNatsSource;
  stop: Promise<void>;
  log: Logger;
  onReady?: () => void;
  console?: Writable;
  /** Where the built-in model's lines go (default: stderr as they are, prefixed `linewatch run:`). */
  note?: (line: string) => void;
}

export interface QualityPartResult extends QualitySourceResult {
  predictions: number;
  outcomes: number;
  evicted: number;
  episodesOpened: number;
  episodesClosed: number;
  /** Mean |predicted − actual yield| of the completed batches at their end, and at about half of their readings. */
  yieldMaeFinal: number | null;
  yieldMaeHalfway: number | null;
  modelVersion: string;
  batchesScored: number;
  /** JetStream: its stream, the records replayed at start, checkpoints. */
  jetstream?: Pick<QualityJetStreamResult, "stream" | "replayed" | "checkpoints" | "redeliveriesSkipped" | "restored" | "otherSubjects">;
}

/** Loads the model and runs the quality job until `stop` (or the simulator's end). */
export async function runQualityPart(o: QualityPartOptions): Promise<QualityPartResult> {
  const { flags } = o;
  const model = await loadQualityModel(flags, o.note ?? note);
  const job = new QualityJob({
    ...DEFAULT_QUALITY_JOB,
    model,
    intervalMs: parseDuration(flags.qualityInterval),
    openBatchesMax: flags.qualityBatchesMax,
    onEpisode: o.route,
    onPrediction: o.host.qualityRows === undefined ? undefined : (p) => o.host.qualityRows?.([p], []),
    onOutcome: o.host.qualityRows === undefined ? undefined : (q) => o.host.qualityRows?.([], [q]),
  });
  o.host.serveQuality({ batches: (q) => job.batches(q), batch: (id) => job.batch(id) });
  const log = o.log.child({ component: "quality" });
  log.info({ model: model.modelVersion, source: o.source.kind }, "quality job started");
  const follow = flags.qualityRegistry?.follow;
  const stopFollowing = follow === undefined ? () => {} : followRegistry(follow, "quality", o.log, swapInto(job, log));
  let result: QualitySourceResult & Pick<QualityPartResult, "jetstream">;
  try {
    result = o.source.kind === "simulator" ? await simulate(job, o) : await consumeNats(job, o, o.source, log);
  } finally {
    stopFollowing();
    await job.close();
  }
  const c = job.countsNow();
  return { ...result, ...c, ...accuracyOf(job), modelVersion: job.modelInUse.modelVersion };
}

/**
 * The registry follower's install: loads the promoted model and makes it the job's from the next
 * prediction on (QualityJob.swapModel: a running batch's next prediction, not its next batch — a
 * batch runs for hours and the plant promoted the model to use it now). A file that is not a
 * quality model is refused (ModelLoadError; the current model stays, logged by the follower).
 */
export function swapInto(job: QualityJob, log: Logger): (entry: ModelEntry, bytes: Uint8Array) => Promise<void> {
  return async (entry, bytes) => {
    const next = await QualityModel.fromBytes(bytes, `registry quality model ${entry.short_id}`);
    const running = job.countsNow().running;
    const old = await job.swapModel(next);
    log.info(
      { from: old.modelVersion, to: next.modelVersion, registry_entry: entry.short_id, running_batches: running },
      "quality model switched: every prediction from now on is the new model's, running batches included (model_version on each row)",
    );
  };
}

function simulate(job: QualityJob, o: QualityPartOptions): Promise<QualitySourceResult> {
  const source = o.source as SimulatorPartSource;
  return runQualitySimulation(job, {
    simulator: {
      seed: source.seed,
      lines: o.flags.qualityLines,
      batches: 1_000_000,
      ...(source.startTime === undefined ? {} : { startTime: source.startTime }),
    },
    speed: source.speed,
    endTime: source.durationMs === undefined ? undefined : (source.startTime ?? DEFAULT_BATCH_START) + source.durationMs,
    flushIntervalMs: source.flushIntervalMs,
    stop: o.stop,
  });
}

/** Core NATS subscriptions, or the JetStream stream's durable consumer (`source.stream`). */
async function consumeNats(
  job: QualityJob,
  o: QualityPartOptions,
  source: QualityNatsSource,
  log: Logger,
): Promise<QualitySourceResult & Pick<QualityPartResult, "jetstream">> {
  const nc = await connectNats({ servers: source.url, name: `linewatch-${source.site}-quality`, ...NATS_RECONNECT });
  const subjects = [`lw.${source.site}.process.>`, `lw.${source.site}.quality.>`];
  const onReady = () => {
    if (source.stream === undefined) log.info({ subjects }, "consuming process and quality records");
    o.onReady?.();
  };
  try {
    if (source.stream === undefined)
      return await consumeQualityNats(nc, job, { site: source.site, flushIntervalMs: source.flushIntervalMs, stop: o.stop, onReady });
    const r = await consumeQualityJetStream(nc, job, {
      ...DEFAULT_QUALITY_JETSTREAM,
      ...(source.checkpointIntervalMs === undefined ? {} : { checkpointIntervalMs: source.checkpointIntervalMs }),
      site: source.site,
      stream: source.stream,
      commit: async () => o.host.flush?.(),
      stop: o.stop,
      onReady,
      log: o.log,
    });
    const { stream, replayed, checkpoints, redeliveriesSkipped, restored, otherSubjects } = r;
    return { ...r, jetstream: { stream, replayed, checkpoints, redeliveriesSkipped, restored, otherSubjects } };
  } finally {
    await nc.drain().catch(() => undefined);
  }
}

/** A JetStream consumer rides out a server restart (the serial part's setting). */
const NATS_RECONNECT = { maxReconnectAttempts: -1, reconnectTimeWait: 250 } as const;

/** The model of --quality-model: the registry's bytes read at start, the built-in one, or a file. */
async function loadQualityModel(flags: RunQualityFlags, note: (line: string) => void): Promise<QualityModel> {
  if (flags.qualityRegistry !== undefined) return QualityModel.fromBytes(flags.qualityRegistry.bytes, flags.qualityRegistry.source);
  const file = flags.qualityModel === BUILTIN_QUALITY_MODEL ? await builtinQualityModelPath(note) : (flags.qualityModel as string);
  return QualityModel.load(file);
}

/** The batch simulator's default start (connectors/sim DEFAULT_BATCH_SIMULATOR_OPTIONS.startTime). */
const DEFAULT_BATCH_START = Date.UTC(2026, 0, 5, 6);

/** Yield MAE of the completed batches: final predictions, and the prediction nearest half of the batch's readings. */
function accuracyOf(job: QualityJob): { yieldMaeFinal: number | null; yieldMaeHalfway: number | null } {
  let final = 0;
  let half = 0;
  let n = 0;
  for (const b of job.batches({ status: "completed" })) {
    const v = job.batch(b.batch_id);
    if (v === null || v.outcome === null || v.latest === null || v.history.length === 0) continue;
    const actual = v.outcome.first_pass_yield;
    const mid = v.history.reduce((best, p) => (Math.abs(p.progress - 0.5) < Math.abs(best.progress - 0.5) ? p : best));
    final += Math.abs(v.latest.predicted_yield - actual);
    half += Math.abs(mid.predicted_yield - actual);
    n++;
  }
  return n === 0 ? { yieldMaeFinal: null, yieldMaeHalfway: null } : { yieldMaeFinal: final / n, yieldMaeHalfway: half / n };
}

/** The closing line of the quality part (`prefix`: "linewatch run", "linewatch demo"). */
export function reportQuality(r: QualityPartResult, out: Writable, prefix = "linewatch run"): void {
  const mae = (x: number | null) => (x === null ? "n/a" : x.toFixed(4));
  const js = r.jetstream;
  const replay =
    js === undefined
      ? ""
      : `; stream ${js.stream}: ${js.replayed} records replayed at start${js.restored === null ? " (no checkpoint)" : ` (checkpoint at sequence ${js.restored.top})`}, ${js.checkpoints} checkpoints` +
        `${js.otherSubjects > 0 ? `, ${js.otherSubjects} messages of other subjects skipped` : ""}`;
  out.write(
    `${prefix}: quality (model ${r.modelVersion}): ${r.processRecords} process readings, ${r.qualityRecords} outcomes, ${r.batchesScored} batches scored, ${r.predictions} predictions, ` +
      `${r.episodesOpened} episodes opened (${r.episodesClosed} closed), ${r.evicted} batches evicted, ${r.deadLettered} dead-lettered; ` +
      `yield MAE of completed batches ${mae(r.yieldMaeFinal)} at the end, ${mae(r.yieldMaeHalfway)} at 50 % progress${replay}\n`,
  );
}
