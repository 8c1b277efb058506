/**
 * `linewatch models` as a user runs it (the built CLI, dist/: run `npx tsc -p tsconfig.json`
 * first), on a temporary directory and on a throw-away nats-server: push, list, show, promote,
 * rollback, an idempotent push, and refusals that exit 2 with a message. No time is asserted.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModelEntry } from "../connectors/registry/mod.js";
import { serverAvailable, startNatsServer, type NatsServer } from "../connectors/local/nats-server.js";
import { runCli, startCli } from "./kit/cli.js";
import { registryTestModels } from "./kit/registry-models.js";

const WORK = mkdtempSync(join(tmpdir(), "lw-models-cli-"));
const MODELS = registryTestModels();
for (const [name, bytes] of [
  ["rul-a.onnx", MODELS.rulA],
  ["rul-b.onnx", MODELS.rulB],
  ["model.json", MODELS.iforest],
  ["quality.bin", MODELS.quality],
] as const)
  writeFileSync(join(WORK, name), bytes);

const haveNats = serverAvailable("nats-server");
let server: NatsServer | undefined;
beforeAll(async () => {
  if (haveNats) server = await startNatsServer();
});
afterAll(async () => {
  await server?.dispose();
});

async function failing(args: string[]): Promise<{ code: number | null; output: string }> {
  const p = startCli(args, WORK);
  const code = await p.exited;
  return { code, output: p.output() };
}

const STORES: [string, boolean, () => string[]][] = [
  ["--dir", true, () => ["--dir", join(WORK, "registry")]],
  ["--nats", haveNats, () => ["--nats", server?.url ?? ""]],
];

describe.each(STORES)("linewatch models with %s", (_name, available, storeFlags) => {
  it.runIf(available)("pushes, lists, shows, promotes and rolls back; the same push twice changes nothing", async () => {
    const at = storeFlags();
    const models = (...args: string[]) => runCli(["models", ...args, ...at], WORK);
    expect(await models("list")).toContain("no models in the registry");
    expect(await models("push", "rul-a.onnx", "--kind", "rul", "--notes", "seed 1")).toMatch(
      /^pushed [0-9a-f]{12} \(rul, candidate\): rul-a\.onnx/,
    );
    expect(await models("push", "rul-a.onnx", "--kind", "rul")).toMatch(/^already registered: .*nothing changed/);
    await models("push", "rul-b.onnx", "--kind", "rul");
    await models("push", "model.json", "--kind", "iforest");
    await models("push", "quality.bin", "--kind", "quality");
    const entries = JSON.parse(await models("list", "--json")) as ModelEntry[];
    expect(entries.map((e) => [e.file_name, e.kind, e.stage])).toEqual([
      ["rul-a.onnx", "rul", "candidate"],
      ["rul-b.onnx", "rul", "candidate"],
      ["model.json", "iforest", "candidate"],
      ["quality.bin", "quality", "candidate"],
    ]);
    const [a, b] = entries as [ModelEntry, ModelEntry];
    expect(a.made_by.command).toBe(`linewatch models push rul-a.onnx --kind rul --notes 'seed 1' ${at.join(" ")}`);
    expect(await models("promote", a.short_id, "--to", "production")).toContain("candidate → production");
    expect(await models("promote", b.short_id, "--to", "production")).toContain(`${a.short_id}, production before, is archived`);
    expect(await models("rollback", "rul")).toContain(`production is ${a.short_id} again`);
    const shown = JSON.parse(await models("show", a.short_id, "--json")) as { entry: ModelEntry; changes: { action: string }[] };
    expect(shown.entry.stage).toBe("production");
    expect(shown.changes.map((c) => c.action)).toEqual(["push", "promote", "promote", "rollback"]);
    const text = await models("show", a.id.slice(0, 6));
    expect(text).toContain(`features     ${a.features?.length}: s2.mean s2.slope`);
    expect(text).toContain("notes        seed 1");
    const rulList = await models("list", "--kind", "rul");
    expect(
      rulList
        .split("\n")
        .filter((l) => l.startsWith(a.short_id) || l.startsWith(b.short_id))
        .map((l) => l.split(/\s+/)[2]),
    ).toEqual(["production", "archived"]);
  });

  it.runIf(available)("refuses a wrong kind, an unknown id or stage and an empty history: exit 2, a message, no stack", async () => {
    const at = storeFlags();
    const cases: [string[], RegExp][] = [
      [["push", "rul-a.onnx", "--kind", "iforest"], /rul-a\.onnx is not a model of kind iforest/],
      [
        ["push", "model.json", "--kind", "quality"],
        /model\.json is not a model of kind quality: .*\(it is a model of kind iforest; push it with --kind iforest\)/,
      ],
      [["show", "0123456789ab"], /no model 0123456789ab in the registry/],
      [["promote", "0123456789ab", "--to", "production"], /no model 0123456789ab/],
      [["rollback", "quality"], /no earlier quality production model/],
      [["push", "missing.onnx", "--kind", "rul"], /missing\.onnx: cannot read the model file/],
    ];
    for (const [args, message] of cases) {
      const { code, output } = await failing(["models", ...args, ...at]);
      expect([args.join(" "), code]).toEqual([args.join(" "), 2]);
      expect(output).toMatch(message);
      expect(output).not.toMatch(/RegistryError|at .*\.js:\d+/);
    }
    await runCli(["models", "push", "quality.bin", "--kind", "quality", ...at], WORK);
    const id =
      (JSON.parse(await runCli(["models", "list", "--kind", "quality", "--json", ...at], WORK)) as ModelEntry[])[0]?.short_id ?? "";
    const stage = await failing(["models", "promote", id, "--to", "staging", ...at]);
    expect(stage.code).toBe(2);
    expect(stage.output).toContain('unknown stage "staging"');
  });
});
