/**
 * Issue 15, point 4: `linewatch audit verify` on real servers (the built CLI, dist/: run `npx tsc
 * -p tsconfig.json` first; throw-away nats-server and clickhouse-server). Verify passes on a run's
 * output — a `replay --audit` file (registry in a directory and in a JetStream object store), and
 * the ml_scores rows of audited ingest workers — and changing one stored value, one limit, the
 * model a row names, or the kernel makes it fail and name what differs. No time is asserted.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kernelHash } from "../engine/core/mod.js";
import { type AnalysisSpec, auditConfig, auditStamp, DEFAULT_INGEST_JOB, IngestJob, type VerifyReport } from "../engine/jobs/mod.js";
import { ClickHouseSink, TABLE_SCHEMAS } from "../connectors/clickhouse/mod.js";
import { DirectoryStore, ModelRegistry, ObjectStoreRegistry } from "../connectors/registry/mod.js";
import { startClickHouseServer, type ClickHouseServer } from "../connectors/local/clickhouse-server.js";
import { serverAvailable, startNatsServer, type NatsServer } from "../connectors/local/nats-server.js";
import { DEFAULT_NATS_PUBLISH, publishSimulation } from "../connectors/sim/nats-publisher.js";
import { PlantSimulator } from "../connectors/sim/plant-simulator.js";
import { parseModel } from "../operators/iforest/mod.js";
import { runCli, startCli } from "./kit/cli.js";
import { auditTestModels } from "./kit/audit-models.js";
import { SIM, SPECS } from "./kit/ingest-run.js";
import { waitUntil } from "./kit/wait.js";

const WORK = mkdtempSync(join(tmpdir(), "lw-audit-verify-"));
const INPUT = resolve("data/nab/realTraffic/speed_6005.csv");
const MODELS = auditTestModels();
const HASH_A = parseModel(MODELS.a).hash;
const HASH_B = parseModel(MODELS.b).hash;
writeFileSync(join(WORK, "a.json"), MODELS.a);
writeFileSync(join(WORK, "b.json"), MODELS.b);

const haveNats = serverAvailable("nats-server");
const haveBoth = haveNats && serverAvailable("clickhouse-server");

/** Runs `audit verify` with `args`; its exit code and JSON report. */
async function verify(args: string[]): Promise<{ code: number | null; report: VerifyReport; output: string }> {
  const p = startCli(["audit", "verify", ...args, "--json"], WORK);
  const code = await p.exited;
  const output = p.output();
  const start = output.indexOf("{");
  return { code, report: JSON.parse(output.slice(start)) as VerifyReport, output };
}

/** The audited file with line `n` (1-based, the header is line 1) changed by `change`. */
function tampered(name: string, n: number, change: (row: Record<string, unknown>) => void): string {
  const lines = readFileSync(join(WORK, "scores.ndjson"), "utf8").trimEnd().split("\n");
  const row = JSON.parse(lines[n - 1]) as Record<string, unknown>;
  change(row);
  lines[n - 1] = JSON.stringify(row);
  writeFileSync(join(WORK, name), `${lines.join("\n")}\n`);
  return name;
}

/** The first line (1-based) after `after` whose row has `field` set. */
function lineWith(field: string, after: number): number {
  const lines = readFileSync(join(WORK, "scores.ndjson"), "utf8").trimEnd().split("\n");
  for (let i = after; i < lines.length; i++) if ((JSON.parse(lines[i]) as Record<string, unknown>)[field] != null) return i + 1;
  throw new Error(`no line with ${field}`);
}

