/**
 * Plant simulator: a seeded, deterministic source of packaging-line sensor readings with
 * labelled injected faults — for tests, demos, benchmarks and detector evaluation.
 *
 * Goals
 * - Same options → the same records, bit for bit, however the caller chunks the reads.
 * - Signals that look like a line: per-machine levels, sensor noise, a daily ambient cycle,
 *   wear drift, operating modes with first-order responses, work orders.
 * - Ground truth: every injected fault comes with a {@link FaultLabel} naming its samples.
 * - Machines wear out toward failure, fail and are maintained (wear-model.ts: per machine type,
 *   the P-F curve, preventive and corrective maintenance); every failure comes with a
 *   {@link FailureLabel}, every maintenance period with a {@link MaintenanceRecord}.
 * - ≥ 5 M records/s on one core through {@link PlantSimulator.fillColumns} (no per-record allocation).
 *
 * Non-goals: physical fidelity beyond plausibility; process/serial streams (sensor readings only).
 *
 * Determinism and independence. Every random draw comes from engine/core's sfc32 generator seeded through
 * splitmix32 from (seed, purpose, machine index, sensor type). Each sensor key has its own noise
 * stream and its own fault stream; each machine has its own mode stream. Consequences a user
 * can rely on:
 * - a run restricted to some sensor types is exactly the matching subset of the full run;
 * - a run with `faultRate: 0` is the fault-free ("clean") twin of the same seed: the faulty run
 *   differs from it only at the samples named by the labels (wear, failures and maintenance are
 *   not faults: both twins have them);
 * - a machine's data does not depend on how many other machines are simulated, except the
 *   work-order numbers, which come from one plant-wide counter.
 * Math.sin/log/sqrt/exp are V8's ports of fdlibm, so results are identical across platforms
 * for a given Node major version.
 */
import { LinewatchError, normalAt, type RecordBatch, SeededRandom, seedSfc32At, streamKey } from "../../engine/core/mod.js";
import {
  type DegradationLabel,
  type FailureLabel,
  type MachineType,
  type MaintenanceRecord,
  machineTypeOf,
  type WearListener,
  WearState,
} from "./wear-model.js";

// ---------------------------------------------------------------------------------------------
// Public types and constants
// ---------------------------------------------------------------------------------------------

export const SENSOR_TYPES = ["temperature", "vibration", "pressure", "motor_current", "line_speed", "humidity"] as const;
export type SensorType = (typeof SENSOR_TYPES)[number];

/** Operating modes; the index is the code stored in {@link SimulatedColumns.modes}. */
export const OPERATING_MODES = ["running", "idle", "changeover", "maintenance"] as const;
export type OperatingMode = (typeof OPERATING_MODES)[number];

export const FAULT_KINDS = ["spike", "level_shift", "slow_drift", "stuck", "noise_burst"] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** One reading in the source schema (DESIGN.md §4); field names exactly as the source systems send them. */
export interface SensorRecord {
  machine_id: string;
  /** ISO-8601 UTC with milliseconds, e.g. `2026-01-01T00:00:00.100Z`. */
  timestamp: string;
  sensor_type: string;
  sensor_value: number;
  sensor_unit: string;
  operating_mode: string;
  work_order_id: string;
}

/** The identity of one simulated sensor. Its index in {@link PlantSimulator.keys} is its key index. */
export interface SensorKey {
  machine_id: string;
  sensor_type: SensorType;
  sensor_unit: string;
}

/**
 * Ground truth for one injected fault. `start` and `end` are the epoch-ms times of the first and
 * last affected sample of that sensor (inclusive). `magnitude` by kind:
 * - spike: offset added to each spiked sample (sensor units, signed, 10–20 σ); 1–3 samples;
 * - level_shift: offset added over the window (signed, 4–8 σ);
 * - slow_drift: offset reached at the last sample of a linear ramp from 0 (signed, 6–15 σ);
 * - stuck: 0 (the reading repeats the last value before `start`, exactly);
 * - noise_burst: k, the noise sigma multiplier (3–8) over the window.
 * A label is emitted when its fault starts, so for a run that stops early `end` may lie after
 * the last generated record. Readings under a fault may leave the sensor's physical range.
 */
export interface FaultLabel {
  machine_id: string;
  sensor_type: SensorType;
  fault: FaultKind;
  start: number;
  end: number;
  magnitude: number;
}

/**
 * A chunk of generated readings, in time order, as parallel columns. `length` entries are valid;
 * the arrays may be longer.
 */
export interface SimulatedColumns {
  length: number;
  /** Index into {@link PlantSimulator.keys}. */
  keyIndex: Uint32Array;
  /** Epoch milliseconds, integers, non-decreasing. */
  times: Float64Array;
  /** Readings at full precision (file writers round; these do not). */
  values: Float64Array;
  /** Index into {@link OPERATING_MODES}. */
  modes: Uint8Array;
  /** Work order code: year × 1 000 000 + number; see {@link formatWorkOrder}. */
  workOrders: Uint32Array;
}

