import { describe, expect, it } from "vitest";
import {
  DEFAULT_DECODE_LIMITS,
  DecodeError,
  decodeRecord,
  encodeMsgpackRecord,
  parseSubject,
  sensorKey,
  validateDecodeLimits,
  type DecodeLimits,
  type SensorReading,
  type SensorReadingInput,
  type SensorSubject,
} from "../connectors/wire/codecs.js";
import { LabelTable, SensorRecordReader, SensorRecordView, SubjectKeyTable, unpartitioned } from "../connectors/wire/mod.js";
import { hashBytes } from "../connectors/wire/byte-table.js";
import { PlantSimulator } from "../connectors/sim/plant-simulator.js";
import { SeededRandom } from "../engine/core/mod.js";
import { RecordLabels } from "../engine/jobs/record-labels.js";
import { be, type Bytes, cat, ext, f32, f64, pick, record, shuffle, str } from "./kit/msgpack-writer.js";

// ---------------------------------------------------------------------------------------------
// A MessagePack writer with every format choice explicit: test/kit/msgpack-writer.ts, and here
// ---------------------------------------------------------------------------------------------

const TEXT = new TextEncoder();
const UTF8 = new TextDecoder("utf-8", { ignoreBOM: true });

/** An integer type byte and 1…8 raw bytes, of any value the width holds (non-canonical choices on purpose). */
function intOf(type: number, raw: number[]): number[] {
  return [type, ...raw];
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

// ---------------------------------------------------------------------------------------------
// The oracle: the generic decoder
// ---------------------------------------------------------------------------------------------

type Verdict = "fast" | "generic" | "rejected";

interface Tally {
  fast: number;
  generic: number;
  rejected: number;
}

const newTally = (): Tally => ({ fast: 0, generic: 0, rejected: 0 });

const view = new SensorRecordView();
const readers = new Map<Readonly<DecodeLimits>, SensorRecordReader>();

function readerFor(limits: Readonly<DecodeLimits>): SensorRecordReader {
  let r = readers.get(limits);
  if (r === undefined) readers.set(limits, (r = new SensorRecordReader(limits)));
  return r;
}

function rangeText(bytes: Uint8Array, start: number, length: number): string | undefined {
  return start < 0 ? undefined : UTF8.decode(bytes.subarray(start, start + length));
}

/**
 * Runs the reader and the generic decoder on one message and throws unless the reader's `true`
 * implies the generic decoder accepts with identical numbers and strings.
 */
function judge(bytes: Uint8Array, subject: string, limits: Readonly<DecodeLimits> = DEFAULT_DECODE_LIMITS, tally?: Tally): Verdict {
  const s = parseSubject(unpartitioned(subject), limits) as SensorSubject;
  const fast = readerFor(limits).read(bytes, s.machineId, s.sensorType, view);
  let reading: SensorReading | undefined;
  try {
    // As NatsInput passes it: a partitioned subject read as the one it was published on.
    reading = decodeRecord(bytes, { limits, subject: unpartitioned(subject) });
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    if (fast) throw new Error(`reader accepted what the generic decoder rejects (${e.reason}: ${e.message}): ${hex(bytes)}`);
  }
  const verdict: Verdict = fast ? "fast" : reading === undefined ? "rejected" : "generic";
  if (tally !== undefined) tally[verdict]++;
  if (!fast || reading === undefined) return verdict;
  const same = (what: string, a: unknown, b: unknown) => {
    if (!Object.is(a, b)) throw new Error(`${what}: reader ${String(a)}, generic ${String(b)}: ${hex(bytes)}`);
  };
  same("timestamp", view.time, reading.timestamp);
  same("sensor_value", view.value, reading.sensor_value);
  same("machine_id", rangeText(bytes, view.machineStart, view.machineLength), reading.machine_id);
  same("sensor_type", rangeText(bytes, view.sensorStart, view.sensorLength), reading.sensor_type);
  same("sensor_unit", rangeText(bytes, view.unitStart, view.unitLength), reading.sensor_unit);
  same("operating_mode", rangeText(bytes, view.modeStart, view.modeLength), reading.operating_mode);
  same("work_order_id", rangeText(bytes, view.workOrderStart, view.workOrderLength), reading.work_order_id);
  return verdict;
}

// ---------------------------------------------------------------------------------------------
// Random content
// ---------------------------------------------------------------------------------------------

const TOKEN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_/#+@!~";
const LABEL_POOL = [
  "",
  "°C",
  "bar",
  "mm/s",
  "running",
  "idle",
  "setup",
  "WO-2026-0001",
  "µS/cm",
  "温度",
  "🙂 ok",
  "a\u0000b",
  "x".repeat(40),
];

function token(rng: SeededRandom, max = 12): string {
  let s = "";
  const n = rng.int(1, max);
  for (let i = 0; i < n; i++) s += TOKEN_CHARS[rng.below(TOKEN_CHARS.length)];
  return s;
}

/** A finite double of any magnitude, a special value, or an integer of some width. */
function randomNumber(rng: SeededRandom): number {
  switch (rng.below(8)) {
    case 0:
      return pick(rng, [0, -0, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -1.7976931348623157e308, 1e-300, Math.PI]);
    case 1:
      return rng.int(-40, 300);
    case 2:
      return rng.int(-(2 ** 31), 2 ** 32);
    case 3:
      return (rng.uint32() - 2 ** 31) * 2 ** rng.int(0, 21) + rng.uint32();
    case 4:
      return Math.fround(rng.normal() * 100);
    case 5: {
      const d = new DataView(new ArrayBuffer(8));
      d.setUint32(0, rng.uint32());
      d.setUint32(4, rng.uint32());
      return d.getFloat64(0); // may be NaN or ±Inf: a rejection to agree on
    }
    default:
      return rng.normal() * 10 ** rng.int(-12, 12);
  }
}

/** A MessagePack number of a random (often non-canonical) format. */
function numberBytes(rng: SeededRandom, x: number): number[] | undefined {
  const forms: number[][] = [f64(x)];
  if (Object.is(Math.fround(x), x) || Number.isNaN(x)) forms.push(f32(x));
  if (Number.isInteger(x) && !Object.is(x, -0)) {
    if (x >= 0 && x <= 0x7f) forms.push([x]);
    if (x >= -32 && x < 0) forms.push([x + 0x100]);
    if (x >= 0 && x <= 0xff) forms.push(intOf(0xcc, be(x, 1)));
    if (x >= 0 && x <= 0xffff) forms.push(intOf(0xcd, be(x, 2)));
    if (x >= 0 && x <= 0xffffffff) forms.push(intOf(0xce, be(x, 4)));
    if (x >= 0 && x <= Number.MAX_SAFE_INTEGER) forms.push(intOf(0xcf, [...be(Math.floor(x / 2 ** 32), 4), ...be(x % 2 ** 32, 4)]));
    if (x >= -128 && x <= 127) forms.push(intOf(0xd0, be(x & 0xff, 1)));
    if (x >= -32768 && x <= 32767) forms.push(intOf(0xd1, be(x & 0xffff, 2)));
    if (x >= -(2 ** 31) && x < 2 ** 31) forms.push(intOf(0xd2, be(x >>> 0, 4)));
    if (Math.abs(x) <= Number.MAX_SAFE_INTEGER) {
      const hi = Math.floor(x / 2 ** 32);
      forms.push(intOf(0xd3, [...be(hi >>> 0, 4), ...be(x - hi * 2 ** 32, 4)]));
    }
  }
  return pick(rng, forms);
}

/** Raw 64-bit integers past 2^53, where the library's high × 2^32 + low rounds. */
function wideIntBytes(rng: SeededRandom): number[] {
  const raw = [...be(rng.uint32(), 4), ...be(rng.uint32(), 4)];
  return intOf(rng.below(2) === 0 ? 0xcf : 0xd3, raw);
}

const ISO_MIN = Date.parse("0000-01-01T00:00:00.000Z");
const ISO_MAX = Date.parse("9999-12-31T23:59:59.999Z");

/** A timestamp value of one of the encodings the generic decoder reads, valid or not. */
function timeBytes(rng: SeededRandom): Uint8Array | number[] {
  switch (rng.below(9)) {
    case 0:
      return str(new Date(rng.int(ISO_MIN, ISO_MAX)).toISOString(), pick(rng, ["fix", 8, 16, 32] as const));
    case 1: {
      // A canonical-looking string with one character changed: Date.parse's call.
      const s = [...new Date(rng.int(ISO_MIN, ISO_MAX)).toISOString()];
      s[rng.below(24)] = pick(rng, [..."0123456789-T:.Zz+ "]);
      return str(s.join(""));
    }
    case 2:
      return str(
        pick(rng, [
          "2026-02-29T10:00:00.000Z",
          "2024-02-29T10:00:00.000Z",
          "2026-02-31T00:00:00.000Z",
          "2026-04-31T00:00:00.000Z",
          "2026-01-01T24:00:00.000Z",
          "2026-01-01T23:59:60.000Z",
          "2026-13-01T00:00:00.000Z",
          "2026-00-01T00:00:00.000Z",
          "2026-01-01T00:00:00Z",
          "2026-01-01T00:00:00.000+01:00",
          "2026-01-01 00:00:00",
          "1767225600000",
          "+275760-09-13T00:00:00.000Z",
          "-000001-01-01T00:00:00.000Z",
          "",
          "now",
        ]),
      );
    case 3:
      return numberBytes(rng, rng.int(-(2 ** 40), 2 ** 42)) ?? [0];
    case 4:
      return numberBytes(rng, pick(rng, [8.64e15, -8.64e15, 8.64e15 + 1, -8.64e15 - 2, 2 ** 53, 0, -0, 1.5, -1.5])) ?? [0];
    case 5:
      return numberBytes(rng, randomNumber(rng)) ?? [0];
    case 6:
      return ext(-1, be(rng.uint32(), 4));
    case 7:
      return ext(-1, [...be(rng.uint32(), 4), ...be(rng.uint32(), 4)], pick(rng, ["fix", 8] as const));
    default:
      return ext(-1, [...be(rng.uint32(), 4), ...be(pick(rng, [0, 0xffffffff, rng.uint32()]), 4), ...be(rng.uint32(), 4)]);
  }
}

function labelBytes(rng: SeededRandom): Uint8Array | number[] {
  return rng.below(8) === 0 ? [0xc0] : str(pick(rng, LABEL_POOL), pick(rng, ["fix", 8, 16, 32, undefined] as const));
}

/** A record of the schema's fields, each in a random encoding, in random order, some labels left out. */
function randomRecord(rng: SeededRandom, machine: string, sensor: string): Uint8Array {
  const value = rng.below(10) === 0 ? wideIntBytes(rng) : (numberBytes(rng, randomNumber(rng)) ?? [0]);
  const entries: Array<[Bytes, Bytes]> = [
    [str("machine_id"), str(machine, pick(rng, ["fix", 8] as const))],
    [str("sensor_type"), str(sensor)],
    [str("timestamp"), timeBytes(rng)],
    [str("sensor_value"), value],
  ];
  for (const name of ["sensor_unit", "operating_mode", "work_order_id"]) {
    if (rng.below(3) !== 0) entries.push([str(name, rng.below(6) === 0 ? 8 : "fix"), labelBytes(rng)]);
  }
  return record(shuffle(rng, entries), pick(rng, ["fix", "fix", 16, 32] as const));
}

// ---------------------------------------------------------------------------------------------

const SUBJECT = "lw.plant1.sensor.M-001.temperature";
const BASE: SensorReadingInput = {
  machine_id: "M-001",
  sensor_type: "temperature",
  timestamp: 1767225600123,
  sensor_value: 71.25,
  sensor_unit: "°C",
  operating_mode: "running",
  work_order_id: "WO-1",
};

describe("SensorRecordReader", () => {
  it("takes the fast path for every record encodeMsgpackRecord writes (the simulator's included)", () => {
    const tally = newTally();
    const sim = new PlantSimulator({ seed: 7, machines: 4, rateHz: 100 });
    for (const r of sim.nextRecords(3000)) {
      const subject = `lw.plant1.sensor.${r.machine_id}.${r.sensor_type}`;
      for (const timestamp of [undefined, "ms", "iso"] as const) judge(encodeMsgpackRecord(r, { timestamp }), subject, undefined, tally);
      // What `linewatch simulate --nats` publishes: epoch-ms number, no work order.
      const { work_order_id: _, ...published } = r;
      judge(encodeMsgpackRecord({ ...published, timestamp: Date.parse(r.timestamp as string) }), subject, undefined, tally);
    }
    const rng = new SeededRandom(11);
    for (let i = 0; i < 20_000; i++) {
      const machine = token(rng);
      const sensor = token(rng);
      const reading: SensorReadingInput = {
        machine_id: machine,
        sensor_type: sensor,
        timestamp:
          rng.below(2) === 0 ? new Date(rng.int(ISO_MIN, ISO_MAX)).toISOString() : rng.int(-(2 ** 45), 2 ** 45) / pick(rng, [1, 4, 1000]),
        sensor_value: randomNumber(rng),
      };
      if (!Number.isFinite(reading.sensor_value)) continue;
      if (rng.below(2) === 0) reading.sensor_unit = pick(rng, LABEL_POOL);
      if (rng.below(2) === 0) reading.operating_mode = pick(rng, LABEL_POOL);
      if (rng.below(2) === 0) reading.work_order_id = pick(rng, LABEL_POOL);
      const subject = rng.below(4) === 0 ? `lw.s.p.${rng.below(16)}.sensor.${machine}.${sensor}` : `lw.s.sensor.${machine}.${sensor}`;
      judge(encodeMsgpackRecord(reading), subject, undefined, tally);
      // A machine's subject: sensor_type is checked as a token instead.
      judge(encodeMsgpackRecord(reading), `lw.s.sensor.${machine}`, undefined, tally);
    }
    expect(tally.generic).toBe(0);
    expect(tally.rejected).toBe(0);
    expect(tally.fast).toBeGreaterThan(50_000);
  });

  it("agrees with the generic decoder on random records: every field encoding, order, map format", () => {
    const tally = newTally();
    const rng = new SeededRandom(12);
    for (let i = 0; i < 40_000; i++) {
      const machine = rng.below(20) === 0 ? "Maschine-ü" : token(rng);
      const sensor = token(rng);
      const subject = rng.below(5) === 0 ? `lw.s.sensor.${machine}` : `lw.s.sensor.${machine}.${sensor}`;
      judge(randomRecord(rng, machine, sensor), subject, undefined, tally);
    }
    // Each kind occurs: the property is not vacuous.
    expect(tally.fast).toBeGreaterThan(10_000);
    expect(tally.generic).toBeGreaterThan(1000);
    expect(tally.rejected).toBeGreaterThan(1000);
  });

  it("reads every integer width, float32, -0, subnormals and extremes bit for bit", () => {
    const rng = new SeededRandom(13);
    const values = [0, -0, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, Math.fround(0.1), 127, 128, -32, -33];
    values.push(255, 256, -128, -129, 65535, 65536, -32768, -32769, 2 ** 32 - 1, 2 ** 32, -(2 ** 31), -(2 ** 31) - 1);
    values.push(Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER);
    for (const v of values) {
      for (let k = 0; k < 12; k++) {
        const bytes = record([
          [str("machine_id"), str("M-001")],
          [str("sensor_type"), str("temperature")],
          [str("timestamp"), numberBytes(rng, 1767225600000) ?? []],
          [str("sensor_value"), numberBytes(rng, v) ?? []],
        ]);
        expect(judge(bytes, SUBJECT)).toBe("fast");
      }
    }
    for (let k = 0; k < 2000; k++) {
      const bytes = record([
        [str("machine_id"), str("M-001")],
        [str("sensor_type"), str("temperature")],
        [str("timestamp"), [0x00]],
        [str("sensor_value"), wideIntBytes(rng)],
      ]);
      expect(judge(bytes, SUBJECT)).toBe("fast");
    }
  });

  it("rejects what the generic decoder rejects: missing fields, wrong types, NaN/Inf, mismatches, limits", () => {
    const good: Array<[string, Bytes]> = [
      ["machine_id", str("M-001")],
      ["sensor_type", str("temperature")],
      ["timestamp", f64(1767225600000)],
      ["sensor_value", f64(1.5)],
    ];
    const withField = (name: string, value: Bytes | undefined) =>
      record([
        ...good.filter(([n]) => n !== name).map(([n, v]) => [str(n), v] as [Bytes, Bytes]),
        ...(value === undefined ? [] : [[str(name), value] as [Bytes, Bytes]]),
      ]);
    const bad: Bytes[] = [[0xc0], [0xc2], [0xc3], [0x90], [0x80], [0xc4, 1, 0], ext(5, [1, 2, 3, 4]), str("1.5"), str("")];
    for (const name of ["machine_id", "sensor_type", "timestamp", "sensor_value"]) {
      expect(judge(withField(name, undefined), SUBJECT)).toBe("rejected");
      for (const b of bad) expect(judge(withField(name, b), SUBJECT)).not.toBe("fast");
    }
    for (const name of ["sensor_unit", "operating_mode", "work_order_id"]) {
      for (const b of bad.filter((x) => x[0] !== 0xc0 && (x[0] & 0xe0) !== 0xa0))
        expect(judge(withField(name, b), SUBJECT)).toBe("rejected");
      expect(judge(withField(name, [0xc0]), SUBJECT)).toBe("fast");
      expect(judge(withField(name, str("")), SUBJECT)).toBe("fast");
    }
    for (const x of [NaN, Infinity, -Infinity]) {
      expect(judge(withField("sensor_value", f64(x)), SUBJECT)).toBe("rejected");
      expect(judge(withField("sensor_value", f32(x)), SUBJECT)).toBe("rejected");
      expect(judge(withField("timestamp", f64(x)), SUBJECT)).toBe("rejected");
    }
    expect(judge(withField("timestamp", f64(8.64e15 + 2)), SUBJECT)).toBe("rejected");
    expect(judge(withField("timestamp", f64(8.64e15)), SUBJECT)).toBe("fast");
    expect(judge(withField("machine_id", str("M-002")), SUBJECT)).toBe("rejected");
    expect(judge(withField("machine_id", str("m-001")), SUBJECT)).toBe("rejected");
    expect(judge(withField("sensor_type", str("pressure")), SUBJECT)).toBe("rejected");
    expect(judge(withField("sensor_type", str("a.b")), "lw.s.sensor.M-001")).toBe("rejected");
    expect(judge(withField("sensor_type", str("a b")), "lw.s.sensor.M-001")).toBe("rejected");
    expect(judge(withField("sensor_type", str("x".repeat(65))), "lw.s.sensor.M-001")).toBe("rejected");
    expect(judge(withField("sensor_type", str("x".repeat(64))), "lw.s.sensor.M-001")).toBe("fast");
    // Oversize strings, in a label and in an unknown field.
    expect(judge(withField("sensor_unit", str("u".repeat(257))), SUBJECT)).toBe("rejected");
    expect(judge(withField("sensor_unit", str("u".repeat(256))), SUBJECT)).toBe("fast");
    expect(judge(withField("note", str("u".repeat(257))), SUBJECT)).toBe("rejected");
    // Malformed UTF-8 labels and a leading BOM are the generic decoder's to read.
    const bom = [0xef, 0xbb, 0xbf];
    for (const b of [
      [0xff],
      [0xc0, 0x80],
      [0xed, 0xa0, 0x80],
      [0xe2, 0x82],
      [0xf4, 0x90, 0x80, 0x80],
      [...bom, 0x41],
      [...bom, ...Array(240).fill(0x41)],
    ]) {
      expect(judge(withField("sensor_unit", str(new Uint8Array(b))), SUBJECT)).not.toBe("fast");
    }
    // A byte equal to a non-ASCII character's code is not that character's UTF-8.
    expect(judge(withField("machine_id", str(new Uint8Array([0xe9]))), "lw.s.sensor.\u00e9.temperature")).toBe("rejected");
    expect(judge(withField("machine_id", str("\u00e9")), "lw.s.sensor.\u00e9.temperature")).toBe("generic");
  });

  it("leaves unknown and repeated fields, __proto__, trailing bytes and nesting to the generic decoder", () => {
    const head: Array<[Bytes, Bytes]> = [
      [str("machine_id"), str("M-001")],
      [str("sensor_type"), str("temperature")],
      [str("timestamp"), f64(1767225600000)],
      [str("sensor_value"), f64(1.5)],
    ];
    expect(judge(record([...head, [str("extra"), [0x01]]]), SUBJECT)).toBe("generic");
    expect(judge(record([...head, [[0x05], [0x01]]]), SUBJECT)).toBe("generic");
    expect(judge(record([...head, [str("__proto__"), [0x01]]]), SUBJECT)).toBe("rejected");
    // The last of a repeated field wins in the generic decoder.
    expect(judge(record([...head, [str("sensor_value"), f64(2.5)]]), SUBJECT)).toBe("generic");
    expect(judge(record([...head, [str("machine_id"), str("M-002")]]), SUBJECT)).toBe("rejected");
    expect(judge(record([[str("machine_id"), str("M-002")], ...head]), SUBJECT)).toBe("generic");
    expect(judge(cat(record(head), [0x00]), SUBJECT)).toBe("rejected");
    expect(judge(cat(record(head), record(head)), SUBJECT)).toBe("rejected");
    // Nested bombs: deep arrays, and containers declaring more values than bytes.
    const deep = cat(...Array.from({ length: 40 }, () => [0x91]), [0x00]);
    expect(judge(record([...head, [str("x"), deep]]), SUBJECT)).toBe("rejected");
    expect(judge(record([...head, [str("x"), [0xdd, 0xff, 0xff, 0xff, 0xff]]]), SUBJECT)).toBe("rejected");
    expect(judge(cat([0xdf, 0xff, 0xff, 0xff, 0xff], ...head.flat()), SUBJECT)).toBe("rejected");
    expect(judge(cat([0xde, 0x00, 0x05], ...head.flat()), SUBJECT)).toBe("rejected");
    expect(judge(cat([0x83], ...head.flat()), SUBJECT)).toBe("rejected");
    expect(judge(new Uint8Array(0), SUBJECT)).toBe("rejected");
    // Not a map: the generic decoder's call (JSON, frame, scalar).
    expect(judge(TEXT.encode(JSON.stringify({ ...BASE })), SUBJECT)).toBe("generic");
    expect(judge(new Uint8Array([0x92, 0x01, 0x02]), SUBJECT)).toBe("rejected");
  });

  it("agrees on every truncation and on random byte mutations of valid records", () => {
    const tally = newTally();
    const rng = new SeededRandom(14);
    for (let i = 0; i < 150; i++) {
      const machine = token(rng, 6);
      const sensor = token(rng, 6);
      const bytes =
        rng.below(2) === 0
          ? randomRecord(rng, machine, sensor)
          : encodeMsgpackRecord({ ...BASE, machine_id: machine, sensor_type: sensor });
      const subject = `lw.s.sensor.${machine}.${sensor}`;
      for (let cut = 0; cut < bytes.length; cut++) expect(judge(bytes.subarray(0, cut), subject, undefined, tally)).not.toBe("fast");
      for (let k = 0; k < 60; k++) {
        const m = bytes.slice();
        for (let j = rng.int(1, 3); j > 0; j--)
          m[rng.below(m.length)] =
            rng.below(3) === 0 ? pick(rng, [0xc0, 0xc1, 0xd9, 0xdb, 0xdd, 0xdf, 0xff, 0x00, 0x7f, 0x80]) : rng.below(256);
        judge(m, subject, undefined, tally);
        const at = rng.below(bytes.length + 1);
        judge(cat(bytes.subarray(0, at), [rng.below(256)], bytes.subarray(at)), subject, undefined, tally);
      }
    }
    expect(tally.fast).toBeGreaterThan(300);
    expect(tally.rejected).toBeGreaterThan(5000);
  });

  it("readKept: a record on a slot's kept layout, its time and value respelt or its bytes mutated, reads as read reads it", () => {
    const rng = new SeededRandom(15);
    const kept = new SensorRecordReader();
    const full = new SensorRecordReader();
    const keptView = new SensorRecordView();
    const fullView = new SensorRecordView();
    const fields = ["time", "value", "machineStart", "machineLength", "sensorStart", "sensorLength", "unitStart", "unitLength"] as const;
    const more = ["modeStart", "modeLength", "workOrderStart", "workOrderLength", "timeAt", "timeEnd", "valueAt", "valueEnd"] as const;
    const slots = Array.from({ length: 4 }, () => ({ machine: token(rng, 6), sensor: token(rng, 6), last: [] as Uint8Array[] }));
    let keptTaken = 0;
    let keptRefused = 0;
    for (let step = 0; step < 40_000; step++) {
      const slot = rng.below(slots.length);
      const o = slots[slot];
      const earlier = o.last.length === 0 ? null : pick(rng, o.last);
      let bytes: Uint8Array;
      const kind = earlier === null ? 0 : rng.below(6);
      if (kind === 0) bytes = randomRecord(rng, o.machine, o.sensor);
      else if (kind <= 3) {
        // Its time and/or value spelt anew, in any encoding (the same width or not).
        full.read(earlier as Uint8Array, o.machine, o.sensor, fullView);
        const e = earlier as Uint8Array;
        const time = rng.below(3) === 0 ? e.subarray(fullView.timeAt, fullView.timeEnd) : timeBytes(rng);
        const value =
          rng.below(3) === 0 ? e.subarray(fullView.valueAt, fullView.valueEnd) : (numberBytes(rng, randomNumber(rng)) ?? [0xc0]);
        const [a, b] = fullView.timeAt < fullView.valueAt ? [time, value] : [value, time];
        const [aAt, aEnd, bAt, bEnd] =
          fullView.timeAt < fullView.valueAt
            ? [fullView.timeAt, fullView.timeEnd, fullView.valueAt, fullView.valueEnd]
            : [fullView.valueAt, fullView.valueEnd, fullView.timeAt, fullView.timeEnd];
        bytes = fullView.timeEnd > 0 ? cat(e.subarray(0, aAt), a, e.subarray(aEnd, bAt), b, e.subarray(bEnd)) : e;
      } else if (kind === 4) {
        bytes = (earlier as Uint8Array).slice();
        bytes[rng.below(bytes.length)] = rng.below(256);
      } else bytes = (earlier as Uint8Array).subarray(0, rng.below((earlier as Uint8Array).length + 1));
      const a = kept.readKept(bytes, slot, o.machine, o.sensor, keptView);
      const b = full.read(bytes, o.machine, o.sensor, fullView);
      expect(a).toBe(b);
      if (keptView.kept) keptTaken++;
      else if (kind >= 1 && kind <= 3) keptRefused++;
      if (!a) continue;
      for (const f of [...fields, ...more]) expect([f, keptView[f]]).toEqual([f, fullView[f]]);
      if (o.last.length < 8) o.last.push(bytes);
      else o.last[rng.below(8)] = bytes;
    }
    // Both ways are taken often: the property is not vacuous.
    expect(keptTaken).toBeGreaterThan(1000);
    expect(keptRefused).toBeGreaterThan(1000);
  });

  it("keeps to tight limits: string bytes, token bytes, map entries, ext bytes, record bytes", () => {
    const settings = [
      { stringBytesMax: 24, tokenBytesMax: 8, mapEntriesMax: 5, extBytesMax: 4, recordBytesMax: 140 },
      { stringBytesMax: 23, tokenBytesMax: 6, mapEntriesMax: 4, extBytesMax: 8, recordBytesMax: 100 },
      { stringBytesMax: 12, tokenBytesMax: 12, mapEntriesMax: 7, extBytesMax: 0, recordBytesMax: 13 },
    ].map((l) => validateDecodeLimits(l));
    // "sensor" is itself a subject token: tokenBytesMax ≥ 6 for any sensor subject to parse.
    const tally = newTally();
    const rng = new SeededRandom(15);
    for (const limits of settings) {
      for (let i = 0; i < 10_000; i++) {
        const machine = token(rng, limits.tokenBytesMax);
        const machineSubject = rng.below(3) === 0;
        const sensor = token(rng, machineSubject ? limits.tokenBytesMax + 2 : limits.tokenBytesMax);
        const subject = machineSubject ? `lw.s.sensor.${machine}` : `lw.s.sensor.${machine}.${sensor}`;
        judge(randomRecord(rng, machine, sensor), subject, limits, tally);
      }
    }
    expect(tally.fast).toBeGreaterThan(500);
    expect(tally.rejected).toBeGreaterThan(5000);
  });
});

describe("LabelTable", () => {
  it("gives RecordLabels' ids, triples and unkept count, from bytes and from decoded fields alike", () => {
    const rng = new SeededRandom(16);
    const pool = [undefined, "", "°C", "bar", "running", "idle", "WO-1", "WO-2", "🙂", "\ud800", "\ufffd", "a\u0000"];
    for (const max of [0, 1, 5, 40, 10_000]) {
      const table = new LabelTable(max);
      const oracle = new RecordLabels(max);
      for (let i = 0; i < 3000; i++) {
        const r = { sensor_unit: pick(rng, pool), operating_mode: pick(rng, pool), work_order_id: pick(rng, pool) };
        const fields = Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined));
        const expected = oracle.idOf(fields);
        const lone = Object.values(fields).some((v) => v === "\ud800");
        let id: number;
        if (lone || rng.below(2) === 0) id = table.idOf(fields);
        else {
          // Through the bytes: encode, read, intern.
          const bytes = encodeMsgpackRecord({
            ...BASE,
            sensor_unit: undefined,
            operating_mode: undefined,
            work_order_id: undefined,
            ...fields,
          });
          expect(readerFor(DEFAULT_DECODE_LIMITS).read(bytes, "M-001", "temperature", view)).toBe(true);
          id = table.idOfView(bytes, view);
        }
        expect(id).toBe(expected);
        expect(table.get(id)).toEqual(oracle.get(expected));
      }
      expect(table.unkept).toBe(oracle.unkept);
    }
  });
});

