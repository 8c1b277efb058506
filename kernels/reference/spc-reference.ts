/**
 * Plain TypeScript reference for kernels/spc.ts, written from the definitions, not from
 * the kernel: at every record the whole history (the key's last 32 values) is zoned afresh with
 * the current limits and every rule is checked by scanning its window; the baseline keeps its
 * values and computes the limits from them when it is complete. No run counters, no ring, no
 * incremental re-zoning.
 *
 * Contract (one instance = one key):
 * - Baseline: the first `baselineN` non-NaN records (or the next n after rebaseline(n)).
 *   cl = mean by Welford's recurrence m_j = m_{j−1} + (x_j − m_{j−1})/j; sigma = √(M2/(N − 1)),
 *   M2 by Welford's M2_j = M2_{j−1} + (x_j − m_{j−1})(x_j − m_j) ("std"), or
 *   (Σ_{j≥1} |x_j − x_{j−1}|)/(N − 1)/1.128 summed in record order ("mr"). The limits take effect
 *   at the record after the one completing the baseline. These are the recurrences the issue
 *   pins ("computed robustly: Welford"); following them exactly makes the reference's limits the
 *   same doubles as the kernel's, so zones and masks can be compared exactly even on data that
 *   sits on the centre line or a threshold. Their accuracy is checked separately, against exact
 *   arithmetic, in the test.
 * - Zone: 0 for NaN or x == cl; ±(1 + number of k ∈ {1, 2, 3} with x > cl + k·σ, resp.
 *   x < cl − k·σ).
 * - Rules over the last m values (the key must have seen m records): see `rules` below; the
 *   moving-range rules (mr_mask) over the last r + 1 values, STEP over the last 3w:
 *   `movingRangeRules`.
 * - CUSUM C± from 0 and EWMA z from cl at every limits change; NaN leaves them unchanged; the EWMA
 *   limits use Math.pow((1 − λ), 2i) with i the EWMA updates since the change. With a ceiling c,
 *   C± = min(c·h·σ, …).
 * - Tracked centre line (trackRecords T > 0): after each non-NaN point with limits, with
 *   ω = 1 − 1/T, e = x − cl winsorized to ±3σ: slope += ((1 − ω)²/16)·e, cl += (1 − ω²)·e + slope
 *   (double exponential smoothing in Holt's error-correction form, the trend gain a sixteenth of
 *   Brown's) — except while the
 *   CUSUM or EWMA alarms of the points stay on one side (C⁺ > C⁻ or the EWMA above cl: above),
 *   for up to trackHold such points in a row: then cl and slope stay as they are. A hold starts
 *   on a first alarm after at least 100 points without one (or since the limits); an alarm that
 *   comes sooner continues the hold it interrupted when on the same side (the count of held
 *   points goes on, quiet points included) and is followed (no hold) until the alarms stop
 *   otherwise. A point is zoned with
 *   the limits in force when it arrives; a limits change re-zones the history (with a fixed
 *   centre line this is the same as zoning the whole history afresh at every record).
 * - Gaps (trackGap > 0 with a tracked line, limits in force): a record more than trackGap after
 *   the key's previous one starts a collection of 50 non-NaN records, each shown against their
 *   running mean with no rule bit, CUSUM/EWMA 0 or at that mean and no alarm; after the 50th the
 *   centre line is their mean (trend 0, charts restarted, history re-zoned), and no hold starts
 *   before 100 quiet records. A limits change cancels it.
 * - A completed baseline whose tied moving ranges exceed tiesMax·(N − 1) is discarded and
 *   collected again; the j-th moving range ties when it is 0 or, from the second on, at most
 *   0.01 × the mean of the moving ranges before it (their sum in record order / (j − 1)) —
 *   unless it is censored: the ties whose reading equals the baseline's minimum C (its minimum
 *   when the tie came) left out, the rest are within tiesMax·(N − 1), and 2 ≤ n_C ≤ 0.9·N readings
 *   equal C. Then μ, σ are the censored normal's maximum likelihood estimates by 200 EM steps
 *   (Dempster, Laird & Rubin 1977) from the Welford mean and √(M2/(N − 1)): with the uncensored
 *   readings' mean x̄ᵤ and sum of squares Sᵤ (all readings' less the n_C at C), c = (C − μ)/σ,
 *   r = φ(c)/Φ(c), μ' = (nᵤx̄ᵤ + n_C(μ − σr))/N, σ'² = (Sᵤ + nᵤ(x̄ᵤ − μ')² + n_C(σ²(1 − cr − r²) +
 *   (μ − σr − μ')²))/N; the limits are (μ̂, σ̂) and every reading x ≤ C (the history's too) is
 *   charted as μ̂ − σ̂·r(ĉ) until the next limits (Steiner & MacKay 2000). Φ and φ from an e^x of
 *   basic arithmetic (`expOf`) as the kernel's.
 */
