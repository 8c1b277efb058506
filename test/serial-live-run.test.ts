/**
 * `linewatch run --nats … --stream …` with its serial job, end to end through the CLI
 * (dist/engine/cli/main.js: `npm run build` first): `linewatch simulate-serials --nats --jetstream`
 * publishes simulated serial events (with attacks), the run consumes them from JetStream, writes
 * ClickHouse and serves the API; what it wrote is what `linewatch replay --analysis serial` says
 * of the same events, every event is acknowledged, and the quarantine file lists the same serials.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { connect } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startClickHouseServer, type ClickHouseServer } from "../connectors/local/clickhouse-server.js";
import { serverAvailable, startNatsServer, type NatsServer } from "../connectors/local/nats-server.js";

const CLI = resolve("dist/engine/cli/main.js");
const SITE = "s9";
const SIM = ["--seed", "21", "--records", "6000", "--attack-every", "700", "--batch-serials", "1000"];
const haveServers = serverAvailable("nats-server") && serverAvailable("clickhouse-server");

function cli(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [CLI, ...args], { cwd, maxBuffer: 1 << 26 }, (error, stdout, stderr) => {
      done({ code: error === null ? 0 : ((error as { code?: number }).code ?? 1), stdout, stderr });
    });
  });
}

async function until<T>(what: () => string, get: () => Promise<T | null> | T | null, timeoutMs = 45_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await get();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.skipIf(!haveServers)("serial live run - CLI, JetStream in, ClickHouse and the API out", () => {
  let nats: NatsServer;
  let ch: ClickHouseServer;
  let run: ChildProcess | null = null;
  const dir = mkdtempSync(join(tmpdir(), "lw-serial-run-"));
  beforeAll(async () => {
    [nats, ch] = await Promise.all([startNatsServer(), startClickHouseServer()]);
  }, 120_000);
  afterAll(async () => {
    run?.kill("SIGKILL");
    await Promise.all([nats?.dispose(), ch?.dispose()]);
  });

  it("serial - run --nats --stream acknowledges every serial event after writing exactly the replay's detections", async () => {
    // The replay contract on the same events, from a file.
    const file = join(dir, "events.ndjson");
    expect((await cli(["simulate-serials", ...SIM, "--out", file], dir)).code).toBe(0);
    const replayed = await cli(["replay", file, "--analysis", "serial", "--quiet", "--out", join(dir, "verdicts.ndjson")], dir);
    expect(replayed.code, replayed.stderr).toBe(0);
    const verdicts = readFileSync(join(dir, "verdicts.ndjson"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const flagged = verdicts.filter((v) => typeof v.anomaly_score === "number" && v.anomaly_score > 0);
    const wantDetections = flagged
      .map(
        (v) => `${v.machine_id}|${v.gtin}|${v.serial_number}|${Date.parse(v.timestamp as string)}|${(v.row as number) + 1}|${v.risk_level}`,
      )
      .sort();
    const wantQuarantine = [...new Set(verdicts.filter((v) => v.quarantine === true).map((v) => `${v.gtin}/${v.serial_number}`))].sort();
    expect(wantDetections.length).toBeGreaterThan(200);
    expect(wantQuarantine.length).toBeGreaterThan(20);

    const qfile = join(dir, "quarantine.json");
    let stderr = "";
    run = spawn(
      process.execPath,
      [
        CLI,
        "run",
        "--nats",
        nats.url,
        "--stream",
        "LWS",
        "--site",
        SITE,
        "--analysis",
        "rolling",
        "--clickhouse",
        ch.url,
        "--port",
        "0",
        "--summary-interval",
        "0",
        "--no-publish-scores",
        "--serial-quarantine",
        qfile,
        "--serial-workers",
        "1",
      ],
      { cwd: dir, stdio: ["ignore", "ignore", "pipe"] },
    );
    run.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    // The generated token and the serial consumer are log events: JSON lines on stderr (not a terminal).
    const events = () =>
      stderr
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const { url, token } = await until(
      () => `the live server's URL in ${stderr}`,
      () => {
        const generated = events().find((e) => String(e.msg).startsWith("no access token configured"));
        const consuming = events().some((e) => e.component === "serial" && e.durable !== undefined);
        if (generated === undefined || !consuming) return null;
        const link = new URL(String(generated.url));
        return { url: link.origin, token: new URLSearchParams(link.hash.slice(1)).get("token") as string };
      },
    );
    expect(events().find((e) => e.component === "serial" && e.durable !== undefined)).toMatchObject({
      level: "info",
      stream: "LWS_SERIAL",
      durable: "lw-s9-serial",
    });

    const published = await cli(["simulate-serials", ...SIM, "--nats", nats.url, "--site", SITE, "--jetstream"], dir);
    expect(published.code, published.stderr).toBe(0);
    expect(published.stderr).toContain("published 6000 events");

    const get = async (path: string) => fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });
    await until(
      () => `6000 serial events scored (${stderr})`,
      async () => {
        const text = await (await get("/metrics")).text();
        return /linewatch_records_out_total\{analysis="serial"\} 6000\b/.test(text) ? true : null;
      },
    );
    const listed = (await (await get("/api/quarantine")).json()) as {
      count: number;
      results: Array<{ gtin: string; serial_number: string }>;
    };
    expect(listed.results.map((e) => `${e.gtin}/${e.serial_number}`).sort()).toEqual(wantQuarantine);

    run.kill("SIGTERM");
    const code = await new Promise<number | null>((r) => run?.once("exit", (c) => r(c)));
    run = null;
    expect(code, stderr).toBe(0);
    expect(stderr).toMatch(/serials: 6000 events/);

    // Every event acknowledged (after its outputs were durable).
    const nc = await connect({ servers: nats.url });
    const info = await (await nc.jetstreamManager()).consumers.info("LWS_SERIAL", "lw-s9-serial");
    await nc.close();
    expect(info.ack_floor.stream_seq).toBe(6000);
    expect(info.num_ack_pending).toBe(0);

    const rows = async (sql: string) =>
      (await ch.query(`${sql} FORMAT JSONEachRow`, { output_format_json_quote_64bit_integers: 0 }))
        .trim()
        .split("\n")
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const detections = (
      await rows("SELECT machine_id, gtin, serial_number, detected_at_ms, seq, risk_level FROM ml_serial_detections FINAL")
    )
      .map((r) => `${r.machine_id}|${r.gtin}|${r.serial_number}|${r.detected_at_ms}|${r.seq}|${r.risk_level}`)
      .sort();
    expect(detections).toEqual(wantDetections);
    const quarantine = (await rows("SELECT gtin, serial_number FROM ml_quarantine FINAL WHERE released_at IS NULL"))
      .map((r) => `${r.gtin}/${r.serial_number}`)
      .sort();
    expect(quarantine).toEqual(wantQuarantine);

    // The quarantine file, as `linewatch serial quarantine list` reads it.
    const list = await cli(["serial", "quarantine", "list", "--file", qfile, "--json"], dir);
    expect(
      (JSON.parse(list.stdout) as Array<{ gtin: string; serial_number: string }>).map((e) => `${e.gtin}/${e.serial_number}`).sort(),
    ).toEqual(wantQuarantine);
  }, 120_000);
});
