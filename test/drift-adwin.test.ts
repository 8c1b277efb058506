/**
 * ADWIN2 (Bifet & Gavaldà 2007) against its definition: the exponential histogram's window
 * statistics equal those of the raw readings it covers at every step; every change it reports is
 * justified by a split of the raw window whose means differ by more than ε_cut; a known mean change
 * is found within the delay the bound predicts; 10⁶ stationary readings raise nothing.
 */
import { describe, expect, it } from "vitest";
import { SeededRandom } from "../engine/core/mod.js";
import { Adwin, DEFAULT_ADWIN_OPTIONS } from "../operators/drift/mod.js";

/** ε_cut of the paper (§3) for a split n₀ | n₁ of a window of n readings with population variance v. */
function epsilonCut(n0: number, n1: number, v: number, delta: number, range: number): number {
  const n = n0 + n1;
  const ln = Math.log((2 * Math.log(n)) / delta);
  const invM = 1 / n0 + 1 / n1;
  return Math.sqrt(2 * invM * v * ln) + ((2 * range) / 3) * invM * ln;
}

/** Whether some split of xs (old first) into parts of at least minPart breaks ε_cut. */
function someSplitBreaks(xs: readonly number[], minPart: number, delta: number, range: number): boolean {
  const n = xs.length;
  const total = xs.reduce((a, b) => a + b, 0);
  const mean = total / n;
  const v = xs.reduce((a, x) => a + (x - mean) ** 2, 0) / n;
  let u0 = 0;
  for (let n0 = 1; n0 < n; n0++) {
    u0 += xs[n0 - 1];
    const n1 = n - n0;
    if (n0 < minPart || n1 < minPart) continue;
    if (Math.abs(u0 / n0 - (total - u0) / n1) > epsilonCut(n0, n1, v, delta, range)) return true;
  }
  return false;
}

describe("ADWIN", () => {
  it("keeps the raw window's length, mean and variance, in O(M log n) buckets, and justifies every cut", () => {
    const rng = new SeededRandom(4);
    const o = DEFAULT_ADWIN_OPTIONS;
    const a = new Adwin();
    const raw: number[] = [];
    let changes = 0;
    for (let t = 0; t < 6000; t++) {
      const level = t < 2000 ? 0.2 : t < 4000 ? 0.6 : 0.35;
      const x = Math.min(1, Math.max(0, level + 0.1 * rng.normal()));
      raw.push(x);
      const change = a.update(x);
      if (change !== null) {
        changes++;
        const before = raw.slice(raw.length - a.width - change.dropped);
        expect(someSplitBreaks(before, o.minPart, o.delta, o.range), `cut at ${t}`).toBe(true);
        const dropped = before.slice(0, change.dropped);
        expect(change.droppedMean).toBeCloseTo(dropped.reduce((s, v) => s + v, 0) / dropped.length, 9);
      }
      const window = raw.slice(raw.length - a.width);
      const mean = window.reduce((s, v) => s + v, 0) / window.length;
      expect(a.mean).toBeCloseTo(mean, 9);
      expect(a.variance).toBeCloseTo(window.reduce((s, v) => s + (v - mean) ** 2, 0) / window.length, 9);
      expect(a.buckets).toBeLessThanOrEqual(o.maxBuckets * (Math.log2(a.width) + 1));
    }
    expect(changes).toBeGreaterThanOrEqual(2);
  });

  it("finds a 1σ mean change within the delay ε_cut predicts (100 seeded streams) and drops old readings", () => {
    // With n₀ ≈ 5000 old readings, ε_cut falls below the 1σ difference once n₁ ≥ 38.5 new ones
    // (σ² ≈ 1, δ = 10⁻⁴, R = 1); checks come every 32 readings, at bucket boundaries.
    const o = DEFAULT_ADWIN_OPTIONS;
    let n1 = 5;
    while (epsilonCut(5000, n1, 1, o.delta, o.range) >= 1) n1++;
    expect(n1).toBe(39);
    let total = 0;
    for (let seed = 1; seed <= 100; seed++) {
      const rng = new SeededRandom(seed * 31 + 5);
      const a = new Adwin();
      let before = 0;
      for (let t = 0; t < 5000; t++) if (a.update(rng.normal()) !== null) before++;
      expect(before).toBe(0);
      let delay = 0;
      let change = null;
      while (change === null) {
        delay++;
        change = a.update(rng.normal() + 1);
      }
      expect(delay).toBeGreaterThanOrEqual(n1 - o.clock);
      expect(delay).toBeLessThanOrEqual(n1 + 2 * o.clock);
      // The first cut drops old buckets only while a split still breaks ε_cut: at detection the
      // evidence is marginal, so how many go varies (later checks drop the rest); what goes is old.
      expect(Math.abs(change.droppedMean)).toBeLessThan(0.1);
      total += delay;
    }
    expect(total / 100).toBeGreaterThan(n1);
    expect(total / 100).toBeLessThan(n1 + o.clock);
  });

  it("raises nothing over 10⁶ stationary readings: N(0, 1), and Bernoulli(½), the widest spread in [0, 1]", () => {
    for (const draw of [(r: SeededRandom) => r.normal(), (r: SeededRandom) => (r.next() < 0.5 ? 1 : 0)]) {
      const rng = new SeededRandom(12);
      const a = new Adwin();
      let changes = 0;
      for (let t = 0; t < 1_000_000; t++) if (a.update(draw(rng)) !== null) changes++;
      expect(changes).toBe(0);
      expect(a.width).toBe(1_000_000);
      expect(a.buckets).toBeLessThanOrEqual(DEFAULT_ADWIN_OPTIONS.maxBuckets * 20);
    }
  });

  it("counts non-finite readings and refuses bad options", () => {
    const a = new Adwin();
    expect(a.update(Number.NaN)).toBeNull();
    expect(a.skipped).toBe(1);
    expect(a.width).toBe(0);
    expect(() => new Adwin({ delta: 0 })).toThrow(/delta/);
    expect(() => new Adwin({ maxBuckets: 1 })).toThrow(/maxBuckets/);
    expect(() => new Adwin({ range: -1 })).toThrow(/range/);
  });
});
