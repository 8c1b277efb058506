/**
 * The TypeScript side of the SPC kernel (kernels/spc.ts): its parameters and their validation,
 * the state size, the output row, and what each rule means and how often it fires on an
 * in-control process.
 */
import { ConfigError } from "../../engine/core/web.js";
import { erfc } from "../normal.js";

/** Output fields of one record, in the kernel's row order (NaN = null). */
export const SPC_FIELDS = [
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
] as const;
export type SpcField = (typeof SPC_FIELDS)[number];
/** f64 per output row. */
export const SPC_OUT_FIELDS = 16;
/** Index of each field in a row. */
export const SPC_COL = Object.fromEntries(SPC_FIELDS.map((f, i) => [f, i])) as { readonly [F in SpcField]: number };

/** Raw values the kernel keeps per key for the rules, and so the longest run a rule may ask for. */
export const SPC_HISTORY_RECORDS = 32;
export const SPC_RUN_MAX = SPC_HISTORY_RECORDS;
/** d2 for moving ranges of two observations (Montgomery, Introduction to SQC, Appendix VI). */
export const SPC_D2 = 1.128;

/** Bytes of kernel state per key; must equal the kernel's spcStateBytes (checked by a test). */
export function spcStateBytes(): number {
  const header = 368; // parameters, counters, limits, CUSUM / EWMA / baseline sums, censoring (kernels/spc.ts)
  const history = SPC_HISTORY_RECORDS * 8; // f64 values
  const zoneMasks = 4 * 4; // u32 × 4: the history's points beyond ±2σ and ±1σ, one bit each
  return (header + history + zoneMasks + 7) & ~7;
}

export type SpcSigmaMethod = "std" | "mr";

export interface SpcParams {
  /** Records of each key's baseline; 0: no baseline, limits come only from setLimits. */
  baselineN: number;
  /** Baseline sigma: sample std (n − 1), or mean moving range / d2 (individuals chart). */
  sigmaMethod: SpcSigmaMethod;
  /** CUSUM reference value K = cusumK·σ. */
  cusumK: number;
  /** CUSUM decision interval H = cusumH·σ. */
  cusumH: number;
  /** EWMA weight λ in (0, 1]. */
  ewmaLambda: number;
  /** EWMA limit width in standard deviations of z. */
  ewmaL: number;
  /** Points in a row on one side for WE rule 4. */
  we4Run: number;
  /** Points in a row on one side for Nelson rule 2. */
  n2Run: number;
  /** Points in a row steadily increasing or decreasing (Nelson 3). */
  n3Run: number;
  /** Points in a row alternating up and down (Nelson 4). */
  n4Run: number;
  /** Points in a row within 1σ (Nelson 7). */
  n7Run: number;
  /** Points in a row beyond 1σ, either side (Nelson 8). */
  n8Run: number;
  /**
   * Records over which the centre line follows the process (Brown's double exponential smoothing,
   * discount 1 − 1/T; kernels/spc.ts); 0: the centre line stays where the baseline put it.
   */
  trackRecords: number;
  /** Most records in a row the tracked centre line holds still while the CUSUM or EWMA chart signals. */
  trackHold: number;
  /**
   * A pause longer than this between a key's records (in the time column's units) restarts its
   * tracked centre line from the mean of the next 50 records; 0: never.
   */
  trackGap: number;
  /** Ceiling of the CUSUM sums in multiples of H; 0: none. */
  cusumCap: number;
  /** Largest share of zero moving ranges a baseline may have before it is collected again; 1: any. */
  baselineTiesMax: number;
  /** JUMP: a moving range |x − previous x| beyond jumpLimit·σ. */
  jumpLimit: number;
  /** NOISY: moving ranges in a row beyond 2σ. */
  noisyRun: number;
  /** STUCK: readings in a row equal to the one before (moving ranges of 0). */
  stuckRun: number;
  /**
   * STEP: the window w of its three means (3w ≤ 32 readings); 0 or absent: off. `run` turns it on
   * for a sensor's settling key only, where the charts of levels are off (analysis-flags.ts).
   */
  stepWindow?: number;
  /** STEP: |m3 − 2·m2 + m1| beyond stepLimit·σ. */
  stepLimit?: number;
}

