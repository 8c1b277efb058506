/**
 * `linewatch models`: the model registry (connectors/registry): push a model file, list and show
 * entries, promote one to a stage, roll a kind's production model back. The registry lives in a
 * JetStream object store bucket with --nats, else in a directory (--dir, default ./models-registry).
 */
import { readFile, stat } from "node:fs/promises";
import { basename } from "node:path";
import { Argument, Command, Option } from "commander";
import { InputError } from "../core/mod.js";
import {
  type Change,
  DEFAULT_REGISTRY_BUCKET,
  DEFAULT_REGISTRY_DIR,
  DirectoryStore,
  MODEL_KINDS,
  MODEL_STAGES,
  type ModelEntry,
  ModelRegistry,
  ObjectStoreRegistry,
} from "../../connectors/registry/mod.js";
import { MODEL_FILE_BYTES_MAX } from "../../operators/prediction/mod.js";

const HELP_AFTER = `
Each entry's id is the SHA-256 of the file (its version); commands print and accept its first
12 hex digits (any unique prefix of 4 or more). Pushing the same bytes again changes nothing.
A pushed model is a candidate; promote --to production makes it its kind's production model and
archives the one before, which rollback KIND restores. Every change records who, where and when.

Examples:
  linewatch models push rul.onnx --kind rul --notes "FD001, 60 epochs"
  linewatch models list --kind rul
  linewatch models promote 3f2a9c1b0d4e --to production
  linewatch models rollback rul
  linewatch models list --nats nats://127.0.0.1:4222 --json`;

export interface StoreFlags {
  nats?: string;
  dir: string;
}

export function withStore(command: Command): Command {
  return command
    .addOption(
      new Option(
        "--nats <url>",
        `keep the registry in the JetStream object store bucket ${DEFAULT_REGISTRY_BUCKET} of this server`,
      ).conflicts("dir"),
    )
    .addOption(new Option("--dir <dir>", "keep the registry in this directory (when no --nats is given)").default(DEFAULT_REGISTRY_DIR));
}

/** Opens the registry the flags name, runs `body`, closes it (and its NATS connection) whatever happens. */
export async function withRegistry<T>(flags: StoreFlags, body: (registry: ModelRegistry) => Promise<T>): Promise<T> {
  const store = flags.nats === undefined ? new DirectoryStore(flags.dir) : await ObjectStoreRegistry.connect(flags.nats);
  const registry = new ModelRegistry(store);
  try {
    return await body(registry);
  } finally {
    await registry.close();
  }
}

export function modelsCommand(): Command {
  return new Command("models")
    .description("model registry: push, list, show, promote and roll back RUL, iforest and quality models")
    .addCommand(pushCommand())
    .addCommand(listCommand())
    .addCommand(showCommand())
    .addCommand(promoteCommand())
    .addCommand(rollbackCommand())
    .addHelpText("after", HELP_AFTER);
}

function pushCommand(): Command {
  return withStore(
    new Command("push")
      .description("register a model file as a candidate (the same bytes twice are the same entry)")
      .argument("<file>", "the model file: .onnx (rul), model.json (iforest), any file (quality)")
      .addOption(new Option("--kind <kind>", "what the model is").choices([...MODEL_KINDS]).makeOptionMandatory())
      .option("--notes <text>", "a note kept with the entry"),
  ).action(async (file: string, flags: StoreFlags & { kind: string; notes?: string }) => {
    const bytes = await readModelFile(file);
    await withRegistry(flags, async (registry) => {
      const { entry, created } = await registry.push({ bytes, kind: flags.kind, fileName: basename(file), notes: flags.notes });
      const what = `${entry.short_id} (${entry.kind}, ${entry.stage}): ${entry.file_name}, ${entry.size_bytes} bytes`;
      out(created ? `pushed ${what}\n` : `already registered: ${what}; the same bytes are the same entry, nothing changed\n`);
    });
  });
}

function listCommand(): Command {
  return withStore(
    new Command("list")
      .description("the registry's entries, oldest first")
      .addOption(new Option("--kind <kind>", "only this kind").choices([...MODEL_KINDS]))
      .option("--json", "one JSON array of the entries"),
  ).action(async (flags: StoreFlags & { kind?: string; json?: boolean }) => {
    await withRegistry(flags, async (registry) => {
      const entries = await registry.list(flags.kind);
      out(flags.json ? `${JSON.stringify(entries, null, 2)}\n` : listText(entries));
    });
  });
}

