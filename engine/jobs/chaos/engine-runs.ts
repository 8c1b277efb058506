/** Lives of `linewatch run` under the harness: when one is consuming, and one run to the stream's end. */
import type { CliProcess, RssWatch } from "./engine-process.js";
import { type ChaosEnv, waitFor } from "./env.js";

export const RUN_TIMEOUT_MS = 300_000;

/** Runs a fresh engine on `site` until it has consumed the whole stream, then stops it cleanly: its exit code. */
export function runToEnd(env: ChaosEnv, site: string, stream: string, db: string, rss?: RssWatch): Promise<number | null> {
  const run = env.startRun(site, stream, db);
  rss?.watch(run);
  return finishRun(env, run, site, stream, rss);
}

/** Waits until `run` has consumed the whole stream, then stops it cleanly: its exit code. */
export async function finishRun(env: ChaosEnv, run: CliProcess, site: string, stream: string, rss?: RssWatch): Promise<number | null> {
  // Consuming first: a stream already consumed by an earlier life is "all acknowledged" before this one has started.
  const done = await waitFor(async () => consuming(run) && (await env.consumedAll(stream, site)), RUN_TIMEOUT_MS, 200);
  rss?.sample();
  const code = await run.stop();
  if (!done) throw new Error(`${site}: the stream was not consumed in ${RUN_TIMEOUT_MS / 1000} s\n${run.output()}`);
  return code;
}

/** Whether the run has said it consumes (its subscriptions are up and its signal handlers set). */
export const consuming = (run: CliProcess): boolean => {
  // Latched: the kept output is the last 64 KiB, which a chatty life could scroll the line out of.
  if (!saidConsuming.has(run) && run.output().includes("linewatch run: consuming")) saidConsuming.add(run);
  return saidConsuming.has(run);
};
const saidConsuming = new WeakSet<CliProcess>();
