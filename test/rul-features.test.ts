import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { beforeAll, describe, expect, it } from "vitest";
import { ConfigError } from "../engine/core/errors.js";
import { runReplay } from "../engine/jobs/replay.js";
import { readCmapss, type CmapssUnit } from "../connectors/files/cmapss.js";
import { rollingAnalysis } from "../operators/rolling/rolling.js";
import type { RecordAnalysis } from "../operators/analysis.js";
import {
  FD001_INFORMATIVE_SENSORS,
  informativeSensors,
  parseFeatureName,
  rulFeatureNames,
  rulFeatureRows,
  windowStatistics,
} from "../operators/prediction/rul-features.js";
import { referenceDataDir } from "../connectors/files/reference-data.js";

const TRAIN = join(referenceDataDir(), "cmapss", "train_FD001.txt");

let units: CmapssUnit[];
beforeAll(() => {
  units = readCmapss(TRAIN);
});

/** The rolling analysis's output row for every reading, by key, in per-key order (what observe sees). */
async function engineRows(
  selected: readonly CmapssUnit[],
  sensors: readonly string[],
  window: number,
): Promise<Map<string, Float64Array[]>> {
  const dir = mkdtempSync(join(tmpdir(), "lw-rul-features-"));
  const csv = join(dir, "fleet.csv");
  const lines = ["machine_id,sensor_type,timestamp,sensor_value"];
  // Interleave units and sensors cycle by cycle, as a fleet would report them.
  const longest = Math.max(...selected.map((u) => u.cycles.length));
  for (let i = 0; i < longest; i++) {
    for (const u of selected) {
      if (i >= u.cycles.length) continue;
      for (const s of sensors) lines.push(`engine-${u.unit},${s},${u.cycles[i]},${u.sensors[Number(s.slice(1)) - 1][i]}`);
    }
  }
  writeFileSync(csv, `${lines.join("\n")}\n`);
  const rows = new Map<string, Float64Array[]>();
  const rolling = rollingAnalysis({ window: { kind: "count", records: window }, alpha: 0.1, timeScale: 1 });
  const capture: RecordAnalysis = {
    ...rolling,
    observe(row, ctx) {
      rolling.observe?.(row, ctx);
      const list = rows.get(ctx.key) ?? [];
      list.push(Float64Array.from(row));
      rows.set(ctx.key, list);
    },
  };
  const sink = new PassThrough();
  sink.resume();
  const summary = await runReplay({
    input: csv,
    analyses: [capture],
    timeColumn: "timestamp",
    timeUnit: "number",
    lateness: null,
    workers: 2,
    keysMax: 1024,
    batchRecordsMax: 256,
    output: sink,
    progress: null,
  });
  expect(summary.rejected).toBe(0);
  expect(summary.rows).toBe(lines.length - 1);
  return rows;
}

/** |got − want| ≤ 1e-9 · max(|want|, scale). */
function expectClose(got: number, want: number, scale: number, what: string): void {
  expect(Math.abs(got - want), `${what}: ${got} vs ${want}`).toBeLessThanOrEqual(1e-9 * Math.max(Math.abs(want), scale));
}

