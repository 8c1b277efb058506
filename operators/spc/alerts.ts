/**
 * Alert episodes for people from the SPC rows of each key. The per-record masks stay unfolded in
 * the output; here the firings of a key fold into episodes, one per key and rule family
 * ({@link ALERT_FAMILIES}): an episode opens at the family's first firing on the key, takes in
 * every later firing of the family (rules seen, firings, highest severity, last firing), and
 * closes once the key has had `closeAfter` consecutive readings without a firing of the family
 * (hysteresis: a faulty sensor that fires every few readings stays one episode).
 *
 * Counting is by the key's readings with limits (the rows the tracker observes), never by wall
 * clock, so the same stream gives the same episodes — and, with {@link EpisodeTracker.saveKeys}
 * in a checkpoint, a restart continues them. Events: `opened`, `updated` (at a firing that
 * changed the episode, at most once per `updateIntervalMs` of event time — at once when it
 * escalates the episode: a rule new to it, or a higher severity), `closed` (at the closing
 * reading), `acknowledged` (a person's, through the API).
 *
 * WE1–3 and Nelson 1, 5, 6 test the same patterns; one condition is raised for each such pair,
 * named after the Western Electric rule.
 */
import { ConfigError } from "../../engine/core/web.js";
import {
  DEFAULT_SPC_PARAMS,
  jumpDescription,
  MR_RULES,
  NELSON_RULES,
  SPC_COL,
  SPC_OUT_FIELDS,
  type SpcParams,
  WE_RULES,
  type SpcRule,
} from "./layout.js";
import { EpisodeIdPrefix, type EpisodeIdWords, hexId, hexWord } from "./episode-id.js";
import { FiredConditions } from "./fired-conditions.js";

export { episodeId } from "./episode-id.js";

export type AlertSeverity = "low" | "medium" | "high";

/**
 * The rule families: an episode per key and family. `level`: the mean moved; `variation`: the
 * spread or the pattern changed. One table, so it can be tuned in one place; every rule the
 * tracker knows must be in exactly one family.
 */
export const ALERT_FAMILIES: Readonly<Record<string, readonly string[]>> = Object.freeze({
  level: ["WE1", "WE2", "WE3", "WE4", "N1", "N2", "N3", "N5", "N6", "CUSUM", "EWMA", "JUMP", "STEP"],
  variation: ["N4", "N7", "N8", "NOISY", "STUCK"],
});

/** Readings without a firing of its family after which an episode closes (`--episode-close-after`). */
export const DEFAULT_EPISODE_CLOSE_AFTER = 50;
/** Event time between two `updated` events of one episode at least (`--episode-update-interval`). */
export const DEFAULT_EPISODE_UPDATE_INTERVAL_MS = 10_000;

export interface EpisodeSettings {
  /** Family name → rule names ({@link ALERT_FAMILIES}). */
  families: Readonly<Record<string, readonly string[]>>;
  closeAfter: number;
  updateIntervalMs: number;
  /**
   * How many leading parts of a key (`a/b/…`) name its sensor, when keys with more parts are one
   * sensor's charts per operating mode (`M-001/temperature/running`, `…/idle`, `…/settling`: 2).
   * One of them is fed at a time, so when a sensor's rows move to another key (the machine
   * changed mode) the episodes open on the key it left close, at that key's last reading — an
   * alarm of a mode the machine has left is no longer a person's to act on (state-based
   * alarming). Undefined: keys are independent.
   */
  sensorKeyParts?: number;
}

export const DEFAULT_EPISODE_SETTINGS: EpisodeSettings = Object.freeze({
  families: ALERT_FAMILIES,
  closeAfter: DEFAULT_EPISODE_CLOSE_AFTER,
  updateIntervalMs: DEFAULT_EPISODE_UPDATE_INTERVAL_MS,
});

export interface AlertPoint {
  position: number;
  time: number;
  value: number;
}

export type EpisodeEventKind = "opened" | "updated" | "closed" | "acknowledged";

/** One event of an episode: the episode's whole state after it (flat, JSON as is). */
export interface AlertEpisodeEvent {
  type: "alert_episode";
  event: EpisodeEventKind;
  /** Deterministic from the stream: key, family, opening time and position ({@link episodeId}). */
  episode_id: string;
  key: string;
  /** The key's parts by name (e.g. machine_id, sensor_type) where the caller knows them. */
  fields: Record<string, string>;
  family: string;
  /** Rules fired so far, in the order first seen. */
  rules: string[];
  first_rule: string;
  /** The first rule's description. */
  description: string;
  /** The highest severity of its rules. */
  severity: AlertSeverity;
  opened_at: number;
  last_fired_at: number;
  /** The reading at which it closed (`closeAfter` quiet readings after the last firing); null while open. */
  closed_at: number | null;
  /** Readings of the key at which a rule of the family fired. */
  firings: number;
  /** The key's limits at the opening. */
  limits_version: number;
  cl: number;
  sigma: number;
  /** The points of the first rule's pattern at the opening, oldest first. */
  points: AlertPoint[];
  acknowledged_at: number | null;
  acknowledged_by: string | null;
  ack_note: string | null;
}

