/** operators: the names other folders use. Import from here, never from a file inside. */
export { observeRecord, type RecordAnalysis, recordFields, type RecordInput, type RowContext } from "./analysis.js";
export { formatStatistic } from "./number-format.js";
