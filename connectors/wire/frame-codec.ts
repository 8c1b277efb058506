/**
 * The columnar frame: one message carrying many sensor readings, of one key or of many keys, with
 * times and values as raw little-endian numbers. Frames are how high rates are reached (DESIGN.md
 * §4); decoding one is a header check, a key table, and a validation pass over three columns.
 *
 * Layout, versions 1 and 2. Integers little-endian; offsets from the frame's first byte.
 *
 *   offset   size  field
 *   0        4     magic "LWFR" (4c 57 46 52)
 *   4        1     version = 1 or 2
 *   5        1     flags  bit 0  TIME_F64   times are float64 (else int64) epoch ms (version 1;
 *                                           reserved in version 2)
 *                         bit 1  INDEX_U32  key indices are u32 (else u16, or u8 with bit 3)
 *                         bit 2  ONE_KEY    no key-index column: every reading is key 0
 *                                           (needs keyCount = 1 and bits 1 and 3 clear)
 *                         bit 3  INDEX_U8   key indices are u8 (version 2 only; not with bit 1)
 *                         other bits reserved, 0 (set: `unsupported_version`)
 *   6        2     reserved, 0
 *   8        4     readingCount n (u32)
 *   12       4     keyCount k (u32)
 *   16       4     keyTableBytes K (u32): the key table without its padding
 *   20       4     reserved, 0
 *   24       K     key table: k × { byteLength u16, UTF-8 bytes }; each key is
 *                  `<machine_id>.<sensor_type>` (two subject tokens), no duplicates
 *   24+K     P     zero padding, P = 0…7, so that C = 24 + K + P is a multiple of 8
 *
 *   version 1
 *   C        8n    times: int64 or float64 per TIME_F64
 *   C+8n     8n    values: float64
 *   C+16n    w·n   key index per reading: u16 (w = 2) or u32 (w = 4); absent (w = 0) with ONE_KEY
 *   total    C + 16n + w·n bytes, exactly (else `truncated` / `trailing_bytes`)
 *
 *   version 2: times as offsets from a base, 13 bytes a reading instead of 18 for ≤ 256 keys
 *   C        8     time base: int64 epoch ms
 *   C+8      4n    time offsets: u32 ms, a reading's time = base + offset
 *   V        8n    values: float64, V = C + 8 + 4n rounded up to a multiple of 8 (zero padding)
 *   V+8n     w·n   key index per reading: u8 (w = 1), u16 (w = 2) or u32 (w = 4); absent (w = 0) with ONE_KEY
 *   total    V + 8n + w·n bytes, exactly
 *
 * Why version 2: integer-millisecond readings within 49.7 days of each other (what a producer
 * frames: seconds of a machine's sensors) need no 8 bytes of time each, and every byte of a frame
 * is paid for by the producer, nats-server and the consumer. A frame of 4096 readings of a few
 * keys is 53 KB instead of 74 KB, under the 64 KiB that nats-server and nats.js read at once:
 * nats-server spent 94–107 µs on a 53 KB message against 179–193 µs on a 74 KB one here (a
 * publisher and a subscriber on loopback). {@link encodeFrame} writes version 2 whenever the
 * times allow it (and `times` does not ask for int64 or float64).
 *
 * Why columns, 8-aligned: when the message starts at a multiple of 8 in its ArrayBuffer (and the
 * host is little-endian, as every Node target but s390x), `values` — and `times` when float64 —
 * are Float64Array views of the message, no copy. Otherwise each column is copied in bulk into an
 * aligned array (a memcpy; a DataView loop measured 2–3× slower), and on a big-endian host read
 * through a DataView. The narrow key-index column goes last so nothing needs padding after it.
 *
 * Bad readings. Structural faults reject the whole frame with a {@link DecodeError}: size, header,
 * key table, a key index out of range — the bytes cannot be trusted. A NaN/±Inf value, a NaN/±Inf
 * float64 time, or a time outside ±8.64e15 ms rejects only that reading: a failed sensor must not
 * take its neighbours' readings with it. Such readings are left out of the returned columns and
 * listed in `rejected` (index in the frame, reason), so `length + rejected.length = declared`:
 * nothing is dropped without a count.
 */
import { DEFAULT_DECODE_LIMITS, type DecodeLimits } from "./decode-limits.js";
import { DecodeError, EncodeError } from "../errors.js";
import { describeTokenProblem, tokenProblem, type SensorSubject } from "./subjects.js";

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

export const FRAME_MAGIC: readonly number[] = Object.freeze([0x4c, 0x57, 0x46, 0x52]);
/** The newest layout (time offsets); version 1 (int64 or float64 times) is read and written too. */
export const FRAME_VERSION = 2;
export const FRAME_HEADER_BYTES = 24;
export const FRAME_FLAG_TIME_F64 = 0x01;
export const FRAME_FLAG_INDEX_U32 = 0x02;
export const FRAME_FLAG_ONE_KEY = 0x04;
export const FRAME_FLAG_INDEX_U8 = 0x08;
/** A version 2 frame's readings lie within this many ms of its time base (u32 offsets). */
export const FRAME_TIME_OFFSET_MAX = 0xffff_ffff;
/** |t| ≤ 8.64e15 ms: the range of a JS Date (ECMA-262 §21.4.1.1), below 2^53 so exact as a double. */
export const TIME_ABS_MAX_MS = 8.64e15;

