/**
 * The quality part of `linewatch demo` (issue 16, point 3), on by default as in a paced `run` on
 * the simulator: the batch simulator's process readings and quality outcomes are published to the
 * demo's nats-server through JetStream (`lw.demo.process.<line>`, `lw.demo.quality.<line>`,
 * stream LW_DEMO_QUALITY), consumed by the quality job over NATS (quality-run.ts,
 * engine/jobs/quality-jetstream.ts) with the built-in quality model (or `--quality-model FILE`),
 * its predictions and outcomes written to the demo's ClickHouse, its episodes routed with the
 * SPC alerts, its batches on /api/ml/quality/batches/. `--no-quality-model` turns it off.
 *
 * Time: a simulated batch lasts about 55–95 minutes of event time (connectors/sim
 * batch-simulator.ts), so the batches run at `--quality-speed` (default 120: event time per
 * wall-clock time, a batch in about 40 s) from the demo's start — their timestamps run ahead of
 * the clock, the price of seeing outcomes in a short demo.
 */
import type { Command } from "commander";
import { BatchSimulator, DEFAULT_BATCH_PUBLISH, publishBatchStreams } from "../../connectors/sim/mod.js";
import type { AlertEpisodeEvent } from "../../operators/spc/mod.js";
import { ConfigError } from "../core/mod.js";
import { BUILTIN_QUALITY_MODEL } from "./builtin-quality.js";
import { cliLogger } from "./logging.js";
import { numberOption } from "./options.js";
import { addRunQualityFlags, type QualityOutputHost, type QualityPartResult, type RunQualityFlags, runQualityPart } from "./quality-run.js";

export interface DemoQualityFlags extends RunQualityFlags {
  qualitySpeed: number;
  seed: number;
}

export const DEFAULT_DEMO_QUALITY_SPEED = 120;

export function addDemoQualityFlags(command: Command): Command {
  return addRunQualityFlags(command).option(
    "--quality-speed <x>",
    "batch simulator: event time per wall-clock time (a batch lasts about 55–95 simulated minutes)",
    numberOption("--quality-speed"),
    DEFAULT_DEMO_QUALITY_SPEED,
  );
}

/** The quality model the demo runs (built-in by default), or null with --no-quality-model. */
export function demoQualityModel(flags: DemoQualityFlags): string | null {
  if (flags.qualityModel === false) return null;
  if (flags.qualityModel === "registry")
    throw new ConfigError("--quality-model", "the demo has no model registry: give a model file, or builtin (the default)");
  if (!(flags.qualitySpeed > 0)) throw new ConfigError("--quality-speed", `must be positive, got ${flags.qualitySpeed}`);
  flags.qualityModel ??= BUILTIN_QUALITY_MODEL;
  return flags.qualityModel;
}

export interface DemoQualityOptions {
  url: string;
  site: string;
  /** The demo's stream: the quality records go to `<stream>_QUALITY`. */
  stream: string;
  host: QualityOutputHost;
  route: (e: AlertEpisodeEvent) => void;
  /** The demo's stop: the publisher stops, the job takes what was published, then ends. */
  stopped: Promise<void>;
  log: (line: string) => void;
}

/** Starts the batch publisher once the quality job consumes; resolves with the job's figures after the stop. */
export function startDemoQuality(flags: DemoQualityFlags, o: DemoQualityOptions): Promise<QualityPartResult> {
  const sim = new StoppableBatchSimulator({ seed: flags.seed, lines: flags.qualityLines, batches: 1_000_000, startTime: Date.now() });
  let publisher: Promise<unknown> = Promise.resolve();
  const stop = o.stopped.then(async () => {
    sim.stopped = true;
    await publisher;
  });
  const part = runQualityPart({
    flags,
    host: o.host,
    route: o.route,
    source: { kind: "nats", url: o.url, site: o.site, stream: o.stream, flushIntervalMs: 250 },
    stop,
    log: cliLogger(),
    note: (line) => o.log(line.replace(/^linewatch run: /, "")),
    onReady: () => {
      publisher = publishBatchStreams(sim, {
        ...DEFAULT_BATCH_PUBLISH,
        url: o.url,
        site: o.site,
        jetstream: true,
        inFlightMax: 256,
        speed: flags.qualitySpeed,
      }).catch((error: Error) => o.log(`batch publisher failed: ${error.message}`));
      o.log(
        `quality: ${flags.qualityLines} lines' batches at ${flags.qualitySpeed}× → lw.${o.site}.process.> and lw.${o.site}.quality.> (JetStream ${o.stream}_QUALITY) → model ${flags.qualityModel}; /api/ml/quality/batches/; --no-quality-model turns it off`,
      );
    },
  });
  // Awaited after the sensor job; a failure before that is not lost.
  part.catch(() => undefined);
  return part;
}

/** The batch simulator, stoppable from outside (publishBatchStreams runs until `next` says null). */
class StoppableBatchSimulator extends BatchSimulator {
  stopped = false;
  override next(): ReturnType<BatchSimulator["next"]> {
    return this.stopped ? null : super.next();
  }
}
