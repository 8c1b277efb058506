/** `linewatch replay`: flags → {@link runReplay}. The contract is in docs/commands/replay.md. */
import { Command, Option } from "commander";
import { ConfigError, type TimeUnit, DEFAULT_WORKERS, InputError, kernelHash } from "../core/mod.js";
import {
  auditConfig,
  auditHeaderLine,
  type AuditStamp,
  auditStamp,
  DEFAULT_REPLAY_BATCH_RECORDS,
  DEFAULT_REPLAY_KEYS_MAX,
  type ReplaySummary,
  runReplay,
} from "../jobs/mod.js";
import { durationIn, integerOption } from "./options.js";
import { type AnalysisContext, addAnalysisFlags, analysesFromFlags, type AnalysisFlags, analysisSpecsFromFlags } from "./analysis-flags.js";
import { createOutputFile, RotatingFileSink } from "../../connectors/files/mod.js";

interface ReplayFlags extends AnalysisFlags {
  key?: string;
  time: string;
  timeUnit: TimeUnit;
  value?: string;
  lateness?: string;
  out?: string;
  alerts?: string;
  workers: number;
  keysMax: number;
  batchRecords: number;
  quiet?: boolean;
  audit?: boolean;
}

export function replayCommand(): Command {
  const command = new Command("replay")
    .description("run a CSV or NDJSON file (or - for stdin) through analyses; one NDJSON line per input row, in input order")
    .argument("<input>", "CSV with a header, .ndjson/.jsonl, or - for stdin")
    .option("--key <cols>", "key columns, comma separated (default: machine_id,sensor_type where present, else one key)")
    .option("--time <col>", "time column", "timestamp")
    .addOption(
      new Option("--time-unit <unit>", "ms: ISO-8601 or epoch ms; number: a counter, D in its units")
        .choices(["ms", "number"])
        .default("ms"),
    )
    .option("--value <col>", "value column (default: sensor_value, else value)")
    .option("--lateness <D>", "reorder each key's records within D; later ones are marked late and get no statistics")
    .option("--out <file>", "write NDJSON here instead of stdout")
    .option("--alerts <file>", "spc: write alert events (open / closed) here as NDJSON")
    .option(
      "--workers <n>",
      "worker threads: the kernels' pool, or the text threads of a CSV file's columnar path (0: all on the main thread)",
      integerOption("--workers", 0, 256),
      DEFAULT_WORKERS,
    )
    .option("--keys-max <n>", "most distinct keys", integerOption("--keys-max", 1, 1 << 24), DEFAULT_REPLAY_KEYS_MAX)
    .option("--batch-records <n>", "records per kernel task", integerOption("--batch-records", 1, 1 << 20), DEFAULT_REPLAY_BATCH_RECORDS)
    .option("--quiet", "no progress on stderr")
    .option(
      "--audit",
      "audit record: a first line with the settings, and kernel_hash, config_hash, model_version, limits_version on every line (docs/commands/audit.md)",
    );
  return addAnalysisFlags(command, "rolling").action(async (input: string, flags: ReplayFlags) => {
    const lateness = flags.lateness === undefined ? null : durationIn(flags.lateness, flags.timeUnit, "--lateness");
    const keyColumns = flags.key
      ?.split(",")
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
    const alertsOut = flags.alerts === undefined ? null : new RotatingFileSink(flags.alerts);
    let alertCount = 0;
    const ctx: AnalysisContext = {
      timeUnit: flags.timeUnit,
      keyParts: keyColumns,
      onAlert: (event) => {
        alertCount++;
        void alertsOut?.write(`${JSON.stringify(event)}\n`);
      },
    };
    const analyses = analysesFromFlags(flags, ctx);
    const audit = flags.audit === true ? replayAudit(flags, ctx, lateness) : undefined;
    const output = flags.out === undefined ? process.stdout : createOutputFile(flags.out);
    if (audit !== undefined) output.write(`${auditHeaderLine(audit)}\n`);
    const summary = await runReplay({
      input,
      analyses,
      keyColumns,
      timeColumn: flags.time,
      timeUnit: flags.timeUnit,
      valueColumn: flags.value,
      lateness,
      workers: flags.workers,
      keysMax: flags.keysMax,
      batchRecordsMax: flags.batchRecords,
      output,
      progress: flags.quiet ? null : process.stderr,
      audit,
    });
    if (output !== process.stdout)
      await new Promise<void>((resolve, reject) => output.end((e?: Error | null) => (e ? reject(e) : resolve())));
    await alertsOut?.close();
    reportSummary(flags, summary, alertCount);
    checkSomeAccepted(input, summary);
  });
}

/** The summary line (unless --quiet) and the analyses' warnings, on stderr. */
function reportSummary(flags: ReplayFlags, summary: ReplaySummary, alertCount: number): void {
  if (!flags.quiet) {
    process.stderr.write(
      `replay: ${summary.rows} rows, ${summary.keys} keys in ${summary.seconds.toFixed(2)} s ` +
        `(${Math.round(summary.rows / summary.seconds)} rows/s); rejected ${summary.rejected}, late ${summary.late}, ` +
        `out of order ${summary.outOfOrder}${flags.analysis.includes("spc") ? `, alert events ${alertCount}` : ""}\n`,
    );
  }
  for (const note of summary.notes) process.stderr.write(`replay: WARNING ${note}\n`);
}

/** The audit stamp of a replay: its sensor analyses' settings (a serial analysis has no audit record). */
function replayAudit(flags: ReplayFlags, ctx: AnalysisContext, lateness: number | null): AuditStamp {
  if (flags.analysis.split(",").some((n) => n.trim() === "serial"))
    throw new ConfigError("--audit", "the audit record covers the sensor analyses (rolling, spc, iforest), not serial");
  return auditStamp(auditConfig(analysisSpecsFromFlags(flags, ctx), flags.timeUnit, lateness), kernelHash());
}

/**
 * A replay that accepted no row computed nothing: a failure, not a success with an empty result.
 * The output is complete first (each rejected row's line says why in "error").
 */
function checkSomeAccepted(input: string, summary: ReplaySummary): void {
  if (summary.rows > summary.rejected) return;
  const name = input === "-" ? "stdin" : input;
  if (summary.rows === 0) throw new InputError(`${name}: no rows after the header; nothing was replayed`);
  throw new InputError(
    `${name}: no row was accepted, all ${summary.rows} were rejected (the first: ${summary.firstRejection}); ` +
      `check --time, --time-unit and --value`,
  );
}
