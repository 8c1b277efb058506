/**
 * An exact set of serial numbers (one batch's), faster and smaller than a JS Set<string> for
 * this job: open addressing over typed arrays keyed by the two 32-bit hashes the ledger already
 * computed for its filter, and the strings kept only to confirm a match — so membership stays
 * exact, while most probes touch nothing but integers.
 */
export class SerialSet {
  private slots: Int32Array;
  private h1s: Uint32Array;
  private h2s: Uint32Array;
  private readonly serials: string[] = [];
  private count = 0;

  constructor(initialCapacity = 1024) {
    const cap = 1 << Math.ceil(Math.log2(Math.max(16, initialCapacity)));
    this.slots = new Int32Array(cap * 2);
    this.h1s = new Uint32Array(cap);
    this.h2s = new Uint32Array(cap);
  }

  get size(): number {
    return this.count;
  }

  /** Whether `serial` (hashed to h1, h2) is in the set; adds it when it is not. */
  testAndAdd(h1: number, h2: number, serial: string): boolean {
    h1 >>>= 0;
    h2 >>>= 0;
    const mask = this.slots.length - 1;
    let pos = h1 & mask;
    for (;;) {
      const e = this.slots[pos];
      if (e === 0) break;
      const i = e - 1;
      if (this.h1s[i] === h1 && this.h2s[i] === h2 && this.serials[i] === serial) return true;
      pos = (pos + 1) & mask;
    }
    const i = this.count++;
    if (i === this.h1s.length) this.growEntries();
    this.h1s[i] = h1;
    this.h2s[i] = h2;
    this.serials.push(serial);
    this.slots[pos] = i + 1;
    // Keep the table at most half full: short probe runs.
    if (this.count * 2 > this.slots.length) this.rehash();
    return false;
  }

  private growEntries(): void {
    const h1s = new Uint32Array(this.h1s.length * 2);
    const h2s = new Uint32Array(this.h2s.length * 2);
    h1s.set(this.h1s);
    h2s.set(this.h2s);
    this.h1s = h1s;
    this.h2s = h2s;
  }

  private rehash(): void {
    const slots = new Int32Array(this.slots.length * 2);
    const mask = slots.length - 1;
    for (let i = 0; i < this.count; i++) {
      let pos = this.h1s[i] & mask;
      while (slots[pos] !== 0) pos = (pos + 1) & mask;
      slots[pos] = i + 1;
    }
    this.slots = slots;
  }
}
