/**
 * ClickHouse's RowBinary format: a writer into a growable, bounded byte buffer, a reader, and the
 * column types linewatch's tables use. Pure (no client, no logger, no I/O), so a worker thread can
 * encode rows and hand the bytes to the sink.
 *
 * The encodings, from https://clickhouse.com/docs/en/interfaces/formats#rowbinary:
 * - rows and values back to back, no separators, no header;
 * - (U)Int8…(U)Int64: fixed width, little-endian, two's complement for the signed ones;
 * - Float64: the IEEE 754 double, little-endian (the exact value: no decimal text on the way);
 * - DateTime: UInt32 seconds since the epoch; Date: UInt16 days since 1970-01-01;
 * - String: its length in bytes as unsigned LEB128, then the bytes (UTF-8 here);
 * - Array(T): the element count as unsigned LEB128, then the elements;
 * - Nullable(T): one byte, 1 for NULL (and nothing follows) or 0 followed by the value;
 * - Decimal(P, S): the value × 10^S as a little-endian integer of 4 bytes (P ≤ 9), 8 (P ≤ 18) or
 *   16 (P ≤ 38).
 * Checked on ClickHouse 18.16 and current servers (test/clickhouse-row-binary.test.ts), Decimal
 * included (18.16 takes it without a setting).
 *
 * Nothing in RowBinary names or types a column, so a value of the wrong width shifts every value
 * after it. The writer refuses what a column cannot hold (an integer out of range, a fraction, a
 * NULL in a column that is not Nullable) with EncodeError instead of wrapping it, and the sink
 * names the columns in its INSERT, so a table without one of them is refused by name.
 */
import { GrowingBytes } from "./growing-bytes.js";
import { EncodeError } from "../errors.js";

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/** Bytes one writer may hold (a batch of 10,000 score rows is about 2.5 MB). */
export const DEFAULT_ROW_BINARY_BYTES_MAX = 256 * 1024 * 1024;

/** Rows encoded back to back: the body of one `INSERT … FORMAT RowBinary`, or a part of one. */
export interface EncodedRows {
  bytes: Uint8Array;
  /** Offset of each row's first byte, then the end (`bytes.length`): rows = `rowStarts.length − 1`. */
  rowStarts: Uint32Array;
}

/** The column types the tables use. */
export type ColumnType =
  | "String"
  | "Float64"
  | "UInt8"
  | "UInt16"
  | "UInt32"
  | "UInt64"
  | "Int8"
  | "Int16"
  | "Int32"
  | "Int64"
  | "DateTime"
  | "Date"
  | "Array(String)"
  | `Decimal(${number}, ${number})`;

/** A value as the column functions give it: numbers (DateTime: seconds, Date: days), strings, NULL, string arrays; Decimal also as bigint (the scaled integer) or decimal text. */
export type ColumnValue = number | string | bigint | null | readonly string[];

/** One column: what CREATE TABLE says of it and how RowBinary carries it. */
export interface ColumnSpec {
  name: string;
  type: ColumnType;
  nullable: boolean;
}

/** `Type` or `Nullable(Type)`: the type as CREATE TABLE declares it (and a Native block names it). */
export function columnTypeName(c: ColumnSpec): string {
  return c.nullable ? `Nullable(${c.type})` : c.type;
}

/** `name Type` or `name Nullable(Type)`, as in CREATE TABLE. */
export function columnDefinition(c: ColumnSpec): string {
  return `${c.name} ${columnTypeName(c)}`;
}

/** The bytes of `s` as a RowBinary String (length, then UTF-8): encode a key's names once, copy them per row with {@link RowBinaryWriter.raw}. */
export function encodeRowBinaryString(s: string): Uint8Array {
  const w = new RowBinaryWriter(s.length * 3 + 8);
  w.string(s);
  return w.bytesView().slice();
}

/**
 * Writes rows into one buffer that doubles as it fills, up to `bytesMax` (CapacityError past it).
 * Call {@link endRow} after each row (or {@link abortRow} when a value of it was refused), then
 * {@link finish}.
 */
