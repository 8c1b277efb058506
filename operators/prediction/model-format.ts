/**
 * What a failure-prediction ONNX file must hold for linewatch to run it: the graph's input and
 * output names and the metadata_props keys. Shared by the exporter (training/onnx-export.ts) and
 * the loader (failure-model.ts), so the run time never loads the exporter.
 */
import type { ReferenceHistograms } from "../drift/mod.js";

/** The metadata_props keys; a model without every one of them does not load. */
export const RUL_METADATA_KEYS = {
  features: "linewatch.features",
  window: "linewatch.window",
  rulCap: "linewatch.rul_cap",
  horizonCycles: "linewatch.horizon_cycles",
  cycleHours: "linewatch.cycle_hours",
  residualSigma: "linewatch.residual_sigma",
  trainedOn: "linewatch.trained_on",
  validationRmse: "linewatch.validation_rmse",
} as const;

/**
 * Optional metadata_props keys: a model without them loads (it was written before they existed),
 * with the feature they serve unavailable.
 */
export const RUL_OPTIONAL_METADATA_KEYS = {
  /**
   * The training rows' reference histograms (operators/drift reference.ts JSON, one per feature in
   * the order of linewatch.features): drift PSI is measured against them. Absent: PSI unavailable.
   */
  referenceHistograms: "linewatch.reference_histograms",
  /** "sha256:<hex>" of the training rows (operators/drift trainingFingerprint). Absent: not recorded. */
  trainingFingerprint: "linewatch.training_fingerprint",
} as const;

export const RUL_INPUT_NAME = "features";
export const RUL_OUTPUT_NAME = "rul";

/** What a model's metadata_props say (one member per {@link RUL_METADATA_KEYS} key). */
export interface RulMetadata {
  featureNames: readonly string[];
  /** Rolling count window the features are computed over. */
  window: number;
  rulCap: number;
  horizonCycles: number;
  cycleHours: number;
  /** Standard deviation of (predicted − true) RUL on held-out units, in cycles. */
  residualSigma: number;
  /** What the model was trained on (file, units, seed, epochs), for people reading the file. */
  trainedOn: string;
  /** Held-out RMSE over every row of the held-out units, in cycles. */
  validationRmse: number;
  /**
   * The training rows' histograms per feature ({@link RUL_OPTIONAL_METADATA_KEYS}); null (or
   * absent in a spec) for a model written without them, whose drift PSI is unavailable.
   */
  referenceHistograms?: ReferenceHistograms | null;
  /** The training rows' fingerprint ({@link RUL_OPTIONAL_METADATA_KEYS}); null when the file does not record it. */
  trainingFingerprint?: string | null;
}
