/**
 * Process and quality simulator: packaging lines running work orders in batches. While a batch
 * runs, each line reports its process parameters every `readingIntervalMs` (a
 * {@link ProcessReading}, subject `lw.<site>.process.<line>`); when the batch's planned units are
 * produced, the batch's quality outcome follows (a {@link QualityOutcome}, subject
 * `lw.<site>.quality.<line>`). The outcome comes from the ground-truth process model below plus
 * noise, so a model's accuracy can be measured against what it could know.
 *
 * Goals
 * - Same options → the same events (seeded; every line and batch draws from its own stream).
 * - A documented truth: {@link processHazards} is the per-unit defect probability of each
 *   category at one reading; a batch's expected rates are their unit-weighted averages over its
 *   readings ({@link QualityOutcome.expected}), and tests check each effect below.
 * - No allocation per reading: each line reuses one {@link ProcessReading}; a batch allocates its
 *   outcome once.
 * Non-goals: products and recipes; rework loops in time; sensor-level telemetry (plant-simulator.ts).
 *
 * Process model (docs/quality.md). At each reading, with the hinge h(x; lo, hi, s) =
 * max(0, lo − x, x − hi) / s (0 inside the window [lo, hi], rising by 1 per s outside), a
 * category c has the per-unit defect probability
 *   p_c = σ(logit(base_c) + η_c + u_b + v_bc),   σ the logistic function,
 * where u_b ~ N(0, 0.2²) is the batch's unobserved effect (shared) and v_bc ~ N(0, 0.15²) its
 * per-category one, and
 *   packaging     base 0.006  η = 1.0·h(T; 18, 25, 2) + 0.6·h(H; 30, 60, 8) + material[supplier]
 *                                 (material: SUP-A 0, SUP-B 0.15, SUP-C 0.8)
 *   labelling     base 0.005  η = 1.2·h(H; 30, 60, 8) + 1.5·h(F; 98, 102, 2.5)
 *   serialization base 0.003  η = 0.8·max(0, S − 320)/20 + 0.5·h(T; 18, 25, 3)
 *   other         base 0.004  η = room[grade] + 1.0·h(P; 10, 20, 3) + 0.4·[supplier = SUP-C]
 *                                 (room: B 0, C 0.3, D 0.8)
 *   rework        base 0.008  η = 0.5·h(T; 18, 25, 2) + 0.8·h(F; 98, 102, 2.5)
 * T process temperature (°C), H process humidity (%RH), P cleanroom differential pressure (Pa),
 * S line speed (units/min), F feed rate (% of nominal). Ambient temperature and humidity have
 * no direct effect: they move T and H (a confounder a model may lean on, as in a real plant).
 * Over a batch of N units, category c's expected defect rate is d_c = Σ_i n_i p_c,i / N (n_i the
 * units made in reading i's interval); the outcome's counts are binomial draws around N·d_c
 * (normal approximation, rounded, ≥ 0), and
 *   defect_rate       = Σ_c defects_c / N
 *   first_pass_yield  = 1 − (Σ_c defects_c + reworked) / N
 * (a defective unit and a reworked one both failed first inspection).
 *
 * Batch scenarios (drawn per batch): a temperature excursion (15 %: +3…+7 °C from a random point
 * to the end), a dehumidifier fault (10 %: +10…+20 %RH), a pressure drop (8 %: to 6…9 Pa), a
 * drifting feed rate (25 %: ±3…8 points over the batch), a speed setpoint of 280…360 units/min,
 * the supplier per work order (SUP-A 45 %, SUP-B 35 %, SUP-C 20 %; 1–4 batches each), the room's
 * cleanroom grade per batch (B 25 %, C 50 %, D 25 %).
 */
import { LinewatchError, SeededRandom, streamKey } from "../../engine/core/mod.js";
import type { DefectCounts, ProcessParameter, ProcessRecord, QualityRecord } from "../../operators/quality/mod.js";

/** One process reading of a running batch (the wire record of `lw.<site>.process.<line>`). */
export type ProcessReading = ProcessRecord;

