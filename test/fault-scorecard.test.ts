import { describe, expect, it } from "vitest";
import type { FaultLabel } from "../connectors/sim/mod.js";
import { type AlertOpening, alertOpening, FaultScorecard, formatScorecard, quantile, scoreFaults } from "../engine/jobs/fault-scorecard.js";

const T0 = Date.UTC(2026, 0, 1);
const S = 1000;
const H = 3_600_000;

function label(sensor: string, fault: FaultLabel["fault"], start: number, end: number, machine = "M-001"): FaultLabel {
  return { machine_id: machine, sensor_type: sensor as FaultLabel["sensor_type"], fault, start: T0 + start, end: T0 + end, magnitude: 1 };
}

function opening(sensor: string, at: number, machine = "M-001"): AlertOpening {
  return { machine_id: machine, sensor_type: sensor, at: T0 + at };
}

const KEYS = ["M-001/temperature", "M-001/vibration", "M-002/temperature", "M-002/vibration"];
/** Two simulated hours of four sensor keys. */
const COVERAGE = { firstReadingAt: T0, lastReadingAt: T0 + 2 * H, sensorKeys: KEYS };

function kind(card: ReturnType<typeof scoreFaults>, k: string) {
  const row = card.kinds.find((r) => r.kind === k);
  if (row === undefined) throw new Error(`no row ${k}`);
  return row;
}