/** How one sensor type behaves. Levels are for an average machine; each machine scales them. */
export interface SensorSpec {
  unit: string;
  /** Steady level per operating mode. */
  levels: Readonly<Record<OperatingMode, number>>;
  /** Standard deviation of the Gaussian measurement noise, in sensor units. */
  noiseSigma: number;
  /** Time constant of the first-order response to a mode change. */
  responseTimeMs: number;
  /** Amplitude of the 24 h ambient cycle, in sensor units, and the UTC hour of its maximum. */
  dailyAmplitude: number;
  dailyPeakHourUtc: number;
  /** Relative rise of the level per week of running (bearing wear); reset by maintenance. */
  wearPerRunningWeek: number;
  /** Relative standard deviation of the per-machine level factor. */
  machineSpread: number;
  /** Physical range of the fault-free reading (faulty readings may leave it). */
  min: number;
  max: number;
}

/** A sensor without a daily ambient cycle or wear, reading from 0 up: what most of them are. */
const STEADY = { dailyAmplitude: 0, dailyPeakHourUtc: 0, wearPerRunningWeek: 0, min: 0 } as const;

export const SENSOR_SPECS: Readonly<Record<SensorType, SensorSpec>> = Object.freeze({
  temperature: {
    ...STEADY,
    unit: "°C",
    levels: { running: 42, idle: 32, changeover: 30, maintenance: 24 },
    noiseSigma: 0.15,
    responseTimeMs: 600_000,
    dailyAmplitude: 1.5,
    dailyPeakHourUtc: 15,
    machineSpread: 0.05,
    min: -40,
    max: 250,
  },
  vibration: {
    ...STEADY,
    unit: "mm/s",
    levels: { running: 2.8, idle: 0.4, changeover: 0.9, maintenance: 0.1 },
    noiseSigma: 0.06,
    responseTimeMs: 15_000,
    wearPerRunningWeek: 0.12,
    machineSpread: 0.15,
    max: 100,
  },
  pressure: {
    ...STEADY,
    unit: "bar",
    levels: { running: 6.0, idle: 6.3, changeover: 5.8, maintenance: 0.5 },
    noiseSigma: 0.03,
    responseTimeMs: 20_000,
    machineSpread: 0.03,
    max: 16,
  },
  motor_current: {
    ...STEADY,
    unit: "A",
    levels: { running: 11.5, idle: 1.2, changeover: 3.5, maintenance: 0 },
    noiseSigma: 0.15,
    responseTimeMs: 10_000,
    wearPerRunningWeek: 0.04,
    machineSpread: 0.08,
    max: 100,
  },
  line_speed: {
    ...STEADY,
    unit: "packs/min",
    levels: { running: 240, idle: 0, changeover: 15, maintenance: 0 },
    noiseSigma: 1.5,
    responseTimeMs: 20_000,
    machineSpread: 0.1,
    max: 1000,
  },
  humidity: {
    ...STEADY,
    unit: "%RH",
    levels: { running: 45, idle: 45, changeover: 45, maintenance: 45 },
    noiseSigma: 0.4,
    responseTimeMs: 1_800_000,
    dailyAmplitude: 6,
    dailyPeakHourUtc: 5,
    machineSpread: 0.05,
    max: 100,
  },
} satisfies Record<SensorType, SensorSpec>);

export interface SimulatorOptions {
  /** PRNG seed, any safe integer. */
  seed: number;
  /** Number of machines, ids `M-001`, `M-002`, … */
  machines: number;
  /** Sensor types on every machine, in key order; no duplicates. */
  sensorTypes: readonly SensorType[];
  /** Readings per second per sensor (0 < rateHz ≤ 1000; timestamps have ms resolution). */
  rateHz: number;
  /** Time of the first tick, integer epoch ms. */
  startTime: number;
  /** Expected injected faults per sensor per hour (Poisson arrivals; one active at a time per sensor). */
  faultRate: number;
  /** Stop before the first reading at or after startTime + durationMs. */
  durationMs?: number;
  /** Stop after this many readings. */
  maxRecords?: number;
  /** Labels kept for {@link PlantSimulator.drainLabels}; beyond it the oldest are dropped and counted. */
  labelsPendingMax: number;
}

export const DEFAULT_SIMULATOR_OPTIONS: Readonly<SimulatorOptions> = Object.freeze({
  seed: 1,
  machines: 8,
  sensorTypes: SENSOR_TYPES,
  rateHz: 10,
  startTime: Date.UTC(2026, 0, 1),
  faultRate: 2,
  labelsPendingMax: 100_000,
});

export const SIMULATOR_MACHINES_MAX = 10_000;
export const SIMULATOR_RATE_HZ_MAX = 1_000;
export const SIMULATOR_FAULT_RATE_MAX = 3_600;
/** First instant whose ISO-8601 form needs more than four year digits. */
const ISO_TIME_END_MS = Date.UTC(10_000, 0, 1);

/** A simulator option with a bad value; `option` names it. */
export class SimulatorConfigError extends LinewatchError {
  readonly option: keyof SimulatorOptions;
  readonly reason: string;
  readonly value: unknown;

  constructor(option: keyof SimulatorOptions, reason: string, value: unknown) {
    super(`invalid simulator option ${option}: ${reason} (got ${describeValue(value)})`);
    this.option = option;
    this.reason = reason;
    this.value = value;
  }
}

/** Defaults overlaid with `options` (undefined entries keep the default), then validated. */
export function resolveSimulatorOptions(options: Partial<SimulatorOptions> = {}): SimulatorOptions {
  const merged: SimulatorOptions = { ...DEFAULT_SIMULATOR_OPTIONS };
  for (const [name, value] of Object.entries(options)) {
    if (value !== undefined) (merged as unknown as Record<string, unknown>)[name] = value;
  }
  return validateSimulatorOptions(merged);
}

