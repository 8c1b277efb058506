/**
 * The fault scorecard and the simulator's wear (engine/jobs/fault-scorecard.ts): an opening no
 * fault explains, on a sensor a machine's degradation phase moves while the phase is under way,
 * is a wear detection, not a false episode, and the degraded key-hours leave the false rate's
 * exposure.
 */
import { describe, expect, it } from "vitest";
import type { DegradationLabel, FaultLabel } from "../connectors/sim/mod.js";
import { FaultScorecard, formatScorecard } from "../engine/jobs/fault-scorecard.js";

const T0 = Date.UTC(2026, 0, 1);
const H = 3_600_000;

function phase(start: number, end: number | null): DegradationLabel {
  return {
    machine_id: "M-002",
    machine_type: "cartoner",
    sensor_types: ["vibration", "motor_current", "temperature"],
    cause: "bearing_wear",
    start: T0 + start,
    end: end === null ? null : T0 + end,
    ended_by: end === null ? null : "failure",
  };
}

describe("fault scorecard - wear", () => {
  it("counts openings on a degrading machine's moved sensors as wear, others as false, and a fault first", () => {
    const card = new FaultScorecard();
    card.addSensorKeys(["M-001/vibration", "M-002/vibration", "M-002/pressure", "M-002/temperature"]);
    card.coverReadings(T0, T0 + 4 * H);
    // Under way from 1 h (labelled at the onset), ended by the failure at 3 h.
    card.addDegradation([phase(1 * H, null)]);
    const fault: FaultLabel = {
      machine_id: "M-002",
      sensor_type: "vibration",
      fault: "level_shift",
      start: T0 + 2 * H,
      end: T0 + 2 * H + 60_000,
      magnitude: 1,
    };
    card.addLabels([fault]);
    const open = (machine: string, sensor: string, at: number) =>
      card.addOpening({ machine_id: machine, sensor_type: sensor, at: T0 + at });
    open("M-002", "vibration", 0.5 * H); // before the onset: false
    open("M-002", "vibration", 1.5 * H); // wear
    open("M-002", "pressure", 1.5 * H); // a sensor the phase does not move: false
    open("M-001", "vibration", 1.5 * H); // another machine: false
    open("M-002", "vibration", 2 * H + 1000); // the fault's
    card.addDegradation([phase(1 * H, 3 * H)]);
    open("M-002", "temperature", 2.5 * H); // wear (an opening that comes after the end's label)
    open("M-002", "vibration", 3.5 * H); // after the failure: false
    const s = card.result();
    expect(s.wearEpisodes).toBe(2);
    expect(s.falseEpisodes).toBe(4);
    expect(s.all.detected).toBe(1);
    // 2 of the machine's keys (vibration, temperature) degraded for 2 h of the 4 keys × 4 h.
    expect(s.degradedKeyHours).toBeCloseTo(4, 12);
    expect(s.falsePerKeyPerHour).toBeCloseTo(4 / (16 - 4), 12);
    expect(formatScorecard(s)).toContain("wear: 2 openings");
  });
});
