/**
 * Failure predictions per machine while a run streams: the service keeps each machine's latest
 * rolling statistics of the keys the model reads, assembles the model's feature vector, and asks
 * the model (operators/prediction/failure-model.ts: remaining useful life, failure probability, time to
 * failure) on a schedule and on request.
 *
 * Features. A model feature is `<sensor_type>.<statistic>` (`s2.mean`): the statistic of the
 * rolling analysis's output row for the key `<machine>/<sensor_type>`. The rows are read as the
 * analysis produced them (the Float64Array the jobs hand over, no JSON), from the key's first
 * reading on — while a count window fills its statistics cover the readings so far, as the model
 * was trained (operators/prediction/rul-features.ts); a statistic the kernel leaves undefined there (std and
 * slope of one reading) is 0. The rolling window must be the model's (`model.window`). A
 * machine's features are complete once every sensor the model reads has reported.
 *
 * Time steps. The features at event time s are, for every sensor, the statistics after its
 * latest reading at or before s. The engine keeps each key's order but not the order between
 * keys (they run in different key groups), so a machine's sensors arrive out of step; the
 * service holds each sensor's recent rows and takes step s only once every sensor has reported
 * a reading at or after s (the machine's watermark) — for C-MAPSS, all 21 readings of a cycle.
 *
 * Schedule, in event time, so a replay gives the same predictions at any --speed as a live run:
 * a machine is predicted at its first complete step, then at the first step (a reading's time) at
 * least `intervalMs` after its last prediction. Live (--speed 1, NATS) event time is wall time:
 * the default 10 s predicts each machine every 10 s. A C-MAPSS replay with 1-h cycles gets a
 * prediction every cycle; `--predict-interval 10h` one every ten cycles. At the end of a file or
 * simulator input, and on request (POST), the machine's latest state is predicted: every sensor's
 * newest reading, at the time of the newest of them. `predicted_at` is the step's event time.
 *
 * Bounds: a sensor's held rows (`rowsPerSensorMax`; a sensor that far ahead of the slowest one
 * loses its oldest rows, counted) and the rows waiting for the model (`pendingMax`; beyond, new
 * snapshots are skipped and counted). The latest `keptMax` predictions stay in memory for the
 * API; each also goes to the listeners (`listen`: ClickHouse rows, topics, machine health).
 *
 * Risk level of a prediction: that of the health score round(100 × (1 − failure_probability)),
 * the same scale as the machine health (engine/jobs/outputs.ts): low from 80, medium from 60, high
 * from 40, critical below.
 */
import { ConfigError, type Logger } from "../core/mod.js";
import { ROLLING_FIELDS } from "../../operators/rolling/mod.js";
import { type MaintenancePrediction, type PredictionQuery, type RiskLevel, ApiReplyError } from "../../connectors/live/mod.js";
import type { FailurePrediction } from "../../operators/prediction/mod.js";
import type { ReferenceHistograms } from "../../operators/drift/mod.js";

/** What the service needs of a model (operators/prediction/failure-model.ts FailureModel has it). */
export interface PredictionModel {
  readonly featureNames: readonly string[];
  readonly window: number;
  readonly modelVersion: string;
  readonly horizonCycles: number;
  readonly cycleHours: number;
  /** The cycles the model's remaining-life target is capped at (FailureModel: 125 by default); undefined: not capped. */
  readonly rulCap?: number;
  predict(features: Float64Array, rows: number): Promise<readonly FailurePrediction[]>;
  /** The training reference histograms drift PSI is measured against; null or absent when the model has none. */
  readonly referenceHistograms?: ReferenceHistograms | null;
  /** Why drift PSI cannot be measured for the model, or null. */
  readonly driftUnavailable?: string | null;
  /** Releases the model (onnxruntime's session); a swapped-out model is closed by whoever swapped it. */
  close?(): Promise<void>;
}

export interface PredictionServiceOptions {
  model: PredictionModel;
  /** Event time between two scheduled predictions of a machine. */
  intervalMs: number;
  /** Rows held per sensor while the machine's slowest sensor catches up. */
  rowsPerSensorMax: number;
  /** Predictions kept in memory for the API, newest. */
  keptMax: number;
  /** Feature rows waiting for the model at most. */
  pendingMax: number;
  /** Model failures and risk changes (component "predict"). */
  log?: Logger;
}

