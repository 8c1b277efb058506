/**
 * Drift PSI on real data: the C-MAPSS FD001 failure model's feature rows (rolling mean and slope,
 * window 30, of the 14 informative sensors) replayed through the PSI monitor against the reference
 * histograms built from the training units, as `linewatch predict train` stores them.
 *
 * - Unshifted replay of all 100 units (80 training + 20 held out by seed 1): the largest PSI any
 *   feature reaches and any level change, for several window lengths W and two replay orders:
 *   `unit` (one unit after another, each through its whole life) and `fleet` (every unit from
 *   cycle 1 side by side, as the C-MAPSS source replays by default).
 *   With them, the effective sample size of a window, n_eff = (k − 1) / mean PSI per feature (the
 *   χ² approximation of the null PSI, psi.ts), median over the .mean and over the .slope features.
 * - Shifted replay, unit order: the 100 units as they are, then a copy of them with one sensor
 *   shifted by +k σ (σ: that sensor's standard deviation over all readings of the file): the
 *   readings (= cycles in unit order) after the copy began until the monitor raises drift, and
 *   which features it names.
 *
 * `node dist/bench/drift-cmapss.js [train_FD001.txt] [--sensor s11] [--k 1]`
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { CMAPSS_SENSORS, type CmapssUnit, readCmapss, referenceDataDir } from "../connectors/files/mod.js";
import {
  binIndex,
  buildReferenceHistograms,
  PsiMonitor,
  type PsiMonitorOptions,
  mixtureCrossing,
  type ReferenceHistograms,
} from "../operators/drift/mod.js";
import { informativeSensors, rulFeatureNames, rulFeatureRows } from "../operators/prediction/mod.js";
import { buildRulDataset, DEFAULT_RUL_TRAIN_OPTIONS, splitUnits } from "../operators/prediction/training/rul-train.js";

export interface ReplayFigures {
  order: "unit" | "fleet";
  window: number;
  rows: number;
  maxPsi: number;
  maxFeature: string;
  changes: number;
  /** Median n_eff = (k − 1) / mean PSI over the .mean features and over the .slope features. */
  effectiveMean: number;
  effectiveSlope: number;
}

export interface ShiftFigures {
  sensor: string;
  k: number;
  window: number;
  /** Level changes during the unshifted pass (0: it stayed stable). */
  changesBefore: number;
  /** Readings after the shift began until the model left stable / became major; null: never. */
  readingsToModerate: number | null;
  readingsToMajor: number | null;
  /** Features named when drift was first raised, and every feature that moved at any point. */
  firstMoved: string[];
  everMoved: string[];
  /** The mixture prediction of readingsToModerate / readingsToMajor ({@link mixtureReadings}). */
  predictedModerate: number | null;
  predictedMajor: number | null;
}

/**
 * The features this evaluation measures drift on: rolling mean and slope over 30 cycles, the failure
 * model's features when docs/drift.md's figures were measured (`predict train` now defaults to mean,
 * slope and count over 150 cycles; drift on those is not measured here yet).
 */
const DRIFT_EVAL_WINDOW = 30;
const DRIFT_EVAL_STATISTICS = ["mean", "slope"] as const;

/** The reference histograms the training of seed 1 stores, with its feature names. */
export function cmapssReference(units: readonly CmapssUnit[]): { reference: ReferenceHistograms; names: string[] } {
  const o = DEFAULT_RUL_TRAIN_OPTIONS;
  const { train } = splitUnits(units, o.holdout, o.seed);
  const names = rulFeatureNames(informativeSensors(train), DRIFT_EVAL_STATISTICS);
  const data = buildRulDataset(train, names, DRIFT_EVAL_WINDOW, o.rulCap);
  return { reference: buildReferenceHistograms(data.features, data.rows, names, o.referenceBins), names };
}

/** Feature rows of the units in unit order (each unit's whole life in turn) or fleet order (cycle by cycle). */
export function replayRows(units: readonly CmapssUnit[], names: readonly string[], order: "unit" | "fleet"): Float64Array {
  const f = names.length;
  const perUnit = units.map((u) => rulFeatureRows(u, names, DRIFT_EVAL_WINDOW));
  const out = new Float64Array(perUnit.reduce((a, r) => a + r.length, 0));
  let at = 0;
  if (order === "unit") {
    for (const rows of perUnit) {
      out.set(rows, at);
      at += rows.length;
    }
    return out;
  }
  const longest = Math.max(...units.map((u) => u.cycles.length));
  for (let c = 0; c < longest; c++) {
    for (const rows of perUnit) {
      if ((c + 1) * f > rows.length) continue;
      out.set(rows.subarray(c * f, (c + 1) * f), at);
      at += f;
    }
  }
  return out;
}

