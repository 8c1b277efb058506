/**
 * The quarantine list: serials held back for investigation, one entry per (gtin, serial) with
 * the reasons of every quarantined occurrence. Bounded (`entriesMax`; further serials are counted
 * as not kept). Persisted as a JSON file that `linewatch serial quarantine list|release` reads
 * and edits; released entries move to `released` with the time, for the audit trail.
 *
 * File format (version 1):
 *   {"version": 1, "entries": [QuarantineEntry…], "released": [QuarantineEntry & {released_at, release_note?}…]}
 * Writes go to a temporary file renamed over the old one, so a reader never sees half a list.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { CapacityError, InputError } from "../../engine/core/web.js";
import type { AnomalyType, Reason } from "./layout.js";
import { RISK_LEVELS, type RiskLevel } from "./score.js";

export interface QuarantineEntry {
  serial_number: string;
  gtin: string;
  batch_number: string;
  machine_id: string;
  operator_id: string;
  /** Production time of the first quarantined occurrence (time units of the input; epoch ms for clocks). */
  production_time: number;
  /** Input row (or stream position) of the first quarantined occurrence. */
  row: number;
  anomaly_score: number;
  confidence_level: number;
  risk_level: RiskLevel;
  anomaly_types: AnomalyType[];
  reasons: Reason[];
  /** Quarantined occurrences of this (gtin, serial). */
  occurrences: number;
  /** When linewatch quarantined it (ISO-8601). */
  quarantined_at: string;
}

/** One quarantined occurrence, as the quarantine output publishes it. */
export interface QuarantineEvent extends QuarantineEntry {
  /** Whether the list kept it (false: the list is full). */
  kept: boolean;
}

export interface ReleasedEntry extends QuarantineEntry {
  released_at: string;
  release_note?: string;
}

export interface QuarantineFile {
  version: 1;
  entries: QuarantineEntry[];
  released: ReleasedEntry[];
}

export interface QuarantineSnapshot {
  entries: QuarantineEntry[];
  released: ReleasedEntry[];
  notKept: number;
}

export const DEFAULT_QUARANTINE_ENTRIES_MAX = 1_000_000;
export const DEFAULT_QUARANTINE_FILE = "linewatch-quarantine.json";

export class QuarantineList {
  private readonly entries = new Map<string, QuarantineEntry>();
  private readonly released: ReleasedEntry[] = [];
  private notKept = 0;

  constructor(readonly entriesMax = DEFAULT_QUARANTINE_ENTRIES_MAX) {
    if (!Number.isInteger(entriesMax) || entriesMax < 1)
      throw new CapacityError("quarantineEntriesMax", entriesMax, "must be a positive integer");
  }

  get size(): number {
    return this.entries.size;
  }

  /** Occurrences that found the list full. */
  get dropped(): number {
    return this.notKept;
  }

  /** Adds an occurrence; merges with an entry of the same (gtin, serial). Returns the entry, or null when full. */
  add(e: Omit<QuarantineEntry, "occurrences">): QuarantineEntry | null {
    const key = `${e.gtin}\u0000${e.serial_number}`;
    const known = this.entries.get(key);
    if (known !== undefined) {
      known.occurrences++;
      for (const r of e.reasons) if (!known.reasons.includes(r)) known.reasons.push(r);
      for (const t of e.anomaly_types) if (!known.anomaly_types.includes(t)) known.anomaly_types.push(t);
      if (e.anomaly_score > known.anomaly_score) {
        known.anomaly_score = e.anomaly_score;
        known.risk_level = e.risk_level;
        known.confidence_level = e.confidence_level;
      }
      return known;
    }
    if (this.entries.size >= this.entriesMax) {
      this.notKept++;
      return null;
    }
    const entry: QuarantineEntry = { ...e, occurrences: 1 };
    this.entries.set(key, entry);
    return entry;
  }

  list(): QuarantineEntry[] {
    return [...this.entries.values()];
  }

  /** The entry of (gtin, serial), if quarantined. */
  entry(gtin: string, serial: string): QuarantineEntry | undefined {
    return this.entries.get(`${gtin}\u0000${serial}`);
  }

  /** Puts an entry as it is (one read from a file); false when the key is taken or the list is full. */
  put(e: QuarantineEntry): boolean {
    const key = `${e.gtin}\u0000${e.serial_number}`;
    if (this.entries.has(key) || this.entries.size >= this.entriesMax) return false;
    this.entries.set(key, { ...e });
    return true;
  }

