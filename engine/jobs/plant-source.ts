/**
 * Sources of `linewatch run` without NATS: the plant simulator, or a C-MAPSS fleet replay
 * (connectors/sim), as a {@link SensorSource}. Both give readings of a fixed set of sensors, in
 * event-time order, as columns ({@link ReadingSource}).
 *
 * Pacing: at `speed` 1 the source emits readings as their timestamps come due on the wall clock
 * (a live plant); at `speed` N, N times faster; `speed` Infinity as fast as the pool takes them,
 * which is how the console's throughput shows what the engine can do here. Nothing is
 * acknowledged: rows are handed to ClickHouse without waiting for them to be durable, and the
 * source waits only while the sink's memory queue is full.
 */
import {
  type DegradationLabel,
  type FailureLabel,
  type FaultLabel,
  type MaintenanceRecord,
  OPERATING_MODES,
  PlantSimulator,
  type SimulatorOptions,
} from "../../connectors/sim/mod.js";
import type { RecordBatch } from "../core/mod.js";
import type { FailureScorecard } from "./failure-scorecard.js";
import type { FaultScorecard } from "./fault-scorecard.js";
import type { SensorIntake, SensorSource } from "./source.js";

/** Readings of a fixed set of sensors, in event-time order, as columns. */
export interface ReadingSource {
  /** For the metrics' `source` label. */
  readonly name: string;
  /** Operating mode names, indexed by the columns' `modes` codes. */
  readonly modes: readonly string[];
  /** The sensors; a column's `keyIndex` indexes this list. */
  keys(): readonly SourceKey[];
  /** True once every reading has been read. */
  readonly done: boolean;
  /** Readings whose event time is at most `eventMs` after the first reading's (pacing). */
  readingsDueBy(eventMs: number): number;
  /** The next up to `max` readings; the columns may be reused by the next call. */
  nextColumns(max: number): SourceColumns;
  /** Labels of the faults injected since the last call (a simulator's ground truth), for the summary and the scorecard. */
  drainFaults?(): readonly FaultLabel[];
  /** Degradation phases (the simulator's wear) begun or ended since the last call, for the scorecard. */
  drainDegradation?(): readonly DegradationLabel[];
  /** Failures and ended maintenance periods since the last call (the simulator's wear), for the failure scorecard. */
  drainFailures?(): readonly FailureLabel[];
  drainMaintenance?(): readonly MaintenanceRecord[];
}

export interface SourceKey {
  machine_id: string;
  sensor_type: string;
  sensor_unit: string;
}

export interface SourceColumns {
  length: number;
  keyIndex: Uint32Array;
  times: Float64Array;
  values: Float64Array;
  modes: Uint8Array;
}

/** The plant simulator as a reading source: `rateHz` readings per sensor per second of event time; `onFault` sees each injected fault's label as it starts. */
export function simulatorSource(options: Partial<SimulatorOptions>, onFault?: (label: FaultLabel) => void): ReadingSource {
  const simulator = new PlantSimulator(options);
  const perMs = (simulator.keys().length * simulator.options.rateHz) / 1000;
  return {
    name: "simulator",
    modes: OPERATING_MODES,
    keys: () => simulator.keys(),
    get done() {
      return simulator.done;
    },
    readingsDueBy: (eventMs) => Math.floor(eventMs * perMs),
    nextColumns: (max) => simulator.nextColumns(max),
    drainFaults: () => {
      const labels = simulator.drainLabels();
      if (onFault !== undefined) for (const l of labels) onFault(l);
      return labels;
    },
    drainDegradation: () => simulator.drainDegradation(),
    drainFailures: () => simulator.drainFailures(),
    drainMaintenance: () => simulator.drainMaintenance(),
  };
}

export interface PacedSourceOptions {
  /**
   * Key the analyses by machine/sensor/operating mode instead of machine/sensor: a sensor's
   * level in idle or maintenance differs from running, so a control chart (and a window) per
   * mode is what shows faults rather than mode changes.
   */
  keyByMode: boolean;
  /**
   * With keyByMode: how long after a mode change a sensor's readings go to its "settling" key
   * instead of the new mode's, so a mode's chart and windows see only settled readings (a
   * first-order response needs about five time constants). Undefined: no settling key.
   */
  settleMs?: (key: SourceKey) => number;
  /** Simulated milliseconds per wall-clock millisecond; Infinity: as fast as possible. */
  speed: number;
  /** Live runs: longest a record waits in a partly filled buffer. */
  flushIntervalMs: number;
  /**
   * Gets the source's sensor keys, fault labels and the event times of the readings handed to the
   * analyses (the caller feeds it the alert openings): a simulator run's fault-detection scorecard.
   */
  scorecard?: FaultScorecard;
  /** Gets the source's failures and component replacements: a simulator run's failure-prediction scorecard. */
  failureScorecard?: FailureScorecard;
}

/** Records between two hand-overs of an unpaced run's rows to the outputs. */
const HAND_OVER_RECORDS = 65536;