/** A copy of the unit with sensor `name` raised by `amount` at every cycle. */
export function shiftedUnit(u: CmapssUnit, name: string, amount: number): CmapssUnit {
  const k = CMAPSS_SENSORS.findIndex((s) => s.name === name);
  return { ...u, sensors: u.sensors.map((xs, i) => (i === k ? Float64Array.from(xs, (v) => v + amount) : xs)) } as CmapssUnit;
}

export function sensorSigma(units: readonly CmapssUnit[], name: string): number {
  const k = CMAPSS_SENSORS.findIndex((s) => s.name === name);
  let n = 0;
  let mean = 0;
  let m2 = 0;
  for (const u of units) {
    for (const v of u.sensors[k]) {
      n++;
      const d = v - mean;
      mean += d / n;
      m2 += d * (v - mean);
    }
  }
  return Math.sqrt(m2 / (n - 1));
}

export function replayFigures(
  reference: ReferenceHistograms,
  rows: Float64Array,
  options: Partial<PsiMonitorOptions>,
  order: "unit" | "fleet",
): ReplayFigures {
  const monitor = new PsiMonitor(reference, options);
  const f = monitor.featureNames.length;
  const n = rows.length / f;
  const sum = new Float64Array(f);
  let evaluations = 0;
  let maxPsi = 0;
  let maxFeature = "";
  let changes = 0;
  for (let r = 0; r < n; r++) {
    if (monitor.observe(rows, r * f) !== null) changes++;
    if (monitor.readings < monitor.options.window) continue;
    evaluations++;
    for (let j = 0; j < f; j++) {
      sum[j] += monitor.psi[j];
      if (monitor.psi[j] > maxPsi) {
        maxPsi = monitor.psi[j];
        maxFeature = monitor.featureNames[j];
      }
    }
  }
  const effective = (suffix: string) => {
    const v = monitor.featureNames.flatMap((name, j) =>
      name.endsWith(suffix) ? [(reference.features[j].counts.length - 1) / (sum[j] / evaluations)] : [],
    );
    return v.sort((a, b) => a - b)[v.length >> 1] ?? NaN;
  };
  return {
    order,
    window: monitor.options.window,
    rows: n,
    maxPsi,
    maxFeature,
    changes,
    effectiveMean: effective(".mean"),
    effectiveSlope: effective(".slope"),
  };
}

/** The units as they are, then a copy with `sensor` shifted by k σ, in unit order. */
export function shiftFigures(
  units: readonly CmapssUnit[],
  reference: ReferenceHistograms,
  names: readonly string[],
  sensor: string,
  k: number,
  options: Partial<PsiMonitorOptions>,
): ShiftFigures {
  const sigma = sensorSigma(units, sensor);
  const replay = [...units, ...units.map((u) => shiftedUnit(u, sensor, k * sigma))];
  const rows = replayRows(replay, names, "unit");
  const shiftAt = units.reduce((a, u) => a + u.cycles.length, 0);
  const monitor = new PsiMonitor(reference, options);
  const f = names.length;
  const figures: ShiftFigures = {
    sensor,
    k,
    window: monitor.options.window,
    changesBefore: 0,
    readingsToModerate: null,
    readingsToMajor: null,
    firstMoved: [],
    everMoved: [],
    predictedModerate: null,
    predictedMajor: null,
  };
  const ever = new Set<string>();
  const feature = names.indexOf(`${sensor}.mean`);
  const plain = rows.subarray(0, shiftAt * f);
  const moved = rows.subarray(shiftAt * f);
  figures.predictedModerate = mixtureReadings(reference, feature, plain, moved, monitor.options.window, monitor.options.moderate);
  figures.predictedMajor = mixtureReadings(reference, feature, plain, moved, monitor.options.window, monitor.options.major);
  for (let r = 0; r < rows.length / f; r++) {
    const change = monitor.observe(rows, r * f);
    if (change === null) continue;
    const after = r + 1 - shiftAt;
    if (after <= 0) {
      figures.changesBefore++;
      continue;
    }
    for (const m of change.moved) ever.add(m.name);
    if (change.to !== "stable" && figures.readingsToModerate === null) {
      figures.readingsToModerate = after;
      figures.firstMoved = change.moved.map((m) => m.name);
    }
    if (change.to === "major" && figures.readingsToMajor === null) figures.readingsToMajor = after;
  }
  figures.everMoved = [...ever];
  return figures;
}

