/** The batch simulator's stream as a list: each process reading (copied) and each batch outcome, in order. */
import { BatchSimulator } from "../../connectors/sim/mod.js";
import type { ProcessRecord, QualityRecord } from "../../operators/quality/mod.js";

export type BatchRecord = { kind: "process"; r: ProcessRecord } | { kind: "quality"; r: QualityRecord };

export function batchRecords(seed: number, lines: number, batches: number): BatchRecord[] {
  const sim = new BatchSimulator({ seed, lines, batches });
  const out: BatchRecord[] = [];
  for (let kind = sim.next(); kind !== null; kind = sim.next()) {
    if (kind === "process") out.push({ kind, r: structuredClone(sim.reading) });
    else out.push({ kind, r: sim.outcome as QualityRecord });
  }
  return out;
}
