import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "nats";
import { runNatsJob, DEFAULT_NATS_JOB, checkpointName } from "../engine/jobs/nats-job.js";
import { decodeCheckpoint } from "../engine/core/checkpoint.js";
import { CheckpointStore } from "../connectors/nats/checkpoint-store.js";
import { publishSimulation, DEFAULT_NATS_PUBLISH } from "../connectors/sim/nats-publisher.js";
import { PlantSimulator, type SimulatorOptions } from "../connectors/sim/plant-simulator.js";
import { rollingAnalysis } from "../operators/rolling/rolling.js";
import { serverAvailable, startNatsServer, type NatsServer } from "../connectors/local/nats-server.js";

const CLI = resolve("dist/engine/cli/main.js");
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

/**
 * Scores are published on core NATS, where a busy client is cut off as a slow consumer; so the
 * test keeps them in a JetStream stream of their own and reads them back from there.
 */
async function scoreStream(nc: NatsConnection, site: string): Promise<{ count(): Promise<number>; read(): Promise<Score[]> }> {
  const jsm = await nc.jetstreamManager();
  const name = `SCORES_${site}`;
  await jsm.streams.add({ name, subjects: [`lw.${site}.score.>`] });
  return {
    count: async () => (await jsm.streams.info(name)).state.messages,
    read: async () => {
      const dec = new TextDecoder();
      const consumer = await nc.jetstream().consumers.get(name);
      const total = (await jsm.streams.info(name)).state.messages;
      const out: Score[] = [];
      while (out.length < total) {
        const batch = await consumer.fetch({ max_messages: 5000, expires: 2000 });
        for await (const m of batch) out.push(JSON.parse(dec.decode(m.data)) as Score);
      }
      return out;
    },
  };
}

/** The EWMA of each key in the checkpoints of `partitions` (the rolling state block's EWMA field). */
async function checkpointedEwma(
  nc: NatsConnection,
  site: string,
  stream: string,
  partitions: Array<number | null>,
): Promise<{ state: Map<string, { ewma: number; last: number }>; positions: number[] }> {
  const store = await CheckpointStore.open(nc, DEFAULT_NATS_JOB.checkpointBucket);
  const state = new Map<string, { ewma: number; last: number }>();
  const positions: number[] = [];
  for (const p of partitions) {
    const saved = await store.load(checkpointName(site, stream, p));
    if (saved === null) continue;
    positions.push(saved.position);
    const ckpt = decodeCheckpoint(saved.bytes);
    const view = new DataView(ckpt.state.buffer, ckpt.state.byteOffset, ckpt.state.byteLength);
    ckpt.keys.forEach((k, i) =>
      state.set(k.name, { ewma: view.getFloat64(i * ckpt.stateStride + ROLLING_EWMA_OFFSET, true), last: k.newestTime ?? NaN }),
    );
  }
  return { state, positions };
}

/** Byte offset of the EWMA in a rolling state block (kernels/rolling.ts, EWMA). */
const ROLLING_EWMA_OFFSET = 56;

/**
 * What a JetStream job's stream and durable consumer hold, and which stream sequences have no
 * score: the failure message of a test that waits on every record being processed.
 */
