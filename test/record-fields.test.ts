/**
 * The members as values (rowFields / recordFields), which the ClickHouse rows and WebSocket
 * messages are built from, equal the scores file's members read back: the same names, the same
 * numbers to the bit (statistics rounded to 15 digits, as the text is), the same nulls.
 */
import { describe, expect, it } from "vitest";
import { recordFields, type RecordAnalysis } from "../operators/analysis.js";
import { iforestAnalysis } from "../operators/iforest/iforest.js";
import { trainIsolationForest } from "../operators/iforest/training/train.js";
import { ROLLING_OUT_FIELDS, rollingAnalysis } from "../operators/rolling/rolling.js";
import { DEFAULT_SPC_PARAMS } from "../operators/spc/layout.js";
import { spcAnalysis } from "../operators/spc/spc.js";
import { SeededRandom } from "../engine/core/mod.js";

/** Doubles of every magnitude, with the values the text writes as null. */
function statistic(r: SeededRandom): number {
  const u = r.next();
  if (u < 0.05) return Number.NaN;
  if (u < 0.07) return u < 0.06 ? Infinity : -Infinity;
  if (u < 0.09) return u < 0.08 ? 0 : -0;
  return (r.next() - 0.5) * 10 ** Math.floor(r.next() * 40 - 20);
}

function expectSameMembers(analyses: RecordAnalysis[], rows: Float64Array[]): void {
  const text = analyses.map((a, k) => a.rowJson(rows[k])).join(",");
  const parsed = JSON.parse(`{${text}}`) as Record<string, unknown>;
  const fields = recordFields(analyses, rows);
  expect(fields).toStrictEqual(parsed);
  // Same member order too (the WebSocket message's text).
  expect(Object.keys(fields as object)).toEqual(Object.keys(parsed));
}

describe("recordFields - the members as values equal the JSON members parsed", () => {
  it("rolling and spc rows: statistics, null windows, truncated windows, rule lists, alarms, limits versions", () => {
    const r = new SeededRandom(11);
    const rolling = rollingAnalysis({ window: { kind: "count", records: 4 }, alpha: 0.2, timeScale: 1000 });
    for (const ewmaField of ["spc_ewma", "ewma"]) {
      const spc = spcAnalysis({ params: { ...DEFAULT_SPC_PARAMS, baselineN: 20 }, ewmaField });
      for (let n = 0; n < 5000; n++) {
        const roll = new Float64Array(ROLLING_OUT_FIELDS);
        roll[0] = Math.floor(r.next() * 8);
        for (let k = 1; k < 9; k++) roll[k] = statistic(r);
        roll[9] = r.next() < 0.1 ? 1 : 0;
        const s = new Float64Array(15);
        for (let k = 0; k < 15; k++) s[k] = statistic(r);
        s[5] = Math.floor(r.next() * 16);
        s[6] = Math.floor(r.next() * 256);
        s[9] = r.next() < 0.5 ? 1 : 0;
        s[13] = r.next() < 0.5 ? 1 : 0;
        s[14] = r.next() < 0.2 ? 0 : r.next() < 0.05 ? Number.NaN : 1 + Math.floor(r.next() * 5);
        expectSameMembers([rolling, spc], [roll, s]);
      }
    }
  });

  it("iforest rows: a score with its model's hash, or both null", () => {
    const r = new SeededRandom(5);
    const rows = 500;
    const values = new Float64Array(rows * 2);
    for (let i = 0; i < values.length; i++) values[i] = r.normal();
    const model = trainIsolationForest({ values, rows, columns: 2, names: ["value", "mean"] }, { trees: 10, sampleSize: 64, seed: 5 });
    const rolling = rollingAnalysis({ window: { kind: "count", records: 1 }, alpha: 0.2, timeScale: 1000 });
    const forest = iforestAnalysis({ model, features: ["value", "mean"], rollingIndex: 0 });
    for (let n = 0; n < 2000; n++) {
      const roll = new Float64Array(ROLLING_OUT_FIELDS);
      roll[0] = 1;
      for (let k = 1; k < 9; k++) roll[k] = statistic(r);
      const f = new Float64Array(4);
      f[2] = r.next() < 0.2 ? Number.NaN : r.next();
      f[3] = 0;
      expectSameMembers([rolling, forest], [roll, f]);
    }
  });

  it("is null when an analysis gives no values (its members are then parsed from the text)", () => {
    const rolling = rollingAnalysis({ window: { kind: "count", records: 1 }, alpha: 0.2, timeScale: 1000 });
    const textOnly: RecordAnalysis = { name: "text", kernel: rolling.kernel, nullJson: '"x":null', rowJson: () => '"x":1' };
    expect(recordFields([rolling, textOnly], [new Float64Array(ROLLING_OUT_FIELDS), new Float64Array(1)])).toBeNull();
  });
});
