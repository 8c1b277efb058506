/**
 * The alert episodes a run serves (GET /api/alerts, /api/alerts/episodes, the health score): the
 * open ones by id, and the closed ones most recently, newest first, at most `recentMax` (older
 * ones are in ClickHouse ml_alerts and the alerts file). Fed with every routed episode event on
 * the main thread; the trackers that own the episodes stay where the keys are (an ingest worker,
 * or this thread).
 */
import type { EpisodeQuery } from "../../connectors/live/mod.js";
import type { AlertEpisodeEvent } from "../../operators/spc/mod.js";

/** Closed episodes kept for the API by default. */
export const RECENT_EPISODES_MAX = 1000;

export class EpisodeBook {
  private readonly openById = new Map<string, AlertEpisodeEvent>();
  /** Closed episodes, oldest first (appended as they close); the API reads it backwards. */
  private recent: AlertEpisodeEvent[] = [];
  private readonly recentById = new Map<string, AlertEpisodeEvent>();

  constructor(private readonly recentMax = RECENT_EPISODES_MAX) {}

  get openCount(): number {
    return this.openById.size;
  }

  /** An episode event: the episode's state after it replaces what was kept. */
  apply(e: AlertEpisodeEvent): void {
    const id = e.episode_id;
    if (e.closed_at === null) {
      this.openById.set(id, e);
      return;
    }
    this.openById.delete(id);
    if (this.recentById.has(id)) {
      // An acknowledgement of a closed episode (or a restart's repeat of its closing): in place.
      const at = this.recent.findIndex((r) => r.episode_id === id);
      if (at >= 0) this.recent[at] = e;
    } else {
      this.recent.push(e);
      if (this.recent.length > 2 * this.recentMax) {
        for (const old of this.recent.slice(0, this.recent.length - this.recentMax)) this.recentById.delete(old.episode_id);
        this.recent = this.recent.slice(this.recent.length - this.recentMax);
      }
    }
    this.recentById.set(id, e);
  }

  /** The episode, open or recently closed; undefined when unknown. */
  find(id: string): AlertEpisodeEvent | undefined {
    return this.openById.get(id) ?? this.recentById.get(id);
  }

  open(): AlertEpisodeEvent[] {
    return [...this.openById.values()];
  }

  /** Open episodes of a machine (key `machine/…`). */
  *openOf(machineId: string): Iterable<AlertEpisodeEvent> {
    for (const e of this.openById.values()) if (machineOf(e) === machineId) yield e;
  }

  query(q: EpisodeQuery): AlertEpisodeEvent[] {
    const keep = (e: AlertEpisodeEvent): boolean =>
      (q.machine_id === undefined || machineOf(e) === q.machine_id) &&
      (q.rule === undefined || e.rules.includes(q.rule)) &&
      (q.family === undefined || e.family === q.family) &&
      (q.severity === undefined || e.severity === q.severity);
    const out: AlertEpisodeEvent[] = [];
    if (q.state !== "recent") for (const e of this.openById.values()) if (out.length < q.limit && keep(e)) out.push(e);
    if (q.state !== "open") {
      const from = Math.max(0, this.recent.length - this.recentMax);
      for (let i = this.recent.length - 1; i >= from && out.length < q.limit; i--) if (keep(this.recent[i])) out.push(this.recent[i]);
    }
    return out;
  }
}

function machineOf(e: AlertEpisodeEvent): string {
  return e.fields.machine_id ?? e.key.split("/")[0];
}
