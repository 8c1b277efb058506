/**
 * The two ways `bench e2e` can run linewatch on core NATS, behind one face:
 * - `ingest`: ingest workers owning partitions (engine/jobs/ingest/), kernels inline in each,
 *   score frames to NATS and one frame per machine per batch to the live server; the main thread
 *   only steers. The nats-server maps the site's sensor subject into {@link BENCH_PARTITIONS}
 *   partitions (see {@link partitionMappings}).
 *   With ClickHouse, each worker encodes its rows as Native blocks for the main thread's sink.
 * - `ingest+pool`: the same, each ingest worker handing its kernels to a pool thread of its own
 *   (the alternative to inline kernels, measured side by side).
 * - `pool`: the sensor job (`runNatsJob`) on the main thread with kernels on the worker pool,
 *   row objects to ClickHouse and one message per record to the live server (the path before
 *   ingest workers, kept for comparison).
 * With `jetstream`, either path consumes a JetStream stream whose subjects the server partitions as
 * above: the ingest workers a durable pull consumer per partition each owns, the sensor job all
 * {@link BENCH_PARTITIONS} partitions' consumers on its main thread.
 */
import { PassThrough } from "node:stream";
import { ScoreFrameMessage } from "../connectors/live/mod.js";
import type { Outputs } from "../engine/jobs/mod.js";
import { DEFAULT_NATS_JOB, runNatsJob, type NatsJobResult } from "../engine/jobs/mod.js";
import { type AnalysisSpec, DEFAULT_INGEST_JOB, IngestJob, type IngestJetStream } from "../engine/jobs/mod.js";
import type { RecordAnalysis } from "../operators/mod.js";
import type { IsolationForestModel } from "../operators/iforest/mod.js";
import { DEFAULT_SPC_PARAMS } from "../operators/spc/mod.js";
import { deferred } from "./bench-kit.js";

export type EnginePath = "ingest" | "ingest+pool" | "pool";

/** Paths whose engines are ingest workers (and need the server's partition mapping). */
export function isIngestPath(path: EnginePath): boolean {
  return path !== "pool";
}

/** Partitions of the bench's subject mapping: more than the most ingest workers swept, so each worker owns several. */
export const BENCH_PARTITIONS = 8;

/** nats-server `mappings` putting each site's readings (single records, and frames of one machine) into partitions by machine. */
export function partitionMappings(sites: readonly string[]): string {
  const lines = sites.flatMap((s) => [
    `  "lw.${s}.sensor.*.*": "lw.${s}.p.{{partition(${BENCH_PARTITIONS},1)}}.sensor.{{wildcard(1)}}.{{wildcard(2)}}"`,
    `  "lw.${s}.sensor.*": "lw.${s}.p.{{partition(${BENCH_PARTITIONS},1)}}.sensor.{{wildcard(1)}}"`,
  ]);
  return `mappings = {\n${lines.join("\n")}\n}\n`;
}

export interface EngineSetting {
  url: string;
  site: string;
  batch: number;
  workers: number;
  /** rolling (W) + SPC + iforest, as the pool path builds them (ingest workers rebuild them from `specs`). */
  analyses: RecordAnalysis[];
  specs: AnalysisSpec[];
  outputs: Outputs | null;
  /** Ingest path: publish score frames on NATS (default true; the "engine alone" rows publish none). */
  scoreFrames?: boolean;
  /** Told the count of records scored so far (ingest: polled from the workers' counters). */
  onScoredCount?: (n: number) => void;
  /**
   * Ingest path: told each score frame as the main thread hands it to the live server (before the
   * publish), so the bench can split publish → WebSocket there: worker and thread hop, then the
   * live server and the subscriber's socket.
   */
  onLiveFrame?: (frame: Uint8Array) => void;
  /** Consume this JetStream stream (partitioned by the server's mapping) instead of core NATS. */
  jetstream?: IngestJetStream;
}

export interface EngineFigures {
  processed: number;
  shed: number;
  deadLettered: number;
  /** JetStream acknowledgements sent (0 on core NATS). */
  acks: number;
  notes: string[];
}

export interface RunningEngine {
  ready: Promise<void>;
  /** Resolves once what was scored so far has reached the outputs (then `Outputs.flush` makes it durable). */
  handOver(): Promise<void>;
  /** Linux thread ids of the threads that read and score the readings (ingest workers; none known for the pool path). */
  threadIds(): Promise<number[]>;
  stop(): Promise<EngineFigures>;
}

