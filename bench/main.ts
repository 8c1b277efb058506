/**
 * The benchmark command line (`npm run bench`, `node dist/bench/main.js [e2e] …`): flags → {@link runKernelBench} (rolling suite) and
 * {@link runSpcBench} (SPC suite, after the rolling one in the same process), reports on stdout,
 * progress on stderr. Targets are informational; only a checksum mismatch (the variants did not
 * compute the same statistics) ends with exit code 1. `node dist/bench/main.js e2e` (also `npm run bench:e2e`):
 * the whole path, NATS to ClickHouse and WebSocket ({@link runPipelineBench}); only a loss (ClickHouse
 * holding fewer or more score rows than records scored) or a failed setting ends with exit code 1.
 * `node dist/bench/main.js clickhouse`: ClickHouse rows as row objects + JSONEachRow against RowBinary
 * and Native from columns, encoding, insert and the server's CPU ({@link runClickHouseBench}); figures only. `node dist/bench/main.js replay`:
 * `linewatch replay --analysis rolling`, CSV → NDJSON, rows/s by path against the I/O ceilings
 * ({@link runReplayBench}); exit code 1 only when the paths' outputs differ. `node dist/bench/main.js alerts`:
 * the fault-detection scorecard of `linewatch run`'s alerts on the simulator, one or more settings
 * side by side ({@link runAlertEval}); figures only.
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Command, CommanderError, Option } from "commander";
import {
  DEFAULT_BENCH_BATCH_RECORDS,
  DEFAULT_BENCH_KEYS,
  DEFAULT_BENCH_SEED,
  DEFAULT_BENCH_VALUES,
  DEFAULT_BENCH_WINDOW,
  SMOKE_BENCH_KEYS,
  SMOKE_BENCH_VALUES,
} from "./bench-kit.js";
import { formatKernelBenchReport, runKernelBench, SWEEP_BATCH_RECORDS, SWEEP_WORKERS } from "./kernel-bench.js";
import { formatSpcBenchReport, runSpcBench, SPC_REFERENCE_SLICE_KEYS, SPC_REFERENCE_SLICE_VALUES } from "./spc-bench.js";
import {
  DEFAULT_PIPELINE_SEED,
  formatPipelineReport,
  PIPELINE_BATCHES,
  PIPELINE_WORKERS,
  pipelineFailures,
  NAIVE_P99_RELATIVE_ABOVE_MS,
  runPipelineBench,
  TARGET_P99_MS,
  TARGET_P99_MS_CLICKHOUSE,
  TARGET_RATIO_VS_NAIVE,
  TARGET_RATIO_VS_RAW,
  TARGET_RATIO_VS_RAW_CLICKHOUSE,
} from "./pipeline-bench.js";
import {
  DEFAULT_CLICKHOUSE_BENCH_RECORDS,
  formatClickHouseBenchReport,
  runClickHouseBench,
  SMOKE_CLICKHOUSE_BENCH_RECORDS,
} from "./clickhouse-bench.js";
import {
  DEFAULT_REPLAY_BENCH_KEYS,
  DEFAULT_REPLAY_BENCH_ROWS,
  formatReplayBenchReport,
  runReplayBench,
  SMOKE_REPLAY_BENCH_ROWS,
  TARGET_REPLAY_ROWS_PER_SECOND,
} from "./replay-bench.js";
import { defaultCacheDir, durationOption, integerOption, numberOption } from "../engine/cli/mod.js";
import { DEFAULT_FAILURE_EVAL, formatFailureEvalReport, runFailureEval } from "./failure-eval.js";
import {
  alertSetting,
  DEFAULT_ALERT_EVAL_GRACE_MS,
  DEFAULT_ALERT_EVAL_HOURS,
  DEFAULT_ALERT_EVAL_MACHINES,
  DEFAULT_ALERT_EVAL_SEED,
  formatAlertEvalReport,
  runAlertEval,
} from "./alert-eval.js";
import { ConfigError, parseDuration } from "../engine/core/mod.js";
import { formatSerialJobRate, measureSerialJobRate } from "./serial-job-bench.js";
import {
  DEFAULT_QUALITY_EVAL_SEED,
  DEFAULT_QUALITY_TEST_BATCHES,
  DEFAULT_QUALITY_TRAIN_BATCHES,
  formatQualityEvalReport,
  runQualityEval,
  SMOKE_QUALITY_TEST_BATCHES,
  SMOKE_QUALITY_TRAIN_BATCHES,
} from "./quality-eval.js";
import { DEFAULT_AUDIT_BENCH_RECORDS, formatAuditBenchReport, runAuditBench, SMOKE_AUDIT_BENCH_RECORDS } from "./audit-bench.js";
import { compareRulFolds, formatFoldTable } from "./rul-eval.js";
import { readCmapss, referenceDataDir } from "../connectors/files/mod.js";

interface BenchFlags {
  keys?: number;
  values?: number;
  window: number;
  batchRecords?: number;
  seed: number;
  smoke?: boolean;
  sweep?: boolean;
  json?: boolean;
  suite: BenchSuite;
}

export const BENCH_SUITES = ["rolling", "spc", "all"] as const;
export type BenchSuite = (typeof BENCH_SUITES)[number];

const HELP_AFTER = `
Suites (--suite, default all: rolling, then SPC, in one process).

rolling — from one seeded data set (keys × values, interleaved across keys, random walk + noise):
  - samples/s of the rolling kernel (all statistics) on the main thread and on the worker pool with
    0, 1 and 2 workers, inputs pre-staged in shared memory (the kernel + pool ceiling);
  - samples/s of the stream engine end to end (StreamEngine.push, 2 workers);
  - samples/s of a TypeScript port of the same incremental algorithm, and of the from-scratch test
    reference on a slice (100 keys × 2000 values);
  - a memory-bandwidth ceiling: a WASM SIMD sum over the 100 bytes per sample the kernel moves;
  - ratios side by side, a checksum per variant (WASM and the TS port must agree, else MISMATCH),
    state bytes per key, and the targets (≥ 100 M samples/s with 2 workers, ≥ 5× the TypeScript
    reference, ≤ 1 KiB state per key at W = 64) as met / not met;
  - unless --no-sweep: batch size (${SWEEP_BATCH_RECORDS.join(", ")}) × workers (${SWEEP_WORKERS.join(", ")}) and the best setting.

spc — from one seeded data set (in-control noise with injected shifts, drifts and variance changes;
baseline 100 per key, sigma by moving range):
  - samples/s of the SPC kernel alone on the main thread and on the pool with 0, 1 and 2 workers;
  - samples/s of rolling (--window) + SPC together, one task per group buffer calling both kernels,
    on the main thread and on the pool with 1 and 2 workers, against the target of 80 M samples/s
    with 2 workers; and through the stream engine (kernels [rolling, spc], 2 workers);
  - samples/s of the TypeScript SPC reference and of the TypeScript rolling port + that reference on
    a slice (${SPC_REFERENCE_SLICE_KEYS} keys × ${SPC_REFERENCE_SLICE_VALUES} values);
  - ratios, a checksum per variant (Σ cusum_pos + Σ zone + rule firings), the WASM rows against
    the reference on the slice (else MISMATCH), rule firing counts and state bytes per key.

The rolling suite takes one to three minutes on 2 cores, the SPC suite about one; --smoke takes seconds.
Exit code: 0, or 1 when the checksums disagree. Targets never fail the run.

Examples:
  npm run bench --
  npm run bench -- --smoke
  npm run bench -- --suite spc
  npm run bench -- --keys 200 --values 50000 --window 256 --no-sweep --json > bench.json`;

export function benchCommand(): Command {
  return new Command("bench")
    .description("benchmark the kernels (rolling statistics, SPC): WASM on the worker pool vs TypeScript vs memory bandwidth")
    .addOption(
      new Option("--suite <name>", "which benchmark: rolling, spc, or all (rolling, then SPC)").choices(BENCH_SUITES).default("all"),
    )
    .option("--keys <n>", `distinct keys (default ${DEFAULT_BENCH_KEYS}; --smoke ${SMOKE_BENCH_KEYS})`, integerOption("--keys", 1, 1 << 20))
    .option(
      "--values <n>",
      `values per key (default ${DEFAULT_BENCH_VALUES}; --smoke ${SMOKE_BENCH_VALUES})`,
      integerOption("--values", 1, 1 << 30),
    )
    .option(
      "--window <W>",
      "count window: the last W values of each key (the SPC suite's rolling analysis too)",
      integerOption("--window", 1, 65_535),
      DEFAULT_BENCH_WINDOW,
    )
    .option(
      "--batch-records <n>",
      `records per kernel task for the headline figures (default ${DEFAULT_BENCH_BATCH_RECORDS}; --smoke 1024)`,
      integerOption("--batch-records", 1, 1 << 20),
    )
    .option("--seed <n>", "seed of the generated data", integerOption("--seed", 0, 0xffffffff), DEFAULT_BENCH_SEED)
    .option("--smoke", "tiny sizes and short timings (no sweep unless --sweep): a check that the benchmark runs")
    .option("--sweep", "run the rolling suite's batch size × worker count sweep (default, except with --smoke)")
    .option("--no-sweep", "skip the sweep")
    .option("--json", "print the report as JSON instead of text")
    .addHelpText("after", HELP_AFTER)
    .addCommand(e2eCommand())
    .addCommand(clickhouseCommand())
    .addCommand(replayBenchCommand())
    .addCommand(alertsCommand())
    .addCommand(failureCommand())
    .addCommand(auditBenchCommand())
    .addCommand(qualityBenchCommand())
    .addCommand(rulBenchCommand())
    .action(runKernelSuites);
}

/** `bench [--suite …]`: the kernel suites' reports on stdout; exit code 1 when their checksums disagree. */
async function runKernelSuites(flags: BenchFlags): Promise<void> {
  const mismatches: string[] = [];
  const json: Record<string, unknown> = {};
  // The sizes both kernel suites take from the flags.
  const sizes = {
    keys: flags.keys,
    values: flags.values,
    window: flags.window,
    batchRecords: flags.batchRecords,
    seed: flags.seed,
    smoke: flags.smoke === true,
  };
  if (flags.suite === "rolling" || flags.suite === "all") {
    const report = await runKernelBench({
      ...sizes,
      sweep: flags.sweep,
      progress: progress("rolling"),
    });
    if (flags.json === true) json.rolling = report;
    else process.stdout.write(`${formatKernelBenchReport(report)}\n`);
    if (!report.checksums.agree) mismatches.push(`rolling: ${report.checksums.mismatches.join("; ")}`);
  }
  if (flags.suite === "spc" || flags.suite === "all") {
    if (flags.suite === "all" && flags.json !== true) process.stdout.write("\n");
    const report = await runSpcBench({
      ...sizes,
      progress: progress("spc"),
    });
    if (flags.json === true) json.spc = report;
    else process.stdout.write(`${formatSpcBenchReport(report)}\n`);
    if (!report.checksums.agree) mismatches.push(`spc: ${report.checksums.mismatches.join("; ")}`);
  }
  // One suite: its report as before; both: {"rolling": …, "spc": …}.
  if (flags.json === true) {
    const body = flags.suite === "all" ? json : json[flags.suite];
    process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
  }
  if (mismatches.length > 0) {
    process.stderr.write(`bench: MISMATCH — checksums disagree: ${mismatches.join(" | ")}\n`);
    process.exitCode = 1;
  }
}

