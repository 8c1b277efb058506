/**
 * A run's configuration from a file and the environment, beside the command line.
 *
 * `--config FILE` (JSON, or YAML for `.yaml`/`.yml`) gives values for any of the command's long
 * options, by their camelCase or kebab-case name (`{"analysis": "rolling,spc", "fa-budget":
 * 0.003, "clickhouse": "http://…"}`). An environment variable `LINEWATCH_<OPTION>` (upper case,
 * dashes as underscores: `LINEWATCH_FA_BUDGET`) does the same. Precedence: command line, then
 * environment, then file, then the built-in default. Every value goes through the option's own
 * parser, so a bad value gets the same clear error as on the command line; an unknown key is an
 * error naming the known ones.
 */
import { readFileSync } from "node:fs";
import type { Command, Option } from "commander";
import { parse as parseYaml } from "yaml";
import { ConfigError } from "../core/mod.js";

export const CONFIG_ENV_PREFIX = "LINEWATCH_";

/**
 * Fills the options of `command` that the command line left at their defaults: from the
 * environment first, then from the file named by its `--config` option (if any).
 */
export function applyConfigSources(command: Command, env: NodeJS.ProcessEnv = process.env): void {
  const options = command.options as readonly Option[];
  const byName = new Map<string, Option>();
  const negatable = new Set<Option>();
  for (const opt of options) {
    const long = opt.long?.replace(/^--(no-)?/, "");
    if (long === undefined || long === "config" || long === "help") continue;
    // `--predict <model>` beside `--no-predict`: the option that takes a value is the one a
    // variable or a file sets (false there means the negation; see parseValue).
    const known = byName.get(long);
    if (opt.negate && known !== undefined && !known.negate) {
      negatable.add(known);
      continue;
    }
    if (!opt.negate && known?.negate === true) negatable.add(opt);
    byName.set(long, opt);
    byName.set(opt.attributeName(), opt);
  }
  const fromFile = readConfigFile(command.getOptionValue("config") as string | undefined);
  for (const [key, opt] of [...new Set(byName.values())].map((o) => [o.attributeName(), o] as const)) {
    const source = command.getOptionValueSource(key);
    if (source === "cli") continue;
    const envName = `${CONFIG_ENV_PREFIX}${(opt.long as string)
      .replace(/^--(no-)?/, "")
      .replace(/-/g, "_")
      .toUpperCase()}`;
    if (env[envName] !== undefined) {
      command.setOptionValueWithSource(key, parseValue(opt, env[envName] as string, envName, negatable.has(opt)), "env");
      continue;
    }
    if (fromFile === null) continue;
    const long = (opt.long as string).replace(/^--(no-)?/, "");
    const raw = fromFile.values[key] ?? fromFile.values[long];
    if (raw === undefined) continue;
    command.setOptionValueWithSource(key, parseValue(opt, raw, `${fromFile.path}: ${long}`, negatable.has(opt)), "config");
  }
  if (fromFile !== null) {
    for (const k of Object.keys(fromFile.values)) {
      if (!byName.has(k)) {
        throw new ConfigError(
          "--config",
          `${fromFile.path}: unknown option "${k}" (known: ${[...new Set([...byName.values()].map((o) => (o.long as string).replace(/^--(no-)?/, "")))].sort().join(", ")})`,
        );
      }
    }
  }
}

function readConfigFile(path: string | undefined): { path: string; values: Record<string, unknown> } | null {
  if (path === undefined) return null;
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (cause) {
    throw new ConfigError("--config", `cannot read ${path}: ${(cause as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = /\.ya?ml$/i.test(path) ? parseYaml(text) : JSON.parse(text);
  } catch (cause) {
    throw new ConfigError("--config", `${path} is not valid ${/\.ya?ml$/i.test(path) ? "YAML" : "JSON"}: ${(cause as Error).message}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
    throw new ConfigError("--config", `${path}: expected an object of option values`);
  return { path, values: parsed as Record<string, unknown> };
}

/** A value through the option's own parser (so errors read as on the command line). */
function parseValue(opt: Option, raw: unknown, where: string, negatable = false): unknown {
  // A value option with a `--no-` twin: false turns it off as the twin would.
  if (negatable && (raw === false || raw === "false")) return false;
  if (opt.negate || (!opt.required && !opt.optional)) {
    // A boolean flag: true/false.
    if (typeof raw === "boolean") return raw;
    if (raw === "true" || raw === "1") return true;
    if (raw === "false" || raw === "0") return false;
    throw new ConfigError(where, `expected true or false, got ${JSON.stringify(raw)}`);
  }
  const text = Array.isArray(raw) ? raw.join(",") : String(raw);
  if (opt.argChoices !== undefined && !opt.argChoices.includes(text)) {
    throw new ConfigError(where, `must be one of ${opt.argChoices.join(", ")}, got "${text}"`);
  }
  const parse = (opt as unknown as { parseArg?: (value: string, previous: unknown) => unknown }).parseArg;
  try {
    return parse === undefined ? text : parse(text, undefined);
  } catch (cause) {
    throw new ConfigError(where, (cause as Error).message);
  }
}
