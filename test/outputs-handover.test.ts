/**
 * Hand-over without durability, for sources that acknowledge nothing (core NATS, the simulator):
 * scoring does not wait for ClickHouse inserts, the sink's memory queue paces the source, and
 * `flush` (what JetStream acknowledges after, and the end of a run) still waits for every row.
 * A stand-in ClickHouse HTTP server holds INSERTs until the test lets them through.
 */
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { ClickHouseSink } from "../connectors/clickhouse/sink.js";
import { DEFAULT_NATS_PUBLISH, publishSimulation } from "../connectors/sim/nats-publisher.js";
import { PlantSimulator } from "../connectors/sim/plant-simulator.js";
import { DEFAULT_NATS_JOB, runNatsJob } from "../engine/jobs/nats-job.js";
import { Outputs } from "../engine/jobs/outputs.js";
import { runJob } from "../engine/jobs/run-job.js";
import { rollingAnalysis } from "../operators/rolling/rolling.js";
import { serverAvailable, startNatsServer } from "../connectors/local/nats-server.js";
import { createLogger } from "../engine/core/mod.js";

/** Operational log events are not what these tests look at. */
const QUIET = createLogger({ level: "silent" });

/** Answers every statement at once; holds each INSERT's answer until `release()`. */
interface HeldClickHouse {
  url: string;
  /** INSERT bodies received so far, by table. */
  inserts: Array<{ table: string; body: string }>;
  held(): number;
  release(): void;
  close(): Promise<void>;
}

async function heldClickHouse(): Promise<HeldClickHouse> {
  const inserts: HeldClickHouse["inserts"] = [];
  let waiting: ServerResponse[] = [];
  let open = false;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const query = new URL(req.url ?? "/", "http://x").searchParams.get("query") ?? "";
      const body = Buffer.concat(chunks).toString("utf8");
      const insert = /INSERT INTO \w+\.(\w+)/.exec(query + body);
      if (insert === null) {
        res.end();
        return;
      }
      inserts.push({ table: insert[1], body: query.startsWith("INSERT") ? body : body.slice(body.indexOf("\n") + 1) });
      if (open) res.end();
      else waiting.push(res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    inserts,
    held: () => waiting.length,
    release() {
      open = true;
      for (const res of waiting) res.end();
      waiting = [];
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of waiting) res.end();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 10));
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("Outputs.handOver - rows handed to ClickHouse without waiting for durability", () => {
  it("returns while the inserts are still unanswered; flush waits for them; the rows are the records scored", async () => {
    const ch = await heldClickHouse();
    cleanups.push(() => ch.close());
    const outputs = await Outputs.start({
      clickhouse: { url: ch.url, spillDir: mkdtempSync(join(tmpdir(), "lw-spill-")) },
      healthIntervalMs: 3_600_000,
      log: QUIET,
    });
    cleanups.push(() => outputs.close());
    const n = 5000;
    for (let i = 0; i < n; i++) {
      outputs.record({
        machineId: "M1",
        sensorType: "temp",
        key: "M1/temp",
        time: 1_700_000_000_000 + i,
        value: i / 3,
        seq: i,
        membersJson: `"count":${i},"mean":${i / 7},"std":null,"std_pop":null,"min":0,"max":${i},"slope":null,"ewma":null,"z":null`,
      });
    }
    await outputs.handOver();
    // Handed over and not durable: the sink sends once its batch interval passes, and the
    // stand-in holds the answer. A durable flush waits for it.
    await until(() => ch.held() > 0);
    let flushed = false;
    const flush = outputs.flush().then(() => (flushed = true));
    await new Promise((r) => setTimeout(r, 200));
    expect(flushed).toBe(false);
    ch.release();
    await flush;
    const scores = ch.inserts
      .filter((x) => x.table === "ml_scores")
      .flatMap((x) => x.body.trim().split("\n"))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(scores.map((r) => r.seq)).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(scores.map((r) => r.value)).toEqual(Array.from({ length: n }, (_, i) => i / 3));
    expect(scores.map((r) => r.mean)).toEqual(Array.from({ length: n }, (_, i) => i / 7));
    expect(scores.every((r) => r.std === null)).toBe(true);
    expect(ch.inserts.filter((x) => x.table === "ml_sensor_data").flatMap((x) => x.body.trim().split("\n"))).toHaveLength(n);
  });

  it("a simulator run with ClickHouse away keeps scoring, spills every row, and ends with all of them durable", async () => {
    // A port nothing listens on: every insert is refused at once.
    const closed = await heldClickHouse();
    const url = closed.url;
    await closed.close();
    const spillDir = mkdtempSync(join(tmpdir(), "lw-spill-"));
    const outputs = await Outputs.start({ clickhouse: { url, spillDir }, healthIntervalMs: 3_600_000, log: QUIET });
    const records = 150_000;
    const result = await runJob({
      simulator: { seed: 3, machines: 2, sensorTypes: ["pressure", "vibration"], rateHz: 10, maxRecords: records, faultRate: 0 },
      analyses: [rollingAnalysis({ window: { kind: "count", records: 8 }, alpha: 0.2, timeScale: 1000 })],
      keyByMode: false,
      workers: 1,
      groups: 2,
      batchRecordsMax: 1024,
      speed: Infinity,
      outPath: null,
      fileBytesMax: 1 << 30,
      zAlarm: 4,
      flushIntervalMs: 250,
      summaryIntervalMs: 0,
      console: new PassThrough(),
      stop: new Promise(() => {}),
      outputs,
    });
    expect(result.metrics.recordsOut).toBe(records);
    await outputs.close();
    const rowsIn = (table: string) =>
      readdirSync(spillDir)
        .filter((f) => f.endsWith(`.${table}.ndjson`))
        .reduce((a, f) => a + readFileSync(join(spillDir, f), "utf8").trim().split("\n").length, 0);
    expect(rowsIn("ml_scores")).toBe(records);
    expect(rowsIn("ml_sensor_data")).toBe(records);
  }, 120_000);
});

