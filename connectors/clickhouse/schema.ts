/**
 * The ClickHouse tables linewatch writes, their row types, and how a row becomes one
 * JSONEachRow line. linewatch creates the tables when they are missing (`CREATE TABLE IF NOT
 * EXISTS`) and adds to a table an earlier version made the columns added since
 * ({@link ADDED_COLUMNS}); it never drops or changes a column.
 *
 * Goals
 * - Valid on ClickHouse 18.16 (Debian) and on current ClickHouse: only MergeTree-family engines
 *   with the `PARTITION BY … ORDER BY …` syntax, String / Float64 / UInt* / Int8 / DateTime /
 *   Nullable / Array(String). Nothing 18.16 lacks (LowCardinality, DateTime64, TTL, CODEC,
 *   column DEFAULTs on JSONEachRow inserts) and nothing current servers removed (the old
 *   `MergeTree(date, key, 8192)` syntax). No Nullable column is part of a sorting key (current
 *   servers refuse that unless `allow_nullable_key`).
 * - Dashboards ask "this machine (and sensor) over this time range": every table of readings
 *   and events sorts by machine first, time next, and is partitioned by month of that time.
 *   (ml_audit_configs, a handful of settings documents, is keyed by its hash, unpartitioned.)
 * - Idempotent on retry and replay. Each table's sorting key is its row key — deterministic,
 *   built only from the row's content — and the engine is `ReplacingMergeTree(version)`: rows
 *   with the same key collapse to the one with the highest `version` (the last inserted among
 *   equals) when parts merge. A batch inserted twice (a retried insert whose answer was lost, a
 *   JetStream redelivery, a replay after a partition moves) leaves one row per key.
 *
 * Reading without duplicates. Merges happen in the background, so until one has run a key can
 * have several rows. Either
 *   SELECT … FROM ml_scores FINAL WHERE machine_id = 'M1' AND timestamp >= now() - 3600
 * (FINAL merges at read time; exact, costs more on large ranges), or aggregate on the key:
 *   SELECT machine_id, sensor_type, timestamp_ms, seq, argMax(iforest_score, version) AS iforest_score
 *   FROM ml_scores WHERE … GROUP BY machine_id, sensor_type, timestamp_ms, seq
 * Counting distinct keys: `SELECT count() FROM t FINAL`. `OPTIMIZE TABLE t FINAL` forces the merge.
 * The partition key is a function of the row key, so two rows of one key are never in different
 * partitions (ReplacingMergeTree only collapses within a partition).
 *
 * Times. 18.16 has no DateTime64, so every time is two columns written from one epoch-ms value:
 * `x DateTime` (whole seconds, UTC; what Grafana's time macros and `toStartOfMinute(x)` use) and
 * `x_ms UInt64` (the exact epoch milliseconds). Both are written by the sink, so they never
 * disagree; sub-millisecond parts are dropped. (A MATERIALIZED DateTime computed from `x_ms`
 * was the alternative; it is left out of `SELECT *`, which surprises dashboard authors.)
 *
 * Enum-like values (risk levels, severities, states) are String: LowCardinality needs a setting
 * on 18.16. Statistics that can be undefined (a window not yet full, no SPC limits yet, no model)
 * are Nullable(Float64) and NULL then, never NaN.
 *
 * One declaration per table. Each table is a list of columns (name, type, nullability, and the
 * column's checked value in a row object); the CREATE statement, the JSONEachRow line, the
 * RowBinary row (row-binary.ts) and the INSERT's column list all come from it, so they cannot
 * disagree. The column encoders of ml_sensor_data and ml_scores (reading-columns.ts), which skip
 * the row objects, are checked against it by test/clickhouse-row-binary.test.ts.
 *
 * Float64 precision: 18.16's text parser (JSONEachRow, toFloat64(String)) rounds about 6 % of
 * doubles to a neighbour, 1 ulp away (measured; its SQL literals and current servers are exact).
 * A 1e-16 relative error is far below any sensor's. RowBinary carries the exact double; since it
 * names no column, its INSERT names them (a table missing one is refused by name).
 */
import { EncodeError } from "../errors.js";
import {
  type ColumnSpec,
  type ColumnType,
  type ColumnValue,
  columnDefinition,
  columnTypeName,
  decimalOf,
  decimalText,
  readColumnValue,
  RowBinaryReader,
  type RowBinaryWriter,
  scaledDecimal,
  writeColumnValue,
} from "./row-binary.js";

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/** Epoch milliseconds, UTC. */
export type EpochMs = number;
/** A statistic that may be undefined: null, undefined and NaN/±Inf are all stored as NULL. */
export type Stat = number | null | undefined;

export const CLICKHOUSE_TABLES = [
  "ml_sensor_data",
  "ml_scores",
  "ml_alerts",
  "ml_serial_detections",
  "ml_quarantine",
  "ml_maintenance_predictions",
  "ml_equipment_health",
  "ml_models",
  "ml_audit_configs",
  "ml_quality_predictions",
  "ml_quality_outcomes",
] as const;
export type ClickHouseTable = (typeof CLICKHOUSE_TABLES)[number];

/** Risk of a machine (the seed's maintenance tables). */
export const MACHINE_RISK_LEVELS = ["low", "medium", "high", "critical"] as const;
export type MachineRiskLevel = (typeof MACHINE_RISK_LEVELS)[number];
/** Risk of a serial (operators/serial/score.ts RISK_LEVELS, "none" included). */
export const SERIAL_RISK_LEVELS = ["none", "low", "medium", "high", "critical"] as const;
export type SerialRiskLevel = (typeof SERIAL_RISK_LEVELS)[number];
export const ALERT_SEVERITIES = ["low", "medium", "high"] as const;
export type AlertSeverityLevel = (typeof ALERT_SEVERITIES)[number];

