/**
 * ClickHouse rows three ways (`npm run bench -- clickhouse [--smoke] [--records N] [--json]`):
 * the sensor job's path — per record a members object (recordFields), the ScoreRow and
 * SensorDataRow objects (Outputs.record) and their JSONEachRow lines — against RowBinary and
 * Native encoded from a batch's columns (encodeScoreColumns / encodeSensorDataColumns,
 * encodeScoreNative / encodeSensorDataNative), as an ingest worker would; and beside them
 * RowBinary from the row objects (encodeRowBinary), to tell the objects' cost from the text's.
 *
 * The batches are an engine run's output chunks (rolling W = 64 + SPC + an isolation forest on
 * value and mean, 8 machines × 6 sensors, on this thread), copied once, so every path encodes the
 * same rows. Encoding: records/s on this thread, each record an ml_scores and an ml_sensor_data
 * row, best of three passes. Insert, on a throw-away clickhouse-server (test kit) when installed:
 * rows/s of both tables through ClickHouseSink — `write` of row objects (encoding included, on
 * the sink's thread, as the sensor job does) against `insertEncoded` of RowBinary and of Native
 * encoded beforehand (on workers) — from the first call until every row is inserted; and the
 * server process's CPU seconds (utime + stime of /proc/<pid>/stat, all its threads) per million
 * rows, over the insert and until the server is idle again (the merges the insert caused). The
 * encoded paths run in alternating order, each pass into a fresh database; best of the passes.
 * Figures only: nothing fails.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import {
  ClickHouseSink,
  createSchema,
  type EncodedRows,
  encodeRow,
  encodeRowBinary,
  encodeRowBinaryString,
  encodeScoreColumns,
  encodeScoreNative,
  encodeSensorDataColumns,
  encodeSensorDataNative,
  type KeyNames,
  keyNames,
  type NativeBlock,
  NativeWriter,
  RowBinaryWriter,
  type ScoreColumns,
  type ScoreLayout,
  type ScoreRow,
  type SensorDataRow,
} from "../connectors/clickhouse/mod.js";
import { LineBuffer } from "../connectors/files/mod.js";
import { type ClickHouseServer, serverAvailable, startClickHouseServer } from "../connectors/local/mod.js";
import { allocateBatch, appendRecord, SeededRandom, StreamEngine } from "../engine/core/mod.js";
import { type ScoredRecord, scoreRow, sensorDataRow } from "../engine/jobs/mod.js";
import { iforestAnalysis } from "../operators/iforest/mod.js";
import { trainIsolationForest } from "../operators/iforest/training/train.js";
import { observeRecord, type RecordAnalysis, recordFields, type RowContext } from "../operators/mod.js";
import { rollingAnalysis } from "../operators/rolling/mod.js";
import { DEFAULT_SPC_PARAMS, spcAnalysis } from "../operators/spc/mod.js";
import {
  type BenchMachine,
  benchMachine,
  machineLine,
  processCpuSeconds,
  SAMPLE_INTERVAL_MS,
  threadCpuSecondsByName,
  TIME_ORIGIN_MS,
} from "./bench-kit.js";

export const DEFAULT_CLICKHOUSE_BENCH_RECORDS = 200_000;
export const SMOKE_CLICKHOUSE_BENCH_RECORDS = 20_000;

export interface ClickHouseBenchOptions {
  records?: number;
  smoke?: boolean;
  /** Without it, the insert rows are left out (no server started). */
  insert?: boolean;
  progress?: (line: string) => void;
}

