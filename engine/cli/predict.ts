/**
 * `linewatch predict`: train the failure-prediction model on a C-MAPSS run-to-failure file and
 * write it as ONNX, evaluate a model on units of such a file, and score one unit cycle by cycle.
 * The model is described in operators/prediction/training/rul-train.ts, operators/prediction/training/onnx-export.ts and
 * operators/prediction/failure-model.ts; docs/prediction.md has the figures.
 */
import { once } from "node:events";
import { writeFile } from "node:fs/promises";
import { Command } from "commander";
import { ConfigError, InputError } from "../core/mod.js";
import { integerOption, numberOption } from "./options.js";
import { builtinCommand } from "./builtin-model.js";
import { readCmapss, remainingUsefulLife, type CmapssUnit } from "../../connectors/files/mod.js";
import { type FailureModel, rulFeatureRows } from "../../operators/prediction/mod.js";
import {
  DEFAULT_RUL_TRAIN_OPTIONS,
  evaluateRul,
  trainRulModel,
  type RulEvaluation,
  type RulTrainOptions,
} from "../../operators/prediction/training/rul-train.js";

const HELP_AFTER = `
The model: the mean of --ensemble MLPs (default 8; one network in the ONNX file) over the rolling
mean, slope and count (count window, default 150 cycles) of every sensor that varies in the
training file, predicting remaining useful life capped at 125 cycles.
failure_probability = P(RUL ≤ horizon) = Φ((horizon − predicted RUL) / σ), σ the residual
standard deviation on held-out units (a normal residual model); time_to_failure_hours =
predicted RUL × cycle hours.

Figures (cycles): RMSE over every row of the held-out units; RMSE under a test-set-like protocol
(each unit cut at random cycles, prediction at the last cycle seen, true RUL capped at 125) and
the PHM08 score (Σ e^(−d/13) − 1 for d < 0, e^(d/10) − 1 for d ≥ 0, d = predicted − true) per
draw of one cut per unit.

Examples:
  linewatch predict train --cmapss data/cmapss/train_FD001.txt --out rul.onnx --seed 1
  linewatch predict eval --model rul.onnx --cmapss data/cmapss/train_FD001.txt --units 81-100
  linewatch predict score --model rul.onnx --cmapss data/cmapss/train_FD001.txt --unit 3`;

export function predictCommand(): Command {
  return new Command("predict")
    .description("failure prediction: train an ONNX remaining-useful-life model on C-MAPSS, evaluate it, score a unit")
    .addCommand(trainCommand())
    .addCommand(evalCommand())
    .addCommand(scoreCommand())
    .addCommand(builtinCommand())
    .addHelpText("after", HELP_AFTER);
}

interface TrainFlags {
  cmapss: string;
  out: string;
  seed: number;
  epochs: number;
  holdout: number;
  window: number;
  ensemble: number;
  horizon: number;
  cycleHours: number;
  json?: boolean;
}

