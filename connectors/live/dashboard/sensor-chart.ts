/**
 * One sensor's live control chart (uPlot): the value, its rolling mean, the centre line, UCL and
 * LCL, the points where a Western Electric or Nelson rule fired, and on demand EWMA (with its
 * limits) and the two CUSUM sums (right axis). Fed from score frames (live and history); drawn
 * by the page's draw loop, at most once per animation frame.
 */
import type UPlot from "uplot";
import type { ScoreFrame } from "./score-frame.js";
import { drawLoop, SeriesBuffer, type Drawable } from "./series.js";
import { h } from "./view.js";

/**
 * Buffer columns: time, then one per series below, then the alarm columns as the run wrote them
 * (not drawn: the what-if panel counts what actually fired per rule from them).
 */
const COLUMNS = [
  "value",
  "mean",
  "cl",
  "ucl",
  "lcl",
  "fired",
  "spc_ewma",
  "ewma_ucl",
  "ewma_lcl",
  "cusum_pos",
  "cusum_neg",
  "we_mask",
  "nelson_mask",
  "cusum_alarm",
  "ewma_alarm",
] as const;
/** Buffer columns uPlot draws: time and the series. */
const DRAWN = 12;
/** The alarm columns' names, from the buffer's column DRAWN on. */
export const ALARM_COLUMNS: readonly string[] = COLUMNS.slice(DRAWN - 1);
const EWMA_SERIES = [7, 8, 9];
const CUSUM_SERIES = [10, 11];
export const CHART_POINTS = 600;

/** [min, max] of the finite values of `cols`, padded by 5 % ([0, 1] when there are none). */
export function finiteRange(cols: readonly Float64Array[]): [number, number] {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const col of cols)
    for (let i = 0; i < col.length; i++) {
      const x = col[i];
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
  if (!(hi >= lo)) return [0, 1];
  const pad = hi > lo ? (hi - lo) * 0.05 : Math.abs(hi) * 0.05 || 1;
  return [lo - pad, hi + pad];
}

export class SensorChart implements Drawable {
  readonly el = h("div", "chart");
  readonly buf = new SeriesBuffer(CHART_POINTS, COLUMNS.length + 1);
  private readonly plot: UPlot;
  /** The y ranges, computed over finite values only (NaN marks "no value" in the buffers; uPlot's own range would be NaN). */
  private yRange: [number, number] = [0, 1];
  private cusumRange: [number, number] = [0, 1];
  private ewmaShown = false;
  private cusumShown = false;

  constructor(
    readonly sensor: string,
    width: number,
  ) {
    this.el.dataset.sensor = sensor;
    this.el.append(h("h3", "", sensor));
    const line = (label: string, stroke: string, extra: Partial<UPlot.Series> = {}): UPlot.Series => ({
      label,
      stroke,
      width: 1,
      points: { show: false },
      ...extra,
    });
    const opts: UPlot.Options = {
      width,
      height: 200,
      ms: 1,
      scales: { x: { time: true }, y: { range: () => this.yRange }, cusum: { range: () => this.cusumRange } },
      series: [
        {},
        line("value", "#1f77b4"),
        line("mean", "#555"),
        line("CL", "#2e7d32", { dash: [5, 4] }),
        line("UCL", "#c62828"),
        line("LCL", "#c62828"),
        { label: "rule fired", stroke: "#c62828", paths: () => null, points: { show: true, size: 7, fill: "#c62828" } },
        line("EWMA", "#8e24aa", { show: false }),
        line("EWMA UCL", "#ce93d8", { show: false, dash: [3, 3] }),
        line("EWMA LCL", "#ce93d8", { show: false, dash: [3, 3] }),
        line("CUSUM+", "#ef6c00", { show: false, scale: "cusum" }),
        line("CUSUM−", "#6d4c41", { show: false, scale: "cusum" }),
      ],
      axes: [{}, {}, { scale: "cusum", side: 1, grid: { show: false } }],
    };
    this.plot = new uPlot(opts, [[]], this.el);
  }

  /** Rows of `frame` whose key is this sensor's (`<machine>.<sensor>`). */
  add(frame: ScoreFrame, frameKey: string): void {
    const k = frame.keys.indexOf(frameKey);
    if (k < 0) return;
    const col = (name: string) => frame.columns.get(name);
    const cols = COLUMNS.map((c) => (c === "value" ? frame.values : c === "fired" ? undefined : col(c)));
    const we = col("we_mask");
    const nelson = col("nelson_mask");
    const mr = col("mr_mask");
    for (let i = 0; i < frame.length; i++) {
      if (frame.keyIndex[i] !== k) continue;
      const fired = (we !== undefined && we[i] > 0) || (nelson !== undefined && nelson[i] > 0) || (mr !== undefined && mr[i] > 0);
      this.buf.push((c) => {
        if (c === 0) return frame.times[i];
        if (c === 6) return fired ? frame.values[i] : Number.NaN;
        const src = cols[c - 1];
        return src === undefined ? Number.NaN : src[i];
      });
    }
    drawLoop.mark(this);
  }

  showEwma(on: boolean): void {
    this.ewmaShown = on;
    for (const s of EWMA_SERIES) this.plot.setSeries(s, { show: on });
  }

  showCusum(on: boolean): void {
    this.cusumShown = on;
    for (const s of CUSUM_SERIES) this.plot.setSeries(s, { show: on });
  }

  /** The window's times, values and alarm columns (by SPC field name), copied: the live buffer moves on. */
  snapshot(): { times: Float64Array; values: Float64Array; alarms: Map<string, Float64Array> } {
    const v = this.buf.views();
    return {
      times: v[0].slice(),
      values: v[1].slice(),
      alarms: new Map(ALARM_COLUMNS.map((name, i) => [name, v[DRAWN + i].slice()])),
    };
  }

  /** Points in the window, and whether the limit series hold values (for the browser test). */
  facts(): { points: number; limits: boolean; fired: number } {
    const v = this.buf.views();
    const finite = (a: Float64Array) => a.some((x) => Number.isFinite(x));
    return { points: this.buf.length, limits: finite(v[3]) && finite(v[4]) && finite(v[5]), fired: v[6].filter(Number.isFinite).length };
  }

  draw(): void {
    const v = this.buf.views();
    this.yRange = finiteRange([v[1], v[2], v[3], v[4], v[5], ...(this.ewmaShown ? [v[7], v[8], v[9]] : [])]);
    this.cusumRange = this.cusumShown ? finiteRange([v[10], v[11]]) : [0, 1];
    this.plot.setData(v.slice(0, DRAWN) as unknown as UPlot.AlignedData);
  }

  destroy(): void {
    drawLoop.forget(this);
    this.plot.destroy();
  }
}
