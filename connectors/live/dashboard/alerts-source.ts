/**
 * Where the alerts come from: alert episodes (`GET /api/alerts/episodes`, `POST
 * /api/alerts/episodes/{id}/ack`, issue 14 point 1) when the server has them, else the open SPC
 * alerts of `GET /api/alerts` (today's firing-folded alerts, no acknowledgement). Which one is
 * decided by the server's index (GET /api/ lists its routes): no episodes route, the alerts.
 */
import { getJson, postJson, serverOffer } from "./api.js";

/** One row of the alerts view, from either source. */
export interface AlertRow {
  /** The episode id, or `<key>|<rule>` for an alert. */
  id: string;
  machine: string;
  sensor: string;
  key: string;
  rules: string[];
  family: string;
  severity: string;
  state: string;
  openedAt: number | null;
  lastAt: number | null;
  firings: number;
  acknowledgedAt: number | null;
  acknowledgedBy: string | null;
  /** Whether it can be acknowledged (an episode not yet acknowledged). */
  canAck: boolean;
}

export interface AlertList {
  mode: "episodes" | "alerts";
  rows: AlertRow[];
}

/** Open and recent alerts, optionally of one machine and one rule family (`quality`, `model_drift`, …). */
export async function loadAlerts(state: "open" | "recent" | "all" = "all", machine = "", family = ""): Promise<AlertList> {
  const offer = await serverOffer();
  if (!offer.providers.alerts) return { mode: "alerts", rows: [] };
  if (offer.endpoints.some((e) => e.startsWith("GET /api/alerts/episodes"))) {
    const q = new URLSearchParams({ state, limit: "500" });
    if (machine !== "") q.set("machine_id", machine);
    if (family !== "") q.set("family", family);
    const r = await getJson<{ results: Episode[] }>(`/api/alerts/episodes?${q}`);
    return { mode: "episodes", rows: r.results.map(episodeRow) };
  }
  const r = await getJson<{ results: SpcAlert[] }>("/api/alerts");
  const rows = r.results.map(alertRow).filter((a) => (machine === "" || a.machine === machine) && (family === "" || a.family === family));
  return { mode: "alerts", rows };
}

export async function acknowledge(id: string, note = ""): Promise<void> {
  await postJson(`/api/alerts/episodes/${encodeURIComponent(id)}/ack`, note === "" ? {} : { note });
}

interface Episode {
  episode_id: string;
  key: string;
  fields?: { machine_id?: string; sensor_type?: string };
  family?: string;
  rules?: string[];
  severity: string;
  state?: string;
  event?: string;
  opened_at: number | string;
  last_fired_at?: number | string | null;
  closed_at?: number | string | null;
  firings?: number;
  acknowledged_at?: number | string | null;
  acknowledged_by?: string | null;
}

interface SpcAlert {
  key: string;
  fields?: { machine_id?: string; sensor_type?: string };
  rule: string;
  also?: string | null;
  severity: string;
  state: string;
  opened_at: number;
  firings: number;
}

/** Epoch ms from a number or an ISO-8601 text; null when neither. */
function toMs(v: number | string | null | undefined): number | null {
  if (typeof v === "number") return v;
  if (typeof v === "string") {
    const t = Date.parse(v);
    return Number.isFinite(t) ? t : null;
  }
  return null;
}

function keyParts(key: string, fields?: { machine_id?: string; sensor_type?: string }): [string, string] {
  const [m, s] = key.split("/");
  return [fields?.machine_id ?? m ?? key, fields?.sensor_type ?? s ?? ""];
}

function episodeRow(e: Episode): AlertRow {
  const [machine, sensor] = keyParts(e.key, e.fields);
  const acked = e.acknowledged_at !== null && e.acknowledged_at !== undefined;
  const state = e.state ?? (e.closed_at !== null && e.closed_at !== undefined ? "closed" : "open");
  return {
    id: e.episode_id,
    machine,
    sensor,
    key: e.key,
    rules: e.rules ?? [],
    family: e.family ?? "",
    severity: e.severity,
    state,
    openedAt: toMs(e.opened_at),
    lastAt: toMs(e.last_fired_at),
    firings: e.firings ?? 0,
    acknowledgedAt: acked ? toMs(e.acknowledged_at) : null,
    acknowledgedBy: e.acknowledged_by ?? null,
    canAck: !acked,
  };
}

function alertRow(a: SpcAlert): AlertRow {
  const [machine, sensor] = keyParts(a.key, a.fields);
  return {
    id: `${a.key}|${a.rule}`,
    machine,
    sensor,
    key: a.key,
    rules: [a.rule, ...(a.also ? [a.also] : [])],
    family: a.rule,
    severity: a.severity,
    state: a.state,
    openedAt: a.opened_at,
    lastAt: null,
    firings: a.firings,
    acknowledgedAt: null,
    acknowledgedBy: null,
    canAck: false,
  };
}
