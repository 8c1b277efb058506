/**
 * Replay's NDJSON lines from blocks of rows in shared memory ({@link ReplayTextBlock}), as bytes:
 * the decimal text of every number is made here, by the analyses' byte writers (operators'
 * rowTextWriter), on a worker thread (replay-text-worker.ts) so that the main thread only reads,
 * parses and routes. The text is byte for byte ReplayOutput's (a test compares them): the same
 * members in the same order, numbers by writeStatisticAt, which gives formatStatistic's text.
 *
 * {@link ReplayTextPool} hands blocks to the text worker and has them written in block order: to a
 * file stream's descriptor by the worker itself (no bytes cross threads), to any other stream by
 * this thread. It holds a few blocks in flight at most and waits for the output, so a slow disk or
 * reader slows the replay instead of growing memory.
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
  /** `,"key":<key JSON>,"timestamp":` of each key id. */
  private readonly keys: Uint8Array[] = [];
  /** Output buffers (two: a block's bytes can be written out while the next block's are made in the other). */
  private readonly buffers: Uint8Array[] = [new Uint8Array(1 << 20), new Uint8Array(1 << 20)];

  constructor(specs: readonly RowTextSpec[]) {
    this.writers = specs.map(rowTextWriter);
    this.nulls = utf8(`,${this.writers.map((w) => w.nullJson).join(",")}`);
    this.membersMax = this.writers.reduce((n, w) => n + 1 + w.bytesMax, this.nulls.length);
  }

  /**
   * The block's lines, in row order, each ending in a newline: a view of this writer's output
   * buffer `buffer` (0 or 1), valid until the next call with that buffer.
   */
  write(block: ReplayTextBlock, buffer = 0): Uint8Array {
    block.keys.forEach((name, k) => {
      this.keys[block.firstKey + k] = utf8(`,"key":${JSON.stringify(name)},"timestamp":`);
    });
    const { keyIds, stamps, stampLengths } = block.ring;
    let out = this.buffers[buffer];
    let at = 0;
    for (let i = 0; i < block.length; i++) {
      const slot = (block.slot + i) & block.mask;
      const key = this.keys[keyIds[slot]];
      const stampText = stampLengths[slot] === STAMP_IN_TEXTS ? utf8(block.texts.get(i) as string) : null;
      const error = block.errors.get(i);
      const errorText = error === undefined ? null : utf8(JSON.stringify(error));
      const need = LINE_BYTES + this.membersMax + key.length + (stampText?.length ?? STAMP_BYTES) + (errorText?.length ?? 0);
      if (at + need > out.length) out = this.grow(buffer, at, at + need);
      at = put(out, at, ROW);
      at = writeInteger(out, at, block.firstRow + i);
      out.set(key, at); // longer than a put loop pays for (≈ 16 bytes)
      at += key.length;
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

  private grow(buffer: number, used: number, need: number): Uint8Array {
    const out = this.buffers[buffer];
    const bigger = new Uint8Array(Math.max(need, out.length * 2));
    bigger.set(out.subarray(0, used));
    this.buffers[buffer] = bigger;
    return bigger;
  }
}

function put(out: Uint8Array, at: number, bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) out[at++] = bytes[i];
  return at;
}

/** Blocks in flight (sent, not yet written) at most: enough to keep the text thread busy while the output drains. */
const BLOCKS_IN_FLIGHT = 4;

/** What the text worker is started with: the analyses' specs, and the output's file descriptor when it writes the file itself. */
export interface TextWorkerData {
  specs: RowTextSpec[];
  fd: number | null;
}

/**
 * The text worker's reply to a block, once its bytes are written (a descriptor) or made (else: they
 * come with the reply, for the pool to write), or why it failed.
 */
export type TextReply = { sequence: number; bytes: Uint8Array | null } | { sequence: number; error: string };

/** Where the text goes: a file descriptor the text thread writes itself, or a stream this thread writes. */
export type TextOutput = { fd: number } | { stream: Writable };

/**
 * The text thread and the output: blocks in, NDJSON out in block order. With `inline` the text is
 * made on the calling thread (the same writer), for a replay without threads. A block's ring
 * slots are released (`release(rows)`) once its text is made, in block order.
 */
