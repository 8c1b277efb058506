/**
 * Writes the failure-prediction model as ONNX: a multilayer perceptron over raw rolling
 * features, with the standardisation inside the graph, and the metadata linewatch needs to
 * compute the features and read the output (operators/prediction/failure-model.ts loads it).
 *
 * Graph (opset 17, IR version 8):
 *   features float32 [N, F] ─ Sub(feature_mean) ─ Div(feature_std) ─ MatMul(W1) ─ Add(b1) ─ Relu ─ …
 *   … ─ MatMul(Wk) ─ Add(bk) ─▶ rul float32 [N, 1]   (no activation after the last layer)
 */
import { createRequire } from "node:module";
import type { onnx as OnnxTypes } from "onnx-proto";
import { referenceToText } from "../../drift/mod.js";
import { RUL_INPUT_NAME, RUL_METADATA_KEYS, RUL_OPTIONAL_METADATA_KEYS, RUL_OUTPUT_NAME, type RulMetadata } from "../model-format.js";

export { RUL_INPUT_NAME, RUL_METADATA_KEYS, RUL_OPTIONAL_METADATA_KEYS, RUL_OUTPUT_NAME };

/** protobufjs and the ONNX schema load on the first encode, not with every module that imports this one. */
let onnxModule: typeof OnnxTypes | undefined;
/** The ONNX protobuf schema (onnx-proto), loaded on first use; the quality model's exporter builds its graph with it too. */
export function onnxProto(): typeof OnnxTypes {
  onnxModule ??= (createRequire(import.meta.url)("onnx-proto") as { onnx: typeof OnnxTypes }).onnx;
  return onnxModule;
}

/** One fully connected layer: y = x·W + b, then ReLU when `relu`. W is row-major inputs × outputs. */
export interface DenseLayer {
  inputs: number;
  outputs: number;
  weights: Float32Array;
  bias: Float32Array;
  relu: boolean;
}

/** Everything an exported model holds: the network, the standardisation and the metadata. */
export interface RulModelSpec extends RulMetadata {
  /** Raw features are standardised as (x − featureMean) / featureStd inside the graph. */
  featureMean: Float32Array;
  featureStd: Float32Array;
  layers: readonly DenseLayer[];
}

/** The graph value {@link standardisedInput} ends in. */
export const STANDARDISED = "standardised";

/**
 * The start of an MLP graph: (input − feature_mean) / feature_std, the training set's
 * standardisation, with its two initializers. Further nodes take {@link STANDARDISED}.
 */
export function standardisedInput(
  input: string,
  featureMean: Float32Array,
  featureStd: Float32Array,
): { initializers: OnnxTypes.ITensorProto[]; nodes: OnnxTypes.INodeProto[] } {
  const f = featureMean.length;
  return {
    initializers: [floatTensor("feature_mean", [f], featureMean), floatTensor("feature_std", [f], featureStd)],
    nodes: [
      { opType: "Sub", input: [input, "feature_mean"], output: ["centred"], name: "centre" },
      { opType: "Div", input: ["centred", "feature_std"], output: [STANDARDISED], name: "scale" },
    ],
  };
}

export const RUL_OPSET = 17;
export const RUL_IR_VERSION = 8;

/** Encodes the model as ONNX bytes (a ModelProto). */
export function encodeRulModel(spec: RulModelSpec): Uint8Array {
  checkSpec(spec);
  const onnx = onnxProto();
  const f = spec.featureNames.length;
  const { initializers, nodes } = standardisedInput(RUL_INPUT_NAME, spec.featureMean, spec.featureStd);
  let x = STANDARDISED;
  spec.layers.forEach((layer, k) => {
    const last = k === spec.layers.length - 1;
    initializers.push(floatTensor(`W${k + 1}`, [layer.inputs, layer.outputs], layer.weights));
    initializers.push(floatTensor(`b${k + 1}`, [layer.outputs], layer.bias));
    const mm = `dense${k + 1}_matmul`;
    const added = last && !layer.relu ? RUL_OUTPUT_NAME : `dense${k + 1}_linear`;
    nodes.push({ opType: "MatMul", input: [x, `W${k + 1}`], output: [mm], name: `dense${k + 1}/MatMul` });
    nodes.push({ opType: "Add", input: [mm, `b${k + 1}`], output: [added], name: `dense${k + 1}/Add` });
    x = added;
    if (layer.relu) {
      const out = last ? RUL_OUTPUT_NAME : `dense${k + 1}_relu`;
      nodes.push({ opType: "Relu", input: [added], output: [out], name: `dense${k + 1}/Relu` });
      x = out;
    }
  });
  const model = onnx.ModelProto.create({
    irVersion: RUL_IR_VERSION,
    opsetImport: [{ domain: "", version: RUL_OPSET }],
    producerName: "linewatch",
    producerVersion: "0.1.0",
    docString: "Remaining useful life (cycles) from rolling sensor features; see linewatch docs/prediction.md, `linewatch predict`.",
    graph: {
      name: "rul_mlp",
      node: nodes,
      initializer: initializers,
      input: [valueInfo(RUL_INPUT_NAME, [null, f])],
      output: [valueInfo(RUL_OUTPUT_NAME, [null, 1])],
    },
    metadataProps: rulMetadata(spec),
  });
  return onnx.ModelProto.encode(model).finish();
}

