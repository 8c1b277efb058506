/** `linewatch run`: flags → {@link runJob}. Default: the built-in plant simulator, live, until Ctrl-C. */
import { readFileSync, statSync } from "node:fs";
import { basename } from "node:path";
import { availableParallelism } from "node:os";
import { Command, Option } from "commander";
import { parseDuration, ConfigError, DEFAULT_WORKERS, kernelHash } from "../core/mod.js";
import {
  auditConfig,
  auditStamp,
  runJob,
  Outputs,
  type OutputsOptions,
  AlertRouter,
  DEFAULT_NATS_JOB,
  runNatsJob,
  runIngestNatsJob,
  type NatsJobResult,
  DEFAULT_PREDICTION_SERVICE,
  PredictionService,
  FailureScorecard,
  FaultScorecard,
  formatFailureScore,
  followRegistry,
  iforestFromRegistry,
  productionModel,
  type RegistryFollowSpec,
  DEFAULT_MODEL_DRIFT,
  DEFAULT_RETRAIN,
  DEFAULT_RETAINED_UNITS,
  RetainedUnits,
  Retrainer,
} from "../jobs/mod.js";
import { retrainOnWorker } from "./retrain.js";
import { PSI_WINDOW_MAX } from "../../operators/drift/mod.js";
import {
  DEFAULT_REGISTRY_BUCKET,
  DEFAULT_REGISTRY_DIR,
  DEFAULT_REGISTRY_POLL_MS,
  type ModelEntry,
  ModelRegistry,
  openRegistryStore,
} from "../../connectors/registry/mod.js";
import type { IsolationForestModel } from "../../operators/iforest/mod.js";
import { encode as encodeMsgpack } from "@msgpack/msgpack";
import { DEFAULT_FILE_BYTES_MAX, RotatingFileSink, readCmapss } from "../../connectors/files/mod.js";
import { connectNats } from "../../connectors/nats/mod.js";
import {
  DEFAULT_SIMULATOR_OPTIONS,
  SENSOR_TYPES,
  type SensorType,
  CMAPSS_ORDERS,
  CmapssFleet,
  parseCmapssShifts,
  parseUnitList,
  type CmapssOrder,
} from "../../connectors/sim/mod.js";
import type { AlertEpisodeEvent, SpcLimitsChange } from "../../operators/spc/mod.js";
import { addAnalysisFlags, analysesFromFlags, analysisSpecsFromFlags, type AnalysisFlags, REGISTRY_MODEL } from "./analysis-flags.js";
import { BUILTIN_MODEL, loadBuiltinModel, resolvePredict } from "./builtin-model.js";
import { reportScorecard, SCORECARD_JSON_HELP } from "./scorecard-report.js";
import { type AlertCallback, addKeyingFlags, RUN_DEFAULT_ANALYSIS, runAnalysisContext, settleTime } from "./run-settings.js";
import { durationIn, durationOption, integerOption, numberOption } from "./options.js";
import { cliLogger } from "./logging.js";
import { applyConfigSources } from "./config-file.js";
import {
  addRunSerialFlags,
  runSerialPart,
  serialsWanted,
  splitSerialAnalysis,
  type RunSerialFlags,
  type SerialPartResult,
} from "./serial-run.js";
import {
  addRunQualityFlags,
  type QualityPartResult,
  reportQuality,
  resolveQualityModel,
  type RunQualityFlags,
  runQualityPart,
} from "./quality-run.js";
import { checkSerialDurations } from "./serial-flags.js";
import { FailureModel } from "../../operators/prediction/mod.js";
import type { RecordAnalysis } from "../../operators/mod.js";

interface RunFlags extends AnalysisFlags, RunSerialFlags, RunQualityFlags {
  audit?: boolean;
  seed: number;
  machines: number;
  sensors?: string;
  rate: number;
  faultRate: number;
  speed: string;
  duration?: string;
  records?: number;
  workers: number;
  batchRecords: number;
  out: string;
  file: boolean;
  alerts: string;
  fileBytesMax: number;
  zAlarm: number;
  summaryInterval: string;
  flushInterval: string;
  limitsControl?: string;
  keyByMode: boolean;
  settle?: string;
  nats?: string;
  stream?: string;
  site: string;
  partitions?: string;
  partitionCount?: number;
  ingestWorkers?: number;
  checkpointInterval: string;
  fetch: number;
  publishScores: boolean;
  outputFormat: "json" | "msgpack";
  clickhouse?: string;
  clickhouseDb?: string;
  spillDir: string;
  port?: number;
  live: boolean;
  host: string;
  tokens?: string;
  cmapss?: string;
  cmapssUnits?: string;
  cmapssShift?: string;
  cmapssOrder: CmapssOrder;
  cycle: string;
  scorecardJson?: string;
  /** A model file, `registry`, `builtin`; false: `--no-predict`; undefined: the built-in plant's model on the simulator (resolvePredict). */
  predict?: string | false;
  predictInterval: string;
  registry?: string;
  registryPoll: string;
  driftWindow: number;
  driftModerate: number;
  driftMajor: number;
  retrainOnDrift?: boolean;
  autoPromote?: boolean;
  retrainEpochs: number;
  retrainMinUnits: number;
  /** Not a flag: `--model registry`'s production iforest model, read at start (resolveRegistryIforest). */
  iforestRegistry?: { model: IsolationForestModel; follow: RegistryFollowSpec };
}