/** One raw reading (ml_sensor_data). */
export interface SensorDataRow {
  machine_id: string;
  sensor_type: string;
  timestamp: EpochMs;
  sensor_value: number;
  sensor_unit?: string;
  operating_mode?: string;
  work_order_id?: string;
  /**
   * The reading's position in its source, the same on every replay: the JetStream stream
   * sequence for a single-record message; for a frame's readings, stream sequence × 65 536 (the
   * NATS input's largest `frameReadingsMax`) + the reading's index in the frame, exact up to
   * sequence 2^37 − 1 (connectors/nats/sensor-input.ts `frameSeq`); the input row of a file replay; on
   * core NATS the same with the message's index in the run instead of a stream sequence. Part of
   * the row key, so two readings of one key in one millisecond both stay.
   * 0 (default) when the source has none: then one reading per key and millisecond is kept.
   */
  seq?: number;
}

/** The scores of one reading (ml_scores): rolling statistics, SPC, isolation forest. */
export interface ScoreRow {
  machine_id: string;
  sensor_type: string;
  timestamp: EpochMs;
  /** As {@link SensorDataRow.seq}. */
  seq?: number;
  value: number;
  // Rolling statistics (operators/rolling/rolling.ts ROLLING_FIELDS).
  count?: Stat;
  mean?: Stat;
  std?: Stat;
  std_pop?: Stat;
  min?: Stat;
  max?: Stat;
  slope?: Stat;
  ewma?: Stat;
  z?: Stat;
  // SPC (operators/spc/layout.ts SPC_FIELDS).
  cl?: Stat;
  ucl?: Stat;
  lcl?: Stat;
  sigma?: Stat;
  /** Signed zone of the point (−4…4: beyond 3σ is ±4), null without limits. */
  zone?: Stat;
  /** Western Electric rules 1–4 fired at this point, bit k−1 = rule k. */
  we_mask?: number;
  /** Nelson rules 1–8 fired at this point, bit k−1 = rule k. */
  nelson_mask?: number;
  /**
   * Moving-range rules fired at this point (operators/spc/layout.ts MR_RULES): bit 0 JUMP,
   * bit 1 NOISY, bit 2 STUCK.
   */
  mr_mask?: number;
  cusum_pos?: Stat;
  cusum_neg?: Stat;
  cusum_alarm?: boolean;
  spc_ewma?: Stat;
  ewma_ucl?: Stat;
  ewma_lcl?: Stat;
  ewma_alarm?: boolean;
  /** Version of the key's SPC limits (0: none yet). Also the row's `version`. */
  limits_version?: number;
  iforest_score?: Stat;
  /** Content hash of the isolation-forest model that scored it ("" without one): the audit record's model_version. */
  model_hash?: string;
  /** Audit record (docs/commands/audit.md): SHA-256 of the kernel module that computed the row ("" when auditing is off). */
  kernel_hash?: string;
  /** Audit record: SHA-256 of the canonical settings document, kept in ml_audit_configs ("" when auditing is off). */
  config_hash?: string;
}

/** The settings document behind a config_hash (ml_audit_configs), stored once per run and kernel. */
export interface AuditConfigRow {
  config_hash: string;
  kernel_hash: string;
  /** When a run first stored it. */
  created_at: EpochMs;
  /** The canonical JSON whose SHA-256 is config_hash. */
  config: string;
}

export interface AlertPointRow {
  position: number;
  time: number;
  value: number;
}

/** An SPC alert episode's state (ml_alerts); operators/spc/alerts.ts AlertEpisodeEvent has these members. */
export interface AlertRow {
  /** Deterministic from the stream (key, family, opening time and position). */
  episode_id: string;
  /** The engine's key (e.g. `M1/temperature`). */
  key: string;
  machine_id: string;
  sensor_type: string;
  /** Rule family (`level`, `variation`). */
  family: string;
  /** Rules fired so far, in the order first seen. */
  rules: readonly string[];
  first_rule: string;
  description?: string;
  severity: AlertSeverityLevel;
  state: "open" | "closed";
  opened_at: EpochMs;
  last_fired_at: EpochMs;
  closed_at?: EpochMs | null;
  firings: number;
  limits_version: number;
  cl?: Stat;
  sigma?: Stat;
  /** The pattern's points at the first firing (stored as a JSON string). */
  points: readonly AlertPointRow[] | string;
  acknowledged_at?: EpochMs | null;
  acknowledged_by?: string | null;
  ack_note?: string | null;
}

/** One serial event the serial analysis flagged (ml_serial_detections). */
export interface SerialDetectionRow {
  serial_number: string;
  gtin: string;
  batch_number: string;
  machine_id: string;
  operator_id?: string;
  /** Production time of the serial. */
  detected_at: EpochMs;
  /** As {@link SensorDataRow.seq}. */
  seq?: number;
  anomaly_types: readonly string[];
  reasons: readonly string[];
  anomaly_score: number;
  confidence_level?: number;
  risk_level: SerialRiskLevel;
  /** Whether this detection put the serial on the quarantine list. */
  quarantined?: boolean;
}

/** One quarantine-list entry (ml_quarantine); a release writes the same entry again with `released_at`. */
export interface QuarantineRow {
  serial_number: string;
  gtin: string;
  batch_number: string;
  machine_id: string;
  operator_id?: string;
  /** Production time of the first quarantined occurrence. */
  production_at: EpochMs;
  /** Source position (JetStream sequence, input row) of the first quarantined occurrence; part of the key. 0 (default) when there is none. */
  seq?: number;
  /** When linewatch quarantined it (wall clock): not part of the key, so a replay after a restart writes the same row. */
  quarantined_at: EpochMs;
  released_at?: EpochMs | null;
  release_note?: string;
  anomaly_types: readonly string[];
  reasons: readonly string[];
  anomaly_score: number;
  confidence_level?: number;
  risk_level: SerialRiskLevel;
  occurrences?: number;
}

/** A failure prediction (the seed's ml_maintenance_predictions). */
export interface MaintenancePredictionRow {
  machine_id: string;
  predicted_at: EpochMs;
  /** 0…1. */
  failure_probability: number;
  time_to_failure_hours?: Stat;
  /** Predicted remaining useful life, in the model's cycles (NULL for a model that gives none). */
  rul_cycles?: Stat;
  risk_level: MachineRiskLevel;
  model_version: string;
  /** The features the model saw (stored as a JSON string). */
  features: Readonly<Record<string, number | string | null>> | string;
}

