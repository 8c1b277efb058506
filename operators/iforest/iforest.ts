/**
 * The isolation forest in the stream: each record's features — the reading itself, its time, or
 * statistics of its key from the rolling analysis that runs before it in the same task — are
 * gathered into a row, and the model scores the row (kernels/features.ts gatherColumn, then
 * kernels/iforest.ts iforestScore). Output: `iforest_score` and the `model_hash` of the model that
 * scored the record.
 *
 * The model sits in the engine's static region, in one of two slots. A new model is written into
 * the idle slot while no task is in flight (StreamEngine.quiesce) and becomes active for the next
 * batch, so a batch is scored entirely by one model, and the swap is logged.
 */
import {
  ConfigError,
  type KernelExports,
  type KernelCallContext,
  type OutputChunk,
  type StreamEngine,
  type StreamKernel,
  type KernelCall,
} from "../../engine/core/mod.js";
import { formatStatistic } from "../number-format.js";
import { statisticValue, type RecordAnalysis } from "../analysis.js";
import { modelBytes, writeModel } from "./layout.js";
import { readModelFile, type IsolationForestModel } from "./model.js";
import { unwatchFile, watchFile, type Stats } from "node:fs";
import { ROLLING_FIELDS, ROLLING_OUT_FIELDS } from "../rolling/mod.js";

/** Room for one model in the static region (two slots are reserved); a larger model is refused. */
export const DEFAULT_MODEL_BYTES_MAX = 8 * 1024 * 1024;

export interface IforestAnalysisOptions {
  model: IsolationForestModel;
  /**
   * The model's features in its order, each "value" (the reading), "time" (event time) or a
   * rolling statistic ("mean", "std", "std_pop", "min", "max", "slope", "ewma", "z", "count").
   */
  features: readonly string[];
  /** Index of the rolling analysis among the run's analyses, when a feature is a rolling statistic. */
  rollingIndex?: number;
  modelBytesMax?: number;
  /** Told of every model swap (for the log). */
  onSwap?: (from: string, to: string) => void;
  /** A model file to watch while running: each new version is swapped in (polled every second). */
  watchPath?: string;
  /**
   * Instead of a file: a source of new models to follow while running (the model registry's
   * production alias, engine/jobs/model-follow.ts); each one it hands to `swap` is swapped in
   * between batches. Called at start; returns the stop.
   */
  follow?: (swap: (model: IsolationForestModel) => Promise<void>) => () => void;
  /** Told when a new model file cannot be used (the old model stays). */
  onSwapError?: (error: Error) => void;
}

type Source = { kind: "value" } | { kind: "time" } | { kind: "rolling"; column: number };

/** What a row's generation says of the model that scored it (drift reads its reference). */
export type IforestModelInfo = Pick<IsolationForestModel, "hash" | "featureNames" | "referenceHistograms">;

export interface IforestAnalysis extends RecordAnalysis {
  /** Hash of the model scoring the next batch. */
  readonly activeHash: string;
  /** Hash of the model of each generation (the output column iforest_model_generation indexes it), oldest first. */
  readonly modelVersions: readonly string[];
  /** F, the features gathered into each output row (row: F features, the score, the model generation). */
  readonly featureCount: number;
  /** The model of a row's generation (row[F + 1]); 0 is the first model, each swap adds one. */
  modelAt(generation: number): IforestModelInfo;
  /** Swaps the model atomically per batch (waits for in-flight tasks). Same features required. */
  swapModel(engine: StreamEngine, model: IsolationForestModel): Promise<void>;
}

