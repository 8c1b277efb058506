/**
 * The alerts view: open and recent alerts (episodes when the server has them, alerts-source.ts),
 * filtered by machine, rule family, rule and severity, with an acknowledge button per episode. Refreshed every
 * 3 s and at once (at most once a second) when the `alerts` topic says something changed.
 * `#/alerts/<machine>` opens it filtered to that machine (the models view links a model's
 * episodes: machine `model:<kind>`).
 */
import { acknowledge, loadAlerts, type AlertList, type AlertRow } from "./alerts-source.js";
import { atMostOnceASecond, badge, every, fmtTime, h, table, type View, type ViewContext } from "./view.js";

type Filters = Record<"state" | "machine" | "family" | "rule" | "severity", HTMLSelectElement>;

export function alertsView(ctx: ViewContext, machine = ""): View {
  const el = h("section");
  const note = h("p", "muted");
  const filters: Filters = {
    state: select("state", ["all", "open", "recent"]),
    machine: select("machine", []),
    family: select("family", []),
    rule: select("rule", []),
    severity: select("severity", ["high", "medium", "low"]),
  };
  if (machine !== "") {
    filters.machine.append(new Option(machine, machine));
    filters.machine.value = machine;
  }
  const t = table(ALERT_COLUMNS);
  el.append(h("h1", "", "Alerts"), filterBar(filters), note, t.table);
  let last: AlertList | null = null;

  const refresh = async (): Promise<void> => {
    last = await loadAlerts(filters.state.value as "all" | "open" | "recent");
    fillOptions(
      filters.machine,
      last.rows.map((r) => r.machine),
    );
    fillOptions(
      filters.family,
      last.rows.map((r) => r.family),
    );
    fillOptions(
      filters.rule,
      last.rows.flatMap((r) => r.rules),
    );
    render();
  };
  const render = (): void => {
    if (last === null) return;
    const shown = last.rows.filter((r) => matches(r, filters));
    note.textContent =
      last.mode === "episodes"
        ? `${shown.length} of ${last.rows.length} alert episodes.`
        : `${shown.length} of ${last.rows.length} open alerts (this server has no alert episodes: nothing to acknowledge).`;
    t.body.replaceChildren(...shown.map((r) => alertRowElement(r, () => void refresh())));
  };
  for (const s of Object.values(filters)) s.onchange = () => (s === filters.state ? void refresh() : render());
  const stopPolling = every(3000, refresh, (e) => (note.textContent = `alerts: ${String(e)}`));
  const unsubscribe = ctx.live.subscribe("alerts", atMostOnceASecond(refresh));
  return {
    el,
    stop: () => {
      stopPolling();
      unsubscribe();
    },
  };
}

function filterBar(filters: Filters): HTMLElement {
  const bar = h("div", "toolbar");
  for (const [name, s] of Object.entries(filters)) {
    const label = h("label", "", `${name} `);
    label.append(s);
    bar.append(label);
  }
  return bar;
}

/** Whether the row passes every chosen filter (an empty choice passes all). */
function matches(r: AlertRow, f: Filters): boolean {
  return (
    (f.machine.value === "" || r.machine === f.machine.value) &&
    (f.family.value === "" || r.family === f.family.value) &&
    (f.rule.value === "" || r.rules.includes(f.rule.value)) &&
    (f.severity.value === "" || r.severity === f.severity.value)
  );
}

function select(name: string, options: readonly string[]): HTMLSelectElement {
  const s = h("select");
  s.name = name;
  if (name !== "state") s.append(new Option("any", ""));
  for (const o of options) s.append(new Option(o, o));
  return s;
}

/** Keeps the chosen value; lists every value seen. */
function fillOptions(s: HTMLSelectElement, values: readonly string[]): void {
  const chosen = s.value;
  const all = [...new Set(values)].sort();
  s.replaceChildren(new Option("any", ""), ...all.map((v) => new Option(v, v)));
  s.value = all.includes(chosen) ? chosen : "";
}

/** The alerts table's columns (the quality view's episode table has the same, its machine a line and its sensor a batch). */
export const ALERT_COLUMNS: readonly string[] = [
  "machine",
  "sensor",
  "rules",
  "family",
  "severity",
  "state",
  "opened",
  "last firing",
  "firings",
  "acknowledged",
  "",
];

/** One alert's row, with an Acknowledge button when it can be acknowledged (then `changed` runs). */
export function alertRowElement(r: AlertRow, changed: () => void): HTMLTableRowElement {
  const tr = h("tr");
  tr.dataset.alert = r.id;
  tr.dataset.machine = r.machine;
  const cell = (c: string | HTMLElement) => {
    const td = h("td");
    td.append(c);
    tr.append(td);
  };
  cell(r.machine);
  cell(r.sensor);
  cell(r.rules.join(", "));
  cell(r.family);
  cell(badge(r.severity));
  cell(r.state);
  cell(fmtTime(r.openedAt));
  cell(fmtTime(r.lastAt));
  cell(String(r.firings));
  cell(r.acknowledgedAt === null ? "" : `${fmtTime(r.acknowledgedAt)}${r.acknowledgedBy ? ` by ${r.acknowledgedBy}` : ""}`);
  const action = h("td");
  if (r.canAck) {
    const b = h("button", "ack", "Acknowledge");
    b.type = "button";
    b.onclick = async () => {
      b.disabled = true;
      await acknowledge(r.id);
      changed();
    };
    action.append(b);
  }
  tr.append(action);
  return tr;
}
