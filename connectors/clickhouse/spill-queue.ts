/**
 * A bounded first-in-first-out queue of batches on local disk: where the ClickHouse sink puts
 * batches while ClickHouse is away, so that an upstream source may acknowledge them.
 *
 * Goals
 * - Durable when `append` resolves: the file's bytes and its name are on disk (fsync of the file,
 *   rename, fsync of the directory), so a crash right after leaves the batch readable at start.
 * - Order kept across restarts: files are named `<sequence, 16 digits>.<table>.<format>`, and
 *   the sequence continues from the highest one found at open.
 * - Bounded: `bytesMax` over all files; an append that would pass it is refused with
 *   SpillFullError, and nothing is written.
 * - A file appears whole or not at all: it is written as `*.tmp` and renamed; `*.tmp` files found
 *   at open are the remains of a crash during an append (never acknowledged) and are removed.
 *   A file that cannot be read back is renamed `*.damaged` and left for a person ({@link setAside}).
 * Non-goals: concurrency between processes (one sink owns a directory); checksums against a
 * disk that corrupts fsync'd data.
 *
 * Three formats, told by the file's extension, so a queue holds them all and drains them in order:
 * - `.ndjson`: the batch's JSONEachRow lines, each ending in "\n" — what the insert sends;
 * - `.rowbinary`: "LWRB", the format version (UInt32, 1) and the row count n (UInt32), the n + 1
 *   row offsets (UInt32 each), then the RowBinary rows the insert sends; all little-endian. The
 *   offsets let a refused row be found and dead-lettered after a restart, as a line can be;
 * - `.native`: "LWNB", the format version (UInt32, 1), the row count and the block count (UInt32
 *   each), then the Native blocks the insert sends. Blocks say their own sizes, so reading one
 *   back walks it: a file whose blocks are not whole, or not of the table's declared columns (a
 *   linewatch with another declaration wrote it), is damaged and set aside, never sent.
 */
