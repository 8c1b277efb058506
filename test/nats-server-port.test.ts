/**
 * The local nats-server launcher knows its own server: a free port is released before the server
 * binds it, and a parallel test file's server can take it meanwhile. The launcher then sees that
 * server's greeting (its INFO line names another server), waits for its own to exit, and starts on
 * another port — never handing out a URL where another server answers.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnServer, terminate } from "../connectors/local/child-process.js";
import {
  freePort,
  PortTakenError,
  serverAvailable,
  startNatsServer,
  type NatsServer,
  waitForNatsServer,
} from "../connectors/local/nats-server.js";

describe.skipIf(!serverAvailable("nats-server"))("local nats-server on a port another server took", () => {
  let holder: NatsServer;
  let dir: string;
  beforeAll(async () => {
    holder = await startNatsServer();
    dir = mkdtempSync(join(tmpdir(), "lw-nats-port-"));
  });
  afterAll(async () => {
    await holder?.dispose();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it("a server that cannot bind the port, where another greets, is refused as PortTakenError", async () => {
    const late = spawnServer("nats-server", ["-a", "127.0.0.1", "-p", String(holder.port), "-n", "lw-late", "-sd", dir], { cwd: dir });
    try {
      const waited = waitForNatsServer(holder.port, "lw-late", 10_000, late.proc);
      await expect(waited).rejects.toBeInstanceOf(PortTakenError);
      await expect(waited).rejects.toThrow(/another server took the port/);
    } finally {
      await terminate(late.proc, 5_000);
    }
  });

  it("a server is known on its port by its own name, not by another's", async () => {
    const port = await freePort();
    const own = spawnServer("nats-server", ["-a", "127.0.0.1", "-p", String(port), "-n", "lw-own", "-sd", dir], { cwd: dir });
    try {
      await expect(waitForNatsServer(port, "lw-own", 10_000, own.proc)).resolves.toBeUndefined();
      await expect(waitForNatsServer(port, "lw-someone-else", 500, own.proc)).rejects.toThrow(/does not answer there/);
    } finally {
      await terminate(own.proc, 5_000);
    }
  });
});
