import { request } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { AccessControl, TokenBucket } from "../connectors/live/access.js";
import { ApiRequestError, ServerListenError } from "../connectors/errors.js";
import { type ApiProviders, ApiReplyError, type EquipmentHealth, type MaintenancePrediction } from "../connectors/live/http-api.js";
import {
  startLiveServer,
  validateLiveServerOptions,
  defaultLiveServerOptions,
  type LiveServer,
  type LiveServerOptions,
} from "../connectors/live/live-server.js";
import { LATENCY_SECONDS_BUCKETS, MetricsRegistry, PROMETHEUS_CONTENT_TYPE, defineEngineMetrics } from "../connectors/live/metrics.js";
import { CapacityError, ConfigError } from "../engine/core/errors.js";
import { createLogger, type LogEntry, memoryLogger } from "../engine/core/mod.js";

/** Operational log events are not what these tests look at. */
const QUIET = createLogger({ level: "silent" });

const ADMIN = "admin-token-0123456789abcdef";
const READ_ONLY = "read-only-token-0123456789";
const SPC_ONLY = "spc-only-token-0123456789";
const NO_SCOPES = "no-scopes-token-0123456789";

const HEALTH: EquipmentHealth = {
  machine_id: "M-001",
  health_score: 82.5,
  risk_level: "medium",
  updated_at: "2026-01-01T00:00:00.000Z",
  features: { vibration_rms: 1.25, temperature_mean: 61.2 },
};
const PREDICTION: MaintenancePrediction = {
  machine_id: "M-001",
  failure_probability: 0.31,
  time_to_failure_hours: 120,
  risk_level: "medium",
  predicted_at: "2026-01-01T00:00:00.000Z",
  model_version: "iforest-3f2a",
};
const ALERT = {
  type: "alert_episode",
  event: "opened",
  episode_id: "00000000000000e1",
  key: "M-001/temperature",
  family: "level",
  rules: ["WE1"],
  severity: "high",
  opened_at: 1_767_225_600_000,
  closed_at: null,
  acknowledged_at: null,
};
const CLOSED = { ...ALERT, event: "closed", episode_id: "00000000000000e2", closed_at: 1_767_225_700_000 };
const ENTRY = {
  serial_number: "SN0001",
  gtin: "09506000134352",
  batch_number: "B1",
  risk_level: "high",
  reasons: ["duplicate"],
  occurrences: 2,
};

/** Fake providers over plain maps; `calls` records what the server handed them. */
function fakeProviders(): { providers: ApiProviders; calls: unknown[]; release: () => void } {
  const calls: unknown[] = [];
  const limits = new Map([
    ["M-001.temperature", { key: "M-001.temperature", cl: 60, sigma: 1.5, ucl: 64.5, lcl: 55.5, limits_version: 1 }],
  ]);
  const quarantine = [ENTRY, { ...ENTRY, serial_number: "SN0002" }];
  let releaseHang: () => void = () => {};
  const hang = new Promise<void>((resolve) => (releaseHang = resolve));
  return {
    calls,
    release: () => releaseHang(),
    providers: {
      health: { health: (id) => (id === "M-001" ? HEALTH : null) },
      predictions: {
        predictions: (q) => {
          calls.push(["predictions", q]);
          return Promise.resolve(
            [PREDICTION, { ...PREDICTION, machine_id: "M-002" }]
              .filter((p) => q.machineId === undefined || p.machine_id === q.machineId)
              .slice(0, q.limit),
          );
        },
        predict: async (id, req) => {
          calls.push(["predict", id, req]);
          if (id === "M-boom") throw new Error("model file vanished");
          if (id === "M-busy") throw new ApiRequestError(409, "conflict", "a prediction for M-busy is running");
          if (id === "M-hang") await hang;
          return id === "M-001" || id === "M-hang" ? { ...PREDICTION, machine_id: id } : null;
        },
      },
      alerts: {
        openAlerts: () => [ALERT],
        episodes: (q) => {
          calls.push(["episodes", q]);
          return [ALERT, CLOSED].filter((e) => q.state === "all" || (q.state === "open") === (e.closed_at === null)).slice(0, q.limit);
        },
        acknowledge: (id, ack) => {
          calls.push(["ack", id, ack]);
          if (id === CLOSED.episode_id)
            throw new ApiReplyError(409, "already_acknowledged", `alert episode ${id} was acknowledged already`, {});
          return id === ALERT.episode_id ? { ...ALERT, event: "acknowledged", acknowledged_at: 1, acknowledged_by: ack.by ?? null } : null;
        },
      },
      quarantine: {
        list: () => quarantine,
        release: (serial, req) => {
          calls.push(["release", serial, req]);
          const i = quarantine.findIndex((e) => e.serial_number === serial);
          return i < 0
            ? []
            : quarantine
                .splice(i, 1)
                .map((e) => ({ ...e, released_at: "2026-01-02T00:00:00.000Z", ...(req.note ? { release_note: req.note } : {}) }));
        },
      },
      spcLimits: {
        limits: (key) => limits.get(key) ?? null,
        rebaseline: (key, records) => (limits.has(key) ? { key, state: "rebaselining", records: records ?? 100 } : null),
        setLimits: (key, l) => {
          const known = limits.get(key);
          if (known === undefined) return null;
          const next = {
            key,
            cl: l.cl,
            sigma: l.sigma,
            ucl: l.cl + 3 * l.sigma,
            lcl: l.cl - 3 * l.sigma,
            limits_version: known.limits_version + 1,
          };
          limits.set(key, next);
          return next;
        },
      },
      status: () => ({ engine: "running" }),
    },
  };
}

