/**
 * A slow WebSocket subscriber beside normal ones: `linewatch run --port --tokens` scoring records
 * published to JetStream at a stated rate, `normal` subscribers (10) on every machine topic
 * measuring each row's publish→receive latency, for one phase without and one with a subscriber
 * that stops reading (its socket paused: the kernel's buffers fill, then uWS's). Must hold: the
 * normal subscribers' p99 with it within {@link P99_FACTOR}× (+ {@link P99_SLACK_MS}) of without,
 * no gap in their seqs, none closed; the server acts on the slow one (sampled down or disconnected,
 * counted in /metrics); the engine's resident set grows by at most {@link RSS_GROWTH_MAX_BYTES};
 * every acknowledged record scored.
 */
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "../../../connectors/local/mod.js";
import { type CliProcess, RssWatch } from "./engine-process.js";
import { consuming, finishRun, RUN_TIMEOUT_MS } from "./engine-runs.js";
import { type ChaosEnv, chaosSimulator, sleep, waitFor } from "./env.js";
import { reconcileSequences, sequenceRange } from "./reconcile.js";
import { type ChaosRow, verdictOf } from "./table.js";
import { ChaosWsClient, isRefusal, metricValue, scrapeMetrics } from "./ws-client.js";
import { LatencyPublisher, LatencyWindow, latencyRecorder, quantile, residentBytes } from "./ws-latency.js";

export interface SlowSubscriberOptions {
  /** Records per second published. */
  rate: number;
  /** Length of each phase (without, then with the slow subscriber), ms. */
  phaseMs: number;
  /** Normal subscribers. */
  normal: number;
  seed: number;
  log: (line: string) => void;
}

/** The normal subscribers' p99 with the slow one may be at most this many times the p99 without, … */
export const P99_FACTOR = 2;
/** … plus this (a loaded machine's scheduling noise on a p99 of tens of milliseconds). */
export const P99_SLACK_MS = 50;
/**
 * Engine resident-set growth allowed while the slow subscriber is held: uWS's cap on its buffer
 * (8 × wsSendBufferBytesMax = 8 MiB, ws-server.ts) and 56 MiB for the engine's own variation
 * between two phases (heap growth, ClickHouse batches).
 */
export const RSS_GROWTH_MAX_BYTES = 64 * 2 ** 20;

/** How long the phase with the slow subscriber goes on after the server acted on it. */
const SLOW_PHASE_AFTER_ACTION_MS = 2000;
/**
 * The longest that phase may take: the server acts once more than wsSendBufferBytesMax (1 MiB)
 * waits in uWS, behind the kernel's socket buffers (about 4 MiB on loopback); at 1000 rec/s a
 * subscriber of every machine gets about 0.25 MB/s, so about 22 s.
 */
const SLOW_PHASE_MAX_MS = 90_000;

const MACHINES = 4;
const STREAM = "CHAOSSLOW";
const TOPICS = Array.from({ length: MACHINES }, (_, i) => `machine/M-${String(i + 1).padStart(3, "0")}`);

interface Phase {
  window: LatencyWindow;
  rssPeak: number;
  /** Records acknowledged to the publisher and not yet by the engine when the phase ended: grows when the engine falls behind the load. */
  backlogAtEnd: number;
}

/** Records in the stream the engine has not acknowledged yet. */
async function backlog(env: ChaosEnv, site: string): Promise<number> {
  // The floor first: read second, it could pass a last sequence read before it.
  const floor = await env.ackFloor(STREAM, site);
  return Math.max(0, (await env.lastSeq(STREAM)) - floor);
}

const slowActions = (m: string): number =>
  metricValue(m, 'linewatch_ws_slow_subscribers_total{action="sampled"}') +
  metricValue(m, 'linewatch_ws_slow_subscribers_total{action="disconnected"}');

function writeTokens(env: ChaosEnv): { file: string; normal: string; slow: string } {
  const [normal, slow] = [randomBytes(24).toString("hex"), randomBytes(24).toString("hex")];
  const file = join(env.dir, "tokens-slow.json");
  writeFileSync(
    file,
    JSON.stringify({
      tokens: [
        { token: normal, name: "normal", topics: ["machine/+"], requestsPerSec: 10_000, requestBurst: 10_000 },
        // The default slow policy (sample): what a token that does not say gets.
        { token: slow, name: "slow", topics: ["machine/+"] },
      ],
    }),
  );
  return { file, normal, slow };
}

async function subscriber(port: number, token: string): Promise<ChaosWsClient> {
  const c = await ChaosWsClient.connect(`ws://127.0.0.1:${port}/ws?token=${token}&format=msgpack`);
  if (isRefusal(c)) throw new Error(`the live server refused a subscriber: ${c.refused} ${c.body}`);
  if (!(await c.subscribe(TOPICS))) throw new Error(`no answer to subscribe: ${JSON.stringify(c.controls)}`);
  return c;
}

