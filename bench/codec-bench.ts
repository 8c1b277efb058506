/**
 * Codec micro-benchmark (`node dist/bench/codec-bench.js [--smoke] [--readings N] [--frame N] [--seed S]`).
 *
 * Goals: from one seeded set of simulator readings, print side by side how many readings per
 * second each decoder delivers on one thread — MessagePack single records (ISO and epoch-ms
 * times), the bare library decode without limits or validation (what the checks cost), JSON
 * single records, and frames (int64 / float64 times, one machine's keys / all keys, aligned
 * zero-copy / unaligned DataView) — with bytes per reading, ratios to MessagePack records, and a
 * checksum that must be the same for every variant: Σ mod 2^32 of a hash of each decoded reading's
 * (value, time) bits — exact and independent of reading order (machine frames reorder readings),
 * computed on an untimed pass so that the timed passes measure decoding. Then the ingest hot path
 * per single-record message, generic against specialised on the same messages (messages/s and
 * the ratio): decodeRecord vs SensorRecordReader, subject string + Map vs SubjectKeyTable on the
 * subject bytes, and both together against NatsInput.decode's steps.
 *
 * Non-goals: transport (NATS is measured by the end-to-end benchmark), asserting any time (only a
 * checksum mismatch sets a failing exit code).
 */
import { decode as libraryDecode } from "@msgpack/msgpack";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import {
  decodeFrame,
  decodeJsonRecord,
  decodeMsgpackRecord,
  decodeRecord,
  encodeFrame,
  encodeJsonRecord,
  encodeMsgpackRecord,
  parseSubject,
  SensorRecordReader,
  SensorRecordView,
  sensorKey,
  sensorSubject,
  type SensorReadingInput,
  type SensorSubject,
  SubjectKeyTable,
  unpartitioned,
} from "../connectors/wire/mod.js";
import { PlantSimulator } from "../connectors/sim/mod.js";
import { ConfigError } from "../engine/core/mod.js";

export interface CodecBenchOptions {
  /** Readings in the data set (default 200 000; smoke 3 000). */
  readings?: number;
  /** Readings per frame (default 4096; smoke 500). */
  frameReadings?: number;
  /** Simulator seed (default {@link DEFAULT_CODEC_BENCH_SEED}). */
  seed?: number;
  /** Small sizes and one timed run: finishes in well under a second. */
  smoke?: boolean;
  /** Timed runs per variant, each of whole passes over the data lasting ≥ 0.25 s; the median rate is reported (default 5; smoke 1, one pass). */
  runs?: number;
}

export interface CodecBenchRow {
  label: string;
  messages: number;
  readings: number;
  bytesPerReading: number;
  readingsPerSecond: number;
  /** Order-independent hash sum of the decoded readings (null for the bare library decode, which yields untyped maps). */
  checksum: number | null;
}

export interface CodecBenchReport {
  seed: number;
  readings: number;
  frameReadings: number;
  machines: number;
  rows: CodecBenchRow[];
  /** The ingest hot path: specialised readers against the generic path on the same messages. */
  hotPath: HotPathRow[];
  checksumsAgree: boolean;
}

export interface HotPathRow {
  label: string;
  genericPerSecond: number;
  specialisedPerSecond: number;
  /** The specialised variant's hash sum of (value, time); null where it decodes no readings. */
  checksum: number | null;
}

export const DEFAULT_CODEC_BENCH_SEED = 20260101;

