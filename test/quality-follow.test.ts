/**
 * The quality job follows the registry's production quality model (engine/jobs/quality-job.ts
 * swapModel, engine/cli/quality-run.ts, the follower of engine/jobs/model-follow.ts):
 * - a swap in the job: rows taken before it are scored by the model whose layout wrote them,
 *   every later prediction by the new model — running batches included, even one with other
 *   features — each row naming its model; the replaced model is closed;
 * - the follower on both registry stores (a directory; a JetStream object store on a throw-away
 *   nats-server) installs a promoted quality model into a running job and logs the switch;
 * - `linewatch run --quality-model registry` on the simulator with ClickHouse: a promotion mid-run
 *   changes the model_version of ml_quality_predictions from then on, the switch logged old → new;
 * - drivers: `progress` is never one, though its occlusion would rank it among the first.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ClickHouseServer, startClickHouseServer } from "../connectors/local/clickhouse-server.js";
import { type NatsServer, serverAvailable, startNatsServer } from "../connectors/local/nats-server.js";
import { type Actor, DirectoryStore, ModelRegistry, ObjectStoreRegistry, type RegistryStore } from "../connectors/registry/mod.js";
import { memoryLogger } from "../engine/core/mod.js";
import { swapInto } from "../engine/cli/quality-run.js";
import { followRegistry } from "../engine/jobs/model-follow.js";
import {
  DEFAULT_QUALITY_JOB,
  QUALITY_DRIVERS_MAX,
  QualityJob,
  type QualityPredictionRow,
  qualityDrivers,
} from "../engine/jobs/quality-job.js";
import { BatchFeatureState, QualityModel, type ProcessRecord, type QualityRecord } from "../operators/quality/mod.js";
import { batchHistories } from "../operators/quality/training/quality-dataset.js";
import { encodeQualityModel } from "../operators/quality/training/quality-onnx.js";
import { DEFAULT_QUALITY_TRAIN_OPTIONS, trainQualityModel } from "../operators/quality/training/quality-train.js";
import { startCli } from "./kit/cli.js";
import { printFigures } from "./kit/figures.js";
import { registryTestModels } from "./kit/registry-models.js";
import { waitUntil } from "./kit/wait.js";
import { type BatchRecord, batchRecords } from "./kit/batch-records.js";

function feed(job: QualityJob, recs: readonly BatchRecord[]): void {
  for (const rec of recs) {
    if (rec.kind === "process") job.process(rec.r);
    else job.quality(rec.r);
  }
}

async function feedFlushing(job: QualityJob, recs: readonly BatchRecord[]): Promise<void> {
  for (const rec of recs) {
    feed(job, [rec]);
    await job.flush();
  }
}

const ACTOR: Actor = { command: "linewatch models (test)", user: "tester", host: "test-host" };
const haveNats = serverAvailable("nats-server");
const haveClickHouse = serverAvailable("clickhouse-server");
/** Two models trained on the batch simulator (seeds 1 and 2: other bytes), and the kit's two-feature one. */
let bytesA: Uint8Array;
let bytesB: Uint8Array;
let bytesNarrow: Uint8Array;
let nats: NatsServer | undefined;
let nc: NatsConnection | undefined;

beforeAll(async () => {
  const train = batchRecords(21, 4, 120);
  const histories = batchHistories(
    train.filter((x) => x.kind === "process").map((x) => x.r as ProcessRecord),
    train.filter((x) => x.kind === "quality").map((x) => x.r as QualityRecord),
  );
  const trained = (seed: number) =>
    encodeQualityModel(trainQualityModel(histories, { ...DEFAULT_QUALITY_TRAIN_OPTIONS, epochs: 10, seed }, "sim").spec);
  bytesA = trained(1);
  bytesB = trained(2);
  bytesNarrow = registryTestModels().quality;
  if (!haveNats) return;
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
}, 180_000);
afterAll(async () => {
  await nc?.close();
  await nats?.dispose();
});

