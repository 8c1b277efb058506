/**
 * The machine view: per sensor a live control chart (sensor-chart.ts), back-filled from the run's
 * recent history (GET /api/history/{machine}: one score frame) and then fed by the machine's topic;
 * EWMA and CUSUM on demand; the machine's alerts and predictions; and the limits/rules editor panel.
 *
 * LIMITS/RULES EDITOR PANEL: `#limits-editor` shows each sensor's current limits (the newest
 * CL/UCL/LCL its chart holds) and is the what-if editor (what-if-panel.ts): trial limits and rules
 * on a sensor's key, previewed over the readings its chart holds by the SPC kernel in the page, and
 * applied through the API's limit lifecycle.
 */
import { ApiError, getBytes, getJson, plant, serverOffer } from "./api.js";
import { loadAlerts } from "./alerts-source.js";
import { decodeScoreFrame, type ScoreFrame } from "./score-frame.js";
import { SensorChart } from "./sensor-chart.js";
import { WhatIfPanel } from "./what-if-panel.js";
import { badge, every, fillTable, fmt, fmtTime, h, table, type View, type ViewContext } from "./view.js";

export interface MachineView extends View {
  charts: Map<string, SensorChart>;
  /** A sensor's readings in the chart's window (for the what-if preview). */
  recentReadings(sensor: string): { times: Float64Array; values: Float64Array } | null;
  /** The what-if editor in `#limits-editor`. */
  whatIf: WhatIfPanel;
}

export function machineView(ctx: ViewContext, machine: string): MachineView {
  const el = h("section");
  const head = h("div", "toolbar");
  const title = h("h1", "", machine);
  const ewma = toggle("EWMA");
  const cusum = toggle("CUSUM");
  head.append(title, ewma.label, cusum.label);
  const note = h("p", "muted");
  const grid = h("div", "charts");
  const alerts = table(["sensor", "rules", "severity", "state", "opened", "firings"]);
  const predictions = table(["predicted at", "RUL (h)", "p(failure)", "risk", "model"]);
  const editor = h("section", "panel");
  editor.id = "limits-editor";
  el.append(head, note, grid, h("h2", "", "Alerts"), alerts.table, h("h2", "", "Predictions"), predictions.table, editor);
  const charts = new Map<string, SensorChart>();
  const width = Math.max(400, Math.min(900, (window.innerWidth - 60) / 2));

  const feed = (frame: ScoreFrame): void => {
    for (const key of frame.keys) {
      const sensor = key.slice(machine.length + 1);
      let c = charts.get(sensor);
      if (c === undefined) {
        c = new SensorChart(sensor, width);
        charts.set(sensor, c);
        grid.append(c.el);
        c.showEwma(ewma.input.checked);
        c.showCusum(cusum.input.checked);
      }
      c.add(frame, key);
    }
  };
  ewma.input.onchange = () => charts.forEach((c) => c.showEwma(ewma.input.checked));
  cusum.input.onchange = () => charts.forEach((c) => c.showCusum(cusum.input.checked));

  let unsubscribe = (): void => {};
  void backfill(machine, feed, note).then(() => {
    unsubscribe = ctx.live.subscribe(`machine/${machine}`, (_data, frame) => frame !== null && feed(frame));
  });
  const limits = table(["sensor", "CL", "UCL", "LCL", "points", "rule firings shown"]);
  editor.append(h("h2", "", "Limits and rules"), limits.table);
  const whatIf = new WhatIfPanel(h("div", "what-if-panel"), machine, (sensor) => charts.get(sensor));
  editor.append(whatIf.el);
  const stopPanels = every(
    3000,
    async () => {
      showLimits(charts, limits.body);
      whatIf.sync(await refreshPanels(machine, title, alerts.body, predictions.body));
    },
    (e) => (note.textContent = String(e)),
  );
  return {
    el,
    charts,
    whatIf,
    recentReadings: (sensor) => {
      const c = charts.get(sensor);
      if (c === undefined) return null;
      const [times, values] = c.buf.views();
      return { times, values };
    },
    stop: () => {
      unsubscribe();
      stopPanels();
      whatIf.stop();
      for (const c of charts.values()) c.destroy();
    },
  };
}

function toggle(text: string): { label: HTMLLabelElement; input: HTMLInputElement } {
  const label = h("label");
  const input = h("input");
  input.type = "checkbox";
  input.name = text.toLowerCase();
  label.append(input, ` ${text}`);
  return { label, input };
}

/** The run's recent readings of the machine (404: none kept yet — the live topic fills the charts). */
async function backfill(machine: string, feed: (f: ScoreFrame) => void, note: HTMLElement): Promise<void> {
  try {
    const frame = decodeScoreFrame(await getBytes(`/api/history/${encodeURIComponent(machine)}`));
    feed(frame);
    note.textContent = `${frame.length} recent readings back-filled; live from here.`;
  } catch (e) {
    note.textContent = e instanceof ApiError && e.status === 404 ? "no history kept yet; live from here." : `history: ${String(e)}`;
  }
}

/** The machine's title, alerts and predictions; the machine's keys (for the what-if panel). */
async function refreshPanels(
  machine: string,
  title: HTMLElement,
  alerts: HTMLTableSectionElement,
  preds: HTMLTableSectionElement,
): Promise<string[]> {
  const m = (await plant()).find((x) => x.machine_id === machine);
  const keys = [...(m?.keys ?? [])].sort();
  if (m !== undefined) title.replaceChildren(`${machine} · health ${m.health_score} `, badge(m.risk_level));
  const list = await loadAlerts("all", machine);
  fillTable(
    alerts,
    list.rows.map((a) => [a.sensor, a.rules.join(", "), badge(a.severity), a.state, fmtTime(a.openedAt), String(a.firings)]),
  );
  if (!(await serverOffer()).providers.predictions) {
    fillTable(preds, [["no prediction model in this run (run --predict MODEL.onnx)", "", "", "", ""]]);
    return keys;
  }
  const p = await getJson<{ results: Prediction[] }>(`/api/ml/maintenance/predictions/?machine_id=${encodeURIComponent(machine)}&limit=10`);
  fillTable(
    preds,
    p.results.map((r) => [
      r.predicted_at,
      fmt(r.time_to_failure_hours, 1),
      fmt(r.failure_probability, 3),
      badge(r.risk_level),
      r.model_version ?? "",
    ]),
  );
  return keys;
}

interface Prediction {
  predicted_at: string;
  time_to_failure_hours: number | null;
  failure_probability: number;
  risk_level: string;
  model_version?: string;
}

/** The limits/rules editor panel's table: each sensor's newest limits as its chart holds them (— until its baseline is complete). */
function showLimits(charts: ReadonlyMap<string, SensorChart>, body: HTMLTableSectionElement): void {
  fillTable(
    body,
    [...charts.values()].map((c) => {
      const f = c.facts();
      return [c.sensor, fmt(c.buf.last(3), 3), fmt(c.buf.last(4), 3), fmt(c.buf.last(5), 3), String(f.points), String(f.fired)];
    }),
  );
}
