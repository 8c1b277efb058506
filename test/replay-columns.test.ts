/**
 * The replay's columns pipeline writes the rows pipeline's bytes: every number through
 * writeStatisticAt gives formatStatistic's text, the byte parsers read what the text parsers
 * read, the rolling byte writer writes rowJson, and whole replays — NAB series and adversarial
 * CSV — come out byte for byte the same through both pipelines, to a file (the text worker writes
 * its descriptor) and to a stream, with and without worker threads.
 */
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, type Writable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { decimalFromBytes, epochDigitsFromBytes, isoTimeFromBytes, parseEventTime, parseReading } from "../engine/core/event-time.js";
import { SeededRandom } from "../engine/core/prng.js";
import { columnReplayFits, type ReplayOptions, type ReplaySummary, runReplay } from "../engine/jobs/replay.js";
import { referenceDataDir } from "../connectors/files/reference-data.js";
import { formatStatistic, writeInteger, writeStatistic } from "../operators/number-format.js";
import { rollingAnalysis, rollingRowText, type RollingWindow } from "../operators/rolling/rolling.js";

const NAB = join(referenceDataDir(), "nab");
const random = new SeededRandom(20240611);

describe("replay columns - numbers as bytes", () => {
  const out = new Uint8Array(64);
  const text = (end: number) => Buffer.from(out.subarray(0, end)).toString("latin1");
  const mismatches = (values: Iterable<number>): string[] => {
    const bad: string[] = [];
    for (const v of values) {
      const got = text(writeStatistic(out, 0, v));
      if (got !== formatStatistic(v) && bad.length < 10) bad.push(`${v}: ${got} ≠ ${formatStatistic(v)}`);
    }
    return bad;
  };

  it("writeStatistic writes formatStatistic's text for random bit patterns, magnitudes, short decimals and ties", () => {
    const bits = new Float64Array(1);
    const words = new Uint32Array(bits.buffer);
    const cases: number[] = [];
    for (let i = 0; i < 200_000; i++) {
      words[0] = random.uint32();
      words[1] = random.uint32();
      cases.push(bits[0]);
      // Every decade of fixed notation and beyond, both signs.
      cases.push((random.next() - 0.5) * 10 ** random.int(-9, 17));
      // What sensors and their statistics look like: few decimals, means of them.
      cases.push(Math.round(random.uniform(-1000, 1000) * 1000) / 1000, random.int(0, 1e6) / 64);
      // Exact ties at the 16th digit: (n + 0.5) · 10^-k with n of 15 digits.
      cases.push((random.int(1e14, 1e15 - 1) + 0.5) / 10 ** random.int(0, 20));
    }
    expect(mismatches(cases)).toEqual([]);
  });

  it("writeStatistic is exact next to every power of ten and at the edges of fixed notation", () => {
    const bits = new Float64Array(1);
    const words = new Uint32Array(bits.buffer);
    const step = (x: number, by: number) => {
      bits[0] = x;
      const lo = words[0] + by;
      words[1] += Math.floor(lo / 2 ** 32);
      words[0] = lo >>> 0;
      return bits[0];
    };
    const cases = [0, -0, Number.NaN, Infinity, -Infinity, Number.MIN_VALUE, Number.MAX_VALUE, 1e-6, 1e15, 0.1, 0.2 + 0.1, 1 / 3];
    for (let k = -10; k <= 22; k++) {
      const p = 10 ** k;
      for (let d = -3; d <= 3; d++) cases.push(step(p, d), -step(p, d));
      for (const m of [0.5, 0.95, 1 - 5e-16, 1 - 2 ** -53]) cases.push(p * m, p * (1 + (1 - m)));
    }
    expect(mismatches(cases)).toEqual([]);
  });

  it("writeInteger writes String(n)", () => {
    for (const n of [0, 7, 10, 64, 65535, 123456789, 2 ** 31 - 1, 2 ** 31, 2 ** 53 - 1, -1, 1.5, Number.NaN]) {
      expect(text(writeInteger(out, 0, n))).toBe(String(n));
    }
  });
});

