/**
 * Ingest workers with ClickHouse in the path: each worker encodes its rows as Native blocks, the
 * main thread's sink inserts them as they are. Every record lands once in ml_sensor_data and ml_scores, with the
 * single records' labels, and the statistics are the kernels' exact doubles — equal bit for bit
 * to one in-process engine's.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_INGEST_JOB, IngestJob } from "../engine/jobs/ingest/mod.js";
import { isNativeBlock } from "../connectors/clickhouse/native.js";
import { ClickHouseSink } from "../connectors/clickhouse/sink.js";
import { startClickHouseServer, type ClickHouseServer } from "../connectors/local/clickhouse-server.js";
import { serverAvailable, startNatsServer, type NatsServer } from "../connectors/local/nats-server.js";
import { DEFAULT_NATS_PUBLISH, publishSimulation } from "../connectors/sim/nats-publisher.js";
import { PlantSimulator } from "../connectors/sim/plant-simulator.js";
import { expectedRows, SIM, SPECS } from "./kit/ingest-run.js";
import { waitUntil } from "./kit/wait.js";

const servers = serverAvailable("nats-server") && serverAvailable("clickhouse-server");

describe.skipIf(!servers)("ingest job - ClickHouse rows from the workers", () => {
  let nats: NatsServer;
  let clickhouse: ClickHouseServer;
  beforeAll(async () => {
    const conf = join(mkdtempSync(join(tmpdir(), "lw-ingest-ch-")), "partitions.conf");
    writeFileSync(conf, 'mappings = {\n  "lw.c1.sensor.*.*": "lw.c1.p.{{partition(4,1)}}.sensor.{{wildcard(1)}}.{{wildcard(2)}}"\n}\n');
    [nats, clickhouse] = await Promise.all([startNatsServer(["-c", conf]), startClickHouseServer()]);
  });
  afterAll(async () => {
    await Promise.all([nats?.dispose(), clickhouse?.dispose()]);
  });

  it("every record once in both tables, labels kept, statistics bit-equal to one in-process engine", async () => {
    const want = await expectedRows();
    const sink = new ClickHouseSink({
      url: clickhouse.url,
      database: "ingest",
      spillDir: mkdtempSync(join(tmpdir(), "lw-ingest-spill-")),
      flushIntervalMs: 50,
    });
    // What the workers hand over: Native blocks, every one.
    const formats = new Set<string>();
    const insertEncoded = sink.insertEncoded.bind(sink);
    sink.insertEncoded = (table, rows, rejected) => {
      formats.add(isNativeBlock(rows) ? "Native" : "RowBinary");
      return insertEncoded(table, rows, rejected);
    };
    const job = await IngestJob.start({
      ...DEFAULT_INGEST_JOB,
      url: nats.url,
      site: "c1",
      workers: 2,
      partitions: 4,
      analyses: SPECS,
      groups: 4,
      keysMax: 64,
      batchRecordsMax: 512,
      scoreFrames: false,
      live: null,
      sink,
    });
    await publishSimulation(new PlantSimulator(SIM), { ...DEFAULT_NATS_PUBLISH, url: nats.url, site: "c1", msgIds: false });
    const n = SIM.maxRecords as number;
    expect(await waitUntil(() => job.counts().scored >= n, 60_000)).toBe(true);
    const result = await job.stop();
    const metrics = sink.metrics();
    await sink.close();
    expect([...formats]).toEqual(["Native"]);
    // The server's tables are the declaration's: no block went as RowBinary instead.
    expect(metrics.nativeAsRowBinary).toBe(0);
    expect(result).toMatchObject({ scored: n, shed: 0, sinkRefusals: 0, fastRecords: n });

    const count = async (table: string): Promise<number> =>
      Number((await clickhouse.query(`SELECT count() FROM ingest.${table} FINAL`)).trim());
    expect(await count("ml_sensor_data")).toBe(n);
    expect(await count("ml_scores")).toBe(n);
    // The simulator's records carry a unit and an operating mode: every row keeps them.
    expect(
      Number((await clickhouse.query("SELECT countIf(sensor_unit = '' OR operating_mode = '') FROM ingest.ml_sensor_data FINAL")).trim()),
    ).toBe(0);

    // mean and z, exact: ClickHouse prints a Float64 that reads back as the same double.
    const text = await clickhouse.query(
      "SELECT machine_id, sensor_type, mean, z FROM ingest.ml_scores FINAL ORDER BY machine_id, sensor_type, timestamp, seq FORMAT TabSeparated",
    );
    const meanAt = 2 + want.names.indexOf("mean");
    const zAt = 2 + want.names.indexOf("z");
    const window = SPECS[0].name === "rolling" && SPECS[0].options.window.kind === "count" ? SPECS[0].options.window.records : 1;
    const countAt = 2 + want.names.indexOf("count");
    const got = new Map<string, Array<[number | null, number | null]>>();
    for (const line of text.trim().split("\n")) {
      const [machine, sensor, mean, z] = line.split("\t");
      const key = `${machine}.${sensor}`;
      if (!got.has(key)) got.set(key, []);
      got.get(key)?.push([mean === "\\N" ? null : Number(mean), z === "\\N" ? null : Number(z)]);
    }
    const differences: string[] = [];
    for (const [key, rows] of want.rows) {
      const mine = got.get(key) ?? [];
      if (mine.length !== rows.length) differences.push(`${key}: ${mine.length} rows, ${rows.length} expected`);
      rows.forEach((r, i) => {
        const defined = r[countAt] >= window;
        const expected: [number | null, number | null] = [
          defined && Number.isFinite(r[meanAt]) ? r[meanAt] : null,
          defined && Number.isFinite(r[zAt]) ? r[zAt] : null,
        ];
        if (mine[i] !== undefined && (!Object.is(mine[i][0], expected[0]) || !Object.is(mine[i][1], expected[1])))
          differences.push(`${key} row ${i}: ${mine[i].join(",")} ≠ ${expected.join(",")}`);
      });
    }
    expect(differences.slice(0, 5)).toEqual([]);
  }, 120_000);
});