export function iforestAnalysis(options: IforestAnalysisOptions): IforestAnalysis {
  const F = options.features.length;
  const model0 = options.model;
  if (F !== model0.nFeatures) {
    throw new ConfigError("--features", `the model has ${model0.nFeatures} features (${model0.featureNames.join(", ")}); ${F} given`);
  }
  const slots = new ModelSlots(Math.ceil((options.modelBytesMax ?? DEFAULT_MODEL_BYTES_MAX) / 64) * 64, model0);
  // Output row: F gathered features, the score, the generation of the model that scored it.
  const kernel = iforestKernel(featureSources(options), slots, F + 2, options.rollingIndex);
  let stopWatching = () => {};

  return {
    name: "iforest",
    kernel,
    outColumns: [...options.features.map((f) => `iforest_${f}`), "iforest_score", "iforest_model_generation"],
    nullJson: '"iforest_score":null,"model_hash":null',
    get activeHash() {
      return slots.activeHash;
    },
    modelVersions: slots.hashes, // the slots' own list: a swap appends to it, so it stays current
    featureCount: F,
    modelAt: (generation: number) => slots.models[generation],
    observe(row: Float64Array): void {
      // A record whose features are not all defined yet (a window still filling) gets no score.
      for (let k = 0; k < F; k++) {
        if (!Number.isFinite(row[k])) {
          row[F] = Number.NaN;
          break;
        }
      }
      // Every earlier batch's rows have been seen when a swap runs, so this is the scoring model.
      row[F + 1] = slots.generation;
    },
    observeChunk(chunk: OutputChunk, k: number): void {
      settleRows(chunk.outs[k], F, slots.generation);
    },
    rowJson(row: Float64Array): string {
      const score = row[F];
      if (!Number.isFinite(score)) return '"iforest_score":null,"model_hash":null';
      return `"iforest_score":${formatStatistic(score)},"model_hash":"${slots.hashes[row[F + 1]]}"`;
    },
    rowFields(row: Float64Array, into: Record<string, unknown>): void {
      into.iforest_score = Number.isFinite(row[F]) ? statisticValue(row[F]) : null;
      into.model_hash = scoringModel(slots, row, F);
    },
    modelVersion: (row: Float64Array): string | null => scoringModel(slots, row, F),
    start(engine: StreamEngine): void {
      if (options.follow !== undefined) stopWatching = options.follow((m) => this.swapModel(engine, m));
      else if (options.watchPath !== undefined)
        stopWatching = watchModelFile(options.watchPath, slots, (m) => this.swapModel(engine, m), options.onSwapError);
    },
    stop(): void {
      stopWatching();
    },
    async swapModel(engine: StreamEngine, model: IsolationForestModel): Promise<void> {
      if (model.nFeatures !== F || model.featureNames.join(",") !== model0.featureNames.join(",")) {
        throw new ConfigError(
          "model",
          `a swapped model must have the features ${model0.featureNames.join(", ")}; it has ${model.featureNames.join(", ")}`,
        );
      }
      slots.checkSize(model);
      await engine.quiesce(() => {
        const from = slots.activeHash;
        slots.install(model);
        options.onSwap?.(from, model.hash);
      });
    },
  };
}

/**
 * The two model slots in the engine's static region and the feature-index block after them; the
 * model of every generation by hash, so a row names the model that scored it.
 */
class ModelSlots {
  readonly hashes: string[];
  /** Per generation: the model's hash, features and reference (not its trees: the slots hold those). */
  readonly models: IforestModelInfo[];
  generation = 0;
  /** Slot of the active model. */
  private active = 0;
  private memory: WebAssembly.Memory | null = null;
  private staticPtr = 0;

  constructor(
    readonly slotBytes: number,
    private readonly first: IsolationForestModel,
  ) {
    this.checkSize(first);
    this.hashes = [first.hash];
    this.models = [modelInfo(first)];
  }

  get activeHash(): string {
    return this.hashes[this.generation];
  }

  get activePtr(): number {
    return this.slotPtr(this.active);
  }

  get featureIdxPtr(): number {
    return this.staticPtr + 2 * this.slotBytes;
  }

  checkSize(m: IsolationForestModel): void {
    const bytes = modelBytes(m);
    if (bytes > this.slotBytes) {
      throw new ConfigError("modelBytesMax", `model ${m.hash.slice(0, 12)} needs ${bytes} bytes, the slot holds ${this.slotBytes}`);
    }
  }

  attach(memory: WebAssembly.Memory, staticPtr: number, features: number): void {
    this.memory = memory;
    this.staticPtr = staticPtr;
    writeModel(memory.buffer, this.slotPtr(0), this.first);
    const idx = new Int32Array(memory.buffer, this.featureIdxPtr, features);
    for (let k = 0; k < features; k++) idx[k] = k;
  }

