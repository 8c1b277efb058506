/**
 * The live serial job on real servers (issue 8): serial events — the simulator's, with injected
 * attacks, and malformed ones — published on NATS `lw.<site>.serial.<line>`, consumed by the run's
 * serial part, scored on the pool; then ClickHouse (`ml_serial_detections`, `ml_quarantine`
 * FINAL), the WebSocket topic `quarantine`, the NATS subject `lw.<site>.quarantine`, the API's
 * quarantine list and release, the dead-letter subject and the metrics are checked against the
 * replay contract computed on the same events (the serial pipeline kit).
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encode as encodeMsgpack } from "@msgpack/msgpack";
import { Command } from "commander";
import { connect, type NatsConnection, type Subscription } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeSerialRecord } from "../connectors/wire/serial-codec.js";
import { SerialSimulator, type SerialEvent } from "../connectors/sim/serial-simulator.js";
import { addRunSerialFlags, runSerialAnalysisFlags, runSerialPart, type RunSerialFlags } from "../engine/cli/serial-run.js";
import { addSerialFlags, serialAnalysisFromFlags } from "../engine/cli/serial-flags.js";
import { Outputs } from "../engine/jobs/outputs.js";
import { DEFAULT_SERIAL_PARAMS } from "../operators/serial/layout.js";
import { SERIAL_COL as C } from "../operators/serial/layout.js";
import { decodeSerialPayload } from "../operators/serial/payload.js";
import { RISK_LEVELS, reasonsOf } from "../operators/serial/score.js";
import { startClickHouseServer, type ClickHouseServer } from "../connectors/local/clickhouse-server.js";
import { LiveClient } from "./kit/live-client.js";
import { SerialInlinePipeline } from "../bench/kit/serial-pipeline.js";
import { serverAvailable, startNatsServer, type NatsServer } from "../connectors/local/nats-server.js";
import { printFigures } from "./kit/figures.js";
import { createLogger, memoryLogger } from "../engine/core/mod.js";

/** Operational log events are not what these tests look at. */
const QUIET = createLogger({ level: "silent" });

const SITE = "s8";
const haveServers = serverAvailable("nats-server") && serverAvailable("clickhouse-server");

/** The run's serial flags with their defaults, plus `args`. */
function serialFlags(args: string[]): RunSerialFlags {
  const command = addRunSerialFlags(addSerialFlags(new Command()));
  command.parse(args, { from: "user" });
  return command.opts<RunSerialFlags>();
}

/** What the replay contract says for these events: the flagged ones (by position) and the quarantined serials. */
function expected(events: readonly SerialEvent[], positions: readonly number[], flags: RunSerialFlags) {
  const analysis = serialAnalysisFromFlags(runSerialAnalysisFlags(flags), "ms", { quarantineFile: undefined });
  const pipeline = new SerialInlinePipeline(analysis, {
    ...DEFAULT_SERIAL_PARAMS,
    window: flags.serialWindow ?? DEFAULT_SERIAL_PARAMS.window,
  });
  const flagged: string[] = [];
  pipeline.run(events, (index, row, payload) => {
    if (!(row[C.anomaly_score] > 0)) return;
    const d = decodeSerialPayload(payload);
    flagged.push(
      detectionKey(
        d.machine,
        d.gtin,
        d.serial,
        events[index].production_timestamp,
        positions[index],
        reasonsOf(row[C.flags] >>> 0),
        RISK_LEVELS[row[C.risk]],
        row[C.quarantine] === 1,
      ),
    );
  });
  return {
    flagged: flagged.sort(),
    quarantined: analysis.quarantine
      .list()
      .map((e) => `${e.gtin}/${e.serial_number}`)
      .sort(),
    summary: analysis.summary(),
  };
}

function detectionKey(
  machine: string,
  gtin: string,
  serial: string,
  time: number,
  seq: number,
  reasons: readonly string[],
  risk: string,
  quarantined: boolean,
): string {
  return JSON.stringify([machine, gtin, serial, time, seq, [...reasons].sort(), risk, quarantined]);
}

