/**
 * A running job follows the model registry's production alias (connectors/registry follow.ts,
 * engine/jobs/model-follow.ts): the follower on both stores, and `linewatch run --predict registry`
 * on a C-MAPSS replay with ClickHouse — a promotion mid-run changes the model of the predictions
 * from then on, a model that does not fit the job is refused and the current one stays, and
 * ml_models mirrors the registry.
 */
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readCmapss } from "../connectors/files/cmapss.js";
import { referenceDataDir } from "../connectors/files/reference-data.js";
import { type ClickHouseServer, startClickHouseServer } from "../connectors/local/clickhouse-server.js";
import { type NatsServer, serverAvailable, startNatsServer } from "../connectors/local/nats-server.js";
import {
  type Actor,
  DirectoryStore,
  followProduction,
  type ModelEntry,
  ModelRegistry,
  ObjectStoreRegistry,
  type RegistryStore,
} from "../connectors/registry/mod.js";
import { SeededRandom } from "../engine/core/mod.js";
import { DEFAULT_NATS_PUBLISH, publishSimulation } from "../connectors/sim/nats-publisher.js";
import { PlantSimulator } from "../connectors/sim/plant-simulator.js";
import { modelToJson, parseModel } from "../operators/iforest/model.js";
import { trainIsolationForest } from "../operators/iforest/training/train.js";
import { encodeRulModel } from "../operators/prediction/training/onnx-export.js";
import { trainRulModel } from "../operators/prediction/training/rul-train.js";
import { startCli } from "./kit/cli.js";
import { type RegistryTestModels, registryTestModels } from "./kit/registry-models.js";
import { waitUntil } from "./kit/wait.js";
import { TEST_MODEL_OPTIONS } from "./kit/prediction-model.js";

const CLI = resolve("dist/engine/cli/main.js");
const FILE = join(referenceDataDir(), "cmapss", "train_FD001.txt");
const ACTOR: Actor = { command: "linewatch models (test)", user: "tester", host: "test-host" };
const haveNats = serverAvailable("nats-server");
const haveClickHouse = serverAvailable("clickhouse-server");

let MODELS: RegistryTestModels;
let nats: NatsServer | undefined;
let nc: NatsConnection | undefined;
beforeAll(async () => {
  MODELS = registryTestModels();
  if (!haveNats) return;
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
}, 120_000);
afterAll(async () => {
  await nc?.close();
  await nats?.dispose();
});

/** A follower whose installs and errors are recorded; `refuse` names ids whose install fails. */
function recordingFollower(registry: ModelRegistry, currentId: string | null, refuse: Set<string>) {
  const installed: string[] = [];
  const errors: string[] = [];
  const mirrored: string[][] = [];
  const follower = followProduction({
    registry,
    kind: "rul",
    currentId,
    intervalMs: 3_600_000,
    install: async (entry: ModelEntry) => {
      if (refuse.has(entry.id)) throw new Error(`model ${entry.short_id} does not fit`);
      installed.push(entry.id);
    },
    onError: (error, entry) => errors.push(`${entry?.short_id ?? "-"}: ${error.message}`),
    onEntries: (entries) => mirrored.push(entries.map((e) => `${e.file_name} ${e.stage}`)),
  });
  return { follower, installed, errors, mirrored };
}

const STORES: [string, boolean, () => Promise<RegistryStore>][] = [
  ["a directory", true, async () => new DirectoryStore(mkdtempSync(join(tmpdir(), "lw-follow-")))],
  ["a JetStream object store", haveNats, async () => ObjectStoreRegistry.open(nc as NatsConnection, `lw-follow-${Date.now()}`)],
];

