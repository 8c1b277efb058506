/**
 * The failure model of the built-in plant: trained on the simulator's own wear (connectors/sim
 * wear-model.ts) with the C-MAPSS training library (operators/prediction/training/rul-train.ts),
 * deterministically, and cached, so that `linewatch run` on the simulator predicts failures with
 * no model file.
 *
 * Features: `<sensor>.mean` of the sensors the failure modes move (temperature, vibration,
 * pressure, motor_current) and of line_speed (the operating mode) — the rolling analysis's mean over the run's count window (64), of
 * the key each reading goes to in a run keyed by operating mode (machine/sensor/mode, or
 * machine/sensor/settling for `sensorSettleMs` after a mode change), each sensor's latest row at
 * the step's time: what the prediction service (engine/jobs/prediction-service.ts) reads in-stream.
 * {@link SimFeatureTracker} computes them from the simulator's columns.
 *
 * Training data: the simulator with training seeds (never the run's default seeds 1–3, on which
 * the accuracy is measured) at a training rate of 1 reading per second per sensor (the run reads
 * 10 per second; the mean of a settled window of 64 readings has the same distribution at either
 * rate, and the bench `failure` measures the model on 10 Hz data). Each component life that ends
 * in a failure is one unit; its rows are the features every 15 minutes back from the failure
 * (a cycle is 15 minutes of event time: `cycleHours` 0.25), its target the time to failure,
 * capped at 48 h (192 cycles). Lives ended by a preventive replacement or by the end of the data
 * are censored and left out.
 *
 * The library trains on C-MAPSS units: each row's features go in as sensors s1…s4 read with a
 * window of 1, whose `mean` is the value itself and whose `slope` is exactly 0; the slope
 * inputs (standardised to exactly 0) are then dropped from the first layer and the inputs renamed
 * — the exported network computes the same function on the named features.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CMAPSS_SENSORS, type CmapssUnit } from "../../connectors/files/mod.js";
import {
  FAILURE_MODES,
  type FailureLabel,
  type MaintenanceRecord,
  OPERATING_MODES,
  PlantSimulator,
  SENSOR_SPECS,
  type SimulatedColumns,
} from "../../connectors/sim/mod.js";
import { buildReferenceHistograms, trainingFingerprint } from "../../operators/drift/mod.js";
import { encodeRulModel, type RulModelSpec } from "../../operators/prediction/training/onnx-export.js";
import { DEFAULT_RUL_TRAIN_OPTIONS, type RulEvaluation, trainRulModel } from "../../operators/prediction/training/rul-train.js";
import { sensorSettleMs } from "../jobs/mod.js";

/**
 * The sensors the simulator's failure modes move, and line speed, whose level tells the operating
 * mode (the others' levels depend on it): the model reads their rolling mean.
 */
export const SIM_MODEL_SENSORS = ["temperature", "vibration", "pressure", "motor_current", "line_speed"] as const;

export interface SimModelOptions {
  /** Simulator seeds of the training data (one plant each). */
  seeds: readonly number[];
  machines: number;
  /** Simulated hours per seed. */
  hours: number;
  /** Readings per second per sensor of the training data. */
  rateHz: number;
  faultRate: number;
  /** The rolling count window (the run's default, so predictions do not change the run's rolling analysis). */
  window: number;
  cycleHours: number;
  rulCapHours: number;
  /** failure_probability = P(time to failure ≤ horizon). */
  horizonHours: number;
  /** Training seed, epochs, hidden widths and held-out lives of the MLP (rul-train.ts). */
  trainSeed: number;
  epochs: number;
  hidden: readonly number[];
  holdout: number;
}

export const DEFAULT_SIM_MODEL_OPTIONS: Readonly<SimModelOptions> = Object.freeze({
  seeds: [1001, 1002, 1003, 1004],
  machines: 8,
  hours: 240,
  rateHz: 0.5,
  faultRate: 2,
  window: 64,
  cycleHours: 0.25,
  rulCapHours: 48,
  horizonHours: 12,
  trainSeed: 1,
  epochs: 40,
  hidden: [32, 16],
  holdout: 12,
});

