/**
 * Alert events for people from the SPC rows of each key. The per-record masks stay unfolded in
 * the output; here consecutive firings of the same rule on the same key fold into one alert that
 * opens at the first firing and closes at the first record that does not fire it.
 *
 * WE1–3 and Nelson 1, 5, 6 test the same patterns; one alert is raised for each such pair, named
 * after the Western Electric rule (the Nelson name goes in `also`).
 */
import { NELSON_RULES, SPC_COL, SPC_OUT_FIELDS, WE_RULES, type SpcRule } from "./layout.js";

export type AlertSeverity = "low" | "medium" | "high";

export interface AlertPoint {
  position: number;
  time: number;
  value: number;
}

export interface SpcAlertEvent {
  type: "spc_alert";
  state: "open" | "closed";
  key: string;
  /** The key's parts by name (e.g. machine_id, sensor_type) where the caller knows them. */
  fields: Record<string, string>;
  rule: string;
  also: string | null;
  description: string;
  severity: AlertSeverity;
  limits_version: number;
  cl: number;
  sigma: number;
  /** Time of the first firing; at close also of the last. */
  opened_at: number;
  closed_at: number | null;
  /** Records at which the rule fired while the alert was open. */
  firings: number;
  /** The points of the pattern at the first firing, oldest first. */
  points: AlertPoint[];
}

/** One alertable condition: a rule bit in one of the masks, or a drift alarm. */
interface Condition {
  name: string;
  also: string | null;
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
};

/** Nelson rules with a Western Electric twin (same pattern): N1 = WE1, N5 = WE2, N6 = WE3. */
const NELSON_TWIN_OF_WE: Record<number, string> = { 1: "N1", 2: "N5", 3: "N6" };
const NELSON_WITH_TWIN = new Set([1, 5, 6]);

export function alertConditions(windows: { we: number[]; nelson: number[] }): Condition[] {
  const conditions: Condition[] = [];
  const weRule = (r: SpcRule, i: number): Condition => ({
    name: r.name,
    also: NELSON_TWIN_OF_WE[r.number] ?? null,
    description: r.description,
    severity: SEVERITY[r.name],
    column: SPC_COL.we_mask,
    bit: r.bit,
    window: windows.we[i],
  });
  WE_RULES.forEach((r, i) => conditions.push(weRule(r, i)));
  NELSON_RULES.forEach((r, i) => {
    if (NELSON_WITH_TWIN.has(r.number)) return;
    conditions.push({
      name: r.name,
      also: null,
      description: r.description,
      severity: SEVERITY[r.name],
      column: SPC_COL.nelson_mask,
      bit: r.bit,
      window: windows.nelson[i],
    });
  });
  conditions.push(
    {
      name: "CUSUM",
      also: null,
      description: "tabular CUSUM beyond its decision interval",
      severity: "medium",
      column: SPC_COL.cusum_alarm,
      bit: 0,
      window: 1,
    },
    {
      name: "EWMA",
      also: null,
      description: "EWMA statistic outside its control limits",
      severity: "medium",
      column: SPC_COL.ewma_alarm,
      bit: 0,
      window: 1,
    },
  );
  return conditions;
}

/** Longest pattern window, i.e. how many recent points per key the tracker keeps. */
const POINTS_KEPT = 32;

export class SpcAlertTracker {
  opened = 0;
  closed = 0;
  /** Per key id: its open alerts by condition index; undefined until the key first opens one. */
  private readonly perKey: Array<KeyAlerts | undefined> = [];
  private openNow = 0;
  /** Alerts opened so far: an open alert's number orders `openAlerts`. */
  private sequence = 0;
  /**
   * Every key's ring of its last POINTS_KEPT points, (position, time, value) per slot, key after
   * key; `next` is where a key's next point goes, `filled` how many it holds. Flat typed arrays:
   * the chunk pass writes a point with no object touched.
   */
  private ring = new Float64Array(0);
  private next = new Int32Array(0);
  private filled = new Int32Array(0);

  constructor(
    private readonly conditions: readonly Condition[],
    private readonly emit: (event: SpcAlertEvent) => void,
    private readonly keyFields: (key: string) => Record<string, string>,
  ) {}

  /** Alerts open now, over all keys. */
  get open(): number {
    return this.openNow;
  }

  /** The alerts open now, oldest first per key (for the API). */
  openAlerts(): SpcAlertEvent[] {
    const out: SpcAlertEvent[] = [];
    for (const k of this.perKey) {
      if (k === undefined) continue;
      const order = k.open.flatMap((e, c) => (e === undefined ? [] : [c])).sort((a, b) => k.opening[a] - k.opening[b]);
      for (const c of order) out.push({ ...(k.open[c] as SpcAlertEvent), closed_at: null });
    }
    return out;
  }

  /**
   * Feeds one SPC row of a key (rows of a key in order). Most rows fire nothing on a key with
   * nothing open; they only enter the key's ring of recent points (typed columns, no allocation).
   */
  observe(keyId: number, key: string, row: Float64Array, position: number, time: number, value: number): void {
    if (keyId >= this.next.length) this.grow(keyId);
    this.record(keyId, position, time, value);
    this.decide(keyId, key, row, 0, time);
  }

