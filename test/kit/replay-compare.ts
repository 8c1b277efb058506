/**
 * `ml_scores` rows against `linewatch replay` lines of the same records, row by row.
 *
 * The expected row of a replay line is derived here from the documented contracts (docs/), not from the
 * engine's own mapping (engine/jobs/outputs.ts): key `machine/sensor` → machine_id, sensor_type; the
 * time → timestamp_ms; `we`/`nelson` rule lists → masks with bit k−1 for rule k, the `mr` names
 * → bit 0 JUMP, 1 NOISY, 2 STUCK (0 while the key has no limits); alarms → 0/1; a missing `model_hash` → "". Statistics are compared as doubles:
 * bit for bit, and otherwise to one unit in the last place (ClickHouse 18.16's text parser, see
 * clickhouse-schema.ts), each such difference counted so the test can say how many there were.
 */
import { closeFloat, type ScoreTableRow } from "./clickhouse-rows.js";

/** One line of `linewatch replay` output (--analysis rolling,spc[,iforest]). */
export interface ReplayLine {
  row: number;
  key: string;
  timestamp: string | number;
  value: number | null;
  [field: string]: unknown;
}

export interface ScoreComparison {
  /** Replay lines compared (each found in the table). */
  rows: number;
  /** Non-null statistics compared. */
  floats: number;
  /** Of those, equal bit for bit. */
  floatsExact: number;
  /** Largest |a − b| / max(|a|, |b|) over the statistics. */
  maxRelative: number;
  /** Statistics not equal bit for bit (the first 2000): the text the sink sent for the replay's value, and the stored value. */
  inexact: Array<{ sent: string; stored: number }>;
  /** What did not match (at most 10 listed). */
  differences: string[];
}

const FLOAT_FIELDS = [
  "value",
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
] as const;
const EXACT_FIELDS = [
  "machine_id",
  "sensor_type",
  "timestamp_ms",
  "seq",
  "count",
  "zone",
  "we_mask",
  "nelson_mask",
  "mr_mask",
  "cusum_alarm",
  "ewma_alarm",
  "limits_version",
  "model_hash",
] as const;

/** The moving-range rules' bits in mr_mask (docs/spc.md). */
const MR_BITS: Readonly<Record<string, number>> = { JUMP: 1, NOISY: 2, STUCK: 4 };

/** mr_mask of a replay line's `mr` names; a name that is not a rule sets bit 7, so it shows as a difference. */
function mrMask(names: unknown): number {
  return Array.isArray(names) ? names.reduce((m: number, name: unknown) => m | (MR_BITS[String(name)] ?? 0x80), 0) : 0;
}

/** The ml_scores row a replay line stands for; `seq` is the record's position in the stream. */
export function expectedScoreRow(line: ReplayLine, seq: number): ScoreTableRow {
  const [machine, sensor] = line.key.split("/");
  const mask = (rules: unknown) => (Array.isArray(rules) ? (rules as number[]).reduce((m, k) => m | (1 << (k - 1)), 0) : 0);
  const num = (v: unknown) => (typeof v === "number" ? v : null);
  const out: ScoreTableRow = {
    machine_id: machine,
    sensor_type: sensor,
    timestamp_ms: typeof line.timestamp === "number" ? line.timestamp : Date.parse(line.timestamp),
    seq,
    count: num(line.count),
    zone: num(line.zone),
    we_mask: mask(line.we),
    nelson_mask: mask(line.nelson),
    mr_mask: mrMask(line.mr),
    cusum_alarm: line.cusum_alarm === true ? 1 : 0,
    ewma_alarm: line.ewma_alarm === true ? 1 : 0,
    limits_version: num(line.limits_version) ?? 0,
    model_hash: typeof line.model_hash === "string" ? line.model_hash : "",
  };
  for (const f of FLOAT_FIELDS) out[f] = num(line[f]);
  return out;
}

/**
 * Every replay line against the table's row of the same (machine, sensor, timestamp_ms); `seqOf`
 * gives the stream sequence of replay row r. Also reports table rows no line accounts for.
 */
export function compareScores(
  lines: readonly ReplayLine[],
  rows: readonly ScoreTableRow[],
  seqOf: (row: number) => number,
): ScoreComparison {
  const byKey = new Map<string, ScoreTableRow>();
  for (const r of rows) byKey.set(`${r.machine_id}/${r.sensor_type}/${r.timestamp_ms}`, r);
  const c: ScoreComparison = { rows: 0, floats: 0, floatsExact: 0, maxRelative: 0, differences: [], inexact: [] };
  const differ = (text: string) => {
    if (c.differences.length < 10) c.differences.push(text);
  };
  if (rows.length !== lines.length) differ(`${rows.length} rows in ml_scores FINAL, ${lines.length} records replayed`);
  for (const line of lines) {
    const want = expectedScoreRow(line, seqOf(line.row));
    const id = `${want.machine_id}/${want.sensor_type}/${want.timestamp_ms}`;
    const got = byKey.get(id);
    if (got === undefined) {
      differ(`row ${line.row} (${id}): missing from ml_scores`);
      continue;
    }
    byKey.delete(id);
    c.rows++;
    for (const f of EXACT_FIELDS)
      if (got[f] !== want[f]) differ(`row ${line.row} (${id}): ${f} ${JSON.stringify(got[f])}, replay ${JSON.stringify(want[f])}`);
    for (const f of FLOAT_FIELDS) {
      const a = got[f];
      const b = want[f];
      if (a === null || b === null || typeof a !== "number" || typeof b !== "number") {
        if (a !== b) differ(`row ${line.row} (${id}): ${f} ${JSON.stringify(a)}, replay ${JSON.stringify(b)}`);
        continue;
      }
      c.floats++;
      if (Object.is(a, b) || a === b) {
        c.floatsExact++;
        continue;
      }
      c.maxRelative = Math.max(c.maxRelative, Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b)));
      if (c.inexact.length < 2000) c.inexact.push({ sent: JSON.stringify(b), stored: a });
      if (!closeFloat(a, b, 1)) differ(`row ${line.row} (${id}): ${f} ${a}, replay ${b}`);
    }
  }
  for (const [id, r] of byKey) differ(`ml_scores row ${id} (seq ${r.seq}) is not in the replay`);
  return c;
}
