/**
 * Replay's rows between the CSV and the text writers, as columns: what {@link ReplayOutput} holds
 * per row (state, key, timestamp text, value, the analyses' output rows), in a ring of typed
 * arrays over shared memory. Consecutive finished rows are handed to a text worker as a block —
 * where they are in the ring, not a copy — and their slots are reused once the worker is done
 * with them ({@link ReplayBlocks.release}). A row's timestamp text is kept as the bytes of its
 * JSON (STAMP_BYTES per row; a longer one, or one made as a string, as text beside them).
 * The ring holds the rows between the oldest not yet written and the newest read, and doubles
 * when that span does (blocks in flight keep the arrays they were given).
 */
import type { OutputChunk } from "../core/mod.js";
import { FLAG_OUT_OF_ORDER } from "../core/mod.js";

export const ROW_PENDING = 0;
export const ROW_DONE = 1;
export const ROW_LATE = 2;
export const ROW_REJECTED = 3;
/** Row flag: the record was behind its key's newest time (`"out_of_order": true`). */
export const ROW_FLAG_OUT_OF_ORDER = 1;
/** Bytes kept per row for its timestamp's JSON text. */
export const STAMP_BYTES = 32;
/** Bytes kept per row for its value cell's text (a decimal of at most 15 digits, a sign and a point fit). */
export const VALUE_TEXT_BYTES = 24;
/** `stampLengths` value of a row whose timestamp text is in the block's `texts` instead. */
export const STAMP_IN_TEXTS = 255;

/** The ring's columns (shared memory: a worker reads them where they are). */
export interface RingColumns {
  /** ROW_PENDING, ROW_DONE, ROW_LATE or ROW_REJECTED. */
  state: Uint8Array;
  flags: Uint8Array;
  keyIds: Int32Array;
  values: Float64Array;
  /** Every analysis's output row side by side, `rowFields` f64 per row. */
  results: Float64Array;
  /** A row's timestamp JSON: `stamps[slot·STAMP_BYTES …]`, `stampLengths[slot]` bytes. */
  stamps: Uint8Array;
  stampLengths: Uint8Array;
  /**
   * A row's value cell as it was read, when a plain decimal (`valueTexts[slot·VALUE_TEXT_BYTES …]`,
   * `valueLengths[slot]` bytes; 0: none): its text is formatStatistic's of the value, but for
   * the zeros and signs to trim (see replay-text.ts), and copying it is cheaper than making it.
   */
  valueTexts: Uint8Array;
  valueLengths: Uint8Array;
}

/**
 * Consecutive finished rows, `firstRow` … `firstRow + length − 1`: row i of the block is ring slot
 * (slot + i) & mask of `ring`.
 */
export interface ReplayTextBlock {
  firstRow: number;
  length: number;
  slot: number;
  mask: number;
  ring: RingColumns;
  rowFields: number;
  /** Timestamp texts (STAMP_IN_TEXTS rows) and why rejected rows were rejected, by index in the block. */
  texts: Map<number, string>;
  errors: Map<number, string>;
  /** Names of the keys the receiving worker has not had: ids firstKey, firstKey + 1, … */
  firstKey: number;
  keys: string[];
  /** The block's place in the output (0, 1, …): blocks are written in this order. */
  sequence: number;
}

export class ReplayBlocks {
  readonly rowFields: number;
  /** Row number at `head`. */
  private base = 0;
  private head = 0;
  /** Rows held: handed out (not yet released), then read and not yet handed out. */
  private size = 0;
  private sent = 0;
  /** Rows after the handed-out ones known to be finished. */
  private ready = 0;
  private mask: number;
  private ring: RingColumns;
  /** By ring slot, sparse. */
  private texts = new Map<number, string>();
  private errors = new Map<number, string>();
  private readonly offsets: number[];
  private blocksTaken = 0;

  /** `fields`: f64 per output row of each analysis, in order. */
  constructor(
    private readonly fields: readonly number[],
    initialRows = 1 << 16,
  ) {
    this.offsets = [];
    let total = 0;
    for (const f of fields) {
      this.offsets.push(total);
      total += f;
    }
    this.rowFields = total;
    const cap = 1 << Math.ceil(Math.log2(Math.max(16, initialRows)));
    this.mask = cap - 1;
    this.ring = ringColumns(cap, total);
  }

