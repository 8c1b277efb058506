/**
 * Where the live serial job's results go (issue 8): each flagged event to `ml_serial_detections`
 * and the `line/<line>` topic; each quarantined occurrence, and each release, to `ml_quarantine`,
 * the `quarantine` topic and the NATS subject `lw.<site>.quarantine`; the quarantine list itself
 * served to the HTTP API (list, release) and kept in sync with a quarantine file that `linewatch
 * serial quarantine list|release` reads and edits while the run goes on.
 *
 * The quarantine messages (topic and subject) are JSON objects (MessagePack on NATS with
 * `format: "msgpack"`): the entry's fields (operators/serial/quarantine.ts) plus `action`,
 * `"quarantined"` (this occurrence: its time, score and reasons, `occurrences` so far, `kept`) or
 * `"released"` (the entry with `released_at` and `release_note`).
 *
 * `ml_quarantine` keys an entry by its first quarantined occurrence (production time and source
 * position, `seq`), never by the wall-clock quarantine time, so a restart from a checkpoint that
 * quarantines it again writes the same row: every further occurrence writes the entry again with
 * more occurrences (a higher version), a release writes it with `released_at` (version + 2^32),
 * so `FINAL` shows each entry's latest state.
 *
 * The file: at start its entries join the list (the API can release them); every
 * `fileSyncIntervalMs` (and at once after an API release) releases made in the file by
 * `linewatch serial quarantine release` are applied to the list — with their outputs — and the
 * list is written back (atomically) with the file's released history kept.
 */
import { existsSync, renameSync, statSync, writeFileSync } from "node:fs";
import { encode as encodeMsgpack } from "@msgpack/msgpack";
import type { NatsConnection } from "nats";
import type { Logger } from "../core/mod.js";
import type { ClickHouseRows, ClickHouseTable, QuarantineRow, SerialDetectionRow } from "../../connectors/clickhouse/mod.js";
import {
  type QuarantineProvider,
  METRIC,
  type MetricsRegistry,
  defineEngineMetrics,
  TOPIC_QUARANTINE,
  isValidTopic,
  lineTopic,
} from "../../connectors/live/mod.js";
import type { RowContext } from "../../operators/mod.js";
import {
  SERIAL_COL as C,
  decodeSerialPayload,
  DEFAULT_QUARANTINE_ENTRIES_MAX,
  QuarantineList,
  type QuarantineEntry,
  type QuarantineEvent,
  type QuarantineFile,
  type ReleasedEntry,
  RISK_LEVELS,
  anomalyTypesOf,
  reasonsOf,
} from "../../operators/serial/mod.js";

/** What the serial outputs write through; every part is optional (a run without ClickHouse, …). */
export interface SerialOutputTargets {
  /** The run's ClickHouse sink (connectors/clickhouse-sink.ts). */
  sink?: { write<T extends ClickHouseTable>(table: T, rows: readonly ClickHouseRows[T][]): Promise<void> } | null;
  /** The run's live server (WebSocket topics). */
  live?: { publish(topic: string, data: unknown): number } | null;
  /** NATS: quarantine messages on `lw.<site>.quarantine`. */
  nats?: { nc: NatsConnection; site: string; format: "json" | "msgpack" };
  /** Where the serial series go (the live server's registry). */
  registry?: MetricsRegistry;
  /** The quarantine list file (`--serial-quarantine`), kept in sync while running. */
  quarantineFile?: string;
  fileSyncIntervalMs?: number;
  /** Releases, the quarantine file, failed writes (component "serial"). */
  log: Logger;
}

/** Counts of a serial job, read at every scrape (deltas go to the counters). */
export interface SerialJobCounts {
  eventsIn: number;
  eventsOut: number;
  /** Dead letters by reason (the NATS input). */
  deadLetters?: Record<string, number>;
}

/** Rows buffered before they are handed to ClickHouse (also handed over at every flush). */
const ROWS_PER_WRITE = 2048;
/** Writes handed to the sink and not yet durable before a non-durable flush waits for them. */
const WRITES_IN_FLIGHT_MAX = 64;

