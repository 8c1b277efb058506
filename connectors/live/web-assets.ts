/**
 * The dashboard's static assets, built at `npm run build` (so at npm ci) into dist/www/: the
 * pages and styles of connectors/live/dashboard/, the JavaScript tsc compiled from it
 * (tsconfig.web.json) with every file it imports, and the browser's SPC kernel
 * (build/spc-web.wasm, beside spc-preview.js). Paths keep their place in the package
 * (dist/www/connectors/live/dashboard/what-if.html, dist/www/operators/spc/layout.js, …), so the
 * compiled relative imports resolve as they are; no bundler, no network at run time.
 *
 * A file the page would load that imports anything but a relative file (`node:…`, a package) is
 * refused here: a browser could not load it.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { dirname, join, posix, relative } from "node:path";
import { pathToFileURL } from "node:url";
import { ConfigError, packageRoot } from "../../engine/core/mod.js";

/** Where the assets go, under the package root. */
export const WEB_ASSETS_DIR = join("dist", "www");
/** The dashboard's sources (pages, styles; its TypeScript compiles to dist/ by tsconfig.web.json). */
const DASHBOARD_DIR = join("connectors", "live", "dashboard");
const STATIC_FILE = /\.(html|css|svg|png|ico)$/;
/** Relative specifiers of a compiled module's static and dynamic imports and re-exports. */
const IMPORT = /\b(?:import|export)\b[^"';]*?\bfrom\s*["']([^"']+)["']|\bimport\s*\(?\s*["']([^"']+)["']/g;

export interface WebAssets {
  /** The assets' root (serve it at `/` or under a prefix). */
  dir: string;
  /** Files written, relative to `dir`. */
  files: string[];
  bytes: number;
}

/** Builds the assets of the package at `root` (after tsc and build:kernels) into `out` (default dist/www), emptied first. */
export function buildWebAssets(root: string, out: string = join(root, WEB_ASSETS_DIR)): WebAssets {
  const dist = join(root, "dist");
  rmSync(out, { recursive: true, force: true });
  const files = new Set<string>();
  const copy = (from: string, to: string): void => {
    if (!existsSync(from)) throw new ConfigError("web assets", `${from} not found: run \`npm run build\` first`);
    mkdirSync(dirname(join(out, to)), { recursive: true });
    copyFileSync(from, join(out, to));
    files.add(to);
  };
  const source = join(root, DASHBOARD_DIR);
  for (const name of readdirSync(source)) if (STATIC_FILE.test(name)) copy(join(source, name), posix.join(DASHBOARD_DIR, name));
  const entries = readdirSync(source)
    .filter((n) => n.endsWith(".ts") && !n.endsWith(".d.ts"))
    .map((n) => posix.join(DASHBOARD_DIR, n.replace(/\.ts$/, ".js")));
  for (const module of importClosure(dist, entries)) copy(join(dist, module), module);
  copy(join(root, "build", "spc-web.wasm"), posix.join(DASHBOARD_DIR, "spc-web.wasm"));
  const list = [...files].sort();
  return { dir: out, files: list, bytes: list.reduce((s, f) => s + statSync(join(out, f)).size, 0) };
}

/** The compiled modules `entries` load (paths relative to `dist`, posix), each once. */
export function importClosure(dist: string, entries: readonly string[]): string[] {
  const seen = new Set<string>(entries);
  const queue = [...entries];
  for (let at = queue.shift(); at !== undefined; at = queue.shift()) {
    const path = join(dist, at);
    if (!existsSync(path)) throw new ConfigError("web assets", `${path} not found: run \`npm run build\` first`);
    for (const m of readFileSync(path, "utf8").matchAll(IMPORT)) {
      const spec = m[1] ?? m[2];
      if (!spec.startsWith(".")) throw new ConfigError("web assets", `${at} imports "${spec}": a browser loads only relative files`);
      const to = posix.normalize(posix.join(posix.dirname(at), spec));
      if (to.startsWith("..")) throw new ConfigError("web assets", `${at} imports "${spec}", outside dist/`);
      if (!seen.has(to)) {
        seen.add(to);
        queue.push(to);
      }
    }
  }
  return [...seen];
}

// `node dist/connectors/live/web-assets.js` (npm run build:web).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const root = packageRoot(import.meta.url);
  if (root === null) throw new ConfigError("web assets", "package root not found");
  const built = buildWebAssets(root);
  process.stdout.write(`${relative(root, built.dir)}: ${built.files.length} files, ${built.bytes} bytes\n`);
}
