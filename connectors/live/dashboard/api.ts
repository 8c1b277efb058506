/**
 * The dashboard's calls to the live server (docs/api.md): same origin, the token in the HttpOnly
 * `lw_token` cookie the login set (the page never holds it). A 401 anywhere shows the login form.
 */

/** An API reply that is not a success: its status and the JSON error code. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Fired on `window` when a call is answered 401 (the cookie is missing, or its token is no longer valid). */
export const UNAUTHORIZED_EVENT = "lw:unauthorized";

async function request(method: string, path: string, body?: unknown): Promise<Response> {
  const res = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.ok) return res;
  let code = "http_error";
  let message = `${method} ${path}: ${res.status}`;
  try {
    const e = (await res.json()) as { error?: string; message?: string };
    code = e.error ?? code;
    message = e.message ?? message;
  } catch {
    // Not JSON: keep the status line.
  }
  if (res.status === 401 && path !== "/api/login") window.dispatchEvent(new Event(UNAUTHORIZED_EVENT));
  throw new ApiError(res.status, code, message);
}

export async function getJson<T>(path: string): Promise<T> {
  return (await (await request("GET", path)).json()) as T;
}

/** POSTs JSON; the reply's JSON, or null for 204. */
export async function postJson<T>(path: string, body: unknown = {}): Promise<T | null> {
  const res = await request("POST", path, body);
  return res.status === 204 ? null : ((await res.json()) as T);
}

/** PUTs JSON; the reply's JSON. */
export async function putJson<T>(path: string, body: unknown): Promise<T> {
  return (await (await request("PUT", path, body)).json()) as T;
}

export async function getBytes(path: string): Promise<Uint8Array> {
  return new Uint8Array(await (await request("GET", path)).arrayBuffer());
}

/** GET /metrics as text (open by default; with `metricsAuth: "token"` the cookie serves). */
export async function getText(path: string): Promise<string> {
  return (await request("GET", path)).text();
}

/** Exchanges a token for the cookie; false when the server does not know it (401). */
export async function login(token: string): Promise<boolean> {
  try {
    await postJson("/api/login", { token });
    return true;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return false;
    throw e;
  }
}

export async function logout(): Promise<void> {
  await postJson("/api/logout");
}

/**
 * What this server offers, asked once: the providers of /healthz (a route without one answers 404
 * `not_configured`) and the routes of the index (GET /api/). Views ask before calling, so the page
 * makes no request that is bound to fail (a failed request is a console error in the browser).
 */
export interface ServerOffer {
  providers: Record<string, boolean>;
  endpoints: string[];
}

let offer: Promise<ServerOffer> | null = null;

export function serverOffer(): Promise<ServerOffer> {
  offer ??= Promise.all([getJson<{ providers: Record<string, boolean> }>("/healthz"), getJson<{ endpoints: string[] }>("/api/")]).then(
    ([health, index]) => ({ providers: health.providers, endpoints: index.endpoints }),
  );
  return offer;
}

export type RiskLevel = "low" | "medium" | "high" | "critical";

export const RISK_ORDER: Readonly<Record<string, number>> = { critical: 0, high: 1, medium: 2, low: 3 };

/** GET /api/plant's machines. */
export interface PlantMachine {
  machine_id: string;
  health_score: number;
  risk_level: RiskLevel;
  open_alerts: number;
  sensors: string[];
  keys: string[];
  prediction: { failure_probability: number; time_to_failure_hours: number | null; rul_cycles?: number; predicted_at: string } | null;
}

export async function plant(): Promise<PlantMachine[]> {
  return (await getJson<{ machines: PlantMachine[] }>("/api/plant")).machines;
}

/** Text for the DOM: every value a person sees goes through textContent or this. */
export function esc(v: unknown): string {
  return String(v).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
