/** What the command line says when a command fails, and its exit code. */
import { inspect } from "node:util";
import { CommanderError } from "commander";
import { LinewatchError } from "../core/mod.js";

/** A {@link LinewatchError}: bad input, bad configuration, a full limit, a server out of reach. */
export const EXIT_FAILURE = 2;
/** Anything else is a bug (EX_SOFTWARE of sysexits.h); commander's usage errors exit 1. */
export const EXIT_BUG = 70;

/**
 * Writes what a person needs about `error` and returns the exit code. Expected failures are told
 * apart by `instanceof LinewatchError` only, and shown as `linewatch: <message>` (no class name);
 * anything else keeps its stack and causes for a bug report. Commander has already printed its own.
 */
export function reportFailure(error: unknown, write: (text: string) => void): number {
  if (error instanceof CommanderError) return error.exitCode;
  if (error instanceof LinewatchError) {
    write(`linewatch: ${failureText(error)}\n`);
    return EXIT_FAILURE;
  }
  write(`linewatch: internal error (a bug; please report it with what follows)\n${inspect(error)}\n`);
  return EXIT_BUG;
}

/** The message (what failed and where), then the causes it does not already say. */
function failureText(error: LinewatchError): string {
  let text = error.message;
  let cause = error.cause;
  for (let depth = 0; cause !== undefined && depth < 4; depth++) {
    const said = cause instanceof Error ? cause.message : String(cause);
    if (said !== "" && !text.includes(said)) text += `\n  because: ${said}`;
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  return text;
}
