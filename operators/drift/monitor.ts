/**
 * The drift monitor of one model: PSI of each of its input features over a sliding window
 * (psi.ts) against the reference histograms training stored, read as a level per feature, and
 * the model's level (the highest of its features'). It reports a change whenever a feature's
 * level changes, with the model's level before and after and the features that moved.
 *
 * Levels: stable below `moderate` (default 0.1), moderate from there, major from `major` (0.25);
 * Siddiqi's reading, configurable. Against flicker, two guards:
 * - hysteresis: a level is left downward only when PSI falls below `exitRatio` × its threshold
 *   (default 0.8: moderate is left below 0.08, major below 0.2); upward the threshold itself counts;
 * - dwell: a feature's level changes only after `dwell` consecutive evaluations call for the new
 *   level (default 1: the hysteresis band does the work; raise it for noisy streams).
 * Nothing is evaluated until the window is full: a partial window's PSI has a larger null spread
 * ((k − 1)/n) than the thresholds were chosen for. docs/drift.md gives the reasoning for every default.
 */
import { ConfigError } from "../../engine/core/mod.js";
import { SlidingPsi } from "./psi.js";
import type { ReferenceHistograms } from "./reference.js";

export type DriftLevel = "stable" | "moderate" | "major";
export const DRIFT_LEVELS: readonly DriftLevel[] = ["stable", "moderate", "major"];

export interface PsiMonitorOptions {
  /** W, readings (feature rows) in the sliding window. */
  window: number;
  /** Evaluate the PSI every this many readings once the window is full (1: every reading). */
  evaluateEvery: number;
  /** PSI at which a feature becomes moderate / major. */
  moderate: number;
  major: number;
  /** A level is left downward below exitRatio × its threshold (0 < exitRatio ≤ 1). */
  exitRatio: number;
  /** Consecutive evaluations calling for a new level before a feature takes it (≥ 1). */
  dwell: number;
}

/**
 * Defaults. W = 10 000 readings: pooled fleet feature rows are far from independent — on C-MAPSS
 * FD001 (bench/drift-cmapss.ts) a window of W rows of rolling-mean features is worth n_eff ≈ W/15
 * independent readings (648 at W = 10 000, 57 at W = 2000), and W = 10 000 is the shortest window
 * tried whose unshifted replay stayed stable (max PSI 0.066; 0.197 at W = 5000). For independent
 * readings and 10 bins the null PSI is about χ²₉/n (psi.ts), so P(PSI > 0.1) is negligible there.
 * docs/drift.md has the figures.
 */
export const DEFAULT_PSI_MONITOR_OPTIONS: Readonly<PsiMonitorOptions> = Object.freeze({
  window: 10_000,
  evaluateEvery: 1,
  moderate: 0.1,
  major: 0.25,
  exitRatio: 0.8,
  dwell: 1,
});

/** A feature's PSI over the current window and its level. */
export interface FeatureDrift {
  name: string;
  psi: number;
  level: DriftLevel;
}

/** What changed at one evaluation. */
export interface DriftChange {
  /** Readings the monitor had taken when the change happened (1-based count). */
  reading: number;
  /** The model's level before and after (may be equal when only features changed within it). */
  from: DriftLevel;
  to: DriftLevel;
  /** Features whose level changed at this evaluation. */
  changed: FeatureDrift[];
  /** Every feature not stable after the change, highest PSI first: the features that moved. */
  moved: FeatureDrift[];
}

/** The monitor's state as JSON-ready values (PSI null before the first evaluation). */
export interface PsiMonitorSnapshot {
  level: DriftLevel;
  window: number;
  /** Readings in the window now (judging starts when it reaches `window`). */
  filled: number;
  readings: number;
  skipped: number;
  thresholds: { moderate: number; major: number; exitRatio: number; dwell: number };
  features: Array<{ name: string; psi: number | null; level: DriftLevel }>;
}

export class PsiMonitor {
  readonly options: Readonly<PsiMonitorOptions>;
  readonly featureNames: readonly string[];
  /** Readings taken (rows with a non-finite value are not readings: see `skipped`). */
  readings = 0;
  /** Rows refused because a value was not finite. */
  skipped = 0;
  /** PSI of each feature at the last evaluation (NaN before the first). */
  readonly psi: Float64Array;
  private readonly window: SlidingPsi;
  /** Per feature: level index (0 stable, 1 moderate, 2 major), pending level, evaluations it was asked for. */
  private readonly levels: Uint8Array;
  private readonly pending: Uint8Array;
  private readonly pendingRuns: Int32Array;
  private sinceEvaluation = 0;

