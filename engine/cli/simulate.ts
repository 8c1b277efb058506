/**
 * `linewatch simulate`: writes deterministic plant telemetry (and, optionally, the ground-truth
 * labels of the faults injected into it) to a file or stdout.
 *
 * Bad flag values are reported through commander (`command.error`, exit code 2), like commander's
 * own parse errors; an output that cannot be opened is a ConfigError of its flag; a write that
 * fails later rejects the action with the writer's RecordWriterClosedError (the stream's error as cause).
 */
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import type { Writable } from "node:stream";
import { Command, Option } from "commander";
import {
  DEFAULT_NATS_PUBLISH,
  publishSimulation,
  DEFAULT_SIMULATOR_OPTIONS,
  PlantSimulator,
  SENSOR_TYPES,
  SimulatorConfigError,
  type FaultLabel,
  type SensorType,
  type SimulatorOptions,
  CMAPSS_OPERATING_MODE,
  CMAPSS_ORDERS,
  CmapssFleet,
  parseCmapssShifts,
  parseUnitList,
  publishCmapssFleet,
  type CmapssOrder,
  formatTimestamp,
} from "../../connectors/sim/mod.js";
import { createRecordWriter, RECORD_FORMATS, TextStreamWriter, type RecordFormat, readCmapss } from "../../connectors/files/mod.js";
import { DurationParseError, parseDuration, ConfigError } from "../core/mod.js";
import { durationOption } from "./options.js";
import { addBatchFlags, type SimulateBatchFlags, simulateBatches } from "./simulate-batches.js";

/** Records generated when neither --duration nor --records is given. */
export const SIMULATE_DEFAULT_RECORDS = 100_000;
/** Records generated per chunk between label drains. */
const CHUNK_RECORDS = 8_192;
const EXIT_CODE_USAGE = 2;

/** The flags as commander hands them over (strings, validated in {@link simulatorOptionsFromFlags}). */
export interface SimulateFlags extends Omit<SimulateBatchFlags, "format"> {
  seed: string;
  machines: string;
  sensors?: string;
  rate: string;
  start: string;
  duration?: string;
  records?: string;
  faultRate: string;
  format: RecordFormat;
  out: string;
  labels?: string;
  nats?: string;
  site: string;
  payload: string;
  frameReadings: string;
  jetstream?: boolean;
  publishRate?: string;
  cmapss?: string;
  cmapssUnits?: string;
  cmapssShift?: string;
  cmapssOrder: CmapssOrder;
  cycle: string;
}

/** Which command-line flag sets which simulator option, for error messages. */
const FLAG_OF_OPTION: Partial<Record<keyof SimulatorOptions, string>> = {
  seed: "--seed",
  machines: "--machines",
  sensorTypes: "--sensors",
  rateHz: "--rate",
  startTime: "--start",
  faultRate: "--fault-rate",
  durationMs: "--duration",
  maxRecords: "--records",
};

/** `--cmapss` and its companions: a C-MAPSS file replayed as a fleet instead of the simulator. */
function addCmapssFlags(command: Command): Command {
  return command
    .option(
      "--cmapss <file>",
      "replay a NASA C-MAPSS file as a fleet instead of simulating: unit N → machine ENG-00N, sensors s1…s21 (--sensors picks), one reading per sensor and cycle from --start",
    )
    .option("--cmapss-units <list>", "with --cmapss: the units, e.g. 1-10 or 1,3,7-9 (default all)")
    .option("--cmapss-shift <list>", "with --cmapss: sensors that read a constant more from a cycle on (data drift), e.g. s11:+0.5@100")
    .addOption(
      new Option("--cmapss-order <o>", "with --cmapss: fleet = the units side by side, cycle by cycle; unit = one after another")
        .choices([...CMAPSS_ORDERS])
        .default("fleet"),
    )
    .option("--cycle <D>", "with --cmapss: event time of one operational cycle", durationOption, "1h");
}

