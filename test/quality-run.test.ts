/**
 * The quality job of `linewatch run` (issue 16, point 3), end to end through the built CLI
 * (dist/engine/cli/main.js) on throw-away servers: a model trained by `quality train`;
 * `simulate --batches --nats` publishes the process and quality streams to `run --nats
 * --quality-model`, which writes predictions and outcomes to ClickHouse, serves
 * /api/ml/quality/batches/, opens a quality episode for a batch with a temperature excursion and
 * closes it at the batch's end, and dead-letters malformed process/quality messages with their
 * reasons; a short `run` on the built-in simulator serves the batches too.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startClickHouseServer, type ClickHouseServer } from "../connectors/local/clickhouse-server.js";
import { serverAvailable, startNatsServer, type NatsServer } from "../connectors/local/nats-server.js";
import { CLI } from "./kit/cli.js";

const SITE = "q1";
const BATCHES = ["--batches", "24", "--lines", "3", "--seed", "5"];
const haveServers = serverAvailable("nats-server") && serverAvailable("clickhouse-server");

function cli(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [CLI, ...args], { cwd, maxBuffer: 1 << 26 }, (error, stdout, stderr) => {
      done({ code: error === null ? 0 : ((error as { code?: number }).code ?? 1), stdout, stderr });
    });
  });
}

async function until<T>(what: () => string, get: () => Promise<T | null> | T | null, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await get();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Started {
  child: ChildProcess;
  stderr: () => string;
  get: (path: string) => Promise<Response>;
}

/** Starts `run` with a live server on a free port; resolves once the API answers and `ready` holds for its log events. */
async function startRun(args: string[], cwd: string, ready: (events: Record<string, unknown>[]) => boolean): Promise<Started> {
  let stderr = "";
  const child = spawn(process.execPath, [CLI, "run", ...args, "--port", "0", "--summary-interval", "0"], {
    cwd,
    stdio: ["ignore", "ignore", "pipe"],
  });
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const events = () =>
    stderr
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  let found: { url: string; token: string };
  try {
    found = await until(
      () => `the live server's URL in ${stderr}`,
      () => {
        const generated = events().find((e) => String(e.msg).startsWith("no access token configured"));
        if (generated === undefined || !ready(events())) return null;
        const link = new URL(String(generated.url));
        return { url: link.origin, token: new URLSearchParams(link.hash.slice(1)).get("token") as string };
      },
    );
  } catch (e) {
    // Not left running when it never became ready.
    child.kill("SIGKILL");
    throw e;
  }
  const { url, token } = found;
  return { child, stderr: () => stderr, get: (path) => fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } }) };
}

interface BatchView {
  batch_id: string;
  status: string;
  history: Array<{ predicted_yield: number; progress: number }>;
  latest: { predicted_yield: number; final: boolean } | null;
  outcome: { timestamp: number; first_pass_yield: number } | null;
  episode: { key: string; family: string; closed_at: number | null; opened_at: number; fields: Record<string, string> } | null;
}

