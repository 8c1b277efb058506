/**
 * The whole serial job's rate (`node dist/bench/serial-bench.js --job`, and {@link measureSerialJobRate}
 * for the other benchmarks): serial events as NATS delivers them — one MessagePack record per
 * message on `lw.<site>.serial.<line>` — through what `linewatch run --nats` does with each
 * (takeSerialMessage: decode or dead-letter, the job's encoder, the duplicate ledger on its own
 * thread, which also runs the serial kernel (kernelsOnLedgerThread), score, risk, quarantine) into
 * the job's outputs (SerialOutputs: detection and quarantine rows encoded as the ClickHouse sink
 * encodes them, the live topics), in events/s.
 *
 * Beside it, from the same messages in the same run (the baselines):
 *   - the same job with the ledger on the main thread and the kernel on the pool (the 2-core default before);
 *   - the same job with the ledger thread and the kernel on a pool worker (three busy threads: the job before);
 *   - the main thread's parts, each stage with the ones before it (thread CPU): the schema reader
 *     alone; + the copy of each event into a batch payload (encodeSerialRanges); + the ledger
 *     (SerialInput.encodeRanges, settled per batch: duplicates, behaviour) — the rest of the job's
 *     main-thread time is the engine, the pool's messages, scoring and the outputs; and the reader
 *     and payload copy with the ledger on its own thread (SerialLedgerThread), verdicts checked;
 *   - decode alone: SerialNatsInput.decode of every message (the generic decoder, event objects);
 *   - the WASM kernel alone on the main thread, payloads pre-encoded (the kernel's ceiling per thread).
 * The messages are made (untimed) from one seeded serial simulator stream with every attack kind;
 * NATS itself is not in the figure (its client's cost is the e2e benchmark's). The job figure
 * carries an integer checksum of its detections (Σ reasons + risk code + quarantined over the
 * flagged events, order-free) and its detection and quarantine counts.
 */
import { performance } from "node:perf_hooks";
import { encodeRow } from "../connectors/clickhouse/mod.js";
import { SerialNatsInput } from "../connectors/nats/mod.js";
import { SerialSimulator } from "../connectors/sim/mod.js";
import { encodeSerialRecord, serialSubject } from "../connectors/wire/mod.js";
import { createLogger } from "../engine/core/mod.js";
import { DEFAULT_SERIAL_JOB, SerialJob, SerialOutputs, takeSerialMessage } from "../engine/jobs/mod.js";
import {
  DEFAULT_SERIAL_PARAMS,
  encodeSerialRanges,
  PAYLOAD,
  readU32,
  RISK_LEVELS,
  SERIAL_PAYLOAD_BYTES,
  SerialLedgerThread,
  type LedgerThreadReport,
  serialAnalysis,
  type SerialAnalysis,
  type SerialAnalysisOptions,
} from "../operators/serial/mod.js";
import { benchMachine, machineLine, threadCpuMicros, type BenchMachine } from "./bench-kit.js";
import { SerialKernelHarness } from "./kit/serial-harness.js";

export interface SerialJobRateOptions {
  /** Events (default 1 000 000; smoke 20 000). */
  events?: number;
  /** Serialization lines, each its own subject and engine key (default 16). */
  lines?: number;
  seed?: number;
  /** Worker threads of the job's pool (default the job's, 1). */
  workers?: number;
  /** Records per job batch and engine buffer (default the job's, 1024). */
  batchRecords?: number;
  smoke?: boolean;
  progress?: ((line: string) => void) | null;
}

