import { describe, expect, it } from "vitest";
import { runIforestBench } from "../bench/iforest-bench.js";

// The isolation-forest benchmark at a tiny size runs with the suite so it never goes stale
// (scikit-learn included when python3-sklearn is there). Nothing here looks at a time or a rate.
describe("iforest - scoring benchmark smoke run", () => {
  it("completes; WASM inline and on the pool, the TypeScript reference (and scikit-learn) give the same checksum", async () => {
    const report = await runIforestBench({ smoke: true, rows: 3000 });
    expect(report.mismatches).toEqual([]);
    expect(report.checksumsAgree).toBe(true);
    const labels = report.variants.map((v) => v.label);
    expect(labels).toContain("WASM kernel, pool, 2 workers");
    expect(labels).toContain("TypeScript reference (test/reference)");
    for (const v of report.variants) expect(v.checksum).toBeGreaterThan(0);
  });
});
