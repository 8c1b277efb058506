/**
 * Serial message streams for the tests of the serial job's hot path: the serial simulator's
 * events (every attack kind) as NATS messages on `lw.<site>.serial.<line>`, and an adversarial
 * variant in which a seeded share of the events is changed in every way the wire and the analysis
 * treat specially — text past the payload's field widths, non-ASCII and lone-surrogate serials,
 * missing and null optional fields, every time encoding, JSON messages, unknown and repeated
 * fields, batches longer than their stored prefix, more operators than a batch tracks, repeated
 * serials (ASCII and not), and malformed events that must be dead-lettered.
 *
 * Deterministic for a seed: the tests compare digests of what the job makes of a stream.
 */
import { Encoder } from "@msgpack/msgpack";
import { SerialSimulator, type SerialEvent } from "../../connectors/sim/serial-simulator.js";
import { SeededRandom } from "../../engine/core/mod.js";

export interface SerialMessage {
  subject: string;
  data: Uint8Array;
}

export const STREAM_SITE = "t1";

const MSGPACK = new Encoder();
const TEXT = new TextEncoder();

/** The simulator's events as the publisher sends them (MessagePack, epoch-ms numbers). */
export function simulatorMessages(n: number, seed: number, lines = 6, batchSerials = 700): SerialMessage[] {
  const sim = new SerialSimulator({ seed, lines, batchSerials, attackEvery: 400 });
  const out: SerialMessage[] = [];
  for (let i = 0; i < n; i++) out.push(message(wire(sim.next())));
  return out;
}

/** The simulator's events, a `share` of them changed (module comment); some are malformed on purpose. */
export function adversarialMessages(n: number, seed: number, share = 0.3): SerialMessage[] {
  const sim = new SerialSimulator({ seed, lines: 5, batchSerials: 400, attackEvery: 300 });
  const rng = new SeededRandom(seed * 7919 + 1);
  const state: AdversaryState = { rng, past: [], wide: [], operatorRun: 0 };
  const out: SerialMessage[] = [];
  for (let i = 0; i < n; i++) {
    const e = wire(sim.next());
    if (state.past.length < 4096) state.past.push(e);
    else state.past[rng.below(4096)] = e;
    if (rng.next() >= share) {
      out.push(message(e));
      continue;
    }
    out.push(mutate(e, state));
  }
  return out;
}

// ---- internals ----

type Wire = Record<string, unknown>;

interface AdversaryState {
  rng: SeededRandom;
  past: Wire[];
  /** Non-ASCII serials issued so far, to repeat. */
  wide: Wire[];
  /** Events left in a run of many operators on one batch. */
  operatorRun: number;
}

function wire(e: SerialEvent): Wire {
  const { attack: _attack, ...fields } = e;
  return { ...fields };
}

function message(o: Wire, json = false, subjectLine?: string): SerialMessage {
  const line = subjectLine ?? (o.machine_id as string);
  return { subject: `lw.${STREAM_SITE}.serial.${line}`, data: json ? TEXT.encode(JSON.stringify(o)) : MSGPACK.encode(o) };
}

