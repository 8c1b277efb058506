/**
 * Rows and read-backs for the ClickHouse tests: seeded readings with a unique `seq`, and the
 * table's rows read back (FINAL) in the shape they were written.
 */
import { SeededRandom } from "../../engine/core/mod.js";
import type { ClickHouseRows, ClickHouseTable, SensorDataRow } from "../../connectors/clickhouse/schema.js";
import type { ClickHouseServer } from "../../connectors/local/clickhouse-server.js";

/** 2023-11-14 22:13:20 UTC; `count` rows 7 ms apart stay in one month for count ≤ 300 M. */
export const BASE_MS = 1_700_000_000_000;

/** One row of every table, with every optional column given. */
export const TABLE_ROWS: { readonly [T in ClickHouseTable]: ClickHouseRows[T] } = {
  ml_sensor_data: {
    machine_id: "M1",
    sensor_type: "t",
    timestamp: 1_700_000_000_123,
    sensor_value: 1.25,
    sensor_unit: "C",
    operating_mode: "run",
    work_order_id: "WO-1",
    seq: 7,
  },
  ml_scores: {
    machine_id: "M1",
    sensor_type: "t",
    timestamp: 1_700_000_000_123,
    value: 1.25,
    count: 10,
    mean: 1,
    zone: -4,
    we_mask: 5,
    nelson_mask: 129,
    mr_mask: 5,
    cusum_alarm: true,
    limits_version: 2,
    iforest_score: 0.61,
    model_hash: "abc",
    kernel_hash: "0d47",
    config_hash: "72a9",
  },
  ml_alerts: {
    episode_id: "0123456789abcdef",
    key: "M1/t",
    machine_id: "M1",
    sensor_type: "t",
    family: "level",
    rules: ["WE1", "CUSUM"],
    first_rule: "WE1",
    severity: "high",
    state: "closed",
    opened_at: 1_700_000_000_000,
    last_fired_at: 1_700_000_002_000,
    closed_at: 1_700_000_005_000,
    acknowledged_at: 1_700_000_003_000,
    acknowledged_by: "qa",
    ack_note: "seen",
    firings: 3,
    limits_version: 1,
    cl: 1,
    sigma: 0.1,
    points: [{ position: 1, time: 2, value: 3 }],
  },
  ml_serial_detections: {
    serial_number: "S1",
    gtin: "09506000134352",
    batch_number: "B1",
    machine_id: "M1",
    detected_at: 1_700_000_000_000,
    anomaly_types: ["sequential"],
    reasons: ["seq_step"],
    anomaly_score: 0.9,
    risk_level: "high",
    quarantined: true,
  },
  ml_quarantine: {
    serial_number: "S1",
    gtin: "09506000134352",
    batch_number: "B1",
    machine_id: "M1",
    production_at: 1_700_000_000_000,
    quarantined_at: 1_700_000_000_500,
    released_at: 1_700_000_009_000,
    anomaly_types: ["duplicate"],
    reasons: ["duplicate"],
    anomaly_score: 1,
    risk_level: "critical",
  },
  ml_maintenance_predictions: {
    machine_id: "M1",
    predicted_at: 1_700_000_000_000,
    failure_probability: 0.2,
    time_to_failure_hours: null,
    rul_cycles: 41.5,
    risk_level: "medium",
    model_version: "v3",
    features: { vibration_rms: 1.5 },
  },
  ml_equipment_health: { machine_id: "M1", computed_at: 1_700_000_000_000, health_score: 87.5, risk_level: "low" },
  ml_models: {
    id: "3f2a9c1b0d4e".padEnd(64, "0"),
    kind: "rul",
    stage: "production",
    format: "onnx (linewatch failure model)",
    file_name: "rul.onnx",
    size_bytes: 12_345,
    created_at: 1_700_000_000_000,
    training_data: "train_FD001.txt",
    training_fingerprint: `sha256:${"ab".repeat(32)}`,
    features: ["s2.mean", "s3.slope"],
    metrics: { validation_rmse: 17.5 },
    made_by: "linewatch models push rul.onnx --kind rul",
    made_by_user: "qa",
    made_by_host: "line-3",
    notes: null,
    stage_changed_at: 1_700_000_360_000,
  },
  ml_audit_configs: { config_hash: "72a9", kernel_hash: "0d47", created_at: 1_700_000_000_000, config: '{"analyses":[]}' },
  ml_quality_predictions: {
    line_id: "L-001",
    work_order_id: "WO-001",
    batch_id: "L-001-B00001",
    predicted_at: 1_700_000_000_500,
    progress: 0.5,
    readings: 60,
    final: false,
    predicted_yield: 0.9375,
    predicted_defect_rate: 0.0625,
    defect_probability: { packaging: 0.03125, labelling: 0.015625, serialization: 0.0078125, other: 0.0078125 },
    quality_score: 93.75,
    model_version: "quality-mlp-000000000000",
  },
  ml_quality_outcomes: {
    line_id: "L-001",
    work_order_id: "WO-001",
    batch_id: "L-001-B00001",
    completed_at: 1_700_000_003_000,
    units_produced: 20_000,
    first_pass_yield: 0.925,
    defect_rate: 0.0625,
    defects: { packaging: 600, labelling: 400, serialization: 150, other: 100 },
    predicted_yield: 0.9375,
    predicted_defect_rate: null,
  },
};

