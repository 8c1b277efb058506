/**
 * The publisher and subscriber threads of `npm run bench -- e2e` (bench/pipeline-bench.ts), kept in
 * a module of their own so a thread loads nats, ws and the simulator, not the engine: the
 * publisher, the WebSocket subscriber (the engine's scores), the raw nats.js counter, and the
 * subscriber to the naive consumer's JSON scores (bench/naive-consumer.ts, a process of its own).
 *
 * They share with the main thread an Int32 control array (the C_* slots) and, per reading index,
 * its publish time (publisher) and its publish → arrival latency (subscriber). A reading's index is
 * its timestamp − {@link T0} (integer ms, so increasing per key). Counts and credit are in
 * readings: a single record is one, a frame holds many.
 */
import { performance } from "node:perf_hooks";
import { isMainThread, parentPort, workerData } from "node:worker_threads";
import { decode as msgpackDecode } from "@msgpack/msgpack";
import { connect, type NatsConnection } from "nats";
import WebSocket from "ws";
import { decodeScoreFrame, encodeFrame, encodeMsgpackRecord } from "../connectors/wire/mod.js";
import { OPERATING_MODES, PlantSimulator } from "../connectors/sim/mod.js";
import { clock, sleep, threadCpuMicros } from "./bench-kit.js";

export const T0 = Date.UTC(2026, 0, 1);

/** Records scored (engine), counted (raw subscriber) or whose naive score arrived: the publisher's credit. */
export const C_SCORED = 0;
/** Data messages the WebSocket subscriber received. */
export const C_RECEIVED = 1;
/** Next index the publisher will send. */
export const C_PUBLISHED = 2;
/** Main → publisher: stop now. */
export const C_STOP = 3;
/** Subscriber (WebSocket, naive scores): 1 once subscribed; 2 once closed. */
export const C_READY = 4;
/** Subscriber: `sampled` notices received. */
export const C_SAMPLED = 5;
/** Raw subscriber: 1 once its subscription is live at the server. */
export const C_RAW_READY = 6;
/** Main → raw subscriber: 1 from the start of the measured window on, 2 from its end (its CPU is read at both). */
export const C_WINDOW = 7;
export const C_SLOTS = 8;

export const PUB_ROLE = "linewatch-pipeline-publisher";
export const SUB_ROLE = "linewatch-pipeline-subscriber";
export const RAW_ROLE = "linewatch-pipeline-raw-subscriber";
export const NAIVE_SUB_ROLE = "linewatch-pipeline-naive-score-subscriber";

/** How readings travel: one MessagePack record a message, or frames of up to `frameReadings` of one machine's readings. */
export type WireFormat = "records" | "frames";

/**
 * Publish indexes [from, to) on `site`: by credit (`rate` 0: at most `inFlight` readings past
 * C_SCORED) or open loop at `rate` readings/s; `jetstream`: acknowledged JetStream publishes, no
 * credit (the stream is loaded before the consumer starts).
 */
export interface PubData {
  role: typeof PUB_ROLE;
  url: string;
  site: string;
  seed: number;
  machines: number;
  from: number;
  to: number;
  rate: number;
  inFlight: number;
  format: WireFormat;
  frameReadings: number;
  jetstream: boolean;
  /** Where to write each index's publish time; null: not timed (the raw ceiling). */
  sendTimes: SharedArrayBuffer | null;
  ctrl: SharedArrayBuffer;
}

/**
 * The raw nats.js ceiling's consumer: subscribes to `lw.<site>.sensor.>` on its own connection and
 * only counts, into C_SCORED (the publisher's credit), until told to close. A thread of its own: a
 * flooded nats.js subscription keeps its thread's event loop from running timers. It reads its own
 * thread's CPU time when C_WINDOW turns 1 and 2 and answers the close with a {@link RawWindow}.
 */
export interface RawData {
  role: typeof RAW_ROLE;
  url: string;
  site: string;
  format: WireFormat;
  ctrl: SharedArrayBuffer;
}

/** The raw subscriber's thread over the measured window: CPU µs and readings counted (NaN when it saw no window). */
export interface RawWindow {
  cpuMicros: number;
  readings: number;
}

/**
 * Subscribes to the naive consumer's JSON scores (`lw.<site>.score.>`): counts them into C_SCORED
 * (the publisher's credit) and records each one's latency by the index in its timestamp.
 */
