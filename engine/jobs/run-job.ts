/**
 * The main job of `linewatch run`: a reading source (the plant simulator, or a C-MAPSS fleet
 * replay) → the analyses (rolling statistics, SPC) on the worker pool → an NDJSON file of scores,
 * alert events, and a live console summary.
 *
 * Pacing: at `speed` 1 the source emits readings as their timestamps come due on the wall clock
 * (a live plant); at `speed` N, N times faster; `speed` Infinity as fast as the pool takes them,
 * which is how the console's throughput shows what the engine can do here.
 */
import type { Writable } from "node:stream";
import { allocateBatch, StreamEngine, type EngineMetrics, type OutputChunk } from "../core/mod.js";
import { LineBuffer, RotatingFileSink } from "../../connectors/files/mod.js";
import { formatStatistic } from "../../operators/number-format.js";
import { OPERATING_MODES, PlantSimulator, formatTimestamp, type SimulatorOptions } from "../../connectors/sim/mod.js";
import { observeRecord, recordFields, type RecordAnalysis, type RowContext } from "../../operators/analysis.js";
import type { Outputs } from "./outputs.js";
import { type SpcLimitsChange, applySpcLimitsChange } from "../../operators/spc/mod.js";

/**
 * What the run job reads: readings of a fixed set of sensors, in event-time order, as columns.
 * The plant simulator ({@link simulatorSource}) and the C-MAPSS fleet (connectors/cmapss-source.ts)
 * are the two; the job needs nothing else from them.
 */
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
  /** Faults injected since the last call (a simulator's ground truth), for the summary. */
  drainFaults?(): number;
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

/** The plant simulator as a reading source: `rateHz` readings per sensor per second of event time. */
export function simulatorSource(options: Partial<SimulatorOptions>): ReadingSource {
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
    drainFaults: () => simulator.drainLabels().length,
  };
}

export interface RunJobOptions {
  /** Where readings come from; default: the plant simulator with `simulator`'s options. */
  source?: ReadingSource;
  simulator?: Partial<SimulatorOptions>;
  /** In output order; their members merge into one line per reading. */
  analyses: readonly RecordAnalysis[];
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
  workers: number;
  groups: number;
  batchRecordsMax: number;
  /** Simulated milliseconds per wall-clock millisecond; Infinity: as fast as possible. */
  speed: number;
  /** Scores file (NDJSON), or null for none. */
  outPath: string | null;
  fileBytesMax: number;
  /** |z| of the rolling analysis at or above this counts as an anomaly in the summary. */
  zAlarm: number;
  /** Alert events counted so far (the caller's alert sink counts them), for the summary. */
  alertsRaised?: () => number;
  /**
   * Limits changes to apply while running, polled every flush: key name → change. Applied in
   * order with the stream, to the key's SPC state (analysis "spc").
   */
  limitsChanges?: () => Array<{ key: string; change: SpcLimitsChange }>;
  /** Live runs: longest a record waits in a partly filled buffer. */
  flushIntervalMs: number;
  /** ClickHouse and the live server (WebSocket, HTTP API, metrics), when the run has them. */
  outputs?: Outputs;
  /** Console summary interval; 0 for none. */
  summaryIntervalMs: number;
  console: Writable;
  /** Resolves when the job should stop (Ctrl-C); the source's own end stops it too. */
  stop: Promise<void>;
}

export interface RunJobResult {
  metrics: EngineMetrics;
  anomalies: number;
  faultsInjected: number;
  bytesWritten: number;
  seconds: number;
}