/** One alertable condition: a rule bit in one of the masks, or a drift alarm. */
export interface Condition {
  name: string;
  description: string;
  severity: AlertSeverity;
  /** Row column holding the bit or flag, and the bit (0 for a 0/1 flag column). */
  column: number;
  bit: number;
  window: number;
}

const SEVERITY: Record<string, AlertSeverity> = {
  WE1: "high",
  WE2: "medium",
  WE3: "medium",
  WE4: "low",
  N2: "low",
  N3: "medium",
  N4: "low",
  N7: "low",
  N8: "medium",
  CUSUM: "medium",
  EWMA: "medium",
  JUMP: "high",
  NOISY: "medium",
  STUCK: "medium",
  STEP: "medium",
};

const SEVERITY_RANK: Record<AlertSeverity, number> = { low: 0, medium: 1, high: 2 };

/** Nelson rules with a Western Electric twin (same pattern): N1 = WE1, N5 = WE2, N6 = WE3. */
const NELSON_WITH_TWIN = new Set([1, 5, 6]);

/** Each rule's points as configured: the run length of a run rule, r + 1 values for r moving ranges. */
export function conditionWindows(params: SpcParams): { we: number[]; nelson: number[]; mr: number[] } {
  const points = (r: SpcRule): number => (r.runParam ? params[r.runParam] : r.window);
  return {
    we: WE_RULES.map(points),
    nelson: NELSON_RULES.map(points),
    mr: MR_RULES.map((r) => (r.runParam ? params[r.runParam] + 1 : r.window)),
  };
}

/**
 * The alert conditions, in a fixed order (an episode keeps its rules as bits of this order, in
 * checkpoints too: new conditions go at the end). `windows`: each rule's points as configured
 * ({@link conditionWindows}); the moving-range rules' default to their defaults' when left out.
 * `params.jumpLimit` names JUMP's limit in its text.
 */
export function alertConditions(
  windows: { we: number[]; nelson: number[]; mr?: number[] },
  params: Pick<SpcParams, "jumpLimit"> = DEFAULT_SPC_PARAMS,
): Condition[] {
  const conditions: Condition[] = [];
  const rule = (r: SpcRule, column: number, window: number): Condition => ({
    name: r.name,
    // A run rule's text names its run length as configured ("21 points in a row …"), not the default.
    description: r.runParam ? r.description.replace(/^\d+/, String(window)) : r.description,
    severity: SEVERITY[r.name],
    column,
    bit: r.bit,
    window,
  });
  WE_RULES.forEach((r, i) => conditions.push(rule(r, SPC_COL.we_mask, windows.we[i])));
  NELSON_RULES.forEach((r, i) => {
    if (!NELSON_WITH_TWIN.has(r.number)) conditions.push(rule(r, SPC_COL.nelson_mask, windows.nelson[i]));
  });
  const flag = (name: string, description: string, column: number): Condition => ({
    name,
    description,
    severity: "medium",
    column,
    bit: 0,
    window: 1,
  });
  conditions.push(
    flag("CUSUM", "tabular CUSUM beyond its decision interval", SPC_COL.cusum_alarm),
    flag("EWMA", "EWMA statistic outside its control limits", SPC_COL.ewma_alarm),
  );
  MR_RULES.forEach((r, i) => {
    const window = windows.mr?.[i] ?? r.window;
    const description = r.name === "JUMP" ? jumpDescription(params.jumpLimit) : r.description.replace(/^\d+/, String(window - 1));
    conditions.push({ name: r.name, description, severity: SEVERITY[r.name], column: SPC_COL.mr_mask, bit: r.bit, window });
  });
  return conditions;
}

/** Longest pattern window, i.e. how many recent points per key the tracker keeps. */
const POINTS_KEPT = 32;

/** An open episode: its event members, its id as numbers, and what rate-limits its updates. */
interface Episode extends SunkEpisode {
  event: AlertEpisodeEvent;
  /** Condition bits of `rules`. */
  ruleBits: number;
  /**
   * Event time of its last `opened` or `updated` event. Every fold changes the episode (its
   * firings at least), so an update is due at a fold once the interval has passed.
   */
  emittedAt: number;
}

/** An episode of `event`'s state (restored or new): its id's words read from the id's text (−1: not 16 hex digits). */
function episodeOf(event: AlertEpisodeEvent, ruleBits: number, emittedAt: number): Episode {
  const id = event.episode_id;
  const hi = id.length === 16 ? hexWord(id, 0) : -1;
  const lo = hi >= 0 ? hexWord(id, 8) : -1;
  return { event, ruleBits, emittedAt, idHi: lo >= 0 ? hi : -1, idLo: lo >= 0 ? lo : -1, sinkData: undefined };
}

