/**
 * The sensor job's NATS sources: readings on `lw.<site>.sensor.<machine>.<sensor>`, single
 * records (MessagePack or JSON) or frames, decoded by {@link NatsInput} (what is invalid goes to
 * the dead-letter subject, counted).
 *
 * - **Core NATS** ({@link CoreNatsSource}): at-most-once. A bounded queue sits between the
 *   subscription and the engine; when the engine falls behind, what does not fit is shed and
 *   counted.
 * - **JetStream** ({@link JetStreamSource}): one durable pull consumer per owned partition
 *   (ack-all where the server allows it, `max_deliver`, `ack_wait`, `max_ack_pending` bounded),
 *   fetching as fast as the engine takes records. A fetched batch is pushed, the engine flushed,
 *   its outputs published and durable, and only then is it acknowledged — one ack per batch on
 *   an ack-all consumer (connectors/nats/jetstream-reader.ts). Every `checkpointIntervalMs` the
 *   state of each partition's keys is saved to a key-value bucket with the last stream sequence
 *   it covers. At start, each partition's state is restored and its consumer re-created to
 *   deliver from the sequence after the checkpoint, and messages at or below a partition's last
 *   processed sequence (redeliveries) are acknowledged without entering the state again — so a
 *   restart neither loses nor double-counts a record in the state. Outputs of the records between
 *   the checkpoint and a crash are published again after the restart (at-least-once outputs).
 *
 * Partitions: the server maps `lw.<site>.sensor.<machine>.<sensor>` to
 * `lw.<site>.p.<k>.sensor.<machine>.<sensor>` with `{{partition(n, 1)}}` on the machine token
 * (docs/nats.md, "Scale-out"); an instance owns some k and consumes `lw.<site>.p.<k>.sensor.>`.
 */
import type { Consumer, JetStreamManager, JsMsg, NatsConnection } from "nats";
import { decodeCheckpoint, encodeCheckpoint, type RecordBatch } from "../core/mod.js";
import {
  BoundedSubscription,
  CheckpointStore,
  ensureStream,
  frameSeq,
  type InputCounts,
  NatsInput,
  openDurableConsumer,
  OrderedPullReader,
  rawJetStreamSubject,
} from "../../connectors/nats/mod.js";
import type { SensorIntake, SensorSource } from "./source.js";

/**
 * Sensor messages into a batch: keys interned through the intake, a single record's labels into
 * its payload, each key's partition noted (for the partition's checkpoint).
 */
class SensorMessages {
  readonly input: NatsInput;
  /** The partition each engine key's readings come from. */
  readonly partitionOfKey: number[] = [];
  /** Single records the intake's fast path took (one reading each; the generic decoder never saw them). */
  private fast = 0;

  constructor(nc: NatsConnection, site: string) {
    this.input = new NatsInput(nc, site);
  }

  /** Messages and readings of both paths; dead letters (the generic decoder's alone). */
  counts(): InputCounts {
    const c = this.input.counts();
    return { ...c, messages: c.messages + this.fast, readings: c.readings + this.fast };
  }

  /**
   * A JetStream message: the intake's fast path when it has one and can prove the record, else
   * {@link take}. Undefined when done without waiting — the common case, so the reader spends no
   * promise per message; a promise when the batch had to be pushed first or the generic decoder ran.
   */
  takeJetStream(intake: SensorIntake, batch: RecordBatch, m: JsMsg, seq: number, partition: number): Promise<void> | undefined {
    const subject = intake.readRecord === undefined ? null : rawJetStreamSubject(m);
    if (subject !== null) {
      if (batch.length === batch.keyIds.length) return intake.push(batch).then(() => this.takeJetStream(intake, batch, m, seq, partition));
      const id = (intake.readRecord as NonNullable<SensorIntake["readRecord"]>)(batch, subject, m.data, seq);
      if (id >= 0) {
        this.fast++;
        if (this.partitionOfKey[id] === undefined) this.partitionOfKey[id] = partition;
        return undefined;
      }
    }
    // The generic decoder may dead-letter it: wait for room rather than have its dead letter shed (the message waits in the stream).
    const room = this.input.deadLetterRoom();
    if (room !== undefined) return room.then(() => this.take(intake, batch, m.subject, m.data, seq, partition));
    return this.take(intake, batch, m.subject, m.data, seq, partition);
  }