export interface SerialJobRateFigure {
  label: string;
  events: number;
  eventsPerSecond: number;
  /** CPU time per event, process (every thread). */
  cpuNsPerEvent: number;
  /** CPU time per event of the main thread alone (NaN where the platform cannot tell). */
  mainNsPerEvent: number;
  /** The workers' kernel time per event (job figures). */
  kernelNsPerEvent?: number;
  /**
   * Job figures: events/s with a core for the main thread and one per worker, from the CPU times
   * (1e9 / max(main thread ns, kernel ns ÷ workers)): what the job does where other processes do
   * not take the cores.
   */
  projectedEventsPerSecond?: number;
  /**
   * Job figures: checksum of the detections (module comment); the ledger stages: checksum of the
   * verdict bits in event order (Σ bits × (i + 1) mod 2³²: equal when the ledger answered the same);
   * null otherwise.
   */
  checksum: number | null;
  /** The ledger thread's CPU time per event (the stage with the ledger on its own thread). */
  ledgerThreadNsPerEvent?: number;
  /** Job figures: the ledger thread's CPU time per event less its start-up (its CPU when it answered a report asked before the first event: module loading, the filter's allocation). */
  ledgerThreadSteadyNsPerEvent?: number;
  /**
   * Job figures: the same run timed from its first third on, to the same end ({@link STEADY_FROM}):
   * the job's start, the ledger thread's start-up and the code's first compilations behind it —
   * the rate a job that runs for hours keeps. Its ledger thread figure is that thread's CPU over
   * the events it answered in the window.
   */
  steady?: SerialJobRateFigure;
}

export interface SerialJobRate {
  machine: BenchMachine;
  events: number;
  lines: number;
  workers: number;
  batchRecords: number;
  /** Mean MessagePack message size. */
  messageBytes: number;
  /** The whole job (the headline figure). */
  job: SerialJobRateFigure;
  /**
   * From the same messages: the whole job with the ledger on the main thread (the job before the
   * ledger thread), the whole job with every message through the generic decoder (the path before
   * the schema reader), the schema reader alone, the reader + the payload copy, the
   * reader + payload + ledger, the reader + payload with the ledger on its own thread, the generic
   * decoder alone, the kernel alone.
   */
  baselines: SerialJobRateFigure[];
  /** The CPU per event by part (ns) of the job with the ledger on the main thread, from it and the stages measured alone (module comment). */
  parts: SerialJobParts;
  /** Events the schema reader took in the job figure (the rest: the generic decoder). */
  fastEvents: number;
  /** The job's detections are the same on every path (ledger thread or not, reader or generic decoder: checksum and counts). */
  checksumsAgree: boolean;
  /** The ledger on its own thread answered every event as the ledger on the main thread did (verdict checksums). */
  ledgerThreadAgrees: boolean;
  detections: number;
  quarantined: number;
  deadLettered: number;
  target: { goal: string; measured: number; met: boolean };
}

/**
 * CPU ns per event of each part of the job: reader, payload copy and ledger are differences of
 * the stages measured alone (each with the ones before it); `engine` is the job's main-thread time
 * less those three (takeSerialMessage, the batch, the engine's buffers and pool messages, scoring,
 * outputs); `kernel` the worker's kernel time per event in the job.
 */
export interface SerialJobParts {
  reader: number;
  payload: number;
  ledger: number;
  engine: number;
  kernel: number;
}

export const SERIAL_JOB_TARGET = 1e6;

/**
 * Where a job's steady state starts: after this share of its events, as the e2e rows time the last
 * two thirds of their maximum phase. A plant's serial job runs for hours: its rate is the steady
 * one; the whole run's (start-up included) is printed beside it.
 */
export const STEADY_FROM = 1 / 3;
const SITE = "bench";
/** Quiet logs: the job's operational messages are not what is measured. */
const QUIET = createLogger({ level: "silent" });

