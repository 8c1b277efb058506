/**
 * The failure-prediction scorecard (engine/jobs/failure-scorecard.ts) on hand-made predictions,
 * failures and replacements.
 */
import { describe, expect, it } from "vitest";
import type { FailureLabel, MaintenanceRecord } from "../connectors/sim/mod.js";
import { FailureScorecard, formatFailureScore } from "../engine/jobs/failure-scorecard.js";

const T0 = Date.UTC(2026, 0, 1);
const H = 3_600_000;

function failure(at: number): FailureLabel {
  return {
    machine_id: "M-002",
    machine_type: "cartoner",
    at: T0 + at * H,
    cause: "bearing_wear",
    component: "main drive bearing",
    degradation_start: T0,
    running_hours: 50,
  };
}

function replacement(endHours: number): MaintenanceRecord {
  return {
    machine_id: "M-002",
    machine_type: "cartoner",
    maintenance_type: "preventive",
    start: T0 + (endHours - 1) * H,
    end: T0 + endHours * H,
    downtime_hours: 1,
    components_replaced: ["main drive bearing"],
    failure_cause: null,
  };
}

describe("failure-prediction scorecard", () => {
  it("scores time to failure against the capped truth, counts warnings by lead time and false highs", () => {
    // Cap 48 h, horizon 12 h. One failure at 100 h; a replacement at 120 h ends the next life.
    const card = new FailureScorecard(48, 12, [2, 8]);
    card.coverFrom(T0);
    card.addFailures([failure(100)]);
    card.addMaintenance([replacement(120)]);
    const observe = (hours: number, ttf: number, high: boolean) =>
      card.observe({ machine_id: "M-002", at: T0 + hours * H, time_to_failure_hours: ttf, high });
    observe(10, 48, false); // truth 90 h, capped 48: error 0; far (> 24 h)
    observe(40, 40, true); // truth 60 → 48: error −8; a false high
    observe(90, 12, true); // truth 10: error 2; warned 10 h ahead
    observe(97, 3, true); // truth 3: error 0
    observe(110, 30, false); // replaced at 120 before any failure: far, not in the RMSE
    const s = card.result();
    expect(s.failures).toBe(1);
    expect(s.predictions).toBe(5);
    expect(s.lifePredictions).toBe(4);
    expect(s.rmseCappedHours).toBeCloseTo(Math.sqrt((0 + 64 + 4 + 0) / 4), 12);
    expect(s.nearPredictions).toBe(2);
    expect(s.rmseNearHours).toBeCloseTo(Math.sqrt(4 / 2), 12);
    expect(s.leads).toEqual([
      { leadHours: 2, failures: 1, warned: 1 },
      { leadHours: 8, failures: 1, warned: 1 },
    ]);
    expect(s.farPredictions).toBe(3);
    expect(s.falseHighs).toBe(1);
    expect(formatFailureScore(s)).toContain("≥ 8 h ahead 1 of 1 (100%)");
  });

  it("a warning older than the cap, or only after the lead, does not count", () => {
    const card = new FailureScorecard(48, 12, [4]);
    card.coverFrom(T0);
    card.addFailures([failure(100)]);
    card.observe({ machine_id: "M-002", at: T0 + 40 * H, time_to_failure_hours: 5, high: true }); // 60 h before: beyond the cap
    card.observe({ machine_id: "M-002", at: T0 + 97 * H, time_to_failure_hours: 3, high: true }); // 3 h before: under the lead
    expect(card.result().leads).toEqual([{ leadHours: 4, failures: 1, warned: 0 }]);
  });
});