/** The model's bytes and what its training measured. */
export interface SimModel {
  bytes: Uint8Array;
  /** The cache file the model was read from or written to; null without a cache. */
  path: string | null;
  /** True when it came from the cache. */
  cached: boolean;
  report: SimModelReport;
}

export interface SimModelReport {
  key: string;
  lives: number;
  trainLives: number;
  heldOutLives: number;
  rows: number;
  /** Held-out lives, in hours: RMSE over every row (capped target) and at random cuts. */
  validationRmseHours: number;
  truncatedRmseHours: number;
  residualSigmaHours: number;
  trainSeconds: number;
  options: SimModelOptions;
}

/** The cache folder: LINEWATCH_CACHE_DIR, else $XDG_CACHE_HOME/linewatch, else ~/.cache/linewatch. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.LINEWATCH_CACHE_DIR) return env.LINEWATCH_CACHE_DIR;
  return join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "linewatch");
}

/**
 * The built-in plant's failure model: from `cacheDir` when a model of the same key is there,
 * else trained now and written there. The key hashes the options, the simulator's sensor and
 * failure-mode tables and the code of the simulator and of the training library, so a change to
 * any of them trains anew.
 */
export async function simFailureModel(
  cacheDir: string | null,
  options: SimModelOptions = DEFAULT_SIM_MODEL_OPTIONS,
  onTraining?: (path: string | null) => void,
): Promise<SimModel> {
  const key = await simModelKey(options);
  const path = cacheDir === null ? null : join(cacheDir, `sim-failure-${key.slice(0, 16)}.onnx`);
  if (path !== null) {
    const cached = await readCached(path);
    if (cached !== null) return { bytes: cached.bytes, path, cached: true, report: cached.report };
  }
  onTraining?.(path);
  const { bytes, report } = trainSimModel(options, key);
  if (path !== null && cacheDir !== null) {
    await mkdir(cacheDir, { recursive: true });
    // Written under a temporary name and renamed: a second start never reads half a file.
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, bytes);
    await rename(tmp, path);
    await writeFile(`${path}.json`, `${JSON.stringify(report, null, 2)}\n`);
  }
  return { bytes, path, cached: false, report };
}

async function readCached(path: string): Promise<{ bytes: Uint8Array; report: SimModelReport } | null> {
  try {
    const bytes = await readFile(path);
    const report = JSON.parse(await readFile(`${path}.json`, "utf8")) as SimModelReport;
    return { bytes, report };
  } catch {
    return null;
  }
}

/** sha256 of the options, the simulator's tables and the code that makes the model. */
export async function simModelKey(options: SimModelOptions): Promise<string> {
  const hash = createHash("sha256").update(JSON.stringify({ options, SENSOR_SPECS, FAILURE_MODES, OPERATING_MODES }));
  // The compiled files (dist/…/*.js), or the sources when this module runs as TypeScript (tests).
  const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
  const code = [
    "../../connectors/sim/plant-simulator",
    "../../connectors/sim/wear-model",
    "../../operators/prediction/training/rul-train",
    "../../operators/prediction/training/dense-layer",
    "../../operators/prediction/training/onnx-export",
    "./sim-failure-model",
  ];
  for (const file of code) hash.update(await readFile(fileURLToPath(new URL(`${file}${ext}`, import.meta.url))));
  return hash.digest("hex");
}

