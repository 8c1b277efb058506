/**
 * The exact set of one batch's serials, built for the ledger's access pattern: nearly every
 * serial is new, and the ledger's filter already says so (a filter miss is certain), so adding
 * must be cheap and looking up can wait. Serials and their two 32-bit hashes are appended to
 * logs (sequential writes, no hash table to probe in memory); the hash index (open addressing,
 * at most half full) is built only when the first lookup comes — a possible duplicate — and from
 * then on brought up to date by each lookup, which first places the serials appended since the
 * last one: an append never writes at a random place of the index (a cache miss per serial in a
 * large batch's set), and the serials placed together are independent stores the processor
 * overlaps. Membership is exact: a hash match is confirmed on the serial.
 *
 * The serials are kept as their UTF-8 bytes, one after the other in one growing byte log (what a
 * checkpoint stores, and what the payload carries), not as a string each: millions of strings
 * would each be an object for the garbage collector to trace. A serial given as bytes is ASCII
 * text (the payload's, ledger.ts `checkPayload`); one given as a string that is not ASCII is also
 * kept as that string and compared as one — two different strings can have the same UTF-8 (lone
 * surrogates become U+FFFD), and the set compares strings, as it always has.
 */

/** Serials in insertion order as UTF-8: serial i is `bytes[i === 0 ? 0 : ends[i − 1], ends[i])`. */
export interface SerialBytes {
  readonly count: number;
  readonly bytes: Uint8Array;
  readonly ends: Uint32Array;
}

const UTF8 = new TextEncoder();

export class SerialSet {
  /** UTF-8 of every serial, in insertion order. */
  private log: Uint8Array;
  private used = 0;
  /** End of serial i in `log`. */
  private ends: Uint32Array;
  private hashes: Uint32Array;
  private count = 0;
  /** Entry + 1 per slot (0: empty); null until the first lookup. */
  private slots: Int32Array | null = null;
  /** Entries [0, placed) are in `slots`; the lookups place the rest. */
  private placed = 0;
  /** The serials that are not ASCII, as given (by entry). */
  private wide: Map<number, string> | null = null;

  constructor(initialCapacity = 1024) {
    const entries = 1 << Math.ceil(Math.log2(Math.max(16, initialCapacity)));
    this.hashes = new Uint32Array(2 * entries);
    this.ends = new Uint32Array(entries);
    this.log = new Uint8Array(16 * entries);
  }

  get size(): number {
    return this.count;
  }

  /** Whether an index has been built (a lookup happened). */
  get indexed(): boolean {
    return this.slots !== null;
  }

  /** Adds a serial known not to be in the set (the caller looked it up, or the filter missed it). */
  add(h1: number, h2: number, serial: string): void {
    const n = serial.length;
    this.reserve(n);
    const log = this.log;
    const at = this.used;
    let any = 0;
    for (let i = 0; i < n; i++) {
      const c = serial.charCodeAt(i);
      any |= c;
      log[at + i] = c;
    }
    if (any < 0x80) this.used += n;
    else {
      // Not ASCII: its UTF-8 instead (at most 3 bytes per UTF-16 code unit), and the string itself.
      this.reserve(3 * n);
      this.used += UTF8.encodeInto(serial, this.log.subarray(this.used)).written;
      if (this.wide === null) this.wide = new Map();
      this.wide.set(this.count, serial);
    }
    this.append(h1, h2);
  }

  /** `add` for a serial given as the ASCII bytes `src[at, at + length)`. */
  addBytes(h1: number, h2: number, src: Uint8Array, at: number, length: number): void {
    this.reserve(length);
    const log = this.log;
    const to = this.used;
    for (let i = 0; i < length; i++) log[to + i] = src[at + i];
    this.used += length;
    this.append(h1, h2);
  }

  /** A copy of the serials, in insertion order (a checkpoint's). */
  copyBytes(): SerialBytes {
    return { count: this.count, bytes: this.log.slice(0, this.used), ends: this.ends.slice(0, this.count) };
  }

