/**
 * The simulator's wear model (connectors/sim/wear-model.ts): determinism, maintenance that resets
 * the wear, and the failure labels — on a plant run long enough for every machine to fail.
 */
import { beforeAll, describe, expect, it } from "vitest";
import {
  degradationAt,
  FAILURE_MODES,
  type FailureLabel,
  type MaintenanceRecord,
  machineTypeOf,
  PlantSimulator,
  type SensorType,
  type SimulatorOptions,
} from "../connectors/sim/mod.js";

const HOUR = 3_600_000;
const PLANT: Partial<SimulatorOptions> = { seed: 7, machines: 4, rateHz: 0.2, durationMs: 240 * HOUR };
/** The determinism checks compare shorter runs. */
const SHORT: Partial<SimulatorOptions> = { ...PLANT, durationMs: 60 * HOUR };

interface Run {
  values: Float64Array;
  modes: Uint8Array;
  times: Float64Array;
  keys: Uint32Array;
  failures: FailureLabel[];
  maintenance: MaintenanceRecord[];
  degradation: ReturnType<PlantSimulator["drainDegradation"]>;
}

function simulate(options: Partial<SimulatorOptions>, chunk = 65_536): Run {
  const sim = new PlantSimulator(options);
  const n = Math.round(((options.durationMs ?? 0) / 1000) * (options.rateHz ?? 10) * sim.keys().length);
  const out: Run = {
    values: new Float64Array(n),
    modes: new Uint8Array(n),
    times: new Float64Array(n),
    keys: new Uint32Array(n),
    failures: [],
    maintenance: [],
    degradation: [],
  };
  let at = 0;
  while (!sim.done) {
    const c = sim.nextColumns(chunk);
    out.values.set(c.values.subarray(0, c.length), at);
    out.modes.set(c.modes.subarray(0, c.length), at);
    out.times.set(c.times.subarray(0, c.length), at);
    out.keys.set(c.keyIndex.subarray(0, c.length), at);
    at += c.length;
    out.failures.push(...sim.drainFailures());
    out.maintenance.push(...sim.drainMaintenance());
    out.degradation.push(...sim.drainDegradation());
  }
  expect(at).toBe(n);
  return out;
}

describe("simulator wear model", () => {
  let full: Run;
  beforeAll(() => {
    full = simulate(PLANT);
  }, 600_000);

  it("machines fail, each failure is repaired (corrective, the component replaced, the type's downtime) and labelled", () => {
    expect(full.failures.length).toBeGreaterThanOrEqual(4);
    for (const f of full.failures) {
      const spec = FAILURE_MODES[f.machine_type];
      expect(f.cause).toBe(spec.cause);
      expect(f.degradation_start).toBeLessThan(f.at);
      const repair = full.maintenance.find((m) => m.machine_id === f.machine_id && m.start === f.at);
      if (repair === undefined) {
        // Only a failure whose repair outlasts the data has no record.
        expect(f.at + spec.correctiveDowntimeHours[1] * HOUR).toBeGreaterThan(Date.UTC(2026, 0, 1) + (PLANT.durationMs ?? 0));
        continue;
      }
      expect(repair.maintenance_type).toBe("corrective");
      expect(repair.components_replaced).toEqual([spec.component]);
      expect(repair.failure_cause).toBe(spec.cause);
      // Whole ticks of 5 s: the downtime is the drawn one to within a tick.
      expect(repair.downtime_hours).toBeGreaterThanOrEqual(spec.correctiveDowntimeHours[0] - 1 / 720);
      expect(repair.downtime_hours).toBeLessThanOrEqual(spec.correctiveDowntimeHours[1] + 1 / 720);
    }
    // Preventive maintenance happens too, with and without parts.
    const preventive = full.maintenance.filter((m) => m.maintenance_type === "preventive");
    expect(preventive.some((m) => m.components_replaced.length > 0)).toBe(true);
    expect(preventive.some((m) => m.components_replaced.length === 0)).toBe(true);
  });

  it("a failed machine is down (maintenance) through its repair, then resumes new: its degraded sensor reads like a healthy one", () => {
    const sim = new PlantSimulator(PLANT);
    const sensors = sim.options.sensorTypes;
    let compared = 0;
    for (const f of full.failures) {
      const repair = full.maintenance.find((m) => m.machine_id === f.machine_id && m.start === f.at);
      if (repair === undefined) continue;
      const m = Number(f.machine_id.slice(2)) - 1;
      const [sensor, effect] = Object.entries(FAILURE_MODES[machineTypeOf(m)].effects).sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]))[0];
      const k = m * sensors.length + sensors.indexOf(sensor as SensorType);
      const running = (from: number, to: number) => {
        const xs: number[] = [];
        for (let i = 0; i < full.times.length; i++)
          if (full.keys[i] === k && full.times[i] >= from && full.times[i] < to && full.modes[i] === 0) xs.push(full.values[i]);
        return xs;
      };
      for (let i = 0; i < full.times.length; i++) {
        if (full.keys[i] === k && full.times[i] >= f.at && full.times[i] < repair.end) expect(full.modes[i]).toBe(3);
      }
      const before = running(f.at - 3 * HOUR, f.at);
      const after = running(repair.end, repair.end + 12 * HOUR);
      if (before.length < 100 || after.length < 100) continue;
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      // In the last 3 h before the failure d > 0.5 of the effect; after the repair d = 0.
      const ratio = mean(before) / mean(after);
      compared++;
      if (effect > 0) expect(ratio, `${f.machine_id} ${sensor}`).toBeGreaterThan(1 + effect * 0.4);
      else expect(ratio, `${f.machine_id} ${sensor}`).toBeLessThan(1 + effect * 0.4);
    }
    expect(compared).toBeGreaterThanOrEqual(2);
  });

  it("degradation phases are labelled at the onset and at the failure or replacement that ends them", () => {
    const ends = full.degradation.filter((d) => d.end !== null);
    for (const f of full.failures) {
      const end = ends.find((d) => d.machine_id === f.machine_id && d.end === f.at);
      expect(end?.ended_by).toBe("failure");
      expect(end?.start).toBe(f.degradation_start);
      expect(full.degradation.some((d) => d.machine_id === f.machine_id && d.start === f.degradation_start && d.end === null)).toBe(true);
    }
    expect(degradationAt(0.5, 0.6)).toBe(0);
    expect(degradationAt(0.8, 0.6)).toBeCloseTo(0.25, 12);
    expect(degradationAt(1, 0.6)).toBe(1);
  });

  it("is deterministic per seed however the output is chunked, the same in the fault-free twin and for a subset of sensor types", () => {
    const short = simulate(SHORT);
    expect(short.failures.length).toBeGreaterThan(0);
    const chunked = simulate(SHORT, 777);
    expect(Buffer.from(chunked.values.buffer).equals(Buffer.from(short.values.buffer))).toBe(true);
    expect(chunked.failures).toEqual(short.failures);
    expect(chunked.maintenance).toEqual(short.maintenance);
    expect(chunked.degradation).toEqual(short.degradation);
    const twin = simulate({ ...SHORT, faultRate: 0 });
    expect(twin.failures).toEqual(short.failures);
    expect(twin.maintenance).toEqual(short.maintenance);
    expect(Buffer.from(twin.modes.buffer).equals(Buffer.from(short.modes.buffer))).toBe(true);
    const vibration = simulate({ ...SHORT, sensorTypes: ["vibration"] });
    expect(vibration.failures).toEqual(short.failures);
    const other = simulate({ ...SHORT, seed: 8 });
    expect(other.failures).not.toEqual(short.failures);
  });
});
