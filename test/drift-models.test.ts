/**
 * Training stores the reference histograms drift PSI needs, and the model readers expose them:
 * the RUL model's ONNX metadata key linewatch.reference_histograms and the iforest model.json
 * member reference_histograms. Older files without them load, saying PSI is unavailable; the
 * iforest hash of a file without them is defined as before; a damaged reference is a typed error.
 */
import { createHash } from "node:crypto";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import pkg from "onnx-proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ModelLoadError, SeededRandom } from "../engine/core/mod.js";
import { readCmapss } from "../connectors/files/cmapss.js";
import { referenceDataDir } from "../connectors/files/reference-data.js";
import { describeModel } from "../connectors/registry/describe.js";
import { buildReferenceHistograms, ReferenceHistogramError, referenceToText } from "../operators/drift/mod.js";
import { type IsolationForestModel, modelToJson, parseModel } from "../operators/iforest/model.js";
import { trainIsolationForest } from "../operators/iforest/training/train.js";
import { FailureModel, readRulFileMetadata } from "../operators/prediction/failure-model.js";
import { RUL_OPTIONAL_METADATA_KEYS } from "../operators/prediction/model-format.js";
import { encodeRulModel, type RulModelSpec } from "../operators/prediction/training/onnx-export.js";
import { buildRulDataset, DEFAULT_RUL_TRAIN_OPTIONS, splitUnits, trainRulModel } from "../operators/prediction/training/rul-train.js";
import { TEST_MODEL_OPTIONS } from "./kit/prediction-model.js";

const { onnx } = pkg;
const CLI = resolve(dirname(fileURLToPath(import.meta.url)), "..", "dist", "engine", "cli", "main.js");
const TRAIN = join(referenceDataDir(), "cmapss", "train_FD001.txt");
const dir = mkdtempSync(join(tmpdir(), "linewatch-drift-models-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function linewatch(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [CLI, ...args], { maxBuffer: 1 << 26 }, (error, stdout, stderr) => {
      done({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr });
    });
  });
}

function withMetadata(bytes: Uint8Array, key: string, value: string | null): Uint8Array {
  const m = onnx.ModelProto.decode(bytes);
  m.metadataProps = m.metadataProps.filter((p) => p.key !== key);
  if (value !== null) m.metadataProps.push(onnx.StringStringEntryProto.create({ key, value }));
  return onnx.ModelProto.encode(m).finish();
}

