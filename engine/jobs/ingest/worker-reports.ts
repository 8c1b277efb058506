/**
 * What an ingest worker tells the main thread besides frames and rows, and the per-record score
 * lines it publishes itself — everything `linewatch run --nats` serves that is not a column:
 *
 * - keys seen for the first time (the machines the API's health and the ml_equipment_health rows
 *   know), once per key;
 * - each key's SPC limits when their version changes (what GET /api/spc/limits/{key} serves), once
 *   per change — not per record: within one version cl, sigma, ucl and lcl do not move;
 * - dead-lettered messages by reason, when their count moved (the metrics);
 * - the opt-in score lines, one JSON or MessagePack message per record on
 *   `lw.<site>.score.<machine>.<sensor>`, written on this thread with the worker's connection.
 *
 * And the limits changes the API asks for: queued here, applied by the worker between two pushes
 * (after the records it already has, before those it receives later), answered with whether the
 * key was found.
 */
import type { NatsConnection } from "nats";
import type { Logger, OutputChunk, StreamEngine } from "../../core/mod.js";
import type { RecordAnalysis } from "../../../operators/mod.js";
import { applySpcLimitsChange, SPC_COL, SPC_OUT_FIELDS, type SpcLimitsChange } from "../../../operators/spc/mod.js";
import { NatsScorePublisher, type ScoreKey } from "../score-writers.js";
import type { IngestEvent, KeyLimits } from "./protocol.js";

export class WorkerReports {
  /** The score-line writer, once opened; null when the run publishes none. */
  lines: NatsScorePublisher | null = null;
  private readonly scoreKeys: ScoreKey[] = [];
  private readonly keyNames: string[] = [];
  private newKeys: Array<{ key: string; machine: string }> = [];
  /** Last limits version reported per key id (NaN: none yet). */
  private readonly versions: Float64Array;
  private changed: KeyLimits[] = [];
  private deadLettered = 0;
  private readonly spcIndex: number;
  private readonly queue: Array<{ id: number; key: string; change: SpcLimitsChange }> = [];

  constructor(
    private readonly format: "json" | "msgpack" | null,
    analyses: readonly RecordAnalysis[],
    keysMax: number,
  ) {
    this.versions = new Float64Array(keysMax).fill(Number.NaN);
    this.spcIndex = analyses.findIndex((a) => a.name === "spc");
  }

  /** Opens the score-line writer on the worker's connection (when the run publishes lines). */
  open(nc: NatsConnection, site: string, log: Logger): void {
    if (this.format !== null) this.lines = new NatsScorePublisher(nc, site, this.format, log);
  }

  addKey(id: number, name: string, machine: string, sensor: string): void {
    this.keyNames[id] = name;
    this.newKeys.push({ key: name, machine });
    const json = `"machine_id":${JSON.stringify(machine)},"sensor_type":${JSON.stringify(sensor)}`;
    this.scoreKeys[id] = { parts: [machine, sensor], json };
  }

  scoreKey(id: number): ScoreKey {
    return this.scoreKeys[id];
  }

  /** Notes the keys of `chunk` whose SPC limits version moved (one column scan; a report per change). */
  chunk(chunk: OutputChunk): void {
    if (this.spcIndex < 0) return;
    const block = chunk.outs[this.spcIndex];
    const w = SPC_OUT_FIELDS;
    for (let i = 0; i < chunk.length; i++) {
      const version = block[i * w + SPC_COL.limits_version];
      const id = chunk.keyIds[i];
      // As the old path's API: limits are served once a key has a version (> 0).
      if (!(version > 0) || version === this.versions[id]) continue;
      this.versions[id] = version;
      const at = i * w;
      this.changed.push({
        key: this.keyNames[id],
        cl: finite(block[at + SPC_COL.cl]),
        sigma: finite(block[at + SPC_COL.sigma]),
        ucl: finite(block[at + SPC_COL.ucl]),
        lcl: finite(block[at + SPC_COL.lcl]),
        limits_version: version,
      });
    }
  }

  /** Posts what changed since the last call: new keys, limits, dead-letter counts (`byReason` when they moved). */
  take(post: (event: IngestEvent) => void, deadLetters: { deadLettered: number; byReason: Record<string, number> } | null): void {
    if (this.newKeys.length > 0) {
      post({ kind: "keys", keys: this.newKeys });
      this.newKeys = [];
    }
    if (this.changed.length > 0) {
      post({ kind: "limits", limits: this.changed });
      this.changed = [];
    }
    if (deadLetters !== null && deadLetters.deadLettered !== this.deadLettered) {
      this.deadLettered = deadLetters.deadLettered;
      post({ kind: "deadLetters", byReason: deadLetters.byReason });
    }
  }

  /** A limits change from the main thread, applied at the worker's next {@link applyQueued}. */
  enqueue(id: number, key: string, change: SpcLimitsChange): void {
    this.queue.push({ id, key, change });
  }

  get queued(): boolean {
    return this.queue.length > 0;
  }

  /** Applies the queued changes in order (the engine orders each after the records pushed before it); answers each. */
  async applyQueued(engine: StreamEngine, post: (event: IngestEvent) => void): Promise<void> {
    while (this.queue.length > 0) {
      const { id, key, change } = this.queue.shift() as { id: number; key: string; change: SpcLimitsChange };
      const keyId = engine.keys.lookup(key);
      if (keyId < 0 || this.spcIndex < 0) {
        post({ kind: "limitsApplied", id, found: false });
        continue;
      }
      try {
        await engine.withKeyState(keyId, this.spcIndex, (k, ptr) => applySpcLimitsChange(k, ptr, change));
        post({ kind: "limitsApplied", id, found: true });
      } catch (error) {
        post({ kind: "limitsApplied", id, found: false, error: (error as Error).message });
        throw error;
      }
    }
  }
}

function finite(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}