/** One prediction, as the API serves it and the `prediction` topic carries it. */
export interface MachinePrediction extends MaintenancePrediction {
  time_to_failure_hours: number;
  model_version: string;
  /** Predicted remaining useful life, in the model's cycles. */
  rul_cycles: number;
  /** failure_probability = P(RUL ≤ horizon_cycles). */
  horizon_cycles: number;
  /** Event time of the features (ISO-8601): the machine's time step they describe. */
  predicted_at: string;
  /** The same, epoch milliseconds. */
  predicted_at_ms: number;
  /** Wall-clock time the model ran (ISO-8601). */
  computed_at: string;
  /** "schedule" (the interval), "request" (POST), "end" (end of the input). */
  trigger: PredictionTrigger;
  /** The model's inputs, by feature name. */
  features: Record<string, number>;
}

export type PredictionTrigger = "schedule" | "request" | "end";

export const DEFAULT_PREDICTION_SERVICE = {
  intervalMs: 10_000,
  rowsPerSensorMax: 1024,
  keptMax: 10_000,
  pendingMax: 65_536,
} as const;

/** Counts for the summary and /healthz. */
export interface PredictionCounts {
  machines: number;
  machinesComplete: number;
  predictions: number;
  /** Rows the model failed on or gave no prediction for. */
  errors: number;
  /** Rows skipped because `pendingMax` rows were waiting for the model. */
  skipped: number;
  /** Held rows dropped because a sensor ran `rowsPerSensorMax` rows ahead of the machine's slowest. */
  rowsDropped: number;
  /** Calls of the model, and the wall time they took in all (seconds): the model latency is their ratio. */
  modelRuns: number;
  modelSeconds: number;
}

export class PredictionService {
  private readonly featureCount: number;
  /** Per sensor type the model reads: its index, the model's feature indexes it feeds and the rolling field of each. */
  private readonly bySensor = new Map<string, { index: number; features: Int32Array; fields: Int32Array }>();
  private readonly sensorList: Array<{ index: number; features: Int32Array; fields: Int32Array }>;
  private readonly machines = new Map<string, MachineState>();
  private readonly slots = new Map<string, KeySlot | null>();
  private pending: Snapshot[] = [];
  private drainScheduled = false;
  private readonly kept: MachinePrediction[] = [];
  private keptStart = 0;
  private readonly latestByMachine = new Map<string, MachinePrediction>();
  private chain: Promise<void> = Promise.resolve();
  private readonly counts = { predictions: 0, skipped: 0, rowsDropped: 0, errors: 0, modelRuns: 0, modelSeconds: 0 };
  private readonly listeners: Array<(predictions: readonly MachinePrediction[]) => void> = [];
  private readonly log: Logger | undefined;
  private current: PredictionModel;

  constructor(private readonly o: PredictionServiceOptions) {
    this.current = o.model;
    if (!(o.intervalMs >= 0 && Number.isFinite(o.intervalMs)))
      throw new ConfigError("--predict-interval", `must be a duration ≥ 0, got ${o.intervalMs} ms`);
    const names = o.model.featureNames;
    this.featureCount = names.length;
    if (names.length === 0) throw new ConfigError("--predict", "the model has no features");
    this.log = o.log?.child({ component: "predict" });
    const grouped = new Map<string, { features: number[]; fields: number[] }>();
    names.forEach((name, j) => {
      const dot = name.lastIndexOf(".");
      const sensor = name.slice(0, dot);
      const field = (ROLLING_FIELDS as readonly string[]).indexOf(name.slice(dot + 1));
      if (dot <= 0 || field < 0) {
        throw new ConfigError(
          "--predict",
          `model feature "${name}" is not <sensor_type>.<statistic> with a statistic of the rolling analysis (${ROLLING_FIELDS.join(", ")})`,
        );
      }
      const g = grouped.get(sensor) ?? { features: [], fields: [] };
      g.features.push(j);
      g.fields.push(field);
      grouped.set(sensor, g);
    });
    let index = 0;
    for (const [sensor, g] of grouped)
      this.bySensor.set(sensor, { index: index++, features: Int32Array.from(g.features), fields: Int32Array.from(g.fields) });
    this.sensorList = [...this.bySensor.values()];
  }

