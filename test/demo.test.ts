/**
 * `linewatch demo` as a newcomer runs it: real nats-server (and clickhouse-server when installed),
 * stops by itself, exits 0. The WebSocket subscription it prints is sent, as printed, to its live
 * server, which must accept it and stream the machine's scores; and its final ClickHouse count is
 * this run's only: a second run in the same directory counts its own records, not both runs'.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { commandInstalled, serverAvailable } from "../connectors/local/mod.js";
import { LiveClient } from "./kit/live-client.js";

const hasNats = serverAvailable("nats-server");
const hasClickHouse = commandInstalled("clickhouse-server");

interface DemoRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI's `demo`; `onStdout` sees the output so far on each chunk. */
function runDemo(dir: string, duration: string, onStdout: (text: string) => void = () => {}): Promise<DemoRun> {
  const child = spawn(
    process.execPath,
    ["dist/engine/cli/main.js", "demo", "--duration", duration, "--port", "0", "--dir", dir, "--summary-interval", "0"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => {
    stdout += d.toString();
    onStdout(stdout);
  });
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const killer = setTimeout(() => child.kill("SIGKILL"), 90_000);
  return new Promise((resolve) => {
    child.once("exit", (status) => {
      clearTimeout(killer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** The records the run says it scored, and (with ClickHouse) the rows its final count found. */
function counts(r: DemoRun): { scored: number; rows: number } {
  return {
    scored: Number(/pipeline stopped: (\d+) records scored/.exec(r.stderr)?.[1]),
    rows: Number(/ClickHouse \S+\.ml_scores \(this run\): (\d+) rows/.exec(r.stderr)?.[1]),
  };
}

/** What the WebSocket client saw after sending the printed subscription. */
interface WsCheck {
  subscribed: boolean;
  topics: string[];
  errors: string[];
}

/** The WebSocket URL and the subscribe message as the welcome prints them, once both are there. */
function printedSubscription(stdout: string): { url: string; message: Record<string, unknown> } | null {
  const url = /WebSocket {4}(ws:\/\/\S+)/.exec(stdout)?.[1];
  const message = /^\s+send (\{.*\})\s/m.exec(stdout)?.[1];
  return url === undefined || message === undefined ? null : { url, message: JSON.parse(message) as Record<string, unknown> };
}

describe.skipIf(!hasNats)("linewatch demo", () => {
  it("prints a WebSocket subscription its server accepts, stops after --duration, exits 0; a second run counts only its own rows", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lw-demo-"));
    try {
      let checked: Promise<WsCheck> | null = null;
      const first = await runDemo(dir, "15s", (stdout) => {
        const printed = printedSubscription(stdout);
        if (checked !== null || printed === null) return;
        checked = (async () => {
          const client = await LiveClient.connect(printed.url);
          try {
            client.send(printed.message);
            await client.until(() => client.controls("subscribed").length > 0 || client.controls("error").length > 0, "an answer");
            await client.until(() => client.data("machine/M-001").length > 0, "a score of machine/M-001", 10_000);
            return {
              subscribed: client.controls("subscribed").length > 0,
              topics: [...new Set(client.data().map((m) => m.topic))],
              errors: client.controls("error").map((e) => JSON.stringify(e)),
            };
          } finally {
            client.close();
          }
        })().catch((e: Error) => ({ subscribed: false, topics: [], errors: [e.message] }));
      });
      expect(first.status, first.stderr).toBe(0);
      expect(checked, first.stdout).not.toBeNull();
      const ws = await (checked as unknown as Promise<WsCheck>);
      expect(ws.errors).toEqual([]);
      expect(ws.subscribed).toBe(true);
      expect(ws.topics).toContain("machine/M-001");
      const a = counts(first);
      expect(a.scored).toBeGreaterThan(0);
      expect(first.stderr).toContain("nats-server stopped");
      // Failure predictions by default, from the built-in plant's model (as `run` on the simulator).
      expect(first.stderr).toContain("failure predictions from the built-in plant's model");
      if (!hasClickHouse) return;
      expect(a.rows).toBe(a.scored);

      const second = await runDemo(dir, "8s");
      expect(second.status, second.stderr).toBe(0);
      const b = counts(second);
      expect(b.scored).toBeGreaterThan(0);
      expect(b.rows).toBe(b.scored);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 240_000);
});
