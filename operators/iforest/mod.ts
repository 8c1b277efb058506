/** operators/iforest: the names other folders use. Import from here, never from a file inside. */
export { type IforestAnalysis, iforestAnalysis, type IforestAnalysisOptions, type IforestModelInfo } from "./iforest.js";
export { modelBytes, writeModel } from "./layout.js";
export {
  buildModel,
  type IforestCompare,
  type IsolationForestModel,
  ModelError,
  parseModel,
  readModelFile,
  treeCount,
  writeModelFile,
} from "./model.js";
export { IforestScorer, scoreMatrix } from "./scorer.js";
