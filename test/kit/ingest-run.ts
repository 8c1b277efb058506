/** One simulated plant run and what one in-process engine makes of it: the reference the ingest job's outputs are held to. */
import type { AnalysisSpec } from "../../engine/jobs/mod.js";
import { buildAnalyses } from "../../engine/jobs/mod.js";
import { StreamEngine, allocateBatch, type OutputChunk } from "../../engine/core/mod.js";
import { observeRecord, type RowContext } from "../../operators/mod.js";
import { DEFAULT_SPC_PARAMS } from "../../operators/spc/mod.js";
import { PlantSimulator, type SimulatorOptions } from "../../connectors/sim/plant-simulator.js";

export const SIM: Partial<SimulatorOptions> = {
  seed: 11,
  machines: 6,
  sensorTypes: ["pressure", "vibration", "temperature"],
  rateHz: 10,
  maxRecords: 18_000,
  faultRate: 2,
};
export const SPECS: AnalysisSpec[] = [
  { name: "rolling", options: { window: { kind: "count", records: 16 }, alpha: 0.2, timeScale: 1000 } },
  {
    name: "spc",
    options: { params: { ...DEFAULT_SPC_PARAMS, baselineN: 50 }, ewmaField: "spc_ewma", keyParts: ["machine_id", "sensor_type"] },
  },
];

/** Per key (`machine.sensor`), each row as [time, value, ...named columns], in order: from one in-process engine over the simulator's records. */
export async function expectedRows(): Promise<{ rows: Map<string, number[][]>; names: string[]; alerts: number }> {
  const sim = new PlantSimulator(SIM);
  const keys = sim.keys();
  let alerts = 0;
  const analyses = buildAnalyses(SPECS, () => alerts++);
  const names = analyses.flatMap((a) => a.outColumns ?? []);
  const rows = new Map<string, number[][]>();
  const keyNames: string[] = [];
  const ctx: RowContext = { keyId: 0, key: "", position: 0, time: 0, value: 0 };
  const scratch = analyses.map(() => new Float64Array(0));
  const engine = new StreamEngine(
    {
      kernels: analyses.map((a) => a.kernel),
      workers: 0,
      groups: 4,
      keysMax: 64,
      batchRecordsMax: 512,
      lateness: null,
      reorderRecordsPerKeyMax: 1,
    },
    {
      onOutput: (chunk: OutputChunk) => {
        for (let i = 0; i < chunk.length; i++) {
          const name = keyNames[chunk.keyIds[i]];
          observeRecord(analyses, chunk, i, name, ctx, scratch, false);
          const row = [chunk.times[i], chunk.values[i]];
          analyses.forEach((_a, k) => row.push(...chunk.outs[k].subarray(i * chunk.outFields[k], (i + 1) * chunk.outFields[k])));
          const frameKey = name.replace("/", ".");
          if (!rows.has(frameKey)) rows.set(frameKey, []);
          rows.get(frameKey)?.push(row);
        }
      },
    },
  );
  const batch = allocateBatch(8192);
  while (!sim.done) {
    const c = sim.nextColumns(8192);
    batch.length = 0;
    for (let i = 0; i < c.length; i++) {
      const k = keys[c.keyIndex[i]];
      const name = `${k.machine_id}/${k.sensor_type}`;
      const id = engine.internKey(name);
      keyNames[id] = name;
      batch.keyIds[i] = id;
      batch.times[i] = c.times[i];
      batch.values[i] = c.values[i];
      batch.positions[i] = i;
      batch.length++;
    }
    await engine.push(batch);
  }
  await engine.close();
  return { rows, names, alerts };
}
