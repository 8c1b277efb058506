/**
 * Alert episode events as one Float64Array and a few strings, for a thread that raises them (an
 * ingest worker) to post to the one that delivers them. A structured clone of the event objects —
 * nested `fields`, `rules` and `points`, up to 32 points each — was a tenth of an ingest worker's
 * time when every few readings raised an event; numbers written into a transferred buffer cost a
 * few stores an event. `decodeAlerts` gives back objects equal to the originals member for
 * member, in the same member order (so their JSON text is the same), -0 kept.
 *
 * Per event, f64, first what changes from event to event: event kind (EVENT_KINDS index),
 * severity (string index), last_fired_at, closed_at (NaN: null), firings, acknowledged_at (NaN:
 * null), acknowledged_by, ack_note (string indices, −1: null), the number of rules r, r string
 * indices; then what an episode keeps from its opening on (its "constant block"): episode_id as
 * two numbers (an id of 16 lowercase hex digits, as episodeId makes them: its high and low 32
 * bits; any other: −1 − its string index, then 0), key, family, first_rule, description (string
 * indices), opened_at, limits_version, cl, sigma, the number of fields f, f × (name, value) string
 * indices, the number of points p, p × (position, time, value). An encoder that is a tracker's
 * sink makes an episode's constant block once and copies it into each of its events (while its
 * string table lasts). The strings of one batch of events travel beside it, each once; an encoder
 * that keeps its strings (an
 * ingest worker's, whose batches go to one {@link AlertDecoder} in order) sends each only in the
 * first batch that uses it — keys, fields, rule names and descriptions are the same batch after
 * batch, and cloning them with every post was most of its cost — and starts over (from string 0)
 * once it holds STRINGS_KEPT_MAX, so its table stays bounded (acknowledgement notes are free text).
 */
import type { AlertEpisodeEvent, AlertSeverity, EpisodeEventKind, EpisodeEventSink, SunkEpisode } from "./alerts.js";
import { hexId, hexWord } from "./episode-id.js";

export interface EncodedAlerts {
  /** The events' numbers; its buffer may be transferred. */
  numbers: Float64Array;
  /** The strings new in this batch: string numbers `stringsFrom` on (0: the table starts over with them). */
  strings: string[];
  stringsFrom: number;
}

/** Strings an encoder that keeps them holds at most before it starts over. */
export const STRINGS_KEPT_MAX = 4096;

const EVENT_KINDS: readonly EpisodeEventKind[] = ["opened", "updated", "closed", "acknowledged"];

/** Numbers of an event's changing members without its rules (their count included). */
const CHANGING = 9;
/** Numbers of a constant block without its fields and points (their counts included). */
const CONSTANT = 12;

export class AlertEncoder implements EpisodeEventSink {
  private numbers = new Float64Array(4096);
  private length = 0;
  /** Strings not yet taken, the first of them string number `stringsFrom`. */
  private strings: string[] = [];
  private stringsFrom = 0;
  private readonly stringIds = new Map<string, number>();
  /** Counts the string table's fresh starts: an episode's constant block holds string numbers of one of them. */
  private generation = 0;

  /** Events added since the last `take`. */
  count = 0;

  /** Numbers (f64) held for the next `take`. */
  get numbersHeld(): number {
    return this.length;
  }

  /** `keepStrings`: a string goes out once (its batches are decoded in order by one AlertDecoder); else each batch has all of its own. */
  constructor(private readonly keepStrings = false) {}

  add(e: AlertEpisodeEvent): void {
    const id = e.episode_id;
    const hi = id.length === 16 ? hexWord(id, 0) : -1;
    const lo = hi >= 0 ? hexWord(id, 8) : -1;
    this.event(e, e.event, this.constantBlock(e, lo >= 0 ? hi : -1, lo));
  }

  /** An event of `kind` of a tracker's episode (its sink: the state is read now, its constant block made once). */
  write(episode: SunkEpisode, kind: EpisodeEventKind): void {
    let block = episode.sinkData as ConstantBlock | undefined;
    if (block === undefined || block.generation !== this.generation) {
      block = { generation: this.generation, numbers: this.constantBlock(episode.event, episode.idHi, episode.idLo) };
      episode.sinkData = block;
    }
    this.event(episode.event, kind, block.numbers);
  }

  /** The event's changing members, then its episode's constant block. */
  private event(e: Readonly<AlertEpisodeEvent>, kind: EpisodeEventKind, block: readonly number[]): void {
    const rules = e.rules;
    this.room(CHANGING + rules.length + block.length);
    const n = this.numbers;
    let at = this.length;
    n[at++] = kindIndex(kind);
    n[at++] = this.id(e.severity);
    n[at++] = e.last_fired_at;
    n[at++] = e.closed_at === null ? Number.NaN : e.closed_at;
    n[at++] = e.firings;
    n[at++] = e.acknowledged_at === null ? Number.NaN : e.acknowledged_at;
    n[at++] = e.acknowledged_by === null ? -1 : this.id(e.acknowledged_by);
    n[at++] = e.ack_note === null ? -1 : this.id(e.ack_note);
    n[at++] = rules.length;
    for (let i = 0; i < rules.length; i++) n[at++] = this.id(rules[i]);
    for (let i = 0; i < block.length; i++) n[at++] = block[i];
    this.length = at;
    this.count++;
  }