  /** Calls `listener` with every batch of predictions as it is made. */
  listen(listener: (predictions: readonly MachinePrediction[]) => void): void {
    this.listeners.push(listener);
  }

  /** Sensor types the model reads. */
  get sensors(): readonly string[] {
    return [...this.bySensor.keys()];
  }

  /** The model the next prediction uses. */
  get model(): PredictionModel {
    return this.current;
  }

  /**
   * Uses `next` from the next model run on: predictions in flight finish with the model they
   * started with. `next` must read the same features over the same window (the rows the service
   * holds are those of the current model); else ConfigError and nothing changes. Resolves to the
   * replaced model, for the caller to close.
   */
  swapModel(next: PredictionModel): Promise<PredictionModel> {
    const now = this.current;
    if (next.window !== now.window || next.featureNames.join(",") !== now.featureNames.join(",")) {
      throw new ConfigError(
        "model",
        `${next.modelVersion} reads ${next.featureNames.length} features over a window of ${next.window}; the running ${now.modelVersion} reads ${now.featureNames.length} over ${now.window}, and a swap needs the same features and window (restart the job to change them)`,
      );
    }
    const swapped = this.chain.then(() => {
      const old = this.current;
      this.current = next;
      return old;
    });
    this.chain = swapped.then(() => undefined);
    return swapped;
  }

  /**
   * One scored record of key `key` (`<machine>/<sensor>[/…]`): `rolling` is the rolling
   * analysis's output row (ROLLING_FIELDS order), read during the call only. Per record: one map
   * lookup, a copy of the few fields the model reads, and — when the record moves the machine's
   * watermark — a look for a due step.
   */
  observe(key: string, machineId: string, sensorType: string, time: number, rolling: Float64Array): void {
    let slot = this.slots.get(key);
    if (slot === undefined) {
      slot = this.slotOf(machineId, sensorType);
      this.slots.set(key, slot);
    }
    if (slot === null) return;
    const m = slot.machine;
    const track = m.tracks[slot.sensor];
    let at: number;
    if (track.length > 0 && track.timeAt(track.length - 1) < m.lower && time < m.lower) {
      // Before the next candidate step only a sensor's latest row counts: overwrite it.
      at = track.length - 1;
    } else {
      // Held until every sensor has reported as after: key groups run apart, so one sensor of a
      // machine can be hundreds of readings ahead of another (a C-MAPSS unit-order replay at
      // --speed max). Holding fewer then (it was 64) dropped the rows of the machine's first steps,
      // and those steps were predicted from later rows — features unlike the training rows, which
      // the drift monitor flagged as major drift on an unshifted replay. Bounded all the same.
      if (track.length >= this.o.rowsPerSensorMax) {
        track.dropOldest(1);
        this.counts.rowsDropped++;
      }
      at = track.append();
    }
    track.set(at, time, rolling, slot.fields);
    const wasSlowest = track.newest <= m.watermark;
    if (track.newest === -Infinity) {
      m.sensorsSeen++;
      if (time > m.start) m.start = time;
      if (m.sensorsSeen === m.tracks.length) m.lower = Math.max(m.lower, m.start);
    }
    if (time > track.newest) track.newest = time;
    if (time > m.newest) m.newest = time;
    if (m.sensorsSeen === m.tracks.length && wasSlowest) {
      let w = Infinity;
      for (const t of m.tracks) if (t.newest < w) w = t.newest;
      if (w > m.watermark) {
        m.watermark = w;
        this.advance(m);
      }
    }
  }

