/**
 * `linewatch demo`: the real thing on one machine, for a newcomer. Starts a local `nats-server`
 * (JetStream, store in `<dir>/nats`) and, when installed, a `clickhouse-server` (generated config in
 * `<dir>/clickhouse`, loopback, free ports), then runs in this process:
 *
 *   simulator ──publishSimulation (JetStream)──▶ nats-server ──runNatsJob──▶ rolling + SPC
 *        ──▶ ClickHouse tables, the live server (WebSocket topics + HTTP API on --port), NATS scores
 *   serial simulator ──publishSerialEvents (JetStream)──▶ nats-server ──serial job──▶ detections,
 *        quarantine (ClickHouse, `quarantine` topic, lw.demo.quarantine, /api/quarantine); --no-serials: off
 *   batch simulator ──publishBatchStreams (JetStream)──▶ nats-server ──quality job──▶ predictions,
 *        outcomes (ClickHouse), quality episodes, /api/ml/quality/batches/; --no-quality-model: off
 *        (demo-quality.ts)
 *
 * and prints where to look. Ctrl-C (SIGINT/SIGTERM) or `--duration` stops the publisher, drains
 * the job (every fetched message processed, outputs flushed, acknowledged), closes the outputs
 * and stops the servers. A missing server binary is said and the demo runs without it (no NATS:
 * nothing to demonstrate, exit 2).
 */
import {
  AlertRouter,
  DEFAULT_NATS_JOB,
  DEFAULT_PREDICTION_SERVICE,
  FaultScorecard,
  Outputs,
  PredictionService,
  runNatsJob,
} from "../jobs/mod.js";
import { BUILTIN_MODEL, loadBuiltinModel, type PredictChoice, resolvePredict } from "./builtin-model.js";
import {
  type ClickHouseServer,
  commandInstalled,
  type NatsServer,
  startClickHouseServer,
  startNatsServer,
} from "../../connectors/local/mod.js";
import { machineTopic, TOPIC_ALERTS } from "../../connectors/live/mod.js";
import { mkdirSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { Command } from "commander";
import { connect } from "nats";
import { parseDuration, ConfigError, DEFAULT_WORKERS } from "../core/mod.js";
import {
  DEFAULT_NATS_PUBLISH,
  publishSimulation,
  PlantSimulator,
  SENSOR_TYPES,
  type SimulatedColumns,
  SerialSimulator,
  DEFAULT_SERIAL_PUBLISH,
  publishSerialEvents,
} from "../../connectors/sim/mod.js";
import { addAnalysisFlags, analysesFromFlags, type AnalysisFlags } from "./analysis-flags.js";
import { integerOption, numberOption } from "./options.js";
import { cliLogger } from "./logging.js";
import { reportScorecard, SCORECARD_JSON_HELP } from "./scorecard-report.js";
import { addRunSerialFlags, runSerialPart, type RunSerialFlags, type SerialPartResult } from "./serial-run.js";
import { addDemoQualityFlags, type DemoQualityFlags, demoQualityModel, startDemoQuality } from "./demo-quality.js";
import { reportQuality } from "./quality-run.js";

interface DemoFlags extends AnalysisFlags, RunSerialFlags, DemoQualityFlags {
  dir: string;
  duration?: string;
  port: number;
  host: string;
  seed: number;
  machines: number;
  rate: number;
  faultRate: number;
  workers: number;
  clickhouse: boolean;
  summaryInterval: string;
  scorecardJson?: string;
  /** False: `--no-predict`. */
  predict: boolean;
}

const SITE = "demo";
const STREAM = "LW_DEMO";

export function demoCommand(): Command {
  const command = new Command("demo")
    .description(
      "start local nats-server and clickhouse-server (when installed) and run the whole pipeline against them: simulator → NATS JetStream → rolling + SPC → ClickHouse + WebSocket/HTTP API",
    )
    .option("--dir <dir>", "where the servers keep their data and configuration", "out/demo")
    .option("--duration <D>", "stop by itself after D of wall-clock time (30s, 5m); default: until Ctrl-C")
    .option(
      "--port <n>",
      "live server port (dashboard, WebSocket, HTTP API); 0: a free one; a free one too when this one is taken",
      integerOption("--port", 0, 65535),
      8080,
    )
    .option("--host <addr>", "address the live server listens on", "127.0.0.1")
    .option("--seed <n>", "simulator seed", integerOption("--seed", 0, Number.MAX_SAFE_INTEGER), 1)
    .option("--machines <n>", "simulated machines", integerOption("--machines", 1, 10_000), 8)
    .option("--rate <hz>", "readings per second per sensor", numberOption("--rate"), 10)
    .option("--fault-rate <f>", "injected faults per sensor per hour", numberOption("--fault-rate"), 30)
    .option("--workers <n>", "worker threads", integerOption("--workers", 0, 256), DEFAULT_WORKERS)
    .option("--no-clickhouse", "do not start clickhouse-server even when installed")
    .option("--summary-interval <D>", "console summary interval (0: none)", "2s")
    .option("--scorecard-json <file>", SCORECARD_JSON_HELP)
    .option("--no-predict", "no failure predictions (default: the built-in plant's model, as `run` on the simulator)");
  return addDemoQualityFlags(addRunSerialFlags(addAnalysisFlags(command, "rolling,spc", true))).action(async (flags: DemoFlags) =>
    runDemo(flags),
  );
}

/** Stop requests (signal or duration), which may come while servers are still starting. */
function stopControl(log: (line: string) => void): {
  stopped: Promise<void>;
  requestStop: (why: string) => void;
  requested: () => boolean;
  dispose: () => void;
} {
  let requested = false;
  let onStop: () => void = () => {};
  const stopped = new Promise<void>((r) => (onStop = r));
  const requestStop = (why: string): void => {
    if (requested) return;
    requested = true;
    log(`${why}: stopping (publisher, drain, flush, servers)…`);
    onStop();
  };
  const onSignal = (s: NodeJS.Signals): void => requestStop(s);
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, onSignal);
  const dispose = () => {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  };
  return { stopped, requestStop, requested: () => requested, dispose };
}

