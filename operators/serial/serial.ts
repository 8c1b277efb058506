/**
 * The serial-integrity analysis (issue 6): GS1 validity, duplicates, sequences, entropy, timing
 * and behaviour of serialised packs, scored into a risk level, with a quarantine list.
 *
 * Where each part runs:
 * - encoder (main thread, arrival order): reads the event's fields into the payload
 *   (serial-layout.ts) and asks the ledger (serial-ledger.ts) the cross-line questions —
 *   duplicates, a batch's machines, operators and closure — and the per-GTIN pattern;
 * - kernel (kernels/serial.ts, worker pool, per line = machine_id): check digits and format,
 *   sequence tests, the sliding window's entropy, the line's production rhythm;
 * - observe (main thread, per-line order): score, confidence, risk, quarantine;
 * - rowJson: the replay contract members (docs/serial-integrity.md, "Output").
 */
import type { TableRow } from "../../connectors/files/mod.js";
import type { KernelCallContext, StreamKernel } from "../../engine/core/mod.js";
// The web face (no Node import, no pool, no logger): the ledger thread loads this file too.
import { ConfigError, type KernelExports, parseEventTime, type TimeUnit } from "../../engine/core/web.js";
import { formatStatistic } from "../number-format.js";
import type { RecordAnalysis, RecordInput, RowContext } from "../analysis.js";
import {
  ANOMALY_MASK,
  ANOMALY_TYPES,
  MARK_CONTROL,
  MARK_PATTERN_SET,
  PAYLOAD,
  REASON,
  REASONS,
  REC_BATCH_CLOSE,
  SERIAL_COL as C,
  SERIAL_OUT_FIELDS,
  SERIAL_PAYLOAD_BYTES,
  TYPE_MASK,
  fillSerialTables,
  serialInitArgs,
  serialStateBytes,
  serialStaticBytes,
  validateSerialParams,
  type AnomalyType,
  type Reason,
  type SerialParams,
} from "./layout.js";
import { type LedgerCounters, SerialLedger, payloadKeyHash, type SerialLedgerOptions } from "./ledger.js";
import {
  asciiString,
  decodeSerialPayload,
  encodeSerialFields,
  encodeSerialRanges,
  readU32,
  type SerialFields,
  type SerialTextRanges,
  writeU32,
} from "./payload.js";
import { QuarantineList, type QuarantineEvent } from "./quarantine.js";
import { RISK_LEVELS, anomalyScore, anomalyTypesOf, confidenceLevel, reasonsOf, riskCode, type RiskLevel } from "./score.js";

/** Source columns of a serial event (DESIGN.md §4). */
export const SERIAL_COLUMNS = {
  serial: "serial_number",
  gtin: "gtin",
  batch: "batch_number",
  time: "production_timestamp",
  machine: "machine_id",
  operator: "operator_id",
  received: "received_timestamp",
  eventType: "event_type",
} as const;
/** `event_type` values that close a batch (any other value, or none, is a serial event). */
export const BATCH_CLOSE_EVENT_TYPES: readonly string[] = ["batch_close", "batch_closed"];

export interface SerialAnalysisOptions {
  params: SerialParams;
  /** Units of the production timestamps: "ms" (ISO-8601 or epoch ms) or plain numbers. */
  timeUnit: TimeUnit;
  ledger?: Partial<SerialLedgerOptions>;
  /** Serial pattern per GTIN ("*": every GTIN without its own). */
  patterns?: ReadonlyMap<string, RegExp>;
  /** Events at this risk level or above are quarantined. */
  quarantineLevel?: Exclude<RiskLevel, "none">;
  /** Where the quarantine list is saved when the run stops (merged with the file's contents). */
  quarantineFile?: string;
  quarantineEntriesMax?: number;
  /**
   * The arrival clock when an event has no `received_timestamp`: the processing time, in time
   * units (default Date.now for ms, none for plain numbers: the future check is then off).
   */
  clock?: () => number;
  /**
   * Receives each quarantined occurrence, in per-line order (the quarantine output): this
   * event's row, time, score and reasons, the occurrences of its (gtin, serial) so far, and
   * whether the list kept it.
   */
  onQuarantine?: (event: QuarantineEvent) => void;
  /** Called when the run stops (after the quarantine file is saved): close outputs here. */
  onStop?: () => void;
  /** Sees every scored row (reports, tests). */
  onRow?: (row: Float64Array, ctx: RowContext, payload: Uint8Array) => void;
}