export class SerialOutputs implements QuarantineProvider {
  /** Flagged events, quarantined occurrences and releases so far. */
  readonly counts = { detections: 0, quarantined: 0, released: 0, writeErrors: 0 };
  private detections: SerialDetectionRow[] = [];
  private quarantineRows: QuarantineRow[] = [];
  private pending: Array<Promise<void>> = [];
  private readonly enc = new TextEncoder();
  private readonly subject: string | null;
  private readonly releasedHere: ReleasedEntry[] = [];
  private fileTimer: NodeJS.Timeout | null = null;
  private fileMtime = 0;
  /** The list changed since the file was last written. */
  private dirty = false;
  private readonly series;
  private readonly log: Logger;

  constructor(
    readonly quarantine: QuarantineList,
    private readonly t: SerialOutputTargets,
  ) {
    this.subject = t.nats === undefined ? null : `lw.${t.nats.site}.quarantine`;
    this.log = t.log.child({ component: "serial" });
    const r = t.registry;
    this.series =
      r === undefined
        ? null
        : {
            engine: defineEngineMetrics(r),
            detections: r.counter({
              name: SERIAL_METRIC.detections,
              help: "Serial events the serial analysis flagged, by risk level.",
              labelNames: ["risk_level"],
            }),
            quarantined: r.counter({
              name: SERIAL_METRIC.quarantined,
              help: "Serial events quarantined (occurrences, at the quarantine level or above).",
            }),
            released: r.counter({ name: SERIAL_METRIC.released, help: "Quarantine entries released (API or quarantine file)." }),
            entries: r.gauge({
              name: SERIAL_METRIC.entries,
              help: "Serials on the quarantine list now.",
              collect: (g) => g.set(this.quarantine.size),
            }),
          };
    if (t.quarantineFile !== undefined) {
      this.adoptFile(t.quarantineFile);
      this.fileTimer = setInterval(() => this.syncFileLogged(), t.fileSyncIntervalMs ?? 2000);
      this.fileTimer.unref();
    }
  }

  /** Exports a job's counts as `linewatch_records_in_total{source}`, `…_out_total{analysis="serial"}`, `linewatch_dead_letter_total{reason}`. */
  attachCounts(source: string, counts: () => SerialJobCounts): void {
    const s = this.series;
    if (s === null || this.t.registry === undefined) return;
    const last = { in: 0, out: 0, dead: new Map<string, number>() };
    this.t.registry.onCollect(() => {
      const c = counts();
      s.engine.recordsIn.labels({ source }).inc(c.eventsIn - last.in);
      s.engine.recordsOut.labels({ analysis: "serial" }).inc(c.eventsOut - last.out);
      last.in = c.eventsIn;
      last.out = c.eventsOut;
      for (const [reason, n] of Object.entries(c.deadLetters ?? {})) {
        const before = last.dead.get(reason) ?? 0;
        if (n > before) s.engine.deadLetter.labels({ reason }).inc(n - before);
        last.dead.set(reason, n);
      }
    });
  }

  /** A scored event whose anomaly score is above 0 (call after the analysis observed the row). */
  detection(row: Float64Array, ctx: RowContext, payload: Uint8Array): void {
    const d = decodeSerialPayload(payload);
    const flags = row[C.flags] >>> 0;
    const risk = RISK_LEVELS[row[C.risk]];
    const detection: SerialDetectionRow = {
      serial_number: d.serial,
      gtin: d.gtin,
      batch_number: d.batch,
      machine_id: d.machine,
      operator_id: d.operator,
      detected_at: ctx.time,
      seq: ctx.position,
      anomaly_types: anomalyTypesOf(flags),
      reasons: reasonsOf(flags),
      anomaly_score: row[C.anomaly_score],
      confidence_level: row[C.confidence_level],
      risk_level: risk,
      quarantined: row[C.quarantine] === 1,
    };
    this.counts.detections++;
    this.series?.detections.labels({ risk_level: risk }).inc();
    // A line id that NATS accepts may still not be a topic level (`/`, `+`, `#`): no line topic then.
    if (this.t.live != null && isValidTopic(`line/${d.machine}`))
      this.t.live.publish(lineTopic(d.machine), { type: "serial_detection", ...detection });
    if (this.t.sink != null) {
      this.detections.push(detection);
      if (this.detections.length >= ROWS_PER_WRITE) this.writeRows();
    }
  }

