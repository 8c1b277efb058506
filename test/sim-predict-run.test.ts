/**
 * `linewatch run` on the simulator predicts failures by default, from the built-in plant's model
 * (engine/cli/builtin-model.ts), for every machine, through the live API — no servers besides the
 * run's own live server. A first run trains the model into a fresh cache; the second reads it from
 * there and trains nothing; `--no-predict` turns predictions off.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliProcess, runCli, startCli } from "./kit/cli.js";
import { liveApi } from "./kit/live-api.js";
import { waitUntil } from "./kit/wait.js";

const MACHINES = ["M-001", "M-002", "M-003", "M-004", "M-005", "M-006", "M-007", "M-008"];

describe("linewatch run on the simulator: failure predictions by default", () => {
  let dir: string;
  let previousCache: string | undefined;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "lw-sim-predict-"));
    previousCache = process.env.LINEWATCH_CACHE_DIR;
    process.env.LINEWATCH_CACHE_DIR = join(dir, "cache");
    // First start (a short run at full speed): trains the model into the cache.
    const first = await runCli(
      [
        "run",
        "--speed",
        "max",
        "--duration",
        "10s",
        "--no-serials",
        "--no-file",
        "--summary-interval",
        "0",
        "--alerts",
        join(dir, "first.ndjson"),
      ],
      dir,
    );
    expect(first).toContain("training the built-in plant's failure model");
  }, 600_000);
  afterAll(() => {
    if (previousCache === undefined) delete process.env.LINEWATCH_CACHE_DIR;
    else process.env.LINEWATCH_CACHE_DIR = previousCache;
  });

  const args = (name: string) => [
    "run",
    "--speed",
    "120",
    "--port",
    "0",
    "--no-serials",
    "--no-file",
    "--summary-interval",
    "0",
    "--alerts",
    join(dir, `${name}.ndjson`),
  ];

  it("serves a prediction, a health score and a risk level for every machine, from the cached model", async () => {
    const run: CliProcess = startCli(args("on"), dir);
    try {
      const api = await liveApi(run, false);
      const machinesPredicted = async () => {
        const { body } = await api("GET", "/api/ml/maintenance/predictions/?limit=1000");
        return new Set(((body.results ?? []) as Array<{ machine_id: string }>).map((p) => p.machine_id));
      };
      expect(await waitUntil(async () => (await machinesPredicted()).size === MACHINES.length, 120_000), run.output()).toBe(true);
      expect([...(await machinesPredicted())].sort()).toEqual(MACHINES);
      const { status, body } = await api("GET", "/api/ml/maintenance/predictions/?machine_id=M-002&limit=1");
      expect(status).toBe(200);
      const [p] = body.results as Array<Record<string, unknown>>;
      expect(Object.keys(p.features as object).sort()).toEqual([
        "line_speed.mean",
        "motor_current.mean",
        "pressure.mean",
        "temperature.mean",
        "vibration.mean",
      ]);
      expect(p.time_to_failure_hours as number).toBeGreaterThanOrEqual(0);
      expect(p.time_to_failure_hours as number).toBeLessThanOrEqual(48);
      expect(["low", "medium", "high", "critical"]).toContain(p.risk_level);
      for (const m of MACHINES) {
        const health = await api("GET", `/api/ml/maintenance/health/${m}/`);
        expect(health.status).toBe(200);
        expect(["low", "medium", "high", "critical"]).toContain(health.body.risk_level);
      }
      const plant = await api("GET", "/api/plant");
      const tiles = plant.body.machines as Array<{ machine_id: string; prediction: unknown }>;
      expect(
        tiles
          .filter((t) => t.prediction !== null && t.prediction !== undefined)
          .map((t) => t.machine_id)
          .sort(),
      ).toEqual(MACHINES);
      expect(run.output()).toContain("failure predictions from the built-in plant's model");
      expect(run.output()).not.toContain("training the built-in plant's failure model");
      expect(await run.stop(), run.output()).toBe(0);
    } finally {
      await run.stop();
    }
  }, 600_000);

  it("--no-predict: the prediction endpoints say not_configured", async () => {
    const run: CliProcess = startCli([...args("off"), "--no-predict"], dir);
    try {
      const api = await liveApi(run, false);
      const { status, body } = await api("GET", "/api/ml/maintenance/predictions/");
      expect(status).toBe(404);
      expect(JSON.stringify(body)).toContain("not_configured");
      expect(await run.stop(), run.output()).toBe(0);
    } finally {
      await run.stop();
    }
  }, 600_000);
});
