/**
 * kill -9 of the engine at random points, N cycles, restarted each time, against an
 * uninterrupted run over the same records (the alert-episode kill test's method, made a figure):
 * every acknowledged record has one score row and one reading row after FINAL, every score row
 * (EWMA, SPC limits, zones, masks, CUSUM of every key at every record) and every alert episode
 * equals the uninterrupted run's, and the recovery time is how long from a kill until the restarted
 * engine's consumer acknowledges again.
 */
import { SeededRandom } from "../../core/mod.js";
import { type ChaosEnv, chaosSimulator, sleep, waitFor } from "./env.js";
import { consuming, RUN_TIMEOUT_MS, runToEnd } from "./engine-runs.js";
import { type CliProcess, RssWatch } from "./engine-process.js";
import { diffCount, diffKeyedRows, reconcileSequences, sequenceRange } from "./reconcile.js";
import { type ChaosRow, verdictOf } from "./table.js";

export interface KillRestartOptions {
  cycles: number;
  /** Records per second published while the engine is killed and restarted. */
  rate: number;
  records: number;
  seed: number;
  /** A kill lands this long after the restarted engine acknowledges again, uniformly, ms. */
  killAfterMs: readonly [number, number];
  log: (line: string) => void;
}

interface KillCycles {
  recoveries: number[];
  crashes: number;
  notes: string[];
}

/** The kill cycles on `site` while `publishing` runs: start, wait for progress, wait a random time, SIGKILL. */
async function killCycles(
  env: ChaosEnv,
  site: string,
  stream: string,
  db: string,
  o: KillRestartOptions,
  rss: RssWatch,
): Promise<KillCycles> {
  const random = new SeededRandom(o.seed);
  const out: KillCycles = { recoveries: [], crashes: 0, notes: [] };
  let floorAtKill = 0;
  let killedAt: number | null = null;
  for (let cycle = 1; cycle <= o.cycles; cycle++) {
    const run: CliProcess = env.startRun(site, stream, db);
    rss.watch(run);
    const resumed = await waitFor(
      async () => consuming(run) && ((await env.ackFloor(stream, site)) > floorAtKill || (await env.consumedAll(stream, site))),
      RUN_TIMEOUT_MS,
      20,
    );
    if (!resumed) out.notes.push(`cycle ${cycle}: no acknowledgement in ${RUN_TIMEOUT_MS / 1000} s`);
    if (killedAt !== null && resumed) out.recoveries.push(Date.now() - killedAt);
    await sleep(random.uniform(o.killAfterMs[0], o.killAfterMs[1]));
    rss.sample();
    const alive = run.child.exitCode === null && run.child.signalCode === null;
    run.child.kill("SIGKILL");
    killedAt = Date.now();
    const code = await run.exited;
    floorAtKill = await env.ackFloor(stream, site);
    if (!alive || code !== null) {
      out.crashes++;
      out.notes.push(`cycle ${cycle}: the engine ended on its own (exit ${code}): ${run.output().slice(-400)}`);
    }
    o.log(`kill -9 cycle ${cycle}/${o.cycles}: ack floor ${floorAtKill}`);
  }
  return out;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s[Math.floor((s.length - 1) / 2)];
};

export async function killRestartScenario(env: ChaosEnv, o: KillRestartOptions): Promise<ChaosRow> {
  const sim = chaosSimulator(o.seed, o.records);
  // The uninterrupted run: every record in its own stream first, then one life to its end.
  await env.createStream("CHAOSREF", "chaosref");
  await env.publish("chaosref", Number.POSITIVE_INFINITY, sim);
  o.log(`kill -9: uninterrupted reference run over ${o.records} records`);
  const refCode = await runToEnd(env, "chaosref", "CHAOSREF", "chaos_ref");
  // The killed run: the same records published at the stated load while it is killed and restarted.
  await env.createStream("CHAOSKILL", "chaoskill");
  const rss = new RssWatch();
  const published = env.publish("chaoskill", o.rate, sim);
  const cycles = await killCycles(env, "chaoskill", "CHAOSKILL", "chaos_kill", o, rss);
  await published;
  const lastCode = await runToEnd(env, "chaoskill", "CHAOSKILL", "chaos_kill", rss);
  rss.close();
  return killRestartRow(env, o, cycles, rss.peak, [refCode, lastCode]);
}

async function killRestartRow(
  env: ChaosEnv,
  o: KillRestartOptions,
  cycles: KillCycles,
  peakRss: number | null,
  cleanStops: readonly (number | null)[],
): Promise<ChaosRow> {
  const acked = await env.lastSeq("CHAOSKILL");
  const scores = reconcileSequences(sequenceRange(acked), await env.sequences("chaos_kill", "ml_scores"));
  const readings = reconcileSequences(sequenceRange(acked), await env.sequences("chaos_kill", "ml_sensor_data"));
  const reference = reconcileSequences(sequenceRange(await env.lastSeq("CHAOSREF")), await env.sequences("chaos_ref", "ml_scores"));
  const state = diffKeyedRows(await env.scoreLines("chaos_ref"), await env.scoreLines("chaos_kill"));
  const wantEpisodes = await env.episodeLines("chaos_ref");
  const episodes = diffKeyedRows(wantEpisodes, await env.episodeLines("chaos_kill"));
  const notes = [...cycles.notes];
  if (scores.lost + readings.lost > 0) notes.push(`lost sequences (first): ${[...scores.lostSample, ...readings.lostSample].join(", ")}`);
  if (scores.duplicated + readings.duplicated > 0)
    notes.push(`duplicated sequences (first): ${[...scores.duplicatedSample, ...readings.duplicatedSample].join(", ")}`);
  for (const s of state.sample) notes.push(`score row: ${s}`);
  for (const s of episodes.sample) notes.push(`episode: ${s}`);
  const badStops = cleanStops.filter((c) => c !== 0).length;
  if (badStops > 0) notes.push(`clean stops ending non-zero: ${cleanStops.join(", ")}`);
  const row: Omit<ChaosRow, "verdict"> = {
    scenario: "kill -9",
    load: `${o.rate} rec/s JetStream, ${o.records} records`,
    cycles: o.cycles,
    lost: scores.lost + readings.lost,
    duplicated: scores.duplicated + readings.duplicated,
    crashes: cycles.crashes + badStops,
    recoveryMs: cycles.recoveries.length === 0 ? null : Math.max(...cycles.recoveries),
    peakRssBytes: peakRss,
    mismatches: {
      "score rows unlike the uninterrupted run's": diffCount(state),
      "episodes unlike the uninterrupted run's": diffCount(episodes),
      "unexpected rows": scores.unexpected + readings.unexpected,
      "reference run lost": reference.lost + reference.duplicated,
    },
    figures: {
      "acked records": acked,
      "score rows": scores.found,
      episodes: wantEpisodes.size,
      "median recovery s": (median(cycles.recoveries) / 1000).toFixed(2),
    },
    notes,
  };
  return { ...row, verdict: verdictOf(row) };
}
