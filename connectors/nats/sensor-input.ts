/**
 * From a NATS message to readings: the subject says the key (no payload decode needed to route),
 * the payload is a single record (MessagePack or JSON) or a frame of many readings. Whatever is
 * rejected — the whole message, or single readings of a frame — goes to the dead-letter subject
 * with its reason and is counted; nothing is dropped silently.
 *
 * Partitioned subjects (`lw.<site>.p.<k>.sensor.…`, made by the server's partition mapping) are
 * read as the sensor subject they were published on.
 */
import type { NatsConnection } from "nats";
import {
  decodeFrame,
  decodeFrameInto,
  type FrameTarget,
  frameReadingCount,
  decodeRecord,
  sniffPayload,
  parseSubject,
  DEFAULT_DECODE_LIMITS,
  type DecodeLimits,
  type RejectedReading,
  type SensorReading,
  type SensorSubject,
  unpartitioned,
} from "../wire/mod.js";
import { DeadLetterRouter, natsDeadLetterPublish, reasonOf } from "./dead-letter.js";
import { SubjectError } from "../errors.js";

export { unpartitioned };

/**
 * Row `seq` of a frame's reading: stream position × FRAME_SEQ_STRIDE + the reading's index in
 * the decoded frame. The stride is the default (and this input's largest allowed)
 * `frameReadingsMax`, so readings of one frame, and of different frames, never share a `seq`;
 * a single-record message keeps seq = its stream position. Exact in a double up to position
 * {@link FRAME_SEQ_POSITION_MAX} (2^37 − 1, about 1.4e11 messages); past that {@link frameSeq}
 * throws. A single record and a frame reading could share a `seq` only if one key had a reading
 * in the same millisecond in single-record message s·65 536 + i and frame message s.
 */
export const FRAME_SEQ_STRIDE = 65_536;
export const FRAME_SEQ_POSITION_MAX = Math.floor(Number.MAX_SAFE_INTEGER / FRAME_SEQ_STRIDE) - 1;

/** The `seq` of reading `index` of the frame at stream position `position` (see {@link FRAME_SEQ_STRIDE}). */
export function frameSeq(position: number, index: number): number {
  if (position > FRAME_SEQ_POSITION_MAX) {
    throw new RangeError(
      `stream position ${position} is over ${FRAME_SEQ_POSITION_MAX}: a frame reading's seq (position × ${FRAME_SEQ_STRIDE} + index) would not be exact`,
    );
  }
  return position * FRAME_SEQ_STRIDE + index;
}

/** The readings of one message, by index. */
export interface MessageReadings {
  readonly length: number;
  /** A frame (each reading's seq from {@link frameSeq}), not a single record (seq = the position). */
  readonly frame: boolean;
  /** A single record's decoded fields (sensor_unit, operating_mode, work_order_id among them); frames carry none. */
  readonly record?: SensorReading;
  /**
   * A frame's readings as columns, for a consumer that copies them in bulk: reading i is key
   * `keyIndex[i]` of the frame's key table (engine key `engineKeys[k]`, machine and sensor in
   * `split[k]`; arrays shared by frames with the same key table, so a consumer can map them once).
   */
  readonly columns?: FrameReadingColumns;
  /** Engine key: `<machine_id>/<sensor_type>`. */
  key(i: number): string;
  machine(i: number): string;
  sensor(i: number): string;
  time(i: number): number;
  value(i: number): number;
}

export interface FrameReadingColumns {
  engineKeys: readonly string[];
  split: ReadonlyArray<readonly [string, string]>;
  keyIndex: Uint32Array;
  times: Float64Array;
  values: Float64Array;
  /** The columns are the decode target's own region (views of it): already in place, key indices still the frame's. */
  inTarget: boolean;
}

export interface InputCounts {
  messages: number;
  readings: number;
  /** Messages or frame readings rejected (each counts one), by reason. */
  deadLettered: number;
  byReason: Record<string, number>;
}

export class NatsInput {
  private readonly deadLetters: DeadLetterRouter;
  private messages = 0;
  private readings = 0;
  private readonly keyTables = new WeakMap<
    readonly string[],
    { split: ReadonlyArray<readonly [string, string]>; engineKeys: readonly string[] }
  >();

  constructor(
    nc: NatsConnection,
    site: string,
    private readonly limits: Readonly<DecodeLimits> = DEFAULT_DECODE_LIMITS,
  ) {
    if (limits.frameReadingsMax > FRAME_SEQ_STRIDE) {
      throw new RangeError(
        `frameReadingsMax is at most ${FRAME_SEQ_STRIDE} on the NATS input (a frame reading's seq is position × ${FRAME_SEQ_STRIDE} + index), got ${limits.frameReadingsMax}`,
      );
    }
    this.deadLetters = new DeadLetterRouter({ site, publish: natsDeadLetterPublish(nc) });
  }

