/**
 * Native blocks of ml_sensor_data and ml_scores (connectors/clickhouse/native-columns.ts) against
 * the RowBinary encoders of the same batches (reading-columns.ts): the block's rows, turned into
 * RowBinary cell by cell, are the RowBinary encoder's bytes exactly, and the refused rows are the
 * same with the same EncodeError — on random and adversarial batches (NaN, ±Infinity, −0, windows
 * not full, SPC without limits, rule masks cut to a key's rules, labels absent, keys by mode,
 * rows refused). The real-server half (18.16) is in clickhouse-native-server.test.ts.
 */
import { describe, expect, it } from "vitest";
import { SeededRandom } from "../engine/core/mod.js";
import { ROLLING_OUT_FIELDS } from "../operators/rolling/rolling.js";
import { SPC_COL, SPC_OUT_FIELDS } from "../operators/spc/layout.js";
import { nativeLayout, nativeToRowBinary, NativeWriter } from "../connectors/clickhouse/native.js";
import { encodeScoreNative, encodeSensorDataNative } from "../connectors/clickhouse/native-columns.js";
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
import { TABLE_SCHEMAS } from "../connectors/clickhouse/schema.js";
import type { NativeEncoding } from "../connectors/clickhouse/native-columns.js";

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

/** A batch of `n` scored readings with outputs of rolling, SPC and an isolation forest of `features` features. */
function batchOf(r: SeededRandom, n: number, a: Adversity, keys: number, features: number): ScoreColumns {
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
    batch.positions[i] = refuse() ? pick(r, [-1, 1.5, Number.NaN, 2 ** 53]) : i * 3;
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
  const nativeWriter = new NativeWriter(1024);
  const rowWriter = new RowBinaryWriter(1024);

  it("ml_scores: random and adversarial batches under every layout, key rules cut masks, reused writers", () => {
    const r = new SeededRandom(11);
    let refused = 0;
    let rows = 0;
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
      const spcRules = round % 3 === 0 ? undefined : keys.map((_k, i) => (i % 2 === 0 ? { we: 0b0101, nelson: 0x81 } : undefined));
      const o = { keys, layout, spcRules, modelHash: hash };
      const rowBinary = encodeScoreColumns(batch, { ...o, writer: rowWriter });
      const native = encodeScoreNative(batch, { ...o, writer: nativeWriter });
      expectSame(native, rowBinary, "ml_scores");
      refused += rowBinary.rejected.length;
      rows += native.block.rows;
    }
    expect(refused).toBeGreaterThan(100);
    expect(rows).toBeGreaterThan(5000);
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
