/**
 * The models view (`#/models`, `#/models/<version>`): a card per model the run has used (kind,
 * version, in use or swapped out, drift level, readings against the drift window, why PSI is not
 * measured when it is not), and the drift panel of the chosen one (the model in use first):
 * per input feature its PSI against the moderate and major thresholds as DOM bars, highest first,
 * the residual test (units judged at their failure, detections, the last change) and the open
 * model_drift episode with a link to the alerts view.
 *
 * From `GET /api/ml/models/` every 3 s (its reports carry every feature; there is no drift topic):
 * one request per poll whatever the model count. A run without a prediction model has no such
 * route (the server's providers say so, so the page asks nothing bound to fail): the view says how
 * to start one. The bar rows are made once per feature and updated in place; at most MAX_BARS.
 */
import { ApiError, getJson, serverOffer } from "./api.js";
import { badge, every, fmt, h, type View } from "./view.js";

/** Poll period of the models' reports (ms). */
const POLL_MS = 3000;
/** Bars drawn at most (a model reads a few dozen features: FD001's RUL model 28). */
const MAX_BARS = 100;

type DriftLevel = "stable" | "moderate" | "major";

/** One model's report, as engine/jobs/model-drift.ts `ModelDriftReport` serves it (docs/drift.md). */
export interface ModelReport {
  kind: string;
  version: string;
  in_use: boolean;
  level: DriftLevel | null;
  unavailable: string | null;
  window: number;
  readings: number;
  skipped: number;
  thresholds: { moderate: number; major: number };
  features: Array<{ name: string; psi: number | null; level: DriftLevel }>;
  residual: {
    units: number | null;
    detections: number;
    last: { direction: "increase" | "decrease"; statistic: number; mean: number; scale: number; at: number } | null;
  };
  episode: { episode_id: string; opened_at: number; rules: string[]; severity: string } | null;
  episodes_opened: number;
}

export function modelsView(chosen: string): View {
  const el = h("section");
  const note = h("p", "muted");
  const cards = h("div", "model-cards");
  const panel = new DriftPanel();
  el.append(h("h1", "", "Models"), note, cards, panel.el);
  const onError = (e: unknown): void => {
    note.textContent = `models: ${e instanceof Error ? e.message : String(e)}`;
  };
  const poll = async (): Promise<void> => {
    const models = await loadModels();
    if (models === null) return void note.replaceChildren(noModel());
    note.textContent = `${models.length} model${models.length === 1 ? "" : "s"} this run has used, refreshed every ${POLL_MS / 1000} s. A card opens its drift.`;
    const shown = models.find((m) => m.version === chosen) ?? models.find((m) => m.in_use) ?? models[0];
    cards.replaceChildren(...models.map((m) => card(m, m === shown)));
    panel.show(shown ?? null);
  };
  let stopped = false;
  let stopPolling = (): void => undefined;
  // Asked once: a run without a model has no models route, so nothing is polled (no request bound to fail).
  serverOffer().then((offer) => {
    if (stopped) return;
    if (offer.providers.models !== true) note.replaceChildren(noModel());
    else stopPolling = every(POLL_MS, poll, onError);
  }, onError);
  return {
    el,
    stop: () => {
      stopped = true;
      stopPolling();
    },
  };
}

/** The reports; null when the server has no models (a run without --predict answers 404 not_configured). */
async function loadModels(): Promise<ModelReport[] | null> {
  try {
    return (await getJson<{ count: number; results: ModelReport[] }>("/api/ml/models/")).results;
  } catch (e) {
    if (e instanceof ApiError && e.status === 404 && e.code === "not_configured") return null;
    throw e;
  }
}

function noModel(): HTMLElement {
  const p = h("p", "no-model");
  p.append(
    "This run has no model: start it with ",
    h("code", "", "--predict <model file>"),
    " (a remaining-useful-life model: ",
    h("code", "", "linewatch predict train"),
    " writes one) to see its inputs' drift here.",
  );
  return p;
}

function card(m: ModelReport, selected: boolean): HTMLAnchorElement {
  const a = h("a", `model-card${selected ? " selected" : ""}`);
  a.href = `#/models/${encodeURIComponent(m.version)}`;
  a.dataset.version = m.version;
  // Before its window first fills a model has no PSI: its level (stable) says nothing yet.
  const filled = Math.min(m.readings, m.window);
  const level = m.level === null ? "unavailable" : filled < m.window ? "filling" : m.level;
  a.dataset.level = level;
  a.dataset.inUse = String(m.in_use);
  const title = h("div", "id", `${m.kind} · ${m.version} `);
  title.append(badge(level));
  const lines = [
    m.in_use ? "in use" : "swapped out (its last report)",
    m.unavailable === null
      ? filled < m.window
        ? `window filling: ${filled} of ${m.window} predictions (no PSI until it is full)`
        : `${m.readings} predictions watched; PSI over the last ${m.window}`
      : `PSI unavailable: ${m.unavailable}`,
    `${m.features.length} features · ${m.skipped} rows skipped (a feature not finite) · ${m.episodes_opened} drift episode${m.episodes_opened === 1 ? "" : "s"}`,
  ];
  a.append(title, ...lines.map((l) => h("div", "", l)));
  return a;
}

/** A feature's bar: made once, updated in place at each poll. */
interface Bar {
  row: HTMLElement;
  fill: HTMLElement;
  value: HTMLElement;
}

/** The chosen model's drift: the PSI bars, the residual test and the open episode. */
class DriftPanel {
  readonly el = h("div", "panel drift-panel");
  private readonly title = h("h2");
  private readonly caption = h("p", "muted");
  private readonly bars = h("div", "psi-bars");
  /** The axis row above the bars: the thresholds' values where their lines are. */
  private readonly axis = axisRow();
  private readonly more = h("p", "muted");
  private readonly residual = h("p");
  private readonly episode = h("p");
  private readonly byFeature = new Map<string, Bar>();
  private version = "";

