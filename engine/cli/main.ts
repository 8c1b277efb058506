#!/usr/bin/env node
/** The `linewatch` command line's entry point. Every command has --help. */
import { reportFailure } from "./failure.js";
import { buildProgram } from "./program.js";

async function main(): Promise<void> {
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (error) {
    process.exit(reportFailure(error, (text) => process.stderr.write(text)));
  }
}

void main();