  /** Registers the next row with its timestamp JSON as text (rows come consecutively). */
  add(row: number, keyId: number, timestampJson: string): void {
    const i = this.next(row, keyId);
    this.ring.stampLengths[i] = STAMP_IN_TEXTS;
    this.texts.set(i, timestampJson);
  }

  /** Registers the next row with its timestamp JSON: `bytes[start, end)`, in double quotes when `quoted`. */
  addStamp(row: number, keyId: number, bytes: Uint8Array, start: number, end: number, quoted: boolean): void {
    const i = this.next(row, keyId);
    const length = end - start + (quoted ? 2 : 0);
    if (length > STAMP_BYTES) {
      this.ring.stampLengths[i] = STAMP_IN_TEXTS;
      const text = Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString("latin1");
      this.texts.set(i, quoted ? `"${text}"` : text);
      return;
    }
    const stamps = this.ring.stamps;
    let at = i * STAMP_BYTES;
    if (quoted) stamps[at++] = 34;
    for (let k = start; k < end; k++) stamps[at++] = bytes[k];
    if (quoted) stamps[at] = 34;
    this.ring.stampLengths[i] = length;
  }

  /** The newest row's value cell, `bytes[start, end)`: a decimal decimalFromBytes read (at most VALUE_TEXT_BYTES). */
  addValueText(bytes: Uint8Array, start: number, end: number): void {
    const i = (this.head + this.size - 1) & this.mask;
    const texts = this.ring.valueTexts;
    let at = i * VALUE_TEXT_BYTES;
    for (let k = start; k < end; k++) texts[at++] = bytes[k];
    this.ring.valueLengths[i] = end - start;
  }

  reject(row: number, reason: string): void {
    const i = this.slot(row);
    this.errors.set(i, reason);
    this.ring.state[i] = ROW_REJECTED;
  }

  late(row: number, value: number): void {
    const i = this.slot(row);
    this.ring.values[i] = value;
    this.ring.state[i] = ROW_LATE;
  }

  /** Every record of a finished engine chunk (its positions are the rows). */
  complete(chunk: OutputChunk): void {
    const { state, flags, values, results } = this.ring;
    const rowFields = this.rowFields;
    for (let r = 0; r < chunk.length; r++) {
      // slot() inline: a position passed to a call that is not inlined would be boxed.
      const k = chunk.positions[r] - this.base;
      if (!(k >= this.sent && k < this.size)) throw new RangeError(`row ${chunk.positions[r]} is not pending`);
      const i = (this.head + k) & this.mask;
      if (state[i] !== ROW_PENDING) throw new RangeError(`row ${chunk.positions[r]} finished twice`);
      values[i] = chunk.values[r];
      flags[i] = (chunk.flags[r] & FLAG_OUT_OF_ORDER) !== 0 ? ROW_FLAG_OUT_OF_ORDER : 0;
      for (let a = 0; a < this.fields.length; a++) {
        const f = this.fields[a];
        const from = chunk.outs[a];
        const src = r * f;
        const dst = i * rowFields + this.offsets[a];
        for (let j = 0; j < f; j++) results[dst + j] = from[src + j];
      }
      state[i] = ROW_DONE;
    }
  }

  /** Finished rows after the handed-out ones, ready to be taken. */
  finished(): number {
    const state = this.ring.state;
    while (this.sent + this.ready < this.size && state[(this.head + this.sent + this.ready) & this.mask] !== ROW_PENDING) this.ready++;
    return this.ready;
  }

  /** Hands out the next `n` finished rows (see {@link finished}) as a block; their slots stay taken until {@link release}. */
  take(n: number): ReplayTextBlock {
    if (n > this.finished()) throw new RangeError(`${n} rows taken, ${this.ready} finished`);
    const slot = (this.head + this.sent) & this.mask;
    const block: ReplayTextBlock = {
      firstRow: this.base + this.sent,
      length: n,
      slot,
      mask: this.mask,
      ring: this.ring,
      rowFields: this.rowFields,
      texts: takeSparse(this.texts, slot, n, this.mask),
      errors: takeSparse(this.errors, slot, n, this.mask),
      firstKey: 0,
      keys: [],
      sequence: this.blocksTaken++,
    };
    this.sent += n;
    this.ready -= n;
    return block;
  }

