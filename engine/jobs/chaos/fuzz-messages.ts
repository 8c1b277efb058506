/**
 * The fuzz scenario's messages: the simulator's readings as MessagePack records, and malformed
 * ones of every kind a decoder must survive, each told whether the engine must score it ("valid")
 * or dead-letter it. Seeded: a failing run can be replayed.
 */
import { encode } from "@msgpack/msgpack";
import { SeededRandom } from "../../core/mod.js";
import { encodeMsgpackRecord } from "../../../connectors/wire/mod.js";
import { PlantSimulator, type SimulatorOptions, toWireReading, type WireReading } from "../../../connectors/sim/mod.js";

export interface FuzzMessage {
  subject: string;
  bytes: Uint8Array;
  /** What it is: "valid", "extra_fields" (valid too: unknown fields are ignored) or the malformed kind. */
  kind: string;
  valid: boolean;
}

type Reading = WireReading;

/** 200 nested one-entry maps: past any depth limit. */
const MAP_BOMB = new Uint8Array([...Array.from({ length: 200 }, () => [0x81, 0xa1, 0x61]).flat(), 0xc0]);

/** The malformed kinds, each from a valid reading (its subject, its bytes) and the generator. */
const MALFORMED: Record<string, (r: Reading, subject: string, random: SeededRandom) => { subject: string; bytes: Uint8Array }> = {
  truncated: (r, subject, random) => {
    const b = encodeMsgpackRecord(r);
    return { subject, bytes: b.subarray(0, random.int(1, b.length - 1)) };
  },
  map_bomb: (_r, subject) => ({ subject, bytes: MAP_BOMB }),
  // A field holding 200 nested one-element arrays.
  array_bomb: (r, subject) => ({
    subject,
    // The record's six entries under a seven-entry map header (0x87), then "x": the bomb.
    bytes: concat(new Uint8Array([0x87]), encode(r).subarray(1), encode("x"), new Uint8Array(200).fill(0x91), new Uint8Array([0xc0])),
  }),
  // A map declaring 2^31 entries, a string declaring 2^31 bytes: lengths beyond the buffer.
  map_length_beyond: (_r, subject) => ({ subject, bytes: new Uint8Array([0xdf, 0x7f, 0xff, 0xff, 0xff, 0xa1, 0x61, 0x01]) }),
  string_length_beyond: (r, subject) => ({
    subject,
    bytes: concat(new Uint8Array([0x81]), encode("machine_id"), new Uint8Array([0xdb, 0x7f, 0xff, 0xff, 0xff]), encode(r.machine_id)),
  }),
  nan: (r, subject) => ({ subject, bytes: encode({ ...r, sensor_value: Number.NaN }) }),
  infinity: (r, subject, random) => ({ subject, bytes: encode({ ...r, sensor_value: random.next() < 0.5 ? Infinity : -Infinity }) }),
  wrong_type_value: (r, subject) => ({ subject, bytes: encode({ ...r, sensor_value: String(r.sensor_value) }) }),
  wrong_type_machine: (r, subject) => ({ subject, bytes: encode({ ...r, machine_id: 42 }) }),
  missing_timestamp: (r, subject) => {
    const { timestamp: _t, ...rest } = r;
    return { subject, bytes: encode(rest) };
  },
  missing_value: (r, subject) => {
    const { sensor_value: _v, ...rest } = r;
    return { subject, bytes: encode(rest) };
  },
  // The subject names another machine than the record (the fourth token).
  subject_mismatch: (r, subject) => ({
    subject: subject
      .split(".")
      .map((t, i) => (i === 3 ? `${t}X` : t))
      .join("."),
    bytes: encodeMsgpackRecord(r),
  }),
  subject_extra_token: (r, subject) => ({ subject: `${subject}.extra`, bytes: encodeMsgpackRecord(r) }),
  oversize: (r, subject) => ({ subject, bytes: encode({ ...r, note: "x".repeat(5000) }) }),
  json_malformed: (_r, subject) => ({ subject, bytes: new TextEncoder().encode('{"machine_id": "M1", "timestamp": ') }),
  not_a_record: (_r, subject, random) => ({ subject, bytes: encode([random.int(0, 100), "a"]) }),
  random_bytes: (_r, subject, random) => ({ subject, bytes: Uint8Array.from({ length: random.int(1, 64) }, () => random.int(0xc1, 0xff)) }),
};

export const FUZZ_KINDS = Object.keys(MALFORMED);

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * `malformed` malformed messages among `valid` valid ones (a tenth of those with extra fields),
 * in a seeded order; the valid ones are the simulator's readings in order (so none is late).
 */
export function fuzzMessages(site: string, sim: Partial<SimulatorOptions>, valid: number, malformed: number, seed: number): FuzzMessage[] {
  const prefix = `lw.${site}.sensor`;
  const random = new SeededRandom(seed);
  const readings = simulatorReadings(sim, valid);
  const out: FuzzMessage[] = [];
  let v = 0;
  let m = 0;
  while (v < readings.length || m < malformed) {
    const takeValid = m >= malformed || (v < readings.length && random.next() < readings.length / (readings.length + malformed));
    const r = readings[Math.min(v, readings.length - 1)];
    const subject = `${prefix}.${r.machine_id}.${r.sensor_type}`;
    if (takeValid) {
      const extra = random.next() < 0.1;
      out.push({
        subject,
        bytes: extra ? encode({ ...r, firmware: "1.2.3", line: 7 }) : encodeMsgpackRecord(r),
        kind: extra ? "extra_fields" : "valid",
        valid: true,
      });
      v++;
    } else {
      const kind = FUZZ_KINDS[random.below(FUZZ_KINDS.length)];
      out.push({ ...MALFORMED[kind](r, subject, random), kind, valid: false });
      m++;
    }
  }
  return out;
}

function simulatorReadings(sim: Partial<SimulatorOptions>, n: number): Reading[] {
  const s = new PlantSimulator({ ...sim, maxRecords: n });
  const keys = s.keys();
  const out: Reading[] = [];
  while (!s.done) {
    const c = s.nextColumns(4096);
    for (let i = 0; i < c.length; i++) out.push(toWireReading(keys, c, i));
  }
  return out;
}
