/**
 * The whole serial analysis on the calling thread, without the engine: each event goes through
 * the analysis's encoder (`encodeEvent`: payload and ledger), the WASM kernel
 * (bench/kit/serial-harness.ts) and the analysis's observe (score, risk, quarantine), in order. For tests that need millions of
 * events quickly and deterministically, and for the benchmark's single-thread figure.
 */
import type { TableRow } from "../../connectors/files/mod.js";
import type { SerialEvent } from "../../connectors/sim/mod.js";
import { SERIAL_OUT_FIELDS, SERIAL_PAYLOAD_BYTES, type SerialParams, type SerialAnalysis } from "../../operators/serial/mod.js";
import { SerialKernelHarness } from "./serial-harness.js";

/** A simulator event seen as a source row (timestamps as epoch ms numbers). */
export class SerialEventRow implements TableRow {
  row = 0;
  line = 0;
  event: SerialEvent | null = null;

  set(e: SerialEvent, row: number): this {
    this.event = e;
    this.row = row;
    this.line = row + 1;
    return this;
  }

  get(column: string): string | number | undefined {
    const v = (this.event as unknown as Record<string, string | number | undefined>)[column];
    return column === "attack" ? undefined : v;
  }

  has(column: string): boolean {
    return this.get(column) !== undefined;
  }
}

export type ScoredRow = (index: number, row: Float64Array, payload: Uint8Array, event: SerialEvent) => void;

export class SerialInlinePipeline {
  readonly harness: SerialKernelHarness;
  private readonly slots = new Map<string, number>();
  private index = 0;
  rejected = 0;

  constructor(
    readonly analysis: SerialAnalysis,
    params: SerialParams,
    linesMax = 64,
    chunk = 4096,
  ) {
    this.harness = new SerialKernelHarness(params, linesMax, chunk);
  }

  /** Runs the events; `onRow` sees each scored row (a view, valid during the call). */
  run(events: readonly SerialEvent[], onRow?: ScoredRow): void {
    const input = this.analysis.input;
    const { slots, times, payload } = this.harness.staging();
    for (let first = 0; first < events.length; first += this.harness.chunkMax) {
      const n = Math.min(this.harness.chunkMax, events.length - first);
      const kept: number[] = [];
      for (let i = 0; i < n; i++) {
        const e = events[first + i];
        const k = kept.length;
        const error = input.encodeEvent(e, payload, k * SERIAL_PAYLOAD_BYTES);
        if (error !== null) {
          this.rejected++;
          continue;
        }
        slots[k] = this.slotOf(e.machine_id);
        times[k] = e.production_timestamp;
        kept.push(i);
      }
      const rows = this.harness.processStaged(kept.length);
      for (let k = 0; k < kept.length; k++) {
        const i = kept[k];
        const e = events[first + i];
        const row = rows.subarray(k * SERIAL_OUT_FIELDS, (k + 1) * SERIAL_OUT_FIELDS);
        const p = payload.subarray(k * SERIAL_PAYLOAD_BYTES, (k + 1) * SERIAL_PAYLOAD_BYTES);
        this.analysis.observe?.(row, { keyId: slots[k], key: e.machine_id, position: this.index + i, time: times[k], value: 0 }, p);
        onRow?.(this.index + i, row, p, e);
      }
      this.index += n;
    }
  }

  private slotOf(machine: string): number {
    let s = this.slots.get(machine);
    if (s === undefined) {
      s = this.slots.size;
      if (s >= this.harness.lines) throw new RangeError(`more than ${this.harness.lines} lines`);
      this.slots.set(machine, s);
    }
    return s;
  }
}