  /** Writes `model` into the idle slot and makes it active: only while no task is in flight. */
  install(model: IsolationForestModel): void {
    if (this.memory === null) throw new ConfigError("model", "the engine has not attached the iforest analysis yet");
    const idle = 1 - this.active;
    writeModel(this.memory.buffer, this.slotPtr(idle), model);
    this.hashes.push(model.hash);
    this.models.push(modelInfo(model));
    this.generation = this.hashes.length - 1;
    this.active = idle;
  }

  private slotPtr(slot: number): number {
    return this.staticPtr + slot * this.slotBytes;
  }
}

function modelInfo(m: IsolationForestModel): IforestModelInfo {
  return { hash: m.hash, featureNames: m.featureNames, referenceHistograms: m.referenceHistograms };
}

/** Where each model feature comes from: the reading, its time, or a rolling statistic's column. */
function featureSources(options: IforestAnalysisOptions): Source[] {
  return options.features.map((f) => {
    if (f === "value") return { kind: "value" };
    if (f === "time") return { kind: "time" };
    const column = (ROLLING_FIELDS as readonly string[]).indexOf(f);
    if (column < 0)
      throw new ConfigError("--features", `unknown feature "${f}" (value, time, or a rolling statistic: ${ROLLING_FIELDS.join(", ")})`);
    if (options.rollingIndex === undefined)
      throw new ConfigError("--features", `feature "${f}" is a rolling statistic: run the rolling analysis before iforest`);
    return { kind: "rolling", column };
  });
}

/** Gathers each feature into the row (gatherColumn), then scores the rows with the active model. */
function iforestKernel(sources: readonly Source[], slots: ModelSlots, rowFields: number, rollingIndex: number | undefined): StreamKernel {
  const F = sources.length;
  return {
    name: "iforest",
    stateBytesPerKey: 0,
    outFields: rowFields,
    processFn: "iforestScore",
    extraArgs: [],
    staticBytes: 2 * slots.slotBytes + Math.ceil((F * 4) / 64) * 64,
    attach(mem: WebAssembly.Memory, _kernels: KernelExports, ptr: number): void {
      slots.attach(mem, ptr, F);
    },
    calls(ctx: KernelCallContext): KernelCall[] {
      const calls: KernelCall[] = sources.map((s, j) => {
        const [src, stride, col] =
          s.kind === "value"
            ? [ctx.values, 1, 0]
            : s.kind === "time"
              ? [ctx.times, 1, 0]
              : [ctx.outs[rollingIndex as number], ROLLING_OUT_FIELDS, s.column];
        return { fn: "gatherColumn", args: [ctx.out, rowFields, j, src, stride, col, ctx.n] };
      });
      calls.push({
        fn: "iforestScore",
        args: [slots.activePtr, ctx.out, rowFields, slots.featureIdxPtr, ctx.n, ctx.out + F * 8, rowFields],
      });
      return calls;
    },
    initKey(): void {},
  };
}

/** Polls `path` every second; a changed file with a new model is handed to `swap`. Returns the stop. */
function watchModelFile(
  path: string,
  slots: ModelSlots,
  swap: (model: IsolationForestModel) => Promise<void>,
  onError: ((error: Error) => void) | undefined,
): () => void {
  let busy = false;
  const onChange = (cur: Stats, prev: Stats) => {
    if (cur.mtimeMs === prev.mtimeMs || busy) return;
    busy = true;
    readModelFile(path)
      .then((m) => (m.hash === slots.activeHash ? undefined : swap(m)))
      .catch((e: Error) => onError?.(e))
      .finally(() => {
        busy = false;
      });
  };
  watchFile(path, { interval: 1000 }, onChange);
  return () => unwatchFile(path, onChange);
}

/** `observe` on every row of a chunk in place (F features, the score, the generation: F + 2 f64 a row). */
function settleRows(rows: Float64Array, F: number, generation: number): void {
  for (let at = 0; at < rows.length; at += F + 2) {
    for (let j = 0; j < F; j++) {
      if (!Number.isFinite(rows[at + j])) {
        rows[at + F] = Number.NaN;
        break;
      }
    }
    rows[at + F + 1] = generation;
  }
}

/** The hash of the model that scored an output row (F features, then the score and the generation), null when none did. */
function scoringModel(slots: ModelSlots, row: Float64Array, F: number): string | null {
  return Number.isFinite(row[F]) ? slots.hashes[row[F + 1]] : null;
}
