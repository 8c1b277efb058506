/**
 * Where an SPC alert event goes in a run: the outputs (ClickHouse, the `alerts` topic, the API's
 * open-alert list), the alerts file, NATS `lw.<site>.alert.<machine>.<sensor>`, and — for
 * high-severity alerts as they open — a line on the console.
 */
import type { Writable } from "node:stream";
import { encode as encodeMsgpack } from "@msgpack/msgpack";
import type { NatsConnection } from "nats";
import type { Outputs } from "./outputs.js";
import type { RotatingFileSink } from "../../connectors/files/mod.js";
import type { SpcAlertEvent } from "../../operators/spc/mod.js";

export interface AlertRouterOptions {
  outputs?: Outputs;
  file?: RotatingFileSink;
  nats?: { nc: NatsConnection; site: string; format: "json" | "msgpack" };
  /** Where opening high-severity alerts are printed. */
  console?: Writable;
}

export class AlertRouter {
  /** Events routed so far (opened and closed). */
  count = 0;
  private readonly enc = new TextEncoder();

  constructor(private readonly o: AlertRouterOptions) {}

  /** Routes one event; bound, so it can be handed over as the analyses' onAlert. */
  readonly route = (event: SpcAlertEvent): void => {
    const line = this.send(event);
    if (this.o.file !== undefined) void this.o.file.write(`${line}\n`);
  };

  /**
   * Routes a batch of events (an ingest worker's, in their order): as `route` each, but the
   * alerts file gets one write of all their lines — a file write per event was most of what an
   * alert cost this thread.
   */
  readonly routeAll = (events: readonly SpcAlertEvent[]): void => {
    let lines = "";
    for (const e of events) {
      const line = this.send(e);
      if (this.o.file !== undefined) lines += `${line}\n`;
    }
    if (lines.length > 0) void this.o.file?.write(lines);
  };

  /** Everything of routing but the file; the event's JSON line when the file or NATS wants it. */
  private send(event: SpcAlertEvent): string {
    this.count++;
    this.o.outputs?.alert(event);
    const line = this.o.file !== undefined || this.o.nats?.format === "json" ? JSON.stringify(event) : "";
    if (this.o.nats !== undefined) {
      const { nc, site, format } = this.o.nats;
      const [machine, sensor] = event.key.split("/");
      nc.publish(`lw.${site}.alert.${machine}.${sensor ?? "all"}`, format === "msgpack" ? encodeMsgpack(event) : this.enc.encode(line));
    }
    if (this.o.console !== undefined && event.state === "open" && event.severity === "high") {
      this.o.console.write(
        `ALERT ${event.rule} ${event.key} ${new Date(event.opened_at).toISOString()}: ${event.description} (limits v${event.limits_version})\n`,
      );
    }
    return line;
  }
}