describe("replay columns - cells from bytes", () => {
  const at = new Float64Array(1);
  /** What the byte parser makes of `cell`, or undefined when it leaves the cell to the text parser. */
  const fromBytes = (parse: typeof decimalFromBytes, cell: string): number | undefined => {
    const bytes = Buffer.from(cell, "latin1");
    return parse(bytes, 0, bytes.length, at, 0) ? at[0] : undefined;
  };
  const pad = (n: number, width: number) => String(n).padStart(width, "0");

  it("reads ISO-8601 and epoch cells as parseEventTime does, and decides the usual forms", () => {
    const cells = ["2024-02-29T12:00:00Z", "2023-02-29T00:00:00Z", "2024-03-01T24:00:00Z", "2024-13-01T00:00:00Z", "0000-01-01 00:00:00"];
    for (let i = 0; i < 20_000; i++) {
      const date = `${pad(random.int(0, 9999), 4)}-${pad(random.int(0, 13), 2)}-${pad(random.int(0, 32), 2)}`;
      const clock = `${pad(random.int(0, 25), 2)}:${pad(random.int(0, 60), 2)}:${pad(random.int(0, 60), 2)}`;
      const fraction = ["", ".123", ".1", ".123456", ",123"][random.below(5)];
      const zone = ["", "Z", "z", "+01:00", " Z"][random.below(5)];
      cells.push(`${date}${random.below(2) === 0 ? "T" : " "}${clock}${fraction}${zone}`);
      cells.push(
        String(random.int(0, 2 ** 31) * random.int(1, 1000)),
        `0${random.int(0, 99)}`,
        `-${random.int(1, 99)}`,
        `${random.int(0, 99)}.5`,
      );
      // Runs of one date with other clocks, valid or not (the parser keeps the last date it read).
      cells.push(`${date}T${clock}Z`, `${date} ${pad(random.int(0, 25), 2)}:00:00`, `${date}T00:00:00.999`, `${date}X00:00:00`);
    }
    let decided = 0;
    for (const cell of cells) {
      const got = fromBytes(epochDigitsFromBytes, cell) ?? fromBytes(isoTimeFromBytes, cell);
      if (got === undefined) continue;
      decided++;
      expect(got, cell).toBe(parseEventTime(cell, "ms"));
    }
    // Not vacuous: the real dates in the usual forms and the plain epochs, about a fifth of these cells, are decided from bytes.
    expect(decided).toBeGreaterThan(cells.length / 5);
    expect(fromBytes(isoTimeFromBytes, "2026-01-05T06:00:00.123Z")).toBe(Date.parse("2026-01-05T06:00:00.123Z"));
    expect(fromBytes(isoTimeFromBytes, "2015-09-08 11:39:00")).toBe(Date.parse("2015-09-08T11:39:00Z"));
  });

  it("reads decimal cells as parseReading does, and decides the usual forms", () => {
    const cells = [
      "0",
      "-0",
      "+5",
      ".5",
      "5.",
      "-.5",
      ".",
      "-",
      "",
      "1e3",
      " 1",
      "1 ",
      "NaN",
      "007.250",
      "123456789012345",
      "1234567890123456",
      "0.000000123",
    ];
    for (let i = 0; i < 50_000; i++) {
      const digits = random.int(1, 17);
      let s = "";
      for (let d = 0; d < digits; d++) s += String(random.below(10));
      const point = random.int(0, digits);
      cells.push(`${random.below(3) === 0 ? "-" : ""}${s.slice(0, point)}${point < digits ? "." : ""}${s.slice(point)}`);
    }
    let decided = 0;
    for (const cell of cells) {
      const got = fromBytes(decimalFromBytes, cell);
      if (got === undefined) continue;
      decided++;
      expect(Object.is(got, parseReading(cell)), `${cell}: ${got} vs ${parseReading(cell)}`).toBe(true);
    }
    expect(decided).toBeGreaterThan(cells.length / 2);
  });
});

