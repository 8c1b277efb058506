/**
 * scikit-learn compatibility: scripts/sklearn_iforest_export.py fits an IsolationForest on a
 * small CSV and exports it with score_samples of every row; the import must score every row with
 * the WASM kernel and with the TypeScript reference to within 1e-9 of −score_samples.
 *
 * Needs Debian's python3-sklearn (/usr/bin/python3, or LINEWATCH_PYTHON). Without it the tests
 * are skipped with a loud message; .ci/run installs it so they run in CI.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SeededRandom } from "../engine/core/mod.js";
import { referenceScores } from "../kernels/reference/iforest-reference.js";
import { findSklearnPython, runSklearnExport } from "../bench/sklearn-python.js";
import { importSklearnExport } from "../operators/iforest/training/sklearn.js";
import { ModelError } from "../operators/iforest/model.js";
import { scoreMatrix } from "../operators/iforest/scorer.js";

const TOLERANCE = 1e-9;
const sklearn = findSklearnPython();
if (!sklearn.ok) {
  process.stderr.write(`\n******** iforest sklearn tests SKIPPED: ${sklearn.reason} ********\n\n`);
}
const dir = mkdtempSync(join(tmpdir(), "linewatch-iforest-sklearn-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * rows × 5 columns plus a label: a correlated Gaussian cloud with values of many digits (so
 * float32 rounding matters), a column of few distinct values (ties on thresholds), a few
 * outliers. `level` is column a's centre: its float32 spacing (ulp) against the column's spread
 * (σ 3) sets how often a threshold falls between a value and its float32 rounding.
 */
function writeCsv(path: string, rows: number, seed: number, level = 1000): { values: Float64Array; columns: number } {
  const rng = new SeededRandom(seed);
  const columns = 5;
  const values = new Float64Array(rows * columns);
  const lines = ["a,b,c,d,e,label"];
  for (let i = 0; i < rows; i++) {
    const outlier = i % 37 === 0;
    const z = rng.normal();
    const row = [
      level + 3 * z + rng.normal() * 0.1 + (outlier ? 25 : 0),
      z * 0.001 + rng.normal() * 1e-4,
      rng.int(0, 4) * 0.1,
      rng.uniform(-1e6, 1e6),
      Math.exp(rng.normal()) + (outlier ? 40 : 0),
    ];
    row.forEach((v, k) => (values[i * columns + k] = v));
    lines.push(`${row.join(",")},${outlier ? 1 : 0}`);
  }
  writeFileSync(path, `${lines.join("\n")}\n`);
  return { values, columns };
}

const CASES = [
  { name: "defaults: 100 trees, ψ = 256, max_features 1.0", rows: 600, args: ["--trees", "100", "--max-samples", "256", "--seed", "3"] },
  {
    name: "max_features 0.6 with bootstrap (estimators_features_ not the identity)",
    rows: 400,
    args: ["--trees", "40", "--max-samples", "128", "--max-features", "0.6", "--bootstrap", "--seed", "4"],
  },
  {
    name: "max_samples auto with fewer rows than 256 (ψ = rows)",
    rows: 150,
    args: ["--trees", "25", "--max-samples", "auto", "--seed", "5"],
  },
] as const;

describe.skipIf(!sklearn.ok)("iforest - scikit-learn import", () => {
  for (const c of CASES) {
    it(`scores equal −score_samples to 1e-9 on every row (WASM kernel and reference): ${c.name}`, async () => {
      if (!sklearn.ok) return;
      const csv = join(dir, `${c.rows}.csv`);
      const { values, columns } = writeCsv(csv, c.rows, c.rows);
      const exported = (await runSklearnExport(
        sklearn.python,
        ["--csv", csv, "--exclude", "label", "--scores", ...c.args],
        join(dir, "export.json"),
      )) as {
        score_samples: number[];
      };
      const model = importSklearnExport(exported, "export.json");
      expect(model.compare).toBe("f32");
      expect(model.featureNames).toEqual(["a", "b", "c", "d", "e"]);
      const identity = [0, 1, 2, 3, 4];
      const wasm = await scoreMatrix(model, values, c.rows);
      const reference = referenceScores(model, values, c.rows, columns, identity);
      let worstWasm = 0;
      let worstReference = 0;
      for (let i = 0; i < c.rows; i++) {
        const expected = -exported.score_samples[i];
        worstWasm = Math.max(worstWasm, Math.abs(wasm[i] - expected));
        worstReference = Math.max(worstReference, Math.abs(reference[i] - expected));
      }
      expect(worstWasm).toBeLessThanOrEqual(TOLERANCE);
      expect(worstReference).toBeLessThanOrEqual(TOLERANCE);
    });
  }

  it("without the float32 rounding some rows land in other leaves: the compare flag is what makes them equal", async () => {
    if (!sklearn.ok) return;
    const csv = join(dir, "f32.csv");
    // Column a around 2^20: its float32 ulp is 0.125, about 1/50 of σ, so a random threshold on a
    // often falls between a value and its float32 rounding; around 1000 (ulp 6e-5) that takes luck.
    const { values, columns } = writeCsv(csv, 600, 600, 1_048_576);
    const exported = (await runSklearnExport(
      sklearn.python,
      ["--csv", csv, "--exclude", "label", "--scores", ...CASES[0].args],
      join(dir, "f32.json"),
    )) as {
      score_samples: number[];
    };
    const model = importSklearnExport(exported);
    const asF64 = { ...model, compare: "f64" as const };
    const scores = referenceScores(asF64, values, 600, columns, [0, 1, 2, 3, 4]);
    const differing = scores.filter((s, i) => Math.abs(s + exported.score_samples[i]) > TOLERANCE).length;
    expect(differing).toBeGreaterThan(0);
  });
});

describe("iforest - scikit-learn export validation", () => {
  it("a malformed export is a ModelError", () => {
    const tree = {
      features: [0],
      feature: [0, -2, -2],
      threshold: [0.5, -2, -2],
      children_left: [1, -1, -1],
      children_right: [2, -1, -1],
      n_node_samples: [3, 1, 2],
    };
    const good = {
      format: "sklearn-iforest-export",
      version: 1,
      n_features_in: 1,
      feature_names: ["x"],
      max_samples_: 3,
      offset_: -0.5,
      estimators: [tree],
    };
    expect(importSklearnExport(good).feature.length).toBe(3);
    const bad: unknown[] = [
      null,
      { ...good, format: "other" },
      { ...good, estimators: [] },
      { ...good, feature_names: ["x", "y"] },
      { ...good, estimators: [{ ...tree, feature: [3, -2, -2] }] },
      { ...good, estimators: [{ ...tree, features: [4] }] },
      { ...good, estimators: [{ ...tree, children_left: [1.5, -1, -1] }] },
      { ...good, estimators: [{ ...tree, children_right: [0, -1, -1] }] },
      { ...good, estimators: [{ ...tree, n_node_samples: [3, 1] }] },
      { ...good, estimators: [{ ...tree, n_node_samples: [4, 1, 2] }] },
    ];
    for (const b of bad) expect(() => importSklearnExport(b)).toThrow(ModelError);
  });
});
