/**
 * The dashboard's static files, served by the live server at `/` (index.html) and `/assets/<file>`.
 *
 * `npm run build:dashboard` (part of `npm run build`, which `npm ci` runs through `prepare`)
 * compiles connectors/live/dashboard/*.ts into dist/dashboard/js/ and copies the HTML, the CSS and
 * uPlot's browser build beside them: the page loads nothing from another host.
 *
 * The SPC what-if preview (spc-preview.js, its imports and build/spc-web.wasm: connectors/live/web-assets.ts,
 * `npm run build:web`) is gathered into dist/www beside dist/dashboard; its files are served under
 * `/assets/www/<path in dist/www>`, so the machine view loads the preview module by its URL
 * (`/assets/www/connectors/live/dashboard/spc-preview.js`) and the module fetches the kernel beside it.
 *
 * Safe by construction: the files are read once at start into a fixed table keyed by their URL
 * path, and a request is a lookup in that table — no path from a request ever reaches the file
 * system, so `/../`, `%2e%2e`, absolute or doubled slashes find nothing (404).
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface StaticAsset {
  body: Buffer;
  contentType: string;
  /** Cache-Control: the page revalidates; scripts and styles may be reused for a few minutes. */
  cacheControl: string;
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".png": "image/png",
  ".svg": "image/svg+xml",
  ".map": "application/json; charset=utf-8",
  // WebAssembly.compileStreaming and instantiateStreaming take only this type.
  ".wasm": "application/wasm",
};

/** Where the what-if preview's files are served (dist/www: connectors/live/web-assets.ts). */
export const WEB_ASSETS_PREFIX = "/assets/www/";

/** Largest file the table takes (the biggest, uPlot's build, is ~50 kB; spc-web.wasm ~20 kB). */
const ASSET_BYTES_MAX = 4 << 20;
/** Most files the table takes. */
const ASSETS_MAX = 256;

/** The built dashboard's folder: dist/dashboard beside the compiled server, or under dist/ when running from the sources (tests). */
export function defaultDashboardDir(): string | null {
  for (const rel of ["../../dashboard/", "../../dist/dashboard/"]) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(join(dir, "index.html"))) return dir;
  }
  return null;
}

/** The preview's assets beside the dashboard: `dir`/../www (dist/www), or null when they are not built. */
export function siblingWebAssetsDir(dir: string): string | null {
  const www = join(dir, "..", "www");
  return existsSync(www) && statSync(www).isDirectory() ? www : null;
}

/**
 * The table of `dir`'s files by URL path: `/` → index.html, `/assets/<relative path>` → each file of
 * a known type; and `webDir`'s (the what-if preview's, default dist/www beside `dir`) under
 * `/assets/www/<relative path>`.
 */
export function loadDashboardAssets(dir: string, webDir: string | null = siblingWebAssetsDir(dir)): Map<string, StaticAsset> {
  const table = new Map<string, StaticAsset>();
  addFiles(table, dir, "/assets/");
  if (webDir !== null) addFiles(table, webDir, WEB_ASSETS_PREFIX);
  const index = table.get("/assets/index.html");
  if (index !== undefined) table.set("/", index);
  return table;
}

/** Every file of a known type under `root`, at `prefix` + its relative path (read now: later requests never touch the disk). */
function addFiles(table: Map<string, StaticAsset>, root: string, prefix: string): void {
  const walk = (sub: string): void => {
    for (const name of readdirSync(join(root, sub)).sort()) {
      const rel = sub === "" ? name : `${sub}/${name}`;
      const path = join(root, rel);
      const st = statSync(path);
      if (st.isDirectory()) {
        walk(rel);
        continue;
      }
      const contentType = CONTENT_TYPES[extname(name)];
      if (contentType === undefined || st.size > ASSET_BYTES_MAX || table.size >= ASSETS_MAX) continue;
      const html = extname(name) === ".html";
      table.set(`${prefix}${rel}`, { body: readFileSync(path), contentType, cacheControl: html ? "no-cache" : "public, max-age=300" });
    }
  };
  walk("");
}
