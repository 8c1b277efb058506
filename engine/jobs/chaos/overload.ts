/**
 * 10× overload, on JetStream and on core NATS: a base load, ten times that for a stated time,
 * then the base load again. The base load is stated (`--rate`) or a quarter of the engine's
 * sustainable rate on that transport, measured first (so 10× base is 2.5× what the engine can
 * take, and back at base it has three quarters of its rate to catch up with): how fast it handles
 * a burst published as fast as the publisher can (a lower bound when the publisher is the slower).
 *
 * - JetStream: the stream holds what the engine cannot take yet, so nothing may be lost or
 *   duplicated (every record the stream stored has its rows after FINAL, as in the other scenarios).
 * - Core NATS is at-most-once: the engine sheds what it cannot hold, and must count it. Published
 *   = scored (rows in ml_scores FINAL) + shed + dead-lettered, as the engine's /metrics counts
 *   them (linewatch_nats_shed_total, linewatch_dead_letter_total): a difference is a record
 *   silently lost (a server-side slow-consumer cut, say).
 * - Recovery, both: from the overload's last record published until the engine has handled every
 *   record published up to then (JetStream: its consumer's ack floor reaches the stream's last
 *   sequence; core: scored + shed + dead-lettered reach the published count).
 * - Memory: the engine's peak RSS over the whole scenario must stay under {@link RSS_BOUND_BYTES}.
 */
import { request } from "node:http";
import { freePort } from "../../../connectors/local/mod.js";
import { publishCore } from "./core-publisher.js";
import { type CliProcess, RssWatch } from "./engine-process.js";
import { consuming, finishRun, RUN_TIMEOUT_MS } from "./engine-runs.js";
import { type ChaosEnv, chaosSimulator, waitFor } from "./env.js";
import { reconcileSequences, sequenceRange } from "./reconcile.js";
import { type ChaosRow, verdictOf } from "./table.js";

export interface OverloadOptions {
  /** Records/s at base load; undefined: a quarter of the sustainable rate measured first. */
  baseRate?: number;
  /** Base load before the overload, ms. */
  baseMs: number;
  /** The overload (10× base), ms. */
  overloadMs: number;
  /** Base load after the overload, ms (the recovery is measured meanwhile, and waited for beyond it). */
  afterMs: number;
  /** Records of the JetStream burst whose consumption measures the sustainable rate. */
  probeRecords: number;
  /** Records of the core NATS burst whose scoring measures the sustainable rate. */
  probeCoreRecords: number;
  seed: number;
  log: (line: string) => void;
}

/**
 * The memory bound the scenario checks: the engine's resident set (all threads) may not pass
 * 512 MiB however long the overload lasts. What the engine holds is bounded by design: two
 * pending batches of 65,536 records per ingest worker (core NATS), one fetch per partition
 * (JetStream), the sink's queue (half full pauses the workers); the other scenarios peak at
 * 140–210 MiB, so 512 MiB is the base plus room, not a figure the overload is allowed to grow into.
 */
export const RSS_BOUND_BYTES = 512 * 2 ** 20;

/** How many times the base load the overload is. */
const OVERLOAD_FACTOR = 10;

/** The engine's counters as its last summary line printed them. */
interface EngineCounts {
  scored: number;
  shed: number;
  deadLettered: number;
}

/** The last `[… s] in N out N …, dead-lettered N, shed N (N readings)` line of a run's output; null before the first. */
export function lastSummary(output: string): EngineCounts | null {
  const lines = output.match(/\] in \d+ out \d+ .*? dead-lettered \d+, shed \d+ \(\d+ readings\)/g);
  if (lines === null) return null;
  const last = lines[lines.length - 1];
  const n = (re: RegExp): number => Number((re.exec(last) as RegExpExecArray)[1]);
  return { scored: n(/ out (\d+)/), deadLettered: n(/dead-lettered (\d+)/), shed: n(/\((\d+) readings\)/) };
}

