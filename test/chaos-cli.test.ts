/**
 * `linewatch chaos --quick --json` through the built CLI (dist/: `npm run build` first), on its
 * own throw-away servers: the kill -9 scenario runs, the JSON table has its columns, and nothing
 * was lost, duplicated, crashed or unlike the uninterrupted run; the exit code says pass.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { serverAvailable } from "../connectors/local/mod.js";
import type { ChaosRow } from "../engine/jobs/mod.js";
import { startCli } from "./kit/cli.js";

const servers = serverAvailable("nats-server") && serverAvailable("clickhouse-server");

describe.skipIf(!servers)("linewatch chaos --quick", () => {
  it("kill -9, 2 cycles: the JSON table's row has every column, nothing lost or duplicated, and the run passes", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lw-chaos-cli-"));
    try {
      const p = startCli(["chaos", "--quick", "--json", "--scenario", "kill", "--cycles", "2"], dir);
      const code = await p.exited;
      const out = p.output();
      const json = JSON.parse(out.slice(out.indexOf("{\n"))) as { rows: ChaosRow[]; failed: boolean };
      expect(json.rows.map((r) => r.scenario)).toEqual(["kill -9"]);
      const [row] = json.rows;
      expect(Object.keys(row).sort()).toEqual(
        [
          "scenario",
          "load",
          "cycles",
          "lost",
          "duplicated",
          "crashes",
          "recoveryMs",
          "peakRssBytes",
          "mismatches",
          "figures",
          "notes",
          "verdict",
        ].sort(),
      );
      expect({ cycles: row.cycles, lost: row.lost, duplicated: row.duplicated, crashes: row.crashes }, out).toEqual({
        cycles: 2,
        lost: 0,
        duplicated: 0,
        crashes: 0,
      });
      expect(
        Object.values(row.mismatches).every((n) => n === 0),
        JSON.stringify(row),
      ).toBe(true);
      expect(row.figures["acked records"]).toBe(row.figures["score rows"]);
      expect(row.figures["acked records"]).toBeGreaterThan(0);
      expect(row.recoveryMs).toBeGreaterThan(0);
      expect(row.peakRssBytes).toBeGreaterThan(0);
      expect([row.verdict, json.failed, code]).toEqual(["pass", false, 0]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 600_000);

  it("overload: JetStream reconciled, core NATS published = scored + shed + dead-lettered (/metrics), RSS under its bound, recovered", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lw-chaos-cli-"));
    try {
      const p = startCli(["chaos", "--quick", "--json", "--scenario", "overload"], dir);
      const code = await p.exited;
      const out = p.output();
      const json = JSON.parse(out.slice(out.indexOf("{\n"))) as { rows: ChaosRow[]; failed: boolean };
      const [row] = json.rows;
      expect({ scenario: row.scenario, lost: row.lost, duplicated: row.duplicated, crashes: row.crashes }, out).toEqual({
        scenario: "10× overload",
        lost: 0,
        duplicated: 0,
        crashes: 0,
      });
      expect(row.mismatches, JSON.stringify(row)).toEqual(Object.fromEntries(Object.keys(row.mismatches).map((k) => [k, 0])));
      const f = row.figures as Record<string, number>;
      expect(f["core published"]).toBe(f["core scored"] + f["core shed (counted)"] + f["core dead-lettered"]);
      expect(f["JetStream stored (reconciled)"]).toBeGreaterThan(0);
      expect(row.peakRssBytes).toBeLessThanOrEqual(f["RSS bound MiB"] * 2 ** 20);
      expect(row.recoveryMs).not.toBeNull();
      expect([row.verdict, json.failed, code]).toEqual(["pass", false, 0]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 600_000);
});