async function runDemo(flags: DemoFlags): Promise<void> {
  const log = (line: string): void => void process.stderr.write(`linewatch demo: ${line}\n`);
  const durationMs = flags.duration === undefined ? undefined : parseDuration(flags.duration);
  if (durationMs !== undefined && !(durationMs > 0)) throw new ConfigError("--duration", "must be positive");
  const quality = demoQualityModel(flags);
  const dir = resolve(flags.dir);
  mkdirSync(dir, { recursive: true });
  const { stopped, requestStop, requested: stopRequested, dispose } = stopControl(log);

  const servers: Array<{ name: string; server: NatsServer | ClickHouseServer }> = [];
  let outputs: Outputs | null = null;
  const closeAtEnd: Array<() => Promise<void>> = []; // the failure model
  try {
    if (!commandInstalled("nats-server")) {
      throw new ConfigError(
        "nats-server",
        "is not installed (apt-get install -y nats-server, or https://nats.io/download): the demo needs it. `linewatch run` works without it (built-in simulator).",
      );
    }
    // A fresh JetStream store each time: the demo's checkpoints and stream start empty.
    const natsDir = join(dir, "nats");
    rmSync(natsDir, { recursive: true, force: true });
    mkdirSync(natsDir, { recursive: true });
    const nats = await startNatsServer([], { dir: natsDir, processGroup: true });
    servers.push({ name: "nats-server", server: nats });
    log(`nats-server ${nats.url} (JetStream store ${natsDir})`);

    const clickhouse = await startDemoClickHouse(flags, dir, stopRequested, log);
    if (clickhouse !== null) servers.push({ name: "clickhouse-server", server: clickhouse.server });
    if (stopRequested()) return;

    outputs = await Outputs.start({
      clickhouse:
        clickhouse === null
          ? undefined
          : { url: clickhouse.server.url, database: clickhouse.database, spillDir: join(dir, "clickhouse-spill", clickhouse.database) },
      live: { port: flags.port, host: flags.host, portFallback: true, announce: (url) => log(`dashboard ${url}`) },
      healthIntervalMs: 5_000,
      predictions: await demoPredictions(flags, log, closeAtEnd),
      log: cliLogger(),
    });
    const out = outputs;

    const alertNc = await connect({ servers: nats.url, name: "linewatch-demo-alerts" });
    // The simulator runs in this process: its labels against the alerts, printed at the end.
    const scorecard = new FaultScorecard();
    const alerts = new AlertRouter({ outputs: out, nats: { nc: alertNc, site: SITE, format: "json" }, console: process.stdout });
    const analyses = analysesFromFlags(flags, {
      timeUnit: "ms",
      defaultWindow: 64,
      keyParts: ["machine_id", "sensor_type"],
      alerting: true,
      onAlert: (e) => {
        alerts.route(e);
        scorecard.observe(e);
      },
    });

    const simulator = demoSimulator(flags, scorecard);
    const readingsPerSec = flags.machines * SENSOR_TYPES.length * flags.rate;

    const progress = { recordsIn: 0, recordsOut: 0, checkpoints: 0 };
    let publisher: Promise<unknown> = Promise.resolve();
    // The job's stop: after the publisher has finished, so everything published gets processed.
    const jobStop = stopped.then(async () => {
      simulator.stopped = true;
      await publisher.catch(() => undefined);
    });

    const timer = durationMs === undefined ? null : setTimeout(() => requestStop(`--duration ${flags.duration}`), durationMs);
    const job = runNatsJob({
      ...DEFAULT_NATS_JOB,
      url: nats.url,
      site: SITE,
      stream: STREAM,
      analyses,
      workers: flags.workers,
      batchRecordsMax: 1024,
      // Each fetch is processed, flushed to ClickHouse and acknowledged before the next (≤ ~1 s a
      // round at the demo's rates), so a fetch must hold a couple of seconds of readings to keep up.
      fetchMessagesMax: Math.max(DEFAULT_NATS_JOB.fetchMessagesMax, Math.ceil(readingsPerSec * 2)),
      publishScores: true,
      outputFormat: "json",
      outputs: out,
      summaryIntervalMs: parseDuration(flags.summaryInterval),
      alertsSummary: () => alerts.summary(),
      console: process.stdout,
      stop: jobStop,
      progress,
      onReady: () => {
        publisher = publishSimulation(simulator, {
          ...DEFAULT_NATS_PUBLISH,
          url: nats.url,
          site: SITE,
          format: "msgpack",
          jetstream: true,
          rate: readingsPerSec,
          inFlightMax: 256,
        }).catch((error: Error) => {
          log(`publisher failed: ${error.message}`);
          requestStop("publisher failed");
        });
        printWelcome(flags, nats.url, out, clickhouse, readingsPerSec, durationMs);
      },
    });
    const serial = flags.serials === false ? null : startSerials(flags, nats.url, out, stopped, log);
    const qualityOptions = { url: nats.url, site: SITE, stream: STREAM, host: out, route: alerts.route, stopped, log };
    const qualityPart = quality === null ? null : startDemoQuality(flags, qualityOptions);
    const result = await job.finally(() => {
      if (timer !== null) clearTimeout(timer);
    });
    reportSerials(serial === null ? null : await serial, log);
    if (qualityPart !== null) reportQuality(await qualityPart, process.stderr, "linewatch demo");
    await alertNc.drain().catch(() => undefined);
    for (const a of analyses) for (const note of a.notes?.() ?? []) log(note);
    log(
      `pipeline stopped: ${result.recordsOut} records scored in ${result.seconds.toFixed(1)} s, ${alerts.summary()}, ` +
        `dead-lettered ${result.input.deadLettered}, checkpoints ${result.checkpoints}`,
    );
    reportScorecard(scorecard, flags.scorecardJson, process.stdout);
    if (clickhouse !== null) await logScoreRows(clickhouse, out, log);
  } finally {
    dispose();
    await closeDemo(outputs, closeAtEnd, servers, log);
  }
}

