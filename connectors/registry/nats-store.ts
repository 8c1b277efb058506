/**
 * The registry in a JetStream object store bucket (`linewatch-models` by default): the record as
 * the object `registry.json`, each model file as `models/<sha256>`. The record's revision is the
 * object's meta sequence; a write names it (Nats-Expected-Last-Subject-Sequence through the
 * client's previousRevision), so a second writer that read the same record is refused instead of
 * overwriting the first one's change.
 */
import type { NatsConnection, ObjectStore } from "nats";
import { RegistryError } from "../../engine/core/mod.js";
import { MODEL_FILE_BYTES_MAX } from "../../operators/prediction/mod.js";
import { connectNats } from "../nats/mod.js";
import { RECORD_BYTES_MAX } from "./record.js";
import type { RegistryStore, StoredRecord } from "./store.js";

export const DEFAULT_REGISTRY_BUCKET = "linewatch-models";
const RECORD_OBJECT = "registry.json";

export class ObjectStoreRegistry implements RegistryStore {
  /** Connects to `url` and opens (creating when absent) the bucket; the store closes the connection. */
  static async connect(url: string, bucket = DEFAULT_REGISTRY_BUCKET): Promise<ObjectStoreRegistry> {
    const nc = await connectNats({ servers: url, name: "linewatch models" });
    try {
      return await ObjectStoreRegistry.open(nc, bucket, url, true);
    } catch (error) {
      await nc.close();
      throw error;
    }
  }

  /** Opens the bucket on a connection the caller owns (closing the store leaves it open). */
  static async open(
    nc: NatsConnection,
    bucket = DEFAULT_REGISTRY_BUCKET,
    url = "nats",
    ownsConnection = false,
  ): Promise<ObjectStoreRegistry> {
    let os: ObjectStore;
    try {
      os = await nc.jetstream().views.os(bucket);
    } catch (cause) {
      throw new RegistryError(
        "bad_record",
        `cannot open the JetStream object store ${bucket} at ${url} (is JetStream on?): ${(cause as Error).message}`,
        { cause },
      );
    }
    return new ObjectStoreRegistry(nc, os, `${url}/${bucket}`, ownsConnection);
  }

  private constructor(
    private readonly nc: NatsConnection,
    private readonly os: ObjectStore,
    readonly where: string,
    private readonly ownsConnection: boolean,
  ) {}

  async readRecord(): Promise<StoredRecord | null> {
    const info = await this.os.info(RECORD_OBJECT);
    if (info === null || info.deleted) return null;
    const bytes = await this.getBounded(RECORD_OBJECT, info.size, RECORD_BYTES_MAX, RECORD_READ_DEADLINE_MS);
    return bytes === null ? null : { bytes, revision: String(info.revision) };
  }

  async writeRecord(bytes: Uint8Array, revision: string | null): Promise<void> {
    // 0: the subject must hold no message yet (the first push into an empty bucket).
    const previousRevision = revision === null ? 0 : Number(revision);
    try {
      await this.os.putBlob({ name: RECORD_OBJECT, description: "linewatch model registry record" }, bytes, { previousRevision });
    } catch (cause) {
      const message = (cause as Error).message;
      if (/wrong last sequence/i.test(message))
        throw new RegistryError("concurrent_change", `${this.where}: the registry changed while this command ran; run it again`, { cause });
      throw new RegistryError("bad_record", `${this.where}: cannot write the registry record: ${message}`, { cause });
    }
  }

  async putModel(id: string, bytes: Uint8Array): Promise<void> {
    const name = modelObject(id);
    const info = await this.os.info(name);
    if (info !== null && !info.deleted && info.size === bytes.length) return;
    await this.os.putBlob({ name, description: "linewatch model file" }, bytes);
  }

  async getModel(id: string): Promise<Uint8Array | null> {
    const name = modelObject(id);
    const info = await this.os.info(name);
    if (info === null || info.deleted) return null;
    return this.getBounded(name, info.size, MODEL_FILE_BYTES_MAX, MODEL_READ_DEADLINE_MS);
  }

  async close(): Promise<void> {
    if (this.ownsConnection) await this.nc.close();
  }

  /**
   * The object's bytes, read with a deadline. The client reads an object's chunks through a
   * subscription to the chunk subject its info named; when a writer replaces the object between
   * the info and the read (a promotion while a job polls), those chunks are purged and the read
   * would wait forever — a job's follower stopped polling that way. Past the deadline the read is
   * cancelled (its subscription closed) and the caller tries again.
   */
  private async getBounded(name: string, size: number, max: number, deadlineMs: number): Promise<Uint8Array | null> {
    if (size > max) throw new RegistryError("too_large", `${this.where}: ${name} is ${size} bytes, over ${max}`);
    const result = await this.os.get(name);
    if (result === null) return null;
    const reader = result.data.getReader();
    const chunks: Uint8Array[] = [];
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new RegistryError("unavailable", `${this.where}: reading ${name} took over ${deadlineMs} ms (replaced while read?)`)),
        deadlineMs,
      );
    });
    try {
      await Promise.race([
        (async () => {
          for (let r = await reader.read(); !r.done; r = await reader.read()) chunks.push(r.value);
          const error = await result.error;
          if (error) throw error;
        })(),
        deadline,
      ]);
    } catch (error) {
      await reader.cancel().catch(() => undefined);
      throw error;
    } finally {
      clearTimeout(timer);
    }
    return concat(chunks);
  }
}

/** Longest read of the record (KiB: a read past this was cut short) and of a model file (at most 64 MiB). */
const RECORD_READ_DEADLINE_MS = 5_000;
const MODEL_READ_DEADLINE_MS = 60_000;

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

function modelObject(id: string): string {
  return `models/${id}`;
}
