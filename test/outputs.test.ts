import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { runJob } from "../engine/jobs/run-job.js";
import { Outputs } from "../engine/jobs/outputs.js";
import { rollingAnalysis } from "../operators/rolling/rolling.js";
import { DEFAULT_SPC_PARAMS } from "../operators/spc/layout.js";
import { TEXTBOOK_RULES } from "../operators/spc/rules.js";
import { spcAnalysis } from "../operators/spc/spc.js";
import type { AlertEpisodeEvent } from "../operators/spc/alerts.js";
import { startClickHouseServer, type ClickHouseServer } from "../connectors/local/clickhouse-server.js";
import { serverAvailable } from "../connectors/local/nats-server.js";
import { createLogger } from "../engine/core/mod.js";
import { decodeScoreFrame } from "../connectors/wire/score-frame.js";

/** Operational log events are not what these tests look at. */
const QUIET = createLogger({ level: "silent" });

describe.skipIf(!serverAvailable("clickhouse-server"))("run outputs - ClickHouse tables, WebSocket topics, HTTP API", () => {
  let ch: ClickHouseServer;
  beforeAll(async () => {
    ch = await startClickHouseServer();
  }, 120_000);
  afterAll(async () => {
    await ch?.dispose();
  });

  it("fills the documented tables with every record once and serves the machine topic, the alerts and the API", async () => {
    const outputs = await Outputs.start({
      clickhouse: { url: ch.url, spillDir: mkdtempSync(join(tmpdir(), "lw-spill-")) },
      live: { port: 0, host: "127.0.0.1" },
      healthIntervalMs: 500,
      log: QUIET,
    });
    const access = outputs.liveAccess()!;
    const token = access.generatedToken as string;
    expect(token.length).toBeGreaterThanOrEqual(16);
    // A WebSocket client on one machine's topic.
    const ws = new WebSocket(`${access.wsUrl}?token=${token}`);
    const got: Array<{ topic: string; seq: number; data: { kind: string; frame: string } }> = [];
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    ws.on("message", (m) => {
      const msg = JSON.parse(m.toString()) as { topic?: string; seq: number; data: { kind: string; frame: string } };
      if (msg.topic !== undefined) got.push(msg as { topic: string; seq: number; data: { kind: string; frame: string } });
    });
    ws.send(JSON.stringify({ type: "subscribe", topics: ["machine/M-001"], id: 1 }));
    await new Promise((r) => setTimeout(r, 200));

    const events: AlertEpisodeEvent[] = [];
    // The textbook chart with the moving-range rules, so every rule mask has firings to keep.
    const spc = spcAnalysis({
      params: { ...DEFAULT_SPC_PARAMS, baselineN: 50 },
      ewmaField: "spc_ewma",
      rules: { ...TEXTBOOK_RULES, mr: 0b111 },
      onAlert: (e: AlertEpisodeEvent) => {
        events.push(e);
        outputs.alert(e);
      },
    });
    const result = await runJob({
      simulator: { seed: 4, machines: 2, sensorTypes: ["pressure", "vibration"], rateHz: 10, maxRecords: 20_000, faultRate: 6 },
      analyses: [rollingAnalysis({ window: { kind: "count", records: 16 }, alpha: 0.2, timeScale: 1000 }), spc],
      keyByMode: false,
      workers: 2,
      groups: 4,
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
    expect(result.metrics.recordsOut).toBe(20_000);

    // The API: health of a machine, open alerts, a key's SPC limits, metrics.
    const get = async (path: string) => {
      const res = await fetch(`${access.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
      return { status: res.status, body: res.headers.get("content-type")?.includes("json") ? await res.json() : await res.text() };
    };
    const health = await get("/api/ml/maintenance/health/M-001/");
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ machine_id: "M-001" });
    expect(["low", "medium", "high", "critical"]).toContain((health.body as { risk_level: string }).risk_level);
    expect((await get("/api/ml/maintenance/health/NOPE/")).status).toBe(404);
    // The open episodes: the tracker's, as the API lists them and the health score counts them.
    const open = (await get("/api/alerts")).body as { count: number; results: AlertEpisodeEvent[] };
    expect(open.count).toBe(spc.alerts.open);
    expect(open.results.map((e) => e.episode_id).sort()).toEqual(
      spc.alerts
        .openEpisodes()
        .map((e) => e.episode_id)
        .sort(),
    );
    const features = (health.body as { features: Record<string, number> }).features;
    const openOfM1 = open.results.filter((e) => e.key.startsWith("M-001/"));
    expect(features.open_alerts_high + features.open_alerts_medium + features.open_alerts_low).toBe(openOfM1.length);
    // Acknowledged: an open episode by its tracker (its event goes out), a closed one from the recent list; twice: 409.
    const post = async (path: string, body: unknown) => {
      const res = await fetch(`${access.url}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const recent = (await get("/api/alerts/episodes?state=recent&limit=3")).body as { results: AlertEpisodeEvent[] };
    expect(recent.results.length).toBe(3);
    expect(
      recent.results.every(
        (e, i) => e.closed_at !== null && (i === 0 || (e.closed_at as number) <= (recent.results[i - 1].closed_at as number)),
      ),
    ).toBe(true);
    for (const e of [open.results[0], recent.results[0]]) {
      const acked = await post(`/api/alerts/episodes/${e.episode_id}/ack`, { by: "qa", note: "seen" });
      expect(acked.status, JSON.stringify(acked.body)).toBe(200);
      expect(acked.body).toMatchObject({ event: "acknowledged", episode_id: e.episode_id, closed_at: e.closed_at, acknowledged_by: "qa" });
      expect((await post(`/api/alerts/episodes/${e.episode_id}/ack`, {})).status).toBe(409);
    }
    expect(events.filter((e) => e.event === "acknowledged").map((e) => e.episode_id)).toEqual([open.results[0].episode_id]);
    const limits = await get(`/api/spc/limits/${encodeURIComponent("M-001/pressure")}`);
    expect(limits.status).toBe(200);
    expect(limits.body).toMatchObject({ key: "M-001/pressure", limits_version: 1 });
    const metrics = await get("/metrics");
    expect(metrics.body).toMatch(/linewatch_records_in_total\{source="simulator"\} 20000/);

    // The machine's recent readings for a screen opened later, as the run keeps them.
    const kept = decodeScoreFrame(
      new Uint8Array(
        await (await fetch(`${access.url}/api/history/M-001`, { headers: { authorization: `Bearer ${token}` } })).arrayBuffer(),
      ),
    );
    expect(kept.length).toBe(2 * 600);

    await outputs.close();
    ws.close();

    // After a restart the same history comes from ml_scores: the same readings, times and rule masks.
    const restarted = await Outputs.start({
      clickhouse: { url: ch.url, spillDir: mkdtempSync(join(tmpdir(), "lw-spill-")) },
      live: { port: 0, host: "127.0.0.1" },
      healthIntervalMs: 60_000,
      log: QUIET,
    });
    const again = restarted.liveAccess()!;
    const reply = await fetch(`${again.url}/api/history/M-001`, { headers: { authorization: `Bearer ${again.generatedToken}` } });
    expect(reply.status).toBe(200);
    const stored = decodeScoreFrame(new Uint8Array(await reply.arrayBuffer()));
    await restarted.close();
    const byKey = (f: typeof kept, column: string) =>
      Object.fromEntries(
        f.keys.map((k, j) => [
          k,
          Array.from(f.keyIndex.keys())
            .filter((i) => f.keyIndex[i] === j)
            .map((i) => (column === "time" ? f.times[i] : column === "value" ? f.values[i] : (f.columns.get(column) as Float64Array)[i])),
        ]),
      );
    for (const column of ["time", "we_mask", "nelson_mask", "mr_mask"]) expect(byKey(stored, column)).toEqual(byKey(kept, column));
    expect(Object.values(byKey(kept, "mr_mask")).some((masks) => masks.some((m) => m > 0))).toBe(true);
    // Statistics within 1e-12 relative: ml_scores holds them as the scores file prints them (15
    // significant digits), and ClickHouse 18.16 reads a double's text back within an ulp.
    for (const column of ["value", "cl", "ucl", "mean"]) {
      const [a, b] = [byKey(stored, column), byKey(kept, column)];
      // The same sensors (in whatever order each frame first met them).
      expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
      for (const k of Object.keys(a))
        expect(
          a[k].every((x, i) => (Number.isNaN(x) && Number.isNaN(b[k][i])) || Math.abs(x - b[k][i]) <= 1e-12 * Math.abs(x)),
          `${column} ${k}`,
        ).toBe(true);
    }
    // Only the subscribed machine's records, as score frames, in sequence (a client that falls
    // behind a burst is sampled down; what it misses shows as a gap in the per-topic seq, never as
    // disorder), each reading's times in order per key.
    expect(got.length).toBeGreaterThan(0);
    expect(got.every((m) => m.topic === "machine/M-001" && m.data.kind === "score_frame")).toBe(true);
    expect(got.every((m, i) => i === 0 || m.seq > got[i - 1].seq)).toBe(true);
    const frames = got.map((m) => decodeScoreFrame(Buffer.from(m.data.frame, "base64")));
    expect(frames.every((f) => f.keys.every((k) => k.startsWith("M-001.")))).toBe(true);
    expect([...frames[0].columns.keys()]).toEqual(expect.arrayContaining(["mean", "cl", "ucl", "lcl", "we_mask", "spc_ewma"]));

    // ClickHouse: every record once in the readings and the scores (FINAL: no duplicates).
    const count = async (sql: string) => Number((await ch.query(sql)).trim());
    expect(await count("SELECT count() FROM ml_sensor_data FINAL")).toBe(20_000);
    expect(await count("SELECT count() FROM ml_scores FINAL")).toBe(20_000);
    expect(await count("SELECT count() FROM ml_scores FINAL WHERE limits_version = 1 AND cl IS NOT NULL")).toBeGreaterThan(19_000);
    expect(await count("SELECT count() FROM ml_scores FINAL WHERE mr_mask != 0")).toBeGreaterThan(0);
    expect(await count("SELECT count() FROM ml_equipment_health FINAL")).toBeGreaterThan(0);
    // One row per episode, acknowledged ones with their acknowledgement.
    expect(await count("SELECT count() FROM ml_alerts FINAL")).toBe(new Set(events.map((e) => e.episode_id)).size);
    expect(await count("SELECT count() FROM ml_alerts FINAL WHERE acknowledged_by = 'qa'")).toBe(2);
    expect(await count("SELECT count() FROM ml_alerts FINAL WHERE state = 'open'")).toBe(spc.alerts.open);
  }, 180_000);
});