/**
 * Runs for `ms`, sampling the engine's resident set into the phase; with `until`, goes on (up to
 * `maxMs` in all) until `done()` has held for `afterMs`.
 */
async function hold(
  run: CliProcess,
  phase: Phase,
  ms: number,
  until?: { done: () => Promise<boolean>; afterMs: number; maxMs: number },
): Promise<void> {
  const start = Date.now();
  let doneAt = until === undefined ? start : Number.POSITIVE_INFINITY;
  for (;;) {
    phase.rssPeak = Math.max(phase.rssPeak, residentBytes(run.child.pid) ?? 0);
    const now = Date.now();
    if (doneAt === Number.POSITIVE_INFINITY && until !== undefined && (await until.done())) doneAt = now;
    if (now - start >= (until?.maxMs ?? ms) || (now - start >= ms && now - doneAt >= (until?.afterMs ?? 0))) break;
    await sleep(200);
  }
  phase.window.close();
}

/** Resumes the slow subscriber: the bytes it then reads until 1 s passes without any (its held backlog). */
async function drain(slow: ChaosWsClient): Promise<number> {
  const before = slow.bytes;
  slow.ws.resume();
  let last = slow.bytes;
  let quietSince = Date.now();
  await waitFor(
    () => {
      if (slow.bytes !== last) [last, quietSince] = [slow.bytes, Date.now()];
      return Date.now() - quietSince >= 1000 || !slow.open;
    },
    20_000,
    50,
  );
  return slow.bytes - before;
}

interface Measured {
  without: Phase;
  with: Phase;
  normals: ChaosWsClient[];
  /** Normal subscribers whose connection had closed by the end of the phase with the slow one. */
  normalsClosed: number;
  slow: ChaosWsClient;
  actedAfterMs: number | null;
  drainedBytes: number;
  metrics: string;
  published: number;
  failedPublishes: number;
}

type Tokens = ReturnType<typeof writeTokens>;

async function measure(
  env: ChaosEnv,
  run: CliProcess,
  port: number,
  site: string,
  tokens: Tokens,
  o: SlowSubscriberOptions,
): Promise<Measured> {
  const publisher = new LatencyPublisher(env, site, o.rate, chaosSimulator(o.seed, o.rate * 3600));
  const without: Phase = { window: new LatencyWindow(), rssPeak: 0, backlogAtEnd: 0 };
  const withSlow: Phase = { window: new LatencyWindow(), rssPeak: 0, backlogAtEnd: 0 };
  const record = latencyRecorder(publisher.publishedAt, [without.window, withSlow.window]);
  const normals = await Promise.all(Array.from({ length: o.normal }, () => subscriber(port, tokens.normal)));
  for (const c of normals) c.onData = record;
  await sleep(2000); // the engine and the subscribers in their stride before measuring
  without.window.open();
  await hold(run, without, o.phaseMs);
  without.backlogAtEnd = await backlog(env, site);
  o.log(`slow subscriber: ${without.window.latencies.length} latencies without it; the slow one connects and stops reading`);
  const slow = await subscriber(port, tokens.slow);
  slow.ws.pause();
  const pausedAt = Date.now();
  let actedAfterMs: number | null = null;
  withSlow.window.open();
  const acted = async () => {
    if (actedAfterMs === null && slowActions(await scrapeMetrics(port)) > 0) actedAfterMs = Date.now() - pausedAt;
    return actedAfterMs !== null;
  };
  // Past the server's action too: the normal subscribers beside a slow one already sampled down.
  await hold(run, withSlow, o.phaseMs, { done: acted, afterMs: SLOW_PHASE_AFTER_ACTION_MS, maxMs: SLOW_PHASE_MAX_MS });
  const normalsClosed = normals.filter((c) => !c.open).length;
  withSlow.backlogAtEnd = await backlog(env, site);
  await publisher.stop();
  // Every row published in the windows reaches the subscribers (the slowest last: missing them
  // would flatter the p99) once the engine has acknowledged it, its frame already handed to uWS.
  await waitFor(() => env.consumedAll(STREAM, site), RUN_TIMEOUT_MS, 200);
  await sleep(1000);
  const drainedBytes = await drain(slow);
  return {
    without,
    with: withSlow,
    normals,
    normalsClosed,
    slow,
    actedAfterMs,
    drainedBytes,
    metrics: await scrapeMetrics(port),
    published: publisher.published,
    failedPublishes: publisher.failed,
  };
}

