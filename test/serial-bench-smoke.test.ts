import { describe, expect, it } from "vitest";
import { runSerialBench } from "../bench/serial-bench.js";

// The serial benchmark's smoke size runs with the suite so it never goes stale. Nothing here
// looks at a time or a rate.
describe("serial - benchmark smoke run", () => {
  it("serial - completes; every operator variant gives the same verdicts, and the WASM flags equal the reference's", async () => {
    const report = await runSerialBench({ smoke: true });
    expect(report.checksums.mismatches).toEqual([]);
    expect(report.checksums.agree).toBe(true);
    expect(report.reference.flagsDiffering).toBe(0);
    expect(report.reference.events).toBe(5000);
    // Not vacuous: the smoke stream has attacks, and they were scored.
    expect(report.anomalous).toBeGreaterThan(0);
    expect(report.quarantined).toBeGreaterThan(0);
    expect(report.measurements.filter((m) => m.checksum !== null).length).toBe(3);
  });
});