describe("rul features", () => {
  it("equal the rolling analysis's output on C-MAPSS units run through the engine (count window 30), to 1e-9 relative", async () => {
    const window = 30;
    const selected = [units[0], units[1], units[36], units[68]];
    const sensors = FD001_INFORMATIVE_SENSORS;
    const names = rulFeatureNames(sensors, ["mean", "slope", "std", "min", "max", "count"]);
    const byKey = await engineRows(selected, sensors, window);
    let compared = 0;
    for (const u of selected) {
      const features = rulFeatureRows(u, names, window);
      const f = names.length;
      for (const [j, name] of names.entries()) {
        const { sensor, sensorIndex, statistic } = parseFeatureName(name);
        const rows = byKey.get(`engine-${u.unit}/${sensor}`)!;
        expect(rows.length).toBe(u.cycles.length);
        for (let i = 0; i < rows.length; i++) {
          const [count, mean, std, , min, max, slope] = rows[i];
          const got = features[i * f + j];
          const what = `unit ${u.unit} ${name} cycle ${i + 1}`;
          expect(count).toBe(Math.min(window, i + 1));
          // Scales: a mean's error is relative to the values; a slope's or std's to the window's spread.
          const xs = u.sensors[sensorIndex].subarray(Math.max(0, i + 1 - window), i + 1);
          const level = Math.max(...Array.from(xs, Math.abs));
          const spread = Number.isFinite(std) ? std : 0;
          switch (statistic) {
            case "count":
              expect(got).toBe(count);
              break;
            case "mean":
              expectClose(got, mean, level, what);
              break;
            case "min":
              expect(got).toBe(min);
              break;
            case "max":
              expect(got).toBe(max);
              break;
            case "std":
              // Undefined (one reading) in the analysis; 0 as a feature.
              if (i === 0) {
                expect(std).toBeNaN();
                expect(got).toBe(0);
              } else expectClose(got, std, spread, what);
              break;
            case "slope":
              if (i === 0) {
                expect(slope).toBeNaN();
                expect(got).toBe(0);
              } else expectClose(got, slope, spread / count, what);
              break;
            default:
              throw new Error(`untested statistic ${statistic}`);
          }
          compared++;
        }
      }
    }
    expect(compared).toBeGreaterThan(4 * 128 * names.length);
  }, 60_000);

  it("follow a short window too (window 5: the fill and then a sliding window)", async () => {
    const selected = [units[4]];
    const names = rulFeatureNames(["s4", "s11"], ["mean", "slope"]);
    const byKey = await engineRows(selected, ["s4", "s11"], 5);
    const features = rulFeatureRows(selected[0], names, 5);
    names.forEach((name, j) => {
      const { sensor } = parseFeatureName(name);
      byKey.get(`engine-${selected[0].unit}/${sensor}`)!.forEach((row, i) => {
        const want = name.endsWith(".mean") ? row[1] : Number.isNaN(row[6]) ? 0 : row[6];
        expectClose(
          features[i * names.length + j],
          want,
          name.endsWith(".mean") ? Math.abs(row[1]) : (Number.isFinite(row[2]) ? row[2] : 0) / 5,
          `${name} cycle ${i + 1}`,
        );
      });
    });
  }, 60_000);

  it("window statistics of a small hand-made series", () => {
    const xs = [1, 3, 2, 6];
    const s = windowStatistics(xs, 0, 4);
    expect(s).toEqual({ count: 4, mean: 3, std: Math.sqrt(14 / 3), std_pop: Math.sqrt(14 / 4), min: 1, max: 6, slope: 1.4 });
    expect(windowStatistics(xs, 3, 4)).toEqual({ count: 1, mean: 6, std: 0, std_pop: 0, min: 6, max: 6, slope: 0 });
    // Row i covers the last min(window, i + 1) readings.
    const unit: CmapssUnit = {
      unit: 1,
      cycles: Int32Array.of(1, 2, 3, 4),
      settings: [],
      sensors: Array.from({ length: 21 }, () => Float64Array.from(xs)),
    };
    expect(Array.from(rulFeatureRows(unit, ["s2.mean", "s2.slope"], 2))).toEqual([1, 0, 2, 2, 2.5, -1, 4, 4]);
  });

  it("the informative sensors of FD001 are the 14 that vary", () => {
    expect(informativeSensors(units)).toEqual(FD001_INFORMATIVE_SENSORS);
    expect(rulFeatureNames(["s2", "s3"], ["mean", "slope"])).toEqual(["s2.mean", "s2.slope", "s3.mean", "s3.slope"]);
    expect(rulFeatureNames(["s2"])).toEqual(["s2.mean", "s2.slope", "s2.count"]);
  });

  it("names that are not <sensor>.<statistic> are ConfigErrors", () => {
    for (const bad of ["s2", "s2.", ".mean", "s22.mean", "s2.ewma", "s2.z", "T24.mean", "s2.mean.x"]) {
      expect(() => parseFeatureName(bad), bad).toThrow(ConfigError);
    }
    expect(() => rulFeatureRows(units[0], ["s2.mean"], 0)).toThrow(ConfigError);
  });
});