describe("audit verify - a replay --audit file", () => {
  beforeAll(async () => {
    const registry = new ModelRegistry(new DirectoryStore(join(WORK, "registry")));
    for (const name of ["a.json", "b.json"])
      await registry.push({ bytes: readFileSync(join(WORK, name)), kind: "iforest", fileName: name });
    await runCli(
      [
        "replay",
        INPUT,
        "--analysis",
        "rolling,spc,iforest",
        "--window",
        "16",
        "--baseline",
        "100",
        "--model",
        "a.json",
        "--features",
        "value,mean,std,z",
        "--audit",
        "--quiet",
        "--out",
        "scores.ndjson",
      ],
      WORK,
    );
  }, 120_000);

  it("writes the settings once and the four audit members on every line", () => {
    const lines = readFileSync(join(WORK, "scores.ndjson"), "utf8").trimEnd().split("\n");
    const header = JSON.parse(lines[0]).audit;
    expect(header.kernel_hash).toBe(kernelHash());
    expect(header.config.analyses.map((a: { name: string }) => a.name)).toEqual(["rolling", "spc", "iforest"]);
    const rows = lines.slice(1).map((l) => JSON.parse(l));
    expect(rows.length).toBe(2500);
    for (const r of rows) {
      expect(r.kernel_hash).toBe(header.kernel_hash);
      expect(r.config_hash).toBe(header.config_hash);
      expect(r.model_version).toBe(r.iforest_score === null ? null : HASH_A);
      expect(typeof r.limits_version).toBe("number");
    }
  });

  it("passes on the run's output, and names the member a changed value, limit or model changes", async () => {
    const ok = await verify(["--input", "scores.ndjson", "--dir", "registry"]);
    expect(ok.code, ok.output).toBe(0);
    expect(ok.report).toMatchObject({ checked: 2500, equal: 2500, differing: 0, models: [HASH_A] });
    expect(ok.report.kernel.same).toBe(true);

    const meanLine = lineWith("mean", 300);
    const value = await verify([
      "--input",
      tampered("value.ndjson", meanLine, (r) => (r.mean = (r.mean as number) + 1e-9)),
      "--dir",
      "registry",
    ]);
    expect(value.code).toBe(1);
    expect(value.report.differing).toBe(1);
    expect(value.report.differences[0]).toMatchObject({ field: "mean", recomputed: JSON.parse(readLine(meanLine)).mean });

    const uclLine = lineWith("ucl", 1200);
    const limit = await verify([
      "--input",
      tampered("limit.ndjson", uclLine, (r) => (r.ucl = (r.ucl as number) * 1.01)),
      "--dir",
      "registry",
    ]);
    expect(limit.code).toBe(1);
    expect(limit.report.differences.map((d) => d.field)).toEqual(["ucl"]);

    // The rows say model B scored them: B recomputes other scores.
    const all = readFileSync(join(WORK, "scores.ndjson"), "utf8").replaceAll(`"model_version":"${HASH_A}"`, `"model_version":"${HASH_B}"`);
    writeFileSync(join(WORK, "model.ndjson"), all);
    const model = await verify(["--input", "model.ndjson", "--dir", "registry"]);
    expect(model.code).toBe(1);
    expect(model.report.models).toEqual([HASH_B]);
    expect(model.report.differences[0].field).toBe("iforest_score");
  }, 240_000);

  it("says so when the kernel that computed the scores is not this build's", async () => {
    const build = kernelHash();
    const other = "e".repeat(64);
    writeFileSync(join(WORK, "kernel.ndjson"), readFileSync(join(WORK, "scores.ndjson"), "utf8").replaceAll(build, other));
    const r = await verify(["--input", "kernel.ndjson", "--dir", "registry"]);
    expect(r.code).toBe(1);
    expect(r.report).toMatchObject({ differing: 0, kernel: { recorded: [other], build, same: false } });
    const text = startCli(["audit", "verify", "--input", "kernel.ndjson", "--dir", "registry"], WORK);
    await text.exited;
    expect(text.output()).toContain("KERNEL DIFFERS");
  }, 120_000);

  it("refuses settings changed after they were stored", async () => {
    const lines = readFileSync(join(WORK, "scores.ndjson"), "utf8").split("\n");
    lines[0] = lines[0].replace('"alpha":0.1', '"alpha":0.2');
    writeFileSync(join(WORK, "settings.ndjson"), lines.join("\n"));
    const p = startCli(["audit", "verify", "--input", "settings.ndjson", "--dir", "registry"], WORK);
    expect(await p.exited).toBe(2);
    expect(p.output()).toMatch(/not the recorded config_hash .*: they were changed/);
  }, 60_000);
});

describe.skipIf(!haveNats)("audit verify - the replay file, the registry in a JetStream object store", () => {
  let nats: NatsServer;
  beforeAll(async () => {
    nats = await startNatsServer();
    const store = await ObjectStoreRegistry.connect(nats.url);
    const registry = new ModelRegistry(store);
    await registry.push({ bytes: readFileSync(join(WORK, "a.json")), kind: "iforest", fileName: "a.json" });
    await registry.close();
  }, 60_000);
  afterAll(async () => {
    await nats?.dispose();
  });

  it("fetches the model from the bucket and passes", async () => {
    const r = await verify(["--input", "scores.ndjson", "--nats", nats.url]);
    expect(r.code, r.output).toBe(0);
    expect(r.report).toMatchObject({ checked: 2500, differing: 0, models: [HASH_A] });
  }, 120_000);
});

function readLine(n: number): string {
  return readFileSync(join(WORK, "scores.ndjson"), "utf8").split("\n")[n - 1];
}

