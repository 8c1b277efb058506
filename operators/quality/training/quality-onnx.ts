/**
 * Writes the quality model as ONNX: an MLP trunk over the batch features, with the
 * standardisation inside the graph, and two heads — the first-pass yield (linear) and the
 * per-category defect probabilities (sigmoid) — with the metadata ../quality-model.ts reads.
 * Built with the failure model's ONNX pieces (operators/prediction/training/onnx-export.ts).
 *
 * Graph (opset 17, IR version 8):
 *   features [N, F] ─ Sub(feature_mean) ─ Div(feature_std) ─ MatMul(W1) ─ Add(b1) ─ Relu ─ … ─ h [N, H]
 *   h ─ MatMul(Wy) ─ Add(by) ─▶ yield [N, 1]
 *   h ─ MatMul(Wd) ─ Add(bd) ─ Sigmoid ─▶ defect_probability [N, 4]
 * In the spec the heads are one last layer of 1 + 4 columns (yield, then the four logits), as
 * {@link qualityForward} evaluates it; the graph splits that layer's columns into the two heads.
 */
import {
  type DenseLayer,
  floatTensor,
  mlpForward,
  onnxProto,
  RUL_IR_VERSION,
  RUL_OPSET,
  STANDARDISED,
  standardisedInput,
  valueInfo,
} from "../../prediction/training/onnx-export.js";
import { DEFECT_CATEGORIES } from "../batch-record.js";
import {
  QUALITY_DEFECT_OUTPUT,
  QUALITY_INPUT_NAME,
  QUALITY_METADATA_KEYS,
  QUALITY_MODEL_KIND,
  QUALITY_YIELD_OUTPUT,
  type QualityMetadata,
} from "../model-format.js";

/** Everything an exported quality model holds. */
export interface QualityModelSpec extends QualityMetadata {
  featureMean: Float32Array;
  featureStd: Float32Array;
  /** Hidden layers (ReLU), then the head layer of 1 + 4 outputs (no activation). */
  layers: readonly DenseLayer[];
}

export const QUALITY_HEAD_OUTPUTS = 1 + DEFECT_CATEGORIES.length;

/** Encodes the model as ONNX bytes (a ModelProto). */
export function encodeQualityModel(spec: QualityModelSpec): Uint8Array {
  checkSpec(spec);
  const onnx = onnxProto();
  const f = spec.featureNames.length;
  const { initializers, nodes } = standardisedInput(QUALITY_INPUT_NAME, spec.featureMean, spec.featureStd);
  let x = STANDARDISED;
  const hidden = spec.layers.slice(0, -1);
  hidden.forEach((layer, k) => {
    initializers.push(floatTensor(`W${k + 1}`, [layer.inputs, layer.outputs], layer.weights));
    initializers.push(floatTensor(`b${k + 1}`, [layer.outputs], layer.bias));
    nodes.push({ opType: "MatMul", input: [x, `W${k + 1}`], output: [`dense${k + 1}_matmul`], name: `dense${k + 1}/MatMul` });
    nodes.push({
      opType: "Add",
      input: [`dense${k + 1}_matmul`, `b${k + 1}`],
      output: [`dense${k + 1}_linear`],
      name: `dense${k + 1}/Add`,
    });
    nodes.push({ opType: "Relu", input: [`dense${k + 1}_linear`], output: [`dense${k + 1}_relu`], name: `dense${k + 1}/Relu` });
    x = `dense${k + 1}_relu`;
  });
  const head = spec.layers[spec.layers.length - 1];
  const { yieldW, yieldB, defectW, defectB } = splitHead(head);
  const h = head.inputs;
  const k = DEFECT_CATEGORIES.length;
  initializers.push(floatTensor("Wy", [h, 1], yieldW), floatTensor("by", [1], yieldB));
  initializers.push(floatTensor("Wd", [h, k], defectW), floatTensor("bd", [k], defectB));
  nodes.push({ opType: "MatMul", input: [x, "Wy"], output: ["yield_matmul"], name: "yield/MatMul" });
  nodes.push({ opType: "Add", input: ["yield_matmul", "by"], output: [QUALITY_YIELD_OUTPUT], name: "yield/Add" });
  nodes.push({ opType: "MatMul", input: [x, "Wd"], output: ["defect_matmul"], name: "defect/MatMul" });
  nodes.push({ opType: "Add", input: ["defect_matmul", "bd"], output: ["defect_logit"], name: "defect/Add" });
  nodes.push({ opType: "Sigmoid", input: ["defect_logit"], output: [QUALITY_DEFECT_OUTPUT], name: "defect/Sigmoid" });
  const model = onnx.ModelProto.create({
    irVersion: RUL_IR_VERSION,
    opsetImport: [{ domain: "", version: RUL_OPSET }],
    producerName: "linewatch",
    producerVersion: "0.1.0",
    docString: "First-pass yield and per-category defect probability of a batch from its process features; see linewatch docs/quality.md.",
    graph: {
      name: "quality_mlp",
      node: nodes,
      initializer: initializers,
      input: [valueInfo(QUALITY_INPUT_NAME, [null, f])],
      output: [valueInfo(QUALITY_YIELD_OUTPUT, [null, 1]), valueInfo(QUALITY_DEFECT_OUTPUT, [null, k])],
    },
    metadataProps: qualityMetadata(spec),
  });
  return onnx.ModelProto.encode(model).finish();
}

