/**
 * The HTTP side of the live server: health, metrics and the token-authenticated API.
 *
 * | method, path                                     | scope             | reply (200 unless said)                                   |
 * | ------------------------------------------------ | ----------------- | --------------------------------------------------------- |
 * | GET  /healthz                                    | none              | {status, uptime_s, uws: {native, implementation}, ws: {…}, providers: {…}, …status} |
 * | GET  /metrics                                    | none, or `metrics:read` with `metricsAuth: "token"` | Prometheus text 0.0.4 |
 * | GET  /, /assets/{file}                           | none              | the dashboard (dashboard-assets.ts; the what-if preview's dist/www under /assets/www/); `/` is the JSON index when no dashboard is built |
 * | GET  /api/                                       | none              | {service, endpoints, topics} (no secrets)                  |
 * | POST /api/login                                  | none              | 204 with the `lw_token` cookie (HttpOnly, SameSite=Strict); body {token}; 401 for an unknown token |
 * | POST /api/logout                                 | none              | 204, the cookie cleared                                   |
 * | GET  /api/session                                | none              | {authenticated, name?} for the presented token (the page's check, never a 401) |
 * | GET  /api/plant                                  | maintenance:read  | {machines: [{machine_id, health_score, risk_level, open_alerts, sensors, keys, prediction}]} |
 * | GET  /api/history/{machine_id}                   | spc:read          | the machine's recent scored readings as one score frame (application/octet-stream) |
 * | GET  /api/serial/lines                           | quarantine:read   | {count, results: line[]} (the serial job's lines: events, flagged, entropy, risk) |
 * | GET  /api/ml/maintenance/health/{machine_id}/    | maintenance:read  | EquipmentHealth                                           |
 * | GET  /api/ml/maintenance/predictions/?machine_id=&limit= | maintenance:read | {count, results: MaintenancePrediction[]} (limit 1–1000, default 100) |
 * | POST /api/ml/maintenance/predict/{machine_id}/   | maintenance:write | MaintenancePrediction; body: optional JSON object; 409 `features_incomplete` (with `missing_features`) while the machine lacks a sensor the model reads |
 * | GET  /api/ml/quality/batches/?line=&status=running|completed | maintenance:read | {count, results: batch[]} (the quality job's batches: latest prediction, outcome, episode; running first, then completed newest first) |
 * | GET  /api/ml/quality/batches/{batch_id}/         | maintenance:read  | the batch with its prediction history                     |
 * | GET  /api/ml/models/                             | maintenance:read  | {count, results: model drift report[]} (the models the run has used, in use first) |
 * | GET  /api/ml/models/events                       | maintenance:read  | {count, results: model event[]} (drift-triggered retraining: started, trained, registered, promoted or held, failed) |
 * | GET  /api/ml/models/{id}/drift                   | maintenance:read  | one model's drift report: PSI per feature, level, residual test, open model_drift episode; `{id}` a version or registry id (prefix) |
 * | GET  /api/alerts                                 | alerts:read       | {count, results: episode[]} (open alert episodes)         |
 * | GET  /api/alerts/episodes?state=open|recent|all&machine_id=&rule=&family=&severity=&limit= | alerts:read | {count, results: episode[]} (recent: closed ones, newest first; limit 1–1000, default 100) |
 * | POST /api/alerts/episodes/{episode_id}/ack       | alerts:write      | the acknowledged episode; body {by?, note?}; 404 unknown, 409 `already_acknowledged` |
 * | GET  /api/quarantine                             | quarantine:read   | {count, results: entry[]}                                 |
 * | POST /api/quarantine/{serial}/release            | quarantine:write  | {serial_number, released: entry[]}; body {gtin?, note?}   |
 * | GET  /api/spc/limits/{key}                       | spc:read          | the key's limits                                          |
 * | POST /api/spc/limits/{key}/rebaseline            | spc:write         | 202, the key's state; body {records?: integer ≥ 2}        |
 * | PUT or POST /api/spc/limits/{key}                | spc:write         | the key's limits; body {cl: number, sigma: number > 0}    |
 *
 * Trailing slashes are optional on every path; `{key}` and `{serial}` are URL-decoded.
 * Errors are JSON `{ "error": "<code>", "message": "…" }`:
 * 400 `bad_request` (body or query unusable), 401 `unauthorized` (no token, or not a known one;
 * with WWW-Authenticate), 403 `forbidden` (the token lacks the route's scope), 404 `not_found`
 * (no such route, or the provider does not know the machine / key / serial) or `not_configured`
 * (this run has no provider for the route), 405 `method_not_allowed` (with Allow), 413
 * `body_too_large` (over `httpBodyBytesMax`), 429 `rate_limited` (the token's bucket is empty;
 * with Retry-After), 500 `provider_failed`, 503 `busy` (over `httpInFlightMax`) or
 * `provider_timeout` (over `httpProviderTimeoutMs`). A provider may throw ApiRequestError to
 * answer with its own status and code, or ApiReplyError to add fields to the error JSON (e.g.
 * 409 `features_incomplete` of POST /predict names the missing features).
 */