import type { SpcParams } from "../../operators/spc/mod.js";

export const SPC_REFERENCE_FIELDS = 16;
export const HISTORY_RECORDS = 32;
const HOLD_QUIET = 100;
const RECENTRE_RECORDS = 50;

interface Limits {
  cl: number;
  sigma: number;
}

export class SpcReference {
  private readonly p: SpcParams;
  private limits: Limits | null = null;
  private version = 0;
  /** Non-NaN values of the baseline in progress, or null. */
  private baseline: number[] | null = null;
  private baselineTarget = 0;
  /** The key's last HISTORY_RECORDS values, oldest first, NaN included. */
  private readonly history: number[] = [];
  private cusumPos = 0;
  private cusumNeg = 0;
  private ewma = 0;
  private ewmaUpdates = 0;
  /** Zone of each history value, given when it arrived (re-zoned at a limits change). */
  private readonly zones: number[] = [];
  private slope = 0;
  private held = 0;
  private holdSide = 0;
  /** Side (±1) of the hold before the alarms last stopped; 0: none. */
  private lastHeld = 0;
  private quiet = HOLD_QUIET;
  private lastTime = Number.NaN;
  /** The collection after a gap that restarts a tracked line: records left and their sum. */
  private recentre: { left: number; sum: number } | null = null;
  /** Censoring point of the limits in force and what a reading at or below it is charted as (NaN: none). */
  private censorAt = Number.NaN;
  private cev = Number.NaN;

  constructor(params: SpcParams) {
    this.p = { ...params };
    if (params.baselineN > 0) this.rebaseline(params.baselineN);
  }

  setLimits(cl: number, sigma: number): void {
    this.baseline = null;
    this.censorAt = Number.NaN;
    this.install({ cl, sigma });
  }

  rebaseline(n: number): void {
    this.baseline = [];
    this.baselineTarget = n;
  }

  /** The output row of the next record x at time t (t is read only for the gaps of a tracked line). */
  push(raw: number, t = Number.NaN): Float64Array {
    const x = raw <= this.censorAt ? this.cev : raw;
    if (this.limits !== null && this.p.trackRecords > 0 && this.p.trackGap > 0 && !Number.isNaN(t)) {
      if (!Number.isNaN(this.lastTime) && t - this.lastTime > this.p.trackGap) this.recentre = { left: RECENTRE_RECORDS, sum: 0 };
      this.lastTime = t;
    }
    if (this.limits !== null && this.recentre !== null) return this.recentreRow(x, raw, this.limits, this.recentre);
    this.history.push(x);
    this.zones.push(this.limits === null ? 0 : zoneOf(x, this.limits.cl, this.limits.sigma));
    if (this.history.length > HISTORY_RECORDS) {
      this.history.shift();
      this.zones.shift();
    }
    const row = new Float64Array(SPC_REFERENCE_FIELDS).fill(NaN);
    row[14] = this.version;
    if (this.limits !== null) {
      if (!Number.isNaN(x)) this.updateCharts(x, this.limits);
      this.fillRow(row, this.limits);
      if (!Number.isNaN(x) && this.p.trackRecords > 0) this.track(x, this.limits, signalSide(row));
    }
    this.collect(raw);
    return row;
  }