export async function runJob(o: RunJobOptions): Promise<RunJobResult> {
  const source = o.source ?? simulatorSource(o.simulator ?? {});
  const keys = source.keys();
  const file = o.outPath === null ? null : new RotatingFileSink(o.outPath, o.fileBytesMax);
  let anomalies = 0;
  const lines = new LineBuffer();
  const keyJson: string[] = [];
  const keyNames: string[] = [];
  /** Machine, sensor (and mode) of each engine key, split once. */
  const keyParts: string[][] = [];
  const analyses = o.analyses;
  const rollingIndex = analyses.findIndex((a) => a.name === "rolling");
  const spcIndex = analyses.findIndex((a) => a.name === "spc");
  const rows: Float64Array[] = analyses.map(() => new Float64Array(0));
  const outputs = o.outputs?.active ? o.outputs : undefined;
  // The outputs take the members as values when every analysis gives them; the text is then
  // built only for the scores file.
  const wantFields = outputs?.wantsMembers === true && analyses.every((a) => a.rowFields !== undefined);
  const wantMembers = file !== null || (outputs?.wantsMembers === true && !wantFields);
  const ctx: RowContext = { keyId: 0, key: "", position: 0, time: 0, value: 0 };
  const engine = new StreamEngine(
    {
      kernels: analyses.map((a) => a.kernel),
      workers: o.workers,
      groups: Math.min(o.groups, keys.length),
      keysMax: keys.length * (o.keyByMode ? source.modes.length + 1 : 1),
      batchRecordsMax: o.batchRecordsMax,
      lateness: null,
      reorderRecordsPerKeyMax: 1,
    },
    {
      onOutput(chunk: OutputChunk) {
        for (let i = 0; i < chunk.length; i++) {
          const keyId = chunk.keyIds[i];
          const members = observeRecord(analyses, chunk, i, keyNames[keyId], ctx, rows, wantMembers);
          if (rollingIndex >= 0 && Math.abs(rows[rollingIndex][8]) >= o.zAlarm) anomalies++;
          if (outputs !== undefined) {
            const parts = keyParts[keyId];
            outputs.record({
              machineId: parts[0],
              sensorType: parts[1],
              mode: parts[2],
              key: keyNames[keyId],
              time: chunk.times[i],
              value: chunk.values[i],
              seq: chunk.positions[i],
              membersJson: members.slice(1),
              members: wantFields ? (recordFields(analyses, rows) ?? undefined) : undefined,
              rolling: rollingIndex >= 0 ? rows[rollingIndex] : undefined,
            });
          }
          if (file !== null) {
            lines.push(
              `{${keyJson[keyId]},"timestamp":"${formatTimestamp(chunk.times[i])}","value":${formatStatistic(chunk.values[i])}${members}}`,
            );
          }
        }
      },
    },
  );
  for (const a of analyses) a.start?.(engine);
  outputs?.attach(
    engine,
    spcIndex,
    source.name,
    analyses.map((a) => a.name),
  );
  // Engine key id of (source key index, operating mode or settling): index · modes + mode.
  const modeNames = [...source.modes, "settling"];
  const settling = source.modes.length;
  const modes = modeNames.length;
  const settleMs = Float64Array.from(keys, (k) => (o.keyByMode && o.settleMs ? o.settleMs(k) : 0));
  const lastMode = new Int16Array(keys.length).fill(-1);
  const modeSince = new Float64Array(keys.length);
  const keyIdOf = new Uint32Array(keys.length * modes);
  keys.forEach((k, i) => {
    const base = `"machine_id":${JSON.stringify(k.machine_id)},"sensor_type":${JSON.stringify(k.sensor_type)}`;
    for (let m = 0; m < modes; m++) {
      if (!o.keyByMode && m > 0) {
        keyIdOf[i * modes + m] = keyIdOf[i * modes];
        continue;
      }
      const name = o.keyByMode ? `${k.machine_id}/${k.sensor_type}/${modeNames[m]}` : `${k.machine_id}/${k.sensor_type}`;
      const id = engine.internKey(name);
      keyIdOf[i * modes + m] = id;
      keyNames[id] = name;
      keyParts[id] = name.split("/");
      keyJson[id] = o.keyByMode ? `${base},"operating_mode":"${modeNames[m]}"` : base;
    }
  });
  let stopped = false;
  void o.stop.then(() => {
    stopped = true;
  });
  const t0 = performance.now();
  const batch = allocateBatch(o.batchRecordsMax);
  let position = 0;
  let faults = 0;
  const summary = startSummary(
    o,
    engine,
    () => anomalies,
    () => faults,
    () => file?.bytesWritten ?? 0,
    t0,
  );
  if (!Number.isFinite(o.speed)) await applyLimitsChanges(engine, o, spcIndex);
  let lastFlush = t0;
  let outputsFlushedAt = 0;
  try {
    while (!stopped && !source.done) {
      let want = o.batchRecordsMax;
      if (Number.isFinite(o.speed)) {
        // Live: partly filled group buffers are sent every flushIntervalMs, so a slow plant's
        // scores are never older than that (plus one kernel task).
        if (performance.now() - lastFlush >= o.flushIntervalMs) {
          lastFlush = performance.now();
          await applyLimitsChanges(engine, o, spcIndex);
          await engine.flush();
          if (file !== null && lines.bytes > 0) await file.write(lines.take());
        }
        const due = source.readingsDueBy((performance.now() - t0) * o.speed) - position;
        if (due <= 0) {
          await new Promise((r) => setTimeout(r, 20));
          continue;
        }
        want = Math.min(want, due);
      }
      const columns = source.nextColumns(want);
      batch.length = 0;
      for (let i = 0; i < columns.length; i++) {
        const k = columns.keyIndex[i];
        const mode = columns.modes[i];
        if (mode !== lastMode[k]) {
          // The first reading of a run starts settled: the sources start in steady state.
          modeSince[k] = lastMode[k] === -1 ? -Infinity : columns.times[i];
          lastMode[k] = mode;
        }
        const m = columns.times[i] - modeSince[k] < settleMs[k] ? settling : mode;
        batch.keyIds[i] = keyIdOf[k * modes + m];
        batch.times[i] = columns.times[i];
        batch.values[i] = columns.values[i];
        batch.positions[i] = position + i;
      }
      batch.length = columns.length;
      position += columns.length;
      faults += source.drainFaults?.() ?? 0;
      await engine.push(batch);
      if (file !== null && lines.bytes > 1 << 18) await file.write(lines.take());
      // Nothing here is acknowledged: rows are handed to ClickHouse without waiting for them to
      // be durable, and the source waits only while the sink's memory queue is full.
      if (outputs !== undefined && position - outputsFlushedAt >= 65536) {
        outputsFlushedAt = position;
        await outputs.handOver();
      } else if (outputs !== undefined) await outputs.room();
    }
    await engine.flush(true);
    if (file !== null && lines.bytes > 0) await file.write(lines.take());
    await outputs?.flush(true);
  } finally {
    summary.stop();
    for (const a of analyses) a.stop?.();
    await engine.close();
    await file?.close();
  }
  const result = {
    metrics: engine.metrics(),
    anomalies,
    faultsInjected: faults,
    bytesWritten: file?.bytesWritten ?? 0,
    seconds: (performance.now() - t0) / 1000,
  };
  if (o.summaryIntervalMs > 0)
    o.console.write(
      `${summaryLine(
        result.metrics,
        result.seconds,
        anomalies,
        faults,
        result.bytesWritten,
        0,
        result.metrics.kernelBusyMs / (result.seconds * 1000 * Math.max(1, result.metrics.workers)),
        o.alertsRaised?.() ?? null,
      )}\n`,
    );
  return result;
}

