/** The `linewatch` program: every command and its flags (parsing only; main.ts runs it). */
import { Command, Option } from "commander";
import { DEFAULT_LOG_LEVEL, LOG_LEVELS, type LogLevel } from "../core/mod.js";
import { configureLogging } from "./logging.js";
import { iforestCommand } from "./iforest.js";
import { predictCommand } from "./predict.js";
import { replayCommand } from "./replay.js";
import { rulesCommand } from "./rules.js";
import { runCommand } from "./run.js";
import { demoCommand } from "./demo.js";
import { simulateCommand } from "./simulate.js";
import { entropyCommand } from "./entropy.js";
import { serialCommand } from "./serial.js";
import { simulateSerialsCommand } from "./simulate-serials.js";

export function buildProgram(): Command {
  return new Command("linewatch")
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
    .addCommand(simulateSerialsCommand())
    .addCommand(serialCommand())
    .addCommand(entropyCommand())
    .showHelpAfterError();
}
