/**
 * What an analysis provides besides its kernel: how one output row reads as JSON, and what it
 * does with rows as they complete (events, counters). Replay and the run job merge the members
 * of every analysis of a record into one line.
 */
import type { OutputChunk, StreamEngine, StreamKernel } from "../engine/core/mod.js";
import type { TableRow } from "../connectors/files/mod.js";

/** One record's context for `observe`: reused from row to row, so read it during the call only. */
export interface RowContext {
  /** Engine key id and name of the record. */
  keyId: number;
  key: string;
  /** Source position (file row, stream sequence) and event time. */
  position: number;
  time: number;
  value: number;
}

/**
 * What an analysis reads from a source row besides time and value: fixed-width bytes per record
 * (e.g. a serial number), which the engine carries to the kernel and back to `rowJson`.
 */
export interface RecordInput {
  /** Bytes per record this analysis's encoder writes. */
  payloadBytes: number;
  /** Whether records need a numeric value column (false: the value is not read, written as null). */
  needsValue: boolean;
  /** Default key and time columns for this kind of record (replay's --key / --time override them). */
  keyColumns?: readonly string[];
  timeColumn?: string;
  /** Writes a source row's fields into `payload` at `offset`; returns why the row is rejected, or null. */
  encode(row: TableRow, payload: Uint8Array, offset: number): string | null;
}

/**
 * How another thread writes an analysis's {@link RecordAnalysis.rowJson} as bytes: data only, so
 * it crosses to a worker, where `rowTextWriter` (operators/row-text.ts) builds the writer.
 */
export type RowTextSpec = { name: "rolling"; minCount: number };

/** An analysis's rowJson as UTF-8 bytes: `write` gives exactly rowJson's text (no payload). */
export interface RowTextWriter {
  /** f64 per output row. */
  readonly fields: number;
  /** Most bytes one `write` takes. */
  readonly bytesMax: number;
  readonly nullJson: string;
  /** rowJson(rows[offset … offset + fields)) into `out` at `at`; returns the end. */
  write(out: Uint8Array, at: number, rows: Float64Array, offset: number): number;
}

export interface RecordAnalysis {
  readonly name: string;
  readonly kernel: StreamKernel;
  /** Extra input beyond time and value; at most one analysis of a run may have one. */
  readonly input?: RecordInput;
  /**
   * JSON members of one output row, without braces or a leading comma; `payload` is the
   * record's payload bytes when the run carries any.
   */
  rowJson(row: Float64Array, payload?: Uint8Array): string;
  /**
   * The same members as values, assigned to `into`: what `JSON.parse` of `rowJson`'s members
   * gives (statistics rounded as the text is, see {@link statisticValue}), without the text. The
   * ClickHouse rows and WebSocket messages are built from it; without it they parse `rowJson`.
   */
  rowFields?(row: Float64Array, into: Record<string, unknown>): void;
  /**
   * The name of each f64 of an output row, in row order (the score frames' column names, unique
   * across a run's analyses); absent: the analysis's rows are not put in frames.
   */
  readonly outColumns?: readonly string[];
  /**
   * The version of the model that computed this output row (the audit record's `model_version`),
   * or null when no model did (not yet scored); absent: the analysis has no model.
   */
  modelVersion?(row: Float64Array): string | null;
  /** The members written when a record got no output (late, rejected). */
  readonly nullJson: string;
  /** Its rowJson as data a worker can rebuild a byte writer from; absent: rowJson only. */
  readonly rowText?: RowTextSpec;
  /** Sees each output row as it completes, in per-key order (alerts, counters). */
  observe?(row: Float64Array, context: RowContext, payload?: Uint8Array): void;
  /**
   * What `observe` does for every row of a finished chunk, on `chunk.outs[k]` in place (k: this
   * analysis's index), without a call or a view per row: an analysis with events from its kernel
   * visits the listed rows only. Same effects as `observe` on each row in order; absent: callers
   * call `observe` row by row. `keyName` gives an engine key id's name. (No payload: an analysis
   * that reads it observes row by row.)
   */
  observeChunk?(chunk: OutputChunk, k: number, keyName: (keyId: number) => string): void;
  /**
   * What the analysis keeps per key outside the kernel (SPC: the open alert episodes), for the
   * keys of a checkpoint, as JSON-able data; `keyIdOf` gives an engine key id (−1: unknown).
   */
  saveState?(keys: readonly string[], keyIdOf: (key: string) => number): unknown;
  /**
   * Restores what {@link saveState} gave, after the engine restored the keys' kernel state; may
   * return what it restored for the run to know (SPC: the open episodes), else nothing.
   */
  restoreState?(state: unknown, keyIdOf: (key: string) => number): unknown;
  /** Warnings for the end of a run (e.g. truncated windows); empty when all is well. */
  notes?(): string[];
  /** Called once the engine runs (e.g. to watch a model file and swap models into it). */
  start?(engine: StreamEngine): void;
  /** Called when the run ends. */
  stop?(): void;
}