export class RowBinaryWriter extends GrowingBytes {
  private starts: Uint32Array;
  private rows = 0;

  constructor(initialBytes = 64 * 1024, bytesMax = DEFAULT_ROW_BINARY_BYTES_MAX, initialRows = 1024) {
    super(initialBytes, bytesMax, "RowBinary");
    this.starts = new Uint32Array(initialRows + 1);
  }

  /** Rows ended so far. */
  get rowCount(): number {
    return this.rows;
  }

  /** Bytes written so far, the current row's included. */
  get byteLength(): number {
    return this.at;
  }

  uint8(v: number): void {
    this.checkInt(v, 0, 0xff, "UInt8");
    this.room(1);
    this.buf[this.at++] = v;
  }

  int8(v: number): void {
    this.checkInt(v, -0x80, 0x7f, "Int8");
    this.room(1);
    this.buf[this.at++] = v & 0xff;
  }

  uint16(v: number): void {
    this.checkInt(v, 0, 0xffff, "UInt16");
    this.room(2);
    this.view.setUint16(this.at, v, true);
    this.at += 2;
  }

  int16(v: number): void {
    this.checkInt(v, -0x8000, 0x7fff, "Int16");
    this.room(2);
    this.view.setInt16(this.at, v, true);
    this.at += 2;
  }

  uint32(v: number): void {
    this.checkInt(v, 0, 0xffffffff, "UInt32");
    this.room(4);
    this.view.setUint32(this.at, v, true);
    this.at += 4;
  }

  int32(v: number): void {
    this.checkInt(v, -0x80000000, 0x7fffffff, "Int32");
    this.room(4);
    this.view.setInt32(this.at, v, true);
    this.at += 4;
  }

  /** A UInt64 from a safe integer (up to 2^53 − 1; the tables' versions and sequences stay below). */
  uint64(v: number): void {
    this.checkInt(v, 0, Number.MAX_SAFE_INTEGER, "UInt64");
    this.room(8);
    this.view.setUint32(this.at, v >>> 0, true);
    this.view.setUint32(this.at + 4, Math.floor(v / 0x100000000), true);
    this.at += 8;
  }

  /** An Int64 from a safe integer. */
  int64(v: number): void {
    this.checkInt(v, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, "Int64");
    this.room(8);
    // Two's complement: the low word as is, the high word floor(v / 2^32) (−1 for small negatives).
    this.view.setUint32(this.at, v >>> 0, true);
    this.view.setInt32(this.at + 4, Math.floor(v / 0x100000000), true);
    this.at += 8;
  }

  /** The exact double, −0, subnormals and NaN payloads included. */
  float64(v: number): void {
    this.room(8);
    this.view.setFloat64(this.at, v, true);
    this.at += 8;
  }

  /** DateTime: whole seconds since the epoch, 0 … 2^32 − 1. */
  dateTime(seconds: number): void {
    this.uint32(seconds);
  }

  /** Date: whole days since 1970-01-01, 0 … 65535. */
  date(days: number): void {
    this.uint16(days);
  }

  /** A Nullable column's flag: true writes NULL (nothing may follow for this column), false the 0 before its value. */
  isNull(isNull: boolean): void {
    this.room(1);
    this.buf[this.at++] = isNull ? 1 : 0;
  }

  /** Nullable(Float64): NULL for null and for NaN/±Infinity (the tables' rule for an undefined statistic). */
  nullableFloat64(v: number | null): void {
    if (v === null || !Number.isFinite(v)) {
      this.isNull(true);
      return;
    }
    this.room(9);
    this.buf[this.at] = 0;
    this.view.setFloat64(this.at + 1, v, true);
    this.at += 9;
  }

  /** A String: UTF-8 bytes after their count. */
  string(s: string): void {
    const n = s.length;
    if (n < 128 && this.ascii(s)) return;
    // At most 3 bytes per UTF-16 unit; the length prefix is sized for that and moved if shorter.
    const max = n * 3;
    const prefix = varintSize(max);
    this.room(prefix + max);
    const { written } = ENCODER.encodeInto(s, this.buf.subarray(this.at + prefix, this.at + prefix + max));
    const actual = varintSize(written);
    if (actual < prefix) this.buf.copyWithin(this.at + actual, this.at + prefix, this.at + prefix + written);
    this.writeVarint(written);
    this.at += written;
  }

