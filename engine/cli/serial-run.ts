/**
 * The serial part of `linewatch run` (issue 8): its flags, and the live serial job beside the
 * sensor job — fed by the serial simulator (with the plant simulator) or by NATS (`run --nats`),
 * its outputs through the run's ClickHouse sink, live server and metrics.
 *
 * On by default where a run shows a packaging line: the plant simulator at a paced speed, and
 * NATS. Off by default with `--speed max` (that run shows the sensor pipeline's throughput) and
 * with `--cmapss` (a turbofan fleet prints no serials); `--serials` turns it on there,
 * `--no-serials` off everywhere. `--analysis …,serial` is the same as `--serials`.
 */
import type { Writable } from "node:stream";
import type { Command } from "commander";
import type { NatsConnection } from "nats";
import { connectNats, SerialNatsInput } from "../../connectors/nats/mod.js";
import type { ClickHouseRows, ClickHouseTable } from "../../connectors/clickhouse/mod.js";
import type { QuarantineProvider, MetricsRegistry } from "../../connectors/live/mod.js";
import { DEFAULT_SERIAL_SIMULATOR_OPTIONS, SERIAL_ATTACKS } from "../../connectors/sim/mod.js";
import { parseDuration, ConfigError, type Logger } from "../core/mod.js";
import type { SerialAnalysis } from "../../operators/serial/mod.js";
import {
  DEFAULT_SERIAL_JOB,
  KERNELS_ON_LEDGER_THREAD_CORES_BELOW,
  LEDGER_THREAD_MIN_CORES,
  SerialJob,
  SerialOutputs,
  DEFAULT_SERIAL_NATS,
  consumeSerialNats,
  runSerialSimulation,
  type SerialSourceResult,
} from "../jobs/mod.js";
import { integerOption, numberOption } from "./options.js";
import { attackList, serialAnalysisFromFlags, type SerialFlags } from "./serial-flags.js";

export interface RunSerialFlags extends SerialFlags {
  serials?: boolean;
  serialLines: number;
  serialRate: number;
  serialAttacks: string;
  serialAttackEvery: number;
  serialBatchSerials: number;
  serialWorkers: number;
  /** false (`--no-serial-ledger-thread`): the duplicate ledger on the main thread; true: on a thread of its own; unset: by the machine's cores. */
  serialLedgerThread?: boolean;
  serialWindow?: number;
  /** The run's `--checkpoint-interval` (with --stream): the serial job's state is saved as often. */
  checkpointInterval?: string;
}

/** What the serial job writes through: the run's outputs (engine/jobs/outputs.ts). */
export interface SerialOutputHost {
  readonly registry: MetricsRegistry;
  /** The run's ClickHouse sink and live server (null when the run has none). */
  serialTargets(): {
    sink: { write<T extends ClickHouseTable>(table: T, rows: readonly ClickHouseRows[T][]): Promise<void> } | null;
    live: { publish(topic: string, data: unknown): number } | null;
  };
  /** Serves the quarantine list and its release, and the lines' status, on the API. */
  serveSerial(provider: QuarantineProvider, lines: () => readonly object[]): void;
}

export function addRunSerialFlags(command: Command): Command {
  const d = DEFAULT_SERIAL_SIMULATOR_OPTIONS;
  return command
    .option("--serials", "run the serial-integrity job beside the sensor job (default on, except with --speed max or --cmapss)")
    .option("--no-serials", "no serial job")
    .option("--serial-lines <n>", "serial simulator: serialization lines (M-001 …)", integerOption("--serial-lines", 1, 999), d.lines)
    .option("--serial-rate <r>", "serial simulator: serials per second per line", numberOption("--serial-rate"), d.ratePerLine)
    .option(
      "--serial-attacks <list>",
      `serial simulator: injected attacks, comma separated, or all / none (${SERIAL_ATTACKS.join(", ")})`,
      "all",
    )
    .option(
      "--serial-attack-every <n>",
      "serial simulator: events between attack starts",
      integerOption("--serial-attack-every", 1, 2 ** 40),
      d.attackEvery,
    )
    .option(
      "--serial-batch-serials <n>",
      "serial simulator: serials per batch (then a batch_close event)",
      integerOption("--serial-batch-serials", 1, 2 ** 40),
      d.batchSerials,
    )
    .option(
      "--serial-window <K>",
      "the serial analysis's window: the last K serials of each line (≤ 1024, default 256; in run, --window is the rolling analysis's)",
      integerOption("--serial-window", 1, 1024),
    )
    .option(
      "--serial-workers <n>",
      `worker threads of the serial job's pool (0: its kernel runs on the main thread; with the ledger thread on a machine of fewer than ${KERNELS_ON_LEDGER_THREAD_CORES_BELOW} cores and at most 1 worker, the ledger thread runs the kernel)`,
      integerOption("--serial-workers", 0, 64),
      DEFAULT_SERIAL_JOB.workers,
    )
    .option(
      "--serial-ledger-thread",
      `the serial job's duplicate ledger on a thread of its own (default on machines of ${LEDGER_THREAD_MIN_CORES} cores or more: the main thread only reads and copies the events)`,
    )
    .option(
      "--no-serial-ledger-thread",
      "the serial job's duplicate ledger on the main thread, not a thread of its own (one thread fewer, a busier main thread)",
    );
}

