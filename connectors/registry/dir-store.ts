/**
 * The registry in a directory (the fallback when no NATS is given):
 *   DIR/registry.json        the record (record.ts)
 *   DIR/models/<sha256>      each model file's bytes
 * Writes go to a temporary file renamed over the target, so a reader never sees half a file. The
 * record's revision is its SHA-256: a write whose revision no longer matches is refused.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { RegistryError } from "../../engine/core/mod.js";
import { MODEL_FILE_BYTES_MAX } from "../../operators/prediction/mod.js";
import { RECORD_BYTES_MAX } from "./record.js";
import type { RegistryStore, StoredRecord } from "./store.js";

/** The directory `linewatch models` uses when given neither --dir nor --nats. */
export const DEFAULT_REGISTRY_DIR = "./models-registry";
const RECORD_FILE = "registry.json";

export class DirectoryStore implements RegistryStore {
  readonly where: string;

  constructor(readonly dir: string) {
    this.where = resolve(dir);
  }

  async readRecord(): Promise<StoredRecord | null> {
    const bytes = await readBounded(join(this.dir, RECORD_FILE), RECORD_BYTES_MAX);
    return bytes === null ? null : { bytes, revision: digest(bytes) };
  }

  async writeRecord(bytes: Uint8Array, revision: string | null): Promise<void> {
    const now = await this.readRecord();
    if ((now?.revision ?? null) !== revision)
      throw new RegistryError("concurrent_change", `${this.where}: the registry changed while this command ran; run it again`);
    await this.atomicWrite(join(this.dir, RECORD_FILE), bytes);
  }

  async putModel(id: string, bytes: Uint8Array): Promise<void> {
    const path = this.modelPath(id);
    if ((await readBounded(path, MODEL_FILE_BYTES_MAX)) !== null) return;
    await mkdir(join(this.dir, "models"), { recursive: true });
    await this.atomicWrite(path, bytes);
  }

  async getModel(id: string): Promise<Uint8Array | null> {
    return readBounded(this.modelPath(id), MODEL_FILE_BYTES_MAX);
  }

  async close(): Promise<void> {}

  private modelPath(id: string): string {
    return join(this.dir, "models", id);
  }

  private async atomicWrite(path: string, bytes: Uint8Array): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const temporary = `${path}.${process.pid}.tmp`;
    await writeFile(temporary, bytes);
    await rename(temporary, path);
  }
}

function digest(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** A file's bytes, null when it does not exist; refused over `max` before reading it. */
async function readBounded(path: string, max: number): Promise<Uint8Array | null> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new RegistryError("bad_record", `cannot read ${path}: ${(cause as Error).message}`, { cause });
  }
  if (size > max) throw new RegistryError("too_large", `${path} is ${size} bytes, over ${max}`);
  return new Uint8Array(await readFile(path));
}
