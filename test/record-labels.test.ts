import { describe, expect, it } from "vitest";
import { RecordLabels } from "../engine/jobs/record-labels.js";

describe("NATS job - record labels (sensor_unit, operating_mode, work_order_id)", () => {
  it("interns each distinct triple once, and stops at its bound, counting", () => {
    const labels = new RecordLabels(2);
    expect(labels.idOf({})).toBe(0);
    const a = labels.idOf({ sensor_unit: "bar", operating_mode: "running", work_order_id: "WO-1" });
    const b = labels.idOf({ sensor_unit: "bar", operating_mode: "running", work_order_id: "WO-2" });
    expect([a, b]).toEqual([1, 2]);
    expect(labels.idOf({ sensor_unit: "bar", operating_mode: "running", work_order_id: "WO-1" })).toBe(a);
    expect(labels.get(a)).toEqual(["bar", "running", "WO-1"]);
    // Full: a third triple is not kept, its record gets no labels, and it is counted.
    expect(labels.idOf({ sensor_unit: "°C", operating_mode: "idle", work_order_id: "WO-3" })).toBe(0);
    expect(labels.idOf({ sensor_unit: "°C", operating_mode: "idle", work_order_id: "WO-4" })).toBe(0);
    expect(labels.unkept).toBe(2);
    // The kept ones still resolve.
    expect(labels.idOf({ sensor_unit: "bar", operating_mode: "running", work_order_id: "WO-2" })).toBe(b);
    expect(labels.get(b)).toEqual(["bar", "running", "WO-2"]);
  });
});
