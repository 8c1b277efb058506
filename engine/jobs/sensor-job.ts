/**
 * The sensor job: one {@link SensorSource} (plant simulator, C-MAPSS fleet, core NATS, JetStream)
 * → the analyses on the worker pool → one score line per record (a file or NATS subjects,
 * score-writers.ts), ClickHouse rows and live topics ({@link Outputs}), and a console summary.
 *
 * The job owns the engine and everything downstream of it; the source decides when to commit
 * (source.ts). It fails with the first failure — of the source, an output, or a kernel task
 * surfacing at a push, a flush or the engine's close — after stopping the workers and releasing
 * the source; a failure during that cleanup is never dropped: it is the job's when nothing failed
 * before, and written to the console when something did.
 */
import type { Writable } from "node:stream";
import {
  allocateBatch,
  createLogger,
  StreamEngine,
  type EngineMetrics,
  type Logger,
  type OutputChunk,
  type RecordBatch,
} from "../core/mod.js";
import { AuditMembers } from "./audit/members.js";
import type { AuditStamp } from "./audit/config.js";
import { observeRecord, recordFields, type RecordAnalysis, type RowContext } from "../../operators/mod.js";
import { type AlertEpisodeEvent, episodeTrackerOf, type SpcLimitsChange, applySpcLimitsChange } from "../../operators/spc/mod.js";
import type { IforestAnalysis } from "../../operators/iforest/mod.js";
import type { Outputs } from "./outputs.js";
import { RECORD_LABELS_MAX, RecordLabels } from "./record-labels.js";
import type { ScoreKey, ScoreWriter } from "./score-writers.js";
import type { RecordLabelFields, SensorIntake, SensorSource } from "./source.js";

export interface SensorJobOptions {
  /** In output order; their members merge into one line per record. */
  analyses: readonly RecordAnalysis[];
  workers: number;
  groups: number;
  batchRecordsMax: number;
  /** One line per scored record (a file, NATS subjects), or null for none. */
  scores: ScoreWriter | null;
  /** ClickHouse and the live server (WebSocket, HTTP API, metrics), when the run has them. */
  outputs?: Outputs;
  /** |z| of the rolling analysis at or above this counts as an anomaly in the summary; undefined: not counted. */
  zAlarm?: number;
  /** The alert episodes for the summary ("episodes open 3 (…)"; the caller's alert router says it). */
  alertsSummary?: () => string;
  /**
   * Limits changes to apply while running, polled at the start and every commit: key name →
   * change. Applied in order with the stream, to the key's SPC state (analysis "spc").
   */
  limitsChanges?: () => Array<{ key: string; change: SpcLimitsChange }>;
  /** Console summary interval; 0 for none (and no final summary line). */
  summaryIntervalMs: number;
  console: Writable;
  /** Operational events; default: JSON lines on `console`. */
  log?: Logger;
  /** Resolves when the job should stop (Ctrl-C); a finite source's end stops it too. */
  stop: Promise<void>;
  /** Called once the source consumes (subscribed, consumers created, state restored). */
  onReady?: () => void;
  /** Live counts, updated as the job runs (for a caller that waits on progress). */
  progress?: { recordsIn: number; recordsOut: number; checkpoints: number };
  /** The audit record (docs/commands/audit.md) on every score line; absent: the outputs' (Outputs.audit), if any. */
  audit?: AuditStamp | null;
}

export interface SensorJobResult {
  metrics: EngineMetrics;
  /** Records scored and handed to every output. */
  recordsOut: number;
  /** Records whose rolling |z| reached `zAlarm`. */
  anomalies: number;
  /** Records whose (sensor_unit, operating_mode, work_order_id) found the label table full (RECORD_LABELS_MAX): fields left empty. */
  labelsUnkept: number;
  bytesWritten: number;
  seconds: number;
}

