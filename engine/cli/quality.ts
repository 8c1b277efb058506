/**
 * `linewatch quality`: train the batch quality model on a batch-stream file (`linewatch simulate
 * --batches`) and write it as ONNX, evaluate a model on such a file, and score each batch of a
 * file. The model is described in operators/quality/training/quality-train.ts and
 * operators/quality/quality-model.ts; docs/quality.md has the process model and the figures.
 */
import { once } from "node:events";
import { writeFile } from "node:fs/promises";
import { Command } from "commander";
import { ConfigError } from "../core/mod.js";
import { integerOption, numberOption } from "./options.js";
import { readBatchStreams } from "../../connectors/files/mod.js";
import { BatchFeatureState, DEFECT_CATEGORIES, type QualityModel } from "../../operators/quality/mod.js";
import { batchHistories, buildQualityDataset, type BatchHistory } from "../../operators/quality/training/quality-dataset.js";
import { evaluateQuality, LOW_YIELD, type QualityEvaluation } from "../../operators/quality/training/quality-eval.js";
import { DEFAULT_QUALITY_TRAIN_OPTIONS, trainQualityModel } from "../../operators/quality/training/quality-train.js";

const HELP_AFTER = `
The model: an MLP over aggregates of a batch's process readings so far (mean, std, min, max and
slope per hour of temperature, humidity, pressure, speed, feed rate, ambient temperature and
humidity; progress = units produced / planned; one-hots of supplier and cleanroom grade),
trained on rows taken at 5 %, 10 %, … 100 % of each batch so that a running batch can be scored.
Outputs: predicted_yield (first-pass yield), defect_probability per category (packaging,
labelling, serialization, other: the per-unit probability), predicted_defect_rate (their sum),
quality_score (100 × predicted_yield).

Figures: MAE and RMSE of the first-pass yield, and the ROC AUC of "yield < ${LOW_YIELD}" ranked by the
predicted yield, on held-out batches at their end and halfway; beside them the mean-yield baseline.

Examples:
  linewatch simulate --batches 600 --out batches.ndjson
  linewatch quality train --data batches.ndjson --out quality.onnx --seed 1
  linewatch simulate --batches 200 --seed 2 --out held-out.ndjson
  linewatch quality eval --model quality.onnx --data held-out.ndjson
  linewatch quality score --model quality.onnx --data held-out.ndjson --progress 0.5`;

export function qualityCommand(): Command {
  return new Command("quality")
    .description("batch quality prediction: train an ONNX first-pass-yield and defect model on process streams, evaluate it, score batches")
    .addCommand(trainCommand())
    .addCommand(evalCommand())
    .addCommand(scoreCommand())
    .addHelpText("after", HELP_AFTER);
}

interface TrainFlags {
  data: string;
  out: string;
  seed: number;
  epochs: number;
  holdout: number;
  json?: boolean;
}