export function runCommand(): Command {
  const command = new Command("run")
    .description("run the main job: plant simulator → analyses on the worker pool → scores and alerts files + live console summary")
    .option("--seed <n>", "simulator seed", integerOption("--seed", 0, Number.MAX_SAFE_INTEGER), 1)
    .option("--machines <n>", "simulated machines", integerOption("--machines", 1, 10_000), 8)
    .option("--sensors <list>", `sensor types, comma separated (default all: ${SENSOR_TYPES.join(",")}; with --cmapss: s1…s21)`)
    .option("--rate <hz>", "readings per second per sensor", numberOption("--rate"), 10)
    .option("--fault-rate <f>", "injected faults per sensor per hour", numberOption("--fault-rate"), 2)
    .option("--speed <x>", "simulated time per wall-clock time: 1 = live, 60 = a minute per second, max = as fast as possible", "1")
    .option("--duration <D>", "stop after D of simulated time (90s, 15m, 1h)", durationOption)
    .option("--records <n>", "stop after n readings", integerOption("--records", 1, Number.MAX_SAFE_INTEGER))
    .option("--workers <n>", "kernel threads (ingest workers: inline)", integerOption("--workers", 0, 256), DEFAULT_WORKERS)
    .option("--batch-records <n>", "records per kernel task", integerOption("--batch-records", 1, 1 << 20), 4096)
    .option("--out <file>", "NDJSON scores file", "out/scores.ndjson")
    .option("--no-file", "write no scores file")
    .option("--alerts <file>", "NDJSON alert events (SPC rules, CUSUM, EWMA), opened and closed", "out/alerts.ndjson")
    .option(
      "--file-bytes-max <n>",
      "rotate the scores file past this size (keeps one previous file)",
      integerOption("--file-bytes-max", 1024, Number.MAX_SAFE_INTEGER),
      DEFAULT_FILE_BYTES_MAX,
    )
    .option("--z-alarm <z>", "|z| counted as an anomaly in the summary", numberOption("--z-alarm"), 4)
    .option("--summary-interval <D>", "console summary interval (0: none)", durationOption, "1s");
  addKeyingFlags(command);
  addCmapssFlags(command);
  addNatsFlags(command);
  addOutputFlags(command);
  addModelFlags(command);
  addRunQualityFlags(command);
  command.option(
    "--config <file>",
    "option values from a JSON or YAML file (command line > LINEWATCH_<OPTION> environment > file > default)",
  );
  return addRunSerialFlags(addAnalysisFlags(command, RUN_DEFAULT_ANALYSIS, true)).action(async (_flags: RunFlags, cmd: Command) => {
    applyConfigSources(cmd);
    const flags = cmd.opts<RunFlags>();
    const speed = flags.speed === "max" ? Infinity : Number(flags.speed);
    if (!(speed > 0)) throw new ConfigError("--speed", `must be a positive number or "max", got "${flags.speed}"`);
    checkRunFlags(flags);
    // `serial` in --analysis is the serial job beside the sensor analyses.
    const split = splitSerialAnalysis(flags.analysis);
    flags.analysis = split.sensor;
    if (split.serial && flags.serials === undefined) flags.serials = true;
    const withSerials = serialsWanted(flags, { speed, cmapss: flags.cmapss !== undefined, nats: flags.nats !== undefined });
    if (flags.model === REGISTRY_MODEL) flags.iforestRegistry = await resolveRegistryIforest(flags);
    resolvePredict(flags);
    resolveQualityModel(flags, { speed, nats: flags.nats !== undefined, cmapss: flags.cmapss !== undefined });
    if (flags.qualityModel === REGISTRY_MODEL) flags.qualityRegistry = await resolveRegistryQuality(flags);
    await runWithModels(flags, speed, withSerials);
  });
}

/** The run once its flags are checked: the source, the analyses, the prediction model (followed in the registry when asked), the outputs. */
async function runWithModels(flags: RunFlags, speed: number, withSerials: boolean): Promise<void> {
  const log = cliLogger();
  const sensorTypes = flags.sensors?.split(",").map((s) => s.trim());
  const fleet = flags.cmapss === undefined ? undefined : cmapssFleetFromFlags(flags, speed, sensorTypes);
  const loaded =
    flags.predict === undefined
      ? null
      : await loadModel(
          flags,
          fleet?.keys().map((k) => k.sensor_type) ?? (flags.nats === undefined ? (sensorTypes ?? [...SENSOR_TYPES]) : null),
        );
  let predictions: PredictionService | undefined;
  let retrain: Awaited<ReturnType<typeof retrainingOf>>;
  let stopFollowing = () => {};
  try {
    predictions =
      loaded === null
        ? undefined
        : new PredictionService({
            ...DEFAULT_PREDICTION_SERVICE,
            model: loaded.model,
            intervalMs: parseDuration(flags.predictInterval),
            log,
          });
    const alertsFile = new RotatingFileSink(flags.alerts, flags.fileBytesMax);
    retrain = await retrainingOf(flags, fleet);
    const outputs = await startOutputs(flags, speed, predictions, fleet, retrain);
    const fromClickHouse = retrain === undefined ? null : outputs.sensorHistorySource(retrain.history);
    if (fromClickHouse !== null) retrain?.retrainer.readUnitsFrom(fromClickHouse);
    stopFollowing = followRegistryModels(flags, predictions, loaded?.entryId ?? null, outputs);
    if (flags.nats !== undefined) {
      try {
        await runOnNats(flags, alertsFile, outputs, predictions, withSerials);
      } finally {
        stopFollowing();
        await outputs.close();
      }
      reportPredictions(predictions);
      return;
    }
    const cards = fleet === undefined ? simulatorScorecards(predictions) : undefined;
    await runOnSource(flags, speed, fleet, alertsFile, outputs, withSerials, cards);
    reportPredictions(predictions);
  } finally {
    // A retraining under way finishes (it registers its candidate) before the run lets go of the registry.
    await retrain?.retrainer.idle();
    await retrain?.registry.close();
    stopFollowing();
    // The model in use: the one loaded, or the last the registry swapped in (a swap closes the one it replaced).
    await predictions?.model.close?.();
    await loaded?.model.close();
  }
}

/** Where readings come from instead of the simulator: a C-MAPSS file replayed as a fleet. */
function addCmapssFlags(command: Command): void {
  command
    .option(
      "--cmapss <file>",
      "replay a NASA C-MAPSS file (train_FD001.txt) as a fleet instead of the simulator: unit N → machine ENG-00N, sensors s1…s21, one reading per sensor and cycle",
    )
    .option("--cmapss-units <list>", "with --cmapss: the units to replay, e.g. 1-10 or 1,3,7-9 (default all)")
    .option(
      "--cmapss-shift <list>",
      "with --cmapss: sensors that read a constant more from a cycle on, on every unit (data drift a model's inputs go through), e.g. s11:+0.5@100,s7:-2",
    )
    .addOption(
      new Option("--cmapss-order <o>", "with --cmapss: fleet = the units side by side, cycle by cycle; unit = one unit after another")
        .choices([...CMAPSS_ORDERS])
        .default("fleet"),
    )
    .option("--cycle <D>", "with --cmapss: event time of one operational cycle (paced by --speed)", durationOption, "1h");
}

