/**
 * CSV with a header, read as bytes: each block of lines comes with the offsets of every field, so
 * a consumer reads the cells it needs straight from the file's bytes — no string or object per
 * row. It reads exactly what {@link readTable} reads (same header, same rows and row numbers,
 * same errors): a line the byte scan cannot split safely — a double quote, a byte above 0x7F, a
 * first byte that is a space or control character, a field count that is not the header's — is
 * decoded and split by the text rules ({@link splitCsvLine}) and handed over as strings instead.
 */
import { type FileHandle, open } from "node:fs/promises";
import { InputError } from "../../engine/core/mod.js";
import { DEFAULT_LINE_BYTES_MAX, splitCsvLine } from "./table-reader.js";

/** The header's columns and their field indexes (a name given twice: its last field, as readTable). */
export interface CsvHeader {
  columns: string[];
  index: ReadonlyMap<string, number>;
}

/**
 * Lines of one block; valid during the callback (and until the promise it returns settles).
 * Line i's field f is `bytes[cells[i·(fields + 1) + f], cells[i·(fields + 1) + f + 1] − 1)` — except
 * for a line whose `cells[i·(fields + 1)]` is −1: its fields are `text.get(i)`.
 */
export interface CsvBlock {
  bytes: Buffer;
  length: number;
  fields: number;
  cells: Int32Array;
  /** 0-based data row of the block's first line. */
  firstRow: number;
  /** 1-based input line of each line (for messages). */
  lines: Float64Array;
  text: Map<number, string[]>;
}

/** Byte classes of the scan: 0 ordinary, 1 comma, 2 newline, 3 not splittable as bytes (quote, non-ASCII). */
const CLASS = Uint8Array.from({ length: 256 }, (_, b) => (b === 44 ? 1 : b === 10 ? 2 : b === 34 || b > 127 ? 3 : 0));
const READ_CHUNK_BYTES = 1 << 20;

/**
 * Reads the CSV file at `path`: `onHeader` once, then `onBlock` for each block of data lines
 * (awaited when it returns a promise: that is how a slow consumer slows the reader). Returns the
 * number of data rows.
 */
export async function scanCsv(
  path: string,
  onHeader: (header: CsvHeader) => void,
  onBlock: (block: CsvBlock) => void | Promise<void>,
  lineBytesMax = DEFAULT_LINE_BYTES_MAX,
): Promise<number> {
  const scan = new CsvScan(path, onHeader, lineBytesMax);
  let file: FileHandle | null = null;
  try {
    file = await open(path, "r");
    await scanFile(file, scan, onBlock);
  } catch (error) {
    if (error instanceof InputError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== undefined) throw new InputError(`cannot read ${path}: ${(error as Error).message}`, { cause: error });
    throw error;
  } finally {
    await file?.close();
  }
  if (scan.header === null) throw new InputError(`${path}: no header or records`);
  return scan.rows;
}

/**
 * The file in chunks into two buffers used in turn: while one chunk's lines are scanned and
 * consumed, the next is read into the other buffer, after the partial line the chunk ended with.
 * Nothing is allocated per chunk (a fresh megabyte per read was page faults and garbage).
 */
async function scanFile(file: FileHandle, scan: CsvScan, onBlock: (block: CsvBlock) => void | Promise<void>): Promise<void> {
  const buffers = [Buffer.allocUnsafe(2 * READ_CHUNK_BYTES), Buffer.allocUnsafe(2 * READ_CHUNK_BYTES)];
  let turn = 0;
  let carried = 0;
  let reading = file.read(buffers[0], 0, READ_CHUNK_BYTES, null);
  // A read still under way when the consumer fails is left behind: it must not become an unhandled rejection.
  reading.catch(() => {});
  for (;;) {
    const { bytesRead } = await reading;
    const bytes = buffers[turn];
    const filled = carried + bytesRead;
    if (bytesRead === 0) {
      // The end: a last line without a newline is scanned with one appended.
      if (carried > 0) {
        const last = Buffer.allocUnsafe(carried + 1);
        bytes.copy(last, 0, 0, carried);
        last[carried] = 10;
        await consume(scan.block(last, carried + 1), onBlock);
      }
      return;
    }
    const end = bytes.lastIndexOf(10, filled - 1) + 1;
    const next = turn ^ 1;
    carried = filled - end;
    if (carried > scan.lineBytesMax) throw new InputError(`${scan.path}:${scan.lineNo + 1}: line longer than ${scan.lineBytesMax} bytes`);
    if (carried + READ_CHUNK_BYTES > buffers[next].length) buffers[next] = Buffer.allocUnsafe(2 * (carried + READ_CHUNK_BYTES));
    bytes.copy(buffers[next], 0, end, filled);
    reading = file.read(buffers[next], carried, READ_CHUNK_BYTES, null);
    reading.catch(() => {});
    if (end > 0) await consume(scan.block(bytes, end), onBlock);
    turn = next;
  }
}

