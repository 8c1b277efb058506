/**
 * The serial kernel (build/kernels.wasm, kernels/serial.ts) against GS1's check-digit vectors,
 * hand-computed entropy and MCV figures, and the plain TypeScript reference
 * (kernels/reference/serial-reference.ts) on seeded random and adversarial streams.
 *
 * Comparison with the reference, per field:
 * - flags, window_serials, interval, learned_interval, sequence_delta_min, line_serials,
 *   readiness, serial_surprisal_bits: exact (integer bookkeeping, the same recurrences in the same
 *   order, or sums of the same log2 values: the kernel's table holds JavaScript's Math.log2).
 * - entropy_bits_per_char, position_entropy_min: 1e-9 absolute. The kernel sums a fixed-point
 *   table of c·log2 c (each entry within 2^−33 of the real value), the reference −Σ p log2 p.
 * - min_entropy_mcv, serial_min_entropy_bits, guess_probability: 1e-12 relative. Same formula;
 *   AssemblyScript's log2/pow (musl ports) and V8's may differ in the last bit.
 * - low_entropy flag: exact unless the reference's guess probability lies within 1e-9 of the
 *   threshold (counted; expected never).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SeededRandom } from "../engine/core/mod.js";
import { SerialKernelHarness, type SerialKernelEvent } from "../bench/kit/serial-harness.js";
import { referenceDataDir } from "../connectors/files/reference-data.js";
import { SerialReference, mcvMinEntropy } from "../kernels/reference/serial-reference.js";
import { createSharedMemory, instantiateKernels } from "../engine/core/kernel-module.js";
import { AI82_CHARACTERS, gs1CheckDigitValid, isAi82, withCheckDigit } from "../operators/serial/gs1.js";
import {
  DEFAULT_SERIAL_PARAMS,
  MARK_CONTROL,
  REASON,
  SERIAL_COL as C,
  SERIAL_KERNEL_FIELDS,
  SERIAL_OUT_FIELDS,
  SERIAL_PAYLOAD_BYTES,
  serialStateBytes,
  type SerialParams,
} from "../operators/serial/layout.js";
import { encodeSerialFields } from "../operators/serial/payload.js";

const GTIN = withCheckDigit("0950600013435");
const ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

interface Vector {
  code: string;
  kind: string;
  valid: boolean;
}

function vectors(): Vector[] {
  const text = readFileSync(join(referenceDataDir(), "gs1", "gs1_check_digit_vectors.csv"), "utf8")
    .trim()
    .split("\n")
    .slice(1);
  return text.map((line) => {
    const m = /^("([^"]*)"|[^,]*),([^,]+),([01]),/.exec(line);
    if (m === null) throw new Error(`unreadable vector line: ${line}`);
    return { code: m[2] ?? m[1], kind: m[3], valid: m[4] === "1" };
  });
}

function event(line: number, time: number, serial: string, over: Partial<SerialKernelEvent> = {}): SerialKernelEvent {
  return {
    line,
    time,
    serial,
    gtin: GTIN,
    batch: "B1",
    machine: `M-${line}`,
    operator: "OP-1",
    arrival: time + 50,
    batchClose: false,
    ledgerBits: 0,
    ...over,
  };
}

function randomSerial(rng: SeededRandom, length = 12, alphabet = ALNUM): string {
  let s = "";
  for (let i = 0; i < length; i++) s += alphabet[rng.int(0, alphabet.length - 1)];
  return s;
}

function params(over: Partial<SerialParams> = {}): SerialParams {
  return { ...DEFAULT_SERIAL_PARAMS, ...over };
}

function row(rows: Float64Array, i: number): Float64Array {
  return rows.subarray(i * SERIAL_OUT_FIELDS, (i + 1) * SERIAL_OUT_FIELDS);
}

describe("serial - GS1 rules", () => {
  it("serial - every GS1 check-digit vector gets its expected verdict (TypeScript and WASM)", () => {
    const all = vectors();
    expect(all.length).toBe(55);
    const memory = createSharedMemory(2);
    const k = instantiateKernels(memory);
    const u8 = new Uint8Array(memory.buffer);
    for (const v of all) {
      expect(gs1CheckDigitValid(v.code), `${v.kind} ${v.code}`).toBe(v.valid);
      u8.fill(0, 65536, 65536 + 64);
      for (let i = 0; i < v.code.length; i++) u8[65536 + i] = v.code.charCodeAt(i);
      expect(k.gs1CheckDigitValid(65536, v.code.length) === 1, `WASM ${v.kind} ${v.code}`).toBe(v.valid);
    }
  });

  it("serial - the kernel's gtin_check_digit check agrees with the GTIN vectors and rejects SSCC/GSIN lengths", () => {
    const all = vectors();
    const h = new SerialKernelHarness(params(), 1);
    const rows = h.process(all.map((v, i) => event(0, i * 100, "A1B2C3", { gtin: v.code })));
    all.forEach((v, i) => {
      const isGtin = v.kind.startsWith("GTIN");
      const flagged = (row(rows, i)[C.flags] & REASON.gtin_check_digit) !== 0;
      expect(flagged, `${v.kind} ${v.code}`).toBe(!(isGtin && v.valid));
    });
  });

  it("serial - the AI-82 set has 82 characters and the kernel's charset check matches it for every ASCII code", () => {
    expect(AI82_CHARACTERS.length).toBe(82);
    expect(new Set(AI82_CHARACTERS).size).toBe(82);
    const h = new SerialKernelHarness(params(), 1);
    const codes = Array.from({ length: 128 }, (_, c) => c).filter((c) => c !== 0);
    const rows = h.process(codes.map((c, i) => event(0, i * 100, `AB${String.fromCharCode(c)}1`)));
    codes.forEach((c, i) => {
      expect((row(rows, i)[C.flags] & REASON.serial_charset) === 0, `code ${c}`).toBe(isAi82(String.fromCharCode(c)));
    });
  });

  it("serial - length 1..20 passes, 0 and 21 fail; non-ASCII fails the charset", () => {
    const h = new SerialKernelHarness(params(), 1);
    const serials = ["", "A", "A".repeat(20), "A".repeat(21), "ABCé", "X".repeat(40)];
    const rows = h.process(serials.map((s, i) => event(0, i * 100, s)));
    const flags = serials.map((_, i) => row(rows, i)[C.flags]);
    expect(flags.map((f) => (f & REASON.serial_length) !== 0)).toEqual([true, false, false, true, false, true]);
    expect(flags.map((f) => (f & REASON.serial_charset) !== 0)).toEqual([false, false, false, false, true, true]);
  });
});

describe("serial - entropy figures", () => {
  it("serial - the MCV formula on hand cases (NIST SP 800-90B §6.3.1)", () => {
    // p̂ = 5/10, p_u = 0.5 + z·sqrt(0.25/9) = 0.5 + z/6, z = 2.5758293035489008 (NIST's ZALPHA)
    expect(mcvMinEntropy(5, 10)).toBeCloseTo(-Math.log2(0.5 + 2.5758293035489008 / 6), 14);
    expect(mcvMinEntropy(5, 10)).toBeCloseTo(0.105776, 6);
    // p̂ = 1: p_u = 1, no entropy; n = 1: nothing to estimate from.
    expect(mcvMinEntropy(7, 7)).toBe(0);
    expect(mcvMinEntropy(1, 1)).toBe(0);
    // p̂ = 1/256 of 1,000,000 bytes: p_u = 0.00390625 + z·sqrt(p̂(1−p̂)/999999)
    const p = 1 / 256;
    expect(mcvMinEntropy(1_000_000 / 256, 1_000_000)).toBeCloseTo(
      -Math.log2(p + 2.5758293035489008 * Math.sqrt((p * (1 - p)) / 999_999)),
      13,
    );
    // The bound is capped at 1.
    expect(mcvMinEntropy(9, 10)).toBe(0);
  });

  it("serial - window figures of a hand-built window: Shannon bits/char, MCV, per-position sum, guess probability", () => {
    const h = new SerialKernelHarness(params({ window: 4, recent: 1, statisticsMinSerials: 2, prefixRepeat: 1 }), 1);
    // Window after four serials: AB, AC, AD, AE → chars A×4, B, C, D, E (N = 8).
    const rows = h.process(["AB", "AC", "AD", "AE"].map((s, i) => event(0, i * 100, s)));
    const r = row(rows, 3);
    const hShannon = -(0.5 * Math.log2(0.5) + 4 * (1 / 8) * Math.log2(1 / 8));
    expect(r[C.entropy_bits_per_char]).toBeCloseTo(hShannon, 12);
    expect(r[C.entropy_bits_per_char]).toBeCloseTo(2, 12);
    expect(r[C.min_entropy_mcv]).toBeCloseTo(mcvMinEntropy(4, 8), 14);
    // Position 0 always A (0 bits), position 1 four different letters: mode 1 of 4.
    expect(r[C.serial_min_entropy_bits]).toBeCloseTo(mcvMinEntropy(1, 4), 14);
    expect(r[C.guess_probability]).toBeCloseTo(Math.min(1, 4 * 2 ** -mcvMinEntropy(1, 4)), 14);
    expect(r[C.position_entropy_min]).toBeCloseTo(0, 14);
    expect(r[C.window_serials]).toBe(4);
    // A fifth serial evicts AB: window AC, AD, AE, AF.
    const next = row(h.process([event(0, 400, "AF")]), 0);
    expect(next[C.window_serials]).toBe(4);
    expect(next[C.entropy_bits_per_char]).toBeCloseTo(2, 12);
  });

  it("serial - the kernel's state size matches the TypeScript layout", () => {
    const k = instantiateKernels(createSharedMemory(1));
    for (const w of [1, 2, 64, 255, 256, 1000, 1024]) expect(k.serialStateBytes(w)).toBe(serialStateBytes(w));
    expect(SERIAL_PAYLOAD_BYTES % 8).toBe(0);
  });
});

/** A stream with every kind of trouble the kernel looks at, several lines interleaved. */
function adversarialStream(seed: number, n: number, lines: number): SerialKernelEvent[] {
  const rng = new SeededRandom(seed);
  const t = new Array<number>(lines).fill(1_700_000_000_000);
  const counters = new Array<number>(lines).fill(0).map(() => rng.int(0, 1e9));
  const out: SerialKernelEvent[] = [];
  let mode = 0;
  for (let i = 0; i < n; i++) {
    if (i % 500 === 0) mode = rng.int(0, 9);
    const l = rng.int(0, lines - 1);
    const step = mode === 3 ? rng.uniform(0.2, 1) : rng.next() < 0.003 ? 60_000 : rng.uniform(180, 220);
    t[l] += step;
    let time = t[l];
    let arrival = time + rng.uniform(5, 100);
    let serial: string;
    let gtin = GTIN;
    switch (mode) {
      case 1: // sequential, decimal and base 36
        counters[l] += rng.int(1, 3);
        serial = rng.next() < 0.5 ? String(counters[l]).padStart(12, "0") : `SN${counters[l].toString(36).toUpperCase().padStart(10, "0")}`;
        break;
      case 2: // low entropy
        serial = randomSerial(rng, 12, "AB12");
        break;
      case 4: // fixed prefix
        serial = `PHARMA${randomSerial(rng, 6)}`;
        break;
      case 5: // clocks
        if (rng.next() < 0.1) time -= rng.uniform(1, 5000);
        if (rng.next() < 0.1) arrival = time - rng.uniform(60_001, 3_600_000);
        serial = randomSerial(rng);
        break;
      case 6: // odd serials and GTINs
        serial = [randomSerial(rng, rng.int(0, 25)), "AB C", "ABé12", "a\"b%&'", randomSerial(rng, 12, ALNUM.toLowerCase() + ALNUM)][
          rng.int(0, 4)
        ];
        gtin = [GTIN, "12345678", "0950600013435", "abc", "09506000134353"][rng.int(0, 4)];
        break;
      case 7: // short serials: many collisions and small deltas
        serial = randomSerial(rng, rng.int(1, 4), "0123456789");
        break;
      default:
        serial = randomSerial(rng, rng.int(10, 14));
    }
    out.push(event(l, time, serial, { gtin, arrival }));
    if (mode === 8 && rng.next() < 0.05) out.push(event(l, time, "", { batchClose: true }));
  }
  return out;
}

