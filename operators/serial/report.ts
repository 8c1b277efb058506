/**
 * An investigation report for one batch: what the serial analysis saw of it — counts per anomaly
 * type and reason, the quarantined serials and why, the entropy figures, the machines and
 * operators, and a timeline — as JSON and as Markdown.
 *
 * Bounded: the timeline merges neighbouring buckets when it grows past TIMELINE_BUCKETS_MAX, and
 * at most ANOMALOUS_EVENTS_MAX anomalous events are listed one by one (all are counted).
 */
import type { RowContext } from "../analysis.js";
import { ANOMALY_MASK, ANOMALY_TYPES, MARK_CONTROL, REASONS, SERIAL_COL as C, type AnomalyType, type Reason } from "./layout.js";
import { decodeSerialPayload, payloadText } from "./payload.js";
import type { QuarantineEntry } from "./quarantine.js";
import { RISK_LEVELS, anomalyTypesOf, reasonsOf, type RiskLevel } from "./score.js";

export const TIMELINE_BUCKETS_MAX = 240;
export const ANOMALOUS_EVENTS_MAX = 1000;
const FIRST_BUCKET_MS = 60_000;

export interface TimelineBucket {
  start: number;
  end: number;
  events: number;
  anomalous: number;
  quarantined: number;
  by_type: Partial<Record<AnomalyType, number>>;
}

export interface ReportedEvent {
  row: number;
  time: number;
  serial_number: string;
  machine_id: string;
  operator_id: string;
  anomaly_types: AnomalyType[];
  reasons: Reason[];
  anomaly_score: number;
  risk_level: RiskLevel;
  quarantine: boolean;
}

export interface Figure {
  min: number | null;
  mean: number | null;
  max: number | null;
  last: number | null;
}

export interface BatchReport {
  batch_number: string;
  gtins: string[];
  generated_at: string;
  events: number;
  batch_close_events: number;
  first_time: number | null;
  last_time: number | null;
  machines: Record<string, number>;
  operators: Record<string, number>;
  anomalous_events: number;
  by_type: Record<AnomalyType, number>;
  by_reason: Partial<Record<Reason, number>>;
  by_risk: Record<RiskLevel, number>;
  entropy: {
    entropy_bits_per_char: Figure;
    min_entropy_mcv: Figure;
    serial_min_entropy_bits: Figure;
    guess_probability: Figure;
    guess_probability_limit: number;
  };
  quarantined: QuarantineEntry[];
  anomalous: ReportedEvent[];
  anomalous_not_listed: number;
  timeline: TimelineBucket[];
}

export class SerialBatchReport {
  private readonly stats = {
    events: 0,
    closes: 0,
    first: Number.NaN,
    last: Number.NaN,
    anomalous: 0,
    notListed: 0,
  };
  private readonly gtins = new Set<string>();
  private readonly machines = new Map<string, number>();
  private readonly operators = new Map<string, number>();
  private readonly byType = Object.fromEntries(ANOMALY_TYPES.map((t) => [t, 0])) as Record<AnomalyType, number>;
  private readonly byReason: Partial<Record<Reason, number>> = {};
  private readonly byRisk = Object.fromEntries(RISK_LEVELS.map((r) => [r, 0])) as Record<RiskLevel, number>;
  private readonly figures = [C.entropy_bits_per_char, C.min_entropy_mcv, C.serial_min_entropy_bits, C.guess_probability].map(
    () => new FigureAccumulator(),
  );
  private readonly anomalous: ReportedEvent[] = [];
  private buckets: TimelineBucket[] = [];
  private bucketMs = FIRST_BUCKET_MS;
  private origin = Number.NaN;

  /** `batch`: the batch number; `gtin`: only that product's batch (batch numbers are per GTIN). */
  constructor(
    readonly batch: string,
    readonly gtin?: string,
    readonly guessProbabilityLimit = 1e-4,
  ) {}

  /** Sees one scored row of the serial analysis (its `onRow` hook). */
  observe(row: Float64Array, ctx: RowContext, payload: Uint8Array): void {
    if (payloadText(payload, "batch") !== this.batch) return;
    const d = decodeSerialPayload(payload);
    if (this.gtin !== undefined && d.gtin !== this.gtin) return;
    this.gtins.add(d.gtin);
    const flags = row[C.flags] >>> 0;
    if ((flags & MARK_CONTROL) !== 0) {
      this.stats.closes++;
      return;
    }
    const t = ctx.time;
    this.stats.events++;
    if (!(t >= this.stats.first)) this.stats.first = t;
    if (!(t <= this.stats.last)) this.stats.last = t;
    this.machines.set(d.machine, (this.machines.get(d.machine) ?? 0) + 1);
    this.operators.set(d.operator, (this.operators.get(d.operator) ?? 0) + 1);
    const risk = RISK_LEVELS[row[C.risk]] ?? "none";
    this.byRisk[risk]++;
    [C.entropy_bits_per_char, C.min_entropy_mcv, C.serial_min_entropy_bits, C.guess_probability].forEach((f, i) =>
      this.figures[i].add(row[f]),
    );
    const bucket = this.bucketAt(t);
    bucket.events++;
    const quarantined = row[C.quarantine] === 1;
    if (quarantined) bucket.quarantined++;
    if ((flags & ANOMALY_MASK) === 0) return;
    this.stats.anomalous++;
    bucket.anomalous++;
    const types = anomalyTypesOf(flags);
    const reasons = reasonsOf(flags);
    for (const ty of types) {
      this.byType[ty]++;
      bucket.by_type[ty] = (bucket.by_type[ty] ?? 0) + 1;
    }
    for (const r of reasons) this.byReason[r] = (this.byReason[r] ?? 0) + 1;
    if (this.anomalous.length >= ANOMALOUS_EVENTS_MAX) {
      this.stats.notListed++;
      return;
    }
    this.anomalous.push({
      row: ctx.position,
      time: t,
      serial_number: d.serial,
      machine_id: d.machine,
      operator_id: d.operator,
      anomaly_types: types,
      reasons,
      anomaly_score: row[C.anomaly_score],
      risk_level: risk,
      quarantine: quarantined,
    });
  }

