/**
 * The live serial job (issue 8): serial events, decoded at the edge (NATS, the serial simulator),
 * through the serial-integrity analysis on its own StreamEngine and worker pool, beside the
 * sensor job in the same process. Its outputs go to {@link SerialOutputs}: flagged events,
 * quarantine entries and releases (ClickHouse, WebSocket, NATS, the API's quarantine list).
 *
 * Order: events are encoded (payload and ledger questions, serial.ts) in arrival order on this
 * thread, then keyed by line (`machine_id`); the engine keeps each line's order to the kernel
 * and back, so the verdicts are those `linewatch replay --analysis serial` gives for the same
 * events in the same order — the replay contract, live.
 */
import { availableParallelism } from "node:os";
import {
  allocateBatch,
  CheckpointError,
  createKernelExecutor,
  type KernelExecutor,
  type OutputChunk,
  type RecordBatch,
  StreamEngine,
} from "../core/mod.js";
import type { RowContext } from "../../operators/mod.js";
import {
  asciiString,
  BATCH_CLOSE_EVENT_TYPES,
  encodeSerialFields,
  encodeSerialRanges,
  MARK_CONTROL,
  RISK_LEVELS,
  SerialLedgerThread,
  type SlotFieldsEvent,
  type LedgerCounters,
  type LedgerThreadKernels,
  type LedgerThreadReport,
  SERIAL_COL as C,
  SERIAL_OUT_FIELDS,
  decodeSerialCheckpoint,
  encodeSerialCheckpoint,
  filterFalsePositiveRateAt,
  type SerialCheckpointFit,
  type SerialAnalysis,
  type SerialEventFields,
  type SerialRangeEvent,
} from "../../operators/serial/mod.js";
import type { SerialOutputs } from "./serial-outputs.js";

export interface SerialJobOptions {
  /** The serial analysis; its `onQuarantine` should reach `outputs.quarantined`. */
  analysis: SerialAnalysis;
  /** Worker threads of this job's pool (0: the kernel runs on the main thread). */
  workers: number;
  /** Lines (keys) at most. */
  linesMax: number;
  groups: number;
  batchRecordsMax: number;
  outputs?: SerialOutputs;
  /**
   * The duplicate ledger on a thread of its own (operators/serial/ledger-thread.ts): batches go
   * through it in order before the engine, the main thread only copies the events into them.
   * Needs batchRecordsMax ≤ 1024. The same verdicts, rows and checkpoints as in-thread.
   */
  ledgerThread?: boolean;
  /**
   * With `ledgerThread`: the serial kernel runs on the ledger thread too, each key group's task
   * after the slots submitted before it, instead of on a pool of `workers` threads (then unused).
   * Two busy threads instead of three, and no pool thread woken per task: the faster form where
   * the cores are few (docs/serial-job.md, "Measured").
   */
  kernelsOnLedgerThread?: boolean;
}

/** Slots the job and its ledger thread take turns on: one filled, two with the thread or waiting for the engine. */
const LEDGER_SLOTS = 3;

/**
 * The ledger thread, which on fewer than four cores also runs the kernel (two busy threads), is the
 * default from two cores: it takes the ledger's 0.4–0.5 µs/event and the kernel off the main thread
 * (which, behind NATS, also runs the client), for no more CPU per event in all than the ledger on the
 * main thread with the kernel on a pool worker. Measured on this 2-core machine, alternating
 * (docs/serial-job.md, "Which layout on two cores"): behind a real nats-server with a publisher
 * flooding core NATS (bench/serial-nats-bench.ts), the ledger thread took all 1 M events in 3 of 3
 * runs while the in-thread job shed 40–54 % of them (its main thread 3.8–4.4 µs per event taken,
 * against 2.2–2.5); without NATS, the busiest thread 0.9–1.0 µs against the in-thread main
 * thread's 1.33–1.43, process CPU 2.07–2.33 µs against 2.16–2.39. The old reason to leave it off below four cores (the kernel on a
 * third busy thread) went with kernelsOnLedgerThread. One core: nothing to overlap, in-thread.
 */