/** Reading from NATS (core or JetStream) instead of the simulator. */
function addNatsFlags(command: Command): void {
  command
    .option("--nats <url>", "read from NATS instead of the simulator (lw.<site>.sensor.>; msgpack, JSON or frames)")
    .option("--stream <name>", "with --nats: consume this JetStream stream (durable pull consumers, checkpoints) instead of core NATS")
    .option("--site <s>", "site token of the subjects", DEFAULT_NATS_JOB.site)
    .option(
      "--partitions <list>",
      "with --stream: the partitions this instance owns, e.g. 0,1 (the server maps subjects to lw.<site>.p.<k>.…)",
    )
    .option(
      "--partition-count <n>",
      "how many partitions the server maps to (with --partitions; core NATS: the ingest workers subscribe to lw.<site>.p.<k>.sensor.>)",
      integerOption("--partition-count", 1, 1024),
    )
    .option("--checkpoint-interval <D>", "with --stream: how often each partition's state is saved", durationOption, "5s")
    .option("--fetch <n>", "with --stream: messages per fetch", integerOption("--fetch", 1, 100_000), DEFAULT_NATS_JOB.fetchMessagesMax)
    .option(
      "--ingest-workers <n>",
      "with --nats: threads that each own whole partitions (their own connection, decode, kernels, outputs); 0: the main-thread sensor job. " +
        "Default: one per two cores up to the partitions owned (--partition-count / --partitions; core NATS subscribes to lw.<site>.p.<k>.sensor.>), " +
        "1 without a partition mapping (it takes the whole subject); 0 with --predict",
      integerOption("--ingest-workers", 0, 64),
    )
    .option("--no-publish-scores", "with --nats: do not publish scores on lw.<site>.score.<machine>.<sensor>")
    .addOption(
      new Option("--output-format <f>", "with --nats: encoding of published scores and alerts")
        .choices(["json", "msgpack"])
        .default("json"),
    );
}

/** The prediction model, its drift, drift-triggered retraining and the model registry. */
function addModelFlags(command: Command): void {
  command
    .option(
      "--predict <model.onnx>",
      "failure predictions per machine from this model (remaining useful life, failure probability): scheduled, POST /api/ml/maintenance/predict/{machine}/, ClickHouse, topics; sets the rolling window to the model's. `registry`: the registry's production rul model, followed while running. `builtin`: the simulator's own failure model, trained on its wear and cached (the default on the simulator)",
    )
    .option("--no-predict", "no failure predictions (on the simulator they are on by default, from the built-in plant's model)")
    .option(
      "--drift-window <n>",
      "with --predict or the iforest analysis: predictions (scores) in the drift window (PSI of each model feature against its training reference; docs/drift.md)",
      integerOption("--drift-window", 100, PSI_WINDOW_MAX),
      DEFAULT_MODEL_DRIFT.psi.window,
    )
    .option(
      "--drift-moderate <psi>",
      "PSI from which a feature's drift is moderate",
      numberOption("--drift-moderate"),
      DEFAULT_MODEL_DRIFT.psi.moderate,
    )
    .option(
      "--drift-major <psi>",
      "PSI from which a feature's drift is major (a model_drift episode of high severity)",
      numberOption("--drift-major"),
      DEFAULT_MODEL_DRIFT.psi.major,
    )
    .option(
      "--retrain-on-drift",
      "with --predict registry: on a major model_drift episode, train a candidate from the failed machines the run retained, validate it on a hold-out against the production model and register it (docs/commands/models.md)",
    )
    .option(
      "--auto-promote",
      "with --retrain-on-drift: promote the candidate when its hold-out RMSE is not worse than the production model's",
    )
    .option(
      "--retrain-epochs <n>",
      "with --retrain-on-drift: training epochs",
      integerOption("--retrain-epochs", 1, 10_000),
      DEFAULT_RETRAIN.epochs,
    )
    .option(
      "--retrain-min-units <n>",
      "with --retrain-on-drift: failed machines the run must have retained before it retrains",
      integerOption("--retrain-min-units", 2, 100_000),
      DEFAULT_RETRAIN.minUnits,
    )
    .option(
      "--registry <dir|url>",
      `the model registry of --model registry, --predict registry and --quality-model registry: a directory or a nats:// server (its object store ${DEFAULT_REGISTRY_BUCKET}); default the --nats server, else ${DEFAULT_REGISTRY_DIR}`,
    )
    .option(
      "--registry-poll <D>",
      "how often a run following the registry reads it (a new production model is swapped in between batches; a quality model at each running batch's next prediction)",
      durationOption,
      `${DEFAULT_REGISTRY_POLL_MS / 1000}s`,
    )
    .option(
      "--predict-interval <D>",
      "with --predict: event time between two scheduled predictions of a machine (live: wall time; 0: every time step)",
      durationOption,
      "10s",
    );
}

/** Where results go besides the files: ClickHouse, the live server, predictions, limits changes. */
function addOutputFlags(command: Command): void {
  command.option(
    "--audit",
    "audit record on every score (ClickHouse ml_scores, score lines, WebSocket frames): kernel_hash, config_hash, model_version, limits_version (docs/commands/audit.md)",
  );
  command
    .option("--scorecard-json <file>", SCORECARD_JSON_HELP)
    .option(
      "--clickhouse <url>",
      "write readings, scores, alerts and machine health to ClickHouse (http://host:8123); tables created if missing",
    )
    .option("--clickhouse-db <name>", "ClickHouse database", "default")
    .option("--spill-dir <dir>", "where rows wait on disk while ClickHouse is down", "out/clickhouse-spill")
    .option(
      "--port <n>",
      `serve the dashboard, WebSocket topics, the HTTP API and /metrics on this port (default on the simulator and --cmapss at a paced --speed: ${DEFAULT_DASHBOARD_PORT}, or a free port when that is taken; with --nats or --speed max: none unless given)`,
      integerOption("--port", 0, 65535),
    )
    .option("--no-live", "no live server (no dashboard, topics or API)")
    .option("--host <addr>", "address the live server listens on", "127.0.0.1")
    .option(
      "--tokens <file>",
      'access tokens for the live server: {"tokens": [{"token", "topics", "scopes", …}]} (none: one is generated and printed)',
    )
    .option("--flush-interval <D>", "live runs: most time a reading waits in a partly filled buffer", durationOption, "250ms")
    .option(
      "--limits-control <file>",
      'JSON file watched while running: {"changes": [{"key": "M-001/temperature", "cl": 70, "sigma": 0.5} | {"key": …, "rebaseline": 200}]}; each new version of the file is applied once',
    );
}

/**
 * ClickHouse, the live server and the predictions of a run; the accuracy of predictions over a
 * C-MAPSS training file's ground truth; the audit record on every score under --audit.
 */
