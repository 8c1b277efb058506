/**
 * The Page–Hinkley test for a change in the mean of a scalar stream (the prediction residual where
 * ground truth arrives, else the model's score), two-sided.
 *
 * Source: E. S. Page, "Continuous inspection schemes", Biometrika 41, 1954; D. V. Hinkley,
 * "Inference about the change-point from cumulative sum tests", Biometrika 58, 1971; in the form
 * used for data streams by Gama, Sebastião & Rodrigues, "On evaluating stream learning algorithms",
 * Machine Learning 90, 2013 (§4.1) — the form of River's and scikit-multiflow's PageHinkley:
 *
 *   zₜ = xₜ / σ                                 readings in units of the stream's spread
 *   z̄ₜ = (1/t) Σ_{s ≤ t} z_s                    running mean since the last reset
 *   mₜ = Σ_{s ≤ t} (z_s − z̄_s − δ),  Mₜ = min_{s ≤ t} m_s     increase: alarm when mₜ − Mₜ > λ
 *   uₜ = Σ_{s ≤ t} (z_s − z̄_s + δ),  Uₜ = max_{s ≤ t} u_s     decrease: alarm when Uₜ − uₜ > λ
 *
 * with no alarm before `minReadings` readings since the last reset, and every sum reset after an
 * alarm (a new regime starts). mₜ − Mₜ is a CUSUM of zₜ − z̄ₜ with reference value δ.
 *
 * Parameters (σ units, so one setting serves residuals in cycles and scores in (0, 1]):
 * - `delta` δ = 0.5: the change in mean, in σ, the test is tuned for is 2δ = 1σ (Page's reference
 *   value k = δ of the classic CUSUM, Montgomery, "Introduction to Statistical Quality Control", ch. 9);
 * - `lambda` λ = 20: the alarm threshold. By Siegmund's approximation ("Sequential Analysis",
 *   Springer 1985) the in-control run length of one side is (e^{2δb} − 2δb − 1)/(2δ²),
 *   b = λ + 1.166: 3·10⁹ readings per side for δ = 0.5, λ = 20 — an in-control stream of 10⁶
 *   readings alarms with probability < 10⁻³. The delay after a shift of μσ (μ > δ) is about
 *   b / (μ − δ) readings (Wald's approximation): ≈ 42 for 1σ, ≈ 14 for 2σ.
 * - `minReadings` = 100: no alarm before; when `scale` is not given, σ is the standard deviation of
 *   these first readings (then frozen until the next reset, so a change does not inflate it).
 * - `scale` σ: the stream's standard deviation when known (the RUL model's residual σ on held-out
 *   units, metadata linewatch.residual_sigma).
 * The readings must be roughly independent: the run lengths above assume it. Residuals of one
 * machine's consecutive predictions are strongly autocorrelated; feed one per unit (e.g. its mean
 * residual when its failure is known) or means of batches (docs/drift.md).
 */
import { ConfigError } from "../../engine/core/mod.js";

export interface PageHinkleyOptions {
  delta: number;
  lambda: number;
  minReadings: number;
  /** σ of the stream; undefined: estimated from the first minReadings readings after each reset. */
  scale?: number;
}

export const DEFAULT_PAGE_HINKLEY_OPTIONS: Readonly<PageHinkleyOptions> = Object.freeze({ delta: 0.5, lambda: 20, minReadings: 100 });

export type ChangeDirection = "increase" | "decrease";

export interface MeanChange {
  direction: ChangeDirection;
  /** Readings taken since the previous reset when the alarm came (the reset follows). */
  readingsSinceReset: number;
  /** The statistic that crossed λ: mₜ − Mₜ or Uₜ − uₜ, in σ. */
  statistic: number;
  /** Running mean before the alarm, in the stream's own units, and the σ used. */
  mean: number;
  scale: number;
}

