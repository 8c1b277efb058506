/**
 * The whole-path benchmark behind `npm run bench -- e2e` (and `npm run bench:e2e`): plant simulator
 * → core NATS → linewatch (rolling W = 64 + SPC + isolation forest) → ClickHouse and a real
 * WebSocket subscriber, over a sweep of batch size × workers, on a throw-away nats-server and
 * clickhouse-server (test kit). linewatch runs as `--engine` says (engine-under-test.ts): ingest
 * workers owning partitions (the default; "workers" are ingest workers, the server maps the
 * site's subjects into partitions), the same with a kernel thread per worker, or the sensor job
 * with kernels on the pool.
 *
 * For each setting, side by side in one run:
 *   1. raw nats.js: the same publisher and messages, a subscriber that only counts (the ceiling);
 *      its thread's CPU per record over the measured window;
 *   1b. the naive consumer (bench/naive-consumer.ts: nats.js + @msgpack/msgpack + a Map of ring
 *      buffers, one JSON score published per record, a process of its own), measured as the engine
 *      is below: credit pacing on its scores arriving at a subscriber thread, the sustained maximum
 *      over the last two thirds of the phase, then publish → score arrival at half of its own
 *      maximum, open loop; its process's CPU per record;
 *   2. sustained maximum of the engine: the publisher is paced by credit (at most `inFlight`
 *      records published and not yet scored) and only records the engine scored are counted —
 *      core NATS sheds what its queue cannot hold, and the shed count is reported;
 *      With ClickHouse the phase ends when its rows are durable (`Outputs.flush`): the rate from
 *      its start to then is the durable rate, and the lower of the two is the sustained maximum;
 *   3. latency at half of that sustained maximum, published open loop: for each record, WebSocket arrival
 *      minus publish time. A record's index rides in its timestamp (T0 + index ms, increasing per
 *      key); the publisher thread writes each index's publish time into shared memory, the
 *      engine's thread the time it scored it (the ingest path: the main thread, as it hands the
 *      reading's score frame to the live server), and the subscriber thread (parsing off the
 *      engine's thread) the arrival — one clock (`timeOrigin + now()`) in all three. Split at
 *      "scored", the two stages show where the time goes.
 * After each setting the job stops, `Outputs` closes (flushing ClickHouse) and `count() FINAL` of
 * the setting's `ml_scores` table must equal the records the engine scored; anything else is a
 * real loss and the only failing outcome (with a failed run). The main thread's CPU per record
 * scored (it runs the job's main thread: NATS, decoding, batching, outputs) and its event-loop
 * utilisation are taken over the maximum phase's measured window. Targets — without ClickHouse
 * ≥ 50 % of raw nats.js and ≥ 2× the naive consumer for single records, p99 ≤ 20 ms at half load
 * (≤ half the naive consumer's p99 where that is above 40 ms); with ClickHouse ≥ 35 % of raw and
 * p99 ≤ 50 ms — are informational.
 *
 * After the sweep, other sources and formats on the first batch size, engine alone (no ClickHouse or
 * WebSocket), in readings/s: raw nats.js and the engine under credit with columnar frames of one
 * machine's readings, a row per worker count of the sweep (target ≥ 10 M readings/s on the best,
 * the issue's table), and JetStream on the first setting: the stream is loaded once (its
 * subjects partitioned by the server's mapping, as the core ones), then read whole and timed by
 * raw nats.js (one pull consumer, one ack per fetch), the ingest workers and the sensor job
 * (pool) in turn, each with its process CPU per reading and acks per reading. `--no-formats`
 * leaves them out.
 *
 * The isolation forest (features value, mean, std, z of the rolling window) is trained before
 * anything is timed, on readings of the simulator with another seed.
 *
 * Non-goals: tuning the engine's own defaults (the job gets DEFAULT_NATS_JOB but for the batch
 * size and workers of the setting).
 */
import { type ChildProcess, fork } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { constants as perfConstants, type PerformanceEntry, PerformanceObserver } from "node:perf_hooks";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { AckPolicy, connect, type JsMsg, type NatsConnection } from "nats";
import { METRIC, machineTopic } from "../connectors/live/mod.js";
import { parseRunAnalysisSettings, runAnalyses, runAnalysisSpecs } from "../engine/cli/mod.js";
import { PlantSimulator } from "../connectors/sim/mod.js";
import { ConfigError, type LogEntry, memoryLogger } from "../engine/core/mod.js";
import { DEFAULT_INGEST_JOB, DEFAULT_NATS_JOB, Outputs } from "../engine/jobs/mod.js";
import type { RecordAnalysis } from "../operators/mod.js";
import { iforestAnalysis, treeCount, type IsolationForestModel } from "../operators/iforest/mod.js";
import { trainIsolationForest } from "../operators/iforest/training/train.js";
import { rollingAnalysis } from "../operators/rolling/mod.js";
import { spcAnalysis, DEFAULT_SPC_PARAMS } from "../operators/spc/mod.js";
import { startClickHouseServer, type ClickHouseServer, serverAvailable, startNatsServer } from "../connectors/local/mod.js";
import {
  BENCH_PARTITIONS,
  benchSpecs,
  type EngineFigures,
  type EngineSetting,
  type EnginePath,
  isIngestPath,
  partitionMappings,
  type RunningEngine,
  startEngine,
} from "./engine-under-test.js";
import {
  benchMachine,
  clock,
  machineLine,
  processCpuSeconds,
  sleep,
  threadCpuMicros,
  threadCpuMicrosOf,
  threadCpuSecondsByName,
  type BenchMachine,
} from "./bench-kit.js";
import {
  C_PUBLISHED,
  C_RAW_READY,
  C_READY,
  C_RECEIVED,
  C_SCORED,
  C_SLOTS,
  C_STOP,
  C_WINDOW,
  NAIVE_SUB_ROLE,
  PUB_ROLE,
  RAW_ROLE,
  SUB_ROLE,
  T0,
  type NaiveSubData,
  type PubData,
  type RawData,
  type RawWindow,
  type SubData,
  type WireFormat,
} from "./pipeline-threads.js";

export interface PipelineBenchOptions {
  seed?: number;
  /** Records per kernel task to sweep (default 1024, 4096, 16384; smoke 1024). */
  batches?: readonly number[];
  /** Worker counts to sweep (default 1, 2; smoke 1). */
  workers?: readonly number[];
  /** False: no clickhouse-server even when installed (the live path alone). */
  clickhouse?: boolean;
  /** Records published and not yet scored, in the paced phases (default 65 536). */
  inFlight?: number;
  /** Simulated machines, 6 sensors each (default 8). */
  machines?: number;
  /** Phase lengths, ms (defaults 4 000 raw, 12 000 max, 12 000 latency; smoke 1 500, 3 000, 3 000). */
  rawMs?: number;
  maxMs?: number;
  latencyMs?: number;
  /** False: no frames and JetStream rows after the sweep. */
  formats?: boolean;
  /** False: no batch × workers sweep, only the formats rows (on the first batch and worker count). */
  sweep?: boolean;
  /** Readings per frame in the frames rows (default 4096; smoke 500). */
  frameReadings?: number;
  /** Readings loaded into the JetStream stream (default 300 000; smoke 20 000). */
  jetstreamReadings?: number;
  smoke?: boolean;
  progress?: ((line: string) => void) | null;
  /** Which linewatch path runs (engine-under-test.ts); default ingest. */
  engine?: EnginePath;
}

/** One row of the sources-and-formats part: readings/s the consumer (raw or engine) took. */
export interface FormatRow {
  label: string;
  source: "raw nats.js" | "core NATS" | "JetStream";
  format: WireFormat;
  /** The engine's frames rows: its ingest workers (one row per worker count of the sweep). */
  workers?: number;
  /** The engine's frames rows: SPC as `linewatch run` sets it (the goal's), or the textbook chart. */
  spc?: FramesSpc;
  readingsPerSecond: number;
  /** Readings the engine scored in the row (raw nats.js: 0, its subscriber only counts). */
  processed: number;
  shed: number;
  /** JetStream rows: who consumed (raw nats.js, or linewatch's path), process CPU per reading, acknowledgements per reading. */
  consumer?: "raw" | EnginePath;
  ack?: "all" | "explicit";
  processCpuUsPerReading?: number;
  acksPerReading?: number;
  /** CPU µs per reading over the measured window (NaN: not measured). */
  cpuUsPerReading?: ReadingCpu;
  notes: string[];
}

/**
 * Where a reading's CPU goes on the machine, µs per reading over a frames row's measured window:
 * the threads that read it (ingest workers / the raw subscriber), the job's main thread (raw: NaN,
 * it is part of `rest`), nats-server, and the rest of the bench's process (the publisher thread,
 * V8's garbage-collection threads, the bench's own main thread).
 */
export interface ReadingCpu {
  readers: number;
  main: number;
  natsServer: number;
  rest: number;
}

/** Percentiles of one latency distribution, ms (NaN when nothing was measured). */
export interface Percentiles {
  samples: number;
  p50: number;
  p99: number;
  max: number;
}

/** The naive consumer (bench/naive-consumer.ts) in one setting, measured as the engine is. */
export interface NaiveFigures {
  /** Its sustained maximum: scores/s that arrived from it under the same credit pacing (last two thirds of the phase). */
  perSecond: number;
  /** The open-loop rate of its latency phase: half of perSecond. */
  halfPerSecond: number;
  /** Publish → arrival of its JSON score at a NATS subscriber thread at half load, after the warm-up. */
  latency: Percentiles;
  /** Records of the latency window whose score never arrived. */
  lost: number;
  /** Scores it published in the setting, by its own count. */
  published: number;
  notes: string[];
}

/** CPU time per record, µs, each over its own phase's measured window (the last two thirds). */
export interface CpuPerRecord {
  /** linewatch: the bench's main thread, which runs the job's main thread, ÷ records scored in the window. */
  engineMainThread: number;
  /** linewatch: its ingest worker threads together (/proc/self/task/<tid>/schedstat) ÷ records scored in the window; NaN on the pool path. */
  engineWorkerThreads: number;
  /** Raw nats.js: its subscriber thread ÷ records it counted. */
  rawSubscriberThread: number;
  /** The naive consumer: its whole process (process.cpuUsage, user + system) ÷ scores it published. */
  naiveProcess: number;
}

export interface PipelineSetting {
  batch: number;
  workers: number;
  /** Raw nats.js: records/s a counting subscriber received, same publisher and messages. */
  rawPerSecond: number;
  naive: NaiveFigures;
  /** maxPerSecond / naive.perSecond. */
  ratioVsNaive: number;
  cpuUsPerRecord: CpuPerRecord;
  /** Event-loop utilisation (performance.eventLoopUtilization, 0..1) of the main thread over the maximum phase's window. */
  engineEventLoop: number;
  /** The engine's sustained maximum: records/s scored under credit pacing. */
  maxPerSecond: number;
  /**
   * Records/s from the start of the maximum phase until every row it scored was durable in
   * ClickHouse (equal to maxPerSecond's basis without ClickHouse): a rate ClickHouse cannot take
   * is not sustained, the sink's bounded queue would push back.
   */
  durablePerSecond: number;
  /** maxPerSecond / rawPerSecond. */
  ratio: number;
  /** The open-loop rate of the latency phase: half of min(maxPerSecond, durablePerSecond). */
  halfPerSecond: number;
  /** Records the engine scored in the setting (all phases), from the job's result. */
  processed: number;
  /** Messages the core source shed (queue full), from the job's result. */
  shed: number;
  deadLettered: number;
  /** ingest (publish) → WebSocket arrival at half load, after a 0.5 s warm-up. */
  latency: Percentiles;
  /** The two stages of it: publish → scored on the engine's thread, scored → WebSocket arrival. */
  toScored: Percentiles;
  scoredToWs: Percentiles;
  /** Records of the latency window never delivered to the subscriber (shed, or sampled by the server). */
  lost: number;
  /**
   * In the latency phase, the core NATS job's consumer loop waiting in `Outputs.handOver` (called
   * whenever its queue runs dry; it hands rows to ClickHouse without waiting for inserts and waits
   * only while the sink's memory queue is half full) or `Outputs.flush`: calls, share of the
   * phase, longest wait.
   */
  flushWait: { calls: number; share: number; maxMs: number };
  /**
   * This (the job's main) thread's garbage collections over the latency phase: mark-compacts and
   * scavenges, their pauses summed and the longest (PerformanceObserver "gc" entries). A pause
   * holds every frame the thread has not handed to the live server yet.
   */
  mainGc: MainGc;
  /** Messages the live server did not send (slow-subscriber sampling), from its metrics. */
  wsDropped: number;
  /** ClickHouse: score rows in `count() FINAL` of the setting's database, rows the sink wrote, sink latency; null without ClickHouse. */
  clickhouse: {
    scoreRows: number;
    sinkRows: number;
    sinkBatches: number;
    sinkMeanMs: number;
    sinkP99Ms: number;
    writeErrors: string[];
    /**
     * clickhouse-server's CPU (all its threads, /proc) from the start of the maximum phase until
     * its rows were durable: seconds per million records scored (each an ml_scores and an
     * ml_sensor_data row) and cores over that time; by thread name (HTTPHandler: the inserts,
     * BackgrProcPool: merges) in the notes. NaN off Linux.
     */
    serverCpuPerMillionRecords: number;
    serverCores: number;
  } | null;
  notes: string[];
}

