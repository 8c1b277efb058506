/**
 * `run`'s failure predictions on the simulator by default: the built-in plant's model
 * (sim-failure-model.ts), trained on the simulator's wear on first start and cached.
 */
import { FailureModel } from "../../operators/prediction/mod.js";
import { defaultCacheDir, SIM_MODEL_SENSORS, simFailureModel } from "./sim-failure-model.js";

/** `--predict builtin`: the built-in plant's model. */
export const BUILTIN_MODEL = "builtin";

/** What decides whether a run predicts with the built-in model. */
export interface PredictChoice {
  predict?: string | false;
  nats?: string;
  cmapss?: string;
  analysis: string;
  span?: string;
  window?: number;
  sensors?: string;
}

/**
 * `--no-predict` → no predictions; a `--predict` value as given; else, on the simulator, the
 * built-in model — unless the run could not feed it (no rolling analysis, another window, a
 * sensor it reads left out), which is said on stderr. On NATS or a C-MAPSS replay, none: the
 * plant is not the simulator's.
 */
export function resolvePredict(flags: PredictChoice, note: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): void {
  if (flags.predict === false) {
    flags.predict = undefined;
    return;
  }
  if (flags.predict !== undefined || flags.nats !== undefined || flags.cmapss !== undefined) return;
  const skip = builtinSkipReason(flags);
  if (skip !== null) {
    note(`linewatch run: no failure predictions: ${skip} (--predict builtin insists, --no-predict says so)`);
    return;
  }
  flags.predict = BUILTIN_MODEL;
}

function builtinSkipReason(flags: PredictChoice): string | null {
  if (!flags.analysis.split(",").some((a) => a.trim() === "rolling"))
    return "the built-in model reads the rolling analysis, which --analysis leaves out";
  if (flags.span !== undefined) return "the built-in model reads a count window of readings; --span asks for a time window";
  if (flags.window !== undefined && flags.window !== 64)
    return `the built-in model reads a window of 64 readings; --window is ${flags.window}`;
  const sensors = flags.sensors?.split(",").map((s) => s.trim());
  const absent = sensors === undefined ? [] : SIM_MODEL_SENSORS.filter((s) => !sensors.includes(s));
  if (absent.length > 0) return `the built-in model reads ${absent.join(", ")}, which --sensors leaves out`;
  return null;
}

/** The built-in model from the cache (LINEWATCH_CACHE_DIR, else ~/.cache/linewatch), trained there first when absent. */
export async function loadBuiltinModel(note: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<FailureModel> {
  const started = performance.now();
  const sim = await simFailureModel(defaultCacheDir(), undefined, (path) =>
    note(`linewatch run: training the built-in plant's failure model on the simulator's wear (first start; cached in ${path}) …`),
  );
  const r = sim.report;
  note(
    `linewatch run: failure predictions from the built-in plant's model (${sim.path ?? "not cached"}${sim.cached ? "" : `, trained in ${((performance.now() - started) / 1000).toFixed(1)} s`}): ` +
      `${r.lives} simulated lives to failure, RMSE of time to failure on ${r.heldOutLives} held-out lives ${r.validationRmseHours.toFixed(1)} h (npm run bench -- failure measures it on the run's seeds); --no-predict turns it off`,
  );
  return FailureModel.fromBytes(sim.bytes, `built-in plant model ${sim.path ?? ""}`.trim());
}