describe.skipIf(!haveServers)("quality in run - CLI, NATS in, ClickHouse and the API out", () => {
  let nats: NatsServer;
  let ch: ClickHouseServer;
  let run: ChildProcess | null = null;
  const dir = mkdtempSync(join(tmpdir(), "lw-quality-run-"));
  const model = join(dir, "quality.onnx");
  beforeAll(async () => {
    [nats, ch] = await Promise.all([startNatsServer(), startClickHouseServer()]);
    const data = join(dir, "train.ndjson");
    expect((await cli(["simulate", "--batches", "300", "--seed", "11", "--out", data], dir)).code).toBe(0);
    const trained = await cli(["quality", "train", "--data", data, "--out", model, "--seed", "1"], dir);
    expect(trained.code, trained.stderr).toBe(0);
  }, 180_000);
  afterAll(async () => {
    run?.kill("SIGKILL");
    await Promise.all([nats?.dispose(), ch?.dispose()]);
  });

  it("quality - run --nats scores every batch, joins its outcome, writes ClickHouse, opens and closes excursion episodes, dead-letters bad records", async () => {
    const started = await startRun(
      [
        "--nats",
        nats.url,
        "--site",
        SITE,
        "--analysis",
        "rolling",
        "--clickhouse",
        ch.url,
        "--no-serials",
        "--no-publish-scores",
        "--quality-model",
        model,
        "--quality-interval",
        "5m",
        "--alerts",
        join(dir, "alerts.ndjson"),
      ],
      dir,
      (events) => events.some((e) => e.component === "quality" && e.msg === "consuming process and quality records"),
    );
    run = started.child;
    const nc: NatsConnection = await connect({ servers: nats.url });
    const letters: Array<{ subject: string; reason: string }> = [];
    const sub = nc.subscribe(`lw.${SITE}.deadletter`, {
      callback: (_e, m) => {
        const body = JSON.parse(new TextDecoder().decode(m.data)) as { subject: string; reason: string };
        letters.push({ subject: body.subject, reason: body.reason });
      },
    });
    await nc.flush();
    const enc = new TextEncoder();
    nc.publish(`lw.${SITE}.process.L-001`, enc.encode(JSON.stringify({ line_id: "L-001", batch_id: "B-x" })));
    // A JSON object cut off: `truncated`.
    nc.publish(`lw.${SITE}.quality.L-002`, enc.encode("{not json"));
    nc.publish(
      `lw.${SITE}.quality.L-003`,
      enc.encode(
        JSON.stringify({
          line_id: "L-009",
          work_order_id: "WO",
          batch_id: "B-y",
          timestamp: 1,
          units_produced: 10,
          first_pass_yield: 0.9,
          defect_rate: 0.1,
          defects: { packaging: 1, labelling: 0, serialization: 0, other: 0 },
        }),
      ),
    );
    await nc.flush();

    const file = join(dir, "batches.ndjson");
    expect((await cli(["simulate", ...BATCHES, "--out", file], dir)).code).toBe(0);
    const published = await cli(["simulate", ...BATCHES, "--nats", nats.url, "--site", SITE, "--payload", "json"], dir);
    expect(published.code, published.stderr).toBe(0);

    const list = async (q: string) =>
      (await (await started.get(`/api/ml/quality/batches/${q}`)).json()) as { count: number; results: BatchView[] };
    await until(
      () => `24 completed batches (${started.stderr()})`,
      async () => ((await list("?status=completed")).count === 24 ? true : null),
    );
    expect((await list("?status=running")).count).toBe(0);
    expect((await list("?line=L-002")).results.every((b) => b.batch_id.startsWith("L-002-"))).toBe(true);
    expect((await started.get("/api/ml/quality/batches/?status=bogus")).status).toBe(400);
    expect((await started.get("/api/ml/quality/batches/L-404-B00001/")).status).toBe(404);

    // Batches with a temperature excursion (the process temperature leaves its 18–25 °C window by ≥ 3 °C) in the published file.
    const records = readFileSync(file, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { record_type: string; batch_id: string; process_parameters?: { temperature: number } });
    const hot = new Set(
      records.filter((r) => r.record_type === "process" && (r.process_parameters?.temperature ?? 0) > 28).map((r) => r.batch_id),
    );
    expect(hot.size).toBeGreaterThan(0);
    const details = await Promise.all(
      [...hot].map(async (id) => (await (await started.get(`/api/ml/quality/batches/${id}/`)).json()) as BatchView),
    );
    for (const b of details) {
      expect(b.status).toBe("completed");
      expect(b.latest?.final).toBe(true);
      expect(b.history.length).toBeGreaterThan(1);
      expect(b.outcome).not.toBeNull();
    }
    const closedAtEnd = details.filter((b) => b.episode !== null && b.episode.closed_at === b.outcome?.timestamp);
    expect(
      closedAtEnd.length,
      JSON.stringify(details.map((b) => [b.batch_id, b.episode?.closed_at, b.outcome?.timestamp])),
    ).toBeGreaterThan(0);
    const e = closedAtEnd[0].episode as NonNullable<BatchView["episode"]>;
    expect(e.family).toBe("quality");
    expect(e.key).toBe(`quality:${closedAtEnd[0].batch_id.slice(0, 5)}/${closedAtEnd[0].batch_id}`);
    const drivers = JSON.parse(e.fields.drivers) as Array<{ feature: string }>;
    expect(drivers.length).toBeGreaterThan(0);
    // Nothing to act on (engine/jobs/quality-job.ts QUALITY_NON_DRIVERS): never listed.
    for (const b of details) if (b.episode !== null) expect(b.episode.fields.drivers).not.toMatch(/"feature":"progress"/);
    expect(drivers.map((d) => d.feature)).not.toContain("progress");

    // ClickHouse: every completed batch's outcome, and its predictions.
    const query = async (sql: string) => (await (await fetch(`${ch.url}/?query=${encodeURIComponent(sql)}`)).text()).trim();
    await until(
      () => "24 outcome rows in ml_quality_outcomes",
      async () => ((await query("SELECT count() FROM ml_quality_outcomes FINAL")) === "24" ? true : null),
    );
    const predicted = Number(await query("SELECT count() FROM ml_quality_predictions FINAL"));
    const finals = Number(await query("SELECT count() FROM ml_quality_predictions FINAL WHERE final = 1"));
    expect(finals).toBe(24);
    expect(predicted).toBeGreaterThan(24);
    await until(
      () => `a closed quality episode in ml_alerts`,
      async () =>
        Number(await query("SELECT count() FROM ml_alerts FINAL WHERE family = 'quality' AND state = 'closed'")) > 0 ? true : null,
    );

    // The malformed records, dead-lettered with the codec's reasons.
    await until(
      () => `three dead letters (${JSON.stringify(letters)})`,
      () => (letters.length >= 3 ? true : null),
    );
    expect(letters.map((l) => `${l.subject} ${l.reason}`).sort()).toEqual([
      `lw.${SITE}.process.L-001 missing_field`,
      `lw.${SITE}.quality.L-002 truncated`,
      `lw.${SITE}.quality.L-003 subject_mismatch`,
    ]);
    sub.unsubscribe();
    await nc.close();
    run.kill("SIGTERM");
    await new Promise((r) => run?.once("exit", r));
    run = null;
    expect(started.stderr()).toMatch(/quality \(model quality-mlp-[0-9a-f]{12}\): \d+ process readings, 24 outcomes/);
  }, 240_000);

  it("quality - a short run on the built-in simulator serves the batches it scores", async () => {
    const started = await startRun(
      [
        "--speed",
        "600",
        "--machines",
        "1",
        "--no-file",
        "--no-serials",
        "--quality-model",
        model,
        "--alerts",
        join(dir, "sim-alerts.ndjson"),
      ],
      dir,
      (events) => events.some((e) => e.component === "quality"),
    );
    run = started.child;
    const listed = await until(
      () => `a scored batch on /api/ml/quality/batches/ (${started.stderr()})`,
      async () => {
        const l = (await (await started.get("/api/ml/quality/batches/?status=running")).json()) as { count: number; results: BatchView[] };
        return l.results.some((b) => b.latest !== null) ? l : null;
      },
    );
    expect(listed.results[0].batch_id).toMatch(/^L-00\d-B\d{5}$/);
    run.kill("SIGTERM");
    await new Promise((r) => run?.once("exit", r));
    run = null;
  }, 120_000);
});
