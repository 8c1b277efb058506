import { describe, expect, it } from "vitest";
import { EpisodeBook } from "../engine/jobs/episode-book.js";
import type { AlertEpisodeEvent, AlertSeverity, EpisodeEventKind } from "../operators/spc/mod.js";
import type { EpisodeQuery } from "../connectors/live/mod.js";

/** The book as it was: it kept the events it was given (here: copies, so the test may reuse them). */
class KeepingBook {
  private readonly openById = new Map<string, AlertEpisodeEvent>();
  private recent: AlertEpisodeEvent[] = [];
  private readonly recentById = new Map<string, AlertEpisodeEvent>();
  constructor(private readonly recentMax: number) {}
  apply(given: AlertEpisodeEvent): void {
    const e = structuredClone(given);
    const id = e.episode_id;
    if (e.closed_at === null) {
      this.openById.set(id, e);
      return;
    }
    this.openById.delete(id);
    if (this.recentById.has(id)) {
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
  find(id: string): AlertEpisodeEvent | undefined {
    return this.openById.get(id) ?? this.recentById.get(id);
  }
  open(): AlertEpisodeEvent[] {
    return [...this.openById.values()];
  }
  query(q: EpisodeQuery): AlertEpisodeEvent[] {
    const out: AlertEpisodeEvent[] = [];
    if (q.state !== "recent") for (const e of this.openById.values()) if (out.length < q.limit) out.push(e);
    if (q.state !== "open") {
      const from = Math.max(0, this.recent.length - this.recentMax);
      for (let i = this.recent.length - 1; i >= from && out.length < q.limit; i--) out.push(this.recent[i]);
    }
    return out;
  }
}

/** xorshift32: the same sequence every run. */
function random(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

const SEVERITIES: AlertSeverity[] = ["low", "medium", "high"];
const RULES = ["we1", "we2", "nelson3", "cusum", "mr1"];

function eventOf(r: () => number, id: string, kind: EpisodeEventKind, closed: boolean): AlertEpisodeEvent {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const machine = `M-00${1 + Math.floor(r() * 3)}`;
  const fields: Record<string, string> = r() < 0.9 ? { machine_id: machine, sensor_type: pick(["temp", "vib"]) } : { line: "L1" };
  const nRules = 1 + Math.floor(r() * 3);
  const nPoints = Math.floor(r() * 12);
  return {
    type: "alert_episode",
    event: kind,
    episode_id: id,
    key: `${machine}/${fields.sensor_type ?? "x"}`,
    fields,
    family: pick(["western_electric", "nelson", "cusum"]),
    rules: RULES.slice(0, nRules),
    first_rule: "we1",
    description: pick(["one point beyond 3σ", "nine points on one side"]),
    severity: pick(SEVERITIES),
    opened_at: 1_700_000_000_000 + Math.floor(r() * 1e6),
    last_fired_at: 1_700_000_000_000 + r() * 1e6,
    closed_at: closed ? 1_700_000_000_000 + r() * 1e6 : null,
    firings: Math.floor(r() * 50),
    limits_version: Math.floor(r() * 3),
    cl: r() < 0.1 ? -0 : r() * 10 - 5,
    sigma: r() < 0.05 ? Number.NaN : r(),
    points: Array.from({ length: nPoints }, (_, i) => ({ position: i, time: 1e12 + i, value: r() < 0.1 ? -0 : r() })),
    acknowledged_at: r() < 0.2 ? 1_700_000_000_500 : null,
    acknowledged_by: r() < 0.2 ? "ana" : null,
    ack_note: r() < 0.1 ? "seen" : null,
  };
}

/** What the API would serve: JSON text (member order included) and -0/NaN exactly (Object.is through a structured clone). */
function served(book: EpisodeBook | KeepingBook, ids: readonly string[]): unknown {
  const q = (state: EpisodeQuery["state"], limit: number) => book.query({ state, limit });
  return {
    json: JSON.stringify([q("all", 1000), q("open", 3), q("recent", 4), book.open(), ids.map((id) => book.find(id) ?? null)]),
    numbers: [q("all", 1000), ids.map((id) => book.find(id))].flat(2).map((e) => e && [e.cl, e.sigma, ...e.points.map((p) => p.value)]),
  };
}

describe("episode book", () => {
  it("serves what a book keeping every event served, over random opens, updates, closes and acknowledgements", () => {
    for (const seed of [1, 2, 3]) {
      const r = random(seed);
      const book = new EpisodeBook(5);
      const reference = new KeepingBook(5);
      const ids = Array.from({ length: 40 }, (_, i) => `e${seed}-${i}`);
      const closedIds = new Set<string>();
      for (let step = 0; step < 3000; step++) {
        const id = ids[Math.floor(r() * ids.length)];
        const closing = closedIds.has(id) || r() < 0.2;
        const kind: EpisodeEventKind = closing ? (closedIds.has(id) ? "acknowledged" : "closed") : r() < 0.2 ? "opened" : "updated";
        if (closing) closedIds.add(id);
        const e = eventOf(r, id, kind, closing);
        book.apply(e);
        reference.apply(e);
        // The book does not keep what it was given: changing the event afterwards changes nothing.
        e.points.forEach((p) => (p.value = 99));
        e.rules.push("changed");
        if (step % 50 === 0 || step > 2950) expect(served(book, ids), `seed ${seed}, step ${step}`).toEqual(served(reference, ids));
      }
      expect(served(book, ids)).toEqual(served(reference, ids));
    }
  });

  it("what leaves the book is a copy", () => {
    const book = new EpisodeBook(5);
    const e = eventOf(random(9), "a", "opened", false);
    book.apply(structuredClone(e));
    const out = book.find("a");
    if (out === undefined) throw new Error("not found");
    out.points.length = 0;
    out.fields.machine_id = "other";
    out.firings = -1;
    expect(book.find("a")).toEqual(e);
    expect(book.open()).toEqual([e]);
  });

  it("counts a machine's open episodes by their latest severity", () => {
    const book = new EpisodeBook(5);
    const r = random(4);
    const a = { ...eventOf(r, "a", "opened", false), severity: "low" as const, fields: { machine_id: "M-001" } };
    book.apply(a);
    book.apply({ ...a, event: "updated", severity: "high" });
    book.apply({ ...a, episode_id: "b", severity: "medium" });
    expect([...book.openOf("M-001")].map((e) => e.severity).sort()).toEqual(["high", "medium"]);
  });
});
