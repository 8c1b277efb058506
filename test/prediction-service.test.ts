import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readCmapss, type CmapssUnit } from "../connectors/files/cmapss.js";
import { CmapssFleet, cmapssMachineId } from "../connectors/sim/cmapss-source.js";
import { Outputs } from "../engine/jobs/outputs.js";
import { DEFAULT_PREDICTION_SERVICE, PredictionService, type MachinePrediction } from "../engine/jobs/prediction-service.js";
import { runJob } from "../engine/jobs/run-job.js";
import { FailureModel } from "../operators/prediction/failure-model.js";
import { rollingAnalysis } from "../operators/rolling/rolling.js";
import { rulFeatureRows } from "../operators/prediction/rul-features.js";
import { LiveClient, type DataMessage } from "./kit/live-client.js";
import { DEFAULT_MODEL_WINDOW as TEST_MODEL_WINDOW, defaultModelBytes as testModelBytes } from "./kit/prediction-model.js";
import { referenceDataDir } from "../connectors/files/reference-data.js";
import { createLogger } from "../engine/core/mod.js";

/** Operational log events are not what these tests look at. */
const QUIET = createLogger({ level: "silent" });

const UNITS = readCmapss(join(referenceDataDir(), "cmapss", "train_FD001.txt"));
const T0 = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;

interface Run {
  outputs: Outputs;
  service: PredictionService;
  token: string;
  url: string;
  wsUrl: string;
}

/** A live server with a prediction service, and a C-MAPSS replay through the run job into it. */
async function startRun(model: FailureModel, intervalMs: number): Promise<Run> {
  const service = new PredictionService({ ...DEFAULT_PREDICTION_SERVICE, model, intervalMs });
  const outputs = await Outputs.start({
    live: { port: 0, host: "127.0.0.1" },
    healthIntervalMs: 60_000,
    predictions: service,
    log: QUIET,
  });
  const access = outputs.liveAccess()!;
  return { outputs, service, token: access.generatedToken as string, url: access.url, wsUrl: access.wsUrl };
}

async function replay(run: Run, units: number[], sensors?: string[]): Promise<void> {
  const fleet = new CmapssFleet(UNITS, { units, sensors, cycleMs: HOUR, startTime: T0, order: "fleet" });
  await runJob({
    source: fleet,
    analyses: [rollingAnalysis({ window: { kind: "count", records: TEST_MODEL_WINDOW }, alpha: 0.1, timeScale: 1000 })],
    keyByMode: false,
    workers: 2,
    groups: 4,
    batchRecordsMax: 256,
    speed: Infinity,
    outPath: null,
    fileBytesMax: 1 << 30,
    zAlarm: 4,
    flushIntervalMs: 250,
    summaryIntervalMs: 0,
    console: new PassThrough(),
    stop: new Promise(() => {}),
    outputs: run.outputs,
  });
}