/** A machine's health (the seed's ml_equipment_health). */
export interface EquipmentHealthRow {
  machine_id: string;
  computed_at: EpochMs;
  /** 0…100. */
  health_score: number;
  risk_level: MachineRiskLevel;
}

/** Stages of a registered model (connectors/registry record.ts MODEL_STAGES). */
export const MODEL_ROW_STAGES = ["candidate", "production", "archived"] as const;

/** A model registry entry (connectors/registry), as ml_models mirrors it; a change of stage writes the row again. */
export interface ModelRow {
  /** SHA-256 hex of the model file: its version. */
  id: string;
  kind: string;
  stage: (typeof MODEL_ROW_STAGES)[number];
  format: string;
  file_name: string;
  size_bytes: number;
  created_at: EpochMs;
  training_data: string | null;
  training_fingerprint: string | null;
  /** The input features it reads, in order (empty when the file does not say). */
  features: readonly string[] | null;
  /** Validation metrics (stored as a JSON string; "" when the file holds none). */
  metrics: Readonly<Record<string, number>> | null;
  /** The command line that pushed it, and the user and host it ran as. */
  made_by: string;
  made_by_user: string;
  made_by_host: string;
  notes: string | null;
  /** When the entry last changed stage (its push, else the latest promote or rollback): the row's version. */
  stage_changed_at: EpochMs;
}

/** One prediction of a batch's quality (ml_quality_predictions): the quality job's, while the batch runs and at its end. */
export interface QualityPredictionRow {
  line_id: string;
  work_order_id: string;
  batch_id: string;
  /** Event time of the latest reading scored. */
  predicted_at: EpochMs;
  progress: number;
  readings: number;
  final: boolean;
  predicted_yield: number;
  predicted_defect_rate: number;
  defect_probability: Readonly<Record<"packaging" | "labelling" | "serialization" | "other", number>>;
  quality_score: number;
  model_version: string;
}

/** A batch's quality outcome with its final prediction (ml_quality_outcomes). */
export interface QualityOutcomeRow {
  line_id: string;
  work_order_id: string;
  batch_id: string;
  completed_at: EpochMs;
  units_produced: number;
  first_pass_yield: number;
  defect_rate: number;
  defects: Readonly<Record<"packaging" | "labelling" | "serialization" | "other", number>>;
  predicted_yield: number | null;
  predicted_defect_rate: number | null;
}

/** The row type of each table. */
export interface ClickHouseRows {
  ml_sensor_data: SensorDataRow;
  ml_scores: ScoreRow;
  ml_alerts: AlertRow;
  ml_serial_detections: SerialDetectionRow;
  ml_quarantine: QuarantineRow;
  ml_maintenance_predictions: MaintenancePredictionRow;
  ml_equipment_health: EquipmentHealthRow;
  ml_models: ModelRow;
  ml_audit_configs: AuditConfigRow;
  ml_quality_predictions: QualityPredictionRow;
  ml_quality_outcomes: QualityOutcomeRow;
}

/** One column of a table: what CREATE TABLE says of it, and its value in a row. */
export interface Column<R> extends ColumnSpec {
  /** The column's value of `row`, checked against the table's rules (EncodeError when it breaks one). */
  value(row: R): ColumnValue;
}

export interface TableSchema<R> {
  name: ClickHouseTable;
  /**
   * The columns in table order, `version` last: the one declaration that the CREATE statement,
   * the JSONEachRow line, the RowBinary row and the INSERT's column list are all made from.
   */
  columns: readonly Column<R>[];
  /** The CREATE TABLE IF NOT EXISTS statement in `database`. */
  create(database: string): string;
  /** Columns of the row key (the sorting key), in order. */
  key: readonly string[];
  /** One JSONEachRow line (no newline); throws EncodeError for a row that breaks the table's rules. */
  encode(row: R): string;
}

/** Row keys (the sorting keys) of the tables, in order. */
const READING_KEY = ["machine_id", "sensor_type", "timestamp", "timestamp_ms", "seq"] as const;
const ALERT_KEY = ["machine_id", "sensor_type", "family", "opened_at", "opened_at_ms", "episode_id"] as const;
const DETECTION_KEY = ["machine_id", "detected_at", "detected_at_ms", "gtin", "serial_number", "seq"] as const;
const QUARANTINE_KEY = ["machine_id", "production_at", "production_at_ms", "gtin", "serial_number", "seq"] as const;
const PREDICTION_KEY = ["machine_id", "predicted_at", "predicted_at_ms", "model_version"] as const;
const HEALTH_KEY = ["machine_id", "computed_at", "computed_at_ms"] as const;
const MODEL_KEY = ["kind", "id"] as const;
const QUALITY_PREDICTION_KEY = ["line_id", "batch_id", "predicted_at", "predicted_at_ms", "final", "model_version"] as const;
const QUALITY_OUTCOME_KEY = ["line_id", "batch_id"] as const;

/*
 * ml_sensor_data — raw readings, one row per reading.
 * key: (machine_id, sensor_type, timestamp, timestamp_ms, seq)   version: 0 (replays are identical)
 */
const SENSOR_DATA_COLUMNS: readonly Column<SensorDataRow>[] = [
  text("machine_id", (r) => r.machine_id),
  text("sensor_type", (r) => r.sensor_type),
  ...times<SensorDataRow>("timestamp", (r) => r.timestamp),
  column("sensor_value", "Float64", (r) => finite(r.sensor_value, "sensor_value")),
  optText("sensor_unit", (r) => r.sensor_unit),
  optText("operating_mode", (r) => r.operating_mode),
  optText("work_order_id", (r) => r.work_order_id),
  column("seq", "UInt64", (r) => optUint(r.seq, "seq")),
  column("version", "UInt64", () => 0),
];

/*
 * ml_scores — what the analyses computed for one reading. NULL where a statistic is undefined
 * or the analysis is not configured. Masks and alarms are 0 then.
 * key: as ml_sensor_data   version: limits_version (a re-scoring with newer SPC limits wins)
 * mr_mask came after the others: a table made by an earlier version needs `ALTER TABLE ml_scores
 * ADD COLUMN mr_mask UInt8 AFTER nelson_mask` (docs/clickhouse.md, "Upgrading tables").
 */
