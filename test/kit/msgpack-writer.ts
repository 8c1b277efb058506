/**
 * A MessagePack writer with every format choice explicit (https://github.com/msgpack/msgpack/blob/master/spec.md),
 * and random values in the encodings a schema reader must read like the generic decoder: numbers of
 * every width (canonical or not), time values of every form the decoders accept or refuse. For the
 * tests of the schema-specialised readers.
 */
import type { SeededRandom } from "../../engine/core/mod.js";

export type Bytes = Uint8Array | number[];

export function cat(...parts: Bytes[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** `v` as `n` big-endian bytes. */
export function be(v: number, n: number): number[] {
  const out: number[] = [];
  for (let i = n - 1; i >= 0; i--) out.push(Math.floor(v / 2 ** (8 * i)) & 0xff);
  return out;
}

const TEXT = new TextEncoder();

export type StrFormat = "fix" | 8 | 16 | 32;

export function str(s: string | Uint8Array, format?: StrFormat): Uint8Array {
  const b = typeof s === "string" ? TEXT.encode(s) : s;
  const f = format ?? (b.length < 32 ? "fix" : b.length < 256 ? 8 : 16);
  if (f === "fix") return cat([0xa0 | b.length], b);
  if (f === 8) return cat([0xd9, b.length], b);
  if (f === 16) return cat([0xda, ...be(b.length, 2)], b);
  return cat([0xdb, ...be(b.length, 4)], b);
}

export function mapHeader(n: number, format: "fix" | 16 | 32 = "fix"): number[] {
  if (format === "fix") return [0x80 | n];
  return format === 16 ? [0xde, ...be(n, 2)] : [0xdf, ...be(n, 4)];
}

export function f64(x: number): number[] {
  const d = new DataView(new ArrayBuffer(8));
  d.setFloat64(0, x);
  return [0xcb, ...new Uint8Array(d.buffer)];
}

export function f32(x: number): number[] {
  const d = new DataView(new ArrayBuffer(4));
  d.setFloat32(0, x);
  return [0xca, ...new Uint8Array(d.buffer)];
}

export function ext(type: number, data: number[], format: "fix" | 8 = "fix"): number[] {
  if (format === 8) return [0xc7, data.length, type & 0xff, ...data];
  const fix = { 1: 0xd4, 2: 0xd5, 4: 0xd6, 8: 0xd7, 16: 0xd8 }[data.length];
  if (fix === undefined) return [0xc7, data.length, type & 0xff, ...data];
  return [fix, type & 0xff, ...data];
}

export function record(entries: Array<[Bytes, Bytes]>, format: "fix" | 16 | 32 = "fix"): Uint8Array {
  return cat(mapHeader(entries.length, format), ...entries.flat());
}

export const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

export function pick<T>(rng: SeededRandom, xs: readonly T[]): T {
  return xs[rng.below(xs.length)];
}

export function shuffle<T>(rng: SeededRandom, xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
  return xs;
}

/** A MessagePack number of a random (often non-canonical) format. */
export function numberBytes(rng: SeededRandom, x: number): number[] {
  const forms: number[][] = [f64(x)];
  if (Object.is(Math.fround(x), x) || Number.isNaN(x)) forms.push(f32(x));
  if (Number.isInteger(x) && !Object.is(x, -0)) {
    if (x >= 0 && x <= 0x7f) forms.push([x]);
    if (x >= -32 && x < 0) forms.push([x + 0x100]);
    if (x >= 0 && x <= 0xff) forms.push([0xcc, ...be(x, 1)]);
    if (x >= 0 && x <= 0xffff) forms.push([0xcd, ...be(x, 2)]);
    if (x >= 0 && x <= 0xffffffff) forms.push([0xce, ...be(x, 4)]);
    if (x >= 0 && x <= Number.MAX_SAFE_INTEGER) forms.push([0xcf, ...be(Math.floor(x / 2 ** 32), 4), ...be(x % 2 ** 32, 4)]);
    if (x >= -128 && x <= 127) forms.push([0xd0, ...be(x & 0xff, 1)]);
    if (x >= -32768 && x <= 32767) forms.push([0xd1, ...be(x & 0xffff, 2)]);
    if (x >= -(2 ** 31) && x < 2 ** 31) forms.push([0xd2, ...be(x >>> 0, 4)]);
    if (Math.abs(x) <= Number.MAX_SAFE_INTEGER) {
      const hi = Math.floor(x / 2 ** 32);
      forms.push([0xd3, ...be(hi >>> 0, 4), ...be(x - hi * 2 ** 32, 4)]);
    }
  }
  return pick(rng, forms);
}

const ISO_MIN = Date.parse("0000-01-01T00:00:00.000Z");
const ISO_MAX = Date.parse("9999-12-31T23:59:59.999Z");

/** A time value in one of the encodings the generic decoder reads, valid or not. */
export function timeBytes(rng: SeededRandom): Bytes {
  switch (rng.below(9)) {
    case 0:
      return str(new Date(rng.int(ISO_MIN, ISO_MAX)).toISOString(), pick(rng, ["fix", 8, 16, 32] as const));
    case 1: {
      // A canonical-looking string with one character changed: Date.parse's call.
      const s = [...new Date(rng.int(ISO_MIN, ISO_MAX)).toISOString()];
      s[rng.below(24)] = pick(rng, [..."0123456789-T:.Zz+ "]);
      return str(s.join(""));
    }
    case 2:
      return str(
        pick(rng, [
          "2026-02-29T10:00:00.000Z",
          "2024-02-29T10:00:00.000Z",
          "2026-02-31T00:00:00.000Z",
          "2026-01-01T24:00:00.000Z",
          "2026-13-01T00:00:00.000Z",
          "2026-01-01T00:00:00Z",
          "2026-01-01T00:00:00.000+01:00",
          "1767225600000",
          "",
          "now",
        ]),
      );
    case 3:
      return numberBytes(rng, rng.int(-(2 ** 40), 2 ** 42));
    case 4:
      return numberBytes(rng, pick(rng, [8.64e15, -8.64e15, 8.64e15 + 1, -8.64e15 - 2, 2 ** 53, 0, -0, 1.5, -1.5, Number.NaN, Infinity]));
    case 5:
      return ext(-1, be(rng.uint32(), 4));
    case 6:
      return ext(-1, [...be(rng.uint32(), 4), ...be(rng.uint32(), 4)], pick(rng, ["fix", 8] as const));
    case 7:
      return ext(-1, [...be(rng.uint32(), 4), ...be(pick(rng, [0, 0xffffffff, rng.uint32()]), 4), ...be(rng.uint32(), 4)]);
    default:
      return pick(rng, [[0xc0], [0xc2], str("x"), [0x90], ext(5, [1, 2, 3, 4])]);
  }
}