  /** One quarantined occurrence (the analysis's onQuarantine). */
  quarantined(e: QuarantineEvent): void {
    this.counts.quarantined++;
    this.dirty = true;
    this.series?.quarantined.inc();
    this.announce({ action: "quarantined", ...e });
    const entry = this.quarantine.entry(e.gtin, e.serial_number);
    this.queueQuarantineRow(entry ?? e, null);
  }

  /** The API: the quarantine list now. */
  list(): QuarantineEntry[] {
    return this.quarantine.list();
  }

  /** The API: releases the serial's entries (of `gtin` when given); empty when none (404). */
  release(serial: string, request: { gtin?: string; note?: string }): ReleasedEntry[] {
    const released = this.quarantine.release(serial, request.gtin, request.note);
    for (const r of released) this.releasedOutputs(r, "API");
    if (released.length > 0 && this.t.quarantineFile !== undefined) this.syncFileLogged();
    return released;
  }

  /**
   * Hands buffered rows to ClickHouse; `durable`: waits until everything so far is durable (and
   * on the NATS server) — what a JetStream ack needs. Otherwise waits only when more than
   * {@link WRITES_IN_FLIGHT_MAX} writes are pending (bounded memory; the sink batches by time).
   */
  async flush(durable = true): Promise<void> {
    this.writeRows();
    if (!durable) {
      if (this.pending.length > WRITES_IN_FLIGHT_MAX) await Promise.all(this.pending.splice(0));
      return;
    }
    await Promise.all(this.pending.splice(0));
    if (this.t.nats !== undefined) {
      try {
        await this.t.nats.nc.flush();
      } catch (error) {
        this.log.warn({ err: error, subject: this.subject }, "flush of quarantine messages to NATS failed");
      }
    }
  }

  /** Flushes and writes the quarantine file a last time. */
  async close(): Promise<void> {
    if (this.fileTimer !== null) clearInterval(this.fileTimer);
    this.fileTimer = null;
    await this.flush();
    if (this.t.quarantineFile !== undefined) this.syncFileLogged();
  }

