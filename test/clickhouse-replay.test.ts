/**
 * Issue 8, point 7: what `linewatch run --nats … --stream … --clickhouse …` leaves in ClickHouse
 * equals what `linewatch replay` computes from the same records — every record once (no loss),
 * one row per key after FINAL (no duplicates), every statistic, SPC zone, rule mask (the
 * moving-range rules' too), limits version and isolation-forest score the same — on a steady load, and across a 30-s stop of
 * ClickHouse in the middle of the load (rows spilled to disk, drained after the restart).
 *
 * As a user runs it: `linewatch simulate` writes the records to an NDJSON file; the test
 * publishes that file's records, one MessagePack record per message in file order, into a
 * JetStream stream on a throw-away nats-server (record i at stream sequence i + 1); the built
 * CLI runs `run --nats --stream --clickhouse` against a throw-away clickhouse-server and
 * `replay` over the file, both with the same analysis flags (rolling, SPC, and an isolation
 * forest trained here on rolling features). Both key by machine/sensor: replay's default key
 * (machine_id,sensor_type) and the NATS job's key from the subject; the table's `seq` is the
 * stream sequence, replay's `row` the file row.
 *
 * Not compared: ml_sensor_data's sensor_unit, operating_mode and work_order_id — the NATS job
 * does not carry them from the message to the table (it writes machine, sensor, time, value, seq).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SensorDataRow } from "../connectors/clickhouse/schema.js";
import type { SensorReadingInput } from "../connectors/wire/codecs.js";
import { runReplay } from "../engine/jobs/replay.js";
import { modelToJson } from "../operators/iforest/model.js";
import { trainIsolationForest } from "../operators/iforest/training/train.js";
import { rollingAnalysis } from "../operators/rolling/rolling.js";
import { logEvents, startCli, runCli, type CliProcess } from "./kit/cli.js";
import { diffSensorRows, parsedByClickHouse, readScoreRows, readSensorRows, rowCounts } from "./kit/clickhouse-rows.js";
import { startClickHouseServer, type ClickHouseServer } from "../connectors/local/clickhouse-server.js";
import { consumedAll, createSensorStream, publishRecords } from "./kit/jetstream-records.js";
import { compareScores, type ReplayLine } from "./kit/replay-compare.js";
import { serverAvailable, startNatsServer, type NatsServer } from "../connectors/local/nats-server.js";
import { waitUntil } from "./kit/wait.js";
import { printFigures } from "./kit/figures.js";

/** 4 machines × 6 sensors × 1,000 readings at 10 Hz, faults often enough that SPC rules fire. */
const RECORDS = 24_000;
const SIMULATE = ["--seed", "11", "--machines", "4", "--rate", "10", "--records", String(RECORDS), "--fault-rate", "60"];
const WINDOW = 32;
const FEATURES = "value,mean,std,z";
const OUTAGE_MS = 30_000;
/** Messages per JetStream fetch: each fetch waits for its rows' inserts, so larger fetches keep the run quick on a loaded machine. */
const FETCH = 4000;
/** The outage run publishes over about this long, so records flow before, during and after the outage. */
const OUTAGE_LOAD_MS = 36_000;
const KEY_COLUMNS = ["machine_id", "sensor_type", "timestamp", "timestamp_ms", "seq"];

const servers = serverAvailable("nats-server") && serverAvailable("clickhouse-server");

