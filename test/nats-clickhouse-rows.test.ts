/**
 * `run --nats --stream` into ClickHouse, through real NATS and ClickHouse servers: what the rows
 * of `ml_sensor_data` hold.
 * - Frames: every reading is its own row. Before, all readings of a frame got the message's
 *   stream sequence as `seq`, so two readings of one key in one millisecond of one frame (a
 *   high-rate vibration sensor) had the same row key and one was lost under FINAL.
 * - Single records: their `sensor_unit`, `operating_mode` and `work_order_id` are in the row
 *   (they were left empty).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "nats";
import { runNatsJob, DEFAULT_NATS_JOB } from "../engine/jobs/nats-job.js";
import { Outputs } from "../engine/jobs/outputs.js";
import { encodeFrame } from "../connectors/wire/frame-codec.js";
import { encodeJsonRecord, encodeMsgpackRecord } from "../connectors/wire/codecs.js";
import { rollingAnalysis } from "../operators/rolling/rolling.js";
import { startClickHouseServer, type ClickHouseServer } from "../connectors/local/clickhouse-server.js";
import { serverAvailable, startNatsServer, type NatsServer } from "../connectors/local/nats-server.js";
import { createLogger } from "../engine/core/mod.js";

/** Operational log events are not what these tests look at. */
const QUIET = createLogger({ level: "silent" });

const T0 = 1_767_225_600_000;

async function until(what: string, done: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs the JetStream job over `stream` into database `db` until `records` are scored, then stops it and closes the outputs. */
async function runInto(
  server: NatsServer,
  ch: ClickHouseServer,
  spillDir: string,
  site: string,
  stream: string,
  db: string,
  records: number,
): Promise<void> {
  const outputs = await Outputs.start({ clickhouse: { url: ch.url, database: db, spillDir }, healthIntervalMs: 3_600_000, log: QUIET });
  let stop: () => void = () => {};
  const stopped = new Promise<void>((r) => (stop = r));
  const progress = { recordsIn: 0, recordsOut: 0, checkpoints: 0 };
  const job = runNatsJob({
    ...DEFAULT_NATS_JOB,
    url: server.url,
    site,
    stream,
    progress,
    outputs,
    analyses: [rollingAnalysis({ window: { kind: "count", records: 8 }, alpha: 0.3, timeScale: 1000 })],
    workers: 1,
    groups: 2,
    keysMax: 64,
    publishScores: false,
    summaryIntervalMs: 0,
    console: new PassThrough(),
    stop: stopped,
  });
  try {
    await until(`${records} records scored`, () => progress.recordsOut >= records, 60_000);
  } finally {
    stop();
    await job;
    await outputs.close();
  }
}

describe.skipIf(!serverAvailable("nats-server") || !serverAvailable("clickhouse-server"))(
  "run --nats into ClickHouse: ml_sensor_data rows",
  () => {
    let server: NatsServer;
    let ch: ClickHouseServer;
    let nc: NatsConnection;
    let spillDir: string;
    beforeAll(async () => {
      [server, ch] = await Promise.all([startNatsServer(), startClickHouseServer()]);
      nc = await connect({ servers: server.url });
      spillDir = mkdtempSync(join(tmpdir(), "lw-spill-"));
    }, 60_000);
    afterAll(async () => {
      await nc?.close();
      await Promise.all([server?.dispose(), ch?.dispose()]);
      rmSync(spillDir, { recursive: true, force: true });
    });

    it("two readings of one key in one millisecond of a frame are two rows after FINAL, and frames of different sizes never share a seq", async () => {
      const jsm = await nc.jetstreamManager();
      await jsm.streams.add({ name: "FRAMES", subjects: ["lw.f1.sensor.>"] });
      const js = nc.jetstream();
      // Frame 1: three vibration readings, two in the same millisecond; frame 2: two readings, both
      // in one millisecond; frame 3: a single reading. (With seq = sequence × reading count + index,
      // frame 1's index 2 (1·3+2 = 5) and frame 2's index 1 (2·2+1 = 5) would collide too.)
      const frames = [
        [
          { key: "M1.vibration", time: T0, value: 1 },
          { key: "M1.vibration", time: T0, value: 2 },
          { key: "M1.vibration", time: T0 + 1, value: 3 },
        ],
        [
          { key: "M1.vibration", time: T0 + 1, value: 4 },
          { key: "M1.vibration", time: T0 + 1, value: 5 },
        ],
        [{ key: "M1.vibration", time: T0 + 1, value: 6 }],
      ];
      for (const f of frames) await js.publish("lw.f1.sensor.M1.vibration", encodeFrame(f));
      await runInto(server, ch, spillDir, "f1", "FRAMES", "frames", 6);
      const rows = await ch.query("SELECT timestamp_ms, sensor_value FROM frames.ml_sensor_data FINAL ORDER BY sensor_value FORMAT TSV");
      expect(rows).toBe(
        [
          [T0, 1],
          [T0, 2],
          [T0 + 1, 3],
          [T0 + 1, 4],
          [T0 + 1, 5],
          [T0 + 1, 6],
        ]
          .map((r) => `${r.join("\t")}\n`)
          .join(""),
      );
      const scores = await ch.query("SELECT count() FROM frames.ml_scores FINAL FORMAT TSV");
      expect(scores).toBe("6\n");
    }, 120_000);

    it("single records' sensor_unit, operating_mode and work_order_id reach ml_sensor_data", async () => {
      const jsm = await nc.jetstreamManager();
      await jsm.streams.add({ name: "LABELS", subjects: ["lw.l1.sensor.>"] });
      const js = nc.jetstream();
      const base = { machine_id: "M2", sensor_type: "temperature" };
      await js.publish(
        "lw.l1.sensor.M2.temperature",
        encodeMsgpackRecord({
          ...base,
          timestamp: T0,
          sensor_value: 20.5,
          sensor_unit: "celsius",
          operating_mode: "production",
          work_order_id: "WO-1",
        }),
      );
      await js.publish(
        "lw.l1.sensor.M2.temperature",
        encodeJsonRecord({
          ...base,
          timestamp: T0 + 1,
          sensor_value: 20.6,
          sensor_unit: "celsius",
          operating_mode: "cleaning",
          work_order_id: "WO-2",
        }),
      );
      await js.publish(
        "lw.l1.sensor.M2.temperature",
        encodeMsgpackRecord({
          ...base,
          timestamp: T0 + 2,
          sensor_value: 20.7,
          sensor_unit: "celsius",
          operating_mode: "production",
          work_order_id: "WO-1",
        }),
      );
      await js.publish("lw.l1.sensor.M2.temperature", encodeMsgpackRecord({ ...base, timestamp: T0 + 3, sensor_value: 20.8 }));
      await js.publish("lw.l1.sensor.M2.temperature", encodeFrame([{ key: "M2.temperature", time: T0 + 4, value: 20.9 }]));
      await runInto(server, ch, spillDir, "l1", "LABELS", "labels", 5);
      const rows = await ch.query(
        "SELECT timestamp_ms, sensor_unit, operating_mode, work_order_id FROM labels.ml_sensor_data FINAL ORDER BY timestamp_ms FORMAT TSV",
      );
      expect(rows).toBe(
        [
          [T0, "celsius", "production", "WO-1"],
          [T0 + 1, "celsius", "cleaning", "WO-2"],
          [T0 + 2, "celsius", "production", "WO-1"],
          [T0 + 3, "", "", ""],
          [T0 + 4, "", "", ""],
        ]
          .map((r) => `${r.join("\t")}\n`)
          .join(""),
      );
    }, 120_000);
  },
);