import { mkdirSync, readdirSync, statSync, unlinkSync } from "node:fs";
import { open, readFile, rename, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { ConfigError } from "../../engine/core/mod.js";
import { SpillFileError, SpillFullError } from "../errors.js";
import { type PackedRows, unpackRows } from "../files/mod.js";
import { nativeLayout } from "./native.js";
import { isClickHouseTable, TABLE_SCHEMAS } from "./schema.js";

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/** What a spill file holds: JSONEachRow lines, RowBinary rows with their offsets, or Native blocks. */
export type SpillFormat = "JSONEachRow" | "RowBinary" | "Native";

/**
 * A spill file's contents. Lines and RowBinary: `starts` are the rows' offsets. Native: `starts`
 * are the blocks' offsets, and `blockRows` their rows.
 */
export interface SpillRows extends PackedRows {
  blockRows?: Uint32Array;
}

export interface SpillEntry {
  /** Position in the queue; increases with every append, across restarts. */
  sequence: number;
  table: string;
  format: SpillFormat;
  /** Rows (lines) in the file; -1 for a file found at open until it is read. */
  rows: number;
  bytes: number;
  path: string;
}

export class SpillQueue {
  private readonly entries: SpillEntry[] = [];
  private totalBytes = 0;
  private nextSequence: number;
  /** Appends run one after the other so files become visible in sequence order. */
  private tail: Promise<unknown> = Promise.resolve();

  /** Opens (creating it if needed) the queue in `dir`, picking up the files a previous run left. */
  constructor(
    readonly dir: string,
    readonly bytesMax: number,
  ) {
    if (!Number.isSafeInteger(bytesMax) || bytesMax < 1)
      throw new ConfigError("spillBytesMax", `must be a positive integer, got ${bytesMax}`);
    mkdirSync(dir, { recursive: true });
    let highest = 0;
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (name.endsWith(".tmp")) {
        unlinkSync(path);
        continue;
      }
      const m = FILE_NAME.exec(name);
      if (m === null) continue;
      const sequence = Number(m[1]);
      const bytes = statSync(path).size;
      this.entries.push({ sequence, table: m[2], format: FORMAT_OF_EXTENSION[m[3]], rows: -1, bytes, path });
      this.totalBytes += bytes;
      highest = Math.max(highest, sequence);
    }
    this.nextSequence = highest + 1;
  }

  /** Files waiting. */
  get length(): number {
    return this.entries.length;
  }

  /** Bytes of all files waiting. */
  get bytes(): number {
    return this.totalBytes;
  }

  /** Whether a batch of `bytes` would fit now. */
  fits(bytes: number): boolean {
    return this.totalBytes + bytes <= this.bytesMax;
  }

  /** The oldest entry, or undefined when the queue is empty. */
  peek(): SpillEntry | undefined {
    return this.entries[0];
  }

  /**
   * Writes a batch as the newest entry; resolves when it is durable. Rejects with SpillFullError
   * (writing nothing) when it would pass `bytesMax`. A RowBinary batch comes with its row offsets
   * (`starts`, from 0 to the body's end), a Native one with its block offsets; JSONEachRow lines
   * need none.
   */
  append(table: string, body: Buffer, rows: number, format: SpillFormat = "JSONEachRow", starts?: Uint32Array): Promise<SpillEntry> {
    if (!TABLE_TOKEN.test(table)) throw new ConfigError("table", `not usable in a spill file name: ${JSON.stringify(table)}`);
    const chunks =
      format === "RowBinary"
        ? [rowBinaryHeader(body, rows, starts), body]
        : format === "Native"
          ? [nativeHeader(body, rows, starts), body]
          : [body];
    const size = chunks.reduce((n, c) => n + c.length, 0);
    // Reserve the bytes and the sequence now, so later appends see them and order is fixed.
    if (this.totalBytes + size > this.bytesMax) return Promise.reject(new SpillFullError(this.totalBytes, this.bytesMax, size));
    this.totalBytes += size;
    const sequence = this.nextSequence++;
    const path = join(this.dir, `${String(sequence).padStart(16, "0")}.${table}.${EXTENSION_OF_FORMAT[format]}`);
    const entry: SpillEntry = { sequence, table, format, rows, bytes: size, path };
    const done = this.tail.then(async () => {
      try {
        await writeDurably(path, chunks);
      } catch (error) {
        this.totalBytes -= size;
        throw error;
      }
      this.entries.push(entry);
      return entry;
    });
    this.tail = done.catch(() => undefined);
    return done;
  }

  /** The rows of an entry. */
  async read(entry: SpillEntry): Promise<SpillRows> {
    let data: Buffer;
    try {
      data = await readFile(entry.path);
    } catch (error) {
      throw new SpillFileError(entry.path, "cannot be read", { cause: error });
    }
    if (entry.format === "Native") {
      const blocks = unpackNative(data, entry.table);
      if (typeof blocks === "string") throw new SpillFileError(entry.path, blocks);
      entry.rows = (blocks.blockRows as Uint32Array).reduce((a, b) => a + b, 0);
      return blocks;
    }
    const rows = entry.format === "RowBinary" ? unpackRowBinary(data) : unpackRows(data);
    if (rows === null)
      throw new SpillFileError(
        entry.path,
        entry.format === "RowBinary"
          ? "is not a whole RowBinary spill file (not written by this queue)"
          : "does not end with a newline (not written by this queue)",
      );
    entry.rows = rows.starts.length - 1;
    return rows;
  }

  /** Removes the oldest entry (after its rows reached ClickHouse or the dead-letter output). */
  async shift(entry: SpillEntry): Promise<void> {
    if (this.entries[0] !== entry) throw new Error(`spill entry ${entry.sequence} is not the oldest`);
    await unlink(entry.path);
    this.entries.shift();
    this.totalBytes -= entry.bytes;
  }

  /**
   * Moves the oldest entry out of the queue without deleting it (renamed `*.damaged`, for a
   * person to look at) when it cannot be read. Returns the new path.
   */
  async setAside(entry: SpillEntry): Promise<string> {
    if (this.entries[0] !== entry) throw new Error(`spill entry ${entry.sequence} is not the oldest`);
    const path = `${entry.path}.damaged`;
    await rename(entry.path, path);
    this.entries.shift();
    this.totalBytes -= entry.bytes;
    return path;
  }
}

// ---------------------------------------------------------------------------------------------
// Internals
// ---------------------------------------------------------------------------------------------

const FILE_NAME = /^(\d{16})\.([A-Za-z0-9_]+)\.(ndjson|rowbinary|native)$/;
const EXTENSION_OF_FORMAT: { readonly [F in SpillFormat]: string } = { JSONEachRow: "ndjson", RowBinary: "rowbinary", Native: "native" };
const FORMAT_OF_EXTENSION: Readonly<Record<string, SpillFormat>> = { ndjson: "JSONEachRow", rowbinary: "RowBinary", native: "Native" };
const TABLE_TOKEN = /^[A-Za-z0-9_]+$/;
/** "LWRB": the first bytes of a RowBinary spill file. */
const ROW_BINARY_MAGIC = 0x4252574c;
const ROW_BINARY_VERSION = 1;
/** "LWNB": the first bytes of a Native spill file. */
const NATIVE_MAGIC = 0x424e574c;
const NATIVE_VERSION = 1;

