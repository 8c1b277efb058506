/**
 * `linewatch run --nats`: the sensor job (sensor-job.ts) on NATS — core NATS or JetStream
 * (nats-sources.ts) — with scores published on `lw.<site>.score.<machine>.<sensor>` and alerts
 * through the analyses' onAlert.
 */
import type { AuditStamp } from "./audit/mod.js";
import type { Writable } from "node:stream";
import { ConfigError, createLogger, type Logger } from "../core/mod.js";
import { connectNats, type InputCounts } from "../../connectors/nats/mod.js";
import type { RecordAnalysis } from "../../operators/mod.js";
import { CoreNatsSource, DEFAULT_JETSTREAM_CONSUMER, type JetStreamConsumerSettings, JetStreamSource } from "./nats-sources.js";
import type { Outputs } from "./outputs.js";
import { NatsScorePublisher } from "./score-writers.js";
import { runSensorJob } from "./sensor-job.js";

export { checkpointName } from "./nats-sources.js";

/** JetStream settings (JetStreamConsumerSettings) apply when `stream` is given. */
export interface NatsJobOptions extends JetStreamConsumerSettings {
  /** The audit record on every published score line; null or absent: none. */
  audit?: AuditStamp | null;
  url: string;
  site: string;
  /** JetStream stream to consume; undefined: core NATS subscription. */
  stream?: string;
  /** Partitions this instance owns (JetStream with partition mapping); undefined: unpartitioned. */
  partitions?: readonly number[];
  /** Number of partitions the server maps to (for the stream's subjects). */
  partitionCount?: number;
  analyses: readonly RecordAnalysis[];
  workers: number;
  groups: number;
  keysMax: number;
  batchRecordsMax: number;
  /** Core NATS: message bytes queued between subscription and engine before shedding. */
  queuedBytesMax: number;
  /** Publish scores on lw.<site>.score.<machine>.<sensor> (alerts go through the analyses' onAlert). */
  publishScores: boolean;
  /** Encoding of published scores: JSON (default) or MessagePack (the same object). */
  outputFormat?: "json" | "msgpack";
  summaryIntervalMs: number;
  /** The alert episodes for the summary line (the alert router's words). */
  alertsSummary?: () => string;
  console: Writable;
  /** Operational events (fetch failures, lost deliveries, failed checkpoints); default: JSON lines on `console`. */
  log?: Logger;
  stop: Promise<void>;
  /** Called once the job consumes (consumers created, state restored). */
  onReady?: () => void;
  /** ClickHouse and the live server, when the run has them; flushed before acknowledgements. */
  outputs?: Outputs;
  /** Live counts, updated as the job runs (for a caller that waits on progress). */
  progress?: { recordsIn: number; recordsOut: number; checkpoints: number };
}

export interface NatsJobResult {
  recordsIn: number;
  recordsOut: number;
  /** Core NATS: messages shed (and their bytes) because the queue was full. */
  shed: number;
  shedBytes: number;
  duplicates: number;
  checkpoints: number;
  /** JetStream acknowledgements sent (ack-all: one per fetched batch). */
  acks: number;
  /** Records whose (sensor_unit, operating_mode, work_order_id) found the label table full (RECORD_LABELS_MAX): fields left empty. */
  labelsUnkept: number;
  input: InputCounts;
  seconds: number;
}

export const DEFAULT_NATS_JOB = {
  site: "site1",
  workers: 2,
  groups: 16,
  keysMax: 65536,
  batchRecordsMax: 4096,
  ...DEFAULT_JETSTREAM_CONSUMER,
  queuedBytesMax: 64 * 1024 * 1024,
} as const;

export async function runNatsJob(o: NatsJobOptions): Promise<NatsJobResult> {
  if (o.stream === undefined && o.partitions !== undefined)
    throw new ConfigError("--partitions", "partitions need a JetStream stream (--stream)");
  const nc = await connectNats({ servers: o.url, name: `linewatch-${o.site}`, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  const log = (o.log ?? createLogger({ destination: o.console, pretty: false })).child({ component: "nats" });
  const source = o.stream === undefined ? new CoreNatsSource(nc, o) : new JetStreamSource(nc, { ...o, stream: o.stream });
  if (o.outputs?.active) o.outputs.countDeadLetters(() => source.messages.counts().byReason);
  if (o.outputs?.active && source instanceof CoreNatsSource) o.outputs.countShed(() => source.shed);
  try {
    const result = await runSensorJob(source, {
      ...o,
      log,
      scores: o.publishScores ? new NatsScorePublisher(nc, o.site, o.outputFormat ?? "json", log) : null,
    });
    const core = source instanceof CoreNatsSource ? source : null;
    const js = source instanceof JetStreamSource ? source : null;
    return {
      recordsIn: result.metrics.recordsIn,
      recordsOut: result.recordsOut,
      shed: core?.shed ?? 0,
      shedBytes: core?.shedBytes ?? 0,
      duplicates: js?.duplicates ?? 0,
      checkpoints: js?.checkpoints ?? 0,
      acks: js?.acks ?? 0,
      labelsUnkept: result.labelsUnkept,
      input: source.messages.counts(),
      seconds: result.seconds,
    };
  } finally {
    // What was published goes out before the connection closes; a connection already closed has nothing to send.
    if (!nc.isClosed()) await nc.drain().catch((error: Error) => log.warn({ err: error }, "drain at the end failed"));
  }
}
