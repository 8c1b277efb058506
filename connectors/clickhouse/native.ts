/**
 * ClickHouse's Native format: the columnar block the server takes almost as it stores it, where
 * RowBinary is parsed row by row, field by field. A writer that builds blocks column by column
 * into a growable, bounded buffer; a walker that checks blocks against a table's columns; and a
 * block's rows as RowBinary (the sink's way around a refused row, and dead letters). Pure (no
 * client, no I/O), so an ingest worker encodes its blocks on its own thread.
 *
 * The layout, from https://clickhouse.com/docs/en/interfaces/formats#native and the format's
 * specification (https://clickhouse.com/docs/en/interfaces/specs/NativeFormat), as the body of
 * an HTTP `INSERT INTO t (columns…) FORMAT Native`:
 * - blocks back to back, each: the column count and the row count (unsigned LEB128), then per
 *   column its name and its type (Strings; the type spelt as CREATE TABLE declares it, e.g.
 *   `Nullable(Float64)`), then the column's data for all rows;
 * - no BlockInfo before the counts and no custom-serialization byte after a type: the server
 *   writes and reads those only on the native TCP protocol (or over HTTP when the request names a
 *   `client_protocol_version`); an HTTP body is read with protocol revision 0;
 * - data: fixed-width values little-endian, n × their size (DateTime UInt32 seconds, Date UInt16
 *   days, Decimal(P, S) the scaled integer of 4, 8 or 16 bytes); String per row its length
 *   (LEB128) and bytes, as in RowBinary; Array(T) the n cumulative element counts as UInt64, then
 *   every element's data; Nullable(T) the null map (n bytes, 1 = NULL), then n values of T, a
 *   value under NULL being anything (0 here).
 *
 * Checked on ClickHouse 18.16 (test/clickhouse-native.test.ts and the probes noted in
 * docs/clickhouse.md): one or several blocks per body, no BlockInfo. 18.16 matches a block's
 * columns to the table's by name: a column the table lacks is dropped without a word and a table
 * column the block lacks gets its default, so a block must have exactly the table's columns
 * ({@link nativeLayout} checks that). A block column whose type differs is refused (code 368,
 * BAD_CAST) — except a plain column where the table's is Nullable, which crashes 18.16 (SIGSEGV
 * in ColumnNullable::checkConsistency): the sink compares the server's columns with the
 * declaration before it sends a table its first Native block.
 */
import { GrowingBytes } from "./growing-bytes.js";
import { EncodeError } from "../errors.js";
import {
  type ColumnSpec,
  columnTypeName,
  DEFAULT_ROW_BINARY_BYTES_MAX,
  decimalOf,
  type EncodedRows,
  encodeRowBinaryString,
  RowBinaryWriter,
} from "./row-binary.js";

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/** Native blocks: one (as an encoder writes it) or several back to back (an insert's body). */
export interface NativeBlock {
  format: "Native";
  bytes: Uint8Array;
  /** Rows over all its blocks. */
  rows: number;
}

/** Whether an encoded batch is Native blocks (else RowBinary rows). */
export function isNativeBlock(encoded: object): encoded is NativeBlock {
  return (encoded as { format?: unknown }).format === "Native";
}

/**
 * Writes blocks: {@link begin} a block, then per column {@link column} (name and type) and its
 * data for every row through the typed methods, then {@link finish}. The buffer doubles as it
 * fills, up to `bytesMax` (CapacityError past it). Scratch arrays ({@link f64}, …) let an
 * encoder gather a column before it is copied in whole; they are reused across blocks.
 */
export class NativeWriter extends GrowingBytes {
  private rows = 0;
  private blockRows = 0;
  private columnsLeft = 0;
  private scratchF64 = new Float64Array(0);
  private scratchU32 = new Uint32Array(0);
  private scratchU8 = new Uint8Array(0);

  constructor(initialBytes = 64 * 1024, bytesMax = DEFAULT_ROW_BINARY_BYTES_MAX) {
    super(initialBytes, bytesMax, "Native");
  }

  /** Starts a block of `columns` columns of `rows` rows. */
  begin(columns: number, rows: number): void {
    if (this.columnsLeft !== 0) throw new RangeError(`a Native block still wants ${this.columnsLeft} columns`);
    this.varUInt(columns);
    this.varUInt(rows);
    this.blockRows = rows;
    this.columnsLeft = columns;
    this.rows += rows;
  }

