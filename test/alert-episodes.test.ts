import { describe, expect, it } from "vitest";
import { SeededRandom } from "../engine/core/mod.js";
import {
  ALERT_FAMILIES,
  AlertDecoder,
  AlertEncoder,
  type AlertEpisodeEvent,
  decodeAlerts,
  type EncodedAlerts,
  alertConditions,
  DEFAULT_SPC_PARAMS,
  EpisodeTracker,
  type EpisodeSettings,
  episodeId,
  NELSON_RULES,
  SPC_COL,
  SPC_OUT_FIELDS,
  STRINGS_KEPT_MAX,
  WE_RULES,
} from "../operators/spc/mod.js";
import { FiredConditions } from "../operators/spc/fired-conditions.js";

/**
 * The alert episode tracker (operators/spc/alerts.ts) on hand-written firing sequences — opening,
 * folding, the hysteresis close at exactly `closeAfter` quiet readings, the update rate limit, two
 * families on one key, acknowledgements — and on random sequences against a plain reference
 * written from the definition; and a checkpoint of its state in the middle of a sequence
 * (through JSON, as the checkpoint header holds it) continues with the same events.
 */

const CONDITIONS = alertConditions({
  we: WE_RULES.map((r) => (r.runParam ? DEFAULT_SPC_PARAMS[r.runParam] : r.window)),
  nelson: NELSON_RULES.map((r) => (r.runParam ? DEFAULT_SPC_PARAMS[r.runParam] : r.window)),
});
const RULE_NAMES = CONDITIONS.map((c) => c.name);

/** An SPC row with limits (cl 0, σ 1, version 1) firing the named rules. */
function row(rules: readonly string[]): Float64Array {
  const r = new Float64Array(SPC_OUT_FIELDS);
  r[SPC_COL.cl] = 0;
  r[SPC_COL.sigma] = 1;
  r[SPC_COL.limits_version] = 1;
  for (const name of rules) {
    const c = CONDITIONS.find((x) => x.name === name);
    if (c === undefined) throw new Error(`no rule ${name}`);
    if (c.bit === 0) r[c.column] = 1;
    else r[c.column] = r[c.column] | c.bit;
  }
  return r;
}

/** One reading: key index, time, the rules that fire. */
type Step = [key: number, time: number, rules: readonly string[]];

const KEYS = ["M-1/temperature", "M-1/vibration", "M-2/pressure"];

function track(settings: Partial<EpisodeSettings>, steps: readonly Step[]): { events: AlertEpisodeEvent[]; tracker: EpisodeTracker } {
  const events: AlertEpisodeEvent[] = [];
  const tracker = new EpisodeTracker(
    CONDITIONS,
    { families: ALERT_FAMILIES, closeAfter: 50, updateIntervalMs: 10_000, ...settings },
    (e) => events.push(e),
    (key) => ({ machine_id: key.split("/")[0], sensor_type: key.split("/")[1] }),
  );
  feed(tracker, steps, 0);
  return { events, tracker };
}

function feed(tracker: EpisodeTracker, steps: readonly Step[], from: number): void {
  steps.forEach(([k, time, rules], i) => tracker.observe(k, KEYS[k], row(rules), from + i, time, time / 10));
}

/** What the tests compare of an event. */
function brief(e: AlertEpisodeEvent): string {
  return `${e.event} ${e.key} ${e.family} [${e.rules.join(",")}] ${e.severity} firings ${e.firings} ${e.opened_at}…${e.last_fired_at} closed ${e.closed_at}`;
}

/**
 * The reference: the definition read literally, one object per key and family, every reading
 * visited: a firing opens or folds, a reading without one counts towards the close.
 */
