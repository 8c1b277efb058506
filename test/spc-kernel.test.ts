/**
 * The SPC kernel (build/kernels.wasm, kernels/spc.ts) against hand-built cases for every rule and
 * convention, against the plain TypeScript reference (kernels/reference/spc-reference.ts) on seeded
 * random streams and on NAB series, and against the in-control false-alarm rates of the rules.
 * Build the kernel first: `npm run build:kernels`.
 *
 * Comparison with the reference, per field:
 * - zone, we_mask, nelson_mask, cusum_alarm, limits_version: exact.
 * - cl, ucl, lcl, sigma, cusum_pos, cusum_neg, ewma: exact as well (the same doubles). Both sides
 *   evaluate the same pinned expressions (Welford's recurrences, the moving-range sum in record
 *   order, cl ± 3·σ, the CUSUM and EWMA recurrences) in the same order, and WebAssembly and
 *   JavaScript f64 arithmetic are both IEEE 754 with correct rounding and no contraction, so any
 *   difference is a different computation, not rounding.
 * - ewma_ucl, ewma_lcl: 1e-12 relative to max(|value|, L·σ). The kernel keeps (1 − λ)^{2i} as a
 *   running product, the reference calls Math.pow; the two differ by a few ulps of the product.
 * - ewma_alarm: exact, except where the reference's z lies within that tolerance of a limit
 *   (counted; expected never on these streams).
 */
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { SeededRandom } from "../engine/core/mod.js";
import { SpcKernelHarness, type SpcInput } from "../bench/kit/spc-harness.js";
import { referenceDataDir } from "../connectors/files/reference-data.js";
import { SpcReference, baselineLimits, zoneOf } from "../kernels/reference/spc-reference.js";
import { ConfigError } from "../engine/core/errors.js";
import { erfc as erfcOf, normalCdf } from "../operators/normal.js";
import {
  DEFAULT_SPC_PARAMS,
  NELSON_RULES,
  NORMAL_TAIL,
  SPC_COL,
  SPC_FIELDS,
  SPC_OUT_FIELDS,
  WE_RULES,
  spcInitArgs,
  movingRangeRunRate,
  spcRuleRate,
  spcStateBytes as layoutStateBytes,
  validateSpcLimits,
  validateSpcParams,
  validateSpcRebaseline,
  zigzagNumber,
  type SpcParams,
} from "../operators/spc/layout.js";

const C = SPC_COL;
const NAB_DIR = join(referenceDataDir(), "nab");

/** Default parameters without a baseline: the tests set limits themselves. */
function params(over: Partial<SpcParams> = {}): SpcParams {
  return { ...DEFAULT_SPC_PARAMS, baselineN: 0, ...over };
}

/** One key, limits (cl, σ) set before the first record (or a baseline from `over`), rows out. */
function run(values: readonly number[], limits: { cl: number; sigma: number } | null, over: Partial<SpcParams> = {}): Rows {
  const harness = new SpcKernelHarness(params(over), 1);
  if (limits !== null) harness.setLimits(0, limits.cl, limits.sigma);
  return new Rows(harness.process(oneKey(values)));
}

function oneKey(values: readonly number[]): SpcInput {
  return { slots: new Uint32Array(values.length), values: Float64Array.from(values) };
}

class Rows {
  constructor(readonly data: Float64Array) {}
  get length(): number {
    return this.data.length / SPC_OUT_FIELDS;
  }
  at(i: number, field: number): number {
    return this.data[i * SPC_OUT_FIELDS + field];
  }
  column(field: number): number[] {
    return Array.from({ length: this.length }, (_, i) => this.at(i, field));
  }
  /** Records whose mask `field` has `bit`. */
  fired(field: number, bit: number): number[] {
    return this.column(field).flatMap((m, i) => ((m & bit) !== 0 ? [i] : []));
  }
  we(rule: number): number[] {
    return this.fired(C.we_mask, 1 << (rule - 1));
  }
  nelson(rule: number): number[] {
    return this.fired(C.nelson_mask, 1 << (rule - 1));
  }
}

/** The next double above x. */
function nextUp(x: number): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigInt64(0);
  view.setBigInt64(0, x >= 0 ? bits + 1n : bits - 1n);
  return x === 0 ? Number.MIN_VALUE : view.getFloat64(0);
}

function nextDown(x: number): number {
  return -nextUp(-x);
}

const repeat = (x: number, n: number): number[] => new Array<number>(n).fill(x);
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

// ---------------------------------------------------------------------------------------------

describe("spc kernel - layout and parameters", () => {
  const kernels = new SpcKernelHarness(params(), 1).kernels;

  it("kernel and operator agree on the state size, a multiple of 8 under 672 bytes", () => {
    expect(kernels.spcStateBytes()).toBe(layoutStateBytes());
    expect(layoutStateBytes() % 8).toBe(0);
    expect(layoutStateBytes()).toBeLessThanOrEqual(672);
  });

  it("output row: 16 fields, the issue's 15 in its order, then the moving-range rules", () => {
    expect(SPC_OUT_FIELDS).toBe(16);
    expect([...SPC_FIELDS]).toEqual([
      "cl",
      "ucl",
      "lcl",
      "sigma",
      "zone",
      "we_mask",
      "nelson_mask",
      "cusum_pos",
      "cusum_neg",
      "cusum_alarm",
      "ewma",
      "ewma_ucl",
      "ewma_lcl",
      "ewma_alarm",
      "limits_version",
      "mr_mask",
    ]);
  });

  it("defaults are valid and map to spcInit's argument order", () => {
    expect(validateSpcParams({ ...DEFAULT_SPC_PARAMS })).toEqual(DEFAULT_SPC_PARAMS);
    expect(spcInitArgs(DEFAULT_SPC_PARAMS)).toEqual([
      100,
      1,
      0.5,
      5,
      0.2,
      3,
      8,
      9,
      6,
      14,
      15,
      8,
      0,
      0,
      1,
      0,
      0,
      3 * Math.SQRT2,
      5,
      3,
      0,
      0,
    ]);
    expect(spcInitArgs({ ...DEFAULT_SPC_PARAMS, stepWindow: 10, stepLimit: 4.5 }).slice(-2)).toEqual([10, 4.5]);
  });

  it.each([
    ["baselineN", 1],
    ["baselineN", -1],
    ["baselineN", 2.5],
    ["sigmaMethod", "range"],
    ["stepWindow", 11],
    ["stepWindow", 2.5],
    ["cusumK", -0.1],
    ["cusumK", Infinity],
    ["cusumH", 0],
    ["ewmaLambda", 0],
    ["ewmaLambda", 1.5],
    ["ewmaLambda", NaN],
    ["ewmaL", 0],
    ["we4Run", 1],
    ["we4Run", 33],
    ["n2Run", 8.5],
    ["n3Run", 2],
    ["n4Run", 2],
    ["n7Run", 40],
    ["n8Run", 0],
  ] as const)("validateSpcParams rejects %s = %s with ConfigError", (name, value) => {
    const bad = { ...DEFAULT_SPC_PARAMS, [name]: value } as SpcParams;
    expect(() => validateSpcParams(bad)).toThrow(ConfigError);
    expect(() => spcInitArgs(bad)).toThrow(ConfigError);
  });

  it("limits and rebaseline counts are validated", () => {
    expect(() => validateSpcLimits(0, 1)).not.toThrow();
    for (const [cl, sigma] of [
      [NaN, 1],
      [0, 0],
      [0, -1],
      [0, Infinity],
      [Infinity, 1],
    ]) {
      expect(() => validateSpcLimits(cl, sigma)).toThrow(ConfigError);
    }
    expect(() => validateSpcRebaseline(2)).not.toThrow();
    for (const n of [0, 1, 2.5, NaN]) expect(() => validateSpcRebaseline(n)).toThrow(ConfigError);
  });

  it("rule metadata: numbers, mask bits, and WE1 = N1 ≈ 0.0027 (ARL 370)", () => {
    expect(WE_RULES.map((r) => [r.number, r.bit])).toEqual([
      [1, 1],
      [2, 2],
      [3, 4],
      [4, 8],
    ]);
    expect(NELSON_RULES.map((r) => [r.number, r.bit])).toEqual(range(1, 8).map((n) => [n, 1 << (n - 1)]));
    expect(WE_RULES[0].falseAlarmRate).toBeCloseTo(0.0027, 4);
    expect(1 / WE_RULES[0].falseAlarmRate).toBeCloseTo(370.4, 1);
    // The often-quoted one-sided window probabilities of the WE handbook's tests.
    expect(WE_RULES.map((r) => r.windowProbabilityOneSide)).toEqual([
      expect.closeTo(0.00135, 5),
      expect.closeTo(0.0015, 4),
      expect.closeTo(0.0028, 4),
      expect.closeTo(0.0039, 4),
    ]);
    expect(NELSON_RULES[4].falseAlarmRate).toBe(WE_RULES[1].falseAlarmRate);
    expect(NELSON_RULES[5].falseAlarmRate).toBe(WE_RULES[2].falseAlarmRate);
  });

  it("Euler zigzag numbers match OEIS A000111", () => {
    expect(range(0, 14).map(zigzagNumber)).toEqual([1, 1, 1, 2, 5, 16, 61, 272, 1385, 7936, 50521, 353792, 2702765, 22368256, 199360981]);
  });
});

// ---------------------------------------------------------------------------------------------
// Hand-built cases, limits cl = 0, σ = 1 unless said otherwise.

const UNIT = { cl: 0, sigma: 1 };

describe("spc kernel - zones and boundaries", () => {
  it.each([
    { cl: 0, sigma: 1 },
    { cl: 10, sigma: 0.1 },
    { cl: -3.7, sigma: 0.3 },
    { cl: 1e6, sigma: 1e-3 },
  ])("x = cl ± k·σ is not beyond kσ, the next double out is (cl $cl, σ $sigma)", ({ cl, sigma }) => {
    const xs: number[] = [];
    const want: number[] = [];
    for (const k of [1, 2, 3]) {
      xs.push(cl + k * sigma, nextUp(cl + k * sigma), cl - k * sigma, nextDown(cl - k * sigma));
      want.push(k, k + 1, -k, -(k + 1));
    }
    xs.push(cl, NaN, nextUp(cl), nextDown(cl));
    want.push(0, 0, 1, -1);
    const rows = run(xs, { cl, sigma });
    expect(rows.column(C.zone)).toEqual(want);
    // WE1 / N1 fires exactly at the two points beyond 3σ.
    expect(rows.we(1)).toEqual([9, 11]);
    expect(rows.nelson(1)).toEqual([9, 11]);
  });

  it("before a key has limits every field is null but limits_version = 0", () => {
    const rows = run([1, 2, 3, 100], null);
    for (let i = 0; i < 4; i++) {
      for (let f = 0; f < SPC_OUT_FIELDS; f++) if (f !== C.limits_version) expect(rows.at(i, f), `record ${i} ${SPC_FIELDS[f]}`).toBeNaN();
      expect(rows.at(i, C.limits_version)).toBe(0);
    }
  });

  it("limits row: cl, ucl = cl + 3σ, lcl = cl − 3σ, σ, version 1", () => {
    const rows = run([0.1], { cl: 10, sigma: 0.1 });
    expect([0, 1, 2, 3].map((f) => rows.at(0, f))).toEqual([10, 10 + 3 * 0.1, 10 - 3 * 0.1, 0.1]);
    expect(rows.at(0, C.limits_version)).toBe(1);
  });
});