/** Readings as columns; `keyIndex` may be omitted when there is one key. */
export interface FrameColumns {
  keys: readonly string[];
  keyIndex?: ArrayLike<number>;
  times: ArrayLike<number>;
  values: ArrayLike<number>;
  /** Readings to encode (default: `values.length`). */
  length?: number;
}

/** One reading as an object, for producers that have them. */
export interface FrameReading {
  /** `<machine_id>.<sensor_type>` (see `sensorKey`). */
  key: string;
  time: number;
  value: number;
}

export interface FrameEncodeOptions {
  limits?: Readonly<DecodeLimits>;
  /**
   * Time offsets from a base (version 2: the default when every time is a safe integer and they
   * span at most {@link FRAME_TIME_OFFSET_MAX} ms), int64 (version 1: the default for integer times
   * spanning more) or float64 (version 1: the default otherwise).
   */
  times?: "offsets" | "int64" | "float64";
  /**
   * Key-index width; default u8 for ≤ 256 keys in a version 2 frame, u16 for ≤ 65 536 keys, else
   * u32 (u8 only in version 2). ONE_KEY is used for one key unless this is set.
   */
  keyIndex?: "u8" | "u16" | "u32";
}

export interface FrameDecodeOptions {
  limits?: Readonly<DecodeLimits>;
  /** The sensor subject the frame arrived on: every key must be of its machine (and sensor, if it names one). */
  subject?: SensorSubject;
}

/** A reading rejected on its own (the rest of its frame is accepted). */
export interface RejectedReading {
  /** Position in the frame, 0-based. */
  index: number;
  reason: "not_finite" | "bad_timestamp";
  field: "value" | "time";
}

export interface DecodedFrame {
  /** Shared between frames with the same key table (frozen): copy before changing. */
  keys: readonly string[];
  /** Valid readings, in frame order; these three arrays have exactly `length` elements. */
  keyIndex: Uint32Array;
  times: Float64Array;
  values: Float64Array;
  length: number;
  /** readingCount of the header: `length + rejected.length`. */
  declared: number;
  rejected: RejectedReading[];
  /**
   * True when `values` (and float64 `times`) are views of the input bytes: keep the input unchanged
   * while they are in use, or copy them.
   */
  zeroCopy: boolean;
}

/** Bytes of a frame of `n` readings and `keyTableBytes` of key table (unpadded), for sizing buffers and limits. */
export function frameByteLength(n: number, keyTableBytes: number, indexWidth: 0 | 1 | 2 | 4, version: 1 | 2 = 1): number {
  const columnsAt = align8(FRAME_HEADER_BYTES + keyTableBytes);
  return valuesOffset(columnsAt, n, version) + 8 * n + indexWidth * n;
}

/** Encodes readings (columns or objects) as one frame. Values are written as given, NaN included (see the module comment). Throws {@link EncodeError}. */
export function encodeFrame(input: FrameColumns | readonly FrameReading[], options: FrameEncodeOptions = {}): Uint8Array {
  const limits = options.limits ?? DEFAULT_DECODE_LIMITS;
  const c = Array.isArray(input) ? columnsOf(input as readonly FrameReading[]) : (input as FrameColumns);
  const n = c.length ?? c.values.length;
  if (!Number.isInteger(n) || n < 0 || n > c.values.length || n > c.times.length) {
    throw new EncodeError("invalid_field", "length", `${n} readings but ${c.times.length} times and ${c.values.length} values`);
  }
  if (n > limits.frameReadingsMax)
    throw new EncodeError("length_exceeded", "readings", `${n} is over frameReadingsMax (${limits.frameReadingsMax})`);
  const k = c.keys.length;
  if (k === 0 && n > 0) throw new EncodeError("missing_field", "keys", "readings without keys");
  if (k > limits.frameKeysMax) throw new EncodeError("length_exceeded", "keys", `${k} is over frameKeysMax (${limits.frameKeysMax})`);
  const keyBytes = c.keys.map((key) => encodeKey(key, limits));
  if (new Set(c.keys).size !== k) throw new EncodeError("invalid_field", "keys", "duplicate keys");
  const times = timeLayout(c.times, n, options.times);
  const version = times === "offsets" ? 2 : 1;
  const width = indexWidth(k, version, options.keyIndex);
  if (width !== 0) checkKeyIndex(c, n, k);

  const keyTableBytes = keyBytes.reduce((sum, b) => sum + 2 + b.length, 0);
  const total = frameByteLength(n, keyTableBytes, width, version);
  if (total > limits.frameBytesMax)
    throw new EncodeError("length_exceeded", "frame", `${total} bytes, over frameBytesMax (${limits.frameBytesMax})`);
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  out.set(FRAME_MAGIC, 0);
  out[4] = version;
  out[5] =
    (times === "float64" ? FRAME_FLAG_TIME_F64 : 0) |
    (width === 4 ? FRAME_FLAG_INDEX_U32 : width === 1 ? FRAME_FLAG_INDEX_U8 : width === 0 ? FRAME_FLAG_ONE_KEY : 0);
  dv.setUint32(8, n, true);
  dv.setUint32(12, k, true);
  dv.setUint32(16, keyTableBytes, true);
  let at = FRAME_HEADER_BYTES;
  for (const b of keyBytes) {
    dv.setUint16(at, b.length, true);
    out.set(b, at + 2);
    at += 2 + b.length;
  }
  const columnsAt = align8(at);
  const valuesAt = valuesOffset(columnsAt, n, version);
  if (times === "offsets") writeTimeOffsets(dv, columnsAt, c.times, n);
  else writeTimes(dv, columnsAt, c.times, n, times === "float64");
  writeFloat64s(dv, valuesAt, c.values, n);
  if (width !== 0) writeKeyIndex(dv, valuesAt + 8 * n, c.keyIndex as ArrayLike<number>, n, width);
  return out;
}