  /** Predicts now from the machine's latest state (POST /predict); null when unknown; ApiReplyError 409 when incomplete, 422 when the model gives no prediction. */
  async predictNow(machineId: string): Promise<MachinePrediction | null> {
    const m = this.machines.get(machineId);
    if (m === undefined) return null;
    if (m.sensorsSeen < m.tracks.length) {
      const missing = this.missingFeatures(m);
      throw new ApiReplyError(
        409,
        "features_incomplete",
        `machine ${machineId} has not reported every sensor the model reads yet; missing ${missing.length} of ${this.featureCount} features: ${missing.slice(0, 20).join(", ")}${missing.length > 20 ? ", …" : ""}`,
        { machine_id: machineId, missing_features: missing },
      );
    }
    const [p] = await this.run([this.latestState(m, "request")]);
    if (p === undefined)
      throw new ApiReplyError(422, "no_prediction", `the model gave no prediction for machine ${machineId} (a feature is not finite)`, {
        machine_id: machineId,
      });
    return p;
  }

  /** Latest predictions, newest first (`machineId`: of that machine only), at most `limit`. */
  predictions(q: PredictionQuery): MachinePrediction[] {
    const out: MachinePrediction[] = [];
    for (let i = this.kept.length - 1; i >= 0 && out.length < q.limit; i--) {
      const p = this.kept[(this.keptStart + i) % this.kept.length];
      if (q.machineId === undefined || p.machine_id === q.machineId) out.push(p);
    }
    return out;
  }

  /** The machine's latest prediction (by event time), or undefined. */
  latest(machineId: string): MachinePrediction | undefined {
    return this.latestByMachine.get(machineId);
  }

  /** Whether the service has seen the machine (any key the model reads). */
  knows(machineId: string): boolean {
    return this.machines.has(machineId);
  }

  /** The feature names of the machine not yet reported (all of them for an unknown machine). */
  missing(machineId: string): string[] {
    const m = this.machines.get(machineId);
    return m === undefined ? [...this.current.featureNames] : this.missingFeatures(m);
  }

  /**
   * Runs the model on every pending row and waits for it. `endOfInput`: the input is over, so
   * every machine's latest state is predicted too, due or not (the state a replay ends in is the
   * one its user asks about).
   */
  async flush(endOfInput = false): Promise<void> {
    if (endOfInput) {
      for (const m of this.machines.values()) {
        if (m.sensorsSeen === m.tracks.length && m.newest > m.lastStep) this.enqueue(m, this.latestState(m, "end"));
      }
    }
    await this.drain();
  }

  counters(): PredictionCounts {
    let complete = 0;
    for (const m of this.machines.values()) if (m.sensorsSeen === m.tracks.length) complete++;
    return { machines: this.machines.size, machinesComplete: complete, ...this.counts };
  }

  /** Predicts what is pending (the model is the caller's to close). */
  async close(): Promise<void> {
    await this.drain();
  }

  // ---- internals ----

  private slotOf(machineId: string, sensorType: string): KeySlot | null {
    const s = this.bySensor.get(sensorType);
    if (s === undefined) return null;
    let m = this.machines.get(machineId);
    if (m === undefined) {
      m = {
        id: machineId,
        tracks: Array.from(this.bySensor.values(), (b) => new SensorTrack(b.fields.length)),
        sensorsSeen: 0,
        start: -Infinity,
        newest: -Infinity,
        watermark: -Infinity,
        lower: -Infinity,
        lastStep: -Infinity,
      };
      this.machines.set(machineId, m);
    }
    return { machine: m, sensor: s.index, fields: s.fields };
  }

  /** Takes every due step at or below the machine's watermark. */
  private advance(m: MachineState): void {
    for (;;) {
      // The candidate step: the earliest reading time at or after `lower` of any sensor.
      let step = Infinity;
      for (const t of m.tracks) {
        for (let i = 0; i < t.length; i++) {
          const ti = t.timeAt(i);
          if (ti >= m.lower) {
            if (ti < step) step = ti;
            break;
          }
        }
      }
      if (step > m.watermark) return;
      const values = new Float64Array(this.featureCount);
      m.tracks.forEach((t, k) => {
        let row = 0;
        while (row + 1 < t.length && t.timeAt(row + 1) <= step) row++;
        t.copyTo(row, values, this.sensorList[k].features);
      });
      this.enqueue(m, { machine: m, time: step, values, trigger: "schedule" });
      // The next step is due `intervalMs` later (and strictly later, for an interval of 0).
      m.lower = this.o.intervalMs > 0 ? step + this.o.intervalMs : nextAfter(step);
      for (const t of m.tracks) {
        // Rows before `lower`: only each sensor's latest is still needed.
        let keepFrom = 0;
        while (keepFrom + 1 < t.length && t.timeAt(keepFrom + 1) < m.lower) keepFrom++;
        t.dropOldest(keepFrom);
      }
    }
  }

