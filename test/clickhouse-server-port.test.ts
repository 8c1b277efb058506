/**
 * The local clickhouse-server launcher knows its own server: a free port is released before the
 * server binds it, and a parallel test file's server can take it meanwhile. That server answers
 * /ping like any other; its `linewatch_server` macro names another server, so the launcher waits
 * for its own to exit and starts on other ports — never handing out a URL where another answers.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnServer, terminate } from "../connectors/local/child-process.js";
import { CLICKHOUSE_USERS_XML, clickhouseConfigXml } from "../connectors/local/clickhouse-config.js";
import {
  type ClickHouseServer,
  clickhouseLogTail,
  startClickHouseServer,
  waitForClickHouseServer,
} from "../connectors/local/clickhouse-server.js";
import { freePort, PortTakenError, serverAvailable } from "../connectors/local/nats-server.js";

/** Spawns a clickhouse-server named `name` in a new directory on the given ports. */
function spawnNamed(root: string, name: string, httpPort: number, tcpPort: number) {
  const dir = join(root, name);
  for (const sub of ["data", "tmp", "user_files", "format_schemas", "log"]) mkdirSync(join(dir, sub), { recursive: true });
  writeFileSync(join(dir, "config.xml"), clickhouseConfigXml(dir, httpPort, tcpPort, name));
  writeFileSync(join(dir, "users.xml"), CLICKHOUSE_USERS_XML);
  const server = spawnServer("clickhouse-server", [`--config-file=${join(dir, "config.xml")}`], { cwd: dir });
  return { proc: server.proc, logTail: () => clickhouseLogTail(dir, server.output()) };
}

describe.skipIf(!serverAvailable("clickhouse-server"))("local clickhouse-server on a port another server took", () => {
  let holder: ClickHouseServer;
  let root: string;
  beforeAll(async () => {
    holder = await startClickHouseServer();
    root = mkdtempSync(join(tmpdir(), "lw-clickhouse-port-"));
  });
  afterAll(async () => {
    await holder?.dispose();
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
  });

  it("a server that cannot bind the HTTP port, where another answers, is refused as PortTakenError", async () => {
    const late = spawnNamed(root, "lw-late", holder.httpPort, await freePort());
    try {
      const waited = waitForClickHouseServer(holder.httpPort, "lw-late", 30_000, late.proc);
      await expect(waited).rejects.toBeInstanceOf(PortTakenError);
      await expect(waited).rejects.toThrow(/another server took the port/);
    } finally {
      await terminate(late.proc, 15_000);
    }
  });

  it("a server that cannot bind the native port is refused as PortTakenError, nothing else answering", async () => {
    const httpPort = await freePort();
    const late = spawnNamed(root, "lw-late-native", httpPort, holder.tcpPort);
    try {
      const waited = waitForClickHouseServer(httpPort, "lw-late-native", 30_000, late.proc, late.logTail);
      await expect(waited).rejects.toBeInstanceOf(PortTakenError);
    } finally {
      await terminate(late.proc, 15_000);
    }
  });

  it("a server is known on its port by its own name, not by another's", async () => {
    const port = await freePort();
    const own = spawnNamed(root, "lw-own", port, await freePort());
    try {
      await expect(waitForClickHouseServer(port, "lw-own", 30_000, own.proc)).resolves.toBeUndefined();
      await expect(waitForClickHouseServer(port, "lw-someone-else", 500, own.proc)).rejects.toThrow(/does not answer/);
    } finally {
      await terminate(own.proc, 15_000);
    }
  });
});
