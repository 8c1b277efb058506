/**
 * The MessagePack primitives of the schema-specialised record readers (sensor-record-reader.ts,
 * serial-record-reader.ts): a map header, a string, a number, a time field — each read once, in
 * place, into fields of the reader (no object, no string, no boxed double per message), and each
 * `false` wherever the generic decoder might read the bytes differently or reject them, so that the
 * readers can leave those messages to it.
 *
 * Layout per the MessagePack spec (https://github.com/msgpack/msgpack/blob/master/spec.md); numbers
 * are read with @msgpack/msgpack's own formulae (64-bit ints as high × 2^32 + low); times by the
 * generic decoder's rules (codecs.ts `timeField`).
 */
import { daysFromCivil, daysInMonth } from "../../engine/core/mod.js";
import { DEFAULT_DECODE_LIMITS, type DecodeLimits } from "./decode-limits.js";
import { TIME_ABS_MAX_MS } from "./frame-codec.js";

/** MessagePack extension type of timestamps (−1 as a byte). */
const EXT_TIMESTAMP = 0xff;

const F64 = new Float64Array(1);
const F64_BYTES = new Uint8Array(F64.buffer);
const F32 = new Float32Array(1);
const F32_BYTES = new Uint8Array(F32.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export class MsgpackFieldReader {
  /** Read position in the current message. */
  protected p = 0;
  protected end = 0;
  /** The last string read: its bytes' start and length. */
  protected sStart = 0;
  protected sLength = 0;
  /** The last number read. */
  protected num = 0;

  constructor(protected readonly limits: Readonly<DecodeLimits> = DEFAULT_DECODE_LIMITS) {}

  /** Starts reading a message: false when it is empty, over `recordBytesMax`, or the limits admit no map. */
  protected begin(bytes: Uint8Array): boolean {
    const n = bytes.length;
    if (n === 0 || n > this.limits.recordBytesMax || this.limits.depthMax < 1) return false;
    this.end = n;
    return true;
  }

  /** The entries of the top-level map, or -1 when the message does not start with a whole map header. */
  protected mapHeader(bytes: Uint8Array): number {
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
  protected str(bytes: Uint8Array): boolean {
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

  /** Any MessagePack int or float: sets num. */
  protected number(bytes: Uint8Array): boolean {
    const p = this.p;
    if (p >= this.end) return false;
    const h = bytes[p];
    if (h <= 0x7f || h >= 0xe0) {
      this.num = h <= 0x7f ? h : h - 0x100;
      this.p = p + 1;
      return true;
    }
    if (h === 0xcf && p + 9 <= this.end) {
      // uint 64, the form encoders give epoch-ms times: numberAt's formula, without its dispatch.
      this.num = u32(bytes, p + 1) * 0x1_0000_0000 + u32(bytes, p + 5);
      this.p = p + 9;
      return true;
    }
    const size = h === 0xca ? 4 : h === 0xcb ? 8 : h >= 0xcc && h <= 0xd3 ? 1 << (h & 0x03) : 0;
    if (size === 0 || p + 1 + size > this.end) return false;
    this.numberAt(bytes, h, p + 1);
    this.p = p + 1 + size;
    return true;
  }

  /** The timestamp field by timeField's rules, for the encodings of the module comment: sets num. */
  protected time(bytes: Uint8Array): boolean {
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
  protected timestampExt(bytes: Uint8Array): boolean {
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
  protected numberAt(bytes: Uint8Array, h: number, at: number): void {
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
  protected isoMs(b: Uint8Array, at: number): boolean {
    for (let i = 0; i < ISO_AT.length; i++) if (b[at + ISO_AT[i]] !== ISO_BYTE[i]) return false;
    const year = 100 * digits2(b, at) + digits2(b, at + 2);
    const month = digits2(b, at + 5);
    const day = digits2(b, at + 8);
    const hour = digits2(b, at + 11);
    const minute = digits2(b, at + 14);
    const second = digits2(b, at + 17);
    const milli = 10 * digits2(b, at + 20) + digit(b, at + 22);
    const last = daysInMonth(year, month);
    // NaN (a non-digit) fails every comparison.
    if (!(year >= 0 && month >= 1 && month <= 12 && day >= 1 && day <= last && hour <= 23 && minute <= 59 && second <= 59 && milli >= 0)) {
      return false;
    }
    this.num = daysFromCivil(year, month, day) * 86_400_000 + hour * 3_600_000 + minute * 60_000 + second * 1000 + milli;
    return true;
  }
}

/** `bytes[start, start + length)` is the ASCII text of `text` (a non-ASCII byte or character never matches). */
export function sameAscii(bytes: Uint8Array, start: number, length: number, text: string): boolean {
  if (text.length !== length) return false;
  for (let i = 0; i < length; i++) {
    const b = bytes[start + i];
    if (b >= 0x80 || b !== text.charCodeAt(i)) return false;
  }
  return true;
}
export function u32(bytes: Uint8Array, at: number): number {
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