const newJob = (model: QualityModel, rows: QualityPredictionRow[]) =>
  new QualityJob({ ...DEFAULT_QUALITY_JOB, model, intervalMs: 300_000, onEpisode: () => {}, onPrediction: (p) => rows.push(p) });

/** The model versions in emission order, runs collapsed: [A, B] for a clean switch. */
const runsOf = (rows: readonly QualityPredictionRow[]) =>
  rows.map((r) => r.model_version).filter((v, i, all) => i === 0 || all[i - 1] !== v);

describe("quality job - a model swap", () => {
  it("rows taken before the swap are scored by their model, every later prediction by the new one (other features too), running batches included; the old model is closed", async () => {
    const recs = batchRecords(5, 3, 18);
    const a = await QualityModel.fromBytes(bytesA, "a.onnx");
    const narrow = await QualityModel.fromBytes(bytesNarrow, "narrow.onnx");
    const rows: QualityPredictionRow[] = [];
    const job = newJob(a, rows);
    const cut = Math.floor(recs.length / 2);
    await feedFlushing(job, recs.slice(0, cut));
    const before = rows.length;
    // Taken without a flush: rows laid out by model a wait in the job when it swaps.
    feed(job, recs.slice(cut, cut + 300));
    expect(await job.swapModel(narrow)).toBe(a);
    await job.flush();
    const waited = rows.slice(before).filter((r) => r.model_version === a.modelVersion).length;
    await feedFlushing(job, recs.slice(cut + 300));
    await job.close();

    expect(waited, "rows taken before the swap, scored by their model").toBeGreaterThan(0);
    expect(runsOf(rows)).toEqual([a.modelVersion, narrow.modelVersion]);
    const after = rows.filter((r) => r.model_version === narrow.modelVersion);
    expect(after.length).toBeGreaterThan(0);
    expect(after.every((r) => Number.isFinite(r.predicted_yield))).toBe(true);
    // A batch running at the swap: its predictions by a, then by the new model.
    const across = new Set(rows.filter((r) => r.model_version === a.modelVersion).map((r) => r.batch_id));
    expect(after.some((r) => across.has(r.batch_id))).toBe(true);
    await expect(a.predict(new Float64Array(a.layout.width), 1)).rejects.toThrow(/closed/);
    // A swap after the job ended (a registry read finishing late) is refused; the model it brought is closed.
    const late = await QualityModel.fromBytes(bytesB, "late.onnx");
    await expect(job.swapModel(late)).rejects.toThrow(/has ended/);
    await expect(late.predict(new Float64Array(late.layout.width), 1)).rejects.toThrow(/closed/);
  }, 60_000);
});

const STORES: [string, boolean, () => Promise<RegistryStore>][] = [
  ["a directory", true, async () => new DirectoryStore(mkdtempSync(join(tmpdir(), "lw-qfollow-")))],
  // The default bucket: the follower opens the registry from its URL, as `run --registry nats://…` does.
  ["a JetStream object store", haveNats, async () => ObjectStoreRegistry.open(nc as NatsConnection, undefined, (nats as NatsServer).url)],
];

