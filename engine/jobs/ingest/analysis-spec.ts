/**
 * The analyses of an ingest worker as data: what crosses to a worker thread (structured clone —
 * no functions) and is built into {@link RecordAnalysis} objects there. Callbacks (alert events,
 * model swaps) are the worker's own: it forwards their events to the main thread.
 */
import type { RecordAnalysis } from "../../../operators/mod.js";
import { iforestAnalysis, type IforestAnalysisOptions } from "../../../operators/iforest/mod.js";
import { rollingAnalysis, type RollingOptions } from "../../../operators/rolling/mod.js";
import { spcAnalysis, type SpcAlertEvent, type SpcAnalysisOptions } from "../../../operators/spc/mod.js";

export type AnalysisSpec =
  | { name: "rolling"; options: RollingOptions }
  | { name: "spc"; options: Omit<SpcAnalysisOptions, "onAlert"> }
  | { name: "iforest"; options: Omit<IforestAnalysisOptions, "onSwap" | "onSwapError" | "watchPath"> };

/** The analyses of `specs`, in order; SPC alert events go to `onAlert`. */
export function buildAnalyses(specs: readonly AnalysisSpec[], onAlert: (event: SpcAlertEvent) => void): RecordAnalysis[] {
  return specs.map((s) => {
    if (s.name === "rolling") return rollingAnalysis(s.options);
    if (s.name === "spc") return spcAnalysis({ ...s.options, onAlert });
    return iforestAnalysis(s.options);
  });
}
