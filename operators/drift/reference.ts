/**
 * Reference histograms: per model input feature, the bins fixed at training time and the training
 * rows' count in each. Drift is measured against them (psi.ts); training stores them in the model
 * (ONNX metadata_props `linewatch.reference_histograms`, iforest model.json `reference_histograms`).
 *
 * Bins of a feature, from the training column x₁…x_N and a bin count B (default 10, deciles):
 * - interior edges at the quantiles j/B, j = 1…B−1, by the inverted empirical CDF (the smallest
 *   training value v with #{x ≤ v} ≥ j·N/B; numpy's quantile(method="inverted_cdf")), so an edge is
 *   a training value;
 * - equal edges merged (ties: a feature that is 0 on 60 % of the rows has one edge at 0, not six);
 * - bins right-closed, first and last open-ended: (−∞, e₁], (e₁, e₂], …, (e_{k−1}, +∞);
 * - a constant feature (every row c) gets the edges [c⁻, c], c⁻ the largest double below c: the bins
 *   (−∞, c), [c, c] and (c, +∞) — one bin for the training value plus the two open ends.
 * A feature thus has 2…B bins (3 for a constant one); B is 2…{@link REFERENCE_BINS_MAX}.
 *
 * ## The JSON form (version 1)
 *
 * ```
 * {
 *   "format": "linewatch-reference-histograms",  constant
 *   "version": 1,                                readers reject others
 *   "rows": 16138,                               training rows the counts cover
 *   "features": [                                one per model feature, in the model's order
 *     { "name": "s2.mean",
 *       "edges": [642.1, …],                     k−1 finite, strictly increasing interior edges
 *       "counts": [1614, …] }                    k training counts (integers ≥ 0, summing to rows)
 *   ]
 * }
 * ```
 * Counts rather than proportions: integers round-trip exactly, and their sum checks the file.
 * Bounds: ≤ {@link REFERENCE_FEATURES_MAX} features (the largest any linewatch model format allows,
 * iforest's 4096), ≤ {@link REFERENCE_BINS_MAX} bins per feature, ≤ {@link REFERENCE_JSON_BYTES_MAX}
 * bytes of text. Any defect is a {@link ReferenceHistogramError} naming the feature and field.
 */
import { createHash } from "node:crypto";
import { InputError, ModelLoadError } from "../../engine/core/mod.js";

export const REFERENCE_FORMAT = "linewatch-reference-histograms";
export const REFERENCE_FORMAT_VERSION = 1;
export const DEFAULT_REFERENCE_BINS = 10;
export const REFERENCE_BINS_MAX = 100;
/** The most features any linewatch model has (iforest's IFOREST_FEATURES_MAX). */
export const REFERENCE_FEATURES_MAX = 4096;
/** 4096 features × 100 bins of edges and counts stay well under this. */
export const REFERENCE_JSON_BYTES_MAX = 16 << 20;
/** Longest feature name accepted (model feature names are short column or statistic names). */
export const REFERENCE_NAME_CHARS_MAX = 256;

/** One feature's fixed bins and training counts. */
export interface FeatureHistogram {
  readonly name: string;
  /** k − 1 interior edges, strictly increasing; bin i is (edges[i−1], edges[i]] with ±∞ at the ends. */
  readonly edges: Float64Array;
  /** k training counts. */
  readonly counts: Float64Array;
}

/** The reference histograms of a model: one per feature, in the model's feature order. */
export interface ReferenceHistograms {
  readonly version: number;
  /** Training rows (each feature's counts sum to it). */
  readonly rows: number;
  readonly features: readonly FeatureHistogram[];
}

/**
 * A reference-histogram document that breaks the format: `field` names where (e.g.
 * `features[3].edges`). A {@link ModelLoadError}, like any defect of a model file.
 */
export class ReferenceHistogramError extends ModelLoadError {
  constructor(
    source: string,
    readonly field: string,
    message: string,
  ) {
    super(source, `reference histograms: ${field}: ${message}`);
  }
}

/**
 * The reference histograms of a training matrix (row-major rows × names.length), `bins` quantile
 * bins per feature as the file comment says. A non-finite value is an {@link InputError}.
 */