/** Checks every option and how they relate; throws {@link SimulatorConfigError}, else returns `options`. */
export function validateSimulatorOptions(options: SimulatorOptions): SimulatorOptions {
  const o = options;
  if (!Number.isSafeInteger(o.seed)) fail("seed", "must be a safe integer", o.seed);
  if (!Number.isInteger(o.machines) || o.machines < 1 || o.machines > SIMULATOR_MACHINES_MAX) {
    fail("machines", `must be an integer from 1 to ${SIMULATOR_MACHINES_MAX}`, o.machines);
  }
  validateSensorTypes(o.sensorTypes);
  if (!isFiniteNumber(o.rateHz) || o.rateHz <= 0 || o.rateHz > SIMULATOR_RATE_HZ_MAX) {
    fail("rateHz", `must be a number > 0 and ≤ ${SIMULATOR_RATE_HZ_MAX} (timestamps have ms resolution)`, o.rateHz);
  }
  if (!Number.isSafeInteger(o.startTime) || o.startTime < 0 || o.startTime >= ISO_TIME_END_MS) {
    fail("startTime", "must be integer epoch ms from 1970-01-01 to 9999-12-31", o.startTime);
  }
  if (!isFiniteNumber(o.faultRate) || o.faultRate < 0 || o.faultRate > SIMULATOR_FAULT_RATE_MAX) {
    fail("faultRate", `must be a number from 0 to ${SIMULATOR_FAULT_RATE_MAX} faults per sensor per hour`, o.faultRate);
  }
  if (o.durationMs !== undefined) {
    if (!isFiniteNumber(o.durationMs) || o.durationMs <= 0) fail("durationMs", "must be a number > 0", o.durationMs);
    if (o.startTime + o.durationMs > ISO_TIME_END_MS) fail("durationMs", "runs past year 9999", o.durationMs);
  }
  if (o.maxRecords !== undefined && (!Number.isSafeInteger(o.maxRecords) || o.maxRecords < 0)) {
    fail("maxRecords", "must be an integer ≥ 0", o.maxRecords);
  }
  if (!Number.isSafeInteger(o.labelsPendingMax) || o.labelsPendingMax < 1) {
    fail("labelsPendingMax", "must be an integer ≥ 1", o.labelsPendingMax);
  }
  return options;
}

// ---------------------------------------------------------------------------------------------
// The simulator
// ---------------------------------------------------------------------------------------------

/**
 * Generates readings tick by tick: tick j is at startTime + floor(j · 1000 / rateHz); every sensor
 * reads once per tick at its own fixed phase offset (whole ms, less than the tick spacing), and
 * readings are emitted in time order (ties: machine, then sensor type).
 *
 * All state lives in the instance, so how the output is chunked never changes it.
 */
export class PlantSimulator {
  readonly options: Readonly<SimulatorOptions>;
  private readonly keyList: readonly SensorKey[];
  private readonly state: SimulatorState;
  private columns: SimulatedColumns = allocateSimulatedColumns(0);
  private pendingLabels: FaultLabel[] = [];
  private droppedLabels = 0;
  private readonly wearRecords: { failures: FailureLabel[]; maintenance: MaintenanceRecord[]; degradation: DegradationLabel[] } = {
    failures: [],
    maintenance: [],
    degradation: [],
  };
  private readonly workOrderText: string[];
  private readonly workOrderTextCode: Uint32Array;

  constructor(options: Partial<SimulatorOptions> = {}) {
    this.options = Object.freeze(resolveSimulatorOptions(options));
    this.state = new SimulatorState(this.options, (label) => this.pushLabel(label), {
      failure: (label) => this.pushWear(this.wearRecords.failures, label),
      maintenance: (record) => this.pushWear(this.wearRecords.maintenance, record),
      degradation: (label) => this.pushWear(this.wearRecords.degradation, label),
    });
    this.keyList = Object.freeze(this.state.keys.map((key) => Object.freeze({ ...key })));
    this.workOrderText = new Array<string>(this.options.machines).fill("");
    this.workOrderTextCode = new Uint32Array(this.options.machines);
  }

  /** The sensors, in key-index order (machine-major, then sensor types in option order). */
  keys(): readonly SensorKey[] {
    return this.keyList;
  }

  /** True once the duration or record limit is reached; further reads return nothing. */
  get done(): boolean {
    return this.state.done;
  }

  /** Readings generated so far. */
  get recordsGenerated(): number {
    return this.state.generated;
  }

  /** Labels dropped because more than `labelsPendingMax` were pending. */
  get labelsDropped(): number {
    return this.droppedLabels;
  }

  /**
   * Generates up to `max` readings into arrays owned by the simulator. The returned object and its
   * arrays are reused: the next call overwrites them (they grow when a larger `max` is asked for).
   * Copy what you keep, or use {@link fillColumns} with your own buffers.
   */
  nextColumns(max: number): SimulatedColumns {
    assertCount(max);
    if (this.columns.values.length < max) this.columns = allocateSimulatedColumns(max);
    this.fillColumns(this.columns, max);
    return this.columns;
  }

  /** Generates up to `max` (default: the target's capacity) readings into caller-owned columns; returns the count. */
  fillColumns(target: SimulatedColumns, max: number = target.values.length): number {
    assertCount(max);
    const n = this.state.fill(target, Math.min(max, capacityOf(target)));
    target.length = n;
    return n;
  }

