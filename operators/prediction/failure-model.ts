/**
 * The failure-prediction model at run time: an ONNX file (written by training/onnx-export.ts)
 * run by onnxruntime-node, turning rolling sensor features into remaining useful life (RUL, in
 * cycles), a failure probability and a time to failure.
 *
 * The probability rests on a normal residual model: the true RUL is taken to be the prediction r̂
 * plus a normal error with the standard deviation σ measured on held-out units, so
 *   failure_probability = P(RUL ≤ H) = Φ((H − r̂) / σ),   H = horizonCycles.
 * time_to_failure_hours = max(0, r̂) × cycleHours. r̂ is the network's output clipped to [0, rulCap].
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import * as ort from "onnxruntime-node";
import pkg from "onnx-proto";
import type { onnx as OnnxTypes } from "onnx-proto";
import { LinewatchError, ModelLoadError } from "../../engine/core/mod.js";
import { parseReferenceHistograms, type ReferenceHistograms, referenceMismatch } from "../drift/mod.js";
import { normalCdf } from "../normal.js";
import { RUL_INPUT_NAME, RUL_METADATA_KEYS, RUL_OPTIONAL_METADATA_KEYS, RUL_OUTPUT_NAME, type RulMetadata } from "./model-format.js";
import { parseFeatureName, RUL_FEATURE_STATISTICS } from "./rul-features.js";

const { onnx } = pkg;

export interface FailurePrediction {
  rul_cycles: number;
  failure_probability: number;
  time_to_failure_hours: number;
}

/** An ONNX file is a few KiB here; anything far larger is not one of ours. */
export const MODEL_FILE_BYTES_MAX = 64 << 20;

export class FailureModel {
  /** Reads and loads an .onnx file; any defect is a {@link ModelLoadError}. */
  static async load(path: string): Promise<FailureModel> {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(path);
    } catch (cause) {
      throw new ModelLoadError(path, `cannot read the model file: ${(cause as Error).message}`, { cause });
    }
    return FailureModel.fromBytes(bytes, path);
  }

  /** Loads a model from its bytes; `source` names it in errors and logs. */
  static async fromBytes(bytes: Uint8Array, source: string): Promise<FailureModel> {
    if (bytes.length > MODEL_FILE_BYTES_MAX)
      throw new ModelLoadError(source, `${bytes.length} bytes is more than a model file (${MODEL_FILE_BYTES_MAX} at most)`);
    const meta = readRulMetadata(decodeModel(bytes, source), source);
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 3 });
    } catch (cause) {
      throw new ModelLoadError(source, `onnxruntime cannot load the graph: ${(cause as Error).message}`, { cause });
    }
    if (!session.inputNames.includes(RUL_INPUT_NAME) || !session.outputNames.includes(RUL_OUTPUT_NAME)) {
      const names = `inputs [${session.inputNames.join(", ")}], outputs [${session.outputNames.join(", ")}]`;
      await session.release();
      throw new ModelLoadError(source, `the graph must take "${RUL_INPUT_NAME}" and give "${RUL_OUTPUT_NAME}"; it has ${names}`);
    }
    const version = `rul-mlp-${createHash("sha256").update(bytes).digest("hex").slice(0, 12)}`;
    return new FailureModel(session, meta, version, source);
  }

  readonly featureNames: readonly string[];
  readonly window: number;
  readonly modelVersion: string;
  readonly horizonCycles: number;
  readonly cycleHours: number;
  readonly rulCap: number;
  readonly residualSigma: number;
  readonly trainedOn: string;
  readonly validationRmse: number;
  /**
   * The training rows' histogram per feature, in featureNames order, that drift PSI is measured
   * against; null for a model trained before linewatch stored them (see {@link driftUnavailable}).
   */
  readonly referenceHistograms: ReferenceHistograms | null;
  readonly source: string;
  private session: ort.InferenceSession | null;

  private constructor(session: ort.InferenceSession, meta: RulMetadata, version: string, source: string) {
    this.session = session;
    this.featureNames = Object.freeze([...meta.featureNames]);
    this.window = meta.window;
    this.rulCap = meta.rulCap;
    this.horizonCycles = meta.horizonCycles;
    this.cycleHours = meta.cycleHours;
    this.residualSigma = meta.residualSigma;
    this.trainedOn = meta.trainedOn;
    this.validationRmse = meta.validationRmse;
    this.referenceHistograms = meta.referenceHistograms ?? null;
    this.modelVersion = version;
    this.source = source;
  }

  /** Why drift PSI cannot be measured for this model, or null when it can. */
  get driftUnavailable(): string | null {
    if (this.referenceHistograms !== null) return null;
    return (
      `${this.source} (${this.modelVersion}) has no ${RUL_OPTIONAL_METADATA_KEYS.referenceHistograms}: it was trained before ` +
      "linewatch stored reference histograms, so drift PSI is unavailable for it; retrain with `linewatch predict train`"
    );
  }

  /**
   * Predictions for `rows` feature rows, row-major rows × featureNames.length (raw, unstandardised).
   * A row with a non-finite feature gets NaN in every field (null in JSON), never a made-up value.
   */
  async predict(features: Float64Array, rows: number): Promise<FailurePrediction[]> {
    const raw = await this.rawRul(features, rows);
    const f = this.featureNames.length;
    const out: FailurePrediction[] = new Array(rows);
    for (let r = 0; r < rows; r++) {
      let finite = true;
      for (let j = r * f; j < (r + 1) * f; j++) if (!Number.isFinite(features[j])) finite = false;
      out[r] = finite ? failurePrediction(raw[r], this) : { rul_cycles: NaN, failure_probability: NaN, time_to_failure_hours: NaN };
    }
    return out;
  }

  /** The network's output `rul` for each row, before clipping (float32, as onnxruntime computes it). */
  async rawRul(features: Float64Array, rows: number): Promise<Float32Array> {
    const session = this.session;
    if (session === null) throw new LinewatchError(`${this.source}: the model is closed`);
    const f = this.featureNames.length;
    if (!Number.isInteger(rows) || rows < 0 || features.length !== rows * f) {
      throw new RangeError(`${rows} rows of ${f} features need ${rows * f} values, got ${features.length}`);
    }
    if (rows === 0) return new Float32Array(0);
    const input = new ort.Tensor("float32", Float32Array.from(features), [rows, f]);
    const result = await session.run({ [RUL_INPUT_NAME]: input });
    const rul = result[RUL_OUTPUT_NAME];
    const data = rul.data as Float32Array;
    if (!(data instanceof Float32Array) || data.length !== rows) {
      throw new LinewatchError(`${this.source}: output "${RUL_OUTPUT_NAME}" has ${data.length} values for ${rows} rows`);
    }
    return data;
  }

  async close(): Promise<void> {
    const s = this.session;
    this.session = null;
    if (s !== null) await s.release();
  }
}

