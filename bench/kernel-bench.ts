/**
 * The rolling-statistics kernel benchmark (`npm run bench`, `linewatch bench`). The SPC suite
 * (bench/spc-bench.ts) runs after it in the same process; `--suite rolling|spc|all` picks.
 *
 * Goals: print, side by side from one run over one seeded data set, how many samples per second
 *   - the WASM kernel does on one thread and on the piscina pool with 1 and 2 workers, its input
 *     columns pre-staged in shared memory so that only kernel tasks are timed (the kernel + pool
 *     ceiling);
 *   - the stream engine delivers end to end with 2 workers (routing into group buffers included);
 *   - a TypeScript port of the same incremental algorithm does (like-for-like compiler ratio), and
 *     the from-scratch test reference does on a slice (algorithm + compiler ratio);
 *   - a WASM SIMD sum over the bytes the kernel moves would do (memory-bandwidth ceiling);
 * then the ratios, a batch size × worker count sweep with its best setting, the state bytes per
 * key, and the issue's targets as met / not met. Every variant that computes statistics prints a
 * checksum (Σ mean + Σ z over one verification pass from fresh state); WASM and the TypeScript port
 * must agree, else the report says MISMATCH.
 *
 * Non-goals: asserting anything about time (targets are informational; only a checksum mismatch
 * sets a failing exit code), and measuring the sources or sinks.
 */
