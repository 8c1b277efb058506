import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../engine/core/errors.js";
import { runReplay, type ReplayOptions, type ReplaySummary } from "../engine/jobs/replay.js";
import { referenceDataDir } from "../connectors/files/reference-data.js";
import { rollingAnalysis, type RollingWindow } from "../operators/rolling/rolling.js";
import type { RecordAnalysis } from "../operators/analysis.js";

const NAB = join(referenceDataDir(), "nab");
const TRAFFIC = join(NAB, "realTraffic", "speed_6005.csv");
const TWEETS = join(NAB, "realTweets", "Twitter_volume_AAPL.csv");

type Line = Record<string, number | string | boolean | null>;

type ReplayOverrides = Partial<ReplayOptions> & { window?: RollingWindow; alpha?: number };

async function replay(overrides: ReplayOverrides): Promise<{ lines: Line[]; summary: ReplaySummary }> {
  const output = new PassThrough();
  const chunks: Buffer[] = [];
  output.on("data", (c: Buffer) => chunks.push(c));
  const { window = { kind: "count", records: 64 }, alpha = 0.1, ...rest } = overrides;
  const timeUnit = rest.timeUnit ?? "ms";
  const summary = await runReplay({
    input: TRAFFIC,
    analyses: rest.analyses ?? [rollingAnalysis({ window, alpha, timeScale: timeUnit === "ms" ? 1000 : 1 })],
    timeColumn: "timestamp",
    timeUnit,
    lateness: null,
    workers: 2,
    keysMax: 64,
    batchRecordsMax: 512,
    output,
    progress: null,
    ...rest,
    ...(rest.analyses ? {} : { analyses: [rollingAnalysis({ window, alpha, timeScale: timeUnit === "ms" ? 1000 : 1 })] }),
  });
  const text = Buffer.concat(chunks).toString("utf8");
  return {
    lines: text
      .split("\n")
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as Line),
    summary,
  };
}

/** The NAB file read independently of linewatch's reader: [epoch ms, value] per row. */
function readNab(path: string): Array<[number, number]> {
  return readFileSync(path, "utf8")
    .trim()
    .split("\n")
    .slice(1)
    .map((l) => {
      const [ts, v] = l.split(",");
      return [Date.parse(`${ts.replace(" ", "T")}Z`), Number(v)] as [number, number];
    });
}

/** Two-pass statistics of one window: mean first, then centred sums. */
function twoPass(ts: number[], xs: number[], x: number) {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const ss = xs.reduce((a, b) => a + (b - mean) ** 2, 0);
  const tMean = ts.reduce((a, b) => a + b, 0) / n;
  const stt = ts.reduce((a, b) => a + (b - tMean) ** 2, 0);
  const stx = ts.reduce((a, t, i) => a + (t - tMean) * (xs[i] - mean), 0);
  const std = n > 1 ? Math.sqrt(ss / (n - 1)) : null;
  return {
    count: n,
    mean,
    std,
    std_pop: Math.sqrt(ss / n),
    min: Math.min(...xs),
    max: Math.max(...xs),
    slope: n > 1 && stt > 0 ? stx / stt : null,
    z: std !== null && std > 0 ? (x - mean) / std : null,
  };
}

/** |a − b| ≤ 1e-9 · scale, where scale is the size of the quantity (relative agreement). */
function expectClose(got: unknown, want: number | null, scale: number, what: string): void {
  if (want === null) {
    expect(got, what).toBeNull();
    return;
  }
  expect(typeof got, what).toBe("number");
  expect(Math.abs((got as number) - want), `${what}: ${got} vs ${want}`).toBeLessThanOrEqual(1e-9 * Math.max(scale, Math.abs(want)));
}

