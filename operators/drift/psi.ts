/**
 * The population stability index of a sliding window of readings against reference histograms.
 *
 *   PSI = Σᵢ (aᵢ − eᵢ) · ln(aᵢ / eᵢ)
 *
 * over the bins i of a feature, aᵢ the window's proportion in bin i, eᵢ the training proportion
 * (reference.ts). It is the symmetrised Kullback–Leibler divergence KL(a‖e) + KL(e‖a) (Jeffreys'
 * J divergence); the reading < 0.1 stable, 0.1–0.25 moderate, > 0.25 major shift is the credit-
 * scoring convention (Siddiqi, "Credit Risk Scorecards", Wiley 2006, ch. 8).
 *
 * Empty bins: ln(a/e) is undefined when a bin is empty on either side, and PSI has no single
 * standard remedy (many tools replace an empty proportion by a constant such as 1e-4, which makes
 * an empty window bin cost 0.1·ln(1000) ≈ 0.69 on its own whatever the window length). Here both
 * sides are smoothed by adding ½ to every bin count — the Krichevsky–Trofimov (Jeffreys-prior)
 * estimator of a multinomial, Krichevsky & Trofimov, IEEE Trans. Inf. Theory 27(2), 1981:
 *   aᵢ = (cᵢ + ½) / (n + k/2),   eᵢ = (Cᵢ + ½) / (N + k/2)
 * with cᵢ of n window readings and Cᵢ of N training rows in k bins. The pull toward uniform fades
 * as 1/n, so a full window's PSI is the textbook value up to O(k/n).
 *
 * Under no drift, n·PSI is approximately χ² with k − 1 degrees of freedom for independent readings
 * and N ≫ n (Yurdakul, "Statistical properties of the population stability index", PhD thesis,
 * Western Michigan University 2018): mean (k − 1)/n. docs/drift.md derives the window length from it.
 *
 * Cost: a reading is one binary search per feature (O(log k)) and two counter updates in a ring
 * buffer of bin indexes; nothing is allocated per reading. Evaluating PSI is O(k) per feature with
 * no logarithm: ln(cᵢ + ½) comes from a table over 0…n, ln eᵢ is precomputed.
 */
import { ConfigError } from "../../engine/core/mod.js";
import { binIndex, type ReferenceHistograms } from "./reference.js";

/** Added to every bin count of both distributions (Krichevsky–Trofimov; see the file comment). */
export const PSI_SMOOTHING = 0.5;
export const PSI_WINDOW_MAX = 1_000_000;
/** Bin indexes held in the ring buffer (window × features bytes) at most: 64 MiB. */
export const PSI_RING_BYTES_MAX = 1 << 26;

/**
 * PSI of one feature from raw counts, smoothed as the file comment says: `actual` counts of a
 * window of `actualTotal` readings against `expected` counts of `expectedTotal` training rows,
 * both over the same k bins. The plain formula, for callers and tests; {@link SlidingPsi} computes
 * the same sum from its counters.
 */
export function psiFromCounts(actual: ArrayLike<number>, expected: ArrayLike<number>, smoothing: number = PSI_SMOOTHING): number {
  const k = expected.length;
  if (actual.length !== k) throw new RangeError(`${actual.length} window bins against ${k} reference bins`);
  let n = 0;
  let m = 0;
  for (let i = 0; i < k; i++) {
    n += actual[i];
    m += expected[i];
  }
  let psi = 0;
  for (let i = 0; i < k; i++) {
    const a = (actual[i] + smoothing) / (n + smoothing * k);
    const e = (expected[i] + smoothing) / (m + smoothing * k);
    psi += (a - e) * Math.log(a / e);
  }
  return psi;
}

/**
 * The last `window` readings of every feature of a model, binned against its reference, with the
 * PSI of each feature over them. A reading is one feature row; the oldest leaves when a new one
 * comes once the window is full.
 */
export class SlidingPsi {
  readonly window: number;
  readonly featureCount: number;
  /** Readings in the window: min(window, readings pushed). */
  filled = 0;
  private readonly edges: readonly Float64Array[];
  /** Per feature: offset of its bins in `counts`, `lnExpected`, `expected`. */
  private readonly binOffset: Int32Array;
  private readonly binCount: Int32Array;
  private readonly counts: Int32Array;
  private readonly expected: Float64Array;
  private readonly lnExpected: Float64Array;
  /** ln(c + ½) for c = 0…window. */
  private readonly lnCount: Float64Array;
  /** Ring of bin indexes, window × features; `head` is the slot the next reading overwrites. */
  private readonly ring: Uint8Array;
  private head = 0;