  /** The report, with the quarantined serials of the batch taken from `quarantine`. */
  build(quarantine: readonly QuarantineEntry[], now: Date = new Date()): BatchReport {
    const finite = (x: number) => (Number.isFinite(x) ? x : null);
    const [h, mcv, hs, guess] = this.figures.map((f) => f.figure());
    return {
      batch_number: this.batch,
      gtins: [...this.gtins],
      generated_at: now.toISOString(),
      events: this.stats.events,
      batch_close_events: this.stats.closes,
      first_time: finite(this.stats.first),
      last_time: finite(this.stats.last),
      machines: Object.fromEntries(this.machines),
      operators: Object.fromEntries(this.operators),
      anomalous_events: this.stats.anomalous,
      by_type: { ...this.byType },
      by_reason: Object.fromEntries(REASONS.filter((r) => this.byReason[r] !== undefined).map((r) => [r, this.byReason[r]])),
      by_risk: { ...this.byRisk },
      entropy: {
        entropy_bits_per_char: h,
        min_entropy_mcv: mcv,
        serial_min_entropy_bits: hs,
        guess_probability: guess,
        guess_probability_limit: this.guessProbabilityLimit,
      },
      quarantined: quarantine.filter((q) => q.batch_number === this.batch && (this.gtin === undefined || q.gtin === this.gtin)),
      anomalous: [...this.anomalous].sort((a, b) => a.time - b.time || a.row - b.row),
      anomalous_not_listed: this.stats.notListed,
      timeline: this.buckets.filter((b) => b.events > 0),
    };
  }

  private bucketAt(t: number): TimelineBucket {
    if (Number.isNaN(this.origin)) this.origin = Math.floor(t / FIRST_BUCKET_MS) * FIRST_BUCKET_MS;
    if (t < this.origin) {
      // An early straggler: extend the timeline backwards by whole buckets.
      const shift = Math.ceil((this.origin - t) / this.bucketMs);
      const before = Array.from({ length: shift }, (_, i) => emptyBucket(this.origin - (shift - i) * this.bucketMs, this.bucketMs));
      this.buckets = [...before, ...this.buckets];
      this.origin -= shift * this.bucketMs;
    }
    let i = Math.floor((t - this.origin) / this.bucketMs);
    while (i >= TIMELINE_BUCKETS_MAX) {
      this.mergePairs();
      i = Math.floor((t - this.origin) / this.bucketMs);
    }
    while (this.buckets.length <= i) this.buckets.push(emptyBucket(this.origin + this.buckets.length * this.bucketMs, this.bucketMs));
    return this.buckets[i];
  }

  private mergePairs(): void {
    const merged: TimelineBucket[] = [];
    for (let i = 0; i < this.buckets.length; i += 2) {
      const a = this.buckets[i];
      const b = this.buckets[i + 1];
      const m = emptyBucket(a.start, this.bucketMs * 2);
      for (const x of b === undefined ? [a] : [a, b]) {
        m.events += x.events;
        m.anomalous += x.anomalous;
        m.quarantined += x.quarantined;
        for (const [k, v] of Object.entries(x.by_type)) m.by_type[k as AnomalyType] = (m.by_type[k as AnomalyType] ?? 0) + (v as number);
      }
      merged.push(m);
    }
    this.buckets = merged;
    this.bucketMs *= 2;
  }
}

