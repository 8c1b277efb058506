/**
 * What feeds the live serial job: the serial simulator (paced like the plant simulator), or NATS
 * — single serial events on `lw.<site>.serial.<line>`, on core NATS (at-most-once, a bounded queue
 * that sheds and counts) or from a JetStream stream (a durable pull consumer, explicit ack after
 * the outputs are durable).
 *
 * JetStream: the stream is the one that already captures `lw.<site>.serial.>` (say a stream on
 * `lw.<site>.>`), else `<stream>_SERIAL` on `lw.<site>.serial.>`, created when missing. The
 * durable consumer `lw-<site>-serial` is re-created at start to deliver from the sequence after
 * the job's checkpoint. Every `checkpointIntervalMs`, and when stopping, the job's whole state
 * (lines, ledger with its duplicate filter, quarantine list; operators/serial/checkpoint.ts) is
 * saved to the key-value bucket with the last stream sequence it covers, between two fetches so
 * it holds exactly the events up to that sequence. At start it is restored, and redeliveries at
 * or below the covered sequence are acknowledged without entering the state — a restart, even
 * `kill -9`, neither loses nor double-counts an event, and a serial repeated across it is a
 * duplicate. Outputs of the events between the checkpoint and a crash are written again
 * (at-least-once; ClickHouse's FINAL keeps one row per event).
 */
import type { Consumer, JetStreamManager, NatsConnection } from "nats";
import { CapacityError, type Logger } from "../core/mod.js";
import {
  CheckpointStore,
  BoundedSubscription,
  OrderedPullReader,
  ensureStream,
  openDurableConsumer,
  streamCapturing,
  type DurableConsumerOptions,
  type SerialNatsInput,
} from "../../connectors/nats/mod.js";
import type { SerialRecord } from "../../connectors/wire/mod.js";
import { SerialSimulator, type SerialSimulatorOptions } from "../../connectors/sim/mod.js";
import type { SerialJob, SerialJobSnapshot } from "./serial-job.js";

export interface SerialSimulationOptions {
  simulator: Partial<SerialSimulatorOptions>;
  /** Simulated ms per wall-clock ms (1 = live); Infinity: as fast as the job takes them. */
  speed: number;
  /** Stop at this receiving time (epoch ms), e.g. the run's `--duration`. */
  endTime?: number;
  /** Stop after this many events. */
  maxEvents?: number;
  /** Longest an event waits in a partly filled buffer (live runs). */
  flushIntervalMs: number;
  stop: Promise<void>;
}

export interface SerialSourceResult {
  events: number;
  /** Attacks the simulator injected (ground truth). */
  attacks: number;
  seconds: number;
}

