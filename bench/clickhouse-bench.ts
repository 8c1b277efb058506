/**
 * ClickHouse rows two ways (`npm run bench -- clickhouse [--smoke] [--records N] [--json]`):
 * today's path — per record a members object (recordFields), the ScoreRow and SensorDataRow
 * objects (Outputs.record) and their JSONEachRow lines — against RowBinary encoded from a batch's
 * columns (encodeScoreColumns, encodeSensorDataColumns), as an ingest worker would; and beside
 * them RowBinary from the row objects (encodeRowBinary), to tell the objects' cost from the text's.
 *
 * The batches are an engine run's output chunks (rolling W = 64 + SPC + an isolation forest on
 * value and mean, 8 machines × 6 sensors, on this thread), copied once, so every path encodes the
 * same rows. Encoding: records/s on this thread, each record an ml_scores and an ml_sensor_data
 * row, best of three passes. Insert, on a throw-away clickhouse-server (test kit) when installed:
 * ml_scores rows/s through ClickHouseSink — `write` of row objects (encoding included, on the
 * sink's thread, as the run does now) against `insertEncoded` of rows encoded beforehand (on
 * workers) — from the first call until every row is inserted. Figures only: nothing fails.
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
  encodeSensorDataColumns,
  type KeyNames,
  keyNames,
  RowBinaryWriter,
  type ScoreColumns,
  type ScoreLayout,
  type ScoreRow,
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
import { type BenchMachine, benchMachine, machineLine, SAMPLE_INTERVAL_MS, TIME_ORIGIN_MS } from "./bench-kit.js";

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
  /** ml_scores rows/s into ClickHouse by format; null without clickhouse-server (or with insert off). */
  insert: Array<{ path: string; rowsPerSecond: number; rows: number; inserts: number; insertP50Ms: number }> | null;
  /** Why there are no insert rows, when there are none. */
  insertNote?: string;
}

export async function runClickHouseBench(o: ClickHouseBenchOptions = {}): Promise<ClickHouseBenchReport> {
  const machine = benchMachine();
  const smoke = o.smoke === true;
  const records = o.records ?? (smoke ? SMOKE_CLICKHOUSE_BENCH_RECORDS : DEFAULT_CLICKHOUSE_BENCH_RECORDS);
  const progress = o.progress ?? (() => {});
  progress(`engine run: ${records} records through rolling + spc + iforest`);
  const run = await scoredBatches(records);
  const passes = smoke ? 1 : 3;
  progress("encoding: row objects + JSONEachRow, RowBinary from row objects, RowBinary from columns");
  const encode = [
    best(passes, () => encodeObjectsJson(run)),
    best(passes, () => encodeObjectsRowBinary(run)),
    best(passes, () => encodeColumnsRowBinary(run)),
  ];
  const report: ClickHouseBenchReport = { machine, records, keys: run.keys.length, encode, insert: null };
  if (o.insert === false) report.insertNote = "insert left out";
  else if (!serverAvailable("clickhouse-server")) report.insertNote = "clickhouse-server is not installed: no insert figures";
  else {
    progress("insert: starting a throw-away clickhouse-server");
    const server = await startClickHouseServer();
    try {
      report.insert = [await insertJson(server, run), await insertRowBinary(server, run)];
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
  lines.push(`  RowBinary from columns / today's path: ${(r.encode[r.encode.length - 1].recordsPerSecond / base).toFixed(1)}×`, "");
  if (r.insert === null) lines.push(`insert: ${r.insertNote ?? "—"}`);
  else {
    lines.push("insert into ClickHouse (ml_scores)              rows/s   inserts   insert p50");
    for (const i of r.insert)
      lines.push(
        `  ${i.path.padEnd(44)} ${k(i.rowsPerSecond).padStart(7)}   ${String(i.inserts).padStart(7)}   ${i.insertP50Ms.toFixed(1).padStart(7)} ms`,
      );
  }
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

function rate(path: string, b: ScoredBatches, t0: number, scoreBytes: number): EncodeRow {
  const n = recordCount(b);
  return { path, recordsPerSecond: n / ((performance.now() - t0) / 1000), scoreBytesPerRow: scoreBytes / n };
}

// ---------------------------------------------------------------------------------------------
// Insert
// ---------------------------------------------------------------------------------------------

type InsertRow = NonNullable<ClickHouseBenchReport["insert"]>[number];

async function insertJson(server: ClickHouseServer, b: ScoredBatches): Promise<InsertRow> {
  return timedInsert(server, "json", "write(row objects): JSONEachRow, encoded here", (sink) => {
    const rows: Float64Array[] = b.analyses.map(() => new Float64Array(0));
    const writes: Promise<void>[] = [];
    let slice: ScoreRow[] = [];
    for (const chunk of b.chunks) {
      for (let i = 0; i < chunk.length; i++) {
        const { scored, members } = scoredRecord(b, chunk, i, rows);
        slice.push(scoreRow(scored, members));
        // Outputs hands rows over 1024 at a time.
        if (slice.length === 1024) {
          writes.push(sink.write("ml_scores", slice));
          slice = [];
        }
      }
    }
    writes.push(sink.write("ml_scores", slice));
    return writes;
  });
}

async function insertRowBinary(server: ClickHouseServer, b: ScoredBatches): Promise<InsertRow> {
  // Encoded before the clock starts: on workers, not the sink's thread.
  const writer = new RowBinaryWriter(1 << 22);
  const encoded: EncodedRows[] = b.chunks.map(
    (chunk) => encodeScoreColumns(chunk, { keys: b.keys, layout: b.layout, modelHash: b.modelHash, writer }).rows,
  );
  return timedInsert(server, "rowbinary", "insertEncoded(columns' RowBinary)", (sink) =>
    encoded.map((rows) => sink.insertEncoded("ml_scores", rows)),
  );
}

async function timedInsert(
  server: ClickHouseServer,
  database: string,
  path: string,
  writeAll: (sink: ClickHouseSink) => Promise<void>[],
): Promise<InsertRow> {
  await createSchema((sql) => server.query(sql), database);
  const spillDir = mkdtempSync(join(tmpdir(), "lw-bench-spill-"));
  const sink = new ClickHouseSink({ url: server.url, database, spillDir, createTables: false, pendingRowsMax: 2_000_000 });
  try {
    const t0 = performance.now();
    const writes = writeAll(sink);
    await sink.flush();
    await Promise.all(writes);
    const seconds = (performance.now() - t0) / 1000;
    const m = sink.metrics();
    return { path, rowsPerSecond: m.rowsInserted / seconds, rows: m.rowsInserted, inserts: m.batches, insertP50Ms: m.insertLatencyMs.p50 };
  } finally {
    await sink.close();
    rmSync(spillDir, { recursive: true, force: true });
  }
}
