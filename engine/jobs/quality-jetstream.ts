/**
 * The quality job's records from a JetStream stream (`run --nats … --stream S`, and `demo`): one
 * durable pull consumer `lw-<site>-quality` reads the process and quality records in stream order
 * — one consumer for both, so a batch's outcome comes after its readings as they were published —
 * through the sensor and serial jobs' {@link OrderedPullReader} (ack-all, acknowledged only after
 * the round's predictions and outcomes are durable in ClickHouse and its dead letters confirmed).
 *
 * The stream: the one that already captures both `lw.<site>.process.x` and `lw.<site>.quality.x`
 * (read whole when those are all its subjects, else through the filter `lw.<site>.>`, other
 * subjects acknowledged and skipped: nats-server 2.9 has one filter per consumer), else
 * `<S>_QUALITY` on both, created when missing. Process and quality records in two different
 * streams are refused (their relative order would be lost).
 *
 * Restart: replay, not a snapshot of the features. Every `checkpointIntervalMs` and when stopping
 * a small checkpoint is saved in the key-value bucket (`<site>.<stream>.quality`): `top`, the last
 * stream sequence taken; `replay_from`, the first reading's sequence of the oldest batch still
 * running (QualityJob.replayFrom); `outputs_through`, the highest sequence whose outputs were
 * written. At start the consumer is re-created from `replay_from`, and the records up to
 * `outputs_through` rebuild the running batches' features, prediction schedule and episodes with
 * every output muted (QualityJob.replayThrough) — so a batch running across a restart, even a
 * `kill -9`, is scored on all its readings, and every quality record published after the
 * checkpoint is joined to its batch's final prediction, or written with none when the batch's
 * readings are gone from the stream (retention) or never came. Records between the checkpoint and
 * a crash are taken again with outputs on: their rows are written a second time with the same key
 * (ClickHouse's FINAL keeps one), their episode events routed again.
 */
import type { JetStreamManager, JsMsg, NatsConnection } from "nats";
import {
  BatchNatsInput,
  CheckpointStore,
  ensureStream,
  OrderedPullReader,
  openDurableConsumer,
  streamCapturing,
} from "../../connectors/nats/mod.js";
import { CheckpointError, ConfigError, type Logger } from "../core/mod.js";
import { DEFAULT_JETSTREAM_CONSUMER, type JetStreamConsumerSettings } from "./nats-sources.js";
import type { QualityJob } from "./quality-job.js";
import type { QualitySourceResult } from "./quality-sources.js";

export interface QualityJetStreamOptions extends Omit<JetStreamConsumerSettings, "explicitAck"> {
  site: string;
  /** The run's --stream: the quality records' own stream is `<stream>_QUALITY` unless one already captures them. */
  stream: string;
  /** After stop: longest spent taking what the stream held at that moment (the rest waits for the next start). */
  drainMs: number;
  /** Makes the outputs handed over so far durable (ClickHouse rows written): what an ack waits for. */
  commit: () => Promise<void>;
  stop: Promise<void>;
  onReady?: () => void;
  log: Logger;
}

export const DEFAULT_QUALITY_JETSTREAM = Object.freeze({ ...DEFAULT_JETSTREAM_CONSUMER, drainMs: 10_000 });

export interface QualityJetStreamResult extends QualitySourceResult {
  stream: string;
  /** Records taken again at start to rebuild the running batches (outputs muted). */
  replayed: number;
  redeliveriesSkipped: number;
  /** Messages of other subjects in a shared stream, acknowledged and skipped. */
  otherSubjects: number;
  checkpoints: number;
  restored: QualityCheckpoint | null;
}

/** What a quality checkpoint holds (module comment). */
export interface QualityCheckpoint {
  top: number;
  replay_from: number;
  outputs_through: number;
}

/** The key of the quality job's checkpoint in the bucket. */
export function qualityCheckpointName(site: string, stream: string): string {
  return `${site}.${stream}.quality`;
}