const WIDE = ["é", "Ω", "😀", "ß"];
const LONG = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/** One changed event (a case per way the hot path can differ from the generic one). */
function mutate(e: Wire, s: AdversaryState): SerialMessage {
  const rng = s.rng;
  const pick = <T>(xs: readonly T[]): T => xs[rng.below(xs.length)];
  if (s.operatorRun > 0) {
    s.operatorRun--;
    return message({ ...e, operator_id: `OP-${rng.below(90)}` });
  }
  const serial = e.serial_number as string;
  switch (rng.below(20)) {
    case 0: {
      const wide = { ...e, serial_number: `${serial.slice(0, 6)}${pick(WIDE)}${serial.slice(6)}` };
      s.wide.push(wide);
      return message(wide, rng.below(2) === 0);
    }
    case 1:
      return message({ ...e, serial_number: (serial + LONG).slice(0, pick([20, 31, 32, 33, 40, 47])) });
    case 2:
      return message({ ...e, serial_number: pick(["", "a", "abc def", "12-34", "%%%%", "x".repeat(20)]) });
    case 3:
      return message({ ...e, gtin: pick([`${e.gtin}9`, `${e.gtin}123456`, "0950600013435", "12345678", "", "0950600013435é"]) });
    case 4:
      return message({ ...e, batch_number: pick([`${e.batch_number}-LONG-SUFFIX-${rng.below(3)}`, `${e.batch_number}é`, ""]) });
    case 5: {
      const o = { ...e };
      const how = rng.below(4);
      if (how === 0) delete o.operator_id;
      else if (how === 1) o.operator_id = null;
      else o.operator_id = how === 2 ? `OPERATOR-WITH-A-LONG-NAME-${rng.below(3)}` : "Jürgen";
      return message(o);
    }
    case 6: {
      const o = { ...e };
      if (rng.below(2) === 0) delete o.received_timestamp;
      else o.received_timestamp = null;
      return message(o);
    }
    case 7:
      return message(withTime(e, rng));
    case 8:
      return message({ ...e, event_type: pick(["batch_closed", "batch_close", "serial", "other", "BATCH_CLOSE"]) });
    case 9: {
      const old = s.past.length === 0 ? e : s.past[rng.below(s.past.length)];
      return message({ ...e, serial_number: old.serial_number, gtin: rng.below(3) === 0 ? e.gtin : old.gtin });
    }
    case 10:
      return message(e, true);
    case 11:
      return message({ ...e, note: "extra", line_speed: 12.5 });
    case 12: {
      // JSON carries lone surrogates: two serials whose UTF-8 is the same (U+FFFD) but which are different strings.
      const lone = pick(["\ud800", "\udc00", "\udbff"]);
      return message({ ...e, serial_number: `${serial.slice(0, 8)}${lone}` }, true);
    }
    case 13:
      return s.wide.length === 0 ? message(e) : message({ ...e, serial_number: pick(s.wide).serial_number });
    case 14:
      return malformed(e, rng);
    case 15: {
      const line = `${e.machine_id}-LONG-LINE-NAME-X`;
      return message({ ...e, machine_id: line });
    }
    case 16:
      s.operatorRun = 120;
      return message({ ...e, operator_id: "OP-RUN" });
    case 17:
      return rawRecord(e, rng);
    case 18:
      return message({ ...e, production_timestamp: (e.production_timestamp as number) - 60_000 });
    default:
      return message({ ...e, serial_number: serial.toLowerCase() });
  }
}

/** The production time as ISO-8601 text, the MessagePack timestamp extension, a fraction or a float. */
function withTime(e: Wire, rng: SeededRandom): Wire {
  const t = e.production_timestamp as number;
  switch (rng.below(5)) {
    case 0:
      return { ...e, production_timestamp: new Date(t).toISOString() };
    case 1:
      return { ...e, production_timestamp: new Date(t), received_timestamp: new Date(e.received_timestamp as number) };
    case 2:
      return { ...e, production_timestamp: t + 0.25 };
    case 3:
      return { ...e, production_timestamp: new Date(t).toISOString().replace("Z", "+00:00") };
    default:
      return { ...e, received_timestamp: new Date(e.received_timestamp as number).toISOString() };
  }
}

/** Events the decoder must dead-letter, each for its own reason. */
function malformed(e: Wire, rng: SeededRandom): SerialMessage {
  switch (rng.below(6)) {
    case 0:
      return message({ ...e, gtin: 9506000134352 });
    case 1:
      return message(e, false, "M-999");
    case 2: {
      const { production_timestamp: _t, ...rest } = e;
      return message(rest);
    }
    case 3:
      return message({ ...e, production_timestamp: "yesterday" });
    case 4:
      return message({ ...e, serial_number: 42 });
    default:
      return { subject: `lw.${STREAM_SITE}.serial.${e.machine_id as string}`, data: new Uint8Array([0xc1, 0x00]) };
  }
}

/** A record written by hand: a repeated field (the last wins), or map 16 with str 8 keys. */
function rawRecord(e: Wire, rng: SeededRandom): SerialMessage {
  const entries = Object.entries(e);
  if (rng.below(2) === 0) entries.push(["serial_number", `${e.serial_number as string}R`]);
  const parts: Uint8Array[] = [Uint8Array.from([0xde, 0, entries.length])];
  for (const [k, v] of entries) {
    const key = TEXT.encode(k);
    parts.push(Uint8Array.from([0xd9, key.length]), key, MSGPACK.encode(v));
  }
  const data = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    data.set(p, at);
    at += p.length;
  }
  return { subject: `lw.${STREAM_SITE}.serial.${e.machine_id as string}`, data };
}
