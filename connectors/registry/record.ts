/**
 * The model registry's record: its entries, each kind's production alias, the promotion history
 * that `rollback` walks back, and the log of every change with who and when. One JSON document,
 * kept by a store (a directory or a JetStream object store) beside the model files.
 */
import { RegistryError } from "../../engine/core/mod.js";

export const MODEL_KINDS = ["rul", "iforest", "quality"] as const;
export type ModelKind = (typeof MODEL_KINDS)[number];
export const MODEL_STAGES = ["candidate", "production", "archived"] as const;
export type ModelStage = (typeof MODEL_STAGES)[number];

export const RECORD_FORMAT = "linewatch-model-registry";
export const RECORD_VERSION = 1;
/** The record is a few KiB per hundred models; far more is not ours (checked on read and write). */
export const RECORD_BYTES_MAX = 16 << 20;
/** Changes kept in the log; the oldest fall off first (the count of those dropped is kept). */
export const CHANGES_MAX = 10_000;
/** Earlier production models kept per kind for `rollback`; the oldest fall off first. */
export const PRODUCTION_HISTORY_MAX = 100;
/** Characters of --notes. */
export const NOTES_CHARS_MAX = 4096;

/** Who made a change: the command line and the user and host it ran as. */
export interface Actor {
  command: string;
  user: string;
  host: string;
}

export interface ModelEntry {
  /** SHA-256 hex of the file's bytes: the id and the version. */
  id: string;
  /** The id's first 12 hex digits, as list and show print it. */
  short_id: string;
  kind: ModelKind;
  /** What the registry could read of the file ("opaque" when nothing: quality models have no format yet). */
  format: string;
  file_name: string;
  size_bytes: number;
  /** When it was first pushed (ISO 8601, UTC). */
  created_at: string;
  /** What the model was trained on, as the file says; null when the file does not say. */
  training_data: string | null;
  /** "sha256:<hex>" of the rows it was fitted on, as the file records it; null when it does not. */
  training_fingerprint: string | null;
  /** The input features it reads, in order; null when the file does not say. */
  features: string[] | null;
  /** Validation metrics from the file; null when the file holds none. */
  metrics: Record<string, number> | null;
  /** Other settings read from the file (window, trees, …), for people reading the entry. */
  details: Record<string, unknown>;
  stage: ModelStage;
  /** When it took its stage (its push, a promote, a rollback, or another model's promotion archiving it). */
  stage_changed_at: string;
  made_by: Actor;
  notes: string | null;
}

export type ChangeAction = "push" | "promote" | "rollback";

export interface Change {
  at: string;
  action: ChangeAction;
  id: string;
  kind: ModelKind;
  from_stage: ModelStage | null;
  to_stage: ModelStage;
  /** The production model this change replaced (promote to production, rollback), else null. */
  replaced: string | null;
  by: Actor;
}

export interface RegistryRecord {
  format: typeof RECORD_FORMAT;
  version: typeof RECORD_VERSION;
  entries: Record<string, ModelEntry>;
  /** Each kind's production model id, or null. */
  production: Record<ModelKind, string | null>;
  /** Per kind, the models that were production before, oldest first (rollback takes the last). */
  production_history: Record<ModelKind, string[]>;
  changes: Change[];
  /** Changes dropped from the front of `changes` at {@link CHANGES_MAX}. */
  changes_dropped: number;
}

export function emptyRecord(): RegistryRecord {
  return {
    format: RECORD_FORMAT,
    version: RECORD_VERSION,
    entries: {},
    production: { rul: null, iforest: null, quality: null },
    production_history: { rul: [], iforest: [], quality: [] },
    changes: [],
    changes_dropped: 0,
  };
}

export function isModelKind(text: string): text is ModelKind {
  return (MODEL_KINDS as readonly string[]).includes(text);
}

export function isModelStage(text: string): text is ModelStage {
  return (MODEL_STAGES as readonly string[]).includes(text);
}

/** The record as stored: UTF-8 JSON, refused over {@link RECORD_BYTES_MAX}. */
export function encodeRecord(record: RegistryRecord): Uint8Array {
  const bytes = new TextEncoder().encode(`${JSON.stringify(record, null, 1)}\n`);
  if (bytes.length > RECORD_BYTES_MAX)
    throw new RegistryError("too_large", `the registry record would be ${bytes.length} bytes, over ${RECORD_BYTES_MAX}`);
  return bytes;
}

/** Reads a stored record; checks its size, format and the shape the registry relies on. */
export function decodeRecord(bytes: Uint8Array, where: string): RegistryRecord {
  if (bytes.length > RECORD_BYTES_MAX)
    throw new RegistryError("too_large", `${where}: the registry record is ${bytes.length} bytes, over ${RECORD_BYTES_MAX}`);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (cause) {
    throw new RegistryError("bad_record", `${where}: the registry record is not UTF-8 JSON: ${(cause as Error).message}`, { cause });
  }
  const r = json as Partial<RegistryRecord> | null;
  const bad = (what: string) => new RegistryError("bad_record", `${where}: the registry record ${what}`);
  if (r === null || typeof r !== "object" || r.format !== RECORD_FORMAT) throw bad(`is not a ${RECORD_FORMAT} document`);
  if (r.version !== RECORD_VERSION) throw bad(`has version ${JSON.stringify(r.version)}; this build reads ${RECORD_VERSION}`);
  if (typeof r.entries !== "object" || r.entries === null || !Array.isArray(r.changes)) throw bad("lacks entries or changes");
  for (const kind of MODEL_KINDS) {
    if (!(kind in (r.production ?? {})) || !Array.isArray(r.production_history?.[kind])) throw bad(`lacks the ${kind} alias or history`);
  }
  for (const [id, e] of Object.entries(r.entries)) {
    if (e.id !== id || !isModelKind(e.kind) || !isModelStage(e.stage)) throw bad(`has a damaged entry ${id}`);
    // Entries written before stages were timed took theirs when pushed, as far as anyone can tell.
    e.stage_changed_at ??= e.created_at;
    e.training_fingerprint ??= null;
  }
  return r as RegistryRecord;
}
