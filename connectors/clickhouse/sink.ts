/**
 * ClickHouseSink: rows of the linewatch tables (connectors/clickhouse/schema.ts) into ClickHouse,
 * batched, retried, spilled to disk while ClickHouse is away, and acknowledged only when durable.
 *
 * Goals
 * - `write(table, rows)` resolves when the rows are durable: inserted, or in the local spill
 *   (fsync'd), or handed to the dead-letter callback. A JetStream source acks after it.
 * - Batches by rows (`batchRowsMax`) and time (`flushIntervalMs`), one table and one format per
 *   batch: JSONEachRow lines encoded here from row objects (`write`), or RowBinary rows or Native
 *   blocks encoded elsewhere, e.g. on a worker thread (`insertEncoded`, reading-columns.ts,
 *   native-columns.ts); 18.16 reads all three. A RowBinary INSERT names its columns, so a table
 *   missing one refuses it by name. Native blocks are checked against the table's declaration,
 *   and the server's table against it before the table's first Native insert (native.ts says why:
 *   18.16 drops a column it lacks without a word, and crashes on a plain column for a Nullable
 *   one); a table that differs gets the blocks' rows as RowBinary, with RowBinary's refusals.
 * - Retries what may pass (network, timeouts, overload: see ClickHouseFailureKind) with jittered
 *   exponential backoff; gives up on what cannot (the write rejects with ClickHouseError).
 * - ClickHouse away: batches go to a bounded spill queue on disk (SpillQueue), drained in order,
 *   before any newer batch, once ClickHouse answers. Past `spillBytesMax` the batch is refused:
 *   its writes reject with SinkUnavailableError and `rowsRefused` counts it; the caller decides
 *   (not acking lets JetStream redeliver later, which is backpressure).
 * - A batch refused for one bad row is split (at the row the server names, else in halves) until
 *   the row is alone; once the rest is inserted it goes to `onDeadLetter` with the server's
 *   message. Native blocks are not split: a Native batch refused for a row is sent again as its
 *   rows in RowBinary (nativeToRowBinary, the same values), and split as RowBinary from there. Splitting is bounded (`splitRequestsMax`): a table that refuses every row (a column
 *   missing) rejects the write with the server's error rather than dead-letter the batch.
 * - A spilled batch is never dropped: a failure while draining, even a permanent one (access
 *   denied…), keeps the file and backs off; only its bad rows leave it, as dead letters.
 * - Bounded memory: rows not yet durable are at most `pendingRowsMax`; a write past that rejects
 *   with CapacityError.
 * Non-goals: exactly-once (the tables are idempotent instead: a batch inserted twice collapses
 * under FINAL, see clickhouse-schema.ts), parallel inserts (one request at a time keeps order;
 * ~100k rows/s of ml_sensor_data measured on 2 loaded cores, with the server on the same cores).
 *
 * Order. Batches are sealed in write order; spilled files are always older than batches still
 * in memory, so "spill first, then memory" is write order. While the spill is not empty, new
 * batches go to the spill too (durable at once, in order) and are inserted from there.
 */
import { createClient, ClickHouseLogLevel, type ClickHouseClient } from "@clickhouse/client";
import { Readable } from "node:stream";
import { finished } from "node:stream/promises";
import { performance } from "node:perf_hooks";
import { CapacityError, ConfigError } from "../../engine/core/mod.js";
import { backoffMs, classifyFailure, type ClickHouseFailure } from "./failure.js";
import { sqlString } from "./reader.js";
import {
  CLICKHOUSE_TABLES,
  createSchema,
  decodeRowBinary,
  DEFAULT_CLICKHOUSE_DATABASE,
  encodeRow,
  insertColumnList,
  isClickHouseTable,
  isDatabaseName,
  type ClickHouseRows,
  type ClickHouseTable,
  TABLE_SCHEMAS,
} from "./schema.js";
import { EncodedRowBuffer, encodedRowsProblem, NativeBlockBuffer } from "./encoded-row-buffer.js";
import { isNativeBlock, type NativeBlock, type NativeLayout, nativeLayout, nativeToRowBinary, sliceNativeBlock } from "./native.js";
import type { RejectedRow } from "./reading-columns.js";
import { columnTypeName, type EncodedRows } from "./row-binary.js";
import { ClickHouseError, EncodeError, SinkUnavailableError, SpillFileError, SpillFullError } from "../errors.js";
import { LatencyWindow, type LatencySummary } from "./latency-window.js";
import { LineBuffer, rowText, type PackedRows } from "../files/mod.js";
import { SpillQueue, type SpillEntry, type SpillFormat, type SpillRows } from "./spill-queue.js";

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/**
 * Rows per insert at most; `flushIntervalMs` bounds an insert by time, so below 100 000 rows/s of a
 * table the time decides. Each insert makes a part (a file per column and null map) that merges
 * rewrite later, so the server's CPU goes with the number of inserts more than with their rows:
 * at 30 000 records/s (both tables) on 2 cores, 18.16 spent 18–21 CPU s per million records with
 * inserts of ≤ 10 000 rows, half of it merging, and 4–6 with ≤ 100 000 (`npm run bench --
 * clickhouse`, "paced"; docs/clickhouse.md).
 */
export const DEFAULT_CLICKHOUSE_BATCH_ROWS_MAX = 100_000;
export const DEFAULT_CLICKHOUSE_FLUSH_INTERVAL_MS = 1_000;
export const DEFAULT_CLICKHOUSE_PENDING_ROWS_MAX = 500_000;
export const DEFAULT_CLICKHOUSE_SPILL_BYTES_MAX = 1024 * 1024 * 1024;
export const DEFAULT_CLICKHOUSE_INSERT_ATTEMPTS_MAX = 3;
export const DEFAULT_CLICKHOUSE_BACKOFF_BASE_MS = 100;
export const DEFAULT_CLICKHOUSE_BACKOFF_MAX_MS = 5_000;
export const DEFAULT_CLICKHOUSE_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_CLICKHOUSE_LATENCY_WINDOW = 1024;
export const DEFAULT_CLICKHOUSE_SPLIT_REQUESTS_MAX = 200;
/**
 * An insert (JSONEachRow or RowBinary) is parsed into blocks of `max_insert_block_size` rows (1,048,576 by
 * default); a batch no larger than one block is inserted whole or not at all.
 */
export const CLICKHOUSE_BATCH_ROWS_LIMIT = 1_000_000;

