/**
 * The isolation forest's rows to the drift watch (model-drift.ts): each output row of the iforest
 * analysis (F gathered features, the score, the generation of the model that scored it —
 * operators/iforest/iforest.ts) goes to the watch of that model, named by its hash. A swapped
 * model (file watch or registry follow) is a new generation, and a new model to the watch.
 *
 * One feed per row source: the main-thread sensor job's analysis (its generations resolved
 * through the analysis), or one ingest worker (its generations resolved by the models its
 * messages carry; a restarted worker numbers them anew).
 */
import type { IforestModelInfo } from "../../operators/iforest/mod.js";
import type { DriftRows } from "./ingest/mod.js";
import type { ModelDriftWatch, WatchedModel } from "./model-drift.js";

export const IFOREST_MODEL_KIND = "iforest";

export class IforestDriftFeed {
  /** The model hash of each generation seen. */
  private readonly versions: string[] = [];
  private lastGeneration = -1;
  private lastVersion = "";

  constructor(
    private readonly drift: ModelDriftWatch,
    /** F, the features at the start of each row. */
    private readonly featureCount: number,
    /** The model of a generation not told yet (the main thread's analysis knows every one); absent: rows of an unknown generation are not observed. */
    private readonly resolve?: (generation: number) => IforestModelInfo | undefined,
  ) {}

  /** The models of generations first, first + 1, …; a first of 0 starts the numbering anew. */
  models(first: number, models: readonly IforestModelInfo[]): void {
    if (first === 0) {
      this.versions.length = 0;
      this.lastGeneration = -1;
    }
    models.forEach((m, i) => {
      this.versions[first + i] = m.hash;
      this.drift.use(watchedIforestModel(m));
    });
  }

  /** One row at row[offset…] (F features, score, generation) and its event time. */
  observe(row: Float64Array, offset: number, atMs: number): void {
    const f = this.featureCount;
    const g = row[offset + f + 1];
    if (g !== this.lastGeneration) {
      if (this.versions[g] === undefined) {
        const m = this.resolve?.(g);
        if (m === undefined) return;
        this.models(g, [m]);
      }
      this.lastGeneration = g;
      this.lastVersion = this.versions[g];
    }
    this.drift.observeRow(this.lastVersion, row, offset, row[offset + f], atMs);
  }

  /** A worker's message of rows. */
  observeRows(d: DriftRows): void {
    if (d.models.length > 0 || d.firstGeneration === 0) this.models(d.firstGeneration, d.models);
    for (let i = 0; i < d.n; i++) this.observe(d.rows, i * d.fields, d.times[i]);
  }
}

/** An iforest model as the drift watch takes it: its version is its hash, ADWIN watches its score. */
export function watchedIforestModel(m: IforestModelInfo): WatchedModel {
  const ref = m.referenceHistograms ?? null;
  return {
    kind: IFOREST_MODEL_KIND,
    version: m.hash,
    featureNames: m.featureNames,
    reference: ref,
    unavailable:
      ref === null
        ? `iforest model ${m.hash.slice(0, 12)} has no reference histograms (trained before they were stored, or with no reference bins): retrain it with linewatch iforest train`
        : null,
    scored: true,
  };
}
