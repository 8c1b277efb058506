/**
 * A C-MAPSS run-to-failure file replayed as a fleet of machines: unit N is machine `ENG-00N`,
 * and every operational cycle gives one reading per sensor (`sensor_type` s1…s21, `sensor_unit`
 * from CMAPSS_SENSORS, `operating_mode` "running") at event time T0 + cycle × cycleMs.
 *
 * Order: `fleet` (the default) runs the chosen units side by side, as a fleet does — cycle 1 of
 * every unit, then cycle 2 of every unit still running, …; a unit stops at its failure (its last
 * cycle in the file). `unit` runs them one after another: a unit's first cycle follows the
 * previous unit's last. Either way the readings come in event-time order, and each machine's
 * readings are its rows of the file, in file order, sensors s1…s21 within a cycle.
 *
 * Shifts (`shifts`, `--cmapss-shift s11:+0.5@100`): from the event time of the replay's cycle c on
 * (T0 + c · cycleMs: every unit's cycle c in fleet order, the replay's c-th cycle in unit order), a
 * sensor reads a constant more on every unit — a recalibrated or replaced sensor, the data drift a
 * model's inputs go through in a plant. It is how drift detection is shown on real data: the file as it is, then the
 * same file with one sensor moved by a known amount from a known cycle. The remaining useful life
 * (the ground truth) is the file's: a shift changes what is measured, not the engines.
 *
 * Non-goals: the operational settings are not replayed (they are conditions, not sensors), and
 * there is no noise or fault injection — the file is the ground truth.
 */
import { headers, type PubAck } from "nats";
import { connectNats } from "../nats/mod.js";
import { CMAPSS_SENSORS, type CmapssUnit } from "../files/mod.js";
import { encodeJsonRecord, encodeMsgpackRecord } from "../wire/mod.js";
import { ConfigError } from "../../engine/core/mod.js";

export interface CmapssFleetOptions {
  /** Units to replay, in file order; undefined: every unit of the file. */
  units?: readonly number[];
  /** Sensor names (s1…s21) to replay; undefined: all 21. */
  sensors?: readonly string[];
  /** Event time of one operational cycle. */
  cycleMs: number;
  /** T0: cycle c of a unit (fleet order) is at T0 + c · cycleMs. */
  startTime: number;
  order: CmapssOrder;
  /** Sensors read a constant more from a cycle on (none by default). */
  shifts?: readonly CmapssShift[];
}

/** Sensor `sensor` reads `delta` (its own units) more from the event time of the replay's cycle `fromCycle` on, on every unit. */
export interface CmapssShift {
  sensor: string;
  delta: number;
  fromCycle: number;
}

/** "s11:+0.5@100,s7:-2" → shifts (a shift without @ starts at cycle 1). ConfigError for anything else. */
export function parseCmapssShifts(text: string, flag = "--cmapss-shift"): CmapssShift[] {
  return text.split(",").map((part) => {
    const m = /^\s*(s\d{1,2})\s*:\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)\s*(?:@\s*(\d+))?\s*$/i.exec(part);
    if (m === null) throw new ConfigError(flag, `"${part}" is not SENSOR:DELTA[@CYCLE] (e.g. s11:+0.5@100)`);
    const sensor = m[1].toLowerCase();
    if (!CMAPSS_SENSORS.some((x) => x.name === sensor)) throw new ConfigError(flag, `"${sensor}" is not a C-MAPSS sensor (s1…s21)`);
    const fromCycle = m[3] === undefined ? 1 : Number(m[3]);
    if (fromCycle < 1) throw new ConfigError(flag, `"${part}": cycles start at 1`);
    return { sensor, delta: Number(m[2]), fromCycle };
  });
}

export type CmapssOrder = "fleet" | "unit";
export const CMAPSS_ORDERS: readonly CmapssOrder[] = ["fleet", "unit"];

/** One replayed sensor: its machine, sensor type and unit. The index in `keys()` is its key index. */
export interface CmapssKey {
  machine_id: string;
  sensor_type: string;
  sensor_unit: string;
}

/** A chunk of readings as parallel columns; `length` entries are valid. Reused by the next call. */
export interface CmapssColumns {
  length: number;
  keyIndex: Uint32Array;
  times: Float64Array;
  values: Float64Array;
  /** Always 0: "running" (a C-MAPSS unit runs every cycle until it fails). */
  modes: Uint8Array;
}