describe.each(STORES)("following the production alias in %s", (_name, available, open) => {
  it.runIf(available)(
    "installs each new production model once, skips one that does not fit until the alias moves, keeps the model when the alias is cleared",
    async () => {
      const registry = new ModelRegistry(await open(), ACTOR);
      const a = (await registry.push({ bytes: MODELS.rulA, kind: "rul", fileName: "a.onnx" })).entry;
      const b = (await registry.push({ bytes: MODELS.rulB, kind: "rul", fileName: "b.onnx" })).entry;
      await registry.promote(a.id, "production");
      const { follower, installed, errors, mirrored } = recordingFollower(registry, a.id, new Set([b.id]));
      try {
        await follower.poll();
        expect(installed).toEqual([]);
        expect(mirrored).toEqual([["a.onnx production", "b.onnx candidate"]]);

        await registry.promote(b.id, "production");
        await follower.poll();
        await follower.poll();
        // b is refused once, reported once, and not tried again while it stays production.
        expect(installed).toEqual([]);
        expect(errors).toEqual([`${b.short_id}: model ${b.short_id} does not fit`]);
        expect(follower.currentId).toBe(a.id);

        await registry.rollback("rul");
        await follower.poll();
        expect(follower.currentId).toBe(a.id);
        await registry.promote(a.id, "candidate");
        await follower.poll();
        expect([installed, follower.currentId]).toEqual([[], a.id]);

        const forest = (await registry.push({ bytes: MODELS.iforest, kind: "iforest", fileName: "f.json" })).entry;
        await registry.promote(forest.id, "production");
        await follower.poll();
        // Another kind's promotion is mirrored, not installed.
        expect(installed).toEqual([]);
        expect(mirrored.at(-1)).toEqual(["a.onnx candidate", "b.onnx archived", "f.json production"]);
      } finally {
        await follower.stop();
        await registry.close();
      }
    },
  );

  it.runIf(available)("a promotion after a refused model is installed", async () => {
    const registry = new ModelRegistry(await open(), ACTOR);
    const a = (await registry.push({ bytes: MODELS.rulA, kind: "rul", fileName: "a.onnx" })).entry;
    const b = (await registry.push({ bytes: MODELS.rulB, kind: "rul", fileName: "b.onnx" })).entry;
    const { follower, installed, errors } = recordingFollower(registry, null, new Set([a.id]));
    try {
      await registry.promote(a.id, "production");
      await follower.poll();
      await registry.promote(b.id, "production");
      await follower.poll();
      expect(installed).toEqual([b.id]);
      expect(errors.length).toBe(1);
      expect(follower.currentId).toBe(b.id);
    } finally {
      await follower.stop();
      await registry.close();
    }
  });
});

interface PredictionRow {
  machine_id: string;
  predicted_at_ms: number;
  model_version: string;
}

