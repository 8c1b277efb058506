import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { AlertRouter } from "../engine/jobs/alert-router.js";
import type { AlertEpisodeEvent } from "../operators/spc/mod.js";

/**
 * The console prints episodes, not firings: a line when an episode of medium or high severity
 * opens (or a low one rises to medium), one when such an episode closes, with its duration and
 * firings; updates, acknowledgements and low episodes print nothing, and are counted.
 */

const BASE: AlertEpisodeEvent = {
  type: "alert_episode",
  event: "opened",
  episode_id: "00000000000000a1",
  key: "M-001/pressure",
  fields: { machine_id: "M-001", sensor_type: "pressure" },
  family: "level",
  rules: ["WE1"],
  first_rule: "WE1",
  description: "one point beyond 3σ",
  severity: "high",
  opened_at: Date.UTC(2026, 0, 1),
  last_fired_at: Date.UTC(2026, 0, 1),
  closed_at: null,
  firings: 1,
  limits_version: 1,
  cl: 6,
  sigma: 0.03,
  points: [],
  acknowledged_at: null,
  acknowledged_by: null,
  ack_note: null,
};

function routed(events: readonly AlertEpisodeEvent[]): { lines: () => string[]; router: AlertRouter } {
  const console = new PassThrough();
  let text = "";
  console.on("data", (d: Buffer) => (text += d.toString()));
  const router = new AlertRouter({ console });
  router.routeAll(events.slice(0, 2));
  for (const e of events.slice(2)) router.route(e);
  return { lines: () => text.split("\n").filter((l) => l.length > 0), router };
}

describe("alert router - the console prints episodes", () => {
  it("one line at the opening and one at the closing of each medium or high episode; none per firing", () => {
    const t0 = BASE.opened_at;
    const low: AlertEpisodeEvent = {
      ...BASE,
      episode_id: "00000000000000b2",
      family: "variation",
      rules: ["N4"],
      first_rule: "N4",
      severity: "low",
    };
    const firings = Array.from(
      { length: 20 },
      (_, i): AlertEpisodeEvent => ({ ...BASE, event: "updated", firings: i + 2, last_fired_at: t0 + 1000 * (i + 1) }),
    );
    const { lines, router } = routed([
      BASE,
      low,
      ...firings,
      { ...BASE, event: "acknowledged", acknowledged_at: t0 + 5, acknowledged_by: "qa" },
      { ...low, event: "closed", closed_at: t0 + 500 },
      { ...BASE, event: "closed", rules: ["WE1", "CUSUM"], firings: 21, last_fired_at: t0 + 20_000, closed_at: t0 + 150_000 },
      // A low episode that rises to medium is printed once it does, and its closing too.
      { ...low, episode_id: "00000000000000c3", event: "opened" },
      { ...low, episode_id: "00000000000000c3", event: "updated", rules: ["N4", "N8"], severity: "medium", firings: 2 },
      { ...low, episode_id: "00000000000000c3", event: "updated", rules: ["N4", "N8"], severity: "medium", firings: 3 },
      { ...low, episode_id: "00000000000000c3", event: "closed", rules: ["N4", "N8"], severity: "medium", firings: 3, closed_at: t0 + 999 },
    ]);
    expect(lines()).toEqual([
      "EPISODE opened HIGH level M-001/pressure [WE1] at 2026-01-01T00:00:00.000Z: one point beyond 3σ (limits v1; 00000000000000a1)",
      "EPISODE closed level M-001/pressure [WE1,CUSUM] after 2.5 min, 21 firings (00000000000000a1)",
      "EPISODE opened MEDIUM variation M-001/pressure [N4,N8] at 2026-01-01T00:00:00.000Z: one point beyond 3σ (limits v1; 00000000000000c3)",
      "EPISODE closed variation M-001/pressure [N4,N8] after 999 ms, 3 firings (00000000000000c3)",
    ]);
    expect([router.count, router.opened, router.closed, router.open, router.lowOpened]).toEqual([29, 3, 3, 0, 2]);
    expect(router.summary()).toBe("SPC episodes open 0 (opened 3, 2 of them low; closed 3)");
  });

  it("episodes restored from a checkpoint are open here, and their closing is printed", () => {
    const { lines, router } = routed([]);
    router.restored([BASE]);
    expect(router.open).toBe(1);
    router.route({ ...BASE, event: "closed", closed_at: BASE.opened_at + 42_000, firings: 3 });
    expect(router.open).toBe(0);
    expect(lines()).toEqual(["EPISODE closed level M-001/pressure [WE1] after 42 s, 3 firings (00000000000000a1)"]);
  });
});
