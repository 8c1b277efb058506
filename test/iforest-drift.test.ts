/**
 * Drift of the isolation forest, in process on the real kernels (bench/iforest-drift-bench.ts:
 * rolling W = 16 → iforest on (value, std), 4 interleaved keys of i.i.d. N(50, 5²) readings, the
 * forest and its reference histograms trained on another seed), every row through
 * IforestDriftFeed → ModelDriftWatch.observeRow as the run feeds it:
 * - 10⁶ unshifted readings raise no model_drift episode;
 * - value +1σ from reading 500 000: one episode, PSI on `value` within one window (W = 10 000
 *   readings) and ADWIN's `score` within two; `std` stays stable;
 * - a model swapped in mid-stream is a second monitor (its own readings), the one in use;
 * - an ingest worker's rows for the watch: in messages of 4096, the model told once, and never
 *   more than DRIFT_ROWS_PENDING_MAX untaken — the rest shed and counted.
 */
import { describe, expect, it } from "vitest";
import { driftStreamForest, driftStreamValues, runDriftStream } from "../bench/iforest-drift-bench.js";
import type { OutputChunk } from "../engine/core/mod.js";
import { DRIFT_MESSAGE_ROWS, DRIFT_ROWS_PENDING_MAX, DriftRowsOut } from "../engine/jobs/ingest/drift-rows.js";
import { COUNTER, COUNTER_SLOTS, type DriftRows, type IngestEvent } from "../engine/jobs/ingest/protocol.js";
import { DEFAULT_MODEL_DRIFT } from "../engine/jobs/mod.js";
import { iforestAnalysis } from "../operators/iforest/mod.js";

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

  it("an ingest worker's rows: messages of 4096, the model sent once, at most 65 536 untaken, the rest shed and counted", () => {
    const forest = iforestAnalysis({ model, features: ["value", "std"], rollingIndex: 0 });
    const counters = new Float64Array(2 * COUNTER_SLOTS);
    const base = COUNTER_SLOTS;
    const out = new DriftRowsOut(forest, 1, counters, base);
    const sent: DriftRows[] = [];
    const post = (e: IngestEvent) => {
      if (e.kind === "driftRows") sent.push(e.drift);
    };
    const n = 5000;
    const rows = new Float64Array(n * 4);
    for (let i = 0; i < n; i++) rows.set([50 + i, 5, 0.5, 0], i * 4);
    const chunk = {
      length: n,
      outs: [new Float64Array(0), rows],
      times: Float64Array.from({ length: n }, (_, i) => i),
    } as unknown as OutputChunk;
    // Nothing taken: 13 chunks of 5000 reach the bound (65 536) in the 14th.
    for (let c = 0; c < 14; c++) out.add(chunk, post);
    out.send(post);
    const total = sent.reduce((a, d) => a + d.n, 0);
    expect(total).toBe(DRIFT_ROWS_PENDING_MAX);
    expect(sent.every((d) => d.n <= DRIFT_MESSAGE_ROWS && d.fields === 4)).toBe(true);
    expect(counters[base + COUNTER.driftRowsShed]).toBe(14 * n - DRIFT_ROWS_PENDING_MAX);
    expect(sent.map((d) => d.models.length)).toEqual([1, ...Array(sent.length - 1).fill(0)]);
    expect(sent[0].models[0].hash).toBe(model.hash);
    // Rows in order, times with them.
    expect([sent[0].rows[4], sent[0].times[1], sent[1].rows[0]]).toEqual([51, 1, 50 + (DRIFT_MESSAGE_ROWS % n)]);
    // Once the main thread took them, rows flow again.
    counters[base + COUNTER.driftRowsTaken] = counters[base + COUNTER.driftRowsSent];
    out.add(chunk, post);
    out.send(post);
    expect(sent.reduce((a, d) => a + d.n, 0)).toBe(DRIFT_ROWS_PENDING_MAX + n);
  });
});
