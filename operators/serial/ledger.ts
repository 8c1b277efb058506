/**
 * The serial ledger: what the serial-integrity operator knows across lines, kept on the main
 * thread and consulted for every event in arrival order (the encoder calls it before the event
 * enters the engine).
 *
 * Why here and not in kernel state: a duplicate or a batch seen by another line is state shared
 * by every key; kernel state is per key and written by whichever worker runs the key's group, so
 * shared state there would race. The main thread sees every event once, in arrival order, which
 * also makes the verdicts deterministic for a replay (the first arrival is the original, the
 * later one the duplicate) whatever the worker count.
 *
 * - Duplicates, keyed by (gtin, serial): exact within a batch (a set per batch, searched only
 *   when the filter has seen the key: a filter miss is certain), and across
 *   batches through two generations of a split block Bloom filter: each generation holds up to
 *   `filterCapacity` keys at `filterFpRate`; when the current one is full it becomes the previous
 *   and a fresh one starts, so the horizon is at least the last `filterCapacity` serials and the
 *   false-positive rate stays below 1 − (1 − p)² ≈ 2p.
 * - Behaviour, per (gtin, batch): the machines a batch runs on (the first `batchMachinesMax`
 *   machines seen; events from any other are `new_machine_for_batch`), its operators (a new one
 *   after the first is `new_operator_for_batch`, once), and whether it is closed: explicitly by a
 *   batch-close event (every later serial is `serial_after_batch_close`) or by `batchCloseAfter`
 *   time units without an event (the next serial is `batch_reopened`).
 * Every structure is bounded: `batchesMax` batches (least recently used evicted), `exactSerialsMax`
 * serials in the exact sets together (the least recently used batch's set is dropped; its
 * batch then relies on the filter), with counters for each.
 */
import { ConfigError } from "../../engine/core/web.js";
import { SplitBlockBloomFilter, blockedFalsePositiveRate, hashPair, hashPairBytes } from "./bloom-filter.js";
import { type SerialBytes, SerialSet } from "./exact-set.js";
import { PAYLOAD, REASON } from "./layout.js";
import { asciiString } from "./payload.js";

export interface SerialLedgerOptions {
  /** Keys per Bloom filter generation. */
  filterCapacity: number;
  /** False-positive rate of a full generation. */
  filterFpRate: number;
  batchesMax: number;
  exactSerialsMax: number;
  /** Time units without an event after which a batch counts as closed; 0: never. */
  batchCloseAfter: number;
  /** Machines a batch may run on: the first ones seen. */
  batchMachinesMax: number;
  operatorsPerBatchMax: number;
}

export const DEFAULT_LEDGER_OPTIONS: Readonly<SerialLedgerOptions> = Object.freeze({
  filterCapacity: 4_000_000,
  filterFpRate: 1e-6,
  batchesMax: 4096,
  exactSerialsMax: 4_000_000,
  batchCloseAfter: 3_600_000,
  batchMachinesMax: 1,
  operatorsPerBatchMax: 64,
});

export interface LedgerCounters {
  events: number;
  batchCloseEvents: number;
  batches: number;
  batchesEvicted: number;
  exactSerials: number;
  exactSetsDropped: number;
  filterKeys: number;
  filterGenerations: number;
  filterBytes: number;
  operatorsNotTracked: number;
}

export interface BatchSummary {
  gtin: string;
  batch: string;
  machines: string[];
  operators: string[];
  events: number;
  firstTime: number;
  lastTime: number;
  closed: boolean;
}

export class SerialLedger {
  readonly options: SerialLedgerOptions;
  private readonly batches = new Map<string, BatchState>();
  private readonly lastBatchOfMachine = new Map<string, BatchState>();
  private current: SplitBlockBloomFilter;
  private previous: SplitBlockBloomFilter | null = null;
  private readonly counters = {
    events: 0,
    batchCloseEvents: 0,
    batchesEvicted: 0,
    exactSerials: 0,
    exactSetsDropped: 0,
    generations: 1,
    operatorsNotTracked: 0,
  };

  constructor(options: Partial<SerialLedgerOptions> = {}) {
    this.options = validateLedgerOptions({ ...DEFAULT_LEDGER_OPTIONS, ...options });
    this.current = new SplitBlockBloomFilter(this.options.filterCapacity, this.options.filterFpRate);
  }

