/**
 * The isolation forest's drift watch, in process (`node dist/bench/iforest-drift-bench.js
 * [--records n] [--block b] [--evaluate-every k] [--workers n]`): the real kernels (rolling W = 16 → iforest on (value,
 * std)) inline on this thread over a seeded stream of 4 interleaved keys, i.i.d. N(50, 5²), the
 * forest trained with its reference histograms on the same process (another seed); each chunk's
 * iforest rows go to IforestDriftFeed → ModelDriftWatch.observeRow as on the main-thread job.
 *
 * Prints, from one run, side by side: this thread's CPU µs per record with the watch and without
 * it (the same stream, alternating phases), the watch's own µs per record (its calls alone over
 * the rows of one run: per-chunk timing is below the resolution of /proc's thread CPU time), and
 * — for an unshifted and a +1σ-shifted stream — the model_drift episodes, which rules, and after
 * how many readings. The test (test/iforest-drift.test.ts) runs the same stream.
 */
import { pathToFileURL } from "node:url";
import { allocateBatch, appendRecord, SeededRandom, StreamEngine } from "../engine/core/mod.js";
import { DEFAULT_MODEL_DRIFT, IforestDriftFeed, ModelDriftWatch, type ModelDriftOptions } from "../engine/jobs/mod.js";
import { iforestAnalysis, type IsolationForestModel } from "../operators/iforest/mod.js";
import { trainIsolationForest } from "../operators/iforest/training/train.js";
import { rollingAnalysis } from "../operators/rolling/mod.js";
import type { AlertEpisodeEvent } from "../operators/spc/mod.js";
import { benchMachine, machineLine, threadCpuMicros } from "./bench-kit.js";

export const DRIFT_STREAM_KEYS = 4;
export const DRIFT_STREAM_WINDOW = 16;

/** Reading i of the stream: key i mod 4, N(50, 5²) from the seed, + `shift` from reading `shiftAt` on. */
export function driftStreamValues(seed: number, n: number, shift = 0, shiftAt = n): Float64Array {
  const rng = new SeededRandom(seed);
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = 50 + 5 * rng.normal() + (i >= shiftAt ? shift : 0);
  return values;
}

/** A forest on (value, sample std of the key's last 16 readings) of an unshifted stream, with reference histograms. */
export function driftStreamForest(seed = 7, n = 40_000): IsolationForestModel {
  const v = driftStreamValues(seed, n);
  const k = DRIFT_STREAM_KEYS;
  const w = DRIFT_STREAM_WINDOW;
  const out: number[] = [];
  for (let i = (w - 1) * k; i < n; i++) {
    let s = 0;
    let s2 = 0;
    for (let j = 0; j < w; j++) s += v[i - j * k];
    for (let j = 0; j < w; j++) s2 += (v[i - j * k] - s / w) ** 2;
    out.push(v[i], Math.sqrt(s2 / (w - 1)));
  }
  return trainIsolationForest(
    { values: Float64Array.from(out), rows: out.length / 2, columns: 2, names: ["value", "std"] },
    { trees: 50, sampleSize: 256, seed: 1 },
  );
}

export interface DriftStreamResult {
  records: number;
  /** This thread's CPU over the run, µs. */
  cpuMicros: number;
  episodes: AlertEpisodeEvent[];
  drift: ModelDriftWatch | null;
}

/** The stream through rolling → iforest inline, every row to the watch when `watch` (else none). */
export async function runDriftStream(
  model: IsolationForestModel,
  values: Float64Array,
  watch: boolean,
  options: Readonly<ModelDriftOptions> = DEFAULT_MODEL_DRIFT,
  /** A model swapped in before the batch holding reading `at` (rounded down to a batch of 4096). */
  swap?: { at: number; model: IsolationForestModel },
  /** Kernel threads; 0: inline on this thread. */
  workers = 0,
  /** Filled with a copy of every chunk's iforest rows and times (for timing the watch alone). */
  capture?: Array<{ rows: Float64Array; times: Float64Array }>,
): Promise<DriftStreamResult> {
  const episodes: AlertEpisodeEvent[] = [];
  const drift = watch ? new ModelDriftWatch({ options, route: (e) => episodes.push(structuredClone(e)), truth: false }) : null;
  const rolling = rollingAnalysis({ window: { kind: "count", records: DRIFT_STREAM_WINDOW }, alpha: 0.2, timeScale: 1 });
  const forest = iforestAnalysis({ model, features: ["value", "std"], rollingIndex: 0 });
  const feed = drift === null ? null : new IforestDriftFeed(drift, forest.featureCount, (g) => forest.modelAt(g));
  feed?.models(0, [forest.modelAt(0)]);
  const fields = forest.featureCount + 2;
  const engine = new StreamEngine(
    {
      kernels: [rolling.kernel, forest.kernel],
      workers,
      groups: 1,
      keysMax: 16,
      batchRecordsMax: 4096,
      lateness: null,
      reorderRecordsPerKeyMax: 1,
    },
    {
      onOutput(chunk) {
        forest.observeChunk?.(chunk, 1, () => "");
        capture?.push({ rows: chunk.outs[1].slice(0, chunk.length * fields), times: chunk.times.slice(0, chunk.length) });
        if (feed === null) return;
        const rows = chunk.outs[1];
        for (let i = 0; i < chunk.length; i++) feed.observe(rows, i * fields, chunk.times[i]);
      },
    },
  );
  const ids = Array.from({ length: DRIFT_STREAM_KEYS }, (_, k) => engine.internKey(`M-001/s${k}`));
  const cpu0 = threadCpuMicros();
  for (let from = 0; from < values.length; from += 4096) {
    const to = Math.min(values.length, from + 4096);
    if (swap !== undefined && from <= swap.at && swap.at < to) await forest.swapModel(engine, swap.model);
    const batch = allocateBatch(to - from);
    for (let i = from; i < to; i++) appendRecord(batch, ids[i % DRIFT_STREAM_KEYS], i, values[i], i);
    await engine.push(batch);
  }
  await engine.flush(true);
  const cpuMicros = threadCpuMicros() - cpu0;
  await engine.close();
  return { records: values.length, cpuMicros, episodes, drift };
}

