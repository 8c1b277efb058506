/**
 * RowBinary without a server: the writer's bytes are the format's (ClickHouse docs, "RowBinary"),
 * every table's declaration gives the same values in RowBinary as in its JSONEachRow line, the
 * column encoders write the rows Outputs.record writes (statistics exact, the row objects' rounding
 * of them equal), and the spill keeps RowBinary batches with their row offsets.
 * Against a real clickhouse-server: clickhouse-row-binary.test.ts.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { CapacityError, SeededRandom } from "../engine/core/mod.js";
import { EncodeError, SpillFileError } from "../connectors/errors.js";
import { RecordLabels } from "../engine/jobs/record-labels.js";
import type { RecordAnalysis } from "../operators/analysis.js";
import { iforestAnalysis } from "../operators/iforest/iforest.js";
import { trainIsolationForest } from "../operators/iforest/training/train.js";
import { rollingAnalysis } from "../operators/rolling/rolling.js";
import { DEFAULT_SPC_PARAMS } from "../operators/spc/layout.js";
import { TEXTBOOK_RULES } from "../operators/spc/rules.js";
import { ALL_RULES, spcAnalysis } from "../operators/spc/spc.js";
import {
  encodeRowBinaryString,
  RowBinaryReader,
  RowBinaryWriter,
  writeColumnValue,
  type ColumnSpec,
} from "../connectors/clickhouse/row-binary.js";
import { CLICKHOUSE_TABLES, decodeRowBinary, encodeRow, encodeRowBinary, TABLE_SCHEMAS } from "../connectors/clickhouse/schema.js";
import {
  encodeScoreColumns,
  encodeSensorDataColumns,
  keyNames,
  labelNames,
  type ScoreColumns,
  type ScoreLayout,
} from "../connectors/clickhouse/reading-columns.js";
import { EncodedRowBuffer } from "../connectors/clickhouse/encoded-row-buffer.js";
import { SpillQueue } from "../connectors/clickhouse/spill-queue.js";
import { type Expected, outputsRows, rowDifferences } from "./kit/score-columns.js";
import { TABLE_ROWS } from "./kit/clickhouse-rows.js";

const bytesOf = (write: (w: RowBinaryWriter) => void): number[] => {
  const w = new RowBinaryWriter(16);
  write(w);
  return [...w.bytesView()];
};

describe("RowBinary writer - the format's encodings", () => {
  it("integers little-endian in their width, Float64 the exact double, Nullable a flag byte", () => {
    expect(bytesOf((w) => w.uint16(0x1234))).toEqual([0x34, 0x12]);
    expect(bytesOf((w) => w.int32(-2))).toEqual([0xfe, 0xff, 0xff, 0xff]);
    const i64 = Buffer.alloc(8);
    for (const v of [-1, Number.MIN_SAFE_INTEGER, -(2 ** 32), 2 ** 32 + 5]) {
      i64.writeBigInt64LE(BigInt(v));
      expect(bytesOf((w) => w.int64(v))).toEqual([...i64]);
    }
    i64.writeBigUInt64LE(BigInt(Number.MAX_SAFE_INTEGER));
    expect(bytesOf((w) => w.uint64(Number.MAX_SAFE_INTEGER))).toEqual([...i64]);
    const f = Buffer.alloc(8);
    for (const v of [-0, 5e-324, 1.7976931348623157e308, 0.1 + 0.2]) {
      f.writeDoubleLE(v);
      expect(bytesOf((w) => w.float64(v))).toEqual([...f]);
    }
    expect(bytesOf((w) => w.nullableFloat64(null))).toEqual([1]);
    expect(bytesOf((w) => w.nullableFloat64(Number.NaN))).toEqual([1]);
    expect(bytesOf((w) => w.nullableFloat64(-0))).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0x80]);
    expect(bytesOf((w) => w.dateTime(0xffffffff))).toEqual([0xff, 0xff, 0xff, 0xff]);
  });

  it("Strings are their UTF-8 bytes after a LEB128 length, at every length boundary", () => {
    for (const s of ["", "a".repeat(127), "a".repeat(128), "é".repeat(50), "€".repeat(43), "x€".repeat(3000), "\u{1F600}"]) {
      const utf8 = Buffer.from(s, "utf8");
      const length: number[] = [];
      for (let n = utf8.length; ; n = Math.floor(n / 128)) {
        length.push(n >= 128 ? (n & 0x7f) | 0x80 : n);
        if (n < 128) break;
      }
      expect(bytesOf((w) => w.string(s))).toEqual([...length, ...utf8]);
      expect([...encodeRowBinaryString(s)]).toEqual([...length, ...utf8]);
      expect(new RowBinaryReader(encodeRowBinaryString(s)).string()).toBe(s);
    }
  });

  it("Decimal(P, S) is the value × 10^S in 4, 8 or 16 bytes; too many digits are refused", () => {
    const col = (type: ColumnSpec["type"]): ColumnSpec => ({ name: "d", type, nullable: false });
    expect(bytesOf((w) => writeColumnValue(w, col("Decimal(9, 2)"), "-12.34"))).toEqual([...Buffer.from([0x2e, 0xfb, 0xff, 0xff])]);
    const d64 = Buffer.alloc(8);
    d64.writeBigInt64LE(1234567n);
    expect(bytesOf((w) => writeColumnValue(w, col("Decimal(18, 4)"), 123.4567))).toEqual([...d64]);
    const big = -(10n ** 37n) - 7n;
    const d128 = Buffer.alloc(16);
    d128.writeBigUInt64LE(BigInt.asUintN(64, big));
    d128.writeBigInt64LE(big >> 64n, 8);
    expect(bytesOf((w) => writeColumnValue(w, col("Decimal(38, 10)"), "-1000000000000000000000000000.0000000007"))).toEqual([...d128]);
    expect(bytesOf((w) => writeColumnValue(w, col("Decimal(9, 2)"), "1e-2"))).toEqual([1, 0, 0, 0]);
    expect(() => bytesOf((w) => writeColumnValue(w, col("Decimal(9, 2)"), "1.234"))).toThrow(EncodeError);
    expect(() => bytesOf((w) => writeColumnValue(w, col("Decimal(9, 2)"), "10000000"))).toThrow(EncodeError);
  });

  it("refuses what a column cannot hold, leaving nothing of the row, and stays within its bound", () => {
    for (const bad of [(w: RowBinaryWriter) => w.uint8(256), (w: RowBinaryWriter) => w.int8(-129), (w: RowBinaryWriter) => w.uint32(1.5)]) {
      expect(() => bad(new RowBinaryWriter())).toThrow(EncodeError);
    }
    expect(() => bytesOf((w) => w.uint64(-1))).toThrow(EncodeError);
    expect(() => bytesOf((w) => writeColumnValue(w, { name: "s", type: "String", nullable: false }, null))).toThrow(EncodeError);
    const w = new RowBinaryWriter();
    encodeRowBinary("ml_equipment_health", { machine_id: "M1", computed_at: 1000, health_score: 50, risk_level: "low" }, w);
    const oneRow = w.byteLength;
    expect(() =>
      encodeRowBinary("ml_equipment_health", { machine_id: "M1", computed_at: 1000, health_score: 101, risk_level: "low" }, w),
    ).toThrow(EncodeError);
    expect(w.byteLength).toBe(oneRow);
    expect(w.finish().rowStarts).toEqual(Uint32Array.from([0, oneRow]));
    const small = new RowBinaryWriter(16, 64);
    expect(() => small.string("x".repeat(100))).toThrow(CapacityError);
  });
});

describe("table declarations - a row's RowBinary and JSONEachRow carry the same values", () => {
  it("every table: the RowBinary row read back by its columns equals the JSON line parsed", () => {
    const w = new RowBinaryWriter();
    for (const t of CLICKHOUSE_TABLES) {
      const row = TABLE_ROWS[t] as never;
      encodeRowBinary(t, row, w);
      const [back] = decodeRowBinary(t, w.finish().bytes);
      expect(back, t).toEqual(JSON.parse(encodeRow(t, row)));
      expect(Object.keys(back)).toEqual(TABLE_SCHEMAS[t].columns.map((c) => c.name));
    }
  });
});

/** Doubles of every magnitude, with the values the tables store as NULL. */
function statistic(r: SeededRandom): number {
  const u = r.next();
  if (u < 0.05) return Number.NaN;
  if (u < 0.07) return u < 0.06 ? Infinity : -Infinity;
  if (u < 0.09) return u < 0.08 ? 0 : -0;
  if (u < 0.1) return u < 0.095 ? 5e-324 : -1.7976931348623157e308;
  return (r.next() - 0.5) * 10 ** Math.floor(r.next() * 40 - 20);
}

