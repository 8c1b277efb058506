/**
 * Plain TypeScript reference for kernels/rolling.ts, written from the contract, not from the
 * kernel: every output row is recomputed from the whole window, from scratch, with two-pass
 * formulas. It is slow on purpose (O(window) per record) and keeps no running sums, so none of
 * the kernel's incremental shortcuts (Welford updates, deques, periodic recomputes) can hide
 * a shared mistake.
 *
 * Contract (one instance = one key):
 * - mode 0, count window N = cap: the window is the last N records; slope is on record index
 *   (0, 1, 2, … per key).
 * - mode 1, time window D = span: records kept in arrival order; tMax = largest time seen so far
 *   (this record included). Before the record is appended, records are evicted from the oldest
 *   end while oldest.t ≤ tMax − D; then, if `cap` records remain, the oldest is evicted too and
 *   the row's flags = 1 (truncated). Slope is on (t − t_first_of_key) / timeScale.
 * - Row (ROLLING_OUT_FIELDS f64, NaN = undefined): count, mean, std (sample, n − 1; NaN when
 *   n < 2), std_pop (0 when n = 1), min, max, slope (NaN when n < 2 or all slope-times equal),
 *   ewma over every record of the key (ewma_0 = x_0, ewma_i = ewma_{i−1} + α(x_i − ewma_{i−1})),
 *   z = (x_newest − mean) / std (NaN when std is NaN or 0), flags.
 *
 * Numerics. Sums are Neumaier's compensated sums (Neumaier 1974, "Rundungsfehleranalyse einiger
 * Verfahren zur Summation endlicher Summen", ZAMM 54), so Σx of 1e12 and 1e-6 mixed keeps the
 * small terms. Second moments use the corrected two-pass formula
 *   M2 = Σ(x − x̄)² − (Σ(x − x̄))² / n
 * (Chan, Golub & LeVeque 1983, "Algorithms for computing the sample variance", eq. 1.7), whose
 * correction term removes the error of the rounded mean, and the co-moment likewise
 *   Cux = Σ(u − ū)(x − x̄) − Σ(u − ū)·Σ(x − x̄) / n.
 * The mean is clamped into [min, max] (where the exact mean lies), which also makes an all-equal
 * window give mean = that value, then x − x̄ = 0 and std = std_pop = 0 exactly.
 */

/** Kernel configuration of one key, as passed to `rollingInit`. */
export interface RollingReferenceOptions {
  /** 0 = count window (the last `cap` records), 1 = time window of duration `span`. */
  mode: 0 | 1;
  /** Count window length (mode 0) or the most records a time window holds (mode 1). */
  cap: number;
  /** Time window duration in input time units (mode 1; ignored in mode 0). */
  span: number;
  /** EWMA smoothing factor. */
  alpha: number;
  /** Divisor from input time units to slope time units (1000: epoch ms → s). */
  timeScale: number;
}

/** f64 per output row, in the kernel's order. */
export const REFERENCE_OUT_FIELDS = 10;
/** Column indices of an output row. */
export const COL = {
  count: 0,
  mean: 1,
  std: 2,
  stdPop: 3,
  min: 4,
  max: 5,
  slope: 6,
  ewma: 7,
  z: 8,
  flags: 9,
} as const;
/** flags value: a time window was at capacity and lost its oldest record. */
export const REFERENCE_FLAG_TRUNCATED = 1;

export class RollingReference {
  private readonly opts: RollingReferenceOptions;
  /** Window contents, oldest first. */
  private readonly times: number[] = [];
  private readonly values: number[] = [];
  /** Slope-time of each window record: record index (mode 0) or (t − t0) / timeScale (mode 1). */
  private readonly slopeTimes: number[] = [];
  private seen = 0;
  private t0 = 0;
  private tMax = -Infinity;
  private ewma = NaN;
  private uStdPop = NaN;

  constructor(opts: RollingReferenceOptions) {
    if (opts.mode !== 0 && opts.mode !== 1) throw new RangeError(`mode must be 0 or 1, got ${String(opts.mode)}`);
    if (!Number.isInteger(opts.cap) || opts.cap < 1) throw new RangeError(`cap must be a positive integer, got ${opts.cap}`);
    this.opts = { ...opts };
  }

  /** Number of records the window holds now. */
  get windowLength(): number {
    return this.values.length;
  }

  /**
   * Population standard deviation of the window's slope-times as of the last `push` (0 when the
   * slope is undefined, NaN before the first push): the spread a slope is measured over, which
   * tests use to scale slope tolerances.
   */
  get slopeTimeStdPop(): number {
    return this.uStdPop;
  }