  releasedEntries(): ReleasedEntry[] {
    return [...this.released];
  }

  /** Releases the entries of `serial` (of `gtin` when given); returns them. */
  release(serial: string, gtin?: string, note?: string, now: Date = new Date()): ReleasedEntry[] {
    const out: ReleasedEntry[] = [];
    for (const [key, e] of this.entries) {
      if (e.serial_number !== serial || (gtin !== undefined && e.gtin !== gtin)) continue;
      this.entries.delete(key);
      const r: ReleasedEntry = { ...e, released_at: now.toISOString(), ...(note !== undefined ? { release_note: note } : {}) };
      this.released.push(r);
      out.push(r);
    }
    return out;
  }

  /** The list as a checkpoint holds it (a copy: later occurrences do not change it). */
  snapshot(): QuarantineSnapshot {
    const copy = <T extends QuarantineEntry>(e: T): T => ({ ...e, reasons: [...e.reasons], anomaly_types: [...e.anomaly_types] });
    return { entries: this.list().map(copy), released: this.released.map(copy), notKept: this.notKept };
  }

  /**
   * Puts a checkpoint's list back: its entries replace this list's of the same (gtin, serial)
   * (those read from the file at start), releases it holds that this list lacks are added.
   */
  restore(s: QuarantineSnapshot): void {
    if (s.entries.length > this.entriesMax)
      throw new CapacityError(
        "quarantineEntriesMax",
        s.entries.length,
        `a checkpoint holds more entries than the list's ${this.entriesMax}`,
      );
    for (const e of s.entries) {
      const key = `${e.gtin}\u0000${e.serial_number}`;
      if (!this.entries.has(key) && this.entries.size >= this.entriesMax) {
        this.notKept++;
        continue;
      }
      this.entries.set(key, { ...e });
    }
    const known = new Set(this.released.map((r) => `${r.gtin}\u0000${r.serial_number}\u0000${r.released_at}`));
    for (const r of s.released) if (!known.has(`${r.gtin}\u0000${r.serial_number}\u0000${r.released_at}`)) this.released.push({ ...r });
    // A release made after the checkpoint (in the file read at start) stays made.
    for (const r of this.released) {
      const key = `${r.gtin}\u0000${r.serial_number}`;
      const e = this.entries.get(key);
      if (e !== undefined && r.released_at >= e.quarantined_at) this.entries.delete(key);
    }
    this.notKept += s.notKept;
  }

  toFile(): QuarantineFile {
    return { version: 1, entries: this.list(), released: this.releasedEntries() };
  }

  /**
   * Adds this list's entries to the file at `path` (created when missing): what a run found joins
   * what earlier runs left, and releases made in the file stay made.
   */
  saveMerged(path: string): void {
    const merged = QuarantineList.load(path, Math.max(this.entriesMax, DEFAULT_QUARANTINE_ENTRIES_MAX));
    for (const e of this.entries.values()) {
      const { occurrences, ...rest } = e;
      const m = merged.add(rest);
      if (m !== null) m.occurrences += occurrences - 1;
    }
    merged.write(path);
  }

  /** Writes exactly this list to `path`, atomically. */
  write(path: string): void {
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(this.toFile(), null, 1)}\n`);
    renameSync(tmp, path);
  }

  /** Reads a quarantine file; a missing file is an empty list. */
  static load(path: string, entriesMax = DEFAULT_QUARANTINE_ENTRIES_MAX): QuarantineList {
    const list = new QuarantineList(entriesMax);
    if (!existsSync(path)) return list;
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(path, "utf8"));
    } catch (cause) {
      throw new InputError(`${path}: not a quarantine file (${(cause as Error).message})`, { cause });
    }
    const f = parsed as Partial<QuarantineFile>;
    if (f === null || typeof f !== "object" || f.version !== 1 || !Array.isArray(f.entries)) {
      throw new InputError(`${path}: not a version 1 quarantine file ({"version": 1, "entries": [...]})`);
    }
    for (const e of f.entries) {
      if (typeof e?.serial_number !== "string" || typeof e.gtin !== "string" || !RISK_LEVELS.includes(e.risk_level)) {
        throw new InputError(`${path}: an entry lacks serial_number, gtin or a risk_level`);
      }
      list.entries.set(`${e.gtin}\u0000${e.serial_number}`, e);
    }
    for (const r of f.released ?? []) list.released.push(r);
    return list;
  }
}
