import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "nats";
import { CMAPSS_SENSORS, readCmapss, type CmapssUnit } from "../connectors/files/cmapss.js";
import { CmapssFleet, cmapssMachineId, parseCmapssShifts, parseUnitList, publishCmapssFleet } from "../connectors/sim/cmapss-source.js";
import { decodeMsgpackRecord } from "../connectors/wire/codecs.js";
import { ConfigError } from "../engine/core/errors.js";
import { DEFAULT_NATS_JOB, runNatsJob } from "../engine/jobs/nats-job.js";
import { runJob } from "../engine/jobs/run-job.js";
import { rollingAnalysis } from "../operators/rolling/rolling.js";
import { referenceDataDir } from "../connectors/files/reference-data.js";
import { serverAvailable, startNatsServer, type NatsServer } from "../connectors/local/nats-server.js";

const FILE = join(referenceDataDir(), "cmapss", "train_FD001.txt");
const ALL = readCmapss(FILE);
const T0 = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;

/** Every reading of a fleet, in emission order. */
function drain(fleet: CmapssFleet): Array<{ machine: string; sensor: string; unit: string; time: number; value: number }> {
  const keys = fleet.keys();
  const out = [];
  while (!fleet.done) {
    const c = fleet.nextColumns(997);
    for (let i = 0; i < c.length; i++) {
      const k = keys[c.keyIndex[i]];
      out.push({ machine: k.machine_id, sensor: k.sensor_type, unit: k.sensor_unit, time: c.times[i], value: c.values[i] });
    }
  }
  return out;
}

/** What a machine's readings must be: its file rows in order, s1…s21 within a row, at T0 + cycle · 1 h (+ offset). */
function expectedOf(u: CmapssUnit, offsetCycles = 0): Array<{ sensor: string; time: number; value: number }> {
  const out = [];
  for (let r = 0; r < u.cycles.length; r++) {
    for (let s = 0; s < 21; s++) out.push({ sensor: `s${s + 1}`, time: T0 + (offsetCycles + u.cycles[r]) * HOUR, value: u.sensors[s][r] });
  }
  return out;
}