describe("spc kernel - Western Electric and Nelson rules", () => {
  it("WE2 = N5: 2 of 3 beyond 2σ on one side, the newest among them", () => {
    expect(run([2.5, 0, 2.5], UNIT).we(2)).toEqual([2]);
    expect(run([0, 2.5, 2.5], UNIT).we(2)).toEqual([2]);
    expect(run([-2.5, -0.5, -2.1], UNIT).we(2)).toEqual([2]);
    // Same side counts even with an opposite point between.
    expect(run([2.5, -2.5, 2.5], UNIT).we(2)).toEqual([2]);
    // The newest point must itself be beyond 2σ.
    expect(run([0, 2.5, 2.5, 0], UNIT).we(2)).toEqual([2]);
    // One per side is not two on one side.
    expect(run([-2.5, 0, 2.5], UNIT).we(2)).toEqual([]);
    // Beyond 3σ counts as beyond 2σ.
    const rows = run([3.5, 0, 2.5], UNIT);
    expect(rows.we(2)).toEqual([2]);
    expect(rows.nelson(5)).toEqual([2]);
  });

  it("WE2: exactly 2σ is not beyond 2σ", () => {
    expect(run([2, 2, 2, 2], UNIT).we(2)).toEqual([]);
    expect(run([2, nextUp(2), nextUp(2)], UNIT).we(2)).toEqual([2]);
  });

  it("WE2: nothing before its window of 3 is full", () => {
    expect(run([2.5, 2.5], UNIT).we(2)).toEqual([]);
    expect(run([2.5, 2.5, 2.5], UNIT).we(2)).toEqual([2]);
  });

  it("WE3 = N6: 4 of 5 beyond 1σ on one side, the newest among them", () => {
    expect(run([1.5, 1.5, 0, 1.5, 1.5], UNIT).we(3)).toEqual([4]);
    expect(run([0, 1.5, 2.5, 3.5, 1.5], UNIT).we(3)).toEqual([4]);
    expect(run([-1.5, -1.5, -1.5, 0.5, -1.5], UNIT).nelson(6)).toEqual([4]);
    // Newest not beyond 1σ: no signal at record 4; at record 3 the window is not full.
    expect(run([1.5, 1.5, 1.5, 1.5, 0.5], UNIT).we(3)).toEqual([]);
    // Exactly 1σ is not beyond.
    expect(run([1, 1.5, 1.5, 0.5, 1.5], UNIT).we(3)).toEqual([]);
    expect(run([nextUp(1), 1.5, 1.5, 0.5, 1.5], UNIT).we(3)).toEqual([4]);
    // 3 up and 1 down beyond 1σ is not 4 on one side.
    expect(run([1.5, -1.5, 1.5, 0, 1.5], UNIT).we(3)).toEqual([]);
  });

  it("WE4: a run of 10 on one side fires at the 8th, 9th and 10th; N2 at the 9th and 10th", () => {
    const rows = run([...repeat(0.5, 10), -0.1], UNIT);
    expect(rows.we(4)).toEqual([7, 8, 9]);
    expect(rows.nelson(2)).toEqual([8, 9]);
    const below = run(repeat(-2.9, 10), UNIT);
    expect(below.we(4)).toEqual([7, 8, 9]);
    expect(below.nelson(2)).toEqual([8, 9]);
  });

  it("WE4 / N2: a centre-line point or NaN breaks the run; run lengths are parameters", () => {
    expect(run([...repeat(0.5, 7), 0, ...repeat(0.5, 7)], UNIT).we(4)).toEqual([]);
    expect(run([...repeat(0.5, 7), NaN, ...repeat(0.5, 7)], UNIT).we(4)).toEqual([]);
    expect(run([...repeat(0.5, 7), -0.5, ...repeat(0.5, 8)], UNIT).we(4)).toEqual([15]);
    const rows = run(repeat(1e-9, 5), UNIT, { we4Run: 3, n2Run: 5 });
    expect(rows.we(4)).toEqual([2, 3, 4]);
    expect(rows.nelson(2)).toEqual([4]);
  });

  it("N3: 6 points steadily increasing or decreasing; ties and NaN break it, the centre line does not", () => {
    expect(run([-1, -0.6, -0.2, 0.2, 0.6, 1, 1.4], UNIT).nelson(3)).toEqual([5, 6]);
    expect(run([2, 1.5, 1, 0.5, 0, -0.5], UNIT).nelson(3)).toEqual([5]);
    expect(run([0.1, 0.2, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7], UNIT).nelson(3)).toEqual([7]);
    expect(run([1, 2, 3, NaN, 4, 5, 6, 7, 8, 9], { cl: 0, sigma: 100 }).nelson(3)).toEqual([9]);
    // A point exactly on cl is still a value in a trend.
    expect(run([-0.3, -0.2, -0.1, 0, 0.1, 0.2], UNIT).nelson(3)).toEqual([5]);
    // Up 5, then down: the turning point starts a new run.
    expect(run([1, 2, 3, 4, 5, 4, 3, 2, 1, 0], { cl: 0, sigma: 100 }).nelson(3)).toEqual([9]);
    expect(run([1, 2, 3, 4, 5], { cl: 0, sigma: 100 }).nelson(3)).toEqual([]);
  });

  it("N4: 14 points alternating up and down; a zero step or NaN breaks it", () => {
    const zigzag = (n: number): number[] => Array.from({ length: n }, (_, i) => (i % 2 === 0 ? 0.5 : -0.5) + i * 1e-3);
    expect(run(zigzag(15), UNIT).nelson(4)).toEqual([13, 14]);
    expect(run(zigzag(13), UNIT).nelson(4)).toEqual([]);
    // Records 5 and 6 equal; an alternation of 15 points follows from record 6.
    const flat = [...zigzag(6), zigzag(6)[5], ...Array.from({ length: 14 }, (_, j) => (j % 2 === 0 ? 0.7 : -0.7) + j * 1e-3)];
    expect(run(flat, UNIT).nelson(4)).toEqual([19, 20]);
    const gap = zigzag(20);
    gap[3] = NaN;
    expect(run(gap, UNIT).nelson(4)).toEqual([17, 18, 19]);
  });

  it("N7: 15 points within 1σ (|zone| = 1); exactly 1σ is within, a centre-line point breaks it", () => {
    expect(run([...repeat(0.5, 8), ...repeat(-1, 8)], UNIT).nelson(7)).toEqual([14, 15]);
    expect(run([...repeat(0.5, 14), 0, ...repeat(0.5, 14)], UNIT).nelson(7)).toEqual([]);
    expect(run([...repeat(0.5, 14), nextUp(1), ...repeat(0.5, 15)], UNIT).nelson(7)).toEqual([29]);
    expect(run([...repeat(0.5, 14), NaN, ...repeat(0.5, 14)], UNIT).nelson(7)).toEqual([]);
  });

  it("N8: 8 points beyond 1σ, sides may mix; exactly 1σ or the centre line breaks it", () => {
    expect(run([1.5, -1.5, 2.5, -3.5, 1.5, -1.5, 1.5, -1.5, 1.1], UNIT).nelson(8)).toEqual([7, 8]);
    expect(run([1.5, -1.5, 2.5, -1, 1.5, -1.5, 1.5, -1.5, 1.1], UNIT).nelson(8)).toEqual([]);
    expect(run([...repeat(1.5, 7), 0, ...repeat(-1.5, 7)], UNIT).nelson(8)).toEqual([]);
    expect(run(repeat(-1.5, 7), UNIT).nelson(8)).toEqual([]);
  });

  it("every mask bit is its rule's: one record can fire several", () => {
    // 8 points beyond 3σ above: WE1, WE2, WE3, WE4 and N1, N5, N6, N8 at record 7.
    const rows = run(repeat(3.5, 8), UNIT);
    expect(rows.at(7, C.we_mask)).toBe(0b1111);
    expect(rows.at(7, C.nelson_mask)).toBe(0b10110001);
  });

  it("a NaN record: zone 0, no rule fires, runs restart after it, k-of-m windows count it as not beyond", () => {
    const rows = run([...repeat(3.5, 8), NaN, 3.5], UNIT);
    expect(rows.at(8, C.zone)).toBe(0);
    expect(rows.at(8, C.we_mask)).toBe(0);
    expect(rows.at(8, C.nelson_mask)).toBe(0);
    // Record 9: WE1; WE2 (records 7, 9 of 7..9); WE3 (5, 6, 7, 9 of 5..9); no WE4 / N8 (run broken).
    expect(rows.at(9, C.we_mask)).toBe(0b0111);
    expect(rows.at(9, C.nelson_mask)).toBe(0b00110001);
  });
});

