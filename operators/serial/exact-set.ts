/**
 * The exact set of one batch's serials, built for the ledger's access pattern: nearly every
 * serial is new, and the ledger's filter already says so (a filter miss is certain), so adding
 * must be cheap and looking up can wait. Serials and their two 32-bit hashes are appended to
 * logs (sequential writes, no hash table to probe in memory); the hash index (open addressing,
 * at most half full) is built only when the first lookup comes — a possible duplicate — and is
 * kept up to date from then on. Membership is exact: a hash match is confirmed on the serial.
 */
export class SerialSet {
  private readonly serials: string[] = [];
  private hashes: Uint32Array;
  private count = 0;
  /** Entry + 1 per slot (0: empty); null until the first lookup. */
  private slots: Int32Array | null = null;

  constructor(initialCapacity = 1024) {
    this.hashes = new Uint32Array(2 * (1 << Math.ceil(Math.log2(Math.max(16, initialCapacity)))));
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
    const i = this.count++;
    if (2 * i === this.hashes.length) {
      const grown = new Uint32Array(this.hashes.length * 2);
      grown.set(this.hashes);
      this.hashes = grown;
    }
    this.hashes[2 * i] = h1 >>> 0;
    this.hashes[2 * i + 1] = h2 >>> 0;
    this.serials.push(serial);
    if (this.slots === null) return;
    if (this.count * 2 > this.slots.length) this.buildIndex(this.slots.length * 2);
    else this.place(this.slots, i);
  }

  /** The serials in insertion order (a view: do not change it). */
  values(): readonly string[] {
    return this.serials;
  }

  has(h1: number, h2: number, serial: string): boolean {
    if (this.slots === null) this.buildIndex(2 << Math.ceil(Math.log2(Math.max(8, this.count))));
    const slots = this.slots as Int32Array;
    h1 >>>= 0;
    h2 >>>= 0;
    const mask = slots.length - 1;
    for (let pos = h1 & mask; ; pos = (pos + 1) & mask) {
      const e = slots[pos];
      if (e === 0) return false;
      const i = e - 1;
      if (this.hashes[2 * i] === h1 && this.hashes[2 * i + 1] === h2 && this.serials[i] === serial) return true;
    }
  }

  /** has(), then add() when absent: whether it was present. */
  testAndAdd(h1: number, h2: number, serial: string): boolean {
    if (this.has(h1, h2, serial)) return true;
    this.add(h1, h2, serial);
    return false;
  }

  private buildIndex(size: number): void {
    const slots = new Int32Array(size);
    for (let i = 0; i < this.count; i++) this.place(slots, i);
    this.slots = slots;
  }

  private place(slots: Int32Array, i: number): void {
    const mask = slots.length - 1;
    let pos = this.hashes[2 * i] & mask;
    while (slots[pos] !== 0) pos = (pos + 1) & mask;
    slots[pos] = i + 1;
  }
}