function compare(p: SerialParams, events: SerialKernelEvent[], lines: number): { borderline: number; seen: number } {
  const h = new SerialKernelHarness(p, lines, 1000);
  const rows = h.process(events);
  const ref = new SerialReference(p);
  const payload = new Uint8Array(SERIAL_PAYLOAD_BYTES);
  let borderline = 0;
  let seen = 0;
  events.forEach((e, i) => {
    encodeSerialFields(e, payload, 0);
    const want = ref.process(e.line, e.time, payload);
    const got = row(rows, i);
    const where = `event ${i} (line ${e.line}, serial ${JSON.stringify(e.serial)})`;
    let flagsGot = got[C.flags];
    let flagsWant = want[C.flags];
    const g = want[C.guess_probability];
    if (Math.abs(g - p.guessProbabilityMax) <= 1e-9 * p.guessProbabilityMax) {
      borderline++;
      flagsGot &= ~REASON.low_entropy;
      flagsWant &= ~REASON.low_entropy;
    }
    expect(flagsGot, where).toBe(flagsWant);
    seen |= flagsWant;
    for (const f of [
      C.window_serials,
      C.interval,
      C.learned_interval,
      C.sequence_delta_min,
      C.line_serials,
      C.readiness,
      C.serial_surprisal_bits,
    ]) {
      expect(Object.is(got[f], want[f]) || got[f] === want[f], `${where} field ${f}: ${got[f]} vs ${want[f]}`).toBe(true);
    }
    for (const f of [C.entropy_bits_per_char, C.position_entropy_min]) {
      if (Number.isNaN(want[f])) expect(got[f], `${where} field ${f}`).toBeNaN();
      else expect(Math.abs(got[f] - want[f]), `${where} field ${f}`).toBeLessThanOrEqual(1e-9);
    }
    for (const f of [C.min_entropy_mcv, C.serial_min_entropy_bits, C.guess_probability]) {
      if (Number.isNaN(want[f])) expect(got[f], `${where} field ${f}`).toBeNaN();
      else
        expect(Math.abs(got[f] - want[f]), `${where} field ${f}: ${got[f]} vs ${want[f]}`).toBeLessThanOrEqual(
          1e-12 * Math.max(1, Math.abs(want[f])),
        );
    }
  });
  return { borderline, seen };
}

