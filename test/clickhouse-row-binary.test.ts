/**
 * RowBinary on a real clickhouse-server (18.16 from Debian here): every column type's edge values
 * read back as written (doubles bit for bit, Decimal digit for digit); the column encoders' rows
 * of a real engine run (rolling + SPC + isolation forest) inserted through
 * ClickHouseSink.insertEncoded equal what Outputs.record writes for the same records, statistics
 * as the row objects round them; a RowBinary batch spilled while ClickHouse is down lands when it
 * returns, beside JSONEachRow batches, every row once; a table that does not take the rows
 * refuses them by name or row by row, never silently.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { allocateBatch, appendRecord, type OutputChunk, SeededRandom, StreamEngine } from "../engine/core/mod.js";
import { RecordLabels } from "../engine/jobs/record-labels.js";
import type { RecordAnalysis } from "../operators/analysis.js";
import { iforestAnalysis } from "../operators/iforest/iforest.js";
import { trainIsolationForest } from "../operators/iforest/training/train.js";
import { rollingAnalysis } from "../operators/rolling/rolling.js";
import { DEFAULT_SPC_PARAMS, SPC_COL } from "../operators/spc/layout.js";
import { TEXTBOOK_RULES } from "../operators/spc/rules.js";
import { ALL_RULES, spcAnalysis } from "../operators/spc/spc.js";
import {
  columnDefinition,
  type ColumnSpec,
  type ColumnValue,
  decimalText,
  type EncodedRows,
  encodeRowBinaryString,
  RowBinaryWriter,
  writeColumnValue,
} from "../connectors/clickhouse/row-binary.js";
import { createSchema, decodeRowBinary, TABLE_SCHEMAS } from "../connectors/clickhouse/schema.js";
import {
  encodeScoreColumns,
  encodeSensorDataColumns,
  keyNames,
  labelNames,
  type KeyNames,
  type LabelNames,
} from "../connectors/clickhouse/reading-columns.js";
import { ClickHouseSink, type ClickHouseDeadLetter } from "../connectors/clickhouse/sink.js";
import { ClickHouseError, EncodeError } from "../connectors/errors.js";
import { startClickHouseServer, type ClickHouseServer } from "../connectors/local/clickhouse-server.js";
import { serverAvailable } from "../connectors/local/nats-server.js";
import { type Expected, outputsRows, rowDifferences } from "./kit/score-columns.js";
import { sensorRows } from "./kit/clickhouse-rows.js";
import { printFigures } from "./kit/figures.js";
import { postBody, selectBytes } from "./kit/clickhouse-http.js";

/** Every type the writer knows, Nullable ones included. */
const EDGE_COLUMNS: ColumnSpec[] = [
  { name: "i", type: "UInt32", nullable: false },
  { name: "f", type: "Float64", nullable: false },
  { name: "n", type: "Float64", nullable: true },
  { name: "s", type: "String", nullable: false },
  { name: "dt", type: "DateTime", nullable: false },
  { name: "ndt", type: "DateTime", nullable: true },
  { name: "d", type: "Date", nullable: false },
  { name: "u8", type: "UInt8", nullable: false },
  { name: "u16", type: "UInt16", nullable: false },
  { name: "u64", type: "UInt64", nullable: false },
  { name: "i8", type: "Int8", nullable: false },
  { name: "i16", type: "Int16", nullable: false },
  { name: "i32", type: "Int32", nullable: false },
  { name: "i64", type: "Int64", nullable: false },
  { name: "d9", type: "Decimal(9, 2)", nullable: false },
  { name: "d18", type: "Decimal(18, 4)", nullable: false },
  { name: "d38", type: "Decimal(38, 10)", nullable: false },
  { name: "nd", type: "Decimal(9, 2)", nullable: true },
  { name: "a", type: "Array(String)", nullable: false },
];

const DOUBLES = [
  -0,
  0,
  5e-324,
  -5e-324,
  2.2250738585072014e-308,
  2.225073858507201e-308,
  1.7976931348623157e308,
  -1.7976931348623157e308,
  0.1 + 0.2,
  1 / 3,
  2 ** 53 + 2,
  -1e-300,
  123456789.12345679,
];
const STRINGS = [
  "",
  "a",
  "naïve café",
  "日本語テキスト",
  "\u{1F600}\u{1F680}",
  "tab\tnew\nline\0nul",
  "x".repeat(127),
  "y".repeat(128),
  "é".repeat(5000),
];
/** 210,000 bytes of UTF-8: a length of three LEB128 bytes. */
const LONG_STRING = "€".repeat(70_000);