export const LEDGER_THREAD_MIN_CORES = 2;

/**
 * With the ledger thread on fewer cores than this, the kernels run on it (kernelsOnLedgerThread):
 * main thread, ledger thread and a pool worker would be three busy threads on two cores; the
 * ledger thread running the kernels too makes two, with 4–15 % less CPU per event in all than the
 * three (no pool thread woken per task) and a busiest thread below the in-thread ledger's main
 * thread (docs/serial-job.md, "Measured"). From four cores each of the three has a core of its own.
 */
export const KERNELS_ON_LEDGER_THREAD_CORES_BELOW = 4;

/**
 * Key groups when the kernels run on the ledger thread. Each push dispatches a task per group
 * with events in it, and that one thread runs them one at a time between its slots: more groups
 * are more tasks (a message each way, a kernel call, a delivery) for no more parallelism; fewer
 * let a push wait longer for its group's task before. Measured with `serial-job-ab` (1 M events,
 * 16 lines, steady state, alternately): 4 groups 1.00–1.06 M events/s against 8 groups' 0.91–0.98
 * in six of six pairs, and ahead of 2 (1.02×) and 6 (1.03×). From four cores, where the kernels
 * run on a pool by default, the default stays 8.
 */
export const KERNEL_GROUPS_ON_LEDGER_THREAD = 4;

/** Whether the kernels run on the ledger thread by default here (fewer than four cores). */
const KERNELS_ON_LEDGER_THREAD = availableParallelism() < KERNELS_ON_LEDGER_THREAD_CORES_BELOW;

export const DEFAULT_SERIAL_JOB = {
  workers: 1,
  linesMax: 1024,
  groups: KERNELS_ON_LEDGER_THREAD ? KERNEL_GROUPS_ON_LEDGER_THREAD : 8,
  batchRecordsMax: 1024,
  ledgerThread: availableParallelism() >= LEDGER_THREAD_MIN_CORES,
  kernelsOnLedgerThread: KERNELS_ON_LEDGER_THREAD,
} as const;

export interface SerialJobCountsNow {
  /** Events handed to `add`. */
  eventsIn: number;
  /** Events scored (batch closes included). */
  eventsOut: number;
  /** Events the encoder refused (a time that is not finite). */
  rejected: number;
  batchCloseEvents: number;
  /** Scored events with an anomaly score above 0. */
  flagged: number;
  /** Events at the quarantine level or above. */
  quarantined: number;
}

/** A consistent copy of a serial job's state (SerialJob.snapshot). */
export interface SerialJobSnapshot {
  position: number;
  /** The checkpoint bytes (operators/serial/checkpoint.ts). */
  encode(): Promise<Uint8Array>;
}

/** What SerialJob keeps per line for {@link SerialLineStatus}: counts and the latest event's fields (no allocation per event). */
interface LineCounts {
  events: number;
  flagged: number;
  quarantined: number;
  entropy: number;
  minEntropy: number;
  risk: number;
  riskMax: number;
  at: number;
}

/** A line's engine key id and its ledger thread line id (−1: not given yet). */
interface LineIds {
  key: number;
  ledger: number;
}

/** One serialization line as the dashboard shows it (SerialJob.lines). */
export interface SerialLineStatus {
  line: string;
  /** Events scored (batch closes excluded). */
  events: number;
  /** Events with an anomaly score above 0. */
  flagged: number;
  quarantined: number;
  /** Of the latest event: the line's window entropy (bits per character, Shannon) and min-entropy (most common value). */
  entropy_bits_per_char: number | null;
  min_entropy_mcv: number | null;
  /** Risk level of the latest event, and the highest of the line's flagged events so far. */
  risk_level: string;
  risk_level_max: string;
  last_event_at: number;
}

