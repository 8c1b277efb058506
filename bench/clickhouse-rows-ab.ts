/**
 * An ingest worker's ClickHouse encoding (engine/jobs/ingest/clickhouse-rows.ts: every chunk as a
 * Native block of ml_sensor_data and one of ml_scores, gathered and taken as insert bodies) of
 * this build against another build's (`--before <dist dir>`, e.g. a copy of dist/ kept before a
 * change), on one thread and the same chunks, alternately (a busy machine slows both alike), with
 * their ratio of thread CPU per record; the bodies of both must be the same bytes.
 *
 * The chunks are what `bench e2e`'s worker sees: 48 keys (8 machines × 6 sensors) interleaved,
 * rolling W = 64 + SPC + an isolation forest on (value, mean, std, z), chunks of 256 records (its
 * drains at the sustained maximum hold 200–250), every record labelled (unit per sensor, two
 * operating modes, a work order per machine), a body taken every 40 000 rows.
 *
 *   node dist/bench/clickhouse-rows-ab.js --before /tmp/dist-before [--records 100000] [--rounds 7]
 */
import { createHash, type Hash } from "node:crypto";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { auditColumns } from "../connectors/clickhouse/mod.js";
import { LabelTable } from "../connectors/wire/mod.js";
import type { OutputChunk } from "../engine/core/mod.js";
import { allocateBodyRing, type AnalysisSpec, BodyRingReader, BodyRingWriter, buildAnalyses, ClickHouseRows } from "../engine/jobs/mod.js";
import { observeChunkRows, type RowContext } from "../operators/mod.js";
import { median, threadCpuMicros } from "./bench-kit.js";
import { scoredAnalysisSpecs } from "./kit/scored-specs.js";
import { benchEngine, copyChunk, pushRandomWalk } from "./kit/seeded-readings.js";

const MACHINES = 8;
const SENSORS = ["temperature", "pressure", "vibration", "humidity", "speed", "current"];
const KEYS = MACHINES * SENSORS.length;
const CHUNK = 256;
const HAND_OVER_ROWS = 40_000;

type RowsClass = typeof ClickHouseRows;

interface Chunks {
  specs: AnalysisSpec[];
  chunks: OutputChunk[];
  labels: LabelTable;
  modelHash: string;
}

/** Seeded readings through the kernels and observers, each chunk copied (the engine reuses its buffers) with its records' label ids. */
async function scoredChunks(records: number): Promise<Chunks> {
  const s = scoredAnalysisSpecs();
  const analyses = buildAnalyses(s, () => {});
  const labels = new LabelTable();
  const labelOfKey = Array.from({ length: KEYS }, (_, k) => [0, 1].map((mode) => labelId(labels, k, mode)));
  const chunks: OutputChunk[] = [];
  const ctx: RowContext = { keyId: 0, key: "", position: 0, time: 0, value: 0 };
  const copy = (c: OutputChunk): OutputChunk => {
    const payload = new Uint8Array(4 * c.length);
    const view = new DataView(payload.buffer);
    for (let i = 0; i < c.length; i++) view.setUint32(4 * i, labelOfKey[c.keyIds[i]][Math.floor(c.positions[i] / 5000) % 2], true);
    return copyChunk(c, payload);
  };
  const names = Array.from({ length: KEYS }, (_, k) => keyName(k));
  const onOutput = (c: OutputChunk) => {
    observeChunkRows(analyses, c, (id) => names[id], ctx);
    chunks.push(copy(c));
  };
  const engine = benchEngine({ kernels: analyses.map((a) => a.kernel), keyNames: names, groups: 1, chunkRecords: CHUNK, onOutput });
  await pushRandomWalk(engine, KEYS, { records, seed: 11, stepEvery: 4999 });
  const modelHash = (analyses[2] as unknown as { activeHash: string }).activeHash;
  return { specs: s, chunks, labels, modelHash };
}

function keyName(k: number): string {
  return `M-00${Math.floor(k / SENSORS.length) + 1}/${SENSORS[k % SENSORS.length]}`;
}

function labelId(labels: LabelTable, k: number, mode: number): number {
  const units = ["°C", "bar", "mm/s", "%", "rpm", "A"];
  const machine = Math.floor(k / SENSORS.length);
  return labels.idOf({
    sensor_unit: units[k % SENSORS.length],
    operating_mode: mode === 0 ? "production" : "changeover",
    work_order_id: `WO-2026-${String(1000 + machine)}`,
  });
}

