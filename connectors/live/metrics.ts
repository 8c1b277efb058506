/**
 * The metrics of linewatch on prom-client (https://github.com/siimon/prom-client): each
 * {@link MetricsRegistry} owns its own prom-client `Registry` (never the global one, so two runs or
 * two tests in one process do not share series), prom-client stores the values and renders the
 * Prometheus text format 0.0.4, and `collectDefaultMetrics` adds what an operator reads first:
 * event-loop lag (`nodejs_eventloop_lag_*`), GC pauses (`nodejs_gc_duration_seconds`), heap
 * (`nodejs_heap_*`), CPU, resident memory and open file descriptors (`process_*`).
 *
 * What this file adds to prom-client: registration by definition (asking twice for the same name
 * and shape returns the same metric, so modules each ask for what they update; another shape is a
 * ConfigError), the checks prom-client leaves out (counters end in `_total`, buckets strictly
 * increasing, a bound on label sets per metric), and cached label children.
 *
 * Hot-path use: resolve the labelled child once (`const c = recordsIn.labels({ source: "nats" })`)
 * and call `c.inc(n)` per batch, never per record. prom-client's own `labels()` returns a closure
 * that still hashes and validates the label object on every `inc`; the child here is created once
 * per label set and kept, so the lookup by label values happens once (bench/metrics-bench.ts
 * measures both). Values sampled from elsewhere (queue depths, pool utilisation, counts kept in
 * plain fields) are set by a `collect` callback that runs at scrape time.
 *
 * The names linewatch uses are listed in {@link METRIC} and created by {@link defineEngineMetrics}
 * (what the run wiring updates) and by the live server (WebSocket / HTTP series, see
 * `ws-server.ts` and `http-api.ts`).
 */
import {
  Counter as PromCounter,
  Gauge as PromGauge,
  Histogram as PromHistogram,
  Registry as PromRegistry,
  collectDefaultMetrics,
} from "prom-client";
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
  /** The sum of the increments through this child (what `catchUp` compares a plain total with). */
  readonly value: number;
}

export interface GaugeChild {
  set(value: number): void;
  inc(amount?: number): void;
  dec(amount?: number): void;
}

export interface HistogramChild {
  observe(value: number): void;
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
export const PROMETHEUS_CONTENT_TYPE: string = PromRegistry.PROMETHEUS_CONTENT_TYPE;

/** The metric names of linewatch (prefix `linewatch_`). */
export const METRIC = Object.freeze({
  // engine (registered by defineEngineMetrics, updated by the run wiring)
  recordsIn: "linewatch_records_in_total",
  recordsOut: "linewatch_records_out_total",
  deadLetter: "linewatch_dead_letter_total",
  natsShed: "linewatch_nats_shed_total",
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
  wsProtocolCloses: "linewatch_ws_protocol_closes_total",
  // HTTP and auth (registered by the HTTP API)
  httpRequests: "linewatch_http_requests_total",
  httpDuration: "linewatch_http_request_duration_seconds",
  authFailures: "linewatch_auth_failures_total",
  rateLimited: "linewatch_rate_limited_total",
  uwsNative: "linewatch_uws_native",
  // process and Node.js runtime (prom-client's collectDefaultMetrics, registered by the live server)
  processResident: "process_resident_memory_bytes",
  processCpu: "process_cpu_seconds_total",
  processStart: "process_start_time_seconds",
  eventLoopLag: "nodejs_eventloop_lag_seconds",
  gcDuration: "nodejs_gc_duration_seconds",
  heapUsed: "nodejs_heap_size_used_bytes",
} as const);

type Kind = "counter" | "gauge" | "histogram";

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** The checks prom-client leaves out or answers with a plain Error; a bad definition is a ConfigError. */
function checkDefinition(kind: Kind, d: MetricDefinition<string>): void {
  const { name } = d;
  const labelNames = d.labelNames ?? [];
  if (!NAME_RE.test(name)) throw new ConfigError("metric name", `"${name}" is not a valid Prometheus metric name`);
  if (kind === "counter" && !name.endsWith("_total")) throw new ConfigError("metric name", `counter "${name}" must end in _total`);
  for (const l of labelNames) {
    if (!LABEL_RE.test(l) || l.startsWith("__")) throw new ConfigError("metric label", `"${l}" of ${name} is not a valid label name`);
    if (kind === "histogram" && l === "le") throw new ConfigError("metric label", `histogram ${name} cannot have a label "le"`);
  }
  if (new Set(labelNames).size !== labelNames.length) throw new ConfigError("metric label", `${name} repeats a label name`);
}

/** One metric: its prom-client object and the label children handed out so far. */
abstract class Family<L extends string, C> {
  private readonly children = new Map<string, C>();
  readonly labelNames: readonly L[];

