/**
 * The quality model at run time: an ONNX file (written by training/quality-onnx.ts) run by
 * onnxruntime-node, turning a batch's feature row (batch-features.ts) into its predicted
 * first-pass yield and the per-unit probability of a defect of each category.
 *
 *   predicted_yield        the network's `yield`, clipped to [0, 1]
 *   defect_probability[c]  the network's `defect_probability` (a sigmoid: in (0, 1))
 *   predicted_defect_rate  Σ_c defect_probability[c] (categories are exclusive: a unit counts in one)
 *   quality_score          100 × predicted_yield: the expected share of units passing first inspection, in %
 *
 * onnxruntime-node and the ONNX schema load with the first model, not with this module: the wire
 * codecs and the simulator import this folder's record types.
 */
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { readFile } from "node:fs/promises";
import type * as Ort from "onnxruntime-node";
import type { onnx as OnnxTypes } from "onnx-proto";
import { LinewatchError, ModelLoadError } from "../../engine/core/mod.js";
import { DEFECT_CATEGORIES, type DefectCounts } from "./batch-record.js";
import { QualityFeatureLayout } from "./batch-features.js";
import {
  QUALITY_DEFECT_OUTPUT,
  QUALITY_INPUT_NAME,
  QUALITY_METADATA_KEYS,
  QUALITY_MODEL_KIND,
  QUALITY_YIELD_OUTPUT,
  type QualityMetadata,
} from "./model-format.js";

export interface QualityPrediction {
  predicted_yield: number;
  defect_probability: DefectCounts;
  predicted_defect_rate: number;
  quality_score: number;
}

/** A quality model file is a few tens of KiB; anything far larger is not one of ours. */
const QUALITY_MODEL_BYTES_MAX = 64 << 20;

export class QualityModel {
  static async load(path: string): Promise<QualityModel> {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(path);
    } catch (cause) {
      throw new ModelLoadError(path, `cannot read the model file: ${(cause as Error).message}`, { cause });
    }
    return QualityModel.fromBytes(bytes, path);
  }

  /** Loads a model from its bytes; `source` names it in errors. Any defect is a {@link ModelLoadError}. */
  static async fromBytes(bytes: Uint8Array, source: string): Promise<QualityModel> {
    if (bytes.length > QUALITY_MODEL_BYTES_MAX)
      throw new ModelLoadError(source, `${bytes.length} bytes is more than a model file (${QUALITY_MODEL_BYTES_MAX} at most)`);
    const meta = readQualityMetadata(bytes, source);
    const ort = await import("onnxruntime-node");
    let session: Ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 3 });
    } catch (cause) {
      throw new ModelLoadError(source, `onnxruntime cannot load the graph: ${(cause as Error).message}`, { cause });
    }
    const outputs = [QUALITY_YIELD_OUTPUT, QUALITY_DEFECT_OUTPUT];
    if (!session.inputNames.includes(QUALITY_INPUT_NAME) || !outputs.every((o) => session.outputNames.includes(o))) {
      const names = `inputs [${session.inputNames.join(", ")}], outputs [${session.outputNames.join(", ")}]`;
      await session.release();
      throw new ModelLoadError(source, `the graph must take "${QUALITY_INPUT_NAME}" and give ${outputs.join(", ")}; it has ${names}`);
    }
    const version = `quality-mlp-${createHash("sha256").update(bytes).digest("hex").slice(0, 12)}`;
    return new QualityModel(session, ort.Tensor, meta, version, source, readFeatureMean(bytes, meta.featureNames.length));
  }

  readonly featureNames: readonly string[];
  /** Reads feature rows out of a BatchFeatureState in this model's order. */
  readonly layout: QualityFeatureLayout;
  readonly trainYieldMean: number;
  readonly trainedOn: string;
  readonly validationYieldMae: number;
  readonly modelVersion: string;
  readonly source: string;
  /** The training mean of each feature (the graph's `feature_mean` initializer), null when the graph has none: the drivers' reference. */
  readonly featureMean: Float32Array | null;
  private session: Ort.InferenceSession | null;

  private constructor(
    session: Ort.InferenceSession,
    private readonly tensor: typeof Ort.Tensor,
    meta: QualityMetadata,
    version: string,
    source: string,
    featureMean: Float32Array | null,
  ) {
    this.session = session;
    this.featureMean = featureMean;
    this.featureNames = Object.freeze([...meta.featureNames]);
    this.layout = new QualityFeatureLayout(meta.featureNames);
    this.trainYieldMean = meta.trainYieldMean;
    this.trainedOn = meta.trainedOn;
    this.validationYieldMae = meta.validationYieldMae;
    this.modelVersion = version;
    this.source = source;
  }

  /** Predictions for `rows` feature rows (row-major). A row with a non-finite feature gets NaN everywhere (null in JSON). */
  async predict(features: Float64Array, rows: number): Promise<QualityPrediction[]> {
    const raw = await this.rawOutputs(features, rows);
    const f = this.featureNames.length;
    const out: QualityPrediction[] = new Array(rows);
    for (let r = 0; r < rows; r++) {
      let finite = true;
      for (let j = r * f; j < (r + 1) * f; j++) if (!Number.isFinite(features[j])) finite = false;
      out[r] = qualityPrediction(finite ? raw.yield[r] : Number.NaN, raw.defects, finite ? r : -1);
    }
    return out;
  }

  /** The graph's two outputs for the rows, as onnxruntime computes them (float32). */
  async rawOutputs(features: Float64Array, rows: number): Promise<{ yield: Float32Array; defects: Float32Array }> {
    const session = this.session;
    if (session === null) throw new LinewatchError(`${this.source}: the model is closed`);
    const f = this.featureNames.length;
    if (!Number.isInteger(rows) || rows < 0 || features.length !== rows * f)
      throw new RangeError(`${rows} rows of ${f} features need ${rows * f} values, got ${features.length}`);
    if (rows === 0) return { yield: new Float32Array(0), defects: new Float32Array(0) };
    const input = new this.tensor("float32", Float32Array.from(features), [rows, f]);
    const result = await session.run({ [QUALITY_INPUT_NAME]: input });
    const y = result[QUALITY_YIELD_OUTPUT].data;
    const d = result[QUALITY_DEFECT_OUTPUT].data;
    if (!(y instanceof Float32Array) || !(d instanceof Float32Array) || y.length !== rows || d.length !== rows * DEFECT_CATEGORIES.length)
      throw new LinewatchError(`${this.source}: the outputs do not have ${rows} rows`);
    return { yield: y, defects: d };
  }

  async close(): Promise<void> {
    const s = this.session;
    this.session = null;
    if (s !== null) await s.release();
  }
}

