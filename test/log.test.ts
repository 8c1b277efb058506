import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError } from "../engine/core/errors.js";
import { type LogEntry, memoryLogger, parseLogLevel } from "../engine/core/mod.js";
import { CLI } from "./kit/cli.js";

const dir = mkdtempSync(join(tmpdir(), "lw-log-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `linewatch <args>` to its end, stderr not a terminal (so log events are JSON lines). */
function linewatch(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [CLI, ...args], { cwd: dir, env: { ...process.env, ...env } }, (error, stdout, stderr) => {
      done({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr });
    });
  });
}

/** The JSON log events among the stderr lines (the rest is the console for people). */
function events(stderr: string): LogEntry[] {
  return stderr
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as LogEntry);
}

// A short simulator run with the live server on a free port and no token: one info event (listening), one warn (generated token).
const RUN = [
  "run",
  "--records",
  "500",
  "--speed",
  "max",
  "--no-file",
  "--alerts",
  "alerts.ndjson",
  "--port",
  "0",
  "--summary-interval",
  "0",
];

describe("structured logs", () => {
  it("log - one JSON object per event: level name, ISO time, component, message, fields, a thrown error's message and stack", () => {
    const { log, entries } = memoryLogger({ level: "info" });
    const clickhouse = log.child({ component: "clickhouse" });
    clickhouse.warn({ spill_dir: "out/spill", err: new Error("connect ECONNREFUSED") }, "unavailable; spilling rows to disk");
    clickhouse.debug("not written below the level");
    expect(entries).toHaveLength(1);
    const e = entries[0];
    expect(e).toMatchObject({ level: "warn", component: "clickhouse", spill_dir: "out/spill", msg: "unavailable; spilling rows to disk" });
    expect(new Date(e.time).toISOString()).toBe(e.time);
    expect(e.err).toMatchObject({ type: "Error", message: "connect ECONNREFUSED" });
    expect(String((e.err as { stack: string }).stack)).toContain("log.test.ts");
  });

  it("log - levels are pino's; anything else is a ConfigError naming where it came from", () => {
    expect(parseLogLevel("WARN")).toBe("warn");
    expect(parseLogLevel("silent")).toBe("silent");
    expect(() => parseLogLevel("loud", "LINEWATCH_LOG_LEVEL")).toThrow(ConfigError);
    expect(() => parseLogLevel("loud", "LINEWATCH_LOG_LEVEL")).toThrow(/LINEWATCH_LOG_LEVEL/);
  });

  it("log - the CLI's --log-level (before or after the command) and LINEWATCH_LOG_LEVEL choose what reaches stderr; the console lines stay", async () => {
    const byDefault = await linewatch(RUN);
    expect(byDefault.code, byDefault.stderr).toBe(0);
    const all = events(byDefault.stderr);
    expect(all.find((e) => e.msg === "live server listening")).toMatchObject({ level: "info", component: "live" });
    expect(all.find((e) => e.msg.startsWith("no access token configured"))).toMatchObject({ level: "warn", component: "live" });
    // The report people read is not a log event.
    expect(byDefault.stderr).toMatch(/^linewatch run: stopped after 500 records/m);

    const warn = await linewatch(["--log-level", "warn", ...RUN]);
    expect(events(warn.stderr).map((e) => e.level)).toEqual(["warn"]);
    const after = await linewatch([...RUN, "--log-level", "warn"]);
    expect(events(after.stderr).map((e) => e.level)).toEqual(["warn"]);

    const fromEnv = await linewatch(RUN, { LINEWATCH_LOG_LEVEL: "error" });
    expect(events(fromEnv.stderr)).toEqual([]);
    expect(fromEnv.stderr).toMatch(/^linewatch run: stopped after 500 records/m);

    const bad = await linewatch(["--log-level", "loud", ...RUN]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/Allowed choices are trace, debug, info, warn, error, fatal, silent/);
  });
});