  /**
   * A finished chunk's SPC rows (`rows`, SPC_OUT_FIELDS f64 each, rule masks already as reported),
   * given the kernel's event list: the indices of every row that is loud or follows a loud row of
   * its key (kernels/spc.ts). The rows between are quiet after quiet — there `observe` would only
   * record the point — so they are visited by one pass over the columns that fills the rings, and
   * only the listed rows are decided: the same events, in the same order, as `observe` on every row.
   * Rows without limits (limits_version 0) are not observed, as `observe`'s callers skip them.
   */
  observeChunk(
    chunk: { length: number; keyIds: Uint32Array; positions: Float64Array; times: Float64Array; values: Float64Array },
    rows: Float64Array,
    events: Uint32Array,
    keyName: (keyId: number) => string,
    beforeDecide?: (i: number) => void,
  ): void {
    const { keyIds, positions, times, values } = chunk;
    const F = SPC_OUT_FIELDS;
    const version = SPC_COL.limits_version;
    let e = 0;
    let next = events.length > 0 ? events[0] : chunk.length;
    for (let i = 0; i < chunk.length; i++) {
      if (!(rows[i * F + version] > 0)) {
        if (i === next) next = ++e < events.length ? events[e] : chunk.length;
        continue;
      }
      const keyId = keyIds[i];
      if (keyId >= this.next.length) this.grow(keyId);
      this.record(keyId, positions[i], times[i], values[i]);
      if (i !== next) continue;
      beforeDecide?.(i);
      this.decide(keyId, keyName(keyId), rows, i * F, times[i]);
      next = ++e < events.length ? events[e] : chunk.length;
    }
  }

  /** Room in the rings for key ids up to `keyId` (doubling). */
  private grow(keyId: number): void {
    const keys = Math.max(16, 2 * this.next.length, keyId + 1);
    const ring = new Float64Array(keys * POINTS_KEPT * 3);
    ring.set(this.ring);
    this.ring = ring;
    const next = new Int32Array(keys);
    next.set(this.next);
    this.next = next;
    const filled = new Int32Array(keys);
    filled.set(this.filled);
    this.filled = filled;
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

  /** The key's last `n` points (fewer when it has fewer), oldest first. */
  private recentPoints(keyId: number, n: number): AlertPoint[] {
    const k = Math.min(n, this.filled[keyId]);
    const out: AlertPoint[] = [];
    for (let j = k; j >= 1; j--) {
      const at = (keyId * POINTS_KEPT + ((this.next[keyId] - j + POINTS_KEPT) % POINTS_KEPT)) * 3;
      out.push({ position: this.ring[at], time: this.ring[at + 1], value: this.ring[at + 2] });
    }
    return out;
  }

  /** Opens, extends and closes the key's alerts on the row at rows[at …] (its point already recorded). */
  private decide(keyId: number, key: string, rows: Float64Array, at: number, time: number): void {
    const quiet =
      !(rows[at + SPC_COL.we_mask] > 0) &&
      !(rows[at + SPC_COL.nelson_mask] > 0) &&
      rows[at + SPC_COL.cusum_alarm] !== 1 &&
      rows[at + SPC_COL.ewma_alarm] !== 1;
    let state = this.perKey[keyId];
    if (quiet && (state === undefined || state.count === 0)) return;
    if (state === undefined) {
      state = { open: new Array(this.conditions.length).fill(undefined), opening: new Array(this.conditions.length).fill(0), count: 0 };
      this.perKey[keyId] = state;
    }
    const version = rows[at + SPC_COL.limits_version];
    for (let ci = 0; ci < this.conditions.length; ci++) {
      const c = this.conditions[ci];
      const v = rows[at + c.column];
      const fired = c.bit === 0 ? v === 1 : Number.isFinite(v) && (v & c.bit) !== 0;
      const open = state.open[ci];
      if (fired && open === undefined) {
        const event: SpcAlertEvent = {
          type: "spc_alert",
          state: "open",
          key,
          fields: this.keyFields(key),
          rule: c.name,
          also: c.also,
          description: c.description,
          severity: c.severity,
          limits_version: version,
          cl: rows[at + SPC_COL.cl],
          sigma: rows[at + SPC_COL.sigma],
          opened_at: time,
          closed_at: null,
          firings: 1,
          points: this.recentPoints(keyId, c.window),
        };
        this.opened++;
        this.openNow++;
        this.emit(event);
        state.open[ci] = { ...event };
        state.opening[ci] = this.sequence++;
        state.count++;
      } else if (fired && open !== undefined) {
        open.firings++;
        open.closed_at = time;
      } else if (!fired && open !== undefined) {
        state.open[ci] = undefined;
        state.count--;
        this.closed++;
        this.openNow--;
        // closed_at is the last record that still fired the rule.
        this.emit({ ...open, state: "closed", closed_at: open.closed_at ?? open.opened_at });
      }
    }
  }
}

interface KeyAlerts {
  /** The key's open alert of each condition (by index in the tracker's conditions), undefined when none. */
  open: Array<SpcAlertEvent | undefined>;
  /** The tracker's sequence number of each open alert's opening (orders openAlerts). */
  opening: number[];
  /** Alerts open on the key. */
  count: number;
}