function showCommand(): Command {
  return withStore(
    new Command("show")
      .description("one entry and the changes that concern it")
      .argument("<id>", "the id or a unique prefix of it (4+ hex digits)")
      .option("--json", "the entry and its changes as one JSON object"),
  ).action(async (id: string, flags: StoreFlags & { json?: boolean }) => {
    await withRegistry(flags, async (registry) => {
      const entry = await registry.show(id);
      const changes = await registry.history(entry.id);
      out(flags.json ? `${JSON.stringify({ entry, changes }, null, 2)}\n` : showText(entry, changes));
    });
  });
}

function promoteCommand(): Command {
  return withStore(
    new Command("promote")
      .description("move an entry to a stage; to production it replaces (and archives) its kind's production model")
      .argument("<id>", "the id or a unique prefix of it")
      .requiredOption("--to <stage>", `the stage: ${MODEL_STAGES.join(", ")}`),
  ).action(async (id: string, flags: StoreFlags & { to: string }) => {
    await withRegistry(flags, async (registry) => {
      const before = (await registry.show(id)).stage;
      const { entry, replaced, changed } = await registry.promote(id, flags.to);
      if (!changed) return out(`${entry.short_id} (${entry.kind}) is already ${entry.stage}; nothing changed\n`);
      const archived = replaced === null ? "" : `; ${replaced.short_id}, production before, is archived`;
      out(`${entry.short_id} (${entry.kind}): ${before} → ${entry.stage}${archived}\n`);
    });
  });
}

function rollbackCommand(): Command {
  return withStore(
    new Command("rollback")
      .description("restore the kind's previous production model from the promotion history")
      .addArgument(new Argument("<kind>", "rul, iforest or quality").choices([...MODEL_KINDS])),
  ).action(async (kind: string, flags: StoreFlags) => {
    await withRegistry(flags, async (registry) => {
      const { entry, replaced } = await registry.rollback(kind);
      const was = replaced === null ? "there was none" : `${replaced.short_id} is archived`;
      out(`${kind}: production is ${entry.short_id} again (${entry.file_name}); ${was}\n`);
    });
  });
}

async function readModelFile(file: string): Promise<Uint8Array> {
  try {
    const { size } = await stat(file);
    if (size > MODEL_FILE_BYTES_MAX)
      throw new InputError(`${file}: ${size} bytes is more than a model file (${MODEL_FILE_BYTES_MAX} at most)`);
    return new Uint8Array(await readFile(file));
  } catch (cause) {
    if (cause instanceof InputError) throw cause;
    throw new InputError(`${file}: cannot read the model file: ${(cause as Error).message}`, { cause });
  }
}

function listText(entries: readonly ModelEntry[]): string {
  if (entries.length === 0) return "no models in the registry\n";
  const rows = [["ID", "KIND", "STAGE", "CREATED", "BYTES", "FEATURES", "FILE", "NOTES"]];
  for (const e of entries)
    rows.push([
      e.short_id,
      e.kind,
      e.stage,
      e.created_at,
      String(e.size_bytes),
      e.features === null ? "-" : String(e.features.length),
      e.file_name,
      e.notes ?? "",
    ]);
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const lines = rows
    .map((r) =>
      r
        .map((cell, c) => cell.padEnd(widths[c]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
  return `${lines}\n`;
}

function showText(e: ModelEntry, changes: readonly Change[]): string {
  const metrics =
    e.metrics === null
      ? "none in the file"
      : Object.entries(e.metrics)
          .map(([k, v]) => `${k} ${v}`)
          .join(", ");
  const lines = [
    `id           ${e.id}`,
    `short id     ${e.short_id}`,
    `kind         ${e.kind}`,
    `stage        ${e.stage}`,
    `format       ${e.format}`,
    `file         ${e.file_name} (${e.size_bytes} bytes)`,
    `created      ${e.created_at}`,
    `made by      ${e.made_by.user}@${e.made_by.host}: ${e.made_by.command}`,
    `trained on   ${e.training_data ?? "not in the file"}`,
    `fingerprint  ${e.training_fingerprint ?? "not in the file"}`,
    `features     ${e.features === null ? "not in the file" : `${e.features.length}: ${e.features.join(" ")}`}`,
    `metrics      ${metrics}`,
    `details      ${JSON.stringify(e.details)}`,
    `notes        ${e.notes ?? ""}`,
    "changes",
    ...changes.map(
      (c) =>
        `  ${c.at}  ${c.action} ${c.id.slice(0, 12)} ${c.from_stage ?? "(new)"} → ${c.to_stage}${c.replaced === null ? "" : ` replacing ${c.replaced.slice(0, 12)}`}  by ${c.by.user}@${c.by.host}`,
    ),
  ];
  return `${lines.join("\n")}\n`;
}

function out(text: string): void {
  process.stdout.write(text);
}
