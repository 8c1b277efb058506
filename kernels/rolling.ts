// Rolling statistics over count windows (the last N records of a key) and time windows
// (records j with tMax − D < t_j ≤ tMax, in arrival order), one key per state block.
//
// Outputs per record, 10 f64 (NaN = undefined):
//   count, mean, std (sample, n−1), std_pop, min, max, slope, ewma, z, flags
// slope is the least-squares slope of value on record index (count windows) or on
// time / timeScale (time windows); z = (x − mean) / std with x the newest value.
//
// Numerics. Mean, M2 = Σ(x − x̄)², the time moments and the co-moment Σ(t − t̄)(x − x̄) are
// updated by Welford's add / remove recurrences (Welford 1962; removal and co-moment as in
// Pébay, "Formulas for robust, one-pass parallel computation of covariances", SAND2008-6212).
// Removal can leave rounding residue when large values leave the window, so the moments are
// recomputed exactly (two passes over the ring) after every `cap` evictions, and at once when
// M2 falls below 1e-9 of its peak since the last recompute: O(1) amortised, and a window that
// is constant (min == max, known exactly from the deques) reports std = 0 exactly.
// Min and max come from monotonic deques of ring positions (O(1) amortised).
//
// The kernel allocates nothing and keeps no globals: every byte it touches is in the state
// block, the input columns or the output rows the caller passes.

// ---- state block layout (bytes); mirrored in operators/rolling-layout.ts ----
const MODE: u32 = 0; //     i32  0 = count window, 1 = time window
const CAP: u32 = 4; //      i32  ring capacity (records)
const HEAD: u32 = 8; //     i32  ring index of the oldest record
const LEN: u32 = 12; //     i32  records in the window
const MINH: u32 = 16; //    i32  min deque head
const MINL: u32 = 20; //    i32  min deque length
const MAXH: u32 = 24; //    i32  max deque head
const MAXL: u32 = 28; //    i32  max deque length
const SPAN: u32 = 32; //    f64  time window duration, in input time units
const ALPHA: u32 = 40; //   f64  EWMA smoothing factor
const SEQ: u32 = 48; //     f64  records seen by the key
const EWMA: u32 = 56; //    f64
const MEANX: u32 = 64; //   f64
const M2X: u32 = 72; //     f64
const MEANT: u32 = 80; //   f64
const M2T: u32 = 88; //     f64
const CXT: u32 = 96; //     f64
const TMAX: u32 = 104; //   f64  newest time seen
const TSCALE: u32 = 112; // f64  slope time divisor (1000: ms → s)
const EVICT: u32 = 120; //  i32  evictions since the last exact recompute
const OVERFLOWS: u32 = 128; // f64 records pushed out of a time window by the capacity
const T0: u32 = 136; //     f64  time origin (first time seen), keeps t − t0 small
const M2PEAK: u32 = 144; // f64  largest M2 since the last exact recompute
const HEADER: u32 = 160;

export const ROLLING_OUT_FIELDS: i32 = 10;
/** flags bit: a time window held more than `cap` records and lost its oldest. */
const FLAG_TRUNCATED: f64 = 1;

export function rollingStateBytes(mode: i32, cap: i32): i32 {
  const times = mode == 1 ? cap * 8 : 0;
  return ((HEADER as i32) + cap * 8 + times + cap * 4 + 7) & ~7;
}

export function rollingInit(state: usize, mode: i32, cap: i32, span: f64, alpha: f64, timeScale: f64): void {
  memory.fill(state, 0, rollingStateBytes(mode, cap));
  store<i32>(state, mode, MODE);
  store<i32>(state, cap, CAP);
  store<f64>(state, span, SPAN);
  store<f64>(state, alpha, ALPHA);
  store<f64>(state, timeScale, TSCALE);
}

/**
 * Processes n records of one key group. Record i belongs to the key whose state block is at
 * stateBase + slots[i] * stateStride; records of each key are taken in the order given.
 * Writes n rows of ROLLING_OUT_FIELDS f64 at out. Returns n.
 */
export function rollingProcess(
  stateBase: usize, stateStride: i32, slots: usize, times: usize, values: usize, n: i32, out: usize,
): i32 {
  for (let i = 0; i < n; i++) {
    const off = <usize>i << 3;
    const s = stateBase + <usize>load<u32>(slots + (<usize>i << 2)) * <usize>stateStride;
    step(s, load<f64>(times + off), load<f64>(values + off), out + <usize>i * 80);
  }
  return n;
}

// ---- internals ----

@inline function valuesAt(s: usize): usize { return s + HEADER; }
@inline function timesAt(s: usize, cap: i32): usize { return s + HEADER + (<usize>cap << 3); }
@inline function minDqAt(s: usize, cap: i32, mode: i32): usize {
  return s + HEADER + (<usize>cap << 3) * (mode == 1 ? 2 : 1);
}
@inline function maxDqAt(s: usize, cap: i32, mode: i32): usize {
  return minDqAt(s, cap, mode) + (<usize>cap << 1);
}
@inline function ringValue(s: usize, pos: i32): f64 { return load<f64>(valuesAt(s) + (<usize>pos << 3)); }
@inline function dqGet(dq: usize, cap: i32, head: i32, k: i32): i32 {
  let p = head + k; if (p >= cap) p -= cap;
  return <i32>load<u16>(dq + (<usize>p << 1));
}