/** Montgomery's CUSUM k = 0.5, h = 5 and EWMA λ = 0.2, L = 3 (§9.1, §9.2); Nelson's run lengths. */
export const DEFAULT_SPC_PARAMS: Readonly<SpcParams> = Object.freeze({
  baselineN: 100,
  sigmaMethod: "mr",
  cusumK: 0.5,
  cusumH: 5,
  ewmaLambda: 0.2,
  ewmaL: 3,
  we4Run: 8,
  n2Run: 9,
  n3Run: 6,
  n4Run: 14,
  n7Run: 15,
  n8Run: 8,
  trackRecords: 0,
  trackHold: 0,
  trackGap: 0,
  cusumCap: 0,
  baselineTiesMax: 1,
  jumpLimit: 3 * Math.SQRT2,
  noisyRun: 5,
  stuckRun: 3,
});

/** Smallest run length that means something: 3 points for a trend or an alternation, 2 otherwise. */
const RUN_MIN: Readonly<Record<RunParam, number>> = {
  we4Run: 2,
  n2Run: 2,
  n3Run: 3,
  n4Run: 3,
  n7Run: 2,
  n8Run: 2,
  noisyRun: 1,
  stuckRun: 1,
};
/** Longest run of moving ranges a rule may ask for: a run of r moving ranges spans r + 1 values. */
export const MR_RUN_MAX = SPC_HISTORY_RECORDS - 1;
type RunParam = "we4Run" | "n2Run" | "n3Run" | "n4Run" | "n7Run" | "n8Run" | "noisyRun" | "stuckRun";
const I32_MAX = 2 ** 31 - 1;

/** Checks every parameter; returns them unchanged or throws ConfigError naming the first bad one. */
export function validateSpcParams(params: SpcParams): SpcParams {
  const { baselineN } = params;
  if (!Number.isInteger(baselineN) || baselineN < 0 || baselineN === 1 || baselineN > I32_MAX) {
    throw new ConfigError("baselineN", `must be 0 (no baseline) or an integer in 2..${I32_MAX}, got ${baselineN}`);
  }
  if (params.sigmaMethod !== "std" && params.sigmaMethod !== "mr") {
    throw new ConfigError("sigmaMethod", `must be "std" or "mr", got ${String(params.sigmaMethod)}`);
  }
  if (!(params.cusumK >= 0) || !Number.isFinite(params.cusumK)) {
    throw new ConfigError("cusumK", `must be a finite number ≥ 0, got ${params.cusumK}`);
  }
  if (!(params.cusumH > 0) || !Number.isFinite(params.cusumH)) {
    throw new ConfigError("cusumH", `must be a finite number > 0, got ${params.cusumH}`);
  }
  if (!(params.ewmaLambda > 0 && params.ewmaLambda <= 1)) {
    throw new ConfigError("ewmaLambda", `must be in (0, 1], got ${params.ewmaLambda}`);
  }
  if (!(params.ewmaL > 0) || !Number.isFinite(params.ewmaL)) {
    throw new ConfigError("ewmaL", `must be a finite number > 0, got ${params.ewmaL}`);
  }
  if (!(params.trackRecords === 0 || (params.trackRecords >= 2 && Number.isFinite(params.trackRecords)))) {
    throw new ConfigError("trackRecords", `must be 0 (fixed centre line) or a finite number ≥ 2, got ${params.trackRecords}`);
  }
  if (!Number.isInteger(params.trackHold) || params.trackHold < 0 || params.trackHold > I32_MAX) {
    throw new ConfigError("trackHold", `must be an integer in 0..${I32_MAX}, got ${params.trackHold}`);
  }
  if (!(params.trackGap >= 0) || !Number.isFinite(params.trackGap)) {
    throw new ConfigError("trackGap", `must be a finite number ≥ 0, got ${params.trackGap}`);
  }
  if (!(params.cusumCap === 0 || (params.cusumCap >= 1 && Number.isFinite(params.cusumCap)))) {
    throw new ConfigError("cusumCap", `must be 0 (no ceiling) or a finite number ≥ 1, got ${params.cusumCap}`);
  }
  if (!(params.baselineTiesMax >= 0 && params.baselineTiesMax <= 1)) {
    throw new ConfigError("baselineTiesMax", `must be in [0, 1], got ${params.baselineTiesMax}`);
  }
  const w = params.stepWindow ?? 0;
  if (!Number.isInteger(w) || w < 0 || 3 * w > SPC_HISTORY_RECORDS) {
    throw new ConfigError(
      "stepWindow",
      `must be an integer in 0..${SPC_HISTORY_RECORDS / 3} (3w ≤ the ${SPC_HISTORY_RECORDS} values kept), got ${w}`,
    );
  }
  if (w > 0 && !(Number.isFinite(params.stepLimit) && (params.stepLimit ?? 0) > 0)) {
    throw new ConfigError("stepLimit", `must be a finite number > 0 (in σ) with a step window, got ${params.stepLimit}`);
  }
  if (!(params.jumpLimit > 0) || !Number.isFinite(params.jumpLimit)) {
    throw new ConfigError("jumpLimit", `must be a finite number > 0 (in σ), got ${params.jumpLimit}`);
  }
  for (const name of Object.keys(RUN_MIN) as RunParam[]) {
    const run = params[name];
    const max = name === "noisyRun" || name === "stuckRun" ? MR_RUN_MAX : SPC_RUN_MAX;
    if (!Number.isInteger(run) || run < RUN_MIN[name] || run > max) {
      throw new ConfigError(
        name,
        `must be an integer in ${RUN_MIN[name]}..${max} (the kernel keeps ${SPC_HISTORY_RECORDS} values per key), got ${run}`,
      );
    }
  }
  return params;
}