  /** Appends a message's readings to `batch`, pushing the batch whenever it fills. */
  async take(
    intake: SensorIntake,
    batch: RecordBatch,
    subject: string,
    data: Uint8Array,
    position: number,
    partition: number,
  ): Promise<void> {
    const readings = this.input.decode(subject, data);
    if (readings === null) return;
    // The row seq (clickhouse-schema.ts SensorDataRow.seq): the position for a single record;
    // position × stride + index for a frame's readings, so two readings of one key in one
    // millisecond of one frame stay two rows. Checkpoints and redelivery use the message's stream
    // sequence, never these.
    const base = readings.frame ? frameSeq(position, 0) : position;
    const label = intake.labelBytes > 0 && readings.record !== undefined ? intake.labelOf(readings.record) : 0;
    for (let i = 0; i < readings.length; i++) {
      if (batch.length === batch.keyIds.length) await intake.push(batch);
      const id = intake.key(readings.key(i), readings.machine(i), readings.sensor(i));
      if (this.partitionOfKey[id] === undefined) this.partitionOfKey[id] = partition;
      const k = batch.length++;
      batch.keyIds[k] = id;
      batch.times[k] = readings.time(i);
      batch.values[k] = readings.value(i);
      batch.positions[k] = readings.frame ? base + i : position;
      if (intake.labelBytes > 0) {
        const p = batch.payload as Uint8Array;
        p[4 * k] = label & 0xff;
        p[4 * k + 1] = (label >>> 8) & 0xff;
        p[4 * k + 2] = (label >>> 16) & 0xff;
        p[4 * k + 3] = label >>> 24;
      }
    }
  }
}

export interface NatsSourceOptions {
  site: string;
  /** Most distinct sensors (engine keys). */
  keysMax: number;
}

/**
 * Core NATS: at-most-once. Messages wait in a queue bounded in bytes; what does not fit when the
 * engine falls behind is shed and counted (messages and bytes). The engine is not flushed after
 * every chunk — its own backpressure paces the loop and the kernels overlap with decoding — only
 * when the queue runs dry, so scores are never held back while the input is idle. At stop, the
 * subscription is drained and what is queued is processed, not dropped.
 */
export class CoreNatsSource implements SensorSource {
  readonly name = "nats";
  readonly labelled = true;
  readonly finite = false;
  readonly groupsMax = Number.POSITIVE_INFINITY;
  readonly keysMax: number;
  readonly messages: SensorMessages;
  shed = 0;
  shedBytes = 0;
  private subscription: BoundedSubscription | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly nc: NatsConnection,
    private readonly o: NatsSourceOptions & { queuedBytesMax: number },
  ) {
    this.keysMax = o.keysMax;
    this.messages = new SensorMessages(nc, o.site);
  }

  async open(): Promise<void> {
    this.subscription = new BoundedSubscription(this.nc, `lw.${this.o.site}.sensor.>`, this.o.queuedBytesMax, (bytes) => {
      this.shed++;
      this.shedBytes += bytes;
    });
    const subscription = this.subscription;
    this.timer = setInterval(() => subscription.wake(), 100);
  }

  async run(intake: SensorIntake): Promise<void> {
    const input = this.subscription as BoundedSubscription;
    const batch = intake.allocateBatch();
    let position = 0;
    let draining = false;
    for (;;) {
      if (intake.stopped && !draining) {
        draining = true;
        await input.drain();
      }
      if (input.length === 0) {
        // Nothing to acknowledge: the rows are handed over, durable only at the very end.
        const last = draining && input.closed;
        await intake.push(batch);
        await intake.commit(last);
        if (last) break;
        await input.wait();
        continue;
      }
      for (const m of input.take(1024)) await this.messages.take(intake, batch, m.subject, m.data, position++, 0);
      // A busy input may never run dry: the sink's memory queue paces the loop here too.
      await intake.room();
    }
  }

  async close(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
  }

  summary(): string {
    const c = this.messages.counts();
    return `messages ${c.messages}, dead-lettered ${c.deadLettered}, shed ${this.shed}`;
  }
}

/** How a job's JetStream pull consumers fetch, acknowledge and checkpoint (the run's flags). */
export interface JetStreamConsumerSettings {
  /** Messages per fetch. */
  fetchMessagesMax: number;
  ackWaitMs: number;
  maxDeliver: number;
  maxAckPending: number;
  checkpointIntervalMs: number;
  checkpointBucket: string;
  /** One ack per message even where the server allows ack-all (default false). */
  explicitAck?: boolean;
}