describe.skipIf(!servers)(
  "ClickHouse equals replay - run --nats --stream --clickhouse against linewatch replay of the same records",
  () => {
    let nats: NatsServer;
    let ch: ClickHouseServer;
    let nc: NatsConnection;
    let dir: string;
    let records: SensorReadingInput[];
    let replay: ReplayLine[];
    let analysisFlags: string[];

    beforeAll(async () => {
      const t0 = Date.now();
      dir = mkdtempSync(join(tmpdir(), "lw-ch-replay-"));
      [nats, ch] = await Promise.all([startNatsServer(), startClickHouseServer()]);
      nc = await connect({ servers: nats.url });
      const file = join(dir, "plant.ndjson");
      await runCli(["simulate", ...SIMULATE, "--out", file], dir);
      records = readLines<SensorReadingInput>(file);
      expect(records).toHaveLength(RECORDS);
      const model = join(dir, "model.json");
      writeFileSync(model, await trainOnRollingFeatures(file));
      analysisFlags = [
        "--analysis",
        "rolling,spc,iforest",
        "--window",
        String(WINDOW),
        "--alpha",
        "0.2",
        "--baseline",
        "100",
        // run starts from the alerting defaults (docs/spc.md), replay from the textbook chart:
        // the same explicit settings for both, with enough rules on that masks are exercised.
        "--fa-budget",
        "0.01",
        "--track-records",
        "0",
        "--cusum-cap",
        "0",
        "--baseline-ties-max",
        "1",
        "--model",
        model,
        "--features",
        FEATURES,
        "--no-watch-model",
      ];
      const out = join(dir, "replay.ndjson");
      await runCli(["replay", file, ...analysisFlags, "--out", out, "--quiet"], dir);
      replay = readLines<ReplayLine>(out);
      // The records exercise what is compared: limits, zones on both sides, rules, scores.
      expect(replay).toHaveLength(RECORDS);
      expect(replay.filter((l) => l.limits_version === 1).length).toBeGreaterThan(RECORDS / 2);
      expect(replay.some((l) => Array.isArray(l.we) && l.we.length > 0)).toBe(true);
      expect(replay.some((l) => Array.isArray(l.nelson) && (l.nelson as number[]).some((k) => k > 4))).toBe(true);
      expect(new Set(replay.flatMap((l) => (Array.isArray(l.mr) ? (l.mr as string[]) : [])))).toEqual(new Set(["JUMP", "NOISY", "STUCK"]));
      expect(new Set(replay.map((l) => l.zone)).size).toBeGreaterThanOrEqual(8);
      expect(replay.filter((l) => typeof l.iforest_score === "number").length).toBeGreaterThan(RECORDS / 2);
      printFigures(`servers, records, model and replay ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }, 120_000);

    afterAll(async () => {
      await nc?.close();
      await Promise.all([nats?.dispose(), ch?.dispose()]);
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    });

    /** `linewatch run` from stream `LW_<site>` into ClickHouse database `db`, with the replay's analysis flags. */
    const startRun = (site: string, db: string, spillDir: string): CliProcess =>
      startCli(
        [
          "run",
          "--nats",
          nats.url,
          "--stream",
          `LW_${site}`,
          "--site",
          site,
          "--clickhouse",
          ch.url,
          "--clickhouse-db",
          db,
          "--spill-dir",
          spillDir,
          "--summary-interval",
          "0",
          "--fetch",
          String(FETCH),
          "--alerts",
          join(dir, `alerts-${site}.ndjson`),
          ...analysisFlags,
        ],
        dir,
      );

    /** Stops the run once it has acknowledged every record of its stream and its spill is empty; says how often it re-created its consumer. */
    const finish = async (run: CliProcess, site: string, spillDir: string): Promise<string> => {
      const done = await waitUntil(
        async () => spillFiles(spillDir) === 0 && (await consumedAll(nc, `LW_${site}`, `lw-${site}-all`)),
        120_000,
      );
      const code = await run.stop();
      expect(done, `the run did not acknowledge every record with an empty spill:\n${run.output()}`).toBe(true);
      expect(code, run.output()).toBe(0);
      return `consumer re-created after a lost delivery ${run.output().split("never arrived").length - 1} times`;
    };

    /** ml_scores and ml_sensor_data FINAL of `db` against the replay and the records; `seq[i]` is record i's stream sequence. */
    const expectTablesEqualReplay = async (db: string, seq: readonly number[]): Promise<string> => {
      const scores = compareScores(replay, await readScoreRows(ch, db), (row) => seq[row]);
      expect(scores.differences).toEqual([]);
      expect(scores.rows).toBe(RECORDS);
      // The engine's values equal the replay's bit for bit: where the table differs (1 ulp), it holds
      // what ClickHouse's own text parser makes of the number the sink sent.
      expect(
        await parsedByClickHouse(
          ch,
          scores.inexact.map((d) => d.sent),
        ),
      ).toEqual(scores.inexact.map((d) => d.stored));
      const scoreCounts = await rowCounts(ch, db, "ml_scores", KEY_COLUMNS);
      expect({ final: scoreCounts.final, keys: scoreCounts.keys }).toEqual({ final: RECORDS, keys: RECORDS });

      const readings = await readSensorRows(ch, db);
      expect(readings).toHaveLength(RECORDS);
      const inexactValues = records
        .map((r, i) => ({ sent: JSON.stringify(r.sensor_value), stored: readings[i].sensor_value }))
        .filter((d) => Number(d.sent) !== d.stored);
      expect(
        await parsedByClickHouse(
          ch,
          inexactValues.slice(0, 2000).map((d) => d.sent),
        ),
      ).toEqual(inexactValues.slice(0, 2000).map((d) => d.stored));
      expect(
        diffSensorRows(
          records.map((r, i) => readingRow(r, seq[i])),
          readings.map((r) => readingRow(r, r.seq as number)),
        ),
      ).toEqual([]);
      const readingCounts = await rowCounts(ch, db, "ml_sensor_data", KEY_COLUMNS);
      expect({ final: readingCounts.final, keys: readingCounts.keys }).toEqual({ final: RECORDS, keys: RECORDS });

      return (
        `${RECORDS} records; ml_scores ${scoreCounts.rows} rows before FINAL, ${scoreCounts.final} after, ${scoreCounts.keys} keys; ` +
        `ml_sensor_data ${readingCounts.rows} / ${readingCounts.final} / ${readingCounts.keys}, ${RECORDS - inexactValues.length} values bit for bit; ${scores.floats} statistics compared, ` +
        `${scores.floatsExact} bit for bit, the others 1 ulp off as ClickHouse parses their text (largest relative difference ${scores.maxRelative.toExponential(2)})`
      );
    };

    it("steady load - ml_scores and ml_sensor_data FINAL equal the replay row by row", async () => {
      const site = "steady";
      const spillDir = join(dir, "spill-steady");
      await createSensorStream(nc, `LW_${site}`, site);
      const run = startRun(site, site, spillDir);
      const seq = await publishRecords(records, { url: nats.url, site, ratePerSecond: Infinity });
      expect(seq).toEqual(records.map((_, i) => i + 1));
      const deliveries = await finish(run, site, spillDir);
      printFigures(`clickhouse = replay, steady: ${await expectTablesEqualReplay(site, seq)}; ${deliveries}`);
    }, 150_000);

    it("ClickHouse stopped for 30 s during the load - after the restart and the spill's drain, the tables equal the replay", async () => {
      const site = "outage";
      const spillDir = join(dir, "spill-outage");
      await createSensorStream(nc, `LW_${site}`, site);
      const run = startRun(site, site, spillDir);
      const publishing = publishRecords(records, { url: nats.url, site, ratePerSecond: (RECORDS * 1000) / OUTAGE_LOAD_MS });
      // Stop ClickHouse once the run has inserted some rows, while records keep coming.
      const inserting = await waitUntil(
        async () => (await ch.query(`SELECT count() FROM ${site}.ml_scores`).catch(() => "0")).trim() !== "0",
        30_000,
      );
      expect(inserting, run.output()).toBe(true);
      let spilledFiles = 0;
      const awayMs = await ch.outage(OUTAGE_MS, () => {
        spilledFiles = spillFiles(spillDir);
      });
      const seq = await publishing;
      expect(seq).toEqual(records.map((_, i) => i + 1));
      const deliveries = await finish(run, site, spillDir);
      // The rows of the outage went through the disk spill, and the run said so.
      expect(spilledFiles).toBeGreaterThan(0);
      const clickhouse = logEvents(run.output()).filter((e) => e.component === "clickhouse");
      expect(clickhouse.find((e) => e.msg.startsWith("unavailable"))).toMatchObject({ level: "warn", spill_dir: spillDir });
      expect(clickhouse.find((e) => e.msg.startsWith("available again"))).toMatchObject({ level: "info" });
      printFigures(
        `clickhouse = replay, ClickHouse away ${(awayMs / 1000).toFixed(1)} s (${spilledFiles} spill files at the restart): ${await expectTablesEqualReplay(site, seq)}; ${deliveries}`,
      );
    }, 180_000);
  },
);

/** The columns of ml_sensor_data the NATS job writes (see the header), as `diffSensorRows` compares them. */
function readingRow(
  r: Pick<SensorDataRow, "machine_id" | "sensor_type" | "sensor_value"> & { timestamp: number | string },
  seq: number,
): SensorDataRow {
  return {
    machine_id: r.machine_id,
    sensor_type: r.sensor_type,
    timestamp: typeof r.timestamp === "number" ? r.timestamp : Date.parse(r.timestamp),
    sensor_value: r.sensor_value,
    seq,
  };
}

function readLines<T>(path: string): T[] {
  return readFileSync(path, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as T);
}

/** Batches waiting in a spill directory (connectors/clickhouse/spill-queue.ts names them `<seq>.<table>.ndjson`). */
function spillFiles(spillDir: string): number {
  try {
    return readdirSync(spillDir).filter((f) => f.endsWith(".ndjson")).length;
  } catch {
    return 0; // not created yet
  }
}

/**
 * An isolation forest over the stream features the run scores on (value and the key's rolling
 * mean, std and z), trained on a rolling replay of the file: docs/iforest.md's "a model for stream
 * features can be trained on replay output". Returns model.json's text.
 */
async function trainOnRollingFeatures(file: string): Promise<string> {
  let text = "";
  const output = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  await runReplay({
    input: file,
    analyses: [rollingAnalysis({ window: { kind: "count", records: WINDOW }, alpha: 0.2, timeScale: 1000 })],
    timeColumn: "timestamp",
    timeUnit: "ms",
    lateness: null,
    workers: 0,
    keysMax: 1024,
    batchRecordsMax: 1024,
    output,
    progress: null,
  });
  const names = FEATURES.split(",");
  const rows = text
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, number | null>)
    .filter((r) => names.every((f) => typeof r[f] === "number"));
  const values = new Float64Array(rows.length * names.length);
  rows.forEach((r, i) => names.forEach((f, j) => (values[i * names.length + j] = r[f] as number)));
  return modelToJson(
    trainIsolationForest({ values, rows: rows.length, columns: names.length, names }, { trees: 50, sampleSize: 256, seed: 3 }),
  );
}