/** Malformed serial events, each with the dead-letter reason it must get. */
function malformed(): Array<{ subject: string; data: Uint8Array; reason: string }> {
  const good = {
    serial_number: "X1",
    gtin: "09506000134352",
    batch_number: "B1",
    production_timestamp: Date.UTC(2026, 0, 5, 6),
    machine_id: "M-001",
  };
  const json = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
  const on = `lw.${SITE}.serial.M-001`;
  return [
    { subject: on, data: json({ ...good, gtin: 9506000134352 }), reason: "wrong_type" },
    { subject: on, data: json({ ...good, production_timestamp: undefined }), reason: "missing_field" },
    { subject: on, data: json({ ...good, production_timestamp: "yesterday" }), reason: "bad_timestamp" },
    { subject: on, data: encodeMsgpack({ ...good, production_timestamp: Number.NaN }), reason: "not_finite" },
    { subject: `lw.${SITE}.serial.M-002`, data: json(good), reason: "subject_mismatch" },
    { subject: on, data: new Uint8Array([0xc1, 0x00]), reason: "malformed" },
    { subject: on, data: json({ ...good, note: "x".repeat(5000) }), reason: "too_large" },
    { subject: on, data: encodeMsgpack([good]), reason: "not_a_record" },
  ];
}

async function collect(sub: Subscription, into: unknown[], decode: (d: Uint8Array) => unknown): Promise<void> {
  for await (const m of sub) into.push(decode(m.data));
}

