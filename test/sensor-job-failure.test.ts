/**
 * A kernel failure is the sensor job's failure, whatever the source: the job rejects with the
 * KernelTaskError — it never returns normally with fewer records out than in — and a JetStream
 * source acknowledges nothing the kernels did not process. The failing analysis is the rolling
 * one with its entry point renamed to one the kernel module does not export, which fails the
 * first task of every run the same way.
 */
import { PassThrough } from "node:stream";
import { connect } from "nats";
import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_NATS_PUBLISH, publishSimulation } from "../connectors/sim/nats-publisher.js";
import { PlantSimulator } from "../connectors/sim/plant-simulator.js";
import { serverAvailable, startNatsServer } from "../connectors/local/nats-server.js";
import { type KernelExports, KernelTaskError } from "../engine/core/mod.js";
import { DEFAULT_NATS_JOB, runNatsJob } from "../engine/jobs/nats-job.js";
import { runJob } from "../engine/jobs/run-job.js";
import type { RecordAnalysis } from "../operators/analysis.js";
import { rollingAnalysis } from "../operators/rolling/rolling.js";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function failingAnalysis(): RecordAnalysis {
  const rolling = rollingAnalysis({ window: { kind: "count", records: 8 }, alpha: 0.2, timeScale: 1000 });
  return { ...rolling, kernel: { ...rolling.kernel, processFn: "noSuchEntryPoint" as keyof KernelExports } };
}

const never = new Promise<void>(() => {});

describe("sensor job - a kernel failure fails the job", () => {
  it("simulator source: the job rejects with the kernel's error", async () => {
    const job = runJob({
      simulator: { seed: 1, machines: 1, rateHz: 10, maxRecords: 5000 },
      analyses: [failingAnalysis()],
      keyByMode: false,
      workers: 1,
      groups: 2,
      batchRecordsMax: 256,
      speed: Infinity,
      outPath: null,
      fileBytesMax: 1 << 30,
      zAlarm: 4,
      flushIntervalMs: 250,
      summaryIntervalMs: 0,
      console: new PassThrough(),
      stop: never,
    });
    await expect(job).rejects.toBeInstanceOf(KernelTaskError);
  });

  describe.skipIf(!serverAvailable("nats-server"))("NATS sources", () => {
    const natsJob = (url: string, site: string, stream: string | undefined, ready: () => void) =>
      runNatsJob({
        ...DEFAULT_NATS_JOB,
        url,
        site,
        stream,
        analyses: [failingAnalysis()],
        workers: 1,
        groups: 2,
        keysMax: 64,
        publishScores: true,
        summaryIntervalMs: 0,
        console: new PassThrough(),
        stop: never,
        onReady: ready,
      });
    const publish = (url: string, site: string, jetstream: boolean) =>
      publishSimulation(new PlantSimulator({ seed: 2, machines: 1, sensorTypes: ["pressure"], rateHz: 10, maxRecords: 200 }), {
        ...DEFAULT_NATS_PUBLISH,
        url,
        site,
        format: "msgpack",
        frameReadings: 1,
        jetstream,
      });

    it("core NATS: the job rejects with the kernel's error", async () => {
      const nats = await startNatsServer();
      cleanups.push(() => nats.dispose());
      let ready!: () => void;
      const isReady = new Promise<void>((resolve) => (ready = resolve));
      const job = natsJob(nats.url, "kf", undefined, () => ready());
      job.catch(() => undefined);
      await isReady;
      await publish(nats.url, "kf", false);
      await expect(job).rejects.toBeInstanceOf(KernelTaskError);
    });

    it("JetStream: the job rejects with the kernel's error and acknowledges nothing", async () => {
      const nats = await startNatsServer();
      cleanups.push(() => nats.dispose());
      let ready!: () => void;
      const isReady = new Promise<void>((resolve) => (ready = resolve));
      const job = natsJob(nats.url, "kj", "KF", () => ready());
      job.catch(() => undefined);
      await isReady;
      await publish(nats.url, "kj", true);
      await expect(job).rejects.toBeInstanceOf(KernelTaskError);
      const nc = await connect({ servers: nats.url });
      cleanups.push(() => nc.close());
      const info = await (await nc.jetstreamManager()).consumers.info("KF", "lw-kj-all");
      expect(info.ack_floor.stream_seq).toBe(0);
    });
  });
});