/** Consumes the stream into the job until `stop` (then what it held then, within `drainMs`), checkpointing. */
export async function consumeQualityJetStream(
  nc: NatsConnection,
  job: QualityJob,
  o: QualityJetStreamOptions,
): Promise<QualityJetStreamResult> {
  const t0 = performance.now();
  const log = o.log.child({ component: "quality" });
  const jsm = await nc.jetstreamManager();
  const { stream, reader, restored, store, name } = await openQualityReader(nc, jsm, o, log);
  const outputsThrough = restored?.outputs_through ?? 0;
  job.replayThrough(outputsThrough);
  o.onReady?.();
  const input = new BatchNatsInput(nc, o.site);
  const counts = { process: 0, quality: 0, other: 0, redeliveries: 0, checkpoints: 0 };
  const take = takeQualityMessage(input, job, o.site, outputsThrough, counts);
  const commit = async (): Promise<void> => {
    await job.flush();
    await o.commit();
    await input.settled();
  };
  const save = async (): Promise<void> => {
    const top = reader.top;
    const c: QualityCheckpoint = { top, replay_from: job.replayFrom(top), outputs_through: Math.max(top, outputsThrough) };
    await store.save(name, new TextEncoder().encode(JSON.stringify(c)), top);
    counts.checkpoints++;
  };
  await consumeUntilStop(reader, take, commit, save, o, log, counts);
  await drainStream(jsm, stream, reader, take, commit, o.drainMs, counts);
  await commit();
  // The last save: awaited, and its failure is the run's.
  await save();
  const c = input.counts();
  return {
    stream,
    processRecords: counts.process,
    qualityRecords: counts.quality,
    deadLettered: c.deadLettered,
    deadLettersByReason: c.byReason,
    seconds: (performance.now() - t0) / 1000,
    replayed: job.countsNow().replayed,
    redeliveriesSkipped: counts.redeliveries,
    otherSubjects: counts.other,
    checkpoints: counts.checkpoints,
    restored,
  };
}

/**
 * The stream, the checkpoint, and a reader of the durable consumer re-created from the
 * checkpoint's `replay_from` (the whole stream without one).
 */
async function openQualityReader(
  nc: NatsConnection,
  jsm: JetStreamManager,
  o: QualityJetStreamOptions,
  log: Logger,
): Promise<{ stream: string; reader: OrderedPullReader; restored: QualityCheckpoint | null; store: CheckpointStore; name: string }> {
  const { stream, filter } = await qualityStream(jsm, o.site, o.stream);
  const store = await CheckpointStore.open(nc, o.checkpointBucket);
  const name = qualityCheckpointName(o.site, stream);
  const restored = await loadQualityCheckpoint(store, name);
  const from = restored?.replay_from ?? 1;
  const { maxDeliver, ackWaitMs, maxAckPending } = o;
  const consumer = { stream, durable: `lw-${o.site}-quality`, filterSubject: filter, maxDeliver, ackWaitMs, maxAckPending, log };
  const reopen = (start: number) => openDurableConsumer(jsm, consumer, start);
  const reader = new OrderedPullReader(await reopen(from), from - 1, {
    fetchMessagesMax: o.fetchMessagesMax,
    label: "quality",
    log,
    reopen,
  });
  log.info(
    { stream, durable: consumer.durable, from_stream_seq: from, replay_through: restored?.outputs_through ?? 0 },
    "consuming process and quality records",
  );
  return { stream, reader, restored, store, name };
}

type Take = (m: JsMsg, seq: number) => undefined;
type Counts = { process: number; quality: number; other: number; redeliveries: number; checkpoints: number };

/** One message into the job at its stream sequence; a replay (at or below `outputsThrough`) is neither counted nor dead-lettered again. */
function takeQualityMessage(input: BatchNatsInput, job: QualityJob, site: string, outputsThrough: number, counts: Counts): Take {
  const process = `lw.${site}.process.`;
  const quality = `lw.${site}.quality.`;
  return (m, seq) => {
    const kind = m.subject.startsWith(process) ? "process" : m.subject.startsWith(quality) ? "quality" : null;
    if (kind === null) {
      counts.other++;
      return undefined;
    }
    const replay = seq <= outputsThrough;
    const d = input.decode(m.subject, m.data, kind, replay);
    if (d === null) return undefined;
    if (!replay) counts[d.kind]++;
    if (d.kind === "process") job.process(d.record, seq);
    else job.quality(d.record, seq);
    return undefined;
  };
}