  /** The members an episode keeps from its opening on, as numbers (string numbers of this generation); `hi` −1: the id as a string. */
  private constantBlock(e: Readonly<AlertEpisodeEvent>, hi: number, lo: number): number[] {
    const fields = Object.keys(e.fields);
    const points = e.points;
    // A plain array: a Float64Array of this size would have a backing store of its own (malloc'd, swept by the GC).
    const b: number[] = new Array(CONSTANT + 2 * fields.length + 3 * points.length).fill(0);
    // An id is new with each episode: as numbers it needs no entry in the string table (nor a clone).
    b[0] = hi >= 0 ? hi : -1 - this.id(e.episode_id);
    b[1] = hi >= 0 ? lo : 0;
    b[2] = this.id(e.key);
    b[3] = this.id(e.family);
    b[4] = this.id(e.first_rule);
    b[5] = this.id(e.description);
    b[6] = e.opened_at;
    b[7] = e.limits_version;
    b[8] = e.cl;
    b[9] = e.sigma;
    let at = 10;
    b[at++] = fields.length;
    for (const f of fields) {
      b[at++] = this.id(f);
      b[at++] = this.id(e.fields[f]);
    }
    b[at++] = points.length;
    for (const p of points) {
      b[at++] = p.position;
      b[at++] = p.time;
      b[at++] = p.value;
    }
    return b;
  }

  /** The events added since the last call (null: none), in their own buffer; the encoder starts over. */
  take(): EncodedAlerts | null {
    if (this.count === 0) return null;
    const out = { numbers: this.numbers.slice(0, this.length), strings: this.strings, stringsFrom: this.stringsFrom };
    this.length = 0;
    this.count = 0;
    this.strings = [];
    this.stringsFrom += out.strings.length;
    if (!this.keepStrings || this.stringsFrom >= STRINGS_KEPT_MAX) {
      this.stringsFrom = 0;
      this.stringIds.clear();
      this.generation++;
    }
    return out;
  }

  private id(s: string): number {
    let id = this.stringIds.get(s);
    if (id === undefined) {
      id = this.stringsFrom + this.strings.length;
      this.strings.push(s);
      this.stringIds.set(s, id);
    }
    return id;
  }

  private room(more: number): void {
    if (this.length + more <= this.numbers.length) return;
    const grown = new Float64Array(Math.max(2 * this.numbers.length, this.length + more));
    grown.set(this.numbers.subarray(0, this.length));
    this.numbers = grown;
  }
}

/** An episode's constant block and the string-table generation its string numbers belong to. */
interface ConstantBlock {
  generation: number;
  numbers: number[];
}

function kindIndex(kind: EpisodeEventKind): number {
  return kind === "opened" ? 0 : kind === "updated" ? 1 : kind === "closed" ? 2 : 3;
}

/**
 * The batches of one encoder, in the order taken, as the objects that were added: it keeps the
 * strings of the batches so far (those of an encoder that keeps its strings come once).
 */
export class AlertDecoder {
  private strings: string[] = [];

  decode(a: EncodedAlerts): AlertEpisodeEvent[] {
    this.skip(a);
    return decodeWith(a.numbers, this.strings);
  }

  /** Takes in the batch's strings only (its events are not wanted; the batches after it may use them). */
  skip(a: EncodedAlerts): void {
    if (a.stringsFrom === 0) this.strings = [];
    if (a.stringsFrom !== this.strings.length)
      throw new Error(`alert events out of order: their strings start at ${a.stringsFrom}, ${this.strings.length} known`);
    for (const s of a.strings) this.strings.push(s);
  }
}

/** The events of one batch of {@link AlertEncoder.take} that starts the string table (any of an encoder that does not keep its strings). */
export function decodeAlerts(a: EncodedAlerts): AlertEpisodeEvent[] {
  return new AlertDecoder().decode(a);
}

function decodeWith(n: Float64Array, s: readonly string[]): AlertEpisodeEvent[] {
  const out: AlertEpisodeEvent[] = [];
  for (let at = 0; at < n.length; ) {
    const r = n[at + 8];
    const rules: string[] = [];
    for (let i = 0; i < r; i++) rules.push(s[n[at + CHANGING + i]]);
    const c = at + CHANGING + r;
    const event = decodeEvent(n, s, at, c, rules);
    const f = n[c + 10];
    at = c + 11;
    for (let i = 0; i < f; i++, at += 2) event.fields[s[n[at]]] = s[n[at + 1]];
    const p = n[at++];
    for (let i = 0; i < p; i++, at += 3) event.points.push({ position: n[at], time: n[at + 1], value: n[at + 2] });
    out.push(event);
  }
  return out;
}

/** An event's members (fields and points still empty) from its changing numbers at `at` and its constant block at `c`. */
function decodeEvent(n: Float64Array, s: readonly string[], at: number, c: number, rules: string[]): AlertEpisodeEvent {
  const id = n[c];
  return {
    type: "alert_episode",
    event: EVENT_KINDS[n[at]],
    episode_id: id >= 0 ? hexId(id, n[c + 1]) : s[-1 - id],
    key: s[n[c + 2]],
    fields: {},
    family: s[n[c + 3]],
    rules,
    first_rule: s[n[c + 4]],
    description: s[n[c + 5]],
    severity: s[n[at + 1]] as AlertSeverity,
    opened_at: n[c + 6],
    last_fired_at: n[at + 2],
    closed_at: orNull(n[at + 3]),
    firings: n[at + 4],
    limits_version: n[c + 7],
    cl: n[c + 8],
    sigma: n[c + 9],
    points: [],
    acknowledged_at: orNull(n[at + 5]),
    acknowledged_by: textOrNull(s, n[at + 6]),
    ack_note: textOrNull(s, n[at + 7]),
  };
}

function orNull(x: number): number | null {
  return Number.isNaN(x) ? null : x;
}

function textOrNull(s: readonly string[], x: number): string | null {
  return x < 0 ? null : s[x];
}