const SCORE_COLUMNS: readonly Column<ScoreRow>[] = [
  text("machine_id", (r) => r.machine_id),
  text("sensor_type", (r) => r.sensor_type),
  ...times<ScoreRow>("timestamp", (r) => r.timestamp),
  column("seq", "UInt64", (r) => optUint(r.seq, "seq")),
  column("value", "Float64", (r) => finite(r.value, "value")),
  column("count", "UInt32", (r) => statInRange(r.count, "count", 0, 0xffffffff, "a UInt32"), true),
  ...(["mean", "std", "std_pop", "min", "max", "slope", "ewma", "z", "cl", "ucl", "lcl", "sigma"] as const).map((f) =>
    statistic<ScoreRow>(f, (r) => r[f]),
  ),
  column("zone", "Int8", (r) => statInRange(r.zone, "zone", -128, 127, "an Int8"), true),
  column("we_mask", "UInt8", (r) => mask(r.we_mask, "we_mask", 0x0f)),
  column("nelson_mask", "UInt8", (r) => mask(r.nelson_mask, "nelson_mask", 0xff)),
  column("mr_mask", "UInt8", (r) => mask(r.mr_mask, "mr_mask", 0x07)),
  statistic("cusum_pos", (r) => r.cusum_pos),
  statistic("cusum_neg", (r) => r.cusum_neg),
  column("cusum_alarm", "UInt8", (r) => (r.cusum_alarm === true ? 1 : 0)),
  statistic("spc_ewma", (r) => r.spc_ewma),
  statistic("ewma_ucl", (r) => r.ewma_ucl),
  statistic("ewma_lcl", (r) => r.ewma_lcl),
  column("ewma_alarm", "UInt8", (r) => (r.ewma_alarm === true ? 1 : 0)),
  column("limits_version", "UInt32", (r) => optUint(r.limits_version, "limits_version")),
  statistic("iforest_score", (r) => r.iforest_score),
  optText("model_hash", (r) => r.model_hash),
  optText("kernel_hash", (r) => r.kernel_hash),
  optText("config_hash", (r) => r.config_hash),
  column("version", "UInt64", (r) => optUint(r.limits_version, "limits_version")),
];

/*
 * ml_alerts — SPC alert episodes, one row per episode: written at each of its events (opened,
 * updated, closed, acknowledged) with its whole state, so FINAL shows its latest. The key is
 * deterministic from the stream, so a restart that re-derives an episode writes the same row.
 * key: (machine_id, sensor_type, family, opened_at, opened_at_ms, episode_id)
 * version: firings + 2^32 once acknowledged + 2^33 once closed — monotone in the episode's life
 * (more firings beat fewer, acknowledged beats not, closed beats open), so no later write of an
 * earlier state wins. A table made by an earlier version (one row per rule firing run, keyed by
 * rule) must be recreated (docs/clickhouse.md, "Upgrading tables").
 */
const ALERT_COLUMNS: readonly Column<AlertRow>[] = [
  text("episode_id", (r) => r.episode_id),
  text("key", (r) => r.key),
  text("machine_id", (r) => r.machine_id),
  text("sensor_type", (r) => r.sensor_type),
  text("family", (r) => r.family),
  column("rules", "Array(String)", (r) => strings(r.rules, "rules")),
  text("first_rule", (r) => r.first_rule),
  optText("description", (r) => r.description),
  column("severity", "String", (r) => oneOf(r.severity, "severity", ALERT_SEVERITIES)),
  column("state", "String", alertState),
  ...times<AlertRow>("opened_at", (r) => r.opened_at),
  ...times<AlertRow>("last_fired_at", (r) => r.last_fired_at),
  ...optTimes<AlertRow>("closed_at", (r) => r.closed_at),
  column("firings", "UInt32", (r) => uint32(r.firings, "firings")),
  column("limits_version", "UInt32", (r) => uint(r.limits_version, "limits_version")),
  statistic("cl", (r) => r.cl),
  statistic("sigma", (r) => r.sigma),
  column("points", "String", (r) => (typeof r.points === "string" ? r.points : JSON.stringify(r.points))),
  ...optTimes<AlertRow>("acknowledged_at", (r) => r.acknowledged_at),
  optText("acknowledged_by", (r) => r.acknowledged_by ?? undefined),
  optText("ack_note", (r) => r.ack_note ?? undefined),
  column("version", "UInt64", alertVersion),
];

/*
 * ml_serial_detections — serial events the serial analysis flagged (anomaly_score > 0).
 * key: (machine_id, detected_at, detected_at_ms, gtin, serial_number, seq)   version: 0
 */
const DETECTION_COLUMNS: readonly Column<SerialDetectionRow>[] = [
  ...serialIdentity<SerialDetectionRow>(),
  ...times<SerialDetectionRow>("detected_at", (r) => r.detected_at),
  column("seq", "UInt64", (r) => optUint(r.seq, "seq")),
  ...serialFindings<SerialDetectionRow>(),
  column("quarantined", "UInt8", (r) => (r.quarantined === true ? 1 : 0)),
  column("version", "UInt64", () => 0),
];

/*
 * ml_quarantine — the quarantine list. One entry per (gtin, serial) and first quarantined
 * occurrence (its production time and source position): deterministic from the events, so a
 * restart from a serial checkpoint that quarantines an entry again writes the same row (the
 * wall-clock `quarantined_at` is a column, not part of the key). A release writes the entry
 * again with released_at.
 *   current list: SELECT … FROM ml_quarantine FINAL WHERE released_at IS NULL
 * key: (machine_id, production_at, production_at_ms, gtin, serial_number, seq)
 * version: occurrences, + 2^32 once released (released beats quarantined)
 * A table made by an earlier version (keyed by quarantined_at) must be recreated: ORDER BY
 * cannot be altered (docs/clickhouse.md, "Upgrading tables").
 */