  /** Feeds one record of this key and returns its output row. */
  push(t: number, x: number): Float64Array {
    const flags = this.enter(t, x);
    return this.row(x, flags);
  }

  /**
   * Feeds one record without computing its row. Rows do not depend on earlier rows (each is
   * recomputed from the window), so a long warm-up can be skipped through and the rows after it
   * are exactly what `push` would have given.
   */
  skip(t: number, x: number): void {
    this.enter(t, x);
  }

  /** Updates the EWMA and the window for one record; returns the row's flags. */
  private enter(t: number, x: number): number {
    const { mode, cap, span, alpha, timeScale } = this.opts;
    let flags = 0;
    if (this.seen === 0) {
      this.t0 = t;
      this.ewma = x;
    } else {
      this.ewma = this.ewma + alpha * (x - this.ewma);
    }
    if (t > this.tMax) this.tMax = t;
    if (mode === 1) {
      const cutoff = this.tMax - span;
      while (this.times.length > 0 && this.times[0] <= cutoff) this.evictOldest();
    }
    if (this.values.length === cap) {
      if (mode === 1) flags = REFERENCE_FLAG_TRUNCATED;
      this.evictOldest();
    }
    this.times.push(t);
    this.values.push(x);
    this.slopeTimes.push(mode === 0 ? this.seen : (t - this.t0) / timeScale);
    this.seen += 1;
    return flags;
  }

  private evictOldest(): void {
    this.times.shift();
    this.values.shift();
    this.slopeTimes.shift();
  }

  /** The row of the current window, from scratch: pass 1 for extremes and means, pass 2 for moments. */
  private row(x: number, flags: number): Float64Array {
    const xs = this.values;
    const us = this.slopeTimes;
    const n = xs.length;
    let lo = xs[0];
    let hi = xs[0];
    let uLo = us[0];
    let uHi = us[0];
    const sumX = new NeumaierSum();
    const sumU = new NeumaierSum();
    for (let j = 0; j < n; j++) {
      const v = xs[j];
      const u = us[j];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
      if (u < uLo) uLo = u;
      if (u > uHi) uHi = u;
      sumX.add(v);
      sumU.add(u);
    }
    const mean = clamp(sumX.value / n, lo, hi);
    const uMean = clamp(sumU.value / n, uLo, uHi);

    const sumDx = new NeumaierSum();
    const sumDx2 = new NeumaierSum();
    const sumDu = new NeumaierSum();
    const sumDu2 = new NeumaierSum();
    const sumDuDx = new NeumaierSum();
    for (let j = 0; j < n; j++) {
      const dx = xs[j] - mean;
      const du = us[j] - uMean;
      sumDx.add(dx);
      sumDx2.add(dx * dx);
      sumDu.add(du);
      sumDu2.add(du * du);
      sumDuDx.add(du * dx);
    }
    const m2 = Math.max(0, sumDx2.value - (sumDx.value * sumDx.value) / n);
    const std = n < 2 ? NaN : Math.sqrt(m2 / (n - 1));
    const stdPop = Math.sqrt(m2 / n);

    let slope = NaN;
    this.uStdPop = 0;
    if (n >= 2 && uLo !== uHi) {
      const suu = sumDu2.value - (sumDu.value * sumDu.value) / n;
      const sux = sumDuDx.value - (sumDu.value * sumDx.value) / n;
      slope = sux / suu;
      this.uStdPop = Math.sqrt(suu / n);
    }
    const z = std > 0 ? (x - mean) / std : NaN;

    const out = new Float64Array(REFERENCE_OUT_FIELDS);
    out[COL.count] = n;
    out[COL.mean] = mean;
    out[COL.std] = std;
    out[COL.stdPop] = stdPop;
    out[COL.min] = lo;
    out[COL.max] = hi;
    out[COL.slope] = slope;
    out[COL.ewma] = this.ewma;
    out[COL.z] = z;
    out[COL.flags] = flags;
    return out;
  }
}

/**
 * Neumaier's improved Kahan summation: the rounding error of every addition is kept in a second
 * accumulator, whichever operand is larger, so the total is accurate to about one rounding of
 * the exact sum unless n·ε·Σ|x| dominates.
 */
export class NeumaierSum {
  private sum = 0;
  private comp = 0;

  add(v: number): void {
    const t = this.sum + v;
    this.comp += Math.abs(this.sum) >= Math.abs(v) ? this.sum - t + v : v - t + this.sum;
    this.sum = t;
  }

  get value(): number {
    return this.sum + this.comp;
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : Math.min(v, hi);
}
