/**
 * Page–Hinkley against its published definition (Page 1954; Hinkley 1971; Gama, Sebastião &
 * Rodrigues 2013 §4.1): a literal implementation below keeps every mₜ and uₜ and takes the minimum
 * and maximum by scanning them, and must alarm at the same reading as the detector on streams
 * with changes. Detection delays on a known mean change match the CUSUM figures the defaults were
 * chosen from (Wald: ≈ (λ + 1.166)/(μ − δ) readings); 10⁶ stationary readings raise nothing.
 */
import { describe, expect, it } from "vitest";
import { SeededRandom } from "../engine/core/mod.js";
import { DEFAULT_PAGE_HINKLEY_OPTIONS, type MeanChange, PageHinkley } from "../operators/drift/mod.js";

/**
 * The definition, literally, with σ known: z̄ₜ the mean of z₁…zₜ, mₜ = Σ_{s≤t}(z_s − z̄_s − δ),
 * alarm "increase" when mₜ − min_{s≤t} m_s > λ; uₜ = Σ(z_s − z̄_s + δ), "decrease" when
 * max_{s≤t} u_s − uₜ > λ; not before `minReadings`; everything restarts after an alarm.
 * Returns the 1-based stream positions of the alarms.
 */
function pageHinkleyByDefinition(xs: readonly number[], delta: number, lambda: number, minReadings: number, sigma: number) {
  const alarms: Array<{ at: number; direction: string }> = [];
  let start = 0;
  for (let t = 0; t < xs.length; t++) {
    const seg = xs.slice(start, t + 1).map((x) => x / sigma);
    const n = seg.length;
    const means = seg.map((_, s) => seg.slice(0, s + 1).reduce((a, b) => a + b, 0) / (s + 1));
    const m = seg.map((_, s) => seg.slice(0, s + 1).reduce((a, z, i) => a + (z - means[i] - delta), 0));
    const u = seg.map((_, s) => seg.slice(0, s + 1).reduce((a, z, i) => a + (z - means[i] + delta), 0));
    if (n < minReadings) continue;
    const up = m[n - 1] - Math.min(0, ...m);
    const down = Math.max(0, ...u) - u[n - 1];
    if (up > lambda || down > lambda) {
      alarms.push({ at: t + 1, direction: up > lambda ? "increase" : "decrease" });
      start = t + 1;
    }
  }
  return alarms;
}

function detectorAlarms(xs: readonly number[], ph: PageHinkley) {
  const alarms: Array<{ at: number; direction: string }> = [];
  xs.forEach((x, t) => {
    const c = ph.update(x);
    if (c !== null) alarms.push({ at: t + 1, direction: c.direction });
  });
  return alarms;
}

describe("Page–Hinkley", () => {
  it("alarms where the literal definition does, both directions, with resets (small streams, σ known)", () => {
    for (let seed = 1; seed <= 4; seed++) {
      const rng = new SeededRandom(seed);
      // Three regimes: mean 10, 13 (a 1.5σ rise), 8.5 (a 2.25σ fall), σ = 2.
      const xs = Array.from({ length: 240 }, (_, t) => 2 * rng.normal() + (t < 80 ? 10 : t < 160 ? 13 : 8.5));
      const options = { delta: 0.5, lambda: 5, minReadings: 10, scale: 2 };
      const want = pageHinkleyByDefinition(xs, options.delta, options.lambda, options.minReadings, options.scale);
      const got = detectorAlarms(xs, new PageHinkley(options));
      expect(got, `seed ${seed}`).toEqual(want);
      expect(got.map((a) => a.direction)).toContain("increase");
      expect(got.map((a) => a.direction)).toContain("decrease");
    }
  });

  it("detects a known mean change after the CUSUM delay: ≈ 42 readings for 1σ, ≈ 14 for 2σ (defaults, 200 streams each)", () => {
    for (const [shift, wald] of [
      [1, (20 + 1.166) / 0.5],
      [2, (20 + 1.166) / 1.5],
      [-1, (20 + 1.166) / 0.5],
    ]) {
      let total = 0;
      for (let seed = 1; seed <= 200; seed++) {
        const rng = new SeededRandom(seed * 31 + 5);
        const ph = new PageHinkley({ scale: 1 });
        let change: MeanChange | null = null;
        let t = 0;
        for (; t < 3000 && change === null; t++) change = ph.update(rng.normal() * 1 + 50);
        expect(change, `no alarm before the change (seed ${seed})`).toBeNull();
        let delay = 0;
        while (change === null) {
          delay++;
          change = ph.update(rng.normal() + 50 + shift);
          expect(delay).toBeLessThan(1000);
        }
        expect(change.direction).toBe(shift > 0 ? "increase" : "decrease");
        total += delay;
      }
      const mean = total / 200;
      expect(mean, `shift ${shift}σ`).toBeGreaterThan(wald * 0.85);
      expect(mean, `shift ${shift}σ`).toBeLessThan(wald * 1.15);
    }
  });

  it("raises nothing over 10⁶ stationary readings, σ estimated from the first readings or given", () => {
    for (const options of [{}, { scale: 0.05 }]) {
      const rng = new SeededRandom(99);
      const ph = new PageHinkley(options);
      let alarms = 0;
      let maxStatistic = 0;
      for (let t = 0; t < 1_000_000; t++) {
        if (ph.update(0.7 + 0.05 * rng.normal()) !== null) alarms++;
        const s = ph.statistics;
        maxStatistic = Math.max(maxStatistic, s.increase, s.decrease);
      }
      expect(alarms).toBe(0);
      expect(ph.readings).toBe(1_000_000);
      // The reflected walk with drift −δ = −0.5 has an exponential tail e^(−2δx): its maximum over 10⁶ steps is ≈ ln(10⁶) ≈ 14.
      expect(maxStatistic).toBeLessThan(DEFAULT_PAGE_HINKLEY_OPTIONS.lambda);
    }
  });

  it("waits for minReadings, estimates σ from them, resets after an alarm, and counts non-finite readings", () => {
    const ph = new PageHinkley({ minReadings: 20 });
    for (let t = 0; t < 20; t++) expect(ph.update(t % 2)).toBeNull();
    expect(ph.readings).toBe(20);
    // σ of the warm-up (0, 1, 0, 1, …) is 0.513: a jump to 1000 is ≈ 1950σ, over λ = 20 at the first reading.
    const change = ph.update(1000);
    expect(change?.direction).toBe("increase");
    expect(change?.scale).toBeCloseTo(Math.sqrt(20 / 4 / 19), 12);
    expect(ph.readings).toBe(0);
    expect(ph.update(Number.NaN)).toBeNull();
    expect(ph.skipped).toBe(1);
    expect(() => new PageHinkley({ lambda: 0 })).toThrow(/lambda/);
    expect(() => new PageHinkley({ minReadings: 1 })).toThrow(/minReadings/);
    expect(() => new PageHinkley({ scale: -1 })).toThrow(/scale/);
  });
});
