import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { runJob } from "../engine/jobs/run-job.js";
import { rollingAnalysis } from "../operators/rolling/rolling.js";
import { DEFAULT_SPC_PARAMS } from "../operators/spc/layout.js";
import { spcAnalysis } from "../operators/spc/spc.js";

describe("run job - simulator to scores file", () => {
  it("scores every simulated reading once, in per-key time order, and stops at the record limit", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lw-run-"));
    const outPath = join(dir, "scores.ndjson");
    const console = new PassThrough();
    const result = await runJob({
      simulator: { seed: 3, machines: 3, rateHz: 20, maxRecords: 20_000 },
      analyses: [rollingAnalysis({ window: { kind: "count", records: 16 }, alpha: 0.2, timeScale: 1000 })],
      keyByMode: false,
      workers: 2,
      groups: 4,
      batchRecordsMax: 512,
      speed: Infinity,
      outPath,
      fileBytesMax: 1 << 30,
      zAlarm: 4,
      flushIntervalMs: 250,
      summaryIntervalMs: 0,
      console,
      stop: new Promise(() => {}),
    });
    expect(result.metrics.recordsIn).toBe(20_000);
    expect(result.metrics.recordsOut).toBe(20_000);
    const lines = readFileSync(outPath, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.length).toBe(20_000);
    expect(Object.keys(lines[0])).toEqual([
      "machine_id",
      "sensor_type",
      "timestamp",
      "value",
      "count",
      "mean",
      "std",
      "std_pop",
      "min",
      "max",
      "slope",
      "ewma",
      "z",
    ]);
    const lastTime = new Map<string, string>();
    const counts = new Map<string, number>();
    for (const l of lines) {
      const key = `${l.machine_id}/${l.sensor_type}`;
      const t = l.timestamp as string;
      expect(t >= (lastTime.get(key) ?? "")).toBe(true);
      lastTime.set(key, t);
      const n = (counts.get(key) ?? 0) + 1;
      counts.set(key, n);
      // As in replay: a count window reports statistics once it holds its 16 records.
      expect(l.count).toBe(n < 16 ? null : 16);
    }
    expect(counts.size).toBe(3 * 6);
    const anomalies = lines.filter((l) => typeof l.z === "number" && Math.abs(l.z) >= 4).length;
    expect(result.anomalies).toBe(anomalies);
  });

  it("a limits change polled at the start applies to the named key from its first record", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lw-run-"));
    const outPath = join(dir, "scores.ndjson");
    let polled = false;
    const key = "M-001/temperature";
    await runJob({
      simulator: { seed: 3, machines: 1, sensorTypes: ["temperature", "pressure"], rateHz: 20, maxRecords: 400 },
      analyses: [spcAnalysis({ params: { ...DEFAULT_SPC_PARAMS, baselineN: 1000 }, ewmaField: "ewma" })],
      keyByMode: false,
      workers: 1,
      groups: 2,
      batchRecordsMax: 64,
      speed: Infinity,
      outPath,
      fileBytesMax: 1 << 30,
      zAlarm: 4,
      // As watchLimitsFile: each change is returned once.
      limitsChanges: () => {
        if (polled) return [];
        polled = true;
        return [{ key, change: { kind: "set", cl: 123, sigma: 4 } }];
      },
      flushIntervalMs: 250,
      summaryIntervalMs: 0,
      console: new PassThrough(),
      stop: new Promise(() => {}),
    });
    const lines = readFileSync(outPath, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const set = lines.filter((l) => `${l.machine_id}/${l.sensor_type}` === key);
    const other = lines.filter((l) => `${l.machine_id}/${l.sensor_type}` !== key);
    expect(set.length).toBe(200);
    // The baseline (1000 records) is never complete: only the change gives the key limits.
    expect(set.every((l) => l.cl === 123 && l.sigma === 4)).toBe(true);
    expect(other.every((l) => l.cl === null)).toBe(true);
  });
});
