import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, ErrorCode, NatsError, type KV, type NatsConnection } from "nats";
import { CheckpointError } from "../engine/core/errors.js";
import { CheckpointStore } from "../connectors/nats/checkpoint-store.js";
import { serverAvailable, startNatsServer, type NatsServer } from "../connectors/local/nats-server.js";

describe.skipIf(!serverAvailable("nats-server"))("checkpoint store - JetStream key-value", () => {
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

  it("stores a checkpoint larger than a NATS message in chunks and reads back the latest, intact", async () => {
    const store = await CheckpointStore.open(nc, "lw-ckpt-test", 1000);
    expect(await store.load("p0")).toBeNull();
    const first = Uint8Array.from({ length: 3500 }, (_, i) => i % 251);
    await store.save("p0", first, 41);
    const second = Uint8Array.from({ length: 1200 }, (_, i) => (i * 7) % 256);
    await store.save("p0", second, 99);
    const loaded = await store.load("p0");
    expect(loaded?.position).toBe(99);
    expect(Buffer.from(loaded!.bytes).equals(Buffer.from(second))).toBe(true);
    // The first generation's chunks are gone: only the manifest and two chunks remain.
    const kv = await nc.jetstream().views.kv("lw-ckpt-test");
    const keys: string[] = [];
    for await (const k of await kv.keys()) keys.push(k);
    expect(keys.length).toBe(3);
    expect(keys.sort()[0]).toBe("p0");
    expect(keys.slice(1).map((k) => k.replace(/x[0-9a-f]{8}\./, "."))).toEqual(["p0.g2.c0", "p0.g2.c1"]);
  });

  it("a reader racing a saver gets the newer checkpoint whole, not an error for the purged generation", async () => {
    const store = await CheckpointStore.open(nc, "lw-ckpt-race", 500);
    const content = (g: number) => Uint8Array.from({ length: 6000 }, (_, i) => (i * 13 + g) % 256);
    await store.save("p2", content(1), 1);
    // A save lands between the reader's manifest and its first chunk, purging what it was about to read.
    const kv = (store as unknown as { kv: KV }).kv;
    const get = kv.get.bind(kv);
    let raced = false;
    kv.get = async (key: string) => {
      if (!raced && key.includes(".g")) {
        raced = true;
        await store.save("p2", content(2), 2);
      }
      return get(key);
    };
    const loaded = await store.load("p2");
    expect(raced).toBe(true);
    expect(loaded?.position).toBe(2);
    expect(Buffer.from(loaded!.bytes).equals(Buffer.from(content(2)))).toBe(true);
  });

  it("saves of one name started together run in turn: generations rise, the last save is the checkpoint, every load is whole", async () => {
    const store = await CheckpointStore.open(nc, "lw-ckpt-overlap", 700);
    const content = (g: number) => Uint8Array.from({ length: 3000 + 500 * (g % 3) }, (_, i) => (i * 7 + g) % 256);
    const kv = (store as unknown as { kv: KV }).kv;
    const generations: number[] = [];
    const saves = Array.from({ length: 8 }, (_, g) => store.save("p3", content(g), g + 1));
    const loads: Array<Promise<{ position: number; bytes: Uint8Array } | null>> = [];
    for (let i = 0; i < 8; i++) {
      loads.push(store.load("p3"));
      const m = await kv.get("p3");
      if (m !== null && m.value.length > 0)
        generations.push((JSON.parse(new TextDecoder().decode(m.value)) as { generation: number }).generation);
      await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.all(saves);
    for (const loaded of await Promise.all(loads)) {
      if (loaded === null) continue;
      expect(Buffer.from(loaded.bytes).equals(Buffer.from(content(loaded.position - 1)))).toBe(true);
    }
    expect(generations).toEqual([...generations].sort((a, b) => a - b));
    const last = await store.load("p3");
    expect(last?.position).toBe(8);
    expect(Buffer.from(last!.bytes).equals(Buffer.from(content(7)))).toBe(true);
    const manifest = JSON.parse(new TextDecoder().decode((await kv.get("p3"))!.value)) as { generation: number };
    expect(manifest.generation).toBe(8);
  });

  it("refuses a checkpoint whose chunks do not match the manifest", async () => {
    const store = await CheckpointStore.open(nc, "lw-ckpt-test2", 1000);
    await store.save("p1", new Uint8Array(2000).fill(3), 5);
    const kv = await nc.jetstream().views.kv("lw-ckpt-test2");
    const { chunkSet } = JSON.parse(new TextDecoder().decode((await kv.get("p1"))!.value)) as { chunkSet: string };
    await kv.put(`p1.${chunkSet}.c1`, new Uint8Array(1000).fill(4));
    await expect(store.load("p1")).rejects.toBeInstanceOf(CheckpointError);
  });

  it("a load outlasts a server that stops answering for longer than a request's timeout (5 s)", async () => {
    const store = await CheckpointStore.open(nc, "lw-ckpt-stall", 1000);
    const content = Uint8Array.from({ length: 2500 }, (_, i) => (i * 11) % 256);
    await store.save("p3", content, 77);
    server.signal("SIGSTOP");
    let resumed = false;
    const resume = setTimeout(() => {
      resumed = true;
      server.signal("SIGCONT");
    }, 6_500);
    try {
      const loaded = await store.load("p3");
      expect(resumed).toBe(true);
      expect(loaded?.position).toBe(77);
      expect(Buffer.from(loaded!.bytes).equals(Buffer.from(content))).toBe(true);
    } finally {
      clearTimeout(resume);
      server.signal("SIGCONT");
    }
  }, 30_000);

  it("a manifest stored after its save gave up (the put timed out) names its own chunks, not the next save's", async () => {
    const store = await CheckpointStore.open(nc, "lw-ckpt-late", 1000);
    const content = (g: number, n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 5 + g) % 256);
    const positionOf = (value: unknown) => JSON.parse(new TextDecoder().decode(value as Uint8Array)).position as number;
    await store.save("p4", content(1, 3500), 1);
    // Save 2's manifest put: the client times out, the server stores it later — after save 3 has
    // read the manifest (gen 1) and while it writes its chunks; save 3 then dies before its own
    // manifest (a kill -9), so the late manifest is the checkpoint a restart reads.
    const kv = (store as unknown as { kv: KV }).kv;
    const put = kv.put.bind(kv);
    let late: (() => Promise<unknown>) | null = null;
    let landed = false;
    kv.put = async (key, value, opts) => {
      if (key === "p4" && positionOf(value) === 2) {
        late = () => put(key, value, opts);
        throw NatsError.errorForCode(ErrorCode.Timeout);
      }
      if (key === "p4" && positionOf(value) === 3) throw new Error("killed before its manifest");
      if (late !== null && !landed && key.startsWith("p4.")) {
        landed = true;
        await late();
      }
      return put(key, value, opts);
    };
    await expect(store.save("p4", content(2, 3500), 2)).rejects.toBeInstanceOf(NatsError);
    await expect(store.save("p4", content(3, 2500), 3)).rejects.toThrow("killed");
    expect(landed).toBe(true);
    const restarted = await CheckpointStore.open(nc, "lw-ckpt-late", 1000);
    const loaded = await restarted.load("p4");
    expect(loaded?.position).toBe(2);
    expect(Buffer.from(loaded!.bytes).equals(Buffer.from(content(2, 3500)))).toBe(true);
    // The restarted store's next save replaces it and purges the chunks of the checkpoint it replaced.
    await restarted.save("p4", content(4, 1500), 4);
    const last = await restarted.load("p4");
    expect(last?.position).toBe(4);
    expect(Buffer.from(last!.bytes).equals(Buffer.from(content(4, 1500)))).toBe(true);
    const keys: string[] = [];
    for await (const k of await kv.keys()) keys.push(k);
    // Its own two chunks, and what the first store's failed saves left unnamed: save 1's four (save 2
    // replaced it but never learnt so) and the three save 3 wrote before it died.
    expect(keys.filter((k) => k.startsWith("p4.")).length).toBe(9);
  });
});
