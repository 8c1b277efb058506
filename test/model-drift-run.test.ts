/**
 * Drift of the prediction model in `linewatch run` (engine/jobs/model-drift.ts), through the built
 * CLI on the C-MAPSS FD001 training file replayed one unit after another (a fleet whose engines
 * are at every age, as the training rows are):
 *
 * - unshifted, the model's inputs stay stable over the whole file: no model_drift episode;
 * - with s11 moved by +2σ (σ of s11 over the file, 0.267) from the replay's cycle 10 000, one
 *   episode opens, on s11's features only, within one drift window (W = 10 000 predictions) of the
 *   shift, and the residual test (a failed unit's mean predicted − true RUL) joins it;
 * - the API serves the models in use and each one's drift, the moved feature first (a gross shift
 *   and a short window there, so the run is short).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { readCmapss } from "../connectors/files/cmapss.js";
import { referenceDataDir } from "../connectors/files/reference-data.js";
import type { AlertEpisodeEvent } from "../operators/spc/mod.js";
import { type CliProcess, startCli } from "./kit/cli.js";
import { liveApi } from "./kit/live-api.js";
import { testModelBytes } from "./kit/prediction-model.js";
import { waitUntil } from "./kit/wait.js";
import { startClickHouseServer } from "../connectors/local/clickhouse-server.js";
import { serverAvailable } from "../connectors/local/nats-server.js";

const CLI = resolve("dist/engine/cli/main.js");
const FILE = join(referenceDataDir(), "cmapss", "train_FD001.txt");
const T0 = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;
const W = 10_000;
const haveClickHouse = serverAvailable("clickhouse-server");

let dir: string;
let model: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "lw-drift-run-"));
  model = join(dir, "model.onnx");
  writeFileSync(model, testModelBytes(readCmapss(FILE)));
}, 60_000);

/** `run` over the whole file in unit order at --speed max; its model_drift events. */
async function replay(name: string, extra: string[]): Promise<AlertEpisodeEvent[]> {
  const alerts = join(dir, `${name}.ndjson`);
  const args = [
    "run",
    "--cmapss",
    FILE,
    "--cmapss-order",
    "unit",
    "--cycle",
    "1h",
    "--predict",
    model,
    "--analysis",
    "rolling",
    "--speed",
    "max",
  ];
  const child = spawn(
    process.execPath,
    [CLI, ...args, ...extra, "--no-file", "--alerts", alerts, "--summary-interval", "0", "--no-serials"],
    {
      cwd: dir,
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, LINEWATCH_LOG_LEVEL: "warn" },
    },
  );
  let stderr = "";
  child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((r) => child.once("exit", r));
  expect(code, stderr).toBe(0);
  expect(stderr).toMatch(/20631 predictions/);
  return readFileSync(alerts, "utf8")
    .split("\n")
    .filter((l) => l.includes('"model_drift"'))
    .map((l) => JSON.parse(l) as AlertEpisodeEvent);
}

describe("run --predict: drift of the model's inputs on C-MAPSS FD001", () => {
  it("stays stable on the file as it is; s11 +2σ from cycle 10 000 opens one episode, on s11 only, within one window", async () => {
    expect(await replay("plain", [])).toEqual([]);

    const shiftAt = T0 + 10_000 * HOUR;
    // With ClickHouse (when the machine has it) the episode also lands in ml_alerts, as SPC episodes do.
    const ch = haveClickHouse ? await startClickHouseServer() : null;
    const withClickHouse = ch === null ? [] : ["--clickhouse", ch.url, "--clickhouse-db", "default", "--spill-dir", join(dir, "spill")];
    let events: AlertEpisodeEvent[];
    let stored = "";
    try {
      events = await replay("shifted", ["--cmapss-shift", "s11:+0.534@10000", ...withClickHouse]);
      if (ch !== null)
        stored = await ch.query(
          "SELECT machine_id, family, severity, state, rules[1] FROM ml_alerts FINAL WHERE family = 'model_drift' FORMAT TSV",
        );
    } finally {
      await ch?.dispose();
    }
    if (ch !== null) expect(stored.trim().split("\n")).toEqual([expect.stringMatching(/^model:rul\tmodel_drift\thigh\topen\ts11\.mean$/)]);
    const ids = new Set(events.map((e) => e.episode_id));
    expect(ids.size, JSON.stringify(events.map((e) => e.description))).toBe(1);
    const opened = events[0];
    expect(opened.event).toBe("opened");
    expect(opened.family).toBe("model_drift");
    expect(opened.fields).toEqual({ machine_id: "model:rul", sensor_type: expect.stringMatching(/^rul-mlp-[0-9a-f]{12}$/) });
    expect(opened.opened_at).toBeGreaterThan(shiftAt);
    expect(opened.opened_at).toBeLessThanOrEqual(shiftAt + W * HOUR);
    const last = events.at(-1) as AlertEpisodeEvent;
    // Only s11's features moved; the residual test joined once failed units' predictions went off.
    expect(last.rules.filter((r) => r !== "residual").every((r) => r.startsWith("s11."))).toBe(true);
    expect(last.rules[0]).toBe("s11.mean");
    expect(last.severity).toBe("high");
    expect(last.description).toMatch(/PSI|residual/);
  }, 120_000);

  it("GET /api/ml/models/ and /api/ml/models/{id}/drift: the model in use, its features' PSI, highest PSI first", async () => {
    const args = ["run", "--cmapss", FILE, "--cmapss-units", "1-30", "--cmapss-order", "unit", "--cycle", "1h", "--speed", "3600000"];
    const run: CliProcess = startCli(
      [
        ...args,
        "--predict",
        model,
        "--analysis",
        "rolling",
        "--drift-window",
        "500",
        "--cmapss-shift",
        "s11:+1.5@2000",
        "--port",
        "0",
      ].concat(["--no-file", "--alerts", join(dir, "api.ndjson"), "--summary-interval", "0", "--no-serials"]),
      dir,
    );
    try {
      const api = await liveApi(run, false);
      const get = (path: string) => api("GET", path);
      const listed = await get("/api/ml/models/");
      expect(listed.status).toBe(200);
      const [entry] = listed.body.results as Array<{ version: string; in_use: boolean; kind: string; window: number; features: unknown[] }>;
      expect([entry.kind, entry.in_use, entry.window, entry.features.length]).toEqual(["rul", true, 500, 28]);
      // A window of 500 predictions of a fleet's autocorrelated features is noisy (docs/drift.md), so
      // the shift here is gross — s11 +3 (11σ) from the first cycle — and the check is its order.
      let drift: Record<string, unknown> = {};
      const major = await waitUntil(async () => {
        drift = (await get(`/api/ml/models/${entry.version}/drift`)).body;
        return (drift.features as Array<{ name: string; level: string }>).some((f) => f.name === "s11.mean" && f.level === "major");
      }, 60_000);
      expect(major, JSON.stringify(drift)).toBe(true);
      const features = drift.features as Array<{ name: string; psi: number; level: string }>;
      // Highest PSI first; the shifted feature is major (a window of 2–3 units' lives moves others too).
      expect(features.map((f) => f.psi)).toEqual([...features.map((f) => f.psi)].sort((a, b) => b - a));
      expect(features.find((f) => f.name === "s11.mean")?.level, JSON.stringify(features.slice(0, 5))).toBe("major");
      expect(drift.episode).toMatchObject({ rules: expect.arrayContaining(["s11.mean"]) });
      expect((await get("/api/ml/models/rul-mlp-000000000000/drift")).status).toBe(404);
    } finally {
      await run.stop();
    }
  }, 120_000);
});
