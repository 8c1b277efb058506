/**
 * `linewatch rules`: the Western Electric and Nelson rules, each with its false-alarm rate per
 * point on in-control normal data for the run lengths given, and what a false-alarm budget turns
 * on — by default the budget `run` and `demo` start from, so a user sees what the default
 * alerting is and why.
 */
import { Command } from "commander";
import {
  jumpDescription,
  MR_RULES,
  NELSON_RULES,
  WE_RULES,
  spcRuleRate,
  type SpcRule,
  DEFAULT_SPC_PARAMS,
  TEXTBOOK_RULES,
  type BudgetPlan,
  planForBudget,
  type RuleSelection,
  type SpcParams,
} from "../../operators/spc/mod.js";
import { numberOption } from "./options.js";
import { ALERTING_SPC_DEFAULTS, addRunLengthFlags, parseFaBudget, type RunLengthFlags } from "./analysis-flags.js";

interface RulesFlags extends RunLengthFlags {
  faBudget: string;
  rate: number;
  all?: boolean;
  json?: boolean;
}

export interface RuleReport {
  chart: "western_electric" | "nelson" | "moving_range";
  rule: string;
  description: string;
  window: number;
  false_alarm_rate: number;
  average_run_length: number;
  derivation: string;
  on: boolean;
}

/** Each rule's rate for the run lengths in `params` (the layout's rates are for the defaults), and whether `selection` has it on. */
export function ruleReports(params: SpcParams, selection: RuleSelection = TEXTBOOK_RULES): { rules: RuleReport[]; rate: number } {
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
      case "noisyRun":
        return spcRuleRate.noisy(params.noisyRun);
      case "stuckRun":
        return spcRuleRate.stuck(params.stuckRun);
      default:
        return r.name === "JUMP" ? spcRuleRate.jump(params.jumpLimit) : r.falseAlarmRate;
    }
  };
  const report = (chart: RuleReport["chart"], r: SpcRule, mask: number): RuleReport => {
    const rate = rateOf(r);
    const ranges = chart === "moving_range" ? 1 : 0; // a run of r moving ranges spans r + 1 readings
    return {
      chart,
      rule: r.name,
      description: describe(r, params),
      window: r.runParam ? params[r.runParam] + ranges : r.window,
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
      ...MR_RULES.map((r) => report("moving_range", r, selection.mr)),
    ],
    rate: selection.rate,
  };
}

/** The rule's text for the run length or limit in `params`. */
function describe(r: SpcRule, params: SpcParams): string {
  if (r.name === "JUMP") return `${jumpDescription(params.jumpLimit)} (rate for a known σ; a budget's limit allows for σ from a baseline)`;
  const text = r.runParam ? r.description.replace(/^\d+/, String(params[r.runParam])) : r.description;
  return r.name === "STUCK" ? `${text} (rate for readings tying with the one before at most half the time)` : text;
}

export function rulesCommand(): Command {
  const command = new Command("rules")
    .description(
      "list the SPC rules with their false-alarm rates on in-control normal data, and what a false-alarm budget turns on (default: the budget of run and demo)",
    )
    .option(
      "--fa-budget <p|1/D>",
      "false alarms a key may have: per reading (0.0027), or one per duration (1/8h)",
      ALERTING_SPC_DEFAULTS.faBudget,
    )
    .option("--rate <hz>", "readings per second per key, for a budget per duration", numberOption("--rate"), 10)
    .option("--all", "every rule at its textbook run length, as replay runs them (no budget)");
  return addRunLengthFlags(command)
    .option("--json", "print JSON")
    .action((flags: RulesFlags) => {
      const params = { ...DEFAULT_SPC_PARAMS, ...definedRunLengths(flags) };
      if (flags.all) {
        printRules(ruleReports(params, TEXTBOOK_RULES), flags.json === true, null);
        return;
      }
      // JUMP's limit allows for the error of σ from `run`'s baseline.
      const alerting = { ...params, baselineN: ALERTING_SPC_DEFAULTS.baselineN };
      const plan = planForBudget(parseFaBudget(flags.faBudget, flags.rate), alerting, {
        we4Run: flags.we4Run !== undefined,
        jumpLimit: flags.jumpLimit !== undefined,
        noisyRun: flags.noisyRun !== undefined,
        stuckRun: flags.stuckRun !== undefined,
      });
      printRules(ruleReports(plan.params, plan.rules), flags.json === true, { plan, text: flags.faBudget, rate: flags.rate });
    });
}

function definedRunLengths(flags: RulesFlags): Partial<SpcParams> {
  const out: Partial<SpcParams> = {};
  for (const k of ["we4Run", "n2Run", "n3Run", "n4Run", "n7Run", "n8Run", "jumpLimit", "noisyRun", "stuckRun"] as const)
    if (flags[k] !== undefined) out[k] = flags[k];
  return out;
}