/** The report as Markdown: headline figures, tables, the quarantined serials and the timeline. */
export function batchReportMarkdown(r: BatchReport, timeText: (t: number) => string = isoOrNumber): string {
  const lines: string[] = [];
  const time = (t: number | null) => (t === null ? "—" : timeText(t));
  const num = (x: number | null, digits = 4) => (x === null ? "—" : Number(x.toPrecision(digits)).toString());
  lines.push(`# Serial investigation report: batch ${r.batch_number}`, "");
  lines.push(`Generated ${r.generated_at}. GTIN${r.gtins.length === 1 ? "" : "s"}: ${r.gtins.join(", ") || "—"}.`, "");
  lines.push(
    `- Serial events: **${r.events}** from ${time(r.first_time)} to ${time(r.last_time)}; batch-close events: ${r.batch_close_events}`,
    `- Anomalous events: **${r.anomalous_events}** (${r.events === 0 ? 0 : ((100 * r.anomalous_events) / r.events).toFixed(3)} %)`,
    `- Quarantined serials: **${r.quarantined.length}**`,
    `- Machines: ${
      Object.entries(r.machines)
        .map(([m, n]) => `${m} (${n})`)
        .join(", ") || "—"
    }`,
    `- Operators: ${
      Object.entries(r.operators)
        .map(([o, n]) => `${o} (${n})`)
        .join(", ") || "—"
    }`,
    "",
  );
  lines.push("## Anomalies by type", "", "| type | events |", "| --- | ---: |");
  for (const t of ANOMALY_TYPES) lines.push(`| ${t} | ${r.by_type[t]} |`);
  lines.push("", "| reason | events |", "| --- | ---: |");
  for (const [reason, n] of Object.entries(r.by_reason)) lines.push(`| ${reason} | ${n} |`);
  lines.push("", "| risk level | events |", "| --- | ---: |");
  for (const level of RISK_LEVELS) lines.push(`| ${level} | ${r.by_risk[level]} |`);
  const e = r.entropy;
  lines.push(
    "",
    "## Entropy of the lines' serial windows while printing this batch",
    "",
    "| figure | min | mean | max | last |",
    "| --- | ---: | ---: | ---: | ---: |",
  );
  for (const [name, f] of [
    ["Shannon entropy, bits/char", e.entropy_bits_per_char],
    ["MCV min-entropy, bits/char", e.min_entropy_mcv],
    ["serial min-entropy, bits", e.serial_min_entropy_bits],
    ["guess probability", e.guess_probability],
  ] as const)
    lines.push(`| ${name} | ${num(f.min)} | ${num(f.mean)} | ${num(f.max)} | ${num(f.last)} |`);
  lines.push("", `EU FMD limit on the guess probability: ${e.guess_probability_limit}.`, "");
  lines.push("## Quarantined serials", "");
  if (r.quarantined.length === 0) lines.push("None.", "");
  else {
    lines.push(
      "| serial | machine | first row | time | risk | score | occurrences | reasons |",
      "| --- | --- | ---: | --- | --- | ---: | ---: | --- |",
    );
    for (const q of r.quarantined) {
      lines.push(
        `| \`${q.serial_number}\` | ${q.machine_id} | ${q.row} | ${timeText(q.production_time)} | ${q.risk_level} | ${num(q.anomaly_score, 3)} | ${q.occurrences} | ${q.reasons.join(", ")} |`,
      );
    }
    lines.push("");
  }
  lines.push("## Anomalous events", "");
  if (r.anomalous.length === 0) lines.push("None.", "");
  else {
    lines.push(
      "| time | row | serial | machine | operator | types | reasons | risk |",
      "| --- | ---: | --- | --- | --- | --- | --- | --- |",
    );
    for (const a of r.anomalous) {
      lines.push(
        `| ${timeText(a.time)} | ${a.row} | \`${a.serial_number}\` | ${a.machine_id} | ${a.operator_id} | ${a.anomaly_types.join(", ")} | ${a.reasons.join(", ")} | ${a.risk_level} |`,
      );
    }
    if (r.anomalous_not_listed > 0) lines.push("", `… and ${r.anomalous_not_listed} more (counted above, not listed).`);
    lines.push("");
  }
  lines.push("## Timeline", "", "| from | to | events | anomalous | quarantined | by type |", "| --- | --- | ---: | ---: | ---: | --- |");
  for (const b of r.timeline) {
    const types = Object.entries(b.by_type)
      .map(([t, n]) => `${t} ${n}`)
      .join(", ");
    lines.push(`| ${timeText(b.start)} | ${timeText(b.end)} | ${b.events} | ${b.anomalous} | ${b.quarantined} | ${types} |`);
  }
  return `${lines.join("\n")}\n`;
}

// ---- internals ----

class FigureAccumulator {
  private n = 0;
  private sum = 0;
  private lo = Infinity;
  private hi = -Infinity;
  private lastValue = Number.NaN;

  add(x: number): void {
    if (!Number.isFinite(x)) return;
    this.n++;
    this.sum += x;
    if (x < this.lo) this.lo = x;
    if (x > this.hi) this.hi = x;
    this.lastValue = x;
  }

  figure(): Figure {
    if (this.n === 0) return { min: null, mean: null, max: null, last: null };
    return { min: this.lo, mean: this.sum / this.n, max: this.hi, last: this.lastValue };
  }
}

function emptyBucket(start: number, width: number): TimelineBucket {
  return { start, end: start + width, events: 0, anomalous: 0, quarantined: 0, by_type: {} };
}

function isoOrNumber(t: number): string {
  return t > 1e11 && t < 253402300800000 ? new Date(t).toISOString() : String(t);
}