/** Checks limits passed to the kernel's spcSetLimits. */
export function validateSpcLimits(cl: number, sigma: number): void {
  if (!Number.isFinite(cl)) throw new ConfigError("cl", `must be finite, got ${cl}`);
  if (!(sigma > 0) || !Number.isFinite(sigma)) throw new ConfigError("sigma", `must be a finite number > 0, got ${sigma}`);
}

/** Checks the record count passed to the kernel's spcRebaseline. */
export function validateSpcRebaseline(n: number): void {
  if (!Number.isInteger(n) || n < 2 || n > I32_MAX) throw new ConfigError("baselineN", `must be an integer in 2..${I32_MAX}, got ${n}`);
}

/** spcInit's arguments after the state pointer, in order. */
export function spcInitArgs(
  params: SpcParams,
): [
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
] {
  const p = validateSpcParams(params);
  return [
    p.baselineN,
    p.sigmaMethod === "mr" ? 1 : 0,
    p.cusumK,
    p.cusumH,
    p.ewmaLambda,
    p.ewmaL,
    p.we4Run,
    p.n2Run,
    p.n3Run,
    p.n4Run,
    p.n7Run,
    p.n8Run,
    p.trackRecords,
    p.cusumCap,
    p.baselineTiesMax,
    p.trackHold,
    p.trackGap,
    p.jumpLimit,
    p.noisyRun,
    p.stuckRun,
    p.stepWindow ?? 0,
    p.stepLimit ?? 0,
  ];
}

// ---------------------------------------------------------------------------------------------
// Rules.
//
// Sources: Western Electric Co., Statistical Quality Control Handbook (1956), the four "zone
// tests"; L. S. Nelson, "The Shewhart control chart — tests for special causes", Journal of
// Quality Technology 16(4), 237–239 (1984), the eight tests; D. C. Montgomery, Introduction to
// Statistical Quality Control, §5.3.6 (sensitizing rules, the 0.0027 / ARL 370 of three-sigma
// limits).
//
// falseAlarmRate is the probability that the rule fires at a given record, for independent
// N(cl, σ²) values with known cl and σ and a full window, both sides together — the long-run
// share of records whose mask has the bit, as the kernel defines firing (at every record that
// completes the pattern, no reset). Every figure is a closed form of the normal tail
// probabilities T_k = P(Z > k) = ½·erfc(k/√2):
//   T1 = 0.15865525393145707, T2 = 0.02275013194817922, T3 = 0.0013498980316300957
// (correctly rounded doubles of ½·erfc(k/√2); test/spc-kernel.test.ts recomputes them by
// quadrature of the normal density). The closed forms hold because every rule looks at the
// newest `window` points only, and those are independent:
//   beyond 3σ:              2·T3
//   2 of 3 beyond 2σ:       2·T2·(1 − (1 − T2)²)      newest beyond on side s, ≥ 1 of the 2 before
//   4 of 5 beyond 1σ:       2·T1·(4·T1³(1 − T1) + T1⁴) newest beyond, ≥ 3 of the 4 before
//   r on one side:          2·(½)^r
//   r monotone:             2/r!                       2 of the r! equally likely orders
//   r alternating:          2·E_r/r!                   E_r alternating (up-down) permutations of r,
//                                                      Euler's zigzag numbers (André 1879), both
//                                                      starting directions
//   r within 1σ:            (1 − 2·T1)^r
//   r beyond 1σ:            (2·T1)^r
// The test checks each against the kernel's firing rate on 2·10⁶ simulated points, and the
// closed forms against a Markov chain / permutation count computed independently there.
//
// The often-quoted "2 of 3 ≈ 0.0015, 4 of 5 ≈ 0.0028, 8 in a row ≈ 0.0039" are one-sided
// probabilities that a given set of 3, 5 or 8 points shows the pattern (3·T2²(1 − T2) + T2³,
// 5·T1⁴(1 − T1) + T1⁵, ½⁸); they are given as `windowProbabilityOneSide`, not as firing rates.