/** Whether the run gets a serial job: the flag when given, else the defaults of the module comment. */
export function serialsWanted(flags: RunSerialFlags, o: { speed: number; cmapss: boolean; nats: boolean }): boolean {
  if (flags.serials !== undefined) return flags.serials;
  if (o.nats) return true;
  return Number.isFinite(o.speed) && !o.cmapss;
}

/** `--analysis` without `serial` (the sensor analyses), and whether it named serial. */
export function splitSerialAnalysis(analysis: string): { sensor: string; serial: boolean } {
  const names = analysis
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  const sensor = names.filter((n) => n !== "serial");
  if (sensor.length === 0)
    throw new ConfigError(
      "--analysis",
      "run needs a sensor analysis besides serial (e.g. rolling,spc,serial); the serial job runs beside it",
    );
  return { sensor: sensor.join(","), serial: sensor.length !== names.length };
}

/** A side job's (serial, quality) simulator beside the plant simulator: paced and started like it. */
export interface SimulatorPartSource {
  kind: "simulator";
  seed: number;
  speed: number;
  startTime: number | undefined;
  durationMs: number | undefined;
  flushIntervalMs: number;
}

export interface SerialPartOptions {
  flags: RunSerialFlags;
  host: SerialOutputHost;
  /** Where events come from. */
  source: SimulatorPartSource | { kind: "nats"; url: string; site: string; stream?: string; outputFormat: "json" | "msgpack" };
  /** Resolves when the job should stop (Ctrl-C, or the sensor job's end). */
  stop: Promise<void>;
  log: Logger;
  /** NATS: called once the job consumes (its stream and consumer exist). */
  onReady?: () => void;
  /** A serial summary line this often (at least every 5 s; 0: none), on `console`. */
  summaryIntervalMs?: number;
  console?: Writable;
}

export interface SerialPartResult extends SerialSourceResult {
  flagged: number;
  quarantinedEvents: number;
  quarantineEntries: number;
  deadLettered: number;
  /** Core NATS: events shed because the queue was full. */
  shed: number;
  notes: string[];
}

/** Once connected, the serial job's connection retries every 250 ms for ever: it outlives a NATS restart. */
const NATS_RECONNECT = { maxReconnectAttempts: -1, reconnectTimeWait: 250 } as const;

