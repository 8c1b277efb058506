// Statistical process control per key: an individuals chart with limits from a baseline (or set
// from outside), Western Electric rules 1–4 and Nelson rules 1–8 over the key's last 32 values,
// a tabular CUSUM and an EWMA chart with exact time-varying limits.
//
// Outputs per record, 15 f64 (NaN = null; every field but limits_version is null until the key
// has limits):
//   cl, ucl, lcl, sigma, zone, we_mask, nelson_mask, cusum_pos, cusum_neg, cusum_alarm,
//   ewma, ewma_ucl, ewma_lcl, ewma_alarm, limits_version, mr_mask
// we_mask bit r−1 = Western Electric rule r; nelson_mask bit r−1 = Nelson rule r; mr_mask: the
// moving-range rules, bit 0 JUMP (|x − previous x| > jumpLimit·σ), bit 1 NOISY (the last
// noisyRun moving ranges all beyond 2σ), bit 2 STUCK (the last stuckRun readings each equal to the
// one before), bit 3 STEP (stepWindow w > 0: the filtered second derivative of the readings —
// the means m1, m2, m3 of the last three windows of w readings, oldest first — beyond stepLimit·σ:
// |m3 − 2·m2 + m1| > stepLimit·σ; Basseville & Nikiforov, Detection of Abrupt Changes, 1993,
// §2.1.3 "filtered derivative", here of second order so that a linear trend cancels; NaN in the
// 3w readings: no firing). A moving range needs two non-NaN values in a row; NaN breaks the runs.
// They read differences only, so a slow trend (a sensor settling after a mode change) leaves them
// as they are in control.
//
// Definitions (pinned; the reference kernels/reference/spc-reference.ts implements the same):
// - Baseline of N non-NaN records: cl = mean (Welford 1962 recurrence); sigma = sample std (n − 1,
//   Welford's M2) or mean moving range / d2, d2 = 1.128 for moving ranges of 2 (Montgomery,
//   Introduction to Statistical Quality Control, 6th ed., §6.4, individuals chart). UCL/LCL =
//   cl ± 3σ.
// - Zone: 0 on the centre line or NaN; otherwise ±1..±4, "beyond kσ" being exactly
//   x > cl + k·σ (x < cl − k·σ) in f64, so a point on a threshold is not beyond it.
// - Rules (Western Electric Statistical Quality Control Handbook, 1956; Nelson, "The Shewhart
//   control chart — tests for special causes", J. Quality Technology 16(4), 1984): evaluated at
//   every record once limits exist, over the history zoned with the current limits; a rule fires
//   at every record that completes its pattern (no reset after a signal); zone-0 and NaN points
//   break side runs and the 1σ runs, NaN breaks the trend and alternation runs.
// - CUSUM: Montgomery §9.1 tabular form in data units, K = kσ, H = hσ:
//   C⁺ = max(0, x − (cl + K) + C⁺), C⁻ = max(0, (cl − K) − x + C⁻); alarm when either > H.
// - EWMA: Montgomery §9.2, z_i = λx_i + (1 − λ)z_{i−1}, z_0 = cl, limits
//   cl ± Lσ·√(λ/(2 − λ)·(1 − (1 − λ)^{2i})); alarm when z is strictly outside.
// CUSUM and EWMA restart at every limits change; NaN records leave them (and the baseline) as
// they were.
// - Tracked centre line (trackRecords T > 0; off by default): after each point the centre line
//   follows the process as double exponential smoothing with discount ω = 1 − 1/T, in Holt's
//   error-correction form: level gain 1 − ω² as Brown's, trend gain (1 − ω)²/16 — a quarter of
//   Brown's rate, the trend learned over four times the level's span, so a disturbance (a noise
//   burst) leaves little trend behind to carry the line off afterwards. The centre line is the
//   one-step forecast, so a slow process cycle leaves no lag (Montgomery §10.4: an EWMA forecast
//   as a moving centre line, here with a trend term). The error fed back is winsorized at ±3σ so
//   one outlier moves the line by at most 3σ·(1 − ω²) and a fault is followed only slowly. While
//   the CUSUM or the EWMA chart signals on one side, the line holds still (trend kept, not
//   applied) for at most trackHold records: a shift is not learned while it is being reported,
//   and a change that persists longer is accepted as the new level. A hold starts on a signal
//   after HOLD_QUIET quiet records. A signal that comes sooner continues the hold it interrupted
//   when it is on the same side (a slow drift's signal flickers at its onset; the hold's count
//   goes on, so trackHold still bounds it), and is followed, not held, when it is on the other
//   side (the process came back past a line that had partly followed it). σ stays the baseline's.
// - Gaps (trackGap > 0, with a tracked line): a key whose records pause for longer than trackGap
//   (in the time column's units; e.g. a chart per operating mode while the machine is in another
//   mode) comes back to a process that moved on without it. Its line restarts: the next
//   RECENTRE_RECORDS non-NaN records are shown against their running mean and judged by no rule
//   or chart; then the centre line is their mean, the trend 0, CUSUM and EWMA restart, the history
//   is re-zoned, and no hold starts before HOLD_QUIET quiet records. The limits version stays. Each point is zoned against the centre line in force when it arrived;
//   a limits change re-zones the history with the new limits.
// - CUSUM ceiling (cusumCap c > 0): C± ≤ c·H, so after a long shift the chart forgets it within
//   about c·h/k records instead of working off the whole sum.
// - Baseline ties (tiesMax < 1): a baseline whose share of tied moving ranges exceeds tiesMax is
//   discarded and collected again — a stuck sensor or a reading held at a physical limit is no
//   basis for σ (Wheeler's "chunky data": too few distinct values for an individuals chart). A
//   moving range ties when it is 0 or at most NEAR_TIE_SHARE (1 %) of the mean of the baseline's
//   moving ranges before it (a reading held at a limit while a slow ramp lifts it).
// - Censored baseline (Steiner & MacKay, "Monitoring processes with highly censored data",
//   J. Quality Technology 32, 2000): a baseline with too many ties only because readings are
//   held at its minimum C (a physical limit: a line stopped at 0 packs/min) — the ties among the
//   other readings within tiesMax, the readings at C at least 2 and at most CENSORED_SHARE_MAX of
//   the baseline — is a left-censored normal sample, not discarded. μ and σ are its maximum
//   likelihood estimates, by CENSORED_EM_ITERATIONS steps of the EM algorithm (Dempster, Laird &
//   Rubin, JRSS B 39, 1977) from the sample mean and std: each step replaces the censored
//   readings' sufficient statistics by their expectations under the truncated normal X ≤ C,
//   E[X | X ≤ C] = μ − σ·r and Var[X | X ≤ C] = σ²(1 − c·r − r²), c = (C − μ)/σ, r = φ(c)/Φ(c)
//   (the truncated normal's moments; Johnson, Kotz & Balakrishnan, Continuous Univariate
//   Distributions 1, 2nd ed., ch. 13). cl = μ̂, σ = σ̂, and from then on every reading x ≤ C —
//   and the history's — is charted as its conditional expected value μ̂ − σ̂·r(ĉ) (Steiner &
//   MacKay's CEV): the charted readings keep the normal's upper tail and their mean, their lower
//   tail ends at the CEV. spcSetLimits and a baseline without censoring chart readings as they
//   are. Φ and φ here rest on an exp of basic arithmetic (expOf), so the reference gets the same bits.
//
// Run counters instead of window scans: each rule's pattern is a run ending at the newest point
// (the same-side run, the 1σ runs, the monotone run, the alternating run), so a counter per run,
// saturating at 32 (the longest run a rule may ask for), answers every rule in O(1). The
// zone-dependent counters are rebuilt from the 32-value history whenever limits change (O(32)
// per change), which is what "history is re-zoned with the new limits" requires. WE2 and WE3
// read masks of the history's zones (bit j: the point j records back beyond 2σ, or 1σ, on one
// side), rebuilt with the counters: k of the last n on a side is popcnt(mask & (2^n − 1)) ≥ k.
//
// The kernel allocates nothing and keeps no globals: every byte it touches is in the state
// block, the input columns or the output rows the caller passes.