/** P(Z > k) for Z standard normal, k = 1, 2, 3: ½·erfc(k/√2) to double precision. */
export const NORMAL_TAIL = Object.freeze({ 1: 0.15865525393145707, 2: 0.02275013194817922, 3: 0.0013498980316300957 });

export interface SpcRule {
  /** Rule number within its family (bit number − 1 in the family's mask). */
  readonly number: number;
  /** Mask bit: 1 << (number − 1). */
  readonly bit: number;
  readonly name: string;
  readonly description: string;
  /** The parameter that sets the run length, for run rules. */
  readonly runParam?: RunParam;
  /** Points the pattern spans (with the default run length). */
  readonly window: number;
  /** P(fires at a given record), in-control normal data, full window, both sides (see above). */
  readonly falseAlarmRate: number;
  /** The closed form behind falseAlarmRate. */
  readonly derivation: string;
  /** WE rules: the classical one-sided probability that `window` given points show the pattern. */
  readonly windowProbabilityOneSide?: number;
}

/** P(a given record completes the pattern) for each pattern kind and run length (see above). */
export const spcRuleRate = {
  beyond3: (): number => 2 * NORMAL_TAIL[3],
  twoOfThree: (): number => 2 * NORMAL_TAIL[2] * (1 - (1 - NORMAL_TAIL[2]) ** 2),
  fourOfFive: (): number => {
    const t = NORMAL_TAIL[1];
    return 2 * t * (4 * t ** 3 * (1 - t) + t ** 4);
  },
  sameSide: (run: number): number => 2 * 0.5 ** run,
  monotone: (run: number): number => 2 / factorial(run),
  alternating: (run: number): number => (2 * zigzagNumber(run)) / factorial(run),
  within1: (run: number): number => (1 - 2 * NORMAL_TAIL[1]) ** run,
  beyond1: (run: number): number => (2 * NORMAL_TAIL[1]) ** run,
  /** JUMP: P(|x − x'| > c) with x − x' ~ N(0, 2): erfc(c/2). */
  jump: (limit: number): number => erfc(limit / 2),
  /** NOISY: P(the newest r moving ranges all beyond 2σ), numerically ({@link movingRangeRunRate}). */
  noisy: (run: number): number => movingRangeRunRate(run, NOISY_MR_SIGMAS),
  /**
   * STUCK: P(the newest r readings each equal the one before), bounded as (½)^r: 0 for continuous
   * data; data with ties (a display resolution, a reading held at a physical limit — noise
   * clipped at 0 ties about a quarter of the time) are taken to tie with their predecessor at
   * most half the time ({@link STUCK_TIE_SHARE_BOUND}), independently.
   */
  stuck: (run: number): number => STUCK_TIE_SHARE_BOUND ** run,
  /**
   * STEP: P(|m3 − 2·m2 + m1| > c) with m1, m2, m3 means of w independent N(0, 1) readings:
   * m3 − 2·m2 + m1 ~ N(0, 6/w), so erfc(c·√(w/12)). It fires on runs of neighbouring readings
   * (its windows overlap), so this per-reading rate bounds its alarms' rate from above.
   */
  step: (limit: number, window: number): number => erfc(limit * Math.sqrt(window / 12)),
};

/** The share of readings equal to their predecessor STUCK's rate assumes at most. */
export const STUCK_TIE_SHARE_BOUND = 0.5;

/** NOISY counts moving ranges beyond this many σ (a share 2·(1 − Φ(√2)) = 0.157 of them in control). */
export const NOISY_MR_SIGMAS = 2;

