/**
 * A single record's sensor_unit, operating_mode and work_order_id go to its ml_sensor_data row.
 * They ride through the engine as the record's 4-byte payload — the id of the interned triple —
 * so no object is made per record until the output.
 */
import type { RecordLabelFields } from "./source.js";

/** Distinct (sensor_unit, operating_mode, work_order_id) triples one sensor job keeps. */
export const RECORD_LABELS_MAX = 1 << 18;

/**
 * Interned (sensor_unit, operating_mode, work_order_id) triples of single records. Id 0 is "none";
 * the table grows with the distinct triples seen in the run (units and modes are a handful, work
 * orders a few per line and day).
 */
export class RecordLabels {
  private readonly ids = new Map<string, number>();
  private readonly triples: Array<readonly [string | undefined, string | undefined, string | undefined] | undefined> = [undefined];
  /** Records whose triple was new once the table was full: their row keeps the reading, with the three fields empty. */
  unkept = 0;

  /** At most `max` distinct triples are kept (work orders come and go; the table must not grow without bound). */
  constructor(private readonly max = RECORD_LABELS_MAX) {}

  /** The id of the record's triple, 0 when it has none of the three. */
  idOf(r: RecordLabelFields): number {
    const { sensor_unit: unit, operating_mode: mode, work_order_id: workOrder } = r;
    if (unit === undefined && mode === undefined && workOrder === undefined) return 0;
    // Absent and "" are both "" here (and in ClickHouse); the lengths make the name unambiguous.
    const u = unit ?? "";
    const m = mode ?? "";
    const name = `${u.length}:${u}${m.length}:${m}${workOrder ?? ""}`;
    let id = this.ids.get(name);
    if (id === undefined) {
      id = this.triples.length;
      if (id > this.max) {
        this.unkept++;
        return 0;
      }
      this.triples.push([unit, mode, workOrder]);
      this.ids.set(name, id);
    }
    return id;
  }

  /** The triple of an id; undefined for 0. */
  get(id: number): readonly [string | undefined, string | undefined, string | undefined] | undefined {
    return this.triples[id];
  }
}
