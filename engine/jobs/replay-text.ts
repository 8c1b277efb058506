/**
 * Replay's NDJSON lines from blocks of rows in shared memory ({@link ReplayTextBlock}), as bytes:
 * the decimal text of every number is made here, by the analyses' byte writers (operators'
 * rowTextWriter), on a worker thread (replay-text-worker.ts) so that the main thread only reads,
 * parses and routes. The text is byte for byte ReplayOutput's (a test compares them): the same
 * members in the same order, numbers by writeStatisticAt, which gives formatStatistic's text.
 *
 * {@link ReplayTextPool} hands blocks to the workers in turn and has them written in block order:
 * to a file stream's descriptor by the workers themselves (no bytes cross threads), to any other
 * stream by this thread. It holds a few blocks in flight at most and waits for the output, so a
 * slow disk or reader slows the replay instead of growing memory.
 */
import { existsSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { Writable } from "node:stream";
import { Worker } from "node:worker_threads";
import { ConfigError, packageRoot } from "../core/mod.js";
import {
  type RowTextSpec,
  type RowTextWriter,
  rowTextWriter,
  STATISTIC_BYTES_MAX,
  writeInteger,
  writeStatisticAt,
} from "../../operators/mod.js";
import {
  ROW_DONE,
  ROW_FLAG_OUT_OF_ORDER,
  ROW_LATE,
  ROW_REJECTED,
  type ReplayTextBlock,
  STAMP_BYTES,
  STAMP_IN_TEXTS,
} from "./replay-blocks.js";

const utf8 = (text: string): Uint8Array => Buffer.from(text, "utf8");
const ROW = utf8('{"row":');
const TIMESTAMP = utf8(',"timestamp":');
const VALUE = utf8(',"value":');
const LATE = utf8(',"late":true}\n');
const OUT_OF_ORDER = utf8(',"out_of_order":true');
const ERROR = utf8(',"error":');
const END = utf8("}\n");
const NULL = utf8("null");
/** Bytes of a line besides the key, the timestamp, the analyses' members and an error text. */
const LINE_BYTES = 120 + 2 * STATISTIC_BYTES_MAX;

/** Turns blocks into NDJSON bytes in one buffer it reuses; keeps the keys' JSON text from block to block. */
export class ReplayTextWriter {
  private readonly writers: RowTextWriter[];
  private readonly nulls: Uint8Array;
  private readonly membersMax: number;
  /** `,"key":<key JSON>` of each key id. */
  private readonly keys: Uint8Array[] = [];
  private out: Uint8Array = new Uint8Array(1 << 20);

  constructor(specs: readonly RowTextSpec[]) {
    this.writers = specs.map(rowTextWriter);
    this.nulls = utf8(`,${this.writers.map((w) => w.nullJson).join(",")}`);
    this.membersMax = this.writers.reduce((n, w) => n + 1 + w.bytesMax, this.nulls.length);
  }

  /** The block's lines, in row order, each ending in a newline: a view of this writer's buffer, valid until the next call. */
  write(block: ReplayTextBlock): Uint8Array {
    block.keys.forEach((name, k) => {
      this.keys[block.firstKey + k] = utf8(`,"key":${JSON.stringify(name)}`);
    });
    const { keyIds, stamps, stampLengths } = block.ring;
    let out = this.out;
    let at = 0;
    for (let i = 0; i < block.length; i++) {
      const slot = (block.slot + i) & block.mask;
      const key = this.keys[keyIds[slot]];
      const stampText = stampLengths[slot] === STAMP_IN_TEXTS ? utf8(block.texts.get(i) as string) : null;
      const error = block.errors.get(i);
      const errorText = error === undefined ? null : utf8(JSON.stringify(error));
      const need = LINE_BYTES + this.membersMax + key.length + (stampText?.length ?? STAMP_BYTES) + (errorText?.length ?? 0);
      if (at + need > out.length) out = this.grow(at, at + need);
      at = put(out, at, ROW);
      at = writeInteger(out, at, block.firstRow + i);
      at = put(out, at, key);
      at = put(out, at, TIMESTAMP);
      if (stampText !== null) at = put(out, at, stampText);
      else for (let k = slot * STAMP_BYTES, end = k + stampLengths[slot]; k < end; k++) out[at++] = stamps[k];
      at = put(out, at, VALUE);
      at = this.members(out, at, block, i, slot, errorText);
    }
    return out.subarray(0, at);
  }

  /** The value and the members of row i (ring slot `slot`), through the line's end. */
  private members(out: Uint8Array, at: number, block: ReplayTextBlock, i: number, slot: number, errorText: Uint8Array | null): number {
    const { state, flags, values, results } = block.ring;
    const s = state[slot];
    if (s === ROW_REJECTED) {
      // `"value":null`, every member null, and why.
      at = put(out, at, NULL);
      at = put(out, at, this.nulls);
      at = put(out, at, ERROR);
      at = put(out, at, errorText ?? NULL);
      return put(out, at, END);
    }
    at = writeStatisticAt(out, at, values, slot);
    if (s === ROW_LATE) return put(out, put(out, at, this.nulls), LATE);
    if (s !== ROW_DONE) throw new RangeError(`row ${block.firstRow + i} is not finished`);
    let offset = slot * block.rowFields;
    for (let k = 0; k < this.writers.length; k++) {
      const w = this.writers[k];
      out[at++] = 44; // ,
      at = w.write(out, at, results, offset);
      offset += w.fields;
    }
    if ((flags[slot] & ROW_FLAG_OUT_OF_ORDER) !== 0) at = put(out, at, OUT_OF_ORDER);
    return put(out, at, END);
  }

  private grow(used: number, need: number): Uint8Array {
    const bigger = new Uint8Array(Math.max(need, this.out.length * 2));
    bigger.set(this.out.subarray(0, used));
    this.out = bigger;
    return bigger;
  }
}

function put(out: Uint8Array, at: number, bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) out[at++] = bytes[i];
  return at;
}