  /** A column's name and type; its data follows. */
  column(name: string, type: string): void {
    this.columnHeader(columnHeader(name, type));
  }

  /** A column's name and type encoded once by {@link columnHeader}; its data follows. */
  columnHeader(header: Uint8Array): void {
    if (this.columnsLeft === 0) throw new RangeError("a Native block has all its columns");
    this.columnsLeft--;
    this.raw(header);
  }

  /** `columns` whole columns of the block begun, headers and data, as bytes written before (another block's of the same rows). */
  columnsCopied(bytes: Uint8Array, columns: number): void {
    if (columns > this.columnsLeft) throw new RangeError(`a Native block wants ${this.columnsLeft} more columns, not ${columns}`);
    this.columnsLeft -= columns;
    this.raw(bytes);
  }

  /** Rows of the blocks written since the last finish. */
  get rowsHeld(): number {
    return this.rows;
  }

  /** Bytes written since the last finish. */
  get bytesHeld(): number {
    return this.at;
  }

  /** The rows of the block begun last. */
  get blockRowCount(): number {
    return this.blockRows;
  }

  /** A Float64 scratch array of at least `n` values (its contents are not kept). */
  f64(n: number): Float64Array {
    if (this.scratchF64.length < n) this.scratchF64 = new Float64Array(grown(n));
    return this.scratchF64;
  }

  /** A UInt32 scratch array of at least `n` values. */
  u32(n: number): Uint32Array {
    if (this.scratchU32.length < n) this.scratchU32 = new Uint32Array(grown(n));
    return this.scratchU32;
  }

  /** A byte scratch array of at least `n` values. */
  u8(n: number): Uint8Array {
    if (this.scratchU8.length < n) this.scratchU8 = new Uint8Array(grown(n));
    return this.scratchU8;
  }

  /**
   * `cell` `n` times in a row (a String column whose every row is the same, e.g. the audit
   * record's hashes): one copy, then doubling copies within the buffer — a few memcpys, not a call per row.
   */
  repeated(cell: Uint8Array, n: number): void {
    const len = cell.length;
    if (n <= 0 || len === 0) return;
    this.room(len * n);
    const start = this.at;
    this.buf.set(cell, start);
    for (let done = len; done < len * n; done *= 2) this.buf.copyWithin(start + done, start, start + Math.min(done, len * n - done));
    this.at += len * n;
  }

  /** The first `n` doubles of `values`, exact (−0, NaN payloads and all). */
  float64s(values: Float64Array, n: number): void {
    if (LITTLE_ENDIAN) return this.copy(values, n * 8);
    this.room(n * 8);
    for (let i = 0; i < n; i++) this.view.setFloat64(this.at + 8 * i, values[i], true);
    this.at += n * 8;
  }

  /** UInt32 (or DateTime): the first `n` of `values`. */
  uint32s(values: Uint32Array, n: number): void {
    if (LITTLE_ENDIAN) return this.copy(values, n * 4);
    this.room(n * 4);
    for (let i = 0; i < n; i++) this.view.setUint32(this.at + 4 * i, values[i], true);
    this.at += n * 4;
  }

  /**
   * UInt64 from the first `n` of `values`, each a non-negative safe integer (the caller checked):
   * low and high 32-bit words, little-endian.
   */
  uint64s(values: Float64Array, n: number): void {
    const words = this.u32(2 * n);
    for (let i = 0; i < n; i++) {
      const v = values[i];
      words[2 * i] = v >>> 0;
      words[2 * i + 1] = Math.floor(v / 0x100000000);
    }
    this.uint32s(words, 2 * n);
  }

  /** UInt8, Int8 (two's complement bytes) or a null map: the first `n` of `values`. */
  uint8s(values: Uint8Array, n: number): void {
    this.copy(values, n);
  }

  /** A String: its UTF-8 bytes after their count. */
  string(s: string): void {
    this.raw(encodeRowBinaryString(s));
  }

  /**
   * The blocks written since the last finish as a view of the writer's buffer (no copy), valid
   * until the writer writes again: to copy where the caller wants them, then {@link reset}.
   */
  held(): Uint8Array {
    if (this.columnsLeft !== 0) throw new RangeError(`a Native block still wants ${this.columnsLeft} columns`);
    return this.buf.subarray(0, this.at);
  }