describe.skipIf(!haveBoth)("audit verify - ml_scores of audited ingest workers", () => {
  let nats: NatsServer;
  let clickhouse: ClickHouseServer;
  const db = "audited";
  const specs: AnalysisSpec[] = [
    ...SPECS,
    { name: "iforest", options: { model: parseModel(MODELS.a), features: ["value", "mean", "std", "z"], rollingIndex: 0 } },
  ];

  beforeAll(async () => {
    const conf = join(WORK, "partitions.conf");
    writeFileSync(conf, 'mappings = {\n  "lw.a1.sensor.*.*": "lw.a1.p.{{partition(2,1)}}.sensor.{{wildcard(1)}}.{{wildcard(2)}}"\n}\n');
    [nats, clickhouse] = await Promise.all([startNatsServer(["-c", conf]), startClickHouseServer()]);
    const registry = new ModelRegistry(new DirectoryStore(join(WORK, "ch-registry")));
    for (const name of ["a.json", "b.json"])
      await registry.push({ bytes: readFileSync(join(WORK, name)), kind: "iforest", fileName: name });
    const sink = new ClickHouseSink({
      url: clickhouse.url,
      database: db,
      spillDir: mkdtempSync(join(tmpdir(), "lw-audit-spill-")),
      flushIntervalMs: 50,
    });
    const stamp = auditStamp(auditConfig(specs, "ms", null, false), kernelHash());
    await sink.write("ml_audit_configs", [
      { config_hash: stamp.configHash, kernel_hash: stamp.kernelHash, created_at: Date.now(), config: stamp.configJson },
    ]);
    const job = await IngestJob.start({
      ...DEFAULT_INGEST_JOB,
      url: nats.url,
      site: "a1",
      workers: 2,
      partitions: 2,
      analyses: specs,
      groups: 4,
      keysMax: 64,
      batchRecordsMax: 512,
      scoreFrames: false,
      live: null,
      sink,
      audit: { configHash: stamp.configHash },
    });
    await publishSimulation(new PlantSimulator(SIM), { ...DEFAULT_NATS_PUBLISH, url: nats.url, site: "a1", msgIds: false });
    const n = SIM.maxRecords as number;
    expect(await waitUntil(() => job.counts().scored >= n, 120_000)).toBe(true);
    await job.stop();
    await sink.close();
  }, 240_000);
  afterAll(async () => {
    await Promise.all([nats?.dispose(), clickhouse?.dispose()]);
  });

  const key = "M-001/pressure";
  const args = () => ["--clickhouse", clickhouse.url, "--database", db, "--dir", "ch-registry"];

  /**
   * Writes the key's `nth` row where `where` holds again with `column` set to `expr` and a higher
   * version: FINAL reads the new one.
   */
  async function tamper(nth: number, column: string, expr: string, where: string): Promise<void> {
    const list = TABLE_SCHEMAS.ml_scores.columns.map((c) =>
      c.name === column ? `${expr} AS ${column}` : c.name === "version" ? "version + 1 AS version" : c.name,
    );
    await clickhouse.query(
      `INSERT INTO ${db}.ml_scores SELECT ${list.join(", ")} FROM ${db}.ml_scores FINAL ` +
        `WHERE machine_id = 'M-001' AND sensor_type = 'pressure' AND ${where} ORDER BY seq LIMIT ${nth}, 1`,
    );
  }

  it("passes on the stored rows, every column bit-equal, for a key and for a machine", async () => {
    const machines = (await clickhouse.query(`SELECT DISTINCT machine_id FROM ${db}.ml_scores ORDER BY machine_id`)).trim().split("\n");
    expect(machines).toContain("M-001");
    const one = await verify([...args(), "--key", key]);
    expect(one.code, one.output).toBe(0);
    expect(one.report).toMatchObject({ checked: 1000, equal: 1000, differing: 0, models: [HASH_A] });
    expect(one.report.kernel.same).toBe(true);
    const machine = await verify([...args(), "--key", "M-001"]);
    expect(machine.code, machine.output).toBe(0);
    expect(machine.report.checked).toBe(3000);
    // --from chooses the rows compared; the state is still rebuilt from the key's first row.
    const from = (
      await clickhouse.query(
        `SELECT timestamp_ms FROM ${db}.ml_scores FINAL WHERE machine_id = 'M-001' AND sensor_type = 'pressure' ORDER BY seq LIMIT 600, 1`,
      )
    ).trim();
    const ranged = await verify([...args(), "--key", key, "--from", from]);
    expect(ranged.code, ranged.output).toBe(0);
    expect(ranged.report).toMatchObject({ checked: 400, differing: 0 });
  }, 240_000);

  it("names a changed value, a changed limit, another model and another kernel", async () => {
    await tamper(100, "mean", "mean + 1e-12", "mean IS NOT NULL");
    const value = await verify([...args(), "--key", key]);
    expect(value.code).toBe(1);
    expect(value.report.differences.map((d) => d.field)).toEqual(["mean"]);

    await tamper(500, "ucl", "ucl * 1.001", "ucl IS NOT NULL");
    const limit = await verify([...args(), "--key", key]);
    expect(limit.report.differences.map((d) => d.field)).toEqual(["mean", "ucl"]);

    await tamper(700, "model_hash", `'${HASH_B}'`, "model_hash != ''");
    const model = await verify([...args(), "--key", key]);
    // Each model's rows are recomputed by its own run, so the differences come in that order, not the rows'.
    expect(model.report.differences.map((d) => d.field).sort()).toEqual(["iforest_score", "mean", "ucl"]);
    expect(model.report.models.sort()).toEqual([HASH_A, HASH_B].sort());

    await tamper(800, "kernel_hash", `'${"e".repeat(64)}'`, "1");
    const kernel = await verify([...args(), "--key", key]);
    expect(kernel.report.kernel).toMatchObject({ same: false, build: kernelHash() });
    // The kernel is reported for all rows; the row rewritten to say so differs in its version (the tamper's own mark).
    expect(kernel.report.differences.map((d) => d.field).sort()).toEqual(["iforest_score", "mean", "ucl", "version"]);
  }, 240_000);
});