export interface NaiveSubData {
  role: typeof NAIVE_SUB_ROLE;
  url: string;
  site: string;
  sendTimes: SharedArrayBuffer;
  latencies: SharedArrayBuffer;
  ctrl: SharedArrayBuffer;
}

/** Subscribe to `topics` on the live server and record each record's latency by index. */
export interface SubData {
  role: typeof SUB_ROLE;
  wsUrl: string;
  topics: string[];
  sendTimes: SharedArrayBuffer;
  latencies: SharedArrayBuffer;
  ctrl: SharedArrayBuffer;
}

/** JetStream publishes awaiting their acknowledgement at once (as the simulator publisher's default). */
const JETSTREAM_IN_FLIGHT = 1024;

/** Publishes indexes [from, to) as readings with timestamp T0 + index; by credit, or at `rate` readings/s. */
async function publisherMain(d: PubData): Promise<void> {
  const nc = await connect({ servers: d.url, name: "linewatch-pipeline-publisher" });
  if (d.format === "frames" && !d.jetstream) return publishFrames(nc, d);
  const js = nc.jetstream();
  const acks: Array<Promise<unknown>> = [];
  // Core publishes stay synchronous (an await per record would slow the raw ceiling itself).
  const send = (subject: string, data: Uint8Array): Promise<unknown> | undefined => {
    if (!d.jetstream) return void nc.publish(subject, data);
    acks.push(js.publish(subject, data));
    return acks.length >= JETSTREAM_IN_FLIGHT ? Promise.all(acks.splice(0)) : undefined;
  };
  const sendTimes = d.sendTimes === null ? null : new Float64Array(d.sendTimes);
  const ctrl = new Int32Array(d.ctrl);
  // The same readings in every phase and setting: the simulator starts over with the same seed.
  const sim = new PlantSimulator({ seed: d.seed, machines: d.machines, rateHz: 1000, faultRate: 2 });
  const keys = sim.keys();
  const framer = d.format === "frames" ? new Framer(keys, d.site, d.frameReadings) : null;
  const subjects = keys.map((k) => `lw.${d.site}.sensor.${k.machine_id}.${k.sensor_type}`);
  const t0 = performance.now();
  let i = d.from;
  let sent = 0;
  while (i < d.to && Atomics.load(ctrl, C_STOP) === 0) {
    const allowed = allowedNow(d, ctrl, i, sent, t0);
    if (allowed <= 0) {
      await sleep(d.rate === 0 ? 0 : 1);
      continue;
    }
    const cols = sim.nextColumns(Math.min(allowed, framer === null ? 512 : 4096));
    for (let k = 0; k < cols.length; k++, i++, sent++) {
      if (sendTimes !== null && i < sendTimes.length) sendTimes[i] = clock();
      if (framer !== null) {
        const frame = framer.add(cols.keyIndex[k], T0 + i, cols.values[k]);
        const wait = frame === null ? undefined : send(frame.subject, frame.data);
        if (wait !== undefined) await wait;
        continue;
      }
      const key = keys[cols.keyIndex[k]];
      const data = encodeMsgpackRecord({
        machine_id: key.machine_id,
        sensor_type: key.sensor_type,
        timestamp: T0 + i,
        sensor_value: cols.values[k],
        sensor_unit: key.sensor_unit,
        operating_mode: OPERATING_MODES[cols.modes[k]],
      });
      const wait = send(subjects[cols.keyIndex[k]], data);
      if (wait !== undefined) await wait;
    }
    for (const frame of framer?.flush() ?? []) await send(frame.subject, frame.data);
    Atomics.store(ctrl, C_PUBLISHED, i);
    await Promise.all(acks.splice(0));
    await nc.flush();
  }
  await nc.drain();
}

/** Readings the publisher may send now: by credit (`rate` 0: at most `inFlight` past C_SCORED), open loop at `rate`, or all (JetStream). */
function allowedNow(d: PubData, ctrl: Int32Array, i: number, sent: number, t0: number): number {
  if (d.jetstream) return d.to - i;
  if (d.rate === 0) return Math.min(d.to - i, Atomics.load(ctrl, C_SCORED) + d.inFlight - sent);
  return Math.min(d.to, d.from + Math.floor(((performance.now() - t0) / 1000) * d.rate)) - i;
}

/** Simulated readings in the frames' cycle: the publisher encodes their frames once and sends them over and over, times moved on. */
const FRAME_CYCLE_READINGS = 1 << 20;