export interface ClickHouseSinkOptions {
  /** HTTP interface, e.g. `http://127.0.0.1:8123`. */
  url: string;
  username?: string;
  password?: string;
  /** Database of the tables (created when missing, unless `default`). */
  database?: string;
  /** Create the tables when missing, before the first insert (default true). */
  createTables?: boolean;
  /** Rows per insert (default {@link DEFAULT_CLICKHOUSE_BATCH_ROWS_MAX}, at most {@link CLICKHOUSE_BATCH_ROWS_LIMIT}). */
  batchRowsMax?: number;
  /** A batch is sent at most this long after its first row (default {@link DEFAULT_CLICKHOUSE_FLUSH_INTERVAL_MS}). */
  flushIntervalMs?: number;
  /** Rows in memory not yet durable; a write past it rejects with CapacityError (default {@link DEFAULT_CLICKHOUSE_PENDING_ROWS_MAX}). */
  pendingRowsMax?: number;
  /** Directory of the spill queue (created if needed; one sink per directory). */
  spillDir: string;
  /** Bytes the spill may hold (default {@link DEFAULT_CLICKHOUSE_SPILL_BYTES_MAX}). */
  spillBytesMax?: number;
  /** Attempts at a new batch before it is spilled (default {@link DEFAULT_CLICKHOUSE_INSERT_ATTEMPTS_MAX}). */
  insertAttemptsMax?: number;
  /** First retry delay (default {@link DEFAULT_CLICKHOUSE_BACKOFF_BASE_MS}); doubles per failure. */
  backoffBaseMs?: number;
  /** Longest retry delay (default {@link DEFAULT_CLICKHOUSE_BACKOFF_MAX_MS}): how soon after ClickHouse returns the spill drains. */
  backoffMaxMs?: number;
  /** Per request (default {@link DEFAULT_CLICKHOUSE_REQUEST_TIMEOUT_MS}). */
  requestTimeoutMs?: number;
  /** gzip request bodies (default false: on a LAN, CPU costs more than bytes). */
  compression?: boolean;
  /** Insert latencies kept for the percentiles (default {@link DEFAULT_CLICKHOUSE_LATENCY_WINDOW}). */
  latencyWindowSize?: number;
  /**
   * Requests one batch may spend splitting around bad rows (default
   * {@link DEFAULT_CLICKHOUSE_SPLIT_REQUESTS_MAX}: a few bad rows cost 3 requests each with the
   * server's row hint, ~2·log2(rows) without). Past it the rows are not all bad, the table is
   * (a column missing or of another type): the write rejects with the server's ClickHouseError
   * instead of dead-lettering the whole batch one request per row.
   */
  splitRequestsMax?: number;
  /** Receives each row ClickHouse refused (or the sink's own checks did). Without it, dead letters are only counted. */
  onDeadLetter?: (letter: ClickHouseDeadLetter) => void;
  /** Told when ClickHouse stops or starts answering (for a log line). */
  onAvailabilityChange?: (available: boolean, error: Error | null) => void;
  /** Told of each column the sink added to a table an earlier version made (schema.ts ADDED_COLUMNS; for a log line). */
  onColumnAdded?: (statement: string) => void;
}

/** A row that cannot be inserted. */
export interface ClickHouseDeadLetter {
  table: ClickHouseTable;
  /**
   * The row as JSON: the JSONEachRow line ClickHouse refused, or a refused RowBinary row read
   * back into that shape (DateTime in seconds); for a row refused before sending, the row as
   * JSON (an encoder's RejectedRow line for RowBinary).
   */
  line: string;
  /** ClickHouseError with the server's message, or EncodeError when the row broke the table's rules. */
  error: ClickHouseError | EncodeError;
}

export interface ClickHouseSinkMetrics {
  /** False from a failed request until the next successful one. */
  available: boolean;
  /** Rows taken by write(). */
  rowsWritten: number;
  /** Rows in ClickHouse (from memory or from the spill). */
  rowsInserted: number;
  /** Rows put in the spill. */
  rowsSpilled: number;
  /** Rows inserted from the spill (part of rowsInserted). */
  rowsDrained: number;
  rowsDeadLettered: number;
  /** Rows whose writes rejected with SinkUnavailableError (spill full, closed). */
  rowsRefused: number;
  /** Rows whose writes rejected with a permanent ClickHouseError. */
  rowsFailed: number;
  /** Rows in memory not yet durable. */
  rowsPending: number;
  rowsInsertedByTable: Record<ClickHouseTable, number>;
  /** Successful insert requests. */
  batches: number;
  batchesSpilled: number;
  /** Batches (or parts) split to find a bad row. */
  batchSplits: number;
  /** Native batches sent as their rows in RowBinary: the server's table differs from the declaration, or refused a row. */
  nativeAsRowBinary: number;
  /** Failed requests followed by another attempt. */
  retries: number;
  /** Over the last `latencyWindowSize` successful inserts, ms. */
  insertLatencyMs: LatencySummary;
  spillBytes: number;
  spillFiles: number;
  spillBytesMax: number;
  /** Spill files that could not be read back, renamed `*.damaged` in the spill directory. */
  spillFilesDamaged: number;
  /** Times `onDeadLetter` threw (the row still counts as dead-lettered; see lastError). */
  deadLetterCallbackErrors: number;
  /** The last failure, as `Name: message`. */
  lastError: string | null;
}

export class ClickHouseSink {
  readonly options: Readonly<ResolvedOptions>;
  private readonly client: ClickHouseClient;
  private readonly spill: SpillQueue;
  private readonly latency: LatencyWindow;
  private readonly open = new Map<ClickHouseTable, OpenBatch>();
  /** Bytes of the last batch per table and format (`table/format`), to size the next one. */
  private readonly lastBatchBytes = new Map<string, number>();
  /**
   * Native batches' buffers once their rows are inserted, per table (at most two: the batch
   * being inserted when the next opens is not free yet), for the table's next batches: fresh
   * memory costs a page fault per 4 KiB on first write — with growth copies, a fifth of the main
   * thread's CPU at 50 000 records/s (a second's rows of ml_scores are ~20 MB).
   */
  private readonly spareNative = new Map<ClickHouseTable, Buffer[]>();
  /** Sealed batches in write order, not yet inserted or spilled. */
  private readonly queue: Batch[] = [];
  private readonly counters = newCounters();
  private pendingRows = 0;
  private available = true;
  private failures = 0;
  private retryAt = 0;
  private schemaReady = false;
  /** Per table, whether the server's columns are the declaration's (Native blocks may go as they are); asked again after a failed Native insert. */
  private readonly nativeTables = new Map<ClickHouseTable, boolean>();
  private broken: Error | null = null;
  private closing = false;
  private closed = false;
  private pumping: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  /** The spill's oldest entry, read, with the rows already dead-lettered from it. */
  private spillHead: Batch | null = null;
  /** Callers of `room` waiting for the rows in memory to fall below their mark. */
  private roomWaiters: Array<{ rows: number; resolve: () => void }> = [];

  constructor(options: ClickHouseSinkOptions) {
    this.options = validateOptions(options);
    const o = this.options;
    this.spill = new SpillQueue(o.spillDir, o.spillBytesMax);
    this.latency = new LatencyWindow(o.latencyWindowSize);
    this.client = createClient({
      url: o.url,
      ...(o.username === undefined ? {} : { username: o.username }),
      ...(o.password === undefined ? {} : { password: o.password }),
      request_timeout: o.requestTimeoutMs,
      compression: { request: o.compression, response: false },
      // Failures are the sink's to judge and count; the client would print each one.
      log: { level: ClickHouseLogLevel.OFF },
    });
    if (this.spill.length > 0) this.kick();
  }

