/**
 * What a quality-model ONNX file must hold for linewatch to run it: the graph's input and output
 * names and the metadata_props keys. Shared by the exporter (training/quality-onnx.ts) and the
 * loader (quality-model.ts), so the run time never loads the exporter.
 *
 * Graph: features float32 [N, F] → yield float32 [N, 1] (first-pass yield, a fraction) and
 * defect_probability float32 [N, 4] (per-unit probability of a defect of each category, in
 * DEFECT_CATEGORIES order: packaging, labelling, serialization, other).
 */

export const QUALITY_METADATA_KEYS = {
  /** "quality": tells this file from a failure model. */
  kind: "linewatch.kind",
  /** JSON array of feature names (batch-features.ts). */
  features: "linewatch.features",
  /** JSON array of the defect categories of the defect_probability columns. */
  categories: "linewatch.quality.categories",
  /** Mean first-pass yield of the training batches: the trivial baseline eval reports beside the model. */
  trainYieldMean: "linewatch.quality.train_yield_mean",
  /** What the model was trained on, for people reading the file. */
  trainedOn: "linewatch.trained_on",
  /** Held-out yield MAE at batch end (fraction). */
  validationYieldMae: "linewatch.quality.validation_yield_mae",
} as const;

export const QUALITY_MODEL_KIND = "quality";
export const QUALITY_INPUT_NAME = "features";
export const QUALITY_YIELD_OUTPUT = "yield";
export const QUALITY_DEFECT_OUTPUT = "defect_probability";

export interface QualityMetadata {
  featureNames: readonly string[];
  categories: readonly string[];
  trainYieldMean: number;
  trainedOn: string;
  validationYieldMae: number;
}