/**
 * Frames on core NATS, pre-encoded: the simulator's first {@link FRAME_CYCLE_READINGS} readings
 * framed once (frames of `frameReadings` readings of one machine, as {@link Framer} makes them),
 * then sent in order, cycle after cycle, each frame's times moved on in place to T0 + index
 * (index = the reading's place in the stream, so times still rise per key): the time base of a
 * version 2 frame (what encodeFrame writes for these times), each int64 time of a version 1 one.
 * nats.js copies a payload into its outbound buffer on publish, so a frame's bytes can be
 * rewritten for the next cycle at once: the publisher costs next to nothing beside the consumer
 * it feeds but the copy and the socket.
 */
async function publishFrames(nc: NatsConnection, d: PubData): Promise<void> {
  const sendTimes = d.sendTimes === null ? null : new Float64Array(d.sendTimes);
  const ctrl = new Int32Array(d.ctrl);
  const cycle = frameCycle(d);
  const t0 = performance.now();
  let i = d.from;
  let sent = 0;
  let base = d.from;
  let f = 0;
  while (i < d.to && Atomics.load(ctrl, C_STOP) === 0) {
    let allowed = allowedNow(d, ctrl, i, sent, t0);
    if (allowed <= 0) {
      // No flush here: every burst ends with one. A flush is a PING and its PONG — a wake-up of
      // nats-server and of this thread per millisecond spent waiting for credit, on the cores the
      // consumer being measured needs.
      Atomics.store(ctrl, C_PUBLISHED, i);
      await sleep(d.rate === 0 ? 0 : 1);
      continue;
    }
    // Up to 64 frames between flushes: the socket drains while the next ones are written.
    for (let burst = 0; burst < 64 && allowed > 0 && i < d.to; burst++) {
      const frame = cycle[f];
      frame.stamp(base);
      nc.publish(frame.subject, frame.data);
      if (sendTimes !== null)
        for (let r = 0; r < frame.offsets.length; r++)
          if (base + frame.offsets[r] < sendTimes.length) sendTimes[base + frame.offsets[r]] = clock();
      i += frame.offsets.length;
      sent += frame.offsets.length;
      allowed -= frame.offsets.length;
      if (++f === cycle.length) {
        f = 0;
        base += FRAME_CYCLE_READINGS;
      }
    }
    Atomics.store(ctrl, C_PUBLISHED, i);
    await nc.flush();
  }
  await nc.drain();
}

/** One pre-encoded frame: its bytes, and per reading its index within the cycle (the frame's times = T0 + cycle base + these). */
class CycleFrame {
  /** Version 1: the int64 times column; version 2: the time base alone (the offsets from it stay as they are). */
  private readonly times: Uint32Array;
  private readonly firstOffset: number;
  private readonly version: number;

  constructor(
    readonly subject: string,
    readonly data: Uint8Array,
    readonly offsets: Float64Array,
  ) {
    const n = offsets.length;
    // The times column: after the 24-byte header and the key table (its byte length at offset 16), 8-aligned (frame-codec.ts).
    const keyTableBytes = new DataView(data.buffer, data.byteOffset).getUint32(16, true);
    const timesAt = (24 + keyTableBytes + 7) & ~7;
    this.version = data[4];
    this.times = new Uint32Array(data.buffer, data.byteOffset + timesAt, this.version === 1 ? 2 * n : 2);
    this.firstOffset = offsets.reduce((lo, o) => Math.min(lo, o), Number.POSITIVE_INFINITY);
  }

  /** Rewrites the times to T0 + base + offset (int64 little-endian halves, exact below 2^53): each one (version 1), or the base (version 2). */
  stamp(base: number): void {
    const at = T0 + base;
    const u = this.times;
    if (this.version === 2) {
      const t = at + this.firstOffset;
      u[0] = t >>> 0;
      u[1] = (t / 4294967296) >>> 0;
      return;
    }
    const o = this.offsets;
    for (let r = 0; r < o.length; r++) {
      const t = at + o[r];
      u[2 * r] = t >>> 0;
      u[2 * r + 1] = (t / 4294967296) >>> 0;
    }
  }
}

