/**
 * What a new user meets when a command line is wrong: the parser (buildProgram) and the built CLI
 * (dist/engine/cli/main.js, `npm run build` first) say what is wrong, in words, with a non-zero exit.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Command, CommanderError } from "commander";
import { afterAll, describe, expect, it } from "vitest";
import { buildProgram } from "../engine/cli/program.js";
import { startCli } from "./kit/cli.js";

const dir = mkdtempSync(join(tmpdir(), "linewatch-cli-messages-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const COMMANDS = ["run", "demo", "simulate", "replay", "rules", "iforest", "predict", "simulate-serials", "serial", "entropy"];

/** Ends a parse at the action: the command it would run is known, nothing runs. */
class ActionReached extends Error {
  constructor(readonly command: string) {
    super(command);
  }
}

/** The program with exits turned into throws (in every command: addCommand does not pass them on) and its output kept. */
function parser(): { program: Command; errors: () => string } {
  let errors = "";
  const program = buildProgram().hook("preAction", (_program, action) => {
    throw new ActionReached(action.name());
  });
  const quiet = (c: Command): void => {
    c.exitOverride().configureOutput({ writeErr: (s) => (errors += s), writeOut: () => undefined });
    for (const sub of c.commands) quiet(sub);
  };
  quiet(program);
  return { program, errors: () => errors };
}

/** The accepted forms of a duration, as a message shows them. */
function expectDurationForms(text: string): void {
  for (const form of ["500ms", "15s", "2m", "1h"]) expect(text).toContain(form);
}

/** Runs the built CLI in a scratch directory: its exit code and what it printed. */
async function linewatch(...args: string[]): Promise<{ code: number | null; output: string }> {
  const p = startCli(args, dir);
  const code = await p.exited;
  return { code, output: p.output() };
}

describe("unknown subcommand", () => {
  for (const args of [["rnu"], ["foo", "--x"]]) {
    it(`linewatch ${args.join(" ")} - the parser names it and lists the commands`, async () => {
      const { program, errors } = parser();
      const error = await program.parseAsync(args, { from: "user" }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CommanderError);
      expect((error as CommanderError).code).toBe("commander.unknownCommand");
      expect(errors()).toContain(`unknown command '${args[0]}'`);
      for (const name of COMMANDS) expect(errors()).toContain(name);
      expect(errors()).not.toContain("too many arguments");
    });
  }

  it("linewatch rnu - the built CLI suggests run and exits non-zero", async () => {
    const r = await linewatch("rnu");
    expect(r.code).not.toBe(0);
    expect(r.output).toContain("unknown command 'rnu' (did you mean run?)");
    for (const name of COMMANDS) expect(r.output).toContain(name);
  });

  for (const args of [[], ["--nats", "nats://127.0.0.1:4222"], ["--workers", "0", "--duration", "1s"], ["replay", "x.csv"]]) {
    const expected = args[0] === "replay" ? "replay" : "run";
    it(`linewatch ${args.join(" ")} - still runs ${expected}`, async () => {
      const { program } = parser();
      const error = await program.parseAsync(args, { from: "user" }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ActionReached);
      expect((error as ActionReached).command).toBe(expected);
    });
  }
});

describe("a duration without a unit", () => {
  // Flags read in milliseconds only: the parser rejects the value.
  for (const args of [
    ["--duration", "15"],
    ["--summary-interval", "5"],
    ["--settle", "3"],
    ["--cycle", "2"],
    ["--checkpoint-interval", "5"],
    ["--predict-interval", "10"],
    ["--flush-interval", "250"],
    ["simulate", "--duration", "15"],
    ["simulate", "--cycle", "2"],
    ["simulate-serials", "--duration", "10"],
  ]) {
    it(`linewatch ${args.join(" ")} - the parser rejects it and shows the accepted forms`, async () => {
      const { program, errors } = parser();
      const error = await program.parseAsync(args, { from: "user" }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CommanderError);
      expect((error as CommanderError).code).toBe("commander.invalidArgument");
      expect(errors()).toContain(args.at(-2));
      expect(errors()).toContain("needs a unit");
      expectDurationForms(errors());
    });
  }

  it("linewatch --summary-interval 0 - zero needs no unit", async () => {
    const { program } = parser();
    const error = await program.parseAsync(["--summary-interval", "0"], { from: "user" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ActionReached);
  });

  it("linewatch simulate --duration 15 - the built CLI exits non-zero with the accepted forms", async () => {
    const r = await linewatch("simulate", "--duration", "15", "--out", join(dir, "never.ndjson"));
    expect(r.code).not.toBe(0);
    expect(r.output).toContain("--duration");
    expectDurationForms(r.output);
  });

  // Flags in the time column's units: a clock needs the unit; --time-unit number takes plain numbers.
  const counted = join(dir, "counted.csv");
  writeFileSync(counted, "cycle,value\n1,1.0\n2,2.0\n3,4.0\n");
  for (const flag of ["--span", "--lateness"]) {
    it(`linewatch replay FILE ${flag} 15 - an error with the accepted forms and --time-unit number`, async () => {
      const r = await linewatch(
        "replay",
        counted,
        "--time",
        "cycle",
        "--workers",
        "0",
        flag,
        "15",
        ...(flag === "--span" ? [] : ["--window", "2"]),
      );
      expect(r.code).not.toBe(0);
      expect(r.output).toContain(`${flag}: invalid duration "15"`);
      expectDurationForms(r.output);
      expect(r.output).toContain("--time-unit number");
    });

    it(`linewatch replay FILE ${flag} 15 --time-unit number - 15 in the column's units`, async () => {
      const r = await linewatch(
        "replay",
        counted,
        "--time",
        "cycle",
        "--time-unit",
        "number",
        "--workers",
        "0",
        "--quiet",
        flag,
        "15",
        ...(flag === "--span" ? [] : ["--window", "2"]),
      );
      expect(r.code, r.output).toBe(0);
      expect(r.output.trim().split("\n")).toHaveLength(3);
    });
  }

  for (const flag of ["--span", "--serial-batch-close", "--serial-future-skew"]) {
    it(`linewatch ${flag} 5 - run stops before it starts, with the accepted forms`, async () => {
      const r = await linewatch(
        flag,
        "5",
        "--duration",
        "1s",
        "--workers",
        "0",
        "--out",
        join(dir, "run.ndjson"),
        "--alerts",
        join(dir, "alerts.ndjson"),
      );
      expect(r.code).not.toBe(0);
      expect(r.output).toContain(`${flag}: invalid duration "5"`);
      expectDurationForms(r.output);
      expect(r.output).not.toContain("linewatch run: simulator");
    });
  }
});
