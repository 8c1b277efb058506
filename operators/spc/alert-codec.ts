/**
 * SPC alert events as one Float64Array and a few strings, for a thread that raises them (an ingest
 * worker) to post to the one that delivers them. A structured clone of the event objects — nested
 * `fields` and `points` objects, up to 32 points each — was a tenth of an ingest worker's time on
 * the simulator's frames (an alert opens or closes every 14 readings there); numbers written into
 * a transferred buffer cost a few stores an event. `decodeAlerts` gives back objects equal to the
 * originals member for member, in the same member order (so their JSON text is the same), -0 kept.
 *
 * Per event, f64: state (0 open, 1 closed), key, rule, also (−1: null), description, severity
 * (string indices), limits_version, cl, sigma, opened_at, closed_at (NaN: null), firings, the
 * number of fields f, f × (name, value) string indices, the number of points p, p × (position,
 * time, value). The strings of one batch of events travel beside it, each once.
 */
import type { AlertSeverity, SpcAlertEvent } from "./alerts.js";

export interface EncodedAlerts {
  /** The events' numbers; its buffer may be transferred. */
  numbers: Float64Array;
  strings: string[];
}

/** Numbers of an event with no fields and no points. */
const FIXED = 14;

export class AlertEncoder {
  private numbers = new Float64Array(4096);
  private length = 0;
  private strings: string[] = [];
  private readonly stringIds = new Map<string, number>();

  /** Events added since the last `take`. */
  count = 0;

  add(e: SpcAlertEvent): void {
    const fields = Object.keys(e.fields);
    this.room(FIXED + 2 * fields.length + 3 * e.points.length);
    const n = this.numbers;
    let at = this.length;
    n[at++] = e.state === "open" ? 0 : 1;
    n[at++] = this.id(e.key);
    n[at++] = this.id(e.rule);
    n[at++] = e.also === null ? -1 : this.id(e.also);
    n[at++] = this.id(e.description);
    n[at++] = this.id(e.severity);
    n[at++] = e.limits_version;
    n[at++] = e.cl;
    n[at++] = e.sigma;
    n[at++] = e.opened_at;
    n[at++] = e.closed_at === null ? Number.NaN : e.closed_at;
    n[at++] = e.firings;
    n[at++] = fields.length;
    for (const f of fields) {
      n[at++] = this.id(f);
      n[at++] = this.id(e.fields[f]);
    }
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
    const out = { numbers: this.numbers.slice(0, this.length), strings: this.strings };
    this.length = 0;
    this.count = 0;
    this.strings = [];
    this.stringIds.clear();
    return out;
  }

  private id(s: string): number {
    let id = this.stringIds.get(s);
    if (id === undefined) {
      id = this.strings.length;
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

/** The events of {@link AlertEncoder.take}, as the objects that were added. */
export function decodeAlerts(a: EncodedAlerts): SpcAlertEvent[] {
  const n = a.numbers;
  const s = a.strings;
  const out: SpcAlertEvent[] = [];
  for (let at = 0; at < n.length; ) {
    const state = n[at] === 0 ? "open" : "closed";
    const key = s[n[at + 1]];
    const rule = s[n[at + 2]];
    const also = n[at + 3] < 0 ? null : s[n[at + 3]];
    const description = s[n[at + 4]];
    const severity = s[n[at + 5]] as AlertSeverity;
    const closed = n[at + 10];
    const event: SpcAlertEvent = {
      type: "spc_alert",
      state,
      key,
      fields: {},
      rule,
      also,
      description,
      severity,
      limits_version: n[at + 6],
      cl: n[at + 7],
      sigma: n[at + 8],
      opened_at: n[at + 9],
      closed_at: Number.isNaN(closed) ? null : closed,
      firings: n[at + 11],
      points: [],
    };
    const f = n[at + 12];
    at += 13;
    for (let i = 0; i < f; i++, at += 2) event.fields[s[n[at]]] = s[n[at + 1]];
    const p = n[at++];
    for (let i = 0; i < p; i++, at += 3) event.points.push({ position: n[at], time: n[at + 1], value: n[at + 2] });
    out.push(event);
  }
  return out;
}
