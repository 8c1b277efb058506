/**
 * `linewatch run --nats`: NATS in, the analyses on the worker pool, scores and alerts out to NATS.
 *
 * Two sources:
 * - **Core NATS** (no `stream`): at-most-once. A bounded queue sits between the subscription
 *   and the engine; when the engine falls behind, what does not fit is shed and counted.
 * - **JetStream** (`stream`): one durable pull consumer per owned partition (explicit ack,
 *   `max_deliver`, `ack_wait`, `max_ack_pending` bounded), fetching as fast as the engine takes
 *   records. A fetched batch is pushed, the engine flushed, its outputs published and flushed to
 *   the server, and only then are its messages acknowledged. Every `checkpointIntervalMs` the
 *   state of each partition's keys is saved to a key-value bucket with the last stream sequence
 *   it covers. At start, each partition's state is restored and its consumer re-created to
 *   deliver from the sequence after the checkpoint, and messages at or below a partition's last
 *   processed sequence (redeliveries) are acknowledged without entering the state again — so a
 *   restart neither loses nor double-counts a record in the state. Outputs of the records between
 *   the checkpoint and a crash are published again after the restart (at-least-once outputs).
 *
 * Partitions: the server maps `lw.<site>.sensor.<machine>.<sensor>` to
 * `lw.<site>.p.<k>.sensor.<machine>.<sensor>` with `{{partition(n, 1)}}` on the machine token
 * (README, "Scale-out"); an instance owns some k and consumes `lw.<site>.p.<k>.sensor.>`.
 */
import type { Writable } from "node:stream";
import { encode as encodeMsgpack } from "@msgpack/msgpack";
import { AckPolicy, DeliverPolicy, connect, nanos, type Consumer, type NatsConnection } from "nats";
import {
  allocateBatch,
  type RecordBatch,
  decodeCheckpoint,
  encodeCheckpoint,
  ConfigError,
  createLogger,
  type Logger,
  StreamEngine,
  type OutputChunk,
} from "../core/mod.js";
import { formatStatistic } from "../../operators/number-format.js";
import {
  BoundedSubscription,
  OrderedPullReader,
  CheckpointStore,
  NatsInput,
  frameSeq,
  type InputCounts,
} from "../../connectors/nats/mod.js";
import { observeRecord, recordFields, type RecordAnalysis, type RowContext } from "../../operators/analysis.js";
import type { Outputs } from "./outputs.js";

export interface NatsJobOptions {
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
  /** Messages per JetStream fetch. */
  fetchMessagesMax: number;
  ackWaitMs: number;
  maxDeliver: number;
  maxAckPending: number;
  checkpointIntervalMs: number;
  checkpointBucket: string;
  /** Core NATS: message bytes queued between subscription and engine before shedding. */
  queuedBytesMax: number;
  /** Publish scores on lw.<site>.score.<machine>.<sensor> (alerts go through the analyses' onAlert). */
  publishScores: boolean;
  /** Encoding of published scores: JSON (default) or MessagePack (the same object). */
  outputFormat?: "json" | "msgpack";
  summaryIntervalMs: number;
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
  fetchMessagesMax: 1000,
  ackWaitMs: 30_000,
  maxDeliver: 10,
  maxAckPending: 20_000,
  checkpointIntervalMs: 5_000,
  checkpointBucket: "linewatch-checkpoints",
  queuedBytesMax: 64 * 1024 * 1024,
} as const;