/** The consumer settings every JetStream job starts from (the sensor, ingest and quality jobs; `run`'s flags override them). */
export const DEFAULT_JETSTREAM_CONSUMER: Readonly<Required<Omit<JetStreamConsumerSettings, "explicitAck">>> = Object.freeze({
  fetchMessagesMax: 1000,
  ackWaitMs: 30_000,
  maxDeliver: 10,
  maxAckPending: 20_000,
  checkpointIntervalMs: 5_000,
  checkpointBucket: "linewatch-checkpoints",
});

export interface JetStreamSourceOptions extends NatsSourceOptions, JetStreamConsumerSettings {
  stream: string;
  /** Partitions this instance owns (the server's partition mapping); undefined: unpartitioned. */
  partitions?: readonly number[];
  /** Checkpoints saved so far, updated as the job runs. */
  progress?: { checkpoints: number };
}

/** The key of a partition's checkpoint in the bucket. */
export function checkpointName(site: string, stream: string, partition: number | null): string {
  return `${site}.${stream}.${partition === null ? "all" : `p${partition}`}`;
}

/** JetStream: durable pull consumers per partition, ack after outputs, checkpoints, dedup by sequence (module comment). */
export class JetStreamSource implements SensorSource {
  readonly name = "nats";
  readonly labelled = true;
  readonly finite = false;
  readonly groupsMax = Number.POSITIVE_INFINITY;
  readonly keysMax: number;
  readonly messages: SensorMessages;
  /** Redeliveries at or below a partition's last sequence, acknowledged and skipped. */
  duplicates = 0;
  checkpoints = 0;
  fetchErrors = 0;
  /** Acknowledgements sent (ack-all: one per fetched batch). */
  acks = 0;
  private readonly partitioned: boolean;
  private readonly readers = new Map<number, OrderedPullReader>();
  private store: CheckpointStore | null = null;
  /** A partition's loop failed: the others stop. */
  private failed = false;
  /** Partitions to checkpoint at their next iteration, whatever the interval (an acknowledgement is state to keep). */
  private readonly soon = new Set<number>();
  /** Callers of {@link checkpointSoon}: the partitions still to checkpoint for each. */
  private soonWaiters: Array<{ left: Set<number>; resolve(): void }> = [];

  constructor(
    private readonly nc: NatsConnection,
    private readonly o: JetStreamSourceOptions,
  ) {
    this.keysMax = o.keysMax;
    this.partitioned = o.partitions !== undefined;
    this.messages = new SensorMessages(nc, o.site);
  }

  /** Creates the stream when missing; per partition, restores its checkpoint and consumes from the sequence after it. */
  async open(intake: SensorIntake): Promise<void> {
    const { site, stream } = this.o;
    const jsm = await this.nc.jetstreamManager();
    await ensureStream(jsm, stream, [this.partitioned ? `lw.${site}.p.*.sensor.>` : `lw.${site}.sensor.>`]);
    this.store = await CheckpointStore.open(this.nc, this.o.checkpointBucket);
    for (const p of this.o.partitions ?? [0]) {
      const top = await this.restore(intake, p);
      const reader = new OrderedPullReader(await this.openConsumer(jsm, p, top + 1, intake), top, {
        fetchMessagesMax: this.o.fetchMessagesMax,
        label: `partition ${p}`,
        log: intake.log,
        reopen: (start) => this.openConsumer(jsm, p, start, intake),
      });
      this.readers.set(p, reader);
    }
  }

  /**
   * One loop per partition: fetch, process, publish, ack, and checkpoint when due. A partition's
   * checkpoint is taken between two of its own iterations, so its state holds exactly the records
   * up to its last sequence; other partitions' loops touch other keys.
   */
  async run(intake: SensorIntake): Promise<void> {
    // A partition that fails stops the others (they commit and checkpoint what they took, and
    // stop); the job fails with the first failure once every loop has ended.
    const loops = [...this.readers].map(([p, reader]) =>
      this.consume(intake, p, reader).catch((error: unknown) => {
        this.failed = true;
        throw error;
      }),
    );
    const failure = (await Promise.allSettled(loops)).find((r) => r.status === "rejected");
    if (failure !== undefined) throw failure.reason;
  }

  async close(): Promise<void> {}

  /**
   * Every partition checkpoints at its next iteration (a fetch round: at most about a second on an
   * idle stream), whatever the interval; resolves once each has. An alert episode's
   * acknowledgement is answered then, so a kill -9 after the answer keeps it.
   */
  checkpointSoon(): Promise<void> {
    if (this.readers.size === 0) return Promise.resolve();
    for (const p of this.readers.keys()) this.soon.add(p);
    return new Promise((resolve) => this.soonWaiters.push({ left: new Set(this.readers.keys()), resolve }));
  }