/** Serial events through the whole job, and its baselines, from one seeded stream (module comment). */
export async function measureSerialJobRate(options: SerialJobRateOptions = {}): Promise<SerialJobRate> {
  const smoke = options.smoke === true;
  const n = options.events ?? (smoke ? 20_000 : 1_000_000);
  const lines = options.lines ?? 16;
  const workers = options.workers ?? DEFAULT_SERIAL_JOB.workers;
  const batchRecords = options.batchRecords ?? DEFAULT_SERIAL_JOB.batchRecordsMax;
  const say = options.progress ?? (() => {});
  const machine = benchMachine();
  say(`making ${n} MessagePack serial messages on ${lines} lines`);
  const stream = serialMessages(n, lines, options.seed ?? 1);
  say("decode alone: the schema reader, then the generic decoder");
  const read = measureRead(stream);
  say("the main thread's stages alone: reader + payload copy, then + ledger");
  const copied = measureEncode(stream, batchRecords, false);
  const asked = measureEncode(stream, batchRecords, true);
  say("the main thread's stages with the ledger on its own thread: reader + payload copy into shared slots");
  const threaded = await measureEncodeThreaded(stream, batchRecords, lines);
  const decode = measureDecode(stream);
  say("WASM kernel alone");
  const kernel = measureKernel(n, lines, options.seed ?? 1, batchRecords);
  const o = { workers, batchRecords, linesMax: Math.max(lines, 16) };
  const on = { kernelsOnLedgerThread: true };
  say("whole job, every message through the generic decoder");
  const generic = await measureJob(stream, { ...o, ...on, fastPath: false, ledgerThread: true });
  say(`whole job, ${workers} worker${workers === 1 ? "" : "s"}, the ledger on the main thread`);
  const inThread = await measureJob(stream, { ...o, kernelsOnLedgerThread: false, fastPath: true, ledgerThread: false });
  say(`whole job, the ledger thread, the kernel on ${workers} pool worker${workers === 1 ? "" : "s"}`);
  const pooled = await measureJob(stream, { ...o, kernelsOnLedgerThread: false, fastPath: true, ledgerThread: true });
  say("whole job, the ledger and the kernel on one thread");
  const r = await measureJob(stream, { ...o, ...on, fastPath: true, ledgerThread: true });
  const agree = [generic, inThread, pooled].every(
    (g) => r.figure.checksum === g.figure.checksum && r.detections === g.detections && r.quarantined === g.quarantined,
  );
  return {
    machine,
    events: n,
    lines,
    workers,
    batchRecords,
    messageBytes: stream.bytes.length / n,
    job: r.figure,
    baselines: [inThread.figure, generic.figure, read, copied, asked, threaded, decode, kernel, pooled.figure],
    parts: {
      reader: read.mainNsPerEvent,
      payload: copied.mainNsPerEvent - read.mainNsPerEvent,
      ledger: asked.mainNsPerEvent - copied.mainNsPerEvent,
      engine: inThread.figure.mainNsPerEvent - asked.mainNsPerEvent,
      kernel: inThread.figure.kernelNsPerEvent ?? Number.NaN,
    },
    fastEvents: r.fastEvents,
    checksumsAgree: agree,
    ledgerThreadAgrees: threaded.checksum === asked.checksum,
    detections: r.detections,
    quarantined: r.quarantined,
    deadLettered: r.deadLettered,
    target: serialTarget(r.figure),
  };
}

/** The target reads the job's steady state (its whole run where the run had none: a smoke run's few events). */
function serialTarget(job: SerialJobRateFigure): SerialJobRate["target"] {
  const measured = (job.steady ?? job).eventsPerSecond;
  return {
    goal: "≥ 1 M serial events/s through the whole serial job (decode → kernel → detections, quarantine → outputs), steady state",
    measured,
    met: measured >= SERIAL_JOB_TARGET,
  };
}