describe("SubjectKeyTable", () => {
  const decodeAsNats = new TextDecoder();

  it("hashes with MurmurHash3 x86_32, seed 0 (the reference's test vectors), over any range", () => {
    const vectors: Array<[string, number]> = [
      ["", 0],
      ["a", 0x3c2569b2],
      ["abc", 0xb3dd93fa],
      ["hello", 0x248bfa47],
      ["The quick brown fox jumps over the lazy dog", 0x2e4ff723],
    ];
    for (const [text, hash] of vectors) {
      const b = cat([1, 2], TEXT.encode(text), [3]);
      expect(hashBytes(b, 2, b.length - 1) >>> 0).toBe(hash);
    }
  });

  it("maps subject bytes to the keys parseSubject gives, partitioned or not, and keeps no invalid subject", () => {
    const rng = new SeededRandom(17);
    const table = new SubjectKeyTable();
    const seen = new Map<string, number>();
    const pieces = [
      "M-001",
      "M-002",
      "press",
      "temp",
      "ü",
      "温度",
      "a/b",
      "x".repeat(64),
      "x".repeat(65),
      "a*b",
      "a>b",
      "a b",
      "",
      "p",
      "7",
      "\u007f",
    ];
    for (let i = 0; i < 20_000; i++) {
      const kind = pick(rng, ["sensor", "sensor", "sensor", "serial", "process", "deadletter", "senso"]);
      const tokens = ["lw", pick(rng, ["s1", "s2", ""])];
      if (rng.below(3) === 0) tokens.push("p", pick(rng, ["0", "15", "x", ""]));
      tokens.push(kind);
      for (let k = rng.int(0, 3); k > 0; k--) tokens.push(pick(rng, pieces));
      const bytes = rng.below(30) === 0 ? cat(TEXT.encode(tokens.join(".")), [0xff]) : TEXT.encode(tokens.join("."));
      const before = table.subjects;
      const id = table.idOf(bytes);
      expect(table.idOf(cat([0x20], bytes, [0x20]), 1, bytes.length + 1)).toBe(id);
      let parsed: ReturnType<typeof parseSubject> | undefined;
      try {
        parsed = parseSubject(unpartitioned(decodeAsNats.decode(bytes)));
      } catch {
        parsed = undefined;
      }
      if (parsed?.kind !== "sensor") {
        expect(id).toBe(SubjectKeyTable.INVALID);
        expect(table.subjects).toBe(before);
        continue;
      }
      expect(id).toBeGreaterThanOrEqual(0);
      expect(table.machine(id)).toBe(parsed.machineId);
      expect(table.sensor(id)).toBe(parsed.sensorType);
      expect(table.engineKey(id)).toBe(parsed.sensorType === undefined ? undefined : `${parsed.machineId}/${parsed.sensorType}`);
      if (parsed.sensorType !== undefined)
        expect(sensorKey(table.machine(id), parsed.sensorType)).toBe(`${parsed.machineId}.${parsed.sensorType}`);
      const identity = `${parsed.machineId}|${parsed.sensorType ?? "-"}`;
      if (!seen.has(identity)) seen.set(identity, id);
      expect(id).toBe(seen.get(identity));
    }
    expect(table.keys).toBe(seen.size);
    expect(seen.size).toBeGreaterThan(50);
    expect(table.idOf(TEXT.encode("lw.s.p.3.sensor.M-001.temp"))).toBe(table.idOf(TEXT.encode("lw.s.sensor.M-001.temp")));
  });

  it("is bounded: past its capacity a new valid subject is FULL, and the kept ones still resolve", () => {
    const table = new SubjectKeyTable(DEFAULT_DECODE_LIMITS, 3);
    const ids = ["lw.s.sensor.A.x", "lw.s.sensor.B.x", "lw.s.p.1.sensor.A.x"].map((s) => table.idOf(TEXT.encode(s)));
    expect(ids).toEqual([0, 1, 0]);
    expect(table.idOf(TEXT.encode("lw.s.sensor.C.x"))).toBe(SubjectKeyTable.FULL);
    expect(table.idOf(TEXT.encode("lw.s.serial.L1"))).toBe(SubjectKeyTable.INVALID);
    expect(table.idOf(TEXT.encode("lw.s.sensor.B.x"))).toBe(1);
    expect([table.subjects, table.keys]).toEqual([3, 2]);
    for (let i = 0; i < 1000; i++) expect(table.idOf(TEXT.encode(`lw.s.sensor.M${i}.x`))).toBe(SubjectKeyTable.FULL);
    expect(table.subjects).toBe(3);
  });
});
