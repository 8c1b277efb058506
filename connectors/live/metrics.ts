/**
 * A small metrics registry — counters, gauges and fixed-bucket histograms with labels — rendered
 * in the Prometheus text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/). Dependency-free on purpose:
 * prom-client's registry is global by default and its rendering asynchronous; linewatch needs one
 * synchronous `render()` for `GET /metrics`, and cheap label children on the hot path.
 *
 * Hot-path use: resolve the labelled child once (`const c = recordsIn.labels({ source: "nats" })`)
 * and call `c.inc(n)` per batch — a property add, no map lookup. Values sampled from elsewhere
 * (queue depths, pool utilisation) are set by a `collect` callback that runs at scrape time.
 *
 * The names linewatch uses are listed in {@link METRIC} and created by {@link defineEngineMetrics}
 * (what the run wiring updates) and by the live server (WebSocket / HTTP series, see
 * `ws-server.ts` and `http-api.ts`).
 *
 * Format rules kept here: a `# HELP` and a `# TYPE` line per family, then its samples together;
 * label values escape `\`, `"` and newline, HELP text escapes `\` and newline; values are Go-style
 * floats (`+Inf`, `-Inf`, `NaN`); histogram buckets are cumulative, ascending, end with
 * `le="+Inf"` equal to `_count`, and come with `_sum`; the output ends with a newline.
 */
import { CapacityError, ConfigError } from "../../engine/core/mod.js";

export type LabelValues<L extends string> = { readonly [K in L]: string | number };

export interface MetricDefinition<L extends string> {
  /** `[a-zA-Z_:][a-zA-Z0-9_:]*`; counters end in `_total`. */
  name: string;
  help: string;
  labelNames?: readonly L[];
}

export interface CounterChild {
  inc(amount?: number): void;
  readonly value: number;
}

export interface GaugeChild {
  set(value: number): void;
  inc(amount?: number): void;
  dec(amount?: number): void;
  readonly value: number;
}

export interface HistogramChild {
  observe(value: number): void;
  readonly count: number;
  readonly sum: number;
}

export interface GaugeDefinition<L extends string> extends MetricDefinition<L> {
  /** Runs at every scrape before rendering: set the gauge from wherever the value lives. */
  collect?: (gauge: Gauge<L>) => void;
}

export interface HistogramDefinition<L extends string> extends MetricDefinition<L> {
  /** Upper bounds, strictly increasing and finite; `+Inf` is added. */
  buckets: readonly number[];
}

/** Distinct label sets per metric; past it `labels()` throws (a label fed from unbounded data is a bug). */
export const DEFAULT_SERIES_PER_METRIC_MAX = 10_000;

