/**
 * ClickHouseSink on a real clickhouse-server: what is written is what is in the table (no loss,
 * no duplicates after FINAL, also when a batch is written twice); a bad row is found and
 * dead-lettered with the server's message while the others are inserted; permanent errors reject
 * the write; with ClickHouse unreachable the rows go to the spill, bounded, and drain from it
 * in a later sink. The 30-second outage under load is in clickhouse-outage.test.ts.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CapacityError } from "../engine/core/errors.js";
import { createSchema, TABLE_SCHEMAS, type AlertRow, type SensorDataRow } from "../connectors/clickhouse/schema.js";
import { ClickHouseSink, type ClickHouseDeadLetter, type ClickHouseSinkOptions } from "../connectors/clickhouse/sink.js";
import { ClickHouseError, EncodeError, SinkUnavailableError } from "../connectors/errors.js";
import { diffSensorRows, readSensorRows, sensorRows } from "./kit/clickhouse-rows.js";
import { startClickHouseServer, type ClickHouseServer } from "../connectors/local/clickhouse-server.js";
import { freePort, serverAvailable } from "../connectors/local/nats-server.js";
import { printFigures } from "./kit/figures.js";

describe.skipIf(!serverAvailable("clickhouse-server"))("ClickHouseSink - real clickhouse-server", () => {
  let server: ClickHouseServer;
  const dirs: string[] = [];
  const spillDir = () => {
    const d = mkdtempSync(join(tmpdir(), "lw-spill-"));
    dirs.push(d);
    return d;
  };
  const sinkFor = (options: Partial<ClickHouseSinkOptions>) =>
    new ClickHouseSink({ url: server.url, spillDir: spillDir(), flushIntervalMs: 50, backoffBaseMs: 20, backoffMaxMs: 200, ...options });
  const count = async (sql: string) => Number((await server.query(sql)).trim());

  beforeAll(async () => {
    server = await startClickHouseServer();
  });
  afterAll(async () => {
    await server?.dispose();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("sink - rows in the table equal the rows written, in count and content", async () => {
    const sink = sinkFor({ database: "equal", batchRowsMax: 5000 });
    const rows = sensorRows(0, 50_000);
    const started = performance.now();
    const writes: Promise<void>[] = [];
    for (let i = 0; i < rows.length; i += 1000) writes.push(sink.write("ml_sensor_data", rows.slice(i, i + 1000)));
    await Promise.all(writes);
    const seconds = (performance.now() - started) / 1000;
    const m = sink.metrics();
    await sink.close();
    printFigures(
      `ClickHouseSink: ${rows.length} rows in ${seconds.toFixed(2)} s = ${Math.round(rows.length / seconds)} rows/s (batches of 5000, insert p50 ${m.insertLatencyMs.p50.toFixed(1)} ms, p99 ${m.insertLatencyMs.p99.toFixed(1)} ms, first batch creates the tables)`,
    );
    expect(m).toMatchObject({
      rowsWritten: 50_000,
      rowsInserted: 50_000,
      rowsSpilled: 0,
      rowsDeadLettered: 0,
      rowsPending: 0,
      batches: 10,
    });
    expect(m.rowsInsertedByTable.ml_sensor_data).toBe(50_000);
    expect(diffSensorRows(rows, await readSensorRows(server, "equal"))).toEqual([]);
  });

  it("sink - the same rows written twice (a replay, a retried insert) leave one row each after FINAL", async () => {
    const sink = sinkFor({ database: "replay", batchRowsMax: 2000 });
    const rows = sensorRows(1000, 6000);
    await sink.write("ml_sensor_data", rows);
    await sink.write("ml_sensor_data", rows.slice(2000, 5000)); // a partition moved and replayed part of the stream
    await sink.write("ml_sensor_data", rows);
    await sink.close();
    expect(await count("SELECT count() FROM replay.ml_sensor_data")).toBeGreaterThan(6000); // the duplicates are there…
    expect(await count("SELECT count() FROM replay.ml_sensor_data FINAL")).toBe(6000); // …and FINAL reads through them
    expect(
      await count(
        "SELECT count() FROM (SELECT seq, argMax(sensor_value, version) FROM replay.ml_sensor_data GROUP BY machine_id, sensor_type, timestamp_ms, seq)",
      ),
    ).toBe(6000);
    expect(diffSensorRows(rows, await readSensorRows(server, "replay"))).toEqual([]);
  });

  it("sink - an episode written open then closed reads as closed; every table takes its rows", async () => {
    const sink = sinkFor({ database: "states" });
    const alert = (i: number, state: "open" | "closed"): AlertRow => ({
      episode_id: `00000000000000a${i}`,
      key: `M${i}/temperature`,
      machine_id: `M${i}`,
      sensor_type: "temperature",
      family: "level",
      rules: state === "closed" ? ["WE1", "CUSUM"] : ["WE1"],
      first_rule: "WE1",
      severity: "high",
      state,
      opened_at: 1_700_000_000_000 + i,
      last_fired_at: 1_700_000_000_000 + i + (state === "closed" ? 30_000 : 0),
      closed_at: state === "closed" ? 1_700_000_060_000 : null,
      firings: state === "closed" ? 4 : 1,
      limits_version: 1,
      cl: 20,
      sigma: 0.5,
      points: [{ position: 10, time: 1_700_000_000_000 + i, value: 22 }],
    });
    await sink.write(
      "ml_alerts",
      [0, 1, 2].map((i) => alert(i, "open")),
    );
    await sink.flush();
    await sink.write(
      "ml_alerts",
      [0, 1].map((i) => alert(i, "closed")),
    );
    await sink.write(
      "ml_alerts",
      [0].map((i) => alert(i, "open")),
    ); // a replay of an old event must not reopen it
    await sink.write("ml_equipment_health", [
      { machine_id: "M1", computed_at: 1_700_000_000_000, health_score: 72.5, risk_level: "medium" },
    ]);
    await sink.write("ml_quarantine", [
      {
        serial_number: "S1",
        gtin: "09506000134352",
        batch_number: "B7",
        machine_id: "M1",
        production_at: 1_700_000_000_000,
        quarantined_at: 1_700_000_000_100,
        anomaly_types: ["duplicate"],
        reasons: ["duplicate"],
        anomaly_score: 1,
        risk_level: "critical",
      },
    ]);
    await sink.write("ml_quarantine", [
      {
        serial_number: "S1",
        gtin: "09506000134352",
        batch_number: "B7",
        machine_id: "M1",
        production_at: 1_700_000_000_000,
        quarantined_at: 1_700_000_000_100,
        released_at: 1_700_000_900_000,
        release_note: "false alarm",
        anomaly_types: ["duplicate"],
        reasons: ["duplicate"],
        anomaly_score: 1,
        risk_level: "critical",
      },
    ]);
    await sink.close();
    const states = (await server.query("SELECT machine_id, state, firings FROM states.ml_alerts FINAL ORDER BY machine_id FORMAT TSV"))
      .trim()
      .split("\n");
    expect(states).toEqual(["M0\tclosed\t4", "M1\tclosed\t4", "M2\topen\t1"]);
    expect(await count("SELECT count() FROM states.ml_quarantine FINAL WHERE released_at IS NULL")).toBe(0);
    expect(await count("SELECT count() FROM states.ml_equipment_health FINAL")).toBe(1);
  });

  it("sink - one bad row is dead-lettered with the server's message, the rest of its batch is inserted", async () => {
    // A table an administrator made stricter than linewatch's: work orders as numbers.
    await server.query("CREATE DATABASE IF NOT EXISTS strict");
    await server.query(TABLE_SCHEMAS.ml_sensor_data.create("strict").replace("work_order_id String", "work_order_id UInt32"));
    const letters: ClickHouseDeadLetter[] = [];
    const sink = sinkFor({ database: "strict", batchRowsMax: 4000, onDeadLetter: (l) => letters.push(l) });
    const rows = sensorRows(0, 4000).map((r, i) => ({ ...r, work_order_id: String(i) }));
    rows[1234] = { ...rows[1234], work_order_id: "WO-1234" };
    rows[3000] = { ...rows[3000], work_order_id: "WO-3000" };
    await sink.write("ml_sensor_data", rows);
    const m = sink.metrics();
    await sink.close();
    expect(letters.map((l) => JSON.parse(l.line).seq)).toEqual([1234, 3000]);
    for (const l of letters) {
      expect(l.table).toBe("ml_sensor_data");
      expect(l.error).toBeInstanceOf(ClickHouseError);
      expect((l.error as ClickHouseError).kind).toBe("row");
      expect((l.error as ClickHouseError).serverMessage).toMatch(/work_order_id/); // the server's own words
    }
    expect(m).toMatchObject({ rowsInserted: 3998, rowsDeadLettered: 2 });
    expect(m.batchSplits).toBeGreaterThan(0);
    expect(await count("SELECT count() FROM strict.ml_sensor_data FINAL")).toBe(3998);
    expect(await count("SELECT count() FROM strict.ml_sensor_data FINAL WHERE seq IN (1234, 3000)")).toBe(0);
  });

  it("sink - a table that does not match (every row refused) rejects the write after splitRequestsMax, dead-lettering nothing", async () => {
    await server.query("CREATE DATABASE IF NOT EXISTS mismatch");
    await server.query(TABLE_SCHEMAS.ml_sensor_data.create("mismatch").replace("  operating_mode String,\n", ""));
    const letters: ClickHouseDeadLetter[] = [];
    const sink = sinkFor({ database: "mismatch", batchRowsMax: 1000, splitRequestsMax: 20, onDeadLetter: (l) => letters.push(l) });
    const error = await sink.write("ml_sensor_data", sensorRows(0, 1000)).then(
      () => null,
      (e: unknown) => e,
    );
    const m = sink.metrics();
    await sink.close();
    expect(error).toBeInstanceOf(ClickHouseError);
    expect((error as ClickHouseError).kind).toBe("permanent");
    expect((error as ClickHouseError).code).toBe(117); // INCORRECT_DATA: unknown field operating_mode
    expect(letters).toEqual([]);
    expect(m).toMatchObject({ rowsFailed: 1000, rowsDeadLettered: 0, rowsInserted: 0 });
    expect(m.batchSplits).toBeGreaterThan(0);
    expect(m.batchSplits).toBeLessThanOrEqual(20);
  });

  it("sink - a dead-letter callback that throws is counted and the sink goes on", async () => {
    await server.query("CREATE DATABASE IF NOT EXISTS strict2");
    await server.query(TABLE_SCHEMAS.ml_sensor_data.create("strict2").replace("work_order_id String", "work_order_id UInt32"));
    const sink = sinkFor({
      database: "strict2",
      onDeadLetter: () => {
        throw new Error("dead-letter output down");
      },
    });
    const rows = sensorRows(0, 100).map((r, i) => ({ ...r, work_order_id: i === 50 ? "x" : String(i) }));
    await sink.write("ml_sensor_data", rows);
    await sink.write(
      "ml_sensor_data",
      sensorRows(100, 10).map((r) => ({ ...r, work_order_id: "7" })),
    );
    const m = sink.metrics();
    await sink.close();
    expect(m).toMatchObject({ rowsInserted: 109, rowsDeadLettered: 1, deadLetterCallbackErrors: 1 });
    expect(m.lastError).toMatch(/dead-letter output down/);
  });

  it("sink - a table dropped under a running sink is created again", async () => {
    const sink = sinkFor({ database: "dropped" });
    await sink.write("ml_sensor_data", sensorRows(0, 100));
    await sink.flush();
    await server.query("DROP TABLE dropped.ml_sensor_data");
    await sink.write("ml_sensor_data", sensorRows(100, 100));
    await sink.close();
    expect(await count("SELECT count() FROM dropped.ml_sensor_data FINAL")).toBe(100);
  });

  it("sink - rows that break a table's rules are dead-lettered before sending, with the reason", async () => {
    const letters: ClickHouseDeadLetter[] = [];
    const sink = sinkFor({ database: "local", onDeadLetter: (l) => letters.push(l) });
    const rows = sensorRows(0, 10);
    rows[3] = { ...rows[3], sensor_value: Number.NaN };
    await sink.write("ml_sensor_data", rows);
    await sink.close();
    expect(letters).toHaveLength(1);
    expect(letters[0].error).toBeInstanceOf(EncodeError);
    expect((letters[0].error as EncodeError).reason).toBe("not_finite");
    expect(await count("SELECT count() FROM local.ml_sensor_data FINAL")).toBe(9);
  });

  it("sink - a permanent error (no such database, tables not created) rejects the write with ClickHouseError", async () => {
    const sink = sinkFor({ database: "never_created", createTables: false });
    const error = await sink.write("ml_sensor_data", sensorRows(0, 5)).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ClickHouseError);
    expect((error as ClickHouseError).code).toBe(81); // UNKNOWN_DATABASE
    expect(sink.metrics()).toMatchObject({ rowsFailed: 5, rowsSpilled: 0, rowsInserted: 0 });
    await sink.close();
  });

  it("sink - past pendingRowsMax a write is refused with CapacityError", async () => {
    const sink = sinkFor({ database: "bounded", batchRowsMax: 100, pendingRowsMax: 100, flushIntervalMs: 60_000 });
    const first = sink.write("ml_sensor_data", sensorRows(0, 60));
    await expect(sink.write("ml_sensor_data", sensorRows(60, 60))).rejects.toBeInstanceOf(CapacityError);
    await sink.close();
    await first;
    expect(await count("SELECT count() FROM bounded.ml_sensor_data FINAL")).toBe(60);
  });

  it("spill - close with rows in memory and ClickHouse unreachable spills them and returns", async () => {
    const dir = spillDir();
    const away = new ClickHouseSink({
      url: `http://127.0.0.1:${await freePort()}`,
      spillDir: dir,
      database: "closing",
      flushIntervalMs: 60_000,
      backoffBaseMs: 10,
      backoffMaxMs: 50,
    });
    const write = away.write("ml_sensor_data", sensorRows(0, 300));
    await away.close();
    await write;
    expect(away.metrics()).toMatchObject({ rowsSpilled: 300, rowsPending: 0, spillFiles: 1 });
    await expect(away.write("ml_sensor_data", sensorRows(0, 1))).rejects.toMatchObject({ name: "SinkUnavailableError", reason: "closed" });
  });

  it("spill - ClickHouse unreachable: writes resolve once on disk, past spillBytesMax they are refused; a later sink drains the spill in order", async () => {
    const dir = spillDir();
    const deadUrl = `http://127.0.0.1:${await freePort()}`;
    const away = new ClickHouseSink({
      url: deadUrl,
      spillDir: dir,
      database: "spilled",
      batchRowsMax: 500,
      flushIntervalMs: 20,
      backoffBaseMs: 10,
      backoffMaxMs: 50,
      spillBytesMax: 400_000,
    });
    const written: SensorDataRow[] = [];
    let refused = 0;
    for (let i = 0; i < 40; i++) {
      const rows = sensorRows(i * 500, 500);
      try {
        await away.write("ml_sensor_data", rows);
        written.push(...rows);
      } catch (error) {
        expect(error).toBeInstanceOf(SinkUnavailableError);
        expect((error as SinkUnavailableError).reason).toBe("spill_full");
        refused += rows.length;
      }
    }
    const m = away.metrics();
    await away.close();
    expect(m.available).toBe(false);
    expect(written.length).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
    expect(m).toMatchObject({ rowsSpilled: written.length, rowsRefused: refused, rowsInserted: 0 });
    expect(m.spillBytes).toBeLessThanOrEqual(400_000);
    const files = readdirSync(dir).sort();
    expect(files.length).toBe(written.length / 500);
    expect(files.every((f) => /^\d{16}\.ml_sensor_data\.ndjson$/.test(f))).toBe(true);

    // ClickHouse is back (another process, same spill directory): the spill drains, oldest first.
    await createSchema((sql) => server.query(sql), "spilled");
    await server.query("SYSTEM STOP MERGES spilled.ml_sensor_data");
    const back = new ClickHouseSink({ url: server.url, spillDir: dir, database: "spilled", backoffBaseMs: 10, backoffMaxMs: 50 });
    await back.drained(30_000);
    const after = back.metrics();
    await back.close();
    expect(after).toMatchObject({ rowsDrained: written.length, spillFiles: 0, spillBytes: 0 });
    expect(readdirSync(dir)).toEqual([]);
    expect(diffSensorRows(written, await readSensorRows(server, "spilled"))).toEqual([]);
    // Merges are stopped, so each insert is still its own part, numbered in insert order.
    const parts = (await server.query("SELECT _part, min(seq), max(seq) FROM spilled.ml_sensor_data GROUP BY _part FORMAT TSV"))
      .trim()
      .split("\n")
      .map((l) => l.split("\t"))
      .map(([part, lo, hi]) => ({ block: Number(part.split("_")[1]), lo: Number(lo), hi: Number(hi) }))
      .sort((a, b) => a.block - b.block);
    expect(parts.length).toBe(files.length);
    for (let i = 1; i < parts.length; i++) expect(parts[i].lo).toBeGreaterThan(parts[i - 1].hi);
  });
});
