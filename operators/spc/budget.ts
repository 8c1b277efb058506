/**
 * What a false-alarm budget turns on: the rules, the CUSUM decision interval and the EWMA limit
 * width a key may have so that, on in-control data, alarms come at most `budget` per reading.
 *
 * The budget is a probability per reading (its inverse is the in-control average run length,
 * ARL₀). Half of it goes to the rules. A quarter to the rules of the chart of levels, chosen as
 * {@link rulesForBudget} does; when WE4 (a run on one side of the centre line) does not fit at
 * its run length, it runs with the shortest run that fits what is left, so a sensor stuck off the
 * centre line is still caught. A quarter to the moving-range rules, a twelfth each: JUMP's limit
 * (widened for the error of a baseline's σ, {@link sigmaAllowance}), and the shortest NOISY and
 * STUCK runs that fit. The other half goes to the two drift charts, a quarter each: the CUSUM decision interval
 * h and the EWMA width L are set so that each chart's ARL₀ is four times the budget's — unless the
 * user gave them. The sum of the shares bounds the union's rate from above (as for the rules).
 *
 * ARL₀ of the two-sided CUSUM: Siegmund's approximation (Siegmund 1985; Montgomery, Introduction
 * to SQC, 6th ed., §9.1.3), ARL⁺ = (e^{2kb} − 2kb − 1) / (2k²) with b = h + 1.166, two-sided
 * ARL = ARL⁺ / 2 (k = 0.5, h = 5 gives 469 against the 465 of Montgomery's table). ARL₀ of the
 * EWMA chart (asymptotic limits ±L·√(λ/(2−λ))): the Markov chain of Lucas & Saccucci (1990), the
 * chart's range cut into 101 states.
 */
import { ConfigError } from "../../engine/core/mod.js";
import { normalCdf } from "../normal.js";
import { MR_RUN_MAX, SPC_RUN_MAX, STEP_WINDOW_SETTLING, spcRuleRate, type SpcParams } from "./layout.js";
import type { RuleSelection } from "./rules.js";
import { rulesForBudget } from "./rules.js";

/** What a budget sets, and why (for `linewatch rules` and the run's start-up line). */
export interface BudgetPlan {
  budget: number;
  /** The parameters to run with: h, L and the WE4 run as the budget set them (or as given). */
  params: SpcParams;
  rules: RuleSelection;
  /** Rate per reading each part may have, and the in-control ARL it gets. */
  shares: { rules: number; cusum: number; ewma: number };
  arl: { cusum: number; ewma: number };
  /**
   * STEP on a sensor's settling keys, where the charts of levels are off (rules.ts settlingRules):
   * it takes the chart-of-levels rules' quarter of the budget, its limit widened for a σ from a
   * baseline as JUMP's is.
   */
  settlingStep: { window: number; limit: number; rate: number };
}

/** Which of the budget's parameters the user gave (those stay as given). */
export interface ExplicitSpcParams {
  cusumH?: boolean;
  ewmaL?: boolean;
  we4Run?: boolean;
  jumpLimit?: boolean;
  noisyRun?: boolean;
  stuckRun?: boolean;
}

/** The rules and chart thresholds for a budget (false alarms per reading). */
export function planForBudget(budget: number, params: SpcParams, explicit: ExplicitSpcParams = {}): BudgetPlan {
  if (!(budget > 0) || !(budget < 1)) throw new ConfigError("falseAlarmBudget", `must be a probability in (0, 1), got ${budget}`);
  const half = budget / 2;
  const p: SpcParams = { ...params };
  // The rules' half: the chart-of-levels rules get one half of it, the moving-range rules the other.
  let rules = rulesForBudget(half / 2, p);
  if ((rules.we & WE4_BIT) === 0 && !explicit.we4Run) {
    const run = shortestRun(spcRuleRate.sameSide, half / 2 - rules.rate, 2, SPC_RUN_MAX);
    if (run !== null) {
      p.we4Run = run;
      rules = { ...rules, we: rules.we | WE4_BIT, rate: rules.rate + spcRuleRate.sameSide(run) };
    }
  }
  rules = withMovingRangeRules(rules, p, half / 2, explicit);
  const chartShare = half / 2;
  if (!explicit.cusumH) p.cusumH = cusumHForArl(p.cusumK, 1 / chartShare);
  if (!explicit.ewmaL) p.ewmaL = ewmaLForArl(p.ewmaLambda, 1 / chartShare);
  const stepLimit = stepLimitForRate(half / 2, STEP_WINDOW_SETTLING) * sigmaAllowance(p);
  return {
    budget,
    params: p,
    rules,
    shares: { rules: half, cusum: chartShare, ewma: chartShare },
    arl: { cusum: cusumArl(p.cusumK, p.cusumH), ewma: ewmaArl(p.ewmaLambda, p.ewmaL) },
    settlingStep: { window: STEP_WINDOW_SETTLING, limit: stepLimit, rate: spcRuleRate.step(stepLimit, STEP_WINDOW_SETTLING) },
  };
}

/** STEP's limit c (in σ) at which erfc(c·√(w/12)) = rate, for a known σ. */
export function stepLimitForRate(rate: number, window: number): number {
  return increasingRoot((c) => 1 / spcRuleRate.step(c, window), 1 / rate, 0, 60, 1e-9);
}

/**
 * The moving-range rules that fit `share`, a third each, set in `p` (JUMP's limit, the shortest
 * NOISY and STUCK runs that fit) unless the user gave them; given ones are on when they fit.
 */