/** Decodes and validates one frame; see the module comment for what rejects the frame and what a reading. Throws {@link DecodeError}. */
export function decodeFrame(bytes: Uint8Array, options: FrameDecodeOptions = {}): DecodedFrame {
  const limits = options.limits ?? DEFAULT_DECODE_LIMITS;
  const h = readHeader(bytes, limits);
  const keys = readKeyTable(bytes, h, limits, options.subject);
  const n = h.n;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const values = readFloat64s(bytes, dv, h.valuesAt, n);
  const times =
    h.times === "float64"
      ? readFloat64s(bytes, dv, h.columnsAt, n)
      : h.times === "int64"
        ? readInt64Times(bytes, dv, h.columnsAt, n)
        : readTimeOffsets(dv, h.columnsAt, n);
  const keyIndex = readKeyIndex(bytes, dv, h.indexAt, n, h);
  const k = keys.length;
  let rejected: RejectedReading[] | null = null;
  for (let i = 0; i < n; i++) {
    if (keyIndex[i] >= k) {
      throw new DecodeError("malformed", `reading ${i} names key ${keyIndex[i]} of ${k}`, {
        field: "keyIndex",
        offset: h.indexAt + i * h.indexWidth,
      });
    }
    const v = values[i];
    const t = times[i];
    // One comparison chain for the common case: finite value, time in range.
    if (v - v === 0 && t >= -TIME_ABS_MAX_MS && t <= TIME_ABS_MAX_MS) continue;
    (rejected ??= []).push(readingRejection(i, v, t));
  }
  const zeroCopy = values.buffer === bytes.buffer;
  if (rejected === null) return { keys, keyIndex, times, values, length: n, declared: n, rejected: [], zeroCopy };
  return { ...compact(keyIndex, times, values, n, rejected), keys, declared: n, rejected, zeroCopy: false };
}

/** Columns to decode a frame into, from index `at` (a consumer's batch: times, values and key indices side by side). */
export interface FrameTarget {
  keyIndex: Uint32Array;
  times: Float64Array;
  values: Float64Array;
  at: number;
}

/** What {@link decodeFrameInto} wrote: the valid readings at `at … at + length` of the target, key indices into `keys`. */
export type DecodedFrameInto = Omit<DecodedFrame, "keyIndex" | "times" | "values" | "zeroCopy">;

/**
 * The readings a frame's header declares, or -1 when the bytes are too short to say (not a frame
 * header; {@link decodeFrame} says why): for sizing a {@link FrameTarget} before decoding into it.
 */
export function frameReadingCount(bytes: Uint8Array): number {
  if (bytes.length < FRAME_HEADER_BYTES) return -1;
  return (bytes[8] | (bytes[9] << 8) | (bytes[10] << 16) | (bytes[11] << 24)) >>> 0;
}

/**
 * {@link decodeFrame} straight into a consumer's columns: the same checks, rejections and errors,
 * with the columns copied in bulk into `target` (times converted there) instead of into arrays of
 * their own, and rejected readings closed up in place. Throws {@link DecodeError} (the target's
 * region is then undefined) and RangeError when the target has no room for the declared readings.
 */
