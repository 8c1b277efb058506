/**
 * Reconciliation, Jepsen-style: what was acknowledged against what the outputs hold. Pure
 * functions of the two sides, so a hand-made case tests them (test/chaos-reconcile.test.ts).
 */

/** How the rows found compare with the records acknowledged. */
export interface Reconciliation {
  /** Records acknowledged (the sequences expected). */
  expected: number;
  /** Expected sequences with at least one row. */
  found: number;
  /** Expected sequences with no row. */
  lost: number;
  /** Rows beyond the first for a sequence (after FINAL: a row that FINAL did not collapse). */
  duplicated: number;
  /** Rows of sequences never acknowledged. */
  unexpected: number;
  /** Up to 5 lost sequences, then up to 5 duplicated ones, for the report. */
  lostSample: number[];
  duplicatedSample: number[];
}

const SAMPLE = 5;

/**
 * Every expected sequence must have exactly one row: `rows` maps a sequence to the rows holding
 * it (read after FINAL, so a re-insert of the same row collapses and only a row differing in its
 * key counts twice).
 */
export function reconcileSequences(expected: Iterable<number>, rows: ReadonlyMap<number, number>): Reconciliation {
  const out: Reconciliation = { expected: 0, found: 0, lost: 0, duplicated: 0, unexpected: 0, lostSample: [], duplicatedSample: [] };
  const seen = new Set<number>();
  for (const seq of expected) {
    if (seen.has(seq)) continue;
    seen.add(seq);
    out.expected++;
    const n = rows.get(seq) ?? 0;
    if (n === 0) {
      out.lost++;
      if (out.lostSample.length < SAMPLE) out.lostSample.push(seq);
      continue;
    }
    out.found++;
    if (n > 1) {
      out.duplicated += n - 1;
      if (out.duplicatedSample.length < SAMPLE) out.duplicatedSample.push(seq);
    }
  }
  for (const [seq, n] of rows) if (!seen.has(seq)) out.unexpected += n;
  return out;
}

/** Sequences 1..last (a fresh stream's acknowledged records, each stored once under its Nats-Msg-Id). */
export function* sequenceRange(last: number): Generator<number> {
  for (let s = 1; s <= last; s++) yield s;
}

/** How two keyed row sets differ: keys only in one, keys in both whose rows differ (a few named). */
export interface RowDiff {
  missing: number;
  extra: number;
  differing: number;
  sample: string[];
}

/** Compares `got` with `want`, row by row under the same key (rows as canonical strings). */
export function diffKeyedRows(want: ReadonlyMap<string, string>, got: ReadonlyMap<string, string>): RowDiff {
  const out: RowDiff = { missing: 0, extra: 0, differing: 0, sample: [] };
  const note = (s: string): void => void (out.sample.length < SAMPLE && out.sample.push(s));
  for (const [key, row] of want) {
    const g = got.get(key);
    if (g === undefined) {
      out.missing++;
      note(`missing ${key}`);
    } else if (g !== row) {
      out.differing++;
      note(`${key}: want ${row} got ${g}`);
    }
  }
  for (const key of got.keys()) {
    if (want.has(key)) continue;
    out.extra++;
    note(`extra ${key}`);
  }
  return out;
}

/** Total of a diff's counts: 0 when the two sets are equal. */
export function diffCount(d: RowDiff): number {
  return d.missing + d.extra + d.differing;
}