describe("replay columns - the rolling analysis's members as bytes", () => {
  it("rollingRowText writes rowJson's text, null rows, truncated rows and odd values included", () => {
    const out = new Uint8Array(1024);
    for (const window of [
      { kind: "count", records: 64 },
      { kind: "time", span: 1000, capacity: 16 },
    ] satisfies RollingWindow[]) {
      const analysis = rollingAnalysis({ window, alpha: 0.1, timeScale: 1000 });
      const writer = rollingRowText(window.kind === "count" ? window.records : 1);
      const rows = new Float64Array(10 * 5000);
      for (let r = 0; r < 5000; r++) {
        const o = r * 10;
        rows[o] = [0, 1, 63, 64, 64, 65535][random.below(6)];
        for (let f = 1; f < 9; f++)
          rows[o + f] = [random.normal() * 10 ** random.int(-12, 16), Number.NaN, 0, -0, Infinity][random.below(5)];
        rows[o + 9] = random.below(2);
        const end = writer.write(out, 0, rows, o);
        expect(Buffer.from(out.subarray(0, end)).toString("utf8")).toBe(analysis.rowJson(rows.subarray(o, o + 10)));
      }
    }
  });
});

describe("replay columns - whole replays, byte for byte", () => {
  const dir = mkdtempSync(join(tmpdir(), "lw-replay-columns-"));
  // Tens of megabytes of CSV and NDJSON: gone when the suite is.
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("NAB series: count and time windows, rolling alone", async () => {
    const files = [
      join(NAB, "realTraffic", "speed_6005.csv"),
      join(NAB, "realTweets", "Twitter_volume_AAPL.csv"),
      join(NAB, "realAWSCloudwatch", "ec2_cpu_utilization_24ae8d.csv"),
      join(NAB, "artificialWithAnomaly", "art_daily_jumpsup.csv"),
      join(NAB, "artificialNoAnomaly", "art_flatline.csv"),
    ];
    for (const input of files) {
      await expectSameBytes(dir, { input }, { kind: "count", records: 64 });
      await expectSameBytes(dir, { input }, { kind: "time", span: 3_600_000, capacity: 16 });
    }
  });

  it("adversarial CSV: quotes, CRLF, blanks, empty and NaN cells, odd times and values, out-of-order rows", async () => {
    const input = join(dir, "adversarial.csv");
    writeFileSync(input, adversarialCsv(6000));
    const seen = new Set<string>();
    for (const window of [{ kind: "count", records: 3 } as const, { kind: "time", span: 5000, capacity: 4 } as const]) {
      const text = await expectSameBytes(dir, { input }, window);
      for (const member of ['"out_of_order":true', '"error":', '"window_truncated":true', '"key":"M,3/', '"key":"Mäschine/', "e-7"]) {
        if (text.includes(member)) seen.add(member);
      }
      if ((await expectSameBytes(dir, { input, lateness: 2000 }, window)).includes('"late":true')) seen.add("late");
      await expectSameBytes(dir, { input, keyColumns: ["sensor_type", "machine_id"], valueColumn: "sensor_value" }, window);
      await expectSameBytes(dir, { input, keyColumns: ["note"] }, window);
      await expectSameBytes(dir, { input, keyColumns: ["note", "machine_id"] }, window);
      await expectSameBytes(dir, { input, workers: 0 }, window);
      await expectSameBytes(dir, { input, timeUnit: "number" }, window);
    }
    // Not vacuous: the lines took every turn the file offers.
    expect([...seen].sort()).toEqual(
      ['"error":', '"key":"M,3/', '"key":"Mäschine/', '"out_of_order":true', '"window_truncated":true', "e-7", "late"].sort(),
    );
  });

  it("many keys, lines across read chunks, and a lateness that holds every row until the end (the ring grows)", async () => {
    const input = join(dir, "many.csv");
    const lines = ["machine_id,sensor_type,timestamp,sensor_value"];
    for (let i = 0; i < 120_000; i++) {
      const t = 1_767_225_600_000 + i * 10 - random.int(0, 400);
      lines.push(
        `M-${random.below(600)},${["temp", "rpm", "current", "vib"][random.below(4)]},${t},${(random.normal() * 50).toFixed(random.int(0, 6))}`,
      );
    }
    writeFileSync(input, `${lines.join("\r\n")}\r\n`);
    await expectSameBytes(dir, { input, keysMax: 4096 }, { kind: "count", records: 8 });
    await expectSameBytes(dir, { input, keysMax: 4096, lateness: 3_600_000 }, { kind: "count", records: 8 });
  }, 120_000);

  it("long keys, timestamps and error texts (a block's text outgrows the buffer sized for it)", async () => {
    const input = join(dir, "long.csv");
    const lines = ["machine_id,sensor_type,timestamp,sensor_value"];
    // About 1.6 kB a line: a block of 16384 rows is 26 MB, past the 8 MiB its buffer is first sized for (320 B a row).
    for (let i = 0; i < 20_000; i++) {
      const key = `${"k".repeat(1500)}${i % 40}`;
      const time =
        i % 3 === 0
          ? `2026-01-01T00:${String(Math.floor(i / 1000) % 60).padStart(2, "0")}:00.123456789+01:00`
          : String(1_767_225_600_000 + i);
      const value = i % 7 === 0 ? "x".repeat(400) : String(i % 100);
      lines.push(`${key},s,${time},${value}`);
    }
    writeFileSync(input, lines.join("\n"));
    const text = await expectSameBytes(dir, { input }, { kind: "count", records: 4 });
    expect(text.length).toBeGreaterThan(20_000 * 1500);
  }, 120_000);

  it("a character whose bytes straddle two reads stays one character (both pipelines)", async () => {
    const input = join(dir, "straddle.csv");
    let text = "machine_id,sensor_type,timestamp,sensor_value\n";
    while (Buffer.byteLength(text) < 65_500) text += "M-1,t,2026-01-01T00:00:00Z,1\n";
    // "ä" (2 bytes in UTF-8) from byte 65535: across the first 64 KiB read of a file stream.
    text += `${"x".repeat(65_535 - Buffer.byteLength(text))}ä,t,2026-01-01T00:00:01Z,2\n`;
    writeFileSync(input, text);
    expect(await expectSameBytes(dir, { input }, { kind: "count", records: 2 })).toMatch(/"key":"x+ä\/t"/);
  });

  it("the columns pipeline takes CSV files with analyses that have byte writers, nothing else", () => {
    const analyses = [rollingAnalysis({ window: { kind: "count", records: 4 }, alpha: 0.1, timeScale: 1000 })];
    const base = { analyses, output: new PassThrough() } as unknown as ReplayOptions;
    expect(columnReplayFits({ ...base, input: "plant.csv" })).toBeNull();
    expect(columnReplayFits({ ...base, input: "plant.ndjson" })).toMatch(/not a CSV/);
    expect(columnReplayFits({ ...base, input: "-" })).toMatch(/not a CSV/);
    const { rowText: _, ...noText } = analyses[0];
    expect(columnReplayFits({ ...base, input: "plant.csv", analyses: [noText] })).toMatch(/byte writer/);
  });
});

