/**
 * The SPC benchmark (`npm run bench`, `npm run bench -- --suite spc`): the SPC kernel alone and
 * rolling statistics + SPC together, on the worker pool, against the TypeScript reference.
 *
 * Goals: print, side by side from one run over one seeded data set (in-control normal noise per
 * key with injected shifts, drifts and variance changes, so every rule and both alarms fire), how
 * many samples per second
 *   - the WASM SPC kernel does on the main thread, on the executor inline and on the piscina pool
 *     with 1 and 2 workers, inputs pre-staged in shared memory so only kernel tasks are timed;
 *   - rolling (W = 64) + SPC together do, one task calling rollingProcess then spcProcess per group
 *     buffer as the engine does, on the main thread and on the pool with 1 and 2 workers (the
 *     issue's headline figure, against its target of 80 M samples/s with 2 workers);
 *   - the stream engine with kernels [rolling, spc] delivers end to end with 2 workers;
 *   - the TypeScript SPC reference (kernels/reference/spc-reference.ts) and the TypeScript rolling
 *     port (bench/rolling-incremental.ts) + that reference do on a slice of the data;
 * then the ratios, the rule firings, the state bytes per key and the target as met / not met.
 * Every variant prints a checksum (Σ cusum_pos + Σ zone + rule firings, plus Σ mean + Σ z of the
 * rolling rows when rolling runs too) over one pass from fresh state. All WASM variants must agree
 * with each other, and the WASM rows must agree with the reference row by row on the slice (zone,
 * masks, alarms and limits_version exactly, statistics to 1e-12 relative), else the report says
 * MISMATCH and `npm run bench` exits with 1.
 *
 * Non-goals: asserting anything about time (the target is informational), the rolling kernel's
 * own figures (kernel-bench.ts), and the sources and sinks.
 */