/** One phase of the load: `records` at `rate` rec/s, for `ms` at most. */
interface Phase {
  rate: number;
  records: number;
  ms: number;
}

/** A phase's records as published: how many, in how long. */
interface Published {
  readings: number;
  seconds: number;
}

/** The three phases: base, 10× base, base. */
function phasesOf(base: number, o: OverloadOptions): Phase[] {
  const records = (rate: number, ms: number): number => Math.max(1, Math.round((rate * ms) / 1000));
  return [
    { rate: base, records: records(base, o.baseMs), ms: o.baseMs },
    { rate: base * OVERLOAD_FACTOR, records: records(base * OVERLOAD_FACTOR, o.overloadMs), ms: o.overloadMs },
    { rate: base, records: records(base, o.afterMs), ms: o.afterMs },
  ];
}

/**
 * Publishes `records` at `rate` on `site` (for `forMs` at most), its readings starting `offset` ×
 * 100 ms after the first phase's start: after every earlier reading (12 keys share a 100 ms tick).
 * Unacknowledged, on JetStream too (its stream captures the subjects): acked publishes topped out
 * at 4,000–5,000 rec/s on the loaded two cores here, under what the engine consumes, so an
 * acknowledged overload would not overload. JetStream's side of the ledger is what the stream
 * stored (sequences 1..last), as in the other scenarios.
 */
function publishPart(env: ChaosEnv, site: string, rate: number, records: number, offset: number, seed: number, forMs?: number) {
  const sim = { ...chaosSimulator(seed, records), startTime: Date.UTC(2026, 0, 1) + offset * 100 };
  return publishCore(env.nats.url, site, rate, sim, forMs);
}

interface Measured {
  /** Records published by the three phases (unacknowledged: on JetStream the stream may have stored fewer). */
  published: number;
  /** The overload phase's achieved rate, rec/s. */
  overloadRate: number;
  /** From the overload's end until everything published by then was handled; null: not within the timeout. */
  recoveryMs: number | null;
  /** Records due but not yet handled at the overload's end: the backlog it built (0: the engine kept up). */
  behindAtEnd: number;
}

/**
 * Publishes the phases one after another (after `before` records already published), and from
 * the overload's end polls `handled()` until it reaches `due(published by then)`: the records the
 * engine must handle (core NATS: all published; JetStream: all the stream stored).
 */
async function loadAndRecover(
  env: ChaosEnv,
  site: string,
  base: number,
  before: number,
  o: OverloadOptions,
  progress: { handled(): Promise<number>; due(published: number): Promise<number> },
): Promise<Measured> {
  let recovered: Promise<number | null> = Promise.resolve(null);
  let overloadRate = 0;
  let behindAtEnd = 0;
  let published = before;
  for (const [i, p] of phasesOf(base, o).entries()) {
    const r: Published = await publishPart(env, site, p.rate, p.records, published, o.seed + i, p.ms);
    published += r.readings;
    if (i !== 1) continue;
    overloadRate = r.readings / r.seconds;
    const [endedAt, upTo] = [Date.now(), await progress.due(published)];
    behindAtEnd = Math.max(0, upTo - (await progress.handled()));
    o.log(`  overload: ${Math.round(overloadRate)} rec/s for ${r.seconds.toFixed(1)} s; waiting for the engine to handle all ${upTo}`);
    recovered = waitFor(async () => (await progress.handled()) >= upTo, RUN_TIMEOUT_MS, 100).then((ok) =>
      ok ? Date.now() - endedAt : null,
    );
  }
  return { published: published - before, overloadRate, recoveryMs: await recovered, behindAtEnd };
}

/**
 * JetStream's sustainable rate: a burst of `probeRecords` published as fast as the publisher can
 * once the engine consumes, timed over its second half, from the engine's ack
 * floor passing the middle until it has handled the whole burst. The first half is left out: a
 * fresh engine took its first ~15,000 records at 500–1000 rec/s on the loaded two cores here, then
 * 10,000+ rec/s (with --fetch 250 as with 2000: by records, not rounds), which would measure the
 * warm-up rather than the engine.
 */
