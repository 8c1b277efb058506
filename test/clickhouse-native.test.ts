/**
 * Native blocks of ml_sensor_data and ml_scores (connectors/clickhouse/native-columns.ts) against
 * the RowBinary encoders of the same batches (reading-columns.ts): the block's rows, turned into
 * RowBinary cell by cell, are the RowBinary encoder's bytes exactly, and the refused rows are the
 * same with the same EncodeError — on random and adversarial batches (NaN, ±Infinity, −0, windows
 * not full, SPC without limits, rule masks cut to a key's rules, labels absent, keys by mode,
 * rows refused). On a real clickhouse-server (18.16 from Debian here): every type's edge values
 * in Native blocks are stored as sent; the Native path's rows are the RowBinary path's, byte for
 * byte, counts exact; a Native batch spilled while ClickHouse is down, and picked up by a new
 * sink, lands when it returns; a table that differs from the declaration gets the rows as
 * RowBinary (its refusals, dead letters), never a Native block it would misread or crash on; an
 * ml_scores made before mr_mask refuses the rows when the sink may not create tables, and gets the
 * column added by one that may (schema.ts ADDED_COLUMNS), then takes them.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, SeededRandom } from "../engine/core/mod.js";
import { ROLLING_OUT_FIELDS } from "../operators/rolling/rolling.js";
import { SPC_COL, SPC_OUT_FIELDS } from "../operators/spc/layout.js";
import { type NativeBlock, nativeLayout, nativeToRowBinary, NativeWriter, sliceNativeBlock } from "../connectors/clickhouse/native.js";
import {
  appendScoreNative,
  appendSensorDataNative,
  encodeScoreNative,
  encodeSensorDataNative,
  SharedReadingCells,
} from "../connectors/clickhouse/native-columns.js";
import {
  type ColumnEncoding,
  encodeScoreColumns,
  encodeSensorDataColumns,
  type KeyNames,
  keyNames,
  type LabelNames,
  labelNames,
  type ScoreColumns,
  type ScoreLayout,
} from "../connectors/clickhouse/reading-columns.js";
import { encodeRowBinaryString, RowBinaryWriter } from "../connectors/clickhouse/row-binary.js";
import { auditColumns } from "../connectors/clickhouse/reading-columns.js";
import { createSchema, decodeRowBinary, TABLE_SCHEMAS } from "../connectors/clickhouse/schema.js";
import type { NativeEncoding } from "../connectors/clickhouse/native-columns.js";
import { type ClickHouseDeadLetter, ClickHouseSink } from "../connectors/clickhouse/sink.js";
import { ClickHouseError, EncodeError } from "../connectors/errors.js";
import { type ClickHouseServer, startClickHouseServer } from "../connectors/local/clickhouse-server.js";
import { serverAvailable } from "../connectors/local/nats-server.js";
import { printFigures } from "./kit/figures.js";
import { postBody, selectBytes } from "./kit/clickhouse-http.js";

const ODD = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 0, 5e-324, 1.7976931348623157e308, -1e300, 0.1];

/** A double: mostly ordinary, now and then one of {@link ODD} (with probability `odd`). */
function value(r: SeededRandom, odd: number): number {
  return r.next() < odd ? ODD[Math.floor(r.next() * ODD.length)] : (r.next() - 0.5) * 10 ** Math.floor(r.next() * 6 - 2);
}

function pick<T>(r: SeededRandom, list: readonly T[]): T {
  return list[Math.floor(r.next() * list.length)];
}

/** Keys: plain, keyed by operating mode, and (when `bad`) one without a sensor type. */
function keyTable(bad: boolean): KeyNames[] {
  const keys = [
    keyNames(["M-1", "temperature"]),
    keyNames(["M-2", "pressure"]),
    keyNames(["M-3", "vibration", "setup"]),
    keyNames(["Mäschine-4", "温度"]),
  ];
  if (bad) keys.push(keyNames(["M-5"]));
  return keys;
}

const LABELS: (LabelNames | undefined)[] = [
  undefined,
  labelNames(["°C", "run", "WO-1"]),
  labelNames([undefined, "idle", undefined]),
  labelNames(["bar", undefined, "WO-é"]),
];

interface Adversity {
  /** Probability of an odd double in a statistic. */
  odd: number;
  /** Probability of a record whose row a table refuses (time, value, seq, count, zone, mask, version). */
  refuse: number;
  bad: boolean;
  labels: boolean;
}

/** A batch every row of which the tables take: no adversity, every value finite. */
function validBatch(seed: number, n: number, keys: number, seqFrom: number): ScoreColumns {
  const b = batchOf(new SeededRandom(seed), n, { odd: 0, refuse: 0, bad: false, labels: false }, keys, 1, seqFrom);
  b.values.forEach((v, i) => {
    if (!Number.isFinite(v)) b.values[i] = i;
  });
  return b;
}

