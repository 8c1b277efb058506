import { describe, expect, it } from "vitest";
import { formatClickHouseBenchReport, runClickHouseBench, SMOKE_CLICKHOUSE_BENCH_RECORDS } from "../bench/clickhouse-bench.js";
import { serverAvailable } from "../connectors/local/nats-server.js";

// The ClickHouse rows benchmark at its smoke size, so it never goes stale. Nothing here looks at a time.
describe("bench - ClickHouse rows benchmark smoke run", () => {
  it("encodes the same records three ways and inserts every ml_scores row both ways", async () => {
    const report = await runClickHouseBench({ smoke: true, insert: serverAvailable("clickhouse-server") });
    expect(report.records).toBe(SMOKE_CLICKHOUSE_BENCH_RECORDS);
    expect(report.encode.map((e) => e.path)).toHaveLength(3);
    // Both RowBinary paths write the same columns: the same bytes per row (statistics exact or rounded, 8 bytes either way).
    expect(report.encode[1].scoreBytesPerRow).toBe(report.encode[2].scoreBytesPerRow);
    if (report.insert !== null) expect(report.insert.map((i) => i.rows)).toEqual([report.records, report.records]);
    expect(formatClickHouseBenchReport(report)).toMatch(/RowBinary from columns/);
  }, 120_000);
});
