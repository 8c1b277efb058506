/**
 * What the benchmark suites share (kernel-bench.ts, spc-bench.ts, and the machine line of
 * pipeline-bench.ts and iforest-bench.ts): the size defaults and their checks, the
 * group layout of staged input in kernel memory, the benchmark.js single-thread suite, timing of
 * repeated runs, the engine push pass, a compensated sum, and the report lines they print alike.
 *
 * Non-goals: anything one suite alone needs (its data, its state blocks, its checksums).
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import Benchmark from "benchmark";
import {
  ConfigError,
  KERNEL_MEMORY_PAGES_MAX,
  type OutputChunk,
  type RecordBatch,
  StreamEngine,
  type StreamKernel,
} from "../engine/core/mod.js";

// ---- sizes and configuration ----

export const DEFAULT_BENCH_SEED = 20240611;
export const DEFAULT_BENCH_KEYS = 1000;
export const DEFAULT_BENCH_VALUES = 10_000;
export const DEFAULT_BENCH_WINDOW = 64;
export const DEFAULT_BENCH_BATCH_RECORDS = 16_384;
export const SMOKE_BENCH_KEYS = 20;
export const SMOKE_BENCH_VALUES = 500;
const DEFAULT_GROUPS = 16;

/** The sizes a kernel suite is asked for (its options may have more). */
export interface BenchSizeOptions {
  keys?: number;
  values?: number;
  window?: number;
  smoke?: boolean;
  seed?: number;
  batchRecords?: number;
}

/** What every kernel suite's configuration holds. */
export interface BenchBaseConfig {
  keys: number;
  valuesPerKey: number;
  window: number;
  smoke: boolean;
  seed: number;
  batchRecords: number;
  groups: number;
  /** benchmark.js seconds per variant. */
  maxTime: number;
  minSamples: number;
  /** Timed pool / engine runs per figure (median reported). */
  runs: number;
}

/** The options with their defaults (smoke sizes with `smoke`), checked. */
export function resolveBaseConfig(o: BenchSizeOptions): BenchBaseConfig {
  const smoke = o.smoke === true;
  const keys = o.keys ?? (smoke ? SMOKE_BENCH_KEYS : DEFAULT_BENCH_KEYS);
  const valuesPerKey = o.values ?? (smoke ? SMOKE_BENCH_VALUES : DEFAULT_BENCH_VALUES);
  const window = o.window ?? DEFAULT_BENCH_WINDOW;
  const seed = o.seed ?? DEFAULT_BENCH_SEED;
  const batchRecords = o.batchRecords ?? (smoke ? 1024 : DEFAULT_BENCH_BATCH_RECORDS);
  positiveInteger("keys", keys, 1 << 20);
  positiveInteger("values", valuesPerKey, 1 << 30);
  positiveInteger("window", window, 65_535);
  positiveInteger("batchRecords", batchRecords, 1 << 20);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)
    throw new ConfigError("seed", `must be an integer in 0..2^32−1, got ${seed}`);
  return {
    keys,
    valuesPerKey,
    window,
    smoke,
    seed,
    batchRecords,
    groups: Math.min(DEFAULT_GROUPS, keys),
    maxTime: smoke ? 0.05 : 2,
    minSamples: smoke ? 1 : 5,
    runs: smoke ? 3 : 5,
  };
}

function positiveInteger(name: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 1 || v > max) throw new ConfigError(name, `must be an integer in 1..${max}, got ${v}`);
}

// ---- the machine ----

/** Where the figures were taken; a busy machine makes them noisy. */
export interface BenchMachine {
  cpus: number;
  node: string;
  /** 1-minute load average before the benchmark started (other processes' work). */
  loadAverageAtStart: number;
}

/** Load average (before the run) from which the report warns that other work skews the figures. */
export const BUSY_LOAD_AVERAGE = 0.5;

/** What every kernel suite's report starts with: the machine and the sizes of the run. */
export interface BenchReportHead {
  machine: BenchMachine;
  seed: number;
  keys: number;
  valuesPerKey: number;
  window: number;
  samples: number;
  groups: number;
  batchRecords: number;
}

export function reportHead(machine: BenchMachine, cfg: BenchBaseConfig, samples: number): BenchReportHead {
  const { seed, keys, valuesPerKey, window, groups, batchRecords } = cfg;
  return { machine, seed, keys, valuesPerKey, window, samples, groups, batchRecords };
}

/** Fills in a report's ratios and targets (computed from the report) and the run's seconds since `started`. */
export function finishReport<R extends { ratios: Ratio[]; targets: TargetCheck[]; seconds: number }>(
  report: R,
  started: number,
  ratios: (r: R) => Ratio[],
  targets: (r: R) => TargetCheck[],
): R {
  report.ratios = ratios(report);
  report.targets = targets(report);
  report.seconds = (performance.now() - started) / 1000;
  return report;
}