describe("spc kernel - baseline and limits changes", () => {
  const sample = [2, 4, 4, 4, 5, 5, 7, 9];

  it("baseline sigma by std: mean 5, sample std √(32/7); records 0..N−1 are null", () => {
    const rows = run([...sample, 5, 12], null, { baselineN: 8, sigmaMethod: "std" });
    for (let i = 0; i < 8; i++) {
      expect(rows.at(i, C.cl)).toBeNaN();
      expect(rows.at(i, C.limits_version)).toBe(0);
    }
    const sigma = Math.sqrt(32 / 7);
    expect(rows.at(8, C.cl)).toBe(5);
    expect(rows.at(8, C.sigma)).toBeCloseTo(sigma, 14);
    expect(rows.at(8, C.ucl)).toBeCloseTo(5 + 3 * sigma, 13);
    expect(rows.at(8, C.lcl)).toBeCloseTo(5 - 3 * sigma, 13);
    expect(rows.at(8, C.limits_version)).toBe(1);
    expect(rows.at(8, C.zone)).toBe(0);
    expect(rows.at(9, C.zone)).toBe(4); // 12 − 5 = 7 > 3·2.138
  });

  it("baseline sigma by mr: mean moving range 7/7 = 1, σ = 1/1.128", () => {
    const rows = run([...sample, 5], null, { baselineN: 8, sigmaMethod: "mr" });
    expect(rows.at(8, C.cl)).toBe(5);
    expect(rows.at(8, C.sigma)).toBe(1 / 1.128);
  });

  it("the first windows include the baseline's records, zoned with the new limits", () => {
    // Baseline 1..6: cl 3.5, σ = (5/5)/1.128. Record 6 = 7 continues a rise of 7 points (N3),
    // is beyond 3σ (WE1) and makes 2 of 3 beyond 2σ with the baseline's 6 (WE2).
    const rows = run([1, 2, 3, 4, 5, 6, 7], null, { baselineN: 6 });
    expect(rows.at(5, C.cl)).toBeNaN();
    expect(rows.at(6, C.cl)).toBe(3.5);
    expect(rows.at(6, C.sigma)).toBe(1 / 1.128);
    expect(rows.at(6, C.we_mask)).toBe(0b0011);
    expect(rows.at(6, C.nelson_mask)).toBe(0b00010101);
  });

  it("NaN records do not count towards the baseline nor its moving ranges", () => {
    const rows = run([1, NaN, 3, NaN, 5, 4], null, { baselineN: 3, sigmaMethod: "mr" });
    expect(rows.at(4, C.cl)).toBeNaN();
    expect(rows.at(5, C.cl)).toBe(3);
    expect(rows.at(5, C.sigma)).toBe(2 / 1.128);
  });

  it("a constant baseline gives σ = 0: equal values sit on the centre line, any other is beyond 3σ", () => {
    const rows = run([...repeat(0.1, 5), 0.1, 0.1000001, 0.0999999], null, { baselineN: 5, sigmaMethod: "std" });
    expect([rows.at(5, C.cl), rows.at(5, C.sigma)]).toEqual([0.1, 0]);
    expect(rows.column(C.zone).slice(5)).toEqual([0, 4, -4]);
  });

  it("spcSetLimits re-zones the history and bumps the version", () => {
    const harness = new SpcKernelHarness(params(), 1);
    harness.setLimits(0, 0, 1);
    const before = new Rows(harness.process(oneKey(repeat(0.5, 7))));
    expect(before.column(C.zone)).toEqual(repeat(1, 7));
    expect(before.we(4)).toEqual([]);
    // New centre line 1: the seven 0.5s are now below it, so the next 0.5 completes 8 below.
    harness.setLimits(0, 1, 1);
    const after = new Rows(harness.process(oneKey([0.5, 0.5, 1.5])));
    expect(after.column(C.zone)).toEqual([-1, -1, 1]);
    expect(after.we(4)).toEqual([0, 1]);
    expect(after.column(C.limits_version)).toEqual([2, 2, 2]);
    expect(after.column(C.cl)).toEqual([1, 1, 1]);
  });

  it("spcSetLimits cancels the baseline in progress", () => {
    const harness = new SpcKernelHarness(params({ baselineN: 5 }), 1);
    const first = new Rows(harness.process(oneKey([1, 2])));
    expect(first.column(C.limits_version)).toEqual([0, 0]);
    harness.setLimits(0, 0, 1);
    const rows = new Rows(harness.process(oneKey(range(3, 12))));
    expect(rows.column(C.limits_version)).toEqual(repeat(1, 10));
    expect(rows.column(C.cl)).toEqual(repeat(0, 10));
  });

  it("spcRebaseline keeps the old limits until the new baseline completes, then version + 1", () => {
    const harness = new SpcKernelHarness(params({ sigmaMethod: "std" }), 1);
    harness.setLimits(0, 0, 1);
    harness.process(oneKey([0.1, -0.2, 0.3]));
    harness.rebaseline(0, 4);
    const rows = new Rows(harness.process(oneKey([10, NaN, 12, 10, 12, 11, 13])));
    expect(rows.column(C.cl).slice(0, 5)).toEqual(repeat(0, 5));
    expect(rows.column(C.limits_version)).toEqual([1, 1, 1, 1, 1, 2, 2]);
    expect(rows.we(1)).toEqual([0, 2, 3, 4]);
    expect(rows.at(5, C.cl)).toBe(11);
    expect(rows.at(5, C.sigma)).toBeCloseTo(Math.sqrt(4 / 3), 15);
    // CUSUM and EWMA restarted with the new limits: x = cl gives C± = 0, z = cl.
    expect([rows.at(5, C.cusum_pos), rows.at(5, C.cusum_neg), rows.at(5, C.ewma)]).toEqual([0, 0, 11]);
    expect(rows.at(5, C.zone)).toBe(0);
    // The history (10, 12, 10, 12, 11) is re-zoned: 13 is beyond 1σ = 1.155, the 12s are within.
    expect(rows.column(C.zone).slice(5)).toEqual([0, 2]);
  });

  it("rebaselining twice restarts the collection", () => {
    const harness = new SpcKernelHarness(params({ sigmaMethod: "std", baselineN: 3 }), 1);
    const rows1 = new Rows(harness.process(oneKey([100, 200])));
    harness.rebaseline(0, 2);
    const rows2 = new Rows(harness.process(oneKey([1, 3, 2])));
    expect(rows1.column(C.limits_version)).toEqual([0, 0]);
    expect(rows2.column(C.limits_version)).toEqual([0, 0, 1]);
    expect([rows2.at(2, C.cl), rows2.at(2, C.sigma)]).toEqual([2, Math.SQRT2]);
  });
});

describe("spc kernel - CUSUM and EWMA", () => {
  it("tabular CUSUM, k 0.5, h 5: hand-computed C⁺ and C⁻, alarm when C⁺ > 5, no reset", () => {
    const rows = run([1, 2, -1, 3, 3, -2, 0], UNIT);
    // C⁺ = max(0, x − 0.5 + C⁺): 0.5, 2, 0.5, 3, 5.5, 3, 2.5
    // C⁻ = max(0, −0.5 − x + C⁻): 0, 0, 0.5, 0, 0, 1.5, 1
    expect(rows.column(C.cusum_pos)).toEqual([0.5, 2, 0.5, 3, 5.5, 3, 2.5]);
    expect(rows.column(C.cusum_neg)).toEqual([0, 0, 0.5, 0, 0, 1.5, 1]);
    expect(rows.column(C.cusum_alarm)).toEqual([0, 0, 0, 0, 1, 0, 0]);
  });

  it("CUSUM in data units: K = kσ, H = hσ (cl 10, σ 2, k 1, h 2); C = H is not an alarm", () => {
    const rows = run([13, 13, 12, 6, 6, 7], { cl: 10, sigma: 2 }, { cusumK: 1, cusumH: 2 });
    // C⁺ = max(0, x − 12 + C⁺): 1, 2, 2, 0, 0, 0;  C⁻ = max(0, 8 − x + C⁻): 0, 0, 0, 2, 4, 5.
    expect(rows.column(C.cusum_pos)).toEqual([1, 2, 2, 0, 0, 0]);
    expect(rows.column(C.cusum_neg)).toEqual([0, 0, 0, 2, 4, 5]);
    expect(rows.column(C.cusum_alarm)).toEqual([0, 0, 0, 0, 0, 1]);
  });

  it("EWMA λ 0.5, L 3: z and the exact time-varying limits 3·√(1/3·(1 − 0.25^i))", () => {
    const rows = run([2, 2, 4, NaN, -4], UNIT, { ewmaLambda: 0.5, ewmaL: 3 });
    const half = (i: number): number => 3 * Math.sqrt((1 / 3) * (1 - 0.25 ** i));
    const z = [1, 1.5, 2.75, 2.75, -0.625];
    const i = [1, 2, 3, 3, 4]; // a NaN record does not advance i
    for (let r = 0; r < 5; r++) {
      expect(rows.at(r, C.ewma), `record ${r}`).toBe(z[r]);
      expect(rows.at(r, C.ewma_ucl)).toBeCloseTo(half(i[r]), 14);
      expect(rows.at(r, C.ewma_lcl)).toBeCloseTo(-half(i[r]), 14);
    }
    // half: 1.5, 1.677, 1.718, 1.718, 1.728
    expect(rows.column(C.ewma_alarm)).toEqual([0, 0, 1, 1, 0]);
  });

  it("EWMA defaults λ 0.2, L 3: limits 0.6 then 3·√(0.5904/9) at records 1 and 2", () => {
    const rows = run([1, 1], UNIT);
    expect(rows.column(C.ewma)).toEqual([0.2, 0.2 * 1 + 0.8 * 0.2]);
    expect(rows.at(0, C.ewma_ucl)).toBeCloseTo(0.6, 14);
    expect(rows.at(1, C.ewma_ucl)).toBeCloseTo(3 * Math.sqrt(0.5904 / 9), 14);
    expect(rows.column(C.ewma_alarm)).toEqual([0, 0]);
  });

  it("EWMA alarm when z is strictly outside; limits widen towards L·σ·√(λ/(2 − λ))", () => {
    const rows = run(repeat(0.75, 200), UNIT);
    expect(rows.at(0, C.ewma_alarm)).toBe(0); // z = 0.15 < 0.6
    const last = rows.length - 1;
    expect(rows.at(last, C.ewma_ucl)).toBeCloseTo(3 * Math.sqrt(0.2 / 1.8), 12);
    expect(rows.at(last, C.ewma_alarm)).toBe(0); // z → 0.75 < 1.0
    const high = run(repeat(1.5, 200), UNIT);
    expect(high.at(last, C.ewma_alarm)).toBe(1);
  });

  it("NaN records leave CUSUM, EWMA and the baseline exactly as they were", () => {
    const rng = new SeededRandom(5);
    const clean = Array.from({ length: 300 }, () => 3 + rng.normal());
    const holed: number[] = [];
    const where: number[] = [];
    clean.forEach((x, i) => {
      if (i % 17 === 3) holed.push(NaN);
      where.push(holed.length);
      holed.push(x);
    });
    for (const sigmaMethod of ["std", "mr"] as const) {
      const a = run(clean, null, { baselineN: 40, sigmaMethod });
      const b = run(holed, null, { baselineN: 40, sigmaMethod });
      for (let i = 40; i < clean.length; i++) {
        for (const f of [C.cl, C.sigma, C.cusum_pos, C.cusum_neg, C.ewma, C.ewma_ucl, C.limits_version]) {
          expect(b.at(where[i], f), `record ${i} ${SPC_FIELDS[f]}`).toBe(a.at(i, f));
        }
      }
    }
  });
});

describe("spc kernel - CUSUM at its edges", () => {
  // C⁺ and C⁻ advance side by side and are clamped into [0, cap·H] by lane masks: readings at ±∞
  // (C± = ∞, and ∞ − ∞ = NaN, which stays), ±0 and exactly cl ± K (C± at +0 or −0), σ = 0 and
  // huge σ, with and without a ceiling, k = 0; runs of one key and keys interleaved. Every field
  // bit for bit as the reference gives it.
  it.each([
    { cusumCap: 0, cusumK: 0.5 },
    { cusumCap: 2, cusumK: 0.5 },
    { cusumCap: 1.5, cusumK: 0 },
  ])("readings at ±∞, ±0, cl ± K and NaN under σ 0, 1 and 1e300: %o", (over) => {
    const rng = new SeededRandom(77);
    const keys = 6;
    const p = params({ ...over, stepWindow: 0 });
    const harness = new SpcKernelHarness(p, keys, { chunkRecordsMax: 257 });
    const refs = Array.from({ length: keys }, () => new SpcReference(p));
    const limits = [
      { cl: 0, sigma: 1 },
      { cl: 5, sigma: 0 },
      { cl: -2, sigma: 1e300 },
      { cl: 0, sigma: 0 },
      { cl: 1, sigma: 1 },
      { cl: 0, sigma: 1 },
    ];
    limits.forEach(({ cl, sigma }, k) => {
      harness.setLimits(k, cl, sigma);
      refs[k].setLimits(cl, sigma);
    });
    const n = 20_000;
    const slots = new Uint32Array(n);
    const values = new Float64Array(n);
    for (let i = 0; i < n; ) {
      const k = rng.int(0, keys - 1);
      const { cl, sigma } = limits[k];
      const K = p.cusumK * sigma;
      const edges = [Infinity, -Infinity, Number.NaN, 0, -0, cl + K, cl - K, cl, 1e308, -1e308];
      for (let run = rng.int(1, 30); run > 0 && i < n; run--, i++) {
        slots[i] = k;
        values[i] = rng.next() < 0.3 ? edges[rng.int(0, edges.length - 1)] : cl + sigma * rng.normal() * (rng.next() < 0.2 ? 4 : 1);
      }
    }
    const rows = harness.process({ slots, values });
    const checker = new RowChecker();
    const seen = { nan: 0, zero: 0, negativeZero: 0, infinite: 0, ceiling: 0 };
    for (let i = 0; i < n; i++) {
      const want = refs[slots[i]].push(values[i], Number.NaN);
      checker.check(rows.subarray(i * SPC_OUT_FIELDS, (i + 1) * SPC_OUT_FIELDS), want, p, `record ${i} (key ${slots[i]}, x ${values[i]})`);
      const { sigma } = limits[slots[i]];
      for (const c of [want[C.cusum_pos], want[C.cusum_neg]]) {
        if (Number.isNaN(c)) seen.nan += 1;
        else if (Object.is(c, -0)) seen.negativeZero += 1;
        else if (c === 0) seen.zero += 1;
        else if (!Number.isFinite(c)) seen.infinite += 1;
        else if (p.cusumCap > 0 && c === p.cusumCap * p.cusumH * sigma) seen.ceiling += 1;
      }
    }
    checker.expectClean();
    expect(seen.zero).toBeGreaterThan(100);
    // Without a ceiling ∞ stays and ∞ − ∞ gives NaN; with one, C± stops at cap·H·σ instead.
    if (p.cusumCap === 0)
      expect(
        [seen.nan, seen.infinite].every((c) => c > 100),
        JSON.stringify(seen),
      ).toBe(true);
    else expect(seen.ceiling, JSON.stringify(seen)).toBeGreaterThan(100);
  });
});

