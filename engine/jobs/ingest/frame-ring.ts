/**
 * Score frames from an ingest worker to the main thread through shared memory: the worker copies
 * each batch's frames into a ring of bytes both threads see and posts their offsets; the main
 * thread hands each to the live server (which copies what it sends or keeps) and then releases
 * the batch's bytes for the worker to write again.
 *
 * Why not transfer each frame's ArrayBuffer: every buffer a thread receives is external memory to
 * its V8 heap, and V8 (Node 20's, `Heap::OldGenerationSpaceAvailable`) counts the external memory
 * allocated since the last mark-compact against the old generation's limit. The frames of the
 * bench's half load, tens of MB a second, used up that room within a second while the main
 * thread, allocating little, scavenged rarely (a scavenge frees young buffers): V8 then started
 * incremental marking and a mark-compact every 0.3–0.9 s, each a pause of 4–17 ms that held every
 * frame behind it, and the less the thread allocated the more often it happened. The ring's
 * memory is allocated once.
 *
 * One writer (the worker), one reader (the main thread), in the order of the worker's messages.
 * Counters run modulo 2^30 (RING_COUNTER_MASK); the capacity is a power of two below that, so a
 * counter's offset in the ring is `counter & (capacity − 1)`. A frame never wraps: when it does
 * not fit before the end the writer skips to the start. When the ring has no room for a whole
 * batch — the main thread is that far behind — the batch is transferred as before: nothing waits,
 * nothing is lost, order is kept (one message each, in order).
 */

import { lendFrameBuffer } from "../../../connectors/live/mod.js";

/** 8 MiB: several hundred of the bench's batches at half load; a batch larger than half of it is transferred. */
export const FRAME_RING_BYTES = 8 << 20;
/** Counters run modulo 2^30 (this ring's and body-ring.ts's). */
export const RING_COUNTER_MASK = (1 << 30) - 1;
/** Int32 slot of the reader's counter: bytes released so far (mod 2^30). */
export const RING_RELEASED = 0;

/** A ring's shared memory (frames here, ClickHouse bodies in body-ring.ts), made by the main thread for one worker (workerData). */
export interface RingMemory {
  bytes: SharedArrayBuffer;
  control: SharedArrayBuffer;
}

/** A batch's frames in the ring: offset and length of each, and the writer's counter after the batch (what releasing it means). */
export interface RingFrames {
  at: number[];
  lengths: number[];
  end: number;
}

export function allocateFrameRing(bytes = FRAME_RING_BYTES): RingMemory {
  return allocateRingMemory(bytes, "frame");
}

/** A ring of `bytes` (a power of two below the counters' modulus) and its control words; `what` names it in the error. */
export function allocateRingMemory(bytes: number, what: string): RingMemory {
  if (!Number.isInteger(Math.log2(bytes)) || bytes < 64 || bytes > 1 << 29)
    throw new RangeError(`a ${what} ring's size must be a power of two in 64..2^29 bytes, got ${bytes}`);
  return { bytes: new SharedArrayBuffer(bytes), control: new SharedArrayBuffer(16) };
}

/** The worker's side. */
export class FrameRingWriter {
  private readonly bytes: Uint8Array;
  private readonly control: Int32Array;
  private written = 0;

  constructor(memory: RingMemory) {
    this.bytes = new Uint8Array(memory.bytes);
    this.control = new Int32Array(memory.control);
  }

  /** Copies the frames into the ring; null, with nothing written, when they do not all fit now. */
  write(frames: readonly Uint8Array[]): RingFrames | null {
    const capacity = this.bytes.length;
    const start = this.written;
    const free = capacity - ((start - Atomics.load(this.control, RING_RELEASED)) & RING_COUNTER_MASK);
    let w = start;
    const at: number[] = [];
    const lengths: number[] = [];
    for (const f of frames) {
      const offset = w & (capacity - 1);
      // A frame is contiguous: skip the ring's tail when it does not fit there.
      const skip = offset + f.length > capacity ? capacity - offset : 0;
      if (((w + skip + f.length - start) & RING_COUNTER_MASK) > free || f.length > capacity >>> 1) return null;
      w = (w + skip) & RING_COUNTER_MASK;
      at.push(w & (capacity - 1));
      lengths.push(f.length);
      w = (w + f.length) & RING_COUNTER_MASK;
    }
    for (let i = 0; i < frames.length; i++) this.bytes.set(frames[i], at[i]);
    this.written = w;
    return { at, lengths, end: w };
  }
}

/**
 * The main thread's side. A frame is handed out as a copy in a scratch buffer of this thread's,
 * rewritten by the next frame: the live server's MessagePack encoder copied a frame viewing shared
 * memory 7× slower than one in an ordinary buffer (7.6 against 1.1 µs for 30 KB, where one copy
 * out of the ring costs 1.0).
 */
export class FrameRingReader {
  private readonly control: Int32Array;
  private readonly ring: Uint8Array;
  private scratch = new Uint8Array(0);

  constructor(memory: RingMemory) {
    this.control = new Int32Array(memory.control);
    this.ring = new Uint8Array(memory.bytes);
  }

  /** Frame i of a batch, valid until the next call (its buffer is lent: ScoreFrameMessage.lasting copies it). */
  frame(batch: RingFrames, i: number): Uint8Array {
    const at = batch.at[i];
    const n = batch.lengths[i];
    if (this.scratch.length < n) {
      this.scratch = new Uint8Array(Math.max(n, 2 * this.scratch.length, 64 << 10));
      lendFrameBuffer(this.scratch.buffer);
    }
    this.scratch.set(this.ring.subarray(at, at + n));
    return this.scratch.subarray(0, n);
  }

  /** The batch's bytes (and those of every batch before it) may be written again. */
  release(batch: RingFrames): void {
    Atomics.store(this.control, RING_RELEASED, batch.end);
  }
}
