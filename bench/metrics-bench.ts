/**
 * What the metrics cost (`node dist/bench/metrics-bench.js [--quick]`): a scrape of the real metric
 * set (a live server's registry: the engine's series with the label sets of a running job, the
 * WebSocket, HTTP and auth series, prom-client's default process and Node.js metrics), rendered in
 * process and fetched over HTTP; and an increment, by how it is called: through a cached label
 * child (what the run wiring does, once per batch), through a label lookup on every call, through
 * prom-client directly, beside a plain field add (what the engine's own per-record counts are).
 * Reports on stdout; figures are informational, nothing fails.
 */
import { pathToFileURL } from "node:url";
import { Counter as PromCounter, Registry as PromRegistry } from "prom-client";
import { defineEngineMetrics, MetricsRegistry, startLiveServer } from "../connectors/live/mod.js";
import { createLogger } from "../engine/core/mod.js";
import { benchMachine, machineLine } from "./bench-kit.js";

export interface MetricsBenchReport {
  machine: string;
  scrape: {
    series: number;
    bytes: number;
    renderUs: { mean: number; p50: number; p99: number };
    httpUs: { mean: number; p50: number };
    /** The engine's series alone (no default, WebSocket or HTTP series): what linewatch's own metrics cost. */
    engineOnlyUs: { mean: number; p50: number };
  };
  /** ns per call, by how the increment is made. */
  incNs: Array<{ how: string; ns: number }>;
}

/** Label sets a running sensor job with ClickHouse, the live server and four analyses has. */
function fillEngineSeries(registry: MetricsRegistry): void {
  const m = defineEngineMetrics(registry);
  m.recordsIn.labels({ source: "nats" }).inc(1_000_000);
  for (const analysis of ["rolling", "spc", "iforest", "prediction"]) m.recordsOut.labels({ analysis }).inc(1_000_000);
  for (const reason of ["not_json", "wrong_type", "not_finite", "missing_field", "too_large", "unknown_key"])
    m.deadLetter.labels({ reason }).inc(3);
  m.lateRecords.labels({ source: "nats" }).inc(12);
  for (const queue of ["reorder", "tasks_in_flight", "sink_clickhouse", "spill_bytes"]) m.queueDepth.labels({ queue }).set(17);
  m.poolUtilisation.set(0.4);
  m.poolWorkers.set(2);
  m.sinkRows.labels({ sink: "clickhouse" }).inc(2_000_000);
  for (const kind of ["retry", "spilled"]) m.sinkErrors.labels({ sink: "clickhouse", kind }).inc(1);
  const lat = m.sinkLatency.labels({ sink: "clickhouse" });
  for (let i = 0; i < 1000; i++) lat.observe(0.001 + (i % 50) / 1000);
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** µs per `registry.render()`, sorted ascending. */
async function renderTimes(registry: MetricsRegistry, scrapes: number): Promise<number[]> {
  for (let i = 0; i < 50; i++) await registry.render(); // warm-up
  const us: number[] = [];
  for (let i = 0; i < scrapes; i++) {
    const t0 = performance.now();
    await registry.render();
    us.push((performance.now() - t0) * 1000);
  }
  return us.sort((a, b) => a - b);
}

const mean = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

async function measureScrape(scrapes: number): Promise<MetricsBenchReport["scrape"]> {
  const engineOnly = new MetricsRegistry();
  fillEngineSeries(engineOnly);
  const engineUs = await renderTimes(engineOnly, scrapes);
  const registry = new MetricsRegistry();
  fillEngineSeries(registry);
  const server = await startLiveServer({ host: "127.0.0.1", port: 0, metrics: registry, log: createLogger({ level: "silent" }) });
  try {
    // A few requests so the HTTP and auth series have label sets, as on a server in use.
    for (const path of ["/healthz", "/api/alerts", "/nowhere", "/metrics"]) await (await fetch(`${server.url}${path}`)).arrayBuffer();
    const render = await renderTimes(registry, scrapes);
    const text = await registry.render();
    const http: number[] = [];
    for (let i = 0; i < Math.max(20, scrapes / 10); i++) {
      const t0 = performance.now();
      await (await fetch(`${server.url}/metrics`)).text();
      http.push((performance.now() - t0) * 1000);
    }
    http.sort((a, b) => a - b);
    return {
      series: text.split("\n").filter((l) => l !== "" && !l.startsWith("#")).length,
      bytes: Buffer.byteLength(text),
      renderUs: { mean: mean(render), p50: quantile(render, 0.5), p99: quantile(render, 0.99) },
      httpUs: { mean: mean(http), p50: quantile(http, 0.5) },
      engineOnlyUs: { mean: mean(engineUs), p50: quantile(engineUs, 0.5) },
    };
  } finally {
    await server.close();
  }
}

/** ns per call of `step`, the best of `rounds` runs of `n` calls (the least disturbed by other work). */
function nsPerCall(n: number, rounds: number, step: (i: number) => void): number {
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) step(i);
    best = Math.min(best, ((performance.now() - t0) * 1e6) / n);
  }
  return best;
}