describe("RUL model: reference histograms in the ONNX metadata", () => {
  let spec: RulModelSpec;
  let bytes: Uint8Array;
  beforeAll(() => {
    const units = readCmapss(TRAIN);
    spec = trainRulModel(units, { ...TEST_MODEL_OPTIONS, epochs: 1 }, "train_FD001.txt (drift test)").spec;
    bytes = encodeRulModel(spec);
  });

  it("training bins the rows it fitted on: every feature, deciles, counts summing to the training rows", () => {
    const ref = spec.referenceHistograms;
    expect(ref).toBeDefined();
    if (!ref) return;
    const units = readCmapss(TRAIN);
    const { train } = splitUnits(units, DEFAULT_RUL_TRAIN_OPTIONS.holdout, DEFAULT_RUL_TRAIN_OPTIONS.seed);
    const data = buildRulDataset(train, spec.featureNames, spec.window, spec.rulCap);
    expect(ref.rows).toBe(data.rows);
    expect(ref.features.map((h) => h.name)).toEqual(spec.featureNames);
    for (const h of ref.features) {
      expect(h.counts.reduce((a, b) => a + b, 0)).toBe(data.rows);
      expect(h.counts.length).toBeLessThanOrEqual(10);
      // Decile bins of a continuous feature hold a tenth of the rows each, give or take the ties at an edge.
      if (h.name.endsWith(".mean")) for (const c of h.counts) expect(c / data.rows).toBeGreaterThan(0.05);
    }
  });

  it("round-trips through the file: the loaded model and the registry's reader have them", async () => {
    const model = await FailureModel.fromBytes(bytes, "with-reference.onnx");
    try {
      expect(model.referenceHistograms).toEqual(spec.referenceHistograms);
      expect(model.driftUnavailable).toBeNull();
    } finally {
      await model.close();
    }
    expect(readRulFileMetadata(bytes, "x").referenceHistograms).toEqual(spec.referenceHistograms);
    const facts = describeModel(bytes, "rul", "with-reference.onnx");
    expect(facts.details.reference_histograms).toEqual({ present: true, features: 28, bins_max: 10, rows: spec.referenceHistograms?.rows });
  });

  it("an older model without the key loads, and says drift PSI is unavailable for it", async () => {
    const old = withMetadata(bytes, RUL_OPTIONAL_METADATA_KEYS.referenceHistograms, null);
    const model = await FailureModel.fromBytes(old, "old.onnx");
    try {
      expect(model.referenceHistograms).toBeNull();
      expect(model.driftUnavailable).toMatch(/drift PSI is unavailable/);
      expect(model.featureNames).toEqual(spec.featureNames);
    } finally {
      await model.close();
    }
    const { referenceHistograms: _, ...withoutSpec } = spec;
    expect(onnx.ModelProto.decode(encodeRulModel(withoutSpec)).metadataProps.map((p) => p.key)).not.toContain(
      RUL_OPTIONAL_METADATA_KEYS.referenceHistograms,
    );
    const facts = describeModel(old, "rul", "old.onnx");
    expect((facts.details.reference_histograms as { present: boolean }).present).toBe(false);
  });

  it("a damaged reference is a typed error; one for other features is refused, naming the key", async () => {
    const ref = spec.referenceHistograms;
    if (!ref) throw new Error("no reference");
    const text = referenceToText(ref);
    const damaged = withMetadata(bytes, RUL_OPTIONAL_METADATA_KEYS.referenceHistograms, text.replace('"counts":[', '"counts":[1,'));
    await expect(FailureModel.fromBytes(damaged, "damaged.onnx")).rejects.toBeInstanceOf(ReferenceHistogramError);
    const truncated = withMetadata(bytes, RUL_OPTIONAL_METADATA_KEYS.referenceHistograms, text.slice(0, 100));
    await expect(FailureModel.fromBytes(truncated, "truncated.onnx")).rejects.toBeInstanceOf(ReferenceHistogramError);
    const other = buildReferenceHistograms([1, 2, 3, 4], 4, ["s2.mean"], 2);
    const mismatched = withMetadata(bytes, RUL_OPTIONAL_METADATA_KEYS.referenceHistograms, referenceToText(other));
    const error = await FailureModel.fromBytes(mismatched, "mismatched.onnx").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelLoadError);
    expect(String(error)).toContain(RUL_OPTIONAL_METADATA_KEYS.referenceHistograms);
    expect(() => describeModel(damaged, "rul", "damaged.onnx")).toThrow(/reference histograms/);
  });

  it("`linewatch predict train` writes them (built CLI)", async () => {
    const out = join(dir, "rul.onnx");
    const r = await linewatch("predict", "train", "--cmapss", TRAIN, "--out", out, "--epochs", "1", "--json");
    expect(r.code, r.stderr).toBe(0);
    // The CLI's default features (mean, slope and count of 14 sensors over 150 cycles), binned over
    // the same training rows as the test model's (the split depends on the seed only).
    expect(JSON.parse(r.stdout).reference_histograms).toEqual({ features: 42, rows: spec.referenceHistograms?.rows });
    const meta = readRulFileMetadata(readFileSync(out), out);
    const { train } = splitUnits(readCmapss(TRAIN), DEFAULT_RUL_TRAIN_OPTIONS.holdout, DEFAULT_RUL_TRAIN_OPTIONS.seed);
    const data = buildRulDataset(train, meta.featureNames, meta.window, meta.rulCap);
    expect(meta.referenceHistograms).toEqual(
      buildReferenceHistograms(data.features, data.rows, meta.featureNames, DEFAULT_RUL_TRAIN_OPTIONS.referenceBins),
    );
  });
});