import { ApiRequestError } from "../errors.js";
import type { Logger } from "../../engine/core/mod.js";
import type { AccessControl, ApiScope } from "./access.js";
import { presentedToken, tokenCookie } from "./access.js";
import type { StaticAsset } from "./dashboard-assets.js";
import type { AccessCounters } from "./ws-server.js";
import { type HeaderList, statusLine, writeError, writeJson, writeRateLimited, writeReply, writeUnauthorized } from "./http-reply.js";
import { LATENCY_SECONDS_BUCKETS, METRIC, PROMETHEUS_CONTENT_TYPE, type MetricsRegistry } from "./metrics.js";
import type { HttpRequest, HttpResponse, TemplatedApp } from "./uws.js";

type MaybePromise<T> = T | Promise<T>;

/** An ApiRequestError whose reply carries more than `error` and `message`: `{error, message, ...fields}`. */
export class ApiReplyError extends ApiRequestError {
  constructor(
    status: number,
    code: string,
    message: string,
    readonly fields: Readonly<Record<string, unknown>>,
  ) {
    super(status, code, message);
  }
}

export type RiskLevel = "low" | "medium" | "high" | "critical";

/** One machine's health, as in `ml_equipment_health`. Providers may add fields. */
export interface EquipmentHealth {
  machine_id: string;
  /** 0–100, 100 = healthy. */
  health_score: number;
  risk_level: RiskLevel;
  /** When the score was computed (ISO-8601). */
  updated_at: string;
  /** The sensor features behind the score, by name. */
  features?: Readonly<Record<string, number>>;
}

/** One model prediction, as in `ml_maintenance_predictions`. Providers may add fields. */
export interface MaintenancePrediction {
  machine_id: string;
  /** 0–1. */
  failure_probability: number;
  /** Hours until the predicted failure; null when the model gives none. */
  time_to_failure_hours: number | null;
  risk_level: RiskLevel;
  predicted_at: string;
  model_version?: string;
}

export interface PredictionQuery {
  machineId?: string;
  /** 1–1000. */
  limit: number;
}

export interface HealthProvider {
  /** The machine's latest health, or null when the machine is unknown (404). */
  health(machineId: string): MaybePromise<EquipmentHealth | null>;
}

export interface PredictionProvider {
  /** Latest predictions, newest first, at most `query.limit`. */
  predictions(query: PredictionQuery): MaybePromise<readonly MaintenancePrediction[]>;
  /** Predicts now from the machine's current features (`request`: the POSTed JSON object, `{}` when empty); null when unknown. */
  predict(machineId: string, request: Readonly<Record<string, unknown>>): MaybePromise<MaintenancePrediction | null>;
}

/** The models a run uses and their drift (engine/jobs/model-drift.ts reports). */
export interface ModelsProvider {
  list(): MaybePromise<readonly object[]>;
  /** One model's drift report; null when the run has no such model (404). */
  drift(id: string): MaybePromise<object | null>;
  /** The retraining events (`--retrain-on-drift`), oldest first; empty without. */
  events(): MaybePromise<readonly object[]>;
}

/** A filter of GET /api/alerts/episodes. */
export interface EpisodeQuery {
  state: "open" | "recent" | "all";
  machine_id?: string;
  rule?: string;
  family?: string;
  severity?: string;
  limit: number;
}

export interface AlertsProvider {
  /** The alert episodes open now (e.g. AlertEpisodeEvent objects with closed_at null). */
  openAlerts(): MaybePromise<readonly object[]>;
  /** Episodes by state and filter: open ones, then (recent, all) the closed ones kept, newest first. */
  episodes?(query: EpisodeQuery): MaybePromise<readonly object[]>;
  /**
   * Acknowledges an episode: the acknowledged episode, null when unknown (404); throws
   * ApiRequestError 409 when it is acknowledged already.
   */
  acknowledge?(episodeId: string, ack: { by?: string; note?: string }): MaybePromise<object | null>;
}

export interface QuarantineProvider {
  /** The quarantine list (e.g. QuarantineEntry objects). */
  list(): MaybePromise<readonly object[]>;
  /** Releases the serial's entries (of `gtin` when given); returns them, empty when none (404). */
  release(serial: string, request: { gtin?: string; note?: string }): MaybePromise<readonly object[]>;
}

/** One machine as the dashboard's plant view shows it. */
export interface PlantMachine {
  machine_id: string;
  health_score: number;
  risk_level: RiskLevel;
  open_alerts: number;
  /** Sensor types seen, sorted. */
  sensors: readonly string[];
  /** Engine keys seen (`machine/sensor[/mode]`), sorted. */
  keys: readonly string[];
  /** The latest failure prediction (`--predict`), or null. */
  prediction: { failure_probability: number; time_to_failure_hours: number | null; rul_cycles?: number; predicted_at: string } | null;
}