/** This machine, now (call before measuring). */
export function benchMachine(): BenchMachine {
  return { cpus: availableParallelism(), node: process.version, loadAverageAtStart: loadavg()[0] };
}

/** The report's `machine:` line. */
export function machineLine(m: BenchMachine): string {
  return (
    `machine: ${m.cpus} CPUs, Node ${m.node}, load average ${m.loadAverageAtStart.toFixed(2)} before the run` +
    (m.loadAverageAtStart >= BUSY_LOAD_AVERAGE ? " — other processes were busy: figures are noisy, compare ratios within one run only" : "")
  );
}

// ---- data ----

/** Record times: epoch ms from this origin, a record per key every {@link SAMPLE_INTERVAL_MS}. */
export const TIME_ORIGIN_MS = 1_700_000_000_000;
export const SAMPLE_INTERVAL_MS = 100;

/** Records interleaved across keys: record v·keys + k is key k's v-th. */
export interface InterleavedData {
  length: number;
  keys: number;
  valuesPerKey: number;
  /** Key index of each record (0..keys − 1). */
  keyOf: Uint32Array;
  times: Float64Array;
  values: Float64Array;
}

/** The first `keys` keys × `valuesPerKey` values of `data`, interleaved the same way. */
export function interleavedSlice(data: InterleavedData, keys: number, valuesPerKey: number): InterleavedData {
  const length = keys * valuesPerKey;
  const out: InterleavedData = {
    keys,
    valuesPerKey,
    length,
    keyOf: new Uint32Array(length),
    times: new Float64Array(length),
    values: new Float64Array(length),
  };
  for (let v = 0, i = 0; v < valuesPerKey; v++) {
    for (let k = 0; k < keys; k++, i++) {
      const r = v * data.keys + k;
      out.keyOf[i] = k;
      out.times[i] = data.times[r];
      out.values[i] = data.values[r];
    }
  }
  return out;
}

// ---- the group layout in kernel memory ----

export const RESERVED_BYTES = 65_536;
export const PAGE_BYTES = 65_536;

export function align64(n: number): number {
  return Math.ceil(n / 64) * 64;
}

/** Where a group's staged input columns are. */
export interface StagedColumns {
  slots: number;
  times: number;
  values: number;
}

/**
 * Key k lives in group k mod G at slot ⌊k / G⌋. Walks the groups from the reserved bytes on;
 * `place` lays out one group's regions from `at` (64-byte aligned) and returns them with the end.
 * Throws when the memory would be more than the kernel module's maximum.
 */
export function planGroups<R>(
  keys: number,
  groups: number,
  valuesPerKey: number,
  place: (at: number, groupKeys: number, records: number) => { region: R; end: number },
): { groups: R[]; totalBytes: number; pages: number } {
  const regions: R[] = [];
  let at = RESERVED_BYTES;
  for (let g = 0; g < groups; g++) {
    const groupKeys = Math.ceil((keys - g) / groups);
    const records = groupKeys * valuesPerKey;
    const { region, end } = place(at, groupKeys, records);
    at = end;
    regions.push(region);
  }
  const pages = Math.ceil(at / PAGE_BYTES);
  if (pages > KERNEL_MEMORY_PAGES_MAX) {
    throw new ConfigError(
      "keys × values",
      `${keys} keys × ${valuesPerKey} values need ${pages} pages of kernel memory, ` +
        `more than the module's ${KERNEL_MEMORY_PAGES_MAX}; lower --keys or --values`,
    );
  }
  return { groups: regions, totalBytes: pages * PAGE_BYTES, pages };
}

/** Copies every record into its group's slot, time and value columns, in record order. */
export function stageInput(buffer: ArrayBuffer | SharedArrayBuffer, groups: readonly StagedColumns[], data: InterleavedData): void {
  const u32 = new Uint32Array(buffer);
  const f64 = new Float64Array(buffer);
  const G = groups.length;
  const cursor = new Uint32Array(G);
  for (let r = 0; r < data.length; r++) {
    const k = data.keyOf[r];
    const g = k % G;
    const region = groups[g];
    const i = cursor[g]++;
    u32[(region.slots >>> 2) + i] = Math.floor(k / G);
    f64[(region.times >>> 3) + i] = data.times[r];
    f64[(region.values >>> 3) + i] = data.values[r];
  }
}

// ---- single-thread suite ----

export interface SuiteEntry {
  label: string;
  /** One operation; returns its result so nothing looks dead to the JIT. */
  fn: () => unknown;
}

export interface SuiteResult {
  hz: number;
  rme: number;
}