async function applyLimitsChanges(engine: StreamEngine, o: RunJobOptions, spcIndex: number): Promise<void> {
  const changes = o.limitsChanges?.() ?? [];
  for (const { key, change } of changes) {
    const id = engine.keys.lookup(key);
    if (id < 0 || spcIndex < 0) {
      o.console.write(`limits: no SPC key "${key}" — change ignored\n`);
      continue;
    }
    await engine.withKeyState(id, spcIndex, (kernels, ptr) => applySpcLimitsChange(kernels, ptr, change));
    o.console.write(
      `limits: ${key} ${change.kind === "set" ? `set to cl ${change.cl}, sigma ${change.sigma}` : `re-baselining on the next ${change.records} records`}\n`,
    );
  }
}

function startSummary(
  o: RunJobOptions,
  engine: StreamEngine,
  anomalies: () => number,
  faults: () => number,
  bytes: () => number,
  t0: number,
): { stop(): void } {
  if (o.summaryIntervalMs <= 0) return { stop() {} };
  let lastIn = 0;
  let lastBusy = 0;
  let lastT = t0;
  const timer = setInterval(() => {
    const now = performance.now();
    const m = engine.metrics();
    const rate = ((m.recordsIn - lastIn) * 1000) / (now - lastT);
    const busy = (m.kernelBusyMs - lastBusy) / ((now - lastT) * Math.max(1, m.workers));
    lastIn = m.recordsIn;
    lastBusy = m.kernelBusyMs;
    lastT = now;
    o.console.write(`${summaryLine(m, (now - t0) / 1000, anomalies(), faults(), bytes(), rate, busy, o.alertsRaised?.() ?? null)}\n`);
  }, o.summaryIntervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

function summaryLine(
  m: EngineMetrics,
  seconds: number,
  anomalies: number,
  faults: number,
  bytes: number,
  rate: number,
  busy: number,
  alerts: number | null,
): string {
  const rateText = rate > 0 ? `${fmt(rate)} rec/s now, ` : "";
  return (
    `[${seconds.toFixed(1)} s] in ${fmt(m.recordsIn)} out ${fmt(m.recordsOut)} (${rateText}${fmt(m.recordsOut / Math.max(seconds, 1e-3))} rec/s avg) ` +
    `keys ${m.keys} tasks ${fmt(m.tasks)} kernels busy ${(busy * 100).toFixed(1)}% of ${Math.max(1, m.workers)} thread(s) | ` +
    `faults injected ${faults}, |z| alarms ${anomalies}${alerts === null ? "" : `, SPC alert events ${alerts}`} | file ${(bytes / 1048576).toFixed(1)} MiB`
  );
}

function fmt(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return String(Math.round(n));
}
