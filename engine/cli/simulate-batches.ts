/**
 * `linewatch simulate --batches N`: the process and quality streams instead of sensor readings —
 * N batches on `--lines` packaging lines, their process readings every `--reading-interval` and
 * each batch's quality outcome at its end (connectors/sim/batch-simulator.ts; docs/quality.md has
 * the process model). To a batch-stream NDJSON file (`record_type` process / quality, what
 * `linewatch quality` reads) or to NATS (`lw.<site>.process.<line>`, `lw.<site>.quality.<line>`).
 */
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import type { Writable } from "node:stream";
import type { Command } from "commander";
import {
  BatchSimulator,
  BatchSimulatorConfigError,
  DEFAULT_BATCH_SIMULATOR_OPTIONS,
  formatProcessNdjson,
  formatQualityNdjson,
  publishBatchStreams,
  DEFAULT_BATCH_PUBLISH,
} from "../../connectors/sim/mod.js";
import { TextStreamWriter } from "../../connectors/files/mod.js";
import { ConfigError, parseDuration } from "../core/mod.js";
import { durationOption, integerOption } from "./options.js";

/** The flags `simulate` shares with the batch streams, and theirs. */
export interface SimulateBatchFlags {
  batches?: number;
  lines: number;
  readingInterval: string;
  seed: string;
  start: string;
  format: string;
  out: string;
  labels?: string;
  nats?: string;
  site: string;
  payload: string;
  jetstream?: boolean;
  publishRate?: string;
}

/** `--batches` and its companions. */
export function addBatchFlags(command: Command): Command {
  const d = DEFAULT_BATCH_SIMULATOR_OPTIONS;
  return command
    .option(
      "--batches <n>",
      "simulate n batches on packaging lines instead of sensor readings: process readings and quality outcomes (docs/quality.md)",
      integerOption("--batches", 0, 1_000_000),
    )
    .option("--lines <n>", "with --batches: packaging lines (ids L-001, L-002, …)", integerOption("--lines", 1, 999), d.lines)
    .option("--reading-interval <D>", "with --batches: time between a running batch's process readings", durationOption, "30s");
}

/** Writes or publishes the batch streams; bad values are ConfigErrors of their flag. */
export async function simulateBatches(flags: SimulateBatchFlags, command: Command): Promise<void> {
  let sim: BatchSimulator;
  try {
    sim = new BatchSimulator({
      seed: Number(flags.seed),
      lines: flags.lines,
      batches: flags.batches,
      startTime: /^\d+$/.test(flags.start.trim()) ? Number(flags.start) : Date.parse(flags.start),
      readingIntervalMs: parseDuration(flags.readingInterval),
    });
  } catch (error) {
    if (error instanceof BatchSimulatorConfigError)
      command.error(`error: ${error.message}`, { exitCode: 2, code: "linewatch.simulate.invalidOption" });
    throw error;
  }
  if (flags.labels !== undefined)
    throw new ConfigError("--labels", "labels are fault labels of sensor readings; --batches writes quality outcomes instead");
  if (flags.nats !== undefined) {
    if (flags.payload !== "msgpack" && flags.payload !== "json")
      throw new ConfigError("--payload", "batch records are single records: msgpack or json");
    const r = await publishBatchStreams(sim, {
      ...DEFAULT_BATCH_PUBLISH,
      url: flags.nats,
      site: flags.site,
      format: flags.payload,
      jetstream: flags.jetstream === true,
      rate: flags.publishRate === undefined ? Infinity : Number(flags.publishRate),
    });
    process.stderr.write(
      `simulate: published ${r.processRecords} process readings and ${r.qualityRecords} quality outcomes in ${r.seconds.toFixed(2)} s` +
        `${r.duplicatesReported ? `, ${r.duplicatesReported} reported duplicate by the server` : ""}\n`,
    );
    return;
  }
  if (flags.format !== "ndjson")
    throw new ConfigError("--format", "batch streams are written as NDJSON (one record per line, record_type process or quality)");
  await writeBatchStreams(sim, flags.out);
}

async function writeBatchStreams(sim: BatchSimulator, path: string): Promise<void> {
  const toStdout = path === "-";
  let out: Writable = process.stdout;
  if (!toStdout) {
    out = createWriteStream(path);
    try {
      await once(out, "open");
    } catch (cause) {
      throw new ConfigError("--out", `cannot write ${path}: ${(cause as Error).message}`);
    }
  }
  const writer = new TextStreamWriter(out, { endStream: !toStdout });
  try {
    for (let kind = sim.next(); kind !== null; kind = sim.next())
      await writer.write(
        kind === "process" ? formatProcessNdjson(sim.reading) : formatQualityNdjson(sim.outcome as NonNullable<BatchSimulator["outcome"]>),
      );
    await writer.end();
  } catch (error) {
    if (!toStdout) out.destroy();
    // A closed stdout (`| head`) ends the run; it is not a failure.
    if (toStdout && brokenPipe(error)) return;
    throw error;
  }
}

function brokenPipe(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) if ((e as NodeJS.ErrnoException).code === "EPIPE") return true;
  return false;
}
