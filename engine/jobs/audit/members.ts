/**
 * The audit members of a score line (replay --audit, NATS score messages):
 * `"kernel_hash":"…","config_hash":"…","model_version":"…"|null` and, when no SPC analysis writes
 * its own, `"limits_version":null`. The two hashes are one string made once per run; per row only
 * the model version is looked up (an index into the model analysis's hashes), so a line costs
 * one string concatenation more.
 */
import type { AuditStamp } from "./config.js";

/** What the members need of an analysis: its name, and its model's version per output row. */
export interface AuditedOutput {
  readonly name: string;
  modelVersion?(row: Float64Array): string | null;
}

export class AuditMembers {
  /** `,"kernel_hash":"…","config_hash":"…"` (leading comma, as observeRecord's members). */
  private readonly hashes: string;
  /** `,"limits_version":null` when no analysis writes a limits version, else "". */
  private readonly limits: string;
  /** Index of the analysis with a model (its rows give model_version), −1 when none has one. */
  readonly model: number;
  /** The members of a row that got no output (late, rejected): no model scored it. */
  readonly empty: string;

  constructor(
    stamp: Pick<AuditStamp, "kernelHash" | "configHash">,
    private readonly outputs: readonly AuditedOutput[],
  ) {
    this.hashes = `,"kernel_hash":"${stamp.kernelHash}","config_hash":"${stamp.configHash}"`;
    this.limits = outputs.some((o) => o.name === "spc") ? "" : ',"limits_version":null';
    this.model = outputs.findIndex((o) => o.modelVersion !== undefined);
    this.empty = `${this.hashes},"model_version":null${this.limits}`;
  }

  /** The members of a computed row; `rowOf(k)` is analysis k's output row. */
  of(rowOf: (k: number) => Float64Array): string {
    return this.model < 0 ? this.empty : this.ofModelRow(rowOf(this.model));
  }

  /** The members of a computed row, from the output row of analysis {@link model}. */
  ofModelRow(row: Float64Array): string {
    const version = (this.outputs[this.model].modelVersion as (row: Float64Array) => string | null)(row);
    return version === null ? this.empty : `${this.hashes},"model_version":"${version}"${this.limits}`;
  }
}