  /**
   * Takes rows for `table`; resolves when all of them are durable (inserted, spilled, or
   * dead-lettered). Rejects with SinkUnavailableError (spill full, or closed), ClickHouseError
   * (a permanent server error for their batch), or CapacityError (`pendingRowsMax`).
   * Rows that break the table's rules go to the dead-letter callback at once.
   */
  write<T extends ClickHouseTable>(table: T, rows: readonly ClickHouseRows[T][]): Promise<void> {
    const refused = this.refusal(table, rows.length);
    if (refused !== null) return Promise.reject(refused);
    this.counters.rowsWritten += rows.length;
    const touched: Promise<void>[] = [];
    let batch = this.openBatch(table, "JSONEachRow");
    for (const row of rows) {
      let line: string;
      try {
        line = encodeRow(table, row);
      } catch (error) {
        if (!(error instanceof EncodeError)) throw error;
        this.deadLetter(table, safeJson(row), error);
        continue;
      }
      if (touched[touched.length - 1] !== batch.done.promise) touched.push(batch.done.promise);
      (batch.rows as LineBuffer).push(line);
      this.pendingRows++;
      if (batch.rows.rows >= this.options.batchRowsMax) {
        this.seal(table);
        batch = this.openBatch(table, "JSONEachRow");
      }
    }
    if (batch.rows.rows === 0) this.discardIfEmpty(table);
    return settledTogether(touched);
  }

  /**
   * Takes rows of `table` already encoded — as RowBinary in the table's column order (by
   * encodeScoreColumns / encodeSensorDataColumns, reading-columns.ts, or encodeRowBinary), or as
   * Native blocks of exactly the table's columns (encodeScoreNative / encodeSensorDataNative,
   * native-columns.ts), on any thread — with the rows their encoder refused, which go to the
   * dead-letter callback at once. Resolves and rejects as {@link write}: the rows are batched
   * (one `INSERT … FORMAT RowBinary` or `FORMAT Native` of up to `batchRowsMax` rows, several
   * calls' rows or blocks together, a block cut at a row where a batch is full), counted against
   * `pendingRowsMax`, retried, spilled, and split around a row the server refuses the same way (a
   * Native batch as its rows in RowBinary). Blocks that are not
   * whole or not of the table's columns reject with ConfigError. The bytes are copied before it
   * returns, so the caller may reuse them — except with `sendNow`: Native blocks of at most
   * `batchRowsMax` rows gathered by the caller into one insert (an ingest worker's second of rows)
   * become a batch of their own as they are, sent after the table's open batch without waiting
   * for `flushIntervalMs`; the sink keeps their memory until the returned promise settles, so the
   * caller must not touch it before (a transferred buffer is not touched again; a view of shared
   * memory may be written again after that: the sink never keeps it as a spare buffer).
   */
  insertEncoded(
    table: ClickHouseTable,
    rows: EncodedRows | NativeBlock,
    rejected: readonly RejectedRow[] = [],
    sendNow = false,
  ): Promise<void> {
    if (isNativeBlock(rows)) return this.insertNative(table, rows, rejected, sendNow);
    const problem = encodedRowsProblem(rows);
    if (problem !== null) return Promise.reject(new ConfigError("rows", problem));
    const n = rows.rowStarts.length - 1;
    const refused = this.refusal(table, n);
    if (refused !== null) return Promise.reject(refused);
    this.counters.rowsWritten += n + rejected.length;
    for (const r of rejected) this.deadLetter(table, r.line, r.error);
    const touched: Promise<void>[] = [];
    for (let from = 0; from < n; ) {
      const batch = this.openBatch(table, "RowBinary");
      const to = Math.min(n, from + this.options.batchRowsMax - batch.rows.rows);
      (batch.rows as EncodedRowBuffer).push(rows, from, to);
      this.pendingRows += to - from;
      touched.push(batch.done.promise);
      if (batch.rows.rows >= this.options.batchRowsMax) this.seal(table);
      from = to;
    }
    return settledTogether(touched);
  }

  private insertNative(table: ClickHouseTable, block: NativeBlock, rejected: readonly RejectedRow[], sendNow: boolean): Promise<void> {
    const refused = this.refusal(table, block.rows);
    if (refused !== null) return Promise.reject(refused);
    const empty = block.rows === 0 && block.bytes.length === 0;
    const layout = empty ? null : nativeLayout(block.bytes, TABLE_SCHEMAS[table].columns);
    if (typeof layout === "string") return Promise.reject(new ConfigError("rows", `not Native blocks of ${table}: ${layout}`));
    if (layout !== null && layout.rows !== block.rows)
      return Promise.reject(new ConfigError("rows", `the blocks hold ${layout.rows} rows, not the ${block.rows} given`));
    this.counters.rowsWritten += block.rows + rejected.length;
    for (const r of rejected) this.deadLetter(table, r.line, r.error);
    if (layout === null) return Promise.resolve();
    if (sendNow && layout.rows <= this.options.batchRowsMax) return this.adoptNative(table, block.bytes, layout);
    const touched: Promise<void>[] = [];
    for (let b = 0; b < layout.blockRows.length; b++) {
      const whole = block.bytes.subarray(layout.starts[b], layout.starts[b + 1]);
      const rows = layout.blockRows[b];
      // Batches fill to batchRowsMax as RowBinary ones do (fewer, larger parts on the server): a
      // block that does not fit is cut at a row.
      for (let from = 0; from < rows; ) {
        const batch = this.openBatch(table, "Native");
        const to = Math.min(rows, from + this.options.batchRowsMax - batch.rows.rows);
        (batch.rows as NativeBlockBuffer).push(from === 0 && to === rows ? whole : sliceNativeBlock(whole, from, to), to - from);
        this.pendingRows += to - from;
        if (touched[touched.length - 1] !== batch.done.promise) touched.push(batch.done.promise);
        if (batch.rows.rows >= this.options.batchRowsMax) this.seal(table);
        from = to;
      }
    }
    return settledTogether(touched);
  }

  /** Native blocks as a batch of their own, their memory as it is, queued after the table's open batch. */
  private adoptNative(table: ClickHouseTable, bytes: Uint8Array, layout: NativeLayout): Promise<void> {
    this.seal(table);
    const done = deferred();
    const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    this.pendingRows += layout.rows;
    this.queue.push(newBatch(table, "Native", { data, starts: layout.starts, blockRows: layout.blockRows }, done, null));
    this.kick();
    return done.promise;
  }

