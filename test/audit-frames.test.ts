/**
 * The audit record on score frames: a frame-level member of the WebSocket message
 * (`{"kind":"score_frame","frame":…,"audit":{…}}`) and NATS headers on the score frames of ingest
 * workers, the frame bytes unchanged — a message without the record encodes exactly as before, so
 * older clients read both. The ingest run is on a throw-away nats-server.
 */
import { decode, Encoder } from "@msgpack/msgpack";
import { connect } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kernelHash } from "../engine/core/mod.js";
import { auditConfig, auditStamp, DEFAULT_INGEST_JOB, IngestJob } from "../engine/jobs/mod.js";
import { ScoreFrameMessage } from "../connectors/live/mod.js";
import { decodeScoreFrame, encodeScoreFrame } from "../connectors/wire/score-frame.js";
import { serverAvailable, startNatsServer, type NatsServer } from "../connectors/local/nats-server.js";
import { DEFAULT_NATS_PUBLISH, publishSimulation } from "../connectors/sim/nats-publisher.js";
import { PlantSimulator } from "../connectors/sim/plant-simulator.js";
import { SIM, SPECS } from "./kit/ingest-run.js";
import { waitUntil } from "./kit/wait.js";

const FRAME = encodeScoreFrame({ keys: ["M1.t"], keyIndex: [0, 0], times: [1, 2], values: [3, 4], columns: [["mean", [5, 6]]], length: 2 });
const AUDIT = { kernel_hash: "a".repeat(64), config_hash: "b".repeat(64), model_versions: ["c".repeat(64)] };

describe("score frame messages with and without the audit record", () => {
  it("without it: the same MessagePack and JSON as a message of kind and frame", () => {
    const enc = new Encoder();
    // The class's own properties, in the order they always had: the frame (a parameter property), then the kind.
    expect(Buffer.from(enc.encode(new ScoreFrameMessage(FRAME)))).toEqual(Buffer.from(enc.encode({ frame: FRAME, kind: "score_frame" })));
    expect(JSON.stringify(new ScoreFrameMessage(FRAME))).toBe(
      JSON.stringify({ kind: "score_frame", frame: Buffer.from(FRAME).toString("base64") }),
    );
    expect(Object.keys(new ScoreFrameMessage(FRAME, null))).toEqual(["frame", "kind"]);
  });

  it("with it: a frame-level member beside the unchanged frame bytes", () => {
    const m = decode(new Encoder().encode(new ScoreFrameMessage(FRAME, AUDIT))) as { kind: string; frame: Uint8Array; audit: unknown };
    expect(m.kind).toBe("score_frame");
    expect(Buffer.from(m.frame)).toEqual(Buffer.from(FRAME));
    expect(m.audit).toEqual(AUDIT);
    const j = JSON.parse(JSON.stringify(new ScoreFrameMessage(FRAME, AUDIT)));
    expect(j.audit).toEqual(AUDIT);
    expect(decodeScoreFrame(Buffer.from(j.frame, "base64")).length).toBe(2);
  });
});

describe.skipIf(!serverAvailable("nats-server"))("ingest workers of an audited run", () => {
  let server: NatsServer;
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(async () => {
    await server?.dispose();
  });

  it("stamp their NATS score frames (headers) and live frames (message member); an unaudited run's carry neither", async () => {
    const stamp = auditStamp(auditConfig(SPECS, "ms", null), kernelHash());
    for (const audited of [true, false]) {
      const nc = await connect({ servers: server.url });
      const headers: Array<Record<string, string>> = [];
      let rows = 0;
      const sub = nc.subscribe("lw.f1.score-frame.>", {
        callback: (_e, msg) => {
          rows += decodeScoreFrame(msg.data).length;
          const h = msg.headers;
          headers.push(h === undefined ? {} : Object.fromEntries([...h.keys()].map((k) => [k, h.get(k)])));
        },
      });
      await nc.flush();
      const published: Array<{ audit?: unknown }> = [];
      const job = await IngestJob.start({
        ...DEFAULT_INGEST_JOB,
        url: server.url,
        site: "f1",
        workers: 1,
        partitions: 0,
        analyses: SPECS,
        keysMax: 64,
        batchRecordsMax: 512,
        live: { publish: (_topic, data) => published.push(data as { audit?: unknown }) },
        audit: audited ? { configHash: stamp.configHash } : null,
      });
      await publishSimulation(new PlantSimulator({ ...SIM, maxRecords: 3000 }), {
        ...DEFAULT_NATS_PUBLISH,
        url: server.url,
        site: "f1",
        msgIds: false,
      });
      expect(await waitUntil(() => job.counts().scored >= 3000, 60_000)).toBe(true);
      await job.stop();
      await nc.flush();
      sub.unsubscribe();
      await nc.close();
      expect(rows).toBe(3000);
      expect(published.length).toBeGreaterThan(0);
      if (audited) {
        const want = { kernel_hash: stamp.kernelHash, config_hash: stamp.configHash, model_versions: [] };
        for (const p of published) expect(p.audit).toEqual(want);
        for (const h of headers)
          expect(h).toEqual({ "Lw-Kernel-Hash": stamp.kernelHash, "Lw-Config-Hash": stamp.configHash, "Lw-Model-Versions": "" });
      } else {
        for (const p of published) expect("audit" in (p as object)).toBe(false);
        for (const h of headers) expect(h).toEqual({});
      }
    }
  }, 180_000);
});