export function formatSerialJobRate(r: SerialJobRate): string {
  const out: string[] = [];
  out.push(
    `serial job rate: ${r.events} events on ${r.lines} lines, ${r.workers} worker${r.workers === 1 ? "" : "s"}, batches of ${r.batchRecords}, ` +
      `MessagePack messages of ${r.messageBytes.toFixed(1)} bytes on average`,
  );
  out.push(machineLine(r.machine));
  const figures = [r.job, ...(r.job.steady === undefined ? [] : [r.job.steady]), ...r.baselines];
  const width = Math.max(...figures.map((f) => f.label.length));
  for (const f of figures) {
    const kernel =
      (f.kernelNsPerEvent === undefined ? "" : `, kernel ${Math.round(f.kernelNsPerEvent)}`) +
      (f.ledgerThreadNsPerEvent === undefined ? "" : `, ledger thread ${Math.round(f.ledgerThreadNsPerEvent)}`) +
      (f.ledgerThreadSteadyNsPerEvent === undefined ? "" : ` (${Math.round(f.ledgerThreadSteadyNsPerEvent)} less its start-up)`);
    const projected =
      f.projectedEventsPerSecond === undefined ? "" : `; ${(f.projectedEventsPerSecond / 1e6).toFixed(3)} M/s with a core per thread`;
    out.push(
      `  ${f.label.padEnd(width)}  ${(f.eventsPerSecond / 1e6).toFixed(3).padStart(7)} M events/s  ` +
        `cpu ${Math.round(f.cpuNsPerEvent)} ns/event (main thread ${Math.round(f.mainNsPerEvent)}${kernel}${projected})` +
        (f.checksum === null ? "" : `  checksum ${f.checksum}`),
    );
  }
  out.push(
    `  detections ${r.detections}, quarantined ${r.quarantined}, dead-lettered ${r.deadLettered}; ${r.fastEvents} of ${r.events} events by the schema reader; ` +
      `both paths' detections ${r.checksumsAgree ? "agree" : "MISMATCH"}; the ledger thread's verdicts ${r.ledgerThreadAgrees ? "agree" : "MISMATCH"}`,
  );
  const p = r.parts;
  const ns = (v: number) => Math.round(v);
  out.push(
    `  the job's CPU by part with the ledger on the main thread, ns/event: main thread ${ns(r.baselines[0].mainNsPerEvent)} = schema reader ${ns(p.reader)} + payload copy ${ns(p.payload)} + ` +
      `ledger ${ns(p.ledger)} + engine, pool messages, scoring and outputs ${ns(p.engine)}; kernel (worker) ${ns(p.kernel)}`,
  );
  const generic = r.baselines[1].eventsPerSecond;
  out.push(`  whole job ÷ whole job through the generic decoder: ${(r.job.eventsPerSecond / generic).toFixed(1)}×`);
  out.push(`  target: ${r.target.goal}: ${(r.target.measured / 1e6).toFixed(3)} M/s — ${r.target.met ? "met" : "not met"}`);
  return out.join("\n");
}

// ---- internals ----

/** The job's figures where its steady state starts. */
export interface SteadyStart {
  t: Started;
  kernelMs: number;
  /** The ledger thread's report, asked there (answered in order, after the slots handed over before it). */
  ledger: Promise<LedgerThreadReport | null>;
}

export function steadyStart(job: SerialJob): SteadyStart {
  return { t: start(), kernelMs: job.engine.metrics().kernelBusyMs, ledger: job.ledgerThreadReport() };
}

/** The job's figure from its steady state's start to now, the run's end (`ledgerEnd`: the thread's report at the end). */
export async function steadyFigure(
  job: SerialJob,
  from: SteadyStart,
  events: number,
  ledgerEnd: LedgerThreadReport | null,
  o: { workers: number; ledgerThread: boolean; kernelsOnLedgerThread: boolean },
): Promise<SerialJobRateFigure> {
  const f = figure(
    `  steady state: its last ${Math.round((1 - STEADY_FROM) * 100)} % (the start-up and first compilations behind it)`,
    events,
    from.t,
    null,
  );
  f.kernelNsPerEvent = ((job.engine.metrics().kernelBusyMs - from.kernelMs) * 1e6) / events;
  const ledgerFrom = await from.ledger;
  if (ledgerEnd !== null && ledgerFrom !== null)
    f.ledgerThreadNsPerEvent = ((ledgerEnd.cpuMicros - ledgerFrom.cpuMicros) * 1000) / (ledgerEnd.events - ledgerFrom.events);
  f.projectedEventsPerSecond = projectedRate(f, o);
  return f;
}

