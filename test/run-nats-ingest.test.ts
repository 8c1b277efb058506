/**
 * `linewatch run --nats` on ingest workers, through the built CLI (dist/: `npm run build` first)
 * against throw-away nats-server (a 4-partition mapping) and clickhouse-server: what the move of
 * the records off the main thread must keep.
 *
 * - A limits change through the HTTP API reaches the worker that owns the key and applies in
 *   stream order: every score line of the key before it carries the baseline's limits, every one
 *   after it the new ones; the other keys keep theirs; the API serves what the worker reported.
 * - The workers' alert episode events reach the alerts file and ml_alerts alike (one row per
 *   episode, in the state of its last event), the API lists the open episodes and takes an
 *   acknowledgement, applied by the worker that has the episode open; and each machine the
 *   workers saw has its ml_equipment_health row.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startClickHouseServer, type ClickHouseServer } from "../connectors/local/clickhouse-server.js";
import { serverAvailable, startNatsServer, type NatsServer } from "../connectors/local/nats-server.js";
import { DEFAULT_NATS_PUBLISH, publishSimulation } from "../connectors/sim/nats-publisher.js";
import { PlantSimulator, type SimulatorOptions } from "../connectors/sim/plant-simulator.js";
import { startCli, TEXTBOOK_SPC_FLAGS, type CliProcess } from "./kit/cli.js";
import { liveApi } from "./kit/live-api.js";
import { waitUntil } from "./kit/wait.js";

const servers = serverAvailable("nats-server") && serverAvailable("clickhouse-server");
const SITE = "ri";
const KEY = "M-001/pressure";
const SIM: Partial<SimulatorOptions> = { seed: 5, machines: 3, sensorTypes: ["pressure", "vibration"], rateHz: 10, faultRate: 20 };
const PHASE = 3_000;

interface ScoreLine {
  machine_id: string;
  sensor_type: string;
  timestamp: number;
  cl: number | null;
  sigma: number | null;
  limits_version: number;
}

describe.skipIf(!servers)("run --nats on ingest workers - the main thread steers", () => {
  let nats: NatsServer;
  let ch: ClickHouseServer;
  let nc: NatsConnection;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "lw-run-ingest-"));
    const conf = join(dir, "partitions.conf");
    writeFileSync(
      conf,
      `mappings = {\n  "lw.${SITE}.sensor.*.*": "lw.${SITE}.p.{{partition(4,1)}}.sensor.{{wildcard(1)}}.{{wildcard(2)}}"\n}\n`,
    );
    [nats, ch] = await Promise.all([startNatsServer(["-c", conf]), startClickHouseServer()]);
    nc = await connect({ servers: nats.url });
  }, 120_000);
  afterAll(async () => {
    await nc?.close();
    await Promise.all([nats?.dispose(), ch?.dispose()]);
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it("a limits change through the API applies in stream order on the owning worker; episodes reach ml_alerts, are listed and acknowledged; health rows", async () => {
    const lines: ScoreLine[] = [];
    let acked = "";
    const sub = nc.subscribe(`lw.${SITE}.score.>`, { callback: (_e, m) => lines.push(m.json<ScoreLine>()) });
    await nc.flush();
    const alertsFile = join(dir, "alerts.ndjson");
    const run = startRun(alertsFile);
    try {
      const api = await liveApi(run);
      await publish(1, 0);
      expect(await waitUntil(() => lines.length >= PHASE, 60_000), run.output()).toBe(true);
      const before = await api("GET", `/api/spc/limits/${encodeURIComponent(KEY)}`);
      expect(before.status, run.output()).toBe(200);
      expect(before.body).toMatchObject({ key: KEY, limits_version: 1 });

      const set = await api("PUT", `/api/spc/limits/${encodeURIComponent(KEY)}`, { cl: 1000, sigma: 1 });
      expect(set.status, JSON.stringify(set.body)).toBe(200);
      expect((await api("PUT", `/api/spc/limits/${encodeURIComponent("M-009/pressure")}`, { cl: 1, sigma: 1 })).status).toBe(404);
      await publish(2, 3_600_000);
      expect(await waitUntil(() => lines.length >= 2 * PHASE, 60_000), run.output()).toBe(true);
      const after = await api("GET", `/api/spc/limits/${encodeURIComponent(KEY)}`);
      expect(after.body).toMatchObject({ key: KEY, cl: 1000, sigma: 1, limits_version: 2 });
      acked = await acknowledgeOne(api);

      expect(await run.stop(), run.output()).toBe(0);
      expect(run.output()).toMatch(/on 2 ingest workers/);
      expectCutInStreamOrder(lines);
    } finally {
      sub.unsubscribe();
      await run.stop();
    }
    await expectAlertsAndHealth(alertsFile, acked);
  }, 240_000);

  function startRun(alertsFile: string): CliProcess {
    return startCli(
      [
        "run",
        "--nats",
        nats.url,
        "--site",
        SITE,
        "--partition-count",
        "4",
        "--ingest-workers",
        "2",
        "--analysis",
        "rolling,spc",
        "--baseline",
        "30",
        ...TEXTBOOK_SPC_FLAGS,
        "--clickhouse",
        ch.url,
        "--clickhouse-db",
        "ri",
        "--spill-dir",
        join(dir, "spill"),
        "--port",
        "0",
        "--summary-interval",
        "0",
        "--no-serials",
        "--alerts",
        alertsFile,
      ],
      dir,
    );
  }

  /** Once the run consumes: a call to its HTTP API with the token it generated. */
  /** PHASE records of the simulator (seed `seed`), event times shifted by `shiftMs`. */
  async function publish(seed: number, shiftMs: number): Promise<void> {
    const start = Date.parse("2026-01-01T00:00:00Z") + shiftMs;
    await publishSimulation(new PlantSimulator({ ...SIM, seed, startTime: start, maxRecords: PHASE }), {
      ...DEFAULT_NATS_PUBLISH,
      url: nats.url,
      site: SITE,
      rate: 20_000,
    });
  }

  /** The key's lines before the change carry version 1, after it the set limits; the other keys stay at 1. */
  function expectCutInStreamOrder(lines: readonly ScoreLine[]): void {
    const cut = Date.parse("2026-01-01T00:00:00Z") + 3_600_000;
    const key = lines.filter((l) => `${l.machine_id}/${l.sensor_type}` === KEY);
    const early = key.filter((l) => l.timestamp < cut);
    const late = key.filter((l) => l.timestamp >= cut);
    expect(early.length).toBeGreaterThan(100);
    expect(late.length).toBeGreaterThan(100);
    // Version 0 while the key's baseline fills, then the baseline's limits.
    expect(early.every((l) => l.limits_version <= 1 && l.cl !== 1000)).toBe(true);
    expect(early[early.length - 1].limits_version).toBe(1);
    expect(late.every((l) => l.limits_version === 2 && l.cl === 1000 && l.sigma === 1)).toBe(true);
    const others = lines.filter((l) => `${l.machine_id}/${l.sensor_type}` !== KEY && l.timestamp >= cut);
    expect(others.length).toBeGreaterThan(100);
    expect(others.every((l) => l.limits_version === 1)).toBe(true);
  }

  /**
   * An open episode the API lists is acknowledged (the worker that has it open answers with it);
   * again: 409; an unknown id: 404. The episode's id.
   */
  async function acknowledgeOne(api: Awaited<ReturnType<typeof liveApi>>): Promise<string> {
    const open = await api("GET", "/api/alerts/episodes?state=open&limit=5");
    expect(open.status, JSON.stringify(open.body)).toBe(200);
    const results = open.body.results as Array<{ episode_id: string; closed_at: number | null; key: string }>;
    expect(results.length).toBeGreaterThan(0);
    expect(results.every((e) => e.closed_at === null)).toBe(true);
    expect((await api("GET", "/api/alerts")).body.count).toBeGreaterThanOrEqual(results.length);
    const recent = await api("GET", "/api/alerts/episodes?state=recent&machine_id=M-001");
    expect(
      (recent.body.results as Array<{ key: string; closed_at: number | null }>).every(
        (e) => e.key.startsWith("M-001/") && e.closed_at !== null,
      ),
    ).toBe(true);
    const id = results[0].episode_id;
    const ack = await api("POST", `/api/alerts/episodes/${id}/ack`, { by: "qa-ri", note: "checked" });
    expect(ack.status, JSON.stringify(ack.body)).toBe(200);
    expect(ack.body).toMatchObject({
      type: "alert_episode",
      event: "acknowledged",
      episode_id: id,
      acknowledged_by: "qa-ri",
      ack_note: "checked",
    });
    expect((await api("POST", `/api/alerts/episodes/${id}/ack`, {})).status).toBe(409);
    expect((await api("POST", "/api/alerts/episodes/0000000000000000/ack", {})).status).toBe(404);
    return id;
  }

  /**
   * Every episode of the file is one row of ml_alerts FINAL, in the state of its last event there
   * (state, firings, rules, acknowledgement); the acknowledged one carries it; each machine has a health row.
   */
  async function expectAlertsAndHealth(alertsFile: string, acked: string): Promise<void> {
    type Event = {
      event: string;
      episode_id: string;
      key: string;
      rules: string[];
      firings: number;
      closed_at: number | null;
      acknowledged_by: string | null;
    };
    const events = readFileSync(alertsFile, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Event);
    expect(events.length).toBeGreaterThan(10);
    expect(events.some((e) => e.event === "acknowledged" && e.episode_id === acked)).toBe(true);
    const last = new Map<string, Event>();
    for (const e of events) last.set(e.episode_id, e);
    const fromFile = [...last.values()]
      .map((e) =>
        [e.episode_id, e.key, e.closed_at === null ? "open" : "closed", e.firings, e.rules.join(","), e.acknowledged_by ?? ""].join("|"),
      )
      .sort();
    const rows = (
      await ch.query(
        "SELECT episode_id, key, state, firings, arrayStringConcat(rules, ','), acknowledged_by FROM ri.ml_alerts FINAL ORDER BY episode_id FORMAT TSV",
      )
    )
      .replace(/\n$/, "")
      .split("\n")
      .map((l) => l.split("\t").join("|"));
    expect(rows).toEqual(fromFile);
    expect(rows.filter((r) => r.endsWith("|qa-ri")).length).toBe(1);
    const health = (await ch.query("SELECT DISTINCT machine_id FROM ri.ml_equipment_health ORDER BY machine_id FORMAT TSV")).trim();
    expect(health.split("\n")).toEqual(["M-001", "M-002", "M-003"]);
  }
});
