import { describe, expect, it } from "vitest";
import { alertSetting, formatAlertEvalReport, runAlertEval } from "../bench/alert-eval.js";
import { ConfigError } from "../engine/core/mod.js";

// The alert evaluation's smoke size runs with the suite so it never goes stale. Nothing here looks
// at a time; the figures are checked for what every setting must share: the same readings and faults.
describe("bench - alert evaluation smoke run", () => {
  it("scores two settings over the same readings and the same injected faults, one table and summary line each", async () => {
    const report = await runAlertEval({
      hours: 0.1,
      seed: 3,
      machines: 2,
      graceMs: 60_000,
      settings: [alertSetting("default"), alertSetting("--fa-budget 0.0027  --we4-run 6")],
    });
    expect(report.settings.map((s) => s.name)).toEqual(["default", "--fa-budget 0.0027 --we4-run 6"]);
    const [a, b] = report.settings.map((s) => s.scorecard);
    expect(report.sensors).toBe(12);
    expect(report.settings[0].readings).toBe(report.settings[1].readings);
    expect(report.settings[0].readings).toBe(12 * 10 * 360);
    expect(a.kinds.map((k) => k.injected)).toEqual(b.kinds.map((k) => k.injected));
    expect(a.all.injected).toBeGreaterThan(0);
    expect(a.openings).toBeGreaterThan(0);
    const text = formatAlertEvalReport(report);
    expect(text.match(/^setting: /gm)?.length).toBe(2);
    expect(text).toMatch(/^ {2}--fa-budget 0\.0027 --we4-run 6 {2}detected /m);
  });

  it("refuses a setting with a flag run does not know, before running anything", async () => {
    await expect(
      runAlertEval({
        hours: 8,
        seed: 1,
        machines: 8,
        graceMs: 60_000,
        settings: [alertSetting("default"), alertSetting("--fa-budjet 0.01")],
      }),
    ).rejects.toThrow(ConfigError);
  });
});
