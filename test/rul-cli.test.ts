/**
 * `linewatch predict train | eval | score` as a user runs them: the built CLI
 * (dist/engine/cli/main.js, `npm run build` first) in a child process, on C-MAPSS FD001.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import type { Command } from "commander";
import { ConfigError, InputError } from "../engine/core/errors.js";
import { parseUnitList, predictCommand } from "../engine/cli/predict.js";
import { readCmapss } from "../connectors/files/cmapss.js";
import { referenceDataDir } from "../connectors/files/reference-data.js";

const CLI = resolve(dirname(fileURLToPath(import.meta.url)), "..", "dist", "engine", "cli", "main.js");
const TRAIN = join(referenceDataDir(), "cmapss", "train_FD001.txt");
const dir = mkdtempSync(join(tmpdir(), "linewatch-predict-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function linewatch(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [CLI, ...args], { maxBuffer: 1 << 26 }, (error, stdout, stderr) => {
      done({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr });
    });
  });
}

/** Commander throws instead of exiting, and keeps its messages to itself, on every subcommand. */
function quiet(command: Command): Command {
  command.exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  for (const sub of command.commands) quiet(sub);
  return command;
}

interface TrainJson {
  model_version: string;
  features: string[];
  held_out_units: number[];
  validation: { rmse_all_rows: number; rmse_truncated: number; residual_sigma: number; units_evaluated: number };
}

interface ScoreLine {
  unit: number;
  cycle: number;
  true_rul: number;
  rul_cycles: number;
  failure_probability: number;
  time_to_failure_hours: number;
  model_version: string;
}

describe("predict - command line", () => {
  const model = join(dir, "rul.onnx");
  let trained: TrainJson;

  it("train writes an ONNX model and reports the held-out figures; eval on the held-out units reproduces them", async () => {
    const r = await linewatch(
      "predict",
      "train",
      "--cmapss",
      TRAIN,
      "--out",
      model,
      "--epochs",
      "3",
      "--seed",
      "3",
      "--horizon",
      "20",
      "--cycle-hours",
      "2",
      "--json",
    );
    expect(r.code, r.stderr).toBe(0);
    trained = JSON.parse(r.stdout) as TrainJson;
    expect(trained.model_version).toMatch(/^rul-mlp-[0-9a-f]{12}$/);
    // Mean, slope and count of the 14 sensors that vary on FD001.
    expect(trained.features).toHaveLength(42);
    expect(trained.held_out_units).toHaveLength(20);
    expect(trained.validation.units_evaluated).toBe(20);
    expect(trained.validation.rmse_all_rows).toBeGreaterThan(5);
    expect(trained.validation.rmse_all_rows).toBeLessThan(30);
    expect(readFileSync(model).length).toBeGreaterThan(1000);

    const [e, text] = await Promise.all([
      linewatch(
        "predict",
        "eval",
        "--model",
        model,
        "--cmapss",
        TRAIN,
        "--units",
        trained.held_out_units.join(","),
        "--seed",
        "3",
        "--json",
      ),
      linewatch("predict", "eval", "--model", model, "--cmapss", TRAIN, "--units", "81-100"),
    ]);
    expect(e.code, e.stderr).toBe(0);
    const figures = JSON.parse(e.stdout) as { model_version: string; rmse_all_rows: number; rmse_truncated: number; units: number[] };
    expect(figures.model_version).toBe(trained.model_version);
    expect(figures.units).toEqual(trained.held_out_units);
    expect(Math.abs(figures.rmse_all_rows - trained.validation.rmse_all_rows)).toBeLessThan(0.01);
    expect(Math.abs(figures.rmse_truncated - trained.validation.rmse_truncated)).toBeLessThan(0.01);

    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/on 20 units/);
    expect(text.stdout).toMatch(/RMSE, every row/);
  }, 60_000);

  it("score writes one NDJSON line per cycle with the true and predicted RUL, probability and hours", async () => {
    const r = await linewatch("predict", "score", "--model", model, "--cmapss", TRAIN, "--unit", "7");
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as ScoreLine);
    const unit = readCmapss(TRAIN).find((u) => u.unit === 7)!;
    expect(lines).toHaveLength(unit.cycles.length);
    lines.forEach((l, i) => {
      expect(l.unit).toBe(7);
      expect(l.cycle).toBe(i + 1);
      expect(l.true_rul).toBe(unit.cycles.length - 1 - i);
      expect(l.rul_cycles).toBeGreaterThanOrEqual(0);
      expect(l.rul_cycles).toBeLessThanOrEqual(125);
      expect(l.failure_probability).toBeGreaterThanOrEqual(0);
      expect(l.failure_probability).toBeLessThanOrEqual(1);
      expect(l.time_to_failure_hours).toBeCloseTo(2 * l.rul_cycles, 6);
      expect(l.model_version).toBe(trained.model_version);
    });
    // Early in life the engine is healthy and far from failure; at its end, failure is likely within 20 cycles.
    expect(lines[10].failure_probability).toBeLessThan(0.05);
    expect(lines[lines.length - 1].failure_probability).toBeGreaterThan(0.5);
    expect(lines[lines.length - 1].rul_cycles).toBeLessThan(lines[10].rul_cycles);
  }, 30_000);

  it("a file that is not a model exits 2 with a message naming it (no class name)", async () => {
    const notModel = join(dir, "not.onnx");
    writeFileSync(notModel, "hello\n");
    const bad = await linewatch("predict", "eval", "--model", notModel, "--cmapss", TRAIN, "--units", "1");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^linewatch: .*not\.onnx: .*not an ONNX model/);
    expect(bad.stderr).not.toMatch(/\w+Error\b/);
  }, 30_000);

  it("bad input is a typed error naming what is wrong: missing file, unknown unit, bad unit list, bad hold-out, bad flag", async () => {
    // In process: the exit-code mapping is shared by every command and checked above.
    const run = (...args: string[]) => quiet(predictCommand()).parseAsync(args, { from: "user" });
    await expect(run("train", "--cmapss", join(dir, "none.txt"), "--out", join(dir, "x.onnx"))).rejects.toBeInstanceOf(InputError);
    await expect(run("score", "--model", model, "--cmapss", TRAIN, "--unit", "999")).rejects.toThrow(/no unit 999/);
    await expect(run("eval", "--model", model, "--cmapss", TRAIN, "--units", "5-x")).rejects.toBeInstanceOf(ConfigError);
    await expect(run("train", "--cmapss", TRAIN, "--out", join(dir, "y.onnx"), "--holdout", "100")).rejects.toBeInstanceOf(ConfigError);
    await expect(run("train", "--cmapss", TRAIN, "--out", join(dir, "y.onnx"), "--epochs", "0")).rejects.toThrow(/--epochs/);
    expect(parseUnitList("81-83,1,2-3")).toEqual([81, 82, 83, 1, 2, 3]);
  }, 30_000);
});
