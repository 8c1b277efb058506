/**
 * The naive-consumer baseline of `npm run bench -- e2e`: what a user would write in an afternoon
 * instead of linewatch, written plainly on purpose (do not optimise it, and it uses no linewatch
 * code). It subscribes to the sensor readings, keeps the last 64 values per machine and sensor,
 * and publishes one JSON score per reading on `lw.<site>.score.<machine_id>.<sensor_type>` (the
 * subject linewatch publishes its scores on).
 *
 *   node dist/bench/naive-consumer.js [nats-url] [site]      (or NATS_URL, SITE)
 *
 * Run by the benchmark as a child process (child_process.fork): it sends {type: "ready"} once
 * subscribed, answers "counters" with its counts and process.cpuUsage(), and ends on "stop" (or
 * when the benchmark is gone).
 */
import { decode } from "@msgpack/msgpack";
import { connect, StringCodec } from "nats";

const url = process.argv[2] ?? process.env.NATS_URL ?? "nats://127.0.0.1:4222";
const site = process.argv[3] ?? process.env.SITE ?? "site1";

const WINDOW = 64;
const ALPHA = 0.1;

interface Reading {
  machine_id: string;
  sensor_type: string;
  timestamp: number;
  sensor_value: number;
}

interface SensorState {
  values: number[];
  next: number;
  ewma: number;
}

const sensors = new Map<string, SensorState>();
let received = 0;
let published = 0;

function score(reading: Reading) {
  const key = `${reading.machine_id}/${reading.sensor_type}`;
  let s = sensors.get(key);
  if (!s) {
    s = { values: [], next: 0, ewma: reading.sensor_value };
    sensors.set(key, s);
  }
  const value = reading.sensor_value;
  if (s.values.length < WINDOW) {
    s.values.push(value);
  } else {
    s.values[s.next] = value;
    s.next = (s.next + 1) % WINDOW;
  }
  s.ewma = ALPHA * value + (1 - ALPHA) * s.ewma;

  const n = s.values.length;
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const v of s.values) {
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const mean = sum / n;
  let squares = 0;
  for (const v of s.values) squares += (v - mean) * (v - mean);
  const std = n > 1 ? Math.sqrt(squares / (n - 1)) : 0;
  const z = std > 0 ? (value - mean) / std : 0;

  return {
    machine_id: reading.machine_id,
    sensor_type: reading.sensor_type,
    timestamp: reading.timestamp,
    value,
    mean,
    std,
    min,
    max,
    ewma: s.ewma,
    z,
  };
}

async function main() {
  const nc = await connect({ servers: url });
  const sc = StringCodec();
  const sub = nc.subscribe(`lw.${site}.sensor.>`);
  await nc.flush();

  process.on("message", (msg) => {
    if (msg === "counters") process.send?.({ type: "counters", received, published, cpu: process.cpuUsage() });
    if (msg === "stop") void nc.drain();
  });
  process.on("disconnect", () => process.exit(0)); // the benchmark is gone

  process.send?.({ type: "ready" });

  for await (const msg of sub) {
    received++;
    try {
      const reading = decode(msg.data) as Reading;
      const result = score(reading);
      nc.publish(`lw.${site}.score.${reading.machine_id}.${reading.sensor_type}`, sc.encode(JSON.stringify(result)));
      published++;
    } catch (err) {
      process.stderr.write(`naive consumer: bad message on ${msg.subject}: ${err}\n`);
    }
  }
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`naive consumer: ${err}\n`);
  process.exit(1);
});
