/**
 * The process and quality simulator (connectors/sim/batch-simulator.ts): the same options give
 * the same events; the ground-truth process model has the effects its documentation states; the
 * outcomes are consistent; the in-stream batch features equal the rolling reference's statistics.
 */
import { describe, expect, it } from "vitest";
import {
  BatchSimulator,
  BatchSimulatorConfigError,
  expectedYield,
  formatProcessNdjson,
  formatQualityNdjson,
  processHazards,
} from "../connectors/sim/batch-simulator.js";
import { BatchFeatureState, QUALITY_SERIES, QUALITY_STATISTICS, type ProcessRecord } from "../operators/quality/mod.js";
import { COL, RollingReference } from "../kernels/reference/rolling-reference.js";

/** Every event of a simulator as its NDJSON line. */
function lines(options: ConstructorParameters<typeof BatchSimulator>[0]): string[] {
  const sim = new BatchSimulator(options);
  const out: string[] = [];
  for (let kind = sim.next(); kind !== null; kind = sim.next())
    out.push(kind === "process" ? formatProcessNdjson(sim.reading) : formatQualityNdjson(sim.outcome as NonNullable<typeof sim.outcome>));
  return out;
}

const NOMINAL = { temperature: 21.5, humidity: 45, pressure: 15, speed: 300, feed_rate: 100 };

describe("batch simulator", () => {
  it("simulator - the same options give the same events; another seed gives others", () => {
    const a = lines({ seed: 5, batches: 12, lines: 3 });
    expect(lines({ seed: 5, batches: 12, lines: 3 })).toEqual(a);
    expect(lines({ seed: 6, batches: 12, lines: 3 })).not.toEqual(a);
    expect(a.filter((l) => l.includes('"record_type":"quality"')).length).toBe(12);
  });

  it("simulator - events are in time order, a batch's readings end with its outcome, units add up", () => {
    const sim = new BatchSimulator({ seed: 2, batches: 20, lines: 4 });
    let last = -Infinity;
    const running = new Map<string, { units: number; planned: number }>();
    let outcomes = 0;
    for (let kind = sim.next(); kind !== null; kind = sim.next()) {
      if (kind === "process") {
        const r = sim.reading;
        expect(r.timestamp).toBeGreaterThanOrEqual(last);
        last = r.timestamp;
        const before = running.get(r.batch_id);
        if (before !== undefined) expect(r.units_produced).toBeGreaterThan(before.units);
        running.set(r.batch_id, { units: r.units_produced, planned: r.planned_units });
        continue;
      }
      const q = sim.outcome as NonNullable<typeof sim.outcome>;
      outcomes++;
      expect(q.timestamp).toBe(last);
      expect(q.units_produced).toBe(running.get(q.batch_id)?.planned);
      const defective = q.defects.packaging + q.defects.labelling + q.defects.serialization + q.defects.other;
      expect(q.defect_rate).toBeCloseTo(defective / q.units_produced, 6);
      expect(q.first_pass_yield).toBeCloseTo(1 - (defective + q.reworked_units) / q.units_produced, 6);
      expect(q.first_pass_yield).toBeLessThanOrEqual(1 - q.defect_rate + 1e-9);
    }
    expect(outcomes).toBe(20);
    expect(sim.done).toBe(true);
  });

  it("process model - each documented effect lowers the expected yield in its own category", () => {
    const at = (p: Partial<typeof NOMINAL>, grade = "C", supplier = "SUP-A") => processHazards({ ...NOMINAL, ...p }, grade, supplier);
    const base = at({});
    // Inside every window nothing changes.
    expect(at({ temperature: 24.9, humidity: 59, pressure: 11, speed: 320, feed_rate: 101.9 })).toEqual(base);
    // Temperature out of its window: packaging (and serialization, rework) rise, yield falls.
    expect(at({ temperature: 29 }).packaging).toBeGreaterThan(2 * base.packaging);
    expect(expectedYield(at({ temperature: 29 }))).toBeLessThan(expectedYield(base) - 0.01);
    expect(expectedYield(at({ temperature: 14 }))).toBeLessThan(expectedYield(base));
    // Humidity: labelling most.
    expect(at({ humidity: 75 }).labelling).toBeGreaterThan(3 * base.labelling);
    // A drifting feed rate: labelling, and more the further it drifts.
    expect(at({ feed_rate: 106 }).labelling).toBeGreaterThan(at({ feed_rate: 104 }).labelling);
    expect(at({ feed_rate: 94 }).labelling).toBeGreaterThan(5 * base.labelling);
    // Speed above 320 units/min: serialization.
    expect(at({ speed: 360 }).serialization).toBeGreaterThan(3 * base.serialization);
    // Low cleanroom pressure and a grade-D room: other.
    expect(at({ pressure: 6 }).other).toBeGreaterThan(2 * base.other);
    expect(at({}, "D").other).toBeGreaterThan(at({}, "B").other);
    // Supplier C's material is worse; B slightly.
    expect(at({}, "C", "SUP-C").packaging).toBeGreaterThan(2 * base.packaging);
    expect(at({}, "C", "SUP-B").packaging).toBeGreaterThan(base.packaging);
    expect(expectedYield(at({}, "C", "SUP-C"))).toBeLessThan(expectedYield(at({}, "C", "SUP-B")));
  });

  it("process model - batches with a temperature excursion have a lower expected yield than those without", () => {
    const sim = new BatchSimulator({ seed: 3, batches: 300 });
    const maxTemperature = new Map<string, number>();
    const hot: number[] = [];
    const normal: number[] = [];
    for (let kind = sim.next(); kind !== null; kind = sim.next()) {
      if (kind === "process") {
        const id = sim.reading.batch_id;
        maxTemperature.set(id, Math.max(maxTemperature.get(id) ?? -Infinity, sim.reading.process_parameters.temperature));
        continue;
      }
      const q = sim.outcome as NonNullable<typeof sim.outcome>;
      ((maxTemperature.get(q.batch_id) as number) > 27 ? hot : normal).push(q.expected?.first_pass_yield as number);
    }
    const mean = (x: number[]) => x.reduce((a, b) => a + b, 0) / x.length;
    expect(hot.length).toBeGreaterThan(10);
    expect(mean(hot)).toBeLessThan(mean(normal) - 0.01);
  });

  it("simulator - a bad option is a BatchSimulatorConfigError naming it", () => {
    expect(() => new BatchSimulator({ lines: 0 })).toThrow(BatchSimulatorConfigError);
    expect(() => new BatchSimulator({ readingIntervalMs: 5 })).toThrow(/readingIntervalMs/);
    expect(() => new BatchSimulator({ plannedUnitsMin: 10, plannedUnitsMax: 5 })).toThrow(/plannedUnitsMax/);
  });
});

