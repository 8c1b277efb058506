/**
 * Retraining triggered by drift (engine/jobs/retrain.ts, `run --retrain-on-drift`):
 *
 * - the retained window (retained-units.ts) turns each failed machine's readings into a
 *   run-to-failure unit, the trainer's shape, equal to the file's unit;
 * - the retrainer's decisions, with the registry on disk and a trainer whose figures the test
 *   chooses: too few units skip; a candidate not worse than production is promoted only with
 *   auto-promote; a worse one is held; one retraining per episode; a failure is an event;
 * - the whole path through the built CLI on C-MAPSS FD001 with s11 shifted: the drift episode
 *   starts a retraining on a worker thread, the candidate is registered and (auto-promote, better
 *   on the hold-out) promoted, every step logged.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readCmapss } from "../connectors/files/cmapss.js";
import { referenceDataDir } from "../connectors/files/reference-data.js";
import { DirectoryStore, ModelRegistry, ObjectStoreRegistry, type RegistryStore } from "../connectors/registry/mod.js";
import { type NatsServer, serverAvailable, startNatsServer } from "../connectors/local/nats-server.js";
import { startClickHouseServer } from "../connectors/local/clickhouse-server.js";
import { RetainedUnits, Retrainer, type RetrainRequest, type RetrainResult } from "../engine/jobs/mod.js";
import type { AlertEpisodeEvent } from "../operators/spc/mod.js";
import { logEvents } from "./kit/cli.js";
import { registryTestModels } from "./kit/registry-models.js";
import { testModelBytes } from "./kit/prediction-model.js";

const CLI = resolve("dist/engine/cli/main.js");
const FILE = join(referenceDataDir(), "cmapss", "train_FD001.txt");
const UNITS = readCmapss(FILE);
const HOUR = 3_600_000;
const ACTOR = { command: "test", user: "tester", host: "test-host" };

/** Units 1…n of the file fed to a retained window reading by reading (sensors in a shuffled order within a cycle), each failing at its last cycle. */
function retained(n: number): RetainedUnits {
  const history = new RetainedUnits();
  for (const u of UNITS.slice(0, n)) {
    const machine = `ENG-${u.unit}`;
    u.cycles.forEach((c, i) => {
      for (let k = 20; k >= 0; k--) history.observe(machine, `s${k + 1}`, c * HOUR, u.sensors[k][i]);
    });
    history.failed(machine, u.cycles[u.cycles.length - 1] * HOUR);
  }
  return history;
}

const drift = (id: string, severity: "medium" | "high" = "high"): AlertEpisodeEvent =>
  ({ type: "alert_episode", event: "updated", episode_id: id, family: "model_drift", severity }) as AlertEpisodeEvent;

describe("retained window", () => {
  it("a failed machine's readings become the file's unit; a machine not failed yet is no unit", () => {
    const history = retained(3);
    history.observe("ENG-99", "s2", HOUR, 641.5);
    const units = history.units();
    // In the order they failed (unit 3, the shortest life here, first), numbered 1….
    const lives = UNITS.slice(0, 3).map((u) => ({ machine: `ENG-${u.unit}`, end: u.cycles.length }));
    expect(units.map((u) => u.machineId)).toEqual(lives.sort((a, b) => a.end - b.end).map((l) => l.machine));
    expect(units.map((u) => u.unit.unit)).toEqual([1, 2, 3]);
    for (const { machineId, unit } of units) {
      const file = UNITS[Number(machineId.slice(4)) - 1];
      expect(Array.from(unit.cycles)).toEqual(Array.from(file.cycles));
      unit.sensors.forEach((column, k) => expect(Array.from(column)).toEqual(Array.from(file.sensors[k])));
    }
    // Sensors that are not C-MAPSS sensors are not the trainer's.
    history.observe("ENG-1", "temperature", HOUR, 1);
    expect(history.units().length).toBe(3);
  });
});

