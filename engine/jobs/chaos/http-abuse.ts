/**
 * HTTP and WebSocket abuse of a live `linewatch run --port --tokens` (connectors/live): requests
 * without a token or with a wrong one, a token outside its scope, past its rate, oversized and
 * malformed bodies, path traversal on the dashboard's static files, unknown routes, a WebSocket
 * upgrade without a token. Each must get its status (401/403/429/413/400/404), never a 500, never
 * a file from outside the assets. Then the WebSocket's (ws-abuse.ts), while more records are
 * published and a subscriber of every machine topic watches: it must get every message and stay
 * open. The run must not crash and its records must all be scored.
 */
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { freePort } from "../../../connectors/local/mod.js";
import { RssWatch } from "./engine-process.js";
import { consuming, finishRun, RUN_TIMEOUT_MS } from "./engine-runs.js";
import { type ChaosEnv, chaosSimulator, sleep, waitFor } from "./env.js";
import { reconcileSequences, sequenceRange } from "./reconcile.js";
import { type ChaosRow, verdictOf } from "./table.js";
import { runWsAbuses, type WsAbuseCounts, type WsAbuseTokens, wsWatcher } from "./ws-abuse.js";
import { type ChaosWsClient, metricValue, scrapeMetrics } from "./ws-client.js";
import { LatencyPublisher } from "./ws-latency.js";

export interface HttpAbuseOptions {
  records: number;
  /** Times each abuse is repeated (a burst of them). */
  rounds: number;
  seed: number;
  log: (line: string) => void;
}

interface Reply {
  status: number;
  body: string;
}

/** One request on its own connection; status and body (the first 64 KiB). */
function send(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<Reply> {
  return new Promise((resolve) => {
    let status = 0;
    const req = request({ host: "127.0.0.1", port, method, path, headers, agent: false }, (res) => {
      status = res.statusCode ?? 0;
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text = (text + d).slice(0, 65_536)));
      res.on("end", () => resolve({ status, body: text }));
      res.on("error", () => resolve({ status, body: text }));
    });
    // A server may answer (413) and close before the whole body is out: the answer counts, not the write's EPIPE.
    req.on("error", (e) => resolve({ status, body: status === 0 ? `request failed: ${e.message}` : "" }));
    req.end(body);
  });
}

interface Abuse {
  name: string;
  /** The statuses it may get. */
  expect: readonly number[];
  go: () => Promise<Reply>;
}

/** Text that would show a file from outside the assets: /etc/passwd, the checkout's package.json. */
const LEAK = /root:x?:0:0|"name":\s*"linewatch"/;

function abuses(port: number, admin: string, reader: string, slow: string): Abuse[] {
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
  const json = (t: string) => ({ ...bearer(t), "content-type": "application/json" });
  return [
    { name: "no token", expect: [401], go: () => send(port, "GET", "/api/alerts") },
    { name: "wrong token", expect: [401], go: () => send(port, "GET", "/api/alerts", bearer(randomBytes(20).toString("hex"))) },
    {
      name: "token in the query, wrong",
      expect: [401],
      go: () => send(port, "GET", `/api/alerts?token=${randomBytes(20).toString("hex")}`),
    },
    { name: "scope outside the grant (read)", expect: [403], go: () => send(port, "GET", "/api/plant", bearer(reader)) },
    {
      name: "scope outside the grant (write)",
      expect: [403],
      go: () => send(port, "PUT", "/api/spc/limits/M-001%2Fpressure", json(reader), '{"cl":1,"sigma":1}'),
    },
    // Past the 64 KiB body limit: declared (Content-Length), and streamed without a length (chunked).
    {
      name: "oversized body",
      expect: [413],
      go: () => send(port, "PUT", "/api/spc/limits/M-001%2Fpressure", json(admin), `{"cl":1,"sigma":1,"pad":"${"x".repeat(100_000)}"}`),
    },
    {
      name: "oversized body, chunked",
      expect: [413],
      go: () =>
        send(
          port,
          "PUT",
          "/api/spc/limits/M-001%2Fpressure",
          { ...json(admin), "transfer-encoding": "chunked" },
          `{"pad":"${"x".repeat(100_000)}"}`,
        ),
    },
    {
      name: "malformed JSON",
      expect: [400],
      go: () => send(port, "PUT", "/api/spc/limits/M-001%2Fpressure", json(admin), '{"cl": 1, "sigma": '),
    },
    {
      name: "wrong JSON types",
      expect: [400],
      go: () => send(port, "PUT", "/api/spc/limits/M-001%2Fpressure", json(admin), '{"cl": "one", "sigma": -1}'),
    },
    { name: "unknown route", expect: [404], go: () => send(port, "GET", "/api/nothing/here", bearer(admin)) },
    ...pathAbuses(port),
    // A burst past the slow token's 2 requests a second: some must be refused with 429 (checked below).
    ...Array.from(
      { length: 8 },
      (): Abuse => ({ name: "over the rate limit", expect: [200, 429], go: () => send(port, "GET", "/api/alerts", bearer(slow)) }),
    ),
  ];
}

