/**
 * A reader specialised to the MessagePack sensor record (codecs.ts, "Field rules"), for the ingest
 * hot path: one pass over the bytes, nothing allocated, the numbers into a reused
 * {@link SensorRecordView} and the optional label strings as byte ranges.
 *
 * Contract: `read` returns true only for a message that `decodeMsgpackRecord(bytes, { limits,
 * subject })` accepts, with the same `timestamp` and `sensor_value` (bit for bit, -0 included) and
 * label bytes that decode to the same strings. Whenever acceptance is not proved cheaply it returns
 * false and the caller runs the generic decoder, which yields the reading or the exact DecodeError
 * — so every rejection, and its reason, stays the generic decoder's.
 *
 * The fast path takes (anything else is false):
 * - a map (fixmap, map16, map32) of at most `mapEntriesMax` entries whose keys are exactly the
 *   seven schema names, each at most once (an unknown or repeated key is false: the generic
 *   decoder ignores the one and lets the last of the other win);
 * - `machine_id` equal to the subject's machine, `sensor_type` equal to the subject's sensor or, on
 *   a machine's subject, a valid token — both ASCII (other ids take the generic path, which
 *   compares decoded strings);
 * - `timestamp`: any MessagePack int or float (finite, within ±8.64e15), a 24-byte
 *   `YYYY-MM-DDTHH:MM:SS.sssZ` with in-range fields (what `Date#toISOString` writes), or the
 *   timestamp extension −1 in 32, 64 or 96 bits within a Date's range;
 * - `sensor_value`: any MessagePack int or float, finite;
 * - `sensor_unit`, `operating_mode`, `work_order_id`: nil (absent) or a string of valid UTF-8 not
 *   starting with a BOM (the library decodes long strings with a TextDecoder, which drops it);
 * - every string within `stringBytesMax`, the extension within `extBytesMax`, the message within
 *   `recordBytesMax` and ending exactly after the map.
 * The MessagePack primitives (map header, string, number, time) are msgpack-fields.ts's, shared
 * with the serial record reader.
 */
import { MsgpackFieldReader, sameAscii } from "./msgpack-fields.js";

/** What {@link SensorRecordReader.read} fills: numbers, and byte ranges into the message (start −1: absent). */
export class SensorRecordView {
  /** `timestamp`, epoch ms. */
  time = 0;
  /** `sensor_value`, finite. */
  value = 0;
  machineStart = -1;
  machineLength = 0;
  sensorStart = -1;
  sensorLength = 0;
  unitStart = -1;
  unitLength = 0;
  modeStart = -1;
  modeLength = 0;
  workOrderStart = -1;
  workOrderLength = 0;
  /** Where the `timestamp` and `sensor_value` values start and end (their MessagePack bytes, type byte included). */
  timeAt = 0;
  timeEnd = 0;
  valueAt = 0;
  valueEnd = 0;
  /** True when the last read matched the kept layout of its slot ({@link SensorRecordReader.readKept}): the label bytes are the kept ones. */
  kept = false;
}

/**
 * The last record a slot (a subject) read, as a layout: its bytes, and where its time and value
 * are. Records of one key are made by one encoder and differ, as a rule, in those two values only.
 */
interface KeptLayout {
  bytes: Uint8Array;
  timeAt: number;
  timeEnd: number;
  valueAt: number;
  valueEnd: number;
  unitStart: number;
  unitLength: number;
  modeStart: number;
  modeLength: number;
  workOrderStart: number;
  workOrderLength: number;
  machineStart: number;
  machineLength: number;
  sensorStart: number;
  sensorLength: number;
}

/**
 * Records longer than this keep no layout (a layout is a copy of the record): with the ingest
 * worker's slots, its subject table's at most 65,536 subjects (SUBJECT_KEYS_MAX), the copies stay
 * under 16 MiB a worker (a simulator record is 161 bytes, the e2e bench's about 130).
 */
export const KEPT_LAYOUT_BYTES_MAX = 256;

const FIELD_NAMES = ["machine_id", "sensor_type", "timestamp", "sensor_value", "sensor_unit", "operating_mode", "work_order_id"];
const FIELD_BYTES = FIELD_NAMES.map((n) => new TextEncoder().encode(n));
const MACHINE = 0;
const SENSOR = 1;
const TIME = 2;
const VALUE = 3;
const UNIT = 4;
const MODE = 5;
const WORK_ORDER = 6;
const REQUIRED = (1 << MACHINE) | (1 << SENSOR) | (1 << TIME) | (1 << VALUE);

export class SensorRecordReader extends MsgpackFieldReader {
  /** Per slot, the layout of the last record it read in full (bounded by the slots the caller uses: its subject table). */
  private readonly layouts: Array<KeptLayout | undefined> = [];

