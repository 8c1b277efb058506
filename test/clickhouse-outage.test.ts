/**
 * ClickHouse stopped for 30 s in the middle of a steady load: every write still resolves (its
 * rows are on disk), the spill drains oldest first once the server is back, and the table ends
 * with exactly the rows written — none lost, none doubled after FINAL. Its own server, because
 * it stops it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TABLE_SCHEMAS, type SensorDataRow } from "../connectors/clickhouse/schema.js";
import { ClickHouseSink } from "../connectors/clickhouse/sink.js";
import { diffSensorRows, readSensorRows, sensorRows } from "./kit/clickhouse-rows.js";
import { startClickHouseServer, type ClickHouseServer } from "../connectors/local/clickhouse-server.js";
import { serverAvailable } from "../connectors/local/nats-server.js";
import { printFigures } from "./kit/figures.js";

const OUTAGE_MS = 30_000;
const ROWS_PER_WRITE = 250;
const WRITE_EVERY_MS = 50; // 5,000 rows/s

describe.skipIf(!serverAvailable("clickhouse-server"))("ClickHouseSink - ClickHouse stopped for 30 s under load", () => {
  let server: ClickHouseServer;
  let spillDir: string;
  beforeAll(async () => {
    server = await startClickHouseServer();
    spillDir = mkdtempSync(join(tmpdir(), "lw-spill-"));
  });
  afterAll(async () => {
    await server?.dispose();
    rmSync(spillDir, { recursive: true, force: true });
  });

  it("outage - writes resolve from the spill, it drains in order after the restart, the table equals the rows written", async () => {
    // No merges, so every insert stays its own part numbered in insert order (order check below);
    // parts limits raised to match.
    await server.query("CREATE DATABASE IF NOT EXISTS outage");
    await server.query(`${TABLE_SCHEMAS.ml_sensor_data.create("outage")}
SETTINGS max_bytes_to_merge_at_max_space_in_pool = 1, parts_to_delay_insert = 100000, parts_to_throw_insert = 100000`);
    const availability: boolean[] = [];
    const sink = new ClickHouseSink({
      url: server.url,
      spillDir,
      database: "outage",
      batchRowsMax: 2500,
      flushIntervalMs: 200,
      backoffBaseMs: 100,
      backoffMaxMs: 2000,
      requestTimeoutMs: 5000,
      onAvailabilityChange: (up) => availability.push(up),
    });

    const written: SensorDataRow[] = [];
    const writes: Promise<void>[] = [];
    let slowestWriteMs = 0;
    let spilledDuringOutage = 0;
    // Rows handed to the sink while the server was certainly down (the outage's last OUTAGE_MS,
    // after the process had exited): counted from the writes' own times, not from the writer's
    // nominal rate, which a loaded machine does not keep.
    let writtenWhileDown = 0;
    const writeTimes: number[] = [];
    let maxSpillFiles = 0;
    let next = 0;
    let writing = true;
    const writer = (async () => {
      while (writing) {
        const rows = sensorRows(next, ROWS_PER_WRITE);
        next += ROWS_PER_WRITE;
        written.push(...rows);
        const started = Date.now();
        writeTimes.push(started);
        writes.push(
          sink.write("ml_sensor_data", rows).then(() => {
            slowestWriteMs = Math.max(slowestWriteMs, Date.now() - started);
          }),
        );
        maxSpillFiles = Math.max(maxSpillFiles, sink.metrics().spillFiles);
        await new Promise((r) => setTimeout(r, WRITE_EVERY_MS));
      }
    })();

    await new Promise((r) => setTimeout(r, 4000));
    let pendingDuringOutage = 0;
    const outageMs = await server.outage(OUTAGE_MS, () => {
      spilledDuringOutage = sink.metrics().rowsSpilled;
      const downSince = Date.now() - OUTAGE_MS;
      writtenWhileDown = writeTimes.filter((t) => t >= downSince).length * ROWS_PER_WRITE;
      pendingDuringOutage = sink.metrics().rowsPending;
    });
    const restartedAt = Date.now();
    await new Promise((r) => setTimeout(r, 4000));
    writing = false;
    await writer;

    // Every write resolved: its rows were inserted or on disk; none was refused.
    const results = await Promise.allSettled(writes);
    expect(results.filter((r) => r.status === "rejected")).toEqual([]);
    await sink.drained(60_000);
    const drainedAfterMs = Date.now() - restartedAt;
    const m = sink.metrics();
    await sink.close();
    printFigures(
      `outage: ${written.length} rows, ClickHouse away ${(outageMs / 1000).toFixed(1)} s, ${spilledDuringOutage} rows spilled ` +
        `(${maxSpillFiles} files at most), ${pendingDuringOutage} rows in memory during the outage, slowest write ${slowestWriteMs} ms, ` +
        `${m.rowsDrained} rows drained, spill empty ${(drainedAfterMs / 1000).toFixed(1)} s after the restart (writing went on for 4 s of it), ${m.retries} retries`,
    );

    expect(availability).toEqual([false, true]);
    expect(writtenWhileDown).toBeGreaterThan(0);
    expect(spilledDuringOutage).toBeGreaterThan(writtenWhileDown * 0.8);
    expect(m).toMatchObject({
      rowsWritten: written.length,
      rowsRefused: 0,
      rowsFailed: 0,
      rowsDeadLettered: 0,
      spillFiles: 0,
      spillBytes: 0,
      rowsPending: 0,
    });
    expect(m.rowsDrained).toBe(m.rowsSpilled);

    // No loss, no duplicates after FINAL, content as written.
    const rows = await readSensorRows(server, "outage");
    expect(diffSensorRows(written, rows)).toEqual([]);

    // In order: each part (one insert) holds later rows than every part inserted before it. A batch
    // whose insert succeeded on the server while its answer was lost to the shutdown may come
    // again from the spill: such a repeat holds only rows already present.
    const parts = (await server.query("SELECT _part, min(seq), max(seq), count() FROM outage.ml_sensor_data GROUP BY _part FORMAT TSV"))
      .trim()
      .split("\n")
      .map((l) => l.split("\t"))
      .map(([part, lo, hi, n]) => ({ block: Number(part.split("_")[1]), lo: Number(lo), hi: Number(hi), n: Number(n) }))
      .sort((a, b) => a.block - b.block);
    let highest = -1;
    let repeats = 0;
    for (const p of parts) {
      if (p.hi <= highest) {
        repeats++;
        continue;
      }
      expect(p.lo, `part ${p.block} starts before an earlier part ends`).toBeGreaterThan(highest);
      highest = p.hi;
    }
    expect(repeats).toBeLessThanOrEqual(1);
  }, 120_000);
});