  /** A record of the collection after a gap: shown against the running mean, judged by nothing. */
  private recentreRow(x: number, raw: number, limits: Limits, r: { left: number; sum: number }): Float64Array {
    if (!Number.isNaN(x)) {
      r.left -= 1;
      r.sum += x;
    }
    const n = RECENTRE_RECORDS - r.left;
    const cl = n > 0 ? r.sum / n : limits.cl;
    const { sigma } = limits;
    this.history.push(x);
    this.zones.push(zoneOf(x, cl, sigma));
    if (this.history.length > HISTORY_RECORDS) {
      this.history.shift();
      this.zones.shift();
    }
    const row = Float64Array.of(
      cl,
      cl + 3 * sigma,
      cl - 3 * sigma,
      sigma,
      this.zones[this.zones.length - 1],
      0,
      0,
      0,
      0,
      0,
      cl,
      cl,
      cl,
      0,
      this.version,
      0,
    );
    if (r.left === 0) {
      this.recentre = null;
      limits.cl = cl;
      this.restartCharts(limits);
      this.quiet = 0;
    }
    this.collect(raw);
    return row;
  }

  /** A baseline in progress takes x (non-NaN); a complete one installs its limits or starts again. */
  private collect(x: number): void {
    if (this.baseline !== null && !Number.isNaN(x)) {
      this.baseline.push(x);
      if (this.baseline.length === this.baselineTarget) {
        const values = this.baseline;
        const ties = tiedRanges(values);
        const tiesMax = this.p.baselineTiesMax * (values.length - 1);
        const censored = ties.all > tiesMax ? censoredLimits(values, ties, tiesMax) : null;
        if (ties.all > tiesMax && censored === null) {
          this.baseline = [];
        } else if (censored !== null) {
          this.baseline = null;
          this.censorAt = censored.at;
          this.cev = censored.cev;
          this.history.forEach((v, j) => {
            if (v <= censored.at) this.history[j] = censored.cev;
          });
          this.install({ cl: censored.cl, sigma: censored.sigma });
        } else {
          this.baseline = null;
          this.censorAt = Number.NaN;
          this.install(baselineLimits(values, this.p.sigmaMethod));
        }
      }
    }
  }

  private install(limits: Limits): void {
    this.limits = limits;
    this.version += 1;
    this.recentre = null;
    this.restartCharts(limits);
    this.quiet = HOLD_QUIET;
  }

  /** CUSUM and EWMA from the start, no trend, no hold, the history zoned with `limits`. */
  private restartCharts(limits: Limits): void {
    this.cusumPos = 0;
    this.cusumNeg = 0;
    this.ewma = limits.cl;
    this.ewmaUpdates = 0;
    this.slope = 0;
    this.held = 0;
    this.holdSide = 0;
    this.lastHeld = 0;
    this.history.forEach((v, j) => {
      this.zones[j] = zoneOf(v, limits.cl, limits.sigma);
    });
  }

  private track(x: number, limits: Limits, signal: number): void {
    this.updateHold(signal);
    if ((this.holdSide === 1 || this.holdSide === -1) && this.held <= this.p.trackHold) return;
    const w = 1 - 1 / this.p.trackRecords;
    const e = Math.min(3 * limits.sigma, Math.max(-3 * limits.sigma, x - limits.cl));
    this.slope = this.slope + (((1 - w) * (1 - w)) / 16) * e;
    limits.cl = limits.cl + (1 - w * w) * e + this.slope;
  }

  private updateHold(signal: number): void {
    const before = this.holdSide;
    if (signal === 0) {
      if (before === 1 || before === -1) this.lastHeld = before;
      this.holdSide = 0;
    } else if (before === 0) {
      if (this.quiet >= HOLD_QUIET) {
        this.holdSide = signal;
        this.held = 0;
      } else this.holdSide = signal === this.lastHeld ? signal : 2;
    } else if (before !== signal) this.holdSide = 2;
    if (this.holdSide === 2) {
      this.held = 0;
      this.lastHeld = 0;
    } else if (this.holdSide !== 0) this.held += 1;
    this.quiet = signal === 0 ? Math.min(this.quiet + 1, HOLD_QUIET) : 0;
  }

