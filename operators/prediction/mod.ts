/** operators/prediction: the names other folders use. Import from here, never from a file inside. */
export { FailureModel, type FailurePrediction, MODEL_FILE_BYTES_MAX, readRulFileMetadata } from "./failure-model.js";
export { RUL_OPTIONAL_METADATA_KEYS, type RulMetadata } from "./model-format.js";
export { informativeSensors, parseFeatureName, rulFeatureNames, rulFeatureRows } from "./rul-features.js";
