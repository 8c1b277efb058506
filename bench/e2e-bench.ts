/**
 * NATS throughput benchmark (`npm run bench:nats`, `node dist/bench/e2e-bench.js [--smoke] [--seed S] …`):
 * NATS in, rolling (W = 64) + SPC (baseline 100) on the worker pool, scores out, on a throw-away
 * nats-server started by the test kit (connectors/local).
 *
 * Goals: from one seeded set of simulator readings, encoded once before anything is timed as single
 * MessagePack records (as `linewatch simulate --nats` sends them) and as frames of one machine's
 * readings, print side by side in one run how many readings per second
 *   - raw nats.js delivers: a publisher and a subscriber that only counts, same server, same
 *     messages (the ceiling; median of `--raw-runs`), for single records and for frames;
 *   - the engine fed by core NATS delivers (`runNatsJob`: decode, route, kernels, outputs), for
 *     single records and frames, with score publishing off (the input path) and on (the full path;
 *     frames: the first `--scored-frame-total` readings, as a score message is ~30× a frame's bytes
 *     per reading and the whole set would take minutes), with the mean score message size;
 *   - the engine fed by a JetStream pull consumer delivers, scores on (stream loaded beforehand),
 *     unless `--jetstream-singles 0`;
 *   - the engine takes when flooded: single records published open loop, the core source shedding
 *     what its queue cannot hold, processed and shed both reported;
 * then the ratios to the ceiling and the issue's targets (single records ≥ 70 % of raw nats.js,
 * frames ≥ 30 M readings/s) as met / not met.
 *
 * How it stays honest:
 *   - The publisher is a worker thread with its own connection, the same for every variant. Except
 *     in the open-loop row it is paced by credit: at most `--in-flight` readings published and not
 *     yet processed, the consumer writing its progress into shared memory. Core NATS is
 *     at-most-once and the engine's core source sheds under overload, so an unpaced throughput
 *     figure would count records that were dropped; every row reports processed readings (output
 *     rows seen, cross-checked with the job's `recordsIn`) and the job's shed count. The credit
 *     must fit the core source's queue (DEFAULT_NATS_JOB.queuedBytesMax bytes).
 *   - A core subscription is live at the server only some time after `onReady`: the publisher
 *     first sends probe records (a key of their own, left out of every count) until the engine has
 *     processed one, then the timed stream.
 *   - Time runs from the first timed publish (JetStream: from `onReady`, the stream loaded) to the
 *     output row of the last reading, on one clock (`timeOrigin + now()` in both threads).
 *   - Every engine row prints a checksum: Σ mod 2^32 of a hash of each output row's time, value,
 *     rolling mean and z, SPC cusum⁺ and EWMA, and the count of SPC alert events. Per-key order is
 *     all that the statistics depend on, so every engine row over the same readings that shed
 *     nothing must show the same checksum, whatever the format or source; else MISMATCH. Counting
 *     and hashing run inside `observe` on the main thread, a few % of its time, in every engine row.
 *
 * Non-goals: asserting anything about time (targets are informational; only a checksum mismatch or
 * a failed run sets a failing exit code), subscribers to the scores (nats-server drops messages
 * nobody subscribes to), tuning the job (DEFAULT_NATS_JOB as `linewatch run --nats` uses it).
 */
import { performance } from "node:perf_hooks";
import { PassThrough } from "node:stream";
import { pathToFileURL } from "node:url";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { connect, type NatsConnection } from "nats";
import { encodeFrame, encodeMsgpackRecord } from "../connectors/wire/mod.js";
import { OPERATING_MODES, PlantSimulator } from "../connectors/sim/mod.js";
import { DEFAULT_NATS_JOB, runNatsJob, type NatsJobResult } from "../engine/jobs/nats-job.js";
import { ConfigError } from "../engine/core/mod.js";
import type { RecordAnalysis, RowContext } from "../operators/analysis.js";
import { rollingAnalysis } from "../operators/rolling/mod.js";
import { spcAnalysis, DEFAULT_SPC_PARAMS, SPC_COL } from "../operators/spc/mod.js";
import { startNatsServer, type NatsServer } from "../connectors/local/mod.js";
import { benchMachine, clock, deferred, machineLine, sleep, type BenchMachine, type Ratio, type TargetCheck } from "./bench-kit.js";

export interface E2eBenchOptions {
  /** Simulator seed (default {@link DEFAULT_E2E_SEED}). */
  seed?: number;
  /** Readings sent as single MessagePack records (default 400 000; smoke 4 000). */
  singles?: number;
  /** Readings sent as frames (default 4 000 000; smoke 40 000). */
  frameTotal?: number;
  /** Readings per frame (default 1000; smoke 500). */
  frameReadings?: number;
  /**
   * Readings sent as frames in the rows that publish scores (whole frames, the first ones; default
   * 500 000; smoke 20 000): a score message is ~30× a frame's bytes per reading, so these rows are
   * output-bound and the full frame set would take minutes.
   */
  scoredFrameTotal?: number;
  /** Readings sent as single records through JetStream (default 100 000; smoke 2 000); 0: no JetStream rows. */
  jetstreamSingles?: number;
  /** Credit of the paced publisher for single records: records published and not yet processed (default 50 000; smoke 1000). */
  inFlight?: number;
  /** The same for frames, in readings (default 500 000; smoke 10 000). */
  inFlightFrames?: number;
  /** Machines of the simulator, 6 sensors each (default 50). */
  machines?: number;
  /** Runs of each raw nats.js row, the median kept (default 3; smoke 1). */
  rawRuns?: number;
  /** Only the engine rows whose label contains this text (the raw rows always run). */
  only?: string;
  /** Tiny sizes: finishes in seconds. */
  smoke?: boolean;
  progress?: ((line: string) => void) | null;
}

export type Source = "raw nats.js" | "core NATS" | "JetStream";
export type Format = "records" | "frames";

/** One measured row. */
export interface E2eRow {
  label: string;
  source: Source;
  format: Format;
  engine: boolean;
  scores: boolean;
  paced: boolean;
  /** Readings the publisher sent (JetStream: stored). */
  published: number;
  /** Readings that came out of the consumer (engine: output rows; raw: readings counted). */
  processed: number;
  /** Messages shed by the core source's queue (engine), from the job result. */
  shed: number;
  deadLettered: number;
  messages: number;
  payloadBytes: number;
  seconds: number;
  readingsPerSecond: number;
  bytesPerSecond: number;
  /** Engine rows: Σ row hashes mod 2^32 and SPC alert events; null for raw rows. */
  checksum: { hash: number; alerts: number } | null;
  /** Mean bytes of the first score messages (rows that publish scores), else null. */
  scoreBytes: number | null;
  /** "1 run" or "median of N". */
  method: string;
  /** Problems with the row (job recordsIn ≠ rows seen, a stall, dead letters). */
  notes: string[];
}