  /**
   * Resolves once fewer than `rows` rows wait in memory (at once when they already do), or the
   * sink stops taking writes. For a source that acknowledges nothing: it hands rows over without
   * waiting for durability, and waits here only while the sink's memory queue is full — batches
   * leave it by insert or, while ClickHouse is away, by spill, so the wait is bounded by those.
   */
  room(rows: number): Promise<void> {
    if (this.pendingRows < rows || this.broken !== null || this.closing) return Promise.resolve();
    // Open batches are not sealed here: a source waking at every inserted batch would seal them
    // small. They leave when full or after flushIntervalMs, so the wait stays bounded.
    this.kick();
    return new Promise((resolve) => this.roomWaiters.push({ rows, resolve }));
  }

  /**
   * A machine's latest scored readings as ml_scores holds them (FINAL: one row per reading): at
   * most `perSensor` per sensor type, from the last hour of the machine's own data (its newest
   * timestamp − 1 h, so a replay or a faster-than-live simulation is found too), newest first
   * within each sensor. For the dashboard's back-fill after a restart; `columns` are ml_scores
   * columns (nullable ones come back null), plus `sensor_type`, `time` (epoch ms) and `value`.
   */
  /**
   * A machine's raw readings (ml_sensor_data) up to `untilMs`, oldest first, at most `rowsMax`:
   * what a drift-triggered retraining reads when the run writes to ClickHouse.
   */
  async sensorHistory(
    machineId: string,
    untilMs: number,
    rowsMax: number,
  ): Promise<Array<{ sensor_type: string; time: number; value: number }>> {
    const query =
      `SELECT sensor_type, timestamp_ms AS time, sensor_value AS value FROM ${this.options.database}.ml_sensor_data FINAL ` +
      `WHERE machine_id = ${sqlString(machineId)} AND timestamp_ms <= ${Math.floor(untilMs)} ORDER BY time, sensor_type LIMIT ${Math.max(1, Math.floor(rowsMax))}`;
    // A read beside the run's inserts can meet a kept-alive socket the server has just closed
    // ("socket hang up"): transient failures are tried again, as inserts are.
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await this.client.query({
          query,
          format: "JSONEachRow",
          clickhouse_settings: { output_format_json_quote_64bit_integers: 0 },
        });
        return (await result.json<{ sensor_type: string; time: number | string; value: number }>()).map((r) => ({
          ...r,
          time: Number(r.time),
        }));
      } catch (error) {
        if (classifyFailure(error).kind !== "transient" || attempt + 1 >= this.options.insertAttemptsMax) throw error;
        await new Promise((r) => setTimeout(r, backoffMs(attempt, this.options.backoffBaseMs, this.options.backoffMaxMs)));
      }
    }
  }

  async recentScores(machineId: string, perSensor: number, columns: readonly string[]): Promise<Array<Record<string, unknown>>> {
    const known = new Set(TABLE_SCHEMAS.ml_scores.columns.map((c) => c.name));
    const unknown = columns.filter((c) => !known.has(c));
    if (unknown.length > 0) throw new ConfigError("recentScores", `ml_scores has no column ${unknown.join(", ")}`);
    const id = sqlString(machineId);
    const table = `${this.options.database}.ml_scores`;
    const result = await this.client.query({
      query:
        `SELECT sensor_type, timestamp_ms AS time, value, ${columns.join(", ")} FROM ${table} FINAL ` +
        `WHERE machine_id = ${id} AND timestamp >= (SELECT max(timestamp) FROM ${table} WHERE machine_id = ${id}) - 3600 ` +
        `ORDER BY sensor_type, time DESC LIMIT ${Math.max(1, Math.floor(perSensor))} BY sensor_type`,
      format: "JSONEachRow",
    });
    return result.json<Record<string, unknown>>();
  }

  /**
   * Seals every open batch now instead of at its flush timer: for a caller that waits for its rows
   * to be durable before it goes on (a JetStream round acknowledges only then), the timer would
   * otherwise pace it at one round per `flushIntervalMs`.
   */
  sendOpen(): void {
    for (const table of [...this.open.keys()]) this.seal(table);
  }

  /** Sends every open batch now; resolves when all rows written so far are settled (durable, or their writes rejected). */
  async flush(): Promise<void> {
    this.sendOpen();
    const waiting = this.queue.map((b) => b.done.promise);
    this.kick();
    await Promise.allSettled(waiting);
  }

  /**
   * Flushes, then inserts what it can (the spill included); if ClickHouse is away, spills the
   * rest instead of waiting for it. Writes after close reject with SinkUnavailableError.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closing = true;
    this.released();
    for (const table of [...this.open.keys()]) this.seal(table);
    this.kick();
    while (this.pumping !== null) await this.pumping;
    this.closed = true;
    await this.client.close();
  }

  /** Resolves when nothing waits: no rows in memory and an empty spill (or after `timeoutMs`, rejecting). */
  async drained(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    await this.flush();
    while (this.spill.length > 0 || this.queue.length > 0 || this.pendingRows > 0) {
      if (Date.now() > deadline) {
        throw new SinkUnavailableError(
          "drain_timeout",
          this.pendingRows,
          `not drained after ${timeoutMs} ms (${this.spill.length} spill files)`,
          this.lastErrorCause(),
        );
      }
      this.kick();
      await sleep(50);
    }
  }

  /** Why the sink cannot take `rows` rows of `table` now (stopped, closed, unknown table, `pendingRowsMax`), or null. */
  private refusal(table: string, rows: number): Error | null {
    if (this.broken !== null)
      return new SinkUnavailableError("closed", rows, `the sink stopped: ${this.broken.message}`, { cause: this.broken });
    if (this.closing) return new SinkUnavailableError("closed", rows, "the sink is closed");
    if (!isClickHouseTable(table)) return new ConfigError("table", `unknown table ${JSON.stringify(table)}`);
    if (this.pendingRows + rows > this.options.pendingRowsMax)
      return new CapacityError(
        "pendingRowsMax",
        this.options.pendingRowsMax,
        `${this.pendingRows} rows wait for ClickHouse; ${rows} more do not fit`,
      );
    return null;
  }

  /** Rows in memory not yet durable (`metrics().rowsPending`, without the rest of the metrics: cheap to ask per batch). */
  get rowsPending(): number {
    return this.pendingRows;
  }

  metrics(): ClickHouseSinkMetrics {
    const c = this.counters;
    return {
      available: this.available,
      rowsWritten: c.rowsWritten,
      rowsInserted: c.rowsInserted,
      rowsSpilled: c.rowsSpilled,
      rowsDrained: c.rowsDrained,
      rowsDeadLettered: c.rowsDeadLettered,
      rowsRefused: c.rowsRefused,
      rowsFailed: c.rowsFailed,
      rowsPending: this.pendingRows,
      rowsInsertedByTable: { ...c.rowsInsertedByTable },
      batches: c.batches,
      batchesSpilled: c.batchesSpilled,
      batchSplits: c.batchSplits,
      nativeAsRowBinary: c.nativeAsRowBinary,
      retries: c.retries,
      insertLatencyMs: this.latency.summary(),
      spillBytes: this.spill.bytes,
      spillFiles: this.spill.length,
      spillBytesMax: this.options.spillBytesMax,
      spillFilesDamaged: c.spillFilesDamaged,
      deadLetterCallbackErrors: c.deadLetterCallbackErrors,
      lastError: c.lastError === null ? null : `${c.lastError.name}: ${c.lastError.message}`,
    };
  }

  // -------------------------------------------------------------------------------------------
  // Batching
  // -------------------------------------------------------------------------------------------

  /** The table's open batch of `format`; an open batch of the other format is sealed first (batches keep write order). */
  private openBatch(table: ClickHouseTable, format: SpillFormat): OpenBatch {
    let batch = this.open.get(table);
    if (batch !== undefined && batch.format !== format) {
      this.seal(table);
      batch = undefined;
    }
    if (batch === undefined) {
      // Sized like the table's last batch, so a steady stream never grows (copies) a buffer.
      const hint = this.lastBatchBytes.get(`${table}/${format}`) ?? 0;
      // Headroom for a rate that rises (a batch that outgrows its buffer copies it into one twice as large).
      const bytes = Math.max(64 * 1024, Math.ceil(hint * 1.5));
      const rows = this.options.batchRowsMax;
      batch = {
        table,
        format,
        rows:
          format === "RowBinary"
            ? new EncodedRowBuffer(bytes, rows)
            : format === "Native"
              ? new NativeBlockBuffer(this.spareBuffer(table, bytes))
              : new LineBuffer(bytes, rows),
        done: deferred(),
        timer: null,
      };
      this.open.set(table, batch);
    }
    if (batch.timer === null) {
      const b = batch;
      b.timer = setTimeout(() => {
        b.timer = null;
        if (this.open.get(table) === b && b.rows.rows > 0) this.seal(table);
      }, this.options.flushIntervalMs);
    }
    return batch;
  }

  /** A spare Native buffer of the table, whole, that holds `bytes`; else the size to allocate. */
  private spareBuffer(table: ClickHouseTable, bytes: number): Buffer | number {
    const spares = this.spareNative.get(table) ?? [];
    const k = spares.findIndex((b) => b.length >= bytes);
    return k < 0 ? bytes : spares.splice(k, 1)[0];
  }

  private keepSpare(table: ClickHouseTable, data: Buffer): void {
    // Shared memory is lent (an ingest worker's body ring): its owner writes there again once the insert settles.
    if (data.buffer instanceof SharedArrayBuffer) return;
    const spares = this.spareNative.get(table) ?? [];
    spares.push(Buffer.from(data.buffer, data.byteOffset, data.buffer.byteLength - data.byteOffset));
    if (spares.length > 2) spares.sort((a, b) => b.length - a.length).pop();
    this.spareNative.set(table, spares);
  }

  private discardIfEmpty(table: ClickHouseTable): void {
    const batch = this.open.get(table);
    if (batch === undefined || batch.rows.rows > 0) return;
    if (batch.timer !== null) clearTimeout(batch.timer);
    this.open.delete(table);
  }

  private seal(table: ClickHouseTable): void {
    const open = this.open.get(table);
    if (open === undefined) return;
    this.open.delete(table);
    if (open.timer !== null) clearTimeout(open.timer);
    if (open.rows.rows === 0) return;
    // Batches are sealed full or by the flush interval (at a steady rate, a second's rows each): the
    // next is sized like this one, so its buffer need not grow (copy, and fault in fresh pages).
    this.lastBatchBytes.set(`${table}/${open.format}`, open.rows.bytes);
    this.queue.push(newBatch(table, open.format, open.rows.pack(), open.done, null));
    this.kick();
  }

  // -------------------------------------------------------------------------------------------
  // The pump: one loop that inserts, spills and drains, one request at a time
  // -------------------------------------------------------------------------------------------

  private kick(): void {
    if (this.broken !== null) return;
    if (this.pumping !== null) {
      this.wake?.();
      return;
    }
    this.pumping = this.pump()
      .catch((error: unknown) => this.breakDown(error))
      .finally(() => {
        this.pumping = null;
        // A batch sealed while the loop was deciding to stop.
        if (this.queue.length > 0) this.kick();
      });
  }

  private async pump(): Promise<void> {
    for (;;) {
      const head = this.queue[0];
      const away = !this.available && (Date.now() < this.retryAt || this.closing);
      // New batches wait behind the spill (order), and go there at once while ClickHouse is
      // away. While it answers and the spill is full, the spill drains first to make room.
      if (head !== undefined && (this.spill.length > 0 || away)) {
        if (away || this.spill.fits(spillBytes(head))) {
          await this.spillBatch(head);
          continue;
        }
      }
      if (this.spill.length > 0) {
        if (away) {
          if (this.closing) return;
          await this.pause(this.retryAt - Date.now());
          continue;
        }
        await this.drainHead();
        continue;
      }
      if (head !== undefined) {
        await this.insertFresh(head);
        continue;
      }
      return;
    }
  }

  /** Tries a batch from memory up to `insertAttemptsMax` times (once while ClickHouse is away), then spills it. */
  private async insertFresh(batch: Batch): Promise<void> {
    const attempts = this.available ? this.options.insertAttemptsMax : 1;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.insertBatch(batch);
      } catch (error) {
        const failure = this.judge(error, batch.format);
        if (failure.kind === "permanent") {
          this.queue.shift();
          this.pendingRows -= batch.size;
          this.released();
          this.counters.rowsFailed += batch.size; // dead-letters found on the way are not sent: the whole batch is refused
          batch.done.reject(failure.error);
          return;
        }
        if (attempt + 1 < attempts && !this.closing) {
          this.counters.retries++;
          await sleep(backoffMs(attempt, this.options.backoffBaseMs, this.options.backoffMaxMs));
          continue;
        }
        this.becameUnavailable(failure.error);
        return; // the pump spills it next
      }
      this.queue.shift();
      this.pendingRows -= batch.size;
      this.released();
      this.inserted(batch, false);
      batch.done.resolve();
      if (batch.format === "Native" && batch.blockRows !== null) this.keepSpare(batch.table, batch.rows.data);
      return;
    }
  }

  /** Inserts the oldest spill file; on failure leaves it and backs off. */
  private async drainHead(): Promise<void> {
    const entry = this.spill.peek() as SpillEntry;
    if (this.spillHead === null || this.spillHead.entry !== entry) {
      let rows: SpillRows;
      try {
        rows = await this.spill.read(entry);
        if (!isClickHouseTable(entry.table)) throw new SpillFileError(entry.path, `names no linewatch table (${entry.table})`);
      } catch (error) {
        if (!(error instanceof SpillFileError)) throw error;
        await this.spill.setAside(entry);
        this.counters.spillFilesDamaged++;
        this.counters.lastError = error;
        return;
      }
      this.spillHead = newBatch(entry.table, entry.format, rows, deferred(), entry);
    }
    const batch = this.spillHead;
    try {
      await this.insertBatch(batch);
    } catch (error) {
      const failure = this.judge(error, batch.format);
      // Even a permanent error keeps the file: it is durable data someone acknowledged.
      this.counters.retries++;
      this.becameUnavailable(failure.error);
      return;
    }
    await this.spill.shift(entry);
    this.spillHead = null;
    this.inserted(batch, true);
  }

  private async spillBatch(batch: Batch): Promise<void> {
    this.queue.shift();
    this.pendingRows -= batch.size;
    this.released();
    const rows = liveRows(batch);
    try {
      if (rows > 0) {
        const live = liveRowsOf(batch, 0, batch.size);
        await this.spill.append(batch.table, live.data, rows, batch.format, live.starts);
      }
    } catch (error) {
      const e = error instanceof Error ? error : new Error(String(error));
      const why = `ClickHouse is unavailable (${this.counters.lastError?.message ?? "no answer"})`;
      this.counters.rowsRefused += rows;
      if (!(e instanceof SpillFullError)) this.counters.lastError = e;
      batch.done.reject(
        new SinkUnavailableError(e instanceof SpillFullError ? "spill_full" : "spill_failed", rows, `${why} and ${e.message}`, {
          cause: e,
        }),
      );
      return;
    }
    this.counters.rowsSpilled += rows;
    this.counters.batchesSpilled++;
    batch.done.resolve();
  }

  // -------------------------------------------------------------------------------------------
  // Inserting, and splitting a batch around a bad row
  // -------------------------------------------------------------------------------------------

  /** Inserts every live row of the batch, marking bad rows dead. Throws what is not a row error. */
  private async insertBatch(batch: Batch): Promise<void> {
    if (!this.schemaReady && this.options.createTables) {
      const altered = await createSchema(
        (sql) => this.client.command({ query: sql }),
        this.options.database,
        async (table) => new Set((await this.serverColumns(table)).keys()),
      );
      // A table changed here is compared again before the next Native insert.
      if (altered.length > 0) this.nativeTables.clear();
      for (const sql of altered) this.options.onColumnAdded?.(sql);
      this.schemaReady = true;
    }
    if (batch.format === "Native" && !(await this.nativeFits(batch.table))) this.asRowBinary(batch);
    await this.insertRange(batch, 0, batch.size, true);
  }

  /** The table's columns on the server, name → type (none when it does not exist). */
  private async serverColumns(table: ClickHouseTable): Promise<Map<string, string>> {
    const result = await this.client.query({
      query: `SELECT name, type FROM system.columns WHERE database = '${this.options.database}' AND table = '${table}'`,
      format: "JSONEachRow",
    });
    return new Map((await result.json<{ name: string; type: string }>()).map((c) => [c.name, c.type]));
  }

  /** Whether the server's table has every declared column with the declared type (asked once, and again after a failed Native insert). */
  private async nativeFits(table: ClickHouseTable): Promise<boolean> {
    const known = this.nativeTables.get(table);
    if (known !== undefined) return known;
    const actual = await this.serverColumns(table);
    const fits = TABLE_SCHEMAS[table].columns.every((c) => actual.get(c.name) === columnTypeName(c));
    this.nativeTables.set(table, fits);
    return fits;
  }

  /** A Native batch's rows as RowBinary, the same values (for a table that differs, or to split around a refused row). */
  private asRowBinary(batch: Batch): void {
    const rows = nativeToRowBinary(batch.rows.data);
    if (rows.rowStarts.length - 1 !== batch.size)
      throw new Error(`${batch.size} rows in Native blocks came back as ${rows.rowStarts.length - 1}`);
    batch.rows = { data: Buffer.from(rows.bytes.buffer, rows.bytes.byteOffset, rows.bytes.length), starts: rows.rowStarts };
    batch.format = "RowBinary";
    batch.blockRows = null;
    this.counters.nativeAsRowBinary++;
  }

  private async insertRange(batch: Batch, lo: number, hi: number, useHint: boolean): Promise<void> {
    const body = bodyOf(batch, lo, hi);
    if (body.length === 0) return;
    try {
      await this.send(batch.table, batch.format, body);
      return;
    } catch (error) {
      const failure = classifyFailure(error, batch.format);
      if (batch.format === "Native") {
        // The table may have changed since it was compared with the declaration: compare again.
        this.nativeTables.delete(batch.table);
        if (failure.kind === "transient" || (failure.kind === "permanent" && (await this.nativeFits(batch.table)))) throw error;
        // A row refused, or a table that no longer fits: the rows as RowBinary get RowBinary's
        // answers (a column refused by name, a bad row split out and dead-lettered).
        this.asRowBinary(batch);
        await this.insertRange(batch, 0, batch.size, true);
        return;
      }
      if (failure.kind !== "row") throw error;
      const rowError = failure.error as ClickHouseError;
      const live = liveIndexes(batch, lo, hi);
      if (++batch.splitRequests > this.options.splitRequestsMax) {
        throw new ClickHouseError(
          rowError.code,
          `splitRequestsMax (${this.options.splitRequestsMax}) reached: too many rows refused for them all to be bad rows (the table may not match): ${rowError.serverMessage}`,
          { type: rowError.type, kind: "permanent", cause: rowError },
        );
      }
      if (live.length === 1) {
        markDead(batch, live[0], rowError);
        return;
      }
      this.counters.batchSplits++;
      // The server names the row ("(at row N)", 1-based among the rows sent); try it alone
      // first. If the hint is wrong, the parts are bisected without hints, so a bad hint costs
      // a few requests, never correctness.
      const atRow = rowError.atRow;
      if (useHint && atRow !== undefined && atRow >= 1 && atRow <= live.length) {
        const k = live[atRow - 1];
        await this.insertRange(batch, k, k + 1, false);
        if (k > lo) await this.insertRange(batch, lo, k, false);
        if (k + 1 < hi) await this.insertRange(batch, k + 1, hi, false);
        return;
      }
      const mid = live[live.length >> 1];
      await this.insertRange(batch, lo, mid, false);
      await this.insertRange(batch, mid, hi, false);
    }
  }

  private async send(table: ClickHouseTable, format: SpillFormat, body: Buffer): Promise<void> {
    const started = performance.now();
    const target = `${this.options.database}.${table}`;
    const result = await this.client.exec({
      query:
        format === "JSONEachRow"
          ? `INSERT INTO ${target} FORMAT JSONEachRow`
          : `INSERT INTO ${target} ${insertColumnList(table)} FORMAT ${format}`,
      values: Readable.from([body]),
    });
    result.stream.resume();
    await finished(result.stream);
    this.latency.add(performance.now() - started);
    this.counters.batches++;
    if (!this.available) {
      this.available = true;
      this.failures = 0;
      this.options.onAvailabilityChange?.(true, null);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Bookkeeping
  // -------------------------------------------------------------------------------------------

  /** The batch is in ClickHouse but for its bad rows, which now go to the dead-letter callback. */
  private inserted(batch: Batch, fromSpill: boolean): void {
    for (const [i, error] of batch.deadLetters) this.deadLetter(batch.table, rowLine(batch, i), error);
    const rows = liveRows(batch);
    this.counters.rowsInserted += rows;
    this.counters.rowsInsertedByTable[batch.table] += rows;
    if (fromSpill) this.counters.rowsDrained += rows;
  }

  private deadLetter(table: ClickHouseTable, line: string, error: ClickHouseError | EncodeError): void {
    this.counters.rowsDeadLettered++;
    try {
      this.options.onDeadLetter?.({ table, line, error });
    } catch (callbackError) {
      // The caller's callback must not stop the sink mid-batch; it is counted and reported.
      this.counters.deadLetterCallbackErrors++;
      this.counters.lastError = callbackError instanceof Error ? callbackError : new Error(String(callbackError));
    }
  }

  /** Classifies a failure and remembers it. A missing table or database (dropped, or a new server) is created again. */
  private judge(error: unknown, format: SpillFormat): ClickHouseFailure {
    const failure = classifyFailure(error, format);
    this.counters.lastError = failure.error;
    const missing = failure.error instanceof ClickHouseError && (failure.error.code === 60 || failure.error.code === 81);
    if (missing && this.options.createTables) {
      this.schemaReady = false;
      this.nativeTables.clear();
      return { kind: "transient", error: failure.error };
    }
    return failure;
  }

  /** An error the sink has no answer for (a bug, a disk failing under the spill): every waiting write rejects. */
  private breakDown(error: unknown): void {
    const e = error instanceof Error ? error : new Error(String(error));
    this.broken = e;
    this.counters.lastError = e;
    for (const table of [...this.open.keys()]) this.seal(table);
    for (const batch of this.queue.splice(0)) {
      this.pendingRows -= batch.size;
      this.released();
      this.counters.rowsRefused += liveRows(batch);
      batch.done.reject(new SinkUnavailableError("closed", liveRows(batch), `the sink stopped: ${e.message}`, { cause: e }));
    }
  }

  /** Wakes the `room` callers whose mark the rows in memory are now below (all of them once the sink stops). */
  private released(): void {
    if (this.roomWaiters.length === 0) return;
    const all = this.broken !== null || this.closing;
    const still: Array<{ rows: number; resolve: () => void }> = [];
    for (const w of this.roomWaiters) {
      if (all || this.pendingRows < w.rows) w.resolve();
      else still.push(w);
    }
    this.roomWaiters = still;
  }

  private becameUnavailable(error: Error): void {
    this.retryAt = Date.now() + backoffMs(this.failures++, this.options.backoffBaseMs, this.options.backoffMaxMs);
    if (this.available) {
      this.available = false;
      this.options.onAvailabilityChange?.(false, error);
    }
  }

  private lastErrorCause(): { cause?: unknown } {
    return this.counters.lastError === null ? {} : { cause: this.counters.lastError };
  }

  /** Waits `ms`, or less when a new batch arrives (so it is spilled at once). */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Internals
// ---------------------------------------------------------------------------------------------

interface ResolvedOptions {
  url: string;
  username: string | undefined;
  password: string | undefined;
  database: string;
  createTables: boolean;
  batchRowsMax: number;
  flushIntervalMs: number;
  pendingRowsMax: number;
  spillDir: string;
  spillBytesMax: number;
  insertAttemptsMax: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  requestTimeoutMs: number;
  compression: boolean;
  latencyWindowSize: number;
  splitRequestsMax: number;
  onDeadLetter: ((letter: ClickHouseDeadLetter) => void) | undefined;
  onAvailabilityChange: ((available: boolean, error: Error | null) => void) | undefined;
  onColumnAdded: ((statement: string) => void) | undefined;
}

/** The defaults filled in and every value checked, alone and against the others. */
export function validateOptions(o: ClickHouseSinkOptions): ResolvedOptions {
  const r: ResolvedOptions = {
    url: o.url,
    username: o.username,
    password: o.password,
    database: o.database ?? DEFAULT_CLICKHOUSE_DATABASE,
    createTables: o.createTables ?? true,
    batchRowsMax: o.batchRowsMax ?? DEFAULT_CLICKHOUSE_BATCH_ROWS_MAX,
    flushIntervalMs: o.flushIntervalMs ?? DEFAULT_CLICKHOUSE_FLUSH_INTERVAL_MS,
    pendingRowsMax: o.pendingRowsMax ?? DEFAULT_CLICKHOUSE_PENDING_ROWS_MAX,
    spillDir: o.spillDir,
    spillBytesMax: o.spillBytesMax ?? DEFAULT_CLICKHOUSE_SPILL_BYTES_MAX,
    insertAttemptsMax: o.insertAttemptsMax ?? DEFAULT_CLICKHOUSE_INSERT_ATTEMPTS_MAX,
    backoffBaseMs: o.backoffBaseMs ?? DEFAULT_CLICKHOUSE_BACKOFF_BASE_MS,
    backoffMaxMs: o.backoffMaxMs ?? DEFAULT_CLICKHOUSE_BACKOFF_MAX_MS,
    requestTimeoutMs: o.requestTimeoutMs ?? DEFAULT_CLICKHOUSE_REQUEST_TIMEOUT_MS,
    compression: o.compression ?? false,
    latencyWindowSize: o.latencyWindowSize ?? DEFAULT_CLICKHOUSE_LATENCY_WINDOW,
    splitRequestsMax: o.splitRequestsMax ?? DEFAULT_CLICKHOUSE_SPLIT_REQUESTS_MAX,
    onDeadLetter: o.onDeadLetter,
    onAvailabilityChange: o.onAvailabilityChange,
    onColumnAdded: o.onColumnAdded,
  };
  let url: URL;
  try {
    url = new URL(r.url);
  } catch {
    throw new ConfigError("url", `not a URL: ${JSON.stringify(r.url)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new ConfigError("url", `must be http(s)://, got ${url.protocol}`);
  if (!isDatabaseName(r.database)) throw new ConfigError("database", `must be a plain SQL identifier, got ${JSON.stringify(r.database)}`);
  if (typeof r.spillDir !== "string" || r.spillDir === "") throw new ConfigError("spillDir", "is required");
  const integer = (name: keyof ResolvedOptions, min: number, max = Number.MAX_SAFE_INTEGER) => {
    const v = r[name] as number;
    if (!Number.isSafeInteger(v) || v < min || v > max) throw new ConfigError(name, `must be an integer in ${min}…${max}, got ${v}`);
  };
  integer("batchRowsMax", 1, CLICKHOUSE_BATCH_ROWS_LIMIT);
  integer("flushIntervalMs", 1);
  integer("pendingRowsMax", 1);
  integer("spillBytesMax", 1);
  integer("insertAttemptsMax", 1, 100);
  integer("backoffBaseMs", 1);
  integer("backoffMaxMs", 1);
  integer("requestTimeoutMs", 100);
  integer("latencyWindowSize", 1, 1 << 20);
  integer("splitRequestsMax", 0);
  if (r.pendingRowsMax < r.batchRowsMax)
    throw new ConfigError(
      "pendingRowsMax",
      `(${r.pendingRowsMax}) must be ≥ batchRowsMax (${r.batchRowsMax}), or no batch could ever fill`,
    );
  if (r.backoffMaxMs < r.backoffBaseMs)
    throw new ConfigError("backoffMaxMs", `(${r.backoffMaxMs}) must be ≥ backoffBaseMs (${r.backoffBaseMs})`);
  return r;
}

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
  reject(error: Error): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

interface OpenBatch {
  table: ClickHouseTable;
  format: SpillFormat;
  /** A LineBuffer for JSONEachRow, an EncodedRowBuffer for RowBinary, a NativeBlockBuffer for Native. */
  rows: LineBuffer | EncodedRowBuffer | NativeBlockBuffer;
  done: Deferred;
  timer: ReturnType<typeof setTimeout> | null;
}

interface Batch {
  table: ClickHouseTable;
  /** Native until its rows are sent as RowBinary instead (then RowBinary). */
  format: SpillFormat;
  /** JSONEachRow lines or RowBinary rows, each a byte range; Native blocks, each a byte range. */
  rows: PackedRows;
  /** Rows of each Native block; null for the other formats, whose ranges are rows. */
  blockRows: Uint32Array | null;
  /** Rows in the batch (dead-lettered ones included). */
  size: number;
  /**
   * Rows found bad (not sent again on a retry), or null while there are none. They reach the
   * dead-letter callback only once the rest is inserted: a batch given up on (splitRequestsMax)
   * rejects whole, and dead-letters nothing.
   */
  dead: Uint8Array | null;
  deadLetters: [number, ClickHouseError][];
  /** Requests spent splitting it (bounded by splitRequestsMax, over all its attempts). */
  splitRequests: number;
  done: Deferred;
  /** The spill file it was read from. */
  entry: SpillEntry | null;
}

function newBatch(table: ClickHouseTable, format: SpillFormat, rows: SpillRows, done: Deferred, entry: SpillEntry | null): Batch {
  const blockRows = format === "Native" ? (rows.blockRows as Uint32Array) : null;
  const size = blockRows === null ? rows.starts.length - 1 : blockRows.reduce((a, b) => a + b, 0);
  const packed = { data: rows.data, starts: rows.starts };
  return { table, format, rows: packed, blockRows, size, dead: null, deadLetters: [], splitRequests: 0, done, entry };
}

/** The live rows in [lo, hi) with their offsets: views when none is dead, a copy otherwise. */
function liveRowsOf(batch: Batch, lo: number, hi: number): PackedRows {
  const { data, starts } = batch.rows;
  if (batch.dead === null && lo === 0 && hi === batch.size) return { data, starts };
  const kept = [0];
  for (let i = lo; i < hi; i++)
    if (batch.dead === null || batch.dead[i] === 0) kept.push(kept[kept.length - 1] + starts[i + 1] - starts[i]);
  return { data: bodyOf(batch, lo, hi), starts: Uint32Array.from(kept) };
}

/** Bytes the batch would take in the spill (a RowBinary file carries its row offsets too, a Native one a header). */
function spillBytes(batch: Batch): number {
  const header = batch.format === "RowBinary" ? 12 + 4 * batch.rows.starts.length : batch.format === "Native" ? 16 : 0;
  return batch.rows.data.length + header;
}

/** Row i as JSON for the dead-letter output: a JSONEachRow line as sent, a RowBinary row read back by the table's columns. */
function rowLine(batch: Batch, i: number): string {
  if (batch.format === "JSONEachRow") return rowText(batch.rows, i);
  const bytes = batch.rows.data.subarray(batch.rows.starts[i], batch.rows.starts[i + 1]);
  try {
    const [row] = decodeRowBinary(batch.table, bytes);
    return JSON.stringify(row, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
  } catch {
    // Bytes that do not read as a row of the table: shown as they are.
    return JSON.stringify({ row_binary_base64: Buffer.from(bytes).toString("base64") });
  }
}

/** One promise for the batches a call touched. */
function settledTogether(touched: readonly Promise<void>[]): Promise<void> {
  if (touched.length === 0) return Promise.resolve();
  return touched.length === 1 ? touched[0] : Promise.all(touched).then(() => undefined);
}

/** The live rows in [lo, hi) as one request body: a view when none is dead, a copy otherwise. Native blocks go whole. */
function bodyOf(batch: Batch, lo: number, hi: number): Buffer {
  const { data, starts } = batch.rows;
  if (batch.blockRows !== null) {
    if (lo !== 0 || hi !== batch.size || batch.dead !== null) throw new RangeError("Native blocks are sent whole");
    return data;
  }
  if (batch.dead === null) return data.subarray(starts[lo], starts[hi]);
  const parts: Buffer[] = [];
  for (let i = lo; i < hi; i++) if (batch.dead[i] === 0) parts.push(data.subarray(starts[i], starts[i + 1]));
  return Buffer.concat(parts);
}

function liveIndexes(batch: Batch, lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let i = lo; i < hi; i++) if (batch.dead === null || batch.dead[i] === 0) out.push(i);
  return out;
}

function liveRows(batch: Batch): number {
  if (batch.dead === null) return batch.size;
  let n = 0;
  for (let i = 0; i < batch.size; i++) if (batch.dead[i] === 0) n++;
  return n;
}

function markDead(batch: Batch, i: number, error: ClickHouseError): void {
  if (batch.dead === null) batch.dead = new Uint8Array(batch.size);
  batch.dead[i] = 1;
  batch.deadLetters.push([i, error]);
}

function newCounters() {
  return {
    rowsWritten: 0,
    rowsInserted: 0,
    rowsSpilled: 0,
    rowsDrained: 0,
    rowsDeadLettered: 0,
    rowsRefused: 0,
    rowsFailed: 0,
    rowsInsertedByTable: Object.fromEntries(CLICKHOUSE_TABLES.map((t) => [t, 0])) as Record<ClickHouseTable, number>,
    batches: 0,
    batchesSpilled: 0,
    batchSplits: 0,
    nativeAsRowBinary: 0,
    retries: 0,
    spillFilesDamaged: 0,
    deadLetterCallbackErrors: 0,
    lastError: null as Error | null,
  };
}

function safeJson(row: unknown): string {
  try {
    return JSON.stringify(row) ?? String(row);
  } catch {
    return String(row);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