function reference(settings: { closeAfter: number; updateIntervalMs: number }, steps: readonly Step[]): string[] {
  const families = Object.keys(ALERT_FAMILIES);
  const rank = { low: 0, medium: 1, high: 2 } as const;
  type Open = { e: AlertEpisodeEvent; quiet: number; emitted: number };
  const open = new Map<string, Open>();
  const out: string[] = [];
  steps.forEach(([k, time, rules], position) => {
    const key = KEYS[k];
    // Rules in the tracker's condition order, as the masks hold them.
    const fired = RULE_NAMES.filter((n) => rules.includes(n));
    for (const family of families) {
      const mine = fired.filter((n) => ALERT_FAMILIES[family].includes(n));
      const slot = `${key}|${family}`;
      const o = open.get(slot);
      if (mine.length === 0) continue;
      const severity = (names: string[]) =>
        names
          .map((n) => CONDITIONS.find((c) => c.name === n)?.severity ?? "low")
          .reduce((a, b) => (rank[b] > rank[a] ? b : a), "low" as const);
      if (o === undefined) {
        const e = {
          event: "opened",
          key,
          family,
          rules: mine,
          severity: severity(mine),
          firings: 1,
          opened_at: time,
          last_fired_at: time,
          closed_at: null,
        };
        open.set(slot, { e: e as unknown as AlertEpisodeEvent, quiet: 0, emitted: time });
        out.push(brief(e as unknown as AlertEpisodeEvent));
        expect(position).toBeGreaterThanOrEqual(0);
        continue;
      }
      o.quiet = 0;
      o.e.firings++;
      o.e.last_fired_at = time;
      const before = { rules: o.e.rules.length, rank: rank[o.e.severity] };
      for (const n of mine) if (!o.e.rules.includes(n)) o.e.rules.push(n);
      o.e.severity = severity(o.e.rules);
      // An escalation (a rule new to the episode, a higher severity) is sent at once.
      const escalated = o.e.rules.length > before.rules || rank[o.e.severity] > before.rank;
      if (escalated || time - o.emitted >= settings.updateIntervalMs) {
        o.emitted = time;
        out.push(brief({ ...o.e, event: "updated" }));
      }
    }
    for (const family of families) {
      const slot = `${key}|${family}`;
      const o = open.get(slot);
      if (o === undefined || fired.some((n) => ALERT_FAMILIES[family].includes(n))) continue;
      if (++o.quiet === settings.closeAfter) {
        open.delete(slot);
        out.push(brief({ ...o.e, event: "closed", closed_at: time }));
      }
    }
  });
  return out;
}

/** Random readings of three keys: quiet stretches and bursts of rules of both families. */
function randomSteps(seed: number, n: number): Step[] {
  const r = new SeededRandom(seed);
  const steps: Step[] = [];
  const loud = [0, 0, 0];
  for (let i = 0; i < n; i++) {
    const k = r.below(3);
    if (r.below(40) === 0) loud[k] = 5 + r.below(30);
    const rules: string[] = [];
    if (loud[k] > 0) {
      loud[k]--;
      for (const name of RULE_NAMES) if (r.below(4) === 0) rules.push(name);
    } else if (r.below(50) === 0) rules.push(RULE_NAMES[r.below(RULE_NAMES.length)]);
    steps.push([k, i * 100, rules]);
  }
  return steps;
}

