/**
 * The failure-prediction scorecard of a run on the plant simulator: the machines' predictions
 * against the simulator's failures (connectors/sim FailureLabel, the ground truth) and component
 * replacements (MaintenanceRecord). Pure logic, no I/O: the run feeds predictions, failures and
 * maintenance as they come and reads the figures at its end; `bench failure` does the same on
 * longer plants.
 *
 * Definitions (hours of event time; a machine's life runs from a component's installation — a
 * replacement's end, or the data's start — to its failure or its next replacement):
 * - RMSE of time to failure: over the predictions in lives that ended in a failure, against the
 *   true time to failure capped at the model's cap (its target); and over those less than the cap
 *   before the failure (the part a planner acts on);
 * - warned `lead` ahead: a prediction of the failed machine at most the cap and at least `lead`
 *   before the failure was at risk ≥ high (health < 60: failure probability > 0.4). A failure
 *   counts for a lead when its life has a prediction at least `lead` before it;
 * - false highs: predictions at risk ≥ high while the true time to failure was more than twice
 *   the model's horizon away, or no failure ended the life in the data.
 */
import type { FailureLabel, MaintenanceRecord } from "../../connectors/sim/mod.js";

/** Predictions a scorecard keeps (about 40 bytes each); later ones are counted, not scored. */
export const FAILURE_SCORECARD_PREDICTIONS_MAX = 2_000_000;
export const DEFAULT_LEAD_HOURS: readonly number[] = [1, 2, 4, 8];

export interface FailureScore {
  failures: number;
  predictions: number;
  lifePredictions: number;
  rmseCappedHours: number | null;
  nearPredictions: number;
  rmseNearHours: number | null;
  leads: Array<{ leadHours: number; failures: number; warned: number }>;
  farPredictions: number;
  falseHighs: number;
  predictionsUnscored: number;
  capHours: number;
  horizonHours: number;
}

/** One prediction as the scorecard reads it. */
export interface ScoredPrediction {
  machine_id: string;
  /** Event time of the features, epoch ms. */
  at: number;
  time_to_failure_hours: number;
  /** Risk ≥ high. */
  high: boolean;
}

export class FailureScorecard {
  private readonly byMachine = new Map<string, { at: number[]; ttf: number[]; high: boolean[] }>();
  private readonly failures: FailureLabel[] = [];
  private readonly renewals = new Map<string, number[]>();
  private kept = 0;
  private unscored = 0;
  private first = Number.POSITIVE_INFINITY;

  constructor(
    private readonly capHours: number,
    private readonly horizonHours: number,
    private readonly leadHours: readonly number[] = DEFAULT_LEAD_HOURS,
  ) {}

  /** Readings from `first` on were handed to the model: a life without a replacement starts there. */
  coverFrom(first: number): void {
    if (first < this.first) this.first = first;
  }

  addFailures(labels: readonly FailureLabel[]): void {
    this.failures.push(...labels);
  }

  addMaintenance(records: readonly MaintenanceRecord[]): void {
    for (const r of records) {
      if (r.components_replaced.length === 0) continue;
      const list = this.renewals.get(r.machine_id) ?? [];
      list.push(r.end);
      this.renewals.set(r.machine_id, list);
    }
  }

  observe(p: ScoredPrediction): void {
    if (this.kept >= FAILURE_SCORECARD_PREDICTIONS_MAX || !Number.isFinite(p.time_to_failure_hours)) {
      this.unscored++;
      return;
    }
    this.kept++;
    let m = this.byMachine.get(p.machine_id);
    if (m === undefined) {
      m = { at: [], ttf: [], high: [] };
      this.byMachine.set(p.machine_id, m);
    }
    m.at.push(p.at);
    m.ttf.push(p.time_to_failure_hours);
    m.high.push(p.high);
  }

