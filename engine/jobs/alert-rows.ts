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
 * The rows are the same: an event the table takes as it is is written through the writer calls
 * the table's own encoder makes for its row ({@link alertRow}); any other goes through that encoder
 * (schema.ts encodeRowBinary, its checks included), and a row it refuses goes to the dead letters
 * with the line the JSON path gave them (the row as JSON, points as an array).
 */
import {
  ALERT_SEVERITIES,
  EncodeError,
  encodeRowBinary,
  episodeVersion,
  isDateTimeMs,
  RowBinaryWriter,
  type AlertRow,
  type EncodedRows,
  type RejectedRow,
} from "../../connectors/clickhouse/mod.js";
import type { AlertEpisodeEvent, AlertPoint } from "../../operators/spc/mod.js";

/** Episodes whose points text is kept at most; past it the cache starts over (an episode never closed, e.g. at a run's end, is not kept for ever). */
export const POINTS_TEXT_KEPT_MAX = 4096;

/**
 * What an episode's rows repeat, made once while it is open: its points as JSON text and as the
 * RowBinary String cell of that text, and its first five columns (episode_id, key, machine_id,
 * sensor_type, family) as their RowBinary cells back to back, with the strings they were made of.
 */
interface EpisodeCells {
  points: readonly AlertPoint[];
  text: string;
  /** `text` as a RowBinary String; made when a row is first written the fast way. */
  pointsCell: Uint8Array | null;
  head: { names: readonly string[]; cells: Uint8Array } | null;
}

/** The cells of each open episode, made once while they stay the same. */
class EpisodeCellsKept {
  private readonly kept = new Map<string, EpisodeCells>();

