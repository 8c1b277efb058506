/**
 * Replay's per-row output in input order. Rows finish out of order (key groups run in parallel);
 * each row's result waits here — in typed columns, not strings, so a million rows cost no
 * garbage-collector time — until every earlier row is done, then leaves as one NDJSON line.
 * Holds only the rows between the oldest unfinished and the newest read, which the engine's
 * bounded buffers keep small; the columns grow (doubling) when that span does.
 */
import { ROLLING_FIELDS } from "../operators/rolling.js";
import type { LineBuffer } from "./line-buffer.js";
import { formatStatistic } from "./number-format.js";

const enum RowState {
  Pending = 0,
  Stats = 1,
  /** Processed, but the count window is not full yet: statistics null. */
  NotFull = 2,
  Late = 3,
  Rejected = 4,
}

export const ROW_OUT_OF_ORDER = 1;
export const ROW_WINDOW_TRUNCATED = 2;

const FIELDS = ROLLING_FIELDS.length;
const NULL_STATS = ROLLING_FIELDS.map((f) => `"${f}":null`).join(",");

export class ReplayOutput {
  /** Row number at `head`. */
  private base = 0;
  private head = 0;
  private size = 0;
  private mask: number;
  private state: Uint8Array;
  private flags: Uint8Array;
  private keyIds: Int32Array;
  private values: Float64Array;
  private stats: Float64Array;
  private timestamps: string[];
  private errors: (string | undefined)[];

  constructor(private readonly keyJson: (keyId: number) => string, initialRows = 1 << 14) {
    const cap = 1 << Math.ceil(Math.log2(Math.max(16, initialRows)));
    this.mask = cap - 1;
    this.state = new Uint8Array(cap);
    this.flags = new Uint8Array(cap);
    this.keyIds = new Int32Array(cap);
    this.values = new Float64Array(cap);
    this.stats = new Float64Array(cap * FIELDS);
    this.timestamps = new Array<string>(cap).fill("");
    this.errors = new Array<string | undefined>(cap).fill(undefined);
  }

  /** Rows read and not yet written. */
  get pending(): number {
    return this.size;
  }

  /** Registers the next row (rows come consecutively). */
  add(row: number, keyId: number, timestampJson: string): void {
    if (row !== this.base + this.size) throw new RangeError(`row ${row} added out of sequence (expected ${this.base + this.size})`);
    if (this.size === this.mask + 1) this.grow();
    const i = (this.head + this.size) & this.mask;
    this.size++;
    this.state[i] = RowState.Pending;
    this.flags[i] = 0;
    this.keyIds[i] = keyId;
    this.timestamps[i] = timestampJson;
    this.errors[i] = undefined;
  }

  /** A processed row; `stats` holds the kernel's fields, used only when `windowFull`. */
  complete(row: number, value: number, stats: Float64Array, windowFull: boolean, flags: number): void {
    const i = this.slot(row);
    this.values[i] = value;
    this.flags[i] = flags;
    if (windowFull) {
      this.stats.set(stats.subarray(0, FIELDS), i * FIELDS);
      this.state[i] = RowState.Stats;
    } else this.state[i] = RowState.NotFull;
  }

  late(row: number, value: number): void {
    const i = this.slot(row);
    this.values[i] = value;
    this.state[i] = RowState.Late;
  }

  reject(row: number, reason: string): void {
    const i = this.slot(row);
    this.errors[i] = reason;
    this.state[i] = RowState.Rejected;
  }

  /** Appends the finished lines at the front, in row order, to `out`; removes them. */
  drain(out: LineBuffer): void {
    while (this.size > 0 && this.state[this.head] !== RowState.Pending) {
      out.push(this.line(this.head, this.base));
      this.timestamps[this.head] = "";
      this.head = (this.head + 1) & this.mask;
      this.base++;
      this.size--;
    }
  }

  private line(i: number, row: number): string {
    const prefix = `{"row":${row},"key":${this.keyJson(this.keyIds[i])},"timestamp":${this.timestamps[i]},"value":`;
    switch (this.state[i] as RowState) {
      case RowState.Rejected:
        return `${prefix}null,${NULL_STATS},"error":${JSON.stringify(this.errors[i])}}\n`;
      case RowState.Late:
        return `${prefix}${this.values[i]},${NULL_STATS},"late":true}\n`;
      case RowState.NotFull:
        return `${prefix}${this.values[i]},${NULL_STATS}${this.flagsJson(i)}}\n`;
      default: {
        const s = this.stats;
        const o = i * FIELDS;
        return (
          `${prefix}${this.values[i]},"count":${s[o]},"mean":${formatStatistic(s[o + 1])},"std":${formatStatistic(s[o + 2])},` +
          `"std_pop":${formatStatistic(s[o + 3])},"min":${formatStatistic(s[o + 4])},"max":${formatStatistic(s[o + 5])},"slope":${formatStatistic(s[o + 6])},` +
          `"ewma":${formatStatistic(s[o + 7])},"z":${formatStatistic(s[o + 8])}${this.flagsJson(i)}}\n`
        );
      }
    }
  }

  private flagsJson(i: number): string {
    const f = this.flags[i];
    if (f === 0) return "";
    return (f & ROW_OUT_OF_ORDER ? ',"out_of_order":true' : "") + (f & ROW_WINDOW_TRUNCATED ? ',"window_truncated":true' : "");
  }

  private slot(row: number): number {
    const k = row - this.base;
    if (k < 0 || k >= this.size) throw new RangeError(`row ${row} is not pending`);
    const i = (this.head + k) & this.mask;
    if (this.state[i] !== RowState.Pending) throw new RangeError(`row ${row} finished twice`);
    return i;
  }

  private grow(): void {
    const cap = (this.mask + 1) * 2;
    const order = (k: number) => (this.head + k) & this.mask;
    const state = new Uint8Array(cap);
    const flags = new Uint8Array(cap);
    const keyIds = new Int32Array(cap);
    const values = new Float64Array(cap);
    const stats = new Float64Array(cap * FIELDS);
    const timestamps = new Array<string>(cap).fill("");
    const errors = new Array<string | undefined>(cap).fill(undefined);
    for (let k = 0; k < this.size; k++) {
      const i = order(k);
      state[k] = this.state[i];
      flags[k] = this.flags[i];
      keyIds[k] = this.keyIds[i];
      values[k] = this.values[i];
      stats.set(this.stats.subarray(i * FIELDS, (i + 1) * FIELDS), k * FIELDS);
      timestamps[k] = this.timestamps[i];
      errors[k] = this.errors[i];
    }
    Object.assign(this, { state, flags, keyIds, values, stats, timestamps, errors, head: 0, mask: cap - 1 });
  }
}