  result(): FailureScore {
    const s: Sums = { lifeN: 0, lifeSs: 0, nearN: 0, nearSs: 0, far: 0, falseHigh: 0, predictions: 0 };
    const leads = this.leadHours.map((h) => ({ leadHours: h, failures: 0, warned: 0 }));
    for (const [machine, m] of this.byMachine) {
      const order = m.at.map((_, i) => i).sort((a, b) => m.at[a] - m.at[b]);
      const at = order.map((i) => m.at[i]);
      const ttf = order.map((i) => m.ttf[i]);
      const high = order.map((i) => m.high[i]);
      const failures = this.failures.filter((f) => f.machine_id === machine).sort((a, b) => a.at - b.at);
      const renewals = this.renewals.get(machine) ?? [];
      this.addErrors(at, ttf, high, failures, renewals, s);
      for (const f of failures) this.addLeads(f.at, at, high, renewals, leads);
    }
    return {
      failures: this.failures.length,
      predictions: s.predictions,
      lifePredictions: s.lifeN,
      rmseCappedHours: s.lifeN > 0 ? Math.sqrt(s.lifeSs / s.lifeN) : null,
      nearPredictions: s.nearN,
      rmseNearHours: s.nearN > 0 ? Math.sqrt(s.nearSs / s.nearN) : null,
      leads,
      farPredictions: s.far,
      falseHighs: s.falseHigh,
      predictionsUnscored: this.unscored,
      capHours: this.capHours,
      horizonHours: this.horizonHours,
    };
  }

  private addErrors(at: number[], ttf: number[], high: boolean[], failures: FailureLabel[], renewals: number[], s: Sums): void {
    let next = 0;
    for (let i = 0; i < at.length; i++) {
      const t = at[i];
      while (next < failures.length && failures[next].at < t) next++;
      const f = failures[next];
      const renewedFirst = renewals.some((r) => r > t && (f === undefined || r < f.at));
      const trueHours = f === undefined || renewedFirst ? Number.POSITIVE_INFINITY : (f.at - t) / 3_600_000;
      s.predictions++;
      if (trueHours > 2 * this.horizonHours) {
        s.far++;
        if (high[i]) s.falseHigh++;
      }
      if (!Number.isFinite(trueHours)) continue;
      const e = ttf[i] - Math.min(trueHours, this.capHours);
      s.lifeN++;
      s.lifeSs += e * e;
      if (trueHours < this.capHours) {
        s.nearN++;
        s.nearSs += e * e;
      }
    }
  }

  private addLeads(failureAt: number, at: number[], high: boolean[], renewals: number[], leads: FailureScore["leads"]): void {
    const born = Math.max(this.first, ...renewals.filter((r) => r <= failureAt));
    for (const lead of leads) {
      const by = failureAt - lead.leadHours * 3_600_000;
      let i = at.length - 1;
      while (i >= 0 && at[i] > by) i--;
      if (i < 0 || at[i] <= born) continue;
      lead.failures++;
      const from = Math.max(born, failureAt - this.capHours * 3_600_000);
      let warned = false;
      for (; i >= 0 && at[i] > from && !warned; i--) warned = high[i];
      if (warned) lead.warned++;
    }
  }
}

interface Sums {
  lifeN: number;
  lifeSs: number;
  nearN: number;
  nearSs: number;
  far: number;
  falseHigh: number;
  predictions: number;
}

/** The scorecard as a person reads it. */
export function formatFailureScore(s: FailureScore): string {
  const pct = (a: number, b: number) => (b > 0 ? `${((100 * a) / b).toFixed(0)}%` : "—");
  const hours = (x: number | null) => (x === null ? "—" : `${x.toFixed(2)} h`);
  return [
    `failure-prediction scorecard: ${s.failures} failures, ${s.predictions} predictions`,
    `RMSE of time to failure: ${hours(s.rmseCappedHours)} over ${s.lifePredictions} predictions in lives that ended in a failure (truth capped at ${s.capHours} h); ` +
      `${hours(s.rmseNearHours)} over the ${s.nearPredictions} less than ${s.capHours} h before a failure`,
    `warned at risk ≥ high (${s.capHours} h to the lead before the failure): ${s.leads.map((l) => `≥ ${l.leadHours} h ahead ${l.warned} of ${l.failures} (${pct(l.warned, l.failures)})`).join(", ")}`,
    `false highs: ${s.falseHighs} of ${s.farPredictions} predictions (${pct(s.falseHighs, s.farPredictions)}) at risk ≥ high more than ${2 * s.horizonHours} h before a failure or with none coming` +
      (s.predictionsUnscored > 0 ? `; ${s.predictionsUnscored} predictions not scored` : ""),
  ].join("\n");
}
