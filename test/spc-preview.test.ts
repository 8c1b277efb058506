import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  PREVIEW_RESERVED_BYTES,
  type SpcFiring,
  SpcPreview,
  type SpcPreviewInput,
  type SpcPreviewResult,
} from "../connectors/live/dashboard/spc-preview.js";
import {
  allocateBatch,
  appendRecord,
  ConfigError,
  MEMORY_RESERVED_BYTES,
  packageRoot,
  SeededRandom,
  StreamEngine,
} from "../engine/core/mod.js";
import { observeChunkRows, type RowContext } from "../operators/mod.js";
import {
  applySpcLimitsChange,
  DEFAULT_SPC_PARAMS,
  SPC_COL,
  SPC_OUT_FIELDS,
  type SpcAlertEvent,
  type SpcParams,
  spcAnalysis,
} from "../operators/spc/mod.js";

/**
 * The dashboard's what-if preview (connectors/live/dashboard/spc-preview.ts: build/spc-web.wasm in
 * its own memory) against the engine (StreamEngine on worker threads running build/kernels.wasm,
 * the SPC analysis folding the event list as the live ingest does): for the same readings and
 * settings, every row bit for bit, the firings, and the alerts that open.
 */

const ROOT = packageRoot(import.meta.url) as string;
const WASM = readFileSync(join(ROOT, "build", "spc-web.wasm"));

interface Case {
  name: string;
  values: number[];
  params: SpcParams;
  settings: Omit<SpcPreviewInput, "times" | "values" | "params">;
}

interface EngineResult {
  /** One row per finite reading, in order. */
  rows: Float64Array;
  /** Indices of the finite readings. */
  indices: number[];
  events: SpcAlertEvent[];
}

/** The engine's rows for the readings: finite ones only (the wire decoders dead-letter the rest as `not_finite`). */
async function engineRun(c: Case, batchRecordsMax: number, seed: number): Promise<EngineResult> {
  const events: SpcAlertEvent[] = [];
  const rules = c.settings.rules;
  if (rules !== undefined && !("faBudget" in rules)) throw new Error("the engine takes budgets, not rule selections");
  const analysis = spcAnalysis({
    params: c.params,
    limits: c.settings.limits,
    falseAlarmBudget: rules?.faBudget,
    ewmaField: "ewma",
    onAlert: (e) => events.push(e),
  });
  const indices = c.values.flatMap((v, i) => (Number.isFinite(v) ? [i] : []));
  const rows = new Float64Array(indices.length * SPC_OUT_FIELDS);
  let filled = 0;
  const keyNames = ["M-001/what-if"];
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
    for (let j = at; j < at + n; j++) appendRecord(b, id, indices[j], c.values[indices[j]], j);
    await engine.push(b);
    at += n;
  }
  await engine.flush();
  await engine.close();
  expect(filled).toBe(indices.length);
  return { rows, indices, events };
}

/** The alert conditions, written out here (not taken from the code under test): name, column, bit (0: a 0/1 flag). */
const CONDITIONS: ReadonlyArray<[string, number, number]> = [
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
];

/** Firings from the engine's rows by a plain scan of every row. */
function engineFirings(c: Case, e: EngineResult): SpcFiring[] {
  const out: SpcFiring[] = [];
  e.indices.forEach((index, j) => {
    const row = e.rows.subarray(j * SPC_OUT_FIELDS, (j + 1) * SPC_OUT_FIELDS);
    if (!(row[SPC_COL.limits_version] > 0)) return;
    const rules = CONDITIONS.filter(([, col, bit]) => (bit === 0 ? row[col] === 1 : (row[col] & bit) !== 0)).map(([name]) => name);
    if (rules.length > 0) out.push({ index, time: index, value: c.values[index], rules });
  });
  return out;
}

function bits(rows: Float64Array): BigUint64Array {
  return new BigUint64Array(rows.buffer, rows.byteOffset, rows.length);
}

async function expectSame(preview: SpcPreview, c: Case, batchRecordsMax: number, seed: number): Promise<SpcPreviewResult> {
  const times = c.values.map((_, i) => i);
  const got = preview.run({ ...c.settings, params: c.params, times, values: c.values });
  const want = await engineRun(c, batchRecordsMax, seed);
  // Rows of the finite readings, bit for bit (NaN payloads included); the others skipped, NaN.
  const finite = new Float64Array(want.indices.length * SPC_OUT_FIELDS);
  want.indices.forEach((i, j) => finite.set(got.rows.subarray(i * SPC_OUT_FIELDS, (i + 1) * SPC_OUT_FIELDS), j * SPC_OUT_FIELDS));
  const a = bits(finite);
  const b = bits(want.rows);
  let firstDiff = -1;
  for (let k = 0; k < a.length && firstDiff < 0; k++) if (a[k] !== b[k]) firstDiff = k;
  expect(firstDiff, `${c.name}: first differing row ${Math.floor(firstDiff / SPC_OUT_FIELDS)}`).toBe(-1);
  expect(got.skipped).toEqual(c.values.flatMap((v, i) => (Number.isFinite(v) ? [] : [i])));
  expect(got.firings).toEqual(engineFirings(c, want));
  // The alerts that would open, per rule, are the engine tracker's `open` events.
  const opened: Record<string, number> = Object.fromEntries(CONDITIONS.map(([name]) => [name, 0]));
  for (const e of want.events) if (e.state === "open") opened[e.rule]++;
  expect(got.alerts).toEqual(opened);
  const counts: Record<string, number> = Object.fromEntries(CONDITIONS.map(([name]) => [name, 0]));
  for (const f of got.firings) for (const r of f.rules) counts[r]++;
  expect(got.counts).toEqual(counts);
  return got;
}

