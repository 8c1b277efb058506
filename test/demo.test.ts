/** `linewatch demo` as a newcomer runs it: real nats-server (and clickhouse-server when installed), stops by itself, exits 0. */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { serverAvailable } from "../connectors/local/nats-server.js";

const hasNats = serverAvailable("nats-server");
const hasClickHouse = spawnSync("sh", ["-c", "command -v clickhouse-server"], { stdio: "ignore" }).status === 0;

describe.skipIf(!hasNats)("linewatch demo", () => {
  it("runs the pipeline against local servers, stops after --duration and exits 0", () => {
    const dir = mkdtempSync(join(tmpdir(), "lw-demo-"));
    try {
      const r = spawnSync(
        process.execPath,
        ["dist/engine/cli/main.js", "demo", "--duration", "10s", "--port", "0", "--dir", dir, "--summary-interval", "0"],
        { encoding: "utf8", timeout: 90_000 },
      );
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain("WebSocket    ws://127.0.0.1:");
      const scored = Number(/pipeline stopped: (\d+) records scored/.exec(r.stderr)?.[1]);
      expect(scored).toBeGreaterThan(0);
      if (hasClickHouse) {
        const rows = Number(/ClickHouse ml_scores: (\d+) rows/.exec(r.stderr)?.[1]);
        expect(rows).toBe(scored);
      }
      expect(r.stderr).toContain("nats-server stopped");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