/** Mostly good, sometimes a value a table's rules refuse. */
function sometimes(r: SeededRandom, good: number, bad: readonly number[], p = 0.02): number {
  return r.next() < p ? bad[Math.floor(r.next() * bad.length)] : good;
}

const KEYS = [["M-1", "temperature"], ["M-2", "pressure", "run"], ["M-3", "vibration"], ["M-4"]] as const;

/** A batch as an engine OutputChunk holds it, filled with kernel-like rows and the edge cases of each rule. */
function syntheticBatch(r: SeededRandom, n: number, analyses: readonly RecordAnalysis[], labelIds: readonly number[]): ScoreColumns {
  const outFields = analyses.map((a) => a.kernel.outFields);
  const b: ScoreColumns = {
    length: n,
    keyIds: new Uint32Array(n),
    times: new Float64Array(n),
    values: new Float64Array(n),
    positions: new Float64Array(n),
    labels: new Uint8Array(4 * n),
    outs: outFields.map((f) => new Float64Array(n * f)),
    outFields,
  };
  const view = new DataView(b.labels!.buffer);
  for (let i = 0; i < n; i++) {
    b.keyIds[i] = r.next() < 0.01 ? 3 : Math.floor(r.next() * 3);
    b.times[i] = sometimes(r, 1_700_000_000_000 + i * 7.25, [Number.NaN, -1, 2 ** 32 * 1000]);
    b.values[i] = sometimes(r, statistic(r) || 1.5, [Number.NaN, -Infinity]);
    b.positions[i] = sometimes(r, i, [1.5, -1, Number.NaN]);
    view.setUint32(4 * i, labelIds[Math.floor(r.next() * labelIds.length)], true);
    analyses.forEach((a, k) => fillRow(r, a, b.outs[k].subarray(i * outFields[k], (i + 1) * outFields[k])));
  }
  return b;
}

