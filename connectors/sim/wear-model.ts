/**
 * The simulator's wear model: how its machines degrade toward failure, fail, and are maintained.
 *
 * Each machine has a type (machine index mod {@link MACHINE_TYPES}.length: M-001 a blister packer,
 * M-002 a cartoner, …) and its type one dominant failure mode ({@link FAILURE_MODES}): a component
 * whose condition moves some sensors' levels. The model is the P-F curve of reliability
 * engineering (Moubray, Reliability-Centred Maintenance, 1997):
 * - a component's life L is drawn at installation, in running hours (the machine's time in mode
 *   "running"), from a Weibull distribution with the mode's scale and shape;
 * - for the first `onsetFraction` of L nothing shows (the P point is the onset of detectable
 *   degradation); from there the degradation d rises as ((x − onset) / (1 − onset))², x = running
 *   hours / L, from 0 to 1 at failure (the F point, x = 1);
 * - each affected sensor reads level × (1 + effect × d) (effect: the relative change of its level at
 *   failure, signed), in every operating mode, on top of the level wear drift of {@link SensorSpec};
 * - at x = 1 the machine fails: it goes down at once (mode "maintenance") for a corrective repair
 *   of `correctiveDowntimeHours`, the component is replaced, and the machine resumes new (x = 0, a
 *   new L);
 * - a scheduled maintenance (the mode chain entering "maintenance") replaces the component with
 *   probability `preventiveReplaceProbability` (preventive maintenance; else a service without
 *   parts), and the machine also resumes new when it does.
 * Machines start part-way through a component's life: x uniform in [0, {@link START_LIFE_FRACTION_MAX}).
 *
 * Records, as the maintenance history keeps them: every maintenance period (its start, end,
 * type preventive/corrective, components replaced, downtime in hours) as a {@link MaintenanceRecord};
 * every failure as a {@link FailureLabel} (machine, time, cause: the evaluation's ground truth,
 * as FaultLabel is for injected faults); every degradation phase (P to F, or to a preventive
 * replacement) as a {@link DegradationLabel}. Wear is not a fault: the fault-free twin of a seed
 * (faultRate 0) degrades, fails and is maintained exactly as the faulty run does.
 *
 * Determinism: the lives and the preventive draws come from their own stream per machine
 * (seed, purpose, machine index), and the machine's state advances once per tick, so chunking,
 * other machines and the sensor types simulated change none of it.
 */
import { SeededRandom } from "../../engine/core/mod.js";

/** The sensor types a failure mode moves (plant-simulator.ts SENSOR_TYPES, of which these are a part). */
export type WearSensor = "temperature" | "vibration" | "pressure" | "motor_current";

export const MACHINE_TYPES = ["blister_packer", "cartoner", "labeller", "case_packer"] as const;
export type MachineType = (typeof MACHINE_TYPES)[number];

/** How one machine type wears out. */
export interface FailureModeSpec {
  /** The failure's cause, as a FailureLabel names it. */
  cause: string;
  /** The component a repair replaces. */
  component: string;
  /** Relative change of each affected sensor's level at failure (signed; +1.1 = 2.1 × the level). */
  effects: Readonly<Partial<Record<WearSensor, number>>>;
  /** Weibull scale and shape of the component's life, in running hours. */
  lifeScaleRunningHours: number;
  lifeShape: number;
  /** Share of the life before degradation shows (the P point). */
  onsetFraction: number;
  /** Chance that a scheduled maintenance replaces the component. */
  preventiveReplaceProbability: number;
  /** [min, max] hours a corrective repair keeps the machine down. */
  correctiveDowntimeHours: readonly [number, number];
}

/**
 * Per machine type. The effects are sized like their field counterparts: a failing bearing
 * doubles the vibration velocity (ISO 10816 moves from zone A/B to C/D), a tired heater
 * element needs more current for a hotter run, a worn vacuum pump loses pressure.
 */
export const FAILURE_MODES: Readonly<Record<MachineType, FailureModeSpec>> = Object.freeze({
  blister_packer: {
    cause: "heater_degradation",
    component: "forming heater element",
    effects: { temperature: 0.15, motor_current: 0.08 },
    lifeScaleRunningHours: 70,
    lifeShape: 3,
    onsetFraction: 0.6,
    preventiveReplaceProbability: 0.08,
    correctiveDowntimeHours: [3, 8],
  },
  cartoner: {
    cause: "bearing_wear",
    component: "main drive bearing",
    effects: { vibration: 1.1, motor_current: 0.08, temperature: 0.03 },
    lifeScaleRunningHours: 60,
    lifeShape: 2.5,
    onsetFraction: 0.6,
    preventiveReplaceProbability: 0.08,
    correctiveDowntimeHours: [4, 10],
  },
  labeller: {
    cause: "vacuum_pump_wear",
    component: "vacuum pump",
    effects: { pressure: -0.18, motor_current: 0.1 },
    lifeScaleRunningHours: 80,
    lifeShape: 3,
    onsetFraction: 0.6,
    preventiveReplaceProbability: 0.08,
    correctiveDowntimeHours: [2, 6],
  },
  case_packer: {
    cause: "gearbox_wear",
    component: "gearbox",
    effects: { vibration: 0.7, motor_current: 0.15, temperature: 0.05 },
    lifeScaleRunningHours: 90,
    lifeShape: 3,
    onsetFraction: 0.6,
    preventiveReplaceProbability: 0.08,
    correctiveDowntimeHours: [6, 12],
  },
} satisfies Record<MachineType, FailureModeSpec>);

