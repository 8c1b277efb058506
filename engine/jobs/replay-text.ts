/**
 * Replay's NDJSON lines from blocks of rows in shared memory ({@link ReplayTextBlock}), as bytes:
 * the decimal text of every number is made here, by the analyses' byte writers (operators'
 * rowTextWriter), on a worker thread (replay-text-worker.ts) so that the main thread only reads,
 * parses and routes. The text is byte for byte ReplayOutput's (a test compares them): the same
 * members in the same order, numbers by writeStatisticAt, which gives formatStatistic's text.
 *
 * {@link ReplayTextPool} hands blocks to the text workers in turn, their text going into shared
 * buffers, and writes the text in block order. It holds a few blocks in flight at most and waits
 * for the output, so a slow disk or reader slows the replay instead of growing memory.
 */
import { existsSync, WriteStream } from "node:fs";
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
  type RingColumns,
  STAMP_BYTES,
  STAMP_IN_TEXTS,
  VALUE_TEXT_BYTES,
} from "./replay-blocks.js";
import { writeWithBackpressure } from "./replay-table.js";

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

/** Turns blocks into NDJSON bytes; keeps the keys' JSON text from block to block. */
export class ReplayTextWriter {
  private readonly writers: RowTextWriter[];
  private readonly nulls: Uint8Array;
  private readonly membersMax: number;
  /** `,"key":<key JSON>,"timestamp":` of each key id. */
  private readonly keys: Uint8Array[] = [];

  constructor(specs: readonly RowTextSpec[]) {
    this.writers = specs.map(rowTextWriter);
    this.nulls = utf8(`,${this.writers.map((w) => w.nullJson).join(",")}`);
    this.membersMax = this.writers.reduce((n, w) => n + 1 + w.bytesMax, this.nulls.length);
  }