async function consumeUntilStop(
  reader: OrderedPullReader,
  take: Take,
  commit: () => Promise<void>,
  save: () => Promise<void>,
  o: QualityJetStreamOptions,
  log: Logger,
  counts: Counts,
): Promise<void> {
  let stopped = false;
  void o.stop.then(() => (stopped = true));
  let lastCheckpoint = performance.now();
  while (!stopped) {
    const r = await reader.round(take, commit);
    counts.redeliveries += r.redeliveries;
    if (performance.now() - lastCheckpoint < o.checkpointIntervalMs) continue;
    lastCheckpoint = performance.now();
    // The bucket unreachable for now: the previous checkpoint stays valid; tried again at the next interval.
    await save().catch((error: Error) => log.warn({ err: error }, "quality checkpoint failed; will retry"));
  }
}

/** After stop: takes what the stream held at that moment, until it is taken, a round brings nothing, or `drainMs` passed. */
async function drainStream(
  jsm: JetStreamManager,
  stream: string,
  reader: OrderedPullReader,
  take: Take,
  commit: () => Promise<void>,
  drainMs: number,
  counts: Counts,
): Promise<void> {
  const last = (await jsm.streams.info(stream)).state.last_seq;
  const deadline = performance.now() + drainMs;
  while (reader.top < last && performance.now() < deadline) {
    const r = await reader.round(take, commit);
    counts.redeliveries += r.redeliveries;
    if (!r.fetchFailed && r.taken + r.redeliveries === 0) break;
  }
}

/** The stream of the process and quality records, and the consumer's filter ("" : the whole stream); see the module comment. */
async function qualityStream(jsm: JetStreamManager, site: string, base: string): Promise<{ stream: string; filter: string }> {
  const subjects = [`lw.${site}.process.>`, `lw.${site}.quality.>`];
  const processStream = await streamCapturing(jsm, `lw.${site}.process.x`);
  const qualityStream = await streamCapturing(jsm, `lw.${site}.quality.x`);
  if (processStream === null && qualityStream === null) {
    const stream = `${base}_QUALITY`;
    await ensureStream(jsm, stream, subjects);
    return { stream, filter: "" };
  }
  if (processStream === null || processStream !== qualityStream) {
    throw new ConfigError(
      "--stream",
      `process records are captured by stream ${processStream ?? "(none)"} and quality records by ${qualityStream ?? "(none)"}: the quality job reads both from one stream (their order joins a batch's outcome to its readings)`,
    );
  }
  const own = (await jsm.streams.info(processStream)).config.subjects.every((s) => subjects.some((q) => s.startsWith(q.slice(0, -1))));
  return { stream: processStream, filter: own ? "" : `lw.${site}.>` };
}

/** The saved checkpoint, or null when there is none; a malformed one is a CheckpointError. */
async function loadQualityCheckpoint(store: CheckpointStore, name: string): Promise<QualityCheckpoint | null> {
  const saved = await store.load(name);
  if (saved === null) return null;
  let c: Partial<QualityCheckpoint>;
  try {
    c = JSON.parse(new TextDecoder().decode(saved.bytes)) as Partial<QualityCheckpoint>;
  } catch (error) {
    throw new CheckpointError(`quality checkpoint ${name}: not JSON`, { cause: error });
  }
  const ok = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;
  if (!ok(c.top) || !ok(c.replay_from) || !ok(c.outputs_through) || c.replay_from < 1 || c.replay_from > c.top + 1) {
    throw new CheckpointError(
      `quality checkpoint ${name}: expected {top, replay_from, outputs_through}, got ${JSON.stringify(c).slice(0, 200)}`,
    );
  }
  return c as QualityCheckpoint;
}
