/**
 * The audit record's config_hash: SHA-256 of the canonical JSON of the analysis settings that
 * decide a score's value. Member order does not matter, a value-deciding setting changes it, a
 * setting that only shapes alerts or outputs does not.
 */
import { Command } from "commander";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../engine/core/mod.js";
import { type AnalysisContext, addAnalysisFlags, type AnalysisFlags, analysisSpecsFromFlags } from "../engine/cli/analysis-flags.js";
import { auditConfig, auditStamp, canonicalJson } from "../engine/jobs/mod.js";

const KERNEL = "0".repeat(64);
const CTX: AnalysisContext = { timeUnit: "ms", defaultWindow: 64, keyParts: ["machine_id", "sensor_type"], alerting: true };

/** The config hash of a run with these analysis flags, as `run --audit` makes it. */
function hashOf(args: string[]): string {
  // `run`'s readings per second per key, which its default false-alarm budget (1/12h) is read at.
  const command = addAnalysisFlags(new Command("t").exitOverride().option("--rate <n>", "readings/s", Number, 10), "rolling,spc", true);
  command.parse(args, { from: "user" });
  const specs = analysisSpecsFromFlags(command.opts<AnalysisFlags>(), CTX);
  return auditStamp(auditConfig(specs, "ms", null, true), KERNEL).configHash;
}

describe("audit config_hash", () => {
  it("canonical JSON: members sorted at every depth, undefined left out, Maps as objects, no white space", () => {
    const a = { b: 1, a: { y: [1, { q: 2, p: 1 }], x: "s" }, u: undefined };
    const b = { a: { x: "s", y: [1, { p: 1, q: 2 }] }, b: 1 };
    expect(canonicalJson(a)).toBe('{"a":{"x":"s","y":[1,{"p":1,"q":2}]},"b":1}');
    expect(canonicalJson(a)).toBe(canonicalJson(b));
    expect(
      canonicalJson(
        new Map([
          ["k2", 2],
          ["k1", 1],
        ]),
      ),
    ).toBe(canonicalJson({ k1: 1, k2: 2 }));
    // Arrays keep their order: the analyses' order is part of the settings.
    expect(canonicalJson([2, 1])).not.toBe(canonicalJson([1, 2]));
    // Numbers as JSON writes them: the shortest text of the same double.
    expect(canonicalJson({ x: 0.1 + 0.2, y: 1e21, z: -0 })).toBe('{"x":0.30000000000000004,"y":1e+21,"z":0}');
    expect(() => canonicalJson({ limit: Number.NaN })).toThrow(ConfigError);
  });

  it("does not depend on the order of the settings' members", () => {
    const spec = { name: "rolling" as const, options: { window: { kind: "count" as const, records: 16 }, alpha: 0.2, timeScale: 1000 } };
    const reordered = {
      name: "rolling" as const,
      options: { timeScale: 1000, alpha: 0.2, window: { records: 16, kind: "count" as const } },
    };
    const one = auditStamp(auditConfig([spec], "ms", null), KERNEL);
    const two = auditStamp(auditConfig([reordered], "ms", null), KERNEL);
    expect(two.configHash).toBe(one.configHash);
    expect(one.configHash).toMatch(/^[0-9a-f]{64}$/);
    // The same order of flags or another: the same settings.
    expect(hashOf(["--window", "16", "--cusum-k", "0.4"])).toBe(hashOf(["--cusum-k", "0.4", "--window", "16"]));
  });

  it("changes with a setting that decides a value", () => {
    const base = hashOf(["--window", "16"]);
    expect(hashOf(["--window", "17"])).not.toBe(base);
    expect(hashOf(["--window", "16", "--alpha", "0.3"])).not.toBe(base);
    expect(hashOf(["--window", "16", "--cusum-k", "0.4"])).not.toBe(base);
    expect(hashOf(["--window", "16", "--baseline", "301"])).not.toBe(base);
    expect(hashOf(["--window", "16", "--fa-budget", "0.001"])).not.toBe(base);
    expect(hashOf(["--window", "16", "--analysis", "spc,rolling"])).not.toBe(base);
    const spec = { name: "rolling" as const, options: { window: { kind: "count" as const, records: 16 }, alpha: 0.2, timeScale: 1000 } };
    const plain = auditStamp(auditConfig([spec], "ms", null), KERNEL).configHash;
    expect(auditStamp(auditConfig([spec], "number", null), KERNEL).configHash).not.toBe(plain);
    expect(auditStamp(auditConfig([spec], "ms", 5000), KERNEL).configHash).not.toBe(plain);
    expect(auditStamp(auditConfig([spec], "ms", null, true), KERNEL).configHash).not.toBe(plain);
  });

  it("does not change with a setting that only shapes alerts or outputs", () => {
    const base = hashOf(["--window", "16"]);
    expect(hashOf(["--window", "16", "--episode-close-after", "900"])).toBe(base);
    expect(hashOf(["--window", "16", "--episode-update-interval", "30s"])).toBe(base);
    expect(hashOf(["--window", "16", "--serial-quarantine", "q.json"])).toBe(base);
    const spc = {
      name: "spc" as const,
      options: { params: { baselineN: 50 }, ewmaField: "ewma", keyParts: ["machine_id", "sensor_type"], episodes: { closeAfter: 10 } },
    };
    const other = { ...spc, options: { ...spc.options, keyParts: ["line"], episodes: { closeAfter: 99 } } };
    const asSpecs = (s: typeof spc) => [s] as unknown as Parameters<typeof auditConfig>[0];
    expect(auditStamp(auditConfig(asSpecs(other), "ms", null), KERNEL).configHash).toBe(
      auditStamp(auditConfig(asSpecs(spc), "ms", null), KERNEL).configHash,
    );
    // The kernel hash is its own field of the record, not part of the settings.
    expect(auditStamp(auditConfig(asSpecs(spc), "ms", null), "f".repeat(64)).configHash).toBe(
      auditStamp(auditConfig(asSpecs(spc), "ms", null), KERNEL).configHash,
    );
  });
});
