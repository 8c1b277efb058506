/**
 * `linewatch chaos`: the fault-injection harness (engine/jobs/chaos): throw-away nats-server and
 * clickhouse-server, the simulator publishing to JetStream, `linewatch run` as a child process,
 * faults injected, every published record reconciled against ClickHouse (FINAL). Prints one table;
 * exits 1 when anything was lost, duplicated, crashed or differs (docs/commands/chaos.md).
 */
import { resolve } from "node:path";
import { Command, Option } from "commander";
import { ConfigError } from "../core/mod.js";
import { CHAOS_SCENARIOS, type ChaosScenario, chaosFailed, formatChaosTable, runChaos } from "../jobs/mod.js";
import { commandInstalled } from "../../connectors/local/mod.js";
import { integerOption } from "./options.js";

/** Exit code when a scenario failed (lost, duplicated, crashed or mismatched). */
export const EXIT_CHAOS_FAILED = 1;

interface ChaosFlags {
  quick?: boolean;
  json?: boolean;
  scenario: string;
  cycles?: number;
  rate?: number;
  seed: number;
  profileDir?: string;
  fetch?: number;
}

function scenarioList(text: string): ChaosScenario[] {
  const names = text.split(",").map((s) => s.trim());
  for (const n of names)
    if (!(CHAOS_SCENARIOS as readonly string[]).includes(n))
      throw new ConfigError("--scenario", `unknown scenario '${n}'; the scenarios are ${CHAOS_SCENARIOS.join(", ")}`);
  return names as ChaosScenario[];
}

export function chaosCommand(): Command {
  return new Command("chaos")
    .description("fault injection on throw-away servers (kill -9 …): records lost and duplicated, recovery time, peak RSS, as a table")
    .option("--quick", "each scenario small (CI: minutes in all)")
    .option("--json", "the table as JSON on stdout")
    .addOption(
      new Option("--scenario <list>", `scenarios, comma separated (${CHAOS_SCENARIOS.join(", ")})`).default(CHAOS_SCENARIOS.join(",")),
    )
    .option("--cycles <n>", "kill -9 cycles (default 20; 3 with --quick)", integerOption("--cycles", 1, 1000))
    .option("--rate <n>", "records per second the simulator publishes (default 1000)", integerOption("--rate", 1, 1_000_000))
    .option("--seed <n>", "simulator and kill-point seed", integerOption("--seed", 0, 2 ** 31 - 1), 17)
    .option("--fetch <n>", "the engine's --fetch: messages per JetStream round (default 2000)", integerOption("--fetch", 1, 1_000_000))
    .option("--profile-dir <dir>", "run every engine under node --cpu-prof, its profiles (worker threads too) written to <dir>")
    .action(async (flags: ChaosFlags) => {
      for (const server of ["nats-server", "clickhouse-server"])
        if (!commandInstalled(server)) throw new ConfigError("chaos", `${server} is not on PATH (apt-get install -y ${server})`);
      const rows = await runChaos({
        scenarios: scenarioList(flags.scenario),
        quick: flags.quick === true,
        seed: flags.seed,
        cycles: flags.cycles,
        rate: flags.rate,
        fetch: flags.fetch,
        profileDir: flags.profileDir === undefined ? undefined : resolve(flags.profileDir),
        log: (line) => process.stderr.write(`chaos: ${line}\n`),
      });
      process.stdout.write(
        flags.json === true ? `${JSON.stringify({ rows, failed: chaosFailed(rows) }, null, 1)}\n` : formatChaosTable(rows),
      );
      if (chaosFailed(rows)) process.exitCode = EXIT_CHAOS_FAILED;
    });
}
