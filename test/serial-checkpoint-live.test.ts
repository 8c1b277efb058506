/**
 * The serial job's checkpoints on real servers, through the CLI (dist/engine/cli/main.js: `npm run
 * build` first): `linewatch run --nats … --stream …` consumes serial events from JetStream, is
 * killed with SIGKILL part-way (no final save: only the interval checkpoint survives), and is
 * started again; then more events are published, among them a serial issued before the kill.
 * The serial is flagged as a duplicate after the restart, and what the two runs wrote to
 * ClickHouse (`ml_serial_detections` FINAL, `ml_quarantine` FINAL) is exactly what one
 * uninterrupted pass of the replay contract gives for the same events at the same stream
 * sequences — no event lost, none counted twice in the state.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeSerialRecord } from "../connectors/wire/serial-codec.js";
import { SerialSimulator, type SerialEvent } from "../connectors/sim/serial-simulator.js";
import { addRunSerialFlags, runSerialAnalysisFlags, type RunSerialFlags } from "../engine/cli/serial-run.js";
import { addSerialFlags, serialAnalysisFromFlags } from "../engine/cli/serial-flags.js";
import { serialCheckpointName } from "../engine/jobs/serial-sources.js";
import { DEFAULT_SERIAL_PARAMS, SERIAL_COL as C } from "../operators/serial/layout.js";
import { decodeSerialPayload } from "../operators/serial/payload.js";
import { RISK_LEVELS, reasonsOf } from "../operators/serial/score.js";
import { startClickHouseServer, type ClickHouseServer } from "../connectors/local/clickhouse-server.js";
import { logEvents, startCli, type CliProcess } from "./kit/cli.js";
import { SerialInlinePipeline } from "../bench/kit/serial-pipeline.js";
import { serverAvailable, startNatsServer, type NatsServer } from "../connectors/local/nats-server.js";

const SITE = "sck";
const STREAM = "LWC";
const SERIAL_STREAM = `${STREAM}_SERIAL`;
const DURABLE = `lw-${SITE}-serial`;
const haveServers = serverAvailable("nats-server") && serverAvailable("clickhouse-server");

function detectionKey(
  machine: string,
  gtin: string,
  serial: string,
  timeMs: number,
  seq: number,
  reasons: readonly string[],
  risk: string,
): string {
  return JSON.stringify([machine, gtin, serial, timeMs, seq, [...reasons].sort(), risk]);
}

/** One uninterrupted pass of the replay contract over `events` (stream sequence = index + 1). */
function expected(events: readonly SerialEvent[]) {
  const command = addRunSerialFlags(addSerialFlags(new Command()));
  command.parse([], { from: "user" });
  const flags = command.opts<RunSerialFlags>();
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
        index + 1,
        reasonsOf(row[C.flags] >>> 0),
        RISK_LEVELS[row[C.risk]],
      ),
    );
  });
  return {
    flagged: flagged.sort(),
    quarantined: analysis.quarantine
      .list()
      .map((e) => `${e.gtin}/${e.serial_number}`)
      .sort(),
  };
}

