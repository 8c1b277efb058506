/**
 * The ordered pull reader both JetStream jobs use (connectors/nats/jetstream-reader.ts): at a gap in
 * the delivery sequence it re-creates the durable consumer after its last sequence. When that
 * re-creation fails half-way (the old consumer deleted, the new one not added — a server busy or
 * restarting), the reader must not go on fetching from the deleted consumer, which would stall
 * the job for good: it retries the re-creation before its next fetch. On an ack-all consumer it
 * sends one ack per round, and what a lost ack leaves pending comes back as redeliveries that are
 * skipped, not taken again, and settled by the next round's ack.
 */
import { AckPolicy, DeliverPolicy, connect, nanos, type Consumer, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OrderedPullReader } from "../connectors/nats/jetstream-reader.js";
import { openDurableConsumer } from "../connectors/nats/durable-consumer.js";
import { type JetStreamSequences, jetStreamSequences, readAckSequences } from "../connectors/nats/raw-subject.js";
import { serverAvailable, startNatsServer, type NatsServer } from "../connectors/local/nats-server.js";
import { memoryLogger } from "../engine/core/mod.js";
import { waitUntil } from "./kit/wait.js";

const RECORDS = 60;

describe.skipIf(!serverAvailable("nats-server"))("JetStream ordered pull reader", () => {
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

  it("a re-creation that fails after deleting the consumer is retried; every message is taken once, in order", async () => {
    const jsm = await nc.jetstreamManager();
    const js = nc.jetstream();
    await jsm.streams.add({ name: "RDR", subjects: ["rdr.>"] });
    const open = async (start: number): Promise<Consumer> => {
      await jsm.consumers.delete("RDR", "r").catch(() => undefined);
      await jsm.consumers.add("RDR", {
        durable_name: "r",
        ack_policy: AckPolicy.Explicit,
        ack_wait: nanos(1000),
        deliver_policy: start === 1 ? DeliverPolicy.All : DeliverPolicy.StartSequence,
        ...(start === 1 ? {} : { opt_start_seq: start }),
      });
      return js.consumers.get("RDR", "r");
    };
    let failures = 0;
    const reopen = async (start: number): Promise<Consumer> => {
      if (failures === 0) {
        failures++;
        await jsm.consumers.delete("RDR", "r");
        throw new Error("consumer add timed out");
      }
      return open(start);
    };
    const { log: logger, entries: log } = memoryLogger();
    const reader = new OrderedPullReader(await open(1), 0, { fetchMessagesMax: 10, label: "test", log: logger, reopen });
    const taken: number[] = [];
    const publish = async (from: number, to: number) => {
      for (let i = from; i < to; i++) await js.publish(`rdr.${i}`, new Uint8Array([i]));
    };
    await publish(0, 10);
    for (let round = 0; round < 20 && taken.length < 10; round++)
      await reader.round(
        async (m) => void taken.push(m.seq),
        async () => {},
      );
    expect(taken).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));

    // Another pull request takes ten deliveries and never acknowledges them: a gap for the reader.
    const stolen = await js.consumers.get("RDR", "r").then((c) => c.fetch({ max_messages: 10, expires: 30_000 }));
    const stolenCount = (async () => {
      let n = 0;
      for await (const _m of stolen) n++;
      return n;
    })();
    await nc.flush();
    await publish(10, RECORDS);
    expect(await stolenCount).toBe(10);
    for (let round = 0; round < 60 && taken.length < RECORDS; round++)
      await reader.round(
        async (m) => void taken.push(m.seq),
        async () => {},
      );

    expect(failures).toBe(1);
    expect(
      log.some((e) => e.level === "warn" && e.consumer === "test" && e.msg.startsWith("re-creating the JetStream consumer failed")),
    ).toBe(true);
    expect(taken).toEqual(Array.from({ length: RECORDS }, (_, i) => i + 1));
    expect(reader.top).toBe(RECORDS);
  }, 120_000);

  it("ack-all: one ack per round; a round whose commit failed is redelivered after ack_wait, skipped, and settled by the next ack", async () => {
    const jsm = await nc.jetstreamManager();
    const js = nc.jetstream();
    await jsm.streams.add({ name: "RDA", subjects: ["rda.>"] });
    const o = { stream: "RDA", durable: "a", filterSubject: "rda.>", maxDeliver: 10, ackWaitMs: 500, maxAckPending: 1000 };
    const reopen = (start: number): Promise<Consumer> => openDurableConsumer(jsm, o, start);
    const { log: logger } = memoryLogger();
    const reader = new OrderedPullReader(await reopen(1), 0, { fetchMessagesMax: 10, label: "ack-all", log: logger, reopen });
    const taken: number[] = [];
    const take = async (m: { seq: number }) => void taken.push(m.seq);
    for (let i = 0; i < 10; i++) await js.publish(`rda.${i}`, new Uint8Array([i]));

    // The outputs of the first round fail: nothing is acknowledged.
    const failed = await reader
      .round(take, async () => {
        throw new Error("sink down");
      })
      .catch((e: Error) => e.message);
    expect(failed).toBe("sink down");
    expect(taken).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));

    // After ack_wait the ten come back: skipped as redeliveries, settled by one ack.
    let redeliveries = 0;
    const acks: number[] = [];
    for (let round = 0; round < 40 && redeliveries < 10; round++) {
      const r = await reader.round(take, async () => {});
      redeliveries += r.redeliveries;
      if (r.taken + r.redeliveries > 0) acks.push(r.acks);
    }
    expect(redeliveries).toBe(10);
    for (let i = 10; i < 35; i++) await js.publish(`rda.${i}`, new Uint8Array([i]));
    for (let round = 0; round < 20 && taken.length < 35; round++) {
      const r = await reader.round(take, async () => {});
      if (r.taken + r.redeliveries > 0) acks.push(r.acks);
    }
    expect(taken).toEqual(Array.from({ length: 35 }, (_, i) => i + 1));
    expect(acks.every((a) => a === 1)).toBe(true);
    // The last ack is a publish: settled once the server has processed it.
    const settled = async (): Promise<boolean> => {
      const info = await jsm.consumers.info("RDA", "a");
      return (
        info.config.ack_policy === AckPolicy.All && info.num_ack_pending === 0 && info.num_pending === 0 && info.ack_floor.stream_seq === 35
      );
    };
    expect(await waitUntil(settled, 30_000)).toBe(true);
  }, 120_000);

  it("reads the stream and delivery sequences from the ack subject's bytes as nats.js parses them", async () => {
    const jsm = await nc.jetstreamManager();
    const js = nc.jetstream();
    await jsm.streams.add({ name: "SEQ", subjects: ["seq.>"] });
    for (let i = 0; i < 25; i++) await js.publish(`seq.${i % 3}`, new Uint8Array([i]));
    const c = await openDurableConsumer(
      jsm,
      { stream: "SEQ", durable: "s", filterSubject: "seq.1", maxDeliver: 3, ackWaitMs: 1000, maxAckPending: 100 },
      1,
    );
    const got: JetStreamSequences = { stream: 0, delivery: 0 };
    const mine: number[][] = [];
    const theirs: number[][] = [];
    for await (const m of await c.fetch({ max_messages: 8, expires: 1000 })) {
      jetStreamSequences(m, got);
      mine.push([got.stream, got.delivery]);
      theirs.push([m.seq, m.info.deliverySequence]);
    }
    expect(mine).toEqual(theirs);
    expect(mine.length).toBe(8);

    // Both shapes nats.js parses (jsmsg.js parseInfo), and what it refuses.
    const read = (s: string): number[] | null => {
      const out: JetStreamSequences = { stream: 0, delivery: 0 };
      return readAckSequences(new TextEncoder().encode(s), out) ? [out.stream, out.delivery] : null;
    };
    expect(read("$JS.ACK.S.C.1.12345.67.1700000000000000000.3")).toEqual([12345, 67]);
    expect(read("$JS.ACK.hub.ACCHASH.S.C.2.9007199254740991.8.1700000000000000000.0.rnd")).toEqual([9007199254740991, 8]);
    expect(read("$JS.ACK._.ACCHASH.S.C.2.41.8.1700000000000000000.0")).toEqual([41, 8]);
    expect(read("$JS.ACK.S.C.1.12x45.67.1.3")).toBeNull();
    expect(read("$JS.NAK.S.C.1.1.1.1.3")).toBeNull();
    expect(read("$JS.ACK.S.C.1.1.1")).toBeNull();
    expect(read("$JS.ACK.S.C.1..1.1.3")).toBeNull();
  }, 60_000);
});