describe("C-MAPSS fleet - readings per machine", () => {
  it("a shift adds its delta to its sensor from its cycle on, on every unit, and nothing else changes", () => {
    const shifts = parseCmapssShifts("s11:+0.5@100, S7:-2");
    expect(shifts).toEqual([
      { sensor: "s11", delta: 0.5, fromCycle: 100 },
      { sensor: "s7", delta: -2, fromCycle: 1 },
    ]);
    const plain = drain(new CmapssFleet(ALL, { units: [1, 2], cycleMs: HOUR, startTime: T0, order: "fleet" }));
    const shifted = drain(new CmapssFleet(ALL, { units: [1, 2], cycleMs: HOUR, startTime: T0, order: "fleet", shifts }));
    expect(shifted.length).toBe(plain.length);
    shifted.forEach((r, i) => {
      const p = plain[i];
      const cycle = (r.time - T0) / HOUR;
      const delta = r.sensor === "s7" ? -2 : r.sensor === "s11" && cycle >= 100 ? 0.5 : 0;
      expect([r.machine, r.sensor, r.time]).toEqual([p.machine, p.sensor, p.time]);
      expect(r.value).toBe(p.value + delta);
    });
    // The readings of the same units without shifts are the file's.
    expect(drain(new CmapssFleet(ALL, { units: [1], cycleMs: HOUR, startTime: T0, order: "fleet" }))).toEqual(
      plain.filter((r) => r.machine === "ENG-001"),
    );
    for (const bad of ["s22:+1", "s11", "s11:+1@0", "temp:+1@3", "s11:one"]) expect(() => parseCmapssShifts(bad), bad).toThrow(ConfigError);
    // Unit order: the cycle is the replay's clock (unit 1's cycles, then unit 2's), not each unit's own.
    const opts = { units: [1, 2], cycleMs: HOUR, startTime: T0, order: "unit" } as const;
    const unitPlain = drain(new CmapssFleet(ALL, opts));
    const unitShifted = drain(new CmapssFleet(ALL, { ...opts, shifts: parseCmapssShifts("s11:+1@250") }));
    const from = T0 + 250 * HOUR;
    expect(unitShifted.map((r, i) => r.value - unitPlain[i].value)).toEqual(
      unitPlain.map((r) => (r.sensor === "s11" && r.time >= from ? 1 : 0)),
    );
    expect(unitPlain.some((r) => r.machine === "ENG-002" && r.time < from)).toBe(true);
  });

  it("C-MAPSS fleet - the true remaining life of a training unit at each cycle's time, in either order (the prediction accuracy's ground truth)", () => {
    for (const order of ["fleet", "unit"] as const) {
      const fleet = new CmapssFleet(ALL, { units: [2, 3], cycleMs: HOUR, startTime: T0, order });
      const u3 = ALL[2];
      const last = u3.cycles[u3.cycles.length - 1];
      const offset = order === "unit" ? ALL[1].cycles.length : 0;
      const at = (c: number) => T0 + (offset + c) * HOUR;
      expect([
        fleet.trueRulCycles("ENG-003", at(1)),
        fleet.trueRulCycles("ENG-003", at(last)),
        fleet.trueRulCycles("ENG-003", at(last + 1)),
      ]).toEqual([last - 1, 0, null]);
      expect(fleet.trueRulCycles("ENG-001", at(1))).toBeNull();
    }
  });

  it("fleet order: every machine's readings are its file rows in order, all machines interleaved cycle by cycle", () => {
    const units = ALL.filter((u) => u.unit <= 5);
    const fleet = new CmapssFleet(ALL, { units: [1, 2, 3, 4, 5], cycleMs: HOUR, startTime: T0, order: "fleet" });
    const got = drain(fleet);
    expect(got.length).toBe(units.reduce((n, u) => n + u.cycles.length * 21, 0));
    expect(fleet.readingsTotal).toBe(got.length);
    for (const u of units) {
      const mine = got.filter((g) => g.machine === cmapssMachineId(u.unit));
      expect(mine.map(({ sensor, time, value }) => ({ sensor, time, value }))).toEqual(expectedOf(u));
    }
    expect(got.every((g, i) => i === 0 || g.time >= got[i - 1].time)).toBe(true);
    // Interleaved: the first cycle of every unit comes before any unit's second cycle.
    expect(got.slice(0, 5 * 21).map((g) => g.machine)).toEqual(units.flatMap((u) => Array(21).fill(cmapssMachineId(u.unit))));
    expect(got[0]).toMatchObject({ machine: "ENG-001", sensor: "s1", unit: CMAPSS_SENSORS[0].unit, time: T0 + HOUR });
  });

  it("unit order: one unit after another, each starting the cycle after the previous one failed", () => {
    const fleet = new CmapssFleet(ALL, { units: parseUnitList("2-3"), cycleMs: HOUR, startTime: T0, order: "unit" });
    const got = drain(fleet);
    const [u2, u3] = [ALL[1], ALL[2]];
    expect(got.map(({ sensor, time, value }) => ({ sensor, time, value }))).toEqual([
      ...expectedOf(u2),
      ...expectedOf(u3, u2.cycles.length),
    ]);
    expect(new Set(got.slice(0, u2.cycles.length * 21).map((g) => g.machine))).toEqual(new Set(["ENG-002"]));
  });

  it("paces by event time: a cycle is due whole, at its time", () => {
    const fleet = new CmapssFleet(ALL, { units: [1, 2], cycleMs: HOUR, startTime: T0, order: "fleet" });
    expect(fleet.readingsDueBy(0)).toBe(2 * 21);
    expect(fleet.readingsDueBy(HOUR - 1)).toBe(2 * 21);
    expect(fleet.readingsDueBy(HOUR)).toBe(4 * 21);
    expect(fleet.readingsDueBy(1e12)).toBe(fleet.readingsTotal);
  });

  it("picks sensors and units; rejects what the file has not", () => {
    const fleet = new CmapssFleet(ALL, { units: [7], sensors: ["s11", "s2"], cycleMs: 1000, startTime: 0, order: "fleet" });
    expect(fleet.keys().map((k) => k.sensor_type)).toEqual(["s2", "s11"]);
    expect(drain(fleet).length).toBe(ALL[6].cycles.length * 2);
    expect(parseUnitList("1,3, 5-7,3")).toEqual([1, 3, 5, 6, 7]);
    expect(() => parseUnitList("1-x")).toThrow(ConfigError);
    expect(() => new CmapssFleet(ALL, { units: [101], cycleMs: HOUR, startTime: T0, order: "fleet" })).toThrow(ConfigError);
    expect(() => new CmapssFleet(ALL, { sensors: ["s22"], cycleMs: HOUR, startTime: T0, order: "fleet" })).toThrow(ConfigError);
  });
});

