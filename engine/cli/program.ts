/** The `linewatch` program: every command and its flags (parsing only; main.ts runs it). */
import { Command } from "commander";
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
