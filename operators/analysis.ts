/**
 * What an analysis provides besides its kernel: how one output row reads as JSON, and what it
 * does with rows as they complete (events, counters). Replay and the run job merge the members
 * of every analysis of a record into one line.
 */
import type { StreamKernel } from "../engine/stream-engine.js";

export interface RowContext {
  /** Engine key id and name of the record. */
  keyId: number;
  key: string;
  /** Source position (file row, stream sequence) and event time. */
  position: number;
  time: number;
  value: number;
}

export interface RecordAnalysis {
  readonly name: string;
  readonly kernel: StreamKernel;
  /** JSON members of one output row, without braces or a leading comma. */
  rowJson(row: Float64Array): string;
  /** The members written when a record got no output (late, rejected). */
  readonly nullJson: string;
  /** Sees each output row as it completes, in per-key order (alerts, counters). */
  observe?(row: Float64Array, context: RowContext): void;
  /** Warnings for the end of a run (e.g. truncated windows); empty when all is well. */
  notes?(): string[];
}