export function buildReferenceHistograms(
  values: ArrayLike<number>,
  rows: number,
  names: readonly string[],
  bins: number = DEFAULT_REFERENCE_BINS,
): ReferenceHistograms {
  const f = names.length;
  if (!Number.isInteger(bins) || bins < 2 || bins > REFERENCE_BINS_MAX)
    throw new InputError(`reference histograms: bins must be an integer in 2..${REFERENCE_BINS_MAX}, got ${bins}`);
  if (f < 1 || f > REFERENCE_FEATURES_MAX)
    throw new InputError(`reference histograms: ${f} features, outside 1..${REFERENCE_FEATURES_MAX}`);
  if (!Number.isInteger(rows) || rows < 1 || values.length < rows * f)
    throw new InputError(`reference histograms: ${values.length} values for ${rows} rows × ${f} features`);
  const column = new Float64Array(rows);
  const features = names.map((name, j) => {
    for (let r = 0; r < rows; r++) {
      const v = values[r * f + j];
      if (!Number.isFinite(v)) throw new InputError(`reference histograms: row ${r}, feature "${name}": ${v} is not a finite number`);
      column[r] = v;
    }
    column.sort();
    const edges = quantileEdges(column, bins);
    return { name, edges, counts: binCounts(column, edges) };
  });
  return { version: REFERENCE_FORMAT_VERSION, rows, features };
}

/**
 * Index of the bin of x: the number of edges strictly below x (bins are right-closed), by binary
 * search, O(log k). x must not be NaN (callers check).
 */