export class SerialJob {
  readonly engine: StreamEngine;
  readonly analysis: SerialAnalysis;
  private readonly outputs: SerialOutputs | undefined;
  private batch: RecordBatch;
  /** With `ledgerThread`: the thread, its slots' batches (payloads in shared memory), which are with it, the slot being filled. */
  private readonly ledger: SerialLedgerThread | null;
  /** The ledger thread the engine started to run its kernels on (kernelsOnLedgerThread), until the constructor takes it. */
  private ledgerStarted: SerialLedgerThread | null = null;
  private readonly slotBatches: RecordBatch[] = [];
  private readonly submitted: boolean[] = [];
  private fill = 0;
  /** Events of the slot being filled whose text is not in their payload whole: asked with their strings. */
  private slotFields: SlotFieldsEvent[] = [];
  /** The filter's keys (current generation, previous; −1: none) after the slot the engine took last (the ledger thread's). */
  private filterKeysCurrent = 0;
  private filterKeysPrevious = -1;
  /**
   * The filter's keys when each group's task was dispatched (pairs: current, previous), and the
   * rate of the chunk being observed: what a filter duplicate's confidence reads. A kernel running
   * inline is delivered as it is dispatched, so this is the rate it always read; a task on another
   * thread comes back after the job has gone on, and reads the same rate, not whichever is current
   * on its return. The rate (a Poisson sum, 5–9 µs) is computed only when a verdict reads it
   * ({@link chunkRate}): the key counts are what is noted.
   */
  private keysAtDispatch = new Float64Array(0);
  private chunkKeysCurrent = 0;
  private chunkKeysPrevious = -1;
  /** The rate at the chunk's key counts once asked (NaN: not yet). */
  private chunkRateMemo = Number.NaN;
  /** The ledger thread's counters when the job closed. */
  private lastLedgerStats: LedgerCounters | null = null;
  private readonly payloadBytes: number;
  private readonly keyNames: string[] = [];
  /** Each line's ids, found with one lookup per event (at most linesMax: a line past it throws before it is added). */
  private readonly lineIds = new Map<string, LineIds>();
  /** Per key id (a line): its status for the dashboard; risk codes index RISK_LEVELS. */
  private readonly lineStatus: LineCounts[] = [];
  private readonly counts: SerialJobCountsNow = { eventsIn: 0, eventsOut: 0, rejected: 0, batchCloseEvents: 0, flagged: 0, quarantined: 0 };
  private closed = false;

  constructor(private readonly o: SerialJobOptions) {
    this.analysis = o.analysis;
    this.outputs = o.outputs;
    this.payloadBytes = o.analysis.input.payloadBytes;
    this.engine = this.startEngine();
    this.ledger = this.ledgerStarted ?? (o.ledgerThread === true ? this.startLedger(undefined) : null);
    if (this.ledger !== null) {
      for (const slot of this.ledger.slots) {
        const b = allocateBatch(o.batchRecordsMax, 0);
        b.payload = slot.payload;
        this.slotBatches.push(b);
        this.submitted.push(false);
      }
    }
    o.analysis.setFilterRateSource(() => this.chunkRate());
    this.batch = this.ledger === null ? allocateBatch(o.batchRecordsMax, this.payloadBytes) : this.slotBatches[0];
    o.analysis.start?.(this.engine);
  }

  /** The duplicate ledger's thread; with `kernels`, it runs the engine's kernel tasks too. */
  private startLedger(kernels: LedgerThreadKernels | undefined): SerialLedgerThread {
    return new SerialLedgerThread({
      batchRecords: this.o.batchRecordsMax,
      slots: LEDGER_SLOTS,
      linesMax: this.o.linesMax,
      ledger: this.o.analysis.ledger.options,
      timeUnit: "ms",
      patterns: this.o.analysis.patterns,
      kernels,
    });
  }

  /** The filter's rate at the key counts of the chunk being observed (filterFalsePositiveRateAt), computed once per chunk that asks. */
  private chunkRate(): number {
    if (Number.isNaN(this.chunkRateMemo))
      this.chunkRateMemo = filterFalsePositiveRateAt(this.analysis.ledger.filterBlocks, this.chunkKeysCurrent, this.chunkKeysPrevious);
    return this.chunkRateMemo;
  }

