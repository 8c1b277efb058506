/**
 * The serial simulator's labelled attacks through the whole serial analysis (encoder and ledger,
 * WASM kernel, score): each attack raises its anomaly type, clean serials raise nothing. The
 * rates measured are printed (the figures docs/serial-integrity.md quotes).
 */
import { describe, expect, it } from "vitest";
import { ATTACK_EVENTS, SERIAL_ATTACKS, SerialSimulator, type SerialEvent } from "../connectors/sim/serial-simulator.js";
import { SerialEventRow, SerialInlinePipeline } from "../bench/kit/serial-pipeline.js";
import { gtinValid, isAi82 } from "../operators/serial/gs1.js";
import {
  ANOMALY_MASK,
  DEFAULT_SERIAL_PARAMS,
  REASON,
  SERIAL_COL as C,
  SERIAL_PAYLOAD_BYTES,
  TYPE_MASK,
  type AnomalyType,
} from "../operators/serial/layout.js";
import { reasonsOf } from "../operators/serial/score.js";
import { serialAnalysis } from "../operators/serial/serial.js";
import { printFigures } from "./kit/figures.js";

function generate(n: number, options: ConstructorParameters<typeof SerialSimulator>[0]): { sim: SerialSimulator; events: SerialEvent[] } {
  const sim = new SerialSimulator(options);
  return { sim, events: Array.from({ length: n }, () => sim.next()) };
}

function score(events: readonly SerialEvent[]): Float64Array {
  const params = { ...DEFAULT_SERIAL_PARAMS };
  const pipeline = new SerialInlinePipeline(serialAnalysis({ params, timeUnit: "ms" }), params);
  const flags = new Float64Array(events.length);
  pipeline.run(events, (i, row) => {
    flags[i] = row[C.flags];
  });
  expect(pipeline.rejected).toBe(0);
  return flags;
}

