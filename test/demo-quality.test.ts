/**
 * `linewatch demo`'s quality part (issue 16, point 3) as a newcomer gets it, by default: the batch
 * simulator (here at 1500× so batches end within a short run) published to the demo's
 * nats-server through JetStream, the quality job consuming it over NATS with the built-in model.
 * While it runs the API lists completed batches with their outcome joined to a final prediction,
 * and a quality episode (seed 1: L-004's first batch crosses the yield warning) is on the episode
 * list; after --duration the closing summary gives the quality figures, and the demo's ClickHouse
 * holds as many outcome rows as the summary counts outcomes — nothing published was left behind.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { commandInstalled, serverAvailable } from "../connectors/local/mod.js";

const haveServers = serverAvailable("nats-server") && commandInstalled("clickhouse-server");

interface BatchView {
  batch_id: string;
  status: string;
  latest: { final: boolean; predicted_yield: number } | null;
  outcome: { first_pass_yield: number; predicted_yield: number | null } | null;
}

/** Polls `get` every 250 ms until it gives a value or the process has exited (then null). */
async function whileRunning<T>(exited: () => boolean, get: () => Promise<T | null>): Promise<T | null> {
  while (!exited()) {
    const v = await get().catch(() => null);
    if (v !== null) return v;
    await new Promise((r) => setTimeout(r, 250));
  }
  return null;
}

describe.skipIf(!haveServers)("linewatch demo - quality", () => {
  it("demo - quality by default: batches over JetStream, scored, joined, episodes on the list, rows in ClickHouse, figures at the end", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lw-demo-quality-"));
    const args = ["demo", "--duration", "20s", "--port", "0", "--dir", dir, "--summary-interval", "0"];
    args.push("--machines", "1", "--no-serials", "--quality-speed", "1500");
    const child = spawn(process.execPath, ["dist/engine/cli/main.js", ...args], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    let exited = false;
    const exit = new Promise<number | null>((r) =>
      child.once("exit", (code) => {
        exited = true;
        r(code);
      }),
    );
    const killer = setTimeout(() => child.kill("SIGKILL"), 55_000);
    try {
      const api = await whileRunning(
        () => exited,
        async () => {
          const link = /linewatch demo: dashboard (http:\/\/\S+)\/#token=(\S+)/.exec(stderr);
          return link === null ? null : { url: link[1], token: link[2] };
        },
      );
      expect(api, stderr).not.toBeNull();
      const { url, token } = api as { url: string; token: string };
      const get = async <T>(path: string): Promise<T> =>
        (await (await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } })).json()) as T;
      const completed = await whileRunning(
        () => exited,
        async () => {
          const l = await get<{ count: number; results: BatchView[] }>("/api/ml/quality/batches/?status=completed");
          return l.count > 0 ? l.results[0] : null;
        },
      );
      expect(completed, stderr).not.toBeNull();
      const batch = await get<BatchView>(`/api/ml/quality/batches/${(completed as BatchView).batch_id}/`);
      expect(batch.status).toBe("completed");
      expect(batch.latest?.final).toBe(true);
      expect(batch.outcome?.predicted_yield).toBe(batch.latest?.predicted_yield);
      const episode = await whileRunning(
        () => exited,
        async () => {
          const l = await get<{ results: Array<{ key: string }> }>("/api/alerts/episodes?state=all&family=quality");
          return l.results.find((e) => e.key === "quality:L-004/L-004-B00001") ?? null;
        },
      );
      expect(episode, stderr).not.toBeNull();
      expect(await exit).toBe(0);
    } finally {
      clearTimeout(killer);
      child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
    const figures =
      /linewatch demo: quality \(model quality-mlp-\w+\): (\d+) process readings, (\d+) outcomes, (\d+) batches scored, .*yield MAE of completed batches (\d\.\d+) at the end/.exec(
        stderr,
      );
    expect(figures, stderr).not.toBeNull();
    const [readings, outcomes, scored, mae] = (figures as RegExpExecArray).slice(1).map(Number);
    expect(readings).toBeGreaterThan(0);
    expect(outcomes).toBeGreaterThan(0);
    expect(scored).toBeGreaterThanOrEqual(outcomes);
    expect(mae).toBeLessThan(0.05);
    const rows = (table: string) => Number(new RegExp(`ClickHouse \\S+\\.${table} \\(this run\\): (\\d+) rows`).exec(stderr)?.[1]);
    expect(rows("ml_quality_outcomes")).toBe(outcomes);
    expect(rows("ml_quality_predictions")).toBeGreaterThan(outcomes);
  }, 60_000);
});
