/**
 * The alert episodes a run serves (GET /api/alerts, /api/alerts/episodes, the health score): the
 * open ones by id, and the closed ones most recently, newest first, at most `recentMax` (older
 * ones are in ClickHouse ml_alerts and the alerts file). Fed with every routed episode event on
 * the main thread; the trackers that own the episodes stay where the keys are (an ingest worker,
 * or this thread).
 *
 * The book keeps its own record of each episode and updates it member by member, writing only
 * the members that changed; it does not keep the events it is given. Kept, every `updated` event
 * (a point list, rules, fields and a dozen strings — about 2 KB) lived until the episode's next
 * event, long enough to outlive a scavenge and die in the old generation: at the ingest bench's
 * half load (about 1 400 events/s) that was the main thread's whole old-generation growth — a
 * mark-compact every 0.3–0.9 s, pauses of 4–17 ms holding every score frame on its way to the live
 * server — where without it the thread did only scavenges of under a millisecond. An update now
 * changes a few numbers of a record that stays put (the points are the opening's, the rules and
 * strings rarely change), and the event dies young. What leaves the book is a copy.
 */
import type { EpisodeQuery } from "../../connectors/live/mod.js";
import type { AlertEpisodeEvent, AlertPoint } from "../../operators/spc/mod.js";

/** Closed episodes kept for the API by default. */
export const RECENT_EPISODES_MAX = 1000;

export class EpisodeBook {
  private readonly openById = new Map<string, AlertEpisodeEvent>();
  /** Closed episodes, oldest first (appended as they close); the API reads it backwards. */
  private recent: AlertEpisodeEvent[] = [];
  private readonly recentById = new Map<string, AlertEpisodeEvent>();
  /** Records of closed episodes the book no longer keeps, for the next episodes to open (at most `recentMax` + 1). */
  private readonly spare: AlertEpisodeEvent[] = [];

  constructor(private readonly recentMax = RECENT_EPISODES_MAX) {}

  get openCount(): number {
    return this.openById.size;
  }

  /** An episode event: the episode's state after it replaces what was kept (the event itself is not kept). */
  apply(e: AlertEpisodeEvent): void {
    const id = e.episode_id;
    const open = this.openById.get(id);
    if (e.closed_at === null) {
      this.openById.set(id, this.recordOf(open, e));
      return;
    }
    if (open !== undefined) this.openById.delete(id);
    const closed = this.recentById.get(id);
    if (closed !== undefined) {
      // An acknowledgement of a closed episode (or a restart's repeat of its closing): in place.
      const record = this.recordOf(closed, e);
      if (record !== closed) {
        const at = this.recent.indexOf(closed);
        if (at >= 0) this.recent[at] = record;
      }
      this.recentById.set(id, record);
      return;
    }
    const record = this.recordOf(open, e);
    this.recent.push(record);
    if (this.recent.length > 2 * this.recentMax) {
      for (const old of this.recent.splice(0, this.recent.length - this.recentMax)) {
        this.recentById.delete(old.episode_id);
        this.spare.push(old);
      }
    }
    this.recentById.set(id, record);
  }

  /** The episode, open or recently closed (a copy); undefined when unknown. */
  find(id: string): AlertEpisodeEvent | undefined {
    const e = this.openById.get(id) ?? this.recentById.get(id);
    return e === undefined ? undefined : copyEpisode(e);
  }

  /** The open episodes (copies). */
  open(): AlertEpisodeEvent[] {
    return Array.from(this.openById.values(), copyEpisode);
  }

  /** Open episodes of a machine (key `machine/…`): the book's records, to read during the iteration only. */
  *openOf(machineId: string): Iterable<Readonly<AlertEpisodeEvent>> {
    for (const e of this.openById.values()) if (machineOf(e) === machineId) yield e;
  }

  /** The episodes the query selects (copies). */
  query(q: EpisodeQuery): AlertEpisodeEvent[] {
    const keep = (e: AlertEpisodeEvent): boolean =>
      (q.machine_id === undefined || machineOf(e) === q.machine_id) &&
      (q.rule === undefined || e.rules.includes(q.rule)) &&
      (q.family === undefined || e.family === q.family) &&
      (q.severity === undefined || e.severity === q.severity);
    const out: AlertEpisodeEvent[] = [];
    if (q.state !== "recent") for (const e of this.openById.values()) if (out.length < q.limit && keep(e)) out.push(copyEpisode(e));
    if (q.state !== "open") {
      const from = Math.max(0, this.recent.length - this.recentMax);
      for (let i = this.recent.length - 1; i >= from && out.length < q.limit; i--)
        if (keep(this.recent[i])) out.push(copyEpisode(this.recent[i]));
    }
    return out;
  }

  /** `kept` brought to `e`'s state in place where it can be, else a spare record, else a new one (a copy of `e`). */
  private recordOf(kept: AlertEpisodeEvent | undefined, e: AlertEpisodeEvent): AlertEpisodeEvent {
    if (kept !== undefined && assignEpisode(kept, e)) return kept;
    const spare = this.spare.pop();
    return spare !== undefined && assignEpisode(spare, e) ? spare : copyEpisode(e);
  }
}