/** Runs `source` through the analyses until it ends or `stop`; see the module comment. */
export async function runSensorJob(source: SensorSource, o: SensorJobOptions): Promise<SensorJobResult> {
  const job = new SensorJob(source, o);
  const summary = startSummary(job, source, o);
  let failure: { error: unknown } | null = null;
  try {
    await source.open(job);
    // After open: the source has interned the keys the changes name.
    await job.applyLimits();
    o.onReady?.();
    await source.run(job);
    await job.finish(source.finite);
  } catch (error) {
    failure = { error };
  } finally {
    summary.stop();
  }
  const cleanup = await job.close(source);
  const first = failure ?? cleanup[0];
  for (const error of cleanup) {
    // The engine's close rethrows the kernel failure a push or flush already threw: not news.
    if (first !== undefined && error.error !== first.error)
      o.console.write(`sensor job: also failed while closing: ${errorText(error.error)}\n`);
  }
  if (first !== undefined) throw first.error;
  const result = job.result();
  if (o.summaryIntervalMs > 0) o.console.write(`${summaryLine(job, source, o, result.seconds, 0)}\n`);
  if (result.labelsUnkept > 0) {
    o.console.write(
      `${source.name}: ${result.labelsUnkept} records came with a (sensor_unit, operating_mode, work_order_id) beyond the first ${RECORD_LABELS_MAX} distinct ones; their ml_sensor_data rows have those fields empty\n`,
    );
  }
  return result;
}

/** The engine, the keys and the outputs of one run: what {@link runSensorJob} hands the source. */
class SensorJob implements SensorIntake {
  readonly engine: StreamEngine;
  readonly labels = new RecordLabels();
  readonly labelBytes: number;
  readonly t0 = performance.now();
  stopped = false;
  recordsOut = 0;
  anomalies = 0;
  private readonly keyNames: string[] = [];
  private logger: Logger | undefined;
  private readonly scoreKeys: ScoreKey[] = [];
  private readonly outputs: Outputs | undefined;
  private readonly scores: ScoreWriter | null;
  private readonly rows: Float64Array[];
  private readonly ctx: RowContext = { keyId: 0, key: "", position: 0, time: 0, value: 0 };
  private readonly rollingIndex: number;
  private readonly spcIndex: number;
  /** The outputs take the members as values when every analysis gives them; the text is then built only for the score lines. */
  private readonly wantFields: boolean;
  private readonly wantMembers: boolean;
  /** The audit members of each score line; null when the run is not audited. */
  private readonly auditMembers: AuditMembers | null;

  constructor(
    source: SensorSource,
    private readonly o: SensorJobOptions,
  ) {
    const analyses = o.analyses;
    this.outputs = o.outputs?.active ? o.outputs : undefined;
    this.scores = o.scores;
    this.rows = analyses.map(() => new Float64Array(0));
    this.rollingIndex = analyses.findIndex((a) => a.name === "rolling");
    this.spcIndex = analyses.findIndex((a) => a.name === "spc");
    this.wantFields = this.outputs?.wantsMembers === true && analyses.every((a) => a.rowFields !== undefined);
    const audit = o.audit ?? o.outputs?.audit ?? null;
    this.auditMembers = audit === null ? null : new AuditMembers(audit, o.analyses);
    const forest = o.analyses.find((a) => a.name === "iforest") as IforestAnalysis | undefined;
    if (forest !== undefined && audit !== null) o.outputs?.auditModels(() => forest.modelVersions);
    this.wantMembers = this.scores !== null || (this.outputs?.wantsMembers === true && !this.wantFields);
    this.labelBytes = this.outputs !== undefined && source.labelled ? 4 : 0;
    this.engine = new StreamEngine(
      {
        kernels: analyses.map((a) => a.kernel),
        workers: o.workers,
        groups: Math.min(o.groups, source.groupsMax),
        keysMax: source.keysMax,
        batchRecordsMax: o.batchRecordsMax,
        lateness: null,
        reorderRecordsPerKeyMax: 1,
        payloadBytes: this.labelBytes,
        groupByKeyPrefix: source.groupByKeyPrefix,
      },
      { onOutput: (chunk) => this.onOutput(chunk) },
    );
    for (const a of analyses) a.start?.(this.engine);
    // An open episode is acknowledged by the tracker on this thread, between two chunks.
    const tracker = analyses.map(episodeTrackerOf).find((t) => t !== undefined);
    if (tracker !== undefined && o.outputs !== undefined)
      o.outputs.episodeAcks = async (e, at, by, note) => {
        const r = tracker.acknowledge(e.episode_id, at, by, note);
        // Answered once a checkpoint holds it (JetStream): a kill -9 after the answer keeps it.
        if (r.ok) await source.checkpointSoon?.();
        return r;
      };
    this.outputs?.attach(
      this.engine,
      this.spcIndex,
      source.name,
      analyses.map((a) => a.name),
      analyses.map((a) => a.outColumns),
    );
    const forestIndex = analyses.findIndex((a) => a.name === "iforest");
    if (forestIndex >= 0) this.outputs?.watchIforest(analyses[forestIndex] as IforestAnalysis, forestIndex);
    void o.stop.then(() => (this.stopped = true));
  }