/** The metadata_props entries of a spec, values as text (numbers in shortest round-trip form). */
export function rulMetadata(spec: RulModelSpec): Array<{ key: string; value: string }> {
  const k = RUL_METADATA_KEYS;
  return [
    { key: k.features, value: JSON.stringify(spec.featureNames) },
    { key: k.window, value: String(spec.window) },
    { key: k.rulCap, value: String(spec.rulCap) },
    { key: k.horizonCycles, value: String(spec.horizonCycles) },
    { key: k.cycleHours, value: String(spec.cycleHours) },
    { key: k.residualSigma, value: String(spec.residualSigma) },
    { key: k.trainedOn, value: spec.trainedOn },
    { key: k.validationRmse, value: String(spec.validationRmse) },
    ...(spec.referenceHistograms
      ? [{ key: RUL_OPTIONAL_METADATA_KEYS.referenceHistograms, value: referenceToText(spec.referenceHistograms) }]
      : []),
    ...(spec.trainingFingerprint ? [{ key: RUL_OPTIONAL_METADATA_KEYS.trainingFingerprint, value: spec.trainingFingerprint }] : []),
  ];
}

/**
 * The network's raw output for `rows` feature rows (row-major), computed in float64 from the
 * float32 parameters the graph holds: the reference the ONNX runtime is checked against, and
 * the forward pass training evaluates with.
 */
export function mlpForward(
  spec: Pick<RulModelSpec, "featureMean" | "featureStd" | "layers">,
  features: ArrayLike<number>,
  rows: number,
): Float64Array {
  const f = spec.featureMean.length;
  let act = new Float64Array(rows * f);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < f; j++) act[r * f + j] = (features[r * f + j] - spec.featureMean[j]) / spec.featureStd[j];
  }
  let width = f;
  for (const layer of spec.layers) {
    const wo = layer.outputs;
    const next = new Float64Array(rows * wo);
    for (let r = 0; r < rows; r++) {
      for (let k = 0; k < wo; k++) next[r * wo + k] = layer.bias[k];
      for (let i = 0; i < width; i++) {
        const a = act[r * width + i];
        if (a === 0) continue;
        for (let k = 0; k < wo; k++) next[r * wo + k] += a * layer.weights[i * wo + k];
      }
      if (layer.relu) for (let k = 0; k < wo; k++) if (next[r * wo + k] < 0) next[r * wo + k] = 0;
    }
    act = next;
    width = wo;
  }
  return act;
}

function checkSpec(spec: RulModelSpec): void {
  const f = spec.featureNames.length;
  if (f === 0) throw new RangeError("a RUL model needs at least one feature");
  if (spec.featureMean.length !== f || spec.featureStd.length !== f) {
    throw new RangeError(`feature mean/std have ${spec.featureMean.length}/${spec.featureStd.length} entries for ${f} features`);
  }
  if (spec.layers.length === 0) throw new RangeError("a RUL model needs at least one layer");
  let width = f;
  spec.layers.forEach((l, k) => {
    if (l.inputs !== width) throw new RangeError(`layer ${k + 1} takes ${l.inputs} inputs, the previous layer gives ${width}`);
    if (l.weights.length !== l.inputs * l.outputs || l.bias.length !== l.outputs) {
      throw new RangeError(`layer ${k + 1}: ${l.weights.length} weights and ${l.bias.length} biases for ${l.inputs}×${l.outputs}`);
    }
    width = l.outputs;
  });
  if (width !== 1) throw new RangeError(`the last layer gives ${width} outputs, a RUL model gives 1`);
}

const FLOAT = 1; // TensorProto.DataType.FLOAT

/** A float32 initializer tensor (raw little-endian data). */
export function floatTensor(name: string, dims: number[], values: Float32Array): OnnxTypes.ITensorProto {
  return {
    name,
    dims,
    dataType: FLOAT,
    rawData: new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength)),
  };
}

/** A float tensor value; a null dimension is the batch dimension "N". */
export function valueInfo(name: string, dims: Array<number | null>): OnnxTypes.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => (d === null ? { dimParam: "N" } : { dimValue: d })) } } },
  };
}