async function jetStreamSustainable(env: ChaosEnv, run: CliProcess, site: string, stream: string, o: OverloadOptions): Promise<number> {
  if (!(await waitFor(() => consuming(run), RUN_TIMEOUT_MS))) throw new Error(`the run did not start consuming\n${run.output()}`);
  const published = publishPart(env, site, Number.POSITIVE_INFINITY, o.probeRecords, 0, o.seed + 100);
  const half = Math.floor(o.probeRecords / 2);
  const started = await waitFor(async () => (await env.ackFloor(stream, site)) >= half, RUN_TIMEOUT_MS, 20);
  if (!started) throw new Error(`the run did not acknowledge half the burst\n${run.output()}`);
  const from = { floor: await env.ackFloor(stream, site), at: Date.now() };
  await published;
  const done = await waitFor(() => env.consumedAll(stream, site), RUN_TIMEOUT_MS, 20);
  if (!done) throw new Error(`the burst of ${o.probeRecords} records was not consumed\n${run.output()}`);
  return (o.probeRecords - from.floor) / Math.max((Date.now() - from.at) / 1000, 1e-3);
}

/** JetStream: sustainable rate (unless stated), then base, 10× base, base on the same engine; every acked record reconciled. */
async function jetStreamOverload(env: ChaosEnv, o: OverloadOptions, rss: RssWatch) {
  const [site, stream, db] = ["chaosovjs", "CHAOSOVJS", "chaos_ov_js"];
  await env.createStream(stream, site);
  const run = env.startRun(site, stream, db);
  rss.watch(run);
  const sustainable = await jetStreamSustainable(env, run, site, stream, o);
  const base = o.baseRate ?? Math.max(1, Math.round(sustainable / 4));
  o.log(`overload, JetStream: sustainable ${Math.round(sustainable)} rec/s (a burst of ${o.probeRecords}); base ${base} rec/s`);
  const m = await loadAndRecover(env, site, base, o.probeRecords, o, {
    handled: () => env.ackFloor(stream, site),
    due: () => env.lastSeq(stream),
  });
  const crashed = run.child.exitCode !== null || run.child.signalCode !== null;
  const code = crashed ? null : await finishRun(env, run, site, stream, rss);
  const acked = await env.lastSeq(stream);
  const scores = reconcileSequences(sequenceRange(acked), await env.sequences(db, "ml_scores"));
  const readings = reconcileSequences(sequenceRange(acked), await env.sequences(db, "ml_sensor_data"));
  const published = o.probeRecords + m.published;
  return { sustainable, base, ...m, published, acked, scores, readings, crashed: crashed || code !== 0, output: run.output() };
}

/** GET /metrics of the run's live server: each metric's samples summed over their labels. */
export async function scrapeMetrics(port: number): Promise<Map<string, number>> {
  const text = await new Promise<string>((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/metrics", agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`/metrics: ${res.statusCode}`))));
    });
    req.on("error", reject);
    req.end();
  });
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})? (\S+)$/.exec(line);
    if (m !== null) out.set(m[1], (out.get(m[1]) ?? 0) + Number(m[2]));
  }
  return out;
}

/** How many records the core run has handled so far (scored, shed or dead-lettered), by its last summary line. */
const coreHandled = (run: CliProcess): number => {
  const c = lastSummary(run.output());
  return c === null ? 0 : c.scored + c.shed + c.deadLettered;
};

/**
 * Waits until the core run's counts account for `published`, or have not moved for `stallMs`
 * (what is missing was lost; a drain of 65,536 pending records or a sink pause can hold them
 * still for a second on a loaded machine): when they last moved (Date.now() ms).
 */