const servers: LiveServer[] = [];

async function server(
  options: Partial<LiveServerOptions> = {},
): Promise<{ s: LiveServer; log: LogEntry[]; calls: unknown[]; release: () => void }> {
  const { log: logger, entries: log } = memoryLogger();
  const fake = fakeProviders();
  const s = await startLiveServer({
    host: "127.0.0.1",
    port: 0,
    log: logger,
    providers: fake.providers,
    tokens: [
      { token: ADMIN, name: "admin", topics: ["#"], scopes: ["*"] },
      { token: READ_ONLY, name: "viewer", scopes: ["*:read"] },
      { token: SPC_ONLY, name: "spc", scopes: ["spc:*"], requestsPerSec: 0.1, requestBurst: 3 },
      { token: NO_SCOPES, name: "nothing" },
    ],
    ...options,
  });
  servers.push(s);
  return { s, log, calls: fake.calls, release: fake.release };
}

async function call(
  s: LiveServer,
  method: string,
  path: string,
  token?: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(`${s.url}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: text === "" ? {} : (JSON.parse(text) as Record<string, unknown>), headers: res.headers };
}

/** A request through node:http, for bodies fetch will not send (chunked, lying lengths). */
function raw(
  s: LiveServer,
  method: string,
  path: string,
  headers: Record<string, string>,
  chunks: Buffer[],
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(`${s.url}${path}`);
    const req = request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    for (const c of chunks) req.write(c);
    req.end();
  });
}

afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

describe("http api", () => {
  it("http - /healthz needs no token and says which uWS implementation runs (the native binary here)", async () => {
    const { s, log } = await server();
    const r = await call(s, "GET", "/healthz");
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({
      status: "ok",
      engine: "running",
      uws: { native: true, implementation: expect.stringMatching(/^native uws_linux_x64_\d+\.node$/) },
      ws: { connections: 0, subscriptions: 0, topics: 0 },
      providers: { health: true, predictions: true, alerts: true, quarantine: true, spcLimits: true },
    });
    expect(s.uwsNative).toBe(true);
    expect(log[0]).toMatchObject({ level: "info", component: "live", msg: "live server listening", url: s.url, uws_native: true });
    const index = await call(s, "GET", "/api/");
    expect(index.json.endpoints).toContain("POST /api/quarantine/{serial}/release");
  });

  it("http - the API endpoints return the documented JSON", async () => {
    const { s, calls } = await server();
    expect((await call(s, "GET", "/api/ml/maintenance/health/M-001/", READ_ONLY)).json).toEqual(HEALTH);
    expect((await call(s, "GET", "/api/ml/maintenance/health/M-001", READ_ONLY)).json).toEqual(HEALTH);

    const preds = await call(s, "GET", "/api/ml/maintenance/predictions/?machine_id=M-002&limit=5", READ_ONLY);
    expect(preds.json).toEqual({ count: 1, results: [{ ...PREDICTION, machine_id: "M-002" }] });
    expect((await call(s, "GET", "/api/ml/maintenance/predictions/", READ_ONLY)).json.count).toBe(2);
    expect(calls.filter((c) => (c as unknown[])[0] === "predictions")).toEqual([
      ["predictions", { machineId: "M-002", limit: 5 }],
      ["predictions", { limit: 100 }],
    ]);

    const predicted = await call(s, "POST", "/api/ml/maintenance/predict/M-001/", ADMIN, { horizon_hours: 24 });
    expect(predicted.status).toBe(200);
    expect(predicted.json).toEqual(PREDICTION);
    expect(calls).toContainEqual(["predict", "M-001", { horizon_hours: 24 }]);
    expect((await call(s, "POST", "/api/ml/maintenance/predict/M-001/", ADMIN)).status).toBe(200);
    expect(calls).toContainEqual(["predict", "M-001", {}]);

    expect((await call(s, "GET", "/api/alerts", READ_ONLY)).json).toEqual({ count: 1, results: [ALERT] });
    expect((await call(s, "GET", "/api/alerts/episodes", READ_ONLY)).json).toEqual({ count: 1, results: [ALERT] });
    const filtered = "/api/alerts/episodes?state=all&machine_id=M-001&rule=WE1&family=level&severity=high&limit=5";
    expect((await call(s, "GET", filtered, READ_ONLY)).json).toEqual({ count: 2, results: [ALERT, CLOSED] });
    expect(calls).toContainEqual([
      "episodes",
      { state: "all", machine_id: "M-001", rule: "WE1", family: "level", severity: "high", limit: 5 },
    ]);
    for (const bad of ["state=closed", "limit=0", "limit=1001", "limit=x"])
      expect((await call(s, "GET", `/api/alerts/episodes?${bad}`, READ_ONLY)).status).toBe(400);
    const acked = await call(s, "POST", `/api/alerts/episodes/${ALERT.episode_id}/ack`, ADMIN, { by: "qa", note: "seen" });
    expect([acked.status, acked.json.event, acked.json.acknowledged_by]).toEqual([200, "acknowledged", "qa"]);
    expect(calls).toContainEqual(["ack", ALERT.episode_id, { by: "qa", note: "seen" }]);
    const twice = await call(s, "POST", `/api/alerts/episodes/${CLOSED.episode_id}/ack`, ADMIN);
    expect([twice.status, twice.json.error]).toEqual([409, "already_acknowledged"]);
    const unknown = await call(s, "POST", "/api/alerts/episodes/ffffffffffffffff/ack", ADMIN, {});
    expect([unknown.status, unknown.json.error]).toEqual([404, "not_found"]);
    expect((await call(s, "POST", `/api/alerts/episodes/${ALERT.episode_id}/ack`, ADMIN, { by: 7 })).status).toBe(400);
    expect((await call(s, "GET", "/api/quarantine", READ_ONLY)).json).toEqual({
      count: 2,
      results: [ENTRY, { ...ENTRY, serial_number: "SN0002" }],
    });

    const released = await call(s, "POST", "/api/quarantine/SN0001/release", ADMIN, { note: "checked by QA" });
    expect(released.json).toEqual({
      serial_number: "SN0001",
      released: [{ ...ENTRY, released_at: "2026-01-02T00:00:00.000Z", release_note: "checked by QA" }],
    });
    expect((await call(s, "GET", "/api/quarantine", READ_ONLY)).json.count).toBe(1);
    const again = await call(s, "POST", "/api/quarantine/SN0001/release", ADMIN);
    expect([again.status, again.json.error]).toEqual([404, "not_found"]);

    const key = encodeURIComponent("M-001.temperature");
    expect((await call(s, "GET", `/api/spc/limits/${key}`, READ_ONLY)).json).toEqual({
      key: "M-001.temperature",
      cl: 60,
      sigma: 1.5,
      ucl: 64.5,
      lcl: 55.5,
      limits_version: 1,
    });
    const rebase = await call(s, "POST", `/api/spc/limits/${key}/rebaseline`, SPC_ONLY, { records: 250 });
    expect([rebase.status, rebase.json]).toEqual([202, { key: "M-001.temperature", state: "rebaselining", records: 250 }]);
    const set = await call(s, "PUT", `/api/spc/limits/${key}`, SPC_ONLY, { cl: 61, sigma: 2 });
    expect(set.json).toEqual({ key: "M-001.temperature", cl: 61, sigma: 2, ucl: 67, lcl: 55, limits_version: 2 });
    expect((await call(s, "POST", `/api/spc/limits/${key}`, ADMIN, { cl: 62, sigma: 1 })).json.limits_version).toBe(3);
  });

  it("http - 401 without or with an unknown token, 403 without the route's scope", async () => {
    const { s } = await server();
    const missing = await call(s, "GET", "/api/alerts");
    expect([missing.status, missing.json.error]).toEqual([401, "unauthorized"]);
    expect(missing.headers.get("www-authenticate")).toBe('Bearer realm="linewatch"');
    const invalid = await call(s, "GET", "/api/alerts", "not-a-token-0123456789");
    expect([invalid.status, invalid.json.error]).toEqual([401, "unauthorized"]);
    expect(invalid.headers.get("www-authenticate")).toContain('error="invalid_token"');
    // The token in the query works like the header.
    expect((await call(s, "GET", `/api/alerts?token=${READ_ONLY}`)).status).toBe(200);

    const cases: Array<[string, string, string, string]> = [
      ["GET", "/api/alerts", NO_SCOPES, "alerts:read"],
      ["POST", "/api/quarantine/SN0002/release", READ_ONLY, "quarantine:write"],
      ["POST", "/api/ml/maintenance/predict/M-001/", READ_ONLY, "maintenance:write"],
      ["PUT", "/api/spc/limits/M-001.temperature", READ_ONLY, "spc:write"],
      ["POST", "/api/spc/limits/M-001.temperature/rebaseline", READ_ONLY, "spc:write"],
      ["GET", "/api/alerts", SPC_ONLY, "alerts:read"],
      ["GET", "/api/alerts/episodes", NO_SCOPES, "alerts:read"],
      ["POST", `/api/alerts/episodes/${ALERT.episode_id}/ack`, READ_ONLY, "alerts:write"],
    ];
    for (const [method, path, token, scope] of cases) {
      const r = await call(s, method, path, token, method === "GET" ? undefined : { cl: 1, sigma: 1 });
      expect([method, path, r.status, r.json.error, r.json.scope]).toEqual([method, path, 403, "forbidden", scope]);
    }
    // Nothing changed behind a refusal.
    expect((await call(s, "GET", "/api/quarantine", READ_ONLY)).json.count).toBe(2);
    const m = await (await fetch(`${s.url}/metrics`)).text();
    expect(m).toContain('linewatch_auth_failures_total{surface="http",reason="missing"} 1');
    expect(m).toContain('linewatch_auth_failures_total{surface="http",reason="invalid"} 1');
    expect(m).toContain(`linewatch_auth_failures_total{surface="http",reason="forbidden"} ${cases.length}`);
  });

  it("http - 429 with Retry-After over the token's rate; other tokens keep their own budget", async () => {
    const { s } = await server();
    const statuses: number[] = [];
    let limited: Awaited<ReturnType<typeof call>> | undefined;
    for (let i = 0; i < 5; i++) {
      const r = await call(s, "GET", "/api/spc/limits/M-001.temperature", SPC_ONLY); // burst 3, 0.1/s
      statuses.push(r.status);
      if (r.status === 429) limited ??= r;
    }
    expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
    expect(statuses.filter((x) => x === 429).length).toBeGreaterThanOrEqual(1);
    expect(limited!.json.error).toBe("rate_limited");
    const retryAfter = Number(limited!.headers.get("retry-after"));
    expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 10).toBe(true);
    expect((await call(s, "GET", "/api/spc/limits/M-001.temperature", READ_ONLY)).status).toBe(200);
    expect(await (await fetch(`${s.url}/metrics`)).text()).toMatch(/linewatch_rate_limited_total\{surface="http"\} [1-9]/);
  });

  it("http - 404 for an unknown key, an unconfigured provider or route; 405 for a wrong method", async () => {
    const { s } = await server();
    const unknown = await call(s, "GET", "/api/ml/maintenance/health/M-404/", READ_ONLY);
    expect([unknown.status, unknown.json.error]).toEqual([404, "not_found"]);
    expect(unknown.json.message).toContain("M-404");
    expect((await call(s, "GET", "/api/spc/limits/nope", READ_ONLY)).json.error).toBe("not_found");
    expect((await call(s, "POST", "/api/ml/maintenance/predict/M-9/", ADMIN)).status).toBe(404);
    const route = await call(s, "GET", "/api/nothing-here", READ_ONLY);
    expect([route.status, route.json.error]).toEqual([404, "not_found"]);
    const method = await call(s, "DELETE", "/api/alerts", READ_ONLY);
    expect([method.status, method.json.error, method.headers.get("allow")]).toEqual([405, "method_not_allowed", "GET"]);

    const { s: bare } = await server({ providers: {} });
    for (const path of [
      "/api/ml/maintenance/health/M-001/",
      "/api/ml/maintenance/predictions/",
      "/api/alerts",
      "/api/quarantine",
      "/api/spc/limits/k",
    ]) {
      const r = await call(bare, "GET", path, READ_ONLY);
      expect([path, r.status, r.json.error]).toEqual([path, 404, "not_configured"]);
    }
    expect((await call(bare, "GET", "/api/alerts", READ_ONLY)).json.message).toContain("AlertsProvider");
    expect((await call(bare, "GET", "/healthz")).json.providers).toEqual({
      health: false,
      predictions: false,
      models: false,
      alerts: false,
      quarantine: false,
      spcLimits: false,
      plant: false,
      history: false,
      serialLines: false,
      quality: false,
    });
  });

  it("http - bodies are bounded (413) and must be usable JSON (400)", async () => {
    const { s } = await server({ httpBodyBytesMax: 1024 });
    const auth = { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" };
    const declared = await raw(s, "POST", "/api/ml/maintenance/predict/M-001/", { ...auth, "content-length": "5000" }, [
      Buffer.alloc(5000, 0x20),
    ]);
    expect([declared.status, JSON.parse(declared.body).error]).toEqual([413, "body_too_large"]);
    const chunked = await raw(s, "POST", "/api/ml/maintenance/predict/M-001/", { ...auth, "transfer-encoding": "chunked" }, [
      Buffer.alloc(800, 0x20),
      Buffer.alloc(800, 0x20),
    ]);
    expect([chunked.status, JSON.parse(chunked.body).error]).toEqual([413, "body_too_large"]);
    const fits = await raw(s, "POST", "/api/ml/maintenance/predict/M-001/", { ...auth, "transfer-encoding": "chunked" }, [
      Buffer.from('{"a":'),
      Buffer.from("1}"),
    ]);
    expect(fits.status).toBe(200);

    const bad: Array<[string, string, unknown]> = [
      ["/api/ml/maintenance/predict/M-001/", "{oops", "not JSON"],
      ["/api/ml/maintenance/predict/M-001/", "[1,2]", "an array"],
      ["/api/spc/limits/M-001.temperature", '{"cl":1}', "no sigma"],
      ["/api/spc/limits/M-001.temperature", '{"cl":1,"sigma":0}', "sigma 0"],
      ["/api/spc/limits/M-001.temperature/rebaseline", '{"records":1.5}', "fractional records"],
      ["/api/quarantine/SN0002/release", '{"gtin":7}', "numeric gtin"],
    ];
    for (const [path, body, what] of bad) {
      const r = await call(s, "POST", path, ADMIN, body);
      expect([what, r.status, r.json.error]).toEqual([what, 400, "bad_request"]);
    }
    const limit = await call(s, "GET", "/api/ml/maintenance/predictions/?limit=5000", ADMIN);
    expect([limit.status, limit.json.error]).toEqual([400, "bad_request"]);
  });

  it("http - provider failures: 500 provider_failed, the provider's own status, 503 on timeout or when busy", async () => {
    const { s, log, release } = await server({ httpProviderTimeoutMs: 300, httpInFlightMax: 1 });
    const boom = await call(s, "POST", "/api/ml/maintenance/predict/M-boom/", ADMIN);
    expect([boom.status, boom.json.error, boom.json.message]).toEqual([500, "provider_failed", "model file vanished"]);
    expect(log.find((e) => e.level === "error" && e.route === "/api/ml/maintenance/predict/{machine_id}/")).toMatchObject({
      component: "live",
      err: { message: "model file vanished" },
    });
    const busy = await call(s, "POST", "/api/ml/maintenance/predict/M-busy/", ADMIN);
    expect([busy.status, busy.json.error]).toEqual([409, "conflict"]);

    const hanging = call(s, "POST", "/api/ml/maintenance/predict/M-hang/", ADMIN);
    await new Promise((r) => setTimeout(r, 50));
    const refused = await call(s, "GET", "/api/alerts", ADMIN);
    expect([refused.status, refused.json.error]).toEqual([503, "busy"]);
    const timedOut = await hanging;
    expect([timedOut.status, timedOut.json.error]).toEqual([503, "provider_timeout"]);
    release();
    expect((await call(s, "GET", "/api/alerts", ADMIN)).status).toBe(200);
  });

  it("http - uploads cut off by the client give their in-flight slot back", async () => {
    const { s } = await server({ httpInFlightMax: 1 });
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((resolve) => {
        const u = new URL(s.url);
        const req = request({
          host: u.hostname,
          port: u.port,
          path: "/api/ml/maintenance/predict/M-001/",
          method: "POST",
          headers: { authorization: `Bearer ${ADMIN}`, "content-length": "1000" },
        });
        req.on("error", () => resolve());
        req.write('{"a":');
        setTimeout(() => {
          req.destroy();
          setTimeout(resolve, 50);
        }, 50);
      });
    }
    expect((await call(s, "GET", "/api/alerts", ADMIN)).status).toBe(200);
  });

  it("http - /metrics is Prometheus text 0.0.4 and carries the engine's, the WebSocket's and the HTTP series", async () => {
    const registry = new MetricsRegistry();
    const engine = defineEngineMetrics(registry);
    engine.recordsIn.labels({ source: "nats" }).inc(1200);
    engine.recordsOut.labels({ analysis: "spc" }).inc(1100);
    engine.deadLetter.labels({ reason: "not_finite" }).inc(3);
    engine.lateRecords.labels({ source: "nats" }).inc(2);
    engine.queueDepth.labels({ queue: "pool" }).set(17);
    engine.poolUtilisation.set(0.42);
    for (const ms of [0.2, 3, 3, 40, 12_000]) engine.sinkLatency.labels({ sink: "clickhouse" }).observe(ms / 1000);
    registry
      .counter({ name: "test_odd_labels_total", help: 'Label values with \\ and " and\nnewlines.', labelNames: ["v"] })
      .labels({ v: 'a\\b"c\nd' })
      .inc();
    const { s } = await server({ metrics: registry });
    await call(s, "GET", "/api/alerts", READ_ONLY);
    s.publish("alerts", { x: 1 });

    const res = await fetch(`${s.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(PROMETHEUS_CONTENT_TYPE);
    const families = parsePrometheusText(await res.text());
    const value = (name: string, labels: Record<string, string> = {}) =>
      families.get(familyOf(families, name))!.samples.find((x) => x.name === name && sameLabels(x.labels, labels))?.value;
    expect(value("linewatch_records_in_total", { source: "nats" })).toBe(1200);
    expect(value("linewatch_records_out_total", { analysis: "spc" })).toBe(1100);
    expect(value("linewatch_dead_letter_total", { reason: "not_finite" })).toBe(3);
    expect(value("linewatch_late_records_total", { source: "nats" })).toBe(2);
    expect(value("linewatch_queue_depth", { queue: "pool" })).toBe(17);
    expect(value("linewatch_pool_utilisation_ratio")).toBe(0.42);
    expect(value("linewatch_sink_latency_seconds_count", { sink: "clickhouse" })).toBe(5);
    expect(value("linewatch_sink_latency_seconds_bucket", { sink: "clickhouse", le: "0.005" })).toBe(3);
    expect(value("linewatch_sink_latency_seconds_bucket", { sink: "clickhouse", le: "10" })).toBe(4);
    expect(value("linewatch_sink_latency_seconds_bucket", { sink: "clickhouse", le: "+Inf" })).toBe(5);
    expect(value("linewatch_ws_published_total")).toBe(1);
    expect(value("linewatch_ws_connections")).toBe(0);
    expect(value("linewatch_uws_native")).toBe(1);
    expect(value("linewatch_http_requests_total", { route: "/api/alerts", status: "200" })).toBe(1);
    expect(value("linewatch_http_requests_total", { route: "/metrics", status: "200" })).toBe(1);
    expect(value("test_odd_labels_total", { v: 'a\\b"c\nd' })).toBe(1);
    expect(families.get("test_odd_labels_total")!.help).toBe('Label values with \\ and " and\nnewlines.');
    expect(families.get("linewatch_sink_latency_seconds")!.type).toBe("histogram");
    expect(value("process_resident_memory_bytes")).toBeGreaterThan(0);

    const { s: closed } = await server({
      metricsAuth: "token",
      tokens: [
        { token: ADMIN, scopes: ["metrics:read"] },
        { token: READ_ONLY, scopes: ["alerts:read"] },
      ],
    });
    expect((await fetch(`${closed.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${closed.url}/metrics`, { headers: { authorization: `Bearer ${READ_ONLY}` } })).status).toBe(403);
    const ok = await fetch(`${closed.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(ok.status).toBe(200);
    parsePrometheusText(await ok.text());
  });

  it("http - no token configured: one is generated, the printed URL carries it and opens the API", async () => {
    const { s, log } = await server({ tokens: [] });
    const event = log.find((e) => e.msg.includes("no access token configured"));
    const url = event?.url as string | undefined;
    // The dashboard's address: the token in the fragment (never sent to a server or kept in its logs).
    expect(url).toBe(`${s.url}/#token=${s.generatedToken}`);
    expect(s.dashboardUrl).toBe(url);
    const token = new URLSearchParams(new URL(url!).hash.slice(1)).get("token")!;
    expect((await call(s, "GET", "/api/alerts")).status).toBe(401);
    expect((await call(s, "GET", "/api/alerts", token)).json.count).toBe(1);
    expect((await call(s, "PUT", "/api/spc/limits/M-001.temperature", token, { cl: 1, sigma: 1 })).status).toBe(200);
    const configured = await server();
    expect(configured.s.generatedToken).toBeUndefined();
    expect(configured.log.some((e) => e.msg.includes("generated"))).toBe(false);
  });

  it("http - start-up refuses bad options and a taken port with typed errors", async () => {
    const { s } = await server();
    await expect(startLiveServer({ host: "127.0.0.1", port: s.port, log: QUIET })).rejects.toBeInstanceOf(ServerListenError);
    const o = defaultLiveServerOptions();
    expect(() => validateLiveServerOptions({ ...o, wsSendBufferBytesMax: 10 })).toThrow(ConfigError);
    expect(() => validateLiveServerOptions({ ...o, wsSlowPolicy: "ignore" as "sample" })).toThrow(ConfigError);
    expect(() => validateLiveServerOptions({ ...o, requestsPerSec: 0 })).toThrow(ConfigError);
    const defaults = { wsSlowPolicy: "sample" as const, topicRatePerSecMax: 0, requestsPerSec: 1, requestBurst: 1 };
    expect(() => new AccessControl([{ token: "short" }], defaults)).toThrow(ConfigError);
    expect(() => new AccessControl([{ token: ADMIN }, { token: ADMIN }], defaults)).toThrow(ConfigError);
    expect(() => new AccessControl([{ token: ADMIN, scopes: ["spc:delete"] }], defaults)).toThrow(ConfigError);
    expect(() => new AccessControl([{ token: ADMIN, topics: ["sensor/#"] }], defaults)).toThrow();
  });
});

