/**
 * A real `nats-server` (with JetStream) on a free loopback port, for `linewatch demo` (store in its
 * directory), the tests and the benches (a temporary store, stopped and removed afterwards). No mocks.
 *
 * When the binary is missing (a machine where `npm test` could not install it), `serverAvailable`
 * says so and the suites that need it skip with that reason printed loudly; nothing else skips.
 */
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
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

/** A local server is started on free ports at most this many times in all when its port was taken. */
const PORT_ATTEMPTS = 3;

/** The port answered with another server's greeting, and this one exited (the port was not free after all). */
export class PortTakenError extends LocalServerError {}

/**
 * Runs `choosePorts` then `start`, again while `start` fails with PortTakenError ({@link PORT_ATTEMPTS}
 * in all). freePort releases a port before the server binds it: another process (a parallel test
 * file's server) can take it meanwhile. That server answers on the port and this one exits; a client
 * would talk to the wrong server. The launcher's wait tells (the server's own name), and this starts
 * it again on other ports.
 */
export async function startOnFreePorts(choosePorts: () => Promise<void>, start: () => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    await choosePorts();
    try {
      await start();
      return;
    } catch (e) {
      if (!(e instanceof PortTakenError) || attempt === PORT_ATTEMPTS) throw e;
    }
  }
}

/** How a launcher tells its own server on a port from another (startNatsServer, startClickHouseServer). */
export interface ServerIdentity {
  /** The server in messages: "nats-server", "clickhouse-server". */
  server: string;
  /** The name the server answering on `port` gives ("" when it gives none), or null when none answers. */
  nameOn(port: number): Promise<string | null>;
  /** Its output or log so far: in a failed start's message, and read for a second port of its own in use. */
  logTail?: () => string;
}

/**
 * Resolves once the server named `name` answers on `port`. While another one answers there, waits
 * for `child` to answer or exit: an exit then, or with "Address already in use" in its log (another
 * port of its own taken), is a PortTakenError; any other exit, or `timeoutMs` passing, a LocalServerError.
 */
export async function waitForServerNamed(
  port: number,
  name: string,
  timeoutMs: number,
  child: ChildProcess,
  identity: ServerIdentity,
): Promise<void> {
  const at = `${identity.server} on 127.0.0.1:${port}`;
  const logTail = (): string => {
    const tail = identity.logTail?.() ?? "";
    return tail === "" ? "" : `\n${tail}`;
  };
  const deadline = Date.now() + timeoutMs;
  let other = false;
  for (;;) {
    if (child.exitCode !== null) {
      const why = `exited with code ${child.exitCode} before answering`;
      const tail = logTail();
      other ||= /Address already in use/.test(tail);
      if (other) throw new PortTakenError(at, `${why}: another server took the port`);
      throw new LocalServerError(at, `${why}${tail}`);
    }
    const answered = await identity.nameOn(port);
    if (answered === name) return;
    other ||= answered !== null;
    if (Date.now() > deadline) throw new LocalServerError(at, `${name} does not answer there after ${timeoutMs} ms${logTail()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Resolves once the nats-server named `name` greets on `port` (its INFO line's server_name): {@link waitForServerNamed}. */
export function waitForNatsServer(port: number, name: string, timeoutMs: number, child: ChildProcess): Promise<void> {
  return waitForServerNamed(port, name, timeoutMs, child, { server: "nats-server", nameOn: natsServerName });
}

/** server_name of the nats-server greeting on `port` ("" when its greeting names none), or null when nothing greets. */
async function natsServerName(port: number): Promise<string | null> {
  const greeting = await natsGreeting(port);
  return greeting === null ? null : (greetingName(greeting) ?? "");
}

/** The first line a server on `port` sends (a NATS server's INFO), or null when nothing accepts or it says nothing within a second. */
function natsGreeting(port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = new Socket();
    let text = "";
    const done = (line: string | null) => {
      socket.destroy();
      resolve(line);
    };
    socket.setTimeout(1000, () => done(null));
    socket.on("data", (chunk: Buffer) => {
      text += chunk.toString("latin1");
      const end = text.indexOf("\r\n");
      if (end >= 0) done(text.slice(0, end));
    });
    socket.once("error", () => done(null));
    socket.once("close", () => done(null));
    socket.connect(port, "127.0.0.1");
  });
}

/** server_name of an `INFO {…}` line, or null. */
function greetingName(line: string): string | null {
  if (!line.startsWith("INFO ")) return null;
  try {
    const name = (JSON.parse(line.slice(5)) as { server_name?: unknown }).server_name;
    return typeof name === "string" ? name : null;
  } catch {
    return null;
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
  let port = 0;
  const storeDir = options.dir ?? mkdtempSync(join(tmpdir(), "lw-nats-"));
  mkdirSync(storeDir, { recursive: true });
  // Its own name, which its greeting carries: the port may be another's by the time it binds (below).
  const name = `lw-${process.pid}-${randomBytes(6).toString("hex")}`;
  let child: ChildProcess | null = null;
  const start = async (): Promise<void> => {
    const args = ["-a", "127.0.0.1", "-p", String(port), "-n", name, "-js", "-sd", storeDir, ...extraArgs];
    const server = spawnServer("nats-server", args, { cwd: storeDir, processGroup: options.processGroup });
    child = server.proc;
    try {
      await waitForNatsServer(port, name, 10_000, server.proc);
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
  await startOnFreePorts(async () => {
    port = await freePort();
  }, start);
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
