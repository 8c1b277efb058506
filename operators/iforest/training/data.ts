/**
 * Feature rows for the isolation forest from a CSV or NDJSON file (connectors/files/table-reader.ts):
 * the chosen columns of every row as f64, row-major, read in chunks of bounded size. A missing
 * column, an empty cell or a value that is not a finite number is an {@link InputError} that
 * names the file, line and column.
 */
import { CapacityError, InputError } from "../../../engine/core/mod.js";
import { readTable, type CellValue, type TableHeader, type TableRow } from "../../../connectors/files/mod.js";
import type { FeatureMatrix } from "./train.js";

export interface ColumnSelection {
  /** Feature columns in this order (default: every column not excluded). */
  features?: readonly string[];
  /** Columns left out of the default selection (e.g. a label). */
  exclude?: readonly string[];
  /** A further numeric column read beside the features (e.g. the label for evaluation). */
  extra?: string;
}

/** Rows [first, first + rows) of the file: `values` holds rows × columns f64, row-major. */
export interface FeatureChunk {
  first: number;
  rows: number;
  values: Float64Array;
  /** The `extra` column of these rows, if one was asked for. */
  extra: Float64Array | null;
}

export interface LabelledMatrix extends FeatureMatrix {
  /** The `extra` column, one value per row, or null. */
  extra: Float64Array | null;
}

export const DEFAULT_CHUNK_ROWS = 16_384;
/** Most values `readFeatureMatrix` keeps (rows × columns): 2^26 f64 = 512 MiB. */
export const DEFAULT_MATRIX_VALUES_MAX = 1 << 26;

/**
 * Streams the file: resolves the columns from the header, then hands out full chunks of
 * `chunkRows` rows (the last one shorter) to `onChunk`, awaiting it (backpressure). The chunk's
 * arrays are reused: copy what must outlive the call. Returns the column names and the row count.
 */
export async function readFeatureChunks(
  path: string,
  selection: ColumnSelection,
  chunkRows: number,
  onChunk: (chunk: FeatureChunk) => void | Promise<void>,
): Promise<{ names: string[]; rows: number }> {
  let names: string[] = [];
  let values = new Float64Array(0);
  let extra: Float64Array | null = null;
  let filled = 0;
  let first = 0;
  const flush = (): void | Promise<void> => {
    if (filled === 0) return;
    const chunk = { first, rows: filled, values: values.subarray(0, filled * names.length), extra: extra?.subarray(0, filled) ?? null };
    first += filled;
    filled = 0;
    return onChunk(chunk);
  };
  const onHeader = (header: TableHeader): void => {
    names = selectColumns(path, header.columns, selection);
    values = new Float64Array(chunkRows * names.length);
    extra = selection.extra === undefined ? null : new Float64Array(chunkRows);
  };
  const onRow = (row: TableRow): void | Promise<void> => {
    const base = filled * names.length;
    for (let k = 0; k < names.length; k++) values[base + k] = numericCell(path, row, names[k]);
    if (extra !== null) extra[filled] = numericCell(path, row, selection.extra as string);
    filled++;
    if (filled === chunkRows) return flush();
  };
  const rows = await readTable(path, onHeader, onRow);
  await flush();
  return { names, rows };
}

/** The whole file as one matrix (for training and evaluation), at most `valuesMax` values. */
export async function readFeatureMatrix(
  path: string,
  selection: ColumnSelection,
  valuesMax = DEFAULT_MATRIX_VALUES_MAX,
): Promise<LabelledMatrix> {
  const parts: { values: Float64Array; extra: Float64Array | null }[] = [];
  let total = 0;
  const { names, rows } = await readFeatureChunks(path, selection, DEFAULT_CHUNK_ROWS, (chunk) => {
    total += chunk.values.length;
    if (total > valuesMax) {
      throw new CapacityError("valuesMax", valuesMax, `${path} has more than ${valuesMax} feature values; use fewer rows or columns`);
    }
    parts.push({ values: chunk.values.slice(), extra: chunk.extra?.slice() ?? null });
  });
  const values = new Float64Array(total);
  const extra = selection.extra === undefined ? null : new Float64Array(rows);
  let at = 0;
  let row = 0;
  for (const p of parts) {
    values.set(p.values, at);
    at += p.values.length;
    if (extra !== null && p.extra !== null) extra.set(p.extra, row);
    row += p.values.length / names.length;
  }
  return { values, rows, columns: names.length, names, extra };
}

/** The feature columns of a header for a selection; a named column the file lacks is an InputError. */
export function selectColumns(path: string, columns: readonly string[], selection: ColumnSelection): string[] {
  const present = new Set(columns);
  for (const name of [...(selection.features ?? []), ...(selection.extra === undefined ? [] : [selection.extra])]) {
    if (!present.has(name)) throw new InputError(`${path}: no column "${name}" (the file has ${columns.join(", ")})`);
  }
  const excluded = new Set(selection.exclude ?? []);
  if (selection.extra !== undefined && selection.features === undefined) excluded.add(selection.extra);
  const names = (selection.features ?? columns).filter((c) => !excluded.has(c));
  if (names.length === 0)
    throw new InputError(`${path}: no feature columns left (columns ${columns.join(", ")}; excluded ${[...excluded].join(", ")})`);
  if (new Set(names).size !== names.length) throw new InputError(`${path}: a feature column is named twice in ${names.join(", ")}`);
  return names;
}

function numericCell(path: string, row: TableRow, column: string): number {
  const raw: CellValue = row.get(column);
  let v = NaN;
  if (typeof raw === "number") v = raw;
  else if (typeof raw === "string" && raw.trim() !== "") v = Number(raw);
  if (!Number.isFinite(v)) {
    const shown = raw === undefined ? "missing" : JSON.stringify(raw);
    throw new InputError(`${path}:${row.line}: row ${row.row}, column "${column}": ${shown} is not a finite number`);
  }
  return v;
}
