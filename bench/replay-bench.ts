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
 * its output compared with the first path's (SHA-256), then removed; each path starts after a
 * pause. Beside them the I/O ceilings: reading the CSV and finding its lines (no parsing), and
 * writing as many bytes as the NDJSON has.
 * Figures only: nothing fails on a time.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, mkdtempSync, openSync, readSync, closeSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { Writable } from "node:stream";
import { DEFAULT_WORKERS, SeededRandom } from "../engine/core/mod.js";
import { DEFAULT_REPLAY_BATCH_RECORDS, DEFAULT_REPLAY_KEYS_MAX, type ReplayOptions, runReplay } from "../engine/jobs/mod.js";
import { DEFAULT_ROLLING_ALPHA, rollingAnalysis } from "../operators/rolling/mod.js";
import { createOutputFile, OUTPUT_WRITE_BYTES } from "../connectors/files/mod.js";
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
  /** The part of it spent in the kernel (system time): mostly the output's pages, see {@link ReplayBenchReport.writeCeilings}. */
  systemMicrosPerRow: number;
  outputBytes: number;
  /** SHA-256 of the output, hex. */
  sha256: string;
  /** Whether the output equals the first path's (the same SHA-256; the first path: true). */
  identical: boolean;
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
   * Writing the NDJSON's byte count to a new file, rows/s: the output I/O ceiling — first in
   * system calls of OUTPUT_WRITE_BYTES, as the replay's output file writes, then of 1 MiB (what the
   * replay wrote before). Each, as each path, after the files before it were removed and a
   * pause of PAUSE_MS. On a virtual machine that gives free memory back to its host the two differ
   * by an order of magnitude: connectors/files output-file.ts says why.
   */
  writeCeilings: WriteCeiling[];
  paths: ReplayBenchPathFigures[];
  seconds: number;
}

/** The output ceiling for one size of write system call. */
export interface WriteCeiling {
  callBytes: number;
  rowsPerSecond: number;
  /** The kernel's (system) CPU time per row. */
  systemMicrosPerRow: number;
}

/** Write system call sizes of the output ceilings: the replay's output file's, and 1 MiB. */
const CEILING_CALL_BYTES = [OUTPUT_WRITE_BYTES, 1 << 20];
/** Pause before each timed write (a replay path or an output ceiling), after the files before it were removed, ms. */
const PAUSE_MS = 3000;