import { availableParallelism, loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import Benchmark from "benchmark";
import { ConfigError } from "../engine/errors.js";
import { createSharedMemory, instantiateKernels, KERNEL_MEMORY_PAGES_MAX, type KernelExports } from "../engine/kernel-module.js";
import { createKernelExecutor, type KernelExecutor } from "../engine/kernel-pool.js";
import { StreamEngine, type OutputChunk } from "../engine/stream-engine.js";
import type { RecordBatch } from "../engine/batch.js";
import { rollingKernel } from "../operators/rolling.js";
import { RollingReference } from "../test/reference/rolling-reference.js";
import { RollingIncremental } from "./rolling-incremental.js";

export interface KernelBenchOptions {
  /** Distinct keys (default 1000; smoke 20). */
  keys?: number;
  /** Values per key (default 10 000; smoke 500). */
  values?: number;
  /** Count window W (default 64). */
  window?: number;
  /** Tiny sizes, short timings, no sweep unless `sweep` is set: finishes in seconds. */
  smoke?: boolean;
  /** Batch size × worker count sweep (default: on, off with `smoke`). */
  sweep?: boolean;
  /** PRNG seed of the data (default {@link DEFAULT_BENCH_SEED}). */
  seed?: number;
  /** Records per kernel task for the headline figures (default 16 384). */
  batchRecords?: number;
  /** Progress lines while measuring (default: none). */
  progress?: ((line: string) => void) | null;
}

/** One measured variant. */
export interface Measurement {
  label: string;
  /** Threads computing: 1 for the main thread, else the workers. */
  threads: number;
  /** Samples per timed run. */
  samples: number;
  samplesPerSecond: number;
  /** "benchmark.js ±x.x%" or "median of N runs". */
  method: string;
  /** Σ finite mean + Σ finite z over a verification pass from fresh state; null for the bandwidth ceiling. */
  checksum: number | null;
}

export interface SweepPoint {
  batchRecords: number;
  workers: number;
  samplesPerSecond: number;
}

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

export interface ChecksumCheck {
  /** The WASM kernel on the main thread (verification pass). */
  wasm: number;
  tsIncremental: number;
  /** |wasm − ts| / |ts|. */
  relativeDifference: number;
  /** Output rows of the verification pass where WASM and the TS port are not bit-identical (0 unless the port is out of date). */
  rowsDiffering: number;
  /** Every WASM variant (inline, pool, engine) within {@link CHECKSUM_TOLERANCE} of the TS port. */
  agree: boolean;
  /** Labels of variants that do not agree. */
  mismatches: string[];
  /** The from-scratch reference and the WASM kernel on the reference slice (numerics differ: 1e-6). */
  referenceSlice: number;
  wasmSlice: number;
  referenceRelativeDifference: number;
  referenceAgrees: boolean;
}

/** Where the figures were taken; a busy machine makes them noisy. */
export interface BenchMachine {
  cpus: number;
  node: string;
  /** 1-minute load average before the benchmark started (other processes' work). */
  loadAverageAtStart: number;
}

export interface KernelBenchReport {
  machine: BenchMachine;
  seed: number;
  keys: number;
  valuesPerKey: number;
  window: number;
  samples: number;
  groups: number;
  batchRecords: number;
  /** Kernel state bytes per key at this run's window. */
  stateBytesPerKey: number;
  /** Kernel state bytes per key at W = 64 (`rollingStateBytes(0, 64)`). */
  stateBytesPerKeyW64: number;
  wasmInline: Measurement;
  tsIncremental: Measurement;
  reference: Measurement;
  bandwidth: Measurement;
  bandwidthPool: Measurement;
  /** Kernel on the executor with 0 (inline), 1 and 2 workers. */
  pool: Measurement[];
  engine: Measurement;
  checksums: ChecksumCheck;
  ratios: Ratio[];
  sweep: { points: SweepPoint[]; best: SweepPoint } | null;
  targets: TargetCheck[];
  seconds: number;
}

export const DEFAULT_BENCH_SEED = 20240611;
export const DEFAULT_BENCH_KEYS = 1000;
export const DEFAULT_BENCH_VALUES = 10_000;
export const DEFAULT_BENCH_WINDOW = 64;
export const DEFAULT_BENCH_BATCH_RECORDS = 16_384;
export const SMOKE_BENCH_KEYS = 20;
export const SMOKE_BENCH_VALUES = 500;
/** Relative agreement required of the WASM and TS-port checksums (they should be bit-identical). */
export const CHECKSUM_TOLERANCE = 1e-9;
/** Relative agreement expected of the reference and the kernel: different numerics, same statistics. */
export const REFERENCE_TOLERANCE = 1e-6;
export const SWEEP_BATCH_RECORDS = [1024, 4096, 16_384, 65_536] as const;
export const SWEEP_WORKERS = [1, 2] as const;

export const TARGET_SAMPLES_PER_SECOND_2W = 100e6;
export const TARGET_RATIO_VS_TS = 5;
export const TARGET_STATE_BYTES_W64 = 1024;

/** Runs every measurement and returns the report; prints nothing but `progress` lines. */
export async function runKernelBench(options: KernelBenchOptions = {}): Promise<KernelBenchReport> {
  const started = performance.now();
  const machine: BenchMachine = { cpus: availableParallelism(), node: process.version, loadAverageAtStart: loadavg()[0] };
  const cfg = resolveConfig(options);
  const say = options.progress ?? ((): void => {});
  say(`data: ${cfg.keys} keys × ${cfg.valuesPerKey} values, W = ${cfg.window}, seed ${cfg.seed}`);
  const setup = prepare(cfg);
  const single = measureSingleThread(setup, cfg, say);

  const pool: Measurement[] = [];
  for (const workers of [0, 1, 2]) {
    say(`pool: ${workers} worker${workers === 1 ? "" : "s"}, batch ${cfg.batchRecords}`);
    pool.push(await measurePool(setup, workers, cfg));
  }
  say(`pool: bandwidth ceiling on 2 workers, batch ${setup.bandwidthBatch}`);
  const bandwidthPool = await measureBandwidthPool(setup, cfg);
  say(`engine: StreamEngine.push, 2 workers, batch ${cfg.batchRecords}`);
  const engine = await measureEngine(setup.data, cfg);
  const sweep = cfg.sweep ? await runSweep(setup, cfg, say) : null;

  const tsChecksum = single.tsIncremental.checksum ?? NaN;
  const wasmChecksum = single.wasmInline.checksum ?? NaN;
  const mismatches = [single.wasmInline, ...pool, engine]
    .filter((m) => !(relativeDifference(m.checksum ?? NaN, tsChecksum) <= CHECKSUM_TOLERANCE))
    .map((m) => m.label);
  const referenceChecksum = single.reference.checksum ?? NaN;
  const referenceRelativeDifference = relativeDifference(single.wasmSliceChecksum, referenceChecksum);
  const report: KernelBenchReport = {
    machine,
    seed: cfg.seed,
    keys: cfg.keys,
    valuesPerKey: cfg.valuesPerKey,
    window: cfg.window,
    samples: setup.data.length,
    groups: cfg.groups,
    batchRecords: cfg.batchRecords,
    stateBytesPerKey: setup.layout.stride,
    stateBytesPerKeyW64: setup.kernels.rollingStateBytes(0, 64),
    wasmInline: single.wasmInline,
    tsIncremental: single.tsIncremental,
    reference: single.reference,
    bandwidth: single.bandwidth,
    bandwidthPool,
    pool,
    engine,
    checksums: {
      wasm: wasmChecksum,
      tsIncremental: tsChecksum,
      relativeDifference: relativeDifference(wasmChecksum, tsChecksum),
      rowsDiffering: single.rowsDiffering,
      agree: mismatches.length === 0,
      mismatches,
      referenceSlice: referenceChecksum,
      wasmSlice: single.wasmSliceChecksum,
      referenceRelativeDifference,
      referenceAgrees: referenceRelativeDifference <= REFERENCE_TOLERANCE,
    },
    ratios: [],
    sweep,
    targets: [],
    seconds: 0,
  };
  report.ratios = computeRatios(report);
  report.targets = checkTargets(report);
  report.seconds = (performance.now() - started) / 1000;
  return report;
}

/** The report as the text `npm run bench` prints. */
export function formatKernelBenchReport(r: KernelBenchReport): string {
  const lines: string[] = [];
  const [pool0, pool1, pool2] = r.pool;
  lines.push(`linewatch kernel benchmark — rolling statistics (count, mean, std, std_pop, min, max, slope, ewma, z), all outputs`);
  lines.push(`data: ${r.keys} keys × ${r.valuesPerKey} values = ${r.samples} samples, interleaved across keys; ` +
    `random walk + noise, seed ${r.seed}; W = ${r.window}; ${r.groups} key groups; batch ${r.batchRecords} records/task`);
  const m = r.machine;
  lines.push(`machine: ${m.cpus} CPUs, Node ${m.node}, load average ${m.loadAverageAtStart.toFixed(2)} before the run` +
    (m.loadAverageAtStart >= BUSY_LOAD_AVERAGE ? " — other processes were busy: figures are noisy, compare ratios within one run only" : ""));
  lines.push("");
  lines.push("throughput (samples/s)                                             M samples/s   threads  method                 checksum");
  const rows: Measurement[] = [r.wasmInline, pool0, pool1, pool2, r.engine, r.tsIncremental, r.reference, r.bandwidth, r.bandwidthPool];
  for (const m of rows) {
    lines.push(`  ${m.label.padEnd(64)} ${mega(m.samplesPerSecond).padStart(11)}   ${String(m.threads).padStart(7)}  ${m.method.padEnd(21)}  ${m.checksum === null ? "—" : m.checksum.toPrecision(15)}`);
  }
  lines.push("");
  const c = r.checksums;
  lines.push(`checksum (Σ mean + Σ z, one pass from fresh state): WASM ${c.wasm.toPrecision(17)}, TS incremental ${c.tsIncremental.toPrecision(17)}, ` +
    `relative difference ${c.relativeDifference.toExponential(2)}`);
  if (c.agree) lines.push(`  every WASM variant agrees with the TS incremental port (relative ≤ ${CHECKSUM_TOLERANCE})`);
  else {
    lines.push(`  ******** MISMATCH ******** checksums differ by more than ${CHECKSUM_TOLERANCE} relative: ${c.mismatches.join("; ")}`);
    lines.push(`  ******** MISMATCH ******** the variants did not compute the same statistics; the ratios below compare different work`);
  }
  lines.push(c.rowsDiffering === 0
    ? `  WASM and TS port output rows bit-identical: ${r.samples} of ${r.samples}`
    : `  ******** PORT OUT OF DATE ******** ${c.rowsDiffering} of ${r.samples} rows differ bitwise between WASM and bench/rolling-incremental.ts: ` +
      `the kernel changed and the port did not follow, so the WASM/TS ratios are not like for like`);
  lines.push(`  reference slice: naive ${c.referenceSlice.toPrecision(15)}, WASM ${c.wasmSlice.toPrecision(15)}, relative difference ` +
    `${c.referenceRelativeDifference.toExponential(2)} (${c.referenceAgrees ? `ok, ≤ ${REFERENCE_TOLERANCE}` : `DIFFERS, > ${REFERENCE_TOLERANCE}`})`);
  lines.push("");
  lines.push("ratios");
  for (const q of r.ratios) lines.push(`  ${q.label.padEnd(64)} ${q.value.toFixed(2).padStart(9)}×`);
  lines.push("");
  lines.push(r.window === 64
    ? `state per key: ${r.stateBytesPerKeyW64} bytes at W = 64`
    : `state per key: ${r.stateBytesPerKey} bytes at W = ${r.window}; ${r.stateBytesPerKeyW64} bytes at W = 64`);
  if (r.sweep !== null) {
    lines.push("");
    lines.push("sweep: kernel on pool, M samples/s (median of runs)");
    lines.push(`  ${"batch".padStart(8)} ${SWEEP_WORKERS.map((w) => `${w} worker${w === 1 ? "" : "s"}`.padStart(11)).join(" ")}`);
    for (const b of SWEEP_BATCH_RECORDS) {
      const cells = SWEEP_WORKERS.map((w) => {
        const p = r.sweep?.points.find((q) => q.batchRecords === b && q.workers === w);
        return (p === undefined ? "—" : mega(p.samplesPerSecond)).padStart(11);
      });
      lines.push(`  ${String(b).padStart(8)} ${cells.join(" ")}`);
    }
    const best = r.sweep.best;
    lines.push(`  best: batch ${best.batchRecords}, workers ${best.workers} (${mega(best.samplesPerSecond)} M samples/s)`);
  }
  lines.push("");
  lines.push("targets (informational)");
  for (const t of r.targets) lines.push(`  ${t.label.padEnd(44)} goal ${t.goal.padEnd(18)} measured ${t.measured.padEnd(24)} ${t.met ? "met" : "NOT MET"}`);
  lines.push("");
  lines.push(`total ${r.seconds.toFixed(1)} s; checksum ${c.agree ? "ok" : "MISMATCH"}`);
  return lines.join("\n");
}

// ---- configuration ----

interface BenchConfig {
  keys: number;
  valuesPerKey: number;
  window: number;
  smoke: boolean;
  sweep: boolean;
  seed: number;
  batchRecords: number;
  groups: number;
  /** benchmark.js seconds per variant. */
  maxTime: number;
  minSamples: number;
  /** Timed pool / engine runs per figure (median reported). */
  runs: number;
}

const BENCH_ALPHA = 0.1;
/** Times are epoch ms; slope per second (unused by count windows but passed as the engine does). */
const BENCH_TIME_SCALE = 1000;
const DEFAULT_GROUPS = 16;
const REFERENCE_SLICE_KEYS = 100;
const REFERENCE_SLICE_VALUES = 2000;
/** Bytes the kernel moves per sample: reads slot u32 + time f64 + value f64, writes 10 f64. */
const BYTES_PER_SAMPLE = 4 + 8 + 8 + 80;
/**
 * Smallest batch of the bandwidth ceilings. On the pool a chunk is four memSum tasks, which must be
 * long against a task round trip; the main-thread ceiling uses the same batch so the two compare.
 */
const BANDWIDTH_BATCH_RECORDS_MIN = 65_536;
const ENGINE_PUSH_RECORDS = 8192;
/** Load average (before the run) from which the report warns that other work skews the figures. */
export const BUSY_LOAD_AVERAGE = 0.5;

function resolveConfig(o: KernelBenchOptions): BenchConfig {
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
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new ConfigError("seed", `must be an integer in 0..2^32−1, got ${seed}`);
  return {
    keys, valuesPerKey, window, smoke, seed, batchRecords,
    sweep: o.sweep ?? !smoke,
    groups: Math.min(DEFAULT_GROUPS, keys),
    maxTime: smoke ? 0.05 : 2,
    minSamples: smoke ? 1 : 5,
    runs: smoke ? 3 : 5,
  };
}

function positiveInteger(name: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 1 || v > max) throw new ConfigError(name, `must be an integer in 1..${max}, got ${v}`);
}

