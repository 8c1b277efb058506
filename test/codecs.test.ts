import { encode as msgpackEncode } from "@msgpack/msgpack";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_DECODE_LIMITS,
  DecodeError,
  EncodeError,
  FRAME_FLAG_INDEX_U32,
  FRAME_FLAG_INDEX_U8,
  FRAME_FLAG_ONE_KEY,
  FRAME_FLAG_TIME_F64,
  FRAME_HEADER_BYTES,
  FRAME_TIME_OFFSET_MAX,
  TIME_ABS_MAX_MS,
  SubjectError,
  decodeFrame,
  decodeFrameInto,
  decodeJsonRecord,
  decodeMsgpackRecord,
  decodeRecord,
  deadLetterSubject,
  encodeFrame,
  encodeJsonRecord,
  encodeMsgpackRecord,
  frameByteLength,
  parseSubject,
  processSubject,
  sensorKey,
  sensorSubject,
  serialSubject,
  sniffPayload,
  validateDecodeLimits,
  type DecodeReason,
  type DecodedFrame,
  type SensorReading,
} from "../connectors/wire/codecs.js";
import { PlantSimulator } from "../connectors/sim/plant-simulator.js";
import { ConfigError } from "../engine/core/errors.js";
import { runCodecBench } from "../bench/codec-bench.js";
import { SeededRandom } from "../engine/core/mod.js";

const SUBJECT = "lw.plant1.sensor.M-001.temperature";
const READING: SensorReading = {
  machine_id: "M-001",
  sensor_type: "temperature",
  timestamp: Date.UTC(2026, 0, 1, 0, 0, 0, 100),
  sensor_value: 42.25,
  sensor_unit: "°C",
  operating_mode: "running",
  work_order_id: "WO-2026-000001",
};

/** The reason of the DecodeError `fn` throws (fails the test if it throws something else or nothing). */
function reasonOf(fn: () => unknown): DecodeReason {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(DecodeError);
    return (e as DecodeError).reason;
  }
  throw new Error("expected a DecodeError, nothing was thrown");
}

const msgpack = (o: unknown): Uint8Array => msgpackEncode(o);
const json = (text: string): Uint8Array => new TextEncoder().encode(text);
const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);
const decodeM = (b: Uint8Array, subject?: string) => decodeMsgpackRecord(b, { subject });
const decodeJ = (b: Uint8Array, subject?: string) => decodeJsonRecord(b, { subject });

describe("codecs - single records round-trip", () => {
  it("MessagePack and JSON give back every field of simulator records, ISO times as epoch ms", () => {
    const sim = new PlantSimulator({ seed: 7, machines: 3 });
    for (const r of sim.nextRecords(200)) {
      const expected = { ...r, timestamp: Date.parse(r.timestamp) };
      const subject = sensorSubject("plant1", r.machine_id, r.sensor_type);
      expect(decodeMsgpackRecord(encodeMsgpackRecord(r), { subject })).toEqual(expected);
      expect(decodeJsonRecord(encodeJsonRecord(r), { subject })).toEqual(expected);
    }
  });

  it("epoch-ms times and full-precision values survive both formats exactly; absent optionals stay absent", () => {
    const r: SensorReading = { machine_id: "M-9", sensor_type: "vibration", timestamp: -12345, sensor_value: 0.1 + 0.2 };
    expect(decodeM(encodeMsgpackRecord(r))).toEqual(r);
    expect(decodeJ(encodeJsonRecord(r))).toEqual(r);
    expect(decodeM(encodeMsgpackRecord(READING), SUBJECT)).toEqual(READING);
    expect(decodeJ(encodeJsonRecord(READING), SUBJECT)).toEqual(READING);
  });

  it("encoders write the time as given, or as ms / ISO on request", () => {
    const iso = { ...READING, timestamp: "2026-01-01T00:00:00.100Z" };
    expect(JSON.parse(new TextDecoder().decode(encodeJsonRecord(iso))).timestamp).toBe(iso.timestamp);
    expect(JSON.parse(new TextDecoder().decode(encodeJsonRecord(iso, { timestamp: "ms" }))).timestamp).toBe(READING.timestamp);
    expect(JSON.parse(new TextDecoder().decode(encodeJsonRecord(READING, { timestamp: "iso" }))).timestamp).toBe(iso.timestamp);
  });

  it("accepts the MessagePack timestamp extension, ISO without zone (UTC), numeric strings, and ignores unknown fields", () => {
    const base = { machine_id: "M-001", sensor_type: "temperature", sensor_value: 1 };
    expect(decodeM(msgpack({ ...base, timestamp: new Date(READING.timestamp) })).timestamp).toBe(READING.timestamp);
    expect(decodeM(msgpack({ ...base, timestamp: "2026-01-01T00:00:00.100" })).timestamp).toBe(READING.timestamp);
    expect(decodeJ(json(JSON.stringify({ ...base, timestamp: String(READING.timestamp) }))).timestamp).toBe(READING.timestamp);
    const extra = decodeJ(json(JSON.stringify({ ...base, timestamp: 5, line: "L1", tags: ["a", "b"], sensor_unit: null })));
    expect(extra).toEqual({ ...base, timestamp: 5 });
  });

  it("sniffs frames, JSON and MessagePack apart; decodeRecord follows the sniff", () => {
    expect(sniffPayload(encodeMsgpackRecord(READING))).toBe("msgpack");
    expect(sniffPayload(encodeJsonRecord(READING))).toBe("json");
    expect(sniffPayload(json(` \n${new TextDecoder().decode(encodeJsonRecord(READING))}`))).toBe("json");
    expect(sniffPayload(encodeFrame({ keys: ["M-1.t"], times: [1], values: [2] }))).toBe("frame");
    expect(decodeRecord(encodeJsonRecord(READING))).toEqual(READING);
    expect(decodeRecord(encodeMsgpackRecord(READING))).toEqual(READING);
    expect(reasonOf(() => decodeRecord(encodeFrame({ keys: ["M-1.t"], times: [1], values: [2] })))).toBe("malformed");
  });
});