const QUARANTINE_COLUMNS: readonly Column<QuarantineRow>[] = [
  ...serialIdentity<QuarantineRow>(),
  ...times<QuarantineRow>("production_at", (r) => r.production_at),
  column("seq", "UInt64", (r) => optUint(r.seq, "seq")),
  ...times<QuarantineRow>("quarantined_at", (r) => r.quarantined_at),
  ...optTimes<QuarantineRow>("released_at", (r) => r.released_at),
  optText("release_note", (r) => r.release_note),
  ...serialFindings<QuarantineRow>(),
  column("occurrences", "UInt32", occurrences),
  column("version", "UInt64", (r) => (r.released_at === null || r.released_at === undefined ? 0 : 2 ** 32) + occurrences(r)),
];

/*
 * ml_maintenance_predictions — the seed's failure predictions, one per machine and time.
 * key: (machine_id, predicted_at, predicted_at_ms, model_version)   version: 0
 */
const PREDICTION_COLUMNS: readonly Column<MaintenancePredictionRow>[] = [
  text("machine_id", (r) => r.machine_id),
  ...times<MaintenancePredictionRow>("predicted_at", (r) => r.predicted_at),
  column("failure_probability", "Float64", (r) => inRange(r.failure_probability, "failure_probability", 0, 1)),
  statistic("time_to_failure_hours", (r) => r.time_to_failure_hours),
  statistic("rul_cycles", (r) => r.rul_cycles),
  column("risk_level", "String", (r) => oneOf(r.risk_level, "risk_level", MACHINE_RISK_LEVELS)),
  text("model_version", (r) => r.model_version),
  column("features", "String", (r) => (typeof r.features === "string" ? r.features : JSON.stringify(r.features))),
  column("version", "UInt64", () => 0),
];

/*
 * ml_equipment_health — the seed's health score of a machine over time.
 * key: (machine_id, computed_at, computed_at_ms)   version: 0
 */
const HEALTH_COLUMNS: readonly Column<EquipmentHealthRow>[] = [
  text("machine_id", (r) => r.machine_id),
  ...times<EquipmentHealthRow>("computed_at", (r) => r.computed_at),
  column("health_score", "Float64", (r) => inRange(r.health_score, "health_score", 0, 100)),
  column("risk_level", "String", (r) => oneOf(r.risk_level, "risk_level", MACHINE_RISK_LEVELS)),
  column("version", "UInt64", () => 0),
];

/*
 * ml_models — the model registry mirrored (connectors/registry; `linewatch models`), one row per
 * entry. Not a machine's table: it sorts by kind and id; its partition (the month of created_at)
 * is fixed by the id, so every row of an entry lands in one partition.
 * key: (kind, id)   version: stage_changed_at_ms (the entry's latest stage wins)
 *   current production models: SELECT kind, id, file_name FROM ml_models FINAL WHERE stage = 'production'
 */
const MODEL_COLUMNS: readonly Column<ModelRow>[] = [
  text("kind", (r) => r.kind),
  text("id", (r) => r.id),
  column("stage", "String", (r) => oneOf(r.stage, "stage", MODEL_ROW_STAGES)),
  text("format", (r) => r.format),
  text("file_name", (r) => r.file_name),
  column("size_bytes", "UInt64", (r) => optUint(r.size_bytes, "size_bytes")),
  ...times<ModelRow>("created_at", (r) => r.created_at),
  column("training_data", "String", (r) => (r.training_data === null ? null : str(r.training_data, "training_data")), true),
  column(
    "training_fingerprint",
    "String",
    (r) => (r.training_fingerprint === null ? null : str(r.training_fingerprint, "training_fingerprint")),
    true,
  ),
  column("features", "Array(String)", (r) => strings(r.features ?? [], "features")),
  column("metrics", "String", (r) => (r.metrics === null ? "" : JSON.stringify(r.metrics))),
  text("made_by", (r) => r.made_by),
  text("made_by_user", (r) => r.made_by_user),
  text("made_by_host", (r) => r.made_by_host),
  column("notes", "String", (r) => (r.notes === null ? null : str(r.notes, "notes")), true),
  ...times<ModelRow>("stage_changed_at", (r) => r.stage_changed_at),
  column("version", "UInt64", (r) => wholeMs(r.stage_changed_at, "stage_changed_at")),
];

/*
 * ml_audit_configs — the settings document behind each config_hash of ml_scores (the audit
 * record, docs/commands/audit.md): written once when an audited run starts.
 *   SELECT config FROM ml_audit_configs FINAL WHERE config_hash = '…'
 * key: (config_hash, kernel_hash)   version: 0. Not partitioned: a handful of rows.
 */
const AUDIT_CONFIG_COLUMNS: readonly Column<AuditConfigRow>[] = [
  text("config_hash", (r) => r.config_hash),
  text("kernel_hash", (r) => r.kernel_hash),
  ...times<AuditConfigRow>("created_at", (r) => r.created_at),
  text("config", (r) => r.config),
  column("version", "UInt64", () => 0),
];

/*
 * ml_quality_predictions — the quality job's predictions of running batches (issue 16): every
 * --quality-interval of a batch and at its end (final = 1). Plain types only (ClickHouse 18.16).
 * key: (line_id, batch_id, predicted_at, predicted_at_ms, final, model_version)   version: 0
 */
const QUALITY_PREDICTION_COLUMNS: readonly Column<QualityPredictionRow>[] = [
  text("line_id", (r) => r.line_id),
  text("work_order_id", (r) => r.work_order_id),
  text("batch_id", (r) => r.batch_id),
  ...times<QualityPredictionRow>("predicted_at", (r) => r.predicted_at),
  statistic("progress", (r) => r.progress),
  column("readings", "UInt32", (r) => uint32(r.readings, "readings")),
  column("final", "UInt8", (r) => (r.final ? 1 : 0)),
  statistic("predicted_yield", (r) => r.predicted_yield),
  statistic("predicted_defect_rate", (r) => r.predicted_defect_rate),
  statistic("p_packaging", (r) => r.defect_probability.packaging),
  statistic("p_labelling", (r) => r.defect_probability.labelling),
  statistic("p_serialization", (r) => r.defect_probability.serialization),
  statistic("p_other", (r) => r.defect_probability.other),
  statistic("quality_score", (r) => r.quality_score),
  text("model_version", (r) => r.model_version),
  column("version", "UInt64", () => 0),
];

