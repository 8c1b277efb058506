/**
 * The serialization view: each line's status (GET /api/serial/lines: events, flagged, the window's
 * entropy, risk now and the highest seen) and the quarantine list (GET /api/quarantine) with a
 * release button per serial (POST /api/quarantine/{serial}/release). Refreshed every 3 s and when
 * the `quarantine` topic moves.
 */
import { getJson, postJson, serverOffer } from "./api.js";
import { badge, every, fillTable, fmt, h, table, type View, type ViewContext } from "./view.js";

interface Line {
  line: string;
  events: number;
  flagged: number;
  quarantined: number;
  entropy_bits_per_char: number | null;
  min_entropy_mcv: number | null;
  risk_level: string;
  risk_level_max: string;
}

interface Entry {
  serial_number: string;
  gtin: string;
  batch_number: string;
  machine_id: string;
  risk_level: string;
  anomaly_types: string[];
  occurrences: number;
  quarantined_at: string;
}

export function serialView(ctx: ViewContext): View {
  const el = h("section");
  const note = h("p", "muted");
  const lines = table(["line", "risk now", "highest risk", "entropy (bits/char)", "min-entropy", "events", "flagged", "quarantined"]);
  const list = table(["serial", "GTIN", "batch", "line", "risk", "anomalies", "occurrences", "quarantined at", ""]);
  el.append(h("h1", "", "Serialization"), note, h("h2", "", "Lines"), lines.table, h("h2", "", "Quarantine"), list.table);

  const refresh = async (): Promise<void> => {
    if (!(await serverOffer()).providers.serialLines) {
      note.textContent = "this run has no serial job (run without --no-serials).";
      return;
    }
    const l = await getJson<{ results: Line[] }>("/api/serial/lines");
    fillTable(
      lines.body,
      l.results.map((x) => [
        x.line,
        badge(x.risk_level),
        badge(x.risk_level_max),
        fmt(x.entropy_bits_per_char, 3),
        fmt(x.min_entropy_mcv, 3),
        String(x.events),
        String(x.flagged),
        String(x.quarantined),
      ]),
    );
    const q = await getJson<{ count: number; results: Entry[] }>("/api/quarantine");
    note.textContent = `${l.results.length} lines, ${q.count} serials in quarantine.`;
    list.body.replaceChildren(...q.results.map((e) => entryRow(e, () => void refresh())));
  };
  const stopPolling = every(3000, refresh, (e) => (note.textContent = `serialization: ${String(e)}`));
  let pending = false;
  const unsubscribe = ctx.live.subscribe("quarantine", () => {
    if (pending) return;
    pending = true;
    setTimeout(() => {
      pending = false;
      void refresh().catch(() => undefined);
    }, 1000);
  });
  return {
    el,
    stop: () => {
      stopPolling();
      unsubscribe();
    },
  };
}

function entryRow(e: Entry, changed: () => void): HTMLTableRowElement {
  const tr = h("tr");
  tr.dataset.serial = e.serial_number;
  for (const c of [e.serial_number, e.gtin, e.batch_number, e.machine_id]) tr.append(h("td", "", c));
  const risk = h("td");
  risk.append(badge(e.risk_level));
  tr.append(risk, h("td", "", e.anomaly_types.join(", ")), h("td", "", String(e.occurrences)), h("td", "", e.quarantined_at));
  const action = h("td");
  const b = h("button", "release", "Release");
  b.type = "button";
  b.onclick = async () => {
    b.disabled = true;
    await postJson(`/api/quarantine/${encodeURIComponent(e.serial_number)}/release`, { gtin: e.gtin, note: "released from the dashboard" });
    changed();
  };
  action.append(b);
  tr.append(action);
  return tr;
}