/** The columns of a chunk of rows that {@link EpisodeTracker.observeChunk} reads (each at least `length` long). */
export interface ChunkColumns {
  length: number;
  keyIds: Uint32Array;
  positions: Float64Array;
  times: Float64Array;
  values: Float64Array;
}

const INT32_MAX = 2 ** 31 - 1;
const NO_ROWS: Float64Array = new Float64Array(0);
const NO_CHUNK: ChunkColumns = { length: 0, keyIds: new Uint32Array(0), positions: NO_ROWS, times: NO_ROWS, values: NO_ROWS };

/** A key's episode state in a checkpoint (JSON; NaN as null). */
export interface KeyEpisodesState {
  key: string;
  readings: number;
  /** Per family (table order): reading number of its last firing. */
  lastFired: number[];
  /** The key's recent points, oldest first: position, time, value. */
  points: Array<number | null>;
  episodes: Array<{ event: AlertEpisodeEvent; ruleBits: number; emittedAt: number } | null>;
}

/**
 * Where a tracker's events go without an object each: at each event the sink reads the episode's
 * live state (the tracker's own — read it then and there, keep none of it) and the event's kind.
 * An ingest worker's {@link AlertEncoder} is one: it writes the numbers straight from the state,
 * where a copy of the event per event was most of the alert path's time.
 */
export interface EpisodeEventSink {
  write(episode: SunkEpisode, kind: EpisodeEventKind): void;
}

/** What a sink is given of an episode at each of its events. */
export interface SunkEpisode {
  /** The episode's state: its event's members (the state's own `event` member is not this event's kind). */
  readonly event: Readonly<AlertEpisodeEvent>;
  /** episode_id as its two 32-bit words (hexId(idHi, idLo) is its text); both −1 when it is not 16 hex digits. */
  readonly idHi: number;
  readonly idLo: number;
  /**
   * The sink's own, per episode (undefined at first), for what it derives once from the members
   * an episode never changes (AlertEncoder: their numbers); the tracker never reads it.
   */
  sinkData: unknown;
}

/** The outcome of an acknowledgement. */
export type AckResult = { ok: true; event: AlertEpisodeEvent } | { ok: false; reason: "unknown" | "already" };

export class EpisodeTracker {
  opened = 0;
  closed = 0;
  /** Events emitted (all kinds). */
  events = 0;
  private readonly familyNames: string[];
  /** Family index of each condition. */
  private readonly familyOf: Int32Array;
  /** The conditions firing on a row. */
  private readonly fired: FiredConditions;
  private readonly F: number;
  /** Per (key id · F + family): the open episode, undefined when none. */
  private episodes: Array<Episode | undefined> = [];
  /** Per (key id · F + family): the hashed key and family its episodes' ids start from. */
  private readonly idPrefixes: Array<EpisodeIdPrefix | undefined> = [];
  private openNow = 0;
  /** Per (key id · F + family): the key's reading number at the family's last firing. */
  private lastFired = new Float64Array(0);
  /** Per key: readings observed (with limits), and the reading number at which its next episode closes (∞: none open). */
  private readings = new Float64Array(0);
  private closeAt = new Float64Array(0);
  /**
   * Every key's ring of its last POINTS_KEPT points, (position, time, value) per slot, key after
   * key; `next` is where a key's next point goes, `filled` how many it holds. Flat typed arrays:
   * the chunk pass writes a point with no object touched.
   */
  private ring = new Float64Array(0);
  private next = new Int32Array(0);
  private filled = new Int32Array(0);
  private readonly keyNames: string[] = [];
  /** Per key id: its sensor's id (−1: not seen yet); per sensor id: the key its rows go to now. */
  private sensorOf = new Int32Array(0);
  private readonly sensorIds = new Map<string, number>();
  private readonly activeKey: number[] = [];
  /**
   * The chunk {@link observeChunk} is in, whose points go into the rings only when read
   * ({@link settle}): per key, `seen` the chunk's serial when it has rows in it (listed in
   * `touched`), `lastRow` its latest row observed so far, `recordedTo` the first of its rows not
   * in its ring yet; per row, `prevRow` the key's row before it in the chunk (−1: none).
   */
  private readonly chunkNow = { serial: 0, chunk: NO_CHUNK, touched: [] as number[] };
  private seen = new Int32Array(0);
  private lastRow = new Int32Array(0);
  private recordedTo = new Int32Array(0);
  /** Per key: 1 once a row of it with limits is seen in the chunk (the rest of its rows there have them too). */
  private limited = new Uint8Array(0);
  private prevRow = new Int32Array(0);
  /** Rows of one key being settled, newest first. */
  private readonly settling = new Int32Array(POINTS_KEPT);