/** Starts the serial job; the promise settles when it has stopped and flushed. */
export async function runSerialPart(o: SerialPartOptions): Promise<SerialPartResult> {
  const { flags, host, source } = o;
  const targets = host.serialTargets();
  let nc: NatsConnection | undefined;
  if (source.kind === "nats") nc = await connectNats({ servers: source.url, name: `linewatch-${source.site}-serial`, ...NATS_RECONNECT });
  let outputs: SerialOutputs | undefined;
  // The outputs keep the quarantine file in sync while running: not saved once at the end by the analysis.
  const analysis = serialAnalysisFromFlags(runSerialAnalysisFlags(flags), "ms", {
    quarantineFile: undefined,
    onQuarantine: (e) => outputs?.quarantined(e),
  });
  outputs = new SerialOutputs(analysis.quarantine, {
    sink: targets.sink,
    live: targets.live,
    nats: nc === undefined || source.kind !== "nats" ? undefined : { nc, site: source.site, format: source.outputFormat },
    registry: host.registry,
    quarantineFile: flags.serialQuarantine,
    log: o.log,
  });
  const job = serialJob(flags, analysis, outputs);
  host.serveSerial(outputs, () => job.lines());
  let result: SerialSourceResult;
  let deadLettered = 0;
  let shed = 0;
  const summary = startSummary(o, job, outputs);
  try {
    if (source.kind === "simulator") {
      outputs.attachCounts("serial-simulator", () => job.countsNow());
      const attacks = attackList(flags.serialAttacks, "--serial-attacks");
      result = await runSerialSimulation(job, {
        simulator: {
          seed: source.seed,
          lines: flags.serialLines,
          ratePerLine: flags.serialRate,
          batchSerials: flags.serialBatchSerials,
          attacks,
          attackEvery: attacks.length === 0 ? 0 : flags.serialAttackEvery,
          ...(source.startTime === undefined ? {} : { startTime: source.startTime }),
        },
        speed: source.speed,
        endTime:
          source.durationMs === undefined
            ? undefined
            : (source.startTime ?? DEFAULT_SERIAL_SIMULATOR_OPTIONS.startTime) + source.durationMs,
        flushIntervalMs: source.flushIntervalMs,
        stop: o.stop,
      });
    } else {
      const input = new SerialNatsInput(nc as NatsConnection, source.site);
      outputs.attachCounts("serial-nats", () => ({ ...job.countsNow(), deadLetters: input.counts().byReason }));
      const subjects = { subjects: `lw.${source.site}.serial.>`, quarantine_subject: `lw.${source.site}.quarantine` };
      o.log.child({ component: "serial" }).info({ ...subjects, stream: source.stream ?? null }, "consuming serial events");
      const r = await consumeSerialNats(nc as NatsConnection, input, job, {
        ...DEFAULT_SERIAL_NATS,
        site: source.site,
        stream: source.stream,
        stop: o.stop,
        log: o.log,
        onReady: o.onReady,
        ...(flags.checkpointInterval === undefined ? {} : { checkpointIntervalMs: parseDuration(flags.checkpointInterval) }),
      });
      deadLettered = r.deadLettered;
      shed = r.shed;
      result = r;
    }
  } finally {
    summary.stop();
    await outputs.close();
    await nc?.drain().catch(() => undefined);
  }
  const c = job.countsNow();
  return {
    ...result,
    flagged: c.flagged,
    quarantinedEvents: c.quarantined,
    quarantineEntries: analysis.quarantine.size,
    deadLettered,
    shed,
    notes: analysis.notes?.() ?? [],
  };
}

/** The serial analysis flags of a run: its window is `--serial-window` (`--window` is the rolling analysis's there). */
export function runSerialAnalysisFlags(flags: RunSerialFlags): RunSerialFlags {
  return { ...flags, window: flags.serialWindow };
}

function startSummary(o: SerialPartOptions, job: SerialJob, outputs: SerialOutputs): { stop(): void } {
  const every = o.summaryIntervalMs ?? 0;
  if (every <= 0 || o.console === undefined) return { stop() {} };
  const out = o.console;
  let last = { t: performance.now(), in: 0 };
  const timer = setInterval(
    () => {
      const c = job.countsNow();
      const now = performance.now();
      const rate = ((c.eventsIn - last.in) * 1000) / (now - last.t);
      last = { t: now, in: c.eventsIn };
      out.write(
        `[serial] in ${c.eventsIn} (${Math.round(rate)}/s) scored ${c.eventsOut} | flagged ${c.flagged}, quarantined ${c.quarantined} ` +
          `(${outputs.quarantine.size} serials on the list, ${outputs.counts.released} released)\n`,
      );
    },
    Math.max(every, 5000),
  );
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/**
 * The run's serial job: the defaults, with the flags' workers and ledger thread. On a machine of
 * few cores the ledger thread runs the kernel too, unless more than one pool worker is asked for.
 */
function serialJob(flags: RunSerialFlags, analysis: SerialAnalysis, outputs: SerialOutputs): SerialJob {
  const ledgerThread = flags.serialLedgerThread ?? DEFAULT_SERIAL_JOB.ledgerThread;
  const kernelsOnLedgerThread = DEFAULT_SERIAL_JOB.kernelsOnLedgerThread && flags.serialWorkers <= 1;
  return new SerialJob({ ...DEFAULT_SERIAL_JOB, analysis, workers: flags.serialWorkers, ledgerThread, kernelsOnLedgerThread, outputs });
}