function fillRow(r: SeededRandom, a: RecordAnalysis, row: Float64Array): void {
  for (let k = 0; k < row.length; k++) row[k] = statistic(r);
  if (a.name === "rolling") {
    row[0] = sometimes(r, Math.floor(r.next() * 24), [Number.NaN, 20.5], 0.03);
    row[9] = r.next() < 0.1 ? 1 : 0;
  } else if (a.name === "spc") {
    row[4] = sometimes(r, Math.floor(r.next() * 9) - 4, [Number.NaN, 2.5, 200], 0.05);
    row[5] = Math.floor(r.next() * (r.next() < 0.02 ? 32 : 16));
    row[6] = sometimes(r, Math.floor(r.next() * 256), [-3, 261, 1024.5, Number.NaN], 0.05);
    row[9] = Math.floor(r.next() * 3);
    row[13] = Math.floor(r.next() * 3);
    row[14] = sometimes(r, r.next() < 0.2 ? 0 : 1 + Math.floor(r.next() * 5), [Number.NaN, 1.5, -1, Infinity]);
    // mr_mask: JUMP, NOISY, STUCK; now and then bits that are no rule, a negative or a fraction.
    row[15] = sometimes(r, Math.floor(r.next() * 8), [-3, 263, 4.5, Number.NaN, 2 ** 31 + 7], 0.05);
  } else {
    row[row.length - 1] = 0; // the model generation (observe sets it)
  }
}

interface Variant {
  name: string;
  analyses: RecordAnalysis[];
  layout: ScoreLayout;
  spc?: ReturnType<typeof spcAnalysis>;
  forest?: ReturnType<typeof iforestAnalysis>;
}