async function until<T>(what: () => string, get: () => Promise<T | null> | T | null, timeoutMs = 40_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await get();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.skipIf(!haveServers)("serial checkpoint live - kill -9 and restart of the serial job on JetStream", () => {
  let nats: NatsServer;
  let ch: ClickHouseServer;
  let nc: NatsConnection;
  let run: CliProcess | null = null;
  const dir = mkdtempSync(join(tmpdir(), "lw-serial-ckpt-"));
  beforeAll(async () => {
    [nats, ch] = await Promise.all([startNatsServer(), startClickHouseServer()]);
    nc = await connect({ servers: nats.url });
  }, 120_000);
  afterAll(async () => {
    if (run !== null && run.child.exitCode === null) run.child.kill("SIGKILL");
    await nc?.close();
    await Promise.all([nats?.dispose(), ch?.dispose()]);
  });

  it("serial - a serial repeated across a kill -9 is a duplicate, and two runs write what one uninterrupted run does", async () => {
    const sim = new SerialSimulator({ seed: 41, attackEvery: 600, batchSerials: 800 });
    const first = Array.from({ length: 5000 }, () => sim.next());
    const later = Array.from({ length: 2000 }, () => sim.next());
    // A serial issued before the kill, again after the restart on its own line (its current batch).
    const original = first.find(
      (e, i) => i > 50 && e.event_type === "serial" && !("attack" in e && (e as { attack?: unknown }).attack),
    ) as SerialEvent;
    const at = later.findIndex((e, i) => i > 500 && e.machine_id === original.machine_id && e.event_type === "serial");
    expect(at).toBeGreaterThan(0);
    const repeat: SerialEvent = { ...later[at], serial_number: original.serial_number, gtin: original.gtin };
    later.splice(at + 1, 0, repeat);
    const all = [...first, ...later];
    const repeatSeq = first.length + at + 2;
    const want = expected(all);
    expect(want.flagged.length).toBeGreaterThan(100);

    const js = nc.jetstream();
    const jsm = await nc.jetstreamManager();
    const publish = async (events: readonly SerialEvent[]) => {
      for (let i = 0; i < events.length; i += 500) {
        await Promise.all(
          events.slice(i, i + 500).map((e) => js.publish(`lw.${SITE}.serial.${e.machine_id}`, encodeSerialRecord(e, "msgpack"))),
        );
      }
    };
    const ackFloor = async () => (await jsm.consumers.info(SERIAL_STREAM, DURABLE)).ack_floor.stream_seq;
    const kv = await js.views.kv("linewatch-checkpoints", { history: 1 });
    const checkpointPosition = async (): Promise<number> => {
      const entry = await kv.get(serialCheckpointName(SITE, SERIAL_STREAM));
      return entry === null || entry.value.length === 0
        ? 0
        : (JSON.parse(new TextDecoder().decode(entry.value)) as { position: number }).position;
    };
    const args = [
      "run",
      "--nats",
      nats.url,
      "--stream",
      STREAM,
      "--site",
      SITE,
      "--analysis",
      "rolling",
      "--clickhouse",
      ch.url,
      "--port",
      "0",
      "--summary-interval",
      "0",
      "--no-publish-scores",
      "--serial-workers",
      "1",
      "--checkpoint-interval",
      "2s",
    ];

    // Run 1 (the ledger on a thread of its own, forced: this machine may be below its default's 4 cores): the first 4000 events, an interval checkpoint covering them, 1000 more, then kill -9.
    run = startCli([...args, "--serial-ledger-thread"], dir);
    const r1 = run;
    await until(
      () => `the serial consumer (${r1.output()})`,
      () => (consuming(r1) ? true : null),
    );
    await publish(first.slice(0, 4000));
    await until(
      () => `4000 events acknowledged and checkpointed (${r1.output()})`,
      async () => ((await ackFloor()) === 4000 && (await checkpointPosition()) === 4000 ? true : null),
    );
    await publish(first.slice(4000));
    await until(
      () => `5000 events acknowledged (${r1.output()})`,
      async () => ((await ackFloor()) === 5000 ? true : null),
    );
    r1.child.kill("SIGKILL");
    expect(await r1.exited).toBeNull();
    const covered = await checkpointPosition();
    expect(covered).toBeGreaterThanOrEqual(4000);
    expect(covered).toBeLessThanOrEqual(5000);

    // Run 2: restores the checkpoint, consumes from the sequence after it, then the later events —
    // with the ledger on the main thread: run 1's ledger thread saved the same checkpoint.
    run = startCli([...args, "--no-serial-ledger-thread"], dir);
    const r2 = run;
    await until(
      () => `the restored serial consumer (${r2.output()})`,
      () => (consuming(r2) ? true : null),
    );
    expect(logEvents(r2.output()).find((e) => e.msg === "state restored from checkpoint")).toMatchObject({
      component: "serial",
      checkpoint: serialCheckpointName(SITE, SERIAL_STREAM),
      stream_seq: covered,
    });
    await publish(later);
    await until(
      () => `${all.length} events acknowledged (${r2.output()})`,
      async () => ((await ackFloor()) === all.length ? true : null),
    );
    expect(await r2.stop(), r2.output()).toBe(0);
    run = null;
    const info = await jsm.consumers.info(SERIAL_STREAM, DURABLE);
    expect(info.num_ack_pending).toBe(0);
    expect(info.num_pending).toBe(0);
    // The final save at a clean stop covers every event.
    expect(await checkpointPosition()).toBe(all.length);

    const rows = async (sql: string) =>
      (await ch.query(`${sql} FORMAT JSONEachRow`, { output_format_json_quote_64bit_integers: 0 }))
        .trim()
        .split("\n")
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const detections = (
      await rows("SELECT machine_id, gtin, serial_number, detected_at_ms, seq, reasons, risk_level FROM ml_serial_detections FINAL")
    )
      .map((r) =>
        detectionKey(
          r.machine_id as string,
          r.gtin as string,
          r.serial_number as string,
          r.detected_at_ms as number,
          r.seq as number,
          r.reasons as string[],
          r.risk_level as string,
        ),
      )
      .sort();
    expect(detections.length).toBe(want.flagged.length);
    expect(detections).toEqual(want.flagged);
    const repeated = await rows(`SELECT reasons FROM ml_serial_detections FINAL WHERE seq = ${repeatSeq}`);
    expect(repeated).toHaveLength(1);
    expect(
      (repeated[0].reasons as string[]).some((r) => r.startsWith("duplicate_")),
      JSON.stringify(repeated[0]),
    ).toBe(true);
    // A serial first quarantined between the checkpoint and the kill is quarantined again after the
    // restart; ml_quarantine's key is its first quarantined occurrence (production time, seq), not
    // the wall-clock quarantine time, so FINAL holds exactly one row per entry (before, a second one).
    const quarantine = (await rows("SELECT gtin, serial_number FROM ml_quarantine FINAL WHERE released_at IS NULL"))
      .map((r) => `${r.gtin}/${r.serial_number}`)
      .sort();
    expect(quarantine).toEqual(want.quarantined);
    expect(await rows("SELECT count() AS n FROM ml_quarantine FINAL")).toEqual([{ n: want.quarantined.length }]);
  }, 90_000);
});

/** The run's serial job has its durable JetStream consumer (a log event on stderr). */
function consuming(run: CliProcess): boolean {
  return logEvents(run.output()).some((e) => e.component === "serial" && e.durable !== undefined);
}