/** Latency buckets in seconds, 0.5 ms … 10 s (sink inserts, HTTP requests). */
export const LATENCY_SECONDS_BUCKETS: readonly number[] = Object.freeze([
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);

/** The content type of {@link MetricsRegistry.render}'s output. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** The metric names of linewatch (prefix `linewatch_`). */
export const METRIC = Object.freeze({
  // engine (registered by defineEngineMetrics, updated by the run wiring)
  recordsIn: "linewatch_records_in_total",
  recordsOut: "linewatch_records_out_total",
  deadLetter: "linewatch_dead_letter_total",
  lateRecords: "linewatch_late_records_total",
  queueDepth: "linewatch_queue_depth",
  poolUtilisation: "linewatch_pool_utilisation_ratio",
  poolWorkers: "linewatch_pool_workers",
  sinkRows: "linewatch_sink_rows_total",
  sinkErrors: "linewatch_sink_errors_total",
  sinkLatency: "linewatch_sink_latency_seconds",
  // WebSocket (registered by WsHub)
  wsConnections: "linewatch_ws_connections",
  wsSubscriptions: "linewatch_ws_subscriptions",
  wsTopics: "linewatch_ws_topics",
  wsPublished: "linewatch_ws_published_total",
  wsDelivered: "linewatch_ws_messages_sent_total",
  wsDropped: "linewatch_ws_dropped_total",
  wsSlowSubscribers: "linewatch_ws_slow_subscribers_total",
  wsRefused: "linewatch_ws_subscribe_refused_total",
  wsEncodeErrors: "linewatch_ws_encode_errors_total",
  // HTTP and auth (registered by the HTTP API)
  httpRequests: "linewatch_http_requests_total",
  httpDuration: "linewatch_http_request_duration_seconds",
  authFailures: "linewatch_auth_failures_total",
  rateLimited: "linewatch_rate_limited_total",
  uwsNative: "linewatch_uws_native",
  // process
  processResident: "process_resident_memory_bytes",
  processCpu: "process_cpu_seconds_total",
  processStart: "process_start_time_seconds",
} as const);

type Kind = "counter" | "gauge" | "histogram";

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

abstract class Family<L extends string, C> {
  protected readonly children = new Map<string, { labels: string; child: C }>();
  readonly labelNames: readonly L[];

  constructor(
    readonly kind: Kind,
    readonly name: string,
    readonly help: string,
    labelNames: readonly L[],
    private readonly seriesMax: number,
  ) {
    if (!NAME_RE.test(name)) throw new ConfigError("metric name", `"${name}" is not a valid Prometheus metric name`);
    if (kind === "counter" && !name.endsWith("_total")) throw new ConfigError("metric name", `counter "${name}" must end in _total`);
    for (const l of labelNames) {
      if (!LABEL_RE.test(l) || l.startsWith("__")) throw new ConfigError("metric label", `"${l}" of ${name} is not a valid label name`);
      if (kind === "histogram" && l === "le") throw new ConfigError("metric label", `histogram ${name} cannot have a label "le"`);
    }
    if (new Set(labelNames).size !== labelNames.length) throw new ConfigError("metric label", `${name} repeats a label name`);
    this.labelNames = Object.freeze([...labelNames]);
  }

  /** The child for one label set (created on first use; keep it for hot paths). */
  labels(values: LabelValues<L>): C {
    const key = this.labelNames.length === 0 ? "" : this.labelNames.map((l) => String(values[l])).join("\u0000");
    const known = this.children.get(key);
    if (known !== undefined) return known.child;
    if (this.children.size >= this.seriesMax)
      throw new CapacityError(
        "seriesPerMetricMax",
        this.seriesMax,
        `${this.name} has too many label sets; a label is fed from unbounded data`,
      );
    for (const l of this.labelNames) if (values[l] === undefined) throw new ConfigError("metric label", `${this.name} needs label "${l}"`);
    const labels = this.labelNames.map((l) => `${l}="${escapeLabelValue(String(values[l]))}"`).join(",");
    const child = this.newChild();
    this.children.set(key, { labels, child });
    return child;
  }

  /** Drops every label set (for gauges re-filled by `collect`, so vanished keys disappear). */
  reset(): void {
    this.children.clear();
  }

  sameShape(kind: Kind, help: string, labelNames: readonly string[]): boolean {
    return (
      kind === this.kind &&
      help === this.help &&
      labelNames.length === this.labelNames.length &&
      labelNames.every((l, i) => l === this.labelNames[i])
    );
  }

  protected abstract newChild(): C;
  abstract renderInto(out: string[]): void;
  collect(): void {}

  protected header(out: string[]): void {
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.kind}`);
  }
}

class CounterValue implements CounterChild {
  value = 0;
  inc(amount = 1): void {
    // A counter only goes up; a negative or NaN increment is a caller's bug.
    if (!(amount >= 0)) throw new RangeError(`counter increment must be ≥ 0, got ${amount}`);
    this.value += amount;
  }
}

class GaugeValue implements GaugeChild {
  value = 0;
  set(value: number): void {
    this.value = value;
  }
  inc(amount = 1): void {
    this.value += amount;
  }
  dec(amount = 1): void {
    this.value -= amount;
  }
}

class HistogramValue implements HistogramChild {
  readonly counts: Float64Array;
  count = 0;
  sum = 0;
  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }
  observe(value: number): void {
    if (Number.isNaN(value)) return;
    this.count++;
    this.sum += value;
    const b = this.bounds;
    for (let i = 0; i < b.length; i++) {
      if (value <= b[i]) {
        this.counts[i]++;
        return;
      }
    }
  }
}

export class Counter<L extends string = never> extends Family<L, CounterChild> {
  constructor(d: MetricDefinition<L>, seriesMax: number) {
    super("counter", d.name, d.help, d.labelNames ?? [], seriesMax);
  }
  /** Unlabelled increment (a metric without labels). */
  inc(amount = 1): void {
    this.labels({} as LabelValues<L>).inc(amount);
  }
  protected newChild(): CounterChild {
    return new CounterValue();
  }
  renderInto(out: string[]): void {
    this.header(out);
    if (this.labelNames.length === 0 && this.children.size === 0) out.push(`${this.name} 0`);
    for (const { labels, child } of this.children.values()) out.push(`${this.name}${braces(labels)} ${formatValue(child.value)}`);
  }
}

export class Gauge<L extends string = never> extends Family<L, GaugeChild> {
  private readonly collector?: (gauge: Gauge<L>) => void;
  constructor(d: GaugeDefinition<L>, seriesMax: number) {
    super("gauge", d.name, d.help, d.labelNames ?? [], seriesMax);
    if (d.collect !== undefined) this.collector = d.collect;
  }
  set(value: number): void {
    this.labels({} as LabelValues<L>).set(value);
  }
  override collect(): void {
    this.collector?.(this);
  }
  protected newChild(): GaugeChild {
    return new GaugeValue();
  }
  renderInto(out: string[]): void {
    this.header(out);
    if (this.labelNames.length === 0 && this.children.size === 0) out.push(`${this.name} 0`);
    for (const { labels, child } of this.children.values()) out.push(`${this.name}${braces(labels)} ${formatValue(child.value)}`);
  }
}

export class Histogram<L extends string = never> extends Family<L, HistogramChild> {
  readonly buckets: readonly number[];
  private readonly le: readonly string[];
  constructor(d: HistogramDefinition<L>, seriesMax: number) {
    super("histogram", d.name, d.help, d.labelNames ?? [], seriesMax);
    const b = d.buckets;
    if (b.length === 0 || !b.every((x, i) => Number.isFinite(x) && (i === 0 || x > b[i - 1]))) {
      throw new ConfigError("histogram buckets", `${d.name}: buckets must be finite and strictly increasing, got [${b.join(", ")}]`);
    }
    this.buckets = Object.freeze([...b]);
    this.le = this.buckets.map(formatValue);
  }
  observe(value: number): void {
    this.labels({} as LabelValues<L>).observe(value);
  }
  protected newChild(): HistogramChild {
    return new HistogramValue(this.buckets);
  }
  renderInto(out: string[]): void {
    this.header(out);
    const children =
      this.labelNames.length === 0 && this.children.size === 0
        ? [{ labels: "", child: new HistogramValue(this.buckets) }]
        : [...this.children.values()];
    for (const { labels, child } of children) {
      const h = child as HistogramValue;
      const sep = labels === "" ? "" : ",";
      let cumulative = 0;
      for (let i = 0; i < this.le.length; i++) {
        cumulative += h.counts[i];
        out.push(`${this.name}_bucket{${labels}${sep}le="${this.le[i]}"} ${formatValue(cumulative)}`);
      }
      out.push(`${this.name}_bucket{${labels}${sep}le="+Inf"} ${formatValue(h.count)}`);
      out.push(`${this.name}_sum${braces(labels)} ${formatValue(h.sum)}`);
      out.push(`${this.name}_count${braces(labels)} ${formatValue(h.count)}`);
    }
  }
}

type AnyFamily = Counter<string> | Gauge<string> | Histogram<string>;

/**
 * The metrics of one process. Registering a name twice with the same type, help and labels
 * returns the existing metric (so modules can each ask for what they update); with a different
 * shape it throws ConfigError.
 */
export class MetricsRegistry {
  private readonly families = new Map<string, AnyFamily>();
  private readonly collectors: Array<() => void> = [];

  constructor(readonly seriesPerMetricMax = DEFAULT_SERIES_PER_METRIC_MAX) {
    if (!Number.isInteger(seriesPerMetricMax) || seriesPerMetricMax < 1)
      throw new ConfigError("seriesPerMetricMax", `must be a positive integer, got ${seriesPerMetricMax}`);
  }

  counter<L extends string = never>(d: MetricDefinition<L>): Counter<L> {
    return this.register("counter", d, () => new Counter<L>(d, this.seriesPerMetricMax));
  }

  gauge<L extends string = never>(d: GaugeDefinition<L>): Gauge<L> {
    return this.register("gauge", d, () => new Gauge<L>(d, this.seriesPerMetricMax));
  }

  histogram<L extends string = never>(d: HistogramDefinition<L>): Histogram<L> {
    const h = this.register("histogram", d, () => new Histogram<L>(d, this.seriesPerMetricMax));
    if (h.buckets.length !== d.buckets.length || h.buckets.some((b, i) => b !== d.buckets[i]))
      throw new ConfigError("metric", `${d.name} is already registered with other buckets`);
    return h;
  }

  /** A callback run at every scrape before rendering (sample several gauges at once). */
  onCollect(fn: () => void): void {
    this.collectors.push(fn);
  }

  /** The registered metric of that name, if any. */
  get(name: string): Counter<string> | Gauge<string> | Histogram<string> | undefined {
    return this.families.get(name);
  }

  /** All metrics in the Prometheus text format 0.0.4 (content type {@link PROMETHEUS_CONTENT_TYPE}). */
  render(): string {
    for (const fn of this.collectors) fn();
    for (const f of this.families.values()) f.collect();
    const out: string[] = [];
    for (const f of this.families.values()) f.renderInto(out);
    return out.length === 0 ? "" : `${out.join("\n")}\n`;
  }

  private register<F>(kind: Kind, d: MetricDefinition<string>, make: () => F): F {
    const known = this.families.get(d.name);
    if (known !== undefined) {
      if (!known.sameShape(kind, d.help, d.labelNames ?? []))
        throw new ConfigError("metric", `${d.name} is already registered as a ${known.kind} with other help or labels`);
      // Same kind, help and label names: the family was made by the same constructor.
      return known as unknown as F;
    }
    const f = make();
    this.families.set(d.name, f as unknown as AnyFamily);
    return f;
  }
}

/** The series the run wiring updates: what came in, what went out, what was lost and why. */
export interface EngineMetrics {
  /** Records decoded and accepted, by source (`nats`, `simulator`, `file`). */
  recordsIn: Counter<"source">;
  /** Records scored, by analysis (`rolling`, `spc`, `iforest`, `serial`). */
  recordsOut: Counter<"analysis">;
  /** Messages or readings sent to the dead-letter output, by DecodeReason (or sink reason). */
  deadLetter: Counter<"reason">;
  /** Records behind the watermark (routed to the late output), by source. */
  lateRecords: Counter<"source">;
  /** Items waiting in a bounded queue, by queue (`pool`, `sink_clickhouse`, `spill`, …). */
  queueDepth: Gauge<"queue">;
  /** Share of the pool's thread time spent in kernels over the last interval, 0–1. */
  poolUtilisation: Gauge;
  poolWorkers: Gauge;
  /** Rows written by a sink, by sink (`clickhouse`, `nats`, `file`). */
  sinkRows: Counter<"sink">;
  /** Failed sink attempts, by sink and kind (`retry`, `spilled`, `bad_row`, `fatal`). */
  sinkErrors: Counter<"sink" | "kind">;
  /** Time from handing a batch to a sink until it is durable, by sink. */
  sinkLatency: Histogram<"sink">;
}

/** Registers (or returns, when already registered) the engine's series on `registry`. */
export function defineEngineMetrics(registry: MetricsRegistry): EngineMetrics {
  return {
    recordsIn: registry.counter({ name: METRIC.recordsIn, help: "Records accepted from a source.", labelNames: ["source"] }),
    recordsOut: registry.counter({ name: METRIC.recordsOut, help: "Records scored by an analysis.", labelNames: ["analysis"] }),
    deadLetter: registry.counter({
      name: METRIC.deadLetter,
      help: "Messages or readings sent to the dead-letter output, by reason.",
      labelNames: ["reason"],
    }),
    lateRecords: registry.counter({
      name: METRIC.lateRecords,
      help: "Records later than the watermark, routed to the late output.",
      labelNames: ["source"],
    }),
    queueDepth: registry.gauge({ name: METRIC.queueDepth, help: "Items waiting in a bounded queue.", labelNames: ["queue"] }),
    poolUtilisation: registry.gauge({ name: METRIC.poolUtilisation, help: "Share of worker-pool thread time spent in kernels (0-1)." }),
    poolWorkers: registry.gauge({ name: METRIC.poolWorkers, help: "Worker threads in the kernel pool." }),
    sinkRows: registry.counter({ name: METRIC.sinkRows, help: "Rows written durably by a sink.", labelNames: ["sink"] }),
    sinkErrors: registry.counter({ name: METRIC.sinkErrors, help: "Failed sink attempts, by kind.", labelNames: ["sink", "kind"] }),
    sinkLatency: registry.histogram({
      name: METRIC.sinkLatency,
      help: "Time from handing a batch to a sink until it is durable.",
      labelNames: ["sink"],
      buckets: LATENCY_SECONDS_BUCKETS,
    }),
  };
}

/** process_resident_memory_bytes, process_cpu_seconds_total, process_start_time_seconds. */
export function defineProcessMetrics(registry: MetricsRegistry): void {
  const startSeconds = (Date.now() - performance.now()) / 1000;
  registry.gauge({
    name: METRIC.processResident,
    help: "Resident memory size in bytes.",
    collect: (g) => g.set(process.memoryUsage.rss()),
  });
  const cpu = registry.counter({ name: METRIC.processCpu, help: "Total user and system CPU time spent in seconds." });
  registry.gauge({
    name: METRIC.processStart,
    help: "Start time of the process since unix epoch in seconds.",
    collect: (g) => g.set(Math.round(startSeconds)),
  });
  let last = 0;
  registry.onCollect(() => {
    const u = process.cpuUsage();
    const now = (u.user + u.system) / 1e6;
    if (now > last) cpu.inc(now - last);
    last = Math.max(last, now);
  });
}

/** Go-style float text: integers without a fraction, `+Inf`, `-Inf`, `NaN`. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function braces(labels: string): string {
  return labels === "" ? "" : `{${labels}}`;
}
