import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { runJob } from "../engine/jobs/run-job.js";
import { PlantSimulator, type FaultKind, type FaultLabel, type SimulatorOptions } from "../connectors/sim/plant-simulator.js";
import type { RecordAnalysis } from "../operators/analysis.js";
import { DEFAULT_SPC_PARAMS, SPC_COL } from "../operators/spc/layout.js";
import { spcAnalysis } from "../operators/spc/spc.js";
import { printFigures } from "./kit/figures.js";

/**
 * The plant simulator's injected faults, run through SPC as `linewatch run` runs it (one chart
 * per machine, sensor and operating mode), raise the rules a quality engineer would expect of
 * each kind of fault, far more often than the same readings without the fault do. The comparison
 * is with the simulator's fault-free twin: identical readings outside the fault windows.
 */
const START = Date.UTC(2026, 0, 1);
const SIMULATOR: Partial<SimulatorOptions> = {
  seed: 11,
  machines: 24,
  sensorTypes: ["pressure"],
  rateHz: 10,
  startTime: START,
  durationMs: 90 * 60_000,
  faultRate: 3,
};

/** Rule bits per kind of fault: we_mask bits 0–3, nelson_mask bits 4–11, CUSUM 12, EWMA 13. */
const WE = (r: number) => 1 << (r - 1);
const N = (r: number) => 1 << (r + 3);
const CUSUM = 1 << 12;
const EWMA = 1 << 13;
const EXPECTED: Record<FaultKind, number> = {
  // 10–20σ on one to three points: beyond 3σ.
  spike: WE(1),
  // 4–8σ for minutes: points beyond 2σ and 3σ, runs on one side, the drift charts.
  level_shift: WE(1) | WE(2) | WE(3) | WE(4) | N(2) | CUSUM | EWMA,
  // A ramp to 6–15σ: the same, plus the trend rule.
  slow_drift: WE(1) | WE(2) | WE(3) | WE(4) | N(2) | N(3) | CUSUM | EWMA,
  // One value repeated: every point on one side (and within 1σ when the value was near the centre).
  stuck: WE(4) | N(2) | N(7),
  // σ × 3–8: points beyond 2σ and 3σ, either side; runs beyond 1σ.
  noise_burst: WE(1) | WE(2) | WE(3) | N(8),
};

interface Fired {
  /** Per key (machine/sensor, any mode): times and rule bits of each record that had limits. */
  byKey: Map<string, { times: number[]; bits: number[] }>;
}

async function run(faultRate: number): Promise<Fired> {
  const fired: Fired = { byKey: new Map() };
  const spc = spcAnalysis({ params: { ...DEFAULT_SPC_PARAMS, baselineN: 300, sigmaMethod: "mr" }, ewmaField: "ewma" });
  const recording: RecordAnalysis = {
    ...spc,
    observe(row, ctx) {
      spc.observe?.(row, ctx);
      if (!(row[SPC_COL.limits_version] > 0) || ctx.key.endsWith("/settling")) return;
      const machineSensor = ctx.key.split("/").slice(0, 2).join("/");
      let k = fired.byKey.get(machineSensor);
      if (k === undefined) fired.byKey.set(machineSensor, (k = { times: [], bits: [] }));
      k.times.push(ctx.time);
      k.bits.push(
        row[SPC_COL.we_mask] | (row[SPC_COL.nelson_mask] << 4) | (row[SPC_COL.cusum_alarm] << 12) | (row[SPC_COL.ewma_alarm] << 13),
      );
    },
  };
  await runJob({
    simulator: { ...SIMULATOR, faultRate },
    analyses: [recording],
    keyByMode: true,
    // Pressure answers a mode change with a 20 s time constant; 5 of them is settled.
    settleMs: () => 100_000,
    workers: 2,
    groups: 8,
    batchRecordsMax: 2048,
    speed: Infinity,
    outPath: null,
    fileBytesMax: 1 << 30,
    zAlarm: 4,
    flushIntervalMs: 250,
    summaryIntervalMs: 0,
    console: new PassThrough(),
    stop: new Promise(() => {}),
  });
  return fired;
}

function labelsOf(): FaultLabel[] {
  const sim = new PlantSimulator(SIMULATOR);
  const labels: FaultLabel[] = [];
  while (!sim.done) {
    sim.nextColumns(65536);
    labels.push(...sim.drainLabels());
  }
  return labels.filter((l) => l.end < START + SIMULATOR.durationMs!);
}

/** Share of the label's points (with limits) at which an expected rule fired; null without limits. */
function firingShare(fired: Fired, label: FaultLabel): number | null {
  const k = fired.byKey.get(`${label.machine_id}/${label.sensor_type}`);
  if (k === undefined) return null;
  let n = 0;
  let hits = 0;
  for (let i = 0; i < k.times.length; i++) {
    if (k.times[i] < label.start || k.times[i] > label.end) continue;
    n++;
    if ((k.bits[i] & EXPECTED[label.fault]) !== 0) hits++;
  }
  return n === 0 ? null : hits / n;
}

describe("spc on the simulator - injected faults raise the expected rules", () => {
  it("each kind of fault makes its rules fire far more often than in the fault-free twin", async () => {
    const labels = labelsOf();
    const faulted = await run(SIMULATOR.faultRate!);
    const twin = await run(0);
    const byKind = new Map<FaultKind, { n: number; detected: number; share: number; twinShare: number }>();
    for (const label of labels) {
      const share = firingShare(faulted, label);
      const twinShare = firingShare(twin, label);
      if (share === null || twinShare === null) continue; // the key had no limits yet (baseline)
      const s = byKind.get(label.fault) ?? { n: 0, detected: 0, share: 0, twinShare: 0 };
      s.n++;
      s.share += share;
      s.twinShare += twinShare;
      // Detected: the rules fire at a clearly higher rate than chance gives the same readings
      // without the fault — at least 3× the twin's rate, and at a third of the fault's points
      // (every point for a spike: it is only one to three points long).
      if (share >= 3 * twinShare && share >= (label.fault === "spike" ? 1 : 1 / 3)) s.detected++;
      byKind.set(label.fault, s);
    }
    const report = [...byKind]
      .map(
        ([k, s]) =>
          `${k}: ${s.detected}/${s.n} detected, mean firing share ${(s.share / s.n).toFixed(2)} vs twin ${(s.twinShare / s.n).toFixed(3)}`,
      )
      .join("; ");
    printFigures(`spc on the simulator: ${report}`);
    for (const kind of ["spike", "level_shift", "slow_drift", "stuck", "noise_burst"] as const) {
      const s = byKind.get(kind);
      expect(s, `no ${kind} fault with limits in place`).toBeDefined();
      expect(s!.detected / s!.n, `${kind}: ${report}`).toBeGreaterThanOrEqual(0.8);
    }
  }, 120_000);
});