export interface SerialRunSummary {
  events: number;
  batchCloseEvents: number;
  anomalous: number;
  quarantinedEvents: number;
  byType: Record<AnomalyType, number>;
  byReason: Record<Reason, number>;
  byRisk: Record<RiskLevel, number>;
}

export type SerialAnalysis = RecordAnalysis & {
  /** The kernel's parameters (a checkpoint restores only into the same). */
  readonly params: Readonly<SerialParams>;
  /** Events at this risk level or above are quarantined. */
  readonly quarantineLevel: Exclude<RiskLevel, "none">;
  readonly input: SerialInput;
  readonly ledger: SerialLedger;
  /** The serial patterns per GTIN the input asks (SerialAnalysisOptions.patterns). */
  readonly patterns: ReadonlyMap<string, RegExp> | undefined;
  readonly quarantine: QuarantineList;
  /**
   * `observe` for the row at `out[at…]` (SERIAL_OUT_FIELDS f64) and the payload at
   * `payload[payloadAt…]`, without a view of either unless the event needs one (quarantine,
   * `onRow`): what the live job calls for every row of an output chunk.
   */
  observeAt(out: Float64Array, at: number, payload: Uint8Array, payloadAt: number, ctx: RowContext): void;
  /**
   * Where a filter duplicate's confidence reads the filter's false-positive rate: `ledger`'s now
   * (null, the default), or `source` — the ledger thread's rate after the observed event's slot,
   * when the ledger lives on a thread of its own (SerialJob's `ledgerThread`).
   */
  setFilterRateSource(source: (() => number) | null): void;
  /** Where the end-of-run notes read the ledger's counters: `ledger`'s (null, the default), or the ledger thread's. */
  setLedgerStatsSource(source: (() => LedgerCounters) | null): void;
  summary(): SerialRunSummary;
};

/** The engine's view of the serial kernel: state per line, the static entropy tables. */
export function serialKernel(params: SerialParams): StreamKernel {
  const p = validateSerialParams({ ...params });
  const args = serialInitArgs(p);
  let tables = 0;
  return {
    name: "serial",
    stateBytesPerKey: serialStateBytes(p.window),
    outFields: SERIAL_OUT_FIELDS,
    processFn: "serialProcess",
    extraArgs: [],
    staticBytes: serialStaticBytes(p.window),
    attach(memory: WebAssembly.Memory, _kernels: KernelExports, staticPtr: number): void {
      tables = staticPtr;
      fillSerialTables(new Float64Array(memory.buffer), staticPtr / 8, p.window);
    },
    calls(ctx: KernelCallContext) {
      if (ctx.payloadBytes !== SERIAL_PAYLOAD_BYTES || ctx.payload === 0) {
        throw new ConfigError(
          "--analysis serial",
          `needs serial events (${SERIAL_PAYLOAD_BYTES} payload bytes per record, from its encoder); this run carries ${ctx.payloadBytes}`,
        );
      }
      return [
        {
          fn: "serialProcess" as const,
          args: [ctx.stateBase, ctx.stateStride, ctx.slots, ctx.times, ctx.payload, ctx.payloadBytes, ctx.n, ctx.out, tables],
        },
      ];
    },
    initKey(kernels: KernelExports, statePtr: number): void {
      (kernels.serialInit as (state: number, ...rest: number[]) => void)(statePtr, ...args);
    },
  };
}