  /** Reading `i` of a chunk as a source-schema record. */
  recordAt(columns: SimulatedColumns, i: number): SensorRecord {
    const k = columns.keyIndex[i];
    return recordOf(this.keyList[k], columns, i, this.workOrderFor(this.state.machineOf[k], columns.workOrders[i]));
  }

  /** Convenience for tests and edges: the next `max` readings as records (allocates per record). */
  nextRecords(max: number): SensorRecord[] {
    const columns = this.nextColumns(max);
    const records = new Array<SensorRecord>(columns.length);
    for (let i = 0; i < columns.length; i++) records[i] = this.recordAt(columns, i);
    return records;
  }

  /** Labels of faults started since the last call, in start order. */
  drainLabels(): FaultLabel[] {
    const labels = this.pendingLabels;
    this.pendingLabels = [];
    return labels;
  }

  /** The machines, in index order, with their type (wear-model.ts). */
  machines(): Array<{ machine_id: string; machine_type: MachineType }> {
    return Array.from({ length: this.options.machines }, (_, m) => ({ machine_id: machineId(m), machine_type: machineTypeOf(m) }));
  }

  /** Failures since the last call, in time order: the ground truth of failure prediction. */
  drainFailures(): FailureLabel[] {
    return this.wearRecords.failures.splice(0);
  }

  /** Maintenance periods ended since the last call, in end order. */
  drainMaintenance(): MaintenanceRecord[] {
    return this.wearRecords.maintenance.splice(0);
  }

  /** Degradation phases begun or ended since the last call, in time order (see DegradationLabel). */
  drainDegradation(): DegradationLabel[] {
    return this.wearRecords.degradation.splice(0);
  }

  /** Wear records beyond `labelsPendingMax` per kind are dropped like fault labels (counted in labelsDropped). */
  private pushWear<T>(list: T[], item: T): void {
    if (list.length >= this.options.labelsPendingMax) {
      list.shift();
      this.droppedLabels++;
    }
    list.push(item);
  }

  private pushLabel(label: FaultLabel): void {
    if (this.pendingLabels.length >= this.options.labelsPendingMax) {
      this.pendingLabels.shift();
      this.droppedLabels++;
    }
    this.pendingLabels.push(label);
  }

  /** One cached string per machine: work orders change every few hours, readings many times a second. */
  private workOrderFor(machine: number, code: number): string {
    if (this.workOrderTextCode[machine] !== code || this.workOrderText[machine] === "") {
      this.workOrderTextCode[machine] = code;
      this.workOrderText[machine] = formatWorkOrder(code);
    }
    return this.workOrderText[machine];
  }
}

/** Allocates empty columns able to hold `capacity` readings. */
export function allocateSimulatedColumns(capacity: number): SimulatedColumns {
  return {
    length: 0,
    keyIndex: new Uint32Array(capacity),
    times: new Float64Array(capacity),
    values: new Float64Array(capacity),
    modes: new Uint8Array(capacity),
    workOrders: new Uint32Array(capacity),
  };
}

/** Reading `i` of a chunk as a record, given the simulator's key list. */
export function toSensorRecord(keys: readonly SensorKey[], columns: SimulatedColumns, i: number): SensorRecord {
  return recordOf(keys[columns.keyIndex[i]], columns, i, formatWorkOrder(columns.workOrders[i]));
}

/** Reading `i` of a chunk as the publishers put it on the wire: time in epoch ms, no work order. */
export interface WireReading {
  machine_id: string;
  sensor_type: string;
  timestamp: number;
  sensor_value: number;
  sensor_unit: string;
  operating_mode: string;
}

export function toWireReading(keys: readonly SensorKey[], columns: SimulatedColumns, i: number): WireReading {
  const k = keys[columns.keyIndex[i]];
  return {
    machine_id: k.machine_id,
    sensor_type: k.sensor_type,
    timestamp: columns.times[i],
    sensor_value: columns.values[i],
    sensor_unit: k.sensor_unit,
    operating_mode: OPERATING_MODES[columns.modes[i]],
  };
}

function recordOf(key: SensorKey, columns: SimulatedColumns, i: number, workOrder: string): SensorRecord {
  return {
    machine_id: key.machine_id,
    timestamp: formatTimestamp(columns.times[i]),
    sensor_type: key.sensor_type,
    sensor_value: columns.values[i],
    sensor_unit: key.sensor_unit,
    operating_mode: OPERATING_MODES[columns.modes[i]],
    work_order_id: workOrder,
  };
}

/**
 * Copies a chunk into an engine batch, appending after `batch.length`. `keyIds` maps simulator key
 * index → engine key id (identity when omitted); positions count from `firstPosition`.
 * Returns the number copied (limited by the batch's free capacity).
 */
export function appendColumnsToBatch(columns: SimulatedColumns, batch: RecordBatch, firstPosition: number, keyIds?: Uint32Array): number {
  const start = batch.length;
  const n = Math.min(columns.length, batch.values.length - start);
  for (let i = 0; i < n; i++) {
    const k = columns.keyIndex[i];
    batch.keyIds[start + i] = keyIds === undefined ? k : keyIds[k];
    batch.times[start + i] = columns.times[i];
    batch.values[start + i] = columns.values[i];
    batch.positions[start + i] = firstPosition + i;
  }
  batch.length = start + n;
  return n;
}

/** `M-001` for machine index 0. */
export function machineId(index: number): string {
  return `M-${String(index + 1).padStart(3, "0")}`;
}

