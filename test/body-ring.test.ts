import { describe, expect, it } from "vitest";
import { allocateBodyRing, BodyRingReader, BodyRingWriter, type LentBody } from "../engine/jobs/ingest/body-ring.js";
import { SeededRandom } from "../engine/core/mod.js";

/** A body of `n` bytes whose content names it (seed). */
function bodyOf(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (seed * 31 + i * 7) & 0xff);
}

describe("body ring", () => {
  it("hands over bodies byte for byte, settled in any order, wrapping round the ring many times; a lent body is never overwritten", () => {
    const memory = allocateBodyRing(4096);
    const writer = new BodyRingWriter(memory);
    const reader = new BodyRingReader(memory);
    const rng = new SeededRandom(5);
    const lent: Array<{ body: LentBody; expected: Uint8Array }> = [];
    let written = 0;
    let refused = 0;
    for (let seed = 0; seed < 2000; seed++) {
      const expected = bodyOf(1 + Math.floor(rng.next() * 900), seed);
      const placed = writer.write(expected);
      if (placed === null) refused++;
      else {
        written++;
        lent.push({ body: reader.lend(placed), expected });
      }
      // Settle a random lent body now and then (out of order: two tables, retries, spills); it
      // reads as written after every write made while it was lent.
      while (lent.length > 0 && rng.next() < 0.5) {
        const [l] = lent.splice(Math.floor(rng.next() * lent.length), 1);
        expect(Buffer.compare(l.body.bytes, l.expected), `body ${seed}`).toBe(0);
        l.body.release();
        l.body.release(); // twice: no effect
      }
    }
    expect(written).toBeGreaterThan(1000);
    expect(refused).toBeGreaterThan(0);
    for (const l of lent) {
      expect(Buffer.compare(l.body.bytes, l.expected)).toBe(0);
      l.body.release();
    }
    expect(reader.outstanding).toBe(0);
    expect(writer.write(bodyOf(2048, 1))).not.toBeNull();
  });

  it("frees nothing while the oldest body is lent, however many younger ones settle", () => {
    const memory = allocateBodyRing(1024);
    const writer = new BodyRingWriter(memory);
    const reader = new BodyRingReader(memory);
    const first = writer.write(bodyOf(300, 1));
    const second = writer.write(bodyOf(300, 2));
    const third = writer.write(bodyOf(300, 3));
    if (first === null || second === null || third === null) throw new Error("the first three bodies fit");
    const [a, b, c] = [first, second, third].map((x) => reader.lend(x));
    b.release();
    c.release();
    expect(writer.write(bodyOf(200, 4))).toBeNull();
    a.release();
    const fourth = writer.write(bodyOf(200, 4));
    // 124 bytes were left after the third: the fourth starts at the ring's start.
    expect(fourth?.at).toBe(0);
  });

  it("refuses a body larger than half the ring (it is transferred instead); sizes are powers of two", () => {
    const writer = new BodyRingWriter(allocateBodyRing(256));
    expect(writer.write(bodyOf(129, 1))).toBeNull();
    expect(writer.write(bodyOf(128, 1))).not.toBeNull();
    expect(() => allocateBodyRing(1000)).toThrow(RangeError);
  });
});