describe("metrics registry", () => {
  it("metrics - counters only rise; shapes are checked; label sets are bounded", async () => {
    const r = new MetricsRegistry(3);
    const c = r.counter({ name: "x_total", help: "x", labelNames: ["k"] });
    expect(() => c.labels({ k: "a" }).inc(-1)).toThrow(RangeError);
    expect(r.counter({ name: "x_total", help: "x", labelNames: ["k"] })).toBe(c);
    expect(() => r.gauge({ name: "x_total", help: "x", labelNames: ["k"] })).toThrow(ConfigError);
    expect(() => r.counter({ name: "x_total", help: "other", labelNames: ["k"] })).toThrow(ConfigError);
    expect(() => r.counter({ name: "no_suffix", help: "x" })).toThrow(ConfigError);
    expect(() => r.gauge({ name: "bad-name", help: "x" })).toThrow(ConfigError);
    expect(() => r.gauge({ name: "g", help: "x", labelNames: ["__reserved"] })).toThrow(ConfigError);
    expect(() => r.histogram({ name: "h", help: "x", buckets: [1, 1] })).toThrow(ConfigError);
    expect(() => r.histogram({ name: "h2", help: "x", buckets: [1], labelNames: ["le"] })).toThrow(ConfigError);
    for (const k of ["a", "b", "c"]) c.labels({ k }).inc();
    expect(() => c.labels({ k: "d" })).toThrow(CapacityError);
    const h = r.histogram({ name: "lat_seconds", help: "x", buckets: LATENCY_SECONDS_BUCKETS });
    h.observe(Number.NaN);
    h.observe(0.003);
    const families = parsePrometheusText(await r.render());
    expect(families.get("lat_seconds")!.samples.find((x) => x.name === "lat_seconds_count")!.value).toBe(1);
    expect(families.get("x_total")!.samples).toHaveLength(3);
  });

  it("metrics - the strict reader used above rejects what a scraper rejects", () => {
    const ok = '# HELP a_total A.\n# TYPE a_total counter\na_total{k="v"} 1\n';
    expect(parsePrometheusText(ok).get("a_total")!.samples[0]).toEqual({ name: "a_total", labels: { k: "v" }, value: 1 });
    const bad = [
      "a_total 1", // no final newline
      "# TYPE a counter\na 1\na 2\n", // duplicate series
      '# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x="1"} 2\n', // family not contiguous
      '# TYPE a gauge\na{k="\\q"} 1\n', // bad escape
      "# TYPE a gauge\na{k=v} 1\n", // unquoted value
      "# TYPE a gauge\na one\n", // not a number
      "# TYPE a counter\na -1\n", // negative counter
      '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n', // not cumulative
      '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n', // no +Inf
      '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n', // count differs
      "a 1\n# TYPE a gauge\n", // TYPE after samples
    ];
    for (const text of bad) expect(() => parsePrometheusText(text), text).toThrow();
  });

  it("metrics - token bucket: burst, then the rate, and the wait until the next token", () => {
    const b = new TokenBucket(2, 3);
    expect([b.take(0), b.take(0), b.take(0)]).toEqual([0, 0, 0]);
    expect(b.take(0)).toBeCloseTo(500, 6);
    expect(b.take(250)).toBeCloseTo(250, 6);
    expect(b.take(500)).toBe(0);
    expect(b.take(10_000)).toBe(0); // refilled to the burst, not beyond
    expect([b.take(10_000), b.take(10_000)]).toEqual([0, 0]);
    expect(b.take(10_000)).toBeGreaterThan(0);
  });
});