export const DEFAULT_CMAPSS_CYCLE_MS = 3_600_000;
export const CMAPSS_OPERATING_MODE = "running";
export const CMAPSS_PUBLISH_FORMATS = ["msgpack", "json"] as const;

/** Machine id of a C-MAPSS unit: `ENG-001` … (at least three digits). */
export function cmapssMachineId(unit: number): string {
  return `ENG-${String(unit).padStart(3, "0")}`;
}

/** "1-10", "1,3,7-9" → [1, …]: ascending, without repeats. ConfigError for anything else. */
export function parseUnitList(text: string, flag = "--cmapss-units"): number[] {
  const out = new Set<number>();
  for (const part of text.split(",").map((p) => p.trim())) {
    const m = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(part);
    if (m === null) throw new ConfigError(flag, `"${part}" is not a unit number or range (e.g. 1-10 or 1,3,7-9)`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (from < 1 || to < from) throw new ConfigError(flag, `"${part}" is not an ascending range of units ≥ 1`);
    if (to - from > 100_000) throw new ConfigError(flag, `"${part}" spans more units than any C-MAPSS file has`);
    for (let u = from; u <= to; u++) out.add(u);
  }
  return [...out].sort((a, b) => a - b);
}

export class CmapssFleet {
  readonly name = "cmapss";
  readonly options: Readonly<CmapssFleetOptions>;
  /** The replayed units, in file order. */
  readonly units: readonly CmapssUnit[];
  readonly modes: readonly string[] = [CMAPSS_OPERATING_MODE];
  private readonly keyList: CmapssKey[] = [];
  /** Sensor column (0–20) of each replayed sensor slot. */
  private readonly sensorColumns: number[];
  /** Emission order: step s is row rowOfStep[s] of unit unitOfStep[s], at time timeOfStep[s]. */
  private readonly unitOfStep: Uint32Array;
  private readonly rowOfStep: Uint32Array;
  private readonly timeOfStep: Float64Array;
  private step = 0;
  private slot = 0;
  private emitted = 0;
  private columns: CmapssColumns = allocateColumns(0);
  /** The shifts by sensor slot, from their event time. */
  private readonly shifts: ReadonlyArray<{ slot: number; delta: number; fromTime: number }>;

  /** `units`: the file's units (readCmapss); the options pick and order them. */
  constructor(all: readonly CmapssUnit[], options: CmapssFleetOptions) {
    if (!(options.cycleMs > 0 && Number.isFinite(options.cycleMs)))
      throw new ConfigError("--cycle", `must be a positive duration, got ${options.cycleMs} ms`);
    if (!Number.isFinite(options.startTime)) throw new ConfigError("--start", "must be a time");
    if (!CMAPSS_ORDERS.includes(options.order))
      throw new ConfigError("--cmapss-order", `must be one of ${CMAPSS_ORDERS.join(", ")}, got "${options.order}"`);
    this.options = Object.freeze({ ...options });
    this.units = pickUnits(all, options.units);
    this.sensorColumns = pickSensors(options.sensors);
    this.shifts = (options.shifts ?? []).map((sh) => {
      const slot = this.sensorColumns.findIndex((c) => CMAPSS_SENSORS[c].name === sh.sensor);
      if (slot < 0) throw new ConfigError("--cmapss-shift", `${sh.sensor} is not among the replayed sensors`);
      return { slot, delta: sh.delta, fromTime: options.startTime + sh.fromCycle * options.cycleMs };
    });
    for (const u of this.units) {
      for (const c of this.sensorColumns) {
        const s = CMAPSS_SENSORS[c];
        this.keyList.push({ machine_id: cmapssMachineId(u.unit), sensor_type: s.name, sensor_unit: s.unit });
      }
    }
    const steps = this.units.reduce((n, u) => n + u.cycles.length, 0);
    this.unitOfStep = new Uint32Array(steps);
    this.rowOfStep = new Uint32Array(steps);
    this.timeOfStep = new Float64Array(steps);
    this.planSteps();
  }

  /**
   * The true remaining useful life, in cycles, of machine `machineId` at event time `timeMs`:
   * its last cycle minus the cycle of that time. Ground truth only where a unit runs to failure —
   * the training files (train_FD00x.txt) do; a test file's units stop before it. null for a
   * machine or time outside the replay.
   */
  trueRulCycles(machineId: string, timeMs: number): number | null {
    const ui = this.units.findIndex((u) => cmapssMachineId(u.unit) === machineId);
    if (ui < 0) return null;
    const u = this.units[ui];
    const { order, startTime, cycleMs } = this.options;
    const offset = order === "unit" ? this.units.slice(0, ui).reduce((n, x) => n + x.cycles.length, 0) : 0;
    const cycle = Math.round((timeMs - startTime) / cycleMs) - offset;
    const last = u.cycles[u.cycles.length - 1];
    return cycle < u.cycles[0] || cycle > last ? null : last - cycle;
  }

  /** The sensors, machine-major in unit order, then s1…s21 (those replayed). */
  keys(): readonly CmapssKey[] {
    return this.keyList;
  }

  get done(): boolean {
    return this.step >= this.unitOfStep.length;
  }

  /** Readings in the whole replay. */
  get readingsTotal(): number {
    return this.unitOfStep.length * this.sensorColumns.length;
  }

  /** Event time of the first reading. */
  get firstTime(): number {
    return this.timeOfStep.length === 0 ? this.options.startTime : this.timeOfStep[0];
  }

  /**
   * How many readings lie at or before `eventMs` of event time after the first one (for pacing:
   * a run at speed x emits what is due after x · wall-clock time). A cycle is due whole.
   */
  readingsDueBy(eventMs: number): number {
    const t = this.firstTime + eventMs;
    // Steps are in time order: the count of steps with time ≤ t.
    let lo = 0;
    let hi = this.timeOfStep.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.timeOfStep[mid] <= t) lo = mid + 1;
      else hi = mid;
    }
    return lo * this.sensorColumns.length;
  }

  /** The next up to `max` readings; the returned columns are reused by the next call. */
  nextColumns(max: number): CmapssColumns {
    if (this.columns.keyIndex.length < max) this.columns = allocateColumns(max);
    const c = this.columns;
    const perRow = this.sensorColumns.length;
    let n = 0;
    while (n < max && this.step < this.unitOfStep.length) {
      const u = this.unitOfStep[this.step];
      const row = this.rowOfStep[this.step];
      const sensors = this.units[u].sensors;
      const t = this.timeOfStep[this.step];
      while (n < max && this.slot < perRow) {
        c.keyIndex[n] = u * perRow + this.slot;
        c.times[n] = t;
        c.values[n] = sensors[this.sensorColumns[this.slot]][row] + this.shiftAt(this.slot, t);
        c.modes[n] = 0;
        n++;
        this.slot++;
      }
      if (this.slot === perRow) {
        this.slot = 0;
        this.step++;
      }
    }
    c.length = n;
    this.emitted += n;
    return c;
  }

  /** What the shifts add to the sensor of `slot` at event time `t`. */
  private shiftAt(slot: number, t: number): number {
    let delta = 0;
    for (const sh of this.shifts) if (sh.slot === slot && t >= sh.fromTime) delta += sh.delta;
    return delta;
  }

  /** Readings emitted so far. */
  get readingsEmitted(): number {
    return this.emitted;
  }

  private planSteps(): void {
    const { order, startTime, cycleMs } = this.options;
    let s = 0;
    if (order === "unit") {
      let offset = 0;
      this.units.forEach((u, ui) => {
        for (let r = 0; r < u.cycles.length; r++, s++) {
          this.unitOfStep[s] = ui;
          this.rowOfStep[s] = r;
          this.timeOfStep[s] = startTime + (offset + u.cycles[r]) * cycleMs;
        }
        offset += u.cycles.length;
      });
      return;
    }
    const longest = this.units.reduce((m, u) => Math.max(m, u.cycles.length), 0);
    for (let r = 0; r < longest; r++) {
      this.units.forEach((u, ui) => {
        if (r >= u.cycles.length) return;
        this.unitOfStep[s] = ui;
        this.rowOfStep[s] = r;
        this.timeOfStep[s] = startTime + u.cycles[r] * cycleMs;
        s++;
      });
    }
  }
}

