/**
 * An ingest worker: a thread with its own NATS connection that owns whole partitions of the
 * sensor stream — subscribes to them, decodes each message into columns, runs the kernels of its
 * key groups inline (its own engine, `workers: 0`), and encodes the outputs as score frames. The
 * main thread gets counters in shared memory, frames for the live server and alert events; no
 * record crosses a thread as an object.
 *
 * The loop. nats.js calls `onMessage` for each message as it parses the socket's bytes; the
 * readings go into the pending batch and a drain is scheduled (setImmediate) once per burst. A
 * drain pushes the pending records through the engine, flushes it (the kernels run here, on this
 * thread), lets the analyses observe each row (SPC alert episodes, masks), and emits the rows as
 * frames. While a drain runs nothing else does, so a burst is bounded by `pendingRecordsMax`:
 * past it a message is shed and counted (core NATS is at-most-once; JetStream will pull instead).
 * A batch closes on size or at the end of the burst: once `batchRecordsMax` records are pending
 * the drain runs before the socket's next read (see {@link IngestWorker.scheduleDrain}).
 */
import { readlinkSync } from "node:fs";
import { isMainThread, parentPort, workerData } from "node:worker_threads";
import { headers as natsHeaders, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from "nats";
import type { FrameAudit } from "../../../connectors/live/mod.js";
import { allocateBatch, createLogger, kernelHash, type Logger, type OutputChunk, type RecordBatch, StreamEngine } from "../../core/mod.js";
import { auditColumns } from "../../../connectors/clickhouse/mod.js";
import { JetStreamSource } from "../nats-sources.js";
import type { RecordLabelFields, SensorIntake } from "../source.js";
import { connectNats, type FrameReadingColumns, NatsInput, rawSubject } from "../../../connectors/nats/mod.js";
import { type FrameTarget, LabelTable, SensorRecordReader, SensorRecordView, SubjectKeyTable } from "../../../connectors/wire/mod.js";
import { observeChunkRows, observeRecord, type RecordAnalysis, type RowContext, roundStatistics } from "../../../operators/mod.js";
import { type AckResult, AlertEncoder, type AlertEpisodeEvent, episodeTrackerOf } from "../../../operators/spc/mod.js";
import type { IforestAnalysis } from "../../../operators/iforest/mod.js";
import { buildAnalyses } from "./analysis-spec.js";
import { DriftRowsOut } from "./drift-rows.js";
import { BodyRingWriter } from "./body-ring.js";
import { FrameRingWriter } from "./frame-ring.js";
import { ClickHouseRows, DEFAULT_ROWS_HAND_OVER } from "./clickhouse-rows.js";
import {
  CONTROL_PAUSE,
  COUNTER,
  COUNTER_SLOTS,
  INGEST_ROLE,
  type IngestCommand,
  type IngestEvent,
  type IngestJetStream,
  type IngestWorkerData,
  scoreFrameSubject,
} from "./protocol.js";
import { type RowKeys, ScoredRows } from "./scored-rows.js";
import { WorkerReports } from "./worker-reports.js";
import { AuditMembers } from "../audit/members.js";

/** Rows of one emitted frame at most: keeps a NATS score frame under the server's default 1 MiB payload. */
const FRAME_ROWS_MAX = 2048;
/**
 * How long a core NATS worker holds its alert events at most before it posts them (ms), and how
 * many of the encoder's numbers (f64) at most: one post for the events of many drains. A post
 * per drain (400–600 a second per worker on the e2e frames row) cost the worker 3 % of its CPU
 * in the post and its wake-up of the main thread, and the main thread a message each. A sync, a
 * JetStream commit, an acknowledgement and the stop post them at once.
 */
const ALERTS_HELD_MS = 25;
const ALERTS_HELD_NUMBERS_MAX = 1 << 16;

class IngestWorker implements RowKeys, SensorIntake {
  stopped = false;
  readonly engine: StreamEngine;
  private readonly analyses: RecordAnalysis[];
  private readonly namedOuts: number[];
  private readonly rows: ScoredRows;
  private readonly counters: Float64Array;
  private readonly base: number;
  private input: NatsInput | null = null;
  private nc: NatsConnection | null = null;
  private subscriptions: Subscription[] = [];
  private pending: RecordBatch;
  private spare: RecordBatch;
  private draining = false;
  private scheduled = false;
  /** A drain is queued as a microtask: a batch's worth is pending (scheduleDrain). */
  private drainNext = false;
  private position = 0;
  /**
   * Alert events raised since the last emit, as numbers to transfer (a structured clone of the
   * objects cost more than the SPC kernel); each string goes to the main thread's decoder of this
   * worker once.
   */
  private readonly alerts = new AlertEncoder(true);
  private readonly subjects = new SubjectKeyTable();
  private readonly reader = new SensorRecordReader();
  private readonly view = new SensorRecordView();
  /** Engine key id of each subject-table id. */
  private readonly keyOfSubject: number[] = [];
  /** Label id of the record each subject's kept layout was kept from (-1: look it up; SensorRecordReader.readKept). */
  private readonly labelOfSubject: number[] = [];
  /** Engine key ids of a frame key table (tables are shared by frames with the same keys). */
  private readonly frameKeyIds = new WeakMap<readonly string[], Uint32Array>();
  private readonly keyNames: string[] = [];
  /** observeRecord's row views (score lines only). */
  private readonly rowScratch: Float64Array[];
  private readonly frameKeys: string[] = [];
  private readonly machineIndex: number[] = [];
  private readonly machineNames: string[] = [];
  private readonly machineIds = new Map<string, number>();
  private readonly keyName = (keyId: number): string => this.keyNames[keyId];
  private readonly ctx: RowContext = { keyId: 0, key: "", position: 0, time: 0, value: 0 };
  /** Where a frame is decoded: the pending batch's columns from its length on (set per message; the batches swap). */
  private readonly frameTarget: FrameTarget = {
    keyIndex: new Uint32Array(0),
    times: new Float64Array(0),
    values: new Float64Array(0),
    at: 0,
  };
  private failure: Error | null = null;
  /** Interned (sensor_unit, operating_mode, work_order_id) of single records, for ml_sensor_data. */
  private readonly labels = new LabelTable();
  readonly labelBytes: number;
  private readonly clickhouse: ClickHouseRows | null;
  /** The audit members of each score line; null when the run is not audited. */
  private readonly auditMembers: AuditMembers | null;
  /** The run's audit hashes (this thread's kernel, the run's settings); null when not audited. */
  private readonly audit: { kernelHash: string; configHash: string } | null;
  private readonly forest: IforestAnalysis | null;
  private readonly control: Int32Array;
  private readonly framesOut: boolean;
  /** The live frames' way to the main thread (frame-ring.ts); null: transferred. */
  private readonly frameRing: FrameRingWriter | null;
  private source: JetStreamSource | null = null;
  private running: Promise<void> | null = null;
  /** The source's acks already added to COUNTER.acks. */
  private acksCounted = 0;
  private durableNext = 0;
  private readonly durableWaiters = new Map<number, { resolve(): void; reject(e: Error): void }>();
  /** Hands the gathered ClickHouse rows over when they come due by age (a quiet stream has no drain to do it). */
  private rowsTimer: NodeJS.Timeout | null = null;
  /** When the alert events held now were first seen held (performance.now(); −1: none held), and the timer that posts them. */
  private alertsSince = -1;
  private alertsTimer: NodeJS.Timeout | null = null;
  private logger: Logger | null = null;
  /** Keys, limits and dead-letter reports to the main thread; the opt-in per-record score lines; API limits changes. */
  private readonly reports: WorkerReports;
  /** The iforest rows for the main thread's drift watch (when it watches). */
  private readonly drift: DriftRowsOut | null;

  constructor(private readonly d: IngestWorkerData) {
    this.analyses = buildAnalyses(d.analyses, this.alerts, createLogger({ component: "iforest" }));
    this.rowScratch = this.analyses.map(() => new Float64Array(0));
    this.engine = new StreamEngine(
      {
        kernels: this.analyses.map((a) => a.kernel),
        workers: d.kernelWorkers,
        groups: d.groups,
        keysMax: d.keysMax,
        batchRecordsMax: d.batchRecordsMax,
        lateness: null,
        reorderRecordsPerKeyMax: 1,
        payloadBytes: d.clickhouse ? 4 : 0,
      },
      { onOutput: (chunk) => this.onOutput(chunk) },
    );
    for (const a of this.analyses) a.start?.(this.engine);
    this.namedOuts = this.analyses.flatMap((a, k) => (a.outColumns === undefined ? [] : [k]));
    const names = this.namedOuts.flatMap((k) => this.analyses[k].outColumns as readonly string[]);
    this.rows = new ScoredRows(FRAME_ROWS_MAX, d.keysMax, names, this);
    this.labelBytes = d.clickhouse ? 4 : 0;
    this.pending = allocateBatch(d.pendingRecordsMax, this.labelBytes);
    this.spare = allocateBatch(d.pendingRecordsMax, this.labelBytes);
    const forest = this.analyses.find((a) => a.name === "iforest") as IforestAnalysis | undefined;
    this.forest = forest ?? null;
    // The audit record: this thread's kernel hash (of the module it compiled) and the run's settings.
    const audit = d.audit == null ? null : { kernelHash: kernelHash(), configHash: d.audit.configHash };
    this.audit = audit;
    this.auditMembers = audit === null ? null : new AuditMembers(audit, this.analyses);
    const columns = audit === null ? undefined : auditColumns(audit.kernelHash, audit.configHash);
    const handOver = d.clickhouseHandOver ?? DEFAULT_ROWS_HAND_OVER;
    const bodyRing = d.bodyRing == null ? null : new BodyRingWriter(d.bodyRing);
    this.clickhouse = d.clickhouse
      ? new ClickHouseRows(d.analyses, this.labels, () => forest?.activeHash, handOver, columns, bodyRing)
      : null;
    this.control = new Int32Array(d.control);
    this.framesOut = d.scoreFrames || d.liveFrames;
    this.frameRing = d.frameRing == null ? null : new FrameRingWriter(d.frameRing);
    this.counters = new Float64Array(d.counters);
    this.base = d.index * COUNTER_SLOTS;
    this.reports = new WorkerReports(d.scoreLines ?? null, this.analyses, d.keysMax);
    const forestIndex = this.analyses.findIndex((a) => a.name === "iforest");
    this.drift =
      d.driftRows === true && forestIndex >= 0
        ? new DriftRowsOut(this.analyses[forestIndex] as IforestAnalysis, forestIndex, this.counters, this.base)
        : null;
  }

  get machines(): number {
    return this.machineNames.length;
  }

  frameKey(keyId: number): string {
    return this.frameKeys[keyId];
  }

  machineOf(keyId: number): number {
    return this.machineIndex[keyId];
  }

  machineName(machine: number): string {
    return this.machineNames[machine];
  }

  async start(): Promise<void> {
    this.nc = await connectNats({ servers: this.d.url, name: `linewatch-ingest-${this.d.index}` });
    this.input = new NatsInput(this.nc, this.d.site);
    this.reports.open(this.nc, this.d.site, this.log);
    if (this.d.jetstream !== null) return this.startJetStream(this.nc, this.d.jetstream);
    for (const subject of this.d.subjects) {
      this.subscriptions.push(
        this.nc.subscribe(subject, {
          callback: (error, msg) => {
            if (error === null) this.onMessage(msg);
          },
        }),
      );
    }
    await this.nc.flush();
  }

  /** Unsubscribes after what the server already sent (JetStream: ends its loops, committed and checkpointed), drains what is pending, and closes. */
  async stop(): Promise<{ byReason: Record<string, number> }> {
    const nc = this.nc;
    this.stopped = true;
    if (this.running !== null) await this.running;
    if (nc !== null) {
      await Promise.all(this.subscriptions.map((s) => s.drain()));
      await this.drainNow();
      await this.engine.close();
      this.sendRows();
      for (const a of this.analyses) a.stop?.();
      await nc.drain();
    }
    if (this.failure !== null) throw this.failure;
    return { byReason: (this.source?.messages.input ?? this.input)?.counts().byReason ?? {} };
  }

  /** The main thread's answer to a `durable?` (JetStream acknowledges only after it). */
  settleDurable(id: number, error: string | undefined): void {
    const w = this.durableWaiters.get(id);
    this.durableWaiters.delete(id);
    if (error === undefined) w?.resolve();
    else w?.reject(new Error(`rows not durable in ClickHouse: ${error}`));
  }

  // ---- SensorIntake: how the JetStream source (engine/jobs/nats-sources.ts) drives this worker ----

  get log(): Logger {
    this.logger ??= createLogger({ component: `ingest-${this.d.index}` });
    return this.logger;
  }

  allocateBatch(): RecordBatch {
    return allocateBatch(this.d.batchRecordsMax, this.labelBytes);
  }

  key(name: string, machine: string, sensor: string): number {
    return this.keyOf(name, machine, sensor);
  }

  labelOf(record: RecordLabelFields): number {
    return this.labelBytes > 0 ? this.labels.idOf(record) : 0;
  }

  async push(batch: RecordBatch): Promise<void> {
    if (batch.length === 0) return;
    if (this.reports.queued) await this.reports.applyQueued(this.engine, post);
    this.counters[this.base + COUNTER.readings] += batch.length;
    await this.engine.push(batch);
    batch.length = 0;
  }

  /** Through the kernels and out; `durable`: and every row in ClickHouse (inserted or spilled) — then the source acknowledges. */
  async commit(durable: boolean): Promise<void> {
    await this.reports.applyQueued(this.engine, post);
    await this.engine.flush();
    // Acknowledging: the rows go now, not when their insert comes due; the alert events before the ack.
    this.emit(durable, true);
    const c = this.counters;
    const source = this.source as JetStreamSource;
    const counts = source.messages.input.counts();
    c[this.base + COUNTER.messages] = counts.messages;
    c[this.base + COUNTER.deadLettered] = counts.deadLettered;
    c[this.base + COUNTER.duplicates] = source.duplicates;
    c[this.base + COUNTER.checkpoints] = source.checkpoints;
    // Added, not set: a restarted worker's source counts from 0 again, and the acks of its earlier life were sent.
    c[this.base + COUNTER.acks] += source.acks - this.acksCounted;
    this.acksCounted = source.acks;
    await this.reports.lines?.flush();
    if (durable && this.clickhouse !== null) await this.durable();
  }

  async handOver(): Promise<void> {
    this.emit(true);
  }

  /** The ClickHouse rows gathered so far and the alert events held to the main thread now, due or not (a sync, the stop). */
  sendRows(): void {
    this.sendGathered(true);
    this.sendAlerts(true);
  }

  /** The fast path for a JetStream message (SensorIntake.readRecord): as {@link takeRecord}, into the source's batch. */
  readRecord(batch: RecordBatch, subject: Uint8Array, data: Uint8Array, position: number): number {
    const sid = this.readView(subject, data);
    if (sid < 0) return -1;
    const id = this.keyOfSubjectId(sid);
    const k = batch.length++;
    batch.keyIds[k] = id;
    batch.times[k] = this.view.time;
    batch.values[k] = this.view.value;
    batch.positions[k] = position;
    if (this.labelBytes > 0) writeLabel(batch, k, this.labelOfView(sid, data));
    this.counters[this.base + COUNTER.fastRecords]++;
    return id;
  }

  saveAnalyses(keys: readonly string[]): unknown[] {
    const idOf = (key: string): number => this.engine.keys.lookup(key);
    return this.analyses.map((a) => a.saveState?.(keys, idOf) ?? null);
  }

  /** Restores the analyses' state of a checkpoint's keys; the episodes open in them go to the main thread (the API knows them). */
  restoreAnalyses(state: readonly unknown[]): void {
    const idOf = (key: string): number => this.engine.keys.lookup(key);
    this.analyses.forEach((a, k) => {
      const s = state[k];
      if (s === null || s === undefined || a.restoreState === undefined) return;
      const restored = a.restoreState(s, idOf);
      if (episodeTrackerOf(a) === undefined) return;
      const encoder = new AlertEncoder();
      for (const e of restored as AlertEpisodeEvent[]) encoder.add(e);
      const alerts = encoder.take();
      if (alerts !== null) post({ kind: "episodes", alerts }, [alerts.numbers.buffer as ArrayBuffer]);
    });
  }

  /**
   * A person's acknowledgement of an episode (the API's), applied now: the tracker is touched only
   * between two chunks (this thread runs the kernels inline), and the acknowledgement is part of
   * its state from here on. JetStream: answered once every partition has checkpointed it (asked
   * for at once), so a kill -9 after the answer keeps it.
   */
  async acknowledge(command: Extract<IngestCommand, { kind: "ack" }>): Promise<void> {
    let result: AckResult = { ok: false, reason: "unknown" };
    for (const a of this.analyses) {
      const tracker = episodeTrackerOf(a);
      if (tracker === undefined || !tracker.hasEpisode(command.episode)) continue;
      result = tracker.acknowledge(command.episode, command.at, command.by, command.note);
    }
    // The acknowledged event first (the main thread routes it before it answers the API).
    this.sendAlerts(true);
    if (result.ok) await this.source?.checkpointSoon();
    post({ kind: "ackApplied", id: command.id, result });
  }

  async room(): Promise<void> {
    while (Atomics.load(this.control, CONTROL_PAUSE) === 1 && !this.stopped) await new Promise((r) => setTimeout(r, 2));
  }

  private async startJetStream(nc: NatsConnection, js: IngestJetStream): Promise<void> {
    this.source = new JetStreamSource(nc, {
      ...js,
      site: this.d.site,
      keysMax: this.d.keysMax,
      partitions: this.d.partitions.length > 0 ? this.d.partitions : undefined,
    });
    await this.source.open(this);
    const source = this.source;
    this.running = source.run(this).catch((error: unknown) => this.fail(error));
  }

  private durable(): Promise<void> {
    const id = ++this.durableNext;
    return new Promise((resolve, reject) => {
      this.durableWaiters.set(id, { resolve, reject });
      post({ kind: "durable?", id });
    });
  }

  private onMessage(msg: Msg): void {
    const c = this.counters;
    const b = this.base;
    c[b + COUNTER.messages]++;
    if (this.takeRecord(msg)) return;
    const readings = (this.input as NatsInput).decode(msg.subject, msg.data, this.targetOf(this.pending));
    if (readings === null) {
      c[b + COUNTER.deadLettered] = (this.input as NatsInput).counts().deadLettered;
      return;
    }
    const batch = this.pending;
    if (batch.length + readings.length > batch.keyIds.length) {
      c[b + COUNTER.shed]++;
      c[b + COUNTER.shedReadings] += readings.length;
      return;
    }
    const position = this.position++;
    if (readings.columns !== undefined) {
      this.takeFrame(batch, readings.columns, position);
      // A frame may have had single readings rejected (NaN, bad time): dead-lettered, counted there.
      c[b + COUNTER.deadLettered] = (this.input as NatsInput).counts().deadLettered;
    } else
      for (let i = 0; i < readings.length; i++) {
        const k = batch.length++;
        batch.keyIds[k] = this.keyOf(readings.key(i), readings.machine(i), readings.sensor(i));
        batch.times[k] = readings.time(i);
        batch.values[k] = readings.value(i);
        batch.positions[k] = position;
        if (this.labelBytes > 0) writeLabel(batch, k, readings.record === undefined ? 0 : this.labels.idOf(readings.record));
      }
    c[b + COUNTER.readings] += readings.length;
    this.scheduleDrain();
  }

  /**
   * The fast path of a single MessagePack record: the key from the subject's bytes (nats.js keeps
   * them at `_msg.subject` and decodes the string only when asked), time and value by the
   * schema-specialised reader. False when it cannot decide — anything unusual, invalid or new to
   * the reader: the generic decoder then gives the reading or the exact dead-letter reason.
   */
  private takeRecord(msg: Msg): boolean {
    const raw = rawSubject(msg);
    if (raw === null) return false;
    const sid = this.readView(raw, msg.data);
    if (sid < 0) return false;
    const batch = this.pending;
    if (batch.length === batch.keyIds.length) {
      this.counters[this.base + COUNTER.shed]++;
      this.counters[this.base + COUNTER.shedReadings]++;
      return true;
    }
    const k = batch.length++;
    batch.keyIds[k] = this.keyOfSubjectId(sid);
    batch.times[k] = this.view.time;
    batch.values[k] = this.view.value;
    batch.positions[k] = this.position++;
    if (this.labelBytes > 0) writeLabel(batch, k, this.labelOfView(sid, msg.data));
    this.counters[this.base + COUNTER.readings]++;
    this.counters[this.base + COUNTER.fastRecords]++;
    this.scheduleDrain();
    return true;
  }

  /** The subject-table id of a single record the schema reader proved valid (its reading in `view`), or -1: the generic decoder decides. */
  private readView(subject: Uint8Array, data: Uint8Array): number {
    const sid = this.subjects.idOf(subject);
    if (sid < 0) return -1;
    const sensor = this.subjects.sensor(sid);
    if (sensor === undefined) return -1;
    if (!this.reader.readKept(data, sid, this.subjects.machine(sid), sensor, this.view)) return -1;
    // A layout kept anew: the label id kept for the subject was the old layout's.
    if (!this.view.kept) this.labelOfSubject[sid] = -1;
    return sid;
  }

  /**
   * The label id of the record `readView` just read for subject-table id `sid`: when it matched
   * the subject's kept layout its label bytes are those of the record the layout was kept from,
   * whose id is kept with it; else looked up from the bytes (and kept for the next ones).
   */
  private labelOfView(sid: number, data: Uint8Array): number {
    if (this.view.kept) {
      const kept = this.labelOfSubject[sid];
      if (kept >= 0) return kept;
    }
    const id = this.labels.idOfView(data, this.view);
    // An id 0 for labels the full table did not keep is counted (unkept) per record: not kept here.
    const none = this.view.unitStart < 0 && this.view.modeStart < 0 && this.view.workOrderStart < 0;
    this.labelOfSubject[sid] = id > 0 || none ? id : -1;
    return id;
  }

  /** The engine key id of a subject-table id, interned on first sight. */
  private keyOfSubjectId(sid: number): number {
    let id = this.keyOfSubject[sid];
    if (id === undefined) {
      id = this.keyOf(this.subjects.engineKey(sid) as string, this.subjects.machine(sid), this.subjects.sensor(sid) as string);
      this.keyOfSubject[sid] = id;
    }
    return id;
  }

  /**
   * A drain at the end of this burst (setImmediate: after the event loop's reads), and at once
   * when a batch's worth is pending. libuv reads a socket up to 32 × 64 KiB per turn and nats.js
   * parses each read in a microtask of its own, so a worker that fell behind (a GC pause, a
   * descheduled thread) took in ~12 k records before draining: the first waited for all of them
   * to be decoded, then for their kernels, before a frame went out. A microtask drain runs
   * between two reads, so a backlog is scored and emitted a batch at a time, in arrival order.
   */
  private scheduleDrain(): void {
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => void this.drainNow());
    }
    // While a drain runs (awaiting a kernel thread) its end schedules the next.
    if (!this.drainNext && !this.draining && this.pending.length >= this.d.batchRecordsMax) {
      this.drainNext = true;
      queueMicrotask(() => this.drainBatch());
    }
  }

  /** The size-closed batch's drain (scheduleDrain); the end-of-burst drain stays scheduled for what arrives meanwhile. */
  private drainBatch(): void {
    this.drainNext = false;
    if (this.draining || Atomics.load(this.control, CONTROL_PAUSE) === 1) return;
    const scheduled = this.scheduled;
    void this.drainNow();
    this.scheduled = scheduled;
  }

  /** The batch's free columns as a frame decode target. */
  private targetOf(batch: RecordBatch): FrameTarget {
    const t = this.frameTarget;
    t.keyIndex = batch.keyIds;
    t.times = batch.times;
    t.values = batch.values;
    t.at = batch.length;
    return t;
  }

  /**
   * A frame's columns into the batch: its key table mapped to engine ids once per table. Decoded
   * into the batch already (the usual case), only the key indices become engine ids, in place;
   * else times and values are copied as runs.
   */
  private takeFrame(batch: RecordBatch, f: FrameReadingColumns, position: number): void {
    let ids = this.frameKeyIds.get(f.engineKeys);
    if (ids === undefined) {
      ids = Uint32Array.from(f.engineKeys, (name, k) => this.keyOf(name, f.split[k][0], f.split[k][1]));
      this.frameKeyIds.set(f.engineKeys, ids);
    }
    const at = batch.length;
    const n = f.keyIndex.length;
    const keyIds = batch.keyIds;
    if (f.inTarget) {
      for (let i = at; i < at + n; i++) keyIds[i] = ids[keyIds[i]];
    } else {
      for (let i = 0; i < n; i++) keyIds[at + i] = ids[f.keyIndex[i]];
      batch.times.set(f.times, at);
      batch.values.set(f.values, at);
    }
    batch.positions.fill(position, at, at + n);
    batch.payload?.fill(0, 4 * at, 4 * (at + n));
    batch.length = at + n;
  }

  private keyOf(name: string, machine: string, sensor: string): number {
    // The engine's key dictionary knows the id; a key is named here once (restored keys on their first reading).
    const known = this.engine.keys.lookup(name);
    if (known >= 0 && this.keyNames[known] !== undefined) return known;
    const id = this.engine.internKey(name);
    this.keyNames[id] = name;
    this.frameKeys[id] = `${machine}.${sensor}`;
    let m = this.machineIds.get(machine);
    if (m === undefined) {
      m = this.machineNames.length;
      this.machineIds.set(machine, m);
      this.machineNames.push(machine);
    }
    this.machineIndex[id] = m;
    this.clickhouse?.addKey(id, machine, sensor);
    this.reports.addKey(id, name, machine, sensor);
    this.counters[this.base + COUNTER.keys] = this.keyNames.length;
    return id;
  }

  /** Everything pending through the kernels and out as frames; one at a time. */
  private async drainNow(): Promise<void> {
    this.scheduled = false;
    if (this.draining || this.failure !== null) return;
    if (Atomics.load(this.control, CONTROL_PAUSE) === 1) {
      // The sink's queue is half full: wait (what arrives meanwhile waits in `pending`, then sheds).
      this.scheduled = true;
      const t = performance.now();
      setTimeout(() => {
        this.counters[this.base + COUNTER.pausedMs] += performance.now() - t;
        void this.drainNow();
      }, 2);
      return;
    }
    this.draining = true;
    const t0 = performance.now();
    try {
      while (this.pending.length > 0 || this.reports.queued) {
        // A limits change applies after the records that were pending when it arrived.
        const changes = this.reports.queued;
        const batch = this.pending;
        this.pending = this.spare;
        this.spare = batch;
        if (batch.length > 0) await this.engine.push(batch);
        batch.length = 0;
        if (changes) await this.reports.applyQueued(this.engine, post);
      }
      await this.engine.flush();
      this.emit();
      await this.reports.lines?.spill();
    } catch (error) {
      this.fail(error);
    } finally {
      this.draining = false;
      const c = this.counters;
      c[this.base + COUNTER.drains]++;
      c[this.base + COUNTER.drainMs] += performance.now() - t0;
      c[this.base + COUNTER.kernelMs] = this.engine.metrics().kernelBusyMs;
    }
    if (this.pending.length > 0) this.scheduleDrain();
  }

  private onOutput(chunk: OutputChunk): void {
    const lines = this.reports.lines;
    if (lines === null) {
      // The analyses see the chunk whole: the SPC alerts visit its kernel's event rows only.
      observeChunkRows(this.analyses, chunk, this.keyName, this.ctx);
    } else {
      // Per-record score lines (opt-in) need every row's members: the analyses observe row by row.
      for (let i = 0; i < chunk.length; i++) {
        const keyId = chunk.keyIds[i];
        let members = observeRecord(this.analyses, chunk, i, this.keyNames[keyId], this.ctx, this.rowScratch, true);
        if (this.auditMembers !== null) members += this.auditMembers.of((k) => this.rowScratch[k]);
        lines.write(this.reports.scoreKey(keyId), chunk.times[i], chunk.values[i], chunk.positions[i], members);
      }
    }
    if (this.d.roundStatistics === true)
      for (let k = 0; k < chunk.outs.length; k++) roundStatistics(chunk.outs[k], 0, chunk.length * chunk.outFields[k]);
    this.reports.chunk(chunk);
    // After the observers: they settle what a row says (rule masks, a score without its features).
    this.clickhouse?.add(chunk);
    this.drift?.add(chunk, post);
    // The rows are collected for frames only when some frame goes out.
    for (let from = 0; this.framesOut && from < chunk.length; ) {
      const to = Math.min(chunk.length, from + this.rows.capacity - this.rows.length);
      this.rows.add(chunk, from, to, this.namedOuts);
      from = to;
      if (this.rows.length === this.rows.capacity) this.emit();
    }
    this.counters[this.base + COUNTER.scored] += chunk.length;
  }

  /** The audit record of the frames going out now; undefined when the run is not audited. */
  private frameAudit(): FrameAudit | undefined {
    if (this.audit === null) return undefined;
    const versions = this.forest?.modelVersions ?? [];
    return { kernel_hash: this.audit.kernelHash, config_hash: this.audit.configHash, model_versions: [...versions] };
  }

  /**
   * The collected rows as frames (NATS, live topics) to their destinations; the ClickHouse rows
   * when they make an insert (ClickHouseRows), or with `rowsNow`; the alert events when they are
   * due (ALERTS_HELD_MS), or with `alertsNow`.
   */
  private emit(rowsNow = false, alertsNow = rowsNow): void {
    const c = this.counters;
    if (this.rows.length > 0) {
      const audit = this.frameAudit();
      if (this.d.scoreFrames) {
        const options = audit === undefined ? undefined : { headers: auditHeaders(audit) };
        (this.nc as NatsConnection).publish(scoreFrameSubject(this.d.site, this.d.index), this.rows.encodeAll(), options);
        c[this.base + COUNTER.scoreFrames]++;
      }
      if (this.d.liveFrames) {
        const parts = this.rows.encodeByMachine();
        const frames = parts.map((p) => p.frame);
        const topics = parts.map((p) => p.machine);
        const ring = this.frameRing?.write(frames) ?? null;
        const extra = audit === undefined ? {} : { audit };
        if (ring !== null) post({ kind: "frames", topics, frames: [], ring, ...extra });
        else
          post(
            { kind: "frames", topics, frames, ...extra },
            frames.map((f) => f.buffer as ArrayBuffer),
          );
        c[this.base + COUNTER.liveFrames] += parts.length;
      }
      this.rows.clear();
    }
    this.sendGathered(rowsNow);
    this.sendAlerts(alertsNow);
    this.drift?.send(post);
    const input = this.source?.messages.input ?? this.input;
    this.reports.take(post, input === null ? null : input.counts());
  }

  /** The gathered ClickHouse rows to the main thread's sink when due (or `now`); a timer for the rest. */
  private sendGathered(now: boolean): void {
    const rows = this.clickhouse;
    if (rows === null) return;
    const { tables, transfer } = rows.take(now);
    if (tables.length > 0) post({ kind: "rows", tables }, transfer);
    const due = rows.dueInMs();
    if (due === Number.POSITIVE_INFINITY && this.rowsTimer !== null) {
      clearTimeout(this.rowsTimer);
      this.rowsTimer = null;
    }
    if (this.rowsTimer !== null || due === Number.POSITIVE_INFINITY) return;
    this.rowsTimer = setTimeout(() => {
      this.rowsTimer = null;
      this.sendGathered(false);
    }, due);
  }

  /** The alert events held to the main thread when due (or `now`); a timer for the rest (a quiet stream has no drain to post them). */
  private sendAlerts(now: boolean): void {
    if (this.alerts.count === 0) return;
    const t = performance.now();
    if (this.alertsSince < 0) this.alertsSince = t;
    if (now || t - this.alertsSince >= ALERTS_HELD_MS || this.alerts.numbersHeld >= ALERTS_HELD_NUMBERS_MAX) {
      const alerts = this.alerts.take();
      if (alerts !== null) post({ kind: "alerts", alerts }, [alerts.numbers.buffer as ArrayBuffer]);
      this.alertsSince = -1;
      if (this.alertsTimer !== null) clearTimeout(this.alertsTimer);
      this.alertsTimer = null;
      return;
    }
    this.alertsTimer ??= setTimeout(() => {
      this.alertsTimer = null;
      this.sendAlerts(true);
    }, ALERTS_HELD_MS);
  }

  /** A limits change from the API: applied at the next drain (core NATS) or push (JetStream), in order with the records. */
  changeLimits(command: Extract<IngestCommand, { kind: "limits" }>): void {
    this.reports.enqueue(command.id, command.key, command.change);
    if (this.source === null) this.scheduleDrain();
  }

  private fail(error: unknown): void {
    if (this.failure !== null) return;
    this.failure = error instanceof Error ? error : new Error(String(error));
    post({ kind: "failed", message: this.failure.message, stack: this.failure.stack });
  }
}

