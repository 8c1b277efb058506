/**
 * Failure predictions per machine while a run streams: the service keeps each machine's latest
 * rolling statistics of the keys the model reads, assembles the model's feature vector, and asks
 * the model (operators/failure-model.ts: remaining useful life, failure probability, time to
 * failure) on a schedule and on request.
 *
 * Features. A model feature is `<sensor_type>.<statistic>` (`s2.mean`): the statistic of the
 * rolling analysis's latest output row for the key `<machine>/<sensor_type>`. The rows are read
 * as the analysis produced them (the Float64Array the jobs hand over, no JSON), from the key's
 * first reading on — while a count window fills its statistics cover the readings so far, as the
 * model was trained (operators/rul-features.ts); a statistic the kernel leaves undefined there
 * (std and slope of one reading) is 0. A machine's features are complete once every sensor the
 * model reads has reported; the rolling window must be the model's (`model.window`).
 *
 * Schedule, in event time, so a replay gives the same predictions at any --speed as a live run:
 * a machine is predicted at its first complete time step, then at the first time step at least
 * `intervalMs` after its last prediction. A time step is predicted once it is complete — when a
 * later reading of the machine arrives (its features then hold every sensor's reading of that
 * step), when the machine has been quiet for a whole tick (`tickMs` of wall time), or at the end
 * of the input. `predicted_at` is the event time of that step. Live (--speed 1, NATS), event time
 * is wall time: the default 10 s predicts each machine every 10 s. A C-MAPSS replay with 1-h
 * cycles gets a prediction every cycle; `--predict-interval 10h` gives one every ten cycles.
 *
 * Snapshots wait for the model at most `pendingMax` rows; beyond that (the model slower than the
 * stream for long) the newest are skipped and counted, never queued without bound. The latest
 * `keptMax` predictions stay in memory for the API; each also goes to the listeners (`listen`:
 * ClickHouse rows, topics, machine health).
 *
 * Risk level of a prediction: that of the health score round(100 × (1 − failure_probability)),
 * the same scale as the machine health (engine/outputs.ts): low from 80, medium from 60, high
 * from 40, critical below.
 */
import { ConfigError } from "./errors.js";
import { ROLLING_FIELDS } from "../operators/rolling.js";
import type { MaintenancePrediction, PredictionQuery, RiskLevel } from "../connectors/http-api.js";
import { ApiReplyError } from "../connectors/http-api.js";

/** What the service needs of a model (operators/failure-model.ts FailureModel has it). */
export interface PredictionModel {
  readonly featureNames: readonly string[];
  readonly window: number;
  readonly modelVersion: string;
  readonly horizonCycles: number;
  readonly cycleHours: number;
  predict(features: Float64Array, rows: number): Promise<ReadonlyArray<{ rul_cycles: number; failure_probability: number; time_to_failure_hours: number }>>;
}

export interface PredictionServiceOptions {
  model: PredictionModel;
  /** Event time between two scheduled predictions of a machine. */
  intervalMs: number;
  /** Wall time after which a machine without new readings has its last time step predicted; also how often pending rows go to the model. */
  tickMs: number;
  /** Predictions kept in memory for the API, newest. */
  keptMax: number;
  /** Feature rows waiting for the model at most. */
  pendingMax: number;
  log?: (line: string) => void;
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
  tickMs: 1_000,
  keptMax: 10_000,
  pendingMax: 65_536,
} as const;

/** Counts for the summary and /healthz. */
export interface PredictionCounts {
  machines: number;
  machinesComplete: number;
  predictions: number;
  /** Rows skipped because `pendingMax` rows were waiting for the model. */
  skipped: number;
  errors: number;
}

export class PredictionService {
  private readonly featureCount: number;
  /** Per sensor type: the model's feature indexes it feeds and the rolling field of each. */
  private readonly bySensor = new Map<string, { features: Int32Array; fields: Int32Array }>();
  private readonly sensorsNeeded: number;
  private readonly machines = new Map<string, MachineState>();
  private readonly slots = new Map<string, KeySlot | null>();
  private pending: Snapshot[] = [];
  private readonly kept: MachinePrediction[] = [];
  private keptStart = 0;
  private readonly latestByMachine = new Map<string, MachinePrediction>();
  private chain: Promise<void> = Promise.resolve();
  private tickNo = 0;
  private readonly timer: NodeJS.Timeout;
  private readonly counts = { predictions: 0, skipped: 0, errors: 0 };
  private closed = false;
  private readonly listeners: Array<(predictions: readonly MachinePrediction[]) => void> = [];

