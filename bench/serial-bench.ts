/**
 * The serial-integrity benchmark (`node dist/bench/serial-bench.js [--events n] [--lines n]
 * [--smoke] [--json] [--job]`): serial events per second through the serial operator, side by side from
 * one run over one seeded stream of the serial simulator (several lines, every attack kind); then
 * the whole serial job's rate from MessagePack messages (serial-job-bench.ts; `--job`: that alone).
 *
 * Variants, each from fresh state over the same events (decoded objects in memory, handed to the
 * encoder's `encodeEvent`: no file parsing):
 *   - encoder + ledger alone (main thread): payloads, duplicates, behaviour, patterns;
 *   - the WASM kernel alone on the main thread, payloads pre-encoded (the kernel's ceiling);
 *   - the whole operator on the main thread: encoder, WASM kernel inline, score and quarantine;
 *   - the whole operator on the stream engine with 1 and 2 pool workers (the issue's headline:
 *     target ≥ 1 M events/s with 2 workers, informational);
 *   - the TypeScript reference (encoder, kernels/reference/serial-reference.ts, score) on a slice.
 * Every operator variant prints a checksum — Σ over events of (reasons raised + risk code) plus
 * the quarantined events, all integers, so the order in which lines finish does not matter — and
 * the variants must agree; the WASM rows must equal the reference's flags on the slice. A
 * disagreement is reported as MISMATCH (exit code 1 standalone).
 *
 * Hooking it into `npm run bench`: bench/kernel-bench.ts's owner runs {@link runSerialBench} after
 * the SPC suite (as `npm run bench -- --suite serial`), or package.json's bench script appends
 * `&& node dist/bench/serial-bench.js`.
 */
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { allocateBatch, appendRecord, StreamEngine, type OutputChunk } from "../engine/core/mod.js";
import { SerialSimulator, type SerialEvent } from "../connectors/sim/mod.js";
import {
  ANOMALY_MASK,
  DEFAULT_SERIAL_PARAMS,
  SERIAL_COL as C,
  SERIAL_OUT_FIELDS,
  SERIAL_PAYLOAD_BYTES,
  serialStateBytes,
  anomalyScore,
  riskCode,
  serialAnalysis,
  type SerialAnalysis,
  readU32,
} from "../operators/serial/mod.js";
import { SerialInlinePipeline } from "./kit/serial-pipeline.js";
import { SerialKernelHarness } from "./kit/serial-harness.js";
import { SerialReference } from "../kernels/reference/mod.js";
import { benchMachine, type BenchMachine } from "./bench-kit.js";
import { formatSerialJobRate, measureSerialJobRate, type SerialJobRate } from "./serial-job-bench.js";

export interface SerialBenchOptions {
  /** Events (default 1 000 000; smoke 20 000). */
  events?: number;
  /** Lines = engine keys (default 16). */
  lines?: number;
  seed?: number;
  /** Events the TypeScript reference runs (default 20 000; smoke 5 000). */
  referenceEvents?: number;
  /** Records per engine buffer (default 4096). */
  batchRecords?: number;
  smoke?: boolean;
  progress?: ((line: string) => void) | null;
}

export interface SerialMeasurement {
  label: string;
  threads: number;
  events: number;
  eventsPerSecond: number;
  /**
   * CPU time per event (process, all threads) and, on the engine, the workers' kernel time per
   * event: less sensitive than wall time to other processes on a shared machine.
   */
  cpuNsPerEvent: number;
  kernelNsPerEvent?: number;
  /** Engine only: events/s if the main thread and each worker had a core of their own. */
  projectedEventsPerSecond?: number;
  /** Integer checksum of the operator's verdicts (null for the encoder and the kernel alone). */
  checksum: number | null;
}

export interface SerialBenchReport {
  machine: BenchMachine;
  events: number;
  lines: number;
  seed: number;
  window: number;
  stateBytesPerLine: number;
  payloadBytes: number;
  measurements: SerialMeasurement[];
  ratios: Array<{ label: string; value: number }>;
  target: { goal: string; measured: number; met: boolean; projected: number };
  reference: { events: number; flagsDiffering: number; examples: string[] };
  checksums: { agree: boolean; mismatches: string[] };
  anomalous: number;
  quarantined: number;
}

