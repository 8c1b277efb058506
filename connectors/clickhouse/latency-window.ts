/**
 * Percentiles of the last N latencies (a ring of samples, sorted on read). Reads are rare
 * (a metrics scrape), writes are one per insert, so sorting a copy of ≤ N numbers on read is
 * cheaper than keeping a sketch up to date.
 */
import { ConfigError } from "../../engine/core/mod.js";

export interface LatencySummary {
  /** Samples in the window (≤ its size). */
  count: number;
  /** Nearest-rank percentiles over the window; NaN when it is empty. */
  p50: number;
  p99: number;
  max: number;
}

export class LatencyWindow {
  private readonly samples: Float64Array;
  private next = 0;
  private filled = 0;

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new ConfigError("latencyWindowSize", `must be a positive integer, got ${size}`);
    this.samples = new Float64Array(size);
  }

  add(ms: number): void {
    this.samples[this.next] = ms;
    this.next = (this.next + 1) % this.size;
    if (this.filled < this.size) this.filled++;
  }

  summary(): LatencySummary {
    if (this.filled === 0) return { count: 0, p50: Number.NaN, p99: Number.NaN, max: Number.NaN };
    const sorted = this.samples.slice(0, this.filled).sort();
    const rank = (p: number) => sorted[Math.min(this.filled - 1, Math.max(0, Math.ceil(p * this.filled) - 1))];
    return { count: this.filled, p50: rank(0.5), p99: rank(0.99), max: sorted[this.filled - 1] };
  }
}
