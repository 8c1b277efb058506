/** `linewatch replay`: flags → {@link runReplay}. The contract is in README.md. */
import { createWriteStream } from "node:fs";
import { Command, Option } from "commander";
import { parseDuration } from "../duration.js";
import { ConfigError } from "../errors.js";
import type { TimeUnit } from "../event-time.js";
import { DEFAULT_REPLAY_BATCH_RECORDS, DEFAULT_REPLAY_KEYS_MAX, runReplay } from "../replay.js";
import { DEFAULT_ROLLING_ALPHA, DEFAULT_TIME_WINDOW_CAPACITY, rollingAnalysis, type RollingWindow } from "../../operators/rolling.js";
import { DEFAULT_WORKERS } from "../kernel-pool.js";
import { integerOption, numberOption } from "./options.js";

interface ReplayFlags {
  analysis: string;
  window?: number;
  span?: string;
  key?: string;
  time: string;
  timeUnit: TimeUnit;
  value?: string;
  alpha: number;
  lateness?: string;
  out?: string;
  workers: number;
  keysMax: number;
  windowRecordsMax: number;
  batchRecords: number;
  quiet?: boolean;
}

export function replayCommand(): Command {
  return new Command("replay")
    .description("run a CSV or NDJSON file (or - for stdin) through an analysis; one NDJSON line per input row, in input order")
    .argument("<input>", "CSV with a header, .ndjson/.jsonl, or - for stdin")
    .addOption(new Option("--analysis <name>", "analysis to run").choices(["rolling"]).default("rolling"))
    .option("--window <N>", "count window: the last N records of each key", integerOption("--window", 1, 65535))
    .option("--span <D>", "time window of duration D (90s, 15m, 1h, 24h, 7d; a plain number with --time-unit number)")
    .option("--key <cols>", "key columns, comma separated (default: machine_id,sensor_type where present, else one key)")
    .option("--time <col>", "time column", "timestamp")
    .addOption(new Option("--time-unit <unit>", "ms: ISO-8601 or epoch ms; number: a counter, D in its units").choices(["ms", "number"]).default("ms"))
    .option("--value <col>", "value column (default: sensor_value, else value)")
    .option("--alpha <a>", "EWMA smoothing factor in (0, 1]", numberOption("--alpha"), DEFAULT_ROLLING_ALPHA)
    .option("--lateness <D>", "reorder each key's records within D; later ones are marked late and get no statistics")
    .option("--out <file>", "write NDJSON here instead of stdout")
    .option("--workers <n>", "worker threads (0: run kernels on the main thread)", integerOption("--workers", 0, 256), DEFAULT_WORKERS)
    .option("--keys-max <n>", "most distinct keys", integerOption("--keys-max", 1, 1 << 24), DEFAULT_REPLAY_KEYS_MAX)
    .option("--window-records-max <n>", "most records a time window holds per key", integerOption("--window-records-max", 2, 65535), DEFAULT_TIME_WINDOW_CAPACITY)
    .option("--batch-records <n>", "records per kernel task", integerOption("--batch-records", 1, 1 << 20), DEFAULT_REPLAY_BATCH_RECORDS)
    .option("--quiet", "no progress on stderr")
    .action(async (input: string, flags: ReplayFlags) => {
      const window = windowOf(flags);
      const lateness = flags.lateness === undefined ? null : durationIn(flags.lateness, flags.timeUnit, "--lateness");
      const output = flags.out === undefined ? process.stdout : createWriteStream(flags.out);
      const summary = await runReplay({
        input,
        analyses: [rollingAnalysis({ window, alpha: flags.alpha, timeScale: flags.timeUnit === "ms" ? 1000 : 1 })],
        keyColumns: flags.key?.split(",").map((s) => s.trim()).filter((s) => s.length > 0),
        timeColumn: flags.time,
        timeUnit: flags.timeUnit,
        valueColumn: flags.value,
        lateness,
        workers: flags.workers,
        keysMax: flags.keysMax,
        batchRecordsMax: flags.batchRecords,
        output,
        progress: flags.quiet ? null : process.stderr,
      });
      if (output !== process.stdout) await new Promise<void>((resolve, reject) => output.end((e?: Error | null) => (e ? reject(e) : resolve())));
      if (!flags.quiet) {
        process.stderr.write(
          `replay: ${summary.rows} rows, ${summary.keys} keys in ${summary.seconds.toFixed(2)} s ` +
            `(${Math.round(summary.rows / summary.seconds)} rows/s); rejected ${summary.rejected}, late ${summary.late}, ` +
            `out of order ${summary.outOfOrder}\n`,
        );
      }
      for (const note of summary.notes) process.stderr.write(`replay: WARNING ${note}\n`);
    });

  function windowOf(flags: ReplayFlags): RollingWindow {
    if ((flags.window === undefined) === (flags.span === undefined)) {
      throw new ConfigError("--window/--span", "give exactly one: --window N (count) or --span D (time)");
    }
    if (flags.window !== undefined) return { kind: "count", records: flags.window };
    return { kind: "time", span: durationIn(flags.span as string, flags.timeUnit, "--span"), capacity: flags.windowRecordsMax };
  }
}

/** A duration flag in the time column's units: ms for clocks, a plain positive number for counters. */
function durationIn(text: string, unit: TimeUnit, flag: string): number {
  if (unit === "ms") return parseDuration(text);
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0 || text.trim() === "") throw new ConfigError(flag, `expected a number in the time column's units, got "${text}"`);
  return n;
}
