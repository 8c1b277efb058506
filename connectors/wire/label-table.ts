/**
 * Interned (sensor_unit, operating_mode, work_order_id) triples of single records, looked up from
 * the message bytes a {@link SensorRecordReader} pointed at — no string is made after a triple's
 * first sight — or from a decoded record's strings (the generic path), into the same ids.
 *
 * Semantics of engine/jobs/record-labels.ts `RecordLabels.idOf`: id 0 when all three are absent;
 * absent and "" name the same triple; ids 1 … max are kept, later new triples get 0 and are
 * counted in `unkept`; `get` returns the triple as first seen (absent as undefined).
 */
import { ByteKeyTable, hashBytes } from "./byte-table.js";
import type { SensorRecordView } from "./sensor-record-reader.js";

/** Distinct triples one table keeps (RecordLabels' bound). */
export const LABELS_MAX = 1 << 18;

export type LabelTriple = readonly [string | undefined, string | undefined, string | undefined];

/** The decoded fields {@link LabelTable.idOf} takes (a SensorReading fits). */
export interface LabelFields {
  sensor_unit?: string;
  operating_mode?: string;
  work_order_id?: string;
}

/** The reader admits only well-formed UTF-8 without a leading BOM, which every decoder reads alike. */
const UTF8 = new TextDecoder("utf-8", { ignoreBOM: true });

export class LabelTable {
  private readonly table: ByteKeyTable;
  private readonly triples: Array<LabelTriple | undefined> = [undefined];
  /** The triple's key: for unit and mode a u32 length and the bytes, then the work order's bytes. */
  private scratch: Uint8Array = new Uint8Array(256);
  /** Records whose triple was new once the table was full. */
  unkept = 0;

  constructor(private readonly max = LABELS_MAX) {
    this.table = new ByteKeyTable(Math.max(1, max));
  }

  /** The id of the triple whose bytes `view` locates in `bytes` (as {@link SensorRecordReader.read} left it). */
  idOfView(bytes: Uint8Array, view: SensorRecordView): number {
    if (view.unitStart < 0 && view.modeStart < 0 && view.workOrderStart < 0) return 0;
    this.room(8 + view.unitLength + view.modeLength + view.workOrderLength);
    let at = this.putBytes(0, bytes, view.unitStart, view.unitLength, true);
    at = this.putBytes(at, bytes, view.modeStart, view.modeLength, true);
    at = this.putBytes(at, bytes, view.workOrderStart, view.workOrderLength, false);
    const found = this.find(at);
    if (found !== 0 || this.full()) return found;
    const unit = text(bytes, view.unitStart, view.unitLength);
    return this.add(at, [unit, text(bytes, view.modeStart, view.modeLength), text(bytes, view.workOrderStart, view.workOrderLength)]);
  }

  /** The id of a decoded record's triple: the same id as {@link idOfView} gives for its bytes. */
  idOf(r: LabelFields): number {
    const { sensor_unit: unit, operating_mode: mode, work_order_id: workOrder } = r;
    if (unit === undefined && mode === undefined && workOrder === undefined) return 0;
    this.room(8 + 3 * ((unit?.length ?? 0) + (mode?.length ?? 0) + (workOrder?.length ?? 0)));
    let at = this.putText(0, unit ?? "", true);
    at = this.putText(at, mode ?? "", true);
    at = this.putText(at, workOrder ?? "", false);
    const found = this.find(at);
    if (found !== 0 || this.full()) return found;
    return this.add(at, [unit, mode, workOrder]);
  }

  /** The triple of an id; undefined for 0. */
  get(id: number): LabelTriple | undefined {
    return this.triples[id];
  }

  /** Distinct triples kept. */
  get size(): number {
    return this.triples.length - 1;
  }

  private find(length: number): number {
    const e = this.table.find(this.scratch, 0, length, hashBytes(this.scratch, 0, length));
    return e < 0 ? 0 : e + 1;
  }

  /** True, counting the record as unkept, once `max` triples are kept. */
  private full(): boolean {
    if (this.triples.length <= this.max) return false;
    this.unkept++;
    return true;
  }

  private add(length: number, triple: LabelTriple): number {
    this.table.insert(this.scratch, 0, length, hashBytes(this.scratch, 0, length));
    this.triples.push(triple);
    return this.triples.length - 1;
  }

  private room(bytes: number): void {
    if (bytes > this.scratch.length) this.scratch = new Uint8Array(Math.max(bytes, 2 * this.scratch.length));
  }

  private putBytes(at: number, bytes: Uint8Array, start: number, length: number, prefixed: boolean): number {
    const n = start < 0 ? 0 : length;
    if (prefixed) at = putU32(this.scratch, at, n);
    for (let i = 0; i < n; i++) this.scratch[at + i] = bytes[start + i];
    return at + n;
  }

  /**
   * `s` as generalised UTF-8 (a lone surrogate as its own 3 bytes, as WTF-8 does): equal to the
   * message bytes for text that came from well-formed UTF-8, and one-to-one on all JS strings — so
   * two strings RecordLabels tells apart never share a key here.
   */
  private putText(at: number, s: string, prefixed: boolean): number {
    const start = prefixed ? at + 4 : at;
    const b = this.scratch;
    let o = start;
    for (let i = 0; i < s.length; i++) {
      let c = s.charCodeAt(i);
      if (c < 0x80) {
        b[o++] = c;
        continue;
      }
      if (c < 0x800) {
        b[o++] = 0xc0 | (c >> 6);
      } else {
        const next = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
        if (c >= 0xd800 && c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
          i++;
          b[o++] = 0xf0 | (c >> 18);
          b[o++] = 0x80 | ((c >> 12) & 0x3f);
        } else b[o++] = 0xe0 | (c >> 12);
        b[o++] = 0x80 | ((c >> 6) & 0x3f);
      }
      b[o++] = 0x80 | (c & 0x3f);
    }
    if (prefixed) putU32(b, at, o - start);
    return o;
  }
}

function putU32(b: Uint8Array, at: number, v: number): number {
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
  b[at + 2] = (v >>> 16) & 0xff;
  b[at + 3] = v >>> 24;
  return at + 4;
}

function text(bytes: Uint8Array, start: number, length: number): string | undefined {
  return start < 0 ? undefined : UTF8.decode(bytes.subarray(start, start + length));
}