/** History length: the longest run any rule may be configured to (validated on the TS side). */
const HIST_CAP: i32 = 32;
/** Quiet records before a CUSUM/EWMA signal may hold the tracked centre line again. */
const HOLD_QUIET: i32 = 100;
/** Records after a gap whose mean restarts the tracked centre line. */
const RECENTRE_RECORDS: i32 = 50;
/** NOISY counts moving ranges beyond this many σ. */
const NOISY_SIGMAS: f64 = 2;
/**
 * A baseline's moving range counts as a tie when it is 0 or at most this share of the mean moving
 * range before it: readings held at a physical limit (a line stopped at 0 packs/min) while a slow
 * fault ramp lifts them differ by far less than the noise, and are no basis for σ either. For
 * continuous normal readings P(|MR| ≤ 0.01·E|MR|) ≈ 0.6 %, far below any tiesMax in use.
 */
const NEAR_TIE_SHARE: f64 = 0.01;
/**
 * (1 − λ)^{2i} stops shrinking once it is at most 2^−54: from there on 1 − (1 − λ)^{2i} rounds to
 * 1 exactly (2^−54 is half an ulp of 1 below it, and the tie goes to the even 1), so the EWMA limits
 * are the same bits whether it shrinks further or not. Shrinking further would walk it into the
 * subnormals and leave it there for good (the smallest subnormal times (1 − λ)² rounds back to
 * itself for (1 − λ)² > ½), where every multiply takes the CPU a microcode assist of about a hundred
 * cycles: a key's every record after its first ~1700 under one set of limits (λ = 0.2).
 */
const DECAY_FLOOR: f64 = 5.551115123125783e-17; // 2^−54
/** d2 for moving ranges of two observations (Montgomery, Appendix Table VI). */
const D2: f64 = 1.128;
/** A censored baseline keeps at least a tenth of its readings above the censoring point. */
const CENSORED_SHARE_MAX: f64 = 0.9;
/** EM steps of the censored fit: the error shrinks by about the censored share per step. */
const CENSORED_EM_ITERATIONS: i32 = 200;

// ---- state block layout (bytes); mirrored in operators/spc/layout.ts ----
const BASE_TARGET: u32 = 0; //  i32  records the baseline in progress needs
const SIGMA_METHOD: u32 = 4; // i32  0 = sample std, 1 = mean moving range / d2
const WE4_RUN: u32 = 8; //      i32  run lengths of the run rules
const N2_RUN: u32 = 12;
const N3_RUN: u32 = 16;
const N4_RUN: u32 = 20;
const N7_RUN: u32 = 24;
const N8_RUN: u32 = 28;
const HAS_LIMITS: u32 = 32; //  i32  0/1
const COLLECTING: u32 = 36; //  i32  0/1: a baseline is in progress
const BASE_COUNT: u32 = 40; //  i32  non-NaN records in the baseline so far
const HIST_LEN: u32 = 44; //    i32  values in the history ring (≤ HIST_CAP)
const HIST_NEXT: u32 = 48; //   i32  ring position of the next value
const SIDE_RUN: u32 = 52; //    i32  +n: last n points above cl, −n: below; 0 after a zone-0 point
const IN1_RUN: u32 = 56; //     i32  last points with |zone| = 1
const OUT1_RUN: u32 = 60; //    i32  last points with |zone| ≥ 2
const TREND_LEN: u32 = 64; //   i32  points in the monotone run ending at the newest point
const TREND_DIR: u32 = 68; //   i32  +1 increasing, −1 decreasing, 0 none yet
const ALT_LEN: u32 = 72; //     i32  points in the alternating run ending at the newest point
const ALT_LAST: u32 = 76; //    i32  sign of the newest difference (0: none)
const VERSION: u32 = 80; //     i32  limits_version
const LOUD: u32 = 84; //        i32  0/1: the key's last row had a rule, CUSUM or EWMA alarm set
const CUSUM_K: u32 = 88; //     f64  k (in σ)
const CUSUM_H: u32 = 96; //     f64  h (in σ)
const LAMBDA: u32 = 104; //     f64  EWMA λ
const EWMA_L: u32 = 112; //     f64  EWMA L (in σ of z)
const CL: u32 = 120; //         f64
const SIGMA: u32 = 128; //      f64
const CUSUM_POS: u32 = 136; //  f64
const CUSUM_NEG: u32 = 144; //  f64
const EWMA_Z: u32 = 152; //     f64
const EWMA_HALF: u32 = 160; //  f64  L·σ·√(λ/(2 − λ)): the EWMA limits' half-width once (1 − λ)^{2i} ≤ DECAY_FLOOR
const EWMA_DECAY: u32 = 168; // f64  (1 − λ)^{2i}
const BASE_MEAN: u32 = 176; //  f64  Welford mean of the baseline so far
const BASE_M2: u32 = 184; //    f64  Welford Σ(x − x̄)²
const BASE_MR: u32 = 192; //    f64  Σ|x_j − x_{j−1}| over the baseline so far
const BASE_PREV: u32 = 200; //  f64  the baseline's previous value
const TRACK_ALPHA: u32 = 208; // f64  centre-line tracking: level gain 1 − ω² (0: fixed centre line)
const TRACK_BETA: u32 = 216; // f64  trend gain (1 − ω)²/16
const SLOPE: u32 = 224; //      f64  the tracked centre line's trend per record
const CUSUM_CAP: u32 = 232; //  f64  ceiling of C± in multiples of H (0: none)
const TIES_MAX: u32 = 240; //   f64  most zero moving ranges a baseline may have, as a fraction
const BASE_TIES: u32 = 248; //  i32  zero moving ranges in the baseline so far
const TRACK_HOLD: u32 = 252; // i32  most records in a row the tracked line holds while a chart signals
const HOLD_RUN: u32 = 256; //   i32  records in a row the CUSUM or EWMA chart has signalled
const HOLD_SIDE: u32 = 260; //  i32  side of those signals: ±1 held, 0 none, 2 followed (not held)
const QUIET_RUN: u32 = 264; //  i32  records since the charts last signalled (saturating)
const RECENTRE_LEFT: u32 = 268; // i32 records left before the tracked line restarts after a gap
const TRACK_GAP: u32 = 272; //  f64  a pause longer than this (time units) restarts the tracked line; 0: never
const LAST_TIME: u32 = 280; //  f64  time of the key's previous record (NaN: none)
const RECENTRE_SUM: u32 = 288; // f64 sum of the values collected since the gap
const LAST_HELD: u32 = 296; // i32  side (±1) of the hold before the charts last fell silent; 0: none
const NOISY_RUN: u32 = 300; //  i32  run lengths of the moving-range rules
const STUCK_RUN: u32 = 304;
const MR_HIGH_RUN: u32 = 308; // i32 moving ranges in a row beyond NOISY_SIGMAS·σ (current σ)
const MR_ZERO_RUN: u32 = 312; // i32 moving ranges in a row of 0
const STEP_WINDOW: u32 = 316; // i32 STEP's window w (0: off)
const JUMP_LIMIT: u32 = 320; // f64  JUMP limit, in σ
const STEP_LIMIT: u32 = 328; // f64  STEP limit, in σ
const BASE_MIN: u32 = 336; //   f64  the baseline's smallest reading so far
const CENSOR_AT: u32 = 344; //  f64  censoring point C of the limits in force (NaN: readings charted as they are)
const CENSOR_CEV: u32 = 352; // f64  what a reading x ≤ C is charted as: μ − σ·φ(c)/Φ(c)
const BASE_AT_MIN: u32 = 360; // i32 baseline readings equal to BASE_MIN
const BASE_MIN_TIES: u32 = 364; // i32 of BASE_TIES, those whose reading equals BASE_MIN
const HIST: u32 = 368; //       f64 × HIST_CAP  charted values (raw, or a censored reading's CEV), ring
// Zone masks of the history, current limits: bit j = the point j records before the newest.
const UP2_MASK: u32 = HIST + <u32>HIST_CAP * 8; // u32  zone ≥ 3 (beyond cl + 2σ)
const DOWN2_MASK: u32 = UP2_MASK + 4; //            u32  zone ≤ −3
const UP1_MASK: u32 = UP2_MASK + 8; //              u32  zone ≥ 2 (beyond cl + σ)
const DOWN1_MASK: u32 = UP2_MASK + 12; //           u32  zone ≤ −2
const STATE_BYTES: i32 = <i32>UP2_MASK + 16;

