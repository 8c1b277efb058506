/**
 * Reference histograms and PSI against independent references: hand cases, numpy's quantiles and
 * a numpy PSI on the same counts, and the sliding window against a recomputation from scratch at
 * every step. Corrupt reference documents get a typed error naming the field.
 */
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { ModelLoadError, SeededRandom } from "../engine/core/mod.js";
import {
  buildReferenceHistograms,
  parseReferenceHistograms,
  PSI_SMOOTHING,
  psiFromCounts,
  REFERENCE_BINS_MAX,
  REFERENCE_FEATURES_MAX,
  ReferenceHistogramError,
  type ReferenceHistograms,
  referenceToJson,
  referenceToText,
  SlidingPsi,
} from "../operators/drift/mod.js";

const numpy = (() => {
  try {
    execFileSync("/usr/bin/python3", ["-c", "import numpy"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

function python(script: string, input: string): string {
  return execFileSync("/usr/bin/python3", ["-c", script], { input, encoding: "utf8", maxBuffer: 64 << 20 });
}

describe("reference histograms", () => {
  it("puts interior edges at the inverted-CDF quantiles, bins right-closed with open ends (hand case)", () => {
    const ref = buildReferenceHistograms(
      Float64Array.from({ length: 10 }, (_, i) => i + 1),
      10,
      ["x"],
      5,
    );
    expect(Array.from(ref.features[0].edges)).toEqual([2, 4, 6, 8]);
    expect(Array.from(ref.features[0].counts)).toEqual([2, 2, 2, 2, 2]);
    expect(ref.rows).toBe(10);
  });

  it("merges equal edges (ties) and gives a constant feature one bin plus the two open ends", () => {
    const ties = buildReferenceHistograms([0, 0, 0, 0, 0, 0, 1, 2, 3, 4], 10, ["t"], 10);
    expect(Array.from(ties.features[0].edges)).toEqual([0, 1, 2, 3]);
    expect(Array.from(ties.features[0].counts)).toEqual([6, 1, 1, 1, 1]);
    const constant = buildReferenceHistograms(new Float64Array(7).fill(5), 7, ["c"], 10).features[0];
    expect(constant.edges.length).toBe(2);
    expect(constant.edges[1]).toBe(5);
    expect(constant.edges[0]).toBeLessThan(5);
    // c⁻ is the largest double below c: nothing fits between it and c.
    expect((constant.edges[0] + 5) / 2 === constant.edges[0] || (constant.edges[0] + 5) / 2 === 5).toBe(true);
    expect(Array.from(constant.counts)).toEqual([0, 7, 0]);
    const zero = buildReferenceHistograms(new Float64Array(3), 3, ["z"], 4).features[0];
    expect(Array.from(zero.edges)).toEqual([-Number.MIN_VALUE, 0]);
  });

  it.skipIf(!numpy)("has numpy's quantile(method='inverted_cdf') edges and numpy's bin counts on random columns", () => {
    const rng = new SeededRandom(7);
    const rows = 1237;
    const names = ["normal", "rounded", "exponential"];
    const values = new Float64Array(rows * 3);
    for (let r = 0; r < rows; r++) {
      values[r * 3] = rng.normal();
      values[r * 3 + 1] = Math.round(rng.normal() * 2);
      values[r * 3 + 2] = rng.exponential();
    }
    const ref = buildReferenceHistograms(values, rows, names, 10);
    const out = python(
      `
import json, sys
import numpy as np
d = json.load(sys.stdin)
x = np.array(d["values"]).reshape(-1, 3)
res = []
for j in range(3):
    q = np.unique(np.quantile(x[:, j], np.arange(1, 10) / 10, method="inverted_cdf"))
    b = np.searchsorted(q, x[:, j], side="left")
    res.append({"edges": q.tolist(), "counts": np.bincount(b, minlength=len(q) + 1).tolist()})
print(json.dumps(res))
`,
      JSON.stringify({ values: Array.from(values) }),
    );
    const want = JSON.parse(out) as Array<{ edges: number[]; counts: number[] }>;
    ref.features.forEach((h, j) => {
      expect(Array.from(h.edges), names[j]).toEqual(want[j].edges);
      expect(Array.from(h.counts), names[j]).toEqual(want[j].counts);
    });
    expect(ref.features[1].edges.length).toBeLessThan(9); // the rounded column has ties
  });

  it("round-trips through its JSON text exactly", () => {
    const rng = new SeededRandom(3);
    const values = Float64Array.from({ length: 500 * 2 }, () => rng.normal() * 1e-3 + 642.123456789);
    const ref = buildReferenceHistograms(values, 500, ["a", "b"], 20);
    const back = parseReferenceHistograms(referenceToText(ref), "round trip");
    expect(back).toEqual(ref);
  });

  it("refuses a corrupt document with a ReferenceHistogramError (a ModelLoadError) naming the field", () => {
    const good = referenceToJson(buildReferenceHistograms([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 10, ["x"], 5));
    const edit = (f: (o: Record<string, unknown>, h: Record<string, unknown>) => void): string => {
      const o = structuredClone(good) as Record<string, unknown>;
      f(o, (o.features as Record<string, unknown>[])[0]);
      return JSON.stringify(o);
    };
    const cases: Array<[string, string]> = [
      ["not json", "(text)"],
      ["[1, 2]", "(document)"],
      [edit((o) => (o.format = "other")), "format"],
      [edit((o) => (o.version = 2)), "version"],
      [edit((o) => (o.rows = -1)), "rows"],
      [edit((o) => (o.features = [])), "features"],
      [edit((_, h) => (h.edges = [2, 2, 6, 8])), "features[0].edges"],
      [edit((_, h) => (h.edges = [2, "4", 6, 8])), "features[0].edges"],
      [edit((_, h) => (h.edges = [2, null, 6, 8])), "features[0].edges"],
      [edit((_, h) => (h.counts = [2, 2, 2, 2, 3])), "features[0].counts"],
      [edit((_, h) => (h.counts = [2, 2, 2, 4])), "features[0].counts"],
      [edit((_, h) => (h.counts = [2, 2, 2, 2.5, 1.5])), "features[0].counts"],
      [edit((_, h) => (h.counts = [2, 2, 2, -2, 6])), "features[0].counts"],
      [edit((_, h) => (h.name = "")), "features[0].name"],
      [
        edit((_, h) => {
          h.edges = Array.from({ length: REFERENCE_BINS_MAX }, (_, i) => i);
          h.counts = [10, ...new Array(REFERENCE_BINS_MAX).fill(0)];
        }),
        "features[0].edges",
      ],
      [edit((o) => (o.features = [...(o.features as unknown[]), ...(o.features as unknown[])])), "features[1].name"],
      [edit((o) => (o.features = new Array(REFERENCE_FEATURES_MAX + 1).fill((o.features as unknown[])[0]))), "features"],
    ];
    for (const [text, field] of cases) {
      const error = (() => {
        try {
          parseReferenceHistograms(text, "corrupt.json");
        } catch (e) {
          return e;
        }
        return null;
      })();
      expect(error, `${field}: ${text.slice(0, 80)}`).toBeInstanceOf(ReferenceHistogramError);
      expect(error).toBeInstanceOf(ModelLoadError);
      expect((error as ReferenceHistogramError).field).toBe(field);
    }
  });
});

describe("PSI", () => {
  it("is Σ (a − e) ln(a / e) over add-½-smoothed proportions (hand case)", () => {
    const a = [30, 70, 0];
    const e = [50, 50, 0];
    const pa = a.map((c) => (c + 0.5) / (100 + 1.5));
    const pe = e.map((c) => (c + 0.5) / (100 + 1.5));
    const want = pa.reduce((s, p, i) => s + (p - pe[i]) * Math.log(p / pe[i]), 0);
    expect(PSI_SMOOTHING).toBe(0.5);
    expect(psiFromCounts(a, e)).toBeCloseTo(want, 15);
    expect(psiFromCounts([10, 10], [10, 10])).toBe(0);
    // Without smoothing on non-empty bins it is the textbook value: 0.4·ln 1.4/0.6·… by hand.
    expect(psiFromCounts([30, 70], [50, 50], 0)).toBeCloseTo(-0.2 * Math.log(0.6) + 0.2 * Math.log(1.4), 15);
  });

  it.skipIf(!numpy)("agrees with a numpy PSI on random counts", () => {
    const rng = new SeededRandom(11);
    const cases = Array.from({ length: 50 }, () => {
      const k = 2 + rng.below(30);
      return {
        a: Array.from({ length: k }, () => (rng.next() < 0.2 ? 0 : rng.below(500))),
        e: Array.from({ length: k }, () => (rng.next() < 0.1 ? 0 : rng.below(5000))),
      };
    });
    const out = python(
      `
import json, sys
import numpy as np
res = []
for c in json.load(sys.stdin):
    a = np.array(c["a"], dtype=float); e = np.array(c["e"], dtype=float); k = len(a)
    pa = (a + 0.5) / (a.sum() + 0.5 * k); pe = (e + 0.5) / (e.sum() + 0.5 * k)
    res.append(float(np.sum((pa - pe) * np.log(pa / pe))))
print(json.dumps(res))
`,
      JSON.stringify(cases),
    );
    const want = JSON.parse(out) as number[];
    cases.forEach((c, i) => expect(psiFromCounts(c.a, c.e)).toBeCloseTo(want[i], 12));
  });

  it("over a sliding window equals a recomputation from scratch at every step", () => {
    const rng = new SeededRandom(5);
    const train = 3000;
    const f = 3;
    const values = new Float64Array(train * f);
    for (let r = 0; r < train; r++) {
      values[r * f] = rng.normal();
      values[r * f + 1] = rng.below(4); // ties: 4 values
      values[r * f + 2] = rng.exponential();
    }
    const ref = buildReferenceHistograms(values, train, ["n", "d", "x"], 10);
    const w = 57;
    const sliding = new SlidingPsi(ref, w);
    const stream: number[][] = [];
    for (let t = 0; t < 2000; t++) {
      const drift = t > 1000 ? 0.8 : 0;
      const row = [rng.normal() + drift, rng.below(5) - (t > 1500 ? 1 : 0), rng.exponential() * (1 + drift)];
      expect(sliding.push(row)).toBe(true);
      stream.push(row);
      const last = stream.slice(-w);
      expect(sliding.filled).toBe(last.length);
      for (let j = 0; j < f; j++) {
        const want = psiFromCounts(
          scratchCounts(
            ref,
            j,
            last.map((r) => r[j]),
          ),
          ref.features[j].counts,
        );
        expect(sliding.psi(j)).toBeCloseTo(want, 12);
        expect(Array.from(sliding.binCounts(j))).toEqual(
          scratchCounts(
            ref,
            j,
            last.map((r) => r[j]),
          ),
        );
      }
    }
  });

  it("refuses a row with a non-finite value without changing the window", () => {
    const ref = buildReferenceHistograms([1, 2, 3, 4], 4, ["x"], 2);
    const s = new SlidingPsi(ref, 3);
    s.push([1]);
    const before = s.psi(0);
    expect(s.push([Number.NaN])).toBe(false);
    expect(s.push([Number.POSITIVE_INFINITY])).toBe(false);
    expect(s.filled).toBe(1);
    expect(s.psi(0)).toBe(before);
  });
});

/** Bin counts of xs against feature j's edges by a linear scan (not the binary search under test). */
function scratchCounts(ref: ReferenceHistograms, j: number, xs: readonly number[]): number[] {
  const edges = Array.from(ref.features[j].edges);
  const counts = new Array(edges.length + 1).fill(0);
  for (const x of xs) {
    let b = 0;
    while (b < edges.length && edges[b] < x) b++;
    counts[b]++;
  }
  return counts;
}
