/**
 * The PSI monitor on streams with a known answer. Training and live readings are independent
 * N(0, 1) per feature (seeded sfc32), reference histograms of 10 decile bins from 10⁵ training rows.
 *
 * The stated bound: after feature c shifts by δ (σ units) the full-window proportions of bin i go
 * from pᵢ = Φ(eᵢ) − Φ(eᵢ₋₁) to p′ᵢ = Φ(eᵢ − δ) − Φ(eᵢ₋₁ − δ) (eᵢ the reference edges). j readings
 * after the shift the window holds the mixture (1 − j/W)·p + (j/W)·p′, whose PSI against the
 * reference reaches a threshold T at j* = f*(T)·W, f* found by bisection. The monitor must raise
 * the level within j* ± W/10 readings (the ± is the window's sampling noise: a bin count's standard
 * deviation is √(W·0.09) ≈ 9.5 readings at W = 1000), and on feature c only.
 */
import { describe, expect, it } from "vitest";
import { SeededRandom } from "../engine/core/mod.js";
import {
  buildReferenceHistograms,
  type DriftChange,
  PsiMonitor,
  mixtureCrossing,
  type ReferenceHistograms,
} from "../operators/drift/mod.js";
import { normalCdf } from "../operators/normal.js";

const FEATURES = ["a", "b", "c", "d"];
const W = 1000;

function normalReference(seed: number, rows = 100_000): ReferenceHistograms {
  const rng = new SeededRandom(seed);
  const values = new Float64Array(rows * FEATURES.length);
  for (let i = 0; i < values.length; i++) values[i] = rng.normal();
  return buildReferenceHistograms(values, rows, FEATURES, 10);
}

/** j* / W: the smallest shifted fraction of a full window whose expected PSI reaches `threshold` (null: never). */
function shiftedFraction(ref: ReferenceHistograms, j: number, delta: number, threshold: number): number | null {
  const edges = Array.from(ref.features[j].edges);
  const probs = (d: number) => {
    const cdf = [0, ...edges.map((e) => normalCdf(e - d)), 1];
    return cdf.slice(1).map((c, i) => c - cdf[i]);
  };
  return mixtureCrossing(probs(0), probs(delta), ref.features[j].counts, threshold);
}

interface ShiftRun {
  toModerate: number | null;
  toMajor: number | null;
  changesBefore: number;
  named: Set<string>;
}

function runShift(ref: ReferenceHistograms, seed: number, shiftFeature: number, delta: number, before: number, after: number): ShiftRun {
  const rng = new SeededRandom(seed);
  const monitor = new PsiMonitor(ref, { window: W });
  const row = new Float64Array(FEATURES.length);
  const run: ShiftRun = { toModerate: null, toMajor: null, changesBefore: 0, named: new Set() };
  for (let t = 1; t <= before + after; t++) {
    for (let j = 0; j < row.length; j++) row[j] = rng.normal() + (j === shiftFeature && t > before ? delta : 0);
    const change: DriftChange | null = monitor.observe(row);
    if (change === null) continue;
    if (t <= before) run.changesBefore++;
    for (const m of change.moved) run.named.add(m.name);
    for (const m of change.changed) run.named.add(m.name);
    if (change.to !== "stable" && run.toModerate === null) run.toModerate = t - before;
    if (change.to === "major" && run.toMajor === null) run.toMajor = t - before;
  }
  return run;
}

