/**
 * `npm run bench -- quality` at its smoke size: the comparison runs end to end — our model, the
 * scikit-learn baseline when /usr/bin/python3 has it, the mean-yield baseline and the process
 * model's expectation, all on the same held-out batches — and its figures are sane. No times are
 * asserted; the figures at full size are in docs/quality.md.
 */
import { describe, expect, it } from "vitest";
import { formatQualityEvalReport, runQualityEval, SMOKE_QUALITY_TEST_BATCHES, SMOKE_QUALITY_TRAIN_BATCHES } from "../bench/quality-eval.js";
import { findSklearnPython } from "../bench/sklearn-python.js";

describe("bench quality (smoke)", () => {
  it("bench - every model is scored on the same held-out batches; the noise floor is below the baseline", async () => {
    const report = await runQualityEval({
      seed: 1,
      trainBatches: SMOKE_QUALITY_TRAIN_BATCHES,
      testBatches: SMOKE_QUALITY_TEST_BATCHES,
      epochs: 5,
    });
    const names = report.rows.map((r) => r.name);
    const sklearn = findSklearnPython().ok;
    expect(names.length).toBe(sklearn ? 4 : 3);
    expect(report.sklearnSkipped === null).toBe(sklearn);
    for (const row of report.rows) {
      expect(row.atEnd.batches).toBe(SMOKE_QUALITY_TEST_BATCHES);
      expect(row.atHalf.batches).toBe(SMOKE_QUALITY_TEST_BATCHES);
      expect(row.atEnd.yieldRmse).toBeGreaterThanOrEqual(row.atEnd.yieldMae);
    }
    const baseline = report.rows.find((r) => r.name.startsWith("mean yield"));
    const floor = report.rows.find((r) => r.name.startsWith("process model"));
    expect(floor?.atEnd.yieldMae).toBeLessThan(baseline?.atEnd.yieldMae ?? 0);
    expect(formatQualityEvalReport(report)).toContain("sklearn gradient boosting");
  }, 300_000);
});
