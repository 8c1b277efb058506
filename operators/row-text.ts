/**
 * Byte writers of the analyses' rowJson, built from their {@link RowTextSpec} — on whichever
 * thread writes the text (replay's text workers). An analysis with a spec has a writer here.
 */
import type { RecordAnalysis, RowTextSpec, RowTextWriter } from "./analysis.js";
import { rollingRowText } from "./rolling/mod.js";

export function rowTextWriter(spec: RowTextSpec): RowTextWriter {
  if (spec.name === "rolling") return rollingRowText(spec.minCount);
  throw new RangeError(`no row text writer for ${JSON.stringify(spec)}`);
}

/** The specs of every analysis, or null when one has none (then its rows are written as rowJson strings). */
export function rowTextSpecs(analyses: readonly RecordAnalysis[]): RowTextSpec[] | null {
  const specs: RowTextSpec[] = [];
  for (const a of analyses) {
    if (a.rowText === undefined) return null;
    specs.push(a.rowText);
  }
  return specs;
}
