/** operators/prediction: the names other folders use. Import from here, never from a file inside. */
export { FailureModel, type FailurePrediction, MODEL_FILE_BYTES_MAX, readRulFileMetadata } from "./failure-model.js";
export type { RulMetadata } from "./model-format.js";
export { rulFeatureRows } from "./rul-features.js";