/** A batch's quality outcome (the wire record of `lw.<site>.quality.<line>`), with the model's expectation. */
export interface QualityOutcome extends QualityRecord {
  start_timestamp: number;
  reworked_units: number;
  /** Ground truth without the binomial draws (not on the wire): what the process model expected. */
  expected?: { first_pass_yield: number; defect_rate: number; defect_probability: DefectCounts };
}

export interface BatchSimulatorOptions {
  seed: number;
  lines: number;
  /** Batches in all (lines take turns as they finish); 0: none. */
  batches: number;
  /** Epoch ms of the first batch's start. */
  startTime: number;
  readingIntervalMs: number;
  /** Planned units per batch, drawn uniformly in [min, max]. */
  plannedUnitsMin: number;
  plannedUnitsMax: number;
}

export const DEFAULT_BATCH_SIMULATOR_OPTIONS: Readonly<BatchSimulatorOptions> = Object.freeze({
  seed: 1,
  lines: 4,
  batches: 40,
  startTime: Date.UTC(2026, 0, 5, 6),
  readingIntervalMs: 30_000,
  plannedUnitsMin: 18_000,
  plannedUnitsMax: 30_000,
});

export const BATCH_SIMULATOR_LINES_MAX = 999;

/** A batch simulator option with a bad value; `option` names it. */
export class BatchSimulatorConfigError extends LinewatchError {
  constructor(
    readonly option: keyof BatchSimulatorOptions,
    message: string,
  ) {
    super(`batch simulator option ${option}: ${message}`);
  }
}

export function resolveBatchSimulatorOptions(options: Partial<BatchSimulatorOptions> = {}): BatchSimulatorOptions {
  const o: BatchSimulatorOptions = { ...DEFAULT_BATCH_SIMULATOR_OPTIONS };
  for (const [k, v] of Object.entries(options)) if (v !== undefined) (o as unknown as Record<string, unknown>)[k] = v;
  const fail = (name: keyof BatchSimulatorOptions, why: string): never => {
    throw new BatchSimulatorConfigError(name, `${why} (got ${JSON.stringify(o[name])})`);
  };
  if (!Number.isSafeInteger(o.seed)) fail("seed", "must be a safe integer");
  if (!Number.isInteger(o.lines) || o.lines < 1 || o.lines > BATCH_SIMULATOR_LINES_MAX)
    fail("lines", `must be an integer in 1..${BATCH_SIMULATOR_LINES_MAX}`);
  if (!Number.isInteger(o.batches) || o.batches < 0 || o.batches > 1_000_000) fail("batches", "must be an integer in 0..1000000");
  if (!Number.isSafeInteger(o.startTime) || o.startTime < 0) fail("startTime", "must be integer epoch ms ≥ 0");
  if (!Number.isInteger(o.readingIntervalMs) || o.readingIntervalMs < 100 || o.readingIntervalMs > 3_600_000)
    fail("readingIntervalMs", "must be an integer number of ms in 100..3600000");
  if (!Number.isInteger(o.plannedUnitsMin) || o.plannedUnitsMin < 1) fail("plannedUnitsMin", "must be a positive integer");
  if (!Number.isInteger(o.plannedUnitsMax) || o.plannedUnitsMax < o.plannedUnitsMin || o.plannedUnitsMax > 10_000_000)
    fail("plannedUnitsMax", "must be an integer from plannedUnitsMin to 10000000");
  return o;
}

/** Per-unit probabilities of one reading (see the module comment), before the batch's random effects. */
export interface ProcessHazards {
  packaging: number;
  labelling: number;
  serialization: number;
  other: number;
  rework: number;
}