export interface CmapssPublishOptions {
  url: string;
  site: string;
  format: (typeof CMAPSS_PUBLISH_FORMATS)[number];
  /** Publish through JetStream and wait for the acks (a stream must capture the subjects). */
  jetstream: boolean;
  /** Readings per second at most (Infinity: as fast as the server takes them). */
  rate: number;
  /** JetStream publishes awaiting their ack at once. */
  inFlightMax: number;
}

/**
 * Publishes the fleet's readings as single records on `lw.<site>.sensor.<machine>.<sensor>`
 * (the subjects and fields `linewatch run --nats` consumes). With JetStream each message carries
 * `Nats-Msg-Id` `<site>:<machine>:<time>:<sensor>`, so a repeated replay inside the stream's
 * duplicate window is stored once.
 */
export async function publishCmapssFleet(
  fleet: CmapssFleet,
  o: CmapssPublishOptions,
): Promise<{ readings: number; seconds: number; duplicatesReported: number }> {
  if (!CMAPSS_PUBLISH_FORMATS.includes(o.format))
    throw new ConfigError(
      "--payload",
      `C-MAPSS readings are published as single records (${CMAPSS_PUBLISH_FORMATS.join(" or ")}), not "${o.format}"`,
    );
  const nc = await connectNats({ servers: o.url, name: "linewatch-simulate-cmapss" });
  const js = nc.jetstream();
  const keys = fleet.keys();
  const encode = o.format === "json" ? encodeJsonRecord : encodeMsgpackRecord;
  const t0 = performance.now();
  let readings = 0;
  let duplicates = 0;
  const acks: Array<Promise<PubAck>> = [];
  const settle = async (): Promise<void> => {
    for (const ack of await Promise.all(acks.splice(0))) if (ack.duplicate) duplicates++;
  };
  try {
    while (!fleet.done) {
      const c = fleet.nextColumns(4096);
      for (let i = 0; i < c.length; i++) {
        const k = keys[c.keyIndex[i]];
        const data = encode({
          machine_id: k.machine_id,
          sensor_type: k.sensor_type,
          timestamp: c.times[i],
          sensor_value: c.values[i],
          sensor_unit: k.sensor_unit,
          operating_mode: CMAPSS_OPERATING_MODE,
        });
        const subject = `lw.${o.site}.sensor.${k.machine_id}.${k.sensor_type}`;
        if (!o.jetstream) {
          nc.publish(subject, data);
          continue;
        }
        const h = headers();
        h.set("Nats-Msg-Id", `${o.site}:${k.machine_id}:${c.times[i]}:${k.sensor_type}`);
        acks.push(js.publish(subject, data, { headers: h }));
        if (acks.length >= o.inFlightMax) await settle();
      }
      readings += c.length;
      if (o.jetstream) await settle();
      else await nc.flush();
      if (Number.isFinite(o.rate)) {
        const ahead = (readings / o.rate) * 1000 - (performance.now() - t0);
        if (ahead > 0) await new Promise((r) => setTimeout(r, ahead));
      }
    }
    await settle();
    await nc.flush();
  } finally {
    await nc.drain();
  }
  return { readings, seconds: (performance.now() - t0) / 1000, duplicatesReported: duplicates };
}

