/**
 * Drift of the isolation forest in `linewatch run --nats --analysis rolling,iforest`
 * (engine/jobs/model-drift.ts observeRow, engine/jobs/iforest-drift.ts), on the main-thread
 * sensor job (`--ingest-workers 0`) and on an ingest worker (`--ingest-workers 1`, the rows sent
 * to the main thread: engine/jobs/ingest/drift-rows.ts), against a throw-away nats-server.
 *
 * The stream: 4 sensors of one machine, i.i.d. readings N(50, 5²), interleaved; the forest reads
 * (value, std) — the reading and its rolling sample std over 16 — and was trained, with its
 * reference histograms, on the same process (another seed). A level shift of +5 (1σ) from
 * reading SHIFT_AT moves `value` and leaves `std` where it was (but for the 15 readings per key
 * whose window straddles the step). So:
 * - unshifted, 100 000 readings raise no model_drift episode;
 * - shifted, one episode opens within one drift window (W = 10 000 readings, the default) of the
 *   shift, on `value` only, and ADWIN on the score joins it as rule `score`;
 * - the API lists the forest (kind "iforest", version its model hash) with its features' PSI;
 * - a model swapped in (the watched file rewritten, or promoted in the registry the run follows)
 *   is listed beside the first, in use, with its own readings.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type NatsServer, serverAvailable, startNatsServer } from "../connectors/local/nats-server.js";
import { type Actor, type ModelEntry, ModelRegistry, ObjectStoreRegistry } from "../connectors/registry/mod.js";
import { encodeFrame } from "../connectors/wire/frame-codec.js";
import { SeededRandom } from "../engine/core/mod.js";
import { modelToJson } from "../operators/iforest/model.js";
import { trainIsolationForest } from "../operators/iforest/training/train.js";
import type { AlertEpisodeEvent } from "../operators/spc/mod.js";
import { type CliProcess, startCli } from "./kit/cli.js";
import { liveApi } from "./kit/live-api.js";
import { waitUntil } from "./kit/wait.js";

const haveNats = serverAvailable("nats-server");
const ACTOR: Actor = { command: "linewatch models (test)", user: "tester", host: "test-host" };
const MACHINE = "M-001";
const SENSORS = ["temperature", "vibration", "pressure", "humidity"];
const WINDOW = 16;
const STEP_MS = 10;
const T0 = Date.UTC(2026, 0, 1);
const W = 10_000;
const N = 100_000;
const SHIFT_AT = 40_000;
const SHIFT = 5;

/** Reading i: sensor i mod 4, time T0 + i·10 ms, N(50, 5²) from the seed, + `shift` from `shiftAt` on. */
function readings(seed: number, n: number, shift: number, shiftAt: number): { times: Float64Array; values: Float64Array } {
  const rng = new SeededRandom(seed);
  const times = new Float64Array(n);
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    times[i] = T0 + i * STEP_MS;
    values[i] = 50 + 5 * rng.normal() + (i >= shiftAt ? shift : 0);
  }
  return { times, values };
}

/** The forest's training rows: (value, sample std of the key's last 16 readings), once a key's window is full. */
function trainingRows(values: Float64Array): { values: Float64Array; rows: number } {
  const k = SENSORS.length;
  const out: number[] = [];
  for (let i = (WINDOW - 1) * k; i < values.length; i++) {
    let s = 0;
    let s2 = 0;
    for (let j = 0; j < WINDOW; j++) s += values[i - j * k];
    const mean = s / WINDOW;
    for (let j = 0; j < WINDOW; j++) s2 += (values[i - j * k] - mean) ** 2;
    out.push(values[i], Math.sqrt(s2 / (WINDOW - 1)));
  }
  return { values: Float64Array.from(out), rows: out.length / 2 };
}

let nats: NatsServer | undefined;
let nc: NatsConnection | undefined;
let dir: string;
let modelFile: string;
let modelHash: string;
let rows: { values: Float64Array; rows: number };
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "lw-iforest-drift-"));
  const train = trainingRows(readings(7, 40_000, 0, Number.POSITIVE_INFINITY).values);
  rows = train;
  const model = trainIsolationForest({ ...train, columns: 2, names: ["value", "std"] }, { trees: 50, sampleSize: 256, seed: 1 });
  expect(model.referenceHistograms?.features.map((f) => f.name)).toEqual(["value", "std"]);
  modelFile = join(dir, "forest.json");
  writeFileSync(modelFile, modelToJson(model));
  modelHash = model.hash;
  if (!haveNats) return;
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
}, 120_000);
afterAll(async () => {
  await nc?.close();
  await nats?.dispose();
});

