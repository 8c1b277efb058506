/**
 * Starting and stopping the server processes we run ourselves (nats-server, clickhouse-server)
 * for `linewatch demo`, the tests and the benches.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";

/** True when `command` is on PATH (quietly; {@link serverAvailable} also says why tests skip). */
export function commandInstalled(command: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}

/** A spawned server and the last 4000 characters of its stdout and stderr. */
export interface SpawnedServer {
  proc: ChildProcess;
  output(): string;
}

/**
 * Spawns `command args` with its output kept for error messages. `processGroup`: in a process
 * group of its own, so a terminal's Ctrl-C reaches only us (the demo drains, then stops it), and
 * killed should this process exit without stopping it.
 */
export function spawnServer(command: string, args: string[], options: { cwd?: string; processGroup?: boolean } = {}): SpawnedServer {
  let output = "";
  const proc = spawn(command, args, { cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"], detached: options.processGroup === true });
  proc.stdout?.on("data", (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  proc.stderr?.on("data", (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  if (options.processGroup === true) {
    const killOnExit = (): void => void proc.kill("SIGKILL");
    process.once("exit", killOnExit);
    proc.once("exit", () => process.off("exit", killOnExit));
    proc.unref();
  }
  return { proc, output: () => output };
}

/**
 * Stops a server process: SIGTERM, so it can flush its store and exit cleanly, then SIGKILL if it
 * has not exited within `graceMs`. Resolves when `proc` has exited (at once when it already has).
 */
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