/** Machines start at most this far into a component's life. */
export const START_LIFE_FRACTION_MAX = 0.9;

/** The type of machine index `m` (0-based). */
export function machineTypeOf(m: number): MachineType {
  return MACHINE_TYPES[m % MACHINE_TYPES.length];
}

/** Ground truth of one failure: the machine went down at `at` (epoch ms) for `cause`. */
export interface FailureLabel {
  machine_id: string;
  machine_type: MachineType;
  /** Epoch ms of the failure (the first reading of the machine's downtime is at or after it). */
  at: number;
  cause: string;
  component: string;
  /** Epoch ms of the onset of detectable degradation (the P point) before this failure. */
  degradation_start: number;
  /** Running hours of the component at failure: its life. */
  running_hours: number;
}

/** One maintenance period, as a maintenance history records it. */
export interface MaintenanceRecord {
  machine_id: string;
  machine_type: MachineType;
  maintenance_type: "preventive" | "corrective";
  /** Epoch ms the machine went down and came back. */
  start: number;
  end: number;
  downtime_hours: number;
  /** The parts replaced (empty: a service without parts). */
  components_replaced: string[];
  /** The failure a corrective maintenance repaired; null for preventive. */
  failure_cause: string | null;
}

/**
 * A degradation phase of a machine: from its onset (`start`, the P point) to the failure or the
 * preventive replacement that ended it (`end`). Emitted twice: at the onset with `end` null, and
 * once it ends with `end` set (same machine and start).
 */
export interface DegradationLabel {
  machine_id: string;
  machine_type: MachineType;
  /** The sensors whose levels move. */
  sensor_types: WearSensor[];
  cause: string;
  start: number;
  end: number | null;
  /** How it ended: "failure", "preventive", or null while under way. */
  ended_by: "failure" | "preventive" | null;
}

/** Degradation d ∈ [0, 1] at life fraction x: 0 before the onset, then ((x − onset) / (1 − onset))². */
export function degradationAt(x: number, onsetFraction: number): number {
  if (x <= onsetFraction) return 0;
  const u = Math.min(1, (x - onsetFraction) / (1 - onsetFraction));
  return u * u;
}

/** A component life in running hours: Weibull(scale, shape) by inversion of an Exp(1) draw `e`. */
export function weibullLife(spec: FailureModeSpec, e: number): number {
  return spec.lifeScaleRunningHours * e ** (1 / spec.lifeShape);
}

/** Where the wear state reports what happens. */
export interface WearListener {
  failure(label: FailureLabel): void;
  maintenance(record: MaintenanceRecord): void;
  degradation(label: DegradationLabel): void;
}

/**
 * The wear state of every machine, advanced once per tick by the simulator. `keyDegradation[k]`
 * is effect × d of sensor key k (machine-major, `sensorTypes` per machine): the relative level
 * change the simulator adds; exactly 0 for a sensor the machine's failure mode does not move and
 * before the onset.
 */
export class WearState {
  readonly keyDegradation: Float64Array;
  private readonly keyEffect: Float64Array;
  private readonly spec: FailureModeSpec[];
  private readonly rng: SeededRandom[];
  private readonly runTicks: Float64Array;
  private readonly lifeTicks: Float64Array;
  private readonly onsetTicks: Float64Array;
  private readonly degradationStart: Float64Array; // NaN: not degrading
  private readonly replacePending: Uint8Array;
  private readonly corrective: Uint8Array;
  private readonly maintenanceStart: Float64Array;
  private readonly failureCause: (string | null)[];
  private readonly ticksPerHour: number;

  constructor(
    private readonly ids: readonly string[],
    private readonly sensorTypes: readonly string[],
    rateHz: number,
    seedOf: (m: number) => number,
    private readonly listener: WearListener,
  ) {
    const machines = ids.length;
    const S = sensorTypes.length;
    this.ticksPerHour = 3600 * rateHz;
    this.keyDegradation = new Float64Array(machines * S);
    this.keyEffect = new Float64Array(machines * S);
    this.spec = ids.map((_, m) => FAILURE_MODES[machineTypeOf(m)]);
    this.rng = ids.map((_, m) => new SeededRandom(seedOf(m)));
    this.runTicks = new Float64Array(machines);
    this.lifeTicks = new Float64Array(machines);
    this.onsetTicks = new Float64Array(machines);
    this.degradationStart = new Float64Array(machines).fill(Number.NaN);
    this.replacePending = new Uint8Array(machines);
    this.corrective = new Uint8Array(machines);
    this.maintenanceStart = new Float64Array(machines);
    this.failureCause = ids.map(() => null);
    for (let m = 0; m < machines; m++) {
      const effects = this.spec[m].effects as Readonly<Record<string, number | undefined>>;
      for (let s = 0; s < S; s++) this.keyEffect[m * S + s] = effects[sensorTypes[s]] ?? 0;
      this.newComponent(m, this.rng[m].next() * START_LIFE_FRACTION_MAX);
      this.setDegradation(m);
    }
  }

