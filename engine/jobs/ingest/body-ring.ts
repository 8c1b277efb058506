/**
 * An ingest worker's ClickHouse insert bodies (clickhouse-rows.ts: a table's Native blocks of up
 * to a second) to the main thread's sink through shared memory: the worker copies each body into
 * a ring of bytes both threads see and posts where it is; the main thread hands the sink a view of
 * it, which the sink sends as it is (ClickHouseSink.insertEncoded with `sendNow`), and releases
 * the body's bytes once the insert settles — durable (inserted or spilled), or refused.
 *
 * Why not transfer each body's ArrayBuffer, as before: the reason frame-ring.ts gives for score
 * frames. Every buffer a thread receives is external memory to its V8 heap, and Node 20's V8
 * counts the external memory allocated since the last mark-compact against the old generation's
 * limit; the bodies are about 500 bytes per record (both tables), 20–50 MB a second at the
 * bench's rates, so the main thread, whose own heap is ~25 MB, ran a mark-compact every few
 * seconds (9–12 per latency phase of `bench e2e`, pauses of 25–200 ms, a fifth of its CPU). The
 * ring's memory is allocated once; the worker no longer allocates (and faults in) a fresh
 * buffer per body either.
 *
 * One writer (the worker), one reader (the main thread). Bodies are written in order but settle
 * in any order (two tables, retries, spills): the reader releases the bytes up to the oldest body
 * not settled yet. Counters run modulo 2^30 (RING_COUNTER_MASK); the capacity is a power of two below
 * that, so a counter's offset in the ring is `counter & (capacity − 1)`. A body never wraps: when
 * it does not fit before the end the writer skips to the start. A body larger than half the ring,
 * or one the ring has no room for now (the sink that far behind), is transferred as before:
 * nothing waits, nothing is lost.
 */
import { allocateRingMemory, RING_COUNTER_MASK, RING_RELEASED, type RingMemory } from "./frame-ring.js";

/**
 * 64 MiB a worker: 1.3 s of both tables' bodies at 100 000 records/s on one worker (~500 bytes a
 * record), where a body settles within about half a second of being written; a body larger than
 * half of it, or one that finds no room, is transferred. Resident once the ring has gone round,
 * so it counts in the engine's memory (linewatch chaos bounds the RSS).
 */
export const BODY_RING_BYTES = 64 << 20;

/** A body in the ring: its offset and length, and the writer's counter after it (what releasing it means). */
export interface RingBody {
  at: number;
  length: number;
  end: number;
}

export function allocateBodyRing(bytes = BODY_RING_BYTES): RingMemory {
  return allocateRingMemory(bytes, "body");
}

/** The worker's side. */
export class BodyRingWriter {
  /** A Buffer: its `copy` into shared memory runs ~1.4× the speed of Uint8Array `set` (2.8 against 2.0 GB/s here). */
  private readonly bytes: Buffer;
  private readonly control: Int32Array;
  private written = 0;

  constructor(memory: RingMemory) {
    this.bytes = Buffer.from(memory.bytes);
    this.control = new Int32Array(memory.control);
  }

  /** Copies `body` into the ring; null, with nothing written, when it does not fit now (or is over half the ring). */
  write(body: Uint8Array): RingBody | null {
    const capacity = this.bytes.length;
    const n = body.length;
    const start = this.written;
    const free = capacity - ((start - Atomics.load(this.control, RING_RELEASED)) & RING_COUNTER_MASK);
    const offset = start & (capacity - 1);
    // A body is contiguous: skip the ring's tail when it does not fit there.
    const skip = offset + n > capacity ? capacity - offset : 0;
    if (n > capacity >>> 1 || skip + n > free) return null;
    const at = (offset + skip) & (capacity - 1);
    Buffer.from(body.buffer, body.byteOffset, n).copy(this.bytes, at);
    this.written = (start + skip + n) & RING_COUNTER_MASK;
    return { at, length: n, end: this.written };
  }
}

/** A body lent to the sink: its bytes (shared memory, not to be kept past `release`), and the release. */
export interface LentBody {
  bytes: Uint8Array;
  release(): void;
}

/** The main thread's side. */
export class BodyRingReader {
  private readonly control: Int32Array;
  private readonly ring: SharedArrayBuffer;
  /** Bodies lent and not released yet, in the writer's order; `settled`: released by their user, waiting for an older one. */
  private readonly lent: Array<{ end: number; settled: boolean }> = [];

  constructor(memory: RingMemory) {
    this.control = new Int32Array(memory.control);
    this.ring = memory.bytes;
  }

  /** Bodies lent and not released. */
  get outstanding(): number {
    return this.lent.length;
  }

  /** The body's bytes, a view of the ring until `release` (once; bodies must be lent in the order the worker posted them). */
  lend(body: RingBody): LentBody {
    const entry = { end: body.end, settled: false };
    this.lent.push(entry);
    return {
      bytes: new Uint8Array(this.ring, body.at, body.length),
      release: () => {
        if (entry.settled) return;
        entry.settled = true;
        this.advance();
      },
    };
  }

  /** The writer may reuse the bytes of every settled body before the oldest unsettled one. */
  private advance(): void {
    let end = -1;
    while (this.lent.length > 0 && this.lent[0].settled) end = (this.lent.shift() as { end: number }).end;
    if (end >= 0) Atomics.store(this.control, RING_RELEASED, end);
  }
}
