/**
 * The documentation test: README.md and every page under docs/ say only what is true of this
 * checkout.
 *
 * - Every relative link resolves to a file or folder of the repository, and a `#anchor` to a
 *   heading of the linked page (GitHub's slugs: lower case, punctuation dropped, spaces → `-`,
 *   `-1`, `-2` … for repeated headings).
 * - Every `linewatch …` example — a line of a fenced block (continuation lines joined, trailing
 *   `# comments`, pipes, `&&` / `;` chains and redirections handled) or an inline code span — is
 *   accepted by the command line's parser: the real program from engine/cli/program.ts with every
 *   action replaced by a no-op, so an unknown command or option, a missing or bad value fails here
 *   without running anything. Durations in examples carry a unit (`15s`, `500ms`, `2m`, `1h`).
 *   `npm run bench -- …` examples are parsed by bench/main.ts's `benchCommand()` the same way.
 * - README.md is at most 200 lines.
 *
 * Not examples: fenced blocks marked `text` (command output, synopses with `[optional]` parts) or
 * `json` / `sql` / `yaml`, lines whose second word ends in `:` (log output such as
 * `linewatch run: …`), and templates with a bare `…` argument.
 *
 * The checkers are pure functions of the text; the last block runs them on made-up text with a
 * bad example and a broken link, so the test cannot pass by finding nothing.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type Command, CommanderError } from "commander";
import { describe, expect, it } from "vitest";
import { benchCommand } from "../bench/main.js";
import { buildProgram } from "../engine/cli/mod.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const README_LINES_MAX = 200;

/** Fenced blocks with these info strings hold no examples. */
const NON_SHELL_FENCES = new Set(["text", "json", "sql", "yaml", "ndjson"]);
/** Option placeholders that take a duration. */
const DURATION_PLACEHOLDER = /<(?:D|d|duration)>/;
const DURATION_WITH_UNIT = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;

interface Example {
  /** `linewatch` for the CLI, `bench` for `npm run bench -- …`. */
  tool: "linewatch" | "bench";
  args: string[];
  /** The example as written, for the failure message. */
  text: string;
  line: number;
  /**
   * A fenced example is a whole invocation. An inline one may be a mention (`linewatch replay`,
   * `linewatch run --nats`): required arguments, options and values may be left out, but what is
   * there must exist and parse.
   */
  whole: boolean;
}

interface Link {
  target: string;
  line: number;
}

interface Page {
  links: Link[];
  examples: Example[];
  /** Heading slugs, GitHub style. */
  anchors: Set<string>;
}

// ---- reading a page ----

/** Links, examples and heading anchors of one Markdown text. */
function scanMarkdown(text: string): Page {
  const lines = text.split("\n");
  const page: Page = { links: [], examples: [], anchors: new Set() };
  const slugCounts = new Map<string, number>();
  // Prose with fenced lines blanked (line numbers kept) for inline code and links.
  const prose: string[] = [];
  let fence: { marker: string; info: string } | null = null;
  let pending: { text: string; line: number } | null = null;
  lines.forEach((raw, index) => {
    const lineNo = index + 1;
    const opening = /^\s*(`{3,}|~{3,})\s*([\w-]*)/.exec(raw);
    if (fence === null && opening !== null) {
      fence = { marker: opening[1], info: opening[2].toLowerCase() };
      prose.push("");
      return;
    }
    if (fence !== null) {
      if (raw.trim().startsWith(fence.marker) && raw.trim().replace(/[`~]/g, "") === "") {
        fence = null;
        pending = null;
      } else if (!NON_SHELL_FENCES.has(fence.info)) {
        const joined = pending === null ? { text: raw, line: lineNo } : { text: `${pending.text} ${raw.trim()}`, line: pending.line };
        if (/\\\s*$/.test(joined.text)) pending = { text: joined.text.replace(/\\\s*$/, ""), line: joined.line };
        else {
          pending = null;
          page.examples.push(...examplesOfShellLine(joined.text, joined.line, true));
        }
      }
      prose.push("");
      return;
    }
    prose.push(raw);
    const heading = /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(raw);
    if (heading !== null) page.anchors.add(uniqueSlug(githubSlug(heading[1]), slugCounts));
  });
  scanProse(prose, page);
  return page;
}