// ---- data ----

interface BenchData {
  length: number;
  keys: number;
  valuesPerKey: number;
  /** Key index of each record (0..keys − 1); records are interleaved: record v·keys + k is key k's v-th. */
  keyOf: Uint32Array;
  times: Float64Array;
  values: Float64Array;
}

const TIME_ORIGIN_MS = 1_700_000_000_000;
const SAMPLE_INTERVAL_MS = 100;

/** Per key: a level in [20, 100), a random walk (step σ 0.05) and reading noise (σ 0.5). */
function generateData(keys: number, valuesPerKey: number, seed: number): BenchData {
  const next = mulberry32(seed);
  const length = keys * valuesPerKey;
  const keyOf = new Uint32Array(length);
  const times = new Float64Array(length);
  const values = new Float64Array(length);
  const level = new Float64Array(keys);
  for (let k = 0; k < keys; k++) level[k] = 20 + 80 * next();
  for (let v = 0, r = 0; v < valuesPerKey; v++) {
    for (let k = 0; k < keys; k++, r++) {
      // Box–Muller: one pair of uniforms gives the walk step and the noise.
      const radius = Math.sqrt(-2 * Math.log(1 - next()));
      const angle = 2 * Math.PI * next();
      level[k] += 0.05 * radius * Math.cos(angle);
      keyOf[r] = k;
      times[r] = TIME_ORIGIN_MS + v * SAMPLE_INTERVAL_MS + (k % SAMPLE_INTERVAL_MS);
      values[r] = level[k] + 0.5 * radius * Math.sin(angle);
    }
  }
  return { length, keys, valuesPerKey, keyOf, times, values };
}