  constructor(private readonly o: PredictionServiceOptions) {
    if (!(o.intervalMs >= 0 && Number.isFinite(o.intervalMs))) throw new ConfigError("--predict-interval", `must be a duration ≥ 0, got ${o.intervalMs} ms`);
    const names = o.model.featureNames;
    this.featureCount = names.length;
    if (names.length === 0) throw new ConfigError("--predict", "the model has no features");
    const grouped = new Map<string, { features: number[]; fields: number[] }>();
    names.forEach((name, j) => {
      const dot = name.lastIndexOf(".");
      const sensor = name.slice(0, dot);
      const field = (ROLLING_FIELDS as readonly string[]).indexOf(name.slice(dot + 1));
      if (dot <= 0 || field < 0) {
        throw new ConfigError("--predict", `model feature "${name}" is not <sensor_type>.<statistic> with a statistic of the rolling analysis (${ROLLING_FIELDS.join(", ")})`);
      }
      const g = grouped.get(sensor) ?? { features: [], fields: [] };
      g.features.push(j);
      g.fields.push(field);
      grouped.set(sensor, g);
    });
    for (const [sensor, g] of grouped) this.bySensor.set(sensor, { features: Int32Array.from(g.features), fields: Int32Array.from(g.fields) });
    this.sensorsNeeded = grouped.size;
    this.timer = setInterval(() => this.tick(), o.tickMs);
    this.timer.unref();
  }

  /** Calls `listener` with every batch of predictions as it is made. */
  listen(listener: (predictions: readonly MachinePrediction[]) => void): void {
    this.listeners.push(listener);
  }

  /** Sensor types the model reads. */
  get sensors(): readonly string[] {
    return [...this.bySensor.keys()];
  }

  get model(): PredictionModel {
    return this.o.model;
  }

  /**
   * One scored record of key `key` (`<machine>/<sensor>[/…]`): `rolling` is the rolling
   * analysis's output row (ROLLING_FIELDS order), read during the call only. Per-record cost:
   * one map lookup and a copy of the few fields the model reads.
   */
  observe(key: string, machineId: string, sensorType: string, time: number, rolling: Float64Array): void {
    let slot = this.slots.get(key);
    if (slot === undefined) {
      slot = this.slotOf(machineId, sensorType);
      this.slots.set(key, slot);
    }
    if (slot === null) return;
    const m = slot.machine;
    // A later reading closes the machine's current time step: every sensor of it has reported.
    if (time > m.time && m.open && m.complete && m.time >= m.due) this.snapshot(m, "schedule");
    const f = slot.features;
    for (let i = 0; i < f.length; i++) {
      const v = rolling[slot.fields[i]];
      m.values[f[i]] = Number.isNaN(v) ? 0 : v;
    }
    if (!m.seen[slot.sensor]) {
      m.seen[slot.sensor] = 1;
      m.sensorsSeen++;
      m.complete = m.sensorsSeen === this.sensorsNeeded;
    }
    if (time > m.time) m.time = time;
    m.open = true;
    m.tick = this.tickNo;
  }

  /** Predicts now from the machine's current features (POST /predict); null when unknown; ApiReplyError 409 when incomplete. */
  async predictNow(machineId: string): Promise<MachinePrediction | null> {
    const m = this.machines.get(machineId);
    if (m === undefined) return null;
    if (!m.complete) {
      const missing = this.missingFeatures(m);
      throw new ApiReplyError(409, "features_incomplete",
        `machine ${machineId} has not reported every sensor the model reads yet; missing ${missing.length} of ${this.featureCount} features: ${missing.slice(0, 20).join(", ")}${missing.length > 20 ? ", …" : ""}`,
        { machine_id: machineId, missing_features: missing });
    }
    const [p] = await this.run([{ machine: m, time: m.time, values: Float64Array.from(m.values), trigger: "request" }]);
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

  /** The machine's latest prediction, or undefined. */
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
    return m === undefined ? [...this.o.model.featureNames] : this.missingFeatures(m);
  }