export function runSuite(
  name: string,
  cfg: { maxTime: number; minSamples: number },
  entries: SuiteEntry[],
  say: (line: string) => void,
): Record<string, SuiteResult> {
  const suite = new Benchmark.Suite(name);
  const benches = entries.map((e) => new Benchmark(e.label, e.fn, { maxTime: cfg.maxTime, minSamples: cfg.minSamples }));
  for (const b of benches) suite.push(b);
  suite.on("cycle", (event: Benchmark.Event) => say(`  ${String(event.target)}`));
  suite.run({ async: false });
  const results: Record<string, SuiteResult> = {};
  for (const b of benches) {
    // benchmark.js records a thrown error on the benchmark and carries on; a benchmark that failed has no figure.
    if (b.error !== undefined) throw new Error(`benchmark "${b.name}" failed: ${b.error.message}`, { cause: b.error });
    results[b.name ?? ""] = { hz: b.hz, rme: b.stats.rme };
  }
  return results;
}

/** A single-thread measurement from a suite result. */
export function fromSuite<C>(
  r: SuiteResult,
  label: string,
  samplesPerOp: number,
  checksum: C,
): {
  label: string;
  threads: number;
  samples: number;
  samplesPerSecond: number;
  method: string;
  checksum: C;
} {
  return {
    label,
    threads: 1,
    samples: samplesPerOp,
    samplesPerSecond: r.hz * samplesPerOp,
    method: `benchmark.js ±${r.rme.toFixed(1)}%`,
    checksum,
  };
}

// ---- timed runs and the engine ----

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Samples per second, the median of `runs` timed runs. */
export async function timeRuns(runs: number, samples: number, run: () => Promise<void>): Promise<number> {
  const rates: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await run();
    rates.push(samples / ((performance.now() - t0) / 1000));
  }
  return median(rates);
}

export const ENGINE_PUSH_RECORDS = 8192;

/** Interns keys `bench-key-0` … in order and checks they got ids 0 … (the data's key indexes). */
export function internBenchKeys(engine: StreamEngine, keys: number): void {
  for (let k = 0; k < keys; k++) {
    const id = engine.internKey(`bench-key-${k}`);
    if (id !== k) throw new Error(`engine gave key ${k} id ${id}; the benchmark's key ids assume interning order`);
  }
}

/** One pass of all the data through StreamEngine.push in batches of {@link ENGINE_PUSH_RECORDS}, then flush. */
export function enginePass(engine: StreamEngine, data: InterleavedData): () => Promise<void> {
  const positions = new Float64Array(ENGINE_PUSH_RECORDS);
  return async (): Promise<void> => {
    for (let first = 0; first < data.length; first += ENGINE_PUSH_RECORDS) {
      const last = Math.min(data.length, first + ENGINE_PUSH_RECORDS);
      const batch: RecordBatch = {
        length: last - first,
        keyIds: data.keyOf.subarray(first, last),
        times: data.times.subarray(first, last),
        values: data.values.subarray(first, last),
        positions,
      };
      await engine.push(batch);
    }
    await engine.flush();
  };
}

/** One timed row of a kernel suite; `C` is the suite's checksum of a verification pass. */
export interface BenchMeasurement<C> {
  label: string;
  /** Threads computing: 1 for the main thread, else the workers. */
  threads: number;
  /** Samples per timed run. */
  samples: number;
  samplesPerSecond: number;
  /** "benchmark.js ±x.x%" or "median of N runs". */
  method: string;
  checksum: C;
}

/** The sizes an engine row takes from a suite's configuration. */
export interface EngineRowConfig {
  groups: number;
  keys: number;
  batchRecords: number;
  runs: number;
}

/**
 * The data through StreamEngine.push + flush with `kernels` on `workers` workers: one pass from
 * fresh state whose output rows go to `sum` (the row's checksum), then `cfg.runs` timed passes
 * (the median rate; their outputs are not summed).
 */
export async function measureEngineRow<C>(
  label: string,
  kernels: StreamKernel[],
  workers: number,
  cfg: EngineRowConfig,
  data: InterleavedData,
  sum: { add(chunk: OutputChunk): void; value(): C },
): Promise<BenchMeasurement<C>> {
  let summing = true;
  const engine = new StreamEngine(
    {
      kernels,
      workers,
      groups: cfg.groups,
      keysMax: cfg.keys,
      batchRecordsMax: cfg.batchRecords,
      lateness: null,
      reorderRecordsPerKeyMax: 1,
    },
    {
      onOutput(chunk: OutputChunk): void {
        if (summing) sum.add(chunk);
      },
    },
  );
  try {
    internBenchKeys(engine, cfg.keys);
    const pass = enginePass(engine, data);
    await pass();
    const checksum = sum.value();
    summing = false;
    const rate = await timeRuns(cfg.runs, data.length, pass);
    return { label, threads: workers, samples: data.length, samplesPerSecond: rate, method: `median of ${cfg.runs} runs`, checksum };
  } finally {
    await engine.close();
  }
}

