/**
 * `linewatch iforest`: train an isolation forest on a table, score a table with a model, and
 * import a scikit-learn forest. The model file is described in operators/iforest/model.ts.
 */
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { readFile } from "node:fs/promises";
import type { Writable } from "node:stream";
import { Command } from "commander";
import { DEFAULT_WORKERS } from "../core/mod.js";
import { integerOption } from "./options.js";
import { readFeatureChunks, readFeatureMatrix } from "../../operators/iforest/training/data.js";
import {
  ModelError,
  readModelFile,
  treeCount,
  writeModelFile,
  type IsolationForestModel,
  IforestScorer,
} from "../../operators/iforest/mod.js";
import { importSklearnExport } from "../../operators/iforest/training/sklearn.js";
import {
  DEFAULT_IFOREST_SAMPLE_SIZE,
  DEFAULT_IFOREST_SEED,
  DEFAULT_IFOREST_TREES,
  trainIsolationForest,
} from "../../operators/iforest/training/train.js";

/** Rows read per chunk while scoring (memory stays bounded whatever the file size). */
export const SCORE_READ_CHUNK_ROWS = 65_536;
export const DEFAULT_SCORE_TASK_ROWS = 8192;

const HELP_AFTER = `
Scores are s(x) = 2^(−E[h(x)] / c(ψ)) (Liu, Ting & Zhou, ICDM 2008), in (0, 1]: near 1 for
anomalies, about 0.5 or below for ordinary rows. Models imported from scikit-learn score
−score_samples of the same forest (to 1e-9).

Output of score: one NDJSON line per input row, in input order:
  {"row":0,"score":0.4271932513,"model_hash":"<SHA-256 of the model>"}
row is the 0-based data row of the input; every line carries the hash of the model that scored it.

Examples:
  linewatch iforest train data/odds/pima.csv --exclude label --trees 100 --sample 256 --seed 1 --out model.json
  linewatch iforest score data/odds/pima.csv --model model.json --out scores.ndjson
  python3 scripts/sklearn_iforest_export.py --csv data.csv --exclude label --out export.json
  linewatch iforest import-sklearn export.json --out model.json`;

export function iforestCommand(): Command {
  return new Command("iforest")
    .description("isolation forest: train on a table, score a table, import a scikit-learn forest")
    .addCommand(trainCommand())
    .addCommand(scoreCommand())
    .addCommand(importCommand())
    .addHelpText("after", HELP_AFTER);
}

interface TrainFlags {
  features?: string;
  exclude?: string;
  trees: number;
  sample: number;
  seed: number;
  out: string;
}

function trainCommand(): Command {
  return new Command("train")
    .description("grow an isolation forest on the numeric columns of a CSV or NDJSON file and write model.json")
    .argument("<input>", "CSV with a header, .ndjson/.jsonl, or - for stdin")
    .option("--features <cols>", "feature columns, comma separated (default: every column not excluded)")
    .option("--exclude <cols>", "columns to leave out, comma separated (e.g. label)")
    .option("--trees <t>", "trees", integerOption("--trees", 1, 65_536), DEFAULT_IFOREST_TREES)
    .option("--sample <ψ>", "rows per tree, drawn without replacement", integerOption("--sample", 1, 1 << 24), DEFAULT_IFOREST_SAMPLE_SIZE)
    .option("--seed <n>", "seed of the random draws (same seed, same model)", integerOption("--seed", 0, 0xffffffff), DEFAULT_IFOREST_SEED)
    .requiredOption("--out <file>", "model file to write")
    .action(async (input: string, flags: TrainFlags) => {
      const data = await readFeatureMatrix(input, { features: list(flags.features), exclude: list(flags.exclude) });
      const model = trainIsolationForest(data, { trees: flags.trees, sampleSize: flags.sample, seed: flags.seed });
      await writeModelFile(flags.out, model);
      process.stderr.write(
        `iforest train: ${data.rows} rows × ${data.columns} features (${data.names.join(", ")}); ${describe(model)}; ` +
          `reference histograms for drift PSI over ${model.referenceHistograms?.rows ?? 0} rows → ${flags.out}\n`,
      );
    });
}

interface ScoreFlags {
  model: string;
  out?: string;
  workers: number;
  taskRows: number;
}

function scoreCommand(): Command {
  return new Command("score")
    .description("score every row of a CSV or NDJSON file with a model; NDJSON {row, score, model_hash} per row")
    .argument("<input>", "CSV with a header, .ndjson/.jsonl, or - for stdin; must have the model's feature columns")
    .requiredOption("--model <file>", "model.json (iforest train or iforest import-sklearn)")
    .option("--out <file>", "write NDJSON here instead of stdout")
    .option("--workers <n>", "worker threads (0: score on the main thread)", integerOption("--workers", 0, 256), DEFAULT_WORKERS)
    .option("--task-rows <n>", "rows per kernel task", integerOption("--task-rows", 1, 1 << 20), DEFAULT_SCORE_TASK_ROWS)
    .action(async (input: string, flags: ScoreFlags) => {
      const model = await readModelFile(flags.model);
      const output: Writable = flags.out === undefined ? process.stdout : createWriteStream(flags.out);
      const scorer = new IforestScorer(model, {
        stride: model.nFeatures,
        columns: model.featureNames.map((_, k) => k),
        workers: flags.workers,
        chunkRowsMax: flags.taskRows,
      });
      const started = performance.now();
      let rows = 0;
      try {
        const tail = `,"model_hash":"${model.hash}"}\n`;
        const result = await readFeatureChunks(input, { features: model.featureNames }, SCORE_READ_CHUNK_ROWS, async (chunk) => {
          const scores = await scorer.score(chunk.values, chunk.rows);
          let text = "";
          for (let i = 0; i < chunk.rows; i++) text += `{"row":${chunk.first + i},"score":${scores[i]}${tail}`;
          if (!output.write(text)) await once(output, "drain");
        });
        rows = result.rows;
      } finally {
        await scorer.close();
        if (output !== process.stdout)
          await new Promise<void>((resolve, reject) => output.end((e?: Error | null) => (e ? reject(e) : resolve())));
      }
      const seconds = (performance.now() - started) / 1000;
      process.stderr.write(
        `iforest score: ${rows} rows in ${seconds.toFixed(2)} s with model ${model.hash.slice(0, 12)}… (${describe(model)})\n`,
      );
    });
}

function importCommand(): Command {
  return new Command("import-sklearn")
    .description("turn the JSON of scripts/sklearn_iforest_export.py into model.json (scores equal −score_samples)")
    .argument("<export>", "export JSON written by scripts/sklearn_iforest_export.py")
    .requiredOption("--out <file>", "model file to write")
    .action(async (path: string, flags: { out: string }) => {
      let json: unknown;
      try {
        json = JSON.parse(await readFile(path, "utf8"));
      } catch (cause) {
        throw new ModelError(path, "(file)", `cannot read as JSON: ${(cause as Error).message}`);
      }
      const model = importSklearnExport(json, path);
      await writeModelFile(flags.out, model);
      const offset = model.provenance.offset;
      process.stderr.write(
        `iforest import-sklearn: scikit-learn ${String(model.provenance.sklearn_version)}, ${describe(model)}` +
          (typeof offset === "number" ? `; sklearn calls a row an outlier when score > ${-offset}` : "") +
          ` → ${flags.out}\n`,
      );
    });
}

function describe(model: IsolationForestModel): string {
  return `${treeCount(model)} trees, ψ = ${model.maxSamples}, ${model.feature.length} nodes, compare ${model.compare}, hash ${model.hash}`;
}

function list(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined;
  return text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