describe("serial - WASM = TypeScript reference", () => {
  it("serial - agrees on seeded adversarial streams (several lines, every anomaly kind, control events)", () => {
    let seen = 0;
    for (const seed of [1, 2, 3]) {
      const r = compare(params({ window: 64, statisticsMinSerials: 16 }), adversarialStream(seed, 6000, 3), 3);
      expect(r.borderline).toBe(0);
      seen |= r.seen;
    }
    // Not vacuous: every kernel reason but the physical rate limit (off by default) occurred.
    expect(seen & 0xfff).toBe(0xfff & ~REASON.above_line_rate);
  });

  it("serial - agrees with the default window (K = 256) on a long mixed stream", () => {
    const { borderline } = compare(params(), adversarialStream(42, 12000, 2), 2);
    expect(borderline).toBe(0);
  });

  it("serial - agrees at the window limits (K = 1 and K = 1024) and with every check's parameters moved", () => {
    compare(params({ window: 1, recent: 1, prefixRepeat: 1, statisticsMinSerials: 2 }), adversarialStream(7, 2000, 2), 2);
    const moved = compare(
      params({
        window: 1024,
        recent: 32,
        prefixMin: 2,
        prefixRepeat: 2,
        sequenceDeltaMax: 1000,
        lowVariabilityShare: 0.1,
        lowVariabilityPositions: 2,
        statisticsMinSerials: 100,
        rateWarmup: 5,
        burstRatio: 0.8,
        gapFactor: 3,
        minInterval: 100,
        futureSkew: 0,
      }),
      adversarialStream(8, 4000, 2),
      2,
    );
    expect(moved.seen & REASON.above_line_rate).not.toBe(0);
  });

  it("serial - agrees on the recent-serial scan's edges: differences on both sides of byte 16, every suffix base, duplicates, long serials", () => {
    const rng = new SeededRandom(13);
    const alphabets = ["0123456789", ALNUM, ALNUM.toLowerCase().slice(0, 10) + ALNUM.toLowerCase(), `${ALNUM}abcxyz`, "09AZaz %-"];
    const events: SerialKernelEvent[] = [];
    let base = randomSerial(rng, 16);
    let deltas = 0;
    for (let i = 0; i < 6000; i++) {
      if (i % 40 === 0) base = randomSerial(rng, rng.int(1, 24), alphabets[rng.int(0, alphabets.length - 1)]);
      // Keep a prefix of the base (any length, so the first difference falls anywhere in 0..20),
      // then a suffix of one alphabet: decimal, base 36, base 62, lower case, other characters.
      const keep = rng.int(0, base.length);
      const tail = randomSerial(rng, base.length - keep, alphabets[rng.int(0, alphabets.length - 1)]);
      const serial = rng.next() < 0.05 ? base : base.slice(0, keep) + tail;
      events.push(event(i % 2, 1_700_000_000_000 + i * 200, serial));
    }
    const p = params({ window: 64, recent: 16, prefixMin: 3, prefixRepeat: 2, sequenceDeltaMax: 1e15, statisticsMinSerials: 16 });
    const r = compare(p, events, 2);
    expect(r.borderline).toBe(0);
    // Not vacuous: sequential steps and shared prefixes occurred.
    expect(r.seen & REASON.sequential_delta).not.toBe(0);
    expect(r.seen & REASON.repeated_prefix).not.toBe(0);
    const rows = new SerialKernelHarness(p, 2, 1000).process(events);
    for (let i = 0; i < events.length; i++) if (!Number.isNaN(row(rows, i)[C.sequence_delta_min])) deltas++;
    expect(deltas).toBeGreaterThan(500);
  });

  it("serial - batch-close events pass through without touching the line's state", () => {
    const h = new SerialKernelHarness(params(), 1);
    const rows = h.process([event(0, 0, "AAA111"), event(0, 10, "", { batchClose: true }), event(0, 200, "BBB222")]);
    expect(row(rows, 1)[C.flags]).toBe(MARK_CONTROL);
    expect(row(rows, 2)[C.window_serials]).toBe(2);
    expect(row(rows, 2)[C.interval]).toBe(200);
    expect(Array.from(row(rows, 1).subarray(1, SERIAL_KERNEL_FIELDS)).every(Number.isNaN)).toBe(true);
  });
});
