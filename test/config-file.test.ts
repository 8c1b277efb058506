import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../engine/core/errors.js";
import { addAnalysisFlags, type AnalysisFlags } from "../engine/cli/analysis-flags.js";
import { applyConfigSources } from "../engine/cli/config-file.js";
import { integerOption } from "../engine/cli/options.js";

type Flags = AnalysisFlags & { port?: number; publishScores: boolean; config?: string };

async function parse(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Flags> {
  let flags: Flags | null = null;
  const cmd = new Command("t")
    .exitOverride()
    .option("--config <file>")
    .option("--port <n>", "port", integerOption("--port", 0, 65535))
    .option("--no-publish-scores", "no scores");
  addAnalysisFlags(cmd, "rolling").action((_f: Flags, c: Command) => {
    applyConfigSources(c, env);
    flags = c.opts<Flags>();
  });
  await cmd.parseAsync(args, { from: "user" });
  return flags as unknown as Flags;
}

describe("config - file, environment and command line", () => {
  const dir = mkdtempSync(join(tmpdir(), "lw-config-"));

  it("takes values from a YAML or JSON file, overridden by LINEWATCH_ variables, overridden by flags", async () => {
    const yaml = join(dir, "run.yaml");
    writeFileSync(yaml, "analysis: rolling,spc\nfa-budget: 0.003\nport: 9000\npublish-scores: false\nwindow: 32\n");
    const fromFile = await parse(["--config", yaml]);
    expect(fromFile).toMatchObject({ analysis: "rolling,spc", faBudget: 0.003, port: 9000, publishScores: false, window: 32 });
    const json = join(dir, "run.json");
    writeFileSync(json, JSON.stringify({ analysis: "spc", baseline: 50 }));
    expect(await parse(["--config", json])).toMatchObject({ analysis: "spc", baseline: 50 });
    const env = await parse(["--config", yaml], { LINEWATCH_PORT: "9100", LINEWATCH_FA_BUDGET: "0.01" });
    expect(env).toMatchObject({ port: 9100, faBudget: 0.01, window: 32 });
    const cli = await parse(["--config", yaml, "--port", "9200"], { LINEWATCH_PORT: "9100" });
    expect(cli.port).toBe(9200);
  });

  it("rejects an unknown option, a bad value and a malformed file with ConfigError", async () => {
    const bad = join(dir, "bad.json");
    writeFileSync(bad, JSON.stringify({ windw: 5 }));
    await expect(parse(["--config", bad])).rejects.toBeInstanceOf(ConfigError);
    writeFileSync(bad, JSON.stringify({ port: 70000 }));
    await expect(parse(["--config", bad])).rejects.toBeInstanceOf(ConfigError);
    writeFileSync(bad, "{not json");
    await expect(parse(["--config", bad])).rejects.toBeInstanceOf(ConfigError);
    await expect(parse([], { LINEWATCH_SIGMA: "range" })).rejects.toBeInstanceOf(ConfigError);
  });

  it("sets an option that takes a value beside its --no- twin (--predict <model>, --no-predict): a path, or false for off", async () => {
    const run = async (args: string[], env: NodeJS.ProcessEnv) => {
      let predict: unknown;
      const cmd = new Command("t")
        .exitOverride()
        .option("--config <file>")
        .option("--predict <model>", "model")
        .option("--no-predict", "none")
        .action((_f: unknown, c: Command) => {
          applyConfigSources(c, env);
          predict = c.opts().predict;
        });
      await cmd.parseAsync(args, { from: "user" });
      return predict;
    };
    expect(await run([], { LINEWATCH_PREDICT: "/models/rul.onnx" })).toBe("/models/rul.onnx");
    expect(await run([], { LINEWATCH_PREDICT: "false" })).toBe(false);
    const yaml = join(dir, "predict.yaml");
    writeFileSync(yaml, "predict: registry\n");
    expect(await run(["--config", yaml], {})).toBe("registry");
    writeFileSync(yaml, "predict: false\n");
    expect(await run(["--config", yaml], {})).toBe(false);
    expect(await run(["--config", yaml, "--predict", "m.onnx"], {})).toBe("m.onnx");
  });
});
