/**
 * The simulator path's live output (engine/jobs/live-frames.ts): paced score frames per machine
 * that carry every reading exactly, a bounded history per key, and the page's own frame decoder
 * (connectors/live/dashboard/score-frame.ts) reading what the engine's encoder writes.
 */
import { describe, expect, it } from "vitest";
import { decodeScoreFrame as decodeInPage } from "../connectors/live/dashboard/score-frame.js";
import { decodeScoreFrame, encodeScoreFrame } from "../connectors/wire/score-frame.js";
import { LiveFrames } from "../engine/jobs/live-frames.js";

const COLUMNS = ["mean", "z", "cl", "ucl", "lcl", "we_mask"];

function feed(frames: LiveFrames, machine: string, sensor: string, from: number, n: number): void {
  for (let i = from; i < from + n; i++) {
    const rolling = new Float64Array([i / 2, i % 3]);
    const spc = new Float64Array([10, 13, 7, i % 5 === 0 ? 1 : 0]);
    frames.add(machine, `${machine}.${sensor}`, 1000 + i, i * 1.5, [rolling, spc]);
  }
}

describe("live frames", () => {
  it("live frames - one frame per machine per flush holds every reading with its columns, exactly", () => {
    const sent: Array<{ machine: string; frame: Uint8Array }> = [];
    const frames = new LiveFrames(COLUMNS, (machine, frame) => sent.push({ machine, frame }), {
      flushIntervalMs: 60_000,
      rowsPerFrameMax: 64,
      historyPerKey: 10,
      historyKeysMax: 3,
    });
    feed(frames, "M-001", "temperature", 0, 40);
    feed(frames, "M-002", "pressure", 0, 5);
    feed(frames, "M-001", "vibration", 0, 30);
    frames.flush();
    // 70 rows of M-001: one frame full at 64 rows, the rest at the flush; M-002 at the flush.
    expect(sent.map((s) => [s.machine, decodeScoreFrame(s.frame).length])).toEqual([
      ["M-001", 64],
      ["M-001", 6],
      ["M-002", 5],
    ]);
    const first = decodeScoreFrame(sent[0].frame);
    expect(first.keys).toEqual(["M-001.temperature", "M-001.vibration"]);
    expect(Array.from(first.values.subarray(0, 3))).toEqual([0, 1.5, 3]);
    expect(Array.from((first.columns.get("we_mask") as Float64Array).subarray(0, 6))).toEqual([1, 0, 0, 0, 0, 1]);
    frames.close();
  });

  it("live frames - history keeps the last N readings per key, for at most K keys, oldest first, chart columns only", () => {
    const frames = new LiveFrames(COLUMNS, () => {}, {
      flushIntervalMs: 60_000,
      rowsPerFrameMax: 1000,
      historyPerKey: 10,
      historyKeysMax: 2,
    });
    feed(frames, "M-001", "temperature", 0, 25);
    feed(frames, "M-001", "vibration", 0, 3);
    feed(frames, "M-002", "pressure", 0, 4);
    const h = decodeScoreFrame(frames.historyFrame("M-001") as Uint8Array);
    expect(h.keys).toEqual(["M-001.temperature", "M-001.vibration"]);
    expect(Array.from(h.times)).toEqual([...Array.from({ length: 10 }, (_, i) => 1015 + i), 1000, 1001, 1002]);
    expect([...h.columns.keys()]).toEqual(["mean", "cl", "ucl", "lcl", "we_mask"]);
    // The third key is past historyKeysMax: not kept, counted.
    expect(frames.historyFrame("M-002")).toBeNull();
    expect(frames.historyUnkept).toBe(4);
    frames.close();
  });

  it("live frames - the page's decoder reads the engine's frames as the engine's decoder does, at any byte offset", () => {
    const frame = encodeScoreFrame({
      keys: ["M-001.temperature", "M-001.pressure"],
      keyIndex: [0, 1, 0],
      times: [1, 2, 3],
      values: [0.1, Number.NaN, -7],
      columns: [["ucl", [1, 2, 3]]],
      length: 3,
    });
    const shifted = new Uint8Array(frame.length + 3).subarray(3);
    shifted.set(frame);
    for (const bytes of [frame, shifted]) {
      const a = decodeInPage(bytes);
      const b = decodeScoreFrame(bytes);
      expect(a.keys).toEqual(b.keys);
      expect(Array.from(a.keyIndex)).toEqual(Array.from(b.keyIndex));
      expect(Array.from(a.values)).toEqual(Array.from(b.values));
      expect(Array.from(a.columns.get("ucl") as Float64Array)).toEqual([1, 2, 3]);
    }
    expect(() => decodeInPage(frame.subarray(0, frame.length - 1))).toThrow(/declares/);
  });
});