// ---- checksums ----

/** A compensated sum that skips undefined (NaN, ±∞) values, so the order of groups does not matter. */
export class NeumaierSum {
  private sum = 0;
  private comp = 0;

  add(v: number): void {
    if (!Number.isFinite(v)) return;
    const t = this.sum + v;
    this.comp += Math.abs(this.sum) >= Math.abs(v) ? this.sum - t + v : v - t + this.sum;
    this.sum = t;
  }

  value(): number {
    return this.sum + this.comp;
  }
}

export function relativeDifference(a: number, b: number): number {
  if (a === b) return 0;
  return Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b));
}

// ---- report lines ----

export interface Ratio {
  label: string;
  value: number;
}

export interface TargetCheck {
  label: string;
  goal: string;
  measured: string;
  met: boolean;
}

/** Millions, two decimals. */
export function mega(perSecond: number): string {
  return (perSecond / 1e6).toFixed(2);
}

/** The `ratios` section: a heading and one line per ratio, labels padded to `labelWidth`. */
export function ratioLines(ratios: readonly Ratio[], labelWidth: number): string[] {
  return ["ratios", ...ratios.map((q) => `  ${q.label.padEnd(labelWidth)} ${q.value.toFixed(2).padStart(9)}×`)];
}

/** The `targets (informational)` section. */
export function targetLines(targets: readonly TargetCheck[], labelWidth: number, measuredWidth: number): string[] {
  return [
    "targets (informational)",
    ...targets.map(
      (t) =>
        `  ${t.label.padEnd(labelWidth)} goal ${t.goal.padEnd(18)} measured ${t.measured.padEnd(measuredWidth)} ${t.met ? "met" : "NOT MET"}`,
    ),
  ];
}

/** The report's last line. */
export function totalLine(seconds: number, agree: boolean): string {
  return `total ${seconds.toFixed(1)} s; checksum ${agree ? "ok" : "MISMATCH"}`;
}

/** A kernel suite's report end: the targets, then the total line; `lines` joined into the report's text. */
export function endReport(
  lines: string[],
  r: { targets: readonly TargetCheck[]; seconds: number },
  agree: boolean,
  widths: [label: number, measured: number],
): string {
  lines.push("");
  lines.push(...targetLines(r.targets, widths[0], widths[1]));
  lines.push("");
  lines.push(totalLine(r.seconds, agree));
  return lines.join("\n");
}

// ---- time and waiting (the end-to-end benches: main thread and workers on one clock) ----

/** Epoch ms with sub-ms resolution, comparable across the threads of one process (`timeOrigin + now()`). */
export function clock(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * CPU time the calling thread has used, µs (user + system). `process.threadCpuUsage` where Node
 * has it (≥ 23.9); on Node 20 and 22 the thread's own `/proc/thread-self/schedstat` (Linux: time
 * on the CPU, ns, read synchronously so the calling thread resolves `thread-self`); NaN elsewhere.
 */
export function threadCpuMicros(): number {
  const own = (process as { threadCpuUsage?: () => NodeJS.CpuUsage }).threadCpuUsage;
  if (own !== undefined) {
    const u = own.call(process);
    return u.user + u.system;
  }
  try {
    return Number(readFileSync("/proc/thread-self/schedstat", "latin1").split(" ")[0]) / 1000;
  } catch {
    return Number.NaN;
  }
}

/** CPU time, µs, of this process's thread with Linux thread id `tid` (from /proc/self/task/<tid>/schedstat); NaN without it. */
export function threadCpuMicrosOf(tid: number): number {
  try {
    return Number(readFileSync(`/proc/self/task/${tid}/schedstat`, "latin1").split(" ")[0]) / 1000;
  } catch {
    return Number.NaN;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface Deferred {
  promise: Promise<void>;
  resolve(): void;
}

export function deferred(): Deferred {
  let resolve = (): void => {};
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Clock ticks per second of /proc's times (getconf CLK_TCK; 100 on every Linux this runs on). */
const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds (user + system, proc(5) fields 14 and 15) of a /proc stat line; the command name in parentheses may hold spaces. */
function statCpuSeconds(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** A process's CPU seconds so far over all its threads; null when it is gone or off Linux. */
export function processCpuSeconds(pid: number | null): number | null {
  if (pid === null) return null;
  try {
    return statCpuSeconds(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return null;
  }
}

/** A process's CPU seconds so far by thread name (/proc/<pid>/task/<tid>/comm; threads of one name summed); empty off Linux. */
export function threadCpuSecondsByName(pid: number | null): Map<string, number> {
  const out = new Map<string, number>();
  if (pid === null) return out;
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      out.set(name, (out.get(name) ?? 0) + statCpuSeconds(stat));
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return out;
}