  constructor(reference: ReferenceHistograms, window: number) {
    const f = reference.features.length;
    if (!Number.isInteger(window) || window < 1 || window > PSI_WINDOW_MAX)
      throw new ConfigError("window", `must be an integer in 1..${PSI_WINDOW_MAX}, got ${window}`);
    if (window * f > PSI_RING_BYTES_MAX)
      throw new ConfigError(
        "window",
        `${window} readings × ${f} features is more than the ${PSI_RING_BYTES_MAX} bin indexes a window holds`,
      );
    this.window = window;
    this.featureCount = f;
    this.edges = reference.features.map((h) => h.edges);
    this.binOffset = new Int32Array(f + 1);
    this.binCount = new Int32Array(f);
    reference.features.forEach((h, j) => {
      this.binCount[j] = h.counts.length;
      this.binOffset[j + 1] = this.binOffset[j] + h.counts.length;
    });
    const bins = this.binOffset[f];
    this.counts = new Int32Array(bins);
    this.expected = new Float64Array(bins);
    this.lnExpected = new Float64Array(bins);
    reference.features.forEach((h, j) => {
      const k = h.counts.length;
      for (let i = 0; i < k; i++) {
        const e = (h.counts[i] + PSI_SMOOTHING) / (reference.rows + PSI_SMOOTHING * k);
        this.expected[this.binOffset[j] + i] = e;
        this.lnExpected[this.binOffset[j] + i] = Math.log(e);
      }
    });
    this.lnCount = Float64Array.from({ length: window + 1 }, (_, c) => Math.log(c + PSI_SMOOTHING));
    this.ring = new Uint8Array(window * f);
  }

  /**
   * Adds the row values[offset … offset + features − 1]; the oldest row leaves a full window.
   * Returns false, changing nothing, when a value is not finite (the caller counts it).
   */
  push(values: ArrayLike<number>, offset = 0): boolean {
    const f = this.featureCount;
    for (let j = 0; j < f; j++) if (!Number.isFinite(values[offset + j])) return false;
    const slot = this.head * f;
    const full = this.filled === this.window;
    for (let j = 0; j < f; j++) {
      const base = this.binOffset[j];
      if (full) this.counts[base + this.ring[slot + j]]--;
      const b = binIndex(this.edges[j], values[offset + j]);
      this.ring[slot + j] = b;
      this.counts[base + b]++;
    }
    this.head = this.head + 1 === this.window ? 0 : this.head + 1;
    if (!full) this.filled++;
    return true;
  }

  /** PSI of feature j over the readings in the window (NaN while it is empty). */
  psi(j: number): number {
    const n = this.filled;
    if (n === 0) return NaN;
    const base = this.binOffset[j];
    const k = this.binCount[j];
    const total = n + PSI_SMOOTHING * k;
    const lnTotal = Math.log(total);
    let psi = 0;
    for (let i = 0; i < k; i++) {
      const c = this.counts[base + i];
      const a = (c + PSI_SMOOTHING) / total;
      psi += (a - this.expected[base + i]) * (this.lnCount[c] - lnTotal - this.lnExpected[base + i]);
    }
    return psi;
  }

  /** PSI of every feature into `out` (length ≥ features). */
  psiAll(out: Float64Array): Float64Array {
    for (let j = 0; j < this.featureCount; j++) out[j] = this.psi(j);
    return out;
  }

  /** The window's count in each bin of feature j (a copy). */
  binCounts(j: number): Int32Array {
    return this.counts.slice(this.binOffset[j], this.binOffset[j + 1]);
  }

  /** Empties the window. */
  clear(): void {
    this.counts.fill(0);
    this.filled = 0;
    this.head = 0;
  }
}

/**
 * The delay a shift should take to be seen: the smallest fraction f of a full window whose expected
 * PSI reaches `threshold`, when the window holds (1 − f) readings with bin proportions `before` and
 * f with `after` (null when even a whole window of `after` stays below). The window side's counts
 * are the proportions scaled to a huge total, so its add-½ smoothing vanishes, as in an expectation;
 * bisection to 2⁻⁶⁰. The monitor then changes level about f · W readings after the shift.
 */
export function mixtureCrossing(
  before: ArrayLike<number>,
  after: ArrayLike<number>,
  referenceCounts: ArrayLike<number>,
  threshold: number,
): number | null {
  const psiAt = (f: number) =>
    psiFromCounts(
      Array.from(before, (b, i) => ((1 - f) * b + f * after[i]) * 1e12),
      referenceCounts,
    );
  if (psiAt(1) < threshold) return null;
  let lo = 0;
  let hi = 1;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (psiAt(mid) < threshold) lo = mid;
    else hi = mid;
  }
  return hi;
}
