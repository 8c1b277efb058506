/**
 * The analyses of an ingest worker as data: what crosses to a worker thread (structured clone —
 * no functions) and is built into {@link RecordAnalysis} objects there. Callbacks (alert events,
 * model swaps) are the worker's own: it forwards their events to the main thread.
 */
import type { Logger } from "../../core/mod.js";
import type { RecordAnalysis } from "../../../operators/mod.js";
import { iforestAnalysis, type IforestAnalysisOptions } from "../../../operators/iforest/mod.js";
import { rollingAnalysis, type RollingOptions } from "../../../operators/rolling/mod.js";
import { iforestFollow, type RegistryFollowSpec } from "../model-follow.js";
import { spcAnalysis, type AlertEpisodeEvent, type EpisodeEventSink, type SpcAnalysisOptions } from "../../../operators/spc/mod.js";

export type AnalysisSpec =
  | { name: "rolling"; options: RollingOptions }
  | { name: "spc"; options: Omit<SpcAnalysisOptions, "onAlert" | "alertSink"> }
  /**
   * `watchPath`: the worker watches the model file itself and swaps each new version in;
   * `followRegistry`: it follows the registry's production iforest model itself (both logged on the worker's logger).
   */
  | {
      name: "iforest";
      options: Omit<IforestAnalysisOptions, "onSwap" | "onSwapError" | "follow"> & { followRegistry?: RegistryFollowSpec };
    };

/**
 * The analyses of `specs`, in order; SPC alert events go to `alerts` (a function gets each event
 * as an object, a sink the numbers), model swaps (a watched model file) to `log`.
 */
export function buildAnalyses(
  specs: readonly AnalysisSpec[],
  alerts: ((event: AlertEpisodeEvent) => void) | EpisodeEventSink,
  log?: Logger,
): RecordAnalysis[] {
  return specs.map((s) => {
    if (s.name === "rolling") return rollingAnalysis(s.options);
    if (s.name === "spc")
      return spcAnalysis(typeof alerts === "function" ? { ...s.options, onAlert: alerts } : { ...s.options, alertSink: alerts });
    const { followRegistry, ...options } = s.options;
    if (followRegistry !== undefined) return iforestAnalysis({ ...options, follow: iforestFollow(followRegistry, log) });
    const file = options.watchPath;
    return iforestAnalysis({
      ...options,
      onSwap: (from, to) => log?.info({ file, from: from.slice(0, 12), to: to.slice(0, 12) }, "model swapped; used from the next batch on"),
      onSwapError: (e) => log?.warn({ file, err: e }, "new version of the model not used; the current model stays"),
    });
  });
}