export interface PlantProvider {
  /** Every machine the run has seen. */
  machines(): MaybePromise<readonly PlantMachine[]>;
}

export interface HistoryProvider {
  /** The machine's recent scored readings as one score frame (connectors/wire/score-frame.ts), or null when unknown. */
  frame(machineId: string): MaybePromise<Uint8Array | null>;
}

export interface QualityBatchesProvider {
  /** The quality job's batches (e.g. QualityBatchView without history), filtered. */
  batches(q: { line?: string; status?: "running" | "completed" }): MaybePromise<readonly object[]>;
  /** One batch with its prediction history, or null when unknown. */
  batch(batchId: string): MaybePromise<object | null>;
}

export interface SerialLinesProvider {
  /** Each serialization line's status (e.g. SerialLineStatus: events, flagged, entropy, risk level). */
  lines(): MaybePromise<readonly object[]>;
}

/** A reply body that is not JSON (a route's `value`). */
export class BinaryBody {
  constructor(
    readonly bytes: Uint8Array,
    readonly contentType = "application/octet-stream",
  ) {}
}

export interface SpcLimitsProvider {
  /** The key's limits and state (e.g. {key, cl, sigma, ucl, lcl, limits_version}), or null when unknown. */
  limits(key: string): MaybePromise<object | null>;
  /** Starts a new baseline over the next `records` records (provider's default when undefined); null when unknown. */
  rebaseline(key: string, records: number | undefined): MaybePromise<object | null>;
  /** Sets fixed limits; null when the key is unknown. */
  setLimits(key: string, limits: { cl: number; sigma: number }): MaybePromise<object | null>;
}

/** What the run wiring supplies; a missing provider makes its routes answer 404 `not_configured`. */
export interface ApiProviders {
  health?: HealthProvider;
  predictions?: PredictionProvider;
  models?: ModelsProvider;
  alerts?: AlertsProvider;
  quarantine?: QuarantineProvider;
  spcLimits?: SpcLimitsProvider;
  plant?: PlantProvider;
  history?: HistoryProvider;
  serialLines?: SerialLinesProvider;
  quality?: QualityBatchesProvider;
  /** Extra fields for /healthz (engine state, source connected…); `status` there becomes its `status` when given. */
  status?: () => Readonly<Record<string, unknown>>;
}

export interface HttpApiOptions {
  /** Largest request body; larger ones get 413. */
  httpBodyBytesMax: number;
  /** Requests waiting on providers at once; more get 503. */
  httpInFlightMax: number;
  /** A provider call that takes longer is answered 503 `provider_timeout`. */
  httpProviderTimeoutMs: number;
  /** `none`: /metrics is open (the usual for a scraper inside the plant network); `token`: it needs `metrics:read`. */
  metricsAuth: "none" | "token";
}

export const DEFAULT_HTTP_API_OPTIONS: Readonly<HttpApiOptions> = Object.freeze({
  httpBodyBytesMax: 64 * 1024,
  httpInFlightMax: 64,
  httpProviderTimeoutMs: 10_000,
  metricsAuth: "none",
});

export const PREDICTIONS_LIMIT_MAX = 1000;
export const PREDICTIONS_LIMIT_DEFAULT = 100;

/** What /healthz reports about the server itself. */
export interface ServerFacts {
  uwsNative: boolean;
  uwsImplementation: string;
  wsStats(): { connections: number; subscriptions: number; topics: number };
  topics: readonly string[];
  /** The dashboard's files by URL path (empty: none built; `/` then answers the JSON index). */
  assets: ReadonlyMap<string, StaticAsset>;
}

interface RouteContext {
  params: string[];
  query: URLSearchParams;
  body: unknown;
  /** The token the request presented (header, query or cookie); "" for none. */
  token: string;
}

interface Route {
  /** Label for metrics (bounded: the pattern, not the path). */
  name: string;
  methods: readonly string[];
  re: RegExp;
  /** undefined: no token needed. */
  scope?: ApiScope;
  provider?: keyof ApiProviders;
  body?: boolean;
  handle(c: RouteContext): MaybePromise<RouteResult>;
}

/** A route's reply: JSON of `value` (or its bytes, a BinaryBody; nothing for 204), with extra headers. */
interface RouteResult {
  status: number;
  value: unknown;
  headers?: HeaderList;
}

/** Registers the routes on `app` (call before `listen`). */
export class HttpApi {
  private inFlight = 0;
  private readonly startedMs = performance.now();
  private readonly routes: Route[];
  private readonly requests;
  private readonly duration;

  constructor(
    app: TemplatedApp,
    private readonly access: AccessControl,
    private readonly providers: ApiProviders,
    private readonly metrics: MetricsRegistry,
    private readonly o: HttpApiOptions,
    private readonly facts: ServerFacts,
    private readonly accessCounters: AccessCounters,
    private readonly log: Logger,
  ) {
    this.requests = metrics.counter({
      name: METRIC.httpRequests,
      help: "HTTP requests, by route and status.",
      labelNames: ["route", "status"],
    });
    this.duration = metrics.histogram({
      name: METRIC.httpDuration,
      help: "HTTP request time until the reply, by route.",
      labelNames: ["route"],
      buckets: LATENCY_SECONDS_BUCKETS,
    });
    this.routes = this.buildRoutes();
    app.any("/*", (res, req) => this.onRequest(res, req));
  }

