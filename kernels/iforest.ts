// Isolation forest scoring (Liu, Ting & Zhou, "Isolation Forest", ICDM 2008):
//
//   s(x) = 2^(−E[h(x)] / c(ψ)),   h(x) = depth of the leaf x reaches + c(leaf size),
//   c(n) = 2H(n − 1) − 2(n − 1)/n,  H(i) = ln(i) + γ,  c(2) = 1,  c(1) = c(0) = 0.
//
// The model block is laid out by operators/iforest/layout.ts (the byte-by-byte description is
// there); the per-leaf term depth + c(leaf size) and c(ψ) are computed once when the model is
// written, as scikit-learn computes them once at fit time, so scoring is tree walks and adds.
// c(ψ) = 0 (ψ ≤ 1: every tree is one leaf, 0/0) scores 1, as scikit-learn does.
//
// Why the walk looks as it does:
// - Children of a node are adjacent (right = left + 1 node = 16 bytes on), and nodes hold byte
//   offsets (child, feature × 8) rather than indices, so a step is
//   node = child + (x <= threshold ? 0 : 16), with no branch on the data and no shifts.
// - Leaves are absorbing: threshold NaN (x <= NaN is false for every x, NaN included) and
//   child = self − 16, so a step from a leaf stays on it. Every walk of a tree is then exactly
//   `depth` steps (the tree's deepest leaf), the loop count is the same for all rows of a tree,
//   and the only branches left are perfectly predicted loop ends.
// - Trees outside, rows inside, in blocks of BLOCK_ROWS: one tree's nodes (≤ 12 KiB at ψ = 256)
//   stay in L1 while the block's rows go through it; eight rows walk side by side (then four,
//   then one at a time for the rest) so the CPU overlaps their dependent load chains (node →
//   column → value → next node): eight rather than four scored a drain's rows in 0.87× the
//   time (bench/iforest-kernel-ab.ts). Each row's sum still adds its trees in tree order, so
//   the scores are the same bits.
// - The row values are read in place through featureIdx (model feature k is column
//   featureIdx[k] of a row), because in the stream the features are other analyses' output
//   rows; when featureIdx is the identity the extra load is skipped.
// - f32 comparison (model flag): x is rounded to float32 before it is compared with the f64
//   threshold, which is what scikit-learn does (it casts X to float32), so imported models give
//   scikit-learn's leaves exactly.
//
// The kernel allocates nothing and keeps no globals. The output slots serve as the per-row
// accumulators while the trees are summed, so `out` must not overlap the rows.

// ---- model block header (bytes); mirrored in operators/iforest/layout.ts ----
const H_MAGIC: u32 = 0; //        u32  0x4649574C ("LWIF" in memory order)
const H_VERSION: u32 = 4; //      u32  layout version
const H_FLAGS: u32 = 8; //        u32  bit 0: compare x as float32
const H_TREES: u32 = 12; //       u32
const H_FEATURES: u32 = 16; //    u32
// 20 nodes, 24 tree table, 28 node table, 32 leaf table, 36 bytes: see the layout module
const H_TREE_TABLE: u32 = 24; //  u32  byte offset from the model start
const H_NODE_TABLE: u32 = 28; //  u32
const H_LEAF_TABLE: u32 = 32; //  u32
const H_C_PSI: u32 = 48; //       f64  c(ψ)

const MAGIC: u32 = 0x4649574c;
const LAYOUT_VERSION: u32 = 1;
const FLAG_F32: u32 = 1;
const BLOCK_ROWS: i32 = 256;
/** Euler–Mascheroni constant (numpy's np.euler_gamma; the issue quotes it to 10 places). */
const EULER_GAMMA: f64 = 0.5772156649015329;

/** Returned when the block at modelPtr is not a model of this layout version. */
export const IFOREST_ERR_MODEL: i32 = -1;
/** Returned for a negative count or a stride below 1. */
export const IFOREST_ERR_ARGS: i32 = -2;

/**
 * c(n): the average path length of an unsuccessful search in a binary search tree of n keys,
 * the normaliser of the isolation forest (Liu et al. 2008, eq. 1).
 */
export function iforestAveragePathLength(n: f64): f64 {
  if (n <= 1) return 0;
  if (n == 2) return 1;
  return 2.0 * (Math.log(n - 1.0) + EULER_GAMMA) - 2.0 * (n - 1.0) / n;
}

/**
 * Scores n rows. Row i starts at rowsPtr + i·rowStride·8 (rowStride f64 per row); model feature k
 * of a row is its f64 at column load<i32>(featureIdxPtr + 4k). Writes s(x) of row i at
 * outPtr + i·outStride·8. Returns n, or IFOREST_ERR_MODEL / IFOREST_ERR_ARGS.
 */
export function iforestScore(
  modelPtr: usize, rowsPtr: usize, rowStride: i32, featureIdxPtr: usize, n: i32, outPtr: usize, outStride: i32,
): i32 {
  if (load<u32>(modelPtr, H_MAGIC) != MAGIC || load<u32>(modelPtr, H_VERSION) != LAYOUT_VERSION) return IFOREST_ERR_MODEL;
  if (n < 0 || rowStride < 1 || outStride < 1) return IFOREST_ERR_ARGS;
  const f32 = (load<u32>(modelPtr, H_FLAGS) & FLAG_F32) != 0;
  const features = load<i32>(modelPtr, H_FEATURES);
  let direct = true;
  for (let k = 0; k < features; k++) {
    if (load<i32>(featureIdxPtr + (<usize>k << 2)) != k) direct = false;
  }
  const rs = <usize>rowStride << 3;
  const os = <usize>outStride << 3;
  for (let first = 0; first < n; first += BLOCK_ROWS) {
    const m = min(BLOCK_ROWS, n - first);
    const rows = rowsPtr + <usize>first * rs;
    const out = outPtr + <usize>first * os;
    for (let i = 0; i < m; i++) store<f64>(out + <usize>i * os, 0);
    if (f32) {
      if (direct) sumTrees(modelPtr, rows, rs, featureIdxPtr, m, out, os, true, true);
      else sumTrees(modelPtr, rows, rs, featureIdxPtr, m, out, os, true, false);
    } else {
      if (direct) sumTrees(modelPtr, rows, rs, featureIdxPtr, m, out, os, false, true);
      else sumTrees(modelPtr, rows, rs, featureIdxPtr, m, out, os, false, false);
    }
    finish(modelPtr, m, out, os);
  }
  return n;
}

