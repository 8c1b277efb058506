/**
 * Publish→receive latency of the live server's WebSocket topics under `linewatch run`: a publisher
 * of the simulator's records to JetStream that notes when each tick went out, and subscribers that
 * read the score frames of their machine topics and measure, per row, the time from its tick's
 * publish to the frame's arrival. Also the engine's resident set now (not its high-water mark).
 */
import { readFileSync } from "node:fs";
import type { PubAck } from "nats";
import { PlantSimulator, type SimulatorOptions } from "../../../connectors/sim/mod.js";
import { decodeScoreFrame, encodeMsgpackRecord } from "../../../connectors/wire/mod.js";
import type { ChaosEnv } from "./env.js";
import type { WsDataMessage } from "./ws-client.js";

/** Wall-clock epoch ms, fractional (the latencies are differences of these). */
export const nowMs = (): number => performance.timeOrigin + performance.now();

/**
 * Publishes the simulator's records on `site` at `rate` records/s (JetStream, acknowledged) until
 * stopped, and keeps, per tick time, the wall-clock time its first record was published: every
 * key of a tick has the same timestamp, so a tick is published in one go.
 */
export class LatencyPublisher {
  /** Tick time (the records' timestamp) → wall-clock ms of its publish. */
  readonly publishedAt = new Map<number, number>();
  published = 0;
  failed = 0;
  private stopping = false;
  private readonly done: Promise<void>;

  constructor(
    private readonly env: ChaosEnv,
    private readonly site: string,
    private readonly rate: number,
    sim: Partial<SimulatorOptions>,
  ) {
    this.done = this.loop(new PlantSimulator(sim));
  }

  /** Stops publishing; resolves once the last acknowledgement is in. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.done;
  }

  private async loop(sim: PlantSimulator): Promise<void> {
    const js = this.env.nc.jetstream();
    const keys = sim.keys();
    const t0 = performance.now();
    while (!this.stopping && !sim.done) {
      const due = Math.floor(((performance.now() - t0) * this.rate) / 1000) - this.published;
      if (due <= 0) {
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      const c = sim.nextColumns(Math.min(due, 4096));
      const acks: Promise<PubAck>[] = [];
      for (let i = 0; i < c.length; i++) {
        const k = keys[c.keyIndex[i]];
        if (!this.publishedAt.has(c.times[i])) this.publishedAt.set(c.times[i], nowMs());
        const record = {
          machine_id: k.machine_id,
          sensor_type: k.sensor_type,
          timestamp: c.times[i],
          sensor_value: c.values[i],
          sensor_unit: k.sensor_unit,
          operating_mode: "running",
        };
        acks.push(js.publish(`lw.${this.site}.sensor.${k.machine_id}.${k.sensor_type}`, encodeMsgpackRecord(record)));
      }
      this.published += c.length;
      for (const r of await Promise.allSettled(acks)) if (r.status === "rejected") this.failed++;
    }
  }
}

/**
 * A window of publish times (wall-clock ms) whose rows' latencies are collected (ms, one per row
 * per subscriber); closed until {@link LatencyWindow.open} is called.
 */
export class LatencyWindow {
  readonly latencies: number[] = [];
  fromMs = Number.POSITIVE_INFINITY;
  toMs = Number.POSITIVE_INFINITY;
  open(): void {
    this.fromMs = nowMs();
  }
  close(): void {
    this.toMs = nowMs();
  }
}

/**
 * A subscriber's data handler: decodes each score frame and files each row's latency (arrival
 * minus its tick's publish) in the window its publish time falls in.
 */
export function latencyRecorder(
  publishedAt: ReadonlyMap<number, number>,
  windows: readonly LatencyWindow[],
): (m: WsDataMessage, atMs: number) => void {
  return (m, atMs) => {
    const data = m.data as { kind?: unknown; frame?: unknown } | null;
    if (data?.kind !== "score_frame" || !(data.frame instanceof Uint8Array)) return;
    const times = decodeScoreFrame(data.frame).times;
    for (const t of times) {
      const sent = publishedAt.get(t);
      if (sent === undefined) continue;
      for (const w of windows) if (sent >= w.fromMs && sent < w.toMs) w.latencies.push(atMs - sent);
    }
  };
}

/** The q-quantile of `xs` by nearest rank (ceil(q·n)-th smallest); NaN for none. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const sorted = Float64Array.from(xs).sort();
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** The resident set of a live process now, bytes (Linux VmRSS); null elsewhere or once it has gone. */
export function residentBytes(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m === null ? null : Number(m[1]) * 1024;
  } catch {
    return null;
  }
}