export interface ClickHouseBenchReport {
  machine: BenchMachine;
  records: number;
  keys: number;
  /** Records/s (each an ml_scores and an ml_sensor_data row) and bytes per ml_scores row, by path. */
  encode: Array<{ path: string; recordsPerSecond: number; scoreBytesPerRow: number }>;
  /**
   * Rows/s of ml_scores and ml_sensor_data together into ClickHouse by path, and the server's
   * CPU seconds per million rows (during the insert; and until it was idle again); best of the
   * passes. Null without clickhouse-server (or with insert off).
   */
  insert: InsertRow[] | null;
  /**
   * Both tables' rows handed to the sink at a steady rate (as a running job does), by the sink's
   * rows bound per insert: the server's CPU per million records by thread; null without a server.
   */
  paced: PacedRow[] | null;
  /** The server's CPU seconds per second while idle, before the inserts: what the CPU figures include of background work. */
  serverIdleCpuPerSecond: number | null;
  /** Why there are no insert rows, when there are none. */
  insertNote?: string;
}

export interface InsertRow {
  path: string;
  format: "JSONEachRow" | "RowBinary" | "Native";
  /** The tables' engine: linewatch's (ReplacingMergeTree), or Null, which keeps nothing: what the server spends reading the format. */
  engine: "ReplacingMergeTree" | "Null";
  rowsPerSecond: number;
  /** Rows inserted in a pass (both tables). */
  rows: number;
  inserts: number;
  insertP50Ms: number;
  /** Server CPU seconds per million rows from the first call until every row was inserted. */
  serverCpuPerMillionRows: number | null;
  /** The same until the server was idle again (its merges of the new parts included). */
  serverCpuSettledPerMillionRows: number | null;
  passes: number;
}

export interface PacedRow {
  /** The sink's rows bound per insert (its time bound, flushIntervalMs, stays 1 s). */
  batchRowsMax: number;
  recordsPerSecond: number;
  records: number;
  inserts: number;
  /** Server CPU seconds per million records (two rows each) from the first row until idle again, in all and by thread name. */
  serverCpuPerMillionRecords: number | null;
  byThread: Record<string, number>;
  /** Active parts of ml_scores at the end (what merges left). */
  scoreParts: number;
}

/** Records/s and seconds of the paced inserts, and the rows bounds compared (the sink's default before and after issue 13). */
export const PACED_RECORDS_PER_SECOND = 30_000;
const PACED_SECONDS = { full: 12, smoke: 2 };
const PACED_BATCH_ROWS = [10_000, 100_000];

export async function runClickHouseBench(o: ClickHouseBenchOptions = {}): Promise<ClickHouseBenchReport> {
  const machine = benchMachine();
  const smoke = o.smoke === true;
  const records = o.records ?? (smoke ? SMOKE_CLICKHOUSE_BENCH_RECORDS : DEFAULT_CLICKHOUSE_BENCH_RECORDS);
  const progress = o.progress ?? (() => {});
  progress(`engine run: ${records} records through rolling + spc + iforest`);
  const run = await scoredBatches(records);
  const passes = smoke ? 1 : 3;
  progress("encoding: row objects + JSONEachRow, RowBinary from row objects, RowBinary and Native from columns");
  const encode = [
    best(passes, () => encodeObjectsJson(run)),
    best(passes, () => encodeObjectsRowBinary(run)),
    best(passes, () => encodeColumnsRowBinary(run)),
    best(passes, () => encodeColumnsNative(run)),
  ];
  const report: ClickHouseBenchReport = {
    machine,
    records,
    keys: run.keys.length,
    encode,
    insert: null,
    paced: null,
    serverIdleCpuPerSecond: null,
  };
  if (o.insert === false) report.insertNote = "insert left out";
  else if (!serverAvailable("clickhouse-server")) report.insertNote = "clickhouse-server is not installed: no insert figures";
  else {
    progress("insert: starting a throw-away clickhouse-server");
    const server = await startClickHouseServer();
    try {
      report.serverIdleCpuPerSecond = await idleCpuPerSecond(server);
      report.insert = await insertAll(server, run, passes, progress);
      const seconds = smoke ? PACED_SECONDS.smoke : PACED_SECONDS.full;
      const paced = await scoredBatches(PACED_RECORDS_PER_SECOND * seconds);
      report.paced = [];
      for (const batchRowsMax of PACED_BATCH_ROWS) {
        progress(`paced: ${PACED_RECORDS_PER_SECOND} records/s for ${seconds} s, inserts of up to ${batchRowsMax} rows`);
        report.paced.push(await pacedInsert(server, paced, batchRowsMax));
      }
    } finally {
      await server.dispose();
    }
  }
  return report;
}