export const SPC_OUT_FIELDS: i32 = 16;

// Output row offsets (bytes).
const O_CL: u32 = 0;
const O_UCL: u32 = 8;
const O_LCL: u32 = 16;
const O_SIGMA: u32 = 24;
const O_ZONE: u32 = 32;
const O_WE: u32 = 40;
const O_NELSON: u32 = 48;
const O_CPOS: u32 = 56;
const O_CNEG: u32 = 64;
const O_CALARM: u32 = 72;
const O_EWMA: u32 = 80;
const O_EUCL: u32 = 88;
const O_ELCL: u32 = 96;
const O_EALARM: u32 = 104;
const O_VERSION: u32 = 112;
const O_MR: u32 = 120;

export function spcStateBytes(): i32 {
  return (STATE_BYTES + 7) & ~7;
}

/**
 * Zeroes the block and sets the parameters. baselineN = 0: no baseline, limits come only from
 * spcSetLimits; otherwise the key's first baselineN non-NaN records form the baseline.
 * Run lengths must be ≤ 32 (the TS side validates).
 */
export function spcInit(
  state: usize, baselineN: i32, sigmaMethod: i32, k: f64, h: f64, lambda: f64, L: f64,
  we4Run: i32, n2Run: i32, n3Run: i32, n4Run: i32, n7Run: i32, n8Run: i32,
  trackRecords: f64, cusumCap: f64, tiesMax: f64, trackHold: i32, trackGap: f64,
  jumpLimit: f64, noisyRun: i32, stuckRun: i32, stepWindow: i32, stepLimit: f64,
): void {
  memory.fill(state, 0, spcStateBytes());
  store<i32>(state, sigmaMethod, SIGMA_METHOD);
  store<i32>(state, we4Run, WE4_RUN);
  store<i32>(state, n2Run, N2_RUN);
  store<i32>(state, n3Run, N3_RUN);
  store<i32>(state, n4Run, N4_RUN);
  store<i32>(state, n7Run, N7_RUN);
  store<i32>(state, n8Run, N8_RUN);
  store<f64>(state, k, CUSUM_K);
  store<f64>(state, h, CUSUM_H);
  store<f64>(state, lambda, LAMBDA);
  store<f64>(state, L, EWMA_L);
  store<f64>(state, NaN, CL);
  store<f64>(state, NaN, SIGMA);
  if (trackRecords > 0) {
    const w = 1 - 1 / trackRecords;
    store<f64>(state, 1 - w * w, TRACK_ALPHA);
    store<f64>(state, ((1 - w) * (1 - w)) / 16, TRACK_BETA);
  }
  store<f64>(state, cusumCap, CUSUM_CAP);
  store<i32>(state, trackHold, TRACK_HOLD);
  store<f64>(state, trackRecords > 0 ? trackGap : 0, TRACK_GAP);
  store<f64>(state, NaN, LAST_TIME);
  store<f64>(state, NaN, CENSOR_AT);
  store<f64>(state, tiesMax, TIES_MAX);
  store<f64>(state, jumpLimit, JUMP_LIMIT);
  store<i32>(state, noisyRun, NOISY_RUN);
  store<i32>(state, stuckRun, STUCK_RUN);
  store<i32>(state, stepWindow, STEP_WINDOW);
  store<f64>(state, stepLimit, STEP_LIMIT);
  if (baselineN > 0) startBaseline(state, baselineN);
}

/** Fixes (or replaces) the limits from the next record on; cancels a baseline in progress. */
export function spcSetLimits(state: usize, cl: f64, sigma: f64): void {
  store<i32>(state, 0, COLLECTING);
  store<f64>(state, NaN, CENSOR_AT);
  installLimits(state, cl, sigma);
}

/**
 * Collects a new baseline from the next n non-NaN records; the current limits (if any) stay in
 * force until it completes. n ≤ 0 cancels a baseline in progress.
 */
export function spcRebaseline(state: usize, n: i32): void {
  if (n > 0) startBaseline(state, n);
  else store<i32>(state, 0, COLLECTING);
}

/**
 * Processes n records of one key group. Record i belongs to the key whose state block is at
 * stateBase + slots[i] * stateStride; records of each key are taken in the order given.
 * Writes n rows of SPC_OUT_FIELDS f64 at out. Returns n. The charts are over record order;
 * `times` is read only for the gaps that restart a tracked centre line (times = 0: none).
 *
 * The event list (events ≠ 0; room for 1 + n u32): events[0] = the count m, events[1..m] = the
 * indices, ascending, of the rows that are loud — a WE or Nelson bit, the CUSUM or the EWMA alarm
 * set — or follow a loud row of the same key. Every other row is quiet after quiet: on it an
 * alert neither opens, fires nor closes, so whoever folds alerts (operators/spc/alerts.ts) visits
 * the listed rows only. The slot after the last index may hold a scratch index: the list is
 * events[0..m]. events = 0 (a caller passing seven arguments): no list.
 */
