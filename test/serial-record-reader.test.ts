/**
 * The schema-specialised serial reader (connectors/wire/serial-record-reader.ts) against its oracle,
 * the generic decoder (decodeSerialRecord): on every message, the reader's `true` must mean that
 * the generic decoder accepts it with the same times (bit for bit) and text, and the same
 * batch-close verdict; its `false` leaves the message to the generic decoder, whose result or
 * rejection reason is then what counts. Random records in every encoding and field order,
 * truncations, byte mutations, and the cases the reader must leave alone.
 */
import { encode as encodeMsgpack } from "@msgpack/msgpack";
import { describe, expect, it } from "vitest";
import { DecodeError } from "../connectors/errors.js";
import { DEFAULT_DECODE_LIMITS, type DecodeLimits, validateDecodeLimits } from "../connectors/wire/decode-limits.js";
import { decodeSerialRecord, encodeSerialRecord, type SerialRecord } from "../connectors/wire/serial-codec.js";
import { SerialRecordReader, SerialRecordView } from "../connectors/wire/serial-record-reader.js";
import { parseSubject } from "../connectors/wire/subjects.js";
import { SerialSimulator } from "../connectors/sim/serial-simulator.js";
import { SeededRandom } from "../engine/core/mod.js";
import { BATCH_CLOSE_EVENT_TYPES } from "../operators/serial/serial.js";
import { type Bytes, cat, ext, f64, hex, numberBytes, pick, record, shuffle, str, timeBytes } from "./kit/msgpack-writer.js";

type Verdict = "fast" | "generic" | "rejected";
type Tally = Record<Verdict, number>;
const newTally = (): Tally => ({ fast: 0, generic: 0, rejected: 0 });

const view = new SerialRecordView();
const readers = new Map<Readonly<DecodeLimits>, SerialRecordReader>();
const ASCII = new TextDecoder("latin1");

function readerFor(limits: Readonly<DecodeLimits>): SerialRecordReader {
  let r = readers.get(limits);
  if (r === undefined) readers.set(limits, (r = new SerialRecordReader(limits)));
  return r;
}

const text = (bytes: Uint8Array, start: number, length: number): string => ASCII.decode(bytes.subarray(start, start + length));

/** Runs the reader and the generic decoder on one message; throws unless the reader's `true` implies the same event. */
function judge(bytes: Uint8Array, subject: string, limits: Readonly<DecodeLimits> = DEFAULT_DECODE_LIMITS, tally?: Tally): Verdict {
  const parsed = parseSubject(subject, limits);
  const line = parsed.kind === "serial" ? parsed.line : "";
  const fast = readerFor(limits).read(bytes, line, view);
  let event: SerialRecord | undefined;
  try {
    event = decodeSerialRecord(bytes, { limits, subject });
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    if (fast) throw new Error(`reader accepted what the generic decoder rejects (${e.reason}: ${e.message}): ${hex(bytes)}`);
  }
  const verdict: Verdict = fast ? "fast" : event === undefined ? "rejected" : "generic";
  if (tally !== undefined) tally[verdict]++;
  if (!fast || event === undefined) return verdict;
  const same = (what: string, a: unknown, b: unknown) => {
    if (!Object.is(a, b)) throw new Error(`${what}: reader ${String(a)}, generic ${String(b)}: ${hex(bytes)}`);
  };
  same("production_timestamp", view.production, event.production_timestamp);
  same("received_timestamp", view.received, event.received_timestamp ?? Number.NaN);
  same("serial_number", text(bytes, view.serialStart, view.serialLength), event.serial_number);
  same("gtin", text(bytes, view.gtinStart, view.gtinLength), event.gtin);
  same("batch_number", text(bytes, view.batchStart, view.batchLength), event.batch_number);
  same("machine_id", text(bytes, view.machineStart, view.machineLength), event.machine_id);
  same("operator_id", view.operatorStart < 0 ? "" : text(bytes, view.operatorStart, view.operatorLength), event.operator_id);
  same("batch close", view.batchClose, event.event_type !== undefined && BATCH_CLOSE_EVENT_TYPES.includes(event.event_type));
  return verdict;
}

