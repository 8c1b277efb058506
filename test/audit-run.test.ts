/**
 * `linewatch run --nats --stream --clickhouse --audit` as a user runs it (the built CLI, dist/:
 * run `npx tsc -p tsconfig.json` first), on a throw-away nats-server and clickhouse-server, then
 * `linewatch audit verify --clickhouse` over what it stored: the settings document is in
 * ml_audit_configs once, every ml_scores row names it and the kernel, and every row of a key
 * verifies bit for bit (the run's statistics rounded to 15 digits, as its settings say). No time
 * is asserted.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kernelHash } from "../engine/core/mod.js";
import type { VerifyReport } from "../engine/jobs/mod.js";
import { DirectoryStore, ModelRegistry } from "../connectors/registry/mod.js";
import { startClickHouseServer, type ClickHouseServer } from "../connectors/local/clickhouse-server.js";
import { serverAvailable, startNatsServer, type NatsServer } from "../connectors/local/nats-server.js";
import type { SensorReadingInput } from "../connectors/wire/codecs.js";
import { runCli, startCli } from "./kit/cli.js";
import { auditTestModels } from "./kit/audit-models.js";
import { consumedAll, createSensorStream, publishRecords } from "./kit/jetstream-records.js";
import { waitUntil } from "./kit/wait.js";

const RECORDS = 6000;
/** Ingest workers (the default of run --nats, Native blocks), and the main-thread job (its audited rows as RowBinary). */
const SITES: ReadonlyArray<readonly [string, readonly string[]]> = [
  ["au", []],
  ["au0", ["--ingest-workers", "0"]],
];
const servers = serverAvailable("nats-server") && serverAvailable("clickhouse-server");

describe.skipIf(!servers)("run --audit into ClickHouse, then audit verify", () => {
  let nats: NatsServer;
  let ch: ClickHouseServer;
  let nc: NatsConnection;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "lw-audit-run-"));
    [nats, ch] = await Promise.all([startNatsServer(), startClickHouseServer()]);
    nc = await connect({ servers: nats.url });
    writeFileSync(join(dir, "model.json"), auditTestModels().a);
    await new ModelRegistry(new DirectoryStore(join(dir, "registry"))).push({
      bytes: readFileSync(join(dir, "model.json")),
      kind: "iforest",
      fileName: "model.json",
    });
    const file = join(dir, "plant.ndjson");
    await runCli(["simulate", "--seed", "4", "--machines", "2", "--rate", "10", "--records", String(RECORDS), "--out", file], dir);
    const records = readFileSync(file, "utf8")
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as SensorReadingInput);
    for (const [site, flags] of SITES) await runAudited(site, flags, records);
  }, 360_000);

  /** `run --audit` from stream LW_<site> into database <site> until every record is acknowledged and the spill is empty. */
  async function runAudited(site: string, flags: readonly string[], records: readonly SensorReadingInput[]): Promise<void> {
    await createSensorStream(nc, `LW_${site}`, site);
    const spill = join(dir, `spill-${site}`);
    const run = startCli(
      [
        "run",
        ...["--nats", nats.url, "--stream", `LW_${site}`, "--site", site, "--clickhouse", ch.url, "--clickhouse-db", site],
        ...["--spill-dir", spill, "--summary-interval", "0", "--alerts", join(dir, `alerts-${site}.ndjson`)],
        ...["--analysis", "rolling,spc,iforest", "--window", "16", "--baseline", "100", "--model", "model.json"],
        ...["--features", "value,mean,std,z", "--no-watch-model", "--audit", ...flags],
      ],
      dir,
    );
    await publishRecords(records, { url: nats.url, site, ratePerSecond: Number.POSITIVE_INFINITY });
    const spillEmpty = () => !existsSync(spill) || readdirSync(spill, { withFileTypes: true }).filter((e) => e.isFile()).length === 0;
    const done = await waitUntil(async () => spillEmpty() && (await consumedAll(nc, `LW_${site}`, `lw-${site}-all`)), 120_000);
    const code = await run.stop();
    expect(done, run.output()).toBe(true);
    expect(code, run.output()).toBe(0);
  }

  afterAll(async () => {
    await nc?.close();
    await Promise.all([nats?.dispose(), ch?.dispose()]);
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it.each(SITES)("%s: stores the settings once and stamps every score row", async (site) => {
    const configs = (await ch.query(`SELECT config_hash, kernel_hash FROM ${site}.ml_audit_configs FINAL FORMAT TabSeparated`))
      .trim()
      .split("\n");
    expect(configs).toHaveLength(1);
    const [configHash, kernel] = configs[0].split("\t");
    expect(kernel).toBe(kernelHash());
    const stamped = await ch.query(
      `SELECT count(), countIf(config_hash = '${configHash}' AND kernel_hash = '${kernel}') FROM ${site}.ml_scores FINAL FORMAT TabSeparated`,
    );
    expect(stamped.trim()).toBe(`${RECORDS}\t${RECORDS}`);
  });

  it.each(SITES)(
    "%s: verifies every row of a machine bit for bit",
    async (site) => {
      const p = startCli(
        ["audit", "verify", "--clickhouse", ch.url, "--database", site, "--key", "M-001", "--dir", "registry", "--json"],
        dir,
      );
      const code = await p.exited;
      const output = p.output();
      const report = JSON.parse(output.slice(output.indexOf("{"))) as VerifyReport;
      expect(code, output).toBe(0);
      expect(report.checked).toBe(RECORDS / 2);
      expect(report.differing, JSON.stringify(report.differences.slice(0, 3))).toBe(0);
      expect(report.kernel.same).toBe(true);
      expect(report.models).toHaveLength(1);
    },
    120_000,
  );
});