describe("retrainer decisions", () => {
  let models: ReturnType<typeof registryTestModels>;
  beforeAll(() => {
    models = registryTestModels();
  }, 60_000);

  async function setup(result: Partial<RetrainResult> | Error, o: { autoPromote: boolean; minUnits?: number }) {
    const registry = new ModelRegistry(new DirectoryStore(mkdtempSync(join(tmpdir(), "lw-retrain-"))), ACTOR);
    const production = (await registry.push({ bytes: models.rulA, kind: "rul", fileName: "a.onnx" })).entry;
    await registry.promote(production.id, "production");
    const requests: RetrainRequest[] = [];
    const retrainer = new Retrainer({
      registry,
      history: retained(10),
      autoPromote: o.autoPromote,
      minUnits: o.minUnits ?? 5,
      epochs: 3,
      train: async (request) => {
        requests.push(request);
        if (result instanceof Error) throw result;
        return { bytes: models.rulB, candidateRmse: 18, productionRmse: 20, trainUnits: 8, heldOutUnits: 2, trainSeconds: 0.1, ...result };
      },
    });
    return { registry, retrainer, requests, production };
  }

  it("promotes a candidate that is not worse, with auto-promote; once per episode", async () => {
    const { registry, retrainer, requests, production } = await setup({ candidateRmse: 20, productionRmse: 20 }, { autoPromote: true });
    retrainer.onEpisode(drift("e1", "medium"));
    retrainer.onEpisode(drift("e1"));
    retrainer.onEpisode(drift("e1"));
    await retrainer.idle();
    expect(requests.length).toBe(1);
    expect([requests[0].units.length, requests[0].holdout, requests[0].epochs]).toEqual([10, 2, 3]);
    expect(new Uint8Array(requests[0].productionBytes)).toEqual(new Uint8Array(models.rulA));
    expect(retrainer.events().map((e) => e.event)).toEqual([
      "retrain_started",
      "candidate_trained",
      "candidate_registered",
      "candidate_promoted",
    ]);
    const now = await registry.production("rul");
    expect(now?.notes).toMatch(/model_drift episode e1: hold-out RMSE 20\.00 vs production/);
    expect((await registry.show(production.id)).stage).toBe("archived");
  });

  it("holds a worse candidate, and any candidate without auto-promote", async () => {
    const worse = await setup({ candidateRmse: 25, productionRmse: 20 }, { autoPromote: true });
    worse.retrainer.onEpisode(drift("e2"));
    await worse.retrainer.idle();
    expect(worse.retrainer.events().at(-1)).toMatchObject({ event: "candidate_held", candidate_rmse: 25, production_rmse: 20 });
    expect((await worse.registry.production("rul"))?.id).toBe(worse.production.id);

    const manual = await setup({}, { autoPromote: false });
    manual.retrainer.onEpisode(drift("e3"));
    await manual.retrainer.idle();
    expect(manual.retrainer.events().at(-1)?.message).toMatch(/waits for linewatch models promote/);
    expect((await manual.registry.list("rul")).map((e) => e.stage)).toEqual(["production", "candidate"]);
  });

  it("skips with too few failed units, and reports a trainer's failure as an event", async () => {
    const few = await setup({}, { autoPromote: true, minUnits: 11 });
    few.retrainer.onEpisode(drift("e4"));
    await few.retrainer.idle();
    expect(few.retrainer.events().map((e) => [e.event, e.message])).toEqual([
      ["retrain_skipped", "10 failed units in the run's retained window, 11 needed"],
    ]);
    const failing = await setup(new Error("no sensor varies"), { autoPromote: true });
    failing.retrainer.onEpisode(drift("e5"));
    await failing.retrainer.idle();
    expect(failing.retrainer.events().at(-1)).toMatchObject({ event: "retrain_failed", message: "no sensor varies" });
  });
});

const haveNats = serverAvailable("nats-server");
let nats: NatsServer | undefined;
afterAll(async () => {
  await nats?.dispose();
});

/** The registry of the ClickHouse run: the object store of a throw-away nats-server when there is one, else a directory. */
async function registryStore(dir: string): Promise<{ where: string; store: RegistryStore }> {
  if (!haveNats) return { where: join(dir, "registry"), store: new DirectoryStore(join(dir, "registry")) };
  nats ??= await startNatsServer();
  return { where: nats.url, store: await ObjectStoreRegistry.connect(nats.url) };
}

