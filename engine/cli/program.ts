/** The `linewatch` program: every command and its flags (parsing only; main.ts runs it). */
import { Command, Option } from "commander";
import { DEFAULT_LOG_LEVEL, LOG_LEVELS, type LogLevel } from "../core/mod.js";
import { configureLogging } from "./logging.js";
import { iforestCommand } from "./iforest.js";
import { modelsCommand } from "./models.js";
import { auditCommand } from "./audit.js";
import { predictCommand } from "./predict.js";
import { qualityCommand } from "./quality.js";
import { replayCommand } from "./replay.js";
import { rulesCommand } from "./rules.js";
import { runCommand } from "./run.js";
import { demoCommand } from "./demo.js";
import { simulateCommand } from "./simulate.js";
import { entropyCommand } from "./entropy.js";
import { chaosCommand } from "./chaos.js";
import { serialCommand } from "./serial.js";
import { simulateSerialsCommand } from "./simulate-serials.js";

export function buildProgram(): Command {
  const program = new Command("linewatch")
    .description("stream-processing engine for packaging and serialization line telemetry")
    .version("0.1.0")
    .addOption(
      new Option("--log-level <level>", "diagnostic events on stderr from this level up: JSON lines, readable on a terminal")
        .choices([...LOG_LEVELS])
        .env("LINEWATCH_LOG_LEVEL")
        .default(DEFAULT_LOG_LEVEL),
    )
    .hook("preAction", (program) => {
      configureLogging(program.opts<{ logLevel: LogLevel }>().logLevel);
    })
    .addCommand(runCommand(), { isDefault: true })
    .addCommand(demoCommand())
    .addCommand(simulateCommand())
    .addCommand(replayCommand())
    .addCommand(rulesCommand())
    .addCommand(iforestCommand())
    .addCommand(predictCommand())
    .addCommand(qualityCommand())
    .addCommand(modelsCommand())
    .addCommand(auditCommand())
    .addCommand(simulateSerialsCommand())
    .addCommand(serialCommand())
    .addCommand(entropyCommand())
    .addCommand(chaosCommand())
    .showHelpAfterError("(linewatch --help describes the commands; linewatch <command> --help lists a command's flags)");
  // `run` is the default so that `linewatch` and `linewatch --nats URL` run it; commander would
  // also hand it a mistyped command name (`linewatch rnu` → "too many arguments for 'run'").
  program.hook("preSubcommand", (parent, command) => {
    const first = parent.args[0];
    if (command.name() === "run" && first !== undefined && first !== "run" && !first.startsWith("-")) {
      parent.error(
        unknownCommandMessage(
          first,
          parent.commands.map((c) => c.name()),
        ),
        { code: "commander.unknownCommand" },
      );
    }
  });
  // One voice: commander's usage errors ("error: …") read "linewatch: …" like a command's own failures.
  const sameVoice = (command: Command): void => {
    command.configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, "linewatch: ")) });
    for (const sub of command.commands) sameVoice(sub);
  };
  sameVoice(program);
  return program;
}

/** `unknown command 'rnu' (did you mean run?); the commands are: run, demo, …`. */
export function unknownCommandMessage(name: string, known: readonly string[]): string {
  const near = known.filter((k) => editDistance(name, k) <= Math.min(2, Math.floor(k.length / 2)));
  const hint = near.length === 0 ? "" : ` (did you mean ${near.join(" or ")}?)`;
  return `error: unknown command '${name}'${hint}; the commands are: ${known.join(", ")}`;
}

/** Optimal-string-alignment distance: insertions, deletions, substitutions and adjacent swaps (`rnu` → `run` is 1). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}