export function decodeFrameInto(bytes: Uint8Array, target: FrameTarget, options: FrameDecodeOptions = {}): DecodedFrameInto {
  const limits = options.limits ?? DEFAULT_DECODE_LIMITS;
  const h = readHeader(bytes, limits);
  const keys = readKeyTable(bytes, h, limits, options.subject);
  const n = h.n;
  const at = target.at;
  if (at + n > target.times.length || at + n > target.values.length || at + n > target.keyIndex.length)
    throw new RangeError(`a frame of ${n} readings at ${at} of a target of ${target.times.length}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  copyFloat64s(bytes, dv, h.valuesAt, n, target.values, at);
  if (h.times === "float64") copyFloat64s(bytes, dv, h.columnsAt, n, target.times, at);
  else if (h.times === "int64") convertInt64Times(bytes, dv, h.columnsAt, n, target.times, at);
  else convertTimeOffsets(bytes, dv, h.columnsAt, n, target.times, at);
  copyKeyIndex(bytes, dv, h.indexAt, n, h, target.keyIndex, at);
  const rejected = validateReadings(target, n, keys.length, h.indexAt, h.indexWidth);
  if (rejected === null) return { keys, length: n, declared: n, rejected: [] };
  closeUp(target, n, rejected);
  return { keys, length: n - rejected.length, declared: n, rejected };
}

// ---------------------------------------------------------------------------------------------
// Internals
// ---------------------------------------------------------------------------------------------

/** decodeFrame's reading checks on a target's region: a key index out of range throws, a bad value or time is listed. */
function validateReadings(t: FrameTarget, n: number, k: number, indexAt: number, indexWidth: number): RejectedReading[] | null {
  const { keyIndex, times, values, at } = t;
  let rejected: RejectedReading[] | null = null;
  for (let i = 0; i < n; i++) {
    if (keyIndex[at + i] >= k) {
      throw new DecodeError("malformed", `reading ${i} names key ${keyIndex[at + i]} of ${k}`, {
        field: "keyIndex",
        offset: indexAt + i * indexWidth,
      });
    }
    const v = values[at + i];
    const time = times[at + i];
    if (v - v === 0 && time >= -TIME_ABS_MAX_MS && time <= TIME_ABS_MAX_MS) continue;
    (rejected ??= []).push(readingRejection(i, v, time));
  }
  return rejected;
}

/** The target's readings not in `rejected` (sorted by index) moved down over them, in order. */
function closeUp(t: FrameTarget, n: number, rejected: readonly RejectedReading[]): void {
  const { keyIndex, times, values, at } = t;
  let j = at;
  let r = 0;
  for (let i = 0; i < n; i++) {
    if (r < rejected.length && rejected[r].index === i) {
      r++;
      continue;
    }
    keyIndex[j] = keyIndex[at + i];
    times[j] = times[at + i];
    values[j] = values[at + i];
    j++;
  }
}

/** A float64 column into `out` from `to`: one bulk byte copy on a little-endian host. */
function copyFloat64s(bytes: Uint8Array, dv: DataView, at: number, n: number, out: Float64Array, to: number): void {
  if (LITTLE_ENDIAN) new Uint8Array(out.buffer, out.byteOffset + 8 * to, 8 * n).set(bytes.subarray(at, at + 8 * n));
  else for (let i = 0; i < n; i++) out[to + i] = dv.getFloat64(at + 8 * i, true);
}

/** int64 times as doubles into `out` from `to` (as {@link readInt64Times}: exact for |t| < 2^53). */
function convertInt64Times(bytes: Uint8Array, dv: DataView, at: number, n: number, out: Float64Array, to: number): void {
  if (!LITTLE_ENDIAN) {
    for (let i = 0; i < n; i++) out[to + i] = dv.getInt32(at + 8 * i + 4, true) * TWO_32 + dv.getUint32(at + 8 * i, true);
    return;
  }
  let w: Int32Array;
  let from = 0;
  if ((bytes.byteOffset + at) % 4 === 0) {
    w = new Int32Array(bytes.buffer, bytes.byteOffset + at, 2 * n);
  } else {
    // Unaligned: the raw words into the output region, converted in place (element i is words 2i, 2i+1 of it, read before written).
    new Uint8Array(out.buffer, out.byteOffset + 8 * to, 8 * n).set(bytes.subarray(at, at + 8 * n));
    w = new Int32Array(out.buffer, out.byteOffset, 2 * (to + n));
    from = 2 * to;
  }
  for (let i = 0; i < n; i++) out[to + i] = w[from + 2 * i + 1] * TWO_32 + (w[from + 2 * i] >>> 0);
}

/** A version 2 times column (base, u32 offsets) as doubles into `out` from `to`: base + offset, exact below 2^53. */
function convertTimeOffsets(bytes: Uint8Array, dv: DataView, at: number, n: number, out: Float64Array, to: number): void {
  const base = dv.getInt32(at + 4, true) * TWO_32 + dv.getUint32(at, true);
  if (!LITTLE_ENDIAN || (bytes.byteOffset + at) % 4 !== 0) {
    for (let i = 0; i < n; i++) out[to + i] = base + dv.getUint32(at + 8 + 4 * i, true);
    return;
  }
  const offsets = new Uint32Array(bytes.buffer, bytes.byteOffset + at + 8, n);
  for (let i = 0; i < n; i++) out[to + i] = base + offsets[i];
}

/** The key-index column into `out` from `to` (zeros for ONE_KEY). */
function copyKeyIndex(bytes: Uint8Array, dv: DataView, at: number, n: number, h: Header, out: Uint32Array, to: number): void {
  if (h.indexWidth === 0) {
    out.fill(0, to, to + n);
    return;
  }
  if (h.indexWidth === 1) {
    out.set(bytes.subarray(at, at + n), to);
    return;
  }
  if (!LITTLE_ENDIAN) {
    for (let i = 0; i < n; i++) out[to + i] = h.indexWidth === 4 ? dv.getUint32(at + 4 * i, true) : dv.getUint16(at + 2 * i, true);
    return;
  }
  if (h.indexWidth === 4) {
    new Uint8Array(out.buffer, out.byteOffset + 4 * to, 4 * n).set(bytes.subarray(at, at + 4 * n));
    return;
  }
  if ((bytes.byteOffset + at) % 2 === 0) {
    out.set(new Uint16Array(bytes.buffer, bytes.byteOffset + at, n), to);
    return;
  }
  const narrow = new Uint16Array(n);
  new Uint8Array(narrow.buffer).set(bytes.subarray(at, at + 2 * n));
  out.set(narrow, to);
}

const TWO_32 = 4294967296;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const UTF8 = new TextDecoder("utf-8", { fatal: true });
const TEXT = new TextEncoder();

interface Header {
  n: number;
  k: number;
  keyTableBytes: number;
  /** How the times column holds the times: version 1's int64 or float64, version 2's base and offsets. */
  times: "int64" | "float64" | "offsets";
  indexWidth: 0 | 1 | 2 | 4;
  /** After the key table and its padding: the times column (version 2: its base). */
  columnsAt: number;
  valuesAt: number;
  indexAt: number;
}

/** Where the values column starts: after 8n bytes of times (version 1), or after the time base and 4n bytes of offsets, padded to 8 (version 2). */
function valuesOffset(columnsAt: number, n: number, version: 1 | 2): number {
  return version === 1 ? columnsAt + 8 * n : align8(columnsAt + 8 + 4 * n);
}

/** Arithmetic, not `& ~7`: sizes may exceed 2^31 before the checks reject them. */
function align8(x: number): number {
  return Math.ceil(x / 8) * 8;
}

function readHeader(bytes: Uint8Array, limits: Readonly<DecodeLimits>): Header {
  const size = bytes.length;
  if (size > limits.frameBytesMax) {
    throw new DecodeError("too_large", `${size} bytes, frameBytesMax is ${limits.frameBytesMax}`, { limit: "frameBytesMax" });
  }
  for (let i = 0; i < 4 && i < size; i++) {
    if (bytes[i] !== FRAME_MAGIC[i]) throw new DecodeError("malformed", "not a frame (bad magic)", { field: "magic", offset: i });
  }
  if (size < FRAME_HEADER_BYTES)
    throw new DecodeError("truncated", `${size} bytes, a frame header needs ${FRAME_HEADER_BYTES}`, { field: "header" });
  const dv = new DataView(bytes.buffer, bytes.byteOffset, FRAME_HEADER_BYTES);
  const version = bytes[4];
  if (version !== 1 && version !== 2)
    throw new DecodeError("unsupported_version", `frame version ${version}, this build reads 1 and 2`, { field: "version", offset: 4 });
  const flags = bytes[5];
  if ((flags & ~(version === 1 ? 0x07 : 0x0e)) !== 0)
    throw new DecodeError("unsupported_version", `reserved flag bits set (0x${flags.toString(16)})`, { field: "flags", offset: 5 });
  if (dv.getUint16(6, true) !== 0 || dv.getUint32(20, true) !== 0)
    throw new DecodeError("malformed", "reserved header fields are not 0", { field: "header" });
  const n = dv.getUint32(8, true);
  const k = dv.getUint32(12, true);
  const keyTableBytes = dv.getUint32(16, true);
  if (n > limits.frameReadingsMax)
    throw new DecodeError("length_exceeded", `${n} readings, frameReadingsMax is ${limits.frameReadingsMax}`, {
      field: "readingCount",
      limit: "frameReadingsMax",
      offset: 8,
    });
  if (k > limits.frameKeysMax)
    throw new DecodeError("length_exceeded", `${k} keys, frameKeysMax is ${limits.frameKeysMax}`, {
      field: "keyCount",
      limit: "frameKeysMax",
      offset: 12,
    });
  const oneKey = (flags & FRAME_FLAG_ONE_KEY) !== 0;
  const u32 = (flags & FRAME_FLAG_INDEX_U32) !== 0;
  const u8 = (flags & FRAME_FLAG_INDEX_U8) !== 0;
  if (oneKey && (k !== 1 || u32 || u8))
    throw new DecodeError("malformed", "ONE_KEY needs exactly one key and no INDEX_U32 or INDEX_U8", { field: "flags", offset: 5 });
  if (u32 && u8) throw new DecodeError("malformed", "INDEX_U32 and INDEX_U8 both set", { field: "flags", offset: 5 });
  if (k === 0 && n > 0) throw new DecodeError("malformed", `${n} readings and no keys`, { field: "keyCount", offset: 12 });
  if (keyTableBytes < 2 * k)
    throw new DecodeError("malformed", `key table of ${keyTableBytes} bytes cannot hold ${k} keys`, { field: "keyTableBytes", offset: 16 });
  const indexWidth = oneKey ? 0 : u32 ? 4 : u8 ? 1 : 2;
  // All terms are < 2^32 · 20, exact in a double: no overflow games.
  const expected = frameByteLength(n, keyTableBytes, indexWidth, version);
  if (size < expected) throw new DecodeError("truncated", `${size} bytes, the header declares ${expected}`, { field: "size" });
  if (size > expected) throw new DecodeError("trailing_bytes", `${size} bytes, the header declares ${expected}`, { field: "size" });
  const columnsAt = align8(FRAME_HEADER_BYTES + keyTableBytes);
  const valuesAt = valuesOffset(columnsAt, n, version);
  const times = version === 2 ? "offsets" : (flags & FRAME_FLAG_TIME_F64) !== 0 ? "float64" : "int64";
  for (let p = columnsAt + 8 + 4 * n; version === 2 && p < valuesAt; p++)
    if (bytes[p] !== 0) throw new DecodeError("malformed", "padding after the time offsets is not zero", { field: "padding", offset: p });
  return { n, k, keyTableBytes, times, indexWidth, columnsAt, valuesAt, indexAt: valuesAt + 8 * n };
}

/**
 * A producer sends the same key table frame after frame, and decoding + validating a table of a
 * hundred keys costs about as much as the columns of a few thousand readings; so the last few
 * tables (per limits) are kept with their keys, and a table equal byte for byte (a native memcmp)
 * is reused. Bounded: {@link KEY_TABLE_CACHE_ENTRIES} tables of at most {@link KEY_TABLE_CACHE_BYTES} each.
 */
interface KeyTable {
  bytes: Uint8Array;
  keys: readonly string[];
  machines: string[];
  sensors: string[];
}

const KEY_TABLE_CACHE_ENTRIES = 8;
const KEY_TABLE_CACHE_BYTES = 64 * 1024;
const keyTableCaches = new WeakMap<Readonly<DecodeLimits>, KeyTable[]>();

function readKeyTable(bytes: Uint8Array, h: Header, limits: Readonly<DecodeLimits>, subject: SensorSubject | undefined): readonly string[] {
  const end = FRAME_HEADER_BYTES + h.keyTableBytes;
  for (let p = end; p < h.columnsAt; p++) {
    if (bytes[p] !== 0) throw new DecodeError("malformed", "padding after the key table is not zero", { field: "padding", offset: p });
  }
  const raw = bytes.subarray(FRAME_HEADER_BYTES, end);
  let cache = keyTableCaches.get(limits);
  if (cache === undefined) keyTableCaches.set(limits, (cache = []));
  let table: KeyTable | undefined;
  for (let i = 0; i < cache.length; i++) {
    const e = cache[i];
    if (e.bytes.length === raw.length && e.keys.length === h.k && Buffer.compare(e.bytes, raw) === 0) {
      table = e;
      if (i > 0) cache.unshift(...cache.splice(i, 1));
      break;
    }
  }
  if (table === undefined) {
    table = parseKeyTable(bytes, h, limits);
    if (raw.length <= KEY_TABLE_CACHE_BYTES) {
      cache.unshift(table);
      if (cache.length > KEY_TABLE_CACHE_ENTRIES) cache.pop();
    }
  }
  if (subject !== undefined) {
    for (let i = 0; i < h.k; i++) {
      if (table.machines[i] !== subject.machineId || (subject.sensorType !== undefined && table.sensors[i] !== subject.sensorType)) {
        const on = subject.sensorType === undefined ? subject.machineId : `${subject.machineId}.${subject.sensorType}`;
        throw new DecodeError("subject_mismatch", `key ${i} "${table.keys[i]}" in a frame on ${on}'s subject`, { field: "keyTable" });
      }
    }
  }
  return table.keys;
}

