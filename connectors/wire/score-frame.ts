/**
 * The score frame: one message carrying a batch of scored readings as columns — the input frame's
 * times, values and key table (frame-codec.ts) plus the analyses' output columns, exact doubles.
 * It is what ingest workers publish on NATS (one per batch) and send WebSocket subscribers (one
 * per machine topic per batch), so a batch crosses threads and sockets as a few memcpys instead
 * of one object and one JSON text per record.
 *
 * Layout, version 1. Integers little-endian; offsets from the frame's first byte.
 *
 *   offset   size  field
 *   0        4     magic "LWSF" (4c 57 53 46)
 *   4        1     version = 1
 *   5        1     flags, 0 (anything else: `unsupported_version`)
 *   6        2     columnCount m (u16)
 *   8        4     readingCount n (u32)
 *   12       4     keyCount k (u32)
 *   16       4     keyTableBytes K (u32)
 *   20       4     columnTableBytes N (u32)
 *   24       K     key table: k × { byteLength u16, UTF-8 `<machine_id>.<sensor_type>` }
 *   24+K     N     column names: m × { byteLength u16, UTF-8 name, e.g. `mean`, `we_mask` }
 *   …        P     zero padding so that C = 24 + K + N + P is a multiple of 8
 *   C        8n    times, float64 epoch ms
 *   C+8n     8n    values, float64
 *   C+16n    8mn   the m output columns, float64, one after the other (NaN = no value)
 *   C+16n+8mn 4n   key index per reading, u32
 *   total    C + (16 + 8m)·n + 4n bytes, exactly
 *
 * A column's meaning is its analysis's (operators/<analysis>/): masks and zones are small
 * integers held exactly in a double; NaN stands for null.
 */
import { DecodeError, EncodeError } from "../errors.js";

export const SCORE_FRAME_MAGIC: readonly number[] = Object.freeze([0x4c, 0x57, 0x53, 0x46]);
export const SCORE_FRAME_VERSION = 1;
export const SCORE_FRAME_HEADER_BYTES = 24;
/** Bounds a decoder applies before it trusts a header (a frame is at most `bytesMax`). */
export const SCORE_FRAME_COLUMNS_MAX = 1024;
export const SCORE_FRAME_NAME_BYTES_MAX = 256;

/** What a score frame carries. Rows `[0, length)` of each array are encoded. */
export interface ScoreFrameColumns {
  /** `<machine_id>.<sensor_type>` of each key index. */
  keys: readonly string[];
  keyIndex: ArrayLike<number>;
  times: ArrayLike<number>;
  values: ArrayLike<number>;
  /** Output columns by name, in order. */
  columns: ReadonlyArray<readonly [string, ArrayLike<number>]>;
  length: number;
}

export interface DecodedScoreFrame {
  keys: string[];
  keyIndex: Uint32Array;
  times: Float64Array;
  values: Float64Array;
  /** Output columns in frame order. */
  columns: Map<string, Float64Array>;
  length: number;
}

/** Encodes `c` as one score frame in a new buffer (transferable to another thread). */
export function encodeScoreFrame(c: ScoreFrameColumns): Uint8Array {
  const n = c.length;
  const keyBytes = c.keys.map((k) => nameBytes(k, "key"));
  const colBytes = c.columns.map(([name]) => nameBytes(name, "column"));
  if (colBytes.length > SCORE_FRAME_COLUMNS_MAX) {
    throw new EncodeError("length_exceeded", "columns", `${colBytes.length} columns, more than ${SCORE_FRAME_COLUMNS_MAX}`);
  }
  const K = tableBytes(keyBytes);
  const N = tableBytes(colBytes);
  const C = align8(SCORE_FRAME_HEADER_BYTES + K + N);
  const m = colBytes.length;
  const total = C + (16 + 8 * m) * n + 4 * n;
  const buffer = new ArrayBuffer(total);
  const out = new Uint8Array(buffer);
  const view = new DataView(buffer);
  out.set(SCORE_FRAME_MAGIC, 0);
  out[4] = SCORE_FRAME_VERSION;
  view.setUint16(6, m, true);
  view.setUint32(8, n, true);
  view.setUint32(12, keyBytes.length, true);
  view.setUint32(16, K, true);
  view.setUint32(20, N, true);
  let at = writeTable(out, view, SCORE_FRAME_HEADER_BYTES, keyBytes);
  at = writeTable(out, view, at, colBytes);
  // C is a multiple of 8 and the buffer starts at 0: the columns are aligned typed-array views.
  copyColumn(new Float64Array(buffer, C, n), c.times, n);
  copyColumn(new Float64Array(buffer, C + 8 * n, n), c.values, n);
  c.columns.forEach(([, col], j) => copyColumn(new Float64Array(buffer, C + (16 + 8 * j) * n, n), col, n));
  const index = new Uint32Array(buffer, C + (16 + 8 * m) * n, n);
  for (let i = 0; i < n; i++) {
    const k = c.keyIndex[i];
    if (!(k < keyBytes.length)) throw new EncodeError("invalid_field", "keyIndex", `row ${i}: key index ${k} of ${keyBytes.length} keys`);
    index[i] = k;
  }
  return out;
}