export async function runNatsJob(o: NatsJobOptions): Promise<NatsJobResult> {
  if (o.stream === undefined && o.partitions !== undefined)
    throw new ConfigError("--partitions", "partitions need a JetStream stream (--stream)");
  const t0 = performance.now();
  const nc = await connect({ servers: o.url, name: `linewatch-${o.site}`, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  const counts = { out: 0, shed: 0, shedBytes: 0, duplicates: 0, checkpoints: 0, fetchErrors: 0 };
  const keyParts: Array<[string, string]> = [];
  const keyNames: string[] = [];
  const ctx: RowContext = { keyId: 0, key: "", position: 0, time: 0, value: 0 };
  const rows: Float64Array[] = o.analyses.map(() => new Float64Array(0));
  const outputs = o.outputs?.active ? o.outputs : undefined;
  // The outputs take the members as values when every analysis gives them; the text is then
  // built only for published scores.
  const wantFields = outputs?.wantsMembers === true && o.analyses.every((a) => a.rowFields !== undefined);
  const wantMembers = o.publishScores || (outputs?.wantsMembers === true && !wantFields);
  const rollingIndex = o.analyses.findIndex((a) => a.name === "rolling");
  const partitionOfKey: number[] = [];
  // A single record's sensor_unit, operating_mode and work_order_id go to its ml_sensor_data row.
  // They ride through the engine as the record's 4-byte payload: the id of the interned triple
  // (0: none; frames never have them), so no object is made per record until the output.
  const labels = new RecordLabels();
  const payloadBytes = labelBytes(o);
  const enc = new TextEncoder();
  const engine = new StreamEngine(
    {
      kernels: o.analyses.map((a) => a.kernel),
      workers: o.workers,
      groups: o.groups,
      keysMax: o.keysMax,
      batchRecordsMax: o.batchRecordsMax,
      lateness: null,
      reorderRecordsPerKeyMax: 1,
      payloadBytes,
    },
    {
      onOutput(chunk: OutputChunk) {
        for (let i = 0; i < chunk.length; i++) {
          const keyId = chunk.keyIds[i];
          const [machine, sensor] = keyParts[keyId];
          const members = observeRecord(o.analyses, chunk, i, keyNames[keyId], ctx, rows, wantMembers);
          counts.out++;
          if (outputs !== undefined) {
            const p = chunk.payload;
            const label = labels.get((p[4 * i] | (p[4 * i + 1] << 8) | (p[4 * i + 2] << 16) | (p[4 * i + 3] << 24)) >>> 0);
            outputs.record({
              machineId: machine,
              sensorType: sensor,
              key: keyNames[keyId],
              time: chunk.times[i],
              value: chunk.values[i],
              unit: label?.[0],
              mode: label?.[1],
              workOrder: label?.[2],
              seq: chunk.positions[i],
              membersJson: members.slice(1),
              members: wantFields ? (recordFields(o.analyses, rows) ?? undefined) : undefined,
              rolling: rollingIndex >= 0 ? rows[rollingIndex] : undefined,
            });
          }
          if (o.progress !== undefined) o.progress.recordsOut = counts.out;
          if (o.publishScores) {
            const line =
              `{"machine_id":${JSON.stringify(machine)},"sensor_type":${JSON.stringify(sensor)},"timestamp":${chunk.times[i]},` +
              `"value":${formatStatistic(chunk.values[i])},"seq":${chunk.positions[i]}${members}}`;
            const data = o.outputFormat === "msgpack" ? encodeMsgpack(JSON.parse(line)) : enc.encode(line);
            nc.publish(`lw.${o.site}.score.${machine}.${sensor}`, data);
          }
        }
      },
    },
  );
  for (const a of o.analyses) a.start?.(engine);
  outputs?.attach(
    engine,
    o.analyses.findIndex((a) => a.name === "spc"),
    "nats",
    o.analyses.map((a) => a.name),
  );
  const input = new NatsInput(nc, o.site);
  outputs?.countDeadLetters(() => input.counts().byReason);
  /** Appends a message's readings to `batch`, interning keys; pushes the batch whenever it fills. */
  const take: Take = async (batch, subject, data, position, partition) => {
    const readings = input.decode(subject, data);
    if (readings === null) return;
    // The row seq (clickhouse-schema.ts SensorDataRow.seq): the position for a single record;
    // position × stride + index for a frame's readings, so two readings of one key in one
    // millisecond of one frame stay two rows. Checkpoints and redelivery use the message's stream
    // sequence, never these.
    const base = readings.frame ? frameSeq(position, 0) : position;
    const label = payloadBytes > 0 && readings.record !== undefined ? labels.idOf(readings.record) : 0;
    for (let i = 0; i < readings.length; i++) {
      if (batch.length === o.batchRecordsMax) {
        await engine.push(batch);
        batch.length = 0;
      }
      const id = engine.internKey(readings.key(i));
      if (keyParts[id] === undefined) {
        keyParts[id] = [readings.machine(i), readings.sensor(i)];
        keyNames[id] = readings.key(i);
        partitionOfKey[id] = partition;
      }
      const k = batch.length++;
      batch.keyIds[k] = id;
      batch.times[k] = readings.time(i);
      batch.values[k] = readings.value(i);
      batch.positions[k] = readings.frame ? base + i : position;
      if (payloadBytes > 0) {
        const p = batch.payload as Uint8Array;
        p[4 * k] = label & 0xff;
        p[4 * k + 1] = (label >>> 8) & 0xff;
        p[4 * k + 2] = (label >>> 16) & 0xff;
        p[4 * k + 3] = label >>> 24;
      }
    }
  };
  /**
   * Pushes what is left, waits for every output, and for the server to have the published ones.
   * `durable`: also waits until the ClickHouse rows are durable (inserted, or spilled to disk) —
   * before JetStream acknowledges, and at the end. Core NATS acknowledges nothing, so otherwise
   * the rows are only handed over and the sink's bounded queue paces the loop.
   */
  const drain = async (batch: RecordBatch, durable: boolean): Promise<void> => {
    if (batch.length > 0) await engine.push(batch);
    batch.length = 0;
    await engine.flush();
    if (durable) await outputs?.flush();
    else await outputs?.handOver();
    try {
      await nc.flush();
    } catch (error) {
      // Disconnected: nats.js keeps what was published in its reconnect buffer and sends it on
      // reconnect; scores on core NATS are at-most-once past that buffer.
      jobLog(o).warn({ err: error }, "flush of published scores failed");
    }
  };

  let stopped = false;
  void o.stop.then(() => (stopped = true));
  const summary = startSummary(o, engine, input, counts, t0);
  try {
    if (o.stream === undefined)
      await consumeCore(
        o,
        nc,
        take,
        drain,
        () => outputs?.room() ?? Promise.resolve(),
        counts,
        () => stopped,
      );
    else await consumeJetStream(o, nc, engine, take, drain, counts, partitionOfKey, () => stopped);
  } finally {
    summary.stop();
    for (const a of o.analyses) a.stop?.();
    await engine.close().catch(() => undefined);
    await nc.drain().catch(() => undefined);
  }
  const m = engine.metrics();
  if (labels.unkept > 0) {
    o.console.write(
      `nats: ${labels.unkept} records came with a (sensor_unit, operating_mode, work_order_id) beyond the first ${RECORD_LABELS_MAX} distinct ones; their ml_sensor_data rows have those fields empty\n`,
    );
  }
  return {
    recordsIn: m.recordsIn,
    recordsOut: counts.out,
    shed: counts.shed,
    shedBytes: counts.shedBytes,
    duplicates: counts.duplicates,
    checkpoints: counts.checkpoints,
    labelsUnkept: labels.unkept,
    input: input.counts(),
    seconds: (performance.now() - t0) / 1000,
  };
}

type Take = (batch: RecordBatch, subject: string, data: Uint8Array, position: number, partition: number) => Promise<void>;
type Drain = (batch: RecordBatch, durable: boolean) => Promise<void>;

/**
 * Core NATS: at-most-once. Messages wait in a queue bounded in bytes; what does not fit when the
 * engine falls behind is shed and counted (messages and bytes). The engine is not flushed after
 * every chunk — its own backpressure paces the loop and the kernels overlap with decoding — only
 * when the queue runs dry, so scores are never held back while the input is idle. At stop, the
 * subscription is drained and what is queued is processed, not dropped.
 */
async function consumeCore(
  o: NatsJobOptions,
  nc: NatsConnection,
  take: Take,
  drain: Drain,
  room: () => Promise<void>,
  counts: { shed: number; shedBytes: number },
  stopped: () => boolean,
): Promise<void> {
  const batch = allocateBatch(o.batchRecordsMax, labelBytes(o));
  let position = 0;
  const input = new BoundedSubscription(nc, `lw.${o.site}.sensor.>`, o.queuedBytesMax, (bytes) => {
    counts.shed++;
    counts.shedBytes += bytes;
  });
  o.onReady?.();
  const timer = setInterval(() => input.wake(), 100);
  let draining = false;
  try {
    for (;;) {
      if (stopped() && !draining) {
        draining = true;
        await input.drain();
      }
      if (input.length === 0) {
        const last = draining && input.closed;
        await drain(batch, last);
        if (last) break;
        await input.wait();
        continue;
      }
      for (const m of input.take(1024)) await take(batch, m.subject, m.data, position++, 0);
      // A busy input may never run dry: the sink's memory queue paces the loop here too.
      await room();
    }
  } finally {
    clearInterval(timer);
  }
}

/** JetStream: durable pull consumers per partition, ack after outputs, checkpoints, dedup by sequence. */
async function consumeJetStream(
  o: NatsJobOptions,
  nc: NatsConnection,
  engine: StreamEngine,
  take: Take,
  drain: Drain,
  counts: { duplicates: number; checkpoints: number; fetchErrors: number },
  partitionOfKey: number[],
  stopped: () => boolean,
): Promise<void> {
  const stream = o.stream as string;
  const jsm = await nc.jetstreamManager();
  const partitioned = o.partitions !== undefined;
  const subjects = partitioned ? [`lw.${o.site}.p.*.sensor.>`] : [`lw.${o.site}.sensor.>`];
  try {
    await jsm.streams.info(stream);
  } catch {
    await jsm.streams.add({ name: stream, subjects });
  }
  const store = await CheckpointStore.open(nc, o.checkpointBucket);
  const parts = partitioned ? [...(o.partitions as number[])] : [0];
  const lastSeq = new Map<number, number>();
  const js = nc.jetstream();
  /** (Re)creates partition p's durable consumer, delivering from stream sequence `start`. */
  const openConsumer = async (p: number, start: number): Promise<Consumer> => {
    const durable = `lw-${o.site}-${partitioned ? `p${p}` : "all"}`;
    try {
      await jsm.consumers.delete(stream, durable);
    } catch {
      // none yet
    }
    await jsm.consumers.add(stream, {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: start === 1 ? DeliverPolicy.All : DeliverPolicy.StartSequence,
      ...(start === 1 ? {} : { opt_start_seq: start }),
      filter_subject: partitioned ? `lw.${o.site}.p.${p}.sensor.>` : `lw.${o.site}.sensor.>`,
      max_deliver: o.maxDeliver,
      ack_wait: nanos(o.ackWaitMs),
      max_ack_pending: o.maxAckPending,
    });
    return js.consumers.get(stream, durable);
  };
  const consumers: Array<{ p: number; consumer: Consumer }> = [];
  for (const p of parts) {
    const name = checkpointName(o.site, stream, partitioned ? p : null);
    const saved = await store.load(name);
    let start = 1;
    if (saved !== null) {
      const ckpt = decodeCheckpoint(saved.bytes);
      await engine.restore(ckpt);
      for (const k of ckpt.keys) {
        const id = engine.keys.lookup(k.name);
        partitionOfKey[id] = p;
      }
      lastSeq.set(p, saved.position);
      start = saved.position + 1;
    } else lastSeq.set(p, 0);
    consumers.push({ p, consumer: await openConsumer(p, start) });
  }
  o.onReady?.();
  // One loop per partition: fetch, process, publish, ack, and checkpoint when due. A partition's
  // checkpoint is taken between two of its own iterations, so its state holds exactly the records
  // up to its last sequence; other partitions' loops touch other keys.
  await Promise.all(
    consumers.map(async ({ p, consumer: first }) => {
      const batch = allocateBatch(o.batchRecordsMax, labelBytes(o));
      const name = checkpointName(o.site, stream, partitioned ? p : null);
      let lastCheckpoint = performance.now();
      const reader = new OrderedPullReader(first, lastSeq.get(p) as number, {
        fetchMessagesMax: o.fetchMessagesMax,
        label: `partition ${p}`,
        log: jobLog(o),
        reopen: (start) => openConsumer(p, start),
      });
      const checkpoint = async (): Promise<void> => {
        const top = reader.top;
        const ckpt = await engine.checkpoint(top, (key) => partitionOfKey[engine.keys.lookup(key)] === p);
        await store.save(name, encodeCheckpoint(ckpt), top);
        counts.checkpoints++;
        if (o.progress !== undefined) o.progress.checkpoints = counts.checkpoints;
        lastCheckpoint = performance.now();
      };
      while (!stopped()) {
        // Outputs are published and flushed to the server before any message is acknowledged.
        const r = await reader.round(
          (m) => take(batch, m.subject, m.data, m.seq, p),
          () => drain(batch, true),
        );
        counts.duplicates += r.redeliveries;
        if (r.fetchFailed) {
          counts.fetchErrors++;
          if (r.taken + r.redeliveries === 0) continue;
        }
        if (performance.now() - lastCheckpoint >= o.checkpointIntervalMs) {
          try {
            await checkpoint();
          } catch (error) {
            // The bucket is unreachable for now; the previous checkpoint stays valid. Try again later.
            lastCheckpoint = performance.now();
            jobLog(o).warn({ partition: p, err: error }, "checkpoint failed; will retry");
          }
        }
      }
      await drain(batch, true);
      await checkpoint();
    }),
  );
}

/** The job's logger (component "nats"). */
function jobLog(o: NatsJobOptions): Logger {
  return (o.log ?? createLogger({ destination: o.console, pretty: false })).child({ component: "nats" });
}

export function checkpointName(site: string, stream: string, partition: number | null): string {
  return `${site}.${stream}.${partition === null ? "all" : `p${partition}`}`;
}

function startSummary(
  o: NatsJobOptions,
  engine: StreamEngine,
  input: NatsInput,
  counts: { out: number; shed: number; duplicates: number; checkpoints: number },
  t0: number,
): { stop(): void } {
  if (o.summaryIntervalMs <= 0) return { stop() {} };
  let lastIn = 0;
  let lastT = t0;
  const timer = setInterval(() => {
    const now = performance.now();
    const m = engine.metrics();
    const c = input.counts();
    const rate = ((m.recordsIn - lastIn) * 1000) / (now - lastT);
    lastIn = m.recordsIn;
    lastT = now;
    o.console.write(
      `[${((now - t0) / 1000).toFixed(1)} s] in ${m.recordsIn} (${Math.round(rate)}/s) out ${counts.out} keys ${m.keys} | ` +
        `messages ${c.messages}, dead-lettered ${c.deadLettered}, shed ${counts.shed}, redeliveries skipped ${counts.duplicates}, checkpoints ${counts.checkpoints}\n`,
    );
  }, o.summaryIntervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

export type { RecordBatch };

/** Bytes of a record's payload in the NATS job: the id of its {@link RecordLabels} triple, u32 little-endian; none without outputs. */
function labelBytes(o: NatsJobOptions): number {
  return o.outputs?.active === true ? 4 : 0;
}

/**
 * Interned (sensor_unit, operating_mode, work_order_id) triples of single records. Id 0 is "none";
 * the table grows with the distinct triples seen in the run (units and modes are a handful, work
 * orders a few per line and day).
 */
/** Distinct (sensor_unit, operating_mode, work_order_id) triples one NATS job keeps. */
export const RECORD_LABELS_MAX = 1 << 18;

export class RecordLabels {
  private readonly ids = new Map<string, number>();
  private readonly triples: Array<readonly [string | undefined, string | undefined, string | undefined] | undefined> = [undefined];
  /** Records whose triple was new once the table was full: their row keeps the reading, with the three fields empty. */
  unkept = 0;

  /** At most `max` distinct triples are kept (work orders come and go; the table must not grow without bound). */
  constructor(private readonly max = RECORD_LABELS_MAX) {}

  /** The id of the record's triple, 0 when it has none of the three. */
  idOf(r: { sensor_unit?: string; operating_mode?: string; work_order_id?: string }): number {
    const { sensor_unit: unit, operating_mode: mode, work_order_id: workOrder } = r;
    if (unit === undefined && mode === undefined && workOrder === undefined) return 0;
    // Absent and "" are both "" here (and in ClickHouse); the lengths make the name unambiguous.
    const u = unit ?? "";
    const m = mode ?? "";
    const name = `${u.length}:${u}${m.length}:${m}${workOrder ?? ""}`;
    let id = this.ids.get(name);
    if (id === undefined) {
      id = this.triples.length;
      if (id > this.max) {
        this.unkept++;
        return 0;
      }
      this.triples.push([unit, mode, workOrder]);
      this.ids.set(name, id);
    }
    return id;
  }

  /** The triple of an id; undefined for 0. */
  get(id: number): readonly [string | undefined, string | undefined, string | undefined] | undefined {
    return this.triples[id];
  }
}