describe("spc kernel - batches", () => {
  it("an empty batch (n = 0) returns 0 and changes nothing", () => {
    const harness = new SpcKernelHarness(params(), 2);
    const { layout } = harness;
    expect(harness.kernels.spcProcess(layout.stateBase, layout.stateStride, layout.slots, layout.times, layout.values, 0, layout.out)).toBe(
      0,
    );
    expect(new Rows(harness.process(oneKey([1]))).at(0, C.limits_version)).toBe(0);
  });

  it("a stream split anywhere gives the same rows (state carries across spcProcess calls)", () => {
    const stream = randomSpcStream(new SeededRandom(42), 5, 3000, 0.02);
    const p = params({ baselineN: 30, we4Run: 4, n3Run: 4, n4Run: 5 });
    const whole = new SpcKernelHarness(p, 5, { chunkRecordsMax: 3000 }).process(stream.input);
    const single = new SpcKernelHarness(p, 5, { chunkRecordsMax: 1 }).process(stream.input);
    const odd = new SpcKernelHarness(p, 5, { chunkRecordsMax: 17 }).process(stream.input);
    expect(single).toEqual(whole);
    expect(odd).toEqual(whole);
  });
});

// ---------------------------------------------------------------------------------------------
// Kernel = reference.

describe("spc kernel - seeded random streams vs reference", () => {
  it.each([1, 2, 3, 4])("seed %i: 16 keys, random parameters, limit changes and rebaselines between chunks", (seed) => {
    const rng = new SeededRandom(1000 + seed);
    const keys = 16;
    const keyParams = Array.from({ length: keys }, () => randomParams(rng));
    const stream = randomSpcStream(rng, keys, 40_000, 0.01);
    const harness = new SpcKernelHarness(keyParams, keys, { chunkRecordsMax: 512 });
    const refs = keyParams.map((p) => new SpcReference(p));
    const checker = new RowChecker();
    // A quarter of the keys have limits before their first record, so windows fill under limits.
    for (let k = 0; k < keys; k += 4) {
      const { cl, sigma } = stream.randomLimits(rng, k);
      harness.setLimits(k, cl, sigma);
      refs[k].setLimits(cl, sigma);
    }
    let first = 0;
    while (first < stream.input.values.length) {
      const m = Math.min(rng.int(1, 512), stream.input.values.length - first);
      for (let ops = rng.int(0, 3); ops > 0; ops--) {
        const k = rng.int(0, keys - 1);
        if (rng.next() < 0.5) {
          const { cl, sigma } = stream.randomLimits(rng, k);
          harness.setLimits(k, cl, sigma);
          refs[k].setLimits(cl, sigma);
        } else {
          const n = rng.int(2, 60);
          harness.rebaseline(k, n);
          refs[k].rebaseline(n);
        }
      }
      const chunk = {
        slots: stream.input.slots.subarray(first, first + m),
        values: stream.input.values.subarray(first, first + m),
        times: (stream.input.times as Float64Array).subarray(first, first + m),
      };
      const rows = harness.process(chunk);
      for (let i = 0; i < m; i++) {
        const k = chunk.slots[i];
        checker.check(
          rows.subarray(i * SPC_OUT_FIELDS, (i + 1) * SPC_OUT_FIELDS),
          refs[k].push(chunk.values[i], chunk.times[i]),
          keyParams[k],
          `record ${first + i} (key ${k}, x ${chunk.values[i]})`,
        );
      }
      first += m;
    }
    checker.expectClean();
    // Every rule, both alarms and several versions occurred, so the comparison was not vacuous.
    expect(
      checker.weFired.every((c) => c > 50),
      `WE firings ${checker.weFired}`,
    ).toBe(true);
    expect(
      checker.nelsonFired.every((c) => c > 50),
      `Nelson firings ${checker.nelsonFired}`,
    ).toBe(true);
    expect(
      checker.mrFired.every((c) => c > 50),
      `moving-range firings ${checker.mrFired}`,
    ).toBe(true);
    expect(Math.min(...checker.alarms)).toBeGreaterThan(100);
    expect(checker.maxVersion).toBeGreaterThan(3);
  });
});

const NAB_SERIES = [
  "realAWSCloudwatch/ec2_cpu_utilization_825cc2.csv",
  "realAWSCloudwatch/rds_cpu_utilization_e47b3b.csv",
  "realTraffic/speed_6005.csv",
  "realTraffic/occupancy_6005.csv",
  "realTweets/Twitter_volume_AAPL.csv",
  "realAdExchange/exchange-2_cpc_results.csv",
  "artificialNoAnomaly/art_flatline.csv",
  "artificialWithAnomaly/art_daily_jumpsup.csv",
];

describe.each(NAB_SERIES)("spc kernel - NAB series %s", (file) => {
  it.each(["std", "mr"] as const)("baseline 100, sigma by %s, a rebaseline of 200 at the middle: every row vs reference", (sigmaMethod) => {
    const values = readNabValues(join(NAB_DIR, file));
    const p = params({ baselineN: 100, sigmaMethod });
    const harness = new SpcKernelHarness(p, 1);
    const ref = new SpcReference(p);
    const half = Math.floor(values.length / 2);
    const rows = harness.process(oneKey(values.slice(0, half)));
    harness.rebaseline(0, 200);
    const rest = harness.process(oneKey(values.slice(half)));
    const all = new Float64Array(rows.length + rest.length);
    all.set(rows);
    all.set(rest, rows.length);
    const checker = new RowChecker();
    values.forEach((x, i) => {
      if (i === half) ref.rebaseline(200);
      checker.check(all.subarray(i * SPC_OUT_FIELDS, (i + 1) * SPC_OUT_FIELDS), ref.push(x), p, `record ${i} (x ${x})`);
    });
    checker.expectClean();
    expect(checker.maxVersion).toBe(2);
  });
});

// ---------------------------------------------------------------------------------------------
// The reference's limits against exact arithmetic, so that agreement above means correct limits.

describe("spc kernel - zone masks, branch-free runs and the EWMA decay floor", () => {
  // The EWMA decay (1 − λ)^{2i} stops at 2^−54, where 1 − decay is already 1: the limits must be
  // the bits of the plain running product's, which sinks into the subnormals; (1 − λ)² just above
  // and just below ½ (λ 0.29, 0.3) stick at the smallest subnormal or reach 0.
  it.each([0.05, 0.2, 0.29, 0.3, 0.5, 0.9, 1])(
    "λ %f: EWMA limits are cl ± L·σ·√(λ/(2 − λ)·(1 − d)), d the running product of (1 − λ)², bit for bit",
    (lambda) => {
      const p = params({ ewmaLambda: lambda, ewmaL: 2.7 });
      const harness = new SpcKernelHarness(p, 1);
      const rng = new SeededRandom(Math.round(lambda * 1000));
      const r = 1 - lambda;
      let checked = 0;
      for (const [cl, sigma] of [
        [5, 1.5],
        [6, 0.75],
      ]) {
        harness.setLimits(0, cl, sigma);
        const values = Array.from({ length: 4000 }, () => (rng.next() < 0.02 ? Number.NaN : cl + sigma * rng.normal()));
        const rows = harness.process(oneKey(values));
        let decay = 1;
        values.forEach((x, i) => {
          if (!Number.isNaN(x)) decay *= r * r;
          const half = p.ewmaL * sigma * Math.sqrt((lambda / (2 - lambda)) * (1 - decay));
          const row = rows.subarray(i * SPC_OUT_FIELDS, (i + 1) * SPC_OUT_FIELDS);
          if (Object.is(row[C.ewma_ucl], cl + half) && Object.is(row[C.ewma_lcl], cl - half)) checked += 1;
        });
      }
      expect(checked).toBe(8000);
    },
  );

  // Points exactly on cl and on cl ± kσ, NaN runs, σ = 0, limits changed every few records (the
  // masks and run counters rebuilt from the history), rebaselines: every row the reference's.
  it.each([1, 2, 3])("seed %i: threshold points, NaN runs, σ = 0 and limits changed every few records against the reference", (seed) => {
    const rng = new SeededRandom(5000 + seed);
    const keys = 8;
    const keyParams = Array.from({ length: keys }, () => randomParams(rng));
    const harness = new SpcKernelHarness(keyParams, keys, { chunkRecordsMax: 97 });
    const refs = keyParams.map((p) => new SpcReference(p));
    const limits = Array.from({ length: keys }, () => ({ cl: rng.int(-5, 5), sigma: 1 }));
    const nanLeft = new Array<number>(keys).fill(0);
    const checker = new RowChecker();
    let t = 0;
    for (let first = 0; first < 30_000; first += 97) {
      for (let ops = rng.int(0, 4); ops > 0; ops--) {
        const k = rng.int(0, keys - 1);
        if (rng.next() < 0.85) {
          limits[k] = { cl: rng.int(-5, 5) + (rng.next() < 0.5 ? 0 : 0.25), sigma: [0, 0.5, 1, 2, 0.1][rng.int(0, 4)] };
          harness.setLimits(k, limits[k].cl, limits[k].sigma);
          refs[k].setLimits(limits[k].cl, limits[k].sigma);
        } else {
          const n = rng.int(2, 40);
          harness.rebaseline(k, n);
          refs[k].rebaseline(n);
        }
      }
      const slots = new Uint32Array(97);
      const values = new Float64Array(97);
      const times = new Float64Array(97);
      for (let i = 0; i < 97; i++) {
        const k = rng.int(0, keys - 1);
        if (nanLeft[k] === 0 && rng.next() < 0.03) nanLeft[k] = rng.int(1, 6);
        const { cl, sigma } = limits[k];
        let x = cl + rng.int(-4, 4) * sigma; // on the centre line or a threshold, as the kernel computes it
        if (rng.next() < 0.3) x = cl + sigma * rng.normal() * 2;
        if (nanLeft[k] > 0) {
          nanLeft[k] -= 1;
          x = Number.NaN;
        }
        t += rng.next() < 0.003 ? rng.uniform(5, 40) : rng.next();
        slots[i] = k;
        values[i] = x;
        times[i] = t;
      }
      const rows = harness.process({ slots, values, times });
      for (let i = 0; i < 97; i++) {
        const k = slots[i];
        checker.check(
          rows.subarray(i * SPC_OUT_FIELDS, (i + 1) * SPC_OUT_FIELDS),
          refs[k].push(values[i], times[i]),
          keyParams[k],
          `record ${first + i} (key ${k}, x ${values[i]})`,
        );
      }
    }
    checker.expectClean();
    expect(checker.weFired[1] + checker.weFired[2]).toBeGreaterThan(100); // WE2 and WE3, the masks' rules, fired
    expect(checker.maxVersion).toBeGreaterThan(50);
  });
});