/**
 * Events/s with a core for the main thread, one per worker and one for the ledger thread: the
 * slowest stage (with the kernels on the ledger thread its CPU time includes theirs, and no pool
 * worker runs).
 */
function projectedRate(f: SerialJobRateFigure, o: { workers: number; ledgerThread: boolean; kernelsOnLedgerThread: boolean }): number {
  const kernelOwn = o.ledgerThread && o.kernelsOnLedgerThread ? 0 : (f.kernelNsPerEvent ?? 0);
  return Math.min(1e9 / f.mainNsPerEvent, (o.workers * 1e9) / kernelOwn, 1e9 / (f.ledgerThreadNsPerEvent ?? 0));
}

/**
 * The messages as a socket would hand them over: their bytes one after another in one buffer
 * (message i is `bytes[offsets[i], offsets[i + 1])`, taken as a view per message, as the NATS
 * client does), each with its line's subject — no million objects on the heap for the garbage
 * collector to trace, which the job would not have either.
 */
export interface MessageStream {
  bytes: Uint8Array;
  offsets: Float64Array;
  /** Subject of each line, and each message's line. */
  subjects: string[];
  lineOf: Uint16Array;
  n: number;
}

export function serialMessages(n: number, lines: number, seed: number): MessageStream {
  const sim = new SerialSimulator(simulatorOptions(n, lines, seed));
  const subjects: string[] = [];
  const lineIndex = new Map<string, number>();
  const lineOf = new Uint16Array(n);
  const offsets = new Float64Array(n + 1);
  let bytes = new Uint8Array(256 * n);
  for (let i = 0; i < n; i++) {
    const e = sim.next();
    let line = lineIndex.get(e.machine_id);
    if (line === undefined) {
      lineIndex.set(e.machine_id, (line = subjects.length));
      // A flat string, as a client decodes it from the wire.
      subjects.push(new TextDecoder().decode(new TextEncoder().encode(serialSubject(SITE, e.machine_id))));
    }
    lineOf[i] = line;
    const d = encodeSerialRecord(e);
    if (offsets[i] + d.length > bytes.length) {
      const grown = new Uint8Array(2 * bytes.length);
      grown.set(bytes);
      bytes = grown;
    }
    bytes.set(d, offsets[i]);
    offsets[i + 1] = offsets[i] + d.length;
  }
  return { bytes: bytes.subarray(0, offsets[n]), offsets, subjects, lineOf, n };
}

function simulatorOptions(n: number, lines: number, seed: number) {
  return { seed, lines, attackEvery: Math.max(1000, Math.floor(n / 40)), batchSerials: 50_000 };
}

/** Message i (a view, made when it is taken). */
export function messageAt(s: MessageStream, i: number): Uint8Array {
  return s.bytes.subarray(s.offsets[i], s.offsets[i + 1]);
}

interface Started {
  wall: number;
  cpu: NodeJS.CpuUsage;
  main: number;
}

function start(): Started {
  return { wall: performance.now(), cpu: process.cpuUsage(), main: threadCpuMicros() };
}

function figure(label: string, events: number, t0: Started, checksum: number | null): SerialJobRateFigure {
  const seconds = (performance.now() - t0.wall) / 1000;
  const cpu = process.cpuUsage(t0.cpu);
  return {
    label,
    events,
    eventsPerSecond: events / seconds,
    cpuNsPerEvent: ((cpu.user + cpu.system) * 1000) / events,
    mainNsPerEvent: ((threadCpuMicros() - t0.main) * 1000) / events,
    checksum,
  };
}

function measureRead(s: MessageStream): SerialJobRateFigure {
  const input = new SerialNatsInput(() => {}, SITE);
  let kept = 0;
  const t0 = start();
  for (let i = 0; i < s.n; i++) if (input.read(s.subjects[s.lineOf[i]], messageAt(s, i)) !== null) kept++;
  return figure("schema reader alone (SerialNatsInput.read: message bytes → times and text ranges)", kept, t0, null);
}

