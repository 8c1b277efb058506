/**
 * The readings a run keeps for retraining its remaining-useful-life model (`--retrain-on-drift`):
 * per machine, every sensor's value at each time step, and — once the machine's failure is known
 * (the ground truth says its remaining life is 0) — the machine as a run-to-failure unit, the
 * shape the trainer takes (operators/prediction/training: C-MAPSS units, cycle 1…n).
 *
 * Bounds. A machine keeps at most `stepsMax` steps (a longer life is not a unit the trainer can
 * use: the machine is dropped and counted); at most `machinesMax` machines are kept, the failed
 * units newest first — when full, the oldest failed unit goes, else the machine seen longest ago.
 * A reading whose time is not the machine's newest step or one it holds (a sensor that lagged
 * past the kept steps) is counted and dropped. With ClickHouse the run keeps no readings, only
 * the failures (`keepReadings` false): the units are read back from ml_sensor_data.
 */
import { CMAPSS_SENSORS, type CmapssUnit } from "../../connectors/files/mod.js";

export interface RetainedUnitsOptions {
  machinesMax: number;
  stepsMax: number;
  /**
   * False: keep no readings, only which machines failed and when (the run writes ml_sensor_data,
   * and the retraining reads the units from there: {@link unitsFromReadings}).
   */
  keepReadings: boolean;
}

export const DEFAULT_RETAINED_UNITS: Readonly<RetainedUnitsOptions> = Object.freeze({
  machinesMax: 500,
  stepsMax: 1024,
  keepReadings: true,
});

/** A machine's readings (any order within a step) and its failure time, as a unit of the trainer's shape; null when it has no step. */
export function unitsFromReadings(
  machines: ReadonlyArray<{
    machineId: string;
    failedAt: number;
    readings: ReadonlyArray<{ sensor_type: string; time: number; value: number }>;
  }>,
  stepsMax: number = DEFAULT_RETAINED_UNITS.stepsMax,
): Array<{ machineId: string; unit: CmapssUnit }> {
  const window = new RetainedUnits({ machinesMax: machines.length + 1, stepsMax, keepReadings: true });
  for (const m of machines) {
    for (const r of m.readings) window.observe(m.machineId, r.sensor_type, r.time, r.value);
    window.failed(m.machineId, m.failedAt);
  }
  return window.units();
}

interface MachineHistory {
  times: number[];
  /** sensors[k][step]: CMAPSS_SENSORS[k] (NaN where it did not report). */
  sensors: Float64Array[];
  failedAt: number | null;
}

export class RetainedUnits {
  /** Machines dropped (a life over stepsMax, or evicted for room) and readings that fit no step. */
  readonly dropped = { machines: 0, readings: 0 };
  private readonly machines = new Map<string, MachineHistory>();

  constructor(private readonly o: RetainedUnitsOptions = DEFAULT_RETAINED_UNITS) {}

  /** One reading; a sensor that is not a C-MAPSS sensor (s1…s21) is not the trainer's and is ignored. */
  observe(machineId: string, sensorType: string, time: number, value: number): void {
    const k = SENSOR_INDEX.get(sensorType);
    if (k === undefined || !this.o.keepReadings) return;
    const m = this.machine(machineId);
    if (m === null) return;
    const step = stepOf(m.times, time);
    if (step < 0) {
      if (m.times.length >= this.o.stepsMax) {
        this.machines.delete(machineId);
        this.dropped.machines++;
        return;
      }
      m.times.push(time);
      if (m.sensors[0].length < m.times.length) grow(m, m.times.length);
      m.sensors[k][m.times.length - 1] = value;
      return;
    }
    if (step >= m.times.length) {
      this.dropped.readings++;
      return;
    }
    m.sensors[k][step] = value;
  }

  /** The machine failed at `time` (its remaining life is 0 there): it becomes a unit the trainer can use. */
  failed(machineId: string, time: number): void {
    const m = this.o.keepReadings ? this.machines.get(machineId) : this.machine(machineId);
    if (m !== undefined && m !== null && m.failedAt === null) m.failedAt = time;
  }

  /** The machines known to have failed, and when, in the order they failed. */
  failedMachines(): Array<{ machineId: string; failedAt: number }> {
    return [...this.machines.entries()]
      .filter(([, m]) => m.failedAt !== null)
      .map(([machineId, m]) => ({ machineId, failedAt: m.failedAt as number }))
      .sort((a, b) => a.failedAt - b.failedAt);
  }

  /** Failed machines as run-to-failure units (cycles 1…n up to the failure), in the order they failed; `unit` numbers them 1…. */
  units(): Array<{ machineId: string; unit: CmapssUnit }> {
    const failed = [...this.machines.entries()].filter(([, m]) => m.failedAt !== null);
    failed.sort((a, b) => (a[1].failedAt as number) - (b[1].failedAt as number));
    return failed.map(([machineId, m], i) => {
      const n = m.times.filter((t) => t <= (m.failedAt as number)).length;
      return {
        machineId,
        unit: {
          unit: i + 1,
          cycles: Int32Array.from({ length: n }, (_, c) => c + 1),
          settings: [],
          sensors: m.sensors.map((column) => column.slice(0, n)),
        },
      };
    });
  }

  get size(): number {
    return this.machines.size;
  }

  private machine(machineId: string): MachineHistory | null {
    let m = this.machines.get(machineId);
    if (m !== undefined) return m;
    if (this.machines.size >= this.o.machinesMax) this.evictOne();
    m = { times: [], sensors: CMAPSS_SENSORS.map(() => new Float64Array(0)), failedAt: null };
    this.machines.set(machineId, m);
    return m;
  }

  /** Room for one machine: the oldest failed unit, else the machine seen longest ago (the map's first). */
  private evictOne(): void {
    let victim: string | undefined;
    let oldest = Number.POSITIVE_INFINITY;
    for (const [id, m] of this.machines) {
      if (m.failedAt !== null && m.failedAt < oldest) {
        oldest = m.failedAt;
        victim = id;
      }
    }
    victim ??= this.machines.keys().next().value;
    if (victim !== undefined) {
      this.machines.delete(victim);
      this.dropped.machines++;
    }
  }
}

const SENSOR_INDEX = new Map(CMAPSS_SENSORS.map((s, k) => [s.name, k]));

/** Index of `time` in the ascending `times`; -1 when it is newer than all; times.length when it is older than those held or between them. */
function stepOf(times: readonly number[], time: number): number {
  const last = times.length - 1;
  if (last < 0 || time > times[last]) return -1;
  for (let i = last; i >= 0 && times[i] >= time; i--) if (times[i] === time) return i;
  return times.length;
}

/** Doubles the sensors' columns to hold at least `steps` steps (new cells NaN). */
function grow(m: MachineHistory, steps: number): void {
  const size = Math.max(steps, 2 * (m.sensors[0]?.length ?? 0), 16);
  m.sensors = m.sensors.map((column) => {
    const next = new Float64Array(size).fill(Number.NaN);
    next.set(column);
    return next;
  });
}