describe("spc kernel - reference self-check", () => {
  // Tolerances: 1e-13 of the result, plus for the std 4 ulps of the mean — the conditioning term
  // of any one-pass method (a rounding of the running mean, ε·|x̄|, moves every deviation).
  it("Welford mean and std of the baseline within 1e-13 (+ 4ε·|mean|) of exact (BigInt) on NAB and random baselines", () => {
    const rng = new SeededRandom(77);
    const sets: number[][] = [];
    for (const file of NAB_SERIES) {
      const values = readNabValues(join(NAB_DIR, file));
      sets.push(values.slice(0, 100), values.slice(1000, 1500));
    }
    for (const level of [0, 1, 625.3, 1e4]) {
      for (const n of [2, 3, 10, 1000]) sets.push(Array.from({ length: n }, () => level + rng.normal() * (1 + rng.next() * 10)));
    }
    for (const set of sets) {
      const { cl, sigma } = baselineLimits(set, "std");
      const exact = exactMeanAndStd(set);
      expect(Math.abs(cl - exact.mean), `mean of ${set.length}`).toBeLessThanOrEqual(1e-13 * Math.max(Math.abs(exact.mean), exact.std));
      expect(Math.abs(sigma - exact.std), `std of ${set.length}`).toBeLessThanOrEqual(
        1e-13 * exact.std + 4 * Number.EPSILON * Math.abs(exact.mean),
      );
    }
  });

  it("mr sigma of a hand-computed set", () => {
    expect(baselineLimits([2, 4, 4, 4, 5, 5, 7, 9], "mr")).toEqual({ cl: 5, sigma: 1 / 1.128 });
  });
});

// ---------------------------------------------------------------------------------------------
// False-alarm rates on an in-control normal series, limits fixed at cl 0, σ 1.

describe("spc kernel - moving-range rules: JUMP, NOISY, STUCK", () => {
  it("each fires at the reading that completes its pattern; NaN breaks the runs", () => {
    // Moving ranges: 0.1, 4.9, 4.8, 2.3, 2.5, 3, 0, 0, 0, NaN, NaN, 0, 0.
    const xs = [0, 0.1, 5, 0.2, 2.5, 0, 3, 3, 3, 3, Number.NaN, 3, 3, 3];
    const rows = run(xs, { cl: 0, sigma: 1 }, { jumpLimit: 4, noisyRun: 3, stuckRun: 3 });
    const mr = rows.column(C.mr_mask);
    const want = [0, 0, 1, 1, 2, 2, 2, 0, 0, 4, 0, 0, 0, 0];
    expect(mr).toEqual(want);
    // The reference reads the same patterns off its window of values.
    const ref = new SpcReference(params({ jumpLimit: 4, noisyRun: 3, stuckRun: 3 }));
    ref.setLimits(0, 1);
    expect(xs.map((x) => ref.push(x)[C.mr_mask])).toEqual(want);
  });

  it("a limits change re-counts NOISY's run with the new σ; rows before limits have a NaN mask", () => {
    const harness = new SpcKernelHarness(params({ noisyRun: 2 }), 1);
    const first = new Rows(harness.process(oneKey([0, 3, 0, 3])));
    expect(first.column(C.mr_mask).every((m) => Number.isNaN(m))).toBe(true);
    // σ = 1: the moving ranges of 3 are beyond 2σ, the last two complete a run of two.
    harness.setLimits(0, 0, 1);
    expect(new Rows(harness.process(oneKey([0]))).column(C.mr_mask)).toEqual([2]);
    // σ = 2: the same ranges are within 2σ; the history is re-counted, so no run is left.
    harness.setLimits(0, 0, 2);
    expect(new Rows(harness.process(oneKey([3, 0]))).column(C.mr_mask)).toEqual([0, 0]);
  });

  it("the numerical NOISY rate: erfc(c/2) for one range, a quadrature over the shared value for two", () => {
    for (const c of [1, 2, 3]) expect(Math.abs(movingRangeRunRate(1, c) / spcRuleRate.jump(c) - 1)).toBeLessThan(1e-5);
    // (The grid of step 1/200 and the linear reading of its running sum: errors of order 1e-6.)
    // Two ranges share x1: ∫ φ(x)·(1 − Φ(x + c) + Φ(x − c))² dx, midpoint rule on [−12, 12].
    const phi = (x: number) => Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
    const cdf = (x: number) => 1 - 0.5 * erfcOf(x / Math.SQRT2);
    for (const c of [1, 2, 3]) {
      let two = 0;
      const h = 1e-3;
      for (let x = -12 + h / 2; x < 12; x += h) two += h * phi(x) * (1 - cdf(x + c) + cdf(x - c)) ** 2;
      expect(Math.abs(movingRangeRunRate(2, c) / two - 1), `c = ${c}`).toBeLessThan(1e-5);
    }
  });

  it("2e6 N(0, 1) points: JUMP and NOISY fire at their rates, STUCK never; on a coin's 0/1 readings STUCK fires at (½)^r", () => {
    const n = 2_000_000;
    const rng = new SeededRandom(7);
    const normal = Float64Array.from({ length: n }, () => rng.normal());
    const coin = Float64Array.from({ length: n }, () => (rng.next() < 0.5 ? 0 : 1));
    const count = (values: Float64Array, over: Partial<SpcParams>): number[] => {
      const harness = new SpcKernelHarness(params(over), 1, { chunkRecordsMax: 65_536 });
      harness.setLimits(0, 0, 1);
      const counts = [0, 0, 0];
      harness.processChunks(oneKeyColumns(values), (_first, rows) => {
        for (let o = 0; o < rows.length; o += SPC_OUT_FIELDS) for (let b = 0; b < 3; b++) if (rows[o + C.mr_mask] & (1 << b)) counts[b]++;
      });
      return counts;
    };
    const [jump, noisy, stuck] = count(normal, { jumpLimit: 3, noisyRun: 3, stuckRun: 1 });
    // A rule over the newest m + 1 values fires on an m-dependent sequence: Var(count) ≤ N·p·(2m + 1).
    const within = (got: number, p: number, m: number) => Math.abs(got - n * p) <= 5 * Math.sqrt(n * p * (2 * m + 1));
    expect(within(jump, spcRuleRate.jump(3), 1), `JUMP ${jump} vs ${n * spcRuleRate.jump(3)}`).toBe(true);
    expect(within(noisy, spcRuleRate.noisy(3), 3), `NOISY ${noisy} vs ${n * spcRuleRate.noisy(3)}`).toBe(true);
    expect(stuck).toBe(0);
    const [, , coinStuck] = count(coin, { stuckRun: 3 });
    expect(within(coinStuck, spcRuleRate.stuck(3), 3), `STUCK ${coinStuck} vs ${n * spcRuleRate.stuck(3)}`).toBe(true);
  });
});

describe("spc kernel - in-control false-alarm rates", () => {
  const n = 2_000_000;
  const tails = normalTailsByQuadrature();

  it("normal tail probabilities of the layout equal a quadrature of the normal density", () => {
    for (const k of [1, 2, 3] as const) expect(Math.abs(NORMAL_TAIL[k] - tails[k])).toBeLessThanOrEqual(1e-15);
  });

  it("the layout's closed-form rates equal a Markov chain / permutation count computed here", () => {
    const exact = exactRuleRates(tails);
    const layout: Record<string, number> = {
      WE1: spcRuleRate.beyond3(),
      WE2: spcRuleRate.twoOfThree(),
      WE3: spcRuleRate.fourOfFive(),
      WE4: spcRuleRate.sameSide(8),
      N2: spcRuleRate.sameSide(9),
      N3: spcRuleRate.monotone(6),
      N4: spcRuleRate.alternating(14),
      N7: spcRuleRate.within1(15),
      N8: spcRuleRate.beyond1(8),
    };
    // The chain runs on the quadrature's tails (good to ~1e-16 absolute), the layout on its own.
    for (const [name, rate] of Object.entries(layout)) {
      expect(Math.abs(rate - exact[name].p) / rate, name).toBeLessThanOrEqual(1e-10);
    }
    const byName = new Map([...WE_RULES, ...NELSON_RULES].map((r) => [r.name, r.falseAlarmRate]));
    for (const [name, alias] of [
      ["WE1", "N1"],
      ["WE2", "N5"],
      ["WE3", "N6"],
    ])
      expect(byName.get(alias)).toBe(byName.get(name));
    for (const name of Object.keys(layout)) expect(byName.get(name)).toBe(layout[name]);
  });

  it("2e6 N(0, 1) points: zone shares and every rule's firing rate within 4σ of the exact figure", () => {
    const rng = new SeededRandom(20240601);
    const values = new Float64Array(n);
    for (let i = 0; i < n; i++) values[i] = rng.normal();
    const harness = new SpcKernelHarness(params(), 1, { chunkRecordsMax: 65_536 });
    harness.setLimits(0, 0, 1);
    const zoneCounts = new Map<number, number>();
    const weCounts = new Array<number>(4).fill(0);
    const nelsonCounts = new Array<number>(8).fill(0);
    harness.processChunks(oneKeyColumns(values), (_first, rows) => {
      for (let o = 0; o < rows.length; o += SPC_OUT_FIELDS) {
        const z = rows[o + C.zone];
        zoneCounts.set(z, (zoneCounts.get(z) ?? 0) + 1);
        const we = rows[o + C.we_mask];
        const nelson = rows[o + C.nelson_mask];
        if (we !== 0) for (let b = 0; b < 4; b++) if (we & (1 << b)) weCounts[b] += 1;
        if (nelson !== 0) for (let b = 0; b < 8; b++) if (nelson & (1 << b)) nelsonCounts[b] += 1;
      }
    });

    const failures: string[] = [];
    // Zones: independent points, so each count is binomial(n, p).
    const zoneP: Record<number, number> = {
      1: 0.5 - tails[1],
      2: tails[1] - tails[2],
      3: tails[2] - tails[3],
      4: tails[3],
    };
    for (const z of [-4, -3, -2, -1, 1, 2, 3, 4]) {
      const p = zoneP[Math.abs(z)];
      const got = zoneCounts.get(z) ?? 0;
      const sd = Math.sqrt(n * p * (1 - p));
      if (Math.abs(got - n * p) > 4 * sd) failures.push(`zone ${z}: ${got}, expected ${(n * p).toFixed(0)} ± ${(4 * sd).toFixed(0)}`);
    }
    expect(zoneCounts.get(0) ?? 0).toBeLessThanOrEqual(1);

    // Rules: a rule over the newest m points fires on an m-dependent stationary sequence, so
    // Var(count) = N·γ0 + 2·Σ_{l<m} (N − l)·γ_l with the exact lag covariances γ_l.
    const exact = exactRuleRates(tails);
    const observed: Array<[string, number]> = [
      ["WE1", weCounts[0]],
      ["WE2", weCounts[1]],
      ["WE3", weCounts[2]],
      ["WE4", weCounts[3]],
      ["N1", nelsonCounts[0]],
      ["N2", nelsonCounts[1]],
      ["N3", nelsonCounts[2]],
      ["N4", nelsonCounts[3]],
      ["N5", nelsonCounts[4]],
      ["N6", nelsonCounts[5]],
      ["N7", nelsonCounts[6]],
      ["N8", nelsonCounts[7]],
    ];
    const alias: Record<string, string> = { N1: "WE1", N5: "WE2", N6: "WE3" };
    const report: string[] = [];
    for (const [name, got] of observed) {
      const { p, gammas, window } = exact[alias[name] ?? name];
      const eligible = n - window + 1;
      let variance = eligible * p * (1 - p);
      gammas.forEach((g, l) => (variance += 2 * (eligible - (l + 1)) * g));
      const sd = Math.sqrt(variance);
      const expected = eligible * p;
      report.push(
        `${name}: ${got} vs ${expected.toFixed(1)} ± ${sd.toFixed(1)} (rate ${(got / n).toExponential(3)} vs ${p.toExponential(3)})`,
      );
      if (Math.abs(got - expected) > 4 * sd) failures.push(report[report.length - 1]);
    }
    expect(failures, report.join("\n")).toEqual([]);
    expect(weCounts[0]).toBe(nelsonCounts[0]);
    expect(weCounts[1]).toBe(nelsonCounts[4]);
    expect(weCounts[2]).toBe(nelsonCounts[5]);
  });
});

