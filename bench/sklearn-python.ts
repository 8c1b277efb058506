/**
 * Running scripts/sklearn_iforest_export.py: find a Python that imports scikit-learn (Debian's
 * python3-sklearn at /usr/bin/python3, or LINEWATCH_PYTHON), and run the script as a subprocess.
 * Used by the sklearn-equality test, the AUC harness and the benchmark.
 */
import { execFile, execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { packageRoot } from "../engine/core/mod.js";

export interface SklearnPython {
  python: string;
  sklearnVersion: string;
}

export type SklearnAvailability = { ok: true; python: SklearnPython } | { ok: false; reason: string };

export const SKLEARN_EXPORT_SCRIPT = join("scripts", "sklearn_iforest_export.py");

let cached: SklearnAvailability | undefined;

/** Whether scikit-learn can be imported, and by which interpreter. */
export function findSklearnPython(): SklearnAvailability {
  if (cached !== undefined) return cached;
  const python = process.env.LINEWATCH_PYTHON ?? "/usr/bin/python3";
  try {
    const version = execFileSync(python, ["-c", "import sklearn, numpy; print(sklearn.__version__)"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 60_000,
    }).trim();
    cached = { ok: true, python: { python, sklearnVersion: version } };
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? (error as Error).message)
      .trim()
      .split("\n")
      .pop();
    cached = {
      ok: false,
      reason: `${python} cannot import sklearn (${stderr}); install Debian's python3-sklearn (apt-get install python3-sklearn)`,
    };
  }
  if (!cached.ok && process.env.LINEWATCH_REQUIRE_SERVERS === "1") {
    throw new Error(`${cached.reason}; LINEWATCH_REQUIRE_SERVERS=1: the scikit-learn comparisons must not skip`);
  }
  return cached;
}

/** Path of the export script, from the package root (found from this file, in source or in dist/). */
export function sklearnScriptPath(): string {
  const root = packageRoot(import.meta.url);
  if (root !== null) return join(root, SKLEARN_EXPORT_SCRIPT);
  throw new Error(`package root not found above ${fileURLToPath(import.meta.url)}`);
}

/** Runs the export script with `args` (which must include --out); resolves to the parsed output file. */
export function runSklearnExport(python: SklearnPython, args: string[], outPath: string, timeoutMs = 30 * 60_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    execFile(
      python.python,
      [sklearnScriptPath(), ...args, "--out", outPath],
      { timeout: timeoutMs, maxBuffer: 1 << 24 },
      (error, _stdout, stderr) => {
        if (error) {
          reject(new Error(`sklearn_iforest_export.py failed: ${stderr.trim() || error.message}`, { cause: error }));
          return;
        }
        try {
          resolve(JSON.parse(readFileSync(outPath, "utf8")));
        } catch (cause) {
          reject(new Error(`sklearn_iforest_export.py wrote no readable ${outPath}`, { cause }));
        }
      },
    );
  });
}