async function jetStreamDiagnosis(
  nc: NatsConnection,
  stream: string,
  durable: string,
  stored: { read(): Promise<Score[]> },
  records: number,
): Promise<string> {
  const lines: string[] = [];
  try {
    const jsm = await nc.jetstreamManager();
    const s = (await jsm.streams.info(stream)).state;
    lines.push(`stream ${stream}: messages ${s.messages}, first_seq ${s.first_seq}, last_seq ${s.last_seq}`);
    const c = await jsm.consumers.info(stream, durable);
    lines.push(
      `consumer ${durable}: delivered stream_seq ${c.delivered.stream_seq} consumer_seq ${c.delivered.consumer_seq}, ` +
        `ack floor stream_seq ${c.ack_floor.stream_seq} consumer_seq ${c.ack_floor.consumer_seq}, num_pending ${c.num_pending}, ` +
        `num_ack_pending ${c.num_ack_pending}, num_redelivered ${c.num_redelivered}, num_waiting ${c.num_waiting}`,
    );
  } catch (error) {
    lines.push(`stream/consumer info failed: ${(error as Error).message}`);
  }
  try {
    const seen = new Set((await stored.read()).map((x) => x.seq));
    const missing: number[] = [];
    for (let q = 1; q <= records; q++) if (!seen.has(q)) missing.push(q);
    lines.push(
      `${missing.length} stream sequences without a score: ${missing.slice(0, 200).join(",")}${missing.length > 200 ? ",..." : ""}`,
    );
  } catch (error) {
    lines.push(`reading the scores failed: ${(error as Error).message}`);
  }
  return lines.join("\n");
}

