import { describe, expect, it } from "vitest";
import { allocateBatch, appendRecord, type OutputChunk, SeededRandom, StreamEngine } from "../engine/core/mod.js";
import { observeChunkRows, observeRecord, type RecordAnalysis, type RowContext } from "../operators/mod.js";
import { rollingAnalysis } from "../operators/rolling/mod.js";
import {
  AlertEncoder,
  DEFAULT_SPC_PARAMS,
  decodeAlerts,
  SPC_COL,
  SPC_OUT_FIELDS,
  type AlertEpisodeEvent,
  spcAnalysis,
  type SpcLimits,
} from "../operators/spc/mod.js";

/**
 * The SPC kernel's event list (kernels/spc.ts: rows that are loud or follow a loud row of their
 * key) and the alert episodes that decide only those rows (EpisodeTracker.observeChunk, which
 * counts every row's reading for the hysteresis close in its ring pass) against the per-row path
 * (observeRecord → observe on every row): the same episode events in the same order (points,
 * firings, rules, updates and closes at the same readings), the same masked rows, the same counts.
 */

interface Stream {
  keys: string[];
  records: Array<{ key: number; value: number }>;
  limitsByKey: Map<string, SpcLimits>;
  budgetByKey: Map<string, number>;
}

/** Keys of several behaviours interleaved at random: noise with shifts, trends, alternation, values on the centre line and on thresholds. */
function randomStream(seed: number, keyCount: number, records: number): Stream {
  const r = new SeededRandom(seed);
  const keys = Array.from({ length: keyCount }, (_, k) => `M-${k % 7}/s${k}`);
  const limitsByKey = new Map<string, SpcLimits>();
  const budgetByKey = new Map<string, number>();
  keys.forEach((key, k) => {
    if (k % 3 === 0) limitsByKey.set(key, { cl: 0, sigma: 1 });
    // Rules off for some keys: a budget allowing only WE1, or WE1–3.
    if (k % 4 === 1) budgetByKey.set(key, 0.003);
    if (k % 4 === 2) budgetByKey.set(key, 0.01);
  });
  const normal = (): number => {
    const u = Math.max(r.next(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r.next());
  };
  const seen = new Array<number>(keyCount).fill(0);
  const out: Stream["records"] = [];
  for (let i = 0; i < records; i++) {
    // Bursts of one key now and then: long loud runs inside a batch and across its boundaries.
    const key = r.below(10) === 0 && out.length > 0 ? out[out.length - 1].key : r.below(keyCount);
    const j = seen[key]++;
    const phase = Math.floor(j / 40) % 5;
    let value: number;
    switch (key % 5) {
      case 0:
        value = normal() + (phase === 3 ? 2.5 : 0);
        break;
      case 1:
        value = phase === 2 ? j % 40 : normal();
        break;
      case 2:
        value = phase === 1 ? (j % 2 === 0 ? 2 : -2) : normal();
        break;
      case 3:
        // On the centre line and exactly on the 1σ, 2σ, 3σ thresholds of the fixed limits.
        value = [0, 1, 2, 3, -1, -2, -3][r.below(7)];
        break;
      default:
        value = normal() * (phase === 4 ? 3 : 1);
    }
    out.push({ key, value });
  }
  return { keys, records: out, limitsByKey, budgetByKey };
}

/** Every row loud: one key far above fixed limits, then back, then again — alerts open for whole batches. */
function loudStream(): Stream {
  const records: Stream["records"] = [];
  for (let i = 0; i < 3000; i++) records.push({ key: i % 2, value: i % 700 < 500 ? 10 : 0 });
  return {
    keys: ["A/loud", "B/loud"],
    records,
    limitsByKey: new Map([
      ["A/loud", { cl: 0, sigma: 1 }],
      ["B/loud", { cl: 0, sigma: 1 }],
    ]),
    budgetByKey: new Map([["B/loud", 0.003]]),
  };
}

interface PathResult {
  events: AlertEpisodeEvent[];
  rows: number[][];
  opened: number;
  closed: number;
  open: number;
  truncated: number;
  /** Chunks whose event list differs from the definition (loud, or after loud, on the raw rows) or where a key's rows lose their limits. */
  listMismatches: number;
}

async function runPath(s: Stream, batch: number, perRow: boolean, seed: number): Promise<PathResult> {
  const events: AlertEpisodeEvent[] = [];
  const spc = spcAnalysis({
    params: { ...DEFAULT_SPC_PARAMS, baselineN: 20 },
    limitsByKey: s.limitsByKey,
    budgetByKey: s.budgetByKey,
    ewmaField: "spc_ewma",
    onAlert: (e) => events.push(e),
    keyParts: ["machine_id", "sensor_type"],
    // Times are record indices here: short hysteresis and update interval, so episodes close and update often.
    episodes: { closeAfter: 12, updateIntervalMs: 25 },
  });
  const rolling = rollingAnalysis({ window: { kind: "time", span: 50, capacity: 4 }, alpha: 0.1, timeScale: 1 });
  const analyses: RecordAnalysis[] = [rolling, spc];
  const rows: number[][] = [];
  const ctx: RowContext = { keyId: 0, key: "", position: 0, time: 0, value: 0 };
  const scratch: Float64Array[] = analyses.map(() => new Float64Array(0));
  const keyNames: string[] = [];
  const lastLoud = new Map<number, boolean>();
  let listMismatches = 0;
  const onOutput = (chunk: OutputChunk): void => {
    if (perRow) for (let i = 0; i < chunk.length; i++) observeRecord(analyses, chunk, i, keyNames[chunk.keyIds[i]], ctx, scratch, false);
    else {
      listMismatches += checkList(chunk, lastLoud);
      observeChunkRows(analyses, chunk, (id) => keyNames[id], ctx);
    }
    for (let i = 0; i < chunk.length; i++) rows.push(Array.from(chunk.outs[1].subarray(i * SPC_OUT_FIELDS, (i + 1) * SPC_OUT_FIELDS)));
  };
  const engine = new StreamEngine(
    {
      kernels: analyses.map((a) => a.kernel),
      workers: 1,
      groups: 3,
      keysMax: s.keys.length + 3,
      batchRecordsMax: batch,
      lateness: null,
      reorderRecordsPerKeyMax: 1,
    },
    { onOutput },
  );
  for (const k of s.keys) keyNames[engine.internKey(k)] = k;
  const r = new SeededRandom(seed);
  for (let at = 0; at < s.records.length; ) {
    const n = Math.min(s.records.length - at, 1 + r.below(3 * batch));
    const b = allocateBatch(n);
    for (let i = at; i < at + n; i++) appendRecord(b, s.records[i].key, i, s.records[i].value, i);
    await engine.push(b);
    if (r.below(4) === 0) await engine.flush();
    at += n;
  }
  await engine.flush();
  await engine.close();
  return {
    events,
    rows,
    opened: spc.alerts.opened,
    closed: spc.alerts.closed,
    open: spc.alerts.open,
    truncated: rolling.truncatedRows(),
    listMismatches,
  };
}

/** The chunk's SPC event list against its definition on the kernel's raw rows (before rule masking); returns the differences. */
function checkList(chunk: OutputChunk, lastLoud: Map<number, boolean>): number {
  const rows = chunk.outs[1];
  const want: number[] = [];
  for (let i = 0; i < chunk.length; i++) {
    const at = i * SPC_OUT_FIELDS;
    const loud =
      rows[at + SPC_COL.we_mask] > 0 ||
      rows[at + SPC_COL.nelson_mask] > 0 ||
      rows[at + SPC_COL.mr_mask] > 0 ||
      rows[at + SPC_COL.cusum_alarm] === 1 ||
      rows[at + SPC_COL.ewma_alarm] === 1;
    if (loud || lastLoud.get(chunk.keyIds[i]) === true) want.push(i);
    lastLoud.set(chunk.keyIds[i], loud);
  }
  // A key's rows in a chunk: without limits, then with them (observeChunk reads a key's version only until it has limits).
  const limited = new Set<number>();
  for (let i = 0; i < chunk.length; i++) {
    const withLimits = rows[i * SPC_OUT_FIELDS + SPC_COL.limits_version] > 0;
    if (withLimits) limited.add(chunk.keyIds[i]);
    else if (limited.has(chunk.keyIds[i])) return 1;
  }
  const got = Array.from(chunk.events[1] ?? []);
  expect(chunk.events[0]).toBeNull();
  return got.length === want.length && got.every((v, i) => v === want[i]) ? 0 : 1;
}

async function expectSamePaths(s: Stream, batch: number, seed: number): Promise<PathResult> {
  const perRow = await runPath(s, batch, true, seed);
  const listed = await runPath(s, batch, false, seed);
  expect(listed.listMismatches).toBe(0);
  expect(listed.rows.length).toBe(s.records.length);
  // Bit-equal rows (masks of the rules that are off cleared the same way), NaN included.
  const firstDiff = perRow.rows.findIndex((row, i) => row.some((v, j) => !Object.is(v, listed.rows[i][j])));
  expect(firstDiff).toBe(-1);
  expect(listed.events).toEqual(perRow.events);
  expect([listed.opened, listed.closed, listed.open, listed.truncated]).toEqual([
    perRow.opened,
    perRow.closed,
    perRow.open,
    perRow.truncated,
  ]);
  return perRow;
}

describe("spc event rows - alert episodes from the kernel's event list", () => {
  it.each([
    [1, 7],
    [2, 64],
    [3, 1000],
  ])("seed %i, batches of %i: the same episode events, rows and counts as every row observed", async (seed, batch) => {
    const s = randomStream(seed, 40, 12_000);
    const perRow = await expectSamePaths(s, batch, seed);
    // The stream must exercise what it claims: episodes of both families and several rules, updated, closed, open across batches.
    expect(perRow.opened).toBeGreaterThan(100);
    expect(perRow.closed).toBeGreaterThan(100);
    expect(new Set(perRow.events.flatMap((e) => e.rules)).size).toBeGreaterThan(5);
    expect(new Set(perRow.events.map((e) => e.family))).toEqual(new Set(["level", "variation"]));
    expect(perRow.events.some((e) => e.event === "updated")).toBe(true);
    expect(perRow.events.some((e) => e.points.length > 1)).toBe(true);
    expect(perRow.truncated).toBeGreaterThan(0);
  });

  it("every row loud, episodes open for thousands of rows, rules off for one key", async () => {
    const perRow = await expectSamePaths(loudStream(), 64, 9);
    // B's budget leaves the run rules off (WE2–4, N2): A raises them, B never does.
    const rulesOf = (key: string): Set<string> => new Set(perRow.events.filter((e) => e.key === key).flatMap((e) => e.rules));
    expect(rulesOf("A/loud").has("WE4")).toBe(true);
    expect([...rulesOf("B/loud")].filter((r) => ["WE2", "WE3", "WE4", "N2"].includes(r))).toEqual([]);
    expect(perRow.events.some((e) => e.event === "closed" && e.firings > 64)).toBe(true);
  });

  it("episode events cross a thread as numbers and strings: the same objects, member order and -0 included", async () => {
    const events = (await runPath(randomStream(4, 30, 6000), 100, false, 4)).events;
    expect(events.length).toBeGreaterThan(50);
    // Odd values the tracker does not make here: nulls, -0, NaN limits, no fields, no points.
    const odd: AlertEpisodeEvent = { ...events[0], cl: -0, sigma: Number.NaN, closed_at: null, fields: {}, rules: [], points: [] };
    const acked: AlertEpisodeEvent = { ...odd, event: "acknowledged", acknowledged_at: 7, acknowledged_by: "qa", ack_note: "" };
    // Ids not of episodeId's form (16 lowercase hex digits) travel as strings.
    const ids = ["ABCDEF0123456789", "0123456789abcdeg", "abc", "", "0123456789abcdef0"].map((episode_id) => ({ ...odd, episode_id }));
    const all: AlertEpisodeEvent[] = [...events, odd, { ...odd, event: "closed", closed_at: -5 }, acked, ...ids];
    const encoder = new AlertEncoder();
    // Two takes: the string table starts over with each.
    for (const part of [all.slice(0, 20), all.slice(20)]) {
      for (const e of part) encoder.add(e);
      const encoded = encoder.take();
      expect(encoded).not.toBeNull();
      const back = decodeAlerts(structuredClone(encoded as NonNullable<typeof encoded>));
      expect(back.map((e) => JSON.stringify(e))).toEqual(part.map((e) => JSON.stringify(e)));
      expect(back).toEqual(part);
      expect(back.map((e) => Object.is(e.cl, -0))).toEqual(part.map((e) => Object.is(e.cl, -0)));
    }
    expect(encoder.take()).toBeNull();
  });
});
