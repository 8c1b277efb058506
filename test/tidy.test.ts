/**
 * The tidy test: the rules that keep the folders telling the architecture (in the manner of
 * TigerBeetle's tidy.zig). It reads every tracked TypeScript file with the compiler's parser and
 * fails on
 *
 * - a forbidden import edge: engine/core importing outside itself; anything outside engine/core
 *   reaching past engine/core/mod.ts; anything reaching into engine/jobs, kernels/reference, an
 *   operators/<analysis>/ or a connectors/<transport>/ folder past its mod.ts (or its web.ts, the
 *   face for code that also runs in a browser);
 * - a web.ts face reaching, through the files it loads, an import that is not a relative file
 *   (`node:…` or a package): the browser loads those files as they are; the run-time folders (engine/core, engine/jobs,
 *   operators, connectors, kernels/reference) importing bench/, test/ or a training/ folder; bench/
 *   importing test/; the CLI importing bench/;
 * - an import circle between files (type-only imports excepted: they vanish at run time);
 * - a function over FUNCTION_LINES_MAX lines that is not on the ratchet list, or longer than the
 *   list says, or a list entry that is gone or now short enough (the list only shrinks);
 * - a tracked file outside data/ that points at reference data in a folder beside the checkout:
 *   a clone must pass with nothing beside it;
 * - console.log outside engine/cli (people read the CLI's console; everything else logs or writes
 *   to a stream it was given).
 *
 * Each rule is a pure function of the parsed tree, tested below on a small made-up tree as well,
 * so a rule that stopped finding anything would fail here rather than pass vacuously.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, posix, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import LONG_FUNCTIONS from "./tidy-long-functions.json" with { type: "json" };

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
/** Longest function allowed without an entry on the ratchet list (lines, first to last). */
const FUNCTION_LINES_MAX = 70;
/** Folders whose code runs in a user's process (the CLI is the tools' entry and may load training). */
const RUNTIME_PREFIXES = ["engine/core/", "engine/jobs/", "operators/", "connectors/", "kernels/reference/"];
/** How a file would point at the reference data beside a developer's checkout instead of data/. */
/** The developers' folder beside the checkout, spelled in pieces so that this file does not name it itself. */
const BESIDE_CHECKOUT = ["..", "shared"].join("/");
const OUTSIDE_DATA_DIR = new RegExp(`${BESIDE_CHECKOUT.replace(/[./]/g, "\\$&")}\\b`);

interface SourceFile {
  path: string;
  text: string;
}

interface ImportEdge {
  from: string;
  to: string;
  typeOnly: boolean;
  line: number;
}

interface FunctionSpan {
  /** `file#outer/inner`, stable across edits that do not rename. */
  id: string;
  lines: number;
}

describe("tidy", () => {
  const files = trackedSources();
  const edges = files.flatMap(importEdges);

  it("has the tree it checks (a rule over no files would pass vacuously)", () => {
    expect(files.length).toBeGreaterThan(150);
    expect(edges.length).toBeGreaterThan(500);
  });

  it("imports follow the layering: core alone, mod.ts as each folder's face, runtime never loads bench/test/training", () => {
    expect(forbiddenEdges(edges)).toEqual([]);
  });

  it("has no import circle (type-only imports excepted)", () => {
    expect(importCircles(edges)).toEqual([]);
  });

  it("ratchets function length: none over 70 lines unless listed, none longer than listed, the list only shrinks", () => {
    const spans = files.filter((f) => !f.path.startsWith("test/")).flatMap(functionSpans);
    expect(lengthViolations(spans, LONG_FUNCTIONS as Record<string, number>)).toEqual([]);
  });

  it("stands alone: no tracked file outside data/ refers to the data folder beside the checkout", () => {
    expect(
      filesMentioning(
        OUTSIDE_DATA_DIR,
        trackedFiles().filter((p) => !p.startsWith("data/")),
      ),
    ).toEqual([]);
  });

  it("keeps every web.ts face browser-clean: the files it loads import only relative files", () => {
    expect(files.some((f) => f.path.endsWith("/web.ts"))).toBe(true);
    expect(browserUnsafeImports(files, edges)).toEqual([]);
  });

  it("has no console.log outside engine/cli", () => {
    const found = files.filter((f) => !f.path.startsWith("engine/cli/")).flatMap(consoleLogs);
    expect(found).toEqual([]);
  });
});