/** Progress lines of a suite, on stderr. */
function progress(suite: string): (line: string) => void {
  return (line) => process.stderr.write(`bench ${suite}: ${line}\n`);
}

const CLICKHOUSE_HELP_AFTER = `
ClickHouse rows three ways, from one engine run's output (rolling W = 64 + SPC + an isolation forest,
8 machines × 6 sensors; each record an ml_scores and an ml_sensor_data row):
  - encoding records/s on one thread: row objects + JSONEachRow (what the sensor job does, on the
    main thread), row objects + RowBinary, and RowBinary and Native from the batch's columns (what
    an ingest worker does), with the bytes per ml_scores row;
  - insert rows/s of both tables into a throw-away clickhouse-server through ClickHouseSink: write()
    of row objects (encoded on the sink's thread) and insertEncoded() of RowBinary and of Native
    encoded beforehand, with the server process's CPU seconds per million rows (from /proc).
Without clickhouse-server installed it says so and prints the encoding rows only. Figures only:
the exit code is 0 unless the run fails. About a minute on 2 cores; --smoke a few seconds.

Examples:
  npm run bench -- clickhouse
  npm run bench -- clickhouse --smoke
  npm run bench -- clickhouse --records 500000 --json > clickhouse.json`;

function clickhouseCommand(): Command {
  return new Command("clickhouse")
    .description(
      "benchmark ClickHouse rows: row objects + JSONEachRow vs RowBinary and Native from columns, encoding, insert and server CPU",
    )
    .option("--smoke", `${SMOKE_CLICKHOUSE_BENCH_RECORDS} records, one pass: a check that the benchmark runs`)
    .option(
      "--records <n>",
      `records of the engine run (default ${DEFAULT_CLICKHOUSE_BENCH_RECORDS})`,
      integerOption("--records", 1000, 10_000_000),
    )
    .option("--json", "print the report as JSON instead of text")
    .addHelpText("after", CLICKHOUSE_HELP_AFTER)
    .action(async (flags: { smoke?: boolean; records?: number; json?: boolean }, command: Command) => {
      // As for e2e: `bench clickhouse --smoke` (and --json) land on bench's own options of that name.
      const parent = command.parent;
      const smoke = flags.smoke === true || parent?.getOptionValueSource("smoke") === "cli";
      const json = flags.json === true || parent?.getOptionValueSource("json") === "cli";
      const report = await runClickHouseBench({ smoke, records: flags.records, progress: progress("clickhouse") });
      process.stdout.write(`${json ? JSON.stringify(report, null, 2) : formatClickHouseBenchReport(report)}\n`);
    });
}

