import { describe, expect, it } from "vitest";
import { decodeRowBinary, encodeRowBinary, RowBinaryWriter } from "../connectors/clickhouse/mod.js";
import { AlertRowsBinary, alertRow, POINTS_TEXT_KEPT_MAX } from "../engine/jobs/alert-rows.js";
import type { AlertEpisodeEvent, AlertPoint } from "../operators/spc/mod.js";

/**
 * ml_alerts rows of a batch of events as RowBinary (engine/jobs/alert-rows.ts): the bytes of each
 * row are those of the table's encoder given the row with its points stringified afresh — also
 * when the points text is kept from an earlier event of the episode and the points then change (a
 * drift episode adds points as it goes), when episodes interleave, close and are acknowledged
 * after closing, and when the cache starts over — and a row the table refuses goes to the dead
 * letters with the row as JSON, points as an array, and its index in the batch.
 */

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function event(id: number, points: AlertPoint[], over: Partial<AlertEpisodeEvent> = {}): AlertEpisodeEvent {
  const at = Date.UTC(2026, 0, 1) + id * 1000;
  return {
    type: "alert_episode",
    event: "opened",
    episode_id: id.toString(16).padStart(16, "0"),
    key: `M-${id % 7}/pressure`,
    fields: id % 2 === 0 ? { machine_id: `M-${id % 7}`, sensor_type: "pressure" } : {},
    family: id % 3 === 0 ? "variation" : "level",
    rules: ["WE1"],
    first_rule: "WE1",
    description: "one point beyond 3σ",
    severity: "high",
    opened_at: at,
    last_fired_at: at,
    closed_at: null,
    firings: 1,
    limits_version: 1,
    cl: 6,
    sigma: 0.03,
    points,
    acknowledged_at: null,
    acknowledged_by: null,
    ack_note: null,
    ...over,
  };
}

/** Random points; NaN, -0 and ±∞ among the values now and then. */
function randomPoints(next: () => number, n: number): AlertPoint[] {
  const odd = [Number.NaN, -0, Number.POSITIVE_INFINITY, 0.1 + 0.2];
  return Array.from({ length: n }, (_, i) => ({
    position: 1000 + i,
    time: Date.UTC(2026, 0, 1) + i * 100,
    value: next() < 0.05 ? odd[Math.floor(next() * odd.length)] : (next() - 0.5) * 1e3,
  }));
}

/** A random life of events over a few open episodes at a time: updates, points that change (drift), closings, late acknowledgements. */
function randomEvents(seed: number, count: number): AlertEpisodeEvent[] {
  const next = prng(seed);
  const open = new Map<number, AlertEpisodeEvent>();
  const closed: AlertEpisodeEvent[] = [];
  const out: AlertEpisodeEvent[] = [];
  let ids = 1;
  while (out.length < count) {
    const r = next();
    if (open.size < 5 || r < 0.15) {
      const e = event(ids++, randomPoints(next, Math.floor(next() * 33)));
      open.set(Number.parseInt(e.episode_id, 16), e);
      out.push(e);
      continue;
    }
    const keys = [...open.keys()];
    const id = keys[Math.floor(next() * keys.length)];
    const last = open.get(id) as AlertEpisodeEvent;
    let e: AlertEpisodeEvent;
    if (r < 0.5) e = { ...last, event: "updated", firings: last.firings + 1, rules: [...last.rules, "WE2"] };
    else if (r < 0.65) {
      // As the drift watch: a point added, the oldest dropped past 8, a fresh array.
      const points = [...last.points, { position: 5000 + out.length, time: last.last_fired_at + 1, value: next() }].slice(-8);
      e = { ...last, event: "updated", points };
    } else if (r < 0.7) {
      // The same positions and times, one value moved: only the values tell the texts apart.
      const points = last.points.map((p, i) => (i === last.points.length - 1 ? { ...p, value: p.value + 1 } : p));
      e = { ...last, event: "updated", points };
    } else if (r < 0.9) {
      e = { ...last, event: "closed", closed_at: last.last_fired_at + 500 };
      open.delete(id);
      closed.push(e);
    } else if (closed.length > 0) {
      const c = closed.pop() as AlertEpisodeEvent;
      e = { ...c, event: "acknowledged", acknowledged_at: c.closed_at, acknowledged_by: "qa", ack_note: "seen" };
    } else continue;
    if (e.closed_at === null) open.set(id, e);
    out.push(e);
  }
  return out;
}

/** The rows each encoded alone, its points stringified from the event itself. */
function freshBytes(events: readonly AlertEpisodeEvent[]): Uint8Array {
  const w = new RowBinaryWriter();
  for (const e of events) encodeRowBinary("ml_alerts", alertRow(e, JSON.stringify(e.points)), w);
  return w.finish().bytes;
}

