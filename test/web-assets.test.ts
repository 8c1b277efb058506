import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildWebAssets, importClosure } from "../connectors/live/web-assets.js";
import { ConfigError, packageRoot } from "../engine/core/mod.js";

/** The dashboard's static assets (dist/www): what `npm run build:web` gathers, and what it refuses. */

function tree(files: Record<string, string>): string {
  const dist = mkdtempSync(join(tmpdir(), "lw-web-"));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dist, path)), { recursive: true });
    writeFileSync(join(dist, path), text);
  }
  return dist;
}

describe("web assets", () => {
  it("follows static and dynamic imports and re-exports, each file once", () => {
    const dist = tree({
      "a/page.js": 'import { x } from "./x.js";\nexport * from "../b/y.js";\nconst m = await import("./lazy.js");\n',
      "a/x.js": 'export { y } from "../b/y.js";\nexport const x = 1;\n',
      "a/lazy.js": "export const lazy = 1;\n",
      "b/y.js": "export const y = 2;\n",
    });
    expect(importClosure(dist, ["a/page.js"]).sort()).toEqual(["a/lazy.js", "a/page.js", "a/x.js", "b/y.js"]);
  });

  it("refuses a file the page would load that imports a package or a node: module", () => {
    const dist = tree({
      "a/page.js": 'import { x } from "./x.js";\n',
      "a/x.js": 'import { readFileSync } from "node:fs";\nexport const x = 1;\n',
    });
    expect(() => importClosure(dist, ["a/page.js"])).toThrow(ConfigError);
    expect(() => importClosure(tree({ "p.js": 'import uPlot from "uplot";\n' }), ["p.js"])).toThrow(ConfigError);
  });

  it("builds dist/www: the what-if page, its modules with what they import, and the browser's SPC kernel", () => {
    const root = packageRoot(import.meta.url) as string;
    // Into a folder of its own: the browser test serves another build at the same time.
    const built = buildWebAssets(root, mkdtempSync(join(tmpdir(), "lw-www-")));
    for (const f of [
      "connectors/live/dashboard/what-if.html",
      "connectors/live/dashboard/what-if.js",
      "connectors/live/dashboard/spc-preview.js",
      "connectors/live/dashboard/spc-web.wasm",
      "operators/spc/layout.js",
      "operators/spc/alerts.js",
      "engine/core/errors.js",
    ]) {
      expect(built.files).toContain(f);
    }
    // Nothing of the engine that needs Node: no kernel pool, no stream engine, no logger.
    expect(built.files.filter((f) => /kernel-pool|stream-engine|log\.js|mod\.js/.test(f))).toEqual([]);
    expect(readFileSync(join(built.dir, "connectors/live/dashboard/spc-web.wasm"))).toEqual(
      readFileSync(join(root, "build", "spc-web.wasm")),
    );
  });
});
