/**
 * An ingest worker's gathered ClickHouse rows (engine/jobs/ingest/clickhouse-rows.ts): every row
 * handed over once, in order, as the blocks one writer makes of the same chunks; no body past
 * `rowsMax` rows (the sink sends a body as it is only up to its batchRowsMax); bodies in the body
 * ring read back the same as transferred ones.
 */
import { describe, expect, it } from "vitest";
import { appendSensorDataNative, keyNames, NativeWriter } from "../connectors/clickhouse/mod.js";
import { nativeLayout } from "../connectors/clickhouse/native.js";
import { TABLE_SCHEMAS } from "../connectors/clickhouse/schema.js";
import { LabelTable } from "../connectors/wire/mod.js";
import { type OutputChunk, SeededRandom } from "../engine/core/mod.js";
import { allocateBodyRing, BodyRingReader, BodyRingWriter } from "../engine/jobs/ingest/body-ring.js";
import { ClickHouseRows, type EncodedTableRows } from "../engine/jobs/ingest/clickhouse-rows.js";
import type { AnalysisSpec } from "../engine/jobs/ingest/analysis-spec.js";
import { ROLLING_OUT_FIELDS } from "../operators/rolling/rolling.js";

const KEYS = 6;
const SPECS: AnalysisSpec[] = [{ name: "rolling", options: { window: { kind: "count", records: 4 }, alpha: 0.1, timeScale: 1000 } }];

/** `n` rows from seq `from`, keys round-robin, rolling rows with a full window. */
function chunkOf(r: SeededRandom, n: number, from: number): OutputChunk {
  const rolling = new Float64Array(n * ROLLING_OUT_FIELDS);
  for (let i = 0; i < rolling.length; i++) rolling[i] = r.next() * 10;
  for (let i = 0; i < n; i++) rolling[i * ROLLING_OUT_FIELDS] = 4; // count
  return {
    group: 0,
    length: n,
    keyIds: Uint32Array.from({ length: n }, (_, i) => (from + i) % KEYS),
    positions: Float64Array.from({ length: n }, (_, i) => from + i),
    flags: new Uint8Array(n),
    times: Float64Array.from({ length: n }, (_, i) => 1_700_000_000_000 + from + i),
    values: Float64Array.from({ length: n }, () => r.next()),
    outs: [rolling],
    outFields: [ROLLING_OUT_FIELDS],
    payload: new Uint8Array(4 * n),
    events: [null],
  };
}

function rowsOf(ring: BodyRingWriter | null, rowsMax: number): ClickHouseRows {
  const rows = new ClickHouseRows(SPECS, new LabelTable(), () => undefined, { rowsMax, ageMs: 1e9 }, undefined, ring);
  for (let k = 0; k < KEYS; k++) rows.addKey(k, `M-${k}`, "temperature");
  return rows;
}

describe("an ingest worker's ClickHouse rows", () => {
  for (const withRing of [false, true])
    it(`every row once, in order, no body past rowsMax (${withRing ? "bodies in the ring" : "transferred"})`, () => {
      const memory = allocateBodyRing(1 << 20);
      const reader = new BodyRingReader(memory);
      const rows = rowsOf(withRing ? new BodyRingWriter(memory) : null, 100);
      const r = new SeededRandom(3);
      const chunks: OutputChunk[] = [];
      let from = 0;
      for (const n of [30, 30, 30, 30, 7, 99, 1, 60, 45]) {
        chunks.push(chunkOf(r, n, from));
        from += n;
      }
      const bodies: Uint8Array[] = [];
      const sizes: number[] = [];
      const keep = (tables: EncodedTableRows[]) => {
        for (const t of tables) {
          if (t.table !== "ml_sensor_data") continue;
          expect(t.ring !== undefined).toBe(withRing);
          const lent = t.ring === undefined ? null : reader.lend(t.ring);
          const bytes = (lent?.bytes ?? t.rows.bytes).slice();
          lent?.release();
          const layout = nativeLayout(bytes, TABLE_SCHEMAS.ml_sensor_data.columns);
          if (typeof layout === "string") throw new Error(layout);
          expect(layout.rows).toBe(t.rows.rows);
          bodies.push(bytes);
          sizes.push(t.rows.rows);
        }
      };
      for (const c of chunks) {
        rows.add(c);
        keep(rows.take(false).tables);
      }
      keep(rows.take(true).tables);
      // Sealed before a chunk that would pass 100 (90 = 30+30+30, then 30+7), taken at 100 (99+1), the rest at the end.
      expect(sizes).toEqual([90, 37, 100, 60, 45]);
      // The blocks one writer makes of the same chunks, back to back.
      const one = new NativeWriter();
      const keys = Array.from({ length: KEYS }, (_, k) => keyNames([`M-${k}`, "temperature"]));
      for (const c of chunks) appendSensorDataNative({ ...c, labels: c.payload }, { keys, labels: [], writer: one });
      expect(Buffer.compare(Buffer.concat(bodies), one.finish().bytes)).toBe(0);
    });
});
