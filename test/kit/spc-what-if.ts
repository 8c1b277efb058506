/**
 * The engine's side of the what-if preview tests (test/spc-preview*.test.ts): the SPC analysis on
 * a StreamEngine with worker threads, fed a key's readings with limit changes between records, and
 * the readings and settings the tests try.
 */
import { allocateBatch, appendRecord, SeededRandom, StreamEngine } from "../../engine/core/mod.js";
import { observeChunkRows, type RowContext } from "../../operators/mod.js";
import {
  applySpcLimitsChange,
  DEFAULT_SPC_PARAMS,
  SPC_COL,
  SPC_OUT_FIELDS,
  type AlertEpisodeEvent,
  type SpcParams,
  spcAnalysis,
} from "../../operators/spc/mod.js";
import type { SpcFiring, SpcPreviewInput, SpcPreviewResult } from "../../connectors/live/dashboard/spc-preview.js";
import type * as previewModule from "../../connectors/live/dashboard/spc-preview.js";
import type { PreviewModule, SpcFace, TrialInput, TrialResult } from "../../connectors/live/dashboard/preview-types.js";
import type * as spcFace from "../../operators/spc/web.js";

/**
 * Compile-time (npm run typecheck): the machine view's own declarations of the preview
 * (connectors/live/dashboard/preview-types.ts; the dashboard's build cannot import the module)
 * fit the real ones — what the panel passes is an SpcPreviewInput, what it reads is in an
 * SpcPreviewResult, and the modules it loads by URL export what it calls.
 */
export const PREVIEW_TYPES_FIT = [
  (i: TrialInput): SpcPreviewInput => i,
  (r: SpcPreviewResult): TrialResult => r,
  (m: typeof previewModule): PreviewModule => m,
  (f: typeof spcFace): SpcFace => f,
] as const;

/** The key of the engine runs, and of the preview runs compared with them. */
export const WHAT_IF_KEY = "M-001/what-if";

export interface Case {
  name: string;
  values: number[];
  params: SpcParams;
  settings: Omit<SpcPreviewInput, "times" | "values" | "params">;
}

export interface EngineResult {
  /** One row per finite reading, in order. */
  rows: Float64Array;
  /** Indices of the finite readings. */
  indices: number[];
  events: AlertEpisodeEvent[];
}

/** The engine's rows for the readings: finite ones only (the wire decoders dead-letter the rest as `not_finite`). */
export async function engineRun(c: Case, batchRecordsMax: number, seed: number): Promise<EngineResult> {
  const events: AlertEpisodeEvent[] = [];
  const rules = c.settings.rules;
  const analysis = spcAnalysis({
    params: c.params,
    limits: c.settings.limits,
    falseAlarmBudget: rules !== undefined && "faBudget" in rules ? rules.faBudget : undefined,
    rules: rules !== undefined && !("faBudget" in rules) ? rules : undefined,
    ewmaField: "ewma",
    onAlert: (e) => events.push(e),
  });
  const indices = c.values.flatMap((v, i) => (Number.isFinite(v) ? [i] : []));
  const rows = new Float64Array(indices.length * SPC_OUT_FIELDS);
  let filled = 0;
  const keyNames = [WHAT_IF_KEY];
  const ctx: RowContext = { keyId: 0, key: "", position: 0, time: 0, value: 0 };
  const engine = new StreamEngine(
    {
      kernels: [analysis.kernel],
      workers: 2,
      groups: 2,
      keysMax: 2,
      batchRecordsMax,
      lateness: null,
      reorderRecordsPerKeyMax: 1,
    },
    {
      onOutput(chunk) {
        observeChunkRows([analysis], chunk, (id) => keyNames[id], ctx);
        rows.set(chunk.outs[0].subarray(0, chunk.length * SPC_OUT_FIELDS), filled * SPC_OUT_FIELDS);
        filled += chunk.length;
      },
    },
  );
  const id = engine.internKey(keyNames[0]);
  const r = new SeededRandom(seed);
  const changes = [...(c.settings.changes ?? [])];
  // Index (in `indices`) of the first record the next change precedes.
  const nextStop = (): number => {
    const s = changes.length === 0 ? -1 : indices.findIndex((i) => i >= changes[0].at);
    return s === -1 ? indices.length : s;
  };
  for (let at = 0; at < indices.length; ) {
    const stop = nextStop();
    if (at === stop) {
      // The change between two records, as the live server applies one from the API.
      await engine.flush();
      const change = (changes.shift() as (typeof changes)[number]).change;
      await engine.withKeyState(id, 0, (k, ptr) => applySpcLimitsChange(k, ptr, change));
      continue;
    }
    // Records up to the next change, in batches of random sizes.
    const n = Math.min(stop - at, 1 + r.below(2 * batchRecordsMax));
    const b = allocateBatch(n);
    // Time and position: the reading's index, as the preview numbers its readings.
    for (let j = at; j < at + n; j++) appendRecord(b, id, indices[j], c.values[indices[j]], indices[j]);
    await engine.push(b);
    at += n;
  }
  await engine.flush();
  await engine.close();
  if (filled !== indices.length) throw new Error(`the engine wrote ${filled} rows for ${indices.length} readings`);
  return { rows, indices, events };
}

