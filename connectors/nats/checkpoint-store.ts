/**
 * Checkpoints in a JetStream key-value bucket. NATS limits a message (default 1 MiB) and a
 * partition's state can be larger, so a checkpoint is stored as chunks `<name>.<set>.c<i>`
 * followed by a manifest `<name>` (generation, chunk set, chunk count, byte length, SHA-256, the
 * covered position). Chunks of a new save never overwrite the ones the current manifest names, and
 * the manifest is written last, so a crash in the middle of a save leaves the previous checkpoint
 * whole; the previous checkpoint's chunks are purged only after the new manifest is in place.
 *
 * Each save writes a chunk set of its own (`g<generation>x<random>`), never one an earlier save
 * wrote: a put the client gave up on (the request's timeout, a loaded server) may still be stored
 * after the client's next save has read the manifest and written its chunks. With sets named by
 * generation alone both saves wrote generation g + 1, and the late manifest named the other
 * save's chunks: a checkpoint that did not match its manifest, and a restart that could not
 * restore. Now a manifest, late or not, names only chunks written for it. Manifests written
 * before the chunk set was named (no `chunkSet`) name `g<generation>`. The price: chunks of a save
 * that died, and those its late manifest replaced unknowingly, stay in the bucket unnamed — a
 * checkpoint's size per such failure, never read; the store purges those of its own failed saves.
 */
import { createHash, randomBytes } from "node:crypto";
import { ErrorCode, NatsError, type KV, type KvEntry, type NatsConnection } from "nats";
import { CheckpointError } from "../../engine/core/mod.js";

export const DEFAULT_CHECKPOINT_CHUNK_BYTES = 512 * 1024;
/** A manifest naming more bytes than this is refused on load (bounded decoded length). */
export const CHECKPOINT_BYTES_MAX = 1 << 30;
/** Reads of a checkpoint that a concurrent save keeps replacing, before the error stands. */
const LOAD_ATTEMPTS = 5;
/**
 * Tries of one key read that the server does not answer in time (a JetStream request's 5 s
 * timeout: a server or a host busy for longer, as at a plant-wide restart), before the error
 * stands. A read changes nothing, so trying it again is safe; backoff 0.25, 0.5, 1, 2 s.
 */
const READ_ATTEMPTS = 5;
const READ_BACKOFF_MS = 250;

interface Manifest {
  generation: number;
  /** Names the chunks: `<name>.<chunkSet>.c<i>` (absent in older manifests: `g<generation>`). */
  chunkSet?: string;
  chunks: number;
  bytes: number;
  sha256: string;
  position: number;
  savedAt: string;
}

export class CheckpointStore {
  /** The last save of each name under way (see save). */
  private readonly saving = new Map<string, Promise<void>>();
  /** Chunk sets of saves that failed after writing chunks, by name: purged after the next save that lands (see saveNow). */
  private readonly unsettled = new Map<string, Array<{ chunkSet: string; chunks: number }>>();

  private constructor(
    private readonly kv: KV,
    private readonly chunkBytes: number,
  ) {}

  /** Opens (creating if missing) the bucket. Key names allow [-/_=.a-zA-Z0-9]. */
  static async open(nc: NatsConnection, bucket: string, chunkBytes = DEFAULT_CHECKPOINT_CHUNK_BYTES): Promise<CheckpointStore> {
    const kv = await nc.jetstream().views.kv(bucket, { history: 1 });
    return new CheckpointStore(kv, chunkBytes);
  }

  /**
   * Stores `bytes` as checkpoint `name`, covering source position `position`. Saves of one name
   * through this store run one after another: each reads the manifest the one before it wrote, so
   * generations only rise and a save never purges the chunks of the manifest in place.
   */
  save(name: string, bytes: Uint8Array, position: number): Promise<void> {
    const before = this.saving.get(name) ?? Promise.resolve();
    const done = before.catch(() => undefined).then(() => this.saveNow(name, bytes, position));
    const tail = done.catch(() => undefined);
    this.saving.set(name, tail);
    void tail.then(() => {
      if (this.saving.get(name) === tail) this.saving.delete(name);
    });
    return done;
  }

  private async saveNow(name: string, bytes: Uint8Array, position: number): Promise<void> {
    const previous = await this.manifest(name);
    const generation = (previous?.generation ?? 0) + 1;
    const chunkSet = `g${generation}x${randomBytes(4).toString("hex")}`;
    const chunks = Math.max(1, Math.ceil(bytes.length / this.chunkBytes));
    const manifest: Manifest = {
      generation,
      chunkSet,
      chunks,
      bytes: bytes.length,
      sha256: sha256(bytes),
      position,
      savedAt: new Date().toISOString(),
    };
    try {
      for (let i = 0; i < chunks; i++) {
        await this.kv.put(`${name}.${chunkSet}.c${i}`, bytes.subarray(i * this.chunkBytes, (i + 1) * this.chunkBytes));
      }
      await this.kv.put(name, new TextEncoder().encode(JSON.stringify(manifest)));
    } catch (error) {
      // The chunks (and maybe, later, the manifest) may be stored all the same; see the module comment.
      const left = this.unsettled.get(name) ?? [];
      left.push({ chunkSet, chunks });
      this.unsettled.set(name, left);
      throw error;
    }
    await this.purgeUnreferenced(name, previous);
  }

