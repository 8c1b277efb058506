/**
 * `linewatch run --nats` on ingest workers (engine/jobs/ingest/): core NATS or JetStream, the
 * records decoded, scored and encoded on the workers' threads. This thread steers: it starts and
 * supervises the workers, hands their alert events to the run's alert router, their ClickHouse
 * blocks to the sink and their frames to the live server, forwards the API's limits changes to
 * them, and prints the summary from their shared counters. No record crosses to it.
 *
 * What stays where (docs/ingest-workers.md, "What `run --nats` runs on"):
 * - per-record score lines (`lw.<site>.score.<machine>.<sensor>`, opt-out `--no-publish-scores`):
 *   published by the workers on their own connections;
 * - SPC alert events: found by the workers, routed here (console, API, ml_alerts, topics, file);
 * - limits changes through the API: sent to the workers, applied by the key's owner in order with
 *   its records;
 * - the machines and the limits versions the API and the ml_equipment_health rows need: reported
 *   once per key and once per limits change, not per record.
 */
import type { AuditStamp } from "./audit/mod.js";
import type { Writable } from "node:stream";
import { ConfigError, createLogger, type Logger } from "../core/mod.js";
import type { AlertEpisodeEvent } from "../../operators/spc/mod.js";
import { type AnalysisSpec, DEFAULT_INGEST_JOB, type IngestCounts, IngestJob } from "./ingest/mod.js";
import type { NatsJobResult } from "./nats-job.js";
import type { JetStreamConsumerSettings } from "./nats-sources.js";
import type { Outputs } from "./outputs.js";

/** JetStream settings (JetStreamConsumerSettings) apply when `stream` is given. */
export interface IngestNatsJobOptions extends JetStreamConsumerSettings {
  /** The audit record on every ml_scores row and score line (the workers stamp it); absent: the outputs' (Outputs.audit), if any. */
  audit?: AuditStamp | null;
  url: string;
  site: string;
  /** JetStream stream to consume; undefined: core NATS. */
  stream?: string;
  /** JetStream: the partitions this instance owns; undefined: all (or the unpartitioned stream). */
  partitions?: readonly number[];
  /** Partitions of the server's mapping; undefined: no mapping (one worker takes the whole subject). */
  partitionCount?: number;
  analyses: readonly AnalysisSpec[];
  /** Ingest worker threads. */
  ingestWorkers: number;
  keysMax: number;
  batchRecordsMax: number;
  /** Per-record score lines on `lw.<site>.score.<machine>.<sensor>`: their encoding, or null for none. */
  scoreLines: "json" | "msgpack" | null;
  /** A worker's alert events, a batch at a time, in order. */
  onAlerts: (events: readonly AlertEpisodeEvent[]) => void;
  /** ClickHouse and the live server, when the run has them. */
  outputs?: Outputs;
  summaryIntervalMs: number;
  /** The alert episodes for the summary line (the alert router's words). */
  alertsSummary?: () => string;
  console: Writable;
  log?: Logger;
  stop: Promise<void>;
  onReady?: () => void;
}

/** How often this thread looks whether a worker failed for good (then the run ends with that failure). */
const FAILURE_POLL_MS = 250;

