import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { CommanderError } from "commander";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CSV_HEADER,
  NdjsonRecordWriter,
  SENSOR_RECORD_FIELDS,
  createRecordWriter,
  type RecordFormat,
} from "../connectors/files/record-writers.js";
import {
  FAULT_KINDS,
  OPERATING_MODES,
  PlantSimulator,
  SENSOR_SPECS,
  SENSOR_TYPES,
  SimulatorConfigError,
  allocateSimulatedColumns,
  appendColumnsToBatch,
  toSensorRecord,
  type FaultKind,
  type FaultLabel,
  type SensorType,
  type SimulatorOptions,
} from "../connectors/sim/plant-simulator.js";
import { allocateBatch } from "../engine/core/batch.js";
import { simulateCommand } from "../engine/cli/simulate.js";
import { DurationParseError, parseDuration } from "../engine/core/duration.js";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** A Writable that keeps every byte, optionally slow, recording the most it ever had queued. */
function memorySink(options: { highWaterMark?: number; slow?: boolean } = {}) {
  const chunks: Buffer[] = [];
  let queuedBytesMax = 0;
  const stream = new Writable({
    highWaterMark: options.highWaterMark,
    write(chunk: Buffer, _encoding, callback) {
      queuedBytesMax = Math.max(queuedBytesMax, this.writableLength);
      chunks.push(Buffer.from(chunk));
      if (options.slow) setImmediate(callback);
      else callback();
    },
  });
  return { stream, bytes: () => Buffer.concat(chunks), queuedBytesMax: () => queuedBytesMax };
}

/** The simulator's whole output through a record writer, read in chunks of `chunk` records. */
async function simulatedBytes(options: Partial<SimulatorOptions>, format: RecordFormat = "ndjson", chunk = 4096): Promise<Buffer> {
  const sim = new PlantSimulator(options);
  const sink = memorySink();
  const writer = createRecordWriter(format, sink.stream);
  while (!sim.done) {
    const columns = sim.nextColumns(chunk);
    for (let i = 0; i < columns.length; i++) await writer.write(sim.recordAt(columns, i));
  }
  await writer.end();
  return sink.bytes();
}

interface Run {
  sim: PlantSimulator;
  keyIndex: Uint32Array;
  times: Float64Array;
  values: Float64Array;
  modes: Uint8Array;
  workOrders: Uint32Array;
  labels: FaultLabel[];
}

/** Generates a whole run, asking for chunks of the given sizes in turn (cycled). */
function runAll(options: Partial<SimulatorOptions>, chunkSizes: readonly number[] = [65_536]): Run {
  const sim = new PlantSimulator(options);
  const parts: { keyIndex: number[]; times: number[]; values: number[]; modes: number[]; workOrders: number[] } = {
    keyIndex: [],
    times: [],
    values: [],
    modes: [],
    workOrders: [],
  };
  const labels: FaultLabel[] = [];
  let call = 0;
  while (!sim.done) {
    const columns = sim.nextColumns(chunkSizes[call++ % chunkSizes.length]);
    for (let i = 0; i < columns.length; i++) {
      parts.keyIndex.push(columns.keyIndex[i]);
      parts.times.push(columns.times[i]);
      parts.values.push(columns.values[i]);
      parts.modes.push(columns.modes[i]);
      parts.workOrders.push(columns.workOrders[i]);
    }
    labels.push(...sim.drainLabels());
  }
  return {
    sim,
    keyIndex: Uint32Array.from(parts.keyIndex),
    times: Float64Array.from(parts.times),
    values: Float64Array.from(parts.values),
    modes: Uint8Array.from(parts.modes),
    workOrders: Uint32Array.from(parts.workOrders),
    labels,
  };
}

interface KeySeries {
  times: number[];
  values: number[];
  modes: number[];
}