/**
 * The main thread's encode stages on their own: the schema reader, then each event copied into a
 * batch payload as the job does (encodeSerialRanges); with `ledger`, through the job's encoder
 * instead (SerialInput.encodeRanges: the same copy, and the ledger's questions, settled per batch).
 */
function measureEncode(s: MessageStream, batchRecords: number, ledger: boolean): SerialJobRateFigure {
  const input = new SerialNatsInput(() => {}, SITE);
  const encoder = freshAnalysis().input;
  const payload = new Uint8Array(batchRecords * SERIAL_PAYLOAD_BYTES);
  const view = input.view;
  let k = 0;
  let kept = 0;
  const sum = { bits: 0, events: 0 };
  const t0 = start();
  for (let i = 0; i < s.n; i++) {
    const data = messageAt(s, i);
    const line = input.read(s.subjects[s.lineOf[i]], data);
    if (line === null) continue;
    kept++;
    const at = k * SERIAL_PAYLOAD_BYTES;
    if (ledger) encoder.encodeRanges(data, view, line, payload, at);
    else encodeSerialRanges(data, view, view.received, view.batchClose, 0, payload, at);
    if (++k === batchRecords) {
      if (ledger) {
        encoder.settle();
        addVerdicts(sum, payload, k);
      }
      k = 0;
    }
  }
  if (ledger) {
    encoder.settle();
    addVerdicts(sum, payload, k);
  }
  const label = ledger
    ? "schema reader + payload + ledger (SerialInput.encodeRanges, settled per batch)"
    : "schema reader + payload copy (encodeSerialRanges into a batch payload)";
  return figure(label, kept, t0, ledger ? sum.bits : null);
}

/** Adds the verdict bits of a batch's first `n` payloads to an order-dependent checksum (SerialJobRateFigure.checksum). */
function addVerdicts(sum: { bits: number; events: number }, payload: Uint8Array, n: number): void {
  for (let k = 0; k < n; k++)
    sum.bits = (sum.bits + Math.imul(readU32(payload, k * SERIAL_PAYLOAD_BYTES + PAYLOAD.ledger), ++sum.events)) >>> 0;
}

/**
 * The main thread's encode stages with the ledger on its own thread (SerialLedgerThread): the
 * schema reader, each event copied into a shared slot's payload (encodeSerialRanges, the arrival
 * time as encodeRanges takes it), the slot handed over when full and the next one filled while
 * the thread asks; every slot's verdicts checked in order when it comes back. An event whose text
 * does not fit its field (none in this stream) would take the in-thread path: counted, not asked.
 */
async function measureEncodeThreaded(s: MessageStream, batchRecords: number, lines: number): Promise<SerialJobRateFigure> {
  const input = new SerialNatsInput(() => {}, SITE);
  const thread = new SerialLedgerThread({ batchRecords, slots: 3, linesMax: Math.max(lines, 16), timeUnit: "ms" });
  const view = input.view;
  const sum = { bits: 0, events: 0 };
  let slot = 0;
  let k = 0;
  let kept = 0;
  let unfit = 0;
  const t0 = start();
  for (let i = 0; i < s.n; i++) {
    const data = messageAt(s, i);
    const line = input.read(s.subjects[s.lineOf[i]], data);
    if (line === null || !Number.isFinite(view.production)) continue;
    const sl = thread.slots[slot];
    if (!encodeSerialRanges(data, view, view.received, view.batchClose, 0, sl.payload, k * SERIAL_PAYLOAD_BYTES)) {
      unfit++;
      continue;
    }
    kept++;
    sl.offsets[k] = k * SERIAL_PAYLOAD_BYTES;
    sl.times[k] = view.production;
    sl.lines[k] = thread.lineId(line);
    if (++k === batchRecords) {
      thread.submit(slot, k);
      slot = (slot + 1) % thread.slots.length;
      k = 0;
      takeAnswer(thread, slot, sum);
    }
  }
  if (k > 0) thread.submit(slot, k);
  for (let j = 1; j <= thread.slots.length; j++) takeAnswer(thread, (slot + j) % thread.slots.length, sum);
  const f = figure("schema reader + payload into shared slots, ledger on its own thread (SerialLedgerThread)", kept, t0, sum.bits);
  const r = await thread.report();
  await thread.close();
  if (unfit > 0) throw new Error(`ledger thread stage: ${unfit} events did not fit the payload (the stream has none)`);
  f.ledgerThreadNsPerEvent = (r.cpuMicros * 1000) / r.events;
  return f;
}

