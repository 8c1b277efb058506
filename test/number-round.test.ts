/** roundStatistics against Number(v.toPrecision(15)) — what the replay's text stands for — on random and adversarial doubles. */
import { describe, expect, it } from "vitest";
import { roundStatistics } from "../operators/number-format.js";

function reference(v: number): number {
  return Number.isFinite(v) ? Number(v.toPrecision(15)) : v;
}

function differences(values: Float64Array): string[] {
  const want = Array.from(values, reference);
  const got = values.slice();
  roundStatistics(got, 0, got.length);
  const out: string[] = [];
  got.forEach((g, i) => {
    if (!Object.is(g, want[i]) && out.length < 10) out.push(`${values[i]}: ${g}, toPrecision ${want[i]}`);
  });
  return out;
}

describe("roundStatistics - 15 significant digits without the text", () => {
  it("equals Number(toPrecision(15)) on random doubles of every decade and sign", () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const values = new Float64Array(400_000);
    for (let i = 0; i < values.length; i++) {
      const mantissa = random() * 10;
      const exponent = Math.floor(random() * 40) - 20;
      values[i] = (random() < 0.5 ? -1 : 1) * mantissa * 10 ** exponent;
    }
    expect(differences(values)).toEqual([]);
  });

  it("equals it on ties, decade edges, integers, tiny, huge and non-finite values", () => {
    const edge: number[] = [
      0,
      -0,
      Number.NaN,
      Infinity,
      -Infinity,
      1,
      -1,
      1e15,
      1e15 - 1,
      999_999_999_999_999.5,
      1e-6,
      9.99999999999999e-7,
    ];
    for (let e = -8; e <= 16; e++) {
      const d = 10 ** e;
      edge.push(d, d * (1 - 2 ** -52), d * (1 + 2 ** -52), 9.999999999999995 * d, 1.000000000000005 * d, 0.5 * d + 0.5);
    }
    // Values whose 16th digit is a 5: x · 10^k lands on or next to one half.
    for (let i = 0; i < 2000; i++) edge.push(Number(`1.2345678901234${i % 10}5e${(i % 30) - 15}`), 0.1 + i * 1e-16, i / 3, i / 7 + 0.05);
    expect(differences(Float64Array.from(edge))).toEqual([]);
  });
});