/** Publishes the readings as frames of 1000 (one machine, four sensor keys). */
async function publish(site: string, r: { times: Float64Array; values: Float64Array }): Promise<void> {
  const c = nc as NatsConnection;
  const keys = SENSORS.map((s) => `${MACHINE}.${s}`);
  const per = 1000;
  for (let from = 0; from < r.times.length; from += per) {
    const to = Math.min(r.times.length, from + per);
    const keyIndex = Array.from({ length: to - from }, (_, j) => (from + j) % SENSORS.length);
    c.publish(
      `lw.${site}.sensor.${MACHINE}`,
      encodeFrame({ keys, keyIndex, times: r.times.subarray(from, to), values: r.values.subarray(from, to) }),
    );
    // Paced (about 200 000 readings/s): a core-NATS reader that falls behind sheds what it cannot hold.
    await c.flush();
    await new Promise((r) => setTimeout(r, 5));
  }
  await c.flush();
}

interface DriftReport {
  kind: string;
  version: string;
  in_use: boolean;
  readings: number;
  skipped: number;
  level: string;
  features: Array<{ name: string; psi: number | null; level: string }>;
  score: { blocks: number; detections: number } | null;
  episode: { rules: string[] } | null;
}

/** `run` on `site` reading the published stream; its model_drift events and the forest's last drift report. */
async function runOn(site: string, workers: number, stream: { times: Float64Array; values: Float64Array }) {
  const alerts = join(dir, `${site}.ndjson`);
  writeFileSync(alerts, "");
  const run: CliProcess = startCli(
    ["run", "--nats", (nats as NatsServer).url, "--site", site, "--ingest-workers", String(workers)].concat(
      ["--analysis", "rolling,iforest", "--window", String(WINDOW), "--model", modelFile, "--no-publish-scores"],
      ["--port", "0", "--alerts", alerts, "--summary-interval", "0", "--no-serials"],
    ),
    dir,
  );
  let report: DriftReport | null = null;
  let listed: DriftReport[] = [];
  try {
    const get = await apiOf(run);
    await publish(site, stream);
    // Every reading the run took is a row of the forest: a reading (finite std) or skipped (a key's
    // first, whose std is not defined). Core NATS may lose a frame: the check is that the rows stop
    // growing after nearly all of them arrived.
    let before = -1;
    const seen = await waitUntil(async () => {
      const r = await get(`/api/ml/models/${modelHash.slice(0, 16)}/drift`);
      report = r.status === 200 ? (r.body as unknown as DriftReport) : null;
      const rows = report === null ? 0 : report.readings + report.skipped;
      const settled = rows === before && rows >= 0.95 * N;
      before = rows;
      await new Promise((r) => setTimeout(r, 500));
      return settled;
    }, 120_000);
    expect(seen, `${JSON.stringify(report)}\n${run.output()}`).toBe(true);
    listed = (await get("/api/ml/models/")).body.results as DriftReport[];
    expect(await run.stop(), run.output()).toBe(0);
  } finally {
    await run.stop();
  }
  const events = readFileSync(alerts, "utf8")
    .split("\n")
    .filter((l) => l.includes('"model_drift"'))
    .map((l) => JSON.parse(l) as AlertEpisodeEvent);
  return { events, report: report as unknown as DriftReport, listed };
}

/** Once `run` consumes: GET on its API, with the token it generated. */
async function apiOf(run: CliProcess) {
  const api = await liveApi(run);
  // "consuming" is printed as the subscriptions are made: a moment for them to reach the server.
  await new Promise((r) => setTimeout(r, 500));
  return (path: string) => api("GET", path);
}

/** The reading index of an event time. */
const readingAt = (ms: number) => Math.round((ms - T0) / STEP_MS);

