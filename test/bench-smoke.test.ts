import { describe, expect, it } from "vitest";
import { runKernelBench } from "../bench/kernel-bench.js";

// The benchmark's smoke size runs with the suite so it never goes stale. Benchmarks are not tests:
// nothing here looks at a time or a rate.
describe("bench - kernel benchmark smoke run", () => {
  it("completes; WASM and the TS incremental port give the same checksum; W = 64 state fits in 1 KiB", async () => {
    const report = await runKernelBench({ smoke: true });

    const { wasm, tsIncremental } = report.checksums;
    expect(Number.isFinite(tsIncremental) && tsIncremental !== 0).toBe(true);
    expect(Math.abs(wasm - tsIncremental)).toBeLessThanOrEqual(1e-9 * Math.abs(tsIncremental));
    expect(report.stateBytesPerKeyW64).toBeLessThanOrEqual(1024);
  });
});
