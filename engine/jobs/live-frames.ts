/**
 * The scored readings of a run on this thread (simulator, C-MAPSS, `run --nats --ingest-workers 0`,
 * `demo`) as score frames on the live machine topics, paced, plus a bounded recent history per key
 * for a screen opened later.
 *
 * Before, each reading went out as its own JSON message on `machine/<id>`: 1,200 messages a second
 * at 20 machines × 6 sensors × 10 Hz, each a JSON text. Now the rows of each machine wait in a
 * bounded buffer and leave as one score frame (connectors/wire/score-frame.ts, the same binary
 * layout the ingest workers publish) every `flushIntervalMs` — 4 messages a second per machine at
 * the default 250 ms — or as soon as `rowsPerFrameMax` rows wait. A subscriber gets every reading,
 * exact doubles, in its machine's order.
 *
 * History: the last `historyPerKey` readings of each frame key (`<machine_id>.<sensor_type>`),
 * `HISTORY_COLUMNS` only (what a chart draws), for at most `historyKeysMax` keys (later keys are
 * not kept, and counted); `historyFrame(machine)` gives them as one score frame.
 */
import { encodeScoreFrame } from "../../connectors/wire/mod.js";

export interface LiveFramesOptions {
  flushIntervalMs: number;
  rowsPerFrameMax: number;
  historyPerKey: number;
  historyKeysMax: number;
}

export const DEFAULT_LIVE_FRAMES: Readonly<LiveFramesOptions> = Object.freeze({
  flushIntervalMs: 250,
  rowsPerFrameMax: 2048,
  historyPerKey: 600,
  historyKeysMax: 2048,
});

/** The columns the history keeps, when the run has them: the chart's value series, limits, rule masks and drift statistics. */
export const HISTORY_COLUMNS: readonly string[] = Object.freeze([
  "mean",
  "cl",
  "ucl",
  "lcl",
  "we_mask",
  "nelson_mask",
  "mr_mask",
  "cusum_pos",
  "cusum_neg",
  "cusum_alarm",
  "spc_ewma",
  "ewma_ucl",
  "ewma_lcl",
  "ewma_alarm",
]);

/** The rows of one machine waiting for its next frame. */
class PendingRows {
  readonly keys: string[] = [];
  private readonly keyIndexOf = new Map<string, number>();
  readonly keyIndex: Uint32Array;
  readonly times: Float64Array;
  readonly values: Float64Array;
  /** Row-major: row i's columns at [i·m, (i+1)·m). */
  readonly cols: Float64Array;
  length = 0;

  constructor(
    readonly capacity: number,
    readonly m: number,
  ) {
    this.keyIndex = new Uint32Array(capacity);
    this.times = new Float64Array(capacity);
    this.values = new Float64Array(capacity);
    this.cols = new Float64Array(capacity * m);
  }

  indexOf(key: string): number {
    let k = this.keyIndexOf.get(key);
    if (k === undefined) {
      k = this.keys.length;
      this.keys.push(key);
      this.keyIndexOf.set(key, k);
    }
    return k;
  }

  clear(): void {
    this.length = 0;
    this.keys.length = 0;
    this.keyIndexOf.clear();
  }
}

/** The last `capacity` readings of one key (a ring), history columns only. */
class KeyHistory {
  readonly times: Float64Array;
  readonly values: Float64Array;
  readonly cols: Float64Array;
  next = 0;
  count = 0;

  constructor(
    readonly capacity: number,
    readonly h: number,
  ) {
    this.times = new Float64Array(capacity);
    this.values = new Float64Array(capacity);
    this.cols = new Float64Array(capacity * h);
  }
}

/**
 * Rows of ml_scores (ClickHouseSink.recentScores: `sensor_type`, `time` and the history columns,
 * newest first per sensor) as a history frame of `machineId`: oldest first per key, null → NaN.
 */
export function historyFrameOfRows(machineId: string, rows: ReadonlyArray<Record<string, unknown>>): Uint8Array {
  const keys: string[] = [];
  const bySensor = new Map<string, Array<Record<string, unknown>>>();
  for (const r of rows) {
    const sensor = String(r.sensor_type);
    let list = bySensor.get(sensor);
    if (list === undefined) {
      bySensor.set(sensor, (list = []));
      keys.push(`${machineId}.${sensor}`);
    }
    list.push(r);
  }
  const ordered = [...bySensor.values()].flatMap((list) => list.reverse());
  const n = ordered.length;
  const num = (v: unknown) => (v === null || v === undefined ? Number.NaN : Number(v));
  const keyIndex = new Uint32Array(n);
  let at = 0;
  [...bySensor.values()].forEach((list, k) => {
    for (let j = 0; j < list.length; j++) keyIndex[at++] = k;
  });
  return encodeScoreFrame({
    keys,
    keyIndex,
    times: Float64Array.from(ordered, (r) => num(r.time)),
    values: Float64Array.from(ordered, (r) => num(r.value)),
    columns: HISTORY_COLUMNS.map((c) => [c, Float64Array.from(ordered, (r) => num(r[c]))] as const),
    length: n,
  });
}