  constructor(
    readonly kind: Kind,
    readonly name: string,
    readonly help: string,
    labelNames: readonly L[],
    private readonly seriesMax: number,
  ) {
    this.labelNames = Object.freeze([...labelNames]);
  }

  /** The child for one label set (created on first use; keep it for hot paths). */
  labels(values: LabelValues<L>): C {
    const key = this.labelNames.length === 0 ? "" : this.labelNames.map((l) => String(values[l])).join("\u0000");
    const known = this.children.get(key);
    if (known !== undefined) return known;
    if (this.children.size >= this.seriesMax)
      throw new CapacityError(
        "seriesPerMetricMax",
        this.seriesMax,
        `${this.name} has too many label sets; a label is fed from unbounded data`,
      );
    // Label names in their declared order, so the rendered series read the same on every scrape.
    const ordered: Record<string, string> = {};
    for (const l of this.labelNames) {
      if (values[l] === undefined) throw new ConfigError("metric label", `${this.name} needs label "${l}"`);
      ordered[l] = String(values[l]);
    }
    const child = this.bind(ordered);
    this.children.set(key, child);
    return child;
  }

  sameShape(kind: Kind, help: string, labelNames: readonly string[]): boolean {
    return (
      kind === this.kind &&
      help === this.help &&
      labelNames.length === this.labelNames.length &&
      labelNames.every((l, i) => l === this.labelNames[i])
    );
  }

  /** A child writing to the prom-client series of `labels` (label names in declared order). */
  protected abstract bind(labels: Record<string, string>): C;
}

class CounterHandle implements CounterChild {
  value = 0;
  constructor(private readonly add: (amount: number) => void) {}
  inc(amount = 1): void {
    // A counter only goes up; a negative or NaN increment is a caller's bug.
    if (!(amount >= 0)) throw new RangeError(`counter increment must be ≥ 0, got ${amount}`);
    this.value += amount;
    this.add(amount);
  }
}

export class Counter<L extends string = never> extends Family<L, CounterChild> {
  constructor(
    private readonly prom: PromCounter<string>,
    d: MetricDefinition<L>,
    seriesMax: number,
  ) {
    super("counter", d.name, d.help, d.labelNames ?? [], seriesMax);
  }
  /** Unlabelled increment (a metric without labels). */
  inc(amount = 1): void {
    this.labels({} as LabelValues<L>).inc(amount);
  }
  protected bind(labels: Record<string, string>): CounterChild {
    const prom = this.prom;
    return new CounterHandle((amount) => prom.inc(labels, amount));
  }
}

export class Gauge<L extends string = never> extends Family<L, GaugeChild> {
  constructor(
    private readonly prom: PromGauge<string>,
    d: GaugeDefinition<L>,
    seriesMax: number,
  ) {
    super("gauge", d.name, d.help, d.labelNames ?? [], seriesMax);
  }
  set(value: number): void {
    this.labels({} as LabelValues<L>).set(value);
  }
  protected bind(labels: Record<string, string>): GaugeChild {
    const prom = this.prom;
    return {
      set: (value) => prom.set(labels, value),
      inc: (amount = 1) => prom.inc(labels, amount),
      dec: (amount = 1) => prom.dec(labels, amount),
    };
  }
}

export class Histogram<L extends string = never> extends Family<L, HistogramChild> {
  readonly buckets: readonly number[];
  constructor(
    private readonly prom: PromHistogram<string>,
    d: HistogramDefinition<L>,
    seriesMax: number,
  ) {
    super("histogram", d.name, d.help, d.labelNames ?? [], seriesMax);
    this.buckets = Object.freeze([...d.buckets]);
  }
  observe(value: number): void {
    this.labels({} as LabelValues<L>).observe(value);
  }
  protected bind(labels: Record<string, string>): HistogramChild {
    const prom = this.prom;
    // prom-client throws on a value that is not finite; a NaN latency means no measurement, not a crash.
    return {
      observe: (value) => {
        if (Number.isFinite(value)) prom.observe(labels, value);
      },
    };
  }
}

type AnyFamily = Counter<string> | Gauge<string> | Histogram<string>;

/**
 * The metrics of one run, in a prom-client Registry of their own. Registering a name twice with
 * the same type, help and labels returns the existing metric (so modules can each ask for what
 * they update); with a different shape it throws ConfigError.
 */
export class MetricsRegistry {
  private readonly prom = new PromRegistry();
  private readonly families = new Map<string, AnyFamily>();
  private readonly collectors: Array<() => void> = [];
  private defaultsCollected = false;

