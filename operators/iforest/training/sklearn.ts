/**
 * scikit-learn IsolationForest → linewatch model, from the JSON that
 * scripts/sklearn_iforest_export.py writes (its docstring describes the file).
 *
 * What makes the scores equal scikit-learn's −score_samples (sklearn/ensemble/_iforest.py,
 * checked against 1.2):
 * - tree_.apply sends x left when X[f] <= threshold, with X cast to float32 and the threshold a
 *   double: the model says "compare": "f32" and the kernel rounds x the same way;
 * - tree_.feature is an index into the tree's own feature subset: estimators_features_[i] maps it
 *   to the global column (the identity with max_features = 1.0);
 * - the path length is the number of edges to the leaf plus _average_path_length(n_node_samples
 *   at the leaf), whose c(n) is the same formula with np.euler_gamma; the normaliser is
 *   c(max_samples_), and c(max_samples_) = 0 scores 1;
 * - leaves have children −1 (TREE_LEAF) and feature −2; their threshold is not used.
 * offset_ (−0.5 for contamination "auto": an outlier is s > 0.5) is kept in the provenance.
 */
import { buildModel, IFOREST_NODES_MAX, IFOREST_TREES_MAX, ModelError, type IsolationForestModel } from "../model.js";

export const SKLEARN_EXPORT_FORMAT = "sklearn-iforest-export";
const TREE_LEAF = -1;

/** Converts a parsed export; a malformed export is a {@link ModelError} naming the field. */
export function importSklearnExport(json: unknown, source = "export.json"): IsolationForestModel {
  const fail = (field: string, message: string): never => {
    throw new ModelError(source, field, message);
  };
  if (json === null || typeof json !== "object" || Array.isArray(json)) return fail("(file)", "must be a JSON object");
  const o = json as Record<string, unknown>;
  if (o.format !== SKLEARN_EXPORT_FORMAT)
    fail("format", `must be "${SKLEARN_EXPORT_FORMAT}" (scripts/sklearn_iforest_export.py), got ${JSON.stringify(o.format)}`);
  if (o.version !== 1) fail("version", `this importer knows version 1, got ${JSON.stringify(o.version)}`);
  const nFeatures = o.n_features_in;
  if (typeof nFeatures !== "number" || !Number.isInteger(nFeatures) || nFeatures < 1)
    return fail("n_features_in", "must be a positive integer");
  if (typeof o.max_samples_ !== "number" || !Number.isInteger(o.max_samples_)) fail("max_samples_", "must be an integer");
  const names = o.feature_names;
  if (!Array.isArray(names) || names.length !== nFeatures || !names.every((n) => typeof n === "string")) {
    fail("feature_names", `must be ${nFeatures} strings`);
  }
  const estimators = o.estimators;
  if (!Array.isArray(estimators) || estimators.length < 1 || estimators.length > IFOREST_TREES_MAX) {
    return fail("estimators", `must be an array of 1..${IFOREST_TREES_MAX} trees`);
  }
  const nodes: NodeArrays = { feature: [], threshold: [], left: [], right: [], leafSize: [] };
  const treeOffsets = [0];
  estimators.forEach((e: unknown, t: number) => {
    appendTree(nodes, e, `estimators[${t}]`, fail);
    treeOffsets.push(nodes.feature.length);
  });
  // Everything else (global feature range, child indices, tree shape, sizes) is the model's own validation.
  return buildModel(
    {
      maxSamples: o.max_samples_ as number,
      nFeatures,
      featureNames: names as string[],
      compare: "f32",
      treeOffsets: Int32Array.from(treeOffsets),
      feature: Int32Array.from(nodes.feature),
      threshold: Float64Array.from(nodes.threshold),
      left: Int32Array.from(nodes.left),
      right: Int32Array.from(nodes.right),
      leafSize: Int32Array.from(nodes.leafSize),
      provenance: {
        source: "sklearn",
        sklearn_version: o.sklearn_version ?? null,
        offset: o.offset_ ?? null,
        params: o.params ?? null,
      },
    },
    source,
  );
}

// ---- internals ----

interface NodeArrays {
  feature: number[];
  threshold: number[];
  left: number[];
  right: number[];
  leafSize: number[];
}

/** Appends one exported tree_ in linewatch's node form: global features, leaves −1, sizes. */
function appendTree(nodes: NodeArrays, e: unknown, where: string, fail: (field: string, message: string) => never): void {
  if (e === null || typeof e !== "object") fail(where, "must be an object");
  const tree = e as Record<string, unknown>;
  const arrays = ["features", "feature", "threshold", "children_left", "children_right", "n_node_samples"] as const;
  for (const k of arrays) {
    const ok = k === "threshold" ? (v: unknown) => typeof v === "number" : (v: unknown) => Number.isInteger(v);
    if (!Array.isArray(tree[k]) || !(tree[k] as unknown[]).every(ok))
      fail(`${where}.${k}`, `must be an array of ${k === "threshold" ? "numbers" : "integers"}`);
  }
  const map = tree.features as number[];
  const f = tree.feature as number[];
  const count = f.length;
  if (nodes.feature.length + count > IFOREST_NODES_MAX) fail(where, `the forest passes ${IFOREST_NODES_MAX} nodes`);
  for (const k of arrays.slice(2))
    if ((tree[k] as number[]).length !== count) fail(`${where}.${k}`, `has ${(tree[k] as number[]).length} entries for ${count} nodes`);
  const cl = tree.children_left as number[];
  const cr = tree.children_right as number[];
  const th = tree.threshold as number[];
  const size = tree.n_node_samples as number[];
  for (let j = 0; j < count; j++) {
    if (cl[j] === TREE_LEAF) {
      if (cr[j] !== TREE_LEAF) fail(`${where}.children_right`, `node ${j} has a right child but no left one`);
      nodes.feature.push(-1);
      nodes.threshold.push(0);
      nodes.left.push(-1);
      nodes.right.push(-1);
    } else {
      const local = f[j];
      if (!(local >= 0 && local < map.length))
        fail(`${where}.feature`, `node ${j}: ${local} is not in 0..${map.length - 1} (estimators_features_)`);
      nodes.feature.push(map[local]);
      nodes.threshold.push(th[j]);
      nodes.left.push(cl[j]);
      nodes.right.push(cr[j]);
    }
    nodes.leafSize.push(size[j]);
  }
}