function withMovingRangeRules(rules: RuleSelection, p: SpcParams, share: number, explicit: ExplicitSpcParams): RuleSelection {
  const each = share / 3;
  if (!explicit.jumpLimit) p.jumpLimit = jumpLimitForRate(each) * sigmaAllowance(p);
  if (!explicit.noisyRun) p.noisyRun = shortestRun(spcRuleRate.noisy, each, 1, MR_RUN_MAX) ?? p.noisyRun;
  if (!explicit.stuckRun) p.stuckRun = shortestRun(spcRuleRate.stuck, each, 1, MR_RUN_MAX) ?? p.stuckRun;
  const rates = [spcRuleRate.jump(p.jumpLimit), spcRuleRate.noisy(p.noisyRun), spcRuleRate.stuck(p.stuckRun)];
  let { mr, rate } = rules;
  rates.forEach((r, i) => {
    if (r > each) return;
    mr |= 1 << i;
    rate += r;
  });
  return { ...rules, mr, rate };
}

/**
 * How much wider JUMP's limit is set than the rate asks for a known σ: σ comes from a baseline of
 * n readings, and at 7σ a σ read 10 % low multiplies the false-alarm rate by about ten (at 3σ by
 * two), so the limit is taken for a σ two standard errors low. Standard error of σ̂ relative to σ:
 * 0.91/√(n − 1) for the mean moving range / d2 (its efficiency against s is about 0.6; checked by
 * simulation: 0.905 at n = 300), 1/√(2(n − 1)) for the sample standard deviation. No baseline
 * (limits given): 1.
 */
function sigmaAllowance(p: SpcParams): number {
  if (p.baselineN < 2) return 1;
  const se = (p.sigmaMethod === "mr" ? 0.91 : Math.SQRT1_2) / Math.sqrt(p.baselineN - 1);
  return 1 / Math.max(0.5, 1 - 2 * se);
}

/** JUMP's limit c (in σ) at which erfc(c/2) = rate: the ARL 1/erfc(c/2) grows with c. */
function jumpLimitForRate(rate: number): number {
  return increasingRoot((c) => 1 / spcRuleRate.jump(c), 1 / rate, 0, 40, 1e-9);
}

/** The shortest run in [min, max] (the kernel's history bounds it) whose rate fits `rate`; null if none. */
function shortestRun(rateOf: (run: number) => number, rate: number, min: number, max: number): number | null {
  for (let n = min; n <= max; n++) if (rateOf(n) <= rate) return n;
  return null;
}

const WE4_BIT = 0b1000;

/** In-control ARL of the two-sided tabular CUSUM with reference k and interval h (in σ), Siegmund. */
export function cusumArl(k: number, h: number): number {
  const b = h + 1.166;
  const oneSided = k === 0 ? b * b : (Math.exp(2 * k * b) - 2 * k * b - 1) / (2 * k * k);
  return oneSided / 2;
}

/** The h (in σ) at which the two-sided CUSUM's ARL₀ is `arl`. */
export function cusumHForArl(k: number, arl: number): number {
  return increasingRoot((h) => cusumArl(k, h), arl, 0, 200);
}

/** In-control ARL of the EWMA chart with weight λ and asymptotic limits ±L·√(λ/(2−λ)). */
export function ewmaArl(lambda: number, L: number, states = 101): number {
  const c = L * Math.sqrt(lambda / (2 - lambda));
  const w = (2 * c) / states;
  const centre = (j: number): number => -c + (j + 0.5) * w;
  // (I − P)·arl = 1, P[i][j] = P(the next z falls in state j | z in state i).
  const a: number[][] = [];
  for (let i = 0; i < states; i++) {
    const from = (1 - lambda) * centre(i);
    const row = new Array<number>(states + 1);
    for (let j = 0; j < states; j++) {
      const pij = normalCdf((centre(j) + w / 2 - from) / lambda) - normalCdf((centre(j) - w / 2 - from) / lambda);
      row[j] = (i === j ? 1 : 0) - pij;
    }
    row[states] = 1;
    a.push(row);
  }
  return solve(a)[(states - 1) / 2];
}

/** The L at which the EWMA chart's ARL₀ is `arl`. */
export function ewmaLForArl(lambda: number, arl: number): number {
  return increasingRoot((L) => ewmaArl(lambda, L), arl, 0.1, 12);
}

/** x in [lo, hi] with f(x) = target for an increasing f, by bisection to `tolerance`. */
function increasingRoot(f: (x: number) => number, target: number, lo: number, hi: number, tolerance = 1e-6): number {
  if (f(hi) < target) throw new ConfigError("falseAlarmBudget", `needs an average run length of ${target.toPrecision(3)}, beyond reach`);
  let a = lo;
  let b = hi;
  while (b - a > tolerance) {
    const m = (a + b) / 2;
    if (f(m) < target) a = m;
    else b = m;
  }
  return b;
}

/** Gaussian elimination with partial pivoting on an augmented n × (n + 1) matrix. */
function solve(a: number[][]): number[] {
  const n = a.length;
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(a[r][col]) > Math.abs(a[pivot][col])) pivot = r;
    [a[col], a[pivot]] = [a[pivot], a[col]];
    for (let r = col + 1; r < n; r++) {
      const f = a[r][col] / a[col][col];
      if (f === 0) continue;
      for (let c = col; c <= n; c++) a[r][c] -= f * a[col][c];
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = a[r][n];
    for (let c = r + 1; c < n; c++) s -= a[r][c] * x[c];
    x[r] = s / a[r][r];
  }
  return x;
}