describe.skipIf(!serverAvailable("nats-server"))("core NATS job - scoring does not wait for ClickHouse", () => {
  it("scores every record while ClickHouse holds every insert unanswered; at stop every row is in ClickHouse", async () => {
    const nats = await startNatsServer();
    cleanups.push(() => nats.dispose());
    const ch = await heldClickHouse();
    cleanups.push(() => ch.close());
    const spillDir = mkdtempSync(join(tmpdir(), "lw-spill-"));
    const outputs = await Outputs.start({ clickhouse: { url: ch.url, spillDir }, healthIntervalMs: 3_600_000, log: QUIET });
    const records = 12_000;
    const progress = { recordsIn: 0, recordsOut: 0, checkpoints: 0 };
    let stop!: () => void;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    let ready!: () => void;
    const isReady = new Promise<void>((resolve) => (ready = resolve));
    const job = runNatsJob({
      ...DEFAULT_NATS_JOB,
      url: nats.url,
      site: "ho",
      progress,
      onReady: () => ready(),
      analyses: [rollingAnalysis({ window: { kind: "count", records: 8 }, alpha: 0.3, timeScale: 1000 })],
      workers: 1,
      groups: 4,
      keysMax: 64,
      publishScores: false,
      summaryIntervalMs: 0,
      console: new PassThrough(),
      stop: stopped,
      outputs,
    });
    await isReady;
    await publishSimulation(
      new PlantSimulator({ seed: 5, machines: 3, sensorTypes: ["pressure", "vibration"], rateHz: 10, maxRecords: records }),
      {
        ...DEFAULT_NATS_PUBLISH,
        url: nats.url,
        site: "ho",
        format: "msgpack",
        rate: 20_000,
      },
    );
    // Every record scored though no insert is answered (the stand-in answers none before
    // release): before, the loop waited for the first one whenever its queue ran dry.
    await until(() => progress.recordsOut === records);
    await until(() => ch.held() > 0);
    // Nothing had to leave by the spill either (a loop that waited got going again only once the
    // unanswered inserts timed out and their rows were spilled).
    expect(readdirSync(spillDir).filter((f) => f.endsWith(".ndjson"))).toEqual([]);
    ch.release();
    stop();
    const result = await job;
    await outputs.close();
    expect(result.recordsOut).toBe(records);
    const seqs = ch.inserts
      .filter((x) => x.table === "ml_scores")
      .flatMap((x) => x.body.trim().split("\n"))
      .map((l) => (JSON.parse(l) as { seq: number }).seq);
    expect(new Set(seqs).size).toBe(records);
  }, 120_000);
});

describe("ClickHouseSink.room - the memory queue paces a source that acknowledges nothing", () => {
  it("waits while the rows in memory are at the mark, and resolves once inserts take them", async () => {
    const ch = await heldClickHouse();
    cleanups.push(() => ch.close());
    const sink = new ClickHouseSink({
      url: ch.url,
      spillDir: mkdtempSync(join(tmpdir(), "lw-spill-")),
      batchRowsMax: 500,
      pendingRowsMax: 2000,
      createTables: false,
    });
    cleanups.push(() => sink.close());
    const rows = Array.from({ length: 1500 }, (_, i) => ({
      machine_id: "M1",
      sensor_type: "temp",
      timestamp: 1_700_000_000_000 + i,
      sensor_value: i,
      seq: i,
    }));
    const written = sink.write("ml_sensor_data", rows);
    await sink.room(2000); // below the mark: at once
    let roomy = false;
    const room = sink.room(1000).then(() => (roomy = true));
    await until(() => ch.held() > 0);
    await new Promise((r) => setTimeout(r, 200));
    expect(roomy).toBe(false);
    expect(sink.metrics().rowsPending).toBe(1500);
    ch.release();
    await room;
    expect(sink.metrics().rowsPending).toBeLessThan(1000);
    await written;
    expect(sink.metrics().rowsInserted).toBe(1500);
  });
});