  /**
   * One tick of machine m at `at` (epoch ms) in its current mode: a running tick ages the
   * component. Returns the corrective downtime in ms when the machine fails at this tick (the
   * caller puts it into maintenance for that long), else 0.
   */
  tick(m: number, at: number, running: boolean): number {
    if (running) this.runTicks[m]++;
    if (Number.isNaN(this.degradationStart[m]) && this.runTicks[m] >= this.onsetTicks[m]) this.beginDegradation(m, at);
    if (this.runTicks[m] >= this.lifeTicks[m] && this.corrective[m] === 0) return this.fail(m, at);
    if (running && !Number.isNaN(this.degradationStart[m])) this.setDegradation(m);
    return 0;
  }

  /** Machine m enters a scheduled maintenance at `at`: a preventive replacement or not, drawn now. */
  beginMaintenance(m: number, at: number): void {
    this.maintenanceStart[m] = at;
    this.corrective[m] = 0;
    this.replacePending[m] = this.rng[m].next() < this.spec[m].preventiveReplaceProbability ? 1 : 0;
  }

  /** Machine m leaves maintenance at `at`: the record; a replaced component resumes new. */
  endMaintenance(m: number, at: number): void {
    const spec = this.spec[m];
    const replaced = this.replacePending[m] === 1;
    const corrective = this.corrective[m] === 1;
    this.listener.maintenance({
      machine_id: this.ids[m],
      machine_type: machineTypeOf(m),
      maintenance_type: corrective ? "corrective" : "preventive",
      start: this.maintenanceStart[m],
      end: at,
      downtime_hours: (at - this.maintenanceStart[m]) / 3_600_000,
      components_replaced: replaced ? [spec.component] : [],
      failure_cause: corrective ? this.failureCause[m] : null,
    });
    if (!replaced) return;
    if (!corrective && !Number.isNaN(this.degradationStart[m])) this.endDegradation(m, at, "preventive");
    this.corrective[m] = 0;
    this.replacePending[m] = 0;
    this.failureCause[m] = null;
    this.newComponent(m, 0);
    this.setDegradation(m);
  }

  /** Running hours of machine m's component so far, and its life (ground truth, for tests and evaluation). */
  life(m: number): { runningHours: number; lifeHours: number } {
    return { runningHours: this.runTicks[m] / this.ticksPerHour, lifeHours: this.lifeTicks[m] / this.ticksPerHour };
  }

  private fail(m: number, at: number): number {
    const spec = this.spec[m];
    this.listener.failure({
      machine_id: this.ids[m],
      machine_type: machineTypeOf(m),
      at,
      cause: spec.cause,
      component: spec.component,
      degradation_start: this.degradationStart[m],
      running_hours: this.runTicks[m] / this.ticksPerHour,
    });
    this.endDegradation(m, at, "failure");
    this.maintenanceStart[m] = at;
    this.corrective[m] = 1;
    this.replacePending[m] = 1;
    this.failureCause[m] = spec.cause;
    const [lo, hi] = spec.correctiveDowntimeHours;
    return (lo + (hi - lo) * this.rng[m].next()) * 3_600_000;
  }

  private beginDegradation(m: number, at: number): void {
    this.degradationStart[m] = at;
    this.listener.degradation(this.degradationLabel(m, at, null, null));
  }

  private endDegradation(m: number, at: number, by: "failure" | "preventive"): void {
    this.listener.degradation(this.degradationLabel(m, this.degradationStart[m], at, by));
    this.degradationStart[m] = Number.NaN;
  }

  private degradationLabel(m: number, start: number, end: number | null, by: DegradationLabel["ended_by"]): DegradationLabel {
    const spec = this.spec[m];
    return {
      machine_id: this.ids[m],
      machine_type: machineTypeOf(m),
      sensor_types: Object.keys(spec.effects) as WearSensor[],
      cause: spec.cause,
      start,
      end,
      ended_by: by,
    };
  }

  /** A new component: its life drawn now, `fraction` of it already run. */
  private newComponent(m: number, fraction: number): void {
    const spec = this.spec[m];
    const life = Math.max(2, Math.round(weibullLife(spec, this.rng[m].exponential()) * this.ticksPerHour));
    this.lifeTicks[m] = life;
    this.onsetTicks[m] = Math.max(1, Math.ceil(spec.onsetFraction * life));
    this.runTicks[m] = Math.floor(fraction * life);
  }

  private setDegradation(m: number): void {
    const d = degradationAt(this.runTicks[m] / this.lifeTicks[m], this.spec[m].onsetFraction);
    const S = this.sensorTypes.length;
    for (let k = m * S; k < (m + 1) * S; k++) this.keyDegradation[k] = this.keyEffect[k] * d;
  }
}
