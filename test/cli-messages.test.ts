/**
 * What a new user meets when a command line is wrong: the parser (buildProgram) and the built CLI
 * (dist/engine/cli/main.js, `npm run build` first) say what is wrong, in words, with a non-zero exit.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Command, CommanderError } from "commander";
import { afterAll, describe, expect, it } from "vitest";
import { EXIT_BUG, EXIT_FAILURE, reportFailure } from "../engine/cli/failure.js";
import { buildProgram } from "../engine/cli/mod.js";
import { ConfigError, DurationParseError, InputError, LinewatchError, ModelLoadError } from "../engine/core/mod.js";
import { ConnectError, LocalServerError } from "../connectors/errors.js";
import { RecordWriterClosedError } from "../connectors/files/record-writers.js";
import { ModelError } from "../operators/iforest/model.js";
import { SimulatorConfigError } from "../connectors/sim/plant-simulator.js";
import { SerialSimulatorConfigError } from "../connectors/sim/serial-simulator.js";
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
    expect(r.output).toMatch(/^linewatch: unknown command 'rnu' \(did you mean run\?\)/);
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
    expect(r.output).toMatch(/^linewatch: option '--duration <d>' argument '15' is invalid/);
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

/** An internal class name in a message: `InputError`, `ConfigError`, `NatsError`… */
const CLASS_NAME = /\b[A-Z]\w*Error\b/;

describe("messages for users", () => {
  it("an expected failure is `linewatch: <message>` and its causes, exit 2; commander's keep their code", () => {
    let text = "";
    const write = (t: string) => (text += t);
    expect(reportFailure(new ConfigError("--speed", "must be a positive number"), write)).toBe(EXIT_FAILURE);
    expect(text).toBe("linewatch: --speed: must be a positive number\n");
    text = "";
    const cause = new Error("EACCES: permission denied");
    expect(reportFailure(new InputError("cannot read in.csv", { cause }), write)).toBe(EXIT_FAILURE);
    expect(text).toBe("linewatch: cannot read in.csv\n  because: EACCES: permission denied\n");
    text = "";
    expect(reportFailure(new CommanderError(1, "commander.unknownCommand", "unknown command"), write)).toBe(1);
    expect(text).toBe("");
  });

  it("anything else is a bug: its stack, and an exit code of its own", () => {
    let text = "";
    const code = reportFailure(new TypeError("cannot read properties of undefined"), (t) => (text += t));
    expect(code).toBe(EXIT_BUG);
    expect(new Set([code, EXIT_FAILURE, 0, 1]).size).toBe(4);
    expect(text).toContain("internal error");
    expect(text).toMatch(/TypeError: cannot read properties of undefined\n\s+at /);
  });

  it("every failure class of the engine is a LinewatchError", () => {
    const errors = [
      new DurationParseError("15", "a number needs a unit"),
      new SimulatorConfigError("seed", "must be a safe integer", 1.5),
      new SerialSimulatorConfigError("lines", "must be an integer in 1..999"),
      new RecordWriterClosedError("write after end()"),
      new ModelError("m.json", "left", "index out of range"),
      new ConnectError("NATS", "nats://127.0.0.1:1", "CONNECTION_REFUSED"),
      new LocalServerError("nats-server", "exited with code 1"),
    ];
    for (const e of errors) expect(e, e.name).toBeInstanceOf(LinewatchError);
    expect(new ModelError("m.json", "left", "index out of range")).toBeInstanceOf(ModelLoadError);
  });

  it("no class outside test/ extends Error but LinewatchError; main.ts does not look at error names", () => {
    const sources: string[] = [];
    const walk = (d: string): void => {
      for (const name of readdirSync(d)) {
        const path = join(d, name);
        if (statSync(path).isDirectory()) {
          if (!["node_modules", "dist", "build", "test", "out", "data", ".git"].includes(name)) walk(path);
        } else if (/\.c?ts$/.test(name)) sources.push(path);
      }
    };
    for (const top of ["engine", "operators", "connectors", "kernels", "bench"]) walk(top);
    // The dashboard's modules run in the browser, where engine/core's LinewatchError does not exist.
    const plain = sources
      .filter((path) => !path.startsWith(join("connectors", "live", "dashboard")))
      .flatMap((path) => [...readFileSync(path, "utf8").matchAll(/class (\w+) extends Error\b/g)].map((m) => `${path}: ${m[1]}`));
    expect(plain).toEqual(["engine/core/errors.ts: LinewatchError"]);
    expect(readFileSync("engine/cli/main.ts", "utf8")).not.toMatch(/\.name\b/);
  });

  it("linewatch replay MISSING - exit 2, the file and the reason, no class name", async () => {
    const missing = join(dir, "missing.csv");
    const r = await linewatch("replay", missing, "--window", "5");
    expect(r.code).toBe(EXIT_FAILURE);
    expect(r.output).toMatch(/^linewatch: cannot read .*missing\.csv: ENOENT/);
    expect(r.output).not.toMatch(CLASS_NAME);
  });

  it("linewatch simulate --nats URL (nothing there) - exit 2, the address, no class name", async () => {
    const r = await linewatch("simulate", "--nats", "nats://127.0.0.1:1", "--records", "1");
    expect(r.code).toBe(EXIT_FAILURE);
    expect(r.output).toContain("linewatch: cannot connect to NATS at nats://127.0.0.1:1");
    expect(r.output).not.toMatch(CLASS_NAME);
  });

  it("linewatch simulate --out DIR/none/x (cannot be opened) - exit 2 naming --out", async () => {
    const r = await linewatch("simulate", "--records", "1", "--out", join(dir, "none", "x.ndjson"));
    expect(r.code).toBe(EXIT_FAILURE);
    expect(r.output).toContain("linewatch: --out: cannot write");
    expect(r.output).not.toMatch(CLASS_NAME);
  });

  it("linewatch --span 15 - a ConfigError reads as the flag and the reason", async () => {
    const r = await linewatch("--span", "15", "--duration", "1s");
    expect(r.code).toBe(EXIT_FAILURE);
    expect(r.output).toMatch(/^linewatch: --span: invalid duration "15"/);
    expect(r.output).not.toMatch(CLASS_NAME);
  });
});