/** A batch of `n` scored readings with outputs of rolling, SPC and an isolation forest of `features` features. */
function batchOf(r: SeededRandom, n: number, a: Adversity, keys: number, features: number, seqFrom = 0): ScoreColumns {
  const rolling = new Float64Array(n * ROLLING_OUT_FIELDS);
  const spc = new Float64Array(n * SPC_OUT_FIELDS);
  const forest = new Float64Array(n * (features + 2));
  const batch: ScoreColumns = {
    length: n,
    keyIds: new Uint32Array(n),
    times: new Float64Array(n),
    values: new Float64Array(n),
    positions: new Float64Array(n),
    labels: a.labels ? new Uint8Array(4 * n) : undefined,
    outs: [rolling, spc, forest],
    outFields: [ROLLING_OUT_FIELDS, SPC_OUT_FIELDS, features + 2],
  };
  const refuse = () => r.next() < a.refuse;
  for (let i = 0; i < n; i++) {
    batch.keyIds[i] = Math.floor(r.next() * keys);
    batch.times[i] = refuse() ? pick(r, [Number.NaN, -1, 2 ** 32 * 1000, Number.POSITIVE_INFINITY]) : 1_700_000_000_000 + i * 7.25;
    batch.values[i] = refuse() ? pick(r, [Number.NaN, Number.NEGATIVE_INFINITY]) : value(r, 0.05);
    batch.positions[i] = refuse() ? pick(r, [-1, 1.5, Number.NaN, 2 ** 53]) : seqFrom + i * 3;
    if (batch.labels !== undefined) batch.labels[4 * i] = Math.floor(r.next() * LABELS.length);
    for (let k = 0; k < ROLLING_OUT_FIELDS; k++) rolling[i * ROLLING_OUT_FIELDS + k] = value(r, a.odd);
    // count: around the window (16), now and then not a UInt32.
    rolling[i * ROLLING_OUT_FIELDS] = refuse() ? pick(r, [-1, 1.5, 2 ** 32]) : r.next() < a.odd ? Number.NaN : Math.floor(r.next() * 32);
    for (let k = 0; k < SPC_OUT_FIELDS; k++) spc[i * SPC_OUT_FIELDS + k] = value(r, a.odd);
    const s = i * SPC_OUT_FIELDS;
    spc[s + SPC_COL.limits_version] = refuse() ? pick(r, [-1, 1.5, 2 ** 32, Number.POSITIVE_INFINITY]) : pick(r, [0, 1, 2, 3, Number.NaN]);
    spc[s + SPC_COL.cl] = r.next() < 0.2 ? Number.NaN : value(r, a.odd);
    spc[s + SPC_COL.zone] = refuse() ? pick(r, [200, 1.5]) : pick(r, [-4, -1, 0, 2, 4, Number.NaN]);
    spc[s + SPC_COL.we_mask] = refuse() ? 0x1f : pick(r, [0, 1, 5, 15, Number.NaN, 2.5]);
    spc[s + SPC_COL.nelson_mask] = pick(r, [0, 3, 255, 256 + 7, Number.NaN, -3]);
    // Moving-range bits beyond STUCK (bit 2) are no rule: kept out, as the NDJSON `mr` names leave them.
    spc[s + SPC_COL.mr_mask] = pick(r, [0, 1, 2, 4, 5, 7, 255, 256 + 6, Number.NaN, -3, 2.5]);
    spc[s + SPC_COL.cusum_alarm] = pick(r, [0, 1, 2, Number.NaN]);
    spc[s + SPC_COL.ewma_alarm] = pick(r, [0, 1, Number.NaN]);
    for (let k = 0; k < features + 2; k++) forest[i * (features + 2) + k] = value(r, a.odd);
  }
  return batch;
}

const LAYOUTS: Array<{ name: string; layout: ScoreLayout }> = [
  {
    name: "rolling + spc + iforest",
    layout: { rolling: { index: 0, minCount: 16 }, spc: { index: 1, ewmaField: "spc_ewma" }, iforest: { index: 2, features: 2 } },
  },
  { name: "rolling then spc writing ewma", layout: { rolling: { index: 0, minCount: 16 }, spc: { index: 1, ewmaField: "ewma" } } },
  { name: "spc before rolling, writing ewma", layout: { rolling: { index: 1, minCount: 16 }, spc: { index: 0, ewmaField: "ewma" } } },
  { name: "spc alone", layout: { spc: { index: 1, ewmaField: "spc_ewma" } } },
  { name: "spc alone writing ewma", layout: { spc: { index: 1, ewmaField: "ewma" } } },
  { name: "rolling alone", layout: { rolling: { index: 0, minCount: 16 } } },
  { name: "iforest alone", layout: { iforest: { index: 2, features: 2 } } },
  { name: "none", layout: {} },
];

/** The two encodings agree: the same rows to the byte, the same refusals. */
function expectSame(native: NativeEncoding, rowBinary: ColumnEncoding, table: "ml_scores" | "ml_sensor_data"): void {
  const plain = (x: ColumnEncoding["rejected"]) =>
    x.map((r) => ({ index: r.index, line: r.line, reason: r.error.reason, field: r.error.field, message: r.error.message }));
  expect(plain(native.rejected)).toEqual(plain(rowBinary.rejected));
  const rows = rowBinary.rows.rowStarts.length - 1;
  expect(native.block.rows).toBe(rows);
  if (rows === 0) {
    expect(native.block.bytes.length).toBe(0);
    return;
  }
  const layout = nativeLayout(native.block.bytes, TABLE_SCHEMAS[table].columns);
  expect(typeof layout === "string" ? layout : layout.rows).toBe(rows);
  const back = nativeToRowBinary(native.block.bytes);
  expect(Buffer.from(back.bytes).equals(Buffer.from(rowBinary.rows.bytes))).toBe(true);
  expect(Array.from(back.rowStarts)).toEqual(Array.from(rowBinary.rows.rowStarts));
}