describe("codecs - bad single records are rejected with their reason", () => {
  const good = { machine_id: "M-001", sensor_type: "temperature", timestamp: 1000, sensor_value: 1.5 };

  it("too_large: the size is checked before decoding", () => {
    const huge = new Uint8Array(DEFAULT_DECODE_LIMITS.recordBytesMax + 1).fill(0xdd);
    expect(reasonOf(() => decodeM(huge))).toBe("too_large");
    expect(reasonOf(() => decodeJ(huge))).toBe("too_large");
    const small = validateDecodeLimits({ recordBytesMax: 64, stringBytesMax: 32, tokenBytesMax: 16 });
    expect(reasonOf(() => decodeMsgpackRecord(encodeMsgpackRecord(READING), { limits: small }))).toBe("too_large");
  });

  it("truncated: every cut of a MessagePack record, a cut JSON record, an empty message", () => {
    const full = encodeMsgpackRecord(READING);
    for (let n = 0; n < full.length; n++) expect(reasonOf(() => decodeM(full.subarray(0, n)))).toBe("truncated");
    const text = encodeJsonRecord(READING);
    expect(reasonOf(() => decodeJ(text.subarray(0, text.length - 1)))).toBe("truncated");
    expect(reasonOf(() => decodeJ(text.subarray(0, 30)))).toBe("truncated");
    expect(reasonOf(() => decodeJ(new Uint8Array(0)))).toBe("truncated");
  });

  it("trailing_bytes and malformed: bytes after the value, the never-used 0xc1, garbage JSON, invalid UTF-8, non-string map keys", () => {
    const full = encodeMsgpackRecord(READING);
    expect(reasonOf(() => decodeM(Uint8Array.from([...full, 0xc0])))).toBe("trailing_bytes");
    expect(reasonOf(() => decodeM(bytes(0x81, 0xc1, 0x01)))).toBe("malformed");
    expect(reasonOf(() => decodeJ(json("{machine_id: 1}")))).toBe("malformed");
    expect(reasonOf(() => decodeJ(json('{"a":1}}')))).toBe("malformed");
    expect(reasonOf(() => decodeJ(bytes(0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d)))).toBe("malformed");
    // {[1]: 2}: a map whose key is an array — the library refuses it after the scan.
    expect(reasonOf(() => decodeM(bytes(0x81, 0x91, 0x01, 0x02)))).toBe("malformed");
  });

  it("MessagePack bombs: tiny messages declaring 2^31-element arrays and maps, 2 GiB strings, binaries, extensions", () => {
    const bombs: Array<[string, Uint8Array]> = [
      ["array32 of 2^31", bytes(0xdd, 0x80, 0x00, 0x00, 0x00)],
      ["array32 of 2^32-1", bytes(0xdd, 0xff, 0xff, 0xff, 0xff)],
      ["map32 of 2^31", bytes(0xdf, 0x80, 0x00, 0x00, 0x00)],
      ["str32 of 2^31", bytes(0xdb, 0x80, 0x00, 0x00, 0x00, 0x41)],
      ["bin32 of 2^31", bytes(0xc6, 0x80, 0x00, 0x00, 0x00)],
      ["ext32 of 2^31", bytes(0xc9, 0x80, 0x00, 0x00, 0x00, 0x01)],
      ["array16 of 65535", bytes(0xdc, 0xff, 0xff, 0x01)],
      ["inside a record", msgpack({ ...good, x: "y" }).map((b, i, a) => (i === a.length - 2 ? 0xdd : b))],
    ];
    for (const [name, bomb] of bombs) {
      const reason = reasonOf(() => decodeM(bomb));
      expect(["length_exceeded", "truncated"], name).toContain(reason);
    }
    expect(reasonOf(() => decodeM(bytes(0xdd, 0xff, 0xff, 0xff, 0xff)))).toBe("length_exceeded");
  });

  it("bombs within raised limits still cannot allocate: more elements declared than bytes left is truncated", () => {
    const roomy = validateDecodeLimits({ arrayLengthMax: 0xffff_ffff, mapEntriesMax: 0xffff_ffff });
    // 3 KB of nested array16 headers, each asking the library to pre-size a 64 K-slot array.
    const nested = new Uint8Array(3 * 1000);
    for (let i = 0; i < nested.length; i += 3) nested.set([0xdc, 0xff, 0xff], i);
    expect(reasonOf(() => decodeMsgpackRecord(nested, { limits: roomy }))).toBe("truncated");
    expect(reasonOf(() => decodeMsgpackRecord(bytes(0xdd, 0xff, 0xff, 0xff, 0xff, 0x01), { limits: roomy }))).toBe("truncated");
    expect(reasonOf(() => decodeMsgpackRecord(bytes(0xdf, 0x7f, 0xff, 0xff, 0xff, 0x01, 0x01), { limits: roomy }))).toBe("truncated");
  });

  it("too_deep: nesting past depthMax in either format, even in unknown fields", () => {
    let deep: unknown = 1;
    for (let i = 0; i < DEFAULT_DECODE_LIMITS.depthMax; i++) deep = [deep];
    expect(reasonOf(() => decodeM(msgpack({ ...good, extra: deep })))).toBe("too_deep");
    expect(reasonOf(() => decodeJ(json(JSON.stringify({ ...good, extra: deep }))))).toBe("too_deep");
    expect(reasonOf(() => decodeM(new Uint8Array(1000).fill(0x91)))).toBe("too_deep");
    expect(reasonOf(() => decodeJ(json("[".repeat(1000) + "]".repeat(1000))))).toBe("too_deep");
  });

  it("length_exceeded: long strings, long arrays, many entries, an id longer than a subject token", () => {
    const long = "x".repeat(DEFAULT_DECODE_LIMITS.stringBytesMax + 1);
    expect(reasonOf(() => decodeM(msgpack({ ...good, sensor_unit: long })))).toBe("length_exceeded");
    expect(reasonOf(() => decodeJ(json(JSON.stringify({ ...good, sensor_unit: long }))))).toBe("length_exceeded");
    expect(reasonOf(() => decodeJ(json(JSON.stringify({ ...good, note: "€".repeat(90) }))))).toBe("length_exceeded");
    expect(reasonOf(() => decodeM(msgpack({ ...good, list: new Array(65).fill(0) })))).toBe("length_exceeded");
    expect(reasonOf(() => decodeJ(json(JSON.stringify({ ...good, list: new Array(65).fill(0) }))))).toBe("length_exceeded");
    const wide = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`f${i}`, i]));
    expect(reasonOf(() => decodeM(msgpack({ ...good, ...wide })))).toBe("length_exceeded");
    expect(reasonOf(() => decodeJ(json(JSON.stringify({ ...good, ...wide }))))).toBe("length_exceeded");
    expect(reasonOf(() => decodeM(msgpack({ ...good, machine_id: "M".repeat(65) })))).toBe("length_exceeded");
  });

  it("not_a_record, missing_field, wrong_type, invalid_field", () => {
    expect(reasonOf(() => decodeM(msgpack([1, 2])))).toBe("not_a_record");
    expect(reasonOf(() => decodeM(msgpack(42)))).toBe("not_a_record");
    expect(reasonOf(() => decodeM(msgpack(new Uint8Array(3))))).toBe("not_a_record");
    expect(reasonOf(() => decodeJ(json("null")))).toBe("not_a_record");
    for (const field of ["machine_id", "sensor_type", "timestamp", "sensor_value"] as const) {
      const { [field]: _, ...rest } = good;
      const e1 = expectDecodeError(() => decodeM(msgpack(rest)));
      expect([e1.reason, e1.field]).toEqual(["missing_field", field]);
      expect(reasonOf(() => decodeJ(json(JSON.stringify({ ...good, [field]: null }))))).toBe("missing_field");
    }
    const wrong: Array<[string, unknown]> = [
      ["sensor_value", "1.5"],
      ["sensor_value", true],
      ["sensor_value", [1]],
      ["machine_id", 7],
      ["sensor_type", {}],
      ["timestamp", false],
      ["timestamp", [1]],
      ["sensor_unit", 3],
      ["operating_mode", true],
      ["work_order_id", 12],
    ];
    for (const [field, value] of wrong) {
      const e = expectDecodeError(() => decodeM(msgpack({ ...good, [field]: value })));
      expect([e.reason, e.field]).toEqual(["wrong_type", field]);
      expect(reasonOf(() => decodeJ(json(JSON.stringify({ ...good, [field]: value }))))).toBe("wrong_type");
    }
    for (const id of ["", "M 1", "M.1", "M*", "M>", "M\t1", "M\u00a01"]) {
      expect(reasonOf(() => decodeM(msgpack({ ...good, machine_id: id })))).toBe("invalid_field");
    }
  });

  it("not_finite: NaN and ±Inf values and times (MessagePack carries them; JSON as 1e999)", () => {
    for (const v of [NaN, Infinity, -Infinity]) {
      const e = expectDecodeError(() => decodeM(msgpack({ ...good, sensor_value: v })));
      expect([e.reason, e.field]).toEqual(["not_finite", "sensor_value"]);
      expect(reasonOf(() => decodeM(msgpack({ ...good, timestamp: v })))).toBe("not_finite");
    }
    expect(reasonOf(() => decodeJ(json('{"machine_id":"M-001","sensor_type":"t","timestamp":1,"sensor_value":1e999}')))).toBe("not_finite");
    expect(reasonOf(() => decodeJ(json('{"machine_id":"M-001","sensor_type":"t","timestamp":-1e999,"sensor_value":1}')))).toBe(
      "not_finite",
    );
  });

  it("bad_timestamp: neither epoch ms nor ISO-8601, or outside the Date range", () => {
    for (const t of ["yesterday", "2026-13-45T00:00:00Z", "01/02/2026", "", 1e17, -9e15]) {
      const e = expectDecodeError(() => decodeM(msgpack({ ...good, timestamp: t })));
      expect([e.reason, e.field], String(t)).toEqual(["bad_timestamp", "timestamp"]);
    }
  });

  it("subject_mismatch and bad_subject: the payload must agree with the sensor subject it arrived on", () => {
    const m = encodeMsgpackRecord(READING);
    const j = encodeJsonRecord(READING);
    expect(decodeM(m, "lw.plant1.sensor.M-001")).toEqual(READING);
    const e = expectDecodeError(() => decodeM(m, "lw.plant1.sensor.M-002.temperature"));
    expect([e.reason, e.field, e.subject]).toEqual(["subject_mismatch", "machine_id", "lw.plant1.sensor.M-002.temperature"]);
    expect(expectDecodeError(() => decodeJ(j, "lw.plant1.sensor.M-001.pressure")).field).toBe("sensor_type");
    expect(reasonOf(() => decodeJ(j, "lw.plant1.sensor.M-002"))).toBe("subject_mismatch");
    expect(decodeMsgpackRecord(m, { subject: { kind: "sensor", site: "plant1", machineId: "M-001" } })).toEqual(READING);
    expect(reasonOf(() => decodeM(m, "lw.plant1.process.L1"))).toBe("bad_subject");
    expect(reasonOf(() => decodeM(m, "other.plant1.sensor.M-001.temperature"))).toBe("bad_subject");
    expect(reasonOf(() => decodeM(m, "lw.plant1.sensor.*.temperature"))).toBe("bad_subject");
  });

  it("encoders refuse what the decoder would reject; MessagePack carries NaN for the consumer to dead-letter", () => {
    expect(() => encodeMsgpackRecord({ ...READING, machine_id: "M 1" })).toThrow(EncodeError);
    expect(() => encodeJsonRecord({ ...READING, timestamp: "soon" })).toThrow(EncodeError);
    expect(() => encodeJsonRecord({ ...READING, sensor_value: NaN })).toThrow(EncodeError);
    expect(() => encodeMsgpackRecord({ ...READING, sensor_unit: "x".repeat(300) })).toThrow(EncodeError);
    try {
      encodeJsonRecord({ ...READING, sensor_value: Infinity });
    } catch (e) {
      expect((e as EncodeError).reason).toBe("not_finite");
    }
    expect(reasonOf(() => decodeM(encodeMsgpackRecord({ ...READING, sensor_value: NaN })))).toBe("not_finite");
  });
});