  private buildRoutes(): Route[] {
    const p = this.providers;
    return [
      { name: "/healthz", methods: ["get"], re: /^\/healthz\/?$/, handle: () => ({ status: 200, value: this.healthz() }) },
      ...this.dashboardRoutes(),
      ...maintenanceRoutes(p).concat(qualityRoutes(p)),
      ...modelRoutes(p),
      ...alertRoutes(p),
      {
        name: "/api/quarantine",
        methods: ["get"],
        re: /^\/api\/quarantine\/?$/,
        scope: "quarantine:read",
        provider: "quarantine",
        handle: async () => ({ status: 200, value: list(await p.quarantine!.list()) }),
      },
      {
        name: "/api/quarantine/{serial}/release",
        methods: ["post"],
        re: /^\/api\/quarantine\/([^/]+)\/release\/?$/,
        scope: "quarantine:write",
        provider: "quarantine",
        body: true,
        handle: async ({ params: [serial], query, body }) => {
          const b = objectBody(body);
          const gtin = optionalString(b.gtin ?? query.get("gtin") ?? undefined, "gtin");
          const note = optionalString(b.note, "note");
          const released = await p.quarantine!.release(serial, {
            ...(gtin === undefined ? {} : { gtin }),
            ...(note === undefined ? {} : { note }),
          });
          if (released.length === 0)
            throw new ApiRequestError(
              404,
              "not_found",
              `serial ${JSON.stringify(serial)}${gtin === undefined ? "" : ` of GTIN ${gtin}`} is not in quarantine`,
            );
          return { status: 200, value: { serial_number: serial, released } };
        },
      },
      {
        name: "/api/spc/limits/{key}/rebaseline",
        methods: ["post"],
        re: /^\/api\/spc\/limits\/([^/]+)\/rebaseline\/?$/,
        scope: "spc:write",
        provider: "spcLimits",
        body: true,
        handle: async ({ params: [key], body }) => {
          const records = objectBody(body).records;
          if (records !== undefined && !(Number.isInteger(records) && (records as number) >= 2))
            throw new ApiRequestError(400, "bad_request", "records must be an integer ≥ 2");
          return {
            status: 202,
            value: found(`SPC key ${JSON.stringify(key)}`)(await p.spcLimits!.rebaseline(key, records as number | undefined)),
          };
        },
      },
      {
        name: "/api/spc/limits/{key}",
        methods: ["get", "put", "post"],
        re: /^\/api\/spc\/limits\/([^/]+)\/?$/,
        scope: "spc:read",
        provider: "spcLimits",
        body: true,
        handle: async ({ params: [key] }) => ({
          status: 200,
          value: found(`SPC key ${JSON.stringify(key)}`)(await p.spcLimits!.limits(key)),
        }),
      },
    ];
  }

