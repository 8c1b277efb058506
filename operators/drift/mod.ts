/** operators/drift: the names other folders use. Import from here, never from a file inside. */
export {
  DEFAULT_PSI_MONITOR_OPTIONS,
  DRIFT_LEVELS,
  type DriftChange,
  type DriftLevel,
  type FeatureDrift,
  PsiMonitor,
  type PsiMonitorOptions,
  type PsiMonitorSnapshot,
  validateMonitorOptions,
} from "./monitor.js";
export {
  type ChangeDirection,
  DEFAULT_PAGE_HINKLEY_OPTIONS,
  type MeanChange,
  PageHinkley,
  type PageHinkleyOptions,
  validatePageHinkley,
} from "./page-hinkley.js";
export { mixtureCrossing, PSI_RING_BYTES_MAX, PSI_SMOOTHING, PSI_WINDOW_MAX, psiFromCounts, SlidingPsi } from "./psi.js";
export {
  binIndex,
  buildReferenceHistograms,
  DEFAULT_REFERENCE_BINS,
  type FeatureHistogram,
  parseReferenceHistograms,
  REFERENCE_BINS_MAX,
  REFERENCE_FEATURES_MAX,
  REFERENCE_FORMAT,
  REFERENCE_FORMAT_VERSION,
  REFERENCE_JSON_BYTES_MAX,
  referenceFromJson,
  ReferenceHistogramError,
  type ReferenceHistograms,
  referenceMismatch,
  referenceToJson,
  referenceToText,
  trainingFingerprint,
} from "./reference.js";
export { Adwin, type AdwinChange, type AdwinOptions, DEFAULT_ADWIN_OPTIONS, validateAdwin } from "./adwin.js";