export async function slowSubscriberScenario(env: ChaosEnv, o: SlowSubscriberOptions): Promise<ChaosRow> {
  const [site, stream, db] = ["chaosslow", STREAM, "chaos_slow"];
  await env.createStream(stream, site);
  const port = await freePort();
  const tokens = writeTokens(env);
  const rss = new RssWatch();
  const run = env.startRun(site, stream, db, ["--port", String(port), "--tokens", tokens.file]);
  rss.watch(run);
  if (!(await waitFor(() => consuming(run), RUN_TIMEOUT_MS))) throw new Error(`the run did not start consuming\n${run.output()}`);
  const m = await measure(env, run, port, site, tokens, o);
  for (const c of [...m.normals, m.slow]) c.close();
  const crashed = run.child.exitCode !== null || run.child.signalCode !== null;
  const code = crashed ? null : await finishRun(env, run, site, stream, rss);
  rss.close();
  const acked = await env.lastSeq(stream);
  const scores = reconcileSequences(sequenceRange(acked), await env.sequences(db, "ml_scores"));
  return slowRow(o, m, { lost: scores.lost, duplicated: scores.duplicated, crashed: crashed || code !== 0, rssPeak: rss.peak, acked });
}

function slowRow(
  o: SlowSubscriberOptions,
  m: Measured,
  r: { lost: number; duplicated: number; crashed: boolean; rssPeak: number | null; acked: number },
): ChaosRow {
  const [a, b] = [m.without.window.latencies, m.with.window.latencies];
  const [p99a, p99b] = [quantile(a, 0.99), quantile(b, 0.99)];
  const growth = m.with.rssPeak - m.without.rssPeak;
  const notes: string[] = [];
  if (a.length === 0 || b.length === 0) notes.push(`latencies measured: ${a.length} without, ${b.length} with the slow subscriber`);
  if (m.actedAfterMs === null) notes.push("the server did not act on the slow subscriber (no slow_subscribers_total)");
  // A backlog beyond a few fetch rounds at either end: the latencies grow with it whatever the subscribers do.
  if (Math.max(m.without.backlogAtEnd, m.with.backlogAtEnd) > 5 * o.rate)
    notes.push(
      `the engine fell behind the load (backlog ${m.without.backlogAtEnd}, then ${m.with.backlogAtEnd} records): the latencies include it`,
    );
  const row: Omit<ChaosRow, "verdict"> = {
    scenario: "slow WS subscriber",
    load: `${o.rate} rec/s JetStream, ${o.normal} subscribers + 1 slow, 2 × ${o.phaseMs / 1000} s`,
    cycles: 1,
    lost: r.lost,
    duplicated: r.duplicated,
    crashes: r.crashed ? 1 : 0,
    recoveryMs: null,
    peakRssBytes: r.rssPeak,
    mismatches: {
      "normal p99 past the bound": a.length === 0 || b.length === 0 || !(p99b <= P99_FACTOR * p99a + P99_SLACK_MS) ? 1 : 0,
      "normal subscribers' seq gaps": m.normals.reduce((n, c) => n + c.gaps, 0),
      "normal subscribers closed": m.normalsClosed,
      "slow subscriber not acted on": m.actedAfterMs === null ? 1 : 0,
      "RSS growth past the bound": growth > RSS_GROWTH_MAX_BYTES ? 1 : 0,
      "publishes not acknowledged": m.failedPublishes,
    },
    figures: {
      "p50 ms without": round(quantile(a, 0.5)),
      "p99 ms without": round(p99a),
      "p50 ms with": round(quantile(b, 0.5)),
      "p99 ms with": round(p99b),
      "p99 ratio": round(p99b / p99a, 2),
      "latencies without": a.length,
      "latencies with": b.length,
      "slow acted on after s": m.actedAfterMs === null ? "-" : round(m.actedAfterMs / 1000, 1),
      "slow: sampled": metricValue(m.metrics, 'linewatch_ws_slow_subscribers_total{action="sampled"}'),
      "slow: disconnected": metricValue(m.metrics, 'linewatch_ws_slow_subscribers_total{action="disconnected"}'),
      "messages skipped for the slow one": metricValue(m.metrics, 'linewatch_ws_dropped_total{reason="slow"}'),
      "slow backlog drained MiB": round(m.drainedBytes / 2 ** 20, 2),
      "engine backlog without": m.without.backlogAtEnd,
      "engine backlog with": m.with.backlogAtEnd,
      "engine RSS MiB without": round(m.without.rssPeak / 2 ** 20),
      "engine RSS MiB with": round(m.with.rssPeak / 2 ** 20),
      "acked records": r.acked,
    },
    notes,
  };
  return { ...row, verdict: verdictOf(row) };
}

function round(x: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