  constructor(
    private readonly conditions: readonly Condition[],
    private readonly settings: EpisodeSettings,
    /** A function receives a copy of each event (its own); a sink reads the live state. */
    private readonly emit: ((event: AlertEpisodeEvent) => void) | EpisodeEventSink,
    /** A key's fields for its episodes' state: the tracker never changes them (one object per key will do). */
    private readonly keyFields: (key: string) => Readonly<Record<string, string>>,
  ) {
    if (!(Number.isInteger(settings.closeAfter) && settings.closeAfter >= 1))
      throw new ConfigError("--episode-close-after", `must be an integer ≥ 1, got ${settings.closeAfter}`);
    if (!(settings.updateIntervalMs >= 0))
      throw new ConfigError("--episode-update-interval", `must be ≥ 0, got ${settings.updateIntervalMs}`);
    this.familyNames = Object.keys(settings.families);
    this.F = this.familyNames.length;
    this.familyOf = Int32Array.from(conditions, (c) => familyIndex(settings.families, this.familyNames, c.name));
    this.fired = new FiredConditions(conditions);
  }

  /** Episodes open now, over all keys. */
  get open(): number {
    return this.openNow;
  }

  /** The episodes open now, by key id and family order (for the API of a run without workers, and checks). */
  openEpisodes(): AlertEpisodeEvent[] {
    const out: AlertEpisodeEvent[] = [];
    for (const e of this.episodes) if (e !== undefined) out.push(copyEvent(e.event));
    return out;
  }

  /**
   * Feeds one SPC row of a key (rows of a key in order): its point into the ring, the reading
   * counted, the row decided when it fires, and the key's episodes closed that are due.
   */
  observe(keyId: number, key: string, row: Float64Array, position: number, time: number, value: number): void {
    if (keyId >= this.next.length) this.grow(keyId);
    this.keyNames[keyId] = key;
    this.followSensor(keyId, key);
    this.record(keyId, position, time, value);
    const n = ++this.readings[keyId];
    if (isLoud(row, 0)) this.decide(keyId, key, row, 0, time, position);
    if (n === this.closeAt[keyId]) this.closeDue(keyId, time);
  }

  /**
   * A finished chunk's SPC rows (`rows`, SPC_OUT_FIELDS f64 each, rule masks already as reported),
   * given the kernel's event list: the indices of every row that is loud or follows a loud row of
   * its key (kernels/spc.ts). A row off the list is quiet, so there `observe` only records the
   * point, counts the reading and closes what is due: here such a row is counted and compared
   * with its key's close, and linked to the key's previous row; only the listed rows are decided
   * — the same events, in the same order, as `observe` on every row. Points go into a key's ring
   * only when it is read (an opening's context, a mode change) and at the chunk's end, following
   * the key's links back: only its last POINTS_KEPT rows, the ones the ring would hold after
   * recording each. Rows without limits (limits_version 0) are not observed, as `observe`'s
   * callers skip them. A key's rows in one chunk are some without limits, then the rest with
   * them, as the SPC kernel writes them: within a task it sets a key's limits, never clears them
   * (a change from outside waits until no task runs); so a row's version is read only until its
   * key's first row with limits in the chunk — reading every row's was most of this pass.
   */
  observeChunk(
    chunk: ChunkColumns,
    rows: Float64Array,
    events: Uint32Array,
    keyName: (keyId: number) => string,
    beforeDecide?: (i: number) => void,
  ): void {
    const { keyIds, positions, times } = chunk;
    const follows = this.settings.sensorKeyParts !== undefined;
    const F = SPC_OUT_FIELDS;
    const version = SPC_COL.limits_version;
    const serial = this.startChunk(chunk);
    // The per-key arrays in locals (a call in the loop replaces them only by growing them).
    const prevRow = this.prevRow;
    let { readings, closeAt, seen, lastRow, limited } = this;
    let e = 0;
    let next = events.length > 0 ? events[0] : chunk.length;
    for (let i = 0; i < chunk.length; i++) {
      const listed = i === next;
      if (listed) next = ++e < events.length ? events[e] : chunk.length;
      const keyId = keyIds[i];
      if (keyId >= readings.length) {
        this.grow(keyId);
        ({ readings, closeAt, seen, lastRow, limited } = this);
      }
      if (seen[keyId] !== serial) this.touch(keyId, serial);
      if (limited[keyId] === 0) {
        if (!(rows[i * F + version] > 0)) continue;
        limited[keyId] = 1;
      }
      prevRow[i] = lastRow[keyId];
      lastRow[keyId] = i;
      if (follows && (this.sensorOf[keyId] < 0 || this.activeKey[this.sensorOf[keyId]] !== keyId)) this.followSensor(keyId, keyName(keyId));
      const n = ++readings[keyId];
      if (listed) {
        beforeDecide?.(i);
        if (isLoud(rows, i * F)) this.decide(keyId, keyName(keyId), rows, i * F, times[i], positions[i]);
      }
      if (n === closeAt[keyId]) this.closeDue(keyId, times[i]);
    }
    for (const keyId of this.chunkNow.touched) this.settle(keyId);
    this.chunkNow.chunk = NO_CHUNK;
  }

