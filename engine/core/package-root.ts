/**
 * The package's root folder: the nearest folder holding package.json above a module. Found the
 * same way whether the module runs from source (vitest) or from dist/, so build outputs, the
 * worker script, scripts/ and data/ are located from it rather than by counting `..`.
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The root above the module at `moduleUrl` (its `import.meta.url`), or null when none is found. */
export function packageRoot(moduleUrl: string): string | null {
  let dir = dirname(fileURLToPath(moduleUrl));
  for (;;) {
    if (existsSync(join(dir, "package.json"))) return dir;
    const up = dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}