describe.each(STORES)("quality job - following the registry in %s", (_name, available, open) => {
  it.runIf(available)(
    "a promoted quality model makes the running job's next predictions, logged old → new",
    async () => {
      const registry = new ModelRegistry(await open(), ACTOR);
      const entryA = (await registry.push({ bytes: bytesA, kind: "quality", fileName: "qa.onnx" })).entry;
      const entryB = (await registry.push({ bytes: bytesB, kind: "quality", fileName: "qb.onnx" })).entry;
      await registry.promote(entryA.id, "production");
      const a = await QualityModel.fromBytes(bytesA, "a.onnx");
      const rows: QualityPredictionRow[] = [];
      const job = newJob(a, rows);
      const { log, entries } = memoryLogger({ level: "info" });
      // As `run --registry` names it: the directory, or the server (its default bucket).
      const where = registry.store instanceof DirectoryStore ? registry.store.where : (nats as NatsServer).url;
      const stop = followRegistry(
        { where, entryId: entryA.id, pollMs: 50 },
        "quality",
        log,
        swapInto(job, log.child({ component: "quality" })),
      );
      const recs = batchRecords(9, 2, 8);
      const cut = Math.floor(recs.length / 2);
      try {
        await feedFlushing(job, recs.slice(0, cut));
        await registry.promote(entryB.id, "production");
        expect(await waitUntil(() => job.modelInUse !== a, 30_000)).toBe(true);
        await feedFlushing(job, recs.slice(cut));
      } finally {
        stop();
        await registry.close();
      }
      const b = job.modelInUse.modelVersion;
      await job.close();
      expect(b).toBe(`quality-mlp-${entryB.short_id}`);
      expect(runsOf(rows)).toEqual([`quality-mlp-${entryA.short_id}`, b]);
      const switched = entries.find((e) => e.msg.startsWith("quality model switched"));
      expect(switched).toMatchObject({ component: "quality", from: a.modelVersion, to: b, registry_entry: entryB.short_id });
      expect(entries.find((e) => e.msg.startsWith("production quality model swapped"))).toMatchObject({
        from: entryA.short_id,
        to: entryB.short_id,
      });
    },
    60_000,
  );
});

describe.runIf(haveNats && haveClickHouse)("linewatch run --quality-model registry", () => {
  let ch: ClickHouseServer;
  // A server of its own: a registry (the default bucket) nothing else wrote to.
  let runNats: NatsServer;
  let runNc: NatsConnection;
  beforeAll(async () => {
    [ch, runNats] = await Promise.all([startClickHouseServer(), startNatsServer()]);
    runNc = await connect({ servers: runNats.url });
  }, 120_000);
  afterAll(async () => {
    await runNc?.close();
    await Promise.all([ch?.dispose(), runNats?.dispose()]);
  });

  it("a promotion mid-run: ml_quality_predictions name the first model, then the promoted one, batches in progress included", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lw-qfollow-run-"));
    const registry = new ModelRegistry(await ObjectStoreRegistry.open(runNc), ACTOR);
    const entryA = (await registry.push({ bytes: bytesA, kind: "quality", fileName: "qa.onnx" })).entry;
    const entryB = (await registry.push({ bytes: bytesB, kind: "quality", fileName: "qb.onnx" })).entry;
    await registry.promote(entryA.id, "production");
    const [versionA, versionB] = [`quality-mlp-${entryA.short_id}`, `quality-mlp-${entryB.short_id}`];
    const query = async (sql: string) => (await (await fetch(`${ch.url}/?query=${encodeURIComponent(sql)}`)).text()).trim();
    const countOf = async (version: string) =>
      Number(await query(`SELECT count() FROM ml_quality_predictions WHERE model_version = '${version}'`));
    const run = startCli(
      ["run", "--speed", "600", "--machines", "1", "--no-file", "--no-serials", "--no-live", "--summary-interval", "0"].concat(
        ["--quality-model", "registry", "--registry", runNats.url, "--registry-poll", "200ms"],
        ["--clickhouse", ch.url, "--alerts", join(dir, "alerts.ndjson"), "--log-level", "info"],
      ),
      dir,
      [],
    );
    try {
      expect(await waitUntil(async () => (await countOf(versionA).catch(() => 0)) >= 10, 90_000), run.output()).toBe(true);
      await registry.promote(entryB.id, "production");
      expect(await waitUntil(() => /quality model switched/.test(run.output()), 30_000), run.output()).toBe(true);
      expect(await waitUntil(async () => (await countOf(versionB)) >= 10, 90_000), run.output()).toBe(true);
      // ml_models mirrors the registry: the promoted entry is the production one.
      const production = () => query("SELECT substring(id, 1, 12) FROM ml_models FINAL WHERE kind = 'quality' AND stage = 'production'");
      expect(await waitUntil(async () => (await production()) === entryB.short_id, 30_000), await production()).toBe(true);
      expect(await run.stop(), run.output()).toBe(0);
    } finally {
      await run.stop();
      await registry.close();
    }
    expect(run.output()).toContain(`"from":"${versionA}","to":"${versionB}"`);
    expect(run.output()).toMatch(new RegExp(`quality \\(model ${versionB}\\)`));
    // Per batch scored by both: every prediction of the first model before every one of the second.
    const [isA, isB] = [`model_version = '${versionA}'`, `model_version = '${versionB}'`];
    const spans = (
      await query(
        `SELECT batch_id, maxIf(predicted_at_ms, ${isA}), minIf(predicted_at_ms, ${isB}) FROM ml_quality_predictions ` +
          `GROUP BY batch_id HAVING countIf(${isA}) > 0 AND countIf(${isB}) > 0 FORMAT TSV`,
      )
    )
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => l.split("\t").map(Number));
    expect(spans.length, "a batch in progress at the promotion").toBeGreaterThan(0);
    printFigures(
      `run --quality-model registry: ${await countOf(versionA)} predictions by ${versionA}, then ${await countOf(versionB)} by ${versionB}; ` +
        `${spans.length} batches scored by both (in progress at the promotion)`,
    );
    for (const [, lastA, firstB] of spans) expect(lastA).toBeLessThan(firstB);
    const others = await query(`SELECT count() FROM ml_quality_predictions WHERE model_version NOT IN ('${versionA}', '${versionB}')`);
    expect(others).toBe("0");
  }, 300_000);
});