function reportSerials(r: SerialPartResult | null, log: (line: string) => void): void {
  if (r === null) return;
  log(
    `serials: ${r.events} events scored, ${r.flagged} flagged, ${r.quarantinedEvents} quarantined (${r.quarantineEntries} serials on the list)`,
  );
}

/** The outputs, then what else the demo opened (the failure model), then the servers, newest first. */
async function closeDemo(
  outputs: Outputs | null,
  closeAtEnd: ReadonlyArray<() => Promise<void>>,
  servers: Array<{ name: string; server: NatsServer | ClickHouseServer }>,
  log: (line: string) => void,
): Promise<void> {
  if (outputs !== null) await outputs.close().catch((e: Error) => log(`closing outputs: ${e.message}`));
  for (const close of closeAtEnd) await close().catch((e: Error) => log(`closing: ${e.message}`));
  for (const s of servers.reverse()) {
    await s.server.stop();
    log(`${s.name} stopped`);
  }
}

/**
 * The serialization side: the serial simulator (at `--serial-rate` per line, live) published on
 * lw.demo.serial.<line> through JetStream, consumed by the run's serial job (stream LW_DEMO_SERIAL):
 * quarantine on the `quarantine` topic, lw.demo.quarantine, /api/quarantine and ClickHouse.
 */
