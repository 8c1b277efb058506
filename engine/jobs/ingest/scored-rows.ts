/**
 * The scored rows of one drain of an ingest worker, as columns: key ids, times, values and every
 * analysis's output fields transposed from the kernels' row-major blocks into one column each. From
 * them the worker encodes its score frames: one for NATS holding every row, one per machine for
 * the live server's `machine/<id>` topics. Bounded: `capacity` rows, the caller emits when full.
 */
import type { OutputChunk } from "../../core/mod.js";
import { encodeScoreFrame } from "../../../connectors/wire/mod.js";

/** A machine's share of the rows, encoded for its live topic. */
export interface MachineFrame {
  machine: string;
  frame: Uint8Array;
}

/** The keys the rows name: engine key id → frame key (`machine.sensor`) and machine index. */
export interface RowKeys {
  frameKey(keyId: number): string;
  machineOf(keyId: number): number;
  machineName(machine: number): string;
  readonly machines: number;
}

export class ScoredRows {
  length = 0;
  readonly capacity: number;
  private readonly keyIds: Uint32Array;
  private readonly times: Float64Array;
  private readonly values: Float64Array;
  private readonly columns: Float64Array[];
  /** Scratch of one machine's rows (gathered before encoding). */
  private readonly part: { keyIds: Uint32Array; times: Float64Array; values: Float64Array; columns: Float64Array[] };
  /** Key id → its index in the frame being encoded (valid when stamp matches). */
  private readonly localIndex: Int32Array;
  private readonly localStamp: Uint32Array;
  private stamp = 0;
  private readonly order: Uint32Array;

  constructor(
    capacity: number,
    keysMax: number,
    readonly columnNames: readonly string[],
    private readonly keys: RowKeys,
  ) {
    this.capacity = capacity;
    this.keyIds = new Uint32Array(capacity);
    this.times = new Float64Array(capacity);
    this.values = new Float64Array(capacity);
    this.columns = columnNames.map(() => new Float64Array(capacity));
    this.part = {
      keyIds: new Uint32Array(capacity),
      times: new Float64Array(capacity),
      values: new Float64Array(capacity),
      columns: columnNames.map(() => new Float64Array(capacity)),
    };
    this.localIndex = new Int32Array(keysMax);
    this.localStamp = new Uint32Array(keysMax);
    this.order = new Uint32Array(capacity);
  }

  /** Rows [from, to) of a finished chunk; `outs` are the analyses' blocks whose columns are named (in `columnNames` order). */
  add(chunk: OutputChunk, from: number, to: number, outs: readonly number[]): void {
    const n = to - from;
    const at = this.length;
    this.keyIds.set(chunk.keyIds.subarray(from, to), at);
    this.times.set(chunk.times.subarray(from, to), at);
    this.values.set(chunk.values.subarray(from, to), at);
    let c = 0;
    for (const k of outs) {
      const fields = chunk.outFields[k];
      const block = chunk.outs[k];
      for (let f = 0; f < fields; f++, c++) {
        const col = this.columns[c];
        for (let i = 0; i < n; i++) col[at + i] = block[(from + i) * fields + f];
      }
    }
    this.length = at + n;
  }

  /** Every row in one frame. */
  encodeAll(): Uint8Array {
    return this.encode(this.keyIds, this.times, this.values, this.columns, this.length);
  }

  /** One frame per machine that has rows, rows in their order (a counting sort by machine, then one gather per machine). */
  encodeByMachine(): MachineFrame[] {
    const n = this.length;
    const machines = this.keys.machines;
    const starts = new Uint32Array(machines + 1);
    for (let i = 0; i < n; i++) starts[this.keys.machineOf(this.keyIds[i]) + 1]++;
    for (let m = 0; m < machines; m++) starts[m + 1] += starts[m];
    const next = starts.slice(0, machines);
    const order = this.order;
    for (let i = 0; i < n; i++) order[next[this.keys.machineOf(this.keyIds[i])]++] = i;
    const out: MachineFrame[] = [];
    const p = this.part;
    for (let m = 0; m < machines; m++) {
      const from = starts[m];
      const count = starts[m + 1] - from;
      if (count === 0) continue;
      for (let j = 0; j < count; j++) {
        const i = order[from + j];
        p.keyIds[j] = this.keyIds[i];
        p.times[j] = this.times[i];
        p.values[j] = this.values[i];
      }
      for (let c = 0; c < this.columns.length; c++) {
        const src = this.columns[c];
        const dst = p.columns[c];
        for (let j = 0; j < count; j++) dst[j] = src[order[from + j]];
      }
      out.push({ machine: this.keys.machineName(m), frame: this.encode(p.keyIds, p.times, p.values, p.columns, count) });
    }
    return out;
  }

  clear(): void {
    this.length = 0;
  }

  private encode(keyIds: Uint32Array, times: Float64Array, values: Float64Array, columns: Float64Array[], n: number): Uint8Array {
    const stamp = ++this.stamp;
    const keys: string[] = [];
    const keyIndex = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      const id = keyIds[i];
      if (this.localStamp[id] !== stamp) {
        this.localStamp[id] = stamp;
        this.localIndex[id] = keys.length;
        keys.push(this.keys.frameKey(id));
      }
      keyIndex[i] = this.localIndex[id];
    }
    return encodeScoreFrame({
      keys,
      keyIndex,
      times: times.subarray(0, n),
      values: values.subarray(0, n),
      columns: this.columnNames.map((name, c) => [name, columns[c].subarray(0, n)] as const),
      length: n,
    });
  }
}
