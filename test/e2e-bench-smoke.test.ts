import { execFile } from "node:child_process";
import { describe, expect, it } from "vitest";
import { formatPipelineReport, type PipelineBenchReport } from "../bench/pipeline-bench.js";
import type { ReplayBenchReport } from "../bench/replay-bench.js";
import { serverAvailable } from "../connectors/local/nats-server.js";

// `npm run bench -- e2e --smoke` from the built CLI (the benchmark's worker threads need the
// compiled module), on its own throw-away nats-server and clickhouse-server. Benchmarks are not
// tests: nothing here looks at a time or a rate, only at what a run must always show.
const natsAvailable = serverAvailable("nats-server");
const clickhouseAvailable = serverAvailable("clickhouse-server");

describe.skipIf(!natsAvailable || !clickhouseAvailable)("bench e2e - smoke run of the whole path", () => {
  it("exits 0; one row per setting; ClickHouse holds a score row per record scored; p50 ≤ p99 ≤ max; the ratios to raw nats.js and the naive consumer and CPU per record are printed; frames and JetStream rows", async () => {
    // Asynchronously: a run over a minute (a busy machine) would block this test worker's event loop
    // past vitest's RPC timeout ("Timeout calling onTaskUpdate", an unhandled error) with spawnSync.
    const run = await runSmoke();
    expect(run.status, `${run.stderr}\n${run.stdout.slice(0, 2000)}`).toBe(0);
    const report = JSON.parse(run.stdout) as PipelineBenchReport & { replay?: ReplayBenchReport };

    expect(report.clickhouseAbsent).toBeNull();
    expect(report.settings.map((s) => [s.batch, s.workers])).toEqual([[1024, 1]]);
    const s = report.settings[0];
    expect(s.processed).toBeGreaterThan(0);
    expect(s.clickhouse?.scoreRows).toBe(s.processed);
    // Outputs writes a reading row and a score row per record.
    expect(s.clickhouse?.sinkRows).toBe(2 * s.processed);
    expect(s.latency.samples).toBeGreaterThan(0);
    expect(s.latency.p50).toBeLessThanOrEqual(s.latency.p99);
    expect(s.latency.p99).toBeLessThanOrEqual(s.latency.max);
    // Split at "scored": on the engine's thread (the pool path), or where the main thread hands a frame to the live server (ingest workers).
    expect(s.toScored.samples).toBeGreaterThan(0);
    expect(s.toScored.samples).toBeLessThanOrEqual(s.latency.samples);
    expect(s.toScored.p50).toBeLessThanOrEqual(s.toScored.p99);
    expect(s.scoredToWs.samples).toBe(s.toScored.samples);
    expect(s.rawPerSecond).toBeGreaterThan(0);
    expect(s.ratio).toBeCloseTo(s.maxPerSecond / s.rawPerSecond, 9);
    // The latency phase runs at half of the sustained rate: the lower of scored and durable in ClickHouse.
    expect(s.durablePerSecond).toBeGreaterThan(0);
    expect(s.halfPerSecond).toBeCloseTo(Math.min(s.maxPerSecond, s.durablePerSecond) / 2, 6);
    // The naive consumer, measured as the engine is: its scores arrived, p50 ≤ p99 ≤ max at half its own maximum.
    expect(s.naive.notes).toEqual([]);
    expect(s.naive.perSecond).toBeGreaterThan(0);
    expect(s.naive.halfPerSecond).toBeCloseTo(s.naive.perSecond / 2, 6);
    expect(s.naive.latency.samples).toBeGreaterThan(0);
    expect(s.naive.latency.p50).toBeLessThanOrEqual(s.naive.latency.p99);
    expect(s.naive.latency.p99).toBeLessThanOrEqual(s.naive.latency.max);
    expect(s.ratioVsNaive).toBeCloseTo(s.maxPerSecond / s.naive.perSecond, 9);
    // CPU per record: positive where measured (a NaN would be null in JSON).
    expect(s.cpuUsPerRecord.engineMainThread).toBeGreaterThan(0);
    expect(s.cpuUsPerRecord.rawSubscriberThread).toBeGreaterThan(0);
    expect(s.cpuUsPerRecord.naiveProcess).toBeGreaterThan(0);
    expect(s.engineEventLoop).toBeGreaterThan(0);

    const text = formatPipelineReport(report);
    const row = text.split("\n").find((l) => /^\s+1024\s+1\s/.test(l));
    expect(row, text).toBeDefined();
    expect(row).toContain(s.ratio.toFixed(3));
    expect(row).toContain(String(s.clickhouse?.scoreRows));
    expect(text).toContain("best setting by sustained rate: batch 1024, 1 workers");
    expect(text).toContain("best setting by p99 at half load: batch 1024, 1 workers");
    expect(text).toMatch(/p99 ingest → WebSocket at half load .* (met|NOT MET)/);
    expect(text).toMatch(/single records vs raw nats\.js .* (met|NOT MET)/);
    expect(text).toMatch(/single records vs the naive consumer .* measured/);
    expect(text).toContain("the same publisher and messages: raw nats.js, the naive consumer");
    expect(text).toContain("ClickHouse holds a score row for every record scored in every setting");

    // Other sources and formats (engine alone): raw frames counted, engine frames scored; the
    // loaded JetStream stream read whole by raw nats.js, the ingest workers (ack-all, then one ack
    // per message) and the sensor job (one ack per message, as before).
    // Engine frames twice: SPC as `run` sets it (the goal's), then the textbook chart.
    expect(report.formats.map((f) => [f.source, f.format, f.consumer ?? f.spc ?? null, f.ack ?? null])).toEqual([
      ["raw nats.js", "frames", null, null],
      ["core NATS", "frames", "run", null],
      ["core NATS", "frames", "textbook", null],
      ["JetStream", "records", "raw", "all"],
      ["JetStream", "records", "ingest", "all"],
      ["JetStream", "records", "ingest", "explicit"],
      ["JetStream", "records", "pool", "explicit"],
    ]);
    const [rawFrames, runFrames, textbookFrames, ...jetstream] = report.formats;
    expect(rawFrames.readingsPerSecond).toBeGreaterThan(0);
    for (const engineFrames of [runFrames, textbookFrames]) {
      expect(engineFrames.processed).toBeGreaterThan(0);
      expect(engineFrames.notes).toEqual([]);
    }
    // The stream is loaded before the consumers start: every reading in it is read or scored.
    for (const j of jetstream) {
      expect(j.processed).toBe(20_000);
      expect(j.notes).toEqual([]);
      expect(j.processCpuUsPerReading).toBeGreaterThan(0);
    }
    // Ack-all: one ack per fetch (of up to 1000); explicit: at least one per message.
    expect(jetstream[1].acksPerReading).toBeLessThan(0.05);
    expect(jetstream[2].acksPerReading).toBeGreaterThanOrEqual(1);
    expect(jetstream[3].acksPerReading).toBeGreaterThanOrEqual(1);
    expect(text).toMatch(/frames, engine alone, SPC as run sets it .* (met|NOT MET)/);

    // --replay-rows: last, the replay's columns path over the CSV, its output beside the ceilings.
    expect(report.replay?.rows).toBe(20_000);
    expect(report.replay?.paths.map((p) => [p.path, p.identical])).toEqual([["columns", true]]);
    expect(report.replay?.paths[0].outputBytes).toBeGreaterThan(report.replay?.inputBytes ?? Infinity);
  }, 300_000);
});

function runSmoke(): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ["dist/bench/main.js", "e2e", "--smoke", "--json", "--replay-rows", "20000"],
      { encoding: "utf8", timeout: 240_000, maxBuffer: 64 * 1024 * 1024 },
      (_error, stdout, stderr) => resolve({ status: child.exitCode, stdout, stderr }),
    );
  });
}
