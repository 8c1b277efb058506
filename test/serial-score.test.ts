/**
 * The serial operator's main-thread parts: risk levels and scores, the duplicate filter's
 * false-positive rate (stated against measured), the ledger's duplicates and behaviour with its
 * bounds, and the quarantine list's file.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { InputError } from "../engine/core/errors.js";
import { SplitBlockBloomFilter, blockedFalsePositiveRate, loadForRate } from "../operators/serial/bloom-filter.js";
import { REASON, REASONS } from "../operators/serial/layout.js";
import { SerialLedger } from "../operators/serial/ledger.js";
import { SerialSet } from "../operators/serial/exact-set.js";
import { QuarantineList } from "../operators/serial/quarantine.js";
import { REASON_WEIGHT, RISK_THRESHOLDS, anomalyScore, anomalyTypesOf, confidenceLevel, riskLevel } from "../operators/serial/score.js";
import { printFigures } from "./kit/figures.js";

const dir = mkdtempSync(join(tmpdir(), "lw-serial-"));

describe("serial - score and risk", () => {
  it("serial - risk levels change exactly at 0.3, 0.6, 0.8 and 0.95", () => {
    const below = (x: number) => x - Number.EPSILON * x;
    expect(riskLevel(0)).toBe("none");
    expect(riskLevel(below(0.3))).toBe("none");
    expect(riskLevel(0.3)).toBe("low");
    expect(riskLevel(below(0.6))).toBe("low");
    expect(riskLevel(0.6)).toBe("medium");
    expect(riskLevel(below(0.8))).toBe("medium");
    expect(riskLevel(0.8)).toBe("high");
    expect(riskLevel(below(0.95))).toBe("high");
    expect(riskLevel(0.95)).toBe("critical");
    expect(riskLevel(1)).toBe("critical");
    expect(below(0.3)).toBeLessThan(0.3);
    expect(RISK_THRESHOLDS).toEqual({ low: 0.3, medium: 0.6, high: 0.8, critical: 0.95 });
  });

  it("serial - one reason scores exactly its weight; several combine as independent evidence, within [0, 1]", () => {
    for (const r of REASONS) expect(anomalyScore(REASON[r])).toBe(REASON_WEIGHT[r]);
    expect(anomalyScore(0)).toBe(0);
    const both = anomalyScore(REASON.sequential_delta | REASON.repeated_prefix);
    expect(both).toBeCloseTo(1 - (1 - 0.7) * (1 - 0.4), 15);
    expect(riskLevel(both)).toBe("high");
    const all = REASONS.reduce((m, r) => m | REASON[r], 0);
    expect(anomalyScore(all)).toBeLessThanOrEqual(1);
    expect(riskLevel(anomalyScore(all))).toBe("critical");
    // What a single reason means on its own (the table in docs/serial-integrity.md).
    expect(riskLevel(anomalyScore(REASON.duplicate_in_batch))).toBe("critical");
    expect(riskLevel(anomalyScore(REASON.gtin_check_digit))).toBe("high");
    expect(riskLevel(anomalyScore(REASON.new_machine_for_batch))).toBe("high");
    expect(riskLevel(anomalyScore(REASON.low_entropy))).toBe("medium");
    expect(riskLevel(anomalyScore(REASON.long_gap))).toBe("low");
    expect(anomalyTypesOf(REASON.burst | REASON.duplicate_in_batch)).toEqual(["duplicate", "temporal"]);
  });

  it("serial - confidence: 1 for exact checks, 1 − filter rate for filter duplicates, readiness for statistics", () => {
    expect(confidenceLevel(REASON.gtin_check_digit, 0.1, 0)).toBe(1);
    expect(confidenceLevel(REASON.duplicate_across_batches, 0.1, 1e-6)).toBe(1 - 1e-6);
    expect(confidenceLevel(REASON.low_entropy, 0.4, 0)).toBe(0.4);
    expect(confidenceLevel(REASON.low_entropy | REASON.sequential_delta, 0.4, 0)).toBe(1);
    expect(confidenceLevel(0, 0.25, 0)).toBe(0.25);
    expect(confidenceLevel(0, Number.NaN, 0)).toBe(0);
  });
});

describe("serial - duplicate filter", () => {
  it("serial - the split block Bloom filter's measured false-positive rate matches the stated one", () => {
    for (const [capacity, rate, queries] of [
      [200_000, 1e-2, 200_000],
      [300_000, 1e-3, 1_000_000],
    ] as const) {
      const f = new SplitBlockBloomFilter(capacity, rate);
      for (let i = 0; i < capacity; i++) f.testAndAdd(`09506000134352\u0000K${i}`);
      expect(f.falsePositiveRate()).toBeCloseTo(rate, 6);
      let hits = 0;
      for (let i = 0; i < queries; i++) if (f.has(`09506000134352\u0000Q${i}`)) hits++;
      const measured = hits / queries;
      const sd = Math.sqrt((rate * (1 - rate)) / queries);
      printFigures(
        `serial filter: stated ${rate}, measured ${measured.toExponential(3)} (${hits}/${queries}), ${((f.bytes * 8) / capacity).toFixed(1)} bits per key`,
      );
      expect(Math.abs(measured - rate)).toBeLessThanOrEqual(5 * sd + 0.05 * rate);
      // Everything added is found.
      for (let i = 0; i < capacity; i += 997) expect(f.has(`09506000134352\u0000K${i}`)).toBe(true);
    }
  });

  it("serial - the load for a rate inverts the rate formula", () => {
    for (const p of [1e-2, 1e-4, 1e-6]) expect(blockedFalsePositiveRate(loadForRate(p)) / p).toBeCloseTo(1, 6);
    expect(blockedFalsePositiveRate(0)).toBe(0);
  });
});

describe("serial - exact serial set", () => {
  it("serial - stays exact when hashes collide, and grows", () => {
    const set = new SerialSet(16);
    expect(set.testAndAdd(7, 9, "A")).toBe(false);
    expect(set.testAndAdd(7, 9, "B")).toBe(false);
    expect(set.testAndAdd(7, 9, "A")).toBe(true);
    expect(set.testAndAdd(7, 9, "B")).toBe(true);
    for (let i = 0; i < 10_000; i++) expect(set.testAndAdd(i * 2654435761, i, `S${i}`)).toBe(false);
    for (let i = 0; i < 10_000; i += 101) expect(set.testAndAdd(i * 2654435761, i, `S${i}`)).toBe(true);
    expect(set.size).toBe(10_002);
  });

  it("serial - appends without an index until the first lookup, then keeps the index", () => {
    const set = new SerialSet();
    for (let i = 0; i < 5000; i++) set.add(i * 7919, i, `S${i}`);
    expect(set.indexed).toBe(false);
    expect(set.has(42 * 7919, 42, "S42")).toBe(true);
    expect(set.indexed).toBe(true);
    for (let i = 5000; i < 9000; i++) set.add(i * 7919, i, `S${i}`);
    expect(set.has(8999 * 7919, 8999, "S8999")).toBe(true);
    expect(set.has(8999 * 7919, 8999, "T8999")).toBe(false);
  });

  it("serial - a lookup first places the serials appended since the last one (with and without the index growing)", () => {
    const set = new SerialSet();
    const key = (i: number) => [Math.imul(i, 2654435761) >>> 0, i] as const;
    for (let i = 0; i < 100; i++) set.addBytes(...key(i), new TextEncoder().encode(`S${i}`), 0, `S${i}`.length);
    expect(set.hasBytes(...key(7), new TextEncoder().encode("S7"), 0, 2)).toBe(true);
    // 100 → 120 entries: the index of 256 slots stays; 120 → 400: it doubles twice.
    for (const upTo of [120, 400]) {
      for (let i = set.size; i < upTo; i++) set.add(...key(i), `S${i}`);
      for (let i = 0; i < upTo; i++) expect(set.has(...key(i), `S${i}`), `S${i} of ${upTo}`).toBe(true);
      expect(set.has(...key(upTo), `S${upTo}`)).toBe(false);
      // Same hashes, another serial: the hash match is confirmed on the bytes.
      expect(set.has(...key(upTo - 1), `T${upTo - 1}`)).toBe(false);
    }
  });
});

describe("serial - ledger", () => {
  const G = "09506000134352";

  it("serial - duplicates: exact within a batch, through the filter across batches", () => {
    const l = new SerialLedger({ filterCapacity: 10_000 });
    expect(l.check(G, "A1", "B1", "M-1", "OP", 0)).toBe(0);
    expect(l.check(G, "A2", "B1", "M-1", "OP", 1)).toBe(0);
    expect(l.check(G, "A1", "B1", "M-1", "OP", 2)).toBe(REASON.duplicate_in_batch);
    expect(l.check(G, "A2", "B2", "M-1", "OP", 3)).toBe(REASON.duplicate_across_batches);
    // The same serial under another GTIN is another pack.
    expect(l.check("00012345600012", "A1", "B1", "M-1", "OP", 4)).toBe(0);
  });

  it("serial - the filter's generations keep recent keys when the first one fills", () => {
    const l = new SerialLedger({ filterCapacity: 1000, exactSerialsMax: 10 });
    for (let i = 0; i < 1500; i++) l.check(G, `S${i}`, `B${i % 7}`, "M-1", "OP", i);
    expect(l.stats().filterGenerations).toBe(2);
    // S100 went into the first generation, now the previous one; its exact set was dropped long ago.
    expect(l.check(G, "S100", "B9", "M-1", "OP", 2000) & REASON.duplicate_across_batches).not.toBe(0);
    expect(l.statedFalsePositiveRate()).toBeCloseTo(2e-6, 10);
  });

  it("serial - a batch older than both filter generations is still searched exactly", () => {
    const l = new SerialLedger({ filterCapacity: 1000 });
    expect(l.check(G, "FIRST", "B1", "M-1", "OP", 0)).toBe(0);
    for (let i = 0; i < 2500; i++) l.check(G, `O${i}`, "B2", "M-2", "OP", i);
    expect(l.stats().filterGenerations).toBe(3);
    expect(l.check(G, "FIRST", "B1", "M-1", "OP", 3000)).toBe(REASON.duplicate_in_batch);
  });

  it("serial - behaviour: another machine on a batch, a new operator, reopened and closed batches", () => {
    const l = new SerialLedger({ batchCloseAfter: 1000 });
    expect(l.check(G, "A1", "B1", "M-1", "OP-1", 0)).toBe(0);
    expect(l.check(G, "A2", "B1", "M-2", "OP-1", 10)).toBe(REASON.new_machine_for_batch);
    expect(l.check(G, "A3", "B1", "M-2", "OP-1", 20)).toBe(REASON.new_machine_for_batch);
    expect(l.check(G, "A4", "B1", "M-1", "OP-2", 30)).toBe(REASON.new_operator_for_batch);
    expect(l.check(G, "A5", "B1", "M-1", "OP-2", 40)).toBe(0);
    expect(l.check(G, "A6", "B1", "M-1", "OP-2", 1041)).toBe(REASON.batch_reopened);
    expect(l.check(G, "A7", "B1", "M-1", "OP-2", 1050)).toBe(0);
    l.close(G, "B1", "M-1", 1060);
    expect(l.check(G, "A8", "B1", "M-1", "OP-2", 1070)).toBe(REASON.serial_after_batch_close);
    expect(l.check(G, "A9", "B1", "M-1", "OP-2", 1080)).toBe(REASON.serial_after_batch_close);
    expect(l.batch(G, "B1")).toMatchObject({ machines: ["M-1"], operators: ["OP-1", "OP-2"], events: 9, closed: true });
  });

  it("serial - batches and exact sets stay within their limits, and say so", () => {
    const l = new SerialLedger({ batchesMax: 3, exactSerialsMax: 100 });
    for (let b = 0; b < 10; b++) for (let i = 0; i < 60; i++) l.check(G, `S${b}-${i}`, `B${b}`, "M-1", "OP", b * 100 + i);
    const s = l.stats();
    expect(s.batches).toBe(3);
    expect(s.batchesEvicted).toBe(7);
    expect(s.exactSerials).toBeLessThanOrEqual(100);
    expect(s.exactSetsDropped).toBeGreaterThan(0);
    // A duplicate in a batch whose exact set was dropped still shows, through the filter.
    expect(l.check(G, "S9-1", "B9", "M-1", "OP", 2000)).not.toBe(0);
  });
});

describe("serial - quarantine list", () => {
  const entry = (serial: string, score = 0.9) => ({
    serial_number: serial,
    gtin: "09506000134352",
    batch_number: "B1",
    machine_id: "M-1",
    operator_id: "OP",
    production_time: 1,
    row: 3,
    anomaly_score: score,
    confidence_level: 1,
    risk_level: "high" as const,
    anomaly_types: ["duplicate" as const],
    reasons: ["duplicate_in_batch" as const],
    quarantined_at: "2026-01-05T06:00:00.000Z",
  });

  it("serial - merges occurrences per serial, saves, merges with the file and releases", () => {
    const path = join(dir, "q.json");
    const q = new QuarantineList();
    q.add(entry("A1"));
    q.add({ ...entry("A1", 0.97), reasons: ["sequential_delta"], anomaly_types: ["sequence"], risk_level: "critical" });
    q.add(entry("A2"));
    q.saveMerged(path);
    new QuarantineList().saveMerged(path);
    const again = new QuarantineList();
    again.add(entry("A2"));
    again.saveMerged(path);
    const loaded = QuarantineList.load(path);
    expect(loaded.list().map((e) => [e.serial_number, e.occurrences])).toEqual([
      ["A1", 2],
      ["A2", 2],
    ]);
    expect(loaded.list()[0]).toMatchObject({
      risk_level: "critical",
      anomaly_score: 0.97,
      reasons: ["duplicate_in_batch", "sequential_delta"],
    });
    const released = loaded.release("A1", undefined, "checked: re-labelled pack");
    expect(released.map((r) => r.serial_number)).toEqual(["A1"]);
    loaded.write(path);
    const after = JSON.parse(readFileSync(path, "utf8"));
    expect(after.entries.map((e: { serial_number: string }) => e.serial_number)).toEqual(["A2"]);
    expect(after.released[0]).toMatchObject({ serial_number: "A1", release_note: "checked: re-labelled pack" });
  });

  it("serial - a full list counts what it could not keep; a broken file is an InputError", () => {
    const q = new QuarantineList(1);
    q.add(entry("A1"));
    expect(q.add(entry("A2"))).toBeNull();
    expect(q.dropped).toBe(1);
    const bad = join(dir, "bad.json");
    writeFileSync(bad, '{"entries": 3}');
    expect(() => QuarantineList.load(bad)).toThrow(InputError);
  });
});
