/**
 * The quality job on JetStream (`run --nats … --stream`, issue 16 point 3), end to end through the
 * built CLI on throw-away servers. The process and quality records of 18 batches on 3 lines go to
 * a stream in two parts; the run takes the first, is killed (-9) once its checkpoint covers it —
 * batches are then running, part of their readings taken — and a second run takes the rest. Every
 * outcome must be in ClickHouse exactly once (even without FINAL: the replay at restart writes
 * nothing again), joined to a final prediction; and the final prediction of each batch that ran
 * across the kill must be the one `quality score` makes from all of its readings — the replay gave
 * the second run the batch's whole features. A stream on all of a site's subjects is read through
 * the site's filter: every outcome joined, the other subjects' messages skipped and counted.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, headers, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startClickHouseServer, type ClickHouseServer } from "../connectors/local/clickhouse-server.js";
import { serverAvailable, startNatsServer, type NatsServer } from "../connectors/local/nats-server.js";
import { CheckpointStore } from "../connectors/nats/checkpoint-store.js";
import { BatchSimulator, formatProcessNdjson, formatQualityNdjson } from "../connectors/sim/mod.js";
import { encodeProcessRecord, encodeQualityRecord, processSubject, qualitySubject } from "../connectors/wire/mod.js";
import { CLI } from "./kit/cli.js";
import { printFigures } from "./kit/figures.js";

const SITE = "qj";
const STREAM = "LWQ";
const BATCHES = 18;
const haveServers = serverAvailable("nats-server") && serverAvailable("clickhouse-server");

interface Message {
  subject: string;
  data: Uint8Array;
  id: string;
  batch: string;
  kind: "process" | "quality";
}

/** The batch simulator's records as NATS messages (MessagePack), and the same records as batch-stream NDJSON. */
function batchRecords(site = SITE, lines = 3, batches = BATCHES): { messages: Message[]; ndjson: string } {
  const sim = new BatchSimulator({ seed: 5, lines, batches });
  const messages: Message[] = [];
  let ndjson = "";
  for (let kind = sim.next(); kind !== null; kind = sim.next()) {
    if (kind === "process") {
      const r = sim.reading;
      messages.push({
        subject: processSubject(site, r.line_id),
        data: encodeProcessRecord(r, "msgpack"),
        id: `${r.batch_id}:${r.timestamp}`,
        batch: r.batch_id,
        kind,
      });
      ndjson += `${formatProcessNdjson(r)}\n`;
    } else {
      const q = sim.outcome as NonNullable<BatchSimulator["outcome"]>;
      messages.push({
        subject: qualitySubject(site, q.line_id),
        data: encodeQualityRecord(q, "msgpack"),
        id: `${q.batch_id}:q`,
        batch: q.batch_id,
        kind,
      });
      ndjson += `${formatQualityNdjson(q)}\n`;
    }
  }
  return { messages, ndjson };
}

async function publish(nc: NatsConnection, messages: readonly Message[]): Promise<void> {
  const js = nc.jetstream();
  for (let i = 0; i < messages.length; i += 256) {
    const acks = messages.slice(i, i + 256).map((m) => {
      const h = headers();
      h.set("Nats-Msg-Id", m.id);
      return js.publish(m.subject, m.data, { headers: h });
    });
    await Promise.all(acks);
  }
}

async function until<T>(what: () => string, get: () => Promise<T | null> | T | null, timeoutMs = 40_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await get();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `run --nats --stream` with the built-in quality model; resolves once the quality job consumes. */
async function startRun(
  nats: string,
  clickhouse: string,
  dir: string,
  at = { site: SITE, stream: STREAM, db: "default" },
): Promise<{ child: ChildProcess; stderr: () => string }> {
  let stderr = "";
  const args = ["run", "--nats", nats, "--site", at.site, "--stream", at.stream, "--analysis", "rolling"];
  args.push("--clickhouse", clickhouse, "--clickhouse-db", at.db);
  args.push("--no-serials", "--no-publish-scores", "--quality-model", "builtin", "--checkpoint-interval", "500ms");
  args.push("--alerts", join(dir, "alerts.ndjson"), "--summary-interval", "0");
  const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  try {
    await until(
      () => `the quality job consuming (${stderr})`,
      () => (/"component":"quality".*"msg":"consuming process and quality records"/.test(stderr) ? true : null),
    );
  } catch (e) {
    child.kill("SIGKILL");
    throw e;
  }
  return { child, stderr: () => stderr };
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once("exit", () => r())));
}

function cli(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [CLI, ...args], { cwd, maxBuffer: 1 << 26 }, (error, stdout, stderr) => {
      done({ code: error === null ? 0 : ((error as { code?: number }).code ?? 1), stdout, stderr });
    });
  });
}