  /** Bytes of one filter generation's bits. */
  get filterGenerationBytes(): number {
    return this.current.bytes;
  }

  /** Registers a serial event and returns its ledger reason bits. */
  check(gtin: string, serial: string, batch: string, machine: string, operator: string, time: number): number {
    this.counters.events++;
    const st = this.batchOf(gtin, batch, machine, time);
    const h = hashPair(gtin, serial);
    const h1 = h.h1;
    const h2 = h.h2;
    let bits = 0;
    // A filter miss is certain: the serial is new everywhere, the batch's set need not be searched
    // — unless the batch began two generations ago, when its first serials have left the filter.
    const seen = this.seenInFilter(h1, h2);
    const set = st.serials;
    if (set !== null && (seen || this.counters.generations - st.generation >= 2) && set.has(h1, h2, serial)) {
      bits |= REASON.duplicate_in_batch;
    } else {
      if (seen) bits |= REASON.duplicate_across_batches;
      if (set !== null) {
        set.add(h1, h2, serial);
        if (++this.counters.exactSerials > this.options.exactSerialsMax) this.dropExactSet(st);
      }
    }
    return this.behaviour(st, bits, machine, st.operators.includes(operator) ? null : operator, time);
  }

  /**
   * {@link check} for an event whose gtin, serial, batch and operator are stored whole, as ASCII,
   * in the payload at `offset` (layout.ts) — the same verdicts and the same state as `check` with
   * those strings, without making them: the bytes are hashed, compared and appended as they are.
   */
  checkPayload(payload: Uint8Array, offset: number, machine: string, time: number): number {
    const h = payloadKeyHash(payload, offset);
    return this.checkPayloadHashed(payload, offset, machine, time, h.h1, h.h2);
  }

  /** {@link checkPayload} for a payload whose (gtin, serial) hashes {@link payloadKeyHash} gave already. */
  checkPayloadHashed(payload: Uint8Array, offset: number, machine: string, time: number, h1: number, h2: number): number {
    this.counters.events++;
    const st = this.batchOfPayload(payload, offset, machine, time);
    const serialAt = offset + PAYLOAD.serial;
    const serialLength = payload[offset + PAYLOAD.serialBytes];
    let bits = 0;
    const seen = this.seenInFilter(h1, h2);
    const set = st.serials;
    if (set !== null && (seen || this.counters.generations - st.generation >= 2) && set.hasBytes(h1, h2, payload, serialAt, serialLength)) {
      bits |= REASON.duplicate_in_batch;
    } else {
      if (seen) bits |= REASON.duplicate_across_batches;
      if (set !== null) {
        set.addBytes(h1, h2, payload, serialAt, serialLength);
        if (++this.counters.exactSerials > this.options.exactSerialsMax) this.dropExactSet(st);
      }
    }
    const operatorAt = offset + PAYLOAD.operator;
    const operatorLength = payload[offset + PAYLOAD.operatorBytes];
    const known = indexOfText(st.operators, payload, operatorAt, operatorLength) >= 0;
    return this.behaviour(st, bits, machine, known ? null : asciiString(payload, operatorAt, operatorLength), time);
  }

  /**
   * Reads the filter blocks of the first `n` keys hashed into `h1s` ({@link payloadKeyHash}), in
   * both generations, without changing anything: a run of independent loads the processor overlaps,
   * so that the checks that follow, in order, find their blocks in cache (a probe of a 32 MB filter
   * one key at a time waits for memory each time: ≈ 0.2 µs of the ≈ 0.3 µs a probe cost).
   */
  prefetch(h1s: Uint32Array, n: number): void {
    this.current.touch(h1s, n);
    this.previous?.touch(h1s, n);
  }

  /** An explicit batch-close event: later serials of the batch are flagged. */
  close(gtin: string, batch: string, machine: string, time: number): void {
    this.counters.batchCloseEvents++;
    const st = this.batchOf(gtin, batch, machine, time);
    st.closed = true;
    if (st.events === 0) st.lastTime = time;
  }