export interface PipelineBenchReport {
  machine: BenchMachine;
  loadAverageAfter: number;
  seed: number;
  keys: number;
  inFlight: number;
  phasesMs: { raw: number; max: number; latency: number };
  /** Why ClickHouse is not in the path, or null when it is. */
  clickhouseAbsent: string | null;
  /** linewatch's path (engine-under-test.ts) and, on the ingest path, the partitions of the server's mapping. */
  engine: EnginePath;
  partitions: number;
  model: { trees: number; sampleSize: number; rows: number; features: readonly string[]; hash: string; trainSeconds: number };
  settings: PipelineSetting[];
  /** Frames and JetStream on the first setting, engine alone; empty with --no-formats. */
  formats: FormatRow[];
  frameReadings: number;
  seconds: number;
}

export const DEFAULT_PIPELINE_SEED = 20260107;
/** p99 at half load without ClickHouse in the path, ms. */
export const TARGET_P99_MS = 20;
/** Where the naive consumer's own p99 is above this (ms) in the same setting, the goal without ClickHouse is {@link TARGET_P99_OF_NAIVE} of it. */
export const NAIVE_P99_RELATIVE_ABOVE_MS = 40;
export const TARGET_P99_OF_NAIVE = 0.5;
/** p99 at half load with ClickHouse in the path, ms. */
export const TARGET_P99_MS_CLICKHOUSE = 50;
/** Single records, share of raw nats.js: without ClickHouse, and with it. */
export const TARGET_RATIO_VS_RAW = 0.5;
export const TARGET_RATIO_VS_RAW_CLICKHOUSE = 0.35;
/** Single records with ClickHouse: score rows durable in ClickHouse per second (the best setting's durable/s). */
export const TARGET_CLICKHOUSE_ROWS_PER_SECOND = 100_000;
/** Single records, multiple of the naive consumer (without ClickHouse: the naive consumer writes none). */
export const TARGET_RATIO_VS_NAIVE = 2;
export const PIPELINE_BATCHES = [1024, 4096, 16_384] as const;
export const PIPELINE_WORKERS = [1, 2] as const;
export const TARGET_FRAME_READINGS_PER_SECOND = 10e6;

/** Failures that make the run's exit code non-zero: ClickHouse holding other than what was scored, a setting that did not finish. */
export function pipelineFailures(r: PipelineBenchReport): string[] {
  const out: string[] = [];
  for (const s of r.settings) {
    const name = `batch ${s.batch} × ${s.workers} workers`;
    if (s.clickhouse !== null && s.clickhouse.scoreRows !== s.processed) {
      out.push(`${name}: ClickHouse holds ${s.clickhouse.scoreRows} score rows, the engine scored ${s.processed}`);
    }
    if (s.clickhouse !== null && s.clickhouse.writeErrors.length > 0) out.push(`${name}: ${s.clickhouse.writeErrors.join("; ")}`);
    if (!Number.isFinite(s.latency.p99)) out.push(`${name}: no record reached the WebSocket subscriber in the latency phase`);
    if (!Number.isFinite(s.naive.latency.p99))
      out.push(
        `${name}: no score of the naive consumer arrived in its latency phase${s.naive.notes.length > 0 ? ` (${s.naive.notes.join("; ")})` : ""}`,
      );
  }
  for (const f of r.formats)
    if (!(f.source === "raw nats.js" ? f.readingsPerSecond > 0 : f.processed > 0))
      out.push(`${f.label}: nothing processed${f.notes.length > 0 ? ` (${f.notes.join("; ")})` : ""}`);
  return out;
}

/** The best settings: by sustained rate, and by p99 at half load. */
export function bestSettings(r: PipelineBenchReport): { byRate: PipelineSetting | null; byP99: PipelineSetting | null } {
  const by = (f: (s: PipelineSetting) => number): PipelineSetting | null =>
    r.settings.filter((s) => Number.isFinite(f(s))).sort((a, b) => f(a) - f(b))[0] ?? null;
  return { byRate: by((s) => -Math.min(s.maxPerSecond, s.durablePerSecond)), byP99: by((s) => s.latency.p99) };
}

const SITE_PREFIX = "bench";
/** The JetStream rows' site: partitioned by the server's mapping whatever --engine says. */
const JETSTREAM_SITE = `${SITE_PREFIX}js`;
/** The JetStream rows' consumer settings: the sensor job's defaults (DEFAULT_NATS_JOB) for every path. */
const JETSTREAM = {
  fetchMessagesMax: DEFAULT_NATS_JOB.fetchMessagesMax,
  ackWaitMs: DEFAULT_NATS_JOB.ackWaitMs,
  maxDeliver: DEFAULT_NATS_JOB.maxDeliver,
  maxAckPending: DEFAULT_NATS_JOB.maxAckPending,
  checkpointIntervalMs: DEFAULT_NATS_JOB.checkpointIntervalMs,
};
const SENSORS_PER_MACHINE = 6;
const ROLLING_WINDOW = 64;
const IFOREST_FEATURES = ["value", "mean", "std", "z"] as const;
/** Index slots per setting: the max phase's records then the latency phase's (shared memory, 20 bytes each). */
const INDEX_CAPACITY = 4_000_000;
const WARM_UP_MS = 500;
/** The publisher and subscriber threads load this small module, not the engine. */
const THREADS_MODULE = new URL("./pipeline-threads.js", import.meta.url);
/** The naive consumer, run as a process of its own. */
const NAIVE_MODULE = fileURLToPath(new URL("./naive-consumer.js", import.meta.url));

interface Config {
  seed: number;
  batches: number[];
  workers: number[];
  clickhouse: boolean;
  inFlight: number;
  machines: number;
  rawMs: number;
  maxMs: number;
  latencyMs: number;
  smoke: boolean;
  formats: boolean;
  sweep: boolean;
  frameReadings: number;
  jetstreamReadings: number;
  trees: number;
  sampleSize: number;
  trainRows: number;
  engine: EnginePath;
}

function resolveConfig(o: PipelineBenchOptions): Config {
  const smoke = o.smoke === true;
  const c: Config = {
    seed: o.seed ?? DEFAULT_PIPELINE_SEED,
    batches: [...(o.batches ?? (smoke ? [1024] : PIPELINE_BATCHES))],
    workers: [...(o.workers ?? (smoke ? [1] : PIPELINE_WORKERS))],
    clickhouse: o.clickhouse ?? true,
    inFlight: o.inFlight ?? 65_536,
    machines: o.machines ?? 8,
    rawMs: o.rawMs ?? (smoke ? 1500 : 4000),
    maxMs: o.maxMs ?? (smoke ? 3000 : 12_000),
    latencyMs: o.latencyMs ?? (smoke ? 3000 : 12_000),
    smoke,
    formats: o.formats ?? true,
    sweep: o.sweep ?? true,
    frameReadings: o.frameReadings ?? (smoke ? 500 : 4096),
    jetstreamReadings: o.jetstreamReadings ?? (smoke ? 20_000 : 300_000),
    trees: smoke ? 50 : 100,
    sampleSize: 256,
    trainRows: smoke ? 5000 : 20_000,
    engine: o.engine ?? "ingest",
  };
  if (!Number.isSafeInteger(c.seed) || c.seed < 0) throw new ConfigError("seed", `must be a non-negative safe integer, got ${c.seed}`);
  if (c.batches.length === 0 || c.workers.length === 0)
    throw new ConfigError("batches/workers", "name at least one batch size and one worker count");
  for (const b of c.batches) integerIn("batch", b, 1, 1 << 20);
  for (const w of c.workers) integerIn("workers", w, 0, 64);
  // The credit must fit the core source's queue (~150 bytes a record here), or pacing sheds by construction.
  integerIn("inFlight", c.inFlight, 1, Math.floor(DEFAULT_NATS_JOB.queuedBytesMax / 200));
  integerIn("machines", c.machines, 1, 1000);
  integerIn("rawMs", c.rawMs, 300, 600_000);
  integerIn("maxMs", c.maxMs, 300, 600_000);
  integerIn("latencyMs", c.latencyMs, 1000, 600_000);
  integerIn("frameReadings", c.frameReadings, 1, 65_535);
  integerIn("jetstreamReadings", c.jetstreamReadings, 1, INDEX_CAPACITY);
  return c;
}

function integerIn(name: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) throw new ConfigError(name, `must be an integer in ${min}..${max}, got ${v}`);
}

/** Runs the sweep; prints nothing but `progress` lines (ClickHouse absent is said there, loudly). */
export async function runPipelineBench(options: PipelineBenchOptions = {}): Promise<PipelineBenchReport> {
  const started = performance.now();
  const machine = benchMachine();
  const cfg = resolveConfig(options);
  const say = options.progress ?? ((): void => {});
  const clickhouseAbsent = clickhouseAbsence(cfg, say);
  const t0 = performance.now();
  const model = trainModel(cfg);
  const trainSeconds = (performance.now() - t0) / 1000;
  say(
    `iforest: ${treeCount(model)} trees, ψ ${cfg.sampleSize}, trained on ${cfg.trainRows} rows of (${IFOREST_FEATURES.join(", ")}) in ${trainSeconds.toFixed(1)} s (not timed)`,
  );
  const nats = await startNatsServer(natsArgs(cfg));
  let clickhouse: ClickHouseServer | null = null;
  const settings: PipelineSetting[] = [];
  const formats: FormatRow[] = [];
  // Interrupted (Ctrl-C, a test's timeout): stop the throw-away servers rather than leave them running.
  const interrupted = (signal: NodeJS.Signals): void => {
    say(`${signal}: stopping the throw-away servers`);
    void Promise.allSettled([clickhouse?.dispose(), nats.dispose()]).finally(() => process.exit(130));
  };
  process.once("SIGINT", interrupted);
  process.once("SIGTERM", interrupted);
  try {
    if (clickhouseAbsent === null) clickhouse = await startClickHouseServer();
    say(
      `nats-server ${nats.url}${clickhouse === null ? "" : `, clickhouse-server ${clickhouse.url}`}; seed ${cfg.seed}, ${cfg.machines * SENSORS_PER_MACHINE} keys`,
    );
    const nc = await connect({ servers: nats.url, name: "linewatch-pipeline-bench" });
    try {
      if (cfg.sweep) settings.push(...(await runSweep({ cfg, url: nats.url, natsPid: () => nats.pid, nc, clickhouse, model, say })));
      if (cfg.formats) formats.push(...(await runFormats({ cfg, url: nats.url, natsPid: () => nats.pid, nc, clickhouse, model, say })));
    } finally {
      await nc.close().catch(() => undefined);
    }
  } finally {
    process.off("SIGINT", interrupted);
    process.off("SIGTERM", interrupted);
    await clickhouse?.dispose();
    await nats.dispose();
  }
  return {
    machine,
    loadAverageAfter: loadavg()[0],
    seed: cfg.seed,
    keys: cfg.machines * SENSORS_PER_MACHINE,
    inFlight: cfg.inFlight,
    phasesMs: { raw: cfg.rawMs, max: cfg.maxMs, latency: cfg.latencyMs },
    clickhouseAbsent,
    engine: cfg.engine,
    partitions: isIngestPath(cfg.engine) ? BENCH_PARTITIONS : 0,
    model: {
      trees: treeCount(model),
      sampleSize: cfg.sampleSize,
      rows: cfg.trainRows,
      features: IFOREST_FEATURES,
      hash: model.hash,
      trainSeconds,
    },
    settings,
    formats,
    frameReadings: cfg.frameReadings,
    seconds: (performance.now() - started) / 1000,
  };
}