describe("Native blocks from columns - the RowBinary encoders' rows, column by column", () => {
  const hash = encodeRowBinaryString("forest-hash-ä");
  const AUDIT = auditColumns("k".repeat(64), "c".repeat(64));
  const nativeWriter = new NativeWriter(1024);
  const rowWriter = new RowBinaryWriter(1024);

  it("ml_scores: random and adversarial batches under every layout, key rules cut masks, reused writers", () => {
    const r = new SeededRandom(11);
    let refused = 0;
    let rows = 0;
    const mr = { fired: 0, noisyOfRuledKeys: 0, ruledKeyRows: 0, beyondStep: 0 };
    for (let round = 0; round < 48; round++) {
      const { layout } = LAYOUTS[round % LAYOUTS.length];
      const a: Adversity = {
        odd: [0, 0.1, 0.5][round % 3],
        refuse: [0, 0.02, 0.3][(round >> 2) % 3],
        bad: round % 5 === 0,
        labels: round % 2 === 0,
      };
      const keys = keyTable(a.bad);
      const batch = batchOf(r, 1 + Math.floor(r.next() * 700), a, keys.length, 2);
      if (round % LAYOUTS.length === 2) batch.outs = [batch.outs[1], batch.outs[0], batch.outs[2]];
      const spcRules =
        round % 3 === 0 ? undefined : keys.map((_k, i) => (i % 2 === 0 ? { we: 0b0101, nelson: 0x81, mr: 0b101 } : undefined));
      // Every other round is audited: the run's two hashes on every row, in both encoders.
      const audit = round % 2 === 1 ? AUDIT : undefined;
      const o = { keys, layout, spcRules, modelHash: hash, audit };
      const rowBinary = encodeScoreColumns(batch, { ...o, writer: rowWriter });
      const native = encodeScoreNative(batch, { ...o, writer: nativeWriter });
      expectSame(native, rowBinary, "ml_scores");
      // mr_mask holds JUMP, NOISY, STUCK, STEP only (bits 0–3), and the even keys' rules (0b101) leave NOISY and STEP out.
      for (const row of decodeRowBinary("ml_scores", rowBinary.rows.bytes)) {
        expect([row.kernel_hash, row.config_hash]).toEqual(audit === undefined ? ["", ""] : ["k".repeat(64), "c".repeat(64)]);
        const m = row.mr_mask as number;
        const ruled = spcRules !== undefined && (row.machine_id === "M-1" || row.machine_id === "M-3");
        if (m > 0) mr.fired++;
        if (m > 15) mr.beyondStep++;
        if (ruled) mr.ruledKeyRows++;
        if (ruled && (m & 0b1010) !== 0) mr.noisyOfRuledKeys++;
      }
      refused += rowBinary.rejected.length;
      rows += native.block.rows;
    }
    expect(refused).toBeGreaterThan(100);
    expect(rows).toBeGreaterThan(5000);
    expect(mr).toMatchObject({ noisyOfRuledKeys: 0, beyondStep: 0 });
    expect(mr.fired).toBeGreaterThan(1000);
    expect(mr.ruledKeyRows).toBeGreaterThan(1000);
  });

  it("ml_sensor_data: random and adversarial batches, labels present and absent, keys by mode", () => {
    const r = new SeededRandom(12);
    for (let round = 0; round < 24; round++) {
      const a: Adversity = { odd: 0.1, refuse: [0, 0.05, 0.5][round % 3], bad: round % 4 === 0, labels: round % 2 === 1 };
      const keys = keyTable(a.bad);
      const batch = batchOf(r, 1 + Math.floor(r.next() * 500), a, keys.length, 1);
      const rowBinary = encodeSensorDataColumns(batch, { keys, labels: LABELS, writer: rowWriter });
      const native = encodeSensorDataNative(batch, { keys, labels: LABELS, writer: nativeWriter });
      expectSame(native, rowBinary, "ml_sensor_data");
    }
  });

  it("the score block copying the sensor-data block's shared cells (SharedReadingCells) is the block encoded alone, refusals in either table or none", () => {
    const r = new SeededRandom(15);
    const shared = new SharedReadingCells();
    const ways = {
      sharedData: new NativeWriter(1024),
      sharedScores: new NativeWriter(1024),
      data: new NativeWriter(1024),
      scores: new NativeWriter(1024),
    };
    let copied = 0;
    for (let round = 0; round < 60; round++) {
      // Rounds without refusals, where the cells are copied; others where one table or both refuse rows.
      const a: Adversity = {
        odd: [0, 0.1][round % 2],
        refuse: [0, 0, 0.01, 0.2][round % 4],
        bad: round % 7 === 3,
        labels: round % 3 !== 0,
      };
      const keys = keyTable(a.bad);
      const batch = batchOf(r, 1 + Math.floor(r.next() * 400), a, keys.length, 2);
      // Half the rounds with every value finite: every row kept, unless a key is bad.
      if (round % 4 < 2) batch.values.forEach((v, i) => (batch.values[i] = Number.isFinite(v) ? v : i));
      const { layout } = LAYOUTS[round % LAYOUTS.length];
      const o = { keys, layout, modelHash: hash, audit: round % 2 === 0 ? AUDIT : undefined };
      const d1 = appendSensorDataNative(batch, { keys, labels: LABELS, writer: ways.sharedData, shared });
      if (shared.batch === batch) copied++;
      const s1 = appendScoreNative(batch, { ...o, writer: ways.sharedScores, shared });
      const d2 = appendSensorDataNative(batch, { keys, labels: LABELS, writer: ways.data });
      const s2 = appendScoreNative(batch, { ...o, writer: ways.scores });
      const plain = (x: typeof d1) => x.map((y) => [y.index, y.error.field]);
      expect([plain(d1), plain(s1)]).toEqual([plain(d2), plain(s2)]);
    }
    for (const [a, b] of [
      [ways.sharedData, ways.data],
      [ways.sharedScores, ways.scores],
    ])
      expect(Buffer.from(a.held()).equals(Buffer.from(b.held()))).toBe(true);
    expect(nativeLayout(ways.sharedScores.held(), TABLE_SCHEMAS.ml_scores.columns)).not.toBeTypeOf("string");
    expect(copied).toBeGreaterThan(10);
    expect(copied).toBeLessThan(50);
  });

  it("a batch whose every row is refused is an empty block and the refusals; an empty batch nothing", () => {
    const r = new SeededRandom(13);
    const batch = batchOf(r, 20, { odd: 0, refuse: 0, bad: false, labels: false }, 4, 2);
    batch.times.fill(Number.NaN);
    const keys = keyTable(false);
    const native = encodeScoreNative(batch, { keys, layout: LAYOUTS[0].layout, modelHash: hash });
    expect(native.block).toEqual({ format: "Native", bytes: new Uint8Array(0), rows: 0 });
    expect(native.rejected.map((x) => x.error.reason)).toEqual(new Array(20).fill("bad_timestamp"));
    const empty = encodeSensorDataNative({ ...batch, length: 0 }, { keys });
    expect(empty).toEqual({ block: { format: "Native", bytes: new Uint8Array(0), rows: 0 }, rejected: [] });
  });

  it("a key id without names is a bug, thrown as by the RowBinary encoders", () => {
    const r = new SeededRandom(14);
    const batch = batchOf(r, 5, { odd: 0, refuse: 0, bad: false, labels: false }, 9, 2);
    batch.keyIds[3] = 42;
    expect(() => encodeSensorDataNative(batch, { keys: keyTable(false) })).toThrow(RangeError);
  });
});