function expectDecodeError(fn: () => unknown): DecodeError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(DecodeError);
    return e as DecodeError;
  }
  throw new Error("expected a DecodeError, nothing was thrown");
}

describe("codecs - subjects", () => {
  it("build and parse every kind; the key comes from the tokens", () => {
    expect(sensorSubject("plant1", "M-001", "temperature")).toBe(SUBJECT);
    expect(parseSubject(SUBJECT)).toEqual({ kind: "sensor", site: "plant1", machineId: "M-001", sensorType: "temperature" });
    expect(parseSubject(sensorSubject("plant1", "M-001"))).toEqual({ kind: "sensor", site: "plant1", machineId: "M-001" });
    expect(parseSubject(processSubject("plant1", "L1"))).toEqual({ kind: "process", site: "plant1", line: "L1" });
    expect(parseSubject(serialSubject("plant1", "L2"))).toEqual({ kind: "serial", site: "plant1", line: "L2" });
    expect(parseSubject(deadLetterSubject("plant1"))).toEqual({ kind: "deadletter", site: "plant1" });
    expect(sensorKey("M-001", "temperature")).toBe("M-001.temperature");
    expect(sensorSubject("größe", "Maschine-Ü", "°C-sensor")).toBe("lw.größe.sensor.Maschine-Ü.°C-sensor");
  });

  it("bad tokens are a SubjectError: '.', '*', '>', whitespace, control characters, empty, too long (UTF-8 bytes)", () => {
    for (const t of ["a.b", "*", ">", "a b", "a\tb", "a\nb", "a\u0000b", "a\u00a0b", "a\u2028b", "", "x".repeat(65), "€".repeat(22)]) {
      expect(() => sensorSubject("plant1", t, "temperature"), JSON.stringify(t)).toThrow(SubjectError);
      expect(() => processSubject(t, "L1")).toThrow(SubjectError);
    }
    expect(sensorSubject("plant1", "€".repeat(21), "t")).toContain("€");
  });

  it("parse refuses other roots, unknown kinds, wrong token counts, wildcards, too long subjects", () => {
    const bad = [
      "",
      "lw",
      "lw.plant1",
      "nats.plant1.sensor.M.t",
      "lw.plant1.score.M.t",
      "lw.plant1.sensor",
      "lw.plant1.sensor.M.t.x",
      "lw.plant1.process",
      "lw.plant1.process.L1.x",
      "lw.plant1.deadletter.x",
      "lw.plant1.sensor.*.t",
      "lw.>",
      "lw..sensor.M.t",
      `lw.plant1.sensor.${"m".repeat(60)}.${"s".repeat(60)}.${"x".repeat(60)}.${"y".repeat(60)}`,
    ];
    for (const s of bad) {
      let thrown: unknown;
      try {
        parseSubject(s);
      } catch (e) {
        thrown = e;
      }
      expect(thrown, s).toBeInstanceOf(SubjectError);
      expect((thrown as SubjectError).reason).toBe("bad_subject");
    }
  });
});