/** Why ClickHouse is not in the path (said loudly when it is not installed), or null. */
function clickhouseAbsence(cfg: Config, say: (line: string) => void): string | null {
  if (!cfg.clickhouse) return "left out (--no-clickhouse)";
  if (serverAvailable("clickhouse-server")) return null;
  say(
    "!!! clickhouse-server is NOT INSTALLED: the benchmark runs WITHOUT ClickHouse in the path; its columns show — (apt-get install -y clickhouse-server) !!!",
  );
  return "clickhouse-server is not installed";
}

/** The ingest path needs the server's partition mapping for each setting's site (and the JetStream rows for theirs); a config file in a temporary folder. */
function natsArgs(cfg: Config): string[] {
  const sites = isIngestPath(cfg.engine)
    ? [...Array.from({ length: cfg.batches.length * cfg.workers.length }, (_, i) => `${SITE_PREFIX}${i + 1}`), `${SITE_PREFIX}frames`]
    : [];
  // The JetStream rows compare the ingest workers with the sensor job whatever --engine says: partitioned always.
  sites.push(JETSTREAM_SITE);
  const conf = join(mkdtempSync(join(tmpdir(), "lw-bench-nats-")), "partitions.conf");
  writeFileSync(conf, partitionMappings(sites));
  return ["-c", conf];
}

/** Every batch size × workers setting, in order. */
async function runSweep(ctx: RunContext): Promise<PipelineSetting[]> {
  const settings: PipelineSetting[] = [];
  let index = 0;
  for (const batch of ctx.cfg.batches) {
    for (const workers of ctx.cfg.workers) {
      ctx.say(`batch ${batch}, ${workers} workers …`);
      const s = await runSetting(ctx, batch, workers, ++index);
      ctx.say(
        `  raw ${Math.round(s.rawPerSecond)} rec/s, naive ${Math.round(s.naive.perSecond)} rec/s (p99 ${ms(s.naive.latency.p99)} ms), ` +
          `engine ${Math.round(s.maxPerSecond)} rec/s (${(s.ratio * 100).toFixed(1)} % of raw, ${s.ratioVsNaive.toFixed(2)}× naive, ` +
          `${cpuUs(s.cpuUsPerRecord.engineMainThread)} µs/rec on the main thread, ${cpuUs(s.cpuUsPerRecord.engineWorkerThreads)} on the workers), ` +
          `p50/p99/max ${ms(s.latency.p50)}/${ms(s.latency.p99)}/${ms(s.latency.max)} ms at ${Math.round(s.halfPerSecond)} rec/s ` +
          `(→scored p99 ${ms(s.toScored.p99)} ms; main thread ${gcWords(s.mainGc)})` +
          (s.notes.length > 0 ? ` — ${s.notes.join("; ")}` : ""),
      );
      settings.push(s);
    }
  }
  return settings;
}

/** "3 mark-compacts (21 ms), 40 scavenges (12 ms), longest 9.1 ms". */
function gcWords(g: MainGc): string {
  return `${g.markCompacts} mark-compacts (${ms(g.markCompactMs)} ms), ${g.scavenges} scavenges (${ms(g.scavengeMs)} ms), longest pause ${ms(g.maxPauseMs)} ms`;
}

// ---- the model ----

/**
 * An isolation forest over (value, mean, std, z) of a count window of {@link ROLLING_WINDOW}, as the
 * rolling analysis computes them (sample std; z of the newest reading), from the simulator with
 * seed + 1 — other readings than the ones scored.
 */
function trainModel(cfg: Config): IsolationForestModel {
  const sim = new PlantSimulator({ seed: cfg.seed + 1, machines: cfg.machines, rateHz: 1000, faultRate: 2 });
  const keys = sim.keys().length;
  const W = ROLLING_WINDOW;
  const ring = new Float64Array(keys * W);
  const seen = new Uint32Array(keys);
  const F = IFOREST_FEATURES.length;
  const values = new Float64Array(cfg.trainRows * F);
  let rows = 0;
  while (rows < cfg.trainRows) {
    const c = sim.nextColumns(4096);
    for (let i = 0; i < c.length && rows < cfg.trainRows; i++) {
      const k = c.keyIndex[i];
      const x = c.values[i];
      ring[k * W + (seen[k] % W)] = x;
      if (++seen[k] < W) continue;
      let sum = 0;
      for (let j = 0; j < W; j++) sum += ring[k * W + j];
      const mean = sum / W;
      let ss = 0;
      for (let j = 0; j < W; j++) ss += (ring[k * W + j] - mean) ** 2;
      const std = Math.sqrt(ss / (W - 1));
      values.set([x, mean, std, std > 0 ? (x - mean) / std : 0], rows * F);
      rows++;
    }
  }
  return trainIsolationForest(
    { values, rows, columns: F, names: IFOREST_FEATURES },
    { trees: cfg.trees, sampleSize: cfg.sampleSize, seed: cfg.seed },
  );
}

// ---- one setting ----

interface RunContext {
  cfg: Config;
  url: string;
  /** The throw-away nats-server's process id (its CPU time is read from /proc). */
  natsPid: () => number | null;
  nc: NatsConnection;
  clickhouse: ClickHouseServer | null;
  model: IsolationForestModel;
  say: (line: string) => void;
}

/** The memory the threads share for one setting. */
interface SharedRun {
  ctrl: Int32Array;
  sendTimes: Float64Array;
  latencies: Float32Array;
  /** Main thread only: when the engine scored each index. */
  scoredAt: Float64Array;
}

function sharedRun(): SharedRun {
  const latencies = new Float32Array(new SharedArrayBuffer(INDEX_CAPACITY * 4));
  latencies.fill(NaN);
  const scoredAt = new Float64Array(INDEX_CAPACITY);
  scoredAt.fill(NaN);
  return {
    ctrl: new Int32Array(new SharedArrayBuffer(C_SLOTS * 4)),
    sendTimes: new Float64Array(new SharedArrayBuffer(INDEX_CAPACITY * 8)),
    latencies,
    scoredAt,
  };
}

async function runSetting(ctx: RunContext, batch: number, workers: number, index: number): Promise<PipelineSetting> {
  const { cfg } = ctx;
  const mem = sharedRun();
  const notes: string[] = [];
  const { perSecond: rawPerSecond, usPerRecord: rawUs } = await measureRaw(ctx, mem, `${SITE_PREFIX}raw${index}`);
  const naive = await measureNaive(ctx, `${SITE_PREFIX}naive${index}`);
  const site = `${SITE_PREFIX}${index}`;
  const database = `lw_bench_${index}`;
  const spillDir = mkdtempSync(join(tmpdir(), "lw-bench-spill-"));
  const { log, entries: logs } = memoryLogger({ level: "info" });
  const outputs = await Outputs.start({
    clickhouse: ctx.clickhouse === null ? undefined : { url: ctx.clickhouse.url, database, spillDir },
    live: { port: 0, host: "127.0.0.1" },
    healthIntervalMs: 60_000,
    log,
  });
  const flushes = timeFlushes(outputs);
  let flushWait = { calls: 0, share: NaN, maxMs: NaN };
  let mainGc = NO_GC;
  const access = outputs.liveAccess();
  let scored = 0;
  const engine = startEngine(cfg.engine, {
    url: ctx.url,
    site,
    batch,
    workers,
    analyses: pipelineAnalyses(ctx.model, outputs, (time) => {
      const i = time - T0;
      if (i >= 0 && i < INDEX_CAPACITY) mem.scoredAt[i] = clock();
      Atomics.store(mem.ctrl, C_SCORED, ++scored);
    }),
    specs: benchSpecs(ROLLING_WINDOW, ctx.model, IFOREST_FEATURES),
    outputs,
    ...ingestTaps(mem),
  });
  let sub: Worker | null = null;
  let result: EngineFigures | null = null;
  let max = NaN;
  let durable = NaN;
  let half = NaN;
  let maxWindow = NO_WINDOW;
  let window = { from: 0, to: 0 };
  let serverCpu = { perMillionRecords: NaN, cores: NaN };
  try {
    await engine.ready;
    if (access === null || access.generatedToken === undefined) throw new Error("the live server did not start");
    const topics = Array.from({ length: cfg.machines }, (_, m) => machineTopic(`M-${String(m + 1).padStart(3, "0")}`));
    sub = new Worker(THREADS_MODULE, {
      workerData: {
        role: SUB_ROLE,
        wsUrl: `${access.wsUrl}?token=${encodeURIComponent(access.generatedToken)}&format=msgpack`,
        topics,
        sendTimes: mem.sendTimes.buffer as SharedArrayBuffer,
        latencies: mem.latencies.buffer as SharedArrayBuffer,
        ctrl: mem.ctrl.buffer as SharedArrayBuffer,
      } satisfies SubData,
    });
    sub.on("error", (e) => notes.push(`subscriber: ${e.message}`));
    await waitFor(() => Atomics.load(mem.ctrl, C_READY) === 1, 10_000, "the WebSocket subscriber did not subscribe within 10 s");
    await sleep(300); // the job's core subscription reaches the server

    // 1. Sustained maximum by credit, measured after a warm-up third of the phase.
    Atomics.store(mem.ctrl, C_STOP, 0);
    const phaseStart = { scored: Atomics.load(mem.ctrl, C_SCORED), at: performance.now() };
    const server0 = serverCpuNow(ctx);
    const p1 = (await started(mem, 0, () => publish(ctx, mem, site, 0, INDEX_CAPACITY, 0, true))).done;
    const workersCpu = threadsCpu(await engine.threadIds());
    maxWindow = await lastTwoThirds(cfg.maxMs, () => Atomics.load(mem.ctrl, C_SCORED), undefined, workersCpu);
    max = maxWindow.perSecond;
    Atomics.store(mem.ctrl, C_STOP, 1);
    const phaseEndTimes = await maximumPhaseEnd(mem, p1, engine, outputs);
    durable = durableRate(ctx, mem, max, phaseStart);
    if (ctx.clickhouse !== null) notes.push(phaseEnd(phaseStart.at, phaseEndTimes));
    serverCpu = serverCpuOver(server0, serverCpuNow(ctx), Atomics.load(mem.ctrl, C_SCORED) - phaseStart.scored, notes);

    // 2. Latency at half of the sustained rate, open loop.
    Atomics.store(mem.ctrl, C_STOP, 0);
    half = Math.min(max, durable) / 2;
    const from = Atomics.load(mem.ctrl, C_PUBLISHED) + 1000;
    const count = Math.min(INDEX_CAPACITY - from, Math.floor((half * cfg.latencyMs) / 1000));
    if (count < 1000) notes.push(`latency phase: only ${count} records fit the index space`);
    ({ flushWait, mainGc } = await watched(flushes, () => publish(ctx, mem, site, from, from + count, half, false)));
    const end = Atomics.load(mem.ctrl, C_PUBLISHED);
    await settle(() => Atomics.load(mem.ctrl, C_RECEIVED), Number.POSITIVE_INFINITY);
    window = { from: from + Math.floor((half * WARM_UP_MS) / 1000), to: end };
  } finally {
    result = await engine.stop().catch((e: unknown) => {
      notes.push(`engine failed: ${e instanceof Error ? e.message : String(e)}`);
      return null;
    });
    if (result !== null) notes.push(...result.notes);
    if (sub !== null) {
      sub.postMessage("close");
      await waitFor(() => Atomics.load(mem.ctrl, C_READY) === 2, 2000, "").catch(() => undefined);
      await sub.terminate();
    }
  }
  const metricsText = await outputs.registry.render();
  await outputs.close();
  rmSync(spillDir, { recursive: true, force: true });
  return {
    batch,
    workers,
    rawPerSecond,
    maxPerSecond: max,
    durablePerSecond: durable,
    ratio: max / rawPerSecond,
    halfPerSecond: half,
    processed: result?.processed ?? scored,
    shed: result?.shed ?? 0,
    deadLettered: result?.deadLettered ?? 0,
    ...latencyOf(mem, window),
    flushWait,
    mainGc,
    wsDropped: sumMetric(metricsText, METRIC.wsDropped),
    clickhouse: ctx.clickhouse === null ? null : await clickhouseFigures(ctx.clickhouse, database, metricsText, logs, serverCpu),
    notes,
    ...besideEngine(naive, max, maxWindow, rawUs),
  };
}