function pickUnits(all: readonly CmapssUnit[], wanted: readonly number[] | undefined): CmapssUnit[] {
  if (wanted === undefined) return [...all];
  const byNo = new Map(all.map((u) => [u.unit, u]));
  const missing = wanted.filter((n) => !byNo.has(n));
  if (missing.length > 0) {
    const nos = all.map((u) => u.unit);
    throw new ConfigError(
      "--cmapss-units",
      `unit(s) ${missing.slice(0, 10).join(", ")}${missing.length > 10 ? " …" : ""} not in the file (it has units ${Math.min(...nos)}–${Math.max(...nos)})`,
    );
  }
  if (wanted.length === 0) throw new ConfigError("--cmapss-units", "name at least one unit");
  const set = new Set(wanted);
  return all.filter((u) => set.has(u.unit));
}

function pickSensors(names: readonly string[] | undefined): number[] {
  if (names === undefined) return CMAPSS_SENSORS.map((_, i) => i);
  const cols = names.map((n) => {
    const i = CMAPSS_SENSORS.findIndex((s) => s.name === n);
    if (i < 0) throw new ConfigError("--sensors", `"${n}" is not a C-MAPSS sensor (s1…s21)`);
    return i;
  });
  if (cols.length === 0) throw new ConfigError("--sensors", "name at least one sensor");
  if (new Set(cols).size !== cols.length) throw new ConfigError("--sensors", "a sensor is named twice");
  return cols.sort((a, b) => a - b);
}

function allocateColumns(capacity: number): CmapssColumns {
  return {
    length: 0,
    keyIndex: new Uint32Array(capacity),
    times: new Float64Array(capacity),
    values: new Float64Array(capacity),
    modes: new Uint8Array(capacity),
  };
}