function consume(block: CsvBlock, onBlock: (block: CsvBlock) => void | Promise<void>): void | Promise<void> {
  return block.length > 0 ? onBlock(block) : undefined;
}

class CsvScan {
  header: CsvHeader | null = null;
  rows = 0;
  lineNo = 0;
  private fields = 0;
  private cells = new Int32Array(1 << 16);
  private lines = new Float64Array(1 << 12);

  constructor(
    readonly path: string,
    private readonly onHeader: (header: CsvHeader) => void,
    readonly lineBytesMax: number,
  ) {}

  /** The data lines of `bytes[0, end)`, which ends with a newline. */
  block(bytes: Buffer, end: number): CsvBlock {
    const block: CsvBlock = {
      bytes,
      length: 0,
      fields: this.fields,
      cells: this.cells,
      firstRow: this.rows,
      lines: this.lines,
      text: new Map(),
    };
    let start = 0;
    while (start < end) {
      if (this.header === null) {
        start = this.headerLine(bytes, start);
        block.fields = this.fields;
        block.firstRow = this.rows;
        continue;
      }
      start = this.dataLine(bytes, start, block);
    }
    block.cells = this.cells;
    block.lines = this.lines;
    return block;
  }

  /** One line before the header: blank, or the header. Returns where the next line starts. */
  private headerLine(bytes: Buffer, start: number): number {
    let nl = start;
    while (bytes[nl] !== 10) nl++;
    this.lineNo++;
    this.checkLength(start, nl);
    const text = lineText(bytes, start, nl);
    if (text.trim() === "") return nl + 1;
    const index = new Map<string, number>();
    splitCsvLine(text).forEach((name, i) => index.set(name.trim(), i));
    this.header = { columns: [...index.keys()], index };
    this.fields = index.size;
    this.onHeader(this.header);
    return nl + 1;
  }

  /** One line after the header into `block` (unless blank). Returns where the next line starts. */
  private dataLine(bytes: Buffer, start: number, block: CsvBlock): number {
    const fields = this.fields;
    const at = block.length * (fields + 1);
    if (at + fields + 1 > this.cells.length) this.growCells(at + fields + 1);
    const cells = this.cells;
    cells[at] = start;
    let field = 1;
    let plain = bytes[start] > 32;
    let i = start;
    for (; ; i++) {
      const c = CLASS[bytes[i]];
      if (c === 0) continue;
      if (c === 2) break;
      if (c === 3) plain = false;
      else if (field < fields) cells[at + field++] = i + 1;
      else plain = false; // more fields than the header: the text rules say so
    }
    this.lineNo++;
    this.checkLength(start, i);
    const stop = i > start && bytes[i - 1] === 13 ? i - 1 : i;
    if (plain && field === fields) cells[at + fields] = stop + 1;
    else if (!this.textLine(bytes, start, stop, block)) return i + 1;
    if (block.length === this.lines.length) this.growLines();
    this.lines[block.length++] = this.lineNo;
    this.rows++;
    return i + 1;
  }

  /** A line the bytes cannot split: decoded, split as text; false when it is blank (skipped, as readTable skips it). */
  private textLine(bytes: Buffer, start: number, stop: number, block: CsvBlock): boolean {
    const text = bytes.toString("utf8", start, stop);
    if (text.length === 0 || (text.charCodeAt(0) <= 32 && text.trim() === "")) return false;
    const cells = splitCsvLine(text);
    if (cells.length !== this.fields) {
      throw new InputError(`${this.path}:${this.lineNo}: ${cells.length} fields where the header has ${this.fields}`);
    }
    this.cells[block.length * (this.fields + 1)] = -1;
    block.text.set(block.length, cells);
    return true;
  }

  private checkLength(start: number, end: number): void {
    if (end - start > this.lineBytesMax) throw new InputError(`${this.path}:${this.lineNo}: line longer than ${this.lineBytesMax} bytes`);
  }

  private growCells(need: number): void {
    const grown = new Int32Array(Math.max(need, this.cells.length * 2));
    grown.set(this.cells);
    this.cells = grown;
  }

  private growLines(): void {
    const grown = new Float64Array(this.lines.length * 2);
    grown.set(this.lines);
    this.lines = grown;
  }
}

/** Line `[start, nl)` as text, without a final carriage return (readTable's line). */
function lineText(bytes: Buffer, start: number, nl: number): string {
  return bytes.toString("utf8", start, nl > start && bytes[nl - 1] === 13 ? nl - 1 : nl);
}