/** CPU µs of these threads of this process together (NaN without any). */
function threadsCpu(tids: readonly number[]): () => number {
  return () => (tids.length === 0 ? Number.NaN : tids.reduce((sum, t) => sum + threadCpuMicrosOf(t), 0));
}

/**
 * After the maximum phase's publishing stopped: every record scored, then the phase's rows durable
 * in ClickHouse (a backlog would flatter the maximum and delay the next phase). The times of those
 * steps, from the stop.
 */
async function maximumPhaseEnd(mem: SharedRun, published: Promise<unknown>, engine: RunningEngine, outputs: Outputs): Promise<number[]> {
  const times = [performance.now()];
  await published;
  await settle(() => Atomics.load(mem.ctrl, C_SCORED), Atomics.load(mem.ctrl, C_PUBLISHED));
  times.push(performance.now());
  await engine.handOver();
  times.push(performance.now());
  await outputs.flush();
  times.push(performance.now());
  return times;
}

/** Where the maximum phase's time went after its publishing stopped: what durable/s pays beyond max rec/s. */
function phaseEnd(start: number, [stopped, scored, handedOver, durable]: number[]): string {
  const s = (a: number, b: number): string => ((b - a) / 1000).toFixed(2);
  return (
    `maximum phase: ${s(start, stopped)} s publishing, then ${s(stopped, scored)} s until all scored, ` +
    `${s(scored, handedOver)} s until the rows were handed over, ${s(handedOver, durable)} s until durable`
  );
}

/**
 * Records/s from the start of the maximum phase until its rows were durable in ClickHouse. Without
 * ClickHouse nothing is made durable: the sustained rate is the maximum itself (the whole-phase
 * figure would count the warm-up third's ramp against it).
 */
function durableRate(ctx: RunContext, mem: SharedRun, max: number, phaseStart: { scored: number; at: number }): number {
  if (ctx.clickhouse === null) return max;
  return ((Atomics.load(mem.ctrl, C_SCORED) - phaseStart.scored) * 1000) / (performance.now() - phaseStart.at);
}

/**
 * Times every `Outputs.handOver` and `Outputs.flush` without changing what they do. On core NATS
 * the job calls `handOver` each time its queue runs dry: it waits only while the ClickHouse sink's
 * memory queue is half full (back-pressure), never for an insert; `flush` (waiting until rows are
 * durable) runs only at the end, outside the latency phase.
 */
export interface MainGc {
  markCompacts: number;
  scavenges: number;
  /** Pauses summed, ms: mark-compacts (their final pause), scavenges; and the longest of either. */
  markCompactMs: number;
  scavengeMs: number;
  maxPauseMs: number;
}

const NO_GC: MainGc = { markCompacts: 0, scavenges: 0, markCompactMs: NaN, scavengeMs: NaN, maxPauseMs: NaN };

/** The latency phase's publishing, and over it the job's flush waits and this thread's garbage collections. */
async function watched(
  flushes: { calls: number; ms: number; maxMs: number },
  phase: () => Promise<void>,
): Promise<{ flushWait: PipelineSetting["flushWait"]; mainGc: MainGc }> {
  const f0 = { ...flushes, at: performance.now() };
  flushes.maxMs = 0;
  const gc = watchGc();
  await phase();
  const flushWait = { calls: flushes.calls - f0.calls, share: (flushes.ms - f0.ms) / (performance.now() - f0.at), maxMs: flushes.maxMs };
  return { flushWait, mainGc: await gc.stop() };
}

/** Counts this thread's garbage collections until `stop` (entries arrive after a turn of the event loop). */
function watchGc(): { stop(): Promise<MainGc> } {
  const gc: MainGc = { markCompacts: 0, scavenges: 0, markCompactMs: 0, scavengeMs: 0, maxPauseMs: 0 };
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
      if (kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) {
        gc.markCompacts++;
        gc.markCompactMs += e.duration;
      } else if (kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) {
        gc.scavenges++;
        gc.scavengeMs += e.duration;
      } else continue;
      gc.maxPauseMs = Math.max(gc.maxPauseMs, e.duration);
    }
  });
  observer.observe({ entryTypes: ["gc"] });
  return {
    async stop(): Promise<MainGc> {
      await sleep(50);
      observer.disconnect();
      return gc;
    },
  };
}

function timeFlushes(outputs: Outputs): { calls: number; ms: number; maxMs: number } {
  const stats = { calls: 0, ms: 0, maxMs: 0 };
  const timed = async (call: () => Promise<void>): Promise<void> => {
    const t0 = performance.now();
    try {
      await call();
    } finally {
      const d = performance.now() - t0;
      stats.calls++;
      stats.ms += d;
      stats.maxMs = Math.max(stats.maxMs, d);
    }
  };
  const flush = outputs.flush.bind(outputs);
  const handOver = outputs.handOver.bind(outputs);
  outputs.flush = (endOfInput?: boolean): Promise<void> => timed(() => flush(endOfInput));
  outputs.handOver = (): Promise<void> => timed(handOver);
  return stats;
}

/** rolling (W = 64) + SPC + iforest as `linewatch run --analysis rolling,spc,iforest` builds them; `onScored` sees each record's time first. */
function pipelineAnalyses(model: IsolationForestModel, outputs: Outputs | null, onScored: (time: number) => void): RecordAnalysis[] {
  const rolling = rollingAnalysis({ window: { kind: "count", records: ROLLING_WINDOW }, alpha: 0.1, timeScale: 1000 });
  const spc = spcAnalysis({
    params: { ...DEFAULT_SPC_PARAMS },
    ewmaField: "spc_ewma",
    keyParts: ["machine_id", "sensor_type"],
    onAlert: (e) => outputs?.alert(e),
  });
  const iforest = iforestAnalysis({ model, features: IFOREST_FEATURES, rollingIndex: 0 });
  return [tapScored(rolling, onScored), spc, iforest];
}

/** `analysis` with `onScored` called at each record it observes (the bench's count of records scored on the pool path). */
function tapScored(analysis: RecordAnalysis, onScored: (time: number) => void): RecordAnalysis {
  return {
    ...analysis,
    observe: (row, c, payload) => {
      onScored(c.time);
      analysis.observe?.(row, c, payload);
    },
  };
}

/** A phase's measured window, its last two thirds: the rate of what was counted, and the main thread's CPU and event loop over it. */
interface PhaseWindow {
  perSecond: number;
  records: number;
  /** CPU µs of the calling (main) thread over the window. */
  mainCpuMicros: number;
  /** CPU µs of the engine's worker threads over the window (NaN: unknown). */
  workersCpuMicros: number;
  /** performance.eventLoopUtilization of the main thread over the window, 0..1. */
  eventLoop: number;
}

const NO_WINDOW: PhaseWindow = {
  perSecond: Number.NaN,
  records: 0,
  mainCpuMicros: Number.NaN,
  workersCpuMicros: Number.NaN,
  eventLoop: Number.NaN,
};

/**
 * Waits out a warm-up third of a `phaseMs` phase, then measures `count` over the other two thirds
 * with the main thread's CPU and event-loop utilisation; `edge` runs at the window's start and end
 * (outside the measured span), for a consumer that reads its own CPU there.
 */
async function lastTwoThirds(
  phaseMs: number,
  count: () => number,
  edge: (end: boolean) => Promise<void> | void = () => {},
  workersCpu: () => number = () => Number.NaN,
): Promise<PhaseWindow> {
  await sleep(phaseMs / 3);
  await edge(false);
  const c0 = count();
  const t0 = performance.now();
  const cpu0 = threadCpuMicros();
  const workers0 = workersCpu();
  const loop0 = performance.eventLoopUtilization();
  await sleep((phaseMs * 2) / 3);
  const records = count() - c0;
  const seconds = (performance.now() - t0) / 1000;
  const mainCpuMicros = threadCpuMicros() - cpu0;
  const workersCpuMicros = workersCpu() - workers0;
  const eventLoop = performance.eventLoopUtilization(loop0).utilization;
  await edge(true);
  return { perSecond: records / seconds, records, mainCpuMicros, workersCpuMicros, eventLoop };
}

/** The setting's figures beside the engine's: the naive consumer, the ratio to it, CPU per record, the main thread's event loop. */
function besideEngine(
  naive: { figures: NaiveFigures; usPerRecord: number },
  max: number,
  w: PhaseWindow,
  rawUs: number,
): Pick<PipelineSetting, "naive" | "ratioVsNaive" | "cpuUsPerRecord" | "engineEventLoop"> {
  return {
    naive: naive.figures,
    ratioVsNaive: max / naive.figures.perSecond,
    cpuUsPerRecord: {
      engineMainThread: w.mainCpuMicros / w.records,
      engineWorkerThreads: w.workersCpuMicros / w.records,
      rawSubscriberThread: rawUs,
      naiveProcess: naive.usPerRecord,
    },
    engineEventLoop: w.eventLoop,
  };
}

/**
 * Raw nats.js on the same publisher and messages, a subscriber (thread) that only counts:
 * records/s after a warm-up third, and the subscriber thread's CPU µs per record over the same window.
 */
async function measureRaw(
  ctx: RunContext,
  mem: SharedRun,
  site: string,
  format: WireFormat = "records",
): Promise<{ perSecond: number; usPerRecord: number; cpu: ReadingCpu }> {
  Atomics.store(mem.ctrl, C_SCORED, 0);
  Atomics.store(mem.ctrl, C_RAW_READY, 0);
  Atomics.store(mem.ctrl, C_WINDOW, 0);
  const counter = new Worker(THREADS_MODULE, {
    workerData: { role: RAW_ROLE, url: ctx.url, site, format, ctrl: mem.ctrl.buffer as SharedArrayBuffer } satisfies RawData,
  });
  const closed = new Promise<RawWindow>((resolve, reject) => {
    counter.once("message", resolve);
    counter.once("error", reject);
  });
  try {
    await waitFor(() => Atomics.load(mem.ctrl, C_RAW_READY) === 1, 10_000, "the raw nats.js subscriber did not subscribe within 10 s");
    Atomics.store(mem.ctrl, C_STOP, 0);
    const { done } = await started(mem, 0, () =>
      publish(ctx, mem, site, 0, Number.MAX_SAFE_INTEGER, 0, true, false, { format, jetstream: false }),
    );
    const edges: CpuSnapshot[] = [];
    const w = await lastTwoThirds(
      ctx.cfg.rawMs,
      () => Atomics.load(mem.ctrl, C_SCORED),
      (end) => {
        edges.push(cpuSnapshot(ctx));
        Atomics.store(mem.ctrl, C_WINDOW, end ? 2 : 1);
      },
    );
    Atomics.store(mem.ctrl, C_STOP, 1);
    await done;
    counter.postMessage("close");
    const own = await closed;
    const spent = cpuBetween(edges[0], edges[1]);
    const cpu = {
      readers: own.cpuMicros / own.readings,
      main: Number.NaN,
      natsServer: spent.nats / own.readings,
      rest: (spent.process - own.cpuMicros) / own.readings,
    };
    return { perSecond: w.perSecond, usPerRecord: cpu.readers, cpu };
  } finally {
    await counter.terminate();
    Atomics.store(mem.ctrl, C_SCORED, 0);
  }
}

