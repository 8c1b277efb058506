/**
 * The chaos harness's world: a throw-away nats-server and clickhouse-server on free loopback
 * ports with temporary directories, a connection to the first, the simulator publishing to
 * JetStream, `linewatch run` started as a child process, and the read-backs the reconciliation
 * needs (sequences of ml_scores and ml_sensor_data FINAL, score rows, alert episodes).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "nats";
import { connectNats } from "../../../connectors/nats/mod.js";
import { type ClickHouseServer, type NatsServer, startClickHouseServer, startNatsServer } from "../../../connectors/local/mod.js";
import {
  DEFAULT_NATS_PUBLISH,
  type NatsPublishResult,
  PlantSimulator,
  publishSimulation,
  type SimulatorOptions,
} from "../../../connectors/sim/mod.js";
import { readScoreRows, sequenceCounts } from "./clickhouse-reads.js";
import { type CliProcess, running, startCli } from "./engine-process.js";

/**
 * The textbook chart for `run` (most rules on, CUSUM h 5, EWMA L 3, a fixed centre line, episodes
 * closing after 50 quiet readings): `run` starts from the alerting defaults (docs/spc.md), under
 * which a short stream raises few episodes. The harness and the tests give it.
 */
export const TEXTBOOK_SPC_FLAGS: readonly string[] = Object.freeze([
  "--fa-budget",
  "0.2",
  "--cusum-h",
  "5",
  "--ewma-l",
  "3",
  "--track-records",
  "0",
  "--episode-close-after",
  "50",
]);

/** The simulated plant: 4 machines × 3 sensors at 10 Hz with frequent faults (many alert episodes). */
export function chaosSimulator(seed: number, records: number): Partial<SimulatorOptions> {
  return {
    seed,
    machines: 4,
    sensorTypes: ["pressure", "vibration", "temperature"],
    rateHz: 10,
    faultRate: 20,
    startTime: Date.UTC(2026, 0, 1),
    maxRecords: records,
  };
}