const REPLAY_HELP_AFTER = `
\`linewatch replay --analysis rolling --window 64\`, CSV → NDJSON, as the command runs it (2 workers, its
defaults), on a seeded CSV written to a temporary directory (ISO-8601 times with milliseconds,
machine_id, sensor_type, values with 3 decimals; --keys keys drawn at random per row): rows/s of
each path the replay can take, timed until the output file is closed, each output compared with the
first (SHA-256) and removed, each path after a pause; beside them the I/O ceilings — reading the CSV
and finding its lines, and writing as many bytes as the NDJSON has to a new file, in 256 KiB and in
1 MiB system calls — and the target of ${TARGET_REPLAY_ROWS_PER_SECOND / 1e6} M rows/s.
Figures only: the exit code is 1 only when the outputs differ. About a minute on 2 cores; --smoke seconds.

Examples:
  npm run bench -- replay
  npm run bench -- replay --smoke
  npm run bench -- replay --rows 5000000 --keys 1000 --json > replay.json`;

/** `bench audit`: what the audit record costs per record, each output with and without it side by side. */
function auditBenchCommand(): Command {
  return new Command("audit")
    .description("benchmark the audit record: CPU per record of ml_scores encoding, score lines and replay, with and without it")
    .option("--smoke", `${SMOKE_AUDIT_BENCH_RECORDS} records: a check that the benchmark runs`)
    .option("--records <n>", `records (default ${DEFAULT_AUDIT_BENCH_RECORDS})`, integerOption("--records", 1000, 100_000_000))
    .option("--json", "print the report as JSON instead of text")
    .action(async (flags: { smoke?: boolean; records?: number; json?: boolean }, command: Command) => {
      const parent = command.parent;
      const smoke = flags.smoke === true || parent?.getOptionValueSource("smoke") === "cli";
      const json = flags.json === true || parent?.getOptionValueSource("json") === "cli";
      const report = await runAuditBench({ smoke, records: flags.records, progress: progress("audit") });
      process.stdout.write(`${json ? JSON.stringify(report, null, 2) : formatAuditBenchReport(report)}\n`);
    });
}

