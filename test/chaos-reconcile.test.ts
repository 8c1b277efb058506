/**
 * The chaos harness's reconciliation (engine/jobs/chaos/reconcile.ts) on hand-made ledgers: a
 * lost record, a duplicated one and a row never acknowledged are each counted where they belong,
 * and a clean ledger counts nothing.
 */
import { describe, expect, it } from "vitest";
import { diffCount, diffKeyedRows, reconcileSequences, sequenceRange } from "../engine/jobs/chaos/mod.js";

describe("chaos reconciliation", () => {
  it("counts a lost record, a duplicated one and an unexpected row", () => {
    // Acknowledged 1..6; 3 has no row, 5 has two (a row FINAL did not collapse), 9 was never acknowledged.
    const rows = new Map([
      [1, 1],
      [2, 1],
      [4, 1],
      [5, 2],
      [6, 1],
      [9, 1],
    ]);
    expect(reconcileSequences(sequenceRange(6), rows)).toEqual({
      expected: 6,
      found: 5,
      lost: 1,
      duplicated: 1,
      unexpected: 1,
      lostSample: [3],
      duplicatedSample: [5],
    });
  });

  it("a ledger where each acknowledged record has one row counts nothing", () => {
    const rows = new Map([...sequenceRange(1000)].map((s): [number, number] => [s, 1]));
    const r = reconcileSequences(sequenceRange(1000), rows);
    expect([r.expected, r.found, r.lost, r.duplicated, r.unexpected]).toEqual([1000, 1000, 0, 0, 0]);
  });

  it("a sequence acknowledged twice (a repeated expectation) is expected once", () => {
    const r = reconcileSequences(
      [1, 2, 2, 3],
      new Map([
        [1, 1],
        [2, 1],
        [3, 3],
      ]),
    );
    expect([r.expected, r.lost, r.duplicated]).toEqual([3, 0, 2]);
  });

  it("row sets: missing, extra and differing rows under the same key", () => {
    const want = new Map([
      ["a", "1"],
      ["b", "2"],
      ["c", "3"],
    ]);
    const got = new Map([
      ["a", "1"],
      ["c", "30"],
      ["d", "4"],
    ]);
    const d = diffKeyedRows(want, got);
    expect([d.missing, d.extra, d.differing, diffCount(d)]).toEqual([1, 1, 1, 3]);
    expect(d.sample).toEqual(["missing b", "c: want 3 got 30", "extra d"]);
    expect(diffCount(diffKeyedRows(want, new Map(want)))).toBe(0);
  });
});
