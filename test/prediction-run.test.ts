import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "nats";
import { readCmapss } from "../connectors/files/cmapss.js";
import { cmapssMachineId } from "../connectors/sim/cmapss-source.js";
import { FailureModel } from "../operators/prediction/failure-model.js";
import { rulFeatureRows } from "../operators/prediction/rul-features.js";
import { startClickHouseServer, type ClickHouseServer } from "../connectors/local/clickhouse-server.js";
import { testModelBytes, TEST_MODEL_WINDOW } from "./kit/prediction-model.js";
import { serverAvailable, startNatsServer, type NatsServer } from "../connectors/local/nats-server.js";
import { referenceDataDir } from "../connectors/files/reference-data.js";

const CLI = resolve("dist/engine/cli/main.js");
const FILE = join(referenceDataDir(), "cmapss", "train_FD001.txt");
const UNITS = readCmapss(FILE);
const T0 = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;

interface PredictionRow {
  machine_id: string;
  predicted_at_ms: number;
  failure_probability: number;
  time_to_failure_hours: number;
  rul_cycles: number;
  risk_level: string;
  model_version: string;
  features: string;
}

/** Runs the CLI to its end; resolves with its exit code and stderr. */
function cli(
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
): { child: ChildProcess; stderr: () => string; done: Promise<{ code: number | null; stderr: string }> } {
  const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<{ code: number | null; stderr: string }>((res) => child.once("exit", (code) => res({ code, stderr })));
  return { child, stderr: () => stderr, done };
}

const skip = !serverAvailable("clickhouse-server") || !serverAvailable("nats-server");