export class ReplayTextPool {
  private readonly worker: Worker | null;
  private readonly inline: ReplayTextWriter | null;
  /** The keys the writer has the names of (ids 0 … n − 1). */
  private keysSent = 0;
  /** Blocks sent and not yet replied to, oldest first: rows, and how to settle the promise of their writing. */
  private readonly inFlight: Array<{ rows: number; done: () => void; fail: (e: Error) => void }> = [];
  private readonly waits: Promise<void>[] = [];
  /** Stream output: the chain of writes, in block order. */
  private writes: Promise<void> = Promise.resolve();
  private failure: Error | null = null;

  constructor(
    specs: readonly RowTextSpec[],
    inline: boolean,
    private readonly output: TextOutput,
    private readonly release: (rows: number) => void,
  ) {
    this.inline = inline ? new ReplayTextWriter(specs) : null;
    this.worker = inline ? null : this.startWorker({ specs: [...specs], fd: "fd" in output ? output.fd : null });
  }

  /**
   * Sends a block, with the names of the keys (by id) the writer has not had yet; resolves at once
   * unless too many blocks are in flight (then when the oldest is written).
   */
  submit(block: ReplayTextBlock, keyNames: readonly string[]): Promise<void> | undefined {
    if (this.failure !== null) return Promise.reject(this.failure);
    block.firstKey = this.keysSent;
    block.keys = keyNames.slice(this.keysSent);
    this.keysSent = keyNames.length;
    const done = new Promise<void>((resolve, reject) => this.inFlight.push({ rows: block.length, done: resolve, fail: reject }));
    // Failures surface through the awaited promises; this branch only keeps them from going unhandled.
    done.catch(() => {});
    this.waits.push(done);
    if (this.inline !== null) this.onReply(this.inlineText(block));
    else this.worker?.postMessage(block);
    if (this.waits.length <= BLOCKS_IN_FLIGHT) return undefined;
    return this.waits.shift();
  }

  /** Every block written. */
  async finish(): Promise<void> {
    while (this.waits.length > 0) await this.waits.shift();
    await this.writes;
  }

  async close(): Promise<void> {
    await this.worker?.terminate();
  }

  private inlineText(block: ReplayTextBlock): TextReply {
    const bytes = (this.inline as ReplayTextWriter).write(block);
    if ("fd" in this.output) {
      writeFully(this.output.fd, bytes);
      return { sequence: block.sequence, bytes: null };
    }
    return { sequence: block.sequence, bytes: bytes.slice() };
  }

  /** The oldest block is done (written, with a descriptor): release its rows; write its bytes when this thread writes. */
  private onReply(reply: TextReply): void {
    const entry = this.inFlight.shift();
    if (entry === undefined) return;
    if ("error" in reply) {
      this.fail(new Error(`replay text worker: ${reply.error}`), entry.fail);
      return;
    }
    this.release(entry.rows);
    const bytes = reply.bytes;
    if (bytes === null || !("stream" in this.output)) {
      entry.done();
      return;
    }
    const stream = this.output.stream;
    this.writes = this.writes.then(() => writeStream(stream, bytes));
    this.writes.then(entry.done, entry.fail);
  }

  private startWorker(data: TextWorkerData): Worker {
    const worker = new Worker(textWorkerScript(), { workerData: data });
    worker.on("message", (reply: TextReply) => this.onReply(reply));
    worker.on("error", (e) => this.fail(e));
    worker.on("exit", (code) => {
      if (this.inFlight.length > 0) this.fail(new Error(`replay text worker exited (code ${code}) with blocks unwritten`));
    });
    return worker;
  }

  private fail(error: Error, first?: (e: Error) => void): void {
    if (this.failure === null) this.failure = error;
    first?.(error);
    for (const entry of this.inFlight.splice(0)) entry.fail(error);
  }
}

/** Writes all of `bytes` to file descriptor `fd` (a write may take only part). */
export function writeFully(fd: number, bytes: Uint8Array): void {
  for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at);
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
