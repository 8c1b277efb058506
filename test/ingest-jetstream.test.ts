/**
 * Ingest workers on JetStream: a durable pull consumer per partition in its owning worker,
 * checkpoints per partition, one acknowledgement per fetched batch (ack-all) and only once the
 * rows are durable in ClickHouse, single records on the schema-specialised reader. An
 * ingest worker killed mid-batch is restarted on its partitions, resumes from their checkpoints,
 * and nothing is lost: every record is in ClickHouse once (after FINAL) and every key's rows —
 * the statistics, hence the state they came from — are bit-equal to an uninterrupted engine's.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AckPolicy, connect, type NatsConnection } from "nats";
import { memoryLogger } from "../engine/core/mod.js";
import { DEFAULT_INGEST_JOB, IngestJob } from "../engine/jobs/ingest/mod.js";
import { ClickHouseSink } from "../connectors/clickhouse/sink.js";
import { startClickHouseServer, type ClickHouseServer } from "../connectors/local/clickhouse-server.js";
import { serverAvailable, startNatsServer, type NatsServer } from "../connectors/local/nats-server.js";
import { DEFAULT_NATS_PUBLISH, publishSimulation } from "../connectors/sim/nats-publisher.js";
import { PlantSimulator } from "../connectors/sim/plant-simulator.js";
import { expectedRows, SIM, SPECS } from "./kit/ingest-run.js";
import { waitUntil } from "./kit/wait.js";

const servers = serverAvailable("nats-server") && serverAvailable("clickhouse-server");
const PARTITIONS = 4;

describe.skipIf(!servers)("ingest job - JetStream partitions, a worker killed mid-batch", () => {
  let nats: NatsServer;
  let clickhouse: ClickHouseServer;
  let nc: NatsConnection;
  beforeAll(async () => {
    const conf = join(mkdtempSync(join(tmpdir(), "lw-ingest-js-")), "partitions.conf");
    writeFileSync(
      conf,
      `mappings = {\n${["j1", "k1"].map((site) => `  "lw.${site}.sensor.*.*": "lw.${site}.p.{{partition(${PARTITIONS},1)}}.sensor.{{wildcard(1)}}.{{wildcard(2)}}"`).join("\n")}\n}\n`,
    );
    [nats, clickhouse] = await Promise.all([startNatsServer(["-c", conf]), startClickHouseServer()]);
    nc = await connect({ servers: nats.url });
  });
  afterAll(async () => {
    await nc?.close();
    await Promise.all([nats?.dispose(), clickhouse?.dispose()]);
  });

  it("loses nothing and double-counts nothing: ClickHouse holds every record once, each key's statistics bit-equal to an uninterrupted run", async () => {
    // Mid-stream: worker 0 ends as a crash would, with fetched messages not yet acknowledged.
    await killedAndCompared({ stream: "LWJ", site: "j1", database: "ingestjs", workers: 2 }, async (job, n) => {
      expect(await waitUntil(() => job.counts().scored >= n / 3, 60_000)).toBe(true);
      await job.killWorker(0);
    });
  }, 180_000);

  it("a worker killed mid-insert (its rows handed over, the insert never landing, its round not acknowledged) loses nothing and counts nothing twice", async () => {
    // One worker, so the rows in the insert are its own. Once a third of the stream is scored, one
    // hand-over's insert is held and dropped — as when a worker inserting its own rows dies
    // mid-request — and the worker is killed 300 ms later. Its round must not be acknowledged
    // meanwhile (its rows are not durable), so JetStream redelivers it to the restarted worker;
    // a worker that acknowledged before its rows were durable would leave ClickHouse without them.
    await killedAndCompared({ stream: "LWK", site: "k1", database: "ingestjk", workers: 1 }, (job, n, sink) => {
      const insert = sink.insertEncoded.bind(sink);
      let killed: Promise<void> | null = null;
      let dropping = false;
      sink.insertEncoded = (table, rows, rejected, sendNow) => {
        if (killed === null && job.counts().scored >= n / 3) {
          killed = new Promise((r) => setTimeout(r, 300)).then(() => job.killWorker(0));
          // The hand-over's tables arrive in one turn of the main thread: those are dropped, nothing after.
          dropping = true;
          setImmediate(() => (dropping = false));
        }
        // The dropped insert settles only once its worker is dead, as a request dying with it would.
        return dropping ? (killed as Promise<void>) : insert(table, rows, rejected, sendNow);
      };
      return waitUntil(() => killed !== null, 60_000).then(async (ok) => {
        expect(ok).toBe(true);
        await killed;
      });
    });
  }, 180_000);

  /**
   * Loads the stream, runs `workers` ingest workers on it into a fresh database, lets `kill` end
   * one (the job restarts it), and checks that ClickHouse holds every record once, each key's
   * rows bit-equal to an uninterrupted engine's, after one restart and no refusal.
   */
  async function killedAndCompared(
    run: { stream: string; site: string; database: string; workers: number },
    kill: (job: IngestJob, n: number, sink: ClickHouseSink) => Promise<void>,
  ): Promise<void> {
    const { stream, site, database, workers } = run;
    const want = await expectedRows();
    const n = SIM.maxRecords as number;
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: stream, subjects: [`lw.${site}.p.*.sensor.>`] });
    await publishSimulation(new PlantSimulator(SIM), { ...DEFAULT_NATS_PUBLISH, url: nats.url, site, jetstream: true });
    const sink = new ClickHouseSink({
      url: clickhouse.url,
      database,
      spillDir: mkdtempSync(join(tmpdir(), "lw-ingest-js-spill-")),
      flushIntervalMs: 50,
    });
    const { log, entries } = memoryLogger({ level: "info" });
    const job = await IngestJob.start({
      ...DEFAULT_INGEST_JOB,
      log,
      url: nats.url,
      site,
      workers,
      partitions: PARTITIONS,
      analyses: SPECS,
      keysMax: 64,
      batchRecordsMax: 512,
      scoreFrames: false,
      live: null,
      sink,
      jetstream: {
        stream,
        checkpointBucket: `lw-ingest-${stream.toLowerCase()}`,
        fetchMessagesMax: 300,
        ackWaitMs: 30_000,
        maxDeliver: 10,
        maxAckPending: 20_000,
        checkpointIntervalMs: 200,
      },
    });
    await kill(job, n, sink);
    const consumersDone = async (): Promise<boolean> => {
      for (let p = 0; p < PARTITIONS; p++) {
        const info = await jsm.consumers.info(stream, `lw-${site}-p${p}`).catch(() => null);
        if (info === null || info.config.ack_policy !== AckPolicy.All || info.num_pending > 0 || info.num_ack_pending > 0) return false;
      }
      return true;
    };
    expect(await waitUntil(() => job.counts().restarts === 1 && consumersDone(), 90_000)).toBe(true);
    const result = await job.stop();
    await sink.close();
    expect(result).toMatchObject({ restarts: 1, sinkRefusals: 0, deadLettered: 0 });
    // Every record went through the fast path at least once (those after a checkpoint twice); one
    // ack settled a fetch of up to 300 messages — the stream is loaded before the job starts.
    expect(result.fastRecords).toBeGreaterThanOrEqual(n);
    expect(result.acks).toBeGreaterThan(0);
    expect(result.acks).toBeLessThan(n / 20);
    expect(entries.filter((e) => e.level === "error").map((e) => e.msg)).toEqual(["ingest worker failed; restarting it on its partitions"]);

    const count = async (table: string): Promise<number> =>
      Number((await clickhouse.query(`SELECT count() FROM ${database}.${table} FINAL`)).trim());
    expect(await count("ml_scores")).toBe(n);
    expect(await count("ml_sensor_data")).toBe(n);
    const text = await clickhouse.query(
      `SELECT machine_id, sensor_type, count, mean, z, spc_ewma, cusum_pos FROM ${database}.ml_scores FINAL ORDER BY machine_id, sensor_type, timestamp, seq FORMAT TabSeparated`,
    );
    const names = ["count", "mean", "z", "spc_ewma", "cusum_pos"];
    const at = names.map((f) => 2 + want.names.indexOf(f));
    const window = SPECS[0].name === "rolling" && SPECS[0].options.window.kind === "count" ? SPECS[0].options.window.records : 1;
    const got = new Map<string, string[][]>();
    for (const line of text.trim().split("\n")) {
      const [machine, sensor, ...fields] = line.split("\t");
      const key = `${machine}.${sensor}`;
      if (!got.has(key)) got.set(key, []);
      got.get(key)?.push(fields);
    }
    const differences: string[] = [];
    for (const [key, rows] of want.rows) {
      const mine = got.get(key) ?? [];
      if (mine.length !== rows.length) differences.push(`${key}: ${mine.length} rows, ${rows.length} expected`);
      rows.forEach((r, i) => {
        // A rolling statistic (count included) is NULL until the key's window is full; an SPC one while it is NaN (no limits yet).
        const expected = at.map((j, f) => {
          const rolling = f < 3;
          return (rolling && r[at[0]] < window) || !Number.isFinite(r[j]) ? "\\N" : String(r[j]);
        });
        const actual = (mine[i] ?? []).map((v) => (v === "\\N" ? v : String(Number(v))));
        if (actual.join("\t") !== expected.join("\t")) differences.push(`${key} row ${i}: ${actual.join(",")} ≠ ${expected.join(",")}`);
      });
    }
    expect(differences.slice(0, 5)).toEqual([]);
  }
});
