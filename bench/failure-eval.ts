/**
 * The failure evaluation (`npm run bench -- failure`): the built-in plant's failure model
 * (engine/cli sim-failure-model.ts) against the simulator's own failures, on seeds the model was
 * not trained on and at the run's rate (10 readings per second per sensor; the model trains at a
 * lower rate).
 *
 * The plant runs at full speed; every `stepMinutes` of event time each machine's features are
 * what the prediction service would read in-stream (SimFeatureTracker: rolling means of the
 * mode-keyed windows) and the model predicts from them (onnxruntime, as in a run). Against the
 * ground truth (FailureLabel):
 * - RMSE of time to failure, hours: over the steps of every life that ended in a failure, the
 *   true time to failure capped at the model's cap (48 h) — the model's target — and over the
 *   steps less than the cap before a failure (the part a planner acts on);
 * - lead time: a failure counts as warned `lead` ahead when a prediction of its machine in the
 *   48 h (the model's cap) before it, and at least `lead` before it, was at risk ≥ high (health
 *   score < 60, i.e. failure probability > 0.4): a warning a planner had that long to act on. Each
 *   failure whose life the data shows from at least `lead` before it counts;
 * - false highs: the share of steps at risk ≥ high while the true time to failure was more than
 *   twice the model's horizon away (or the life ended without failure).
 */
import { loadavg } from "node:os";
import { simFailureModel, simulateFeatures, type FeatureTrace } from "../engine/cli/mod.js";
import { FailureScorecard, type FailureScore, formatFailureScore, riskOfProbability } from "../engine/jobs/mod.js";
import { FailureModel } from "../operators/prediction/mod.js";

export interface FailureEvalOptions {
  seeds: readonly number[];
  machines: number;
  hours: number;
  rateHz: number;
  stepMinutes: number;
  /** Lead times to count warnings at, hours. */
  leadHours: readonly number[];
  cacheDir: string | null;
  progress?: (line: string) => void;
}

export const DEFAULT_FAILURE_EVAL: Readonly<Omit<FailureEvalOptions, "cacheDir">> = Object.freeze({
  seeds: [1, 2, 3],
  machines: 8,
  hours: 72,
  rateHz: 10,
  stepMinutes: 10,
  leadHours: [1, 2, 4, 8],
});

export interface FailureEvalReport {
  model: string;
  seeds: readonly number[];
  machines: number;
  hours: number;
  rateHz: number;
  stepMinutes: number;
  score: FailureScore;
  trainReport: unknown;
  loadAverage: number[];
  seconds: number;
}

/** Runs the evaluation. */
export async function runFailureEval(o: FailureEvalOptions): Promise<FailureEvalReport> {
  const started = performance.now();
  const sim = await simFailureModel(o.cacheDir);
  const model = await FailureModel.fromBytes(sim.bytes, sim.path ?? "built-in simulator model");
  const card = new FailureScorecard(model.rulCap * model.cycleHours, model.horizonCycles * model.cycleHours, o.leadHours);
  try {
    for (const seed of o.seeds) {
      o.progress?.(`seed ${seed}: ${o.hours} simulated hours, ${o.machines} machines at ${o.rateHz} Hz …`);
      const trace = simulateFeatures({
        seed,
        machines: o.machines,
        rateHz: o.rateHz,
        faultRate: 2,
        hours: o.hours,
        window: model.window,
        sampleMs: o.stepMinutes * 60_000,
      });
      await scoreTrace(seed, trace, model, card);
    }
  } finally {
    await model.close();
  }
  return {
    model: model.modelVersion,
    seeds: o.seeds,
    machines: o.machines,
    hours: o.hours,
    rateHz: o.rateHz,
    stepMinutes: o.stepMinutes,
    score: card.result(),
    trainReport: sim.report,
    loadAverage: loadavg(),
    seconds: (performance.now() - started) / 1000,
  };
}

/** Predicts every step of the trace into the scorecard; machines are `<seed>/<machine>`, so seeds do not mix. */
async function scoreTrace(seed: number, trace: FeatureTrace, model: FailureModel, card: FailureScorecard): Promise<void> {
  card.coverFrom(trace.startTime);
  card.addFailures(trace.failures.map((f) => ({ ...f, machine_id: `${seed}/${f.machine_id}` })));
  card.addMaintenance(trace.maintenance.map((m) => ({ ...m, machine_id: `${seed}/${m.machine_id}` })));
  for (const [machine, rows] of trace.machineRows) {
    const predictions = await model.predict(Float64Array.from(rows.values), rows.times.length);
    predictions.forEach((p, i) => {
      const risk = riskOfProbability(p.failure_probability);
      card.observe({
        machine_id: `${seed}/${machine}`,
        at: rows.times[i],
        time_to_failure_hours: p.time_to_failure_hours,
        high: risk === "high" || risk === "critical",
      });
    });
  }
}

/** The report as a person reads it. */
export function formatFailureEvalReport(r: FailureEvalReport): string {
  return [
    `failure evaluation: the built-in plant's failure model ${r.model} on the simulator's own failures`,
    `plant: seeds ${r.seeds.join(", ")} (the model trains on other seeds), ${r.machines} machines, ${r.hours} simulated hours each, ${r.rateHz} Hz, ` +
      `a prediction per machine every ${r.stepMinutes} min; load average ${r.loadAverage.map((x) => x.toFixed(2)).join(" ")}`,
    formatFailureScore(r.score),
    `(${r.seconds.toFixed(1)} s)`,
  ].join("\n");
}
