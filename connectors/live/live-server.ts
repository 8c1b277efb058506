/**
 * The live server: WebSocket subscribers (`/ws`, see ws-server.ts) and the HTTP API (`/healthz`,
 * `/metrics`, `/api/…`, see http-api.ts) and the dashboard (`/`, dashboard-assets.ts and
 * dashboard/) on one uWS app and one port.
 *
 *   const server = await startLiveServer({ port: 8080, tokens, providers, metrics });
 *   server.publish(machineTopic("M-001"), row);   // from the engine, cheap, never blocks
 *   await server.close();
 *
 * With no token configured a random one is generated (every topic, every scope) and the URL that
 * carries it is logged, so the server never runs open by accident. At start the log says whether
 * uWS's native binary is in use (also in /healthz and `linewatch_uws_native`).
 */
import { AccessControl, generatedAccess, type AccessTokenConfig, type SlowSubscriberPolicy } from "./access.js";
import { ServerListenError } from "../errors.js";
import { DEFAULT_HTTP_API_OPTIONS, HttpApi, type ApiProviders, type HttpApiOptions, type ServerFacts } from "./http-api.js";
import { METRIC, MetricsRegistry } from "./metrics.js";
import { TOPIC_ALERTS, TOPIC_QUARANTINE } from "./topics.js";
import { closeApp, listen, loadUws, type ListenSocket, type UwsImplementation } from "./uws.js";
import { defaultDashboardDir, loadDashboardAssets } from "./dashboard-assets.js";
import { DEFAULT_WS_HUB_OPTIONS, WsHub, type AccessCounters, type WsHubOptions, type WsHubStats } from "./ws-server.js";
import { ConfigError, createLogger, type Logger } from "../../engine/core/mod.js";

export interface LiveServerOptions extends WsHubOptions, HttpApiOptions {
  /** Interface to listen on; `0.0.0.0` for every interface. */
  host: string;
  /** 0: a free port (see `LiveServer.port`). */
  port: number;
  /** Access tokens; empty: one is generated and its URL logged. */
  tokens: readonly AccessTokenConfig[];
  /** Defaults for tokens that do not set them. */
  wsSlowPolicy: SlowSubscriberPolicy;
  topicRatePerSecMax: number;
  requestsPerSec: number;
  requestBurst: number;
  providers: ApiProviders;
  /** Where /metrics reads from; the server adds its own series. Default: a new registry. */
  metrics?: MetricsRegistry;
  /** The caller prints the dashboard's address first (the CLI's first line) and then calls `LiveServer.logStart()`; default: logged at start. */
  announced?: boolean;
  /** The built dashboard's folder (dashboard-assets.ts); default: dist/dashboard of the package; null: serve no dashboard. */
  dashboardDir?: string | null;
  /** Start, generated token, slow subscribers, provider failures (component "live"). Default: a logger on stderr. */
  log?: Logger;
}

export const DEFAULT_LIVE_SERVER_OPTIONS: Readonly<Omit<LiveServerOptions, "metrics" | "log" | "dashboardDir" | "announced">> =
  Object.freeze({
    ...DEFAULT_WS_HUB_OPTIONS,
    ...DEFAULT_HTTP_API_OPTIONS,
    host: "127.0.0.1",
    port: 8080,
    tokens: [],
    wsSlowPolicy: "sample",
    topicRatePerSecMax: 0,
    // A dashboard tab makes a few requests a second (plant, episodes, history, metrics, a what-if
    // following its limits): a handful of tabs share one token within this.
    requestsPerSec: 50,
    requestBurst: 100,
    providers: {},
  });

export function defaultLiveServerOptions(): LiveServerOptions {
  return { ...DEFAULT_LIVE_SERVER_OPTIONS, providers: {} };
}