describe("Native layout - blocks checked against the table's columns", () => {
  const columns = TABLE_SCHEMAS.ml_sensor_data.columns;
  const r = new SeededRandom(15);
  const batch = batchOf(r, 50, { odd: 0, refuse: 0, bad: false, labels: true }, 4, 1);
  const block = encodeSensorDataNative(batch, { keys: keyTable(false), labels: LABELS }).block;

  it("finds each block of a body of several, and their rows", () => {
    const body = Buffer.concat([block.bytes, block.bytes, block.bytes]);
    const layout = nativeLayout(body, columns);
    expect(typeof layout).toBe("object");
    if (typeof layout === "string") return;
    const n = block.rows;
    expect(n).toBeGreaterThan(40);
    expect(Array.from(layout.blockRows)).toEqual([n, n, n]);
    expect(Array.from(layout.starts)).toEqual([0, block.bytes.length, 2 * block.bytes.length, 3 * block.bytes.length]);
    expect(nativeToRowBinary(body).rowStarts.length - 1).toBe(3 * n);
  });

  it("a block cut at any rows is those rows (Strings, Nullables, Arrays' offsets counted from the cut)", () => {
    const whole = nativeToRowBinary(block.bytes);
    const rowsOf = (rb: { bytes: Uint8Array; rowStarts: Uint32Array }, from: number, to: number) =>
      Buffer.from(rb.bytes.subarray(rb.rowStarts[from], rb.rowStarts[to]));
    for (const [from, to] of [
      [0, 1],
      [0, block.rows - 1],
      [1, block.rows],
      [7, 23],
    ]) {
      const part = sliceNativeBlock(block.bytes, from, to);
      expect(nativeLayout(part, columns)).toMatchObject({ rows: to - from });
      expect(Buffer.from(nativeToRowBinary(part).bytes).equals(rowsOf(whole, from, to))).toBe(true);
    }
    // Array(String): 3 rows of 0, 2 and 1 elements.
    const w = new NativeWriter(64);
    w.begin(1, 3);
    w.column("a", "Array(String)");
    w.uint64s(Float64Array.from([0, 2, 3]), 3);
    for (const x of ["p", "qé", "r"]) w.raw(encodeRowBinaryString(x));
    const arrays = w.finish().bytes;
    const arrayRows = nativeToRowBinary(arrays);
    expect(Array.from(arrayRows.bytes)).toEqual([0, 2, 1, 0x70, 3, 0x71, 0xc3, 0xa9, 1, 1, 0x72]);
    expect(Buffer.from(nativeToRowBinary(sliceNativeBlock(arrays, 1, 3)).bytes).equals(rowsOf(arrayRows, 1, 3))).toBe(true);
    expect(() => sliceNativeBlock(arrays, 2, 2)).toThrow(RangeError);
  });

  it("refuses a cut block, trailing bytes, another table's block, a renamed or retyped column", () => {
    expect(nativeLayout(block.bytes.subarray(0, block.bytes.length - 1), columns)).toMatch(/bytes wanted|past the end/);
    expect(nativeLayout(Buffer.concat([block.bytes, Buffer.from([1])]), columns)).toMatch(/block 1/);
    expect(nativeLayout(block.bytes, TABLE_SCHEMAS.ml_scores.columns)).toMatch(/columns where the table has/);
    const renamed = Buffer.from(block.bytes);
    renamed.set(Buffer.from("n"), renamed.indexOf("machine_id"));
    expect(nativeLayout(renamed, columns)).toMatch(/"nachine_id"/);
    const retyped = Buffer.from(block.bytes);
    retyped.set(Buffer.from("UInt16"), retyped.indexOf("UInt64"));
    expect(nativeLayout(retyped, columns)).toMatch(/"timestamp_ms" UInt16 where the table has timestamp_ms UInt64/);
    expect(nativeLayout(new Uint8Array(0), columns)).toBe("no block");
  });
});

const EDGE_DOUBLES = [
  -0,
  0,
  5e-324,
  -5e-324,
  2.2250738585072014e-308,
  1.7976931348623157e308,
  -1.7976931348623157e308,
  0.1 + 0.2,
  2 ** 53 + 2,
];
const EDGE_STRINGS = [
  "",
  "a",
  "naïve café",
  "日本語テキスト",
  "\u{1F600}",
  "tab\tnew\nline\0nul",
  "x".repeat(127),
  "y".repeat(128),
  "€".repeat(70_000),
];
const EDGE_TIMES = [0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 1_700_000_000];

