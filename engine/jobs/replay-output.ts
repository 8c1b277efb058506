/**
 * Replay's per-row output in input order. Rows finish out of order (key groups run in parallel);
 * each row's results wait here — in typed columns, not strings, so a million rows cost no
 * garbage-collector time — until every earlier row is done, then leave as one NDJSON line with
 * the members of every analysis. Holds only the rows between the oldest unfinished and the
 * newest read, which the engine's bounded buffers keep small; the columns grow (doubling) when
 * that span does.
 */
import type { LineBuffer } from "../../connectors/files/mod.js";
import { formatStatistic } from "../../operators/mod.js";
import type { AuditMembers } from "./audit/mod.js";

/** How one analysis's rows are stored and written. */
export interface OutputAnalysis {
  fields: number;
  rowJson(row: Float64Array, payload?: Uint8Array): string;
  nullJson: string;
}

enum RowState {
  Pending = 0,
  Done = 1,
  Late = 2,
  Rejected = 3,
}

export const ROW_OUT_OF_ORDER = 1;

export class ReplayOutput {
  /** Row number at `head`. */
  private base = 0;
  private head = 0;
  private size = 0;
  private mask: number;
  private state: Uint8Array;
  private flags: Uint8Array;
  private keyIds: Int32Array;
  private values: Float64Array;
  private results: Float64Array;
  private timestamps: string[];
  private errors: (string | undefined)[];
  private readonly rowFields: number;
  private readonly offsets: number[];
  private readonly nullJson: string;
  private payload: Uint8Array;

  /**
   * `payloadBytes`: bytes kept per row for the analyses' rowJson; `withValue`: whether lines
   * carry the numeric value (null when no analysis reads one); `audit`: the audit members each
   * line ends with (replay --audit), null for none.
   */
  constructor(
    private readonly keyJson: (keyId: number) => string,
    private readonly analyses: readonly OutputAnalysis[],
    private readonly payloadBytes = 0,
    private readonly withValue = true,
    initialRows = 1 << 14,
    private readonly audit: AuditMembers | null = null,
  ) {
    this.offsets = [];
    let fields = 0;
    for (const a of analyses) {
      this.offsets.push(fields);
      fields += a.fields;
    }
    this.rowFields = fields;
    this.nullJson = analyses.map((a) => a.nullJson).join(",");
    const cap = 1 << Math.ceil(Math.log2(Math.max(16, initialRows)));
    this.mask = cap - 1;
    this.state = new Uint8Array(cap);
    this.flags = new Uint8Array(cap);
    this.keyIds = new Int32Array(cap);
    this.values = new Float64Array(cap);
    this.results = new Float64Array(cap * fields);
    this.payload = new Uint8Array(cap * payloadBytes);
    this.timestamps = new Array<string>(cap).fill("");
    this.errors = new Array<string | undefined>(cap).fill(undefined);
  }

  /** Rows read and not yet written. */
  get pending(): number {
    return this.size;
  }

  /** Registers the next row (rows come consecutively). */
  add(row: number, keyId: number, timestampJson: string): void {
    if (row !== this.base + this.size) throw new RangeError(`row ${row} added out of sequence (expected ${this.base + this.size})`);
    if (this.size === this.mask + 1) this.grow();
    const i = (this.head + this.size) & this.mask;
    this.size++;
    this.state[i] = RowState.Pending;
    this.flags[i] = 0;
    this.keyIds[i] = keyId;
    this.timestamps[i] = timestampJson;
    this.errors[i] = undefined;
  }

  /** A processed row: `rows[k]` is analysis k's output row for it; `payload` its payload bytes. */
  complete(row: number, value: number, rows: readonly Float64Array[], flags: number, payload?: Uint8Array): void {
    const i = this.slot(row);
    if (payload !== undefined && this.payloadBytes > 0) this.payload.set(payload.subarray(0, this.payloadBytes), i * this.payloadBytes);
    this.values[i] = value;
    this.flags[i] = flags;
    for (let k = 0; k < rows.length; k++)
      this.results.set(rows[k].subarray(0, this.analyses[k].fields), i * this.rowFields + this.offsets[k]);
    this.state[i] = RowState.Done;
  }