export async function runCodecBench(options: CodecBenchOptions = {}): Promise<CodecBenchReport> {
  const smoke = options.smoke ?? false;
  const total = options.readings ?? (smoke ? 3_000 : 200_000);
  const perFrame = options.frameReadings ?? (smoke ? 500 : 4096);
  const seed = options.seed ?? DEFAULT_CODEC_BENCH_SEED;
  const runs = options.runs ?? (smoke ? 1 : 5);
  const runSeconds = smoke ? 0 : 0.25;
  const machines = 20;
  const sim = new PlantSimulator({ seed, machines, rateHz: 100 });
  const columns = sim.nextColumns(total);
  const n = columns.length;
  const keys = sim.keys().map((k) => sensorKey(k.machine_id, k.sensor_type));

  // Single records, each with its subject (parsed per message, as a source without a cache would).
  const records: SensorReadingInput[] = [];
  for (let i = 0; i < n; i++) records.push(sim.recordAt(columns, i));
  const subjects = records.map((r) => sensorSubject("plant1", r.machine_id, r.sensor_type));
  const msgpackIso = records.map((r) => encodeMsgpackRecord(r));
  const msgpackMs = records.map((r) => encodeMsgpackRecord(r, { timestamp: "ms" }));
  const jsonIso = records.map((r) => encodeJsonRecord(r));

  // Frames of all keys in time order, and frames of one machine's sensors (the partitioned shape).
  const allKeys = (times: "int64" | "float64") =>
    chunk(n, perFrame).map(([a, b]) =>
      encodeFrame(
        { keys, keyIndex: columns.keyIndex.subarray(a, b), times: columns.times.subarray(a, b), values: columns.values.subarray(a, b) },
        { times },
      ),
    );
  const framesI64 = allKeys("int64");
  const framesF64 = allKeys("float64");
  const framesF64Unaligned = framesF64.map((f) => placed(f, 4));
  const framesMachine = machineFrames(sim, columns, perFrame);

  const rows: CodecBenchRow[] = [];
  const time = (label: string, messages: Uint8Array[], decodeAll: (hash: boolean) => number | null, readings = n): void => {
    const { rate, checksum } = measure(decodeAll, readings, runs, runSeconds);
    const bytes = messages.reduce((s, m) => s + m.length, 0);
    rows.push({ label, messages: messages.length, readings, bytesPerReading: bytes / readings, readingsPerSecond: rate, checksum });
  };
  const recordVariant = (label: string, messages: Uint8Array[], decode: typeof decodeMsgpackRecord): void =>
    time(label, messages, (hash) => {
      let s = 0;
      for (let i = 0; i < messages.length; i++) {
        const r = decode(messages[i], { subject: subjects[i] });
        s = hash ? readingHash(s, r.sensor_value, r.timestamp) : s + r.sensor_value;
      }
      return s;
    });
  const frameVariant = (label: string, frames: Uint8Array[]): void =>
    time(label, frames, (hash) => (hash ? hashFrames(frames) : sumFrames(frames)));

  recordVariant("MessagePack records, ISO time (+subject check)", msgpackIso, decodeMsgpackRecord);
  recordVariant("MessagePack records, epoch-ms time (+subject check)", msgpackMs, decodeMsgpackRecord);
  time("  bare @msgpack/msgpack decode, no limits/checks", msgpackMs, () => {
    let s = 0;
    for (let i = 0; i < msgpackMs.length; i++) s += (libraryDecode(msgpackMs[i]) as { sensor_value: number }).sensor_value;
    sink += s;
    return null;
  });
  recordVariant("JSON records, ISO time (+subject check)", jsonIso, decodeJsonRecord);
  frameVariant(`frames of ${perFrame}, ${keys.length} keys, int64 times`, framesI64);
  frameVariant(`frames of ${perFrame}, ${keys.length} keys, float64 times, aligned (zero-copy)`, framesF64);
  frameVariant(`frames of ${perFrame}, ${keys.length} keys, float64 times, unaligned (one copy)`, framesF64Unaligned);
  frameVariant(`frames of ≤ ${perFrame}, one machine's keys, int64 times`, framesMachine);

  const hotPath = runHotPath({ records, subjects, msgpackIso, msgpackMs }, runs, runSeconds);
  const sums = rows.map((r) => r.checksum).filter((c): c is number => c !== null);
  const agree = sums.every((c) => c === sums[0]) && hotPath.every((h) => h.checksum === null || h.checksum === sums[0]);
  if (sink === 0.5) process.stdout.write(""); // reads the sink
  return { seed, readings: n, frameReadings: perFrame, machines, rows, hotPath, checksumsAgree: agree };
}