/** `bytes` copied into a fresh buffer at `offset`, so alignment can be chosen. */
function placed(frame: Uint8Array, offset: number): Uint8Array {
  const buffer = new ArrayBuffer(frame.length + offset + 8);
  const out = new Uint8Array(buffer, offset, frame.length);
  out.set(frame);
  return out;
}

function expectColumns(d: DecodedFrame, keys: string[], keyIndex: number[], times: number[], values: number[]): void {
  expect(d.keys).toEqual(keys);
  expect(Array.from(d.keyIndex)).toEqual(keyIndex);
  expect(Array.from(d.times)).toEqual(times);
  expect(Array.from(d.values)).toEqual(values);
  expect(d.length).toBe(values.length);
}

describe("codecs - frames round-trip", () => {
  const rng = new SeededRandom(20260101);
  const keys = Array.from({ length: 40 }, (_, i) =>
    sensorKey(`M-${String(1 + (i >> 2)).padStart(3, "0")}`, ["temperature", "vibration", "pressure", "humidity"][i & 3]),
  );
  const n = 1001;
  const keyIndex = Array.from({ length: n }, () => rng.int(0, keys.length - 1));
  const intTimes = Array.from({ length: n }, (_, i) => Date.UTC(2026, 0, 1) + i * 7 - 3_000_000_000_000 * (i % 2));
  const floatTimes = intTimes.map((t, i) => t + (i % 3) * 0.25);
  const values = Array.from({ length: n }, () => rng.normal() * 1e3);

  it("many keys with int64 times (u16 indices), aligned — values are views of the message, no copy", () => {
    const frame = encodeFrame({ keys, keyIndex, times: intTimes, values });
    expect(frame[5]).toBe(0);
    expect(frame.length).toBe(
      frameByteLength(
        n,
        keys.reduce((s, k) => s + 2 + k.length, 0),
        2,
      ),
    );
    const d = decodeFrame(placed(frame, 8));
    expectColumns(d, keys, keyIndex, intTimes, values);
    expect(d.zeroCopy).toBe(true);
    expect(d.rejected).toEqual([]);
    expect(d.declared).toBe(n);
  });

  it("at every misalignment, every column layout gives the same readings (copied instead of viewed)", () => {
    const variants: Array<[string, Uint8Array, number[], number]> = [
      [
        "float64 times, u32 indices",
        encodeFrame({ keys, keyIndex, times: floatTimes, values }, { keyIndex: "u32" }),
        floatTimes,
        FRAME_FLAG_TIME_F64 | FRAME_FLAG_INDEX_U32,
      ],
      ["int64 times, u16 indices", encodeFrame({ keys, keyIndex, times: intTimes, values }), intTimes, 0],
      ["float64 times, u16 indices", encodeFrame({ keys, keyIndex, times: floatTimes, values }), floatTimes, FRAME_FLAG_TIME_F64],
    ];
    for (const [name, frame, times, flags] of variants) {
      expect(frame[5], name).toBe(flags);
      for (let offset = 0; offset < 8; offset++) {
        const d = decodeFrame(placed(frame, offset));
        expectColumns(d, keys, keyIndex, times, values);
        expect(d.zeroCopy, `${name} at offset ${offset}`).toBe(offset === 0);
      }
    }
  });

  it("one key: no key-index column; int64 and float64 times; from reading objects; empty frames", () => {
    const key = sensorKey("M-001", "temperature");
    const one = encodeFrame({ keys: [key], times: intTimes, values });
    expect(one[5]).toBe(FRAME_FLAG_ONE_KEY);
    expectColumns(decodeFrame(placed(one, 3)), [key], new Array(n).fill(0), intTimes, values);
    const oneF = encodeFrame({ keys: [key], times: floatTimes, values }, { times: "float64" });
    expectColumns(decodeFrame(oneF), [key], new Array(n).fill(0), floatTimes, values);
    const objects = encodeFrame([
      { key: "M-1.a", time: 1, value: 10 },
      { key: "M-2.b", time: 2, value: 20 },
      { key: "M-1.a", time: 3, value: 30 },
    ]);
    expectColumns(decodeFrame(objects), ["M-1.a", "M-2.b"], [0, 1, 0], [1, 2, 3], [10, 20, 30]);
    const empty = encodeFrame({ keys: [], times: [], values: [] });
    expect(empty.length).toBe(FRAME_HEADER_BYTES);
    expectColumns(decodeFrame(empty), [], [], [], []);
  });

  it("encodes a simulator chunk from its columns, a subject check passes for one machine's frame", () => {
    const sim = new PlantSimulator({ seed: 3, machines: 2 });
    const c = sim.nextColumns(500);
    const simKeys = sim.keys().map((k) => sensorKey(k.machine_id, k.sensor_type));
    const d = decodeFrame(encodeFrame({ keys: simKeys, keyIndex: c.keyIndex, times: c.times, values: c.values, length: c.length }));
    expectColumns(
      d,
      simKeys,
      Array.from(c.keyIndex.subarray(0, c.length)),
      Array.from(c.times.subarray(0, c.length)),
      Array.from(c.values.subarray(0, c.length)),
    );
    const m1 = encodeFrame([
      { key: "M-001.temperature", time: 1, value: 1 },
      { key: "M-001.pressure", time: 2, value: 2 },
    ]);
    expect(decodeFrame(m1, { subject: { kind: "sensor", site: "p", machineId: "M-001" } }).length).toBe(2);
  });

  it("version 2 (time offsets) whenever the times allow: 13 bytes a reading with u8 indices, equal readings at every misalignment", () => {
    const near = intTimes.map((_, i) => Date.UTC(2026, 0, 1) + i * 7 + (i % 5));
    const keyTableBytes = keys.reduce((s, k) => s + 2 + k.length, 0);
    const frame = encodeFrame({ keys, keyIndex, times: near, values });
    expect([frame[4], frame[5]]).toEqual([2, FRAME_FLAG_INDEX_U8]);
    expect(frame.length).toBe(frameByteLength(n, keyTableBytes, 1, 2));
    expect(frame.length - frameByteLength(0, keyTableBytes, 1, 2)).toBe(13 * n + 4); // + 4: the values' alignment after 1001 offsets
    for (let offset = 0; offset < 8; offset++) {
      const d = decodeFrame(placed(frame, offset));
      expectColumns(d, keys, keyIndex, near, values);
      expect(d.zeroCopy).toBe(offset === 0);
    }
    // u16 and u32 indices, and one key, in version 2 too; a time base below zero.
    const early = near.map((t) => t - 2 * Date.UTC(2026, 0, 1));
    for (const [width, flags] of [
      ["u16", 0],
      ["u32", FRAME_FLAG_INDEX_U32],
    ] as const) {
      const f = encodeFrame({ keys, keyIndex, times: early, values }, { keyIndex: width });
      expect([f[4], f[5]]).toEqual([2, flags]);
      expectColumns(decodeFrame(placed(f, 3)), keys, keyIndex, early, values);
    }
    const one = encodeFrame({ keys: [keys[0]], times: near, values });
    expect([one[4], one[5]]).toEqual([2, FRAME_FLAG_ONE_KEY]);
    expectColumns(decodeFrame(placed(one, 5)), [keys[0]], new Array(n).fill(0), near, values);
    // 300 keys: u16 indices.
    const many = Array.from({ length: 300 }, (_, i) => sensorKey(`M-${i}`, "t"));
    const wide = encodeFrame({ keys: many, keyIndex: [299, 0], times: [5, 6], values: [1, 2] });
    expect([wide[4], wide[5]]).toEqual([2, 0]);
    expect(Array.from(decodeFrame(wide).keyIndex)).toEqual([299, 0]);
  });

  it("version 1 where version 2 cannot hold the times, or when asked; the encoder refuses what version 2 cannot say", () => {
    const span = [0, FRAME_TIME_OFFSET_MAX + 1];
    expect(encodeFrame({ keys: ["M-1.t"], times: span, values: [1, 2] })[4]).toBe(1);
    expect(encodeFrame({ keys: ["M-1.t"], times: [0, FRAME_TIME_OFFSET_MAX], values: [1, 2] })[4]).toBe(2);
    expect(encodeFrame({ keys: ["M-1.t"], times: [1, 2], values: [1, 2] }, { times: "int64" })[4]).toBe(1);
    expect(encodeFrame({ keys: ["M-1.t"], times: [1.5, 2], values: [1, 2] })[5]).toBe(FRAME_FLAG_TIME_F64 | FRAME_FLAG_ONE_KEY);
    expect(() => encodeFrame({ keys: ["M-1.t"], times: span, values: [1, 2] }, { times: "offsets" })).toThrow(EncodeError);
    expect(() => encodeFrame({ keys: ["M-1.t"], times: [1.5], values: [1] }, { times: "offsets" })).toThrow(EncodeError);
    expect(() => encodeFrame({ keys: ["M-1.t"], times: [1], values: [1] }, { times: "int64", keyIndex: "u8" })).toThrow(EncodeError);
    const many = Array.from({ length: 257 }, (_, i) => sensorKey(`M-${i}`, "t"));
    expect(() => encodeFrame({ keys: many, keyIndex: [256], times: [1], values: [1] }, { keyIndex: "u8" })).toThrow(EncodeError);
  });
});