describe("replay - statistics on real data (NAB)", () => {
  it("count window 64 agrees with an independent two-pass computation to 1e-9 relative", async () => {
    const rows = readNab(TRAFFIC);
    const { lines, summary } = await replay({ window: { kind: "count", records: 64 } });
    expect(summary.rows).toBe(rows.length);
    expect(lines.length).toBe(rows.length);
    let ewma = rows[0][1];
    for (let i = 0; i < rows.length; i++) {
      const line = lines[i];
      expect(line.row).toBe(i);
      expect(line.key).toBe("speed_6005");
      if (i > 0) ewma += 0.1 * (rows[i][1] - ewma);
      if (i < 63) {
        expect(line.count, `row ${i}`).toBeNull();
        expect(line.mean).toBeNull();
        continue;
      }
      const xs = rows.slice(i - 63, i + 1).map((r) => r[1]);
      const idx = xs.map((_, k) => k);
      const want = twoPass(idx, xs, rows[i][1]);
      const scale = Math.max(...xs.map(Math.abs));
      expect(line.count).toBe(64);
      expectClose(line.mean, want.mean, scale, `mean row ${i}`);
      expectClose(line.std, want.std, want.std ?? 0, `std row ${i}`);
      expectClose(line.std_pop, want.std_pop, want.std_pop, `std_pop row ${i}`);
      expect(line.min).toBe(want.min);
      expect(line.max).toBe(want.max);
      expectClose(line.slope, want.slope, Math.abs(want.slope ?? 0) + (want.std ?? 0) / 64, `slope row ${i}`);
      expectClose(line.ewma, ewma, scale, `ewma row ${i}`);
      // z is dimensionless and O(1): its error is the mean's error over std, so compare on the scale max(1, |z|).
      expectClose(line.z, want.z, Math.max(1, Math.abs(want.z ?? 0)), `z row ${i}`);
    }
  });

  it("time window 1h agrees with an independent two-pass computation (slope per second)", async () => {
    const rows = readNab(TWEETS);
    const { lines } = await replay({ input: TWEETS, window: { kind: "time", span: 3_600_000, capacity: 4096 } });
    expect(lines.length).toBe(rows.length);
    const t0 = rows[0][0];
    let start = 0;
    for (let i = 0; i < rows.length; i++) {
      while (rows[start][0] <= rows[i][0] - 3_600_000) start++;
      const win = rows.slice(start, i + 1);
      const xs = win.map((r) => r[1]);
      const want = twoPass(
        win.map((r) => (r[0] - t0) / 1000),
        xs,
        rows[i][1],
      );
      const line = lines[i];
      const scale = Math.max(...xs.map(Math.abs));
      expect(line.count, `row ${i}`).toBe(want.count);
      expectClose(line.mean, want.mean, scale, `mean row ${i}`);
      expectClose(line.std, want.std, want.std ?? 0, `std row ${i}`);
      expect(line.min).toBe(want.min);
      expect(line.max).toBe(want.max);
      expectClose(line.slope, want.slope, Math.abs(want.slope ?? 0) + (want.std ?? 0) / 3600, `slope row ${i}`);
      // z is dimensionless and O(1): its error is the mean's error over std, so compare on the scale max(1, |z|).
      expectClose(line.z, want.z, Math.max(1, Math.abs(want.z ?? 0)), `z row ${i}`);
    }
  });
});