// ---- internals ----

/** Adds every tree's leaf term depth + c(size) into the m output slots. */
@inline function sumTrees(
  model: usize, rows: usize, rs: usize, fidx: usize, m: i32, out: usize, os: usize, f32: bool, direct: bool,
): void {
  const trees = load<i32>(model, H_TREES);
  const treeTable = model + <usize>load<u32>(model, H_TREE_TABLE);
  const nodes = model + <usize>load<u32>(model, H_NODE_TABLE);
  const leaves = model + <usize>load<u32>(model, H_LEAF_TABLE);
  for (let t = 0; t < trees; t++) {
    const root = load<i32>(treeTable + (<usize>t << 3));
    const depth = load<i32>(treeTable + (<usize>t << 3), 4);
    let i = 0;
    for (; i + 8 <= m; i += 8) {
      const ra = rows + <usize>i * rs;
      let a = root, b = root, c = root, d = root, e = root, f = root, g = root, h = root;
      for (let k = 0; k < depth; k++) {
        a = step(nodes, a, ra, fidx, f32, direct);
        b = step(nodes, b, ra + rs, fidx, f32, direct);
        c = step(nodes, c, ra + 2 * rs, fidx, f32, direct);
        d = step(nodes, d, ra + 3 * rs, fidx, f32, direct);
        e = step(nodes, e, ra + 4 * rs, fidx, f32, direct);
        f = step(nodes, f, ra + 5 * rs, fidx, f32, direct);
        g = step(nodes, g, ra + 6 * rs, fidx, f32, direct);
        h = step(nodes, h, ra + 7 * rs, fidx, f32, direct);
      }
      const o = out + <usize>i * os;
      addLeaf(o, leaves, a);
      addLeaf(o + os, leaves, b);
      addLeaf(o + 2 * os, leaves, c);
      addLeaf(o + 3 * os, leaves, d);
      addLeaf(o + 4 * os, leaves, e);
      addLeaf(o + 5 * os, leaves, f);
      addLeaf(o + 6 * os, leaves, g);
      addLeaf(o + 7 * os, leaves, h);
    }
    for (; i + 4 <= m; i += 4) {
      const ra = rows + <usize>i * rs;
      const rb = ra + rs;
      const rc = rb + rs;
      const rd = rc + rs;
      let a = root, b = root, c = root, d = root;
      for (let k = 0; k < depth; k++) {
        a = step(nodes, a, ra, fidx, f32, direct);
        b = step(nodes, b, rb, fidx, f32, direct);
        c = step(nodes, c, rc, fidx, f32, direct);
        d = step(nodes, d, rd, fidx, f32, direct);
      }
      const o = out + <usize>i * os;
      store<f64>(o, load<f64>(o) + load<f64>(leaves + (<usize>a >> 1)));
      store<f64>(o + os, load<f64>(o + os) + load<f64>(leaves + (<usize>b >> 1)));
      store<f64>(o + 2 * os, load<f64>(o + 2 * os) + load<f64>(leaves + (<usize>c >> 1)));
      store<f64>(o + 3 * os, load<f64>(o + 3 * os) + load<f64>(leaves + (<usize>d >> 1)));
    }
    for (; i < m; i++) {
      const r = rows + <usize>i * rs;
      let a = root;
      for (let k = 0; k < depth; k++) a = step(nodes, a, r, fidx, f32, direct);
      const o = out + <usize>i * os;
      store<f64>(o, load<f64>(o) + load<f64>(leaves + (<usize>a >> 1)));
    }
  }
}

/** The leaf term of the leaf a walk ended on (a node offset) added into the row's slot. */
@inline function addLeaf(o: usize, leaves: usize, node: i32): void {
  store<f64>(o, load<f64>(o) + load<f64>(leaves + (<usize>node >> 1)));
}

/**
 * One level down: the left child when x <= threshold (scikit-learn's convention), else the right.
 * `node` and the result are byte offsets into the node table.
 */
@inline function step(nodes: usize, node: i32, row: usize, fidx: usize, f32: bool, direct: bool): i32 {
  const p = nodes + <usize>node;
  const threshold = load<f64>(p);
  const feature8 = load<i32>(p, 8);
  const child = load<i32>(p, 12);
  const at = direct ? <usize>feature8 : <usize>load<i32>(fidx + (<usize>feature8 >> 1)) << 3;
  let x = load<f64>(row + at);
  if (f32) x = <f64><f32>x;
  return child + select<i32>(0, 16, x <= threshold);
}

/** Σ_t h_t(x) in each slot → s(x) = 2^(−(Σ/t) / c(ψ)). */
function finish(model: usize, m: i32, out: usize, os: usize): void {
  const trees = <f64>load<i32>(model, H_TREES);
  const cPsi = load<f64>(model, H_C_PSI);
  for (let i = 0; i < m; i++) {
    const o = out + <usize>i * os;
    store<f64>(o, cPsi == 0 ? 1.0 : Math.pow(2.0, -(load<f64>(o) / trees) / cPsi));
  }
}
