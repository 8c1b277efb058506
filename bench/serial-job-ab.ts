/**
 * Two builds of the whole serial job side by side (`node dist/bench/serial-job-ab.js <before-dist>
 * [rounds] [events]`): the job in its default layout (docs/serial-job.md: the schema reader on the
 * main thread, the ledger thread running the ledger and the kernel) as serial-job-bench.ts's
 * `measureJob` runs it — the same seeded messages, a view per message, a non-durable flush every
 * 250 ms — once per build per round, alternately (before, after, before, …), each run a process of
 * its own so that neither build's heap or threads weigh on the other. `<before-dist>` is a copy of
 * an older dist/ (with build/ and package.json beside it, so that its kernels load: e.g.
 * `mkdir -p /tmp/b && cp -r dist build package.json /tmp/b/` before the change, then
 * `/tmp/b/dist`).
 *
 * Per run: events/s (over the whole run and over its steady state, STEADY_FROM on: the rate a job
 * that runs for hours keeps, with the main and ledger threads' CPU there), CPU ns per event of
 * the main thread and of the ledger thread (all of it, and
 * less its start-up — the thread's CPU when it answered a report asked before the first event:
 * module loading, the filter's allocation), the process's, the kernel's wall time per event on the
 * thread, the load average, and the detections' checksum (both builds must give the same); then
 * each figure's median per build and their ratio.
 */
import { spawnSync } from "node:child_process";
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { median } from "./bench-kit.js";
import { STEADY_FROM, type SteadyStart, steadyFigure, steadyStart } from "./serial-job-bench.js";

interface Run {
  build: string;
  eventsPerSecond: number;
  /** The same over the run's steady state (serial-job-bench.ts STEADY_FROM on). */
  steadyEventsPerSecond: number;
  steadyMainNs: number;
  steadyLedgerNs: number;
  mainNs: number;
  ledgerNs: number;
  ledgerSteadyNs: number;
  ledgerStartMs: number;
  processNs: number;
  kernelWallNs: number;
  checksum: number;
  detections: number;
  load: number;
}

type JobBench = typeof import("./serial-job-bench.js");
type Jobs = typeof import("../engine/jobs/mod.js");
type Nats = typeof import("../connectors/nats/mod.js");
type Kit = typeof import("./bench-kit.js");

/** One run of the job from the build at `dist` (this process imports that build's modules). */
async function runOne(dist: string, events: number): Promise<Run> {
  const at = (path: string) => pathToFileURL(resolve(dist, path)).href;
  const jb = (await import(at("bench/serial-job-bench.js"))) as JobBench;
  const jobs = (await import(at("engine/jobs/mod.js"))) as Jobs;
  const nats = (await import(at("connectors/nats/mod.js"))) as Nats;
  const kit = (await import(at("bench/bench-kit.js"))) as Kit;
  const s = jb.serialMessages(events, 16, 1);
  const t = jb.countingTargets();
  let outputs: InstanceType<Jobs["SerialOutputs"]> | undefined;
  const analysis = jb.freshAnalysis((e) => outputs?.quarantined(e));
  const quiet = { info() {}, warn() {}, error() {}, debug() {}, child: () => quiet } as never;
  outputs = new jobs.SerialOutputs(analysis.quarantine, { sink: t.sink as never, live: t.live, log: quiet });
  const job = new jobs.SerialJob({ ...jobs.DEFAULT_SERIAL_JOB, analysis, outputs, linesMax: 16 });
  // Asked before any event and answered in order: the thread's CPU once started, not awaited here.
  const started = job.ledgerThreadReport();
  const input = new nats.SerialNatsInput(() => {}, "bench");
  const w0 = performance.now();
  const m0 = kit.threadCpuMicros();
  const c0 = process.cpuUsage();
  let lastFlush = w0;
  const warm = Math.floor(s.n * STEADY_FROM);
  // This build's steady-state window over the other build's job (the same job API).
  let steadyFrom: SteadyStart | null = null;
  for (let i = 0; i < s.n; i++) {
    if (i === warm) steadyFrom = steadyStart(job);
    const full = jobs.takeSerialMessage(input, job, s.subjects[s.lineOf[i]], jb.messageAt(s, i), i);
    if (full !== undefined) await full;
    if ((i & 1023) === 1023 && performance.now() - lastFlush >= 250) {
      lastFlush = performance.now();
      await job.flush(false);
    }
  }
  await job.flush(true);
  const end = await job.ledgerThreadReport();
  const wall = performance.now() - w0;
  const main = kit.threadCpuMicros() - m0;
  const cpu = process.cpuUsage(c0);
  const steady = steadyFrom === null ? null : await steadyFigure(job, steadyFrom, events - warm, end, jobs.DEFAULT_SERIAL_JOB);
  const start = await started;
  const kernelMs = job.engine.metrics().kernelBusyMs;
  await job.close();
  await outputs.close();
  const perEvent = (micros: number) => (micros * 1000) / events;
  return {
    build: dist,
    eventsPerSecond: (events * 1000) / wall,
    steadyEventsPerSecond: steady?.eventsPerSecond ?? Number.NaN,
    steadyMainNs: steady?.mainNsPerEvent ?? Number.NaN,
    steadyLedgerNs: steady?.ledgerThreadNsPerEvent ?? Number.NaN,
    mainNs: perEvent(main),
    ledgerNs: perEvent(end?.cpuMicros ?? Number.NaN),
    ledgerSteadyNs: perEvent((end?.cpuMicros ?? Number.NaN) - (start?.cpuMicros ?? Number.NaN)),
    ledgerStartMs: (start?.cpuMicros ?? Number.NaN) / 1000,
    processNs: perEvent(cpu.user + cpu.system),
    kernelWallNs: (kernelMs * 1e6) / events,
    checksum: t.seen.checksum,
    detections: t.seen.detections,
    load: loadavg()[0],
  };
}

