/**
 * The built-in plant's failure model (engine/cli/sim-failure-model.ts): trained deterministically
 * on the simulator's wear, cached by key (a second start reads the cache and trains nothing), and a
 * model the run loads, reading the rolling means of the simulator's sensors.
 */
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_SIM_MODEL_OPTIONS,
  SIM_MODEL_SENSORS,
  type SimModelOptions,
  simFailureModel,
  simModelKey,
  trainSimModel,
} from "../engine/cli/sim-failure-model.js";
import { FailureModel } from "../operators/prediction/failure-model.js";

/** A small plant and a short training: the same code path as the default, in a fraction of its time. */
const SMALL: SimModelOptions = { ...DEFAULT_SIM_MODEL_OPTIONS, seeds: [1001, 1002], hours: 160, rateHz: 0.2, epochs: 5, holdout: 3 };

describe("the built-in plant's failure model", () => {
  it("trains once, then a second start reads it from the cache (same bytes, no training)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lw-sim-model-"));
    const trainings: Array<string | null> = [];
    const first = await simFailureModel(dir, SMALL, (path) => trainings.push(path));
    expect(first.cached).toBe(false);
    expect(trainings).toEqual([first.path]);
    expect(readdirSync(dir).sort()).toEqual([
      `sim-failure-${first.report.key.slice(0, 16)}.onnx`,
      `sim-failure-${first.report.key.slice(0, 16)}.onnx.json`,
    ]);
    const second = await simFailureModel(dir, SMALL, (path) => trainings.push(path));
    expect(second.cached).toBe(true);
    expect(trainings).toHaveLength(1);
    expect(Buffer.from(second.bytes).equals(Buffer.from(first.bytes))).toBe(true);
    expect(second.report).toEqual(JSON.parse(JSON.stringify(first.report)));
    // Other options are another key: a model of their own.
    expect(await simModelKey({ ...SMALL, epochs: 6 })).not.toBe(first.report.key);
  }, 600_000);

  it("is deterministic, and loads as a failure model over the sensors' rolling means with the run's window", async () => {
    const key = await simModelKey(SMALL);
    const a = trainSimModel(SMALL, key);
    const b = trainSimModel(SMALL, key);
    expect(Buffer.from(a.bytes).equals(Buffer.from(b.bytes))).toBe(true);
    expect(a.report.lives).toBeGreaterThan(SMALL.holdout);
    const model = await FailureModel.fromBytes(a.bytes, "test");
    try {
      expect(model.featureNames).toEqual(SIM_MODEL_SENSORS.map((s) => `${s}.mean`));
      expect(model.window).toBe(64);
      expect(model.cycleHours).toBe(0.25);
      expect(model.rulCap * model.cycleHours).toBe(48);
      const [p] = await model.predict(Float64Array.from([42, 2.8, 6, 11.5, 240]), 1);
      expect(p.time_to_failure_hours).toBeGreaterThanOrEqual(0);
      expect(p.time_to_failure_hours).toBeLessThanOrEqual(48);
    } finally {
      await model.close();
    }
  }, 600_000);
});