  /** Every sensor's newest row, at the time of the newest reading. */
  private latestState(m: MachineState, trigger: PredictionTrigger): Snapshot {
    const values = new Float64Array(this.featureCount);
    m.tracks.forEach((t, k) => t.copyTo(t.length - 1, values, this.sensorList[k].features));
    return { machine: m, time: m.newest, values, trigger };
  }

  private missingFeatures(m: MachineState): string[] {
    const missing: string[] = [];
    this.sensorList.forEach((s, k) => {
      if (m.tracks[k].newest === -Infinity) for (const j of s.features) missing.push(this.current.featureNames[j]);
    });
    return missing;
  }

  private enqueue(m: MachineState, snapshot: Snapshot): void {
    if (snapshot.time > m.lastStep) m.lastStep = snapshot.time;
    if (this.pending.length >= this.o.pendingMax) {
      this.counts.skipped++;
      return;
    }
    this.pending.push(snapshot);
    if (!this.drainScheduled) {
      // After the current chunk of outputs: the rows of many machines go to the model together.
      this.drainScheduled = true;
      setImmediate(() => {
        this.drainScheduled = false;
        void this.drain();
      });
    }
  }

  private drain(): Promise<void> {
    this.chain = this.chain.then(async () => {
      while (this.pending.length > 0) {
        const rows = this.pending.splice(0, 4096);
        try {
          await this.run(rows);
        } catch (error) {
          this.counts.errors++;
          this.log?.error({ rows: rows.length, err: error }, "the model failed");
        }
      }
    });
    return this.chain;
  }

  private async run(rows: Snapshot[]): Promise<MachinePrediction[]> {
    const f = this.featureCount;
    const x = new Float64Array(rows.length * f);
    rows.forEach((r, i) => x.set(r.values, i * f));
    const model = this.current;
    const t0 = performance.now();
    const results = await model.predict(x, rows.length);
    this.counts.modelRuns++;
    this.counts.modelSeconds += (performance.now() - t0) / 1000;
    const computedAt = new Date().toISOString();
    const out: MachinePrediction[] = [];
    rows.forEach((r, i) => {
      const p = results[i];
      if (!Number.isFinite(p.failure_probability) || !Number.isFinite(p.rul_cycles)) {
        // The model refuses a row (a non-finite feature): nothing to report for it.
        this.counts.errors++;
        this.log?.warn(
          { machine_id: r.machine.id, at: new Date(r.time).toISOString() },
          "the model gave no prediction (a feature is not finite)",
        );
        return;
      }
      const features: Record<string, number> = {};
      model.featureNames.forEach((name, j) => (features[name] = r.values[j]));
      out.push({
        machine_id: r.machine.id,
        failure_probability: p.failure_probability,
        time_to_failure_hours: p.time_to_failure_hours,
        rul_cycles: p.rul_cycles,
        horizon_cycles: model.horizonCycles,
        risk_level: riskOfProbability(p.failure_probability),
        model_version: model.modelVersion,
        predicted_at: new Date(r.time).toISOString(),
        predicted_at_ms: r.time,
        computed_at: computedAt,
        trigger: r.trigger,
        features,
      });
    });
    for (const p of out) this.keep(p);
    this.counts.predictions += out.length;
    for (const l of this.listeners) l(out);
    return out;
  }

