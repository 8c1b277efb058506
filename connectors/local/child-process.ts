/**
 * Stopping a server process we started (nats-server, clickhouse-server): SIGTERM, so it can flush
 * its store and exit cleanly, then SIGKILL if it has not exited within `graceMs`.
 */
import type { ChildProcess } from "node:child_process";

/** Resolves when `proc` has exited (at once when it already has). */
export function terminate(proc: ChildProcess, graceMs: number): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => proc.kill("SIGKILL"), graceMs);
    proc.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    proc.kill("SIGTERM");
  });
}
