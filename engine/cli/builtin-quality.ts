/**
 * `run --quality-model builtin` (the default of a run on the built-in simulator at a paced speed):
 * a quality model trained on the batch simulator's own batches — 600 batches of seed 7, 4 lines,
 * `quality train`'s defaults with seed 1 (a few seconds) — on first start, and cached in the cache
 * folder (LINEWATCH_CACHE_DIR, else $XDG_CACHE_HOME/linewatch, else ~/.cache/linewatch, as the
 * built-in failure model) under a name keyed by the SHA-256 of the settings and of the simulator's
 * and trainer's code, so a change to either trains anew. The same settings write the same bytes.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { BatchSimulator } from "../../connectors/sim/mod.js";
import type { ProcessRecord, QualityRecord } from "../../operators/quality/mod.js";
import { batchHistories } from "../../operators/quality/training/quality-dataset.js";
import { encodeQualityModel } from "../../operators/quality/training/quality-onnx.js";
import { DEFAULT_QUALITY_TRAIN_OPTIONS, trainQualityModel } from "../../operators/quality/training/quality-train.js";

export const BUILTIN_QUALITY_MODEL = "builtin";

const SETTINGS = Object.freeze({ simulator: { seed: 7, batches: 600, lines: 4 }, train: { ...DEFAULT_QUALITY_TRAIN_OPTIONS, seed: 1 } });

/** Files whose code decides the model's bytes (relative to this file). */
const CODE = [
  "../../connectors/sim/batch-simulator",
  "../../operators/quality/batch-features",
  "../../operators/quality/training/quality-dataset",
  "../../operators/quality/training/quality-train",
  "../../operators/quality/training/quality-onnx",
];

function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.LINEWATCH_CACHE_DIR) return env.LINEWATCH_CACHE_DIR;
  return join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "linewatch");
}

/** The built-in quality model's file: from the cache, else trained now and written there. */
export async function builtinQualityModelPath(note: (line: string) => void): Promise<string> {
  const hash = createHash("sha256").update(JSON.stringify(SETTINGS));
  const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
  for (const file of CODE) hash.update(await readFile(fileURLToPath(new URL(`${file}${ext}`, import.meta.url))));
  const dir = cacheDir();
  const path = join(dir, `quality-builtin-${hash.digest("hex").slice(0, 16)}.onnx`);
  try {
    await readFile(path);
    note(
      `linewatch run: quality predictions from the built-in quality model (${path}); --quality-model FILE replaces it, --no-quality-model turns it off`,
    );
    return path;
  } catch {
    // not cached yet: trained below
  }
  note(`linewatch run: training the built-in quality model on the batch simulator (600 batches; first start; cached in ${path}) …`);
  const started = performance.now();
  const bytes = trainBuiltin();
  await mkdir(dir, { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, bytes);
  await rename(tmp, path);
  note(`linewatch run: built-in quality model trained in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return path;
}

function trainBuiltin(): Uint8Array {
  const sim = new BatchSimulator(SETTINGS.simulator);
  const process: ProcessRecord[] = [];
  const quality: QualityRecord[] = [];
  for (let kind = sim.next(); kind !== null; kind = sim.next()) {
    // The simulator reuses its reading object: keep a copy.
    if (kind === "process") process.push(structuredClone(sim.reading));
    else quality.push(sim.outcome as QualityRecord);
  }
  const s = SETTINGS.simulator;
  const trained = trainQualityModel(
    batchHistories(process, quality),
    SETTINGS.train,
    `built-in batch simulator (${s.batches} batches, seed ${s.seed}, ${s.lines} lines)`,
  );
  return encodeQualityModel(trained.spec);
}