/** The prediction for one raw network output, per the normal residual model above. */
export function failurePrediction(
  raw: number,
  p: { rulCap: number; horizonCycles: number; cycleHours: number; residualSigma: number },
): FailurePrediction {
  if (Number.isNaN(raw)) return { rul_cycles: NaN, failure_probability: NaN, time_to_failure_hours: NaN };
  const rul = Math.min(p.rulCap, Math.max(0, raw));
  return {
    rul_cycles: rul,
    failure_probability: failureProbability(rul, p.horizonCycles, p.residualSigma),
    time_to_failure_hours: Math.max(0, rul) * p.cycleHours,
  };
}

/** P(RUL ≤ horizon) = Φ((horizon − rul) / sigma), clamped to [0, 1]. */
export function failureProbability(rul: number, horizon: number, sigma: number): number {
  const p = normalCdf((horizon - rul) / sigma);
  return p < 0 ? 0 : Math.min(p, 1);
}

/**
 * The linewatch metadata of an ONNX failure model's bytes, without starting onnxruntime (the
 * model registry describes files it does not run). Any defect is a {@link ModelLoadError}.
 */
export function readRulFileMetadata(bytes: Uint8Array, source: string): RulMetadata {
  if (bytes.length > MODEL_FILE_BYTES_MAX)
    throw new ModelLoadError(source, `${bytes.length} bytes is more than a model file (${MODEL_FILE_BYTES_MAX} at most)`);
  return readRulMetadata(decodeModel(bytes, source), source);
}

function decodeModel(bytes: Uint8Array, source: string): OnnxTypes.ModelProto {
  let model: OnnxTypes.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (cause) {
    throw new ModelLoadError(source, `not an ONNX model (${(cause as Error).message})`, { cause });
  }
  if (
    model.graph === null ||
    model.graph === undefined ||
    (model.graph.node ?? []).length === 0 ||
    (model.opsetImport ?? []).length === 0
  ) {
    throw new ModelLoadError(source, "not an ONNX model (no graph or no opset)");
  }
  return model;
}