describe.skipIf(skip)("linewatch run --predict - ClickHouse rows from the CLI, on a C-MAPSS file and on NATS", () => {
  let ch: ClickHouseServer;
  let nats: NatsServer;
  let dir: string;
  let modelPath: string;
  let model: FailureModel;
  beforeAll(async () => {
    [ch, nats] = await Promise.all([startClickHouseServer(), startNatsServer()]);
    dir = mkdtempSync(join(tmpdir(), "lw-predict-run-"));
    modelPath = join(dir, "model.onnx");
    writeFileSync(modelPath, testModelBytes(UNITS));
    model = await FailureModel.load(modelPath);
  }, 60_000);
  afterAll(async () => {
    await model?.close();
    await Promise.all([ch?.dispose(), nats?.dispose()]);
  });

  const rows = async (db: string, where = ""): Promise<PredictionRow[]> => {
    const text = await ch.query(
      `SELECT * FROM ${db}.ml_maintenance_predictions FINAL ${where} ORDER BY machine_id, predicted_at_ms FORMAT JSONEachRow`,
      { output_format_json_quote_64bit_integers: 0 },
    );
    return text.trim() === ""
      ? []
      : text
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l) as PredictionRow);
  };

  /** Every cycle of each unit predicted once; the last cycle's row is the model's answer on the engine's features. */
  async function expectPredictions(db: string, units: number[]): Promise<void> {
    const all = await rows(db);
    for (const n of units) {
      const u = UNITS[n - 1];
      const id = cmapssMachineId(n);
      const mine = all.filter((r) => r.machine_id === id);
      expect(mine.map((r) => r.predicted_at_ms)).toEqual(Array.from(u.cycles, (c) => T0 + c * HOUR));
      const last = mine.at(-1) as PredictionRow;
      const features = JSON.parse(last.features) as Record<string, number>;
      const want = rulFeatureRows(u, model.featureNames, TEST_MODEL_WINDOW).subarray((u.cycles.length - 1) * model.featureNames.length);
      model.featureNames.forEach((name, j) =>
        expect(Math.abs(features[name] - want[j])).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(want[j]))),
      );
      const [p] = await model.predict(
        Float64Array.from(model.featureNames, (name) => features[name]),
        1,
      );
      // ClickHouse 18.16 may read a double back 1 ulp off (connectors/clickhouse/schema.ts).
      expect(last.failure_probability).toBeCloseTo(p.failure_probability, 12);
      expect(last.rul_cycles).toBeCloseTo(p.rul_cycles, 10);
      expect(last.time_to_failure_hours).toBeCloseTo(p.time_to_failure_hours, 10);
      expect(last.model_version).toBe(model.modelVersion);
    }
    const health = await ch.query(
      `SELECT machine_id, min(health_score) FROM ${db}.ml_equipment_health FINAL GROUP BY machine_id ORDER BY machine_id FORMAT TSV`,
    );
    expect(
      health
        .trim()
        .split("\n")
        .map((l) => l.split("\t")[0]),
    ).toEqual(units.map(cmapssMachineId));
  }

  it("run --cmapss --predict --clickhouse fills ml_maintenance_predictions: one row per machine and cycle", async () => {
    await ch.query("CREATE DATABASE IF NOT EXISTS file_run");
    const { done } = cli(
      [
        "run",
        "--cmapss",
        FILE,
        "--cmapss-units",
        "1-3",
        "--predict",
        modelPath,
        "--analysis",
        "rolling",
        "--speed",
        "max",
        "--clickhouse",
        ch.url,
        "--clickhouse-db",
        "file_run",
        "--spill-dir",
        join(dir, "spill1"),
        "--no-file",
        "--alerts",
        join(dir, "alerts1.ndjson"),
        "--summary-interval",
        "0",
      ],
      dir,
    );
    const r = await done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/predictions \(model rul-mlp-/);
    await expectPredictions("file_run", [1, 2, 3]);
  }, 60_000);

  it("simulate --nats --cmapss into run --nats --predict --clickhouse: the same rows", async () => {
    await ch.query("CREATE DATABASE IF NOT EXISTS nats_run");
    const run = cli(
      [
        "run",
        "--nats",
        nats.url,
        "--site",
        "fleet",
        "--predict",
        modelPath,
        "--analysis",
        "rolling,spc",
        "--no-publish-scores",
        "--clickhouse",
        ch.url,
        "--clickhouse-db",
        "nats_run",
        "--spill-dir",
        join(dir, "spill2"),
        "--alerts",
        join(dir, "alerts2.ndjson"),
        "--summary-interval",
        "0",
      ],
      dir,
    );
    const deadline = Date.now() + 15_000;
    while (!/consuming/.test(run.stderr())) {
      if (Date.now() > deadline || run.child.exitCode !== null) throw new Error(`run --nats did not start consuming: ${run.stderr()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const published: string[] = [];
    const nc = await connect({ servers: nats.url });
    nc.subscribe("lw.fleet.prediction.>", {
      callback: (_e, m) => published.push(`${m.subject} ${(JSON.parse(m.string()) as PredictionRow).predicted_at_ms}`),
    });
    await nc.flush();
    const sim = cli(
      ["simulate", "--nats", nats.url, "--site", "fleet", "--cmapss", FILE, "--cmapss-units", "4-5", "--start", new Date(T0).toISOString()],
      dir,
    );
    expect((await sim.done).code).toBe(0);
    const expected = UNITS[3].cycles.length + UNITS[4].cycles.length;
    const until = Date.now() + 30_000;
    // The sink creates the tables with its first rows.
    const count = () =>
      rows("nats_run").then(
        (r) => r.length,
        () => 0,
      );
    while ((await count()) < expected && Date.now() < until) await new Promise((r) => setTimeout(r, 300));
    run.child.kill("SIGINT");
    const r = await run.done;
    expect(r.code, r.stderr).toBe(0);
    await expectPredictions("nats_run", [4, 5]);
    // And on NATS, beside scores and alerts: lw.<site>.prediction.<machine>, the rows ClickHouse got.
    await nc.flush();
    await nc.close();
    const stored = await rows("nats_run");
    expect(published.length).toBe(expected);
    expect(published.sort()).toEqual(stored.map((r) => `lw.fleet.prediction.${r.machine_id} ${r.predicted_at_ms}`).sort());
  }, 60_000);

  it("refuses a --window other than the model's, and a source without the model's sensors", async () => {
    const wrongWindow = await cli(
      ["run", "--cmapss", FILE, "--cmapss-units", "1", "--predict", modelPath, "--window", "64", "--speed", "max", "--no-file"],
      dir,
    ).done;
    expect(wrongWindow.code).toBe(2);
    expect(wrongWindow.stderr).toMatch(/linewatch: --window: is 64, but the model .* rolling window of 30/);
    // The model from the environment (as any option), the window from a config file.
    writeFileSync(join(dir, "run.yaml"), "window: 20\n");
    const fromEnv = await cli(["run", "--cmapss", FILE, "--config", join(dir, "run.yaml"), "--speed", "max", "--no-file"], dir, {
      LINEWATCH_PREDICT: modelPath,
    }).done;
    expect(fromEnv.code).toBe(2);
    expect(fromEnv.stderr).toMatch(/linewatch: --window: is 20, but the model/);
    const simulator = await cli(["run", "--predict", modelPath, "--speed", "max", "--records", "100", "--no-file"], dir).done;
    expect(simulator.code).toBe(2);
    expect(simulator.stderr).toMatch(/linewatch: --predict: the model reads sensors s2, s3/);
  }, 30_000);
});
