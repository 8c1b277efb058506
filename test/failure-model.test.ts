import { mkdtempSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pkg from "onnx-proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ModelLoadError } from "../engine/core/errors.js";
import { SeededRandom } from "../engine/core/mod.js";
import {
  encodeRulModel,
  mlpForward,
  RUL_METADATA_KEYS,
  type DenseLayer,
  type RulModelSpec,
} from "../operators/prediction/training/onnx-export.js";
import { failureProbability, FailureModel } from "../operators/prediction/failure-model.js";
import { erfc, normalCdf } from "../operators/normal.js";
import { FD001_INFORMATIVE_SENSORS, rulFeatureNames } from "../operators/prediction/rul-features.js";

const { onnx } = pkg;

/** A network with given (random) weights and plausible FD001-like standardisation. */
function randomSpec(seed: number, widths = [32, 16]): RulModelSpec {
  const rng = new SeededRandom(seed);
  const gauss = (): number => rng.normal();
  const featureNames = rulFeatureNames(FD001_INFORMATIVE_SENSORS);
  const f = featureNames.length;
  const layers: DenseLayer[] = [];
  let width = f;
  for (const [k, out] of [...widths, 1].entries()) {
    const weights = Float32Array.from({ length: width * out }, () => gauss() * Math.sqrt(2 / width));
    const bias = Float32Array.from({ length: out }, () => gauss() * 0.1 + (k === widths.length ? 60 : 0));
    layers.push({ inputs: width, outputs: out, weights, bias, relu: k < widths.length });
    width = out;
  }
  return {
    featureNames,
    window: 30,
    featureMean: Float32Array.from({ length: f }, (_, j) => (j % 2 === 0 ? 100 + 900 * rng.next() : 0.01 * gauss())),
    featureStd: Float32Array.from({ length: f }, (_, j) => (j % 2 === 0 ? 0.05 + rng.next() : 0.005 + 0.01 * rng.next())),
    layers,
    rulCap: 125,
    horizonCycles: 30,
    cycleHours: 1.5,
    residualSigma: 17.25,
    trainedOn: "random weights (test)",
    validationRmse: 17.5,
  };
}

/** Feature rows near the standardisation centre, plus adversarial ones. */
function featureRows(spec: RulModelSpec, seed: number, rows: number): Float64Array {
  const rng = new SeededRandom(seed);
  const f = spec.featureNames.length;
  const out = new Float64Array(rows * f);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < f; j++) out[r * f + j] = spec.featureMean[j] + spec.featureStd[j] * 4 * (rng.next() - 0.5);
  }
  return out;
}

function adversarialRows(f: number): { rows: number; data: Float64Array } {
  const patterns: Array<(j: number) => number> = [
    () => 0,
    () => 1e6,
    () => -1e6,
    (j) => (j % 2 === 0 ? 1e6 : -1e6),
    (j) => -(j + 1),
    () => -1e-30,
    (j) => (j % 3 === 0 ? 3.4e4 : -0.5),
  ];
  const data = new Float64Array(patterns.length * f);
  patterns.forEach((p, r) => {
    for (let j = 0; j < f; j++) data[r * f + j] = p(j);
  });
  return { rows: patterns.length, data };
}

/** |got − want| ≤ tol · max(|want|, scale) for every element. */
function expectRelClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, scale: (i: number) => number, what: string): void {
  expect(got.length, what).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const bound = tol * Math.max(Math.abs(want[i]), scale(i));
    expect(Math.abs(got[i] - want[i]), `${what} [${i}]: ${got[i]} vs ${want[i]}`).toBeLessThanOrEqual(bound);
  }
}