  private onRequest(res: HttpResponse, req: HttpRequest): void {
    const t0 = performance.now();
    const method = req.getMethod();
    const path = req.getUrl();
    const query = new URLSearchParams(req.getQuery() ?? "");
    const token = presentedToken(req.getHeader("authorization"), query.get("token") ?? "", req.getHeader("cookie"));
    const contentLength = req.getHeader("content-length");
    let routeName = "unmatched";
    const reply = (status: number, write: () => void): void => {
      write();
      this.requests.labels({ route: routeName, status }).inc();
      this.duration.labels({ route: routeName }).observe((performance.now() - t0) / 1000);
    };

    if (path === "/metrics") {
      routeName = "/metrics";
      return this.metricsRequest(res, method, token, t0, reply);
    }
    const asset = method === "get" ? this.facts.assets.get(path) : undefined;
    if (asset !== undefined) {
      routeName = path === "/" ? "/" : "/assets/{file}";
      return reply(200, () => writeReply(res, 200, asset.contentType, asset.body, [], asset.cacheControl));
    }

    let route: Route | undefined;
    let params: string[] | null = null;
    for (const r of this.routes) {
      params = matchPath(r.re, path);
      if (params !== null) {
        route = r;
        break;
      }
    }
    if (route === undefined || params === null)
      return reply(404, () => writeError(res, 404, "not_found", `no route ${method.toUpperCase()} ${path.slice(0, 200)}`));
    routeName = route.name;
    if (!route.methods.includes(method)) {
      const allow = route.methods.map((m) => m.toUpperCase()).join(", ");
      return reply(405, () => writeError(res, 405, "method_not_allowed", `use ${allow}`, {}, [["allow", allow]]));
    }
    // PUT/POST on /api/spc/limits/{key} sets limits: it needs spc:write, not spc:read.
    const setsLimits = route.name === "/api/spc/limits/{key}" && method !== "get";
    const scope = setsLimits ? "spc:write" : route.scope;
    if (scope !== undefined) {
      const denied = this.authorize(res, token, scope);
      if (denied !== 0) return reply(denied, () => {});
    }
    const provider = route.provider;
    if (provider !== undefined && this.providers[provider] === undefined) {
      return reply(404, () =>
        writeError(res, 404, "not_configured", `this server has no ${providerName(provider)}: ${route.name} is not available in this run`),
      );
    }
    if (this.inFlight >= this.o.httpInFlightMax) {
      return reply(503, () =>
        writeError(res, 503, "busy", `httpInFlightMax (${this.o.httpInFlightMax}) requests are being answered; retry`, {}, [
          ["retry-after", "1"],
        ]),
      );
    }
    const wantsBody = route.body === true && method !== "get";
    const declared = contentLength === "" ? 0 : Number(contentLength);
    if (wantsBody && declared > this.o.httpBodyBytesMax) return reply(413, () => this.writeTooLarge(res));

    const captured = params;
    const handle = setsLimits ? (c: RouteContext) => this.setLimits(c) : (c: RouteContext) => route.handle(c);
    let aborted = false;
    let providerCalled = false;
    let released = false;
    // The in-flight slot is held while the body is read and while the provider works; an upload
    // aborted before the provider was called gives it back at once.
    const release = (): void => {
      if (!released) {
        released = true;
        this.inFlight--;
      }
    };
    res.onAborted(() => {
      aborted = true;
      if (!providerCalled) release();
    });
    this.inFlight++;
    const finish = (status: number, write: () => void): void => {
      release();
      if (aborted) return;
      res.cork(() => reply(status, write));
    };
    const run = (body: unknown): void => {
      providerCalled = true;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new ApiRequestError(
                503,
                "provider_timeout",
                `the provider did not answer within httpProviderTimeoutMs (${this.o.httpProviderTimeoutMs} ms)`,
              ),
            ),
          this.o.httpProviderTimeoutMs,
        );
      });
      Promise.race([Promise.resolve().then(() => handle({ params: captured, query, body, token })), timeout])
        .then((r) => finish(r.status, () => writeResult(res, r)))
        .catch((e: unknown) => {
          if (e instanceof ApiRequestError)
            return finish(e.status, () => writeError(res, e.status, e.code, e.detail, e instanceof ApiReplyError ? e.fields : {}));
          this.log.error({ method: method.toUpperCase(), route: route.name, err: e }, "the provider of a route failed");
          finish(500, () => writeError(res, 500, "provider_failed", e instanceof Error ? e.message : String(e)));
        })
        .finally(() => clearTimeout(timer));
    };
    if (!wantsBody) return run(undefined);
    readBody(res, this.o.httpBodyBytesMax, (outcome) => {
      if (outcome === "too_large") return finish(413, () => this.writeTooLarge(res));
      let body: unknown;
      try {
        body = outcome.length === 0 ? undefined : JSON.parse(outcome.toString("utf8"));
      } catch {
        return finish(400, () => writeError(res, 400, "bad_request", "the body is not JSON"));
      }
      run(body);
    });
  }

  /** /metrics: 405 but for GET; with `metricsAuth: "token"` the token needs `metrics:read`; then the scrape. */
  private metricsRequest(res: HttpResponse, method: string, token: string, t0: number, reply: (s: number, w: () => void) => void): void {
    if (method !== "get") return reply(405, () => writeError(res, 405, "method_not_allowed", "use GET", {}, [["allow", "GET"]]));
    if (this.o.metricsAuth === "token") {
      const denied = this.authorize(res, token, "metrics:read");
      if (denied !== 0) return reply(denied, () => {});
    }
    this.scrape(res, t0);
  }

  /** The routes the dashboard adds: the JSON index, login and logout (the token cookie), the plant list, a machine's history. */
  private dashboardRoutes(): Route[] {
    const p = this.providers;
    return [
      // `/` reaches here only when no dashboard is built (the assets are looked up first).
      { name: "/api/", methods: ["get"], re: /^\/(api\/?)?$/, handle: () => ({ status: 200, value: this.index() }) },
      {
        name: "/api/login",
        methods: ["post"],
        re: /^\/api\/login\/?$/,
        body: true,
        handle: ({ body }) => {
          const token = objectBody(body).token;
          if (typeof token !== "string" || this.access.lookup(token) === undefined) {
            this.accessCounters.authFailure("http", typeof token === "string" && token !== "" ? "invalid" : "missing");
            throw new ApiRequestError(401, "unauthorized", "the access token is not valid");
          }
          return { status: 204, value: null, headers: [["set-cookie", tokenCookie(token)]] };
        },
      },
      {
        name: "/api/session",
        methods: ["get"],
        re: /^\/api\/session\/?$/,
        handle: ({ token }) => {
          const grant = this.access.lookup(token);
          return { status: 200, value: grant === undefined ? { authenticated: false } : { authenticated: true, name: grant.name } };
        },
      },
      {
        name: "/api/logout",
        methods: ["post"],
        re: /^\/api\/logout\/?$/,
        handle: () => ({ status: 204, value: null, headers: [["set-cookie", tokenCookie("")]] }),
      },
      {
        name: "/api/plant",
        methods: ["get"],
        re: /^\/api\/plant\/?$/,
        scope: "maintenance:read",
        provider: "plant",
        handle: async () => ({ status: 200, value: { machines: await p.plant!.machines() } }),
      },
      {
        name: "/api/serial/lines",
        methods: ["get"],
        re: /^\/api\/serial\/lines\/?$/,
        scope: "quarantine:read",
        provider: "serialLines",
        handle: async () => {
          const lines = await p.serialLines!.lines();
          return { status: 200, value: { count: lines.length, results: lines } };
        },
      },
      {
        name: "/api/history/{machine_id}",
        methods: ["get"],
        re: /^\/api\/history\/([^/]+)\/?$/,
        scope: "spc:read",
        provider: "history",
        handle: async ({ params: [id] }) => {
          const frame = await p.history!.frame(id);
          if (frame === null) throw new ApiRequestError(404, "not_found", `no history for machine ${JSON.stringify(id)}`);
          return { status: 200, value: new BinaryBody(frame) };
        },
      },
    ];
  }

  /** GET /metrics: prom-client renders asynchronously, so the reply is written (corked) when the text is ready. */
  private scrape(res: HttpResponse, t0: number): void {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    // Count this scrape before rendering, so the reply includes it.
    this.requests.labels({ route: "/metrics", status: 200 }).inc();
    this.metrics.render().then(
      (text) => {
        if (aborted) return;
        res.cork(() => writeReply(res, 200, PROMETHEUS_CONTENT_TYPE, text));
        this.duration.labels({ route: "/metrics" }).observe((performance.now() - t0) / 1000);
      },
      (e: unknown) => {
        this.log.error({ route: "/metrics", err: e }, "rendering the metrics failed");
        if (!aborted) res.cork(() => writeError(res, 500, "metrics_failed", e instanceof Error ? e.message : String(e)));
      },
    );
  }

  /** 0 when the token may use `scope`; else writes 401/403/429 and returns the status. */
  private authorize(res: HttpResponse, token: string, scope: ApiScope): number {
    if (token === "") {
      this.accessCounters.authFailure("http", "missing");
      writeUnauthorized(res, true);
      return 401;
    }
    const grant = this.access.lookup(token);
    if (grant === undefined) {
      this.accessCounters.authFailure("http", "invalid");
      writeUnauthorized(res, false);
      return 401;
    }
    const wait = grant.bucket.take();
    if (wait > 0) {
      this.accessCounters.rateLimited("http");
      writeRateLimited(res, wait);
      return 429;
    }
    if (!grant.allows(scope)) {
      this.accessCounters.authFailure("http", "forbidden");
      writeError(res, 403, "forbidden", `token ${grant.name} lacks the scope ${scope}`, { scope });
      return 403;
    }
    return 0;
  }

  private async setLimits({ params: [key], body }: RouteContext): Promise<{ status: number; value: unknown }> {
    const b = objectBody(body);
    if (!(typeof b.cl === "number" && Number.isFinite(b.cl) && typeof b.sigma === "number" && Number.isFinite(b.sigma) && b.sigma > 0)) {
      throw new ApiRequestError(400, "bad_request", 'body must be {"cl": <finite number>, "sigma": <number > 0>}');
    }
    const value = await this.providers.spcLimits!.setLimits(key, { cl: b.cl, sigma: b.sigma });
    if (value === null) throw new ApiRequestError(404, "not_found", `no SPC key ${JSON.stringify(key)}`);
    return { status: 200, value };
  }

  private writeTooLarge(res: HttpResponse): void {
    // Close the connection: the rest of the body is not read.
    res.writeStatus(statusLine(413)).writeHeader("content-type", "application/json; charset=utf-8");
    res.end(
      `${JSON.stringify({ error: "body_too_large", message: `request bodies are limited to httpBodyBytesMax (${this.o.httpBodyBytesMax} bytes)` })}\n`,
      true,
    );
  }

  private healthz(): Record<string, unknown> {
    const extra = this.providers.status?.() ?? {};
    const ws = this.facts.wsStats();
    return {
      status: "ok",
      uptime_s: Math.round((performance.now() - this.startedMs) / 100) / 10,
      uws: { native: this.facts.uwsNative, implementation: this.facts.uwsImplementation },
      ws: { connections: ws.connections, subscriptions: ws.subscriptions, topics: ws.topics },
      providers: Object.fromEntries(
        (
          ["health", "predictions", "models", "alerts", "quarantine", "spcLimits", "plant", "history", "serialLines", "quality"] as const
        ).map((k) => [k, this.providers[k] !== undefined]),
      ),
      ...extra,
    };
  }

  private index(): Record<string, unknown> {
    return {
      service: "linewatch",
      endpoints: [
        "GET /healthz",
        "GET /metrics",
        "GET /ws (WebSocket)",
        ...this.routes.filter((r) => r.scope !== undefined).flatMap((r) => r.methods.map((m) => `${m.toUpperCase()} ${r.name}`)),
      ],
      topics: this.facts.topics,
    };
  }
}

