import { describe, expect, it } from "vitest";
import {
  allocateBatch,
  appendRecord,
  BatchRejectedError,
  CapacityError,
  ConfigError,
  ReorderBuffer,
  StreamEngine,
} from "../engine/core/mod.js";
import type { OutputChunk, PendingRecord, StreamEngineOptions } from "../engine/core/mod.js";
import { rollingKernel } from "../operators/rolling/rolling.js";
import { SeededRandom } from "../engine/core/mod.js";

function seeded(seed: number): () => number {
  const random = new SeededRandom(seed);
  return () => random.next();
}

function engineOptions(overrides: Partial<StreamEngineOptions>): StreamEngineOptions {
  return {
    kernels: [rollingKernel({ window: { kind: "count", records: 4 }, alpha: 0.5, timeScale: 1 })],
    workers: 2,
    groups: 8,
    keysMax: 1024,
    batchRecordsMax: 256,
    lateness: null,
    reorderRecordsPerKeyMax: 1024,
    ...overrides,
  };
}

describe("engine - per-key order", () => {
  it("keeps each key's order through 2 workers with 500 keys interleaved at random", async () => {
    const keys = 500;
    const perKey = 200;
    const rand = seeded(7);
    const seen = new Map<number, number>();
    let violations = 0;
    let rows = 0;
    const engine = new StreamEngine(engineOptions({ workers: 2, groups: 16 }), {
      onOutput(chunk: OutputChunk) {
        for (let i = 0; i < chunk.length; i++) {
          const id = chunk.keyIds[i];
          const k = (seen.get(id) ?? -1) + 1;
          seen.set(id, k);
          // The value of a key's k-th record is k; a kernel that saw the key in order reports
          // min = max(0, k − 3) over the count window of 4 and max = k.
          const row = chunk.outs[0].subarray(i * chunk.outFields[0], (i + 1) * chunk.outFields[0]);
          if (chunk.values[i] !== k || row[4] !== Math.max(0, k - 3) || row[5] !== k) violations++;
          rows++;
        }
      },
    });
    const ids = Array.from({ length: keys }, (_, k) => engine.internKey(`M-${k}/temperature`));
    const next = new Array<number>(keys).fill(0);
    const remaining = Array.from({ length: keys }, (_, k) => k);
    const batch = allocateBatch(1000);
    let position = 0;
    while (remaining.length > 0) {
      batch.length = 0;
      while (batch.length < 1000 && remaining.length > 0) {
        const pick = Math.floor(rand() * remaining.length);
        const k = remaining[pick];
        appendRecord(batch, ids[k], next[k], next[k], position++);
        if (++next[k] === perKey) remaining.splice(pick, 1);
      }
      await engine.push(batch);
    }
    await engine.close();
    expect(rows).toBe(keys * perKey);
    expect(violations).toBe(0);
    expect(engine.metrics().recordsOut).toBe(keys * perKey);
  });
});

describe("engine - keys grouped by their leading parts", () => {
  it("grouped by their first 2 parts, one sensor's keys per operating mode reach the outputs in the order they were pushed, across those keys", async () => {
    const sensors = 40;
    const modes = ["running", "idle", "settling"];
    const rand = seeded(11);
    const lastPosition = new Map<string, number>();
    const sensorOf: string[] = [];
    let violations = 0;
    let rows = 0;
    const engine = new StreamEngine(
      engineOptions({
        workers: 2,
        groups: 16,
        keysMax: sensors * modes.length,
        groupByKeyPrefix: { parts: 2, keysPerPrefix: modes.length },
      }),
      {
        onOutput(chunk: OutputChunk) {
          for (let i = 0; i < chunk.length; i++) {
            const sensor = sensorOf[chunk.keyIds[i]];
            if (chunk.positions[i] < (lastPosition.get(sensor) ?? -1)) violations++;
            lastPosition.set(sensor, chunk.positions[i]);
            rows++;
          }
        },
      },
    );
    const batch = allocateBatch(500);
    let position = 0;
    for (let b = 0; b < 40; b++) {
      batch.length = 0;
      // Each sensor's readings switch among its mode keys at random, as a machine changes mode.
      for (let j = 0; j < 500; j++) {
        const s = Math.floor(rand() * sensors);
        const id = engine.internKey(`M-${s}/pressure/${modes[Math.floor(rand() * modes.length)]}`);
        sensorOf[id] = `M-${s}/pressure`;
        appendRecord(batch, id, position, 1, position);
        position++;
      }
      await engine.push(batch);
    }
    await engine.close();
    expect(rows).toBe(position);
    expect(violations).toBe(0);
  });
});