/** Mulberry32 (Tommy Ettinger, public domain): uniform in [0, 1), the same on every run and machine. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---- the benchmark's memory layout ----

/**
 * Key k lives in group k mod G at slot ⌊k / G⌋. Per group, 64-byte aligned:
 *   [state: slots × stride][slots u32 × n][times f64 × n][values f64 × n][out: outRowsMax × 10 f64]
 * with n = all of the group's records, staged once, so a timed run is kernel tasks and nothing else.
 * The output region is reused by every task of the group, as the engine reuses its buffers.
 */
interface GroupRegion {
  keys: number;
  records: number;
  stateBase: number;
  slots: number;
  times: number;
  values: number;
  out: number;
}

interface BenchLayout {
  stride: number;
  groups: GroupRegion[];
  totalBytes: number;
  pages: number;
}

const RESERVED_BYTES = 65_536;
const PAGE_BYTES = 65_536;
const OUT_FIELDS = 10;
const COL_MEAN = 1;
const COL_Z = 8;

function planLayout(keys: number, groups: number, valuesPerKey: number, stride: number, outRowsMax: number): BenchLayout {
  const regions: GroupRegion[] = [];
  let at = RESERVED_BYTES;
  for (let g = 0; g < groups; g++) {
    const groupKeys = Math.ceil((keys - g) / groups);
    const records = groupKeys * valuesPerKey;
    const stateBase = at;
    const slots = align64(stateBase + groupKeys * stride);
    const times = align64(slots + records * 4);
    const values = align64(times + records * 8);
    const out = align64(values + records * 8);
    at = align64(out + outRowsMax * OUT_FIELDS * 8);
    regions.push({ keys: groupKeys, records, stateBase, slots, times, values, out });
  }
  const pages = Math.ceil(at / PAGE_BYTES);
  if (pages > KERNEL_MEMORY_PAGES_MAX) {
    throw new ConfigError("keys × values", `${keys} keys × ${valuesPerKey} values need ${pages} pages of kernel memory, ` +
      `more than the module's ${KERNEL_MEMORY_PAGES_MAX}; lower --keys or --values`);
  }
  return { stride, groups: regions, totalBytes: pages * PAGE_BYTES, pages };
}

function align64(n: number): number {
  return Math.ceil(n / 64) * 64;
}

function stageInput(buffer: ArrayBuffer | SharedArrayBuffer, layout: BenchLayout, data: BenchData): void {
  const u32 = new Uint32Array(buffer);
  const f64 = new Float64Array(buffer);
  const G = layout.groups.length;
  const cursor = new Uint32Array(G);
  for (let r = 0; r < data.length; r++) {
    const k = data.keyOf[r];
    const g = k % G;
    const region = layout.groups[g];
    const i = cursor[g]++;
    u32[(region.slots >>> 2) + i] = Math.floor(k / G);
    f64[(region.times >>> 3) + i] = data.times[r];
    f64[(region.values >>> 3) + i] = data.values[r];
  }
}

// ---- setup and the single-thread phase ----

/** The staged data: the same layout in the kernel's shared memory and in the TS port's buffer. */
interface BenchSetup {
  data: BenchData;
  layout: BenchLayout;
  memory: WebAssembly.Memory;
  /** The kernel module on the main thread, over `memory`. */
  kernels: KernelExports;
  port: RollingIncremental;
  wasmOut: Float64Array;
  tsOut: Float64Array;
  initWasm: (statePtr: number) => void;
  initTs: (statePtr: number) => void;
  wasmProcess: ProcessFn;
  tsProcess: ProcessFn;
  bandwidthBatch: number;
}

