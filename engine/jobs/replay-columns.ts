/**
 * Replay's columns pipeline (see ReplayOptions.pipeline): a CSV file's bytes → record batches →
 * the engine, its kernels on this thread → output columns ({@link ReplayBlocks}) → NDJSON text on
 * `workers` text threads ({@link ReplayTextPool}). The main thread makes no string or object per row: the CSV scanner
 * gives each line's field offsets, keys are found by their bytes ({@link ByteKeyTable}), times
 * and values are parsed from bytes, the timestamp's JSON is the cell's bytes, and the text of
 * every number is made by the text workers. A cell the byte parsers cannot decide, and a line
 * the scanner hands over as text, take the rows pipeline's own functions (appendRow,
 * parseEventTime, parseReading, timestampJson), so every line is the one the rows pipeline writes.
 */
import {
  allocateBatch,
  decimalFromBytes,
  epochDigitsFromBytes,
  isoTimeFromBytes,
  type OutputChunk,
  parseEventTime,
  parseReading,
  type RecordBatch,
  StreamEngine,
} from "../core/mod.js";
import { type CsvBlock, type CsvHeader, scanCsv, type TableRow } from "../../connectors/files/mod.js";
import { ByteKeyTable, hashBytes } from "../../connectors/wire/mod.js";
import { type RecordAnalysis, type RowContext, rowTextSpecs, type RowTextSpec } from "../../operators/mod.js";
import type { ReplayOptions, ReplaySummary } from "./replay.js";
import { ReplayBlocks, VALUE_TEXT_BYTES } from "./replay-blocks.js";
import { ReplayTextPool } from "./replay-text.js";
import {
  appendRow,
  type Columns,
  emptySummary,
  finishSummary,
  replayEngineOptions,
  resolveColumns,
  type RowTarget,
  singleKeyOf,
  startProgress,
  timestampJson,
} from "./replay-table.js";

/** Rows of a block for the text workers: finished rows are sent once there are this many (the last block may have fewer). */
const BLOCK_ROWS = 16_384;
/**
 * Rows the ring starts with: room for the blocks in flight (3 per text thread) and one being
 * gathered, the engine's group buffers (two per group) and the batch, so that it does not grow
 * (a new shared array costs about a millisecond a megabyte, and the rows are copied).
 */
function ringRows(options: ReplayOptions): number {
  const engine = replayEngineOptions(options, 0);
  return 2 ** Math.ceil(Math.log2(8 * BLOCK_ROWS + (2 * engine.groups + 1) * engine.batchRecordsMax));
}

export async function runColumnReplay(options: ReplayOptions): Promise<ReplaySummary> {
  const started = performance.now();
  const analyses = options.analyses;
  const summary = emptySummary();
  const blocks = new ReplayBlocks(
    analyses.map((a) => a.kernel.outFields),
    ringRows(options),
  );
  const keyNames: string[] = [];
  const engine = columnEngine(options, blocks, summary, keyNames);
  for (const a of analyses) a.start?.(engine);
  const internKey = (name: string): number => {
    const id = engine.internKey(name);
    if (keyNames[id] === undefined) keyNames[id] = name;
    return id;
  };
  const specs = rowTextSpecs(analyses) as RowTextSpec[];
  const text = new ReplayTextPool(specs, options.workers, options.output, (rows) => blocks.release(rows));
  /** Sends the finished rows in blocks of BLOCK_ROWS; with `all`, the rest too. */
  const send = async (all: boolean): Promise<void> => {
    for (let n = blocks.finished(); n >= BLOCK_ROWS || (all && n > 0); n = blocks.finished()) {
      await text.submit(blocks.take(Math.min(n, BLOCK_ROWS)), keyNames);
    }
  };
  const batch = allocateBatch(options.batchRecordsMax);
  let lines: CsvLines | null = null;
  let rowsRead = 0;
  const progress = startProgress(options.progress, () => rowsRead);
  try {
    summary.rows = await scanCsv(
      options.input,
      (header) => {
        lines = new CsvLines(header, options, { internKey, blocks, summary, batch });
      },
      async (block: CsvBlock) => {
        const reader = lines as CsvLines;
        for (let j = 0; j < block.length; j++) {
          reader.append(block, j);
          if (batch.length < options.batchRecordsMax) continue;
          // A full batch: to the engine (waiting while the pool is busy), then the finished rows to the text workers.
          await engine.push(batch);
          batch.length = 0;
          if (blocks.finished() >= BLOCK_ROWS) await send(false);
        }
        rowsRead = block.firstRow + block.length;
      },
    );
    if (batch.length > 0) await engine.push(batch);
    await engine.flush(true);
    await send(true);
    await text.finish();
  } finally {
    progress.stop();
    for (const a of analyses) a.stop?.();
    await engine.close();
    await text.close();
  }
  return finishSummary(summary, engine, analyses, started);
}