// ---- the naive consumer ----

/** CPU so far, µs: this process (all its threads), its main thread, nats-server. */
interface CpuSnapshot {
  process: number;
  main: number;
  nats: number;
}

function cpuSnapshot(ctx: RunContext): CpuSnapshot {
  const own = process.cpuUsage();
  return { process: own.user + own.system, main: threadCpuMicros(), nats: (processCpuSeconds(ctx.natsPid()) ?? Number.NaN) * 1e6 };
}

function cpuBetween(a: CpuSnapshot, b: CpuSnapshot): CpuSnapshot {
  return { process: b.process - a.process, main: b.main - a.main, nats: b.nats - a.nats };
}

/** A frames row's CPU per reading by part, their sum, and the cores that sum takes at the row's rate. */
function readingCpuText(cpu: ReadingCpu, f: FormatRow): string {
  const parts = [`${f.source === "raw nats.js" ? "subscriber" : "ingest workers"} ${cpu.readers.toFixed(3)}`];
  if (Number.isFinite(cpu.main)) parts.push(`main ${cpu.main.toFixed(3)}`);
  parts.push(`nats-server ${cpu.natsServer.toFixed(3)}`, `rest of the bench process ${cpu.rest.toFixed(3)}`);
  const all = cpu.readers + (Number.isFinite(cpu.main) ? cpu.main : 0) + cpu.natsServer + cpu.rest;
  return `CPU µs/reading: ${parts.join(", ")}; all ${all.toFixed(3)} (${((all * f.readingsPerSecond) / 1e6).toFixed(2)} cores)`;
}

/** The naive consumer's own counts and process.cpuUsage(), read at one instant in its process. */
interface NaiveCounters {
  received: number;
  published: number;
  cpu: NodeJS.CpuUsage;
}

/** The naive consumer's process: ready once subscribed, its counters on request, stopped (killed if it does not end within 5 s). */
interface NaiveProcess {
  ready: Promise<void>;
  counters(): Promise<NaiveCounters>;
  stop(): Promise<void>;
}

function startNaive(url: string, site: string): NaiveProcess {
  const child: ChildProcess = fork(NAIVE_MODULE, [url, site], { stdio: ["ignore", "ignore", "inherit", "ipc"] });
  const waiting: Array<(c: NaiveCounters) => void> = [];
  let alive = true;
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => {
      alive = false;
      resolve();
    }),
  );
  const gone = (): Promise<never> => exited.then(() => Promise.reject(new Error("the naive consumer exited")));
  const ready = new Promise<void>((resolve, reject) => {
    child.on("message", (m: { type?: string } & NaiveCounters) => {
      if (m.type === "ready") resolve();
      if (m.type === "counters") waiting.shift()?.(m);
    });
    child.once("error", reject);
    void gone().catch(reject);
  });
  return {
    ready: within(ready, 30_000, "the naive consumer was not ready within 30 s"),
    counters: () => {
      if (!alive) return Promise.reject(new Error("the naive consumer exited"));
      const answer = new Promise<NaiveCounters>((resolve) => waiting.push(resolve));
      child.send("counters");
      return Promise.race([answer, gone()]);
    },
    stop: async () => {
      if (alive && child.connected) child.send("stop");
      await within(exited, 5000, "").catch(() => undefined);
      if (alive) child.kill();
      await exited;
    },
  };
}

/** `p`, or a rejection with `message` after `ms` (the timer cleared either way: it must not hold the process open). */
async function within<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The naive consumer on `site`, measured as the engine is, on its own shared memory: its sustained
 * maximum by credit (its scores arriving at a subscriber thread are "scored"), then publish →
 * score arrival at half of that, open loop. A failure leaves NaN figures and a note.
 */
