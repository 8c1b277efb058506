/**
 * Per-key event-time reordering with an allowed lateness.
 *
 * For each key the watermark is (newest time seen − lateness). A record at or after the watermark
 * waits in the key's buffer, sorted by time (stable for equal times: arrival order); records at
 * or before the watermark are released in time order. A record older than the watermark when
 * it arrives is late: it is returned to the caller to be counted and routed, never dropped.
 * A key's buffer holds at most `recordsPerKeyMax`; past that its oldest record is released early
 * (counted as `forcedReleases`), so memory stays bounded whatever the input does.
 */
import { ConfigError } from "./errors.js";

export interface PendingRecord {
  keyId: number;
  time: number;
  value: number;
  position: number;
  /** The record's payload bytes (a copy), when the engine carries a payload. */
  payload?: Uint8Array;
}

export class ReorderBuffer {
  forcedReleases = 0;
  private readonly lateness: number;
  private readonly recordsPerKeyMax: number;
  private readonly pending = new Map<number, PendingRecord[]>();
  private readonly newest = new Map<number, number>();
  private readonly released = new Map<number, number>();
  private pendingCount = 0;

  constructor(lateness: number, recordsPerKeyMax: number) {
    if (!(lateness >= 0) || !Number.isFinite(lateness)) throw new ConfigError("lateness", `must be a finite duration ≥ 0, got ${lateness}`);
    if (!Number.isInteger(recordsPerKeyMax) || recordsPerKeyMax < 1) {
      throw new ConfigError("reorderRecordsPerKeyMax", `must be a positive integer, got ${recordsPerKeyMax}`);
    }
    this.lateness = lateness;
    this.recordsPerKeyMax = recordsPerKeyMax;
  }

  /** Records waiting in all keys' buffers. */
  get size(): number {
    return this.pendingCount;
  }

  /**
   * Offers one record. Appends what it releases (in time order) to `out`; returns false when the
   * record is late (older than its key's watermark, or older than what the key already released).
   */
  offer(record: PendingRecord, out: PendingRecord[]): boolean {
    const id = record.keyId;
    const newest = this.newest.get(id);
    const watermark = newest === undefined ? -Infinity : newest - this.lateness;
    const releasedUpTo = this.released.get(id) ?? -Infinity;
    if (record.time < watermark || record.time < releasedUpTo) return false;
    let list = this.pending.get(id);
    if (list === undefined) {
      list = [];
      this.pending.set(id, list);
    }
    insertSorted(list, record);
    this.pendingCount++;
    const top = newest === undefined || record.time > newest ? record.time : newest;
    this.newest.set(id, top);
    const cut = top - this.lateness;
    let k = 0;
    while (k < list.length && (list[k].time <= cut || list.length - k > this.recordsPerKeyMax)) {
      if (list[k].time > cut) this.forcedReleases++;
      out.push(list[k]);
      k++;
    }
    if (k > 0) {
      this.released.set(id, list[k - 1].time);
      list.splice(0, k);
      this.pendingCount -= k;
    }
    return true;
  }

  /** Releases everything still waiting (end of input), key by key, each in time order. */
  drain(out: PendingRecord[]): void {
    for (const [id, list] of this.pending) {
      if (list.length === 0) continue;
      for (const r of list) out.push(r);
      this.released.set(id, list[list.length - 1].time);
      this.pendingCount -= list.length;
      list.length = 0;
    }
  }
}

/** Inserts after every record with time ≤ record.time, so equal times keep arrival order. */
function insertSorted(list: PendingRecord[], record: PendingRecord): void {
  let lo = 0;
  let hi = list.length;
  if (hi === 0 || list[hi - 1].time <= record.time) {
    list.push(record);
    return;
  }
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid].time <= record.time) lo = mid + 1;
    else hi = mid;
  }
  list.splice(lo, 0, record);
}