  /** {@link close} for an event whose gtin and batch are stored whole, as ASCII, in the payload at `offset`. */
  closePayload(payload: Uint8Array, offset: number, machine: string, time: number): void {
    this.counters.batchCloseEvents++;
    const st = this.batchOfPayload(payload, offset, machine, time);
    st.closed = true;
    if (st.events === 0) st.lastTime = time;
  }

  /** The probability that the filter reports a never-seen key as seen, now. */
  filterFalsePositiveRate(): number {
    return filterFalsePositiveRateAt(this.current.blocks, this.current.size, this.previous?.size ?? -1);
  }

  /** Keys in the current filter generation now: with {@link filterPreviousKeys}, what the filter's false-positive rate is a function of. */
  filterCurrentKeys(): number {
    return this.current.size;
  }

  /** Keys in the previous filter generation now; −1: none yet. */
  filterPreviousKeys(): number {
    return this.previous?.size ?? -1;
  }

  /** Blocks of each filter generation. */
  get filterBlocks(): number {
    return this.current.blocks;
  }

  /** The false-positive rate the filter is sized for: two full generations. */
  statedFalsePositiveRate(): number {
    const p = this.options.filterFpRate;
    return 1 - (1 - p) * (1 - p);
  }

  batch(gtin: string, batch: string): BatchSummary | undefined {
    const st = this.batches.get(batchKey(gtin, batch));
    return st === undefined ? undefined : summaryOf(st);
  }

  stats(): LedgerCounters {
    return {
      events: this.counters.events,
      batchCloseEvents: this.counters.batchCloseEvents,
      batches: this.batches.size,
      batchesEvicted: this.counters.batchesEvicted,
      exactSerials: this.counters.exactSerials,
      exactSetsDropped: this.counters.exactSetsDropped,
      filterKeys: this.current.size + (this.previous?.size ?? 0),
      filterGenerations: this.counters.generations,
      filterBytes: this.current.bytes + (this.previous?.bytes ?? 0),
      operatorsNotTracked: this.counters.operatorsNotTracked,
    };
  }

  /**
   * Everything the ledger knows, for a checkpoint: batches in least-recently-used order, each
   * line's last batch, the counters, and both filter generations' bits — a copy, so it can be
   * encoded while the ledger goes on (≈ 70 MB copied for the default 2 × 32 MB filter).
   */
  snapshot(): LedgerSnapshot {
    const batches: LedgerBatchSnapshot[] = [];
    for (const st of this.batches.values()) {
      batches.push({
        ...summaryOf(st),
        touched: st.touched,
        generation: st.generation,
        serials: st.serials === null ? null : st.serials.copyBytes(),
      });
    }
    const lastBatchOfMachine: Array<[string, string]> = [];
    for (const [machine, st] of this.lastBatchOfMachine) if (!st.evicted) lastBatchOfMachine.push([machine, st.key]);
    return {
      counters: { ...this.counters },
      batches,
      lastBatchOfMachine,
      current: { inserted: this.current.size, bits: this.current.bits().slice() },
      previous: this.previous === null ? null : { inserted: this.previous.size, bits: this.previous.bits().slice() },
    };
  }

  /**
   * Replaces this ledger's state with a snapshot taken with the same options (the caller checks
   * them). Throws RangeError when a part does not fit (a filter of another size, a count past a bound).
   */
  restore(s: LedgerSnapshot): void {
    const o = this.options;
    if (s.batches.length > o.batchesMax) throw new RangeError(`${s.batches.length} batches, more than batchesMax ${o.batchesMax}`);
    let exact = 0;
    for (const b of s.batches) exact += b.serials?.count ?? 0;
    if (exact !== s.counters.exactSerials || exact > o.exactSerialsMax) {
      throw new RangeError(`${exact} exact serials (counter ${s.counters.exactSerials}, exactSerialsMax ${o.exactSerialsMax})`);
    }
    const current = new SplitBlockBloomFilter(o.filterCapacity, o.filterFpRate);
    current.load(s.current.bits, s.current.inserted);
    let previous: SplitBlockBloomFilter | null = null;
    if (s.previous !== null) {
      previous = new SplitBlockBloomFilter(o.filterCapacity, o.filterFpRate);
      previous.load(s.previous.bits, s.previous.inserted);
    }
    this.batches.clear();
    this.lastBatchOfMachine.clear();
    for (const b of s.batches) {
      let serials: SerialSet | null = null;
      if (b.serials !== null) serials = restoredSet(b.gtin, b.serials);
      const key = batchKey(b.gtin, b.batch);
      this.batches.set(key, {
        key,
        gtin: b.gtin,
        batch: b.batch,
        gtinCodes: codesOf(b.gtin),
        batchCodes: codesOf(b.batch),
        machines: [...b.machines],
        operators: [...b.operators],
        events: b.events,
        firstTime: b.firstTime,
        lastTime: b.lastTime,
        closed: b.closed,
        serials,
        evicted: false,
        touched: b.touched,
        generation: b.generation,
      });
    }
    for (const [machine, key] of s.lastBatchOfMachine) {
      const st = this.batches.get(key);
      if (st !== undefined) this.lastBatchOfMachine.set(machine, st);
    }
    this.current = current;
    this.previous = previous;
    Object.assign(this.counters, s.counters);
  }