/** The cycle's frames in send order, as {@link Framer} forms them from the simulator's readings. */
function frameCycle(d: PubData): CycleFrame[] {
  const sim = new PlantSimulator({ seed: d.seed, machines: d.machines, rateHz: 1000, faultRate: 2 });
  const framer = new Framer(sim.keys(), d.site, d.frameReadings);
  const out: CycleFrame[] = [];
  const take = (frame: { subject: string; data: Uint8Array; offsets: number[] }): void => {
    // Own, 8-aligned bytes: the times column is rewritten through a Uint32Array view.
    const data = new Uint8Array(frame.data.length);
    data.set(frame.data);
    out.push(new CycleFrame(frame.subject, data, Float64Array.from(frame.offsets)));
  };
  for (let i = 0; i < FRAME_CYCLE_READINGS; ) {
    const cols = sim.nextColumns(Math.min(4096, FRAME_CYCLE_READINGS - i));
    for (let k = 0; k < cols.length; k++, i++) {
      const frame = framer.add(cols.keyIndex[k], T0 + i, cols.values[k]);
      if (frame !== null) take(frame);
    }
  }
  for (const frame of framer.flush()) take(frame);
  return out;
}

/** One open frame per machine; a frame goes out when it holds `frameReadings` readings (or at `flush`). */
class Framer {
  private readonly machineOf: number[];
  private readonly slotOf: number[];
  private readonly frameKeys: string[][];
  private readonly subjects: string[];
  private open: Array<{ keyIndex: number[]; times: number[]; values: number[] }>;

  constructor(
    keys: ReadonlyArray<{ machine_id: string; sensor_type: string }>,
    site: string,
    private readonly frameReadings: number,
  ) {
    const machines = [...new Set(keys.map((k) => k.machine_id))];
    this.machineOf = keys.map((k) => machines.indexOf(k.machine_id));
    this.frameKeys = machines.map((m) => keys.filter((k) => k.machine_id === m).map((k) => `${m}.${k.sensor_type}`));
    this.slotOf = keys.map((k) => this.frameKeys[machines.indexOf(k.machine_id)].indexOf(`${k.machine_id}.${k.sensor_type}`));
    this.subjects = machines.map((m) => `lw.${site}.sensor.${m}`);
    this.open = machines.map(() => ({ keyIndex: [], times: [], values: [] }));
  }

  add(key: number, time: number, value: number): { subject: string; data: Uint8Array; offsets: number[] } | null {
    const m = this.machineOf[key];
    const f = this.open[m];
    f.keyIndex.push(this.slotOf[key]);
    f.times.push(time);
    f.values.push(value);
    return f.values.length >= this.frameReadings ? this.take(m) : null;
  }

  /** The open frames, sent before the publisher waits: a reading is never held back. */
  flush(): Array<{ subject: string; data: Uint8Array; offsets: number[] }> {
    const out: Array<{ subject: string; data: Uint8Array; offsets: number[] }> = [];
    for (let m = 0; m < this.open.length; m++) if (this.open[m].values.length > 0) out.push(this.take(m));
    return out;
  }

  private take(m: number): { subject: string; data: Uint8Array; offsets: number[] } {
    const f = this.open[m];
    this.open[m] = { keyIndex: [], times: [], values: [] };
    return {
      subject: this.subjects[m],
      data: encodeFrame({ keys: this.frameKeys[m], keyIndex: f.keyIndex, times: f.times, values: f.values }),
      // The times are T0 + index: the offsets of a frame's readings from T0.
      offsets: f.times.map((t) => t - T0),
    };
  }
}

/** Receives the machine topics; for each record, latency = arrival − publish time of its index. */
function subscriberMain(d: SubData): void {
  const sendTimes = new Float64Array(d.sendTimes);
  const latencies = new Float32Array(d.latencies);
  const ctrl = new Int32Array(d.ctrl);
  const ws = new WebSocket(d.wsUrl);
  let received = 0;
  ws.on("message", (raw: Buffer) => {
    const t = clock();
    // format=msgpack: the ingest path's score frames arrive as their bytes (no base64), control
    // messages and the pool path's per-record messages as maps.
    const m = msgpackDecode(raw) as {
      topic?: string;
      type?: string;
      data?: { timestamp: number; kind?: string; frame?: Uint8Array };
    };
    if (m.type === "subscribed") Atomics.store(ctrl, C_READY, 1);
    if (m.type === "sampled") Atomics.add(ctrl, C_SAMPLED, 1);
    if (m.topic === undefined || m.data === undefined) return;
    const record = (time: number): void => {
      const idx = time - T0;
      if (idx >= 0 && idx < latencies.length) latencies[idx] = t - sendTimes[idx];
      received++;
    };
    if (m.data.kind === "score_frame" && m.data.frame !== undefined) {
      const f = decodeScoreFrame(m.data.frame);
      for (let i = 0; i < f.length; i++) record(f.times[i]);
    } else record(m.data.timestamp);
    Atomics.store(ctrl, C_RECEIVED, received);
  });
  ws.on("open", () => ws.send(JSON.stringify({ type: "subscribe", topics: d.topics, id: 1 })));
  ws.on("error", (e) => process.stderr.write(`bench e2e subscriber: ${e.message}\n`));
  ws.on("close", () => Atomics.store(ctrl, C_READY, 2));
  parentPort?.on("message", () => ws.close());
}