  /** `executor` with each task's dispatch noting the filter's keys for its group ({@link keysAtDispatch}): the ledger's, on this thread or after the slot the engine took last. */
  private notingRates(executor: KernelExecutor): KernelExecutor {
    return {
      workers: executor.workers,
      run: (task, group) => {
        const ledger = this.analysis.ledger;
        this.keysAtDispatch[2 * group] = this.ledger === null ? ledger.filterCurrentKeys() : this.filterKeysCurrent;
        this.keysAtDispatch[2 * group + 1] = this.ledger === null ? ledger.filterPreviousKeys() : this.filterKeysPrevious;
        return executor.run(task, group);
      },
      busyMs: () => executor.busyMs(),
      close: () => executor.close(),
    };
  }

  /** The job's engine: kernels on its pool (or inline), or on the ledger thread (`kernelsOnLedgerThread`, started here then). */
  private startEngine(): StreamEngine {
    const o = this.o;
    const onLedger = o.ledgerThread === true && o.kernelsOnLedgerThread === true;
    const groups = Math.min(o.groups, o.linesMax);
    this.keysAtDispatch = new Float64Array(2 * groups);
    const ctx: RowContext = { keyId: 0, key: "", position: 0, time: 0, value: 0 };
    const analysis = o.analysis;
    const B = this.payloadBytes;
    const F = SERIAL_OUT_FIELDS;
    return new StreamEngine(
      {
        kernels: [o.analysis.kernel],
        workers: o.workers,
        groups,
        keysMax: o.linesMax,
        batchRecordsMax: o.batchRecordsMax,
        lateness: null,
        reorderRecordsPerKeyMax: 1,
        payloadBytes: B,
        executor: (memory, module) =>
          this.notingRates(
            onLedger
              ? (this.ledgerStarted = this.startLedger({ memory, module })).kernelExecutor()
              : createKernelExecutor(memory, o.workers, groups),
          ),
      },
      {
        // Row by row in the chunk's columns; a view of a row and its payload only for a detection.
        onOutput: (chunk: OutputChunk) => {
          this.chunkKeysCurrent = this.keysAtDispatch[2 * chunk.group];
          this.chunkKeysPrevious = this.keysAtDispatch[2 * chunk.group + 1];
          this.chunkRateMemo = Number.NaN;
          const c = this.counts;
          const out = chunk.outs[0];
          const payload = chunk.payload;
          for (let i = 0; i < chunk.length; i++) {
            const id = chunk.keyIds[i];
            ctx.keyId = id;
            ctx.key = this.keyNames[id];
            ctx.position = chunk.positions[i];
            ctx.time = chunk.times[i];
            ctx.value = chunk.values[i];
            const at = i * F;
            analysis.observeAt(out, at, payload, i * B, ctx);
            c.eventsOut++;
            if (((out[at + C.flags] >>> 0) & MARK_CONTROL) !== 0) {
              c.batchCloseEvents++;
              continue;
            }
            this.noteLine(id, out, at, ctx.time);
            if (out[at + C.quarantine] === 1) c.quarantined++;
            if (out[at + C.anomaly_score] > 0) {
              c.flagged++;
              this.outputs?.detection(out.subarray(at, at + F), ctx, payload.subarray(i * B, (i + 1) * B));
            }
          }
        },
      },
    );
  }

  /**
   * One decoded event, in arrival order, at source position `position` (stream sequence, event
   * index). Returns a promise when the batch was full and handed to the engine (await it: that
   * is the backpressure), else undefined.
   */
  add(e: SerialEventFields, position: number): Promise<void> | undefined {
    this.counts.eventsIn++;
    const b = this.batch;
    // The key first: a line past linesMax throws CapacityError before the ledger has seen the event.
    const ids = this.idsOf(e.machine_id);
    const id = ids.key;
    if (this.ledger !== null) {
      const f = {
        serial: e.serial_number,
        gtin: e.gtin,
        batch: e.batch_number,
        machine: e.machine_id,
        operator: e.operator_id,
        arrival: this.analysis.input.arrivalOf(e.received_timestamp),
        batchClose: e.event_type !== undefined && BATCH_CLOSE_EVENT_TYPES.includes(e.event_type),
      };
      // Text whole, in ASCII (nearly every event): asked from the payload, as the reader's events are.
      const whole = encodeSerialFields({ ...f, ledgerBits: 0 }, b.payload as Uint8Array, b.length * this.payloadBytes);
      return this.addToSlot(ids, whole ? null : f, e.production_timestamp, position);
    }
    const error = this.analysis.input.encodeEvent(e, b.payload as Uint8Array, b.length * this.payloadBytes);
    return this.appended(error, id, e.production_timestamp, position);
  }