describe("fault scorecard - hand-made labels and openings", () => {
  it("detects a fault by an opening on its sensor inside [start, end + grace], with the delay from the start", () => {
    const labels = [label("temperature", "level_shift", 100 * S, 200 * S), label("vibration", "level_shift", 1000 * S, 1100 * S)];
    const card = scoreFaults(labels, [opening("temperature", 103 * S), opening("vibration", 1002.5 * S)], COVERAGE);
    const row = kind(card, "level_shift");
    expect(row).toMatchObject({ injected: 2, detected: 2, rate: 1, episodesPerFaultMedian: 1, episodesPerFaultMax: 1 });
    // Delays 3 s and 2.5 s: median 2.75, p90 2.5 + 0.9 × 0.5.
    expect(row.delayMedianS).toBeCloseTo(2.75, 12);
    expect(row.delayP90S).toBeCloseTo(2.95, 12);
    expect(card.falseEpisodes).toBe(0);
    expect(card.openings).toBe(2);
  });

  it("counts an opening on another sensor, or on the same sensor type of another machine, as false", () => {
    const labels = [label("temperature", "spike", 100 * S, 100 * S)];
    const card = scoreFaults(labels, [opening("vibration", 100 * S), opening("temperature", 100 * S, "M-002")], COVERAGE);
    expect(kind(card, "spike")).toMatchObject({ injected: 1, detected: 0, rate: 0, delayMedianS: null, episodesPerFaultMax: null });
    expect(card.falseEpisodes).toBe(2);
    // 2 false over 4 keys × 2 h.
    expect(card.falsePerKeyPerHour).toBeCloseTo(0.25, 12);
  });

  it("takes the grace after the end (default 60 s) and not a millisecond more; nothing before the start", () => {
    const labels = [label("temperature", "stuck", 100 * S, 200 * S)];
    const inGrace = scoreFaults(labels, [opening("temperature", 260 * S)], COVERAGE);
    expect(kind(inGrace, "stuck")).toMatchObject({ detected: 1, delayMedianS: 160 });
    const after = scoreFaults(labels, [opening("temperature", 260 * S + 1)], COVERAGE);
    expect(kind(after, "stuck").detected).toBe(0);
    expect(after.falseEpisodes).toBe(1);
    const before = scoreFaults(labels, [opening("temperature", 100 * S - 1)], COVERAGE);
    expect(kind(before, "stuck").detected).toBe(0);
    expect(before.falseEpisodes).toBe(1);
    const shortGrace = scoreFaults(labels, [opening("temperature", 230 * S)], COVERAGE, 10 * S);
    expect(kind(shortGrace, "stuck").detected).toBe(0);
    expect(shortGrace.graceMs).toBe(10 * S);
  });

  it("gives an opening in the overlap of two faults' windows to the fault under way, else to the earlier", () => {
    // The first fault's grace (until 160 s) overlaps the second fault (from 130 s): an opening
    // at 140 s is the second fault's, which is under way.
    const labels = [label("temperature", "spike", 100 * S, 100 * S), label("temperature", "noise_burst", 130 * S, 300 * S)];
    const card = scoreFaults(labels, [opening("temperature", 140 * S), opening("temperature", 170 * S)], COVERAGE);
    expect(kind(card, "spike")).toMatchObject({ detected: 0 });
    expect(kind(card, "noise_burst")).toMatchObject({ detected: 1, delayMedianS: 10, episodesPerFaultMax: 2 });
    expect(card.falseEpisodes).toBe(0);
    // Two spikes over: an opening in both graces goes to the earlier.
    const spikes = [label("vibration", "spike", 100 * S, 100 * S), label("vibration", "spike", 120 * S, 120 * S)];
    const both = scoreFaults(spikes, [opening("vibration", 125 * S)], COVERAGE);
    expect(kind(both, "spike")).toMatchObject({ detected: 1, delayMedianS: 25 });
  });

  it("counts the openings attributed to each detected fault: median and max", () => {
    const labels = [
      label("temperature", "slow_drift", 0, 600 * S),
      label("vibration", "slow_drift", 0, 600 * S),
      label("temperature", "slow_drift", 1000 * S, 1600 * S, "M-002"),
      label("vibration", "slow_drift", 3000 * S, 3600 * S, "M-002"),
    ];
    const openings = [
      ...[10, 20, 30].map((t) => opening("temperature", t * S)),
      opening("vibration", 50 * S),
      ...[1100, 1200, 1300, 1400, 1500, 1600].map((t) => opening("temperature", t * S, "M-002")),
    ];
    const row = kind(scoreFaults(labels, openings, COVERAGE), "slow_drift");
    expect(row).toMatchObject({ injected: 4, detected: 3, rate: 0.75, episodesPerFaultMedian: 3, episodesPerFaultMax: 6 });
    // Delays 10 s, 50 s, 100 s.
    expect(row.delayMedianS).toBe(50);
    expect(row.delayP90S).toBeCloseTo(90, 12);
  });

  it("counts false episodes per sensor key over the simulated hours and names the worst key", () => {
    const openings = [
      ...Array.from({ length: 6 }, (_, i) => opening("vibration", (i + 1) * 60 * S, "M-002")),
      opening("temperature", 5 * S),
      opening("temperature", 7 * S, "M-002"),
    ];
    const card = scoreFaults([], openings, COVERAGE);
    expect(card.falseEpisodes).toBe(8);
    expect(card.sensorKeys).toBe(4);
    expect(card.simulatedHours).toBe(2);
    expect(card.falsePerKeyPerHour).toBe(1);
    expect(card.worst).toEqual({ key: "M-002/vibration", falseEpisodes: 6, perHour: 3 });
    expect(card.all).toMatchObject({ injected: 0, detected: 0, rate: null });
  });

  it("cuts a fault still running at the end at the last reading, and leaves out faults that start after it", () => {
    const labels = [
      label("temperature", "level_shift", 2 * H - 30 * S, 2 * H + 600 * S),
      label("vibration", "level_shift", 2 * H + 1, 2 * H + 60 * S),
    ];
    const openings = [opening("temperature", 2 * H - 10 * S), opening("temperature", 2 * H + 5 * S), opening("vibration", 2 * H + 30 * S)];
    const card = scoreFaults(labels, openings, COVERAGE);
    expect(kind(card, "level_shift")).toMatchObject({ injected: 1, detected: 1, delayMedianS: 20, episodesPerFaultMax: 1 });
    expect(card.labelsAfterEnd).toBe(1);
    // Both openings after the last reading are outside every cut window.
    expect(card.falseEpisodes).toBe(2);
  });

  it("scores the same fed in pieces as in one call (labels before the openings they explain)", () => {
    const labels = [label("temperature", "spike", 100 * S, 100 * S), label("vibration", "stuck", 500 * S, 560 * S)];
    const openings = [opening("temperature", 50 * S), opening("temperature", 101 * S), opening("vibration", 530 * S)];
    const card = new FaultScorecard();
    card.addSensorKeys(KEYS);
    card.coverReadings(T0, T0 + H);
    card.addLabels(labels.slice(0, 1));
    card.addOpening(openings[0]);
    card.addOpening(openings[1]);
    card.coverReadings(T0 + H, T0 + 2 * H);
    card.addLabels(labels.slice(1));
    card.addOpening(openings[2]);
    expect(card.result()).toEqual(scoreFaults(labels, openings, COVERAGE));
  });

  it("says what chance alone would detect: openings at the sensor's false rate falling in the fault's window", () => {
    // 4 false openings on M-001/temperature over 2 h; the fault's window is 100 s + 60 s of grace.
    const labels = [label("temperature", "stuck", 1000 * S, 1100 * S), label("vibration", "stuck", 1000 * S, 1100 * S)];
    const openings = [1, 2, 3, 4].map((i) => opening("temperature", i * 1500 * S));
    const card = scoreFaults(labels, openings, COVERAGE);
    const p = 1 - Math.exp((-4 / (2 * H)) * 160 * S);
    // The vibration sensor had no false opening: no chance there.
    expect(kind(card, "stuck").chanceRate).toBeCloseTo(p / 2, 12);
    expect(card.all.chanceRate).toBeCloseTo(p / 2, 12);
    expect(kind(card, "spike").chanceRate).toBeNull();
    expect(formatScorecard(card).split("\n")[10]).toBe(
      `detected by chance alone (openings at each sensor's false rate): stuck ${(50 * p).toFixed(1)}%, all ${(50 * p).toFixed(1)}%`,
    );
  });

  it("reads openings from today's SPC alert events and from episode events, nothing else", () => {
    // A per-rule SPC alert event as operators/spc emitted them before episodes, whole.
    const spc = (state: "open" | "closed") => ({
      type: "spc_alert" as const,
      state,
      key: "M-003/pressure/running",
      fields: { machine_id: "M-003", sensor_type: "pressure" },
      rule: "WE1",
      also: "N1",
      description: "",
      severity: "high",
      limits_version: 1,
      cl: 0,
      sigma: 1,
      opened_at: T0 + 5,
      closed_at: null,
      firings: 1,
      points: [],
    });
    expect(alertOpening(spc("open"))).toEqual({ machine_id: "M-003", sensor_type: "pressure", at: T0 + 5 });
    expect(alertOpening(spc("closed"))).toBeNull();
    const episode = (event: string) => ({
      type: "alert_episode" as const,
      event,
      key: "M-004/humidity/idle",
      fields: {},
      opened_at: T0 + 9,
    });
    // No fields: the sensor from the key's first two parts.
    expect(alertOpening(episode("opened"))).toEqual({ machine_id: "M-004", sensor_type: "humidity", at: T0 + 9 });
    for (const e of ["updated", "closed", "acknowledged"]) expect(alertOpening(episode(e))).toBeNull();
    const card = new FaultScorecard();
    card.observe(spc("open"));
    card.observe(spc("closed"));
    card.observe(episode("updated"));
    expect(card.result().openings).toBe(1);
  });

  it("prints one row per fault kind, an all row and the false-episode line", () => {
    const labels = [label("temperature", "spike", 100 * S, 100 * S)];
    const text = formatScorecard(scoreFaults(labels, [opening("temperature", 100 * S), opening("vibration", 9 * S)], COVERAGE));
    const lines = text.split("\n");
    expect(lines[1]).toMatch(
      /^fault kind +\| injected \| detected \| by escalation \| +rate \| median delay \| p90 delay \| episodes\/fault \(median, mean, max\)$/,
    );
    expect(lines.slice(3, 9).map((l) => l.split(" | ")[0].trim())).toEqual([
      "spike",
      "level_shift",
      "slow_drift",
      "stuck",
      "noise_burst",
      "all",
    ]);
    expect(lines[3].split(" | ").map((c) => c.trim())).toEqual(["spike", "1", "1", "0", "100.0%", "0.0 s", "0.0 s", "1, 1.00, 1"]);
    expect(lines[9]).toBe(
      "false episodes: 1 over 2.00 simulated hours, 4 sensor keys: 0.13 per key per hour (worst: M-001/vibration 0.50 per hour); target ≤ 1 per key per 8 h",
    );
  });

  it("detects a fault inside an open episode by the episode's escalation (a new rule or a higher severity), counted apart from openings", () => {
    const episode = (event: string, at: number, rules: string[], severity: string, id = "e1") => ({
      type: "alert_episode" as const,
      event,
      episode_id: id,
      key: "M-001/temperature/running",
      fields: { machine_id: "M-001", sensor_type: "temperature" },
      opened_at: T0 + (id === "e1" ? 100 : 5000) * S,
      last_fired_at: T0 + at,
      rules,
      severity,
    });
    const card = new FaultScorecard();
    card.addSensorKeys(KEYS);
    card.coverReadings(T0, T0 + 2 * H);
    // A level shift from 100 s to 300 s, then a spike at once after it, then a stuck sensor.
    card.addLabels([
      label("temperature", "level_shift", 100 * S, 300 * S),
      label("temperature", "spike", 300.1 * S, 300.1 * S),
      label("temperature", "stuck", 400 * S, 450 * S),
    ]);
    card.observe(episode("opened", 100 * S, ["CUSUM"], "medium"));
    // Updates that change neither the rules nor the severity escalate nothing.
    card.observe(episode("updated", 200 * S, ["CUSUM"], "medium"));
    // The spike: JUMP joins, the episode turns high.
    card.observe(episode("updated", 300.1 * S, ["CUSUM", "JUMP"], "high"));
    card.observe(episode("acknowledged", 300.1 * S, ["CUSUM", "JUMP"], "high"));
    card.observe(episode("closed", 330 * S, ["CUSUM", "JUMP"], "high"));
    // After the close the episode is forgotten: a later update of the same id escalates nothing.
    card.observe(episode("updated", 420 * S, ["CUSUM", "JUMP", "EWMA"], "high"));
    // An escalation outside every window is counted apart, not as a false episode.
    card.observe(episode("opened", 5000 * S, ["EWMA"], "medium", "e2"));
    card.observe(episode("updated", 5001 * S, ["EWMA", "WE4"], "medium", "e2"));
    const r = card.result();
    expect(kind(r, "level_shift")).toMatchObject({
      detected: 1,
      detectedByEscalation: 0,
      episodesPerFaultMedian: 1,
      episodesPerFaultMean: 1,
    });
    expect(kind(r, "spike")).toMatchObject({ detected: 1, detectedByEscalation: 1, delayMedianS: 0, episodesPerFaultMedian: null });
    expect(kind(r, "stuck")).toMatchObject({ detected: 0, detectedByEscalation: 0 });
    expect([r.openings, r.escalations, r.falseEscalations, r.falseEpisodes]).toEqual([2, 2, 1, 1]);
    expect(r.all).toMatchObject({ detected: 2, detectedByEscalation: 1 });
  });

  it("takes quantiles linearly between order statistics", () => {
    expect(quantile([], 0.5)).toBeNull();
    expect(quantile([7], 0.9)).toBe(7);
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([0, 10], 0.9)).toBe(9);
  });
});