function parseKeyTable(bytes: Uint8Array, h: Header, limits: Readonly<DecodeLimits>): KeyTable {
  const end = FRAME_HEADER_BYTES + h.keyTableBytes;
  const keys = new Array<string>(h.k);
  const machines = new Array<string>(h.k);
  const sensors = new Array<string>(h.k);
  const seen = new Set<string>();
  let at = FRAME_HEADER_BYTES;
  for (let i = 0; i < h.k; i++) {
    if (at + 2 > end) throw new DecodeError("malformed", `key ${i} starts past the key table`, { field: "keyTable", offset: at });
    const len = bytes[at] | (bytes[at + 1] << 8);
    if (len > limits.frameKeyBytesMax)
      throw new DecodeError("length_exceeded", `key ${i} has ${len} bytes, frameKeyBytesMax is ${limits.frameKeyBytesMax}`, {
        field: "keyTable",
        limit: "frameKeyBytesMax",
        offset: at,
      });
    if (at + 2 + len > end) throw new DecodeError("malformed", `key ${i} runs past the key table`, { field: "keyTable", offset: at });
    let key: string;
    try {
      key = UTF8.decode(bytes.subarray(at + 2, at + 2 + len));
    } catch (e) {
      throw new DecodeError("malformed", `key ${i} is not UTF-8`, { field: "keyTable", offset: at, cause: e });
    }
    const dot = checkKey(key, i, at, limits);
    if (seen.has(key)) throw new DecodeError("malformed", `key ${i} "${key}" appears twice`, { field: "keyTable", offset: at });
    seen.add(key);
    keys[i] = key;
    machines[i] = key.slice(0, dot);
    sensors[i] = key.slice(dot + 1);
    at += 2 + len;
  }
  if (at !== end)
    throw new DecodeError("malformed", `key table declares ${h.keyTableBytes} bytes, its keys take ${at - FRAME_HEADER_BYTES}`, {
      field: "keyTable",
      offset: at,
    });
  return { bytes: bytes.slice(FRAME_HEADER_BYTES, end), keys: Object.freeze(keys), machines, sensors };
}

