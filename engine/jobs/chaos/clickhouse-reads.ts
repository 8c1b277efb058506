/**
 * Read-backs of what a run wrote to ClickHouse, after FINAL: the reconciliation's side of the
 * ledger (the chaos harness) and the tests' (test/kit/clickhouse-rows.ts re-exports these).
 */

/** Anything that runs one statement and resolves with the body (a local ClickHouseServer). */
export interface ClickHouseQuery {
  query(sql: string, settings?: Record<string, string | number>): Promise<string>;
}

/** A row of `ml_scores` as read back: the columns by name (numbers, strings, null). */
export type ScoreTableRow = Record<string, number | string | null>;

/** The columns of `ml_scores` but `version` (= limits_version) and the DateTime `timestamp` (timestamp_ms is exact). */
export const SCORE_COLUMNS = [
  "machine_id",
  "sensor_type",
  "timestamp_ms",
  "seq",
  "value",
  "count",
  "mean",
  "std",
  "std_pop",
  "min",
  "max",
  "slope",
  "ewma",
  "z",
  "cl",
  "ucl",
  "lcl",
  "sigma",
  "zone",
  "we_mask",
  "nelson_mask",
  "mr_mask",
  "cusum_pos",
  "cusum_neg",
  "cusum_alarm",
  "spc_ewma",
  "ewma_ucl",
  "ewma_lcl",
  "ewma_alarm",
  "limits_version",
  "iforest_score",
  "model_hash",
] as const;

/** The rows of `db.ml_scores` FINAL ({@link SCORE_COLUMNS}), by seq. */
export async function readScoreRows(server: ClickHouseQuery, db: string): Promise<ScoreTableRow[]> {
  const text = await server.query(`SELECT ${SCORE_COLUMNS.join(", ")} FROM ${db}.ml_scores FINAL ORDER BY seq FORMAT JSONEachRow`, {
    output_format_json_quote_64bit_integers: 0,
  });
  return text.length === 0
    ? []
    : text
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as ScoreTableRow);
}

/** Rows per `seq` of `db.table` FINAL (a missing table: none). */
export async function sequenceCounts(server: ClickHouseQuery, db: string, table: string): Promise<Map<number, number>> {
  const text = await server.query(`SELECT seq, count() FROM ${db}.${table} FINAL GROUP BY seq FORMAT TSV`);
  const out = new Map<number, number>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const [seq, n] = line.split("\t").map(Number);
    out.set(seq, n);
  }
  return out;
}
