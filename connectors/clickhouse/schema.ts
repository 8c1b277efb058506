/**
 * The ClickHouse tables linewatch writes, their row types, and how a row becomes one
 * JSONEachRow line. linewatch creates the tables when they are missing (`CREATE TABLE IF NOT
 * EXISTS`, never ALTER or DROP).
 *
 * Goals
 * - Valid on ClickHouse 18.16 (Debian) and on current ClickHouse: only MergeTree-family engines
 *   with the `PARTITION BY … ORDER BY …` syntax, String / Float64 / UInt* / Int8 / DateTime /
 *   Nullable / Array(String). Nothing 18.16 lacks (LowCardinality, DateTime64, TTL, CODEC,
 *   column DEFAULTs on JSONEachRow inserts) and nothing current servers removed (the old
 *   `MergeTree(date, key, 8192)` syntax). No Nullable column is part of a sorting key (current
 *   servers refuse that unless `allow_nullable_key`).
 * - Dashboards ask "this machine (and sensor) over this time range": every table sorts by
 *   machine first, time next, and is partitioned by month of that time.
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
 * Float64 precision: 18.16's text parser (JSONEachRow, toFloat64(String)) rounds about 6 % of
 * doubles to a neighbour, 1 ulp away (measured; its SQL literals and current servers are exact).
 * A 1e-16 relative error is far below any sensor's; binary RowBinary would avoid it but fails
 * silently on a schema mismatch, where JSONEachRow names the column.
 */
import { EncodeError } from "../errors.js";

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
  /** Content hash of the isolation-forest model that scored it ("" without one). */
  model_hash?: string;
}

export interface AlertPointRow {
  position: number;
  time: number;
  value: number;
}

