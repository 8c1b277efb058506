/** connectors/clickhouse: the names other folders use. Import from here, never from a file inside. */
export {
  type AuditColumns,
  auditColumns,
  type ColumnEncoding,
  encodeScoreColumns,
  encodeSensorDataColumns,
  type KeyNames,
  type KeyRules,
  keyNames,
  type LabelNames,
  labelNames,
  type ReadingColumns,
  type ReadingEncodeOptions,
  type RejectedRow,
  type ScoreColumns,
  type ScoreEncodeOptions,
  type ScoreLayout,
} from "./reading-columns.js";
export { isNativeBlock, type NativeBlock, nativeToRowBinary, NativeWriter } from "./native.js";
export {
  appendScoreNative,
  appendSensorDataNative,
  encodeScoreNative,
  encodeSensorDataNative,
  type NativeEncoding,
  type NativeReadingOptions,
  type NativeScoreOptions,
  SharedReadingCells,
} from "./native-columns.js";
export { type EncodedRows, encodeRowBinaryString, RowBinaryWriter } from "./row-binary.js";
export {
  ALERT_SEVERITIES,
  type AlertRow,
  type AuditConfigRow,
  DEFAULT_CLICKHOUSE_DATABASE,
  TABLE_SCHEMAS,
  type ClickHouseRows,
  type ClickHouseTable,
  createSchema,
  decodeRowBinary,
  type EquipmentHealthRow,
  encodeRow,
  encodeRowBinary,
  episodeVersion,
  isDateTimeMs,
  type MaintenancePredictionRow,
  type ModelRow,
  type QuarantineRow,
  type ScoreRow,
  type SensorDataRow,
  type SerialDetectionRow,
} from "./schema.js";
export { ClickHouseSink } from "./sink.js";
export { ClickHouseReader, type ClickHouseReaderOptions, sqlString, type StoredRow } from "./reader.js";
export { EncodeError } from "../errors.js";