// ---------------------------------------------------------------------------------------------
// Helpers: comparison with the reference.

class RowChecker {
  readonly mismatches: string[] = [];
  readonly weFired = new Array<number>(4).fill(0);
  readonly nelsonFired = new Array<number>(8).fill(0);
  readonly mrFired = new Array<number>(3).fill(0);
  readonly alarms = [0, 0];
  maxVersion = 0;
  borderlineEwmaAlarms = 0;
  rows = 0;

  check(got: Float64Array, want: Float64Array, p: SpcParams, where: string): void {
    this.rows += 1;
    for (let f = 0; f < SPC_OUT_FIELDS; f++) {
      const a = got[f];
      const b = want[f];
      let ok: boolean;
      if (Number.isNaN(a) || Number.isNaN(b)) ok = Number.isNaN(a) && Number.isNaN(b);
      else if (f === C.ewma_ucl || f === C.ewma_lcl) ok = Math.abs(a - b) <= this.ewmaTolerance(b, want, p);
      else if (f === C.ewma_alarm && a !== b) {
        const z = want[C.ewma];
        const near = Math.min(Math.abs(z - want[C.ewma_ucl]), Math.abs(z - want[C.ewma_lcl]));
        ok = near <= this.ewmaTolerance(z, want, p);
        if (ok) this.borderlineEwmaAlarms += 1;
      } else ok = Object.is(a, b) || a === b;
      if (!ok && this.mismatches.length < 1000) this.mismatches.push(`${where}: ${SPC_FIELDS[f]} got ${a} want ${b}`);
    }
    for (let b = 0; b < 4; b++) if (want[C.we_mask] & (1 << b)) this.weFired[b] += 1;
    for (let b = 0; b < 8; b++) if (want[C.nelson_mask] & (1 << b)) this.nelsonFired[b] += 1;
    for (let b = 0; b < 3; b++) if (want[C.mr_mask] & (1 << b)) this.mrFired[b] += 1;
    if (want[C.cusum_alarm] === 1) this.alarms[0] += 1;
    if (want[C.ewma_alarm] === 1) this.alarms[1] += 1;
    this.maxVersion = Math.max(this.maxVersion, want[C.limits_version]);
  }

  private ewmaTolerance(value: number, want: Float64Array, p: SpcParams): number {
    return 1e-12 * Math.max(Math.abs(value), p.ewmaL * want[C.sigma]);
  }