function trainCommand(): Command {
  const d = DEFAULT_RUL_TRAIN_OPTIONS;
  return new Command("train")
    .description("train on a C-MAPSS training file (units held out by seed for validation) and write the model as ONNX")
    .requiredOption("--cmapss <file>", "C-MAPSS run-to-failure file (train_FD001.txt layout)")
    .requiredOption("--out <file>", "ONNX model file to write")
    .option("--seed <n>", "seed of every random draw (same seed, same model)", integerOption("--seed", 0, 0xffffffff), d.seed)
    .option("--epochs <n>", "passes over the training rows", integerOption("--epochs", 1, 100_000), d.epochs)
    .option(
      "--holdout <n>",
      "units kept out of training, for validation and the residual σ",
      integerOption("--holdout", 1, 1_000_000),
      d.holdout,
    )
    .option("--window <n>", "rolling count window of the features, in cycles", integerOption("--window", 1, 65535), d.window)
    .option(
      "--ensemble <n>",
      "MLPs trained from seeds derived from --seed and averaged (one network in the ONNX file)",
      integerOption("--ensemble", 1, 64),
      d.ensemble,
    )
    .option("--horizon <cycles>", "failure_probability = P(RUL ≤ horizon)", numberOption("--horizon"), d.horizonCycles)
    .option("--cycle-hours <h>", "hours per cycle, for time_to_failure_hours", numberOption("--cycle-hours"), d.cycleHours)
    .option("--json", "print the figures as one JSON object")
    .action(async (flags: TrainFlags) => {
      const units = readCmapss(flags.cmapss);
      const trained = trainRulModel(units, trainOptions(flags), flags.cmapss);
      const { encodeRulModel } = await import("../../operators/prediction/training/onnx-export.js");
      const bytes = encodeRulModel(trained.spec);
      await writeFile(flags.out, bytes);
      // Load what was written: the file is what users run, so its version and outputs are what we report.
      const model = await loadModel(bytes, flags.out);
      await model.close();
      const v = trained.validation;
      if (flags.json) {
        process.stdout.write(
          `${JSON.stringify({
            model: flags.out,
            model_version: model.modelVersion,
            features: trained.spec.featureNames,
            held_out_units: trained.heldOutUnits,
            trained_on: trained.spec.trainedOn,
            train_seconds: round(trained.trainSeconds),
            validation: evaluationJson(v),
            reference_histograms:
              model.referenceHistograms === null
                ? null
                : { features: model.referenceHistograms.features.length, rows: model.referenceHistograms.rows },
          })}\n`,
        );
      } else {
        process.stdout.write(
          `predict train: ${units.length} units in ${flags.cmapss}; trained on ${trained.trainUnits.length} in ${trained.trainSeconds.toFixed(1)} s ` +
            `(${flags.epochs} epochs, final training RMSE ${Math.sqrt(trained.trainLoss[trained.trainLoss.length - 1]).toFixed(2)})\n` +
            `features (${trained.spec.featureNames.length}, window ${flags.window}): ${trained.spec.featureNames.join(" ")}\n` +
            `held-out units (seed ${flags.seed}): ${trained.heldOutUnits.join(" ")}\n` +
            formatEvaluation(v) +
            referenceLine(model) +
            `→ ${flags.out} (${bytes.length} bytes, ${model.modelVersion}; σ ${v.residualSigma.toFixed(2)} cycles, horizon ${flags.horizon} cycles)\n`,
        );
      }
    });
}

/** `predict train`'s flags over the trainer's defaults. */
function trainOptions(flags: TrainFlags): RulTrainOptions {
  return {
    ...DEFAULT_RUL_TRAIN_OPTIONS,
    seed: flags.seed,
    epochs: flags.epochs,
    holdout: flags.holdout,
    window: flags.window,
    ensemble: flags.ensemble,
    horizonCycles: flags.horizon,
    cycleHours: flags.cycleHours,
  };
}

/** What the written model holds for drift PSI (read back from the file, like its version). */
function referenceLine(model: FailureModel): string {
  const ref = model.referenceHistograms;
  if (ref === null) return `${model.driftUnavailable}\n`;
  const bins = Math.max(...ref.features.map((h) => h.counts.length));
  return `reference histograms for drift PSI: ${ref.features.length} features, ≤ ${bins} bins, over ${ref.rows} training rows\n`;
}

interface EvalFlags {
  model: string;
  cmapss: string;
  units?: string;
  seed: number;
  json?: boolean;
}

function evalCommand(): Command {
  return new Command("eval")
    .description("RMSE and PHM08 score of a model on units of a C-MAPSS run-to-failure file")
    .requiredOption("--model <file>", "ONNX model written by predict train")
    .requiredOption("--cmapss <file>", "C-MAPSS run-to-failure file")
    .option(
      "--units <list>",
      "units to evaluate, e.g. 81-100 or 1,5,7-9 (default: all; units the model was trained on give optimistic figures)",
    )
    .option("--seed <n>", "seed of the random truncation points", integerOption("--seed", 0, 0xffffffff), 1)
    .option("--json", "print the figures as one JSON object")
    .action(async (flags: EvalFlags) => {
      const all = readCmapss(flags.cmapss);
      const units = flags.units === undefined ? all : selectUnits(all, parseUnitList(flags.units), flags.cmapss);
      const model = await loadModel(null, flags.model);
      try {
        const predict = async (x: Float64Array, rows: number) => Float64Array.from(await model.predict(x, rows), (p) => p.rul_cycles);
        const e = await evaluateRul(
          predict,
          units,
          model.featureNames,
          model.window,
          model.rulCap,
          flags.seed,
          DEFAULT_RUL_TRAIN_OPTIONS.truncationsPerUnit,
        );
        if (flags.json) {
          process.stdout.write(
            `${JSON.stringify({
              model: flags.model,
              model_version: model.modelVersion,
              units: units.map((u) => u.unit),
              ...evaluationJson(e),
            })}\n`,
          );
        } else {
          process.stdout.write(
            `predict eval: ${model.modelVersion} on ${units.length} units of ${flags.cmapss} (${e.rows} rows)\n${formatEvaluation(e)}`,
          );
        }
      } finally {
        await model.close();
      }
    });
}