/** The prediction from a raw yield and row `row` of the defect probabilities (row −1: NaN everywhere). */
export function qualityPrediction(rawYield: number, defects: ArrayLike<number>, row: number): QualityPrediction {
  const k = DEFECT_CATEGORIES.length;
  const at = (c: number) => (row < 0 ? Number.NaN : defects[row * k + c]);
  const defect_probability: DefectCounts = { packaging: at(0), labelling: at(1), serialization: at(2), other: at(3) };
  const predicted_yield = Number.isNaN(rawYield) ? Number.NaN : Math.min(1, Math.max(0, rawYield));
  return {
    predicted_yield,
    defect_probability,
    predicted_defect_rate: at(0) + at(1) + at(2) + at(3),
    quality_score: qualityScore(predicted_yield),
  };
}

/** 100 × predicted yield (see the module comment). */
export function qualityScore(predictedYield: number): number {
  return 100 * predictedYield;
}

/** The `feature_mean` initializer of the graph (training/quality-onnx.ts standardises with it), or null when absent or of another width. */
export function readFeatureMean(bytes: Uint8Array, width: number): Float32Array | null {
  const onnx = (createRequire(import.meta.url)("onnx-proto") as { onnx: typeof OnnxTypes }).onnx;
  const init = onnx.ModelProto.decode(bytes).graph?.initializer?.find((t) => t.name === "feature_mean");
  if (init === undefined || init === null) return null;
  let values: Float32Array;
  if (init.floatData !== undefined && init.floatData !== null && init.floatData.length > 0) values = Float32Array.from(init.floatData);
  else if (init.rawData !== undefined && init.rawData !== null && init.rawData.length === width * 4)
    values = new Float32Array(Uint8Array.from(init.rawData).buffer);
  else return null;
  return values.length === width ? values : null;
}

/** Reads and checks the linewatch metadata of a quality model's bytes; names every missing or invalid entry. */
export function readQualityMetadata(bytes: Uint8Array, source: string): QualityMetadata {
  const onnx = (createRequire(import.meta.url)("onnx-proto") as { onnx: typeof OnnxTypes }).onnx;
  let model: OnnxTypes.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (cause) {
    throw new ModelLoadError(source, `not an ONNX model (${(cause as Error).message})`, { cause });
  }
  const props = new Map((model.metadataProps ?? []).map((p) => [p.key ?? "", p.value ?? ""]));
  const k = QUALITY_METADATA_KEYS;
  if (props.get(k.kind) !== QUALITY_MODEL_KIND)
    throw new ModelLoadError(
      source,
      `${k.kind} is ${JSON.stringify(props.get(k.kind) ?? null)}, not "${QUALITY_MODEL_KIND}" (not a quality model)`,
    );
  const missing = Object.values(k).filter((key) => !props.has(key));
  if (missing.length > 0) throw new ModelLoadError(source, `metadata_props missing: ${missing.join(", ")}`);
  const problems: string[] = [];
  const names = (key: string): string[] => {
    try {
      const v: unknown = JSON.parse(props.get(key) as string);
      if (Array.isArray(v) && v.length > 0 && v.every((s) => typeof s === "string")) return v as string[];
    } catch {
      // reported below
    }
    problems.push(`${key} is not a JSON array of names`);
    return [];
  };
  const featureNames = names(k.features);
  const categories = names(k.categories);
  if (categories.length > 0 && categories.join() !== DEFECT_CATEGORIES.join())
    problems.push(`${k.categories} is ${JSON.stringify(categories)}, this build reads ${JSON.stringify(DEFECT_CATEGORIES)}`);
  try {
    if (featureNames.length > 0) new QualityFeatureLayout(featureNames);
  } catch (cause) {
    problems.push((cause as Error).message);
  }
  const num = (key: string): number => {
    const v = Number(props.get(key));
    if (!Number.isFinite(v)) problems.push(`${key} = ${JSON.stringify(props.get(key))} is not a number`);
    return v;
  };
  const meta: QualityMetadata = {
    featureNames,
    categories,
    trainYieldMean: num(k.trainYieldMean),
    trainedOn: props.get(k.trainedOn) as string,
    validationYieldMae: num(k.validationYieldMae),
  };
  if (problems.length > 0) throw new ModelLoadError(source, `invalid metadata: ${problems.join("; ")}`);
  return meta;
}