describe("PSI monitor", () => {
  const ref = normalReference(42);

  it("raises drift on the shifted feature only, within j* ± W/10 readings of a 1σ shift (20 seeded streams)", () => {
    const moderate = shiftedFraction(ref, 2, 1, 0.1) as number;
    const major = shiftedFraction(ref, 2, 1, 0.25) as number;
    // The figures the bound rests on: a full window shifted by 1σ has PSI ≈ 0.93.
    expect(moderate * W).toBeGreaterThan(300);
    expect(moderate * W).toBeLessThan(350);
    expect(major * W).toBeGreaterThan(500);
    expect(major * W).toBeLessThan(560);
    for (let seed = 1; seed <= 20; seed++) {
      const run = runShift(ref, seed, 2, 1, 5000, 2 * W);
      expect(run.changesBefore, `seed ${seed}`).toBe(0);
      expect([...run.named], `seed ${seed}`).toEqual(["c"]);
      expect(Math.abs((run.toModerate as number) - moderate * W), `seed ${seed} moderate`).toBeLessThanOrEqual(W / 10);
      expect(Math.abs((run.toMajor as number) - major * W), `seed ${seed} major`).toBeLessThanOrEqual(W / 10);
    }
  });

  it("reports stable → moderate → major and back, with the features that moved", () => {
    const rng = new SeededRandom(9);
    const monitor = new PsiMonitor(ref, { window: W });
    const row = new Float64Array(4);
    const changes: DriftChange[] = [];
    for (let t = 1; t <= 12_000; t++) {
      const shifted = t > 3000 && t <= 6000;
      for (let j = 0; j < 4; j++) row[j] = rng.normal() + (shifted && j === 1 ? 1.5 : 0);
      const c = monitor.observe(row);
      if (c !== null) changes.push(c);
    }
    expect(changes.map((c) => `${c.from}→${c.to}`)).toEqual(["stable→moderate", "moderate→major", "major→moderate", "moderate→stable"]);
    expect(changes.map((c) => c.changed.map((f) => f.name))).toEqual([["b"], ["b"], ["b"], ["b"]]);
    expect(changes[1].moved.map((f) => [f.name, f.level])).toEqual([["b", "major"]]);
    expect(changes[3].moved).toEqual([]);
    expect(monitor.level).toBe("stable");
    // The way back: the shifted readings leave the window one by one after t = 6000.
    expect(changes[3].reading).toBeGreaterThan(6000);
    expect(changes[3].reading).toBeLessThan(6000 + W);
  });

  it("an unshifted stream raises nothing over 10⁶ readings, and its PSI stays near the χ² prediction", () => {
    const rng = new SeededRandom(2024);
    const monitor = new PsiMonitor(ref, { window: W });
    const f = FEATURES.length;
    const block = 10_000;
    const rows = new Float64Array(block * f);
    let changes = 0;
    let maxPsi = 0;
    const sum = new Float64Array(f);
    let evaluations = 0;
    for (let done = 0; done < 1_000_000; done += block) {
      for (let i = 0; i < rows.length; i++) rows[i] = rng.normal();
      for (let r = 0; r < block; r++) {
        if (monitor.observe(rows, r * f) !== null) changes++;
        if (monitor.readings < W) continue;
        evaluations++;
        for (let j = 0; j < f; j++) {
          sum[j] += monitor.psi[j];
          if (monitor.psi[j] > maxPsi) maxPsi = monitor.psi[j];
        }
      }
    }
    expect(monitor.readings).toBe(1_000_000);
    expect(changes).toBe(0);
    expect(monitor.level).toBe("stable");
    // E[PSI] ≈ (k − 1)(1/W + 1/N) = 9·(1/1000 + 1/100000) ≈ 0.0091 per feature (χ²₉ approximation).
    for (let j = 0; j < f; j++) {
      expect(sum[j] / evaluations).toBeGreaterThan(0.0075);
      expect(sum[j] / evaluations).toBeLessThan(0.0105);
    }
    // The largest of ~4·10⁶ correlated evaluations stays far below the moderate threshold.
    expect(maxPsi).toBeLessThan(0.05);
  });

  it("hysteresis keeps a feature hovering at the threshold from flickering", () => {
    // A 0.34σ shift puts the full window's PSI near 0.1: without hysteresis the level flips often.
    const count = (exitRatio: number) => {
      const rng = new SeededRandom(77);
      const monitor = new PsiMonitor(ref, { window: W, exitRatio });
      const row = new Float64Array(4);
      let changes = 0;
      for (let t = 0; t < 200_000; t++) {
        for (let j = 0; j < 4; j++) row[j] = rng.normal() + (j === 0 ? 0.34 : 0);
        if (monitor.observe(row) !== null) changes++;
      }
      return changes;
    };
    const without = count(1);
    const withBand = count(0.8);
    expect(without).toBeGreaterThan(20);
    expect(withBand).toBeLessThan(without / 5);
  });

  it("needs a full window before it judges, skips non-finite rows, and refuses bad options", () => {
    const monitor = new PsiMonitor(ref, { window: 10 });
    const far = [9, 9, 9, 9];
    for (let t = 1; t < 10; t++) expect(monitor.observe(far)).toBeNull();
    expect(monitor.observe([Number.NaN, 0, 0, 0])).toBeNull();
    expect(monitor.skipped).toBe(1);
    const c = monitor.observe(far);
    expect(c?.to).toBe("major");
    expect(c?.moved.map((m) => m.name).sort()).toEqual(FEATURES);
    const snap = monitor.snapshot();
    expect(snap).toMatchObject({ level: "major", window: 10, filled: 10, readings: 10, skipped: 1 });
    expect(snap.features.map((x) => x.level)).toEqual(["major", "major", "major", "major"]);
    expect(JSON.parse(JSON.stringify(snap))).toEqual(snap);
    expect(new PsiMonitor(ref).snapshot().features[0].psi).toBeNull();
    expect(() => new PsiMonitor(ref, { window: 0 })).toThrow(/window/);
    expect(() => new PsiMonitor(ref, { moderate: 0.3, major: 0.2 })).toThrow(/major/);
    expect(() => new PsiMonitor(ref, { exitRatio: 1.5 })).toThrow(/exitRatio/);
  });

  it("dwell delays a level change by dwell − 1 evaluations", () => {
    const at = (dwell: number) => {
      const rng = new SeededRandom(5);
      const monitor = new PsiMonitor(ref, { window: W, dwell });
      const row = new Float64Array(4);
      for (let t = 1; t <= 5000; t++) {
        for (let j = 0; j < 4; j++) row[j] = rng.normal() + (j === 3 && t > 2000 ? 2 : 0);
        const c = monitor.observe(row);
        if (c !== null) return c.reading;
      }
      return null;
    };
    const first = at(1) as number;
    // A 2σ shift raises PSI monotonically enough that the condition, once met, holds.
    expect(at(25)).toBe(first + 24);
  });
});
