/**
 * `linewatch simulate --batches` and `linewatch quality train | eval | score` as a user runs
 * them: the built CLI (dist/engine/cli/main.js) in a child process, on a small generated set;
 * and `simulate --batches --nats` publishing to a throw-away nats-server, every message decoded
 * on its subject and compared with the simulator's events.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BatchSimulator } from "../connectors/sim/batch-simulator.js";
import { decodeProcessRecord, decodeQualityRecord } from "../connectors/wire/batch-codec.js";
import { serverAvailable, startNatsServer, type NatsServer } from "../connectors/local/nats-server.js";
import { runCli, startCli } from "./kit/cli.js";
import { waitUntil } from "./kit/wait.js";

const dir = mkdtempSync(join(tmpdir(), "linewatch-quality-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const START = "2026-03-02T06:00:00.000Z";

/** Runs the CLI in the test's directory; its output (stdout and stderr). */
async function linewatch(...args: string[]): Promise<string> {
  return runCli(args, dir);
}

interface ScoreLine {
  batch_id: string;
  progress: number;
  predicted_yield: number;
  defect_probability: Record<string, number>;
  predicted_defect_rate: number;
  quality_score: number;
  model_version: string;
  first_pass_yield?: number;
}

describe("quality CLI", () => {
  beforeAll(async () => {
    await linewatch("simulate", "--batches", "120", "--seed", "3", "--start", START, "--out", "train.ndjson");
    await linewatch("simulate", "--batches", "40", "--seed", "4", "--start", START, "--out", "test.ndjson");
  }, 120_000);

  it("cli - simulate --batches writes the same file for the same seed, with every batch's outcome", async () => {
    await linewatch("simulate", "--batches", "120", "--seed", "3", "--start", START, "--out", "again.ndjson");
    const text = readFileSync(join(dir, "train.ndjson"), "utf8");
    expect(readFileSync(join(dir, "again.ndjson"), "utf8")).toBe(text);
    expect(text.split("\n").filter((l) => l.includes('"record_type":"quality"')).length).toBe(120);
  });

  it("cli - train writes a deterministic ONNX model; eval and score read it", async () => {
    const train = JSON.parse(
      await linewatch("quality", "train", "--data", "train.ndjson", "--out", "q.onnx", "--epochs", "8", "--seed", "5", "--json"),
    ) as { model_version: string; train_batches: number; held_out_batches: number; validation: { at_end: { batches: number } } };
    expect(train.train_batches + train.held_out_batches).toBe(120);
    expect(train.validation.at_end.batches).toBe(train.held_out_batches);
    await linewatch("quality", "train", "--data", "train.ndjson", "--out", "q2.onnx", "--epochs", "8", "--seed", "5");
    expect(readFileSync(join(dir, "q2.onnx"))).toEqual(readFileSync(join(dir, "q.onnx")));

    const evaluation = JSON.parse(await linewatch("quality", "eval", "--model", "q.onnx", "--data", "test.ndjson", "--json")) as {
      model_version: string;
      batches: number;
      at_end: { yield_mae: number; yield_rmse: number; batches: number };
      halfway: { yield_mae: number };
      mean_yield_baseline: { yield_mae: number };
    };
    expect(evaluation.model_version).toBe(train.model_version);
    expect(evaluation.at_end.batches).toBe(40);
    expect(evaluation.at_end.yield_mae).toBeGreaterThan(0);
    expect(evaluation.at_end.yield_rmse).toBeGreaterThanOrEqual(evaluation.at_end.yield_mae);
    expect(evaluation.mean_yield_baseline.yield_mae).toBeGreaterThan(0);

    const lines = (await linewatch("quality", "score", "--model", "q.onnx", "--data", "test.ndjson", "--progress", "0.5"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as ScoreLine);
    expect(lines.length).toBe(40);
    for (const l of lines) {
      expect(l.progress).toBeGreaterThanOrEqual(0.5);
      expect(l.progress).toBeLessThan(0.6);
      expect(l.predicted_yield).toBeGreaterThan(0.5);
      expect(l.predicted_yield).toBeLessThanOrEqual(1);
      expect(Object.keys(l.defect_probability)).toEqual(["packaging", "labelling", "serialization", "other"]);
      const sum = Object.values(l.defect_probability).reduce((a, b) => a + b, 0);
      expect(l.predicted_defect_rate).toBeCloseTo(sum, 6);
      expect(l.quality_score).toBeCloseTo(100 * l.predicted_yield, 6);
      expect(l.model_version).toBe(train.model_version);
      expect(typeof l.first_pass_yield).toBe("number");
    }
  }, 120_000);

  it("cli - score takes a running batch (no outcome yet); train stops at a malformed line naming it", async () => {
    const text = readFileSync(join(dir, "test.ndjson"), "utf8").trimEnd().split("\n");
    const lastOutcome = text.map((l) => l.includes('"record_type":"quality"')).lastIndexOf(true);
    writeFileSync(join(dir, "running.ndjson"), `${text.slice(0, lastOutcome).join("\n")}\n`);
    const lines = (await linewatch("quality", "score", "--model", "q.onnx", "--data", "running.ndjson")).trim().split("\n");
    const last = JSON.parse(lines.find((l) => !l.includes("first_pass_yield")) ?? "null") as ScoreLine | null;
    expect(last).not.toBeNull();
    expect(last?.predicted_yield).toBeGreaterThan(0);

    writeFileSync(join(dir, "bad.ndjson"), `${text[0]}\n${text[1].replace('"speed":', '"speed":"fast","was":')}\n`);
    const p = startCli(["quality", "train", "--data", "bad.ndjson", "--out", "bad.onnx"], dir);
    expect(await p.exited).not.toBe(0);
    expect(p.output()).toMatch(/bad\.ndjson:2: wrong_type: process_parameters\.speed/);
  }, 120_000);
});

describe.skipIf(!serverAvailable("nats-server"))("simulate --batches --nats", () => {
  let nats: NatsServer;
  beforeAll(async () => {
    nats = await startNatsServer();
  }, 60_000);
  afterAll(async () => {
    await nats?.dispose();
  });

  it("publish - every process reading and quality outcome arrives on its line's subject and decodes to the simulator's record", async () => {
    const nc = await connect({ servers: nats.url });
    const received: Array<{ subject: string; data: Uint8Array }> = [];
    const sub = nc.subscribe("lw.t9.>", { callback: (_e, m) => void received.push({ subject: m.subject, data: m.data }) });
    await nc.flush();
    await linewatch(
      "simulate",
      "--batches",
      "5",
      "--lines",
      "2",
      "--seed",
      "8",
      "--start",
      START,
      "--nats",
      nats.url,
      "--site",
      "t9",
      "--payload",
      "json",
    );
    await nc.flush();
    const sim = new BatchSimulator({ seed: 8, batches: 5, lines: 2, startTime: Date.parse(START) });
    const expected: Array<{ subject: string; record: unknown }> = [];
    for (let kind = sim.next(); kind !== null; kind = sim.next()) {
      if (kind === "process") expected.push({ subject: `lw.t9.process.${sim.reading.line_id}`, record: structuredClone(sim.reading) });
      else {
        const { expected: _, ...outcome } = sim.outcome as NonNullable<typeof sim.outcome>;
        expected.push({ subject: `lw.t9.quality.${outcome.line_id}`, record: outcome });
      }
    }
    // The server forwards what the CLI published before our flush's PONG; core NATS keeps one publisher's order.
    await waitUntil(() => received.length >= expected.length, 10_000);
    sub.unsubscribe();
    await nc.close();
    expect(received.length).toBe(expected.length);
    received.forEach((m, i) => {
      expect(m.subject).toBe(expected[i].subject);
      const decoded = m.subject.includes(".process.")
        ? decodeProcessRecord(m.data, { subject: m.subject })
        : decodeQualityRecord(m.data, { subject: m.subject });
      expect(decoded).toEqual(expected[i].record);
    });
  }, 120_000);
});