function prepare(cfg: BenchConfig): BenchSetup {
  const data = generateData(cfg.keys, cfg.valuesPerKey, cfg.seed);
  const stride = instantiateKernels(createSharedMemory(1)).rollingStateBytes(0, cfg.window);
  const bandwidthBatch = Math.max(cfg.batchRecords, BANDWIDTH_BATCH_RECORDS_MIN);
  const outRowsMax = Math.max(bandwidthBatch, ...(cfg.sweep ? SWEEP_BATCH_RECORDS : []));
  const layout = planLayout(cfg.keys, cfg.groups, cfg.valuesPerKey, stride, outRowsMax);
  const memory = createSharedMemory(layout.pages);
  const kernels = instantiateKernels(memory);
  stageInput(memory.buffer, layout, data);
  const tsBuffer = new ArrayBuffer(layout.totalBytes);
  stageInput(tsBuffer, layout, data);
  const port = new RollingIncremental(tsBuffer);
  return {
    data, layout, memory, kernels, port, bandwidthBatch,
    wasmOut: new Float64Array(memory.buffer),
    tsOut: new Float64Array(tsBuffer),
    initWasm: (ptr) => kernels.rollingInit(ptr, 0, cfg.window, 0, BENCH_ALPHA, BENCH_TIME_SCALE),
    initTs: (ptr) => port.init(ptr, 0, cfg.window, 0, BENCH_ALPHA, BENCH_TIME_SCALE),
    wasmProcess: (a, b, c, d, e, f, g) => kernels.rollingProcess(a, b, c, d, e, f, g),
    tsProcess: (a, b, c, d, e, f, g) => port.process(a, b, c, d, e, f, g),
  };
}

interface SingleThreadResults {
  wasmInline: Measurement;
  tsIncremental: Measurement;
  reference: Measurement;
  bandwidth: Measurement;
  /** The WASM kernel's checksum over the reference slice. */
  wasmSliceChecksum: number;
  rowsDiffering: number;
}

/** Verification passes from fresh state (also the JIT's warm-up), then one benchmark.js suite. */
function measureSingleThread(setup: BenchSetup, cfg: BenchConfig, say: (line: string) => void): SingleThreadResults {
  const { layout, kernels, bandwidthBatch } = setup;
  say("single thread: checksum passes (WASM and TS port in lockstep)");
  const { wasmChecksum, tsChecksum, rowsDiffering } = lockstep(setup, cfg.batchRecords);
  const slice = referenceSlice(setup.data, cfg);
  const referenceChecksum = runReferenceSlice(slice, cfg.window);
  const wasmSliceChecksum = wasmOnSlice(slice, cfg.window);

  say("single thread: benchmark.js suite (WASM, TS incremental port, bandwidth ceiling, naive reference)");
  const suite = runSuite(cfg, [
    { label: "wasm", fn: () => runDirect(setup.wasmProcess, layout, cfg.batchRecords, null) },
    { label: "ts", fn: () => runDirect(setup.tsProcess, layout, cfg.batchRecords, null) },
    { label: "bandwidth", fn: () => runBandwidthDirect(kernels, layout, bandwidthBatch) },
    { label: "reference", fn: () => runReferenceSlice(slice, cfg.window) },
  ], say);
  const samples = setup.data.length;
  return {
    wasmInline: fromSuite(suite.wasm, "WASM kernel, main thread (direct calls)", samples, wasmChecksum),
    tsIncremental: fromSuite(suite.ts, "TS incremental port, main thread", samples, tsChecksum),
    bandwidth: fromSuite(suite.bandwidth, `bandwidth ceiling: memSum ${BYTES_PER_SAMPLE} B/sample, batch ${bandwidthBatch}, main thread`, samples, null),
    reference: fromSuite(suite.reference, `naive TS reference, ${slice.keys} keys × ${slice.valuesPerKey} values`, slice.length, referenceChecksum),
    wasmSliceChecksum,
    rowsDiffering,
  };
}

/**
 * The WASM kernel and the TS port from fresh state over the same chunks, one after the other:
 * both checksums, and the number of output rows that are not bit-identical (NaN equals NaN).
 */
function lockstep(setup: BenchSetup, batch: number): { wasmChecksum: number; tsChecksum: number; rowsDiffering: number } {
  const { layout, wasmOut, tsOut } = setup;
  resetStates(setup.initWasm, layout);
  resetStates(setup.initTs, layout);
  const wasmSum = new NeumaierSum();
  const tsSum = new NeumaierSum();
  let rowsDiffering = 0;
  for (const g of layout.groups) {
    for (let first = 0; first < g.records; first += batch) {
      const n = Math.min(batch, g.records - first);
      const args = [g.stateBase, layout.stride, g.slots + first * 4, g.times + first * 8, g.values + first * 8, n, g.out] as const;
      setup.wasmProcess(...args);
      setup.tsProcess(...args);
      const o = g.out >>> 3;
      wasmSum.addRows(wasmOut, o, n);
      tsSum.addRows(tsOut, o, n);
      for (let i = 0; i < n * OUT_FIELDS; i += OUT_FIELDS) {
        for (let f = 0; f < OUT_FIELDS; f++) {
          const a = wasmOut[o + i + f];
          const b = tsOut[o + i + f];
          if (a !== b && !(a !== a && b !== b)) {
            rowsDiffering++;
            break;
          }
        }
      }
    }
  }
  return { wasmChecksum: wasmSum.value(), tsChecksum: tsSum.value(), rowsDiffering };
}