export class LiveFrames {
  private readonly pending = new Map<string, PendingRows>();
  private readonly history = new Map<string, KeyHistory>();
  private readonly historyKeysOf = new Map<string, string[]>();
  /** For each history column, its index among the frame columns. */
  private readonly historyFrom: number[];
  private readonly historyNames: string[];
  private readonly timer: NodeJS.Timeout;
  /** Readings of keys past `historyKeysMax`, published but not kept. */
  historyUnkept = 0;

  constructor(
    readonly columnNames: readonly string[],
    private readonly publish: (machineId: string, frame: Uint8Array) => void,
    private readonly o: LiveFramesOptions = DEFAULT_LIVE_FRAMES,
  ) {
    this.historyNames = HISTORY_COLUMNS.filter((c) => columnNames.includes(c));
    this.historyFrom = this.historyNames.map((c) => columnNames.indexOf(c));
    this.timer = setInterval(() => this.flush(), o.flushIntervalMs);
    this.timer.unref();
  }

  /** One scored reading; `rows`: the output rows of the analyses whose columns are named, in `columnNames` order. */
  add(machineId: string, frameKey: string, time: number, value: number, rows: readonly Float64Array[]): void {
    const m = this.columnNames.length;
    let p = this.pending.get(machineId);
    if (p === undefined) {
      p = new PendingRows(this.o.rowsPerFrameMax, m);
      this.pending.set(machineId, p);
    }
    const i = p.length++;
    p.keyIndex[i] = p.indexOf(frameKey);
    p.times[i] = time;
    p.values[i] = value;
    let c = i * m;
    for (const row of rows) for (let f = 0; f < row.length; f++) p.cols[c++] = row[f];
    this.remember(machineId, frameKey, time, value, p.cols, i * m);
    if (p.length === p.capacity) this.flushMachine(machineId, p);
  }

  /** Publishes every machine's waiting rows as one frame each. */
  flush(): void {
    for (const [machine, p] of this.pending) if (p.length > 0) this.flushMachine(machine, p);
  }

  /** The machine's history as one score frame (history columns only), or null when none is kept. */
  historyFrame(machineId: string): Uint8Array | null {
    const keys = this.historyKeysOf.get(machineId);
    if (keys === undefined) return null;
    let n = 0;
    for (const k of keys) n += (this.history.get(k) as KeyHistory).count;
    const h = this.historyNames.length;
    const keyIndex = new Uint32Array(n);
    const times = new Float64Array(n);
    const values = new Float64Array(n);
    const columns = this.historyNames.map(() => new Float64Array(n));
    let at = 0;
    keys.forEach((key, k) => {
      const r = this.history.get(key) as KeyHistory;
      // Oldest first: the ring's start is `next` once it has wrapped.
      const start = r.count < r.capacity ? 0 : r.next;
      for (let j = 0; j < r.count; j++, at++) {
        const s = (start + j) % r.capacity;
        keyIndex[at] = k;
        times[at] = r.times[s];
        values[at] = r.values[s];
        for (let c = 0; c < h; c++) columns[c][at] = r.cols[s * h + c];
      }
    });
    return encodeScoreFrame({
      keys,
      keyIndex,
      times,
      values,
      columns: this.historyNames.map((name, c) => [name, columns[c]] as const),
      length: n,
    });
  }

  /** Publishes what waits and stops the timer. */
  close(): void {
    clearInterval(this.timer);
    this.flush();
  }

  private flushMachine(machineId: string, p: PendingRows): void {
    const n = p.length;
    const m = this.columnNames.length;
    const columns = this.columnNames.map((name, c) => {
      const col = new Float64Array(n);
      for (let i = 0; i < n; i++) col[i] = p.cols[i * m + c];
      return [name, col] as const;
    });
    const frame = encodeScoreFrame({
      keys: p.keys,
      keyIndex: p.keyIndex.subarray(0, n),
      times: p.times.subarray(0, n),
      values: p.values.subarray(0, n),
      columns,
      length: n,
    });
    p.clear();
    this.publish(machineId, frame);
  }

  private remember(machineId: string, frameKey: string, time: number, value: number, cols: Float64Array, at: number): void {
    let r = this.history.get(frameKey);
    if (r === undefined) {
      if (this.history.size >= this.o.historyKeysMax) {
        this.historyUnkept++;
        return;
      }
      r = new KeyHistory(this.o.historyPerKey, this.historyNames.length);
      this.history.set(frameKey, r);
      const keys = this.historyKeysOf.get(machineId) ?? [];
      keys.push(frameKey);
      this.historyKeysOf.set(machineId, keys);
    }
    const s = r.next;
    r.times[s] = time;
    r.values[s] = value;
    const h = this.historyFrom.length;
    for (let c = 0; c < h; c++) r.cols[s * h + c] = cols[at + this.historyFrom[c]];
    r.next = (s + 1) % r.capacity;
    if (r.count < r.capacity) r.count++;
  }
}
