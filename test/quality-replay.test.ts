/**
 * The quality job's restart by replay (engine/jobs/quality-job.ts, used by quality-jetstream.ts),
 * without servers: a job stopped after record k, and a new job that replays from the stopped
 * job's `replayFrom(k)` with outputs muted through k, emit after k exactly what one job running
 * through all the records emits after k — the same predictions, outcomes and episode events — and
 * nothing at or before k. Without the replay (a new job from k + 1), the batches running at the
 * cut are scored on part of their readings: different final predictions.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_QUALITY_JOB, QualityJob } from "../engine/jobs/quality-job.js";
import { QualityModel, type ProcessRecord, type QualityRecord } from "../operators/quality/mod.js";
import { batchHistories } from "../operators/quality/training/quality-dataset.js";
import { encodeQualityModel } from "../operators/quality/training/quality-onnx.js";
import { DEFAULT_QUALITY_TRAIN_OPTIONS, trainQualityModel } from "../operators/quality/training/quality-train.js";
import { type BatchRecord, batchRecords } from "./kit/batch-records.js";

/** Every output of a job, tagged with the position of the record after which it came out. */
type Output = { at: number; what: string; value: unknown };

/** Feeds positions `from`…`to` (1-based) to `job`, flushing after each record. */
async function feed(job: QualityJob, recs: readonly BatchRecord[], from: number, to: number, at: { now: number }): Promise<void> {
  for (let p = from; p <= to; p++) {
    at.now = p;
    const rec = recs[p - 1];
    if (rec.kind === "process") job.process(rec.r, p);
    else job.quality(rec.r, p);
    await job.flush();
  }
}

function newJob(model: QualityModel, out: Output[], at: { now: number }): QualityJob {
  return new QualityJob({
    ...DEFAULT_QUALITY_JOB,
    model,
    intervalMs: 300_000,
    onEpisode: (e) => out.push({ at: at.now, what: "episode", value: e }),
    onPrediction: (p) => out.push({ at: at.now, what: "prediction", value: p }),
    onOutcome: (o) => out.push({ at: at.now, what: "outcome", value: o }),
  });
}

describe("quality job - restart by replay", () => {
  let model: QualityModel;
  const recs = batchRecords(5, 3, 18);
  beforeAll(async () => {
    const train = batchRecords(21, 4, 120);
    const histories = batchHistories(
      train.filter((x) => x.kind === "process").map((x) => x.r as ProcessRecord),
      train.filter((x) => x.kind === "quality").map((x) => x.r as QualityRecord),
    );
    const trained = trainQualityModel(histories, { ...DEFAULT_QUALITY_TRAIN_OPTIONS, epochs: 10 }, "sim");
    model = await QualityModel.fromBytes(encodeQualityModel(trained.spec), "replay.onnx");
  }, 60_000);
  afterAll(async () => {
    await model?.close();
  });

  it("replay - after the cut the restarted job emits what one uninterrupted job emits, nothing before it", async () => {
    const cut = Math.floor(recs.length / 2);
    const whole: Output[] = [];
    const wholeAt = { now: 0 };
    await feed(newJob(model, whole, wholeAt), recs, 1, recs.length, wholeAt);

    const stoppedAt = { now: 0 };
    const stopped = newJob(model, [], stoppedAt);
    await feed(stopped, recs, 1, cut, stoppedAt);
    const from = stopped.replayFrom(cut);
    expect(from, "a batch running at the cut").toBeLessThan(cut + 1);

    const second: Output[] = [];
    const secondAt = { now: 0 };
    const restarted = newJob(model, second, secondAt);
    restarted.replayThrough(cut);
    await feed(restarted, recs, from, recs.length, secondAt);
    expect(restarted.countsNow().replayed).toBe(cut - from + 1);
    expect(second.every((o) => o.at > cut)).toBe(true);
    const after = whole.filter((o) => o.at > cut);
    expect(after.some((o) => o.what === "outcome")).toBe(true);
    expect(after.some((o) => o.what === "episode")).toBe(true);
    expect(second).toEqual(after);
  });

  it("replay - without it the batches running at the cut get other final predictions", async () => {
    const cut = Math.floor(recs.length / 2);
    const whole: Output[] = [];
    const wholeAt = { now: 0 };
    await feed(newJob(model, whole, wholeAt), recs, 1, recs.length, wholeAt);
    const fresh: Output[] = [];
    const freshAt = { now: 0 };
    await feed(newJob(model, fresh, freshAt), recs, cut + 1, recs.length, freshAt);
    const finals = (outs: Output[]) =>
      new Map(
        outs
          .filter((o) => o.what === "prediction" && (o.value as { final: boolean }).final)
          .map((o) => [(o.value as { batch_id: string }).batch_id, (o.value as { predicted_yield: number }).predicted_yield]),
      );
    const a = finals(whole);
    const b = finals(fresh);
    const across = [...b.keys()].filter((id) => recs.slice(0, cut).some((x) => x.kind === "process" && x.r.batch_id === id));
    expect(across.length).toBeGreaterThan(0);
    for (const id of across) expect(b.get(id), id).not.toBe(a.get(id));
  });
});