  /**
   * `add` for an event still in its message `src`, as a schema reader found it (connectors/wire
   * SerialRecordView: text as ASCII ranges of `src`), on line `line` (its machine_id): the NATS
   * hot path. The text goes from the message straight into the batch's payload; the same
   * verdicts and state as `add` with the decoded event.
   */
  addRanges(src: Uint8Array, r: SerialRangeEvent, line: string, position: number): Promise<void> | undefined {
    this.counts.eventsIn++;
    const b = this.batch;
    const ids = this.idsOf(line);
    if (this.ledger !== null) return this.addRangesToSlot(src, r, line, ids, position);
    const error = this.analysis.input.encodeRanges(src, r, line, b.payload as Uint8Array, b.length * this.payloadBytes);
    return this.appended(error, ids.key, r.production, position);
  }

  /**
   * Everything added so far scored and its outputs handed over; `durable` (default): also durable
   * in ClickHouse and on the NATS server (before a JetStream ack).
   */
  async flush(durable = true): Promise<void> {
    await this.pushBatch();
    await this.engine.flush();
    await this.outputs?.flush(durable);
  }

  /**
   * The job's whole state as a checkpoint covering source position `position`, encoded and
   * compressed: `snapshot(position)`, then its `encode()`.
   */
  async checkpoint(position: number): Promise<Uint8Array> {
    return (await this.snapshot(position)).encode();
  }

  /**
   * A copy of the job's whole state covering source position `position`: call it between events,
   * after every event up to `position` was added (buffered events are pushed first; outputs are
   * handed over, not waited on). The copy takes the lines' state blocks, the filter bits and the
   * ledger and quarantine structures; `encode()` (JSON, serials, deflate on the thread pool) can
   * then run while the job takes more events.
   */
  async snapshot(position: number): Promise<SerialJobSnapshot> {
    await this.pushBatch();
    const engine = await this.engine.checkpoint(position);
    const ledger = this.ledger === null ? this.analysis.ledger.snapshot() : await this.ledger.snapshot();
    const state = { position, engine, ledger, quarantine: this.analysis.quarantine.snapshot() };
    const fit = this.fit();
    return { position, encode: () => encodeSerialCheckpoint(state, fit) };
  }

  /**
   * Puts a checkpoint's state back into this fresh job (before any event); returns the source
   * position it covers. CheckpointError when it is damaged or was taken with other parameters.
   */
  async restore(bytes: Uint8Array): Promise<number> {
    if (this.counts.eventsIn > 0)
      throw new CheckpointError(`a checkpoint restores only into a job that has seen no events (this one saw ${this.counts.eventsIn})`);
    const c = await decodeSerialCheckpoint(bytes, this.fit());
    if (c.engine.keys.length > this.o.linesMax)
      throw new CheckpointError(`serial checkpoint holds ${c.engine.keys.length} lines, more than this job's ${this.o.linesMax}`);
    try {
      if (this.ledger === null) this.analysis.ledger.restore(c.ledger);
      else await this.ledger.restore(c.ledger);
    } catch (cause) {
      throw new CheckpointError(`serial checkpoint: ledger does not fit (${(cause as Error).message})`, { cause });
    }
    await this.engine.restore(c.engine);
    for (const k of c.engine.keys) this.keyNames[this.engine.keys.lookup(k.name)] = k.name;
    this.analysis.quarantine.restore(c.quarantine);
    return c.position;
  }

  /** The duplicate ledger's counters, wherever it lives (after the events handed over so far are asked). */
  async ledgerStats(): Promise<LedgerCounters> {
    if (this.ledger === null) return this.analysis.ledger.stats();
    return this.lastLedgerStats ?? this.ledger.stats();
  }