/** The edge values of row i, by column. */
function edgeRow(i: number, r: SeededRandom): Record<string, ColumnValue> {
  const pick = <T>(list: readonly T[]) => list[i % list.length];
  const random = () => {
    const v = new DataView(new ArrayBuffer(8));
    v.setUint32(0, Math.floor(r.next() * 2 ** 32));
    v.setUint32(4, Math.floor(r.next() * 2 ** 32));
    const x = v.getFloat64(0);
    return Number.isFinite(x) ? x : 1;
  };
  return {
    i,
    f: i < DOUBLES.length ? DOUBLES[i] : random(),
    n: i % 3 === 0 ? null : pick(DOUBLES),
    s: i === 7 ? LONG_STRING : pick(STRINGS),
    dt: pick([0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 1_700_000_000]),
    ndt: i % 4 === 0 ? null : pick([0, 2 ** 32 - 1, 1_700_000_000]),
    d: pick([0, 1, 19_000, 65_535]),
    u8: pick([0, 255]),
    u16: pick([0, 65_535]),
    u64: pick([0, Number.MAX_SAFE_INTEGER, 2 ** 32]),
    i8: pick([-128, 127, 0]),
    i16: pick([-32_768, 32_767]),
    i32: pick([-2_147_483_648, 2_147_483_647]),
    i64: pick([Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, -1]),
    d9: pick(["-9999999.99", "9999999.99", "0.01", "-0.01", 12.5]),
    d18: pick(["-99999999999999.9999", "12345678901234.5678", "0.0001"]),
    d38: pick(["-1000000000000000000000000000.0000000007", "9999999999999999999999999999.9999999999", "-0.0000000001", 10n ** 37n]),
    nd: i % 2 === 0 ? null : "-42.42",
    a: pick([[], ["a"], ["é", "", "\u{1F600}"]]),
  };
}

const jsonLines = (text: string) =>
  text.length === 0
    ? []
    : text
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Record<string, unknown>);

