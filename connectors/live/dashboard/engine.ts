/**
 * The engine view, from /metrics every 2 s (parsed in the page, prometheus.ts) — models' drift is
 * the models view's (models.ts):
 * throughput (records in and out per second, charted), lag (records waiting in the reorder buffer,
 * tasks in flight, rows waiting for ClickHouse), pool utilisation, dead letters by reason, late
 * records, model latency (model seconds / model runs between two scrapes) and predictions, and the
 * data-quality rates (rejected and late per record in, machines missing a model feature).
 * Prediction accuracy: the mean absolute error of the predicted remaining useful life, where the
 * source knows the truth (a C-MAPSS training file replayed: `linewatch_prediction_truth_total`,
 * `linewatch_prediction_rul_abs_error_cycles_total`); otherwise it says there is no ground truth.
 */
import type UPlot from "uplot";
import { getText } from "./api.js";
import { byLabel, parsePrometheus, total, type Sample } from "./prometheus.js";
import { drawLoop, SeriesBuffer, type Drawable } from "./series.js";
import { every, fillTable, fmt, h, table, type View } from "./view.js";

interface Previous {
  t: number;
  samples: Sample[];
}

class ThroughputChart implements Drawable {
  readonly buf = new SeriesBuffer(300, 3);
  readonly el = h("div", "chart");
  private readonly plot: UPlot;

  constructor() {
    this.el.append(h("h3", "", "Throughput (records/s)"));
    this.plot = new uPlot(
      {
        width: Math.min(900, window.innerWidth - 60),
        height: 200,
        ms: 1,
        series: [{}, { label: "in (all sources)", stroke: "#1f77b4" }, { label: "scored (all analyses)", stroke: "#2e7d32" }],
      },
      [[]],
      this.el,
    );
  }

  draw(): void {
    this.plot.setData(this.buf.views() as unknown as UPlot.AlignedData);
  }
}

export function engineView(): View {
  const el = h("section");
  const note = h("p", "muted");
  const figures = h("div", "figures");
  const chart = new ThroughputChart();
  const dead = table(["dead-letter reason", "records"]);
  const queues = table(["queue", "depth"]);
  el.append(h("h1", "", "Engine"), note, figures, chart.el, h("h2", "", "Lag"), queues.table, h("h2", "", "Dead letters"), dead.table);
  let prev: Previous | null = null;
  const stop = every(
    2000,
    async () => {
      const now: Previous = { t: Date.now(), samples: parsePrometheus(await getText("/metrics")) };
      if (prev !== null) show(prev, now, figures, chart);
      fillTable(
        dead.body,
        [...byLabel(now.samples, "linewatch_dead_letter_total", "reason")].map(([r, n]) => [r, String(n)]),
      );
      fillTable(
        queues.body,
        [...byLabel(now.samples, "linewatch_queue_depth", "queue")].map(([q, n]) => [q, String(n)]),
      );
      note.textContent = "From /metrics every 2 s; rates over the last interval.";
      prev = now;
    },
    (e) => (note.textContent = `metrics: ${String(e)}`),
  );
  return {
    el,
    stop: () => {
      stop();
      drawLoop.forget(chart);
    },
  };
}

function accuracy(samples: readonly Sample[]): string {
  const judged = total(samples, "linewatch_prediction_truth_total");
  if (judged === 0) return "no ground truth in this run";
  return `${fmt(total(samples, "linewatch_prediction_rul_abs_error_cycles_total") / judged, 1)} cycles over ${judged} predictions`;
}

function show(prev: Previous, now: Previous, figures: HTMLElement, chart: ThroughputChart): void {
  const dt = (now.t - prev.t) / 1000;
  const delta = (name: string) => total(now.samples, name) - total(prev.samples, name);
  // Per source (the sensor source, the serial simulator…) and per analysis: each analysis counts the records it scored.
  const rates = (name: string, label: string) => {
    const before = byLabel(prev.samples, name, label);
    return [...byLabel(now.samples, name, label)].map(([k, v]) => [k, (v - (before.get(k) ?? 0)) / dt] as const);
  };
  const inBySource = rates("linewatch_records_in_total", "source");
  const outByAnalysis = rates("linewatch_records_out_total", "analysis");
  const inRate = inBySource.reduce((a, [, r]) => a + r, 0);
  const outRate = outByAnalysis.reduce((a, [, r]) => a + r, 0);
  chart.buf.push((c) => (c === 0 ? now.t : c === 1 ? inRate : outRate));
  drawLoop.mark(chart);
  const dIn = delta("linewatch_records_in_total");
  const runs = delta("linewatch_model_runs");
  const machines = byLabel(now.samples, "linewatch_prediction_machines", "features");
  const known = (machines.get("complete") ?? 0) + (machines.get("incomplete") ?? 0);
  const items: Array<[string, string]> = [
    ...inBySource.map(([source, r]): [string, string] => [`records in / s (${source})`, fmt(r, 0)]),
    ...outByAnalysis.map(([analysis, r]): [string, string] => [`scored / s (${analysis})`, fmt(r, 0)]),
    [
      "pool utilisation",
      `${fmt(total(now.samples, "linewatch_pool_utilisation_ratio") * 100, 1)} % of ${total(now.samples, "linewatch_pool_workers")} workers`,
    ],
    ["late records", String(total(now.samples, "linewatch_late_records_total"))],
    ["rejected per record in", dIn > 0 ? fmt(delta("linewatch_dead_letter_total") / dIn, 4) : "—"],
    ["late per record in", dIn > 0 ? fmt(delta("linewatch_late_records_total") / dIn, 4) : "—"],
    ["model latency", runs > 0 ? `${fmt((delta("linewatch_model_seconds") / runs) * 1000, 2)} ms` : "no model calls"],
    ["predictions", String(total(now.samples, "linewatch_predictions_total"))],
    ["machines missing a model feature", known > 0 ? `${machines.get("incomplete") ?? 0} of ${known}` : "no model"],
    ["prediction accuracy (RUL mean absolute error)", accuracy(now.samples)],
    ["WebSocket messages published / s", fmt(delta("linewatch_ws_published_total") / dt, 0)],
    ["serials quarantined", String(total(now.samples, "linewatch_serial_quarantined_total"))],
  ];
  figures.replaceChildren(
    ...items.map(([label, value]) => {
      const f = h("div", "figure");
      f.append(h("div", "muted", label), h("div", "value", value));
      return f;
    }),
  );
}