/** The analyses as data for ingest workers: rolling W + SPC + iforest over (value, mean, std, z). */
export function benchSpecs(window: number, model: IsolationForestModel, features: readonly string[]): AnalysisSpec[] {
  return [
    { name: "rolling", options: { window: { kind: "count", records: window }, alpha: 0.1, timeScale: 1000 } },
    { name: "spc", options: { params: { ...DEFAULT_SPC_PARAMS }, ewmaField: "spc_ewma", keyParts: ["machine_id", "sensor_type"] } },
    { name: "iforest", options: { model, features, rollingIndex: 0 } },
  ];
}

export function startEngine(path: EnginePath, s: EngineSetting): RunningEngine {
  return isIngestPath(path) ? startIngest(s, path === "ingest+pool" ? 1 : 0) : startPool(s);
}

function startIngest(s: EngineSetting, kernelWorkers: number): RunningEngine {
  const live = tapFrames(s.outputs?.serialTargets().live ?? null, s.onLiveFrame);
  const started = IngestJob.start({
    ...DEFAULT_INGEST_JOB,
    url: s.url,
    site: s.site,
    workers: s.workers,
    partitions: BENCH_PARTITIONS,
    analyses: s.specs,
    batchRecordsMax: s.batch,
    scoreFrames: s.scoreFrames ?? true,
    kernelWorkers,
    jetstream: s.jetstream ?? null,
    live,
    sink: s.outputs?.encodedRows() ?? null,
    onAlerts: (events) => s.outputs?.alerts(events),
  });
  let timer: NodeJS.Timeout | null = null;
  const ready = started.then((job) => {
    if (s.onScoredCount !== undefined) {
      const tell = s.onScoredCount;
      timer = setInterval(() => tell(job.counts().scored), 1);
    }
  });
  return {
    ready,
    handOver: () => started.then((job) => job.sync()),
    threadIds: () => started.then((job) => job.threadIds().filter((t) => t > 0)),
    async stop(): Promise<EngineFigures> {
      const job = await started;
      if (timer !== null) clearInterval(timer);
      const r = await job.stop();
      s.onScoredCount?.(r.scored);
      const notes = [
        `ingest workers: ${r.drains} drains, ${(r.drainMs / 1000).toFixed(1)} s draining (kernels ${(r.kernelMs / 1000).toFixed(1)} s), ` +
          `${(r.pausedMs / 1000).toFixed(1)} s paused for ClickHouse, ${r.fastRecords} records on the fast path`,
      ];
      if (r.restarts > 0) notes.push(`${r.restarts} worker restarts`);
      return { processed: r.scored, shed: r.shed, deadLettered: r.deadLettered, acks: r.acks, notes };
    },
  };
}

/** The live target, telling `onFrame` each score frame before it is published. */
function tapFrames(live: LiveTarget | null, onFrame: ((frame: Uint8Array) => void) | undefined): LiveTarget | null {
  if (live === null || onFrame === undefined) return live;
  return {
    publish(topic: string, data: unknown): number {
      if (data instanceof ScoreFrameMessage) onFrame(data.frame);
      return live.publish(topic, data);
    },
  };
}

interface LiveTarget {
  publish(topic: string, data: unknown): number;
}

function startPool(s: EngineSetting): RunningEngine {
  const stop = deferred();
  const ready = deferred();
  const job = runNatsJob({
    ...DEFAULT_NATS_JOB,
    url: s.url,
    site: s.site,
    analyses: s.analyses,
    workers: s.workers,
    batchRecordsMax: s.batch,
    publishScores: false,
    outputs: s.outputs ?? undefined,
    ...(s.jetstream === undefined
      ? {}
      : { ...s.jetstream, partitions: Array.from({ length: BENCH_PARTITIONS }, (_, p) => p), partitionCount: BENCH_PARTITIONS }),
    summaryIntervalMs: 0,
    console: new PassThrough(),
    stop: stop.promise,
    onReady: () => ready.resolve(),
  });
  job.catch(() => ready.resolve()); // a job that fails before it is ready must not hang the bench
  return {
    ready: ready.promise,
    handOver: () => Promise.resolve(),
    threadIds: () => Promise.resolve([]),
    async stop(): Promise<EngineFigures> {
      stop.resolve();
      const notes: string[] = [];
      const r: NatsJobResult | null = await job.catch((e: unknown) => {
        notes.push(`job failed: ${e instanceof Error ? e.message : String(e)}`);
        return null;
      });
      return { processed: r?.recordsOut ?? 0, shed: r?.shed ?? 0, deadLettered: r?.input.deadLettered ?? 0, acks: r?.acks ?? 0, notes };
    },
  };
}