  summary(): string {
    const c = this.messages.counts();
    return `messages ${c.messages}, dead-lettered ${c.deadLettered}, redeliveries skipped ${this.duplicates}, checkpoints ${this.checkpoints}, acks ${this.acks}`;
  }

  private async consume(intake: SensorIntake, p: number, reader: OrderedPullReader): Promise<void> {
    const batch = intake.allocateBatch();
    let lastCheckpoint = performance.now();
    while (!intake.stopped && !this.failed) {
      // Outputs are published and durable before any message is acknowledged.
      const r = await reader.round(
        (m, seq) => this.messages.takeJetStream(intake, batch, m, seq, p),
        () => intake.push(batch).then(() => intake.commit(true)),
      );
      this.duplicates += r.redeliveries;
      this.acks += r.acks;
      if (r.fetchFailed) {
        this.fetchErrors++;
        if (r.taken + r.redeliveries === 0) continue;
      }
      if (this.soon.delete(p) || performance.now() - lastCheckpoint >= this.o.checkpointIntervalMs) {
        lastCheckpoint = performance.now();
        try {
          await this.checkpoint(intake, p, reader.top);
        } catch (error) {
          // The bucket is unreachable for now; the previous checkpoint stays valid. Try again later.
          intake.log.warn({ partition: p, err: error }, "checkpoint failed; will retry");
        }
      }
    }
    await intake.push(batch);
    await intake.commit(true);
    await this.checkpoint(intake, p, reader.top);
  }

  /** Partition p's state from its checkpoint, if any; the last stream sequence it covers (0: none). */
  private async restore(intake: SensorIntake, p: number): Promise<number> {
    const saved = await (this.store as CheckpointStore).load(checkpointName(this.o.site, this.o.stream, this.partitioned ? p : null));
    if (saved === null) return 0;
    const ckpt = decodeCheckpoint(saved.bytes);
    await intake.engine.restore(ckpt);
    // The analyses' own state of the keys (open alert episodes) continues where the kernels do.
    if (ckpt.analyses !== undefined) intake.restoreAnalyses?.(ckpt.analyses);
    for (const k of ckpt.keys) this.messages.partitionOfKey[intake.engine.keys.lookup(k.name)] = p;
    return saved.position;
  }

  /** Saves the state of partition p's keys, covering stream sequence `top`. */
  private async checkpoint(intake: SensorIntake, p: number, top: number): Promise<void> {
    const { engine } = intake;
    const ckpt = await engine.checkpoint(top, (key) => this.messages.partitionOfKey[engine.keys.lookup(key)] === p);
    // Taken with the kernel state, between two of the partition's iterations: both cover exactly the records up to `top`.
    const analyses = intake.saveAnalyses?.(ckpt.keys.map((k) => k.name));
    if (analyses !== undefined) ckpt.analyses = analyses;
    // Only callers of checkpointSoon already waiting hold state this snapshot has (an
    // acknowledgement applied before it); one that arrives while it is saved waits for the next.
    const covered = new Set(this.soonWaiters);
    await (this.store as CheckpointStore).save(
      checkpointName(this.o.site, this.o.stream, this.partitioned ? p : null),
      encodeCheckpoint(ckpt),
      top,
    );
    this.checkpoints++;
    if (this.o.progress !== undefined) this.o.progress.checkpoints = this.checkpoints;
    for (const w of covered) w.left.delete(p);
    for (const w of covered) if (w.left.size === 0) w.resolve();
    this.soonWaiters = this.soonWaiters.filter((w) => w.left.size > 0);
  }

  /** (Re)creates partition p's durable consumer, delivering from stream sequence `start`. */
  private openConsumer(jsm: JetStreamManager, p: number, start: number, intake: SensorIntake): Promise<Consumer> {
    const { site } = this.o;
    return openDurableConsumer(
      jsm,
      {
        stream: this.o.stream,
        durable: `lw-${site}-${this.partitioned ? `p${p}` : "all"}`,
        filterSubject: this.partitioned ? `lw.${site}.p.${p}.sensor.>` : `lw.${site}.sensor.>`,
        maxDeliver: this.o.maxDeliver,
        ackWaitMs: this.o.ackWaitMs,
        maxAckPending: this.o.maxAckPending,
        log: intake.log,
        explicitAck: this.o.explicitAck,
      },
      start,
    );
  }
}