/** Checks every limit and how they relate; throws ConfigError naming the option. */
export function validateLiveServerOptions(o: LiveServerOptions): void {
  const int = (name: keyof LiveServerOptions, min: number, max = Number.MAX_SAFE_INTEGER) => {
    const v = o[name];
    if (!(typeof v === "number" && Number.isInteger(v) && v >= min && v <= max))
      throw new ConfigError(name, `must be an integer in ${min}..${max}, got ${String(v)}`);
  };
  const positive = (name: keyof LiveServerOptions, allowZero = false) => {
    const v = o[name];
    if (!(typeof v === "number" && Number.isFinite(v) && (allowZero ? v >= 0 : v > 0)))
      throw new ConfigError(name, `must be a finite number ${allowZero ? "≥ 0" : "> 0"}, got ${String(v)}`);
  };
  if (typeof o.host !== "string" || o.host === "")
    throw new ConfigError("host", "must be an interface address such as 127.0.0.1 or 0.0.0.0");
  int("port", 0, 65535);
  int("wsSendBufferBytesMax", 1024, 1 << 30);
  positive("wsSampledRatePerSec");
  int("wsSlowCheckIntervalMs", 1, 60_000);
  int("wsPaceIntervalMs", 1, 60_000);
  int("wsRecoverAfterMs", 0);
  int("wsConnectionsMax", 1);
  int("wsSubscriptionsPerConnectionMax", 1);
  int("wsTopicsMax", 1);
  int("wsClientMessageBytesMax", 256, 16 << 20);
  int("wsIdleTimeoutSeconds", 0, 960);
  int("httpBodyBytesMax", 256, 64 << 20);
  int("httpInFlightMax", 1);
  int("httpProviderTimeoutMs", 1);
  positive("topicRatePerSecMax", true);
  positive("requestsPerSec");
  if (!(o.requestBurst >= 1)) throw new ConfigError("requestBurst", `must be ≥ 1, got ${o.requestBurst}`);
  if (o.wsSlowPolicy !== "sample" && o.wsSlowPolicy !== "disconnect")
    throw new ConfigError("wsSlowPolicy", `must be "sample" or "disconnect", got ${JSON.stringify(o.wsSlowPolicy)}`);
  if (o.metricsAuth !== "none" && o.metricsAuth !== "token")
    throw new ConfigError("metricsAuth", `must be "none" or "token", got ${JSON.stringify(o.metricsAuth)}`);
  if (o.wsIdleTimeoutSeconds > 0 && o.wsIdleTimeoutSeconds < 8)
    throw new ConfigError("wsIdleTimeoutSeconds", "must be 0 (off) or ≥ 8: uWS sends pings at half the timeout with a 4 s granularity");
}

export class LiveServer {
  /** http://host:port (with 127.0.0.1 for a wildcard host). */
  readonly url: string;
  /** The dashboard's address with the generated token in the fragment (`…/#token=…`; the page exchanges it for a cookie), or the bare URL when tokens were configured. */
  readonly dashboardUrl: string;
  /** ws://host:port/ws */
  readonly wsUrl: string;
  private closed = false;

  constructor(
    readonly host: string,
    readonly port: number,
    /** The token generated because none was configured (undefined when tokens were given). */
    readonly generatedToken: string | undefined,
    readonly uwsNative: boolean,
    readonly uwsImplementation: string,
    readonly metrics: MetricsRegistry,
    private readonly hub: WsHub,
    private readonly stopApp: () => void,
    private readonly log: Logger,
  ) {
    const shown = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
    this.url = `http://${shown}:${port}`;
    this.wsUrl = `ws://${shown}:${port}/ws`;
    this.dashboardUrl = generatedToken === undefined ? `${this.url}/` : `${this.url}/#token=${encodeURIComponent(generatedToken)}`;
  }

  /** Logs where the server listens, a slow uWS fallback, and the URL carrying a generated token. */
  logStart(): void {
    logStart(this.log, this, this.generatedToken);
  }

  /** See WsHub.publish: the topic's new seq (0 when the topic could not be tracked). */
  publish(topic: string, data: unknown): number {
    return this.hub.publish(topic, data);
  }

  /** The last seq published on a topic. */
  seqOf(topic: string): number {
    return this.hub.seqOf(topic);
  }

  subscribersOf(topic: string): number {
    return this.hub.subscribersOf(topic);
  }