/**
 * P(|x_i − x_{i−1}| > c for i = 1..r) for independent N(0, 1) x_0..x_r: consecutive moving
 * ranges share a value, so no closed form. The density of x_r on the run so far is
 * g_r(x) = φ(x)·(m_{r−1} − ∫_{x−c}^{x+c} g_{r−1}), g_0 = φ, m_r = ∫g_r the rate; integrated on a
 * grid of step 1/200 over [−12, 12] with the trapezoid rule, the band integral read off the
 * running sum by linear interpolation (test/spc-kernel.test.ts checks it against the kernel's
 * firing rate). Rates are kept per c, so a planner asking run after run pays once.
 */
export function movingRangeRunRate(run: number, c: number): number {
  let chain = mrChains.get(c);
  if (chain === undefined) {
    chain = { g: PHI.slice(), rates: [1] };
    mrChains.set(c, chain);
  }
  while (chain.rates.length <= run) {
    chain.g = nextRunDensity(chain.g, c);
    chain.rates.push(trapezoid(chain.g));
  }
  return chain.rates[run];
}

const GRID_STEP = 1 / 200;
const GRID = Float64Array.from({ length: 4801 }, (_, i) => -12 + i * GRID_STEP);
/** φ on the grid. */
const PHI = GRID.map((x) => Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI));
const mrChains = new Map<number, { g: Float64Array; rates: number[] }>();

function trapezoid(g: Float64Array): number {
  let mass = 0;
  for (let i = 1; i < g.length; i++) mass += (GRID_STEP * (g[i] + g[i - 1])) / 2;
  return mass;
}

/** g_r from g_{r−1}: the density of the newest value when its moving range is beyond c too. */
function nextRunDensity(g: Float64Array, c: number): Float64Array {
  const n = g.length;
  const cumulative = new Float64Array(n);
  for (let i = 1; i < n; i++) cumulative[i] = cumulative[i - 1] + (GRID_STEP * (g[i] + g[i - 1])) / 2;
  const total = cumulative[n - 1];
  const below = (v: number): number => {
    const f = (v - GRID[0]) / GRID_STEP;
    if (f <= 0) return 0;
    if (f >= n - 1) return total;
    const i = Math.floor(f);
    return cumulative[i] + (f - i) * (cumulative[i + 1] - cumulative[i]);
  };
  return GRID.map((x, i) => PHI[i] * (total - (below(x + c) - below(x - c))));
}

const D = DEFAULT_SPC_PARAMS;

/** STEP's window on a settling key (`run`): three means of 10 readings, 30 of the 32 kept. */
export const STEP_WINDOW_SETTLING = 10;

const T = NORMAL_TAIL;

export const WE_RULES: readonly SpcRule[] = Object.freeze([
  {
    number: 1,
    bit: 1,
    name: "WE1",
    description: "one point beyond 3σ",
    window: 1,
    falseAlarmRate: spcRuleRate.beyond3(),
    derivation: "2·T3",
    windowProbabilityOneSide: T[3],
  },
  {
    number: 2,
    bit: 2,
    name: "WE2",
    description: "2 of 3 consecutive points beyond 2σ on one side, the newest among them",
    window: 3,
    falseAlarmRate: spcRuleRate.twoOfThree(),
    derivation: "2·T2·(1 − (1 − T2)²)",
    windowProbabilityOneSide: 3 * T[2] ** 2 * (1 - T[2]) + T[2] ** 3,
  },
  {
    number: 3,
    bit: 4,
    name: "WE3",
    description: "4 of 5 consecutive points beyond 1σ on one side, the newest among them",
    window: 5,
    falseAlarmRate: spcRuleRate.fourOfFive(),
    derivation: "2·T1·(4·T1³(1 − T1) + T1⁴)",
    windowProbabilityOneSide: 5 * T[1] ** 4 * (1 - T[1]) + T[1] ** 5,
  },
  {
    number: 4,
    bit: 8,
    name: "WE4",
    description: `${D.we4Run} points in a row on one side of the centre line`,
    runParam: "we4Run",
    window: D.we4Run,
    falseAlarmRate: spcRuleRate.sameSide(D.we4Run),
    derivation: "2·(½)^r",
    windowProbabilityOneSide: 0.5 ** D.we4Run,
  },
]);