/** The serial analysis for replay, reports and benchmarks. */
export function serialAnalysis(options: SerialAnalysisOptions): SerialAnalysis {
  const kernel = serialKernel(options.params);
  const ledger = new SerialLedger(options.ledger);
  const quarantine = new QuarantineList(options.quarantineEntriesMax);
  const level = RISK_LEVELS.indexOf(options.quarantineLevel ?? "high");
  if (level < 1) throw new ConfigError("quarantineLevel", `must be one of low, medium, high, critical, got ${options.quarantineLevel}`);
  const summary = new SummaryCounters();
  let saved = false;
  const input = serialInput(options, ledger);
  const rate = { source: () => ledger.filterFalsePositiveRate() };
  const ownRate = rate.source;
  const ledgerStats = { source: () => ledger.stats() };
  const ownStats = ledgerStats.source;
  const observeAt = serialObserver(options, rate, quarantine, summary, level);
  return {
    name: "serial",
    kernel,
    params: Object.freeze({ ...options.params }),
    quarantineLevel: RISK_LEVELS[level] as Exclude<RiskLevel, "none">,
    input,
    ledger,
    patterns: options.patterns,
    quarantine,
    nullJson: SERIAL_NULL_JSON,
    summary: () => summary.summary(),
    observe(row: Float64Array, ctx: RowContext, payload?: Uint8Array): void {
      observeAt(row, 0, payload as Uint8Array, 0, ctx, row, payload as Uint8Array);
    },
    observeAt(out: Float64Array, at: number, payload: Uint8Array, payloadAt: number, ctx: RowContext): void {
      observeAt(out, at, payload, payloadAt, ctx, null, null);
    },
    setFilterRateSource(source: (() => number) | null): void {
      rate.source = source ?? ownRate;
    },
    setLedgerStatsSource(source: (() => LedgerCounters) | null): void {
      ledgerStats.source = source ?? ownStats;
    },
    rowJson: serialRowJson,
    stop(): void {
      if (saved) return;
      saved = true;
      if (options.quarantineFile !== undefined) quarantine.saveMerged(options.quarantineFile);
      options.onStop?.();
    },
    notes: (): string[] => serialNotes(summary, quarantine, ledger, ledgerStats.source(), RISK_LEVELS[level], options.quarantineFile),
  };
}

/** Scores one row: see {@link serialObserver}. */
type SerialObserve = (
  out: Float64Array,
  at: number,
  payload: Uint8Array,
  payloadAt: number,
  ctx: RowContext,
  row: Float64Array | null,
  p: Uint8Array | null,
) => void;

/**
 * What scores the row at `out[at…]` of the record whose payload is at `payload[payloadAt…]`: the
 * ledger's bits, score, confidence, risk, quarantine. Views of the row and the payload (`row`,
 * `p`: given, or made here) exist only for what needs them — a quarantined event, `onRow`.
 */
function serialObserver(
  options: SerialAnalysisOptions,
  rate: { source: () => number },
  quarantine: QuarantineList,
  summary: SummaryCounters,
  level: number,
): SerialObserve {
  return (
    out: Float64Array,
    at: number,
    payload: Uint8Array,
    payloadAt: number,
    ctx: RowContext,
    row: Float64Array | null,
    p: Uint8Array | null,
  ): void => {
    const flags = (out[at + C.flags] | readU32(payload, payloadAt + PAYLOAD.ledger)) >>> 0;
    out[at + C.flags] = flags;
    if ((flags & MARK_CONTROL) !== 0) {
      summary.batchCloseEvents++;
      out[at + C.anomaly_score] = Number.NaN;
      out[at + C.confidence_level] = Number.NaN;
      out[at + C.risk] = Number.NaN;
      out[at + C.quarantine] = 0;
      if (options.onRow !== undefined) options.onRow(rowView(out, at, row), ctx, payloadView(payload, payloadAt, p));
      return;
    }
    const score = anomalyScore(flags);
    const risk = riskCode(score);
    out[at + C.anomaly_score] = score;
    // The filter's current rate is a Poisson sum: only worth computing when a filter verdict needs it.
    const fp = (flags & REASON.duplicate_across_batches) !== 0 ? rate.source() : 0;
    out[at + C.confidence_level] = confidenceLevel(flags, out[at + C.readiness], fp);
    out[at + C.risk] = risk;
    out[at + C.quarantine] = risk >= level ? 1 : 0;
    summary.count(flags, risk);
    if (risk >= level) {
      summary.quarantinedEvents++;
      const occurrence = quarantineOccurrence(rowView(out, at, row), ctx, payloadView(payload, payloadAt, p), flags);
      const entry = quarantine.add(occurrence);
      options.onQuarantine?.({ ...occurrence, occurrences: entry?.occurrences ?? 1, kept: entry !== null });
    }
    if (options.onRow !== undefined) options.onRow(rowView(out, at, row), ctx, payloadView(payload, payloadAt, p));
  };
}