/** A valid 3-reading, 2-key frame (version 1: int64 times, u16 indices) to corrupt. */
function sampleFrame(): Uint8Array {
  return encodeFrame({ keys: ["M-1.temp", "M-2.temp"], keyIndex: [0, 1, 0], times: [10, 20, 30], values: [1, 2, 3] }, { times: "int64" });
}

/** The same readings as a version 2 frame (time offsets, u8 indices). */
function sampleFrameV2(): Uint8Array {
  return encodeFrame({ keys: ["M-1.temp", "M-2.temp"], keyIndex: [0, 1, 0], times: [10, 20, 30], values: [1, 2, 3] });
}

describe("codecs - bad frames are rejected with their reason", () => {
  const columnsAt = (f: Uint8Array) => Math.ceil((FRAME_HEADER_BYTES + new DataView(f.buffer, f.byteOffset).getUint32(16, true)) / 8) * 8;
  const patch = (f: Uint8Array, at: number, ...b: number[]) => {
    const c = f.slice();
    c.set(b, at);
    return c;
  };
  const u32 = (f: Uint8Array, at: number, v: number) => {
    const c = f.slice();
    new DataView(c.buffer).setUint32(at, v, true);
    return c;
  };

  it("truncated at every length; trailing bytes; too large before the header is read", () => {
    const f = sampleFrame();
    for (let n = 0; n < f.length; n++)
      expect(
        reasonOf(() => decodeFrame(f.subarray(0, n))),
        `${n} bytes`,
      ).toBe("truncated");
    expect(reasonOf(() => decodeFrame(Uint8Array.from([...f, 0])))).toBe("trailing_bytes");
    expect(reasonOf(() => decodeFrame(new Uint8Array(DEFAULT_DECODE_LIMITS.frameBytesMax + 1)))).toBe("too_large");
  });

  it("garbage, versions and flags, reserved fields, counts over the limits", () => {
    const f = sampleFrame();
    const rng = new SeededRandom(9);
    const garbage = Uint8Array.from({ length: 200 }, () => rng.int(0, 255));
    expect(reasonOf(() => decodeFrame(garbage))).toBe("malformed");
    expect(reasonOf(() => decodeFrame(encodeMsgpackRecord(READING)))).toBe("malformed");
    expect(reasonOf(() => decodeFrame(patch(f, 4, 3)))).toBe("unsupported_version");
    expect(reasonOf(() => decodeFrame(patch(f, 5, FRAME_FLAG_INDEX_U8)))).toBe("unsupported_version"); // u8 indices: version 2 only
    expect(reasonOf(() => decodeFrame(patch(f, 5, 0x10)))).toBe("unsupported_version");
    expect(reasonOf(() => decodeFrame(patch(f, 6, 1)))).toBe("malformed");
    expect(reasonOf(() => decodeFrame(patch(f, 20, 1)))).toBe("malformed");
    expect(reasonOf(() => decodeFrame(patch(f, 5, FRAME_FLAG_ONE_KEY)))).toBe("malformed");
    const small = validateDecodeLimits({ frameReadingsMax: 2, frameKeysMax: 1, frameKeyBytesMax: 5 });
    expect(expectDecodeError(() => decodeFrame(f, { limits: small })).limit).toBe("frameReadingsMax");
    expect(reasonOf(() => decodeFrame(u32(f, 8, 0xffff_ffff)))).toBe("length_exceeded");
    expect(reasonOf(() => decodeFrame(u32(f, 12, 0xffff_ffff)))).toBe("length_exceeded");
    expect(expectDecodeError(() => decodeFrame(f, { limits: validateDecodeLimits({ frameKeysMax: 1 }) })).limit).toBe("frameKeysMax");
    expect(expectDecodeError(() => decodeFrame(f, { limits: validateDecodeLimits({ frameKeyBytesMax: 5 }) })).limit).toBe(
      "frameKeyBytesMax",
    );
  });

  it("version 2 faults: truncated at every length, reserved bits, clashing flags, padding after the offsets, an index past the keys", () => {
    const f = sampleFrameV2();
    expect([f[4], f[5]]).toEqual([2, FRAME_FLAG_INDEX_U8]);
    for (let n = 0; n < f.length; n++)
      expect(
        reasonOf(() => decodeFrame(f.subarray(0, n))),
        `${n} bytes`,
      ).toBe("truncated");
    expect(reasonOf(() => decodeFrame(patch(f, 5, FRAME_FLAG_INDEX_U8 | FRAME_FLAG_TIME_F64)))).toBe("unsupported_version");
    expect(reasonOf(() => decodeFrame(patch(f, 5, FRAME_FLAG_INDEX_U8 | 0x10)))).toBe("unsupported_version");
    expect(reasonOf(() => decodeFrame(patch(f, 5, FRAME_FLAG_INDEX_U8 | FRAME_FLAG_INDEX_U32)))).toBe("malformed");
    expect(reasonOf(() => decodeFrame(patch(f, 5, FRAME_FLAG_INDEX_U8 | FRAME_FLAG_ONE_KEY)))).toBe("malformed");
    const offsetsEnd = columnsAt(f) + 8 + 4 * 3;
    expect(expectDecodeError(() => decodeFrame(patch(f, offsetsEnd, 1))).field).toBe("padding");
    const idx = Math.ceil(offsetsEnd / 8) * 8 + 8 * 3;
    expect(expectDecodeError(() => decodeFrame(patch(f, idx + 1, 2))).field).toBe("keyIndex");
    // A time base past the range: each reading's time is, and only those readings go.
    const late = encodeFrame({ keys: ["M-1.t"], times: [TIME_ABS_MAX_MS - 1, TIME_ABS_MAX_MS, TIME_ABS_MAX_MS + 1], values: [1, 2, 3] });
    expect(decodeFrame(late).rejected).toEqual([{ index: 2, reason: "bad_timestamp", field: "time" }]);
  });

  it("a frame declaring 2^32-1 readings within raised limits is truncated, not allocated", () => {
    const roomy = validateDecodeLimits({ frameReadingsMax: 0xffff_ffff });
    expect(reasonOf(() => decodeFrame(u32(sampleFrame(), 8, 0xffff_ffff), { limits: roomy }))).toBe("truncated");
  });

  it("key table faults: lengths past the table, invalid UTF-8, duplicates, bad key shape, non-zero padding, index out of range", () => {
    const f = sampleFrame();
    expect(reasonOf(() => decodeFrame(patch(f, FRAME_HEADER_BYTES, 60, 0)))).toBe("malformed");
    expect(reasonOf(() => decodeFrame(patch(f, FRAME_HEADER_BYTES + 2, 0xff)))).toBe("malformed");
    expect(reasonOf(() => decodeFrame(patch(f, FRAME_HEADER_BYTES + 2 + 8 + 2 + 2, "1".charCodeAt(0))))).toBe("malformed"); // M-2 → M-1: duplicate
    expect(reasonOf(() => decodeFrame(patch(f, FRAME_HEADER_BYTES + 2 + 3, "_".charCodeAt(0))))).toBe("invalid_field"); // no dot
    expect(reasonOf(() => decodeFrame(patch(f, FRAME_HEADER_BYTES + 2 + 4, " ".charCodeAt(0))))).toBe("invalid_field");
    expect(reasonOf(() => decodeFrame(patch(f, columnsAt(f) - 1, 7)))).toBe("malformed");
    const idx = columnsAt(f) + 16 * 3;
    expect(expectDecodeError(() => decodeFrame(patch(f, idx + 2, 2, 0))).field).toBe("keyIndex");
    expect(() => encodeFrame({ keys: ["M-1.t"], keyIndex: [1], times: [1], values: [1] }, { keyIndex: "u16" })).toThrow(EncodeError);
    expect(() => encodeFrame({ keys: ["M-1"], times: [1], values: [1] })).toThrow(EncodeError);
    expect(() => encodeFrame({ keys: ["M-1.t", "M-1.t"], keyIndex: [0], times: [1], values: [1] })).toThrow(EncodeError);
  });

  it("subject_mismatch: every key must be of the subject's machine (and sensor), also when the key table is a cached one", () => {
    const f = sampleFrame();
    expect(decodeFrame(f).keys).toEqual(["M-1.temp", "M-2.temp"]);
    expect(decodeFrame(f.slice()).keys).toEqual(["M-1.temp", "M-2.temp"]);
    expect(reasonOf(() => decodeFrame(f, { subject: parseSubject("lw.p.sensor.M-1") as never }))).toBe("subject_mismatch");
    const one = encodeFrame({ keys: ["M-1.temp"], times: [1], values: [1] });
    expect(decodeFrame(one, { subject: parseSubject("lw.p.sensor.M-1.temp") as never }).length).toBe(1);
    expect(reasonOf(() => decodeFrame(one, { subject: parseSubject("lw.p.sensor.M-1.pressure") as never }))).toBe("subject_mismatch");
  });

  it("NaN/±Inf values and bad times reject only their readings, listed and counted; the rest is decoded", () => {
    const times = [1, 2, NaN, 4, 1e17, 6, -Infinity, 8];
    const values = [1, NaN, 3, Infinity, 5, -Infinity, 7, 8];
    const f = encodeFrame({ keys: ["M-1.t", "M-2.t"], keyIndex: [0, 1, 0, 1, 0, 1, 0, 1], times, values }, { times: "float64" });
    const d = decodeFrame(placed(f, 0));
    expectColumns(d, ["M-1.t", "M-2.t"], [0, 1], [1, 8], [1, 8]);
    expect(d.rejected).toEqual([
      { index: 1, reason: "not_finite", field: "value" },
      { index: 2, reason: "not_finite", field: "time" },
      { index: 3, reason: "not_finite", field: "value" },
      { index: 4, reason: "bad_timestamp", field: "time" },
      { index: 5, reason: "not_finite", field: "value" },
      { index: 6, reason: "not_finite", field: "time" },
    ]);
    expect(d.length + d.rejected.length).toBe(d.declared);
    expect(d.zeroCopy).toBe(false);
    // int64 times past ±8.64e15 ms (but exact integers) are bad_timestamp readings.
    const i64 = decodeFrame(encodeFrame({ keys: ["M-1.t"], times: [9e15, 1, -9e15], values: [1, 2, 3] }));
    expect(i64.rejected.map((r) => [r.index, r.reason])).toEqual([
      [0, "bad_timestamp"],
      [2, "bad_timestamp"],
    ]);
    expect(Array.from(i64.values)).toEqual([2]);
    expect(() => encodeFrame({ keys: ["M-1.t"], times: [1.5], values: [1] }, { times: "int64" })).toThrow(EncodeError);
  });

  it("seeded fuzz: flipped, cut and spliced bytes give a valid result or a DecodeError, never anything else", () => {
    const rng = new SeededRandom(424242);
    const samples = [
      sampleFrame(),
      encodeFrame({ keys: ["M-1.t"], times: [1.5, 2], values: [1, 2] }),
      encodeMsgpackRecord(READING),
      encodeJsonRecord(READING),
    ];
    let rejected = 0;
    for (let round = 0; round < 3000; round++) {
      const base = samples[round % samples.length];
      const b = base.slice(0, rng.int(1, base.length));
      for (let k = rng.int(1, 4); k > 0; k--) b[rng.int(0, b.length - 1)] = rng.int(0, 255);
      for (const decode of [() => decodeFrame(b), () => decodeMsgpackRecord(b), () => decodeJsonRecord(b)]) {
        try {
          const out = decode();
          if ("declared" in out) expect(out.length + out.rejected.length).toBe(out.declared);
          else expect(Number.isFinite(out.sensor_value) && Number.isFinite(out.timestamp)).toBe(true);
        } catch (e) {
          if (!(e instanceof DecodeError)) throw e;
          rejected++;
        }
      }
    }
    expect(rejected).toBeGreaterThan(0);
  });
});