export function simulateCommand(): Command {
  const d = DEFAULT_SIMULATOR_OPTIONS;
  return addBatchFlags(addCmapssFlags(new Command("simulate")))
    .description(
      "Generate deterministic packaging-line sensor telemetry with injected, labelled faults.\n" +
        "The same flags always produce the same bytes.",
    )
    .option("--seed <n>", "PRNG seed (integer)", String(d.seed))
    .option("--machines <m>", "number of machines (ids M-001, M-002, …)", String(d.machines))
    .option("--sensors <list>", `comma-separated sensor types (default: all of ${SENSOR_TYPES.join(",")})`)
    .option("--rate <hz>", "readings per second per sensor (≤ 1000)", String(d.rateHz))
    .option("--start <iso>", "event time of the first reading (ISO-8601, or epoch ms)", new Date(d.startTime).toISOString())
    .option("--duration <d>", "stop after this much event time: 250ms, 90s, 15m, 1h, 7d, 1h30m", durationOption)
    .option("--records <n>", `stop after n records (default ${SIMULATE_DEFAULT_RECORDS} when --duration is not given)`)
    .option("--fault-rate <f>", "expected injected faults per sensor per hour (0 = none)", String(d.faultRate))
    .addOption(new Option("--format <format>", "output format").choices(RECORD_FORMATS).default("ndjson"))
    .option("--out <file>", "output file, or - for stdout", "-")
    .option("--labels <file>", "also write the ground-truth fault labels to this file (NDJSON)")
    .option("--nats <url>", "publish the readings to NATS instead of writing a file")
    .option("--site <s>", "with --nats: site token of the subjects", DEFAULT_NATS_PUBLISH.site)
    .addOption(
      new Option("--payload <format>", "with --nats: single records (msgpack, json) or frames")
        .choices(["msgpack", "json", "frame"])
        .default("msgpack"),
    )
    .option("--frame-readings <n>", "with --payload frame: readings per frame", String(DEFAULT_NATS_PUBLISH.frameReadings))
    .option("--jetstream", "with --nats: publish through JetStream and wait for the acks (a stream must capture lw.<site>.…)")
    .option("--publish-rate <n>", "with --nats: readings per second at most (default: as fast as the server takes them)")
    .addHelpText(
      "after",
      `
Output fields: machine_id, timestamp (ISO-8601 UTC, ms), sensor_type, sensor_value (6 significant
digits), sensor_unit, operating_mode, work_order_id. CSV has a header line.
Label fields: machine_id, sensor_type, fault (spike|level_shift|slow_drift|stuck|noise_burst),
start, end (epoch ms of the first and last affected reading), magnitude.
If both --duration and --records are given, the first limit reached stops the run.

With --batches N the output is the process and quality streams of N batches on --lines lines
instead (NDJSON with record_type process or quality, or NATS lw.<site>.process.<line> and
lw.<site>.quality.<line>); --machines, --sensors, --rate, --duration, --records and --fault-rate
do not apply.

With --cmapss the whole file (or --cmapss-units) is written or published; --duration, --records,
--seed, --machines, --rate and --fault-rate do not apply. On NATS the readings are single records
(--payload msgpack or json) on lw.<site>.sensor.<ENG-00N>.<sN>, as \`linewatch run --nats\` reads them.

Examples:
  linewatch simulate --records 1000000 --out line.ndjson --labels faults.ndjson
  linewatch simulate --nats nats://127.0.0.1:4222 --cmapss train_FD001.txt --cmapss-units 1-10
  linewatch simulate --machines 2 --sensors temperature,vibration --rate 50 --duration 1h --format csv
  linewatch simulate --seed 7 --duration 24h --fault-rate 0 | head
  linewatch simulate --batches 600 --lines 4 --out batches.ndjson`,
    )
    .action(async (flags: SimulateFlags, command: Command) => {
      if (flags.batches !== undefined) return simulateBatches(flags, command);
      if (flags.cmapss !== undefined) return simulateCmapss(flags);
      let simulator: PlantSimulator;
      try {
        simulator = new PlantSimulator(simulatorOptionsFromFlags(flags));
      } catch (error) {
        if (error instanceof SimulatorConfigError || error instanceof DurationParseError) {
          command.error(`error: ${flagMessage(error)}`, { exitCode: EXIT_CODE_USAGE, code: "linewatch.simulate.invalidOption" });
        }
        throw error;
      }
      if (flags.nats !== undefined) return publishPlant(simulator, flags);
      await runSimulation(simulator, flags);
    });
}

