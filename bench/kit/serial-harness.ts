/**
 * Runs the serial kernel (build/kernels.wasm, kernels/serial.ts) the way the engine does — one
 * shared memory with the static entropy tables, a state block per line, slots, times, payloads
 * and output rows — on the calling thread, for tests and benchmarks.
 *
 * Layout (each region 64-byte aligned):
 *   [0, 65536)   left to the kernel module
 *   tables       serialStaticBytes(K)
 *   state        lines × serialStateBytes(K)
 *   slots        chunk × u32 | times chunk × f64 | payload chunk × SERIAL_PAYLOAD_BYTES | out chunk × 16 f64
 */
import { createSharedMemory, instantiateKernels, type KernelExports } from "../../engine/core/mod.js";
import {
  SERIAL_OUT_FIELDS,
  SERIAL_PAYLOAD_BYTES,
  fillSerialTables,
  serialInitArgs,
  serialStateBytes,
  serialStaticBytes,
  type SerialParams,
  encodeSerialFields,
  type SerialFields,
} from "../../operators/serial/mod.js";
import { PAGE_BYTES as PAGE } from "./kernel-harness.js";

/** One event for the kernel: its line (slot), production time and fields. */
export interface SerialKernelEvent extends SerialFields {
  line: number;
  time: number;
}

const ALIGN = 64;

export class SerialKernelHarness {
  readonly memory: WebAssembly.Memory;
  readonly kernels: KernelExports;
  readonly stateStride: number;
  private readonly tables: number;
  private readonly stateBase: number;
  private readonly slots: number;
  private readonly times: number;
  private readonly payload: number;
  private readonly out: number;
  private readonly u8: Uint8Array;
  private readonly u32: Uint32Array;
  private readonly f64: Float64Array;

  constructor(
    readonly params: SerialParams,
    readonly lines: number,
    readonly chunkMax = 4096,
    module?: WebAssembly.Module,
  ) {
    this.stateStride = serialStateBytes(params.window);
    let at = PAGE;
    const take = (bytes: number) => {
      const p = at;
      at = Math.ceil((at + bytes) / ALIGN) * ALIGN;
      return p;
    };
    this.tables = take(serialStaticBytes(params.window));
    this.stateBase = take(lines * this.stateStride);
    this.slots = take(chunkMax * 4);
    this.times = take(chunkMax * 8);
    this.payload = take(chunkMax * SERIAL_PAYLOAD_BYTES);
    this.out = take(chunkMax * SERIAL_OUT_FIELDS * 8);
    this.memory = createSharedMemory(Math.ceil(at / PAGE));
    this.kernels = instantiateKernels(this.memory, module);
    this.u8 = new Uint8Array(this.memory.buffer);
    this.u32 = new Uint32Array(this.memory.buffer);
    this.f64 = new Float64Array(this.memory.buffer);
    fillSerialTables(this.f64, this.tables / 8, params.window);
    this.reset();
  }

  statePtr(line: number): number {
    return this.stateBase + line * this.stateStride;
  }

  /** Kernel rows (SERIAL_OUT_FIELDS f64 each) of the events, in order. */
  process(events: readonly SerialKernelEvent[]): Float64Array {
    const rows = new Float64Array(events.length * SERIAL_OUT_FIELDS);
    for (let first = 0; first < events.length; first += this.chunkMax) {
      const n = Math.min(this.chunkMax, events.length - first);
      for (let i = 0; i < n; i++) {
        const e = events[first + i];
        this.u32[this.slots / 4 + i] = e.line;
        this.f64[this.times / 8 + i] = e.time;
        encodeSerialFields(e, this.u8, this.payload + i * SERIAL_PAYLOAD_BYTES);
      }
      rows.set(this.processStaged(n), first * SERIAL_OUT_FIELDS);
    }
    return rows;
  }

  /** Views of the staging columns, for callers that write payloads themselves. */
  staging(): { slots: Uint32Array; times: Float64Array; payload: Uint8Array } {
    return {
      slots: this.u32.subarray(this.slots / 4, this.slots / 4 + this.chunkMax),
      times: this.f64.subarray(this.times / 8, this.times / 8 + this.chunkMax),
      payload: this.u8.subarray(this.payload, this.payload + this.chunkMax * SERIAL_PAYLOAD_BYTES),
    };
  }

  /** Re-initialises every line's state block (fresh lines). */
  reset(): void {
    const args = serialInitArgs(this.params);
    for (let l = 0; l < this.lines; l++) (this.kernels.serialInit as (s: number, ...a: number[]) => void)(this.statePtr(l), ...args);
  }

  /** Runs the kernel over the first n staged records; returns a view of their rows. */
  processStaged(n: number): Float64Array {
    const done = this.kernels.serialProcess(
      this.stateBase,
      this.stateStride,
      this.slots,
      this.times,
      this.payload,
      SERIAL_PAYLOAD_BYTES,
      n,
      this.out,
      this.tables,
    );
    if (done !== n) throw new Error(`serialProcess processed ${done} of ${n}`);
    return this.f64.subarray(this.out / 8, this.out / 8 + n * SERIAL_OUT_FIELDS);
  }
}
