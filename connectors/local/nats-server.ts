/**
 * A real `nats-server` (with JetStream) on a free loopback port, for `linewatch demo` (store in its
 * directory), the tests and the benches (a temporary store, stopped and removed afterwards). No mocks.
 *
 * When the binary is missing (a machine where `npm test` could not install it), `serverAvailable`
 * says so and the suites that need it skip with that reason printed loudly; nothing else skips.
 */
import type { ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalServerError } from "../errors.js";
import { commandInstalled, spawnServer, terminate } from "./child-process.js";

/** Where a local server keeps its files, and how it runs. */
export interface LocalServerOptions {
  /** Its directory (created; kept by `stop`, removed by `dispose`); default: a new temporary one. */
  dir?: string;
  /** In a process group of its own (see {@link spawnServer}): for `linewatch demo`, which stops it after draining. */
  processGroup?: boolean;
}

/**
 * True when `command` is on PATH; otherwise prints why the dependent tests are skipped. Under
 * LINEWATCH_REQUIRE_SERVERS=1 (CI) a missing server is an error, so a run without the servers
 * cannot pass by skipping the integration tests.
 */
export function serverAvailable(command: string): boolean {
  const found = commandInstalled(command);
  if (!found && process.env.LINEWATCH_REQUIRE_SERVERS === "1") {
    throw new Error(`${command} is not installed and LINEWATCH_REQUIRE_SERVERS=1: the integration tests must not skip`);
  }
  if (!found) {
    console.error(
      `\n!!! ${command} is not installed: the integration tests that need it are SKIPPED (apt-get install -y ${command}) !!!\n`,
    );
  }
  return found;
}

/** A free TCP port on 127.0.0.1 (bound and released; the server binds it right after). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on `port`, or rejects after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs: number, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child !== undefined && child.exitCode !== null)
      throw new LocalServerError(`127.0.0.1:${port}`, `the server exited with code ${child.exitCode} before listening`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = new Socket();
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => {
        socket.destroy();
        resolve(false);
      });
      socket.connect(port, "127.0.0.1");
    });
    if (ok) return;
    if (Date.now() > deadline) throw new LocalServerError(`127.0.0.1:${port}`, `nothing listens there after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface NatsServer {
  url: string;
  port: number;
  storeDir: string;
  /** Stops the server (SIGTERM, then SIGKILL after 30 s). */
  stop(): Promise<void>;
  /** Stops and starts it again on the same port and store (JetStream state survives). */
  restart(): Promise<void>;
  /** Stops it and removes its store. */
  dispose(): Promise<void>;
  /** Sends `signal` to the running server (SIGSTOP and SIGCONT stall and resume it: a server that stops answering). */
  signal(signal: NodeJS.Signals): void;
  /** The server process's id while it runs, null while stopped (a bench reads its CPU time from /proc/<pid>/stat). */
  readonly pid: number | null;
}

/** Starts `nats-server -js` on a free loopback port, its store in `options.dir` or a temporary directory. */
export async function startNatsServer(extraArgs: string[] = [], options: LocalServerOptions = {}): Promise<NatsServer> {
  const port = await freePort();
  const storeDir = options.dir ?? mkdtempSync(join(tmpdir(), "lw-nats-"));
  mkdirSync(storeDir, { recursive: true });
  let child: ChildProcess | null = null;
  const start = async (): Promise<void> => {
    const server = spawnServer("nats-server", ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", storeDir, ...extraArgs], {
      cwd: storeDir,
      processGroup: options.processGroup,
    });
    child = server.proc;
    try {
      await waitForPort(port, 10_000, server.proc);
    } catch (e) {
      await terminate(server.proc, 5_000);
      child = null;
      throw new LocalServerError("nats-server", `${(e as Error).message}\n${server.output()}`, { cause: e });
    }
  };
  const stop = async (): Promise<void> => {
    const proc = child;
    if (proc === null) return;
    // A JetStream server flushes its store on SIGTERM; killing it early could lose acknowledged messages.
    await terminate(proc, 30_000);
    child = null;
  };
  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    stop,
    restart: async () => {
      await stop();
      await start();
    },
    signal: (signal) => {
      (child as ChildProcess | null)?.kill(signal);
    },
    get pid(): number | null {
      return (child as ChildProcess | null)?.pid ?? null;
    },
    dispose: async () => {
      await stop();
      rmSync(storeDir, { recursive: true, force: true });
    },
  };
}