async function measureNaive(ctx: RunContext, site: string): Promise<{ figures: NaiveFigures; usPerRecord: number }> {
  const mem = sharedRun();
  const notes: string[] = [];
  const naive = startNaive(ctx.url, site);
  const scores = new Worker(THREADS_MODULE, {
    workerData: {
      role: NAIVE_SUB_ROLE,
      url: ctx.url,
      site,
      sendTimes: mem.sendTimes.buffer as SharedArrayBuffer,
      latencies: mem.latencies.buffer as SharedArrayBuffer,
      ctrl: mem.ctrl.buffer as SharedArrayBuffer,
    } satisfies NaiveSubData,
  });
  scores.on("error", (e) => notes.push(`score subscriber: ${e.message}`));
  let max = { perSecond: Number.NaN, usPerRecord: Number.NaN };
  let window = { from: 0, to: 0 };
  let published = Number.NaN;
  try {
    await naive.ready;
    await waitFor(
      () => Atomics.load(mem.ctrl, C_READY) === 1,
      10_000,
      "the naive consumer's score subscriber did not subscribe within 10 s",
    );
    max = await naiveMaximum(ctx, mem, site, naive);
    window = await openLoop(ctx, mem, site, max.perSecond / 2);
    published = (await naive.counters()).published;
  } catch (e) {
    notes.push(`naive consumer: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    await naive.stop();
    scores.postMessage("close");
    await waitFor(() => Atomics.load(mem.ctrl, C_READY) === 2, 2000, "").catch(() => undefined);
    await scores.terminate();
  }
  const { latency, lost } = latencyOf(mem, window);
  return {
    figures: { perSecond: max.perSecond, halfPerSecond: max.perSecond / 2, latency, lost, published, notes },
    usPerRecord: max.usPerRecord,
  };
}

/** The naive consumer's sustained maximum by credit, and its process's CPU µs per score it published in the measured window. */
async function naiveMaximum(
  ctx: RunContext,
  mem: SharedRun,
  site: string,
  naive: NaiveProcess,
): Promise<{ perSecond: number; usPerRecord: number }> {
  Atomics.store(mem.ctrl, C_STOP, 0);
  const { done } = await started(mem, 0, () => publish(ctx, mem, site, 0, INDEX_CAPACITY, 0, true));
  const marks: NaiveCounters[] = [];
  const w = await lastTwoThirds(
    ctx.cfg.maxMs,
    () => Atomics.load(mem.ctrl, C_SCORED),
    async () => void marks.push(await naive.counters()),
  );
  Atomics.store(mem.ctrl, C_STOP, 1);
  await done;
  await settle(() => Atomics.load(mem.ctrl, C_SCORED), Atomics.load(mem.ctrl, C_PUBLISHED));
  const [a, b] = marks;
  const cpu = b.cpu.user + b.cpu.system - (a.cpu.user + a.cpu.system);
  return { perSecond: w.perSecond, usPerRecord: cpu / (b.published - a.published) };
}

/**
 * Publishes `rate` records/s open loop for the latency phase (after the last phase's indexes) and
 * waits for the scores to stop arriving; the measured indexes, past the warm-up.
 */
async function openLoop(ctx: RunContext, mem: SharedRun, site: string, rate: number): Promise<{ from: number; to: number }> {
  Atomics.store(mem.ctrl, C_STOP, 0);
  const from = Atomics.load(mem.ctrl, C_PUBLISHED) + 1000;
  const count = Math.min(INDEX_CAPACITY - from, Math.floor((rate * ctx.cfg.latencyMs) / 1000));
  await publish(ctx, mem, site, from, from + count, rate, false);
  const end = Atomics.load(mem.ctrl, C_PUBLISHED);
  await settle(() => Atomics.load(mem.ctrl, C_SCORED), Number.POSITIVE_INFINITY);
  return { from: from + Math.floor((rate * WARM_UP_MS) / 1000), to: end };
}

/** Runs the publisher worker for indexes [from, to): by credit (`rate` 0) or open loop at `rate` records/s. */
function publish(
  ctx: RunContext,
  mem: SharedRun,
  site: string,
  from: number,
  to: number,
  rate: number,
  credit: boolean,
  timed = true,
  wire: { format: WireFormat; jetstream: boolean; inFlight?: number } = { format: "records", jetstream: false },
): Promise<void> {
  const worker = new Worker(THREADS_MODULE, {
    workerData: {
      role: PUB_ROLE,
      url: ctx.url,
      site,
      seed: ctx.cfg.seed,
      machines: ctx.cfg.machines,
      from,
      to,
      rate: credit ? 0 : rate,
      inFlight: wire.inFlight ?? (wire.format === "frames" ? ctx.cfg.inFlight * 8 : ctx.cfg.inFlight),
      format: wire.format,
      frameReadings: ctx.cfg.frameReadings,
      jetstream: wire.jetstream,
      sendTimes: timed ? (mem.sendTimes.buffer as SharedArrayBuffer) : null,
      ctrl: mem.ctrl.buffer as SharedArrayBuffer,
    } satisfies PubData,
  });
  return new Promise<void>((resolve, reject) => {
    worker.once("message", () => resolve());
    worker.once("error", reject);
    worker.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`publisher exited with code ${code}`))));
  });
}

/** Resolves (with the publisher's end) once it has sent its first records: a thread takes a while to load, a phase's clock starts then. */
async function started(mem: SharedRun, from: number, start: () => Promise<void>): Promise<{ done: Promise<void> }> {
  Atomics.store(mem.ctrl, C_PUBLISHED, -1);
  const done = start();
  let ended = false;
  void done.then(
    () => (ended = true),
    () => (ended = true),
  );
  await waitFor(() => ended || Atomics.load(mem.ctrl, C_PUBLISHED) > from, 30_000, "the publisher sent nothing within 30 s");
  // In an object: an async function returning the promise itself would wait for it.
  return { done };
}

/** Waits until `count()` reaches `target` or stops moving for 1.5 s (what is missing was shed or dropped), at most 15 s. */
async function settle(count: () => number, target: number): Promise<void> {
  const deadline = performance.now() + 15_000;
  let last = -1;
  let lastChange = performance.now();
  while (count() < target && performance.now() < deadline) {
    if (count() !== last) {
      last = count();
      lastChange = performance.now();
    } else if (performance.now() - lastChange > 1500) return;
    await sleep(20);
  }
}

/**
 * Waits until `count()` reaches `target` (a loaded stream read whole); gives up when nothing is
 * counted within 30 s of the start (consumers created, a kernel pool starting on a busy machine)
 * or the count stops moving for 5 s after that.
 */
async function drained(count: () => number, target: number): Promise<void> {
  let last = 0;
  let lastChange = performance.now();
  while (count() < target) {
    const idleMs = performance.now() - lastChange;
    if (idleMs > (last === 0 ? 30_000 : 5_000)) return;
    if (count() !== last) {
      last = count();
      lastChange = performance.now();
    }
    await sleep(20);
  }
}

async function waitFor(ok: () => boolean, timeoutMs: number, message: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!ok()) {
    if (performance.now() > deadline) throw new Error(message);
    await sleep(10);
  }
}

/** The ingest path's counts and stamps: records scored (the publisher's credit), and when each reading's frame reached the live server. */
function ingestTaps(mem: SharedRun): Pick<EngineSetting, "onScoredCount" | "onLiveFrame"> {
  return {
    onScoredCount: (n) => Atomics.store(mem.ctrl, C_SCORED, n),
    onLiveFrame: (frame) => stampFrame(mem.scoredAt, frame),
  };
}

/**
 * The ingest path's "scored" stamp: now, for each reading of a score frame the main thread hands
 * to the live server. Only the times column is read (connectors/wire/score-frame.ts: n at offset
 * 8, the tables' bytes at 16 and 20, the times from the 8-aligned end of the tables).
 */
function stampFrame(scoredAt: Float64Array, frame: Uint8Array): void {
  const t = clock();
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const n = view.getUint32(8, true);
  const at = (24 + view.getUint32(16, true) + view.getUint32(20, true) + 7) & ~7;
  for (let r = 0; r < n; r++) {
    const i = view.getFloat64(at + 8 * r, true) - T0;
    if (i >= 0 && i < scoredAt.length) scoredAt[i] = t;
  }
}

function latencyOf(mem: SharedRun, w: { from: number; to: number }): Pick<PipelineSetting, "latency" | "toScored" | "scoredToWs" | "lost"> {
  const total: number[] = [];
  const toScored: number[] = [];
  const scoredToWs: number[] = [];
  let lost = 0;
  for (let i = w.from; i < w.to; i++) {
    const l = mem.latencies[i];
    if (Number.isNaN(l)) {
      lost++;
      continue;
    }
    total.push(l);
    const s = mem.scoredAt[i] - mem.sendTimes[i];
    if (Number.isFinite(s)) {
      toScored.push(s);
      scoredToWs.push(l - s);
    }
  }
  return { latency: percentiles(total), toScored: percentiles(toScored), scoredToWs: percentiles(scoredToWs), lost };
}

function percentiles(xs: number[]): Percentiles {
  if (xs.length === 0) return { samples: 0, p50: NaN, p99: NaN, max: NaN };
  const s = Float64Array.from(xs).sort();
  const q = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { samples: s.length, p50: q(0.5), p99: q(0.99), max: s[s.length - 1] };
}

// ---- other sources and formats ----

/** Frames (raw, and the engine by credit at each worker count) and JetStream (engine, stream loaded first, first setting), engine alone. */
async function runFormats(ctx: RunContext): Promise<FormatRow[]> {
  const rows: FormatRow[] = [];
  const mem = sharedRun();
  const row = async (label: string, measure: () => Promise<Omit<FormatRow, "label">>): Promise<void> => {
    ctx.say(`${label} …`);
    const r = { label, ...(await measure()) };
    ctx.say(
      `  ${(r.readingsPerSecond / 1e6).toFixed(3)} M readings/s, ${r.processed} processed, shed ${r.shed}${r.notes.length > 0 ? ` — ${r.notes.join("; ")}` : ""}`,
    );
    rows.push(r);
  };
  await row("raw nats.js, frames", async () => {
    const raw = await measureRaw(ctx, mem, `${SITE_PREFIX}rawframes`, "frames");
    return {
      source: "raw nats.js",
      format: "frames",
      readingsPerSecond: raw.perSecond,
      processed: 0,
      shed: 0,
      cpuUsPerReading: raw.cpu,
      notes: [],
    };
  });
  // One row per worker count of the sweep: how many ingest workers a frames feed wants is what a
  // user picks, as the sweep picks batch and workers for single records.
  const counts = [...new Set(ctx.cfg.workers)];
  const workersText = (n: number) => `${n} ingest worker${n === 1 ? "" : "s"}`;
  for (const workers of counts)
    await row(`engine ← core NATS, frames (rolling + SPC as run sets it), ${workersText(workers)}`, () =>
      measureEngineFrames(ctx, mem, workers, "run"),
    );
  const most = Math.max(...counts);
  await row(`engine ← core NATS, frames (rolling + SPC, textbook chart), ${workersText(most)}`, () =>
    measureEngineFrames(ctx, mem, most, "textbook"),
  );
  await jetStreamRows(ctx, mem, row);
  return rows;
}

/**
 * The SPC of a frames row. "run": as `linewatch run` sets it (and `demo`), the settings of a live
 * plant's ingest path — a baseline of 300, a tracked centre line, the rules and chart thresholds a
 * false-alarm budget of one per key per 12 h picks (engine/cli ALERTING_SPC_DEFAULTS); the goal is
 * judged on it. "textbook": the single-record rows' chart (replay's: fixed limits, every Western
 * Electric and Nelson rule on), whose in-control false alarms open, update or close an alert
 * episode about every 35 readings — each an event the worker encodes and the main thread decodes.
 */
export type FramesSpc = "run" | "textbook";

/** A frames row's analyses: for the pool path (`analyses`, the first counting records scored) and for ingest workers (`specs`). */
function framesAnalyses(ctx: RunContext, spc: FramesSpc, onScored: () => void): Pick<EngineSetting, "analyses" | "specs"> {
  if (spc === "textbook")
    return {
      analyses: pipelineAnalyses(ctx.model, null, onScored).slice(0, 2),
      specs: benchSpecs(ROLLING_WINDOW, ctx.model, IFOREST_FEATURES).slice(0, 2),
    };
  const settings = parseRunAnalysisSettings(["--analysis", "rolling,spc", "--window", String(ROLLING_WINDOW)]);
  const [rolling, spcAnalysis] = runAnalyses(settings, () => {});
  return { analyses: [tapScored(rolling, onScored), spcAnalysis], specs: runAnalysisSpecs(settings) };
}

/** The engine fed frames by credit: readings/s over the last two thirds of the maximum phase. */
async function measureEngineFrames(ctx: RunContext, mem: SharedRun, workers: number, spc: FramesSpc): Promise<Omit<FormatRow, "label">> {
  const site = `${SITE_PREFIX}frames`;
  Atomics.store(mem.ctrl, C_SCORED, 0);
  // The issue's frames row: rolling + SPC, scores on (the forest is the single-record rows' third analysis).
  const engine = startEngine(ctx.cfg.engine, {
    url: ctx.url,
    site,
    batch: ctx.cfg.batches[0],
    workers,
    ...framesAnalyses(ctx, spc, () => Atomics.add(mem.ctrl, C_SCORED, 1)),
    outputs: null,
    scoreFrames: false,
    onScoredCount: (n) => Atomics.store(mem.ctrl, C_SCORED, n),
  });
  let rate = NaN;
  let cpu: ReadingCpu = { readers: Number.NaN, main: Number.NaN, natsServer: Number.NaN, rest: Number.NaN };
  let result: EngineFigures | null = null;
  const notes: string[] = [];
  try {
    await engine.ready;
    await sleep(300); // the job's core subscription reaches the server
    Atomics.store(mem.ctrl, C_STOP, 0);
    const { done } = await started(mem, 0, () =>
      // Untimed: the stream is not bounded by the index slots of the timed phases. The credit is
      // what the ingest workers hold pending: more is shed (core NATS), and shed readings, never
      // scored, would keep their credit for good.
      publish(ctx, mem, site, 0, Number.MAX_SAFE_INTEGER, 0, true, false, {
        format: "frames",
        jetstream: false,
        inFlight: Math.min(ctx.cfg.inFlight * 8, DEFAULT_INGEST_JOB.pendingRecordsMax * Math.max(1, workers)),
      }),
    );
    await sleep(ctx.cfg.maxMs / 3);
    ({ rate, cpu } = await framesWindow(ctx, mem, await engine.threadIds()));
    Atomics.store(mem.ctrl, C_STOP, 1);
    await done;
    await settle(() => Atomics.load(mem.ctrl, C_SCORED), Atomics.load(mem.ctrl, C_PUBLISHED));
  } finally {
    result = await engine.stop().catch((err: unknown) => {
      notes.push(`engine failed: ${err instanceof Error ? err.message : String(err)}`);
      return null;
    });
  }
  return {
    source: "core NATS",
    format: "frames",
    workers,
    spc,
    readingsPerSecond: rate,
    processed: result?.processed ?? 0,
    shed: result?.shed ?? 0,
    cpuUsPerReading: cpu,
    notes,
  };
}

/** The frames row's measured window (the maximum phase's last two thirds): readings/s scored and the CPU per reading by part. */
async function framesWindow(ctx: RunContext, mem: SharedRun, tids: readonly number[]): Promise<{ rate: number; cpu: ReadingCpu }> {
  const readersCpu = (): number => (tids.length === 0 ? Number.NaN : tids.reduce((sum, t) => sum + threadCpuMicrosOf(t), 0));
  const s0 = Atomics.load(mem.ctrl, C_SCORED);
  const readers0 = readersCpu();
  const c0 = cpuSnapshot(ctx);
  const t0 = performance.now();
  await sleep((ctx.cfg.maxMs * 2) / 3);
  const scored = Atomics.load(mem.ctrl, C_SCORED) - s0;
  const rate = (scored * 1000) / (performance.now() - t0);
  const readers = readersCpu() - readers0;
  const spent = cpuBetween(c0, cpuSnapshot(ctx));
  const cpu = {
    readers: readers / scored,
    main: spent.main / scored,
    natsServer: spent.nats / scored,
    rest: (spent.process - readers - spent.main) / scored,
  };
  return { rate, cpu };
}

/**
 * JetStream, single records: the stream is loaded once, then read whole by raw nats.js, the
 * ingest workers (ack-all, then one ack per message as before) and the sensor job (pool, one ack
 * per message: the path before ingest workers), one after the other — the same messages in one run.
 * Each engine is timed from the job's start (consumers created, checkpoints read) to its last
 * reading scored, on a checkpoint bucket of its own so none resumes from another's checkpoint.
 */
async function jetStreamRows(
  ctx: RunContext,
  mem: SharedRun,
  row: (label: string, measure: () => Promise<Omit<FormatRow, "label">>) => Promise<void>,
): Promise<void> {
  const stream = "LW_BENCH_JS";
  const jsm = await ctx.nc.jetstreamManager();
  await jsm.streams.add({ name: stream, subjects: [`lw.${JETSTREAM_SITE}.p.*.sensor.>`] });
  try {
    const total = ctx.cfg.jetstreamReadings;
    Atomics.store(mem.ctrl, C_STOP, 0);
    await publish(ctx, mem, JETSTREAM_SITE, 0, total, 0, false, false, { format: "records", jetstream: true });
    await row("raw nats.js ← JetStream, one ack per fetch", () => measureRawJetStream(ctx, stream, total));
    await row("ingest workers ← JetStream, ack-all", () => measureEngineJetStream(ctx, mem, "ingest", false, stream, total));
    await row("ingest workers ← JetStream, ack per message", () => measureEngineJetStream(ctx, mem, "ingest", true, stream, total));
    await row("sensor job (pool) ← JetStream, ack per message", () => measureEngineJetStream(ctx, mem, "pool", true, stream, total));
  } finally {
    await jsm.streams.delete(stream).catch(() => undefined);
  }
}

/** The ceiling: one ack-all pull consumer on the bench's connection that only counts, one ack per fetch of 1000. */
async function measureRawJetStream(ctx: RunContext, stream: string, total: number): Promise<Omit<FormatRow, "label">> {
  const jsm = await ctx.nc.jetstreamManager();
  await jsm.consumers.add(stream, { durable_name: "raw", ack_policy: AckPolicy.All, max_ack_pending: JETSTREAM.maxAckPending });
  const consumer = await ctx.nc.jetstream().consumers.get(stream, "raw");
  const notes: string[] = [];
  let read = 0;
  let acks = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  while (read < total) {
    const batch = await consumer.fetch({ max_messages: JETSTREAM.fetchMessagesMax, expires: 1000 });
    let last: JsMsg | null = null;
    for await (const m of batch) {
      read++;
      last = m;
    }
    if (last === null) break;
    last.ack();
    acks++;
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  if (read < total) notes.push(`${read} of ${total} messages read`);
  await jsm.consumers.delete(stream, "raw").catch(() => undefined);
  return {
    source: "JetStream",
    format: "records",
    consumer: "raw",
    ack: "all",
    readingsPerSecond: read / seconds,
    processed: read,
    shed: 0,
    processCpuUsPerReading: (cpu.user + cpu.system) / Math.max(1, read),
    acksPerReading: acks / Math.max(1, read),
    notes,
  };
}

/** linewatch on the loaded stream (the first setting's batch and workers, engine alone): readings/s from the job's start to the last one scored. */
async function measureEngineJetStream(
  ctx: RunContext,
  mem: SharedRun,
  path: EnginePath,
  explicitAck: boolean,
  stream: string,
  total: number,
): Promise<Omit<FormatRow, "label">> {
  Atomics.store(mem.ctrl, C_SCORED, 0);
  const engine = startEngine(path, {
    url: ctx.url,
    site: JETSTREAM_SITE,
    batch: ctx.cfg.batches[0],
    workers: ctx.cfg.workers[0],
    analyses: pipelineAnalyses(ctx.model, null, () => Atomics.add(mem.ctrl, C_SCORED, 1)),
    specs: benchSpecs(ROLLING_WINDOW, ctx.model, IFOREST_FEATURES),
    outputs: null,
    scoreFrames: false,
    onScoredCount: (n) => Atomics.store(mem.ctrl, C_SCORED, n),
    jetstream: {
      ...JETSTREAM,
      stream,
      explicitAck,
      checkpointBucket: `lw-bench-js-${path.replace("+", "-")}-${explicitAck ? "explicit" : "all"}`,
    },
  });
  const notes: string[] = [];
  let rate = NaN;
  let cpuUs = NaN;
  let result: EngineFigures | null = null;
  try {
    await engine.ready;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await drained(() => Atomics.load(mem.ctrl, C_SCORED), total);
    const scored = Atomics.load(mem.ctrl, C_SCORED);
    rate = (scored * 1000) / (performance.now() - t0);
    const cpu = process.cpuUsage(cpu0);
    cpuUs = (cpu.user + cpu.system) / Math.max(1, scored);
    if (scored < total) notes.push(`${scored} of ${total} readings scored`);
  } finally {
    result = await engine.stop().catch((err: unknown) => {
      notes.push(`job failed: ${err instanceof Error ? err.message : String(err)}`);
      return null;
    });
  }
  if (result !== null && result.notes.length > 0 && path !== "pool")
    notes.push(...result.notes.filter((n) => !n.startsWith("ingest workers:")));
  return {
    source: "JetStream",
    format: "records",
    consumer: path,
    ack: explicitAck ? "explicit" : "all",
    readingsPerSecond: rate,
    processed: result?.processed ?? 0,
    shed: 0,
    processCpuUsPerReading: cpuUs,
    acksPerReading: (result?.acks ?? 0) / Math.max(1, result?.processed ?? 0),
    notes,
  };
}

// ---- ClickHouse and metrics ----

async function clickhouseFigures(
  server: ClickHouseServer,
  database: string,
  metricsText: string,
  logs: readonly LogEntry[],
  serverCpu: { perMillionRecords: number; cores: number },
): Promise<NonNullable<PipelineSetting["clickhouse"]>> {
  const scoreRows = Number((await server.query(`SELECT count() FROM ${database}.ml_scores FINAL`)).trim());
  const sink = histogramOf(metricsText, METRIC.sinkLatency);
  return {
    scoreRows,
    sinkRows: sumMetric(metricsText, METRIC.sinkRows),
    sinkBatches: sink.count,
    sinkMeanMs: sink.count === 0 ? NaN : (sink.sum / sink.count) * 1000,
    sinkP99Ms: sink.p99 * 1000,
    writeErrors: logs
      .filter((e) => e.component === "clickhouse" && e.level === "error")
      .slice(0, 3)
      .map((e) => `${e.msg}: ${(e.err as { message?: string } | undefined)?.message ?? ""}`),
    serverCpuPerMillionRecords: serverCpu.perMillionRecords,
    serverCores: serverCpu.cores,
  };
}

interface ServerCpuSample {
  at: number;
  total: number | null;
  byThread: Map<string, number>;
}

/** clickhouse-server's CPU seconds now, in all and by thread name; null without ClickHouse. */
function serverCpuNow(ctx: RunContext): ServerCpuSample | null {
  const pid = ctx.clickhouse?.pid ?? null;
  if (pid === null) return null;
  return { at: performance.now(), total: processCpuSeconds(pid), byThread: threadCpuSecondsByName(pid) };
}

/** The server's CPU between two samples per million records scored, and in cores; its split by thread as a note. */
function serverCpuOver(
  a: ServerCpuSample | null,
  b: ServerCpuSample | null,
  records: number,
  notes: string[],
): { perMillionRecords: number; cores: number } {
  if (a === null || b === null || a.total === null || b.total === null || records <= 0) return { perMillionRecords: NaN, cores: NaN };
  const seconds = b.total - a.total;
  const threads = [...b.byThread]
    .map(([name, s]) => [name, s - (a.byThread.get(name) ?? 0)] as const)
    .filter(([, s]) => s >= 0.01)
    .sort((x, y) => y[1] - x[1])
    .map(([name, s]) => `${name} ${s.toFixed(2)}`);
  notes.push(`clickhouse-server, maximum phase until durable: ${seconds.toFixed(2)} CPU s (${threads.join(", ")})`);
  return { perMillionRecords: (seconds / records) * 1e6, cores: seconds / ((b.at - a.at) / 1000) };
}

/** Σ over the label sets of a counter or gauge in Prometheus text. */
function sumMetric(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

/** A histogram's count, sum, and the upper bound of the bucket holding its 99th percentile. */
function histogramOf(text: string, name: string): { count: number; sum: number; p99: number } {
  const buckets: Array<[number, number]> = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}_bucket{`)) continue;
    const le = /le="([^"]+)"/.exec(line)?.[1] ?? "+Inf";
    buckets.push([le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le), Number(line.slice(line.lastIndexOf(" ") + 1))]);
  }
  const count = sumMetric(text, `${name}_count`);
  const sum = sumMetric(text, `${name}_sum`);
  buckets.sort((a, b) => a[0] - b[0]);
  const p99 = buckets.find(([, n]) => n >= 0.99 * count)?.[0] ?? NaN;
  return { count, sum, p99: count === 0 ? NaN : p99 };
}