// ---- runners ----

type ProcessFn = (stateBase: number, stride: number, slots: number, times: number, values: number, n: number, out: number) => number;
/** Called after each chunk with its group and row count, while the rows are still in the group's output region. */
type ChunkHook = ((region: GroupRegion, rows: number) => void) | null;

function resetStates(init: (ptr: number) => void, layout: BenchLayout): void {
  for (const g of layout.groups) for (let s = 0; s < g.keys; s++) init(g.stateBase + s * layout.stride);
}

/** Every group, chunk by chunk, on the calling thread. */
function runDirect(process: ProcessFn, layout: BenchLayout, batch: number, onChunk: ChunkHook): void {
  const stride = layout.stride;
  for (const g of layout.groups) {
    for (let first = 0; first < g.records; first += batch) {
      const n = Math.min(batch, g.records - first);
      const done = process(g.stateBase, stride, g.slots + first * 4, g.times + first * 8, g.values + first * 8, n, g.out);
      if (done !== n) throw new Error(`rollingProcess returned ${done} for ${n} records`);
      onChunk?.(g, n);
    }
  }
}

/** Every group concurrently, one task per group in flight. */
async function runOnExecutor(executor: KernelExecutor, layout: BenchLayout, batch: number, onChunk: ChunkHook): Promise<void> {
  const stride = layout.stride;
  await Promise.all(layout.groups.map(async (g, index) => {
    for (let first = 0; first < g.records; first += batch) {
      const n = Math.min(batch, g.records - first);
      const args = [g.stateBase, stride, g.slots + first * 4, g.times + first * 8, g.values + first * 8, n, g.out];
      const done = await executor.run({ fn: "rollingProcess", args }, index);
      if (done !== n) throw new Error(`rollingProcess returned ${done} for ${n} records in group ${index}`);
      onChunk?.(g, n);
    }
  }));
}

function checksumDirect(process: ProcessFn, init: (ptr: number) => void, out: Float64Array, layout: BenchLayout, batch: number): number {
  resetStates(init, layout);
  const sum = new NeumaierSum();
  runDirect(process, layout, batch, (g, rows) => sum.addRows(out, g.out >>> 3, rows));
  return sum.value();
}

/** Σ mean + Σ z of output rows, skipping undefined (NaN) values, compensated so the order of groups does not matter. */
class NeumaierSum {
  private sum = 0;
  private comp = 0;

  add(v: number): void {
    if (!Number.isFinite(v)) return;
    const t = this.sum + v;
    this.comp += Math.abs(this.sum) >= Math.abs(v) ? this.sum - t + v : v - t + this.sum;
    this.sum = t;
  }

  addRows(f64: Float64Array, firstIndex: number, rows: number): void {
    for (let i = 0, o = firstIndex; i < rows; i++, o += OUT_FIELDS) {
      this.add(f64[o + COL_MEAN]);
      this.add(f64[o + COL_Z]);
    }
  }

  value(): number {
    return this.sum + this.comp;
  }
}

/** memSum over exactly the bytes a kernel run touches, chunk by chunk: the chunk's three input columns and the output rows. */
function runBandwidthDirect(kernels: KernelExports, layout: BenchLayout, batch: number): number {
  let sum = 0;
  for (const g of layout.groups) {
    for (let first = 0; first < g.records; first += batch) {
      const n = Math.min(batch, g.records - first);
      sum += kernels.memSum(g.slots + first * 4, n * 4);
      sum += kernels.memSum(g.times + first * 8, n * 8);
      sum += kernels.memSum(g.values + first * 8, n * 8);
      sum += kernels.memSum(g.out, n * OUT_FIELDS * 8);
    }
  }
  return sum;
}

// ---- single-thread suite ----

interface SuiteEntry {
  label: string;
  /** One operation; returns its result so nothing looks dead to the JIT. */
  fn: () => unknown;
}

interface SuiteResult {
  hz: number;
  rme: number;
}

