/**
 * ADWIN2: adaptive windowing for a change in the mean of a scalar stream (Bifet & Gavaldà,
 * "Learning from time-changing data with adaptive windowing", SIAM SDM 2007). Beside Page–Hinkley
 * (page-hinkley.ts), it needs no σ and no tuned change size: it keeps the longest recent window
 * in which no split into an older part W₀ and a newer part W₁ has means further apart than
 *
 *   ε_cut = √( (2/m) · σ²_W · ln(2/δ′) ) + (2R / (3m)) · ln(2/δ′),   1/m = 1/n₀ + 1/n₁,  δ′ = δ / ln n
 *
 * (the paper's §3 form, a Bernstein bound, for a variance σ²_W of the window's n readings; n₀, n₁
 * the parts' lengths; R the length of the interval the readings lie in — the paper's are in
 * [0, 1], R = 1), and drops its oldest readings until that holds: a drop is a detected change.
 *
 * ADWIN2 (§4 of the paper) keeps the window as an exponential histogram: row r holds at most M
 * buckets of 2^r readings each (a count, a sum and a sum of squared deviations per bucket); a row
 * that would hold M + 1 merges its two oldest into one bucket of the next row. Splits are tried at
 * bucket boundaries only, so memory and a check are O(M log(n/M)), and a check runs every `clock`
 * readings.
 *
 * Parameters and defaults:
 * - `delta` δ = 10⁻⁴: confidence of a cut. The paper's experiments (and MOA's and River's default)
 *   use 0.002, which raised false changes on stationary N(0, 1) readings (R = 1: 2 of 200 seeded
 *   streams of 5000 readings; with R = 6, 2 in 4·10⁶ readings); 10⁻⁴ raised none in 4·10⁶, and detects a 1σ change 57 readings after it on average (48 at 0.002;
 *   test/drift-adwin.test.ts, docs/drift.md).
 * - `maxBuckets` M = 5 (the paper's): buckets per row; more buckets try more split points.
 * - `clock` = 32: readings between checks (MOA's and River's default); a change is seen at most
 *   clock − 1 readings late.
 * - `minPart` = 5: neither part of a split may be shorter (River's min_window_length), so a few
 *   outliers at the new end cannot cut the window alone.
 * - `minWindow` = 10: no check while the window is shorter (River's grace period).
 * - `range` R = 1: the length of the interval the readings lie in (a score in (0, 1]: 1). The bound
 *   assumes it; readings spread wider than R alarm more often than δ says. For residuals in cycles
 *   pass a range such as 6σ, or divide them by it.
 * The readings must be roughly independent, as for Page–Hinkley (docs/drift.md).
 */
import { ConfigError } from "../../engine/core/mod.js";

export interface AdwinOptions {
  delta: number;
  maxBuckets: number;
  clock: number;
  minPart: number;
  minWindow: number;
  range: number;
}

export const DEFAULT_ADWIN_OPTIONS: Readonly<AdwinOptions> = Object.freeze({
  delta: 1e-4,
  maxBuckets: 5,
  clock: 32,
  minPart: 5,
  minWindow: 10,
  range: 1,
});

/** Rows of buckets: 2^40 readings would need more; a stream that long is not one window. */
const ROWS_MAX = 40;

export interface AdwinChange {
  /** Readings dropped from the old end of the window. */
  dropped: number;
  /** The window's length and mean after the drop. */
  width: number;
  mean: number;
  /** The mean of the dropped readings. */
  droppedMean: number;
}

export class Adwin {
  readonly options: Readonly<AdwinOptions>;
  /** Readings in the window. */
  width = 0;
  /** Readings taken in all. */
  readings = 0;
  /** Non-finite readings refused (counted, not taken). */
  skipped = 0;
  private total = 0;
  /** Sum of squared deviations from the window's mean. */
  private m2 = 0;
  /** Per row: bucket count, then sums and squared-deviation sums, oldest first. */
  private readonly counts = new Int32Array(ROWS_MAX);
  private readonly sums: Float64Array[];
  private readonly devs: Float64Array[];
  private rows = 0;

  constructor(options: Partial<AdwinOptions> = {}) {
    this.options = Object.freeze(validateAdwin({ ...DEFAULT_ADWIN_OPTIONS, ...options }));
    const slots = this.options.maxBuckets + 1;
    this.sums = Array.from({ length: ROWS_MAX }, () => new Float64Array(slots));
    this.devs = Array.from({ length: ROWS_MAX }, () => new Float64Array(slots));
  }

  /** The window's mean (NaN while empty) and variance (population). */
  get mean(): number {
    return this.total / this.width;
  }

  get variance(): number {
    return this.width > 0 ? this.m2 / this.width : NaN;
  }

  /** Buckets held: O(M log(n/M)). */
  get buckets(): number {
    let b = 0;
    for (let r = 0; r < this.rows; r++) b += this.counts[r];
    return b;
  }