function trainCommand(): Command {
  const d = DEFAULT_QUALITY_TRAIN_OPTIONS;
  return new Command("train")
    .description("train on a batch-stream file (batches held out by seed for validation) and write the model as ONNX")
    .requiredOption("--data <file>", "batch-stream NDJSON (process readings and quality outcomes, as `simulate --batches` writes)")
    .requiredOption("--out <file>", "ONNX model file to write")
    .option("--seed <n>", "seed of every random draw (same seed, same model)", integerOption("--seed", 0, 0xffffffff), d.seed)
    .option("--epochs <n>", "passes over the training rows", integerOption("--epochs", 1, 100_000), d.epochs)
    .option("--holdout <f>", "fraction of the batches kept out of training, for validation (0: none)", numberOption("--holdout"), d.holdout)
    .option("--json", "print the figures as one JSON object")
    .action(async (flags: TrainFlags) => {
      const batches = readBatches(flags.data);
      const trained = trainQualityModel(batches, { ...d, seed: flags.seed, epochs: flags.epochs, holdout: flags.holdout }, flags.data);
      const { encodeQualityModel } = await import("../../operators/quality/training/quality-onnx.js");
      const bytes = encodeQualityModel(trained.spec);
      await writeFile(flags.out, bytes);
      // Load what was written: its version is what users run.
      const model = await loadModel(flags.out, bytes);
      await model.close();
      const v = trained.validation;
      if (flags.json) {
        process.stdout.write(
          `${JSON.stringify({
            model: flags.out,
            model_version: model.modelVersion,
            features: trained.spec.featureNames,
            trained_on: trained.spec.trainedOn,
            train_batches: trained.trainBatches,
            held_out_batches: trained.heldOutBatches,
            train_rows: trained.trainRows,
            train_seconds: round(trained.trainSeconds),
            train_yield_mean: round(trained.spec.trainYieldMean),
            validation: v === null ? null : { at_end: evaluationJson(v.atEnd), halfway: evaluationJson(v.atHalf) },
          })}\n`,
        );
        return;
      }
      process.stdout.write(
        `quality train: ${batches.length} batches in ${flags.data}; trained on ${trained.trainBatches} (${trained.trainRows} rows) ` +
          `in ${trained.trainSeconds.toFixed(1)} s (${flags.epochs} epochs)\n` +
          `features (${trained.spec.featureNames.length}): ${trained.spec.featureNames.join(" ")}\n` +
          (v === null
            ? "no batches held out: no validation figures\n"
            : `held-out batches (${trained.heldOutBatches}, seed ${flags.seed}):\n${formatEvaluation("at batch end", v.atEnd)}${formatEvaluation("halfway", v.atHalf)}`) +
          `→ ${flags.out} (${bytes.length} bytes, ${model.modelVersion}; training mean yield ${trained.spec.trainYieldMean.toFixed(4)})\n`,
      );
    });
}

interface EvalFlags {
  model: string;
  data: string;
  json?: boolean;
}

function evalCommand(): Command {
  return new Command("eval")
    .description("yield MAE/RMSE, AUC of yield < 0.95 and defect-rate error of a model on the batches of a batch-stream file")
    .requiredOption("--model <file>", "ONNX model written by quality train")
    .requiredOption("--data <file>", "batch-stream NDJSON (batches the model was trained on give optimistic figures)")
    .option("--json", "print the figures as one JSON object")
    .action(async (flags: EvalFlags) => {
      const batches = readBatches(flags.data);
      const model = await loadModel(flags.model, null);
      try {
        const data = buildQualityDataset(batches, model.featureNames, [0.5, 1]);
        const raw = await model.rawOutputs(data.features, data.rows);
        const baseline = new Float64Array(data.rows).fill(model.trainYieldMean);
        const figures = {
          atEnd: evaluateQuality(data, raw.yield, raw.defects, 1),
          atHalf: evaluateQuality(data, raw.yield, raw.defects, 0.5),
          baseline: evaluateQuality(data, baseline, null, 1),
        };
        if (flags.json) {
          process.stdout.write(
            `${JSON.stringify({
              model: flags.model,
              model_version: model.modelVersion,
              batches: figures.atEnd.batches,
              at_end: evaluationJson(figures.atEnd),
              halfway: evaluationJson(figures.atHalf),
              mean_yield_baseline: evaluationJson(figures.baseline),
            })}\n`,
          );
          return;
        }
        process.stdout.write(
          `quality eval: ${model.modelVersion} on ${figures.atEnd.batches} batches of ${flags.data} ` +
            `(${figures.atEnd.lowYieldBatches} with yield < ${LOW_YIELD})\n` +
            formatEvaluation("at batch end", figures.atEnd) +
            formatEvaluation("halfway", figures.atHalf) +
            formatEvaluation(`mean yield ${model.trainYieldMean.toFixed(4)} (baseline)`, figures.baseline),
        );
      } finally {
        await model.close();
      }
    });
}

interface ScoreFlags {
  model: string;
  data: string;
  progress: number;
}

