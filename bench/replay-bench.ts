/**
 * `linewatch replay --analysis rolling --window 64`, CSV → NDJSON, end to end
 * (`npm run bench -- replay [--smoke] [--rows N] [--keys K] [--json]`).
 *
 * One seeded CSV in a temporary directory — `timestamp,machine_id,sensor_type,sensor_value`,
 * ISO-8601 times with milliseconds, K keys (machines × 6 sensors) drawn at random per row, each a
 * random walk with noise written with 3 decimals — replayed the way the command does it
 * (runReplay with the command's defaults: 2 workers, 4096 keys, 1024 records per task, the
 * rolling analysis with α 0.1 and slope per second, output to a file stream that is ended). Each
 * path the replay can take is timed from the call until the output file is closed, with the
 * process's CPU time per row (all threads: on a shared machine the figure that holds still), and
 * its output compared byte for byte with the first path's. Beside them the I/O ceilings: reading
 * the CSV and finding its lines (no parsing), and writing as many bytes as the NDJSON has.
 * Figures only: nothing fails on a time.
 */
import { createReadStream, createWriteStream, mkdtempSync, openSync, readSync, closeSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { Writable } from "node:stream";
import { DEFAULT_WORKERS, SeededRandom } from "../engine/core/mod.js";
import { DEFAULT_REPLAY_BATCH_RECORDS, DEFAULT_REPLAY_KEYS_MAX, type ReplayOptions, runReplay } from "../engine/jobs/mod.js";
import { DEFAULT_ROLLING_ALPHA, rollingAnalysis } from "../operators/rolling/mod.js";
import { type BenchMachine, benchMachine, machineLine } from "./bench-kit.js";

export const DEFAULT_REPLAY_BENCH_ROWS = 3_000_000;
export const SMOKE_REPLAY_BENCH_ROWS = 20_000;
export const DEFAULT_REPLAY_BENCH_KEYS = 300;
export const DEFAULT_REPLAY_BENCH_SEED = 20240611;
/** The goal the issue sets for this command on 2 cores. */
export const TARGET_REPLAY_ROWS_PER_SECOND = 1_000_000;

/** How the replay turns rows into lines (ReplayOptions.pipeline): "rows" is the row-by-row reference. */
export type ReplayBenchPath = "rows" | "columns";
export const REPLAY_BENCH_PATHS: readonly ReplayBenchPath[] = ["rows", "columns"];

export interface ReplayBenchOptions {
  rows?: number;
  keys?: number;
  window?: number;
  seed?: number;
  smoke?: boolean;
  /** The paths to time, in order (default all); the first one's output is the reference. */
  paths?: readonly ReplayBenchPath[];
  progress?: (line: string) => void;
}

export interface ReplayBenchPathFigures {
  path: ReplayBenchPath;
  rowsPerSecond: number;
  seconds: number;
  /** CPU time of the whole process (every thread) per row: what the path costs, however busy the machine. */
  cpuMicrosPerRow: number;
  /** The part of it spent in the kernel (system time): mostly the output's pages, see {@link ReplayBenchReport.writeSystemMicrosPerRow}. */
  systemMicrosPerRow: number;
  outputBytes: number;
  /** Whether the output equals the first path's byte for byte (the first path: true). */
  identical: boolean;
  /** Where it first differs, when it does. */
  firstDifference: number | null;
}

export interface ReplayBenchReport {
  machine: BenchMachine;
  seed: number;
  rows: number;
  keys: number;
  window: number;
  inputBytes: number;
  /** Reading the CSV and finding its lines, rows/s: the input I/O ceiling. */
  readRowsPerSecond: number;
  /**
   * Writing the NDJSON's byte count in 1 MiB chunks to a new file, rows/s: the output I/O ceiling.
   * Measured with every replay's output still on disk, so that, as for them, the file's page
   * cache is memory the kernel had not just freed: on a virtual machine that gives free memory
   * back to its host, a new page can cost far more than the copy into it.
   */
  writeRowsPerSecond: number;
  /** The kernel's (system) CPU time per row of that write. */
  writeSystemMicrosPerRow: number;
  paths: ReplayBenchPathFigures[];
  seconds: number;
}

export async function runReplayBench(o: ReplayBenchOptions = {}): Promise<ReplayBenchReport> {
  const started = performance.now();
  const machine = benchMachine();
  const smoke = o.smoke === true;
  const rows = o.rows ?? (smoke ? SMOKE_REPLAY_BENCH_ROWS : DEFAULT_REPLAY_BENCH_ROWS);
  const keys = o.keys ?? DEFAULT_REPLAY_BENCH_KEYS;
  const window = o.window ?? 64;
  const seed = o.seed ?? DEFAULT_REPLAY_BENCH_SEED;
  const progress = o.progress ?? (() => {});
  const dir = mkdtempSync(join(tmpdir(), "lw-replay-bench-"));
  try {
    const csv = join(dir, "plant.csv");
    progress(`writing ${rows} rows of ${keys} keys (seed ${seed}) to ${csv}`);
    await writeBenchCsv(csv, rows, keys, seed);
    progress("input ceiling: read the CSV and find its lines");
    const readSeconds = await timeReadLines(csv);
    const paths: ReplayBenchPathFigures[] = [];
    for (const path of o.paths ?? REPLAY_BENCH_PATHS) {
      progress(`replay, ${path} path`);
      const reference = paths.length === 0 ? null : join(dir, `${paths[0].path}.ndjson`);
      paths.push(await measurePath(csv, join(dir, `${path}.ndjson`), { rows, window, path }, reference));
    }
    progress("output ceiling: write as many bytes as the NDJSON has, to a new file");
    const cpu = process.cpuUsage();
    const writeSeconds = await timeWriteBytes(
      join(dir, `${paths[0].path}.ndjson`),
      join(dir, "write-ceiling.ndjson"),
      paths[0].outputBytes,
    );
    const writeSystemMicros = process.cpuUsage(cpu).system;
    return {
      machine,
      seed,
      rows,
      keys,
      window,
      inputBytes: statSync(csv).size,
      readRowsPerSecond: rows / readSeconds,
      writeRowsPerSecond: rows / writeSeconds,
      writeSystemMicrosPerRow: writeSystemMicros / rows,
      paths,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function formatReplayBenchReport(r: ReplayBenchReport): string {
  const k = (n: number) => `${(n / 1000).toFixed(0)} k`;
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
  const lines = [
    `replay --analysis rolling --window ${r.window}, CSV → NDJSON — ${r.rows} rows of ${r.keys} keys, seed ${r.seed}, CSV ${mib(r.inputBytes)}`,
    machineLine(r.machine),
    "",
    "                                       rows/s    seconds   CPU µs/row (kernel)   output      vs rows path   of read ceiling",
  ];
  const base = r.paths[0].rowsPerSecond;
  for (const p of r.paths) {
    const same = p.identical ? "" : `   OUTPUT DIFFERS at byte ${p.firstDifference}`;
    lines.push(
      `  replay, ${`${p.path} path`.padEnd(29)} ${k(p.rowsPerSecond).padStart(8)} ${p.seconds.toFixed(2).padStart(9)} ${p.cpuMicrosPerRow.toFixed(2).padStart(11)} (${p.systemMicrosPerRow.toFixed(2).padStart(5)})   ` +
        `${mib(p.outputBytes).padStart(8)}   ${(p.rowsPerSecond / base).toFixed(2).padStart(10)}×   ${((100 * p.rowsPerSecond) / r.readRowsPerSecond).toFixed(0).padStart(12)} %${same}`,
    );
  }
  lines.push(`  ceiling: read the CSV, find its lines${k(r.readRowsPerSecond).padStart(12)}`);
  lines.push(
    `  ceiling: write the NDJSON's bytes    ${k(r.writeRowsPerSecond).padStart(12)}   (to a new file; kernel ${r.writeSystemMicrosPerRow.toFixed(2)} µs/row)`,
  );
  const best = Math.max(...r.paths.map((p) => p.rowsPerSecond));
  lines.push(
    "",
    `target ≥ ${k(TARGET_REPLAY_ROWS_PER_SECOND)} rows/s: ${best >= TARGET_REPLAY_ROWS_PER_SECOND ? "met" : "NOT MET"} (best ${k(best)})`,
    `outputs identical: ${r.paths.every((p) => p.identical) ? "yes" : "NO"}; total ${r.seconds.toFixed(1)} s`,
  );
  return lines.join("\n");
}

// ---- the data ----

const SENSORS = ["temperature", "pressure", "vibration", "speed", "current", "humidity"];
const TIME_ORIGIN_MS = Date.UTC(2026, 0, 5, 6, 0, 0);

/** The bench's CSV: row i at origin + i ms, a random key, that key's walk + noise, 3 decimals. */
async function writeBenchCsv(path: string, rows: number, keys: number, seed: number): Promise<void> {
  const random = new SeededRandom(seed);
  const names: string[] = [];
  const level = new Float64Array(keys);
  for (let k = 0; k < keys; k++) {
    names.push(`M-${String(Math.floor(k / SENSORS.length) + 1).padStart(3, "0")},${SENSORS[k % SENSORS.length]}`);
    level[k] = random.uniform(10, 1000);
  }
  const out = createWriteStream(path);
  let text = "timestamp,machine_id,sensor_type,sensor_value\n";
  for (let i = 0; i < rows; i++) {
    const k = random.below(keys);
    level[k] += 0.01 * level[k] * random.normal();
    text += `${new Date(TIME_ORIGIN_MS + i).toISOString()},${names[k]},${(level[k] + random.normal()).toFixed(3)}\n`;
    if (text.length >= 1 << 20) {
      await writeChunk(out, text);
      text = "";
    }
  }
  await writeChunk(out, text);
  await endStream(out);
}

// ---- the timed runs ----

/** One path's figures; its output compared with `reference` (the first path's, kept) and removed, unless it is the first. */
async function measurePath(
  csv: string,
  out: string,
  run: { rows: number; window: number; path: ReplayBenchPath },
  reference: string | null,
): Promise<ReplayBenchPathFigures> {
  const cpu = process.cpuUsage();
  const seconds = await timeReplay(csv, out, run.window, run.path);
  const { user, system } = process.cpuUsage(cpu);
  const firstDifference = reference === null ? null : firstDifferentByte(reference, out);
  // Kept until the run's end (the directory goes then): see ReplayBenchReport.writeRowsPerSecond.
  const outputBytes = statSync(out).size;
  return {
    path: run.path,
    rowsPerSecond: run.rows / seconds,
    seconds,
    cpuMicrosPerRow: (user + system) / run.rows,
    systemMicrosPerRow: system / run.rows,
    outputBytes,
    identical: firstDifference === null,
    firstDifference,
  };
}

/** Seconds of one replay of `csv` into `out` as the command runs it, until the file is closed. */
async function timeReplay(csv: string, out: string, window: number, path: ReplayBenchPath): Promise<number> {
  const output = createWriteStream(out);
  const options: ReplayOptions = {
    input: csv,
    analyses: [rollingAnalysis({ window: { kind: "count", records: window }, alpha: DEFAULT_ROLLING_ALPHA, timeScale: 1000 })],
    timeColumn: "timestamp",
    timeUnit: "ms",
    lateness: null,
    workers: DEFAULT_WORKERS,
    keysMax: DEFAULT_REPLAY_KEYS_MAX,
    batchRecordsMax: DEFAULT_REPLAY_BATCH_RECORDS,
    output,
    progress: null,
    pipeline: path,
  };
  const t0 = performance.now();
  await runReplay(options);
  await endStream(output);
  return (performance.now() - t0) / 1000;
}

/** Seconds to read `path` in 1 MiB chunks and find every newline. */
async function timeReadLines(path: string): Promise<number> {
  const t0 = performance.now();
  let lines = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    const bytes = chunk as Buffer;
    for (let at = bytes.indexOf(10); at >= 0; at = bytes.indexOf(10, at + 1)) lines++;
  }
  if (lines === 0) throw new Error(`${path} has no lines`);
  return (performance.now() - t0) / 1000;
}

/** Seconds to write `bytes` bytes to `out` through a file stream, 1 MiB at a time (taken from `sample`). */
async function timeWriteBytes(sample: string, out: string, bytes: number): Promise<number> {
  const chunk = Buffer.alloc(Math.min(1 << 20, bytes));
  const fd = openSync(sample, "r");
  readSync(fd, chunk, 0, chunk.length, 0);
  closeSync(fd);
  const t0 = performance.now();
  const stream = createWriteStream(out);
  for (let left = bytes; left > 0; left -= chunk.length) await writeChunk(stream, left >= chunk.length ? chunk : chunk.subarray(0, left));
  await endStream(stream);
  const seconds = (performance.now() - t0) / 1000;
  rmSync(out);
  return seconds;
}

/** The offset of the first byte where the two files differ (a shorter file differs at its end), or null. */
function firstDifferentByte(a: string, b: string): number | null {
  const fa = openSync(a, "r");
  const fb = openSync(b, "r");
  const ba = Buffer.alloc(1 << 20);
  const bb = Buffer.alloc(1 << 20);
  try {
    for (let at = 0; ; ) {
      const na = readSync(fa, ba, 0, ba.length, at);
      const nb = readSync(fb, bb, 0, bb.length, at);
      const n = Math.min(na, nb);
      for (let i = 0; i < n; i++) if (ba[i] !== bb[i]) return at + i;
      if (na !== nb) return at + n;
      if (na === 0) return null;
      at += na;
    }
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
}

function writeChunk(out: Writable, chunk: string | Buffer): Promise<void> | undefined {
  return out.write(chunk) ? undefined : new Promise((resolve) => out.once("drain", resolve));
}

function endStream(out: Writable): Promise<void> {
  return new Promise((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
}