  allocateBatch(): RecordBatch {
    return allocateBatch(this.o.batchRecordsMax, this.labelBytes);
  }

  key(name: string, machine: string, sensor: string, mode?: string): number {
    const id = this.engine.internKey(name);
    if (this.keyNames[id] === undefined) {
      this.keyNames[id] = name;
      const json = `"machine_id":${JSON.stringify(machine)},"sensor_type":${JSON.stringify(sensor)}`;
      this.scoreKeys[id] =
        mode === undefined
          ? { parts: [machine, sensor], json }
          : { parts: [machine, sensor, mode], json: `${json},"operating_mode":${JSON.stringify(mode)}` };
    }
    return id;
  }

  labelOf(record: RecordLabelFields): number {
    return this.labelBytes > 0 ? this.labels.idOf(record) : 0;
  }

  async push(batch: RecordBatch): Promise<void> {
    if (batch.length === 0) return;
    await this.engine.push(batch);
    batch.length = 0;
    if (this.o.progress !== undefined) this.o.progress.recordsIn = this.engine.metrics().recordsIn;
    await this.scores?.spill();
  }

  async commit(durable: boolean): Promise<void> {
    await this.applyLimits();
    await this.engine.flush();
    if (durable) await this.outputs?.flush();
    else await this.outputs?.handOver();
    await this.scores?.flush();
  }

  async handOver(): Promise<void> {
    await this.outputs?.handOver();
  }

  saveAnalyses(keys: readonly string[]): unknown[] {
    const idOf = (key: string): number => this.engine.keys.lookup(key);
    return this.o.analyses.map((a) => a.saveState?.(keys, idOf) ?? null);
  }

  /** Restores the analyses' state of a checkpoint's keys; the episodes open in them are told to the outputs (API, console). */
  restoreAnalyses(state: readonly unknown[]): void {
    const idOf = (key: string): number => this.engine.keys.lookup(key);
    this.o.analyses.forEach((a, k) => {
      const s = state[k];
      if (s === null || s === undefined || a.restoreState === undefined) return;
      const restored = a.restoreState(s, idOf);
      if (episodeTrackerOf(a) !== undefined) this.o.outputs?.restoreEpisodes(restored as AlertEpisodeEvent[]);
    });
  }

  room(): Promise<void> {
    return this.outputs?.room() ?? Promise.resolve();
  }

  get log(): Logger {
    if (this.logger === undefined) {
      // A caller's logger that names its component (the NATS job's "nats") keeps it.
      const base = this.o.log ?? createLogger({ destination: this.o.console, pretty: false });
      this.logger = base.bindings().component === undefined ? base.child({ component: "sensor-job" }) : base;
    }
    return this.logger;
  }

  /** The end: what is left through the engine, the score lines written, every row durable. */
  async finish(endOfInput: boolean): Promise<void> {
    await this.engine.flush(true);
    await this.scores?.flush();
    await this.outputs?.flush(endOfInput);
  }

  /** Stops the analyses, the workers, the score writer and the source; the failures of each, in that order. */
  async close(source: SensorSource): Promise<Array<{ error: unknown }>> {
    const failures: Array<{ error: unknown }> = [];
    const attempt = async (step: () => unknown): Promise<void> => {
      try {
        await step();
      } catch (error) {
        failures.push({ error });
      }
    };
    for (const a of this.o.analyses) await attempt(() => a.stop?.());
    await attempt(() => this.engine.close());
    await attempt(() => this.scores?.close());
    await attempt(() => source.close());
    return failures;
  }

  async applyLimits(): Promise<void> {
    for (const { key, change } of this.o.limitsChanges?.() ?? []) {
      const id = this.engine.keys.lookup(key);
      if (id < 0 || this.spcIndex < 0) {
        this.log.warn({ key }, "limits change for a key with no SPC state: ignored");
        continue;
      }
      await this.engine.withKeyState(id, this.spcIndex, (kernels, ptr) => applySpcLimitsChange(kernels, ptr, change));
      this.log.info({ key, ...change }, change.kind === "set" ? "limits set" : "limits re-baselining");
    }
  }

  result(): SensorJobResult {
    return {
      metrics: this.engine.metrics(),
      recordsOut: this.recordsOut,
      anomalies: this.anomalies,
      labelsUnkept: this.labels.unkept,
      bytesWritten: this.scores?.bytesWritten ?? 0,
      seconds: (performance.now() - this.t0) / 1000,
    };
  }