/** A route's reply: its bytes for a BinaryBody, nothing for 204, else its JSON. */
function writeResult(res: HttpResponse, r: RouteResult): void {
  if (r.value instanceof BinaryBody) return writeReply(res, r.status, r.value.contentType, r.value.bytes, r.headers);
  if (r.status === 204) return writeReply(res, 204, "text/plain; charset=utf-8", "", r.headers);
  writeJson(res, r.status, r.value, r.headers);
}

/** The path's captured parameters (URL-decoded), or null when it does not match. */
function matchPath(re: RegExp, path: string): string[] | null {
  const m = re.exec(path);
  if (m === null) return null;
  try {
    return m.slice(1).map((p) => decodeURIComponent(p));
  } catch {
    return null;
  }
}

/** Reads the whole body, at most `max` bytes; uWS hands chunks that must be copied at once. */
function readBody(res: HttpResponse, max: number, done: (outcome: Buffer | "too_large") => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let over = false;
  res.onData((chunk, isLast) => {
    if (over) return;
    size += chunk.byteLength;
    if (size > max) {
      over = true;
      return done("too_large");
    }
    chunks.push(Buffer.from(chunk.slice(0)));
    if (isLast) done(Buffer.concat(chunks, size));
  });
}

function predictionQuery(q: URLSearchParams): PredictionQuery {
  const limitText = q.get("limit");
  const limit = limitText === null ? PREDICTIONS_LIMIT_DEFAULT : Number(limitText);
  if (!(Number.isInteger(limit) && limit >= 1 && limit <= PREDICTIONS_LIMIT_MAX))
    throw new ApiRequestError(400, "bad_request", `limit must be an integer in 1..${PREDICTIONS_LIMIT_MAX}`);
  const machineId = q.get("machine_id");
  return machineId === null || machineId === "" ? { limit } : { machineId, limit };
}