  /**
   * Applies releases made in the quarantine file since the last look, then writes the list back
   * (what other runs left in the file is kept). Returns the entries released from the file.
   */
  syncFile(): ReleasedEntry[] {
    const path = this.t.quarantineFile;
    if (path === undefined) return [];
    const file = QuarantineList.load(path, Math.max(this.quarantine.entriesMax, DEFAULT_QUARANTINE_ENTRIES_MAX));
    const fromFile: ReleasedEntry[] = [];
    const known = new Set(this.releasedHere.map(releaseKey));
    for (const r of file.releasedEntries()) {
      const mine = this.quarantine.entry(r.gtin, r.serial_number);
      if (mine === undefined || mine.quarantined_at !== r.quarantined_at || known.has(releaseKey(r))) continue;
      for (const done of this.quarantine.release(r.serial_number, r.gtin, r.release_note, new Date(r.released_at))) {
        fromFile.push(done);
        this.releasedOutputs(done, `file ${path}`);
      }
    }
    // Entries another process added to the file join the list; ours are written as they are now.
    const releasedKeys = new Set(this.releasedHere.map(entryKey));
    for (const e of file.list()) if (!releasedKeys.has(entryKey(e))) this.quarantine.put(e);
    const released = new Map<string, ReleasedEntry>();
    for (const r of [...file.releasedEntries(), ...this.releasedHere]) released.set(releaseKey(r), r);
    const out: QuarantineFile = { version: 1, entries: this.quarantine.list(), released: [...released.values()] };
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(out, null, 1)}\n`);
    renameSync(tmp, path);
    this.fileMtime = statSync(path).mtimeMs;
    this.dirty = false;
    return fromFile;
  }

  // ---- internals ----

  /** The file's current entries join the list at start, so the API lists and releases them too. */
  private adoptFile(path: string): void {
    if (!existsSync(path)) return;
    const file = QuarantineList.load(path, Math.max(this.quarantine.entriesMax, DEFAULT_QUARANTINE_ENTRIES_MAX));
    let adopted = 0;
    for (const e of file.list()) if (this.quarantine.put(e)) adopted++;
    this.fileMtime = statSync(path).mtimeMs;
    if (adopted > 0) this.log.info({ adopted, file: path }, "quarantined serials from the file are on the list");
  }

  private syncFileLogged(): void {
    try {
      const path = this.t.quarantineFile as string;
      // Written when the list changed or someone edited the file; a large list is not rewritten every interval.
      const edited = existsSync(path) && statSync(path).mtimeMs !== this.fileMtime;
      if (!edited && !this.dirty) return;
      this.syncFile();
    } catch (error) {
      this.log.error({ file: this.t.quarantineFile, err: error }, "quarantine file not synced");
    }
  }

  private releasedOutputs(r: ReleasedEntry, by: string): void {
    this.releasedHere.push(r);
    this.dirty = true;
    this.counts.released++;
    this.series?.released.inc();
    this.announce({ action: "released", ...r });
    this.queueQuarantineRow(r, r);
    this.log.info({ gtin: r.gtin, serial_number: r.serial_number, by, release_note: r.release_note }, "released from quarantine");
  }

  /** The `quarantine` topic and `lw.<site>.quarantine`. */
  private announce(message: Record<string, unknown>): void {
    this.t.live?.publish(TOPIC_QUARANTINE, message);
    if (this.t.nats !== undefined && this.subject !== null) {
      const data = this.t.nats.format === "msgpack" ? encodeMsgpack(message) : this.enc.encode(JSON.stringify(message));
      this.t.nats.nc.publish(this.subject, data);
    }
  }

  private queueQuarantineRow(e: QuarantineEntry, released: ReleasedEntry | null): void {
    if (this.t.sink == null) return;
    this.quarantineRows.push({
      serial_number: e.serial_number,
      gtin: e.gtin,
      batch_number: e.batch_number,
      machine_id: e.machine_id,
      operator_id: e.operator_id,
      production_at: e.production_time,
      seq: e.row,
      quarantined_at: Date.parse(e.quarantined_at),
      released_at: released === null ? null : Date.parse(released.released_at),
      release_note: released?.release_note,
      anomaly_types: e.anomaly_types,
      reasons: e.reasons,
      anomaly_score: e.anomaly_score,
      confidence_level: e.confidence_level,
      risk_level: e.risk_level,
      occurrences: e.occurrences,
    });
    if (this.quarantineRows.length >= ROWS_PER_WRITE) this.writeRows();
  }

  private writeRows(): void {
    const sink = this.t.sink;
    if (sink == null) return;
    if (this.detections.length > 0) this.track(sink.write("ml_serial_detections", this.detections.splice(0)));
    if (this.quarantineRows.length > 0) this.track(sink.write("ml_quarantine", this.quarantineRows.splice(0)));
  }

  private track(p: Promise<void>): void {
    this.pending.push(
      p.catch((e: Error) => {
        this.counts.writeErrors++;
        this.log.error({ err: e }, "serial rows not written to ClickHouse");
      }),
    );
  }
}

/** The serial job's own series (besides records in/out and dead letters, which are the engine's). */
export const SERIAL_METRIC = Object.freeze({
  detections: "linewatch_serial_detections_total",
  quarantined: "linewatch_serial_quarantined_total",
  released: "linewatch_serial_released_total",
  entries: "linewatch_serial_quarantine_entries",
  deadLetter: METRIC.deadLetter,
});

function entryKey(e: QuarantineEntry): string {
  return `${e.gtin}\u0000${e.serial_number}\u0000${e.quarantined_at}`;
}

function releaseKey(r: ReleasedEntry): string {
  return `${entryKey(r)}\u0000${r.released_at}`;
}
