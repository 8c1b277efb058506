import { describe, expect, it } from "vitest";
import { allocateFrameRing, FrameRingReader, FrameRingWriter } from "../engine/jobs/ingest/frame-ring.js";
import { ScoreFrameMessage } from "../connectors/live/mod.js";

/** A frame of `n` bytes whose content names it (seed). */
function frameOf(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (seed * 31 + i * 7) & 0xff);
}

describe("frame ring", () => {
  it("hands over batches byte for byte, wrapping round the ring many times, in order", () => {
    const memory = allocateFrameRing(1024);
    const writer = new FrameRingWriter(memory);
    const reader = new FrameRingReader(memory);
    let seed = 0;
    for (let round = 0; round < 200; round++) {
      const frames = [frameOf(1 + ((round * 37) % 200), seed++), frameOf(1 + ((round * 53) % 150), seed++)];
      const batch = writer.write(frames);
      expect(batch, `round ${round}`).not.toBeNull();
      if (batch === null) return;
      frames.forEach((f, i) => expect(reader.frame(batch, i)).toEqual(f));
      reader.release(batch);
    }
  });

  it("refuses a batch that does not fit until the reader releases, writing nothing meanwhile", () => {
    const memory = allocateFrameRing(256);
    const writer = new FrameRingWriter(memory);
    const reader = new FrameRingReader(memory);
    const first = writer.write([frameOf(100, 1)]);
    const second = writer.write([frameOf(100, 2)]);
    expect(first).not.toBeNull();
    expect(second).not.toBeNull();
    // 200 of 256 bytes held: a batch of 100 does not fit (nor would its tail skip).
    expect(writer.write([frameOf(100, 3)])).toBeNull();
    if (first === null || second === null) return;
    expect(reader.frame(second, 0)).toEqual(frameOf(100, 2));
    reader.release(first);
    const third = writer.write([frameOf(100, 3)]);
    expect(third).not.toBeNull();
    if (third === null) return;
    // The third did not fit in the 56-byte tail: it starts at the ring's start, the second is intact.
    expect(third.at[0]).toBe(0);
    expect(reader.frame(second, 0)).toEqual(frameOf(100, 2));
    expect(reader.frame(third, 0)).toEqual(frameOf(100, 3));
  });

  it("refuses a frame larger than half the ring (it is transferred instead)", () => {
    const writer = new FrameRingWriter(allocateFrameRing(256));
    expect(writer.write([frameOf(129, 1)])).toBeNull();
    expect(writer.write([frameOf(128, 1)])).not.toBeNull();
  });

  it("sizes: a power of two only", () => {
    expect(() => allocateFrameRing(1000)).toThrow(RangeError);
  });

  it("a message kept past the publish copies a frame viewing shared memory, and only that", () => {
    const memory = allocateFrameRing(256);
    const writer = new FrameRingWriter(memory);
    const batch = writer.write([frameOf(50, 9)]);
    if (batch === null) throw new Error("no room");
    const reader = new FrameRingReader(memory);
    const lent = new ScoreFrameMessage(reader.frame(batch, 0));
    const kept = lent.lasting();
    expect(kept).not.toBe(lent);
    expect(kept.frame).toEqual(frameOf(50, 9));
    // The reader's next frame rewrites the lent bytes: the kept copy keeps its own.
    const next = writer.write([frameOf(50, 10)]);
    if (next === null) throw new Error("no room");
    reader.frame(next, 0);
    expect(lent.frame).toEqual(frameOf(50, 10));
    expect(kept.frame).toEqual(frameOf(50, 9));
    const shared = new ScoreFrameMessage(new Uint8Array(memory.bytes, 0, 8));
    expect(shared.lasting()).not.toBe(shared);
    const own = new ScoreFrameMessage(frameOf(10, 1));
    expect(own.lasting()).toBe(own);
  });

  it("a kept copy replaced by the next one lends it its bytes; a caller's own message is never written", () => {
    const memory = allocateFrameRing(1024);
    const writer = new FrameRingWriter(memory);
    const reader = new FrameRingReader(memory);
    const lent = (seed: number, n: number): ScoreFrameMessage => {
      const batch = writer.write([frameOf(n, seed)]);
      if (batch === null) throw new Error("no room");
      const m = new ScoreFrameMessage(reader.frame(batch, 0));
      reader.release(batch);
      return m;
    };
    const first = lent(1, 60).lasting();
    const second = lent(2, 40).lasting(first);
    expect(second.frame).toEqual(frameOf(40, 2));
    expect(second.frame.buffer).toBe(first.frame.buffer);
    const own = new ScoreFrameMessage(frameOf(30, 4));
    const third = lent(5, 30).lasting(own);
    expect(third.frame).toEqual(frameOf(30, 5));
    expect(own.frame).toEqual(frameOf(30, 4));
  });
});