  /** An unsigned LEB128 number: a String's or an Array's length. */
  varUInt(v: number): void {
    this.checkInt(v, 0, Number.MAX_SAFE_INTEGER, "length");
    this.room(8);
    this.writeVarint(v);
  }

  /** Array(String). */
  stringArray(values: readonly string[]): void {
    this.room(5);
    this.writeVarint(values.length);
    for (const s of values) this.string(s);
  }

  /** Decimal(P, S) from its value × 10^S, an integer of 4, 8 or 16 bytes ({@link decimalBytes}). */
  decimal(scaled: bigint, bytes: 4 | 8 | 16): void {
    const bits = BigInt(bytes * 8);
    if (BigInt.asIntN(bytes * 8, scaled) !== scaled)
      throw new EncodeError("invalid_field", "Decimal", `${scaled} does not fit ${bits} bits`);
    this.room(bytes);
    if (bytes === 4) this.view.setInt32(this.at, Number(scaled), true);
    else if (bytes === 8) this.view.setBigInt64(this.at, scaled, true);
    else {
      this.view.setBigUint64(this.at, BigInt.asUintN(64, scaled), true);
      this.view.setBigInt64(this.at + 8, BigInt.asIntN(64, scaled >> 64n), true);
    }
    this.at += bytes;
  }

  /** Ends the current row. */
  endRow(): void {
    if (this.rows + 2 > this.starts.length) {
      const grown = new Uint32Array(this.starts.length * 2);
      grown.set(this.starts);
      this.starts = grown;
    }
    this.starts[++this.rows] = this.at;
  }

  /** Drops what was written of the current row (after a value of it was refused). */
  abortRow(): void {
    this.at = this.starts[this.rows];
  }

  /** The rows ended so far, copied out (transferable, exact size); the writer starts empty again at the capacity it grew to. */
  finish(): EncodedRows {
    const end = this.starts[this.rows];
    const out = { bytes: this.buf.slice(0, end), rowStarts: this.starts.slice(0, this.rows + 1) };
    this.reset();
    return out;
  }

  /** Empties the writer, keeping its buffers. */
  reset(): void {
    this.at = 0;
    this.rows = 0;
  }

  /** A view of everything written so far (valid until the next write). */
  bytesView(): Uint8Array {
    return this.buf.subarray(0, this.at);
  }

  private checkInt(v: number, lo: number, hi: number, type: string): void {
    if (!(Number.isInteger(v) && v >= lo && v <= hi)) throw new EncodeError("invalid_field", type, `not a ${type}: ${v}`);
  }

  /** Writes `s` when it is all ASCII (one byte per unit); false, having written nothing, otherwise. */
  private ascii(s: string): boolean {
    const n = s.length;
    this.room(1 + n);
    const buf = this.buf;
    const at = this.at + 1;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) return false;
      buf[at + i] = c;
    }
    buf[this.at] = n;
    this.at = at + n;
    return true;
  }

  private writeVarint(v: number): void {
    while (v >= 0x80) {
      this.buf[this.at++] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buf[this.at++] = v;
  }
}

/** Reads RowBinary values in order (the tests' read-back, a dead letter shown as JSON). Throws EncodeError past the end. */
export class RowBinaryReader {
  private readonly view: DataView;
  at = 0;

  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get done(): boolean {
    return this.at >= this.bytes.length;
  }

  uint8(): number {
    return this.view.getUint8(this.take(1));
  }

  int8(): number {
    return this.view.getInt8(this.take(1));
  }

  uint16(): number {
    return this.view.getUint16(this.take(2), true);
  }

  int16(): number {
    return this.view.getInt16(this.take(2), true);
  }

  uint32(): number {
    return this.view.getUint32(this.take(4), true);
  }

  int32(): number {
    return this.view.getInt32(this.take(4), true);
  }

