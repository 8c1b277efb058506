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
 * Layout per the MessagePack spec (https://github.com/msgpack/msgpack/blob/master/spec.md); numbers
 * are read with the library's own formulae (64-bit ints as high × 2^32 + low).
 */
import { DEFAULT_DECODE_LIMITS, type DecodeLimits } from "./decode-limits.js";
import { TIME_ABS_MAX_MS } from "./frame-codec.js";

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
}

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
/** MessagePack extension type of timestamps (−1 as a byte). */
const EXT_TIMESTAMP = 0xff;

const F64 = new Float64Array(1);
const F64_BYTES = new Uint8Array(F64.buffer);
const F32 = new Float32Array(1);
const F32_BYTES = new Uint8Array(F32.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export class SensorRecordReader {
  /** Read position in the current message. */
  private p = 0;
  private end = 0;
  /** The last string read: its bytes' start and length. */
  private sStart = 0;
  private sLength = 0;
  /** The last number read. */
  private num = 0;

  constructor(private readonly limits: Readonly<DecodeLimits> = DEFAULT_DECODE_LIMITS) {}

  /**
   * Reads `bytes` as a sensor record that arrived on the subject whose machine token is `machine`
   * and sensor token `sensor` (undefined on a machine's subject `lw.<site>.sensor.<machine>`), the
   * tokens as parseSubject gave them. True: `out` holds the reading. False: not proved valid —
   * run the generic decoder; `out` is then unspecified.
   */
  read(bytes: Uint8Array, machine: string, sensor: string | undefined, out: SensorRecordView): boolean {
    const n = bytes.length;
    if (n === 0 || n > this.limits.recordBytesMax || this.limits.depthMax < 1) return false;
    this.end = n;
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
    return this.p === n && (seen & REQUIRED) === REQUIRED;
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
        if (!this.time(bytes)) return false;
        out.time = this.num;
        return true;
      case VALUE:
        if (!this.number(bytes) || !Number.isFinite(this.num)) return false;
        out.value = this.num;
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

  /** The entries of the top-level map, or -1 when the message does not start with a whole map header. */
  private mapHeader(bytes: Uint8Array): number {
    const h = bytes[0];
    if (h >= 0x80 && h <= 0x8f) {
      this.p = 1;
      return h & 0x0f;
    }
    if (h === 0xde && this.end >= 3) {
      this.p = 3;
      return (bytes[1] << 8) | bytes[2];
    }
    if (h === 0xdf && this.end >= 5) {
      this.p = 5;
      return u32(bytes, 1);
    }
    return -1;
  }

  /** A string (fixstr, str 8/16/32) within `stringBytesMax` and the message: sets sStart/sLength. */
  private str(bytes: Uint8Array): boolean {
    const p = this.p;
    if (p >= this.end) return false;
    const h = bytes[p];
    let header = 1;
    let length: number;
    if (h >= 0xa0 && h <= 0xbf) length = h & 0x1f;
    else if (h === 0xd9 && p + 2 <= this.end) {
      header = 2;
      length = bytes[p + 1];
    } else if (h === 0xda && p + 3 <= this.end) {
      header = 3;
      length = (bytes[p + 1] << 8) | bytes[p + 2];
    } else if (h === 0xdb && p + 5 <= this.end) {
      header = 5;
      length = u32(bytes, p + 1);
    } else return false;
    if (length > this.limits.stringBytesMax || p + header + length > this.end) return false;
    this.sStart = p + header;
    this.sLength = length;
    this.p = p + header + length;
    return true;
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

  /** Any MessagePack int or float: sets num. */
  private number(bytes: Uint8Array): boolean {
    const p = this.p;
    if (p >= this.end) return false;
    const h = bytes[p];
    if (h <= 0x7f || h >= 0xe0) {
      this.num = h <= 0x7f ? h : h - 0x100;
      this.p = p + 1;
      return true;
    }
    const size = h === 0xca ? 4 : h === 0xcb ? 8 : h >= 0xcc && h <= 0xd3 ? 1 << (h & 0x03) : 0;
    if (size === 0 || p + 1 + size > this.end) return false;
    this.numberAt(bytes, h, p + 1);
    this.p = p + 1 + size;
    return true;
  }

  /** The timestamp field by timeField's rules, for the encodings of the module comment: sets num. */
  private time(bytes: Uint8Array): boolean {
    if (this.p >= this.end) return false;
    const h = bytes[this.p];
    if ((h >= 0xa0 && h <= 0xbf) || (h >= 0xd9 && h <= 0xdb)) {
      if (!this.str(bytes) || this.sLength !== 24) return false;
      return this.isoMs(bytes, this.sStart);
    }
    if (h === 0xd6 || h === 0xd7 || h === 0xc7) return this.timestampExt(bytes);
    return this.number(bytes) && Math.abs(this.num) <= TIME_ABS_MAX_MS;
  }

  /** The timestamp extension as the library reads it: `new Date(sec × 1e3 + nsec / 1e6)`, then getTime. */
  private timestampExt(bytes: Uint8Array): boolean {
    const p = this.p;
    const h = bytes[p];
    const size = h === 0xd6 ? 4 : h === 0xd7 ? 8 : p + 1 < this.end ? bytes[p + 1] : 0;
    const data = h === 0xc7 ? p + 3 : p + 2;
    if (size !== 4 && size !== 8 && size !== 12) return false;
    if (size > this.limits.extBytesMax || data + size > this.end || bytes[data - 1] !== EXT_TIMESTAMP) return false;
    let ms: number;
    if (size === 4) ms = u32(bytes, data) * 1e3;
    else if (size === 8) {
      const hi = u32(bytes, data);
      ms = ((hi & 0x3) * 0x1_0000_0000 + u32(bytes, data + 4)) * 1e3 + (hi >>> 2) / 1e6;
    } else {
      this.numberAt(bytes, 0xd3, data + 4);
      ms = this.num * 1e3 + u32(bytes, data) / 1e6;
    }
    // A Date's TimeClip: out of range is NaN (bad_timestamp), else truncated, -0 made +0.
    if (!(Math.abs(ms) <= TIME_ABS_MAX_MS)) return false;
    this.num = Math.trunc(ms) + 0;
    this.p = data + size;
    return true;
  }

  /** The number after type byte `h` (float 32/64, uint/int 8…64) at `at`, as @msgpack/msgpack reads it, into num (a method, not a function returning a double, which would box it). */
  private numberAt(bytes: Uint8Array, h: number, at: number): void {
    switch (h) {
      case 0xca:
        for (let i = 0; i < 4; i++) F32_BYTES[LITTLE_ENDIAN ? 3 - i : i] = bytes[at + i];
        this.num = F32[0];
        return;
      case 0xcb:
        for (let i = 0; i < 8; i++) F64_BYTES[LITTLE_ENDIAN ? 7 - i : i] = bytes[at + i];
        this.num = F64[0];
        return;
      case 0xcc:
        this.num = bytes[at];
        return;
      case 0xcd:
        this.num = (bytes[at] << 8) | bytes[at + 1];
        return;
      case 0xce:
        this.num = u32(bytes, at);
        return;
      case 0xcf:
        this.num = u32(bytes, at) * 0x1_0000_0000 + u32(bytes, at + 4);
        return;
      case 0xd0:
        this.num = (bytes[at] << 24) >> 24;
        return;
      case 0xd1:
        this.num = (((bytes[at] << 8) | bytes[at + 1]) << 16) >> 16;
        return;
      case 0xd2:
        this.num = (bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3];
        return;
      default: // 0xd3
        this.num = ((bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]) * 0x1_0000_0000 + u32(bytes, at + 4);
        return;
    }
  }

  /**
   * Epoch ms of `YYYY-MM-DDTHH:MM:SS.sssZ` at `at` into num; false unless every field is in range (month
   * 1–12, the month's days, hour ≤ 23, minute and second ≤ 59): for those, Date.parse — which the
   * generic path calls on this form — gives this same value (ECMA-262 §21.4.1.32, Date Time String
   * Format); V8's roll-over of "02-31" or "24:00" is left to it.
   */
  private isoMs(b: Uint8Array, at: number): boolean {
    for (let i = 0; i < ISO_AT.length; i++) if (b[at + ISO_AT[i]] !== ISO_BYTE[i]) return false;
    const year = 100 * digits2(b, at) + digits2(b, at + 2);
    const month = digits2(b, at + 5);
    const day = digits2(b, at + 8);
    const hour = digits2(b, at + 11);
    const minute = digits2(b, at + 14);
    const second = digits2(b, at + 17);
    const milli = 10 * digits2(b, at + 20) + digit(b, at + 22);
    const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
    const last = month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1];
    // NaN (a non-digit) fails every comparison.
    if (!(year >= 0 && month >= 1 && month <= 12 && day >= 1 && day <= last && hour <= 23 && minute <= 59 && second <= 59 && milli >= 0)) {
      return false;
    }
    this.num = daysFromCivil(year, month, day) * 86_400_000 + hour * 3_600_000 + minute * 60_000 + second * 1000 + milli;
    return true;
  }
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

/** `bytes[start, start + length)` is the ASCII text of `text` (a non-ASCII byte or character never matches). */
function sameAscii(bytes: Uint8Array, start: number, length: number, text: string): boolean {
  if (text.length !== length) return false;
  for (let i = 0; i < length; i++) {
    const b = bytes[start + i];
    if (b >= 0x80 || b !== text.charCodeAt(i)) return false;
  }
  return true;
}

function u32(bytes: Uint8Array, at: number): number {
  return ((bytes[at] << 24) >>> 0) + ((bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]);
}

/** The ASCII digit at `at` as a number, or NaN. */
function digit(bytes: Uint8Array, at: number): number {
  const d = bytes[at] - 0x30;
  return d >= 0 && d <= 9 ? d : NaN;
}

/** Two ASCII digits at `at` as a number, or NaN. */
function digits2(bytes: Uint8Array, at: number): number {
  return 10 * digit(bytes, at) + digit(bytes, at + 1);
}

/** Offsets and bytes of the separators of `YYYY-MM-DDTHH:MM:SS.sssZ`. */
const ISO_AT = [4, 7, 10, 13, 16, 19, 23];
const ISO_BYTE = [0x2d, 0x2d, 0x54, 0x3a, 0x3a, 0x2e, 0x5a];
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms"). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
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
