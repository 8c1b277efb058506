/**
 * An ingest worker's iforest rows for the model's drift watch on the main thread.
 *
 * Why the rows cross instead of the worker running the monitor: drift is a property of the
 * model's whole input stream, not of one worker's partitions — one PSI window per model over
 * every key gives the same episodes, levels and API reports whatever the partitioning (the
 * main-thread job's), where a monitor per worker would see 1/N of the stream, fill its window N
 * times slower and open N episodes for one shift. The cost that moves is one copy of the rows per
 * chunk here (the kernel's output, already a row-major Float64Array: no per-record work) and the
 * monitor's per-row work there (ModelDriftWatch.observeRow: no allocation).
 *
 * Bounded: rows go out in messages of at most {@link DRIFT_MESSAGE_ROWS}; a worker sends only
 * while the rows it sent and the main thread has not yet taken stay under
 * {@link DRIFT_ROWS_PENDING_MAX} (shared counters COUNTER.driftRowsSent / driftRowsTaken), else
 * it sheds them, counted in COUNTER.driftRowsShed (the drift report shows the count): a main
 * thread that falls behind sees a sample of the stream, never an unbounded queue.
 */
import type { OutputChunk } from "../../core/mod.js";
import type { IforestAnalysis } from "../../../operators/iforest/mod.js";
import { COUNTER, type DriftRows, type IngestEvent } from "./protocol.js";

/** Rows per message: one transfer per 4096 rows. */
export const DRIFT_MESSAGE_ROWS = 4096;
/** Rows sent and not yet taken by the main thread at most (16 messages; 1.5 MiB with 3 features). */
export const DRIFT_ROWS_PENDING_MAX = 16 * DRIFT_MESSAGE_ROWS;

export class DriftRowsOut {
  private readonly fields: number;
  private rows: Float64Array;
  private times: Float64Array;
  private n = 0;
  /** Generations whose model the main thread has been sent. */
  private generationsSent = 0;

  constructor(
    private readonly forest: IforestAnalysis,
    /** The iforest analysis's index among the worker's analyses. */
    private readonly index: number,
    private readonly counters: Float64Array,
    private readonly base: number,
  ) {
    this.fields = forest.featureCount + 2;
    this.rows = new Float64Array(DRIFT_MESSAGE_ROWS * this.fields);
    this.times = new Float64Array(DRIFT_MESSAGE_ROWS);
    // A restarted worker: what its predecessor sent and the main thread never took is gone.
    counters[base + COUNTER.driftRowsSent] = counters[base + COUNTER.driftRowsTaken];
  }

  /** A finished chunk's iforest rows (after the observers settled score and generation). */
  add(chunk: OutputChunk, post: (event: IngestEvent, transfer: ArrayBuffer[]) => void): void {
    const out = chunk.outs[this.index];
    const f = this.fields;
    for (let from = 0; from < chunk.length; ) {
      const c = this.counters;
      const pending = c[this.base + COUNTER.driftRowsSent] + this.n - c[this.base + COUNTER.driftRowsTaken];
      const room = Math.min(DRIFT_MESSAGE_ROWS - this.n, DRIFT_ROWS_PENDING_MAX - pending);
      if (room <= 0) {
        c[this.base + COUNTER.driftRowsShed] += chunk.length - from;
        return;
      }
      const take = Math.min(room, chunk.length - from);
      this.rows.set(out.subarray(from * f, (from + take) * f), this.n * f);
      this.times.set(chunk.times.subarray(from, from + take), this.n);
      this.n += take;
      from += take;
      if (this.n === DRIFT_MESSAGE_ROWS) this.send(post);
    }
  }

  /** Sends the rows collected (at each emit: the main thread sees them as soon as the frames and alerts). */
  send(post: (event: IngestEvent, transfer: ArrayBuffer[]) => void): void {
    if (this.n === 0) return;
    const active = this.generationsNow();
    const models = [];
    for (let g = this.generationsSent; g < active; g++) models.push(this.forest.modelAt(g));
    const drift: DriftRows = {
      n: this.n,
      fields: this.fields,
      rows: this.rows,
      times: this.times,
      firstGeneration: this.generationsSent,
      models,
    };
    this.generationsSent = active;
    this.counters[this.base + COUNTER.driftRowsSent] += this.n;
    post({ kind: "driftRows", drift }, [this.rows.buffer as ArrayBuffer, this.times.buffer as ArrayBuffer]);
    this.rows = new Float64Array(DRIFT_MESSAGE_ROWS * this.fields);
    this.times = new Float64Array(DRIFT_MESSAGE_ROWS);
    this.n = 0;
  }

  /** Generations so far: one past the highest a collected row names (a swap adds one). */
  private generationsNow(): number {
    let top = this.generationsSent - 1;
    const f = this.fields;
    for (let i = 0; i < this.n; i++) {
      const g = this.rows[i * f + f - 1];
      if (g > top) top = g;
    }
    return top + 1;
  }
}
