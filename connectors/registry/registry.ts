/**
 * The model registry: entries keyed by content hash, stages, each kind's production alias and the
 * history `rollback` walks back. One implementation over any {@link RegistryStore}, so the
 * directory and the JetStream object store behave alike (test/model-registry.test.ts runs the same
 * cases on both).
 */
import { createHash } from "node:crypto";
import { hostname, userInfo } from "node:os";
import { RegistryError } from "../../engine/core/mod.js";
import { MODEL_FILE_BYTES_MAX } from "../../operators/prediction/mod.js";
import { describeModel } from "./describe.js";
import {
  type Actor,
  CHANGES_MAX,
  type Change,
  decodeRecord,
  emptyRecord,
  encodeRecord,
  isModelKind,
  isModelStage,
  MODEL_KINDS,
  MODEL_STAGES,
  type ModelEntry,
  type ModelKind,
  NOTES_CHARS_MAX,
  PRODUCTION_HISTORY_MAX,
  type RegistryRecord,
} from "./record.js";
import type { RegistryStore } from "./store.js";

/** Shortest id prefix `show` and `promote` accept. */
export const ID_PREFIX_MIN = 4;
export const SHORT_ID_LENGTH = 12;

export interface PushRequest {
  bytes: Uint8Array;
  kind: string;
  fileName: string;
  notes?: string;
}

export interface PushResult {
  entry: ModelEntry;
  /** False when the same bytes were already registered: nothing changed. */
  created: boolean;
}

export interface StageChange {
  entry: ModelEntry;
  /** The production model this change archived, or null. */
  replaced: ModelEntry | null;
  /** False when the entry was already at that stage: nothing changed. */
  changed: boolean;
}

/** The user, host and command line of this process, as changes record them. */
export function processActor(): Actor {
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    user = process.env.USER ?? "unknown";
  }
  return { command: ["linewatch", ...process.argv.slice(2).map(shellQuoted)].join(" "), user, host: hostname() };
}