/** The process model's logits at one reading: logit(base_c) + η_c (the module comment's table). */
export function processLogits(
  p: Readonly<Record<ProcessParameter, number>>,
  grade: string,
  supplier: string,
  out: Float64Array = new Float64Array(HAZARDS),
): Float64Array {
  const hT2 = hinge(p.temperature, 18, 25, 2);
  const hH = hinge(p.humidity, 30, 60, 8);
  const hF = hinge(p.feed_rate, 98, 102, 2.5);
  out[0] = LOGIT_BASE[0] + 1.0 * hT2 + 0.6 * hH + materialEffect(supplier);
  out[1] = LOGIT_BASE[1] + 1.2 * hH + 1.5 * hF;
  out[2] = LOGIT_BASE[2] + (0.8 * Math.max(0, p.speed - 320)) / 20 + 0.5 * hinge(p.temperature, 18, 25, 3);
  out[3] = LOGIT_BASE[3] + roomEffect(grade) + 1.0 * hinge(p.pressure, 10, 20, 3) + (supplier === "SUP-C" ? 0.4 : 0);
  out[4] = LOGIT_BASE[4] + 0.5 * hT2 + 0.8 * hF;
  return out;
}

/** The per-unit probabilities at one reading without random effects (u = v = 0). */
export function processHazards(p: Readonly<Record<ProcessParameter, number>>, grade: string, supplier: string): ProcessHazards {
  const z = processLogits(p, grade, supplier);
  return { packaging: sigmoid(z[0]), labelling: sigmoid(z[1]), serialization: sigmoid(z[2]), other: sigmoid(z[3]), rework: sigmoid(z[4]) };
}

/** Expected first-pass yield of units made under these hazards: 1 − Σ defects − rework. */
export function expectedYield(h: ProcessHazards): number {
  return 1 - (h.packaging + h.labelling + h.serialization + h.other + h.rework);
}

/** `L-001` for index 0. */
export function lineId(index: number): string {
  return `L-${String(index + 1).padStart(3, "0")}`;
}

/** What {@link BatchSimulator.next} produced: read `reading` or `outcome` accordingly. */
export type BatchEventKind = "process" | "quality";

/** Generates process readings and quality outcomes in time order across lines (ties: line order, a batch's last reading before its outcome). */
export class BatchSimulator {
  readonly options: Readonly<BatchSimulatorOptions>;
  /** The latest process reading (valid until the next call of `next`; the object is reused). */
  reading: ProcessReading;
  /** The latest quality outcome (a new object per batch). */
  outcome: QualityOutcome | null = null;
  private readonly lines: LineState[];
  private started = 0;
  private produced = 0;

  constructor(options: Partial<BatchSimulatorOptions> = {}) {
    this.options = resolveBatchSimulatorOptions(options);
    const o = this.options;
    this.lines = Array.from({ length: o.lines }, (_, i) => newLine(i, o));
    this.reading = this.lines[0].reading;
    for (const line of this.lines) this.startBatch(line, o.startTime + line.rng.below(10) * 60_000);
  }

  /** Events produced so far. */
  get count(): number {
    return this.produced;
  }

  get done(): boolean {
    return this.lines.every((l) => !l.running && !l.outcomePending);
  }

  /** The next event in time order, or null when every batch is done. */
  next(): BatchEventKind | null {
    let line: LineState | null = null;
    for (const l of this.lines) {
      if (!l.running && !l.outcomePending) continue;
      if (line === null || l.next < line.next) line = l;
    }
    if (line === null) return null;
    this.produced++;
    if (line.outcomePending) {
      line.outcomePending = false;
      this.outcome = this.finishBatch(line);
      if (this.started < this.options.batches) this.startBatch(line, line.next + (10 + line.rng.below(21)) * 60_000);
      return "quality";
    }
    this.step(line);
    this.reading = line.reading;
    return "process";
  }

  // ---- internals ----

  private startBatch(line: LineState, t: number): void {
    if (this.started >= this.options.batches) return;
    this.started++;
    drawScenario(line, this.options, t);
    line.running = true;
    line.next = t + this.options.readingIntervalMs;
  }