export function binIndex(edges: Float64Array, x: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (edges[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The JSON object of the format (see the file comment). */
export function referenceToJson(ref: ReferenceHistograms): Record<string, unknown> {
  return {
    format: REFERENCE_FORMAT,
    version: ref.version,
    rows: ref.rows,
    features: ref.features.map((h) => ({ name: h.name, edges: Array.from(h.edges), counts: Array.from(h.counts) })),
  };
}

/** The JSON text of the format (one line; numbers in shortest round-trip form). */
export function referenceToText(ref: ReferenceHistograms): string {
  return JSON.stringify(referenceToJson(ref));
}

/** Parses and validates JSON text; any defect is a {@link ReferenceHistogramError}. */
export function parseReferenceHistograms(text: string, source: string): ReferenceHistograms {
  if (text.length > REFERENCE_JSON_BYTES_MAX)
    throw new ReferenceHistogramError(source, "(text)", `${text.length} characters, more than ${REFERENCE_JSON_BYTES_MAX}`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new ReferenceHistogramError(source, "(text)", `not JSON: ${(cause as Error).message}`);
  }
  return referenceFromJson(json, source);
}

/** Validates a parsed JSON value (types, bounds, edges increasing, counts summing to rows). */
export function referenceFromJson(json: unknown, source: string): ReferenceHistograms {
  const fail: Fail = (field, message) => {
    throw new ReferenceHistogramError(source, field, message);
  };
  if (json === null || typeof json !== "object" || Array.isArray(json)) fail("(document)", "must be a JSON object");
  const o = json as Record<string, unknown>;
  if (o.format !== REFERENCE_FORMAT) fail("format", `must be "${REFERENCE_FORMAT}", got ${JSON.stringify(o.format)}`);
  if (o.version !== REFERENCE_FORMAT_VERSION)
    fail("version", `this reader knows version ${REFERENCE_FORMAT_VERSION}, got ${JSON.stringify(o.version)}`);
  const rows = o.rows;
  if (typeof rows !== "number" || !Number.isSafeInteger(rows) || rows < 1)
    fail("rows", `must be an integer ≥ 1, got ${JSON.stringify(rows)}`);
  if (!Array.isArray(o.features)) fail("features", "must be an array");
  const list = o.features as unknown[];
  if (list.length < 1 || list.length > REFERENCE_FEATURES_MAX)
    fail("features", `${list.length} features, outside 1..${REFERENCE_FEATURES_MAX}`);
  const seen = new Set<string>();
  const features = list.map((item, j) => {
    const h = featureFromJson(item, `features[${j}]`, rows as number, fail);
    if (seen.has(h.name)) fail(`features[${j}].name`, `"${h.name}" appears twice`);
    seen.add(h.name);
    return h;
  });
  return { version: REFERENCE_FORMAT_VERSION, rows: rows as number, features };
}

/**
 * Checks that the reference covers exactly these feature names in this order; returns a sentence
 * saying what differs, or null when they match.
 */
export function referenceMismatch(ref: ReferenceHistograms, names: readonly string[]): string | null {
  const have = ref.features.map((h) => h.name);
  if (have.length === names.length && have.every((n, i) => n === names[i])) return null;
  return `the reference histograms cover [${have.join(", ")}], the model's features are [${names.join(", ")}]`;
}

// ---- internals ----

type Fail = (field: string, message: string) => never;

/** Distinct inverted-CDF quantiles j/B of a sorted column; a constant column gets [c⁻, c]. */
function quantileEdges(sorted: Float64Array, bins: number): Float64Array {
  const n = sorted.length;
  const edges: number[] = [];
  for (let j = 1; j < bins; j++) {
    // Smallest order statistic x_(i) (1-based) with i ≥ j·n/B. Integer arithmetic: exact.
    const i = Math.max(1, Math.ceil((j * n) / bins));
    const v = sorted[i - 1] + 0; // −0 → 0: JSON writes both as 0
    if (edges.length === 0 || v > edges[edges.length - 1]) edges.push(v);
  }
  if (sorted[0] === sorted[n - 1]) return Float64Array.of(nextDown(edges[0]), edges[0]);
  return Float64Array.from(edges);
}

function binCounts(sorted: Float64Array, edges: Float64Array): Float64Array {
  const counts = new Float64Array(edges.length + 1);
  for (let r = 0; r < sorted.length; r++) counts[binIndex(edges, sorted[r])]++;
  return counts;
}

/** The largest double below x (x finite). */
export function nextDown(x: number): number {
  if (x === 0) return -Number.MIN_VALUE;
  const buf = new Float64Array(1);
  const bits = new BigInt64Array(buf.buffer);
  buf[0] = x;
  bits[0] += x > 0 ? -1n : 1n;
  return buf[0];
}

function featureFromJson(item: unknown, at: string, rows: number, fail: Fail): FeatureHistogram {
  if (item === null || typeof item !== "object" || Array.isArray(item)) fail(at, "must be an object");
  const o = item as Record<string, unknown>;
  if (typeof o.name !== "string" || o.name.length === 0 || o.name.length > REFERENCE_NAME_CHARS_MAX)
    fail(`${at}.name`, `must be a non-empty string of at most ${REFERENCE_NAME_CHARS_MAX} characters`);
  if (!Array.isArray(o.edges)) fail(`${at}.edges`, "must be an array");
  if (!Array.isArray(o.counts)) fail(`${at}.counts`, "must be an array");
  const e = o.edges as unknown[];
  const c = o.counts as unknown[];
  if (e.length < 1 || e.length > REFERENCE_BINS_MAX - 1)
    fail(`${at}.edges`, `${e.length} edges, outside 1..${REFERENCE_BINS_MAX} (at most ${REFERENCE_BINS_MAX} bins)`);
  if (c.length !== e.length + 1) fail(`${at}.counts`, `${c.length} counts for ${e.length} edges (must be edges + 1)`);
  const edges = new Float64Array(e.length);
  for (let i = 0; i < e.length; i++) {
    const v = e[i];
    if (typeof v !== "number" || !Number.isFinite(v)) fail(`${at}.edges`, `entry ${i} is not a finite number: ${JSON.stringify(v)}`);
    if (i > 0 && !((v as number) > edges[i - 1])) fail(`${at}.edges`, `entry ${i} (${v}) is not above entry ${i - 1} (${edges[i - 1]})`);
    edges[i] = v as number;
  }
  const counts = new Float64Array(c.length);
  let sum = 0;
  for (let i = 0; i < c.length; i++) {
    const v = c[i];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0)
      fail(`${at}.counts`, `entry ${i} is not an integer ≥ 0: ${JSON.stringify(v)}`);
    counts[i] = v as number;
    sum += v as number;
  }
  if (sum !== rows) fail(`${at}.counts`, `sum to ${sum}, the document says ${rows} rows`);
  return { name: o.name as string, edges, counts };
}

/**
 * The training data's fingerprint: SHA-256 of the feature names (JSON) and the rows × features
 * values as little-endian float64, row-major — what a model was fitted on, as the registry shows
 * it ("sha256:<hex>"). Two trainings on the same rows give the same fingerprint.
 */
export function trainingFingerprint(values: Float64Array, rows: number, names: readonly string[]): string {
  const hash = createHash("sha256").update(JSON.stringify(names));
  const bytes = new Uint8Array(values.buffer, values.byteOffset, rows * names.length * 8);
  return `sha256:${hash.update(bytes).digest("hex")}`;
}