  /** A UInt64 as a number when it is a safe integer, else as a bigint. */
  uint64(): number | bigint {
    const v = this.view.getBigUint64(this.take(8), true);
    return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }

  int64(): number | bigint {
    const v = this.view.getBigInt64(this.take(8), true);
    return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
  }

  float64(): number {
    return this.view.getFloat64(this.take(8), true);
  }

  string(): string {
    const n = this.varint();
    const from = this.take(n);
    return DECODER.decode(this.bytes.subarray(from, from + n));
  }

  /** The scaled integer of a Decimal of `bytes` bytes. */
  decimal(bytes: 4 | 8 | 16): bigint {
    if (bytes === 4) return BigInt(this.int32());
    if (bytes === 8) return this.view.getBigInt64(this.take(8), true);
    const lo = this.view.getBigUint64(this.take(8), true);
    const hi = this.view.getBigInt64(this.take(8), true);
    return (hi << 64n) | lo;
  }

  varint(): number {
    let v = 0;
    let scale = 1;
    for (;;) {
      const b = this.uint8();
      v += (b & 0x7f) * scale;
      if (b < 0x80) return v;
      scale *= 128;
      if (scale > 2 ** 35) throw new EncodeError("invalid_field", "length", "a LEB128 length over 5 bytes");
    }
  }

  private take(n: number): number {
    const at = this.at;
    if (at + n > this.bytes.length)
      throw new EncodeError("length_exceeded", "RowBinary", `${n} bytes wanted at ${at} of ${this.bytes.length}`);
    this.at = at + n;
    return at;
  }
}

/** One column's value into the writer, by its type; EncodeError (naming the column) for a value the type cannot hold. */
export function writeColumnValue(w: RowBinaryWriter, c: ColumnSpec, v: ColumnValue): void {
  if (c.nullable) {
    w.isNull(v === null);
    if (v === null) return;
  } else if (v === null) throw new EncodeError("missing_field", c.name, `NULL in a column of type ${c.type}`);
  try {
    writeScalar(w, c.type, v);
  } catch (error) {
    if (error instanceof EncodeError && error.field !== c.name) throw new EncodeError(error.reason, c.name, error.message);
    throw error;
  }
}

/** One column's value from the reader (DateTime as seconds, Date as days, Decimal as its decimal text). */
export function readColumnValue(r: RowBinaryReader, c: ColumnSpec): ColumnValue {
  if (c.nullable && r.uint8() === 1) return null;
  const t = c.type;
  switch (t) {
    case "String":
      return r.string();
    case "Float64":
      return r.float64();
    case "UInt8":
      return r.uint8();
    case "UInt16":
    case "Date":
      return r.uint16();
    case "UInt32":
    case "DateTime":
      return r.uint32();
    case "UInt64":
      return r.uint64();
    case "Int8":
      return r.int8();
    case "Int16":
      return r.int16();
    case "Int32":
      return r.int32();
    case "Int64":
      return r.int64();
    case "Array(String)": {
      const out: string[] = [];
      for (let n = r.varint(); n > 0; n--) out.push(r.string());
      return out;
    }
    default: {
      const { bytes, scale } = decimalOf(t);
      return decimalText(r.decimal(bytes), scale);
    }
  }
}

/** Precision and scale of a `Decimal(P, S)` type, and the integer width RowBinary gives it. */
export function decimalOf(type: string): { precision: number; scale: number; bytes: 4 | 8 | 16 } {
  const m = /^Decimal\((\d+), (\d+)\)$/.exec(type);
  if (m === null) throw new EncodeError("invalid_field", "type", `not a column type linewatch knows: ${type}`);
  const precision = Number(m[1]);
  const scale = Number(m[2]);
  if (precision < 1 || precision > 38 || scale > precision)
    throw new EncodeError("invalid_field", "type", `bad precision or scale: ${type}`);
  return { precision, scale, bytes: precision <= 9 ? 4 : precision <= 18 ? 8 : 16 };
}