/** A key is `<machine_id>.<sensor_type>`, both valid subject tokens; returns the dot's position. */
function checkKey(key: string, i: number, offset: number, limits: Readonly<DecodeLimits>): number {
  const dot = key.indexOf(".");
  const problem =
    dot < 0 ? null : (tokenProblem(key.slice(0, dot), limits.tokenBytesMax) ?? tokenProblem(key.slice(dot + 1), limits.tokenBytesMax));
  if (dot < 0)
    throw new DecodeError("invalid_field", `key ${i} ${JSON.stringify(key.slice(0, 80))} is not <machine_id>.<sensor_type>`, {
      field: "keyTable",
      offset,
    });
  if (problem !== null) {
    throw new DecodeError(
      "invalid_field",
      `key ${i} ${JSON.stringify(key.slice(0, 80))} has a token that ${describeTokenProblem(problem, limits.tokenBytesMax)}`,
      { field: "keyTable", offset },
    );
  }
  return dot;
}

/**
 * A float64 column: a view of the message when aligned on a little-endian host; else one bulk copy
 * into an aligned array (a native memcpy, 2–3× a DataView loop); DataView only on big-endian hosts.
 */
function readFloat64s(bytes: Uint8Array, dv: DataView, at: number, n: number): Float64Array {
  if (LITTLE_ENDIAN && (bytes.byteOffset + at) % 8 === 0) return new Float64Array(bytes.buffer, bytes.byteOffset + at, n);
  const out = new Float64Array(n);
  if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(bytes.subarray(at, at + 8 * n));
  else for (let i = 0; i < n; i++) out[i] = dv.getFloat64(at + 8 * i, true);
  return out;
}