/** Inline code examples and links of the prose (fenced lines already blanked). */
function scanProse(prose: string[], page: Page): void {
  const text = prose.join("\n");
  const lineAt = (offset: number): number => text.slice(0, offset).split("\n").length;
  const codeSpan = /(`+)([\s\S]*?[^`])\1(?!`)/g;
  const withoutCode = text.replace(codeSpan, (whole, _ticks: string, code: string, offset: number) => {
    const command = code.replace(/\s+/g, " ").trim();
    if (command.startsWith("linewatch ") || command.startsWith("npm run bench"))
      page.examples.push(...examplesOfShellLine(command, lineAt(offset), false));
    // Keep the offsets (and so the line numbers) of what follows.
    return whole.replace(/[^\n]/g, " ");
  });
  for (const m of withoutCode.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g))
    page.links.push({ target: m[1], line: lineAt(m.index ?? 0) });
  for (const m of withoutCode.matchAll(/^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/gm))
    page.links.push({ target: m[1], line: lineAt(m.index ?? 0) });
}

/** GitHub's heading anchor: markup dropped, lower case, punctuation removed, each space a `-`. */
function githubSlug(heading: string): string {
  const plain = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/<[^>]+>/g, "")
    .trim()
    .toLowerCase();
  return plain.replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "").replace(/ /g, "-");
}

function uniqueSlug(slug: string, counts: Map<string, number>): string {
  const seen = counts.get(slug) ?? 0;
  counts.set(slug, seen + 1);
  return seen === 0 ? slug : `${slug}-${seen}`;
}

// ---- shell lines ----

/** The `linewatch` and `npm run bench` commands of one shell line (prompt, comments, chains, redirections handled). */
function examplesOfShellLine(line: string, lineNo: number, whole: boolean): Example[] {
  const examples: Example[] = [];
  for (const words of shellCommands(line.replace(/^\s*\$\s+/, ""))) {
    const first = words.findIndex((w) => !/^[A-Za-z_][A-Za-z0-9_]*=/.test(w)); // after `NAME=value` prefixes
    const command = first < 0 ? [] : words.slice(first);
    const tokens = command[0] === "npx" ? command.slice(1) : command;
    if (tokens.includes("…")) continue; // a template, not an example
    if (tokens[0] === "linewatch") {
      if (tokens.length > 1 && tokens[1].endsWith(":")) continue; // log output
      examples.push({ tool: "linewatch", args: tokens.slice(1), text: tokens.join(" "), line: lineNo, whole });
    } else if (tokens[0] === "npm" && tokens[1] === "run" && tokens[2] === "bench") {
      const rest = tokens.slice(3);
      examples.push({ tool: "bench", args: rest[0] === "--" ? rest.slice(1) : rest, text: tokens.join(" "), line: lineNo, whole });
    }
  }
  return examples;
}

/** Splits a shell line into commands (at `|`, `||`, `&&`, `;`) of words: quotes removed, comments and redirections dropped. */
function shellCommands(line: string): string[][] {
  const commands: string[][] = [[]];
  let word: string | null = null;
  let quote: string | null = null;
  const end = (): void => {
    if (word !== null) commands[commands.length - 1].push(word);
    word = null;
  };
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote !== null) {
      if (c === quote) quote = null;
      else word = (word ?? "") + c;
    } else if (c === '"' || c === "'") {
      quote = c;
      word = word ?? "";
    } else if (c === "#" && word === null) break;
    else if (c === "|" || c === ";" || (c === "&" && line[i + 1] === "&")) {
      end();
      if (line[i + 1] === c) i++;
      commands.push([]);
    } else if (/\s/.test(c)) end();
    else word = (word ?? "") + c;
  }
  end();
  return commands.map(withoutRedirections).filter((words) => words.length > 0);
}

function withoutRedirections(words: string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const redirect = /^\d*(>>?|<)(&\d+)?(.*)$/.exec(words[i]);
    if (redirect === null) kept.push(words[i]);
    else if (redirect[2] === undefined && redirect[3] === "") i++; // `> file`: skip the file too
  }
  return kept;
}

// ---- checking ----

/** Why the parser refuses an example, or null when it accepts it. */
function exampleProblem(example: Example): string | null {
  const program = example.tool === "linewatch" ? buildProgram() : benchCommand();
  const ran: { command: Command | null } = { command: null };
  silence(program, (command) => {
    ran.command = command;
  });
  if (!example.whole) relax(program);
  try {
    program.parse(["node", example.tool, ...example.args], { from: "node" });
  } catch (error) {
    if (!(error instanceof CommanderError)) return String(error);
    if (["commander.helpDisplayed", "commander.help", "commander.version"].includes(error.code)) return null;
    return error.message;
  }
  return ran.command === null ? "no command ran" : durationProblem(ran.command, example.args);
}

/** exitOverride, no output, and a no-op action recording which command ran, on a command and all below it. */
function silence(command: Command, ran: (command: Command) => void): void {
  command.exitOverride();
  command.configureOutput({ writeOut: () => {}, writeErr: () => {}, outputError: () => {} });
  command.action((...args: unknown[]) => ran(args[args.length - 1] as Command));
  for (const sub of command.commands) silence(sub, ran);
}

/** For a mention: no argument, option or option value is required (what is given is still parsed). */
function relax(command: Command): void {
  for (const argument of command.registeredArguments) argument.required = false;
  for (const option of command.options) {
    option.mandatory = false;
    if (option.required) {
      option.required = false;
      option.optional = true;
    }
  }
  for (const sub of command.commands) relax(sub);
}

/**
 * A duration written without a unit (allowed: `0`, `off`, and any number with `--time-unit number`).
 * Read from the example's words, not from the parsed value, which a flag's parser may have turned
 * into milliseconds already.
 */
function durationProblem(command: Command, args: readonly string[]): string | null {
  const durationFlags = new Set<string>();
  for (let c: Command | null = command; c !== null; c = c.parent) {
    if (c.getOptionValue("timeUnit") === "number") return null;
    for (const option of c.options) if (DURATION_PLACEHOLDER.test(option.flags) && option.long) durationFlags.add(option.long);
  }
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].split(/=(.*)/s, 2) as [string, string | undefined];
    if (!durationFlags.has(flag)) continue;
    const value = inline ?? args[i + 1] ?? "";
    if (value !== "0" && value !== "off" && !DURATION_WITH_UNIT.test(value))
      return `${flag} ${value}: a duration needs a unit (250ms, 90s, 15m, 1h, 7d)`;
  }
  return null;
}

/**
 * Why a link of the page `fromFile` does not resolve, or null. `anchorsOf` gives the heading anchors
 * of a Markdown file (null for other files); `ownAnchors` those of the linking page itself.
 */
function linkProblem(
  fromFile: string,
  target: string,
  anchorsOf: (file: string) => Set<string> | null,
  ownAnchors: Set<string>,
): string | null {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return null; // http:, https:, mailto:
  const [pathPart, anchor] = target.split("#", 2) as [string, string | undefined];
  if (pathPart === "") return anchor === undefined || ownAnchors.has(anchor.toLowerCase()) ? null : `no heading #${anchor} on this page`;
  const file = resolve(dirname(fromFile), decodeURIComponent(pathPart));
  if (relative(ROOT, file).startsWith("..")) return "points outside the repository";
  if (!existsSync(file)) return `${relative(ROOT, file)} does not exist`;
  if (anchor === undefined || anchor === "") return null;
  const anchors = anchorsOf(file);
  if (anchors === null) return null; // anchors are only checked on Markdown pages
  return anchors.has(decodeURIComponent(anchor).toLowerCase()) ? null : `no heading #${anchor} in ${relative(ROOT, file)}`;
}

