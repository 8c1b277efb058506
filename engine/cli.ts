#!/usr/bin/env node
/** The `linewatch` command line. Every command has --help. */
import { Command, CommanderError } from "commander";
import { LinewatchError } from "./errors.js";
import { benchCommand } from "./commands/bench.js";
import { iforestCommand } from "./commands/iforest.js";
import { predictCommand } from "./commands/predict.js";
import { replayCommand } from "./commands/replay.js";
import { rulesCommand } from "./commands/rules.js";
import { runCommand } from "./commands/run.js";
import { demoCommand } from "./commands/demo.js";
import { simulateCommand } from "./commands/simulate.js";
import { entropyCommand } from "./commands/entropy.js";
import { serialCommand } from "./commands/serial.js";
import { simulateSerialsCommand } from "./commands/simulate-serials.js";

export function buildProgram(): Command {
  return new Command("linewatch")
    .description("stream-processing engine for packaging and serialization line telemetry")
    .version("0.1.0")
    .addCommand(runCommand(), { isDefault: true })
    .addCommand(demoCommand())
    .addCommand(simulateCommand())
    .addCommand(replayCommand())
    .addCommand(rulesCommand())
    .addCommand(benchCommand())
    .addCommand(iforestCommand())
    .addCommand(predictCommand())
    .addCommand(simulateSerialsCommand())
    .addCommand(serialCommand())
    .addCommand(entropyCommand())
    .showHelpAfterError();
}

async function main(): Promise<void> {
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (error) {
    if (error instanceof CommanderError) process.exit(error.exitCode);
    // Expected failures (bad input, bad configuration, a full limit) get their message and exit 2;
    // anything else is a bug and keeps its stack.
    if (error instanceof LinewatchError || (error instanceof Error && /Error$/.test(error.name) && error.name !== "Error" && error.name !== "TypeError" && error.name !== "RangeError")) {
      process.stderr.write(`linewatch: ${error.name}: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

void main();