// ---------------------------------------------------------------------------------------------
// A strict reader of the Prometheus text exposition format 0.0.4: it rejects what a scraper would.

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface MetricFamily {
  type: string;
  help: string | undefined;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
// Values as Prometheus reads them (Go's strconv.ParseFloat: Inf and NaN in any case; prom-client writes "Nan").
const FLOAT = /^(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?[Ii]nf|[Nn]a[Nn])$/;

function parsePrometheusText(text: string): Map<string, MetricFamily> {
  expect(text.endsWith("\n")).toBe(true);
  const families = new Map<string, MetricFamily>();
  const closed = new Set<string>();
  const series = new Set<string>();
  let current: string | undefined;
  const open = (name: string): MetricFamily => {
    if (current !== name) {
      if (current !== undefined) closed.add(current);
      if (closed.has(name)) throw new Error(`family ${name} is not contiguous`);
      current = name;
    }
    let f = families.get(name);
    if (f === undefined) families.set(name, (f = { type: "untyped", help: undefined, samples: [] }));
    return f;
  };
  for (const line of text.slice(0, -1).split("\n")) {
    if (line === "") continue; // "Empty lines are ignored" (exposition format 0.0.4); prom-client puts one between families
    if (line.startsWith("#")) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (m === null) continue; // a plain comment
      const [, kind, name, rest] = m;
      if (!METRIC_NAME.test(name)) throw new Error(`bad metric name ${name}`);
      const f = open(name);
      if (kind === "HELP") {
        if (f.help !== undefined) throw new Error(`second HELP for ${name}`);
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ""))) throw new Error(`bad escape in HELP of ${name}`);
        f.help = rest.replace(/\\(\\|n)/g, (_, c: string) => (c === "n" ? "\n" : "\\"));
      } else {
        if (f.samples.length > 0 || f.type !== "untyped") throw new Error(`TYPE of ${name} after its samples or twice`);
        if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(rest)) throw new Error(`bad type ${rest}`);
        f.type = rest;
      }
      continue;
    }
    const sample = parseSample(line);
    const family = [...families.keys()].reverse().find((n) => n === current) ?? sample.name;
    const f = families.get(family);
    const belongs =
      f !== undefined &&
      (sample.name === family ||
        (f.type === "histogram" && [`${family}_bucket`, `${family}_sum`, `${family}_count`].includes(sample.name)));
    if (!belongs) {
      open(sample.name).samples.push(sample);
    } else f.samples.push(sample);
    const id = `${sample.name}{${Object.entries(sample.labels)
      .sort()
      .map(([k, v]) => `${k}=${v}`)
      .join(",")}}`;
    if (series.has(id)) throw new Error(`duplicate series ${id}`);
    series.add(id);
  }
  for (const [name, f] of families) {
    if (f.type === "counter") for (const x of f.samples) if (!(x.value >= 0)) throw new Error(`counter ${name} is ${x.value}`);
    if (f.type === "histogram") checkHistogram(name, f);
  }
  return families;
}