function startSerials(
  flags: DemoFlags,
  url: string,
  outputs: Outputs,
  stopped: Promise<void>,
  log: (line: string) => void,
): Promise<SerialPartResult> {
  const sim = new SerialSimulator({
    seed: flags.seed,
    lines: flags.serialLines,
    ratePerLine: flags.serialRate,
    batchSerials: flags.serialBatchSerials,
    attackEvery: flags.serialAttackEvery,
    startTime: Date.now(),
  });
  let stopPublishing = false;
  let publisher: Promise<unknown> = Promise.resolve();
  // The job stops after the publisher, so every published event is scored.
  const jobStop = stopped.then(async () => {
    stopPublishing = true;
    await publisher;
  });
  return runSerialPart({
    flags,
    host: outputs,
    stop: jobStop,
    log: cliLogger(),
    summaryIntervalMs: parseDuration(flags.summaryInterval),
    console: process.stdout,
    source: { kind: "nats", url, site: SITE, stream: STREAM, outputFormat: "json" },
    onReady: () => {
      publisher = publishSerialEvents(() => (stopPublishing ? null : sim.next()), {
        ...DEFAULT_SERIAL_PUBLISH,
        url,
        site: SITE,
        format: "msgpack",
        jetstream: true,
        rate: flags.serialLines * flags.serialRate,
        inFlightMax: 256,
      }).catch((error: Error) => log(`serial publisher failed: ${error.message}`));
      log(
        `serials: ${flags.serialLines} lines × ${flags.serialRate}/s → lw.${SITE}.serial.> → serial job; quarantine on lw.${SITE}.quarantine, the quarantine topic and /api/quarantine`,
      );
    },
  });
}

function printWelcome(
  flags: DemoFlags,
  natsUrl: string,
  outputs: Outputs,
  clickhouse: DemoClickHouse | null,
  readingsPerSec: number,
  durationMs: number | undefined,
): void {
  const access = outputs.liveAccess();
  const t = access?.generatedToken === undefined ? "" : `?token=${encodeURIComponent(access.generatedToken)}`;
  const lines = [
    "",
    `linewatch demo: ${flags.machines} machines × ${SENSOR_TYPES.length} sensors at ${flags.rate} Hz (${readingsPerSec} readings/s, seed ${flags.seed}) → NATS JetStream stream ${STREAM} → ${flags.analysis} on ${flags.workers} workers`,
    `  NATS         ${natsUrl}   readings lw.${SITE}.sensor.>   scores lw.${SITE}.score.>   alerts lw.${SITE}.alert.>`,
    `               e.g. nats sub -s ${natsUrl} 'lw.${SITE}.score.M-001.>'`,
  ];
  if (access !== null) {
    lines.push(
      `  Dashboard    ${access.dashboardUrl}`,
      `  HTTP API     ${access.url}/healthz   ${access.url}/metrics   ${access.url}/api/ml/maintenance/health/M-001/${t}`,
      ...(flags.qualityModel === false
        ? []
        : [`               ${access.url}/api/ml/quality/batches/${t}   (batch quality: lw.${SITE}.process.>, lw.${SITE}.quality.>)`]),
      `  WebSocket    ${access.wsUrl}${t}`,
      `               send ${JSON.stringify({ type: "subscribe", topics: [machineTopic("M-001"), TOPIC_ALERTS] })}   (topics: machine/<id>, ${TOPIC_ALERTS}, …; docs/api.md)`,
    );
    if (t !== "")
      lines.push(`  token        ${access.generatedToken}   (generated for this run; send as ?token= or Authorization: Bearer)`);
  }
  if (clickhouse !== null) {
    const db = clickhouse.database;
    const q = `SELECT machine_id, sensor_type, count(), avg(value) FROM ${db}.ml_scores FINAL GROUP BY machine_id, sensor_type ORDER BY machine_id, sensor_type`;
    lines.push(
      `  ClickHouse   ${clickhouse.server.url}   database ${db} (this run's)   tables ml_sensor_data, ml_scores, ml_alerts, ml_equipment_health, …`,
      `               curl '${clickhouse.server.url}/' --data-binary '${q}'`,
    );
  } else lines.push("  ClickHouse   not running (not installed or --no-clickhouse)");
  lines.push(
    durationMs === undefined ? "  Ctrl-C stops everything cleanly." : `  Stops by itself after ${flags.duration} (or Ctrl-C).`,
    "",
  );
  process.stdout.write(`${lines.join("\n")}\n`);
}

/** The demo's simulator, live from now, in chunks of ~100 ms of readings (the stream looks live rather than in bursts). */
function demoSimulator(flags: DemoFlags, scorecard: FaultScorecard): StoppableSimulator {
  const simulator = new StoppableSimulator({
    seed: flags.seed,
    machines: flags.machines,
    sensorTypes: SENSOR_TYPES,
    rateHz: flags.rate,
    faultRate: flags.faultRate,
    startTime: Date.now(),
  });
  simulator.chunkMax = Math.max(1, Math.round((flags.machines * SENSOR_TYPES.length * flags.rate) / 10));
  simulator.scorecard = scorecard;
  scorecard.addSensorKeys(simulator.keys().map((k) => `${k.machine_id}/${k.sensor_type}`));
  return simulator;
}

