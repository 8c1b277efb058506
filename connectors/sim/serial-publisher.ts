/**
 * Publishes serial events to NATS — one event per message on `lw.<site>.serial.<line>`
 * (MessagePack or JSON, connectors/wire/serial-codec.ts) — so `linewatch run --nats` can be loaded with
 * serialization traffic. With JetStream (`jetstream: true`) every publish is acknowledged by the
 * server (in windows of `inFlightMax`) and carries `Nats-Msg-Id` `<site>:<line>:<production
 * time>:<serial>` for the stream's duplicate window; core publishes are flushed per chunk.
 */
import { headers, type PubAck } from "nats";
import { connectNats } from "../nats/mod.js";
import { encodeSerialRecord, type SerialRecordInput, serialSubject } from "../wire/mod.js";

export interface SerialPublishOptions {
  url: string;
  site: string;
  format: "msgpack" | "json";
  jetstream: boolean;
  /** Events per second at most (Infinity: as fast as the server takes them). */
  rate: number;
  inFlightMax: number;
}

export interface SerialPublishResult {
  events: number;
  duplicatesReported: number;
  seconds: number;
}

export const DEFAULT_SERIAL_PUBLISH = { site: "site1", format: "msgpack", jetstream: false, rate: Infinity, inFlightMax: 1024 } as const;

/** Publishes `next()`'s events until it returns null. */
export async function publishSerialEvents(next: () => SerialRecordInput | null, o: SerialPublishOptions): Promise<SerialPublishResult> {
  const nc = await connectNats({ servers: o.url, name: "linewatch-simulate-serials" });
  const js = nc.jetstream();
  const t0 = performance.now();
  let events = 0;
  let duplicates = 0;
  const acks: Array<Promise<PubAck>> = [];
  const settle = async (): Promise<void> => {
    for (const ack of await Promise.all(acks.splice(0))) if (ack.duplicate) duplicates++;
  };
  const subjects = new Map<string, string>();
  try {
    for (let e = next(); e !== null; e = next()) {
      let subject = subjects.get(e.machine_id);
      if (subject === undefined) subjects.set(e.machine_id, (subject = serialSubject(o.site, e.machine_id)));
      const data = encodeSerialRecord(e, o.format);
      events++;
      if (o.jetstream) {
        const h = headers();
        h.set(
          "Nats-Msg-Id",
          `${o.site}:${e.machine_id}:${e.production_timestamp}:${e.event_type === "batch_close" ? `close:${e.batch_number}` : e.serial_number}`,
        );
        acks.push(js.publish(subject, data, { headers: h }));
        if (acks.length >= o.inFlightMax) await settle();
      } else {
        nc.publish(subject, data);
        if (events % 4096 === 0) await nc.flush();
      }
      if (Number.isFinite(o.rate) && events % 256 === 0) {
        const due = (events / o.rate) * 1000 - (performance.now() - t0);
        if (due > 0) await new Promise((r) => setTimeout(r, due));
      }
    }
    await settle();
    await nc.flush();
  } finally {
    await nc.drain();
  }
  return { events, duplicatesReported: duplicates, seconds: (performance.now() - t0) / 1000 };
}