describe("alert episodes - hand-written sequences", () => {
  it("an episode firing at a reading beyond the control limits is high severity, whichever rules fired", () => {
    const events: AlertEpisodeEvent[] = [];
    const tracker = new EpisodeTracker(
      CONDITIONS,
      { families: ALERT_FAMILIES, closeAfter: 50, updateIntervalMs: 0 },
      (e) => events.push(e),
      () => ({}),
    );
    const beyond = (rules: string[], zone: number): Float64Array => {
      const r = row(rules);
      r[SPC_COL.zone] = zone;
      return r;
    };
    // CUSUM (medium) within the limits, then at a reading beyond +3σ: the episode turns high.
    tracker.observe(0, KEYS[0], beyond(["CUSUM"], 2), 0, 1000, 0);
    tracker.observe(0, KEYS[0], beyond(["CUSUM"], 4), 1, 2000, 0);
    // On another key the first firing is already beyond −3σ.
    tracker.observe(1, KEYS[1], beyond(["EWMA"], -4), 2, 3000, 0);
    expect(events.map((e) => `${e.event} ${e.key} ${e.severity}`)).toEqual([
      `opened ${KEYS[0]} medium`,
      `updated ${KEYS[0]} high`,
      `opened ${KEYS[1]} high`,
    ]);
  });

  it("opens at the first firing, folds the family's later ones, closes at exactly closeAfter quiet readings", () => {
    const steps: Step[] = [
      [0, 0, []],
      [0, 100, ["WE2"]],
      [0, 200, []],
      [0, 300, ["WE1", "CUSUM"]],
      [0, 400, []],
      [0, 500, []],
      // A reading of another key counts nothing for this one.
      [1, 550, []],
      [0, 600, []],
      [0, 700, []],
    ];
    const { events, tracker } = track({ closeAfter: 3 }, steps);
    // WE1 and CUSUM join the open episode and raise it to high: an escalation, sent at once
    // though the update interval (10 s) has not passed.
    expect(events.map(brief)).toEqual([
      "opened M-1/temperature level [WE2] medium firings 1 100…100 closed null",
      "updated M-1/temperature level [WE2,WE1,CUSUM] high firings 2 100…300 closed null",
      "closed M-1/temperature level [WE2,WE1,CUSUM] high firings 2 100…300 closed 600",
    ]);
    expect(events[0].episode_id).toBe(events[2].episode_id);
    expect(events[1].episode_id).toBe(events[2].episode_id);
    expect(events[0].episode_id).toBe(episodeId("M-1/temperature", "level", 100, 1));
    expect(events[2]).toMatchObject({
      first_rule: "WE2",
      fields: { machine_id: "M-1", sensor_type: "temperature" },
      limits_version: 1,
      cl: 0,
      sigma: 1,
    });
    // The pattern's points at the opening: WE2's window (3), the opening reading last.
    expect(events[0].points.map((p) => p.time)).toEqual([0, 100]);
    expect([tracker.opened, tracker.closed, tracker.open]).toEqual([1, 1, 0]);
    expect(events).toEqual(events.map((e) => structuredClone(e)));
    expect(reference({ closeAfter: 3, updateIntervalMs: 10_000 }, steps)).toEqual(events.map(brief));
  });

  it("a firing within the hysteresis keeps the episode open; the next firing after a close opens a new one", () => {
    const quiet = (from: number, n: number): Step[] => Array.from({ length: n }, (_, i) => [0, from + i, []] as Step);
    const steps: Step[] = [[0, 0, ["WE1"]], ...quiet(1, 4), [0, 5, ["WE1"]], ...quiet(6, 5), [0, 11, ["WE1"]]];
    const { events } = track({ closeAfter: 5 }, steps);
    expect(events.map((e) => [e.event, e.opened_at, e.firings, e.closed_at])).toEqual([
      ["opened", 0, 1, null],
      ["closed", 0, 2, 10],
      ["opened", 11, 1, null],
    ]);
    expect(events[2].episode_id).not.toBe(events[0].episode_id);
  });

  it("updates at most once per interval of event time, only at a firing", () => {
    // A firing every 3 time units from 0 to 60, interval 10: updates at 12, 24, 36, 48, 60.
    const steps: Step[] = Array.from({ length: 21 }, (_, i) => [0, 3 * i, ["WE4"]] as Step);
    const { events } = track({ closeAfter: 50, updateIntervalMs: 10 }, steps);
    expect(events.map((e) => `${e.event}@${e.last_fired_at}`)).toEqual([
      "opened@0",
      "updated@12",
      "updated@24",
      "updated@36",
      "updated@48",
      "updated@60",
    ]);
    expect(events.filter((e) => e.event === "updated").map((e) => e.firings)).toEqual([5, 9, 13, 17, 21]);
  });

  it("two families on one key are two episodes, each with its own hysteresis", () => {
    const steps: Step[] = [
      [0, 0, ["WE1", "N4"]],
      [0, 1, ["N8"]],
      [0, 2, []],
      [0, 3, []],
      [0, 4, []],
      [0, 5, []],
    ];
    const { events } = track({ closeAfter: 3 }, steps);
    expect(events.map(brief)).toEqual([
      "opened M-1/temperature level [WE1] high firings 1 0…0 closed null",
      "opened M-1/temperature variation [N4] low firings 1 0…0 closed null",
      // N8 joins the variation episode (low → medium): an escalation, sent at once.
      "updated M-1/temperature variation [N4,N8] medium firings 2 0…1 closed null",
      "closed M-1/temperature level [WE1] high firings 1 0…0 closed 3",
      "closed M-1/temperature variation [N4,N8] medium firings 2 0…1 closed 4",
    ]);
  });

  it("an acknowledgement goes out as an event, stays with the episode, and is refused twice or for an unknown episode", () => {
    const { events, tracker } = track({ closeAfter: 2 }, [[2, 0, ["EWMA"]]]);
    const id = events[0].episode_id;
    expect(tracker.acknowledge("nope", 5, null, null)).toEqual({ ok: false, reason: "unknown" });
    const r = tracker.acknowledge(id, 1234, "qa-anna", "sensor cleaned");
    expect(r.ok).toBe(true);
    expect(events.at(-1)).toMatchObject({
      event: "acknowledged",
      episode_id: id,
      acknowledged_at: 1234,
      acknowledged_by: "qa-anna",
      ack_note: "sensor cleaned",
      closed_at: null,
    });
    expect(tracker.acknowledge(id, 1300, "other", null)).toEqual({ ok: false, reason: "already" });
    feed(
      tracker,
      [
        [2, 1, []],
        [2, 2, []],
      ],
      1,
    );
    expect(events.at(-1)).toMatchObject({ event: "closed", acknowledged_at: 1234, acknowledged_by: "qa-anna", closed_at: 2 });
    expect(tracker.hasEpisode(id)).toBe(false);
    expect(tracker.acknowledge(id, 1400, null, null)).toEqual({ ok: false, reason: "unknown" });
  });

  it("a rule in no family, or in two, is refused when the tracker is made", () => {
    const make = (families: Record<string, string[]>) => () =>
      new EpisodeTracker(
        CONDITIONS,
        { families, closeAfter: 5, updateIntervalMs: 0 },
        () => {},
        () => ({}),
      );
    expect(make({ level: ["WE1"] })).toThrow(/WE2 must be in exactly one family, is in none/);
    expect(make({ a: [...ALERT_FAMILIES.level, ...ALERT_FAMILIES.variation], b: ["WE1"] })).toThrow(
      /WE1 must be in exactly one family, is in a, b/,
    );
    expect(
      () =>
        new EpisodeTracker(
          CONDITIONS,
          { families: ALERT_FAMILIES, closeAfter: 0, updateIntervalMs: 0 },
          () => {},
          () => ({}),
        ),
    ).toThrow(/--episode-close-after/);
  });
});