async function until(what: string | (() => string), cond: () => boolean, timeoutMs: number, poll?: () => Promise<unknown>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (poll !== undefined) await poll();
    if (cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === "string" ? what : what()}`);
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
    [
      CLI,
      "run",
      "--nats",
      url,
      "--stream",
      "LWT",
      "--site",
      "t1",
      "--analysis",
      "rolling",
      "--window",
      "8",
      "--alpha",
      String(ALPHA),
      "--checkpoint-interval",
      "200ms",
      "--summary-interval",
      "0",
      "--fetch",
      "500",
      ...extra,
    ],
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
    const stored = await scoreStream(nc, "t1");
    const cwd = mkdtempSync(join(tmpdir(), "lw-kill-"));
    const first = startRun(server.url, cwd);
    // Published only once the first instance has its consumer, and paced (about 6 s for the
    // 24 000 records), so that the kill lands mid-stream however slowly the instance starts
    // (seconds on a loaded machine) and however fast it then is: the ingest workers take the
    // whole stream in well under a second once it is there.
    let consumers = 0;
    await until(
      "the first instance's consumer",
      () => consumers > 0,
      60_000,
      async () => (consumers = (await jsm.consumers.list("LWT").next()).length),
    );
    const published = publishSimulation(new PlantSimulator(SIM), {
      ...DEFAULT_NATS_PUBLISH,
      url: server.url,
      site: "t1",
      jetstream: true,
      rate: 4000,
    });
    // Kill it once it has processed part of the stream (and has taken a checkpoint or two).
    let n = 0;
    await until(
      "the first instance to score 8000 records",
      () => n >= 8000,
      60_000,
      async () => (n = await stored.count()),
    );
    await new Promise((r) => setTimeout(r, 300));
    first.kill("SIGKILL");
    await new Promise((r) => first.once("exit", r));
    expect(await stored.count()).toBeLessThan(24_000);
    await published;
    const second = startRun(server.url, cwd);
    // Done when the restarted instance's checkpoint covers the whole stream (sequence 24000).
    let covered = 0;
    await until(
      "a checkpoint covering every record",
      () => covered >= 24_000,
      120_000,
      async () => {
        covered = (await checkpointedEwma(nc, "t1", "LWT", [null])).positions[0] ?? 0;
      },
    );
    second.kill("SIGTERM");
    await new Promise((r) => second.once("exit", r));
    // The state counted each record exactly once: every key's EWMA equals the EWMA over its
    // readings in order, which a lost or doubled reading would change.
    expectSameState((await checkpointedEwma(nc, "t1", "LWT", [null])).state, want);
    // Every stream sequence was scored at least once (outputs are at-least-once across a crash);
    // scores are read back from a stream of their own, and may have been cut by the load.
    const scores = await stored.read();
    expect(new Set(scores.map((s) => s.seq)).size).toBeGreaterThan(0);
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
    await publishSimulation(new PlantSimulator(SIM), { ...DEFAULT_NATS_PUBLISH, url: server.url, site: "t2", jetstream: true });
    let stop: () => void = () => {};
    const stopped = new Promise<void>((r) => (stop = r));
    const pa = { recordsIn: 0, recordsOut: 0, checkpoints: 0 };
    const pb = { recordsIn: 0, recordsOut: 0, checkpoints: 0 };
    const instance = (partitions: number[]) =>
      runNatsJob({
        progress: partitions[0] === 0 ? pa : pb,
        ...DEFAULT_NATS_JOB,
        url: server.url,
        site: "t2",
        stream: "LWP",
        partitions,
        partitionCount: 4,
        analyses: [rollingAnalysis({ window: { kind: "count", records: 8 }, alpha: ALPHA, timeScale: 1000 })],
        workers: 1,
        groups: 4,
        keysMax: 64,
        checkpointIntervalMs: 1000,
        publishScores: true,
        summaryIntervalMs: 0,
        console: new PassThrough(),
        stop: stopped,
      });
    const a = instance([0, 1]);
    const b = instance([2, 3]);
    // An instance that fails fails the test with its own error, not a timeout.
    let failure: unknown = null;
    for (const job of [a, b]) job.catch((error: unknown) => (failure ??= error));
    await until(
      "every record to be processed",
      () => {
        if (failure !== null) throw failure;
        return pa.recordsOut + pb.recordsOut >= 24_000;
      },
      120_000,
    );
    stop();
    const [ra, rb] = await Promise.all([a, b]);
    // Each record went to exactly one instance, once.
    expect(ra.recordsIn + rb.recordsIn).toBe(24_000);
    expect(ra.duplicates + rb.duplicates).toBe(0);
    expect(ra.recordsIn).toBeGreaterThan(0);
    expect(rb.recordsIn).toBeGreaterThan(0);
    // A machine's readings all land in one partition, so one instance holds each key's state;
    // together the four partitions' checkpoints hold every key, each exactly as a replay would.
    const { state, positions } = await checkpointedEwma(nc, "t2", "LWP", [0, 1, 2, 3]);
    expect(positions.length).toBe(4);
    expectSameState(state, want);
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
    await publishSimulation(new PlantSimulator(SIM), { ...DEFAULT_NATS_PUBLISH, url: server.url, site: "t3", jetstream: true });
    const stored = await scoreStream(nc, "t3");
    let stop: () => void = () => {};
    const stopped = new Promise<void>((r) => (stop = r));
    const progress = { recordsIn: 0, recordsOut: 0, checkpoints: 0 };
    const console = new PassThrough();
    let log = "";
    console.on("data", (d: Buffer) => (log += d.toString()));
    const job = runNatsJob({
      ...DEFAULT_NATS_JOB,
      url: server.url,
      site: "t3",
      stream: "LWR",
      progress,
      analyses: [rollingAnalysis({ window: { kind: "count", records: 8 }, alpha: ALPHA, timeScale: 1000 })],
      workers: 1,
      groups: 4,
      keysMax: 64,
      fetchMessagesMax: 200,
      checkpointIntervalMs: 500,
      publishScores: true,
      summaryIntervalMs: 1000,
      console,
      stop: stopped,
    });
    await until("some records processed", () => progress.recordsOut >= 3000, 60_000);
    await server.restart();
    try {
      await until(
        () => `every record to be processed (so far ${progress.recordsOut}, checkpoints ${progress.checkpoints})`,
        () => progress.recordsOut >= 24_000,
        180_000,
      );
    } catch (error) {
      throw new Error(
        `${(error as Error).message}\n${await jetStreamDiagnosis(nc, "LWR", "lw-t3-all", stored, 24_000)}\njob log (tail):\n${log.slice(-6000)}`,
      );
    }
    stop();
    const result = await job;
    // Records fetched before the restart and not yet acknowledged come again; they are skipped.
    expect(result.recordsIn).toBe(24_000);
    expectSameState((await checkpointedEwma(nc, "t3", "LWR", [null])).state, want);
  }, 240_000);
});