  /** The ledger thread's events and CPU time so far (null: the ledger is on this thread). */
  async ledgerThreadReport(): Promise<LedgerThreadReport | null> {
    return this.ledger === null ? null : this.ledger.report();
  }

  countsNow(): Readonly<SerialJobCountsNow> {
    return this.counts;
  }

  /** Every line seen: events, flagged, quarantined, the latest entropy and risk, the highest risk. */
  lines(): SerialLineStatus[] {
    const out: SerialLineStatus[] = [];
    this.lineStatus.forEach((s, id) => {
      if (s === undefined) return;
      const finite = (v: number) => (Number.isFinite(v) ? v : null);
      out.push({
        line: this.keyNames[id],
        events: s.events,
        flagged: s.flagged,
        quarantined: s.quarantined,
        entropy_bits_per_char: finite(s.entropy),
        min_entropy_mcv: finite(s.minEntropy),
        risk_level: RISK_LEVELS[s.risk] ?? "low",
        risk_level_max: RISK_LEVELS[s.riskMax] ?? "low",
        last_event_at: s.at,
      });
    });
    return out.sort((a, b) => (a.line < b.line ? -1 : 1));
  }

  /** A scored (non-control) event of line `id`: the row at `out[at…]` becomes the line's latest. */
  private noteLine(id: number, out: Float64Array, at: number, time: number): void {
    let s = this.lineStatus[id];
    if (s === undefined)
      this.lineStatus[id] = s = {
        events: 0,
        flagged: 0,
        quarantined: 0,
        entropy: Number.NaN,
        minEntropy: Number.NaN,
        risk: 0,
        riskMax: 0,
        at: 0,
      };
    s.events++;
    s.entropy = out[at + C.entropy_bits_per_char];
    s.minEntropy = out[at + C.min_entropy_mcv];
    s.risk = out[at + C.risk];
    s.at = time;
    if (out[at + C.anomaly_score] > 0) {
      s.flagged++;
      s.riskMax = Math.max(s.riskMax, out[at + C.risk]);
    }
    if (out[at + C.quarantine] === 1) s.quarantined++;
  }

  /** Flushes, stops the pool and the analysis (idempotent). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.flush();
      // The thread's last counters, for ledgerStats and the end-of-run notes once it is gone.
      if (this.ledger !== null) {
        const last = await this.ledger.stats();
        this.lastLedgerStats = last;
        this.analysis.setLedgerStatsSource(() => last);
      }
    } finally {
      this.analysis.stop?.();
      // The engine first: with kernelsOnLedgerThread its last tasks run on the ledger thread.
      try {
        await this.engine.close();
      } finally {
        await this.ledger?.close();
      }
    }
  }

  private fit(): SerialCheckpointFit {
    const ledger = this.analysis.ledger;
    return {
      params: this.analysis.params,
      ledgerOptions: ledger.options,
      quarantineLevel: this.analysis.quarantineLevel,
      filterBytes: ledger.filterGenerationBytes,
    };
  }

  /** A line's ids: its engine key interned on first sight (CapacityError past linesMax), its ledger thread id on its first event asked from its payload. */
  private idsOf(line: string): LineIds {
    let ids = this.lineIds.get(line);
    if (ids === undefined) {
      ids = { key: this.keyId(line), ledger: -1 };
      this.lineIds.set(line, ids);
    }
    return ids;
  }

  /** The engine's id of a line, interned on first sight (CapacityError past linesMax). */
  private keyId(line: string): number {
    let id = this.engine.keys.lookup(line);
    if (id < 0) {
      id = this.engine.internKey(line);
      this.keyNames[id] = line;
    }
    return id;
  }

  /** Completes the record the encoder just wrote (or counts its rejection); pushes a full batch. */
  private appended(error: string | null, id: number, time: number, position: number): Promise<void> | undefined {
    if (error !== null) {
      this.counts.rejected++;
      return undefined;
    }
    const b = this.batch;
    const k = b.length++;
    b.keyIds[k] = id;
    b.times[k] = time;
    b.values[k] = 0;
    b.positions[k] = position;
    if (b.length < this.o.batchRecordsMax) return undefined;
    return this.ledger === null ? this.pushBatch() : this.handOver();
  }