  late(row: number, value: number): void {
    const i = this.slot(row);
    this.values[i] = value;
    this.state[i] = RowState.Late;
  }

  reject(row: number, reason: string): void {
    const i = this.slot(row);
    this.errors[i] = reason;
    this.state[i] = RowState.Rejected;
  }

  /** Appends the finished lines at the front, in row order, to `out`; removes them. */
  drain(out: LineBuffer): void {
    while (this.size > 0 && this.state[this.head] !== RowState.Pending) {
      out.push(this.line(this.head, this.base));
      this.timestamps[this.head] = "";
      this.head = (this.head + 1) & this.mask;
      this.base++;
      this.size--;
    }
  }

  private line(i: number, row: number): string {
    const prefix = `{"row":${row},"key":${this.keyJson(this.keyIds[i])},"timestamp":${this.timestamps[i]},"value":`;
    // With the audit record the reading is written exactly (the shortest text of its double), so
    // `audit verify` re-runs the analyses on the very input; the statistics keep 15 digits.
    const value = !this.withValue ? "null" : this.audit === null ? formatStatistic(this.values[i]) : exactNumber(this.values[i]);
    switch (this.state[i] as RowState) {
      case RowState.Rejected:
        return `${prefix}null,${this.nullJson}${this.audit?.empty ?? ""},"error":${JSON.stringify(this.errors[i])}}`;
      case RowState.Late:
        return `${prefix}${value},${this.nullJson}${this.audit?.empty ?? ""},"late":true}`;
      default: {
        let members = "";
        const base = i * this.rowFields;
        const pb = this.payloadBytes;
        const payload = pb > 0 ? this.payload.subarray(i * pb, (i + 1) * pb) : undefined;
        const audit = this.audit;
        let auditJson = audit === null ? "" : audit.empty;
        for (let k = 0; k < this.analyses.length; k++) {
          const a = this.analyses[k];
          const start = base + this.offsets[k];
          const row = this.results.subarray(start, start + a.fields);
          members += `,${a.rowJson(row, payload)}`;
          if (audit !== null && k === audit.model) auditJson = audit.ofModelRow(row);
        }
        members += auditJson;
        const ooo = this.flags[i] & ROW_OUT_OF_ORDER ? ',"out_of_order":true' : "";
        return `${prefix}${value}${members}${ooo}}`;
      }
    }
  }

  private slot(row: number): number {
    const k = row - this.base;
    if (k < 0 || k >= this.size) throw new RangeError(`row ${row} is not pending`);
    const i = (this.head + k) & this.mask;
    if (this.state[i] !== RowState.Pending) throw new RangeError(`row ${row} finished twice`);
    return i;
  }

  private grow(): void {
    const cap = (this.mask + 1) * 2;
    const f = this.rowFields;
    const state = new Uint8Array(cap);
    const flags = new Uint8Array(cap);
    const keyIds = new Int32Array(cap);
    const values = new Float64Array(cap);
    const results = new Float64Array(cap * f);
    const pb = this.payloadBytes;
    const payload = new Uint8Array(cap * pb);
    const timestamps = new Array<string>(cap).fill("");
    const errors = new Array<string | undefined>(cap).fill(undefined);
    for (let k = 0; k < this.size; k++) {
      const i = (this.head + k) & this.mask;
      state[k] = this.state[i];
      flags[k] = this.flags[i];
      keyIds[k] = this.keyIds[i];
      values[k] = this.values[i];
      results.set(this.results.subarray(i * f, (i + 1) * f), k * f);
      payload.set(this.payload.subarray(i * pb, (i + 1) * pb), k * pb);
      timestamps[k] = this.timestamps[i];
      errors[k] = this.errors[i];
    }
    Object.assign(this, { state, flags, keyIds, values, results, payload, timestamps, errors, head: 0, mask: cap - 1 });
  }
}

/** The shortest text that reads back as `v` (JSON's), null when not finite. */
function exactNumber(v: number): string {
  return Number.isFinite(v) ? JSON.stringify(v) : "null";
}
