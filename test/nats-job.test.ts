import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "nats";
import { runNatsJob, DEFAULT_NATS_JOB } from "../engine/nats-job.js";
import { publishSimulation, DEFAULT_NATS_PUBLISH } from "../connectors/nats-publisher.js";
import { PlantSimulator, type SimulatorOptions } from "../connectors/simulator.js";
import { rollingAnalysis } from "../operators/rolling.js";
import { serverAvailable, startNatsServer, type NatsServer } from "./kit/servers.js";

const CLI = resolve("dist/engine/cli.js");
const ALPHA = 0.3;
const SIM: Partial<SimulatorOptions> = { seed: 5, machines: 6, sensorTypes: ["pressure", "vibration"], rateHz: 10, maxRecords: 24_000 };

/** What the state must be after every record once: the EWMA of each key over all its readings, in order. */
function expectedEwma(): Map<string, { ewma: number; last: number }> {
  const sim = new PlantSimulator(SIM);
  const keys = sim.keys();
  const out = new Map<string, { ewma: number; last: number }>();
  while (!sim.done) {
    const c = sim.nextColumns(8192);
    for (let i = 0; i < c.length; i++) {
      const k = keys[c.keyIndex[i]];
      const key = `${k.machine_id}/${k.sensor_type}`;
      const e = out.get(key);
      out.set(key, { ewma: e === undefined ? c.values[i] : e.ewma + ALPHA * (c.values[i] - e.ewma), last: c.times[i] });
    }
  }
  return out;
}

interface Score {
  machine_id: string;
  sensor_type: string;
  timestamp: number;
  seq: number;
  ewma: number;
}

/** Collects every score published on lw.<site>.score.> . */
function collectScores(nc: NatsConnection, site: string): Score[] {
  const scores: Score[] = [];
  const dec = new TextDecoder();
  nc.subscribe(`lw.${site}.score.>`, { callback: (_e, m) => scores.push(JSON.parse(dec.decode(m.data)) as Score) });
  return scores;
}

/** The newest score per key, by event time (the state after the key's last reading). */
function finalEwma(scores: Score[]): Map<string, { ewma: number; last: number }> {
  const out = new Map<string, { ewma: number; last: number }>();
  for (const s of scores) {
    const key = `${s.machine_id}/${s.sensor_type}`;
    const e = out.get(key);
    if (e === undefined || s.timestamp >= e.last) out.set(key, { ewma: s.ewma, last: s.timestamp });
  }
  return out;
}

async function until(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function expectSameState(got: Map<string, { ewma: number; last: number }>, want: Map<string, { ewma: number; last: number }>): void {
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [key, w] of want) {
    const g = got.get(key)!;
    expect(g.last, key).toBe(w.last);
    expect(Math.abs(g.ewma - w.ewma), `${key}: ewma ${g.ewma} vs ${w.ewma}`).toBeLessThanOrEqual(1e-9 * Math.abs(w.ewma));
  }
}

function startRun(url: string, cwd: string, extra: string[] = []): ChildProcess {
  return spawn(
    process.execPath,
    [CLI, "run", "--nats", url, "--stream", "LWT", "--site", "t1", "--analysis", "rolling", "--window", "8", "--alpha", String(ALPHA),
      "--checkpoint-interval", "200ms", "--summary-interval", "0", "--fetch", "500", ...extra],
    { cwd, stdio: ["ignore", "ignore", "pipe"] },
  );
}

describe.skipIf(!serverAvailable("nats-server"))("nats job - JetStream in, exactly once in state", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  const want = expectedEwma();
  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
  });
  afterAll(async () => {
    await nc?.close();
    await server?.dispose();
  });

  it("a SIGKILLed engine restarts from its checkpoint: no record lost, none counted twice", async () => {
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: "LWT", subjects: ["lw.t1.sensor.>"] });
    const scores = collectScores(nc, "t1");
    await publishSimulation(new PlantSimulator(SIM), { ...DEFAULT_NATS_PUBLISH, url: server.url, site: "t1", jetstream: true });
    const cwd = mkdtempSync(join(tmpdir(), "lw-kill-"));
    const first = startRun(server.url, cwd);
    // Kill it once it has processed part of the stream (and has taken a checkpoint or two).
    await until("the first instance to score 8000 records", () => scores.length >= 8000, 60_000);
    await new Promise((r) => setTimeout(r, 300));
    first.kill("SIGKILL");
    await new Promise((r) => first.once("exit", r));
    const scoredBeforeKill = scores.length;
    expect(scoredBeforeKill).toBeLessThan(24_000);
    const second = startRun(server.url, cwd);
    const seqs = () => new Set(scores.map((s) => s.seq)).size;
    await until("every record to be scored", () => seqs() === 24_000 && finalEwma(scores).size === 12 && [...finalEwma(scores)].every(([k, v]) => v.last === want.get(k)!.last), 90_000);
    await new Promise((r) => setTimeout(r, 500));
    second.kill("SIGTERM");
    await new Promise((r) => second.once("exit", r));
    // Every stream sequence was scored, some twice (outputs are at-least-once across a crash)…
    expect(seqs()).toBe(24_000);
    // …but the state counted each record exactly once: the final EWMA of every key equals the
    // EWMA over its readings in order, which a lost or doubled reading would change.
    expectSameState(finalEwma(scores), want);
  }, 180_000);
});