/**
 * The readings after a shift at which feature j's PSI should reach `threshold`: j readings after
 * the shift a full window of W holds W − j rows like `before` and j like `after`; taking each part
 * at its whole-replay bin proportions p and p′, the window's are (1 − j/W)·p + (j/W)·p′, and the
 * PSI of that mixture against the reference reaches the threshold at j* = f*·W (f* by bisection;
 * null when even a fully shifted window stays below it). Autocorrelation makes the real window's
 * parts differ from p and p′, so the monitor lands near j*, not on it.
 */
export function mixtureReadings(
  reference: ReferenceHistograms,
  j: number,
  before: Float64Array,
  after: Float64Array,
  window: number,
  threshold: number,
): number | null {
  const h = reference.features[j];
  const f = reference.features.length;
  const proportions = (rows: Float64Array) => {
    const c = new Float64Array(h.counts.length);
    const n = rows.length / f;
    for (let r = 0; r < n; r++) c[binIndex(h.edges, rows[r * f + j])]++;
    return c.map((x) => x / n);
  };
  const fraction = mixtureCrossing(proportions(before), proportions(after), h.counts, threshold);
  return fraction === null ? null : Math.ceil(fraction * window);
}

/** CPU time per reading of the monitor on these rows (µs), evaluating every reading. */
export function monitorMicrosPerReading(reference: ReferenceHistograms, rows: Float64Array, options: Partial<PsiMonitorOptions>): number {
  const monitor = new PsiMonitor(reference, options);
  const f = monitor.featureNames.length;
  const n = rows.length / f;
  const started = process.cpuUsage();
  for (let r = 0; r < n; r++) monitor.observe(rows, r * f);
  const used = process.cpuUsage(started);
  return (used.user + used.system) / n;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const flag = (name: string, fallback: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : fallback;
  };
  const file = args[0] !== undefined && !args[0].startsWith("--") ? args[0] : join(referenceDataDir(), "cmapss", "train_FD001.txt");
  const units = readCmapss(file);
  const { reference, names } = cmapssReference(units);
  process.stdout.write(`reference: ${reference.rows} training rows × ${names.length} features (${names.join(" ")})\n`);
  for (const order of ["unit", "fleet"] as const) {
    const rows = replayRows(units, names, order);
    for (const window of [1000, 2000, 5000, 10_000, 15_000]) {
      const r = replayFigures(reference, rows, { window }, order);
      process.stdout.write(
        `unshifted ${order.padEnd(5)} W ${String(window).padStart(5)}: max PSI ${r.maxPsi.toFixed(4)} (${r.maxFeature}), ` +
          `level changes ${r.changes}, n_eff .mean ${r.effectiveMean.toFixed(0)} .slope ${r.effectiveSlope.toFixed(0)}\n`,
      );
    }
  }
  const unitRows = replayRows(units, names, "unit");
  for (const window of [1000, 10_000]) {
    const us = monitorMicrosPerReading(reference, unitRows, { window });
    process.stdout.write(
      `monitor cost, W ${window}, ${names.length} features, evaluated every reading: ${us.toFixed(2)} µs CPU per reading\n`,
    );
  }
  const sensors = args.includes("--sensor") ? [flag("--sensor", "s11")] : ["s11", "s7", "s2"];
  const ks = args.includes("--k") ? [Number(flag("--k", "1"))] : [0.25, 0.5, 1, 2];
  for (const sensor of sensors) {
    for (const k of ks) {
      for (const window of [10_000]) {
        const s = shiftFigures(units, reference, names, sensor, k, { window });
        process.stdout.write(
          `shift ${sensor} +${k}σ W ${window}: changes before the shift ${s.changesBefore}; moderate after ${s.readingsToModerate ?? "never"} readings ` +
            `(mixture j* ${s.predictedModerate ?? "never"}), major after ${s.readingsToMajor ?? "never"} (j* ${s.predictedMajor ?? "never"}); ` +
            `first named [${s.firstMoved.join(" ")}], ever moved [${s.everMoved.join(" ")}]\n`,
        );
      }
    }
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await main();
