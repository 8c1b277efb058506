/**
 * The rolling-statistics kernel (build/kernels.wasm, kernels/rolling.ts) against the plain
 * TypeScript reference (kernels/reference/rolling-reference.ts), against hand-computed rows, and
 * against exact arithmetic where rounding is the point. Build the kernel first:
 * `npm run build:kernels`.
 *
 * Tolerances, for a kernel value a and a reference value b of one row:
 * - count, min, max, flags: exact (counts, or copies of input values). NaN must meet NaN.
 * - ewma: 1e-9·max(1, |b|). Both run the same recurrence in the same order.
 * - Let M = max(|min|, |max|) of the window and U = 256·ε·M, the data-scale floor: an
 *   incremental algorithm rounds a running mean of magnitude up to M at every record, ε·M each
 *   time, and those errors random-walk over up to 65535 records between exact recomputes
 *   (√65535 ≈ 256). Nothing finer can be asked of any O(1)-per-record method.
 * - mean: 1e-9·max(1, |b|) + U. (U, not |b|, because the mean of ±1e12 values can be ~0.)
 * - std, std_pop: 1e-7·b + U. Seven significant digits: far more than any z-score threshold
 *   needs, and loose enough for incremental updates; U only matters when the spread is below
 *   ~1e-7 of the magnitude (1e9 + 1e-3 noise, which has its own exact check below).
 * - slope: 1e-7·(|b| + σx/σu) + U/σu, σ = population spread of values and slope-times in the
 *   window. σx/σu bounds |slope| (|correlation| ≤ 1), so this is 1e-7 of the slope's natural
 *   unit rather than of a slope that happens to be ~0; an error U in each deviation moves the
 *   slope by U/σu.
 * - z: 1e-7·max(1, |z|) + U·(1 + |z|)/std: the mean and std floors propagated through
 *   (x − mean)/std to first order.
 */
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  KERNEL_OUT_FIELDS,
  RollingKernelHarness,
  outputRow,
  type RollingInput,
  type RollingKernelConfig,
} from "../bench/kit/kernel-harness.js";
import { SeededRandom } from "../engine/core/mod.js";
import { COL, RollingReference } from "../kernels/reference/rolling-reference.js";
import { referenceDataDir } from "../connectors/files/reference-data.js";
import { rollingStateBytes as operatorStateBytes, type RollingWindow } from "../operators/rolling/rolling.js";

const FIELD_NAMES = ["count", "mean", "std", "std_pop", "min", "max", "slope", "ewma", "z", "flags"];
const EXACT_FIELDS: ReadonlySet<number> = new Set([COL.count, COL.min, COL.max, COL.flags]);
/** Data-scale floor in units of the window's largest magnitude (see the header). */
const SCALE_FLOOR = 256 * Number.EPSILON;
const NAB_DIR = join(referenceDataDir(), "nab");

function countWindow(records: number, alpha = 0.1): RollingKernelConfig {
  return { mode: 0, cap: records, span: 0, alpha, timeScale: 1 };
}

function timeWindow(span: number, cap: number, alpha = 0.1, timeScale = 1): RollingKernelConfig {
  return { mode: 1, cap, span, alpha, timeScale };
}

// ---------------------------------------------------------------------------------------------
// Fixed vectors, expected rows computed by hand (independent of the reference).