/** The final count of this run's score rows (and quality predictions and outcomes) in ClickHouse. */
async function logScoreRows(clickhouse: DemoClickHouse, outputs: Outputs, log: (line: string) => void): Promise<void> {
  await outputs.flush().catch(() => undefined);
  for (const table of ["ml_scores", "ml_quality_predictions", "ml_quality_outcomes"]) {
    const rows = await clickhouse.server
      .query(`SELECT count() FROM ${clickhouse.database}.${table} FINAL`)
      .catch((e: Error) => `? (${e.message.trim()})`);
    log(`ClickHouse ${clickhouse.database}.${table} (this run): ${rows.trim()} rows`);
  }
}

/** The plant simulator, stoppable from outside (publishSimulation runs until `done`), in small chunks. */
class StoppableSimulator extends PlantSimulator {
  stopped = false;
  chunkMax = 4096;
  /** Gets the labels and the readings' times as they are generated (every generated reading is published). */
  scorecard?: FaultScorecard;
  override get done(): boolean {
    return this.stopped || super.done;
  }
  override nextColumns(max: number): SimulatedColumns {
    const columns = super.nextColumns(Math.min(max, this.chunkMax));
    this.scorecard?.addLabels(this.drainLabels());
    // Openings on a degrading machine's moved sensors are wear, not false (fault-scorecard.ts).
    this.scorecard?.addDegradation(this.drainDegradation());
    if (columns.length > 0) this.scorecard?.coverReadings(columns.times[0], columns.times[columns.length - 1]);
    return columns;
  }
}

// ---------------------------------------------------------------- ClickHouse

/** The demo's clickhouse-server and this run's database in it. */
interface DemoClickHouse {
  server: ClickHouseServer;
  /**
   * `demo_<UTC start to the second>`: the server's data stays in `<dir>/clickhouse` across runs,
   * so each run writes a database of its own and its final count and printed query cover it only.
   */
  database: string;
}

/** Starts clickhouse-server in `<dir>/clickhouse` unless off, not installed or failing (then said, and null). */
async function startDemoClickHouse(
  flags: DemoFlags,
  dir: string,
  stopRequested: () => boolean,
  log: (line: string) => void,
): Promise<DemoClickHouse | null> {
  if (!flags.clickhouse) {
    log("ClickHouse off (--no-clickhouse)");
    return null;
  }
  if (!commandInstalled("clickhouse-server")) {
    log("clickhouse-server is not installed (apt-get install -y clickhouse-server): running without ClickHouse");
    return null;
  }
  if (stopRequested()) return null;
  const chDir = join(dir, "clickhouse");
  try {
    const server = await startClickHouseServer({ dir: chDir, processGroup: true });
    const database = `demo_${new Date().toISOString().replace(/[-:]/g, "").replace("T", "_").slice(0, 15)}`;
    log(`clickhouse-server ${server.url} (config and data in ${chDir}; this run writes database ${database})`);
    return { server, database };
  } catch (error) {
    log(`clickhouse-server did not start, running without it: ${(error as Error).message}`);
    return null;
  }
}

/**
 * The demo's failure predictions: the built-in plant's model (builtin-model.ts) unless
 * `--no-predict`, or the analyses could not feed it (no rolling analysis, another window). The demo
 * keys by machine/sensor, not by operating mode: a window then holds the last 64 readings of the
 * sensor in whatever mode, which differs from the model's training rows only right after a mode
 * change.
 */
async function demoPredictions(
  flags: DemoFlags,
  log: (line: string) => void,
  closeAtEnd: Array<() => Promise<void>>,
): Promise<PredictionService | undefined> {
  const choice: PredictChoice = { ...flags, predict: flags.predict ? undefined : false };
  resolvePredict(choice, (line) => log(line.replace(/^linewatch run: /, "")));
  if (choice.predict !== BUILTIN_MODEL) return undefined;
  const model = await loadBuiltinModel((line) => log(line.replace(/^linewatch run: /, "")));
  closeAtEnd.push(() => model.close());
  return new PredictionService({
    ...DEFAULT_PREDICTION_SERVICE,
    model,
    intervalMs: DEFAULT_PREDICTION_SERVICE.intervalMs,
    log: cliLogger(),
  });
}
