/**
 * Retraining triggered by drift (`--retrain-on-drift`): on a model_drift episode of high severity
 * (PSI major, or the residual test fired), train a candidate remaining-useful-life model from the
 * run's retained window (retained-units.ts: the machines whose failure the run saw), validate it
 * on a hold-out of those units against the production model, register it as a candidate, and —
 * with `--auto-promote`, only when its hold-out RMSE is not worse than the production model's —
 * promote it, which the run's registry follower then swaps in.
 *
 * Every step is an event (kept for the API, newest last) and a log line (component "retrain"):
 * retrain_started, retrain_skipped (too few failed units, or one already running), candidate_trained,
 * candidate_registered, candidate_promoted or candidate_held, retrain_failed. One retraining at a
 * time, at most one per episode. The training itself (CPU-heavy) is the caller's `train`: the CLI
 * runs it on a worker thread so the stream is not held up.
 */
import type { Logger } from "../core/mod.js";
import type { CmapssUnit } from "../../connectors/files/mod.js";
import type { ModelRegistry } from "../../connectors/registry/mod.js";
import type { AlertEpisodeEvent } from "../../operators/spc/mod.js";
import { MODEL_DRIFT_FAMILY } from "./model-drift.js";
import type { RetainedUnits } from "./retained-units.js";

/** What the trainer gets: the units, the production model to match and to beat, and the split. */
export interface RetrainRequest {
  units: CmapssUnit[];
  productionBytes: Uint8Array;
  holdout: number;
  seed: number;
  epochs: number;
  trainedOn: string;
}

export interface RetrainResult {
  bytes: Uint8Array;
  /** RMSE (cycles, capped RUL, every row) of the candidate and of the production model on the same held-out units. */
  candidateRmse: number;
  productionRmse: number;
  trainUnits: number;
  heldOutUnits: number;
  trainSeconds: number;
}

export type ModelEventKind =
  | "retrain_started"
  | "retrain_skipped"
  | "candidate_trained"
  | "candidate_registered"
  | "candidate_promoted"
  | "candidate_held"
  | "retrain_failed";

export interface ModelEvent {
  type: "model_event";
  event: ModelEventKind;
  kind: "rul";
  /** Wall-clock time (ISO-8601). */
  at: string;
  /** The model_drift episode that triggered it. */
  episode_id: string;
  message: string;
  candidate?: string;
  candidate_rmse?: number;
  production_rmse?: number;
}

export interface RetrainerOptions {
  registry: ModelRegistry;
  history: RetainedUnits;
  train: (request: RetrainRequest) => Promise<RetrainResult>;
  autoPromote: boolean;
  /** Failed units the retained window must hold before a retraining is worth it. */
  minUnits: number;
  epochs: number;
  log?: Logger;
  onEvent?: (event: ModelEvent) => void;
}

export const DEFAULT_RETRAIN = Object.freeze({ minUnits: 20, epochs: 30, holdoutShare: 0.2, seed: 1 });
const EVENTS_KEPT = 100;

/** Where a retraining reads its units: the failed machines' readings, each as a run-to-failure unit. */
export interface UnitsSource {
  /** For the events: "the run's retained window", "ClickHouse ml_sensor_data". */
  name: string;
  units(): Promise<Array<{ machineId: string; unit: CmapssUnit }>>;
}

export class Retrainer {
  private running: Promise<void> | null = null;
  private source: UnitsSource;
  private readonly triggered = new Set<string>();
  private readonly kept: ModelEvent[] = [];
  private readonly log: Logger | undefined;

  constructor(private readonly o: RetrainerOptions) {
    this.log = o.log?.child({ component: "retrain" });
    this.source = { name: "the run's retained window", units: async () => o.history.units() };
  }

  /** Reads the units from `source` from now on (ClickHouse, once the run's sink is open). */
  readUnitsFrom(source: UnitsSource): void {
    this.source = source;
  }

  /** An alert episode event: a model_drift episode reaching high severity starts a retraining (once per episode). */
  readonly onEpisode = (e: AlertEpisodeEvent): void => {
    if (e.family !== MODEL_DRIFT_FAMILY || e.severity !== "high" || e.event === "closed" || this.triggered.has(e.episode_id)) return;
    this.triggered.add(e.episode_id);
    if (this.running !== null) {
      this.emit("retrain_skipped", e.episode_id, "a retraining is already running");
      return;
    }
    this.running = this.retrain(e.episode_id).finally(() => {
      this.running = null;
    });
  };

