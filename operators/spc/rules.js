/**
 * Which rules a key reports: the selection a false-alarm budget allows, and the masking of the
 * rules that are off. Browser-clean (no Node imports): the dashboard's what-if preview masks its
 * rows with the same code as the engine.
 */
import { ConfigError } from "../../engine/core/web.js";
import { SPC_COL, spcRuleRate } from "./layout.js";
/** A key that raises no alerts. */
export const NO_ALERTS = Object.freeze({ we: 0, nelson: 0, rate: 0, charts: false });
export const ALL_RULES = Object.freeze({ we: 0b1111, nelson: 0b11111111, rate: Number.NaN });
/**
 * The rules a false-alarm budget allows, most informative first: beyond 3σ, 2 of 3 beyond 2σ,
 * 4 of 5 beyond 1σ, the run on one side (WE4, then Nelson 2), the trend (N3), the mixture (N8),
 * the alternation (N4), the stratification (N7). A rule is on while the sum of the rates of the
 * rules on stays within the budget; the sum bounds the union's rate from above, so the budget is
 * never exceeded. A Nelson rule with a Western Electric twin (1, 5, 6) follows its twin.
 */
export function rulesForBudget(budget, params) {
    if (!(budget >= 0) || !Number.isFinite(budget))
        throw new ConfigError("falseAlarmBudget", `must be a probability ≥ 0, got ${budget}`);
    const order = [
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
    const selection = { we: 0, nelson: 0, rate: 0 };
    for (const r of order) {
        if (selection.rate + r.rate > budget)
            continue;
        selection.rate += r.rate;
        if (r.we !== undefined)
            selection.we |= 1 << (r.we - 1);
        if (r.nelson !== undefined)
            selection.nelson |= 1 << (r.nelson - 1);
    }
    return selection;
}
/** Clears the bits of the rules that are off for the key (rows without limits have NaN masks: left as they are). */
export function maskRules(rows, at, rules) {
    if (!Number.isFinite(rows[at + SPC_COL.we_mask]))
        return;
    if (rules.charts === false) {
        rows[at + SPC_COL.cusum_alarm] = 0;
        rows[at + SPC_COL.ewma_alarm] = 0;
    }
    rows[at + SPC_COL.we_mask] = rows[at + SPC_COL.we_mask] & rules.we;
    rows[at + SPC_COL.nelson_mask] = rows[at + SPC_COL.nelson_mask] & rules.nelson;
}
