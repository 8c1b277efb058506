/**
 * The quality view's running batches: a panel per line, in it a card per running batch — the
 * latest prediction's first-pass yield and defect rate coloured by the thresholds (quality-source.ts),
 * the defect probability per category, and, while the batch's episode is open, its severity, rules
 * and drivers (the features whose distance from training lowered the predicted yield most).
 */
import {
  DEFECT_CATEGORIES,
  defectLevel,
  driversOf,
  openEpisode,
  predictionLevel,
  type QualityBatch,
  type QualityEpisode,
  type QualityLevel,
  type QualityPrediction,
  yieldLevel,
} from "./quality-source.js";
import { badge, fillTable, fmt, fmtTime, h, table } from "./view.js";

/** A fraction as a percentage with two decimals ("95.73 %"), "—" when missing. */
export function pct(v: number | null | undefined): string {
  return v === null || v === undefined || !Number.isFinite(v) ? "—" : `${fmt(v * 100, 2)} %`;
}

/** A value shown in its threshold band's colour (class `level-<band>`, `data-level`). */
export function levelValue(text: string, level: QualityLevel, cls: string): HTMLElement {
  const e = h("span", `qv ${cls} level-${level}`, text);
  e.dataset.level = level;
  return e;
}

/** One panel per line seen (sorted), each with its running batches' cards or a note that none runs. */
export function renderLines(into: HTMLElement, lines: readonly string[], running: readonly QualityBatch[]): void {
  if (lines.length === 0) {
    into.replaceChildren(h("p", "muted", "No batch seen yet: the quality job lists a line once its first process reading arrives."));
    return;
  }
  into.replaceChildren(
    ...lines.map((line) => {
      const panel = h("div", "quality-line");
      panel.dataset.line = line;
      const mine = running.filter((b) => b.line_id === line);
      panel.append(h("h3", "", line));
      if (mine.length === 0) panel.append(h("p", "muted", "no batch running"));
      for (const b of mine) panel.append(batchCard(b));
      return panel;
    }),
  );
}

function batchCard(b: QualityBatch): HTMLElement {
  const p = b.latest;
  const level = p === null ? "ok" : predictionLevel(p);
  const card = h("div", `batch-card level-${level}`);
  Object.assign(card.dataset, { batch: b.batch_id, line: b.line_id, level: p === null ? "unscored" : level });
  const head = h("div", "batch-head");
  head.append(h("span", "id", b.batch_id), h("span", "muted", ` ${b.work_order_id}`));
  card.append(head, h("div", "muted", `${fmt(b.progress * 100, 0)} % produced · ${b.readings} readings`));
  if (p === null) card.append(h("p", "muted", "not scored yet (first prediction at the quality interval)"));
  else card.append(...predictionParts(p));
  const e = openEpisode(b);
  if (e !== null) card.append(episodeBox(e));
  return card;
}

function predictionParts(p: QualityPrediction): HTMLElement[] {
  const figures = h("div", "batch-figures");
  const figure = (label: string, value: HTMLElement) => {
    const f = h("div");
    f.append(h("div", "muted", label), value);
    figures.append(f);
  };
  figure("predicted first-pass yield", levelValue(pct(p.predicted_yield), yieldLevel(p.predicted_yield), "yield"));
  figure("predicted defect rate", levelValue(pct(p.predicted_defect_rate), defectLevel(p.predicted_defect_rate), "defect-rate"));
  const categories = h("div", "categories");
  for (const c of DEFECT_CATEGORIES) {
    const cell = h("span", "category", `${c} ${pct(p.defect_probability[c])}`);
    cell.dataset.category = c;
    categories.append(cell);
  }
  const at = h("div", "muted predicted-at", `predicted at ${fmtTime(p.timestamp)} (event time), ${p.model_version}`);
  at.dataset.timestamp = String(p.timestamp);
  return [figures, h("div", "muted", "defect probability per unit, by category"), categories, at];
}

function episodeBox(e: QualityEpisode): HTMLElement {
  const box = h("div", "quality-episode");
  box.dataset.episode = e.episode_id;
  box.dataset.severity = e.severity;
  const head = h("div");
  head.append(
    badge(e.severity),
    h(
      "span",
      "",
      ` ${e.rules.join(", ")} · open since ${fmtTime(e.opened_at)} · ${e.firings} ${e.firings === 1 ? "prediction" : "predictions"} past a threshold`,
    ),
  );
  box.append(head);
  const drivers = driversOf(e);
  if (drivers.length === 0) {
    box.append(h("p", "muted", "no drivers (the model carries no training means)"));
    return box;
  }
  const t = table(["driver", "value", "training mean", "Δ yield", "Δ defect rate"]);
  t.table.className = "drivers";
  fillTable(
    t.body,
    drivers.map((d) => [
      d.feature,
      fmt(d.value, 3),
      fmt(d.training_mean, 3),
      signedPoints(d.delta_yield),
      signedPoints(d.delta_defect_rate),
    ]),
  );
  for (const [i, tr] of [...t.body.rows].entries()) tr.dataset.feature = drivers[i].feature;
  box.append(t.table);
  return box;
}

/** A difference of fractions in percentage points, signed ("−1.34 pp"). */
export function signedPoints(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "—";
  const s = fmt(Math.abs(v) * 100, 2);
  return `${v < 0 && s !== "0.00" ? "−" : "+"}${s} pp`;
}