describe("replay - contract", () => {
  const dir = mkdtempSync(join(tmpdir(), "lw-replay-"));

  it("keys by machine_id,sensor_type, keeps input order, flags out-of-order rows and rejects bad rows", async () => {
    const csv = join(dir, "mixed.csv");
    writeFileSync(
      csv,
      [
        "machine_id,sensor_type,timestamp,sensor_value",
        "M-1,temp,2026-01-01T00:00:00Z,1",
        "M-2,temp,2026-01-01T00:00:00Z,10",
        "M-1,temp,2026-01-01T00:00:02Z,3",
        "M-1,temp,2026-01-01T00:00:01Z,2",
        "M-2,temp,1767225601000,20",
        "M-1,temp,not-a-time,4",
        "M-2,temp,2026-01-01 00:00:02,NaN",
      ].join("\n"),
    );
    const { lines, summary } = await replay({ input: csv, window: { kind: "count", records: 2 } });
    expect(lines.map((l) => l.row)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(lines.map((l) => l.key)).toEqual(["M-1/temp", "M-2/temp", "M-1/temp", "M-1/temp", "M-2/temp", "M-1/temp", "M-2/temp"]);
    expect(lines[0].count).toBeNull();
    expect(lines[2]).toMatchObject({ count: 2, mean: 2, min: 1, max: 3, slope: 2 });
    expect(lines[3]).toMatchObject({ count: 2, mean: 2.5, out_of_order: true });
    expect(lines[4]).toMatchObject({ timestamp: 1767225601000, count: 2, mean: 15 });
    expect(lines[5].error).toMatch(/time/);
    expect(lines[6].error).toMatch(/value/);
    expect(summary).toMatchObject({ rows: 7, rejected: 2, outOfOrder: 1, keys: 2 });
  });

  it("with --lateness reorders within it and marks later rows late without statistics", async () => {
    const ndjson = join(dir, "late.ndjson");
    const times = [0, 2, 1, 5, 3, 10, 4, 11];
    writeFileSync(ndjson, `${times.map((t) => JSON.stringify({ timestamp: t, value: t })).join("\n")}\n`);
    const { lines, summary } = await replay({
      input: ndjson,
      window: { kind: "count", records: 1 },
      timeUnit: "number",
      lateness: 2,
    });
    // Watermark = newest − 2: t=3 arrives after 5 (watermark 3) → on time; t=4 after 10 (watermark 8) → late.
    expect(lines.map((l) => l.late ?? false)).toEqual([false, false, false, false, false, false, true, false]);
    expect(lines[6]).toMatchObject({ value: 4, mean: null, count: null });
    expect(lines[2]).toMatchObject({ value: 1, mean: 1, count: 1 });
    expect(summary.late).toBe(1);
    expect(lines.map((l) => l.key)).toEqual(new Array(8).fill("late"));
  });

  it("numeric time columns that are counters use --time-unit number; slope is per unit", async () => {
    const csv = join(dir, "cycles.csv");
    writeFileSync(csv, ["unit,cycle,value", ...[1, 2, 3, 4].map((c) => `7,${c},${c * 3}`)].join("\n"));
    const { lines } = await replay({
      input: csv,
      keyColumns: ["unit"],
      timeColumn: "cycle",
      timeUnit: "number",
      window: { kind: "time", span: 2, capacity: 16 },
    });
    expect(lines.map((l) => l.count)).toEqual([1, 2, 2, 2]);
    expect(lines[3]).toMatchObject({ key: "7", slope: 3, mean: 10.5 });
  });

  it("marks rows whose time window outgrew its capacity and says so in the notes", async () => {
    const csv = join(dir, "dense.csv");
    writeFileSync(csv, ["timestamp,value", ...[0, 1, 2, 3].map((t) => `${t},${t}`)].join("\n"));
    const { lines, summary } = await replay({ input: csv, timeUnit: "number", window: { kind: "time", span: 100, capacity: 2 } });
    expect(lines.map((l) => l.window_truncated ?? false)).toEqual([false, false, true, true]);
    expect(lines[3]).toMatchObject({ count: 2, mean: 2.5 });
    expect(summary.notes.length).toBe(1);
    expect(summary.notes[0]).toMatch(/2 rows/);
  });

  it("carries an analysis's own input (payload bytes) to its output, rejecting rows it cannot encode", async () => {
    const csv = join(dir, "codes.csv");
    writeFileSync(csv, ["line,at,code", "L1,0,AB12", "L1,1,TOOLONG", "L2,2,CD34"].join("\n"));
    const base = rollingAnalysis({ window: { kind: "count", records: 1 }, alpha: 0.5, timeScale: 1 });
    const codes: RecordAnalysis = {
      ...base,
      name: "codes",
      input: {
        payloadBytes: 4,
        needsValue: false,
        keyColumns: ["line"],
        timeColumn: "at",
        encode(row, payload, offset) {
          const code = String(row.get("code") ?? "");
          if (code.length !== 4) return `code "${code}" is not 4 characters`;
          payload.set(Buffer.from(code, "latin1"), offset);
          return null;
        },
      },
      nullJson: '"code":null',
      rowJson: (_row, payload) => `"code":${JSON.stringify(Buffer.from(payload ?? []).toString("latin1"))}`,
    };
    const { lines, summary } = await replay({ input: csv, timeUnit: "number", analyses: [codes] });
    expect(lines).toEqual([
      { row: 0, key: "L1", timestamp: 0, value: null, code: "AB12" },
      { row: 1, key: "L1", timestamp: 1, value: null, code: null, error: 'code "TOOLONG" is not 4 characters' },
      { row: 2, key: "L2", timestamp: 2, value: null, code: "CD34" },
    ]);
    expect(summary.rejected).toBe(1);
  });

  it("names a missing column with ConfigError", async () => {
    await expect(replay({ input: TRAFFIC, valueColumn: "nope" })).rejects.toBeInstanceOf(ConfigError);
  });
});
