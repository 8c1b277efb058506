/**
 * The dashboard's entry (index.html loads it as a module). Signs in — the token from the URL's
 * fragment (`#token=…`, what `linewatch run` prints; exchanged for the HttpOnly cookie and removed
 * from the address bar) or from the login form — then routes by the hash: `#/plant` (default),
 * `#/machine/<id>`, `#/alerts` (`#/alerts/<machine>` filtered), `#/quality`, `#/serial`, `#/models` (`#/models/<version>`),
 * `#/engine`. One WebSocket serves every view.
 *
 * Modules: api.ts (HTTP calls), live-socket.ts (WebSocket), score-frame.ts (binary frames),
 * series.ts (typed-array buffers, the draw loop), view.ts (DOM helpers), one file per view
 * (plant, machine + sensor-chart, alerts + alerts-source, quality + quality-source/-cards/-chart, serial, models,
 * engine + prometheus).
 */
import { getJson, login, logout, UNAUTHORIZED_EVENT } from "./api.js";
import { alertsView } from "./alerts.js";
import { engineView } from "./engine.js";
import { LiveSocket } from "./live-socket.js";
import { machineView } from "./machine.js";
import { modelsView } from "./models.js";
import { plantView } from "./plant.js";
import { qualityView } from "./quality.js";
import { drawLoop } from "./series.js";
import { serialView } from "./serial.js";
import type { View, ViewContext } from "./view.js";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

let current: View | null = null;
let ctx: ViewContext | null = null;

/** What the browser test reads: the current view and the page's counters. */
declare global {
  interface Window {
    linewatch: { view: () => View | null; draws: typeof drawLoop.stats; live: () => LiveSocket["stats"] | null };
  }
}
window.linewatch = { view: () => current, draws: drawLoop.stats, live: () => ctx?.live.stats ?? null };

async function start(): Promise<void> {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const token = fragment.get("token");
  if (token !== null) {
    // The token leaves the address bar (and the history) before anything else happens.
    history.replaceState(null, "", `${location.pathname}#/plant`);
    if (!(await login(token))) return showLogin("The token in the address is not valid for this server.");
  }
  // Asked without a 401 (a failed request would be a console error): is the cookie's token one of the server's?
  const session = await getJson<{ authenticated: boolean }>("/api/session");
  if (!session.authenticated) return showLogin("");
  signedIn();
}

function showLogin(message: string): void {
  current?.stop();
  current = null;
  $("view").replaceChildren();
  $("nav").hidden = true;
  $("logout").hidden = true;
  const form = $<HTMLFormElement>("login");
  form.hidden = false;
  $("login-error").textContent = message;
}

function signedIn(): void {
  $("login").hidden = true;
  $("nav").hidden = false;
  $("logout").hidden = false;
  if (ctx === null) ctx = { live: new LiveSocket(() => showStatus()) };
  route();
}

function route(): void {
  if (ctx === null) return;
  const [, name = "plant", arg = ""] = location.hash.split("/");
  current?.stop();
  const c = ctx;
  const views: Record<string, () => View> = {
    plant: () => plantView(c),
    machine: () => machineView(c, decodeURIComponent(arg)),
    alerts: () => alertsView(c, decodeURIComponent(arg)),
    quality: () => qualityView(c),
    serial: () => serialView(c),
    models: () => modelsView(decodeURIComponent(arg)),
    engine: () => engineView(),
  };
  current = (views[name] ?? views.plant)();
  $("view").replaceChildren(current.el);
  for (const a of document.querySelectorAll<HTMLAnchorElement>("#nav a"))
    a.classList.toggle("active", a.dataset.view === name || (name === "machine" && a.dataset.view === "plant"));
}

function showStatus(): void {
  const s = ctx?.live.stats;
  $("status").textContent = s === undefined ? "" : s.connected ? "live" : "reconnecting…";
}

$<HTMLFormElement>("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const input = $<HTMLInputElement>("login-token");
  if (await login(input.value.trim())) {
    input.value = "";
    if (!location.hash.startsWith("#/")) history.replaceState(null, "", `${location.pathname}#/plant`);
    signedIn();
  } else $("login-error").textContent = "That token is not valid for this server (401).";
});
$("logout").addEventListener("click", async () => {
  await logout();
  ctx?.live.close();
  ctx = null;
  showLogin("Signed out.");
});
window.addEventListener(UNAUTHORIZED_EVENT, () => showLogin("Your session ended: sign in again."));
window.addEventListener("hashchange", () => {
  if (location.hash.startsWith("#token=")) void start();
  else route();
});
void start();