export const SERIAL_BENCH_TARGET_2W = 1e6;
export const DEFAULT_SERIAL_BENCH_EVENTS = 1_000_000;
export const DEFAULT_SERIAL_BENCH_LINES = 16;

export async function runSerialBench(options: SerialBenchOptions = {}): Promise<SerialBenchReport> {
  const smoke = options.smoke === true;
  const n = options.events ?? (smoke ? 20_000 : DEFAULT_SERIAL_BENCH_EVENTS);
  const lines = options.lines ?? DEFAULT_SERIAL_BENCH_LINES;
  const seed = options.seed ?? 1;
  const refN = Math.min(n, options.referenceEvents ?? (smoke ? 5_000 : 20_000));
  const batchRecords = options.batchRecords ?? 4096;
  const say = options.progress ?? (() => {});
  const machine = benchMachine();
  say(`generating ${n} events on ${lines} lines`);
  const sim = new SerialSimulator({ seed, lines, attackEvery: Math.max(1000, Math.floor(n / 40)), batchSerials: 50_000 });
  const events = Array.from({ length: n }, () => sim.next());
  say("encoder + ledger");
  const encoded = measureEncoder(events, batchRecords);
  say("WASM kernel alone");
  const kernel = measureKernel(events, encoded.payloads, lines, batchRecords);
  say("whole operator, main thread");
  const inline = measureInline(events, lines, batchRecords, refN);
  const measurements: SerialMeasurement[] = [encoded.measurement, kernel, inline.measurement];
  for (const workers of [1, 2]) {
    say(`whole operator, engine + pool, ${workers} worker${workers > 1 ? "s" : ""}`);
    const r = await throughEngine(events, lines, workers, batchRecords);
    const cpuNs = (r.cpuMs * 1e6) / n;
    const kernelNs = (r.kernelMs * 1e6) / n;
    measurements.push({
      label: `whole operator, stream engine + pool, ${workers} worker${workers > 1 ? "s" : ""}`,
      threads: workers + 1,
      events: n,
      eventsPerSecond: n / r.seconds,
      checksum: r.checksum,
      cpuNsPerEvent: cpuNs,
      kernelNsPerEvent: kernelNs,
      projectedEventsPerSecond: Math.min(1e9 / Math.max(1, cpuNs - kernelNs), (workers * 1e9) / Math.max(1, kernelNs)),
    });
  }
  say(`TypeScript reference on ${refN} events`);
  const reference = measureReference(events, refN, inline.flags);
  measurements.push(reference.measurement);

  const rate = (label: string) => measurements.find((m) => m.label.startsWith(label))?.eventsPerSecond ?? Number.NaN;
  const twoWorkers = rate("whole operator, stream engine + pool, 2 workers");
  const mismatches: string[] = [];
  const sums = measurements.filter((m) => m.checksum !== null);
  for (const m of sums) if (m.checksum !== sums[0].checksum) mismatches.push(`${m.label}: checksum ${m.checksum} ≠ ${sums[0].checksum}`);
  if (reference.comparison.flagsDiffering > 0)
    mismatches.push(`${reference.comparison.flagsDiffering} events' flags differ from the reference`);
  return {
    machine,
    events: n,
    lines,
    seed,
    window: DEFAULT_SERIAL_PARAMS.window,
    stateBytesPerLine: serialStateBytes(DEFAULT_SERIAL_PARAMS.window),
    payloadBytes: SERIAL_PAYLOAD_BYTES,
    measurements,
    ratios: [
      { label: "engine 2 workers / TypeScript reference", value: twoWorkers / rate("TypeScript reference") },
      { label: "engine 2 workers / engine 1 worker", value: twoWorkers / rate("whole operator, stream engine + pool, 1 worker") },
      { label: "engine 2 workers / whole operator on the main thread", value: twoWorkers / rate("whole operator, main thread") },
      { label: "WASM kernel alone / TypeScript reference", value: rate("WASM kernel alone") / rate("TypeScript reference") },
    ],
    target: {
      goal: "≥ 1 M serial events/s through the whole operator with 2 workers",
      measured: twoWorkers,
      met: twoWorkers >= SERIAL_BENCH_TARGET_2W,
      projected: measurements.find((m) => m.label.endsWith("2 workers"))?.projectedEventsPerSecond ?? Number.NaN,
    },
    reference: reference.comparison,
    checksums: { agree: mismatches.length === 0, mismatches },
    anomalous: inline.anomalous,
    quarantined: inline.quarantined,
  };
}