/** Waits for slot `slot`'s answer (a no-op when it was never submitted) and adds its verdicts. */
function takeAnswer(thread: SerialLedgerThread, slot: number, sum: { bits: number; events: number }): void {
  const n = thread.take(slot);
  if (n > 0) addVerdicts(sum, thread.slots[slot].payload, n);
}

function measureDecode(s: MessageStream): SerialJobRateFigure {
  const input = new SerialNatsInput(() => {}, SITE);
  let kept = 0;
  const t0 = start();
  for (let i = 0; i < s.n; i++) if (input.decode(s.subjects[s.lineOf[i]], messageAt(s, i)) !== null) kept++;
  return figure("decode alone (SerialNatsInput.decode: generic MessagePack → event objects)", kept, t0, null);
}

export function freshAnalysis(onQuarantine?: SerialAnalysisOptions["onQuarantine"]): SerialAnalysis {
  // A fixed processing clock: the simulator's events carry received_timestamp anyway.
  return serialAnalysis({ params: { ...DEFAULT_SERIAL_PARAMS }, timeUnit: "ms", clock: () => Number.NaN, onQuarantine });
}

/** The kernel over the same stream, chunk by chunk: the encoder (untimed) fills a chunk's payloads, the kernel's calls are timed. */
function measureKernel(n: number, lines: number, seed: number, batchRecords: number): SerialJobRateFigure {
  const sim = new SerialSimulator(simulatorOptions(n, lines, seed));
  const input = freshAnalysis().input;
  const h = new SerialKernelHarness({ ...DEFAULT_SERIAL_PARAMS }, lines, batchRecords);
  const { slots, times, payload } = h.staging();
  const ids = new Map<string, number>();
  let wall = 0;
  let main = 0;
  for (let first = 0; first < n; first += batchRecords) {
    const m = Math.min(batchRecords, n - first);
    for (let i = 0; i < m; i++) {
      const e = sim.next();
      let id = ids.get(e.machine_id);
      if (id === undefined) ids.set(e.machine_id, (id = ids.size));
      input.encodeEvent(e, payload, i * SERIAL_PAYLOAD_BYTES);
      slots[i] = id;
      times[i] = e.production_timestamp;
    }
    const t0 = performance.now();
    const c0 = threadCpuMicros();
    h.processStaged(m);
    main += threadCpuMicros() - c0;
    wall += performance.now() - t0;
  }
  return {
    label: "WASM kernel alone (main thread, payloads pre-encoded)",
    events: n,
    eventsPerSecond: (n * 1000) / wall,
    cpuNsPerEvent: (main * 1000) / n,
    mainNsPerEvent: (main * 1000) / n,
    checksum: null,
  };
}

/** The outputs' targets: rows encoded as the ClickHouse sink encodes them, live messages counted; a checksum of the detections. */
export function countingTargets() {
  const seen = { detections: 0, checksum: 0, quarantineRows: 0, bytes: 0, published: 0 };
  const sink = {
    write(table: "ml_serial_detections" | "ml_quarantine", rows: readonly Record<string, unknown>[]): Promise<void> {
      for (const row of rows) {
        seen.bytes += encodeRow(table, row as never).length;
        if (table === "ml_quarantine") {
          seen.quarantineRows++;
          continue;
        }
        const d = row as { reasons: string[]; risk_level: (typeof RISK_LEVELS)[number]; quarantined: boolean };
        seen.detections++;
        seen.checksum += d.reasons.length + RISK_LEVELS.indexOf(d.risk_level) + (d.quarantined ? 1 : 0);
      }
      return Promise.resolve();
    },
  };
  const live = { publish: (): number => ++seen.published };
  return { seen, sink, live };
}

