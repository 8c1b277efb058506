/** Runs a drift-triggered retraining (engine/jobs/retrain.ts) on a worker thread (retrain-worker.ts), off the stream's thread. */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { ConfigError, packageRoot } from "../core/mod.js";
import type { RetrainRequest, RetrainResult } from "../jobs/mod.js";

export function retrainOnWorker(request: RetrainRequest): Promise<RetrainResult> {
  const root = packageRoot(import.meta.url);
  const script = root === null ? "" : join(root, "dist", "engine", "cli", "retrain-worker.js");
  if (root === null || !existsSync(script))
    throw new ConfigError("--retrain-on-drift", `${script || "dist/"} not found: run \`npm run build\` first`);
  return new Promise((resolve, reject) => {
    const worker = new Worker(script, { workerData: request });
    worker.once("message", (m: { result?: RetrainResult; error?: string }) => {
      if (m.result !== undefined) resolve({ ...m.result, bytes: new Uint8Array(m.result.bytes) });
      else reject(new Error(m.error ?? "the retraining worker gave no result"));
    });
    worker.once("error", reject);
    worker.once("exit", (code) => {
      if (code !== 0) reject(new Error(`the retraining worker exited with code ${code}`));
    });
  });
}
