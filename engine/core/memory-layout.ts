/**
 * Layout of the shared kernel memory: one region per key group.
 *
 *   [reserved: 64 KiB]                       (the kernel module's own static data, if any)
 *   [static: staticBytes]                    (read-only data of the analyses, e.g. models)
 *   group 0: [state: slotsPerGroup × stateStride]
 *            [buffer 0: slots u32 × B | times f64 × B | values f64 × B | out f64 × B × outFields
 *                      | payload u8 × B × payloadBytes | event lists: eventLists × u32 × (1 + B)]
 *            [buffer 1: same]
 *   group 1: …
 *
 * B = batchRecordsMax. Each group owns its region; at most one task per group is in flight and
 * the main thread fills the buffer that task does not use, so no two threads touch the same
 * bytes at once (the double buffer of DESIGN.md §2).
 */
import { ConfigError } from "./errors.js";
import { KERNEL_MEMORY_PAGES_MAX } from "./kernel-module.js";

export const MEMORY_RESERVED_BYTES = 65536;
const PAGE_BYTES = 65536;
const ALIGN = 64;

export interface LayoutSpec {
  groups: number;
  slotsPerGroup: number;
  stateStride: number;
  batchRecordsMax: number;
  outFields: number;
  /** Bytes of the static region (0 when no analysis needs one). */
  staticBytes?: number;
  /** Fixed-width payload bytes per record (0: none). */
  payloadBytes?: number;
  /** Kernels that write an event list per buffer (a u32 count and up to B row indices each; 0: none). */
  eventLists?: number;
}

export interface BufferOffsets {
  slots: number;
  times: number;
  values: number;
  out: number;
  payload: number;
  /** Start of the event lists (each {@link MemoryLayout.eventList}). */
  events: number;
}

export class MemoryLayout {
  readonly spec: LayoutSpec;
  readonly groupBytes: number;
  readonly totalBytes: number;
  readonly pages: number;
  /** Start of the static region. */
  readonly staticBase: number;
  private readonly groupsBase: number;
  private readonly stateBytes: number;
  private readonly bufferBytes: number;

  constructor(spec: LayoutSpec) {
    for (const [k, v] of Object.entries(spec)) {
      if (k === "staticBytes" || k === "payloadBytes" || k === "eventLists") {
        if (!Number.isInteger(v) || v < 0) throw new ConfigError(k, `must be an integer ≥ 0, got ${v}`);
      } else if (!Number.isInteger(v) || v < 1) throw new ConfigError(k, `must be a positive integer, got ${v}`);
    }
    if (spec.stateStride % 8 !== 0) throw new ConfigError("stateStride", `must be a multiple of 8, got ${spec.stateStride}`);
    this.spec = spec;
    const b = spec.batchRecordsMax;
    this.stateBytes = alignUp(spec.slotsPerGroup * spec.stateStride);
    this.bufferBytes =
      alignUp(b * 4) +
      alignUp(b * 8) * 2 +
      alignUp(b * 8 * spec.outFields) +
      alignUp(b * (spec.payloadBytes ?? 0)) +
      (spec.eventLists ?? 0) * alignUp(4 * (1 + b));
    this.groupBytes = this.stateBytes + 2 * this.bufferBytes;
    this.staticBase = MEMORY_RESERVED_BYTES;
    this.groupsBase = this.staticBase + alignUp(spec.staticBytes ?? 0);
    this.totalBytes = this.groupsBase + spec.groups * this.groupBytes;
    this.pages = Math.ceil(this.totalBytes / PAGE_BYTES);
    if (this.pages > KERNEL_MEMORY_PAGES_MAX) {
      throw new ConfigError(
        "memory",
        `${spec.groups} groups × ${this.groupBytes} bytes need ${this.pages} pages, more than the kernel module's ` +
          `${KERNEL_MEMORY_PAGES_MAX}; lower groups, keysMax, batchRecordsMax or the window size`,
      );
    }
  }

  groupBase(group: number): number {
    return this.groupsBase + group * this.groupBytes;
  }

  /** Byte offset of the state block of `slot` in `group`. */
  statePtr(group: number, slot: number): number {
    return this.groupBase(group) + slot * this.spec.stateStride;
  }

  buffer(group: number, which: 0 | 1): BufferOffsets {
    const b = this.spec.batchRecordsMax;
    const slots = this.groupBase(group) + this.stateBytes + which * this.bufferBytes;
    const times = slots + alignUp(b * 4);
    const values = times + alignUp(b * 8);
    const out = values + alignUp(b * 8);
    const payload = out + alignUp(b * 8 * this.spec.outFields);
    const events = payload + alignUp(b * (this.spec.payloadBytes ?? 0));
    return { slots, times, values, out, payload, events };
  }

  /** Byte offset of event list `list` of a buffer: its u32 count, then room for B row indices. */
  eventList(buffer: BufferOffsets, list: number): number {
    return buffer.events + list * alignUp(4 * (1 + this.spec.batchRecordsMax));
  }
}

function alignUp(n: number): number {
  return Math.ceil(n / ALIGN) * ALIGN;
}