/** The label of a whole-job figure by where its ledger and kernel run. */
function jobLabel(o: { fastPath: boolean; ledgerThread: boolean; kernelsOnLedgerThread: boolean }): string {
  if (!o.fastPath) return "whole serial job, every message through the generic decoder (the path before the schema reader)";
  if (!o.ledgerThread) return "whole serial job, the ledger on the main thread, the kernel on the pool";
  if (!o.kernelsOnLedgerThread)
    return "whole serial job, the ledger thread and the kernel on a pool worker (the job before one thread ran both)";
  return "whole serial job (messages → schema reader → ledger thread, which runs the kernel too → detections, quarantine → outputs)";
}

/** What the core NATS consumer does with each message, minus NATS: take, and a non-durable flush every 250 ms. */
async function measureJob(
  s: MessageStream,
  o: { workers: number; batchRecords: number; linesMax: number; fastPath: boolean; ledgerThread: boolean; kernelsOnLedgerThread: boolean },
) {
  const t = countingTargets();
  let outputs: SerialOutputs | undefined;
  const analysis = freshAnalysis((e) => outputs?.quarantined(e));
  outputs = new SerialOutputs(analysis.quarantine, { sink: t.sink as never, live: t.live, log: QUIET });
  const job = new SerialJob({
    ...DEFAULT_SERIAL_JOB,
    analysis,
    outputs,
    workers: o.workers,
    batchRecordsMax: o.batchRecords,
    linesMax: o.linesMax,
    ledgerThread: o.ledgerThread,
    kernelsOnLedgerThread: o.kernelsOnLedgerThread,
  });
  const input = new SerialNatsInput(() => {}, SITE, undefined, o.fastPath);
  // Asked before any event, answered in order, awaited only at the end: the thread's CPU once started.
  const started = job.ledgerThreadReport();
  const t0 = start();
  let lastFlush = t0.wall;
  let ledgerReport: LedgerThreadReport | null = null;
  const warm = Math.floor(s.n * STEADY_FROM);
  let steady: SteadyStart | null = null;
  try {
    for (let i = 0; i < s.n; i++) {
      if (i === warm) steady = steadyStart(job);
      const full = takeSerialMessage(input, job, s.subjects[s.lineOf[i]], messageAt(s, i), i);
      if (full !== undefined) await full;
      if ((i & 1023) === 1023 && performance.now() - lastFlush >= 250) {
        lastFlush = performance.now();
        await job.flush(false);
      }
    }
    await job.flush(true);
    ledgerReport = await job.ledgerThreadReport();
  } finally {
    await job.close();
  }
  const kernelMs = job.engine.metrics().kernelBusyMs;
  const label = jobLabel(o);
  const f = figure(label, s.n, t0, t.seen.checksum);
  f.kernelNsPerEvent = (kernelMs * 1e6) / s.n;
  const startReport = await started;
  if (ledgerReport !== null) f.ledgerThreadNsPerEvent = (ledgerReport.cpuMicros * 1000) / s.n;
  if (ledgerReport !== null && startReport !== null)
    f.ledgerThreadSteadyNsPerEvent = ((ledgerReport.cpuMicros - startReport.cpuMicros) * 1000) / s.n;
  f.projectedEventsPerSecond = projectedRate(f, o);
  if (steady !== null && warm > 0) f.steady = await steadyFigure(job, steady, s.n - warm, ledgerReport, o);
  await outputs.close();
  const c = input.counts();
  return {
    figure: f,
    detections: t.seen.detections,
    quarantined: job.countsNow().quarantined,
    deadLettered: c.deadLettered,
    fastEvents: input.fastEvents,
  };
}