/** The quality job's batches (issue 16): the list by line and status, one batch with its history. */
function qualityRoutes(p: ApiProviders): Route[] {
  return [
    {
      name: "/api/ml/quality/batches/",
      methods: ["get"],
      re: /^\/api\/ml\/quality\/batches\/?$/,
      scope: "maintenance:read",
      provider: "quality",
      handle: async ({ query }) => {
        const status = query.get("status") as "running" | "completed" | null;
        if (status !== null && status !== "running" && status !== "completed")
          throw new ApiRequestError(400, "bad_request", "status must be running or completed");
        const line = query.get("line");
        const q = { ...(line === null || line === "" ? {} : { line }), ...(status === null ? {} : { status }) };
        return { status: 200, value: list(await p.quality!.batches(q)) };
      },
    },
    {
      name: "/api/ml/quality/batches/{batch_id}/",
      methods: ["get"],
      re: /^\/api\/ml\/quality\/batches\/([^/]+)\/?$/,
      scope: "maintenance:read",
      provider: "quality",
      handle: async ({ params: [id] }) => ({
        status: 200,
        value: found(`quality batch ${JSON.stringify(id)}`)(await p.quality!.batch(id)),
      }),
    },
  ];
}

/** A list reply: {count, results}. */
function list<T>(results: readonly T[]): { count: number; results: readonly T[] } {
  return { count: results.length, results };
}

/** The provider's value, or 404 `not_found` naming `what` when it is null. */
function found(what: string): (value: object | null) => object {
  return (value) => {
    if (value === null) throw new ApiRequestError(404, "not_found", `no ${what}`);
    return value;
  };
}

/** The alert routes: open episodes, episodes by state and filter, acknowledgement. */
function maintenanceRoutes(p: ApiProviders): Route[] {
  return [
    {
      name: "/api/ml/maintenance/health/{machine_id}/",
      methods: ["get"],
      re: /^\/api\/ml\/maintenance\/health\/([^/]+)\/?$/,
      scope: "maintenance:read",
      provider: "health",
      handle: async ({ params: [id] }) => ({
        status: 200,
        value: found(`health for machine ${JSON.stringify(id)}`)(await p.health!.health(id)),
      }),
    },
    {
      name: "/api/ml/maintenance/predictions/",
      methods: ["get"],
      re: /^\/api\/ml\/maintenance\/predictions\/?$/,
      scope: "maintenance:read",
      provider: "predictions",
      handle: async ({ query }) => ({ status: 200, value: list(await p.predictions!.predictions(predictionQuery(query))) }),
    },
    {
      name: "/api/ml/maintenance/predict/{machine_id}/",
      methods: ["post"],
      re: /^\/api\/ml\/maintenance\/predict\/([^/]+)\/?$/,
      scope: "maintenance:write",
      provider: "predictions",
      body: true,
      handle: async ({ params: [id], body }) => ({
        status: 200,
        value: found(`machine ${JSON.stringify(id)}`)(await p.predictions!.predict(id, objectBody(body))),
      }),
    },
  ];
}