describe("FailureModel - ONNX graph run by onnxruntime equals the TypeScript forward pass", () => {
  const spec = randomSpec(7);
  let model: FailureModel;
  beforeAll(async () => {
    model = await FailureModel.fromBytes(encodeRulModel(spec), "random.onnx");
  });
  afterAll(async () => {
    await model.close();
  });

  it("on 500 random rows, within 1e-4 relative", async () => {
    const rows = 500;
    const x = featureRows(spec, 11, rows);
    const got = await model.rawRul(x, rows);
    const want = mlpForward(spec, Float32Array.from(x), rows);
    // Outputs here are tens of cycles: relative to the output itself (floor 1 cycle).
    expectRelClose(got, want, 1e-4, () => 1, "random rows");
    const spread = Math.max(...want) - Math.min(...want);
    expect(spread, "the random rows must exercise the network, not one constant").toBeGreaterThan(3);
  });

  it("on adversarial rows (zeros, ±1e6, negatives), within 1e-4 relative", async () => {
    const f = spec.featureNames.length;
    const { rows, data } = adversarialRows(f);
    const got = await model.rawRul(data, rows);
    const want = mlpForward(spec, Float32Array.from(data), rows);
    // Outputs run to 1e8 here; float32 keeps them within a few 1e-6 of the float64 pass.
    expectRelClose(got, want, 1e-4, () => 1, "adversarial rows");
    expect(got.every(Number.isFinite)).toBe(true);
    // predict() keeps every output in [0, rulCap] with a probability in [0, 1].
    for (const p of await model.predict(data, rows)) {
      expect(p.rul_cycles).toBeGreaterThanOrEqual(0);
      expect(p.rul_cycles).toBeLessThanOrEqual(125);
      expect(p.failure_probability).toBeGreaterThanOrEqual(0);
      expect(p.failure_probability).toBeLessThanOrEqual(1);
      expect(p.time_to_failure_hours).toBeCloseTo(p.rul_cycles * 1.5, 9);
    }
  });

  it("predict: clipped RUL, Φ((H − r̂)/σ) and hours from the same r̂", async () => {
    const rows = 50;
    const x = featureRows(spec, 12, rows);
    const raw = await model.rawRul(x, rows);
    const predictions = await model.predict(x, rows);
    predictions.forEach((p, i) => {
      const r = Math.min(125, Math.max(0, raw[i]));
      expect(p.rul_cycles).toBe(r);
      expect(p.failure_probability).toBeCloseTo(normalCdf((30 - r) / 17.25), 12);
      expect(p.time_to_failure_hours).toBe(r * 1.5);
    });
    expect(await model.predict(new Float64Array(0), 0)).toEqual([]);
    // A row with an undefined feature gets no prediction; the rows beside it are unaffected.
    const holes = x.slice(0, 3 * spec.featureNames.length);
    holes[spec.featureNames.length + 5] = NaN;
    const withHole = await model.predict(holes, 3);
    expect(withHole[1]).toEqual({ rul_cycles: NaN, failure_probability: NaN, time_to_failure_hours: NaN });
    expect(withHole[0]).toEqual(predictions[0]);
    expect(withHole[2]).toEqual(predictions[2]);
    await expect(model.predict(new Float64Array(5), 1)).rejects.toThrow(RangeError);
  });

  it("carries the metadata and the version from the file's hash", () => {
    const bytes = encodeRulModel(spec);
    expect(model.featureNames).toEqual(spec.featureNames);
    expect(model.window).toBe(30);
    expect(model.rulCap).toBe(125);
    expect(model.horizonCycles).toBe(30);
    expect(model.cycleHours).toBe(1.5);
    expect(model.residualSigma).toBe(17.25);
    expect(model.trainedOn).toBe("random weights (test)");
    expect(model.validationRmse).toBe(17.5);
    expect(model.modelVersion).toBe(`rul-mlp-${createHash("sha256").update(bytes).digest("hex").slice(0, 12)}`);
    expect(model.modelVersion).toMatch(/^rul-mlp-[0-9a-f]{12}$/);
  });

  it("is a valid ONNX model: opset 17, IR 8, input features [N,F], output rul [N,1]", () => {
    const m = onnx.ModelProto.decode(encodeRulModel(spec));
    expect(Number(m.irVersion)).toBe(8);
    expect(m.opsetImport.map((o) => [o.domain, Number(o.version)])).toEqual([["", 17]]);
    const g = m.graph as InstanceType<typeof onnx.GraphProto>;
    expect(g.input.map((i) => i.name)).toEqual(["features"]);
    expect(g.output.map((o) => o.name)).toEqual(["rul"]);
    expect(g.input[0].type!.tensorType!.shape!.dim!.map((d) => d.dimParam || Number(d.dimValue))).toEqual(["N", spec.featureNames.length]);
    expect(g.output[0].type!.tensorType!.shape!.dim!.map((d) => d.dimParam || Number(d.dimValue))).toEqual(["N", 1]);
    expect(g.node.slice(0, 2).map((n) => n.opType)).toEqual(["Sub", "Div"]);
  });
});

