/**
 * Serial-event simulator: several serialization lines printing random serials for their product
 * (GTIN) and batch at a steady cadence, with labelled injected attacks — for tests, demos and the
 * benchmark of the serial-integrity analysis.
 *
 * Goals
 * - Same options → the same events, whatever the caller reads at a time.
 * - Lines that look like a plant: one GTIN per line, batches of `batchSerials` serials closed by
 *   a `batch_close` event, an operator per 8-hour shift (06:00, 14:00, 22:00 UTC), a production
 *   cadence of `ratePerLine` events/s with ±`jitter` spread, and a receiving clock
 *   (`received_timestamp`) 5–50 ms behind production.
 * - Ground truth: every injected event carries its attack, and {@link SerialSimulator.labels}
 *   lists each attack's event indices (the output rows).
 *
 * Attacks (one at a time per line; a new one every `attackEvery` events, kinds in rotation):
 *   duplicate         20 serials re-issued from the line's current and previous batch
 *   sequential        50 serials counting up by one in the alphabet's order
 *   low_entropy       800 serials drawn from 4 characters of the alphabet (≈ 3 windows of 256)
 *   burst             200 serials at 10× the line's rate
 *   wrong_machine     30 serials for another line's batch, printed on this line
 *   bad_gtin          10 serials with a GTIN whose check digit is wrong
 *   future_timestamp  10 serials stamped one hour ahead of the receiving clock
 *   closed_batch      10 serials for the line's previous batch, after it was closed
 * Non-goals: realistic GS1 company prefixes; aggregation (cases, pallets).
 */
import { LinewatchError, SeededRandom, streamKey } from "../../engine/core/mod.js";
import { formatTimestamp, machineId } from "./plant-simulator.js";
import { withCheckDigit } from "../../operators/serial/mod.js";

export const SERIAL_ATTACKS = [
  "duplicate",
  "sequential",
  "low_entropy",
  "burst",
  "wrong_machine",
  "bad_gtin",
  "future_timestamp",
  "closed_batch",
] as const;
export type SerialAttack = (typeof SERIAL_ATTACKS)[number];

/** The anomaly type each attack must raise (operators/serial/layout.ts ANOMALY_TYPES). */
export const ATTACK_ANOMALY: Readonly<Record<SerialAttack, string>> = {
  duplicate: "duplicate",
  sequential: "sequence",
  low_entropy: "entropy",
  burst: "temporal",
  wrong_machine: "behavioral",
  bad_gtin: "pattern",
  future_timestamp: "temporal",
  closed_batch: "behavioral",
};

export const ATTACK_EVENTS: Readonly<Record<SerialAttack, number>> = {
  duplicate: 20,
  sequential: 50,
  low_entropy: 800,
  burst: 200,
  wrong_machine: 30,
  bad_gtin: 10,
  future_timestamp: 10,
  closed_batch: 10,
};

/** One serial event in the source schema (DESIGN.md §4). Times are epoch ms. */
export interface SerialEvent {
  serial_number: string;
  gtin: string;
  batch_number: string;
  production_timestamp: number;
  received_timestamp: number;
  machine_id: string;
  operator_id: string;
  event_type: "serial" | "batch_close";
  /** Ground truth: the attack this event belongs to (not written to files). */
  attack?: SerialAttack;
}

export interface SerialAttackLabel {
  attack: SerialAttack;
  expected: string;
  machine_id: string;
  /** Output rows (0-based event indices) of the attack's events. */
  rows: number[];
}

export interface SerialSimulatorOptions {
  seed: number;
  lines: number;
  /** Serials per second per line. */
  ratePerLine: number;
  /** Epoch ms of the first event. */
  startTime: number;
  alphabet: string;
  serialLength: number;
  /** Serials per batch; then a batch_close event and a new batch. */
  batchSerials: number;
  attacks: readonly SerialAttack[];
  /** Events between attack starts (0: no attacks). */
  attackEvery: number;
  /** Relative spread of the interval between serials, uniform in ±jitter. */
  jitter: number;
}

export const DEFAULT_SERIAL_SIMULATOR_OPTIONS: Readonly<SerialSimulatorOptions> = Object.freeze({
  seed: 1,
  lines: 4,
  ratePerLine: 300,
  startTime: Date.UTC(2026, 0, 5, 6),
  alphabet: "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
  serialLength: 12,
  batchSerials: 50_000,
  attacks: SERIAL_ATTACKS,
  attackEvery: 20_000,
  jitter: 0.1,
});