  /**
   * As {@link read}, for records of slot `slot` (the caller's id of the subject): a record whose
   * bytes equal those of the slot's last record read in full everywhere but in its `timestamp` and
   * `sensor_value` values — the same length, map, keys, ids and labels, byte for byte — takes its
   * two numbers by the same primitives `read` uses, each of which must end exactly where the kept
   * one did; so it is accepted exactly when `read` would accept it, with the same reading. Any
   * other record is read in full, and its layout kept. `out.kept` says which way it went.
   *
   * Why: the full walk (the map, seven key names, the ids against the subject, the labels' UTF-8)
   * was about a tenth of an ingest worker's CPU in `bench e2e`; a compare of the bytes is a loop.
   */
  readKept(bytes: Uint8Array, slot: number, machine: string, sensor: string | undefined, out: SensorRecordView): boolean {
    const k = this.layouts[slot];
    if (k !== undefined && this.matches(k, bytes, out)) return true;
    if (!this.read(bytes, machine, sensor, out)) return false;
    if (bytes.length <= KEPT_LAYOUT_BYTES_MAX) this.layouts[slot] = layoutOf(bytes, out);
    return true;
  }

  /** The record has the kept layout and its time and value read as `read` reads them: `out` filled. */
  private matches(k: KeptLayout, bytes: Uint8Array, out: SensorRecordView): boolean {
    const kb = k.bytes;
    const n = kb.length;
    if (bytes.length !== n || !this.begin(bytes)) return false;
    // The two value spans in byte order, and equal bytes around them.
    const firstAt = Math.min(k.timeAt, k.valueAt);
    const firstEnd = k.timeAt < k.valueAt ? k.timeEnd : k.valueEnd;
    const secondAt = Math.max(k.timeAt, k.valueAt);
    const secondEnd = k.timeAt < k.valueAt ? k.valueEnd : k.timeEnd;
    for (let i = 0; i < firstAt; i++) if (bytes[i] !== kb[i]) return false;
    for (let i = firstEnd; i < secondAt; i++) if (bytes[i] !== kb[i]) return false;
    for (let i = secondEnd; i < n; i++) if (bytes[i] !== kb[i]) return false;
    this.p = k.timeAt;
    if (!this.time(bytes) || this.p !== k.timeEnd) return false;
    const time = this.num;
    this.p = k.valueAt;
    if (!this.number(bytes) || !Number.isFinite(this.num) || this.p !== k.valueEnd) return false;
    out.time = time;
    out.value = this.num;
    out.machineStart = k.machineStart;
    out.machineLength = k.machineLength;
    out.sensorStart = k.sensorStart;
    out.sensorLength = k.sensorLength;
    out.unitStart = k.unitStart;
    out.unitLength = k.unitLength;
    out.modeStart = k.modeStart;
    out.modeLength = k.modeLength;
    out.workOrderStart = k.workOrderStart;
    out.workOrderLength = k.workOrderLength;
    out.timeAt = k.timeAt;
    out.timeEnd = k.timeEnd;
    out.valueAt = k.valueAt;
    out.valueEnd = k.valueEnd;
    out.kept = true;
    return true;
  }

  /**
   * Reads `bytes` as a sensor record that arrived on the subject whose machine token is `machine`
   * and sensor token `sensor` (undefined on a machine's subject `lw.<site>.sensor.<machine>`), the
   * tokens as parseSubject gave them. True: `out` holds the reading. False: not proved valid —
   * run the generic decoder; `out` is then unspecified.
   */
  read(bytes: Uint8Array, machine: string, sensor: string | undefined, out: SensorRecordView): boolean {
    out.kept = false;
    if (!this.begin(bytes)) return false;
    const entries = this.mapHeader(bytes);
    if (entries < 0 || entries > this.limits.mapEntriesMax) return false;
    out.unitStart = out.modeStart = out.workOrderStart = -1;
    out.unitLength = out.modeLength = out.workOrderLength = 0;
    let seen = 0;
    for (let i = 0; i < entries; i++) {
      if (!this.str(bytes)) return false;
      const field = fieldOf(bytes, this.sStart, this.sLength);
      if (field < 0 || (seen & (1 << field)) !== 0) return false;
      seen |= 1 << field;
      if (!this.field(bytes, field, machine, sensor, out)) return false;
    }
    return this.p === bytes.length && (seen & REQUIRED) === REQUIRED;
  }