export function spcProcess(
  stateBase: usize, stateStride: i32, slots: usize, times: usize, values: usize, n: i32, out: usize, events: usize,
): i32 {
  let m: u32 = 0;
  for (let i = 0; i < n; i++) {
    const s = stateBase + <usize>load<u32>(slots + (<usize>i << 2)) * <usize>stateStride;
    const o = out + <usize>i * (<usize>SPC_OUT_FIELDS << 3);
    const loud = step(s, load<f64>(values + (<usize>i << 3)), o, times == 0 ? NaN : load<f64>(times + (<usize>i << 3)));
    if (events != 0) {
      // Without a branch on the row (loud or not is data): i goes into the next slot either way
      // and the count moves past it when the row is listed (m ≤ i, so slot m + 1 is in the room).
      store<u32>(events + (<usize>(m + 1) << 2), <u32>i);
      m += <u32>((loud | load<i32>(s, LOUD)) != 0);
    }
    store<i32>(s, loud, LOUD);
  }
  if (events != 0) store<u32>(events, m);
  return n;
}

// ---- internals ----

function startBaseline(s: usize, n: i32): void {
  store<i32>(s, 1, COLLECTING);
  store<i32>(s, n, BASE_TARGET);
  store<i32>(s, 0, BASE_COUNT);
  store<i32>(s, 0, BASE_TIES);
  store<f64>(s, 0, BASE_MEAN);
  store<f64>(s, 0, BASE_M2);
  store<f64>(s, 0, BASE_MR);
  store<f64>(s, NaN, BASE_PREV);
  store<f64>(s, Infinity, BASE_MIN);
  store<i32>(s, 0, BASE_AT_MIN);
  store<i32>(s, 0, BASE_MIN_TIES);
}

/** New limits: version + 1, CUSUM and EWMA restart, the history is re-zoned. */
function installLimits(s: usize, cl: f64, sigma: f64): void {
  store<f64>(s, sigma, SIGMA);
  store<i32>(s, 1, HAS_LIMITS);
  store<i32>(s, load<i32>(s, VERSION) + 1, VERSION);
  store<i32>(s, 0, RECENTRE_LEFT);
  restartCharts(s, cl);
  store<i32>(s, HOLD_QUIET, QUIET_RUN);
  const lambda = load<f64>(s, LAMBDA);
  // writeRow's half-width with 1 − (1 − λ)^{2i} = 1, the same operations in the same order.
  store<f64>(s, load<f64>(s, EWMA_L) * sigma * Math.sqrt(lambda / (2 - lambda) * 1.0), EWMA_HALF);
  rezone(s, cl, sigma);
}

/** The centre line at cl with no trend; CUSUM and EWMA from the start; no hold. */
function restartCharts(s: usize, cl: f64): void {
  store<f64>(s, cl, CL);
  store<f64>(s, 0, CUSUM_POS);
  store<f64>(s, 0, CUSUM_NEG);
  store<f64>(s, cl, EWMA_Z);
  store<f64>(s, 1, EWMA_DECAY);
  store<f64>(s, 0, SLOPE);
  store<i32>(s, 0, HOLD_RUN);
  store<i32>(s, 0, HOLD_SIDE);
  store<i32>(s, 0, LAST_HELD);
}

/**
 * Zone of x: 0 on cl or NaN, else side × (1 + number of thresholds cl ± kσ, k = 1..3, beyond).
 * Counted without branches (a zone is a coin toss to a branch predictor): the thresholds are
 * monotone in k for σ ≥ 0, so beyond the kσ one means beyond those below it and the count is
 * the outermost k; for σ < 0 all three lie on the other side of cl and the count is 4, as the
 * outermost test gives too.
 */
@inline function zoneOf(x: f64, cl: f64, sigma: f64): i32 {
  // Two thresholds a lane: up [cl + σ, cl + 2σ] and [cl + 3σ, cl], down the same below cl (each
  // threshold cl ± k·σ rounded as the scalar expression would be); a lane's compare is 0 or −1.
  const X = f64x2.splat(x);
  const C = f64x2.splat(cl);
  const s12 = f64x2.mul(f64x2.splat(sigma), f64x2(1, 2));
  const s3 = 3 * sigma;
  const up = i64x2.add(f64x2.gt(X, f64x2.add(C, s12)), f64x2.gt(X, f64x2.replace_lane(f64x2.splat(cl + s3), 1, cl)));
  const down = i64x2.add(f64x2.lt(X, f64x2.sub(C, s12)), f64x2.lt(X, f64x2.replace_lane(f64x2.splat(cl - s3), 1, cl)));
  const counts = i64x2.add(i64x2.shuffle(up, down, 0, 2), i64x2.shuffle(up, down, 1, 3)); // [−up, −down]
  const above = -<i32>i64x2.extract_lane(counts, 0);
  const below = <i32>i64x2.extract_lane(counts, 1);
  return select<i32>(above, select<i32>(below, 0, x < cl), x > cl);
}

/** Ring position of the value `back` records before the newest (back = 0: the newest). */
@inline function ringBack(s: usize, back: i32): i32 {
  let p = load<i32>(s, HIST_NEXT) - 1 - back;
  if (p < 0) p += HIST_CAP;
  return p;
}

/** Updates the side and 1σ run counters and the zone masks with the zone z of the newest point. */
@inline function advanceZoneRuns(s: usize, z: i32): void {
  // The four masks (UP2, DOWN2, UP1, DOWN1 in a row) shifted and fed as lanes: [z, −z, z, −z] ≥ [3, 3, 2, 2].
  const beyond = i32x4.ge_s(i32x4.replace_lane(i32x4.replace_lane(i32x4.splat(z), 1, -z), 3, -z), i32x4(3, 3, 2, 2));
  v128.store(s, v128.or(i32x4.shl(v128.load(s, UP2_MASK), 1), i32x4.shr_u(beyond, 31)), UP2_MASK);
  const side = load<i32>(s, SIDE_RUN);
  const above = select<i32>(min(side + 1, HIST_CAP), 1, side > 0);
  const below = select<i32>(max(side - 1, -HIST_CAP), -1, side < 0);
  store<i32>(s, select<i32>(above, select<i32>(below, 0, z < 0), z > 0), SIDE_RUN);
  const a = abs(z);
  store<i32>(s, select<i32>(min(load<i32>(s, IN1_RUN) + 1, HIST_CAP), 0, a == 1), IN1_RUN);
  store<i32>(s, select<i32>(min(load<i32>(s, OUT1_RUN) + 1, HIST_CAP), 0, a >= 2), OUT1_RUN);
}