async function startOutputs(
  flags: RunFlags,
  speed: number,
  predictions: PredictionService | undefined,
  fleet: CmapssFleet | undefined,
  retrain?: OutputsOptions["retrain"],
): Promise<Outputs> {
  // A training file's units run to failure: their true remaining life is known at every cycle.
  const truth = fleet !== undefined && basename(flags.cmapss as string).startsWith("train_") ? fleet : undefined;
  const outputs = await Outputs.start({
    clickhouse:
      flags.clickhouse === undefined ? undefined : { url: flags.clickhouse, database: flags.clickhouseDb, spillDir: flags.spillDir },
    live: liveOptions(flags, speed),
    healthIntervalMs: 10_000,
    predictions,
    groundTruth: truth === undefined ? undefined : (machineId, timeMs) => truth.trueRulCycles(machineId, timeMs),
    drift: {
      ...DEFAULT_MODEL_DRIFT,
      psi: { ...DEFAULT_MODEL_DRIFT.psi, window: flags.driftWindow, moderate: flags.driftModerate, major: flags.driftMajor },
    },
    retrain,
    iforestDrift: flags.analysis.split(",").some((a) => a.trim() === "iforest"),
    log: cliLogger(),
  });
  startAudit(flags, outputs);
  return outputs;
}

/** The live server's port when `--port` is not given, on the simulator and a C-MAPSS replay. */
export const DEFAULT_DASHBOARD_PORT = 8080;

/**
 * The live server of a run: `--port` as given; else, on the simulator and a C-MAPSS replay at a
 * paced speed, the dashboard on {@link DEFAULT_DASHBOARD_PORT} (a free port when that is taken) —
 * what a newcomer's `npm start` shows; none with `--nats` (a plant's deployment chooses its port)
 * or `--speed max` (that run shows the sensor pipeline's throughput, as without the serial job).
 * `--no-live`: none. Its address (with the generated token) is the run's first line on stderr.
 */
function liveOptions(flags: RunFlags, speed: number): OutputsOptions["live"] {
  if (!flags.live) return undefined;
  if (flags.port === undefined && (flags.nats !== undefined || !Number.isFinite(speed))) return undefined;
  return {
    port: flags.port ?? DEFAULT_DASHBOARD_PORT,
    portFallback: flags.port === undefined,
    host: flags.host,
    tokensFile: flags.tokens,
    announce: (url) => process.stderr.write(`linewatch run: dashboard ${url}\n`),
  };
}

/** The checks of flags that are read only once the jobs start: a wrong one stops the run before anything starts. */
function checkRunFlags(flags: RunFlags): void {
  if (flags.cmapss !== undefined && flags.nats !== undefined) {
    throw new ConfigError(
      "--cmapss",
      "reads a file; with --nats the readings come from NATS (publish them with `linewatch simulate --nats URL --cmapss FILE`)",
    );
  }
  if (flags.span !== undefined) durationIn(flags.span, "ms", "--span");
  if (flags.scorecardJson !== undefined && (flags.nats !== undefined || flags.cmapss !== undefined)) {
    throw new ConfigError(
      "--scorecard-json",
      `the scorecard compares the alerts with the simulator's fault labels; ${flags.nats !== undefined ? "--nats" : "--cmapss"} has none`,
    );
  }
  checkSerialDurations(flags, "ms");
}

/** `linewatch run` on the simulator or a C-MAPSS fleet. */
async function runOnSource(
  flags: RunFlags,
  speed: number,
  fleet: CmapssFleet | undefined,
  alertsFile: RotatingFileSink,
  outputs: Outputs,
  withSerials: boolean,
  cards?: SimulatorScorecards,
): Promise<void> {
  const alerts = new AlertRouter({ outputs, file: alertsFile, console: process.stdout });
  const onAlert: AlertCallback = (e) => {
    alerts.route(e);
    cards?.faults.observe(e);
  };
  const analyses = checkPredictionAnalyses(flags, analysesFromFlags(flags, runAnalysisContext(onAlert, flags.iforestRegistry)));
  const sensorTypes = flags.sensors?.split(",").map((s) => s.trim());
  let onStop: () => void = () => {};
  const stop = new Promise<void>((resolve) => (onStop = resolve));
  const signals = ["SIGINT", "SIGTERM"] as const;
  for (const s of signals) process.once(s, onStop);
  const outPath = flags.file ? flags.out : null;
  const sourceText =
    fleet === undefined
      ? `simulator (${flags.machines} machines, ${flags.rate} Hz/sensor, seed ${flags.seed})`
      : `C-MAPSS ${flags.cmapss} (${fleet.units.length} units, ${fleet.readingsTotal} readings, ${flags.cycle} per cycle, ${flags.cmapssOrder} order)`;
  process.stderr.write(
    `linewatch run: ${sourceText} → ${analyses.map((a) => a.name).join(" + ")} ` +
      `on ${flags.workers} workers${outPath ? ` → ${outPath}` : ""}, alerts → ${flags.alerts}; speed ${flags.speed}. Ctrl-C stops.\n`,
  );
  // The serial job runs beside the sensor job until Ctrl-C or the sensor source's end.
  let sensorEnded: () => void = () => {};
  const sensorDone = new Promise<void>((resolve) => (sensorEnded = resolve));
  const sideParts = startSideParts(flags, speed, outputs, alerts, { stop, sensorDone }, withSerials);
  const result = await runJob({
    source: fleet,
    simulator: {
      seed: flags.seed,
      machines: flags.machines,
      sensorTypes: sensorTypes as SensorType[] | undefined,
      rateHz: flags.rate,
      faultRate: flags.faultRate,
      startTime: speed === 1 ? Math.floor(Date.now()) : undefined,
      durationMs: flags.duration === undefined ? undefined : parseDuration(flags.duration),
      maxRecords: flags.records,
    },
    analyses,
    // A C-MAPSS unit is always "running": its keys are machine/sensor.
    keyByMode: fleet === undefined && flags.keyByMode,
    settleMs: settleTime(flags),
    scorecard: cards?.faults,
    failureScorecard: cards?.failures,
    workers: flags.workers,
    groups: 16,
    batchRecordsMax: flags.batchRecords,
    speed,
    outPath,
    fileBytesMax: flags.fileBytesMax,
    zAlarm: flags.zAlarm,
    alertsSummary: () => alerts.summary(),
    outputs,
    limitsChanges: flags.limitsControl === undefined ? undefined : watchLimitsFile(flags.limitsControl),
    flushIntervalMs: parseDuration(flags.flushInterval),
    summaryIntervalMs: parseDuration(flags.summaryInterval),
    console: process.stdout,
    log: cliLogger(),
    stop,
  }).finally(() => sensorEnded());
  const serial = await sideParts();
  await alertsFile.close();
  await outputs.close();
  for (const s of signals) process.off(s, onStop);
  for (const a of analyses) for (const note of a.notes?.() ?? []) process.stderr.write(`linewatch run: ${note}\n`);
  if (serial !== null) reportSerial(serial);
  if (cards !== undefined) await reportSimulatorScorecards(cards, flags.scorecardJson);
  process.stderr.write(`linewatch run: stopped after ${result.metrics.recordsOut} records in ${result.seconds.toFixed(1)} s\n`);
}