describe.skipIf(!serverAvailable("clickhouse-server"))("RowBinary - real clickhouse-server", () => {
  let server: ClickHouseServer;
  const dirs: string[] = [];
  const spillDir = () => {
    const d = mkdtempSync(join(tmpdir(), "lw-spill-rb-"));
    dirs.push(d);
    return d;
  };

  beforeAll(async () => {
    server = await startClickHouseServer();
  });
  afterAll(async () => {
    await server?.dispose();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("every type's edge values read back as written: doubles bit for bit, Decimal digit for digit, DateTime to its last second", async () => {
    await server.query("CREATE DATABASE IF NOT EXISTS edge");
    await server.query(`CREATE TABLE edge.v (${EDGE_COLUMNS.map(columnDefinition).join(", ")}) ENGINE = MergeTree ORDER BY i`);
    const r = new SeededRandom(5);
    const rows = Array.from({ length: 2000 }, (_, i) => edgeRow(i, r));
    const w = new RowBinaryWriter();
    for (const row of rows) {
      for (const c of EDGE_COLUMNS) writeColumnValue(w, c, row[c.name]);
      w.endRow();
    }
    await postBody(server, "INSERT INTO edge.v FORMAT RowBinary", w.finish().bytes);

    // Doubles as the server stores them, in RowBinary: the same 8 bytes.
    const stored = await selectBytes(server, "SELECT f FROM edge.v ORDER BY i FORMAT RowBinary");
    const sent = Buffer.alloc(rows.length * 8);
    rows.forEach((row, i) => sent.writeDoubleLE(row.f as number, i * 8));
    expect(stored.equals(sent)).toBe(true);

    const back = jsonLines(
      await server.query(
        "SELECT i, f, n, s, toUInt32(dt) AS dt, toUInt32(ndt) AS ndt, toUInt16(d) AS d, u8, u16, u64, i8, i16, i32, i64, a FROM edge.v ORDER BY i FORMAT JSONEachRow",
        { output_format_json_quote_64bit_integers: 0 },
      ),
    );
    expect(back.length).toBe(rows.length);
    const differences: string[] = [];
    back.forEach((b, i) => {
      for (const [k, v] of Object.entries(b)) {
        // Object.is: −0 is not 0 (18.16's JSON output writes the shortest text that reads back as the double).
        const same = Array.isArray(v) ? JSON.stringify(v) === JSON.stringify(rows[i][k]) : Object.is(v, rows[i][k]);
        if (!same && differences.length < 10) differences.push(`row ${i} ${k}: wrote ${String(rows[i][k])}, read ${String(v)}`);
      }
    });
    expect(differences).toEqual([]);
    // Decimals as the server prints the column (18.16's toString of a Decimal128 garbles some values).
    const decimals = (await server.query("SELECT d9, d18, d38, nd FROM edge.v ORDER BY i FORMAT TSV")).trim().split("\n");
    // A bigint is the scaled integer, a number or text the decimal value.
    const text = (v: ColumnValue, scale: number) =>
      v === null ? "\\N" : typeof v === "string" ? v : typeof v === "bigint" ? decimalText(v, scale) : (v as number).toFixed(scale);
    decimals.forEach((line, i) => {
      expect(line, `row ${i}`).toBe([text(rows[i].d9, 2), text(rows[i].d18, 4), text(rows[i].d38, 10), text(rows[i].nd, 2)].join("\t"));
    });
  });

  it("the column encoders' rows of a real engine run equal what Outputs.record writes (statistics as it rounds them), and ClickHouse holds them exactly", async () => {
    const run = await engineRun(12_000);
    const sink = new ClickHouseSink({ url: server.url, database: "columns", spillDir: spillDir(), flushIntervalMs: 50 });
    const started = performance.now();
    const writes = run.batches.flatMap((b) => [sink.insertEncoded("ml_sensor_data", b.data), sink.insertEncoded("ml_scores", b.scores)]);
    await Promise.all(writes);
    const seconds = (performance.now() - started) / 1000;
    const m = sink.metrics();
    await sink.close();
    printFigures(
      `insertEncoded: ${2 * run.records} rows (${run.records} ml_scores + ml_sensor_data) in ${seconds.toFixed(2)} s, ${m.batches} inserts`,
    );
    expect(m).toMatchObject({ rowsWritten: 2 * run.records, rowsInserted: 2 * run.records, rowsDeadLettered: 0, rowsSpilled: 0 });

    for (const table of ["ml_scores", "ml_sensor_data"] as const) {
      const columns = TABLE_SCHEMAS[table].columns.map((c) => c.name);
      const select = columns.map((c) => (c === "timestamp" ? "toUInt32(timestamp) AS timestamp" : c)).join(", ");
      const back = jsonLines(
        await server.query(`SELECT ${select} FROM columns.${table} FINAL ORDER BY seq FORMAT JSONEachRow`, {
          output_format_json_quote_64bit_integers: 0,
        }),
      );
      expect(back.length, table).toBe(run.records);
      const expected = run.expected.map((e) => (table === "ml_scores" ? e.scores : e.data));
      // The rows as sent, by seq (chunks come group by group, not in seq order).
      const sent = new Map(
        run.batches.flatMap((b) => decodeRowBinary(table, (table === "ml_scores" ? b.scores : b.data).bytes)).map((x) => [x.seq, x]),
      );
      const differences: string[] = [];
      back.forEach((row, i) => {
        const e = expected[i];
        if (!("row" in e)) throw new Error(`record ${i} refused by the row objects: ${e.refused}`);
        for (const d of rowDifferences(e.row, row, columns)) if (differences.length < 10) differences.push(`${table} seq ${row.seq}: ${d}`);
        // What ClickHouse holds is what was sent, to the bit (no text on the way).
        const was = sent.get(row.seq as number) ?? {};
        for (const c of columns)
          if (!Object.is(row[c], was[c]) && differences.length < 10)
            differences.push(`${table} seq ${row.seq}: ${c} sent ${String(was[c])}, stored ${String(row[c])}`);
      });
      expect(differences).toEqual([]);
    }
    // The run exercised what the rows depend on.
    const count = async (sql: string) => Number((await server.query(sql)).trim());
    expect(await count("SELECT count() FROM columns.ml_scores WHERE mean IS NULL")).toBeGreaterThan(0);
    expect(await count("SELECT count() FROM columns.ml_scores WHERE cl IS NOT NULL AND iforest_score IS NOT NULL")).toBeGreaterThan(0);
    expect(await count("SELECT count() FROM columns.ml_scores WHERE we_mask > 0 OR nelson_mask > 0")).toBeGreaterThan(0);
    // Moving-range rules: JUMP and STUCK kept; NOISY, and every one on the key of the budget, fired
    // in the kernel and are 0 in the table.
    expect(await count("SELECT count() FROM columns.ml_scores WHERE bitAnd(mr_mask, 1) != 0")).toBeGreaterThan(0);
    expect(await count("SELECT count() FROM columns.ml_scores WHERE bitAnd(mr_mask, 4) != 0")).toBeGreaterThan(0);
    expect(run.kernelMr.noisy).toBeGreaterThan(0);
    expect(run.kernelMr.budgetKey).toBeGreaterThan(0);
    expect(await count("SELECT count() FROM columns.ml_scores WHERE bitAnd(mr_mask, 2) != 0")).toBe(0);
    expect(
      await count("SELECT count() FROM columns.ml_scores WHERE machine_id = 'M-1' AND sensor_type = 'temperature' AND mr_mask != 0"),
    ).toBe(0);
    expect(await count("SELECT count() FROM columns.ml_sensor_data WHERE work_order_id != ''")).toBeGreaterThan(0);
  }, 180_000);

  it("spill - RowBinary batches written while ClickHouse is down land when it returns, beside JSONEachRow ones, every row once", async () => {
    await createSchema((sql) => server.query(sql), "outage");
    const dir = spillDir();
    const sink = new ClickHouseSink({
      url: server.url,
      database: "outage",
      spillDir: dir,
      flushIntervalMs: 20,
      backoffBaseMs: 20,
      backoffMaxMs: 200,
    });
    await server.stop();
    let records = 0;
    const keys = [keyNames(["M-1", "temperature"]), keyNames(["M-2", "pressure"])];
    for (let k = 0; k < 6; k++) {
      const batch = readings(k * 1000, 1000);
      records += batch.length;
      if (k === 3) await sink.write("ml_sensor_data", sensorRows(10_000_000, 500));
      await sink.insertEncoded("ml_sensor_data", encodeSensorDataColumns(batch, { keys }).rows);
    }
    const away = sink.metrics();
    const files = readdirSync(dir).sort();
    await server.start();
    await sink.drained(60_000);
    const after = sink.metrics();
    await sink.close();
    expect(away).toMatchObject({ available: false, rowsSpilled: records + 500, rowsInserted: 0 });
    expect(files.filter((f) => f.endsWith(".rowbinary")).length).toBeGreaterThan(0);
    expect(files.filter((f) => f.endsWith(".ndjson")).length).toBe(1);
    expect(after).toMatchObject({ rowsDrained: records + 500, rowsInserted: records + 500, spillFiles: 0, rowsDeadLettered: 0 });
    expect(readdirSync(dir)).toEqual([]);
    const [rows, final, seqs] = (
      await server.query(
        "SELECT count(), (SELECT count() FROM outage.ml_sensor_data FINAL), uniqExact(seq) FROM outage.ml_sensor_data FORMAT TSV",
      )
    )
      .trim()
      .split("\t")
      .map(Number);
    expect({ rows, final, seqs }).toEqual({ rows: records + 500, final: records + 500, seqs: records + 500 });
  }, 180_000);

  it("a table missing a column refuses RowBinary by name; a row of the wrong width is dead-lettered alone, read back as JSON; encoder refusals are dead letters", async () => {
    await server.query("CREATE DATABASE IF NOT EXISTS narrow");
    await server.query(TABLE_SCHEMAS.ml_sensor_data.create("narrow").replace("  operating_mode String,\n", ""));
    const keys = [keyNames(["M-1", "temperature"]), keyNames(["M-2", "pressure"])];
    const missing = new ClickHouseSink({ url: server.url, database: "narrow", spillDir: spillDir(), flushIntervalMs: 20 });
    const error = await missing.insertEncoded("ml_sensor_data", encodeSensorDataColumns(readings(0, 100), { keys }).rows).then(
      () => null,
      (e: unknown) => e,
    );
    await missing.close();
    expect(error).toBeInstanceOf(ClickHouseError);
    expect((error as ClickHouseError).code).toBe(16); // NO_SUCH_COLUMN_IN_TABLE
    expect((error as ClickHouseError).serverMessage).toMatch(/operating_mode/);

    // work_order_id as UInt32 takes 4 bytes of the 5 of "WO-1": each row is left a byte over, and
    // 18.16 ends the body with ATTEMPT_TO_READ_AFTER_EOF (32), which for RowBinary is a row error.
    await server.query("CREATE DATABASE IF NOT EXISTS wide");
    await server.query(TABLE_SCHEMAS.ml_sensor_data.create("wide").replace("work_order_id String", "work_order_id UInt32"));
    const letters: ClickHouseDeadLetter[] = [];
    const sink = new ClickHouseSink({
      url: server.url,
      database: "wide",
      spillDir: spillDir(),
      flushIntervalMs: 20,
      onDeadLetter: (l) => letters.push(l),
    });
    const batch = readings(0, 8);
    const labels: LabelNames[] = [labelNames(["C", "run", "WO-1"])];
    batch.labels = new Uint8Array(4 * 8);
    for (let i = 0; i < 8; i++) batch.labels[4 * i] = 1;
    batch.values[5] = Number.NaN;
    const encoded = encodeSensorDataColumns(batch, { keys, labels: [undefined, ...labels] });
    await sink.insertEncoded("ml_sensor_data", encoded.rows, encoded.rejected);
    const m = sink.metrics();
    await sink.close();
    expect(m).toMatchObject({ rowsWritten: 8, rowsInserted: 0, rowsDeadLettered: 8 });
    const refusedByServer = letters.filter((l) => l.error instanceof ClickHouseError);
    expect(refusedByServer.map((l) => JSON.parse(l.line).seq).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 6, 7]);
    expect(refusedByServer.every((l) => (l.error as ClickHouseError).kind === "row" && JSON.parse(l.line).work_order_id === "WO-1")).toBe(
      true,
    );
    expect(refusedByServer.some((l) => (l.error as ClickHouseError).code === 32)).toBe(true);
    const refusedHere = letters.filter((l) => l.error instanceof EncodeError);
    expect(refusedHere.map((l) => [(l.error as EncodeError).reason, JSON.parse(l.line).seq])).toEqual([["not_finite", 5]]);
  });
});

/** `n` readings of two keys from position `from`, as columns. */
function readings(from: number, n: number) {
  const batch = allocateBatch(n);
  for (let i = 0; i < n; i++) appendRecord(batch, i % 2, 1_700_000_000_000 + (from + i) * 10, Math.sin(from + i), from + i);
  return { ...batch, labels: undefined as Uint8Array | undefined };
}

interface EngineRun {
  records: number;
  batches: Array<{ scores: EncodedRows; data: EncodedRows }>;
  /** Per record, in seq order: the rows Outputs.record writes. */
  expected: Array<{ scores: Expected; data: Expected }>;
  /** Kernel rows (before the key's rules) with NOISY, and with any moving-range rule on M-1/temperature. */
  kernelMr: { noisy: number; budgetKey: number };
}

/**
 * `records` readings of six keys (one keyed by operating mode) with labels, through rolling (W = 16)
 * + SPC (baseline 50; the textbook rules with JUMP and STUCK, one key on a false-alarm budget,
 * which has no moving-range rule) + an isolation forest on (value, mean), on the engine. Each output chunk is encoded as a worker would (its columns, before any observe), and
 * the same records go the way Outputs.record takes them.
 */
async function engineRun(records: number): Promise<EngineRun> {
  const r = new SeededRandom(21);
  const train = new Float64Array(1000 * 2);
  for (let i = 0; i < train.length; i++) train[i] = 20 + r.normal();
  const model = trainIsolationForest(
    { values: train, rows: 1000, columns: 2, names: ["value", "mean"] },
    { trees: 20, sampleSize: 128, seed: 4 },
  );
  const spc = spcAnalysis({
    params: { ...DEFAULT_SPC_PARAMS, baselineN: 50 },
    ewmaField: "spc_ewma",
    rules: { ...TEXTBOOK_RULES, mr: 0b101 },
    budgetByKey: new Map([["M-1/temperature", 0.003]]),
  });
  const forest = iforestAnalysis({ model, features: ["value", "mean"], rollingIndex: 0 });
  const analyses: RecordAnalysis[] = [
    rollingAnalysis({ window: { kind: "count", records: 16 }, alpha: 0.2, timeScale: 1000 }),
    spc,
    forest,
  ];
  const layout = {
    rolling: { index: 0, minCount: 16 },
    spc: { index: 1, ewmaField: "spc_ewma" as const },
    iforest: { index: 2, features: 2 },
  };
  const partsOf = [
    ["M-1", "temperature"],
    ["M-1", "pressure"],
    ["M-2", "temperature"],
    ["M-2", "pressure"],
    ["M-3", "vibration", "run"],
    ["M-3", "vibration", "setup"],
  ];
  const labels = new RecordLabels();
  const labelIds = [
    0,
    labels.idOf({ sensor_unit: "°C", work_order_id: "WO-1" }),
    labels.idOf({ sensor_unit: "bar", operating_mode: "idle", work_order_id: "WO-2" }),
  ];
  const labelTable: Array<LabelNames | undefined> = labelIds.map((id) => (id === 0 ? undefined : labelNames(labels.get(id)!)));
  const keys: KeyNames[] = [];
  const partsById: string[][] = [];
  const run: EngineRun = { records, batches: [], expected: [], kernelMr: { noisy: 0, budgetKey: 0 } };
  const scoreWriter = new RowBinaryWriter();
  const dataWriter = new RowBinaryWriter();
  const engine = new StreamEngine(
    {
      kernels: analyses.map((a) => a.kernel),
      workers: 0,
      groups: 4,
      keysMax: 64,
      batchRecordsMax: 512,
      lateness: null,
      reorderRecordsPerKeyMax: 1,
      payloadBytes: 4,
    },
    {
      onOutput(chunk: OutputChunk) {
        const spcRules = partsById.map((p) => {
          const rules = spc.rulesOf(p.join("/"));
          return rules === ALL_RULES ? undefined : rules;
        });
        const columns = { ...chunk, labels: chunk.payload };
        const scores = encodeScoreColumns(columns, {
          keys,
          layout,
          spcRules,
          modelHash: encodeRowBinaryString(forest.activeHash),
          writer: scoreWriter,
        });
        const data = encodeSensorDataColumns(columns, { keys, labels: labelTable, writer: dataWriter });
        if (scores.rejected.length + data.rejected.length > 0)
          throw new Error(
            `refused: ${scores.rejected
              .concat(data.rejected)
              .map((x) => x.line)
              .join(", ")}`,
          );
        run.batches.push({ scores: scores.rows, data: data.rows });
        for (let i = 0; i < chunk.length; i++) {
          const mr = chunk.outs[1][i * chunk.outFields[1] + SPC_COL.mr_mask];
          if ((mr & 0b010) !== 0) run.kernelMr.noisy++;
          if (mr > 0 && partsById[chunk.keyIds[i]].join("/") === "M-1/temperature") run.kernelMr.budgetKey++;
          const rows = analyses.map((_a, k) => chunk.outs[k].slice(i * chunk.outFields[k], (i + 1) * chunk.outFields[k]));
          const parts = partsById[chunk.keyIds[i]];
          const labelId = new DataView(chunk.payload.buffer, chunk.payload.byteOffset).getUint32(4 * i, true);
          const input = {
            key: parts.join("/"),
            parts,
            keyId: chunk.keyIds[i],
            time: chunk.times[i],
            value: chunk.values[i],
            seq: chunk.positions[i],
          };
          run.expected[chunk.positions[i]] = outputsRows(analyses, rows, {
            ...input,
            label: labelId === 0 ? undefined : labels.get(labelId),
          });
        }
      },
    },
  );
  const ids = partsOf.map((p) => engine.internKey(p.join("/")));
  partsOf.forEach((p, k) => {
    keys[ids[k]] = keyNames(p);
    partsById[ids[k]] = p;
  });
  const batch = allocateBatch(1000, 4);
  const level = partsOf.map(() => 20);
  const last = partsOf.map(() => 20);
  for (let i = 0; i < records; i++) {
    const k = i % partsOf.length;
    // A random walk with a shift now and then, so SPC rules fire and the forest scores outliers;
    // every 500 readings of a key, 10 stuck (the last reading again) and 10 noisy ones (σ × 8).
    level[k] += r.normal() * 0.05 + (i % 997 === 0 ? 3 : 0);
    const phase = Math.floor(i / partsOf.length) % 500;
    const value = phase >= 300 && phase < 310 ? last[k] : level[k] + (phase >= 400 && phase < 410 ? 8 : 1) * r.normal();
    last[k] = value;
    appendRecord(batch, ids[k], 1_700_000_000_000 + i * 10 + (i % 4) * 0.25, value, i);
    new DataView(batch.payload!.buffer).setUint32(4 * (batch.length - 1), labelIds[i % labelIds.length], true);
    if (batch.length === 1000) {
      await engine.push(batch);
      batch.length = 0;
    }
  }
  if (batch.length > 0) await engine.push(batch);
  await engine.close();
  return run;
}