  /** The blocks written since the last finish, copied out (transferable, exact size); the writer starts empty again. */
  finish(): NativeBlock {
    if (this.columnsLeft !== 0) throw new RangeError(`a Native block still wants ${this.columnsLeft} columns`);
    const out: NativeBlock = { format: "Native", bytes: this.buf.slice(0, this.at), rows: this.rows };
    this.reset();
    return out;
  }

  /** Empties the writer, keeping its buffers. */
  reset(): void {
    this.at = 0;
    this.rows = 0;
    this.blockRows = 0;
    this.columnsLeft = 0;
  }

  private varUInt(v: number): void {
    this.room(10);
    while (v >= 0x80) {
      this.buf[this.at++] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buf[this.at++] = v;
  }

  private copy(values: ArrayBufferView, bytes: number): void {
    this.room(bytes);
    this.buf.set(new Uint8Array(values.buffer, values.byteOffset, bytes), this.at);
    this.at += bytes;
  }
}

/** A column's header, its name and type as Strings, to write with {@link NativeWriter.columnHeader}. */
export function columnHeader(name: string, type: string): Uint8Array {
  const a = encodeRowBinaryString(name);
  const b = encodeRowBinaryString(type);
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Where each block of a body is, and its rows. */
export interface NativeLayout {
  /** Byte offset of each block, then the body's end: blocks = `starts.length − 1`. */
  starts: Uint32Array;
  /** Rows of each block. */
  blockRows: Uint32Array;
  /** Rows over all blocks. */
  rows: number;
}

/**
 * Where the blocks of `bytes` are, when they are whole Native blocks (at least one) of exactly
 * `columns` — the names, the types as declared, in order — ending at the last byte; otherwise
 * what is wrong, as a sentence. Walks every String column's lengths, so it is linear in rows.
 */
export function nativeLayout(bytes: Uint8Array, columns: readonly ColumnSpec[]): NativeLayout | string {
  const r = new NativeReader(bytes);
  const starts = [0];
  const blockRows: number[] = [];
  const headers = headersOf(columns);
  try {
    while (!r.done) {
      const n = blockHeader(r, columns.length);
      for (let k = 0; k < columns.length; k++) {
        // The header's bytes as the writer encodes them (name and type): compared, decoded only when they differ.
        if (r.startsWith(headers[k])) r.skip(headers[k].length);
        else {
          const c = columns[k];
          const name = r.string();
          const type = r.string();
          if (name !== c.name || type !== columnTypeName(c))
            return `block ${blockRows.length}: column ${JSON.stringify(name)} ${type} where the table has ${c.name} ${columnTypeName(c)}`;
        }
        skipColumn(r, columnTypeName(columns[k]), n);
      }
      blockRows.push(n);
      starts.push(r.at);
    }
  } catch (error) {
    if (!(error instanceof EncodeError)) throw error;
    return `block ${blockRows.length}: ${error.message}`;
  }
  if (blockRows.length === 0) return "no block";
  return { starts: Uint32Array.from(starts), blockRows: Uint32Array.from(blockRows), rows: blockRows.reduce((a, b) => a + b, 0) };
}

/**
 * The rows of Native blocks as RowBinary, in order, columns as each block has them: the same
 * values, byte for byte (a Native String cell is a RowBinary String; a Nullable cell becomes its
 * flag and, unless NULL, its value). EncodeError when the bytes are not whole blocks.
 */
export function nativeToRowBinary(bytes: Uint8Array): EncodedRows {
  const r = new NativeReader(bytes);
  const w = new RowBinaryWriter(bytes.length + 1024, Math.max(DEFAULT_ROW_BINARY_BYTES_MAX, 2 * bytes.length));
  while (!r.done) {
    const columns = r.varUInt();
    const n = r.varUInt();
    const cells: Cells[] = [];
    for (let c = 0; c < columns; c++) {
      r.string();
      cells.push(readCells(r, r.string(), n));
    }
    for (let i = 0; i < n; i++) {
      for (const c of cells) writeCell(w, bytes, c, i);
      w.endRow();
    }
  }
  return w.finish();
}

/**
 * Rows [from, to) of the first block of `bytes` as a block of their own (its column headers, each
 * column's data for those rows): how the sink fills a batch to `batchRowsMax` with part of a block.
 */
export function sliceNativeBlock(bytes: Uint8Array, from: number, to: number): Uint8Array {
  const r = new NativeReader(bytes);
  const columns = r.varUInt();
  const n = r.varUInt();
  if (!(Number.isInteger(from) && Number.isInteger(to) && from >= 0 && from < to && to <= n))
    throw new RangeError(`rows ${from}…${to} of a block of ${n}`);
  const parts: Uint8Array[] = [leb128(columns), leb128(to - from)];
  for (let c = 0; c < columns; c++) {
    const header = r.at;
    r.string();
    const type = r.string();
    parts.push(bytes.subarray(header, r.at));
    const cells = readCells(r, type, n);
    if (cells.nulls !== null) parts.push(cells.nulls.subarray(from, to));
    if (cells.counts !== null) {
      // An Array's offsets count from the slice's first element.
      const offsets = new DataView(new ArrayBuffer(8 * (to - from)));
      let total = 0;
      for (let i = from; i < to; i++) {
        total += cells.counts[i];
        offsets.setUint32(8 * (i - from), total >>> 0, true);
        offsets.setUint32(8 * (i - from) + 4, Math.floor(total / 0x100000000), true);
      }
      parts.push(new Uint8Array(offsets.buffer));
    }
    parts.push(bytes.subarray(cells.starts[from], cells.starts[to]));
  }
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Internals
// ---------------------------------------------------------------------------------------------

const DECODER = new TextDecoder("utf-8", { fatal: false });
/** Typed arrays are copied in whole on a little-endian machine (every platform Node runs on today); the DataView loops are the fallback. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** Bytes of each fixed-width type. */
const WIDTHS: Readonly<Record<string, number>> = {
  UInt8: 1,
  Int8: 1,
  UInt16: 2,
  Int16: 2,
  Date: 2,
  UInt32: 4,
  Int32: 4,
  Float32: 4,
  DateTime: 4,
  UInt64: 8,
  Int64: 8,
  Float64: 8,
};

/** `v` as unsigned LEB128. */
function leb128(v: number): Uint8Array {
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Uint8Array.from(out);
}

function grown(n: number): number {
  return Math.max(1024, 2 ** Math.ceil(Math.log2(n)));
}

/** Reads a body; EncodeError past its end. */
class NativeReader {
  at = 0;

  constructor(readonly bytes: Uint8Array) {}

  get done(): boolean {
    return this.at >= this.bytes.length;
  }

  varUInt(): number {
    let v = 0;
    let scale = 1;
    for (;;) {
      if (this.at >= this.bytes.length)
        throw new EncodeError("length_exceeded", "Native", `a length runs past the end (${this.bytes.length} bytes)`);
      const b = this.bytes[this.at++];
      v += (b & 0x7f) * scale;
      if (b < 0x80) return v;
      scale *= 128;
      if (scale > 2 ** 49) throw new EncodeError("invalid_field", "Native", "a LEB128 number over 7 bytes");
    }
  }

  string(): string {
    const n = this.varUInt();
    const from = this.skip(n);
    return DECODER.decode(this.bytes.subarray(from, from + n));
  }

  /** Whether the next bytes are `prefix`. */
  startsWith(prefix: Uint8Array): boolean {
    const at = this.at;
    if (at + prefix.length > this.bytes.length) return false;
    for (let i = 0; i < prefix.length; i++) if (this.bytes[at + i] !== prefix[i]) return false;
    return true;
  }

  /**
   * Moves past `count` Strings (each a LEB128 length and its bytes): one loop over local
   * variables, since a body's String cells are most of what walking it costs.
   */
  skipStrings(count: number): void {
    const b = this.bytes;
    const end = b.length;
    let at = this.at;
    for (let i = 0; i < count; i++) {
      if (at >= end) throw new EncodeError("length_exceeded", "Native", `a length runs past the end (${end} bytes)`);
      const first = b[at];
      if (first < 0x80) {
        at += 1 + first;
        continue;
      }
      this.at = at;
      const n = this.varUInt();
      at = this.at + n;
    }
    if (at > end) throw new EncodeError("length_exceeded", "Native", `a String runs past the end (${end} bytes)`);
    this.at = at;
  }

  /** Moves past `n` bytes; returns where they start. */
  skip(n: number): number {
    const at = this.at;
    if (at + n > this.bytes.length)
      throw new EncodeError("length_exceeded", "Native", `${n} bytes wanted at ${at} of ${this.bytes.length}`);
    this.at = at + n;
    return at;
  }

  /** A UInt64 that must be a safe integer (an Array's offsets). */
  uint64(): number {
    const at = this.skip(8);
    const view = new DataView(this.bytes.buffer, this.bytes.byteOffset + at, 8);
    const hi = view.getUint32(4, true);
    if (hi >= 0x200000) throw new EncodeError("invalid_field", "Native", "an Array offset past 2^53");
    return hi * 0x100000000 + view.getUint32(0, true);
  }
}

/** Each column's header as {@link columnHeader} encodes it, per column list (the tables' are few and fixed). */
const HEADERS = new WeakMap<readonly ColumnSpec[], Uint8Array[]>();

function headersOf(columns: readonly ColumnSpec[]): Uint8Array[] {
  let h = HEADERS.get(columns);
  if (h === undefined) {
    h = columns.map((c) => columnHeader(c.name, columnTypeName(c)));
    HEADERS.set(columns, h);
  }
  return h;
}

/** A block's counts: `columns` columns (EncodeError otherwise) and its row count, which it returns. */
function blockHeader(r: NativeReader, columns: number): number {
  const count = r.varUInt();
  const rows = r.varUInt();
  if (count !== columns) throw new EncodeError("invalid_field", "Native", `${count} columns where the table has ${columns}`);
  if (rows === 0) throw new EncodeError("invalid_field", "Native", "a block of no rows");
  return rows;
}

/** `Nullable(T)` → T and true; anything else as it is. */
function innerType(type: string): { inner: string; nullable: boolean } {
  return type.startsWith("Nullable(") && type.endsWith(")")
    ? { inner: type.slice(9, -1), nullable: true }
    : { inner: type, nullable: false };
}

/** Bytes per value of a fixed-width type, 0 for String and Array(String); EncodeError for a type linewatch does not write. */
function widthOf(type: string): number {
  if (type === "String" || type === "Array(String)") return 0;
  const w = WIDTHS[type];
  if (w !== undefined) return w;
  if (type.startsWith("Decimal(")) return decimalOf(type).bytes;
  throw new EncodeError("invalid_field", "Native", `a column of type ${type}, which linewatch does not write`);
}

function skipColumn(r: NativeReader, type: string, n: number): void {
  const { inner, nullable } = innerType(type);
  if (nullable) r.skip(n);
  const width = widthOf(inner);
  if (width > 0) {
    r.skip(n * width);
    return;
  }
  let strings = n;
  if (inner === "Array(String)") {
    r.skip(8 * (n - 1));
    strings = r.uint64();
  }
  r.skipStrings(strings);
}

/** One column of a block, as ranges: row i's value is `bytes[starts[i], starts[i + 1])`. */
interface Cells {
  /** The null map, for a Nullable column. */
  nulls: Uint8Array | null;
  starts: Uint32Array;
  /** Per row, its element count (an Array column; its cells are the elements' Strings). */
  counts: Float64Array | null;
}

function readCells(r: NativeReader, type: string, n: number): Cells {
  const { inner, nullable } = innerType(type);
  const nulls = nullable ? r.bytes.subarray(r.skip(n), r.at) : null;
  const width = widthOf(inner);
  const starts = new Uint32Array(n + 1);
  if (width > 0) {
    const from = r.skip(n * width);
    for (let i = 0; i <= n; i++) starts[i] = from + i * width;
    return { nulls, starts, counts: null };
  }
  if (inner === "String") {
    for (let i = 0; i < n; i++) {
      starts[i] = r.at;
      r.skip(r.varUInt());
    }
    starts[n] = r.at;
    return { nulls, starts, counts: null };
  }
  const ends = new Float64Array(n);
  for (let i = 0; i < n; i++) ends[i] = r.uint64();
  const counts = new Float64Array(n);
  let element = 0;
  for (let i = 0; i < n; i++) {
    starts[i] = r.at;
    counts[i] = ends[i] - element;
    for (; element < ends[i]; element++) r.skip(r.varUInt());
  }
  starts[n] = r.at;
  return { nulls, starts, counts };
}

function writeCell(w: RowBinaryWriter, bytes: Uint8Array, c: Cells, i: number): void {
  if (c.nulls !== null) {
    w.isNull(c.nulls[i] !== 0);
    if (c.nulls[i] !== 0) return;
  }
  if (c.counts !== null) w.varUInt(c.counts[i]);
  w.raw(bytes.subarray(c.starts[i], c.starts[i + 1]));
}