describe.skipIf(!haveNats)("run --analysis rolling,iforest: drift of the forest's features and score", () => {
  for (const workers of [0, 1]) {
    const path = workers === 0 ? "main-thread sensor job" : "ingest worker";
    it(`${path}: unshifted, no episode over ${N} readings; the API lists the forest`, async () => {
      const { events, report, listed } = await runOn(`ifd-plain-${workers}`, workers, readings(11, N, 0, N));
      expect(events.map((e) => e.description)).toEqual([]);
      expect(report.readings + report.skipped).toBeGreaterThanOrEqual(0.95 * N);
      expect([report.kind, report.version, report.in_use, report.level]).toEqual(["iforest", modelHash, true, "stable"]);
      expect(report.features.map((f) => f.name).sort()).toEqual(["std", "value"]);
      expect(report.score?.detections).toBe(0);
      expect(listed.map((m) => [m.kind, m.version])).toEqual([["iforest", modelHash]]);
    }, 240_000);

    it(`${path}: value +1σ from reading ${SHIFT_AT}: one episode on value (and score) within ${W} readings; std stays stable`, async () => {
      const { events, report } = await runOn(`ifd-shift-${workers}`, workers, readings(12, N, SHIFT, SHIFT_AT));
      const ids = new Set(events.map((e) => e.episode_id));
      expect(ids.size, JSON.stringify(events.map((e) => e.description))).toBe(1);
      const opened = events[0];
      expect(opened.event).toBe("opened");
      expect(opened.fields).toEqual({ machine_id: "model:iforest", sensor_type: modelHash });
      const at = readingAt(opened.opened_at);
      const valueAt = events.find((e) => e.rules.includes("value"));
      const scoreAt = events.find((e) => e.rules.includes("score"));
      // The figures the docs quote.
      console.info(
        `${path}: episode opened ${at - SHIFT_AT} readings after the shift by ${opened.first_rule}; value after ${readingAt(valueAt?.last_fired_at ?? 0) - SHIFT_AT}, score after ${readingAt(scoreAt?.last_fired_at ?? 0) - SHIFT_AT}`,
      );
      expect(at).toBeGreaterThan(SHIFT_AT);
      expect(at).toBeLessThanOrEqual(SHIFT_AT + W);
      const last = events.at(-1) as AlertEpisodeEvent;
      expect([...last.rules].sort()).toEqual(["score", "value"]);
      expect(last.severity).toBe("high");
      expect(report.features.find((f) => f.name === "value")?.level).toBe("major");
      expect(report.features.find((f) => f.name === "std")?.level).toBe("stable");
      expect(report.episode?.rules.sort()).toEqual(["score", "value"]);
    }, 240_000);
  }

  for (const from of ["file", "registry"] as const) {
    it(`ingest worker: a model swapped in (${from === "file" ? "the watched file rewritten" : "a registry promotion"}) is watched on its own, the first kept`, async () => {
      // Small forests (about 25 KB) keep the run short.
      const forest = (seed: number) =>
        trainIsolationForest({ ...rows, columns: 2, names: ["value", "std"] }, { trees: 20, sampleSize: 64, seed });
      const [first, second] = [forest(1), forest(2)];
      const file = join(dir, `swapped-${from}.json`);
      writeFileSync(file, modelToJson(first));
      const registry = from === "registry" ? new ModelRegistry(await ObjectStoreRegistry.open(nc as NatsConnection), ACTOR) : null;
      const bytes = (m: typeof first) => new TextEncoder().encode(modelToJson(m));
      const entries: ModelEntry[] = [];
      // One push at a time: the registry refuses a write that raced another.
      for (const [k, m] of [first, second].entries())
        if (registry !== null)
          entries.push((await registry.push({ bytes: bytes(m), kind: "iforest", fileName: `forest-${k}.json` })).entry);
      if (registry !== null) await registry.promote(entries[0].id, "production");
      const site = `ifd-swap-${from}`;
      const model = registry === null ? ["--model", file] : ["--model", "registry", "--registry-poll", "200ms"];
      const run = startCli(
        ["run", "--nats", (nats as NatsServer).url, "--site", site, "--ingest-workers", "1", "--analysis", "rolling,iforest"].concat(
          ["--window", String(WINDOW), ...model, "--no-publish-scores", "--port", "0", "--log-level", "info"],
          ["--alerts", join(dir, `swap-${from}.ndjson`), "--summary-interval", "0", "--no-serials"],
        ),
        dir,
      );
      try {
        const get = await apiOf(run);
        const stream = readings(13, 40_000, 0, 40_000);
        const part = (a: number, b: number) => ({ times: stream.times.subarray(a, b), values: stream.values.subarray(a, b) });
        await publish(site, part(0, 20_000));
        if (registry === null) writeFileSync(file, modelToJson(second));
        else await registry.promote(entries[1].id, "production");
        expect(
          await waitUntil(() => /model swapped/.test(run.output()), 30_000),
          `${JSON.stringify(await registry?.list())}\n${run.output()}`,
        ).toBe(true);
        await publish(site, part(20_000, 40_000));
        let listed: DriftReport[] = [];
        const both = await waitUntil(async () => {
          listed = (await get("/api/ml/models/")).body.results as DriftReport[];
          return listed.length === 2 && listed[0].readings + listed[0].skipped >= 0.9 * 20_000;
        }, 60_000);
        expect(both, JSON.stringify(listed)).toBe(true);
        expect(listed.map((m) => [m.kind, m.version, m.in_use])).toEqual([
          ["iforest", second.hash, true],
          ["iforest", first.hash, false],
        ]);
        expect(listed[1].readings + listed[1].skipped).toBeGreaterThanOrEqual(0.9 * 20_000);
        expect(await run.stop(), run.output()).toBe(0);
      } finally {
        await run.stop();
        await registry?.close();
      }
    }, 240_000);
  }
});
