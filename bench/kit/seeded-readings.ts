/**
 * Seeded readings through an in-thread StreamEngine, as the one-thread benches drive it
 * (audit-bench, clickhouse-rows-ab, alert-ab): named keys interleaved, a random walk per key
 * plus normal noise, 100 ms apart per key, pushed in batches of 4096.
 */
import { allocateBatch, type OutputChunk, SeededRandom, StreamEngine, type StreamKernel } from "../../engine/core/mod.js";

export interface BenchEngineOptions {
  kernels: readonly StreamKernel[];
  /** The keys' names, interned in this order (key id = index). */
  keyNames: readonly string[];
  groups: number;
  /** Records per kernel call (the chunks onOutput sees hold at most this many). */
  chunkRecords: number;
  onOutput: (chunk: OutputChunk) => void;
}

/** An engine without workers, reordering or lateness, its keys interned: ids are the names' indices. */
export function benchEngine(o: BenchEngineOptions): StreamEngine {
  const engine = new StreamEngine(
    {
      kernels: o.kernels,
      workers: 0,
      groups: o.groups,
      keysMax: o.keyNames.length,
      batchRecordsMax: o.chunkRecords,
      lateness: null,
      reorderRecordsPerKeyMax: 1,
    },
    { onOutput: o.onOutput },
  );
  for (const name of o.keyNames) engine.internKey(name);
  return engine;
}

export interface RandomWalkOptions {
  records: number;
  seed: number;
  /** A level step of 3 on the reading whose index is a multiple of this (0: none). */
  stepEvery?: number;
}

/**
 * `records` readings of the engine's keys interleaved (reading i: key i mod keys), level 50 plus a
 * random walk of step sd 0.05 plus noise of sd 1; then flushed and closed.
 */
export async function pushRandomWalk(engine: StreamEngine, keys: number, o: RandomWalkOptions): Promise<void> {
  const rng = new SeededRandom(o.seed);
  const batch = allocateBatch(4096);
  const level = new Float64Array(keys).fill(50);
  const stepEvery = o.stepEvery ?? 0;
  for (let i = 0; i < o.records; ) {
    batch.length = 0;
    for (; batch.length < 4096 && i < o.records; i++) {
      const k = i % keys;
      level[k] += 0.05 * rng.normal() + (stepEvery > 0 && i % stepEvery === 0 ? 3 : 0);
      batch.keyIds[batch.length] = k;
      batch.times[batch.length] = 1_700_000_000_000 + Math.floor(i / keys) * 100;
      batch.values[batch.length] = level[k] + rng.normal();
      batch.positions[batch.length] = i;
      batch.length++;
    }
    await engine.push(batch);
  }
  await engine.flush(true);
  await engine.close();
}

/** A chunk's first `length` rows in arrays of their own (the engine reuses its buffers), with `payload` as its payload. */
export function copyChunk(c: OutputChunk, payload: Uint8Array): OutputChunk {
  const n = c.length;
  return {
    ...c,
    keyIds: c.keyIds.slice(0, n),
    times: c.times.slice(0, n),
    values: c.values.slice(0, n),
    positions: c.positions.slice(0, n),
    flags: c.flags.slice(0, n),
    outs: c.outs.map((o, k) => o.slice(0, n * c.outFields[k])),
    payload,
  };
}