describe("batch features", () => {
  it("features - the in-stream aggregates equal the rolling reference's over the whole batch (time window, slope per hour)", () => {
    const sim = new BatchSimulator({ seed: 9, batches: 3, lines: 1 });
    const state = new BatchFeatureState();
    const refs = QUALITY_SERIES.map(
      () => new RollingReference({ mode: 1, cap: 65535, span: Number.MAX_SAFE_INTEGER, alpha: 0.1, timeScale: 3_600_000 }),
    );
    let batch = "";
    let checked = 0;
    for (let kind = sim.next(); kind !== null; kind = sim.next()) {
      if (kind !== "process") continue;
      const r: ProcessRecord = sim.reading;
      if (r.batch_id !== batch) {
        batch = r.batch_id;
        state.reset();
        refs.forEach((_, k) => {
          refs[k] = new RollingReference({ mode: 1, cap: 65535, span: Number.MAX_SAFE_INTEGER, alpha: 0.1, timeScale: 3_600_000 });
        });
      }
      state.add(r);
      QUALITY_SERIES.forEach((series, k) => {
        const value =
          series in r.process_parameters
            ? r.process_parameters[series as keyof typeof r.process_parameters]
            : r.environmental_conditions[series as "ambient_temperature"];
        const row = refs[k].push(r.timestamp, value);
        for (const st of QUALITY_STATISTICS) {
          const expected = row[COL[st]];
          // Undefined statistics (std and slope of one reading) are features of 0.
          const want = Number.isNaN(expected) ? 0 : expected;
          const got = state.statistic(k, st);
          expect(Math.abs(got - want)).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(want)));
        }
        checked++;
      });
    }
    expect(checked).toBeGreaterThan(300);
    expect(state.progress).toBe(1);
  });
});