/** A worker's encoder of `Rows`' build, its keys named; kept across passes, as a worker keeps its grown buffers. */
function encoder(Rows: RowsClass, c: Chunks, ring: Ring | null): ClickHouseRows {
  const audit = auditColumns("k".repeat(64), "c".repeat(64));
  const rows = new Rows(c.specs, c.labels, () => c.modelHash, { rowsMax: HAND_OVER_ROWS, ageMs: 1e9 }, audit, ring?.writer ?? null);
  for (let k = 0; k < KEYS; k++) rows.addKey(k, ...(keyName(k).split("/") as [string, string]));
  return rows;
}

/** The body ring of this build's worker (its bodies copied there instead of into a buffer each), with the main thread's reader: each body is released as soon as it is taken (a sink that keeps up). */
interface Ring {
  writer: BodyRingWriter;
  reader: BodyRingReader;
}

/**
 * One pass of an encoder over every chunk, each body taken into `ring` (this build) or a buffer
 * of its own: thread CPU µs per record. With `hashes`, every body goes into its table's as it is taken (a
 * pass to compare the bytes; its time is not the encoding's).
 */
function pass(rows: ClickHouseRows, c: Chunks, ring: Ring | null, hashes: Map<string, Hash> | null): number {
  let records = 0;
  const take = (now: boolean) => {
    for (const t of rows.take(now).tables) {
      const lent = t.ring === undefined || ring === null ? null : ring.reader.lend(t.ring);
      // Per table: where a build cuts its bodies is not compared, the blocks in them are.
      hashes?.get(t.table)?.update(lent?.bytes ?? t.rows.bytes);
      lent?.release();
    }
  };
  const t0 = threadCpuMicros();
  for (const chunk of c.chunks) {
    rows.add(chunk);
    records += chunk.length;
    take(false);
  }
  take(true);
  return (threadCpuMicros() - t0) / records;
}

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const arg = (name: string, fallback: string) => {
    const at = args.indexOf(name);
    return at >= 0 && args[at + 1] !== undefined ? args[at + 1] : fallback;
  };
  const before = arg("--before", "");
  if (before === "") throw new Error("usage: clickhouse-rows-ab.js --before <dist dir of the other build>");
  const records = Number(arg("--records", "100000"));
  const rounds = Number(arg("--rounds", "7"));
  const url = pathToFileURL(resolve(before, "engine/jobs/ingest/clickhouse-rows.js")).href;
  const Before = ((await import(url)) as { ClickHouseRows: RowsClass }).ClickHouseRows;
  const chunks = await scoredChunks(records);

  // --only-after: this build alone (to profile it).
  const builds: Array<"before" | "after"> = args.includes("--only-after") ? ["after"] : ["before", "after"];
  const memory = allocateBodyRing();
  const rings = { before: null, after: { writer: new BodyRingWriter(memory), reader: new BodyRingReader(memory) } };
  const encoders = { before: encoder(Before, chunks, null), after: encoder(ClickHouseRows, chunks, rings.after) };
  const times = { before: [] as number[], after: [] as number[] };
  for (let r = 0; r < rounds; r++) {
    // Alternate which goes first.
    const order = r % 2 === 0 ? builds : [...builds].reverse();
    for (const which of order) times[which].push(pass(encoders[which], chunks, rings[which], null));
  }
  const digests = { before: "", after: "" };
  for (const which of builds) {
    const hashes = new Map(["ml_sensor_data", "ml_scores"].map((t) => [t, createHash("sha256")]));
    pass(encoders[which], chunks, rings[which], hashes);
    digests[which] = [...hashes.values()].map((h) => h.digest("hex")).join(" ");
  }
  if (times.before.length === 0) times.before.push(Number.NaN);
  const b = median(times.before);
  const a = median(times.after);
  out(`ClickHouse rows of an ingest worker (ml_sensor_data + ml_scores Native), ${records} records, chunks of ${CHUNK}, ${KEYS} keys`);
  out(`  before (${before}): ${b.toFixed(3)} µs/record thread CPU (median of ${rounds})`);
  out(`  this build:        ${a.toFixed(3)} µs/record`);
  const same = builds.length === 1 || digests.before === digests.after;
  out(`  this / before: ${(a / b).toFixed(3)}; ${same ? "the same bytes" : "DIFFERENT BYTES"}`);
  if (!same) process.exitCode = 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await main();
