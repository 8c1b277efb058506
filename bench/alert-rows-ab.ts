/**
 * ml_alerts rows on the main thread, the two encodings side by side (`node
 * dist/bench/alert-rows-ab.js [--rounds n]`): as the sink's `write` encodes them — a row object
 * per event (its points as an array), its JSONEachRow line, pushed into the batch's line buffer —
 * against engine/jobs/alert-rows.ts — a batch of events (an ingest worker's) as RowBinary rows, an
 * SPC episode's points text made once while it is open. Thread CPU ns per event, alternately
 * (JSON, RowBinary, RowBinary, JSON, …), the median of each and their ratio; before timing, both
 * encodings' rows are read back and compared (a difference exits with 1).
 *
 * The events: 48 keys (the e2e bench's), each with one episode open at a time whose life is
 * opened, 0–4 updates, closed; 8–32 points each (the rule's pattern at the opening), batches of
 * 64 events (what an ingest worker's drain posts at about 100 k records/s).
 *
 * `--before <dist dir>` (a copy of dist/ kept before a change) adds that build's AlertRowsBinary,
 * timed in the same alternation; its rows must be this build's bytes.
 */
import { encodeRow, decodeRowBinary, type AlertRow } from "../connectors/clickhouse/mod.js";
import { LineBuffer } from "../connectors/files/mod.js";
import { SeededRandom } from "../engine/core/mod.js";
import { AlertRowsBinary, alertRow } from "../engine/jobs/mod.js";
import type { AlertEpisodeEvent } from "../operators/spc/mod.js";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { median, threadCpuMicros } from "./bench-kit.js";

const KEYS = 48;
const EVENTS = 64 * 1024;
const BATCH = 64;

function episodeEvents(random: SeededRandom): AlertEpisodeEvent[] {
  const out: AlertEpisodeEvent[] = [];
  const t0 = Date.UTC(2026, 0, 1);
  for (let n = 0; out.length < EVENTS; n++) {
    const key = n % KEYS;
    const at = t0 + n * 1000;
    const points = Array.from({ length: 8 + Math.floor(random.next() * 25) }, (_, i) => ({
      position: n * 100 + i,
      time: at - (32 - i) * 100,
      value: 20 + random.next() * 3,
    }));
    const opened: AlertEpisodeEvent = {
      type: "alert_episode",
      event: "opened",
      episode_id: (0x1000000 + n).toString(16).padStart(16, "0"),
      key: `M-${key >> 3}/sensor${key & 7}`,
      fields: { machine_id: `M-${key >> 3}`, sensor_type: `sensor${key & 7}` },
      family: n % 2 === 0 ? "level" : "variation",
      rules: ["WE2"],
      first_rule: "WE2",
      description: "2 of 3 points beyond 2σ on one side",
      severity: "medium",
      opened_at: at,
      last_fired_at: at,
      closed_at: null,
      firings: 1,
      limits_version: 1,
      cl: 20 + random.next(),
      sigma: 0.5 + random.next(),
      points,
      acknowledged_at: null,
      acknowledged_by: null,
      ack_note: null,
    };
    out.push(opened);
    const updates = Math.floor(random.next() * 5);
    for (let u = 1; u <= updates; u++) out.push({ ...opened, event: "updated", firings: 1 + u, last_fired_at: at + u * 100 });
    out.push({ ...opened, event: "closed", firings: 1 + updates, last_fired_at: at + updates * 100, closed_at: at + 900 });
  }
  return out.slice(0, EVENTS);
}

/** As ClickHouseSink.write: the row object, its line, the batch's line buffer. */
function jsonLines(events: readonly AlertEpisodeEvent[]): number {
  const lines = new LineBuffer();
  for (const e of events) {
    const row: AlertRow = { ...alertRow(e, ""), points: e.points };
    lines.push(encodeRow("ml_alerts", row));
  }
  return lines.take().length;
}

function rowBinary(events: readonly AlertEpisodeEvent[], rows: AlertRowsBinary): number {
  let bytes = 0;
  for (let at = 0; at < events.length; at += BATCH) bytes += rows.encode(events.slice(at, at + BATCH))[0].bytes.length;
  return bytes;
}

/** Both encodings' rows read back: the same values, column by column (the JSON line's DateTime is its seconds, as RowBinary's). */
function sameRows(events: readonly AlertEpisodeEvent[]): boolean {
  const [binary] = new AlertRowsBinary().encode(events);
  const fromBinary = decodeRowBinary("ml_alerts", binary.bytes);
  return events.every((e, i) => {
    const line = JSON.parse(encodeRow("ml_alerts", { ...alertRow(e, ""), points: e.points })) as Record<string, unknown>;
    const row = fromBinary[i];
    return Object.keys(line).every((c) => JSON.stringify(row[c]) === JSON.stringify(line[c]));
  });
}

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

type RowsClass = typeof AlertRowsBinary;

/** Another build's AlertRowsBinary (`--before <dist dir>`), null without one. */
async function beforeRows(): Promise<RowsClass | null> {
  const at = process.argv.indexOf("--before");
  if (at < 0) return null;
  const url = pathToFileURL(resolve(process.argv[at + 1], "engine/jobs/alert-rows.js")).href;
  return ((await import(url)) as { AlertRowsBinary: RowsClass }).AlertRowsBinary;
}

async function main(): Promise<void> {
  const at = process.argv.indexOf("--rounds");
  const rounds = at > 0 ? Number(process.argv[at + 1]) : 8;
  const events = episodeEvents(new SeededRandom(20261207));
  if (!sameRows(events.slice(0, 4096))) {
    process.stderr.write("alert-rows-ab: the RowBinary rows differ from the JSON lines\n");
    process.exit(1);
  }
  const Before = await beforeRows();
  if (Before !== null) {
    const bytes = (R: RowsClass) => Buffer.from(new R().encode(events.slice(0, 4096))[0].bytes);
    if (!bytes(Before).equals(bytes(AlertRowsBinary))) {
      process.stderr.write("alert-rows-ab: the --before build's rows differ from this build's\n");
      process.exit(1);
    }
  }
  const ns = { json: [] as number[], binary: [] as number[], before: [] as number[] };
  const order = ["json", "binary", ...(Before === null ? [] : ["before"])] as Array<keyof typeof ns>;
  for (let r = 0; r < rounds; r++) {
    for (const which of r % 2 === 0 ? order : [...order].reverse()) {
      const t = threadCpuMicros();
      if (which === "json") jsonLines(events);
      else rowBinary(events, which === "binary" ? new AlertRowsBinary() : new (Before as RowsClass)());
      ns[which].push(((threadCpuMicros() - t) * 1000) / events.length);
    }
  }
  const json = median(ns.json);
  const binary = median(ns.binary);
  out(
    `ml_alerts rows, ${EVENTS} events of ${KEYS} keys, batches of ${BATCH}, ${rounds} rounds alternately (thread CPU ns per event, median)`,
  );
  out(`  JSONEachRow as ClickHouseSink.write   ${json.toFixed(0).padStart(6)}`);
  out(`  RowBinary, alert-rows.ts               ${binary.toFixed(0).padStart(6)}`);
  out(`  ratio RowBinary ÷ JSON                 ${(binary / json).toFixed(2).padStart(6)}`);
  if (Before === null) return;
  const before = median(ns.before);
  out(`  RowBinary, the --before build          ${before.toFixed(0).padStart(6)}`);
  out(`  ratio this build ÷ before              ${(binary / before).toFixed(2).padStart(6)}  (the same bytes)`);
}

void main();
