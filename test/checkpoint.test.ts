import { describe, expect, it } from "vitest";
import { allocateBatch, appendRecord, CheckpointError, StreamEngine } from "../engine/core/mod.js";
import { decodeCheckpoint, encodeCheckpoint } from "../engine/core/checkpoint.js";
import { rollingKernel } from "../operators/rolling/rolling.js";
import { DEFAULT_SPC_PARAMS } from "../operators/spc/layout.js";
import { spcKernel } from "../operators/spc/spc.js";
import { SeededRandom } from "../engine/core/mod.js";

const kernels = () => [
  rollingKernel({ window: { kind: "count", records: 8 }, alpha: 0.3, timeScale: 1 }),
  spcKernel({ params: { ...DEFAULT_SPC_PARAMS, baselineN: 20 } }),
];

function newEngine(rows: Map<number, number[]>) {
  return new StreamEngine(
    { kernels: kernels(), workers: 2, groups: 4, keysMax: 64, batchRecordsMax: 32, lateness: null, reorderRecordsPerKeyMax: 1 },
    {
      onOutput(chunk) {
        for (let i = 0; i < chunk.length; i++) {
          rows.set(chunk.positions[i], [
            ...chunk.outs[0].subarray(i * chunk.outFields[0], (i + 1) * chunk.outFields[0]),
            ...chunk.outs[1].subarray(i * chunk.outFields[1], (i + 1) * chunk.outFields[1]),
          ]);
        }
      },
    },
  );
}

/** 3000 readings of 12 keys, interleaved at random. */
function readings(): Array<{ key: string; t: number; x: number }> {
  const r = new SeededRandom(21);
  const out: Array<{ key: string; t: number; x: number }> = [];
  const next = new Array<number>(12).fill(0);
  for (let i = 0; i < 3000; i++) {
    const k = Math.floor(r.next() * 12);
    out.push({ key: `M-${k}/pressure`, t: next[k]++, x: 6 + r.normal() * 0.1 + (i > 2000 && k === 3 ? 1 : 0) });
  }
  return out;
}

async function feed(engine: StreamEngine, data: ReturnType<typeof readings>, from: number, to: number): Promise<void> {
  const batch = allocateBatch(to - from);
  for (let i = from; i < to; i++) appendRecord(batch, engine.internKey(data[i].key), data[i].t, data[i].x, i);
  await engine.push(batch);
  await engine.flush();
}

describe("checkpoint - state survives a move to another engine", () => {
  it("restoring mid-stream and continuing gives exactly the outputs of one uninterrupted run", async () => {
    const data = readings();
    const whole = new Map<number, number[]>();
    const a = newEngine(whole);
    await feed(a, data, 0, 3000);
    await a.close();

    const split = new Map<number, number[]>();
    const first = newEngine(split);
    await feed(first, data, 0, 1700);
    const bytes = encodeCheckpoint(await first.checkpoint(1699));
    await first.close();
    const second = newEngine(split);
    // Another partition's key arrives first, so every restored key lands in a different slot.
    second.internKey("elsewhere/other");
    const restored = decodeCheckpoint(bytes);
    expect(restored.position).toBe(1699);
    await second.restore(restored);
    await feed(second, data, 1700, 3000);
    await second.close();

    expect(split.size).toBe(3000);
    for (let i = 0; i < 3000; i++) expect(split.get(i), `record ${i}`).toEqual(whole.get(i));
  });

  it("checkpoints only the keys asked for, and refuses a checkpoint of other analyses", async () => {
    const rows = new Map<number, number[]>();
    const engine = newEngine(rows);
    await feed(engine, readings(), 0, 500);
    const some = await engine.checkpoint(499, (k) => k.startsWith("M-1"));
    expect(some.keys.map((k) => k.name).sort()).toEqual(["M-1/pressure", "M-10/pressure", "M-11/pressure"]);
    await engine.close();
    const other = new StreamEngine(
      { kernels: [kernels()[0]], workers: 0, groups: 2, keysMax: 8, batchRecordsMax: 8, lateness: null, reorderRecordsPerKeyMax: 1 },
      { onOutput() {} },
    );
    await expect(other.restore(some)).rejects.toBeInstanceOf(CheckpointError);
    await other.close();
    expect(() => decodeCheckpoint(new Uint8Array([1, 2, 3]))).toThrow(CheckpointError);
    const bytes = encodeCheckpoint(some);
    expect(() => decodeCheckpoint(bytes.subarray(0, bytes.length - 1))).toThrow(CheckpointError);
  });

  it("refuses a checkpoint of the SPC state layout before the zone masks (656 bytes a key, now 640)", async () => {
    const engine = newEngine(new Map());
    await feed(engine, readings(), 0, 500);
    const now = await engine.checkpoint(499);
    const spc = now.kernels.find((k) => k.name === "spc");
    expect(spc?.stateBytesPerKey).toBe(640);
    // The same checkpoint as the previous layout wrote it: 16 more bytes a key.
    const stride = now.stateStride + 16;
    const old = {
      ...now,
      kernels: now.kernels.map((k) => (k.name === "spc" ? { ...k, stateBytesPerKey: 656 } : k)),
      stateStride: stride,
      state: new Uint8Array(now.keys.length * stride),
    };
    await expect(engine.restore(old)).rejects.toThrow(/spc:656.*cannot restore into.*spc:640/);
    await engine.close();
  });

  it("refuses a checkpoint of the rolling state layout before the flat deques (272 bytes a key at W = 8, now 296)", async () => {
    const engine = newEngine(new Map());
    await feed(engine, readings(), 0, 500);
    const now = await engine.checkpoint(499);
    const rolling = now.kernels.find((k) => k.name === "rolling");
    expect(rolling?.stateBytesPerKey).toBe(296);
    // The same checkpoint as the ring deques' layout wrote it: 24 fewer bytes a key.
    const stride = now.stateStride - 24;
    const old = {
      ...now,
      kernels: now.kernels.map((k) => (k.name === "rolling" ? { ...k, stateBytesPerKey: 272 } : k)),
      stateStride: stride,
      state: new Uint8Array(now.keys.length * stride),
    };
    await expect(engine.restore(old)).rejects.toThrow(/rolling:272.*cannot restore into.*rolling:296/);
    await engine.close();
  });
});
