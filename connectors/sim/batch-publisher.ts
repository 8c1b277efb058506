/**
 * Publishes the process and quality streams to NATS — one record per message (MessagePack or
 * JSON, connectors/wire/batch-codec.ts): process readings on `lw.<site>.process.<line>`, quality
 * outcomes on `lw.<site>.quality.<line>` — so `linewatch run --nats` can be loaded with batches.
 * With JetStream (`jetstream: true`) every publish is acknowledged by the server (in windows of
 * `inFlightMax`) and carries `Nats-Msg-Id` `<site>:<batch>:<reading time>` (process) or
 * `<site>:<batch>:quality` for the stream's duplicate window; core publishes are flushed every 4096.
 * Paced by `rate` (records per second), or by event time with `speed` (a record timestamped t goes
 * out (t − first) / speed after the first: `demo`'s batches, live but faster than the plant).
 */
import { headers, type PubAck } from "nats";
import { connectNats } from "../nats/mod.js";
import { encodeProcessRecord, encodeQualityRecord, processSubject, qualitySubject } from "../wire/mod.js";
import type { BatchSimulator } from "./batch-simulator.js";

export interface BatchPublishOptions {
  url: string;
  site: string;
  format: "msgpack" | "json";
  jetstream: boolean;
  /** Records per second at most (Infinity: as fast as the server takes them). */
  rate: number;
  inFlightMax: number;
  /** Event time per wall-clock time: publish each record at its timestamp, scaled (undefined: by `rate` only). */
  speed?: number;
}

export interface BatchPublishResult {
  processRecords: number;
  qualityRecords: number;
  duplicatesReported: number;
  seconds: number;
}

export const DEFAULT_BATCH_PUBLISH = { site: "site1", format: "msgpack", jetstream: false, rate: Infinity, inFlightMax: 1024 } as const;

/** Publishes every event of the simulator until it is done. */
export async function publishBatchStreams(sim: BatchSimulator, o: BatchPublishOptions): Promise<BatchPublishResult> {
  const nc = await connectNats({ servers: o.url, name: "linewatch-simulate-batches" });
  const js = nc.jetstream();
  const t0 = performance.now();
  const counts = { process: 0, quality: 0 };
  let duplicates = 0;
  const acks: Array<Promise<PubAck>> = [];
  const settle = async (): Promise<void> => {
    for (const ack of await Promise.all(acks.splice(0))) if (ack.duplicate) duplicates++;
  };
  // Two subjects per line, built once.
  const subjects = new Map<string, { process: string; quality: string }>();
  let first: number | null = null;
  try {
    for (let kind = sim.next(); kind !== null; kind = sim.next()) {
      const outcome = sim.outcome as NonNullable<BatchSimulator["outcome"]>;
      const record = kind === "process" ? sim.reading : outcome;
      first ??= record.timestamp;
      const wait = o.speed === undefined ? 0 : (record.timestamp - first) / o.speed - (performance.now() - t0);
      if (wait > 0) {
        await settle();
        await nc.flush();
        await new Promise((r) => setTimeout(r, wait));
      }
      let s = subjects.get(record.line_id);
      if (s === undefined)
        subjects.set(
          record.line_id,
          (s = { process: processSubject(o.site, record.line_id), quality: qualitySubject(o.site, record.line_id) }),
        );
      const data = kind === "process" ? encodeProcessRecord(sim.reading, o.format) : encodeQualityRecord(outcome, o.format);
      const events = ++counts[kind] + counts[kind === "process" ? "quality" : "process"];
      if (o.jetstream) {
        const h = headers();
        h.set("Nats-Msg-Id", `${o.site}:${record.batch_id}:${kind === "process" ? record.timestamp : "quality"}`);
        acks.push(js.publish(s[kind], data, { headers: h }));
        if (acks.length >= o.inFlightMax) await settle();
      } else {
        nc.publish(s[kind], data);
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
  return {
    processRecords: counts.process,
    qualityRecords: counts.quality,
    duplicatesReported: duplicates,
    seconds: (performance.now() - t0) / 1000,
  };
}