  /**
   * The block's lines, in row order, each ending in a newline: a view of `into` — or, when they do
   * not fit there, of a new buffer.
   */
  write(block: ReplayTextBlock, into: Uint8Array): Uint8Array {
    block.keys.forEach((name, k) => {
      this.keys[block.firstKey + k] = utf8(`,"key":${JSON.stringify(name)},"timestamp":`);
    });
    const { state, keyIds, stamps, stampLengths } = block.ring;
    let out = into;
    let at = 0;
    for (let i = 0; i < block.length; i++) {
      const slot = (block.slot + i) & block.mask;
      const key = this.keys[keyIds[slot]];
      const stampText = stampLengths[slot] === STAMP_IN_TEXTS ? utf8(block.texts.get(i) as string) : null;
      const errorText = state[slot] === ROW_REJECTED ? utf8(JSON.stringify(block.errors.get(i) ?? null)) : null;
      const need = LINE_BYTES + this.membersMax + key.length + (stampText?.length ?? STAMP_BYTES) + (errorText?.length ?? 0);
      if (at + need > out.length) out = grown(out, at, at + need);
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
    const valueLength = block.ring.valueLengths[slot];
    at = valueLength === 0 ? writeStatisticAt(out, at, values, slot) : writeValueText(out, at, block.ring, slot, valueLength);
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
}

/**
 * A row's value from its cell's text: formatStatistic's text of the value, without formatting it.
 * The cell is a decimal of at most 15 digits (decimalFromBytes read it), so the value is the
 * double nearest that decimal, and toPrecision(15) gives the decimal back: the text is the cell
 * with the sign "+" and the integer part's leading zeros dropped ("0" when it is empty), the
 * fraction's trailing zeros and a bare point dropped, and zero as "0" — except below 1e-6, where
 * toPrecision turns to exponent form: those are formatted from the value.
 */
function writeValueText(out: Uint8Array, at: number, ring: RingColumns, slot: number, length: number): number {
  const text = ring.valueTexts;
  const start = slot * VALUE_TEXT_BYTES;
  const end = start + length;
  let i = start;
  const negative = text[i] === 45;
  if (negative || text[i] === 43) i++;
  while (i < end && text[i] === 48) i++;
  const whole = i;
  while (i < end && text[i] !== 46) i++;
  const point = i;
  let last = end;
  while (last > point + 1 && text[last - 1] === 48) last--;
  const fraction = last > point + 1;
  if (whole === point) {
    if (!fraction) {
      out[at] = 48;
      return at + 1;
    }
    let first = point + 1;
    while (text[first] === 48) first++;
    if (first - point - 1 >= 6) return writeStatisticAt(out, at, ring.values, slot);
  }
  if (negative) out[at++] = 45;
  if (whole === point) out[at++] = 48;
  for (let k = whole; k < point; k++) out[at++] = text[k];
  if (!fraction) return at;
  for (let k = point; k < last; k++) out[at++] = text[k];
  return at;
}

function grown(out: Uint8Array, used: number, need: number): Uint8Array {
  const bigger = new Uint8Array(Math.max(need, out.length * 2));
  bigger.set(out.subarray(0, used));
  return bigger;
}

function put(out: Uint8Array, at: number, bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) out[at++] = bytes[i];
  return at;
}

/** Blocks in flight (sent, not yet written) at most per text thread: enough to keep them busy while the output drains. */
const BLOCKS_IN_FLIGHT_PER_THREAD = 3;
/** Output bytes per row a block's buffer is first sized for (the pool learns the real figure). */
const FIRST_BYTES_PER_ROW = 320;

/** A block for a text worker, and the shared buffer its text goes in. */
export interface TextRequest {
  block: ReplayTextBlock;
  output: SharedArrayBuffer;
}

/**
 * A text worker's reply: the length of the block's text in the request's buffer — or, when it
 * did not fit, the text itself (transferred) — or why it failed.
 */
export type TextReply = { sequence: number; length: number; overflow: Uint8Array | null } | { sequence: number; error: string };

interface InFlight {
  rows: number;
  output: SharedArrayBuffer;
  done: () => void;
  fail: (e: Error) => void;
}

/**
 * The text threads and the output: blocks in, NDJSON out in block order. Each block goes to the
 * next text worker in turn (with 0 workers the text is made on this thread, by the same writer),
 * with a shared buffer for its text from a pool; replies are taken in block order: the block's
 * ring rows are released and its text written. A file stream gets the shared buffer itself and
 * hands it back once written (it keeps no chunk after its callback); any other stream gets a copy.
 */
export class ReplayTextPool {
  private readonly workers: Worker[] = [];
  private readonly inline: ReplayTextWriter | null;
  /** Per text thread, the keys it has the names of (ids 0 … n − 1). */
  private readonly keysSent: number[];
  private turn = 0;
  private readonly spare: SharedArrayBuffer[] = [];
  private bytesPerRow = FIRST_BYTES_PER_ROW;
  /** Blocks sent and not yet written, by sequence; replies waiting for an earlier one; the next to write. */
  private readonly inFlight = new Map<number, InFlight>();
  private readonly replies = new Map<number, { length: number; overflow: Uint8Array | null }>();
  private nextWrite = 0;
  private readonly waits: Promise<void>[] = [];
  private readonly zeroCopy: boolean;
  private failure: Error | null = null;

  constructor(
    specs: readonly RowTextSpec[],
    workers: number,
    private readonly output: Writable,
    private readonly release: (rows: number) => void,
  ) {
    this.zeroCopy = output instanceof WriteStream;
    this.inline = workers === 0 ? new ReplayTextWriter(specs) : null;
    for (let w = 0; w < workers; w++) this.workers.push(this.startWorker(specs));
    this.keysSent = new Array<number>(Math.max(1, workers)).fill(0);
  }