  /** The episode's cells after this event, the points text made again when the points differ; forgotten at the episode's close. */
  of(e: AlertEpisodeEvent): EpisodeCells {
    const entry = this.kept.get(e.episode_id);
    if (entry !== undefined && samePoints(entry.points, e.points)) {
      if (e.closed_at !== null) this.kept.delete(e.episode_id);
      return entry;
    }
    // A copy of the points: the event's own array may be changed by whoever holds it (the drift watch's is shared until routed).
    const cells: EpisodeCells = {
      points: e.points.map((p) => ({ position: p.position, time: p.time, value: p.value })),
      text: JSON.stringify(e.points),
      pointsCell: null,
      head: entry?.head ?? null,
    };
    if (e.closed_at !== null) {
      this.kept.delete(e.episode_id);
      return cells;
    }
    if (this.kept.size >= POINTS_TEXT_KEPT_MAX) this.kept.clear();
    this.kept.set(e.episode_id, cells);
    return cells;
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

/**
 * Encodes batches of events as ml_alerts RowBinary rows; one per thread (it keeps its writer and
 * the episodes' cells).
 *
 * Two ways to one row. An event whose every member the table takes as it is (strings, a known
 * severity, times DateTime holds, UInt32 counts: what the trackers always make) is written
 * straight from the event through the same writer methods the table's encoder calls, its
 * episode's repeated cells copied; any other event goes through the table's encoder
 * (schema.ts encodeRowBinary, its checks included), which writes it or refuses it with the
 * EncodeError the dead letters name. test/alert-rows.test.ts checks both give the same bytes.
 * Measured with `node dist/bench/alert-rows-ab.js --before <old dist>` (thread CPU per event, the
 * same bytes): 5.06 µs through the table's encoder for every row, 4.52 µs the direct way (0.89×);
 * most of what is left is per episode (its points stringified and copied once).
 */
export class AlertRowsBinary {
  private readonly writer = new RowBinaryWriter(16 * 1024);
  private readonly cells = new EpisodeCellsKept();

  /** The events' rows in their order, and those the table refuses apart (for the dead-letter output). */
  encode(events: readonly AlertEpisodeEvent[]): [EncodedRows, RejectedRow[]] {
    const writer = this.writer;
    writer.reset();
    const rejected: RejectedRow[] = [];
    for (let index = 0; index < events.length; index++) {
      const e = events[index];
      const cells = this.cells.of(e);
      if (writeDirect(writer, e, cells)) continue;
      const row = alertRow(e, cells.text);
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

const SEVERITIES: ReadonlySet<string> = new Set(ALERT_SEVERITIES);

/**
 * The event's row written straight from its members when the table takes each as it is (see
 * {@link AlertRowsBinary}); false, having written nothing, otherwise. The column order and the
 * writer calls are schema.ts ALERT_COLUMNS': Strings, Array(String), DateTime + UInt64 pairs
 * (Nullable for closed_at and acknowledged_at), UInt32, Nullable(Float64), UInt64.
 */
function writeDirect(w: RowBinaryWriter, e: AlertEpisodeEvent, cells: EpisodeCells): boolean {
  if (!plainEvent(e)) return false;
  const head = headCells(e, cells);
  if (head === null) return false;
  cells.pointsCell ??= stringCells([cells.text]);
  w.raw(head);
  w.stringArray(e.rules);
  w.string(e.first_rule);
  w.string(e.description ?? "");
  w.string(e.severity);
  w.string(e.closed_at === null ? "open" : "closed");
  timeCells(w, e.opened_at);
  timeCells(w, e.last_fired_at);
  optionalTimeCells(w, e.closed_at);
  w.uint32(e.firings);
  w.uint32(e.limits_version);
  w.nullableFloat64(Number.isFinite(e.cl) ? e.cl : null);
  w.nullableFloat64(Number.isFinite(e.sigma) ? e.sigma : null);
  w.raw(cells.pointsCell);
  optionalTimeCells(w, e.acknowledged_at);
  w.string(e.acknowledged_by ?? "");
  w.string(e.ack_note ?? "");
  w.uint64(episodeVersion(e.closed_at !== null, e.acknowledged_at !== null, e.firings));
  w.endRow();
  return true;
}

/** Whether the table takes every member of the event as it is (else its encoder decides). */
function plainEvent(e: AlertEpisodeEvent): boolean {
  return (
    typeof e.first_rule === "string" &&
    (e.description === undefined || typeof e.description === "string") &&
    SEVERITIES.has(e.severity) &&
    plainStrings(e.rules) &&
    plainTime(e.opened_at) &&
    plainTime(e.last_fired_at) &&
    (e.closed_at === null || plainTime(e.closed_at)) &&
    (e.acknowledged_at === null || plainTime(e.acknowledged_at)) &&
    plainUint32(e.firings) &&
    plainUint32(e.limits_version) &&
    (e.acknowledged_by === null || e.acknowledged_by === undefined || typeof e.acknowledged_by === "string") &&
    (e.ack_note === null || e.ack_note === undefined || typeof e.ack_note === "string")
  );
}

function plainStrings(v: readonly string[]): boolean {
  if (!Array.isArray(v)) return false;
  for (const s of v) if (typeof s !== "string") return false;
  return true;
}

function plainTime(ms: number): boolean {
  return typeof ms === "number" && isDateTimeMs(ms);
}

function plainUint32(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

/**
 * episode_id, key, machine_id, sensor_type, family as RowBinary Strings back to back, kept with
 * the episode while its strings stay the same; null when one is not a string.
 */
function headCells(e: AlertEpisodeEvent, cells: EpisodeCells): Uint8Array | null {
  const { episode_id: id, key, family } = e;
  const machine = e.fields.machine_id;
  const sensor = e.fields.sensor_type;
  const h = cells.head;
  if (h !== null && h.names[0] === id && h.names[1] === key && h.names[2] === machine && h.names[3] === sensor && h.names[4] === family)
    return h.cells;
  if (typeof id !== "string" || typeof key !== "string" || typeof family !== "string") return null;
  const row = alertRow(e, "");
  if (typeof row.machine_id !== "string" || typeof row.sensor_type !== "string") return null;
  cells.head = { names: [id, key, machine, sensor, family], cells: stringCells([id, key, row.machine_id, row.sensor_type, family]) };
  return cells.head.cells;
}

/** Where {@link stringCells} writes (a writer's buffers cost more to make than a row's cells). */
const CELLS = new RowBinaryWriter(4096);

/** The strings as RowBinary Strings back to back, in a buffer of their own. */
function stringCells(strings: readonly string[]): Uint8Array {
  CELLS.reset();
  for (const s of strings) CELLS.string(s);
  return CELLS.bytesView().slice();
}

/** A DateTime (whole seconds) and its UInt64 `_ms` (whole milliseconds) of a time DateTime holds. */
function timeCells(w: RowBinaryWriter, time: number): void {
  const ms = Math.floor(time);
  w.dateTime(Math.floor(ms / 1000));
  w.uint64(ms);
}

/** As {@link timeCells}, each Nullable: NULL, NULL for no time. */
function optionalTimeCells(w: RowBinaryWriter, time: number | null): void {
  if (time === null) {
    w.isNull(true);
    w.isNull(true);
    return;
  }
  const ms = Math.floor(time);
  w.isNull(false);
  w.dateTime(Math.floor(ms / 1000));
  w.isNull(false);
  w.uint64(ms);
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
