/**
 * `linewatch bench` (also `npm run bench`): flags → {@link runKernelBench}, report on stdout,
 * progress on stderr. Targets are informational; only a checksum mismatch (the variants did not
 * compute the same statistics) ends with exit code 1.
 */
import { Command } from "commander";
import {
  DEFAULT_BENCH_BATCH_RECORDS, DEFAULT_BENCH_KEYS, DEFAULT_BENCH_SEED, DEFAULT_BENCH_VALUES, DEFAULT_BENCH_WINDOW,
  formatKernelBenchReport, runKernelBench, SMOKE_BENCH_KEYS, SMOKE_BENCH_VALUES, SWEEP_BATCH_RECORDS, SWEEP_WORKERS,
} from "../../bench/kernel-bench.js";
import { integerOption } from "./options.js";

interface BenchFlags {
  keys?: number;
  values?: number;
  window: number;
  batchRecords?: number;
  seed: number;
  smoke?: boolean;
  sweep?: boolean;
  json?: boolean;
}

const HELP_AFTER = `
What it prints, from one seeded data set (keys × values, interleaved across keys):
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

A full run takes one to three minutes on 2 cores; --smoke takes seconds.
Exit code: 0, or 1 when the checksums disagree. Targets never fail the run.

Examples:
  linewatch bench
  linewatch bench --smoke
  linewatch bench --keys 200 --values 50000 --window 256 --no-sweep --json > bench.json`;

export function benchCommand(): Command {
  return new Command("bench")
    .description("benchmark the rolling-statistics kernel: WASM on the worker pool vs TypeScript vs memory bandwidth")
    .option("--keys <n>", `distinct keys (default ${DEFAULT_BENCH_KEYS}; --smoke ${SMOKE_BENCH_KEYS})`, integerOption("--keys", 1, 1 << 20))
    .option("--values <n>", `values per key (default ${DEFAULT_BENCH_VALUES}; --smoke ${SMOKE_BENCH_VALUES})`, integerOption("--values", 1, 1 << 30))
    .option("--window <W>", "count window: the last W values of each key", integerOption("--window", 1, 65_535), DEFAULT_BENCH_WINDOW)
    .option("--batch-records <n>", `records per kernel task for the headline figures (default ${DEFAULT_BENCH_BATCH_RECORDS}; --smoke 1024)`,
      integerOption("--batch-records", 1, 1 << 20))
    .option("--seed <n>", "seed of the generated data", integerOption("--seed", 0, 0xffffffff), DEFAULT_BENCH_SEED)
    .option("--smoke", "tiny sizes and short timings (no sweep unless --sweep): a check that the benchmark runs")
    .option("--sweep", "run the batch size × worker count sweep (default, except with --smoke)")
    .option("--no-sweep", "skip the sweep")
    .option("--json", "print the report as JSON instead of text")
    .addHelpText("after", HELP_AFTER)
    .action(async (flags: BenchFlags) => {
      const report = await runKernelBench({
        keys: flags.keys,
        values: flags.values,
        window: flags.window,
        batchRecords: flags.batchRecords,
        seed: flags.seed,
        smoke: flags.smoke === true,
        sweep: flags.sweep,
        progress: (line) => process.stderr.write(`bench: ${line}\n`),
      });
      process.stdout.write(flags.json === true ? `${JSON.stringify(report, null, 2)}\n` : `${formatKernelBenchReport(report)}\n`);
      if (!report.checksums.agree) {
        process.stderr.write(`bench: MISMATCH — checksums disagree: ${report.checksums.mismatches.join("; ")}\n`);
        process.exitCode = 1;
      }
    });
}