describe.skipIf(!haveClickHouse)("linewatch run --predict registry - a promotion mid-run", () => {
  let ch: ClickHouseServer;
  beforeAll(async () => {
    ch = await startClickHouseServer();
  }, 60_000);
  afterAll(async () => {
    await ch?.dispose();
  });

  const predictions = async (): Promise<PredictionRow[]> => {
    const text = await ch
      .query(
        "SELECT machine_id, predicted_at_ms, model_version FROM follow.ml_maintenance_predictions FINAL ORDER BY machine_id, predicted_at_ms FORMAT JSONEachRow",
        {
          output_format_json_quote_64bit_integers: 0,
        },
      )
      .catch(() => "");
    return text.trim() === ""
      ? []
      : text
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l) as PredictionRow);
  };
  const until = async (what: string, cond: () => Promise<boolean>, stderr: () => string): Promise<void> => {
    const deadline = Date.now() + 60_000;
    while (!(await cond())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; stderr:\n${stderr()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  it("swaps the new production model in between model runs, refuses one with another window, mirrors ml_models", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lw-follow-run-"));
    const registryDir = join(dir, "registry");
    const registry = new ModelRegistry(new DirectoryStore(registryDir), ACTOR);
    const a = (await registry.push({ bytes: MODELS.rulA, kind: "rul", fileName: "a.onnx" })).entry;
    const b = (await registry.push({ bytes: MODELS.rulB, kind: "rul", fileName: "b.onnx" })).entry;
    const otherWindow = encodeRulModel(
      trainRulModel(readCmapss(FILE), { ...TEST_MODEL_OPTIONS, epochs: 1, window: 10 }, "train_FD001.txt (window 10)").spec,
    );
    const c = (await registry.push({ bytes: otherWindow, kind: "rul", fileName: "c-window-10.onnx" })).entry;
    await registry.promote(a.id, "production");
    await ch.query("CREATE DATABASE IF NOT EXISTS follow");
    // Units 1-3 at 20 cycles a second: about 10 s of replay, long enough for two promotions.
    const args = ["run", "--cmapss", FILE, "--cmapss-units", "1-3", "--speed", "72000", "--predict", "registry", "--registry", registryDir];
    const run = spawn(
      process.execPath,
      [CLI, ...args, "--registry-poll", "200ms", "--analysis", "rolling", "--clickhouse", ch.url, "--clickhouse-db", "follow"].concat([
        "--spill-dir",
        join(dir, "spill"),
        "--no-file",
        "--alerts",
        join(dir, "alerts.ndjson"),
        "--summary-interval",
        "0",
        "--no-live",
      ]),
      { cwd: dir, env: { ...process.env, LINEWATCH_LOG_LEVEL: "info" }, stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    run.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((r) => run.once("exit", r));
    const version = (e: ModelEntry) => `rul-mlp-${e.id.slice(0, 12)}`;
    try {
      await until(
        "predictions by a",
        async () => (await predictions()).some((p) => p.model_version === version(a)),
        () => stderr,
      );
      await registry.promote(b.id, "production");
      await until(
        "predictions by b",
        async () => (await predictions()).some((p) => p.model_version === version(b)),
        () => stderr,
      );
      await registry.promote(c.id, "production");
      await until(
        "the refusal of c",
        async () => /new production model not used/.test(stderr),
        () => stderr,
      );
    } finally {
      const code = await exited;
      expect(code, stderr).toBe(0);
    }
    expect(stderr).toContain("production rul model swapped");
    expect(stderr).toContain(`"from":"${a.short_id}","to":"${b.short_id}"`);
    expect(stderr).toMatch(/c-window-10|window of 10/);

    const rows = await predictions();
    const byMachine = new Map<string, PredictionRow[]>();
    for (const r of rows) byMachine.set(r.machine_id, [...(byMachine.get(r.machine_id) ?? []), r]);
    expect([...byMachine.keys()]).toEqual(["ENG-001", "ENG-002", "ENG-003"]);
    for (const [machine, list] of byMachine) {
      const versions = list.map((r) => r.model_version);
      // One swap, at one moment: every machine's predictions are a's, then b's; never c's.
      const firstB = versions.indexOf(version(b));
      expect(firstB, machine).toBeGreaterThan(0);
      expect(
        versions.slice(0, firstB).every((v) => v === version(a)),
        machine,
      ).toBe(true);
      expect(
        versions.slice(firstB).every((v) => v === version(b)),
        machine,
      ).toBe(true);
    }

    const mirrored = await ch.query("SELECT file_name, stage FROM follow.ml_models FINAL ORDER BY file_name FORMAT TSV");
    expect(mirrored.trim().split("\n")).toEqual(["a.onnx\tarchived", "b.onnx\tarchived", "c-window-10.onnx\tproduction"]);
    await registry.close();
  }, 120_000);
});

interface ScoreLine {
  machine_id: string;
  sensor_type: string;
  timestamp: number;
  iforest_score: number | null;
  model_hash: string | null;
}

describe.skipIf(!haveNats)("linewatch run --nats --model registry - ingest workers follow the registry themselves", () => {
  const SITE = "rf";
  const PHASE = 2_000;
  /** Two forests over the same features (the reading, its rolling mean and std), from two seeds. */
  const forest = (seed: number): Uint8Array => {
    const rng = new SeededRandom(seed);
    const rows = 400;
    const values = new Float64Array(rows * 3);
    for (let i = 0; i < values.length; i++) values[i] = 50 + 5 * rng.normal();
    const model = trainIsolationForest({ values, rows, columns: 3, names: ["value", "mean", "std"] }, { trees: 25, sampleSize: 64, seed });
    return new TextEncoder().encode(modelToJson(model));
  };
  const publish = async (seed: number, shiftMs: number): Promise<void> => {
    const simulator = new PlantSimulator({
      seed,
      machines: 2,
      sensorTypes: ["pressure"],
      rateHz: 10,
      startTime: Date.parse("2026-01-01T00:00:00Z") + shiftMs,
      maxRecords: PHASE,
    });
    await publishSimulation(simulator, { ...DEFAULT_NATS_PUBLISH, url: (nats as NatsServer).url, site: SITE, rate: 20_000 });
  };

  it("the production iforest model scores until a promotion; the next one from the next batch on, on every key", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lw-follow-ingest-"));
    const registry = new ModelRegistry(await ObjectStoreRegistry.open(nc as NatsConnection), ACTOR);
    const [bytesA, bytesB] = [forest(1), forest(2)];
    const a = (await registry.push({ bytes: bytesA, kind: "iforest", fileName: "forest-a.json" })).entry;
    const b = (await registry.push({ bytes: bytesB, kind: "iforest", fileName: "forest-b.json" })).entry;
    await registry.promote(a.id, "production");
    const hashOf = (bytes: Uint8Array) => parseModel(new TextDecoder().decode(bytes), "test").hash;
    const lines: ScoreLine[] = [];
    const sub = (nc as NatsConnection).subscribe(`lw.${SITE}.score.>`, { callback: (_e, m) => lines.push(m.json<ScoreLine>()) });
    await (nc as NatsConnection).flush();
    const run = startCli(
      [
        "run",
        "--nats",
        (nats as NatsServer).url,
        "--site",
        SITE,
        "--ingest-workers",
        "1",
        "--analysis",
        "rolling,iforest",
        "--window",
        "16",
      ].concat(
        ["--model", "registry", "--registry-poll", "200ms", "--no-live", "--summary-interval", "0", "--no-serials"],
        ["--alerts", join(dir, "alerts.ndjson"), "--log-level", "info"],
      ),
      dir,
    );
    try {
      expect(await waitUntil(() => /consuming/.test(run.output()), 30_000), run.output()).toBe(true);
      await publish(1, 0);
      expect(await waitUntil(() => lines.length >= PHASE, 60_000), run.output()).toBe(true);
      await registry.promote(b.id, "production");
      expect(await waitUntil(() => /production iforest model swapped/.test(run.output()), 30_000), run.output()).toBe(true);
      await publish(2, 3_600_000);
      expect(await waitUntil(() => lines.length >= 2 * PHASE, 60_000), run.output()).toBe(true);
      expect(await run.stop(), run.output()).toBe(0);
    } finally {
      sub.unsubscribe();
      await run.stop();
      await registry.close();
    }
    expect(run.output()).toContain(`"from":"${a.short_id}","to":"${b.short_id}"`);
    const scored = lines.filter((l) => l.model_hash !== null);
    const firstPhase = scored.filter((l) => l.timestamp < Date.parse("2026-01-01T01:00:00Z"));
    const secondPhase = scored.filter((l) => l.timestamp >= Date.parse("2026-01-01T01:00:00Z"));
    expect(firstPhase.length).toBeGreaterThan(PHASE / 2);
    expect(new Set(firstPhase.map((l) => l.model_hash))).toEqual(new Set([hashOf(bytesA)]));
    expect(new Set(secondPhase.map((l) => l.model_hash))).toEqual(new Set([hashOf(bytesB)]));
  }, 180_000);
});