const TEXT_POOL = ["", "A", "0Q8J1X2ZP4KD", "09506000134352", "B001-00001", "OP-001-A", "x".repeat(40), "é", "Ω-1", "a\u0000b", "😀"];
const EVENT_TYPES = ["serial", "batch_close", "batch_closed", "batch_closed ", "BATCH_CLOSE", "", "clôture"];

/** A serial record of the schema's fields, each in a random encoding, in random order, optionals left out or nil. */
function randomRecord(rng: SeededRandom, machine: string): Uint8Array {
  const textValue = (): Bytes =>
    rng.below(12) === 0 ? pick(rng, [[0xc0], [0x05], f64(1)]) : str(pick(rng, TEXT_POOL), pick(rng, ["fix", 8, 16] as const));
  const entries: Array<[Bytes, Bytes]> = [
    [str("serial_number"), textValue()],
    [str("gtin"), textValue()],
    [str("batch_number"), textValue()],
    [str("production_timestamp"), timeBytes(rng)],
    [str("machine_id"), str(rng.below(15) === 0 ? `${machine}x` : machine, pick(rng, ["fix", 8] as const))],
  ];
  const optional: Array<[string, () => Bytes]> = [
    ["operator_id", textValue],
    ["received_timestamp", () => timeBytes(rng)],
    ["event_type", () => (rng.below(8) === 0 ? [0xc0] : str(pick(rng, EVENT_TYPES)))],
  ];
  for (const [name, value] of optional) if (rng.below(3) !== 0) entries.push([str(name, rng.below(6) === 0 ? 8 : "fix"), value()]);
  if (rng.below(10) === 0) entries.splice(rng.below(entries.length), 1);
  return record(shuffle(rng, entries), pick(rng, ["fix", "fix", 16, 32] as const));
}

const SUBJECT = "lw.plant1.serial.M-001";
const BASE = {
  serial_number: "0Q8J1X2ZP4KD",
  gtin: "09506000134352",
  batch_number: "B001-00001",
  production_timestamp: 1767225600123,
  machine_id: "M-001",
  operator_id: "OP-001-A",
  received_timestamp: 1767225600150,
  event_type: "serial",
};

