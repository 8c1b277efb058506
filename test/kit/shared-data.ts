/**
 * Where the project's reference data lives: `shared/data` beside the checkout (as on developer
 * machines and in CI), or LINEWATCH_DATA_DIR. A missing directory is an error, not a skip: the
 * tests that read it assert agreement on real data and must not pass vacuously.
 */
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export function sharedDataDir(): string {
  const fromEnv = process.env.LINEWATCH_DATA_DIR;
  const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
  const candidates = [fromEnv, join(repoRoot, "..", "shared", "data"), join(repoRoot, "..", "..", "shared", "data")];
  for (const c of candidates) if (c !== undefined && existsSync(join(c, "README.md"))) return c;
  throw new Error(`reference data not found (looked in ${candidates.filter(Boolean).join(", ")}); set LINEWATCH_DATA_DIR`);
}