  /** One reading: parameters at this time, units made in the interval, hazards accumulated. */
  private step(line: LineState): void {
    const b = line.batch;
    const r = line.reading;
    const progress = b.units / b.planned;
    const p = r.process_parameters;
    const env = r.environmental_conditions;
    const rng = line.rng;
    line.arT = 0.9 * line.arT + 0.3 * rng.normal();
    line.arH = 0.9 * line.arH + 1.0 * rng.normal();
    env.ambient_temperature = round(b.ambientT + 0.3 * rng.normal(), 2);
    env.ambient_humidity = round(clamp(b.ambientH + 1.0 * rng.normal(), 0, 100), 2);
    p.temperature = round(b.temperature + (progress >= b.tempFrom ? b.tempStep : 0) + line.arT, 3);
    p.humidity = round(clamp(b.humidity + (progress >= b.humFrom ? b.humStep : 0) + line.arH, 0, 100), 3);
    p.pressure = round((progress >= b.presFrom ? b.presLow : b.pressure) + 0.3 * rng.normal(), 3);
    p.speed = round(Math.max(0, b.speed + 3 * rng.normal()), 2);
    p.feed_rate = round(b.feed + b.feedDrift * progress + 0.4 * rng.normal(), 3);
    const made = Math.min(b.planned - b.units, Math.max(1, Math.round((p.speed * this.options.readingIntervalMs) / 60_000)));
    b.units += made;
    r.units_produced = b.units;
    r.timestamp = line.next;
    processLogits(p, env.cleanroom_grade, r.material_properties.supplier, line.logits);
    for (let c = 0; c < HAZARDS; c++) {
      b.expected[c] += made * sigmoid(line.logits[c]);
      b.realised[c] += made * sigmoid(line.logits[c] + b.batchEffect + b.categoryEffect[c]);
    }
    if (b.units >= b.planned) {
      line.running = false;
      line.outcomePending = true;
    } else line.next += this.options.readingIntervalMs;
  }

  private finishBatch(line: LineState): QualityOutcome {
    const b = line.batch;
    const r = line.reading;
    const n = b.units;
    const draw = (mean: number): number => {
      const p = mean / n;
      return Math.max(0, Math.round(mean + Math.sqrt(n * p * (1 - p)) * line.rng.normal()));
    };
    const defects: DefectCounts = { packaging: draw(b.realised[0]), labelling: draw(b.realised[1]), serialization: 0, other: 0 };
    defects.serialization = draw(b.realised[2]);
    defects.other = draw(b.realised[3]);
    const defective = defects.packaging + defects.labelling + defects.serialization + defects.other;
    const reworked = Math.min(n - defective, draw(b.realised[4]));
    const e = b.expected;
    const expectedDefects = (e[0] + e[1] + e[2] + e[3]) / n;
    return {
      line_id: r.line_id,
      work_order_id: r.work_order_id,
      batch_id: r.batch_id,
      timestamp: r.timestamp,
      start_timestamp: b.start,
      units_produced: n,
      first_pass_yield: round(1 - (defective + reworked) / n, 6),
      defect_rate: round(defective / n, 6),
      defects,
      reworked_units: reworked,
      expected: {
        first_pass_yield: 1 - expectedDefects - e[4] / n,
        defect_rate: expectedDefects,
        defect_probability: { packaging: e[0] / n, labelling: e[1] / n, serialization: e[2] / n, other: e[3] / n },
      },
    };
  }
}

/** A quality outcome as one NDJSON line of a batch-stream file (`record_type` "quality", times ISO-8601; `expected` left out). */
export function formatQualityNdjson(q: QualityRecord): string {
  const d = q.defects;
  const start = q.start_timestamp === undefined ? "" : `"start_timestamp":"${iso(q.start_timestamp)}",`;
  const reworked = q.reworked_units === undefined ? "" : `,"reworked_units":${q.reworked_units}`;
  return (
    `{"record_type":"quality","line_id":${JSON.stringify(q.line_id)},"work_order_id":${JSON.stringify(q.work_order_id)},` +
    `"batch_id":${JSON.stringify(q.batch_id)},"timestamp":"${iso(q.timestamp)}",${start}` +
    `"units_produced":${q.units_produced},"first_pass_yield":${q.first_pass_yield},"defect_rate":${q.defect_rate},` +
    `"defects":{"packaging":${d.packaging},"labelling":${d.labelling},"serialization":${d.serialization},"other":${d.other}}${reworked}}\n`
  );
}