/** Slope time of the ring entry k records after the oldest (k in 0..len−1). */
@inline function entryTime(s: usize, mode: i32, cap: i32, k: i32): f64 {
  const len = load<i32>(s, LEN);
  if (mode == 0) return load<f64>(s, SEQ) - <f64>len + <f64>k;
  let p = load<i32>(s, HEAD) + k; if (p >= cap) p -= cap;
  return (load<f64>(timesAt(s, cap) + (<usize>p << 3)) - load<f64>(s, T0)) / load<f64>(s, TSCALE);
}

function step(s: usize, t: f64, x: f64, o: usize): void {
  const mode = load<i32>(s, MODE);
  const cap = load<i32>(s, CAP);
  let seq = load<f64>(s, SEQ);
  let flags: f64 = 0;
  if (seq == 0) {
    store<f64>(s, t, T0);
    store<f64>(s, t, TMAX);
    store<f64>(s, x, EWMA);
  } else {
    if (t > load<f64>(s, TMAX)) store<f64>(s, t, TMAX);
    const e = load<f64>(s, EWMA);
    store<f64>(s, e + load<f64>(s, ALPHA) * (x - e), EWMA);
  }
  // Evict what left the window, then make room.
  if (mode == 1) {
    const cutoff = load<f64>(s, TMAX) - load<f64>(s, SPAN);
    const tb = timesAt(s, cap);
    while (load<i32>(s, LEN) > 0 && load<f64>(tb + (<usize>load<i32>(s, HEAD) << 3)) <= cutoff) evictOldest(s, mode, cap);
  }
  if (load<i32>(s, LEN) == cap) {
    if (mode == 1) {
      store<f64>(s, load<f64>(s, OVERFLOWS) + 1, OVERFLOWS);
      flags = FLAG_TRUNCATED;
    }
    evictOldest(s, mode, cap);
  }
  // Insert.
  const head = load<i32>(s, HEAD);
  let len = load<i32>(s, LEN);
  let p = head + len; if (p >= cap) p -= cap;
  store<f64>(valuesAt(s) + (<usize>p << 3), x);
  if (mode == 1) store<f64>(timesAt(s, cap) + (<usize>p << 3), t);
  len += 1;
  store<i32>(s, len, LEN);
  const tt = mode == 0 ? seq : (t - load<f64>(s, T0)) / load<f64>(s, TSCALE);
  seq += 1;
  store<f64>(s, seq, SEQ);
  const nf = <f64>len;
  const mx0 = load<f64>(s, MEANX);
  const dx = x - mx0;
  const mx = mx0 + dx / nf;
  const mt0 = load<f64>(s, MEANT);
  const dt = tt - mt0;
  const mt = mt0 + dt / nf;
  store<f64>(s, mx, MEANX);
  store<f64>(s, mt, MEANT);
  const m2 = load<f64>(s, M2X) + dx * (x - mx);
  store<f64>(s, m2, M2X);
  if (m2 > load<f64>(s, M2PEAK)) store<f64>(s, m2, M2PEAK);
  store<f64>(s, load<f64>(s, M2T) + dt * (tt - mt), M2T);
  store<f64>(s, load<f64>(s, CXT) + dt * (x - mx), CXT);
  pushDeques(s, mode, cap, p, x);
  if (load<i32>(s, EVICT) >= cap || load<f64>(s, M2X) < load<f64>(s, M2PEAK) * 1e-9) recompute(s, mode, cap);
  writeRow(s, mode, cap, x, flags, o);
}

function pushDeques(s: usize, mode: i32, cap: i32, p: i32, x: f64): void {
  const minDq = minDqAt(s, cap, mode);
  const mh = load<i32>(s, MINH);
  let ml = load<i32>(s, MINL);
  while (ml > 0 && ringValue(s, dqGet(minDq, cap, mh, ml - 1)) > x) ml--;
  let q = mh + ml; if (q >= cap) q -= cap;
  store<u16>(minDq + (<usize>q << 1), <u16>p);
  store<i32>(s, ml + 1, MINL);
  const maxDq = maxDqAt(s, cap, mode);
  const xh = load<i32>(s, MAXH);
  let xl = load<i32>(s, MAXL);
  while (xl > 0 && ringValue(s, dqGet(maxDq, cap, xh, xl - 1)) < x) xl--;
  q = xh + xl; if (q >= cap) q -= cap;
  store<u16>(maxDq + (<usize>q << 1), <u16>p);
  store<i32>(s, xl + 1, MAXL);
}