async function coreSettled(run: CliProcess, published: number, stallMs: number): Promise<number> {
  let [last, movedAt] = [-1, Date.now()];
  await waitFor(
    () => {
      const now = coreHandled(run);
      if (now !== last) [last, movedAt] = [now, Date.now()];
      return now >= published || Date.now() - movedAt >= stallMs;
    },
    RUN_TIMEOUT_MS,
    50,
  );
  return movedAt;
}

/**
 * Core NATS's sustainable rate: records scored per second while a burst of `records` is published as fast as the
 * publisher can; and that publisher's own rate, the most the overload phase can reach.
 */
async function coreSustainable(
  env: ChaosEnv,
  run: CliProcess,
  site: string,
  o: OverloadOptions,
): Promise<{ rate: number; shed: number; publisherRate: number }> {
  const t0 = Date.now();
  await publishPart(env, site, Number.POSITIVE_INFINITY, o.probeCoreRecords, 0, o.seed + 200);
  const publishedAt = Date.now();
  const doneAt = await coreSettled(run, o.probeCoreRecords, 3000);
  const c = lastSummary(run.output()) ?? { scored: 0, shed: 0, deadLettered: 0 };
  const publisherRate = o.probeCoreRecords / Math.max((publishedAt - t0) / 1000, 1e-3);
  return { rate: c.scored / Math.max((doneAt - t0) / 1000, 1e-3), shed: c.shed, publisherRate };
}

/**
 * Core NATS's base load unless stated: a quarter of the sustainable rate, but no more than a tenth of what the
 * publisher reached in the burst. On core NATS the burst's publisher is often the limit (the engine shed nothing,
 * so its rate is a lower bound); a base past a tenth of it would make the "10×" phase publisher-bound, below 10×.
 * The overload is still past what the engine takes when the engine falls behind in it (the backlog reported).
 */
function coreBase(probe: { rate: number; publisherRate: number }): number {
  return Math.max(1, Math.round(Math.min(probe.rate / 4, (0.9 * probe.publisherRate) / 10)));
}

/** Core NATS: sustainable rate (unless stated), base, 10× base, base; published against score rows + shed + dead-lettered as /metrics counts them. */
async function coreOverload(env: ChaosEnv, o: OverloadOptions, rss: RssWatch) {
  const [site, db] = ["chaosovcore", "chaos_ov_core"];
  const port = await freePort();
  // The summary line every 200 ms: the engine's scored and shed counts while the load runs.
  const run = env.startRun(site, null, db, ["--summary-interval", "200ms", "--port", String(port)]);
  rss.watch(run);
  if (!(await waitFor(() => consuming(run), RUN_TIMEOUT_MS))) throw new Error(`the run did not start consuming\n${run.output()}`);
  const probe = await coreSustainable(env, run, site, o);
  const base = o.baseRate ?? coreBase(probe);
  o.log(
    `overload, core NATS: sustainable ${Math.round(probe.rate)} rec/s (a burst of ${o.probeCoreRecords} published at ${Math.round(probe.publisherRate)} rec/s, ${probe.shed} shed); base ${base} rec/s`,
  );
  const m = await loadAndRecover(env, site, base, o.probeCoreRecords, o, {
    handled: async () => coreHandled(run),
    due: async (published) => published,
  });
  const published = o.probeCoreRecords + m.published;
  await coreSettled(run, published, 10_000);
  rss.sample();
  const crashed = run.child.exitCode !== null || run.child.signalCode !== null;
  const metrics = crashed ? new Map<string, number>() : await scrapeMetrics(port);
  const code = crashed ? null : await run.stop();
  const counts = lastSummary(run.output()) ?? { scored: 0, shed: 0, deadLettered: 0 };
  const rows = await env.sequences(db, "ml_scores");
  const scores = reconcileSequences(rows.keys(), rows);
  return {
    sustainable: probe.rate,
    base,
    ...m,
    published,
    counts,
    metricShed: metrics.get("linewatch_nats_shed_total") ?? 0,
    metricDeadLettered: metrics.get("linewatch_dead_letter_total") ?? 0,
    scores,
    crashed: crashed || code !== 0,
    output: run.output(),
  };
}

