/**
 * What the main thread and an ingest worker say to each other. The main thread steers: it sends
 * the configuration once and a stop; it receives counters (a shared Float64Array each worker
 * writes its own slots of — no message per record), batches of encoded frames for the live server,
 * alert events, and the end. Records never cross.
 */
import type { FrameAudit } from "../../../connectors/live/mod.js";
import type { AckResult, EncodedAlerts, SpcLimitsChange } from "../../../operators/spc/mod.js";
import type { JetStreamConsumerSettings } from "../nats-sources.js";
import type { ServedLimits } from "../outputs.js";
import type { IforestModelInfo } from "../../../operators/iforest/mod.js";
import type { AnalysisSpec } from "./analysis-spec.js";
import type { EncodedTableRows, RowsHandOver } from "./clickhouse-rows.js";
import type { RingFrames, RingMemory } from "./frame-ring.js";

export const INGEST_ROLE = "linewatch-ingest";

export interface IngestWorkerData {
  role: typeof INGEST_ROLE;
  /** This worker's index (its counter slots, its score-frame subject). */
  index: number;
  url: string;
  site: string;
  /** Core NATS: the subjects it subscribes to — its partitions (`lw.<site>.p.<k>.sensor.>`) or the whole sensor subject. */
  subjects: readonly string[];
  /** Its partitions (empty: the whole, unpartitioned sensor subject). */
  partitions: readonly number[];
  /** JetStream instead of core NATS: a durable pull consumer per partition, checkpoints per partition. */
  jetstream: IngestJetStream | null;
  analyses: readonly AnalysisSpec[];
  groups: number;
  keysMax: number;
  batchRecordsMax: number;
  /** Kernel threads of this worker's engine; 0: the kernels run inline, on the ingest worker's thread. */
  kernelWorkers: number;
  /** Records decoded and waiting for the kernels; past it a core message is shed (counted). */
  pendingRecordsMax: number;
  /** Publish one score frame per drained batch on `lw.<site>.score-frame.<index>`. */
  scoreFrames: boolean;
  /** Send the main thread one score frame per machine per drained batch, for `machine/<id>`. */
  liveFrames: boolean;
  /** Where those frames go when they fit (frame-ring.ts); absent or null: each batch's frames are transferred. */
  frameRing?: RingMemory | null;
  /** Encode ml_sensor_data and ml_scores rows (Native blocks) and send them to the main thread's sink. */
  clickhouse: boolean;
  /** Where those rows' insert bodies go when they fit (body-ring.ts); absent or null: each body is transferred. */
  bodyRing?: RingMemory | null;
  /** When the gathered rows of a table go to the sink (its batchRowsMax and flushIntervalMs); absent: DEFAULT_ROWS_HAND_OVER. */
  clickhouseHandOver?: RowsHandOver;
  /**
   * Publish one score line per record on `lw.<site>.score.<machine>.<sensor>` (the opt-in
   * compatibility output of `run --nats`, JSON or MessagePack); null or absent: none.
   */
  scoreLines?: "json" | "msgpack" | null;
  /**
   * Round the analyses' outputs to 15 significant digits before they are encoded (ClickHouse,
   * frames, the limits reported): the numbers the replay and the score lines print, as the
   * main-thread job's rows hold them (`run --nats`: ClickHouse = replay). Absent: exact doubles.
   */
  roundStatistics?: boolean;
  /**
   * The audit record (docs/commands/audit.md): the run's config hash; the worker stamps its own
   * kernel hash (of the module it compiled) and this on every ml_scores row and score line. Absent: none.
   */
  audit?: { configHash: string } | null;
  /**
   * Send the iforest analysis's output rows to the main thread for the model's drift watch
   * (engine/jobs/ingest/drift-rows.ts); absent or false: none are sent.
   */
  driftRows?: boolean;
  /** Float64Array slots: COUNTER_SLOTS per worker, this worker's at index × COUNTER_SLOTS. */
  counters: SharedArrayBuffer;
  /** Int32Array set by the main thread: CONTROL_PAUSE 1 while the sink's queue is half full (drains wait; a full pending batch sheds). */
  control: SharedArrayBuffer;
}

/** How an ingest worker consumes JetStream (engine/jobs/nats-sources.ts JetStreamSource's settings): the stream, and how its consumers fetch, ack and checkpoint. */
export interface IngestJetStream extends JetStreamConsumerSettings {
  stream: string;
}

export const CONTROL_PAUSE = 0;
export const CONTROL_SLOTS = 4;