/** `WO-2026-000123` for code 2026000123. */
export function formatWorkOrder(code: number): string {
  return `WO-${Math.floor(code / WORK_ORDER_YEAR_FACTOR)}-${String(code % WORK_ORDER_YEAR_FACTOR).padStart(6, "0")}`;
}

let isoSecond = Number.NaN;
let isoSecondPrefix = "";

/**
 * ISO-8601 UTC with milliseconds (`Date#toISOString` form). Readings of one second share the
 * formatted `YYYY-MM-DDTHH:MM:SS.` prefix, which is cached because the simulator emits dozens
 * of readings per second of event time in order.
 */
export function formatTimestamp(ms: number): string {
  const t = Math.trunc(ms);
  const second = Math.floor(t / 1000);
  if (second !== isoSecond || !(t >= 0 && t < ISO_TIME_END_MS)) {
    if (!(t >= 0 && t < ISO_TIME_END_MS)) return new Date(t).toISOString();
    isoSecond = second;
    isoSecondPrefix = new Date(second * 1000).toISOString().slice(0, 20);
  }
  const milli = t - second * 1000;
  return `${isoSecondPrefix + (milli < 10 ? "00" : milli < 100 ? "0" : "") + milli}Z`;
}

// ---------------------------------------------------------------------------------------------
// Internals: model constants
// ---------------------------------------------------------------------------------------------

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
const WEEK_MS = 7 * DAY_MS;
const WORK_ORDER_YEAR_FACTOR = 1_000_000;

const MODE_RUNNING = 0;
const MODE_CHANGEOVER = 2;
const MODE_MAINTENANCE = 3;

/** [min, max] duration of each mode, by mode code. */
const MODE_DURATION_MS: readonly (readonly [number, number])[] = [
  [1 * HOUR_MS, 3 * HOUR_MS], // running
  [5 * MINUTE_MS, 45 * MINUTE_MS], // idle
  [15 * MINUTE_MS, 45 * MINUTE_MS], // changeover (a new work order starts with it)
  [30 * MINUTE_MS, 2 * HOUR_MS], // maintenance (resets wear)
];

/** Cumulative probabilities of the next mode, row = current mode, column = next mode. */
const MODE_NEXT_CUMULATIVE: readonly (readonly number[])[] = [
  [0, 0.3, 0.9, 1], // running → idle 0.3, changeover 0.6, maintenance 0.1
  [0.85, 0.85, 0.95, 1], // idle → running 0.85, changeover 0.1, maintenance 0.05
  [1, 1, 1, 1], // changeover → running
  [0.6, 1, 1, 1], // maintenance → running 0.6, idle 0.4
];
const MODE_INITIAL_CUMULATIVE: readonly number[] = [0.7, 0.85, 0.95, 1];

const FAULT_NONE = 0;
const FAULT_SPIKE = 1;
const FAULT_LEVEL_SHIFT = 2;
const FAULT_SLOW_DRIFT = 3;
const FAULT_STUCK = 4;
const FAULT_NOISE_BURST = 5;

/** Per fault code (index − 1 into FAULT_KINDS): window [min, max] in ms and magnitude [min, max] in σ (k for noise_burst). */
const FAULT_SHAPES: readonly { durationMs: readonly [number, number]; magnitude: readonly [number, number] }[] = [
  { durationMs: [0, 0], magnitude: [10, 20] }, // spike: 1–3 samples, not a duration
  { durationMs: [2 * MINUTE_MS, 15 * MINUTE_MS], magnitude: [4, 8] },
  { durationMs: [5 * MINUTE_MS, 30 * MINUTE_MS], magnitude: [6, 15] },
  { durationMs: [30_000, 5 * MINUTE_MS], magnitude: [0, 0] },
  { durationMs: [30_000, 3 * MINUTE_MS], magnitude: [3, 8] },
];

// Stream purposes, mixed into each generator's seed.
const STREAM_SETUP = 1;
const STREAM_NOISE = 2;
const STREAM_FAULT = 3;
const STREAM_MODE = 4;
const STREAM_WORK_ORDER = 5;
const STREAM_WEAR = 6;

// ---------------------------------------------------------------------------------------------
// Internals: the generator state
// ---------------------------------------------------------------------------------------------

/** Flat per-key and per-machine arrays so the hot loop touches typed arrays only. */
class SimulatorState {
  readonly keys: SensorKey[] = [];
  readonly machineOf: Uint32Array;
  done = false;
  generated = 0;

  private readonly rateHz: number;
  private readonly startTime: number;
  private readonly endTime: number;
  private readonly maxRecords: number;
  private readonly faultGapMeanMs: number;
  private readonly keyCount: number;
  private readonly machineCount: number;
  private readonly sensorsPerMachine: number;
  private readonly onLabel: (label: FaultLabel) => void;
  /** Component wear toward failure, per machine (wear-model.ts). */
  private readonly life: WearState;