/** A process reading as one NDJSON line of a batch-stream file (`record_type` "process", time ISO-8601). */
export function formatProcessNdjson(r: ProcessReading): string {
  const p = r.process_parameters;
  const e = r.environmental_conditions;
  const m = r.material_properties;
  return (
    `{"record_type":"process","line_id":${JSON.stringify(r.line_id)},"work_order_id":${JSON.stringify(r.work_order_id)},` +
    `"batch_id":${JSON.stringify(r.batch_id)},"timestamp":"${iso(r.timestamp)}","units_produced":${r.units_produced},` +
    `"planned_units":${r.planned_units},"process_parameters":{"temperature":${p.temperature},"humidity":${p.humidity},` +
    `"pressure":${p.pressure},"speed":${p.speed},"feed_rate":${p.feed_rate}},"environmental_conditions":{"ambient_temperature":` +
    `${e.ambient_temperature},"ambient_humidity":${e.ambient_humidity},"cleanroom_grade":${JSON.stringify(e.cleanroom_grade)}},` +
    `"material_properties":{"supplier":${JSON.stringify(m.supplier)},"material_batch_number":${JSON.stringify(m.material_batch_number)}}}\n`
  );
}

// ---- internals ----

/** packaging, labelling, serialization, other, rework. */
const HAZARDS = 5;
const LOGIT_BASE = Float64Array.from([0.006, 0.005, 0.003, 0.004, 0.008], (p) => Math.log(p / (1 - p)));
/** The purpose coordinate of the batch lines' random streams (a: line index). */
const STREAM_BATCH_LINES = 7;

interface BatchScenario {
  start: number;
  planned: number;
  units: number;
  ambientT: number;
  ambientH: number;
  temperature: number;
  /** Excursion: from this progress on, add the step (progress ≥ 2 never happens: no excursion). */
  tempFrom: number;
  tempStep: number;
  humidity: number;
  humFrom: number;
  humStep: number;
  pressure: number;
  presFrom: number;
  presLow: number;
  speed: number;
  feed: number;
  /** Feed-rate drift over the whole batch, in points of nominal. */
  feedDrift: number;
  batchEffect: number;
  categoryEffect: Float64Array;
  /** Σ units × probability per hazard: without (expected) and with (realised) the batch's random effects. */
  expected: Float64Array;
  realised: Float64Array;
}

interface LineState {
  index: number;
  rng: SeededRandom;
  reading: ProcessReading;
  batch: BatchScenario;
  batchSeq: number;
  workOrderSeq: number;
  /** Batches left in the current work order. */
  workOrderLeft: number;
  running: boolean;
  outcomePending: boolean;
  next: number;
  arT: number;
  arH: number;
  logits: Float64Array;
}

function newLine(index: number, o: BatchSimulatorOptions): LineState {
  const id = lineId(index);
  return {
    index,
    rng: new SeededRandom(streamKey(o.seed, STREAM_BATCH_LINES, index)),
    reading: {
      line_id: id,
      work_order_id: "",
      batch_id: "",
      timestamp: 0,
      units_produced: 0,
      planned_units: 0,
      process_parameters: { temperature: 0, humidity: 0, pressure: 0, speed: 0, feed_rate: 0 },
      environmental_conditions: { ambient_temperature: 0, ambient_humidity: 0, cleanroom_grade: "C" },
      material_properties: { supplier: "SUP-A", material_batch_number: "" },
    },
    batch: emptyScenario(),
    batchSeq: 0,
    workOrderSeq: 0,
    workOrderLeft: 0,
    running: false,
    outcomePending: false,
    next: 0,
    arT: 0,
    arH: 0,
    logits: new Float64Array(HAZARDS),
  };
}