  /** A new chunk's serial; room for its rows' links. */
  private startChunk(chunk: ChunkColumns): number {
    const c = this.chunkNow;
    c.chunk = chunk;
    c.touched.length = 0;
    if (this.prevRow.length < chunk.length) this.prevRow = new Int32Array(Math.max(chunk.length, 2 * this.prevRow.length));
    // A serial a key may still hold from long ago is never reused: on wrapping, every key's is cleared.
    if (c.serial === INT32_MAX) {
      this.seen.fill(0);
      c.serial = 0;
    }
    return ++c.serial;
  }

  /** The key's first row in this chunk: none of its rows linked or recorded yet, none with limits seen. */
  private touch(keyId: number, serial: number): void {
    this.seen[keyId] = serial;
    this.limited[keyId] = 0;
    this.lastRow[keyId] = -1;
    this.recordedTo[keyId] = 0;
    this.chunkNow.touched.push(keyId);
  }

  /**
   * A person's acknowledgement of an open episode, applied in stream order by the thread that
   * owns the key: the episode keeps it (its later events carry it) and an `acknowledged` event
   * goes out. `at` is the acknowledgement's time (wall clock: a person's act).
   */
  acknowledge(episode: string, at: number, by: string | null, note: string | null): AckResult {
    const e = this.episodeById(episode);
    if (e === undefined) return { ok: false, reason: "unknown" };
    if (e.event.acknowledged_at !== null) return { ok: false, reason: "already" };
    e.event.acknowledged_at = at;
    e.event.acknowledged_by = by;
    e.event.ack_note = note;
    this.send(e, "acknowledged");
    const out = copyEvent(e.event);
    out.event = "acknowledged";
    return { ok: true, event: out };
  }

  /** Whether the episode is open here (the thread to send its acknowledgement to). */
  hasEpisode(episode: string): boolean {
    return this.episodeById(episode) !== undefined;
  }

  /**
   * The open episode of that id, by a look at each open one: acknowledgements are a person's
   * acts, episodes open every hundred readings or so — a map of ids kept at each opening and
   * closing cost more than these look-ups.
   */
  private episodeById(episode: string): Episode | undefined {
    for (const e of this.episodes) if (e !== undefined && e.event.episode_id === episode) return e;
    return undefined;
  }

  /** The episode state of the named keys (those seen), for a checkpoint. */
  saveKeys(keys: readonly string[], keyIdOf: (key: string) => number): KeyEpisodesState[] {
    const out: KeyEpisodesState[] = [];
    for (const key of keys) {
      const id = keyIdOf(key);
      if (id < 0 || id >= this.next.length || this.readings[id] === 0) continue;
      const episodes = Array.from({ length: this.F }, (_, f) => {
        const e = this.episodes[id * this.F + f];
        return e === undefined ? null : { event: copyEvent(e.event), ruleBits: e.ruleBits, emittedAt: e.emittedAt };
      });
      const points = this.recentPoints(id, POINTS_KEPT).flatMap((p) => [p.position, p.time, p.value].map(nullable));
      const lastFired = Array.from(this.lastFired.subarray(id * this.F, (id + 1) * this.F));
      out.push({ key, readings: this.readings[id], lastFired, points, episodes });
    }
    return out;
  }

  /** Restores keys saved by {@link saveKeys} (before any of their rows is observed); the episodes open in them. */
  restoreKeys(state: readonly KeyEpisodesState[], keyIdOf: (key: string) => number): AlertEpisodeEvent[] {
    const restored: AlertEpisodeEvent[] = [];
    for (const s of state) {
      const id = keyIdOf(s.key);
      if (id < 0) continue;
      if (id >= this.next.length) this.grow(id);
      this.keyNames[id] = s.key;
      this.readings[id] = s.readings;
      for (let j = 0; j + 2 < s.points.length; j += 3)
        this.record(id, unnull(s.points[j]), unnull(s.points[j + 1]), unnull(s.points[j + 2]));
      for (let f = 0; f < this.F; f++) {
        this.lastFired[id * this.F + f] = s.lastFired[f] ?? 0;
        const saved = s.episodes[f];
        if (saved === null || saved === undefined) continue;
        const event = copyEvent(saved.event);
        event.cl = unnull(event.cl);
        event.sigma = unnull(event.sigma);
        this.setEpisode(id * this.F + f, episodeOf(event, saved.ruleBits, saved.emittedAt));
        restored.push(copyEvent(event));
      }
      this.updateCloseAt(id);
    }
    this.restoreActiveKeys(state, keyIdOf);
    return restored;
  }

