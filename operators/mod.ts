/** operators: the names other folders use. Import from here, never from a file inside. */
export {
  observeChunkRows,
  observeRecord,
  type RecordAnalysis,
  recordFields,
  type RecordInput,
  type RowContext,
  type RowTextSpec,
  type RowTextWriter,
} from "./analysis.js";
export {
  formatStatistic,
  roundStatistics,
  STATISTIC_BYTES_MAX,
  writeAscii,
  writeInteger,
  writeStatistic,
  writeStatisticAt,
} from "./number-format.js";
export { rowTextSpecs, rowTextWriter } from "./row-text.js";