export function formatSerialBenchReport(r: SerialBenchReport): string {
  const out: string[] = [];
  out.push(
    `serial benchmark: ${r.events} events on ${r.lines} lines (seed ${r.seed}, window K = ${r.window}, ${r.stateBytesPerLine} state bytes per line, ${r.payloadBytes} payload bytes per event)`,
  );
  out.push(
    `machine: ${r.machine.cpus} CPUs, Node ${r.machine.node}, load average ${r.machine.loadAverageAtStart.toFixed(2)} at start${r.machine.loadAverageAtStart > 0.5 ? " (busy: figures are low)" : ""}`,
  );
  out.push("");
  const width = Math.max(...r.measurements.map((m) => m.label.length));
  for (const m of r.measurements) {
    const cpu = `cpu ${Math.round(m.cpuNsPerEvent)} ns/event${m.kernelNsPerEvent === undefined ? "" : ` (kernel ${Math.round(m.kernelNsPerEvent)})`}`;
    out.push(
      `  ${m.label.padEnd(width)}  ${(m.eventsPerSecond / 1e6).toFixed(3).padStart(8)} M events/s  ${cpu}${m.checksum === null ? "" : `  checksum ${m.checksum}`}`,
    );
  }
  for (const m of r.measurements) {
    if (m.projectedEventsPerSecond === undefined) continue;
    out.push(
      `  projected with a core per thread (${m.label.replace("whole operator, stream engine + pool, ", "")}): ${(m.projectedEventsPerSecond / 1e6).toFixed(3)} M events/s (main thread ≈ cpu − kernel)`,
    );
  }
  out.push("");
  for (const x of r.ratios) out.push(`  ${x.label}: ${x.value.toFixed(1)}×`);
  out.push("");
  out.push(`  anomalous events ${r.anomalous}, quarantined ${r.quarantined}`);
  out.push(
    `  reference slice: ${r.reference.events} events, flags differing ${r.reference.flagsDiffering}${r.reference.examples.length > 0 ? ` (${r.reference.examples.join("; ")})` : ""}`,
  );
  out.push(
    `  target: ${r.target.goal}: ${(r.target.measured / 1e6).toFixed(3)} M/s — ${r.target.met ? "met" : "not met"} (projected ${(r.target.projected / 1e6).toFixed(3)} M/s)`,
  );
  out.push(`  checksums: ${r.checksums.agree ? "agree" : `MISMATCH — ${r.checksums.mismatches.join("; ")}`}`);
  return out.join("\n");
}

// ---- internals ----

/**
 * The encoder and ledger alone, into one reused buffer of `batchRecords` payloads as the engine's
 * batches are; then (untimed) every payload for the kernel-alone variant.
 */
function measureEncoder(events: readonly SerialEvent[], batchRecords: number): { measurement: SerialMeasurement; payloads: Uint8Array } {
  const n = events.length;
  const ring = new Uint8Array(batchRecords * SERIAL_PAYLOAD_BYTES);
  let input = freshAnalysis().input;
  const t0 = start();
  for (let i = 0; i < n; i++) input.encodeEvent(events[i], ring, (i % batchRecords) * SERIAL_PAYLOAD_BYTES);
  const measurement = measure("encoder + ledger (main thread)", 0, n, t0, null);
  const payloads = new Uint8Array(n * SERIAL_PAYLOAD_BYTES);
  input = freshAnalysis().input;
  for (let i = 0; i < n; i++) input.encodeEvent(events[i], payloads, i * SERIAL_PAYLOAD_BYTES);
  return { measurement, payloads };
}