describe("replay of a file where no row is accepted", () => {
  const cases: [string, string, RegExp][] = [
    ["header-only.csv", "timestamp,value\n", /header-only\.csv: no rows after the header/],
    [
      "bad-times.csv",
      "timestamp,value\nx,1\ny,2\n",
      /bad-times\.csv: no row was accepted, all 2 were rejected \(the first: .*bad-times\.csv:2: time "x"/,
    ],
    ["bad-values.csv", "timestamp,value\n2026-01-01T00:00:00Z,abc\n", /bad-values\.csv: no row was accepted.*value "abc" is not a number/],
    ["empty.csv", "", /empty\.csv: no header or records/],
  ];
  for (const [name, text, message] of cases) {
    it(`linewatch replay ${name} - exits non-zero and says so`, async () => {
      const path = join(dir, name);
      writeFileSync(path, text);
      const r = await linewatch("replay", path, "--window", "2", "--workers", "0", "--quiet");
      expect(r.code).toBe(EXIT_FAILURE);
      expect(r.output).toMatch(message);
      expect(r.output).not.toMatch(CLASS_NAME);
    });
  }

  it("linewatch replay FILE with one row accepted of two - exits 0, the rejected row's line says why", async () => {
    const path = join(dir, "one-good.csv");
    writeFileSync(path, "timestamp,value\n2026-01-01T00:00:00Z,1\nx,2\n");
    const r = await linewatch("replay", path, "--window", "2", "--workers", "0", "--quiet");
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain('"error":"time \\"x\\"');
  });
});