interface BudgetShown {
  plan: BudgetPlan;
  text: string;
  rate: number;
}

function printRules(report: { rules: RuleReport[]; rate: number }, json: boolean, budget: BudgetShown | null): void {
  const out = process.stdout;
  if (json) {
    const charts = budget === null ? null : chartsOf(budget.plan);
    out.write(
      `${JSON.stringify({ fa_budget: budget?.plan.budget ?? null, rules: report.rules, charts, rate_bound: budget === null ? null : report.rate + 1 / budget.plan.arl.cusum + 1 / budget.plan.arl.ewma }, null, 2)}\n`,
    );
    return;
  }
  if (budget !== null) out.write(budgetHeader(budget));
  out.write("rule  on   rate/point    ARL      description\n");
  for (const r of report.rules) {
    out.write(
      `${r.rule.padEnd(5)} ${r.on ? "yes" : " no"}  ${r.false_alarm_rate.toExponential(3).padStart(10)}  ${r.average_run_length.toFixed(0).padStart(7)}  ${r.description}\n`,
    );
  }
  if (budget !== null) out.write(chartLines(budget.plan));
  out.write(
    "\nRates are P(rule fires at a given point) for independent normal data with known limits and a full window " +
      "(closed forms in operators/spc/layout.ts); ARL = 1 / rate. CUSUM ARL: Siegmund's approximation; EWMA ARL: " +
      "the Lucas & Saccucci Markov chain (operators/spc/budget.ts).\n",
  );
}

function chartsOf(plan: BudgetPlan) {
  const p = plan.params;
  return {
    cusum: { k: p.cusumK, h: p.cusumH, average_run_length: plan.arl.cusum },
    ewma: { lambda: p.ewmaLambda, L: p.ewmaL, average_run_length: plan.arl.ewma },
  };
}

function budgetHeader({ plan, text, rate }: BudgetShown): string {
  const perReading = text.startsWith("1/") ? ` (one false alarm per key per ${text.slice(2)} at ${rate} readings/s)` : "";
  return (
    `False-alarm budget ${plan.budget.toExponential(3)} per reading${perReading}: in-control ARL ≥ ${Math.round(1 / plan.budget).toLocaleString("en")} readings per key.\n` +
    "Half goes to the rules: a quarter to the chart-of-levels rules (most informative first, WE4's run lengthened to fit),\n" +
    "a quarter to the moving-range rules (a twelfth each: JUMP's limit, the NOISY and STUCK runs set to fit);\n" +
    "a quarter each to CUSUM and EWMA, whose thresholds are set to it.\n" +
    (text === ALERTING_SPC_DEFAULTS.faBudget
      ? "This is what `run` and `demo` start from: a Shewhart 3σ chart alone (ARL 370) would raise a false alarm every 37 s on a 10 Hz sensor.\n\n"
      : "\n")
  );
}

function chartLines(plan: BudgetPlan): string {
  const p = plan.params;
  const union = plan.rules.rate + 1 / plan.arl.cusum + 1 / plan.arl.ewma;
  return (
    `CUSUM yes  k = ${p.cusumK}, h = ${p.cusumH.toFixed(3)}: ARL ${Math.round(plan.arl.cusum).toLocaleString("en")}\n` +
    `EWMA  yes  λ = ${p.ewmaLambda}, L = ${p.ewmaL.toFixed(3)}: ARL ${Math.round(plan.arl.ewma).toLocaleString("en")}\n` +
    `Summed rate of everything on: ${union.toExponential(3)} per reading (an upper bound on their union; budget ${plan.budget.toExponential(3)}).\n` +
    settlingLine(plan) +
    CENSORED_LINE
  );
}

/** What a key whose readings are held at a physical limit charts (kernels/spc.ts, censored baseline). */
const CENSORED_LINE =
  "Readings held at a physical limit (a baseline whose ties beyond --baseline-ties-max are readings at its minimum C): a censored chart —\n" +
  "μ and σ by maximum likelihood, a reading at or below C charted as its conditional expected value (Steiner & MacKay 2000);\n" +
  "the rates above are for normal readings, whose upper tail such a chart keeps and whose spread it narrows.\n";

/** What a settling key (a sensor's readings for a while after a mode change) runs instead. */
function settlingLine(plan: BudgetPlan): string {
  const { window, limit, rate } = plan.settlingStep;
  return (
    `Settling keys (run and demo: a sensor's readings while it settles after a mode change): the moving-range rules above and STEP;\n` +
    `the chart-of-levels rules, CUSUM and EWMA are off, and STEP takes the chart-of-levels rules' quarter: windows of ${window}, ` +
    `limit ${limit.toFixed(2)}σ (widened for σ from a baseline), rate ${rate.toExponential(3)}, ARL ${Math.round(1 / rate).toLocaleString("en")}.\n`
  );
}