const QUALITY_HELP_AFTER = `
The quality model (\`linewatch quality train\`'s defaults) against scikit-learn's GradientBoostingRegressor
on the same feature rows: ${DEFAULT_QUALITY_TRAIN_BATCHES} simulated training batches (seed --seed, default ${DEFAULT_QUALITY_EVAL_SEED}) and
${DEFAULT_QUALITY_TEST_BATCHES} held-out batches (the next seed), scored at each batch's end and halfway: yield MAE and RMSE, AUC of
yield < 0.95; beside them the mean-yield baseline and the process model's own expectation. Figures only.
Under a minute on 2 cores; --smoke seconds.

Examples:
  npm run bench -- quality
  npm run bench -- quality --smoke
  npm run bench -- quality --train-batches 1200 --json > quality.json`;

/** \`bench quality\`: the quality model and scikit-learn's boosted trees on the same held-out batches. */
function qualityBenchCommand(): Command {
  return new Command("quality")
    .description("benchmark the quality model against scikit-learn's gradient boosting on the same features and held-out batches")
    .option(
      "--smoke",
      `${SMOKE_QUALITY_TRAIN_BATCHES} training and ${SMOKE_QUALITY_TEST_BATCHES} held-out batches: a check that the benchmark runs`,
    )
    .option(
      "--train-batches <n>",
      `training batches (default ${DEFAULT_QUALITY_TRAIN_BATCHES})`,
      integerOption("--train-batches", 10, 1_000_000),
    )
    .option(
      "--test-batches <n>",
      `held-out batches (default ${DEFAULT_QUALITY_TEST_BATCHES})`,
      integerOption("--test-batches", 10, 1_000_000),
    )
    .option("--json", "print the report as JSON instead of text")
    .addHelpText("after", QUALITY_HELP_AFTER)
    .action(async (flags: { smoke?: boolean; trainBatches?: number; testBatches?: number; json?: boolean }, command: Command) => {
      // As for e2e: \`bench quality --smoke\` (and --seed, --json) land on bench's own options of that name.
      const parent = command.parent;
      const smoke = flags.smoke === true || parent?.getOptionValueSource("smoke") === "cli";
      const json = flags.json === true || parent?.getOptionValueSource("json") === "cli";
      const seed = parent?.getOptionValueSource("seed") === "cli" ? parent.opts<{ seed: number }>().seed : DEFAULT_QUALITY_EVAL_SEED;
      const report = await runQualityEval({
        seed,
        trainBatches: flags.trainBatches ?? (smoke ? SMOKE_QUALITY_TRAIN_BATCHES : DEFAULT_QUALITY_TRAIN_BATCHES),
        testBatches: flags.testBatches ?? (smoke ? SMOKE_QUALITY_TEST_BATCHES : DEFAULT_QUALITY_TEST_BATCHES),
        epochs: smoke ? 5 : undefined,
        progress: progress("quality"),
      });
      process.stdout.write(`${json ? JSON.stringify(report, null, 2) : formatQualityEvalReport(report)}\n`);
    });
}

const RUL_HELP_AFTER = `
The failure model of \`linewatch predict train\` (its defaults) against the model it replaced (MLP on
the rolling mean and slope over 30 cycles) and scikit-learn's RandomForestRegressor on each model's
features (when /usr/bin/python3 imports sklearn), by k-fold cross-validation over the units of
C-MAPSS FD001's training file: every unit held out once; each held-out unit cut at 10 random cycles
(from cycle 30 on, the same cuts for every model), RUL predicted at the last cycle seen, true RUL
capped at 125. Per fold and as mean ± standard deviation: RMSE (cycles) and the PHM08 score per
draw of one cut per unit; the current model's training wall and CPU seconds. Figures only. About
5-10 minutes on 2 cores (the forests take half of it).

Examples:
  npm run bench -- rul
  npm run bench -- rul --folds 10 --trees 100 --json > rul.json`;