describe("SerialRecordReader", () => {
  it("serial - takes the fast path for every event the simulator and encodeSerialRecord write", () => {
    const tally = newTally();
    const sim = new SerialSimulator({ seed: 7, lines: 5, attackEvery: 300, batchSerials: 400 });
    for (let i = 0; i < 20_000; i++) {
      const e = sim.next();
      const subject = `lw.plant1.serial.${e.machine_id}`;
      judge(encodeSerialRecord(e), subject, undefined, tally);
      // Times as ISO-8601 text, operator and received time left out.
      const { operator_id: _o, received_timestamp: _r, attack: _a, ...rest } = e;
      judge(
        encodeSerialRecord({ ...rest, production_timestamp: new Date(e.production_timestamp).toISOString() }),
        subject,
        undefined,
        tally,
      );
      // The MessagePack timestamp extension (a Date).
      judge(encodeMsgpack({ ...rest, production_timestamp: new Date(e.production_timestamp) }), subject, undefined, tally);
    }
    expect(tally).toEqual({ fast: 60_000, generic: 0, rejected: 0 });
  });

  it("serial - agrees with the generic decoder on random records: every field encoding, order, map format", () => {
    const tally = newTally();
    const rng = new SeededRandom(21);
    for (let i = 0; i < 40_000; i++) {
      const machine = pick(rng, ["M-001", "L7", "Linie-ü", "x".repeat(30)]);
      judge(randomRecord(rng, machine), `lw.s.serial.${machine}`, undefined, tally);
    }
    expect(tally.fast).toBeGreaterThan(2000);
    expect(tally.generic).toBeGreaterThan(2000);
    expect(tally.rejected).toBeGreaterThan(2000);
  });

  it("serial - reads every integer width, floats, -0 and the timestamp extension bit for bit", () => {
    const rng = new SeededRandom(22);
    const base = Object.entries(BASE).filter(([k]) => k !== "production_timestamp" && k !== "received_timestamp");
    for (const t of [0, -0, 1.5, -1.5, 1767225600123, 8.64e15, -8.64e15, 2 ** 32 - 1, 2 ** 32, -(2 ** 31) - 1, Math.fround(0.1)]) {
      for (let k = 0; k < 12; k++) {
        const entries: Array<[Bytes, Bytes]> = base.map(([n, v]) => [str(n), str(v as string)]);
        entries.push([str("production_timestamp"), numberBytes(rng, t)], [str("received_timestamp"), numberBytes(rng, t)]);
        expect(judge(record(shuffle(rng, entries)), SUBJECT)).toBe("fast");
      }
    }
    for (let k = 0; k < 2000; k++) {
      const entries: Array<[Bytes, Bytes]> = base.map(([n, v]) => [str(n), str(v as string)]);
      entries.push([str("production_timestamp"), timeBytes(rng)]);
      judge(record(entries), SUBJECT);
    }
  });

  it("serial - leaves to the generic decoder: non-ASCII text, unknown and repeated fields, JSON; rejects what it rejects", () => {
    const bytes = (o: Record<string, unknown>) => encodeMsgpack(o);
    expect(judge(bytes(BASE), SUBJECT)).toBe("fast");
    expect(judge(bytes({ ...BASE, serial_number: "0Q8J1X2ZP4KÉ" }), SUBJECT)).toBe("generic");
    expect(judge(bytes({ ...BASE, operator_id: "Jürgen" }), SUBJECT)).toBe("generic");
    expect(judge(bytes({ ...BASE, event_type: "clôture" }), SUBJECT)).toBe("generic");
    expect(judge(bytes({ ...BASE, note: "x" }), SUBJECT)).toBe("generic");
    expect(judge(new TextEncoder().encode(JSON.stringify(BASE)), SUBJECT)).toBe("generic");
    const head: Array<[Bytes, Bytes]> = Object.entries(BASE).map(([k, v]) => [str(k), typeof v === "string" ? str(v) : f64(v)]);
    expect(judge(record([...head, [str("serial_number"), str("OTHER")]]), SUBJECT)).toBe("generic");
    expect(judge(record([...head, [str("__proto__"), [0x01]]]), SUBJECT)).toBe("rejected");
    expect(judge(cat(record(head), [0x00]), SUBJECT)).toBe("rejected");
    expect(judge(bytes({ ...BASE, machine_id: "M-002" }), SUBJECT)).toBe("rejected");
    expect(judge(bytes({ ...BASE, gtin: 9506000134352 }), SUBJECT)).toBe("rejected");
    expect(judge(bytes({ ...BASE, serial_number: null }), SUBJECT)).toBe("rejected");
    expect(judge(bytes({ ...BASE, production_timestamp: null }), SUBJECT)).toBe("rejected");
    expect(judge(bytes({ ...BASE, production_timestamp: Number.NaN }), SUBJECT)).toBe("rejected");
    expect(judge(bytes({ ...BASE, received_timestamp: "yesterday" }), SUBJECT)).toBe("rejected");
    expect(judge(bytes({ ...BASE, operator_id: null, received_timestamp: null, event_type: null }), SUBJECT)).toBe("fast");
    expect(judge(bytes({ ...BASE, operator_id: 7 }), SUBJECT)).toBe("rejected");
    expect(judge(bytes({ ...BASE, batch_number: "b".repeat(257) }), SUBJECT)).toBe("rejected");
    expect(judge(bytes({ ...BASE, batch_number: "b".repeat(256) }), SUBJECT)).toBe("fast");
    expect(judge(bytes(BASE), "lw.plant1.sensor.M-001")).toBe("rejected");
    expect(judge(new Uint8Array(0), SUBJECT)).toBe("rejected");
    expect(judge(Uint8Array.from(ext(-1, [0, 0, 0, 0])), SUBJECT)).toBe("rejected");
  });

  it("serial - agrees under tight limits (strings, tokens, map entries, record bytes, extensions)", () => {
    const tally = newTally();
    const rng = new SeededRandom(23);
    const limits = [
      validateDecodeLimits({ ...DEFAULT_DECODE_LIMITS, stringBytesMax: 14, tokenBytesMax: 8 }),
      validateDecodeLimits({ ...DEFAULT_DECODE_LIMITS, mapEntriesMax: 6 }),
      validateDecodeLimits({ ...DEFAULT_DECODE_LIMITS, recordBytesMax: 150, stringBytesMax: 100 }),
      validateDecodeLimits({ ...DEFAULT_DECODE_LIMITS, extBytesMax: 4 }),
    ];
    for (let i = 0; i < 8000; i++) judge(randomRecord(rng, "M-001"), SUBJECT, pick(rng, limits), tally);
    expect(tally.fast).toBeGreaterThan(100);
    expect(tally.rejected).toBeGreaterThan(100);
  });

  it("serial - agrees on every truncation and on random byte mutations of valid records", () => {
    const tally = newTally();
    const rng = new SeededRandom(24);
    const sim = new SerialSimulator({ seed: 8, lines: 3, attackEvery: 100, batchSerials: 50 });
    for (let i = 0; i < 300; i++) {
      const e = sim.next();
      const subject = `lw.s.serial.${e.machine_id}`;
      const bytes = rng.below(2) === 0 ? encodeSerialRecord(e) : randomRecord(rng, e.machine_id);
      for (let n = 0; n < bytes.length; n++) judge(bytes.subarray(0, n), subject, undefined, tally);
      for (let k = 0; k < 40; k++) {
        const m = bytes.slice();
        for (let f = rng.int(1, 3); f > 0; f--) m[rng.below(m.length)] = rng.below(256);
        judge(m, subject, undefined, tally);
      }
    }
    expect(tally.fast).toBeGreaterThan(100);
    expect(tally.rejected).toBeGreaterThan(10_000);
  });

  it("serial - agrees on mutations read right after the valid record whose layout the reader keeps", () => {
    // Each mutation follows its unmutated record, so it meets that record's layout (same length):
    // a changed key, string header, number width or value must be judged as a whole walk judges it.
    const tally = newTally();
    const rng = new SeededRandom(25);
    const sim = new SerialSimulator({ seed: 9, lines: 3, attackEvery: 100, batchSerials: 50 });
    for (let i = 0; i < 300; i++) {
      const e = sim.next();
      const subject = `lw.s.serial.${e.machine_id}`;
      const bytes = rng.below(3) === 0 ? randomRecord(rng, e.machine_id) : encodeSerialRecord(e);
      for (let k = 0; k < 40; k++) {
        judge(bytes, subject, undefined, tally);
        const m = bytes.slice();
        for (let f = rng.int(1, 2); f > 0; f--) m[rng.below(m.length)] = rng.below(3) === 0 ? m[rng.below(m.length)] : rng.below(256);
        judge(m, subject, undefined, tally);
        // Another line's subject with the same bytes: machine_id no longer matches.
        judge(bytes, `lw.s.serial.${e.machine_id}x`, undefined, tally);
      }
    }
    expect(tally.fast).toBeGreaterThan(8_000);
    expect(tally.generic + tally.rejected).toBeGreaterThan(10_000);
  });
});