  /** Takes one reading; returns the change it revealed (old readings dropped), or null. */
  update(x: number): AdwinChange | null {
    if (!Number.isFinite(x)) {
      this.skipped++;
      return null;
    }
    this.readings++;
    this.insert(x);
    if (this.readings % this.options.clock !== 0 || this.width < this.options.minWindow) return null;
    let dropped = 0;
    let droppedSum = 0;
    for (;;) {
      const cut = this.findCut();
      if (!cut) break;
      const r = this.rows - 1;
      droppedSum += this.sums[r][0];
      dropped += this.dropOldest();
    }
    return dropped === 0 ? null : { dropped, width: this.width, mean: this.mean, droppedMean: droppedSum / dropped };
  }

  /** Empties the window. */
  reset(): void {
    this.width = 0;
    this.total = 0;
    this.m2 = 0;
    this.counts.fill(0);
    this.rows = 0;
  }

  private insert(x: number): void {
    const before = this.width === 0 ? 0 : this.total / this.width;
    this.width++;
    this.total += x;
    this.m2 += (x - before) * (x - this.total / this.width);
    if (this.rows === 0) this.rows = 1;
    this.push(0, x, 0);
    // A full row merges its two oldest buckets into a bucket of the next row (2^(r+1) readings).
    for (let r = 0; this.counts[r] > this.options.maxBuckets; r++) {
      if (r + 1 >= ROWS_MAX) throw new RangeError(`ADWIN window over 2^${ROWS_MAX} readings`);
      const n = 2 ** r;
      const s0 = this.sums[r][0];
      const s1 = this.sums[r][1];
      const d = s0 / n - s1 / n;
      const merged = this.devs[r][0] + this.devs[r][1] + (n * n * d * d) / (2 * n);
      this.shift(r, 2);
      if (r + 1 === this.rows) this.rows++;
      this.push(r + 1, s0 + s1, merged);
    }
  }

  private push(r: number, sum: number, dev: number): void {
    const k = this.counts[r]++;
    this.sums[r][k] = sum;
    this.devs[r][k] = dev;
  }

  /** Removes the `k` oldest buckets of row r. */
  private shift(r: number, k: number): void {
    const n = this.counts[r] - k;
    this.sums[r].copyWithin(0, k, k + n);
    this.devs[r].copyWithin(0, k, k + n);
    this.counts[r] = n;
  }

  /** Drops the oldest bucket (row rows − 1, slot 0); returns its reading count. */
  private dropOldest(): number {
    const r = this.rows - 1;
    const n = 2 ** r;
    const sum = this.sums[r][0];
    const dev = this.devs[r][0];
    const rest = this.width - n;
    const restTotal = this.total - sum;
    // Chan et al.'s pairwise update, backwards: m2 = m2_rest + dev + n·rest/(n+rest)·(mean_b − mean_rest)².
    const d = rest > 0 ? sum / n - restTotal / rest : 0;
    this.m2 = rest > 0 ? Math.max(0, this.m2 - dev - ((n * rest) / (n + rest)) * d * d) : 0;
    this.width = rest;
    this.total = restTotal;
    this.shift(r, 1);
    while (this.rows > 0 && this.counts[this.rows - 1] === 0) this.rows--;
    return n;
  }

  /** Whether some split at a bucket boundary, oldest part first, breaks ε_cut. */
  private findCut(): boolean {
    const { minPart, delta, range } = this.options;
    const n = this.width;
    const variance = this.m2 / n;
    const lnTerm = Math.log((2 * Math.log(n)) / delta);
    let n0 = 0;
    let u0 = 0;
    for (let r = this.rows - 1; r >= 0; r--) {
      const size = 2 ** r;
      for (let k = 0; k < this.counts[r]; k++) {
        n0 += size;
        u0 += this.sums[r][k];
        const n1 = n - n0;
        if (n1 <= 0) return false;
        if (n0 < minPart || n1 < minPart) continue;
        const invM = 1 / n0 + 1 / n1;
        const epsilon = Math.sqrt(2 * invM * variance * lnTerm) + ((2 * range) / 3) * invM * lnTerm;
        if (Math.abs(u0 / n0 - (this.total - u0) / n1) > epsilon) return true;
      }
    }
    return false;
  }
}

export function validateAdwin(o: AdwinOptions): AdwinOptions {
  if (!(o.delta > 0 && o.delta < 1)) throw new ConfigError("delta", `must be in (0, 1), got ${o.delta}`);
  const int = (name: string, v: number, min: number, max: number) => {
    if (!Number.isInteger(v) || v < min || v > max) throw new ConfigError(name, `must be an integer in ${min}..${max}, got ${v}`);
  };
  int("maxBuckets", o.maxBuckets, 2, 1000);
  int("clock", o.clock, 1, 1_000_000);
  int("minPart", o.minPart, 1, 1_000_000);
  int("minWindow", o.minWindow, 2, 1_000_000);
  if (!(o.range > 0 && Number.isFinite(o.range))) throw new ConfigError("range", `must be > 0, got ${o.range}`);
  return o;
}
