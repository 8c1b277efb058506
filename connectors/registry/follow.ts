/**
 * A running job's view of the registry: it polls the record and hands each new production model
 * of one kind to `install`, which swaps it in between batches (the iforest analysis's model slots,
 * the prediction service's model). The model in use changes only when `install` succeeds; a model
 * that fails to load or does not fit the job (other features, another window) is reported once and
 * skipped until the production alias moves again, so a bad promotion never stops the job.
 *
 * Polling, not a watch: the directory store has nothing to watch across hosts (an NFS share), and
 * reading the record (a few KiB) every couple of seconds costs nothing next to the stream. A kind
 * whose production alias is cleared (`promote --to candidate`) keeps its current model: a job is
 * never left without one.
 */
import type { ModelEntry, ModelKind } from "./record.js";
import type { ModelRegistry } from "./registry.js";

/** How often a job reads the registry's record by default. */
export const DEFAULT_REGISTRY_POLL_MS = 2_000;

export interface ProductionFollowOptions {
  registry: ModelRegistry;
  kind: ModelKind;
  /** The id of the model the job runs now (null: none yet). */
  currentId: string | null;
  intervalMs: number;
  /** Loads and swaps in the new production model; a rejection keeps the current one. */
  install(entry: ModelEntry, bytes: Uint8Array): Promise<void>;
  /** A read or an install that failed; the same message is reported once until something else happens. */
  onError(error: Error, entry: ModelEntry | null): void;
  /** Every entry, at the start and whenever one is added or changes stage (the ml_models mirror). */
  onEntries?(entries: readonly ModelEntry[]): void;
}

export interface ProductionFollower {
  /** The id of the model in use. */
  readonly currentId: string | null;
  /** Reads the registry now (the timer's next read follows `intervalMs` after it). */
  poll(): Promise<void>;
  /** Stops polling and waits for a read or install in progress. */
  stop(): Promise<void>;
}

export function followProduction(o: ProductionFollowOptions): ProductionFollower {
  let current = o.currentId;
  let refused: string | null = null;
  let reported = "";
  let signature = "";
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> = Promise.resolve();

  const report = (error: Error, entry: ModelEntry | null) => {
    const text = `${entry?.id ?? ""} ${error.message}`;
    if (text !== reported) o.onError(error, entry);
    reported = text;
  };
  /** The production entry and its bytes when they are new to the job; a read that fails is tried again next time. */
  const readNew = async (): Promise<{ entry: ModelEntry; bytes: Uint8Array } | null> => {
    const entries = await o.registry.list();
    const now = entries.map((e) => `${e.id}:${e.stage}:${e.stage_changed_at}`).join(",");
    if (now !== signature) o.onEntries?.(entries);
    signature = now;
    const entry = entries.find((e) => e.kind === o.kind && e.stage === "production") ?? null;
    if (entry === null || entry.id === current || entry.id === refused) return null;
    return { entry, bytes: await o.registry.modelBytes(entry.id) };
  };
  const readOnce = async (): Promise<void> => {
    let next: { entry: ModelEntry; bytes: Uint8Array } | null;
    try {
      next = await readNew();
    } catch (error) {
      report(error as Error, null);
      return;
    }
    if (next === null) return;
    try {
      await o.install(next.entry, next.bytes);
      current = next.entry.id;
      refused = null;
      reported = "";
    } catch (error) {
      // This model does not fit the job: skipped until the alias moves again.
      refused = next.entry.id;
      report(error as Error, next.entry);
    }
  };
  const poll = (): Promise<void> => {
    inFlight = inFlight.then(readOnce);
    return inFlight;
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => void poll().then(schedule), o.intervalMs);
    timer.unref();
  };
  schedule();
  return {
    get currentId() {
      return current;
    },
    poll,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await inFlight;
    },
  };
}