  /**
   * Sends a block, with the names of the keys (by id) its thread has not had yet; resolves at once
   * unless too many blocks are in flight (then when the oldest is written).
   */
  submit(block: ReplayTextBlock, keyNames: readonly string[]): Promise<void> | undefined {
    if (this.failure !== null) return Promise.reject(this.failure);
    const w = this.turn;
    this.turn = (w + 1) % this.keysSent.length;
    block.firstKey = this.keysSent[w];
    block.keys = keyNames.slice(this.keysSent[w]);
    this.keysSent[w] = keyNames.length;
    const output = this.outputBuffer(Math.ceil(block.length * this.bytesPerRow * 1.25) + 65_536);
    const done = new Promise<void>((resolve, reject) =>
      this.inFlight.set(block.sequence, { rows: block.length, output, done: resolve, fail: reject }),
    );
    // Failures surface through the awaited promises; this branch only keeps them from going unhandled.
    done.catch(() => {});
    this.waits.push(done);
    if (this.inline !== null) {
      const bytes = this.inline.write(block, new Uint8Array(output));
      this.onReply({ sequence: block.sequence, length: bytes.length, overflow: bytes.buffer === output ? null : bytes });
    } else this.workers[w].postMessage({ block, output } satisfies TextRequest);
    if (this.waits.length <= BLOCKS_IN_FLIGHT_PER_THREAD * this.keysSent.length) return undefined;
    return this.waits.shift();
  }

  /** Every block written. */
  async finish(): Promise<void> {
    while (this.waits.length > 0) await this.waits.shift();
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private outputBuffer(bytes: number): SharedArrayBuffer {
    const found = this.spare.findIndex((b) => b.byteLength >= bytes);
    if (found >= 0) return this.spare.splice(found, 1)[0];
    return new SharedArrayBuffer(2 ** Math.ceil(Math.log2(bytes)));
  }

  /** A block's text is made: in block order, release its rows and write it. */
  private onReply(reply: TextReply): void {
    if ("error" in reply) {
      this.fail(new Error(`replay text worker: ${reply.error}`));
      return;
    }
    this.replies.set(reply.sequence, reply);
    for (let r = this.replies.get(this.nextWrite); r !== undefined; r = this.replies.get(this.nextWrite)) {
      const entry = this.inFlight.get(this.nextWrite) as InFlight;
      this.replies.delete(this.nextWrite);
      this.inFlight.delete(this.nextWrite++);
      this.release(entry.rows);
      if (entry.rows > 0) this.bytesPerRow = Math.max(this.bytesPerRow * 0.9, r.length / entry.rows);
      this.write(entry, r.overflow ?? new Uint8Array(entry.output, 0, r.length));
    }
  }

  /** A block's text to the output; its buffer back to the pool once the output is done with it. */
  private write(entry: InFlight, bytes: Uint8Array): void {
    const shared = bytes.buffer === entry.output;
    if (this.zeroCopy && shared) {
      this.output.write(bytes, (e) => {
        if (e) {
          this.fail(e);
          entry.fail(e);
        } else {
          this.spare.push(entry.output);
          entry.done();
        }
      });
      return;
    }
    // A stream may hand a chunk on and keep it: it gets its own copy.
    const copy = shared ? Buffer.from(bytes) : bytes;
    this.spare.push(entry.output);
    const drained = copy.length === 0 ? undefined : writeWithBackpressure(this.output, copy);
    if (drained === undefined) entry.done();
    else drained.then(entry.done, entry.fail);
  }

  private startWorker(specs: readonly RowTextSpec[]): Worker {
    const worker = new Worker(textWorkerScript(), { workerData: { specs: [...specs] } });
    worker.on("message", (reply: TextReply) => this.onReply(reply));
    worker.on("error", (e) => this.fail(e));
    worker.on("exit", (code) => {
      if (this.inFlight.size > 0) this.fail(new Error(`replay text worker exited (code ${code}) with blocks unwritten`));
    });
    return worker;
  }

  private fail(error: Error): void {
    if (this.failure === null) this.failure = error;
    for (const entry of this.inFlight.values()) entry.fail(error);
    this.inFlight.clear();
  }
}

function textWorkerScript(): string {
  const root = packageRoot(import.meta.url);
  const path = root === null ? "" : join(root, "dist", "engine", "jobs", "replay-text-worker.js");
  if (root === null || !existsSync(path))
    throw new ConfigError("replay text worker", `${path || "dist/"} not found: run \`npm run build\` first`);
  return path;
}
