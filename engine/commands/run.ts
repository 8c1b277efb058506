/** `linewatch run`: flags → {@link runJob}. Default: the built-in plant simulator, live, until Ctrl-C. */
import { Command } from "commander";
import { parseDuration } from "../duration.js";
import { ConfigError } from "../errors.js";
import { DEFAULT_WORKERS } from "../kernel-pool.js";
import { runJob } from "../run-job.js";
import { DEFAULT_FILE_BYTES_MAX } from "../../connectors/rotating-file-sink.js";
import { SENSOR_TYPES, type SensorType } from "../../connectors/simulator.js";
import { DEFAULT_ROLLING_ALPHA, DEFAULT_TIME_WINDOW_CAPACITY, type RollingWindow } from "../../operators/rolling.js";
import { integerOption, numberOption } from "./options.js";

interface RunFlags {
  seed: number;
  machines: number;
  sensors?: string;
  rate: number;
  faultRate: number;
  speed: string;
  duration?: string;
  records?: number;
  window?: number;
  span?: string;
  windowRecordsMax: number;
  alpha: number;
  workers: number;
  batchRecords: number;
  out: string;
  file: boolean;
  fileBytesMax: number;
  zAlarm: number;
  summaryInterval: string;
  flushInterval: string;
}

export function runCommand(): Command {
  return new Command("run")
    .description("run the main job: plant simulator → rolling statistics on the worker pool → scores file + live console summary")
    .option("--seed <n>", "simulator seed", integerOption("--seed", 0, Number.MAX_SAFE_INTEGER), 1)
    .option("--machines <n>", "simulated machines", integerOption("--machines", 1, 10_000), 8)
    .option("--sensors <list>", `sensor types, comma separated (default all: ${SENSOR_TYPES.join(",")})`)
    .option("--rate <hz>", "readings per second per sensor", numberOption("--rate"), 10)
    .option("--fault-rate <f>", "injected faults per sensor per hour", numberOption("--fault-rate"), 2)
    .option("--speed <x>", "simulated time per wall-clock time: 1 = live, 60 = a minute per second, max = as fast as possible", "1")
    .option("--duration <D>", "stop after D of simulated time (90s, 15m, 1h)")
    .option("--records <n>", "stop after n readings", integerOption("--records", 1, Number.MAX_SAFE_INTEGER))
    .option("--window <N>", "count window of the rolling statistics (default 64)", integerOption("--window", 1, 65535))
    .option("--span <D>", "time window instead of a count window")
    .option("--window-records-max <n>", "most records a time window holds per key", integerOption("--window-records-max", 2, 65535), DEFAULT_TIME_WINDOW_CAPACITY)
    .option("--alpha <a>", "EWMA smoothing factor", numberOption("--alpha"), DEFAULT_ROLLING_ALPHA)
    .option("--workers <n>", "worker threads", integerOption("--workers", 0, 256), DEFAULT_WORKERS)
    .option("--batch-records <n>", "records per kernel task", integerOption("--batch-records", 1, 1 << 20), 4096)
    .option("--out <file>", "NDJSON scores file", "out/rolling.ndjson")
    .option("--no-file", "write no scores file")
    .option("--file-bytes-max <n>", "rotate the scores file past this size (keeps one previous file)", integerOption("--file-bytes-max", 1024, Number.MAX_SAFE_INTEGER), DEFAULT_FILE_BYTES_MAX)
    .option("--z-alarm <z>", "|z| counted as an anomaly in the summary", numberOption("--z-alarm"), 4)
    .option("--summary-interval <D>", "console summary interval (0: none)", "1s")
    .option("--flush-interval <D>", "live runs: most time a reading waits in a partly filled buffer", "250ms")
    .action(async (flags: RunFlags) => {
      const speed = flags.speed === "max" ? Infinity : Number(flags.speed);
      if (!(speed > 0)) throw new ConfigError("--speed", `must be a positive number or "max", got "${flags.speed}"`);
      if (flags.window !== undefined && flags.span !== undefined) throw new ConfigError("--window/--span", "give at most one");
      const window: RollingWindow =
        flags.span !== undefined
          ? { kind: "time", span: parseDuration(flags.span), capacity: flags.windowRecordsMax }
          : { kind: "count", records: flags.window ?? 64 };
      const sensorTypes = flags.sensors?.split(",").map((s) => s.trim()) as SensorType[] | undefined;
      let onStop: () => void = () => {};
      const stop = new Promise<void>((resolve) => (onStop = resolve));
      const signals = ["SIGINT", "SIGTERM"] as const;
      for (const s of signals) process.once(s, onStop);
      const outPath = flags.file ? flags.out : null;
      process.stderr.write(
        `linewatch run: simulator (${flags.machines} machines, ${flags.rate} Hz/sensor, seed ${flags.seed}) → rolling ` +
          `${window.kind === "count" ? `window ${window.records}` : `span ${flags.span}`} on ${flags.workers} workers` +
          `${outPath ? ` → ${outPath}` : ""}; speed ${flags.speed}. Ctrl-C stops.\n`,
      );
      const result = await runJob({
        simulator: {
          seed: flags.seed,
          machines: flags.machines,
          sensorTypes,
          rateHz: flags.rate,
          faultRate: flags.faultRate,
          startTime: speed === 1 ? Math.floor(Date.now()) : undefined,
          durationMs: flags.duration === undefined ? undefined : parseDuration(flags.duration),
          maxRecords: flags.records,
        },
        rolling: { window, alpha: flags.alpha, timeScale: 1000 },
        workers: flags.workers,
        groups: 16,
        batchRecordsMax: flags.batchRecords,
        speed,
        outPath,
        fileBytesMax: flags.fileBytesMax,
        zAlarm: flags.zAlarm,
        flushIntervalMs: parseDuration(flags.flushInterval),
        summaryIntervalMs: parseDuration(flags.summaryInterval),
        console: process.stdout,
        stop,
      });
      for (const s of signals) process.off(s, onStop);
      process.stderr.write(`linewatch run: stopped after ${result.metrics.recordsOut} records in ${result.seconds.toFixed(1)} s\n`);
    });
}
