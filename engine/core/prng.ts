/**
 * The one seeded pseudo-random generator of linewatch: sfc32 seeded through splitmix32, with
 * uniform, integer, normal and exponential draws. The plant and serial simulators, offline
 * training (iforest, RUL), the benches and the tests all draw from it, so a seed means the
 * same thing everywhere and the same numbers on every run and machine.
 *
 * Why sfc32 (Chris Doty-Humphrey's Small Fast Counting generator, PractRand, public domain):
 * 128-bit state with a counter (no short cycles), passes PractRand and BigCrush, and is four
 * 32-bit adds/shifts per draw. Its state is four int32 words, so a hot loop can keep many
 * independent streams side by side in one Int32Array ({@link seedSfc32At}, {@link uniformAt},
 * {@link normalAt}); everything else uses the {@link SeededRandom} class over the same functions.
 * It is the plant simulator's generator: keeping it kept every simulator output bit for bit.
 */

const TWO_POW_32 = 4294967296;

/** MurmurHash3 fmix32 finaliser (Austin Appleby, public domain). Returns a signed 32-bit value. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) | 0;
}

/**
 * A 32-bit stream key from a seed (any safe integer; both 32-bit halves count) and the stream's
 * coordinates (purpose, a, b): distinct coordinates give independent streams of one seed.
 */
export function streamKey(seed: number, purpose = 0, a = 0, b = 0): number {
  const lo = seed | 0;
  const hi = Math.floor(seed / TWO_POW_32) | 0;
  let h = fmix32((lo + 0x9e3779b9) | 0);
  for (const v of [hi, purpose, a, b]) h = fmix32((h ^ Math.imul(v ^ 0x27d4eb2f, 0x165667b1)) + 0x9e3779b9);
  return h;
}

/**
 * Seeds the 4 sfc32 words at `state[o..o+3]` with splitmix32 (a Weyl sequence through fmix32)
 * and discards 12 outputs, as PractRand's author recommends for sfc32.
 */
export function seedSfc32At(state: Int32Array, o: number, key: number): void {
  let x = key;
  for (let i = 0; i < 4; i++) {
    x = (x + 0x9e3779b9) | 0;
    state[o + i] = fmix32(x);
  }
  for (let i = 0; i < 12; i++) sfc32At(state, o);
}

/** One sfc32 step on the 4 words at `s[o..o+3]`. Returns a signed 32-bit value. */
export function sfc32At(s: Int32Array, o: number): number {
  const a = s[o];
  const b = s[o + 1];
  const c = s[o + 2];
  const d = s[o + 3];
  const t = (((a + b) | 0) + d) | 0;
  s[o] = b ^ (b >>> 9);
  s[o + 1] = (c + (c << 3)) | 0;
  s[o + 2] = (((c << 21) | (c >>> 11)) + t) | 0;
  s[o + 3] = (d + 1) | 0;
  return t;
}

/** Uniform in [0, 1) with 32 bits of resolution. */
export function uniformAt(s: Int32Array, o: number): number {
  return (sfc32At(s, o) >>> 0) / TWO_POW_32;
}

/**
 * Standard normal by Marsaglia's polar method (Marsaglia & Bray 1964). The second variate of
 * each pair is kept per stream `k` in `spare`, so the sequence per stream does not depend on
 * how the caller chunks its draws.
 */
export function normalAt(s: Int32Array, o: number, k: number, spare: Float64Array, hasSpare: Uint8Array): number {
  if (hasSpare[k] === 1) {
    hasSpare[k] = 0;
    return spare[k];
  }
  let u: number;
  let v: number;
  let q: number;
  do {
    u = 2 * uniformAt(s, o) - 1;
    v = 2 * uniformAt(s, o) - 1;
    q = u * u + v * v;
  } while (q >= 1 || q === 0);
  const f = Math.sqrt((-2 * Math.log(q)) / q);
  spare[k] = v * f;
  hasSpare[k] = 1;
  return u * f;
}

/** One sfc32 stream with its own state. `new SeededRandom(seed)`, or a stream key from {@link streamKey}. */
export class SeededRandom {
  private readonly s = new Int32Array(4);
  private readonly spare = new Float64Array(1);
  private readonly hasSpare = new Uint8Array(1);

  /** `key`: a 32-bit seed or stream key (only its low 32 bits count; use {@link streamKey} for wider seeds). */
  constructor(key: number) {
    seedSfc32At(this.s, 0, key | 0);
  }

  /** 32 random bits, unsigned. */
  uint32(): number {
    return sfc32At(this.s, 0) >>> 0;
  }

  /** Uniform in [0, 1), 32 bits of resolution. */
  next(): number {
    return uniformAt(this.s, 0);
  }

  /** Uniform integer in [0, n), n ≥ 1. */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Uniform integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Standard normal (polar method, see {@link normalAt}). */
  normal(): number {
    return normalAt(this.s, 0, 0, this.spare, this.hasSpare);
  }

  /** Exponential with mean 1 (inversion). */
  exponential(): number {
    return -Math.log(1 - this.next());
  }

  /** Index of the first cumulative probability above a uniform draw. */
  pick(cumulative: readonly number[]): number {
    const u = this.next();
    for (let i = 0; i < cumulative.length; i++) if (u < cumulative[i]) return i;
    return cumulative.length - 1;
  }

  /** Fisher–Yates shuffle in place. */
  shuffle(a: { length: number; [i: number]: number }): void {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.below(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
  }
}
