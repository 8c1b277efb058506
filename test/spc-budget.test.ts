import { describe, expect, it } from "vitest";
import { cusumArl, cusumHForArl, DEFAULT_SPC_PARAMS, ewmaArl, ewmaLForArl, planForBudget, spcRuleRate } from "../operators/spc/mod.js";
import { ConfigError } from "../engine/core/errors.js";

describe("false-alarm budget: chart thresholds from in-control average run lengths", () => {
  it("CUSUM ARL₀ follows Montgomery's table (k = 0.5: h = 4 → 168, h = 5 → 465) within Siegmund's 1 %", () => {
    expect(cusumArl(0.5, 4) / 168).toBeCloseTo(1, 1);
    expect(Math.abs(cusumArl(0.5, 5) / 465 - 1)).toBeLessThan(0.011);
    expect(cusumArl(0.5, cusumHForArl(0.5, 10_000)) / 10_000).toBeCloseTo(1, 4);
  });

  it("EWMA ARL₀ by the Markov chain matches Lucas & Saccucci's ARL 500 designs and the Shewhart limit at λ = 1", () => {
    for (const [lambda, L] of [
      [0.05, 2.615],
      [0.1, 2.814],
      [0.2, 2.962],
    ]) {
      expect(Math.abs(ewmaArl(lambda, L) / 500 - 1)).toBeLessThan(0.02);
    }
    expect(Math.abs(ewmaArl(1, 3) * spcRuleRate.beyond3() - 1)).toBeLessThan(1e-3);
    expect(ewmaArl(0.2, ewmaLForArl(0.2, 50_000)) / 50_000).toBeCloseTo(1, 3);
  });

  it("a budget of one in 370 readings keeps the union of its detectors within it", () => {
    const plan = planForBudget(1 / 370, { ...DEFAULT_SPC_PARAMS });
    const total = plan.rules.rate + 1 / plan.arl.cusum + 1 / plan.arl.ewma;
    expect(total).toBeLessThanOrEqual(plan.budget * (1 + 1e-6));
    // Of the standard rules only Nelson 8 (8 beyond 1σ) fits a quarter of 1/370; WE4 runs 12 on one side.
    expect(plan.rules.we).toBe(0b1000);
    expect(plan.rules.nelson).toBe(0b10000000);
    expect(plan.params.we4Run).toBe(12);
    // The moving-range rules share the other quarter of the rules' half.
    expect(plan.rules.mr).toBe(0b111);
  });

  it("one false alarm per 8 hours at 10 readings per second: WE4 over 22 points, CUSUM and EWMA at ARL₀ 1.15 M, JUMP, NOISY and STUCK at a twelfth each", () => {
    const budget = 1 / (8 * 3600 * 10);
    const plan = planForBudget(budget, { ...DEFAULT_SPC_PARAMS, baselineN: 300 });
    expect(plan.params.we4Run).toBe(22);
    // JUMP: erfc(c/2) = budget/12 gives c = 7.26σ, widened by 1/(1 − 2·0.91/√299) for σ from 300 readings.
    expect(plan.params.jumpLimit / (1 / (1 - (2 * 0.91) / Math.sqrt(299)))).toBeCloseTo(7.26, 2);
    expect(spcRuleRate.jump(7.2567)).toBeCloseTo(budget / 12, 8);
    // The shortest runs whose rate fits a twelfth: (½)^22 for STUCK; NOISY by its numerical rate.
    expect(plan.params.stuckRun).toBe(22);
    expect(spcRuleRate.noisy(plan.params.noisyRun)).toBeLessThanOrEqual(budget / 12);
    expect(spcRuleRate.noisy(plan.params.noisyRun - 1)).toBeGreaterThan(budget / 12);
    expect(plan.rules.mr).toBe(0b111);
    expect(plan.arl.cusum * budget).toBeCloseTo(4, 3);
    expect(plan.arl.ewma * budget).toBeCloseTo(4, 2);
    expect(plan.params.cusumH).toBeGreaterThan(12);
  });

  it("keeps the thresholds a user gave", () => {
    const plan = planForBudget(0.001, { ...DEFAULT_SPC_PARAMS, cusumH: 7 }, { cusumH: true });
    expect(plan.params.cusumH).toBe(7);
    expect(() => planForBudget(0, { ...DEFAULT_SPC_PARAMS })).toThrow(ConfigError);
  });
});