// ---- report ----

function ms(v: number): string {
  return Number.isFinite(v) ? (v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)) : "—";
}

/** CPU µs per record, three significant digits. */
function cpuUs(v: number): string {
  return Number.isFinite(v) ? v.toPrecision(3) : "—";
}

/** Per setting: raw nats.js, the naive consumer and linewatch side by side, and the CPU each spent per record. */
function baselineSection(r: PipelineBenchReport): string[] {
  const lines = [
    "",
    "the same publisher and messages: raw nats.js, the naive consumer (bench/naive-consumer.ts, a process of its own) and linewatch",
  ];
  const head = ["batch", "workers", "raw rec/s", "naive rec/s", "max rec/s", "× raw", "× naive", "naive half", "naive p50", "naive p99"];
  head.push("naive max", "naive lost", "p99 ms", "main µs/rec", "loop %", "workers µs/rec", "raw µs/rec", "naive µs/rec");
  const widths = [6, 7, 10, 11, 10, 6, 7, 10, 9, 9, 9, 10, 7, 11, 6, 14, 10, 12];
  const row = (cells: string[]): string => cells.map((c, i) => c.padStart(widths[i])).join(" ");
  lines.push(row(head));
  for (const s of r.settings) {
    const n = s.naive;
    lines.push(
      row([
        ...[String(s.batch), String(s.workers), String(Math.round(s.rawPerSecond)), String(Math.round(n.perSecond))],
        ...[String(Math.round(s.maxPerSecond)), s.ratio.toFixed(3), s.ratioVsNaive.toFixed(2), String(Math.round(n.halfPerSecond))],
        ...[ms(n.latency.p50), ms(n.latency.p99), ms(n.latency.max), String(n.lost), ms(s.latency.p99)],
        ...[cpuUs(s.cpuUsPerRecord.engineMainThread), Number.isFinite(s.engineEventLoop) ? (s.engineEventLoop * 100).toFixed(0) : "—"],
        ...[cpuUs(s.cpuUsPerRecord.engineWorkerThreads), cpuUs(s.cpuUsPerRecord.rawSubscriberThread), cpuUs(s.cpuUsPerRecord.naiveProcess)],
      ]),
    );
    for (const note of n.notes) lines.push(`    naive note: ${note}`);
  }
  lines.push(
    "  naive rec/s: scores/s of the naive consumer (nats.js, @msgpack/msgpack decode, a Map of 64-value ring buffers, one JSON score published",
    "  per record) arriving at a subscriber thread, paced by the same credit and measured as max rec/s; × naive: max rec/s ÷ naive rec/s;",
    "  naive p50/p99/max: publish → arrival of its JSON score at half its own maximum (naive half), open loop, same warm-up; naive lost: never",
    "  arrived; p99 ms: linewatch's, as above. CPU per record over each maximum phase's measured window: main µs/rec: linewatch's main thread",
    "  (the job's: NATS, decoding, batching, outputs; the kernels run on the workers) ÷ records scored; loop %: its event-loop utilisation;",
    "  workers µs/rec: the ingest worker threads together ÷ records scored (decoding, kernels, frames, ClickHouse encoding; — on the pool path);",
    "  raw µs/rec: the raw subscriber's thread ÷ records it counted; naive µs/rec: the naive process (all its threads) ÷ scores it published",
  );
  return lines;
}

/** The sources-and-formats rows, readings/s with the ratio of engine frames to raw frames. */
function formatsSection(r: PipelineBenchReport): string[] {
  if (r.formats.length === 0) return [];
  const first = r.settings[0];
  const lines = [
    "",
    `other sources and formats (engine alone: no ClickHouse or WebSocket; batch ${first?.batch ?? "—"}; frames of ${r.frameReadings} readings of one machine at each worker count of the sweep; JetStream with ${first?.workers ?? "—"} workers)`,
  ];
  const rawFrames = r.formats.find((f) => f.source === "raw nats.js" && f.format === "frames");
  const rawJetStream = r.formats.find((f) => f.source === "JetStream" && f.consumer === "raw");
  const poolJetStream = r.formats.find((f) => f.source === "JetStream" && f.consumer === "pool");
  const before = poolJetStream?.ack === "explicit" ? "the sensor job as before" : "the sensor job";
  for (const f of r.formats) {
    const of = (base: FormatRow | undefined, what: string): string =>
      base === undefined || base === f ? "" : ` (${((f.readingsPerSecond / base.readingsPerSecond) * 100).toFixed(1)} % of ${what})`;
    const ratio =
      f.source === "core NATS" && f.format === "frames"
        ? of(rawFrames, "raw")
        : f.source === "JetStream" && f.consumer !== "raw"
          ? `${of(rawJetStream, "raw")}${f.consumer === "pool" || !((poolJetStream?.readingsPerSecond ?? 0) > 0) ? "" : `, ${(f.readingsPerSecond / (poolJetStream?.readingsPerSecond ?? NaN)).toFixed(2)}× ${before}`}`
          : "";
    const perReading =
      f.processCpuUsPerReading === undefined
        ? ""
        : `   ${cpuUs(f.processCpuUsPerReading)} µs CPU/reading (process), ${(f.acksPerReading ?? NaN).toFixed(4)} acks/reading`;
    const cpu = f.cpuUsPerReading;
    const cpuText = cpu !== undefined && Number.isFinite(cpu.readers) ? `   ${readingCpuText(cpu, f)}` : "";
    lines.push(
      `  ${f.label.padEnd(52)} ${(f.readingsPerSecond / 1e6).toFixed(3).padStart(8)} M readings/s${ratio}   scored ${f.processed}   shed ${f.shed}${perReading}${cpuText}${f.notes.length > 0 ? `   note: ${f.notes.join("; ")}` : ""}`,
    );
  }
  lines.push(
    `  (load average ${r.loadAverageAfter.toFixed(2)} after the run; CPU µs/reading over the measured window, thread time from /proc; frames rows:`,
    "  the rest of the bench process is its other threads — the publisher, V8's garbage-collection threads, the bench's own main thread;",
    "  all: the parts together, and the cores they take at the row's rate)",
  );
  return lines;
}

