/**
 * RowBinary rows handed over in pieces (each an EncodedRows from a worker) gathered into one
 * growing buffer with their offsets: the body of one insert, in the same PackedRows shape as the
 * JSONEachRow lines of connectors/files/line-buffer.ts, so the sink sends, splits, spills and
 * dead-letters both alike. Native blocks are gathered whole by {@link NativeBlockBuffer}: the
 * ranges it packs are blocks, with their rows beside them.
 */
import type { PackedRows } from "../files/mod.js";
import type { EncodedRows } from "./row-binary.js";

export class EncodedRowBuffer {
  private data: Buffer;
  private used = 0;
  private starts: Uint32Array;
  private count = 0;

  constructor(initialBytes = 64 * 1024, initialRows = 1024) {
    this.data = Buffer.allocUnsafe(initialBytes);
    this.starts = new Uint32Array(initialRows + 1);
  }

  get rows(): number {
    return this.count;
  }

  get bytes(): number {
    return this.used;
  }

  /** Appends rows [from, to) of `encoded` (copied: the caller may reuse or transfer its buffer). */
  push(encoded: EncodedRows, from: number, to: number): void {
    const { bytes, rowStarts } = encoded;
    const lo = rowStarts[from];
    const n = rowStarts[to] - lo;
    if (this.used + n > this.data.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.data.length * 2, this.used + n));
      this.data.copy(grown, 0, 0, this.used);
      this.data = grown;
    }
    if (this.count + (to - from) + 1 > this.starts.length) {
      const grown = new Uint32Array(Math.max(this.starts.length * 2, this.count + (to - from) + 1));
      grown.set(this.starts);
      this.starts = grown;
    }
    this.data.set(bytes.subarray(lo, lo + n), this.used);
    const shift = this.used - lo;
    for (let i = from + 1; i <= to; i++) this.starts[++this.count] = rowStarts[i] + shift;
    this.used += n;
  }

  /** The rows so far with their offsets (views of this buffer's memory: push no more after). */
  pack(): PackedRows {
    return { data: this.data.subarray(0, this.used), starts: this.starts.slice(0, this.count + 1) };
  }
}

/** Why `encoded` is not a well-formed EncodedRows (offsets from 0, never decreasing, ending at the last byte), or null. */
export function encodedRowsProblem(encoded: EncodedRows): string | null {
  const { bytes, rowStarts } = encoded;
  if (!(bytes instanceof Uint8Array) || !(rowStarts instanceof Uint32Array))
    return "expected { bytes: Uint8Array, rowStarts: Uint32Array }";
  if (rowStarts.length === 0 || rowStarts[0] !== 0) return "rowStarts must begin with 0";
  if (rowStarts[rowStarts.length - 1] !== bytes.length) return `rowStarts must end at bytes.length (${bytes.length})`;
  for (let i = 1; i < rowStarts.length; i++) if (rowStarts[i] < rowStarts[i - 1]) return `rowStarts decreases at ${i}`;
  return null;
}

/** Native blocks (checked by nativeLayout) gathered into one body; `pack` gives the blocks' offsets. */
export class NativeBlockBuffer {
  private data: Buffer;
  private used = 0;
  private readonly starts: number[] = [0];
  private readonly blockRows: number[] = [];
  private count = 0;

  /** `initial`: bytes to allocate, or a buffer to fill (one no longer read by anyone else). */
  constructor(initial: number | Buffer = 64 * 1024) {
    this.data = typeof initial === "number" ? Buffer.allocUnsafe(initial) : initial;
  }

  get rows(): number {
    return this.count;
  }

  get bytes(): number {
    return this.used;
  }

  /** Appends one block of `rows` rows (copied), checked by the caller. */
  push(block: Uint8Array, rows: number): void {
    const n = block.length;
    if (this.used + n > this.data.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.data.length * 2, this.used + n));
      this.data.copy(grown, 0, 0, this.used);
      this.data = grown;
    }
    this.data.set(block, this.used);
    this.used += n;
    this.starts.push(this.used);
    this.blockRows.push(rows);
    this.count += rows;
  }

  /** The body with its blocks' offsets and rows (views of this buffer's memory: push no more after). */
  pack(): PackedRows & { blockRows: Uint32Array } {
    return { data: this.data.subarray(0, this.used), starts: Uint32Array.from(this.starts), blockRows: Uint32Array.from(this.blockRows) };
  }
}