function evictOldest(s: usize, mode: i32, cap: i32): void {
  const head = load<i32>(s, HEAD);
  const len = load<i32>(s, LEN);
  const y = ringValue(s, head);
  const ty = entryTime(s, mode, cap, 0);
  if (len == 1) {
    store<f64>(s, 0, MEANX); store<f64>(s, 0, M2X);
    store<f64>(s, 0, MEANT); store<f64>(s, 0, M2T); store<f64>(s, 0, CXT);
    store<f64>(s, 0, M2PEAK);
  } else {
    const nf = <f64>(len - 1);
    const mx0 = load<f64>(s, MEANX);
    const mx = mx0 - (y - mx0) / nf;
    const mt0 = load<f64>(s, MEANT);
    const mt = mt0 - (ty - mt0) / nf;
    store<f64>(s, load<f64>(s, M2X) - (y - mx0) * (y - mx), M2X);
    store<f64>(s, load<f64>(s, M2T) - (ty - mt0) * (ty - mt), M2T);
    store<f64>(s, load<f64>(s, CXT) - (ty - mt) * (y - mx0), CXT);
    store<f64>(s, mx, MEANX);
    store<f64>(s, mt, MEANT);
  }
  const minDq = minDqAt(s, cap, mode);
  let mh = load<i32>(s, MINH);
  if (load<i32>(s, MINL) > 0 && <i32>load<u16>(minDq + (<usize>mh << 1)) == head) {
    mh += 1; if (mh >= cap) mh = 0;
    store<i32>(s, mh, MINH);
    store<i32>(s, load<i32>(s, MINL) - 1, MINL);
  }
  const maxDq = maxDqAt(s, cap, mode);
  let xh = load<i32>(s, MAXH);
  if (load<i32>(s, MAXL) > 0 && <i32>load<u16>(maxDq + (<usize>xh << 1)) == head) {
    xh += 1; if (xh >= cap) xh = 0;
    store<i32>(s, xh, MAXH);
    store<i32>(s, load<i32>(s, MAXL) - 1, MAXL);
  }
  let h = head + 1; if (h >= cap) h = 0;
  store<i32>(s, h, HEAD);
  store<i32>(s, len - 1, LEN);
  // seq counts records seen; the oldest's index time in count mode is derived from seq and len,
  // so nothing else moves.
  store<i32>(s, load<i32>(s, EVICT) + 1, EVICT);
}

/** Exact two-pass moments over the window; shifted by the oldest value to keep sums small. */
function recompute(s: usize, mode: i32, cap: i32): void {
  const len = load<i32>(s, LEN);
  const head = load<i32>(s, HEAD);
  const x0 = ringValue(s, head);
  const t0 = entryTime(s, mode, cap, 0);
  let sx: f64 = 0, st: f64 = 0;
  for (let k = 0; k < len; k++) {
    let p = head + k; if (p >= cap) p -= cap;
    sx += ringValue(s, p) - x0;
    st += entryTime(s, mode, cap, k) - t0;
  }
  const nf = <f64>len;
  const mx = x0 + sx / nf;
  const mt = t0 + st / nf;
  let m2x: f64 = 0, m2t: f64 = 0, cxt: f64 = 0;
  for (let k = 0; k < len; k++) {
    let p = head + k; if (p >= cap) p -= cap;
    const dx = ringValue(s, p) - mx;
    const dt = entryTime(s, mode, cap, k) - mt;
    m2x += dx * dx; m2t += dt * dt; cxt += dt * dx;
  }
  store<f64>(s, mx, MEANX); store<f64>(s, m2x, M2X);
  store<f64>(s, mt, MEANT); store<f64>(s, m2t, M2T); store<f64>(s, cxt, CXT);
  store<f64>(s, m2x, M2PEAK);
  store<i32>(s, 0, EVICT);
}

function writeRow(s: usize, mode: i32, cap: i32, x: f64, flags: f64, o: usize): void {
  const len = load<i32>(s, LEN);
  const nf = <f64>len;
  const lo = ringValue(s, dqGet(minDqAt(s, cap, mode), cap, load<i32>(s, MINH), 0));
  const hi = ringValue(s, dqGet(maxDqAt(s, cap, mode), cap, load<i32>(s, MAXH), 0));
  let mean = load<f64>(s, MEANX);
  let m2 = load<f64>(s, M2X);
  if (lo == hi) { mean = lo; m2 = 0; } else if (m2 < 0) m2 = 0;
  // The mean of values in [lo, hi] lies in [lo, hi]; rounding must not push it out.
  if (mean < lo) mean = lo; else if (mean > hi) mean = hi;
  const std = len > 1 ? Math.sqrt(m2 / (nf - 1)) : NaN;
  const m2t = load<f64>(s, M2T);
  store<f64>(o, nf, 0);
  store<f64>(o, mean, 8);
  store<f64>(o, std, 16);
  store<f64>(o, Math.sqrt(m2 / nf), 24);
  store<f64>(o, lo, 32);
  store<f64>(o, hi, 40);
  store<f64>(o, len > 1 && m2t > 0 ? load<f64>(s, CXT) / m2t : NaN, 48);
  store<f64>(o, load<f64>(s, EWMA), 56);
  store<f64>(o, std > 0 ? (x - mean) / std : NaN, 64);
  store<f64>(o, flags, 72);
}
