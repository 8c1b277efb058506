/**
 * The built CLI (`dist/engine/cli/main.js`) as a child process, the way an operator runs it: the
 * chaos harness kills and restarts it; the tests start it the same way (test/kit/cli.ts). Its
 * stdout and stderr are kept (the last 64 KiB) for a failure's message.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The checkout: four folders up from dist/engine/jobs/chaos, three from the source's engine/jobs/chaos (vitest). */
function checkoutRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return resolve(here, here.split("/").includes("dist") ? "../../../.." : "../../..");
}

/** The built CLI's entry point. */
export const CLI_ENTRY = join(checkoutRoot(), "dist/engine/cli/main.js");

export interface CliProcess {
  child: ChildProcess;
  /** What it printed so far, stdout and stderr interleaved. */
  output(): string;
  /** Resolves with the exit code (null when a signal ended it). */
  exited: Promise<number | null>;
  /** SIGTERM (a clean stop: the commands drain and flush), then its exit code. */
  stop(): Promise<number | null>;
}

/** Starts `linewatch <args…>` in `cwd`; `nodeArgs` go to node before the script (`--cpu-prof`, …). */
export function startCli(args: readonly string[], cwd: string, nodeArgs: readonly string[] = []): CliProcess {
  const child = spawn(process.execPath, [...nodeArgs, CLI_ENTRY, ...args], { cwd, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const keep = (d: Buffer) => (output = (output + d.toString()).slice(-65_536));
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<number | null>((done, fail) => {
    child.once("error", fail);
    child.once("exit", (code) => done(code));
  });
  return {
    child,
    output: () => output,
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return exited;
    },
  };
}

/** Whether the process still runs (neither exited nor ended by a signal). */
export function running(p: CliProcess): boolean {
  return p.child.exitCode === null && p.child.signalCode === null;
}

/**
 * The highest resident set of a live process so far, bytes (Linux: VmHWM of /proc/<pid>/status,
 * the kernel's high-water mark; it covers every thread, so the ingest workers too); null elsewhere
 * or once it has gone.
 */
export function peakRss(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m === null ? null : Number(m[1]) * 1024;
  } catch {
    return null;
  }
}

/** Samples {@link peakRss} of each process it is given every `everyMs`; `peak` is the highest seen. */
export class RssWatch {
  peak: number | null = null;
  private readonly timer: NodeJS.Timeout;
  private readonly watched = new Set<CliProcess>();
  constructor(everyMs = 250) {
    this.timer = setInterval(() => this.sample(), everyMs);
    this.timer.unref();
  }
  watch(p: CliProcess): void {
    this.watched.add(p);
    p.exited.finally(() => this.watched.delete(p)).catch(() => {});
  }
  /** Reads each live process now (call right before a kill, so its last figure counts). */
  sample(): void {
    for (const p of this.watched) {
      const v = peakRss(p.child.pid);
      if (v !== null) this.peak = Math.max(this.peak ?? 0, v);
    }
  }
  close(): void {
    clearInterval(this.timer);
  }
}
