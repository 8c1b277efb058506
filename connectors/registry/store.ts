/** Where a model registry keeps its record and model files: a directory or a JetStream object store. */

/** The record's bytes and the token a conditional write must name (null: there is no record yet). */
export interface StoredRecord {
  bytes: Uint8Array;
  revision: string;
}

export interface RegistryStore {
  /** Where it is, for messages: a directory path or nats://…/bucket. */
  readonly where: string;
  /** The record, or null in a registry nothing has been pushed to. */
  readRecord(): Promise<StoredRecord | null>;
  /**
   * Replaces the record when it is still at `revision` (null: when there is none yet); else throws
   * RegistryError "concurrent_change" where the store can tell.
   */
  writeRecord(bytes: Uint8Array, revision: string | null): Promise<void>;
  /** Keeps a model file's bytes under its id (idempotent: the id is the bytes' hash). */
  putModel(id: string, bytes: Uint8Array): Promise<void>;
  /** A model file's bytes, or null. */
  getModel(id: string): Promise<Uint8Array | null>;
  close(): Promise<void>;
}