  private updateCharts(x: number, { cl, sigma }: Limits): void {
    const K = this.p.cusumK * sigma;
    const cap = this.p.cusumCap > 0 ? this.p.cusumCap * this.p.cusumH * sigma : Number.POSITIVE_INFINITY;
    this.cusumPos = Math.min(cap, Math.max(0, x - (cl + K) + this.cusumPos));
    this.cusumNeg = Math.min(cap, Math.max(0, cl - K - x + this.cusumNeg));
    const lambda = this.p.ewmaLambda;
    this.ewma = lambda * x + (1 - lambda) * this.ewma;
    this.ewmaUpdates += 1;
  }

  private fillRow(row: Float64Array, { cl, sigma }: Limits): void {
    const zones = this.zones;
    const { we, nelson } = rules(this.history, zones, this.p);
    const mr = movingRangeRules(this.history, sigma, this.p);
    const H = this.p.cusumH * sigma;
    const lambda = this.p.ewmaLambda;
    const half = this.p.ewmaL * sigma * Math.sqrt((lambda / (2 - lambda)) * (1 - (1 - lambda) ** (2 * this.ewmaUpdates)));
    row[0] = cl;
    row[1] = cl + 3 * sigma;
    row[2] = cl - 3 * sigma;
    row[3] = sigma;
    row[4] = zones[zones.length - 1];
    row[5] = we;
    row[6] = nelson;
    row[7] = this.cusumPos;
    row[8] = this.cusumNeg;
    row[9] = this.cusumPos > H || this.cusumNeg > H ? 1 : 0;
    row[10] = this.ewma;
    row[11] = cl + half;
    row[12] = cl - half;
    row[13] = this.ewma > cl + half || this.ewma < cl - half ? 1 : 0;
    row[15] = mr;
  }
}

/** Side of a row's CUSUM and EWMA alarms: 1 above, −1 below, 0 none, 2 both. */
function signalSide(row: Float64Array): number {
  const sides = new Set<number>();
  if (row[9] === 1) sides.add(row[7] > row[8] ? 1 : -1);
  if (row[13] === 1) sides.add(row[10] > row[0] ? 1 : -1);
  if (sides.size === 2) return 2;
  return sides.size === 0 ? 0 : [...sides][0];
}

/** Limits from a complete baseline (values in record order, NaN already left out). */
export function baselineLimits(values: readonly number[], method: "std" | "mr"): Limits {
  let mean = 0;
  let m2 = 0;
  values.forEach((x, j) => {
    const before = mean;
    mean = before + (x - before) / (j + 1);
    m2 += (x - before) * (x - mean);
  });
  const n = values.length;
  if (method === "std") return { cl: mean, sigma: Math.sqrt(m2 / (n - 1)) };
  let rangeSum = 0;
  for (let j = 1; j < n; j++) rangeSum += Math.abs(values[j] - values[j - 1]);
  return { cl: mean, sigma: rangeSum / (n - 1) / 1.128 };
}

export function zoneOf(x: number, cl: number, sigma: number): number {
  if (Number.isNaN(x) || x === cl) return 0;
  let beyond = 0;
  for (const k of [1, 2, 3]) {
    if (x > cl ? x > cl + k * sigma : x < cl - k * sigma) beyond += 1;
  }
  return (x > cl ? 1 : -1) * (1 + beyond);
}