/** Trains the model (deterministic: the same options give the same bytes). */
export function trainSimModel(options: SimModelOptions, key: string): { bytes: Uint8Array; report: SimModelReport } {
  const started = performance.now();
  const lives = options.seeds.flatMap((seed, i) => simulatedLives(options, seed, i * 10_000));
  const cap = Math.round(options.rulCapHours / options.cycleHours);
  const trained = trainRulModel(
    lives,
    {
      ...DEFAULT_RUL_TRAIN_OPTIONS,
      // The plant's model as it was measured (docs/prediction.md, the built-in plant): one network,
      // Adam at 1e-3 without decay, level and trend only — not the C-MAPSS defaults (an ensemble of
      // 8 at 3e-3 with the window's count), which would train 8× as long at build time.
      statistics: ["mean", "slope"],
      ensemble: 1,
      learningRate: 1e-3,
      cosineDecay: false,
      seed: options.trainSeed,
      epochs: options.epochs,
      hidden: options.hidden,
      holdout: options.holdout,
      window: 1,
      rulCap: cap,
      horizonCycles: Math.round(options.horizonHours / options.cycleHours),
      cycleHours: options.cycleHours,
      sensors: SIM_MODEL_SENSORS.map((_, j) => CMAPSS_SENSORS[j].name),
    },
    "plant simulator",
  );
  const trainUnits = new Set(trained.trainUnits);
  const spec = namedSpec(
    trained.spec,
    lives.filter((u) => trainUnits.has(u.unit)),
    options,
  );
  spec.trainedOn =
    `plant simulator wear (seeds ${options.seeds.join(" ")}, ${options.machines} machines, ${options.hours} h each, ${options.rateHz} Hz, ` +
    `fault rate ${options.faultRate}): ${lives.length} lives to failure, ${trained.heldOutUnits.length} held out; ${trained.spec.trainedOn}`;
  const v: RulEvaluation = trained.validation;
  const h = options.cycleHours;
  return {
    bytes: encodeRulModel(spec),
    report: {
      key,
      lives: lives.length,
      trainLives: trained.trainUnits.length,
      heldOutLives: trained.heldOutUnits.length,
      rows: v.rows,
      validationRmseHours: v.rmseAllRows * h,
      truncatedRmseHours: v.truncated.rmse * h,
      residualSigmaHours: v.residualSigma * h,
      trainSeconds: (performance.now() - started) / 1000,
      options: { ...options },
    },
  };
}

/**
 * The library's spec over s1.mean, s1.slope, … turned into one over `<sensor>.mean`: the slope
 * inputs are exactly 0 after standardisation (a one-reading window's slope is 0 on every row, so
 * mean 0 and std 1), so their first-layer rows contribute nothing and are dropped.
 */
function namedSpec(spec: RulModelSpec, trainLives: readonly CmapssUnit[], options: SimModelOptions): RulModelSpec {
  const keep = SIM_MODEL_SENSORS.map((_, j) => spec.featureNames.indexOf(`${CMAPSS_SENSORS[j].name}.mean`));
  spec.featureNames.forEach((name, i) => {
    if (!keep.includes(i) && !(spec.featureMean[i] === 0 && spec.featureStd[i] === 1))
      throw new Error(`sim failure model: input ${name} is not constant 0, so it cannot be dropped`);
  });
  if (keep.includes(-1)) throw new Error(`sim failure model: the library's features ${spec.featureNames.join(", ")} lack a mean`);
  const first = spec.layers[0];
  const weights = new Float32Array(keep.length * first.outputs);
  keep.forEach((i, r) => weights.set(first.weights.subarray(i * first.outputs, (i + 1) * first.outputs), r * first.outputs));
  const names = SIM_MODEL_SENSORS.map((s) => `${s}.mean`);
  const rows = trainLives.reduce((a, u) => a + u.cycles.length, 0);
  const values = new Float64Array(rows * names.length);
  let r = 0;
  for (const u of trainLives)
    for (let i = 0; i < u.cycles.length; i++, r++) for (let j = 0; j < names.length; j++) values[r * names.length + j] = u.sensors[j][i];
  return {
    ...spec,
    featureNames: names,
    window: options.window,
    featureMean: Float32Array.from(keep, (i) => spec.featureMean[i]),
    featureStd: Float32Array.from(keep, (i) => spec.featureStd[i]),
    layers: [{ ...first, inputs: keep.length, weights }, ...spec.layers.slice(1)],
    referenceHistograms: buildReferenceHistograms(values, rows, names),
    trainingFingerprint: trainingFingerprint(values, rows, names),
  };
}