/** A CSV that tries every corner the two readers could read differently. */
function adversarialCsv(rows: number): string {
  const times = [
    "2026-01-01T00:00:{s}Z",
    "2026-01-01 00:00:{s}",
    "2026-01-01T00:00:{s}.250Z",
    "2026-01-01T00:00:{s}.5Z",
    "2026-01-01T00:00:{s}+01:00",
    "2026-01-01T00:00:{s}z",
    "2026-02-30T00:00:{s}Z",
    "1767225600{s}0",
    "01767225600{s}0",
    "1767225600{s}0.5",
    "  2026-01-01T00:00:{s}Z",
    '"2026-01-01T00:00:{s}Z"',
    "not a time",
    "",
  ];
  const values = [
    "1.5",
    "-2",
    "0",
    "-0",
    "+3",
    ".5",
    "5.",
    "007.25",
    "1e3",
    "NaN",
    "",
    " 4 ",
    "abc",
    "123456789012345678",
    "0.0000001",
    "9e300",
    '"6,5"',
    "42",
  ];
  // "" and "plain" also stand in the note column: keys (note, machine) "/plain" and "plain/" must stay two.
  const keys = ["M-1", "M-2", "Mäschine", '"M,3"', '"M ""4"""', " M-5", "M-6 ", "", "plain"];
  const out = ["\uFEFFmachine_id,sensor_type,timestamp,sensor_value,note", ""];
  for (let i = 0; i < rows; i++) {
    const seconds = String(Math.max(0, Math.floor(i / 100) - random.int(0, 3)) % 60).padStart(2, "0");
    const time = times[random.below(times.length)].replace("{s}", seconds);
    const note = ['"quoted, with comma"', "plain", "", "ünïcode"][random.below(4)];
    const line = `${keys[random.below(keys.length)]},s${random.below(3)},${time},${values[random.below(values.length)]},${note}`;
    out.push(line);
    if (random.below(50) === 0) out.push(["", "   ", "\t", " \u00a0"][random.below(4)]);
  }
  // CRLF for some lines, and the last line without a newline.
  return out.map((l, i) => (i % 3 === 0 ? `${l}\r` : l)).join("\n");
}