/** Writes all of `bytes` to file descriptor `fd` (a write may take only part). */
export function writeFully(fd: number, bytes: Uint8Array): void {
  for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at);
}

/** Blocks in flight (sent, not yet written) at most per worker: enough to keep the workers busy while the output drains. */
const BLOCKS_IN_FLIGHT_PER_WORKER = 3;

/**
 * What a text worker is started with: the analyses' specs, and when the output is a file, its
 * descriptor and the shared counter of blocks written (a worker writes block `sequence` when the
 * counter says so, then counts it).
 */
export interface TextWorkerData {
  specs: RowTextSpec[];
  fd: number | null;
  written: Int32Array | null;
}

/** A worker's reply to a block: its bytes (no descriptor: the pool writes them), or why it failed. */
export type TextReply = { sequence: number; bytes: Uint8Array | null } | { sequence: number; error: string };

interface InFlight {
  rows: number;
  done: () => void;
  fail: (e: Error) => void;
}

/** Where the text goes: a file descriptor the writers use themselves, or a stream this thread writes. */
export type TextOutput = { fd: number } | { stream: Writable };

/**
 * Text workers and the output: blocks in, NDJSON out in block order. With 0 workers the text is
 * made on the calling thread (the same writer). Once a block is formatted its ring slots are
 * released (`release(rows)`, in block order).
 */
export class ReplayTextPool {
  private readonly workers: Worker[] = [];
  /** Per worker, the keys it has the names of (ids 0 … n − 1). */
  private readonly keysSent: number[] = [];
  private readonly inline: ReplayTextWriter | null;
  /** Blocks sent and not yet formatted, by sequence: rows, and how to settle the promise of their writing. */
  private readonly inFlight = new Map<number, InFlight>();
  private readonly waits: Promise<void>[] = [];
  /** Formatted blocks not yet released (a later one may finish first), with their bytes for a stream; the next to release. */
  private readonly formatted = new Map<number, InFlight & { bytes: Uint8Array | null }>();
  private nextRelease = 0;
  private readonly written: Int32Array | null;
  /** Stream output: the chain of writes, in block order. */
  private writes: Promise<void> = Promise.resolve();
  private turn = 0;
  private failure: Error | null = null;