function rulBenchCommand(): Command {
  return new Command("rul")
    .description("cross-validate the failure model on C-MAPSS FD001: current vs previous model vs scikit-learn's random forest")
    .option("--cmapss <file>", "C-MAPSS run-to-failure file (default: the shipped train_FD001.txt)")
    .option("--folds <k>", "folds (units held out per fold: 100 / k)", integerOption("--folds", 2, 100), 5)
    .option("--seed <n>", "seed of the folds, the training and the cuts", integerOption("--seed", 0, 0xffffffff), 1)
    .option("--trees <n>", "trees of the random forest", integerOption("--trees", 1, 10_000), 60)
    .option("--json", "print the report as JSON instead of text")
    .addHelpText("after", RUL_HELP_AFTER)
    .action(async (flags: { cmapss?: string; folds: number; seed: number; trees: number; json?: boolean }, command: Command) => {
      // As for e2e: `bench rul --seed` and --json land on bench's own options of that name.
      const parent = command.parent;
      const json = flags.json === true || parent?.getOptionValueSource("json") === "cli";
      const seed = parent?.getOptionValueSource("seed") === "cli" ? parent.opts<{ seed: number }>().seed : flags.seed;
      const file = flags.cmapss ?? join(referenceDataDir(), "cmapss", "train_FD001.txt");
      const report = await compareRulFolds(readCmapss(file), file, {
        folds: flags.folds,
        seed,
        forestTrees: flags.trees,
        progress: progress("rul"),
      });
      process.stdout.write(`${json ? JSON.stringify(report, null, 2) : formatFoldTable(report)}\n`);
    });
}

function replayBenchCommand(): Command {
  return new Command("replay")
    .description("benchmark `linewatch replay --analysis rolling`, CSV → NDJSON: rows/s by path against the I/O ceilings")
    .option("--smoke", `${SMOKE_REPLAY_BENCH_ROWS} rows: a check that the benchmark runs`)
    .option("--rows <n>", `rows of the CSV (default ${DEFAULT_REPLAY_BENCH_ROWS})`, integerOption("--rows", 1000, 100_000_000))
    .option("--keys <n>", `distinct keys (default ${DEFAULT_REPLAY_BENCH_KEYS})`, integerOption("--keys", 1, 4096))
    .option("--json", "print the report as JSON instead of text")
    .addHelpText("after", REPLAY_HELP_AFTER)
    .action(async (flags: { smoke?: boolean; rows?: number; keys?: number; json?: boolean }, command: Command) => {
      // As for e2e: `bench replay --smoke` (and --keys, --json) land on bench's own options of that name.
      const parent = command.parent;
      const smoke = flags.smoke === true || parent?.getOptionValueSource("smoke") === "cli";
      const json = flags.json === true || parent?.getOptionValueSource("json") === "cli";
      const keys = flags.keys ?? (parent?.getOptionValueSource("keys") === "cli" ? parent.opts<{ keys: number }>().keys : undefined);
      const report = await runReplayBench({ smoke, rows: flags.rows, keys, progress: progress("replay") });
      process.stdout.write(`${json ? JSON.stringify(report, null, 2) : formatReplayBenchReport(report)}\n`);
      if (!report.paths.every((p) => p.identical)) {
        process.stderr.write("bench replay: OUTPUT DIFFERS between the paths\n");
        process.exitCode = 1;
      }
    });
}

const ALERTS_HELP_AFTER = `
The plant simulator at full speed (seed ${DEFAULT_ALERT_EVAL_SEED}, ${DEFAULT_ALERT_EVAL_MACHINES} machines × 6 sensors, 10 Hz, 2 faults per
sensor per hour) for --hours of simulated time through the analyses of \`linewatch run\` (its job, its
defaults: rolling,spc keyed by operating mode), and the fault-detection scorecard the run prints:
per fault kind injected, detected (an alert opening on the fault's sensor within [start, end + grace]),
rate, median and p90 delay, openings per detected fault; false openings per sensor key per simulated
hour. Each setting runs again on the fault-free twin (the same seed without faults), and a line
under its table counts only the openings the twin does not have at the same key, family and
reading: what the faults caused, without the openings a fault window catches by chance. Figures
only: the exit code is 0 unless a run fails.

Every other flag is a \`run\` analysis flag (--analysis, --fa-budget, --baseline, --sigma, --cusum-k,
--cusum-h, --ewma-lambda, --ewma-l, --we4-run … --n8-run, --window, --no-key-by-mode, --settle, …)
and applies to every setting. --compare takes the rest of the line: one setting per argument (its
flags split at spaces; "default" for none), each run over the same readings and faults, one table
each and a summary line each. 8 simulated hours take about 1½ minutes per setting on 2 cores.

Examples:
  npm run bench -- alerts
  npm run bench -- alerts --hours 2 --fa-budget 0.0027
  npm run bench -- alerts --compare "default" "--fa-budget 0.0027" "--fa-budget 0.0027 --cusum-h 8"
  npm run bench -- alerts --hours 1 --json --compare default "--we4-run 12" > alerts.json`;

/** The flags of `bench alerts` itself; the rest are `run`'s analysis flags. */
interface AlertsFlags {
  hours: number;
  seed: number;
  machines: number;
  grace: string;
  json?: boolean;
}

