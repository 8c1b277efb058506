/**
 * A local `clickhouse-server` for `linewatch demo`, the tests and the benches: generated config.xml
 * and users.xml in its directory (a temporary one unless given; data, tmp, user files, format
 * schemas and logs all inside it), HTTP and native ports free on 127.0.0.1, ready when `GET /ping`
 * answers "Ok." and system.macros names this server (not another that took the port), stopped with SIGTERM (and its temporary directory removed by `dispose`). The
 * equivalent of nats-server.ts; `serverAvailable` there says (loudly) when the binary is missing.
 *
 * The configuration is the smallest that 18.16 (Debian) and current servers both start with:
 * `<yandex>` as the root element (current servers still accept it), one `<listen_host>`
 * 127.0.0.1 (no ::1: containers without IPv6), small caches (the defaults reserve GBs).
 */
import { spawnServer, terminate } from "./child-process.js";
import { CLICKHOUSE_USERS_XML, clickhouseConfigXml } from "./clickhouse-config.js";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, type LocalServerOptions, startOnFreePorts, waitForServerNamed } from "./nats-server.js";

export interface ClickHouseServer {
  /** HTTP interface, e.g. `http://127.0.0.1:43123`. */
  url: string;
  httpPort: number;
  tcpPort: number;
  dir: string;
  /** The server process's id while it runs, null while stopped (a bench reads its CPU time from /proc/<pid>/stat). */
  readonly pid: number | null;
  /** Runs one statement over HTTP (with settings as URL parameters); resolves with the body, rejects with the server's text. */
  query(sql: string, settings?: Record<string, string | number>): Promise<string>;
  /** Stops the server (SIGTERM, then SIGKILL after 15 s); data stays. */
  stop(): Promise<void>;
  /** Starts it again on the same ports and data (after stop). */
  start(): Promise<void>;
  /** Stops and starts it again, keeping its data. */
  restart(): Promise<void>;
  /**
   * An outage: stops it (SIGTERM, or SIGKILL with `signal`), keeps it stopped for `ms`, runs
   * `beforeStart` (to look at the clients while it is away), starts it again on the same ports and
   * data. Resolves with how long it was away, from stopped to answering /ping again. SIGKILL makes
   * the outage begin at once: 18.16 goes on accepting inserts for about 17 s after a SIGTERM.
   */
  outage(ms: number, beforeStart?: () => void | Promise<void>, signal?: "SIGTERM" | "SIGKILL"): Promise<number>;
  /** Stops it and removes its directory. */
  dispose(): Promise<void>;
  /** The last lines of its log files (for a failed test's message). */
  logTail(): string;
}