  // Per key (index k).
  private readonly typeOf: Uint8Array; // index into SENSOR_TYPES
  private readonly phaseMs: Float64Array;
  private readonly targets: Float64Array; // k * 4 + mode
  private readonly alpha: Float64Array; // first-order response per sample
  private readonly sigma: Float64Array;
  private readonly lo: Float64Array;
  private readonly hi: Float64Array;
  private readonly level: Float64Array;
  private readonly wear: Float64Array;
  private readonly wearPerSample: Float64Array;
  private readonly lastValue: Float64Array;
  private readonly hasLast: Uint8Array;
  private readonly noiseState: Int32Array; // 4 words per key
  private readonly noiseSpare: Float64Array;
  private readonly noiseHasSpare: Uint8Array;
  private readonly faultRng: SeededRandom[];
  private readonly faultNext: Float64Array; // time at or after which the next fault starts
  private readonly faultArrival: Float64Array; // next Poisson arrival
  private readonly faultCode: Uint8Array;
  private readonly faultLength: Uint32Array; // samples
  private readonly faultRemaining: Uint32Array;
  private readonly faultMagnitude: Float64Array;
  private readonly stuckValue: Float64Array;

  // Per machine (index m).
  private readonly mode: Uint8Array;
  private readonly modeEndTick: Float64Array;
  private readonly workOrder: Uint32Array;
  private readonly modeRng: SeededRandom[];
  private workOrderNext: number;

  /** Emission order within a tick: key indices sorted by phase, then machine, then sensor type. */
  private readonly order: Uint32Array;
  private readonly daily: Float64Array; // per SENSOR_TYPES index, for the current tick
  private tick = 0;
  private slot = 0;
  private tickBase = 0;

  constructor(options: Readonly<SimulatorOptions>, onLabel: (label: FaultLabel) => void, onWear: WearListener) {
    this.onLabel = onLabel;
    this.rateHz = options.rateHz;
    this.startTime = options.startTime;
    this.endTime = options.durationMs === undefined ? Infinity : options.startTime + options.durationMs;
    this.maxRecords = options.maxRecords ?? Infinity;
    this.faultGapMeanMs = options.faultRate === 0 ? Infinity : HOUR_MS / options.faultRate;
    this.machineCount = options.machines;
    this.sensorsPerMachine = options.sensorTypes.length;
    const K = (this.keyCount = this.machineCount * this.sensorsPerMachine);
    this.machineOf = new Uint32Array(K);
    this.typeOf = new Uint8Array(K);
    this.phaseMs = new Float64Array(K);
    this.targets = new Float64Array(K * 4);
    this.alpha = new Float64Array(K);
    this.sigma = new Float64Array(K);
    this.lo = new Float64Array(K);
    this.hi = new Float64Array(K);
    this.level = new Float64Array(K);
    this.wear = new Float64Array(K);
    this.wearPerSample = new Float64Array(K);
    this.lastValue = new Float64Array(K);
    this.hasLast = new Uint8Array(K);
    this.noiseState = new Int32Array(K * 4);
    this.noiseSpare = new Float64Array(K);
    this.noiseHasSpare = new Uint8Array(K);
    this.faultRng = new Array<SeededRandom>(K);
    this.faultNext = new Float64Array(K);
    this.faultArrival = new Float64Array(K);
    this.faultCode = new Uint8Array(K);
    this.faultLength = new Uint32Array(K);
    this.faultRemaining = new Uint32Array(K);
    this.faultMagnitude = new Float64Array(K);
    this.stuckValue = new Float64Array(K);
    this.mode = new Uint8Array(this.machineCount);
    this.modeEndTick = new Float64Array(this.machineCount);
    this.workOrder = new Uint32Array(this.machineCount);
    this.modeRng = new Array<SeededRandom>(this.machineCount);
    this.daily = new Float64Array(SENSOR_TYPES.length);

    const seed = options.seed;
    this.workOrderNext = 100 + Math.floor(new SeededRandom(streamKey(seed, STREAM_WORK_ORDER, 0, 0)).next() * 900);
    for (let m = 0; m < this.machineCount; m++) this.setUpMachine(m, seed);
    const ids = Array.from({ length: this.machineCount }, (_, m) => machineId(m));
    this.life = new WearState(ids, options.sensorTypes, this.rateHz, (m) => streamKey(seed, STREAM_WEAR, m, 0), onWear);
    // A machine that starts in maintenance is in a scheduled one since the run's start.
    for (let m = 0; m < this.machineCount; m++) if (this.mode[m] === MODE_MAINTENANCE) this.life.beginMaintenance(m, this.startTime);
    for (let m = 0; m < this.machineCount; m++) {
      for (let s = 0; s < this.sensorsPerMachine; s++) this.setUpKey(m * this.sensorsPerMachine + s, m, options.sensorTypes[s], seed);
    }
    this.order = this.emissionOrder();
    this.done = this.maxRecords === 0 || this.nextTime() >= this.endTime;
  }