/** int64 times as doubles: hi·2^32 + lo is exact for |t| < 2^53, which covers the accepted ±8.64e15. */
function readInt64Times(bytes: Uint8Array, dv: DataView, at: number, n: number): Float64Array {
  const out = new Float64Array(n);
  if (!LITTLE_ENDIAN) {
    for (let i = 0; i < n; i++) out[i] = dv.getInt32(at + 8 * i + 4, true) * TWO_32 + dv.getUint32(at + 8 * i, true);
    return out;
  }
  let w: Int32Array;
  if ((bytes.byteOffset + at) % 4 === 0) {
    w = new Int32Array(bytes.buffer, bytes.byteOffset + at, 2 * n);
  } else {
    // Unaligned: copy the raw words into the output's own buffer and convert in place — element i
    // occupies exactly words 2i and 2i+1, which are read before it is written.
    new Uint8Array(out.buffer).set(bytes.subarray(at, at + 8 * n));
    w = new Int32Array(out.buffer);
  }
  for (let i = 0; i < n; i++) out[i] = w[2 * i + 1] * TWO_32 + (w[2 * i] >>> 0);
  return out;
}

/** A version 2 times column (base, u32 offsets) as doubles. */
function readTimeOffsets(dv: DataView, at: number, n: number): Float64Array {
  const out = new Float64Array(n);
  const base = dv.getInt32(at + 4, true) * TWO_32 + dv.getUint32(at, true);
  for (let i = 0; i < n; i++) out[i] = base + dv.getUint32(at + 8 + 4 * i, true);
  return out;
}

function readKeyIndex(bytes: Uint8Array, dv: DataView, at: number, n: number, h: Header): Uint32Array {
  if (h.indexWidth === 0) return new Uint32Array(n);
  if (h.indexWidth === 1) return Uint32Array.from(bytes.subarray(at, at + n));
  if (!LITTLE_ENDIAN) {
    const out = new Uint32Array(n);
    if (h.indexWidth === 4) for (let i = 0; i < n; i++) out[i] = dv.getUint32(at + 4 * i, true);
    else for (let i = 0; i < n; i++) out[i] = dv.getUint16(at + 2 * i, true);
    return out;
  }
  const aligned = (bytes.byteOffset + at) % h.indexWidth === 0;
  if (h.indexWidth === 4) {
    if (aligned) return new Uint32Array(bytes.buffer, bytes.byteOffset + at, n);
    const out = new Uint32Array(n);
    new Uint8Array(out.buffer).set(bytes.subarray(at, at + 4 * n));
    return out;
  }
  const out = new Uint32Array(n);
  if (aligned) {
    out.set(new Uint16Array(bytes.buffer, bytes.byteOffset + at, n));
  } else {
    const narrow = new Uint16Array(n);
    new Uint8Array(narrow.buffer).set(bytes.subarray(at, at + 2 * n));
    out.set(narrow);
  }
  return out;
}

/** The readings not in `rejected` (sorted by index), in fresh arrays. */
function compact(
  keyIndex: Uint32Array,
  times: Float64Array,
  values: Float64Array,
  n: number,
  rejected: RejectedReading[],
): { keyIndex: Uint32Array; times: Float64Array; values: Float64Array; length: number } {
  const m = n - rejected.length;
  const out = { keyIndex: new Uint32Array(m), times: new Float64Array(m), values: new Float64Array(m), length: m };
  let j = 0;
  let r = 0;
  for (let i = 0; i < n; i++) {
    if (r < rejected.length && rejected[r].index === i) {
      r++;
      continue;
    }
    out.keyIndex[j] = keyIndex[i];
    out.times[j] = times[i];
    out.values[j] = values[i];
    j++;
  }
  return out;
}

function columnsOf(readings: readonly FrameReading[]): FrameColumns {
  const ids = new Map<string, number>();
  const keys: string[] = [];
  const keyIndex = new Uint32Array(readings.length);
  const times = new Float64Array(readings.length);
  const values = new Float64Array(readings.length);
  readings.forEach((r, i) => {
    let id = ids.get(r.key);
    if (id === undefined) {
      id = keys.length;
      ids.set(r.key, id);
      keys.push(r.key);
    }
    keyIndex[i] = id;
    times[i] = r.time;
    values[i] = r.value;
  });
  return { keys, keyIndex, times, values, length: readings.length };
}

function encodeKey(key: string, limits: Readonly<DecodeLimits>): Uint8Array {
  if (typeof key !== "string") throw new EncodeError("wrong_type", "keys", `a key is ${typeof key}, not a string`);
  const b = TEXT.encode(key);
  if (b.length > limits.frameKeyBytesMax)
    throw new EncodeError(
      "length_exceeded",
      "keys",
      `key "${key.slice(0, 80)}" has ${b.length} bytes, over frameKeyBytesMax (${limits.frameKeyBytesMax})`,
    );
  try {
    checkKey(key, 0, 0, limits);
  } catch (e) {
    throw new EncodeError("invalid_field", "keys", (e as DecodeError).detail);
  }
  return b;
}

