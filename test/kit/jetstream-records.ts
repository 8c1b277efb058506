/**
 * Records of a file into a JetStream stream, so a test can run the engine from NATS on exactly the
 * records `linewatch replay` reads from that file: one MessagePack record per message (the
 * source field names, as read from the file) on `lw.<site>.sensor.<machine>.<sensor>`, in file
 * order, each acknowledged by the server. A fresh stream therefore holds record i (0-based) at
 * stream sequence i + 1. `Nats-Msg-Id` is the record's site, machine, sensor and time, as
 * `linewatch simulate --nats --jetstream` sets it.
 */
import { connect, headers, type NatsConnection, type PubAck } from "nats";
import { encodeMsgpackRecord, type SensorReadingInput } from "../../connectors/wire/codecs.js";

export interface PublishRecordsOptions {
  url: string;
  site: string;
  /** Records per second at most (Infinity: as fast as the server acknowledges). */
  ratePerSecond: number;
}

/** Creates stream `name` capturing `lw.<site>.sensor.>`. */
export async function createSensorStream(nc: NatsConnection, name: string, site: string): Promise<void> {
  const jsm = await nc.jetstreamManager();
  await jsm.streams.add({ name, subjects: [`lw.${site}.sensor.>`] });
}

/** Publishes `records` in order; resolves with the stream sequence of each, once all are acknowledged. */
export async function publishRecords(records: readonly SensorReadingInput[], o: PublishRecordsOptions): Promise<number[]> {
  const nc = await connect({ servers: o.url, name: "test-publish-records" });
  const js = nc.jetstream();
  const sequences: number[] = [];
  const t0 = performance.now();
  const chunk = 250;
  try {
    for (let from = 0; from < records.length; from += chunk) {
      const acks: Array<Promise<PubAck>> = [];
      for (const r of records.slice(from, from + chunk)) {
        const h = headers();
        h.set("Nats-Msg-Id", `${o.site}:${r.machine_id}:${r.timestamp}:${r.sensor_type}`);
        acks.push(js.publish(`lw.${o.site}.sensor.${r.machine_id}.${r.sensor_type}`, encodeMsgpackRecord(r), { headers: h }));
      }
      for (const ack of await Promise.all(acks)) sequences.push(ack.seq);
      const due = ((from + chunk) / o.ratePerSecond) * 1000 - (performance.now() - t0);
      if (due > 0) await new Promise((r) => setTimeout(r, due));
    }
  } finally {
    await nc.drain();
  }
  return sequences;
}

/**
 * Whether durable `durable` has every message of `stream` acknowledged: its ack floor is the
 * stream's last sequence and nothing is pending.
 */
export async function consumedAll(nc: NatsConnection, stream: string, durable: string): Promise<boolean> {
  const jsm = await nc.jetstreamManager();
  const last = (await jsm.streams.info(stream)).state.last_seq;
  try {
    const c = await jsm.consumers.info(stream, durable);
    return c.ack_floor.stream_seq === last && c.num_pending === 0 && c.num_ack_pending === 0;
  } catch {
    return false; // not created yet
  }
}

/** Where durable `durable` stands against `stream`, for a test's failure message. */
export async function consumerState(nc: NatsConnection, stream: string, durable: string): Promise<string> {
  try {
    const jsm = await nc.jetstreamManager();
    const last = (await jsm.streams.info(stream)).state.last_seq;
    const c = await jsm.consumers.info(stream, durable);
    return `stream ${stream} last_seq ${last}; consumer ${durable}: ack floor ${c.ack_floor.stream_seq}, delivered ${c.delivered.stream_seq}, pending ${c.num_pending}, ack pending ${c.num_ack_pending}, redelivered ${c.num_redelivered}, waiting pulls ${c.num_waiting}`;
  } catch (error) {
    return `consumer ${durable} of ${stream}: ${(error as Error).message}`;
  }
}
