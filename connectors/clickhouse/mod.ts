/** connectors/clickhouse: the names other folders use. Import from here, never from a file inside. */
export type {
  AlertRow,
  ClickHouseRows,
  ClickHouseTable,
  EquipmentHealthRow,
  MaintenancePredictionRow,
  QuarantineRow,
  ScoreRow,
  SensorDataRow,
  SerialDetectionRow,
} from "./schema.js";
export { ClickHouseSink } from "./sink.js";