/** Resolves true once `done` holds (polled every `everyMs`), false after `timeoutMs`. */
export async function waitFor(done: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await done()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The engine's `--fetch` unless told: messages per JetStream round (fetch, score, durable, acknowledge). */
export const DEFAULT_CHAOS_FETCH = 2000;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class ChaosEnv {
  /** Every engine process started, so that none outlives the harness. */
  private readonly started: CliProcess[] = [];
  private constructor(
    readonly nats: NatsServer,
    readonly clickhouse: ClickHouseServer,
    readonly nc: NatsConnection,
    readonly dir: string,
    private readonly nodeArgs: readonly string[],
    private readonly fetch: number,
  ) {}

  /**
   * `profileDir`: every engine life runs under `node --cpu-prof` writing there (worker threads
   * too). `fetch`: the engine's `--fetch` (messages per JetStream round).
   */
  static async start(profileDir?: string, fetch = DEFAULT_CHAOS_FETCH): Promise<ChaosEnv> {
    const dir = mkdtempSync(join(tmpdir(), "lw-chaos-"));
    const [nats, clickhouse] = await Promise.all([startNatsServer(), startClickHouseServer()]);
    // Reconnecting for ever: the nats-server scenario restarts the server under it.
    const nc = await connectNats({ servers: nats.url, name: "linewatch-chaos", maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    const nodeArgs = profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profileDir}`];
    return new ChaosEnv(nats, clickhouse, nc, dir, nodeArgs, fetch);
  }

  /** Stream `name` capturing `lw.<site>.sensor.>`. */
  async createStream(name: string, site: string): Promise<void> {
    const jsm = await this.nc.jetstreamManager();
    await jsm.streams.add({ name, subjects: [`lw.${site}.sensor.>`] });
  }

  /** The stream's last sequence: every record acknowledged to the publisher (a fresh stream holds 1..last). */
  async lastSeq(stream: string): Promise<number> {
    return (await (await this.nc.jetstreamManager()).streams.info(stream)).state.last_seq;
  }

  /**
   * How far the run's durable consumer has durably handled the stream (0 before it exists): its
   * ack floor, or, with nothing awaiting acknowledgement, what it was delivered. A restarted run
   * may recreate its consumer from its checkpoint, whose ack floor reads 0 until its first ack.
   */
  async ackFloor(stream: string, site: string): Promise<number> {
    try {
      const c = await (await this.nc.jetstreamManager()).consumers.info(stream, `lw-${site}-all`);
      return c.num_ack_pending === 0 ? Math.max(c.ack_floor.stream_seq, c.delivered.stream_seq) : c.ack_floor.stream_seq;
    } catch {
      return 0;
    }
  }

  /** Whether the run's durable consumer has handled every message of the stream: none pending, none awaiting acknowledgement. */
  async consumedAll(stream: string, site: string): Promise<boolean> {
    const jsm = await this.nc.jetstreamManager();
    const last = (await jsm.streams.info(stream)).state.last_seq;
    try {
      const c = await jsm.consumers.info(stream, `lw-${site}-all`);
      return c.num_pending === 0 && c.num_ack_pending === 0 && Math.max(c.ack_floor.stream_seq, c.delivered.stream_seq) >= last;
    } catch {
      return false;
    }
  }

  /** Publishes the simulator's records to JetStream on `site` at `rate` records/s (acknowledged, with Nats-Msg-Id). */
  publish(site: string, rate: number, sim: Partial<SimulatorOptions>): Promise<NatsPublishResult> {
    return publishSimulationTo(this.nats.url, site, rate, sim);
  }

  /** `linewatch run --nats --stream --clickhouse` on `site` (`stream` null: core NATS), writing to database `db`. */
  startRun(site: string, stream: string | null, db: string, extra: readonly string[] = []): CliProcess {
    const args = [
      "run",
      "--nats",
      this.nats.url,
      ...(stream === null ? [] : ["--stream", stream]),
      "--site",
      site,
      "--analysis",
      "rolling,spc",
      "--baseline",
      "50",
      ...TEXTBOOK_SPC_FLAGS,
      "--clickhouse",
      this.clickhouse.url,
      "--clickhouse-db",
      db,
      "--spill-dir",
      join(this.dir, `spill-${db}`),
      "--checkpoint-interval",
      "300ms",
      "--fetch",
      String(this.fetch),
      "--summary-interval",
      "0",
      "--no-serials",
      "--no-publish-scores",
      "--no-file",
      "--alerts",
      join(this.dir, `alerts-${db}.ndjson`),
      ...extra,
    ];
    const p = startCli(args, this.dir, this.nodeArgs);
    this.started.push(p);
    return p;
  }

  /** Rows per sequence of `db.table` FINAL. */
  sequences(db: string, table: "ml_scores" | "ml_sensor_data"): Promise<Map<number, number>> {
    return sequenceCounts(this.clickhouse, db, table);
  }

  /** The score rows of `db` FINAL, by sequence, each as one canonical line (every column). */
  async scoreLines(db: string): Promise<Map<string, string>> {
    return new Map((await readScoreRows(this.clickhouse, db)).map((r) => [String(r.seq), JSON.stringify(r)]));
  }

  /** The alert episodes of `db.ml_alerts` FINAL, by episode id, one line each (acknowledgement apart). */
  async episodeLines(db: string): Promise<Map<string, string>> {
    const text = await this.clickhouse.query(
      `SELECT episode_id, key, family, arrayStringConcat(rules, ','), first_rule, severity, state, opened_at_ms, last_fired_at_ms, ` +
        `closed_at_ms, firings, limits_version, points FROM ${db}.ml_alerts FINAL ORDER BY episode_id FORMAT TSV`,
    );
    const lines = text.length === 0 ? [] : text.replace(/\n$/, "").split("\n");
    return new Map(lines.map((l) => [l.split("\t")[0], l]));
  }

  /** Kills every engine still running, closes the connection, stops both servers and removes their directories. */
  async dispose(): Promise<void> {
    for (const p of this.started) if (running(p)) p.child.kill("SIGKILL");
    await Promise.allSettled(this.started.map((p) => p.exited));
    await this.nc.close().catch(() => {});
    await Promise.allSettled([this.nats.dispose(), this.clickhouse.dispose()]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The simulator's records to JetStream on `site` at `rate` records/s. */
export function publishSimulationTo(url: string, site: string, rate: number, sim: Partial<SimulatorOptions>): Promise<NatsPublishResult> {
  return publishSimulation(new PlantSimulator(sim), { ...DEFAULT_NATS_PUBLISH, url, site, jetstream: true, rate });
}