export interface E2eReport {
  machine: BenchMachine;
  server: string;
  seed: number;
  machines: number;
  keys: number;
  data: PublisherStats;
  inFlight: { records: number; frames: number };
  scoredFrames: { frames: number; readings: number };
  rows: E2eRow[];
  ratios: Ratio[];
  targets: TargetCheck[];
  checksumGroups: Array<{ readings: number; hashes: string[]; agree: boolean }>;
  checksumsAgree: boolean;
  seconds: number;
}

export const DEFAULT_E2E_SEED = 20260107;
export const TARGET_RECORDS_VS_RAW = 0.7;
export const TARGET_FRAME_READINGS_PER_SECOND = 30e6;
const ROLLING_WINDOW = 64;
const SPC_BASELINE = 100;
const SENSORS_PER_MACHINE = 6;
/** Without progress for this long after the publisher finished, a run ends (what is missing was shed). */
const STALL_MS = 2000;
/** A run that takes longer is cut short and reported as such. */
const RUN_TIMEOUT_MS = 60_000;
const PROBE_MACHINE = "benchprobe";
const PROBE_KEY = `${PROBE_MACHINE}/temperature`;

// ---- shared progress between the consumer (main thread) and the publisher (worker) ----

/** Int32 slots of the shared progress array. */
const P_PROCESSED = 0;
const P_PROBE_SEEN = 1;
const P_SLOTS = 2;

/** What the publisher worker holds, after encoding. */
export interface PublisherStats {
  singles: number;
  singlesBytes: number;
  frames: number;
  frameReadings: number;
  frameTotal: number;
  framesBytes: number;
  encodeSeconds: number;
}

interface PublishCommand {
  type: "publish";
  site: string;
  format: Format;
  /** Messages of the format to send: the first `messages` records, or every frame. */
  messages: number;
  mode: "core" | "jetstream";
  paced: boolean;
  inFlight: number;
  probe: boolean;
}

interface PublishDone {
  type: "published";
  /** `timeOrigin + now()` of the first timed publish and after the last one was flushed (or acknowledged). */
  startedAt: number;
  finishedAt: number;
  messages: number;
  readings: number;
  bytes: number;
  probes: number;
  error?: string;
}

// ---- the benchmark ----

interface E2eConfig {
  seed: number;
  singles: number;
  frameTotal: number;
  frameReadings: number;
  scoredFrameTotal: number;
  jetstreamSingles: number;
  inFlightRecords: number;
  inFlightFrames: number;
  machines: number;
  rawRuns: number;
  only: string | undefined;
  smoke: boolean;
}

function resolveConfig(o: E2eBenchOptions): E2eConfig {
  const smoke = o.smoke === true;
  const singles = o.singles ?? (smoke ? 4_000 : 400_000);
  const frameTotal = o.frameTotal ?? (smoke ? 40_000 : 4_000_000);
  const c: E2eConfig = {
    seed: o.seed ?? DEFAULT_E2E_SEED,
    singles,
    frameTotal,
    frameReadings: o.frameReadings ?? (smoke ? 500 : 1000),
    scoredFrameTotal: o.scoredFrameTotal ?? Math.min(frameTotal, smoke ? 20_000 : 500_000),
    jetstreamSingles: o.jetstreamSingles ?? Math.min(singles, smoke ? 2_000 : 100_000),
    inFlightRecords: o.inFlight ?? (smoke ? 1_000 : 50_000),
    inFlightFrames: o.inFlightFrames ?? (smoke ? 10_000 : 500_000),
    machines: o.machines ?? 50,
    rawRuns: o.rawRuns ?? (smoke ? 1 : 3),
    only: o.only,
    smoke,
  };
  if (!Number.isSafeInteger(c.seed)) throw new ConfigError("seed", `must be a safe integer, got ${c.seed}`);
  integerIn("singles", c.singles, 1, 20_000_000);
  integerIn("frameTotal", c.frameTotal, 1, 200_000_000);
  integerIn("frameReadings", c.frameReadings, 1, 65_536);
  integerIn("scoredFrameTotal", c.scoredFrameTotal, 1, c.frameTotal);
  integerIn("rawRuns", c.rawRuns, 1, 99);
  integerIn("jetstreamSingles", c.jetstreamSingles, 0, c.singles);
  integerIn("machines", c.machines, 1, 10_000);
  // The core source's queue is bounded in bytes: the credit (at the largest message sizes here,
  // ~200 bytes a record, ~20 bytes a frame reading) must fit it, or the paced rows would shed by construction.
  integerIn("inFlight", c.inFlightRecords, 1, Math.floor(DEFAULT_NATS_JOB.queuedBytesMax / 200));
  integerIn("inFlightFrames", c.inFlightFrames, 1, Math.floor(DEFAULT_NATS_JOB.queuedBytesMax / 20));
  return c;
}

function integerIn(name: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) throw new ConfigError(name, `must be an integer in ${min}..${max}, got ${v}`);
}

/** Runs every variant and returns the report; prints nothing but `progress` lines. */
export async function runE2eBench(options: E2eBenchOptions = {}): Promise<E2eReport> {
  const started = performance.now();
  const machine: BenchMachine = benchMachine();
  const cfg = resolveConfig(options);
  const say = options.progress ?? ((): void => {});
  const server = await startNatsServer();
  const progress = new Int32Array(new SharedArrayBuffer(P_SLOTS * 4));
  let publisher: Publisher | null = null;
  let nc: NatsConnection | null = null;
  try {
    nc = await connect({ servers: server.url, name: "linewatch-e2e-bench" });
    const serverVersion = `nats-server ${nc.info?.version ?? "?"} on 127.0.0.1:${server.port}`;
    say(
      `${serverVersion}; encoding ${cfg.singles} records and ${cfg.frameTotal} readings as frames of ${cfg.frameReadings} (seed ${cfg.seed})`,
    );
    publisher = await Publisher.start(server.url, cfg, progress);
    const rows = await runVariants(cfg, server, nc, publisher, progress, say);
    const groups = checksumGroups(rows);
    const report: E2eReport = {
      machine,
      server: serverVersion,
      seed: cfg.seed,
      machines: cfg.machines,
      keys: cfg.machines * SENSORS_PER_MACHINE,
      data: publisher.stats,
      inFlight: { records: cfg.inFlightRecords, frames: cfg.inFlightFrames },
      scoredFrames: {
        frames: publisher.framesFor(cfg.scoredFrameTotal),
        readings: publisher.readingsOf("frames", publisher.framesFor(cfg.scoredFrameTotal)),
      },
      rows,
      ratios: computeRatios(rows),
      targets: checkTargets(rows),
      checksumGroups: groups,
      checksumsAgree: groups.every((g) => g.agree),
      seconds: 0,
    };
    report.seconds = (performance.now() - started) / 1000;
    return report;
  } finally {
    await publisher?.close();
    await nc?.close().catch(() => undefined);
    await server.dispose();
  }
}