/** The serial simulator into the job, paced by the events' receiving clock × `speed`. */
export async function runSerialSimulation(job: SerialJob, o: SerialSimulationOptions): Promise<SerialSourceResult> {
  const sim = new SerialSimulator(o.simulator);
  const t0 = performance.now();
  let stopped = false;
  void o.stop.then(() => (stopped = true));
  let next = sim.next();
  const first = next.received_timestamp;
  let events = 0;
  let lastFlush = t0;
  const live = Number.isFinite(o.speed);
  try {
    while (
      !stopped &&
      (o.maxEvents === undefined || events < o.maxEvents) &&
      (o.endTime === undefined || next.received_timestamp < o.endTime)
    ) {
      const now = performance.now();
      if (live && now - lastFlush >= o.flushIntervalMs) {
        lastFlush = now;
        await job.flush(false);
      }
      const due = live ? first + (now - t0) * o.speed : Infinity;
      if (next.received_timestamp > due) {
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      // At most a batch between looks at the clock and the stop signal.
      for (let n = 0; n < 1024 && next.received_timestamp <= due; n++) {
        await job.add(next, events++);
        next = sim.next();
        if ((o.maxEvents !== undefined && events >= o.maxEvents) || (o.endTime !== undefined && next.received_timestamp >= o.endTime))
          break;
      }
      // Unpaced: let the sensor job (same thread) have its turn.
      if (!live) await new Promise((r) => setImmediate(r));
    }
    await job.flush();
  } finally {
    await job.close();
  }
  return { events, attacks: sim.labels().length, seconds: (performance.now() - t0) / 1000 };
}

export interface SerialNatsOptions {
  site: string;
  /** JetStream stream (see the module comment); undefined: core NATS. */
  stream?: string;
  fetchMessagesMax: number;
  ackWaitMs: number;
  maxDeliver: number;
  maxAckPending: number;
  /** Core NATS: message bytes queued before shedding. */
  queuedBytesMax: number;
  /** JetStream: how often the job's state is saved (and once when stopping). */
  checkpointIntervalMs: number;
  /** JetStream: the key-value bucket of the checkpoints (the sensor job's). */
  checkpointBucket: string;
  flushIntervalMs: number;
  stop: Promise<void>;
  onReady?: () => void;
  /** Checkpoints restored and saved, the consumer (component "serial"). */
  log: Logger;
}

export interface SerialNatsResult extends SerialSourceResult {
  messages: number;
  /** Core NATS: messages shed because the queue was full. */
  shed: number;
  deadLettered: number;
  /** JetStream: redeliveries at or below the restored position, acknowledged and skipped. */
  redeliveriesSkipped: number;
  checkpoints: number;
  /** JetStream: the position the restored checkpoint covered (null: none). */
  restoredPosition: number | null;
}

export const DEFAULT_SERIAL_NATS = {
  fetchMessagesMax: 1000,
  ackWaitMs: 30_000,
  maxDeliver: 10,
  maxAckPending: 20_000,
  queuedBytesMax: 64 * 1024 * 1024,
  flushIntervalMs: 250,
  checkpointIntervalMs: 5_000,
  checkpointBucket: "linewatch-checkpoints",
} as const;

/** Serial events from NATS into the job until `stop`; closes the job at the end. */
export async function consumeSerialNats(
  nc: NatsConnection,
  input: SerialNatsInput,
  job: SerialJob,
  o: SerialNatsOptions,
): Promise<SerialNatsResult> {
  const t0 = performance.now();
  const counts = { shed: 0, redeliveriesSkipped: 0, checkpoints: 0, restoredPosition: null as number | null };
  let stopped = false;
  void o.stop.then(() => (stopped = true));
  const take: Take = (subject, data, position) => takeSerialMessage(input, job, subject, data, position);
  // Durable: outputs in ClickHouse and on the server, dead letters confirmed — what a JetStream
  // ack waits for. Core NATS has no ack: its outputs are handed over without waiting.
  const flush = async (durable: boolean): Promise<void> => {
    await job.flush(durable);
    if (durable) await input.flush();
  };
  try {
    if (o.stream === undefined) await consumeCore(nc, o, take, flush, counts, () => stopped);
    else await consumeJetStream(nc, o, job, take, flush, counts, () => stopped);
    await flush(true);
  } finally {
    await job.close();
  }
  const c = input.counts();
  return {
    events: c.readings,
    attacks: 0,
    messages: c.messages,
    shed: counts.shed,
    deadLettered: c.deadLettered,
    seconds: (performance.now() - t0) / 1000,
    redeliveriesSkipped: counts.redeliveriesSkipped,
    checkpoints: counts.checkpoints,
    restoredPosition: counts.restoredPosition,
  };
}

/**
 * One NATS message into the job: read by the schema reader into the job's batch (no object per
 * event), or — when the reader cannot prove it valid — decoded by the generic decoder (a rejected
 * one is dead-lettered with its reason) and added; at source position `position`. A line past the
 * job's `linesMax` is dead-lettered as `too_many_lines`. What the NATS consumers call per message
 * (and the job-rate benchmark). Returns a promise when the job's batch was full and handed to the
 * engine — await it: that is the backpressure — else undefined.
 */
export function takeSerialMessage(
  input: SerialNatsInput,
  job: SerialJob,
  subject: string,
  data: Uint8Array,
  position: number,
): Promise<void> | undefined {
  const line = input.read(subject, data);
  const e = line === null ? input.decode(subject, data) : null;
  if (line === null && e === null) return undefined;
  try {
    return line !== null ? job.addRanges(data, input.view, line, position) : job.add(e as SerialRecord, position);
  } catch (error) {
    if (!(error instanceof CapacityError)) throw error;
    input.reject(subject, data, "too_many_lines", error);
    return undefined;
  }
}

type Take = (subject: string, data: Uint8Array, position: number) => Promise<void> | undefined;
type Flush = (durable: boolean) => Promise<void>;

async function consumeCore(
  nc: NatsConnection,
  o: SerialNatsOptions,
  take: Take,
  flush: Flush,
  counts: { shed: number },
  stopped: () => boolean,
): Promise<void> {
  let position = 0;
  const input = new BoundedSubscription(nc, `lw.${o.site}.serial.>`, o.queuedBytesMax, () => counts.shed++);
  await nc.flush();
  o.onReady?.();
  const timer = setInterval(() => {
    if (stopped()) input.wake();
  }, 100);
  let draining = false;
  let lastFlush = performance.now();
  try {
    for (;;) {
      if (stopped() && !draining) {
        draining = true;
        await input.drain();
        await flush(false);
      }
      if (input.length === 0) {
        if (draining && input.closed) break;
        // Idle: wait for messages; flush what is buffered when none came for flushIntervalMs (a
        // flush per dry queue would cost a pool round trip per handful of events).
        const woken = await input.wait(o.flushIntervalMs);
        if (!woken || performance.now() - lastFlush >= o.flushIntervalMs) {
          await flush(false);
          lastFlush = performance.now();
        }
        continue;
      }
      for (const m of input.take(1024)) {
        const full = take(m.subject, m.data, position++);
        if (full !== undefined) await full;
      }
      // A steady stream never runs the queue dry: outputs still go out every flushIntervalMs.
      if (performance.now() - lastFlush >= o.flushIntervalMs) {
        lastFlush = performance.now();
        await flush(false);
      }
    }
  } finally {
    clearInterval(timer);
  }
}

/** The stream that already captures `lw.<site>.serial.>`, else `<stream>_SERIAL` on it, created when missing. */
async function serialStream(jsm: JetStreamManager, o: SerialNatsOptions): Promise<string> {
  const captured = await streamCapturing(jsm, `lw.${o.site}.serial.x`);
  if (captured !== null) return captured;
  const stream = `${o.stream}_SERIAL`;
  await ensureStream(jsm, stream, [`lw.${o.site}.serial.>`]);
  return stream;
}

function serialConsumer(o: SerialNatsOptions, stream: string, durable: string): DurableConsumerOptions {
  const { maxDeliver, ackWaitMs, maxAckPending } = o;
  return { stream, durable, filterSubject: `lw.${o.site}.serial.>`, maxDeliver, ackWaitMs, maxAckPending, log: o.log };
}

/** The job's state from checkpoint `name`, if saved; the stream sequence it covers (null: no checkpoint). */
async function restoreSerialJob(store: CheckpointStore, name: string, job: SerialJob, log: Logger): Promise<number | null> {
  const saved = await store.load(name);
  if (saved === null) return null;
  const t = performance.now();
  const top = await job.restore(saved.bytes);
  log.info(checkpointFields(name, top, saved.bytes.length, t), "state restored from checkpoint");
  return top;
}

/** A checkpoint's log fields: its name, the stream sequence it holds, its size and how long it took since `started`. */
function checkpointFields(name: string, streamSeq: number, bytes: number, started: number): Record<string, unknown> {
  return { checkpoint: name, stream_seq: streamSeq, bytes, ms: Math.round(performance.now() - started) };
}

/** The key of the serial job's checkpoint in the bucket. */
export function serialCheckpointName(site: string, stream: string): string {
  return `${site}.${stream}.serial`;
}

async function consumeJetStream(
  nc: NatsConnection,
  o: SerialNatsOptions,
  job: SerialJob,
  take: Take,
  flush: Flush,
  counts: { redeliveriesSkipped: number; checkpoints: number; restoredPosition: number | null },
  stopped: () => boolean,
): Promise<void> {
  const log = o.log.child({ component: "serial" });
  const jsm = await nc.jetstreamManager();
  const stream = await serialStream(jsm, o);
  const store = await CheckpointStore.open(nc, o.checkpointBucket);
  const name = serialCheckpointName(o.site, stream);
  counts.restoredPosition = await restoreSerialJob(store, name, job, log);
  let top = counts.restoredPosition ?? 0;
  const durable = `lw-${o.site}-serial`;
  const openConsumer = (start: number): Promise<Consumer> => openDurableConsumer(jsm, serialConsumer(o, stream, durable), start);
  const consumer = await openConsumer(top + 1);
  log.info({ stream, durable }, "consuming a JetStream stream with a durable consumer");
  o.onReady?.();
  let lastCheckpoint = performance.now();
  /** The save in progress (at most one): encoded and written while the job takes more events. */
  let saving: Promise<void> | null = null;
  const save = async (snapshot: SerialJobSnapshot, started: number): Promise<void> => {
    const bytes = await snapshot.encode();
    await store.save(name, bytes, snapshot.position);
    counts.checkpoints++;
    if (counts.checkpoints === 1) log.info(checkpointFields(name, snapshot.position, bytes.length, started), "first checkpoint saved");
  };
  const checkpoint = async (): Promise<void> => {
    const started = performance.now();
    const snapshot = await job.snapshot(top);
    lastCheckpoint = performance.now();
    saving = save(snapshot, started)
      // The bucket is unreachable for now; the previous checkpoint stays valid. Try again later.
      .catch((error: Error) => log.warn({ checkpoint: name, err: error }, "checkpoint failed; will retry"))
      .finally(() => (saving = null));
  };
  const reader = new OrderedPullReader(consumer, top, {
    fetchMessagesMax: o.fetchMessagesMax,
    label: "serial",
    log,
    reopen: openConsumer,
  });
  while (!stopped()) {
    // Detections and quarantine rows durable, quarantine messages on the server, then the acks.
    const r = await reader.round(
      (m, seq) => take(m.subject, m.data, seq),
      () => flush(true),
    );
    counts.redeliveriesSkipped += r.redeliveries;
    top = reader.top;
    if (r.fetchFailed && r.taken + r.redeliveries === 0) continue;
    if (saving === null && performance.now() - lastCheckpoint >= o.checkpointIntervalMs) await checkpoint();
  }
  await flush(true);
  await saving;
  // The last save: awaited, and its failure is the run's.
  await save(await job.snapshot(top), performance.now());
}