export const SERIAL_SIMULATOR_LINES_MAX = 999;
export const SERIAL_SIMULATOR_RATE_MAX = 10_000;

/** A serial simulator option with a bad value; `option` names it. */
export class SerialSimulatorConfigError extends LinewatchError {
  constructor(
    readonly option: keyof SerialSimulatorOptions,
    message: string,
  ) {
    super(`serial simulator option ${option}: ${message}`);
  }
}

export function resolveSerialSimulatorOptions(options: Partial<SerialSimulatorOptions> = {}): SerialSimulatorOptions {
  const o: SerialSimulatorOptions = { ...DEFAULT_SERIAL_SIMULATOR_OPTIONS };
  for (const [k, v] of Object.entries(options)) if (v !== undefined) (o as unknown as Record<string, unknown>)[k] = v;
  const fail = (name: keyof SerialSimulatorOptions, why: string) => {
    throw new SerialSimulatorConfigError(name, `${why} (got ${JSON.stringify(o[name])})`);
  };
  if (!Number.isSafeInteger(o.seed)) fail("seed", "must be a safe integer");
  if (!Number.isInteger(o.lines) || o.lines < 1 || o.lines > SERIAL_SIMULATOR_LINES_MAX)
    fail("lines", `must be an integer in 1..${SERIAL_SIMULATOR_LINES_MAX}`);
  if (!(o.ratePerLine > 0 && o.ratePerLine <= SERIAL_SIMULATOR_RATE_MAX))
    fail("ratePerLine", `must be in (0, ${SERIAL_SIMULATOR_RATE_MAX}] events/s`);
  if (!Number.isSafeInteger(o.startTime) || o.startTime < 0) fail("startTime", "must be integer epoch ms ≥ 0");
  if (
    typeof o.alphabet !== "string" ||
    o.alphabet.length < 2 ||
    new Set(o.alphabet).size !== o.alphabet.length ||
    /[^\x21-\x7e]/.test(o.alphabet)
  ) {
    fail("alphabet", "must be at least 2 distinct printable ASCII characters");
  }
  if (!Number.isInteger(o.serialLength) || o.serialLength < 1 || o.serialLength > 20) fail("serialLength", "must be an integer in 1..20");
  if (!Number.isInteger(o.batchSerials) || o.batchSerials < 1) fail("batchSerials", "must be a positive integer");
  for (const a of o.attacks)
    if (!SERIAL_ATTACKS.includes(a)) fail("attacks", `unknown attack "${a}" (known: ${SERIAL_ATTACKS.join(", ")})`);
  if (!Number.isInteger(o.attackEvery) || o.attackEvery < 0) fail("attackEvery", "must be an integer ≥ 0");
  if (!(o.jitter >= 0 && o.jitter < 1)) fail("jitter", "must be in [0, 1)");
  return o;
}

/** Generates events in production-time order across lines (ties: line order). */
export class SerialSimulator {
  readonly options: Readonly<SerialSimulatorOptions>;
  private readonly lines: LineState[];
  private readonly rng: SeededRandom;
  private readonly labelList: SerialAttackLabel[] = [];
  private produced = 0;
  private nextAttack = 0;

  constructor(options: Partial<SerialSimulatorOptions> = {}) {
    this.options = resolveSerialSimulatorOptions(options);
    const o = this.options;
    this.rng = new SeededRandom(streamKey(o.seed, STREAM_SERIAL_LINES, 0));
    this.lines = Array.from({ length: o.lines }, (_, i) => {
      const rng = new SeededRandom(streamKey(o.seed, STREAM_SERIAL_LINES, i + 1));
      let company = "";
      for (let d = 0; d < 12; d++) company += String(rng.below(10));
      return {
        index: i,
        machine: machineId(i),
        gtin: withCheckDigit(`0${company}`),
        rng,
        batchSeq: 1,
        batchName: "",
        batchCount: 0,
        previousBatch: null,
        shift: Number.NaN,
        operator: "",
        next: o.startTime + rng.below(Math.max(1, Math.floor(1000 / o.ratePerLine))),
        pending: [],
        attack: null,
        current: [],
        previous: [],
      };
    });
    for (const l of this.lines) l.batchName = this.batchNumber(l, 1);
  }

  /** Events generated so far (= the row index of the next event). */
  get count(): number {
    return this.produced;
  }

