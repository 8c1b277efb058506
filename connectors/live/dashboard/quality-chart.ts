/**
 * The quality view's chart of finished batches: per batch, at its end (event time), the yield the
 * model predicted when the batch ended and the first-pass yield it had, with the warning and
 * critical yield thresholds as lines — how far off the model was, and which side of a threshold.
 */
import type UPlot from "uplot";
import { QUALITY_THRESHOLDS, type QualityBatch } from "./quality-source.js";
import { h } from "./view.js";

export class YieldChart {
  readonly el = h("div", "chart yield-chart");
  private readonly plot: UPlot;
  private range: [number, number] = [0.85, 1];

  constructor(width: number) {
    this.el.append(h("h3", "", "Finished batches: predicted and actual first-pass yield"));
    const dots = (label: string, colour: string): UPlot.Series => ({
      label,
      stroke: colour,
      paths: () => null,
      points: { show: true, size: 7, fill: colour },
    });
    const threshold = (label: string, colour: string): UPlot.Series => ({
      label,
      stroke: colour,
      width: 1,
      dash: [5, 4],
      points: { show: false },
    });
    this.plot = new uPlot(
      {
        width,
        height: 220,
        ms: 1,
        scales: { x: { time: true }, y: { range: () => this.range } },
        series: [
          {},
          dots("actual", "#1d2330"),
          dots("predicted", "#1f77b4"),
          threshold(`warning ${QUALITY_THRESHOLDS.yieldWarning}`, "#f9a825"),
          threshold(`critical ${QUALITY_THRESHOLDS.yieldCritical}`, "#c62828"),
        ],
      },
      [[]],
      this.el,
    );
  }

  /** Draws the completed batches with an outcome, oldest first (uPlot wants x ascending). */
  show(completed: readonly QualityBatch[]): void {
    const done = completed.filter((b) => b.outcome !== null).sort((a, b) => (a.outcome?.timestamp ?? 0) - (b.outcome?.timestamp ?? 0));
    const x = done.map((b) => b.outcome?.timestamp ?? 0);
    const actual = done.map((b) => b.outcome?.first_pass_yield ?? null);
    const predicted = done.map((b) => b.outcome?.predicted_yield ?? null);
    const low = Math.min(QUALITY_THRESHOLDS.yieldCritical, ...actual.filter((v) => v !== null), ...predicted.filter((v) => v !== null));
    // Room below the lowest point and the critical line; the top is a yield of 1.
    this.range = [Math.floor((low - 0.01) * 100) / 100, 1];
    this.el.dataset.points = String(done.length);
    this.plot.setData([
      x,
      actual,
      predicted,
      x.map(() => QUALITY_THRESHOLDS.yieldWarning),
      x.map(() => QUALITY_THRESHOLDS.yieldCritical),
    ] as UPlot.AlignedData);
  }

  stop(): void {
    this.plot.destroy();
  }
}
