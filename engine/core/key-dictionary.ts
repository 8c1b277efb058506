/**
 * Key dictionary: string key → dense id, and each id's key group and slot in that group.
 *
 * Keys are hashed (FNV-1a, 32 bit) into groups so the same key lands in the same group in every
 * process started with the same group count; when a group's slots are full the key goes to the
 * next group with room (linear probing), so the dictionary holds exactly `keysMax` keys.
 * With `groupKeyParts` n (StreamEngineOptions.groupByKeyPrefix), a key `a/b/…` is hashed by its
 * first n parts: keys that share them (one sensor's charts per operating mode) share a group, so
 * their rows keep their order across those keys, as long as the group has room for them.
 */
import { CapacityError, ConfigError } from "./errors.js";

export class KeyDictionary {
  readonly groups: number;
  readonly slotsPerGroup: number;
  private readonly ids = new Map<string, number>();
  private readonly names: string[] = [];
  private readonly groupOf: Uint32Array;
  private readonly slotOf: Uint32Array;
  private readonly used: Uint32Array;

  constructor(
    groups: number,
    slotsPerGroup: number,
    private readonly groupKeyParts?: number,
  ) {
    if (!Number.isInteger(groups) || groups < 1) throw new ConfigError("groups", `must be a positive integer, got ${groups}`);
    if (!Number.isInteger(slotsPerGroup) || slotsPerGroup < 1) {
      throw new ConfigError("slotsPerGroup", `must be a positive integer, got ${slotsPerGroup}`);
    }
    this.groups = groups;
    this.slotsPerGroup = slotsPerGroup;
    this.groupOf = new Uint32Array(groups * slotsPerGroup);
    this.slotOf = new Uint32Array(groups * slotsPerGroup);
    this.used = new Uint32Array(groups);
  }

  /** Number of keys known. */
  get size(): number {
    return this.names.length;
  }

  get capacity(): number {
    return this.groups * this.slotsPerGroup;
  }

  /** The id of `key`, or -1 when it has none yet. */
  lookup(key: string): number {
    return this.ids.get(key) ?? -1;
  }

  /** The id of `key`, assigning group and slot on first sight. `onNew` runs once per new key. */
  intern(key: string, onNew?: (id: number) => void): number {
    const known = this.ids.get(key);
    if (known !== undefined) return known;
    if (this.names.length >= this.capacity) {
      throw new CapacityError("keysMax", this.capacity, `no slot left for key "${key}"; raise keysMax`);
    }
    let group = fnv1a(this.groupKeyParts === undefined ? key : key.split("/").slice(0, this.groupKeyParts).join("/")) % this.groups;
    while (this.used[group] >= this.slotsPerGroup) group = (group + 1) % this.groups;
    const id = this.names.length;
    this.names.push(key);
    this.ids.set(key, id);
    this.groupOf[id] = group;
    this.slotOf[id] = this.used[group]++;
    onNew?.(id);
    return id;
  }

  name(id: number): string {
    const n = this.names[id];
    if (n === undefined) throw new RangeError(`unknown key id ${id}`);
    return n;
  }

  group(id: number): number {
    return this.groupOf[id];
  }

  slot(id: number): number {
    return this.slotOf[id];
  }

  /** Keys per group, for balance reports. */
  groupFill(): Uint32Array {
    return this.used.slice();
  }
}

/** FNV-1a 32-bit over UTF-16 code units (stable across processes and platforms). */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
