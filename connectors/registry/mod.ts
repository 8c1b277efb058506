/** connectors/registry: the model registry and its two stores. Import from here, never from a file inside. */
export { type ModelFacts, describeModel } from "./describe.js";
export { DEFAULT_REGISTRY_DIR, DirectoryStore } from "./dir-store.js";
export { DEFAULT_REGISTRY_POLL_MS, followProduction, type ProductionFollower, type ProductionFollowOptions } from "./follow.js";
export { DEFAULT_REGISTRY_BUCKET, ObjectStoreRegistry } from "./nats-store.js";
export { isNatsRegistry, openRegistryStore } from "./open.js";
export {
  type Actor,
  type Change,
  MODEL_KINDS,
  MODEL_STAGES,
  type ModelEntry,
  type ModelKind,
  type ModelStage,
  NOTES_CHARS_MAX,
  RECORD_BYTES_MAX,
} from "./record.js";
export { ID_PREFIX_MIN, ModelRegistry, processActor, type PushResult, type StageChange, SHORT_ID_LENGTH } from "./registry.js";
export type { RegistryStore, StoredRecord } from "./store.js";
