/**
 * A JetStream delivery the NATS job never receives must not be lost. Under load a fetch can give
 * up on its pull request while the server is still sending to it; those messages come back only
 * after ack_wait, behind newer ones the job has processed, and the job used to skip them as
 * redeliveries of sequences at or below its last (test/clickhouse-replay.test.ts lost two records
 * that way during a ClickHouse outage on a loaded machine). Here another client pulls ten messages
 * from the job's durable consumer and never acknowledges them: the job sees the gap in the
 * delivery sequence, re-creates its consumer after its last processed sequence, and scores every
 * record once, in stream order.
 */
import { PassThrough } from "node:stream";
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeMsgpackRecord } from "../connectors/wire/codecs.js";
import { DEFAULT_NATS_JOB, runNatsJob } from "../engine/jobs/nats-job.js";
import { rollingAnalysis } from "../operators/rolling/rolling.js";
import { serverAvailable, startNatsServer, type NatsServer } from "../connectors/local/nats-server.js";
import { waitUntil } from "./kit/wait.js";

const RECORDS = 100;

describe.skipIf(!serverAvailable("nats-server"))("nats job - a delivery lost on the way is consumed again, not skipped", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
  });
  afterAll(async () => {
    await nc?.close();
    await server?.dispose();
  });

  it("ten messages pulled by another client and never acknowledged are still scored, once, in order", async () => {
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: "GAP", subjects: ["lw.gap.sensor.>"] });
    const seqs: number[] = [];
    const scores = nc.subscribe("lw.gap.score.>", {
      callback: (_e, m) => seqs.push((JSON.parse(new TextDecoder().decode(m.data)) as { seq: number }).seq),
    });
    const console = new PassThrough();
    let log = "";
    console.on("data", (d: Buffer) => (log += d.toString()));
    let stop: () => void = () => {};
    let ready: () => void = () => {};
    const isReady = new Promise<void>((r) => (ready = r));
    const progress = { recordsIn: 0, recordsOut: 0, checkpoints: 0 };
    const job = runNatsJob({
      ...DEFAULT_NATS_JOB,
      url: server.url,
      site: "gap",
      stream: "GAP",
      analyses: [rollingAnalysis({ window: { kind: "count", records: 4 }, alpha: 0.5, timeScale: 1000 })],
      workers: 1,
      groups: 4,
      fetchMessagesMax: 10,
      ackWaitMs: 1000,
      publishScores: true,
      summaryIntervalMs: 0,
      console,
      stop: new Promise<void>((r) => (stop = r)),
      onReady: () => ready(),
      progress,
    });
    await isReady;
    const js = nc.jetstream();
    const publish = async (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        await js.publish(
          "lw.gap.sensor.M-001.pressure",
          encodeMsgpackRecord({ machine_id: "M-001", sensor_type: "pressure", timestamp: 1_767_225_600_000 + i * 100, sensor_value: i }),
        );
      }
    };
    await publish(0, 10);
    expect(await waitUntil(() => progress.recordsOut >= 10, 20_000)).toBe(true);
    // Another pull request on the job's consumer, waiting beside the job's own: the next records
    // are delivered to both, and this one's ten are never acknowledged.
    const stolen = await js.consumers.get("GAP", "lw-gap-all").then((c) => c.fetch({ max_messages: 10, expires: 30_000 }));
    const taken = (async () => {
      let n = 0;
      for await (const _m of stolen) n++;
      return n;
    })();
    await nc.flush();
    await publish(10, RECORDS);
    expect(await taken).toBe(10);

    await waitUntil(() => progress.recordsOut >= RECORDS, 20_000);
    stop();
    const result = await job;
    await nc.flush();
    scores.unsubscribe();
    expect(result.recordsOut).toBe(RECORDS);
    expect(seqs).toEqual(Array.from({ length: RECORDS }, (_, i) => i + 1));
    // The job's operational events are JSON lines on its console when no logger is given.
    const gap = log
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((e) => typeof e.msg === "string" && e.msg.includes("never arrived"));
    expect(gap).toMatchObject({ level: "warn", component: "nats", consumer: expect.stringMatching(/^partition \d+$/) });
    expect(Number.isInteger(gap?.from_stream_seq)).toBe(true);
  }, 60_000);
});