async function runVariants(
  cfg: E2eConfig,
  server: NatsServer,
  nc: NatsConnection,
  publisher: Publisher,
  progress: Int32Array,
  say: (line: string) => void,
): Promise<E2eRow[]> {
  const rows: E2eRow[] = [];
  const ctx: RunContext = { url: server.url, nc, publisher, progress };
  const frames = publisher.stats.frames;
  const scoredFrames = publisher.framesFor(cfg.scoredFrameTotal);
  const variants: Array<[string, () => Promise<E2eRow>]> = [
    ["raw nats.js, single records", () => measureRaw(ctx, "records", cfg.singles, cfg.inFlightRecords, cfg.rawRuns)],
    [
      "engine ← core NATS, single records, scores off",
      () => measureEngineCore(ctx, "records", cfg.singles, cfg.inFlightRecords, false, true),
    ],
    [
      "engine ← core NATS, single records, scores on",
      () => measureEngineCore(ctx, "records", cfg.singles, cfg.inFlightRecords, true, true),
    ],
    ["raw nats.js, frames", () => measureRaw(ctx, "frames", frames, cfg.inFlightFrames, cfg.rawRuns)],
    ["engine ← core NATS, frames, scores off", () => measureEngineCore(ctx, "frames", frames, cfg.inFlightFrames, false, true)],
    ["engine ← core NATS, frames, scores on", () => measureEngineCore(ctx, "frames", scoredFrames, cfg.inFlightFrames, true, true)],
    ...(cfg.jetstreamSingles > 0
      ? ([
          ["engine ← JetStream, single records, scores on", () => measureEngineJetStream(ctx, "records", cfg.jetstreamSingles)],
          ["engine ← JetStream, frames, scores on", () => measureEngineJetStream(ctx, "frames", scoredFrames)],
        ] as Array<[string, () => Promise<E2eRow>]>)
      : []),
    [
      "engine ← core NATS, single records, scores on, open loop",
      () => measureEngineCore(ctx, "records", cfg.singles, cfg.inFlightRecords, true, false),
    ],
  ];
  for (const [label, measure] of variants) {
    // Raw rows always run: they are what the engine rows are compared with.
    if (cfg.only !== undefined && !label.startsWith("raw") && !label.includes(cfg.only)) continue;
    say(`${label} …`);
    const row = await measure();
    say(
      `  ${(row.readingsPerSecond / 1e6).toFixed(3)} M readings/s, ${row.processed} of ${row.published} processed, shed ${row.shed}` +
        (row.notes.length > 0 ? ` — ${row.notes.join("; ")}` : ""),
    );
    rows.push(row);
  }
  return rows;
}

interface RunContext {
  url: string;
  nc: NatsConnection;
  publisher: Publisher;
  progress: Int32Array;
}

let siteCounter = 0;
/** Each run has a site (and so subjects) of its own: nothing of one run reaches another. */
function nextSite(): string {
  return `e2e${++siteCounter}`;
}

/** Raw nats.js, `runs` times (the median row is kept): the worker publishes, a subscription on the main thread counts. */
async function measureRaw(ctx: RunContext, format: Format, messages: number, inFlight: number, runs: number): Promise<E2eRow> {
  const rows: E2eRow[] = [];
  for (let i = 0; i < runs; i++) rows.push(await measureRawOnce(ctx, format, messages, inFlight));
  rows.sort((a, b) => a.readingsPerSecond - b.readingsPerSecond);
  const median = rows[rows.length >> 1];
  return { ...median, method: runs === 1 ? "1 run" : `median of ${runs}` };
}

async function measureRawOnce(ctx: RunContext, format: Format, messages: number, inFlight: number): Promise<E2eRow> {
  const site = nextSite();
  const expected = ctx.publisher.readingsOf(format, messages);
  const p = ctx.progress;
  p.fill(0);
  let count = 0;
  let readings = 0;
  let bytes = 0;
  let doneAt = NaN;
  let signal: (() => void) | null = null;
  const sub = ctx.nc.subscribe(`lw.${site}.sensor.>`, {
    callback: (_err, msg) => {
      count++;
      bytes += msg.data.length;
      // A frame's reading count is the u32 at offset 8 of its header; a record is one reading.
      readings += format === "frames" ? msg.data[8] | (msg.data[9] << 8) | (msg.data[10] << 16) | (msg.data[11] << 24) : 1;
      p[P_PROCESSED] = readings;
      if (readings === expected) {
        doneAt = clock();
        signal?.();
      }
    },
  });
  await ctx.nc.flush(); // the subscription is live at the server: no probe needed
  p[P_PROBE_SEEN] = 1;
  const published = ctx.publisher.publish({ type: "publish", site, format, messages, mode: "core", paced: true, inFlight, probe: false });
  const end = await awaitEnd(
    () => readings,
    () => doneAt,
    expected,
    published,
    (f) => (signal = f),
  );
  sub.unsubscribe();
  const pub = await published;
  return row({
    label: `raw nats.js pub → sub (counting only), ${format === "records" ? "single records" : "frames"}`,
    source: "raw nats.js",
    format,
    engine: false,
    scores: false,
    paced: true,
    pub,
    processed: readings,
    shed: 0,
    deadLettered: 0,
    messages: count,
    payloadBytes: bytes,
    startedAt: pub.startedAt,
    end,
    checksum: null,
    scoreBytes: null,
    notes: [],
  });
}

/** The engine behind `runNatsJob` on core NATS: paced (credit) or open loop. */
async function measureEngineCore(
  ctx: RunContext,
  format: Format,
  messages: number,
  inFlight: number,
  scores: boolean,
  paced: boolean,
): Promise<E2eRow> {
  const site = nextSite();
  const expected = ctx.publisher.readingsOf(format, messages);
  const meter = new Meter(ctx.progress, expected);
  const sample = scores ? await sampleScores(ctx.nc, site) : null;
  const stop = deferred();
  const ready = deferred();
  const job = runNatsJob({
    ...DEFAULT_NATS_JOB,
    url: ctx.url,
    site,
    analyses: meter.analyses(),
    publishScores: scores,
    summaryIntervalMs: 0,
    console: new PassThrough(),
    stop: stop.promise,
    onReady: () => ready.resolve(),
  });
  job.catch(() => ready.resolve()); // a job that fails before it is ready must not hang the benchmark
  await ready.promise;
  const published = ctx.publisher.publish({ type: "publish", site, format, messages, mode: "core", paced, inFlight, probe: true });
  const end = await awaitEnd(
    () => meter.rows,
    () => meter.doneAt,
    expected,
    published,
    (f) => (meter.onDone = f),
  );
  stop.resolve();
  const result = await job;
  const pub = await published;
  return engineRow(meter, result, pub, end, {
    label: `engine ← core NATS, ${format === "records" ? "single records" : "frames"}, scores ${scores ? "on" : "off"}${paced ? "" : ", open loop"}`,
    source: "core NATS",
    format,
    scores,
    paced,
    startedAt: pub.startedAt,
    scoreBytes: sample?.meanBytes() ?? null,
  });
}

