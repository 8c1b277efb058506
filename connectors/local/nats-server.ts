/**
 * Throw-away servers for integration tests: a real `nats-server` (with JetStream) on a free
 * loopback port with a temporary store directory, stopped and removed afterwards. No mocks.
 *
 * When the binary is missing (a machine where `npm test` could not install it), `serverAvailable`
 * says so and the suites that need it skip with that reason printed loudly; nothing else skips.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, Socket } from "node:net";
import { tmpdir } from "node:os";
import { terminate } from "./child-process.js";
import { join } from "node:path";
import { LocalServerError } from "../errors.js";

/**
 * True when `command` is on PATH; otherwise prints why the dependent tests are skipped. Under
 * LINEWATCH_REQUIRE_SERVERS=1 (CI) a missing server is an error, so a run without the servers
 * cannot pass by skipping the integration tests.
 */
export function serverAvailable(command: string): boolean {
  const found = spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
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
}

/** Starts `nats-server -js` on a free loopback port with a temporary store directory. */
export async function startNatsServer(extraArgs: string[] = []): Promise<NatsServer> {
  const port = await freePort();
  const storeDir = mkdtempSync(join(tmpdir(), "lw-nats-"));
  let child: ChildProcess | null = null;
  let log = "";
  const start = async (): Promise<void> => {
    const proc = spawn("nats-server", ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", storeDir, ...extraArgs], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    proc.stdout?.on("data", (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
    proc.stderr?.on("data", (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
    child = proc;
    try {
      await waitForPort(port, 10_000, proc);
    } catch (e) {
      throw new LocalServerError("nats-server", `${(e as Error).message}\n${log}`, { cause: e });
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
    dispose: async () => {
      await stop();
      rmSync(storeDir, { recursive: true, force: true });
    },
  };
}
