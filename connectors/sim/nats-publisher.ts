/**
 * Publishes simulator readings to NATS, so anyone can load a real server: single records
 * (MessagePack or JSON) on `lw.<site>.sensor.<machine>.<sensor>`, or frames of many readings of
 * one machine on `lw.<site>.sensor.<machine>`. With JetStream (`jetstream: true`) each publish is
 * acknowledged by the server (in windows of `inFlightMax`); core publishes are flushed per chunk.
 * Producers may set `Nats-Msg-Id` for the server's duplicate window: here it is
 * `<site>:<machine>:<first reading's time>:<sensor or "frame">`, so a re-run of the same seed
 * within the stream's duplicate window is not stored twice.
 */
import { headers, type NatsConnection, type PubAck } from "nats";
import { connectNats } from "../nats/mod.js";
import { encodeFrame, encodeJsonRecord, encodeMsgpackRecord, sensorKey } from "../wire/mod.js";
import { type PlantSimulator, type SimulatorOptions, toWireReading } from "./plant-simulator.js";
import { ConfigError } from "../../engine/core/mod.js";

export interface NatsPublishOptions {
  url: string;
  site: string;
  format: "msgpack" | "json" | "frame";
  /** Readings per frame (format frame). */
  frameReadings: number;
  /** Publish through JetStream and wait for acks (a stream must capture the subjects). */
  jetstream: boolean;
  /** Set Nats-Msg-Id for broker-side dedup (JetStream). */
  msgIds: boolean;
  /** Readings per second to publish at most (Infinity: as fast as the server takes them). */
  rate: number;
  inFlightMax: number;
}

export interface NatsPublishResult {
  readings: number;
  messages: number;
  duplicatesReported: number;
  seconds: number;
}

export const DEFAULT_NATS_PUBLISH = {
  site: "site1",
  format: "msgpack",
  frameReadings: 1000,
  jetstream: false,
  msgIds: true,
  rate: Infinity,
  inFlightMax: 1024,
} as const;

export async function publishSimulation(simulator: PlantSimulator, o: NatsPublishOptions): Promise<NatsPublishResult> {
  if (!(o.frameReadings >= 1 && o.frameReadings <= 65536))
    throw new ConfigError("--frame-readings", `must be in 1..65536, got ${o.frameReadings}`);
  const nc = await connectNats({ servers: o.url, name: "linewatch-simulate" });
  const js = nc.jetstream();
  const keys = simulator.keys();
  const t0 = performance.now();
  let readings = 0;
  let messages = 0;
  let duplicates = 0;
  const acks: Array<Promise<PubAck>> = [];
  const publish = async (subject: string, data: Uint8Array, msgId: string): Promise<void> => {
    messages++;
    if (!o.jetstream) {
      nc.publish(subject, data);
      return;
    }
    const h = o.msgIds ? headers() : undefined;
    h?.set("Nats-Msg-Id", msgId);
    acks.push(js.publish(subject, data, h ? { headers: h } : undefined));
    if (acks.length >= o.inFlightMax) await settle();
  };
  const settle = async (): Promise<void> => {
    for (const ack of await Promise.all(acks.splice(0))) if (ack.duplicate) duplicates++;
  };
  try {
    while (!simulator.done) {
      const columns = simulator.nextColumns(o.format === "frame" ? o.frameReadings * 8 : 4096);
      if (o.format === "frame") {
        // One frame per machine per chunk: the subject names the machine, keys carry the sensor.
        const byMachine = new Map<string, number[]>();
        for (let i = 0; i < columns.length; i++) {
          const m = keys[columns.keyIndex[i]].machine_id;
          let list = byMachine.get(m);
          if (list === undefined) byMachine.set(m, (list = []));
          list.push(i);
        }
        for (const [machine, idx] of byMachine) {
          for (let from = 0; from < idx.length; from += o.frameReadings) {
            const part = idx.slice(from, from + o.frameReadings);
            const frameKeys = [...new Set(part.map((i) => sensorKey(machine, keys[columns.keyIndex[i]].sensor_type)))];
            const keyIndex = part.map((i) => frameKeys.indexOf(sensorKey(machine, keys[columns.keyIndex[i]].sensor_type)));
            const bytes = encodeFrame({
              keys: frameKeys,
              keyIndex,
              times: part.map((i) => columns.times[i]),
              values: part.map((i) => columns.values[i]),
            });
            await publish(`lw.${o.site}.sensor.${machine}`, bytes, `${o.site}:${machine}:${columns.times[part[0]]}:frame`);
          }
        }
      } else {
        for (let i = 0; i < columns.length; i++) {
          const k = keys[columns.keyIndex[i]];
          const reading = toWireReading(keys, columns, i);
          const data = o.format === "json" ? encodeJsonRecord(reading) : encodeMsgpackRecord(reading);
          await publish(
            `lw.${o.site}.sensor.${k.machine_id}.${k.sensor_type}`,
            data,
            `${o.site}:${k.machine_id}:${columns.times[i]}:${k.sensor_type}`,
          );
        }
      }
      readings += columns.length;
      if (o.jetstream) await settle();
      else await nc.flush();
      if (Number.isFinite(o.rate)) {
        const due = (readings / o.rate) * 1000 - (performance.now() - t0);
        if (due > 0) await new Promise((r) => setTimeout(r, due));
      }
    }
    await settle();
    await nc.flush();
  } finally {
    await nc.drain();
  }
  return { readings, messages, duplicatesReported: duplicates, seconds: (performance.now() - t0) / 1000 };
}

export type { NatsConnection, SimulatorOptions };