/** An argument as a shell would need it typed: single-quoted when it holds anything but plain characters. */
function shellQuoted(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

export class ModelRegistry {
  constructor(
    readonly store: RegistryStore,
    private readonly actor: Actor = processActor(),
    private readonly now: () => Date = () => new Date(),
  ) {}

  async list(kind?: string): Promise<ModelEntry[]> {
    if (kind !== undefined) checkKind(kind);
    const { record } = await this.read();
    return Object.values(record.entries)
      .filter((e) => kind === undefined || e.kind === kind)
      .sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id));
  }

  /** The entry `idOrPrefix` names (a full id or a unique prefix of {@link ID_PREFIX_MIN}+ hex digits). */
  async show(idOrPrefix: string): Promise<ModelEntry> {
    const { record } = await this.read();
    return record.entries[resolveId(record, idOrPrefix)] as ModelEntry;
  }

  /** The changes that concern one entry, oldest first. */
  async history(idOrPrefix: string): Promise<Change[]> {
    const { record } = await this.read();
    const id = resolveId(record, idOrPrefix);
    return record.changes.filter((c) => c.id === id || c.replaced === id);
  }

  async production(kind: string): Promise<ModelEntry | null> {
    checkKind(kind);
    const { record } = await this.read();
    const id = record.production[kind as ModelKind];
    return id === null ? null : (record.entries[id] ?? null);
  }

  async modelBytes(idOrPrefix: string): Promise<Uint8Array> {
    const entry = await this.show(idOrPrefix);
    const bytes = await this.store.getModel(entry.id);
    if (bytes === null) throw new RegistryError("bad_record", `${this.store.where}: the file of ${entry.short_id} is missing`);
    return bytes;
  }

  /** Registers a model file as a candidate; the same bytes again return the existing entry unchanged. */
  async push(request: PushRequest): Promise<PushResult> {
    const kind = checkKind(request.kind);
    const { bytes, fileName } = request;
    if (bytes.length > MODEL_FILE_BYTES_MAX)
      throw new RegistryError("too_large", `${fileName} is ${bytes.length} bytes, over the ${MODEL_FILE_BYTES_MAX} a model file may have`);
    const notes = request.notes ?? null;
    if (notes !== null && notes.length > NOTES_CHARS_MAX)
      throw new RegistryError("too_large", `--notes is ${notes.length} characters, over ${NOTES_CHARS_MAX}`);
    const facts = describeModel(bytes, kind, fileName);
    const id = createHash("sha256").update(bytes).digest("hex");
    const { record, revision } = await this.read();
    const existing = record.entries[id];
    if (existing !== undefined) {
      if (existing.kind !== kind)
        throw new RegistryError("wrong_kind", `${fileName} is registered as ${existing.short_id}, a ${existing.kind} model, not ${kind}`);
      return { entry: existing, created: false };
    }
    await this.store.putModel(id, bytes);
    const at = this.now().toISOString();
    const entry: ModelEntry = {
      id,
      short_id: id.slice(0, SHORT_ID_LENGTH),
      kind,
      ...facts,
      file_name: fileName,
      size_bytes: bytes.length,
      created_at: at,
      stage: "candidate",
      stage_changed_at: at,
      made_by: this.actor,
      notes,
    };
    record.entries[id] = entry;
    this.log(record, { at, action: "push", id, kind, from_stage: null, to_stage: "candidate", replaced: null, by: this.actor });
    await this.write(record, revision);
    return { entry, created: true };
  }

  /**
   * Moves an entry to `stage`. To production: it becomes its kind's alias, the previous production
   * model is archived and kept in the history for `rollback`. Out of production: the kind has none.
   */
  async promote(idOrPrefix: string, stage: string): Promise<StageChange> {
    if (!isModelStage(stage))
      throw new RegistryError("unknown_stage", `unknown stage "${stage}": the stages are ${MODEL_STAGES.join(", ")}`);
    const { record, revision } = await this.read();
    const entry = record.entries[resolveId(record, idOrPrefix)] as ModelEntry;
    if (entry.stage === stage) return { entry, replaced: null, changed: false };
    const from = entry.stage;
    const at = this.now().toISOString();
    let replaced: ModelEntry | null = null;
    if (stage === "production") {
      replaced = this.archiveProduction(record, entry.kind, at);
      record.production[entry.kind] = entry.id;
    } else if (record.production[entry.kind] === entry.id) {
      record.production[entry.kind] = null;
    }
    entry.stage = stage;
    entry.stage_changed_at = at;
    const change: Change = {
      at,
      action: "promote",
      id: entry.id,
      kind: entry.kind,
      from_stage: from,
      to_stage: stage,
      replaced: replaced?.id ?? null,
      by: this.actor,
    };
    this.log(record, change);
    await this.write(record, revision);
    return { entry, replaced, changed: true };
  }

  /** Restores the kind's previous production model from the promotion history; the current one is archived. */
  async rollback(kind: string): Promise<StageChange> {
    const k = checkKind(kind);
    const { record, revision } = await this.read();
    const currentId = record.production[k];
    const previous = popPrevious(record, k, currentId);
    if (previous === null)
      throw new RegistryError("nothing_to_roll_back", `no earlier ${k} production model in the promotion history of ${this.store.where}`);
    const current = currentId === null ? null : (record.entries[currentId] ?? null);
    const at = this.now().toISOString();
    if (current !== null) {
      current.stage = "archived";
      current.stage_changed_at = at;
    }
    const from = previous.stage;
    previous.stage = "production";
    previous.stage_changed_at = at;
    record.production[k] = previous.id;
    this.log(record, {
      at,
      action: "rollback",
      id: previous.id,
      kind: k,
      from_stage: from,
      to_stage: "production",
      replaced: current?.id ?? null,
      by: this.actor,
    });
    await this.write(record, revision);
    return { entry: previous, replaced: current, changed: true };
  }

  async close(): Promise<void> {
    await this.store.close();
  }

  /** Archives the kind's production model (if any) and keeps it in the history; returns it. */
  private archiveProduction(record: RegistryRecord, kind: ModelKind, at: string): ModelEntry | null {
    const id = record.production[kind];
    const current = id === null ? undefined : record.entries[id];
    if (current === undefined) return null;
    current.stage = "archived";
    current.stage_changed_at = at;
    const history = record.production_history[kind];
    history.push(current.id);
    if (history.length > PRODUCTION_HISTORY_MAX) history.splice(0, history.length - PRODUCTION_HISTORY_MAX);
    return current;
  }

  private log(record: RegistryRecord, change: Change): void {
    record.changes.push(change);
    const over = record.changes.length - CHANGES_MAX;
    if (over > 0) {
      record.changes.splice(0, over);
      record.changes_dropped += over;
    }
  }

  private async read(): Promise<{ record: RegistryRecord; revision: string | null }> {
    const stored = await this.store.readRecord();
    if (stored === null) return { record: emptyRecord(), revision: null };
    return { record: decodeRecord(stored.bytes, this.store.where), revision: stored.revision };
  }

  private async write(record: RegistryRecord, revision: string | null): Promise<void> {
    await this.store.writeRecord(encodeRecord(record), revision);
  }
}

/** The latest model in the kind's history that is not the current production one (taken off the history). */
function popPrevious(record: RegistryRecord, kind: ModelKind, currentId: string | null): ModelEntry | null {
  const history = record.production_history[kind];
  for (let id = history.pop(); id !== undefined; id = history.pop()) {
    const entry = record.entries[id];
    if (id !== currentId && entry !== undefined) return entry;
  }
  return null;
}

function checkKind(kind: string): ModelKind {
  if (!isModelKind(kind)) throw new RegistryError("unknown_kind", `unknown kind "${kind}": the kinds are ${MODEL_KINDS.join(", ")}`);
  return kind;
}

function resolveId(record: RegistryRecord, idOrPrefix: string): string {
  const prefix = idOrPrefix.toLowerCase();
  if (!/^[0-9a-f]+$/.test(prefix) || prefix.length < ID_PREFIX_MIN || prefix.length > 64)
    throw new RegistryError("unknown_id", `"${idOrPrefix}" is not a model id (${ID_PREFIX_MIN} to 64 hex digits)`);
  const matches = Object.keys(record.entries).filter((id) => id.startsWith(prefix));
  if (matches.length === 0) throw new RegistryError("unknown_id", `no model ${idOrPrefix} in the registry`);
  if (matches.length > 1)
    throw new RegistryError(
      "ambiguous_id",
      `${idOrPrefix} names ${matches.length} models (${matches.map((m) => m.slice(0, SHORT_ID_LENGTH)).join(", ")}); give more digits`,
    );
  return matches[0] as string;
}