describe("codecs - limits", () => {
  it("defaults validate; each bad value or relation names its option", () => {
    expect(validateDecodeLimits()).toEqual(DEFAULT_DECODE_LIMITS);
    const bad: Array<[string, Record<string, unknown>]> = [
      ["recordBytesMax", { recordBytesMax: 0 }],
      ["depthMax", { depthMax: 0 }],
      ["frameKeyBytesMax", { frameKeyBytesMax: 70_000 }],
      ["mapEntriesMax", { mapEntriesMax: 2 }],
      ["stringBytesMax", { stringBytesMax: 1.5 }],
      ["tokenBytesMax", { tokenBytesMax: 300 }],
      ["stringBytesMax", { stringBytesMax: 5000 }],
      ["bogus", { bogus: 1 }],
    ];
    for (const [option, limits] of bad) {
      let thrown: unknown;
      try {
        validateDecodeLimits(limits);
      } catch (e) {
        thrown = e;
      }
      expect(thrown, option).toBeInstanceOf(ConfigError);
      expect((thrown as ConfigError).option).toBe(option);
    }
  });
});

describe("codecs - benchmark smoke", () => {
  it("runs every variant small and the checksums agree", async () => {
    const report = await runCodecBench({ smoke: true });
    expect(report.checksumsAgree).toBe(true);
    expect(report.rows.length).toBeGreaterThanOrEqual(4);
  });
});