  /** Fills `out[0..max)`; returns the count. The hot loop: typed arrays only, no allocation. */
  fill(out: SimulatedColumns, max: number): number {
    const limit = Math.min(max, this.maxRecords - this.generated);
    const { order, phaseMs, machineOf, mode, targets, alpha, level, wear, wearPerSample, sigma, daily, typeOf } = this;
    const { lo, hi, noiseState, noiseSpare, noiseHasSpare, faultNext, faultCode, lastValue, hasLast, workOrder } = this;
    const degradation = this.life.keyDegradation;
    const K = this.keyCount;
    const endTime = this.endTime;
    let n = 0;
    while (n < limit && !this.done) {
      if (this.slot === 0) this.beginTick();
      const k = order[this.slot];
      const t = this.tickBase + phaseMs[k];
      if (t >= endTime) {
        this.done = true;
        break;
      }
      const m = machineOf[k];
      const md = mode[m];
      // First-order response towards the mode's level: level += (target − level)(1 − e^(−Δt/τ)).
      const lv = level[k] + (targets[k * 4 + md] - level[k]) * alpha[k];
      level[k] = lv;
      const w = md === MODE_RUNNING ? wear[k] + wearPerSample[k] : wear[k];
      wear[k] = w;
      const z = normalAt(noiseState, k * 4, k, noiseSpare, noiseHasSpare);
      // Component degradation (wear-model.ts) scales the level like the wear drift; exactly 0 before its onset.
      let value = lv * (1 + w + degradation[k]) + daily[typeOf[k]] + sigma[k] * z;
      value = value < lo[k] ? lo[k] : Math.min(value, hi[k]);
      if (t >= faultNext[k]) this.startFault(k, t, value);
      if (faultCode[k] !== FAULT_NONE) value = this.applyFault(k, t, value, z);
      lastValue[k] = value;
      hasLast[k] = 1;
      out.keyIndex[n] = k;
      out.times[n] = t;
      out.values[n] = value;
      out.modes[n] = md;
      out.workOrders[n] = workOrder[m];
      n++;
      if (++this.slot === K) {
        this.slot = 0;
        this.tick++;
      }
    }
    this.generated += n;
    if (this.generated >= this.maxRecords || this.nextTime() >= endTime) this.done = true;
    return n;
  }

  /** Time of the reading the next call would emit. */
  private nextTime(): number {
    const base = this.slot === 0 ? this.tickTime(this.tick) : this.tickBase;
    return base + this.phaseMs[this.order[this.slot]];
  }

  private tickTime(tick: number): number {
    return this.startTime + Math.floor((tick * 1000) / this.rateHz);
  }

  /** Mode transitions and the ambient cycle advance once per tick, in machine order. */
  private beginTick(): void {
    const base = (this.tickBase = this.tickTime(this.tick));
    for (let m = 0; m < this.machineCount; m++) {
      while (this.tick >= this.modeEndTick[m]) this.changeMode(m, base);
      const downMs = this.life.tick(m, base, this.mode[m] === MODE_RUNNING);
      // A failure takes the machine down at once for its repair, whatever its mode was to be.
      if (downMs > 0) {
        this.mode[m] = MODE_MAINTENANCE;
        this.modeEndTick[m] = this.tick + this.ticksFor(downMs);
      }
    }
    const dayFraction = (base % DAY_MS) / DAY_MS;
    for (let i = 0; i < SENSOR_TYPES.length; i++) {
      const spec = SENSOR_SPECS[SENSOR_TYPES[i]];
      // sin peaks at a quarter turn, so shift the phase by (peak − 6 h).
      this.daily[i] = spec.dailyAmplitude * Math.sin(2 * Math.PI * (dayFraction - (spec.dailyPeakHourUtc - 6) / 24));
    }
  }

  private changeMode(m: number, at: number): void {
    const rng = this.modeRng[m];
    const previous = this.mode[m];
    const next = rng.pick(MODE_NEXT_CUMULATIVE[previous]);
    if (previous === MODE_MAINTENANCE) {
      for (let s = 0; s < this.sensorsPerMachine; s++) this.wear[m * this.sensorsPerMachine + s] = 0;
      this.life.endMaintenance(m, at);
    }
    if (next === MODE_MAINTENANCE) this.life.beginMaintenance(m, at);
    if (next === MODE_CHANGEOVER) this.workOrder[m] = this.newWorkOrder(at);
    this.mode[m] = next;
    this.modeEndTick[m] += this.ticksFor(rng.uniform(MODE_DURATION_MS[next][0], MODE_DURATION_MS[next][1]));
  }

  private newWorkOrder(at: number): number {
    const number = this.workOrderNext % WORK_ORDER_YEAR_FACTOR;
    this.workOrderNext++;
    return new Date(at).getUTCFullYear() * WORK_ORDER_YEAR_FACTOR + number;
  }

  private ticksFor(ms: number): number {
    return Math.max(1, Math.round((ms * this.rateHz) / 1000));
  }

  private startFault(k: number, t: number, clean: number): void {
    const rng = this.faultRng[k];
    this.faultArrival[k] += rng.exponential() * this.faultGapMeanMs;
    this.faultNext[k] = Infinity;
    const code = 1 + Math.floor(rng.next() * FAULT_KINDS.length);
    const shape = FAULT_SHAPES[code - 1];
    const length =
      code === FAULT_SPIKE ? 1 + Math.floor(rng.next() * 3) : this.ticksFor(rng.uniform(shape.durationMs[0], shape.durationMs[1]));
    const sign = rng.next() < 0.5 ? -1 : 1;
    const size = rng.uniform(shape.magnitude[0], shape.magnitude[1]);
    let magnitude = 0;
    if (code === FAULT_NOISE_BURST) magnitude = size;
    else if (code !== FAULT_STUCK) magnitude = sign * size * this.sigma[k];
    this.faultCode[k] = code;
    this.faultLength[k] = length;
    this.faultRemaining[k] = length;
    this.faultMagnitude[k] = magnitude;
    this.stuckValue[k] = this.hasLast[k] === 1 ? this.lastValue[k] : clean;
    const key = this.keys[k];
    this.onLabel({
      machine_id: key.machine_id,
      sensor_type: key.sensor_type,
      fault: FAULT_KINDS[code - 1],
      start: t,
      end: this.tickTime(this.tick + length - 1) + this.phaseMs[k],
      magnitude,
    });
  }