describe("alert episodes - random sequences", () => {
  it.each([
    [1, 3, 0],
    [2, 10, 500],
    [3, 50, 2000],
  ])("seed %i, close after %i, update interval %i: the events of the reference", (seed, closeAfter, updateIntervalMs) => {
    const steps = randomSteps(seed, 6000);
    const { events } = track({ closeAfter, updateIntervalMs }, steps);
    expect(events.length).toBeGreaterThan(50);
    expect(events.map(brief)).toEqual(reference({ closeAfter, updateIntervalMs }, steps));
  });

  it("a checkpoint of the state in the middle (through JSON) continues with the same events, ids and acknowledgements", () => {
    const steps = randomSteps(7, 4000);
    const settings = { closeAfter: 20, updateIntervalMs: 300 };
    for (const cut of [500, 1777, 3001]) {
      // Uninterrupted, with an acknowledgement at the cut.
      const whole = track(settings, steps.slice(0, cut));
      const open = whole.tracker.openEpisodes();
      expect(open.length).toBeGreaterThan(0);
      expect(whole.tracker.acknowledge(open[0].episode_id, 99, "qa", null).ok).toBe(true);
      feed(whole.tracker, steps.slice(cut), cut);
      expect(whole.events.some((e) => e.event === "closed" && e.acknowledged_by === "qa")).toBe(true);
      // Stopped at the cut (after the same acknowledgement), checkpointed, restored into a new tracker.
      const first = track(settings, steps.slice(0, cut));
      first.tracker.acknowledge(open[0].episode_id, 99, "qa", null);
      const saved = JSON.parse(JSON.stringify(first.tracker.saveKeys(KEYS, (k) => KEYS.indexOf(k))));
      const second = track(settings, []);
      const restored = second.tracker.restoreKeys(saved, (k) => KEYS.indexOf(k));
      expect(restored.map((e) => e.episode_id).sort()).toEqual(open.map((e) => e.episode_id).sort());
      feed(second.tracker, steps.slice(cut), cut);
      expect([...first.events, ...second.events]).toEqual(whole.events);
    }
  });
});

