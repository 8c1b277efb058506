/**
 * The most-common-value estimate against NIST's own tool: for each of the sample files NIST ships
 * with SP800-90B_EntropyAssessment (data/nist-sp800-90b/bin), the literal and bitstring figures
 * its `ea_non_iid -vv` printed (data/nist-sp800-90b/refdata/*.res, the tool's self-test
 * reference outputs) are reproduced by `linewatch entropy` — mode count exactly, p̂, p_u and
 * min-entropy to 1e−12 — and by the serial kernel's MCV over the same symbols.
 */
import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { referenceDataDir } from "../connectors/files/mod.js";
import { mcvMinEntropy } from "../kernels/reference/serial-reference.js";
import { mcvOfSymbols, type McvEstimate } from "../operators/serial/mcv-estimate.js";

/** dist/engine/cli/main.js in a child process: `npm run build` first. */
const CLI = resolve(dirname(fileURLToPath(import.meta.url)), "..", "dist", "engine", "cli", "main.js");
const NIST = join(referenceDataDir(), "nist-sp800-90b");
const FILES = readdirSync(join(NIST, "bin"))
  .filter((f) => f.endsWith(".bin"))
  .sort();

interface ToolFigures {
  bits: number;
  literal: ToolMcv;
  bitstring: ToolMcv | null;
}
interface ToolMcv {
  mode: number;
  pHat: number;
  pU: number;
  minEntropy: number;
}

/** The MCV lines of an `ea_non_iid -vv` output. */
function toolFigures(res: string): ToolFigures {
  const loaded = /Loaded \d+ samples of \d+ distinct (\d)-bit-wide symbols/.exec(res);
  if (loaded === null) throw new Error("no 'Loaded' line");
  const mcv = (label: string): ToolMcv | null => {
    const field = (name: string) => {
      const m = new RegExp(`^${label} Most Common Value Estimate: ${name} = (\\S+)$`, "m").exec(res);
      return m === null ? null : Number(m[1]);
    };
    const mode = field("Mode count");
    if (mode === null) return null;
    return { mode, pHat: field("p-hat") as number, pU: field("p_u") as number, minEntropy: field("min entropy") as number };
  };
  return { bits: Number(loaded[1]), literal: mcv("Literal") as ToolMcv, bitstring: mcv("Bitstring") };
}

function expectSameAsTool(ours: McvEstimate, tool: ToolMcv): void {
  expect(ours.mode_count).toBe(tool.mode);
  expect(Math.abs(ours.p_hat - tool.pHat)).toBeLessThanOrEqual(1e-12);
  expect(Math.abs(ours.p_u - tool.pU)).toBeLessThanOrEqual(1e-12);
  expect(Math.abs(ours.min_entropy - tool.minEntropy)).toBeLessThanOrEqual(1e-12);
}

describe("entropy - NIST SP 800-90B most common value, against NIST's published outputs", () => {
  it("entropy - the sample files are all there, with their reference outputs", () => {
    expect(FILES.length).toBe(11);
    for (const f of FILES)
      expect(toolFigures(readFileSync(join(NIST, "refdata", f.replace(/\.bin$/, ".res")), "utf8")).literal).not.toBeNull();
  });

  it.each(FILES)("entropy - %s: literal and bitstring estimates equal ea_non_iid's to 1e-12", (file) => {
    const tool = toolFigures(readFileSync(join(NIST, "refdata", file.replace(/\.bin$/, ".res")), "utf8"));
    const data = new Uint8Array(readFileSync(join(NIST, "bin", file)));
    const ours = mcvOfSymbols(data);
    expect(ours.bits_per_symbol).toBe(tool.bits);
    expectSameAsTool(ours.literal, tool.literal);
    if (tool.bitstring === null) expect(ours.bitstring).toBeNull();
    else expectSameAsTool(ours.bitstring as McvEstimate, tool.bitstring);
    // The serial kernel's formula (its TypeScript reference; test/serial-kernel.test.ts holds the
    // WASM build to it) gives the same bound from the same counts.
    expect(Math.abs(mcvMinEntropy(tool.literal.mode, data.length) - tool.literal.minEntropy)).toBeLessThanOrEqual(1e-12);
  });
});

describe("entropy - the command on a NIST sample file", () => {
  it("entropy - `linewatch entropy` prints the tool's figures for rand4_short.bin", async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [CLI, "entropy", join(NIST, "bin", "rand4_short.bin")]);
    const out = JSON.parse(stdout) as { z: number; literal: McvEstimate; bitstring: McvEstimate };
    const tool = toolFigures(readFileSync(join(NIST, "refdata", "rand4_short.res"), "utf8"));
    expect(out.z).toBe(2.5758293035489008);
    expectSameAsTool(out.literal, tool.literal);
    expectSameAsTool(out.bitstring, tool.bitstring as ToolMcv);
  });
});
