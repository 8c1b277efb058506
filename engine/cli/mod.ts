/** engine/cli: the `linewatch` program (for tests that parse without running) and the flag parsers the bench command shares. */
export { buildProgram } from "./program.js";
export { durationOption, integerOption, numberOption } from "./options.js";
export { parseRunAnalysisSettings, type RunAnalysisSettings, runAnalyses, runAnalysisSpecs } from "./run-settings.js";
export {
  DEFAULT_SIM_MODEL_OPTIONS,
  defaultCacheDir,
  type FeatureTrace,
  SIM_MODEL_SENSORS,
  type SimModel,
  type SimModelReport,
  simFailureModel,
  simulateFeatures,
} from "./sim-failure-model.js";
