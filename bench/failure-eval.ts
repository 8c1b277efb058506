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
import { riskOfProbability } from "../engine/jobs/mod.js";
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
  failures: number;
  steps: number;
  /** Steps of lives that ended in a failure, and the RMSE over them (capped truth), hours. */
  lifeSteps: number;
  rmseCappedHours: number;
  /** Steps less than the cap before a failure, and the RMSE over them, hours. */
  nearSteps: number;
  rmseNearHours: number;
  /** Per lead time: failures seen from at least that long before, and those warned (risk ≥ high) by then. */
  leads: Array<{ leadHours: number; failures: number; warned: number }>;
  falseHighSteps: number;
  farSteps: number;
  trainReport: unknown;
  loadAverage: number[];
  seconds: number;
}

/** Runs the evaluation. */
export async function runFailureEval(o: FailureEvalOptions): Promise<FailureEvalReport> {
  const started = performance.now();
  const sim = await simFailureModel(o.cacheDir);
  const model = await FailureModel.fromBytes(sim.bytes, sim.path ?? "built-in simulator model");
  const acc = newAccumulator(o.leadHours);
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
      await scoreTrace(trace, model, acc);
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
    failures: acc.failures,
    steps: acc.steps,
    lifeSteps: acc.lifeN,
    rmseCappedHours: Math.sqrt(acc.lifeSs / Math.max(1, acc.lifeN)),
    nearSteps: acc.nearN,
    rmseNearHours: Math.sqrt(acc.nearSs / Math.max(1, acc.nearN)),
    leads: acc.leads,
    falseHighSteps: acc.falseHigh,
    farSteps: acc.far,
    trainReport: sim.report,
    loadAverage: loadavg(),
    seconds: (performance.now() - started) / 1000,
  };
}

interface Accumulator {
  failures: number;
  steps: number;
  lifeN: number;
  lifeSs: number;
  nearN: number;
  nearSs: number;
  far: number;
  falseHigh: number;
  leads: Array<{ leadHours: number; failures: number; warned: number }>;
}

function newAccumulator(leadHours: readonly number[]): Accumulator {
  return {
    failures: 0,
    steps: 0,
    lifeN: 0,
    lifeSs: 0,
    nearN: 0,
    nearSs: 0,
    far: 0,
    falseHigh: 0,
    leads: leadHours.map((h) => ({ leadHours: h, failures: 0, warned: 0 })),
  };
}

/** Predicts every step of the trace and adds its figures. */
async function scoreTrace(trace: FeatureTrace, model: FailureModel, acc: Accumulator): Promise<void> {
  const capHours = model.rulCap * model.cycleHours;
  const horizonHours = model.horizonCycles * model.cycleHours;
  for (const [machine, rows] of trace.machineRows) {
    const n = rows.times.length;
    const predictions = await model.predict(Float64Array.from(rows.values), n);
    const high = predictions.map((p) => {
      const r = riskOfProbability(p.failure_probability);
      return r === "high" || r === "critical";
    });
    const failures = trace.failures.filter((f) => f.machine_id === machine);
    const renewals = trace.maintenance.filter((m) => m.machine_id === machine && m.components_replaced.length > 0).map((m) => m.end);
    acc.failures += failures.length;
    acc.steps += n;
    for (let i = 0; i < n; i++) {
      const t = rows.times[i];
      // The next failure of this life: none when a renewal comes first.
      const f = failures.find((x) => x.at >= t);
      const renewedFirst = renewals.some((r) => r > t && (f === undefined || r < f.at));
      const trueHours = f === undefined || renewedFirst ? Number.POSITIVE_INFINITY : (f.at - t) / 3_600_000;
      if (trueHours > 2 * horizonHours) {
        acc.far++;
        if (high[i]) acc.falseHigh++;
      }
      if (!Number.isFinite(trueHours)) continue;
      const e = predictions[i].time_to_failure_hours - Math.min(trueHours, capHours);
      acc.lifeN++;
      acc.lifeSs += e * e;
      if (trueHours < capHours) {
        acc.nearN++;
        acc.nearSs += e * e;
      }
    }
    for (const f of failures) countLeads(f.at, rows.times, high, renewals, trace.startTime, capHours, acc);
  }
}

/** For each lead time: was the machine at risk ≥ high at a step in [at − cap, at − lead] of its life? */
function countLeads(
  at: number,
  times: readonly number[],
  high: readonly boolean[],
  renewals: readonly number[],
  start: number,
  capHours: number,
  acc: Accumulator,
): void {
  const born = Math.max(start, ...renewals.filter((r) => r <= at));
  for (const lead of acc.leads) {
    const by = at - lead.leadHours * 3_600_000;
    if (by <= born) continue;
    let i = times.length - 1;
    while (i >= 0 && times[i] > by) i--;
    if (i < 0 || times[i] <= born) continue;
    lead.failures++;
    const from = Math.max(born, at - capHours * 3_600_000);
    let warned = false;
    for (; i >= 0 && times[i] > from && !warned; i--) warned = high[i];
    if (warned) lead.warned++;
  }
}

/** The report as a person reads it. */
export function formatFailureEvalReport(r: FailureEvalReport): string {
  const pct = (a: number, b: number) => (b > 0 ? `${((100 * a) / b).toFixed(0)}%` : "—");
  return [
    `failure evaluation: the built-in plant's failure model ${r.model} on the simulator's own failures`,
    `plant: seeds ${r.seeds.join(", ")} (the model trains on other seeds), ${r.machines} machines, ${r.hours} simulated hours each, ${r.rateHz} Hz; load average ${r.loadAverage.map((x) => x.toFixed(2)).join(" ")}`,
    `failures: ${r.failures}; prediction steps: ${r.steps}`,
    `RMSE of time to failure: ${r.rmseCappedHours.toFixed(2)} h over ${r.lifeSteps} steps of lives that ended in a failure (truth capped at the model's 48 h); ` +
      `${r.rmseNearHours.toFixed(2)} h over the ${r.nearSteps} steps less than 48 h before a failure`,
    ...r.leads.map(
      (l) =>
        `warned ≥ ${l.leadHours} h ahead (risk ≥ high at a step 48 h to ${l.leadHours} h before): ${l.warned} of ${l.failures} failures (${pct(l.warned, l.failures)})`,
    ),
    `false highs: ${r.falseHighSteps} of ${r.farSteps} steps (${pct(r.falseHighSteps, r.farSteps)}) at risk ≥ high while the failure was more than twice the horizon away or never came`,
    `(${r.seconds.toFixed(1)} s)`,
  ].join("\n");
}