describe.skipIf(!haveServers)("quality on JetStream - run --stream, kill -9, restart", () => {
  let nats: NatsServer;
  let ch: ClickHouseServer;
  let nc: NatsConnection;
  const children: ChildProcess[] = [];
  const dir = mkdtempSync(join(tmpdir(), "lw-quality-js-"));
  beforeAll(async () => {
    [nats, ch] = await Promise.all([startNatsServer(), startClickHouseServer()]);
    nc = await connect({ servers: nats.url });
  }, 60_000);
  afterAll(async () => {
    for (const c of children) c.kill("SIGKILL");
    await nc?.close();
    await Promise.all([nats?.dispose(), ch?.dispose()]);
  });

  it("quality - every outcome in ClickHouse exactly once, joined to a final prediction made on all of its batch's readings", async () => {
    const { messages, ndjson } = batchRecords();
    const data = join(dir, "batches.ndjson");
    writeFileSync(data, ndjson);
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: `${STREAM}_QUALITY`, subjects: [`lw.${SITE}.process.>`, `lw.${SITE}.quality.>`] });
    const cut = Math.floor(messages.length / 2);
    const first = messages.slice(0, cut);
    const across = new Set(first.filter((m) => m.kind === "process").map((m) => m.batch));
    for (const m of first) if (m.kind === "quality") across.delete(m.batch);
    expect(across.size, "batches running at the cut").toBeGreaterThan(0);
    await publish(nc, first);

    // Part one; killed once the checkpoint covers all of it.
    const one = await startRun(nats.url, ch.url, dir);
    children.push(one.child);
    const store = await CheckpointStore.open(nc, "linewatch-checkpoints");
    await until(
      () => `a quality checkpoint at sequence ${cut} (${one.stderr()})`,
      async () => ((await store.load(`${SITE}.${STREAM}_QUALITY.quality`))?.position === cut ? true : null),
    );
    one.child.kill("SIGKILL");
    await exited(one.child);

    await publish(nc, messages.slice(cut));
    const two = await startRun(nats.url, ch.url, dir);
    children.push(two.child);
    const query = async (sql: string) => (await (await fetch(`${ch.url}/?query=${encodeURIComponent(sql)}`)).text()).trim();
    await until(
      () => `${BATCHES} outcomes in ml_quality_outcomes (${two.stderr()})`,
      async () => ((await query("SELECT count() FROM ml_quality_outcomes FINAL")) === String(BATCHES) ? true : null),
    );
    two.child.kill("SIGTERM");
    await exited(two.child);
    // Exactly once, even before ClickHouse merges: the replay wrote nothing again.
    expect(await query("SELECT count(), uniqExact(batch_id), countIf(isNull(predicted_yield)) FROM ml_quality_outcomes")).toBe(
      `${BATCHES}\t${BATCHES}\t0`,
    );
    expect(await query("SELECT count() FROM ml_quality_predictions WHERE final = 1")).toBe(String(BATCHES));
    expect(await query("SELECT count() FROM ml_quality_predictions")).toBe(await query("SELECT count() FROM ml_quality_predictions FINAL"));

    const replayed = /stream LWQ_QUALITY: (\d+) records replayed at start \(checkpoint at sequence (\d+)\)/.exec(two.stderr());
    expect(replayed, two.stderr()).not.toBeNull();
    expect(Number(replayed?.[1])).toBeGreaterThan(0);
    printFigures(
      `quality on JetStream: ${messages.length} records, kill -9 at stream sequence ${cut} with ${across.size} batches running; ` +
        `${replayed?.[1]} records replayed at restart`,
    );
    expect(Number(replayed?.[2])).toBe(cut);

    // The batches that ran across the kill: final prediction = `quality score` on all their readings.
    const model = /built-in quality model \(([^)]+\.onnx)\)/.exec(two.stderr())?.[1] as string;
    const scored = await cli(["quality", "score", "--model", model, "--data", data, "--progress", "1"], dir);
    expect(scored.code, scored.stderr).toBe(0);
    const expected = new Map(
      scored.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { batch_id: string; predicted_yield: number })
        .map((s) => [s.batch_id, s.predicted_yield]),
    );
    const finals = (await query("SELECT batch_id, predicted_yield FROM ml_quality_predictions FINAL WHERE final = 1 FORMAT TSV"))
      .split("\n")
      .map((l) => l.split("\t"));
    expect(finals.length).toBe(BATCHES);
    for (const [batch, predicted] of finals) {
      expect(Number(predicted), batch).toBeCloseTo(expected.get(batch) as number, 7);
    }
    expect(finals.filter(([b]) => across.has(b)).length).toBe(across.size);
  }, 90_000);

  it("quality - a stream that captures all of the site's subjects is read through the site's filter, other subjects skipped", async () => {
    const at = { site: "qb", stream: "LWB", db: "qb" };
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: at.stream, subjects: [`lw.${at.site}.>`] });
    const { messages } = batchRecords(at.site, 2, 6);
    // Three messages of another subject of the site, among the batches' records.
    const others = [1, 2, 3].map((i) => ({ subject: `lw.${at.site}.note.n${i}`, data: new Uint8Array([i]), id: `note-${i}` }));
    await publish(nc, [...messages.slice(0, 40), ...(others as Message[]), ...messages.slice(40)]);
    const run = await startRun(nats.url, ch.url, dir, at);
    children.push(run.child);
    const query = async (sql: string) => (await (await fetch(`${ch.url}/?query=${encodeURIComponent(sql)}`)).text()).trim();
    await until(
      () => `6 outcomes in qb.ml_quality_outcomes (${run.stderr()})`,
      async () => ((await query("SELECT count() FROM qb.ml_quality_outcomes FINAL").catch(() => "")) === "6" ? true : null),
    );
    expect(await query("SELECT count(), countIf(isNull(predicted_yield)) FROM qb.ml_quality_outcomes")).toBe("6\t0");
    run.child.kill("SIGTERM");
    await exited(run.child);
    const processed = messages.filter((m) => m.kind === "process").length;
    const line = new RegExp(
      `: ${processed} process readings, 6 outcomes, 6 batches scored, .*; stream LWB: 0 records replayed.*, (\\d+) messages of other subjects skipped`,
    ).exec(run.stderr());
    expect(line, run.stderr()).not.toBeNull();
    // The three notes, and whatever else of the site the run published itself (episodes on lw.qb.alert.…).
    expect(Number(line?.[1])).toBeGreaterThanOrEqual(3);
  }, 60_000);
});
