/**
 * The SPC alert path of two builds side by side (`node dist/bench/alert-ab.js <before-root>
 * [--rounds n]`, where <before-root> is a copy of the package with its dist/, e.g. made with
 * `cp -r dist build package.json` and node_modules linked): what an ingest worker does with a
 * finished chunk's SPC rows — the episode tracker's chunk pass (`spcAnalysis.observeChunk`) with an
 * `AlertEncoder` as its sink, the events taken every four chunks (a frame of 4096 readings) —
 * and what the main thread does with them (`AlertDecoder`), thread CPU ns per row, the builds
 * alternately (before, after, after, before, …), the median of each and their ratio.
 *
 * The rows are this build's SPC kernel's, through a StreamEngine of one group without workers:
 * 48 keys (the e2e bench's 8 machines × 6 sensors) interleaved, chunks of 1024, normal noise with
 * now and then a burst — a mean shift or wide noise — on a key, so that episodes open, update
 * and close. Each chunk's rows are copied into one buffer before the pass, as a kernel leaves
 * them (in cache; the copy's own time, measured beside each pass, is taken off). Before timing, both builds' events are decoded and compared as JSON: a
 * difference exits with 1.
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { allocateBatch, type OutputChunk, packageRoot, SeededRandom } from "../engine/core/mod.js";
import { DEFAULT_SPC_PARAMS, SPC_OUT_FIELDS, spcKernel } from "../operators/spc/mod.js";
import { benchMachine, machineLine, median, threadCpuMicros } from "./bench-kit.js";
import { benchEngine } from "./kit/seeded-readings.js";

const KEYS = 48;
const CHUNK = 1024;
const ROWS = 400 * CHUNK;
const SENSORS = ["temperature", "vibration", "pressure", "motor_current", "line_speed", "humidity"];

/** A captured chunk: what observeChunk reads. */
interface Chunk {
  keyIds: Uint32Array;
  positions: Float64Array;
  times: Float64Array;
  values: Float64Array;
  rows: Float64Array;
  events: Uint32Array;
}

type SpcModule = typeof import("../operators/spc/mod.js");

/** The kernel's rows and event lists for ROWS readings of KEYS keys. */
async function stageChunks(): Promise<{ chunks: Chunk[]; names: string[] }> {
  const chunks: Chunk[] = [];
  const names = Array.from({ length: KEYS }, (_, k) => `M-${String(1 + Math.floor(k / 6)).padStart(3, "0")}/${SENSORS[k % 6]}`);
  const engine = benchEngine({
    kernels: [spcKernel({ params: DEFAULT_SPC_PARAMS })],
    keyNames: names,
    groups: 1,
    chunkRecords: CHUNK,
    onOutput: (c) => chunks.push(capture(c)),
  });
  const rng = new SeededRandom(13);
  const burst = new Int32Array(KEYS);
  const shift = new Float64Array(KEYS);
  const batch = allocateBatch(4096);
  for (let i = 0; i < ROWS; i++) {
    const k = i % KEYS;
    if (burst[k] === 0 && rng.below(400) === 0) {
      burst[k] = 10 + rng.below(40);
      shift[k] = rng.below(2) === 0 ? 2 + 2 * rng.next() : 0;
    }
    const wide = burst[k] > 0 && shift[k] === 0 ? 3 : 1;
    if (burst[k] > 0) burst[k]--;
    const at = batch.length++;
    batch.keyIds[at] = k;
    batch.times[at] = 1_767_225_600_000 + Math.floor(i / KEYS) * 100;
    batch.values[at] = 50 + wide * rng.normal() + (burst[k] > 0 ? shift[k] : 0);
    batch.positions[at] = i;
    if (batch.length === 4096) {
      await engine.push(batch);
      batch.length = 0;
    }
  }
  await engine.close();
  return { chunks, names };
}

function capture(c: OutputChunk): Chunk {
  const n = c.length;
  return {
    keyIds: c.keyIds.slice(0, n),
    positions: c.positions.slice(0, n),
    times: c.times.slice(0, n),
    values: c.values.slice(0, n),
    rows: c.outs[0].slice(0, n * SPC_OUT_FIELDS),
    events: (c.events[0] as Uint32Array).slice(),
  };
}