/** An SPC alert event (ml_alerts); operators/spc/alerts.ts SpcAlertEvent has these members. */
export interface AlertRow {
  /** The engine's key (e.g. `M1/temperature`). */
  key: string;
  machine_id: string;
  sensor_type: string;
  rule: string;
  /** The twin Nelson rule of a Western Electric one, when both fired. */
  also?: string | null;
  description?: string;
  severity: AlertSeverityLevel;
  state: "open" | "closed";
  opened_at: EpochMs;
  closed_at?: EpochMs | null;
  firings: number;
  limits_version: number;
  cl?: Stat;
  sigma?: Stat;
  /** The pattern's points at the first firing (stored as a JSON string). */
  points: readonly AlertPointRow[] | string;
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

/** The row type of each table. */
export interface ClickHouseRows {
  ml_sensor_data: SensorDataRow;
  ml_scores: ScoreRow;
  ml_alerts: AlertRow;
  ml_serial_detections: SerialDetectionRow;
  ml_quarantine: QuarantineRow;
  ml_maintenance_predictions: MaintenancePredictionRow;
  ml_equipment_health: EquipmentHealthRow;
}

export interface TableSchema<R> {
  name: ClickHouseTable;
  /** The CREATE TABLE IF NOT EXISTS statement in `database`. */
  create(database: string): string;
  /** Columns of the row key (the sorting key), in order. */
  key: readonly string[];
  /** One JSONEachRow line (no newline); throws EncodeError for a row that breaks the table's rules. */
  encode(row: R): string;
}

/** Row keys (the sorting keys) of the tables, in order. */
const READING_KEY = ["machine_id", "sensor_type", "timestamp", "timestamp_ms", "seq"] as const;
const ALERT_KEY = ["machine_id", "sensor_type", "opened_at", "opened_at_ms", "rule", "key"] as const;
const DETECTION_KEY = ["machine_id", "detected_at", "detected_at_ms", "gtin", "serial_number", "seq"] as const;
const QUARANTINE_KEY = ["machine_id", "production_at", "production_at_ms", "gtin", "serial_number", "seq"] as const;
const PREDICTION_KEY = ["machine_id", "predicted_at", "predicted_at_ms", "model_version"] as const;
const HEALTH_KEY = ["machine_id", "computed_at", "computed_at_ms"] as const;

/**
 * The end of every table's CREATE: the version column, ReplacingMergeTree on it (a row written
 * again, by a replay or a restart, replaces the one with the same key), monthly partitions on the
 * table's time column, and the row key as the sorting key.
 */
/** A serial's identity and where it was printed, as ml_serial_detections and ml_quarantine store them. */
function serialIdentity(r: SerialDetectionRow | QuarantineRow): Record<string, string> {
  return {
    serial_number: str(r.serial_number, "serial_number"),
    gtin: str(r.gtin, "gtin"),
    batch_number: str(r.batch_number, "batch_number"),
    machine_id: str(r.machine_id, "machine_id"),
    operator_id: optStr(r.operator_id, "operator_id"),
  };
}

function replacingTail(partitionBy: string, key: readonly string[]): string {
  return `  version UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(${partitionBy})
ORDER BY (${key.join(", ")})`;
}

export const TABLE_SCHEMAS: { readonly [T in ClickHouseTable]: TableSchema<ClickHouseRows[T]> } = {
  /*
   * ml_sensor_data — raw readings, one row per reading.
   * key: (machine_id, sensor_type, timestamp, timestamp_ms, seq)   version: 0 (replays are identical)
   */
  ml_sensor_data: {
    name: "ml_sensor_data",
    key: READING_KEY,
    create: (db) => `CREATE TABLE IF NOT EXISTS ${db}.ml_sensor_data (
  machine_id String,
  sensor_type String,
  timestamp DateTime,
  timestamp_ms UInt64,
  sensor_value Float64,
  sensor_unit String,
  operating_mode String,
  work_order_id String,
  seq UInt64,
${replacingTail("timestamp", READING_KEY)}`,
    encode: (r) => {
      const t = time(r.timestamp, "timestamp");
      return JSON.stringify({
        machine_id: str(r.machine_id, "machine_id"),
        sensor_type: str(r.sensor_type, "sensor_type"),
        timestamp: t.s,
        timestamp_ms: t.ms,
        sensor_value: finite(r.sensor_value, "sensor_value"),
        sensor_unit: optStr(r.sensor_unit, "sensor_unit"),
        operating_mode: optStr(r.operating_mode, "operating_mode"),
        work_order_id: optStr(r.work_order_id, "work_order_id"),
        seq: optUint(r.seq, "seq"),
        version: 0,
      });
    },
  },

  /*
   * ml_scores — what the analyses computed for one reading. NULL where a statistic is undefined
   * or the analysis is not configured. Masks and alarms are 0 then.
   * key: as ml_sensor_data   version: limits_version (a re-scoring with newer SPC limits wins)
   */
  ml_scores: {
    name: "ml_scores",
    key: READING_KEY,
    create: (db) => `CREATE TABLE IF NOT EXISTS ${db}.ml_scores (
  machine_id String,
  sensor_type String,
  timestamp DateTime,
  timestamp_ms UInt64,
  seq UInt64,
  value Float64,
  count Nullable(UInt32),
  mean Nullable(Float64),
  std Nullable(Float64),
  std_pop Nullable(Float64),
  min Nullable(Float64),
  max Nullable(Float64),
  slope Nullable(Float64),
  ewma Nullable(Float64),
  z Nullable(Float64),
  cl Nullable(Float64),
  ucl Nullable(Float64),
  lcl Nullable(Float64),
  sigma Nullable(Float64),
  zone Nullable(Int8),
  we_mask UInt8,
  nelson_mask UInt8,
  cusum_pos Nullable(Float64),
  cusum_neg Nullable(Float64),
  cusum_alarm UInt8,
  spc_ewma Nullable(Float64),
  ewma_ucl Nullable(Float64),
  ewma_lcl Nullable(Float64),
  ewma_alarm UInt8,
  limits_version UInt32,
  iforest_score Nullable(Float64),
  model_hash String,
${replacingTail("timestamp", READING_KEY)}`,
    encode: (r) => {
      const t = time(r.timestamp, "timestamp");
      const limitsVersion = optUint(r.limits_version, "limits_version");
      const count = stat(r.count);
      const zone = stat(r.zone);
      if (count !== null && !(Number.isInteger(count) && count >= 0 && count <= 0xffffffff))
        throw new EncodeError("invalid_field", "count", `not a UInt32: ${count}`);
      if (zone !== null && !(Number.isInteger(zone) && zone >= -128 && zone <= 127))
        throw new EncodeError("invalid_field", "zone", `not an Int8: ${zone}`);
      return JSON.stringify({
        machine_id: str(r.machine_id, "machine_id"),
        sensor_type: str(r.sensor_type, "sensor_type"),
        timestamp: t.s,
        timestamp_ms: t.ms,
        seq: optUint(r.seq, "seq"),
        value: finite(r.value, "value"),
        count,
        mean: stat(r.mean),
        std: stat(r.std),
        std_pop: stat(r.std_pop),
        min: stat(r.min),
        max: stat(r.max),
        slope: stat(r.slope),
        ewma: stat(r.ewma),
        z: stat(r.z),
        cl: stat(r.cl),
        ucl: stat(r.ucl),
        lcl: stat(r.lcl),
        sigma: stat(r.sigma),
        zone,
        we_mask: mask(r.we_mask, "we_mask", 0x0f),
        nelson_mask: mask(r.nelson_mask, "nelson_mask", 0xff),
        cusum_pos: stat(r.cusum_pos),
        cusum_neg: stat(r.cusum_neg),
        cusum_alarm: r.cusum_alarm === true ? 1 : 0,
        spc_ewma: stat(r.spc_ewma),
        ewma_ucl: stat(r.ewma_ucl),
        ewma_lcl: stat(r.ewma_lcl),
        ewma_alarm: r.ewma_alarm === true ? 1 : 0,
        limits_version: limitsVersion,
        iforest_score: stat(r.iforest_score),
        model_hash: optStr(r.model_hash, "model_hash"),
        version: limitsVersion,
      });
    },
  },

  /*
   * ml_alerts — SPC alert events. An alert is written when it opens and again when it closes;
   * both rows have the same key, so FINAL shows its latest state.
   * key: (machine_id, sensor_type, opened_at, opened_at_ms, rule, key)
   * version: firings, + 2^32 once closed (closed beats open; more firings beat fewer)
   */
  ml_alerts: {
    name: "ml_alerts",
    key: ALERT_KEY,
    create: (db) => `CREATE TABLE IF NOT EXISTS ${db}.ml_alerts (
  key String,
  machine_id String,
  sensor_type String,
  rule String,
  also String,
  description String,
  severity String,
  state String,
  opened_at DateTime,
  opened_at_ms UInt64,
  closed_at Nullable(DateTime),
  closed_at_ms Nullable(UInt64),
  firings UInt32,
  limits_version UInt32,
  cl Nullable(Float64),
  sigma Nullable(Float64),
  points String,
${replacingTail("opened_at", ALERT_KEY)}`,
    encode: (r) => {
      const opened = time(r.opened_at, "opened_at");
      const closed = r.closed_at === null || r.closed_at === undefined ? null : time(r.closed_at, "closed_at");
      const state = oneOf(r.state, "state", ["open", "closed"] as const);
      if (state === "closed" && closed === null) throw new EncodeError("missing_field", "closed_at", "a closed alert needs closed_at");
      const firings = uint(r.firings, "firings");
      if (firings > 0xffffffff) throw new EncodeError("invalid_field", "firings", `not a UInt32: ${firings}`);
      return JSON.stringify({
        key: str(r.key, "key"),
        machine_id: str(r.machine_id, "machine_id"),
        sensor_type: str(r.sensor_type, "sensor_type"),
        rule: str(r.rule, "rule"),
        also: r.also === null || r.also === undefined ? "" : str(r.also, "also"),
        description: optStr(r.description, "description"),
        severity: oneOf(r.severity, "severity", ALERT_SEVERITIES),
        state,
        opened_at: opened.s,
        opened_at_ms: opened.ms,
        closed_at: closed === null ? null : closed.s,
        closed_at_ms: closed === null ? null : closed.ms,
        firings,
        limits_version: uint(r.limits_version, "limits_version"),
        cl: stat(r.cl),
        sigma: stat(r.sigma),
        points: typeof r.points === "string" ? r.points : JSON.stringify(r.points),
        version: (state === "closed" ? 2 ** 32 : 0) + firings,
      });
    },
  },

  /*
   * ml_serial_detections — serial events the serial analysis flagged (anomaly_score > 0).
   * key: (machine_id, detected_at, detected_at_ms, gtin, serial_number, seq)   version: 0
   */
  ml_serial_detections: {
    name: "ml_serial_detections",
    key: DETECTION_KEY,
    create: (db) => `CREATE TABLE IF NOT EXISTS ${db}.ml_serial_detections (
  serial_number String,
  gtin String,
  batch_number String,
  machine_id String,
  operator_id String,
  detected_at DateTime,
  detected_at_ms UInt64,
  seq UInt64,
  anomaly_types Array(String),
  reasons Array(String),
  anomaly_score Float64,
  confidence_level Float64,
  risk_level String,
  quarantined UInt8,
${replacingTail("detected_at", DETECTION_KEY)}`,
    encode: (r) => {
      const t = time(r.detected_at, "detected_at");
      return JSON.stringify({
        ...serialIdentity(r),
        detected_at: t.s,
        detected_at_ms: t.ms,
        seq: optUint(r.seq, "seq"),
        anomaly_types: strings(r.anomaly_types, "anomaly_types"),
        reasons: strings(r.reasons, "reasons"),
        anomaly_score: finite(r.anomaly_score, "anomaly_score"),
        confidence_level: r.confidence_level === undefined ? 0 : finite(r.confidence_level, "confidence_level"),
        risk_level: oneOf(r.risk_level, "risk_level", SERIAL_RISK_LEVELS),
        quarantined: r.quarantined === true ? 1 : 0,
        version: 0,
      });
    },
  },

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
  ml_quarantine: {
    name: "ml_quarantine",
    key: QUARANTINE_KEY,
    create: (db) => `CREATE TABLE IF NOT EXISTS ${db}.ml_quarantine (
  serial_number String,
  gtin String,
  batch_number String,
  machine_id String,
  operator_id String,
  production_at DateTime,
  production_at_ms UInt64,
  seq UInt64,
  quarantined_at DateTime,
  quarantined_at_ms UInt64,
  released_at Nullable(DateTime),
  released_at_ms Nullable(UInt64),
  release_note String,
  anomaly_types Array(String),
  reasons Array(String),
  anomaly_score Float64,
  confidence_level Float64,
  risk_level String,
  occurrences UInt32,
${replacingTail("production_at", QUARANTINE_KEY)}`,
    encode: (r) => {
      const produced = time(r.production_at, "production_at");
      const quarantined = time(r.quarantined_at, "quarantined_at");
      const released = r.released_at === null || r.released_at === undefined ? null : time(r.released_at, "released_at");
      const occurrences = r.occurrences === undefined ? 1 : uint(r.occurrences, "occurrences");
      if (occurrences > 0xffffffff) throw new EncodeError("invalid_field", "occurrences", `not a UInt32: ${occurrences}`);
      return JSON.stringify({
        ...serialIdentity(r),
        production_at: produced.s,
        production_at_ms: produced.ms,
        seq: optUint(r.seq, "seq"),
        quarantined_at: quarantined.s,
        quarantined_at_ms: quarantined.ms,
        released_at: released === null ? null : released.s,
        released_at_ms: released === null ? null : released.ms,
        release_note: optStr(r.release_note, "release_note"),
        anomaly_types: strings(r.anomaly_types, "anomaly_types"),
        reasons: strings(r.reasons, "reasons"),
        anomaly_score: finite(r.anomaly_score, "anomaly_score"),
        confidence_level: r.confidence_level === undefined ? 0 : finite(r.confidence_level, "confidence_level"),
        risk_level: oneOf(r.risk_level, "risk_level", SERIAL_RISK_LEVELS),
        occurrences,
        version: (released === null ? 0 : 2 ** 32) + occurrences,
      });
    },
  },

  /*
   * ml_maintenance_predictions — the seed's failure predictions, one per machine and time.
   * key: (machine_id, predicted_at, predicted_at_ms, model_version)   version: 0
   */
  ml_maintenance_predictions: {
    name: "ml_maintenance_predictions",
    key: PREDICTION_KEY,
    create: (db) => `CREATE TABLE IF NOT EXISTS ${db}.ml_maintenance_predictions (
  machine_id String,
  predicted_at DateTime,
  predicted_at_ms UInt64,
  failure_probability Float64,
  time_to_failure_hours Nullable(Float64),
  rul_cycles Nullable(Float64),
  risk_level String,
  model_version String,
  features String,
${replacingTail("predicted_at", PREDICTION_KEY)}`,
    encode: (r) => {
      const t = time(r.predicted_at, "predicted_at");
      return JSON.stringify({
        machine_id: str(r.machine_id, "machine_id"),
        predicted_at: t.s,
        predicted_at_ms: t.ms,
        failure_probability: inRange(r.failure_probability, "failure_probability", 0, 1),
        time_to_failure_hours: stat(r.time_to_failure_hours),
        rul_cycles: stat(r.rul_cycles),
        risk_level: oneOf(r.risk_level, "risk_level", MACHINE_RISK_LEVELS),
        model_version: str(r.model_version, "model_version"),
        features: typeof r.features === "string" ? r.features : JSON.stringify(r.features),
        version: 0,
      });
    },
  },

  /*
   * ml_equipment_health — the seed's health score of a machine over time.
   * key: (machine_id, computed_at, computed_at_ms)   version: 0
   */
  ml_equipment_health: {
    name: "ml_equipment_health",
    key: HEALTH_KEY,
    create: (db) => `CREATE TABLE IF NOT EXISTS ${db}.ml_equipment_health (
  machine_id String,
  computed_at DateTime,
  computed_at_ms UInt64,
  health_score Float64,
  risk_level String,
${replacingTail("computed_at", HEALTH_KEY)}`,
    encode: (r) => {
      const t = time(r.computed_at, "computed_at");
      return JSON.stringify({
        machine_id: str(r.machine_id, "machine_id"),
        computed_at: t.s,
        computed_at_ms: t.ms,
        health_score: inRange(r.health_score, "health_score", 0, 100),
        risk_level: oneOf(r.risk_level, "risk_level", MACHINE_RISK_LEVELS),
        version: 0,
      });
    },
  },
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

/** Runs {@link schemaStatements} with any client that can run a statement (e.g. `@clickhouse/client`'s `command`). */
export async function createSchema(run: (sql: string) => Promise<unknown>, database: string = DEFAULT_CLICKHOUSE_DATABASE): Promise<void> {
  for (const sql of schemaStatements(database)) await run(sql);
}

/** Encodes one row of `table`; throws EncodeError when it breaks the table's rules. */
export function encodeRow<T extends ClickHouseTable>(table: T, row: ClickHouseRows[T]): string {
  return (TABLE_SCHEMAS[table] as TableSchema<ClickHouseRows[T]>).encode(row);
}

export function isClickHouseTable(name: string): name is ClickHouseTable {
  return (CLICKHOUSE_TABLES as readonly string[]).includes(name);
}

// ---------------------------------------------------------------------------------------------
// Field checks
// ---------------------------------------------------------------------------------------------

/** DateTime is UInt32 seconds: 1970-01-01 … 2106-02-07. */
const DATETIME_MS_END = 2 ** 32 * 1000;

function time(ms: EpochMs, field: string): { s: number; ms: number } {
  if (typeof ms !== "number" || !Number.isFinite(ms))
    throw new EncodeError("bad_timestamp", field, `not a finite epoch-ms number: ${String(ms)}`);
  if (ms < 0 || ms >= DATETIME_MS_END) throw new EncodeError("bad_timestamp", field, `${ms} is outside DateTime's range (1970 … 2106)`);
  const whole = Math.floor(ms);
  return { s: Math.floor(whole / 1000), ms: whole };
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

function uint(v: number, field: string): number {
  const x = finite(v, field);
  if (!Number.isSafeInteger(x) || x < 0) throw new EncodeError("invalid_field", field, `not a non-negative integer: ${x}`);
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