/** The engine behind `runNatsJob` on a JetStream pull consumer; the stream is loaded first, then consumed and timed. */
async function measureEngineJetStream(ctx: RunContext, format: Format, messages: number): Promise<E2eRow> {
  const site = nextSite();
  const stream = `E2E_${site.toUpperCase()}`;
  const jsm = await ctx.nc.jetstreamManager();
  await jsm.streams.add({ name: stream, subjects: [`lw.${site}.sensor.>`] });
  try {
    ctx.progress.fill(0);
    const pub = await ctx.publisher.publish({
      type: "publish",
      site,
      format,
      messages,
      mode: "jetstream",
      paced: false,
      inFlight: 0,
      probe: false,
    });
    const meter = new Meter(ctx.progress, pub.readings);
    const sample = await sampleScores(ctx.nc, site);
    const stop = deferred();
    let readyAt = NaN;
    const ready = deferred();
    const job = runNatsJob({
      ...DEFAULT_NATS_JOB,
      url: ctx.url,
      site,
      stream,
      analyses: meter.analyses(),
      publishScores: true,
      checkpointBucket: `lw-e2e-${site}`,
      summaryIntervalMs: 0,
      console: new PassThrough(),
      stop: stop.promise,
      onReady: () => {
        readyAt = clock();
        ready.resolve();
      },
    });
    job.catch(() => ready.resolve());
    await ready.promise;
    const end = await awaitEnd(
      () => meter.rows,
      () => meter.doneAt,
      pub.readings,
      Promise.resolve(pub),
      (f) => (meter.onDone = f),
    );
    stop.resolve();
    const result = await job;
    return engineRow(meter, result, pub, end, {
      label: `engine ← JetStream (loaded first), ${format === "records" ? "single records" : "frames"}, scores on`,
      source: "JetStream",
      format,
      scores: true,
      paced: false,
      startedAt: readyAt,
      scoreBytes: sample.meanBytes(),
    });
  } finally {
    await jsm.streams.delete(stream).catch(() => undefined);
  }
}

interface RunEnd {
  /** `clock()` of the last reading's output (or of the last progress seen, when the run stalled). */
  at: number;
  stalled: boolean;
  timedOut: boolean;
}

/**
 * Waits until `count()` reaches `expected` (then the end is `doneAt()`, taken when it happened), or
 * the publisher is done and nothing moved for {@link STALL_MS} (what is missing was shed), or
 * {@link RUN_TIMEOUT_MS} passed.
 */
