import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "nats";
import { IngestJob, DEFAULT_INGEST_JOB } from "../engine/jobs/ingest/mod.js";
import { Outputs } from "../engine/jobs/mod.js";
import { createLogger } from "../engine/core/mod.js";
import { decodeScoreFrame } from "../connectors/wire/mod.js";
import type { ScoreFrameMessage } from "../connectors/live/mod.js";
import { publishSimulation, DEFAULT_NATS_PUBLISH } from "../connectors/sim/nats-publisher.js";
import { PlantSimulator } from "../connectors/sim/plant-simulator.js";
import { serverAvailable, startNatsServer, type NatsServer } from "../connectors/local/nats-server.js";
import { waitUntil } from "./kit/wait.js";
import { expectedRows, SIM, SPECS } from "./kit/ingest-run.js";

describe.skipIf(!serverAvailable("nats-server"))("ingest job - partitions owned by ingest workers", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), "lw-ingest-"));
    const conf = join(dir, "partitions.conf");
    writeFileSync(
      conf,
      "mappings = {\n" +
        '  "lw.i1.sensor.*.*": "lw.i1.p.{{partition(4,1)}}.sensor.{{wildcard(1)}}.{{wildcard(2)}}"\n' +
        '  "lw.i1.sensor.*": "lw.i1.p.{{partition(4,1)}}.sensor.{{wildcard(1)}}"\n' +
        "}\n",
    );
    server = await startNatsServer(["-c", conf]);
    nc = await connect({ servers: server.url });
  });
  afterAll(async () => {
    await nc?.close();
    await server?.dispose();
  });

  it.each(["msgpack", "frame"] as const)(
    "two workers score every %s reading once, each key in order, bit-equal to one in-process engine",
    async (format) => {
      const want = await expectedRows();
      const got = new Map<string, number[][]>();
      let frames = 0;
      const sub = nc.subscribe(`lw.i1.score-frame.>`, {
        callback: (_e, msg) => {
          frames++;
          const f = decodeScoreFrame(msg.data);
          expect([...f.columns.keys()]).toEqual(want.names);
          const cols = [...f.columns.values()];
          for (let i = 0; i < f.length; i++) {
            const key = f.keys[f.keyIndex[i]];
            if (!got.has(key)) got.set(key, []);
            got.get(key)?.push([f.times[i], f.values[i], ...cols.map((c) => c[i])]);
          }
        },
      });
      await nc.flush();
      let alerts = 0;
      const published: Array<{ topic: string; data: unknown }> = [];
      let fromRing = 0;
      const job = await IngestJob.start({
        ...DEFAULT_INGEST_JOB,
        url: server.url,
        site: "i1",
        workers: 2,
        partitions: 4,
        analyses: SPECS,
        groups: 4,
        keysMax: 64,
        batchRecordsMax: 512,
        // A frame may view the worker's frame ring, rewritten after the call: kept as a lasting copy.
        live: {
          publish: (topic, data) => {
            const m = data as ScoreFrameMessage;
            const kept = m.lasting();
            if (kept !== m) fromRing++;
            return published.push({ topic, data: kept });
          },
        },
        onAlert: () => alerts++,
      });
      await publishSimulation(new PlantSimulator(SIM), {
        ...DEFAULT_NATS_PUBLISH,
        url: server.url,
        site: "i1",
        msgIds: false,
        format,
        frameReadings: 250,
      });
      expect(await waitUntil(() => job.counts().scored >= SIM.maxRecords!, 60_000)).toBe(true);
      // A worker holds its alert events for a while (one post for many drains); on a quiet stream
      // its timer posts them, with no sync or stop to ask for them.
      expect(await waitUntil(() => alerts === want.alerts, 10_000)).toBe(true);
      const result = await job.stop();
      await nc.flush();
      sub.unsubscribe();
      expect(result).toMatchObject({ readings: SIM.maxRecords, scored: SIM.maxRecords, shed: 0, deadLettered: 0, restarts: 0 });
      // Single records all take the specialised reader; frames are read in bulk.
      expect(result.fastRecords).toBe(format === "msgpack" ? SIM.maxRecords : 0);
      if (format === "msgpack") expect(result.messages).toBe(SIM.maxRecords);
      expect(frames).toBe(result.scoreFrames);
      expect([...got.keys()].sort()).toEqual([...want.rows.keys()].sort());
      for (const [key, rows] of want.rows) {
        const mine = got.get(key) ?? [];
        expect(mine.length, key).toBe(rows.length);
        // Bit-equal, NaN included: Object.is per field.
        const firstDiff = rows.findIndex((r, i) => r.some((v, j) => !Object.is(v, mine[i][j])));
        expect(firstDiff, `${key}: first differing row`).toBe(-1);
      }
      expect(alerts).toBe(want.alerts);
      // The live frames: one message per machine per drain, every row once.
      const liveRows = published.reduce((n, p) => n + decodeScoreFrame((p.data as { frame: Uint8Array }).frame).length, 0);
      expect(liveRows).toBe(SIM.maxRecords);
      expect(new Set(published.map((p) => p.topic)).size).toBe(SIM.machines);
      // The frames came through the workers' frame rings (frame-ring.ts), not as transferred buffers.
      expect(fromRing).toBeGreaterThan(0);
    },
    120_000,
  );

  it("refuses several workers without the server's partition mapping, naming the fix", async () => {
    await expect(
      IngestJob.start({ ...DEFAULT_INGEST_JOB, url: server.url, site: "i1", workers: 2, partitions: 0, analyses: SPECS, live: null }),
    ).rejects.toThrow(/partition mapping/);
  });
});

describe.skipIf(!serverAvailable("nats-server"))("ingest job - core NATS past the worker's pending records", () => {
  it("sheds what does not fit and counts it: readings + shed = published, every reading scored, linewatch_nats_shed_total equal to the shed", async () => {
    const server = await startNatsServer();
    try {
      const outputs = await Outputs.start({ healthIntervalMs: 60_000, log: createLogger({ level: "silent" }) });
      // 32 pending records: a burst published unpaced arrives faster than one drain (a socket read holds hundreds).
      const job = await IngestJob.start({
        ...DEFAULT_INGEST_JOB,
        url: server.url,
        site: "shed",
        workers: 1,
        partitions: 0,
        analyses: SPECS,
        keysMax: 64,
        batchRecordsMax: 512,
        pendingRecordsMax: 32,
        live: null,
      });
      outputs.attachIngest(job, 1, true, "nats", ["rolling", "spc"]);
      const sent = await publishSimulation(new PlantSimulator(SIM), {
        ...DEFAULT_NATS_PUBLISH,
        url: server.url,
        site: "shed",
        msgIds: false,
      });
      const handled = () => job.counts().scored + job.counts().shed;
      expect(await waitUntil(() => handled() >= sent.readings, 60_000), JSON.stringify(job.counts())).toBe(true);
      const scrape = await outputs.registry.render();
      const result = await job.stop();
      await outputs.close();
      expect(result.shed).toBeGreaterThan(0);
      expect({ published: sent.readings, accounted: result.readings + result.shed, scored: result.scored }).toEqual({
        published: SIM.maxRecords,
        accounted: SIM.maxRecords,
        scored: result.readings,
      });
      const line = scrape.split("\n").find((l) => l.startsWith('linewatch_nats_shed_total{source="nats"} '));
      expect(line, scrape).toBe(`linewatch_nats_shed_total{source="nats"} ${result.shed}`);
    } finally {
      await server.dispose();
    }
  }, 120_000);
});