/**
 * One pass of a build over the chunks: thread CPU µs of the worker's part (each chunk's rows
 * copied into `scratch` included: {@link copyPass} is that alone) and of the decoding, and the events.
 */
function pass(m: SpcModule, chunks: readonly Chunk[], names: readonly string[], scratch: Float64Array) {
  const encoder = new m.AlertEncoder(true);
  const spc = m.spcAnalysis({
    params: { ...DEFAULT_SPC_PARAMS },
    ewmaField: "spc_ewma",
    keyParts: ["machine_id", "sensor_type"],
    alertSink: encoder,
  });
  const keyName = (id: number): string => names[id];
  const views = chunks.map((c) => ({
    ...c,
    group: 0,
    length: c.keyIds.length,
    flags: new Uint8Array(0),
    outs: [scratch],
    outFields: [SPC_OUT_FIELDS],
    payload: new Uint8Array(0),
    events: [c.events],
  }));
  const taken = [];
  const t0 = threadCpuMicros();
  for (let ci = 0; ci < chunks.length; ci++) {
    scratch.set(chunks[ci].rows);
    spc.observeChunk?.(views[ci], 0, keyName);
    const t = (ci & 3) === 3 || ci === chunks.length - 1 ? encoder.take() : null;
    if (t !== null) taken.push(t);
  }
  const worker = threadCpuMicros() - t0;
  const decoder = new m.AlertDecoder();
  const t1 = threadCpuMicros();
  const events = taken.flatMap((t) => decoder.decode(t));
  return { worker, main: threadCpuMicros() - t1, events };
}

/** Thread CPU µs of copying each chunk's rows into `scratch` (the part of {@link pass} that is not the alert path). */
function copyPass(chunks: readonly Chunk[], scratch: Float64Array): number {
  const t0 = threadCpuMicros();
  for (const c of chunks) scratch.set(c.rows);
  return threadCpuMicros() - t0;
}

/** A line of the report. */
function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const beforeRoot = args[0];
  if (beforeRoot === undefined) throw new Error("usage: node dist/bench/alert-ab.js <before-root> [--rounds n]");
  const rounds = args[1] === "--rounds" ? Number(args[2]) : 15;
  const root = packageRoot(import.meta.url) as string;
  const load = (r: string): Promise<SpcModule> => import(pathToFileURL(join(r, "dist/operators/spc/mod.js")).href);
  const builds = { before: await load(beforeRoot), after: await load(root) };
  const { chunks, names } = await stageChunks();
  const scratch = new Float64Array(CHUNK * SPC_OUT_FIELDS);
  const a = pass(builds.before, chunks, names, scratch);
  const b = pass(builds.after, chunks, names, scratch);
  if (JSON.stringify(a.events) !== JSON.stringify(b.events)) {
    out(`the builds' events differ (${a.events.length} before, ${b.events.length} after)`);
    process.exit(1);
  }
  const loud = a.events.length;
  out(machineLine(benchMachine()));
  out(`${chunks.length} chunks, ${ROWS} rows of ${KEYS} keys, ${loud} events (the same in both builds); ${rounds} rounds each, thread CPU`);
  const t = { before: { worker: [] as number[], main: [] as number[] }, after: { worker: [] as number[], main: [] as number[] } };
  for (let r = 0; r < rounds; r++)
    for (const which of r % 2 === 0 ? (["before", "after"] as const) : (["after", "before"] as const)) {
      const x = pass(builds[which], chunks, names, scratch);
      t[which].worker.push((1000 * (x.worker - copyPass(chunks, scratch))) / ROWS);
      t[which].main.push((1000 * x.main) / ROWS);
    }
  for (const part of ["worker", "main"] as const) {
    const before = median(t.before[part]);
    const after = median(t.after[part]);
    const what = part === "worker" ? "tracker + encoder (worker)" : "decoder (main thread)";
    out(
      `${what.padEnd(28)} before ${before.toFixed(1)} ns/row   after ${after.toFixed(1)} ns/row   after/before ${(after / before).toFixed(3)}`,
    );
  }
}

await main();