export function formatClickHouseBenchReport(r: ClickHouseBenchReport): string {
  const k = (n: number) => `${(n / 1000).toFixed(0)}k`;
  const lines = [
    `ClickHouse rows — ${r.records} records of ${r.keys} keys (rolling W=64 + spc + iforest), each an ml_scores and an ml_sensor_data row`,
    machineLine(r.machine),
    "",
    "encoding on one thread                     records/s   ml_scores bytes/row",
    ...r.encode.map((e) => `  ${e.path.padEnd(40)} ${k(e.recordsPerSecond).padStart(9)}   ${e.scoreBytesPerRow.toFixed(0).padStart(8)}`),
  ];
  const base = r.encode[0].recordsPerSecond;
  lines.push(`  RowBinary from columns / today's path: ${(r.encode[2].recordsPerSecond / base).toFixed(1)}×`, "");
  if (r.insert === null) lines.push(`insert: ${r.insertNote ?? "—"}`);
  else {
    const cpu = (v: number | null) => (v === null ? "—" : v.toFixed(2)).padStart(6);
    lines.push(
      `insert into ClickHouse: ml_scores + ml_sensor_data, best of ${r.insert[r.insert.length - 1].passes} (JSONEachRow: 1)`,
      `${"".padEnd(56)}rows/s  inserts  insert p50   server CPU s per M rows`,
      `${"".padEnd(90)}insert / until idle`,
    );
    for (const i of r.insert)
      lines.push(
        `  ${i.path.padEnd(52)} ${k(i.rowsPerSecond).padStart(7)}  ${String(i.inserts).padStart(7)}  ${i.insertP50Ms.toFixed(1).padStart(7)} ms      ${cpu(i.serverCpuPerMillionRows)} / ${cpu(i.serverCpuSettledPerMillionRows)}`,
      );
    if (r.serverIdleCpuPerSecond !== null) lines.push(`  the idle server used ${r.serverIdleCpuPerSecond.toFixed(3)} CPU s per second`);
  }
  if (r.paced !== null) lines.push("", ...pacedLines(r.paced));
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------------
// The batches
// ---------------------------------------------------------------------------------------------

interface ScoredBatches {
  analyses: RecordAnalysis[];
  layout: ScoreLayout;
  keys: KeyNames[];
  modelHash: Uint8Array;
  chunks: ScoreColumns[];
}

/** Rolling W = 64, SPC, and an isolation forest on (value, mean) trained on seeded in-control readings; no batches yet. */
function benchAnalyses(r: SeededRandom): ScoredBatches {
  const train = new Float64Array(2000 * 2);
  for (let i = 0; i < train.length; i++) train[i] = 20 + r.normal();
  const model = trainIsolationForest(
    { values: train, rows: 2000, columns: 2, names: ["value", "mean"] },
    { trees: 50, sampleSize: 256, seed: 7 },
  );
  const analyses: RecordAnalysis[] = [
    rollingAnalysis({ window: { kind: "count", records: 64 }, alpha: 0.1, timeScale: 1000 }),
    spcAnalysis({ params: DEFAULT_SPC_PARAMS, ewmaField: "spc_ewma" }),
    iforestAnalysis({ model, features: ["value", "mean"], rollingIndex: 0 }),
  ];
  const layout: ScoreLayout = {
    rolling: { index: 0, minCount: 64 },
    spc: { index: 1, ewmaField: "spc_ewma" },
    iforest: { index: 2, features: 2 },
  };
  return { analyses, layout, keys: [], modelHash: encodeRowBinaryString(model.hash), chunks: [] };
}

/** An engine run's output chunks, copied after the analyses' observe (so both paths see the same rows). */
async function scoredBatches(records: number): Promise<ScoredBatches> {
  const r = new SeededRandom(7);
  const out = benchAnalyses(r);
  const { analyses } = out;
  const names: string[] = [];
  const ctx: RowContext = { keyId: 0, key: "", position: 0, time: 0, value: 0 };
  const rows: Float64Array[] = analyses.map(() => new Float64Array(0));
  const engine = new StreamEngine(
    {
      kernels: analyses.map((a) => a.kernel),
      workers: 0,
      groups: 4,
      keysMax: 64,
      batchRecordsMax: 4096,
      lateness: null,
      reorderRecordsPerKeyMax: 1,
    },
    {
      onOutput(chunk) {
        for (let i = 0; i < chunk.length; i++) observeRecord(analyses, chunk, i, names[chunk.keyIds[i]], ctx, rows, false);
        const n = chunk.length;
        out.chunks.push({
          length: n,
          keyIds: chunk.keyIds.slice(0, n),
          times: chunk.times.slice(0, n),
          values: chunk.values.slice(0, n),
          positions: chunk.positions.slice(0, n),
          outs: chunk.outs.map((o, k) => o.slice(0, n * chunk.outFields[k])),
          outFields: [...chunk.outFields],
        });
      },
    },
  );
  const ids: number[] = [];
  for (let m = 1; m <= 8; m++)
    for (const s of ["temperature", "pressure", "vibration", "humidity", "speed", "current"]) {
      const id = engine.internKey(`M-00${m}/${s}`);
      ids.push(id);
      names[id] = `M-00${m}/${s}`;
      out.keys[id] = keyNames([`M-00${m}`, s]);
    }
  const batch = allocateBatch(4096);
  const level = ids.map(() => 20);
  for (let i = 0; i < records; i++) {
    const k = i % ids.length;
    level[k] += r.normal() * 0.02 + (i % 4999 === 0 ? 2 : 0);
    appendRecord(batch, ids[k], TIME_ORIGIN_MS + Math.floor(i / ids.length) * SAMPLE_INTERVAL_MS, level[k] + r.normal(), i);
    if (batch.length === 4096) {
      await engine.push(batch);
      batch.length = 0;
    }
  }
  if (batch.length > 0) await engine.push(batch);
  await engine.close();
  return out;
}

/** The ScoredRecord and members Outputs.record gets for record i of a chunk (what the sensor job builds). */
function scoredRecord(
  b: ScoredBatches,
  chunk: ScoreColumns,
  i: number,
  rows: Float64Array[],
): { scored: ScoredRecord; members: Record<string, unknown> } {
  for (let k = 0; k < rows.length; k++) rows[k] = chunk.outs[k].subarray(i * chunk.outFields[k], (i + 1) * chunk.outFields[k]);
  const members = recordFields(b.analyses, rows) as Record<string, unknown>;
  const parts = b.keys[chunk.keyIds[i]].parts;
  const scored: ScoredRecord = {
    machineId: parts[0],
    sensorType: parts[1],
    key: `${parts[0]}/${parts[1]}`,
    time: chunk.times[i],
    value: chunk.values[i],
    seq: chunk.positions[i],
    members,
  };
  return { scored, members };
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

type EncodeRow = ClickHouseBenchReport["encode"][number];

function best(passes: number, pass: () => EncodeRow): EncodeRow {
  let top = pass();
  for (let p = 1; p < passes; p++) {
    const next = pass();
    if (next.recordsPerSecond > top.recordsPerSecond) top = next;
  }
  return top;
}

function recordCount(b: ScoredBatches): number {
  return b.chunks.reduce((n, c) => n + c.length, 0);
}

/** Today: members, row objects, JSONEachRow lines into the sink's line buffers. */
function encodeObjectsJson(b: ScoredBatches): EncodeRow {
  const rows: Float64Array[] = b.analyses.map(() => new Float64Array(0));
  const scores = new LineBuffer(1 << 22, 16_384);
  const data = new LineBuffer(1 << 22, 16_384);
  let scoreBytes = 0;
  const t0 = performance.now();
  for (const chunk of b.chunks) {
    for (let i = 0; i < chunk.length; i++) {
      const { scored, members } = scoredRecord(b, chunk, i, rows);
      scores.push(encodeRow("ml_scores", scoreRow(scored, members)));
      data.push(encodeRow("ml_sensor_data", sensorDataRow(scored)));
    }
    scoreBytes += scores.bytes;
    scores.take();
    data.take();
  }
  return rate("row objects + JSONEachRow (today)", b, t0, scoreBytes);
}

/** The row objects as above, written as RowBinary by the table declarations. */
function encodeObjectsRowBinary(b: ScoredBatches): EncodeRow {
  const rows: Float64Array[] = b.analyses.map(() => new Float64Array(0));
  const scores = new RowBinaryWriter(1 << 22);
  const data = new RowBinaryWriter(1 << 22);
  let scoreBytes = 0;
  const t0 = performance.now();
  for (const chunk of b.chunks) {
    for (let i = 0; i < chunk.length; i++) {
      const { scored, members } = scoredRecord(b, chunk, i, rows);
      encodeRowBinary("ml_scores", scoreRow(scored, members), scores);
      encodeRowBinary("ml_sensor_data", sensorDataRow(scored), data);
    }
    scoreBytes += scores.finish().bytes.length;
    data.finish();
  }
  return rate("row objects + RowBinary", b, t0, scoreBytes);
}

/** A worker's way: each chunk's columns straight to RowBinary. */
function encodeColumnsRowBinary(b: ScoredBatches): EncodeRow {
  const scoreWriter = new RowBinaryWriter(1 << 22);
  const dataWriter = new RowBinaryWriter(1 << 22);
  let scoreBytes = 0;
  const t0 = performance.now();
  for (const chunk of b.chunks) {
    scoreBytes += encodeScoreColumns(chunk, { keys: b.keys, layout: b.layout, modelHash: b.modelHash, writer: scoreWriter }).rows.bytes
      .length;
    encodeSensorDataColumns(chunk, { keys: b.keys, writer: dataWriter });
  }
  return rate("RowBinary from columns (worker)", b, t0, scoreBytes);
}

/** A worker's way, columnar: each chunk's columns straight to a Native block per table. */
function encodeColumnsNative(b: ScoredBatches): EncodeRow {
  const scoreWriter = new NativeWriter(1 << 22);
  const dataWriter = new NativeWriter(1 << 22);
  let scoreBytes = 0;
  const t0 = performance.now();
  for (const chunk of b.chunks) {
    scoreBytes += encodeScoreNative(chunk, { keys: b.keys, layout: b.layout, modelHash: b.modelHash, writer: scoreWriter }).block.bytes
      .length;
    encodeSensorDataNative(chunk, { keys: b.keys, writer: dataWriter });
  }
  return rate("Native from columns (worker)", b, t0, scoreBytes);
}

function rate(path: string, b: ScoredBatches, t0: number, scoreBytes: number): EncodeRow {
  const n = recordCount(b);
  return { path, recordsPerSecond: n / ((performance.now() - t0) / 1000), scoreBytesPerRow: scoreBytes / n };
}

// ---------------------------------------------------------------------------------------------
// Insert
// ---------------------------------------------------------------------------------------------

/** One insert of every record's two rows by one path, into `database`. */
interface InsertPass {
  rows: number;
  seconds: number;
  inserts: number;
  p50: number;
  cpu: number | null;
  cpuSettled: number | null;
}

/**
 * Every path: row objects once (it is slow and no contender), RowBinary and Native `passes` times
 * each in alternating order; then both again into tables of ENGINE = Null, where the server only
 * reads the format.
 */
async function insertAll(
  server: ClickHouseServer,
  b: ScoredBatches,
  passes: number,
  progress: (line: string) => void,
): Promise<InsertRow[]> {
  progress("insert: row objects + JSONEachRow");
  const json = [await insertJson(server, b, "json")];
  // Encoded before the clock starts: on workers, not the sink's thread.
  const encoded = { RowBinary: encodedBoth(b, "RowBinary"), Native: encodedBoth(b, "Native") };
  const rows: InsertRow[] = [insertRow("write(row objects): JSONEachRow, encoded here", "JSONEachRow", "ReplacingMergeTree", json)];
  for (const engine of ["ReplacingMergeTree", "Null"] as const) {
    const runs: { RowBinary: InsertPass[]; Native: InsertPass[] } = { RowBinary: [], Native: [] };
    for (let p = 0; p < passes; p++) {
      const order = p % 2 === 0 ? (["RowBinary", "Native"] as const) : (["Native", "RowBinary"] as const);
      for (const format of order) {
        progress(`insert: ${format} into ${engine}, pass ${p + 1} of ${passes}`);
        const database = `${format}_${engine}_${p}`.toLowerCase();
        runs[format].push(
          await timedInsert(server, database, (sink) => encoded[format].map((e) => sink.insertEncoded(e.table, e.rows)), engine),
        );
      }
    }
    const where = engine === "Null" ? " into ENGINE = Null" : "";
    rows.push(insertRow(`insertEncoded(columns' RowBinary)${where}`, "RowBinary", engine, runs.RowBinary));
    rows.push(insertRow(`insertEncoded(columns' Native)${where}`, "Native", engine, runs.Native));
  }
  return rows;
}

function insertRow(path: string, format: InsertRow["format"], engine: InsertRow["engine"], passes: InsertPass[]): InsertRow {
  const fastest = passes.reduce((a, x) => (x.rows / x.seconds > a.rows / a.seconds ? x : a));
  const least = (f: (x: InsertPass) => number | null) => {
    const v = passes.map(f).filter((x): x is number => x !== null);
    return v.length === 0 ? null : Math.min(...v);
  };
  return {
    path,
    format,
    engine,
    rowsPerSecond: fastest.rows / fastest.seconds,
    rows: fastest.rows,
    inserts: fastest.inserts,
    insertP50Ms: fastest.p50,
    serverCpuPerMillionRows: least((x) => (x.cpu === null ? null : (x.cpu / x.rows) * 1e6)),
    serverCpuSettledPerMillionRows: least((x) => (x.cpuSettled === null ? null : (x.cpuSettled / x.rows) * 1e6)),
    passes: passes.length,
  };
}

/** Both tables' rows of every chunk, encoded one way. */
function encodedBoth(
  b: ScoredBatches,
  format: "RowBinary" | "Native",
): Array<{ table: "ml_scores" | "ml_sensor_data"; rows: EncodedRows | NativeBlock }> {
  const out: Array<{ table: "ml_scores" | "ml_sensor_data"; rows: EncodedRows | NativeBlock }> = [];
  for (const chunk of b.chunks) {
    const scores = { keys: b.keys, layout: b.layout, modelHash: b.modelHash };
    if (format === "RowBinary") {
      out.push({ table: "ml_scores", rows: encodeScoreColumns(chunk, scores).rows });
      out.push({ table: "ml_sensor_data", rows: encodeSensorDataColumns(chunk, { keys: b.keys }).rows });
    } else {
      out.push({ table: "ml_scores", rows: encodeScoreNative(chunk, scores).block });
      out.push({ table: "ml_sensor_data", rows: encodeSensorDataNative(chunk, { keys: b.keys }).block });
    }
  }
  return out;
}

async function insertJson(server: ClickHouseServer, b: ScoredBatches, database: string): Promise<InsertPass> {
  return timedInsert(server, database, (sink) => {
    const rows: Float64Array[] = b.analyses.map(() => new Float64Array(0));
    const writes: Promise<void>[] = [];
    let scores: ScoreRow[] = [];
    let data: SensorDataRow[] = [];
    for (const chunk of b.chunks) {
      for (let i = 0; i < chunk.length; i++) {
        const { scored, members } = scoredRecord(b, chunk, i, rows);
        scores.push(scoreRow(scored, members));
        data.push(sensorDataRow(scored));
        // Outputs hands rows over 1024 at a time.
        if (scores.length === 1024) {
          writes.push(sink.write("ml_scores", scores), sink.write("ml_sensor_data", data));
          scores = [];
          data = [];
        }
      }
    }
    writes.push(sink.write("ml_scores", scores), sink.write("ml_sensor_data", data));
    return writes;
  });
}

async function timedInsert(
  server: ClickHouseServer,
  database: string,
  writeAll: (sink: ClickHouseSink) => Promise<void>[],
  engine: InsertRow["engine"] = "ReplacingMergeTree",
): Promise<InsertPass> {
  // The same columns; ENGINE = Null discards the rows once read.
  await createSchema((sql) => server.query(engine === "Null" ? sql.replace(/ENGINE = [\s\S]*$/, "ENGINE = Null") : sql), database);
  const spillDir = mkdtempSync(join(tmpdir(), "lw-bench-spill-"));
  const sink = new ClickHouseSink({ url: server.url, database, spillDir, createTables: false, pendingRowsMax: 4_000_000 });
  try {
    const cpu0 = serverCpuSeconds(server);
    const t0 = performance.now();
    const writes = writeAll(sink);
    await sink.flush();
    await Promise.all(writes);
    const seconds = (performance.now() - t0) / 1000;
    const cpu1 = serverCpuSeconds(server);
    const cpu2 = await settledCpuSeconds(server);
    const m = sink.metrics();
    return {
      rows: m.rowsInserted,
      seconds,
      inserts: m.batches,
      p50: m.insertLatencyMs.p50,
      cpu: cpu0 === null || cpu1 === null ? null : cpu1 - cpu0,
      cpuSettled: cpu0 === null || cpu2 === null ? null : cpu2 - cpu0,
    };
  } finally {
    await sink.close();
    rmSync(spillDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Paced inserts: a running job's rows, at a steady rate
// ---------------------------------------------------------------------------------------------

/**
 * Hands both tables' Native blocks to a sink of `batchRowsMax` (flushIntervalMs 1 s) at
 * PACED_RECORDS_PER_SECOND, every 20 ms what is due, as an ingest job's drains do; measures the
 * server's CPU from the first row until it is idle again (the merges the inserts caused), by thread.
 */
async function pacedInsert(server: ClickHouseServer, b: ScoredBatches, batchRowsMax: number): Promise<PacedRow> {
  const database = `paced_${batchRowsMax}`;
  await createSchema((sql) => server.query(sql), database);
  const blocks = encodedBoth(b, "Native");
  const spillDir = mkdtempSync(join(tmpdir(), "lw-bench-spill-"));
  const sink = new ClickHouseSink({ url: server.url, database, spillDir, createTables: false, batchRowsMax, pendingRowsMax: 2_000_000 });
  try {
    const before = { cpu: serverCpuSeconds(server), threads: threadCpuSecondsByName(server.pid) };
    const writes: Promise<void>[] = [];
    const t0 = performance.now();
    let records = 0;
    for (let i = 0; i < blocks.length; ) {
      const due = ((performance.now() - t0) / 1000) * PACED_RECORDS_PER_SECOND;
      // Blocks come in pairs (ml_scores, ml_sensor_data) of one chunk.
      for (; i < blocks.length && records < due; i += 2) {
        writes.push(sink.insertEncoded(blocks[i].table, blocks[i].rows), sink.insertEncoded(blocks[i + 1].table, blocks[i + 1].rows));
        records += (blocks[i].rows as NativeBlock).rows;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    await sink.flush();
    await Promise.all(writes);
    const cpu = await settledCpuSeconds(server);
    const threads = threadCpuSecondsByName(server.pid);
    const byThread: Record<string, number> = {};
    for (const [name, s] of threads) {
      const perMillion = ((s - (before.threads.get(name) ?? 0)) / records) * 1e6;
      if (perMillion >= 0.05) byThread[name] = perMillion;
    }
    const parts = await server.query(`SELECT count() FROM system.parts WHERE database = '${database}' AND table = 'ml_scores' AND active`);
    return {
      batchRowsMax,
      recordsPerSecond: PACED_RECORDS_PER_SECOND,
      records,
      inserts: sink.metrics().batches,
      serverCpuPerMillionRecords: cpu === null || before.cpu === null ? null : ((cpu - before.cpu) / records) * 1e6,
      byThread,
      scoreParts: Number(parts.trim()),
    };
  } finally {
    await sink.close();
    rmSync(spillDir, { recursive: true, force: true });
  }
}

function pacedLines(rows: readonly PacedRow[]): string[] {
  const lines = [
    `paced: both tables at ${rows[0]?.recordsPerSecond ?? PACED_RECORDS_PER_SECOND} records/s (Native, sink flushIntervalMs 1 s), server CPU s per M records until idle`,
    "  rows per insert ≤  records  inserts  server CPU s/M  by thread (HTTPHandler: inserts, BackgrProcPool: merges)  ml_scores parts",
  ];
  for (const p of rows) {
    const threads = Object.entries(p.byThread)
      .sort((a, b) => b[1] - a[1])
      .map(([name, s]) => `${name} ${s.toFixed(1)}`)
      .join(", ");
    const cpu = p.serverCpuPerMillionRecords === null ? "—" : p.serverCpuPerMillionRecords.toFixed(1);
    lines.push(
      `  ${String(p.batchRowsMax).padStart(16)} ${String(p.records).padStart(8)} ${String(p.inserts).padStart(8)} ${cpu.padStart(15)}  ${threads.padEnd(57)} ${String(p.scoreParts).padStart(4)}`,
    );
  }
  return lines;
}

// ---------------------------------------------------------------------------------------------
// The server's CPU time
// ---------------------------------------------------------------------------------------------

/** The server process's CPU seconds so far, user + system over all its threads; null off Linux. */
function serverCpuSeconds(server: ClickHouseServer): number | null {
  return processCpuSeconds(server.pid);
}

const SETTLE_SAMPLE_MS = 250;
const SETTLE_MAX_MS = 10_000;

/** Waits until the server's CPU rate falls to idle (its merges done; at most 10 s) and returns its CPU seconds then. */
async function settledCpuSeconds(server: ClickHouseServer): Promise<number | null> {
  let last = serverCpuSeconds(server);
  if (last === null) return null;
  for (let waited = 0; waited < SETTLE_MAX_MS; waited += SETTLE_SAMPLE_MS) {
    await new Promise((r) => setTimeout(r, SETTLE_SAMPLE_MS));
    const now = serverCpuSeconds(server) as number;
    const idle = (now - last) / (SETTLE_SAMPLE_MS / 1000) < 0.05;
    last = now;
    if (idle) break;
  }
  return last;
}

/** The server's CPU seconds per second over a second of doing nothing. */
async function idleCpuPerSecond(server: ClickHouseServer): Promise<number | null> {
  const before = serverCpuSeconds(server);
  await new Promise((r) => setTimeout(r, 1000));
  const after = serverCpuSeconds(server);
  return before === null || after === null ? null : after - before;
}