/** A record's label id as the engine payload: 4 bytes little-endian. */
function writeLabel(batch: RecordBatch, k: number, id: number): void {
  const p = batch.payload as Uint8Array;
  p[4 * k] = id & 0xff;
  p[4 * k + 1] = (id >>> 8) & 0xff;
  p[4 * k + 2] = (id >>> 16) & 0xff;
  p[4 * k + 3] = id >>> 24;
}

function post(event: IngestEvent, transfer: ArrayBuffer[] = []): void {
  parentPort?.postMessage(event, transfer);
}

/** This thread's Linux thread id, from /proc/thread-self (→ "<pid>/task/<tid>"); 0 without it. */
function linuxThreadId(): number {
  try {
    return Number(readlinkSync("/proc/thread-self").split("/").pop()) || 0;
  } catch {
    return 0;
  }
}

async function workerMain(d: IngestWorkerData): Promise<void> {
  new Float64Array(d.counters)[d.index * COUNTER_SLOTS + COUNTER.threadId] = linuxThreadId();
  const worker = new IngestWorker(d);
  await worker.start();
  post({ kind: "ready" });
  parentPort?.on("message", (command: IngestCommand) => {
    // Worker → main messages keep their order: what was posted before this reply reaches the main thread first.
    if (command.kind === "sync") {
      worker.sendRows();
      post({ kind: "synced", id: command.id });
    }
    if (command.kind === "durable") worker.settleDurable(command.id, command.error);
    if (command.kind === "limits") worker.changeLimits(command);
    if (command.kind === "ack") void worker.acknowledge(command);
    if (command.kind !== "stop") return;
    worker.stop().then(
      ({ byReason }) => {
        post({ kind: "stopped", byReason, labelsUnkept: 0 });
        parentPort?.close();
      },
      (error: Error) => {
        post({ kind: "failed", message: error.message, stack: error.stack });
        parentPort?.close();
      },
    );
  });
}

if (!isMainThread && (workerData as IngestWorkerData | null)?.role === INGEST_ROLE) {
  workerMain(workerData as IngestWorkerData).catch((error: Error) => {
    post({ kind: "failed", message: error.message, stack: error.stack });
    parentPort?.close();
  });
}

/**
 * A score frame's audit record as NATS headers: subscribers that do not read headers get the same
 * frame bytes as before. Lw-Model-Versions lists the model of each generation, comma separated.
 */
function auditHeaders(audit: FrameAudit): MsgHdrs {
  const h = natsHeaders();
  h.set("Lw-Kernel-Hash", audit.kernel_hash);
  h.set("Lw-Config-Hash", audit.config_hash);
  h.set("Lw-Model-Versions", audit.model_versions.join(","));
  return h;
}
