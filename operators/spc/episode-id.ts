/**
 * Episode ids: 16 hex digits of FNV-1a (64-bit) over `key \0 family \0 openedAt \0 position` —
 * what a restart that re-derives the episode from the same records derives again.
 *
 * The 64-bit state is two 32-bit halves in small-integer arithmetic (BigInt arithmetic was a
 * twentieth of an ingest worker's time when an episode opened every few readings). Prime
 * 0x100000001b3 = 2^40 + 0x1b3, so h · prime mod 2^64 = h · 0x1b3 + (h << 40): the low half is
 * lo · 0x1b3 mod 2^32, its carry (lo · 0x1b3 >> 32, from lo's 16-bit halves) goes to the high
 * half, and h << 40 adds lo << 8 to it.
 *
 * A tracker opens many episodes per key and family, so it keeps the state after
 * `key \0 family \0` ({@link EpisodeIdPrefix}) and hashes only the numbers' text on; the numbers
 * are hashed digit by digit without making their text (the same characters as `${x}`).
 */

const OFFSET_HI = 0xcbf29ce4 | 0;
const OFFSET_LO = 0x84222325 | 0;
const INT32_MAX = 2 ** 31 - 1;

/** A running FNV-1a 64 state. */
class Fnv64 {
  hi = OFFSET_HI;
  lo = OFFSET_LO;
  /** Decimal digits of a number, least significant first (a safe integer has at most 16). */
  private readonly digits = new Uint8Array(16);

  from(hi: number, lo: number): this {
    this.hi = hi;
    this.lo = lo;
    return this;
  }

  code(c: number): void {
    const lo = this.lo ^ c;
    const carry = (((lo >>> 16) * 0x1b3 + (((lo & 0xffff) * 0x1b3) >>> 16)) >>> 16) | 0;
    this.hi = (Math.imul(this.hi, 0x1b3) + carry + (lo << 8)) | 0;
    this.lo = Math.imul(lo, 0x1b3);
  }

  text(s: string): void {
    for (let i = 0; i < s.length; i++) this.code(s.charCodeAt(i));
  }

  /**
   * The characters of `${x}`: digit by digit for a safe integer, else its text. Above 2^31 one
   * float remainder splits off the low 8 digits (x % 1e8 and (x − low) / 1e8 are exact); the rest
   * is int32 arithmetic (a float remainder per digit cost more than the hashing).
   */
  number(x: number): void {
    if (!Number.isSafeInteger(x)) return this.text(`${x}`);
    if (x < 0) this.code(0x2d);
    let rest = Math.abs(x);
    let n = 0;
    if (rest > INT32_MAX) {
      let low = rest % 1e8;
      rest = (rest - low) / 1e8;
      for (let k = 0; k < 8; k++) {
        const q = (low / 10) | 0;
        this.digits[n++] = low - q * 10;
        low = q;
      }
    }
    do {
      const q = (rest / 10) | 0;
      this.digits[n++] = rest - q * 10;
      rest = q;
    } while (rest > 0);
    while (n > 0) this.code(0x30 + this.digits[--n]);
  }

  hex(): string {
    return hexId(this.hi, this.lo);
  }
}

const scratch = new Fnv64();

/** An episode's id (see the module comment). */
export function episodeId(key: string, family: string, openedAt: number, position: number): string {
  const h = scratch.from(OFFSET_HI, OFFSET_LO);
  h.text(key);
  h.code(0);
  h.text(family);
  h.code(0);
  return idAfterPrefix(h, openedAt, position).hex();
}

/** The hashed `key \0 family \0` of one key and family, from which its episodes' ids follow. */
export class EpisodeIdPrefix {
  private readonly hi: number;
  private readonly lo: number;

  constructor(
    readonly key: string,
    readonly family: string,
  ) {
    const h = new Fnv64();
    h.text(key);
    h.code(0);
    h.text(family);
    h.code(0);
    this.hi = h.hi;
    this.lo = h.lo;
  }

  /** episodeId(key, family, openedAt, position). */
  id(openedAt: number, position: number): string {
    return idAfterPrefix(scratch.from(this.hi, this.lo), openedAt, position).hex();
  }

  /** The words of episodeId(key, family, openedAt, position) into `out` (hi, lo: the unsigned values hexWord reads back). */
  words(openedAt: number, position: number, out: EpisodeIdWords): void {
    const h = idAfterPrefix(scratch.from(this.hi, this.lo), openedAt, position);
    out.hi = h.hi >>> 0;
    out.lo = h.lo >>> 0;
  }
}

/** An episode id as its two 32-bit words: hexId(hi, lo) is its text. */
export interface EpisodeIdWords {
  hi: number;
  lo: number;
}

function idAfterPrefix(h: Fnv64, openedAt: number, position: number): Fnv64 {
  h.number(openedAt);
  h.code(0);
  h.number(position);
  return h;
}

/** Two hex digits of each byte value: `toString(16)` twice per id took more than the hashing. */
const HEX_BYTE = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));

/** The 8 lowercase hex digits of a 32-bit word (its unsigned value), leading zeros kept. */
export function hex32(x: number): string {
  return HEX_BYTE[x >>> 24] + HEX_BYTE[(x >>> 16) & 0xff] + HEX_BYTE[(x >>> 8) & 0xff] + HEX_BYTE[x & 0xff];
}

/** Char codes of the lowercase hex digits. */
const HEX_CODE = Array.from("0123456789abcdef", (c) => c.charCodeAt(0));

/**
 * hex32(hi) + hex32(lo) as one flat string: one String.fromCharCode of 16 codes, where eight
 * concatenations made a rope that the first character read (the alert encoder's) flattened again.
 */
export function hexId(hi: number, lo: number): string {
  const d = HEX_CODE;
  return String.fromCharCode(
    d[hi >>> 28],
    d[(hi >>> 24) & 15],
    d[(hi >>> 20) & 15],
    d[(hi >>> 16) & 15],
    d[(hi >>> 12) & 15],
    d[(hi >>> 8) & 15],
    d[(hi >>> 4) & 15],
    d[hi & 15],
    d[lo >>> 28],
    d[(lo >>> 24) & 15],
    d[(lo >>> 20) & 15],
    d[(lo >>> 16) & 15],
    d[(lo >>> 12) & 15],
    d[(lo >>> 8) & 15],
    d[(lo >>> 4) & 15],
    d[lo & 15],
  );
}

/** The inverse of {@link hex32}: the 32-bit word of 8 lowercase hex digits of `s` from `from` (−1: not such digits). */
export function hexWord(s: string, from: number): number {
  let w = 0;
  for (let i = from; i < from + 8; i++) {
    const c = s.charCodeAt(i);
    const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;
    if (d < 0) return -1;
    w = w * 16 + d;
  }
  return w;
}
