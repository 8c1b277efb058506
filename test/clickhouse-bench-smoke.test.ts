import { describe, expect, it } from "vitest";
import { formatClickHouseBenchReport, runClickHouseBench, SMOKE_CLICKHOUSE_BENCH_RECORDS } from "../bench/clickhouse-bench.js";
import { serverAvailable } from "../connectors/local/nats-server.js";

// The ClickHouse rows benchmark at its smoke size, so it never goes stale. Nothing here looks at a time.
describe("bench - ClickHouse rows benchmark smoke run", () => {
  it("encodes the same records four ways and inserts every record's two rows three ways (the encoded ones also into ENGINE = Null)", async () => {
    const report = await runClickHouseBench({ smoke: true, insert: serverAvailable("clickhouse-server") });
    expect(report.records).toBe(SMOKE_CLICKHOUSE_BENCH_RECORDS);
    expect(report.encode.map((e) => e.path)).toHaveLength(4);
    // Both RowBinary paths write the same columns: the same bytes per row (statistics exact or rounded, 8 bytes either way).
    expect(report.encode[1].scoreBytesPerRow).toBe(report.encode[2].scoreBytesPerRow);
    if (report.insert !== null) {
      expect(report.insert.map((i) => [i.format, i.engine, i.rows])).toEqual([
        ["JSONEachRow", "ReplacingMergeTree", 2 * report.records],
        ["RowBinary", "ReplacingMergeTree", 2 * report.records],
        ["Native", "ReplacingMergeTree", 2 * report.records],
        ["RowBinary", "Null", 2 * report.records],
        ["Native", "Null", 2 * report.records],
      ]);
      // On Linux the server's CPU time is read from /proc.
      if (process.platform === "linux") expect(report.insert.every((i) => i.serverCpuPerMillionRows !== null)).toBe(true);
    }
    expect(formatClickHouseBenchReport(report)).toMatch(/Native from columns/);
  }, 120_000);
});