function scoreCommand(): Command {
  return new Command("score")
    .description(
      "score each batch of a batch-stream file: NDJSON {batch_id, line_id, …, predicted_yield, defect_probability, quality_score, model_version}",
    )
    .requiredOption("--model <file>", "ONNX model written by quality train")
    .requiredOption("--data <file>", "batch-stream NDJSON; batches without an outcome (still running) are scored too")
    .option(
      "--progress <f>",
      "score each batch at its first reading with units_produced / planned_units ≥ f (1: its last reading)",
      numberOption("--progress"),
      1,
    )
    .action(async (flags: ScoreFlags) => {
      if (!(flags.progress > 0 && flags.progress <= 1)) throw new ConfigError("--progress", `must be in (0, 1], got ${flags.progress}`);
      const batches = readBatches(flags.data);
      const model = await loadModel(flags.model, null);
      try {
        const scored = batches.filter((b) => b.readings.length > 0);
        const f = model.featureNames.length;
        const features = new Float64Array(scored.length * f);
        const state = new BatchFeatureState();
        const at = scored.map((b, i) => {
          state.reset();
          let k = 0;
          for (; k < b.readings.length; k++) {
            state.add(b.readings[k]);
            if (state.progress >= flags.progress) break;
          }
          model.layout.write(state, features, i * f);
          return {
            reading: b.readings[Math.min(k, b.readings.length - 1)],
            readings: Math.min(k + 1, b.readings.length),
            progress: state.progress,
          };
        });
        const predictions = await model.predict(features, scored.length);
        let text = "";
        scored.forEach((b, i) => {
          text += `${scoreLine(b, at[i], predictions[i], model.modelVersion)}\n`;
        });
        if (!process.stdout.write(text)) await once(process.stdout, "drain");
      } finally {
        await model.close();
      }
    });
}

function scoreLine(
  b: BatchHistory,
  at: { reading: BatchHistory["readings"][number]; readings: number; progress: number },
  p: Awaited<ReturnType<QualityModel["predict"]>>[number],
  version: string,
): string {
  const o = b.outcome;
  const line: Record<string, unknown> = {
    batch_id: b.batchId,
    line_id: b.lineId,
    work_order_id: at.reading.work_order_id,
    timestamp: new Date(at.reading.timestamp).toISOString(),
    readings: at.readings,
    progress: round(at.progress),
    predicted_yield: round(p.predicted_yield),
    defect_probability: Object.fromEntries(DEFECT_CATEGORIES.map((c) => [c, round(p.defect_probability[c])])),
    predicted_defect_rate: round(p.predicted_defect_rate),
    quality_score: round(p.quality_score),
    model_version: version,
  };
  if (o !== null) {
    line.first_pass_yield = o.first_pass_yield;
    line.defect_rate = o.defect_rate;
  }
  return JSON.stringify(line);
}

function readBatches(path: string): BatchHistory[] {
  const streams = readBatchStreams(path);
  return batchHistories(streams.process, streams.quality);
}

/** onnxruntime-node loads with the quality commands only. `bytes` null: read the file at `path`. */
async function loadModel(path: string, bytes: Uint8Array | null): Promise<QualityModel> {
  const { QualityModel } = await import("../../operators/quality/mod.js");
  return bytes === null ? QualityModel.load(path) : QualityModel.fromBytes(bytes, path);
}

function formatEvaluation(label: string, e: QualityEvaluation): string {
  const defects = Number.isNaN(e.defectRateMae)
    ? ""
    : `; defect rate MAE ${e.defectRateMae.toFixed(4)} (${DEFECT_CATEGORIES.map((c) => `${c} ${e.categoryMae[c].toFixed(4)}`).join(", ")})`;
  return (
    `  ${label}: yield MAE ${e.yieldMae.toFixed(4)}, RMSE ${e.yieldRmse.toFixed(4)}, ` +
    `AUC of yield < ${LOW_YIELD} ${Number.isNaN(e.lowYieldAuc) ? "n/a (one class)" : e.lowYieldAuc.toFixed(3)} over ${e.batches} batches${defects}\n`
  );
}

function evaluationJson(e: QualityEvaluation): Record<string, unknown> {
  return {
    batches: e.batches,
    low_yield_batches: e.lowYieldBatches,
    yield_mae: round(e.yieldMae),
    yield_rmse: round(e.yieldRmse),
    low_yield_auc: Number.isNaN(e.lowYieldAuc) ? null : round(e.lowYieldAuc),
    defect_rate_mae: Number.isNaN(e.defectRateMae) ? null : round(e.defectRateMae),
    category_mae: Number.isNaN(e.defectRateMae) ? null : Object.fromEntries(DEFECT_CATEGORIES.map((c) => [c, round(e.categoryMae[c])])),
  };
}

/** 10 significant digits: more than any of these figures is accurate to. NaN → null in JSON. */
function round(v: number): number {
  return Number(v.toPrecision(10));
}