describe("rolling kernel - fixed vectors", () => {
  it("count window of 4 over 1, 2, 3, 4 gives mean 2.5, std √(5/3), slope 1", () => {
    const rows = runOneKey(countWindow(4, 0.5), [0, 1, 2, 3], [1, 2, 3, 4]);
    expectRow(rows, 0, [1, 1, NaN, 0, 1, 1, NaN, 1, NaN, 0]);
    expectRow(rows, 1, [2, 1.5, Math.SQRT1_2, 0.5, 1, 2, 1, 1.5, 0.5 / Math.SQRT1_2, 0]);
    expectRow(rows, 2, [3, 2, 1, Math.sqrt(2 / 3), 1, 3, 1, 2.25, 1, 0]);
    expectRow(rows, 3, [4, 2.5, Math.sqrt(5 / 3), Math.sqrt(5 / 4), 1, 4, 1, 3.125, 1.5 / Math.sqrt(5 / 3), 0]);
  });

  it("count window of 3 slides: [3, 4, 10] gives mean 17/3, std √(43/3), slope 3.5", () => {
    const rows = runOneKey(countWindow(3, 0.5), [0, 0, 0, 0, 0], [1, 2, 3, 4, 10]);
    expectRow(rows, 3, [3, 3, 1, Math.sqrt(2 / 3), 2, 4, 1, 3.125, 1, 0]);
    const std = Math.sqrt(43 / 3);
    expectRow(rows, 4, [3, 17 / 3, std, Math.sqrt(86 / 9), 3, 10, 3.5, 6.5625, (10 - 17 / 3) / std, 0]);
  });

  it("window of 1: std NaN, std_pop 0, slope NaN, z NaN; ewma runs over every record", () => {
    const rows = runOneKey(countWindow(1, 0.5), [0, 1, 2], [0, 8, 4]);
    expectRow(rows, 0, [1, 0, NaN, 0, 0, 0, NaN, 0, NaN, 0]);
    expectRow(rows, 1, [1, 8, NaN, 0, 8, 8, NaN, 4, NaN, 0]);
    expectRow(rows, 2, [1, 4, NaN, 0, 4, 4, NaN, 4, NaN, 0]);
  });

  it("time window of 10 evicts t ≤ tMax − 10 and fits the slope on time", () => {
    const rows = runOneKey(timeWindow(10, 64, 0.5), [0, 4, 9, 10, 25], [1, 3, 5, 7, 2]);
    // t = 9: nothing has left (cutoff −1); slope on t = 0, 4, 9 with values 1, 3, 5 is 27/61.
    expectRow(rows, 2, [3, 3, 2, Math.sqrt(8 / 3), 1, 5, 27 / 61, 3.5, 1, 0]);
    // t = 10: t = 0 leaves (0 ≤ 10 − 10); window t = 4, 9, 10, values 3, 5, 7: slope 18/31.
    expectRow(rows, 3, [3, 5, 2, Math.sqrt(8 / 3), 3, 7, 18 / 31, 5.25, 1, 0]);
    // t = 25: everything older than 15 leaves.
    expectRow(rows, 4, [1, 2, NaN, 0, 2, 2, NaN, 3.625, NaN, 0]);
  });

  it("time window slope is per timeScale unit: ms times with timeScale 1000 give slope per second", () => {
    const rows = runOneKey(timeWindow(60_000, 64, 0.1, 1000), [1_400_000_000_000, 1_400_000_001_000, 1_400_000_002_000], [0, 1, 2]);
    expect(rows[2 * KERNEL_OUT_FIELDS + COL.slope]).toBeCloseTo(1, 12);
  });

  it("time window at capacity drops its oldest and flags the row", () => {
    const rows = runOneKey(timeWindow(100, 2), [0, 1, 2], [1, 2, 4]);
    expectRow(rows, 1, [2, 1.5, Math.SQRT1_2, 0.5, 1, 2, 1, 1.1, Math.SQRT1_2, 0]);
    expectRow(rows, 2, [2, 3, Math.SQRT2, 1, 2, 4, 2, 1.39, 1 / Math.SQRT2, 1]);
  });

  it("equal timestamps: slope is NaN, the other fields are defined", () => {
    const rows = runOneKey(timeWindow(10, 64), [5, 5, 5], [1, 2, 3]);
    expectRow(rows, 2, [3, 2, 1, Math.sqrt(2 / 3), 1, 3, NaN, 1.29, 1, 0]);
  });

  it("out-of-order times: records leave from the oldest end only, a late record waits behind newer ones", () => {
    const rows = runOneKey(timeWindow(10, 64, 0.5), [10, 3, 12, 14, 21], [1, 2, 3, 4, 5]);
    // t = 3 arrives late (cutoff 0, nothing leaves) and joins: slope on t − 10 = 0, −7.
    expectRow(rows, 1, [2, 1.5, Math.SQRT1_2, 0.5, 1, 2, -1 / 7, 1.5, Math.SQRT1_2, 0]);
    // t = 14: cutoff 4, the oldest (t = 10) stays, so t = 3 stays behind it.
    expect(rows[3 * KERNEL_OUT_FIELDS + COL.count]).toBe(4);
    // t = 21: cutoff 11 removes t = 10 and then t = 3; t = 12, 14, 21 remain.
    expectRow(rows, 4, [3, 4, 1, Math.sqrt(2 / 3), 3, 5, slopeOf([12, 14, 21], [3, 4, 5]), 4.0625, 1, 0]);
  });

  it("all slope-times equal after a capacity eviction: slope is NaN (times 2, 4, 4, 4; cap 3)", () => {
    // The t = 2 record is pushed out by the capacity, leaving three records at t = 4.
    const rows = runOneKey(timeWindow(3, 3, 0.5), [2, 4, 4, 4], [2, 1, 1, 5]);
    const std = 4 / Math.sqrt(3);
    expectRow(rows, 3, [3, 7 / 3, std, Math.sqrt(32 / 9), 1, 5, NaN, 3.125, (5 - 7 / 3) / std, 1]);
  });

  it("two-record window after a wider pair left: std = |b − a|/√2 and z = 1/√2", () => {
    // For n = 2, std = |b − a|/√2 and z = ±1/√2 whatever the values; b − a is exact here (Sterbenz).
    const [w, a, b] = [625.4175678000696, 625.5679811614502, 625.5680307872815];
    const rows = runOneKey(countWindow(2), [0, 1, 2], [w, a, b]);
    const d = b - a;
    const e1 = w + 0.1 * (a - w);
    expectRow(rows, 2, [2, a + d / 2, d / Math.SQRT2, d / 2, a, b, d, e1 + 0.1 * (b - e1), Math.SQRT1_2, 0]);
  });

  it("two records near 1e9: std = |b − a|/√2 (no cancellation in the kernel's moments)", () => {
    const [a, b] = [1e9, 1e9 + 1e-3];
    const rows = runOneKey(countWindow(64), [0, 1], [a, b]);
    const d = b - a; // exact: 0.00099992752075195312
    const got = rows[KERNEL_OUT_FIELDS + COL.std];
    expect(Math.abs(got / (d / Math.SQRT2) - 1), `std ${got}, exact ${d / Math.SQRT2}`).toBeLessThanOrEqual(1e-9);
  });

  it("a constant window after a huge spike left gives std = std_pop = 0 exactly and z NaN", () => {
    const rows = runOneKey(countWindow(3), [0, 1, 2, 3, 4, 5], [5, 1e12, 5, 5, 5, 5]);
    for (const i of [4, 5]) {
      const row = outputRow(rows, i);
      expect(row[COL.mean]).toBe(5);
      expect(row[COL.std]).toBe(0);
      expect(row[COL.stdPop]).toBe(0);
      expect(row[COL.z]).toBeNaN();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Seeded random streams, many keys interleaved in one batch, every row against the reference.

describe("rolling kernel - seeded random streams", () => {
  it.each([1, 2, 3, 64, 1000])("count window of %i, 16 keys interleaved", (records) => {
    const stream = randomStream({ seed: 100 + records, keys: 16, records: 20_000, stepMax: 3 });
    const result = compareWithReference(countWindow(records), 16, stream, { chunkRecordsMax: 997 });
    expect(result.rowsCompared).toBe(20_000);
  });

  it.each([1, 2, 3, 64, 1000])("time window of %i, irregular steps with equal timestamps, 16 keys", (span) => {
    const stream = randomStream({ seed: 200 + span, keys: 16, records: 20_000, stepMax: 3 });
    expect(stream.equalTimestamps).toBeGreaterThan(1000);
    const result = compareWithReference(timeWindow(span, 4096), 16, stream);
    expect(result.truncatedRows).toBe(0);
  });

  it.each([3, 10, 100])("time window of %i with out-of-order times, 8 keys", (span) => {
    const stream = randomStream({ seed: 300 + span, keys: 8, records: 20_000, stepMax: 3, lateFraction: 0.15, lateMax: 2 * span });
    expect(stream.outOfOrder).toBeGreaterThan(1000);
    compareWithReference(timeWindow(span, 4096), 8, stream);
  });

  it.each([2, 8])("time window over capacity %i, strictly increasing times: truncated rows flagged", (cap) => {
    const stream = randomStream({ seed: 400 + cap, keys: 8, records: 20_000, stepMin: 1, stepMax: 3 });
    const result = compareWithReference(timeWindow(64, cap), 8, stream);
    expect(result.truncatedRows).toBeGreaterThan(10_000);
  });

  it.each([3, 8])("time window over capacity %i with equal timestamps and late records", (cap) => {
    const stream = randomStream({ seed: 500 + cap, keys: 8, records: 20_000, stepMax: 3, lateFraction: 0.1, lateMax: 20 });
    const result = compareWithReference(timeWindow(10, cap), 8, stream);
    expect(result.truncatedRows).toBeGreaterThan(1000);
  });

  it("a batch split anywhere gives the same rows (state carries across rollingProcess calls)", () => {
    const stream = randomStream({ seed: 600, keys: 5, records: 3000, stepMax: 2 });
    const whole = new RollingKernelHarness(timeWindow(20, 64), 5, { chunkRecordsMax: 3000 }).process(stream);
    const oneByOne = new RollingKernelHarness(timeWindow(20, 64), 5, { chunkRecordsMax: 1 }).process(stream);
    const odd = new RollingKernelHarness(timeWindow(20, 64), 5, { chunkRecordsMax: 17 }).process(stream);
    expect(oneByOne).toEqual(whole);
    expect(odd).toEqual(whole);
  });

  // rollingProcess takes a call's records key by key (chained through their rows); a call of one
  // record cannot reorder anything, so equal rows and equal state bytes mean the order is invisible
  // (the state is what a checkpoint saves; the chain's scratch word must be back to 0 after a call).
  it.each([
    ["count window of 64", countWindow(64)],
    ["count window of 5", countWindow(5)],
    ["time window of 20", timeWindow(20, 64)],
  ] as const)("%s: keys interleaved in one call give the rows and state bytes of one record a call", (_label, config) => {
    const stream = randomStream({ seed: 610, keys: 7, records: 5000, stepMax: 2 });
    const whole = new RollingKernelHarness(config, 7, { chunkRecordsMax: 5000 });
    const oneByOne = new RollingKernelHarness(config, 7, { chunkRecordsMax: 1 });
    expect(whole.process(stream)).toEqual(oneByOne.process(stream));
    const stateBytes = (h: RollingKernelHarness): Uint8Array =>
      new Uint8Array(h.memory.buffer, h.layout.stateBase, 7 * h.layout.stateStride).slice();
    expect(stateBytes(whole)).toEqual(stateBytes(oneByOne));
  });
});

// ---------------------------------------------------------------------------------------------
// Adversarial inputs.

describe("rolling kernel - adversarial", () => {
  it.each([
    ["count window of 3", countWindow(3)],
    ["count window of 64", countWindow(64)],
    ["time window of 64", timeWindow(64, 4096)],
  ] as const)("1e9 + noise of 1e-3, %s: std within 1e-6 of the exact std", (_label, config) => {
    const rng = new SeededRandom(700);
    const n = 3000;
    const times = Float64Array.from({ length: n }, (_, i) => i);
    const values = Float64Array.from({ length: n }, () => 1e9 + 1e-3 * rng.normal());
    const rows = new RollingKernelHarness(config, 1).process({ slots: new Uint32Array(n), times, values });
    const ref = new RollingReference(config);
    const window: number[] = [];
    const bad: string[] = [];
    let worst = 0;
    for (let i = 0; i < n; i++) {
      const want = ref.push(times[i], values[i]);
      window.push(values[i]);
      if (window.length > want[COL.count]) window.splice(0, window.length - want[COL.count]);
      if (window.length < 2) continue;
      const exact = exactSampleStd(window);
      // The reference itself must be right here, or the comparison below means nothing.
      expect(Math.abs(want[COL.std] - exact)).toBeLessThanOrEqual(1e-12 * exact);
      const got = rows[i * KERNEL_OUT_FIELDS + COL.std];
      const rel = Math.abs(got - exact) / exact;
      worst = Math.max(worst, rel);
      if (!(rel <= 1e-6) && bad.length < 5) bad.push(`record ${i}: std ${got} exact ${exact} (relative error ${rel.toExponential(2)})`);
    }
    expect(bad, `worst relative error ${worst.toExponential(2)}\n${bad.join("\n")}`).toEqual([]);
  });

  it.each([
    ["count window of 3", countWindow(3)],
    ["count window of 64", countWindow(64)],
    ["time window of 64", timeWindow(64, 4096)],
  ] as const)("long constant run after a 1e12 spike left the %s: std exactly 0, z NaN", (_label, config) => {
    const rng = new SeededRandom(800);
    const values: number[] = [];
    for (let i = 0; i < 200; i++) values.push(7.3 + rng.normal());
    values.push(1e12);
    for (let i = 0; i < 500; i++) values.push(7.3);
    const rows = runOneKey(
      config,
      values.map((_, i) => i),
      values,
    );
    for (let i = 201 + 64; i < values.length; i++) {
      const row = outputRow(rows, i);
      expect([row[COL.std], row[COL.stdPop], row[COL.mean], row[COL.min], row[COL.max]], `record ${i}`).toEqual([0, 0, 7.3, 7.3, 7.3]);
      expect(row[COL.z], `record ${i}`).toBeNaN();
    }
    compareWithReference(
      config,
      1,
      oneKeyInput(
        values.map((_, i) => i),
        values,
      ),
    );
  });

  it.each([
    ["count window of 64", countWindow(64)],
    ["count window of 1000", countWindow(1000)],
    ["time window of 64", timeWindow(64, 4096)],
  ] as const)("std stays accurate after a spike 2e5 × the noise leaves the %s", (_label, config) => {
    const rng = new SeededRandom(900);
    const values = Array.from({ length: 4000 }, (_, i) => (i % 1500 === 100 ? 2e5 : rng.normal()));
    compareWithReference(
      config,
      1,
      oneKeyInput(
        values.map((_, i) => i),
        values,
      ),
    );
  });

  it.each([2, 3, 64])("alternating ±1e12 and values below 1e-6, window of %i", (size) => {
    const rng = new SeededRandom(1000 + size);
    const values = Array.from({ length: 5000 }, (_, i) => (i % 2 === 1 ? rng.uniform(0, 1e-6) : i % 4 === 0 ? 1e12 : -1e12));
    const times = values.map((_, i) => i);
    compareWithReference(countWindow(size), 1, oneKeyInput(times, values));
    compareWithReference(timeWindow(size, 4096), 1, oneKeyInput(times, values));
  });

  it("one-element input", () => {
    const rows = runOneKey(timeWindow(10, 8), [123], [-4.5]);
    expectRow(rows, 0, [1, -4.5, NaN, 0, -4.5, -4.5, NaN, -4.5, NaN, 0]);
  });

  it("empty batch (n = 0) writes nothing and leaves every key as it was", () => {
    const harness = new RollingKernelHarness(countWindow(4), 3);
    expect(harness.processEmpty()).toBe(0);
    expect(harness.process({ slots: new Uint32Array(0), times: new Float64Array(0), values: new Float64Array(0) })).toHaveLength(0);
    const rows = harness.process({ slots: Uint32Array.of(2), times: Float64Array.of(0), values: Float64Array.of(9) });
    expectRow(rows, 0, [1, 9, NaN, 0, 9, 9, NaN, 9, NaN, 0]);
  });

  it("1e6 records through a count window of 64 do not drift (last 1000 rows vs reference)", () => {
    const n = 1_000_000;
    const rng = new SeededRandom(1100);
    const times = new Float64Array(n);
    const values = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      times[i] = i;
      values[i] = 1000 + 1e-4 * i + 10 * Math.sin(i / 500) + rng.normal() * (i % 10_000 === 0 ? 1e4 : 1);
    }
    const config = countWindow(64);
    const tail = 1000;
    const harness = new RollingKernelHarness(config, 1, { chunkRecordsMax: 65_536 });
    const kept = new Float64Array(tail * KERNEL_OUT_FIELDS);
    harness.processChunks({ slots: new Uint32Array(n), times, values }, (first, rows) => {
      const from = Math.max(first, n - tail);
      const to = first + rows.length / KERNEL_OUT_FIELDS;
      if (from < to) kept.set(rows.subarray((from - first) * KERNEL_OUT_FIELDS), (from - (n - tail)) * KERNEL_OUT_FIELDS);
    });
    const ref = new RollingReference(config);
    for (let i = 0; i < n - tail; i++) ref.skip(times[i], values[i]);
    const mismatches: string[] = [];
    for (let i = n - tail; i < n; i++) {
      const want = ref.push(times[i], values[i]);
      mismatches.push(...rowMismatches(outputRow(kept, i - (n - tail)), want, ref.slopeTimeStdPop, `record ${i}`));
    }
    expectNoMismatches(mismatches, "last 1000 rows");
  });
});

// ---------------------------------------------------------------------------------------------
// Real data: NAB series (epoch ms, timeScale 1000) through a 64-record and a one-hour window.

const NAB_SERIES = [
  "realAWSCloudwatch/ec2_cpu_utilization_825cc2.csv",
  "realAWSCloudwatch/rds_cpu_utilization_e47b3b.csv",
  "realAWSCloudwatch/ec2_network_in_5abac7.csv",
  "realTraffic/speed_6005.csv",
  "realTweets/Twitter_volume_AAPL.csv",
  "realAdExchange/exchange-2_cpc_results.csv",
  "artificialNoAnomaly/art_flatline.csv",
  "artificialWithAnomaly/art_daily_jumpsup.csv",
];

describe.each(NAB_SERIES)("rolling kernel - NAB series %s", (file) => {
  const load = (): RollingInput => {
    const { times, values } = readNabSeries(join(NAB_DIR, file));
    return oneKeyInput(times, values);
  };

  it("count window of 64, every row vs reference", () => {
    compareWithReference({ mode: 0, cap: 64, span: 0, alpha: 0.1, timeScale: 1000 }, 1, load());
  });

  it("time window of 1 h, every row vs reference", () => {
    compareWithReference({ mode: 1, cap: 4096, span: 3_600_000, alpha: 0.1, timeScale: 1000 }, 1, load());
  });
});

// ---------------------------------------------------------------------------------------------
// The reference itself, against exact arithmetic, so that a mismatch above indicts the kernel.

describe("rolling kernel - monotonic deques", () => {
  // The newest value pops the run of back entries beyond it: none, a few (tested without
  // branches, up to four), or many (a loop). Monotone runs longer than the window, plateaus of
  // ties, sawtooths and small integers give every pop count from 0 to W, short deques included.
  it.each([
    { mode: 0, cap: 1 },
    { mode: 0, cap: 2 },
    { mode: 0, cap: 3 },
    { mode: 0, cap: 4 },
    { mode: 0, cap: 5 },
    { mode: 0, cap: 8 },
    { mode: 0, cap: 64 },
    { mode: 1, cap: 4 },
    { mode: 1, cap: 64 },
  ] as const)("pops of 0 to W entries: min and max exactly the reference's, window %o", ({ mode, cap }) => {
    const config: RollingKernelConfig = { mode, cap, span: mode === 1 ? 40 : 0, alpha: 0.3, timeScale: 1 };
    const input = dequeStream(7 + cap + 100 * mode, 6, 30_000);
    const result = compareWithReference(config, 6, input, { chunkRecordsMax: 777 });
    expect(result.rowsCompared).toBe(30_000);
  });
});

describe("rolling kernel - deques over NaN, infinities and signed zeros", () => {
  // The deques' contract beyond finite values (the reference does not model it; the kernel's
  // deques always gave it): NaN is beyond nothing and pops nothing, so min (max) is the smallest
  // (largest) of the window's records from its oldest up to its first NaN, the oldest of equal
  // ones (−0 and +0 are equal), and NaN when the oldest record is NaN. Runs of one key, keys
  // interleaved, deques from empty to full (monotone runs longer than the window: every slot of
  // the flat deque arrays used and moved down), caps around powers of two, both window kinds.
  it.each([
    { mode: 0, cap: 1 },
    { mode: 0, cap: 2 },
    { mode: 0, cap: 3 },
    { mode: 0, cap: 4 },
    { mode: 0, cap: 5 },
    { mode: 0, cap: 7 },
    { mode: 0, cap: 8 },
    { mode: 0, cap: 9 },
    { mode: 0, cap: 63 },
    { mode: 0, cap: 64 },
    { mode: 0, cap: 65 },
    { mode: 1, cap: 5 },
    { mode: 1, cap: 64 },
  ] as const)("min and max bit for bit as the window scan gives them, window %o", ({ mode, cap }) => {
    const config: RollingKernelConfig = { mode, cap, span: mode === 1 ? 30 : 0, alpha: 0.3, timeScale: 1 };
    const input = specialValueStream(31 + cap + 100 * mode, 4, 30_000);
    const rows = new RollingKernelHarness(config, 4, { chunkRecordsMax: 1009 }).process(input);
    const history: number[][] = [[], [], [], []];
    const bad: string[] = [];
    let nanMin = 0;
    for (let i = 0; i < input.values.length; i++) {
      const key = input.slots[i];
      history[key].push(input.values[i]);
      const row = outputRow(rows, i);
      const window = history[key].slice(history[key].length - row[COL.count]);
      const want = [scanExtreme(window, (a, b) => a < b), scanExtreme(window, (a, b) => a > b)];
      if (Number.isNaN(want[0])) nanMin += 1;
      if (!(Object.is(row[COL.min], want[0]) && Object.is(row[COL.max], want[1])) && bad.length < 5) {
        bad.push(`record ${i} (key ${key}): min ${row[COL.min]} max ${row[COL.max]}, want ${want[0]} ${want[1]}`);
      }
    }
    expect(bad).toEqual([]);
    expect(nanMin).toBeGreaterThan(100);
  });
});

/** The deques' min (better = <) or max (better = >) of a window, oldest first: see the describe above. */
function scanExtreme(window: number[], better: (a: number, b: number) => boolean): number {
  let m = window[0];
  for (let k = 1; k < window.length && !Number.isNaN(window[k]); k++) if (better(window[k], m)) m = window[k];
  return m;
}

/**
 * Runs of one key (1..40 records) in random order of keys; per run a monotone stretch, a plateau
 * or draws from NaN, ±∞, ±0 and small integers.
 */
function specialValueStream(seed: number, keys: number, records: number): RollingInput {
  const rng = new SeededRandom(seed);
  const specials = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0, -0, 1, -1, 2];
  const slots = new Uint32Array(records);
  const times = new Float64Array(records);
  const values = new Float64Array(records);
  const clock = new Array<number>(keys).fill(0);
  const x = new Array<number>(keys).fill(0);
  for (let i = 0; i < records; ) {
    const k = rng.int(0, keys - 1);
    const kind = rng.int(0, 3);
    const step = rng.next() < 0.5 ? -1 : 1;
    for (let run = rng.int(1, 40); run > 0 && i < records; run--, i++) {
      if (kind === 0) x[k] += step;
      else if (kind === 2) x[k] = specials[rng.int(0, specials.length - 1)];
      else if (kind === 3) x[k] = rng.next() < 0.05 ? Number.NaN : rng.int(-3, 3);
      clock[k] += rng.int(0, 2);
      slots[i] = k;
      times[i] = clock[k];
      values[i] = x[k];
    }
    if (!Number.isFinite(x[k])) x[k] = 0;
  }
  return { slots, times, values };
}

/** Per key, segments of monotone runs (1..80 long, either way), plateaus of one value, sawtooths and small integers. */
function dequeStream(seed: number, keys: number, records: number): RollingInput {
  const rng = new SeededRandom(seed);
  const slots = new Uint32Array(records);
  const times = new Float64Array(records);
  const values = new Float64Array(records);
  const left = new Array<number>(keys).fill(0);
  const kind = new Array<number>(keys).fill(0);
  const step = new Array<number>(keys).fill(0);
  const x = new Array<number>(keys).fill(0);
  const clock = new Array<number>(keys).fill(0);
  for (let i = 0; i < records; i++) {
    const k = rng.int(0, keys - 1);
    if (left[k] === 0) {
      left[k] = rng.int(1, 80);
      kind[k] = rng.int(0, 3);
      step[k] = (rng.next() < 0.5 ? -1 : 1) * rng.int(1, 3);
    }
    left[k] -= 1;
    if (kind[k] === 0) x[k] += step[k];
    else if (kind[k] === 2) x[k] += left[k] % 5 === 0 ? -4 * step[k] : step[k];
    else if (kind[k] === 3) x[k] = rng.int(-2, 2);
    clock[k] += rng.int(0, 2);
    slots[i] = k;
    times[i] = clock[k];
    values[i] = x[k];
  }
  return { slots, times, values };
}

describe("rolling kernel - reference self-check", () => {
  it("reference std equals the exact std (BigInt) on windows with spikes, offsets and 1e9 levels", () => {
    const rng = new SeededRandom(1200);
    for (const level of [0, 625, 1e9]) {
      const values = Array.from({ length: 600 }, (_, i) => level + (i % 150 === 7 ? 2e5 : 1) * 1e-3 * rng.normal());
      for (const size of [2, 3, 64]) {
        const ref = new RollingReference(countWindow(size));
        values.forEach((x, i) => {
          const std = ref.push(i, x)[COL.std];
          const window = values.slice(Math.max(0, i + 1 - size), i + 1);
          if (window.length < 2) return;
          const exact = exactSampleStd(window);
          expect(Math.abs(std - exact), `level ${level}, window ${size}, record ${i}`).toBeLessThanOrEqual(1e-13 * exact);
        });
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------
// State size: the engine lays out memory with the operator's figure, the kernel uses its own.

describe("rolling kernel - state size", () => {
  const windows: RollingWindow[] = [
    { kind: "count", records: 1 },
    { kind: "count", records: 3 },
    { kind: "count", records: 64 },
    { kind: "count", records: 1000 },
    { kind: "count", records: 65_535 },
    { kind: "time", span: 3_600_000, capacity: 2 },
    { kind: "time", span: 3_600_000, capacity: 4096 },
    { kind: "time", span: 1, capacity: 65_535 },
  ];
  const kernels = new RollingKernelHarness(countWindow(1), 1).kernels;

  it.each(windows)("kernel and operator agree for %o", (window) => {
    const mode = window.kind === "count" ? 0 : 1;
    const cap = window.kind === "count" ? window.records : window.capacity;
    const bytes = kernels.rollingStateBytes(mode, cap);
    expect(bytes).toBe(operatorStateBytes(window));
    expect(bytes % 8).toBe(0);
  });

  it("a count window of 64 needs at most 1024 bytes per key", () => {
    expect(kernels.rollingStateBytes(0, 64)).toBeLessThanOrEqual(1024);
  });
});

// ---------------------------------------------------------------------------------------------
// Helpers.

interface StreamSpec {
  seed: number;
  keys: number;
  records: number;
  /** Per-key time step drawn from stepMin..stepMax (integers; 0 gives equal timestamps). */
  stepMin?: number;
  stepMax: number;
  /** Share of records stamped up to lateMax before their key's clock (out of order). */
  lateFraction?: number;
  lateMax?: number;
}

interface RandomStream extends RollingInput {
  equalTimestamps: number;
  outOfOrder: number;
}

/**
 * Records of `keys` keys in random order. Each key has its own level (up to ±1000), scale
 * (1e-2..1e2), a random walk and noise, so keys differ by orders of magnitude in one batch.
 */
function randomStream(spec: StreamSpec): RandomStream {
  const rng = new SeededRandom(spec.seed);
  const level = Array.from({ length: spec.keys }, () => rng.uniform(-1000, 1000));
  const scale = Array.from({ length: spec.keys }, () => 10 ** rng.uniform(-2, 2));
  const walk = new Array<number>(spec.keys).fill(0);
  const clock = Array.from({ length: spec.keys }, () => rng.int(0, 1_000_000));
  const lastTime = new Array<number>(spec.keys).fill(NaN);
  const slots = new Uint32Array(spec.records);
  const times = new Float64Array(spec.records);
  const values = new Float64Array(spec.records);
  let equalTimestamps = 0;
  let outOfOrder = 0;
  for (let i = 0; i < spec.records; i++) {
    const k = rng.int(0, spec.keys - 1);
    let t: number;
    if (spec.lateFraction !== undefined && rng.next() < spec.lateFraction) {
      t = clock[k] - rng.int(1, spec.lateMax ?? 1);
      outOfOrder += 1;
    } else {
      clock[k] += rng.int(spec.stepMin ?? 0, spec.stepMax);
      t = clock[k];
    }
    if (t === lastTime[k]) equalTimestamps += 1;
    lastTime[k] = t;
    walk[k] += 0.1 * rng.normal();
    slots[i] = k;
    times[i] = t;
    values[i] = level[k] + scale[k] * (walk[k] + rng.normal());
  }
  return { slots, times, values, equalTimestamps, outOfOrder };
}

interface CompareOptions {
  chunkRecordsMax?: number;
}

interface CompareResult {
  rowsCompared: number;
  truncatedRows: number;
}

/** Runs the input through the kernel and one reference per key; fails on any row out of tolerance. */
function compareWithReference(config: RollingKernelConfig, keys: number, input: RollingInput, options: CompareOptions = {}): CompareResult {
  const harness = new RollingKernelHarness(config, keys, { chunkRecordsMax: options.chunkRecordsMax });
  const rows = harness.process(input);
  const refs = Array.from({ length: keys }, () => new RollingReference(config));
  const mismatches: string[] = [];
  let truncatedRows = 0;
  const n = input.values.length;
  for (let i = 0; i < n; i++) {
    const k = input.slots[i];
    const ref = refs[k];
    const want = ref.push(input.times[i], input.values[i]);
    if (want[COL.flags] !== 0) truncatedRows += 1;
    const where = `record ${i} (key ${k}, t ${input.times[i]}, x ${input.values[i]})`;
    mismatches.push(...rowMismatches(outputRow(rows, i), want, ref.slopeTimeStdPop, where));
  }
  expectNoMismatches(mismatches, JSON.stringify(config));
  return { rowsCompared: n, truncatedRows };
}

function expectNoMismatches(mismatches: string[], context: string): void {
  const shown = mismatches.slice(0, 8).join("\n");
  expect(mismatches.length, `${context}: ${mismatches.length} fields out of tolerance, first:\n${shown}\n`).toBe(0);
}

/** Fields of `got` outside the tolerance of the header around `want`, described for a person. */
function rowMismatches(got: Float64Array, want: Float64Array, slopeTimeStdPop: number, where: string): string[] {
  const out: string[] = [];
  for (let f = 0; f < KERNEL_OUT_FIELDS; f++) {
    const a = got[f];
    const b = want[f];
    let ok: boolean;
    let tol = 0;
    if (Number.isNaN(b) || Number.isNaN(a)) ok = Number.isNaN(a) && Number.isNaN(b);
    else if (EXACT_FIELDS.has(f)) ok = a === b;
    else {
      tol = fieldTolerance(f, want, slopeTimeStdPop);
      ok = Math.abs(a - b) <= tol;
    }
    if (!ok) out.push(`${where}: ${FIELD_NAMES[f]} got ${a} want ${b} (tolerance ${tol.toExponential(2)})`);
  }
  return out;
}

/** Tolerance of a non-exact field, as derived in the header. */
function fieldTolerance(field: number, want: Float64Array, slopeTimeStdPop: number): number {
  const floor = SCALE_FLOOR * Math.max(Math.abs(want[COL.min]), Math.abs(want[COL.max]));
  switch (field) {
    case COL.mean:
      return 1e-9 * Math.max(1, Math.abs(want[COL.mean])) + floor;
    case COL.std:
    case COL.stdPop:
      return 1e-7 * want[field] + floor;
    case COL.slope:
      return 1e-7 * (Math.abs(want[COL.slope]) + want[COL.stdPop] / slopeTimeStdPop) + floor / slopeTimeStdPop;
    case COL.ewma:
      return 1e-9 * Math.max(1, Math.abs(want[COL.ewma]));
    case COL.z: {
      const z = Math.abs(want[COL.z]);
      return 1e-7 * Math.max(1, z) + (floor * (1 + z)) / want[COL.std];
    }
    default:
      throw new RangeError(`field ${field} is compared exactly`);
  }
}

function oneKeyInput(times: ArrayLike<number>, values: ArrayLike<number>): RollingInput {
  return { slots: new Uint32Array(values.length), times: Float64Array.from(times), values: Float64Array.from(values) };
}

function runOneKey(config: RollingKernelConfig, times: number[], values: number[]): Float64Array {
  return new RollingKernelHarness(config, 1).process(oneKeyInput(times, values));
}

/** Row i equals the hand-computed row: exact fields exactly, the others to 1e-12 relative, NaN to NaN. */
function expectRow(rows: Float64Array, i: number, expected: number[]): void {
  const row = Array.from(outputRow(rows, i));
  const near = row.map((a, f) => {
    const b = expected[f];
    if (Number.isNaN(b) || EXACT_FIELDS.has(f)) return a;
    return Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b)) ? b : a;
  });
  expect(near, `row ${i} (${FIELD_NAMES.join(", ")})`).toEqual(expected);
}

/** Least-squares slope of ys on xs, straight from the definition (for hand-checked rows). */
function slopeOf(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((s, v) => s + v, 0) / n;
  const my = ys.reduce((s, v) => s + v, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let j = 0; j < n; j++) {
    sxy += (xs[j] - mx) * (ys[j] - my);
    sxx += (xs[j] - mx) ** 2;
  }
  return sxy / sxx;
}

/**
 * Sample std of doubles in exact arithmetic: every double is m·2^e with integer m, so scaling
 * all to the smallest e gives integers, and n·Σx² − (Σx)² = n(n − 1)·s² is computed exactly in
 * BigInt; only the final square root rounds.
 */
function exactSampleStd(xs: readonly number[]): number {
  const parts = xs.map(decomposeDouble);
  const eMin = Math.min(...parts.map((p) => p.exponent));
  const ints = parts.map((p) => p.mantissa << BigInt(p.exponent - eMin));
  const n = BigInt(xs.length);
  let s1 = 0n;
  let s2 = 0n;
  for (const v of ints) {
    s1 += v;
    s2 += v * v;
  }
  const num = n * s2 - s1 * s1;
  return Math.sqrt(Number(num) / Number(n * (n - 1n))) * 2 ** eMin;
}

/** x = mantissa · 2^exponent exactly (finite x). */
function decomposeDouble(x: number): { mantissa: bigint; exponent: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const sign = bits >> 63n === 1n ? -1n : 1n;
  const biased = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  if (biased === 0) return { mantissa: sign * fraction, exponent: -1074 };
  return { mantissa: sign * (fraction | (1n << 52n)), exponent: biased - 1075 };
}

/** A NAB CSV (`timestamp,value`, timestamps `YYYY-MM-DD hh:mm:ss` in UTC) as epoch ms and values. */
function readNabSeries(path: string): { times: number[]; values: number[] } {
  const lines = readFileSync(path, "utf8").trim().split("\n");
  if (lines[0].trim() !== "timestamp,value") throw new Error(`${path}: unexpected header ${lines[0]}`);
  const times: number[] = [];
  const values: number[] = [];
  for (let i = 1; i < lines.length; i++) {
    const [stamp, value] = lines[i].split(",");
    const t = Date.parse(`${stamp.trim().replace(" ", "T")}Z`);
    const x = Number(value);
    if (!Number.isFinite(t) || !Number.isFinite(x)) throw new Error(`${path}:${i + 1}: cannot read "${lines[i]}"`);
    times.push(t);
    values.push(x);
  }
  return { times, values };
}