function emptyScenario(): BatchScenario {
  return {
    start: 0,
    planned: 1,
    units: 0,
    ambientT: 0,
    ambientH: 0,
    temperature: 0,
    tempFrom: 2,
    tempStep: 0,
    humidity: 0,
    humFrom: 2,
    humStep: 0,
    pressure: 0,
    presFrom: 2,
    presLow: 0,
    speed: 0,
    feed: 0,
    feedDrift: 0,
    batchEffect: 0,
    categoryEffect: new Float64Array(HAZARDS),
    expected: new Float64Array(HAZARDS),
    realised: new Float64Array(HAZARDS),
  };
}

/** Draws a new batch's scenario on the line (the module comment's "Batch scenarios"). */
function drawScenario(line: LineState, o: BatchSimulatorOptions, t: number): void {
  const rng = line.rng;
  const b = line.batch;
  const r = line.reading;
  line.batchSeq++;
  if (line.workOrderLeft === 0) {
    line.workOrderSeq++;
    line.workOrderLeft = 1 + rng.below(4);
    const u = rng.next();
    r.material_properties.supplier = u < 0.45 ? "SUP-A" : u < 0.8 ? "SUP-B" : "SUP-C";
    r.work_order_id = `WO-${lineId(line.index).slice(2)}-${String(line.workOrderSeq).padStart(5, "0")}`;
  }
  line.workOrderLeft--;
  r.batch_id = `${r.line_id}-B${String(line.batchSeq).padStart(5, "0")}`;
  r.material_properties.material_batch_number = `MB-${r.material_properties.supplier.slice(4)}-${String(10_000 + rng.below(90_000))}`;
  const g = rng.next();
  r.environmental_conditions.cleanroom_grade = g < 0.25 ? "B" : g < 0.75 ? "C" : "D";
  b.start = t;
  b.planned = rng.int(o.plannedUnitsMin, o.plannedUnitsMax);
  r.planned_units = b.planned;
  b.units = 0;
  b.ambientT = 20 + 2.5 * rng.normal();
  b.ambientH = clamp(45 + 12 * rng.normal(), 15, 85);
  b.temperature = 21.5 + 0.5 * (b.ambientT - 20) + 1.0 * rng.normal();
  b.humidity = 45 + 0.6 * (b.ambientH - 45) + 4 * rng.normal();
  b.pressure = 15 + 1.5 * rng.normal();
  const from = () => rng.uniform(0.1, 0.8);
  b.tempFrom = rng.next() < 0.15 ? from() : 2;
  b.tempStep = rng.uniform(3, 7);
  b.humFrom = rng.next() < 0.1 ? from() : 2;
  b.humStep = rng.uniform(10, 20);
  b.presFrom = rng.next() < 0.08 ? from() : 2;
  b.presLow = rng.uniform(6, 9);
  b.speed = SPEEDS[rng.below(SPEEDS.length)];
  b.feed = 100 + 0.5 * rng.normal();
  b.feedDrift = rng.next() < 0.25 ? (rng.next() < 0.5 ? -1 : 1) * rng.uniform(3, 8) : 0;
  b.batchEffect = 0.2 * rng.normal();
  for (let c = 0; c < HAZARDS; c++) b.categoryEffect[c] = 0.15 * rng.normal();
  b.expected.fill(0);
  b.realised.fill(0);
  line.arT = 0;
  line.arH = 0;
}

const SPEEDS = [280, 300, 300, 320, 340, 360] as const;

function materialEffect(supplier: string): number {
  return supplier === "SUP-C" ? 0.8 : supplier === "SUP-B" ? 0.15 : 0;
}

function roomEffect(grade: string): number {
  return grade === "D" ? 0.8 : grade === "C" ? 0.3 : 0;
}

function hinge(x: number, lo: number, hi: number, s: number): number {
  return Math.max(0, lo - x, x - hi) / s;
}

function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z));
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : Math.min(v, hi);
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