  /**
   * Runs the model on every pending row and waits for it. `endOfInput`: the input is over, so
   * every machine's last time step is complete and predicted too (when due).
   */
  async flush(endOfInput = false): Promise<void> {
    if (endOfInput) for (const m of this.machines.values()) if (m.open && m.complete && m.time >= m.due) this.snapshot(m, "end");
    await this.drain();
  }

  counters(): PredictionCounts {
    let complete = 0;
    for (const m of this.machines.values()) if (m.complete) complete++;
    return { machines: this.machines.size, machinesComplete: complete, ...this.counts };
  }

  /** Stops the timer after predicting what is pending (the model is the caller's to close). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    await this.drain();
  }

  // ---- internals ----

  private slotOf(machineId: string, sensorType: string): KeySlot | null {
    const s = this.bySensor.get(sensorType);
    if (s === undefined) return null;
    let m = this.machines.get(machineId);
    if (m === undefined) {
      m = {
        id: machineId, values: new Float64Array(this.featureCount), seen: new Uint8Array(this.bySensor.size), sensorsSeen: 0, complete: false,
        time: -Infinity, due: -Infinity, open: false, tick: 0,
      };
      this.machines.set(machineId, m);
    }
    return { machine: m, sensor: [...this.bySensor.keys()].indexOf(sensorType), features: s.features, fields: s.fields };
  }

  private missingFeatures(m: MachineState): string[] {
    const missing: string[] = [];
    [...this.bySensor.values()].forEach((s, k) => {
      if (!m.seen[k]) for (const j of s.features) missing.push(this.o.model.featureNames[j]);
    });
    return missing;
  }

  private snapshot(m: MachineState, trigger: PredictionTrigger): void {
    m.open = false;
    m.due = m.time + this.o.intervalMs;
    if (this.pending.length >= this.o.pendingMax) {
      this.counts.skipped++;
      return;
    }
    this.pending.push({ machine: m, time: m.time, values: Float64Array.from(m.values), trigger });
  }

  /** Every tick: the time step of machines quiet since the last tick is complete; pending rows go to the model. */
  private tick(): void {
    for (const m of this.machines.values()) if (m.open && m.complete && m.tick < this.tickNo && m.time >= m.due) this.snapshot(m, "schedule");
    this.tickNo++;
    if (this.pending.length > 0) void this.drain().catch(() => undefined);
  }

  private drain(): Promise<void> {
    this.chain = this.chain.then(async () => {
      while (this.pending.length > 0) {
        const rows = this.pending.splice(0, 4096);
        try {
          await this.run(rows);
        } catch (error) {
          this.counts.errors++;
          this.o.log?.(`predict: the model failed on ${rows.length} rows: ${(error as Error).message}`);
        }
      }
    });
    return this.chain;
  }

  private async run(rows: Snapshot[]): Promise<MachinePrediction[]> {
    const f = this.featureCount;
    const x = new Float64Array(rows.length * f);
    rows.forEach((r, i) => x.set(r.values, i * f));
    const model = this.o.model;
    const results = await model.predict(x, rows.length);
    const computedAt = new Date().toISOString();
    const out = rows.map((r, i): MachinePrediction => {
      const p = results[i];
      const features: Record<string, number> = {};
      model.featureNames.forEach((name, j) => (features[name] = r.values[j]));
      return {
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
      };
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
        this.o.log?.(`predict: ${p.machine_id} risk ${before.risk_level} → ${p.risk_level} at ${p.predicted_at} (failure probability ${p.failure_probability.toFixed(3)} within ${p.horizon_cycles} cycles, RUL ${p.rul_cycles.toFixed(1)} cycles)`);
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

interface MachineState {
  id: string;
  /** The model's feature vector as of `time`. */
  values: Float64Array;
  /** Per sensor the model reads (bySensor order): reported at least once. */
  seen: Uint8Array;
  sensorsSeen: number;
  complete: boolean;
  /** Newest event time seen. */
  time: number;
  /** Event time from which the next scheduled prediction is due. */
  due: number;
  /** The step at `time` has not been snapshotted. */
  open: boolean;
  /** Tick number of the last reading. */
  tick: number;
}

interface KeySlot {
  machine: MachineState;
  sensor: number;
  features: Int32Array;
  fields: Int32Array;
}

interface Snapshot {
  machine: MachineState;
  time: number;
  values: Float64Array;
  trigger: PredictionTrigger;
}