  constructor(readonly seriesPerMetricMax = DEFAULT_SERIES_PER_METRIC_MAX) {
    if (!Number.isInteger(seriesPerMetricMax) || seriesPerMetricMax < 1)
      throw new ConfigError("seriesPerMetricMax", `must be a positive integer, got ${seriesPerMetricMax}`);
  }

  counter<L extends string = never>(d: MetricDefinition<L>): Counter<L> {
    return this.register("counter", d, () => {
      const prom = new PromCounter({ name: d.name, help: d.help, labelNames: [...(d.labelNames ?? [])], registers: [this.prom] });
      return new Counter<L>(prom, d, this.seriesPerMetricMax);
    });
  }

  gauge<L extends string = never>(d: GaugeDefinition<L>): Gauge<L> {
    return this.register("gauge", d, () => {
      let made: Gauge<L> | undefined;
      const collect = d.collect;
      const prom = new PromGauge({
        name: d.name,
        help: d.help,
        labelNames: [...(d.labelNames ?? [])],
        registers: [this.prom],
        ...(collect === undefined
          ? {}
          : {
              collect: () => {
                if (made !== undefined) collect(made);
              },
            }),
      });
      made = new Gauge<L>(prom, d, this.seriesPerMetricMax);
      return made;
    });
  }

  histogram<L extends string = never>(d: HistogramDefinition<L>): Histogram<L> {
    const b = d.buckets;
    if (b.length === 0 || !b.every((x, i) => Number.isFinite(x) && (i === 0 || x > b[i - 1])))
      throw new ConfigError("histogram buckets", `${d.name}: buckets must be finite and strictly increasing, got [${b.join(", ")}]`);
    const h = this.register("histogram", d, () => {
      const prom = new PromHistogram({
        name: d.name,
        help: d.help,
        labelNames: [...(d.labelNames ?? [])],
        buckets: [...b],
        registers: [this.prom],
      });
      return new Histogram<L>(prom, d, this.seriesPerMetricMax);
    });
    if (h.buckets.length !== b.length || h.buckets.some((x, i) => x !== b[i]))
      throw new ConfigError("metric", `${d.name} is already registered with other buckets`);
    return h;
  }

  /** A callback run at every scrape before rendering (sample several gauges or counters at once). */
  onCollect(fn: () => void): void {
    this.collectors.push(fn);
  }

  /**
   * Adds prom-client's default metrics (process CPU, memory, file descriptors; Node.js event-loop
   * lag, GC, heap, handles) to this registry. Once per registry: later calls do nothing.
   */
  collectDefaultMetrics(): void {
    if (this.defaultsCollected) return;
    this.defaultsCollected = true;
    collectDefaultMetrics({ register: this.prom });
  }

  /** All metrics in the Prometheus text format 0.0.4 (content type {@link PROMETHEUS_CONTENT_TYPE}). */
  async render(): Promise<string> {
    for (const fn of this.collectors) fn();
    if (this.families.size === 0 && !this.defaultsCollected) return "";
    return this.prom.metrics();
  }

  private register<F>(kind: Kind, d: MetricDefinition<string>, make: () => F): F {
    const known = this.families.get(d.name);
    if (known !== undefined) {
      if (!known.sameShape(kind, d.help, d.labelNames ?? []))
        throw new ConfigError("metric", `${d.name} is already registered as a ${known.kind} with other help or labels`);
      // Same kind, help and label names: the family was made by the same constructor.
      return known as unknown as F;
    }
    checkDefinition(kind, d);
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
  /** Core NATS messages shed (the engine's bounded input queue full), by source: at-most-once input, counted, never silent. */
  natsShed: Counter<"source">;
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
    natsShed: registry.counter({
      name: METRIC.natsShed,
      help: "Core NATS messages shed because the engine's bounded input queue was full (at-most-once: the publisher is not slowed).",
      labelNames: ["source"],
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