/** The lives to failure of one simulated plant, as C-MAPSS-shaped units (unit numbers from `unitBase` + 1). */
export function simulatedLives(options: SimModelOptions, seed: number, unitBase: number): CmapssUnit[] {
  const trace = simulateFeatures({
    seed,
    machines: options.machines,
    rateHz: options.rateHz,
    faultRate: options.faultRate,
    hours: options.hours,
    window: options.window,
    sampleMs: 60_000,
  });
  const units: CmapssUnit[] = [];
  for (const f of trace.failures) {
    const rows = lifeRows(trace, f, options.cycleHours * 3_600_000);
    if (rows.length < 2) continue;
    units.push(unitOf(unitBase + units.length + 1, rows, trace.machineRows.get(f.machine_id) as FeatureRows));
  }
  return units;
}

/** A plant's feature rows per machine, with its failures and maintenance. */
export interface FeatureTrace {
  startTime: number;
  machineRows: Map<string, FeatureRows>;
  failures: FailureLabel[];
  maintenance: MaintenanceRecord[];
}

/** One machine's sampled features: time i and its SIM_MODEL_SENSORS means at values[i·S …]. */
export interface FeatureRows {
  times: number[];
  values: number[];
}

/** Runs the simulator and samples every machine's features every `sampleMs` of event time. */
export function simulateFeatures(o: {
  seed: number;
  machines: number;
  rateHz: number;
  faultRate: number;
  hours: number;
  window: number;
  sampleMs: number;
}): FeatureTrace {
  const sim = new PlantSimulator({
    seed: o.seed,
    machines: o.machines,
    rateHz: o.rateHz,
    faultRate: o.faultRate,
    sensorTypes: [...SIM_MODEL_SENSORS],
    durationMs: o.hours * 3_600_000,
  });
  const tracker = new SimFeatureTracker(sim, o.window);
  const machineRows = new Map<string, FeatureRows>(sim.machines().map((m) => [m.machine_id, { times: [], values: [] }]));
  const rowsOf = [...machineRows.values()];
  const failures: FailureLabel[] = [];
  const maintenance: MaintenanceRecord[] = [];
  const features = new Float64Array(SIM_MODEL_SENSORS.length);
  let next = sim.options.startTime + o.sampleMs;
  while (!sim.done) {
    const columns = sim.nextColumns(65_536);
    next = tracker.observe(columns, next, o.sampleMs, (at) => {
      rowsOf.forEach((rows, m) => {
        if (!tracker.features(m, features)) return;
        rows.times.push(at);
        for (const v of features) rows.values.push(v);
      });
    });
    failures.push(...sim.drainFailures());
    maintenance.push(...sim.drainMaintenance());
  }
  return { startTime: sim.options.startTime, machineRows, failures, maintenance };
}

/** Row indexes of the life ending in failure `f`, one per cycle back from the failure (oldest first). */
function lifeRows(trace: FeatureTrace, f: FailureLabel, cycleMs: number): number[] {
  const rows = trace.machineRows.get(f.machine_id) as FeatureRows;
  // The life began when the machine last resumed with a new component (or with the data).
  let born = trace.startTime;
  for (const m of trace.maintenance)
    if (m.machine_id === f.machine_id && m.components_replaced.length > 0 && m.end <= f.at && m.end > born) born = m.end;
  const out: number[] = [];
  let i = rows.times.length - 1;
  for (let t = f.at; t > born; t -= cycleMs) {
    while (i >= 0 && rows.times[i] > t) i--;
    if (i < 0 || rows.times[i] <= born) break;
    out.push(i);
  }
  return out.reverse();
}

