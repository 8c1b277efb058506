/**
 * Numbers for NDJSON output: 15 significant digits (DBL_DIG, the digits a double always
 * carries exactly), trailing zeros removed. `Number#toPrecision` is about 3× faster here than
 * the shortest round-trip form of `String(x)`, which dominated replay's time; 15 digits keep a
 * relative error below 5e-15, far inside what any statistic here is accurate to.
 */
export function formatStatistic(v: number): string {
  if (!Number.isFinite(v)) return "null";
  const s = v.toPrecision(15);
  if (s.indexOf("e") >= 0 || s.indexOf(".") < 0) return s;
  let end = s.length;
  while (s.charCodeAt(end - 1) === 48) end--;
  if (s.charCodeAt(end - 1) === 46) end--;
  return end === s.length ? s : s.slice(0, end);
}

/** The most bytes {@link writeStatistic} writes: "-0.00000" + 15 digits, or an exponent form (−d.(14 d)e−308). */
export const STATISTIC_BYTES_MAX = 24;

/** 10^k, k = 0 … 22: exact doubles (5^22 < 2^53), so x · 10^k is one rounding. */
const POW10 = Array.from({ length: 23 }, (_, k) => Number(`1e${k}`));
/** Veltkamp split of each 10^k (Dekker 1971): hi + lo = 10^k, each with at most 26 significant bits. */
const POW10_HI = POW10.map((p) => splitHigh(p));
const POW10_LO = POW10.map((p, k) => p - POW10_HI[k]);
/** 10^(i − 6), i = 0 … 21: the decades of fixed notation (below 1 the nearest doubles, so only a guess there). */
const DECADES = Array.from({ length: 22 }, (_, i) => Number(`1e${i - 6}`));
const E15 = 1e15;
const E14 = 1e14;
/** "0000" … "9999" as ASCII, four bytes each (40 KB: fewer dependent divisions per number than pairs). */
const QUADS = Uint8Array.from({ length: 40_000 }, (_, i) => 48 + (Math.floor((i >> 2) / 10 ** (3 - (i & 3))) % 10));
/** A double's bits: the high word holds the binary exponent (index 1 on a little-endian machine). */
const BITS = new Float64Array(1);
const WORDS = new Uint32Array(BITS.buffer);
const HIGH = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0;
const LOG10_2 = 0.3010299956639812;

/** Scratch for {@link writeStatistic}'s value. */
const ONE = new Float64Array(1);

/** {@link writeStatisticAt} of one value. */
export function writeStatistic(out: Uint8Array, at: number, v: number): number {
  ONE[0] = v;
  return writeStatisticAt(out, at, ONE, 0);
}

/**
 * Writes {@link formatStatistic}(from[index]) as ASCII into `out` at `at` and returns the end: the
 * same bytes, without the string. The caller leaves {@link STATISTIC_BYTES_MAX} bytes of room. The
 * value is read from an array, and no helper takes or returns one, because a double crossing a
 * call that V8 does not inline is boxed: a heap object per number, which cost more than the digits.
 *
 * How: for 1e-6 ≤ |v| < 1e15 (fixed notation in toPrecision(15)) with decade e, n = |v| · 10^k,
 * k = 14 − e, rounded is the 15-digit integer. The product p = fl(|v| · 10^k) is off from the
 * exact one by err (computed exactly by Dekker's TwoProduct), |err| ≤ ulp(p)/2, while p's
 * fraction is a multiple of ulp(p): so p's fraction alone decides the rounding, except when it is
 * exactly one half, where err's sign does — and a true tie (err = 0) rounds up, as toPrecision
 * does (ECMA-262 Number.prototype.toPrecision: "pick the larger n"). The decade comes from the
 * binary exponent and one comparison with a power of ten, and is checked on n itself (below 1
 * those powers are not exact doubles). Every other value (exponent notation) takes
 * formatStatistic itself.
 */