  private keep(p: MachinePrediction): void {
    if (this.kept.length < this.o.keptMax) this.kept.push(p);
    else {
      this.kept[this.keptStart] = p;
      this.keptStart = (this.keptStart + 1) % this.kept.length;
    }
    const before = this.latestByMachine.get(p.machine_id);
    if (before === undefined || p.predicted_at_ms >= before.predicted_at_ms) {
      if (before !== undefined && before.risk_level !== p.risk_level) {
        this.log?.info(
          {
            machine_id: p.machine_id,
            from: before.risk_level,
            to: p.risk_level,
            at: p.predicted_at,
            failure_probability: p.failure_probability,
            horizon_cycles: p.horizon_cycles,
            rul_cycles: p.rul_cycles,
          },
          "risk level changed",
        );
      }
      this.latestByMachine.set(p.machine_id, p);
    }
  }
}

/** Health score of a failure probability: round(100 × (1 − p)). */
export function healthOfProbability(p: number): number {
  return Math.round(100 * (1 - p));
}

/** Risk level of a health score 0–100: low from 80, medium from 60, high from 40, critical below. */
export function riskOfScore(score: number): RiskLevel {
  return score >= 80 ? "low" : score >= 60 ? "medium" : score >= 40 ? "high" : "critical";
}

export function riskOfProbability(p: number): RiskLevel {
  return riskOfScore(healthOfProbability(p));
}

/** The next double after x (x finite). */
function nextAfter(x: number): number {
  if (x === 0) return Number.MIN_VALUE;
  const buf = new Float64Array([x]);
  const bits = new BigInt64Array(buf.buffer);
  bits[0] += x > 0 ? 1n : -1n;
  return buf[0];
}

interface MachineState {
  id: string;
  /** Per sensor the model reads (bySensor order). */
  tracks: SensorTrack[];
  sensorsSeen: number;
  /** The latest first-reading time over the sensors: the first step with every sensor. */
  start: number;
  /** Newest event time of any sensor. */
  newest: number;
  /** Oldest of the sensors' newest times: steps at or below it are complete. */
  watermark: number;
  /** The next scheduled step is the first reading at or after this time. */
  lower: number;
  /** Event time of the last step taken. */
  lastStep: number;
}

/**
 * One sensor's held rows, oldest first: its time and the fields the model reads, in a ring of
 * flat arrays that doubles when full (no allocation per reading). Rows before the machine's next
 * candidate step collapse into the latest of them.
 */
class SensorTrack {
  length = 0;
  newest = -Infinity;
  private start = 0;
  private times = new Float64Array(8);
  private values: Float64Array;

  constructor(private readonly fields: number) {
    this.values = new Float64Array(8 * fields);
  }

  timeAt(i: number): number {
    return this.times[(this.start + i) % this.times.length];
  }

  /** Adds a row at the end; returns its index. */
  append(): number {
    if (this.length === this.times.length) this.grow();
    return this.length++;
  }

  set(i: number, time: number, rolling: Float64Array, fields: Int32Array): void {
    const slot = (this.start + i) % this.times.length;
    this.times[slot] = time;
    const base = slot * this.fields;
    for (let k = 0; k < fields.length; k++) {
      const v = rolling[fields[k]];
      this.values[base + k] = Number.isNaN(v) ? 0 : v;
    }
  }

  /** Row i's fields into `out` at the feature indexes `features`. */
  copyTo(i: number, out: Float64Array, features: Int32Array): void {
    const base = ((this.start + i) % this.times.length) * this.fields;
    for (let k = 0; k < features.length; k++) out[features[k]] = this.values[base + k];
  }

  dropOldest(n: number): void {
    this.start = (this.start + n) % this.times.length;
    this.length -= n;
  }

  private grow(): void {
    const cap = this.times.length;
    const times = new Float64Array(cap * 2);
    const values = new Float64Array(cap * 2 * this.fields);
    for (let i = 0; i < this.length; i++) {
      const slot = (this.start + i) % cap;
      times[i] = this.times[slot];
      values.set(this.values.subarray(slot * this.fields, (slot + 1) * this.fields), i * this.fields);
    }
    this.times = times;
    this.values = values;
    this.start = 0;
  }
}

interface KeySlot {
  machine: MachineState;
  sensor: number;
  fields: Int32Array;
}

interface Snapshot {
  machine: MachineState;
  time: number;
  values: Float64Array;
  trigger: PredictionTrigger;
}
