/**
 * The score frame decoder of the page: the layout of connectors/wire/score-frame.ts (magic "LWSF",
 * version 1, key table, column names, times, values, columns, key index), read without copies
 * where the buffer allows. Bounded: a frame that does not add up is refused with an Error.
 */
export interface ScoreFrame {
  keys: string[];
  keyIndex: Uint32Array;
  times: Float64Array;
  values: Float64Array;
  columns: Map<string, Float64Array>;
  length: number;
}

const HEADER = 24;
const COLUMNS_MAX = 1024;
const utf8 = new TextDecoder("utf-8", { fatal: true });

export function decodeScoreFrame(bytes: Uint8Array): ScoreFrame {
  if (bytes.length < HEADER) throw new Error("score frame: shorter than its header");
  if (bytes[0] !== 0x4c || bytes[1] !== 0x57 || bytes[2] !== 0x53 || bytes[3] !== 0x46) throw new Error("score frame: bad magic");
  if (bytes[4] !== 1 || bytes[5] !== 0) throw new Error(`score frame: version ${bytes[4]} not supported`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const m = view.getUint16(6, true);
  const n = view.getUint32(8, true);
  const k = view.getUint32(12, true);
  const K = view.getUint32(16, true);
  const N = view.getUint32(20, true);
  const C = Math.ceil((HEADER + K + N) / 8) * 8;
  const total = C + (20 + 8 * m) * n;
  if (m > COLUMNS_MAX || total !== bytes.length) throw new Error(`score frame: declares ${total} bytes, has ${bytes.length}`);
  const keys = readTable(bytes, view, HEADER, K, k);
  const names = readTable(bytes, view, HEADER + K, N, m);
  // The columns as aligned views: one copy when the bytes do not start on an 8-byte boundary.
  const body = (bytes.byteOffset + C) % 8 === 0 ? bytes : bytes.slice();
  const base = body.byteOffset + C;
  const f64 = new Float64Array(body.buffer, base, (2 + m) * n);
  const keyIndex = new Uint32Array(body.buffer, base + 8 * (2 + m) * n, n);
  for (let i = 0; i < n; i++) if (keyIndex[i] >= k) throw new Error(`score frame: row ${i} names key ${keyIndex[i]} of ${k}`);
  const columns = new Map<string, Float64Array>();
  names.forEach((name, j) => columns.set(name, f64.subarray((2 + j) * n, (3 + j) * n)));
  return { keys, keyIndex, times: f64.subarray(0, n), values: f64.subarray(n, 2 * n), columns, length: n };
}

function readTable(bytes: Uint8Array, view: DataView, at: number, size: number, count: number): string[] {
  const out: string[] = [];
  const end = at + size;
  for (let i = 0; i < count; i++) {
    if (at + 2 > end) throw new Error("score frame: table overruns");
    const len = view.getUint16(at, true);
    if (at + 2 + len > end) throw new Error("score frame: table overruns");
    out.push(utf8.decode(bytes.subarray(at + 2, at + 2 + len)));
    at += 2 + len;
  }
  return out;
}

/** base64 (a JSON subscriber's frame) to bytes. */
export function base64Bytes(text: string): Uint8Array {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
