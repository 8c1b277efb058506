/**
 * Where the project's reference data lives: `data/` in the repository (LINEWATCH_DATA_DIR
 * overrides it). A missing directory is an error, not a skip: the tests that read it assert
 * agreement on real data and must not pass vacuously.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError, InputError, packageRoot } from "../../engine/core/mod.js";

export function referenceDataDir(): string {
  const fromEnv = process.env.LINEWATCH_DATA_DIR;
  if (fromEnv !== undefined && fromEnv !== "") {
    if (existsSync(join(fromEnv, "README.md"))) return fromEnv;
    throw new ConfigError("LINEWATCH_DATA_DIR", `${fromEnv} holds no reference data (no README.md)`);
  }
  const root = packageRoot(import.meta.url);
  if (root !== null && existsSync(join(root, "data", "README.md"))) return join(root, "data");
  throw new InputError(`reference data not found: no data/README.md above ${fileURLToPath(import.meta.url)}`);
}