  // ---- internals ----

  /**
   * The behaviour checks of a serial event of batch `st` (after the duplicate checks set `bits`):
   * closure, the batch's machines and operators (`newOperator`: the event's operator when the
   * batch does not list it yet, else null), then the batch's clock and count.
   */
  private behaviour(st: BatchState, bits: number, machine: string, newOperator: string | null, time: number): number {
    if (st.closed) bits |= REASON.serial_after_batch_close;
    else if (this.options.batchCloseAfter > 0 && st.events > 0 && time - st.lastTime > this.options.batchCloseAfter)
      bits |= REASON.batch_reopened;
    if (!st.machines.includes(machine)) {
      if (st.machines.length < this.options.batchMachinesMax) st.machines.push(machine);
      else bits |= REASON.new_machine_for_batch;
    }
    if (newOperator !== null) {
      if (st.operators.length > 0) bits |= REASON.new_operator_for_batch;
      if (st.operators.length < this.options.operatorsPerBatchMax) st.operators.push(newOperator);
      else this.counters.operatorsNotTracked++;
    }
    if (time > st.lastTime || st.events === 0) st.lastTime = time;
    st.events++;
    return bits;
  }

  /** Whether (h1, h2) is (probably) in either generation; adds it to the current one. */
  private seenInFilter(h1: number, h2: number): boolean {
    const inCurrent = this.current.testAndAddHash(h1, h2);
    const inPrevious = !inCurrent && this.previous !== null && this.previous.hasHash(h1, h2);
    if (this.current.size >= this.options.filterCapacity) {
      this.previous = this.current;
      this.current = new SplitBlockBloomFilter(this.options.filterCapacity, this.options.filterFpRate);
      this.counters.generations++;
    }
    return inCurrent || inPrevious;
  }

  private batchOf(gtin: string, batch: string, machine: string, time: number): BatchState {
    const cached = this.lastBatchOfMachine.get(machine);
    const now = this.counters.events;
    if (cached !== undefined && !cached.evicted && cached.gtin === gtin && cached.batch === batch) {
      // The fast path skips the LRU move; refresh now and then so an active batch is never the oldest.
      if (now - cached.touched > LRU_REFRESH_EVENTS) this.touch(cached, now);
      return cached;
    }
    let st = this.batches.get(batchKey(gtin, batch));
    if (st !== undefined) this.touch(st, now);
    else {
      if (this.batches.size >= this.options.batchesMax) this.evictOldest();
      // Size the new batch's set like the machine's previous batch: no rehashing while it fills.
      const hint = Math.min(SET_HINT_MAX, cached?.serials?.size ?? 0);
      st = {
        key: batchKey(gtin, batch),
        gtin,
        batch,
        gtinCodes: codesOf(gtin),
        batchCodes: codesOf(batch),
        machines: [],
        operators: [],
        events: 0,
        firstTime: time,
        lastTime: time,
        closed: false,
        serials: new SerialSet(hint),
        evicted: false,
        touched: now,
        generation: this.counters.generations,
      };
      this.batches.set(st.key, st);
    }
    this.lastBatchOfMachine.set(machine, st);
    return st;
  }