async function until(what: () => string | Promise<string>, cond: () => boolean | Promise<boolean>, timeoutMs = 40_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${await what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function metric(text: string, line: string): number {
  const m = text.split("\n").find((l) => l.startsWith(`${line} `));
  return m === undefined ? 0 : Number(m.slice(line.length + 1));
}

describe.skipIf(!haveServers)("serial live - NATS in, ClickHouse, WebSocket, NATS and the API out", () => {
  let nats: NatsServer;
  let ch: ClickHouseServer;
  let nc: NatsConnection;
  const dir = mkdtempSync(join(tmpdir(), "lw-serial-live-"));
  beforeAll(async () => {
    [nats, ch] = await Promise.all([startNatsServer(), startClickHouseServer()]);
    nc = await connect({ servers: nats.url });
  }, 120_000);
  afterAll(async () => {
    await nc?.close();
    await Promise.all([nats?.dispose(), ch?.dispose()]);
  });

  it("serial - the run's serial job writes exactly the replay contract's detections and quarantine, serves them live and dead-letters bad events", async () => {
    const sim = new SerialSimulator({ seed: 11, attackEvery: 1000, batchSerials: 1500 });
    const events = Array.from({ length: 13_000 }, () => sim.next());
    const attacks = sim.labels();
    expect(new Set(attacks.map((a) => a.attack)).size).toBe(8);
    // Bad events between good ones: their positions count (core NATS: the message index).
    const bad = malformed();
    const messages: Array<{ subject: string; data: Uint8Array }> = [];
    const positions: number[] = [];
    events.forEach((e, i) => {
      if (i % 1000 === 700 && bad.length > messages.length - positions.length) {
        const b = bad[messages.length - positions.length];
        messages.push({ subject: b.subject, data: b.data });
      }
      positions.push(messages.length);
      messages.push({ subject: `lw.${SITE}.serial.${e.machine_id}`, data: encodeSerialRecord(e, i % 2 === 0 ? "msgpack" : "json") });
    });
    expect(messages.length - events.length).toBe(bad.length);

    // A quarantine file from an earlier run: its entry joins the list.
    const qfile = join(dir, "quarantine.json");
    const earlier = {
      serial_number: "OLD000000001",
      gtin: "09506000134352",
      batch_number: "B000-00001",
      machine_id: "M-009",
      operator_id: "OP-009-A",
      production_time: 1,
      row: 0,
      anomaly_score: 1,
      confidence_level: 1,
      risk_level: "critical",
      anomaly_types: ["duplicate"],
      reasons: ["duplicate_in_batch"],
      occurrences: 1,
      quarantined_at: "2026-01-01T00:00:00.000Z",
    };
    writeFileSync(qfile, JSON.stringify({ version: 1, entries: [earlier], released: [] }));
    const flags = serialFlags(["--serial-quarantine", qfile]);
    const want = expected(events, positions, flags);
    expect(want.flagged.length).toBeGreaterThan(1000);
    expect(want.quarantined.length).toBeGreaterThan(50);

    const outputs = await Outputs.start({
      clickhouse: { url: ch.url, spillDir: mkdtempSync(join(tmpdir(), "lw-spill-")) },
      live: { port: 0, host: "127.0.0.1" },
      healthIntervalMs: 60_000,
      log: QUIET,
    });
    const access = outputs.liveAccess()!;
    const token = access.generatedToken as string;
    const ws = await LiveClient.connect(`${access.wsUrl}?token=${token}`);
    await ws.subscribe(["quarantine"]);
    const onSubject: Array<Record<string, unknown>> = [];
    const deadLetters: Array<Record<string, unknown>> = [];
    const dec = new TextDecoder();
    void collect(nc.subscribe(`lw.${SITE}.quarantine`), onSubject, (d) => JSON.parse(dec.decode(d)));
    void collect(nc.subscribe(`lw.${SITE}.deadletter`), deadLetters, (d) => JSON.parse(dec.decode(d)));
    await nc.flush();

    let stop: () => void = () => {};
    const stopped = new Promise<void>((r) => (stop = r));
    let ready: () => void = () => {};
    const isReady = new Promise<void>((r) => (ready = r));
    const { log } = memoryLogger({
      onEntry: (e) => {
        if (e.component === "serial" && e.msg.startsWith("consuming serial events")) ready();
      },
    });
    const run = runSerialPart({
      flags,
      host: outputs,
      source: { kind: "nats", url: nats.url, site: SITE, outputFormat: "json" },
      stop: stopped,
      log,
    });
    await isReady;
    await new Promise((r) => setTimeout(r, 300));
    const t0 = performance.now();
    for (let i = 0; i < messages.length; i++) {
      nc.publish(messages[i].subject, messages[i].data);
      if (i % 2000 === 1999) await nc.flush();
    }
    await nc.flush();
    const scrape = () => outputs.registry.render();
    await until(
      async () =>
        `every event scored (${(await scrape())
          .split("\n")
          .filter((l) => l.includes("serial"))
          .join("; ")})`,
      async () => metric(await scrape(), 'linewatch_records_out_total{analysis="serial"}') === events.length,
    );
    const seconds = (performance.now() - t0) / 1000;
    printFigures(
      `serial live: ${events.length} events + ${bad.length} bad in ${seconds.toFixed(2)} s (${Math.round(events.length / seconds)} events/s through NATS → job)`,
    );

    // The API: the list (the earlier file's entry included), a release, a second release (404).
    const api = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${access.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const listed = await api("GET", "/api/quarantine");
    expect(listed.status).toBe(200);
    const results = listed.body.results as Array<{ gtin: string; serial_number: string }>;
    expect(results.map((e) => `${e.gtin}/${e.serial_number}`).sort()).toEqual(
      [...want.quarantined, `${earlier.gtin}/${earlier.serial_number}`].sort(),
    );
    const victim = results.find((e) => e.serial_number !== earlier.serial_number) as { gtin: string; serial_number: string };
    const released = await api("POST", `/api/quarantine/${encodeURIComponent(victim.serial_number)}/release`, {
      gtin: victim.gtin,
      note: "checked by QA",
    });
    expect(released.status).toBe(200);
    expect(released.body).toMatchObject({
      serial_number: victim.serial_number,
      released: [{ gtin: victim.gtin, release_note: "checked by QA" }],
    });
    expect((released.body.released as Array<{ released_at: string }>)[0].released_at).toMatch(/^\d{4}-/);
    const again = await api("POST", `/api/quarantine/${encodeURIComponent(victim.serial_number)}/release`, { gtin: victim.gtin });
    expect(again.status).toBe(404);
    // A release made with `linewatch serial quarantine release` in the file reaches the run.
    const file = JSON.parse(readFileSync(qfile, "utf8")) as {
      entries: Array<{ serial_number: string }>;
      released: Array<{ serial_number: string }>;
    };
    expect(file.released.map((r) => r.serial_number)).toContain(victim.serial_number);
    expect(file.entries.map((e) => e.serial_number)).not.toContain(victim.serial_number);

    const text = await scrape();
    for (const b of bad) expect(metric(text, `linewatch_dead_letter_total{reason="${b.reason}"}`), b.reason).toBe(1);
    expect(metric(text, 'linewatch_records_in_total{source="serial-nats"}')).toBe(events.length);
    expect(metric(text, "linewatch_serial_quarantined_total")).toBe(want.summary.quarantinedEvents);

    stop();
    const result = await run;
    expect(result.events).toBe(events.length);
    expect(result.deadLettered).toBe(bad.length);
    expect(result.flagged).toBe(want.flagged.length);

    // WebSocket `quarantine` and lw.<site>.quarantine: every quarantined occurrence, then the release, in order.
    const wsMessages = ws.data("quarantine");
    await until(
      () => `${onSubject.length} quarantine messages on NATS`,
      () => onSubject.length === want.summary.quarantinedEvents + 1,
    );
    expect(wsMessages.length).toBe(want.summary.quarantinedEvents + 1);
    expect(wsMessages.every((m, i) => i === 0 || m.seq === wsMessages[i - 1].seq + 1)).toBe(true);
    const wsData = wsMessages.map((m) => m.data as { action: string; gtin: string; serial_number: string });
    expect(wsData.at(-1)).toMatchObject({ action: "released", serial_number: victim.serial_number });
    expect(new Set(wsData.filter((d) => d.action === "quarantined").map((d) => `${d.gtin}/${d.serial_number}`))).toEqual(
      new Set(want.quarantined),
    );
    expect(onSubject.map((d) => JSON.stringify(d))).toEqual(wsData.map((d) => JSON.stringify(d)));
    ws.close();

    // Dead letters: one per bad event, with its reason and the subject it came on.
    await until(
      () => `${deadLetters.length} dead letters`,
      () => deadLetters.length === bad.length,
    );
    expect(deadLetters.map((d) => d.reason).sort()).toEqual(bad.map((b) => b.reason).sort());
    expect(deadLetters.every((d) => String(d.subject).startsWith(`lw.${SITE}.serial.`))).toBe(true);

    // ClickHouse: exactly the contract's flagged events; the quarantine list with its one release.
    const rows = async (sql: string) =>
      (await ch.query(`${sql} FORMAT JSONEachRow`, { output_format_json_quote_64bit_integers: 0 }))
        .trim()
        .split("\n")
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const detections = await rows(
      "SELECT machine_id, gtin, serial_number, detected_at_ms, seq, reasons, risk_level, quarantined FROM ml_serial_detections FINAL",
    );
    const got = detections
      .map((r) =>
        detectionKey(
          r.machine_id as string,
          r.gtin as string,
          r.serial_number as string,
          r.detected_at_ms as number,
          r.seq as number,
          r.reasons as string[],
          r.risk_level as string,
          r.quarantined === 1,
        ),
      )
      .sort();
    expect(got.length).toBe(want.flagged.length);
    expect(got).toEqual(want.flagged);
    const quarantine = await rows("SELECT gtin, serial_number, released_at_ms, release_note, occurrences FROM ml_quarantine FINAL");
    expect(quarantine.map((r) => `${r.gtin}/${r.serial_number}`).sort()).toEqual(want.quarantined);
    const releasedRows = quarantine.filter((r) => r.released_at_ms !== null);
    expect(releasedRows).toEqual([expect.objectContaining({ serial_number: victim.serial_number, release_note: "checked by QA" })]);
    await outputs.close();
  }, 90_000);
});

describe("serial live - the serial simulator as the run's source", () => {
  it("serial - run's serial simulator part scores every simulated event as the replay contract does and saves the quarantine file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lw-serial-sim-"));
    const qfile = join(dir, "q.json");
    const flags = serialFlags([
      "--serial-quarantine",
      qfile,
      "--serial-attack-every",
      "1000",
      "--serial-batch-serials",
      "1500",
      "--serial-lines",
      "3",
      "--serial-window",
      "128",
    ]);
    const start = Date.UTC(2026, 0, 5, 6);
    const durationMs = 20_000;
    // The same events the part's simulator makes: seed, lines, rate, batches, attacks, start; up to the end of the duration.
    const sim = new SerialSimulator({ seed: 7, lines: 3, attackEvery: 1000, batchSerials: 1500, startTime: start });
    const events: SerialEvent[] = [];
    for (let e = sim.next(); e.received_timestamp < start + durationMs; e = sim.next()) events.push(e);
    const want = expected(
      events,
      events.map((_, i) => i),
      flags,
    );
    const outputs = await Outputs.start({ healthIntervalMs: 60_000, log: QUIET });
    const result = await runSerialPart({
      flags,
      host: outputs,
      stop: new Promise(() => {}),
      log: QUIET,
      source: { kind: "simulator", seed: 7, speed: Infinity, startTime: start, durationMs, flushIntervalMs: 250 },
    });
    await outputs.close();
    expect(result.events).toBe(events.length);
    expect(result.flagged).toBe(want.flagged.length);
    expect(result.quarantinedEvents).toBe(want.summary.quarantinedEvents);
    expect(result.attacks).toBeGreaterThan(10);
    const saved = JSON.parse(readFileSync(qfile, "utf8")) as { entries: Array<{ gtin: string; serial_number: string }> };
    expect(saved.entries.map((e) => `${e.gtin}/${e.serial_number}`).sort()).toEqual(want.quarantined);
  }, 60_000);
});
