import { describe, expect, it } from "vitest";
import { formatAuditBenchReport, runAuditBench, SMOKE_AUDIT_BENCH_RECORDS } from "../bench/audit-bench.js";

// The audit benchmark at its smoke size, so it never goes stale. Nothing here looks at a time or a rate.
describe("bench - audit benchmark smoke run", () => {
  it("measures every output with and without the audit record, the audited ones larger by the record's bytes", async () => {
    const report = await runAuditBench({ smoke: true });
    expect(report.records).toBe(SMOKE_AUDIT_BENCH_RECORDS);
    expect(report.figures.map((f) => f.output)).toEqual([
      "ml_scores Native block (ingest workers)",
      "score lines (NATS, scores file)",
      "kernels + observers + ml_scores Native",
      "replay rolling,spc (rows pipeline, file)",
    ]);
    // Native: the two String cells of a row hold 64 hex digits each instead of "" (1 length byte either way): 128 bytes more.
    expect(report.figures[0].withBytes - report.figures[0].withoutBytes).toBeCloseTo(128, 0);
    for (const f of report.figures) expect(f.withBytes).toBeGreaterThan(f.withoutBytes);
    expect(formatAuditBenchReport(report)).toMatch(/ratio/);
  }, 120_000);
});