function measureKernel(events: readonly SerialEvent[], payloads: Uint8Array, lines: number, batchRecords: number): SerialMeasurement {
  const n = events.length;
  const h = new SerialKernelHarness({ ...DEFAULT_SERIAL_PARAMS }, lines, batchRecords);
  const { slots, times, payload } = h.staging();
  const slotOf = lineSlots(events);
  const t0 = start();
  for (let first = 0; first < n; first += batchRecords) {
    const m = Math.min(batchRecords, n - first);
    for (let i = 0; i < m; i++) {
      slots[i] = slotOf[first + i];
      times[i] = events[first + i].production_timestamp;
    }
    payload.set(payloads.subarray(first * SERIAL_PAYLOAD_BYTES, (first + m) * SERIAL_PAYLOAD_BYTES));
    h.processStaged(m);
  }
  return measure("WASM kernel alone (main thread, payloads pre-encoded)", 1, n, t0, null);
}

/** The whole operator on the main thread; keeps the first `keep` rows' flags for the reference. */
function measureInline(events: readonly SerialEvent[], lines: number, batchRecords: number, keep: number) {
  const flags = new Float64Array(keep);
  const a = freshAnalysis();
  const p = new SerialInlinePipeline(a, { ...DEFAULT_SERIAL_PARAMS }, lines, batchRecords);
  let sum = 0;
  const t0 = start();
  p.run(events, (i, row) => {
    sum += verdict(row);
    if (i < keep) flags[i] = row[C.flags];
  });
  const measurement = measure("whole operator, main thread (encoder, WASM inline, score)", 1, events.length, t0, sum);
  const s = a.summary();
  return { measurement, flags, anomalous: s.anomalous, quarantined: s.quarantinedEvents };
}

/** The TypeScript reference over the first n events; its flags against the WASM rows'. */
function measureReference(events: readonly SerialEvent[], n: number, wasmFlags: Float64Array) {
  const comparison = { events: n, flagsDiffering: 0, examples: [] as string[] };
  const input = freshAnalysis().input;
  const ref = new SerialReference({ ...DEFAULT_SERIAL_PARAMS });
  const payload = new Uint8Array(SERIAL_PAYLOAD_BYTES);
  const slotOf = lineSlots(events);
  let risky = 0;
  const t0 = start();
  for (let i = 0; i < n; i++) {
    input.encodeEvent(events[i], payload, 0);
    const r = ref.process(slotOf[i], events[i].production_timestamp, payload);
    const flags = (r[C.flags] | readU32(payload, 8)) >>> 0;
    risky += riskCode(anomalyScore(flags));
    if (flags !== wasmFlags[i] >>> 0 && comparison.flagsDiffering++ < 5)
      comparison.examples.push(`event ${i}: reference ${flags}, WASM ${wasmFlags[i]}`);
  }
  const measurement = measure(`TypeScript reference (encoder, reference kernel, score) on ${n} events`, 1, n, t0, null);
  return { measurement, comparison, risky };
}

function freshAnalysis(): SerialAnalysis {
  // A fixed processing clock: the simulator's events carry received_timestamp anyway.
  return serialAnalysis({ params: { ...DEFAULT_SERIAL_PARAMS }, timeUnit: "ms", clock: () => Number.NaN });
}

/** Wall and CPU time since `t0` / `cpu0` (taken by {@link start}). */
function measure(label: string, threads: number, events: number, t0: Started, checksum: number | null): SerialMeasurement {
  const seconds = (performance.now() - t0.wall) / 1000;
  const cpu = process.cpuUsage(t0.cpu);
  return { label, threads, events, eventsPerSecond: events / seconds, checksum, cpuNsPerEvent: ((cpu.user + cpu.system) * 1000) / events };
}

interface Started {
  wall: number;
  cpu: NodeJS.CpuUsage;
}

function start(): Started {
  return { wall: performance.now(), cpu: process.cpuUsage() };
}

/** What one scored row contributes to the checksum: reasons raised, risk code, quarantined. */
function verdict(row: Float64Array): number {
  return (
    popcount((row[C.flags] >>> 0) & ANOMALY_MASK) + (Number.isFinite(row[C.risk]) ? row[C.risk] : 0) + (row[C.quarantine] === 1 ? 1 : 0)
  );
}

function popcount(v: number): number {
  let c = 0;
  for (; v !== 0; v &= v - 1) c++;
  return c;
}