describe("alert episodes - a sink instead of a function", () => {
  it("an AlertEncoder as the tracker's sink decodes to the events the function received, member for member and as JSON", () => {
    const steps = randomSteps(11, 6000);
    const settings = { closeAfter: 7, updateIntervalMs: 300 };
    const { events, tracker } = track(settings, steps.slice(0, 3000));
    const encoder = new AlertEncoder();
    const sunk = new EpisodeTracker(CONDITIONS, { families: ALERT_FAMILIES, ...settings }, encoder, (key) => ({
      machine_id: key.split("/")[0],
      sensor_type: key.split("/")[1],
    }));
    feed(sunk, steps.slice(0, 3000), 0);
    // An acknowledgement in the middle: its event and the later ones carry it.
    const episode = tracker.openEpisodes()[0].episode_id;
    const acked = tracker.acknowledge(episode, 99, "qa", "checked");
    expect(sunk.acknowledge(episode, 99, "qa", "checked")).toEqual(acked);
    feed(tracker, steps.slice(3000), 3000);
    feed(sunk, steps.slice(3000), 3000);
    const taken = encoder.take();
    expect(events.length).toBeGreaterThan(100);
    expect(encoder.count).toBe(0);
    const decoded = decodeAlerts(taken as EncodedAlerts);
    expect(decoded).toEqual(events);
    expect(JSON.stringify(decoded)).toBe(JSON.stringify(events));
    expect(sunk.events).toBe(tracker.events);
  });

  it("an encoder that keeps its strings sends each once, starts over past STRINGS_KEPT_MAX, and one decoder per encoder gives the events back", () => {
    const steps = randomSteps(12, 6000);
    const settings = { closeAfter: 7, updateIntervalMs: 300 };
    const once = track(settings, steps).events;
    // Acknowledgement notes, free text, on three events in four: they fill the table past its bound.
    const events = [...once, ...once].map((e, i) => (i % 4 === 0 ? e : { ...e, ack_note: `note ${i}` }));
    const encoder = new AlertEncoder(true);
    const decoder = new AlertDecoder();
    const taken: EncodedAlerts[] = [];
    const back: AlertEpisodeEvent[] = [];
    // Batches of a few events, as a worker's emits.
    events.forEach((e, i) => {
      encoder.add(e);
      if (i % 5 !== 4) return;
      const t = encoder.take() as EncodedAlerts;
      taken.push(t);
      back.push(...decoder.decode(structuredClone(t)));
    });
    const rest = encoder.take();
    if (rest !== null) back.push(...decoder.decode(rest));
    expect(events.length).toBeGreaterThan((4 / 3) * STRINGS_KEPT_MAX);
    expect(back).toEqual(events);
    expect(JSON.stringify(back)).toBe(JSON.stringify(events));
    // A batch brings only strings new to the table: none twice until it starts over.
    let sent = new Set<string>();
    let twice = 0;
    for (const t of taken) {
      if (t.stringsFrom === 0) sent = new Set();
      for (const x of t.strings) twice += sent.has(x) ? 1 : 0;
      for (const x of t.strings) sent.add(x);
    }
    expect(twice).toBe(0);
    expect(taken.slice(1, 50).some((t) => t.strings.every((x) => x.startsWith("note ")))).toBe(true);
    const restarts = taken.filter((t) => t.stringsFrom === 0).length;
    expect(restarts).toBeGreaterThan(1);
    expect(Math.max(...taken.map((t) => t.stringsFrom + t.strings.length))).toBeLessThan(STRINGS_KEPT_MAX + 64);
    // A batch whose strings the decoder has not followed is refused, not decoded with the wrong strings.
    const later = taken.findIndex((t, i) => i > 0 && t.stringsFrom > 0);
    expect(() => new AlertDecoder().decode(taken[later])).toThrow(/out of order/);
    expect(() => decodeAlerts(taken[later])).toThrow(/out of order/);
  });
});

describe("alert episodes - a tracker's sink across string-table restarts", () => {
  it("an episode's constant block, made once, is made again after the encoder's table starts over: one decoder gives the function's events", () => {
    const steps = randomSteps(13, 100_000);
    const settings = { families: ALERT_FAMILIES, closeAfter: 2, updateIntervalMs: 300 };
    const fields = (key: string) => ({ machine_id: key.split("/")[0], sensor_type: key.split("/")[1] });
    const events: AlertEpisodeEvent[] = [];
    const byFunction = new EpisodeTracker(CONDITIONS, settings, (e) => events.push(e), fields);
    const encoder = new AlertEncoder(true);
    const sunk = new EpisodeTracker(CONDITIONS, settings, encoder, fields);
    const decoder = new AlertDecoder();
    const back: AlertEpisodeEvent[] = [];
    let notes = 0;
    let restarts = 0;
    steps.forEach(([k, time, rules], i) => {
      byFunction.observe(k, KEYS[k], row(rules), i, time, time / 10);
      sunk.observe(k, KEYS[k], row(rules), i, time, time / 10);
      // Every episode acknowledged with a note of its own: free text that fills the string table,
      // while the episodes opened before a restart go on after it.
      for (const e of byFunction.openEpisodes()) {
        if (e.acknowledged_at !== null) continue;
        const note = `note ${notes++}`;
        expect(sunk.acknowledge(e.episode_id, time, "qa", note)).toEqual(byFunction.acknowledge(e.episode_id, time, "qa", note));
      }
      if (i % 7 !== 6) return;
      const t = encoder.take();
      if (t === null) return;
      if (t.stringsFrom === 0) restarts++;
      back.push(...decoder.decode(structuredClone(t)));
    });
    const rest = encoder.take();
    if (rest !== null) back.push(...decoder.decode(rest));
    // The first batch starts the table; then at least one restart with episodes open across it.
    expect(notes).toBeGreaterThan(STRINGS_KEPT_MAX);
    expect(restarts).toBeGreaterThan(1);
    expect(back.length).toBe(events.length);
    expect(JSON.stringify(back)).toBe(JSON.stringify(events));
  });
});