function parseSample(line: string): Sample {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)(?: (-?\d+))?$/.exec(line);
  if (m === null) throw new Error(`bad sample line ${JSON.stringify(line)}`);
  const [, name, braces, value] = m;
  if (!FLOAT.test(value)) throw new Error(`bad value ${value}`);
  const labels: Record<string, string> = {};
  if (braces !== undefined) {
    let i = 1;
    const body = braces;
    while (i < body.length - 1) {
      const eq = body.indexOf("=", i);
      const label = body.slice(i, eq);
      if (!LABEL_NAME.test(label)) throw new Error(`bad label name ${label}`);
      if (body[eq + 1] !== '"') throw new Error(`label ${label} is not quoted`);
      let v = "";
      let j = eq + 2;
      for (; body[j] !== '"'; j++) {
        if (j >= body.length - 1) throw new Error(`unterminated label value in ${line}`);
        if (body[j] === "\\") {
          const c = body[++j];
          if (c === "n") v += "\n";
          else if (c === "\\" || c === '"') v += c;
          else throw new Error(`bad escape \\${c}`);
        } else if (body[j] === "\n") throw new Error("raw newline in label value");
        else v += body[j];
      }
      if (label in labels) throw new Error(`label ${label} twice`);
      labels[label] = v;
      i = j + 1;
      if (body[i] === ",") i++;
      else if (i !== body.length - 1) throw new Error(`expected , or } after label ${label}`);
    }
  }
  const n = value === "+Inf" || value === "Inf" ? Infinity : value === "-Inf" ? -Infinity : Number(value);
  return { name, labels, value: n };
}