  has(h1: number, h2: number, serial: string): boolean {
    const n = serial.length;
    let ascii = true;
    for (let i = 0; i < n && ascii; i++) ascii = serial.charCodeAt(i) < 0x80;
    const slots = this.index();
    h1 >>>= 0;
    h2 >>>= 0;
    const mask = slots.length - 1;
    for (let pos = h1 & mask; ; pos = (pos + 1) & mask) {
      const e = slots[pos];
      if (e === 0) return false;
      const i = e - 1;
      if (this.hashes[2 * i] !== h1 || this.hashes[2 * i + 1] !== h2) continue;
      if (ascii ? this.sameAsciiText(i, serial) : this.wide?.get(i) === serial) return true;
    }
  }

  /** `has` for a serial given as the ASCII bytes `src[at, at + length)`. */
  hasBytes(h1: number, h2: number, src: Uint8Array, at: number, length: number): boolean {
    const slots = this.index();
    h1 >>>= 0;
    h2 >>>= 0;
    const mask = slots.length - 1;
    for (let pos = h1 & mask; ; pos = (pos + 1) & mask) {
      const e = slots[pos];
      if (e === 0) return false;
      const i = e - 1;
      if (this.hashes[2 * i] === h1 && this.hashes[2 * i + 1] === h2 && this.sameBytes(i, src, at, length)) return true;
    }
  }

  /** has(), then add() when absent: whether it was present. */
  testAndAdd(h1: number, h2: number, serial: string): boolean {
    if (this.has(h1, h2, serial)) return true;
    this.add(h1, h2, serial);
    return false;
  }

  // ---- internals ----

  /** Entry i's bytes are `serial`'s characters (ASCII: a non-ASCII entry has a byte ≥ 0x80, so never equals). */
  private sameAsciiText(i: number, serial: string): boolean {
    const start = i === 0 ? 0 : this.ends[i - 1];
    if (this.ends[i] - start !== serial.length) return false;
    for (let k = 0; k < serial.length; k++) if (this.log[start + k] !== serial.charCodeAt(k)) return false;
    return true;
  }

  private sameBytes(i: number, src: Uint8Array, at: number, length: number): boolean {
    const start = i === 0 ? 0 : this.ends[i - 1];
    if (this.ends[i] - start !== length) return false;
    for (let k = 0; k < length; k++) if (this.log[start + k] !== src[at + k]) return false;
    return true;
  }

  private reserve(bytes: number): void {
    if (this.used + bytes <= this.log.length) return;
    const grown = new Uint8Array(Math.max(2 * this.log.length, this.used + bytes));
    grown.set(this.log.subarray(0, this.used));
    this.log = grown;
  }

  /** Records the serial just written to the log as entry `count`, and indexes it when there is an index. */
  private append(h1: number, h2: number): void {
    const i = this.count++;
    if (i === this.ends.length) {
      const ends = new Uint32Array(2 * this.ends.length);
      ends.set(this.ends);
      this.ends = ends;
      const hashes = new Uint32Array(2 * this.hashes.length);
      hashes.set(this.hashes);
      this.hashes = hashes;
    }
    this.ends[i] = this.used;
    this.hashes[2 * i] = h1 >>> 0;
    this.hashes[2 * i + 1] = h2 >>> 0;
  }

  /** The index holding every entry (at most half full): built at the first lookup, doubled as the set grows, the entries appended since the last lookup placed. */
  private index(): Int32Array {
    const slots = this.slots;
    if (slots === null) return this.buildIndex(2 << Math.ceil(Math.log2(Math.max(8, this.count))));
    if (this.count * 2 > slots.length) {
      let size = slots.length * 2;
      while (this.count * 2 > size) size *= 2;
      return this.buildIndex(size);
    }
    for (; this.placed < this.count; this.placed++) this.place(slots, this.placed);
    return slots;
  }

  private buildIndex(size: number): Int32Array {
    const slots = new Int32Array(size);
    for (let i = 0; i < this.count; i++) this.place(slots, i);
    this.slots = slots;
    this.placed = this.count;
    return slots;
  }

  private place(slots: Int32Array, i: number): void {
    const mask = slots.length - 1;
    let pos = this.hashes[2 * i] & mask;
    while (slots[pos] !== 0) pos = (pos + 1) & mask;
    slots[pos] = i + 1;
  }
}