function machineOf(e: Readonly<AlertEpisodeEvent>): string {
  return e.fields.machine_id ?? e.key.split("/")[0];
}

/** A copy of an episode event sharing nothing mutable with it, its members in the same order (the same JSON text). */
export function copyEpisode(e: Readonly<AlertEpisodeEvent>): AlertEpisodeEvent {
  if (isEpisodeShaped(e)) {
    // The members in the interface's order: one literal, one shape for every record.
    return {
      type: e.type,
      event: e.event,
      episode_id: e.episode_id,
      key: e.key,
      fields: { ...e.fields },
      family: e.family,
      rules: [...e.rules],
      first_rule: e.first_rule,
      description: e.description,
      severity: e.severity,
      opened_at: e.opened_at,
      last_fired_at: e.last_fired_at,
      closed_at: e.closed_at,
      firings: e.firings,
      limits_version: e.limits_version,
      cl: e.cl,
      sigma: e.sigma,
      points: e.points.map((p) => ({ position: p.position, time: p.time, value: p.value })),
      acknowledged_at: e.acknowledged_at,
      acknowledged_by: e.acknowledged_by,
      ack_note: e.ack_note,
    };
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) {
    if (k === "fields") out[k] = { ...e.fields };
    else if (k === "rules") out[k] = [...e.rules];
    else if (k === "points") out[k] = e.points.map((p) => ({ ...p }));
    else out[k] = v;
  }
  return out as unknown as AlertEpisodeEvent;
}

/** An episode event's members in the interface's (and the trackers' and decodeAlerts') order. */
const MEMBERS = [
  "type",
  "event",
  "episode_id",
  "key",
  "fields",
  "family",
  "rules",
  "first_rule",
  "description",
  "severity",
  "opened_at",
  "last_fired_at",
  "closed_at",
  "firings",
  "limits_version",
  "cl",
  "sigma",
  "points",
  "acknowledged_at",
  "acknowledged_by",
  "ack_note",
] as const;
/** The members written as they are (the others: fields, rules, points). */
const SCALARS = MEMBERS.filter((k) => k !== "fields" && k !== "rules" && k !== "points");

/**
 * Writes into `dst` the members of `src` that differ (`Object.is`: -0 and NaN kept exactly), reusing
 * its point objects and arrays; false, with `dst` untouched, when either has other members than an
 * episode event's, or in another order.
 */
export function assignEpisode(dst: AlertEpisodeEvent, src: Readonly<AlertEpisodeEvent>): boolean {
  if (!isEpisodeShaped(src) || !isEpisodeShaped(dst)) return false;
  const d = dst as unknown as Record<string, unknown>;
  const s = src as unknown as Record<string, unknown>;
  for (const k of SCALARS) if (!Object.is(d[k], s[k])) d[k] = s[k];
  if (!assignFields(dst.fields, src.fields)) dst.fields = { ...src.fields };
  assignStrings(dst.rules, src.rules);
  assignPoints(dst.points, src.points);
  return true;
}

/** Exactly an episode event's own enumerable members, in the interface's order (Object.keys reads the shape's cached list). */
function isEpisodeShaped(e: Readonly<AlertEpisodeEvent>): boolean {
  const keys = Object.keys(e);
  if (keys.length !== MEMBERS.length) return false;
  for (let i = 0; i < keys.length; i++) if (keys[i] !== MEMBERS[i]) return false;
  return true;
}

/** Values of the same field names, in the same order, written in place; false when the names differ. */
function assignFields(dst: Record<string, string>, src: Readonly<Record<string, string>>): boolean {
  const names = Object.keys(src);
  const kept = Object.keys(dst);
  if (names.length !== kept.length) return false;
  for (let i = 0; i < names.length; i++) if (names[i] !== kept[i]) return false;
  for (const k of names) if (dst[k] !== src[k]) dst[k] = src[k];
  return true;
}

function assignStrings(dst: string[], src: readonly string[]): void {
  if (dst.length > src.length) dst.length = src.length;
  for (let i = 0; i < src.length; i++) if (dst[i] !== src[i]) dst[i] = src[i];
}

/** The points written into the kept point objects; a point more is a copy, a point fewer is cut. */
function assignPoints(dst: AlertPoint[], src: readonly AlertPoint[]): void {
  if (dst.length > src.length) dst.length = src.length;
  for (let i = 0; i < src.length; i++) {
    const a = dst[i];
    const b = src[i];
    if (a === undefined) {
      dst.push({ position: b.position, time: b.time, value: b.value });
      continue;
    }
    if (!Object.is(a.position, b.position)) a.position = b.position;
    if (!Object.is(a.time, b.time)) a.time = b.time;
    if (!Object.is(a.value, b.value)) a.value = b.value;
  }
}