/** CPU µs per record of IforestDriftFeed → ModelDriftWatch alone, over the iforest rows of one run (three passes, the best). */
async function watchAlone(model: IsolationForestModel, values: Float64Array, options: Readonly<ModelDriftOptions>): Promise<number> {
  const chunks: Array<{ rows: Float64Array; times: Float64Array }> = [];
  await runDriftStream(model, values, false, options, undefined, 0, chunks);
  const fields = 4;
  let best = Number.POSITIVE_INFINITY;
  for (let pass = 0; pass < 3; pass++) {
    const drift = new ModelDriftWatch({ options, route: () => {}, truth: false });
    const feed = new IforestDriftFeed(drift, 2);
    feed.models(0, [model]);
    const t = threadCpuMicros();
    for (const c of chunks) for (let i = 0; i < c.times.length; i++) feed.observe(c.rows, i * fields, c.times[i]);
    best = Math.min(best, (threadCpuMicros() - t) / values.length);
  }
  return best;
}

/** Readings from the shift to the first event naming `rule` (null: none). */
function after(episodes: readonly AlertEpisodeEvent[], rule: string, shiftAt: number): number | null {
  const e = episodes.find((x) => x.rules.includes(rule));
  // The event's last point: where that rule fired (the events are copies: the watch keeps updating its episode).
  return e === undefined ? null : (e.points.at(-1)?.position ?? 0) - shiftAt;
}

async function main(argv: string[]): Promise<void> {
  const arg = (name: string, d: number) => {
    const i = argv.indexOf(name);
    return i < 0 ? d : Number(argv[i + 1]);
  };
  const records = arg("--records", 1_000_000);
  const block = arg("--block", DEFAULT_MODEL_DRIFT.scoreBlock);
  // The forest's PSI evaluation interval (ModelDriftOptions.scoredEvaluateEvery).
  const evaluateEvery = arg("--evaluate-every", DEFAULT_MODEL_DRIFT.scoredEvaluateEvery);
  const options = { ...DEFAULT_MODEL_DRIFT, scoredEvaluateEvery: evaluateEvery, scoreBlock: block };
  const model = driftStreamForest();
  const plain = driftStreamValues(11, records);
  process.stdout.write(`${machineLine(benchMachine())}\n`);
  // Cost: alternating phases over the same stream, two of each.
  const workers = arg("--workers", 0);
  const cost = { with: 0, without: 0, n: 0 };
  for (let round = 0; round < 2; round++) {
    const off = await runDriftStream(model, plain, false, options, undefined, workers);
    const on = await runDriftStream(model, plain, true, options, undefined, workers);
    cost.without += off.cpuMicros;
    cost.with += on.cpuMicros;
    cost.n += records;
  }
  const per = (x: number) => (x / cost.n).toFixed(3);
  process.stdout.write(
    `cpu µs/record on this thread (${workers === 0 ? "kernels inline" : `kernels on ${workers} worker thread(s)`}): without the watch ${per(cost.without)}, with ${per(cost.with)} (ratio ${(cost.with / cost.without).toFixed(3)})\n`,
  );
  process.stdout.write(`the watch alone over the rows of one run, µs/record: ${(await watchAlone(model, plain, options)).toFixed(3)}\n`);
  const unshifted = await runDriftStream(model, plain, true, options);
  process.stdout.write(
    `unshifted ${records} readings, scoreBlock ${block}: ${unshifted.episodes.length} episode events ${JSON.stringify(unshifted.episodes.map((e) => e.description))}\n`,
  );
  const shiftAt = Math.floor(records / 2);
  const shifted = await runDriftStream(model, driftStreamValues(12, records, 5, shiftAt), true, options);
  process.stdout.write(
    `value +1σ at reading ${shiftAt}: ${new Set(shifted.episodes.map((e) => e.episode_id)).size} episode(s), rules ${JSON.stringify(shifted.episodes.at(-1)?.rules ?? [])}; value after ${after(shifted.episodes, "value", shiftAt)} readings, score after ${after(shifted.episodes, "score", shiftAt)}, std ${after(shifted.episodes, "std", shiftAt)}\n`,
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  });
}
