/** What `linewatch audit verify` found: per score, equal or its first difference; kept bounded. */

/** The first member of one score that differs between the stored row and the recomputation. */
export interface ScoreDifference {
  /** Which score: `row 12 (key M1/temperature, timestamp …)` or `M1/temperature @ 1700000000000 seq 5`. */
  score: string;
  field: string;
  stored: unknown;
  recomputed: unknown;
}

export interface VerifyReport {
  /** Scores compared. */
  checked: number;
  /** Scores whose every member is equal. */
  equal: number;
  /** Scores with a difference (each counted once, at its first). */
  differing: number;
  /** The first {@link DIFFERENCES_KEPT} differences, in order. */
  differences: ScoreDifference[];
  /** The kernel hashes the scores record, and this build's. */
  kernel: { recorded: string[]; build: string; same: boolean };
  /** The settings document's hash, and the models the recomputation fetched. */
  configHashes: string[];
  models: string[];
}

/** Differences kept in detail; the rest are counted. */
export const DIFFERENCES_KEPT = 100;

/** Collects a verification's outcome as it goes. */
export class VerifyTally {
  checked = 0;
  equal = 0;
  differing = 0;
  readonly differences: ScoreDifference[] = [];
  readonly kernels = new Set<string>();

  /** One score: `difference` null when every member is equal. */
  score(difference: ScoreDifference | null): void {
    this.checked++;
    if (difference === null) {
      this.equal++;
      return;
    }
    this.differing++;
    if (this.differences.length < DIFFERENCES_KEPT) this.differences.push(difference);
  }

  report(build: string, configHashes: string[], models: string[]): VerifyReport {
    const recorded = [...this.kernels].sort();
    return {
      checked: this.checked,
      equal: this.equal,
      differing: this.differing,
      differences: this.differences,
      kernel: { recorded, build, same: recorded.every((k) => k === build) },
      configHashes,
      models,
    };
  }
}

/** Whether two member values are the same: numbers bit for bit (Object.is: −0 is not 0), else by their JSON text. */
export function sameValue(a: unknown, b: unknown): boolean {
  if (typeof a === "number" && typeof b === "number") return Object.is(a, b);
  if (typeof a === "bigint" || typeof b === "bigint") return String(a) === String(b);
  return JSON.stringify(a) === JSON.stringify(b);
}