/** The serial job of a run on the simulator, until `stop`; its failure is kept for the caller's await. */
function startSerialPart(flags: RunFlags, speed: number, outputs: Outputs, stop: Promise<void>): Promise<SerialPartResult> {
  const serialPart = runSerialPart({
    flags,
    host: outputs,
    stop,
    log: cliLogger(),
    summaryIntervalMs: parseDuration(flags.summaryInterval),
    console: process.stdout,
    source: {
      kind: "simulator",
      seed: flags.seed,
      speed,
      startTime: speed === 1 ? Math.floor(Date.now()) : undefined,
      durationMs: flags.duration === undefined ? undefined : parseDuration(flags.duration),
      flushIntervalMs: parseDuration(flags.flushInterval),
    },
  });
  // Awaited after the sensor job; a failure before that is not lost.
  serialPart.catch(() => undefined);
  process.stderr.write(
    `linewatch run: serials: simulator (${flags.serialLines} lines, ${flags.serialRate} serials/s per line) → serial analysis${flags.serialQuarantine ? `, quarantine list ${flags.serialQuarantine}` : ""}; --no-serials turns it off\n`,
  );
  return serialPart;
}

/** The quality job of a run (--quality-model), until `stop`; null without a model. Its failure is kept for the caller's await. */
function startQualityPart(
  flags: RunFlags,
  outputs: Outputs,
  route: (e: AlertEpisodeEvent) => void,
  stop: Promise<void>,
  source: Parameters<typeof runQualityPart>[0]["source"],
): Promise<QualityPartResult> | null {
  if (flags.qualityModel === undefined || flags.qualityModel === false) return null;
  const part = runQualityPart({ flags, host: outputs, route, source, stop, log: cliLogger(), console: process.stdout });
  part.catch(() => undefined);
  process.stderr.write(
    `linewatch run: quality: ${source.kind === "nats" ? `lw.${source.site}.process.> and lw.${source.site}.quality.>${source.stream === undefined ? "" : ` (JetStream, stream ${source.stream}_QUALITY unless one captures them)`}` : `batch simulator (${flags.qualityLines} lines)`} → model ${flags.qualityModel} every ${flags.qualityInterval} of a batch\n`,
  );
  return part;
}

/**
 * The serial and quality jobs beside the simulator's sensor job, until Ctrl-C or the sensor job's end. Returns the wait
 * for both: the quality part's closing line is printed then, the serial part's result returned.
 */
function startSideParts(
  flags: RunFlags,
  speed: number,
  outputs: Outputs,
  alerts: AlertRouter,
  ends: { stop: Promise<void>; sensorDone: Promise<void> },
  withSerials: boolean,
): () => Promise<SerialPartResult | null> {
  const stop = Promise.race([ends.stop, ends.sensorDone]);
  const serialPart = withSerials ? startSerialPart(flags, speed, outputs, stop) : null;
  // With --duration the batch simulator stops at its own end of simulated time (Ctrl-C still stops it); else with the sensor job.
  const qualityStop = flags.duration === undefined ? stop : ends.stop;
  const qualityPart = startQualityPart(flags, outputs, alerts.route, qualityStop, simulatorQualitySource(flags, speed));
  return async () => {
    const serial = serialPart === null ? null : await serialPart;
    if (qualityPart !== null) reportQuality(await qualityPart, process.stderr);
    return serial;
  };
}

/** The quality job's batch simulator, paced and started like the plant simulator (its start: the plant's unless live). */
function simulatorQualitySource(flags: RunFlags, speed: number): Parameters<typeof runQualityPart>[0]["source"] {
  return {
    kind: "simulator",
    seed: flags.seed,
    speed,
    startTime: speed === 1 ? Math.floor(Date.now()) : DEFAULT_SIMULATOR_OPTIONS.startTime,
    durationMs: flags.duration === undefined ? undefined : parseDuration(flags.duration),
    flushIntervalMs: parseDuration(flags.flushInterval),
  };
}

function reportSerial(r: SerialPartResult): void {
  for (const note of r.notes) process.stderr.write(`linewatch run: ${note}\n`);
  process.stderr.write(
    `linewatch run: serials: ${r.events} events in ${r.seconds.toFixed(1)} s, ${r.flagged} flagged, ${r.quarantinedEvents} quarantined ` +
      `(${r.quarantineEntries} serials on the list)${r.attacks > 0 ? `, ${r.attacks} attacks injected` : ""}${r.deadLettered > 0 ? `, ${r.deadLettered} dead-lettered` : ""}${r.shed > 0 ? `, ${r.shed} shed (core NATS queue full)` : ""}\n`,
  );
}

/**
 * The model of `--predict`; adopts its rolling window (a different --window, or a time window, is
 * a ConfigError). `sensors`: the source's sensor types when known (null on NATS) — a source
 * without the sensors the model reads could never be predicted, which is an error too.
 */
async function loadModel(flags: RunFlags, sensors: readonly string[] | null): Promise<{ model: FailureModel; entryId: string | null }> {
  let model: FailureModel;
  let entryId: string | null = null;
  if (flags.predict === BUILTIN_MODEL) {
    model = await loadBuiltinModel();
  } else if (flags.predict === REGISTRY_MODEL) {
    const { entry, bytes } = await productionModel(registryWhere(flags), "rul");
    model = await FailureModel.fromBytes(bytes, `registry model ${entry.short_id}`);
    entryId = entry.id;
    process.stderr.write(
      `linewatch run: --predict registry: production rul model ${entry.short_id} (${entry.file_name}) of ${registryWhere(flags)}, followed\n`,
    );
  } else {
    model = await FailureModel.load(flags.predict as string);
  }
  try {
    if (flags.span !== undefined) {
      throw new ConfigError(
        "--span",
        `the model ${flags.predict} reads statistics over a count window of ${model.window} readings; leave --span out (--predict sets --window ${model.window})`,
      );
    }
    if (flags.window !== undefined && flags.window !== model.window) {
      throw new ConfigError(
        "--window",
        `is ${flags.window}, but the model ${flags.predict} was trained on a rolling window of ${model.window}; leave --window out to use the model's`,
      );
    }
    flags.window = model.window;
    const cycleHours = parseDuration(flags.cycle) / 3_600_000;
    if (flags.cmapss !== undefined && Math.abs(cycleHours - model.cycleHours) > 1e-9 * model.cycleHours) {
      process.stderr.write(
        `linewatch run: note: --cycle ${flags.cycle} is ${cycleHours} h per cycle, the model counts ${model.cycleHours} h per cycle; ` +
          `time_to_failure_hours follows the model (rul_cycles × ${model.cycleHours})\n`,
      );
    }
    const needed = [...new Set(model.featureNames.map((f) => f.slice(0, f.lastIndexOf("."))))];
    const absent = sensors === null ? [] : needed.filter((s) => !sensors.includes(s));
    if (absent.length > 0) {
      throw new ConfigError(
        "--predict",
        `the model reads sensors ${absent.join(", ")}, which this run's source does not have (it has ${sensors?.join(", ")}); replay a C-MAPSS fleet (--cmapss FILE) or read a plant that reports them (--nats)`,
      );
    }
    return { model, entryId };
  } catch (error) {
    await model.close();
    throw error;
  }
}

