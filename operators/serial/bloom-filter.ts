/**
 * A split block Bloom filter (Putze, Sanders, Singler, "Cache-, hash- and space-efficient Bloom
 * filters", WEA 2007; the form Apache Parquet specifies in BloomFilter.md, Apache-2.0): each key
 * sets one bit in each of the 8 32-bit words of one 256-bit block, so a lookup touches one cache
 * line. The salts are Parquet's.
 *
 * False-positive rate. With n keys in B blocks, a block holds Poisson(λ = n/B) keys, and a key
 * absent from the filter is reported present when its 8 bits are set in its block:
 *   fp(λ) = Σ_i e^−λ λ^i / i! · (1 − (31/32)^i)^8
 * (each of the i keys in the block sets one of the 32 bits of each word). The filter is sized so
 * that fp(capacity/B) ≤ the requested rate; `falsePositiveRate()` gives fp at the current load.
 * This is higher than a classic Bloom filter of the same size (blocks are unevenly loaded) — the
 * price of one memory access per lookup.
 */
import { ConfigError } from "../../engine/core/web.js";

export const BLOOM_BLOCK_BYTES = 32;
/** Largest filter: 2^27 blocks (4 GiB would not fit an ArrayBuffer comfortably). */
export const BLOOM_BLOCKS_MAX = 1 << 27;
// An Int32Array, not an array: half of the salts are above 2^31, so an array holds them as doubles
// and every Math.imul converted one back to an int32 (the same value: Math.imul takes ToInt32).
const SALT = Int32Array.of(0x47b6137b, 0x44974d91, 0x8824ad5b, 0xa2b7289d, 0x705495c7, 0x2df1424b, 0x9efc4947, 0x5c6bfb31);

export class SplitBlockBloomFilter {
  readonly blocks: number;
  readonly capacity: number;
  readonly targetRate: number;
  private readonly words: Uint32Array;
  private inserted = 0;
  /** Xor of the words {@link touch} last loaded (kept only so that the loads are not optimised away). */
  touchedXor = 0;

  constructor(capacity: number, falsePositiveRate: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new ConfigError("filterCapacity", `must be a positive integer, got ${capacity}`);
    if (!(falsePositiveRate > 0 && falsePositiveRate < 1))
      throw new ConfigError("filterFpRate", `must be in (0, 1), got ${falsePositiveRate}`);
    const blocks = bloomBlocks(capacity, falsePositiveRate);
    if (blocks > BLOOM_BLOCKS_MAX)
      throw new ConfigError(
        "filterCapacity",
        `${capacity} keys at ${falsePositiveRate} need ${blocks} blocks, more than ${BLOOM_BLOCKS_MAX}`,
      );
    this.blocks = blocks;
    this.capacity = capacity;
    this.targetRate = falsePositiveRate;
    this.words = new Uint32Array(blocks * 8);
    // Touch every page now: otherwise the first keys pay the operating system's page faults one
    // random page at a time, in the hot path (measured: ~2× the lookup cost while filling).
    this.words.fill(0);
  }

  /** Bytes of the bit array. */
  get bytes(): number {
    return this.words.byteLength;
  }

  /** Keys added (each distinct call to `add`/`testAndAdd`, duplicates included). */
  get size(): number {
    return this.inserted;
  }

  /** The false-positive rate at the current load. */
  falsePositiveRate(): number {
    return blockedFalsePositiveRate(this.inserted / this.blocks);
  }

  /** Whether `key` was (probably) present; adds it either way. */
  testAndAdd(key: string): boolean {
    const h = hashPair(key, "");
    return this.testAndAddHash(h.h1, h.h2);
  }

  has(key: string): boolean {
    const h = hashPair(key, "");
    return this.hasHash(h.h1, h.h2);
  }

  /** testAndAdd for a key hashed by {@link hashPair}. */
  testAndAddHash(h1: number, h2: number): boolean {
    const words = this.words;
    const base = blockOf(h1, this.blocks) * 8;
    // Every word written, set bit or not (no branch per word): `missing` gathers the bits that were not set.
    let missing = 0;
    for (let i = 0; i < 8; i++) {
      const bit = 1 << (Math.imul(h2, SALT[i]) >>> 27);
      const w = words[base + i];
      missing |= bit & ~w;
      words[base + i] = w | bit;
    }
    this.inserted++;
    return missing === 0;
  }

  /**
   * Loads the first word of the block of each of the first `n` keys (h1 of {@link hashPair}),
   * changing nothing: the loads are independent, so the processor has many in flight at once, and
   * the blocks are then in cache for testAndAddHash / hasHash.
   */
  touch(h1s: Uint32Array, n: number): void {
    const words = this.words;
    const blocks = this.blocks;
    let x = 0;
    for (let i = 0; i < n; i++) x ^= words[blockOf(h1s[i], blocks) * 8];
    // Kept so that the loads are not optimised away.
    this.touchedXor = x;
  }