  constructor(
    specs: readonly RowTextSpec[],
    workers: number,
    private readonly output: TextOutput,
    private readonly release: (rows: number) => void,
  ) {
    const fd = "fd" in output ? output.fd : null;
    this.written = fd === null ? null : new Int32Array(new SharedArrayBuffer(4));
    this.inline = workers === 0 ? new ReplayTextWriter(specs) : null;
    const data: TextWorkerData = { specs: [...specs], fd, written: this.written };
    for (let w = 0; w < workers; w++) this.startWorker(data);
    this.keysSent = new Array<number>(Math.max(1, workers)).fill(0);
  }

  /**
   * Sends a block, with the names of the keys (by id) its worker has not had yet; resolves at once
   * unless too many blocks are in flight (then when the oldest is written).
   */
  submit(block: ReplayTextBlock, keyNames: readonly string[]): Promise<void> | undefined {
    if (this.failure !== null) return Promise.reject(this.failure);
    const w = this.turn;
    this.turn = (w + 1) % this.keysSent.length;
    block.firstKey = this.keysSent[w];
    block.keys = keyNames.slice(this.keysSent[w]);
    this.keysSent[w] = keyNames.length;
    const done = new Promise<void>((resolve, reject) =>
      this.inFlight.set(block.sequence, { rows: block.length, done: resolve, fail: reject }),
    );
    // Failures surface through the awaited promises; this branch only keeps them from going unhandled.
    done.catch(() => {});
    this.waits.push(done);
    if (this.inline !== null) this.onReply(this.inlineText(block));
    else this.workers[w].postMessage(block);
    if (this.waits.length <= BLOCKS_IN_FLIGHT_PER_WORKER * this.keysSent.length) return undefined;
    return this.waits.shift();
  }

  /** Every block written. */
  async finish(): Promise<void> {
    while (this.waits.length > 0) await this.waits.shift();
    await this.writes;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private inlineText(block: ReplayTextBlock): TextReply {
    const bytes = (this.inline as ReplayTextWriter).write(block);
    if ("fd" in this.output) {
      writeFully(this.output.fd, bytes);
      return { sequence: block.sequence, bytes: null };
    }
    return { sequence: block.sequence, bytes: bytes.slice() };
  }

  /**
   * A block formatted (and written, with a descriptor). In block order: its rows are released
   * and, for a stream, its bytes written.
   */
  private onReply(reply: TextReply): void {
    const entry = this.inFlight.get(reply.sequence);
    if (entry === undefined) return;
    if ("error" in reply) {
      this.fail(new Error(`replay text worker: ${reply.error}`));
      return;
    }
    this.inFlight.delete(reply.sequence);
    this.formatted.set(reply.sequence, { ...entry, bytes: reply.bytes });
    for (let next = this.formatted.get(this.nextRelease); next !== undefined; next = this.formatted.get(this.nextRelease)) {
      this.formatted.delete(this.nextRelease++);
      this.release(next.rows);
      const { bytes, done, fail } = next;
      if (bytes === null || !("stream" in this.output)) done();
      else {
        const stream = this.output.stream;
        this.writes = this.writes.then(() => writeStream(stream, bytes));
        this.writes.then(done, fail);
      }
    }
  }

  private startWorker(data: TextWorkerData): void {
    const worker = new Worker(textWorkerScript(), { workerData: data });
    worker.on("message", (reply: TextReply) => this.onReply(reply));
    worker.on("error", (e) => this.fail(e));
    worker.on("exit", (code) => {
      if (this.inFlight.size > 0) this.fail(new Error(`replay text worker exited (code ${code}) with blocks unwritten`));
    });
    this.workers.push(worker);
  }

  private fail(error: Error): void {
    if (this.failure === null) this.failure = error;
    for (const entry of this.inFlight.values()) entry.fail(error);
    this.inFlight.clear();
  }
}

/** Writes `bytes`, resolving once the stream takes more (its drain). */
function writeStream(out: Writable, bytes: Uint8Array): Promise<void> | undefined {
  if (bytes.length === 0 || out.write(bytes)) return undefined;
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    out.once("error", onError);
    out.once("drain", () => {
      out.off("error", onError);
      resolve();
    });
  });
}

function textWorkerScript(): string {
  const root = packageRoot(import.meta.url);
  const path = root === null ? "" : join(root, "dist", "engine", "jobs", "replay-text-worker.js");
  if (root === null || !existsSync(path))
    throw new ConfigError("replay text worker", `${path || "dist/"} not found: run \`npm run build\` first`);
  return path;
}