describe("codecs - frames decoded into a consumer's columns", () => {
  /** The outcome of a decode as comparable data: the error's reason and text, or the readings bit for bit. */
  function outcome(
    fn: () => {
      keys: readonly string[];
      keyIndex: ArrayLike<number>;
      times: Float64Array;
      values: Float64Array;
      length: number;
      declared: number;
      rejected: unknown[];
    },
  ): unknown {
    try {
      const d = fn();
      const bits = (a: Float64Array) => Array.from(new Uint32Array(a.slice(0, d.length).buffer));
      return {
        keys: d.keys,
        keyIndex: Array.from(d.keyIndex).slice(0, d.length),
        times: bits(d.times),
        values: bits(d.values),
        length: d.length,
        declared: d.declared,
        rejected: d.rejected,
      };
    } catch (e) {
      expect(e).toBeInstanceOf(DecodeError);
      return { reason: (e as DecodeError).reason, message: (e as Error).message };
    }
  }

  /**
   * A random frame: 1–5 keys, 0–300 readings, each layout (version 1's float64 and int64 times,
   * version 2's offsets; every key-index width), some NaN/±Inf values and out-of-range or
   * non-finite times (version 2: a time base near the end of the range, so later readings pass it).
   */
  function randomFrame(rng: SeededRandom): Uint8Array {
    const keys = Array.from({ length: rng.int(1, 5) }, (_, i) => sensorKey(`M-${i}`, "temperature"));
    const n = rng.int(0, 300);
    const mode = (["float64", "int64", "offsets"] as const)[rng.below(3)];
    const f64 = mode === "float64";
    const bad = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
    const nearEnd = mode === "offsets" && rng.below(4) === 0;
    const times = Array.from({ length: n }, (_, i) => {
      if (mode === "offsets") return nearEnd ? TIME_ABS_MAX_MS - 2000 + i * 10 : Date.UTC(2026, 0, 1) + i * 10 + rng.below(2) * 4e9;
      if (rng.below(30) === 0) return f64 ? bad[rng.below(3)] : 9e15;
      return Date.UTC(2026, 0, 1) + i * 10 - (rng.below(4) === 0 ? 3e12 : 0) + (f64 ? rng.below(4) * 0.25 : 0);
    });
    const values = Array.from({ length: n }, () => (rng.below(25) === 0 ? bad[rng.below(3)] : rng.normal() * 100));
    const keyIndex = Array.from({ length: n }, () => rng.below(keys.length));
    const widths = mode === "offsets" ? (["u8", "u16", "u32"] as const) : (["u16", "u32"] as const);
    const layout = keys.length === 1 && rng.below(2) === 0 ? {} : { keyIndex: widths[rng.below(widths.length)] };
    return encodeFrame({ keys, keyIndex, times, values }, { ...layout, times: mode });
  }

  /** An adversarial copy: a few bytes anywhere set at random, or cut short, or a byte too many. */
  function mangled(rng: SeededRandom, frame: Uint8Array): Uint8Array {
    const kind = rng.below(4);
    if (kind === 0) return frame;
    if (kind === 1) return frame.subarray(0, rng.below(frame.length + 1));
    if (kind === 2) return Uint8Array.from([...frame, rng.below(256)]);
    const out = frame.slice();
    for (let k = rng.int(1, 3); k > 0; k--) out[rng.below(Math.min(out.length, rng.below(2) === 0 ? 64 : out.length))] = rng.below(256);
    return out;
  }

  it("equal readings, rejections and errors to decodeFrame on random and adversarial frames, at every alignment and target offset", () => {
    const rng = new SeededRandom(1307);
    let decoded = 0;
    let rejectedSome = 0;
    for (let trial = 0; trial < 1500; trial++) {
      const frame = placed(mangled(rng, randomFrame(rng)), rng.below(8));
      const at = rng.below(50);
      const room = at + 310;
      const target = {
        keyIndex: new Uint32Array(room).fill(7),
        times: new Float64Array(room).fill(-1),
        values: new Float64Array(room).fill(-2),
        at,
      };
      const into = outcome(() => {
        const d = decodeFrameInto(frame, target);
        const end = at + d.declared;
        // Nothing written outside the declared region.
        expect(target.keyIndex.subarray(0, at).every((x) => x === 7) && target.keyIndex.subarray(end).every((x) => x === 7)).toBe(true);
        expect(target.times.subarray(0, at).every((x) => x === -1) && target.values.subarray(end).every((x) => x === -2)).toBe(true);
        return { ...d, keyIndex: target.keyIndex.subarray(at), times: target.times.slice(at), values: target.values.slice(at) };
      });
      expect(into, `trial ${trial}`).toEqual(outcome(() => decodeFrame(frame)));
      if ((into as { length?: number }).length !== undefined) decoded++;
      if (((into as { rejected?: unknown[] }).rejected?.length ?? 0) > 0) rejectedSome++;
    }
    // The trials reach both sides: frames decoded (some with rejected readings) and frames refused.
    expect(decoded).toBeGreaterThan(300);
    expect(rejectedSome).toBeGreaterThan(100);
    expect(decoded).toBeLessThan(1400);
  });

  it("a target without room for the declared readings is a RangeError, not a partial write", () => {
    const frame = encodeFrame({ keys: ["M-1.a"], times: [1, 2, 3], values: [1, 2, 3] });
    const target = { keyIndex: new Uint32Array(4), times: new Float64Array(4), values: new Float64Array(4), at: 2 };
    expect(() => decodeFrameInto(frame, target)).toThrow(RangeError);
    expect(Array.from(target.values)).toEqual([0, 0, 0, 0]);
  });
});
