/**
 * `linewatch audit verify`: re-runs the analyses of audited scores (a `replay --audit` file, or
 * ml_scores in ClickHouse) with their recorded settings and models and says, per score, equal or
 * the first difference. Exit 0: every score equal and the same kernel; 1: a difference (a score,
 * or the kernel of this build); 2: verification could not run. The contract is in
 * docs/commands/audit.md.
 */
import { Command, Option } from "commander";
import { ConfigError } from "../core/mod.js";
import { registryModels, type VerifyReport, verifyAuditClickHouse, verifyAuditFile } from "../jobs/mod.js";
import { type StoreFlags, withRegistry, withStore } from "./models.js";
import { DEFAULT_CLICKHOUSE_DATABASE } from "../../connectors/clickhouse/mod.js";

/** Exit code when a score or the kernel differs (as diff(1): 1 different, 2 trouble). */
export const EXIT_DIFFERENT = 1;

interface VerifyFlags extends StoreFlags {
  input?: string;
  clickhouse?: string;
  database: string;
  key?: string;
  from?: string;
  to?: string;
  json?: boolean;
}

export function auditCommand(): Command {
  return new Command("audit")
    .description("the audit record on every score: verify stored scores by recomputing them")
    .addCommand(verifyCommand());
}

function verifyCommand(): Command {
  const command = new Command("verify")
    .description("re-run the analyses of audited scores with their recorded settings and models; per score: equal, or the first difference")
    .addOption(new Option("--input <file>", "an NDJSON file `linewatch replay --audit` wrote").conflicts("clickhouse"))
    .option("--clickhouse <url>", "ml_scores in this ClickHouse (http://host:8123)")
    .option("--database <name>", "ClickHouse database", DEFAULT_CLICKHOUSE_DATABASE)
    .option("--key <K>", "ClickHouse: the key, machine_id/sensor_type (or a machine_id: each of its sensors)")
    .option(
      "--from <T>",
      "ClickHouse: compare scores from this time on (ISO-8601 or epoch ms); the key's state is rebuilt from its first row",
    )
    .option("--to <T>", "ClickHouse: compare scores before this time")
    .option("--json", "the report as one JSON object");
  return withStore(command).action(async (flags: VerifyFlags) => {
    const report = await withRegistry(flags, async (registry) => {
      const models = registryModels(registry);
      if (flags.input !== undefined) return verifyAuditFile(flags.input, models);
      if (flags.clickhouse === undefined)
        throw new ConfigError("--input/--clickhouse", "give the scores to verify: --input FILE or --clickhouse URL --key K");
      if (flags.key === undefined) throw new ConfigError("--key", "verifying ClickHouse scores needs --key machine_id/sensor_type");
      return verifyAuditClickHouse(
        {
          url: flags.clickhouse,
          database: flags.database,
          key: flags.key,
          from: timeOf(flags.from, "--from"),
          to: timeOf(flags.to, "--to"),
        },
        models,
      );
    });
    process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : reportText(report));
    if (report.differing > 0 || !report.kernel.same) process.exitCode = EXIT_DIFFERENT;
  });
}

/** The report for a person: the verdict first, then the kernel, then the first differences. */
export function reportText(r: VerifyReport): string {
  const lines: string[] = [];
  const verdict = r.differing === 0 ? "every score bit-equal" : `${r.differing} differ`;
  lines.push(`audit verify: ${r.checked} scores checked, ${r.equal} equal, ${verdict}`);
  if (r.kernel.same) lines.push(`kernel: ${r.kernel.build} (this build, as recorded)`);
  else
    lines.push(
      `KERNEL DIFFERS: the scores record ${r.kernel.recorded.join(", ") || "no kernel hash"}; this build's kernel is ${r.kernel.build}. ` +
        "The recomputation ran on this build's kernel.",
    );
  lines.push(`settings: ${r.configHashes.join(", ")}${r.models.length > 0 ? `; models: ${r.models.join(", ")}` : ""}`);
  for (const d of r.differences)
    lines.push(`DIFFERS ${d.score}: ${d.field} stored ${JSON.stringify(d.stored)}, recomputed ${JSON.stringify(d.recomputed)}`);
  if (r.differing > r.differences.length) lines.push(`… and ${r.differing - r.differences.length} more scores differ`);
  return `${lines.join("\n")}\n`;
}

function timeOf(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const ms = /^\d+$/.test(text.trim()) ? Number(text) : Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : `${text}Z`);
  if (!Number.isFinite(ms)) throw new ConfigError(flag, `not a time (ISO-8601 or epoch ms): "${text}"`);
  return ms;
}