function pause(smoke: boolean): Promise<void> {
  return new Promise((r) => setTimeout(r, smoke ? 0 : PAUSE_MS));
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
    // Every path starts from the same state: the outputs before it removed, then a pause. On a
    // virtual machine that gives free memory back to its host, a path that wrote after another's
    // output (kept) had less of the memory the host still backs (connectors/files output-file.ts).
    const paths: ReplayBenchPathFigures[] = [];
    let sample: Buffer | null = null;
    for (const path of o.paths ?? REPLAY_BENCH_PATHS) {
      progress(`replay, ${path} path`);
      await pause(smoke);
      const out = join(dir, `${path}.ndjson`);
      paths.push(await measurePath(csv, out, { rows, window, path }, paths[0]?.sha256 ?? null));
      sample ??= readSample(out, paths[0].outputBytes);
      rmSync(out);
    }
    const writeCeilings: WriteCeiling[] = [];
    for (const callBytes of CEILING_CALL_BYTES) {
      progress(`output ceiling: write as many bytes as the NDJSON has, to a new file, ${callBytes >> 10} KiB per system call`);
      await pause(smoke);
      const cpu = process.cpuUsage();
      const seconds = await timeWriteBytes(sample as Buffer, join(dir, "write-ceiling.ndjson"), paths[0].outputBytes, callBytes);
      writeCeilings.push({ callBytes, rowsPerSecond: rows / seconds, systemMicrosPerRow: process.cpuUsage(cpu).system / rows });
    }
    return {
      machine,
      seed,
      rows,
      keys,
      window,
      inputBytes: statSync(csv).size,
      readRowsPerSecond: rows / readSeconds,
      writeCeilings,
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
    const same = p.identical ? "" : `   OUTPUT DIFFERS (SHA-256 ${p.sha256.slice(0, 16)}…)`;
    lines.push(
      `  replay, ${`${p.path} path`.padEnd(29)} ${k(p.rowsPerSecond).padStart(8)} ${p.seconds.toFixed(2).padStart(9)} ${p.cpuMicrosPerRow.toFixed(2).padStart(11)} (${p.systemMicrosPerRow.toFixed(2).padStart(5)})   ` +
        `${mib(p.outputBytes).padStart(8)}   ${(p.rowsPerSecond / base).toFixed(2).padStart(10)}×   ${((100 * p.rowsPerSecond) / r.readRowsPerSecond).toFixed(0).padStart(12)} %${same}`,
    );
  }
  lines.push(`  ceiling: read the CSV, find its lines${k(r.readRowsPerSecond).padStart(12)}`);
  for (const w of r.writeCeilings)
    lines.push(
      `  ceiling: write the NDJSON's bytes    ${k(w.rowsPerSecond).padStart(12)}   (to a new file, ${w.callBytes >> 10} KiB per system call${w.callBytes === OUTPUT_WRITE_BYTES ? " as the replay writes" : ""}; kernel ${w.systemMicrosPerRow.toFixed(2)} µs/row)`,
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

/** One path's figures; its output's SHA-256 compared with `reference` (the first path's; null: this is the first). */
async function measurePath(
  csv: string,
  out: string,
  run: { rows: number; window: number; path: ReplayBenchPath },
  reference: string | null,
): Promise<ReplayBenchPathFigures> {
  const cpu = process.cpuUsage();
  const seconds = await timeReplay(csv, out, run.window, run.path);
  const { user, system } = process.cpuUsage(cpu);
  const sha256 = await fileSha256(out);
  return {
    path: run.path,
    rowsPerSecond: run.rows / seconds,
    seconds,
    cpuMicrosPerRow: (user + system) / run.rows,
    systemMicrosPerRow: system / run.rows,
    outputBytes: statSync(out).size,
    sha256,
    identical: reference === null || sha256 === reference,
  };
}

async function fileSha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Seconds of one replay of `csv` into `out` as the command runs it, until the file is closed. */
async function timeReplay(csv: string, out: string, window: number, path: ReplayBenchPath): Promise<number> {
  const output = createOutputFile(out);
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

/** The first MiB of `path` (all of it when shorter): what the output ceilings write, over and over. */
function readSample(path: string, bytes: number): Buffer {
  const chunk = Buffer.alloc(Math.min(1 << 20, bytes));
  const fd = openSync(path, "r");
  readSync(fd, chunk, 0, chunk.length, 0);
  closeSync(fd);
  return chunk;
}

/** Seconds to write `bytes` bytes of `chunk` over and over to the new file `out` through a file stream, each write system call of at most `callBytes`; `out` removed after. */
async function timeWriteBytes(chunk: Buffer, out: string, bytes: number, callBytes: number): Promise<number> {
  const t0 = performance.now();
  const stream = callBytes === OUTPUT_WRITE_BYTES ? createOutputFile(out) : createWriteStream(out);
  for (let left = bytes; left > 0; left -= chunk.length) await writeChunk(stream, left >= chunk.length ? chunk : chunk.subarray(0, left));
  await endStream(stream);
  const seconds = (performance.now() - t0) / 1000;
  rmSync(out);
  return seconds;
}

function writeChunk(out: Writable, chunk: string | Buffer): Promise<void> | undefined {
  return out.write(chunk) ? undefined : new Promise((resolve) => out.once("drain", resolve));
}

function endStream(out: Writable): Promise<void> {
  return new Promise((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
}