// ---- the repository's pages ----

function markdownFiles(): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith(".md") ? [join(dir, e.name)] : [],
    );
  return [join(ROOT, "README.md"), ...walk(join(ROOT, "docs"))];
}

const pages = new Map<string, Page>();
function pageOf(file: string): Page {
  let page = pages.get(file);
  if (page === undefined) {
    page = scanMarkdown(readFileSync(file, "utf8"));
    pages.set(file, page);
  }
  return page;
}
const anchorsOf = (file: string): Set<string> | null => (file.endsWith(".md") ? pageOf(file).anchors : null);
const where = (file: string, line: number): string => `${relative(ROOT, file)}:${line}`;

describe("documentation", () => {
  const files = markdownFiles();

  it(`README.md is at most ${README_LINES_MAX} lines`, () => {
    const lines = readFileSync(join(ROOT, "README.md"), "utf8").replace(/\n$/, "").split("\n").length;
    expect(lines).toBeLessThanOrEqual(README_LINES_MAX);
  });

  it("README.md opens with the two commands a new user needs", () => {
    const opening = readFileSync(join(ROOT, "README.md"), "utf8").split("```")[1] ?? "";
    expect(opening).toMatch(/^sh\nnpm ci && npm start\s.*\nnpm test\s/s);
  });

  it("has pages under docs/ besides the README", () => {
    expect(files.length).toBeGreaterThan(10);
  });

  it("every relative link resolves to a file, and an anchor to a heading", () => {
    const broken: string[] = [];
    let checked = 0;
    for (const file of files)
      for (const link of pageOf(file).links) {
        checked++;
        const problem = linkProblem(file, link.target, anchorsOf, pageOf(file).anchors);
        if (problem !== null) broken.push(`${where(file, link.line)}: (${link.target}) ${problem}`);
      }
    expect(broken).toEqual([]);
    expect(checked).toBeGreaterThan(50);
  });

  it("every linewatch and npm run bench example is accepted by the command line's parser", () => {
    const refused: string[] = [];
    const counts = { linewatch: 0, bench: 0 };
    for (const file of files)
      for (const example of pageOf(file).examples) {
        counts[example.tool]++;
        const problem = exampleProblem(example);
        if (problem !== null) refused.push(`${where(file, example.line)}: ${example.text}\n    → ${problem}`);
      }
    expect(refused).toEqual([]);
    expect(counts.linewatch).toBeGreaterThan(50);
    expect(counts.bench).toBeGreaterThan(3);
  });

  it("cites no section of a file outside the repository", () => {
    const citations = files.flatMap((file) =>
      readFileSync(file, "utf8")
        .split("\n")
        .flatMap((line, i) => (/DESIGN\.md|REVIEW\.md|\.\.\/shared/.test(line) ? [`${where(file, i + 1)}: ${line.trim()}`] : [])),
    );
    expect(citations).toEqual([]);
  });
});