/** `bench failure`: the built-in plant's failure model against the simulator's own failures (bench/failure-eval.ts). */
function failureCommand(): Command {
  return new Command("failure")
    .description(
      "evaluate the built-in plant's failure model on the simulator's own failures: RMSE of time to failure, failures warned ahead",
    )
    .option("--seeds <list>", "simulator seeds, comma separated", DEFAULT_FAILURE_EVAL.seeds.join(","))
    .option("--machines <n>", "machines per seed", integerOption("--machines", 1, 10_000), DEFAULT_FAILURE_EVAL.machines)
    .option("--hours <h>", "simulated hours per seed", numberOption("--hours"), DEFAULT_FAILURE_EVAL.hours)
    .option("--rate <hz>", "readings per second per sensor", numberOption("--rate"), DEFAULT_FAILURE_EVAL.rateHz)
    .option("--step <minutes>", "event time between two predictions of a machine", numberOption("--step"), DEFAULT_FAILURE_EVAL.stepMinutes)
    .option("--json", "print the report as JSON")
    .action(async (f: { seeds: string; machines: number; hours: number; rate: number; step: number; json?: boolean }) => {
      const seeds = f.seeds.split(",").map((s) => Number(s.trim()));
      if (seeds.some((s) => !Number.isSafeInteger(s))) throw new ConfigError("--seeds", `must be integers, got "${f.seeds}"`);
      const report = await runFailureEval({
        ...DEFAULT_FAILURE_EVAL,
        seeds,
        machines: f.machines,
        hours: f.hours,
        rateHz: f.rate,
        stepMinutes: f.step,
        cacheDir: defaultCacheDir(),
        progress: progress("failure"),
      });
      process.stdout.write(`${f.json === true ? JSON.stringify(report, null, 2) : formatFailureEvalReport(report)}\n`);
    });
}

function alertsCommand(): Command {
  // Parsed from the raw arguments in runAlerts: bench's own --seed, --window, --json would take
  // them here, and a --compare setting ("--fa-budget 0.0027") is an argument, not an option.
  return new Command("alerts")
    .description("evaluate the alerts of `linewatch run` on the simulator: the fault-detection scorecard of one or more settings")
    .allowUnknownOption()
    .allowExcessArguments()
    .helpOption(false)
    .option("-h, --help", "this help")
    .addHelpText("after", ALERTS_HELP_AFTER)
    .action(async (_flags: unknown, command: Command) => {
      const at = process.argv.indexOf("alerts", 2);
      await runAlerts(at < 0 ? [] : process.argv.slice(at + 1), command);
    });
}

function alertsOwnFlags(): Command {
  return new Command("alerts")
    .option(
      "--hours <h>",
      `simulated hours per setting (default ${DEFAULT_ALERT_EVAL_HOURS})`,
      numberOption("--hours"),
      DEFAULT_ALERT_EVAL_HOURS,
    )
    .option("--seed <n>", "simulator seed", integerOption("--seed", 0, Number.MAX_SAFE_INTEGER), DEFAULT_ALERT_EVAL_SEED)
    .option("--machines <n>", "simulated machines", integerOption("--machines", 1, 10_000), DEFAULT_ALERT_EVAL_MACHINES)
    .option(
      "--grace <D>",
      "an opening up to D after a fault's end still detects it",
      durationOption,
      `${DEFAULT_ALERT_EVAL_GRACE_MS / 1000}s`,
    )
    .option("--json", "print the report as JSON instead of text")
    .allowUnknownOption()
    .allowExcessArguments()
    .exitOverride();
}

/** `bench alerts …`: the settings' scorecards on stdout. */
async function runAlerts(argv: readonly string[], command: Command): Promise<void> {
  if (argv.includes("-h") || argv.includes("--help")) {
    command.outputHelp();
    return;
  }
  const compareAt = argv.indexOf("--compare");
  const base = compareAt < 0 ? [...argv] : argv.slice(0, compareAt);
  const texts = compareAt < 0 ? ["default"] : argv.slice(compareAt + 1);
  if (texts.length === 0) throw new ConfigError("--compare", 'needs at least one setting ("default" for run\'s defaults)');
  const own = alertsOwnFlags();
  own.parse(base, { from: "user" });
  const flags = own.opts<AlertsFlags>();
  if (!(flags.hours > 0)) throw new ConfigError("--hours", "must be > 0");
  // What is not bench alerts' own flag is a run flag, common to every setting.
  const common = own.args;
  const settings = texts.map((t) => {
    const s = alertSetting(t);
    return { name: s.name, args: [...common, ...s.args] };
  });
  const report = await runAlertEval({
    hours: flags.hours,
    seed: flags.seed,
    machines: flags.machines,
    graceMs: parseDuration(flags.grace),
    settings,
    progress: progress("alerts"),
  });
  process.stdout.write(`${flags.json === true ? JSON.stringify(report, null, 2) : formatAlertEvalReport(report)}\n`);
}