describe("tidy rules on a made-up tree (each rule finds what it forbids)", () => {
  const edge = (from: string, to: string, typeOnly = false): ImportEdge => ({ from, to, typeOnly, line: 1 });

  it("forbids core → outside, past-mod imports, runtime → bench/test/training", () => {
    const bad = [
      edge("engine/core/batch.ts", "connectors/wire/codecs.ts"),
      edge("operators/spc/spc.ts", "engine/core/errors.ts"),
      edge("engine/jobs/run-job.ts", "connectors/clickhouse/sink.ts"),
      edge("engine/cli/run.ts", "engine/jobs/run-job.ts"),
      edge("engine/jobs/outputs.ts", "operators/analysis.ts"),
      edge("bench/kernel-bench.ts", "kernels/reference/rolling-reference.ts"),
      edge("connectors/live/http-api.ts", "bench/kit/kernel-harness.ts"),
      edge("engine/jobs/replay.ts", "test/kit/wait.ts"),
      edge("bench/kernel-bench.ts", "test/kit/wait.ts"),
      edge("engine/cli/program.ts", "bench/main.ts"),
      edge("operators/prediction/failure-model.ts", "operators/prediction/training/onnx-export.ts"),
    ];
    const good = [
      edge("operators/spc/spc.ts", "engine/core/mod.ts"),
      edge("operators/spc/spc.ts", "operators/spc/layout.ts"),
      edge("engine/jobs/run-job.ts", "connectors/clickhouse/mod.ts"),
      edge("engine/cli/predict.ts", "operators/prediction/training/rul-train.ts"),
      edge("bench/iforest-bench.ts", "kernels/reference/mod.ts"),
      edge("operators/spc/spc.ts", "operators/analysis.ts"),
      edge("engine/cli/run.ts", "engine/jobs/mod.ts"),
      edge("test/spc-kernel.test.ts", "operators/spc/layout.ts"),
      edge("connectors/live/dashboard/spc-preview.ts", "operators/spc/web.ts"),
      edge("operators/spc/layout.ts", "engine/core/web.ts"),
    ];
    expect(forbiddenEdges([...bad, ...good]).length).toBe(bad.length);
  });

  it("finds a package or node: import loaded by a web.ts face, not one outside its closure or type-only", () => {
    const tree: SourceFile[] = [
      { path: "operators/x/web.ts", text: 'export { a } from "./a.js";\n' },
      { path: "operators/x/a.ts", text: 'import { readFileSync } from "node:fs";\nimport type { T } from "pino";\nexport const a = 1;\n' },
      { path: "operators/x/mod.ts", text: 'import { Piscina } from "piscina";\n' },
    ];
    expect(browserUnsafeImports(tree, tree.flatMap(importEdges))).toEqual(["operators/x/a.ts: node:fs"]);
  });

  it("finds a circle of three files and ignores one closed only by a type import", () => {
    const circle = [edge("a.ts", "b.ts"), edge("b.ts", "c.ts"), edge("c.ts", "a.ts"), edge("c.ts", "d.ts")];
    expect(importCircles(circle)).toEqual(["a.ts → b.ts → c.ts → a.ts"]);
    expect(importCircles([edge("a.ts", "b.ts"), edge("b.ts", "a.ts", true)])).toEqual([]);
  });

  it("measures functions, including arrows and methods, and applies the ratchet both ways", () => {
    const body = Array.from({ length: 80 }, (_, i) => `  const v${i} = ${i};`).join("\n");
    const text = `export function long() {\n${body}\n}\nclass K { m() { return 1; } }\nconst f = () => {\n${body}\n};\n`;
    const spans = functionSpans({ path: "x.ts", text });
    expect(spans.map((s) => s.id)).toEqual(["x.ts#long", "x.ts#K.m", "x.ts#f"]);
    expect(spans[0].lines).toBe(82);
    expect(lengthViolations(spans, { "x.ts#long": 82 })).toEqual([expect.stringContaining("x.ts#f")]);
    expect(lengthViolations(spans, { "x.ts#long": 81, "x.ts#f": 82 })).toEqual([expect.stringContaining("x.ts#long")]);
    expect(lengthViolations(spans, { "x.ts#long": 82, "x.ts#f": 82, "x.ts#gone": 90 })).toEqual([expect.stringContaining("x.ts#gone")]);
  });

  it("finds a mention of the folder beside the checkout", () => {
    expect(OUTSIDE_DATA_DIR.test(`see ${BESIDE_CHECKOUT}/data/nab`)).toBe(true);
    expect(OUTSIDE_DATA_DIR.test("a shared memory; data/nab")).toBe(false);
  });

  it("finds console.log, not console.error or a word in a comment", () => {
    const text = "// console.log is banned\nconsole.error('x');\nconsole.log('y');\n";
    expect(consoleLogs({ path: "x.ts", text })).toEqual(["x.ts:3"]);
  });
});