  constructor() {
    this.el.hidden = true;
    this.el.append(
      this.title,
      this.caption,
      this.bars,
      this.more,
      h("h3", "", "Residual test"),
      this.residual,
      h("h3", "", "Drift episode"),
      this.episode,
    );
  }

  show(m: ModelReport | null): void {
    this.el.hidden = m === null;
    if (m === null) return;
    if (m.version !== this.version) {
      this.version = m.version;
      this.byFeature.clear();
    }
    this.el.dataset.version = m.version;
    this.title.textContent = `Drift of ${m.kind} ${m.version}`;
    const { moderate, major } = m.thresholds;
    this.caption.textContent =
      m.unavailable !== null
        ? `PSI is not measured for this model: ${m.unavailable}.`
        : `PSI of each input feature over the last ${m.window} predictions against the model's training reference, highest first; ` +
          `the lines mark moderate (${moderate}) and major (${major}). Square-root scale up to ${fmt(axisMax(m), 2)}.`;
    this.showBars(m);
    this.residual.replaceChildren(...residualText(m));
    this.episode.replaceChildren(...episodeText(m));
  }

  private showBars(m: ModelReport): void {
    const shown = m.features.slice(0, MAX_BARS);
    const max = axisMax(m);
    const x = (psi: number): string => `${(Math.sqrt(Math.min(psi, max) / max) * 100).toFixed(2)}%`;
    const rows = shown.map((f) => {
      let b = this.byFeature.get(f.name);
      if (b === undefined) this.byFeature.set(f.name, (b = newBar(f.name)));
      b.row.dataset.level = f.level;
      b.row.dataset.psi = f.psi === null ? "" : String(f.psi);
      b.row.className = `psi-row ${f.level}`;
      b.fill.style.width = f.psi === null ? "0" : x(f.psi);
      b.value.textContent = f.psi === null ? "—" : fmt(f.psi, 3);
      b.row.style.setProperty("--moderate", x(m.thresholds.moderate));
      b.row.style.setProperty("--major", x(m.thresholds.major));
      return b.row;
    });
    this.axis.style.setProperty("--moderate", x(m.thresholds.moderate));
    this.axis.style.setProperty("--major", x(m.thresholds.major));
    (this.axis.querySelector(".label.moderate") as HTMLElement).textContent = `moderate ${m.thresholds.moderate}`;
    (this.axis.querySelector(".label.major") as HTMLElement).textContent = `major ${m.thresholds.major}`;
    this.bars.replaceChildren(this.axis, ...rows);
    this.more.textContent = m.features.length > MAX_BARS ? `${m.features.length - MAX_BARS} lower features not drawn.` : "";
  }
}

function axisRow(): HTMLElement {
  const row = h("div", "psi-axis");
  const track = h("div", "track");
  track.append(h("span", "label moderate"), h("span", "label major"));
  row.append(h("span", "name", "feature"), track, h("span", "value", "PSI"));
  return row;
}

function newBar(name: string): Bar {
  const row = h("div", "psi-row");
  row.dataset.feature = name;
  const track = h("div", "track");
  const fill = h("div", "fill");
  track.append(fill, h("div", "tick moderate"), h("div", "tick major"));
  const value = h("span", "value");
  row.append(h("span", "name", name), track, value);
  return { row, fill, value };
}

/** The bars' axis: the highest PSI, at least twice the major threshold (so both lines stay inside). */
function axisMax(m: ModelReport): number {
  const top = m.features.reduce((a, f) => Math.max(a, f.psi ?? 0), 0);
  return Math.max(top, 2 * m.thresholds.major);
}

function residualText(m: ModelReport): Array<string | HTMLElement> {
  const r = m.residual;
  if (r.units === null)
    return ["Off: this source gives no ground truth (a C-MAPSS training file replayed does: a unit's true RUL is known at its failure)."];
  const last =
    r.last === null
      ? "no change so far"
      : `last change at ${fmtEventTime(r.last.at)}: mean residual ${r.last.direction === "increase" ? "rose" : "fell"} to ${fmt(r.last.mean, 1)} cycles (Page–Hinkley ${fmt(r.last.statistic, 1)}σ, σ ${fmt(r.last.scale, 1)})`;
  return [
    `${r.units} unit${r.units === 1 ? "" : "s"} judged at their failure (mean predicted − true RUL per unit), ${r.detections} detection${r.detections === 1 ? "" : "s"}; ${last}.`,
  ];
}

function episodeText(m: ModelReport): Array<string | HTMLElement> {
  const e = m.episode;
  if (e === null) return [`None open (${m.episodes_opened} opened in this run).`];
  const link = h("a", "", "in the alerts view");
  link.href = `#/alerts/${encodeURIComponent(`model:${m.kind}`)}`;
  const what = h("span", "episode");
  what.dataset.episode = e.episode_id;
  // Its rules: the features that moved in the order first seen, and `residual` when the residual test fired.
  const features = e.rules.filter((r) => r !== "residual");
  const moved = features.length > 0 ? `features that moved, first seen first: ${features.join(", ")}` : "no feature moved";
  const residual = e.rules.includes("residual") ? "; the residual test fired" : "";
  what.append(badge(e.severity), ` opened ${fmtEventTime(e.opened_at)}; ${moved}${residual} — `, link);
  return [what];
}

/** Event time (a replay's clock may be months from now): date and time, UTC. */
function fmtEventTime(ms: number): string {
  return Number.isFinite(ms) ? `${new Date(ms).toISOString().slice(0, 19).replace("T", " ")} UTC` : "—";
}