function variants(): Variant[] {
  const r = new SeededRandom(3);
  const values = new Float64Array(400 * 2);
  for (let i = 0; i < values.length; i++) values[i] = r.normal();
  const model = trainIsolationForest({ values, rows: 400, columns: 2, names: ["value", "mean"] }, { trees: 10, sampleSize: 64, seed: 3 });
  const rolling = () => rollingAnalysis({ window: { kind: "count", records: 16 }, alpha: 0.2, timeScale: 1000 });
  // Every key but M-1/temperature (on a budget, no moving-range rule) has JUMP and STUCK, not NOISY.
  const spc = (ewmaField: "ewma" | "spc_ewma") =>
    spcAnalysis({
      params: { ...DEFAULT_SPC_PARAMS, baselineN: 20 },
      ewmaField,
      rules: { ...TEXTBOOK_RULES, mr: 0b101 },
      budgetByKey: new Map([["M-1/temperature", 0.003]]),
    });
  const full = {
    rolling: rolling(),
    spc: spc("spc_ewma"),
    forest: iforestAnalysis({ model, features: ["value", "mean"], rollingIndex: 0 }),
  };
  const spcOnly = spc("ewma");
  const before = spc("ewma");
  const after = spc("ewma");
  return [
    {
      name: "rolling + spc + iforest",
      analyses: [full.rolling, full.spc, full.forest],
      layout: { rolling: { index: 0, minCount: 16 }, spc: { index: 1, ewmaField: "spc_ewma" }, iforest: { index: 2, features: 2 } },
      spc: full.spc,
      forest: full.forest,
    },
    { name: "spc alone", analyses: [spcOnly], layout: { spc: { index: 0, ewmaField: "ewma" } }, spc: spcOnly },
    {
      name: "rolling, then spc naming its EWMA ewma",
      analyses: [rolling(), after],
      layout: { rolling: { index: 0, minCount: 16 }, spc: { index: 1, ewmaField: "ewma" } },
      spc: after,
    },
    {
      name: "spc naming its EWMA ewma, then rolling",
      analyses: [before, rolling()],
      layout: { spc: { index: 0, ewmaField: "ewma" }, rolling: { index: 1, minCount: 16 } },
      spc: before,
    },
    { name: "rolling alone", analyses: [rolling()], layout: { rolling: { index: 0, minCount: 16 } } },
  ];
}

describe("column encoders - the rows Outputs.record writes, from the batch's columns", () => {
  it("ml_scores and ml_sensor_data: every column, every NULL rule, every refusal, over five analysis sets", () => {
    const labels = new RecordLabels();
    const labelIds = [
      0,
      labels.idOf({ sensor_unit: "°C", operating_mode: "idle", work_order_id: "WO-7" }),
      labels.idOf({ sensor_unit: "bar" }),
    ];
    const labelTable = labelIds.map((id) => (id === 0 ? undefined : labelNames(labels.get(id)!)));
    const keys = KEYS.map((parts) => keyNames(parts));
    for (const v of variants()) {
      const r = new SeededRandom(v.name.length);
      const n = 6000;
      const batch = syntheticBatch(r, n, v.analyses, labelIds);
      // What a worker sees: the kernels' rows before any observe (which the expected path runs on copies).
      const spcRules = KEYS.map((parts) => {
        const rules = v.spc?.rulesOf(parts.join("/"));
        return rules === undefined || rules === ALL_RULES ? undefined : rules;
      });
      const modelHash = v.forest === undefined ? undefined : encodeRowBinaryString(v.forest.activeHash);
      const scores = encodeScoreColumns(batch, { keys, layout: v.layout, spcRules, modelHash });
      const data = encodeSensorDataColumns(batch, { keys, labels: labelTable });
      const expected = Array.from({ length: n }, (_, i) => {
        const rows = v.analyses.map((_a, k) => batch.outs[k].slice(i * batch.outFields[k], (i + 1) * batch.outFields[k]));
        const parts = KEYS[batch.keyIds[i]];
        const labelId = new DataView(batch.labels!.buffer).getUint32(4 * i, true);
        const input = {
          key: parts.join("/"),
          parts,
          keyId: batch.keyIds[i],
          time: batch.times[i],
          value: batch.values[i],
          seq: batch.positions[i],
        };
        return outputsRows(v.analyses, rows, { ...input, label: labelId === 0 ? undefined : labels.get(labelId) });
      });
      const scoreDiffs = compareEncoding(
        "ml_scores",
        scores,
        expected.map((e) => e.scores),
      );
      const dataDiffs = compareEncoding(
        "ml_sensor_data",
        data,
        expected.map((e) => e.data),
      );
      expect(scoreDiffs, v.name).toEqual([]);
      expect(dataDiffs, v.name).toEqual([]);
      // The batch exercised the rules: refusals of several kinds, NULL and defined statistics.
      expect(new Set(scores.rejected.map((x) => x.error.field)).size, v.name).toBeGreaterThan(2);
      if (v.spc !== undefined) expect(movingRangeMasks(scores), v.name).toMatchObject({ noisy: 0, budgetKey: 0 });
      if (v.spc !== undefined) expect(movingRangeMasks(scores).jumpOrStuck, v.name).toBeGreaterThan(100);
    }
  });
});

