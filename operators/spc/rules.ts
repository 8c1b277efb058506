/**
 * Which rules a key reports: the selection a false-alarm budget allows, and the masking of the
 * rules that are off. Browser-clean (no Node imports): the dashboard's what-if preview masks its
 * rows with the same code as the engine.
 */
import { ConfigError } from "../../engine/core/web.js";
import { SPC_COL, spcRuleRate, type SpcParams } from "./layout.js";

/**
 * The rule masks a key reports: bit r − 1 of `we` for WE rule r, of `nelson` for Nelson rule r,
 * of `mr` for moving-range rule r (JUMP, NOISY, STUCK; layout.ts MR_RULES).
 */
export interface RuleSelection {
  we: number;
  nelson: number;
  mr: number;
  /** Upper bound on the false-alarm probability per point of the rules on (union bound). */
  rate: number;
  /** false: the CUSUM and EWMA alarms are cleared too (a key that raises no alerts). */
  charts?: boolean;
}

/** A key that raises no alerts. */
export const NO_ALERTS: RuleSelection = Object.freeze({ we: 0, nelson: 0, mr: 0, rate: 0, charts: false });

/** Every rule: rows pass unmasked. */
export const ALL_RULES: RuleSelection = Object.freeze({ we: 0b1111, nelson: 0b11111111, mr: 0b1111, rate: Number.NaN });

/** The textbook chart's rules, a key's default without a budget: every WE and Nelson rule, no moving-range rule. */
export const TEXTBOOK_RULES: RuleSelection = Object.freeze({ we: 0b1111, nelson: 0b11111111, mr: 0, rate: Number.NaN });

/**
 * What a key reports while its sensor settles after a mode change: the moving-range rules of
 * `rules`, with STEP. The level moves by construction then, so the charts of levels are off; the
 * differences of consecutive readings are not (a settling approach is slow), so a jump, a noisy
 * or a stuck sensor is still seen — and STEP's second difference of window means cancels the
 * approach's local linear trend, so a level shift is seen too.
 */
export function settlingRules(rules: RuleSelection): RuleSelection {
  return { we: 0, nelson: 0, mr: rules.mr | STEP_BIT, rate: rules.rate, charts: false };
}

/** STEP's bit in mr_mask: on for settling keys, which alone run it (a window of 0 elsewhere: it never fires). */
const STEP_BIT = 0b1000;

/**
 * The rules a false-alarm budget allows, most informative first: beyond 3σ, 2 of 3 beyond 2σ,
 * 4 of 5 beyond 1σ, the run on one side (WE4, then Nelson 2), the trend (N3), the mixture (N8),
 * the alternation (N4), the stratification (N7). A rule is on while the sum of the rates of the
 * rules on stays within the budget; the sum bounds the union's rate from above, so the budget is
 * never exceeded. A Nelson rule with a Western Electric twin (1, 5, 6) follows its twin.
 */
export function rulesForBudget(budget: number, params: SpcParams): RuleSelection {
  if (!(budget >= 0) || !Number.isFinite(budget)) throw new ConfigError("falseAlarmBudget", `must be a probability ≥ 0, got ${budget}`);
  const order: Array<{ we?: number; nelson?: number; rate: number }> = [
    { we: 1, nelson: 1, rate: spcRuleRate.beyond3() },
    { we: 2, nelson: 5, rate: spcRuleRate.twoOfThree() },
    { we: 3, nelson: 6, rate: spcRuleRate.fourOfFive() },
    { we: 4, rate: spcRuleRate.sameSide(params.we4Run) },
    { nelson: 2, rate: spcRuleRate.sameSide(params.n2Run) },
    { nelson: 3, rate: spcRuleRate.monotone(params.n3Run) },
    { nelson: 8, rate: spcRuleRate.beyond1(params.n8Run) },
    { nelson: 4, rate: spcRuleRate.alternating(params.n4Run) },
    { nelson: 7, rate: spcRuleRate.within1(params.n7Run) },
  ];
  const selection = { we: 0, nelson: 0, mr: 0, rate: 0 };
  for (const r of order) {
    if (selection.rate + r.rate > budget) continue;
    selection.rate += r.rate;
    if (r.we !== undefined) selection.we |= 1 << (r.we - 1);
    if (r.nelson !== undefined) selection.nelson |= 1 << (r.nelson - 1);
  }
  return selection;
}

/** Clears the bits of the rules that are off for the key (rows without limits have NaN masks: left as they are). */
export function maskRules(rows: Float64Array, at: number, rules: RuleSelection): void {
  if (!Number.isFinite(rows[at + SPC_COL.we_mask])) return;
  if (rules.charts === false) {
    rows[at + SPC_COL.cusum_alarm] = 0;
    rows[at + SPC_COL.ewma_alarm] = 0;
  }
  rows[at + SPC_COL.we_mask] = rows[at + SPC_COL.we_mask] & rules.we;
  rows[at + SPC_COL.nelson_mask] = rows[at + SPC_COL.nelson_mask] & rules.nelson;
  rows[at + SPC_COL.mr_mask] = rows[at + SPC_COL.mr_mask] & rules.mr;
}
