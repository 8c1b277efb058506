/**
 * Chart data as typed arrays, one block per series, and the page's one drawing loop.
 *
 * A {@link SeriesBuffer} holds the last `capacity` points of several columns in arrays of twice
 * that size: points are appended at the end and, when the end is reached, the newest `capacity`
 * are moved to the front (amortised O(1) per point). The live window is always one contiguous
 * subarray per column — what uPlot's setData takes — so a frame costs no allocation beyond the
 * views.
 *
 * {@link drawLoop}: views mark what changed; one requestAnimationFrame callback redraws each
 * changed thing once, however many messages arrived since the last frame.
 */
export class SeriesBuffer {
  readonly columns: Float64Array[];
  start = 0;
  end = 0;

  constructor(
    readonly capacity: number,
    readonly width: number,
  ) {
    this.columns = Array.from({ length: width }, () => new Float64Array(2 * capacity));
  }

  get length(): number {
    return this.end - this.start;
  }

  /** Appends one point: `get(c)` gives column c's value. */
  push(get: (c: number) => number): void {
    if (this.end === this.columns[0].length) this.compact();
    const at = this.end++;
    for (let c = 0; c < this.width; c++) this.columns[c][at] = get(c);
    if (this.end - this.start > this.capacity) this.start++;
  }

  /** The window, oldest first: one view per column. */
  views(): Float64Array[] {
    return this.columns.map((col) => col.subarray(this.start, this.end));
  }

  /** The newest value of column c (NaN when empty). */
  last(c: number): number {
    return this.end > this.start ? this.columns[c][this.end - 1] : Number.NaN;
  }

  private compact(): void {
    for (const col of this.columns) col.copyWithin(0, this.start, this.end);
    this.end -= this.start;
    this.start = 0;
  }
}

/** Something the draw loop redraws when marked. */
export interface Drawable {
  draw(): void;
}

class DrawLoop {
  private readonly dirty = new Set<Drawable>();
  private scheduled = false;
  /** Animation frames that drew something, and the draws done (for the frame-rate figure). */
  readonly stats = { frames: 0, draws: 0 };

  mark(d: Drawable): void {
    this.dirty.add(d);
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => this.run());
  }

  forget(d: Drawable): void {
    this.dirty.delete(d);
  }

  private run(): void {
    this.scheduled = false;
    this.stats.frames++;
    const list = [...this.dirty];
    this.dirty.clear();
    for (const d of list) {
      d.draw();
      this.stats.draws++;
    }
  }
}

export const drawLoop = new DrawLoop();
