/**
 * ml_alerts rows of alert episode events, a batch at a time as RowBinary (one insert per batch of
 * events, an ingest worker's as it arrives), for the main thread of a run with ClickHouse.
 *
 * Why: an episode's row is written at each of its events, and the simulator opens or closes one
 * every 14–90 readings of a key, so at 100 k records/s the rows were a quarter of the main
 * thread's busy time as JSONEachRow lines — the row object stringified, its `points` (up to 32
 * points, their doubles printed as text) stringified a first time into the column and escaped a
 * second time into the line. RowBinary writes each value once; the points text, the same for
 * every event of an SPC episode (its pattern at the opening), is made once per episode and kept
 * while it is open (a model-drift episode adds points as it goes: its text is made again whenever
 * they differ). Measured per row on one core (9 points): 7.5–8.2 µs as a JSON line, 4.7–5.2 µs as
 * RowBinary with the points stringified, of which the points were 2.9–3.2 µs.
 *
 * The rows are the same: the columns' values come from the same row ({@link alertRow}) through the
 * table's own encoder (schema.ts encodeRowBinary, its checks included), and a row it refuses goes
 * to the dead letters with the line the JSON path gave them (the row as JSON, points as an array).
 */
import {
  EncodeError,
  encodeRowBinary,
  RowBinaryWriter,
  type AlertRow,
  type EncodedRows,
  type RejectedRow,
} from "../../connectors/clickhouse/mod.js";
import type { AlertEpisodeEvent, AlertPoint } from "../../operators/spc/mod.js";

/** Episodes whose points text is kept at most; past it the cache starts over (an episode never closed, e.g. at a run's end, is not kept for ever). */
export const POINTS_TEXT_KEPT_MAX = 4096;

/** The JSON text of an episode's points, made once while they stay the same. */
class PointsText {
  private readonly kept = new Map<string, { points: readonly AlertPoint[]; text: string }>();

  of(e: AlertEpisodeEvent): string {
    const entry = this.kept.get(e.episode_id);
    if (entry !== undefined && samePoints(entry.points, e.points)) {
      if (e.closed_at !== null) this.kept.delete(e.episode_id);
      return entry.text;
    }
    const text = JSON.stringify(e.points);
    if (e.closed_at !== null) {
      this.kept.delete(e.episode_id);
      return text;
    }
    if (this.kept.size >= POINTS_TEXT_KEPT_MAX) this.kept.clear();
    // A copy: the event's own array may be changed by whoever holds it (the drift watch's is shared until routed).
    this.kept.set(e.episode_id, { points: e.points.map((p) => ({ position: p.position, time: p.time, value: p.value })), text });
    return text;
  }
}

/**
 * Equal positions, times and values in the same order: the same JSON text (points are made as
 * `{ position, time, value }` in that member order everywhere: the tracker, its decoder, the drift
 * watch). NaN never equals itself, so such points are stringified again (JSON writes them as null).
 */
function samePoints(a: readonly AlertPoint[], b: readonly AlertPoint[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const p = a[i];
    const q = b[i];
    if (p.position !== q.position || p.time !== q.time || p.value !== q.value) return false;
  }
  return true;
}

/** Encodes batches of events as ml_alerts RowBinary rows; one per thread (it keeps its writer and the points texts). */
export class AlertRowsBinary {
  private readonly writer = new RowBinaryWriter(16 * 1024);
  private readonly pointsText = new PointsText();

  /** The events' rows in their order, and those the table refuses apart (for the dead-letter output). */
  encode(events: readonly AlertEpisodeEvent[]): [EncodedRows, RejectedRow[]] {
    const writer = this.writer;
    writer.reset();
    const rejected: RejectedRow[] = [];
    for (let index = 0; index < events.length; index++) {
      const e = events[index];
      const row = alertRow(e, this.pointsText.of(e));
      try {
        encodeRowBinary("ml_alerts", row, writer);
      } catch (error) {
        if (!(error instanceof EncodeError)) throw error;
        rejected.push({ index, line: deadLetterLine({ ...row, points: e.points }), error });
      }
    }
    return [writer.finish(), rejected];
  }
}

/** An episode's ml_alerts row: its state after the event; `points` its points as JSON text. */
export function alertRow(e: AlertEpisodeEvent, points: string): AlertRow {
  const [machine, sensor] = e.key.split("/");
  return {
    episode_id: e.episode_id,
    key: e.key,
    machine_id: e.fields.machine_id ?? machine,
    sensor_type: e.fields.sensor_type ?? sensor ?? "",
    family: e.family,
    rules: e.rules,
    first_rule: e.first_rule,
    description: e.description,
    severity: e.severity,
    state: e.closed_at === null ? "open" : "closed",
    opened_at: e.opened_at,
    last_fired_at: e.last_fired_at,
    closed_at: e.closed_at,
    firings: e.firings,
    limits_version: e.limits_version,
    cl: finite(e.cl),
    sigma: finite(e.sigma),
    points,
    acknowledged_at: e.acknowledged_at,
    acknowledged_by: e.acknowledged_by,
    ack_note: e.ack_note,
  };
}

function finite(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

/** As the sink's own dead-letter line of a row it was handed (connectors/clickhouse/sink.ts safeJson). */
function deadLetterLine(row: unknown): string {
  try {
    return JSON.stringify(row) ?? String(row);
  } catch {
    return String(row);
  }
}