// ---- reading the tree ----

function trackedSources(): SourceFile[] {
  return trackedFiles()
    .filter((p) => /\.c?ts$/.test(p) && !p.endsWith(".d.ts") && !isAssemblyScript(p))
    .map((path) => ({ path, text: readFileSync(join(ROOT, path), "utf8") }));
}

/** Every tracked (or new, not ignored) file, any type. */
function trackedFiles(): string[] {
  const listed = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard"], { cwd: ROOT, encoding: "utf8" });
  return listed.split("\n").filter((p) => p !== "" && existsSync(join(ROOT, p)));
}

/** `path:line` of every line of the text files among `paths` that `pattern` matches. */
function filesMentioning(pattern: RegExp, paths: readonly string[]): string[] {
  const found: string[] = [];
  for (const path of paths) {
    const bytes = readFileSync(join(ROOT, path));
    if (bytes.includes(0)) continue; // binary
    bytes
      .toString("utf8")
      .split("\n")
      .forEach((line, i) => {
        if (pattern.test(line)) found.push(`${path}:${i + 1}`);
      });
  }
  return found;
}

/** kernels/*.ts is AssemblyScript (built by asc, not tsc); only kernels/reference is TypeScript. */
function isAssemblyScript(path: string): boolean {
  return path.startsWith("kernels/") && !path.startsWith("kernels/reference/");
}

function parse(file: SourceFile): ts.SourceFile {
  return ts.createSourceFile(file.path, file.text, ts.ScriptTarget.ES2022, true);
}

/** Relative imports and re-exports of a file (static and dynamic), resolved to tracked paths. */
function importEdges(file: SourceFile): ImportEdge[] {
  const source = parse(file);
  const found: ImportEdge[] = [];
  const add = (spec: ts.Expression | undefined, typeOnly: boolean, node: ts.Node): void => {
    if (spec === undefined || !ts.isStringLiteral(spec) || !spec.text.startsWith(".")) return;
    const to = posix
      .normalize(posix.join(posix.dirname(file.path), spec.text))
      .replace(/\.js$/, ".ts")
      .replace(/\.cjs$/, ".cts");
    const line = source.getLineAndCharacterOfPosition(node.getStart()).line + 1;
    found.push({ from: file.path, to, typeOnly, line });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) add(node.moduleSpecifier, importIsTypeOnly(node), node);
    else if (ts.isExportDeclaration(node)) add(node.moduleSpecifier, node.isTypeOnly, node);
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) add(node.arguments[0], false, node);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

