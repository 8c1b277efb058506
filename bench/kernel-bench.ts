/**
 * The rolling-statistics kernel benchmark (`npm run bench`, `npm run bench`). The SPC suite
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
import { performance } from "node:perf_hooks";
import {
  createSharedMemory,
  instantiateKernels,
  type KernelExports,
  createKernelExecutor,
  type KernelExecutor,
  SeededRandom,
} from "../engine/core/mod.js";
import { rollingKernel } from "../operators/rolling/mod.js";
import { RollingReference } from "../kernels/reference/mod.js";
import {
  align64,
  benchMachine,
  ENGINE_PUSH_RECORDS,
  fromSuite,
  interleavedSlice,
  machineLine,
  mega,
  NeumaierSum,
  planGroups,
  ratioLines,
  relativeDifference,
  resolveBaseConfig,
  runSuite,
  SAMPLE_INTERVAL_MS,
  stageInput,
  TIME_ORIGIN_MS,
  timeRuns,
  endReport,
  type BenchBaseConfig,
  type BenchMachine,
  type InterleavedData,
  type Ratio,
  type TargetCheck,
  type BenchMeasurement,
  measureEngineRow,
  type BenchReportHead,
  finishReport,
  reportHead,
} from "./bench-kit.js";
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
/** checksum: Σ finite mean + Σ finite z over a verification pass from fresh state; null for the bandwidth ceiling. */
export type Measurement = BenchMeasurement<number | null>;

