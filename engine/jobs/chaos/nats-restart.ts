/**
 * nats-server restarted (SIGTERM: JetStream flushes its store) while the engine works through a
 * backlog, then more records published after it is back: the stream must still hold every record
 * acknowledged to the publisher before the restart (JetStream lost nothing), the engine must resume
 * by itself (its client reconnects; no engine restart), and every acknowledged record must have
 * its rows after FINAL. Recovery: from the server answering again to the engine acknowledging again.
 */
import { RssWatch } from "./engine-process.js";
import { consuming, finishRun, RUN_TIMEOUT_MS } from "./engine-runs.js";
import { type ChaosEnv, chaosSimulator, waitFor } from "./env.js";
import { reconcileSequences, sequenceRange } from "./reconcile.js";
import { type ChaosRow, verdictOf } from "./table.js";

export interface NatsRestartOptions {
  /** Records in the backlog before the restart, and as many published after it. */
  records: number;
  /** Records per second published after the restart. */
  rate: number;
  seed: number;
  log: (line: string) => void;
}

export async function natsRestartScenario(env: ChaosEnv, o: NatsRestartOptions): Promise<ChaosRow> {
  const [site, stream, db] = ["chaosnats", "CHAOSNATS", "chaos_nats"];
  await env.createStream(stream, site);
  // A backlog now; after the restart as many records again, from a simulator starting where it ended and later.
  const sim = chaosSimulator(o.seed, 2 * o.records);
  const before = await env.publish(site, Number.POSITIVE_INFINITY, { ...sim, maxRecords: o.records });
  const storedBefore = await env.lastSeq(stream);
  const rss = new RssWatch();
  const run = env.startRun(site, stream, db);
  rss.watch(run);
  const notes: string[] = [];
  const underway = await waitFor(async () => consuming(run) && (await env.ackFloor(stream, site)) > 0, RUN_TIMEOUT_MS);
  if (!underway) throw new Error(`the run did not start consuming\n${run.output()}`);
  const floorAtStop = await env.ackFloor(stream, site);
  o.log(`nats-server restart at ack floor ${floorAtStop} of ${storedBefore}`);
  const stoppedAt = Date.now();
  await env.nats.restart();
  const backAt = Date.now();
  let floor = 0;
  const resumed = await waitFor(
    async () => (floor = await env.ackFloor(stream, site)) > floorAtStop || floor >= storedBefore,
    RUN_TIMEOUT_MS,
    50,
  );
  const recoveryMs = resumed ? Date.now() - backAt : null;
  if (!resumed) notes.push(`the engine did not acknowledge again in ${RUN_TIMEOUT_MS / 1000} s`);
  const storedAfterRestart = await env.lastSeq(stream);
  // The second half of the simulator's records, published at the stated load.
  const after = await env.publish(site, o.rate, { ...sim, startTime: (sim.startTime ?? 0) + o.records * 100, maxRecords: o.records });
  const crashed = run.child.exitCode !== null || run.child.signalCode !== null;
  if (crashed) notes.push(`the run ended after the restart: ${run.output().slice(-400)}`);
  const code = crashed ? null : await finishRun(env, run, site, stream, rss);
  rss.close();
  const acked = await env.lastSeq(stream);
  const scores = reconcileSequences(sequenceRange(acked), await env.sequences(db, "ml_scores"));
  const readings = reconcileSequences(sequenceRange(acked), await env.sequences(db, "ml_sensor_data"));
  if (scores.lost + readings.lost > 0) notes.push(`lost sequences (first): ${[...scores.lostSample, ...readings.lostSample].join(", ")}`);
  const jetStreamLost = Math.max(0, storedBefore - storedAfterRestart) + (before.readings + after.readings - acked);
  const row: Omit<ChaosRow, "verdict"> = {
    scenario: "nats-server restart",
    load: `backlog ${o.records}, then ${o.records} at ${o.rate} rec/s JetStream`,
    cycles: 1,
    lost: scores.lost + readings.lost + jetStreamLost,
    duplicated: scores.duplicated + readings.duplicated,
    crashes: crashed || code !== 0 ? 1 : 0,
    recoveryMs,
    peakRssBytes: rss.peak,
    mismatches: { "unexpected rows": scores.unexpected + readings.unexpected, "did not resume": resumed ? 0 : 1 },
    figures: {
      "server away s": ((backAt - stoppedAt) / 1000).toFixed(1),
      "JetStream records lost": jetStreamLost,
      "acked records": acked,
    },
    notes,
  };
  return { ...row, verdict: verdictOf(row) };
}
