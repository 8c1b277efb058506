/**
 * Where the quality job's records come from in a run: the batch simulator, paced like the plant
 * simulator (event time = wall time × speed; `speed` Infinity: as fast as the job takes them), or
 * core NATS subjects `lw.<site>.process.>` and `lw.<site>.quality.>` (a malformed message is
 * dead-lettered with the codec's reason by {@link BatchNatsInput}). The job is flushed (due batches
 * scored) every `flushIntervalMs` of wall time and at the end. JetStream: quality-jetstream.ts.
 */
import type { NatsConnection, Subscription } from "nats";
import { BatchNatsInput } from "../../connectors/nats/mod.js";
import { BatchSimulator, type BatchSimulatorOptions } from "../../connectors/sim/mod.js";
import type { QualityJob } from "./quality-job.js";

export interface QualitySourceResult {
  processRecords: number;
  qualityRecords: number;
  deadLettered: number;
  deadLettersByReason: Record<string, number>;
  seconds: number;
}

export interface QualitySimulationOptions {
  simulator: Partial<BatchSimulatorOptions>;
  speed: number;
  /** Event time at which the simulation stops (undefined: at `stop` or when the simulator is done). */
  endTime?: number;
  flushIntervalMs: number;
  stop: Promise<void>;
}

export async function runQualitySimulation(job: QualityJob, o: QualitySimulationOptions): Promise<QualitySourceResult> {
  const sim = new BatchSimulator(o.simulator);
  const t0 = performance.now();
  let stopped = false;
  void o.stop.then(() => (stopped = true));
  const live = Number.isFinite(o.speed);
  const first = sim.options.startTime;
  const counts = { process: 0, quality: 0 };
  let lastFlush = t0;
  let kind = sim.next();
  while (!stopped && kind !== null && (o.endTime === undefined || eventTime(sim, kind) < o.endTime)) {
    const now = performance.now();
    if (now - lastFlush >= o.flushIntervalMs) {
      lastFlush = now;
      await job.flush();
    }
    const due = live ? first + (now - t0) * o.speed : Number.POSITIVE_INFINITY;
    if (eventTime(sim, kind) > due) {
      await new Promise((r) => setTimeout(r, 20));
      continue;
    }
    for (let n = 0; n < 1024 && kind !== null && eventTime(sim, kind) <= due; n++) {
      counts[kind]++;
      if (kind === "process") job.process(sim.reading);
      else job.quality(sim.outcome as NonNullable<BatchSimulator["outcome"]>);
      kind = sim.next();
      if (kind !== null && o.endTime !== undefined && eventTime(sim, kind) >= o.endTime) break;
    }
    // Unpaced: let the other jobs of this thread have their turn.
    if (!live) await new Promise((r) => setImmediate(r));
  }
  await job.flush();
  return {
    processRecords: counts.process,
    qualityRecords: counts.quality,
    deadLettered: 0,
    deadLettersByReason: {},
    seconds: (performance.now() - t0) / 1000,
  };
}

function eventTime(sim: BatchSimulator, kind: "process" | "quality"): number {
  return kind === "process" ? sim.reading.timestamp : (sim.outcome as NonNullable<BatchSimulator["outcome"]>).timestamp;
}

export interface QualityNatsOptions {
  site: string;
  flushIntervalMs: number;
  stop: Promise<void>;
  /** Called once both subscriptions are registered with the server. */
  onReady?: () => void;
}

/** Consumes the process and quality subjects of the site until `stop`. */
export async function consumeQualityNats(nc: NatsConnection, job: QualityJob, o: QualityNatsOptions): Promise<QualitySourceResult> {
  const input = new BatchNatsInput(nc, o.site);
  const t0 = performance.now();
  const counts = { process: 0, quality: 0 };
  const subscribe = (kind: "process" | "quality"): Subscription =>
    nc.subscribe(`lw.${o.site}.${kind}.>`, {
      callback: (err, msg) => {
        if (err !== null) return;
        const m = input.decode(msg.subject, msg.data, kind);
        if (m === null) return;
        counts[m.kind]++;
        if (m.kind === "process") job.process(m.record);
        else job.quality(m.record);
      },
    });
  const subs = [subscribe("process"), subscribe("quality")];
  await nc.flush();
  o.onReady?.();
  // Flushes run one after another; the first failure is kept and thrown when the job stops.
  let failure: unknown = null;
  let flushing = Promise.resolve();
  const timer = setInterval(() => {
    flushing = flushing.then(() => job.flush()).catch((e: unknown) => void (failure ??= e));
  }, o.flushIntervalMs);
  try {
    await o.stop;
  } finally {
    clearInterval(timer);
    for (const s of subs) s.unsubscribe();
    await flushing;
    await job.flush();
    await input.settled();
  }
  if (failure !== null) throw failure;
  const c = input.counts();
  return {
    processRecords: counts.process,
    qualityRecords: counts.quality,
    deadLettered: c.deadLettered,
    deadLettersByReason: c.byReason,
    seconds: (performance.now() - t0) / 1000,
  };
}