  private field(bytes: Uint8Array, field: number, machine: string, sensor: string | undefined, out: SensorRecordView): boolean {
    switch (field) {
      case MACHINE:
        if (!this.str(bytes) || !sameAscii(bytes, this.sStart, this.sLength, machine)) return false;
        out.machineStart = this.sStart;
        out.machineLength = this.sLength;
        return true;
      case SENSOR:
        if (!this.str(bytes)) return false;
        if (sensor === undefined ? !this.validToken(bytes) : !sameAscii(bytes, this.sStart, this.sLength, sensor)) return false;
        out.sensorStart = this.sStart;
        out.sensorLength = this.sLength;
        return true;
      case TIME:
        out.timeAt = this.p;
        if (!this.time(bytes)) return false;
        out.time = this.num;
        out.timeEnd = this.p;
        return true;
      case VALUE:
        out.valueAt = this.p;
        if (!this.number(bytes) || !Number.isFinite(this.num)) return false;
        out.value = this.num;
        out.valueEnd = this.p;
        return true;
      case UNIT:
        if (!this.label(bytes)) return false;
        out.unitStart = this.sStart;
        out.unitLength = this.sLength;
        return true;
      case MODE:
        if (!this.label(bytes)) return false;
        out.modeStart = this.sStart;
        out.modeLength = this.sLength;
        return true;
      case WORK_ORDER:
        if (!this.label(bytes)) return false;
        out.workOrderStart = this.sStart;
        out.workOrderLength = this.sLength;
        return true;
      default:
        return false;
    }
  }

  /** A label: nil (sStart −1) or a string of valid UTF-8 without a leading BOM. */
  private label(bytes: Uint8Array): boolean {
    if (this.p < this.end && bytes[this.p] === 0xc0) {
      this.p++;
      this.sStart = -1;
      this.sLength = 0;
      return true;
    }
    return this.str(bytes) && utf8Plain(bytes, this.sStart, this.sStart + this.sLength);
  }

  /** The last string is a subject token by tokenProblem's rules, in ASCII: 1…tokenBytesMax bytes of `!`…`~` except `.`, `*`, `>`. */
  private validToken(bytes: Uint8Array): boolean {
    const n = this.sLength;
    if (n === 0 || n > this.limits.tokenBytesMax) return false;
    for (let i = this.sStart; i < this.sStart + n; i++) {
      const b = bytes[i];
      if (b < 0x21 || b > 0x7e || b === 0x2e || b === 0x2a || b === 0x3e) return false;
    }
    return true;
  }
}

function layoutOf(bytes: Uint8Array, v: SensorRecordView): KeptLayout {
  return {
    // A copy (a Node Buffer's slice, what nats.js hands out, would be a view).
    bytes: new Uint8Array(bytes),
    timeAt: v.timeAt,
    timeEnd: v.timeEnd,
    valueAt: v.valueAt,
    valueEnd: v.valueEnd,
    unitStart: v.unitStart,
    unitLength: v.unitLength,
    modeStart: v.modeStart,
    modeLength: v.modeLength,
    workOrderStart: v.workOrderStart,
    workOrderLength: v.workOrderLength,
    machineStart: v.machineStart,
    machineLength: v.machineLength,
    sensorStart: v.sensorStart,
    sensorLength: v.sensorLength,
  };
}

/** Which schema field a key's bytes name, or -1: the one candidate of that length (two share 11, told apart by byte 7), compared in full. */
function fieldOf(bytes: Uint8Array, start: number, length: number): number {
  const f =
    length === 9
      ? TIME
      : length === 10
        ? MACHINE
        : length === 11
          ? bytes[start + 7] === 0x74
            ? SENSOR
            : UNIT
          : length === 12
            ? VALUE
            : length === 13
              ? WORK_ORDER
              : length === 14
                ? MODE
                : -1;
  if (f < 0) return -1;
  const name = FIELD_BYTES[f];
  for (let i = 0; i < length; i++) if (bytes[start + i] !== name[i]) return -1;
  return f;
}

/** `bytes[start, end)` is well-formed UTF-8 (RFC 3629 §4: no overlongs, surrogates or code points past U+10FFFF) and starts without a BOM. */
function utf8Plain(bytes: Uint8Array, start: number, end: number): boolean {
  if (end - start >= 3 && bytes[start] === 0xef && bytes[start + 1] === 0xbb && bytes[start + 2] === 0xbf) return false;
  let i = start;
  while (i < end) {
    const b = bytes[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    const n = b >= 0xc2 && b <= 0xdf ? 1 : b >= 0xe0 && b <= 0xef ? 2 : b >= 0xf0 && b <= 0xf4 ? 3 : -1;
    if (n < 0 || i + n >= end) return false;
    const lo = b === 0xe0 ? 0xa0 : b === 0xf0 ? 0x90 : 0x80;
    const hi = b === 0xed ? 0x9f : b === 0xf4 ? 0x8f : 0xbf;
    if (bytes[i + 1] < lo || bytes[i + 1] > hi) return false;
    for (let k = 2; k <= n; k++) if (bytes[i + k] < 0x80 || bytes[i + k] > 0xbf) return false;
    i += n + 1;
  }
  return true;
}