interface E2eFlags {
  seed: number;
  /** After the report, the serial job's rate over this many events. */
  serialEvents?: number;
  /** Last, the replay's columns path over a CSV of this many rows. */
  replayRows?: number;
  smoke?: boolean;
  batches?: number[];
  workers?: number[];
  clickhouse: boolean;
  inFlight?: number;
  machines?: number;
  rawMs?: number;
  maxMs?: number;
  latencyMs?: number;
  formats: boolean;
  formatsOnly?: boolean;
  frameReadings?: number;
  jetstreamReadings?: number;
  engine?: "ingest" | "ingest+pool" | "pool";
  json?: boolean;
}

const E2E_HELP_AFTER = `
The whole path on a throw-away nats-server and clickhouse-server (free loopback ports, temporary
directories): plant simulator → core NATS → runNatsJob (rolling W = 64 + SPC + iforest, the forest
trained at start from seeded simulator features, not timed) → Outputs → ClickHouse (ml_sensor_data,
ml_scores) and the live server → a WebSocket subscriber (the ws package, in a worker thread).
Without clickhouse-server installed it says so loudly and runs without it (ClickHouse columns —).

For each batch size × workers: raw nats.js records/s (same publisher and messages, counting
subscriber); the naive consumer (bench/naive-consumer.ts: nats.js, @msgpack/msgpack, a Map of ring
buffers, a JSON score published per record; its own process) measured as the engine is: sustained
maximum under the same credit, p50/p99/max publish → score arrival at half of it; the engine's
sustained maximum (credit-paced publisher, only scored records counted, shed reported), the ratio, records scored and the score rows in ClickHouse (count() FINAL), the
sink's mean batch latency, then publish → WebSocket latency p50/p99/max at half of that maximum
(open loop), split where the reading is scored (→scored, →ws; ingest workers: where the main thread hands its frame to the live server), and records lost; linewatch ÷ raw and
÷ naive; CPU µs per record of the engine's main thread (and its event-loop utilisation), the raw
subscriber's thread and the naive process, each over its maximum phase. Then the best setting
by rate and by p99. Then, on the first batch size with the engine alone, other sources and formats in
readings/s: raw nats.js and the engine (credit-paced) with columnar frames of one machine's
readings at each worker count of the sweep with SPC as \`linewatch run\` sets it (and once more at the
largest count with the textbook chart), and the engine on a JetStream pull consumer (first setting, stream loaded first; --no-formats: none of
these). Last the targets as met / not met — without ClickHouse p99 ≤ ${TARGET_P99_MS} ms at half load (half
the naive consumer's p99 where that is above ${NAIVE_P99_RELATIVE_ABOVE_MS} ms), ≥ ${TARGET_RATIO_VS_RAW * 100} % of raw nats.js and ≥ ${TARGET_RATIO_VS_NAIVE}× the naive
consumer; with ClickHouse p99 ≤ ${TARGET_P99_MS_CLICKHOUSE} ms and ≥ ${TARGET_RATIO_VS_RAW_CLICKHOUSE * 100} % of raw; frames ≥ 10 M readings/s with SPC as run sets it — seed and load average.

With --serial-events n, then the serial job's rate over n serial events (MessagePack messages →
decode → serial kernel → detections, quarantine → outputs, beside the same job through the
generic decoder, the main thread's stages alone (reader, + payload copy, + ledger), the decoder
alone and the kernel alone, and the job's CPU per event by part: measureSerialJobRate, serial-job-bench.ts).
With --replay-rows n, last \`linewatch replay --analysis rolling --window 64\`, CSV → NDJSON, over a
seeded CSV of n rows: the columns path (the one the command takes for it) beside the output
ceilings, and the target of ${TARGET_REPLAY_ROWS_PER_SECOND / 1e6} M rows/s (runReplayBench, replay-bench.ts; \`bench replay\` times both paths).
The issue's whole table in one run: --serial-events 1000000 --replay-rows 3000000.

A default run takes about 9 minutes on 2 cores; --smoke (one setting, short phases) about a minute.
Exit code: 1 when ClickHouse does not hold one score row per record scored, or a setting failed;
times never fail the run.

Examples:
  npm run bench -- e2e
  npm run bench -- e2e --smoke
  npm run bench -- e2e --batches 4096 --workers 2 --latency-ms 30000
  npm run bench -- e2e --no-clickhouse --json > e2e.json`;