/** The engine of the columns pipeline: finished chunks into the blocks (the analyses observe each row first); late records as late rows. */
function columnEngine(options: ReplayOptions, blocks: ReplayBlocks, summary: ReplaySummary, keyNames: readonly string[]): StreamEngine {
  const observers = options.analyses.map((a, k) => ({ a, k })).filter(({ a }) => a.observe !== undefined);
  const rows = options.analyses.map((a) => new Float64Array(a.kernel.outFields));
  const ctx: RowContext = { keyId: 0, key: "", position: 0, time: 0, value: 0 };
  // The kernels run here, between batches: the rolling kernel takes about 0.05 µs a row, less than
  // waking a pool worker for each task cost this thread (postTask and postMessage, 11 % of its
  // samples; 0.15–0.2 µs a row less CPU measured inline). The worker threads make the text instead.
  const inline = { ...replayEngineOptions(options, 0), workers: 0 };
  return new StreamEngine(inline, {
    onOutput(chunk: OutputChunk) {
      if (observers.length > 0) observeChunk(chunk, observers, rows, ctx, keyNames);
      blocks.complete(chunk);
    },
    onLate(record) {
      summary.late++;
      blocks.late(record.position, record.value);
    },
  });
}

/** What observeRecord does for each record of a chunk, with each row copied into `rows[k]` instead of a view made per row. */
function observeChunk(
  chunk: OutputChunk,
  observers: ReadonlyArray<{ a: RecordAnalysis; k: number }>,
  rows: Float64Array[],
  ctx: RowContext,
  keyNames: readonly string[],
): void {
  for (let i = 0; i < chunk.length; i++) {
    ctx.keyId = chunk.keyIds[i];
    ctx.key = keyNames[ctx.keyId];
    ctx.position = chunk.positions[i];
    ctx.time = chunk.times[i];
    ctx.value = chunk.values[i];
    for (const { a, k } of observers) {
      const f = chunk.outFields[k];
      const row = rows[k];
      const from = chunk.outs[k];
      for (let j = 0; j < f; j++) row[j] = from[i * f + j];
      a.observe?.(row, ctx);
    }
  }
}

/**
 * CSV lines into the batch and the blocks: a plain line from its bytes, a text line (and any
 * cell the byte parsers cannot decide) through the rows pipeline's functions.
 */
class CsvLines {
  private readonly columns: Columns;
  private readonly index: ReadonlyMap<string, number>;
  /** Field of each key column, of the time and of the value. */
  private readonly keyFields: number[];
  private readonly timeField: number;
  private readonly valueField: number;
  /** Whether the key columns are adjacent fields in order: then their bytes, commas included, identify the key. */
  private readonly keyRun: boolean;
  private readonly keys: ByteKeyTable;
  /** Key id of each entry of `keys`. */
  private keyOfEntry = new Int32Array(64);
  private singleKeyId = -1;
  private readonly scratch = new Uint8Array(4096);
  private readonly batch: RecordBatch;
  /** Whether times are epoch ms (ISO-8601 allowed), not plain numbers. */
  private readonly ms: boolean;

  private readonly target: RowTarget;
  private readonly blocks: ReplayBlocks;

  constructor(
    header: CsvHeader,
    o: ReplayOptions,
    to: { internKey: (name: string) => number; blocks: ReplayBlocks; summary: ReplaySummary; batch: RecordBatch },
  ) {
    const singleKey = singleKeyOf(o.input);
    const { internKey, blocks, summary, batch } = to;
    this.target = { options: o, input: undefined, payloadBytes: 0, needsValue: true, singleKey, internKey, lines: blocks, summary, batch };
    this.blocks = to.blocks;
    this.columns = resolveColumns({ columns: header.columns, format: "csv" }, o, undefined, true);
    this.index = header.index;
    const field = (name: string) => header.index.get(name) as number;
    this.keyFields = this.columns.key.map(field);
    this.timeField = field(this.columns.time);
    this.valueField = field(this.columns.value);
    this.keyRun = this.keyFields.every((f, i) => i === 0 || f === this.keyFields[i - 1] + 1);
    this.keys = new ByteKeyTable(o.keysMax);
    this.batch = to.batch;
    this.ms = o.timeUnit === "ms";
  }