/**
 * The p99 goal of a setting, ms: with ClickHouse {@link TARGET_P99_MS_CLICKHOUSE}; without it
 * {@link TARGET_P99_MS}, or half the naive consumer's p99 where that is above {@link NAIVE_P99_RELATIVE_ABOVE_MS}.
 */
export function p99Goal(r: PipelineBenchReport, s: PipelineSetting): { ms: number; why: string } {
  if (r.clickhouseAbsent === null) return { ms: TARGET_P99_MS_CLICKHOUSE, why: "with ClickHouse" };
  const naive = s.naive.latency.p99;
  return naive > NAIVE_P99_RELATIVE_ABOVE_MS
    ? { ms: naive * TARGET_P99_OF_NAIVE, why: `half the naive consumer's ${ms(naive)} ms` }
    : { ms: TARGET_P99_MS, why: "without ClickHouse" };
}

/** The targets (informational) as met / not met. */
function targetLines(r: PipelineBenchReport, best: ReturnType<typeof bestSettings>): string[] {
  const lines = ["targets (informational)"];
  // One line per target: label, goal, measured, met / NOT MET (null: printed for information, no goal).
  const line = (label: string, goal: string, measured: string, met: boolean | null): void =>
    void lines.push(
      `  ${label.padEnd(52)} ${goal.padEnd(52)} measured ${measured.padEnd(9)} ${met === null ? "" : met ? "met" : "NOT MET"}`,
    );
  const withClickHouse = r.clickhouseAbsent === null;
  if (best.byP99 !== null) {
    const goal = p99Goal(r, best.byP99);
    const p99 = best.byP99.latency.p99;
    line(
      "p99 ingest → WebSocket at half load (best setting)",
      `goal ≤ ${Number(goal.ms.toPrecision(3))} ms (${goal.why})`,
      `${ms(p99)} ms`,
      p99 <= goal.ms,
    );
  }
  if (best.byRate !== null) {
    // The sustained rate (the lower of scored and durable), as the best setting was chosen by.
    const sustained = Math.min(best.byRate.maxPerSecond, best.byRate.durablePerSecond);
    const ratio = sustained / best.byRate.rawPerSecond;
    const goal = withClickHouse ? TARGET_RATIO_VS_RAW_CLICKHOUSE : TARGET_RATIO_VS_RAW;
    const where = withClickHouse ? "with ClickHouse" : "without ClickHouse";
    line(
      "single records vs raw nats.js (best setting)",
      `goal ≥ ${Math.round(goal * 100)} % (${where})`,
      `${(ratio * 100).toFixed(1)} %`,
      ratio >= goal,
    );
    if (withClickHouse)
      line(
        "ClickHouse score rows/s, durable (best setting)",
        `goal ≥ ${TARGET_CLICKHOUSE_ROWS_PER_SECOND / 1000} k rows/s`,
        `${(best.byRate.durablePerSecond / 1000).toFixed(1)} k`,
        best.byRate.durablePerSecond >= TARGET_CLICKHOUSE_ROWS_PER_SECOND,
      );
    const vsNaive = sustained / best.byRate.naive.perSecond;
    if (withClickHouse)
      line(
        "single records vs the naive consumer (best setting)",
        "no goal with ClickHouse (it writes none)",
        `${vsNaive.toFixed(2)}×`,
        null,
      );
    else
      line(
        "single records vs the naive consumer (best setting)",
        `goal ≥ ${TARGET_RATIO_VS_NAIVE}×`,
        `${vsNaive.toFixed(2)}×`,
        vsNaive >= TARGET_RATIO_VS_NAIVE,
      );
  }
  const frames = r.formats
    .filter((f) => f.source === "core NATS" && f.format === "frames" && f.spc === "run")
    .reduce<FormatRow | undefined>((best, f) => (best === undefined || f.readingsPerSecond > best.readingsPerSecond ? f : best), undefined);
  if (frames !== undefined) {
    const rate = frames.readingsPerSecond;
    line(
      `frames, engine alone, SPC as run sets it (best: ${frames.workers ?? "—"} ingest worker${frames.workers === 1 ? "" : "s"})`,
      `goal ≥ ${TARGET_FRAME_READINGS_PER_SECOND / 1e6} M readings/s`,
      `${(rate / 1e6).toFixed(2)} M`,
      rate >= TARGET_FRAME_READINGS_PER_SECOND,
    );
  }
  return lines;
}

/** What ran: the path, the data, the model. */
function headerLines(r: PipelineBenchReport): string[] {
  const lines: string[] = [];
  lines.push(
    isIngestPath(r.engine)
      ? `bench e2e — simulator → NATS (core, ${r.partitions} partitions) → ingest workers (each: its partitions, decode, rolling (W = 64) + SPC + iforest ${r.engine === "ingest" ? "inline" : "on a kernel thread of its own"}, score frames) → ClickHouse (Native) + WebSocket subscriber`
      : "bench e2e — simulator → NATS (core) → sensor job → rolling (W = 64) + SPC + iforest on the worker pool → ClickHouse + WebSocket subscriber",
  );
  if (isIngestPath(r.engine))
    lines.push("  (workers = ingest workers; the main thread only steers: counters, live-server publishes of the frames, alerts)");
  lines.push(
    `data: plant simulator, seed ${r.seed}, ${r.keys} keys, single MessagePack records (as \`linewatch simulate --nats\` sends them); ` +
      `iforest ${r.model.trees} trees, ψ ${r.model.sampleSize}, features ${r.model.features.join(", ")}, trained on ${r.model.rows} rows of seed ${r.seed + 1} ` +
      `(model ${r.model.hash.slice(0, 12)}, ${r.model.trainSeconds.toFixed(1)} s, not timed)`,
  );
  return lines;
}

/** The report as `npm run bench -- e2e` prints it. */
/** The columns of the settings table. */
const SETTING_HEAD = [
  "batch",
  "workers",
  "raw rec/s",
  "max rec/s",
  "durable/s",
  "× raw",
  "shed",
  "scored",
  "CH rows",
  "sink ms",
  "CH s/M",
  "CH cores",
  "half rec/s",
  "p50 ms",
  "p99 ms",
  "max ms",
  "lost",
  "ws drop",
  "→scored p99",
  "→ws p99",
  "flush %",
  "flush max",
];

export function formatPipelineReport(r: PipelineBenchReport): string {
  const lines: string[] = headerLines(r);
  lines.push(`${machineLine(r.machine)}; ${r.loadAverageAfter.toFixed(2)} after`);
  lines.push(
    r.clickhouseAbsent === null
      ? "clickhouse: throw-away clickhouse-server, one database per setting; Outputs writes ml_sensor_data + ml_scores"
      : `clickhouse: ******** ABSENT (${r.clickhouseAbsent}) ******** — the ClickHouse columns show —`,
  );
  lines.push(
    `phases per setting: raw nats.js ${r.phasesMs.raw / 1000} s, sustained maximum ${r.phasesMs.max / 1000} s (credit ${r.inFlight} records), ` +
      `latency ${r.phasesMs.latency / 1000} s open loop at half the sustained maximum (first ${WARM_UP_MS} ms not counted); rates over the last two thirds of a phase`,
  );
  lines.push("");
  const widths = [6, 7, 10, 10, 10, 6, 6, 9, 9, 8, 7, 8, 10, 7, 7, 7, 6, 7, 11, 8, 7, 9];
  const row = (cells: string[]): string => cells.map((c, i) => c.padStart(widths[i])).join(" ");
  lines.push(row(SETTING_HEAD));
  for (const s of r.settings) {
    lines.push(
      row([
        String(s.batch),
        String(s.workers),
        String(Math.round(s.rawPerSecond)),
        String(Math.round(s.maxPerSecond)),
        String(Math.round(s.durablePerSecond)),
        s.ratio.toFixed(3),
        String(s.shed),
        String(s.processed),
        s.clickhouse === null ? "—" : String(s.clickhouse.scoreRows),
        s.clickhouse === null ? "—" : ms(s.clickhouse.sinkMeanMs),
        s.clickhouse === null || !Number.isFinite(s.clickhouse.serverCpuPerMillionRecords)
          ? "—"
          : s.clickhouse.serverCpuPerMillionRecords.toFixed(1),
        s.clickhouse === null || !Number.isFinite(s.clickhouse.serverCores) ? "—" : s.clickhouse.serverCores.toFixed(2),
        String(Math.round(s.halfPerSecond)),
        ms(s.latency.p50),
        ms(s.latency.p99),
        ms(s.latency.max),
        String(s.lost),
        String(s.wsDropped),
        ms(s.toScored.p99),
        ms(s.scoredToWs.p99),
        Number.isFinite(s.flushWait.share) ? (s.flushWait.share * 100).toFixed(0) : "—",
        ms(s.flushWait.maxMs),
      ]),
    );
    for (const n of s.notes) lines.push(`    note: ${n}`);
  }
  lines.push(
    "  raw rec/s: raw nats.js, same publisher and messages, counting subscriber; max rec/s: records the engine scored under credit pacing;\n" +
      "  durable/s: the same phase until its rows were durable in ClickHouse (the latency phase runs at half the lower of the two);",
  );
  lines.push(
    "  scored: records the engine scored in the setting; CH rows: count() FINAL of its ml_scores; sink ms: mean time for a batch to be durable in ClickHouse;",
    "  CH s/M, CH cores: clickhouse-server's CPU seconds per million records (an ml_scores and an ml_sensor_data row each) and its cores, maximum phase until durable;",
  );
  lines.push(
    "  p50/p99/max: publish → WebSocket arrival at half rec/s; →scored: publish → scored on the engine's thread (ingest: its frame handed to the live server on the main thread); →ws: scored → arrival; lost: never arrived;",
  );
  lines.push(
    "  ws drop: messages the live server held back from a slow subscriber; flush %: share of the latency phase the job's consumer loop",
    "  waited handing rows over (Outputs.handOver, called whenever its queue runs dry: it never waits for an insert, only while the",
  );
  lines.push("  ClickHouse sink's memory queue is half full, i.e. back-pressure from ClickHouse), flush max: its longest wait, ms");
  lines.push(...baselineSection(r));
  lines.push("");
  const best = bestSettings(r);
  if (best.byRate !== null) {
    lines.push(
      `best setting by sustained rate: batch ${best.byRate.batch}, ${best.byRate.workers} workers — ${Math.round(Math.min(best.byRate.maxPerSecond, best.byRate.durablePerSecond))} rec/s ` +
        `(${((Math.min(best.byRate.maxPerSecond, best.byRate.durablePerSecond) / best.byRate.rawPerSecond) * 100).toFixed(1)} % of raw nats.js), p99 ${ms(best.byRate.latency.p99)} ms at half of it`,
    );
  }
  if (best.byP99 !== null) {
    lines.push(
      `best setting by p99 at half load: batch ${best.byP99.batch}, ${best.byP99.workers} workers — p99 ${ms(best.byP99.latency.p99)} ms ` +
        `at ${Math.round(best.byP99.halfPerSecond)} rec/s (maximum ${Math.round(best.byP99.maxPerSecond)} rec/s)`,
    );
  }
  lines.push(...formatsSection(r));
  lines.push("");
  lines.push(...targetLines(r, best));
  lines.push("");
  const failures = pipelineFailures(r);
  lines.push(
    `total ${r.seconds.toFixed(1)} s; seed ${r.seed}; ` +
      (r.clickhouseAbsent !== null
        ? "ClickHouse not checked (absent)"
        : failures.length === 0
          ? "ClickHouse holds a score row for every record scored in every setting"
          : `******** ${failures.join(" | ")} ********`),
  );
  return lines.join("\n");
}