/*
 * ml_quality_outcomes — each batch's quality record joined to its final prediction (NULL when the
 * run never scored the batch). key: (line_id, batch_id)   version: 0
 */
const QUALITY_OUTCOME_COLUMNS: readonly Column<QualityOutcomeRow>[] = [
  text("line_id", (r) => r.line_id),
  text("work_order_id", (r) => r.work_order_id),
  text("batch_id", (r) => r.batch_id),
  ...times<QualityOutcomeRow>("completed_at", (r) => r.completed_at),
  column("units_produced", "UInt32", (r) => uint32(r.units_produced, "units_produced")),
  column("first_pass_yield", "Float64", (r) => finite(r.first_pass_yield, "first_pass_yield")),
  column("defect_rate", "Float64", (r) => finite(r.defect_rate, "defect_rate")),
  column("defects_packaging", "UInt32", (r) => uint32(r.defects.packaging, "defects.packaging")),
  column("defects_labelling", "UInt32", (r) => uint32(r.defects.labelling, "defects.labelling")),
  column("defects_serialization", "UInt32", (r) => uint32(r.defects.serialization, "defects.serialization")),
  column("defects_other", "UInt32", (r) => uint32(r.defects.other, "defects.other")),
  statistic("predicted_yield", (r) => r.predicted_yield),
  statistic("predicted_defect_rate", (r) => r.predicted_defect_rate),
  column("version", "UInt64", () => 0),
];

export const TABLE_SCHEMAS: { readonly [T in ClickHouseTable]: TableSchema<ClickHouseRows[T]> } = {
  ml_sensor_data: table("ml_sensor_data", READING_KEY, "timestamp", SENSOR_DATA_COLUMNS),
  ml_scores: table("ml_scores", READING_KEY, "timestamp", SCORE_COLUMNS),
  ml_alerts: table("ml_alerts", ALERT_KEY, "opened_at", ALERT_COLUMNS),
  ml_serial_detections: table("ml_serial_detections", DETECTION_KEY, "detected_at", DETECTION_COLUMNS),
  ml_quarantine: table("ml_quarantine", QUARANTINE_KEY, "production_at", QUARANTINE_COLUMNS),
  ml_maintenance_predictions: table("ml_maintenance_predictions", PREDICTION_KEY, "predicted_at", PREDICTION_COLUMNS),
  ml_equipment_health: table("ml_equipment_health", HEALTH_KEY, "computed_at", HEALTH_COLUMNS),
  ml_models: table("ml_models", MODEL_KEY, "created_at", MODEL_COLUMNS),
  ml_audit_configs: table("ml_audit_configs", ["config_hash", "kernel_hash"], null, AUDIT_CONFIG_COLUMNS),
  ml_quality_predictions: table("ml_quality_predictions", QUALITY_PREDICTION_KEY, "predicted_at", QUALITY_PREDICTION_COLUMNS),
  ml_quality_outcomes: table("ml_quality_outcomes", QUALITY_OUTCOME_KEY, "completed_at", QUALITY_OUTCOME_COLUMNS),
};

export const DEFAULT_CLICKHOUSE_DATABASE = "default";

/** A database name usable unquoted in SQL (letters, digits, underscore; not starting with a digit). */
export function isDatabaseName(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(name);
}

/** The statements that create the database (unless `default`) and every table, in order. */
export function schemaStatements(database: string = DEFAULT_CLICKHOUSE_DATABASE): string[] {
  if (!isDatabaseName(database))
    throw new EncodeError("invalid_field", "database", `not a plain SQL identifier: ${JSON.stringify(database)}`);
  const out = database === "default" ? [] : [`CREATE DATABASE IF NOT EXISTS ${database}`];
  for (const t of CLICKHOUSE_TABLES) out.push(TABLE_SCHEMAS[t].create(database));
  return out;
}

/**
 * Columns added to a table after its first version, with the column each follows. A table an
 * earlier linewatch made keeps its old columns (CREATE TABLE IF NOT EXISTS leaves it as it is),
 * so {@link createSchema} adds these when missing: `ALTER TABLE … ADD COLUMN … AFTER …`, which
 * 18.16 and current servers take; rows written before read the type's default (0, NULL).
 */
export const ADDED_COLUMNS: ReadonlyArray<{ table: ClickHouseTable; column: string; after: string }> = [
  { table: "ml_maintenance_predictions", column: "rul_cycles", after: "time_to_failure_hours" },
  { table: "ml_scores", column: "mr_mask", after: "nelson_mask" },
  { table: "ml_scores", column: "kernel_hash", after: "model_hash" },
  { table: "ml_scores", column: "config_hash", after: "kernel_hash" },
];

/**
 * Runs {@link schemaStatements} with any client that can run a statement (e.g. `@clickhouse/client`'s
 * `command`); with `columnsOf` (a table's column names on the server), then adds the
 * {@link ADDED_COLUMNS} a table lacks. Returns the ALTER statements it ran.
 */
export async function createSchema(
  run: (sql: string) => Promise<unknown>,
  database: string = DEFAULT_CLICKHOUSE_DATABASE,
  columnsOf?: (table: ClickHouseTable) => Promise<ReadonlySet<string>>,
): Promise<string[]> {
  for (const sql of schemaStatements(database)) await run(sql);
  if (columnsOf === undefined) return [];
  const altered: string[] = [];
  for (const added of ADDED_COLUMNS) {
    if ((await columnsOf(added.table)).has(added.column)) continue;
    const column = (TABLE_SCHEMAS[added.table].columns as readonly ColumnSpec[]).find((c) => c.name === added.column);
    if (column === undefined) throw new Error(`ADDED_COLUMNS names ${added.table}.${added.column}, which the table does not declare`);
    const sql = `ALTER TABLE ${database}.${added.table} ADD COLUMN ${added.column} ${columnTypeName(column)} AFTER ${added.after}`;
    await run(sql);
    altered.push(sql);
  }
  return altered;
}

/** Encodes one row of `table`; throws EncodeError when it breaks the table's rules. */
export function encodeRow<T extends ClickHouseTable>(table: T, row: ClickHouseRows[T]): string {
  return (TABLE_SCHEMAS[table] as TableSchema<ClickHouseRows[T]>).encode(row);
}