/** The run split per key index. */
function seriesByKey(run: Run): KeySeries[] {
  const series = run.sim.keys().map((): KeySeries => ({ times: [], values: [], modes: [] }));
  for (let i = 0; i < run.times.length; i++) {
    const s = series[run.keyIndex[i]];
    s.times.push(run.times[i]);
    s.values.push(run.values[i]);
    s.modes.push(run.modes[i]);
  }
  return series;
}

function keyIndexOf(run: Run, machineId: string, sensorType: SensorType): number {
  return run.sim.keys().findIndex((k) => k.machine_id === machineId && k.sensor_type === sensorType);
}

/** Index of the first element ≥ t in a sorted array. */
function lowerBound(sorted: readonly number[], t: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function mean(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

function std(values: readonly number[]): number {
  const m = mean(values);
  return Math.sqrt(values.reduce((a, b) => a + (b - m) ** 2, 0) / (values.length - 1));
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function bytesOf(array: Float64Array | Uint32Array | Uint8Array): Buffer {
  return Buffer.from(array.buffer, array.byteOffset, array.byteLength);
}

const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

// ---------------------------------------------------------------------------------------------
// Determinism
// ---------------------------------------------------------------------------------------------

describe("simulator - determinism", () => {
  it("simulator - same seed gives the same bytes, another seed different bytes", async () => {
    const a = await simulatedBytes({ seed: 42, maxRecords: 50_000 });
    const b = await simulatedBytes({ seed: 42, maxRecords: 50_000 }, "ndjson", 1_000);
    const c = await simulatedBytes({ seed: 43, maxRecords: 50_000 });
    expect(a.toString("utf8").split("\n").length - 1).toBe(50_000);
    expect(a.equals(b)).toBe(true);
    expect(a.equals(c)).toBe(false);
  });

  it("simulator - output does not depend on how it is chunked", () => {
    const options = { seed: 9, machines: 3, rateHz: 5, faultRate: 30, durationMs: 3_600_000 };
    const whole = runAll(options);
    const small = runAll(options, [1_000]);
    const ragged = runAll(options, [1, 7, 4_093, 0, 50_000, 2]);
    expect(whole.labels.length).toBeGreaterThan(0);
    for (const other of [small, ragged]) {
      expect(bytesOf(other.keyIndex).equals(bytesOf(whole.keyIndex))).toBe(true);
      expect(bytesOf(other.times).equals(bytesOf(whole.times))).toBe(true);
      expect(bytesOf(other.values).equals(bytesOf(whole.values))).toBe(true);
      expect(bytesOf(other.modes).equals(bytesOf(whole.modes))).toBe(true);
      expect(bytesOf(other.workOrders).equals(bytesOf(whole.workOrders))).toBe(true);
      expect(other.labels).toEqual(whole.labels);
    }
  });

  it("simulator - fillColumns into caller buffers gives the same readings as nextColumns", () => {
    const options = { seed: 5, maxRecords: 20_000 };
    const reference = runAll(options);
    const sim = new PlantSimulator(options);
    const target = allocateSimulatedColumns(3_000);
    const values: number[] = [];
    while (!sim.done) {
      const n = sim.fillColumns(target);
      expect(n).toBe(target.length);
      for (let i = 0; i < n; i++) values.push(target.values[i]);
    }
    expect(Float64Array.from(values)).toEqual(reference.values);
  });

  it("simulator - chunks convert to records and to engine batches without loss", () => {
    const sim = new PlantSimulator({ seed: 6, maxRecords: 500 });
    const columns = sim.nextColumns(300);
    const batch = allocateBatch(1_000);
    const keyIds = Uint32Array.from(sim.keys(), (_, k) => 100 + k);
    expect(appendColumnsToBatch(columns, batch, 0, keyIds)).toBe(300);
    const rest = sim.nextColumns(300);
    expect(rest.length).toBe(200);
    expect(appendColumnsToBatch(rest, batch, 300, keyIds)).toBe(200);
    expect(batch.length).toBe(500);
    expect(Array.from(batch.positions.subarray(0, 500))).toEqual(Array.from({ length: 500 }, (_, i) => i));
    expect(batch.keyIds[300]).toBe(100 + rest.keyIndex[0]);
    expect(batch.values[499]).toBe(rest.values[199]);
    expect(toSensorRecord(sim.keys(), rest, 7)).toEqual(sim.recordAt(rest, 7));
  });

  it("simulator - a run with some sensor types is the matching subset of the full run", () => {
    const full = runAll({ seed: 3, machines: 2, durationMs: 600_000, faultRate: 20 });
    const subset = runAll({ seed: 3, machines: 2, durationMs: 600_000, faultRate: 20, sensorTypes: ["vibration", "temperature"] });
    const fullKeys = full.sim.keys();
    const subsetKeys = subset.sim.keys();
    const expected: string[] = [];
    for (let i = 0; i < full.times.length; i++) {
      const key = fullKeys[full.keyIndex[i]];
      if (key.sensor_type === "vibration" || key.sensor_type === "temperature") {
        expected.push(`${key.machine_id} ${key.sensor_type} ${full.times[i]} ${full.values[i]} ${full.modes[i]} ${full.workOrders[i]}`);
      }
    }
    const actual = Array.from(subset.times, (t, i) => {
      const key = subsetKeys[subset.keyIndex[i]];
      return `${key.machine_id} ${key.sensor_type} ${t} ${subset.values[i]} ${subset.modes[i]} ${subset.workOrders[i]}`;
    });
    expect(actual).toEqual(expected);
    expect(subset.labels).toEqual(full.labels.filter((l) => l.sensor_type === "vibration" || l.sensor_type === "temperature"));
  });
});

// ---------------------------------------------------------------------------------------------
// Shape of the output
// ---------------------------------------------------------------------------------------------

describe("simulator - records", () => {
  it("simulator - records are in time order, cover every key and follow the source schema", () => {
    const sim = new PlantSimulator({ seed: 11, maxRecords: 30_000 });
    const keys = sim.keys();
    expect(keys).toHaveLength(8 * SENSOR_TYPES.length);
    expect(keys[0]).toEqual({ machine_id: "M-001", sensor_type: "temperature", sensor_unit: "°C" });
    expect(keys[keys.length - 1].machine_id).toBe("M-008");
    const records = sim.nextRecords(30_000);
    expect(records).toHaveLength(30_000);
    expect(sim.done).toBe(true);
    expect(sim.nextRecords(10)).toHaveLength(0);
    const seen = new Set<string>();
    const fields = SENSOR_RECORD_FIELDS.join(",");
    let previous = -Infinity;
    // Plain checks in the loop, one assertion at the end: 30 000 expect() calls would dominate the run.
    const broken = records.filter((record) => {
      const t = Date.parse(record.timestamp);
      const ok =
        Object.keys(record).join(",") === fields &&
        ISO_MS.test(record.timestamp) &&
        new Date(t).toISOString() === record.timestamp &&
        t >= previous &&
        Number.isFinite(record.sensor_value) &&
        (OPERATING_MODES as readonly string[]).includes(record.operating_mode) &&
        /^WO-2026-\d{6}$/.test(record.work_order_id) &&
        record.sensor_unit === SENSOR_SPECS[record.sensor_type as SensorType].unit;
      previous = t;
      seen.add(`${record.machine_id}/${record.sensor_type}`);
      return !ok;
    });
    expect(broken).toEqual([]);
    expect(seen.size).toBe(keys.length);
    expect(records[0].timestamp.startsWith("2026-01-01T00:00:00.")).toBe(true);
  });

  it("simulator - each sensor reads once per tick, and the duration limit is exclusive", () => {
    const run = runAll({ machines: 2, rateHz: 4, durationMs: 60_000 });
    for (const series of seriesByKey(run)) {
      expect(series.times).toHaveLength(240);
      for (let j = 1; j < series.times.length; j++) expect(series.times[j] - series.times[j - 1]).toBe(250);
    }
    const start = Date.UTC(2026, 0, 1);
    expect(Math.min(...run.times)).toBeGreaterThanOrEqual(start);
    expect(Math.max(...run.times)).toBeLessThan(start + 60_000);
    expect(run.sim.done).toBe(true);
  });

  it("simulator - modes change over a day, idle lines stand still, work orders change every few hours", () => {
    const run = runAll({ seed: 1, machines: 4, rateHz: 0.2, durationMs: 24 * 3_600_000, faultRate: 0 });
    const modesSeen = new Set(run.modes);
    expect([...modesSeen].sort()).toEqual([0, 1, 2, 3]);
    const series = seriesByKey(run);
    run.sim.keys().forEach((key, k) => {
      if (key.sensor_type !== "line_speed") return;
      const s = series[k];
      // After ten response times in a mode the speed sits at that mode's level.
      const settled = (mode: number): number[] =>
        s.values.filter((_, j) => j >= 40 && s.modes.slice(j - 40, j + 1).every((m) => m === mode));
      const idle = settled(1);
      const running = settled(0);
      if (idle.length > 0) expect(Math.max(...idle)).toBeLessThan(6 * SENSOR_SPECS.line_speed.noiseSigma);
      expect(mean(running)).toBeGreaterThan(150);
    });
    for (let m = 0; m < 4; m++) {
      const orders = new Set<number>();
      for (let i = 0; i < run.times.length; i++)
        if (run.sim.keys()[run.keyIndex[i]].machine_id === `M-00${m + 1}`) orders.add(run.workOrders[i]);
      expect(orders.size).toBeGreaterThanOrEqual(2);
      expect(orders.size).toBeLessThanOrEqual(24);
    }
  });

  it("simulator - temperature and humidity follow the daily cycle", () => {
    const run = runAll({ seed: 2, machines: 1, sensorTypes: ["humidity"], rateHz: 0.1, durationMs: 4 * 86_400_000, faultRate: 0 });
    const byHour = Array.from({ length: 24 }, () => [] as number[]);
    for (let i = 0; i < run.times.length; i++) byHour[new Date(run.times[i]).getUTCHours()].push(run.values[i]);
    const hourly = byHour.map(mean);
    const spec = SENSOR_SPECS.humidity;
    // Peak near 05:00 UTC, trough twelve hours later, swing close to twice the amplitude.
    expect(hourly[spec.dailyPeakHourUtc] - hourly[(spec.dailyPeakHourUtc + 12) % 24]).toBeGreaterThan(1.5 * spec.dailyAmplitude);
  });

  it("simulator - noise sigma matches the sensor spec on a fault-free run", () => {
    const run = runAll({ seed: 21, machines: 2, rateHz: 10, durationMs: 2 * 3_600_000, faultRate: 0 });
    const series = seriesByKey(run);
    run.sim.keys().forEach((key, k) => {
      const spec = SENSOR_SPECS[key.sensor_type];
      const s = series[k];
      const differences: number[] = [];
      for (let j = 1; j < s.values.length; j++) {
        const inRange = (v: number): boolean => v > spec.min && v < spec.max;
        if (s.modes[j] === 0 && s.modes[j - 1] === 0 && inRange(s.values[j]) && inRange(s.values[j - 1])) {
          differences.push(s.values[j] - s.values[j - 1]);
        }
      }
      expect(differences.length).toBeGreaterThan(5_000);
      // Differences of neighbours cancel the slow parts (level, wear, daily cycle): var = 2σ².
      const sigma = std(differences) / Math.SQRT2;
      expect(sigma / spec.noiseSigma).toBeGreaterThan(0.9);
      expect(sigma / spec.noiseSigma).toBeLessThan(1.1);
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Faults and labels
// ---------------------------------------------------------------------------------------------

describe("simulator - faults", () => {
  const options = { seed: 7, machines: 2, rateHz: 10, durationMs: 3 * 3_600_000, faultRate: 12 };
  let faulty: Run;
  let clean: Run;
  let faultySeries: KeySeries[];
  let cleanSeries: KeySeries[];

  beforeAll(() => {
    faulty = runAll(options);
    clean = runAll({ ...options, faultRate: 0 });
    faultySeries = seriesByKey(faulty);
    cleanSeries = seriesByKey(clean);
  });

  /** First and last sample index of a label's window within the run. */
  function window(label: FaultLabel): { k: number; i0: number; i1: number; complete: boolean } {
    const k = keyIndexOf(faulty, label.machine_id, label.sensor_type);
    const times = faultySeries[k].times;
    const i0 = lowerBound(times, label.start);
    expect(times[i0]).toBe(label.start);
    const endIndex = lowerBound(times, label.end);
    const complete = endIndex < times.length;
    if (complete) expect(times[endIndex]).toBe(label.end);
    return { k, i0, i1: complete ? endIndex : times.length - 1, complete };
  }

  it("simulator - a fault-free run has no labels and the same timeline", () => {
    expect(clean.labels).toEqual([]);
    expect(bytesOf(clean.times).equals(bytesOf(faulty.times))).toBe(true);
    expect(bytesOf(clean.modes).equals(bytesOf(faulty.modes))).toBe(true);
  });

  it("simulator - every fault kind occurs, and readings differ from the fault-free run only inside labels", () => {
    const kinds = new Set<FaultKind>(faulty.labels.map((l) => l.fault));
    expect([...kinds].sort()).toEqual([...FAULT_KINDS].sort());
    const inside = faultySeries.map((s) => new Uint8Array(s.values.length));
    for (const label of faulty.labels) {
      expect(label.end).toBeGreaterThanOrEqual(label.start);
      const { k, i0, i1 } = window(label);
      inside[k].fill(1, i0, i1 + 1);
    }
    faultySeries.forEach((s, k) => {
      for (let j = 0; j < s.values.length; j++) {
        if (inside[k][j] === 0 && s.values[j] !== cleanSeries[k].values[j]) {
          throw new Error(`key ${k} sample ${j} differs outside every label`);
        }
      }
    });
  });

  it("simulator - labels never overlap on one sensor and arrive in start order", () => {
    const lastEnd = new Map<string, number>();
    let previousStart = -Infinity;
    for (const label of faulty.labels) {
      const id = `${label.machine_id}/${label.sensor_type}`;
      expect(label.start).toBeGreaterThan(lastEnd.get(id) ?? -Infinity);
      lastEnd.set(id, label.end);
      expect(label.start).toBeGreaterThanOrEqual(previousStart);
      previousStart = label.start;
      expect(Object.keys(label)).toEqual(["machine_id", "sensor_type", "fault", "start", "end", "magnitude"]);
    }
  });

  it("simulator - spikes stand more than 5 sigma out of the recent median", () => {
    const spikes = faulty.labels.filter((l) => l.fault === "spike");
    expect(spikes.length).toBeGreaterThan(0);
    for (const label of spikes) {
      const { k, i0, i1 } = window(label);
      expect(i1 - i0 + 1).toBeLessThanOrEqual(3);
      const sigma = SENSOR_SPECS[label.sensor_type].noiseSigma;
      expect(Math.abs(label.magnitude)).toBeGreaterThanOrEqual(10 * sigma);
      const recent = cleanSeries[k].values.slice(Math.max(0, i0 - 10), i0 + 11);
      for (let j = i0; j <= i1; j++) {
        expect(Math.abs(faultySeries[k].values[j] - median(recent))).toBeGreaterThan(5 * sigma);
        expect(faultySeries[k].values[j] - cleanSeries[k].values[j]).toBeCloseTo(label.magnitude, 9);
      }
    }
  });

  it("simulator - level shifts move the window mean by the magnitude", () => {
    let visibleChecked = 0;
    for (const label of faulty.labels.filter((l) => l.fault === "level_shift")) {
      const { k, i0, i1 } = window(label);
      const inWindow = faultySeries[k].values.slice(i0, i1 + 1);
      const cleanWindow = cleanSeries[k].values.slice(i0, i1 + 1);
      expect(mean(inWindow) - mean(cleanWindow)).toBeCloseTo(label.magnitude, 9);
      // What a detector sees: the window against the window before it, where that stretch is
      // fault-free and the underlying signal was steady.
      const p0 = i0 - (i1 - i0 + 1);
      if (p0 < 0) continue;
      const before = faultySeries[k].values.slice(p0, i0);
      const overlaps = faulty.labels.some(
        (other) =>
          other !== label &&
          other.machine_id === label.machine_id &&
          other.sensor_type === label.sensor_type &&
          other.end >= faultySeries[k].times[p0] &&
          other.start < label.start,
      );
      const steady = Math.abs(mean(cleanWindow) - mean(cleanSeries[k].values.slice(p0, i0))) < 0.2 * Math.abs(label.magnitude);
      if (overlaps || !steady) continue;
      expect(Math.abs(mean(inWindow) - mean(before) - label.magnitude)).toBeLessThan(0.3 * Math.abs(label.magnitude));
      visibleChecked++;
    }
    expect(visibleChecked).toBeGreaterThan(0);
  });

  it("simulator - slow drifts ramp linearly up to the magnitude", () => {
    let completeChecked = 0;
    for (const label of faulty.labels.filter((l) => l.fault === "slow_drift")) {
      const { k, i0, i1, complete } = window(label);
      // Samples in the whole window (it may run past the end of the run): one per 100 ms at 10 Hz.
      const length = Math.round((label.end - label.start) / 100) + 1;
      let errorMax = 0;
      for (let j = i0; j <= i1; j++) {
        const offset = faultySeries[k].values[j] - cleanSeries[k].values[j];
        errorMax = Math.max(errorMax, Math.abs(offset - (label.magnitude * (j - i0 + 1)) / length));
      }
      expect(errorMax).toBeLessThan(1e-9);
      if (complete) {
        expect(faultySeries[k].values[i1] - cleanSeries[k].values[i1]).toBeCloseTo(label.magnitude, 9);
        completeChecked++;
      }
    }
    expect(completeChecked).toBeGreaterThan(0);
  });

  it("simulator - a stuck sensor repeats exactly the last value before the window", () => {
    const stuck = faulty.labels.filter((l) => l.fault === "stuck");
    expect(stuck.length).toBeGreaterThan(0);
    for (const label of stuck) {
      const { k, i0, i1 } = window(label);
      expect(i1 - i0).toBeGreaterThan(0);
      const expected = i0 > 0 ? faultySeries[k].values[i0 - 1] : faultySeries[k].values[i0];
      const inWindow = faultySeries[k].values.slice(i0, i1 + 1);
      expect(inWindow.filter((v) => v !== expected)).toEqual([]);
    }
  });

  it("simulator - a noise burst multiplies the noise sigma by the magnitude", () => {
    let checked = 0;
    for (const label of faulty.labels.filter((l) => l.fault === "noise_burst")) {
      const { k, i0, i1 } = window(label);
      if (i1 - i0 + 1 < 200) continue;
      const sigma = SENSOR_SPECS[label.sensor_type].noiseSigma;
      const extra = faultySeries[k].values.slice(i0, i1 + 1).map((v, j) => v - cleanSeries[k].values[i0 + j]);
      const ratio = std(extra) / ((label.magnitude - 1) * sigma);
      expect(ratio).toBeGreaterThan(0.75);
      expect(ratio).toBeLessThan(1.25);
      checked++;
    }
    expect(checked).toBeGreaterThan(0);
  });

  it("simulator - faults arrive at the configured rate per sensor and hour", () => {
    const sim = new PlantSimulator({ seed: 4, machines: 8, rateHz: 0.5, durationMs: 24 * 3_600_000, faultRate: 2 });
    let labels = 0;
    while (!sim.done) {
      sim.nextColumns(65_536);
      labels += sim.drainLabels().length;
    }
    const expected = 2 * 24 * sim.keys().length; // 2304; Poisson sd ≈ 48
    expect(labels).toBeGreaterThan(expected * 0.85);
    expect(labels).toBeLessThan(expected * 1.15);
  });

  it("simulator - pending labels are bounded and drops are counted", () => {
    const sim = new PlantSimulator({ machines: 1, rateHz: 1, faultRate: 3_600, durationMs: 3_600_000, labelsPendingMax: 10 });
    while (!sim.done) sim.nextColumns(10_000);
    expect(sim.drainLabels()).toHaveLength(10);
    expect(sim.labelsDropped).toBeGreaterThan(0);
  });
});

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

describe("simulator - validation", () => {
  const bad: [string, Partial<SimulatorOptions>][] = [
    ["seed", { seed: 1.5 }],
    ["seed", { seed: Number.NaN }],
    ["machines", { machines: 0 }],
    ["machines", { machines: 2.5 }],
    ["sensorTypes", { sensorTypes: [] }],
    ["sensorTypes", { sensorTypes: ["temperature", "torque" as SensorType] }],
    ["sensorTypes", { sensorTypes: ["temperature", "temperature"] }],
    ["rateHz", { rateHz: 0 }],
    ["rateHz", { rateHz: 5_000 }],
    ["rateHz", { rateHz: Infinity }],
    ["startTime", { startTime: -1 }],
    ["startTime", { startTime: 1.5 }],
    ["faultRate", { faultRate: -1 }],
    ["durationMs", { durationMs: 0 }],
    ["maxRecords", { maxRecords: -5 }],
    ["labelsPendingMax", { labelsPendingMax: 0 }],
  ];
  for (const [option, options] of bad) {
    it(`simulator - rejects ${option} ${JSON.stringify(options)} with SimulatorConfigError`, () => {
      let thrown: unknown;
      try {
        new PlantSimulator(options);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(SimulatorConfigError);
      expect((thrown as SimulatorConfigError).option).toBe(option);
      expect((thrown as SimulatorConfigError).name).toBe("SimulatorConfigError");
    });
  }

  it("simulator - undefined options keep their defaults", () => {
    const sim = new PlantSimulator({ seed: undefined, maxRecords: 0 });
    expect(sim.options.seed).toBe(1);
    expect(sim.done).toBe(true);
  });

  it("duration - parses units and compounds; 0 alone", () => {
    expect(parseDuration("250ms")).toBe(250);
    expect(parseDuration("90s")).toBe(90_000);
    expect(parseDuration("15m")).toBe(900_000);
    expect(parseDuration("1h")).toBe(3_600_000);
    expect(parseDuration("24h")).toBe(86_400_000);
    expect(parseDuration("7d")).toBe(604_800_000);
    expect(parseDuration("1h30m")).toBe(5_400_000);
    expect(parseDuration("1.5s")).toBe(1_500);
    expect(parseDuration(" 2m ")).toBe(120_000);
    expect(parseDuration("0s")).toBe(0);
    expect(parseDuration("0")).toBe(0);
  });

  for (const text of ["", " ", "abc", "-5s", "1x", "1 h", "h", "1H", "1e3", "1h-5m", "5s ms", "1500", "0.5", "9".repeat(400)]) {
    it(`duration - rejects ${JSON.stringify(text.slice(0, 20))} with DurationParseError`, () => {
      expect(() => parseDuration(text)).toThrow(DurationParseError);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Writers and the simulate command
// ---------------------------------------------------------------------------------------------

describe("simulator - writers", () => {
  it("record writers - wait for drain when the stream is full and lose nothing", async () => {
    const sink = memorySink({ highWaterMark: 8_192, slow: true });
    const writer = new NdjsonRecordWriter(sink.stream, { bufferCharsMax: 4_096 });
    const sim = new PlantSimulator({ seed: 8, maxRecords: 20_000 });
    for (const record of sim.nextRecords(20_000)) await writer.write(record);
    await writer.end();
    expect(writer.recordsWritten).toBe(20_000);
    expect(sink.bytes().equals(await simulatedBytes({ seed: 8, maxRecords: 20_000 }))).toBe(true);
    // Without waiting for 'drain' the whole output (~3 MB) would pile up in the stream.
    expect(sink.queuedBytesMax()).toBeLessThan(8_192 + 4 * 4_096);
  });

  it("record writers - CSV quotes fields that need it and rounds values to 6 significant digits", async () => {
    const sink = memorySink();
    const writer = createRecordWriter("csv", sink.stream);
    await writer.write({
      machine_id: "M,1",
      timestamp: "2026-01-01T00:00:00.000Z",
      sensor_type: 'temp "x"',
      sensor_value: 123.456789,
      sensor_unit: "°C",
      operating_mode: "running",
      work_order_id: "WO-2026-000001",
    });
    await writer.end();
    expect(sink.bytes().toString("utf8")).toBe(
      `${CSV_HEADER}\n"M,1",2026-01-01T00:00:00.000Z,"temp ""x""",123.457,°C,running,WO-2026-000001\n`,
    );
  });
});

describe("simulate command", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "linewatch-simulate-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("simulate command - writes CSV with the header and the requested number of records, labels as NDJSON", async () => {
    const out = join(dir, "out.csv");
    const labelsFile = join(dir, "labels.ndjson");
    await simulateCommand().parseAsync(
      [
        "--records",
        "5000",
        "--machines",
        "2",
        "--rate",
        "1",
        "--fault-rate",
        "60",
        "--format",
        "csv",
        "--out",
        out,
        "--labels",
        labelsFile,
      ],
      { from: "user" },
    );
    const lines = (await readFile(out, "utf8")).split("\n");
    expect(lines[0]).toBe("machine_id,timestamp,sensor_type,sensor_value,sensor_unit,operating_mode,work_order_id");
    expect(lines.at(-1)).toBe("");
    expect(lines).toHaveLength(5_002);
    const labels = (await readFile(labelsFile, "utf8"))
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as FaultLabel);
    expect(labels.length).toBeGreaterThan(0);
    for (const label of labels) {
      expect(Object.keys(label)).toEqual(["machine_id", "sensor_type", "fault", "start", "end", "magnitude"]);
      expect(FAULT_KINDS).toContain(label.fault);
    }
  });

  it("simulate command - NDJSON file is byte-identical to the simulator through the writer", async () => {
    const out = join(dir, "out.ndjson");
    await simulateCommand().parseAsync(["--seed", "12", "--duration", "90s", "--sensors", "vibration,line_speed", "--out", out], {
      from: "user",
    });
    const expected = await simulatedBytes({ seed: 12, durationMs: 90_000, sensorTypes: ["vibration", "line_speed"] });
    const actual = await readFile(out);
    expect(actual.equals(expected)).toBe(true);
    expect(actual.toString("utf8").trim().split("\n")).toHaveLength(8 * 2 * 10 * 90);
  });

  it("simulate command - defaults to 100000 records when no limit is given", async () => {
    const out = join(dir, "default.ndjson");
    await simulateCommand().parseAsync(["--out", out], { from: "user" });
    expect((await readFile(out, "utf8")).split("\n")).toHaveLength(100_001);
  });

  for (const args of [
    ["--rate", "fast"],
    ["--duration", "10 parsecs"],
    ["--sensors", "torque"],
    ["--start", "yesterday"],
    ["--format", "xml"],
  ]) {
    it(`simulate command - rejects ${args.join(" ")} through commander`, async () => {
      const command = simulateCommand()
        .exitOverride()
        .configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
      await expect(command.parseAsync([...args, "--out", join(dir, "never.ndjson")], { from: "user" })).rejects.toBeInstanceOf(
        CommanderError,
      );
    });
  }
});