export function writeStatisticAt(out: Uint8Array, at: number, from: Float64Array, index: number): number {
  const v = from[index];
  if (v === 0) {
    out[at] = 48; // toPrecision(15) of ±0 is "0.00000000000000", trimmed "0"
    return at + 1;
  }
  const x = v < 0 ? -v : v;
  if (!(x >= 1e-6 && x < E15)) return writeAscii(out, at, formatStatistic(v));
  const k = digits15(from, index);
  const n = DIGITS[0];
  const e = 14 - k;
  if (e < -6 || e > 14 || !(n >= E14 && n < E15)) return writeAscii(out, at, formatStatistic(v));
  if (v < 0) out[at++] = 45;
  // Halves below 2^30 (small integers, not boxed): 7 digits above, 8 below. A product, not a
  // quotient (several times the latency); its rounding can leave the split one off, put right here.
  let hi = Math.floor(n * 1e-8);
  let lo = n - hi * 1e8;
  if (lo < 0) {
    hi--;
    lo += 1e8;
  } else if (lo >= 1e8) {
    hi++;
    lo -= 1e8;
  }
  if (e >= 0) {
    // The digits one byte to the right, then the integer part moved left over the point's place.
    writeDigits15(out, at + 1, hi, lo);
    for (let i = at; i <= at + e; i++) out[i] = out[i + 1];
    if (e === 14) return at + 15;
    const point = at + e + 1;
    out[point] = 46;
    let end = at + 16;
    while (out[end - 1] === 48) end--;
    return end - 1 === point ? point : end;
  }
  // "0." and −e − 1 zeros, then the digits (the first is not 0, so trimming stops before the point).
  const start = at + 1 - e;
  writeDigits15(out, start, hi, lo);
  out[at] = 48;
  out[at + 1] = 46;
  for (let i = at + 2; i < start; i++) out[i] = 48;
  let end = start + 15;
  while (out[end - 1] === 48) end--;
  return end;
}

/**
 * Rounds values[from … to) in place to 15 significant digits: each becomes
 * Number(v.toPrecision(15)), the number {@link formatStatistic}'s text stands for (what the
 * replay prints and the row objects hold, operators/analysis.ts statisticValue). Without the text:
 * the 15-digit integer n and its power k as in {@link writeStatisticAt}, then n / 10^k — both
 * exact doubles (n < 2^53, k ≤ 22), so the quotient is the double nearest n · 10^−k, as parsing
 * the text gives. Non-finite values stay; values outside fixed notation take toPrecision.
 */
export function roundStatistics(values: Float64Array, from: number, to: number): void {
  for (let i = from; i < to; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) continue;
    if (v === 0) {
      values[i] = 0; // −0 too: its text is "0"
      continue;
    }
    const x = v < 0 ? -v : v;
    // Integers below 10^15 have at most 15 digits: already what the text stands for.
    if (x < E15 && Math.floor(x) === x) continue;
    if (!(x >= 1e-6)) {
      values[i] = Number(v.toPrecision(15));
      continue;
    }
    const k = digits15(values, i);
    const n = DIGITS[0];
    if (k < 0 || k > 22 || !(n >= E14 && n < E15)) values[i] = Number(v.toPrecision(15));
    else values[i] = v < 0 ? -(n / POW10[k]) : n / POW10[k];
  }
}

/** digits15's 15-digit integer: a double returned from a call V8 does not inline would be boxed. */
const DIGITS = new Float64Array(1);

/**
 * The 15 significant digits of x = |from[index]|, 1e-6 ≤ x < 1e15: n = x · 10^k rounded as
 * toPrecision(15) rounds, into DIGITS[0]; returns k. The caller checks 10^14 ≤ n < 10^15 (else
 * the decade was not found, and it falls back to toPrecision).
 */