describe("ml_alerts rows as RowBinary", () => {
  for (const seed of [1, 2, 3]) {
    it(`seed ${seed}: random episodes in batches of random size give the bytes of each row encoded alone`, () => {
      const events = randomEvents(seed, 2000);
      const next = prng(seed + 100);
      const rows = new AlertRowsBinary();
      for (let at = 0; at < events.length; ) {
        const batch = events.slice(at, at + 1 + Math.floor(next() * 40));
        const [encoded, rejected] = rows.encode(batch);
        expect(rejected).toEqual([]);
        expect(encoded.rowStarts.length).toBe(batch.length + 1);
        expect(Buffer.from(encoded.bytes).equals(Buffer.from(freshBytes(batch)))).toBe(true);
        at += batch.length;
      }
    });
  }

  it("an episode's points changed in place after its text was kept give the new text", () => {
    const points = [{ position: 1, time: 2, value: 3 }];
    const e = event(1, points);
    const rows = new AlertRowsBinary();
    rows.encode([e]);
    points[0].value = 4;
    const [encoded] = rows.encode([{ ...e, event: "updated" }]);
    expect(decodeRowBinary("ml_alerts", encoded.bytes)[0].points).toBe('[{"position":1,"time":2,"value":4}]');
  });

  it("past POINTS_TEXT_KEPT_MAX open episodes the kept texts start over and the rows stay the same", () => {
    const next = prng(9);
    const opened = Array.from({ length: POINTS_TEXT_KEPT_MAX + 10 }, (_, i) => event(i + 1, randomPoints(next, 3)));
    const updated = opened.map((e) => ({ ...e, event: "updated" as const, firings: 2 }));
    const rows = new AlertRowsBinary();
    for (const batch of [opened, updated]) {
      const [encoded] = rows.encode(batch);
      expect(Buffer.from(encoded.bytes).equals(Buffer.from(freshBytes(batch)))).toBe(true);
    }
  });

  it("odd members (fractional, edge and out-of-range times and counts, NaN and ∞, no fields, non-ASCII, missing or mistyped strings) give the table encoder's bytes and refusals", () => {
    const next = prng(17);
    const base = event(1, randomPoints(next, 5));
    const day = Date.UTC(2026, 0, 1);
    const odd: Array<Partial<AlertEpisodeEvent>> = [
      {},
      { opened_at: day + 1234.75, last_fired_at: day + 999.999 },
      { opened_at: 0, last_fired_at: 2 ** 32 * 1000 - 1 },
      { opened_at: -1 },
      { last_fired_at: 2 ** 32 * 1000 },
      { opened_at: Number.NaN },
      { closed_at: day + 0.5, acknowledged_at: day + 1.5, acknowledged_by: "Jörg", ack_note: "überprüft ✓" },
      { closed_at: undefined as unknown as null },
      { acknowledged_at: undefined as unknown as null },
      { acknowledged_at: day, acknowledged_by: 7 as unknown as string },
      { firings: 0xffffffff },
      { firings: 2 ** 32 },
      { firings: 1.5 },
      { firings: -0 },
      { limits_version: 2 ** 32 },
      { limits_version: -1 },
      { cl: Number.NaN, sigma: Number.POSITIVE_INFINITY },
      { cl: -0, sigma: 5e-324 },
      { fields: {} },
      { fields: { machine_id: "M-ü" } },
      { fields: { machine_id: 5 as unknown as string, sensor_type: "x" } },
      { key: "no-slash" },
      { key: "M-9/temp/extra", fields: {} },
      { description: undefined as unknown as string },
      { description: null as unknown as string },
      { rules: ["WE1", 3 as unknown as string] },
      { rules: [] },
      { first_rule: undefined as unknown as string },
      { severity: "urgent" as AlertEpisodeEvent["severity"] },
      { family: "niveau ↑" },
      { episode_id: 12 as unknown as string },
    ];
    const events = odd.map((over, i) => ({ ...base, episode_id: `e${i}`, ...over }));
    // Each alone (the table encoder's refusal names the field) and all in one batch.
    const alone = events.map((e) => {
      try {
        return { bytes: Buffer.from(freshBytes([e])).toString("hex"), field: null };
      } catch (error) {
        return { bytes: null, field: (error as { field: string }).field };
      }
    });
    const [encoded, rejected] = new AlertRowsBinary().encode(events);
    const kept = alone.filter((a) => a.bytes !== null).map((a) => a.bytes);
    const got = Array.from({ length: encoded.rowStarts.length - 1 }, (_, r) =>
      Buffer.from(encoded.bytes.subarray(encoded.rowStarts[r], encoded.rowStarts[r + 1])).toString("hex"),
    );
    expect(got).toEqual(kept);
    expect(rejected.map((r) => [r.index, r.error.field])).toEqual(alone.flatMap((a, i) => (a.bytes === null ? [[i, a.field]] : [])));
    expect(rejected.length).toBeGreaterThan(5);
    expect(got.length).toBeGreaterThan(15);
  });

  it("a row the table refuses is a dead letter with its index and the row as JSON (points as an array); the others are written", () => {
    const points = [{ position: 7, time: 8, value: 9.5 }];
    const good = event(1, points);
    const bad = event(2, points, { firings: -1 });
    const worse = event(3, points, { severity: "urgent" as AlertEpisodeEvent["severity"] });
    const [encoded, rejected] = new AlertRowsBinary().encode([good, bad, good, worse]);
    expect(encoded.rowStarts.length).toBe(3);
    expect(Buffer.from(encoded.bytes).equals(Buffer.from(freshBytes([good, good])))).toBe(true);
    expect(rejected.map((r) => [r.index, r.error.field])).toEqual([
      [1, "firings"],
      [3, "severity"],
    ]);
    expect(JSON.parse(rejected[0].line)).toEqual({ ...JSON.parse(JSON.stringify(alertRow(bad, ""))), points });
  });
});