function unitOf(unit: number, rowIndexes: readonly number[], rows: FeatureRows): CmapssUnit {
  const n = rowIndexes.length;
  const S = SIM_MODEL_SENSORS.length;
  const sensors = CMAPSS_SENSORS.map(() => new Float64Array(n));
  rowIndexes.forEach((r, i) => {
    for (let j = 0; j < S; j++) sensors[j][i] = rows.values[r * S + j];
  });
  return { unit, cycles: Int32Array.from({ length: n }, (_, i) => i + 1), settings: [0, 1, 2].map(() => new Float64Array(n)), sensors };
}

/**
 * The rolling means the prediction service would read, from the simulator's columns: per source
 * key and operating mode (or "settling" for sensorSettleMs after a mode change, as a run keyed by
 * mode routes readings) the last `window` readings; a machine's feature for a sensor is the mean
 * of the window its latest reading went to.
 */
export class SimFeatureTracker {
  private readonly slots: number;
  private readonly rings: Float64Array;
  private readonly counts: Float64Array;
  private readonly latestSlot: Int32Array;
  private readonly lastMode: Int16Array;
  private readonly modeSince: Float64Array;
  private readonly settleMs: Float64Array;
  private readonly sensorsPerMachine: number;
  /** Index in the simulator's sensor types of each model sensor; −1 when absent. */
  private readonly sensorIndex: Int32Array;

  constructor(
    sim: PlantSimulator,
    private readonly window: number,
  ) {
    const keys = sim.keys();
    this.slots = OPERATING_MODES.length + 1;
    this.rings = new Float64Array(keys.length * this.slots * window);
    this.counts = new Float64Array(keys.length * this.slots);
    this.latestSlot = new Int32Array(keys.length).fill(-1);
    this.lastMode = new Int16Array(keys.length).fill(-1);
    this.modeSince = new Float64Array(keys.length);
    this.settleMs = Float64Array.from(keys, (k) => sensorSettleMs(k));
    this.sensorsPerMachine = sim.options.sensorTypes.length;
    this.sensorIndex = Int32Array.from(SIM_MODEL_SENSORS, (s) => sim.options.sensorTypes.indexOf(s));
  }

  /**
   * Feeds a chunk; calls `sample(at)` for every multiple `at` of `everyMs` (from `next` on) that
   * the readings pass, with the state of every reading before `at`. Returns the next sample time.
   */
  observe(c: SimulatedColumns, next: number, everyMs: number, sample: (at: number) => void): number {
    const { rings, counts, window } = this;
    for (let i = 0; i < c.length; i++) {
      const t = c.times[i];
      while (t > next) {
        sample(next);
        next += everyMs;
      }
      const k = c.keyIndex[i];
      const mode = c.modes[i];
      if (mode !== this.lastMode[k]) {
        this.modeSince[k] = this.lastMode[k] === -1 ? Number.NEGATIVE_INFINITY : t;
        this.lastMode[k] = mode;
      }
      const slot = k * this.slots + (t - this.modeSince[k] < this.settleMs[k] ? this.slots - 1 : mode);
      rings[slot * window + (counts[slot] % window)] = c.values[i];
      counts[slot]++;
      this.latestSlot[k] = slot;
    }
    return next;
  }

  /** Machine m's features (SIM_MODEL_SENSORS means) into `out`; false until every sensor has read. */
  features(m: number, out: Float64Array): boolean {
    for (let j = 0; j < this.sensorIndex.length; j++) {
      const s = this.sensorIndex[j];
      if (s < 0) return false;
      const slot = this.latestSlot[m * this.sensorsPerMachine + s];
      if (slot < 0) return false;
      const n = Math.min(this.counts[slot], this.window);
      let sum = 0;
      for (let i = 0; i < n; i++) sum += this.rings[slot * this.window + i];
      out[j] = sum / n;
    }
    return true;
  }
}
