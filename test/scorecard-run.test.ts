/**
 * The scorecard of `linewatch run` on the simulator as a user gets it: the built CLI
 * (dist/engine/cli/main.js, `npm run build` first) in a child process, its JSON against the labels
 * `linewatch simulate --labels` writes for the same seed (the simulator is deterministic).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { FAULT_KINDS, type FaultLabel } from "../connectors/sim/mod.js";
import type { Scorecard } from "../engine/jobs/mod.js";
import { runCli, startCli } from "./kit/cli.js";

const dir = mkdtempSync(join(tmpdir(), "linewatch-scorecard-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SEED = "7";

describe("run - fault-detection scorecard on the simulator", () => {
  it("run --speed max --duration 10m exits 0, prints the table and writes JSON whose injected counts are simulate's labels", async () => {
    const json = join(dir, "card.json");
    const output = await runCli(
      ["run", "--seed", SEED, "--speed", "max", "--duration", "10m", "--no-file", "--alerts", join(dir, "alerts.ndjson")].concat([
        "--summary-interval",
        "0",
        "--scorecard-json",
        json,
      ]),
      dir,
    );
    const labelsPath = join(dir, "labels.ndjson");
    await runCli(["simulate", "--seed", SEED, "--duration", "10m", "--out", join(dir, "readings.ndjson"), "--labels", labelsPath], dir);
    const labels = readFileSync(labelsPath, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as FaultLabel);
    const card = JSON.parse(readFileSync(json, "utf8")) as Scorecard;

    expect(labels.length).toBeGreaterThan(5);
    for (const kind of FAULT_KINDS) {
      expect(card.kinds.find((k) => k.kind === kind)?.injected, kind).toBe(labels.filter((l) => l.fault === kind).length);
    }
    expect(card.all.injected).toBe(labels.length);
    expect(card.labelsAfterEnd).toBe(0);
    expect(card.sensorKeys).toBe(48);
    // 10 minutes of readings at 10 Hz: the last reading is within the last tick.
    expect(card.simulatedHours).toBeGreaterThan(10 / 60 - 1e-4);
    expect(card.simulatedHours).toBeLessThanOrEqual(10 / 60);
    // Every opening is either attributed to a detected fault or false.
    expect(card.falseEpisodes).toBeLessThanOrEqual(card.openings);
    expect(card.all.detected).toBeLessThanOrEqual(card.all.injected);
    expect(output).toMatch(
      /fault kind +\| injected \| detected \| by escalation \| +rate \| median delay \| p90 delay \| episodes\/fault \(median, mean, max\)/,
    );
    expect(output).toMatch(
      /false episodes: \d+ over 0\.167 simulated hours, 48 sensor keys: [\d.]+ per key per hour \(worst: .*\); target ≤ 1 per key per 8 h/,
    );
  });

  it("prints and writes the scorecard of what was read when stopped (Ctrl-C) before the end", async () => {
    const json = join(dir, "stopped.json");
    const run = startCli(
      ["run", "--seed", SEED, "--speed", "120", "--no-file", "--alerts", join(dir, "alerts-stopped.ndjson")].concat([
        "--summary-interval",
        "200ms",
        "--scorecard-json",
        json,
      ]),
      dir,
    );
    // Stop once the run reports progress (its summary line), some simulated minutes in.
    while (!/rec\/s/.test(run.output()) && run.child.exitCode === null) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 1500));
    expect(await run.stop()).toBe(0);
    const card = JSON.parse(readFileSync(json, "utf8")) as Scorecard;
    expect(card.simulatedHours).toBeGreaterThan(0);
    expect(card.sensorKeys).toBe(48);
    expect(run.output()).toContain("false episodes:");
  });

  it("refuses --scorecard-json on NATS: no labels there", async () => {
    const run = startCli(["run", "--nats", "nats://127.0.0.1:1", "--scorecard-json", join(dir, "x.json")], dir);
    expect(await run.exited).not.toBe(0);
    expect(run.output()).toContain("--scorecard-json");
  });
});
