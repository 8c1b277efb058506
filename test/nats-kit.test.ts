import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, StringCodec } from "nats";
import { serverAvailable, startNatsServer, type NatsServer } from "../connectors/local/nats-server.js";

const available = serverAvailable("nats-server");

describe.skipIf(!available)("test kit - a throw-away nats-server", () => {
  let server: NatsServer;
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(async () => {
    await server?.dispose();
  });

  it("serves core NATS and JetStream on its loopback port, and survives a restart with its streams", async () => {
    const sc = StringCodec();
    let nc = await connect({ servers: server.url });
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: "KIT", subjects: ["kit.>"] });
    await nc.jetstream().publish("kit.a", sc.encode("one"));
    await nc.close();
    await server.restart();
    nc = await connect({ servers: server.url });
    const info = await (await nc.jetstreamManager()).streams.info("KIT");
    expect(info.state.messages).toBe(1);
    await nc.close();
  });
});
