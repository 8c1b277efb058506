/**
 * Jobs on the model registry (connectors/registry): a job started with `--model registry` or
 * `--predict registry` runs its kind's production model and follows the alias while it runs — a
 * new production model is swapped in between batches (the iforest analysis) or between model
 * runs (the prediction service), or from each production batch's next prediction (the quality
 * job), and the change is logged old → new. With ClickHouse, the
 * registry's entries are mirrored into ml_models whenever one is added or changes stage.
 */
import { type Logger, RegistryError } from "../core/mod.js";
import type { ModelRow } from "../../connectors/clickhouse/mod.js";
import {
  followProduction,
  type ModelEntry,
  type ModelKind,
  ModelRegistry,
  openRegistryStore,
  type ProductionFollower,
} from "../../connectors/registry/mod.js";
import { type IforestAnalysisOptions, type IsolationForestModel, parseModel } from "../../operators/iforest/mod.js";

/** What a job needs to follow a kind's production model: plain data, so it crosses to ingest workers. */
export interface RegistryFollowSpec {
  /** The registry: a directory or a nats:// server (its object store). */
  where: string;
  /** The entry the job started with. */
  entryId: string;
  pollMs: number;
}

/** A kind's production entry and its bytes, as a job starts with them; RegistryError "no_production" when there is none. */
export async function productionModel(where: string, kind: ModelKind): Promise<{ entry: ModelEntry; bytes: Uint8Array }> {
  const registry = new ModelRegistry(await openRegistryStore(where));
  try {
    const entry = await registry.production(kind);
    if (entry === null)
      throw new RegistryError(
        "no_production",
        `the registry ${registry.store.where} has no production ${kind} model: push one (linewatch models push FILE --kind ${kind}) and promote it (linewatch models promote ID --to production)`,
      );
    return { entry, bytes: await registry.modelBytes(entry.id) };
  } finally {
    await registry.close();
  }
}

/** An iforest model from registry bytes; the source in errors names the entry. */
export function iforestFromRegistry(entry: ModelEntry, bytes: Uint8Array): IsolationForestModel {
  return parseModel(new TextDecoder("utf-8", { fatal: true }).decode(bytes), `registry model ${entry.short_id}`);
}

/**
 * The iforest analysis's `follow` for `spec`: each new production iforest model is parsed and
 * swapped in (a model with other features is refused by the analysis and logged; the current one stays).
 */
export function iforestFollow(spec: RegistryFollowSpec, log?: Logger): NonNullable<IforestAnalysisOptions["follow"]> {
  return (swap) =>
    followRegistry(spec, "iforest", log, async (entry, bytes) => {
      await swap(iforestFromRegistry(entry, bytes));
    });
}

/** When a swapped-in model starts to count, per kind (the swap's log line). */
const SWAP_TAKES_EFFECT: Readonly<Record<ModelKind, string>> = {
  rul: "used from the next batch on",
  iforest: "used from the next batch on",
  quality: "used from each batch's next prediction on, running batches included",
};

/**
 * Follows `kind`'s production alias at `spec.where`: `install` swaps a new model in. Logs each swap
 * and each refusal (component "registry"); `onEntries` gets every entry when one changes (ml_models).
 * Returns the stop (it also closes the registry).
 */
export function followRegistry(
  spec: RegistryFollowSpec,
  kind: ModelKind,
  log: Logger | undefined,
  install: (entry: ModelEntry, bytes: Uint8Array) => Promise<void>,
  onEntries?: (entries: readonly ModelEntry[]) => void,
): () => void {
  const registryLog = log?.child({ component: "registry" });
  let follower: ProductionFollower | null = null;
  let stopped = false;
  const opened = openRegistryStore(spec.where).then((store) => {
    const registry = new ModelRegistry(store);
    follower = followProduction({
      registry,
      kind,
      currentId: spec.entryId,
      intervalMs: spec.pollMs,
      install: async (entry, bytes) => {
        const from = follower?.currentId ?? spec.entryId;
        await install(entry, bytes);
        registryLog?.info(
          { kind, from: from.slice(0, 12), to: entry.short_id, registry: store.where },
          `production ${kind} model swapped; ${SWAP_TAKES_EFFECT[kind]}`,
        );
      },
      onError: (err, entry) =>
        registryLog?.warn(
          { kind, model: entry?.short_id ?? null, registry: store.where, err },
          entry === null
            ? "cannot read the model registry; the current model stays"
            : "new production model not used; the current model stays",
        ),
      onEntries,
    });
    return registry;
  });
  opened.catch((err: unknown) =>
    registryLog?.error({ kind, registry: spec.where, err }, "cannot open the model registry; the current model stays"),
  );
  return () => {
    if (stopped) return;
    stopped = true;
    void opened.then(
      async (registry) => {
        await follower?.stop();
        await registry.close();
      },
      () => undefined,
    );
  };
}

/** An entry as ml_models stores it. */
export function modelRow(e: ModelEntry): ModelRow {
  return {
    id: e.id,
    kind: e.kind,
    stage: e.stage,
    format: e.format,
    file_name: e.file_name,
    size_bytes: e.size_bytes,
    created_at: Date.parse(e.created_at),
    training_data: e.training_data,
    training_fingerprint: e.training_fingerprint,
    features: e.features,
    metrics: e.metrics,
    made_by: e.made_by.command,
    made_by_user: e.made_by.user,
    made_by_host: e.made_by.host,
    notes: e.notes,
    stage_changed_at: Date.parse(e.stage_changed_at),
  };
}
