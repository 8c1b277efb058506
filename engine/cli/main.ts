#!/usr/bin/env node
/** The `linewatch` command line. Every command has --help. */
import { Command, CommanderError } from "commander";
import { LinewatchError } from "../core/mod.js";
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

async function main(): Promise<void> {
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (error) {
    if (error instanceof CommanderError) process.exit(error.exitCode);
    // Expected failures (bad input, bad configuration, a full limit) get their message and exit 2;
    // anything else is a bug and keeps its stack.
    if (
      error instanceof LinewatchError ||
      (error instanceof Error &&
        /Error$/.test(error.name) &&
        error.name !== "Error" &&
        error.name !== "TypeError" &&
        error.name !== "RangeError")
    ) {
      process.stderr.write(`linewatch: ${error.name}: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

void main();