  /** addRanges with the ledger on its thread: the event into the slot's payload (its strings when it does not fit there). */
  private addRangesToSlot(src: Uint8Array, r: SerialRangeEvent, line: string, ids: LineIds, position: number): Promise<void> | undefined {
    const time = r.production;
    if (!Number.isFinite(time)) return this.appended("not finite", ids.key, time, position);
    const arrival = this.analysis.input.arrivalOf(r.received);
    const b = this.batch;
    if (encodeSerialRanges(src, r, arrival, r.batchClose, 0, b.payload as Uint8Array, b.length * this.payloadBytes)) {
      return this.addToSlot(ids, null, time, position);
    }
    const f = {
      serial: asciiString(src, r.serialStart, r.serialLength),
      gtin: asciiString(src, r.gtinStart, r.gtinLength),
      batch: asciiString(src, r.batchStart, r.batchLength),
      machine: line,
      operator: r.operatorStart < 0 ? "" : asciiString(src, r.operatorStart, r.operatorLength),
      arrival,
      batchClose: r.batchClose,
    };
    return this.addToSlot(ids, f, time, position);
  }

  /**
   * Completes an event of line `ids` in the slot being filled: its payload written (`fields`
   * null), or to be written and asked with its strings on the thread (`fields` given).
   */
  private addToSlot(ids: LineIds, fields: SlotFieldsEvent["fields"] | null, time: number, position: number): Promise<void> | undefined {
    if (!Number.isFinite(time)) return this.appended("not finite", ids.key, time, position);
    const t = this.ledger as SerialLedgerThread;
    const slot = t.slots[this.fill];
    const k = this.batch.length;
    slot.offsets[k] = k * this.payloadBytes;
    slot.times[k] = time;
    if (fields !== null) {
      this.slotFields.push({ k, fields });
      slot.lines[k] = 0;
    } else slot.lines[k] = ids.ledger >= 0 ? ids.ledger : (ids.ledger = t.lineId(this.keyNames[ids.key]));
    return this.appended(null, ids.key, time, position);
  }

  /** Hands the slot being filled to the ledger thread (when it holds events) and moves on; the next slot, if still out, goes to the engine first. */
  private handOver(): Promise<void> | undefined {
    const t = this.ledger as SerialLedgerThread;
    if (this.batch.length === 0) return undefined;
    t.submit(this.fill, this.batch.length, this.slotFields);
    this.slotFields = [];
    this.submitted[this.fill] = true;
    this.fill = (this.fill + 1) % LEDGER_SLOTS;
    this.batch = this.slotBatches[this.fill];
    return this.submitted[this.fill] ? this.pushSlot(this.fill) : undefined;
  }

  /** Slot `s`'s answer taken from the ledger thread, its batch pushed into the engine (which copies it). */
  private async pushSlot(s: number): Promise<void> {
    const t = this.ledger as SerialLedgerThread;
    t.take(s);
    this.submitted[s] = false;
    this.filterKeysCurrent = t.filterCurrentKeysAfter(s);
    this.filterKeysPrevious = t.filterPreviousKeysAfter(s);
    const b = this.slotBatches[s];
    await this.engine.push(b);
    b.length = 0;
  }

  private async pushBatch(): Promise<void> {
    if (this.ledger !== null) {
      await this.handOver();
      // Every slot still out, oldest first: from the one being filled next, round.
      for (let j = 0; j < LEDGER_SLOTS; j++) {
        const s = (this.fill + j) % LEDGER_SLOTS;
        if (this.submitted[s]) await this.pushSlot(s);
      }
      return;
    }
    // The ledger's verdicts of the events addRanges wrote, before the engine copies their payloads.
    this.analysis.input.settle();
    if (this.batch.length === 0) return;
    await this.engine.push(this.batch);
    this.batch.length = 0;
  }
}
