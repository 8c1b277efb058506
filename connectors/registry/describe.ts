/**
 * What the registry reads from a model file itself: RUL models are ONNX with linewatch.*
 * metadata_props (operators/prediction/model-format.ts), iforest models are linewatch-iforest JSON
 * (operators/iforest/model.ts), quality models are ONNX with linewatch.* metadata_props
 * (operators/quality/model-format.ts). A field the file does not hold is null, never guessed.
 */
import { ModelLoadError, RegistryError } from "../../engine/core/mod.js";
import type { ReferenceHistograms } from "../../operators/drift/mod.js";
import { parseModel } from "../../operators/iforest/mod.js";
import { readRulFileMetadata } from "../../operators/prediction/mod.js";
import { readQualityMetadata } from "../../operators/quality/mod.js";
import type { ModelEntry, ModelKind } from "./record.js";

/** The entry's fields that come from the file. */
export type ModelFacts = Pick<ModelEntry, "format" | "training_data" | "training_fingerprint" | "features" | "metrics" | "details">;

/** Reads the facts of `bytes` as a `kind` model; a file that is not one is {@link RegistryError} "wrong_kind". */
export function describeModel(bytes: Uint8Array, kind: ModelKind, fileName: string): ModelFacts {
  try {
    if (kind === "rul") return rulFacts(bytes, fileName);
    if (kind === "iforest") return iforestFacts(bytes, fileName);
    return qualityFacts(bytes, fileName);
  } catch (cause) {
    if (!(cause instanceof ModelLoadError)) throw cause;
    const other = recognisedKind(bytes, fileName, kind);
    const hint = other === null ? "" : ` (it is a model of kind ${other}; push it with --kind ${other})`;
    throw new RegistryError("wrong_kind", `${fileName} is not a model of kind ${kind}: ${cause.message}${hint}`, { cause });
  }
}

function qualityFacts(bytes: Uint8Array, fileName: string): ModelFacts {
  const meta = readQualityMetadata(bytes, fileName);
  return {
    format: "onnx (linewatch quality model)",
    training_data: meta.trainedOn,
    training_fingerprint: null,
    features: [...meta.featureNames],
    metrics: { validation_yield_mae: meta.validationYieldMae },
    details: { categories: [...meta.categories], train_yield_mean: meta.trainYieldMean },
  };
}

function rulFacts(bytes: Uint8Array, fileName: string): ModelFacts {
  const meta = readRulFileMetadata(bytes, fileName);
  return {
    format: "onnx (linewatch failure model)",
    training_data: meta.trainedOn,
    training_fingerprint: meta.trainingFingerprint ?? null,
    features: [...meta.featureNames],
    metrics: { validation_rmse: meta.validationRmse, residual_sigma: meta.residualSigma },
    details: {
      window: meta.window,
      rul_cap: meta.rulCap,
      horizon_cycles: meta.horizonCycles,
      cycle_hours: meta.cycleHours,
      reference_histograms: referenceSummary(meta.referenceHistograms ?? null),
    },
  };
}

function iforestFacts(bytes: Uint8Array, fileName: string): ModelFacts {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (cause) {
    throw new ModelLoadError(fileName, "not UTF-8 text (an iforest model is JSON)", { cause });
  }
  const model = parseModel(text, fileName);
  const p = model.provenance;
  const trainingData = typeof p.training_data === "string" ? p.training_data : null;
  return {
    format: `linewatch-iforest v${model.version}`,
    training_data: trainingData,
    training_fingerprint: typeof p.training_fingerprint === "string" ? p.training_fingerprint : null,
    features: [...model.featureNames],
    // An isolation forest is trained without labels: the file holds no validation metric.
    metrics: null,
    details: {
      trees: model.treeOffsets.length - 1,
      max_samples: model.maxSamples,
      compare: model.compare,
      model_hash: model.hash,
      provenance: p,
      reference_histograms: referenceSummary(model.referenceHistograms ?? null),
    },
  };
}

/**
 * Whether the file holds the training reference histograms drift PSI needs: their size when it
 * does, and a sentence saying PSI is unavailable when it does not (a model trained before them).
 */
function referenceSummary(ref: ReferenceHistograms | null): {
  present: boolean;
  features?: number;
  bins_max?: number;
  rows?: number;
  note?: string;
} {
  if (ref === null)
    return { present: false, note: "no reference histograms (trained before linewatch stored them): drift PSI unavailable" };
  return { present: true, features: ref.features.length, bins_max: Math.max(...ref.features.map((h) => h.counts.length)), rows: ref.rows };
}

/** The other kind the bytes are a model of, else null. */
function recognisedKind(bytes: Uint8Array, fileName: string, not: ModelKind): ModelKind | null {
  for (const kind of (["rul", "iforest", "quality"] as const).filter((k) => k !== not)) {
    try {
      if (kind === "rul") rulFacts(bytes, fileName);
      else if (kind === "iforest") iforestFacts(bytes, fileName);
      else qualityFacts(bytes, fileName);
      return kind;
    } catch (cause) {
      if (!(cause instanceof ModelLoadError)) throw cause;
    }
  }
  return null;
}