  /** The faulty reading for the current sample of an active fault; ends the fault after its last sample. */
  private applyFault(k: number, t: number, clean: number, z: number): number {
    const code = this.faultCode[k];
    const magnitude = this.faultMagnitude[k];
    const remaining = this.faultRemaining[k];
    let value: number;
    switch (code) {
      case FAULT_SPIKE:
      case FAULT_LEVEL_SHIFT:
        value = clean + magnitude;
        break;
      case FAULT_SLOW_DRIFT:
        value = clean + (magnitude * (this.faultLength[k] - remaining + 1)) / this.faultLength[k];
        break;
      case FAULT_STUCK:
        value = this.stuckValue[k];
        break;
      default: // FAULT_NOISE_BURST: the sample's own noise, scaled to k·σ
        value = clean + (magnitude - 1) * this.sigma[k] * z;
    }
    if (remaining === 1) {
      this.faultCode[k] = FAULT_NONE;
      // An arrival during the fault waits for it to end, so the long-run rate is kept.
      this.faultNext[k] = Math.max(this.faultArrival[k], t + 1);
    }
    this.faultRemaining[k] = remaining - 1;
    return value;
  }

  private setUpMachine(m: number, seed: number): void {
    const rng = (this.modeRng[m] = new SeededRandom(streamKey(seed, STREAM_MODE, m, 0)));
    const mode = rng.pick(MODE_INITIAL_CUMULATIVE);
    this.mode[m] = mode;
    // Start part-way through the mode so machines do not change in step.
    this.modeEndTick[m] = this.ticksFor(rng.next() * MODE_DURATION_MS[mode][1]);
    this.workOrder[m] = this.newWorkOrder(this.startTime);
  }

  private setUpKey(k: number, m: number, type: SensorType, seed: number): void {
    const typeIndex = SENSOR_TYPES.indexOf(type);
    const spec = SENSOR_SPECS[type];
    const setup = new SeededRandom(streamKey(seed, STREAM_SETUP, m, typeIndex));
    const factor = 1 + spec.machineSpread * Math.max(-3, Math.min(3, setup.normal()));
    const phaseSlots = Math.max(1, Math.floor(1000 / this.rateHz));
    const samplesPerWeek = (WEEK_MS * this.rateHz) / 1000;
    const wearRate = (spec.wearPerRunningWeek * setup.uniform(0.5, 2)) / samplesPerWeek;
    this.keys.push({ machine_id: machineId(m), sensor_type: type, sensor_unit: spec.unit });
    this.machineOf[k] = m;
    this.typeOf[k] = typeIndex;
    this.phaseMs[k] = Math.floor(setup.next() * phaseSlots);
    OPERATING_MODES.forEach((mode, i) => (this.targets[k * 4 + i] = spec.levels[mode] * factor));
    this.alpha[k] = 1 - Math.exp(-1000 / this.rateHz / spec.responseTimeMs);
    this.sigma[k] = spec.noiseSigma;
    this.lo[k] = spec.min;
    this.hi[k] = spec.max;
    this.level[k] = this.targets[k * 4 + this.mode[m]];
    this.wearPerSample[k] = wearRate;
    this.wear[k] = wearRate * samplesPerWeek * setup.next() * 2; // up to two weeks of running since service
    seedSfc32At(this.noiseState, k * 4, streamKey(seed, STREAM_NOISE, m, typeIndex));
    const faults = (this.faultRng[k] = new SeededRandom(streamKey(seed, STREAM_FAULT, m, typeIndex)));
    this.faultArrival[k] = this.faultGapMeanMs === Infinity ? Infinity : this.startTime + faults.exponential() * this.faultGapMeanMs;
    this.faultNext[k] = this.faultArrival[k];
  }

  private emissionOrder(): Uint32Array {
    const indices = Array.from({ length: this.keyCount }, (_, k) => k);
    indices.sort((a, b) => this.phaseMs[a] - this.phaseMs[b] || this.machineOf[a] - this.machineOf[b] || this.typeOf[a] - this.typeOf[b]);
    return Uint32Array.from(indices);
  }
}

// ---------------------------------------------------------------------------------------------
// Internals: small helpers
// ---------------------------------------------------------------------------------------------

function validateSensorTypes(types: readonly SensorType[]): void {
  if (!Array.isArray(types) || types.length === 0) fail("sensorTypes", "must be a non-empty list", types);
  const seen = new Set<string>();
  for (const type of types) {
    if (!(SENSOR_TYPES as readonly string[]).includes(type)) {
      fail("sensorTypes", `unknown sensor type ${JSON.stringify(type)}; known: ${SENSOR_TYPES.join(", ")}`, types);
    }
    if (seen.has(type)) fail("sensorTypes", `${type} is listed twice`, types);
    seen.add(type);
  }
}

function fail(option: keyof SimulatorOptions, reason: string, value: unknown): never {
  throw new SimulatorConfigError(option, reason, value);
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

function describeValue(value: unknown): string {
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function assertCount(max: number): void {
  if (!Number.isSafeInteger(max) || max < 0) throw new RangeError(`record count must be an integer ≥ 0, got ${max}`);
}

function capacityOf(columns: SimulatedColumns): number {
  return Math.min(columns.keyIndex.length, columns.times.length, columns.values.length, columns.modes.length, columns.workOrders.length);
}
