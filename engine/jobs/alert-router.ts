/**
 * Where an SPC alert episode event goes in a run: the outputs (ClickHouse, the `alerts` topic,
 * the API's episode lists), the alerts file, NATS `lw.<site>.alert.<machine>.<sensor>`, and the
 * console — which prints episodes, not firings: one line when an episode of medium or high
 * severity opens (or a low one rises to medium), one when such an episode closes (its duration
 * and firings); low episodes are only counted. Updates and acknowledgements are not printed.
 */
import type { Writable } from "node:stream";
import { encode as encodeMsgpack } from "@msgpack/msgpack";
import type { NatsConnection } from "nats";
import type { Outputs } from "./outputs.js";
import type { RotatingFileSink } from "../../connectors/files/mod.js";
import type { AlertEpisodeEvent } from "../../operators/spc/mod.js";

export interface AlertRouterOptions {
  outputs?: Outputs;
  file?: RotatingFileSink;
  nats?: { nc: NatsConnection; site: string; format: "json" | "msgpack" };
  /** Where episodes are printed as they open and close. */
  console?: Writable;
}

export class AlertRouter {
  /** Events routed so far (every kind). */
  count = 0;
  /** Episodes opened and closed so far, and the opened ones too low to print. */
  opened = 0;
  closed = 0;
  lowOpened = 0;
  private readonly enc = new TextEncoder();
  /** Episodes whose opening was printed (their closing is printed too); leave as they close. */
  private readonly printed = new Set<string>();

  constructor(private readonly o: AlertRouterOptions) {
    // The acknowledgement of a closed episode is made on this thread and routed as the others.
    if (o.outputs !== undefined) {
      o.outputs.routeEpisodeEvent = this.route;
      o.outputs.onEpisodesRestored = (events) => this.restored(events);
    }
  }

  /** Episodes open at a restored checkpoint: open here too, and their closing printed when their opening was. */
  restored(events: readonly AlertEpisodeEvent[]): void {
    for (const e of events) {
      this.opened++;
      if (e.severity !== "low") this.printed.add(e.episode_id);
    }
  }

  /** The summary's words: "SPC episodes open 3 (opened 5, 2 of them low; closed 2)". */
  summary(): string {
    return `SPC episodes open ${this.open} (opened ${this.opened}, ${this.lowOpened} of them low; closed ${this.closed})`;
  }

  /** Episodes open now, as this thread knows them (the summary line's). */
  get open(): number {
    return this.opened - this.closed;
  }

  /** Routes one event; bound, so it can be handed over as the analyses' onAlert. */
  readonly route = (event: AlertEpisodeEvent): void => {
    this.o.outputs?.alert(event);
    const line = this.send(event);
    if (this.o.file !== undefined) void this.o.file.write(`${line}\n`);
  };

  /**
   * Routes a batch of events (an ingest worker's, in their order): as `route` each, but the
   * alerts file gets one write of all their lines — a file write per event was most of what an
   * alert cost this thread — and the outputs take them together (their ml_alerts rows one insert).
   */
  readonly routeAll = (events: readonly AlertEpisodeEvent[]): void => {
    this.o.outputs?.alerts(events);
    let lines = "";
    for (const e of events) {
      const line = this.send(e);
      if (this.o.file !== undefined) lines += `${line}\n`;
    }
    if (lines.length > 0) void this.o.file?.write(lines);
  };

  /** Everything of routing but the outputs and the file; the event's JSON line when the file or NATS wants it. */
  private send(event: AlertEpisodeEvent): string {
    this.count++;
    const line = this.o.file !== undefined || this.o.nats?.format === "json" ? JSON.stringify(event) : "";
    if (this.o.nats !== undefined) {
      const { nc, site, format } = this.o.nats;
      const [machine, sensor] = event.key.split("/");
      nc.publish(`lw.${site}.alert.${machine}.${sensor ?? "all"}`, format === "msgpack" ? encodeMsgpack(event) : this.enc.encode(line));
    }
    if (event.event === "opened") this.opened++;
    if (event.event === "closed") this.closed++;
    if (this.o.console !== undefined) this.print(this.o.console, event);
    return line;
  }

  /** The console's line for the event, if any (see the module comment). */
  private print(out: Writable, e: AlertEpisodeEvent): void {
    const id = e.episode_id;
    if (e.event === "closed") {
      if (!this.printed.delete(id)) return;
      const span = (e.closed_at ?? e.last_fired_at) - e.opened_at;
      out.write(
        `EPISODE closed ${e.family} ${e.key} [${e.rules.join(",")}] after ${formatSpan(span)}, ${e.firings} firing${e.firings === 1 ? "" : "s"} (${id})\n`,
      );
      return;
    }
    if (e.severity === "low") {
      if (e.event === "opened") this.lowOpened++;
      return;
    }
    if (this.printed.has(id) || (e.event !== "opened" && e.event !== "updated")) return;
    this.printed.add(id);
    out.write(
      `EPISODE opened ${e.severity.toUpperCase()} ${e.family} ${e.key} [${e.rules.join(",")}] at ${new Date(e.opened_at).toISOString()}: ` +
        `${e.description} (limits v${e.limits_version}; ${id})\n`,
    );
  }
}

/** A duration for people: "850 ms", "42 s", "3.5 min", "2.1 h". */
function formatSpan(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}
