/**
 * The simulator's records on core NATS, lean: each chunk generated, encoded and handed to the
 * client synchronously (publishSimulation awaits once per record and formats a Nats-Msg-Id core
 * NATS does not use), flushed once per chunk and paced per chunk. On two shared cores the
 * publisher must cost less per record than the engine, or a 10× overload of core NATS cannot
 * be published at all: publishSimulation reached 31,600 rec/s beside the engine, which scored as
 * many.
 */
import { connectNats } from "../../../connectors/nats/mod.js";
import { PlantSimulator, type SimulatorOptions, toWireReading } from "../../../connectors/sim/mod.js";
import { encodeMsgpackRecord } from "../../../connectors/wire/mod.js";

/** Records per chunk: generated and published together, then paced. */
const CHUNK = 1024;

/**
 * Publishes the simulator's records on `lw.<site>.sensor.<machine>.<sensor>` at `rate` rec/s,
 * for at most `forMs` (a publisher slower than `rate` stops there, its phase lasting as stated):
 * records and seconds.
 */
export async function publishCore(
  url: string,
  site: string,
  rate: number,
  sim: Partial<SimulatorOptions>,
  forMs = Number.POSITIVE_INFINITY,
): Promise<{ readings: number; seconds: number }> {
  const simulator = new PlantSimulator(sim);
  const keys = simulator.keys();
  const subjects = keys.map((k) => `lw.${site}.sensor.${k.machine_id}.${k.sensor_type}`);
  const nc = await connectNats({ servers: url, name: "linewatch-chaos-core" });
  const t0 = performance.now();
  let readings = 0;
  try {
    while (!simulator.done && performance.now() - t0 < forMs) {
      const c = simulator.nextColumns(CHUNK);
      for (let i = 0; i < c.length; i++) {
        nc.publish(subjects[c.keyIndex[i]], encodeMsgpackRecord(toWireReading(keys, c, i)));
      }
      readings += c.length;
      await nc.flush();
      const due = (readings / rate) * 1000 - (performance.now() - t0);
      if (due > 0) await new Promise((r) => setTimeout(r, due));
    }
    return { readings, seconds: (performance.now() - t0) / 1000 };
  } finally {
    await nc.close();
  }
}
