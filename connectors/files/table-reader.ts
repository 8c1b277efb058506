/**
 * Reading tabular input — CSV with a header, or NDJSON — line by line, with bounded memory.
 *
 * Rows are handed out through one reused {@link TableRow}; a consumer reads the fields it needs
 * before asking for the next row. A line longer than `lineBytesMax` is an {@link InputError}
 * (a file without newlines must not grow a string without bound).
 */
import { createReadStream } from "node:fs";
import type { Readable } from "node:stream";
import { InputError } from "../../engine/core/mod.js";

export type TableFormat = "csv" | "ndjson";
export type CellValue = string | number | boolean | null | undefined;

export interface TableRow {
  /** 0-based data row (the CSV header is not a data row). */
  readonly row: number;
  /** 1-based line in the input, for error messages. */
  readonly line: number;
  get(column: string): CellValue;
  has(column: string): boolean;
}

export const DEFAULT_LINE_BYTES_MAX = 1 << 20;

/** Format from the file name: `.ndjson`/`.jsonl` are NDJSON, anything else CSV; `-` sniffs the first byte. */
export function formatOfPath(path: string): TableFormat | "sniff" {
  if (path === "-") return "sniff";
  return /\.(ndjson|jsonl)$/i.test(path) ? "ndjson" : "csv";
}

/** Columns a CSV header declares, or the keys of the first NDJSON record. */
export interface TableHeader {
  columns: string[];
  format: TableFormat;
}

/**
 * Reads `path` (or stdin for `-`) and calls `onRow` for every data row, awaiting it when it
 * returns a promise (which is how a slow consumer slows the reader). `onHeader` runs once first.
 */
export async function readTable(
  path: string,
  onHeader: (header: TableHeader) => void,
  onRow: (row: TableRow) => void | Promise<void>,
  lineBytesMax = DEFAULT_LINE_BYTES_MAX,
): Promise<number> {
  const stream: Readable = path === "-" ? process.stdin : createReadStream(path);
  // Decoded across chunks: a character whose bytes straddle two chunks stays one character.
  stream.setEncoding("utf8");
  let format = formatOfPath(path);
  let parser: LineParser | null = null;
  let rows = 0;
  let lineNo = 0;
  let carry = "";
  // Synchronous unless the consumer asks to wait: a promise per line would cost more than the parse.
  const handleLine = (text: string): void | Promise<void> => {
    lineNo++;
    if (text.endsWith("\r")) text = text.slice(0, -1);
    if (parser === null) {
      if (text.trim() === "") return;
      if (format === "sniff") format = text.trimStart().startsWith("{") ? "ndjson" : "csv";
      parser = format === "csv" ? new CsvRowParser(path, text) : new NdjsonRowParser(path);
      onHeader({ columns: parser.columns(text), format });
      if (format === "csv") return;
    }
    if (text.length === 0 || (text.charCodeAt(0) <= 32 && text.trim() === "")) return;
    const row = parser.parse(text, rows, lineNo);
    rows++;
    return onRow(row);
  };
  try {
    for await (const chunk of stream) {
      const text = carry + (chunk as string);
      let start = 0;
      let nl = text.indexOf("\n", start);
      while (nl >= 0) {
        const wait = handleLine(text.slice(start, nl));
        if (wait !== undefined) await wait;
        start = nl + 1;
        nl = text.indexOf("\n", start);
      }
      carry = text.slice(start);
      if (carry.length > lineBytesMax) {
        throw new InputError(`${path}:${lineNo + 1}: line longer than ${lineBytesMax} bytes`);
      }
    }
    if (carry.length > 0) await handleLine(carry);
  } catch (error) {
    if (error instanceof InputError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== undefined) throw new InputError(`cannot read ${path}: ${(error as Error).message}`, { cause: error });
    throw error;
  }
  if (parser === null) throw new InputError(`${path}: no header or records`);
  return rows;
}

interface LineParser {
  columns(firstLine: string): string[];
  parse(text: string, row: number, line: number): TableRow;
}

class CsvRowParser implements LineParser, TableRow {
  row = 0;
  line = 0;
  private readonly index = new Map<string, number>();
  private cells: string[] = [];

  constructor(
    private readonly path: string,
    header: string,
  ) {
    splitCsvLine(header).forEach((name, i) => this.index.set(name.trim(), i));
  }

  columns(): string[] {
    return [...this.index.keys()];
  }

  parse(text: string, row: number, line: number): TableRow {
    this.cells = splitCsvLine(text);
    if (this.cells.length !== this.index.size) {
      throw new InputError(`${this.path}:${line}: ${this.cells.length} fields where the header has ${this.index.size}`);
    }
    this.row = row;
    this.line = line;
    return this;
  }

  get(column: string): CellValue {
    const i = this.index.get(column);
    return i === undefined ? undefined : this.cells[i];
  }

  has(column: string): boolean {
    return this.index.has(column);
  }
}

class NdjsonRowParser implements LineParser, TableRow {
  row = 0;
  line = 0;
  private record: Record<string, unknown> = {};

  constructor(private readonly path: string) {}

  columns(firstLine: string): string[] {
    try {
      const first = JSON.parse(firstLine) as unknown;
      return first !== null && typeof first === "object" ? Object.keys(first) : [];
    } catch {
      return [];
    }
  }

  parse(text: string, row: number, line: number): TableRow {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (cause) {
      throw new InputError(`${this.path}:${line}: not JSON (${(cause as Error).message})`, { cause });
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
      throw new InputError(`${this.path}:${line}: a record must be a JSON object`);
    }
    this.record = parsed as Record<string, unknown>;
    this.row = row;
    this.line = line;
    return this;
  }

  get(column: string): CellValue {
    const v = this.record[column];
    if (v === undefined || v === null || typeof v === "string" || typeof v === "number" || typeof v === "boolean") return v;
    return JSON.stringify(v);
  }

  has(column: string): boolean {
    return column in this.record;
  }
}

/** RFC 4180 fields: commas separate, double quotes enclose, "" inside quotes is one quote. */
export function splitCsvLine(line: string): string[] {
  if (line.indexOf('"') < 0) return line.split(",");
  const out: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"') {
        if (line[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      out.push(field);
      field = "";
    } else field += c;
  }
  out.push(field);
  return out;
}