/**
 * Record `i` of a finished chunk through every analysis, in order: sets `rows[k]` to analysis k's
 * output row, lets each observe it (with the shared `ctx`, filled once here), and returns their
 * merged JSON members (",a,b", the form the scores lines take) when `wantMembers`, else "".
 */
export function observeRecord(
  analyses: readonly RecordAnalysis[],
  chunk: OutputChunk,
  i: number,
  key: string,
  ctx: RowContext,
  rows: Float64Array[],
  wantMembers: boolean,
  payload?: Uint8Array,
): string {
  ctx.keyId = chunk.keyIds[i];
  ctx.key = key;
  ctx.position = chunk.positions[i];
  ctx.time = chunk.times[i];
  ctx.value = chunk.values[i];
  let members = "";
  for (let k = 0; k < analyses.length; k++) {
    const f = chunk.outFields[k];
    rows[k] = chunk.outs[k].subarray(i * f, (i + 1) * f);
    analyses[k].observe?.(rows[k], ctx, payload);
    if (wantMembers) members += `,${analyses[k].rowJson(rows[k])}`;
  }
  return members;
}

/**
 * Every row of a finished chunk through the analyses' observers, as `observeRecord` on each row
 * without its members: by `observeChunk` where an analysis has one, else row by row in order. The
 * analyses are independent of each other's observers (each reads and writes its own rows only),
 * so each may take the whole chunk in turn.
 */
export function observeChunkRows(
  analyses: readonly RecordAnalysis[],
  chunk: OutputChunk,
  keyName: (keyId: number) => string,
  ctx: RowContext,
): void {
  for (let k = 0; k < analyses.length; k++) {
    const a = analyses[k];
    if (a.observeChunk !== undefined) a.observeChunk(chunk, k, keyName);
    else if (a.observe !== undefined) {
      const f = chunk.outFields[k];
      for (let i = 0; i < chunk.length; i++) {
        ctx.keyId = chunk.keyIds[i];
        ctx.key = keyName(ctx.keyId);
        ctx.position = chunk.positions[i];
        ctx.time = chunk.times[i];
        ctx.value = chunk.values[i];
        a.observe(chunk.outs[k].subarray(i * f, (i + 1) * f), ctx);
      }
    }
  }
}

/**
 * Every analysis's members of a record as values (their `rowFields`), or null when an analysis
 * has none (then a consumer parses the JSON members instead). `rows` as `observeRecord` set them.
 */
export function recordFields(analyses: readonly RecordAnalysis[], rows: readonly Float64Array[]): Record<string, unknown> | null {
  const into: Record<string, unknown> = {};
  for (let k = 0; k < analyses.length; k++) {
    const a = analyses[k];
    if (a.rowFields === undefined) return null;
    a.rowFields(rows[k], into);
  }
  return into;
}

/** The number a statistic's text (formatStatistic: 15 significant digits) reads back as; null when not finite. */
export function statisticValue(v: number): number | null {
  return Number.isFinite(v) ? Number(v.toPrecision(15)) : null;
}
