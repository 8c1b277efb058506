/**
 * `linewatch rules`: the Western Electric and Nelson rules, each with its false-alarm rate per
 * point on in-control normal data for the run lengths given, and which rules a false-alarm
 * budget turns on.
 */
import { Command } from "commander";
import {
  NELSON_RULES,
  WE_RULES,
  spcRuleRate,
  type SpcRule,
  ALL_RULES,
  rulesForBudget,
  DEFAULT_SPC_PARAMS,
  type SpcParams,
} from "../../operators/spc/mod.js";
import { numberOption } from "./options.js";
import { addRunLengthFlags, type RunLengthFlags } from "./analysis-flags.js";

interface RulesFlags extends RunLengthFlags {
  faBudget?: number;
  json?: boolean;
}

export interface RuleReport {
  chart: "western_electric" | "nelson";
  rule: string;
  description: string;
  window: number;
  false_alarm_rate: number;
  average_run_length: number;
  derivation: string;
  on: boolean;
}

/** Each rule's rate for the run lengths in `params` (the layout's rates are for the defaults). */
export function ruleReports(params: SpcParams, budget?: number): { rules: RuleReport[]; rate: number } {
  const selection = budget === undefined ? ALL_RULES : rulesForBudget(budget, params);
  const rateOf = (r: SpcRule): number => {
    switch (r.runParam) {
      case "we4Run":
        return spcRuleRate.sameSide(params.we4Run);
      case "n2Run":
        return spcRuleRate.sameSide(params.n2Run);
      case "n3Run":
        return spcRuleRate.monotone(params.n3Run);
      case "n4Run":
        return spcRuleRate.alternating(params.n4Run);
      case "n7Run":
        return spcRuleRate.within1(params.n7Run);
      case "n8Run":
        return spcRuleRate.beyond1(params.n8Run);
      default:
        return r.falseAlarmRate;
    }
  };
  const report = (chart: RuleReport["chart"], r: SpcRule, mask: number): RuleReport => {
    const rate = rateOf(r);
    return {
      chart,
      rule: r.name,
      description: r.runParam ? r.description.replace(/^\d+/, String(params[r.runParam])) : r.description,
      window: r.runParam ? params[r.runParam] : r.window,
      false_alarm_rate: rate,
      average_run_length: 1 / rate,
      derivation: r.derivation,
      on: (mask & r.bit) !== 0,
    };
  };
  return {
    rules: [
      ...WE_RULES.map((r) => report("western_electric", r, selection.we)),
      ...NELSON_RULES.map((r) => report("nelson", r, selection.nelson)),
    ],
    rate: selection.rate,
  };
}

export function rulesCommand(): Command {
  const d = DEFAULT_SPC_PARAMS;
  const command = new Command("rules")
    .description("list the SPC rules with their false-alarm rates on in-control normal data, and which rules a budget turns on")
    .option("--fa-budget <p>", "false alarms per point a key may have; shows the rules it allows", numberOption("--fa-budget"));
  return addRunLengthFlags(command)
    .option("--json", "print JSON")
    .action((flags: RulesFlags) => {
      const params = { ...d, ...flags };
      const { rules, rate } = ruleReports(params, flags.faBudget);
      if (flags.json) {
        process.stdout.write(
          JSON.stringify({ fa_budget: flags.faBudget ?? null, rules, rate_bound: flags.faBudget === undefined ? null : rate }, null, 2) +
            "\n",
        );
        return;
      }
      process.stdout.write("rule  on   rate/point    ARL      description\n");
      for (const r of rules) {
        process.stdout.write(
          `${r.rule.padEnd(5)} ${r.on ? "yes" : " no"}  ${r.false_alarm_rate.toExponential(3).padStart(10)}  ${r.average_run_length.toFixed(0).padStart(7)}  ${r.description}\n`,
        );
      }
      process.stdout.write(
        "\nRates are P(rule fires at a given point) for independent normal data with known limits and a full window " +
          "(closed forms in operators/spc/layout.ts); ARL = 1 / rate.\n",
      );
      if (flags.faBudget !== undefined) {
        process.stdout.write(
          `With --fa-budget ${flags.faBudget}: the rules on have a summed rate of ${rate.toExponential(3)} per point (an upper bound on their union).\n`,
        );
      }
    });
}