import { performance } from "node:perf_hooks";
import {
  createSharedMemory,
  instantiateKernels,
  type KernelExports,
  createKernelExecutor,
  type KernelCall,
  type KernelExecutor,
  SeededRandom,
} from "../engine/core/mod.js";
import { DEFAULT_ROLLING_ALPHA, ROLLING_OUT_FIELDS, rollingKernel } from "../operators/rolling/mod.js";
import { spcKernel, DEFAULT_SPC_PARAMS, SPC_COL, SPC_FIELDS, SPC_OUT_FIELDS, spcInitArgs, type SpcParams } from "../operators/spc/mod.js";
import { NeumaierSum, SpcReference } from "../kernels/reference/mod.js";
import {
  align64,
  benchMachine,
  ENGINE_PUSH_RECORDS,
  fromSuite,
  interleavedSlice,
  machineLine,
  mega,
  planGroups,
  ratioLines,
  relativeDifference,
  resolveBaseConfig,
  runSuite,
  stageInput,
  timeRuns,
  endReport,
  SAMPLE_INTERVAL_MS,
  TIME_ORIGIN_MS,
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

export interface SpcBenchOptions {
  /** Distinct keys (default 1000; smoke 20). */
  keys?: number;
  /** Values per key (default 10 000; smoke 500). */
  values?: number;
  /** Count window W of the rolling analysis run with SPC (default 64). */
  window?: number;
  /** Tiny sizes and short timings: finishes in seconds. */
  smoke?: boolean;
  /** PRNG seed of the data (default {@link DEFAULT_BENCH_SEED}). */
  seed?: number;
  /** Records per kernel task (default 16 384; smoke 1024). */
  batchRecords?: number;
  /** Progress lines while measuring (default: none). */
  progress?: ((line: string) => void) | null;
}

/**
 * What a pass from fresh state computed. SPC: Σ cusum_pos over rows with limits, Σ zone, and the
 * rule firings (set bits of we_mask and nelson_mask, plus cusum_alarm and ewma_alarm). Rolling:
 * Σ finite mean + Σ finite z, or null when the variant runs SPC alone.
 */
export interface SpcChecksum {
  cusumPos: number;
  zone: number;
  firings: number;
  rolling: number | null;
  /** cusumPos + zone + firings (+ rolling): the one number printed per variant. */
  value: number;
}

/** One measured variant. */
export type SpcMeasurement = BenchMeasurement<SpcChecksum>;

/** How often each rule and alarm fired in the WASM pass from fresh state over all the data. */
export interface RuleFirings {
  /** WE rules 1–4. */
  we: number[];
  /** Nelson rules 1–8. */
  nelson: number[];
  cusumAlarms: number;
  ewmaAlarms: number;
  /** Rows that had limits (after each key's baseline). */
  rowsWithLimits: number;
  rows: number;
}

/** The episodes injected into the in-control noise. */
export interface InjectedEpisodes {
  /** Mean shifts of ±1–3σ, 20–100 values. */
  shift: number;
  /** Linear drifts of ±0.02–0.04σ per value, 30–80 values (up to about 3σ away). */
  drift: number;
  /** Noise × 2–3 (mixture), 20–60 values. */
  wide: number;
  /** Noise × 0.25 (stratification), 30–60 values. */
  narrow: number;
  /** Share of all records inside an episode. */
  outOfControlShare: number;
}

/** WASM rows (from the verification passes over all the data) against the TypeScript side on the slice. */
export interface ReferenceComparison {
  sliceKeys: number;
  sliceValuesPerKey: number;
  /** SPC rows compared with the reference. */
  rows: number;
  /** zone, we_mask, nelson_mask, cusum_alarm, ewma_alarm, limits_version fields that are not equal (NaN equals NaN). */
  exactFieldsDiffering: number;
  /** cl, ucl, lcl, sigma, cusum_pos, cusum_neg, ewma, ewma_ucl, ewma_lcl fields more than {@link SPC_STATISTIC_TOLERANCE} relative apart. */
  statisticFieldsDiffering: number;
  maxStatisticRelativeDifference: number;
  /** Rolling rows of rolling + SPC compared with the TS port; not bit-identical ones (the port follows the kernel bit for bit). */
  rollingRows: number;
  rollingRowsDiffering: number;
  /** The first differences found, for a person to look at. */
  examples: string[];
  /** Checksums over the slice: WASM SPC vs the reference, WASM rolling + SPC vs the TS port + reference. */
  wasmSpc: SpcChecksum;
  referenceSpc: SpcChecksum;
  wasmRollingSpc: SpcChecksum;
  tsRollingSpc: SpcChecksum;
  agree: boolean;
}

export interface SpcChecksumCheck {
  /** Every WASM variant agrees with its verification pass, SPC alone with the SPC part of rolling + SPC, and WASM with the reference. */
  agree: boolean;
  /** What disagrees. */
  mismatches: string[];
  reference: ReferenceComparison;
}

export interface SpcBenchReport extends BenchReportHead {
  params: SpcParams;
  episodes: InjectedEpisodes;
  /** State bytes per key: SPC, rolling at this run's W and at W = 64, and the sums. */
  stateBytes: { spc: number; rolling: number; rollingW64: number; rollingSpc: number; rollingSpcW64: number };
  spc: {
    mainThread: SpcMeasurement;
    /** Executor with 0 workers (inline), 1 and 2 workers. */
    pool: SpcMeasurement[];
  };
  rollingSpc: {
    mainThread: SpcMeasurement;
    /** Pool with 1 and 2 workers. */
    pool: SpcMeasurement[];
    engine: SpcMeasurement;
  };
  typescript: {
    spcReference: SpcMeasurement;
    rollingPortSpcReference: SpcMeasurement;
  };
  firings: RuleFirings;
  checksums: SpcChecksumCheck;
  ratios: Ratio[];
  targets: TargetCheck[];
  seconds: number;
}

/** The SPC parameters of the benchmark: the defaults, with the issue's baseline of 100 and moving-range sigma pinned. */
export const SPC_BENCH_PARAMS: Readonly<SpcParams> = Object.freeze({ ...DEFAULT_SPC_PARAMS, baselineN: 100, sigmaMethod: "mr" });
/** Relative agreement of statistics (and of Σ cusum_pos, Σ mean + Σ z) between variants and with the reference. */
export const SPC_STATISTIC_TOLERANCE = 1e-12;
export const TARGET_ROLLING_SPC_SAMPLES_PER_SECOND_2W = 80e6;
/** The TypeScript reference runs on this many keys × values of the data (it is some 100× slower than the kernel). */
export const SPC_REFERENCE_SLICE_KEYS = 100;
export const SPC_REFERENCE_SLICE_VALUES = 2000;

/** Runs every measurement and returns the report; prints nothing but `progress` lines. */
export async function runSpcBench(options: SpcBenchOptions = {}): Promise<SpcBenchReport> {
  const started = performance.now();
  const machine: BenchMachine = benchMachine();
  const cfg = resolveConfig(options);
  const say = options.progress ?? ((): void => {});
  say(`data: ${cfg.keys} keys × ${cfg.valuesPerKey} values, in control + injected episodes, seed ${cfg.seed}`);
  const setup = prepare(cfg);
  say(`TypeScript reference on the slice (${setup.slice.keys} keys × ${setup.slice.valuesPerKey} values): rows for the comparison`);
  const ts = referencePasses(setup, cfg);
  say("WASM verification passes from fresh state (SPC alone, rolling + SPC), compared with the reference on the slice");
  const verified = verificationPasses(setup, cfg, ts);

  say("single thread: benchmark.js suite (WASM SPC, WASM rolling + SPC, TS reference, TS port + reference)");
  const suite = runSuite(
    "SPC, single thread",
    cfg,
    [
      { label: "spc", fn: () => runDirect(setup, "spc", cfg.batchRecords, null) },
      { label: "rollingSpc", fn: () => runDirect(setup, "rolling+spc", cfg.batchRecords, null) },
      { label: "reference", fn: () => runReference(setup.slice, cfg.params, null) },
      { label: "tsRollingSpc", fn: () => runTsRollingSpc(setup.tsSlice, cfg, null) },
    ],
    say,
  );
  const samples = setup.data.length;
  const slice = `${setup.slice.keys} × ${setup.slice.valuesPerKey} slice`;
  const spcMain = fromSuite(suite.spc, "WASM SPC, main thread (direct calls)", samples, verified.spc);
  const rollingSpcMain = fromSuite(
    suite.rollingSpc,
    `WASM rolling (W = ${cfg.window}) + SPC, main thread (direct calls)`,
    samples,
    verified.rollingSpc,
  );
  const reference = fromSuite(suite.reference, `TS SPC reference, main thread, ${slice}`, setup.slice.length, ts.referenceChecksum);
  const tsRollingSpc = fromSuite(
    suite.tsRollingSpc,
    `TS rolling port + SPC reference, main thread, ${slice}`,
    setup.slice.length,
    ts.rollingSpcChecksum,
  );

  const spcPool: SpcMeasurement[] = [];
  for (const workers of [0, 1, 2]) {
    say(`pool: SPC alone, ${workers} worker${workers === 1 ? "" : "s"}, batch ${cfg.batchRecords}`);
    spcPool.push(await measurePool(setup, cfg, "spc", workers));
  }
  const rollingSpcPool: SpcMeasurement[] = [];
  for (const workers of [1, 2]) {
    say(`pool: rolling + SPC, ${workers} worker${workers === 1 ? "" : "s"}, batch ${cfg.batchRecords}`);
    rollingSpcPool.push(await measurePool(setup, cfg, "rolling+spc", workers));
  }
  say(`engine: StreamEngine.push, kernels [rolling, spc], 2 workers, batch ${cfg.batchRecords}`);
  const engine = await measureEngine(setup.data, cfg);

  const mismatches: string[] = [];
  for (const m of [spcMain, ...spcPool]) if (!checksumsAgree(m.checksum, verified.spc)) mismatches.push(m.label);
  for (const m of [rollingSpcMain, ...rollingSpcPool, engine])
    if (!checksumsAgree(m.checksum, verified.rollingSpc)) mismatches.push(m.label);
  if (!spcPartsAgree(verified.spc, verified.rollingSpc)) mismatches.push("SPC part of rolling + SPC vs SPC alone");
  const comparison = verified.comparison;
  if (!comparison.agree) mismatches.push("WASM vs TypeScript reference on the slice");

  const kernels = setup.kernels;
  const stateBytes = {
    spc: setup.layout.spcStride,
    rolling: setup.layout.rollingBytes,
    rollingW64: kernels.rollingStateBytes(0, 64),
    rollingSpc: setup.layout.rollingSpcStride,
    rollingSpcW64: kernels.rollingStateBytes(0, 64) + setup.layout.spcStride,
  };
  const report: SpcBenchReport = {
    ...reportHead(machine, cfg, samples),
    params: { ...cfg.params },
    episodes: setup.data.episodes,
    stateBytes,
    spc: { mainThread: spcMain, pool: spcPool },
    rollingSpc: { mainThread: rollingSpcMain, pool: rollingSpcPool, engine },
    typescript: { spcReference: reference, rollingPortSpcReference: tsRollingSpc },
    firings: verified.firings,
    checksums: { agree: mismatches.length === 0, mismatches, reference: comparison },
    ratios: [],
    targets: [],
    seconds: 0,
  };
  return finishReport(report, started, computeRatios, checkTargets);
}

/** The report as the text `npm run bench` prints. */
export function formatSpcBenchReport(r: SpcBenchReport): string {
  const lines: string[] = [];
  const p = r.params;
  const e = r.episodes;
  lines.push("linewatch kernel benchmark — SPC (individuals chart, WE 1–4, Nelson 1–8, CUSUM, EWMA), alone and with rolling statistics");
  lines.push(
    `data: ${r.keys} keys × ${r.valuesPerKey} values = ${r.samples} samples, interleaved across keys; seed ${r.seed}; ` +
      `${r.groups} key groups; batch ${r.batchRecords} records/task`,
  );
  lines.push(
    `  per key N(level, σ) noise at 0.01 resolution, after the baseline ${e.shift} shifts (±1–3σ), ${e.drift} drifts, ` +
      `${e.wide} wide-noise and ${e.narrow} narrow-noise episodes in all (${(100 * e.outOfControlShare).toFixed(1)}% of records)`,
  );
  lines.push(
    `SPC: baseline ${p.baselineN} per key, sigma "${p.sigmaMethod}"${p.sigmaMethod === "mr" ? " (mean moving range / 1.128)" : ""}, ` +
      `CUSUM k ${p.cusumK} h ${p.cusumH}, EWMA λ ${p.ewmaLambda} L ${p.ewmaL}; runs WE4 ${p.we4Run}, N2 ${p.n2Run}, N3 ${p.n3Run}, ` +
      `N4 ${p.n4Run}, N7 ${p.n7Run}, N8 ${p.n8Run}; rolling W = ${r.window}`,
  );
  lines.push(machineLine(r.machine));
  lines.push("");
  lines.push(`throughput (samples/s)${" ".repeat(52)}M samples/s   threads  method                 checksum`);
  const row = (x: SpcMeasurement): string =>
    `  ${x.label.padEnd(72)} ${mega(x.samplesPerSecond).padStart(11)}   ${String(x.threads).padStart(7)}  ${x.method.padEnd(21)}  ${x.checksum.value.toPrecision(15)}`;
  lines.push(" SPC kernel alone");
  for (const x of [r.spc.mainThread, ...r.spc.pool]) lines.push(row(x));
  lines.push(` rolling (W = ${r.window}) + SPC: one task calls rollingProcess then spcProcess per group buffer`);
  for (const x of [r.rollingSpc.mainThread, ...r.rollingSpc.pool, r.rollingSpc.engine]) lines.push(row(x));
  const q = r.checksums.reference;
  lines.push(
    ` TypeScript on a slice of the data, the first ${q.sliceKeys} keys × ${q.sliceValuesPerKey} values (the reference is slow: at every ` +
      "record it re-zones the 32-value history and scans each rule's window)",
  );
  for (const x of [r.typescript.spcReference, r.typescript.rollingPortSpcReference]) lines.push(row(x));
  lines.push("");

  const c = r.checksums;
  lines.push(
    "checksum = Σ cusum_pos + Σ zone + rule firings (WE + Nelson bits, CUSUM and EWMA alarms) [+ Σ mean + Σ z of the rolling rows]",
  );
  lines.push(`  SPC alone, all data: ${describeChecksum(r.spc.mainThread.checksum)}`);
  lines.push(`  rolling + SPC, all data: ${describeChecksum(r.rollingSpc.mainThread.checksum)}`);
  if (c.agree) {
    lines.push(
      `  every WASM variant agrees with its pass from fresh state (integers exact, sums ≤ ${SPC_STATISTIC_TOLERANCE} relative), ` +
        "SPC alone with the SPC part of rolling + SPC, and WASM with the TypeScript reference",
    );
  } else {
    lines.push(`  ******** MISMATCH ******** ${c.mismatches.join("; ")}`);
    lines.push("  ******** MISMATCH ******** the variants did not compute the same results; the ratios below compare different work");
  }
  lines.push(
    `  WASM vs TypeScript on the slice (${q.sliceKeys} keys × ${q.sliceValuesPerKey} values, rows of the WASM passes over all data):`,
  );
  lines.push(
    `    SPC rows ${q.rows}: zone / masks / alarms / limits_version fields differing ${q.exactFieldsDiffering} (exact); ` +
      `statistic fields differing ${q.statisticFieldsDiffering} (> ${SPC_STATISTIC_TOLERANCE} relative; largest ${q.maxStatisticRelativeDifference.toExponential(2)})`,
  );
  lines.push(
    `    rolling rows ${q.rollingRows}: ${q.rollingRowsDiffering === 0 ? "bit-identical to the TS port" : `******** ${q.rollingRowsDiffering} not bit-identical to the TS port (out of date?) ********`}`,
  );
  lines.push(
    `    SPC checksum: WASM ${q.wasmSpc.value.toPrecision(17)}, reference ${q.referenceSpc.value.toPrecision(17)}; ` +
      `rolling + SPC: WASM ${q.wasmRollingSpc.value.toPrecision(17)}, TS ${q.tsRollingSpc.value.toPrecision(17)} — ${q.agree ? "agree" : "MISMATCH"}`,
  );
  for (const x of q.examples) lines.push(`    ${x}`);
  lines.push("");
  const f = r.firings;
  lines.push(
    `rule firings, WASM pass over all ${f.rows} records (${f.rowsWithLimits} with limits): ` +
      `${f.we.map((n, i) => `WE${i + 1} ${n}`).join(", ")}; ${f.nelson.map((n, i) => `N${i + 1} ${n}`).join(", ")}; ` +
      `CUSUM alarms ${f.cusumAlarms}, EWMA alarms ${f.ewmaAlarms}`,
  );
  lines.push("");
  lines.push(...ratioLines(r.ratios, 72));
  lines.push("");
  const s = r.stateBytes;
  lines.push(
    `state per key: SPC ${s.spc} bytes; rolling ${s.rollingW64} bytes at W = 64; rolling + SPC ${s.rollingSpcW64} bytes at W = 64` +
      (r.window === 64 ? "" : ` (${s.rollingSpc} bytes at W = ${r.window})`),
  );
  return endReport(lines, r, c.agree, [52, 20]);
}

// ---- configuration ----

interface SpcBenchConfig extends BenchBaseConfig {
  params: SpcParams;
}

/** Times are epoch ms; the rolling slope is per second (as the engine's rolling analysis is run). */
const ROLLING_TIME_SCALE = 1000;

function resolveConfig(o: SpcBenchOptions): SpcBenchConfig {
  return { ...resolveBaseConfig(o), params: { ...SPC_BENCH_PARAMS } };
}

// ---- data ----

interface SpcBenchData extends InterleavedData {
  episodes: InjectedEpisodes;
}

/** Probability that an episode starts at a given record of a key that is in control and past its baseline. */
const EPISODE_START_PROBABILITY = 1 / 2000;
const EPISODE_NONE = 0;
const EPISODE_SHIFT = 1;
const EPISODE_DRIFT = 2;
const EPISODE_WIDE = 3;
const EPISODE_NARROW = 4;

/**
 * Per key a level in [20, 100) and σ in [0.2, 2); each value level + σ·(offset + scale·N(0, 1)),
 * rounded to 0.01 like a sensor reading (ties exercise the trend and alternation rules). After
 * the first `baselineN` values of a key, episodes start at random: a mean shift (WE 1–4, Nelson
 * 2, 5, 6, CUSUM, EWMA), a drift, wide noise (WE1, Nelson 8) or narrow noise (Nelson 7).
 */
function generateSpcData(keys: number, valuesPerKey: number, seed: number, baselineN: number): SpcBenchData {
  const rng = new SeededRandom(seed);
  const next = (): number => rng.next();
  const normal = (): number => rng.normal();
  const length = keys * valuesPerKey;
  const keyOf = new Uint32Array(length);
  const times = new Float64Array(length);
  const values = new Float64Array(length);
  const level = new Float64Array(keys);
  const sigma = new Float64Array(keys);
  const kind = new Uint8Array(keys);
  const remaining = new Int32Array(keys);
  const offset = new Float64Array(keys);
  const slope = new Float64Array(keys);
  const scale = new Float64Array(keys).fill(1);
  const counts = [0, 0, 0, 0, 0];
  let outOfControl = 0;
  for (let k = 0; k < keys; k++) {
    level[k] = 20 + 80 * next();
    sigma[k] = 0.2 + 1.8 * next();
  }
  for (let v = 0, r = 0; v < valuesPerKey; v++) {
    for (let k = 0; k < keys; k++, r++) {
      if (remaining[k] === 0 && v >= baselineN && next() < EPISODE_START_PROBABILITY) {
        const u = next();
        const sign = next() < 0.5 ? -1 : 1;
        const w = next();
        if (u < 0.5) {
          kind[k] = EPISODE_SHIFT;
          remaining[k] = 20 + Math.floor(80 * w);
          offset[k] = sign * (1 + 2 * next());
        } else if (u < 0.7) {
          kind[k] = EPISODE_DRIFT;
          remaining[k] = 30 + Math.floor(50 * w);
          slope[k] = sign * (0.02 + 0.02 * next());
        } else if (u < 0.85) {
          kind[k] = EPISODE_WIDE;
          remaining[k] = 20 + Math.floor(40 * w);
          scale[k] = 2 + next();
        } else {
          kind[k] = EPISODE_NARROW;
          remaining[k] = 30 + Math.floor(30 * w);
          scale[k] = 0.25;
        }
        counts[kind[k]]++;
      }
      if (remaining[k] > 0) {
        if (kind[k] === EPISODE_DRIFT) offset[k] += slope[k];
        outOfControl++;
      }
      const x = level[k] + sigma[k] * (offset[k] + scale[k] * normal());
      if (remaining[k] > 0 && --remaining[k] === 0) {
        kind[k] = EPISODE_NONE;
        offset[k] = 0;
        scale[k] = 1;
      }
      keyOf[r] = k;
      times[r] = TIME_ORIGIN_MS + v * SAMPLE_INTERVAL_MS + (k % SAMPLE_INTERVAL_MS);
      values[r] = Math.round(x * 100) / 100;
    }
  }
  const episodes: InjectedEpisodes = {
    shift: counts[EPISODE_SHIFT],
    drift: counts[EPISODE_DRIFT],
    wide: counts[EPISODE_WIDE],
    narrow: counts[EPISODE_NARROW],
    outOfControlShare: length === 0 ? 0 : outOfControl / length,
  };
  return { length, keys, valuesPerKey, keyOf, times, values, episodes };
}

/** The first `keys` keys' first `valuesPerKey` values, interleaved the same way. */

function sliceOf(data: SpcBenchData, keys: number, valuesPerKey: number): SpcBenchData {
  return { ...interleavedSlice(data, keys, valuesPerKey), episodes: data.episodes };
}

// ---- the benchmark's memory layout ----

/**
 * Key k lives in group k mod G at slot ⌊k / G⌋. Per group, 64-byte aligned:
 *   [SPC state: keys × spcStride][rolling + SPC state: keys × (rolling + spc)]
 *   [slots u32 × n][times f64 × n][values f64 × n][rolling out: outRowsMax × 10 f64][SPC out: outRowsMax × 15 f64]
 * with n = all of the group's records, staged once, so a timed run is kernel tasks and nothing
 * else. SPC alone has its own densely packed state blocks; rolling + SPC has a block per key with
 * the rolling state first, as the engine lays out several analyses.
 */
interface GroupRegion {
  keys: number;
  records: number;
  spcState: number;
  rollingSpcState: number;
  slots: number;
  times: number;
  values: number;
  rollingOut: number;
  spcOut: number;
}

interface SpcLayout {
  spcStride: number;
  rollingBytes: number;
  rollingSpcStride: number;
  groups: GroupRegion[];
  totalBytes: number;
  pages: number;
}

function planLayout(
  keys: number,
  groups: number,
  valuesPerKey: number,
  spcBytes: number,
  rollingBytes: number,
  outRowsMax: number,
): SpcLayout {
  const rollingSpcStride = rollingBytes + spcBytes;
  const planned = planGroups<GroupRegion>(keys, groups, valuesPerKey, (spcState, groupKeys, records) => {
    const rollingSpcState = align64(spcState + groupKeys * spcBytes);
    const slots = align64(rollingSpcState + groupKeys * rollingSpcStride);
    const times = align64(slots + records * 4);
    const values = align64(times + records * 8);
    const rollingOut = align64(values + records * 8);
    const spcOut = align64(rollingOut + outRowsMax * ROLLING_OUT_FIELDS * 8);
    return {
      region: { keys: groupKeys, records, spcState, rollingSpcState, slots, times, values, rollingOut, spcOut },
      end: align64(spcOut + outRowsMax * SPC_OUT_FIELDS * 8),
    };
  });
  return { spcStride: spcBytes, rollingBytes, rollingSpcStride, ...planned };
}

// ---- setup ----

type Variant = "spc" | "rolling+spc";

/** The TypeScript side of the slice: the rolling port over its own buffer, laid out as the kernel's memory (one group). */
interface TsSlice {
  data: SpcBenchData;
  layout: SpcLayout;
  port: RollingIncremental;
  f64: Float64Array;
  u32: Uint32Array;
}

interface SpcSetup {
  data: SpcBenchData;
  slice: SpcBenchData;
  tsSlice: TsSlice;
  layout: SpcLayout;
  memory: WebAssembly.Memory;
  /** The kernel module on the main thread, over `memory`. */
  kernels: KernelExports;
  f64: Float64Array;
  spcInit: (statePtr: number) => void;
  rollingInit: (statePtr: number) => void;
}

function prepare(cfg: SpcBenchConfig): SpcSetup {
  const data = generateSpcData(cfg.keys, cfg.valuesPerKey, cfg.seed, cfg.params.baselineN);
  const probe = instantiateKernels(createSharedMemory(1));
  const spcBytes = probe.spcStateBytes();
  const rollingBytes = probe.rollingStateBytes(0, cfg.window);
  const layout = planLayout(cfg.keys, cfg.groups, cfg.valuesPerKey, spcBytes, rollingBytes, cfg.batchRecords);
  const memory = createSharedMemory(layout.pages);
  const kernels = instantiateKernels(memory);
  stageInput(memory.buffer, layout.groups, data);

  const slice = sliceOf(data, Math.min(SPC_REFERENCE_SLICE_KEYS, cfg.keys), Math.min(SPC_REFERENCE_SLICE_VALUES, cfg.valuesPerKey));
  const sliceLayout = planLayout(slice.keys, 1, slice.valuesPerKey, spcBytes, rollingBytes, cfg.batchRecords);
  const tsBuffer = new ArrayBuffer(sliceLayout.totalBytes);
  stageInput(tsBuffer, sliceLayout.groups, slice);
  const tsSlice: TsSlice = {
    data: slice,
    layout: sliceLayout,
    port: new RollingIncremental(tsBuffer),
    f64: new Float64Array(tsBuffer),
    u32: new Uint32Array(tsBuffer),
  };
  const spcArgs = spcInitArgs(cfg.params);
  return {
    data,
    slice,
    tsSlice,
    layout,
    memory,
    kernels,
    f64: new Float64Array(memory.buffer),
    spcInit: (ptr) => kernels.spcInit(ptr, ...spcArgs),
    rollingInit: (ptr) => kernels.rollingInit(ptr, 0, cfg.window, 0, DEFAULT_ROLLING_ALPHA, ROLLING_TIME_SCALE),
  };
}

function resetStates(setup: SpcSetup, variant: Variant): void {
  const { layout } = setup;
  for (const g of setup.layout.groups) {
    for (let s = 0; s < g.keys; s++) {
      if (variant === "spc") setup.spcInit(g.spcState + s * layout.spcStride);
      else {
        const block = g.rollingSpcState + s * layout.rollingSpcStride;
        setup.rollingInit(block);
        setup.spcInit(block + layout.rollingBytes);
      }
    }
  }
}

/** The kernel calls of one chunk: what one engine task does for a group buffer. */
function chunkCalls(layout: SpcLayout, variant: Variant, g: GroupRegion, first: number, n: number): KernelCall[] {
  const slots = g.slots + first * 4;
  const times = g.times + first * 8;
  const values = g.values + first * 8;
  if (variant === "spc") return [{ fn: "spcProcess", args: [g.spcState, layout.spcStride, slots, times, values, n, g.spcOut] }];
  const stride = layout.rollingSpcStride;
  return [
    { fn: "rollingProcess", args: [g.rollingSpcState, stride, slots, times, values, n, g.rollingOut] },
    { fn: "spcProcess", args: [g.rollingSpcState + layout.rollingBytes, stride, slots, times, values, n, g.spcOut] },
  ];
}

// ---- runners ----

/** Called after each chunk while its rows are in the group's output regions. */
type ChunkHook = ((g: GroupRegion, group: number, first: number, rows: number) => void) | null;

/** Every group, chunk by chunk, on the calling thread. */
function runDirect(setup: SpcSetup, variant: Variant, batch: number, onChunk: ChunkHook): void {
  const entries = setup.kernels as unknown as Record<string, (...args: number[]) => number>;
  setup.layout.groups.forEach((g, index) => {
    for (let first = 0; first < g.records; first += batch) {
      const n = Math.min(batch, g.records - first);
      for (const call of chunkCalls(setup.layout, variant, g, first, n)) {
        const done = entries[call.fn](...call.args);
        if (done !== n) throw new Error(`${call.fn} returned ${done} for ${n} records in group ${index}`);
      }
      onChunk?.(g, index, first, n);
    }
  });
}

/** Every group concurrently, one task per group in flight. */
async function runOnExecutor(
  executor: KernelExecutor,
  setup: SpcSetup,
  variant: Variant,
  batch: number,
  onChunk: ChunkHook,
): Promise<void> {
  await Promise.all(
    setup.layout.groups.map(async (g, index) => {
      for (let first = 0; first < g.records; first += batch) {
        const n = Math.min(batch, g.records - first);
        const calls = chunkCalls(setup.layout, variant, g, first, n);
        const done = await executor.run(calls.length === 1 ? calls[0] : { calls }, index);
        if (done !== n) throw new Error(`${calls.map((c) => c.fn).join("+")} returned ${done} for ${n} records in group ${index}`);
        onChunk?.(g, index, first, n);
      }
    }),
  );
}

// ---- checksums ----

/** Rolling output row: mean and z (operators/rolling/rolling.ts ROLLING_FIELDS). */
const ROLLING_COL_MEAN = 1;
const ROLLING_COL_Z = 8;

/** Accumulates a checksum and the rule firings over output rows. */
class Tally {
  private readonly cusum = new NeumaierSum();
  private readonly rollingSum = new NeumaierSum();
  private hasRolling = false;
  private zone = 0;
  private firings = 0;
  private rows = 0;
  private rowsWithLimits = 0;
  private readonly we = new Array<number>(4).fill(0);
  private readonly nelson = new Array<number>(8).fill(0);
  private cusumAlarms = 0;
  private ewmaAlarms = 0;

  /** One SPC row at f64 index o. */
  addSpc(f64: Float64Array, o: number): void {
    this.rows++;
    if (!(f64[o + SPC_COL.limits_version] > 0)) return;
    this.rowsWithLimits++;
    this.cusum.add(f64[o + SPC_COL.cusum_pos]);
    this.zone += f64[o + SPC_COL.zone];
    const we = f64[o + SPC_COL.we_mask];
    const nelson = f64[o + SPC_COL.nelson_mask];
    for (let b = 0; b < 4; b++) if ((we & (1 << b)) !== 0) this.we[b]++;
    for (let b = 0; b < 8; b++) if ((nelson & (1 << b)) !== 0) this.nelson[b]++;
    const cusumAlarm = f64[o + SPC_COL.cusum_alarm];
    const ewmaAlarm = f64[o + SPC_COL.ewma_alarm];
    this.cusumAlarms += cusumAlarm;
    this.ewmaAlarms += ewmaAlarm;
    this.firings += popcount(we) + popcount(nelson) + cusumAlarm + ewmaAlarm;
  }

  /** One rolling row at f64 index o: its mean and z when defined. */
  addRolling(f64: Float64Array, o: number): void {
    this.hasRolling = true;
    const mean = f64[o + ROLLING_COL_MEAN];
    const z = f64[o + ROLLING_COL_Z];
    if (Number.isFinite(mean)) this.rollingSum.add(mean);
    if (Number.isFinite(z)) this.rollingSum.add(z);
  }

  checksum(): SpcChecksum {
    const cusumPos = this.cusum.value;
    const rolling = this.hasRolling ? this.rollingSum.value : null;
    return { cusumPos, zone: this.zone, firings: this.firings, rolling, value: cusumPos + this.zone + this.firings + (rolling ?? 0) };
  }

  ruleFirings(): RuleFirings {
    return {
      we: [...this.we],
      nelson: [...this.nelson],
      cusumAlarms: this.cusumAlarms,
      ewmaAlarms: this.ewmaAlarms,
      rowsWithLimits: this.rowsWithLimits,
      rows: this.rows,
    };
  }
}

function popcount(mask: number): number {
  let m = mask & 0xff;
  let c = 0;
  while (m !== 0) {
    m &= m - 1;
    c++;
  }
  return c;
}

/** Integers exactly, sums to {@link SPC_STATISTIC_TOLERANCE} relative (groups finish in different orders on the pool). */
function checksumsAgree(a: SpcChecksum, b: SpcChecksum): boolean {
  if (!spcPartsAgree(a, b)) return false;
  if (a.rolling === null || b.rolling === null) return a.rolling === b.rolling;
  return relativeDifference(a.rolling, b.rolling) <= SPC_STATISTIC_TOLERANCE;
}

function spcPartsAgree(a: SpcChecksum, b: SpcChecksum): boolean {
  return a.zone === b.zone && a.firings === b.firings && relativeDifference(a.cusumPos, b.cusumPos) <= SPC_STATISTIC_TOLERANCE;
}

function describeChecksum(c: SpcChecksum): string {
  return (
    `Σ cusum_pos ${c.cusumPos.toPrecision(15)} + Σ zone ${c.zone} + firings ${c.firings}` +
    (c.rolling === null ? "" : ` + rolling ${c.rolling.toPrecision(15)}`) +
    ` = ${c.value.toPrecision(15)}`
  );
}

// ---- TypeScript: the reference, and the rolling port + the reference ----

interface ReferenceResults {
  /** Reference rows of the slice, row of key k's v-th value at (k·valuesPerKey + v)·15. */
  spcRows: Float64Array;
  /** TS port rows of the slice, likewise with 10 f64 per row. */
  rollingRows: Float64Array;
  referenceChecksum: SpcChecksum;
  rollingSpcChecksum: SpcChecksum;
}

/** The reference from fresh state over the slice, in record order; stores its rows when `rowsOut` is given. */
function runReference(slice: SpcBenchData, params: SpcParams, rowsOut: Float64Array | null): Tally {
  const refs: SpcReference[] = [];
  for (let k = 0; k < slice.keys; k++) refs.push(new SpcReference(params));
  const tally = new Tally();
  for (let r = 0; r < slice.length; r++) {
    const k = slice.keyOf[r];
    const row = refs[k].push(slice.values[r]);
    tally.addSpc(row, 0);
    if (rowsOut !== null) rowsOut.set(row, (k * slice.valuesPerKey + Math.floor(r / slice.keys)) * SPC_OUT_FIELDS);
  }
  return tally;
}

/**
 * The rolling port and the reference from fresh state over the slice, chunk by chunk as a task
 * does: the port over the chunk, then the reference over the same records.
 */
function runTsRollingSpc(ts: TsSlice, cfg: SpcBenchConfig, rollingRowsOut: Float64Array | null): Tally {
  const { layout, port, f64, u32 } = ts;
  const g = layout.groups[0];
  const stride = layout.rollingSpcStride;
  const refs: SpcReference[] = [];
  for (let s = 0; s < g.keys; s++) {
    port.init(g.rollingSpcState + s * stride, 0, cfg.window, 0, DEFAULT_ROLLING_ALPHA, ROLLING_TIME_SCALE);
    refs.push(new SpcReference(cfg.params));
  }
  const tally = new Tally();
  const outBase = g.rollingOut >>> 3;
  for (let first = 0; first < g.records; first += cfg.batchRecords) {
    const n = Math.min(cfg.batchRecords, g.records - first);
    port.process(g.rollingSpcState, stride, g.slots + first * 4, g.times + first * 8, g.values + first * 8, n, g.rollingOut);
    const slot0 = (g.slots >>> 2) + first;
    const x0 = (g.values >>> 3) + first;
    for (let i = 0; i < n; i++) {
      const slot = u32[slot0 + i];
      tally.addRolling(f64, outBase + i * ROLLING_OUT_FIELDS);
      tally.addSpc(refs[slot].push(f64[x0 + i]), 0);
      if (rollingRowsOut !== null) {
        const at = (slot * ts.data.valuesPerKey + Math.floor((first + i) / g.keys)) * ROLLING_OUT_FIELDS;
        rollingRowsOut.set(f64.subarray(outBase + i * ROLLING_OUT_FIELDS, outBase + (i + 1) * ROLLING_OUT_FIELDS), at);
      }
    }
  }
  return tally;
}

function referencePasses(setup: SpcSetup, cfg: SpcBenchConfig): ReferenceResults {
  const spcRows = new Float64Array(setup.slice.length * SPC_OUT_FIELDS);
  const rollingRows = new Float64Array(setup.slice.length * ROLLING_OUT_FIELDS);
  const referenceChecksum = runReference(setup.slice, cfg.params, spcRows).checksum();
  const rollingSpcChecksum = runTsRollingSpc(setup.tsSlice, cfg, rollingRows).checksum();
  return { spcRows, rollingRows, referenceChecksum, rollingSpcChecksum };
}

// ---- the WASM verification passes ----

const EXACT_COLUMNS = [SPC_COL.zone, SPC_COL.we_mask, SPC_COL.nelson_mask, SPC_COL.cusum_alarm, SPC_COL.ewma_alarm, SPC_COL.limits_version];
const STATISTIC_COLUMNS = [
  SPC_COL.cl,
  SPC_COL.ucl,
  SPC_COL.lcl,
  SPC_COL.sigma,
  SPC_COL.cusum_pos,
  SPC_COL.cusum_neg,
  SPC_COL.ewma,
  SPC_COL.ewma_ucl,
  SPC_COL.ewma_lcl,
];
const EXAMPLES_MAX = 5;

/** Row-by-row comparison of WASM rows with the TypeScript side's. */
class RowComparison {
  rows = 0;
  exactFieldsDiffering = 0;
  statisticFieldsDiffering = 0;
  maxStatisticRelativeDifference = 0;
  rollingRows = 0;
  rollingRowsDiffering = 0;
  readonly examples: string[] = [];

  spc(wasm: Float64Array, wo: number, ref: Float64Array, ro: number, where: string): void {
    this.rows++;
    for (const f of EXACT_COLUMNS) {
      const a = wasm[wo + f];
      const b = ref[ro + f];
      if (a !== b && !(Number.isNaN(a) && Number.isNaN(b))) {
        this.exactFieldsDiffering++;
        this.example(`${where}: ${SPC_FIELDS[f]} WASM ${a}, reference ${b}`);
      }
    }
    for (const f of STATISTIC_COLUMNS) {
      const a = wasm[wo + f];
      const b = ref[ro + f];
      if (Number.isNaN(a) || Number.isNaN(b)) {
        if (Number.isNaN(a) && Number.isNaN(b)) continue;
        this.statisticFieldsDiffering++;
        this.example(`${where}: ${SPC_FIELDS[f]} WASM ${a}, reference ${b}`);
        continue;
      }
      const d = relativeDifference(a, b);
      if (d > this.maxStatisticRelativeDifference) this.maxStatisticRelativeDifference = d;
      if (d > SPC_STATISTIC_TOLERANCE) {
        this.statisticFieldsDiffering++;
        this.example(`${where}: ${SPC_FIELDS[f]} WASM ${a}, reference ${b} (relative ${d.toExponential(2)})`);
      }
    }
  }

  rolling(wasm: Float64Array, wo: number, port: Float64Array, po: number, where: string): void {
    this.rollingRows++;
    for (let f = 0; f < ROLLING_OUT_FIELDS; f++) {
      const a = wasm[wo + f];
      const b = port[po + f];
      if (a !== b && !(Number.isNaN(a) && Number.isNaN(b))) {
        this.rollingRowsDiffering++;
        this.example(`${where}: rolling field ${f} WASM ${a}, TS port ${b}`);
        return;
      }
    }
  }

  private example(text: string): void {
    if (this.examples.length < EXAMPLES_MAX) this.examples.push(text);
  }
}

interface VerifiedResults {
  spc: SpcChecksum;
  rollingSpc: SpcChecksum;
  firings: RuleFirings;
  comparison: ReferenceComparison;
}

/**
 * SPC alone and rolling + SPC from fresh state on the main thread over all the data: the
 * checksums every other WASM variant must match, the rule firings, and the rows of the slice's
 * records compared with the TypeScript side (a key's rows depend only on its own earlier values,
 * so its first values in the full run are the slice's).
 */
function verificationPasses(setup: SpcSetup, cfg: SpcBenchConfig, ts: ReferenceResults): VerifiedResults {
  const { slice, f64 } = setup;
  const G = setup.layout.groups.length;
  const cmp = new RowComparison();
  /** Calls visit(record's row index within the chunk, key, value index) for the chunk's records inside the slice. */
  const forSliceRows = (
    g: GroupRegion,
    group: number,
    first: number,
    n: number,
    visit: (i: number, k: number, v: number) => void,
  ): void => {
    for (let i = 0; i < n; i++) {
      const v = Math.floor((first + i) / g.keys);
      if (v >= slice.valuesPerKey) return;
      const k = ((first + i) % g.keys) * G + group;
      if (k < slice.keys) visit(i, k, v);
    }
  };

  resetStates(setup, "spc");
  const spcAll = new Tally();
  const spcSlice = new Tally();
  runDirect(setup, "spc", cfg.batchRecords, (g, group, first, n) => {
    const o = g.spcOut >>> 3;
    for (let i = 0; i < n; i++) spcAll.addSpc(f64, o + i * SPC_OUT_FIELDS);
    forSliceRows(g, group, first, n, (i, k, v) => {
      spcSlice.addSpc(f64, o + i * SPC_OUT_FIELDS);
      cmp.spc(f64, o + i * SPC_OUT_FIELDS, ts.spcRows, (k * slice.valuesPerKey + v) * SPC_OUT_FIELDS, `key ${k} value ${v}`);
    });
  });

  resetStates(setup, "rolling+spc");
  const bothAll = new Tally();
  const bothSlice = new Tally();
  runDirect(setup, "rolling+spc", cfg.batchRecords, (g, group, first, n) => {
    const ro = g.rollingOut >>> 3;
    const so = g.spcOut >>> 3;
    for (let i = 0; i < n; i++) {
      bothAll.addRolling(f64, ro + i * ROLLING_OUT_FIELDS);
      bothAll.addSpc(f64, so + i * SPC_OUT_FIELDS);
    }
    forSliceRows(g, group, first, n, (i, k, v) => {
      bothSlice.addRolling(f64, ro + i * ROLLING_OUT_FIELDS);
      bothSlice.addSpc(f64, so + i * SPC_OUT_FIELDS);
      cmp.rolling(
        f64,
        ro + i * ROLLING_OUT_FIELDS,
        ts.rollingRows,
        (k * slice.valuesPerKey + v) * ROLLING_OUT_FIELDS,
        `key ${k} value ${v}`,
      );
    });
  });

  const wasmSpc = spcSlice.checksum();
  const wasmRollingSpc = bothSlice.checksum();
  const agree =
    cmp.rows === slice.length &&
    cmp.rollingRows === slice.length &&
    cmp.exactFieldsDiffering === 0 &&
    cmp.statisticFieldsDiffering === 0 &&
    checksumsAgree(wasmSpc, ts.referenceChecksum) &&
    checksumsAgree(wasmRollingSpc, ts.rollingSpcChecksum);
  return {
    spc: spcAll.checksum(),
    rollingSpc: bothAll.checksum(),
    firings: spcAll.ruleFirings(),
    comparison: {
      sliceKeys: slice.keys,
      sliceValuesPerKey: slice.valuesPerKey,
      rows: cmp.rows,
      exactFieldsDiffering: cmp.exactFieldsDiffering,
      statisticFieldsDiffering: cmp.statisticFieldsDiffering,
      maxStatisticRelativeDifference: cmp.maxStatisticRelativeDifference,
      rollingRows: cmp.rollingRows,
      rollingRowsDiffering: cmp.rollingRowsDiffering,
      examples: cmp.examples,
      wasmSpc,
      referenceSpc: ts.referenceChecksum,
      wasmRollingSpc,
      tsRollingSpc: ts.rollingSpcChecksum,
      agree,
    },
  };
}

// ---- single-thread suite ----

// ---- pool and engine ----

async function measurePool(setup: SpcSetup, cfg: SpcBenchConfig, variant: Variant, workers: number): Promise<SpcMeasurement> {
  const executor = createKernelExecutor(setup.memory, workers, setup.layout.groups.length);
  const { f64 } = setup;
  try {
    // The checksum pass starts from fresh state and warms the threads up; the timed runs continue
    // from its state, every key past its baseline (the steady state of a running line).
    resetStates(setup, variant);
    const tally = new Tally();
    await runOnExecutor(executor, setup, variant, cfg.batchRecords, (g, _group, _first, n) => {
      const so = g.spcOut >>> 3;
      const ro = g.rollingOut >>> 3;
      for (let i = 0; i < n; i++) {
        if (variant === "rolling+spc") tally.addRolling(f64, ro + i * ROLLING_OUT_FIELDS);
        tally.addSpc(f64, so + i * SPC_OUT_FIELDS);
      }
    });
    const samples = setup.data.length;
    const rate = await timeRuns(cfg.runs, samples, () => runOnExecutor(executor, setup, variant, cfg.batchRecords, null));
    const what = variant === "spc" ? "WASM SPC" : `WASM rolling (W = ${cfg.window}) + SPC`;
    const label =
      workers === 0
        ? `${what}, executor with 0 workers (inline, async per task)`
        : `${what} on pool, ${workers} worker${workers === 1 ? "" : "s"} (kernel + pool ceiling)`;
    return {
      label,
      threads: Math.max(1, workers),
      samples,
      samplesPerSecond: rate,
      method: `median of ${cfg.runs} runs`,
      checksum: tally.checksum(),
    };
  } finally {
    await executor.close();
  }
}

/** The same data through StreamEngine.push + flush with kernels [rolling, spc]: routing into group buffers, then one task per buffer. */
function measureEngine(data: SpcBenchData, cfg: SpcBenchConfig): Promise<SpcMeasurement> {
  const workers = 2;
  const tally = new Tally();
  return measureEngineRow(
    `stream engine end to end (push ${ENGINE_PUSH_RECORDS} + route + [rolling, spc]), ${workers} workers`,
    [
      rollingKernel({ window: { kind: "count", records: cfg.window }, alpha: DEFAULT_ROLLING_ALPHA, timeScale: ROLLING_TIME_SCALE }),
      spcKernel({ params: cfg.params }),
    ],
    workers,
    cfg,
    data,
    {
      add: (chunk) => {
        const [rolling, spc] = chunk.outs;
        for (let i = 0; i < chunk.length; i++) {
          tally.addRolling(rolling, i * ROLLING_OUT_FIELDS);
          tally.addSpc(spc, i * SPC_OUT_FIELDS);
        }
      },
      value: () => tally.checksum(),
    },
  );
}

// ---- ratios and targets ----

function computeRatios(r: SpcBenchReport): Ratio[] {
  const [, spc1, spc2] = r.spc.pool;
  const [both1, both2] = r.rollingSpc.pool;
  const ref = r.typescript.spcReference;
  const tsBoth = r.typescript.rollingPortSpcReference;
  const rate = (m: SpcMeasurement): number => m.samplesPerSecond;
  return [
    { label: "WASM SPC main thread / TS SPC reference (1 thread)", value: rate(r.spc.mainThread) / rate(ref) },
    { label: "WASM SPC pool 2 workers / TS SPC reference (1 thread)", value: rate(spc2) / rate(ref) },
    { label: "WASM rolling + SPC main thread / TS rolling port + SPC reference", value: rate(r.rollingSpc.mainThread) / rate(tsBoth) },
    { label: "WASM rolling + SPC pool 2 workers / TS rolling port + SPC reference", value: rate(both2) / rate(tsBoth) },
    { label: "WASM SPC pool 2 workers / 1 worker (scaling)", value: rate(spc2) / rate(spc1) },
    { label: "WASM rolling + SPC pool 2 workers / 1 worker (scaling)", value: rate(both2) / rate(both1) },
    { label: "WASM rolling + SPC / SPC alone, pool 2 workers (cost of adding rolling)", value: rate(both2) / rate(spc2) },
    { label: "WASM rolling + SPC / SPC alone, main thread", value: rate(r.rollingSpc.mainThread) / rate(r.spc.mainThread) },
    { label: "engine 2 workers / rolling + SPC kernels on pool 2 workers", value: rate(r.rollingSpc.engine) / rate(both2) },
  ];
}

function checkTargets(r: SpcBenchReport): TargetCheck[] {
  const both2 = r.rollingSpc.pool[1];
  return [
    {
      label: "rolling + SPC on pool, 2 workers",
      goal: `≥ ${mega(TARGET_ROLLING_SPC_SAMPLES_PER_SECOND_2W)} M samples/s`,
      measured: `${mega(both2.samplesPerSecond)} M samples/s`,
      met: both2.samplesPerSecond >= TARGET_ROLLING_SPC_SAMPLES_PER_SECOND_2W,
    },
  ];
}