  expectClean(): void {
    expect(this.mismatches.length, `${this.mismatches.length} fields differ, first:\n${this.mismatches.slice(0, 10).join("\n")}`).toBe(0);
    expect(this.borderlineEwmaAlarms).toBe(0);
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers: streams.

interface SpcStream {
  input: SpcInput;
  /** Limits to set on key k: near its level, on a grid for integer-valued keys. */
  randomLimits(rng: SeededRandom, k: number): { cl: number; sigma: number };
}

/**
 * Records of `keys` keys in random order, each key in one of four styles: normal noise with
 * level shifts (zones, WE rules, CUSUM / EWMA alarms), small integers (ties, values on the
 * centre line and on kσ thresholds once limits are on a grid, held values), a random walk (trends) and a
 * zigzag (alternation). A share `nanFraction` of values is NaN.
 */
function randomSpcStream(rng: SeededRandom, keys: number, records: number, nanFraction: number): SpcStream {
  const style = Array.from({ length: keys }, (_, k) => k % 4);
  const level = Array.from({ length: keys }, () => rng.uniform(-100, 100));
  const scale = Array.from({ length: keys }, () => 10 ** rng.uniform(-2, 2));
  const shift = new Array<number>(keys).fill(0);
  const walk = new Array<number>(keys).fill(0);
  const count = new Array<number>(keys).fill(0);
  // Small-integer keys now and then hold their last value for a while (a stuck sensor: STUCK).
  const held = new Array<number>(keys).fill(0);
  const last = new Array<number>(keys).fill(0);
  const slots = new Uint32Array(records);
  const values = new Float64Array(records);
  // Times rise by under 1 per record, with a pause of 5–40 now and then (a tracked line's gaps).
  const times = new Float64Array(records);
  let t = 0;
  for (let i = 0; i < records; i++) {
    const k = rng.int(0, keys - 1);
    t += rng.next() < 0.002 ? rng.uniform(5, 40) : rng.next();
    times[i] = t;
    slots[i] = k;
    count[k] += 1;
    if (rng.next() < 0.01) shift[k] = rng.next() < 0.5 ? 0 : rng.normal() * 2;
    let x: number;
    switch (style[k]) {
      case 0:
        x = level[k] + scale[k] * (shift[k] + rng.normal());
        break;
      case 1:
        if (held[k] === 0 && rng.next() < 0.01) held[k] = rng.int(1, 40);
        x = held[k] > 0 ? last[k] : Math.round(level[k]) + rng.int(-3, 3) + (rng.next() < 0.1 ? rng.int(-6, 6) : 0);
        if (held[k] > 0) held[k] -= 1;
        last[k] = x;
        break;
      case 2:
        walk[k] += rng.normal() + (rng.next() < 0.2 ? 1 : 0);
        x = level[k] + scale[k] * walk[k];
        break;
      default:
        x = level[k] + scale[k] * ((count[k] % 2 === 0 ? 1 : -1) * (1 + shift[k]) + 0.3 * rng.normal());
    }
    values[i] = rng.next() < nanFraction ? NaN : x;
  }
  return {
    input: { slots, values, times },
    randomLimits(r: SeededRandom, k: number) {
      if (style[k] === 1) return { cl: Math.round(level[k]) + r.int(-2, 2), sigma: [0.5, 1, 2][r.int(0, 2)] };
      return { cl: level[k] + scale[k] * r.normal(), sigma: scale[k] * r.uniform(0.3, 3) };
    },
  };
}

function randomParams(rng: SeededRandom): SpcParams {
  const run = (min: number): number => (rng.next() < 0.1 ? rng.int(min, 32) : rng.int(min, 10));
  return validateSpcParams({
    baselineN: [0, 2, 3, 5, 20, 100][rng.int(0, 5)],
    sigmaMethod: rng.next() < 0.5 ? "std" : "mr",
    cusumK: rng.uniform(0, 1),
    cusumH: rng.uniform(1, 6),
    ewmaLambda: rng.next() < 0.1 ? 1 : rng.uniform(0.05, 1),
    ewmaL: rng.uniform(2, 3.5),
    we4Run: run(2),
    n2Run: run(2),
    n3Run: run(3),
    n4Run: run(3),
    n7Run: run(2),
    n8Run: run(2),
    trackRecords: rng.next() < 0.5 ? 0 : rng.uniform(2, 400),
    trackHold: rng.next() < 0.5 ? 0 : rng.int(0, 50),
    trackGap: rng.next() < 0.5 ? 0 : rng.uniform(1, 20),
    cusumCap: rng.next() < 0.5 ? 0 : rng.uniform(1, 3),
    baselineTiesMax: rng.next() < 0.5 ? 1 : rng.uniform(0, 0.5),
    jumpLimit: rng.uniform(0.5, 6),
    noisyRun: Math.min(31, run(1)),
    stuckRun: Math.min(31, run(1)),
    ...(rng.next() < 0.5 ? {} : { stepWindow: rng.int(1, 10), stepLimit: rng.uniform(0.3, 4) }),
  });
}

function oneKeyColumns(values: Float64Array): SpcInput {
  return { slots: new Uint32Array(values.length), values };
}

/** The value column of a NAB CSV (`timestamp,value`). */
function readNabValues(path: string): number[] {
  const lines = readFileSync(path, "utf8").trim().split("\n");
  if (lines[0].trim() !== "timestamp,value") throw new Error(`${path}: unexpected header ${lines[0]}`);
  return lines.slice(1).map((line, i) => {
    const x = Number(line.split(",")[1]);
    if (!Number.isFinite(x)) throw new Error(`${path}:${i + 2}: cannot read "${line}"`);
    return x;
  });
}

// ---------------------------------------------------------------------------------------------
// Helpers: exact arithmetic.

/**
 * Mean and sample std of doubles in exact arithmetic: every double is m·2^e with integer m, so
 * scaling all to the smallest e gives integers; Σx and n·Σx² − (Σx)² = n(n − 1)·s² are exact in
 * BigInt and only the final conversions round.
 */
function exactMeanAndStd(xs: readonly number[]): { mean: number; std: number } {
  const parts = xs.map(decomposeDouble);
  const eMin = Math.min(...parts.map((q) => q.exponent));
  if (eMin === Infinity) return { mean: 0, std: 0 }; // all zero
  const ints = parts.map((q) => (q.mantissa === 0n ? 0n : q.mantissa << BigInt(q.exponent - eMin)));
  const n = BigInt(xs.length);
  let s1 = 0n;
  let s2 = 0n;
  for (const v of ints) {
    s1 += v;
    s2 += v * v;
  }
  // mean = s1 / n: keep 64 extra bits of the quotient before the conversion rounds.
  const mean = (Number((s1 << 64n) / n) / 2 ** 64) * 2 ** eMin;
  const std = Math.sqrt(Number(n * s2 - s1 * s1) / Number(n * (n - 1n))) * 2 ** eMin;
  return { mean, std };
}

function decomposeDouble(x: number): { mantissa: bigint; exponent: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const sign = bits >> 63n === 1n ? -1n : 1n;
  const biased = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  if (biased === 0 && fraction === 0n) return { mantissa: 0n, exponent: Infinity };
  if (biased === 0) return { mantissa: sign * fraction, exponent: -1074 };
  return { mantissa: sign * (fraction | (1n << 52n)), exponent: biased - 1075 };
}

// ---------------------------------------------------------------------------------------------
// Helpers: exact in-control rates, computed independently of operators/spc/layout.ts.

/**
 * P(Z > k), k = 1, 2, 3, as ½ − ∫₀ᵏ φ by composite Simpson with 2000 panels per unit (truncation
 * error ~h⁴·max|φ⁗|/180 < 1e-16) and a compensated (Kahan) sum.
 */
function normalTailsByQuadrature(): Record<1 | 2 | 3, number> {
  const phi = (x: number): number => Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
  const integral = (b: number): number => {
    const m = 2000 * b;
    const h = b / m;
    let s = phi(0) + phi(b);
    let carry = 0;
    for (let j = 1; j < m; j++) {
      const y = (j % 2 === 1 ? 4 : 2) * phi(j * h) - carry;
      const t = s + y;
      carry = t - s - y;
      s = t;
    }
    return (s * h) / 3;
  };
  return { 1: 0.5 - integral(1), 2: 0.5 - integral(2), 3: 0.5 - integral(3) };
}

interface ExactRate {
  /** P(the rule fires at a given record), stationary, full window. */
  p: number;
  /** γ_l = P(fires at t and at t + l) − p², l = 1 .. window − 1. */
  gammas: number[];
  window: number;
}

/**
 * Zone rules by a Markov chain over a state that summarises the zones the rule needs (a run
 * counter or the last few zone classes), driven by the eight zone classes of an N(0, 1) point
 * with probabilities from the tail integrals: p is the stationary probability of a firing
 * state, P(fire at t and t + l) the firing states' mass carried l steps on. Rank rules (N3, N4)
 * by counting permutations: iid continuous values put every order equally likely, and the
 * probability of a given up/down pattern follows from the classic dynamic programme over the
 * rank of the newest value among those so far.
 */
function exactRuleRates(tails: Record<1 | 2 | 3, number>): Record<string, ExactRate> {
  const zoneP: Array<[number, number]> = [];
  const pAbs = [0.5 - tails[1], tails[1] - tails[2], tails[2] - tails[3], tails[3]];
  for (let a = 1; a <= 4; a++) zoneP.push([a, pAbs[a - 1]], [-a, pAbs[a - 1]]);
  const sign = (z: number): number => Math.sign(z);
  const lastOf = (k: number, cls: (z: number) => number): ChainRule => ({
    start: new Array<number>(k).fill(0),
    step: (s, z) => [...s.slice(1), cls(z)],
    fires: () => false,
  });
  const twoOfThree = lastOf(3, (z) => (Math.abs(z) >= 3 ? sign(z) : 0));
  twoOfThree.fires = (s) => s[2] !== 0 && s.filter((c) => c === s[2]).length >= 2;
  const fourOfFive = lastOf(5, (z) => (Math.abs(z) >= 2 ? sign(z) : 0));
  fourOfFive.fires = (s) => s[4] !== 0 && s.filter((c) => c === s[4]).length >= 4;
  const sameSide = (r: number): ChainRule => ({
    start: [0],
    step: ([run], z) => [z > 0 ? (run > 0 ? Math.min(run + 1, r) : 1) : run < 0 ? Math.max(run - 1, -r) : -1],
    fires: ([run]) => Math.abs(run) >= r,
  });
  const runOf = (r: number, pred: (z: number) => boolean): ChainRule => ({
    start: [0],
    step: ([run], z) => [pred(z) ? Math.min(run + 1, r) : 0],
    fires: ([run]) => run >= r,
  });
  const chains: Record<string, [ChainRule, number]> = {
    WE1: [{ start: [0], step: (_s, z) => [z], fires: ([z]) => Math.abs(z) === 4 }, 1],
    WE2: [twoOfThree, 3],
    WE3: [fourOfFive, 5],
    WE4: [sameSide(8), 8],
    N2: [sameSide(9), 9],
    N7: [runOf(15, (z) => Math.abs(z) === 1), 15],
    N8: [runOf(8, (z) => Math.abs(z) >= 2), 8],
  };
  const out: Record<string, ExactRate> = {};
  for (const [name, [rule, window]] of Object.entries(chains)) out[name] = chainRate(rule, zoneP, window);
  const upRun = (m: number): number[] => new Array<number>(m - 1).fill(1);
  const alternating = (m: number, first: number): number[] => Array.from({ length: m - 1 }, (_, j) => (j % 2 === 0 ? first : -first));
  out.N3 = patternRate([upRun(6), upRun(6).map((d) => -d)], 6);
  out.N4 = patternRate([alternating(14, 1), alternating(14, -1)], 14);
  return out;
}

interface ChainRule {
  start: number[];
  step(state: number[], zone: number): number[];
  fires(state: number[]): boolean;
}

function chainRate(rule: ChainRule, zoneP: ReadonlyArray<[number, number]>, window: number): ExactRate {
  type Dist = Map<string, { state: number[]; p: number }>;
  const advance = (dist: Dist): Dist => {
    const next: Dist = new Map();
    for (const { state, p } of dist.values()) {
      for (const [z, pz] of zoneP) {
        const s = rule.step(state, z);
        const key = s.join(",");
        const e = next.get(key);
        if (e === undefined) next.set(key, { state: s, p: p * pz });
        else e.p += p * pz;
      }
    }
    return next;
  };
  const firingMass = (dist: Dist): number => [...dist.values()].reduce((m, e) => m + (rule.fires(e.state) ? e.p : 0), 0);
  // Every state summarises at most the last 32 zones, so after 64 steps the distribution is the
  // stationary one exactly (up to rounding).
  let dist: Dist = new Map([[rule.start.join(","), { state: rule.start, p: 1 }]]);
  for (let t = 0; t < 64; t++) dist = advance(dist);
  const p = firingMass(dist);
  let carried: Dist = new Map([...dist].filter(([, e]) => rule.fires(e.state)));
  const gammas: number[] = [];
  for (let l = 1; l < window; l++) {
    carried = advance(carried);
    gammas.push(firingMass(carried) - p * p);
  }
  return { p, gammas, window };
}

/**
 * Rate of a rule that fires when the newest `window` values' successive differences follow one
 * of `patterns` (each window − 1 signs, ±1), for iid continuous values, and its lag covariances.
 */
function patternRate(patterns: readonly number[][], window: number): ExactRate {
  const p = patterns.reduce((s, pat) => s + patternProbability(pat), 0);
  const gammas: number[] = [];
  for (let l = 1; l < window; l++) {
    let joint = 0;
    for (const a of patterns) {
      for (const b of patterns) {
        // Differences 0 .. window − 2 follow a, differences l .. l + window − 2 follow b.
        const merged = new Array<number>(l + window - 1).fill(0);
        let consistent = true;
        a.forEach((d, j) => (merged[j] = d));
        b.forEach((d, j) => {
          if (merged[l + j] !== 0 && merged[l + j] !== d) consistent = false;
          merged[l + j] = d;
        });
        if (consistent) joint += patternProbability(merged);
      }
    }
    gammas.push(joint - p * p);
  }
  return { p, gammas, window };
}

/**
 * P(iid continuous x_0 … x_L have x_{j+1} > x_j where signs[j] = 1, < where −1, anything where 0).
 * g[k] = P(pattern so far, newest value has rank k among the t values so far); a new value takes
 * each of the t + 1 ranks with equal probability.
 */
function patternProbability(signs: readonly number[]): number {
  let g = [1];
  for (let t = 1; t <= signs.length; t++) {
    const next = new Array<number>(t + 1).fill(0);
    const prefix = [0];
    for (const v of g) prefix.push(prefix[prefix.length - 1] + v);
    const total = prefix[t];
    for (let r = 0; r <= t; r++) {
      // Previous newest at rank k stays below the new value iff k < r.
      const below = prefix[r];
      const above = total - below;
      const d = signs[t - 1];
      next[r] = (d === 1 ? below : d === -1 ? above : total) / (t + 1);
    }
    g = next;
  }
  return g.reduce((s, v) => s + v, 0);
}

describe("SPC kernel: tracked centre line, CUSUM ceiling, baseline ties", () => {
  it("a tracked centre line follows a slow linear trend without lag; a fixed one alarms", () => {
    // A noise-free ramp of 0.001σ per record: double smoothing forecasts a line exactly once its
    // trend has converged (the slow mode's time constant is about 32·T records with the trend gain
    // at a sixteenth of Brown's), and its lag before that stays under k, so CUSUM never signals.
    const ramp = Array.from({ length: 200_000 }, (_, i) => 100 + 0.001 * i);
    const tracked = run(ramp, { cl: 100, sigma: 1 }, { trackRecords: 500 });
    const fixed = run(ramp, { cl: 100, sigma: 1 });
    const last = tracked.length - 1;
    expect(Math.abs(tracked.at(last, C.cl) - ramp[last])).toBeLessThan(1e-5);
    expect(tracked.column(C.cusum_alarm).filter((a) => a === 1)).toHaveLength(0);
    expect(fixed.column(C.cusum_alarm).filter((a) => a === 1).length).toBeGreaterThan(190_000);
  });

  it("an outlier moves the tracked centre line by at most 3σ·(1 − ω²) plus the trend it adds", () => {
    const T = 100;
    const w = 1 - 1 / T;
    const rows = run([0, 1000, 0], { cl: 0, sigma: 1 }, { trackRecords: T });
    // After the spike the error fed back is winsorized to 3σ.
    expect(rows.at(2, C.cl)).toBeCloseTo(3 * (1 - w * w) + (3 * (1 - w) ** 2) / 16, 12);
  });

  it("a tracked centre line holds while CUSUM signals, for at most trackHold records, then learns the new level", () => {
    const shift = [...repeat(0, 10), ...repeat(5, 3000)];
    const held = run(shift, { cl: 0, sigma: 1 }, { trackRecords: 100, trackHold: 1000, cusumCap: 2 });
    const free = run(shift, { cl: 0, sigma: 1 }, { trackRecords: 100, cusumCap: 2 });
    // CUSUM (h = 5) signals from the shift's second record: from then on the held line stays at 0.
    expect(held.at(10 + 500, C.cl)).toBe(held.at(12, C.cl));
    expect(free.at(10 + 500, C.cl)).toBeGreaterThan(4);
    // After 1000 held records the line follows again and the chart falls silent.
    expect(held.at(3009, C.cl)).toBeGreaterThan(4);
    expect(held.at(3009, C.cusum_alarm)).toBe(0);
  });

  it("a signal that stops for a few records and comes back on the same side continues the hold; on the other side it is followed", () => {
    // +1.5σ: CUSUM (h = 5, capped at 2H) and EWMA signal; 8 records at −0.5σ silence both; then
    // the shift again (a slow drift's signal flickers like this at its onset).
    const pause = repeat(-0.5, 8);
    const same = [...repeat(0, 10), ...repeat(1.5, 60), ...pause, ...repeat(1.5, 400)];
    const other = [...repeat(0, 10), ...repeat(1.5, 60), ...pause, ...repeat(-1.5, 400)];
    const tracking = { trackRecords: 100, trackHold: 1000, cusumCap: 2 };
    const resumed = run(same, { cl: 0, sigma: 1 }, tracking);
    const quietRows = Array.from({ length: 8 }, (_, j) => 70 + j).filter(
      (i) => resumed.at(i, C.cusum_alarm) === 0 && resumed.at(i, C.ewma_alarm) === 0,
    );
    expect(quietRows.length).toBeGreaterThan(0);
    // Held through the shift's first part, and again from its return: the line moved only in the
    // quiet records, by less than 0.1σ.
    const before = resumed.at(20, C.cl);
    expect(Math.abs(resumed.at(69, C.cl) - before)).toBeLessThan(1e-12);
    expect(Math.abs(resumed.at(477, C.cl) - before)).toBeLessThan(0.1);
    expect(resumed.at(477, C.cusum_alarm)).toBe(1);
    // The other side, that soon: the line follows the process down.
    const followed = run(other, { cl: 0, sigma: 1 }, tracking);
    expect(followed.at(477, C.cl)).toBeLessThan(-1);
  });

  it("a pause longer than trackGap restarts the tracked line from the mean of the next 50 records", () => {
    const values = [...repeat(0, 100), ...repeat(5, 200)];
    const times = Float64Array.from(values, (_, i) => (i < 100 ? i : 1000 + i));
    const input = { ...oneKey(values), times };
    const chart = (over: Partial<SpcParams>): Rows => {
      const harness = new SpcKernelHarness(params(over), 1);
      harness.setLimits(0, 0, 1);
      return new Rows(harness.process(input));
    };
    const gapped = chart({ trackRecords: 100, trackGap: 10 });
    const plain = chart({ trackRecords: 100 });
    // The 50 records after the pause: shown against their running mean (5), no rule, no alarm.
    for (let i = 100; i < 150; i++) {
      expect(gapped.at(i, C.cl)).toBe(5);
      expect(gapped.at(i, C.we_mask) + gapped.at(i, C.cusum_alarm) + gapped.at(i, C.ewma_alarm)).toBe(0);
    }
    expect(gapped.column(C.cusum_alarm).filter((a) => a === 1)).toHaveLength(0);
    expect(gapped.at(299, C.limits_version)).toBe(1);
    expect(plain.at(110, C.cusum_alarm)).toBe(1);
  });

  it("the CUSUM ceiling holds C± at c·H and forgets a long shift within about c·h/k records", () => {
    const shift = [...repeat(3, 5000), ...repeat(0, 60)];
    const capped = run(shift, { cl: 0, sigma: 1 }, { cusumCap: 2 });
    const uncapped = run(shift, { cl: 0, sigma: 1 });
    expect(Math.max(...capped.column(C.cusum_pos))).toBe(2 * 5);
    // 10 − 0.5 per record: below H = 5 after 11 records of the shift's end.
    expect(capped.at(5000 + 11, C.cusum_alarm)).toBe(0);
    expect(uncapped.at(5000 + 59, C.cusum_alarm)).toBe(1);
  });

  it("a baseline of repeated readings is collected again until one has few ties", () => {
    const stuck = repeat(5, 100);
    const noisy = Array.from({ length: 100 }, (_, i) => 5 + Math.sin(i * 1.7));
    const rows = new Rows(
      new SpcKernelHarness(params({ baselineN: 100, baselineTiesMax: 0.1 }), 1).process(oneKey([...stuck, ...noisy, 5])),
    );
    expect(rows.at(199, C.limits_version)).toBe(0);
    expect(rows.at(200, C.limits_version)).toBe(1);
    const lenient = new Rows(new SpcKernelHarness(params({ baselineN: 100 }), 1).process(oneKey([...stuck, 5])));
    expect(lenient.at(100, C.limits_version)).toBe(1);
  });

  it("STEP: a level shift on a settling trend fires the second difference of window means; the trend alone does not", () => {
    // A first-order approach (e^(−t/τ), 120σ, τ 6000 readings: temperature's after a mode change)
    // with a 5σ shift from reading 2000 on, against the trend and noise alone.
    const rng = new SeededRandom(3);
    const noise = Array.from({ length: 4000 }, () => rng.normal());
    const approach = noise.map((z, i) => 120 * Math.exp(-i / 6000) + z);
    const shifted = approach.map((x, i) => (i >= 2000 ? x + 5 : x));
    const p = params({ baselineN: 300, stepWindow: 10, stepLimit: 4.33 });
    expect(() => validateSpcParams({ ...p, stepLimit: 0 })).toThrow(ConfigError);
    const run = (values: number[]) => new Rows(new SpcKernelHarness(p, 1).process(oneKey(values)));
    const quiet = run(approach);
    expect(quiet.fired(C.mr_mask, 8)).toEqual([]);
    const fired = run(shifted).fired(C.mr_mask, 8);
    expect(fired.length).toBeGreaterThan(0);
    // Only while the shift is inside the 30 readings the windows span.
    for (const i of fired) expect(i >= 2000 && i < 2030).toBe(true);
    const ref = new SpcReference(p);
    const checker = new RowChecker();
    const rows = run(shifted);
    shifted.forEach((x, i) =>
      checker.check(rows.data.subarray(i * SPC_OUT_FIELDS, (i + 1) * SPC_OUT_FIELDS), ref.push(x), p, `record ${i}`),
    );
    checker.expectClean();
  });

  it("a moving range within 1 % of the mean range before it ties: readings held at a limit under a slow ramp are collected again, as in the reference", () => {
    // A line stopped at 0 (noise clipped at the limit) while a fault's ramp of 0.001 per reading
    // lifts it: no two readings equal, but half the moving ranges are the ramp's step alone.
    const rng = new SeededRandom(11);
    const held = Array.from({ length: 300 }, (_, i) => Math.max(0, rng.normal()) + 0.001 * i);
    const noisy = Array.from({ length: 300 }, () => 3 + rng.normal());
    const values = [...held, ...noisy, 3];
    const p = params({ baselineN: 300, baselineTiesMax: 0.1 });
    const rows = new Rows(new SpcKernelHarness(p, 1).process(oneKey(values)));
    expect(rows.at(599, C.limits_version)).toBe(0);
    expect(rows.at(600, C.limits_version)).toBe(1);
    const ref = new SpcReference(p);
    const checker = new RowChecker();
    values.forEach((x, i) =>
      checker.check(rows.data.subarray(i * SPC_OUT_FIELDS, (i + 1) * SPC_OUT_FIELDS), ref.push(x), p, `record ${i}`),
    );
    checker.expectClean();
    // Normal readings alone: about 0.6 % of their ranges are that small, far below 10 %.
    const normal = new Rows(new SpcKernelHarness(p, 1).process(oneKey([...noisy, 3])));
    expect(normal.at(300, C.limits_version)).toBe(1);
  });

  it("a baseline held at a physical limit half the time is a censored normal sample: μ, σ by maximum likelihood, readings at the limit charted as their conditional expectation", () => {
    // A line stopped at 0 packs/min: noise of σ 1.5 around 0, clipped at 0 (half the readings).
    const rng = new SeededRandom(21);
    const N = 3000;
    const clipped = (k = 1, offset = 0) => Math.max(0, 1.5 * rng.normal() * k + offset);
    const baseline = Array.from({ length: N }, () => clipped());
    // run's charts at its default budget (`linewatch rules`): CUSUM k 0.5, h 13.2; EWMA λ 0.2, L 4.98.
    const p = params({ baselineN: N, baselineTiesMax: 0.1, sigmaMethod: "mr", cusumK: 0.5, cusumH: 13.196, ewmaLambda: 0.2, ewmaL: 4.983 });
    const quiet = Array.from({ length: 2000 }, () => clipped());
    const rows = new Rows(new SpcKernelHarness(p, 1).process(oneKey([...baseline, ...quiet])));
    expect(rows.at(N - 1, C.limits_version)).toBe(0);
    expect(rows.at(N, C.limits_version)).toBe(1);
    // Maximum likelihood from 3,000 readings: within about 3 standard errors (≈ 0.03 each) of μ = 0, σ = 1.5.
    expect(Math.abs(rows.at(N, C.cl))).toBeLessThan(0.1);
    expect(Math.abs(rows.at(N, C.sigma) - 1.5)).toBeLessThan(0.1);
    // The EM fixed point is the likelihood's maximum: a step of ±1 % in μ or σ lowers it.
    const logLik = (mu: number, sigma: number) =>
      baseline.reduce((l, x) => l + (x === 0 ? Math.log(normalCdf((0 - mu) / sigma)) : -Math.log(sigma) - ((x - mu) / sigma) ** 2 / 2), 0);
    const mu = rows.at(N, C.cl);
    const sigma = rows.at(N, C.sigma);
    for (const [dm, ds] of [
      [0.015, 0],
      [-0.015, 0],
      [0, 0.015],
      [0, -0.015],
    ])
      expect(logLik(mu + dm, sigma + ds)).toBeLessThan(logLik(mu, sigma));
    // A reading at the limit is charted at μ − σ·φ(c)/Φ(c) ≈ −0.8σ: zone −1, not the centre line.
    const at0 = quiet.indexOf(0);
    expect(rows.at(N + at0, C.zone)).toBe(-1);
    // In control the charts stay quiet.
    expect(rows.fired(C.cusum_alarm, 1).length + rows.fired(C.ewma_alarm, 1).length).toBe(0);
    // A fall below the limit (every reading held at 0) and a noise burst (×4) are seen.
    const fall = new Rows(new SpcKernelHarness(p, 1).process(oneKey([...baseline, ...new Array<number>(200).fill(0)])));
    expect(fall.fired(C.cusum_alarm, 1).some((i) => i < N + 100)).toBe(true);
    const burst = new Rows(new SpcKernelHarness(p, 1).process(oneKey([...baseline, ...Array.from({ length: 200 }, () => clipped(4))])));
    expect(burst.fired(C.cusum_alarm, 1).some((i) => i < N + 100)).toBe(true);
  });

  it("censored baselines: the kernel equals the reference, random settings, rebaselines and limits between chunks", () => {
    const rng = new SeededRandom(77);
    let censoredTrials = 0;
    for (let trial = 0; trial < 40; trial++) {
      const p = validateSpcParams({ ...randomParams(rng), baselineN: [20, 50, 300][rng.int(0, 2)], baselineTiesMax: rng.uniform(0, 0.3) });
      const limit = rng.uniform(-5, 5);
      const level = limit + rng.uniform(-2, 2);
      const scale = rng.uniform(0.5, 3);
      const values = Array.from({ length: 3000 }, (_, i) => {
        if (rng.next() < 0.01) return Number.NaN;
        const shift = i > 1500 && i < 1800 ? -3 * scale : 0;
        return Math.max(limit, level + shift + scale * rng.normal());
      });
      const harness = new SpcKernelHarness(p, 1);
      const ref = new SpcReference(p);
      const checker = new RowChecker();
      let version = 0;
      let chartedOff = false;
      for (let first = 0; first < values.length; ) {
        const m = Math.min(rng.int(1, 400), values.length - first);
        if (rng.next() < 0.1) {
          harness.rebaseline(0, p.baselineN);
          ref.rebaseline(p.baselineN);
        }
        const chunk = values.slice(first, first + m);
        const times = Float64Array.from(chunk, (_, i) => first + i + (first > 2000 ? 50 : 0));
        const rows = harness.process({ slots: new Uint32Array(m), values: Float64Array.from(chunk), times });
        chunk.forEach((x, i) => {
          const row = rows.subarray(i * SPC_OUT_FIELDS, (i + 1) * SPC_OUT_FIELDS);
          checker.check(row, ref.push(x, times[i]), p, `trial ${trial} record ${first + i} (x ${x})`);
          version = Math.max(version, row[C.limits_version]);
          // A reading at the limit charted as something else: its CEV under censored limits.
          if (x === limit && row[C.limits_version] > 0 && row[C.zone] !== zoneOf(x, row[C.cl], row[C.sigma])) chartedOff = true;
        });
        first += m;
      }
      checker.expectClean();
      expect(version).toBeGreaterThan(0);
      if (chartedOff) censoredTrials++;
    }
    expect(censoredTrials).toBeGreaterThan(10);
  });
});