function importIsTypeOnly(node: ts.ImportDeclaration): boolean {
  const clause = node.importClause;
  if (clause === undefined) return false;
  if (clause.isTypeOnly) return true;
  const named = clause.namedBindings;
  return (
    clause.name === undefined &&
    named !== undefined &&
    ts.isNamedImports(named) &&
    named.elements.length > 0 &&
    named.elements.every((e) => e.isTypeOnly)
  );
}

// ---- the rules ----

function forbiddenEdges(edges: readonly ImportEdge[]): string[] {
  const out: string[] = [];
  for (const e of edges) {
    const why = forbiddenBecause(e);
    if (why !== null) out.push(`${e.from}:${e.line} → ${e.to}: ${why}`);
  }
  return out;
}

function forbiddenBecause(e: ImportEdge): string | null {
  const runtime = RUNTIME_PREFIXES.some((p) => e.from.startsWith(p)) && !e.from.includes("/training/");
  if (e.from.startsWith("engine/core/") && !e.to.startsWith("engine/core/")) return "engine/core imports nothing outside itself";
  if (runtime && (e.to.startsWith("bench/") || e.to.startsWith("test/"))) return "run-time code never imports bench/ or test/";
  if (e.from.startsWith("bench/") && e.to.startsWith("test/")) return "bench/ never imports test/ (references live in kernels/reference)";
  if (e.from.startsWith("engine/cli/") && e.to.startsWith("bench/"))
    return "the linewatch binary never loads bench/ (npm run bench runs it)";
  if (runtime && e.to.includes("/training/")) return "run-time code never imports a training/ folder";
  const folder = moduleFolder(e.to);
  if (
    folder !== undefined &&
    !e.from.startsWith(`${folder}/`) &&
    !e.from.startsWith("test/") &&
    e.to !== `${folder}/mod.ts` &&
    e.to !== `${folder}/web.ts` &&
    !e.to.includes("/training/")
  ) {
    return `outside ${folder}/, import ${folder}/mod.ts (or web.ts)`;
  }
  return null;
}

/** `file: specifier` of each run-time import that is not a relative file, in the files a web.ts face loads. */
function browserUnsafeImports(files: readonly SourceFile[], edges: readonly ImportEdge[]): string[] {
  const byPath = new Map(files.map((f) => [f.path, f]));
  const next = new Map<string, string[]>();
  for (const e of edges) if (!e.typeOnly) next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
  const seen = new Set(files.filter((f) => f.path.endsWith("/web.ts")).map((f) => f.path));
  const queue = [...seen];
  const found: string[] = [];
  for (let at = queue.shift(); at !== undefined; at = queue.shift()) {
    const file = byPath.get(at);
    if (file === undefined) continue;
    for (const spec of packageImports(file)) found.push(`${at}: ${spec}`);
    for (const to of next.get(at) ?? []) {
      if (seen.has(to)) continue;
      seen.add(to);
      queue.push(to);
    }
  }
  return found;
}

/** Import and re-export specifiers of a file that name a package or a `node:` module (type-only ones vanish at run time). */
function packageImports(file: SourceFile): string[] {
  const specs: string[] = [];
  for (const node of parse(file).statements) {
    const spec =
      ts.isImportDeclaration(node) && !importIsTypeOnly(node)
        ? node.moduleSpecifier
        : ts.isExportDeclaration(node) && !node.isTypeOnly
          ? node.moduleSpecifier
          : undefined;
    if (spec !== undefined && ts.isStringLiteral(spec) && !spec.text.startsWith(".")) specs.push(spec.text);
  }
  return specs;
}

/**
 * One circle per strongly connected component of the run-time import graph (Tarjan 1972: a
 * component of more than one file, or a file importing itself, holds a circle), reported as the
 * shortest circle through the component's smallest file, `a → b → … → a`. Linear in the graph,
 * where enumerating every elementary circle is exponential in the number of import paths.
 */
