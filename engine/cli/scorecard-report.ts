/** The fault-detection scorecard at the end of a command on the simulator (`run`, `demo`): a table on the console, JSON on request. */
import { writeFileSync } from "node:fs";
import type { Writable } from "node:stream";
import { ConfigError } from "../core/mod.js";
import { type FaultScorecard, formatScorecard } from "../jobs/mod.js";

export const SCORECARD_JSON_HELP =
  "simulator: also write the fault-detection scorecard printed at the end (injected faults vs alert openings) to this file as JSON";

/** Prints the scorecard on `console` and, with `jsonPath`, writes it there as JSON. */
export function reportScorecard(scorecard: FaultScorecard, jsonPath: string | undefined, console: Writable): void {
  const card = scorecard.result();
  console.write(`${formatScorecard(card)}\n`);
  if (jsonPath === undefined) return;
  try {
    writeFileSync(jsonPath, `${JSON.stringify(card, null, 2)}\n`);
  } catch (cause) {
    throw new ConfigError("--scorecard-json", `cannot write ${jsonPath}: ${(cause as Error).message}`);
  }
}