/** A RowBinary spill file's header: magic, version, row count, the row offsets. */
function rowBinaryHeader(body: Buffer, rows: number, starts: Uint32Array | undefined): Buffer {
  if (starts === undefined || starts.length !== rows + 1 || starts[0] !== 0 || starts[rows] !== body.length)
    throw new RangeError(`a RowBinary spill of ${rows} rows needs ${rows + 1} row offsets from 0 to ${body.length}`);
  const header = Buffer.allocUnsafe(12 + 4 * (rows + 1));
  header.writeUInt32LE(ROW_BINARY_MAGIC, 0);
  header.writeUInt32LE(ROW_BINARY_VERSION, 4);
  header.writeUInt32LE(rows, 8);
  for (let i = 0; i <= rows; i++) header.writeUInt32LE(starts[i], 12 + 4 * i);
  return header;
}

/** The rows of a RowBinary spill file, or null when it is not one whole (offsets increasing, ending at the file's end). */
function unpackRowBinary(data: Buffer): PackedRows | null {
  if (data.length < 16 || data.readUInt32LE(0) !== ROW_BINARY_MAGIC || data.readUInt32LE(4) !== ROW_BINARY_VERSION) return null;
  const rows = data.readUInt32LE(8);
  const bodyAt = 12 + 4 * (rows + 1);
  if (bodyAt > data.length) return null;
  const starts = new Uint32Array(rows + 1);
  for (let i = 0; i <= rows; i++) {
    starts[i] = data.readUInt32LE(12 + 4 * i);
    if (i > 0 && starts[i] < starts[i - 1]) return null;
  }
  if (starts[0] !== 0 || starts[rows] !== data.length - bodyAt) return null;
  return { data: data.subarray(bodyAt), starts };
}

/** A Native spill file's header: magic, version, row count, block count (`starts`: the blocks' offsets, from 0 to the body's end). */
function nativeHeader(body: Buffer, rows: number, starts: Uint32Array | undefined): Buffer {
  if (starts === undefined || starts.length < 2 || starts[0] !== 0 || starts[starts.length - 1] !== body.length)
    throw new RangeError(`a Native spill needs its block offsets from 0 to ${body.length}`);
  const header = Buffer.allocUnsafe(16);
  header.writeUInt32LE(NATIVE_MAGIC, 0);
  header.writeUInt32LE(NATIVE_VERSION, 4);
  header.writeUInt32LE(rows, 8);
  header.writeUInt32LE(starts.length - 1, 12);
  return header;
}

/** The blocks of a Native spill file, walked and checked against the table's declared columns; what is wrong otherwise. */
function unpackNative(data: Buffer, table: string): SpillRows | string {
  if (data.length < 16 || data.readUInt32LE(0) !== NATIVE_MAGIC || data.readUInt32LE(4) !== NATIVE_VERSION)
    return "is not a Native spill file (not written by this queue)";
  if (!isClickHouseTable(table)) return `names no linewatch table (${table})`;
  const body = data.subarray(16);
  const layout = nativeLayout(body, TABLE_SCHEMAS[table].columns);
  if (typeof layout === "string") return `does not hold whole Native blocks of ${table}'s columns: ${layout}`;
  if (layout.rows !== data.readUInt32LE(8) || layout.blockRows.length !== data.readUInt32LE(12))
    return `holds ${layout.rows} rows in ${layout.blockRows.length} blocks, not the ${data.readUInt32LE(8)} in ${data.readUInt32LE(12)} its header says`;
  return { data: body, starts: layout.starts, blockRows: layout.blockRows };
}

async function writeDurably(path: string, chunks: readonly Buffer[]): Promise<void> {
  const tmp = `${path}.tmp`;
  const handle = await open(tmp, "w");
  try {
    // Each writeFile writes all of its chunk from where the last one ended.
    for (const chunk of chunks) await handle.writeFile(chunk);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await unlink(tmp).catch(() => undefined);
    throw error;
  }
  await handle.close();
  await rename(tmp, path);
  // fsync of the directory makes the rename itself durable (POSIX leaves that to the directory).
  const dir = await open(dirname(path), "r");
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