export interface SweepPoint {
  batchRecords: number;
  workers: number;
  samplesPerSecond: number;
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

export interface KernelBenchReport extends BenchReportHead {
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
  const machine: BenchMachine = benchMachine();
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
    ...reportHead(machine, cfg, setup.data.length),
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
  return finishReport(report, started, computeRatios, checkTargets);
}

/** The report as the text `npm run bench` prints. */
export function formatKernelBenchReport(r: KernelBenchReport): string {
  const lines: string[] = [];
  const [pool0, pool1, pool2] = r.pool;
  lines.push(`linewatch kernel benchmark — rolling statistics (count, mean, std, std_pop, min, max, slope, ewma, z), all outputs`);
  lines.push(
    `data: ${r.keys} keys × ${r.valuesPerKey} values = ${r.samples} samples, interleaved across keys; ` +
      `random walk + noise, seed ${r.seed}; W = ${r.window}; ${r.groups} key groups; batch ${r.batchRecords} records/task`,
  );
  lines.push(machineLine(r.machine));
  lines.push("");
  lines.push("throughput (samples/s)                                             M samples/s   threads  method                 checksum");
  const rows: Measurement[] = [r.wasmInline, pool0, pool1, pool2, r.engine, r.tsIncremental, r.reference, r.bandwidth, r.bandwidthPool];
  for (const m of rows) {
    lines.push(
      `  ${m.label.padEnd(64)} ${mega(m.samplesPerSecond).padStart(11)}   ${String(m.threads).padStart(7)}  ${m.method.padEnd(21)}  ${m.checksum === null ? "—" : m.checksum.toPrecision(15)}`,
    );
  }
  lines.push("");
  const c = r.checksums;
  lines.push(
    `checksum (Σ mean + Σ z, one pass from fresh state): WASM ${c.wasm.toPrecision(17)}, TS incremental ${c.tsIncremental.toPrecision(17)}, ` +
      `relative difference ${c.relativeDifference.toExponential(2)}`,
  );
  if (c.agree) lines.push(`  every WASM variant agrees with the TS incremental port (relative ≤ ${CHECKSUM_TOLERANCE})`);
  else {
    lines.push(`  ******** MISMATCH ******** checksums differ by more than ${CHECKSUM_TOLERANCE} relative: ${c.mismatches.join("; ")}`);
    lines.push(`  ******** MISMATCH ******** the variants did not compute the same statistics; the ratios below compare different work`);
  }
  lines.push(
    c.rowsDiffering === 0
      ? `  WASM and TS port output rows bit-identical: ${r.samples} of ${r.samples}`
      : `  ******** PORT OUT OF DATE ******** ${c.rowsDiffering} of ${r.samples} rows differ bitwise between WASM and bench/rolling-incremental.ts: ` +
          `the kernel changed and the port did not follow, so the WASM/TS ratios are not like for like`,
  );
  lines.push(
    `  reference slice: naive ${c.referenceSlice.toPrecision(15)}, WASM ${c.wasmSlice.toPrecision(15)}, relative difference ` +
      `${c.referenceRelativeDifference.toExponential(2)} (${c.referenceAgrees ? `ok, ≤ ${REFERENCE_TOLERANCE}` : `DIFFERS, > ${REFERENCE_TOLERANCE}`})`,
  );
  lines.push("");
  lines.push(...ratioLines(r.ratios, 64));
  lines.push("");
  lines.push(
    r.window === 64
      ? `state per key: ${r.stateBytesPerKeyW64} bytes at W = 64`
      : `state per key: ${r.stateBytesPerKey} bytes at W = ${r.window}; ${r.stateBytesPerKeyW64} bytes at W = 64`,
  );
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
  return endReport(lines, r, c.agree, [44, 24]);
}

// ---- configuration ----

interface BenchConfig extends BenchBaseConfig {
  sweep: boolean;
}

const BENCH_ALPHA = 0.1;
/** Times are epoch ms; slope per second (unused by count windows but passed as the engine does). */
const BENCH_TIME_SCALE = 1000;
const REFERENCE_SLICE_KEYS = 100;
const REFERENCE_SLICE_VALUES = 2000;
/** Bytes the kernel moves per sample: reads slot u32 + time f64 + value f64, writes 10 f64. */
const BYTES_PER_SAMPLE = 4 + 8 + 8 + 80;
/**
 * Smallest batch of the bandwidth ceilings. On the pool a chunk is four memSum tasks, which must be
 * long against a task round trip; the main-thread ceiling uses the same batch so the two compare.
 */
const BANDWIDTH_BATCH_RECORDS_MIN = 65_536;

function resolveConfig(o: KernelBenchOptions): BenchConfig {
  const base = resolveBaseConfig(o);
  return { ...base, sweep: o.sweep ?? !base.smoke };
}

// ---- data ----

type BenchData = InterleavedData;

/** Per key: a level in [20, 100), a random walk (step σ 0.05) and reading noise (σ 0.5). */
function generateData(keys: number, valuesPerKey: number, seed: number): BenchData {
  const rng = new SeededRandom(seed);
  const length = keys * valuesPerKey;
  const keyOf = new Uint32Array(length);
  const times = new Float64Array(length);
  const values = new Float64Array(length);
  const level = new Float64Array(keys);
  for (let k = 0; k < keys; k++) level[k] = rng.uniform(20, 100);
  for (let v = 0, r = 0; v < valuesPerKey; v++) {
    for (let k = 0; k < keys; k++, r++) {
      level[k] += 0.05 * rng.normal();
      keyOf[r] = k;
      times[r] = TIME_ORIGIN_MS + v * SAMPLE_INTERVAL_MS + (k % SAMPLE_INTERVAL_MS);
      values[r] = level[k] + 0.5 * rng.normal();
    }
  }
  return { length, keys, valuesPerKey, keyOf, times, values };
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

const OUT_FIELDS = 10;
const COL_MEAN = 1;
const COL_Z = 8;

function planLayout(keys: number, groups: number, valuesPerKey: number, stride: number, outRowsMax: number): BenchLayout {
  const planned = planGroups<GroupRegion>(keys, groups, valuesPerKey, (stateBase, groupKeys, records) => {
    const slots = align64(stateBase + groupKeys * stride);
    const times = align64(slots + records * 4);
    const values = align64(times + records * 8);
    const out = align64(values + records * 8);
    return { region: { keys: groupKeys, records, stateBase, slots, times, values, out }, end: align64(out + outRowsMax * OUT_FIELDS * 8) };
  });
  return { stride, ...planned };
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
  stageInput(memory.buffer, layout.groups, data);
  const tsBuffer = new ArrayBuffer(layout.totalBytes);
  stageInput(tsBuffer, layout.groups, data);
  const port = new RollingIncremental(tsBuffer);
  return {
    data,
    layout,
    memory,
    kernels,
    port,
    bandwidthBatch,
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
  const slice = referenceSlice(setup.data);
  const referenceChecksum = runReferenceSlice(slice, cfg.window);
  const wasmSliceChecksum = wasmOnSlice(slice, cfg.window);

  say("single thread: benchmark.js suite (WASM, TS incremental port, bandwidth ceiling, naive reference)");
  const suite = runSuite(
    "rolling kernel, single thread",
    cfg,
    [
      { label: "wasm", fn: () => runDirect(setup.wasmProcess, layout, cfg.batchRecords, null) },
      { label: "ts", fn: () => runDirect(setup.tsProcess, layout, cfg.batchRecords, null) },
      { label: "bandwidth", fn: () => runBandwidthDirect(kernels, layout, bandwidthBatch) },
      { label: "reference", fn: () => runReferenceSlice(slice, cfg.window) },
    ],
    say,
  );
  const samples = setup.data.length;
  return {
    wasmInline: fromSuite(suite.wasm, "WASM kernel, main thread (direct calls)", samples, wasmChecksum),
    tsIncremental: fromSuite(suite.ts, "TS incremental port, main thread", samples, tsChecksum),
    bandwidth: fromSuite(
      suite.bandwidth,
      `bandwidth ceiling: memSum ${BYTES_PER_SAMPLE} B/sample, batch ${bandwidthBatch}, main thread`,
      samples,
      null,
    ),
    reference: fromSuite(
      suite.reference,
      `naive TS reference, ${slice.keys} keys × ${slice.valuesPerKey} values`,
      slice.length,
      referenceChecksum,
    ),
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
  const wasmSum = new RowSum();
  const tsSum = new RowSum();
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
          if (a !== b && !(Number.isNaN(a) && Number.isNaN(b))) {
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
  await Promise.all(
    layout.groups.map(async (g, index) => {
      for (let first = 0; first < g.records; first += batch) {
        const n = Math.min(batch, g.records - first);
        const args = [g.stateBase, stride, g.slots + first * 4, g.times + first * 8, g.values + first * 8, n, g.out];
        const done = await executor.run({ fn: "rollingProcess", args }, index);
        if (done !== n) throw new Error(`rollingProcess returned ${done} for ${n} records in group ${index}`);
        onChunk?.(g, n);
      }
    }),
  );
}

function checksumDirect(process: ProcessFn, init: (ptr: number) => void, out: Float64Array, layout: BenchLayout, batch: number): number {
  resetStates(init, layout);
  const sum = new RowSum();
  runDirect(process, layout, batch, (g, rows) => sum.addRows(out, g.out >>> 3, rows));
  return sum.value();
}

/** Σ mean + Σ z of output rows, skipping undefined (NaN) values, compensated so the order of groups does not matter. */
class RowSum extends NeumaierSum {
  addRows(f64: Float64Array, firstIndex: number, rows: number): void {
    for (let i = 0, o = firstIndex; i < rows; i++, o += OUT_FIELDS) {
      this.add(f64[o + COL_MEAN]);
      this.add(f64[o + COL_Z]);
    }
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

// ---- the naive reference, on a slice ----

type ReferenceSlice = InterleavedData;

function referenceSlice(data: BenchData): ReferenceSlice {
  return interleavedSlice(data, Math.min(REFERENCE_SLICE_KEYS, data.keys), Math.min(REFERENCE_SLICE_VALUES, data.valuesPerKey));
}

/** The test reference from fresh state over the slice; returns its checksum. */
function runReferenceSlice(slice: ReferenceSlice, window: number): number {
  const refs: RollingReference[] = [];
  for (let k = 0; k < slice.keys; k++) {
    refs.push(new RollingReference({ mode: 0, cap: window, span: 0, alpha: BENCH_ALPHA, timeScale: BENCH_TIME_SCALE }));
  }
  const sum = new RowSum();
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
  stageInput(memory.buffer, layout.groups, slice);
  return checksumDirect(
    (a, b, c, d, e, f, g) => kernels.rollingProcess(a, b, c, d, e, f, g),
    (ptr) => kernels.rollingInit(ptr, 0, window, 0, BENCH_ALPHA, BENCH_TIME_SCALE),
    new Float64Array(memory.buffer),
    layout,
    4096,
  );
}

// ---- pool, engine, sweep ----

async function measurePool(setup: BenchSetup, workers: number, cfg: BenchConfig): Promise<Measurement> {
  const { layout } = setup;
  const executor = createKernelExecutor(setup.memory, workers, layout.groups.length);
  try {
    // The checksum pass starts from fresh state and also warms the threads up; the timed runs
    // continue from its state, which is the steady state of a full window.
    resetStates(setup.initWasm, layout);
    const sum = new RowSum();
    await runOnExecutor(executor, layout, cfg.batchRecords, (g, rows) => sum.addRows(setup.wasmOut, g.out >>> 3, rows));
    const samples = cfg.keys * cfg.valuesPerKey;
    const rate = await timeRuns(cfg.runs, samples, () => runOnExecutor(executor, layout, cfg.batchRecords, null));
    const label =
      workers === 0
        ? "WASM kernel, executor with 0 workers (inline, async per task)"
        : `WASM kernel on pool, ${workers} worker${workers === 1 ? "" : "s"} (kernel + pool ceiling)`;
    return {
      label,
      threads: Math.max(1, workers),
      samples,
      samplesPerSecond: rate,
      method: `median of ${cfg.runs} runs`,
      checksum: sum.value(),
    };
  } finally {
    await executor.close();
  }
}

/** memSum tasks over the same bytes, four per chunk (three input columns and the output rows), one chunk per group in flight. */
async function measureBandwidthPool(setup: BenchSetup, cfg: BenchConfig): Promise<Measurement> {
  const { layout, bandwidthBatch: batch } = setup;
  const executor = createKernelExecutor(setup.memory, 2, layout.groups.length * 4);
  const run = async (): Promise<void> => {
    await Promise.all(
      layout.groups.map(async (g, index) => {
        for (let first = 0; first < g.records; first += batch) {
          const n = Math.min(batch, g.records - first);
          await Promise.all([
            executor.run({ fn: "memSum", args: [g.slots + first * 4, n * 4] }, index),
            executor.run({ fn: "memSum", args: [g.times + first * 8, n * 8] }, index),
            executor.run({ fn: "memSum", args: [g.values + first * 8, n * 8] }, index),
            executor.run({ fn: "memSum", args: [g.out, n * OUT_FIELDS * 8] }, index),
          ]);
        }
      }),
    );
  };
  try {
    await run();
    const samples = cfg.keys * cfg.valuesPerKey;
    const rate = await timeRuns(cfg.runs, samples, run);
    return {
      label: `bandwidth ceiling: memSum tasks, 2 workers, batch ${batch}`,
      threads: 2,
      samples,
      samplesPerSecond: rate,
      method: `median of ${cfg.runs} runs`,
      checksum: null,
    };
  } finally {
    await executor.close();
  }
}

/** The same data through StreamEngine.push + flush: main-thread routing into group buffers, then kernel tasks. */
function measureEngine(data: BenchData, cfg: BenchConfig): Promise<Measurement> {
  const workers = 2;
  const sum = new RowSum();
  return measureEngineRow(
    `stream engine end to end (push ${ENGINE_PUSH_RECORDS} + route + kernel), ${workers} workers`,
    [rollingKernel({ window: { kind: "count", records: cfg.window }, alpha: BENCH_ALPHA, timeScale: BENCH_TIME_SCALE })],
    workers,
    cfg,
    data,
    { add: (chunk) => sum.addRows(chunk.outs[0], 0, chunk.length), value: (): number | null => sum.value() },
  );
}

async function runSweep(
  setup: BenchSetup,
  cfg: BenchConfig,
  say: (line: string) => void,
): Promise<{ points: SweepPoint[]; best: SweepPoint }> {
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