describe("iforest model: reference_histograms in model.json", () => {
  const rng = new SeededRandom(3);
  const rows = 400;
  const names = ["fill_weight", "seal_temp", "torque"];
  const values = Float64Array.from({ length: rows * names.length }, () => rng.normal());
  const data = { values, rows, columns: names.length, names };
  const options = { trees: 15, sampleSize: 64, seed: 7 };

  /** The hash as model.ts defined it before reference histograms: SHA-256 of the 12 scoring fields. */
  function hashWithoutReference(m: IsolationForestModel): string {
    const canonical = JSON.stringify([
      "linewatch-iforest",
      1,
      m.maxSamples,
      m.nFeatures,
      m.featureNames,
      m.compare,
      Array.from(m.treeOffsets),
      Array.from(m.feature),
      Array.from(m.threshold),
      Array.from(m.left),
      Array.from(m.right),
      Array.from(m.leafSize),
    ]);
    return createHash("sha256").update(canonical).digest("hex");
  }

  it("training stores the training rows' histograms without changing a tree", () => {
    const withRef = trainIsolationForest(data, options);
    const without = trainIsolationForest(data, { ...options, referenceBins: 0 });
    expect(withRef.referenceHistograms).toEqual(buildReferenceHistograms(values, rows, names, 10));
    expect(without.referenceHistograms).toBeUndefined();
    expect(withRef.threshold).toEqual(without.threshold);
    expect(withRef.feature).toEqual(without.feature);
    expect(withRef.leafSize).toEqual(without.leafSize);
  });

  it("keeps the hash of a file without them as it was, and hashes them when present", () => {
    const without = trainIsolationForest(data, { ...options, referenceBins: 0 });
    expect(without.hash).toBe(hashWithoutReference(without));
    expect(modelToJson(without)).not.toContain("reference_histograms");
    const withRef = trainIsolationForest(data, options);
    expect(withRef.hash).not.toBe(hashWithoutReference(withRef));
    const back = parseModel(modelToJson(withRef), "with-reference.json");
    expect(back.referenceHistograms).toEqual(withRef.referenceHistograms);
    expect(back.hash).toBe(withRef.hash);
    expect(parseModel(modelToJson(without), "old.json").referenceHistograms).toBeUndefined();
    expect(describeModel(new TextEncoder().encode(modelToJson(withRef)), "iforest", "f.json").details.reference_histograms).toEqual({
      present: true,
      features: 3,
      bins_max: 10,
      rows,
    });
    expect(
      (
        describeModel(new TextEncoder().encode(modelToJson(without)), "iforest", "f.json").details.reference_histograms as {
          present: boolean;
        }
      ).present,
    ).toBe(false);
  });

  it("refuses a file whose reference was changed, removed or damaged", () => {
    const text = modelToJson(trainIsolationForest(data, options));
    const json = JSON.parse(text) as Record<string, { features: Array<{ counts: number[] }> }>;
    const moved = structuredClone(json);
    const counts = moved.reference_histograms.features[0].counts;
    counts[0] += 1;
    counts[1] -= 1;
    const hashError = (t: string) => {
      try {
        parseModel(t, "edited.json");
      } catch (e) {
        return e as { field?: string };
      }
      return null;
    };
    expect(hashError(JSON.stringify(moved))?.field).toBe("hash");
    const removed = structuredClone(json);
    delete (removed as Record<string, unknown>).reference_histograms;
    expect(hashError(JSON.stringify(removed))?.field).toBe("hash");
    const damaged = structuredClone(json);
    damaged.reference_histograms.features[0].counts[0] += 1;
    expect(() => parseModel(JSON.stringify(damaged), "damaged.json")).toThrow(ReferenceHistogramError);
    const renamed = structuredClone(json) as unknown as { reference_histograms: { features: Array<{ name: string }> } };
    renamed.reference_histograms.features[0].name = "other";
    expect(hashError(JSON.stringify(renamed))?.field).toBe("reference_histograms");
  });

  it("`linewatch iforest train` writes them (built CLI)", async () => {
    const out = join(dir, "pima.json");
    const r = await linewatch(
      "iforest",
      "train",
      join(referenceDataDir(), "odds", "pima.csv"),
      "--exclude",
      "label",
      "--trees",
      "10",
      "--out",
      out,
    );
    expect(r.code, r.stderr).toBe(0);
    const model = parseModel(readFileSync(out, "utf8"), out);
    expect(model.referenceHistograms?.rows).toBe(768);
    expect(model.referenceHistograms?.features.map((h) => h.name)).toEqual(model.featureNames);
  });
});