function runSuite(cfg: BenchConfig, entries: SuiteEntry[], say: (line: string) => void): Record<string, SuiteResult> {
  const suite = new Benchmark.Suite("rolling kernel, single thread");
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

function fromSuite(r: SuiteResult, label: string, samplesPerOp: number, checksum: number | null): Measurement {
  return { label, threads: 1, samples: samplesPerOp, samplesPerSecond: r.hz * samplesPerOp, method: `benchmark.js ±${r.rme.toFixed(1)}%`, checksum };
}

// ---- the naive reference, on a slice ----

interface ReferenceSlice {
  keys: number;
  valuesPerKey: number;
  length: number;
  keyOf: Uint32Array;
  times: Float64Array;
  values: Float64Array;
}

function referenceSlice(data: BenchData, cfg: BenchConfig): ReferenceSlice {
  const keys = Math.min(REFERENCE_SLICE_KEYS, data.keys);
  const valuesPerKey = Math.min(REFERENCE_SLICE_VALUES, data.valuesPerKey);
  const length = keys * valuesPerKey;
  const slice: ReferenceSlice = {
    keys, valuesPerKey, length,
    keyOf: new Uint32Array(length), times: new Float64Array(length), values: new Float64Array(length),
  };
  let i = 0;
  for (let v = 0; v < valuesPerKey; v++) {
    for (let k = 0; k < keys; k++, i++) {
      const r = v * cfg.keys + k;
      slice.keyOf[i] = k;
      slice.times[i] = data.times[r];
      slice.values[i] = data.values[r];
    }
  }
  return slice;
}

/** The test reference from fresh state over the slice; returns its checksum. */
function runReferenceSlice(slice: ReferenceSlice, window: number): number {
  const refs: RollingReference[] = [];
  for (let k = 0; k < slice.keys; k++) {
    refs.push(new RollingReference({ mode: 0, cap: window, span: 0, alpha: BENCH_ALPHA, timeScale: BENCH_TIME_SCALE }));
  }
  const sum = new NeumaierSum();
  for (let i = 0; i < slice.length; i++) {
    const row = refs[slice.keyOf[i]].push(slice.times[i], slice.values[i]);
    sum.add(row[COL_MEAN]);
    sum.add(row[COL_Z]);
  }
  return sum.value();
}

/** The WASM kernel over the reference slice (one group, its own small memory); returns its checksum. */
function wasmOnSlice(slice: ReferenceSlice, window: number): number {
  const probe = instantiateKernels(createSharedMemory(1));
  const layout = planLayout(slice.keys, 1, slice.valuesPerKey, probe.rollingStateBytes(0, window), 4096);
  const memory = createSharedMemory(layout.pages);
  const kernels = instantiateKernels(memory);
  stageInput(memory.buffer, layout, slice);
  return checksumDirect(
    (a, b, c, d, e, f, g) => kernels.rollingProcess(a, b, c, d, e, f, g),
    (ptr) => kernels.rollingInit(ptr, 0, window, 0, BENCH_ALPHA, BENCH_TIME_SCALE),
    new Float64Array(memory.buffer), layout, 4096,
  );
}

// ---- pool, engine, sweep ----

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function timeRuns(runs: number, samples: number, run: () => Promise<void>): Promise<number> {
  const rates: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await run();
    rates.push(samples / ((performance.now() - t0) / 1000));
  }
  return median(rates);
}

async function measurePool(setup: BenchSetup, workers: number, cfg: BenchConfig): Promise<Measurement> {
  const { layout } = setup;
  const executor = createKernelExecutor(setup.memory, workers, layout.groups.length);
  try {
    // The checksum pass starts from fresh state and also warms the threads up; the timed runs
    // continue from its state, which is the steady state of a full window.
    resetStates(setup.initWasm, layout);
    const sum = new NeumaierSum();
    await runOnExecutor(executor, layout, cfg.batchRecords, (g, rows) => sum.addRows(setup.wasmOut, g.out >>> 3, rows));
    const samples = cfg.keys * cfg.valuesPerKey;
    const rate = await timeRuns(cfg.runs, samples, () => runOnExecutor(executor, layout, cfg.batchRecords, null));
    const label = workers === 0
      ? "WASM kernel, executor with 0 workers (inline, async per task)"
      : `WASM kernel on pool, ${workers} worker${workers === 1 ? "" : "s"} (kernel + pool ceiling)`;
    return { label, threads: Math.max(1, workers), samples, samplesPerSecond: rate, method: `median of ${cfg.runs} runs`, checksum: sum.value() };
  } finally {
    await executor.close();
  }
}

/** memSum tasks over the same bytes, four per chunk (three input columns and the output rows), one chunk per group in flight. */
async function measureBandwidthPool(setup: BenchSetup, cfg: BenchConfig): Promise<Measurement> {
  const { layout, bandwidthBatch: batch } = setup;
  const executor = createKernelExecutor(setup.memory, 2, layout.groups.length * 4);
  const run = async (): Promise<void> => {
    await Promise.all(layout.groups.map(async (g, index) => {
      for (let first = 0; first < g.records; first += batch) {
        const n = Math.min(batch, g.records - first);
        await Promise.all([
          executor.run({ fn: "memSum", args: [g.slots + first * 4, n * 4] }, index),
          executor.run({ fn: "memSum", args: [g.times + first * 8, n * 8] }, index),
          executor.run({ fn: "memSum", args: [g.values + first * 8, n * 8] }, index),
          executor.run({ fn: "memSum", args: [g.out, n * OUT_FIELDS * 8] }, index),
        ]);
      }
    }));
  };
  try {
    await run();
    const samples = cfg.keys * cfg.valuesPerKey;
    const rate = await timeRuns(cfg.runs, samples, run);
    return {
      label: `bandwidth ceiling: memSum tasks, 2 workers, batch ${batch}`,
      threads: 2, samples, samplesPerSecond: rate, method: `median of ${cfg.runs} runs`, checksum: null,
    };
  } finally {
    await executor.close();
  }
}