function lineSlots(events: readonly SerialEvent[]): Uint32Array {
  const ids = new Map<string, number>();
  const out = new Uint32Array(events.length);
  events.forEach((e, i) => {
    let id = ids.get(e.machine_id);
    if (id === undefined) ids.set(e.machine_id, (id = ids.size));
    out[i] = id;
  });
  return out;
}

/** The whole operator on the stream engine: encode into batches, push, observe each output row. */
async function throughEngine(
  events: readonly SerialEvent[],
  lines: number,
  workers: number,
  batchRecords: number,
): Promise<{ seconds: number; checksum: number; cpuMs: number; kernelMs: number }> {
  const a = freshAnalysis();
  const input = a.input;
  const names: string[] = [];
  let checksum = 0;
  const engine = new StreamEngine(
    {
      kernels: [a.kernel],
      workers,
      groups: Math.min(16, lines),
      keysMax: Math.max(lines, 16),
      batchRecordsMax: batchRecords,
      lateness: null,
      reorderRecordsPerKeyMax: 1,
      payloadBytes: SERIAL_PAYLOAD_BYTES,
    },
    {
      onOutput(chunk: OutputChunk) {
        const out = chunk.outs[0];
        for (let i = 0; i < chunk.length; i++) {
          const row = out.subarray(i * SERIAL_OUT_FIELDS, (i + 1) * SERIAL_OUT_FIELDS);
          const id = chunk.keyIds[i];
          a.observe?.(
            row,
            { keyId: id, key: names[id], position: chunk.positions[i], time: chunk.times[i], value: 0 },
            chunk.payload.subarray(i * SERIAL_PAYLOAD_BYTES, (i + 1) * SERIAL_PAYLOAD_BYTES),
          );
          checksum += verdict(row);
        }
      },
    },
  );
  const ids = new Map<string, number>();
  const keyOf = (machine: string): number => {
    let id = ids.get(machine);
    if (id === undefined) {
      id = engine.internKey(machine);
      ids.set(machine, id);
      names[id] = machine;
    }
    return id;
  };
  const batch = allocateBatch(batchRecords, SERIAL_PAYLOAD_BYTES);
  const payload = batch.payload as Uint8Array;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let kernelMs = 0;
  try {
    for (let i = 0; i < events.length; i++) {
      const e = events[i];
      input.encodeEvent(e, payload, batch.length * SERIAL_PAYLOAD_BYTES);
      appendRecord(batch, keyOf(e.machine_id), e.production_timestamp, 0, i);
      if (batch.length === batchRecords) {
        await engine.push(batch);
        batch.length = 0;
      }
    }
    if (batch.length > 0) await engine.push(batch);
    await engine.flush(true);
    kernelMs = engine.metrics().kernelBusyMs;
  } finally {
    await engine.close();
  }
  const cpu = process.cpuUsage(cpu0);
  return { seconds: (performance.now() - t0) / 1000, checksum, cpuMs: (cpu.user + cpu.system) / 1000, kernelMs };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const value = (flag: string): number | undefined => {
    const i = args.indexOf(flag);
    if (i < 0) return undefined;
    const v = Number(args[i + 1]);
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${flag} needs a positive integer, got ${args[i + 1]}`);
    return v;
  };
  const progress = (line: string) => process.stderr.write(`bench serial: ${line}\n`);
  const jobOnly = args.includes("--job");
  const job = (): Promise<SerialJobRate> =>
    measureSerialJobRate({
      events: value("--events"),
      lines: value("--lines"),
      seed: value("--seed"),
      smoke: args.includes("--smoke"),
      progress,
    });
  if (jobOnly) {
    const r = await job();
    process.stdout.write(args.includes("--json") ? `${JSON.stringify(r, null, 2)}\n` : `${formatSerialJobRate(r)}\n`);
    return;
  }
  const report = await runSerialBench({
    events: value("--events"),
    lines: value("--lines"),
    seed: value("--seed"),
    referenceEvents: value("--reference-events"),
    smoke: args.includes("--smoke"),
    progress,
  });
  const rate = await job();
  process.stdout.write(
    args.includes("--json")
      ? `${JSON.stringify({ ...report, job: rate }, null, 2)}\n`
      : `${formatSerialBenchReport(report)}\n\n${formatSerialJobRate(rate)}\n`,
  );
  if (!report.checksums.agree) process.exitCode = 1;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