  /** The oldest `n` handed-out rows are written: their slots are free. */
  release(n: number): void {
    if (n > this.sent) throw new RangeError(`${n} rows released, ${this.sent} handed out`);
    this.head = (this.head + n) & this.mask;
    this.base += n;
    this.size -= n;
    this.sent -= n;
  }

  /** The slot of the next row, registered pending with its key. */
  private next(row: number, keyId: number): number {
    if (row !== this.base + this.size) throw new RangeError(`row ${row} added out of sequence (expected ${this.base + this.size})`);
    if (this.size === this.mask + 1) this.grow();
    const i = (this.head + this.size) & this.mask;
    this.size++;
    this.ring.state[i] = ROW_PENDING;
    this.ring.flags[i] = 0;
    this.ring.keyIds[i] = keyId;
    this.ring.valueLengths[i] = 0;
    return i;
  }

  private slot(row: number): number {
    const k = row - this.base;
    if (k < this.sent || k >= this.size) throw new RangeError(`row ${row} is not pending`);
    const i = (this.head + k) & this.mask;
    if (this.ring.state[i] !== ROW_PENDING) throw new RangeError(`row ${row} finished twice`);
    return i;
  }

  /** New arrays twice as long, the rows moved to their start; handed-out blocks keep the old ones. */
  private grow(): void {
    const cap = (this.mask + 1) * 2;
    const h = this.head;
    const n1 = Math.min(this.size, this.mask + 1 - h);
    const n2 = this.size - n1;
    const from = this.ring;
    const to = ringColumns(cap, this.rowFields);
    for (const name of Object.keys(to) as Array<keyof RingColumns>) {
      const width = to[name].length / cap;
      ringCopy(from[name], to[name], h, n1, n2, width);
    }
    const moved = (map: Map<number, string>) => new Map([...map].map(([slot, text]) => [(slot - h) & this.mask, text]));
    this.texts = moved(this.texts);
    this.errors = moved(this.errors);
    this.ring = to;
    this.head = 0;
    this.mask = cap - 1;
  }
}

/** Columns for `rows` rows over shared memory. */
function ringColumns(rows: number, rowFields: number): RingColumns {
  const shared = (bytes: number) => new SharedArrayBuffer(bytes);
  return {
    state: new Uint8Array(shared(rows)),
    flags: new Uint8Array(shared(rows)),
    keyIds: new Int32Array(shared(rows * 4)),
    values: new Float64Array(shared(rows * 8)),
    results: new Float64Array(shared(rows * rowFields * 8)),
    stamps: new Uint8Array(shared(rows * STAMP_BYTES)),
    stampLengths: new Uint8Array(shared(rows)),
    valueTexts: new Uint8Array(shared(rows * VALUE_TEXT_BYTES)),
    valueLengths: new Uint8Array(shared(rows)),
  };
}

type Column = RingColumns[keyof RingColumns];

/** Copies ring rows h … h + n1 − 1 and then 0 … n2 − 1 (`width` elements each) to the start of `to`. */
function ringCopy(from: Column, to: Column, h: number, n1: number, n2: number, width: number): void {
  (to as Uint8Array).set(from.subarray(h * width, (h + n1) * width) as Uint8Array);
  if (n2 > 0) (to as Uint8Array).set(from.subarray(0, n2 * width) as Uint8Array, n1 * width);
}

/** The entries of slots h … h + n − 1 (ring), removed from `map`, keyed by their index in that range. */
function takeSparse(map: Map<number, string>, h: number, n: number, mask: number): Map<number, string> {
  const taken = new Map<number, string>();
  if (map.size === 0) return taken;
  for (const [slot, text] of map) {
    const k = (slot - h) & mask;
    if (k < n) {
      taken.set(k, text);
      map.delete(slot);
    }
  }
  return taken;
}