export async function runIngestNatsJob(o: IngestNatsJobOptions): Promise<NatsJobResult> {
  if (o.stream === undefined && o.partitions !== undefined)
    throw new ConfigError("--partitions", "partitions need a JetStream stream (--stream)");
  const log = (o.log ?? createLogger({ destination: o.console, pretty: false })).child({ component: "nats" });
  const outputs = o.outputs?.active ? o.outputs : undefined;
  const job = await startWorkers(o, outputs, log);
  outputs?.attachIngest(
    job,
    o.ingestWorkers,
    o.analyses.some((a) => a.name === "spc"),
    "nats",
    o.analyses.map((a) => a.name),
  );
  // An open episode is acknowledged by the worker that has it open (its later events carry it).
  if (o.outputs !== undefined && o.analyses.some((a) => a.name === "spc"))
    o.outputs.episodeAcks = (e, at, by, note) => job.acknowledge(e.episode_id, at, by, note);
  o.onReady?.();
  const t0 = performance.now();
  const summary =
    o.summaryIntervalMs > 0
      ? setInterval(() => o.console.write(`${summaryLine(job.counts(), t0, o.alertsSummary)}\n`), o.summaryIntervalMs)
      : null;
  summary?.unref();
  let poll: NodeJS.Timeout | null = null;
  const failed = new Promise<void>((resolve) => {
    poll = setInterval(() => job.failed !== null && resolve(), FAILURE_POLL_MS);
  });
  try {
    await Promise.race([o.stop, failed]);
  } finally {
    if (poll !== null) clearInterval(poll);
    if (summary !== null) clearInterval(summary);
  }
  const r = await job.stop();
  await outputs?.flush();
  if (o.summaryIntervalMs > 0) o.console.write(`${summaryLine(r, t0, o.alertsSummary)}\n`);
  const deadLettered = Object.values(r.byReason).reduce((a, b) => a + b, 0);
  return {
    recordsIn: r.readings,
    recordsOut: r.scored,
    shed: r.shed,
    shedBytes: 0,
    duplicates: r.duplicates,
    acks: r.acks,
    checkpoints: r.checkpoints,
    labelsUnkept: 0,
    input: { messages: r.messages, readings: r.readings, deadLettered, byReason: r.byReason },
    seconds: r.seconds,
  };
}

/** The ingest workers of the run, their reports wired to the outputs. */
function startWorkers(o: IngestNatsJobOptions, outputs: Outputs | undefined, log: Logger): Promise<IngestJob> {
  return IngestJob.start({
    ...DEFAULT_INGEST_JOB,
    url: o.url,
    site: o.site,
    workers: o.ingestWorkers,
    partitions: o.partitionCount ?? (o.partitions === undefined ? 0 : Math.max(...o.partitions) + 1),
    ownPartitions: o.partitions,
    analyses: o.analyses,
    keysMax: o.keysMax,
    batchRecordsMax: o.batchRecordsMax,
    // Score frames on NATS are the ingest bench's output; a run publishes score lines (opt-out) instead.
    scoreFrames: false,
    scoreLines: o.scoreLines,
    // ClickHouse = replay: the statistics as the replay prints them, as the main-thread job wrote them.
    roundStatistics: true,
    audit: auditOf(o),
    live: outputs?.serialTargets().live ?? null,
    sink: outputs?.encodedRows() ?? null,
    jetstream:
      o.stream === undefined
        ? null
        : {
            stream: o.stream,
            checkpointBucket: o.checkpointBucket,
            fetchMessagesMax: o.fetchMessagesMax,
            ackWaitMs: o.ackWaitMs,
            maxDeliver: o.maxDeliver,
            maxAckPending: o.maxAckPending,
            checkpointIntervalMs: o.checkpointIntervalMs,
            explicitAck: o.explicitAck,
          },
    onAlerts: o.onAlerts,
    onEpisodesRestored: (events) => o.outputs?.restoreEpisodes(events),
    onKeys: (keys) => {
      for (const k of keys) outputs?.machineSeen(k.machine);
    },
    onLimits: (limits) => {
      for (const l of limits) outputs?.limitsSeen(l);
    },
    onDriftRows: outputs?.watchesIforest === true ? (worker, rows) => outputs.iforestDriftRows(worker, rows) : undefined,
    log,
  });
}

function summaryLine(c: IngestCounts, t0: number, alerts?: () => string): string {
  const seconds = (performance.now() - t0) / 1000;
  return (
    `[${seconds.toFixed(1)} s] in ${c.readings} out ${c.scored} (${Math.round(c.scored / Math.max(seconds, 1e-3))} rec/s avg) keys ${c.keys} ` +
    `| ingest workers: messages ${c.messages}, dead-lettered ${c.deadLettered}, shed ${c.shed} (${c.shedReadings} readings), ` +
    `redeliveries skipped ${c.duplicates}, checkpoints ${c.checkpoints}, restarts ${c.restarts}${alerts === undefined ? "" : ` | ${alerts()}`}`
  );
}

/** The settings hash the workers stamp: the job's own audit stamp, else its outputs'; null when the run is not audited. */
function auditOf(o: IngestNatsJobOptions): { configHash: string } | null {
  const stamp = o.audit ?? o.outputs?.audit ?? null;
  return stamp === null ? null : { configHash: stamp.configHash };
}