/** Two blocks of every type the Native writer writes, with their edge values (row i has i in `i`). */
function edgeBlocks(r: SeededRandom, rows: number): Uint8Array {
  const w = new NativeWriter(1024);
  for (const [from, to] of [
    [0, rows >> 1],
    [rows >> 1, rows],
  ]) {
    const n = to - from;
    const at = (i: number) => from + i;
    w.begin(10, n);
    w.column("i", "UInt32");
    w.uint32s(
      Uint32Array.from({ length: n }, (_x, i) => at(i)),
      n,
    );
    w.column("f", "Float64");
    w.float64s(
      Float64Array.from({ length: n }, (_x, i) => (at(i) < EDGE_DOUBLES.length ? EDGE_DOUBLES[at(i)] : value(r, 0))),
      n,
    );
    w.column("n", "Nullable(Float64)");
    w.uint8s(
      Uint8Array.from({ length: n }, (_x, i) => (at(i) % 3 === 0 ? 1 : 0)),
      n,
    );
    w.float64s(
      Float64Array.from({ length: n }, (_x, i) => (at(i) % 3 === 0 ? 0 : EDGE_DOUBLES[at(i) % EDGE_DOUBLES.length])),
      n,
    );
    w.column("s", "String");
    for (let i = 0; i < n; i++) w.raw(encodeRowBinaryString(EDGE_STRINGS[at(i) % EDGE_STRINGS.length]));
    w.column("dt", "DateTime");
    w.uint32s(
      Uint32Array.from({ length: n }, (_x, i) => EDGE_TIMES[at(i) % EDGE_TIMES.length]),
      n,
    );
    w.column("d", "Date");
    const days = Uint16Array.from({ length: n }, (_x, i) => [0, 1, 19_000, 65_535][at(i) % 4]);
    w.uint8s(new Uint8Array(days.buffer), 2 * n);
    w.column("u8", "UInt8");
    w.uint8s(
      Uint8Array.from({ length: n }, (_x, i) => (at(i) % 2) * 255),
      n,
    );
    w.column("u64", "UInt64");
    w.uint64s(
      Float64Array.from({ length: n }, (_x, i) => [0, Number.MAX_SAFE_INTEGER, 2 ** 32][at(i) % 3]),
      n,
    );
    w.column("z", "Nullable(Int8)");
    w.uint8s(
      Uint8Array.from({ length: n }, (_x, i) => (at(i) % 4 === 0 ? 1 : 0)),
      n,
    );
    w.uint8s(
      Uint8Array.from({ length: n }, (_x, i) => [0, -128, 127, -4][at(i) % 4] & 0xff),
      n,
    );
    w.column("c", "Nullable(UInt32)");
    w.uint8s(
      Uint8Array.from({ length: n }, (_x, i) => (at(i) % 5 === 0 ? 1 : 0)),
      n,
    );
    w.uint32s(
      Uint32Array.from({ length: n }, (_x, i) => (at(i) % 5 === 0 ? 0 : [1, 2 ** 32 - 1][at(i) % 2])),
      n,
    );
  }
  return w.finish().bytes;
}

/** Batches of readings with their two tables' rows encoded both ways (rows refused now and then, a few times at DateTime's edges). */
function bothWays(r: SeededRandom, batches: number): Array<{ rowBinary: ColumnEncoding[]; native: NativeEncoding[] }> {
  const keys = keyTable(false);
  const hash = encodeRowBinaryString("forest-hash-ä");
  const out: Array<{ rowBinary: ColumnEncoding[]; native: NativeEncoding[] }> = [];
  for (let k = 0; k < batches; k++) {
    const batch = batchOf(r, 800, { odd: 0.1, refuse: 0.01, bad: false, labels: true }, keys.length, 2, k * 10_000);
    if (k === 0) {
      batch.times[0] = 0;
      batch.times[1] = 2 ** 32 * 1000 - 0.5;
    }
    const o = { keys, layout: LAYOUTS[k % LAYOUTS.length].layout, modelHash: hash };
    out.push({
      rowBinary: [encodeSensorDataColumns(batch, { keys, labels: LABELS }), encodeScoreColumns(batch, o)],
      native: [encodeSensorDataNative(batch, { keys, labels: LABELS }), encodeScoreNative(batch, o)],
    });
  }
  return out;
}

