/**
 * Restores input order for per-row output: rows finish out of order (key groups run in
 * parallel), lines leave in row order. Holds only rows between the oldest unfinished one and
 * the newest read, which the engine's bounded buffers keep small.
 */
export class OrderedLines {
  /** Row number of `prefix[head]`. */
  private base = 0;
  private head = 0;
  private readonly prefix: string[] = [];
  private readonly done: (string | null)[] = [];

  /** Rows added and not yet drained. */
  get pending(): number {
    return this.done.length - this.head;
  }

  /** Registers the next row (rows come consecutively) with its key and timestamp JSON. */
  add(row: number, key: string, timestampJson: string): void {
    if (row !== this.base + this.pending) throw new RangeError(`row ${row} added out of sequence (expected ${this.base + this.pending})`);
    this.prefix.push(`{"row":${row},"key":${JSON.stringify(key)},"timestamp":${timestampJson}`);
    this.done.push(null);
  }

  /** Finishes a row: `fieldsJson` is the rest of the object after the prefix, without braces. */
  complete(row: number, fieldsJson: string): void {
    const i = this.index(row);
    this.done[i] = `${this.prefix[i]},${fieldsJson}}\n`;
  }

  /** The finished lines at the front, joined; removes them. */
  drain(): string {
    let i = this.head;
    let text = "";
    while (i < this.done.length && this.done[i] !== null) {
      text += this.done[i] as string;
      i++;
    }
    this.base += i - this.head;
    this.head = i;
    if (this.head > 65536) {
      this.prefix.splice(0, this.head);
      this.done.splice(0, this.head);
      this.head = 0;
    }
    return text;
  }

  private index(row: number): number {
    const i = row - this.base + this.head;
    if (i < this.head || i >= this.done.length || this.done[i] !== null) throw new RangeError(`row ${row} is not pending`);
    return i;
  }
}