describe.skipIf(!serverAvailable("nats-server"))("nats job - partitions shared by two instances", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  const want = expectedEwma();
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), "lw-part-"));
    const conf = join(dir, "partitions.conf");
    writeFileSync(conf, 'mappings = {\n  "lw.t2.sensor.*.*": "lw.t2.p.{{partition(4,1)}}.sensor.{{wildcard(1)}}.{{wildcard(2)}}"\n}\n');
    server = await startNatsServer(["-c", conf]);
    nc = await connect({ servers: server.url });
  });
  afterAll(async () => {
    await nc?.close();
    await server?.dispose();
  });

  it("two instances owning two partitions each process every record exactly once", async () => {
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: "LWP", subjects: ["lw.t2.p.*.sensor.>"] });
    const scores = collectScores(nc, "t2");
    await publishSimulation(new PlantSimulator(SIM), { ...DEFAULT_NATS_PUBLISH, url: server.url, site: "t2", jetstream: true });
    let stop: () => void = () => {};
    const stopped = new Promise<void>((r) => (stop = r));
    const instance = (partitions: number[]) =>
      runNatsJob({
        ...DEFAULT_NATS_JOB, url: server.url, site: "t2", stream: "LWP", partitions, partitionCount: 4,
        analyses: [rollingAnalysis({ window: { kind: "count", records: 8 }, alpha: ALPHA, timeScale: 1000 })],
        workers: 1, groups: 4, keysMax: 64, checkpointIntervalMs: 1000, publishScores: true, summaryIntervalMs: 0,
        console: new PassThrough(), stop: stopped,
      });
    const a = instance([0, 1]);
    const b = instance([2, 3]);
    await until("every record to be scored", () => scores.length >= 24_000, 90_000);
    await new Promise((r) => setTimeout(r, 500));
    stop();
    const [ra, rb] = await Promise.all([a, b]);
    expect(scores.length).toBe(24_000);
    expect(new Set(scores.map((s) => s.seq)).size).toBe(24_000);
    expect(ra.recordsIn + rb.recordsIn).toBe(24_000);
    expect(ra.recordsIn).toBeGreaterThan(0);
    expect(rb.recordsIn).toBeGreaterThan(0);
    // A machine's readings all land in one partition, so one instance holds each key's state.
    expectSameState(finalEwma(scores), want);
  }, 180_000);
});

describe.skipIf(!serverAvailable("nats-server"))("nats job - the server restarts under load", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  const want = expectedEwma();
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(async () => {
    await nc?.close();
    await server?.dispose();
  });

  it("reconnects and continues: every record ends up in the state once", async () => {
    nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: "LWR", subjects: ["lw.t3.sensor.>"] });
    const scores = collectScores(nc, "t3");
    await publishSimulation(new PlantSimulator(SIM), { ...DEFAULT_NATS_PUBLISH, url: server.url, site: "t3", jetstream: true });
    let stop: () => void = () => {};
    const stopped = new Promise<void>((r) => (stop = r));
    const job = runNatsJob({
      ...DEFAULT_NATS_JOB, url: server.url, site: "t3", stream: "LWR",
      analyses: [rollingAnalysis({ window: { kind: "count", records: 8 }, alpha: ALPHA, timeScale: 1000 })],
      workers: 1, groups: 4, keysMax: 64, fetchMessagesMax: 200, checkpointIntervalMs: 500, publishScores: true, summaryIntervalMs: 0,
      console: new PassThrough(), stop: stopped,
    });
    await until("some records scored", () => scores.length >= 3000, 60_000);
    await server.restart();
    const latest = () => finalEwma(scores);
    await until("the last reading of every key to be scored", () => latest().size === 12 && [...latest()].every(([k, v]) => v.last === want.get(k)!.last), 120_000);
    await new Promise((r) => setTimeout(r, 500));
    stop();
    await job;
    expectSameState(latest(), want);
  }, 240_000);
});