/**
 * `--retrain-on-drift`: the retained window and the retrainer (training on a worker thread). It
 * needs the registry (`--predict registry`: the candidate is registered there, and promoted there
 * the run swaps it in) and failures the run can see — the ground truth of a C-MAPSS training file.
 */
async function retrainingOf(
  flags: RunFlags,
  fleet: CmapssFleet | undefined,
): Promise<(OutputsOptions["retrain"] & { registry: ModelRegistry }) | undefined> {
  if (flags.retrainOnDrift !== true) {
    if (flags.autoPromote === true) throw new ConfigError("--auto-promote", "only with --retrain-on-drift");
    return undefined;
  }
  if (flags.predict !== REGISTRY_MODEL)
    throw new ConfigError(
      "--retrain-on-drift",
      "needs --predict registry: the candidate is registered, and a promoted one swapped in, through the registry",
    );
  if (fleet === undefined || !basename(flags.cmapss as string).startsWith("train_"))
    throw new ConfigError(
      "--retrain-on-drift",
      "needs machines whose failure the run sees (labels to train on): a C-MAPSS training file (--cmapss train_FD00x.txt); a plant's failure records are not read yet",
    );
  const registry = new ModelRegistry(await openRegistryStore(registryWhere(flags)));
  // With ClickHouse the readings are read back from ml_sensor_data: the run keeps only the failures.
  const history = new RetainedUnits({ ...DEFAULT_RETAINED_UNITS, keepReadings: flags.clickhouse === undefined });
  const retrainer = new Retrainer({
    registry,
    history,
    train: retrainOnWorker,
    autoPromote: flags.autoPromote === true,
    minUnits: flags.retrainMinUnits,
    epochs: flags.retrainEpochs,
    log: cliLogger(),
  });
  return { history, retrainer, registry };
}

/** The registry `--model registry` and `--predict registry` read: --registry, else the --nats server, else the default directory. */
function registryWhere(flags: RunFlags): string {
  return flags.registry ?? flags.nats ?? DEFAULT_REGISTRY_DIR;
}

/** `--quality-model registry`: the production quality model at start; the quality job follows the alias from then on (quality-run.ts). */
async function resolveRegistryQuality(flags: RunFlags): Promise<NonNullable<RunFlags["qualityRegistry"]>> {
  const where = registryWhere(flags);
  const { entry, bytes } = await productionModel(where, "quality");
  process.stderr.write(
    `linewatch run: --quality-model registry: production quality model ${entry.short_id} (${entry.file_name}) of ${where}, followed\n`,
  );
  const follow = { where, entryId: entry.id, pollMs: parseDuration(flags.registryPoll) };
  return { bytes, source: `registry quality model ${entry.short_id}`, follow };
}

/** `--model registry`: the production iforest model, read before the analyses are built (each follows it from then on). */
async function resolveRegistryIforest(flags: RunFlags): Promise<{ model: IsolationForestModel; follow: RegistryFollowSpec }> {
  const where = registryWhere(flags);
  const { entry, bytes } = await productionModel(where, "iforest");
  process.stderr.write(
    `linewatch run: --model registry: production iforest model ${entry.short_id} (${entry.file_name}) of ${where}, followed\n`,
  );
  return { model: iforestFromRegistry(entry, bytes), follow: { where, entryId: entry.id, pollMs: parseDuration(flags.registryPoll) } };
}

/**
 * `--predict registry`: follows the production rul model, swapping each new one into the
 * prediction service (a model with other features or window is refused and logged). With
 * ClickHouse and any registry model (rul, iforest, quality), the registry's entries are mirrored into ml_models.
 * Returns the stop.
 */
function followRegistryModels(
  flags: RunFlags,
  predictions: PredictionService | undefined,
  rulEntryId: string | null,
  outputs: Outputs,
): () => void {
  const mirror = flags.clickhouse === undefined ? undefined : (entries: readonly ModelEntry[]) => outputs.modelEntries(entries);
  const spec = (entryId: string) => ({ where: registryWhere(flags), entryId, pollMs: parseDuration(flags.registryPoll) });
  if (predictions !== undefined && rulEntryId !== null) {
    const install = async (entry: ModelEntry, bytes: Uint8Array) => {
      const next = await FailureModel.fromBytes(bytes, `registry model ${entry.short_id}`);
      let replaced: PredictionService["model"];
      try {
        replaced = await predictions.swapModel(next);
      } catch (error) {
        await next.close();
        throw error;
      }
      await replaced.close?.();
    };
    return followRegistry(spec(rulEntryId), "rul", cliLogger(), install, mirror);
  }
  // The analyses (maybe on ingest workers) and the quality job follow their models themselves; this thread only mirrors.
  const other = otherFollowedModel(flags);
  if (other === null || mirror === undefined) return () => {};
  return followRegistry(spec(other.entryId), other.kind, undefined, async () => {}, mirror);
}

/** The registry model a run follows besides --predict's: --model registry's iforest, else --quality-model registry's. */
function otherFollowedModel(flags: RunFlags): { kind: "iforest" | "quality"; entryId: string } | null {
  if (flags.iforestRegistry !== undefined) return { kind: "iforest", entryId: flags.iforestRegistry.follow.entryId };
  if (flags.qualityRegistry !== undefined) return { kind: "quality", entryId: flags.qualityRegistry.follow.entryId };
  return null;
}

/** With --predict the rolling analysis must run: the model's features are its statistics. */
function checkPredictionAnalyses(flags: RunFlags, analyses: RecordAnalysis[]): RecordAnalysis[] {
  if (flags.predict !== undefined && !analyses.some((a) => a.name === "rolling")) {
    throw new ConfigError(
      "--analysis",
      `--predict needs the rolling analysis (its statistics are the model's features); add rolling to "${flags.analysis}"`,
    );
  }
  return analyses;
}

