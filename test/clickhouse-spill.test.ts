/**
 * The spill queue on its own (no server): durable appends in order, the bound, what a crash
 * leaves behind, a damaged file set aside; Native blocks walked and checked when read back.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { SpillFileError, SpillFullError } from "../connectors/errors.js";
import { rowText } from "../connectors/files/line-buffer.js";
import { SpillQueue } from "../connectors/clickhouse/spill-queue.js";
import { allocateBatch, appendRecord } from "../engine/core/mod.js";
import { keyNames } from "../connectors/clickhouse/reading-columns.js";
import { encodeSensorDataNative } from "../connectors/clickhouse/native-columns.js";

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "lw-spillq-"));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const body = (rows: string[]) => Buffer.from(rows.map((r) => `${r}\n`).join(""));

describe("spill queue - order, bound, restart", () => {
  it("appends come back oldest first, also in a queue reopened on the same directory", async () => {
    const dir = tempDir();
    const q = new SpillQueue(dir, 1 << 20);
    await Promise.all([q.append("ml_scores", body(['{"a":1}']), 1), q.append("ml_alerts", body(['{"a":2}', '{"a":3}']), 2)]);
    const reopened = new SpillQueue(dir, 1 << 20);
    expect(reopened.length).toBe(2);
    expect(reopened.bytes).toBe(q.bytes);
    const first = reopened.peek()!;
    expect(first.table).toBe("ml_scores");
    expect(rowText(await reopened.read(first), 0)).toBe('{"a":1}');
    await reopened.shift(first);
    const second = reopened.peek()!;
    const rows = await reopened.read(second);
    expect([rowText(rows, 0), rowText(rows, 1)]).toEqual(['{"a":2}', '{"a":3}']);
    // New entries continue the sequence after the ones found.
    const third = await reopened.append("ml_scores", body(['{"a":4}']), 1);
    expect(third.sequence).toBeGreaterThan(second.sequence);
  });

  it("refuses an append past bytesMax with SpillFullError and writes nothing", async () => {
    const dir = tempDir();
    const q = new SpillQueue(dir, 20);
    await q.append("ml_scores", body(['{"a":123456}']), 1);
    await expect(q.append("ml_scores", body(['{"a":123456}']), 1)).rejects.toBeInstanceOf(SpillFullError);
    expect(readdirSync(dir)).toHaveLength(1);
    expect(q.bytes).toBe(13);
  });

  it("removes the half-written file of a crash during an append; sets a damaged file aside", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "0000000000000001.ml_scores.ndjson.tmp"), '{"half":');
    writeFileSync(join(dir, "0000000000000002.ml_scores.ndjson"), '{"cut":1}\n{"cut":');
    const q = new SpillQueue(dir, 1 << 20);
    expect(readdirSync(dir)).toEqual(["0000000000000002.ml_scores.ndjson"]);
    const entry = q.peek()!;
    await expect(q.read(entry)).rejects.toBeInstanceOf(SpillFileError);
    await q.setAside(entry);
    expect(q.length).toBe(0);
    expect(readdirSync(dir)).toEqual(["0000000000000002.ml_scores.ndjson.damaged"]);
  });

  it("a Native spill reads back as its blocks; one whose blocks are not the table's is damaged and set aside", async () => {
    const batch = allocateBatch(30);
    for (let i = 0; i < 30; i++) appendRecord(batch, i % 2, 1_700_000_000_000 + i, i / 3, i);
    const keys = [keyNames(["M-1", "t"]), keyNames(["M-2", "p"])];
    const block = Buffer.from(encodeSensorDataNative(batch, { keys }).block.bytes);
    const body = Buffer.concat([block, block]);
    const dir = tempDir();
    const q = new SpillQueue(dir, 1 << 20);
    await q.append("ml_sensor_data", body, 60, "Native", Uint32Array.from([0, block.length, body.length]));
    // The same blocks filed under another table: not that table's columns.
    await q.append("ml_scores", body, 60, "Native", Uint32Array.from([0, block.length, body.length]));
    expect(readdirSync(dir).sort()).toEqual(["0000000000000001.ml_sensor_data.native", "0000000000000002.ml_scores.native"]);
    const reopened = new SpillQueue(dir, 1 << 20);
    const first = reopened.peek()!;
    expect(first.format).toBe("Native");
    const rows = await reopened.read(first);
    expect(rows.data.equals(body)).toBe(true);
    expect(Array.from(rows.starts)).toEqual([0, block.length, body.length]);
    expect(Array.from(rows.blockRows ?? [])).toEqual([30, 30]);
    expect(first.rows).toBe(60);
    await reopened.shift(first);
    const second = reopened.peek()!;
    await expect(reopened.read(second)).rejects.toThrow(/not hold whole Native blocks of ml_scores/);
    await reopened.setAside(second);
    expect(readdirSync(dir)).toEqual(["0000000000000002.ml_scores.native.damaged"]);
  });
});
