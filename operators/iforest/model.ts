/**
 * The isolation-forest model: its type, its JSON file (`model.json`), its validation and its
 * content hash. Training is in iforest-train.ts, the import of scikit-learn forests in
 * iforest-sklearn.ts, the binary block the kernel reads in iforest-layout.ts.
 *
 * ## model.json, field by field
 *
 * ```
 * {
 *   "format": "linewatch-iforest",   constant
 *   "version": 1,                    format version; readers reject others
 *   "hash": "9f…",                   SHA-256 (hex) of the canonical serialisation below; every score
 *                                    carries it; a file whose hash does not match is rejected
 *   "max_samples": 256,              ψ: rows each tree was grown on; the normaliser is c(ψ)
 *   "n_features": 8,                 features a row must provide, in this order
 *   "feature_names": ["a", …],       n_features distinct non-empty names (the CSV columns scored)
 *   "compare": "f64",                "f64": x <= threshold in double precision; "f32": x is rounded
 *                                    to float32 first (scikit-learn's trees, which cast X to float32)
 *   "tree_offsets": [0, 411, …],     trees + 1 entries: tree t's nodes are [tree_offsets[t],
 *                                    tree_offsets[t + 1]) of the node arrays; its root is the first
 *   "feature":   […],                per node: feature index in 0..n_features−1, or −1 at a leaf
 *   "threshold": […],                per node: split value (finite); x[feature] <= threshold goes left;
 *                                    not read at leaves (writers put 0)
 *   "left":      […],                per node: the left child's index within its tree (> the node's
 *                                    own index), −1 at a leaf
 *   "right":     […],                per node: the right child's index within its tree, −1 at a leaf
 *   "leaf_size": […],                per node: training rows that reached it (≥ 1; an internal
 *                                    node's is the sum of its children's); scoring reads it at leaves
 *   "provenance": {…},               how the model was made (trainer, seed, sklearn version, offset_);
 *                                    informational, not hashed
 *   "reference_histograms": {…}      optional: the training rows' histogram per feature, in
 *                                    feature_names order (operators/drift reference.ts JSON), that
 *                                    drift PSI is measured against; `iforest train` writes it, files
 *                                    without it (older ones, sklearn imports) load with PSI unavailable
 * }
 * ```
 *
 * The hash covers everything that decides a score, and the reference drift is judged against:
 * SHA-256 of JSON.stringify([format, version, max_samples, n_features, feature_names, compare,
 * tree_offsets, feature, threshold, left, right, leaf_size]) — with the reference histograms' JSON
 * appended as a 13th element when the file has them, so the hash of a file without them is what it
 * always was, and a changed reference cannot pass under the model's hash. JavaScript's shortest
 * round-trip number formatting makes that text a function of the values. Two files with the same
 * trees and reference have the same hash whatever their provenance says.
 *
 * Scores: s(x) = 2^(−E[h(x)] / c(ψ)) (Liu, Ting & Zhou, ICDM 2008), h = depth of x's leaf +
 * c(leaf size), c(n) = 2(ln(n − 1) + γ) − 2(n − 1)/n, c(2) = 1, c(n ≤ 1) = 0; in (0, 1], near 1
 * for anomalies; equal to −score_samples of scikit-learn for imported models.
 */
import { createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { ModelLoadError } from "../../engine/core/mod.js";
import { type ReferenceHistograms, referenceFromJson, referenceMismatch, referenceToJson } from "../drift/mod.js";

export const IFOREST_FORMAT = "linewatch-iforest";
export const IFOREST_FORMAT_VERSION = 1;
export type IforestCompare = "f64" | "f32";

/** Limits a model must stay within (a model is read into shared memory whole). */
export const IFOREST_TREES_MAX = 65_536;
export const IFOREST_FEATURES_MAX = 4096;
/** Nodes over all trees: 2^22 nodes are 96 MiB in kernel memory. */
export const IFOREST_NODES_MAX = 1 << 22;
export const IFOREST_MAX_SAMPLES_MAX = 1 << 24;

/** Euler–Mascheroni constant, as numpy's np.euler_gamma (the issue quotes 0.5772156649). */
export const EULER_GAMMA = 0.5772156649015329;

export interface IforestProvenance {
  /** "linewatch" (iforest train) or "sklearn" (iforest import-sklearn). */
  source: string;
  [key: string]: unknown;
}

/** A validated forest; node arrays are the trees' nodes concatenated (see the file comment). */
export interface IsolationForestModel {
  readonly version: number;
  /** SHA-256 hex of the canonical serialisation. */
  readonly hash: string;
  readonly maxSamples: number;
  readonly nFeatures: number;
  readonly featureNames: readonly string[];
  readonly compare: IforestCompare;
  /** trees + 1 entries. */
  readonly treeOffsets: Int32Array;
  readonly feature: Int32Array;
  readonly threshold: Float64Array;
  /** Child indices within the tree; −1 at leaves. */
  readonly left: Int32Array;
  readonly right: Int32Array;
  readonly leafSize: Int32Array;
  readonly provenance: IforestProvenance;
  /**
   * The training rows' histogram per feature (featureNames order) drift PSI is measured against;
   * absent for files written without it (older files, scikit-learn imports): PSI unavailable.
   */
  readonly referenceHistograms?: ReferenceHistograms;
}

/** The arrays and settings of a forest before validation and hashing. */
export type IsolationForestParts = Omit<IsolationForestModel, "hash" | "version">;

/**
 * A forest model file or object that breaks the format: says which field and, for nodes, which
 * tree and node. A {@link ModelLoadError} like any model linewatch cannot run.
 */
export class ModelError extends ModelLoadError {
  constructor(
    source: string,
    readonly field: string,
    message: string,
  ) {
    super(source, `${field}: ${message}`);
  }
}

/** c(n), the average path length of an unsuccessful BST search over n keys (Liu et al. 2008, eq. 1). */
export function averagePathLength(n: number): number {
  if (n <= 1) return 0;
  if (n === 2) return 1;
  return 2.0 * (Math.log(n - 1.0) + EULER_GAMMA) - (2.0 * (n - 1.0)) / n;
}

export function treeCount(model: Pick<IsolationForestModel, "treeOffsets">): number {
  return model.treeOffsets.length - 1;
}

/** Checks the parts (see {@link validateForestParts}), hashes them and returns the model. */
export function buildModel(parts: IsolationForestParts, source = "model"): IsolationForestModel {
  validateForestParts(parts, source);
  return { ...parts, version: IFOREST_FORMAT_VERSION, hash: modelHash(parts) };
}

/** SHA-256 hex of the canonical serialisation of what decides a score. */
export function modelHash(m: IsolationForestParts): string {
  const hashed: unknown[] = [
    IFOREST_FORMAT,
    IFOREST_FORMAT_VERSION,
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
  ];
  if (m.referenceHistograms !== undefined) hashed.push(referenceToJson(m.referenceHistograms));
  const canonical = JSON.stringify(hashed);
  return createHash("sha256").update(canonical).digest("hex");
}

/** The model as the text of model.json. */
export function modelToJson(m: IsolationForestModel): string {
  const body = {
    format: IFOREST_FORMAT,
    version: m.version,
    hash: m.hash,
    max_samples: m.maxSamples,
    n_features: m.nFeatures,
    feature_names: m.featureNames,
    compare: m.compare,
    tree_offsets: Array.from(m.treeOffsets),
    feature: Array.from(m.feature),
    threshold: Array.from(m.threshold),
    left: Array.from(m.left),
    right: Array.from(m.right),
    leaf_size: Array.from(m.leafSize),
    provenance: m.provenance,
    ...(m.referenceHistograms === undefined ? {} : { reference_histograms: referenceToJson(m.referenceHistograms) }),
  };
  // One array per line keeps the file diffable and quick to write; numbers round-trip exactly.
  return (
    "{\n" +
    Object.entries(body)
      .map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)}`)
      .join(",\n") +
    "\n}\n"
  );
}

/** Parses and validates model.json text; any defect is a {@link ModelError}. */
export function parseModel(text: string, source = "model.json"): IsolationForestModel {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new ModelError(source, "(file)", `not JSON: ${(cause as Error).message}`);
  }
  return modelFromJson(json, source);
}

export async function readModelFile(path: string): Promise<IsolationForestModel> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (cause) {
    throw new ModelError(path, "(file)", `cannot read: ${(cause as Error).message}`);
  }
  return parseModel(text, path);
}

export async function writeModelFile(path: string, model: IsolationForestModel): Promise<void> {
  await writeFile(path, modelToJson(model));
}

/** Validates a parsed model.json object (types, lengths, indices, hash) into a model. */
export function modelFromJson(json: unknown, source = "model.json"): IsolationForestModel {
  const fail: Fail = (field, message) => {
    throw new ModelError(source, field, message);
  };
  if (json === null || typeof json !== "object" || Array.isArray(json)) fail("(file)", "a model must be a JSON object");
  const o = json as Record<string, unknown>;
  if (o.format !== IFOREST_FORMAT) fail("format", `must be "${IFOREST_FORMAT}", got ${JSON.stringify(o.format)}`);
  if (o.version !== IFOREST_FORMAT_VERSION)
    fail("version", `this reader knows version ${IFOREST_FORMAT_VERSION}, got ${JSON.stringify(o.version)}`);
  if (typeof o.hash !== "string" || !/^[0-9a-f]{64}$/.test(o.hash)) fail("hash", "must be 64 lowercase hex digits (SHA-256)");
  if (o.compare !== "f64" && o.compare !== "f32") fail("compare", `must be "f64" or "f32", got ${JSON.stringify(o.compare)}`);
  if (!Array.isArray(o.feature_names) || !o.feature_names.every((n) => typeof n === "string"))
    fail("feature_names", "must be an array of strings");
  const provenance = o.provenance ?? { source: "unknown" };
  if (provenance === null || typeof provenance !== "object" || Array.isArray(provenance)) fail("provenance", "must be an object");
  const nodes = Array.isArray(o.feature) ? o.feature.length : 0;
  const parts: IsolationForestParts = {
    maxSamples: integerField(o.max_samples, "max_samples", fail),
    nFeatures: integerField(o.n_features, "n_features", fail),
    featureNames: o.feature_names as string[],
    compare: o.compare as IforestCompare,
    treeOffsets: intArray(o.tree_offsets, "tree_offsets", IFOREST_TREES_MAX + 1, fail),
    feature: intArray(o.feature, "feature", IFOREST_NODES_MAX, fail),
    threshold: floatArray(o.threshold, "threshold", nodes, fail),
    left: intArray(o.left, "left", IFOREST_NODES_MAX, fail),
    right: intArray(o.right, "right", IFOREST_NODES_MAX, fail),
    leafSize: intArray(o.leaf_size, "leaf_size", IFOREST_NODES_MAX, fail),
    provenance: provenance as IforestProvenance,
    ...(o.reference_histograms === undefined ? {} : { referenceHistograms: referenceFromJson(o.reference_histograms, source) }),
  };
  const model = buildModel(parts, source);
  if (model.hash !== o.hash)
    fail("hash", `the file says ${o.hash} but its content hashes to ${model.hash}: the file was changed or damaged`);
  return model;
}

/**
 * Every structural rule of the format: sizes within the limits, arrays of equal length, tree
 * offsets increasing from 0 to the node count, and in each tree: node 0 is the root, every
 * other node is the child of exactly one node with a smaller index (so each tree is a tree,
 * with no cycles or orphans), features in range, thresholds finite, leaf sizes ≥ 1 and summing.
 */
export function validateForestParts(m: IsolationForestParts, source = "model"): void {
  const fail: Fail = (field, message) => {
    throw new ModelError(source, field, message);
  };
  if (!Number.isInteger(m.maxSamples) || m.maxSamples < 1 || m.maxSamples > IFOREST_MAX_SAMPLES_MAX) {
    fail("max_samples", `must be an integer in 1..${IFOREST_MAX_SAMPLES_MAX}, got ${m.maxSamples}`);
  }
  if (!Number.isInteger(m.nFeatures) || m.nFeatures < 1 || m.nFeatures > IFOREST_FEATURES_MAX) {
    fail("n_features", `must be an integer in 1..${IFOREST_FEATURES_MAX}, got ${m.nFeatures}`);
  }
  if (m.featureNames.length !== m.nFeatures) fail("feature_names", `has ${m.featureNames.length} names for ${m.nFeatures} features`);
  const seen = new Set<string>();
  for (const name of m.featureNames) {
    if (name.length === 0) fail("feature_names", "a name is empty");
    if (seen.has(name)) fail("feature_names", `"${name}" appears twice`);
    seen.add(name);
  }
  if (m.compare !== "f64" && m.compare !== "f32") fail("compare", `must be "f64" or "f32"`);
  const mismatch = m.referenceHistograms === undefined ? null : referenceMismatch(m.referenceHistograms, m.featureNames);
  if (mismatch !== null) fail("reference_histograms", mismatch);
  const nodes = m.feature.length;
  if (nodes < 1 || nodes > IFOREST_NODES_MAX) fail("feature", `${nodes} nodes, outside 1..${IFOREST_NODES_MAX}`);
  for (const [name, arr] of [
    ["threshold", m.threshold],
    ["left", m.left],
    ["right", m.right],
    ["leaf_size", m.leafSize],
  ] as const) {
    if (arr.length !== nodes) fail(name, `has ${arr.length} entries where feature has ${nodes}`);
  }
  const trees = m.treeOffsets.length - 1;
  if (trees < 1 || trees > IFOREST_TREES_MAX) fail("tree_offsets", `${trees} trees, outside 1..${IFOREST_TREES_MAX}`);
  if (m.treeOffsets[0] !== 0) fail("tree_offsets", "must start at 0");
  if (m.treeOffsets[trees] !== nodes) fail("tree_offsets", `must end at the node count ${nodes}, ends at ${m.treeOffsets[trees]}`);
  const hasParent = new Uint8Array(nodes);
  for (let t = 0; t < trees; t++) {
    const base = m.treeOffsets[t];
    const size = m.treeOffsets[t + 1] - base;
    if (size < 1) fail("tree_offsets", `tree ${t} has no nodes`);
    if (size > 2 * m.maxSamples - 1)
      fail("tree_offsets", `tree ${t} has ${size} nodes, more than 2·max_samples − 1 = ${2 * m.maxSamples - 1}`);
    for (let j = 0; j < size; j++) checkNode(m, t, base, size, j, hasParent, fail);
    for (let j = 1; j < size; j++) if (hasParent[base + j] === 0) fail("left", `tree ${t} node ${j} is not the child of any node`);
    if (m.leafSize[base] > m.maxSamples)
      fail("leaf_size", `tree ${t} root has ${m.leafSize[base]} rows, more than max_samples ${m.maxSamples}`);
  }
}

// ---- internals ----

type Fail = (field: string, message: string) => never;

function checkNode(m: IsolationForestParts, t: number, base: number, size: number, j: number, hasParent: Uint8Array, fail: Fail): void {
  const i = base + j;
  const where = `tree ${t} node ${j}`;
  const l = m.left[i];
  const r = m.right[i];
  if (!Number.isInteger(m.leafSize[i]) || m.leafSize[i] < 1) fail("leaf_size", `${where}: must be an integer ≥ 1, got ${m.leafSize[i]}`);
  if (!Number.isFinite(m.threshold[i])) fail("threshold", `${where}: must be finite, got ${m.threshold[i]}`);
  if (m.feature[i] === -1) {
    if (l !== -1 || r !== -1) fail("left", `${where} is a leaf (feature −1) but has children ${l}, ${r}`);
    return;
  }
  if (!(m.feature[i] >= 0 && m.feature[i] < m.nFeatures))
    fail("feature", `${where}: ${m.feature[i]} is not −1 or in 0..${m.nFeatures - 1}`);
  for (const [field, c] of [
    ["left", l],
    ["right", r],
  ] as const) {
    if (!(c > j && c < size)) fail(field, `${where}: child ${c} is not in ${j + 1}..${size - 1}`);
    if (hasParent[base + c] !== 0) fail(field, `${where}: node ${c} already has a parent`);
    hasParent[base + c] = 1;
  }
  if (m.leafSize[base + l] + m.leafSize[base + r] !== m.leafSize[i]) {
    fail("leaf_size", `${where}: children hold ${m.leafSize[base + l]} + ${m.leafSize[base + r]} rows, the node ${m.leafSize[i]}`);
  }
}

function integerField(v: unknown, field: string, fail: Fail): number {
  if (typeof v !== "number" || !Number.isInteger(v)) fail(field, `must be an integer, got ${JSON.stringify(v)}`);
  return v as number;
}

function intArray(v: unknown, field: string, lengthMax: number, fail: Fail): Int32Array {
  if (!Array.isArray(v)) fail(field, "must be an array");
  const a = v as unknown[];
  if (a.length > lengthMax) fail(field, `has ${a.length} entries, more than ${lengthMax}`);
  const out = new Int32Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    if (typeof x !== "number" || !Number.isInteger(x) || x < -1 || x > 0x7fffffff)
      fail(field, `entry ${i} is not an integer ≥ −1: ${JSON.stringify(x)}`);
    out[i] = x as number;
  }
  return out;
}

function floatArray(v: unknown, field: string, length: number, fail: Fail): Float64Array {
  if (!Array.isArray(v)) fail(field, "must be an array");
  const a = v as unknown[];
  if (a.length !== length) fail(field, `has ${a.length} entries where feature has ${length}`);
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    if (typeof x !== "number" || !Number.isFinite(x)) fail(field, `entry ${i} is not a finite number: ${JSON.stringify(x)}`);
    out[i] = x as number;
  }
  return out;
}