/** Seeded so a failure can be replayed. */
export function sensorRows(from: number, count: number, seed = 42): SensorDataRow[] {
  const rng = new SeededRandom(seed + from);
  const random = (): number => rng.next();
  const out: SensorDataRow[] = [];
  for (let i = from; i < from + count; i++) {
    out.push({
      machine_id: `M${i % 7}`,
      sensor_type: ["temperature", "pressure", "vibration"][i % 3],
      timestamp: BASE_MS + i * 7,
      sensor_value: (random() - 0.5) * 10 ** Math.floor(random() * 8 - 2),
      sensor_unit: ["C", "bar", "mm/s"][i % 3],
      operating_mode: i % 11 === 0 ? "setup" : "run",
      work_order_id: `WO-${Math.floor(i / 1000)}`,
      seq: i,
    });
  }
  return out;
}

/** The rows of `db.ml_sensor_data` FINAL, by seq, in the written shape. */
export async function readSensorRows(server: ClickHouseServer, db: string): Promise<SensorDataRow[]> {
  const text = await server.query(
    `SELECT machine_id, sensor_type, timestamp_ms AS timestamp, sensor_value, sensor_unit, operating_mode, work_order_id, seq
     FROM ${db}.ml_sensor_data FINAL ORDER BY seq FORMAT JSONEachRow`,
    { output_format_json_quote_64bit_integers: 0 },
  );
  return text.length === 0
    ? []
    : text
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as SensorDataRow);
}

/**
 * Whether two floats are within `ulps` units in the last place. ClickHouse 18.16's text parser
 * (JSONEachRow, toFloat64(String)) rounds about 6 % of doubles to a neighbour (1 ulp); current
 * servers parse exactly.
 */
export function closeFloat(a: number, b: number, ulps = 1): boolean {
  if (a === b) return true;
  const scale = Math.max(Math.abs(a), Math.abs(b));
  return Math.abs(a - b) <= ulps * Number.EPSILON * scale;
}

/** Compares read-back rows with the written ones: every field equal, values to 1 ulp. Returns the differences found (at most 5). */
export function diffSensorRows(expected: readonly SensorDataRow[], actual: readonly SensorDataRow[]): string[] {
  const out: string[] = [];
  if (expected.length !== actual.length) out.push(`${actual.length} rows, expected ${expected.length}`);
  const n = Math.min(expected.length, actual.length);
  for (let i = 0; i < n && out.length < 5; i++) {
    const e = expected[i];
    const a = actual[i];
    const { sensor_value: ev, ...erest } = e;
    const { sensor_value: av, ...arest } = a;
    if (JSON.stringify(erest) !== JSON.stringify(arest) || !closeFloat(ev, av))
      out.push(`row ${i}: expected ${JSON.stringify(e)}, got ${JSON.stringify(a)}`);
  }
  return out;
}

export { readScoreRows, SCORE_COLUMNS, type ScoreTableRow } from "../../engine/jobs/chaos/mod.js";

/** Rows of `db.table` with and without FINAL, and the distinct row keys (`key`: its ORDER BY columns). */
export async function rowCounts(
  server: ClickHouseServer,
  db: string,
  table: string,
  key: readonly string[],
): Promise<{ rows: number; final: number; keys: number }> {
  const [rows, final, keys] = (
    await server.query(
      `SELECT (SELECT count() FROM ${db}.${table}), (SELECT count() FROM ${db}.${table} FINAL), (SELECT uniqExact(${key.join(", ")}) FROM ${db}.${table} FINAL) FORMAT TSV`,
    )
  )
    .trim()
    .split("\t")
    .map(Number);
  return { rows, final, keys };
}

/** What the server's text parser makes of each number text (toFloat64 of the string, as JSONEachRow reads it). */
export async function parsedByClickHouse(server: ClickHouseServer, texts: readonly string[]): Promise<number[]> {
  if (texts.length === 0) return [];
  const text = await server.query(
    `SELECT toFloat64(s) AS x FROM (SELECT arrayJoin([${texts.map((t) => `'${t}'`).join(",")}]) AS s) FORMAT JSONEachRow`,
  );
  return text
    .trim()
    .split("\n")
    .map((l) => (JSON.parse(l) as { x: number }).x);
}