/** The alert conditions, written out here (not taken from the code under test): name, column, bit (0: a 0/1 flag). */
export const CONDITIONS: ReadonlyArray<[string, number, number]> = [
  ["WE1", SPC_COL.we_mask, 1],
  ["WE2", SPC_COL.we_mask, 2],
  ["WE3", SPC_COL.we_mask, 4],
  ["WE4", SPC_COL.we_mask, 8],
  ["N2", SPC_COL.nelson_mask, 2],
  ["N3", SPC_COL.nelson_mask, 4],
  ["N4", SPC_COL.nelson_mask, 8],
  ["N7", SPC_COL.nelson_mask, 64],
  ["N8", SPC_COL.nelson_mask, 128],
  ["CUSUM", SPC_COL.cusum_alarm, 0],
  ["EWMA", SPC_COL.ewma_alarm, 0],
  ["JUMP", SPC_COL.mr_mask, 1],
  ["NOISY", SPC_COL.mr_mask, 2],
  ["STUCK", SPC_COL.mr_mask, 4],
  ["STEP", SPC_COL.mr_mask, 8],
];

/** Every rule, the moving-range rules too (the textbook default leaves those off). */
const EVERY_RULE = { we: 0b1111, nelson: 0b11111111, mr: 0b1111, rate: Number.NaN };

/** Firings from the engine's rows by a plain scan of every row. */
export function engineFirings(c: Case, e: EngineResult): SpcFiring[] {
  const out: SpcFiring[] = [];
  e.indices.forEach((index, j) => {
    const row = e.rows.subarray(j * SPC_OUT_FIELDS, (j + 1) * SPC_OUT_FIELDS);
    if (!(row[SPC_COL.limits_version] > 0)) return;
    const rules = CONDITIONS.filter(([, col, bit]) => (bit === 0 ? row[col] === 1 : (row[col] & bit) !== 0)).map(([name]) => name);
    if (rules.length > 0) out.push({ index, time: index, value: c.values[index], rules });
  });
  return out;
}

export function bits(rows: Float64Array): BigUint64Array {
  return new BigUint64Array(rows.buffer, rows.byteOffset, rows.length);
}