  /** The events so far, oldest first (at most the last 100). */
  events(): readonly ModelEvent[] {
    return this.kept;
  }

  /** Resolves when no retraining runs. */
  async idle(): Promise<void> {
    await this.running;
  }

  private async retrain(episodeId: string): Promise<void> {
    try {
      const units = await this.source.units();
      if (units.length < this.o.minUnits) {
        this.emit("retrain_skipped", episodeId, `${units.length} failed units in ${this.source.name}, ${this.o.minUnits} needed`);
        return;
      }
      const production = await this.o.registry.production("rul");
      if (production === null) {
        this.emit("retrain_skipped", episodeId, "the registry has no production rul model to compare with");
        return;
      }
      const holdout = Math.max(1, Math.round(units.length * DEFAULT_RETRAIN.holdoutShare));
      this.emit(
        "retrain_started",
        episodeId,
        `training on ${units.length - holdout} of ${units.length} failed units from ${this.source.name}, ${holdout} held out`,
      );
      const result = await this.o.train({
        units: units.map((u) => u.unit),
        productionBytes: await this.o.registry.modelBytes(production.id),
        holdout,
        seed: DEFAULT_RETRAIN.seed,
        epochs: this.o.epochs,
        trainedOn: `${this.source.name}: ${units.length} failed machines (${units[0].machineId} … ${units[units.length - 1].machineId}), retrained on model_drift episode ${episodeId}`,
      });
      const figures = { candidate_rmse: result.candidateRmse, production_rmse: result.productionRmse };
      this.emit(
        "candidate_trained",
        episodeId,
        `hold-out RMSE ${result.candidateRmse.toFixed(2)} cycles (production ${production.short_id}: ${result.productionRmse.toFixed(2)}) on ${result.heldOutUnits} units, ${result.trainSeconds.toFixed(1)} s`,
        figures,
      );
      await this.register(episodeId, result, production.short_id, figures);
    } catch (error) {
      this.emit("retrain_failed", episodeId, (error as Error).message);
    }
  }

  private async register(
    episodeId: string,
    result: RetrainResult,
    productionId: string,
    figures: { candidate_rmse: number; production_rmse: number },
  ): Promise<void> {
    const notes = `retrained on model_drift episode ${episodeId}: hold-out RMSE ${result.candidateRmse.toFixed(2)} vs production ${productionId} ${result.productionRmse.toFixed(2)} on ${result.heldOutUnits} units`;
    const fileName = `rul-retrained-${new Date().toISOString().replace(/[:.]/g, "").slice(0, 15)}.onnx`;
    const { entry } = await this.o.registry.push({ bytes: result.bytes, kind: "rul", fileName, notes });
    const candidate = entry.short_id;
    this.emit("candidate_registered", episodeId, `registered ${candidate} (${fileName}) as a candidate`, { ...figures, candidate });
    if (!this.o.autoPromote) {
      this.emit("candidate_held", episodeId, `${candidate} waits for linewatch models promote ${candidate} --to production`, {
        ...figures,
        candidate,
      });
    } else if (result.candidateRmse > result.productionRmse) {
      this.emit("candidate_held", episodeId, `${candidate} is worse on the hold-out than ${productionId}: not promoted`, {
        ...figures,
        candidate,
      });
    } else {
      await this.o.registry.promote(entry.id, "production");
      this.emit("candidate_promoted", episodeId, `${candidate} promoted to production (replacing ${productionId})`, {
        ...figures,
        candidate,
      });
    }
  }

  private emit(event: ModelEventKind, episodeId: string, message: string, extra: Partial<ModelEvent> = {}): void {
    const e: ModelEvent = {
      type: "model_event",
      event,
      kind: "rul",
      at: new Date().toISOString(),
      episode_id: episodeId,
      message,
      ...extra,
    };
    this.kept.push(e);
    if (this.kept.length > EVENTS_KEPT) this.kept.splice(0, this.kept.length - EVENTS_KEPT);
    const level = event === "retrain_failed" ? "error" : event === "retrain_skipped" || event === "candidate_held" ? "warn" : "info";
    this.log?.[level]({ event, episode_id: episodeId, ...extra }, message);
    this.o.onEvent?.(e);
  }
}