describe("serial - simulator", () => {
  it("serial - the simulator is deterministic for a seed, valid when clean, and labels every injected event", () => {
    const a = generate(30_000, { seed: 3, attackEvery: 3000, batchSerials: 2000 });
    const b = generate(30_000, { seed: 3, attackEvery: 3000, batchSerials: 2000 });
    expect(b.events).toEqual(a.events);
    expect(generate(1000, { seed: 4 }).events).not.toEqual(a.events.slice(0, 1000));
    const labelled = new Set(a.sim.labels().flatMap((l) => l.rows));
    a.events.forEach((e, i) => expect(e.attack !== undefined, `row ${i}`).toBe(labelled.has(i)));
    for (const l of a.sim.labels()) if (l !== a.sim.labels().at(-1)) expect(l.rows.length).toBe(ATTACK_EVENTS[l.attack]);
    const clean = a.events.filter((e) => e.attack === undefined && e.event_type === "serial");
    expect(clean.every((e) => gtinValid(e.gtin) && isAi82(e.serial_number) && e.serial_number.length === 12)).toBe(true);
    // Time order across lines, a steady cadence per line, batches closed by an event.
    for (let i = 1; i < a.events.length; i++)
      expect(a.events[i].received_timestamp - 50).toBeLessThanOrEqual(a.events[i - 1].received_timestamp + 5);
    expect(a.events.filter((e) => e.event_type === "batch_close").length).toBeGreaterThan(10);
    expect(new Set(a.events.map((e) => e.machine_id)).size).toBe(4);
  });

  it("serial - source rows and decoded events encode to the same payloads and ledger verdicts", () => {
    const { events } = generate(20_000, { seed: 17, attackEvery: 1000, batchSerials: 3000 });
    const byRow = serialAnalysis({ params: { ...DEFAULT_SERIAL_PARAMS }, timeUnit: "ms" }).input;
    const byEvent = serialAnalysis({ params: { ...DEFAULT_SERIAL_PARAMS }, timeUnit: "ms" }).input;
    const a = new Uint8Array(SERIAL_PAYLOAD_BYTES);
    const b = new Uint8Array(SERIAL_PAYLOAD_BYTES);
    const row = new SerialEventRow();
    events.forEach((e, i) => {
      expect(byRow.encode(row.set(e, i), a, 0)).toBeNull();
      expect(byEvent.encodeEvent(e, b, 0)).toBeNull();
      expect(b, `event ${i}`).toEqual(a);
    });
  });

  it("serial - every injected attack is caught with its anomaly type; clean serials around them are not", () => {
    const n = 320_000;
    const { sim, events } = generate(n, { seed: 11, attackEvery: 10_000, batchSerials: 20_000 });
    const flags = score(events);
    const recall = new Map<string, { hit: number; total: number; attacks: number; missedWhole: number }>();
    const attackRows = new Set<number>();
    for (const l of sim.labels()) {
      const mask = TYPE_MASK[l.expected as AnomalyType];
      const hits = l.rows.filter((r) => (flags[r] & mask) !== 0).length;
      const r = recall.get(l.attack) ?? { hit: 0, total: 0, attacks: 0, missedWhole: 0 };
      r.hit += hits;
      r.total += l.rows.length;
      r.attacks++;
      if (hits === 0) r.missedWhole++;
      recall.set(l.attack, r);
      for (const row of l.rows) attackRows.add(row);
    }
    const table = [...recall].map(
      ([a, r]) => `${a.padEnd(17)} ${r.attacks} attacks, ${r.hit}/${r.total} events flagged (${((100 * r.hit) / r.total).toFixed(1)} %)`,
    );
    printFigures(`serial attacks (${n} events, 4 lines):\n  ${table.join("\n  ")}`);
    expect([...recall.keys()].sort()).toEqual([...SERIAL_ATTACKS].sort());
    for (const [attack, r] of recall) {
      expect(r.missedWhole, `${attack}: an attack with no event flagged`).toBe(0);
      const share = r.hit / r.total;
      // A sequence needs a predecessor (the first serial of a run is not a step); a burst needs a
      // few fast intervals before the short-term rate drops; entropy is a property of the window:
      // it drops as the low-entropy generator fills the last K = 256 serials.
      const floor = { sequential: 0.97, burst: 0.95, low_entropy: 0.75 }[attack as string] ?? 1;
      expect(share, attack).toBeGreaterThanOrEqual(floor);
    }
    // Clean serials: not injected, and not in the window's memory of a low-entropy run (the next
    // 2K serials of its line) or the few intervals after a burst.
    const shadow = new Set<number>();
    for (const l of sim.labels()) {
      if (l.attack !== "low_entropy" && l.attack !== "burst") continue;
      const reach = l.attack === "low_entropy" ? 2 * DEFAULT_SERIAL_PARAMS.window : 10;
      let left = reach;
      for (let i = (l.rows.at(-1) as number) + 1; i < n && left > 0; i++) {
        if (events[i].machine_id !== l.machine_id) continue;
        shadow.add(i);
        left--;
      }
    }
    let clean = 0;
    let flagged = 0;
    let shadowFlagged = 0;
    const byReason: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      if (attackRows.has(i) || events[i].event_type !== "serial") continue;
      const anomalous = (flags[i] & ANOMALY_MASK) !== 0;
      if (shadow.has(i)) {
        if (anomalous) shadowFlagged++;
        continue;
      }
      clean++;
      if (anomalous) {
        flagged++;
        for (const r of reasonsOf(flags[i])) byReason[r] = (byReason[r] ?? 0) + 1;
      }
    }
    printFigures(
      `serial attacks: clean serials flagged ${flagged} of ${clean} (${(flagged / clean).toExponential(2)}) ${JSON.stringify(byReason)}; ` +
        `flagged in the ${shadow.size} serials after low-entropy runs and bursts: ${shadowFlagged}`,
    );
    expect(flagged / clean).toBeLessThanOrEqual(1e-4);
  });

  it("serial - false-positive rate on 1 M clean random serials", () => {
    const n = 1_000_000;
    const { events } = generate(n, { seed: 2026, attackEvery: 0 });
    const flags = score(events);
    let serials = 0;
    let flagged = 0;
    const byReason: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      if (events[i].event_type !== "serial") continue;
      serials++;
      if ((flags[i] & ANOMALY_MASK) === 0) continue;
      flagged++;
      for (const r of reasonsOf(flags[i])) byReason[r] = (byReason[r] ?? 0) + 1;
    }
    // With none flagged, 3/n bounds the rate at 95 % (the rule of three).
    const bound = flagged === 0 ? 3 / serials : Number.NaN;
    printFigures(
      `serial false positives: ${flagged} of ${serials} clean serials (rate ${(flagged / serials).toExponential(2)}` +
        `${flagged === 0 ? `, 95 % upper bound ${bound.toExponential(1)}` : ""}) ${JSON.stringify(byReason)}`,
    );
    expect(flagged / serials).toBeLessThanOrEqual(1e-5);
    expect(flags.some((f) => (f & REASON.low_entropy) !== 0)).toBe(false);
  });
});