describe("alert episodes - one sensor's charts per operating mode", () => {
  const MODE_KEYS = ["M-1/temperature/running", "M-1/temperature/idle", "M-1/pressure/running"];
  const trackModes = (sensorKeyParts: number | undefined, steps: readonly Step[]) => {
    const events: AlertEpisodeEvent[] = [];
    const tracker = new EpisodeTracker(
      CONDITIONS,
      { families: ALERT_FAMILIES, closeAfter: 50, updateIntervalMs: 10_000, sensorKeyParts },
      (e) => events.push(e),
      () => ({}),
    );
    steps.forEach(([k, time, rules], i) => tracker.observe(k, MODE_KEYS[k], row(rules), i, time, 0));
    return { events, tracker };
  };
  // An episode on the running chart; the machine goes idle (the sensor's rows move to the idle
  // chart) while another sensor's running chart keeps its own episode.
  const steps: Step[] = [
    [0, 1000, ["CUSUM"]],
    [2, 1050, ["EWMA"]],
    [0, 1100, ["CUSUM"]],
    [0, 1200, []],
    [1, 1300, []],
    [2, 1350, []],
    [1, 1400, []],
  ];

  it("the episode of the mode the machine left closes at that mode's last reading; another sensor's stays open", () => {
    const { events, tracker } = trackModes(2, steps);
    const closed = events.filter((e) => e.event === "closed");
    expect(closed.map((e) => [e.key, e.closed_at, e.firings])).toEqual([["M-1/temperature/running", 1200, 2]]);
    expect(tracker.openEpisodes().map((e) => e.key)).toEqual(["M-1/pressure/running"]);
  });

  it("without sensorKeyParts the keys are independent: nothing closes before its quiet readings", () => {
    const { events } = trackModes(undefined, steps);
    expect(events.filter((e) => e.event === "closed")).toEqual([]);
  });

  it("a checkpoint taken before the mode change closes the episode at the same reading after a restore", () => {
    const whole = trackModes(2, steps);
    for (let cut = 1; cut < steps.length; cut++) {
      const first = trackModes(2, steps.slice(0, cut));
      const saved = JSON.parse(JSON.stringify(first.tracker.saveKeys(MODE_KEYS, (k) => MODE_KEYS.indexOf(k))));
      const second = trackModes(2, []);
      second.tracker.restoreKeys(saved, (k) => MODE_KEYS.indexOf(k));
      steps.slice(cut).forEach(([k, time, rules], i) => second.tracker.observe(k, MODE_KEYS[k], row(rules), cut + i, time, 0));
      expect([...first.events, ...second.events].map(brief), `cut ${cut}`).toEqual(whole.events.map(brief));
    }
  });
});