export function formatCodecBench(r: CodecBenchReport): string {
  const base = r.rows[0].readingsPerSecond;
  const lines = [
    `codec decode benchmark — seed ${r.seed}, ${r.readings} simulator readings (${r.machines} machines × 6 sensors), one thread, Node ${process.versions.node}`,
    "variant                                                              M readings/s   bytes/reading   × MessagePack records",
  ];
  for (const row of r.rows) {
    lines.push(
      `  ${row.label.padEnd(66)} ${(row.readingsPerSecond / 1e6).toFixed(3).padStart(12)}   ${row.bytesPerReading.toFixed(1).padStart(13)}   ${(row.readingsPerSecond / base).toFixed(2).padStart(10)}×`,
    );
  }
  lines.push("ingest hot path, same messages                                        generic M/s   specialised M/s   ratio");
  for (const h of r.hotPath) {
    lines.push(
      `  ${h.label.padEnd(66)} ${(h.genericPerSecond / 1e6).toFixed(3).padStart(11)}   ${(h.specialisedPerSecond / 1e6).toFixed(3).padStart(15)}   ${(h.specialisedPerSecond / h.genericPerSecond).toFixed(2).padStart(5)}×`,
    );
  }
  const sums = r.rows.filter((x) => x.checksum !== null).map((x) => x.checksum as number);
  lines.push(
    `checksum (Σ hash(value, time) mod 2^32): ${sums[0]?.toString(16)} — ${r.checksumsAgree ? "all variants agree" : `******** MISMATCH ******** ${sums.join(", ")}`}`,
  );
  return lines.join("\n");
}

/** Keeps the timed passes' results live so the decoding cannot be optimized away. */
let sink = 0;

/**
 * `decodeAll(hash)` decodes every message; with `hash` false (the timed runs) it only sums the
 * values so the work stays live, with `hash` true (one untimed run) it returns the checksum.
 * Warm-up, then `runs` timed runs of whole passes lasting at least `runSeconds` each (a pass over a
 * few dozen frames takes a millisecond, too short for a timer and a JIT to settle on); the median.
 */
function measure(decodeAll: (hash: boolean) => number | null, readings: number, runs: number, runSeconds: number) {
  const checksum = decodeAll(true);
  const rates: number[] = [];
  for (let r = -1; r < runs; r++) {
    let passes = 0;
    const t0 = performance.now();
    let elapsed = 0;
    do {
      sink += decodeAll(false) ?? 0;
      passes++;
      elapsed = (performance.now() - t0) / 1000;
    } while (elapsed < runSeconds);
    if (r >= 0) rates.push((passes * readings) / elapsed);
  }
  rates.sort((x, y) => x - y);
  return { rate: rates[rates.length >> 1], checksum };
}

interface HotPathData {
  records: SensorReadingInput[];
  subjects: string[];
  msgpackIso: Uint8Array[];
  msgpackMs: Uint8Array[];
}

/**
 * What an ingest worker does per single-record message, today and specialised: the subject from
 * its bytes (nats.js keeps them at `msg._msg.subject`) to a key, and the payload to (time, value).
 * Today is NatsInput.decode: TextDecoder (nats.js's `msg.subject`), unpartitioned + parseSubject,
 * decodeRecord. Specialised: SubjectKeyTable on the bytes, SensorRecordReader (the generic
 * decoder when it declines). Rates are messages per second.
 */