  /** Each record of a finished chunk through the analyses' observers, then to the outputs and the score lines. */
  private onOutput(chunk: OutputChunk): void {
    const { analyses, zAlarm, progress } = this.o;
    const { rows, rollingIndex, outputs, scores } = this;
    for (let i = 0; i < chunk.length; i++) {
      const keyId = chunk.keyIds[i];
      const members = observeRecord(analyses, chunk, i, this.keyNames[keyId], this.ctx, rows, this.wantMembers);
      this.recordsOut++;
      if (zAlarm !== undefined && rollingIndex >= 0 && Math.abs(rows[rollingIndex][8]) >= zAlarm) this.anomalies++;
      if (outputs !== undefined) this.record(outputs, chunk, i, members);
      const audited = this.auditMembers === null ? members : members + this.auditMembers.of((k) => rows[k]);
      scores?.write(this.scoreKeys[keyId], chunk.times[i], chunk.values[i], chunk.positions[i], audited);
    }
    if (progress !== undefined) progress.recordsOut = this.recordsOut;
  }

  private record(outputs: Outputs, chunk: OutputChunk, i: number, members: string): void {
    const keyId = chunk.keyIds[i];
    const parts = this.scoreKeys[keyId].parts;
    const p = chunk.payload;
    const label =
      this.labelBytes > 0
        ? this.labels.get((p[4 * i] | (p[4 * i + 1] << 8) | (p[4 * i + 2] << 16) | (p[4 * i + 3] << 24)) >>> 0)
        : undefined;
    outputs.record({
      machineId: parts[0],
      sensorType: parts[1],
      key: this.keyNames[keyId],
      time: chunk.times[i],
      value: chunk.values[i],
      // The key's mode when keyed by mode, else the record's own operating_mode.
      mode: parts[2] ?? label?.[1],
      unit: label?.[0],
      workOrder: label?.[2],
      seq: chunk.positions[i],
      membersJson: members.slice(1),
      members: this.wantFields ? (recordFields(this.o.analyses, this.rows) ?? undefined) : undefined,
      rolling: this.rollingIndex >= 0 ? this.rows[this.rollingIndex] : undefined,
      rows: this.rows,
    });
  }
}

function startSummary(job: SensorJob, source: SensorSource, o: SensorJobOptions): { stop(): void } {
  if (o.summaryIntervalMs <= 0) return { stop() {} };
  let lastIn = 0;
  let lastBusy = 0;
  let lastT = job.t0;
  const timer = setInterval(() => {
    const now = performance.now();
    const m = job.engine.metrics();
    const rate = ((m.recordsIn - lastIn) * 1000) / (now - lastT);
    const busy = (m.kernelBusyMs - lastBusy) / ((now - lastT) * Math.max(1, m.workers));
    lastIn = m.recordsIn;
    lastBusy = m.kernelBusyMs;
    lastT = now;
    o.console.write(`${summaryLine(job, source, o, (now - job.t0) / 1000, rate, busy)}\n`);
  }, o.summaryIntervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/** `rate`: records per second since the last line (0: none shown); `busy`: the kernels' share of the threads' time (undefined: over the whole run). */
function summaryLine(job: SensorJob, source: SensorSource, o: SensorJobOptions, seconds: number, rate: number, busy?: number): string {
  const m = job.engine.metrics();
  const kernelsBusy = busy ?? m.kernelBusyMs / (seconds * 1000 * Math.max(1, m.workers));
  const rateText = rate > 0 ? `${fmt(rate)} rec/s now, ` : "";
  const alerts = o.alertsSummary?.();
  const findings = [...(o.zAlarm === undefined ? [] : [`|z| alarms ${job.anomalies}`]), ...(alerts === undefined ? [] : [alerts])];
  return (
    `[${seconds.toFixed(1)} s] in ${fmt(m.recordsIn)} out ${fmt(job.recordsOut)} (${rateText}${fmt(job.recordsOut / Math.max(seconds, 1e-3))} rec/s avg) ` +
    `keys ${m.keys} tasks ${fmt(m.tasks)} kernels busy ${(kernelsBusy * 100).toFixed(1)}% of ${Math.max(1, m.workers)} thread(s) | ${source.summary()}` +
    `${findings.length > 0 ? `, ${findings.join(", ")}` : ""}${o.scores !== null && o.scores.bytesWritten > 0 ? ` | file ${(o.scores.bytesWritten / 1048576).toFixed(1)} MiB` : ""}`
  );
}

function fmt(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return String(Math.round(n));
}

function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