describe("run --retrain-on-drift on C-MAPSS FD001 with s11 shifted", () => {
  it("the drift episode trains a candidate on a worker, registers it in the registry and promotes it when better on the hold-out, else holds it; every step logged", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lw-retrain-run-"));
    const reg = join(dir, "registry");
    const registry = new ModelRegistry(new DirectoryStore(reg), ACTOR);
    const first = (await registry.push({ bytes: testModelBytes(UNITS), kind: "rul", fileName: "first.onnx" })).entry;
    await registry.promote(first.id, "production");
    const args = ["run", "--cmapss", FILE, "--cmapss-order", "unit", "--speed", "max", "--predict", "registry", "--registry", reg];
    const child = spawn(
      process.execPath,
      [CLI, ...args, "--retrain-on-drift", "--auto-promote", "--retrain-epochs", "60", "--cmapss-shift", "s11:+0.534@10000"].concat([
        "--analysis",
        "rolling",
        "--no-file",
        "--alerts",
        join(dir, "alerts.ndjson"),
        "--summary-interval",
        "0",
        "--no-serials",
        "--no-live",
      ]),
      { cwd: dir, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, LINEWATCH_LOG_LEVEL: "info" } },
    );
    let stderr = "";
    child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((r) => child.once("exit", r));
    expect(code, stderr).toBe(0);
    const steps = logEvents(stderr)
      .filter((e) => e.component === "retrain")
      .map((e) => e.event);
    const candidateRmse = logEvents(stderr).find((e) => e.event === "candidate_trained")?.candidate_rmse as number;
    const productionRmse = logEvents(stderr).find((e) => e.event === "candidate_trained")?.production_rmse as number;
    expect(candidateRmse, stderr).toBeGreaterThan(0);
    const now = await registry.production("rul");
    // Which failed units the retained window holds when the drift episode opens depends on how the two
    // workers' rows interleave with the predictions (59–61 units seen), and with them the 12 held out:
    // the candidate is usually better (17.6 against 21.5) but not always (21.7 against 16.9 once, on a
    // loaded machine). Either way the decision must follow the hold-out, and the registry with it.
    if (candidateRmse <= productionRmse) {
      expect(steps).toEqual(["retrain_started", "candidate_trained", "candidate_registered", "candidate_promoted"]);
      expect(now?.id).not.toBe(first.id);
      expect(now?.file_name).toMatch(/^rul-retrained-.*\.onnx$/);
      expect(now?.training_data).toMatch(/retained window: \d+ failed machines .* retrained on model_drift episode [0-9a-f]{16}/);
      expect(now?.features).toEqual((await registry.show(first.id)).features);
    } else {
      expect(steps).toEqual(["retrain_started", "candidate_trained", "candidate_registered", "candidate_held"]);
      expect(now?.id).toBe(first.id);
    }
    await registry.close();
  }, 120_000);
});

describe("run --retrain-on-drift refusals", () => {
  it("refuses --retrain-on-drift without the registry or without failures to learn from", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lw-retrain-refuse-"));
    const run = async (args: string[]) => {
      const child = spawn(process.execPath, [CLI, "run", ...args, "--no-live", "--records", "10"], {
        cwd: dir,
        stdio: ["ignore", "ignore", "pipe"],
      });
      let stderr = "";
      child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
      const code = await new Promise<number | null>((r) => child.once("exit", r));
      return { code, stderr };
    };
    const model = join(dir, "m.onnx");
    writeFileSync(model, testModelBytes(UNITS));
    const noRegistry = await run(["--cmapss", FILE, "--predict", model, "--retrain-on-drift"]);
    expect([noRegistry.code, noRegistry.stderr]).toEqual([2, expect.stringMatching(/--retrain-on-drift.*needs --predict registry/)]);
    const alone = await run(["--auto-promote"]);
    expect([alone.code, alone.stderr]).toEqual([2, expect.stringMatching(/--auto-promote.*only with --retrain-on-drift/)]);
  }, 60_000);
});

describe.skipIf(!serverAvailable("clickhouse-server"))("run --retrain-on-drift --clickhouse, the registry on NATS", () => {
  it("reads the failed machines' readings back from ml_sensor_data instead of keeping them, trains on them and registers the candidate in the object store", async () => {
    const ch = await startClickHouseServer();
    try {
      const dir = mkdtempSync(join(tmpdir(), "lw-retrain-ch-"));
      const { where, store } = await registryStore(dir);
      const registry = new ModelRegistry(store, ACTOR);
      const first = (await registry.push({ bytes: testModelBytes(UNITS), kind: "rul", fileName: "first.onnx" })).entry;
      await registry.promote(first.id, "production");
      const args = ["run", "--cmapss", FILE, "--cmapss-order", "unit", "--speed", "max", "--predict", "registry", "--registry", where];
      const child = spawn(
        process.execPath,
        [CLI, ...args, "--retrain-on-drift", "--retrain-epochs", "10", "--cmapss-shift", "s11:+0.534@10000", "--clickhouse", ch.url].concat(
          ["--spill-dir", join(dir, "spill"), "--analysis", "rolling", "--no-file", "--alerts", join(dir, "alerts.ndjson")],
          ["--summary-interval", "0", "--no-serials", "--no-live"],
        ),
        { cwd: dir, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, LINEWATCH_LOG_LEVEL: "info" } },
      );
      let stderr = "";
      child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
      expect(await new Promise<number | null>((r) => child.once("exit", r)), stderr).toBe(0);
      const events = logEvents(stderr).filter((e) => e.component === "retrain");
      expect(events.map((e) => e.event)).toEqual(["retrain_started", "candidate_trained", "candidate_registered", "candidate_held"]);
      expect(String(events[0].msg)).toMatch(/failed units from ClickHouse ml_sensor_data/);
      const candidate = (await registry.list("rul")).find((e) => e.id !== first.id);
      expect(candidate?.stage).toBe("candidate");
      expect(candidate?.training_data).toMatch(/^ClickHouse ml_sensor_data: \d+ failed machines/);
      await registry.close();
    } finally {
      await ch.dispose();
    }
  }, 120_000);
});