/** Decodes a score frame; throws {@link DecodeError} for anything that is not exactly one valid frame of at most `bytesMax` bytes. */
export function decodeScoreFrame(bytes: Uint8Array, bytesMax = 64 << 20): DecodedScoreFrame {
  if (bytes.length > bytesMax) throw new DecodeError("too_large", `${bytes.length} bytes, more than ${bytesMax}`, { limit: "bytesMax" });
  if (bytes.length < SCORE_FRAME_HEADER_BYTES) throw new DecodeError("truncated", "shorter than a score frame header", { offset: 0 });
  for (let i = 0; i < 4; i++)
    if (bytes[i] !== SCORE_FRAME_MAGIC[i]) throw new DecodeError("malformed", "not a score frame (magic)", { offset: i });
  if (bytes[4] !== SCORE_FRAME_VERSION || bytes[5] !== 0) {
    throw new DecodeError("unsupported_version", `version ${bytes[4]}, flags ${bytes[5]}`, { offset: 4 });
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const m = view.getUint16(6, true);
  const n = view.getUint32(8, true);
  const k = view.getUint32(12, true);
  const K = view.getUint32(16, true);
  const N = view.getUint32(20, true);
  if (m > SCORE_FRAME_COLUMNS_MAX) throw new DecodeError("length_exceeded", `${m} columns`, { limit: "columns", offset: 6 });
  const C = align8(SCORE_FRAME_HEADER_BYTES + K + N);
  const total = C + (20 + 8 * m) * n;
  if (SCORE_FRAME_HEADER_BYTES + K + N > bytes.length || total > bytes.length) {
    throw new DecodeError("truncated", `header declares ${total} bytes, the frame has ${bytes.length}`, { offset: 8 });
  }
  if (total < bytes.length) throw new DecodeError("trailing_bytes", `${bytes.length - total} byte(s) after the frame`, { offset: total });
  const keys = readTable(bytes, view, SCORE_FRAME_HEADER_BYTES, K, k, "key");
  const names = readTable(bytes, view, SCORE_FRAME_HEADER_BYTES + K, N, m, "column");
  // One aligned copy of the column part: the message may sit at any offset of its buffer. (Not
  // `bytes.slice`: on a Node Buffer — what nats.js hands out — that is a view, not a copy.)
  const body = new Uint8Array(total - C);
  body.set(bytes.subarray(C, total));
  const f64 = new Float64Array(body.buffer, 0, (2 + m) * n);
  const keyIndex = new Uint32Array(body.buffer, (16 + 8 * m) * n, n);
  for (let i = 0; i < n; i++) {
    if (keyIndex[i] >= k)
      throw new DecodeError("malformed", `row ${i}: key index ${keyIndex[i]} of ${k} keys`, { offset: C + (16 + 8 * m) * n + 4 * i });
  }
  const columns = new Map<string, Float64Array>();
  names.forEach((name, j) => columns.set(name, f64.subarray((2 + j) * n, (3 + j) * n)));
  return { keys, keyIndex, times: f64.subarray(0, n), values: f64.subarray(n, 2 * n), columns, length: n };
}

// ---- helpers ----

const UTF8 = new TextEncoder();
const UTF8_DECODER = new TextDecoder("utf-8", { fatal: true });

/**
 * UTF-8 of the key and column names met so far: a worker encodes the same few dozen names into
 * every frame, and encoding them afresh was half of its allocation per frame. Bounded: past
 * NAME_CACHE_MAX names the cache starts over (a plant has far fewer keys per worker).
 */
const NAME_CACHE_MAX = 1 << 16;
const nameCache = new Map<string, Uint8Array>();

function nameBytes(text: string, what: string): Uint8Array {
  const cached = nameCache.get(text);
  if (cached !== undefined) return cached;
  const b = UTF8.encode(text);
  if (b.length === 0 || b.length > SCORE_FRAME_NAME_BYTES_MAX) {
    throw new EncodeError("invalid_field", what, `"${text.slice(0, 40)}" is ${b.length} bytes; 1..${SCORE_FRAME_NAME_BYTES_MAX} allowed`);
  }
  if (nameCache.size >= NAME_CACHE_MAX) nameCache.clear();
  nameCache.set(text, b);
  return b;
}

function tableBytes(entries: readonly Uint8Array[]): number {
  let sum = 0;
  for (const e of entries) sum += 2 + e.length;
  return sum;
}

function writeTable(out: Uint8Array, view: DataView, at: number, entries: readonly Uint8Array[]): number {
  for (const e of entries) {
    view.setUint16(at, e.length, true);
    out.set(e, at + 2);
    at += 2 + e.length;
  }
  return at;
}

function readTable(bytes: Uint8Array, view: DataView, at: number, size: number, count: number, what: string): string[] {
  const end = at + size;
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    if (at + 2 > end) throw new DecodeError("malformed", `${what} table ends at entry ${i} of ${count}`, { offset: at });
    const len = view.getUint16(at, true);
    if (len === 0 || len > SCORE_FRAME_NAME_BYTES_MAX || at + 2 + len > end) {
      throw new DecodeError("malformed", `${what} ${i}: length ${len}`, { offset: at });
    }
    try {
      out.push(UTF8_DECODER.decode(bytes.subarray(at + 2, at + 2 + len)));
    } catch {
      throw new DecodeError("malformed", `${what} ${i} is not UTF-8`, { offset: at + 2 });
    }
    at += 2 + len;
  }
  if (at !== end) throw new DecodeError("malformed", `${what} table: ${end - at} byte(s) after ${count} entries`, { offset: at });
  return out;
}

function copyColumn(into: Float64Array, from: ArrayLike<number>, n: number): void {
  if (from instanceof Float64Array) into.set(from.length === n ? from : from.subarray(0, n));
  else for (let i = 0; i < n; i++) into[i] = from[i];
}

function align8(n: number): number {
  return (n + 7) & ~7;
}