/** Rows with a moving-range rule kept: JUMP or STUCK, NOISY (off for every key), any on M-1/temperature (none on). */
function movingRangeMasks(got: ReturnType<typeof encodeScoreColumns>): { jumpOrStuck: number; noisy: number; budgetKey: number } {
  const out = { jumpOrStuck: 0, noisy: 0, budgetKey: 0 };
  for (const row of decodeRowBinary("ml_scores", got.rows.bytes)) {
    const m = row.mr_mask as number;
    if ((m & 0b101) !== 0) out.jumpOrStuck++;
    if ((m & 0b010) !== 0) out.noisy++;
    if (m !== 0 && row.machine_id === "M-1" && row.sensor_type === "temperature") out.budgetKey++;
  }
  return out;
}

/** The encoding's rows and refusals against the expected ones (at most 10 differences). */
function compareEncoding(
  table: "ml_scores" | "ml_sensor_data",
  got: ReturnType<typeof encodeScoreColumns>,
  expected: readonly Expected[],
): string[] {
  const out: string[] = [];
  const rows = decodeRowBinary(table, got.rows.bytes);
  const refused = new Map(got.rejected.map((x) => [x.index, `${x.error.reason}: ${x.error.field}`]));
  const columns = TABLE_SCHEMAS[table].columns.map((c) => c.name);
  let at = 0;
  expected.forEach((e, i) => {
    if (out.length >= 10) return;
    if ("refused" in e) {
      if (refused.get(i) !== e.refused) out.push(`${table} record ${i}: expected refusal ${e.refused}, got ${refused.get(i) ?? "a row"}`);
      return;
    }
    if (refused.has(i)) {
      out.push(`${table} record ${i}: refused (${refused.get(i)}), expected a row`);
      return;
    }
    const diffs = rowDifferences(e.row, rows[at++], columns);
    if (diffs.length > 0) out.push(`${table} record ${i}: ${diffs.join("; ")}`);
  });
  if (out.length === 0 && at !== rows.length) out.push(`${table}: ${rows.length} rows written, ${at} expected`);
  return out;
}

describe("spill queue - RowBinary batches with their row offsets", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it("comes back whole after a reopen, beside JSONEachRow files, in order; a cut file is set aside", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lw-spill-rb-"));
    dirs.push(dir);
    const w = new RowBinaryWriter();
    for (let i = 0; i < 3; i++)
      encodeRowBinary("ml_equipment_health", { machine_id: `M${i}`, computed_at: 1000 * i, health_score: i, risk_level: "low" }, w);
    const rows = w.finish();
    const buffer = new EncodedRowBuffer(16, 1);
    buffer.push(rows, 0, 3);
    const packed = buffer.pack();
    const q = new SpillQueue(dir, 1 << 20);
    await q.append("ml_equipment_health", packed.data, 3, "RowBinary", packed.starts);
    await q.append("ml_scores", Buffer.from('{"a":1}\n'), 1);
    const reopened = new SpillQueue(dir, 1 << 20);
    expect(readdirSync(dir).sort()).toEqual(["0000000000000001.ml_equipment_health.rowbinary", "0000000000000002.ml_scores.ndjson"]);
    const first = reopened.peek()!;
    expect(first.format).toBe("RowBinary");
    const back = await reopened.read(first);
    expect([...back.starts]).toEqual([...rows.rowStarts]);
    expect(decodeRowBinary("ml_equipment_health", back.data).map((x) => x.machine_id)).toEqual(["M0", "M1", "M2"]);
    await reopened.shift(first);
    expect(reopened.peek()!.format).toBe("JSONEachRow");

    writeFileSync(join(dir, "0000000000000003.ml_scores.rowbinary"), Buffer.from("LWRB\u0001\u0000\u0000\u0000"));
    const third = new SpillQueue(dir, 1 << 20);
    await third.shift(third.peek()!);
    await expect(third.read(third.peek()!)).rejects.toBeInstanceOf(SpillFileError);
  });
});