/**
 * Writes one row of `table` as RowBinary and ends it; throws EncodeError (having written nothing
 * of it) when it breaks the table's rules. Statistics go in as the exact doubles of the row.
 */
export function encodeRowBinary<T extends ClickHouseTable>(table: T, row: ClickHouseRows[T], writer: RowBinaryWriter): void {
  const columns = (TABLE_SCHEMAS[table] as TableSchema<ClickHouseRows[T]>).columns;
  try {
    for (const c of columns) writeColumnValue(writer, c, c.value(row));
  } catch (error) {
    writer.abortRow();
    throw error;
  }
  writer.endRow();
}

/** RowBinary rows of `table` read back as objects by column name (DateTime in seconds); for dead letters and tests. */
export function decodeRowBinary(table: ClickHouseTable, bytes: Uint8Array): Record<string, ColumnValue>[] {
  const columns = TABLE_SCHEMAS[table].columns;
  const reader = new RowBinaryReader(bytes);
  const rows: Record<string, ColumnValue>[] = [];
  while (!reader.done) {
    const row: Record<string, ColumnValue> = {};
    for (const c of columns) row[c.name] = readColumnValue(reader, c);
    rows.push(row);
  }
  return rows;
}

/** `(a, b, …)`: the columns of `table` in order, as an INSERT names them. */
export function insertColumnList(table: ClickHouseTable): string {
  return `(${TABLE_SCHEMAS[table].columns.map((c) => c.name).join(", ")})`;
}

export function isClickHouseTable(name: string): name is ClickHouseTable {
  return (CLICKHOUSE_TABLES as readonly string[]).includes(name);
}

// ---------------------------------------------------------------------------------------------
// Tables from their columns
// ---------------------------------------------------------------------------------------------

/** `partitionBy`: the time column whose month partitions the table; null: one partition. */
function table<R>(
  name: ClickHouseTable,
  key: readonly string[],
  partitionBy: string | null,
  columns: readonly Column<R>[],
): TableSchema<R> {
  const definitions = columns.map((c) => `  ${columnDefinition(c)}`).join(",\n");
  return {
    name,
    columns,
    key,
    // ReplacingMergeTree on version: a row written again, by a replay or a restart, replaces the
    // one with the same key; monthly partitions on the table's time column; the row key sorts.
    create: (db) => `CREATE TABLE IF NOT EXISTS ${db}.${name} (
${definitions}
) ENGINE = ReplacingMergeTree(version)
${partitionBy === null ? "" : `PARTITION BY toYYYYMM(${partitionBy})\n`}ORDER BY (${key.join(", ")})`,
    encode: columns.some((c) => c.type.startsWith("Decimal(")) ? jsonByText(columns) : jsonByObject(columns),
  };
}

/**
 * The JSONEachRow line as JSON.stringify of one object of the columns in order. The object comes
 * from a literal made once per table: V8 stringifies an object of one fixed shape on its fast path,
 * and assigning the members one by one instead cost 20 % more per row, joining text 45 % (measured
 * on ml_scores rows). The names are the declaration's own, quoted by JSON.stringify.
 */
function jsonByObject<R>(columns: readonly Column<R>[]): (row: R) => string {
  const literal = `return {${columns.map((c, i) => `${JSON.stringify(c.name)}: v[${i}]`).join(", ")}};`;
  const shape = new Function("v", literal) as (values: ColumnValue[]) => object;
  const values: ColumnValue[] = new Array(columns.length);
  return (row) => {
    for (let i = 0; i < columns.length; i++) values[i] = columns[i].value(row);
    return JSON.stringify(shape(values));
  };
}

/** The JSONEachRow line joined as text, for a table with a Decimal column: JSON.stringify cannot write its exact digits unquoted, and 18.16 refuses a quoted Decimal. */
function jsonByText<R>(columns: readonly Column<R>[]): (row: R) => string {
  const parts = columns.map((c, i) => ({
    prefix: `${i === 0 ? "{" : ","}${JSON.stringify(c.name)}:`,
    value: c.value,
    decimalScale: c.type.startsWith("Decimal(") ? decimalOf(c.type).scale : -1,
  }));
  return (row) => {
    let line = "";
    for (const c of parts) {
      const v = c.value(row);
      line += c.prefix + (c.decimalScale >= 0 && v !== null ? decimalJson(v, c.decimalScale) : (JSON.stringify(v) ?? "null"));
    }
    return `${line}}`;
  };
}

function decimalJson(v: ColumnValue, scale: number): string {
  if (typeof v !== "bigint" && typeof v !== "string" && typeof v !== "number")
    throw new EncodeError("wrong_type", "Decimal", "expected a decimal number");
  return decimalText(scaledDecimal(v, scale), scale);
}

function column<R>(name: string, type: ColumnType, value: (row: R) => ColumnValue, nullable = false): Column<R> {
  return { name, type, nullable, value };
}

function text<R>(name: string, get: (row: R) => string): Column<R> {
  return column(name, "String", (r) => str(get(r), name));
}

/** A String that is "" when the row leaves it out. */
function optText<R>(name: string, get: (row: R) => string | undefined): Column<R> {
  return column(name, "String", (r) => optStr(get(r), name));
}

/** Nullable(Float64): NULL for null, undefined, NaN and ±Infinity. */
function statistic<R>(name: string, get: (row: R) => Stat): Column<R> {
  return column(name, "Float64", (r) => stat(get(r)), true);
}

/** A time as two columns: `name DateTime` (whole seconds) and `name_ms UInt64` (exact milliseconds). */
function times<R>(name: string, get: (row: R) => EpochMs): [Column<R>, Column<R>] {
  return [
    column(name, "DateTime", (r) => Math.floor(wholeMs(get(r), name) / 1000)),
    column(`${name}_ms`, "UInt64", (r) => wholeMs(get(r), name)),
  ];
}