function e2eCommand(): Command {
  const list =
    (flag: string, min: number, max: number) =>
    (text: string): number[] =>
      text.split(",").map((t) => integerOption(flag, min, max)(t.trim()));
  return new Command("e2e")
    .description("benchmark the whole path: NATS → engine (rolling + SPC + iforest) → ClickHouse + WebSocket, over batch size × workers")
    .option("--smoke", "one setting (batch 1024, 1 worker), short phases: a check that the benchmark runs")
    .option("--seed <n>", "simulator seed", integerOption("--seed", 0, 0xffffffff), DEFAULT_PIPELINE_SEED)
    .option(
      "--serial-events <n>",
      "after the report, the serial job's rate over n serial events (default: not measured)",
      integerOption("--serial-events", 1000, 100_000_000),
    )
    .option(
      "--replay-rows <n>",
      "last, the replay's columns path over a CSV of n rows (default: not measured)",
      integerOption("--replay-rows", 1000, 100_000_000),
    )
    .option(
      "--batches <list>",
      `records per kernel task to sweep (default ${PIPELINE_BATCHES.join(",")}; --smoke 1024)`,
      list("--batches", 1, 1 << 20),
    )
    .option("--workers <list>", `worker counts to sweep (default ${PIPELINE_WORKERS.join(",")}; --smoke 1)`, list("--workers", 0, 64))
    .option("--no-clickhouse", "leave ClickHouse out of the path even when clickhouse-server is installed")
    .option(
      "--in-flight <n>",
      "credit of the paced publisher: records published and not yet scored (default 65536)",
      integerOption("--in-flight", 1, 1 << 20),
    )
    .option("--machines <n>", "simulated machines, 6 sensors each (default 8)", integerOption("--machines", 1, 1000))
    .option("--raw-ms <ms>", "raw nats.js phase per setting (default 4000; smoke 1500)", integerOption("--raw-ms", 300, 600_000))
    .option("--max-ms <ms>", "sustained-maximum phase per setting (default 12000; smoke 3000)", integerOption("--max-ms", 300, 600_000))
    .option("--latency-ms <ms>", "latency phase per setting (default 12000; smoke 3000)", integerOption("--latency-ms", 1000, 600_000))
    .option("--no-formats", "leave out the frames and JetStream rows after the sweep")
    .option("--formats-only", "leave out the batch × workers sweep: only the frames and JetStream rows (first batch and worker count)")
    .option(
      "--frame-readings <n>",
      "readings per frame in the frames rows (default 4096; smoke 500)",
      integerOption("--frame-readings", 1, 65_535),
    )
    .option(
      "--jetstream-readings <n>",
      "readings loaded into the JetStream stream (default 300000; smoke 20000)",
      integerOption("--jetstream-readings", 1, 4_000_000),
    )
    .addOption(
      new Option(
        "--engine <path>",
        "linewatch's path: ingest workers owning partitions with kernels inline (ingest, the default) or on a kernel thread each (ingest+pool), or the sensor job with kernels on the pool (pool)",
      ).choices(["ingest", "ingest+pool", "pool"]),
    )
    .option("--json", "print the report as JSON instead of text")
    .addHelpText("after", E2E_HELP_AFTER)
    .action(runE2e);
}

/** `bench e2e`: the run, its report on stdout, a non-zero exit code when something was lost. */
async function runE2e(flags: E2eFlags, command: Command): Promise<void> {
  // The root program does not use positional options, so commander hands `bench e2e --smoke`
  // (and --seed, --json) to `bench`'s own option of that name: take those back.
  const parent = command.parent;
  if (parent?.getOptionValueSource("smoke") === "cli") flags.smoke = true;
  if (parent?.getOptionValueSource("json") === "cli") flags.json = true;
  if (parent?.getOptionValueSource("seed") === "cli") flags.seed = parent.opts<{ seed: number }>().seed;
  const report = await runPipelineBench({
    seed: flags.seed,
    smoke: flags.smoke === true,
    batches: flags.batches,
    workers: flags.workers,
    clickhouse: flags.clickhouse,
    inFlight: flags.inFlight,
    machines: flags.machines,
    rawMs: flags.rawMs,
    maxMs: flags.maxMs,
    latencyMs: flags.latencyMs,
    formats: flags.formats,
    sweep: flags.formatsOnly !== true,
    frameReadings: flags.frameReadings,
    jetstreamReadings: flags.jetstreamReadings,
    engine: flags.engine,
    progress: (line) => process.stderr.write(`bench e2e: ${line}\n`),
  });
  const serial =
    flags.serialEvents === undefined
      ? null
      : await measureSerialJobRate({
          events: flags.serialEvents,
          progress: (line) => process.stderr.write(`bench e2e: serial: ${line}\n`),
        });
  const replay =
    flags.replayRows === undefined
      ? null
      : await runReplayBench({
          rows: flags.replayRows,
          smoke: flags.smoke === true,
          paths: ["columns"],
          progress: (line) => process.stderr.write(`bench e2e: replay: ${line}\n`),
        });
  const extra = { ...(serial === null ? {} : { serialJob: serial }), ...(replay === null ? {} : { replay }) };
  process.stdout.write(
    flags.json === true
      ? `${JSON.stringify({ ...report, ...extra }, null, 2)}\n`
      : `${formatPipelineReport(report)}\n${serial === null ? "" : `\n${formatSerialJobRate(serial)}\n`}${replay === null ? "" : `\n${formatReplayBenchReport(replay)}\n`}`,
  );
  const failures = pipelineFailures(report);
  if (failures.length > 0) {
    process.stderr.write(`bench e2e: FAILED — ${failures.join(" | ")}\n`);
    process.exitCode = 1;
  }
}

async function main(): Promise<void> {
  try {
    await benchCommand().parseAsync(process.argv);
  } catch (error) {
    if (error instanceof CommanderError) process.exit(error.exitCode);
    // A bad setting (bench alerts): the flag and why, as the linewatch commands say it.
    if (error instanceof ConfigError) {
      process.stderr.write(`bench: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