function measureIncrements(n: number): MetricsBenchReport["incNs"] {
  const registry = new MetricsRegistry();
  const m = defineEngineMetrics(registry);
  const bound = m.recordsIn.labels({ source: "nats" });
  const boundTwo = m.sinkErrors.labels({ sink: "clickhouse", kind: "retry" });
  const latency = m.sinkLatency.labels({ sink: "clickhouse" });
  const prom = new PromCounter({ name: "bench_prom_total", help: "x", labelNames: ["source"], registers: [new PromRegistry()] });
  const promChild = prom.labels({ source: "nats" });
  const plain = { recordsIn: 0 };
  const rounds = 5;
  return [
    { how: "plain field add (engine's own per-record count)", ns: nsPerCall(n, rounds, (i) => (plain.recordsIn += i & 1)) },
    { how: "cached child .inc (1 label) — per batch", ns: nsPerCall(n, rounds, (i) => bound.inc(i & 1)) },
    { how: "cached child .inc (2 labels)", ns: nsPerCall(n, rounds, (i) => boundTwo.inc(i & 1)) },
    {
      how: "labels({…}).inc: lookup every call (1 label)",
      ns: nsPerCall(n, rounds, (i) => m.recordsIn.labels({ source: "nats" }).inc(i & 1)),
    },
    { how: "prom-client child (bound closure) .inc", ns: nsPerCall(n, rounds, (i) => promChild.inc(i & 1)) },
    { how: "prom-client .labels({…}).inc every call", ns: nsPerCall(n, rounds, (i) => prom.labels({ source: "nats" }).inc(i & 1)) },
    { how: "cached histogram child .observe (14 buckets)", ns: nsPerCall(n, rounds, (i) => latency.observe((i & 63) / 1000)) },
  ];
}

export async function runMetricsBench(quick: boolean): Promise<MetricsBenchReport> {
  const machine = machineLine(benchMachine());
  const incNs = measureIncrements(quick ? 200_000 : 2_000_000);
  const scrape = await measureScrape(quick ? 100 : 2000);
  return { machine, scrape, incNs };
}

export function formatMetricsBenchReport(r: MetricsBenchReport): string {
  const s = r.scrape;
  const width = Math.max(...r.incNs.map((x) => x.how.length));
  return [
    "linewatch metrics bench (prom-client registry of a live server)",
    r.machine,
    "",
    `scrape: ${s.series} samples, ${(s.bytes / 1024).toFixed(1)} KiB of text`,
    `  render in process   mean ${s.renderUs.mean.toFixed(0)} µs   p50 ${s.renderUs.p50.toFixed(0)} µs   p99 ${s.renderUs.p99.toFixed(0)} µs`,
    `  GET /metrics (HTTP) mean ${s.httpUs.mean.toFixed(0)} µs   p50 ${s.httpUs.p50.toFixed(0)} µs`,
    `  engine series alone (no default, WebSocket, HTTP series): render mean ${s.engineOnlyUs.mean.toFixed(0)} µs   p50 ${s.engineOnlyUs.p50.toFixed(0)} µs`,
    "",
    "increment, ns per call:",
    ...r.incNs.map((x) => `  ${x.how.padEnd(width)}  ${x.ns.toFixed(1).padStart(7)} ns`),
    "",
    "per batch of 1024 records, a cached child adds " +
      `${(r.incNs[1].ns / 1024).toFixed(3)} ns per record; a per-record inc would add ${r.incNs[1].ns.toFixed(0)} ns per record.`,
  ].join("\n");
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const report = await runMetricsBench(process.argv.includes("--quick"));
  process.stdout.write(`${formatMetricsBenchReport(report)}\n`);
}
