/**
 * The sensor job behind its Source interface (engine/jobs/sensor-job.ts, source.ts), with a
 * source written here: every record pushed comes out once, through the score writer, before the
 * commit resolves; and no failure is dropped — a source that fails while reading fails the job
 * after the source is closed, and a failure while closing fails a job that otherwise succeeded.
 */
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { InputError } from "../engine/core/mod.js";
import type { ScoreKey, ScoreWriter } from "../engine/jobs/score-writers.js";
import { runSensorJob, type SensorJobOptions } from "../engine/jobs/sensor-job.js";
import type { SensorIntake, SensorSource } from "../engine/jobs/source.js";
import { rollingAnalysis } from "../operators/rolling/rolling.js";

/** Score lines kept in memory: "machine/sensor@time=value seq". */
class MemoryScores implements ScoreWriter {
  readonly bytesWritten = 0;
  readonly lines: string[] = [];
  write(key: ScoreKey, time: number, value: number, seq: number): void {
    this.lines.push(`${key.parts.join("/")}@${time}=${value} ${seq}`);
  }
  async spill(): Promise<void> {}
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}

/** `records` readings over `keys` sensors of one machine, committed every 100 records; `fail` says where it fails. */
class ArraySource implements SensorSource {
  readonly name = "array";
  readonly keysMax = 8;
  readonly groupsMax = 8;
  readonly labelled = false;
  readonly finite = true;
  closed = false;
  /** Records out (score lines) seen at each commit's end. */
  readonly outAtCommit: number[] = [];

  constructor(
    private readonly records: number,
    private readonly scores: MemoryScores,
    private readonly fail: { run?: number; close?: boolean } = {},
  ) {}

  async open(): Promise<void> {}

  async run(intake: SensorIntake): Promise<void> {
    const batch = intake.allocateBatch();
    const ids = [0, 1, 2].map((k) => intake.key(`M-1/s${k}`, "M-1", `s${k}`));
    for (let i = 0; i < this.records; i++) {
      if (i === this.fail.run) throw new InputError(`record ${i}: the source broke`);
      if (batch.length === batch.keyIds.length) await intake.push(batch);
      const k = batch.length++;
      batch.keyIds[k] = ids[i % 3];
      batch.times[k] = 1000 + i;
      batch.values[k] = i % 7;
      batch.positions[k] = i;
      if ((i + 1) % 100 === 0) {
        await intake.push(batch);
        await intake.commit(true);
        this.outAtCommit.push(this.scores.lines.length);
      }
    }
    await intake.push(batch);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.fail.close) throw new InputError("the source could not be closed");
  }

  summary(): string {
    return "array";
  }
}

function options(scores: MemoryScores): SensorJobOptions {
  return {
    analyses: [rollingAnalysis({ window: { kind: "count", records: 4 }, alpha: 0.5, timeScale: 1000 })],
    workers: 1,
    groups: 2,
    batchRecordsMax: 32,
    scores,
    summaryIntervalMs: 0,
    console: new PassThrough(),
    stop: new Promise(() => {}),
  };
}

describe("sensor job - the Source interface", () => {
  it("every record pushed is scored once; a commit resolves only after its records are out", async () => {
    const scores = new MemoryScores();
    const source = new ArraySource(1050, scores);
    const result = await runSensorJob(source, options(scores));
    expect(result.metrics.recordsIn).toBe(1050);
    expect(result.recordsOut).toBe(1050);
    expect(scores.lines.length).toBe(1050);
    expect(new Set(scores.lines.map((l) => l.split(" ")[1])).size).toBe(1050);
    expect(source.outAtCommit).toEqual(Array.from({ length: 10 }, (_, i) => (i + 1) * 100));
    expect(source.closed).toBe(true);
  });

  it("a source that fails while reading fails the job with its error, after it is closed", async () => {
    const scores = new MemoryScores();
    const source = new ArraySource(1000, scores, { run: 450 });
    await expect(runSensorJob(source, options(scores))).rejects.toThrow(/record 450/);
    expect(source.closed).toBe(true);
  });

  it("a failure while closing fails a job that otherwise succeeded", async () => {
    const scores = new MemoryScores();
    const source = new ArraySource(300, scores, { close: true });
    await expect(runSensorJob(source, options(scores))).rejects.toBeInstanceOf(InputError);
    expect(scores.lines.length).toBe(300);
  });
});