/**
 * Zones every history value with (cl, sigma) and rebuilds the counters that depend on the limits
 * (the zone runs, and the run of moving ranges beyond NOISY_SIGMAS·σ), oldest first.
 */
function rezone(s: usize, cl: f64, sigma: f64): void {
  const len = load<i32>(s, HIST_LEN);
  store<i32>(s, 0, SIDE_RUN);
  store<i32>(s, 0, IN1_RUN);
  store<i32>(s, 0, OUT1_RUN);
  store<i32>(s, 0, MR_HIGH_RUN);
  store<u32>(s, 0, UP2_MASK);
  store<u32>(s, 0, DOWN2_MASK);
  store<u32>(s, 0, UP1_MASK);
  store<u32>(s, 0, DOWN1_MASK);
  let prev: f64 = NaN;
  for (let back = len - 1; back >= 0; back--) {
    const p = ringBack(s, back);
    const x = load<f64>(s + HIST + (<usize>p << 3));
    const z = zoneOf(x, cl, sigma);
    advanceZoneRuns(s, z);
    advanceHighRangeRun(s, prev, x, sigma);
    prev = x;
  }
}

/** The run of moving ranges beyond NOISY_SIGMAS·σ after x (prev the value before it; NaN breaks the run). */
@inline function advanceHighRangeRun(s: usize, prev: f64, x: f64, sigma: f64): void {
  const high = Math.abs(x - prev) > NOISY_SIGMAS * sigma; // false when either is NaN
  store<i32>(s, select<i32>(min(load<i32>(s, MR_HIGH_RUN) + 1, HIST_CAP), 0, high), MR_HIGH_RUN);
}

/**
 * Updates the monotone and alternating run counters with x (prev = the previous value or NaN):
 * d = sign(x − prev), 0 when equal or either is NaN. A NaN x ends both runs (length 0), d = 0
 * after a value starts them again (length 1), and a d that continues a run lengthens it, else a
 * new run of 2 begins. Without branches: d is a coin toss to a branch predictor.
 */
@inline function advanceShapeRuns(s: usize, prev: f64, x: f64): void {
  store<i32>(s, select<i32>(min(load<i32>(s, MR_ZERO_RUN) + 1, HIST_CAP), 0, x == prev), MR_ZERO_RUN); // NaN: not equal
  const d: i32 = <i32>(x > prev) - <i32>(x < prev);
  const restart: i32 = <i32>(x == x); // no direction: 1 after a value, 0 after NaN
  const trend = select<i32>(min(load<i32>(s, TREND_LEN) + 1, HIST_CAP), 2, d == load<i32>(s, TREND_DIR));
  const alt = select<i32>(min(load<i32>(s, ALT_LEN) + 1, HIST_CAP), 2, load<i32>(s, ALT_LAST) == -d);
  store<i32>(s, select<i32>(trend, restart, d != 0), TREND_LEN);
  store<i32>(s, select<i32>(alt, restart, d != 0), ALT_LEN);
  store<i32>(s, d, TREND_DIR);
  store<i32>(s, d, ALT_LAST);
}

/**
 * The value before the newest in the history (NaN when it is empty): what a new value's moving
 * range is taken from.
 */
@inline function newestValue(s: usize): f64 {
  const prev = load<f64>(s + HIST + (<usize>((load<i32>(s, HIST_NEXT) - 1) & (HIST_CAP - 1)) << 3));
  return load<i32>(s, HIST_LEN) > 0 ? prev : NaN;
}

/**
 * Appends x (zone z; prev = newestValue before it) to the key's history ring and advances the run
 * counters; returns the history length.
 */
@inline function appendHistory(s: usize, x: f64, prev: f64, z: i32): i32 {
  const len0 = load<i32>(s, HIST_LEN);
  const p = load<i32>(s, HIST_NEXT);
  store<f64>(s + HIST + (<usize>p << 3), x);
  store<i32>(s, (p + 1) & (HIST_CAP - 1), HIST_NEXT);
  const len = min(len0 + 1, HIST_CAP);
  store<i32>(s, len, HIST_LEN);
  advanceZoneRuns(s, z);
  advanceShapeRuns(s, prev, x);
  advanceHighRangeRun(s, prev, x, load<f64>(s, SIGMA));
  return len;
}

/** What reading x is charted as: its CEV when the limits are censored at C and x ≤ C, else x. */
@inline function chartValue(s: usize, x: f64): f64 {
  return x <= load<f64>(s, CENSOR_AT) ? load<f64>(s, CENSOR_CEV) : x; // false when either is NaN
}

/** One record of the key at s: its row at o; returns 1 when the row is loud (see writeRow). */
@inline function step(s: usize, raw: f64, o: usize, t: f64): i32 {
  const x = chartValue(s, raw);
  if (load<i32>(s, HAS_LIMITS) != 0 && noteGap(s, t)) {
    recentreStep(s, x, raw, o); // a row with no rule bit or alarm
    return 0;
  }
  const hasLimits = load<i32>(s, HAS_LIMITS) != 0;
  const cl = load<f64>(s, CL);
  const sigma = load<f64>(s, SIGMA);
  const z = hasLimits ? zoneOf(x, cl, sigma) : 0;
  const prev = newestValue(s);
  const len = appendHistory(s, x, prev, z);

  let loud = 0;
  if (hasLimits) {
    if (!isNaN(x)) advanceCharts(s, x, cl, sigma);
    loud = writeRow(s, z, len, x, prev, cl, sigma, o);
    if (!isNaN(x) && load<f64>(s, TRACK_ALPHA) != 0) trackCentre(s, x, cl, sigma, signalSide(o));
  } else {
    for (let f = 0; f < SPC_OUT_FIELDS; f++) store<f64>(o + (<usize>f << 3), NaN);
    store<f64>(o, 0, O_VERSION);
  }

  if (load<i32>(s, COLLECTING) != 0 && !isNaN(raw)) addToBaseline(s, raw);
  return loud;
}

function advanceCharts(s: usize, x: f64, cl: f64, sigma: f64): void {
  const K = load<f64>(s, CUSUM_K) * sigma;
  const c = load<f64>(s, CUSUM_CAP);
  const cap = c > 0 ? c * load<f64>(s, CUSUM_H) * sigma : Infinity;
  // C⁺ and C⁻ side by side (CUSUM_NEG follows CUSUM_POS): lane 0 x − (cl + K) + C⁺, lane 1 (cl − K) − x + C⁻.
  const steps = f64x2.replace_lane(f64x2.splat(x - (cl + K)), 1, (cl - K) - x);
  v128.store(s, capped(f64x2.splat(cap), f64x2.add(steps, v128.load(s, CUSUM_POS))), CUSUM_POS);
  const lambda = load<f64>(s, LAMBDA);
  store<f64>(s, lambda * x + (1 - lambda) * load<f64>(s, EWMA_Z), EWMA_Z);
  const r = 1 - lambda;
  const decay = load<f64>(s, EWMA_DECAY);
  if (decay > DECAY_FLOOR) store<f64>(s, decay * (r * r), EWMA_DECAY);
}

