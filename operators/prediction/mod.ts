/** operators/prediction: the names other folders use. Import from here, never from a file inside. */
export { FailureModel, type FailurePrediction } from "./failure-model.js";
export { rulFeatureRows } from "./rul-features.js";