describe("the documentation checkers catch what they should (not vacuous)", () => {
  const made = join(ROOT, "docs", "made-up.md");
  const text = [
    "# A page",
    "## In a run: `--predict`",
    "See [the concepts](concepts.md#layout), [a missing page](nope.md), [a bad anchor](concepts.md#no-such-heading),",
    "[here](#a-page), [there](#in-a-run---predict) and [away](https://example.com/x).",
    "Inline: `linewatch run --machines 4` and `linewatch run --no-such-flag`; mentions: `linewatch replay`,",
    "`linewatch predict train --bogus`, `linewatch run --nats`.",
    "```sh",
    "linewatch replay data.csv --span 15m \\",
    "  --lateness 5s --out s.ndjson   # a comment",
    "linewatch frobnicate --now",
    "linewatch run --workers many | head -3",
    "linewatch replay data.csv --span 15 && linewatch run --duration=90 --no-file",
    "linewatch replay c.csv --time-unit number --span 30",
    "linewatch run: simulator (8 machines) → log output, not an example",
    "npm run bench -- e2e --smoke && npm run bench -- --suite nope",
    "LINEWATCH_FA_BUDGET=0.003 npx linewatch run --speed 60 --no-file",
    "```",
    "```text",
    "linewatch replay <input> [--window N]",
    "```",
  ].join("\n");
  const page = scanMarkdown(text);

  it("finds headings with GitHub's slugs", () => {
    expect([...page.anchors]).toEqual(["a-page", "in-a-run---predict"]);
    expect(githubSlug("NATS throughput: `npm run bench:nats`")).toBe("nats-throughput-npm-run-benchnats");
  });

  it("flags the missing page and the bad anchor, and only those", () => {
    const problems = page.links.map((l) => linkProblem(made, l.target, anchorsOf, page.anchors) ?? "ok");
    expect(page.links.map((l) => l.target)).toEqual([
      "concepts.md#layout",
      "nope.md",
      "concepts.md#no-such-heading",
      "#a-page",
      "#in-a-run---predict",
      "https://example.com/x",
    ]);
    expect(problems[0]).toBe("ok");
    expect(problems[1]).toMatch(/does not exist/);
    expect(problems[2]).toMatch(/no heading #no-such-heading/);
    expect(problems.slice(3)).toEqual(["ok", "ok", "ok"]);
    expect(linkProblem(made, "#nowhere", anchorsOf, page.anchors)).toMatch(/no heading #nowhere/);
  });

  it("joins continuations, drops comments, pipes and output lines, and refuses the bad examples", () => {
    const verdicts = page.examples.map((e) => `${e.line} ${e.text} => ${exampleProblem(e) === null ? "ok" : "refused"}`);
    expect(verdicts).toEqual([
      "8 linewatch replay data.csv --span 15m --lateness 5s --out s.ndjson => ok",
      "10 linewatch frobnicate --now => refused",
      "11 linewatch run --workers many => refused",
      "12 linewatch replay data.csv --span 15 => refused",
      "12 linewatch run --duration=90 --no-file => refused",
      "13 linewatch replay c.csv --time-unit number --span 30 => ok",
      "15 npm run bench -- e2e --smoke => ok",
      "15 npm run bench -- --suite nope => refused",
      "16 linewatch run --speed 60 --no-file => ok",
      "5 linewatch run --machines 4 => ok",
      "5 linewatch run --no-such-flag => refused",
      "5 linewatch replay => ok",
      "6 linewatch predict train --bogus => refused",
      "6 linewatch run --nats => ok",
    ]);
    // The same command written out in a fenced block must be whole.
    expect(exampleProblem({ ...page.examples[page.examples.length - 3], whole: true })).toMatch(/missing required argument/);
  });
});