  /** The bit array (a view, not a copy: valid until the filter changes). */
  bits(): Uint8Array {
    return new Uint8Array(this.words.buffer, this.words.byteOffset, this.words.byteLength);
  }

  /** Puts back the bits and key count of a filter of the same size (a checkpoint's). */
  load(bits: Uint8Array, inserted: number): void {
    if (bits.length !== this.words.byteLength)
      throw new RangeError(`filter of ${this.words.byteLength} bytes cannot load ${bits.length} bytes`);
    if (!Number.isInteger(inserted) || inserted < 0) throw new RangeError(`filter key count ${inserted} is not a count`);
    this.bits().set(bits);
    this.inserted = inserted;
  }

  hasHash(h1: number, h2: number): boolean {
    const words = this.words;
    const base = blockOf(h1, this.blocks) * 8;
    for (let i = 0; i < 8; i++) if ((words[base + i] & (1 << (Math.imul(h2, SALT[i]) >>> 27))) === 0) return false;
    return true;
  }
}

/** The result of the last {@link hashPair} (reused: no object per key). */
const pairHash = { h1: 0, h2: 0 };

/**
 * Two 32-bit hashes of the UTF-16 code units of `key` (then U+0000 and `more` when `more` is not
 * empty): FNV-1a with two different primes and offsets, each finished by MurmurHash3's fmix32 for
 * avalanche. Returns a shared object, valid until the next call.
 */
export function hashPair(key: string, more: string): { readonly h1: number; readonly h2: number } {
  const length = more.length === 0 ? key.length : key.length + 1 + more.length;
  let a = 0x811c9dc5 ^ length;
  let b = 0x9747b28c;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  if (more.length > 0) {
    a = Math.imul(a, 0x01000193);
    b = Math.imul(b, 0x5bd1e995);
    for (let i = 0; i < more.length; i++) {
      const c = more.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995);
    }
  }
  pairHash.h1 = fmix32(a);
  pairHash.h2 = fmix32(b ^ 0x2545f491);
  return pairHash;
}

/**
 * {@link hashPair} of two texts given as bytes of `src` — `key` at `keyAt`, `more` at `moreAt` —
 * each byte taken as one code unit: for ASCII text the same hashes as hashPair of the strings.
 * Returns the same shared object.
 */
export function hashPairBytes(
  src: Uint8Array,
  keyAt: number,
  keyLength: number,
  moreAt: number,
  moreLength: number,
): { readonly h1: number; readonly h2: number } {
  const length = moreLength === 0 ? keyLength : keyLength + 1 + moreLength;
  let a = 0x811c9dc5 ^ length;
  let b = 0x9747b28c;
  for (let i = 0; i < keyLength; i++) {
    const c = src[keyAt + i];
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  if (moreLength > 0) {
    a = Math.imul(a, 0x01000193);
    b = Math.imul(b, 0x5bd1e995);
    for (let i = 0; i < moreLength; i++) {
      const c = src[moreAt + i];
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995);
    }
  }
  pairHash.h1 = fmix32(a);
  pairHash.h2 = fmix32(b ^ 0x2545f491);
  return pairHash;
}

/** Blocks of a filter for `capacity` keys at `falsePositiveRate` (the constructor's size). */
export function bloomBlocks(capacity: number, falsePositiveRate: number): number {
  return Math.ceil(capacity / loadForRate(falsePositiveRate));
}

/** fp at λ keys per block (formula above). */
export function blockedFalsePositiveRate(lambda: number): number {
  if (lambda <= 0) return 0;
  // Σ over i to where the Poisson tail is negligible; terms computed in log space for large λ.
  const top = Math.ceil(lambda + 12 * Math.sqrt(lambda) + 40);
  let sum = 0;
  let logTerm = -lambda;
  for (let i = 0; i <= top; i++) {
    if (i > 0) logTerm += Math.log(lambda) - Math.log(i);
    sum += Math.exp(logTerm) * (1 - (31 / 32) ** i) ** 8;
  }
  return Math.min(1, sum);
}

/** The largest load λ with fp(λ) ≤ rate (fp increases with λ), by bisection. */
export function loadForRate(rate: number): number {
  let lo = 1e-6;
  let hi = 4096;
  for (let k = 0; k < 100; k++) {
    const mid = (lo + hi) / 2;
    if (blockedFalsePositiveRate(mid) <= rate) lo = mid;
    else hi = mid;
  }
  return lo;
}

function blockOf(h: number, blocks: number): number {
  return Math.floor((h / 4294967296) * blocks);
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