function checkKeyIndex(c: FrameColumns, n: number, k: number): void {
  const idx = c.keyIndex;
  if (n === 0) return;
  if (idx === undefined || idx.length < n) throw new EncodeError("missing_field", "keyIndex", `${k} keys need a key index per reading`);
  for (let i = 0; i < n; i++) {
    const x = idx[i];
    if (!(Number.isInteger(x) && x >= 0 && x < k))
      throw new EncodeError("invalid_field", "keyIndex", `reading ${i} names key ${x} of ${k}`);
  }
}

/** How the times are written: as asked (checked), else offsets when they fit, int64 when integers, float64 otherwise. */
function timeLayout(times: ArrayLike<number>, n: number, asked: FrameEncodeOptions["times"]): "offsets" | "int64" | "float64" {
  if (asked === "float64") return "float64";
  if (asked !== undefined) checkInt64Times(times, n);
  else if (!allSafeIntegers(times, n)) return "float64";
  const span = timeSpan(times, n);
  if (asked === "offsets" && span > FRAME_TIME_OFFSET_MAX)
    throw new EncodeError(
      "invalid_field",
      "times",
      `they span ${span} ms, over the ${FRAME_TIME_OFFSET_MAX} ms of time offsets (use times: "int64")`,
    );
  // An empty frame stays version 1: 24 bytes, no time base.
  return asked ?? (n > 0 && span <= FRAME_TIME_OFFSET_MAX ? "offsets" : "int64");
}

/** The key-index column's width: 0 (ONE_KEY) for one key unless a width is asked for; else as asked (checked) or the narrowest. */
function indexWidth(k: number, version: 1 | 2, asked: FrameEncodeOptions["keyIndex"]): 0 | 1 | 2 | 4 {
  if (asked === undefined) return k === 1 ? 0 : version === 2 && k <= 0x100 ? 1 : k <= 0x10000 ? 2 : 4;
  if (asked === "u8" && version === 1)
    throw new EncodeError("invalid_field", "keyIndex", "u8 indices need a version 2 frame (time offsets)");
  const width = asked === "u8" ? 1 : asked === "u16" ? 2 : 4;
  if (width < 4 && k > 2 ** (8 * width)) throw new EncodeError("invalid_field", "keyIndex", `${asked} indices cannot address ${k} keys`);
  return width;
}

function allSafeIntegers(times: ArrayLike<number>, n: number): boolean {
  for (let i = 0; i < n; i++) if (!Number.isSafeInteger(times[i])) return false;
  return true;
}

/** Largest minus smallest of the first n times (0 for none). */
function timeSpan(times: ArrayLike<number>, n: number): number {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    const t = times[i];
    if (t < lo) lo = t;
    if (t > hi) hi = t;
  }
  return n === 0 ? 0 : hi - lo;
}

function checkInt64Times(times: ArrayLike<number>, n: number): void {
  for (let i = 0; i < n; i++) {
    if (!Number.isSafeInteger(times[i]))
      throw new EncodeError(
        Number.isFinite(times[i]) ? "bad_timestamp" : "not_finite",
        "times",
        `reading ${i}: ${times[i]} is not an integer for int64 times (use times: "float64")`,
      );
  }
}

function writeTimes(dv: DataView, at: number, times: ArrayLike<number>, n: number, f64: boolean): void {
  if (f64) return writeFloat64s(dv, at, times, n);
  for (let i = 0; i < n; i++) {
    const t = times[i];
    const hi = Math.floor(t / TWO_32);
    dv.setUint32(at + 8 * i, t - hi * TWO_32, true);
    dv.setInt32(at + 8 * i + 4, hi, true);
  }
}

/** A version 2 times column at `at`: the smallest time as the int64 base, then each time's u32 offset from it. */
function writeTimeOffsets(dv: DataView, at: number, times: ArrayLike<number>, n: number): void {
  let base = n === 0 ? 0 : times[0];
  for (let i = 1; i < n; i++) if (times[i] < base) base = times[i];
  const hi = Math.floor(base / TWO_32);
  dv.setUint32(at, base - hi * TWO_32, true);
  dv.setInt32(at + 4, hi, true);
  for (let i = 0; i < n; i++) dv.setUint32(at + 8 + 4 * i, times[i] - base, true);
}

function writeFloat64s(dv: DataView, at: number, src: ArrayLike<number>, n: number): void {
  if (LITTLE_ENDIAN) {
    // The output buffer is fresh (offset 0) and `at` a multiple of 8: a view, then one bulk copy.
    const view = new Float64Array(dv.buffer, at, n);
    if (src instanceof Float64Array) view.set(src.subarray(0, n));
    else for (let i = 0; i < n; i++) view[i] = src[i];
    return;
  }
  for (let i = 0; i < n; i++) dv.setFloat64(at + 8 * i, src[i], true);
}

function writeKeyIndex(dv: DataView, at: number, idx: ArrayLike<number>, n: number, width: 1 | 2 | 4): void {
  if (width === 4) for (let i = 0; i < n; i++) dv.setUint32(at + 4 * i, idx[i], true);
  else if (width === 2) for (let i = 0; i < n; i++) dv.setUint16(at + 2 * i, idx[i], true);
  else for (let i = 0; i < n; i++) dv.setUint8(at + i, idx[i]);
}

/** Why reading `index` (value `v`, time `t`) is left out: a value that is not finite, else a time that is not finite or out of range. */
function readingRejection(index: number, v: number, t: number): RejectedReading {
  if (v - v !== 0) return { index, reason: "not_finite", field: "value" };
  return Number.isFinite(t) ? { index, reason: "bad_timestamp", field: "time" } : { index, reason: "not_finite", field: "time" };
}