describe.skipIf(!serverAvailable("clickhouse-server"))("Native - real clickhouse-server", () => {
  let server: ClickHouseServer;
  const dirs: string[] = [];
  const spillDir = () => {
    const d = mkdtempSync(join(tmpdir(), "lw-spill-native-"));
    dirs.push(d);
    return d;
  };
  const count = async (sql: string) => Number((await server.query(sql)).trim());

  beforeAll(async () => {
    server = await startClickHouseServer();
  });
  afterAll(async () => {
    await server?.dispose();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("every type's edge values, in two blocks of one body, are stored as sent: doubles bit for bit, NULLs, strings, DateTime to its last second", async () => {
    await server.query("CREATE DATABASE IF NOT EXISTS edge");
    const columns =
      "i UInt32, f Float64, n Nullable(Float64), s String, dt DateTime, d Date, u8 UInt8, u64 UInt64, z Nullable(Int8), c Nullable(UInt32)";
    await server.query(`CREATE TABLE edge.n (${columns}) ENGINE = MergeTree ORDER BY i`);
    const body = edgeBlocks(new SeededRandom(16), 400);
    const names = columns.split(", ").map((c) => c.split(" ")[0]);
    await postBody(server, `INSERT INTO edge.n (${names.join(", ")}) FORMAT Native`, body);
    // The server's rows, as RowBinary, are the blocks' cells as RowBinary: the same bytes.
    const stored = await selectBytes(server, `SELECT ${names.join(", ")} FROM edge.n ORDER BY i FORMAT RowBinary`);
    expect(stored.length).toBeGreaterThan(210_000);
    expect(stored.equals(Buffer.from(nativeToRowBinary(body).bytes))).toBe(true);
  });

  it("the Native path's rows are the RowBinary path's, byte for byte; counts exact", async () => {
    const batches = bothWays(new SeededRandom(17), 12);
    const sinks = ["rb", "nat"].map(
      (database) => new ClickHouseSink({ url: server.url, database, spillDir: spillDir(), flushIntervalMs: 50, batchRowsMax: 3000 }),
    );
    const tables = ["ml_sensor_data", "ml_scores"] as const;
    const started = performance.now();
    await Promise.all(
      batches.flatMap((b) => tables.map((t, k) => sinks[0].insertEncoded(t, b.rowBinary[k].rows, b.rowBinary[k].rejected))),
    );
    const rowBinarySeconds = (performance.now() - started) / 1000;
    await Promise.all(batches.flatMap((b) => tables.map((t, k) => sinks[1].insertEncoded(t, b.native[k].block, b.native[k].rejected))));
    const nativeSeconds = (performance.now() - started) / 1000 - rowBinarySeconds;
    const [rb, nat] = sinks.map((x) => x.metrics());
    await Promise.all(sinks.map((x) => x.close()));
    const rows = batches.reduce((n, b) => n + b.native[0].block.rows + b.native[1].block.rows, 0);
    const refused = batches.reduce((n, b) => n + b.native[0].rejected.length + b.native[1].rejected.length, 0);
    printFigures(
      `${rows} rows (${refused} refused) both ways: RowBinary ${rowBinarySeconds.toFixed(2)} s, Native ${nativeSeconds.toFixed(2)} s, ${nat.batches} Native inserts`,
    );
    expect(refused).toBeGreaterThan(0);
    for (const m of [rb, nat])
      expect(m).toMatchObject({
        rowsWritten: rows + refused,
        rowsInserted: rows,
        rowsDeadLettered: refused,
        rowsSpilled: 0,
        nativeAsRowBinary: 0,
      });
    // Blocks are cut where a batch is full: the same inserts as RowBinary's.
    expect(nat.batches).toBe(rb.batches);

    for (const [k, table] of tables.entries()) {
      const select = (db: string) =>
        `SELECT ${TABLE_SCHEMAS[table].columns.map((c) => c.name).join(", ")} FROM ${db}.${table} ORDER BY seq FORMAT RowBinary`;
      const [fromRowBinary, fromNative] = await Promise.all([selectBytes(server, select("rb")), selectBytes(server, select("nat"))]);
      expect(fromNative.equals(fromRowBinary), table).toBe(true);
      // And both are what was sent, row by row in seq order.
      const sent = batches.flatMap((b) => {
        const { bytes, rowStarts } = b.rowBinary[k].rows;
        return Array.from({ length: rowStarts.length - 1 }, (_x, i) => Buffer.from(bytes.subarray(rowStarts[i], rowStarts[i + 1])));
      });
      expect(fromNative.equals(Buffer.concat(sent)), table).toBe(true);
      expect(await count(`SELECT count() FROM nat.${table} FINAL`)).toBe(sent.length);
    }
    expect(await count("SELECT count() FROM nat.ml_scores WHERE timestamp = 4294967295 OR timestamp = 0")).toBe(2);
    expect(await count("SELECT count() FROM nat.ml_scores WHERE mean IS NULL AND cl IS NOT NULL")).toBeGreaterThan(0);
    expect(
      await count(
        "SELECT count() FROM nat.ml_sensor_data WHERE machine_id = 'Mäschine-4' AND sensor_type = '温度' AND work_order_id = 'WO-é'",
      ),
    ).toBeGreaterThan(0);
  }, 120_000);

  it("spill - Native batches written while ClickHouse is down, then left by a closed sink, land from a new sink when it returns, every row once", async () => {
    await createSchema((sql) => server.query(sql), "outage");
    const dir = spillDir();
    const options = { url: server.url, database: "outage", spillDir: dir, flushIntervalMs: 20, backoffBaseMs: 20, backoffMaxMs: 200 };
    const first = new ClickHouseSink(options);
    await server.stop();
    const batches = bothWays(new SeededRandom(18), 6);
    let rows = 0;
    for (const [i, b] of batches.entries()) {
      // One RowBinary batch among the Native ones: the queue keeps their order across formats.
      if (i === 3) await first.insertEncoded("ml_sensor_data", b.rowBinary[0].rows);
      else await first.insertEncoded("ml_sensor_data", b.native[0].block);
      rows += b.native[0].block.rows;
    }
    const away = first.metrics();
    await first.close();
    const files = readdirSync(dir).sort();
    await server.start();
    const second = new ClickHouseSink(options);
    await second.drained(60_000);
    const after = second.metrics();
    await second.close();
    expect(away).toMatchObject({ available: false, rowsSpilled: rows, rowsInserted: 0 });
    expect(files.filter((f) => f.endsWith(".native")).length).toBeGreaterThan(0);
    expect(files.filter((f) => f.endsWith(".rowbinary")).length).toBe(1);
    expect(after).toMatchObject({
      rowsDrained: rows,
      rowsInserted: rows,
      spillFiles: 0,
      rowsDeadLettered: 0,
      spillFilesDamaged: 0,
      nativeAsRowBinary: 0,
    });
    expect(readdirSync(dir)).toEqual([]);
    const [all, final, seqs] = (
      await server.query(
        "SELECT count(), (SELECT count() FROM outage.ml_sensor_data FINAL), uniqExact(seq) FROM outage.ml_sensor_data FORMAT TSV",
      )
    )
      .trim()
      .split("\t")
      .map(Number);
    expect({ all, final, seqs }).toEqual({ all: rows, final: rows, seqs: rows });
  }, 120_000);

  it("an ml_scores made before mr_mask: a sink that may not create tables has the rows refused by name, whole; one that may adds the column and they land, older rows reading mr_mask 0", async () => {
    await server.query("CREATE DATABASE IF NOT EXISTS before_mr");
    const create = TABLE_SCHEMAS.ml_scores.create("before_mr");
    const previous = create.replace("  mr_mask UInt8,\n", "");
    expect(previous).not.toBe(create);
    await server.query(previous);
    await server.query(
      "INSERT INTO before_mr.ml_scores (machine_id, sensor_type, timestamp, timestamp_ms, seq, value, nelson_mask, version) VALUES ('M-0', 't', 1, 1000, 0, 1, 3, 0)",
    );
    const keys = keyTable(false);
    const batch = batchOf(new SeededRandom(21), 300, { odd: 0, refuse: 0, bad: false, labels: false }, keys.length, 2, 1);
    const encoded = encodeScoreNative(batch, { keys, layout: LAYOUTS[0].layout, modelHash: encodeRowBinaryString("h") });
    const letters: ClickHouseDeadLetter[] = [];
    const options = {
      url: server.url,
      database: "before_mr",
      flushIntervalMs: 20,
      onDeadLetter: (l: ClickHouseDeadLetter) => letters.push(l),
    };
    const before = new ClickHouseSink({ ...options, spillDir: spillDir(), createTables: false });
    const error = await before.insertEncoded("ml_scores", encoded.block, encoded.rejected).then(
      () => null,
      (e: unknown) => e,
    );
    const refusedMetrics = before.metrics();
    await before.close();
    expect((error as ClickHouseError).code).toBe(16); // NO_SUCH_COLUMN_IN_TABLE
    expect((error as ClickHouseError).serverMessage).toMatch(/mr_mask/);
    expect(refusedMetrics).toMatchObject({ rowsInserted: 0, rowsFailed: encoded.block.rows, nativeAsRowBinary: 1 });
    expect(letters.filter((l) => l.error instanceof ClickHouseError)).toEqual([]);

    // The sink that creates tables adds the column schema.ts ADDED_COLUMNS names, once, and says so.
    const added: string[] = [];
    const after = new ClickHouseSink({ ...options, spillDir: spillDir(), onColumnAdded: (sql) => added.push(sql) });
    await after.insertEncoded("ml_scores", encoded.block, encoded.rejected);
    const landed = after.metrics();
    await after.close();
    expect(added).toEqual(["ALTER TABLE before_mr.ml_scores ADD COLUMN mr_mask UInt8 AFTER nelson_mask"]);
    const columns = (await server.query("SELECT name FROM system.columns WHERE database = 'before_mr' AND table = 'ml_scores' FORMAT TSV"))
      .trim()
      .split("\n");
    expect(columns).toEqual(TABLE_SCHEMAS.ml_scores.columns.map((c) => c.name));
    expect(landed).toMatchObject({ rowsInserted: encoded.block.rows, nativeAsRowBinary: 0 });
    expect(await count("SELECT mr_mask FROM before_mr.ml_scores WHERE machine_id = 'M-0'")).toBe(0);
    expect(await count("SELECT count() FROM before_mr.ml_scores WHERE mr_mask != 0")).toBeGreaterThan(0);
    // The Native rows are what the RowBinary encoder writes for a table made by this version.
    const select = `SELECT ${TABLE_SCHEMAS.ml_scores.columns.map((c) => c.name).join(", ")} FROM before_mr.ml_scores WHERE seq > 0 ORDER BY seq FORMAT RowBinary`;
    const rowBinary = encodeScoreColumns(batch, { keys, layout: LAYOUTS[0].layout, modelHash: encodeRowBinaryString("h") });
    expect((await selectBytes(server, select)).equals(Buffer.from(rowBinary.rows.bytes))).toBe(true);
  }, 120_000);

  it("sendNow: blocks a caller gathered go as one insert of their own after the table's open batch, without the flush interval; past batchRowsMax they are cut as without it", async () => {
    const keys = keyTable(false);
    const valid = (seed: number, n: number, seqFrom: number) => validBatch(seed, n, keys.length, seqFrom);
    // A flush interval no test waits out: what lands here was sent by sendNow or flush.
    const sink = new ClickHouseSink({
      url: server.url,
      database: "send_now",
      spillDir: spillDir(),
      flushIntervalMs: 600_000,
      batchRowsMax: 500,
    });
    const open = sink.insertEncoded("ml_sensor_data", encodeSensorDataNative(valid(1, 50, 0), { keys }).block);
    const gathered = (from: number, blocks: number): NativeBlock => {
      const writer = new NativeWriter();
      for (let b = 0; b < blocks; b++) appendSensorDataNative(valid(2 + b, 100, from + 300 * b), { keys, writer });
      return writer.finish();
    };
    // Two blocks of 100 rows after the open batch of 50: both inserted, in that order, two inserts.
    await Promise.all([open, sink.insertEncoded("ml_sensor_data", gathered(1_000, 2), [], true)]);
    expect(sink.metrics()).toMatchObject({ rowsInserted: 250, batches: 2 });
    // Six blocks (600 rows) over batchRowsMax (500): copied into batches and cut, the last one open until flush.
    const cut = sink.insertEncoded("ml_sensor_data", gathered(10_000, 6), [], true);
    await sink.flush();
    await cut;
    const m = sink.metrics();
    await sink.close();
    expect(m).toMatchObject({ rowsInserted: 850, batches: 4, rowsPending: 0 });
    expect(await count("SELECT count() FROM send_now.ml_sensor_data")).toBe(850);
    expect(await count("SELECT uniqExact(seq) FROM send_now.ml_sensor_data")).toBe(850);
  });

  it("sendNow with blocks viewing shared memory (an ingest worker's body ring): inserted or spilled as they are, the memory never kept as a spare nor read after the insert settles", async () => {
    const keys = keyTable(false);
    const valid = (seed: number, n: number, seqFrom: number) => validBatch(seed, n, keys.length, seqFrom);
    const shared = new Uint8Array(new SharedArrayBuffer(1 << 20));
    /** Blocks of `blocks` × 100 rows from `from`, copied into the shared memory (the previous ones overwritten, as a ring's owner does once they settle). */
    const lend = (from: number, blocks: number): NativeBlock => {
      const writer = new NativeWriter();
      for (let b = 0; b < blocks; b++) appendSensorDataNative(valid(from + b, 100, from + 300 * b), { keys, writer });
      const block = writer.finish();
      shared.fill(0xee);
      shared.set(block.bytes);
      return { ...block, bytes: shared.subarray(0, block.bytes.length) };
    };
    await createSchema((sql) => server.query(sql), "lent");
    const options = {
      url: server.url,
      database: "lent",
      spillDir: spillDir(),
      flushIntervalMs: 600_000,
      backoffBaseMs: 20,
      backoffMaxMs: 200,
    };
    const sink = new ClickHouseSink(options);
    await sink.insertEncoded("ml_sensor_data", lend(0, 2), [], true);
    // The sink's own Native batch next (not sendNow): a spare buffer would be the shared memory.
    const untouched = shared.slice();
    await Promise.all([sink.insertEncoded("ml_sensor_data", encodeSensorDataNative(valid(50, 100, 1_000), { keys }).block), sink.flush()]);
    expect(Buffer.compare(shared, untouched)).toBe(0);
    // ClickHouse away: the lent blocks are spilled, and what the spill holds is theirs after the memory is written again.
    await server.stop();
    await sink.insertEncoded("ml_sensor_data", lend(2_000, 3), [], true);
    lend(9_000, 1);
    const away = sink.metrics();
    await server.start();
    await sink.drained(60_000);
    const m = sink.metrics();
    await sink.close();
    expect(away).toMatchObject({ available: false, rowsSpilled: 300 });
    expect(m).toMatchObject({ rowsInserted: 600, rowsDrained: 300, spillFiles: 0, rowsDeadLettered: 0 });
    expect(await count("SELECT uniqExact(seq) FROM lent.ml_sensor_data")).toBe(600);
    expect(await count("SELECT countIf(seq >= 2000 AND seq < 2900) FROM lent.ml_sensor_data")).toBe(300);
    expect(await count("SELECT countIf(seq >= 9000) FROM lent.ml_sensor_data")).toBe(0);
  }, 120_000);

  it("a table unlike the declaration gets the rows as RowBinary, refused by name or row by row; blocks of another table reject", async () => {
    const keys = keyTable(false);
    const batch = batchOf(new SeededRandom(19), 8, { odd: 0, refuse: 0, bad: false, labels: true }, keys.length, 1);
    batch.labels = new Uint8Array(4 * 8).fill(0);
    for (let i = 0; i < 8; i++) batch.labels[4 * i] = 1;
    batch.values[5] = Number.NaN;
    const encoded = encodeSensorDataNative(batch, { keys, labels: LABELS });
    const letters: ClickHouseDeadLetter[] = [];
    const sinkOn = (database: string) =>
      new ClickHouseSink({ url: server.url, database, spillDir: spillDir(), flushIntervalMs: 20, onDeadLetter: (l) => letters.push(l) });

    // A table without operating_mode: 18.16 would drop the block's column without a word; RowBinary is refused by name.
    await server.query("CREATE DATABASE IF NOT EXISTS narrow_n");
    await server.query(TABLE_SCHEMAS.ml_sensor_data.create("narrow_n").replace("  operating_mode String,\n", ""));
    const narrow = sinkOn("narrow_n");
    const error = await narrow.insertEncoded("ml_sensor_data", encoded.block).then(
      () => null,
      (e: unknown) => e,
    );
    const narrowMetrics = narrow.metrics();
    await narrow.close();
    expect((error as ClickHouseError).code).toBe(16);
    expect(narrowMetrics.nativeAsRowBinary).toBe(1);

    // A table made again after the sink compared it, work_order_id now UInt32: the Native block is
    // refused (BAD_CAST), the table compared again, the rows sent as RowBinary and each refused.
    await server.query("CREATE DATABASE IF NOT EXISTS swapped");
    const sink = sinkOn("swapped");
    // Fifty valid rows (batchOf draws an odd reading now and then whatever it is asked: not here).
    const valid = batchOf(new SeededRandom(20), 50, { odd: 0, refuse: 0, bad: false, labels: false }, keys.length, 1, 1000);
    valid.values.forEach((v, i) => {
      if (!Number.isFinite(v)) valid.values[i] = i;
    });
    await sink.insertEncoded("ml_sensor_data", encodeSensorDataNative(valid, { keys }).block);
    expect(sink.metrics()).toMatchObject({ rowsInserted: 50, nativeAsRowBinary: 0 });
    await server.query("DROP TABLE swapped.ml_sensor_data");
    await server.query(TABLE_SCHEMAS.ml_sensor_data.create("swapped").replace("work_order_id String", "work_order_id UInt32"));
    await sink.insertEncoded("ml_sensor_data", encoded.block, encoded.rejected);
    const m = sink.metrics();
    await expect(sink.insertEncoded("ml_scores", encoded.block)).rejects.toBeInstanceOf(ConfigError);
    await sink.close();
    expect(m).toMatchObject({ rowsWritten: 58, rowsInserted: 50, rowsDeadLettered: 8, nativeAsRowBinary: 1 });
    const refusedByServer = letters.filter((l) => l.error instanceof ClickHouseError);
    expect(refusedByServer.map((l) => JSON.parse(l.line).seq).sort((a, b) => a - b)).toEqual([0, 3, 6, 9, 12, 18, 21]);
    expect(refusedByServer.every((l) => (l.error as ClickHouseError).kind === "row" && JSON.parse(l.line).work_order_id === "WO-1")).toBe(
      true,
    );
    expect(letters.filter((l) => l.error instanceof EncodeError).map((l) => (l.error as EncodeError).reason)).toEqual(["not_finite"]);
    expect(await count("SELECT 1")).toBe(1);
  }, 120_000);
});
