#!/usr/bin/env node
/** The `linewatch` command line's entry point. Every command has --help. */
import { CommanderError } from "commander";
import { LinewatchError } from "../core/mod.js";
import { buildProgram } from "./program.js";

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
