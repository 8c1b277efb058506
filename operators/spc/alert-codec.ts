/**
 * Alert episode events as one Float64Array and a few strings, for a thread that raises them (an
 * ingest worker) to post to the one that delivers them. A structured clone of the event objects —
 * nested `fields`, `rules` and `points`, up to 32 points each — was a tenth of an ingest worker's
 * time when every few readings raised an event; numbers written into a transferred buffer cost a
 * few stores an event. `decodeAlerts` gives back objects equal to the originals member for
 * member, in the same member order (so their JSON text is the same), -0 kept.
 *
 * Per event, f64: event kind (EVENT_KINDS index), episode_id as two numbers (an id of 16
 * lowercase hex digits, as episodeId makes them: its high and low 32 bits; any other: −1 − its
 * string index, then 0), key, family, first_rule, description, severity (string indices), opened_at, last_fired_at, closed_at (NaN: null),
 * firings, limits_version, cl, sigma, acknowledged_at (NaN: null), acknowledged_by, ack_note
 * (string indices, −1: null), the number of fields f, f × (name, value) string indices, the number
 * of rules r, r string indices, the number of points p, p × (position, time, value). The strings
 * of one batch of events travel beside it, each once; an encoder that keeps its strings (an
 * ingest worker's, whose batches go to one {@link AlertDecoder} in order) sends each only in the
 * first batch that uses it — keys, fields, rule names and descriptions are the same batch after
 * batch, and cloning them with every post was most of its cost — and starts over (from string 0)
 * once it holds STRINGS_KEPT_MAX, so its table stays bounded (acknowledgement notes are free text).
 */
import type { AlertEpisodeEvent, AlertSeverity, EpisodeEventKind, EpisodeEventSink } from "./alerts.js";
import { hex32, hexWord } from "./episode-id.js";

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

/** Numbers of an event with no fields, rules or points. */
const FIXED = 21;

export class AlertEncoder implements EpisodeEventSink {
  private numbers = new Float64Array(4096);
  private length = 0;
  /** Strings not yet taken, the first of them string number `stringsFrom`. */
  private strings: string[] = [];
  private stringsFrom = 0;
  private readonly stringIds = new Map<string, number>();

  /** Events added since the last `take`. */
  count = 0;

  /** `keepStrings`: a string goes out once (its batches are decoded in order by one AlertDecoder); else each batch has all of its own. */
  constructor(private readonly keepStrings = false) {}

  add(e: AlertEpisodeEvent): void {
    this.write(e, e.event);
  }

  /** An event of `kind` from an episode's state (a tracker's sink: the state is read now, not kept). */
  write(e: Readonly<AlertEpisodeEvent>, kind: EpisodeEventKind): void {
    const fields = Object.keys(e.fields);
    this.room(FIXED + 2 * fields.length + e.rules.length + 3 * e.points.length);
    const n = this.numbers;
    let at = this.length;
    n[at++] = EVENT_KINDS.indexOf(kind);
    // An id is new with each episode: as numbers it needs no entry in the string table (nor a clone).
    const hi = hexWord(e.episode_id, 0);
    const lo = hexWord(e.episode_id, 8);
    if (e.episode_id.length === 16 && hi >= 0 && lo >= 0) {
      n[at++] = hi;
      n[at++] = lo;
    } else {
      n[at++] = -1 - this.id(e.episode_id);
      n[at++] = 0;
    }
    n[at++] = this.id(e.key);
    n[at++] = this.id(e.family);
    n[at++] = this.id(e.first_rule);
    n[at++] = this.id(e.description);
    n[at++] = this.id(e.severity);
    n[at++] = e.opened_at;
    n[at++] = e.last_fired_at;
    n[at++] = e.closed_at === null ? Number.NaN : e.closed_at;
    n[at++] = e.firings;
    n[at++] = e.limits_version;
    n[at++] = e.cl;
    n[at++] = e.sigma;
    n[at++] = e.acknowledged_at === null ? Number.NaN : e.acknowledged_at;
    n[at++] = e.acknowledged_by === null ? -1 : this.id(e.acknowledged_by);
    n[at++] = e.ack_note === null ? -1 : this.id(e.ack_note);
    n[at++] = fields.length;
    for (const f of fields) {
      n[at++] = this.id(f);
      n[at++] = this.id(e.fields[f]);
    }
    n[at++] = e.rules.length;
    for (const r of e.rules) n[at++] = this.id(r);
    n[at++] = e.points.length;
    for (const p of e.points) {
      n[at++] = p.position;
      n[at++] = p.time;
      n[at++] = p.value;
    }
    this.length = at;
    this.count++;
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
  const orNull = (x: number): number | null => (Number.isNaN(x) ? null : x);
  const textOrNull = (x: number): string | null => (x < 0 ? null : s[x]);
  for (let at = 0; at < n.length; ) {
    const id = n[at + 1];
    const event: AlertEpisodeEvent = {
      type: "alert_episode",
      event: EVENT_KINDS[n[at]],
      episode_id: id >= 0 ? hex32(id) + hex32(n[at + 2]) : s[-1 - id],
      key: s[n[at + 3]],
      fields: {},
      family: s[n[at + 4]],
      rules: [],
      first_rule: s[n[at + 5]],
      description: s[n[at + 6]],
      severity: s[n[at + 7]] as AlertSeverity,
      opened_at: n[at + 8],
      last_fired_at: n[at + 9],
      closed_at: orNull(n[at + 10]),
      firings: n[at + 11],
      limits_version: n[at + 12],
      cl: n[at + 13],
      sigma: n[at + 14],
      points: [],
      acknowledged_at: orNull(n[at + 15]),
      acknowledged_by: textOrNull(n[at + 16]),
      ack_note: textOrNull(n[at + 17]),
    };
    const f = n[at + 18];
    at += 19;
    for (let i = 0; i < f; i++, at += 2) event.fields[s[n[at]]] = s[n[at + 1]];
    const r = n[at++];
    for (let i = 0; i < r; i++) event.rules.push(s[n[at++]]);
    const p = n[at++];
    for (let i = 0; i < p; i++, at += 3) event.points.push({ position: n[at], time: n[at + 1], value: n[at + 2] });
    out.push(event);
  }
  return out;
}