/** The same data through StreamEngine.push + flush: main-thread routing into group buffers, then kernel tasks. */
async function measureEngine(data: BenchData, cfg: BenchConfig): Promise<Measurement> {
  const workers = 2;
  let sum: NeumaierSum | null = new NeumaierSum();
  const engine = new StreamEngine({
    kernels: [rollingKernel({ window: { kind: "count", records: cfg.window }, alpha: BENCH_ALPHA, timeScale: BENCH_TIME_SCALE })],
    workers,
    groups: cfg.groups,
    keysMax: cfg.keys,
    batchRecordsMax: cfg.batchRecords,
    lateness: null,
    reorderRecordsPerKeyMax: 1,
  }, {
    onOutput(chunk: OutputChunk): void {
      sum?.addRows(chunk.outs[0], 0, chunk.length);
    },
  });
  try {
    for (let k = 0; k < cfg.keys; k++) {
      const id = engine.internKey(`bench-key-${k}`);
      if (id !== k) throw new Error(`engine gave key ${k} id ${id}; the benchmark's key ids assume interning order`);
    }
    const positions = new Float64Array(ENGINE_PUSH_RECORDS);
    const pass = async (): Promise<void> => {
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
    await pass();
    const checksum = sum.value();
    sum = null;
    const rate = await timeRuns(cfg.runs, data.length, pass);
    return {
      label: `stream engine end to end (push ${ENGINE_PUSH_RECORDS} + route + kernel), ${workers} workers`,
      threads: workers, samples: data.length, samplesPerSecond: rate, method: `median of ${cfg.runs} runs`, checksum,
    };
  } finally {
    await engine.close();
  }
}

async function runSweep(setup: BenchSetup, cfg: BenchConfig, say: (line: string) => void): Promise<{ points: SweepPoint[]; best: SweepPoint }> {
  const { layout } = setup;
  const points: SweepPoint[] = [];
  const runs = Math.min(cfg.runs, 3);
  const samples = cfg.keys * cfg.valuesPerKey;
  for (const workers of SWEEP_WORKERS) {
    const executor = createKernelExecutor(setup.memory, workers, layout.groups.length);
    try {
      resetStates(setup.initWasm, layout);
      await runOnExecutor(executor, layout, cfg.batchRecords, null);
      for (const batch of SWEEP_BATCH_RECORDS) {
        const rate = await timeRuns(runs, samples, () => runOnExecutor(executor, layout, batch, null));
        say(`  sweep: batch ${batch}, ${workers} worker${workers === 1 ? "" : "s"}: ${mega(rate)} M samples/s`);
        points.push({ batchRecords: batch, workers, samplesPerSecond: rate });
      }
    } finally {
      await executor.close();
    }
  }
  const best = points.reduce((a, b) => (b.samplesPerSecond > a.samplesPerSecond ? b : a));
  return { points, best };
}

// ---- ratios and targets ----

function computeRatios(r: KernelBenchReport): Ratio[] {
  const [, pool1, pool2] = r.pool;
  const rate = (m: Measurement): number => m.samplesPerSecond;
  return [
    { label: "WASM pool 2 workers / TS incremental port (1 thread)", value: rate(pool2) / rate(r.tsIncremental) },
    { label: "WASM pool 1 worker / TS incremental port (1 thread)", value: rate(pool1) / rate(r.tsIncremental) },
    { label: "WASM main thread / TS incremental port (like for like)", value: rate(r.wasmInline) / rate(r.tsIncremental) },
    { label: "WASM main thread / naive TS reference", value: rate(r.wasmInline) / rate(r.reference) },
    { label: "WASM pool 2 workers / naive TS reference", value: rate(pool2) / rate(r.reference) },
    { label: "WASM main thread / bandwidth ceiling (main thread)", value: rate(r.wasmInline) / rate(r.bandwidth) },
    { label: "WASM pool 2 workers / bandwidth ceiling (2 workers)", value: rate(pool2) / rate(r.bandwidthPool) },
    { label: "WASM pool 2 workers / WASM pool 1 worker (scaling)", value: rate(pool2) / rate(pool1) },
    { label: "engine 2 workers / kernel on pool 2 workers", value: rate(r.engine) / rate(pool2) },
  ];
}

function checkTargets(r: KernelBenchReport): TargetCheck[] {
  const pool2 = r.pool[2];
  const vsTs = pool2.samplesPerSecond / r.tsIncremental.samplesPerSecond;
  const vsRef = pool2.samplesPerSecond / r.reference.samplesPerSecond;
  return [
    {
      label: "kernel on pool, 2 workers",
      goal: `≥ ${mega(TARGET_SAMPLES_PER_SECOND_2W)} M samples/s`,
      measured: `${mega(pool2.samplesPerSecond)} M samples/s`,
      met: pool2.samplesPerSecond >= TARGET_SAMPLES_PER_SECOND_2W,
    },
    {
      label: "WASM pool 2 workers vs TS incremental port",
      goal: `≥ ${TARGET_RATIO_VS_TS}×`,
      measured: `${vsTs.toFixed(2)}×`,
      met: vsTs >= TARGET_RATIO_VS_TS,
    },
    {
      label: "WASM pool 2 workers vs naive TS reference",
      goal: `≥ ${TARGET_RATIO_VS_TS}×`,
      measured: `${vsRef.toFixed(2)}×`,
      met: vsRef >= TARGET_RATIO_VS_TS,
    },
    {
      label: "state per key at W = 64",
      goal: `≤ ${TARGET_STATE_BYTES_W64} bytes`,
      measured: `${r.stateBytesPerKeyW64} bytes`,
      met: r.stateBytesPerKeyW64 <= TARGET_STATE_BYTES_W64,
    },
  ];
}

function relativeDifference(a: number, b: number): number {
  if (a === b) return 0;
  return Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b));
}

function mega(perSecond: number): string {
  return (perSecond / 1e6).toFixed(2);
}

// ---- run as a program: the flags are the `linewatch bench` command's ----

async function main(): Promise<void> {
  // Imported here, not at the top: the command imports this module, and a static cycle with a
  // top-level await would never settle.
  const { benchCommand } = await import("../engine/commands/bench.js");
  const { CommanderError } = await import("commander");
  try {
    await benchCommand().name("kernel-bench").parseAsync(process.argv);
  } catch (error) {
    if (error instanceof CommanderError) process.exit(error.exitCode);
    throw error;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