export const NELSON_RULES: readonly SpcRule[] = Object.freeze([
  { ...WE_RULES[0], name: "N1", windowProbabilityOneSide: undefined },
  {
    number: 2,
    bit: 2,
    name: "N2",
    description: `${D.n2Run} points in a row on one side of the centre line`,
    runParam: "n2Run",
    window: D.n2Run,
    falseAlarmRate: spcRuleRate.sameSide(D.n2Run),
    derivation: "2·(½)^r",
  },
  {
    number: 3,
    bit: 4,
    name: "N3",
    description: `${D.n3Run} points in a row steadily increasing or decreasing`,
    runParam: "n3Run",
    window: D.n3Run,
    falseAlarmRate: spcRuleRate.monotone(D.n3Run),
    derivation: "2/r!",
  },
  {
    number: 4,
    bit: 8,
    name: "N4",
    description: `${D.n4Run} points in a row alternating up and down`,
    runParam: "n4Run",
    window: D.n4Run,
    falseAlarmRate: spcRuleRate.alternating(D.n4Run),
    derivation: "2·E_r/r! (E_r Euler zigzag number)",
  },
  { ...WE_RULES[1], number: 5, bit: 16, name: "N5", windowProbabilityOneSide: undefined },
  { ...WE_RULES[2], number: 6, bit: 32, name: "N6", windowProbabilityOneSide: undefined },
  {
    number: 7,
    bit: 64,
    name: "N7",
    description: `${D.n7Run} points in a row within 1σ of the centre line, either side`,
    runParam: "n7Run",
    window: D.n7Run,
    falseAlarmRate: spcRuleRate.within1(D.n7Run),
    derivation: "(1 − 2·T1)^r",
  },
  {
    number: 8,
    bit: 128,
    name: "N8",
    description: `${D.n8Run} points in a row beyond 1σ, either side`,
    runParam: "n8Run",
    window: D.n8Run,
    falseAlarmRate: spcRuleRate.beyond1(D.n8Run),
    derivation: "(2·T1)^r",
  },
]);

/**
 * The moving-range rules (linewatch's, for sensor faults a chart of levels reads late or not at
 * all): bit r − 1 of `mr_mask`. They look at differences of consecutive readings, so a slow
 * trend — a sensor settling after a mode change — leaves them as they are in control.
 */
export const MR_RULES: readonly SpcRule[] = Object.freeze([
  {
    number: 1,
    bit: 1,
    name: "JUMP",
    description: jumpDescription(D.jumpLimit),
    window: 2,
    falseAlarmRate: spcRuleRate.jump(D.jumpLimit),
    derivation: "erfc(c/2)",
  },
  {
    number: 2,
    bit: 2,
    name: "NOISY",
    description: `${D.noisyRun} moving ranges in a row beyond ${NOISY_MR_SIGMAS}σ`,
    runParam: "noisyRun",
    window: D.noisyRun + 1,
    falseAlarmRate: spcRuleRate.noisy(D.noisyRun),
    derivation: "numerical (movingRangeRunRate)",
  },
  {
    number: 3,
    bit: 4,
    name: "STUCK",
    description: `${D.stuckRun} readings in a row equal to the one before`,
    runParam: "stuckRun",
    window: D.stuckRun + 1,
    falseAlarmRate: spcRuleRate.stuck(D.stuckRun),
    derivation: "(½)^r for a tie share ≤ ½; 0 for continuous data",
  },
  {
    number: 4,
    bit: 8,
    name: "STEP",
    description: stepDescription(STEP_WINDOW_SETTLING),
    window: 3 * STEP_WINDOW_SETTLING,
    falseAlarmRate: 0,
    derivation: "erfc(c·√(w/12)); off (0) unless a settling key's",
  },
]);

/** STEP's text for its window w. */
export function stepDescription(window: number): string {
  return `the mean of the last ${window} readings off the line through the means of the ${2 * window} before (a step while settling)`;
}

/** JUMP's text for its limit c (in σ), wherever the rule is named: rules, alerts, `linewatch rules`. */
export function jumpDescription(limit: number): string {
  return `a reading more than ${limit.toFixed(2)}σ from the one before`;
}

function factorial(n: number): number {
  let f = 1;
  for (let i = 2; i <= n; i++) f *= i;
  return f;
}

/**
 * Euler's zigzag number E_n, the number of alternating permutations of n elements starting
 * upwards (OEIS A000111: 1, 1, 1, 2, 5, 16, 61, 272, …), by the Seidel–Entringer boustrophedon:
 * row k is the running sums of row k − 1 read in alternating directions, and E_k is its last entry.
 */
export function zigzagNumber(n: number): number {
  let row = [1];
  for (let k = 1; k <= n; k++) {
    const next = [0];
    for (let j = 0; j < k; j++) next.push(next[j] + row[k - 1 - j]);
    row = next;
  }
  return row[n];
}
