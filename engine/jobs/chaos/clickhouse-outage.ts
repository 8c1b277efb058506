/**
 * ClickHouse down under load, stopped with SIGKILL (18.16 goes on accepting inserts for about
 * 17 s after a SIGTERM, so a SIGTERM outage can miss its own window): while it is away the run
 * acknowledges records only once their rows are spilled to disk, so the consumer's progress
 * during the outage is the ingest rate while spilling; the spill's size on disk is sampled; after
 * the restart the spill drains and every acknowledged record must have its rows after FINAL.
 */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { RssWatch } from "./engine-process.js";
import { consuming, finishRun, RUN_TIMEOUT_MS } from "./engine-runs.js";
import { type ChaosEnv, chaosSimulator, sleep, waitFor } from "./env.js";
import { reconcileSequences, sequenceRange } from "./reconcile.js";
import { type ChaosRow, verdictOf } from "./table.js";

export interface ClickHouseOutageOptions {
  outageMs: number;
  /** Load before and after the outage, ms (default 10 s each). */
  warmMs?: number;
  afterMs?: number;
  /** Records per second published. */
  rate: number;
  seed: number;
  log: (line: string) => void;
}

/** Load before the outage (its second half measures the ingest rate with ClickHouse up) and after it, ms. */
const WARM_MS = 10_000;
const AFTER_MS = 10_000;

/** Bytes of every file under `dir` (0 when it is missing). */
export function directoryBytes(dir: string): number {
  let total = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    const path = join(dir, name);
    try {
      const s = statSync(path);
      total += s.isDirectory() ? directoryBytes(path) : s.size;
    } catch {
      // Drained (unlinked) between the listing and the stat.
    }
  }
  return total;
}

interface OutageFigures {
  /** From the kill until it answers again. */
  awayMs: number;
  /** From the kill until the ack floor was read before the restart: the window of the spilling rate. */
  spillingMs: number;
  ackedWhileAway: number;
  spillPeakBytes: number;
  drainMs: number | null;
}

/** Kills ClickHouse for `outageMs`, sampling the spill and the consumer; then waits for the spill to drain. */
async function outage(
  env: ChaosEnv,
  o: ClickHouseOutageOptions,
  stream: string,
  site: string,
  spillDir: string,
  rss: RssWatch,
): Promise<OutageFigures> {
  let spillPeakBytes = 0;
  let ticks = 0;
  const sampler = setInterval(() => {
    const bytes = directoryBytes(spillDir);
    spillPeakBytes = Math.max(spillPeakBytes, bytes);
    rss.sample();
    // A timeline each second: where the ingest rate goes while spilling.
    if (++ticks % 4 === 0)
      void env
        .ackFloor(stream, site)
        .then((floor) => o.log(`  t ${(ticks / 4).toFixed(0)} s: ack floor ${floor}, spill ${(bytes / 2 ** 20).toFixed(2)} MiB`));
  }, 250);
  try {
    const floorBefore = await env.ackFloor(stream, site);
    let floorAtEnd = floorBefore;
    o.log(`ClickHouse SIGKILLed for ${o.outageMs / 1000} s at ack floor ${floorBefore}`);
    const killedAt = Date.now();
    let spillingMs = o.outageMs;
    const awayMs = await env.clickhouse.outage(
      o.outageMs,
      async () => {
        floorAtEnd = await env.ackFloor(stream, site);
        spillingMs = Date.now() - killedAt;
        spillPeakBytes = Math.max(spillPeakBytes, directoryBytes(spillDir));
      },
      "SIGKILL",
    );
    const backAt = Date.now();
    o.log(`ClickHouse back after ${(awayMs / 1000).toFixed(1)} s; ${floorAtEnd - floorBefore} records acknowledged while away`);
    const drained = await waitFor(() => directoryBytes(spillDir) === 0, RUN_TIMEOUT_MS, 100);
    return { awayMs, spillingMs, ackedWhileAway: floorAtEnd - floorBefore, spillPeakBytes, drainMs: drained ? Date.now() - backAt : null };
  } finally {
    clearInterval(sampler);
  }
}

export async function clickhouseOutageScenario(env: ChaosEnv, o: ClickHouseOutageOptions): Promise<ChaosRow> {
  const [site, stream, db] = ["chaosch", "CHAOSCH", "chaos_ch"];
  const [warmMs, afterMs] = [o.warmMs ?? WARM_MS, o.afterMs ?? AFTER_MS];
  const records = Math.round((o.rate * (warmMs + o.outageMs + afterMs)) / 1000);
  await env.createStream(stream, site);
  const rss = new RssWatch();
  const run = env.startRun(site, stream, db);
  rss.watch(run);
  const notes: string[] = [];
  if (!(await waitFor(() => consuming(run), RUN_TIMEOUT_MS))) throw new Error(`the run did not start consuming\n${run.output()}`);
  const published = env.publish(site, o.rate, chaosSimulator(o.seed, records));
  // The ingest rate with ClickHouse up, over the warm-up's second half (the first has the engine's start).
  await sleep(warmMs / 2);
  const upFrom = { floor: await env.ackFloor(stream, site), at: Date.now() };
  await sleep(warmMs / 2);
  const upRate = ((await env.ackFloor(stream, site)) - upFrom.floor) / ((Date.now() - upFrom.at) / 1000);
  const f = await outage(env, o, stream, site, join(env.dir, `spill-${db}`), rss);
  await published;
  const crashed = run.child.exitCode !== null || run.child.signalCode !== null;
  if (crashed) notes.push(`the run ended during the outage: ${run.output().slice(-400)}`);
  const code = crashed ? null : await finishRun(env, run, site, stream, rss);
  rss.close();
  const acked = await env.lastSeq(stream);
  const scores = reconcileSequences(sequenceRange(acked), await env.sequences(db, "ml_scores"));
  const readings = reconcileSequences(sequenceRange(acked), await env.sequences(db, "ml_sensor_data"));
  if (scores.lost + readings.lost > 0) notes.push(`lost sequences (first): ${[...scores.lostSample, ...readings.lostSample].join(", ")}`);
  if (f.drainMs === null) notes.push("the spill did not drain");
  if (f.ackedWhileAway === 0) notes.push("nothing acknowledged while ClickHouse was away: the spill was not exercised");
  const spillRate = f.ackedWhileAway / (f.spillingMs / 1000);
  const row: Omit<ChaosRow, "verdict"> = {
    scenario: "ClickHouse down (SIGKILL)",
    load: `${o.rate} rec/s JetStream, ${records} records`,
    cycles: 1,
    lost: scores.lost + readings.lost,
    duplicated: scores.duplicated + readings.duplicated,
    crashes: crashed || code !== 0 ? 1 : 0,
    recoveryMs: f.drainMs,
    peakRssBytes: rss.peak,
    mismatches: { "unexpected rows": scores.unexpected + readings.unexpected, "spill not drained": f.drainMs === null ? 1 : 0 },
    figures: {
      "away s": (f.awayMs / 1000).toFixed(1),
      "records spilled (acked while away)": f.ackedWhileAway,
      "spill peak MiB": (f.spillPeakBytes / 2 ** 20).toFixed(1),
      "ingest rate while spilling rec/s": Math.round(spillRate),
      "ingest rate with ClickHouse up rec/s": Math.round(upRate),
      "acked records": acked,
    },
    notes,
  };
  return { ...row, verdict: verdictOf(row) };
}
