/**
 * The duplicate ledger on its own thread (operators/serial/ledger-thread.ts) against the ledger on
 * the calling thread (SerialInput.encodeRanges + settle, the job's path today): the same messages
 * — the simulator's with attacks, and adversarial ones (replays, wide text, malformed) — read by
 * the schema reader, each event's verdict bits compared one by one, and the filter's
 * false-positive rate after every slot. Small slots and a small filter so that slots rotate many
 * times, filter generations turn over and exact sets are dropped. Needs `npm run build` (the
 * thread runs dist/operators/serial/ledger-worker.js).
 */
import { describe, expect, it } from "vitest";
import { SerialNatsInput } from "../connectors/nats/serial-input.js";
import { PAYLOAD, SERIAL_PAYLOAD_BYTES } from "../operators/serial/layout.js";
import { SerialLedgerThread } from "../operators/serial/ledger-thread.js";
import type { SerialLedgerOptions } from "../operators/serial/ledger.js";
import { encodeSerialRanges, readU32 } from "../operators/serial/payload.js";
import { serialAnalysis } from "../operators/serial/serial.js";
import { DEFAULT_SERIAL_PARAMS } from "../operators/serial/layout.js";
import { adversarialMessages, simulatorMessages, STREAM_SITE, type SerialMessage } from "./kit/serial-streams.js";

const BATCH = 64;
const LEDGER: Partial<SerialLedgerOptions> = { filterCapacity: 3000, exactSerialsMax: 2500, batchesMax: 24 };
const PATTERNS = new Map([["*", /^[0-9A-Z]{6,20}$/u]]);

interface Verdicts {
  bits: number[];
  /** The filter's false-positive rate after each batch of BATCH events. */
  rates: number[];
}

/** The events both sides take: read by the schema reader, with a finite time and text that fits the payload. */
function* fittingEvents(messages: SerialMessage[]) {
  const input = new SerialNatsInput(() => {}, STREAM_SITE);
  const scratch = new Uint8Array(SERIAL_PAYLOAD_BYTES);
  for (const m of messages) {
    const line = input.read(m.subject, m.data);
    const v = input.view;
    if (line === null || !Number.isFinite(v.production)) continue;
    if (!encodeSerialRanges(m.data, v, v.received, v.batchClose, 0, scratch, 0)) continue;
    yield { data: m.data, view: v, line };
  }
}

function inThread(messages: SerialMessage[]): Verdicts {
  const analysis = serialAnalysis({
    params: { ...DEFAULT_SERIAL_PARAMS },
    timeUnit: "ms",
    clock: () => 0,
    ledger: LEDGER,
    patterns: PATTERNS,
  });
  const payload = new Uint8Array(BATCH * SERIAL_PAYLOAD_BYTES);
  const out: Verdicts = { bits: [], rates: [] };
  let k = 0;
  const settle = () => {
    analysis.input.settle();
    for (let j = 0; j < k; j++) out.bits.push(readU32(payload, j * SERIAL_PAYLOAD_BYTES + PAYLOAD.ledger));
    out.rates.push(analysis.ledger.filterFalsePositiveRate());
    k = 0;
  };
  for (const e of fittingEvents(messages)) {
    const received = Number.isNaN(e.view.received) ? 0 : e.view.received;
    expect(analysis.input.encodeRanges(e.data, { ...e.view, received }, e.line, payload, k * SERIAL_PAYLOAD_BYTES)).toBeNull();
    if (++k === BATCH) settle();
  }
  if (k > 0) settle();
  return out;
}

async function onItsThread(messages: SerialMessage[]): Promise<Verdicts> {
  const thread = new SerialLedgerThread({
    batchRecords: BATCH,
    slots: 3,
    linesMax: 64,
    ledger: LEDGER,
    timeUnit: "ms",
    patterns: PATTERNS,
  });
  const out: Verdicts = { bits: [], rates: [] };
  const take = (slot: number) => {
    const n = thread.take(slot);
    if (n === 0) return;
    for (let j = 0; j < n; j++) out.bits.push(readU32(thread.slots[slot].payload, thread.slots[slot].offsets[j] + PAYLOAD.ledger));
    out.rates.push(thread.filterRateAfter(slot));
  };
  try {
    let slot = 0;
    let k = 0;
    for (const e of fittingEvents(messages)) {
      const s = thread.slots[slot];
      // Offsets in reverse: the thread must go by them, not by the event's index.
      const at = (BATCH - 1 - k) * SERIAL_PAYLOAD_BYTES;
      const received = Number.isNaN(e.view.received) ? 0 : e.view.received;
      expect(encodeSerialRanges(e.data, e.view, received, e.view.batchClose, 0, s.payload, at)).toBe(true);
      s.offsets[k] = at;
      s.times[k] = e.view.production;
      s.lines[k] = thread.lineId(e.line);
      if (++k === BATCH) {
        thread.submit(slot, k);
        slot = (slot + 1) % thread.slots.length;
        k = 0;
        take(slot);
      }
    }
    if (k > 0) thread.submit(slot, k);
    for (let j = 1; j <= thread.slots.length; j++) take((slot + j) % thread.slots.length);
    const report = await thread.report();
    expect(report.events).toBe(out.bits.length);
  } finally {
    await thread.close();
  }
  return out;
}

describe("the ledger on its own thread", () => {
  it.each([
    ["simulator with attacks", () => simulatorMessages(20_000, 11)],
    ["adversarial", () => adversarialMessages(12_000, 5)],
  ])("answers every event of %s as the ledger on the calling thread does", async (_name, make) => {
    const messages = make();
    const expected = inThread(messages);
    const got = await onItsThread(messages);
    expect(got.bits.length).toBe(expected.bits.length);
    expect(expected.bits.filter((b) => b !== 0).length).toBeGreaterThan(100);
    expect(got.bits).toEqual(expected.bits);
    expect(got.rates).toEqual(expected.rates);
  });

  it("refuses a line past linesMax and more events than a slot holds", async () => {
    const thread = new SerialLedgerThread({ batchRecords: 4, slots: 2, linesMax: 1, timeUnit: "ms" });
    try {
      thread.lineId("a");
      expect(() => thread.lineId("b")).toThrow(/more than 1 lines/);
      thread.submit(0, 0);
      thread.take(0);
      expect(() => thread.submit(1, 5)).toThrow(RangeError);
    } finally {
      await thread.close();
    }
  });
});