describe("alert episodes - episode ids", () => {
  /** FNV-1a (64-bit) in BigInt arithmetic, as the definition reads: the reference for the 32-bit halves. */
  function fnv1a64(text: string): string {
    let h = 0xcbf29ce484222325n;
    for (let i = 0; i < text.length; i++) {
      h ^= BigInt(text.charCodeAt(i));
      h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
    }
    return h.toString(16).padStart(16, "0");
  }

  it("equal to FNV-1a in 64-bit arithmetic on random keys, times and positions (non-ASCII and surrogates included)", () => {
    const rng = new SeededRandom(13);
    const alphabet = ["M", "-", "0", "7", "/", "t", "é", "温", "\u{1F600}", "\uffff", "\u0000", "."];
    for (let n = 0; n < 2000; n++) {
      let key = "";
      const length = Math.floor(rng.next() * 40);
      for (let i = 0; i < length; i++) key += alphabet[Math.floor(rng.next() * alphabet.length)];
      const family = rng.next() < 0.5 ? "level" : "variation";
      const time = rng.next() < 0.2 ? -Math.floor(rng.next() * 8.64e15) : Math.floor(rng.next() * 8.64e15) + (rng.next() < 0.3 ? 0.5 : 0);
      const position = Math.floor(rng.next() * 2 ** 53);
      expect(episodeId(key, family, time, position)).toBe(fnv1a64(`${key}\u0000${family}\u0000${time}\u0000${position}`));
    }
    // A known FNV-1a 64 value: "a" hashes to af63dc4c8601ec8c (the FNV reference test vectors).
    expect(fnv1a64("a")).toBe("af63dc4c8601ec8c");
    expect(episodeId("", "", 0, 0)).toBe(fnv1a64("\u0000\u00000\u00000"));
    // Numbers at the digit splits' edges: 2^31 ± 1, multiples of 1e8 and one off, the largest safe integer, -0.
    const edges = [
      2 ** 31 - 1,
      2 ** 31,
      2 ** 31 + 1,
      1e8,
      1e8 - 1,
      1e8 + 1,
      3e15,
      3e15 + 7,
      2 ** 53 - 1,
      -(2 ** 53 - 1),
      -0,
      9,
      10,
      1e16,
      2 ** 53,
      1e21,
    ];
    for (const t of edges) for (const p of edges) expect(episodeId("k", "level", t, p)).toBe(fnv1a64(`k\u0000level\u0000${t}\u0000${p}`));
  });
});

describe("alert episodes - fired conditions", () => {
  it("the mask tables fire the conditions a test of each gives, on integer masks and on odd values (NaN, ±∞, -0, fractions, negatives, past 8 bits)", () => {
    const fired = new FiredConditions(CONDITIONS);
    const rng = new SeededRandom(21);
    const odd = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 0.5, 1.5, -3, 256, 257, 2 ** 31 + 5, 1, 0];
    const row = new Float64Array(SPC_OUT_FIELDS);
    for (let n = 0; n < 20000; n++) {
      for (let c = 0; c < SPC_OUT_FIELDS; c++)
        row[c] = rng.next() < 0.2 ? odd[Math.floor(rng.next() * odd.length)] : Math.floor(rng.next() * 512) * (rng.next() < 0.5 ? 1 : 0);
      let expected = 0;
      CONDITIONS.forEach((c, ci) => {
        const v = row[c.column];
        if (c.bit === 0 ? v === 1 : Number.isFinite(v) && (v & c.bit) !== 0) expected |= 1 << ci;
      });
      expect(fired.of(row, 0)).toBe(expected);
    }
  });
});