/** The row at `out[at…]`: `row` when the caller has that view already. */
function rowView(out: Float64Array, at: number, row: Float64Array | null): Float64Array {
  return row ?? out.subarray(at, at + SERIAL_OUT_FIELDS);
}

/** The payload at `payload[at…]`: `view` when the caller has it already. */
function payloadView(payload: Uint8Array, at: number, view: Uint8Array | null): Uint8Array {
  return view ?? payload.subarray(at, at + SERIAL_PAYLOAD_BYTES);
}

/** What the quarantine list keeps of a quarantined event: the serial's identity and the verdict. */
function quarantineOccurrence(row: Float64Array, ctx: RowContext, payload: Uint8Array, flags: number) {
  const d = decodeSerialPayload(payload);
  return {
    serial_number: d.serial,
    gtin: d.gtin,
    batch_number: d.batch,
    machine_id: d.machine,
    operator_id: d.operator,
    production_time: ctx.time,
    row: ctx.position,
    anomaly_score: row[C.anomaly_score],
    confidence_level: row[C.confidence_level],
    risk_level: RISK_LEVELS[row[C.risk]],
    anomaly_types: anomalyTypesOf(flags),
    reasons: reasonsOf(flags),
    quarantined_at: new Date().toISOString(),
  };
}

/** The end-of-run notes: what was quarantined, and every limit that made the analysis forget. */
function serialNotes(
  summary: SummaryCounters,
  quarantine: QuarantineList,
  ledger: SerialLedger,
  s: LedgerCounters,
  levelName: string,
  quarantineFile: string | undefined,
): string[] {
  const notes: string[] = [];
  if (summary.quarantinedEvents > 0) {
    notes.push(
      `serial: ${summary.quarantinedEvents} of ${summary.events} events quarantined (${levelName} risk or above), ` +
        `${quarantine.size} serials` +
        (quarantineFile !== undefined ? `, list in ${quarantineFile}` : ""),
    );
  }
  if (quarantine.dropped > 0)
    notes.push(`serial: ${quarantine.dropped} quarantined occurrences not kept: the list is full (${quarantine.entriesMax})`);
  if (s.batchesEvicted > 0)
    notes.push(
      `serial: ${s.batchesEvicted} batches evicted from the ledger (batchesMax ${ledger.options.batchesMax}); a returning batch starts afresh`,
    );
  if (s.exactSetsDropped > 0) {
    notes.push(
      `serial: ${s.exactSetsDropped} batches lost their exact duplicate sets (exactSerialsMax ${ledger.options.exactSerialsMax}); their duplicates come from the filter`,
    );
  }
  return notes;
}

/** A decoded serial event (a source that decodes records into objects hands these over). */
export interface SerialEventFields {
  serial_number: string;
  gtin: string;
  batch_number: string;
  /** Production time in the analysis's time units. */
  production_timestamp: number;
  machine_id: string;
  operator_id: string;
  /** Arrival time in time units; absent or NaN: the processing clock. */
  received_timestamp?: number;
  event_type?: string;
}

/**
 * An event as a schema reader leaves it in its message (connectors/wire SerialRecordView): the
 * times, the batch-close mark and the text as ranges of the message's bytes (ASCII).
 */
export interface SerialRangeEvent extends SerialTextRanges {
  /** Production time in the analysis's time units. */
  production: number;
  /** Arrival time; NaN: the processing clock. */
  received: number;
  batchClose: boolean;
}