describe("engine - event time", () => {
  it("reorders within the lateness and routes later records to the late output, losing none", async () => {
    const rand = seeded(11);
    const out: Array<{ key: number; time: number }> = [];
    const late: PendingRecord[] = [];
    const engine = new StreamEngine(engineOptions({ workers: 0, lateness: 10 }), {
      onOutput(chunk) {
        for (let i = 0; i < chunk.length; i++) out.push({ key: chunk.keyIds[i], time: chunk.times[i] });
      },
      onLate(record) {
        late.push(record);
      },
    });
    const a = engine.internKey("a");
    const b = engine.internKey("b");
    const batch = allocateBatch(4000);
    const expectedLate: number[] = [];
    for (let i = 0; i < 2000; i++) {
      for (const id of [a, b]) {
        // Jitter up to 8 units keeps records within the lateness of 10; every 97th record is 50 behind.
        const isLate = i > 100 && i % 97 === 0;
        const t = isLate ? i - 50 : i + Math.floor(rand() * 8);
        if (isLate) expectedLate.push(batch.length);
        appendRecord(batch, id, t, t, batch.length);
      }
    }
    await engine.push(batch);
    await engine.close();
    expect(late.map((r) => r.position).sort((x, y) => x - y)).toEqual(expectedLate);
    expect(out.length + late.length).toBe(batch.length);
    expect(engine.metrics().recordsLate).toBe(expectedLate.length);
    for (const id of [a, b]) {
      const times = out.filter((r) => r.key === id).map((r) => r.time);
      expect(times).toEqual([...times].sort((x, y) => x - y));
    }
  });

  it("flags records behind their key's newest time when no lateness is set", async () => {
    const flags: number[] = [];
    const engine = new StreamEngine(engineOptions({ workers: 0 }), {
      onOutput(chunk) {
        for (let i = 0; i < chunk.length; i++) flags.push(chunk.flags[i]);
      },
    });
    const id = engine.internKey("k");
    const batch = allocateBatch(5);
    [1, 3, 2, 3, 0].forEach((t, i) => appendRecord(batch, id, t, t, i));
    await engine.push(batch);
    await engine.close();
    expect(flags).toEqual([0, 0, 1, 0, 1]);
    expect(engine.metrics().recordsOutOfOrder).toBe(2);
  });

  it("without lateness, runs of one group copied as columns give the records, flags and counts of one at a time (1 and 8 groups, runs across buffer ends)", async () => {
    for (const groups of [1, 8]) {
      const next = seeded(40 + groups);
      const got: Array<[number, number, number, number, number]> = [];
      const engine = new StreamEngine(engineOptions({ workers: 0, groups, batchRecordsMax: 100 }), {
        onOutput(c) {
          for (let i = 0; i < c.length; i++) got.push([c.keyIds[i], c.times[i], c.values[i], c.positions[i], c.flags[i]]);
        },
      });
      const ids = Array.from({ length: 12 }, (_, k) => engine.internKey(`k${k}`));
      const newest = new Map<number, number>();
      const expected: Array<[number, number, number, number, number]> = [];
      let outOfOrder = 0;
      for (let b = 0; b < 20; b++) {
        const batch = allocateBatch(400);
        // Runs of one key (long, short, single), times mostly rising, now and then behind the key's newest.
        while (batch.length < 380) {
          const id = ids[Math.floor(next() * ids.length)];
          const run = [1, 3, 40, 150][Math.floor(next() * 4)];
          for (let r = 0; r < run && batch.length < 400; r++) {
            const t = Math.floor(b * 1000 + next() * 1000);
            const flag = t < (newest.get(id) ?? Number.NEGATIVE_INFINITY) ? 1 : 0;
            if (flag === 0) newest.set(id, t);
            else outOfOrder++;
            expected.push([id, t, next(), b * 400 + batch.length, flag]);
            const e = expected[expected.length - 1];
            appendRecord(batch, id, t, e[2], e[3]);
          }
        }
        await engine.push(batch);
      }
      await engine.close();
      const byKey = (rows: typeof got) => ids.map((id) => rows.filter((r) => r[0] === id));
      expect(byKey(got)).toEqual(byKey(expected));
      expect(engine.metrics().recordsOutOfOrder).toBe(outOfOrder);
    }
  });

  it("bounds each key's reorder buffer, releasing the oldest early and counting it", () => {
    const buffer = new ReorderBuffer(1e9, 3);
    const out: PendingRecord[] = [];
    for (let t = 0; t < 10; t++) expect(buffer.offer({ keyId: 0, time: t, value: t, position: t }, out)).toBe(true);
    expect(buffer.size).toBe(3);
    expect(out.map((r) => r.time)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(buffer.forcedReleases).toBe(7);
    // A record older than what the key already released is late.
    expect(buffer.offer({ keyId: 0, time: 5, value: 0, position: 10 }, out)).toBe(false);
  });
});

describe("engine - backpressure", () => {
  it("push resolves only when at most two buffers per group are unprocessed", async () => {
    const groups = 2;
    const batchRecordsMax = 64;
    let maxInFlight = 0;
    const engine = new StreamEngine(engineOptions({ workers: 1, groups, keysMax: 16, batchRecordsMax }), {
      onOutput() {
        maxInFlight = Math.max(maxInFlight, engine.metrics().tasksInFlight);
      },
    });
    const ids = Array.from({ length: 16 }, (_, k) => engine.internKey(`k${k}`));
    const batch = allocateBatch(10_000);
    for (let i = 0; i < 10_000; i++) appendRecord(batch, ids[i % 16], i, i, i);
    await engine.push(batch);
    const m = engine.metrics();
    // What is accepted but not yet out is bounded by the buffers: 2 per group.
    expect(m.recordsIn - m.recordsOut).toBeLessThanOrEqual(2 * groups * batchRecordsMax);
    expect(maxInFlight).toBeLessThanOrEqual(groups);
    await engine.close();
    expect(engine.metrics().recordsOut).toBe(10_000);
  });
});

describe("engine - limits and bad input", () => {
  it("rejects a non-finite value at the WASM boundary with BatchRejectedError", async () => {
    const engine = new StreamEngine(engineOptions({ workers: 0 }), { onOutput() {} });
    const id = engine.internKey("k");
    const batch = allocateBatch(2);
    appendRecord(batch, id, 0, Number.NaN, 0);
    expect(() => engine.push(batch)).toThrow(BatchRejectedError);
    await engine.close();
  });

  it("names the first bad record of a batch: an unknown key, a time or a value not finite", async () => {
    const engine = new StreamEngine(engineOptions({ workers: 0 }), { onOutput() {} });
    const id = engine.internKey("k");
    const cases: Array<[number, number, number, string]> = [
      [id + 1, 5, 1, "record 3: key id 1 was never interned"],
      [id, Number.POSITIVE_INFINITY, 1, "record 3: time Infinity is not finite"],
      [id, 5, Number.NEGATIVE_INFINITY, "record 3: value -Infinity is not finite"],
      [id, Number.NaN, 1, "record 3: time NaN is not finite"],
    ];
    for (const [key, time, value, message] of cases) {
      const batch = allocateBatch(6);
      for (let i = 0; i < 6; i++) appendRecord(batch, i === 3 ? key : id, i === 3 ? time : i, i === 3 ? value : i, i);
      batch.values[5] = Number.NaN;
      expect(() => engine.push(batch)).toThrow(BatchRejectedError);
      expect(() => engine.push(batch)).toThrow(message);
    }
    await engine.close();
  });

  it("refuses a key past keysMax with CapacityError", async () => {
    const engine = new StreamEngine(engineOptions({ workers: 0, groups: 2, keysMax: 4 }), { onOutput() {} });
    for (let k = 0; k < 4; k++) engine.internKey(`k${k}`);
    expect(() => engine.internKey("one-too-many")).toThrow(CapacityError);
    await engine.close();
  });

  it("rejects inconsistent options with ConfigError", () => {
    expect(() => new StreamEngine(engineOptions({ groups: 0 }), { onOutput() {} })).toThrow(ConfigError);
    expect(() => new StreamEngine(engineOptions({ keysMax: 4, groups: 8 }), { onOutput() {} })).toThrow(ConfigError);
    expect(() => new StreamEngine(engineOptions({ keysMax: 10_000_000, batchRecordsMax: 65536, groups: 4096 }), { onOutput() {} })).toThrow(
      ConfigError,
    );
  });
});

describe("engine - several analyses per key", () => {
  it("runs each analysis on its own state and output, equal to running it alone", async () => {
    const w4 = rollingKernel({ window: { kind: "count", records: 4 }, alpha: 0.5, timeScale: 1 });
    const w9 = rollingKernel({ window: { kind: "count", records: 9 }, alpha: 0.1, timeScale: 1 });
    const rand = seeded(5);
    const batch = allocateBatch(3000);
    const collect = async (kernels: (typeof w4)[]) => {
      const rows = new Map<number, number[][]>();
      const engine = new StreamEngine(engineOptions({ kernels, workers: 2, groups: 4 }), {
        onOutput(chunk) {
          for (let i = 0; i < chunk.length; i++) {
            rows.set(
              chunk.positions[i],
              chunk.outs.map((o, k) => Array.from(o.subarray(i * chunk.outFields[k], (i + 1) * chunk.outFields[k]))),
            );
          }
        },
      });
      for (let k = 0; k < 7; k++) engine.internKey(`k${k}`);
      await engine.push(batch);
      await engine.close();
      return rows;
    };
    for (let i = 0; i < 3000; i++) appendRecord(batch, i % 7, i, Math.round(rand() * 1000) / 10, i);
    const both = await collect([w4, w9]);
    const only4 = await collect([w4]);
    const only9 = await collect([w9]);
    expect(both.size).toBe(3000);
    for (let i = 0; i < 3000; i++) {
      expect(both.get(i)?.[0]).toEqual(only4.get(i)?.[0]);
      expect(both.get(i)?.[1]).toEqual(only9.get(i)?.[0]);
    }
  });

  it("changes a key's state between records in order (withKeyState)", async () => {
    const seen: number[] = [];
    const engine = new StreamEngine(engineOptions({ workers: 2, groups: 2, batchRecordsMax: 8 }), {
      onOutput(chunk) {
        for (let i = 0; i < chunk.length; i++) seen.push(chunk.outs[0][i * chunk.outFields[0]]);
      },
    });
    const id = engine.internKey("k");
    const batch = allocateBatch(5);
    for (let i = 0; i < 5; i++) appendRecord(batch, id, i, i, i);
    await engine.push(batch);
    // Re-initialise the key's window: the next records start counting from 1 again.
    await engine.withKeyState(id, 0, (kernels, ptr) => kernels.rollingInit(ptr, 0, 4, 0, 0.5, 1));
    await engine.push(batch);
    await engine.close();
    expect(seen).toEqual([1, 2, 3, 4, 4, 1, 2, 3, 4, 4]);
  });
});

describe("engine - payload bytes", () => {
  it("carries each record's fixed-width payload to its output, through reordering too", async () => {
    for (const lateness of [null, 5]) {
      const seen = new Map<number, string>();
      const engine = new StreamEngine(engineOptions({ workers: 2, groups: 2, batchRecordsMax: 16, lateness, payloadBytes: 4 }), {
        onOutput(chunk) {
          for (let i = 0; i < chunk.length; i++)
            seen.set(chunk.positions[i], Buffer.from(chunk.payload.subarray(i * 4, i * 4 + 4)).toString("latin1"));
        },
      });
      const ids = [engine.internKey("a"), engine.internKey("b")];
      const batch = allocateBatch(100, 4);
      for (let i = 0; i < 100; i++) {
        appendRecord(batch, ids[i % 2], i + ((i * 7) % 3), i, i);
        batch.payload!.set(Buffer.from(String(i).padStart(4, "0"), "latin1"), i * 4);
      }
      await engine.push(batch);
      await engine.close();
      expect(seen.size).toBe(100);
      for (let i = 0; i < 100; i++) expect(seen.get(i)).toBe(String(i).padStart(4, "0"));
    }
  });

  it("rejects a batch without the payload the engine carries", async () => {
    const engine = new StreamEngine(engineOptions({ workers: 0, payloadBytes: 8 }), { onOutput() {} });
    const id = engine.internKey("a");
    const batch = allocateBatch(2);
    appendRecord(batch, id, 0, 1, 0);
    expect(() => engine.push(batch)).toThrow(BatchRejectedError);
    await engine.close();
  });
});