  /** One label per attack started so far (rows fill in as its events are produced). */
  labels(): readonly SerialAttackLabel[] {
    return this.labelList;
  }

  next(): SerialEvent {
    const o = this.options;
    if (o.attackEvery > 0 && o.attacks.length > 0 && this.produced > 0 && this.produced % o.attackEvery === 0) this.startAttack();
    let line = this.lines[0];
    for (const l of this.lines) if (l.next < line.next) line = l;
    const label = line.attack?.label;
    const event = line.pending.length > 0 ? (line.pending.shift() as SerialEvent) : this.serialEvent(line);
    if (event.attack !== undefined && label !== undefined) label.rows.push(this.produced);
    this.produced++;
    return event;
  }

  // ---- internals ----

  private startAttack(): void {
    const o = this.options;
    for (let tries = 0; tries < o.attacks.length; tries++) {
      const kind = o.attacks[this.nextAttack++ % o.attacks.length];
      const line = this.lines[this.rng.below(this.lines.length)];
      if (line.attack !== null) continue;
      if (kind === "wrong_machine" && this.lines.length < 2) continue;
      if (kind === "closed_batch" && line.previousBatch === null) continue;
      if (kind === "duplicate" && line.current.length + line.previous.length < ATTACK_EVENTS.duplicate) continue;
      const label: SerialAttackLabel = { attack: kind, expected: ATTACK_ANOMALY[kind], machine_id: line.machine, rows: [] };
      this.labelList.push(label);
      const victim = this.lines[(line.index + 1 + line.rng.below(this.lines.length - 1)) % this.lines.length];
      line.attack = {
        kind,
        label,
        left: ATTACK_EVENTS[kind],
        counter: randomSerial(line.rng, o.alphabet, o.serialLength).split(""),
        subset: pick(line.rng, o.alphabet, 4),
        victim,
      };
      return;
    }
  }

  private serialEvent(line: LineState): SerialEvent {
    const o = this.options;
    const nominal = 1000 / o.ratePerLine;
    const t = line.next;
    const a = line.attack;
    let serial = randomSerial(line.rng, o.alphabet, o.serialLength);
    let gtin = line.gtin;
    let batch = line.batchName;
    let production = t;
    let interval = nominal * (1 + o.jitter * (2 * line.rng.next() - 1));
    if (a !== null) {
      switch (a.kind) {
        case "duplicate": {
          const fromPrevious = a.left % 2 === 0 && line.previous.length > 0;
          const pool = fromPrevious || line.current.length === 0 ? line.previous : line.current;
          serial = pool[line.rng.below(pool.length)];
          break;
        }
        case "sequential":
          serial = increment(a.counter, o.alphabet);
          break;
        case "low_entropy":
          serial = randomSerial(line.rng, a.subset, o.serialLength);
          break;
        case "burst":
          interval = nominal / 10;
          break;
        case "wrong_machine":
          gtin = a.victim.gtin;
          batch = a.victim.batchName;
          break;
        case "bad_gtin":
          gtin = gtin.slice(0, -1) + String((Number(gtin[gtin.length - 1]) + 1) % 10);
          break;
        case "future_timestamp":
          production = t + 3_600_000;
          break;
        case "closed_batch":
          batch = this.batchNumber(line, line.previousBatch as number);
          break;
      }
    }
    const event: SerialEvent = {
      serial_number: serial,
      gtin,
      batch_number: batch,
      production_timestamp: production,
      received_timestamp: t + 5 + line.rng.below(46),
      machine_id: line.machine,
      operator_id: this.operatorOf(line, t),
      event_type: "serial",
    };
    if (a !== null) {
      event.attack = a.kind;
      if (--a.left === 0) line.attack = null;
    }
    line.next = t + Math.max(1, Math.round(interval));
    if (a === null || a.kind === "burst" || a.kind === "low_entropy" || a.kind === "sequential") this.issue(line, serial);
    return event;
  }

  /** Records the serial in the line's batch; closes the batch when it is full. */
  private issue(line: LineState, serial: string): void {
    remember(line.current, serial);
    if (++line.batchCount < this.options.batchSerials) return;
    line.pending.push({
      serial_number: "",
      gtin: line.gtin,
      batch_number: this.batchNumber(line, line.batchSeq),
      production_timestamp: line.next,
      received_timestamp: line.next + 5,
      machine_id: line.machine,
      operator_id: operatorAt(line.index, line.next),
      event_type: "batch_close",
    });
    line.previousBatch = line.batchSeq;
    line.batchSeq++;
    line.batchName = this.batchNumber(line, line.batchSeq);
    line.batchCount = 0;
    line.previous = line.current;
    line.current = [];
  }