export class PageHinkley {
  readonly options: Readonly<PageHinkleyOptions>;
  /** Readings taken since the last reset. */
  readings = 0;
  /** Non-finite readings refused (counted, not taken). */
  skipped = 0;
  private mean = 0;
  private scale = NaN;
  private up = 0;
  private upMin = 0;
  private down = 0;
  private downMax = 0;
  /** Readings held before σ is known (only when no scale was given). */
  private readonly warmup: Float64Array;

  constructor(options: Partial<PageHinkleyOptions> = {}) {
    this.options = Object.freeze(validatePageHinkley({ ...DEFAULT_PAGE_HINKLEY_OPTIONS, ...options }));
    this.warmup = new Float64Array(this.options.scale === undefined ? this.options.minReadings : 0);
    this.reset();
  }

  /** The statistics for an increase (mₜ − Mₜ) and a decrease (Uₜ − uₜ), in σ; 0 until σ is known. */
  get statistics(): { increase: number; decrease: number } {
    return { increase: this.up - this.upMin, decrease: this.downMax - this.down };
  }

  /** Takes one reading; returns the change it reveals (and resets), or null. */
  update(x: number): MeanChange | null {
    if (!Number.isFinite(x)) {
      this.skipped++;
      return null;
    }
    if (Number.isNaN(this.scale)) {
      this.warmup[this.readings++] = x;
      if (this.readings < this.options.minReadings) return null;
      this.scale = spread(this.warmup);
      // Replay the held readings through the sums now that σ is known.
      this.readings = 0;
      this.mean = 0;
      for (const v of this.warmup) this.step(v);
      return null;
    }
    this.step(x);
    if (this.readings < this.options.minReadings) return null;
    const { increase, decrease } = this.statistics;
    if (increase <= this.options.lambda && decrease <= this.options.lambda) return null;
    const change: MeanChange = {
      direction: increase > this.options.lambda ? "increase" : "decrease",
      readingsSinceReset: this.readings,
      statistic: Math.max(increase, decrease),
      mean: this.mean,
      scale: this.scale,
    };
    this.reset();
    return change;
  }

  /** Starts over: sums, running mean and (when estimated) σ. */
  reset(): void {
    this.readings = 0;
    this.mean = 0;
    this.up = 0;
    this.upMin = 0;
    this.down = 0;
    this.downMax = 0;
    this.scale = this.options.scale ?? NaN;
  }

  private step(x: number): void {
    this.readings++;
    this.mean += (x - this.mean) / this.readings;
    const dev = (x - this.mean) / this.scale;
    this.up += dev - this.options.delta;
    if (this.up < this.upMin) this.upMin = this.up;
    this.down += dev + this.options.delta;
    if (this.down > this.downMax) this.downMax = this.down;
  }
}

/** Sample standard deviation of the held readings; a constant warm-up (σ = 0) takes 10⁻⁹·max(1, |mean|), so any later change alarms. */
function spread(xs: Float64Array): number {
  let mean = 0;
  for (let i = 0; i < xs.length; i++) mean += (xs[i] - mean) / (i + 1);
  let ss = 0;
  for (const v of xs) ss += (v - mean) ** 2;
  const sd = Math.sqrt(ss / Math.max(1, xs.length - 1));
  return sd > 0 ? sd : 1e-9 * Math.max(1, Math.abs(mean));
}

export function validatePageHinkley(o: PageHinkleyOptions): PageHinkleyOptions {
  if (!(o.delta >= 0 && Number.isFinite(o.delta))) throw new ConfigError("delta", `must be ≥ 0 (in σ), got ${o.delta}`);
  if (!(o.lambda > 0 && Number.isFinite(o.lambda))) throw new ConfigError("lambda", `must be > 0 (in σ), got ${o.lambda}`);
  if (!Number.isInteger(o.minReadings) || o.minReadings < 2 || o.minReadings > 1_000_000)
    throw new ConfigError("minReadings", `must be an integer in 2..1000000, got ${o.minReadings}`);
  if (o.scale !== undefined && !(o.scale > 0 && Number.isFinite(o.scale)))
    throw new ConfigError("scale", `must be a σ > 0, got ${o.scale}`);
  return o;
}