/** The serial analysis's input: source rows (replay) or decoded events into payloads, through the ledger. */
export interface SerialInput extends RecordInput {
  /** `encode` for an event already decoded; returns why it is rejected, or null. */
  encodeEvent(e: SerialEventFields, payload: Uint8Array, offset: number): string | null;
  /**
   * `encodeEvent` for an event still in its message, `src`, as a schema reader found it (text as
   * ASCII ranges, `machine` its line): the same payload, verdicts and ledger state, without an
   * object or a string per event — the text is copied into the payload and the ledger reads it
   * there when the text fits the payload whole. The payload is written at once, but the ledger's
   * verdict bits only by {@link settle}: call it before the payload is read.
   */
  encodeRanges(src: Uint8Array, r: SerialRangeEvent, machine: string, payload: Uint8Array, offset: number): string | null;
  /**
   * Asks the ledger about the events `encodeRanges` wrote since the last settle, in the order they
   * were written, and writes their verdict bits into their payloads. Every other encode settles
   * first, so the ledger sees the events in the order they were encoded, whichever way.
   */
  settle(): void;
  /**
   * The ledger's questions for `n` events already in `payload` (their text whole, in ASCII, as
   * encodeRanges writes it), at `offsets[k]`, line `machines[k]`, time `times[k]`, asked in that
   * order, verdict bits written into their payloads: what {@link settle} does with its queue, for a
   * ledger that lives on a thread of its own (ledger-thread.ts).
   */
  askPayloads(payload: Uint8Array, offsets: Int32Array, machines: readonly string[], times: Float64Array, n: number): void;
  /** An event's arrival time: `received`, or the processing clock's now when it is NaN or absent. */
  arrivalOf(received: number | undefined): number;
  /**
   * Writes an event from its fields (text truncated to its fields where longer) and asks the ledger
   * with its strings: the string path of encodeRanges and encodeEvent, for a ledger thread.
   */
  encodeFields(f: Omit<SerialFields, "ledgerBits">, time: number, payload: Uint8Array, offset: number): null;
}

/** Reads the serial columns of a source row into the payload; consults the ledger. */
export function serialInput(options: Pick<SerialAnalysisOptions, "timeUnit" | "patterns" | "clock">, ledger: SerialLedger): SerialInput {
  return new SerialEncoder(options, ledger);
}

/** Events into payloads, and the ledger's (and the GTIN's pattern's) verdict bits into them. */
class SerialEncoder implements SerialInput {
  readonly payloadBytes = SERIAL_PAYLOAD_BYTES;
  readonly needsValue = false;
  readonly keyColumns = [SERIAL_COLUMNS.machine];
  readonly timeColumn = SERIAL_COLUMNS.time;
  private readonly clock: () => number;
  private readonly patterns: ReadonlyMap<string, RegExp> | undefined;
  private readonly anyPattern: RegExp | undefined;
  private readonly fields: SerialFields = {
    serial: "",
    gtin: "",
    batch: "",
    machine: "",
    operator: "",
    arrival: 0,
    batchClose: false,
    ledgerBits: 0,
  };
  /** Events encodeRanges wrote whose ledger question waits for {@link settle}: all in `stagedPayload`. */
  private staged = 0;
  private stagedPayload: Uint8Array | null = null;
  private readonly stagedOffsets = new Int32Array(STAGED_MAX);
  private readonly stagedTimes = new Float64Array(STAGED_MAX);
  private readonly stagedMachines: string[] = new Array<string>(STAGED_MAX).fill("");
  private readonly stagedH1 = new Uint32Array(STAGED_MAX);
  private readonly stagedH2 = new Uint32Array(STAGED_MAX);
  constructor(
    private readonly options: Pick<SerialAnalysisOptions, "timeUnit" | "patterns" | "clock">,
    private readonly ledger: SerialLedger,
  ) {
    this.clock = options.clock ?? (options.timeUnit === "ms" ? Date.now : () => Number.NaN);
    this.patterns = options.patterns;
    this.anyPattern = options.patterns?.get("*");
  }

  encode(row: TableRow, payload: Uint8Array, offset: number): string | null {
    this.settle();
    const K = SERIAL_COLUMNS;
    const f = this.fields;
    const time = parseEventTime(row.get(K.time), this.options.timeUnit);
    if (typeof time === "string") return `${K.time}: ${time}`;
    const received = row.get(K.received);
    if (received === undefined || received === null || received === "") f.arrival = this.clock();
    else {
      const t = parseEventTime(received, this.options.timeUnit);
      if (typeof t === "string") return `${K.received}: ${t}`;
      f.arrival = t;
    }
    f.serial = text(row.get(K.serial));
    f.gtin = text(row.get(K.gtin));
    f.batch = text(row.get(K.batch));
    f.machine = text(row.get(K.machine));
    f.operator = text(row.get(K.operator));
    const eventType = row.get(K.eventType);
    f.batchClose = typeof eventType === "string" && BATCH_CLOSE_EVENT_TYPES.includes(eventType);
    return this.write(time, payload, offset);
  }