  /**
   * {@link batchOf} for the gtin and batch stored (whole, ASCII) in the payload at `offset`: the
   * line's last batch when it is that one, compared on the bytes; otherwise their strings are
   * made and batchOf decides (its own look at the line's last batch then fails the same way).
   */
  private batchOfPayload(payload: Uint8Array, offset: number, machine: string, time: number): BatchState {
    const gtinAt = offset + PAYLOAD.gtin;
    const gtinLength = payload[offset + PAYLOAD.gtinBytes];
    const batchAt = offset + PAYLOAD.batch;
    const batchLength = payload[offset + PAYLOAD.batchBytes];
    const cached = this.lastBatchOfMachine.get(machine);
    if (
      cached !== undefined &&
      !cached.evicted &&
      sameCodes(cached.gtinCodes, payload, gtinAt, gtinLength) &&
      sameCodes(cached.batchCodes, payload, batchAt, batchLength)
    ) {
      const now = this.counters.events;
      if (now - cached.touched > LRU_REFRESH_EVENTS) this.touch(cached, now);
      return cached;
    }
    return this.batchOf(asciiString(payload, gtinAt, gtinLength), asciiString(payload, batchAt, batchLength), machine, time);
  }

  /** Least recently used order: move to the end. */
  private touch(st: BatchState, now: number): void {
    this.batches.delete(st.key);
    this.batches.set(st.key, st);
    st.touched = now;
  }

  private evictOldest(): void {
    const [key, st] = this.batches.entries().next().value as [string, BatchState];
    this.batches.delete(key);
    st.evicted = true;
    if (st.serials !== null) this.counters.exactSerials -= st.serials.size;
    st.serials = null;
    this.counters.batchesEvicted++;
  }

  /** Frees the exact set of the least recently used batch that has one (possibly `current`'s own). */
  private dropExactSet(current: BatchState): void {
    let victim: BatchState = current;
    for (const st of this.batches.values()) {
      if (st !== current && st.serials !== null) {
        victim = st;
        break;
      }
    }
    this.counters.exactSerials -= (victim.serials as SerialSet).size;
    victim.serials = null;
    this.counters.exactSetsDropped++;
  }
}

/**
 * The filter's hashes of the (gtin, serial) stored whole, as ASCII, in the payload at `offset`
 * (hashPair of their strings). Returns a shared object, valid until the next hash.
 */
export function payloadKeyHash(payload: Uint8Array, offset: number): { readonly h1: number; readonly h2: number } {
  return hashPairBytes(
    payload,
    offset + PAYLOAD.gtin,
    payload[offset + PAYLOAD.gtinBytes],
    offset + PAYLOAD.serial,
    payload[offset + PAYLOAD.serialBytes],
  );
}

/**
 * The duplicate filter's false-positive rate with `currentKeys` keys in the current generation and
 * `previousKeys` in the previous one (−1: none), each of `blocks` blocks: 1 − (1 − a)(1 − b), a
 * and b each generation's rate at its load (blockedFalsePositiveRate). A Poisson sum of some
 * fifty terms each (5–9 µs): a ledger on its own thread hands over the key counts, and the rate is
 * computed where a verdict reads it.
 */
export function filterFalsePositiveRateAt(blocks: number, currentKeys: number, previousKeys: number): number {
  const a = blockedFalsePositiveRate(currentKeys / blocks);
  const b = previousKeys < 0 ? 0 : blockedFalsePositiveRate(previousKeys / blocks);
  return 1 - (1 - a) * (1 - b);
}

/** A ledger's state (serial-checkpoint.ts encodes it). */
export interface LedgerSnapshot {
  counters: {
    events: number;
    batchCloseEvents: number;
    batchesEvicted: number;
    exactSerials: number;
    exactSetsDropped: number;
    generations: number;
    operatorsNotTracked: number;
  };
  batches: LedgerBatchSnapshot[];
  /** [machine, batch key] of each line's last batch. */
  lastBatchOfMachine: Array<[string, string]>;
  current: { inserted: number; bits: Uint8Array };
  previous: { inserted: number; bits: Uint8Array } | null;
}

export interface LedgerBatchSnapshot extends BatchSummary {
  touched: number;
  generation: number;
  /** The exact set's serials in insertion order, as UTF-8; null once dropped. */
  serials: SerialBytes | null;
}