  /** Line j of the block into the batch (unless rejected: then its row says why, and it is counted). */
  append(b: CsvBlock, j: number): void {
    const at = j * (b.fields + 1);
    const cells = b.cells;
    const row = b.firstRow + j;
    if (cells[at] < 0) {
      appendRow(this.textRow(b, j), this.columns, this.target);
      return;
    }
    const bytes = b.bytes;
    const keyId = this.keyId(bytes, cells, at);
    // Time and value go straight into the batch's next slot; it counts only once both are read.
    const batch = this.batch;
    const n = batch.length;
    const ts = cells[at + this.timeField];
    const te = cells[at + this.timeField + 1] - 1;
    let error: string | null = null;
    if (epochDigitsFromBytes(bytes, ts, te, batch.times, n)) this.blocks.addStamp(row, keyId, bytes, ts, te, false);
    else if (this.ms && isoTimeFromBytes(bytes, ts, te, batch.times, n)) this.blocks.addStamp(row, keyId, bytes, ts, te, true);
    else error = this.timeOfText(row, keyId, bytes.toString("latin1", ts, te));
    const vs = cells[at + this.valueField];
    const ve = cells[at + this.valueField + 1] - 1;
    if (decimalFromBytes(bytes, vs, ve, batch.values, n)) {
      if (ve - vs <= VALUE_TEXT_BYTES) this.blocks.addValueText(bytes, vs, ve);
    } else {
      const value = parseReading(bytes.toString("latin1", vs, ve));
      if (typeof value === "string") error ??= value;
      else batch.values[n] = value;
    }
    if (error !== null) {
      this.reject(row, b.lines[j], error);
      return;
    }
    batch.keyIds[n] = keyId;
    batch.positions[n] = row;
    batch.length = n + 1;
  }

  /** A time cell the byte parsers left undecided: its row registered with the text's timestamp; the time into the batch, or why not. */
  private timeOfText(row: number, keyId: number, cell: string): string | null {
    this.blocks.add(row, keyId, timestampJson(cell));
    const time = parseEventTime(cell, this.target.options.timeUnit);
    if (typeof time === "string") return time;
    this.batch.times[this.batch.length] = time;
    return null;
  }

  private reject(row: number, line: number, error: string): void {
    const t = this.target;
    if (t.summary.rejected++ === 0) t.summary.firstRejection = `${t.options.input}:${line}: ${error}`;
    this.blocks.reject(row, error);
  }

  /** The key id of a plain line, found by the bytes of its key cells. */
  private keyId(bytes: Buffer, cells: Int32Array, at: number): number {
    const fields = this.keyFields;
    if (fields.length === 0) {
      if (this.singleKeyId < 0) this.singleKeyId = this.target.internKey(this.target.singleKey);
      return this.singleKeyId;
    }
    let from: Uint8Array = bytes;
    let start = cells[at + fields[0]];
    let end = cells[at + fields[fields.length - 1] + 1] - 1;
    if (!this.keyRun) {
      // Key cells apart or out of order: their bytes side by side, a comma between (no plain cell holds one).
      from = this.scratch;
      start = 0;
      end = 0;
      for (let k = 0; k < fields.length; k++) {
        const s = cells[at + fields[k]];
        const e = cells[at + fields[k] + 1] - 1;
        if (end + e - s + 1 > from.length) return this.target.internKey(this.keyName(bytes, cells, at));
        if (k > 0) from[end++] = 44;
        for (let i = s; i < e; i++) from[end++] = bytes[i];
      }
    }
    const hash = hashBytes(from, start, end);
    const e = this.keys.find(from, start, end, hash);
    if (e >= 0) return this.keyOfEntry[e];
    const id = this.target.internKey(this.keyName(bytes, cells, at));
    const added = this.keys.insert(from, start, end, hash);
    if (added >= 0) {
      if (added >= this.keyOfEntry.length) {
        const grown = new Int32Array(2 * this.keyOfEntry.length);
        grown.set(this.keyOfEntry);
        this.keyOfEntry = grown;
      }
      this.keyOfEntry[added] = id;
    }
    return id;
  }

  /** The key as appendRow names it: the key cells joined by "/". */
  private keyName(bytes: Buffer, cells: Int32Array, at: number): string {
    return this.keyFields.map((f) => bytes.toString("latin1", cells[at + f], cells[at + f + 1] - 1)).join("/");
  }

  /** A text line as the row readTable would hand out. */
  private textRow(b: CsvBlock, j: number): TableRow {
    const cells = b.text.get(j) as string[];
    const index = this.index;
    return {
      row: b.firstRow + j,
      line: b.lines[j],
      get: (column: string) => {
        const i = index.get(column);
        return i === undefined ? undefined : cells[i];
      },
      has: (column: string) => index.has(column),
    };
  }
}
