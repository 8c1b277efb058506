/**
 * The quality model (operators/quality): trained on simulated batches it is deterministic per
 * seed, its ONNX file run by onnxruntime-node gives what a plain TypeScript forward pass of the
 * same weights gives, and on held-out batches it beats the trivial baseline (the training mean
 * yield) — at the batch's end and halfway through.
 */
import { describe, expect, it } from "vitest";
import { BatchSimulator } from "../connectors/sim/batch-simulator.js";
import { ModelLoadError } from "../engine/core/errors.js";
import { DEFECT_CATEGORIES, type ProcessRecord, QualityModel, type QualityRecord } from "../operators/quality/mod.js";
import { batchHistories, buildQualityDataset, type BatchHistory } from "../operators/quality/training/quality-dataset.js";
import { evaluateQuality } from "../operators/quality/training/quality-eval.js";
import { encodeQualityModel, qualityForward } from "../operators/quality/training/quality-onnx.js";
import { DEFAULT_QUALITY_TRAIN_OPTIONS, trainQualityModel } from "../operators/quality/training/quality-train.js";
import { encodeRulModel } from "../operators/prediction/training/onnx-export.js";
import { printFigures } from "./kit/figures.js";

function simulate(seed: number, batches: number): BatchHistory[] {
  const sim = new BatchSimulator({ seed, batches });
  const process: ProcessRecord[] = [];
  const quality: QualityRecord[] = [];
  for (let kind = sim.next(); kind !== null; kind = sim.next()) {
    if (kind === "process") process.push(structuredClone(sim.reading));
    else quality.push(sim.outcome as QualityRecord);
  }
  return batchHistories(process, quality);
}

const TRAIN = simulate(21, 300);
const HELD_OUT = simulate(22, 150);

describe("quality model", () => {
  it("training - the same seed writes the same bytes, another seed other bytes", () => {
    const small = TRAIN.slice(0, 60);
    const options = { ...DEFAULT_QUALITY_TRAIN_OPTIONS, epochs: 3 };
    const a = encodeQualityModel(trainQualityModel(small, options, "sim").spec);
    expect(encodeQualityModel(trainQualityModel(small, options, "sim").spec)).toEqual(a);
    expect(encodeQualityModel(trainQualityModel(small, { ...options, seed: 2 }, "sim").spec)).not.toEqual(a);
  });

  it("onnx - onnxruntime's outputs equal the TypeScript forward pass of the same weights", async () => {
    const trained = trainQualityModel(TRAIN.slice(0, 80), { ...DEFAULT_QUALITY_TRAIN_OPTIONS, epochs: 5 }, "sim");
    const model = await QualityModel.fromBytes(encodeQualityModel(trained.spec), "model.onnx");
    try {
      const data = buildQualityDataset(HELD_OUT.slice(0, 40), model.featureNames, [0.25, 0.5, 1]);
      const onnx = await model.rawOutputs(data.features, data.rows);
      const ts = qualityForward(trained.spec, data.features, data.rows);
      expect(onnx.yield.length).toBe(data.rows);
      for (let r = 0; r < data.rows; r++) {
        // float32 in the graph, float64 here from the same float32 weights: agreement to float32 rounding.
        expect(Math.abs(onnx.yield[r] - ts.yield[r])).toBeLessThan(1e-5);
        for (let c = 0; c < DEFECT_CATEGORIES.length; c++)
          expect(Math.abs(onnx.defects[r * 4 + c] - ts.defects[r * 4 + c])).toBeLessThan(1e-6);
      }
      const [p] = await model.predict(data.features.subarray(0, data.names.length), 1);
      expect(p.predicted_yield).toBeCloseTo(Math.min(1, Math.max(0, ts.yield[0])), 5);
      expect(p.predicted_defect_rate).toBeCloseTo(ts.defects[0] + ts.defects[1] + ts.defects[2] + ts.defects[3], 5);
      expect(p.quality_score).toBeCloseTo(100 * p.predicted_yield, 9);
    } finally {
      await model.close();
    }
  });

  it("accuracy - on held-out batches the model beats the mean-yield baseline at the end and halfway", () => {
    const trained = trainQualityModel(TRAIN, { ...DEFAULT_QUALITY_TRAIN_OPTIONS, holdout: 0 }, "sim");
    const data = buildQualityDataset(HELD_OUT, trained.spec.featureNames, [0.5, 1]);
    const predicted = qualityForward(trained.spec, data.features, data.rows);
    const baseline = new Float64Array(data.rows).fill(trained.spec.trainYieldMean);
    const figures: Record<string, number> = {};
    for (const fraction of [1, 0.5]) {
      const model = evaluateQuality(data, predicted.yield, predicted.defects, fraction);
      const mean = evaluateQuality(data, baseline, null, fraction);
      figures[`mae_${fraction}`] = model.yieldMae;
      figures[`baseline_mae_${fraction}`] = mean.yieldMae;
      figures[`auc_${fraction}`] = model.lowYieldAuc;
      expect(model.batches).toBe(150);
      expect(model.yieldMae).toBeLessThan(0.95 * mean.yieldMae);
      expect(model.yieldRmse).toBeLessThan(mean.yieldRmse);
      expect(model.lowYieldAuc).toBeGreaterThan(0.7);
    }
    printFigures(`quality model vs mean yield, 300 training → 150 held-out batches: ${JSON.stringify(figures)}`);
  });

  it("loading - a failure model or a non-ONNX file is a ModelLoadError", async () => {
    await expect(QualityModel.fromBytes(new Uint8Array([1, 2, 3, 4]), "junk.onnx")).rejects.toThrow(ModelLoadError);
    const rul = encodeRulModel({
      featureNames: ["s2.mean"],
      window: 30,
      rulCap: 125,
      horizonCycles: 30,
      cycleHours: 1,
      residualSigma: 10,
      trainedOn: "test",
      validationRmse: 15,
      featureMean: new Float32Array([0]),
      featureStd: new Float32Array([1]),
      layers: [{ inputs: 1, outputs: 1, weights: new Float32Array([1]), bias: new Float32Array([0]), relu: false }],
    });
    await expect(QualityModel.fromBytes(rul, "rul.onnx")).rejects.toThrow(/not a quality model/);
  });
});