function reportPredictions(service: PredictionService | undefined): void {
  if (service === undefined) return;
  const c = service.counters();
  process.stderr.write(
    `linewatch run: ${c.predictions} predictions (model ${service.model.modelVersion}) of ${c.machinesComplete} machines with complete features` +
      `${c.machines > c.machinesComplete ? ` (${c.machines - c.machinesComplete} incomplete)` : ""}${c.skipped > 0 ? `, ${c.skipped} skipped (model behind)` : ""}${c.errors > 0 ? `, ${c.errors} model errors` : ""}\n`,
  );
}

/** `linewatch run --nats`: the NATS job, with alerts published on lw.<site>.alert.<machine>.<sensor> and written to the alerts file. */
async function runOnNats(
  flags: RunFlags,
  alertsFile: RotatingFileSink,
  outputs: Outputs,
  predictions: PredictionService | undefined,
  withSerials: boolean,
): Promise<void> {
  const nc = await connectNats({ servers: flags.nats, name: "linewatch-alerts" });
  const alerts = new AlertRouter({ outputs, file: alertsFile, nats: { nc, site: flags.site, format: flags.outputFormat } });
  // Predictions go out beside scores and alerts: lw.<site>.prediction.<machine>, JSON or MessagePack.
  const enc = new TextEncoder();
  predictions?.listen((list) => {
    if (nc.isClosed() || nc.isDraining()) return;
    for (const p of list)
      nc.publish(
        `lw.${flags.site}.prediction.${p.machine_id}`,
        flags.outputFormat === "msgpack" ? encodeMsgpack(p) : enc.encode(JSON.stringify(p)),
      );
  });
  let onStop: () => void = () => {};
  const stop = new Promise<void>((resolve) => (onStop = resolve));
  for (const s of ["SIGINT", "SIGTERM"] as const) process.once(s, onStop);
  const serialPart = !withSerials
    ? null
    : runSerialPart({
        flags,
        host: outputs,
        stop,
        log: cliLogger(),
        summaryIntervalMs: parseDuration(flags.summaryInterval),
        console: process.stdout,
        source: { kind: "nats", url: flags.nats as string, site: flags.site, stream: flags.stream, outputFormat: flags.outputFormat },
      });
  serialPart?.catch(() => undefined);
  const qualityPart = startQualityPart(flags, outputs, alerts.route, stop, {
    kind: "nats",
    url: flags.nats as string,
    site: flags.site,
    flushIntervalMs: parseDuration(flags.flushInterval),
    stream: flags.stream,
    checkpointIntervalMs: parseDuration(flags.checkpointInterval),
  });
  const result = await natsSensorJob(flags, outputs, alerts, stop);
  // Predictions still waiting for the model go out before the connection closes.
  await outputs.flush();
  const serial = serialPart === null ? null : await serialPart;
  const quality = qualityPart === null ? null : await qualityPart;
  await nc.drain();
  await alertsFile.close();
  if (serial !== null) reportSerial(serial);
  if (quality !== null) reportQuality(quality, process.stderr);
  process.stderr.write(
    `linewatch run: stopped after ${result.recordsOut} records in ${result.seconds.toFixed(1)} s; dead-lettered ${result.input.deadLettered}, ` +
      `shed ${result.shed}, redeliveries skipped ${result.duplicates}, checkpoints ${result.checkpoints}, ${alerts.summary()}\n`,
  );
}

/**
 * The sensor part of `run --nats`: on ingest workers (engine/jobs/ingest: the records never reach
 * this thread), or — `--ingest-workers 0`, or `--predict`, whose service reads every record's
 * rolling statistics — on the main-thread sensor job, announced as such.
 */
async function natsSensorJob(flags: RunFlags, outputs: Outputs, alerts: AlertRouter, stop: Promise<void>): Promise<NatsJobResult> {
  const partitions = parsePartitions(flags);
  const ingestWorkers = ingestWorkersOf(flags, partitions);
  const common = {
    ...DEFAULT_NATS_JOB,
    url: flags.nats as string,
    site: flags.site,
    stream: flags.stream,
    partitions,
    partitionCount: flags.partitionCount,
    batchRecordsMax: flags.batchRecords,
    fetchMessagesMax: flags.fetch,
    checkpointIntervalMs: parseDuration(flags.checkpointInterval),
    outputs,
    summaryIntervalMs: parseDuration(flags.summaryInterval),
    console: process.stdout,
    log: cliLogger(),
    stop,
    onReady: () => process.stderr.write("linewatch run: consuming\n"),
    alertsSummary: () => alerts.summary(),
  };
  const ctx = runAnalysisContext(alerts.route, flags.iforestRegistry);
  const source = `NATS ${flags.nats}, ${flags.stream ? `JetStream stream ${flags.stream}${partitions ? `, partitions ${partitions.join(",")}` : ""}` : "core NATS"}, site ${flags.site}`;
  if (ingestWorkers > 0) {
    const analyses = analysisSpecsFromFlags(flags, ctx);
    process.stderr.write(
      `linewatch run: ${source} → ${analyses.map((a) => a.name).join(" + ")} on ${ingestWorkers} ingest worker${ingestWorkers > 1 ? "s" : ""} ` +
        `(decode, kernels and encoding on the workers; this thread steers). Ctrl-C stops.\n`,
    );
    return runIngestNatsJob({
      ...common,
      analyses,
      ingestWorkers,
      scoreLines: flags.publishScores ? flags.outputFormat : null,
      onAlerts: alerts.routeAll,
      alertsSummary: () => alerts.summary(),
    });
  }
  const analyses = checkPredictionAnalyses(flags, analysesFromFlags(flags, ctx));
  process.stderr.write(
    `linewatch run: ${source} → ${analyses.map((a) => a.name).join(" + ")} on ${flags.workers} workers. Ctrl-C stops.\n` +
      `linewatch run: NOTE: ${flags.predict !== undefined ? "--predict (its service reads every record's rolling statistics on this thread)" : "--ingest-workers 0"} ` +
      "runs the main-thread sensor job: every record is decoded, observed and written on the main thread, several times the CPU per record of the ingest workers " +
      "(docs/ingest-workers.md).\n",
  );
  return runNatsJob({ ...common, analyses, workers: flags.workers, publishScores: flags.publishScores, outputFormat: flags.outputFormat });
}

/**
 * `--ingest-workers`: as given (0: the main-thread sensor job), else 0 with `--predict`, else one
 * per two cores up to the partitions the instance owns — one without a partition mapping (one
 * worker takes the whole subject). Half the cores: the rest go to nats-server, ClickHouse and
 * this thread; on 2 cores one worker moved more than two (docs/ingest-workers.md).
 */
