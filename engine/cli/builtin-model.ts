/**
 * `run`'s failure predictions on the simulator by default: the built-in plant's model
 * (sim-failure-model.ts), trained on the simulator's wear on first start and cached.
 */
import { Command } from "commander";
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

/** `linewatch predict builtin`: trains the built-in plant's model into the cache (or finds it there) and says what it measured. */
export function builtinCommand(): Command {
  return new Command("builtin")
    .description(
      "train the built-in plant's failure model on the simulator's wear into the cache (npm run build does), or find it there; print its training figures",
    )
    .option("--json", "print the training report as JSON")
    .action(async (flags: { json?: boolean }) => {
      const sim = await simFailureModel(defaultCacheDir(), undefined, (path) =>
        process.stderr.write(`linewatch predict builtin: training into ${path} …\n`),
      );
      const r = sim.report;
      process.stdout.write(
        flags.json === true
          ? `${JSON.stringify({ path: sim.path, cached: sim.cached, ...r }, null, 2)}\n`
          : `built-in plant failure model ${sim.path} (${sim.cached ? "cached" : `trained in ${r.trainSeconds.toFixed(1)} s`}): ${r.lives} simulated lives to failure ` +
              `(${r.trainLives} to train, ${r.heldOutLives} held out); held-out RMSE of time to failure ${r.validationRmseHours.toFixed(1)} h over every row, ` +
              `${r.truncatedRmseHours.toFixed(1)} h at random cuts; residual σ ${r.residualSigmaHours.toFixed(1)} h\n`,
      );
    });
}