  encodeEvent(e: SerialEventFields, payload: Uint8Array, offset: number): string | null {
    this.settle();
    const f = this.fields;
    const time = e.production_timestamp;
    if (!Number.isFinite(time)) return `${SERIAL_COLUMNS.time}: time ${time} is not finite`;
    const received = e.received_timestamp;
    f.arrival = received === undefined || Number.isNaN(received) ? this.clock() : received;
    f.serial = e.serial_number;
    f.gtin = e.gtin;
    f.batch = e.batch_number;
    f.machine = e.machine_id;
    f.operator = e.operator_id;
    f.batchClose = e.event_type !== undefined && BATCH_CLOSE_EVENT_TYPES.includes(e.event_type);
    return this.write(time, payload, offset);
  }

  encodeRanges(src: Uint8Array, r: SerialRangeEvent, machine: string, payload: Uint8Array, offset: number): string | null {
    const time = r.production;
    if (!Number.isFinite(time)) return `${SERIAL_COLUMNS.time}: time ${time} is not finite`;
    const arrival = Number.isNaN(r.received) ? this.clock() : r.received;
    if (encodeSerialRanges(src, r, arrival, r.batchClose, 0, payload, offset)) {
      this.stage(payload, offset, machine, time);
      return null;
    }
    // Text longer than its field: the strings, and the path that truncates them (in order after the staged events).
    this.settle();
    const f = this.fields;
    f.machine = machine;
    f.batchClose = r.batchClose;
    f.arrival = arrival;
    f.serial = asciiString(src, r.serialStart, r.serialLength);
    f.gtin = asciiString(src, r.gtinStart, r.gtinLength);
    f.batch = asciiString(src, r.batchStart, r.batchLength);
    f.operator = r.operatorStart < 0 ? "" : asciiString(src, r.operatorStart, r.operatorLength);
    return this.write(time, payload, offset);
  }

  arrivalOf(received: number | undefined): number {
    return received === undefined || Number.isNaN(received) ? this.clock() : received;
  }

  encodeFields(f: Omit<SerialFields, "ledgerBits">, time: number, payload: Uint8Array, offset: number): null {
    this.settle();
    const own = this.fields;
    own.serial = f.serial;
    own.gtin = f.gtin;
    own.batch = f.batch;
    own.machine = f.machine;
    own.operator = f.operator;
    own.arrival = f.arrival;
    own.batchClose = f.batchClose;
    return this.write(time, payload, offset);
  }

  settle(): void {
    const n = this.staged;
    if (n === 0) return;
    this.staged = 0;
    const payload = this.stagedPayload as Uint8Array;
    this.stagedPayload = null;
    this.askPayloads(payload, this.stagedOffsets, this.stagedMachines, this.stagedTimes, n);
  }

  askPayloads(payload: Uint8Array, offsets: Int32Array, machines: readonly string[], times: Float64Array, n: number): void {
    if (n > STAGED_MAX) throw new RangeError(`askPayloads: ${n} events, more than ${STAGED_MAX} at once`);
    this.settle(); // events staged before these are asked first (settle empties its queue before it calls here)
    const h1s = this.stagedH1;
    const h2s = this.stagedH2;
    // Hash every key first, read their filter blocks together (ledger.prefetch), then ask in order.
    for (let k = 0; k < n; k++) {
      const h = payloadKeyHash(payload, offsets[k]);
      h1s[k] = h.h1;
      h2s[k] = h.h2;
    }
    this.ledger.prefetch(h1s, n);
    for (let k = 0; k < n; k++) this.askPayload(payload, offsets[k], machines[k], times[k], h1s[k], h2s[k]);
  }

  // ---- internals ----

  /** Queues the ledger question of the event encodeRanges wrote at `offset` (settling first when the queue is full or the payload another). */
  private stage(payload: Uint8Array, offset: number, machine: string, time: number): void {
    if (this.staged === STAGED_MAX || (this.staged > 0 && payload !== this.stagedPayload)) this.settle();
    const k = this.staged++;
    this.stagedPayload = payload;
    this.stagedOffsets[k] = offset;
    this.stagedTimes[k] = time;
    this.stagedMachines[k] = machine;
  }

