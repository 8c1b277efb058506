import { describe, expect, it } from "vitest";
import { OUTPUT_WRITE_BYTES } from "../connectors/files/mod.js";
import { formatReplayBenchReport, REPLAY_BENCH_PATHS, runReplayBench, SMOKE_REPLAY_BENCH_ROWS } from "../bench/replay-bench.js";

// The replay benchmark at its smoke size, so it never goes stale. Nothing here looks at a time or a rate.
describe("bench - replay benchmark smoke run", () => {
  it("replays the same CSV through every path with the same bytes out, and reports the ceilings", async () => {
    const report = await runReplayBench({ smoke: true });
    expect(report.rows).toBe(SMOKE_REPLAY_BENCH_ROWS);
    expect(report.paths.map((p) => p.path)).toEqual([...REPLAY_BENCH_PATHS]);
    expect(report.paths.every((p) => p.identical && p.outputBytes === report.paths[0].outputBytes)).toBe(true);
    expect(report.paths[0].outputBytes).toBeGreaterThan(report.inputBytes);
    // The output ceiling as the replay writes (OUTPUT_WRITE_BYTES a call), then in 1 MiB calls.
    expect(report.writeCeilings.map((w) => w.callBytes)).toEqual([OUTPUT_WRITE_BYTES, 1 << 20]);
    expect(formatReplayBenchReport(report)).toMatch(/columns path/);
  }, 120_000);
});
