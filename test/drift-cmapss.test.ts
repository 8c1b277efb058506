/**
 * Drift PSI on real data (C-MAPSS FD001, bench/drift-cmapss.ts): the failure model's feature rows
 * replayed unit after unit against the reference histograms its training stores, with the monitor's
 * defaults (W = 10 000).
 *
 * - Unshifted, the replay of all 100 units stays stable (measured max PSI 0.066).
 * - A copy of the units with one sensor raised by 1σ, replayed after them, is raised on that
 *   sensor's rolling mean only — not its slope, not another sensor — within j* ± W/10 readings
 *   (cycles, in unit order), j* the mixture prediction of bench/drift-cmapss.ts mixtureReadings
 *   (the window holding W − j unshifted and j shifted rows at their whole-replay bin proportions);
 *   and it is major before W readings, once the window holds only shifted rows.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readCmapss } from "../connectors/files/cmapss.js";
import { referenceDataDir } from "../connectors/files/reference-data.js";
import { cmapssReference, replayFigures, replayRows, shiftFigures } from "../bench/drift-cmapss.js";
import { DEFAULT_PSI_MONITOR_OPTIONS } from "../operators/drift/mod.js";

const units = readCmapss(join(referenceDataDir(), "cmapss", "train_FD001.txt"));
const { reference, names } = cmapssReference(units);
const W = DEFAULT_PSI_MONITOR_OPTIONS.window;

describe("drift PSI on C-MAPSS FD001 feature rows (unit order, default options)", () => {
  it("the unshifted replay stays stable", () => {
    const r = replayFigures(reference, replayRows(units, names, "unit"), {}, "unit");
    expect(r.rows).toBe(20_631);
    expect(r.changes).toBe(0);
    expect(r.maxPsi).toBeLessThan(DEFAULT_PSI_MONITOR_OPTIONS.moderate);
  });

  for (const sensor of ["s11", "s7", "s2"]) {
    it(`a +1σ shift of ${sensor} is raised on ${sensor}.mean only, within j* ± W/10 readings, major within W`, () => {
      const s = shiftFigures(units, reference, names, sensor, 1, {});
      expect(s.changesBefore).toBe(0);
      expect(s.firstMoved).toEqual([`${sensor}.mean`]);
      expect(s.everMoved).toEqual([`${sensor}.mean`]);
      expect(s.predictedModerate).not.toBeNull();
      expect(Math.abs((s.readingsToModerate as number) - (s.predictedModerate as number))).toBeLessThanOrEqual(W / 10);
      expect(s.readingsToMajor).not.toBeNull();
      expect(s.readingsToMajor as number).toBeLessThanOrEqual(W);
    });
  }
});