function importCircles(edges: readonly ImportEdge[]): string[] {
  const next = new Map<string, Set<string>>();
  for (const e of edges) {
    if (e.typeOnly) continue;
    let set = next.get(e.from);
    if (set === undefined) next.set(e.from, (set = new Set()));
    set.add(e.to);
  }
  return stronglyConnected(next)
    .filter((c) => c.length > 1 || next.get(c[0])?.has(c[0]))
    .map((c) => shortestCircle(next, new Set(c), [...c].sort()[0]).join(" → "))
    .sort();
}

/** Tarjan's strongly connected components, iteratively (no recursion depth limit). */
function stronglyConnected(next: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  for (const root of [...next.keys()].sort()) {
    if (index.has(root)) continue;
    const frames: Array<{ node: string; out: Iterator<string> }> = [];
    const enter = (node: string) => {
      index.set(node, index.size);
      low.set(node, index.get(node) as number);
      stack.push(node);
      onStack.add(node);
      frames.push({ node, out: (next.get(node) ?? new Set<string>()).values() });
    };
    enter(root);
    while (frames.length > 0) {
      const f = frames[frames.length - 1];
      const step = f.out.next();
      if (!step.done) {
        const to = step.value;
        if (!index.has(to)) enter(to);
        else if (onStack.has(to)) low.set(f.node, Math.min(low.get(f.node) as number, index.get(to) as number));
        continue;
      }
      frames.pop();
      if (frames.length > 0) {
        const parent = frames[frames.length - 1].node;
        low.set(parent, Math.min(low.get(parent) as number, low.get(f.node) as number));
      }
      if (low.get(f.node) === index.get(f.node)) {
        const component: string[] = [];
        let member: string;
        do {
          member = stack.pop() as string;
          onStack.delete(member);
          component.push(member);
        } while (member !== f.node);
        components.push(component);
      }
    }
  }
  return components;
}

/** The shortest path from `start` back to itself inside `within` (breadth-first). */
function shortestCircle(next: ReadonlyMap<string, ReadonlySet<string>>, within: ReadonlySet<string>, start: string): string[] {
  const cameFrom = new Map<string, string>();
  const queue = [start];
  for (let head = 0; head < queue.length; head++) {
    const at = queue[head];
    for (const to of next.get(at) ?? []) {
      if (to === start) {
        const path = [start];
        for (let n = at; n !== start; n = cameFrom.get(n) as string) path.push(n);
        return [start, ...path.slice(1).reverse(), start];
      }
      if (within.has(to) && !cameFrom.has(to)) {
        cameFrom.set(to, at);
        queue.push(to);
      }
    }
  }
  return [start, start];
}

function functionSpans(file: SourceFile): FunctionSpan[] {
  const source = parse(file);
  const spans: FunctionSpan[] = [];
  const seen = new Map<string, number>();
  const visit = (node: ts.Node, outer: string): void => {
    let name = outer;
    if (isFunctionLike(node)) {
      const own = functionName(node);
      let id = `${file.path}#${outer === "" ? own : `${outer}/${own}`}`;
      const n = (seen.get(id) ?? 0) + 1;
      seen.set(id, n);
      if (n > 1) id += `#${n}`;
      const first = source.getLineAndCharacterOfPosition(node.getStart()).line;
      const last = source.getLineAndCharacterOfPosition(node.getEnd()).line;
      spans.push({ id, lines: last - first + 1 });
      name = id.slice(file.path.length + 1);
    }
    ts.forEachChild(node, (child) => visit(child, name));
  };
  visit(source, "");
  return spans;
}

function isFunctionLike(node: ts.Node): node is ts.FunctionLikeDeclaration {
  return (
    ts.isFunctionDeclaration(node) ||
    ts.isMethodDeclaration(node) ||
    ts.isConstructorDeclaration(node) ||
    ts.isGetAccessorDeclaration(node) ||
    ts.isSetAccessorDeclaration(node) ||
    ts.isArrowFunction(node) ||
    ts.isFunctionExpression(node)
  );
}

