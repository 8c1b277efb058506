/**
 * The one interface between the sensor job (sensor-job.ts) and what feeds it: the plant
 * simulator and a C-MAPSS fleet (plant-source.ts), core NATS and JetStream (nats-sources.ts).
 *
 * A source reads, fills batches and pushes them into the job's {@link SensorIntake}; it decides
 * when to commit — a JetStream source after every fetch, durably, and only then acknowledges; the
 * others at their flush interval or when their input runs dry, without waiting for the rows to be
 * durable. The job owns the engine, the keys, the outputs and the score lines; it opens, runs and
 * closes the source, and fails with whatever failed first (a kernel task, an output, the source).
 */
import type { Logger, RecordBatch, StreamEngine } from "../core/mod.js";

/** A single record's fields kept in its ml_sensor_data row (NATS single records; frames carry none). */
export interface RecordLabelFields {
  sensor_unit?: string;
  operating_mode?: string;
  work_order_id?: string;
}

/** What a source feeds: the job's side of the engine. */
export interface SensorIntake {
  /** For restoring and taking checkpoints (JetStream); the source never pushes to it directly. */
  readonly engine: StreamEngine;
  /** True once the job was asked to stop (Ctrl-C, the caller's `stop`). */
  readonly stopped: boolean;
  /** An empty batch of the run's size and payload width, for the source to fill. */
  allocateBatch(): RecordBatch;
  /**
   * The engine key id of `name`, interned on first sight with its parts: machine id, sensor type
   * and, when keyed by operating mode, the mode — what the score lines and rows name.
   */
  key(name: string, machine: string, sensor: string, mode?: string): number;
  /** The payload of a record with these fields (see {@link labelBytes}); 0: none. */
  labelOf(record: RecordLabelFields): number;
  /** Bytes of a record's payload: 4 (a label id, u32 little-endian) when the run keeps labels, else 0. */
  readonly labelBytes: number;
  /**
   * The fast path of a single MessagePack record (ingest workers): its key from the subject's
   * bytes, time, value and labels by the schema-specialised reader, appended to `batch` (which has
   * room) at `position`. The record's engine key id, or -1 when the reader cannot prove it valid:
   * then the generic decoder gives the reading or the exact dead-letter reason. Absent: every
   * message takes the generic decoder.
   */
  readRecord?(batch: RecordBatch, subject: Uint8Array, data: Uint8Array, position: number): number;
  /** Pushes the batch's records (none: nothing to do) and empties it; it may be refilled once this resolves. */
  push(batch: RecordBatch): Promise<void>;
  /**
   * Every record pushed so far through the kernels and out: score lines written or published,
   * rows handed to the outputs — and with `durable`, inserted into ClickHouse or spilled to disk,
   * which is what a JetStream acknowledgement waits for.
   */
  commit(durable: boolean): Promise<void>;
  /** Hands the outputs' rows over without flushing the engine (a long unpaced run's steady pace). */
  handOver(): Promise<void>;
  /** Waits while the outputs' memory queue is full: how a source that acknowledges nothing is paced. */
  room(): Promise<void>;
  /**
   * What the analyses keep of these keys outside kernel memory (the SPC analysis's alert
   * episodes), per analysis, for a checkpoint beside the kernel state; absent: nothing.
   */
  saveAnalyses?(keys: readonly string[]): unknown[];
  /** Restores what {@link saveAnalyses} gave, once the engine restored the keys. */
  restoreAnalyses?(state: readonly unknown[]): void;
  /** Operational events (fetch failures, lost deliveries, failed checkpoints, limits changes). */
  readonly log: Logger;
}

export interface SensorSource {
  /** For the metrics' `source` label. */
  readonly name: string;
  /** The most engine keys the source can bring (the engine's `keysMax`). */
  readonly keysMax: number;
  /** The most key groups worth having (a source with 6 keys gains nothing from 16 groups). */
  readonly groupsMax: number;
  /** Keys sharing their first `parts` parts (one sensor's charts per operating mode) share a key group (StreamEngineOptions). */
  readonly groupByKeyPrefix?: { parts: number; keysPerPrefix: number };
  /** Records carry (sensor_unit, operating_mode, work_order_id) for their rows. */
  readonly labelled: boolean;
  /** The input ends by itself (a simulation, a fleet file): its end predicts each machine's last step. */
  readonly finite: boolean;
  /** Connects, restores checkpoints, interns the keys it knows; once this resolves the source consumes. */
  open(intake: SensorIntake): Promise<void>;
  /** Reads until the input ends or the job stops; everything read has been committed when this resolves. */
  run(intake: SensorIntake): Promise<void>;
  /** Releases what `open` took (subscriptions); called once, after `run` or a failure. */
  close(): Promise<void>;
  /**
   * Checkpoints at the next occasion, whatever the interval (state a person changed: an
   * acknowledgement); resolves once it is saved. Absent: the source takes no checkpoints.
   */
  checkpointSoon?(): Promise<void>;
  /** The source's figures for the console summary ("messages 10, shed 0, …"). */
  summary(): string;
}