export async function startClickHouseServer(options: LocalServerOptions = {}): Promise<ClickHouseServer> {
  const dir = serverDir(options.dir);
  // Its own name, which system.macros carries: the ports may be another's by the time it binds (below).
  const name = `lw-${process.pid}-${randomBytes(6).toString("hex")}`;
  let httpPort = 0;
  let tcpPort = 0;
  const choosePorts = async (): Promise<void> => {
    [httpPort, tcpPort] = await twoFreePorts();
    writeFileSync(join(dir, "config.xml"), clickhouseConfigXml(dir, httpPort, tcpPort, name));
  };
  let child: ChildProcess | null = null;
  let output = (): string => "";

  const logTail = (): string => clickhouseLogTail(dir, output());

  const start = async (): Promise<void> => {
    const server = spawnServer("clickhouse-server", [`--config-file=${join(dir, "config.xml")}`], {
      cwd: dir,
      processGroup: options.processGroup,
    });
    const proc = server.proc;
    output = server.output;
    child = proc;
    try {
      await waitForClickHouseServer(httpPort, name, 30_000, proc, logTail);
    } catch (e) {
      await stop();
      throw e;
    }
  };

  const stop = async (signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> => {
    const proc = child;
    if (proc === null) return;
    if (signal === "SIGKILL") await killed(proc);
    else await terminate(proc, 15_000);
    child = null;
  };

  await startOnFreePorts(choosePorts, start);
  return {
    url: `http://127.0.0.1:${httpPort}`,
    httpPort,
    tcpPort,
    dir,
    get pid(): number | null {
      return (child as ChildProcess | null)?.pid ?? null;
    },
    query: (sql, settings) => httpQuery(httpPort, sql, settings),
    stop: () => stop(),
    start,
    restart: async () => {
      await stop();
      await start();
    },
    outage: async (ms, beforeStart, signal) => {
      await stop(signal);
      const stoppedAt = Date.now();
      await new Promise((r) => setTimeout(r, ms));
      await beforeStart?.();
      await start();
      return Date.now() - stoppedAt;
    },
    dispose: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
    logTail,
  };
}

/** `dir` (default: a new temporary one) with the server's subdirectories and users.xml. */
function serverDir(dir = mkdtempSync(join(tmpdir(), "lw-clickhouse-"))): string {
  for (const sub of ["data", "tmp", "user_files", "format_schemas", "log"]) mkdirSync(join(dir, sub), { recursive: true });
  writeFileSync(join(dir, "users.xml"), CLICKHOUSE_USERS_XML);
  return dir;
}

/** Two different free ports (HTTP, native). */
async function twoFreePorts(): Promise<[number, number]> {
  const httpPort = await freePort();
  let tcpPort = await freePort();
  while (tcpPort === httpPort) tcpPort = await freePort();
  return [httpPort, tcpPort];
}

/** SIGKILL, resolved once the process has exited. */
function killed(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    proc.once("exit", () => resolve());
    proc.kill("SIGKILL");
  });
}

/**
 * Resolves once the clickhouse-server named `name` (its `linewatch_server` macro) answers on `port`:
 * {@link waitForServerNamed}, `logTail` read for the native port in use.
 */
export function waitForClickHouseServer(
  port: number,
  name: string,
  timeoutMs: number,
  child: ChildProcess,
  logTail: () => string = () => "",
): Promise<void> {
  return waitForServerNamed(port, name, timeoutMs, child, { server: "clickhouse-server", nameOn: clickhouseServerName, logTail });
}

/** The `linewatch_server` macro of the server answering /ping on `port` ("" when it has none), or null when none answers. */
async function clickhouseServerName(port: number): Promise<string | null> {
  if ((await ping(port)) !== "Ok.\n") return null;
  try {
    return (await httpQuery(port, "SELECT substitution FROM system.macros WHERE macro = 'linewatch_server'")).trim();
  } catch {
    return null;
  }
}

/** The last output lines and the last 30 lines of its error log (for a failed start's or test's message). */
export function clickhouseLogTail(dir: string, output: string): string {
  let errLog = "";
  try {
    errLog = readFileSync(join(dir, "log", "clickhouse-server.err.log"), "utf8")
      .split("\n")
      .slice(-30)
      .join("\n");
  } catch {
    // No log yet: the server did not get that far; its output says why.
  }
  return `--- stdout/stderr\n${output}\n--- clickhouse-server.err.log\n${errLog}`;
}

function ping(port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const req = request({ host: "127.0.0.1", port, path: "/ping", method: "GET", timeout: 1000, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve(res.statusCode === 200 ? body : null));
      res.on("error", () => resolve(null));
    });
    req.on("error", () => resolve(null));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

function httpQuery(port: number, sql: string, settings: Record<string, string | number> = {}): Promise<string> {
  const path = `/?${new URLSearchParams(Object.entries(settings).map(([k, v]): [string, string] => [k, String(v)])).toString()}`;
  return new Promise((resolve, reject) => {
    // A connection per statement: a kept-alive one may be closed by the server (or its restart)
    // just as the next statement goes out ("socket hang up").
    const req = request(
      { host: "127.0.0.1", port, path, method: "POST", agent: false, headers: { "Content-Type": "text/plain" } },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (body += d));
        res.on("end", () => (res.statusCode === 200 ? resolve(body) : reject(new Error(body))));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(sql);
  });
}