/** As {@link times}, both NULL when the row has no time. */
function optTimes<R>(name: string, get: (row: R) => EpochMs | null | undefined): [Column<R>, Column<R>] {
  const at = (r: R) => {
    const ms = get(r);
    return ms === null || ms === undefined ? null : wholeMs(ms, name);
  };
  return [
    column(
      name,
      "DateTime",
      (r) => {
        const ms = at(r);
        return ms === null ? null : Math.floor(ms / 1000);
      },
      true,
    ),
    column(`${name}_ms`, "UInt64", at, true),
  ];
}

/** A serial's identity and where it was printed, as ml_serial_detections and ml_quarantine store them. */
function serialIdentity<R extends SerialDetectionRow | QuarantineRow>(): Column<R>[] {
  return [
    text("serial_number", (r) => r.serial_number),
    text("gtin", (r) => r.gtin),
    text("batch_number", (r) => r.batch_number),
    text("machine_id", (r) => r.machine_id),
    optText("operator_id", (r) => r.operator_id),
  ];
}

/** What the serial analysis found, as ml_serial_detections and ml_quarantine store it. */
function serialFindings<R extends SerialDetectionRow | QuarantineRow>(): Column<R>[] {
  return [
    column("anomaly_types", "Array(String)", (r) => strings(r.anomaly_types, "anomaly_types")),
    column("reasons", "Array(String)", (r) => strings(r.reasons, "reasons")),
    column("anomaly_score", "Float64", (r) => finite(r.anomaly_score, "anomaly_score")),
    column("confidence_level", "Float64", (r) => (r.confidence_level === undefined ? 0 : finite(r.confidence_level, "confidence_level"))),
    column("risk_level", "String", (r) => oneOf(r.risk_level, "risk_level", SERIAL_RISK_LEVELS)),
  ];
}

/** An episode row's version (its ReplacingMergeTree keeps the highest): firings + 2^32 once acknowledged + 2^33 once closed. */
export function episodeVersion(closed: boolean, acknowledged: boolean, firings: number): number {
  return (closed ? 2 ** 33 : 0) + (acknowledged ? 2 ** 32 : 0) + firings;
}

function alertVersion(r: AlertRow): number {
  const acknowledged = r.acknowledged_at !== null && r.acknowledged_at !== undefined;
  return episodeVersion(alertState(r) === "closed", acknowledged, uint32(r.firings, "firings"));
}

function alertState(r: AlertRow): "open" | "closed" {
  const state = oneOf(r.state, "state", ["open", "closed"] as const);
  if (state === "closed" && (r.closed_at === null || r.closed_at === undefined))
    throw new EncodeError("missing_field", "closed_at", "a closed episode needs closed_at");
  return state;
}

function occurrences(r: QuarantineRow): number {
  return r.occurrences === undefined ? 1 : uint32(r.occurrences, "occurrences");
}

// ---------------------------------------------------------------------------------------------
// Field checks
// ---------------------------------------------------------------------------------------------

/** DateTime is UInt32 seconds: 1970-01-01 … 2106-02-07. */
const DATETIME_MS_END = 2 ** 32 * 1000;

/** Whether an epoch-ms time fits a DateTime column (and so its `_ms` column). */
export function isDateTimeMs(ms: number): boolean {
  return ms >= 0 && ms < DATETIME_MS_END;
}

/** The whole milliseconds of a time (sub-millisecond parts dropped); EncodeError when DateTime cannot hold it. */
function wholeMs(ms: EpochMs, field: string): number {
  if (typeof ms !== "number" || !Number.isFinite(ms))
    throw new EncodeError("bad_timestamp", field, `not a finite epoch-ms number: ${String(ms)}`);
  if (!isDateTimeMs(ms)) throw new EncodeError("bad_timestamp", field, `${ms} is outside DateTime's range (1970 … 2106)`);
  return Math.floor(ms);
}

function str(v: string, field: string): string {
  if (typeof v !== "string")
    throw new EncodeError(v === undefined || v === null ? "missing_field" : "wrong_type", field, "expected a string");
  return v;
}

function optStr(v: string | undefined, field: string): string {
  return v === undefined ? "" : str(v, field);
}

function finite(v: number, field: string): number {
  if (typeof v !== "number")
    throw new EncodeError(v === undefined || v === null ? "missing_field" : "wrong_type", field, "expected a number");
  if (!Number.isFinite(v)) throw new EncodeError("not_finite", field, String(v));
  return v;
}

function inRange(v: number, field: string, lo: number, hi: number): number {
  const x = finite(v, field);
  if (x < lo || x > hi) throw new EncodeError("invalid_field", field, `${x} is outside ${lo}…${hi}`);
  return x;
}

function stat(v: Stat): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** A Nullable integer statistic: NULL when undefined, else an integer in lo…hi. */
function statInRange(v: Stat, field: string, lo: number, hi: number, what: string): number | null {
  const x = stat(v);
  if (x !== null && !(Number.isInteger(x) && x >= lo && x <= hi)) throw new EncodeError("invalid_field", field, `not ${what}: ${x}`);
  return x;
}

function uint(v: number, field: string): number {
  const x = finite(v, field);
  if (!Number.isSafeInteger(x) || x < 0) throw new EncodeError("invalid_field", field, `not a non-negative integer: ${x}`);
  return x;
}

function uint32(v: number, field: string): number {
  const x = uint(v, field);
  if (x > 0xffffffff) throw new EncodeError("invalid_field", field, `not a UInt32: ${x}`);
  return x;
}

function optUint(v: number | undefined, field: string): number {
  return v === undefined ? 0 : uint(v, field);
}

function mask(v: number | undefined, field: string, bits: number): number {
  const x = optUint(v, field);
  if ((x & ~bits) !== 0 || x > bits) throw new EncodeError("invalid_field", field, `bits outside 0x${bits.toString(16)}: ${x}`);
  return x;
}

function oneOf<const V extends string>(v: string, field: string, allowed: readonly V[]): V {
  if (!(allowed as readonly string[]).includes(v))
    throw new EncodeError("invalid_field", field, `${JSON.stringify(v)} is not one of ${allowed.join(", ")}`);
  return v as V;
}

function strings(v: readonly string[], field: string): readonly string[] {
  if (!Array.isArray(v) || v.some((s) => typeof s !== "string")) throw new EncodeError("wrong_type", field, "expected an array of strings");
  return v;
}