function normals(r: SeededRandom, n: number): number[] {
  return Array.from({ length: n }, () => {
    const u = Math.max(r.next(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r.next());
  });
}

/** Noise with a step, a trend, an alternation, a variance burst and a drift: every rule and chart fires somewhere. */
function plantLike(seed: number, n: number): number[] {
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
function adversarial(seed: number, n: number): number[] {
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

const P = DEFAULT_SPC_PARAMS;

function cases(): Case[] {
  const plant = plantLike(1, 3000);
  const odd = adversarial(2, 3000);
  return [
    { name: "plant, baseline of 100 (moving range), every rule", values: plant, params: P, settings: {} },
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
    { name: "adversarial, baseline of 20", values: odd, params: { ...P, baselineN: 20 }, settings: {} },
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
  ];
}

describe("spc what-if preview - the browser module equals the engine", () => {
  it.each(cases().map((c, k) => [c.name, c, k] as const))("%s", async (_name, c, k) => {
    const preview = await SpcPreview.create(WASM);
    for (const batch of [7, 256]) await expectSame(preview, c, batch, 10 * k + batch);
  });

  it("the cases exercise what they claim: every alert rule fires, readings are skipped, limits change", async () => {
    const preview = await SpcPreview.create(WASM);
    const all = cases().map((c) => preview.run({ ...c.settings, params: c.params, times: c.values.map((_, i) => i), values: c.values }));
    for (const [name] of CONDITIONS)
      expect(
        all.some((r) => r.counts[name] > 0),
        name,
      ).toBe(true);
    expect(all[6].skipped.length).toBeGreaterThan(50);
    expect(new Set(Array.from({ length: 3000 }, (_, i) => all[4].rows[i * SPC_OUT_FIELDS + SPC_COL.limits_version])).size).toBe(5);
    // The budget turns rules off: fewer firings than every rule on the same readings.
    expect(all[1].firings.length).toBeLessThan(all[0].firings.length);
    expect(all[1].rules).toMatchObject({ we: 1, nelson: 1 });
  });

  it("one preview runs many settings in turn: each run starts the key afresh", async () => {
    const preview = await SpcPreview.create(WASM);
    const c = cases()[0];
    const input = { params: c.params, times: c.values.map((_, i) => i), values: c.values };
    const first = preview.run(input);
    preview.run({ ...input, params: { ...P, baselineN: 0 }, limits: { cl: 0, sigma: 1 } });
    expect(bits(preview.run(input).rows)).toEqual(bits(first.rows));
  });

  it("a rule selection masks as its budget does", async () => {
    const preview = await SpcPreview.create(WASM);
    const c = cases()[1];
    const input = { params: c.params, times: c.values.map((_, i) => i), values: c.values };
    const budget = preview.run({ ...input, rules: { faBudget: 0.0027 } });
    const selected = preview.run({ ...input, rules: { we: 1, nelson: 1, rate: Number.NaN } });
    expect(bits(selected.rows)).toEqual(bits(budget.rows));
    expect(selected.firings).toEqual(budget.firings);
  });

  it("refuses bad settings with ConfigError", async () => {
    const preview = await SpcPreview.create(WASM);
    const base = { params: P, times: [0, 1], values: [1, 2] };
    expect(() => preview.run({ ...base, params: { ...P, n3Run: 33 } })).toThrow(ConfigError);
    expect(() => preview.run({ ...base, limits: { cl: 0, sigma: 1 } })).toThrow(ConfigError);
    expect(() => preview.run({ ...base, params: { ...P, baselineN: 0 }, limits: { cl: 0, sigma: 0 } })).toThrow(ConfigError);
    expect(() => preview.run({ ...base, changes: [{ at: 2, change: { kind: "set", cl: 0, sigma: 1 } }] })).toThrow(ConfigError);
    expect(() => preview.run({ ...base, changes: [{ at: 0, change: { kind: "rebaseline", records: 1 } }] })).toThrow(ConfigError);
    expect(() => preview.run({ ...base, rules: { we: 16, nelson: 0, rate: 0 } })).toThrow(ConfigError);
    expect(() => preview.run({ ...base, rules: { faBudget: -1 } })).toThrow(ConfigError);
    expect(() => preview.run({ ...base, times: [0] })).toThrow(ConfigError);
  });

  it("the browser build's SPC functions are the engine build's, instruction for instruction", () => {
    const engine = spcFunctions(readFileSync(join(ROOT, "build", "kernels.wat"), "utf8"));
    const web = spcFunctions(readFileSync(join(ROOT, "build", "spc-web.wat"), "utf8"));
    expect(Object.keys(web).sort()).toEqual(Object.keys(engine).sort());
    expect(Object.keys(web)).toContain("$kernels/spc/spcProcess");
    for (const name of Object.keys(web)) expect(web[name], name).toBe(engine[name]);
    // The preview leaves the module's data the low memory the engine leaves it.
    expect(PREVIEW_RESERVED_BYTES).toBe(MEMORY_RESERVED_BYTES);
  });
});

/** Text of each kernels/spc function in a .wat, inlined-block labels renumbered in order of appearance (binaryen numbers them module-wide). */
function spcFunctions(wat: string): Record<string, string> {
  const out: Record<string, string> = {};
  const starts = [...wat.matchAll(/\n \(func (\$kernels\/spc\/\S+)/g)];
  for (const m of starts) {
    const from = (m.index as number) + 1;
    const to = wat.indexOf("\n (", from + 1);
    const labels = new Map<string, string>();
    out[m[1]] = wat.slice(from, to === -1 ? undefined : to).replace(/\$__inlined_func\$[^\s)]+/g, (l) => {
      if (!labels.has(l)) labels.set(l, `$inlined${labels.size}`);
      return labels.get(l) as string;
    });
  }
  return out;
}