  /**
   * After a restore, each sensor's active key is the one with the latest reading, as it was when
   * the checkpoint was taken (rows of a sensor come in time order).
   */
  private restoreActiveKeys(state: readonly KeyEpisodesState[], keyIdOf: (key: string) => number): void {
    if (this.settings.sensorKeyParts === undefined) return;
    const latest = new Map<number, { keyId: number; time: number }>();
    for (const s of state) {
      const id = keyIdOf(s.key);
      if (id < 0 || this.filled[id] === 0) continue;
      const sensor = this.sensorIdOf(id, s.key);
      const time = this.lastTime(id);
      const best = latest.get(sensor);
      if (best === undefined || time > best.time) latest.set(sensor, { keyId: id, time });
    }
    for (const [sensor, { keyId }] of latest) this.activeKey[sensor] = keyId;
  }

  /** The row's key becomes its sensor's active key; the episodes of the key the sensor left close. */
  private followSensor(keyId: number, key: string): void {
    if (this.settings.sensorKeyParts === undefined) return;
    const sensor = this.sensorIdOf(keyId, key);
    const left = this.activeKey[sensor];
    this.activeKey[sensor] = keyId;
    if (left !== undefined && left !== keyId) this.closeAll(left, this.lastTime(left));
  }

  private sensorIdOf(keyId: number, key: string): number {
    let sensor = this.sensorOf[keyId];
    if (sensor < 0) {
      const name = key.split("/").slice(0, this.settings.sensorKeyParts).join("/");
      sensor = this.sensorIds.get(name) ?? this.sensorIds.size;
      this.sensorIds.set(name, sensor);
      this.sensorOf[keyId] = sensor;
    }
    return sensor;
  }

  /** Event time of the key's last recorded point (NaN: none). */
  private lastTime(keyId: number): number {
    this.settle(keyId);
    if (this.filled[keyId] === 0) return Number.NaN;
    return this.ring[(keyId * POINTS_KEPT + ((this.next[keyId] - 1 + POINTS_KEPT) % POINTS_KEPT)) * 3 + 1];
  }

  /** Room for key ids up to `keyId` (doubling). */
  private grow(keyId: number): void {
    const keys = Math.max(16, 2 * this.next.length, keyId + 1);
    this.ring = grown(this.ring, keys * POINTS_KEPT * 3);
    this.next = grown(this.next, keys);
    this.filled = grown(this.filled, keys);
    this.seen = grown(this.seen, keys);
    this.lastRow = grown(this.lastRow, keys);
    this.recordedTo = grown(this.recordedTo, keys);
    this.limited = grown(this.limited, keys);
    this.readings = grown(this.readings, keys);
    const closeAt = new Float64Array(keys).fill(Number.POSITIVE_INFINITY);
    closeAt.set(this.closeAt);
    this.closeAt = closeAt;
    this.lastFired = grown(this.lastFired, keys * this.F);
    const sensorOf = new Int32Array(keys).fill(-1);
    sensorOf.set(this.sensorOf);
    this.sensorOf = sensorOf;
  }

  /** Appends a point to the key's ring. */
  private record(keyId: number, position: number, time: number, value: number): void {
    const slot = this.next[keyId];
    const at = (keyId * POINTS_KEPT + slot) * 3;
    this.ring[at] = position;
    this.ring[at + 1] = time;
    this.ring[at + 2] = value;
    this.next[keyId] = slot + 1 === POINTS_KEPT ? 0 : slot + 1;
    if (this.filled[keyId] < POINTS_KEPT) this.filled[keyId]++;
  }

  /**
   * Records the key's rows of the current chunk observed so far and not yet in its ring: only
   * the last POINTS_KEPT of them (its links followed back), oldest first — the ring then holds
   * what recording each of them would leave.
   */
  private settle(keyId: number): void {
    const c = this.chunkNow;
    if (c.chunk === NO_CHUNK || this.seen[keyId] !== c.serial) return;
    const from = this.recordedTo[keyId];
    let kept = 0;
    for (let j = this.lastRow[keyId]; j >= from && kept < POINTS_KEPT; j = this.prevRow[j]) this.settling[kept++] = j;
    const { positions, times, values } = c.chunk;
    while (kept > 0) {
      const j = this.settling[--kept];
      this.record(keyId, positions[j], times[j], values[j]);
    }
    this.recordedTo[keyId] = this.lastRow[keyId] + 1;
  }

