/**
 * The buffer the RowBinary and Native writers write into: it doubles as it fills, up to
 * `bytesMax` (CapacityError past it, naming the format), and copies pre-encoded bytes in.
 */
import { CapacityError } from "../../engine/core/mod.js";

export class GrowingBytes {
  protected buf: Uint8Array;
  protected view: DataView;
  protected at = 0;

  constructor(
    initialBytes: number,
    readonly bytesMax: number,
    /** "RowBinary", "Native": what the capacity error says would not fit. */
    private readonly format: string,
  ) {
    this.buf = new Uint8Array(Math.max(16, Math.min(initialBytes, bytesMax)));
    this.view = new DataView(this.buf.buffer);
  }

  /** Bytes as they are (a String cell or column header encoded once), copied per use. */
  raw(bytes: Uint8Array): void {
    const n = bytes.length;
    this.room(n);
    // A loop beats TypedArray.set for the few bytes of a name.
    if (n <= 32) for (let i = 0; i < n; i++) this.buf[this.at + i] = bytes[i];
    else this.buf.set(bytes, this.at);
    this.at += n;
  }

  /**
   * The first `n` of `cells` (each a String cell or other bytes encoded once) back to back: one
   * room check for all, then a byte loop per short cell — a String column of a block in one pass.
   */
  cells(cells: readonly Uint8Array[], n: number): void {
    let total = 0;
    for (let j = 0; j < n; j++) total += cells[j].length;
    this.room(total);
    const buf = this.buf;
    let at = this.at;
    for (let j = 0; j < n; j++) {
      const cell = cells[j];
      const len = cell.length;
      if (len <= 32) for (let i = 0; i < len; i++) buf[at + i] = cell[i];
      else buf.set(cell, at);
      at += len;
    }
    this.at = at;
  }

  /** Makes room for `n` more bytes at `at`. */
  protected room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const need = this.at + n;
    if (need > this.bytesMax)
      throw new CapacityError("bytesMax", this.bytesMax, `a ${this.format} buffer would need ${need} bytes; encode fewer rows at a time`);
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const grown = new Uint8Array(Math.min(size, this.bytesMax));
    grown.set(this.buf.subarray(0, this.at));
    this.buf = grown;
    this.view = new DataView(grown.buffer);
  }
}
