/**
 * What Outputs.record writes for one record, and the comparison of a row the column encoders
 * (connectors/clickhouse/reading-columns.ts) wrote with it: for the RowBinary tests.
 *
 * The expected rows come from the path the run takes today, unchanged: the analyses' `observe`
 * on the record's output rows, `recordFields`, Outputs' `scoreRow` / `sensorDataRow`, and the
 * table's JSONEachRow encoding (or the EncodeError it refuses the row with).
 */
import type { ScoredRecord } from "../../engine/jobs/outputs.js";
import { scoreRow, sensorDataRow } from "../../engine/jobs/outputs.js";
import { recordFields, statisticValue, type RecordAnalysis, type RowContext } from "../../operators/analysis.js";
import { encodeRow } from "../../connectors/clickhouse/schema.js";
import { EncodeError } from "../../connectors/errors.js";

/** ml_scores' Float64 statistics: the encoders write them exact, the row objects rounded to 15 digits. */
export const SCORE_STATISTICS = new Set([
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
  "cusum_pos",
  "cusum_neg",
  "spc_ewma",
  "ewma_ucl",
  "ewma_lcl",
  "iforest_score",
]);

/** A table row as JSON values by column name, or the refusal's reason and field. */
export type Expected = { row: Record<string, unknown> } | { refused: string };

export interface RecordInput {
  key: string;
  parts: readonly string[];
  keyId: number;
  time: number;
  value: number;
  seq: number;
  label: readonly [string | undefined, string | undefined, string | undefined] | undefined;
}

/**
 * The ml_scores and ml_sensor_data rows Outputs.record makes of one record whose output rows are
 * `rows` (one per analysis; `observe` runs on them here, so pass copies).
 */
export function outputsRows(
  analyses: readonly RecordAnalysis[],
  rows: Float64Array[],
  r: RecordInput,
): { scores: Expected; data: Expected } {
  const ctx: RowContext = { keyId: r.keyId, key: r.key, position: r.seq, time: r.time, value: r.value };
  analyses.forEach((a, k) => a.observe?.(rows[k], ctx));
  const members = recordFields(analyses, rows) as Record<string, unknown>;
  const scored: ScoredRecord = {
    machineId: r.parts[0],
    sensorType: r.parts[1],
    key: r.key,
    time: r.time,
    value: r.value,
    mode: r.parts[2] ?? r.label?.[1],
    unit: r.label?.[0],
    workOrder: r.label?.[2],
    seq: r.seq,
    members,
  };
  return {
    scores: encoded(() => encodeRow("ml_scores", scoreRow(scored, members))),
    data: encoded(() => encodeRow("ml_sensor_data", sensorDataRow(scored))),
  };
}

function encoded(line: () => string): Expected {
  try {
    return { row: JSON.parse(line()) as Record<string, unknown> };
  } catch (error) {
    if (!(error instanceof EncodeError)) throw error;
    return { refused: `${error.reason}: ${error.field}` };
  }
}

/**
 * A statistic as the row objects carry it: 15 significant digits, and NULL when that is not finite
 * — also for the finite doubles within 5e292 of ±1.7976931348623157e308, whose 15 digits round
 * past it (the exact value in RowBinary, NULL through the row objects).
 */
function rounded(v: number): number | null {
  const r = statisticValue(v);
  return r !== null && Number.isFinite(r) ? r : null;
}

/**
 * Differences of a row as read back (exact statistics, by column name) from the expected one:
 * statistics compared as the row objects round them ({@link rounded}), everything else equal.
 * `columns`: the columns to compare (a read-back may leave some out).
 */
export function rowDifferences(expected: Record<string, unknown>, actual: Record<string, unknown>, columns: readonly string[]): string[] {
  const out: string[] = [];
  for (const c of columns) {
    const a = actual[c];
    const e = expected[c];
    const got = SCORE_STATISTICS.has(c) && typeof a === "number" ? rounded(a) : a;
    // !== takes −0 for 0: the JSON line writes −0 as 0, RowBinary keeps −0.
    if (got !== e) out.push(`${c}: expected ${String(e)}, got ${String(a)}`);
  }
  return out;
}