/** Slot of each counter in a worker's block of the shared counters. */
export const COUNTER = {
  messages: 0,
  readings: 1,
  scored: 2,
  shed: 3,
  deadLettered: 4,
  scoreFrames: 5,
  liveFrames: 6,
  keys: 7,
  drains: 8,
  kernelMs: 9,
  /** Wall milliseconds of the worker's drains (decode excluded): its busy share over time. */
  drainMs: 10,
  /** Single records read by the schema-specialised reader (the rest went through the generic decoder). */
  fastRecords: 11,
  /** Readings of the shed messages (a frame sheds all of its readings). */
  shedReadings: 12,
  /** Milliseconds drains waited for the sink (CONTROL_PAUSE). */
  pausedMs: 13,
  /** JetStream acknowledgements sent (ack-all: one per fetched batch). */
  acks: 14,
  /** The worker thread's Linux thread id (0 where /proc has none): a bench reads the thread's CPU time from /proc by it. */
  threadId: 15,
  /** JetStream: redeliveries skipped (at or below the checkpoint), and checkpoints taken. */
  duplicates: 16,
  checkpoints: 17,
  /**
   * Iforest rows sent to the main thread's drift watch (the worker writes), taken by it (the main
   * thread writes), and not sent because sent − taken was at the bound (drift-rows.ts).
   */
  driftRowsSent: 18,
  driftRowsTaken: 19,
  driftRowsShed: 20,
} as const;
export const COUNTER_SLOTS = 21;

/**
 * A worker's iforest output rows for the drift watch: `n` rows of `fields` (F features, the
 * score, the model generation) and their event times; `models` the models of generations
 * `firstGeneration`… not sent before (a worker's first message starts at 0: a restarted worker's
 * generations are numbered anew).
 */
export interface DriftRows {
  n: number;
  fields: number;
  rows: Float64Array;
  times: Float64Array;
  firstGeneration: number;
  models: IforestModelInfo[];
}

/** Worker → main. */
export type IngestEvent =
  | { kind: "ready" }
  /** `audit`: the frames' audit record (an audited run only); `ring`: the frames are in the frame ring (`frames` empty). */
  | { kind: "frames"; topics: string[]; frames: Uint8Array[]; ring?: RingFrames; audit?: FrameAudit }
  | { kind: "alerts"; alerts: EncodedAlerts }
  /** The alert episodes open in the keys a checkpoint restored (no event: they were routed before the restart). */
  | { kind: "episodes"; alerts: EncodedAlerts }
  /** The answer to an ack command: the acknowledged episode, or why not ("unknown": not open on this worker). */
  | { kind: "ackApplied"; id: number; result: AckResult }
  | { kind: "rows"; tables: EncodedTableRows[] }
  | { kind: "driftRows"; drift: DriftRows }
  | { kind: "synced"; id: number }
  /** Keys seen for the first time (bounded by keysMax): the machines the API and health rows know. */
  | { kind: "keys"; keys: Array<{ key: string; machine: string }> }
  /** Keys whose SPC limits changed version since the last report (what GET /api/…/limits serves). */
  | { kind: "limits"; limits: KeyLimits[] }
  /** Dead-lettered messages by reason so far, sent when they changed (for the metrics). */
  | { kind: "deadLetters"; byReason: Record<string, number> }
  /** The answer to a limits command: `found` false when the worker has no such key (or no SPC). */
  | { kind: "limitsApplied"; id: number; found: boolean; error?: string }
  /** JetStream: may the worker acknowledge? Answered once every row it sent before is durable. */
  | { kind: "durable?"; id: number }
  | { kind: "stopped"; byReason: Record<string, number>; labelsUnkept: number }
  | { kind: "failed"; message: string; stack?: string };

/** Main → worker. */
export type IngestCommand =
  | { kind: "stop" }
  | { kind: "sync"; id: number }
  | { kind: "durable"; id: number; error?: string }
  /** A limits change from the API, applied to the key's SPC state after the records the worker already has. */
  | { kind: "limits"; id: number; key: string; change: SpcLimitsChange }
  /** A person's acknowledgement of an open alert episode (the API's), applied by the worker that has it open. */
  | { kind: "ack"; id: number; episode: string; at: number; by: string | null; note: string | null };

/** A key's SPC limits at one version, as the API serves them. */
export type KeyLimits = ServedLimits;

/** The subject a worker's score frames go to. */
export function scoreFrameSubject(site: string, worker: number): string {
  return `lw.${site}.score-frame.${worker}`;
}