/** `simulate --nats`: the plant's readings to NATS. */
async function publishPlant(simulator: PlantSimulator, flags: SimulateFlags): Promise<void> {
  const result = await publishSimulation(simulator, {
    ...DEFAULT_NATS_PUBLISH,
    url: flags.nats as string,
    site: flags.site,
    format: flags.payload as "msgpack" | "json" | "frame",
    frameReadings: Number(flags.frameReadings),
    jetstream: flags.jetstream === true,
    rate: flags.publishRate === undefined ? Infinity : Number(flags.publishRate),
  });
  process.stderr.write(
    `simulate: published ${result.readings} readings in ${result.messages} messages in ${result.seconds.toFixed(2)} s ` +
      `(${Math.round(result.readings / result.seconds)} readings/s)${result.duplicatesReported ? `, ${result.duplicatesReported} reported duplicate by the server` : ""}\n`,
  );
}

/**
 * Turns the flags into simulator options; throws {@link SimulatorConfigError} or
 * {@link DurationParseError}. Without --duration and --records, sets maxRecords to the default.
 */
export function simulatorOptionsFromFlags(flags: SimulateFlags): Partial<SimulatorOptions> {
  const options: Partial<SimulatorOptions> = {
    seed: parseNumber("seed", flags.seed),
    machines: parseNumber("machines", flags.machines),
    rateHz: parseNumber("rateHz", flags.rate),
    startTime: parseStart(flags.start),
    faultRate: parseNumber("faultRate", flags.faultRate),
  };
  if (flags.sensors !== undefined) {
    options.sensorTypes = flags.sensors
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "") as SensorType[];
  }
  if (flags.duration !== undefined) options.durationMs = parseDuration(flags.duration);
  if (flags.records !== undefined) options.maxRecords = parseNumber("maxRecords", flags.records);
  if (options.durationMs === undefined && options.maxRecords === undefined) options.maxRecords = SIMULATE_DEFAULT_RECORDS;
  return options;
}