async function api(run: Run, method: string, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${run.url}${path}`, { method, headers: { authorization: `Bearer ${run.token}` } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** |got − want| ≤ 1e-9 · max(|want|, 1): the engine's running sums against two-pass sums. */
function expectFeaturesClose(got: Record<string, number>, u: CmapssUnit, names: readonly string[], row: number, what: string): void {
  const want = rulFeatureRows(u, names, TEST_MODEL_WINDOW);
  const f = names.length;
  expect(Object.keys(got)).toEqual([...names]);
  names.forEach((n, j) => {
    const w = want[row * f + j];
    expect(Math.abs(got[n] - w), `${what} ${n}: ${got[n]} vs ${w}`).toBeLessThanOrEqual(1e-9 * Math.max(Math.abs(w), 1));
  });
}

describe("prediction service - C-MAPSS replay through the run job, the API and the topics", () => {
  let model: FailureModel;
  beforeAll(async () => {
    model = await FailureModel.fromBytes(testModelBytes(UNITS), "test-model.onnx");
  });
  afterAll(async () => {
    await model?.close();
  });

  it("predicts every machine at every cycle from the features the engine computed, and serves them", async () => {
    const run = await startRun(model, 10_000);
    const client = await LiveClient.connect(`${run.wsUrl}?token=${run.token}`);
    await client.subscribe(["analysis/prediction", "machine/ENG-003"]);
    try {
      await replay(run, [1, 2, 3]);
      const names = model.featureNames;
      for (const u of UNITS.slice(0, 3)) {
        const id = cmapssMachineId(u.unit);
        const { status, body } = await api(run, "GET", `/api/ml/maintenance/predictions/?machine_id=${id}&limit=1000`);
        expect(status).toBe(200);
        const results = body.results as MachinePrediction[];
        // 1-h cycles, a 10-s interval: one prediction per cycle, newest first.
        expect(body.count).toBe(u.cycles.length);
        expect(results.map((p) => p.predicted_at_ms)).toEqual(Array.from(u.cycles, (c) => T0 + c * HOUR).reverse());
        const last = results[0];
        expect(last).toMatchObject({
          machine_id: id,
          trigger: "schedule",
          model_version: model.modelVersion,
          horizon_cycles: model.horizonCycles,
        });
        expect(last.predicted_at).toBe(new Date(T0 + u.cycles.length * HOUR).toISOString());
        expect(["low", "medium", "high", "critical"]).toContain(last.risk_level);
        // The features of a step are that step's statistics of every sensor (never a mix of two cycles).
        expectFeaturesClose(last.features, u, names, u.cycles.length - 1, `${id} last cycle`);
        expectFeaturesClose(results[u.cycles.length - 50].features, u, names, 49, `${id} cycle 50`);
        expectFeaturesClose(results[u.cycles.length - 1].features, u, names, 0, `${id} cycle 1`);
        // The prediction is the model's answer on exactly those features.
        const [direct] = await model.predict(
          Float64Array.from(names, (n) => last.features[n]),
          1,
        );
        expect({ rul: last.rul_cycles, p: last.failure_probability, ttf: last.time_to_failure_hours }).toEqual({
          rul: direct.rul_cycles,
          p: direct.failure_probability,
          ttf: direct.time_to_failure_hours,
        });
        // A trained model: at the failure cycle the engine is at risk, at its first cycle it is not.
        const first = results[results.length - 1];
        expect(last.failure_probability).toBeGreaterThan(0.5);
        expect(["high", "critical"]).toContain(last.risk_level);
        expect(first.failure_probability).toBeLessThan(0.05);
        // Requested now: the machine's current features, so the same answer.
        const now = await api(run, "POST", `/api/ml/maintenance/predict/${id}/`);
        expect(now.status).toBe(200);
        expect(now.body).toMatchObject({
          machine_id: id,
          trigger: "request",
          failure_probability: last.failure_probability,
          rul_cycles: last.rul_cycles,
          predicted_at_ms: last.predicted_at_ms,
        });
        // Health folds the failure probability in (no SPC here: the alert score is 100).
        const health = await api(run, "GET", `/api/ml/maintenance/health/${id}/`);
        const expected = Math.round(100 * (1 - last.failure_probability));
        expect(health.body).toMatchObject({ machine_id: id, health_score: expected });
        expect((health.body.features as Record<string, number>).failure_probability).toBe(last.failure_probability);
      }
      const metrics = await (await fetch(`${run.url}/metrics`)).text();
      const made = [...metrics.matchAll(/^linewatch_predictions_total\{risk_level="\w+"\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
      expect(made).toBe(UNITS.slice(0, 3).reduce((n, u) => n + u.cycles.length, 0) + 3);
      expect(metrics).toMatch(/^linewatch_prediction_machines\{features="complete"\} 3$/m);
      const newest = await api(run, "GET", "/api/ml/maintenance/predictions/?limit=5");
      expect(newest.body.count).toBe(5);
      expect((await api(run, "POST", "/api/ml/maintenance/predict/ENG-999/")).status).toBe(404);
      expect((await api(run, "GET", "/api/ml/maintenance/predictions/?limit=0")).status).toBe(400);

      const total = UNITS.slice(0, 3).reduce((n, u) => n + u.cycles.length, 0) + 3;
      await client.until(() => client.data("analysis/prediction").length >= total, `${total} messages on analysis/prediction`, 10_000);
      await client.until(
        () =>
          client.data("machine/ENG-003").filter((m) => (m.data as { kind?: string }).kind === "prediction").length >=
          UNITS[2].cycles.length + 1,
        "ENG-003's predictions",
        10_000,
      );
      const onMachine = client.data("machine/ENG-003").map((m: DataMessage) => m.data as { kind?: string; machine_id: string });
      expect(onMachine.filter((d) => d.kind === "prediction").length).toBe(UNITS[2].cycles.length + 1);
      expect(onMachine.every((d) => d.kind !== "prediction" || d.machine_id === "ENG-003")).toBe(true);
    } finally {
      client.close();
      await run.outputs.close();
    }
  }, 60_000);

  it("predicts on the event-time interval (every 10 cycles of 1 h), and the last cycle at the end", async () => {
    const run = await startRun(model, 10 * HOUR);
    try {
      await replay(run, [5]);
      const u = UNITS[4];
      const results = run.service.predictions({ machineId: "ENG-005", limit: 1000 });
      const scheduled = Array.from(u.cycles).filter((c) => (c - 1) % 10 === 0);
      const expected = scheduled.at(-1) === u.cycles.length ? scheduled : [...scheduled, u.cycles.length];
      expect(results.map((p) => (p.predicted_at_ms - T0) / HOUR).reverse()).toEqual(expected);
      expect(results.slice(1).every((p) => p.trigger === "schedule")).toBe(true);
      expect(results[0].trigger).toBe(scheduled.at(-1) === u.cycles.length ? "schedule" : "end");
    } finally {
      await run.outputs.close();
    }
  }, 30_000);

  it("answers 409 features_incomplete, naming the missing features, for a machine that lacks sensors the model reads", async () => {
    const run = await startRun(model, 10_000);
    try {
      await replay(run, [4], ["s1", "s2", "s3"]);
      const r = await api(run, "POST", "/api/ml/maintenance/predict/ENG-004/");
      expect(r.status).toBe(409);
      const missing = model.featureNames.filter((n) => !n.startsWith("s2.") && !n.startsWith("s3."));
      expect(r.body).toMatchObject({ error: "features_incomplete", machine_id: "ENG-004", missing_features: missing });
      expect(String(r.body.message)).toContain("s4.mean");
      expect((await api(run, "GET", "/api/ml/maintenance/predictions/")).body.count).toBe(0);
      // Its health is the alert score alone.
      expect((await api(run, "GET", "/api/ml/maintenance/health/ENG-004/")).body).toMatchObject({ health_score: 100, risk_level: "low" });
    } finally {
      await run.outputs.close();
    }
  }, 30_000);
});