/**
 * Replays `input` through both pipelines (the columns one to a file and to a stream), expects the
 * same bytes and summary, and returns the text.
 */
async function expectSameBytes(dir: string, o: Partial<ReplayOptions> & { input: string }, window: RollingWindow): Promise<string> {
  const rows = await replayInto(new PassThrough(), { ...o, pipeline: "rows" }, window);
  const file = join(dir, "columns.ndjson");
  const columns = await replayInto(createWriteStream(file), { ...o, pipeline: "columns" }, window);
  const streamed = await replayInto(new PassThrough(), { ...o, pipeline: "columns" }, window);
  const what = `${o.input} ${JSON.stringify({ ...o, input: undefined, window })}`;
  expect(rows.bytes.length, what).toBeGreaterThan(0);
  expect(firstDifference(readFileSync(file), rows.bytes), what).toBeNull();
  expect(firstDifference(streamed.bytes, rows.bytes), what).toBeNull();
  for (const s of [columns.summary, streamed.summary]) expect({ ...s, seconds: 0 }, what).toEqual({ ...rows.summary, seconds: 0 });
  return rows.bytes.toString("utf8");
}

async function replayInto(
  output: Writable,
  o: Partial<ReplayOptions> & { input: string },
  window: RollingWindow,
): Promise<{ bytes: Buffer; summary: ReplaySummary }> {
  const chunks: Buffer[] = [];
  output.on("data", (c: Buffer) => chunks.push(c));
  const summary = await runReplay({
    analyses: [rollingAnalysis({ window, alpha: 0.1, timeScale: 1000 })],
    timeColumn: "timestamp",
    timeUnit: "ms",
    lateness: null,
    workers: 2,
    keysMax: 256,
    batchRecordsMax: 512,
    progress: null,
    output,
    ...o,
  });
  await new Promise<void>((resolve, reject) => output.end((e?: Error | null) => (e ? reject(e) : resolve())));
  return { bytes: Buffer.concat(chunks), summary };
}

/** Where two byte strings first differ (with the lines around it), or null. */
function firstDifference(a: Buffer, b: Buffer): string | null {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  if (i === n && a.length === b.length) return null;
  const from = Math.max(0, a.lastIndexOf(10, i - 1));
  return `byte ${i}: ${JSON.stringify(a.subarray(from, i + 80).toString())} vs ${JSON.stringify(b.subarray(from, i + 80).toString())}`;
}