/**
 * min(cap, max(0, v)) in each lane as WASM's f64.min / f64.max give it, NaN and signed zeros
 * included, by lane masks and bit selects instead of the branches those two compile to (and an
 * f64 `select` compiles to a branch too; whether C± is at 0 is a coin toss to a predictor):
 * max(0, v) is v when !(v ≤ 0) (above 0, or NaN), else +0; min(cap, m) is m when m < cap or m
 * is NaN, else cap (NaN when cap is; −0 when cap is −0 and m +0, as f64.min takes the smaller zero).
 */
@inline function capped(cap: v128, v: v128): v128 {
  const zero = f64x2.splat(0);
  const m = v128.bitselect(v, zero, v128.not(f64x2.le(v, zero)));
  return v128.bitselect(m, cap, v128.or(f64x2.lt(m, cap), f64x2.ne(m, m)));
}

/**
 * Records t; true while the key's tracked line is restarting after a gap (a gap longer than
 * trackGap since the previous record starts RECENTRE_RECORDS of collection).
 */
function noteGap(s: usize, t: f64): bool {
  const gap = load<f64>(s, TRACK_GAP);
  if (gap <= 0 || isNaN(t)) return load<i32>(s, RECENTRE_LEFT) > 0;
  const last = load<f64>(s, LAST_TIME);
  store<f64>(s, t, LAST_TIME);
  if (!isNaN(last) && t - last > gap) {
    store<i32>(s, RECENTRE_RECORDS, RECENTRE_LEFT);
    store<f64>(s, 0, RECENTRE_SUM);
  }
  return load<i32>(s, RECENTRE_LEFT) > 0;
}

/**
 * One record of the collection after a gap: into the history (zone against the running mean) and
 * the mean; a row without rule bits or alarms; the line restarts from the mean after the last.
 */
function recentreStep(s: usize, x: f64, raw: f64, o: usize): void {
  const counted = !isNaN(x);
  const left = load<i32>(s, RECENTRE_LEFT) - (counted ? 1 : 0);
  const sum = load<f64>(s, RECENTRE_SUM) + (counted ? x : 0);
  store<i32>(s, left, RECENTRE_LEFT);
  store<f64>(s, sum, RECENTRE_SUM);
  const n = RECENTRE_RECORDS - left;
  const cl = n > 0 ? sum / <f64>n : load<f64>(s, CL);
  const sigma = load<f64>(s, SIGMA);
  const z = zoneOf(x, cl, sigma);
  appendHistory(s, x, newestValue(s), z);
  store<f64>(o, cl, O_CL);
  store<f64>(o, cl + 3 * sigma, O_UCL);
  store<f64>(o, cl - 3 * sigma, O_LCL);
  store<f64>(o, sigma, O_SIGMA);
  store<f64>(o, <f64>z, O_ZONE);
  store<f64>(o, 0, O_WE);
  store<f64>(o, 0, O_NELSON);
  store<f64>(o, 0, O_CPOS);
  store<f64>(o, 0, O_CNEG);
  store<f64>(o, 0, O_CALARM);
  store<f64>(o, cl, O_EWMA);
  store<f64>(o, cl, O_EUCL);
  store<f64>(o, cl, O_ELCL);
  store<f64>(o, 0, O_EALARM);
  store<f64>(o, <f64>load<i32>(s, VERSION), O_VERSION);
  store<f64>(o, 0, O_MR);
  if (left == 0) {
    restartCharts(s, cl);
    rezone(s, cl, sigma);
    store<i32>(s, 0, QUIET_RUN);
  }
  if (load<i32>(s, COLLECTING) != 0 && counted) addToBaseline(s, raw);
}

/** Side the row's CUSUM and EWMA signals are on: +1 above, −1 below, 0 none, 2 both sides. */
function signalSide(o: usize): i32 {
  let side = 0;
  if (load<f64>(o, O_CALARM) == 1) side = load<f64>(o, O_CPOS) > load<f64>(o, O_CNEG) ? 1 : -1;
  if (load<f64>(o, O_EALARM) == 1) {
    const e: i32 = load<f64>(o, O_EWMA) > load<f64>(o, O_CL) ? 1 : -1;
    side = side == 0 || side == e ? e : 2;
  }
  return side;
}

/** Moves the centre line to the next one-step forecast (Brown / Holt, winsorized error). */
function trackCentre(s: usize, x: f64, cl: f64, sigma: f64, signal: i32): void {
  const alpha = load<f64>(s, TRACK_ALPHA);
  if (alpha == 0) return;
  const side = holdSideAfter(s, signal);
  if ((side == 1 || side == -1) && load<i32>(s, HOLD_RUN) <= load<i32>(s, TRACK_HOLD)) return;
  const e = min<f64>(3 * sigma, max<f64>(-3 * sigma, x - cl));
  const slope = load<f64>(s, SLOPE) + load<f64>(s, TRACK_BETA) * e;
  store<f64>(s, slope, SLOPE);
  store<f64>(s, cl + alpha * e + slope, CL);
}

/**
 * The hold state after a row whose CUSUM/EWMA signal is on side `signal` (0: none): ±1 held on
 * that side, 2 followed, 0 quiet. A signal after HOLD_QUIET quiet rows starts a new hold; one
 * sooner resumes the hold it interrupts when on the same side (a shift's signal flickers at its
 * onset), and is followed when on the other side. HOLD_RUN counts the rows of a hold, short
 * quiet gaps and all, so trackHold bounds it.
 */
function holdSideAfter(s: usize, signal: i32): i32 {
  const before = load<i32>(s, HOLD_SIDE);
  const quiet = load<i32>(s, QUIET_RUN);
  let held = load<i32>(s, HOLD_RUN);
  let side = 0;
  if (signal == 0) {
    if (before == 1 || before == -1) store<i32>(s, before, LAST_HELD);
  } else if (before == 0) {
    if (quiet >= HOLD_QUIET) {
      side = signal;
      held = 0;
    } else side = signal == load<i32>(s, LAST_HELD) ? signal : 2;
  } else side = before == signal ? signal : 2;
  if (side == 2) {
    held = 0;
    store<i32>(s, 0, LAST_HELD);
  } else if (side != 0) held++;
  store<i32>(s, signal == 0 ? min(quiet + 1, HOLD_QUIET) : 0, QUIET_RUN);
  store<i32>(s, side, HOLD_SIDE);
  store<i32>(s, held, HOLD_RUN);
  return side;
}

/**
 * The row of a record with limits: z its zone, len the history length, x its charted value, prev
 * the one before (NaN: none). Returns 1 when the row is loud (a rule bit, a moving-range bit, the
 * CUSUM or the EWMA alarm set), else 0.
 */
