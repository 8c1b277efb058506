import { describe, expect, it } from "vitest";
import { allocateBatch, appendRecord, ConfigError, StreamEngine } from "../engine/core/mod.js";
import { parseLimitsChanges } from "../engine/cli/run.js";
import { ruleReports } from "../engine/cli/rules.js";
import { DEFAULT_SPC_PARAMS, SPC_COL, SPC_OUT_FIELDS, WE_RULES } from "../operators/spc/layout.js";
import { applySpcLimitsChange, rulesForBudget, spcAnalysis, spcKernel } from "../operators/spc/spc.js";

describe("spc limits lifecycle - changes while running", () => {
  it("replaces and re-baselines a key's limits between records, bumping limits_version, keeping the history", async () => {
    const rows: number[][] = [];
    const engine = new StreamEngine(
      {
        kernels: [spcKernel({ params: { ...DEFAULT_SPC_PARAMS, baselineN: 4, sigmaMethod: "std" } })],
        workers: 2,
        groups: 2,
        keysMax: 4,
        batchRecordsMax: 8,
        lateness: null,
        reorderRecordsPerKeyMax: 1,
      },
      {
        onOutput(chunk) {
          for (let i = 0; i < chunk.length; i++)
            rows.push(Array.from(chunk.outs[0].subarray(i * SPC_OUT_FIELDS, (i + 1) * SPC_OUT_FIELDS)));
        },
      },
    );
    const id = engine.internKey("M-001/pressure/running");
    const push = async (values: number[]) => {
      const batch = allocateBatch(values.length);
      values.forEach((v) => appendRecord(batch, id, rows.length, v, rows.length));
      await engine.push(batch);
      await engine.flush();
    };
    await push([1, 2, 3, 4, 2.5]);
    expect(rows[4][SPC_COL.limits_version]).toBe(1);
    expect(rows[4][SPC_COL.cl]).toBe(2.5);
    await engine.withKeyState(id, 0, (k, ptr) => applySpcLimitsChange(k, ptr, { kind: "set", cl: 10, sigma: 1 }));
    await push([10.5, 10.5, 10.5, 10.5, 10.5, 10.5, 10.5, 10.5]);
    expect(rows[5]).toMatchObject({ [SPC_COL.cl]: 10, [SPC_COL.sigma]: 1, [SPC_COL.limits_version]: 2 });
    // Eight points above the new centre line: WE4 fires at the 8th (the older points, re-zoned
    // with the new limits, are below it and do not count).
    expect(rows.slice(5).map((r) => (r[SPC_COL.we_mask] & 8) !== 0)).toEqual([false, false, false, false, false, false, false, true]);
    await engine.withKeyState(id, 0, (k, ptr) => applySpcLimitsChange(k, ptr, { kind: "rebaseline", records: 4 }));
    await push([20, 21, 22, 23, 21.5]);
    // The old limits hold while the new baseline fills, then version 3 takes over.
    expect(rows.slice(13, 17).map((r) => r[SPC_COL.limits_version])).toEqual([2, 2, 2, 2]);
    expect(rows[17][SPC_COL.limits_version]).toBe(3);
    expect(rows[17][SPC_COL.cl]).toBe(21.5);
    await engine.close();
  });

  it("reads the --limits-control file format and refuses a malformed change with ConfigError", () => {
    expect(parseLimitsChanges('{"changes":[{"key":"a","cl":1,"sigma":2},{"key":"b","rebaseline":50}]}', "f")).toEqual([
      { key: "a", change: { kind: "set", cl: 1, sigma: 2 } },
      { key: "b", change: { kind: "rebaseline", records: 50 } },
    ]);
    expect(() => parseLimitsChanges('{"changes":[{"key":"a","cl":1}]}', "f")).toThrow(ConfigError);
    expect(() => parseLimitsChanges("not json", "f")).toThrow(ConfigError);
  });
});

describe("spc rules report", () => {
  it("gives each rule's false-alarm rate for the configured run lengths and marks the rules a budget allows", () => {
    const all = ruleReports(DEFAULT_SPC_PARAMS);
    expect(all.rules.find((r) => r.rule === "WE1")?.false_alarm_rate).toBe(WE_RULES[0].falseAlarmRate);
    expect(all.rules.find((r) => r.rule === "WE1")?.average_run_length).toBeCloseTo(370.4, 1);
    expect(ruleReports({ ...DEFAULT_SPC_PARAMS, we4Run: 9 }).rules.find((r) => r.rule === "WE4")?.false_alarm_rate).toBe(2 * 0.5 ** 9);
    const tight = ruleReports(DEFAULT_SPC_PARAMS, rulesForBudget(0.003, DEFAULT_SPC_PARAMS));
    expect(tight.rules.filter((r) => r.on).map((r) => r.rule)).toEqual(["WE1", "N1", "N8"]);
    expect(tight.rate).toBeLessThanOrEqual(0.003);
  });
});

describe("spc rule masking per key", () => {
  /** A row with limits where every kind of rule fired. */
  const loudRow = (): Float64Array => {
    const row = new Float64Array(SPC_OUT_FIELDS);
    row[SPC_COL.limits_version] = 1;
    row[SPC_COL.cl] = 0;
    row[SPC_COL.we_mask] = 0b1001;
    row[SPC_COL.nelson_mask] = 0b10000010;
    row[SPC_COL.cusum_alarm] = 1;
    row[SPC_COL.ewma_alarm] = 1;
    row[SPC_COL.mr_mask] = 0b101;
    return row;
  };
  const masked = (key: string, options: Partial<Parameters<typeof spcAnalysis>[0]>): number[] => {
    const spc = spcAnalysis({ params: DEFAULT_SPC_PARAMS, ewmaField: "ewma", ...options });
    const row = loudRow();
    spc.observe?.(row, { keyId: 0, key, position: 0, time: 0, value: 0 });
    return [SPC_COL.we_mask, SPC_COL.nelson_mask, SPC_COL.cusum_alarm, SPC_COL.ewma_alarm, SPC_COL.mr_mask].map((c) => row[c]);
  };

  it("a key settling after a mode change keeps its moving-range rules only; a plan's selection masks the rest; the textbook default has none of them", () => {
    const plan = { we: 0b1000, nelson: 0, mr: 0b100, rate: 1e-6 };
    expect(masked("M-001/temperature/running", { rules: plan, silentKeySuffix: "/settling" })).toEqual([0b1000, 0, 1, 1, 0b100]);
    expect(masked("M-001/temperature/settling", { rules: plan, silentKeySuffix: "/settling" })).toEqual([0, 0, 0, 0, 0b100]);
    expect(masked("M-001/temperature/running", {})).toEqual([0b1001, 0b10000010, 1, 1, 0]);
  });
});