/** `simulate --cmapss FILE`: the fleet's readings to NATS (single records) or to the output file. */
async function simulateCmapss(flags: SimulateFlags): Promise<void> {
  const cycleMs = parseDuration(flags.cycle);
  const startTime = parseStart(flags.start);
  const fleet = new CmapssFleet(readCmapss(flags.cmapss as string), {
    units: flags.cmapssUnits === undefined ? undefined : parseUnitList(flags.cmapssUnits),
    shifts: flags.cmapssShift === undefined ? undefined : parseCmapssShifts(flags.cmapssShift),
    sensors: flags.sensors
      ?.split(",")
      .map((s) => s.trim())
      .filter((s) => s !== ""),
    cycleMs,
    startTime,
    order: flags.cmapssOrder,
  });
  if (flags.nats !== undefined) {
    if (flags.payload === "frame") throw new ConfigError("--payload", "C-MAPSS readings are published as single records: msgpack or json");
    const result = await publishCmapssFleet(fleet, {
      url: flags.nats,
      site: flags.site,
      format: flags.payload as "msgpack" | "json",
      jetstream: flags.jetstream === true,
      rate: flags.publishRate === undefined ? Infinity : Number(flags.publishRate),
      inFlightMax: DEFAULT_NATS_PUBLISH.inFlightMax,
    });
    process.stderr.write(
      `simulate: published ${result.readings} C-MAPSS readings of ${fleet.units.length} units in ${result.seconds.toFixed(2)} s` +
        `${result.duplicatesReported ? `, ${result.duplicatesReported} reported duplicate by the server` : ""}\n`,
    );
    return;
  }
  const toStdout = flags.out === "-";
  const out = toStdout ? process.stdout : await openFile(flags.out, "--out");
  const records = createRecordWriter(flags.format, out, { endStream: !toStdout });
  const keys = fleet.keys();
  try {
    while (!fleet.done) {
      const c = fleet.nextColumns(CHUNK_RECORDS);
      for (let i = 0; i < c.length; i++) {
        const k = keys[c.keyIndex[i]];
        await records.write({
          machine_id: k.machine_id,
          timestamp: formatTimestamp(c.times[i]),
          sensor_type: k.sensor_type,
          sensor_value: c.values[i],
          sensor_unit: k.sensor_unit,
          operating_mode: CMAPSS_OPERATING_MODE,
          work_order_id: "",
        });
      }
    }
    await records.end();
  } catch (error) {
    if (!toStdout) out.destroy();
    if (toStdout && isBrokenPipe(error)) return;
    throw error;
  }
}

async function runSimulation(simulator: PlantSimulator, flags: SimulateFlags): Promise<void> {
  const toStdout = flags.out === "-";
  const out = toStdout ? process.stdout : await openFile(flags.out, "--out");
  const labelsOut = flags.labels === undefined ? undefined : await openFile(flags.labels, "--labels");
  const records = createRecordWriter(flags.format, out, { endStream: !toStdout });
  const labels = labelsOut === undefined ? undefined : new TextStreamWriter(labelsOut);
  try {
    while (!simulator.done) {
      const columns = simulator.nextColumns(CHUNK_RECORDS);
      for (let i = 0; i < columns.length; i++) await records.write(simulator.recordAt(columns, i));
      await writeLabels(labels, simulator.drainLabels());
    }
    await records.end();
    await labels?.end();
  } catch (error) {
    if (!toStdout) out.destroy();
    labelsOut?.destroy();
    // A closed stdout (`| head`) ends the run; it is not a failure.
    if (toStdout && isBrokenPipe(error)) return;
    throw error;
  }
}

async function writeLabels(writer: TextStreamWriter | undefined, labels: readonly FaultLabel[]): Promise<void> {
  if (writer === undefined) return;
  for (const label of labels) await writer.write(`${JSON.stringify(label)}\n`);
}

/** The file of `flag`, open for writing; one that cannot be (no such directory, no permission) is a ConfigError of the flag. */
async function openFile(path: string, flag: string): Promise<Writable> {
  const stream = createWriteStream(path);
  try {
    await once(stream, "open");
  } catch (cause) {
    throw new ConfigError(flag, `cannot write ${path}: ${(cause as Error).message}`);
  }
  return stream;
}

function parseNumber(option: keyof SimulatorOptions, text: string): number {
  const value = text.trim() === "" ? Number.NaN : Number(text);
  if (!Number.isFinite(value)) throw new SimulatorConfigError(option, "must be a number", text);
  return value;
}

function parseStart(text: string): number {
  const value = /^\d+$/.test(text.trim()) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(value)) throw new SimulatorConfigError("startTime", "must be an ISO-8601 time or epoch ms", text);
  return value;
}

function flagMessage(error: SimulatorConfigError | DurationParseError): string {
  if (error instanceof DurationParseError) return `--duration: ${error.message}`;
  const flag = FLAG_OF_OPTION[error.option] ?? error.option;
  return `${flag}: ${error.reason} (got ${JSON.stringify(error.value)})`;
}

function isBrokenPipe(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    if ((e as NodeJS.ErrnoException).code === "EPIPE") return true;
  }
  return false;
}