  /**
   * After a save's manifest is stored: the previous checkpoint's chunks, and those of this store's
   * failed saves of the name. None can be named any more: the server stores one connection's puts
   * to a stream in order, so a failed save's manifest, if it landed at all, landed before this
   * save's, which replaced it.
   */
  private async purgeUnreferenced(name: string, previous: Manifest | null): Promise<void> {
    const sets = this.unsettled.get(name) ?? [];
    this.unsettled.delete(name);
    if (previous !== null) sets.push({ chunkSet: chunkSetOf(previous), chunks: previous.chunks });
    for (const set of sets) for (let i = 0; i < set.chunks; i++) await this.kv.purge(`${name}.${set.chunkSet}.c${i}`);
  }

  /**
   * The checkpoint `name` and the position it covers, or null when there is none. A reader racing
   * a running saver can find the chunks of the manifest it read already purged (a newer manifest
   * replaced it); then it reads the newer manifest, up to LOAD_ATTEMPTS times.
   */
  async load(name: string): Promise<{ bytes: Uint8Array; position: number } | null> {
    for (let attempt = 1; ; attempt++) {
      const m = await this.manifest(name);
      if (m === null) return null;
      try {
        return await this.loadGeneration(name, m);
      } catch (error) {
        // Replaced: any other manifest, not only another generation number — a saver that read
        // an older manifest before a newer one landed writes a generation number already used.
        const now = await this.manifest(name);
        const replaced = now !== null && (chunkSetOf(now) !== chunkSetOf(m) || now.sha256 !== m.sha256 || now.savedAt !== m.savedAt);
        if (!(error instanceof CheckpointError && replaced && attempt < LOAD_ATTEMPTS)) throw error;
      }
    }
  }

  private async loadGeneration(name: string, m: Manifest): Promise<{ bytes: Uint8Array; position: number }> {
    if (!(m.bytes >= 0 && m.bytes <= CHECKPOINT_BYTES_MAX) || !Number.isInteger(m.chunks) || m.chunks < 1) {
      throw new CheckpointError(`checkpoint ${name}: manifest names ${m.bytes} bytes in ${m.chunks} chunks`);
    }
    const bytes = new Uint8Array(m.bytes);
    const chunkSet = chunkSetOf(m);
    let at = 0;
    for (let i = 0; i < m.chunks; i++) {
      const entry = await this.read(`${name}.${chunkSet}.c${i}`);
      if (entry === null || (entry.value.length === 0 && m.bytes > 0))
        throw new CheckpointError(`checkpoint ${name}: chunk ${i} of ${chunkSet} is missing`);
      if (at + entry.value.length > m.bytes)
        throw new CheckpointError(`checkpoint ${name}: chunks exceed the ${m.bytes} bytes of the manifest`);
      bytes.set(entry.value, at);
      at += entry.value.length;
    }
    if (at !== m.bytes || sha256(bytes) !== m.sha256) throw new CheckpointError(`checkpoint ${name}: content does not match its manifest`);
    return { bytes, position: m.position };
  }

  private async manifest(name: string): Promise<Manifest | null> {
    const entry = await this.read(name);
    if (entry === null || entry.value.length === 0) return null;
    try {
      return JSON.parse(new TextDecoder().decode(entry.value)) as Manifest;
    } catch (cause) {
      throw new CheckpointError(`checkpoint ${name}: manifest is not JSON`, { cause });
    }
  }

  /** Key `key`, tried again while the server does not answer in time (see READ_ATTEMPTS). */
  private async read(key: string): Promise<KvEntry | null> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.kv.get(key);
      } catch (error) {
        if (!unanswered(error)) throw error;
        if (attempt === READ_ATTEMPTS)
          throw new CheckpointError(`checkpoint key ${key}: the server did not answer ${READ_ATTEMPTS} reads`, { cause: error });
        await new Promise((r) => setTimeout(r, READ_BACKOFF_MS << (attempt - 1)));
      }
    }
  }
}

/** A request the server did not answer (timed out, or no JetStream responder yet): worth trying again. */
function unanswered(error: unknown): boolean {
  return error instanceof NatsError && (error.code === ErrorCode.Timeout || error.code === ErrorCode.NoResponders);
}

/** The key part naming a manifest's chunks. */
function chunkSetOf(m: Manifest): string {
  return typeof m.chunkSet === "string" && /^[a-zA-Z0-9]{1,64}$/.test(m.chunkSet) ? m.chunkSet : `g${m.generation}`;
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