function ingestWorkersOf(flags: RunFlags, partitions: readonly number[] | undefined): number {
  if (flags.ingestWorkers !== undefined && flags.ingestWorkers > 0 && flags.predict !== undefined) {
    throw new ConfigError(
      "--ingest-workers",
      "--predict reads every record's rolling statistics on the main thread, which ingest workers do not hand over yet: leave --ingest-workers out (or 0) with --predict",
    );
  }
  const owned = flags.stream === undefined ? (flags.partitionCount ?? 0) : (partitions?.length ?? flags.partitionCount ?? 0);
  if (flags.ingestWorkers !== undefined) {
    if (flags.ingestWorkers > Math.max(1, owned)) {
      throw new ConfigError(
        "--ingest-workers",
        owned === 0
          ? `${flags.ingestWorkers} ingest workers need the server's partition mapping: give --partition-count P (docs/nats.md, "Scale-out"); without it one worker takes the whole subject`
          : `${flags.ingestWorkers} ingest workers, but this instance owns ${owned} partitions: a partition has one worker`,
      );
    }
    return flags.ingestWorkers;
  }
  if (flags.predict !== undefined) return 0;
  return owned === 0 ? 1 : Math.min(owned, Math.max(1, Math.floor(availableParallelism() / 2)));
}

/** `--partitions 0,1`: partition numbers, each below `--partition-count` when that is given. */
function parsePartitions(flags: RunFlags): number[] | undefined {
  return flags.partitions?.split(",").map((p) => {
    const n = Number(p.trim());
    if (!Number.isInteger(n) || n < 0 || (flags.partitionCount !== undefined && n >= flags.partitionCount)) {
      throw new ConfigError(
        "--partitions",
        `"${p}" is not a partition number${flags.partitionCount ? ` below ${flags.partitionCount}` : ""}`,
      );
    }
    return n;
  });
}

/** The C-MAPSS fleet of `--cmapss`: T0 is now for a live run (speed 1), else the simulator's fixed start. */
function cmapssFleetFromFlags(flags: RunFlags, speed: number, sensors: string[] | undefined): CmapssFleet {
  return new CmapssFleet(readCmapss(flags.cmapss as string), {
    units: flags.cmapssUnits === undefined ? undefined : parseUnitList(flags.cmapssUnits),
    sensors,
    cycleMs: parseDuration(flags.cycle),
    startTime: speed === 1 ? Math.floor(Date.now()) : DEFAULT_SIMULATOR_OPTIONS.startTime,
    order: flags.cmapssOrder,
    shifts: flags.cmapssShift === undefined ? undefined : parseCmapssShifts(flags.cmapssShift),
  });
}

/** Polls `path`; each time its modification time changes, returns the changes it lists (once). */
export function watchLimitsFile(path: string): () => Array<{ key: string; change: SpcLimitsChange }> {
  let seen = 0;
  return () => {
    let mtime: number;
    try {
      mtime = statSync(path).mtimeMs;
    } catch {
      return [];
    }
    if (mtime === seen) return [];
    seen = mtime;
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (cause) {
      throw new ConfigError("--limits-control", `cannot read ${path}: ${(cause as Error).message}`);
    }
    return parseLimitsChanges(text, path);
  };
}

export function parseLimitsChanges(text: string, source: string): Array<{ key: string; change: SpcLimitsChange }> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new ConfigError("--limits-control", `${source}: not JSON (${(cause as Error).message})`);
  }
  const list = (parsed as { changes?: unknown })?.changes;
  if (!Array.isArray(list)) throw new ConfigError("--limits-control", `${source}: expected {"changes": [...]}`);
  return list.map((entry: unknown, i: number) => {
    const e = entry as { key?: unknown; cl?: unknown; sigma?: unknown; rebaseline?: unknown };
    if (typeof e.key !== "string") throw new ConfigError("--limits-control", `${source}: change ${i} has no "key"`);
    if (typeof e.rebaseline === "number") return { key: e.key, change: { kind: "rebaseline", records: e.rebaseline } as const };
    if (typeof e.cl === "number" && typeof e.sigma === "number")
      return { key: e.key, change: { kind: "set", cl: e.cl, sigma: e.sigma } as const };
    throw new ConfigError("--limits-control", `${source}: change ${i} needs "cl" and "sigma", or "rebaseline"`);
  });
}

/**
 * The audit stamp of a run (`--audit`), given to its outputs (the jobs read it there): its sensor analyses' settings as the run builds them
 * (epoch-ms times, arrival order), and every output rounded to 15 significant digits before it is
 * stored — as both the ingest workers (`roundStatistics`) and the main-thread job's rows do.
 */
function startAudit(flags: RunFlags, outputs: Outputs): void {
  if (flags.audit !== true) return;
  const stamp = auditStamp(
    auditConfig(
      analysisSpecsFromFlags(
        flags,
        runAnalysisContext(() => {}),
      ),
      "ms",
      null,
      true,
    ),
    kernelHash(),
  );
  outputs.startAudit(stamp);
}

/**
 * A simulator run's scorecards, printed at its end: its fault labels against the alerts, and — with
 * predictions — its failures against the predictions.
 */
function simulatorScorecards(predictions: PredictionService | undefined): SimulatorScorecards {
  return { faults: new FaultScorecard(), failures: predictions === undefined ? undefined : failureScorecardOf(predictions), predictions };
}

interface SimulatorScorecards {
  faults: FaultScorecard;
  failures?: FailureScorecard;
  predictions?: PredictionService;
}

async function reportSimulatorScorecards(cards: SimulatorScorecards, json: string | undefined): Promise<void> {
  reportScorecard(cards.faults, json, process.stdout);
  if (cards.failures === undefined) return;
  // The predictions still waiting for the model are scored too.
  await cards.predictions?.flush();
  process.stdout.write(`${formatFailureScore(cards.failures.result())}\n`);
}

/** A failure-prediction scorecard fed with every prediction of the service (engine/jobs/failure-scorecard.ts). */
function failureScorecardOf(predictions: PredictionService): FailureScorecard {
  const m = predictions.model;
  const card = new FailureScorecard((m.rulCap ?? Number.POSITIVE_INFINITY) * m.cycleHours, m.horizonCycles * m.cycleHours);
  predictions.listen((list) => {
    for (const p of list) {
      card.observe({
        machine_id: p.machine_id,
        at: p.predicted_at_ms,
        time_to_failure_hours: p.time_to_failure_hours,
        high: p.risk_level === "high" || p.risk_level === "critical",
      });
    }
  });
  return card;
}