@inline function writeRow(s: usize, z: i32, len: i32, x: f64, prev: f64, cl: f64, sigma: f64, o: usize): i32 {
  const a = abs(z);
  const side = load<i32>(s, SIDE_RUN);
  const sideRun = abs(side);
  const n1 = a == 4;
  // WE2 / WE3: the newest point itself beyond 2σ (1σ), and 2 of 3 (4 of 5) on its side.
  const beyond2 = load<u32>(s + <usize>(z > 0 ? UP2_MASK : DOWN2_MASK));
  const beyond1 = load<u32>(s + <usize>(z > 0 ? UP1_MASK : DOWN1_MASK));
  const n5 = (a >= 3) & (len >= 3) & (popcnt(beyond2 & 7) >= 2);
  const n6 = (a >= 2) & (len >= 5) & (popcnt(beyond1 & 31) >= 4);
  // The run rules, four at a time: bit k of runs1 / runs2 is lane k's run ≥ its configured length.
  //   runs1: WE4 (same-side run), N2 (same-side run), N3 (trend), N4 (alternation)
  //   runs2: N7 (|zone| = 1 run), N8 (|zone| ≥ 2 run), NOISY (high moving ranges), STUCK (zero ones)
  const runs1 = i32x4.bitmask(i32x4.ge_s(
    i32x4.replace_lane(i32x4.replace_lane(i32x4.splat(sideRun), 2, load<i32>(s, TREND_LEN)), 3, load<i32>(s, ALT_LEN)),
    v128.load(s, WE4_RUN), // WE4_RUN, N2_RUN, N3_RUN, N4_RUN
  ));
  const runs2 = i32x4.bitmask(i32x4.ge_s(
    i64x2.replace_lane(i64x2.splat(load<i64>(s, IN1_RUN)), 1, load<i64>(s, MR_HIGH_RUN)), // IN1, OUT1, MR_HIGH, MR_ZERO
    i64x2.replace_lane(i64x2.splat(load<i64>(s, N7_RUN)), 1, load<i64>(s, NOISY_RUN)), // N7, N8, NOISY, STUCK
  ));
  const weMask = <i32>n1 | (<i32>n5 << 1) | (<i32>n6 << 2) | ((runs1 & 1) << 3);
  const jump = Math.abs(x - prev) > load<f64>(s, JUMP_LIMIT) * sigma;
  const step = stepFires(s, len, sigma);
  const mrMask = <i32>jump | ((runs2 >> 1) & 6) | (<i32>step << 3);
  const nelsonMask = <i32>n1 | (runs1 & 14) | (<i32>n5 << 4) | (<i32>n6 << 5) | ((runs2 & 3) << 6);

  const H = load<f64>(s, CUSUM_H) * sigma;
  const cpos = load<f64>(s, CUSUM_POS);
  const cneg = load<f64>(s, CUSUM_NEG);
  const lambda = load<f64>(s, LAMBDA);
  const ez = load<f64>(s, EWMA_Z);
  const decay = load<f64>(s, EWMA_DECAY);
  const half = decay <= DECAY_FLOOR
    ? load<f64>(s, EWMA_HALF)
    : load<f64>(s, EWMA_L) * sigma * Math.sqrt(lambda / (2 - lambda) * (1 - decay));
  const eucl = cl + half;
  const elcl = cl - half;

  const cusum = v128.load(s, CUSUM_POS); // C⁺, C⁻
  const cusumAlarm = (cpos > H) | (cneg > H);
  const ewmaAlarm = (ez > eucl) | (ez < elcl);
  // The row in pairs of lanes: (cl, ucl), (lcl, sigma), (zone, we_mask), (nelson_mask, C⁺),
  // (C⁻, cusum_alarm), (ewma, ewma_ucl), (ewma_lcl, ewma_alarm), (limits_version, mr_mask).
  const three = 3 * sigma;
  v128.store(o, f64x2.replace_lane(f64x2.splat(cl), 1, cl + three), O_CL);
  v128.store(o, f64x2.replace_lane(f64x2.splat(cl - three), 1, sigma), O_LCL);
  v128.store(o, f64x2.convert_low_i32x4_s(i32x4.replace_lane(i32x4.splat(z), 1, weMask)), O_ZONE);
  const flags = f64x2.convert_low_i32x4_s(i32x4.replace_lane(i32x4.splat(nelsonMask), 1, cusumAlarm));
  v128.store(o, i64x2.shuffle(flags, cusum, 0, 2), O_NELSON);
  v128.store(o, i64x2.shuffle(cusum, flags, 1, 3), O_CNEG);
  v128.store(o, f64x2.replace_lane(f64x2.splat(ez), 1, eucl), O_EWMA);
  v128.store(o, f64x2.replace_lane(f64x2.splat(elcl), 1, <f64>ewmaAlarm), O_ELCL);
  v128.store(o, f64x2.convert_low_i32x4_s(i32x4.replace_lane(i32x4.splat(load<i32>(s, VERSION)), 1, mrMask)), O_VERSION);
  return <i32>((weMask | nelsonMask | mrMask | <i32>cusumAlarm | <i32>ewmaAlarm) != 0);
}

/**
 * STEP: |m3 − 2·m2 + m1| > stepLimit·σ over the newest 3w values (m3 the newest window's mean),
 * each window summed newest first; false when off, with fewer than 3w values, or NaN among them.
 */
function stepFires(s: usize, len: i32, sigma: f64): bool {
  const w = load<i32>(s, STEP_WINDOW);
  if (w <= 0 || len < 3 * w) return false;
  let s3: f64 = 0;
  let s2: f64 = 0;
  let s1: f64 = 0;
  for (let back = 0; back < w; back++) {
    s3 += load<f64>(s + HIST + (<usize>ringBack(s, back) << 3));
    s2 += load<f64>(s + HIST + (<usize>ringBack(s, back + w) << 3));
    s1 += load<f64>(s + HIST + (<usize>ringBack(s, back + 2 * w) << 3));
  }
  const d = (s3 - 2 * s2 + s1) / <f64>w;
  return Math.abs(d) > load<f64>(s, STEP_LIMIT) * sigma; // false when d is NaN
}

/** Welford's mean and M2, the moving-range sum and ties; installs the limits when the baseline is full. */
function addToBaseline(s: usize, x: f64): void {
  const count = load<i32>(s, BASE_COUNT) + 1;
  store<i32>(s, count, BASE_COUNT);
  const mean0 = load<f64>(s, BASE_MEAN);
  const mean = mean0 + (x - mean0) / <f64>count;
  store<f64>(s, mean, BASE_MEAN);
  store<f64>(s, load<f64>(s, BASE_M2) + (x - mean0) * (x - mean), BASE_M2);
  noteMinimum(s, x);
  if (count > 1) {
    const range = Math.abs(x - load<f64>(s, BASE_PREV));
    const before = load<f64>(s, BASE_MR);
    store<f64>(s, before + range, BASE_MR);
    if (range == 0 || (count > 2 && range <= NEAR_TIE_SHARE * before / <f64>(count - 2))) {
      store<i32>(s, load<i32>(s, BASE_TIES) + 1, BASE_TIES);
      if (x == load<f64>(s, BASE_MIN)) store<i32>(s, load<i32>(s, BASE_MIN_TIES) + 1, BASE_MIN_TIES);
    }
  }
  store<f64>(s, x, BASE_PREV);
  const target = load<i32>(s, BASE_TARGET);
  if (count < target) return;
  const m = <f64>(count - 1);
  const tiesMax = load<f64>(s, TIES_MAX) * m;
  if (<f64>load<i32>(s, BASE_TIES) > tiesMax) {
    if (censoredBaseline(s, count, tiesMax)) {
      store<i32>(s, 0, COLLECTING);
      fitCensored(s, count);
    } else startBaseline(s, target);
    return;
  }
  store<i32>(s, 0, COLLECTING);
  store<f64>(s, NaN, CENSOR_AT);
  const sigma = load<i32>(s, SIGMA_METHOD) == 1
    ? load<f64>(s, BASE_MR) / m / D2
    : Math.sqrt(load<f64>(s, BASE_M2) / m);
  installLimits(s, mean, sigma);
}