  /**
   * The message's valid readings, or null when the whole message was dead-lettered. A frame whose
   * declared readings fit in `target` (from `target.at`) is decoded straight into it: its columns
   * are then views of the target's region (`columns.inTarget`), no column arrays of its own.
   */
  decode(subject: string, data: Uint8Array, target?: FrameTarget): MessageReadings | null {
    this.messages++;
    let parsed: SensorSubject;
    try {
      const s = parseSubject(unpartitioned(subject), this.limits);
      if (s.kind !== "sensor") throw new SubjectError(subject, `a ${s.kind} subject on the sensor input`);
      parsed = s;
    } catch (error) {
      this.deadLetters.reject({ subject, bytes: data, reason: reasonOf(error), error });
      return null;
    }
    try {
      if (sniffPayload(data) === "frame") return this.frameReadings(subject, parsed, data, target);
      const r = decodeRecord(data, { limits: this.limits, subject: parsed });
      this.readings++;
      const key = `${r.machine_id}/${r.sensor_type}`;
      return {
        length: 1,
        frame: false,
        record: r,
        key: () => key,
        machine: () => r.machine_id,
        sensor: () => r.sensor_type,
        time: () => r.timestamp,
        value: () => r.sensor_value,
      };
    } catch (error) {
      this.deadLetters.reject({ subject, bytes: data, reason: reasonOf(error), error });
      return null;
    }
  }

  /** A frame's valid readings (its rejected ones dead-lettered): into `target` when they fit, else in arrays of their own. */
  private frameReadings(subject: string, parsed: SensorSubject, data: Uint8Array, target: FrameTarget | undefined): MessageReadings {
    const options = { limits: this.limits, subject: parsed };
    const declared = frameReadingCount(data);
    const inTarget =
      target !== undefined &&
      declared >= 0 &&
      target.at + declared <= Math.min(target.times.length, target.values.length, target.keyIndex.length);
    let frame: { keys: readonly string[]; length: number; rejected: RejectedReading[] };
    let columns: Pick<FrameReadingColumns, "keyIndex" | "times" | "values">;
    if (inTarget) {
      frame = decodeFrameInto(data, target, options);
      const { at } = target;
      const end = at + frame.length;
      columns = {
        keyIndex: target.keyIndex.subarray(at, end),
        times: target.times.subarray(at, end),
        values: target.values.subarray(at, end),
      };
    } else {
      const f = decodeFrame(data, options);
      frame = f;
      // Zero-copy columns are views of the message bytes: copy them (in bulk) before the message goes.
      columns = { keyIndex: f.keyIndex, times: f.zeroCopy ? f.times.slice() : f.times, values: f.zeroCopy ? f.values.slice() : f.values };
    }
    if (frame.rejected.length > 0) {
      for (const reason of new Set(frame.rejected.map((r) => r.reason))) {
        this.deadLetters.reject({ subject, bytes: data, reason, readings: frame.rejected.filter((r) => r.reason === reason) });
      }
    }
    const { split, engineKeys } = this.keyTable(frame.keys);
    const { keyIndex, times, values } = columns;
    this.readings += frame.length;
    return {
      length: frame.length,
      frame: true,
      columns: { engineKeys, split, keyIndex, times, values, inTarget },
      key: (i) => engineKeys[keyIndex[i]],
      machine: (i) => split[keyIndex[i]][0],
      sensor: (i) => split[keyIndex[i]][1],
      time: (i) => times[i],
      value: (i) => values[i],
    };
  }

  /** Frames with the same key table share one (frozen) keys array: split it once. */
  private keyTable(keys: readonly string[]): { split: ReadonlyArray<readonly [string, string]>; engineKeys: readonly string[] } {
    let t = this.keyTables.get(keys);
    if (t === undefined) {
      const split = keys.map((k) => {
        const dot = k.indexOf(".");
        return [k.slice(0, dot), k.slice(dot + 1)] as const;
      });
      t = { split, engineKeys: split.map(([m, s]) => `${m}/${s}`) };
      this.keyTables.set(keys, t);
    }
    return t;
  }

  /** Undefined while a dead letter would be published now; else resolves once one would (DeadLetterRouter.room). */
  deadLetterRoom(): Promise<void> | undefined {
    return this.deadLetters.room();
  }

  counts(): InputCounts {
    const byReason = this.deadLetters.counts();
    const deadLettered = Object.values(byReason).reduce((a, b) => a + b, 0);
    return { messages: this.messages, readings: this.readings, deadLettered, byReason };
  }
}

/** The partition of a partitioned subject, or -1. */
export function partitionOf(subject: string): number {
  const t = subject.split(".");
  return t.length > 4 && t[2] === "p" && /^\d+$/.test(t[3]) ? Number(t[3]) : -1;
}