  private operatorOf(line: LineState, t: number): string {
    const shift = Math.floor((t - 6 * 3_600_000) / (8 * 3_600_000));
    if (shift !== line.shift) {
      line.shift = shift;
      line.operator = operatorAt(line.index, t);
    }
    return line.operator;
  }

  private batchNumber(line: LineState, seq: number): string {
    return `B${String(line.index + 1).padStart(3, "0")}-${String(seq).padStart(5, "0")}`;
  }
}

/** `OP-001-A`: line 1's operator of the shift (A 06–14, B 14–22, C 22–06 UTC). */
export function operatorAt(lineIndex: number, t: number): string {
  const shift = Math.floor((t - 6 * 3_600_000) / (8 * 3_600_000));
  return `OP-${String(lineIndex + 1).padStart(3, "0")}-${"ABC"[((shift % 3) + 3) % 3]}`;
}

/** Columns of the CSV form, in order. */
export const SERIAL_EVENT_FIELDS = [
  "serial_number",
  "gtin",
  "batch_number",
  "production_timestamp",
  "received_timestamp",
  "machine_id",
  "operator_id",
  "event_type",
] as const;

export function formatSerialEventNdjson(e: SerialEvent): string {
  return (
    `{"serial_number":${JSON.stringify(e.serial_number)},"gtin":"${e.gtin}","batch_number":${JSON.stringify(e.batch_number)},` +
    `"production_timestamp":"${formatTimestamp(e.production_timestamp)}","received_timestamp":"${formatTimestamp(e.received_timestamp)}",` +
    `"machine_id":${JSON.stringify(e.machine_id)},"operator_id":${JSON.stringify(e.operator_id)},"event_type":"${e.event_type}"}\n`
  );
}

export function formatSerialEventCsv(e: SerialEvent): string {
  return `${[
    e.serial_number,
    e.gtin,
    e.batch_number,
    formatTimestamp(e.production_timestamp),
    formatTimestamp(e.received_timestamp),
    e.machine_id,
    e.operator_id,
    e.event_type,
  ]
    .map(csvField)
    .join(",")}\n`;
}

// ---- internals ----

interface AttackState {
  kind: SerialAttack;
  label: SerialAttackLabel;
  left: number;
  /** Sequential: the counter, as characters of the alphabet. */
  counter: string[];
  /** Low entropy: the characters it draws from. */
  subset: string;
  /** Wrong machine: the line whose batch is printed here. */
  victim: LineState;
}

interface LineState {
  index: number;
  machine: string;
  gtin: string;
  rng: SeededRandom;
  batchSeq: number;
  batchName: string;
  batchCount: number;
  shift: number;
  operator: string;
  previousBatch: number | null;
  next: number;
  pending: SerialEvent[];
  attack: AttackState | null;
  /** Up to HISTORY_MAX serials of the current and the previous batch (duplicates come from here). */
  current: string[];
  previous: string[];
}

const HISTORY_MAX = 4096;

/** The purpose coordinate of the serial lines' random streams (stream 0: line choice, i + 1: line i). */
const STREAM_SERIAL_LINES = 1;

function remember(list: string[], serial: string): void {
  if (list.length < HISTORY_MAX) list.push(serial);
  else list[(list.length + serial.charCodeAt(0)) % HISTORY_MAX] = serial;
}

function randomSerial(rng: SeededRandom, alphabet: string, length: number): string {
  let s = "";
  for (let i = 0; i < length; i++) s += alphabet[rng.below(alphabet.length)];
  return s;
}

/** Adds one to the counter in the alphabet's order (the last character is the least significant). */
function increment(counter: string[], alphabet: string): string {
  for (let i = counter.length - 1; i >= 0; i--) {
    const d = alphabet.indexOf(counter[i]) + 1;
    if (d < alphabet.length) {
      counter[i] = alphabet[d];
      break;
    }
    counter[i] = alphabet[0];
  }
  return counter.join("");
}

function pick(rng: SeededRandom, alphabet: string, n: number): string {
  const chars = alphabet.split("");
  let out = "";
  for (let i = 0; i < n && chars.length > 0; i++) out += chars.splice(rng.below(chars.length), 1)[0];
  return out;
}

function csvField(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