/** Path traversal on the dashboard's static files, and a WebSocket upgrade without a token. */
function pathAbuses(port: number): Abuse[] {
  const traversal = [
    "/assets/../../../../etc/passwd",
    "/assets/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/assets//etc/passwd",
    "/..%2f..%2fpackage.json",
    "/assets/..%5c..%5cpackage.json",
    "/%2e%2e/package.json",
    "/assets/www/../../../package.json",
  ];
  return [
    ...traversal.map((p): Abuse => ({ name: `path traversal ${p}`, expect: [404, 400], go: () => send(port, "GET", p) })),
    {
      name: "WebSocket upgrade without a token",
      expect: [401],
      go: () =>
        send(port, "GET", "/ws", {
          connection: "Upgrade",
          upgrade: "websocket",
          "sec-websocket-version": "13",
          "sec-websocket-key": randomBytes(16).toString("base64"),
        }),
    },
  ];
}

function writeTokens(env: ChaosEnv): WsAbuseTokens & { file: string } {
  const [admin, reader, slow, flood] = [0, 1, 2, 3].map(() => randomBytes(24).toString("hex"));
  const file = join(env.dir, "tokens.json");
  writeFileSync(
    file,
    JSON.stringify({
      tokens: [
        { token: admin, name: "admin", topics: ["#"], scopes: ["*"], requestsPerSec: 10_000, requestBurst: 10_000 },
        { token: reader, name: "reader", topics: ["alerts"], scopes: ["alerts:read"], requestsPerSec: 10_000 },
        { token: slow, name: "slow", scopes: ["alerts:read"], requestsPerSec: 2, requestBurst: 2 },
        { token: flood, name: "flood", topics: ["machine/+"], requestsPerSec: 20, requestBurst: 20 },
      ],
    }),
  );
  return { file, admin, reader, slow, flood };
}

interface HttpCounts {
  requests: number;
  wrong: number;
  fiveHundreds: number;
  leaks: number;
  rateLimited: number;
}

async function runHttpAbuses(port: number, t: WsAbuseTokens, counts: HttpCounts, notes: string[]): Promise<void> {
  for (const a of abuses(port, t.admin, t.reader, t.slow)) {
    const r = await a.go();
    counts.requests++;
    if (r.status >= 500 || r.status === 0) counts.fiveHundreds++;
    if (LEAK.test(r.body)) counts.leaks++;
    if (r.status === 429) counts.rateLimited++;
    if (!a.expect.includes(r.status)) {
      counts.wrong++;
      if (notes.length < 10) notes.push(`${a.name}: ${r.status}, expected ${a.expect.join(" or ")}: ${r.body.slice(0, 160)}`);
    }
  }
}

/** The machine topics of the chaos simulator (chaosSimulator: 4 machines). */
const MACHINE_TOPICS = ["machine/M-001", "machine/M-002", "machine/M-003", "machine/M-004"];

/** Records/s published while the WebSocket is abused (so that the watcher has messages to miss). */
const WS_ROUNDS_RATE = 500;

/** The WebSocket rounds, while records are published; the watcher's state at their end, and the records published. */
async function wsRounds(
  env: ChaosEnv,
  site: string,
  stream: string,
  port: number,
  t: WsAbuseTokens,
  o: HttpAbuseOptions,
  ws: WsAbuseCounts,
) {
  const watcher = await wsWatcher(port, t.admin, MACHINE_TOPICS);
  // Later than the first records (the engine would count earlier ones late), so other Nats-Msg-Ids too.
  const publisher = new LatencyPublisher(env, site, WS_ROUNDS_RATE, {
    ...chaosSimulator(o.seed + 1, 10_000_000),
    startTime: Date.UTC(2026, 0, 2),
  });
  for (let round = 0; round < o.rounds; round++) await runWsAbuses(port, t, ws);
  await publisher.stop();
  // The last records' frames reach the watcher once scored.
  await waitFor(async () => await env.consumedAll(stream, site), 30_000, 200);
  await sleep(1000);
  return { watcher, watcherOpen: watcher.open, published: publisher.published };
}