  /** The GTIN's pattern (when patterns are given) on the serial's verdict bits. */
  private withPattern(bits: number, gtin: string, serial: string): number {
    const pattern = this.patterns === undefined ? undefined : (this.patterns.get(gtin) ?? this.anyPattern);
    if (pattern === undefined) return bits;
    return bits | MARK_PATTERN_SET | (pattern.test(serial) ? 0 : REASON.pattern_mismatch);
  }

  /** Writes the payload from `fields`, then asks the ledger (and the GTIN's pattern) with `fields`' strings. */
  private write(time: number, payload: Uint8Array, offset: number): null {
    const f = this.fields;
    f.ledgerBits = 0;
    if (f.batchClose) this.ledger.close(f.gtin, f.batch, f.machine, time);
    else f.ledgerBits = this.withPattern(this.ledger.check(f.gtin, f.serial, f.batch, f.machine, f.operator, time), f.gtin, f.serial);
    encodeSerialFields(f, payload, offset);
    return null;
  }

  /**
   * Asks the ledger (and the GTIN's pattern) about the event whose payload at `offset` holds its
   * text whole, in ASCII — the ledger reads it there; (h1, h2) its key's hashes — and writes the
   * verdict bits into it.
   */
  private askPayload(payload: Uint8Array, offset: number, machine: string, time: number, h1: number, h2: number): void {
    let bits = 0;
    if ((payload[offset + PAYLOAD.recordFlags] & REC_BATCH_CLOSE) !== 0) this.ledger.closePayload(payload, offset, machine, time);
    else {
      bits = this.ledger.checkPayloadHashed(payload, offset, machine, time, h1, h2);
      if (this.patterns !== undefined) {
        const gtin = asciiString(payload, offset + PAYLOAD.gtin, payload[offset + PAYLOAD.gtinBytes]);
        bits = this.withPattern(bits, gtin, asciiString(payload, offset + PAYLOAD.serial, payload[offset + PAYLOAD.serialBytes]));
      }
    }
    writeU32(payload, offset + PAYLOAD.ledger, bits);
  }
}

/**
 * Serial patterns per GTIN from a JSON file: {"gtins": {"09506000134352": "^[0-9A-Z]{12}$", "*": "…"}}.
 * A pattern must match the whole serial to pass (anchor it yourself; it is used as written).
 */
export function parseSerialPatterns(json: string, source: string): Map<string, RegExp> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (cause) {
    throw new ConfigError("--serial-patterns", `${source}: not JSON (${(cause as Error).message})`);
  }
  const gtins = (parsed as { gtins?: unknown })?.gtins;
  if (gtins === null || typeof gtins !== "object")
    throw new ConfigError("--serial-patterns", `${source}: expected {"gtins": {"<gtin>": "<regex>"}}`);
  const out = new Map<string, RegExp>();
  for (const [gtin, pattern] of Object.entries(gtins as Record<string, unknown>)) {
    if (typeof pattern !== "string") throw new ConfigError("--serial-patterns", `${source}: the pattern of ${gtin} must be a string`);
    try {
      out.set(gtin, new RegExp(pattern, "u"));
    } catch (cause) {
      throw new ConfigError(
        "--serial-patterns",
        `${source}: the pattern of ${gtin} is not a regular expression (${(cause as Error).message})`,
      );
    }
  }
  return out;
}

export const SERIAL_NULL_JSON = [
  "serial_number",
  "gtin",
  "batch_number",
  "machine_id",
  "operator_id",
  "valid",
  "checks",
  "duplicate",
  "anomaly_types",
  "reasons",
  "entropy_bits_per_char",
  "min_entropy_mcv",
  "position_entropy_min",
  "serial_min_entropy_bits",
  "guess_probability",
  "window_serials",
  "anomaly_score",
  "confidence_level",
  "risk_level",
  "quarantine",
]
  .map((f) => `"${f}":null`)
  .join(",");

