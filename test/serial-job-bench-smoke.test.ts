import { describe, expect, it } from "vitest";
import { formatSerialJobRate, measureSerialJobRate } from "../bench/serial-job-bench.js";

// The serial job-rate benchmark at its smoke size, so it never goes stale. Nothing here looks at a
// time or a rate.
describe("serial - job rate benchmark smoke run", () => {
  it("serial - completes; the reader's path and the generic decoder's give the same detections, every event by the reader", async () => {
    const r = await measureSerialJobRate({ smoke: true });
    expect(r.events).toBe(20_000);
    expect(r.checksumsAgree).toBe(true);
    expect(r.fastEvents).toBe(r.events);
    expect(r.deadLettered).toBe(0);
    // Not vacuous: the smoke stream has attacks, and they reached the outputs.
    expect(r.detections).toBeGreaterThan(0);
    expect(r.quarantined).toBeGreaterThan(0);
    expect(r.job.checksum).not.toBeNull();
    expect(r.baselines.map((b) => b.label.split(" ")[0])).toEqual([
      "whole",
      "whole",
      "schema",
      "schema",
      "schema",
      "schema",
      "decode",
      "WASM",
      "whole",
    ]);
    // The main thread's stages measured alone each took every event, and their parts are figures.
    for (const stage of r.baselines.slice(2, 6)) expect(stage.events).toBe(r.events);
    // The ledger on its own thread gave every event the verdict the ledger on the main thread gave.
    expect(r.ledgerThreadAgrees).toBe(true);
    expect(r.baselines[5].checksum).not.toBeNull();
    expect(Number.isFinite(r.baselines[5].ledgerThreadNsPerEvent)).toBe(true);
    // The job's headline figure runs the ledger on its thread, the first baseline on the main thread.
    expect(Number.isFinite(r.job.ledgerThreadNsPerEvent)).toBe(true);
    expect(r.baselines[0].ledgerThreadNsPerEvent).toBeUndefined();
    // The job before: the ledger thread beside a pool worker running the kernel.
    expect(Number.isFinite(r.baselines[8].ledgerThreadNsPerEvent)).toBe(true);
    for (const part of Object.values(r.parts)) expect(Number.isFinite(part)).toBe(true);
    expect(formatSerialJobRate(r)).toContain("the job's CPU by part");
    expect(formatSerialJobRate(r)).toContain("whole serial job");
  }, 120_000);
});
