/**
 * `linewatch iforest train | score | import-sklearn` as a user runs them: the built CLI
 * (dist/engine/cli/main.js, `npm run build` first) in a child process, on the pima set.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { referenceDataDir } from "../connectors/files/reference-data.js";
import { findSklearnPython, runSklearnExport } from "../bench/sklearn-python.js";

const CLI = resolve(dirname(fileURLToPath(import.meta.url)), "..", "dist", "engine", "cli", "main.js");
const PIMA = join(referenceDataDir(), "odds", "pima.csv");
const dir = mkdtempSync(join(tmpdir(), "linewatch-iforest-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function linewatch(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [CLI, ...args], { maxBuffer: 1 << 26 }, (error, stdout, stderr) => {
      done({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr });
    });
  });
}

interface ScoreLine {
  row: number;
  score: number;
  model_hash: string;
}

function lines(text: string): ScoreLine[] {
  return text
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as ScoreLine);
}

describe("iforest - command line", () => {
  it("train writes model.json (same seed, same file); score writes {row, score, model_hash} per row, the same on 0 and 2 workers", async () => {
    const a = join(dir, "a.json");
    const b = join(dir, "b.json");
    expect(
      (await linewatch("iforest", "train", PIMA, "--exclude", "label", "--trees", "100", "--sample", "256", "--seed", "7", "--out", a))
        .code,
    ).toBe(0);
    expect((await linewatch("iforest", "train", PIMA, "--exclude", "label", "--seed", "7", "--out", b)).code).toBe(0);
    const model = JSON.parse(readFileSync(a, "utf8")) as { hash: string; feature_names: string[] };
    expect(readFileSync(b, "utf8")).toBe(readFileSync(a, "utf8"));
    expect(model.feature_names).toEqual(["x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7"]);

    const out = join(dir, "scores.ndjson");
    const pooled = await linewatch("iforest", "score", PIMA, "--model", a, "--out", out, "--workers", "2", "--task-rows", "100");
    expect(pooled.code).toBe(0);
    const inline = await linewatch("iforest", "score", PIMA, "--model", a, "--workers", "0");
    expect(inline.code).toBe(0);
    expect(inline.stdout).toBe(readFileSync(out, "utf8"));
    const rows = lines(inline.stdout);
    expect(rows.map((r) => r.row)).toEqual(Array.from({ length: 768 }, (_, i) => i));
    for (const r of rows) {
      expect(Object.keys(r)).toEqual(["row", "score", "model_hash"]);
      expect(r.score > 0 && r.score <= 1).toBe(true);
      expect(r.model_hash).toBe(model.hash);
    }
  });

  it("bad input exits 2 with a message naming the file (no class name): missing feature column, empty or NaN cell, damaged model, unknown export", async () => {
    const model = join(dir, "m.json");
    expect((await linewatch("iforest", "train", PIMA, "--exclude", "label", "--trees", "5", "--out", model)).code).toBe(0);
    const header = readFileSync(PIMA, "utf8").split("\n")[0];
    const missing = join(dir, "missing.csv");
    writeFileSync(missing, "x0,x1\n1,2\n");
    const empty = join(dir, "empty.csv");
    writeFileSync(empty, `${header}\n1,2,3,4,5,6,7,8,0\n1,2,,4,5,6,7,8,0\n`);
    const nan = join(dir, "nan.csv");
    writeFileSync(nan, `${header}\n1,2,3,4,NaN,6,7,8,0\n`);
    const damaged = join(dir, "damaged.json");
    writeFileSync(damaged, readFileSync(model, "utf8").replace(/"left": \[\d+/, '"left": [0'));
    const notExport = join(dir, "not-export.json");
    writeFileSync(notExport, "{}");
    const cases: [string[], string][] = [
      [["iforest", "score", missing, "--model", model], missing],
      [["iforest", "score", empty, "--model", model], `${empty}:3`],
      [["iforest", "train", nan, "--exclude", "label", "--out", join(dir, "x.json")], `${nan}:2`],
      [["iforest", "score", PIMA, "--model", damaged], damaged],
      [["iforest", "import-sklearn", notExport, "--out", join(dir, "y.json")], notExport],
    ];
    for (const [args, where] of cases) {
      const r = await linewatch(...args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(/^linewatch: /);
      expect(r.stderr).toContain(where);
      // A message for a person: no internal class name.
      expect(r.stderr).not.toMatch(/\w+Error\b/);
    }
  });

  const sklearn = findSklearnPython();
  it.skipIf(!sklearn.ok)("import-sklearn then score: the CLI's scores are −score_samples to 1e-9", async () => {
    if (!sklearn.ok) return;
    const exportPath = join(dir, "export.json");
    const exported = (await runSklearnExport(
      sklearn.python,
      ["--csv", PIMA, "--exclude", "label", "--scores", "--seed", "2"],
      exportPath,
    )) as {
      score_samples: number[];
    };
    const model = join(dir, "sk.json");
    const imported = await linewatch("iforest", "import-sklearn", exportPath, "--out", model);
    expect(imported.code).toBe(0);
    const scored = await linewatch("iforest", "score", PIMA, "--model", model, "--workers", "0");
    expect(scored.code).toBe(0);
    const rows = lines(scored.stdout);
    expect(rows.length).toBe(exported.score_samples.length);
    for (const r of rows) expect(Math.abs(r.score + exported.score_samples[r.row])).toBeLessThanOrEqual(1e-9);
  });
});