describe("quality drivers", () => {
  it("progress is never a driver, though at the start of a batch its occlusion would rank among the first", async () => {
    const model = await QualityModel.fromBytes(bytesA, "a.onnx");
    try {
      const means = model.featureMean as Float32Array;
      const progressAt = model.featureNames.indexOf("progress");
      expect(progressAt).toBeGreaterThanOrEqual(0);
      const recs = batchRecords(5, 1, 3).filter((x) => x.kind === "process") as Extract<BatchRecord, { kind: "process" }>[];
      const state = new BatchFeatureState();
      const first = recs.filter((x) => x.r.batch_id === recs[0].r.batch_id);
      for (const x of first.slice(0, Math.max(3, Math.floor(first.length / 10)))) state.add(x.r);
      const row = new Float64Array(model.layout.width);
      model.layout.write(state, row, 0);
      expect(row[progressAt]).toBeLessThan(means[progressAt]);
      // Progress's own occlusion: Δ yield = ŷ(x) − ŷ(x with progress at its training mean).
      const occluded = Float64Array.from(row);
      occluded[progressAt] = means[progressAt];
      const [full, withMean] = await model.predict(Float64Array.from([...row, ...occluded]), 2);
      const progressDelta = full.predicted_yield - withMean.predicted_yield;
      const drivers = await qualityDrivers(model, row);
      expect(drivers.length).toBe(QUALITY_DRIVERS_MAX);
      expect(drivers.map((d) => d.feature)).not.toContain("progress");
      // It would have been listed: its Δ is below the last driver's.
      expect(progressDelta, JSON.stringify(drivers)).toBeLessThan(drivers[drivers.length - 1].delta_yield);
      // The method otherwise unchanged: the listed Δ are the occlusion's, most negative first.
      for (const d of drivers) {
        const j = model.featureNames.indexOf(d.feature);
        const x = Float64Array.from(row);
        x[j] = means[j];
        const [p] = await model.predict(x, 1);
        expect(d.delta_yield).toBeCloseTo(full.predicted_yield - p.predicted_yield, 6);
      }
      expect(drivers.map((d) => d.delta_yield)).toEqual([...drivers.map((d) => d.delta_yield)].sort((x, y) => x - y));
    } finally {
      await model.close();
    }
  }, 60_000);
});