function runHotPath(d: HotPathData, runs: number, runSeconds: number): HotPathRow[] {
  const n = d.records.length;
  const subjectBytes = d.subjects.map((s) => NATS_TEXT_ENCODER.encode(s));
  const machines = d.records.map((r) => r.machine_id);
  const sensors = d.records.map((r) => r.sensor_type);
  const reader = new SensorRecordReader();
  const view = new SensorRecordView();
  const rate = (decodeAll: (hash: boolean) => number | null) => measure(decodeAll, n, runs, runSeconds);
  const generic = (messages: Uint8Array[]) =>
    rate((hash) => {
      let s = 0;
      for (let i = 0; i < n; i++) {
        const r = decodeRecord(messages[i], { subject: d.subjects[i] });
        s = hash ? readingHash(s, r.sensor_value, r.timestamp) : s + r.sensor_value;
      }
      return s;
    });
  const specialised = (messages: Uint8Array[]) =>
    rate((hash) => {
      let s = 0;
      for (let i = 0; i < n; i++) {
        const fast = reader.read(messages[i], machines[i], sensors[i], view);
        const r = fast ? undefined : decodeRecord(messages[i], { subject: d.subjects[i] });
        const value = r === undefined ? view.value : r.sensor_value;
        s = hash ? readingHash(s, value, r === undefined ? view.time : r.timestamp) : s + value;
      }
      return s;
    });
  const row = (label: string, g: { rate: number }, x: { rate: number; checksum: number | null }): HotPathRow => ({
    label,
    genericPerSecond: g.rate,
    specialisedPerSecond: x.rate,
    checksum: x.checksum,
  });
  return [
    row("record → (time, value): decodeRecord vs SensorRecordReader, ISO", generic(d.msgpackIso), specialised(d.msgpackIso)),
    row("record → (time, value): decodeRecord vs SensorRecordReader, epoch ms", generic(d.msgpackMs), specialised(d.msgpackMs)),
    subjectRow(subjectBytes, rate),
    wholeMessageRow(subjectBytes, d.msgpackMs, rate),
  ];
}

const NATS_TEXT_ENCODER = new TextEncoder();
/** nats.js decodes `msg.subject` with a default TextDecoder (nats-base-client/encoders.js). */
const NATS_TEXT_DECODER = new TextDecoder();

type Rate = (decodeAll: (hash: boolean) => number | null) => { rate: number; checksum: number | null };

/** Subject bytes → key id: TextDecoder + Map<string, id> vs SubjectKeyTable on the bytes. */
function subjectRow(subjectBytes: Uint8Array[], rate: Rate): HotPathRow {
  const map = new Map<string, number>();
  const table = new SubjectKeyTable();
  const g = rate(() => {
    let s = 0;
    for (const b of subjectBytes) {
      const text = NATS_TEXT_DECODER.decode(b);
      let id = map.get(text);
      if (id === undefined) map.set(text, (id = map.size));
      s += id;
    }
    return s;
  });
  const x = rate(() => {
    let s = 0;
    for (const b of subjectBytes) s += table.idOf(b);
    return s;
  });
  return {
    label: "subject bytes → key id: TextDecoder + Map vs SubjectKeyTable",
    genericPerSecond: g.rate,
    specialisedPerSecond: x.rate,
    checksum: null,
  };
}

/** Both, per message: NatsInput.decode today vs SubjectKeyTable + SensorRecordReader (epoch-ms records). */
function wholeMessageRow(subjectBytes: Uint8Array[], messages: Uint8Array[], rate: Rate): HotPathRow {
  const table = new SubjectKeyTable();
  const reader = new SensorRecordReader();
  const view = new SensorRecordView();
  const g = rate((hash) => {
    let s = 0;
    for (let i = 0; i < messages.length; i++) {
      const parsed = parseSubject(unpartitioned(NATS_TEXT_DECODER.decode(subjectBytes[i]))) as SensorSubject;
      const r = decodeRecord(messages[i], { subject: parsed });
      s = hash ? readingHash(s, r.sensor_value, r.timestamp) : s + r.sensor_value;
    }
    return s;
  });
  const x = rate((hash) => {
    let s = 0;
    for (let i = 0; i < messages.length; i++) {
      const id = table.idOf(subjectBytes[i]);
      if (id >= 0 && reader.read(messages[i], table.machine(id), table.sensor(id), view)) {
        s = hash ? readingHash(s, view.value, view.time) : s + view.value;
      } else {
        // What the worker would do: the generic path, with its dead letters.
        const r = decodeRecord(messages[i], { subject: NATS_TEXT_DECODER.decode(subjectBytes[i]) });
        s = hash ? readingHash(s, r.sensor_value, r.timestamp) : s + r.sensor_value;
      }
    }
    return s;
  });
  return {
    label: "message: NatsInput.decode's steps vs SubjectKeyTable + reader, ms",
    genericPerSecond: g.rate,
    specialisedPerSecond: x.rate,
    checksum: x.checksum,
  };
}