/** What the WebSocket part must show: each closing abuse counted, the watcher untouched. */
function wsMismatches(
  ws: WsAbuseCounts,
  watcher: ChaosWsClient,
  watcherOpen: boolean,
  metrics: string,
  rounds: number,
): Record<string, number> {
  const closes = (reason: string) => metricValue(metrics, `linewatch_ws_protocol_closes_total{reason="${reason}"}`);
  return {
    "WS: unexpected outcomes": ws.wrong,
    "WS: no 429 in an upgrade burst": ws.upgrades429 === 0 ? 1 : 0,
    "WS: closes not counted": closes("too_big") < rounds || closes("invalid_utf8") < rounds ? 1 : 0,
    "WS: watcher closed": watcherOpen ? 0 : 1,
    "WS: watcher seq gaps": watcher.gaps,
    "WS: watcher got nothing": watcher.data === 0 ? 1 : 0,
  };
}

export async function httpAbuseScenario(env: ChaosEnv, o: HttpAbuseOptions): Promise<ChaosRow> {
  const [site, stream, db] = ["chaoshttp", "CHAOSHTTP", "chaos_http"];
  const tokens = writeTokens(env);
  await env.createStream(stream, site);
  await env.publish(site, Number.POSITIVE_INFINITY, chaosSimulator(o.seed, o.records));
  const port = await freePort();
  const rss = new RssWatch();
  const run = env.startRun(site, stream, db, ["--port", String(port), "--tokens", tokens.file]);
  rss.watch(run);
  if (!(await waitFor(() => consuming(run), RUN_TIMEOUT_MS))) throw new Error(`the run did not start consuming\n${run.output()}`);
  const counts: HttpCounts = { requests: 0, wrong: 0, fiveHundreds: 0, leaks: 0, rateLimited: 0 };
  const notes: string[] = [];
  for (let round = 0; round < o.rounds; round++) await runHttpAbuses(port, tokens, counts, notes);
  if (counts.rateLimited === 0) notes.push("no request was refused with 429");
  const ws: WsAbuseCounts = { checks: 0, wrong: 0, upgrades429: 0, notes };
  const { watcher, watcherOpen, published } = await wsRounds(env, site, stream, port, tokens, o, ws);
  o.log(
    `http abuse: ${counts.requests} requests, ${counts.wrong} with an unexpected status; ${ws.checks} WebSocket abuses, ${ws.wrong} unexpected`,
  );
  const crashed = run.child.exitCode !== null || run.child.signalCode !== null;
  const metrics = crashed ? "" : await scrapeMetrics(port);
  const code = crashed ? null : await finishRun(env, run, site, stream, rss);
  watcher.close();
  rss.close();
  const acked = await env.lastSeq(stream);
  const scores = reconcileSequences(sequenceRange(acked), await env.sequences(db, "ml_scores"));
  const row: Omit<ChaosRow, "verdict"> = {
    scenario: "HTTP/WS abuse",
    load: `${counts.requests} hostile requests, ${ws.checks} WebSocket abuses, ${o.records + published} records`,
    cycles: o.rounds,
    lost: scores.lost,
    duplicated: scores.duplicated,
    crashes: crashed || code !== 0 ? 1 : 0,
    recoveryMs: null,
    peakRssBytes: rss.peak,
    mismatches: {
      "unexpected statuses": counts.wrong,
      "5xx or no answer": counts.fiveHundreds,
      "files outside the assets": counts.leaks,
      "no 429 in a burst": counts.rateLimited === 0 ? 1 : 0,
      ...wsMismatches(ws, watcher, watcherOpen, metrics, o.rounds),
    },
    figures: {
      requests: counts.requests,
      "429s": counts.rateLimited,
      "WS abuses": ws.checks,
      "WS upgrade 429s": ws.upgrades429,
      "WS watcher messages": watcher.data,
      "acked records": acked,
    },
    notes,
  };
  return { ...row, verdict: verdictOf(row) };
}