/** WE and Nelson masks at the newest value of `values` (zoned as `zones`). */
function rules(values: readonly number[], zones: readonly number[], p: SpcParams): { we: number; nelson: number } {
  const n = zones.length;
  const last = <T>(xs: readonly T[], m: number): readonly T[] => (n >= m ? xs.slice(n - m) : []);
  const full = (m: number): boolean => n >= m;
  const z = zones[n - 1];
  const side = Math.sign(z);

  const n1 = Math.abs(z) === 4;
  // 2 of 3 beyond 2σ (|zone| ≥ 3) on the newest point's side, newest point among them.
  const n5 = full(3) && Math.abs(z) >= 3 && last(zones, 3).filter((q) => Math.sign(q) === side && Math.abs(q) >= 3).length >= 2;
  // 4 of 5 beyond 1σ (|zone| ≥ 2), likewise.
  const n6 = full(5) && Math.abs(z) >= 2 && last(zones, 5).filter((q) => Math.sign(q) === side && Math.abs(q) >= 2).length >= 4;
  const oneSide = (m: number): boolean => full(m) && (last(zones, m).every((q) => q > 0) || last(zones, m).every((q) => q < 0));
  const we4 = oneSide(p.we4Run);
  const n2 = oneSide(p.n2Run);
  const steps = (m: number): number[] | null => {
    const w = last(values, m);
    if (!full(m) || w.some((v) => Number.isNaN(v))) return null;
    return w.slice(1).map((v, j) => (v > w[j] ? 1 : v < w[j] ? -1 : 0));
  };
  const s3 = steps(p.n3Run);
  const n3 = s3 !== null && (s3.every((d) => d === 1) || s3.every((d) => d === -1));
  const s4 = steps(p.n4Run);
  const n4 = s4?.every((d, j) => d !== 0 && (j === 0 || d === -s4[j - 1])) === true;
  const n7 = full(p.n7Run) && last(zones, p.n7Run).every((q) => Math.abs(q) === 1);
  const n8 = full(p.n8Run) && last(zones, p.n8Run).every((q) => Math.abs(q) >= 2);

  return { we: bits([n1, n5, n6, we4]), nelson: bits([n1, n2, n3, n4, n5, n6, n7, n8]) };
}

/** mr_mask at the newest value: JUMP, NOISY (moving ranges beyond 2σ), STUCK (moving ranges of 0). */
function movingRangeRules(values: readonly number[], sigma: number, p: SpcParams): number {
  const n = values.length;
  // The newest r moving ranges, or null when fewer than r + 1 values are kept.
  const ranges = (r: number): number[] | null =>
    n >= r + 1
      ? values
          .slice(n - r - 1)
          .slice(1)
          .map((v, j) => Math.abs(v - values[n - r - 1 + j]))
      : null;
  const jump = (ranges(1)?.[0] ?? Number.NaN) > p.jumpLimit * sigma;
  const noisy = ranges(p.noisyRun)?.every((d) => d > 2 * sigma) === true;
  const stuck = ranges(p.stuckRun)?.every((d) => d === 0) === true;
  return bits([jump, noisy, stuck, stepFires(values, sigma, p)]);
}

/**
 * STEP (stepWindow w > 0): the sums of the newest three windows of w values, each summed newest
 * first, m3 − 2·m2 + m1 = (s3 − 2·s2 + s1)/w beyond stepLimit·σ; NaN among them: no firing.
 */
function stepFires(values: readonly number[], sigma: number, p: SpcParams): boolean {
  const w = p.stepWindow ?? 0;
  const n = values.length;
  if (w <= 0 || n < 3 * w) return false;
  let s3 = 0;
  let s2 = 0;
  let s1 = 0;
  for (let back = 0; back < w; back++) {
    s3 += values[n - 1 - back];
    s2 += values[n - 1 - back - w];
    s1 += values[n - 1 - back - 2 * w];
  }
  return Math.abs((s3 - 2 * s2 + s1) / w) > (p.stepLimit ?? 0) * sigma;
}

function bits(flags: boolean[]): number {
  return flags.reduce((mask, f, i) => mask | (f ? 1 << i : 0), 0);
}

/**
 * Tied moving ranges of a baseline: 0, or from the second on at most 1 % of the mean of those
 * before; `atMinimum`: of them, those whose reading equals the baseline's minimum so far (a new
 * minimum starts that count again); `minimum` and `readingsAtMinimum` of the whole baseline.
 */
function tiedRanges(values: readonly number[]): { all: number; atMinimum: number; minimum: number; readingsAtMinimum: number } {
  let all = 0;
  let atMinimum = 0;
  let sum = 0;
  let minimum = Number.POSITIVE_INFINITY;
  let readingsAtMinimum = 0;
  values.forEach((x, j) => {
    if (x < minimum) {
      minimum = x;
      readingsAtMinimum = 1;
      atMinimum = 0;
    } else if (x === minimum) readingsAtMinimum++;
    if (j === 0) return;
    const range = Math.abs(x - values[j - 1]);
    if (range === 0 || (j > 1 && range <= (0.01 * sum) / (j - 1))) {
      all++;
      if (x === minimum) atMinimum++;
    }
    sum += range;
  });
  return { all, atMinimum, minimum, readingsAtMinimum };
}

