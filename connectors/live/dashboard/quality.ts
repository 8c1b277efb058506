/**
 * The quality view (issue 16, point 3), for a quality engineer: from the quality job's batches
 * (GET /api/ml/quality/batches/, quality-source.ts) per line the running batches with their
 * predicted first-pass yield, defect rate and defect probability per category, coloured by the
 * thresholds, and an open episode's drivers (quality-cards.ts); the finished batches' predicted
 * and actual yield (quality-chart.ts, and a table with the error); the quality episodes, open and
 * recent, through the alerts view's source and rows (family `quality`, acknowledge included).
 * Refreshed every 3 s, and within a second when the `alerts` topic carries a quality episode's
 * event, as the alerts and serialization views are.
 */
import { alertRowElement, ALERT_COLUMNS } from "./alerts.js";
import { loadAlerts } from "./alerts-source.js";
import { serverOffer } from "./api.js";
import { levelValue, pct, renderLines, signedPoints } from "./quality-cards.js";
import { YieldChart } from "./quality-chart.js";
import { driversOf, loadBatches, type QualityBatch, QUALITY_THRESHOLDS, yieldLevel, defectLevel } from "./quality-source.js";
import { atMostOnceASecond, badge, every, fmt, fmtTime, h, table, type View, type ViewContext } from "./view.js";

/** Finished batches listed in the table (the chart shows every one the job keeps, up to 500). */
const FINISHED_ROWS = 50;

export function qualityView(ctx: ViewContext): View {
  const el = h("section", "quality");
  const note = h("p", "muted");
  const lines = h("div", "quality-lines");
  const chart = new YieldChart(Math.min(900, window.innerWidth - 60));
  const finishedNote = h("p", "muted finished-summary");
  const finished = table([
    "batch",
    "line",
    "work order",
    "ended",
    "units",
    "predicted yield",
    "actual yield",
    "error",
    "predicted defect rate",
    "actual defect rate",
    "episode",
  ]);
  finished.table.classList.add("finished");
  const episodes = table(["line", "batch", ...ALERT_COLUMNS.slice(2)]);
  episodes.table.classList.add("quality-episodes");
  const episodesNote = h("p", "muted");
  el.append(h("h1", "", "Quality"), note, legend(), h("h2", "", "Running batches"), lines);
  el.append(
    h("h2", "", "Finished batches"),
    finishedNote,
    chart.el,
    finished.table,
    h("h2", "", "Quality episodes"),
    episodesNote,
    episodes.table,
  );

  const refresh = async (): Promise<void> => {
    if (!(await serverOffer()).providers.quality) {
      note.textContent =
        "This run has no quality job: start it with --quality-model <model.onnx> or --quality-model builtin (docs/quality.md).";
      return;
    }
    const batches = await loadBatches();
    showBatches(batches, { note, lines, chart, finishedNote, finished: finished.body });
    const list = await loadAlerts("all", "", "quality");
    episodesNote.textContent = `${plural(list.rows.length, "quality episode")} (open and recent).`;
    episodes.body.replaceChildren(...list.rows.map((r) => alertRowElement(r, () => void refresh())));
  };
  const stopPolling = every(3000, refresh, (e) => (note.textContent = `quality: ${String(e)}`));
  const unsubscribe = ctx.live.subscribe("alerts", onQualityEpisode(refresh));
  return {
    el,
    stop: () => {
      stopPolling();
      unsubscribe();
      chart.stop();
    },
  };
}

/** A topic handler that refreshes at most once a second, for quality episodes only. */
function onQualityEpisode(refresh: () => Promise<void>): (data: unknown) => void {
  const soon = atMostOnceASecond(refresh);
  return (data) => {
    if ((data as { family?: string } | null)?.family === "quality") soon();
  };
}

function legend(): HTMLElement {
  const t = QUALITY_THRESHOLDS;
  const p = h("p", "quality-legend");
  p.append(
    h("span", "", "Colours: "),
    levelValue("ok", "ok", "legend"),
    levelValue(`warning: yield < ${t.yieldWarning} or defect rate > ${t.defectWarning}`, "warning", "legend"),
    levelValue(`critical: yield < ${t.yieldCritical} or defect rate > ${t.defectCritical}`, "critical", "legend"),
  );
  return p;
}

interface BatchParts {
  note: HTMLElement;
  lines: HTMLElement;
  chart: YieldChart;
  finishedNote: HTMLElement;
  finished: HTMLTableSectionElement;
}

function showBatches(batches: readonly QualityBatch[], parts: BatchParts): void {
  const running = batches.filter((b) => b.status === "running");
  const completed = batches.filter((b) => b.status === "completed");
  const lineIds = [...new Set(batches.map((b) => b.line_id))].sort();
  parts.note.textContent = `${plural(lineIds.length, "line")}, ${plural(running.length, "batch")} running, ${completed.length} finished (the last ${FINISHED_ROWS} listed).`;
  renderLines(parts.lines, lineIds, running);
  parts.chart.show(completed);
  parts.finishedNote.textContent = finishedSummary(completed);
  parts.finished.replaceChildren(...completed.slice(0, FINISHED_ROWS).map(finishedRow));
}

/** The yield MAE of the finished batches (final prediction against the outcome), in percentage points. */
function finishedSummary(completed: readonly QualityBatch[]): string {
  const errors = completed.map((b) => b.outcome?.yield_error).filter((e): e is number => typeof e === "number");
  if (errors.length === 0) return "No batch has finished yet.";
  const mae = errors.reduce((a, e) => a + Math.abs(e), 0) / errors.length;
  return `${plural(errors.length, "finished batch")}: predicted yield at the batch's end off by ${fmt(mae * 100, 2)} pp on average (mean absolute error).`;
}

function finishedRow(b: QualityBatch): HTMLTableRowElement {
  const tr = h("tr");
  tr.dataset.batch = b.batch_id;
  const o = b.outcome;
  const cell = (c: string | HTMLElement) => {
    const td = h("td");
    td.append(c);
    tr.append(td);
  };
  for (const c of [b.batch_id, b.line_id, b.work_order_id, fmtTime(o?.timestamp), o === null ? "—" : String(o.units_produced)]) cell(c);
  cell(o?.predicted_yield == null ? "—" : levelValue(pct(o.predicted_yield), yieldLevel(o.predicted_yield), "predicted-yield"));
  cell(o === null ? "—" : levelValue(pct(o.first_pass_yield), yieldLevel(o.first_pass_yield), "actual-yield"));
  cell(signedPoints(o?.yield_error));
  cell(
    o?.predicted_defect_rate == null
      ? "—"
      : levelValue(pct(o.predicted_defect_rate), defectLevel(o.predicted_defect_rate), "predicted-defect-rate"),
  );
  cell(o === null ? "—" : levelValue(pct(o.defect_rate), defectLevel(o.defect_rate), "actual-defect-rate"));
  cell(episodeCell(b));
  return tr;
}

/** The batch's episode: its highest severity and the names of its drivers. */
function episodeCell(b: QualityBatch): string | HTMLElement {
  const e = b.episode;
  if (e === null) return "—";
  const span = h("span");
  span.append(
    badge(e.severity),
    ` ${driversOf(e)
      .map((d) => d.feature)
      .join(", ")}`,
  );
  return span;
}

/** "1 batch", "2 batches", "3 lines". */
function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : noun.endsWith("h") ? "es" : "s"}`;
}