async function awaitEnd(
  count: () => number,
  doneAt: () => number,
  expected: number,
  published: Promise<PublishDone>,
  onDone: (f: () => void) => void,
): Promise<RunEnd> {
  let publisherDone = false;
  void published.then(
    () => (publisherDone = true),
    () => (publisherDone = true),
  );
  const t0 = clock();
  let last = -1;
  let lastChange = t0;
  for (;;) {
    if (count() >= expected) return { at: doneAt(), stalled: false, timedOut: false };
    const now = clock();
    if (count() !== last) {
      last = count();
      lastChange = now;
    }
    if (publisherDone && now - lastChange > STALL_MS) return { at: lastChange, stalled: true, timedOut: false };
    if (now - t0 > RUN_TIMEOUT_MS) return { at: now, stalled: false, timedOut: true };
    // Woken at once when the count is reached; else every 10 ms to watch for a stall.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 10);
      onDone(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

// ---- counting and checksumming the engine's output rows ----

const HASH_F64 = new Float64Array(1);
const HASH_U32 = new Uint32Array(HASH_F64.buffer);

/** Mixes the bits of one double into h (non-finite values as 0: NaN payloads need not be canonical). */
function mix(h: number, x: number): number {
  HASH_F64[0] = x - x === 0 ? x : 0;
  h = Math.imul(h ^ HASH_U32[0], 0x9e3779b1);
  h = Math.imul(h ^ HASH_U32[1], 0x85ebca6b);
  return h ^ (h >>> 15);
}

/**
 * Wraps the analyses' `observe` to count output rows (one per processed reading), publish the
 * count to the publisher's credit, and hash each row. The rolling row is seen first, then the SPC
 * row of the same reading, which completes the row's hash.
 */
class Meter {
  rows = 0;
  probes = 0;
  hash = 0;
  alerts = 0;
  doneAt = NaN;
  onDone: (() => void) | null = null;
  private rowHash = 0;

  constructor(
    private readonly progress: Int32Array,
    readonly expected: number,
  ) {
    progress.fill(0);
  }

  /** rolling + SPC, as `linewatch run --analysis rolling,spc` builds them, with observe wrapped. */
  analyses(): RecordAnalysis[] {
    const rolling = rollingAnalysis({ window: { kind: "count", records: ROLLING_WINDOW }, alpha: 0.1, timeScale: 1000 });
    const spc = spcAnalysis({
      params: { ...DEFAULT_SPC_PARAMS, baselineN: SPC_BASELINE },
      ewmaField: "spc_ewma",
      keyParts: ["machine_id", "sensor_type"],
      onAlert: () => this.alerts++,
    });
    return [
      {
        ...rolling,
        observe: (row, c, payload) => {
          rolling.observe?.(row, c, payload);
          this.rowHash = mix(mix(mix(mix(0x2545f491, c.time), c.value), row[1]), row[8]);
        },
      },
      {
        ...spc,
        observe: (row, c, payload) => {
          spc.observe?.(row, c, payload);
          this.count(row, c);
        },
      },
    ];
  }

  private count(row: Float64Array, c: RowContext): void {
    if (c.key === PROBE_KEY) {
      this.probes++;
      this.progress[P_PROBE_SEEN] = 1;
      return;
    }
    this.hash = (this.hash + mix(mix(this.rowHash, row[SPC_COL.cusum_pos]), row[SPC_COL.ewma])) >>> 0;
    this.progress[P_PROCESSED] = ++this.rows;
    if (this.rows === this.expected) {
      this.doneAt = clock();
      this.onDone?.();
    }
  }
}

function engineRow(
  meter: Meter,
  result: NatsJobResult,
  pub: PublishDone,
  end: RunEnd,
  o: { label: string; source: Source; format: Format; scores: boolean; paced: boolean; startedAt: number; scoreBytes: number | null },
): E2eRow {
  const notes: string[] = [];
  const processed = result.recordsIn - meter.probes;
  if (processed !== meter.rows) notes.push(`job recordsIn − probes = ${processed} but ${meter.rows} output rows seen`);
  if (result.input.deadLettered > 0) notes.push(`${result.input.deadLettered} dead-lettered: ${JSON.stringify(result.input.byReason)}`);
  if (result.duplicates > 0) notes.push(`${result.duplicates} redeliveries skipped`);
  const complete = meter.rows === pub.readings && result.shed === 0;
  return row({
    label: o.label,
    source: o.source,
    format: o.format,
    engine: true,
    scores: o.scores,
    paced: o.paced,
    pub,
    processed: meter.rows,
    shed: result.shed,
    deadLettered: result.input.deadLettered,
    messages: pub.messages,
    payloadBytes: pub.bytes * (meter.rows / Math.max(1, pub.readings)),
    startedAt: o.startedAt,
    end,
    checksum: complete ? { hash: meter.hash, alerts: meter.alerts } : null,
    scoreBytes: o.scoreBytes,
    notes,
  });
}

/** Score messages sampled to size them: the first few of a run (the server stops delivering after them). */
const SCORE_SAMPLE = 200;

async function sampleScores(nc: NatsConnection, site: string): Promise<{ meanBytes(): number | null }> {
  let n = 0;
  let bytes = 0;
  nc.subscribe(`lw.${site}.score.>`, {
    max: SCORE_SAMPLE,
    callback: (_err, msg) => {
      n++;
      bytes += msg.data.length;
    },
  });
  await nc.flush();
  return { meanBytes: () => (n === 0 ? null : bytes / n) };
}

function row(o: {
  label: string;
  source: Source;
  format: Format;
  engine: boolean;
  scores: boolean;
  paced: boolean;
  pub: PublishDone;
  processed: number;
  shed: number;
  deadLettered: number;
  messages: number;
  payloadBytes: number;
  startedAt: number;
  end: RunEnd;
  checksum: { hash: number; alerts: number } | null;
  scoreBytes: number | null;
  notes: string[];
}): E2eRow {
  const seconds = Math.max(1e-6, (o.end.at - o.startedAt) / 1000);
  const notes = [...o.notes];
  if (o.pub.error !== undefined) notes.push(`publisher: ${o.pub.error}`);
  if (o.end.timedOut) notes.push(`cut short after ${RUN_TIMEOUT_MS / 1000} s`);
  if (o.end.stalled) {
    notes.push(
      `${o.pub.readings - o.processed} readings never came out (nothing moved for ${STALL_MS / 1000} s after the last publish); ` +
        `the core source counted ${o.shed} messages shed`,
    );
  }
  return {
    label: o.label,
    source: o.source,
    format: o.format,
    engine: o.engine,
    scores: o.scores,
    paced: o.paced,
    published: o.pub.readings,
    processed: o.processed,
    shed: o.shed,
    deadLettered: o.deadLettered,
    messages: o.messages,
    payloadBytes: o.payloadBytes,
    seconds,
    readingsPerSecond: o.processed / seconds,
    bytesPerSecond: o.payloadBytes / seconds,
    checksum: o.checksum,
    scoreBytes: o.scoreBytes,
    method: "1 run",
    notes,
  };
}

// ---- ratios, targets, checksums ----

function find(rows: E2eRow[], source: Source, format: Format, engine: boolean, scores: boolean, paced = true): E2eRow | undefined {
  return rows.find(
    (r) => r.source === source && r.format === format && r.engine === engine && (!engine || r.scores === scores) && r.paced === paced,
  );
}

function computeRatios(rows: E2eRow[]): Ratio[] {
  const out: Ratio[] = [];
  const add = (label: string, a: E2eRow | undefined, b: E2eRow | undefined): void => {
    if (a !== undefined && b !== undefined) out.push({ label, value: a.readingsPerSecond / b.readingsPerSecond });
  };
  const rawRecords = find(rows, "raw nats.js", "records", false, false);
  const rawFrames = find(rows, "raw nats.js", "frames", false, false);
  add("engine, records, scores off / raw nats.js records", find(rows, "core NATS", "records", true, false), rawRecords);
  add("engine, records, scores on / raw nats.js records", find(rows, "core NATS", "records", true, true), rawRecords);
  add("engine, frames, scores off / raw nats.js frames", find(rows, "core NATS", "frames", true, false), rawFrames);
  add("engine, frames, scores on / raw nats.js frames", find(rows, "core NATS", "frames", true, true), rawFrames);
  add(
    "engine, frames / engine, records (scores on)",
    find(rows, "core NATS", "frames", true, true),
    find(rows, "core NATS", "records", true, true),
  );
  add(
    "engine ← JetStream / engine ← core NATS, records (scores on)",
    find(rows, "JetStream", "records", true, true, false),
    find(rows, "core NATS", "records", true, true),
  );
  add(
    "engine ← JetStream / engine ← core NATS, frames (scores on)",
    find(rows, "JetStream", "frames", true, true, false),
    find(rows, "core NATS", "frames", true, true),
  );
  return out;
}

function checkTargets(rows: E2eRow[]): TargetCheck[] {
  const out: TargetCheck[] = [];
  const raw = find(rows, "raw nats.js", "records", false, false);
  for (const scores of [false, true]) {
    const e = find(rows, "core NATS", "records", true, scores);
    if (raw === undefined || e === undefined) continue;
    const ratio = e.readingsPerSecond / raw.readingsPerSecond;
    out.push({
      label: `single records, scores ${scores ? "on" : "off"}, vs raw nats.js`,
      goal: `≥ ${(TARGET_RECORDS_VS_RAW * 100).toFixed(0)} %`,
      measured: `${(ratio * 100).toFixed(1)} %`,
      met: ratio >= TARGET_RECORDS_VS_RAW,
    });
  }
  for (const scores of [false, true]) {
    const e = find(rows, "core NATS", "frames", true, scores);
    if (e === undefined) continue;
    out.push({
      label: `frames, scores ${scores ? "on" : "off"}`,
      goal: `≥ ${TARGET_FRAME_READINGS_PER_SECOND / 1e6} M readings/s`,
      measured: `${(e.readingsPerSecond / 1e6).toFixed(2)} M readings/s`,
      met: e.readingsPerSecond >= TARGET_FRAME_READINGS_PER_SECOND,
    });
  }
  return out;
}

/** Engine rows over the same readings that shed nothing must agree. */
function checksumGroups(rows: E2eRow[]): Array<{ readings: number; hashes: string[]; agree: boolean }> {
  const by = new Map<number, string[]>();
  for (const r of rows) {
    if (r.checksum === null) continue;
    const list = by.get(r.processed) ?? [];
    list.push(checksumText(r.checksum));
    by.set(r.processed, list);
  }
  return [...by].map(([readings, hashes]) => ({ readings, hashes, agree: hashes.every((h) => h === hashes[0]) }));
}

function checksumText(c: { hash: number; alerts: number }): string {
  return `${c.hash.toString(16).padStart(8, "0")}/${c.alerts}`;
}

// ---- report ----

const LABEL_WIDTH = 62;

/** Rows that must process every reading (all but the open-loop row) and did not. */
export function incompleteRows(r: E2eReport): E2eRow[] {
  return r.rows.filter((x) => (x.paced || x.source === "JetStream") && x.processed !== x.published);
}

/** The report as `npm run bench:e2e` prints it. */
export function formatE2eReport(r: E2eReport): string {
  const lines: string[] = [];
  const d = r.data;
  lines.push(
    `linewatch end-to-end benchmark — NATS in → rolling (W = ${ROLLING_WINDOW}) + SPC (baseline ${SPC_BASELINE}) on the worker pool → scores out`,
  );
  lines.push(
    `data: plant simulator, seed ${r.seed}, ${r.machines} machines × ${SENSORS_PER_MACHINE} sensors = ${r.keys} keys; encoded once before timing ` +
      `(${d.encodeSeconds.toFixed(1)} s): ${d.singles} single MessagePack records (${(d.singlesBytes / d.singles).toFixed(1)} bytes each), ` +
      `${d.frameTotal} readings in ${d.frames} frames of ≤ ${d.frameReadings} readings of one machine (${(d.framesBytes / d.frameTotal).toFixed(1)} bytes/reading); ` +
      `frame rows with scores on send the first ${r.scoredFrames.frames} frames (${r.scoredFrames.readings} readings)`,
  );
  lines.push(`server: ${r.server} (throw-away, JetStream store in a temporary directory)`);
  lines.push(machineLine(r.machine));
  lines.push(
    `publisher: a worker thread with its own connection; paced rows keep ≤ ${r.inFlight.records} records / ${r.inFlight.frames} readings ` +
      `in frames published and not yet processed; engine: runNatsJob with DEFAULT_NATS_JOB (${DEFAULT_NATS_JOB.workers} workers, ` +
      `${DEFAULT_NATS_JOB.groups} groups, batch ${DEFAULT_NATS_JOB.batchRecordsMax}, core queue ${DEFAULT_NATS_JOB.queuedBytesMax} bytes)`,
  );
  lines.push("");
  const head = ["M readings/s", "in MB/s", "× raw", "processed", "published", "shed", "seconds", "score B", "out MB/s"];
  const widths = [12, 7, 6, 10, 10, 8, 7, 7, 8];
  const cells = (values: string[]): string => values.map((v, i) => v.padStart(widths[i])).join(" ");
  lines.push(`${"variant".padEnd(LABEL_WIDTH + 2)} ${cells(head)}  method        checksum/alerts`);
  for (const row of r.rows) {
    const raw = r.rows.find((x) => !x.engine && x.format === row.format);
    lines.push(
      `  ${row.label.padEnd(LABEL_WIDTH)} ${cells([
        (row.readingsPerSecond / 1e6).toFixed(3),
        (row.bytesPerSecond / 1e6).toFixed(1),
        raw === undefined ? "—" : (row.readingsPerSecond / raw.readingsPerSecond).toFixed(3),
        String(row.processed),
        String(row.published),
        String(row.shed),
        row.seconds.toFixed(2),
        row.scoreBytes === null ? "—" : row.scoreBytes.toFixed(0),
        row.scoreBytes === null ? "—" : ((row.readingsPerSecond * row.scoreBytes) / 1e6).toFixed(1),
      ])}  ${row.method.padEnd(12)}  ${row.checksum === null ? (row.engine ? "— (not every reading processed)" : "—") : checksumText(row.checksum)}`,
    );
    for (const note of row.notes) lines.push(`      note: ${note}`);
  }
  lines.push("  in MB/s: payload bytes of the processed input messages; score B: mean bytes of a score message (one per reading);");
  lines.push(
    "  out MB/s: score bytes published; shed: messages the core source's queue dropped (job result); × raw: vs raw nats.js of the same format",
  );
  lines.push("");
  lines.push("ratios");
  for (const q of r.ratios) lines.push(`  ${q.label.padEnd(64)} ${q.value.toFixed(2).padStart(7)}×`);
  lines.push("");
  lines.push("checksums (Σ row hash mod 2^32 / SPC alert events), per set of readings; rows that shed are left out");
  for (const g of r.checksumGroups) {
    lines.push(
      `  ${String(g.readings).padStart(9)} readings: ${g.hashes.length} rows, ${g.agree ? `all ${g.hashes[0]}` : `******** MISMATCH ******** ${g.hashes.join(", ")}`}`,
    );
  }
  lines.push("");
  lines.push("targets (informational)");
  for (const t of r.targets)
    lines.push(`  ${t.label.padEnd(44)} goal ${t.goal.padEnd(22)} measured ${t.measured.padEnd(24)} ${t.met ? "met" : "NOT MET"}`);
  lines.push("");
  const failed = incompleteRows(r);
  lines.push(
    `total ${r.seconds.toFixed(1)} s; checksum ${r.checksumsAgree ? "ok" : "MISMATCH"}` +
      (failed.length > 0
        ? `; ******** ${failed.length} row(s) did not process every reading: ${failed.map((x) => x.label).join("; ")}`
        : "; every paced and JetStream row processed every reading"),
  );
  return lines.join("\n");
}

// ---- the publisher: a worker thread holding the encoded messages ----

/** The main thread's handle on the publisher worker. */
class Publisher {
  private pending: ((done: PublishDone) => void) | null = null;

  private constructor(
    private readonly worker: Worker,
    readonly stats: PublisherStats,
    private readonly frameReadingCounts: Uint32Array,
  ) {
    worker.on("message", (m: PublishDone) => this.settle(m));
    // A worker that dies mid-run ends that run (reported as the row's publisher error), not the process.
    worker.on("error", (e) => this.settle(failedPublish(String(e))));
    worker.on("exit", (code) => this.settle(failedPublish(`publisher worker exited with code ${code}`)));
  }

  static async start(url: string, cfg: E2eConfig, progress: Int32Array): Promise<Publisher> {
    const worker = new Worker(new URL(import.meta.url), {
      workerData: { role: PUBLISHER_ROLE, url, cfg, progress: progress.buffer },
    });
    const ready = await new Promise<{ stats: PublisherStats; frameReadingCounts: Uint32Array }>((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
      worker.once("exit", (code) => reject(new Error(`publisher worker exited with code ${code} before it was ready`)));
    });
    worker.removeAllListeners("exit");
    worker.removeAllListeners("error");
    return new Publisher(worker, ready.stats, ready.frameReadingCounts);
  }

  private settle(done: PublishDone): void {
    const p = this.pending;
    this.pending = null;
    p?.(done);
  }

  /** The fewest first frames holding at least `readings` readings (all when there are fewer). */
  framesFor(readings: number): number {
    let n = 0;
    let i = 0;
    while (i < this.frameReadingCounts.length && n < readings) n += this.frameReadingCounts[i++];
    return i;
  }

  /** Readings in the first `messages` messages of a format. */
  readingsOf(format: Format, messages: number): number {
    if (format === "records") return messages;
    let n = 0;
    for (let i = 0; i < messages; i++) n += this.frameReadingCounts[i];
    return n;
  }

  publish(command: PublishCommand): Promise<PublishDone> {
    if (this.pending !== null) throw new Error("one publish at a time");
    const done = new Promise<PublishDone>((resolve) => (this.pending = resolve));
    this.worker.postMessage(command);
    return done;
  }

  async close(): Promise<void> {
    this.worker.postMessage({ type: "close" });
    await new Promise((resolve) => {
      const timer = setTimeout(() => void this.worker.terminate().then(resolve), 5000);
      this.worker.once("exit", () => {
        clearTimeout(timer);
        resolve(undefined);
      });
    });
  }
}

const PUBLISHER_ROLE = "linewatch-e2e-publisher";

function failedPublish(error: string): PublishDone {
  return { type: "published", startedAt: NaN, finishedAt: NaN, messages: 0, readings: 0, bytes: 0, probes: 0, error };
}

/** Messages as encoded by the worker: one buffer, offsets, and what each message is. */
interface Encoded {
  bytes: Uint8Array;
  offsets: Float64Array;
  /** Records: the key index (subject machine.sensor); frames: the machine index (subject machine). */
  subjectIndex: Uint32Array;
  readings: Uint32Array;
  count: number;
}

/** Generates and encodes the readings; the singles are the first `singles` readings, the frames the first `frameTotal`. */
function encodeData(cfg: E2eConfig): { records: Encoded; frames: Encoded; machines: string[]; keys: Array<[string, string]> } {
  const sim = new PlantSimulator({ seed: cfg.seed, machines: cfg.machines, rateHz: 10 });
  const simKeys = sim.keys();
  const machines = [...new Set(simKeys.map((k) => k.machine_id))];
  const machineOf = simKeys.map((k) => machines.indexOf(k.machine_id));
  const sensorSlot = simKeys.map((k) => simKeys.filter((q) => q.machine_id === k.machine_id).indexOf(k));
  const records = new EncodedBuilder();
  const frames = new EncodedBuilder();
  const open = machines.map(() => ({ keyIndex: [] as number[], times: [] as number[], values: [] as number[] }));
  const frameKeys = machines.map((m) => simKeys.filter((k) => k.machine_id === m).map((k) => `${m}.${k.sensor_type}`));
  const flush = (mi: number): void => {
    const f = open[mi];
    if (f.values.length === 0) return;
    frames.add(encodeFrame({ keys: frameKeys[mi], keyIndex: f.keyIndex, times: f.times, values: f.values }), mi, f.values.length);
    open[mi] = { keyIndex: [], times: [], values: [] };
  };
  const total = Math.max(cfg.singles, cfg.frameTotal);
  for (let done = 0; done < total; ) {
    const c = sim.nextColumns(Math.min(65_536, total - done));
    for (let i = 0; i < c.length; i++, done++) {
      const k = simKeys[c.keyIndex[i]];
      if (done < cfg.singles) {
        // As connectors/sim/nats-publisher.ts sends them: epoch-ms time, source field names.
        records.add(
          encodeMsgpackRecord({
            machine_id: k.machine_id,
            sensor_type: k.sensor_type,
            timestamp: c.times[i],
            sensor_value: c.values[i],
            sensor_unit: k.sensor_unit,
            operating_mode: OPERATING_MODES[c.modes[i]],
          }),
          c.keyIndex[i],
          1,
        );
      }
      if (done < cfg.frameTotal) {
        const mi = machineOf[c.keyIndex[i]];
        const f = open[mi];
        f.keyIndex.push(sensorSlot[c.keyIndex[i]]);
        f.times.push(c.times[i]);
        f.values.push(c.values[i]);
        if (f.values.length === cfg.frameReadings) flush(mi);
      }
    }
  }
  for (let mi = 0; mi < machines.length; mi++) flush(mi);
  return { records: records.finish(), frames: frames.finish(), machines, keys: simKeys.map((k) => [k.machine_id, k.sensor_type]) };
}

class EncodedBuilder {
  private chunks: Uint8Array[] = [];
  private offsets: number[] = [0];
  private subjects: number[] = [];
  private readings: number[] = [];
  private size = 0;

  add(message: Uint8Array, subjectIndex: number, readings: number): void {
    this.chunks.push(message);
    this.size += message.length;
    this.offsets.push(this.size);
    this.subjects.push(subjectIndex);
    this.readings.push(readings);
  }

  finish(): Encoded {
    // One buffer, 8-aligned messages are not needed: the consumer receives copies from the socket.
    const bytes = new Uint8Array(this.size);
    for (let i = 0; i < this.chunks.length; i++) bytes.set(this.chunks[i], this.offsets[i]);
    this.chunks = [];
    return {
      bytes,
      offsets: Float64Array.from(this.offsets),
      subjectIndex: Uint32Array.from(this.subjects),
      readings: Uint32Array.from(this.readings),
      count: this.subjects.length,
    };
  }
}

/** The worker's side: encode, report, then publish on command until told to close. */
async function publisherMain(data: { url: string; cfg: E2eConfig; progress: SharedArrayBuffer }): Promise<void> {
  const port = parentPort;
  if (port === null) return;
  const t0 = performance.now();
  const enc = encodeData(data.cfg);
  const stats: PublisherStats = {
    singles: enc.records.count,
    singlesBytes: enc.records.bytes.length,
    frames: enc.frames.count,
    frameReadings: data.cfg.frameReadings,
    frameTotal: enc.frames.readings.reduce((a, b) => a + b, 0),
    framesBytes: enc.frames.bytes.length,
    encodeSeconds: (performance.now() - t0) / 1000,
  };
  const nc = await connect({ servers: data.url, name: "linewatch-e2e-publisher" });
  const progress = new Int32Array(data.progress);
  port.postMessage({ stats, frameReadingCounts: enc.frames.readings });
  port.on("message", (cmd: PublishCommand | { type: "close" }) => {
    if (cmd.type === "close") {
      void nc.close().finally(() => port.close());
      return;
    }
    publishRun(nc, enc, cmd, progress).then(
      (done) => port.postMessage(done),
      (e: unknown) => port.postMessage(failedPublish(String(e))),
    );
  });
}

/** Yield to the event loop after this many payload bytes, so the socket drains while publishing. */
const YIELD_BYTES = 256 * 1024;
/** JetStream publishes awaiting their acknowledgement at once (as the simulator publisher's default). */
const JETSTREAM_IN_FLIGHT = 1024;

async function publishRun(
  nc: NatsConnection,
  enc: { records: Encoded; frames: Encoded; machines: string[]; keys: Array<[string, string]> },
  cmd: PublishCommand,
  progress: Int32Array,
): Promise<PublishDone> {
  const e = cmd.format === "records" ? enc.records : enc.frames;
  const subjects =
    cmd.format === "records"
      ? enc.keys.map(([m, s]) => `lw.${cmd.site}.sensor.${m}.${s}`)
      : enc.machines.map((m) => `lw.${cmd.site}.sensor.${m}`);
  const probes = cmd.probe ? await sendProbes(nc, cmd.site, progress) : 0;
  const n = Math.min(cmd.messages, e.count);
  const js = nc.jetstream();
  const acks: Array<Promise<unknown>> = [];
  let readings = 0;
  let bytes = 0;
  let sinceYield = 0;
  const startedAt = clock();
  for (let i = 0; i < n; i++) {
    const r = e.readings[i];
    // Credit: wait while more than `inFlight` readings are published and not yet processed.
    if (cmd.paced) while (readings + r - Atomics.load(progress, P_PROCESSED) > cmd.inFlight && readings > 0) await sleep(1);
    const payload = e.bytes.subarray(e.offsets[i], e.offsets[i + 1]);
    if (cmd.mode === "jetstream") {
      acks.push(js.publish(subjects[e.subjectIndex[i]], payload));
      if (acks.length >= JETSTREAM_IN_FLIGHT) await Promise.all(acks.splice(0));
    } else nc.publish(subjects[e.subjectIndex[i]], payload);
    readings += r;
    bytes += payload.length;
    sinceYield += payload.length;
    if (sinceYield >= YIELD_BYTES) {
      sinceYield = 0;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  await Promise.all(acks);
  await nc.flush();
  return { type: "published", startedAt, finishedAt: clock(), messages: n, readings, bytes, probes };
}

/** Probe records until the consumer has processed one: then its subscription is live at the server. */
async function sendProbes(nc: NatsConnection, site: string, progress: Int32Array): Promise<number> {
  const bytes = encodeMsgpackRecord({
    machine_id: PROBE_MACHINE,
    sensor_type: "temperature",
    timestamp: 0,
    sensor_value: 0,
    sensor_unit: "C",
    operating_mode: "running",
  });
  const deadline = clock() + 10_000;
  let sent = 0;
  while (Atomics.load(progress, P_PROBE_SEEN) === 0) {
    if (clock() > deadline) throw new Error("the consumer processed no probe within 10 s");
    nc.publish(`lw.${site}.sensor.${PROBE_MACHINE}.temperature`, bytes);
    sent++;
    await nc.flush();
    await sleep(5);
  }
  return sent;
}

// ---- run as a program ----

async function main(): Promise<void> {
  const { Command } = await import("commander");
  const { integerOption } = await import("../engine/cli/options.js");
  const program = new Command("e2e-bench")
    .description(
      "End to end: raw nats.js vs the engine fed by core NATS and JetStream, single records and frames, on a throw-away nats-server.",
    )
    .option("--smoke", "tiny sizes: finishes in seconds")
    .option("--seed <n>", "simulator seed", integerOption("--seed", 0, Number.MAX_SAFE_INTEGER), DEFAULT_E2E_SEED)
    .option("--singles <n>", "readings sent as single records (default 400000; smoke 4000)", integerOption("--singles", 1, 20_000_000))
    .option("--frame-total <n>", "readings sent as frames (default 4000000; smoke 40000)", integerOption("--frame-total", 1, 200_000_000))
    .option("--frame-readings <n>", "readings per frame (default 1000; smoke 500)", integerOption("--frame-readings", 1, 65_536))
    .option(
      "--scored-frame-total <n>",
      "readings sent as frames in the rows that publish scores (default 500000; smoke 20000)",
      integerOption("--scored-frame-total", 1, 200_000_000),
    )
    .option(
      "--jetstream-singles <n>",
      "readings sent as records through JetStream; 0: no JetStream rows (default 100000; smoke 2000)",
      integerOption("--jetstream-singles", 0, 20_000_000),
    )
    .option(
      "--in-flight <n>",
      "credit of the paced publisher, single records (default 50000; smoke 1000)",
      integerOption("--in-flight", 1, 100_000_000),
    )
    .option(
      "--in-flight-frames <n>",
      "credit of the paced publisher, readings in frames (default 500000; smoke 10000)",
      integerOption("--in-flight-frames", 1, 1_000_000_000),
    )
    .option("--machines <n>", "simulated machines, 6 sensors each", integerOption("--machines", 1, 10_000), 50)
    .option("--raw-runs <n>", "runs of each raw nats.js row, median kept (default 3; smoke 1)", integerOption("--raw-runs", 1, 99))
    .option("--only <text>", "only the engine rows whose progress label contains text (raw rows always run)")
    .option("--json", "print the report as JSON");
  program.parse(process.argv);
  const f = program.opts<{
    smoke?: boolean;
    seed: number;
    singles?: number;
    frameTotal?: number;
    frameReadings?: number;
    scoredFrameTotal?: number;
    jetstreamSingles?: number;
    inFlight?: number;
    inFlightFrames?: number;
    machines: number;
    rawRuns?: number;
    only?: string;
    json?: boolean;
  }>();
  const report = await runE2eBench({
    smoke: f.smoke,
    seed: f.seed,
    singles: f.singles,
    frameTotal: f.frameTotal,
    frameReadings: f.frameReadings,
    scoredFrameTotal: f.scoredFrameTotal,
    jetstreamSingles: f.jetstreamSingles,
    inFlight: f.inFlight,
    inFlightFrames: f.inFlightFrames,
    machines: f.machines,
    rawRuns: f.rawRuns,
    only: f.only,
    progress: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`${f.json ? JSON.stringify(report, null, 2) : formatE2eReport(report)}\n`);
  process.exitCode = report.checksumsAgree && incompleteRows(report).length === 0 ? 0 : 1;
}

if (!isMainThread && (workerData as { role?: string } | null)?.role === PUBLISHER_ROLE) {
  void publisherMain(workerData as { url: string; cfg: E2eConfig; progress: SharedArrayBuffer });
} else if (isMainThread && process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: unknown) => {
    process.stderr.write(`e2e-bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
}