  /**
   * The key's last `n` points (fewer when it has fewer, at most POINTS_KEPT), oldest first: what
   * its ring would hold after {@link settle}, read without recording — the ring's newest points,
   * then the key's rows of the current chunk not in it yet (its links followed back). The chunk's
   * end records them once; an opening that settled recorded up to POINTS_KEPT rows each time.
   */
  private recentPoints(keyId: number, n: number): AlertPoint[] {
    const wanted = Math.min(n, POINTS_KEPT);
    const c = this.chunkNow;
    let fresh = 0;
    if (c.chunk !== NO_CHUNK && this.seen[keyId] === c.serial) {
      const from = this.recordedTo[keyId];
      for (let j = this.lastRow[keyId]; j >= from && fresh < wanted; j = this.prevRow[j]) this.settling[fresh++] = j;
    }
    const out: AlertPoint[] = [];
    for (let j = Math.min(wanted - fresh, this.filled[keyId]); j >= 1; j--) {
      const at = (keyId * POINTS_KEPT + ((this.next[keyId] - j + POINTS_KEPT) % POINTS_KEPT)) * 3;
      out.push({ position: this.ring[at], time: this.ring[at + 1], value: this.ring[at + 2] });
    }
    const { positions, times, values } = c.chunk;
    while (fresh > 0) {
      const j = this.settling[--fresh];
      out.push({ position: positions[j], time: times[j], value: values[j] });
    }
    return out;
  }

  /** Opens or extends the key's episodes of every family a condition fires for on the row at rows[at …]. */
  private decide(keyId: number, key: string, rows: Float64Array, at: number, time: number, position: number): void {
    // Conditions fired on this row, as bits by condition index (at most 32 conditions).
    const fired = this.fired.of(rows, at);
    if (fired === 0) return;
    for (let f = 0; f < this.F; f++) {
      const bits = fired & this.familyMask(f);
      if (bits === 0) continue;
      const slot = keyId * this.F + f;
      this.lastFired[slot] = this.readings[keyId];
      const e = this.episodes[slot];
      if (e === undefined) this.openEpisode(slot, keyId, key, f, bits, rows, at, time, position);
      else this.fold(e, bits, time, beyondLimits(rows, at));
    }
    this.updateCloseAt(keyId);
  }

  private readonly masks: number[] = [];
  /** An opening episode's id words (openEpisode's scratch). */
  private readonly idWords: EpisodeIdWords = { hi: 0, lo: 0 };

  /** Condition bits of family f. */
  private familyMask(f: number): number {
    let m = this.masks[f];
    if (m === undefined) {
      m = 0;
      for (let ci = 0; ci < this.conditions.length; ci++) if (this.familyOf[ci] === f) m |= 1 << ci;
      this.masks[f] = m;
    }
    return m;
  }

  private openEpisode(
    slot: number,
    keyId: number,
    key: string,
    f: number,
    bits: number,
    rows: Float64Array,
    at: number,
    time: number,
    position: number,
  ): void {
    const first = this.conditions[31 - Math.clz32(bits & -bits)];
    const family = this.familyNames[f];
    const id = this.idWords;
    this.idPrefix(slot, key, family).words(time, position, id);
    const event: AlertEpisodeEvent = {
      type: "alert_episode",
      event: "opened",
      episode_id: hexId(id.hi, id.lo),
      key,
      fields: this.keyFields(key),
      family,
      rules: this.ruleNames(bits),
      first_rule: first.name,
      description: first.description,
      severity: beyondLimits(rows, at) ? "high" : this.severityOf(bits),
      opened_at: time,
      last_fired_at: time,
      closed_at: null,
      firings: 1,
      limits_version: rows[at + SPC_COL.limits_version],
      cl: rows[at + SPC_COL.cl],
      sigma: rows[at + SPC_COL.sigma],
      points: this.recentPoints(keyId, first.window),
      acknowledged_at: null,
      acknowledged_by: null,
      ack_note: null,
    };
    const e: Episode = { event, ruleBits: bits, emittedAt: time, idHi: id.hi, idLo: id.lo, sinkData: undefined };
    this.setEpisode(slot, e);
    this.opened++;
    this.send(e, "opened");
  }

  /**
   * A later firing into an open episode; an `updated` event when the interval since the last one
   * has passed, or at once when the firing escalates the episode — a rule it had not fired, or a
   * higher severity: what a person watching the open episode sees change (a second fault that
   * starts while the first one's episode is open shows this way, not as an opening).
   */
  private fold(e: Episode, bits: number, time: number, beyond: boolean): void {
    const ev = e.event;
    ev.firings++;
    ev.last_fired_at = time;
    const rankBefore = SEVERITY_RANK[ev.severity];
    const added = bits & ~e.ruleBits;
    if (added !== 0) {
      e.ruleBits |= added;
      ev.rules.push(...this.ruleNames(added));
      if (ev.severity !== "high") ev.severity = this.severityOf(e.ruleBits);
    }
    if (beyond) ev.severity = "high";
    const escalated = added !== 0 || SEVERITY_RANK[ev.severity] > rankBefore;
    if (escalated || time - e.emittedAt >= this.settings.updateIntervalMs) {
      e.emittedAt = time;
      this.send(e, "updated");
    }
  }

  /** Closes the key's episodes whose `closeAfter`-th quiet reading this is. */
  private closeDue(keyId: number, time: number): void {
    const n = this.readings[keyId];
    for (let f = 0; f < this.F; f++) {
      const slot = keyId * this.F + f;
      if (this.lastFired[slot] + this.settings.closeAfter === n) this.closeSlot(slot, time);
    }
    this.updateCloseAt(keyId);
  }

