import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { runReplay } from "../engine/jobs/replay.js";
import { ConfigError } from "../engine/core/errors.js";
import type { RecordAnalysis } from "../operators/analysis.js";
import { rollingAnalysis } from "../operators/rolling/rolling.js";
import type { AlertEpisodeEvent } from "../operators/spc/alerts.js";
import { DEFAULT_SPC_PARAMS, NELSON_RULES, WE_RULES } from "../operators/spc/layout.js";
import { rulesForBudget, spcAnalysis, spcKernel, type SpcAnalysisOptions } from "../operators/spc/spc.js";

type Line = Record<string, unknown>;
const dir = mkdtempSync(join(tmpdir(), "lw-spc-"));

function csv(name: string, values: number[]): string {
  const path = join(dir, name);
  writeFileSync(path, ["timestamp,value", ...values.map((v, i) => `${i},${v}`)].join("\n"));
  return path;
}

async function replay(input: string, analyses: RecordAnalysis[]): Promise<Line[]> {
  const output = new PassThrough();
  const chunks: Buffer[] = [];
  output.on("data", (c: Buffer) => chunks.push(c));
  await runReplay({
    input,
    analyses,
    timeColumn: "timestamp",
    timeUnit: "number",
    lateness: null,
    workers: 2,
    keysMax: 16,
    batchRecordsMax: 64,
    output,
    progress: null,
  });
  return Buffer.concat(chunks)
    .toString("utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Line);
}

function spc(overrides: Partial<SpcAnalysisOptions> = {}, params: Partial<typeof DEFAULT_SPC_PARAMS> = {}) {
  return spcAnalysis({ params: { ...DEFAULT_SPC_PARAMS, ...params }, ewmaField: "ewma", ...overrides });
}

describe("spc replay - contract", () => {
  it("writes nulls before the baseline is complete and the limits from record N on", async () => {
    const values = [10, 12, 11, 13, 9, 10, 30, 10];
    const lines = await replay(csv("base.csv", values), [spc({}, { baselineN: 5, sigmaMethod: "std" })]);
    for (let i = 0; i < 5; i++) expect(lines[i]).toMatchObject({ cl: null, we: null, nelson: null, zone: null, limits_version: 0 });
    const base = values.slice(0, 5);
    const mean = base.reduce((a, b) => a + b, 0) / 5;
    const sd = Math.sqrt(base.reduce((a, b) => a + (b - mean) ** 2, 0) / 4);
    expect(lines[5].cl).toBeCloseTo(mean, 12);
    expect(lines[5].sigma).toBeCloseTo(sd, 12);
    expect(lines[5].ucl).toBeCloseTo(mean + 3 * sd, 12);
    expect(lines[5]).toMatchObject({ zone: -1, we: [], limits_version: 1 });
    // 30 is beyond 3σ above: WE1 and Nelson 1.
    // 30 is beyond 3σ above: WE1 and Nelson 1; C⁺ = 30 − (cl + σ/2) > 5σ raises the CUSUM alarm too.
    expect(lines[6]).toMatchObject({ zone: 4, we: [1], cusum_alarm: true });
    expect(lines[6].cusum_pos).toBeCloseTo(30 - (mean + 0.5 * sd), 9);
    expect((lines[6].nelson as number[]).includes(1)).toBe(true);
  });

  it("fixed limits apply from the first record; keys and fields merge with rolling (spc_ewma)", async () => {
    const lines = await replay(csv("fixed.csv", [0, 1, -1, 0.5]), [
      rollingAnalysis({ window: { kind: "count", records: 2 }, alpha: 0.5, timeScale: 1 }),
      spcAnalysis({ params: { ...DEFAULT_SPC_PARAMS, baselineN: 0 }, limits: { cl: 0, sigma: 1 }, ewmaField: "spc_ewma" }),
    ]);
    expect(lines[0]).toMatchObject({ count: null, cl: 0, ucl: 3, lcl: -3, sigma: 1, zone: 0, limits_version: 1, spc_ewma: 0 });
    expect(lines[1]).toMatchObject({ count: 2, mean: 0.5, ewma: 0.5, zone: 1, spc_ewma: 0.2 });
    expect(Object.keys(lines[1]).filter((k) => k === "ewma").length).toBe(1);
  });

  it("folds the firings of a rule family into one episode that closes after closeAfter quiet readings", async () => {
    const events: AlertEpisodeEvent[] = [];
    // Ten points above the centre line: WE4 fires at the 8th, 9th and 10th, N2 (nine in a row) at the 9th and 10th; then none.
    const values = [...new Array(10).fill(0.5), -0.5, 0.5, -0.5, 0.5];
    const analysis = spc({ limits: { cl: 0, sigma: 1 }, onAlert: (e) => events.push(e), episodes: { closeAfter: 3 } }, { baselineN: 0 });
    const lines = await replay(csv("run.csv", values), [analysis]);
    expect(lines.map((l) => (l.we as number[]).includes(4))).toEqual([
      ...new Array(7).fill(false),
      true,
      true,
      true,
      false,
      false,
      false,
      false,
    ]);
    // Both rules are of the level family: one episode, three firings (readings), closed at the third quiet reading after the last;
    // N2 joining it at the 9th is an escalation, sent at once.
    expect(events.map((e) => [e.event, e.family, e.firings])).toEqual([
      ["opened", "level", 1],
      ["updated", "level", 2],
      ["closed", "level", 3],
    ]);
    expect(events[1]).toMatchObject({ rules: ["WE4", "N2"], last_fired_at: 8, closed_at: null });
    expect(events[2]).toMatchObject({
      rules: ["WE4", "N2"],
      first_rule: "WE4",
      opened_at: 7,
      last_fired_at: 9,
      closed_at: 12,
      severity: "low",
      limits_version: 1,
      acknowledged_at: null,
    });
    expect(events[0].episode_id).toBe(events[1].episode_id);
    expect(events[0].points.map((p) => p.position)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it("a false-alarm budget turns rules off, and the output shows only the rules that are on", async () => {
    const onlyWe1 = rulesForBudget(WE_RULES[0].falseAlarmRate * 1.01, DEFAULT_SPC_PARAMS);
    expect(onlyWe1).toMatchObject({ we: 0b1, nelson: 0b1 });
    const lines = await replay(csv("budget.csv", [...new Array(10).fill(0.5), 5]), [
      spc({ limits: { cl: 0, sigma: 1 }, falseAlarmBudget: WE_RULES[0].falseAlarmRate * 1.01 }, { baselineN: 0 }),
    ]);
    expect(lines.slice(0, 10).every((l) => (l.we as number[]).length === 0 && (l.nelson as number[]).length === 0)).toBe(true);
    expect(lines[10]).toMatchObject({ we: [1], nelson: [1] });
  });

  it("the budget never admits rules whose summed rate exceeds it", () => {
    for (const budget of [0, 0.001, 0.003, 0.005, 0.01, 0.02, 0.05, 1]) {
      const s = rulesForBudget(budget, DEFAULT_SPC_PARAMS);
      let sum = 0;
      for (const r of WE_RULES) if (s.we & r.bit) sum += r.falseAlarmRate;
      for (const r of NELSON_RULES) if (s.nelson & r.bit && ![1, 5, 6].includes(r.number)) sum += r.falseAlarmRate;
      expect(sum).toBeLessThanOrEqual(budget + 1e-15);
      expect(s.rate).toBeCloseTo(sum, 15);
    }
    expect(rulesForBudget(1, DEFAULT_SPC_PARAMS)).toMatchObject({ we: 0b1111, nelson: 0b11111111 });
  });

  it("rejects fixed limits together with a baseline, and a non-positive sigma, with ConfigError", () => {
    expect(() => spcKernel({ params: { ...DEFAULT_SPC_PARAMS, baselineN: 50 }, limits: { cl: 0, sigma: 1 } })).toThrow(ConfigError);
    expect(() => spcKernel({ params: { ...DEFAULT_SPC_PARAMS, baselineN: 0 }, limits: { cl: 0, sigma: 0 } })).toThrow(ConfigError);
  });
});
