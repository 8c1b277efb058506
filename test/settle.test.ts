import { describe, expect, it } from "vitest";
import { sensorSettleMs, trackingErrorShare, trackTimeConstantMs } from "../engine/jobs/mod.js";
import { settleTime } from "../engine/cli/run-settings.js";
import { SpcReference } from "../kernels/reference/spc-reference.js";
import { DEFAULT_SPC_PARAMS, SPC_COL } from "../operators/spc/mod.js";

const RATE_HZ = 10;
const TRACK_RECORDS = 2000;
const TRACK_GAP_MS = 60_000;

/**
 * The largest |reading − centre line| of the SPC reference's tracked line when a key comes back
 * after a pause to a noise-free first-order approach x = R·e^(−t/τ) (R = 1, σ = 1 so no chart
 * signals and the line is never held), from the end of the restart's collection on.
 */
function trackedLineError(tauMs: number): number {
  const ref = new SpcReference({ ...DEFAULT_SPC_PARAMS, baselineN: 0, trackRecords: TRACK_RECORDS, trackGap: TRACK_GAP_MS });
  ref.setLimits(0, 1);
  ref.push(0, 0);
  let worst = 0;
  const dt = 1000 / RATE_HZ;
  for (let i = 0; i < 20 * (tauMs / dt); i++) {
    const x = Math.exp(-(i * dt) / tauMs);
    const row = ref.push(x, 2 * TRACK_GAP_MS + i * dt);
    if (i >= 50) worst = Math.max(worst, Math.abs(x - row[SPC_COL.cl]));
  }
  return worst;
}

describe("settling after a mode change, against a tracked centre line", () => {
  it("the tracking error bound holds for the SPC reference's tracked line, and is close to it for a slow approach", () => {
    const trackMs = trackTimeConstantMs(TRACK_RECORDS, RATE_HZ, TRACK_GAP_MS);
    expect(trackMs).toBeCloseTo(99_975, 0);
    for (const tauMs of [10_000, 20_000, 100_000, 600_000]) {
      const bound = trackingErrorShare(tauMs, trackMs);
      const seen = trackedLineError(tauMs);
      expect(seen).toBeLessThanOrEqual(bound);
      // The line's trend term only helps; for temperature's 600 s it helps little.
      if (tauMs === 600_000) expect(seen).toBeGreaterThan(0.9 * bound);
    }
  });

  it("a tracked line shortens temperature's settling (the chart sees 0.116 of the step left), a fixed line does not", () => {
    const temperature = { machine_id: "M-001", sensor_type: "temperature", sensor_unit: "°C" };
    const fixed = sensorSettleMs(temperature);
    // τ·ln(Δ/0.1σ): 600 s · ln(18 / 0.015)
    expect(fixed).toBeCloseTo(600_000 * Math.log(18 / 0.015), 0);
    const tracked = settleTime({ keyByMode: true, trackRecords: TRACK_RECORDS, trackGap: "60s", rate: RATE_HZ })(temperature);
    expect(tracked).toBeCloseTo(600_000 * Math.log((18 * trackingErrorShare(600_000, trackTimeConstantMs(2000, 10, 60_000))) / 0.015), 0);
    expect(tracked).toBeLessThan(fixed);
    // No restart after a pause (no --track-gap) or no tracking: the whole step counts.
    expect(settleTime({ keyByMode: true, trackRecords: TRACK_RECORDS, rate: RATE_HZ })(temperature)).toBe(fixed);
    expect(settleTime({ keyByMode: true, trackRecords: 0, trackGap: "60s", rate: RATE_HZ })(temperature)).toBe(fixed);
    expect(settleTime({ keyByMode: true, settle: "5m", trackRecords: TRACK_RECORDS, rate: RATE_HZ })(temperature)).toBe(300_000);
  });
});