function modelRoutes(p: ApiProviders): Route[] {
  return [
    {
      name: "/api/ml/models/",
      methods: ["get"],
      re: /^\/api\/ml\/models\/?$/,
      scope: "maintenance:read",
      provider: "models",
      handle: async () => ({ status: 200, value: list(await p.models!.list()) }),
    },
    {
      name: "/api/ml/models/events",
      methods: ["get"],
      re: /^\/api\/ml\/models\/events\/?$/,
      scope: "maintenance:read",
      provider: "models",
      handle: async () => ({ status: 200, value: list(await p.models!.events()) }),
    },
    {
      name: "/api/ml/models/{id}/drift",
      methods: ["get"],
      re: /^\/api\/ml\/models\/([^/]+)\/drift\/?$/,
      scope: "maintenance:read",
      provider: "models",
      handle: async ({ params: [id] }) => ({ status: 200, value: found(`model ${JSON.stringify(id)}`)(await p.models!.drift(id)) }),
    },
  ];
}

function alertRoutes(p: ApiProviders): Route[] {
  return [
    {
      name: "/api/alerts",
      methods: ["get"],
      re: /^\/api\/alerts\/?$/,
      scope: "alerts:read",
      provider: "alerts",
      handle: async () => ({ status: 200, value: list(await p.alerts!.openAlerts()) }),
    },
    {
      name: "/api/alerts/episodes",
      methods: ["get"],
      re: /^\/api\/alerts\/episodes\/?$/,
      scope: "alerts:read",
      provider: "alerts",
      handle: async ({ query }) => {
        const alerts = p.alerts!;
        if (alerts.episodes === undefined) throw new ApiRequestError(404, "not_configured", "this run lists no alert episodes");
        return { status: 200, value: list(await alerts.episodes(episodeQuery(query))) };
      },
    },
    {
      name: "/api/alerts/episodes/{episode_id}/ack",
      methods: ["post"],
      re: /^\/api\/alerts\/episodes\/([^/]+)\/ack\/?$/,
      scope: "alerts:write",
      provider: "alerts",
      body: true,
      handle: async ({ params: [id], body }) => {
        const alerts = p.alerts!;
        if (alerts.acknowledge === undefined) throw new ApiRequestError(404, "not_configured", "this run takes no acknowledgements");
        const b = objectBody(body);
        const by = optionalString(b.by, "by");
        const note = optionalString(b.note, "note");
        const acked = await alerts.acknowledge(id, { ...(by === undefined ? {} : { by }), ...(note === undefined ? {} : { note }) });
        return { status: 200, value: found(`alert episode ${JSON.stringify(id)}`)(acked) };
      },
    },
  ];
}

/** GET /api/alerts/episodes's query: state (default open), the filters, limit as predictions'. */
function episodeQuery(q: URLSearchParams): EpisodeQuery {
  const state = q.get("state") ?? "open";
  if (state !== "open" && state !== "recent" && state !== "all")
    throw new ApiRequestError(400, "bad_request", "state must be open, recent or all");
  const limitText = q.get("limit");
  const limit = limitText === null ? PREDICTIONS_LIMIT_DEFAULT : Number(limitText);
  if (!(Number.isInteger(limit) && limit >= 1 && limit <= PREDICTIONS_LIMIT_MAX))
    throw new ApiRequestError(400, "bad_request", `limit must be an integer in 1..${PREDICTIONS_LIMIT_MAX}`);
  const out: EpisodeQuery = { state, limit };
  for (const f of ["machine_id", "rule", "family", "severity"] as const) {
    const v = q.get(f);
    if (v !== null && v !== "") out[f] = v;
  }
  return out;
}

function objectBody(body: unknown): Readonly<Record<string, unknown>> {
  if (body === undefined) return {};
  if (typeof body !== "object" || body === null || Array.isArray(body))
    throw new ApiRequestError(400, "bad_request", "the body must be a JSON object");
  return body as Record<string, unknown>;
}

function optionalString(v: unknown, field: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string" || v.length === 0 || v.length > 200)
    throw new ApiRequestError(400, "bad_request", `${field} must be a non-empty string of at most 200 characters`);
  return v;
}

function providerName(key: keyof ApiProviders): string {
  const names: Record<keyof ApiProviders, string> = {
    health: "HealthProvider",
    predictions: "PredictionProvider",
    models: "ModelsProvider",
    alerts: "AlertsProvider",
    quarantine: "QuarantineProvider",
    spcLimits: "SpcLimitsProvider",
    plant: "PlantProvider",
    history: "HistoryProvider",
    serialLines: "SerialLinesProvider",
    quality: "QualityBatchesProvider",
    status: "status provider",
  };
  return names[key];
}