export function validateLedgerOptions(o: SerialLedgerOptions): SerialLedgerOptions {
  const positive: Array<keyof SerialLedgerOptions> = [
    "filterCapacity",
    "batchesMax",
    "exactSerialsMax",
    "batchMachinesMax",
    "operatorsPerBatchMax",
  ];
  for (const name of positive) {
    const v = o[name];
    if (!Number.isInteger(v) || v < 1) throw new ConfigError(`serial.${name}`, `must be a positive integer, got ${v}`);
  }
  if (!(o.filterFpRate > 0 && o.filterFpRate < 1)) throw new ConfigError("serial.filterFpRate", `must be in (0, 1), got ${o.filterFpRate}`);
  if (!(o.batchCloseAfter >= 0) || !Number.isFinite(o.batchCloseAfter))
    throw new ConfigError("serial.batchCloseAfter", `must be a finite duration ≥ 0, got ${o.batchCloseAfter}`);
  return o;
}

// ---- internals ----

const LRU_REFRESH_EVENTS = 1024;
const SET_HINT_MAX = 1 << 20;

interface BatchState extends BatchSummary {
  key: string;
  /**
   * The UTF-16 code units of `gtin` and of `batch`: what the payload path compares each event's
   * bytes with (sameCodes), typed-array loads instead of charCodeAt on strings made one character
   * at a time (a string of 14 concatenations is a tree each charCodeAt walks).
   */
  gtinCodes: Uint16Array;
  batchCodes: Uint16Array;
  /** Serials of the batch (exact); null once dropped for memory or evicted. */
  serials: SerialSet | null;
  evicted: boolean;
  /** Event count at the last LRU move. */
  touched: number;
  /** The filter generation current when the batch began. */
  generation: number;
}

/** A batch's summary, its lists copied. */
function summaryOf(st: BatchState): BatchSummary {
  return {
    gtin: st.gtin,
    batch: st.batch,
    machines: [...st.machines],
    operators: [...st.operators],
    events: st.events,
    firstTime: st.firstTime,
    lastTime: st.lastTime,
    closed: st.closed,
  };
}

function batchKey(gtin: string, batch: string): string {
  return `${gtin}\u0000${batch}`;
}

/** A batch's exact set from a checkpoint: each serial decoded as the checkpoint decoder always has (UTF-8 to a string), hashed and added. */
function restoredSet(gtin: string, serials: SerialBytes): SerialSet {
  const set = new SerialSet(serials.count);
  const utf8 = Buffer.from(serials.bytes.buffer, serials.bytes.byteOffset, serials.bytes.byteLength);
  let start = 0;
  for (let i = 0; i < serials.count; i++) {
    const serial = utf8.toString("utf8", start, serials.ends[i]);
    start = serials.ends[i];
    const h = hashPair(gtin, serial);
    set.add(h.h1, h.h2, serial);
  }
  return set;
}

/** `text` is the ASCII `bytes[at, at + length)`. */
function sameText(text: string, bytes: Uint8Array, at: number, length: number): boolean {
  if (text.length !== length) return false;
  for (let i = 0; i < length; i++) if (text.charCodeAt(i) !== bytes[at + i]) return false;
  return true;
}

/** The UTF-16 code units of `text`. */
function codesOf(text: string): Uint16Array {
  const codes = new Uint16Array(text.length);
  for (let i = 0; i < text.length; i++) codes[i] = text.charCodeAt(i);
  return codes;
}

/** `codes` (a text's code units, codesOf) are the ASCII `bytes[at, at + length)`: sameText on the codes. */
function sameCodes(codes: Uint16Array, bytes: Uint8Array, at: number, length: number): boolean {
  if (codes.length !== length) return false;
  for (let i = 0; i < length; i++) if (codes[i] !== bytes[at + i]) return false;
  return true;
}

/** Where `texts` holds the ASCII `bytes[at, at + length)`, or -1. */
function indexOfText(texts: readonly string[], bytes: Uint8Array, at: number, length: number): number {
  for (let i = 0; i < texts.length; i++) if (sameText(texts[i], bytes, at, length)) return i;
  return -1;
}
