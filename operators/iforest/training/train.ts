/**
 * Growing an isolation forest: the algorithm of Liu, Ting & Zhou, "Isolation Forest", ICDM 2008
 * (Algorithms 1 and 2), deterministic for a seed.
 *
 * - Each of t trees is grown on ψ rows drawn without replacement (all rows when there are fewer;
 *   the model's max_samples is then the row count, as in scikit-learn).
 * - At a node: a feature drawn uniformly among those not constant in the node (scikit-learn's
 *   extra-tree splitter does the same; with every feature constant the node is a leaf), and a
 *   split p drawn uniformly in [min, max) of that feature in the node; x <= p goes left, so both
 *   sides are non-empty.
 * - A node is a leaf when it holds one row or sits at the height limit ceil(log2 ψ); it records
 *   its size, and scoring adds c(size) (Algorithm 3).
 *
 * Nodes are numbered depth first (a node before its subtrees), the order model.json requires.
 * Randomness: engine/core's SeededRandom (sfc32) from `seed`; nothing reads Math.random.
 */
import { ConfigError, InputError, SeededRandom } from "../../../engine/core/mod.js";
import { buildReferenceHistograms, trainingFingerprint, DEFAULT_REFERENCE_BINS, REFERENCE_BINS_MAX } from "../../drift/mod.js";
import { buildModel, IFOREST_MAX_SAMPLES_MAX, IFOREST_TREES_MAX, type IsolationForestModel } from "../model.js";

/** Rows × columns, row-major; column names label the model's features. */
export interface FeatureMatrix {
  readonly values: Float64Array;
  readonly rows: number;
  readonly columns: number;
  readonly names: readonly string[];
}

export interface IforestTrainOptions {
  /** t, trees (default 100, the paper's). */
  trees: number;
  /** ψ, rows per tree (default 256, the paper's). */
  sampleSize: number;
  /** PRNG seed, 0..2^32 − 1. */
  seed: number;
  /**
   * Quantile bins per feature of the reference histograms stored in the model for drift PSI
   * (operators/drift; default 10), or 0 to store none.
   */
  referenceBins?: number;
}

export const DEFAULT_IFOREST_TREES = 100;
export const DEFAULT_IFOREST_SAMPLE_SIZE = 256;
export const DEFAULT_IFOREST_SEED = 1;

export function defaultTrainOptions(): IforestTrainOptions {
  return { trees: DEFAULT_IFOREST_TREES, sampleSize: DEFAULT_IFOREST_SAMPLE_SIZE, seed: DEFAULT_IFOREST_SEED };
}

/** Grows the forest on every row of `data`. */
export function trainIsolationForest(data: FeatureMatrix, options: IforestTrainOptions = defaultTrainOptions()): IsolationForestModel {
  validateTrainOptions(options);
  validateMatrix(data);
  const psi = Math.min(options.sampleSize, data.rows);
  const heightLimit = Math.ceil(Math.log2(Math.max(psi, 2)));
  const bins = options.referenceBins ?? DEFAULT_REFERENCE_BINS;
  const rng = new SeededRandom(options.seed);
  const grower = new TreeGrower(data, rng, heightLimit, psi);
  const permutation = Int32Array.from({ length: data.rows }, (_, i) => i);
  const treeOffsets = new Int32Array(options.trees + 1);
  for (let t = 0; t < options.trees; t++) {
    // Partial Fisher–Yates: the first ψ entries become a uniform sample without replacement.
    for (let k = 0; k < psi; k++) {
      const j = k + rng.below(data.rows - k);
      const tmp = permutation[k];
      permutation[k] = permutation[j];
      permutation[j] = tmp;
    }
    grower.sample.set(permutation.subarray(0, psi));
    grower.startTree();
    grower.grow(0, psi, 0, grower.newNode());
    treeOffsets[t + 1] = grower.nodes();
  }
  return buildModel(
    {
      maxSamples: psi,
      nFeatures: data.columns,
      featureNames: [...data.names],
      compare: "f64",
      treeOffsets,
      feature: Int32Array.from(grower.feature),
      threshold: Float64Array.from(grower.threshold),
      left: Int32Array.from(grower.left),
      right: Int32Array.from(grower.right),
      leafSize: Int32Array.from(grower.leafSize),
      provenance: {
        source: "linewatch",
        algorithm: "Liu, Ting & Zhou 2008",
        trees: options.trees,
        sample_size: options.sampleSize,
        seed: options.seed,
        rows: data.rows,
        height_limit: heightLimit,
        training_fingerprint: trainingFingerprint(data.values, data.rows, data.names),
      },
      // Every training row, binned now: drift PSI compares live feature rows with them.
      ...(bins === 0 ? {} : { referenceHistograms: buildReferenceHistograms(data.values, data.rows, data.names, bins) }),
    },
    "trained model",
  );
}