function checkHistogram(name: string, f: MetricFamily): void {
  const groups = new Map<string, Sample[]>();
  for (const x of f.samples) {
    const { le: _le, ...rest } = x.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(x);
  }
  for (const samples of groups.values()) {
    const buckets = samples.filter((x) => x.name === `${name}_bucket`);
    const les = buckets.map((b) => (b.labels.le === "+Inf" ? Infinity : Number(b.labels.le)));
    if (!les.every((le, i) => i === 0 || le > les[i - 1])) throw new Error(`${name}: buckets not ascending`);
    if (les.at(-1) !== Infinity) throw new Error(`${name}: no +Inf bucket`);
    if (!buckets.every((b, i) => i === 0 || b.value >= buckets[i - 1].value)) throw new Error(`${name}: buckets not cumulative`);
    const count = samples.find((x) => x.name === `${name}_count`);
    if (count === undefined || samples.find((x) => x.name === `${name}_sum`) === undefined)
      throw new Error(`${name}: _count or _sum missing`);
    if (count.value !== buckets.at(-1)!.value) throw new Error(`${name}: _count ≠ +Inf bucket`);
  }
}

function familyOf(families: Map<string, MetricFamily>, sampleName: string): string {
  if (families.has(sampleName)) return sampleName;
  const base = sampleName.replace(/_(bucket|sum|count)$/, "");
  if (families.has(base)) return base;
  throw new Error(`no family for ${sampleName}`);
}

function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}
