/**
 * Alert episodes are checkpointed state, on real servers through the built CLI (dist/: `npm run
 * build` first): `linewatch run --nats --stream --clickhouse` over a simulated stream with faults,
 * killed with SIGKILL three times (each time after a checkpoint, with records processed beyond
 * it, so the restart restores open episodes and re-derives what came after) and started again,
 * writes to `ml_alerts` exactly what one uninterrupted run over the same records writes: the same
 * episode ids, rules, opening, last firing and closing times, firings and state — no episode
 * re-opened as a new row, none left `open` that the uninterrupted run closed.
 *
 * Acknowledgements survive too: the killed run's first life acknowledges an open episode and a
 * closed one through the API and is killed as soon as the answers come; the episodes' rows carry
 * them at the end (the open one's answer waits for the checkpoint that holds it, the closed one's
 * for its durable ml_alerts row).
 *
 * Both paths: the ingest workers and the main-thread sensor job (`--ingest-workers 0`).
 *
 * The two runs read the same records on two sites (each its own stream, so the stream sequences —
 * the positions episode ids are made of — are the same) and write to two databases.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CheckpointStore } from "../connectors/nats/checkpoint-store.js";
import { startClickHouseServer, type ClickHouseServer } from "../connectors/local/clickhouse-server.js";
import { serverAvailable, startNatsServer, type NatsServer } from "../connectors/local/nats-server.js";
import { DEFAULT_NATS_PUBLISH, publishSimulation } from "../connectors/sim/nats-publisher.js";
import { PlantSimulator, type SimulatorOptions } from "../connectors/sim/plant-simulator.js";
import { decodeCheckpoint } from "../engine/core/checkpoint.js";
import { checkpointName, DEFAULT_NATS_JOB } from "../engine/jobs/nats-job.js";
import { startCli, TEXTBOOK_SPC_FLAGS, type CliProcess } from "./kit/cli.js";
import { consumedAll, consumerState, createSensorStream } from "./kit/jetstream-records.js";
import { liveApi } from "./kit/live-api.js";
import { waitUntil } from "./kit/wait.js";

const servers = serverAvailable("nats-server") && serverAvailable("clickhouse-server");
const RECORDS = 40_000;
const SIM: Partial<SimulatorOptions> = {
  seed: 23,
  machines: 4,
  sensorTypes: ["pressure", "vibration", "temperature"],
  rateHz: 10,
  faultRate: 20,
  startTime: Date.UTC(2026, 0, 1),
  maxRecords: RECORDS,
};
const KILLS = 3;

describe.skipIf(!servers)("alert episodes - kill -9 and restart of run --nats --stream --clickhouse", () => {
  let nats: NatsServer;
  let ch: ClickHouseServer;
  let nc: NatsConnection;
  let dir: string;
  let run: CliProcess | null = null;
  /** Every run started: a failed test leaves none behind (the next test reassigns `run`). */
  const started: CliProcess[] = [];
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "lw-episodes-kill-"));
    [nats, ch] = await Promise.all([startNatsServer(), startClickHouseServer()]);
    nc = await connect({ servers: nats.url });
  }, 120_000);
  afterAll(async () => {
    for (const r of started) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill("SIGKILL");
    await nc?.close();
    await Promise.all([nats?.dispose(), ch?.dispose()]);
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  function startRun(site: string, stream: string, db: string, extra: readonly string[] = []): CliProcess {
    const r = startCli(
      [
        "run",
        "--nats",
        nats.url,
        "--stream",
        stream,
        "--site",
        site,
        "--analysis",
        "spc",
        "--baseline",
        "50",
        ...TEXTBOOK_SPC_FLAGS,
        "--clickhouse",
        ch.url,
        "--clickhouse-db",
        db,
        "--spill-dir",
        join(dir, `spill-${db}`),
        "--checkpoint-interval",
        "300ms",
        "--fetch",
        "2000",
        "--summary-interval",
        "0",
        "--no-serials",
        "--no-publish-scores",
        "--alerts",
        join(dir, `alerts-${db}.ndjson`),
        ...extra,
      ],
      dir,
    );
    started.push(r);
    return r;
  }

  const publish = (site: string, rate: number) =>
    publishSimulation(new PlantSimulator(SIM), { ...DEFAULT_NATS_PUBLISH, url: nats.url, site, jetstream: true, rate });

  /** Waits until the run has consumed the stream; `before` runs then, before the run stops. */
  async function runToEnd(site: string, stream: string, r: CliProcess, before?: () => Promise<void>): Promise<void> {
    const consumed = await waitUntil(() => consumedAll(nc, stream, `lw-${site}-all`), 120_000);
    expect(consumed, `${await consumerState(nc, stream, `lw-${site}-all`)}\n${r.output()}`).toBe(true);
    await before?.();
    expect(await r.stop(), r.output()).toBe(0);
  }

  /** The episodes as ml_alerts FINAL holds them, one line each, by id (the acknowledgement apart). */
  async function episodes(db: string): Promise<Array<{ id: string; line: string; ackedBy: string }>> {
    const text = await ch.query(
      `SELECT episode_id, key, family, arrayStringConcat(rules, ','), first_rule, severity, state, opened_at_ms, last_fired_at_ms, ` +
        `closed_at_ms, firings, limits_version, points, acknowledged_by FROM ${db}.ml_alerts FINAL ORDER BY episode_id FORMAT TSV`,
    );
    // Not trim(): an empty last cell is a trailing tab.
    return text
      .replace(/\n$/, "")
      .split("\n")
      .map((l) => {
        const cells = l.split("\t");
        return { id: cells[0], line: cells.slice(0, -1).join("\t"), ackedBy: cells[cells.length - 1] };
      });
  }

  /** Once the run serves its API: a call to it with the token it generated. */
  it.each([
    ["ingest workers", "1", "w"],
    ["the main-thread sensor job", "0", "m"],
  ])(
    "%s: three SIGKILLs and restarts leave the episodes of one uninterrupted run, ids and state alike, and acknowledgements (an open and a closed episode) answered before a kill stay",
    async (_path, workers, tag) => {
      const [siteA, siteB, streamA, streamB, whole, killed] = [
        `ep${tag}a`,
        `ep${tag}b`,
        `EP${tag}A`,
        `EP${tag}B`,
        `whole${tag}`,
        `killed${tag}`,
      ];
      const flags = ["--ingest-workers", workers];
      // The uninterrupted run: every record in the stream first, then one run to its end.
      await createSensorStream(nc, streamA, siteA);
      await publish(siteA, Number.POSITIVE_INFINITY);
      run = startRun(siteA, streamA, whole, flags);
      await runToEnd(siteA, streamA, run);
      const want = await episodes(whole);
      const states = want.map((e) => e.line.split("\t")[6]);
      // The stream must exercise what it claims: many episodes of both families, closed and still open.
      expect(want.length).toBeGreaterThan(30);
      expect(states.filter((s) => s === "closed").length).toBeGreaterThan(10);
      expect(states.filter((s) => s === "open").length).toBeGreaterThan(0);
      expect(new Set(want.map((e) => e.line.split("\t")[2]))).toEqual(new Set(["level", "variation"]));
      expect(want.every((e) => e.ackedBy === "")).toBe(true);

      // The killed run: records published as it runs, killed three times after a checkpoint.
      await createSensorStream(nc, streamB, siteB);
      let publishing = true;
      const published = publish(siteB, 4000).finally(() => (publishing = false));
      const store = await CheckpointStore.open(nc, DEFAULT_NATS_JOB.checkpointBucket);
      const jsm = await nc.jetstreamManager();
      const ackFloor = async () => {
        try {
          return (await jsm.consumers.info(streamB, `lw-${siteB}-all`)).ack_floor.stream_seq;
        } catch {
          return 0;
        }
      };
      let episodesAtKills = 0;
      const acked: string[] = [];
      for (let k = 1; k <= KILLS; k++) {
        run = startRun(siteB, streamB, killed, k === 1 ? [...flags, "--port", "0"] : flags);
        const r = run;
        let covered = 0;
        const api = k === 1 ? await liveApi(r) : null;
        const due = await waitUntil(async () => {
          covered = (await store.load(checkpointName(siteB, streamB, null)))?.position ?? 0;
          // Records processed beyond the checkpoint (re-derived after the restart) — unless the stream has run dry.
          return covered >= (k * RECORDS) / (KILLS + 2) && ((await ackFloor()) > covered || !publishing);
        }, 120_000);
        expect(due, r.output()).toBe(true);
        if (api !== null) {
          // The first life acknowledges an open episode and a closed one, and dies as soon as it has answered.
          // The closed one last: only the open one's answer waits for a checkpoint, which would make
          // every row written before it durable too.
          const first = async (path: string) => {
            let found: Array<{ episode_id: string }> = [];
            const listed = async () =>
              (found = ((await api("GET", path)).body.results as typeof found).filter((e) => !acked.includes(e.episode_id)));
            expect(await waitUntil(async () => (await listed()).length > 0, 60_000)).toBe(true);
            return found[0].episode_id;
          };
          acked.push(await first("/api/alerts"));
          acked.push(await first("/api/alerts/episodes?state=recent"));
          for (const id of acked) {
            // (The open one may have closed meanwhile: it is then acknowledged as a closed one.)
            const answer = await api("POST", `/api/alerts/episodes/${id}/ack`, { by: "qa-kill", note: "kill -9 next" });
            expect(answer.status, JSON.stringify(answer.body)).toBe(200);
            expect(answer.body).toMatchObject({
              event: "acknowledged",
              episode_id: id,
              acknowledged_by: "qa-kill",
              ack_note: "kill -9 next",
            });
          }
        }
        r.child.kill("SIGKILL");
        expect(await r.exited).toBeNull();
        // What the restart restores: the checkpoint's episodes beside the kernel state.
        const saved = await store.load(checkpointName(siteB, streamB, null));
        const keys = (decodeCheckpoint((saved as { bytes: Uint8Array }).bytes).analyses?.[0] ?? []) as Array<{ episodes: unknown[] }>;
        episodesAtKills += keys.flatMap((key) => key.episodes.filter((e) => e !== null)).length;
      }
      expect(episodesAtKills).toBeGreaterThan(0);
      await published;
      run = startRun(siteB, streamB, killed, [...flags, "--port", "0"]);
      const api = await liveApi(run);
      let served: string[] = [];
      await runToEnd(siteB, streamB, run, async () => {
        served = ((await api("GET", "/api/alerts")).body.results as Array<{ episode_id: string }>).map((e) => e.episode_id).sort();
      });
      // The API of the last life knows the episodes open at the end, those restored from the checkpoint among them.
      expect(served).toEqual(want.filter((e) => e.line.split("\t")[6] === "open").map((e) => e.id));

      const got = await episodes(killed);
      expect(got.map((e) => e.id)).toEqual(want.map((e) => e.id));
      // The acknowledged episodes carry their acknowledgement; every other one is the uninterrupted run's row.
      expect(got.filter((e) => e.ackedBy !== "").map((e) => [e.id, e.ackedBy])).toEqual([...acked].sort().map((id) => [id, "qa-kill"]));
      const rest = (list: typeof got) => list.filter((e) => !acked.includes(e.id)).map((e) => e.line);
      expect(rest(got)).toEqual(rest(want));
    },
    600_000,
  );
});
