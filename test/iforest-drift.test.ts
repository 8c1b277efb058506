/**
 * Drift of the isolation forest, in process on the real kernels (bench/iforest-drift-bench.ts:
 * rolling W = 16 → iforest on (value, std), 4 interleaved keys of i.i.d. N(50, 5²) readings, the
 * forest and its reference histograms trained on another seed), every row through
 * IforestDriftFeed → ModelDriftWatch.observeRow as the run feeds it:
 * - 10⁶ unshifted readings raise no model_drift episode;
 * - value +1σ from reading 500 000: one episode, PSI on `value` within one window (W = 10 000
 *   readings) and ADWIN's `score` within two; `std` stays stable;
 * - a model swapped in mid-stream is a second monitor (its own readings), the one in use.
 */
import { describe, expect, it } from "vitest";
import { driftStreamForest, driftStreamValues, runDriftStream } from "../bench/iforest-drift-bench.js";
import { DEFAULT_MODEL_DRIFT } from "../engine/jobs/mod.js";

const W = DEFAULT_MODEL_DRIFT.psi.window;
const model = driftStreamForest();

/** Readings from `shiftAt` to where `rule` first fired (null: never). */
function firedAfter(episodes: Awaited<ReturnType<typeof runDriftStream>>["episodes"], rule: string, shiftAt: number): number | null {
  const e = episodes.find((x) => x.rules.includes(rule));
  return e === undefined ? null : (e.points.at(-1)?.position ?? 0) - shiftAt;
}

describe("iforest drift on the real kernels", () => {
  it("10⁶ unshifted readings: no episode, every feature stable, no score change", async () => {
    const r = await runDriftStream(model, driftStreamValues(11, 1_000_000), true);
    expect(r.episodes.map((e) => e.description)).toEqual([]);
    const [report] = r.drift?.list() ?? [];
    expect([report.kind, report.version, report.level, report.readings + report.skipped]).toEqual([
      "iforest",
      model.hash,
      "stable",
      1_000_000,
    ]);
    expect(report.score).toMatchObject({ block: 32, blocks: Math.floor(report.readings / 32), detections: 0 });
  }, 120_000);

  it("value +1σ: one episode, value within one window, score within two, std stable", async () => {
    const shiftAt = 500_000;
    const r = await runDriftStream(model, driftStreamValues(12, 1_000_000, 5, shiftAt), true);
    expect(new Set(r.episodes.map((e) => e.episode_id)).size).toBe(1);
    const value = firedAfter(r.episodes, "value", shiftAt) as number;
    const score = firedAfter(r.episodes, "score", shiftAt) as number;
    expect(value).toBeGreaterThan(0);
    expect(value).toBeLessThanOrEqual(W);
    expect(score).toBeGreaterThan(0);
    expect(score).toBeLessThanOrEqual(2 * W);
    expect(firedAfter(r.episodes, "std", shiftAt)).toBeNull();
    expect(r.episodes[0]).toMatchObject({
      family: "model_drift",
      first_rule: "value",
      fields: { machine_id: "model:iforest", sensor_type: model.hash },
    });
    const [report] = r.drift?.list() ?? [];
    expect(report.features.map((f) => [f.name, f.level])).toEqual([
      ["value", "major"],
      ["std", "stable"],
    ]);
    expect(report.score?.last?.direction).toBe("increase");
  }, 120_000);

  it("a model swapped in is watched on its own from its first row; the first keeps its report", async () => {
    const second = driftStreamForest(8);
    const r = await runDriftStream(model, driftStreamValues(13, 40_960), true, DEFAULT_MODEL_DRIFT, { at: 20_480, model: second });
    const reports = r.drift?.list() ?? [];
    expect(reports.map((m) => [m.version, m.in_use, m.readings + m.skipped])).toEqual([
      [second.hash, true, 20_480],
      [model.hash, false, 20_480],
    ]);
  }, 120_000);
});
