/**
 * The built CLI (`dist/engine/cli/main.js`) as a user runs it: a child process of this Node, with its
 * stdout and stderr kept (the last 64 KiB) for a failed test's message.
 */
import { startCli } from "../../engine/jobs/chaos/mod.js";
import type { LogEntry } from "../../engine/core/mod.js";

export { CLI_ENTRY as CLI } from "../../engine/jobs/chaos/mod.js";

/** The textbook chart for `run` (engine/jobs/chaos/env.ts says why). */
export { TEXTBOOK_SPC_FLAGS } from "../../engine/jobs/chaos/mod.js";

export { type CliProcess, startCli } from "../../engine/jobs/chaos/mod.js";

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