/**
 * The model's outputs for `rows` feature rows in plain TypeScript (float64 from the float32
 * parameters the graph holds): yield per row and the defect probabilities, rows × 4 — the
 * reference onnxruntime is checked against, and what training evaluates with.
 */
export function qualityForward(
  spec: Pick<QualityModelSpec, "featureMean" | "featureStd" | "layers">,
  features: ArrayLike<number>,
  rows: number,
): { yield: Float64Array; defects: Float64Array } {
  const raw = mlpForward(spec, features, rows);
  const k = DEFECT_CATEGORIES.length;
  const y = new Float64Array(rows);
  const d = new Float64Array(rows * k);
  for (let r = 0; r < rows; r++) {
    y[r] = raw[r * QUALITY_HEAD_OUTPUTS];
    for (let c = 0; c < k; c++) d[r * k + c] = 1 / (1 + Math.exp(-raw[r * QUALITY_HEAD_OUTPUTS + 1 + c]));
  }
  return { yield: y, defects: d };
}

/** The metadata_props entries of a spec. */
export function qualityMetadata(spec: QualityModelSpec): Array<{ key: string; value: string }> {
  const k = QUALITY_METADATA_KEYS;
  return [
    { key: k.kind, value: QUALITY_MODEL_KIND },
    { key: k.features, value: JSON.stringify(spec.featureNames) },
    { key: k.categories, value: JSON.stringify(spec.categories) },
    { key: k.trainYieldMean, value: String(spec.trainYieldMean) },
    { key: k.trainedOn, value: spec.trainedOn },
    { key: k.validationYieldMae, value: String(spec.validationYieldMae) },
  ];
}

function splitHead(head: DenseLayer): { yieldW: Float32Array; yieldB: Float32Array; defectW: Float32Array; defectB: Float32Array } {
  const h = head.inputs;
  const o = QUALITY_HEAD_OUTPUTS;
  const k = o - 1;
  const yieldW = new Float32Array(h);
  const defectW = new Float32Array(h * k);
  for (let i = 0; i < h; i++) {
    yieldW[i] = head.weights[i * o];
    for (let c = 0; c < k; c++) defectW[i * k + c] = head.weights[i * o + 1 + c];
  }
  return { yieldW, yieldB: head.bias.slice(0, 1), defectW, defectB: head.bias.slice(1) };
}

function checkSpec(spec: QualityModelSpec): void {
  const f = spec.featureNames.length;
  if (f === 0) throw new RangeError("a quality model needs at least one feature");
  if (spec.featureMean.length !== f || spec.featureStd.length !== f)
    throw new RangeError(`feature mean/std have ${spec.featureMean.length}/${spec.featureStd.length} entries for ${f} features`);
  if (spec.layers.length < 2) throw new RangeError("a quality model needs a hidden layer and the head");
  let width = f;
  spec.layers.forEach((l, k) => {
    const last = k === spec.layers.length - 1;
    if (l.inputs !== width) throw new RangeError(`layer ${k + 1} takes ${l.inputs} inputs, the previous layer gives ${width}`);
    if (l.weights.length !== l.inputs * l.outputs || l.bias.length !== l.outputs)
      throw new RangeError(`layer ${k + 1}: ${l.weights.length} weights and ${l.bias.length} biases for ${l.inputs}×${l.outputs}`);
    if (l.relu === last) throw new RangeError(`layer ${k + 1}: hidden layers have ReLU, the head has none`);
    width = l.outputs;
  });
  if (width !== QUALITY_HEAD_OUTPUTS)
    throw new RangeError(`the head gives ${width} outputs, a quality model gives ${QUALITY_HEAD_OUTPUTS}`);
}