  constructor(reference: ReferenceHistograms, options: Partial<PsiMonitorOptions> = {}) {
    this.options = Object.freeze(validateMonitorOptions({ ...DEFAULT_PSI_MONITOR_OPTIONS, ...options }));
    this.featureNames = Object.freeze(reference.features.map((h) => h.name));
    this.window = new SlidingPsi(reference, this.options.window);
    const f = this.featureNames.length;
    this.psi = new Float64Array(f).fill(NaN);
    this.levels = new Uint8Array(f);
    this.pending = new Uint8Array(f);
    this.pendingRuns = new Int32Array(f);
  }

  /** The model's level: the highest of its features'. */
  get level(): DriftLevel {
    let top = 0;
    for (let j = 0; j < this.levels.length; j++) if (this.levels[j] > top) top = this.levels[j];
    return DRIFT_LEVELS[top];
  }

  /** Every feature's PSI at the last evaluation and its level. */
  features(): FeatureDrift[] {
    return this.featureNames.map((name, j) => ({ name, psi: this.psi[j], level: DRIFT_LEVELS[this.levels[j]] }));
  }

  /** Everything an API or a metrics page shows about this monitor. */
  snapshot(): PsiMonitorSnapshot {
    const o = this.options;
    return {
      level: this.level,
      window: o.window,
      filled: this.window.filled,
      readings: this.readings,
      skipped: this.skipped,
      thresholds: { moderate: o.moderate, major: o.major, exitRatio: o.exitRatio, dwell: o.dwell },
      features: this.features().map((f) => ({ ...f, psi: Number.isNaN(f.psi) ? null : f.psi })),
    };
  }

  /**
   * Takes one feature row values[offset … offset + features − 1]; returns the change it caused,
   * or null. A row with a non-finite value is counted in `skipped` and changes nothing.
   */
  observe(values: ArrayLike<number>, offset = 0): DriftChange | null {
    if (!this.window.push(values, offset)) {
      this.skipped++;
      return null;
    }
    this.readings++;
    if (this.window.filled < this.window.window) return null;
    if (++this.sinceEvaluation < this.options.evaluateEvery) return null;
    this.sinceEvaluation = 0;
    return this.evaluate();
  }

  /** Takes `rows` rows of a row-major matrix; returns the changes in order. */
  observeRows(values: ArrayLike<number>, rows: number): DriftChange[] {
    const f = this.featureNames.length;
    const changes: DriftChange[] = [];
    for (let r = 0; r < rows; r++) {
      const c = this.observe(values, r * f);
      if (c !== null) changes.push(c);
    }
    return changes;
  }

  private evaluate(): DriftChange | null {
    const before = this.level;
    let changed: number[] | null = null;
    for (let j = 0; j < this.featureNames.length; j++) {
      const psi = this.window.psi(j);
      this.psi[j] = psi;
      const target = this.targetLevel(this.levels[j], psi);
      if (target === this.levels[j]) {
        this.pendingRuns[j] = 0;
        continue;
      }
      this.pendingRuns[j] = this.pending[j] === target ? this.pendingRuns[j] + 1 : 1;
      this.pending[j] = target;
      if (this.pendingRuns[j] < this.options.dwell) continue;
      this.levels[j] = target;
      this.pendingRuns[j] = 0;
      (changed ??= []).push(j);
    }
    if (changed === null) return null;
    const feature = (j: number): FeatureDrift => ({ name: this.featureNames[j], psi: this.psi[j], level: DRIFT_LEVELS[this.levels[j]] });
    const moved: FeatureDrift[] = [];
    for (let j = 0; j < this.levels.length; j++) if (this.levels[j] > 0) moved.push(feature(j));
    moved.sort((a, b) => b.psi - a.psi);
    return { reading: this.readings, from: before, to: this.level, changed: changed.map(feature), moved };
  }

  /** The level a feature at `current` should take at this PSI, with the hysteresis band. */
  private targetLevel(current: number, psi: number): number {
    const { moderate, major, exitRatio } = this.options;
    if (psi >= major || (current === 2 && psi >= major * exitRatio)) return 2;
    if (psi >= moderate || (current >= 1 && psi >= moderate * exitRatio)) return 1;
    return 0;
  }
}

export function validateMonitorOptions(o: PsiMonitorOptions): PsiMonitorOptions {
  const int = (name: string, v: number, min: number) => {
    if (!Number.isInteger(v) || v < min) throw new ConfigError(name, `must be an integer ≥ ${min}, got ${v}`);
  };
  int("window", o.window, 1);
  int("evaluateEvery", o.evaluateEvery, 1);
  int("dwell", o.dwell, 1);
  if (!(o.moderate > 0 && Number.isFinite(o.moderate))) throw new ConfigError("moderate", `must be a PSI > 0, got ${o.moderate}`);
  if (!(o.major > o.moderate && Number.isFinite(o.major)))
    throw new ConfigError("major", `must be a PSI above moderate (${o.moderate}), got ${o.major}`);
  if (!(o.exitRatio > 0 && o.exitRatio <= 1)) throw new ConfigError("exitRatio", `must be in (0, 1], got ${o.exitRatio}`);
  return o;
}
