/**
 * The one JetStream stream/consumer setup the sensor and serial jobs share
 * (connectors/nats/durable-consumer.ts): a missing stream is created, an existing one kept; the
 * consumer is re-created from a sequence; and only "not found" means missing — any other failure
 * is a JetStreamSetupError naming the stream, not taken for "none yet". The consumer acknowledges
 * all-at-once where the server allows it, per message where it refuses (a work-queue stream).
 */
import { AckPolicy, connect, RetentionPolicy, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureStream, JetStreamSetupError, openDurableConsumer, streamCapturing } from "../connectors/nats/durable-consumer.js";
import { serverAvailable, startNatsServer, type NatsServer } from "../connectors/local/nats-server.js";
import { memoryLogger } from "../engine/core/mod.js";

describe.skipIf(!serverAvailable("nats-server"))("JetStream durable consumer setup", () => {
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

  const consumer = (stream: string) => ({
    stream,
    durable: "d",
    filterSubject: "dc.>",
    maxDeliver: 3,
    ackWaitMs: 1000,
    maxAckPending: 100,
  });

  it("creates a missing stream once, and a consumer that delivers from the sequence asked for", async () => {
    const jsm = await nc.jetstreamManager();
    expect(await streamCapturing(jsm, "dc.x")).toBeNull();
    await ensureStream(jsm, "DC", ["dc.>"]);
    await ensureStream(jsm, "DC", ["dc.>"]);
    expect(await streamCapturing(jsm, "dc.x")).toBe("DC");
    const js = nc.jetstream();
    for (let i = 1; i <= 5; i++) await js.publish(`dc.${i}`, new Uint8Array([i]));
    // First open: no consumer yet (not found is "none yet"); second open replaces it.
    await openDurableConsumer(jsm, consumer("DC"), 1);
    const c = await openDurableConsumer(jsm, consumer("DC"), 4);
    expect((await c.info(true)).config.ack_policy).toBe(AckPolicy.All);
    const seqs: number[] = [];
    const iter = await c.fetch({ max_messages: 10, expires: 1000 });
    for await (const m of iter) {
      seqs.push(m.seq);
      m.ack();
    }
    expect(seqs).toEqual([4, 5]);
  });

  it("an existing explicit-ack consumer is replaced by an ack-all one; where the server refuses ack-all (a work-queue stream) the consumer acks explicitly, logged", async () => {
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: "DCX", subjects: ["dcx.>"] });
    await jsm.consumers.add("DCX", { durable_name: "d", ack_policy: AckPolicy.Explicit, filter_subject: "dcx.>" });
    const { log, entries } = memoryLogger();
    const replaced = await openDurableConsumer(jsm, { ...consumer("DCX"), filterSubject: "dcx.>", log }, 1);
    expect((await replaced.info(true)).config.ack_policy).toBe(AckPolicy.All);
    expect(entries).toEqual([]);

    await jsm.streams.add({ name: "DCW", subjects: ["dcw.>"], retention: RetentionPolicy.Workqueue });
    const c = await openDurableConsumer(jsm, { ...consumer("DCW"), filterSubject: "dcw.>", log }, 1);
    expect((await c.info(true)).config.ack_policy).toBe(AckPolicy.Explicit);
    expect(entries.map((e) => [e.level, e.consumer, e.msg])).toEqual([
      ["warn", "d", "the server refuses ack-all on this pull consumer; acknowledging each message instead"],
    ]);
  });

  it("a failure other than consumer-not-found is rethrown with the stream named", async () => {
    const jsm = await nc.jetstreamManager();
    // Deleting a consumer of a stream that does not exist answers "stream not found" (10059), not
    // "consumer not found": that is no "none yet".
    const error = await openDurableConsumer(jsm, consumer("NO_SUCH_STREAM"), 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JetStreamSetupError);
    expect((error as JetStreamSetupError).stream).toBe("NO_SUCH_STREAM");
  });

  it("a failure other than stream-not-found while reading a stream's info is rethrown, not taken for missing", async () => {
    const jsm = await nc.jetstreamManager();
    // A name JetStream refuses: the info request fails, but not with "stream not found".
    const error = await ensureStream(jsm, "BAD.NAME", ["bad.>"]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JetStreamSetupError);
    expect(await streamCapturing(jsm, "bad.x")).toBeNull();
  });
});
