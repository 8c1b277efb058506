/** Where a registry is, as a flag names it: a nats:// (or tls://) server's object store, else a directory. */
import { DirectoryStore } from "./dir-store.js";
import { ObjectStoreRegistry } from "./nats-store.js";
import type { RegistryStore } from "./store.js";

/** Whether `where` names a NATS server (its JetStream object store) rather than a directory. */
export function isNatsRegistry(where: string): boolean {
  return /^(nats|tls|wss?):\/\//i.test(where);
}

/** Opens the store `where` names; a NATS store owns (and closes) its own connection. */
export async function openRegistryStore(where: string): Promise<RegistryStore> {
  return isNatsRegistry(where) ? ObjectStoreRegistry.connect(where) : new DirectoryStore(where);
}
