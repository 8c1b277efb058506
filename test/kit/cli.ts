/**
 * The built CLI (`dist/engine/cli/main.js`) as a user runs it: a child process of this Node, with its
 * stdout and stderr kept (the last 64 KiB) for a failed test's message.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";
import type { LogEntry } from "../../engine/core/mod.js";

export const CLI = resolve("dist/engine/cli/main.js");

/**
 * The textbook chart for `run` (most rules on, CUSUM h 5, EWMA L 3, a fixed centre line, episodes
 * closing after 50 quiet readings): `run` starts from the alerting defaults (docs/spc.md), under
 * which a short test stream raises few episodes.
 */
export const TEXTBOOK_SPC_FLAGS: readonly string[] = Object.freeze([
  "--fa-budget",
  "0.2",
  "--cusum-h",
  "5",
  "--ewma-l",
  "3",
  "--track-records",
  "0",
  "--episode-close-after",
  "50",
]);

export interface CliProcess {
  child: ChildProcess;
  /** What it printed so far, stdout and stderr interleaved. */
  output(): string;
  /** Resolves with the exit code (null when a signal ended it). */
  exited: Promise<number | null>;
  /** SIGTERM (a clean stop: the commands drain and flush), then its exit code. */
  stop(): Promise<number | null>;
}

/** Starts `linewatch <args…>` in `cwd`. */
export function startCli(args: readonly string[], cwd: string): CliProcess {
  const child = spawn(process.execPath, [CLI, ...args], { cwd, stdio: ["ignore", "pipe", "pipe"] });
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

/** Runs `linewatch <args…>` to its end; rejects with its output when it exits other than 0. */
export async function runCli(args: readonly string[], cwd: string): Promise<string> {
  const p = startCli(args, cwd);
  const code = await p.exited;
  if (code !== 0) throw new Error(`linewatch ${args.join(" ")} exited with ${code}\n${p.output()}`);
  return p.output();
}

/**
 * The log events in a CLI's output: its stderr is not a terminal, so each is a JSON line; the
 * console lines for people (summaries, reports) are skipped.
 */
export function logEvents(output: string): LogEntry[] {
  const events: LogEntry[] = [];
  for (const line of output.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      events.push(JSON.parse(line) as LogEntry);
    } catch {
      // The first line of a kept output cut at its 64 KiB limit.
    }
  }
  return events;
}