/**
 * A decimal number's value × 10^scale, exactly: from a bigint (taken as already scaled), decimal
 * text (`-12.5`, `1e-3`), or a number (through its shortest text, the digits a JSON line would
 * carry). EncodeError when it has more fraction digits than `scale` keeps.
 */
export function scaledDecimal(v: bigint | string | number, scale: number): bigint {
  if (typeof v === "bigint") return v;
  const text = typeof v === "number" ? String(v) : v.trim();
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (m === null || (m[2] === "" && (m[3] ?? "") === ""))
    throw new EncodeError("invalid_field", "Decimal", `not a decimal number: ${text}`);
  let digits = m[2] + (m[3] ?? "");
  // The value is digits × 10^(exponent − fraction digits); shift it to × 10^−scale.
  let shift = scale - (m[3] ?? "").length + Number(m[4] ?? 0);
  if (shift < 0) {
    const dropped = digits.slice(Math.max(0, digits.length + shift));
    if (/[^0]/.test(dropped)) throw new EncodeError("invalid_field", "Decimal", `${text} has more than ${scale} fraction digits`);
    digits = digits.slice(0, Math.max(0, digits.length + shift));
    shift = 0;
  }
  const scaled = BigInt(digits === "" ? "0" : digits) * 10n ** BigInt(shift);
  return m[1] === "-" ? -scaled : scaled;
}

/** The decimal text of a scaled integer (`-1234`, scale 2 → `-12.34`). */
export function decimalText(scaled: bigint, scale: number): string {
  const negative = scaled < 0n;
  const digits = (negative ? -scaled : scaled).toString().padStart(scale + 1, "0");
  const text = scale === 0 ? digits : `${digits.slice(0, digits.length - scale)}.${digits.slice(digits.length - scale)}`;
  return negative ? `-${text}` : text;
}

// ---------------------------------------------------------------------------------------------
// Internals
// ---------------------------------------------------------------------------------------------

const ENCODER = new TextEncoder();
const DECODER = new TextDecoder("utf-8", { fatal: false });

function varintSize(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

function writeScalar(w: RowBinaryWriter, type: ColumnType, v: Exclude<ColumnValue, null>): void {
  if (type === "String") {
    if (typeof v !== "string") throw new EncodeError("wrong_type", type, "expected a string");
    w.string(v);
    return;
  }
  if (type === "Array(String)") {
    if (!Array.isArray(v) || v.some((s) => typeof s !== "string"))
      throw new EncodeError("wrong_type", type, "expected an array of strings");
    w.stringArray(v);
    return;
  }
  if (type.startsWith("Decimal(")) {
    const d = decimalOf(type);
    if (typeof v !== "bigint" && typeof v !== "string" && typeof v !== "number")
      throw new EncodeError("wrong_type", type, "expected a decimal number");
    const scaled = scaledDecimal(v, d.scale);
    if ((scaled < 0n ? -scaled : scaled) >= 10n ** BigInt(d.precision))
      throw new EncodeError("invalid_field", type, `${decimalText(scaled, d.scale)} has more than ${d.precision} digits`);
    w.decimal(scaled, d.bytes);
    return;
  }
  if (typeof v !== "number") throw new EncodeError("wrong_type", type, "expected a number");
  NUMBER_WRITERS[type as NumberType](w, v);
}

type NumberType = "Float64" | "UInt8" | "UInt16" | "UInt32" | "UInt64" | "Int8" | "Int16" | "Int32" | "Int64" | "DateTime" | "Date";

const NUMBER_WRITERS: { readonly [T in NumberType]: (w: RowBinaryWriter, v: number) => void } = {
  Float64: (w, v) => w.float64(v),
  UInt8: (w, v) => w.uint8(v),
  UInt16: (w, v) => w.uint16(v),
  UInt32: (w, v) => w.uint32(v),
  UInt64: (w, v) => w.uint64(v),
  Int8: (w, v) => w.int8(v),
  Int16: (w, v) => w.int16(v),
  Int32: (w, v) => w.int32(v),
  Int64: (w, v) => w.int64(v),
  DateTime: (w, v) => w.dateTime(v),
  Date: (w, v) => w.date(v),
};
