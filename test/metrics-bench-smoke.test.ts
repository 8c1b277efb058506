import { describe, expect, it } from "vitest";
import { formatMetricsBenchReport, runMetricsBench } from "../bench/metrics-bench.js";

// The metrics benchmark at its quick size, so it never goes stale. Nothing here looks at a time.
describe("bench - metrics benchmark smoke run", () => {
  it("scrapes the live server's registry (engine, WebSocket, HTTP and default series) and measures every increment kind", async () => {
    const report = await runMetricsBench(true);
    expect(report.scrape.series).toBeGreaterThan(100);
    expect(report.incNs.map((x) => x.how)).toHaveLength(7);
    const text = formatMetricsBenchReport(report);
    expect(text).toMatch(/render in process/);
    expect(text).toMatch(/cached child \.inc/);
  });
});