describe("C-MAPSS fleet - run job", () => {
  it("scores every reading once, keyed machine/sensor, in the file's order per machine", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lw-cmapss-run-"));
    const outPath = join(dir, "scores.ndjson");
    const fleet = new CmapssFleet(ALL, { units: [1, 2, 3], cycleMs: HOUR, startTime: T0, order: "fleet" });
    const result = await runJob({
      source: fleet,
      analyses: [rollingAnalysis({ window: { kind: "count", records: 30 }, alpha: 0.1, timeScale: 1000 })],
      keyByMode: false,
      workers: 2,
      groups: 4,
      batchRecordsMax: 512,
      speed: Infinity,
      outPath,
      fileBytesMax: 1 << 30,
      zAlarm: 4,
      flushIntervalMs: 250,
      summaryIntervalMs: 0,
      console: new PassThrough(),
      stop: new Promise(() => {}),
    });
    const total = ALL.slice(0, 3).reduce((n, u) => n + u.cycles.length * 21, 0);
    expect(result.metrics.recordsOut).toBe(total);
    expect(result.metrics.keys).toBe(3 * 21);
    const lines = readFileSync(outPath, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { machine_id: string; sensor_type: string; value: number; count: number | null });
    expect(lines.length).toBe(total);
    expect(Object.keys(lines[0]).slice(0, 4)).toEqual(["machine_id", "sensor_type", "timestamp", "value"]);
    for (const u of ALL.slice(0, 3)) {
      for (let s = 0; s < 21; s++) {
        const mine = lines.filter((l) => l.machine_id === cmapssMachineId(u.unit) && l.sensor_type === `s${s + 1}`);
        expect(mine.map((l) => l.value)).toEqual(Array.from(u.sensors[s]));
        expect(mine.at(-1)?.count).toBe(30);
      }
    }
  }, 60_000);
});

describe.skipIf(!serverAvailable("nats-server"))("C-MAPSS fleet - on NATS", () => {
  let nats: NatsServer;
  beforeAll(async () => {
    nats = await startNatsServer();
  }, 30_000);
  afterAll(async () => {
    await nats?.dispose();
  });

  it("publishes single MessagePack records on lw.<site>.sensor.<machine>.<sensor> with the source fields", async () => {
    const nc = await connect({ servers: nats.url });
    const got: Array<{ subject: string; record: ReturnType<typeof decodeMsgpackRecord> }> = [];
    const sub = nc.subscribe("lw.fleet.sensor.>", {
      callback: (_e, m) => got.push({ subject: m.subject, record: decodeMsgpackRecord(m.data) }),
    });
    await nc.flush();
    const fleet = new CmapssFleet(ALL, { units: [4, 5], cycleMs: HOUR, startTime: T0, order: "fleet" });
    const result = await publishCmapssFleet(fleet, {
      url: nats.url,
      site: "fleet",
      format: "msgpack",
      jetstream: false,
      rate: Infinity,
      inFlightMax: 256,
    });
    const total = (ALL[3].cycles.length + ALL[4].cycles.length) * 21;
    expect(result.readings).toBe(total);
    const deadline = Date.now() + 10_000;
    while (got.length < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    sub.unsubscribe();
    await nc.close();
    expect(got.length).toBe(total);
    expect(got[0].subject).toBe("lw.fleet.sensor.ENG-004.s1");
    expect(got[0].record).toEqual({
      machine_id: "ENG-004",
      sensor_type: "s1",
      timestamp: T0 + HOUR,
      sensor_value: ALL[3].sensors[0][0],
      sensor_unit: "°R",
      operating_mode: "running",
    });
    for (const u of [ALL[3], ALL[4]]) {
      const mine = got.filter((g) => g.record.machine_id === cmapssMachineId(u.unit));
      expect(mine.map((g) => [g.subject, g.record.timestamp, g.record.sensor_value])).toEqual(
        expectedOf(u).map((e) => [`lw.fleet.sensor.${cmapssMachineId(u.unit)}.${e.sensor}`, e.time, e.value]),
      );
    }
  }, 30_000);

  it("run --nats consumes them: every reading scored once, keyed machine/sensor", async () => {
    let stop: () => void = () => {};
    const stopped = new Promise<void>((r) => (stop = r));
    const progress = { recordsIn: 0, recordsOut: 0, checkpoints: 0 };
    let ready: () => void = () => {};
    const isReady = new Promise<void>((r) => (ready = r));
    const job = runNatsJob({
      ...DEFAULT_NATS_JOB,
      url: nats.url,
      site: "fleet2",
      workers: 2,
      analyses: [rollingAnalysis({ window: { kind: "count", records: 30 }, alpha: 0.1, timeScale: 1000 })],
      publishScores: false,
      summaryIntervalMs: 0,
      console: new PassThrough(),
      stop: stopped,
      progress,
      onReady: ready,
    });
    await isReady;
    const fleet = new CmapssFleet(ALL, { units: [1, 2], cycleMs: HOUR, startTime: T0, order: "fleet" });
    await publishCmapssFleet(fleet, {
      url: nats.url,
      site: "fleet2",
      format: "msgpack",
      jetstream: false,
      rate: Infinity,
      inFlightMax: 256,
    });
    const total = fleet.readingsTotal;
    const deadline = Date.now() + 20_000;
    while (progress.recordsOut < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    stop();
    const result = await job;
    expect(result.recordsOut).toBe(total);
    expect(result.input.deadLettered).toBe(0);
    expect(result.shed).toBe(0);
  }, 40_000);
});