/** The replay members of one scored row (docs/serial-integrity.md, "Output"). */
export function serialRowJson(row: Float64Array, payload?: Uint8Array): string {
  if (payload === undefined) return SERIAL_NULL_JSON;
  const d = decodeSerialPayload(payload);
  const flags = row[C.flags] >>> 0;
  const ids =
    `"serial_number":${JSON.stringify(d.serial)},"gtin":${JSON.stringify(d.gtin)},"batch_number":${JSON.stringify(d.batch)},` +
    `"machine_id":${JSON.stringify(d.machine)},"operator_id":${JSON.stringify(d.operator)}`;
  if ((flags & MARK_CONTROL) !== 0) {
    return `${ids},"event_type":"batch_close",${SERIAL_NULL_JSON.slice(SERIAL_NULL_JSON.indexOf('"valid"'))}`;
  }
  const gtinOk = (flags & REASON.gtin_check_digit) === 0;
  const charsetOk = (flags & REASON.serial_charset) === 0;
  const lengthOk = (flags & REASON.serial_length) === 0;
  const pattern = (flags & MARK_PATTERN_SET) === 0 ? "null" : String((flags & REASON.pattern_mismatch) === 0);
  const f = formatStatistic;
  return (
    `${ids},"valid":${gtinOk && charsetOk && lengthOk && pattern !== "false"},` +
    `"checks":{"gtin_check_digit":${gtinOk},"serial_charset":${charsetOk},"serial_length":${lengthOk},"pattern":${pattern}},` +
    `"duplicate":${(flags & TYPE_MASK.duplicate) !== 0},"anomaly_types":${jsonList(anomalyTypesOf(flags))},"reasons":${jsonList(reasonsOf(flags))},` +
    `"entropy_bits_per_char":${f(row[C.entropy_bits_per_char])},"min_entropy_mcv":${f(row[C.min_entropy_mcv])},` +
    `"position_entropy_min":${f(row[C.position_entropy_min])},"serial_min_entropy_bits":${f(row[C.serial_min_entropy_bits])},` +
    `"guess_probability":${f(row[C.guess_probability])},` +
    `"window_serials":${f(row[C.window_serials])},"anomaly_score":${f(row[C.anomaly_score])},` +
    `"confidence_level":${f(row[C.confidence_level])},"risk_level":${Number.isFinite(row[C.risk]) ? `"${RISK_LEVELS[row[C.risk]]}"` : "null"},` +
    `"quarantine":${row[C.quarantine] === 1}`
  );
}

// ---- internals ----

function text(cell: unknown): string {
  if (cell === undefined || cell === null) return "";
  return typeof cell === "string" ? cell : String(cell);
}

function jsonList(items: readonly string[]): string {
  return items.length === 0 ? "[]" : `["${items.join('","')}"]`;
}

/** Run counters kept as typed arrays (updated per event on the main thread); `summary()` names them. */
class SummaryCounters {
  events = 0;
  batchCloseEvents = 0;
  anomalous = 0;
  quarantinedEvents = 0;
  private readonly byRisk = new Float64Array(RISK_LEVELS.length);
  private readonly byReason = new Float64Array(REASONS.length);
  /** Events per type: an event counts once per type, however many of its reasons it raised. */
  private readonly byType = new Float64Array(ANOMALY_TYPES.length);

  count(flags: number, risk: number): void {
    this.events++;
    this.byRisk[risk]++;
    if ((flags & ANOMALY_MASK) === 0) return;
    this.anomalous++;
    for (let i = 0; i < REASON_BITS.length; i++) if ((flags & REASON_BITS[i]) !== 0) this.byReason[i]++;
    for (let i = 0; i < TYPE_BITS.length; i++) if ((flags & TYPE_BITS[i]) !== 0) this.byType[i]++;
  }

  summary(): SerialRunSummary {
    return {
      events: this.events,
      batchCloseEvents: this.batchCloseEvents,
      anomalous: this.anomalous,
      quarantinedEvents: this.quarantinedEvents,
      byType: Object.fromEntries(ANOMALY_TYPES.map((t, i) => [t, this.byType[i]])) as Record<AnomalyType, number>,
      byReason: Object.fromEntries(REASONS.map((r, i) => [r, this.byReason[i]])) as Record<Reason, number>,
      byRisk: Object.fromEntries(RISK_LEVELS.map((r, i) => [r, this.byRisk[i]])) as Record<RiskLevel, number>,
    };
  }
}

const REASON_BITS = REASONS.map((r) => REASON[r]);
/** Events whose ledger questions wait for one settle at most (the job settles at every batch of ≤ 1024 anyway). */
const STAGED_MAX = 1024;
const TYPE_BITS = ANOMALY_TYPES.map((t) => TYPE_MASK[t]);