function normals(r: SeededRandom, n: number): number[] {
  return Array.from({ length: n }, () => {
    const u = Math.max(r.next(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r.next());
  });
}

/** Noise with a step, a trend, an alternation, a variance burst and a drift: every rule and chart fires somewhere. */
export function plantLike(seed: number, n: number): number[] {
  const r = new SeededRandom(seed);
  return normals(r, n).map((z, i) => {
    const phase = Math.floor(i / 250) % 6;
    if (phase === 1) return 20 + z + 2.5;
    if (phase === 2) return 20 + (i % 250) * 0.05 + 0.2 * z;
    if (phase === 3) return 20 + (i % 2 === 0 ? 2 : -2) + 0.1 * z;
    if (phase === 4) return 20 + 3 * z;
    if (phase === 5) return 20 + z + (i % 250) * 0.01;
    return 20 + z;
  });
}

/** Values that break things: NaN and ±Inf (skipped), huge magnitudes, constant runs, exact thresholds, signed zeros. */
export function adversarial(seed: number, n: number): number[] {
  const r = new SeededRandom(seed);
  const odd = [
    Number.NaN,
    Infinity,
    -Infinity,
    1e308,
    -1e308,
    1.7976931348623157e308,
    5e-324,
    -0,
    0,
    1,
    2,
    3,
    -1,
    -2,
    -3,
    3.0000000000000004,
  ];
  const out: number[] = [];
  while (out.length < n) {
    const kind = r.below(5);
    const len = 1 + r.below(40);
    for (let j = 0; j < len && out.length < n; j++) {
      if (kind === 0) out.push(odd[r.below(odd.length)]);
      else if (kind === 1) out.push(7);
      else if (kind === 2) out.push(j * 0.5);
      else if (kind === 3) out.push(j % 2 === 0 ? 1e6 : -1e6);
      else out.push(normals(r, 1)[0]);
    }
  }
  return out;
}

export const P = DEFAULT_SPC_PARAMS;

export function cases(): Case[] {
  const plant = plantLike(1, 3000);
  const odd = adversarial(2, 3000);
  return [
    {
      name: "plant, baseline of 100 (moving range), every rule, STEP over windows of 10",
      values: plant,
      params: { ...P, stepWindow: 10, stepLimit: 3 },
      settings: { rules: EVERY_RULE },
    },
    { name: "plant, budget 0.0027 (WE1 only)", values: plant, params: P, settings: { rules: { faBudget: 0.0027 } } },
    {
      name: "plant, budget 0.01, sample std baseline",
      values: plant,
      params: { ...P, sigmaMethod: "std" },
      settings: { rules: { faBudget: 0.01 } },
    },
    {
      name: "plant, fixed limits, short runs, λ = 1, k = 0",
      values: plant,
      params: { ...P, baselineN: 0, we4Run: 2, n2Run: 3, n3Run: 3, n4Run: 32, n7Run: 2, n8Run: 32, ewmaLambda: 1, cusumK: 0, cusumH: 0.5 },
      settings: { limits: { cl: 20, sigma: 1 } },
    },
    {
      name: "plant, limits set, then re-baselined, then set again while running",
      values: plant,
      params: { ...P, baselineN: 50 },
      settings: {
        changes: [
          { at: 400, change: { kind: "set", cl: 21, sigma: 0.5 } },
          { at: 1300, change: { kind: "rebaseline", records: 30 } },
          { at: 1301, change: { kind: "rebaseline", records: 200 } },
          { at: 2500, change: { kind: "set", cl: 20, sigma: 2 } },
        ],
        rules: { faBudget: 0.05 },
      },
    },
    {
      name: "no baseline, limits only from a change",
      values: plant,
      params: { ...P, baselineN: 0 },
      settings: { changes: [{ at: 700, change: { kind: "set", cl: 19, sigma: 1.5 } }] },
    },
    {
      name: "adversarial, baseline of 20, STEP over windows of 3",
      values: odd,
      params: { ...P, baselineN: 20, stepWindow: 3, stepLimit: 2 },
      settings: { rules: EVERY_RULE },
    },
    {
      name: "adversarial, fixed limits on the thresholds",
      values: odd,
      params: { ...P, baselineN: 0 },
      settings: { limits: { cl: 0, sigma: 1 } },
    },
    {
      name: "adversarial, re-baselines into huge values",
      values: odd,
      params: { ...P, baselineN: 2, sigmaMethod: "std" },
      settings: {
        changes: [
          { at: 10, change: { kind: "rebaseline", records: 2 } },
          { at: 999, change: { kind: "rebaseline", records: 500 } },
        ],
        rules: { faBudget: 0.003 },
      },
    },
    {
      name: "a constant run: σ = 0 from the baseline",
      values: new Array(500).fill(7).concat([7.5, 6.5, 7]),
      params: { ...P, baselineN: 20 },
      settings: {},
    },
    { name: "plant, baseline of 100, the textbook rules (no moving-range rule)", values: plant, params: P, settings: {} },
  ];
}