export function validateTrainOptions(o: IforestTrainOptions): void {
  if (!Number.isInteger(o.trees) || o.trees < 1 || o.trees > IFOREST_TREES_MAX) {
    throw new ConfigError("trees", `must be an integer in 1..${IFOREST_TREES_MAX}, got ${o.trees}`);
  }
  if (!Number.isInteger(o.sampleSize) || o.sampleSize < 1 || o.sampleSize > IFOREST_MAX_SAMPLES_MAX) {
    throw new ConfigError("sample", `must be an integer in 1..${IFOREST_MAX_SAMPLES_MAX}, got ${o.sampleSize}`);
  }
  if (!Number.isInteger(o.seed) || o.seed < 0 || o.seed > 0xffffffff)
    throw new ConfigError("seed", `must be an integer in 0..2^32−1, got ${o.seed}`);
  const bins = o.referenceBins ?? DEFAULT_REFERENCE_BINS;
  if (!Number.isInteger(bins) || (bins !== 0 && (bins < 2 || bins > REFERENCE_BINS_MAX)))
    throw new ConfigError("referenceBins", `must be 0 (none) or an integer in 2..${REFERENCE_BINS_MAX}, got ${bins}`);
}

// ---- internals ----

function validateMatrix(d: FeatureMatrix): void {
  if (d.rows < 1) throw new InputError("no rows to train on");
  if (d.columns < 1 || d.names.length !== d.columns) throw new InputError(`${d.columns} columns with ${d.names.length} names`);
  if (d.values.length < d.rows * d.columns) throw new InputError(`${d.values.length} values for ${d.rows} × ${d.columns}`);
  for (let i = 0; i < d.rows * d.columns; i++) {
    if (!Number.isFinite(d.values[i])) {
      throw new InputError(`row ${Math.floor(i / d.columns)}, column "${d.names[i % d.columns]}": ${d.values[i]} is not a finite number`);
    }
  }
}

/** The node arrays of the whole forest, grown a tree at a time (child indices within the tree). */
class TreeGrower {
  readonly sample: Int32Array;
  readonly feature: number[] = [];
  readonly threshold: number[] = [];
  readonly left: number[] = [];
  readonly right: number[] = [];
  readonly leafSize: number[] = [];
  private readonly order: Int32Array;
  private treeBase = 0;

  constructor(
    private readonly data: FeatureMatrix,
    private readonly rng: SeededRandom,
    private readonly heightLimit: number,
    psi: number,
  ) {
    this.sample = new Int32Array(psi);
    this.order = Int32Array.from({ length: data.columns }, (_, i) => i);
  }

  nodes(): number {
    return this.feature.length;
  }

  /** The next node is the root of a new tree. */
  startTree(): void {
    this.treeBase = this.feature.length;
  }

  /** A new leaf at the end of the arrays; returns its index within the current tree. */
  newNode(): number {
    this.feature.push(-1);
    this.threshold.push(0);
    this.left.push(-1);
    this.right.push(-1);
    this.leafSize.push(0);
    return this.feature.length - 1 - this.treeBase;
  }

  /** Grows the subtree of sample[lo, hi) at local node `node`, `depth` below the root. */
  grow(lo: number, hi: number, depth: number, node: number): void {
    const at = this.treeBase + node;
    this.leafSize[at] = hi - lo;
    if (hi - lo <= 1 || depth >= this.heightLimit) return;
    const split = this.drawSplit(lo, hi);
    if (split === null) return;
    const [f, p] = split;
    const { values, columns } = this.data;
    // Partition: rows with x[f] <= p first.
    let mid = lo;
    for (let k = lo; k < hi; k++) {
      const r = this.sample[k];
      if (values[r * columns + f] <= p) {
        this.sample[k] = this.sample[mid];
        this.sample[mid] = r;
        mid++;
      }
    }
    this.feature[at] = f;
    this.threshold[at] = p;
    const l = this.newNode();
    this.left[at] = l;
    this.grow(lo, mid, depth + 1, l);
    const r = this.newNode();
    this.right[at] = r;
    this.grow(mid, hi, depth + 1, r);
  }

  /** A uniformly random non-constant feature and p uniform in [min, max) of it; null if all are constant. */
  private drawSplit(lo: number, hi: number): [number, number] | null {
    const { values, columns } = this.data;
    const order = this.order;
    for (let k = 0; k < columns; k++) {
      const j = k + this.rng.below(columns - k);
      const f = order[j];
      order[j] = order[k];
      order[k] = f;
      let min = Infinity;
      let max = -Infinity;
      for (let q = lo; q < hi; q++) {
        const x = values[this.sample[q] * columns + f];
        if (x < min) min = x;
        if (x > max) max = x;
      }
      if (max > min) {
        let p = min + (max - min) * this.rng.next();
        if (p >= max) p = min; // rounding can reach max; p = min still leaves both sides non-empty
        return [f, p];
      }
    }
    return null;
  }
}