/** Reads and checks the linewatch.* metadata_props; names every missing or invalid entry. */
export function readRulMetadata(model: OnnxTypes.IModelProto, source: string): RulMetadata {
  const props = new Map((model.metadataProps ?? []).map((p) => [p.key ?? "", p.value ?? ""]));
  const k = RUL_METADATA_KEYS;
  const missing = Object.values(k).filter((key) => !props.has(key));
  if (missing.length > 0)
    throw new ModelLoadError(source, `metadata_props missing: ${missing.join(", ")} (not a linewatch failure model?)`);
  const problems: string[] = [];
  const num = (key: string, ok: (v: number) => boolean, what: string): number => {
    const text = props.get(key) as string;
    const v = Number(text);
    if (text.trim() === "" || !Number.isFinite(v) || !ok(v)) problems.push(`${key} = ${JSON.stringify(text)} is not ${what}`);
    return v;
  };
  let featureNames: string[] = [];
  try {
    const parsed: unknown = JSON.parse(props.get(k.features) as string);
    if (!Array.isArray(parsed) || parsed.length === 0 || !parsed.every((s) => typeof s === "string"))
      throw new Error("not a non-empty array of strings");
    for (const name of parsed as string[]) checkModelFeatureName(name);
    if (new Set(parsed).size !== parsed.length) throw new Error("a feature appears twice");
    featureNames = parsed as string[];
  } catch (cause) {
    problems.push(`${k.features} is not a JSON array of "<sensor>.<statistic>" names: ${(cause as Error).message}`);
  }
  const meta: RulMetadata = {
    featureNames,
    window: num(k.window, (v) => Number.isInteger(v) && v >= 1 && v <= 65535, "an integer window in 1..65535"),
    rulCap: num(k.rulCap, (v) => v > 0, "a positive number of cycles"),
    horizonCycles: num(k.horizonCycles, (v) => v >= 0, "a number of cycles ≥ 0"),
    cycleHours: num(k.cycleHours, (v) => v > 0, "a positive number of hours"),
    residualSigma: num(k.residualSigma, (v) => v > 0, "a positive number of cycles"),
    trainedOn: props.get(k.trainedOn) as string,
    validationRmse: num(k.validationRmse, (v) => v >= 0, "a number ≥ 0"),
    referenceHistograms: null,
    trainingFingerprint: props.get(RUL_OPTIONAL_METADATA_KEYS.trainingFingerprint) ?? null,
  };
  const referenceText = props.get(RUL_OPTIONAL_METADATA_KEYS.referenceHistograms);
  if (referenceText !== undefined) {
    // A damaged reference is the file's defect like any other: the model does not load.
    meta.referenceHistograms = parseReferenceHistograms(referenceText, source);
    const mismatch = featureNames.length > 0 ? referenceMismatch(meta.referenceHistograms, featureNames) : null;
    if (mismatch !== null) problems.push(`${RUL_OPTIONAL_METADATA_KEYS.referenceHistograms}: ${mismatch}`);
  }
  const input = model.graph?.input?.find((i) => i.name === RUL_INPUT_NAME);
  const dims = input?.type?.tensorType?.shape?.dim;
  const width = dims !== undefined && dims !== null && dims.length === 2 ? Number(dims[1].dimValue ?? 0) : 0;
  if (featureNames.length > 0 && width !== 0 && width !== featureNames.length) {
    problems.push(`${k.features} names ${featureNames.length} features, the graph input "${RUL_INPUT_NAME}" takes ${width}`);
  }
  if (problems.length > 0) throw new ModelLoadError(source, `invalid metadata: ${problems.join("; ")}`);
  return meta;
}

/**
 * A model feature is `<sensor_type>.<statistic>` with a statistic the model may use: the sensor
 * type is the plant's (C-MAPSS s1…s21 for a model trained on C-MAPSS, `vibration` for one trained
 * on the simulator's wear), so only its form is checked here — but a C-MAPSS-style name (s<n>)
 * must be one of s1…s21; the run checks that its source has the sensor.
 */
function checkModelFeatureName(name: string): void {
  if (/^s\d+\./.test(name)) {
    parseFeatureName(name);
    return;
  }
  const dot = name.lastIndexOf(".");
  const sensor = dot > 0 ? name.slice(0, dot) : "";
  const statistic = dot > 0 ? name.slice(dot + 1) : "";
  if (!/^[A-Za-z0-9_-]+$/.test(sensor)) throw new Error(`"${name}": the sensor type "${sensor}" is empty or not a plain name`);
  if (!(RUL_FEATURE_STATISTICS as readonly string[]).includes(statistic))
    throw new Error(`"${name}": statistic "${statistic}" is not one of ${RUL_FEATURE_STATISTICS.join(", ")}`);
}