export async function overloadScenario(env: ChaosEnv, o: OverloadOptions): Promise<ChaosRow> {
  const rss = new RssWatch();
  const js = await jetStreamOverload(env, o, rss);
  const core = await coreOverload(env, o, rss);
  rss.close();
  const notes: string[] = [];
  const jsLost = js.scores.lost + js.readings.lost;
  if (jsLost > 0) notes.push(`JetStream: lost sequences (first): ${[...js.scores.lostSample, ...js.readings.lostSample].join(", ")}`);
  if (js.crashed) notes.push(`the JetStream run ended badly: ${js.output.slice(-400)}`);
  if (core.crashed) notes.push(`the core NATS run ended badly: ${core.output.slice(-400)}`);
  // Core NATS: every published record scored (a row), or shed or dead-lettered and counted so in /metrics.
  const scoredRows = core.scores.found + core.scores.duplicated;
  const unaccounted = core.published - scoredRows - core.metricShed - core.metricDeadLettered;
  if (unaccounted !== 0)
    notes.push(
      `core NATS: ${core.published} published, ${scoredRows} score rows, ${core.metricShed} shed, ${core.metricDeadLettered} dead-lettered (/metrics): ${unaccounted} unaccounted`,
    );
  const peak = rss.peak ?? 0;
  if (peak > RSS_BOUND_BYTES) notes.push(`peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB over the ${RSS_BOUND_BYTES / 2 ** 20} MiB bound`);
  const s = (ms: number | null): string => (ms === null ? "not recovered" : (ms / 1000).toFixed(2));
  const row: Omit<ChaosRow, "verdict"> = {
    scenario: "10× overload",
    load: `base ${js.base} rec/s JetStream, ${core.base} core NATS; ${OVERLOAD_FACTOR}× for ${o.overloadMs / 1000} s`,
    cycles: 2,
    lost: jsLost + Math.max(0, unaccounted),
    duplicated: js.scores.duplicated + js.readings.duplicated + core.scores.duplicated,
    crashes: (js.crashed ? 1 : 0) + (core.crashed ? 1 : 0),
    recoveryMs: js.recoveryMs === null || core.recoveryMs === null ? null : Math.max(js.recoveryMs, core.recoveryMs),
    peakRssBytes: rss.peak,
    mismatches: {
      "unexpected rows": js.scores.unexpected + js.readings.unexpected,
      "core rows beyond the published": Math.max(0, -unaccounted),
      "/metrics shed unlike the summary's": Math.abs(core.metricShed - core.counts.shed),
      "over the RSS bound": peak > RSS_BOUND_BYTES ? 1 : 0,
      "did not recover": (js.recoveryMs === null ? 1 : 0) + (core.recoveryMs === null ? 1 : 0),
    },
    figures: {
      "JetStream sustainable rec/s": Math.round(js.sustainable),
      "JetStream overload rec/s": Math.round(js.overloadRate),
      "JetStream backlog at the overload's end": js.behindAtEnd,
      "JetStream recovery s": s(js.recoveryMs),
      "JetStream published": js.published,
      "JetStream stored (reconciled)": js.acked,
      "core sustainable rec/s": Math.round(core.sustainable),
      "core overload rec/s": Math.round(core.overloadRate),
      "core behind at the overload's end": core.behindAtEnd,
      "core recovery s": s(core.recoveryMs),
      "core published": core.published,
      "core scored": scoredRows,
      "core shed (counted)": core.metricShed,
      "core dead-lettered": core.metricDeadLettered,
      "RSS bound MiB": RSS_BOUND_BYTES / 2 ** 20,
    },
    notes,
  };
  return { ...row, verdict: verdictOf(row) };
}