async function rawSubscriberMain(d: RawData): Promise<void> {
  const ctrl = new Int32Array(d.ctrl);
  const nc = await connect({ servers: d.url, name: "linewatch-pipeline-raw" });
  let count = 0;
  // The thread's CPU and count at the window's start and end, seen from inside the callback (a
  // flooded thread runs no timers): an atomic load per message, next to nothing beside nats.js's
  // own work. (Checked every 256 messages, a short run could stop publishing before the end mark.)
  const marks: Array<{ cpu: number; count: number }> = [];
  const sub = nc.subscribe(`lw.${d.site}.sensor.>`, {
    // A frame's reading count is the u32 at offset 8 of its header; a record is one reading.
    callback: (_err, msg) => {
      const b = msg.data;
      count += d.format === "frames" ? b[8] | (b[9] << 8) | (b[10] << 16) | (b[11] << 24) : 1;
      Atomics.store(ctrl, C_SCORED, count);
      if (Atomics.load(ctrl, C_WINDOW) > marks.length) marks.push({ cpu: threadCpuMicros(), count });
    },
  });
  await nc.flush();
  Atomics.store(ctrl, C_RAW_READY, 1);
  parentPort?.once("message", () => {
    sub.unsubscribe();
    // No message after the window's end (the publisher stopped first): the end is now.
    if (marks.length === 1 && Atomics.load(ctrl, C_WINDOW) === 2) marks.push({ cpu: threadCpuMicros(), count });
    const [a, b] = marks;
    const window: RawWindow =
      a === undefined || b === undefined
        ? { cpuMicros: Number.NaN, readings: Number.NaN }
        : { cpuMicros: b.cpu - a.cpu, readings: b.count - a.count };
    void nc.close().then(() => parentPort?.postMessage(window));
  });
}

/** Counts the naive consumer's scores (the credit) and records publish → arrival by the index in each score's timestamp. */
async function naiveScoreSubscriberMain(d: NaiveSubData): Promise<void> {
  const sendTimes = new Float64Array(d.sendTimes);
  const latencies = new Float32Array(d.latencies);
  const ctrl = new Int32Array(d.ctrl);
  const nc = await connect({ servers: d.url, name: "linewatch-pipeline-naive-scores" });
  let received = 0;
  const sub = nc.subscribe(`lw.${d.site}.score.>`, {
    callback: (_err, msg) => {
      const t = clock();
      const idx = msg.json<{ timestamp: number }>().timestamp - T0;
      if (idx >= 0 && idx < latencies.length) latencies[idx] = t - sendTimes[idx];
      Atomics.store(ctrl, C_SCORED, ++received);
    },
  });
  await nc.flush();
  Atomics.store(ctrl, C_READY, 1);
  parentPort?.once("message", () => {
    sub.unsubscribe();
    void nc.close().then(() => {
      Atomics.store(ctrl, C_READY, 2);
      parentPort?.postMessage("done");
    });
  });
}

if (!isMainThread) {
  const d = workerData as PubData | SubData | RawData | NaiveSubData | null;
  if (d?.role === PUB_ROLE) {
    // A failure rejects unhandled: the worker ends with an error event, which rejects the phase.
    void publisherMain(d).then(() => parentPort?.postMessage("done"));
  } else if (d?.role === SUB_ROLE) subscriberMain(d);
  else if (d?.role === RAW_ROLE) void rawSubscriberMain(d);
  else if (d?.role === NAIVE_SUB_ROLE) void naiveScoreSubscriberMain(d);
}
