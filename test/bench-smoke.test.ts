import { describe, expect, it } from "vitest";
import { runKernelBench } from "../bench/kernel-bench.js";
import { runSpcBench } from "../bench/spc-bench.js";

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

describe("bench - SPC benchmark smoke run", () => {
  it("completes; the WASM SPC rows agree with the TS reference on all the smoke data (masks, zones, alarms exactly; statistics to 1e-12)", async () => {
    const report = await runSpcBench({ smoke: true });

    const cmp = report.checksums.reference;
    // The smoke data fits in the reference slice, so every row of every key was compared.
    expect(cmp.rows).toBe(report.samples);
    expect(cmp.rollingRows).toBe(report.samples);
    expect(cmp.exactFieldsDiffering, cmp.examples.join("\n")).toBe(0);
    expect(cmp.statisticFieldsDiffering, cmp.examples.join("\n")).toBe(0);
    expect(cmp.maxStatisticRelativeDifference).toBeLessThanOrEqual(1e-12);
    expect(cmp.rollingRowsDiffering).toBe(0);
    expect(report.checksums.mismatches).toEqual([]);
    expect(report.checksums.agree).toBe(true);
    // Not a vacuous comparison: the rules and alarms fired on the smoke data.
    const f = report.firings;
    expect(f.we.every((n) => n > 0) && f.cusumAlarms > 0 && f.ewmaAlarms > 0).toBe(true);
  });
});
