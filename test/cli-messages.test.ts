/**
 * What a new user meets when a command line is wrong: the parser (buildProgram) and the built CLI
 * (dist/engine/cli/main.js, `npm run build` first) say what is wrong, in words, with a non-zero exit.
 */
import { mkdtempSync, rmSync } from "node:fs";
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

/** The program with exits turned into throws and its output kept. */
function parser(): { program: Command; errors: () => string } {
  let errors = "";
  const program = buildProgram()
    .exitOverride()
    .configureOutput({ writeErr: (s) => (errors += s), writeOut: () => undefined })
    .hook("preAction", (_program, action) => {
      throw new ActionReached(action.name());
    });
  return { program, errors: () => errors };
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