const FIGURES: Array<[keyof Run, string]> = [
  ["eventsPerSecond", "events/s"],
  ["steadyEventsPerSecond", "events/s, steady state"],
  ["steadyMainNs", "main thread ns/event, steady state"],
  ["steadyLedgerNs", "ledger thread ns/event, steady state"],
  ["mainNs", "main thread ns/event"],
  ["ledgerNs", "ledger thread ns/event"],
  ["ledgerSteadyNs", "ledger thread ns/event less its start-up"],
  ["ledgerStartMs", "ledger thread start-up ms"],
  ["processNs", "process ns/event"],
  ["kernelWallNs", "kernel wall ns/event"],
];

function line(r: Run, label: string): string {
  const f = (v: number) => (Number.isFinite(v) ? Math.round(v).toString() : "n/a");
  return (
    `  ${label}  ${(r.eventsPerSecond / 1e6).toFixed(3)} M events/s (steady ${(r.steadyEventsPerSecond / 1e6).toFixed(3)})  main ${f(r.mainNs)}  ledger thread ${f(r.ledgerNs)} ` +
    `(${f(r.ledgerSteadyNs)} less its start-up of ${f(r.ledgerStartMs)} ms)  process ${f(r.processNs)}  kernel wall ${f(r.kernelWallNs)} ns/event` +
    `  load ${r.load.toFixed(1)}  checksum ${r.checksum}, ${r.detections} detections`
  );
}

function main(): void {
  const args = process.argv.slice(2);
  if (args[0] === "--run") {
    void runOne(args[1], Number(args[2])).then((r) => {
      process.stdout.write(`${JSON.stringify(r)}\n`);
      process.exit(0);
    });
    return;
  }
  if (args[0] === undefined) throw new Error("usage: serial-job-ab.js <before-dist> [rounds] [events]");
  const before = resolve(args[0]);
  const after = resolve(import.meta.dirname, "..");
  const rounds = Number(args[1] ?? 3);
  const events = Number(args[2] ?? 1_000_000);
  const runs: Record<"before" | "after", Run[]> = { before: [], after: [] };
  process.stdout.write(`serial job A/B: ${events} events, ${rounds} rounds alternately; before ${before}, after ${after}\n`);
  for (let round = 0; round < rounds; round++) {
    for (const [name, dist] of [
      ["before", before],
      ["after", after],
    ] as const) {
      const child = spawnSync(process.execPath, [process.argv[1], "--run", dist, String(events)], { encoding: "utf8" });
      if (child.status !== 0) throw new Error(`${name} run failed: ${child.stderr}`);
      const r = JSON.parse(child.stdout.trim().split("\n").pop() as string) as Run;
      runs[name].push(r);
      process.stdout.write(`${line(r, name.padEnd(6))}\n`);
    }
  }
  process.stdout.write("medians (after ÷ before):\n");
  for (const [key, label] of FIGURES) {
    const b = median(runs.before.map((r) => r[key] as number));
    const a = median(runs.after.map((r) => r[key] as number));
    process.stdout.write(
      `  ${label.padEnd(42)} before ${b.toFixed(0).padStart(8)}  after ${a.toFixed(0).padStart(8)}  ${(a / b).toFixed(3)}×\n`,
    );
  }
  const sums = new Set([...runs.before, ...runs.after].map((r) => `${r.checksum}/${r.detections}`));
  process.stdout.write(`  detections ${sums.size === 1 ? "the same in every run" : `DIFFER: ${[...sums].join(", ")}`}\n`);
}

main();