interface ScoreFlags {
  model: string;
  cmapss: string;
  unit: number;
}

function scoreCommand(): Command {
  return new Command("score")
    .description(
      "predict one unit cycle by cycle: NDJSON {unit, cycle, true_rul, rul_cycles, failure_probability, time_to_failure_hours, model_version}",
    )
    .requiredOption("--model <file>", "ONNX model written by predict train")
    .requiredOption("--cmapss <file>", "C-MAPSS run-to-failure file")
    .requiredOption("--unit <n>", "unit number", integerOption("--unit", 1, 1_000_000))
    .action(async (flags: ScoreFlags) => {
      const [unit] = selectUnits(readCmapss(flags.cmapss), [flags.unit], flags.cmapss);
      const model = await loadModel(null, flags.model);
      try {
        const rows = unit.cycles.length;
        const predictions = await model.predict(rulFeatureRows(unit, model.featureNames, model.window), rows);
        let text = "";
        for (let i = 0; i < rows; i++) {
          const p = predictions[i];
          text +=
            `{"unit":${unit.unit},"cycle":${unit.cycles[i]},"true_rul":${remainingUsefulLife(unit, i)},"rul_cycles":${round(p.rul_cycles)},` +
            `"failure_probability":${round(p.failure_probability)},"time_to_failure_hours":${round(p.time_to_failure_hours)},"model_version":"${model.modelVersion}"}\n`;
        }
        if (!process.stdout.write(text)) await once(process.stdout, "drain");
      } finally {
        await model.close();
      }
    });
}

/**
 * onnxruntime-node and protobufjs are loaded by the predict commands only, not at every start of
 * the CLI. `bytes` null: read the file at `path`.
 */
async function loadModel(bytes: Uint8Array | null, path: string): Promise<FailureModel> {
  const { FailureModel } = await import("../../operators/prediction/mod.js");
  return bytes === null ? FailureModel.load(path) : FailureModel.fromBytes(bytes, path);
}

/** "81-100", "1,5,7-9" → unit numbers, in the order given, without repeats. */
export function parseUnitList(text: string): number[] {
  const out: number[] = [];
  for (const part of text.split(",")) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (m === null) throw new ConfigError("--units", `"${part}" is not a unit number or a range a-b (in "${text}")`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (a < 1 || b < a || b - a > 1_000_000) throw new ConfigError("--units", `"${part}" is not a range of units (in "${text}")`);
    for (let u = a; u <= b; u++) if (!out.includes(u)) out.push(u);
  }
  return out;
}

function selectUnits(all: readonly CmapssUnit[], wanted: readonly number[], file: string): CmapssUnit[] {
  const byNumber = new Map(all.map((u) => [u.unit, u]));
  const missing = wanted.filter((n) => !byNumber.has(n));
  if (missing.length > 0) {
    throw new InputError(
      `${file}: no unit ${missing.slice(0, 10).join(", ")}${missing.length > 10 ? " …" : ""} (the file has units ${all[0].unit}..${all[all.length - 1].unit})`,
    );
  }
  return wanted.map((n) => byNumber.get(n) as CmapssUnit);
}

function formatEvaluation(e: RulEvaluation): string {
  return (
    `RMSE, every row of ${e.units} units (${e.rows} rows, true RUL capped): ${e.rmseAllRows.toFixed(2)} cycles ` +
    `(residual mean ${e.residualMean.toFixed(2)}, σ ${e.residualSigma.toFixed(2)})\n` +
    `RMSE, test-set-like protocol (${e.truncated.points} random cuts, prediction at the last cycle seen): ${e.truncated.rmse.toFixed(2)} cycles; ` +
    `PHM08 score ${e.truncated.meanScorePerDraw.toFixed(1)} per draw of one cut per unit\n` +
    `RMSE at each unit's last cycle (true RUL 0): ${e.rmseLastCycle.toFixed(2)} cycles\n`
  );
}

function evaluationJson(e: RulEvaluation): Record<string, number> {
  return {
    units_evaluated: e.units,
    rows: e.rows,
    rmse_all_rows: round(e.rmseAllRows),
    residual_mean: round(e.residualMean),
    residual_sigma: round(e.residualSigma),
    rmse_truncated: round(e.truncated.rmse),
    truncation_points: e.truncated.points,
    phm08_score_per_draw: round(e.truncated.meanScorePerDraw),
    rmse_last_cycle: round(e.rmseLastCycle),
  };
}

/** 10 significant digits: more than any of these figures is accurate to. */
function round(v: number): number {
  return Number(v.toPrecision(10));
}
