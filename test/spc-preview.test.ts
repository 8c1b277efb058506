import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PREVIEW_RESERVED_BYTES, SpcPreview, type SpcPreviewResult } from "../connectors/live/dashboard/spc-preview.js";
import { ConfigError, MEMORY_RESERVED_BYTES, packageRoot } from "../engine/core/mod.js";
import { SPC_COL, SPC_OUT_FIELDS } from "../operators/spc/mod.js";
import { bits, type Case, CONDITIONS, cases, engineFirings, engineRun, P, WHAT_IF_KEY } from "./kit/spc-what-if.js";

/**
 * The dashboard's what-if preview (connectors/live/dashboard/spc-preview.ts: build/spc-web.wasm in
 * its own memory) against the engine (StreamEngine on worker threads running build/kernels.wasm,
 * the SPC analysis folding the event list as the live ingest does): for the same readings and
 * settings, every row bit for bit, the firings, and the alerts that open.
 */

const ROOT = packageRoot(import.meta.url) as string;
const WASM = readFileSync(join(ROOT, "build", "spc-web.wasm"));

async function expectSame(preview: SpcPreview, c: Case, batchRecordsMax: number, seed: number): Promise<SpcPreviewResult> {
  const times = c.values.map((_, i) => i);
  const got = preview.run({ ...c.settings, key: WHAT_IF_KEY, params: c.params, times, values: c.values });
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
  for (const e of want.events) if (e.event === "opened") opened[e.first_rule]++;
  expect(got.alerts).toEqual(opened);
  // The alert events themselves: the engine's tracker raised the same, points, firings and closes included.
  expect(got.events).toEqual(want.events);
  const counts: Record<string, number> = Object.fromEntries(CONDITIONS.map(([name]) => [name, 0]));
  for (const f of got.firings) for (const r of f.rules) counts[r]++;
  expect(got.counts).toEqual(counts);
  return got;
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
    // Episodes fold many firings each (every rule on, a noisy case).
    expect(all[0].events.filter((e) => e.event === "closed" && e.firings > 1).length).toBeGreaterThan(3);
    expect(new Set(Array.from({ length: 3000 }, (_, i) => all[4].rows[i * SPC_OUT_FIELDS + SPC_COL.limits_version])).size).toBe(5);
    // The budget turns rules off: fewer firings than every rule on the same readings.
    expect(all[1].firings.length).toBeLessThan(all[0].firings.length);
    expect(all[1].rules).toMatchObject({ we: 1, nelson: 1 });
    // Without a selection or a budget the key runs the textbook rules: the moving-range rules stay off.
    const movingRange = (r: (typeof all)[number]) =>
      r.firings.filter((f) => f.rules.some((n) => ["JUMP", "NOISY", "STUCK"].includes(n))).length;
    expect(movingRange(all[0])).toBeGreaterThan(0);
    expect(movingRange(all[all.length - 1])).toBe(0);
    expect(all[all.length - 1].rules).toMatchObject({ we: 0b1111, nelson: 0b11111111, mr: 0 });
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
    const selected = preview.run({ ...input, rules: { we: 1, nelson: 1, mr: 0, rate: Number.NaN } });
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
    expect(() => preview.run({ ...base, rules: { we: 16, nelson: 0, mr: 0, rate: 0 } })).toThrow(ConfigError);
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