/** The baseline's minimum and the readings equal to it; the ties at a minimum that gives way stop counting as its. */
function noteMinimum(s: usize, x: f64): void {
  const low = load<f64>(s, BASE_MIN);
  if (x < low) {
    store<f64>(s, x, BASE_MIN);
    store<i32>(s, 1, BASE_AT_MIN);
    store<i32>(s, 0, BASE_MIN_TIES);
  } else if (x == low) store<i32>(s, load<i32>(s, BASE_AT_MIN) + 1, BASE_AT_MIN);
}

/** A full baseline of `count` readings whose ties beyond tiesMax are readings held at its minimum (see the header). */
function censoredBaseline(s: usize, count: i32, tiesMax: f64): bool {
  const atMin = load<i32>(s, BASE_AT_MIN);
  return <f64>(load<i32>(s, BASE_TIES) - load<i32>(s, BASE_MIN_TIES)) <= tiesMax && atMin >= 2 &&
    <f64>atMin <= CENSORED_SHARE_MAX * <f64>count;
}

/**
 * μ and σ of a baseline left-censored at its minimum C by EM (see the header), from the Welford
 * mean and M2 of all `count` readings: the uncensored readings' mean and sum of squares follow by
 * taking the readings at C out. Installs them as limits censored at C.
 */
function fitCensored(s: usize, count: i32): void {
  const n = <f64>count;
  const C = load<f64>(s, BASE_MIN);
  const nc = <f64>load<i32>(s, BASE_AT_MIN);
  const nu = n - nc;
  const mean = load<f64>(s, BASE_MEAN);
  const m2 = load<f64>(s, BASE_M2);
  const xu = (n * mean - nc * C) / nu;
  const ssu = max<f64>(0, m2 + n * (mean - xu) * (mean - xu) - nc * (C - xu) * (C - xu));
  let mu = mean;
  let sigma = Math.sqrt(m2 / (n - 1));
  for (let i = 0; i < CENSORED_EM_ITERATIONS; i++) {
    const c = (C - mu) / sigma;
    const r = millsBelow(c);
    const e1 = mu - sigma * r;
    const v1 = sigma * sigma * (1 - c * r - r * r);
    const next = (nu * xu + nc * e1) / n;
    const ss = ssu + nu * (xu - next) * (xu - next) + nc * (v1 + (e1 - next) * (e1 - next));
    mu = next;
    sigma = Math.sqrt(ss / n);
  }
  store<f64>(s, C, CENSOR_AT);
  store<f64>(s, mu - sigma * millsBelow((C - mu) / sigma), CENSOR_CEV);
  // The history as it would have been charted (installLimits zones it again).
  const len = load<i32>(s, HIST_LEN);
  for (let back = 0; back < len; back++) {
    const p = s + HIST + (<usize>ringBack(s, back) << 3);
    store<f64>(p, chartValue(s, load<f64>(p)));
  }
  installLimits(s, mu, sigma);
}

/**
 * φ(c)/Φ(c): the standard normal's density over its distribution function (the lower tail's
 * inverse Mills ratio). With x = −c/√2, Φ(c) = erfc(x)/2; from x = 2.5 on erfc(x) =
 * e^(−x²)/(√π·t) with t the continued fraction of A&S 7.1.14, and φ(c) = e^(−x²)/√(2π), so the
 * ratio is √2·t without the exponential (which underflows far out).
 */
function millsBelow(c: f64): f64 {
  const x = -c * SQRT1_2;
  if (x >= 2.5) return SQRT2 * erfcFraction(x);
  return (expOf(-0.5 * c * c) * INV_SQRT_2PI) / (0.5 * erfcOf(x));
}

/** t of erfc(x) = e^(−x²)/(√π·t), A&S 7.1.14 evaluated backwards (x ≥ 2.5). */
function erfcFraction(x: f64): f64 {
  let t = x;
  for (let n = 120; n >= 1; n--) t = x + <f64>n / 2 / t;
  return t;
}

const INV_SQRT_2PI: f64 = 0.3989422804014327;
const SQRT1_2: f64 = 0.7071067811865476;
const SQRT2: f64 = 1.4142135623730951;
const INV_SQRT_PI: f64 = 0.5641895835477563;
const LOG2E: f64 = 1.4426950408889634;
// ln 2 in two parts (Cody & Waite): LN2_HI ends in zero bits, so k·LN2_HI is exact for |k| < 2^11.
const LN2_HI: f64 = 0.6931471803691238;
const LN2_LO: f64 = 1.9082149292705877e-10;

/**
 * e^x from basic arithmetic alone, so WASM and the TypeScript reference give the same bits:
 * x = k·ln 2 + r (Cody–Waite reduction, |r| ≤ 0.35), e^r by its Taylor series to r^14/14!
 * (Horner; truncation below 4e-18 relative), times 2^k from its bits in two factors. 0 below −708,
 * ∞ above 709.
 */
function expOf(x: f64): f64 {
  if (x < -708) return 0;
  if (x > 709) return Infinity;
  const k = Math.floor(x * LOG2E + 0.5);
  const r = x - k * LN2_HI - k * LN2_LO;
  let p: f64 = 1;
  for (let i = 14; i >= 1; i--) p = 1 + (p * r) / <f64>i;
  const half = <i64>Math.floor(k / 2);
  const rest = <i64>k - half;
  return p * reinterpret<f64>((half + 1023) << 52) * reinterpret<f64>((rest + 1023) << 52);
}

/** erfc(x) as operators/normal.ts computes it (A&S 7.1.6 series below 2.5, the 7.1.14 continued fraction beyond), with expOf. */
function erfcOf(x: f64): f64 {
  if (x < 0) return 2 - erfcOf(-x);
  if (x == Infinity) return 0;
  if (x < 2.5) {
    let term = x;
    let sum = x;
    const x2 = 2 * x * x;
    for (let n = 1; n < 200 && term > 1e-17 * sum; n++) {
      term *= x2 / <f64>(2 * n + 1);
      sum += term;
    }
    return 1 - 2 * INV_SQRT_PI * expOf(-x * x) * sum;
  }
  return (expOf(-x * x) * INV_SQRT_PI) / erfcFraction(x);
}