/** A function's own name; an anonymous one is named by where it sits (`x = () => …`, `.action(…)`). */
function functionName(node: ts.FunctionLikeDeclaration): string {
  const classPrefix = (member: ts.Node = node): string => {
    const cls = member.parent;
    return cls !== undefined && (ts.isClassDeclaration(cls) || ts.isClassExpression(cls)) && cls.name !== undefined
      ? `${cls.name.text}.`
      : "";
  };
  if (ts.isConstructorDeclaration(node)) return `${classPrefix()}constructor`;
  if (node.name !== undefined && (ts.isIdentifier(node.name) || ts.isPrivateIdentifier(node.name) || ts.isStringLiteral(node.name))) {
    return ts.isFunctionDeclaration(node) || ts.isFunctionExpression(node) ? node.name.text : `${classPrefix()}${node.name.text}`;
  }
  const parent = node.parent;
  if (ts.isVariableDeclaration(parent) && ts.isIdentifier(parent.name)) return parent.name.text;
  if (ts.isPropertyAssignment(parent) && ts.isIdentifier(parent.name)) return parent.name.text;
  if (ts.isPropertyDeclaration(parent) && ts.isIdentifier(parent.name)) return `${classPrefix(parent)}${parent.name.text}`;
  if (ts.isCallExpression(parent)) {
    const callee = parent.expression;
    const called = ts.isPropertyAccessExpression(callee) ? callee.name.text : ts.isIdentifier(callee) ? callee.text : "call";
    return `<${called} callback>`;
  }
  return "<anonymous>";
}

function lengthViolations(spans: readonly FunctionSpan[], listed: Readonly<Record<string, number>>): string[] {
  const out: string[] = [];
  const present = new Map(spans.map((s) => [s.id, s.lines]));
  for (const s of spans) {
    if (s.lines <= FUNCTION_LINES_MAX) continue;
    const allowed = listed[s.id];
    if (allowed === undefined) out.push(`${s.id}: ${s.lines} lines (max ${FUNCTION_LINES_MAX}; split it)`);
    else if (s.lines > allowed) out.push(`${s.id}: ${s.lines} lines, the list allows ${allowed} (it only shrinks)`);
  }
  for (const [id, allowed] of Object.entries(listed)) {
    const lines = present.get(id);
    if (lines === undefined) out.push(`${id}: listed (${allowed}) but gone: remove it from test/tidy-long-functions.json`);
    else if (lines <= FUNCTION_LINES_MAX) out.push(`${id}: now ${lines} lines: remove it from test/tidy-long-functions.json`);
    else if (lines < allowed) out.push(`${id}: now ${lines} lines, listed ${allowed}: lower the entry`);
  }
  return out;
}

function consoleLogs(file: SourceFile): string[] {
  const source = parse(file);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (
      ts.isPropertyAccessExpression(node) &&
      node.name.text === "log" &&
      ts.isIdentifier(node.expression) &&
      node.expression.text === "console"
    ) {
      found.push(`${file.path}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}`);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/**
 * The module folder a file belongs to, whose mod.ts is the only way in from outside it:
 * engine/core, engine/jobs, engine/cli, kernels/reference, operators/<analysis>, connectors/<transport>, and
 * operators/ and connectors/ themselves for the files at their top (shared by their subfolders).
 */
function moduleFolder(path: string): string | undefined {
  for (const f of ["engine/core", "engine/jobs", "engine/cli", "kernels/reference"]) if (path.startsWith(`${f}/`)) return f;
  const parts = path.split("/");
  if (parts[0] !== "operators" && parts[0] !== "connectors") return undefined;
  return parts.length > 2 ? `${parts[0]}/${parts[1]}` : parts[0];
}
