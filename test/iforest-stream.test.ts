import { describe, expect, it } from "vitest";
import { allocateBatch, appendRecord, StreamEngine } from "../engine/core/mod.js";
import { iforestAnalysis } from "../operators/iforest/iforest.js";
import { trainIsolationForest } from "../operators/iforest/training/train.js";
import { rollingAnalysis, ROLLING_FIELDS } from "../operators/rolling/rolling.js";
import type { RecordAnalysis } from "../operators/analysis.js";
import { referenceScore } from "../kernels/reference/iforest-reference.js";
import { SeededRandom } from "../engine/core/mod.js";

/** A model of (value, mean, z) trained on in-control readings of one sensor. */
function trainOn(seed: number) {
  const r = new SeededRandom(seed);
  const rows = 2000;
  const values = new Float64Array(rows * 3);
  for (let i = 0; i < rows; i++) {
    values[i * 3] = 6 + r.normal() * 0.1;
    values[i * 3 + 1] = 6 + r.normal() * 0.02;
    values[i * 3 + 2] = r.normal();
  }
  return trainIsolationForest({ values, rows, columns: 3, names: ["value", "mean", "z"] }, { trees: 50, sampleSize: 128, seed });
}

describe("iforest in the stream - features from the reading and its rolling statistics", () => {
  it("scores each record like the reference on the same features, and a swapped model takes over at a batch boundary", async () => {
    const first = trainOn(1);
    const second = trainOn(2);
    const rolling = rollingAnalysis({ window: { kind: "count", records: 16 }, alpha: 0.2, timeScale: 1 });
    const swaps: string[] = [];
    const forest = iforestAnalysis({
      model: first,
      features: ["value", "mean", "z"],
      rollingIndex: 0,
      onSwap: (a, b) => swaps.push(`${a}>${b}`),
    });
    const analyses: RecordAnalysis[] = [rolling, forest];
    const out = new Map<number, { value: number; rolling: number[]; forest: number[]; json: string }>();
    const engine = new StreamEngine(
      {
        kernels: analyses.map((a) => a.kernel),
        workers: 2,
        groups: 4,
        keysMax: 16,
        batchRecordsMax: 64,
        lateness: null,
        reorderRecordsPerKeyMax: 1,
      },
      {
        onOutput(chunk) {
          for (let i = 0; i < chunk.length; i++) {
            const rows = analyses.map((_a, k) => chunk.outs[k].subarray(i * chunk.outFields[k], (i + 1) * chunk.outFields[k]));
            analyses.forEach((a, k) =>
              a.observe?.(rows[k], {
                keyId: chunk.keyIds[i],
                key: "",
                position: chunk.positions[i],
                time: chunk.times[i],
                value: chunk.values[i],
              }),
            );
            out.set(chunk.positions[i], {
              value: chunk.values[i],
              rolling: Array.from(rows[0]),
              forest: Array.from(rows[1]),
              json: forest.rowJson(rows[1]),
            });
          }
        },
      },
    );
    const r = new SeededRandom(9);
    const ids = [0, 1, 2].map((k) => engine.internKey(`M-${k}/pressure`));
    const push = async (from: number, to: number) => {
      const batch = allocateBatch(to - from);
      for (let i = from; i < to; i++) appendRecord(batch, ids[i % 3], i, 6 + r.normal() * 0.1 + (i % 97 === 0 ? 2 : 0), i);
      await engine.push(batch);
    };
    await push(0, 600);
    await forest.swapModel(engine, second);
    await push(600, 1200);
    await engine.close();

    expect(swaps).toEqual([`${first.hash}>${second.hash}`]);
    expect(out.size).toBe(1200);
    const col = (f: string) => (ROLLING_FIELDS as readonly string[]).indexOf(f);
    let scored = 0;
    for (let i = 0; i < 1200; i++) {
      const o = out.get(i)!;
      const x = [o.value, o.rolling[col("mean")], o.rolling[col("z")]];
      // The gathered features are the reading and its key's rolling statistics.
      expect(o.forest[0]).toBe(x[0]);
      expect(o.forest[1]).toBe(x[1]);
      expect(Object.is(o.forest[2], x[2])).toBe(true);
      const model = i < 600 ? first : second;
      const parsed = JSON.parse(`{${o.json}}`) as { iforest_score: number | null; model_hash: string | null };
      if (x.every(Number.isFinite)) {
        scored++;
        expect(parsed.model_hash).toBe(model.hash);
        expect(Math.abs((parsed.iforest_score as number) - referenceScore(model, (f) => x[f]))).toBeLessThanOrEqual(1e-12);
      } else {
        expect(parsed).toEqual({ iforest_score: null, model_hash: null });
      }
    }
    expect(scored).toBeGreaterThan(1100);
  });
});