describe("alert episodes - a chunk's event rows against every row observed", () => {
  const MODE_KEYS = ["M-1/temperature/running", "M-1/temperature/idle", "M-1/pressure/running"];
  /** One reading: key index, rules that fire, whether the key has limits there. */
  type ChunkStep = [key: number, rules: readonly string[], limits: boolean];
  const settings = (sensorKeyParts?: number): EpisodeSettings => ({
    families: ALERT_FAMILIES,
    closeAfter: 5,
    updateIntervalMs: 30,
    sensorKeyParts,
  });
  const tracker = (s: EpisodeSettings, events: AlertEpisodeEvent[]): EpisodeTracker =>
    new EpisodeTracker(
      CONDITIONS,
      s,
      (e) => events.push(e),
      (key) => ({ key }),
    );
  const stepRow = ([, rules, limits]: ChunkStep): Float64Array => {
    const r = row(rules);
    if (!limits) r[SPC_COL.limits_version] = 0;
    return r;
  };
  const loud = (r: Float64Array): boolean =>
    r[SPC_COL.we_mask] > 0 ||
    r[SPC_COL.nelson_mask] > 0 ||
    r[SPC_COL.mr_mask] > 0 ||
    r[SPC_COL.cusum_alarm] === 1 ||
    r[SPC_COL.ewma_alarm] === 1;

  /** Reading i at time 10·i, value i/4: every row observed (those with limits), as `observe`'s callers do. */
  const perRow = (s: EpisodeSettings, steps: readonly ChunkStep[]): AlertEpisodeEvent[] => {
    const events: AlertEpisodeEvent[] = [];
    const t = tracker(s, events);
    steps.forEach((step, i) => {
      if (step[2]) t.observe(step[0], MODE_KEYS[step[0]], stepRow(step), i, 10 * i, i / 4);
    });
    return events;
  };

  /** The same readings as chunks cut at `cuts`, each with the kernel's event list (loud rows and the row after a loud one of its key). */
  const chunked = (s: EpisodeSettings, steps: readonly ChunkStep[], cuts: readonly number[]): AlertEpisodeEvent[] => {
    const events: AlertEpisodeEvent[] = [];
    const t = tracker(s, events);
    const lastLoud = new Map<number, boolean>();
    const bounds = [0, ...cuts, steps.length];
    for (let c = 0; c + 1 < bounds.length; c++) {
      const part = steps.slice(bounds[c], bounds[c + 1]);
      const at = (j: number): number => bounds[c] + j;
      const rows = new Float64Array(part.length * SPC_OUT_FIELDS);
      const listed: number[] = [];
      part.forEach((step, j) => {
        const r = stepRow(step);
        rows.set(r, j * SPC_OUT_FIELDS);
        if (loud(r) || lastLoud.get(step[0]) === true) listed.push(j);
        lastLoud.set(step[0], loud(r));
      });
      const chunk = {
        length: part.length,
        keyIds: Uint32Array.from(part, (step) => step[0]),
        positions: Float64Array.from(part, (_, j) => at(j)),
        times: Float64Array.from(part, (_, j) => 10 * at(j)),
        values: Float64Array.from(part, (_, j) => at(j) / 4),
      };
      t.observeChunk(chunk, rows, Uint32Array.from(listed), (id) => MODE_KEYS[id]);
    }
    return events;
  };

  // A rule whose pattern takes several points: its opening's context reaches back over a chunk boundary.
  const wide = CONDITIONS.find((c) => c.window >= 6 && c.window <= 10) as (typeof CONDITIONS)[number];

  it("an opening's points reach back into the chunk before; a key closes exactly at a chunk's last row and at the next one's first", () => {
    const steps: ChunkStep[] = Array.from({ length: 60 }, () => [0, [], true]);
    steps[38] = [0, [wide.name], true];
    // closeAfter 5: the episode opened at reading 38 closes at reading 43, the last row of the second chunk.
    steps[50] = [0, ["CUSUM"], true];
    // … and the one opened at 50 at reading 55, the first row of the fourth chunk.
    const events = chunked(settings(), steps, [36, 44, 55]);
    expect(events).toEqual(perRow(settings(), steps));
    const opened = events.filter((e) => e.event === "opened");
    expect(opened[0].points.map((p) => p.position)).toEqual(Array.from({ length: wide.window }, (_, j) => 39 - wide.window + j));
    expect(opened[0].points[0].position).toBeLessThan(36);
    expect(opened[0].points.map((p) => [p.time, p.value])).toEqual(opened[0].points.map((p) => [10 * p.position, p.position / 4]));
    expect(events.filter((e) => e.event === "closed").map((e) => e.closed_at)).toEqual([430, 550]);
  });

  it("random keys, modes, baselines and chunk cuts: the same events, points and ids as every row observed", () => {
    const r = new SeededRandom(77);
    const names = [wide.name, "WE1", "CUSUM", "N4", "STUCK", "EWMA"];
    const seen = new Set<string>();
    for (let round = 0; round < 60; round++) {
      const n = 50 + r.below(400);
      const steps: ChunkStep[] = [];
      // Each key's first readings without limits (the baseline), as the SPC kernel writes them: then limits on every row.
      const baseline = [r.below(40), r.below(40), r.below(40)];
      const seenOf = [0, 0, 0];
      for (let i = 0; i < n; i++) {
        // Runs of one key (a frame's), now and then another; firings now and then.
        const key = steps.length > 0 && r.below(6) !== 0 ? steps[steps.length - 1][0] : r.below(3);
        const rules = r.below(9) === 0 ? [names[r.below(names.length)]] : [];
        steps.push([key, rules, seenOf[key]++ >= baseline[key]]);
      }
      const cuts = [...new Set(Array.from({ length: r.below(8) }, () => 1 + r.below(n - 1)))].sort((a, b) => a - b);
      for (const s of [settings(), settings(2)]) {
        const want = perRow(s, steps);
        expect(chunked(s, steps, cuts), `round ${round}`).toEqual(want);
        for (const e of want) seen.add(`${e.event} ${e.points.length > 1} ${s.sensorKeyParts}`);
      }
    }
    // The rounds open, update and close episodes, by quiet readings and by a mode change, with several points.
    expect(seen).toEqual(
      new Set([
        "opened true undefined",
        "updated true undefined",
        "closed true undefined",
        "opened true 2",
        "updated true 2",
        "closed true 2",
        "opened false undefined",
        "opened false 2",
        "closed false undefined",
        "closed false 2",
        "updated false undefined",
        "updated false 2",
      ]),
    );
  });
});