/** The censored limits of a baseline with too many ties (see the header), or null when its ties are not censoring. */
function censoredLimits(
  values: readonly number[],
  ties: ReturnType<typeof tiedRanges>,
  tiesMax: number,
): { at: number; cev: number; cl: number; sigma: number } | null {
  const n = values.length;
  const nc = ties.readingsAtMinimum;
  if (ties.all - ties.atMinimum > tiesMax || nc < 2 || nc > 0.9 * n) return null;
  const C = ties.minimum;
  let mean = 0;
  let m2 = 0;
  values.forEach((x, j) => {
    const before = mean;
    mean = before + (x - before) / (j + 1);
    m2 += (x - before) * (x - mean);
  });
  const nu = n - nc;
  const xu = (n * mean - nc * C) / nu;
  const ssu = Math.max(0, m2 + n * (mean - xu) * (mean - xu) - nc * (C - xu) * (C - xu));
  let mu = mean;
  let sigma = Math.sqrt(m2 / (n - 1));
  for (let i = 0; i < 200; i++) {
    const c = (C - mu) / sigma;
    const r = millsBelow(c);
    const e1 = mu - sigma * r;
    const v1 = sigma * sigma * (1 - c * r - r * r);
    const next = (nu * xu + nc * e1) / n;
    const ss = ssu + nu * (xu - next) * (xu - next) + nc * (v1 + (e1 - next) * (e1 - next));
    mu = next;
    sigma = Math.sqrt(ss / n);
  }
  return { at: C, cev: mu - sigma * millsBelow((C - mu) / sigma), cl: mu, sigma };
}

const INV_SQRT_2PI = 0.3989422804014327;
const INV_SQRT_PI = 0.5641895835477563;

/** φ(c)/Φ(c); from x = −c/√2 ≥ 2.5 on, √2·t with t of erfc's continued fraction (the exponentials cancel). */
function millsBelow(c: number): number {
  const x = -c * Math.SQRT1_2;
  if (x >= 2.5) return Math.SQRT2 * erfcFraction(x);
  return (expOf(-0.5 * c * c) * INV_SQRT_2PI) / (0.5 * erfcOf(x));
}

function erfcFraction(x: number): number {
  let t = x;
  for (let n = 120; n >= 1; n--) t = x + n / 2 / t;
  return t;
}

/** erfc as operators/normal.ts, on expOf. */
function erfcOf(x: number): number {
  if (x < 0) return 2 - erfcOf(-x);
  if (x === Number.POSITIVE_INFINITY) return 0;
  if (x < 2.5) {
    let term = x;
    let sum = x;
    const x2 = 2 * x * x;
    for (let n = 1; n < 200 && term > 1e-17 * sum; n++) {
      term *= x2 / (2 * n + 1);
      sum += term;
    }
    return 1 - 2 * INV_SQRT_PI * expOf(-x * x) * sum;
  }
  return (expOf(-x * x) * INV_SQRT_PI) / erfcFraction(x);
}

const f64Bits = new DataView(new ArrayBuffer(8));

/** 2^e for an integer e in [−1022, 1023], from its bits. */
function twoTo(e: number): number {
  f64Bits.setBigInt64(0, BigInt(e + 1023) << 52n);
  return f64Bits.getFloat64(0);
}

/**
 * e^x from basic arithmetic alone, as the kernel's: x = k·ln 2 + r (Cody & Waite), e^r by Taylor
 * to r^14/14! in Horner form, times 2^⌊k/2⌋·2^(k − ⌊k/2⌋).
 */
export function expOf(x: number): number {
  if (x < -708) return 0;
  if (x > 709) return Number.POSITIVE_INFINITY;
  const k = Math.floor(x * Math.LOG2E + 0.5);
  // ln 2 in two parts (Cody & Waite), as the kernel's LN2_HI and LN2_LO.
  const r = x - k * 0.6931471803691238 - k * 1.9082149292705877e-10;
  let p = 1;
  for (let i = 14; i >= 1; i--) p = 1 + (p * r) / i;
  const half = Math.floor(k / 2);
  return p * twoTo(half) * twoTo(k - half);
}