const bits = new Float64Array(1);
const words = new Uint32Array(bits.buffer);

/** acc + hash(value bits, time bits) mod 2^32: exact, and the same in any reading order. */
function readingHash(acc: number, value: number, time: number): number {
  bits[0] = value;
  let h = Math.imul(words[0] ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(words[1], 0xc2b2ae35);
  bits[0] = time;
  h = Math.imul(h ^ words[0], 0x27d4eb2f) ^ Math.imul(words[1] ^ (h >>> 15), 0x165667b1);
  return (acc + (h >>> 0)) % 4294967296;
}

function hashFrames(frames: Uint8Array[]): number {
  let s = 0;
  for (const f of frames) {
    const d = decodeFrame(f);
    for (let i = 0; i < d.length; i++) s = readingHash(s, d.values[i], d.times[i]);
  }
  return s;
}

/** What a consumer does at least: decode, then read every value once. */
function sumFrames(frames: Uint8Array[]): number {
  let s = 0;
  for (const f of frames) {
    const d = decodeFrame(f);
    const v = d.values;
    for (let i = 0; i < d.length; i++) s += v[i];
  }
  return s;
}

function chunk(n: number, size: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let a = 0; a < n; a += size) out.push([a, Math.min(n, a + size)]);
  return out;
}

function placed(frame: Uint8Array, offset: number): Uint8Array {
  const out = new Uint8Array(new ArrayBuffer(frame.length + offset), offset, frame.length);
  out.set(frame);
  return out;
}

/** Frames per machine (the shape a partitioned stream carries), emitted as each machine's buffer fills or the data ends. */
function machineFrames(sim: PlantSimulator, columns: ReturnType<PlantSimulator["nextColumns"]>, perFrame: number): Uint8Array[] {
  const keys = sim.keys();
  const byMachine = new Map<string, { keys: string[]; local: Map<number, number>; idx: number[]; times: number[]; values: number[] }>();
  const frames: Uint8Array[] = [];
  const emit = (b: { keys: string[]; idx: number[]; times: number[]; values: number[] }) => {
    frames.push(encodeFrame({ keys: b.keys, keyIndex: b.idx, times: b.times, values: b.values }, { keyIndex: "u16", times: "int64" }));
    b.idx = [];
    b.times = [];
    b.values = [];
  };
  for (let i = 0; i < columns.length; i++) {
    const k = keys[columns.keyIndex[i]];
    let b = byMachine.get(k.machine_id);
    if (b === undefined) {
      b = { keys: [], local: new Map(), idx: [], times: [], values: [] };
      byMachine.set(k.machine_id, b);
    }
    let local = b.local.get(columns.keyIndex[i]);
    if (local === undefined) {
      local = b.keys.length;
      b.local.set(columns.keyIndex[i], local);
      b.keys.push(sensorKey(k.machine_id, k.sensor_type));
    }
    b.idx.push(local);
    b.times.push(columns.times[i]);
    b.values.push(columns.values[i]);
    if (b.idx.length === perFrame) emit(b);
  }
  for (const b of byMachine.values()) if (b.idx.length > 0) emit(b);
  return frames;
}

// ---- run as a program ----

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i < 0 ? undefined : process.argv[i + 1];
}

async function main(): Promise<void> {
  const num = (name: string): number | undefined => {
    const v = flag(name);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n <= 0) throw new ConfigError(name, `must be a positive integer, got ${v}`);
    return n;
  };
  const report = await runCodecBench({
    smoke: process.argv.includes("--smoke"),
    readings: num("--readings"),
    frameReadings: num("--frame"),
    seed: num("--seed"),
    runs: num("--runs"),
  });
  process.stdout.write(`${formatCodecBench(report)}\n`);
  if (!report.checksumsAgree) process.exitCode = 1;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