/** A {@link ReadingSource} paced by its event times × `speed`, keyed (optionally) by operating mode. */
export class PacedReadingSource implements SensorSource {
  readonly labelled = false;
  readonly finite = true;
  readonly keysMax: number;
  readonly groupsMax: number;
  /** Keyed by mode: a sensor's mode keys (machine/sensor/mode) share a group, so its rows stay in order across them. */
  readonly groupByKeyPrefix: { parts: number; keysPerPrefix: number } | undefined;
  /** Faults the source injected so far (its ground truth). */
  faults = 0;
  private readonly keys: readonly SourceKey[];
  /** Engine key id of (source key index, operating mode or settling): index · modes + mode. */
  private readonly keyIdOf: Uint32Array;
  /** Operating modes and "settling". */
  private readonly modes: number;
  private readonly settleMs: Float64Array;
  private readonly lastMode: Int16Array;
  private readonly modeSince: Float64Array;
  private position = 0;

  constructor(
    private readonly reading: ReadingSource,
    private readonly o: PacedSourceOptions,
  ) {
    this.keys = reading.keys();
    this.modes = reading.modes.length + 1;
    this.keysMax = this.keys.length * (o.keyByMode ? this.modes : 1);
    this.groupsMax = this.keys.length;
    this.groupByKeyPrefix = o.keyByMode ? { parts: 2, keysPerPrefix: this.modes } : undefined;
    this.keyIdOf = new Uint32Array(this.keys.length * this.modes);
    this.settleMs = Float64Array.from(this.keys, (k) => (o.keyByMode && o.settleMs ? o.settleMs(k) : 0));
    this.lastMode = new Int16Array(this.keys.length).fill(-1);
    this.modeSince = new Float64Array(this.keys.length);
  }

  get name(): string {
    return this.reading.name;
  }

  async open(intake: SensorIntake): Promise<void> {
    this.o.scorecard?.addSensorKeys(this.keys.map((k) => `${k.machine_id}/${k.sensor_type}`));
    const modeNames = [...this.reading.modes, "settling"];
    this.keys.forEach((k, i) => {
      for (let m = 0; m < this.modes; m++) {
        if (!this.o.keyByMode && m > 0) {
          this.keyIdOf[i * this.modes + m] = this.keyIdOf[i * this.modes];
          continue;
        }
        const mode = this.o.keyByMode ? modeNames[m] : undefined;
        const name = mode === undefined ? `${k.machine_id}/${k.sensor_type}` : `${k.machine_id}/${k.sensor_type}/${mode}`;
        this.keyIdOf[i * this.modes + m] = intake.key(name, k.machine_id, k.sensor_type, mode);
      }
    });
  }

  async run(intake: SensorIntake): Promise<void> {
    const live = Number.isFinite(this.o.speed);
    const batch = intake.allocateBatch();
    const t0 = performance.now();
    let lastFlush = t0;
    let handedOverAt = 0;
    while (!intake.stopped && !this.reading.done) {
      let want = batch.keyIds.length;
      if (live) {
        // Partly filled group buffers are sent every flushIntervalMs, so a slow plant's scores
        // are never older than that (plus one kernel task).
        if (performance.now() - lastFlush >= this.o.flushIntervalMs) {
          lastFlush = performance.now();
          await intake.commit(false);
        }
        const due = this.reading.readingsDueBy((performance.now() - t0) * this.o.speed) - this.position;
        if (due <= 0) {
          await new Promise((r) => setTimeout(r, 20));
          continue;
        }
        want = Math.min(want, due);
      }
      this.fill(batch, want);
      await intake.push(batch);
      if (this.position - handedOverAt >= HAND_OVER_RECORDS) {
        handedOverAt = this.position;
        await intake.handOver();
      } else await intake.room();
    }
  }

  async close(): Promise<void> {}

  summary(): string {
    return `faults injected ${this.faults}`;
  }

  /** The next up to `max` readings into `batch`, each to its key (and mode, or settling) id. */
  private fill(batch: RecordBatch, max: number): void {
    const columns = this.reading.nextColumns(max);
    const settling = this.modes - 1;
    for (let i = 0; i < columns.length; i++) {
      const k = columns.keyIndex[i];
      const mode = columns.modes[i];
      if (mode !== this.lastMode[k]) {
        // The first reading of a run starts settled: the sources start in steady state.
        this.modeSince[k] = this.lastMode[k] === -1 ? -Infinity : columns.times[i];
        this.lastMode[k] = mode;
      }
      const m = columns.times[i] - this.modeSince[k] < this.settleMs[k] ? settling : mode;
      batch.keyIds[i] = this.keyIdOf[k * this.modes + m];
      batch.times[i] = columns.times[i];
      batch.values[i] = columns.values[i];
      batch.positions[i] = this.position + i;
    }
    batch.length = columns.length;
    this.position += columns.length;
    // The labels reach the scorecard before the engine sees the readings: a fault's label comes
    // with its first reading, so it is known before any opening it explains.
    this.o.scorecard?.addDegradation(this.reading.drainDegradation?.() ?? []);
    const labels = this.reading.drainFaults?.() ?? [];
    this.faults += labels.length;
    this.o.scorecard?.addLabels(labels);
    if (columns.length > 0) this.o.scorecard?.coverReadings(columns.times[0], columns.times[columns.length - 1]);
    const failures = this.o.failureScorecard;
    if (failures !== undefined) {
      if (columns.length > 0) failures.coverFrom(columns.times[0]);
      failures.addFailures(this.reading.drainFailures?.() ?? []);
      failures.addMaintenance(this.reading.drainMaintenance?.() ?? []);
    }
  }
}
