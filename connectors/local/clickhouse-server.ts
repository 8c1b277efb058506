/**
 * A local `clickhouse-server` for `linewatch demo`, the tests and the benches: generated config.xml
 * and users.xml in its directory (a temporary one unless given; data, tmp, user files, format
 * schemas and logs all inside it), HTTP and native ports free on 127.0.0.1, ready when `GET /ping`
 * answers "Ok.", stopped with SIGTERM (and its temporary directory removed by `dispose`). The
 * equivalent of nats-server.ts; `serverAvailable` there says (loudly) when the binary is missing.
 *
 * The configuration is the smallest that 18.16 (Debian) and current servers both start with:
 * `<yandex>` as the root element (current servers still accept it), one `<listen_host>`
 * 127.0.0.1 (no ::1: containers without IPv6), small caches (the defaults reserve GBs).
 */
import { spawnServer, terminate } from "./child-process.js";
import { CLICKHOUSE_USERS_XML, clickhouseConfigXml } from "./clickhouse-config.js";
import type { ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, type LocalServerOptions } from "./nats-server.js";
import { LocalServerError } from "../errors.js";

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
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), "lw-clickhouse-"));
  const httpPort = await freePort();
  let tcpPort = await freePort();
  while (tcpPort === httpPort) tcpPort = await freePort();
  for (const sub of ["data", "tmp", "user_files", "format_schemas", "log"]) mkdirSync(join(dir, sub), { recursive: true });
  writeFileSync(join(dir, "config.xml"), clickhouseConfigXml(dir, httpPort, tcpPort));
  writeFileSync(join(dir, "users.xml"), CLICKHOUSE_USERS_XML);
  const url = `http://127.0.0.1:${httpPort}`;
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
    if (await answering(proc, httpPort, logTail)) return;
    await stop();
    throw new LocalServerError("clickhouse-server", `no /ping answer on ${httpPort} in 30 s\n${logTail()}`);
  };

  const stop = async (signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> => {
    const proc = child;
    if (proc === null) return;
    if (signal === "SIGKILL") await killed(proc);
    else await terminate(proc, 15_000);
    child = null;
  };

  await start();
  return {
    url,
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

/** SIGKILL, resolved once the process has exited. */
function killed(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    proc.once("exit", () => resolve());
    proc.kill("SIGKILL");
  });
}

/** Waits until `GET /ping` answers "Ok." (true) or 30 s have passed (false); LocalServerError when the process exits first. */
async function answering(proc: ChildProcess, port: number, logTail: () => string): Promise<boolean> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new LocalServerError("clickhouse-server", `exited with code ${proc.exitCode}\n${logTail()}`);
    if ((await ping(port)) === "Ok.\n") return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The last output lines and the last 30 lines of its error log (for a failed start's or test's message). */
function clickhouseLogTail(dir: string, output: string): string {
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