describe("FailureModel - loading", () => {
  const dir = mkdtempSync(join(tmpdir(), "lw-rul-model-"));

  it("loads from a file, and two loads of the same bytes agree", async () => {
    const spec = randomSpec(3, [8]);
    const path = join(dir, "m.onnx");
    writeFileSync(path, encodeRulModel(spec));
    const a = await FailureModel.load(path);
    const b = await FailureModel.fromBytes(encodeRulModel(spec), "again");
    expect(a.modelVersion).toBe(b.modelVersion);
    const x = featureRows(spec, 5, 20);
    expect(await a.rawRul(x, 20)).toEqual(await b.rawRul(x, 20));
    await a.close();
    await b.close();
    await expect(a.predict(x, 20)).rejects.toThrow(/closed/);
  });

  it("rejects a missing file, a file that is not ONNX, and an empty one with ModelLoadError", async () => {
    await expect(FailureModel.load(join(dir, "nope.onnx"))).rejects.toBeInstanceOf(ModelLoadError);
    const text = join(dir, "text.onnx");
    writeFileSync(text, "this is not a model\n");
    await expect(FailureModel.load(text)).rejects.toBeInstanceOf(ModelLoadError);
    await expect(FailureModel.fromBytes(new Uint8Array(0), "empty")).rejects.toBeInstanceOf(ModelLoadError);
    await expect(
      FailureModel.fromBytes(
        Uint8Array.from({ length: 256 }, (_, i) => (i * 37) & 255),
        "noise",
      ),
    ).rejects.toBeInstanceOf(ModelLoadError);
  });

  it("rejects a plain ONNX model without the linewatch metadata, naming the missing keys", async () => {
    const plain = onnx.ModelProto.decode(encodeRulModel(randomSpec(1, [4])));
    plain.metadataProps = plain.metadataProps.filter(
      (p) => p.key !== RUL_METADATA_KEYS.window && p.key !== RUL_METADATA_KEYS.residualSigma,
    );
    const bytes = onnx.ModelProto.encode(plain).finish();
    const error = await FailureModel.fromBytes(bytes, "plain.onnx").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelLoadError);
    expect(String(error)).toContain("linewatch.window");
    expect(String(error)).toContain("linewatch.residual_sigma");
    expect(String(error)).not.toContain("linewatch.features");
  });

  it("rejects invalid metadata values and a feature list that does not fit the graph", async () => {
    const edit = async (key: string, value: string) => {
      const m = onnx.ModelProto.decode(encodeRulModel(randomSpec(1, [4])));
      for (const p of m.metadataProps) if (p.key === key) p.value = value;
      return FailureModel.fromBytes(onnx.ModelProto.encode(m).finish(), `${key}=${value}`).catch((e: unknown) => e);
    };
    for (const [key, value] of [
      [RUL_METADATA_KEYS.window, "0"],
      [RUL_METADATA_KEYS.window, "thirty"],
      [RUL_METADATA_KEYS.residualSigma, "-1"],
      [RUL_METADATA_KEYS.cycleHours, ""],
      [RUL_METADATA_KEYS.features, "s2.mean"],
      [RUL_METADATA_KEYS.features, '["s2.mean"]'],
      [RUL_METADATA_KEYS.features, JSON.stringify(rulFeatureNames(FD001_INFORMATIVE_SENSORS).map((n, i) => (i === 3 ? "s99.mean" : n)))],
      [RUL_METADATA_KEYS.features, JSON.stringify(rulFeatureNames(FD001_INFORMATIVE_SENSORS).map((n, i) => (i === 3 ? "s2.ewma" : n)))],
    ]) {
      const e = await edit(key, value);
      expect(e, `${key}=${value}`).toBeInstanceOf(ModelLoadError);
      expect(String(e)).toContain(key);
    }
  });
});

describe("failure probability", () => {
  it("Φ matches tabulated values of the standard normal", () => {
    const table: Array<[number, number]> = [
      [0, 0.5],
      [1, 0.8413447460685429],
      [-1, 0.15865525393145707],
      [1.959963984540054, 0.975],
      [-2.5758293035489, 0.005],
      [3, 0.9986501019683699],
      [-5, 2.866515718791939e-7],
      [-10, 7.619853024160527e-24],
      [8.5, 1],
    ];
    for (const [z, p] of table) expect(Math.abs(normalCdf(z) - p), `Φ(${z})`).toBeLessThanOrEqual(1e-12 * p);
    // Both sides of the switch from the series to the continued fraction.
    expect(Math.abs(erfc(2.5) - 4.069520174449589e-4) / 4.07e-4).toBeLessThan(1e-12);
    expect(Math.abs(erfc(2.4999999) - 4.069520174449589e-4) / 4.07e-4).toBeLessThan(1e-6);
  });

  it("is Φ((H − r̂)/σ), 1/2 at r̂ = H, in [0, 1] and non-increasing in r̂", () => {
    const H = 30;
    const sigma = 17;
    expect(failureProbability(H, H, sigma)).toBe(0.5);
    expect(failureProbability(H - sigma, H, sigma)).toBeCloseTo(0.8413447460685429, 14);
    expect(failureProbability(H + 2 * sigma, H, sigma)).toBeCloseTo(0.022750131948179195, 14);
    let previous = 1;
    for (let r = 0; r <= 125; r += 0.25) {
      const p = failureProbability(r, H, sigma);
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThanOrEqual(1);
      expect(p, `r̂ = ${r}`).toBeLessThanOrEqual(previous);
      previous = p;
    }
    expect(failureProbability(0, H, sigma)).toBeGreaterThan(0.95);
    expect(failureProbability(125, H, sigma)).toBeLessThan(1e-7);
  });
});