function digits15(from: Float64Array, index: number): number {
  const x = Math.abs(from[index]);
  // 2^b ≤ x < 2^(b+1), so log10 x lies in [b·log10 2, (b + 1)·log10 2): ⌊b·log10 2⌋ or one more.
  BITS[0] = x;
  let e = Math.floor((((WORDS[HIGH] >>> 20) & 0x7ff) - 1023) * LOG10_2);
  if (e < 14 && x >= DECADES[e + 7]) e++;
  let k = 14 - e;
  let p = x * POW10[k];
  let n = Math.floor(p);
  if (p - n > 0.5 || (p - n === 0.5 && tieRoundsUp(from, index, k))) n++;
  if (n >= E15) {
    // Rounding carried into the next decade (or the guess was one low): 10^15 − 0.5 ≤ x · 10^k.
    k--;
    p = x * POW10[k];
    n = Math.floor(p);
    if (p - n > 0.5 || (p - n === 0.5 && tieRoundsUp(from, index, k))) n++;
  } else if (n <= E14 && k < 22) {
    // The guess may be one high: x · 10^(k + 1) rounding below 10^15 means decade e − 1.
    p = x * POW10[k + 1];
    let lower = Math.floor(p);
    if (p - lower > 0.5 || (p - lower === 0.5 && tieRoundsUp(from, index, k + 1))) lower++;
    if (lower < E15) {
      n = lower;
      k++;
    }
  }
  DIGITS[0] = n;
  return k;
}

/**
 * Whether x · 10^k, x = |from[index]|, whose rounded product p has a fraction of exactly one half,
 * is at or above that half: the sign of the TwoProduct error term x · 10^k − p (exact: no overflow
 * or underflow for x in [1e-7, 1e16)). One product in sixteen or so comes here (p's last bits are
 * sixteenths), so x comes as its array and index and p is made again: doubles passed to a call V8
 * does not inline would be boxed.
 */
function tieRoundsUp(from: Float64Array, index: number, k: number): boolean {
  const x = Math.abs(from[index]);
  const p = x * POW10[k];
  const xh = splitHigh(x);
  const xl = x - xh;
  return xh * POW10_HI[k] - p + xh * POW10_LO[k] + xl * POW10_HI[k] + xl * POW10_LO[k] >= 0;
}

/** Writes a non-negative integer below 2^31 (as String(n) would); anything else as String(n). */
export function writeInteger(out: Uint8Array, at: number, n: number): number {
  if (!(n >= 0 && n < 2147483648 && (n | 0) === n)) return writeAscii(out, at, String(n));
  let digits = 1;
  for (let p = 10; p <= n; p *= 10) digits++;
  const end = at + digits;
  for (let i = end - 1; i >= at; i--) {
    const q = (n / 10) | 0;
    out[i] = 48 + n - q * 10;
    n = q;
  }
  return end;
}

/** Writes `text` (ASCII: one byte per UTF-16 unit, as the number texts here are) at `at`; returns the end. */
export function writeAscii(out: Uint8Array, at: number, text: string): number {
  for (let i = 0; i < text.length; i++) out[at++] = text.charCodeAt(i);
  return at;
}

/** Veltkamp's split: the high 26 bits of a (2^27 + 1 = 134217729). */
function splitHigh(a: number): number {
  const c = 134217729 * a;
  return c - (c - a);
}

/** The 15 decimal digits of hi · 10^8 + lo (hi < 10^7, lo < 10^8) as ASCII at out[at … at + 14], four at a time. */
function writeDigits15(out: Uint8Array, at: number, hi: number, lo: number): void {
  const a = (hi / 10_000) | 0; // 3 digits
  const b = (hi - a * 10_000) << 2;
  const c = (lo / 10_000) | 0;
  const d = (lo - c * 10_000) << 2;
  const q = (a << 2) + 1;
  const cc = c << 2;
  out[at] = QUADS[q];
  out[at + 1] = QUADS[q + 1];
  out[at + 2] = QUADS[q + 2];
  out[at + 3] = QUADS[b];
  out[at + 4] = QUADS[b + 1];
  out[at + 5] = QUADS[b + 2];
  out[at + 6] = QUADS[b + 3];
  out[at + 7] = QUADS[cc];
  out[at + 8] = QUADS[cc + 1];
  out[at + 9] = QUADS[cc + 2];
  out[at + 10] = QUADS[cc + 3];
  out[at + 11] = QUADS[d];
  out[at + 12] = QUADS[d + 1];
  out[at + 13] = QUADS[d + 2];
  out[at + 14] = QUADS[d + 3];
}
