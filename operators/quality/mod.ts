/** operators/quality: the names other folders use. Import from here, never from a file inside. */
export {
  CLEANROOM_GRADES,
  DEFECT_CATEGORIES,
  type DefectCategory,
  type DefectCounts,
  ENVIRONMENT_NUMBERS,
  type EnvironmentNumber,
  PROCESS_PARAMETERS,
  PROCESS_UNITS,
  type ProcessParameter,
  type ProcessRecord,
  type QualityRecord,
  SUPPLIERS,
} from "./batch-record.js";
export {
  BatchFeatureState,
  QUALITY_SERIES,
  QUALITY_SLOPE_TIME_MS,
  QUALITY_STATISTICS,
  QualityFeatureLayout,
  qualityFeatureNames,
} from "./batch-features.js";
export { QUALITY_METADATA_KEYS, QUALITY_MODEL_KIND, type QualityMetadata } from "./model-format.js";
export { QualityModel, type QualityPrediction, qualityPrediction, qualityScore, readQualityMetadata } from "./quality-model.js";