  wsStats(): WsHubStats {
    return this.hub.stats();
  }

  /** Closes every WebSocket (1001) and HTTP connection and stops listening. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.hub.stop();
    this.stopApp();
    // Let uWS run the close handlers and release the port before resolving.
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Validates the options, builds the app and listens. */
export async function startLiveServer(options: Partial<LiveServerOptions> = {}): Promise<LiveServer> {
  const o: LiveServerOptions = { ...defaultLiveServerOptions(), ...options };
  validateLiveServerOptions(o);
  const implementation = loadUws();
  const metrics = o.metrics ?? new MetricsRegistry();
  metrics.collectDefaultMetrics();
  metrics.gauge({
    name: METRIC.uwsNative,
    help: "1 when uWebSockets.js runs its native binary, 0 on the slow JavaScript fallback.",
    collect: (g) => g.set(implementation.native ? 1 : 0),
  });
  const generated = o.tokens.length === 0 ? generatedAccess() : undefined;
  const access = new AccessControl(generated === undefined ? o.tokens : [generated], o);

  const authFailures = metrics.counter({
    name: METRIC.authFailures,
    help: "Requests refused for their token: missing, invalid (401) or forbidden (403).",
    labelNames: ["surface", "reason"],
  });
  const rateLimited = metrics.counter({
    name: METRIC.rateLimited,
    help: "Requests refused by the per-token rate limit (429).",
    labelNames: ["surface"],
  });
  const counters: AccessCounters = {
    authFailure: (surface, reason) => authFailures.labels({ surface, reason }).inc(),
    rateLimited: (surface) => rateLimited.labels({ surface }).inc(),
  };

  const app = implementation.uws.App();
  const log = (o.log ?? createLogger()).child({ component: "live" });
  const hub = new WsHub(app, access, o, counters, log);
  hub.registerMetrics(metrics);
  new HttpApi(app, access, o.providers, metrics, o, serverFacts(implementation, hub, o.dashboardDir), counters, log);

  const listening = await listen(app, o.host, o.port);
  if (listening === null)
    throw new ServerListenError(
      o.host,
      o.port,
      "the port is in use or the address is not on this machine (choose another --port, or 0 for a free one)",
    );
  const socket: ListenSocket = listening.socket;
  hub.start();
  const server = new LiveServer(
    o.host,
    listening.port,
    generated?.token,
    implementation.native,
    implementation.description,
    metrics,
    hub,
    () => closeApp(app, socket),
    log,
  );

  if (o.announced !== true) server.logStart();
  return server;
}

/** What /healthz and the index report, and the dashboard's files (none when `dashboardDir` is null or nothing is built). */
function serverFacts(implementation: UwsImplementation, hub: WsHub, dashboardDir: string | null | undefined): ServerFacts {
  const dir = dashboardDir === undefined ? defaultDashboardDir() : dashboardDir;
  return {
    uwsNative: implementation.native,
    uwsImplementation: implementation.description,
    wsStats: () => hub.stats(),
    topics: ["machine/<machine_id>", "line/<line>", "analysis/<name>", TOPIC_ALERTS, TOPIC_QUARANTINE],
    assets: dir === null ? new Map() : loadDashboardAssets(dir),
  };
}

/** The start events: where the server listens, a slow uWS fallback, and the URL carrying a generated token. */
function logStart(log: Logger, server: LiveServer, generatedToken: string | undefined): void {
  const uws = { uws: server.uwsImplementation, uws_native: server.uwsNative };
  log.info({ url: server.url, ws_url: server.wsUrl, ...uws }, "live server listening");
  if (!server.uwsNative) log.warn("uWebSockets.js runs its JavaScript fallback: WebSocket fan-out and HTTP will be many times slower");
  if (generatedToken === undefined) return;
  const t = encodeURIComponent(generatedToken);
  log.warn(
    { url: server.dashboardUrl, ws_url: `${server.wsUrl}?token=${t}` },
    "no access token configured; generated one for this run (all topics and scopes)",
  );
}