  /** Closes every open episode of the key at `time`. */
  private closeAll(keyId: number, time: number): void {
    for (let f = 0; f < this.F; f++) this.closeSlot(keyId * this.F + f, time);
    this.updateCloseAt(keyId);
  }

  private closeSlot(slot: number, time: number): void {
    const e = this.episodes[slot];
    if (e === undefined) return;
    this.episodes[slot] = undefined;
    this.openNow--;
    this.closed++;
    e.event.closed_at = time;
    this.send(e, "closed");
  }

  private idPrefix(slot: number, key: string, family: string): EpisodeIdPrefix {
    let p = this.idPrefixes[slot];
    // A slot's key and family are the same at each opening (engine key ids are stable); checked all the same.
    if (p === undefined || p.key !== key || p.family !== family) {
      p = new EpisodeIdPrefix(key, family);
      this.idPrefixes[slot] = p;
    }
    return p;
  }

  private setEpisode(slot: number, e: Episode): void {
    if (this.episodes.length <= slot) this.episodes.length = slot + 1;
    this.episodes[slot] = e;
    this.openNow++;
  }

  /** The reading number at which the key's next open episode closes (∞: none open). */
  private updateCloseAt(keyId: number): void {
    let at = Number.POSITIVE_INFINITY;
    for (let f = 0; f < this.F; f++) {
      const slot = keyId * this.F + f;
      if (this.episodes[slot] !== undefined) at = Math.min(at, this.lastFired[slot] + this.settings.closeAfter);
    }
    this.closeAt[keyId] = at;
  }

  /** Emits the episode's state as an event of `kind`: a copy (the receiver's) to a function, the state itself to a sink. */
  private send(e: Episode, kind: EpisodeEventKind): void {
    this.events++;
    if (typeof this.emit !== "function") {
      this.emit.write(e, kind);
      return;
    }
    const out = copyEvent(e.event);
    out.event = kind;
    this.emit(out);
  }

  /** The names of the conditions in `bits`, in condition order (the set bits visited, lowest first). */
  private ruleNames(bits: number): string[] {
    const out: string[] = [];
    for (let b = bits; b !== 0; b &= b - 1) out.push(this.conditions[31 - Math.clz32(b & -b)].name);
    return out;
  }

  private severityOf(bits: number): AlertSeverity {
    let best: AlertSeverity = "low";
    for (let b = bits; b !== 0; b &= b - 1) {
      const s = this.conditions[31 - Math.clz32(b & -b)].severity;
      if (SEVERITY_RANK[s] > SEVERITY_RANK[best]) best = s;
    }
    return best;
  }
}

/**
 * Whether the row's reading lies beyond the control limits (zone ±4: beyond 3σ). A firing there
 * makes its episode high severity whichever rules are on: under a false-alarm budget WE1 may be
 * off, and the process outside its limits is still what a person must see first.
 */
function beyondLimits(rows: Float64Array, at: number): boolean {
  return Math.abs(rows[at + SPC_COL.zone]) === 4;
}

/** Whether an SPC row fires anything (a rule bit or a drift alarm). */
function isLoud(rows: Float64Array, at: number): boolean {
  return (
    rows[at + SPC_COL.we_mask] > 0 ||
    rows[at + SPC_COL.nelson_mask] > 0 ||
    rows[at + SPC_COL.mr_mask] > 0 ||
    rows[at + SPC_COL.cusum_alarm] === 1 ||
    rows[at + SPC_COL.ewma_alarm] === 1
  );
}

/** The family a rule belongs to; a rule in none (or in two) is a configuration error. */
function familyIndex(families: Readonly<Record<string, readonly string[]>>, names: readonly string[], rule: string): number {
  const found = names.filter((n) => families[n].includes(rule));
  if (found.length !== 1)
    throw new ConfigError(
      "alert families",
      `rule ${rule} must be in exactly one family, is in ${found.length === 0 ? "none" : found.join(", ")}`,
    );
  return names.indexOf(found[0]);
}

/** An event with its own arrays and objects (members in the same order). */
function copyEvent(e: AlertEpisodeEvent): AlertEpisodeEvent {
  return { ...e, fields: { ...e.fields }, rules: [...e.rules], points: e.points.map((p) => ({ ...p })) };
}

function grown<T extends Float64Array | Int32Array | Uint8Array>(a: T, length: number): T {
  const out = new (a.constructor as new (n: number) => T)(length);
  out.set(a);
  return out;
}

/** JSON keeps no NaN: null in a checkpoint stands for it. */
function nullable(x: number): number | null {
  return Number.isNaN(x) ? null : x;
}

function unnull(x: number | null): number {
  return x === null ? Number.NaN : x;
}
