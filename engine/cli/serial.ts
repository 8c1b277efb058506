/**
 * `linewatch serial …`: the serialization officer's tools around the serial-integrity analysis.
 *   serial quarantine list [--file F] [--batch B] [--gtin G] [--json]
 *   serial quarantine release <serial> [--gtin G] [--note text] [--file F]
 *   serial report --batch B <input> [--gtin G] [--out prefix] [analysis flags]
 */
import { writeFileSync } from "node:fs";
import { Writable } from "node:stream";
import { Command, Option } from "commander";
import { InputError, type TimeUnit, DEFAULT_WORKERS } from "../core/mod.js";
import { DEFAULT_REPLAY_BATCH_RECORDS, DEFAULT_REPLAY_KEYS_MAX, runReplay } from "../jobs/mod.js";
import { integerOption } from "./options.js";
import { addSerialFlags, serialAnalysisFromFlags, type SerialFlags } from "./serial-flags.js";
import {
  DEFAULT_QUARANTINE_FILE,
  QuarantineList,
  type QuarantineEntry,
  SerialBatchReport,
  batchReportMarkdown,
} from "../../operators/serial/mod.js";

export function serialCommand(): Command {
  return new Command("serial")
    .description("serialization integrity: the quarantine list and batch investigation reports")
    .addCommand(quarantineCommand())
    .addCommand(reportCommand());
}

function quarantineCommand(): Command {
  const list = new Command("list")
    .description("print the quarantined serials")
    .option("--file <file>", "the quarantine list", DEFAULT_QUARANTINE_FILE)
    .option("--batch <b>", "only this batch")
    .option("--gtin <g>", "only this GTIN")
    .option("--json", "the entries as JSON instead of a table")
    .action((flags: { file: string; batch?: string; gtin?: string; json?: boolean }) => {
      const entries = QuarantineList.load(flags.file)
        .list()
        .filter(
          (e) => (flags.batch === undefined || e.batch_number === flags.batch) && (flags.gtin === undefined || e.gtin === flags.gtin),
        );
      if (flags.json) process.stdout.write(`${JSON.stringify(entries, null, 1)}\n`);
      else process.stdout.write(quarantineTable(entries));
    });
  const release = new Command("release")
    .description("release a serial from quarantine (kept in the file's `released` list with the time and note)")
    .argument("<serial>", "the serial number")
    .option("--gtin <g>", "only the serial of this GTIN (default: every GTIN's)")
    .option("--note <text>", "why it is released (kept with the entry)")
    .option("--file <file>", "the quarantine list", DEFAULT_QUARANTINE_FILE)
    .action((serial: string, flags: { gtin?: string; note?: string; file: string }) => {
      const q = QuarantineList.load(flags.file);
      const released = q.release(serial, flags.gtin, flags.note);
      if (released.length === 0) throw new InputError(`${serial}${flags.gtin ? ` (GTIN ${flags.gtin})` : ""} is not in ${flags.file}`);
      q.write(flags.file);
      process.stdout.write(
        `released ${released.length} entr${released.length === 1 ? "y" : "ies"}: ${released.map((r) => `${r.gtin}/${r.serial_number}`).join(", ")}\n`,
      );
    });
  return new Command("quarantine").description("list or release quarantined serials").addCommand(list).addCommand(release);
}

interface ReportFlags extends SerialFlags {
  batch: string;
  gtin?: string;
  out?: string;
  timeUnit: TimeUnit;
  workers: number;
  keysMax: number;
}

function reportCommand(): Command {
  const command = new Command("report")
    .description("run serial events through the serial analysis and write an investigation report of one batch (Markdown and JSON)")
    .argument("<input>", "serial events: CSV with a header, .ndjson/.jsonl, or - for stdin")
    .requiredOption("--batch <b>", "the batch number")
    .option("--gtin <g>", "the batch's GTIN (when several products share batch numbers)")
    .option("--out <prefix>", "write <prefix>.md and <prefix>.json (default: serial-report-<batch>)")
    .addOption(new Option("--time-unit <unit>", "ms: ISO-8601 or epoch ms; number: a counter").choices(["ms", "number"]).default("ms"))
    .option("--window <K>", "the last K serials of each line (≤ 1024)", integerOption("--window", 1, 1024))
    .option("--workers <n>", "worker threads (0: run kernels on the main thread)", integerOption("--workers", 0, 256), DEFAULT_WORKERS)
    .option("--keys-max <n>", "most distinct lines", integerOption("--keys-max", 1, 1 << 20), DEFAULT_REPLAY_KEYS_MAX);
  return addSerialFlags(command).action(async (input: string, flags: ReportFlags) => {
    const report = new SerialBatchReport(flags.batch, flags.gtin, flags.serialGuessMax);
    const analysis = serialAnalysisFromFlags(flags, flags.timeUnit, { onRow: (row, ctx, payload) => report.observe(row, ctx, payload) });
    const summary = await runReplay({
      input,
      analyses: [analysis],
      timeColumn: "timestamp",
      timeUnit: flags.timeUnit,
      lateness: null,
      workers: flags.workers,
      keysMax: flags.keysMax,
      batchRecordsMax: DEFAULT_REPLAY_BATCH_RECORDS,
      output: discard(),
      progress: null,
    });
    const built = report.build(analysis.quarantine.list());
    const prefix = flags.out ?? `serial-report-${flags.batch.replace(/[^A-Za-z0-9._-]/g, "_")}`;
    writeFileSync(`${prefix}.json`, `${JSON.stringify(built, null, 1)}\n`);
    writeFileSync(`${prefix}.md`, flags.timeUnit === "ms" ? batchReportMarkdown(built) : batchReportMarkdown(built, String));
    process.stderr.write(
      `serial report: batch ${flags.batch}: ${built.events} serial events of ${summary.rows} rows, ${built.anomalous_events} anomalous, ` +
        `${built.quarantined.length} quarantined serials → ${prefix}.md, ${prefix}.json\n`,
    );
    if (built.events === 0 && built.batch_close_events === 0)
      process.stderr.write(`serial report: WARNING no event of batch ${flags.batch} in ${input}\n`);
  });
}

function quarantineTable(entries: readonly QuarantineEntry[]): string {
  if (entries.length === 0) return "no quarantined serials\n";
  const head = ["gtin", "serial", "batch", "machine", "risk", "score", "n", "reasons"];
  const rows = entries.map((e) => [
    e.gtin,
    e.serial_number,
    e.batch_number,
    e.machine_id,
    e.risk_level,
    e.anomaly_score.toFixed(3),
    String(e.occurrences),
    e.reasons.join(","),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `${cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join("  ")}\n`;
  return `${line(head) + rows.map(line).join("")}${entries.length} serials\n`;
}

function discard(): Writable {
  return new Writable({ write: (_chunk, _enc, done) => done() });
}
