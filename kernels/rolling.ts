// Rolling statistics over count windows (the last N records of a key) and time windows
// (records j with tMax − D < t_j ≤ tMax, in arrival order), one key per state block.
//
// Outputs per record, 10 f64 (NaN = undefined):
//   count, mean, std (sample, n−1), std_pop, min, max, slope, ewma, z, flags
// slope is the least-squares slope of value on record index (count windows) or on
// time / timeScale (time windows); z = (x − mean) / std with x the newest value.
//
// Numerics. Values are taken relative to a per-key origin x0 and slope-times relative to a time
// origin, both reset to the window's oldest record at every exact recompute, so 1e9 + 1e-3
// noise is summed as small numbers without cancellation. Mean, M2 = Σ(x − x̄)², the time moments
// and the co-moment Σ(t − t̄)(x − x̄) are updated by Welford's add / remove recurrences (Welford
// 1962; removal and co-moment as in Pébay, SAND2008-6212). Each update adds its rounding bound
// (4ε·|term|) to a running error estimate per moment; when an estimate passes 1e-11 of its moment
// (large values left the window and the moment shrank), when the mean drifts more than 100σ from
// the origin, or after 65536 updates, the moments are recomputed exactly (two passes over the
// ring). Stationary streams recompute about once per 65536 records: O(1) amortised. A window
// whose values are all equal (min == max, exact from the deques) reports std = 0 exactly, and one
// whose slope-times are all equal reports slope NaN, because the recompute makes M2t exactly 0.
// Min and max come from monotonic deques of ring positions (O(1) amortised).
//
// The kernel allocates nothing and keeps no globals: every byte it touches is in the state
// block, the input columns or the output rows the caller passes.

// ---- state block layout (bytes); mirrored in operators/rolling/rolling.ts ----
const MODE: u32 = 0; //     i32  0 = count window, 1 = time window
const CAP: u32 = 4; //      i32  ring capacity (records)
const HEAD: u32 = 8; //     i32  ring index of the oldest record
const LEN: u32 = 12; //     i32  records in the window
const MINH: u32 = 16; //    i32  min deque: slot of its front entry
const MINL: u32 = 20; //    i32  min deque length
const MAXH: u32 = 24; //    i32  max deque: slot of its front entry
const MAXL: u32 = 28; //    i32  max deque length
const SPAN: u32 = 32; //    f64  time window duration, in input time units
const ALPHA: u32 = 40; //   f64  EWMA smoothing factor
const SEQ: u32 = 48; //     f64  records seen by the key
const EWMA: u32 = 56; //    f64
const MEANX: u32 = 64; //   f64  mean of x − X0
const M2X: u32 = 72; //     f64
const MEANT: u32 = 80; //   f64  mean of the slope-times relative to TORG
const M2T: u32 = 88; //     f64
const CXT: u32 = 96; //     f64
const TMAX: u32 = 104; //   f64  newest time seen
const TSCALE: u32 = 112; // f64  slope time divisor (1000: ms → s)
const OVERFLOWS: u32 = 120; // f64 records pushed out of a time window by the capacity
const TORG: u32 = 128; //   f64  slope-time origin: a raw time (time mode) or record index (count mode)
const X0: u32 = 136; //     f64  value origin
const ERRX: u32 = 144; //   f64  rounding bound accumulated in M2X since the last recompute
const ERRT: u32 = 152; //   f64  … in M2T
const ERRC: u32 = 160; //   f64  … in CXT
const STEPS: u32 = 168; //  i32  updates since the last recompute
const CHAIN_TAIL: u32 = 172; // i32 during a rollingProcess call: 1 + the key's last record so far; 0 between calls
const HEADER: u32 = 176;

const EPS4: f64 = 4 * f64.EPSILON;
const ERR_TOLERANCE: f64 = 1e-11;
/** (mean − origin)² · n / M2 above this means the mean drifted 100σ from the origin. */
const DRIFT_MAX: f64 = 1e4;
const STEPS_MAX: i32 = 65536;

export const ROLLING_OUT_FIELDS: i32 = 10;
/** flags bit: a time window held more than `cap` records and lost its oldest. */
const FLAG_TRUNCATED: f64 = 1;

/**
 * The min and max deques: each an array of dequeSlots(cap) u16 slots holding ring positions,
 * entries in slots [front, front + length), oldest first. The array is not a ring: the last four
 * entries are always four slots in a row (DQ_LEAD slots before the first entry keep that true for
 * a short deque), read with one load. A push that finds the last slot taken first moves the
 * entries down to slot DQ_LEAD; a deque holds at most cap − 1 entries before a push, so with
 * cap/4 spare slots that happens after at least cap/4 + 1 pushes.
 */
const DQ_LEAD: i32 = 4;
@inline function dequeSlots(cap: i32): i32 { return cap + DQ_LEAD + (cap >> 2); }

export function rollingStateBytes(mode: i32, cap: i32): i32 {
  const times = mode == 1 ? cap * 8 : 0;
  return (<i32>HEADER + cap * 8 + times + dequeSlots(cap) * 4 + 7) & ~7;
}

export function rollingInit(state: usize, mode: i32, cap: i32, span: f64, alpha: f64, timeScale: f64): void {
  memory.fill(state, 0, rollingStateBytes(mode, cap));
  store<i32>(state, mode, MODE);
  store<i32>(state, cap, CAP);
  store<f64>(state, span, SPAN);
  store<f64>(state, alpha, ALPHA);
  store<f64>(state, timeScale, TSCALE);
  store<i32>(state, DQ_LEAD, MINH);
  store<i32>(state, DQ_LEAD, MAXH);
}

/**
 * Processes n records of one key group. Record i belongs to the key whose state block is at
 * stateBase + slots[i] * stateStride; records of each key are taken in the order given.
 * Writes n rows of ROLLING_OUT_FIELDS f64 at out. Returns n.
 *
 * A count window's records are taken key by key, CHAIN_RECORDS at a time: a first pass chains each key's
 * records (the links, the time and the value live in the rows not written yet), a second walks
 * one key's chain after the other, and a full count window's chain runs in one loop with the
 * key's header in locals. Each row depends only on its own key's records before it, so the rows
 * and the state are the same bits in either order; between calls CHAIN_TAIL is 0 again.
 */
export function rollingProcess(
  stateBase: usize, stateStride: i32, slots: usize, times: usize, values: usize, n: i32, out: usize,
): i32 {
  // A time window's records gain nothing from the chains (no run loop: every record takes the
  // general step), so its keys' records go in the order given. Either way gives the same rows.
  if (n > 0 && load<i32>(stateBase + <usize>load<u32>(slots) * <usize>stateStride, MODE) == 1) {
    for (let i = 0; i < n; i++) {
      const s = stateBase + <usize>load<u32>(slots + (<usize>i << 2)) * <usize>stateStride;
      step(s, load<f64>(times + (<usize>i << 3)), load<f64>(values + (<usize>i << 3)), out + <usize>i * ROW_BYTES);
    }
    return n;
  }
  for (let from = 0; from < n; from += CHAIN_RECORDS) {
    const m = min(CHAIN_RECORDS, n - from);
    const at = <usize>from;
    processKeyByKey(stateBase, stateStride, slots + (at << 2), times + (at << 3), values + (at << 3), m, out + at * ROW_BYTES);
  }
  return n;
}

// ---- internals ----

const ROW_BYTES: usize = <usize>ROLLING_OUT_FIELDS << 3;
/**
 * Records chained at a time: bounds what the two passes share (their rows, 80 KB) while a key
 * still gets a run of ~1024/k records among k keys.
 */
const CHAIN_RECORDS: i32 = 1024;
/** While a call chains its records: record i's time and value, copied into its row in column order … */
const ROW_TIME: u32 = 56;
const ROW_VALUE: u32 = 64;
/** … the key's next record in the call (−1: none) … */
const ROW_NEXT: u32 = 72;
/** … and in a key's first record's row, the next key's first record (−1: none). */
const ROW_NEXT_KEY: u32 = 76;

/** n ≤ CHAIN_RECORDS records (columns and rows already offset to the first), key by key. */
function processKeyByKey(stateBase: usize, stateStride: i32, slots: usize, times: usize, values: usize, n: i32, out: usize): void {
  let h = chainKeys(stateBase, stateStride, slots, times, values, n, out);
  while (h >= 0) {
    const o = out + <usize>h * ROW_BYTES;
    const nextKey = load<i32>(o, ROW_NEXT_KEY); // read before the key's rows are written
    const s = stateBase + <usize>load<u32>(slots + (<usize>h << 2)) * <usize>stateStride;
    store<i32>(s, 0, CHAIN_TAIL);
    processChain(s, h, out);
    h = nextKey;
  }
}

/**
 * Pass one of rollingProcess: links every record to its key's next one and every key's first
 * record to the next key's first, in the rows (each row is written only when its record is
 * processed, after its links are read). CHAIN_TAIL holds 1 + the key's last record so far.
 * Returns the first key's first record (−1: n = 0).
 */
function chainKeys(stateBase: usize, stateStride: i32, slots: usize, times: usize, values: usize, n: i32, out: usize): i32 {
  let first = -1;
  let lastFirst = -1;
  for (let i = 0; i < n; i++) {
    const s = stateBase + <usize>load<u32>(slots + (<usize>i << 2)) * <usize>stateStride;
    const o = out + <usize>i * ROW_BYTES;
    store<f64>(o, load<f64>(times + (<usize>i << 3)), ROW_TIME);
    store<f64>(o, load<f64>(values + (<usize>i << 3)), ROW_VALUE);
    store<i64>(o, -1, ROW_NEXT); // ROW_NEXT and ROW_NEXT_KEY both −1
    const tail = load<i32>(s, CHAIN_TAIL);
    if (tail != 0) store<i32>(out + <usize>(tail - 1) * ROW_BYTES, i, ROW_NEXT);
    else {
      if (lastFirst < 0) first = i;
      else store<i32>(out + <usize>lastFirst * ROW_BYTES, i, ROW_NEXT_KEY);
      lastFirst = i;
    }
    store<i32>(s, i + 1, CHAIN_TAIL);
  }
  return first;
}

/** One key's records of the call, from record j along the chain. */
function processChain(s: usize, j: i32, out: usize): void {
  while (j >= 0) {
    // A count window stays full once it is: the rest of the chain is its steady state.
    const cap = load<i32>(s, CAP);
    if ((load<i32>(s, MODE) | (load<i32>(s, LEN) ^ cap)) == 0 && cap > 1) {
      runFullCountWindow(s, cap, j, out);
      return;
    }
    const o = out + <usize>j * ROW_BYTES;
    const next = load<i32>(o, ROW_NEXT);
    step(s, load<f64>(o, ROW_TIME), load<f64>(o, ROW_VALUE), o);
    j = next;
  }
}

@inline function valuesAt(s: usize): usize { return s + HEADER; }
@inline function timesAt(s: usize, cap: i32): usize { return s + HEADER + (<usize>cap << 3); }
/** Slot 0 of the min (isMax false) or max deque. */
@inline function dqPositionsAt(s: usize, cap: i32, mode: i32, isMax: bool): usize {
  return s + HEADER + (<usize>cap << 3) * (mode == 1 ? 2 : 1) + (isMax ? <usize>dequeSlots(cap) << 1 : 0);
}
@inline function ringValue(s: usize, pos: i32): f64 { return load<f64>(valuesAt(s) + (<usize>pos << 3)); }

/** Slope-time of the ring entry k records after the oldest (k in 0..len−1), relative to TORG. */
@inline function entryTime(s: usize, mode: i32, cap: i32, k: i32): f64 {
  const len = load<i32>(s, LEN);
  if (mode == 0) return load<f64>(s, SEQ) - <f64>len + <f64>k - load<f64>(s, TORG);
  let p = load<i32>(s, HEAD) + k; if (p >= cap) p -= cap;
  return (load<f64>(timesAt(s, cap) + (<usize>p << 3)) - load<f64>(s, TORG)) / load<f64>(s, TSCALE);
}

function step(s: usize, t: f64, x: f64, o: usize): void {
  const mode = load<i32>(s, MODE);
  const cap = load<i32>(s, CAP);
  let seq = load<f64>(s, SEQ);
  let flags: f64 = 0;
  if (seq == 0) {
    store<f64>(s, mode == 0 ? 0 : t, TORG);
    store<f64>(s, x, X0);
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
  const tt = mode == 0 ? seq - load<f64>(s, TORG) : (t - load<f64>(s, TORG)) / load<f64>(s, TSCALE);
  seq += 1;
  store<f64>(s, seq, SEQ);
  const xs = x - load<f64>(s, X0);
  const nf = <f64>len;
  const mx0 = load<f64>(s, MEANX);
  const dx = xs - mx0;
  const mx = mx0 + dx / nf;
  const mt0 = load<f64>(s, MEANT);
  const dt = tt - mt0;
  const mt = mt0 + dt / nf;
  store<f64>(s, mx, MEANX);
  store<f64>(s, mt, MEANT);
  const termX = dx * (xs - mx);
  const termT = dt * (tt - mt);
  const termC = dt * (xs - mx);
  store<f64>(s, load<f64>(s, M2X) + termX, M2X);
  store<f64>(s, load<f64>(s, M2T) + termT, M2T);
  store<f64>(s, load<f64>(s, CXT) + termC, CXT);
  addErrors(s, termX, termT, termC);
  pushDeques(s, mode, cap, p, x);
  if (needsRecompute(s, nf)) recompute(s, mode, cap);
  writeRow(s, mode, cap, x, flags, o);
}

/**
 * The steady state of a count window, from record j along the key's chain to its end: the newest
 * record replaces the oldest in the same ring slot and n stays N, so the moments take one
 * replacement update instead of a removal and an add:
 *   x̄' = x̄ + (x − y)/n,  M2' = M2 + (x − y)(x − x̄' + y − x̄)
 *   C' = C + ½[(t_x − t_y)(x − x̄' + y − x̄) + (x − y)(t_x − t̄' + t_y − t̄)]
 * (y, t_y the record leaving; the co-moment form follows from C = Σ t·v − n·t̄·x̄ by the same
 * algebra as M2). The header stays in locals for the whole run and is written back at its end
 * (and around a recompute); the ring and the deques are in the state block. This is the hot path.
 */
function runFullCountWindow(s: usize, cap: i32, j: i32, out: usize): void {
  const alpha = load<f64>(s, ALPHA);
  const nf = <f64>cap;
  let ewma = load<f64>(s, EWMA);
  let head = load<i32>(s, HEAD);
  let seq = load<f64>(s, SEQ);
  let x0 = load<f64>(s, X0);
  let torg = load<f64>(s, TORG);
  let mx0 = load<f64>(s, MEANX);
  let mt0 = load<f64>(s, MEANT);
  let m2x = load<f64>(s, M2X);
  let m2t = load<f64>(s, M2T);
  let cxt = load<f64>(s, CXT);
  let errx = load<f64>(s, ERRX);
  let errt = load<f64>(s, ERRT);
  let errc = load<f64>(s, ERRC);
  let steps = load<i32>(s, STEPS);
  const slotCount = dequeSlots(cap);
  const minDq = dqPositionsAt(s, cap, 0, false);
  const maxDq = dqPositionsAt(s, cap, 0, true);
  let minFl = load<i64>(s, MINH); // front slot, length
  let maxFl = load<i64>(s, MAXH);
  while (j >= 0) {
    const o = out + <usize>j * ROW_BYTES;
    j = load<i32>(o, ROW_NEXT);
    const x = load<f64>(o, ROW_VALUE);
    ewma = ewma + alpha * (x - ewma);
    const y = ringValue(s, head);
    // The leaving record's deque entries go first: the new record takes the same ring slot.
    store<f64>(valuesAt(s) + (<usize>head << 3), x);
    minFl = advanceDeque(s, minDq, slotCount, <i32>minFl, <i32>(minFl >> 32), head, head, x, false);
    maxFl = advanceDeque(s, maxDq, slotCount, <i32>maxFl, <i32>(maxFl >> 32), head, head, x, true);
    const lo = dequeFront(s, minDq, minFl);
    const hi = dequeFront(s, maxDq, maxFl);
    head += 1; if (head >= cap) head = 0;
    // Moments.
    const xs = x - x0;
    const ys = y - x0;
    const tx = seq - torg;
    const ty = seq - nf - torg;
    seq += 1;
    const dxy = xs - ys;
    // tx − ty: seq, TORG (0, or seq − len at a recompute) and n are integers below 2^53, so every
    // step is exact and the difference is n itself; (tx − ty)/n is exactly 1.
    const dtt = nf;
    const mx = mx0 + overCap(dxy, nf, cap);
    const mt = mt0 + 1;
    const ax = xs - mx + (ys - mx0);
    const at = tx - mt + (ty - mt0);
    const termX = dxy * ax;
    const termT = dtt * at;
    const termC = 0.5 * (dtt * ax + dxy * at);
    m2x += termX;
    m2t += termT;
    cxt += termC;
    errx += EPS4 * Math.abs(dxy) * (Math.abs(xs - mx) + Math.abs(ys - mx0));
    errt += EPS4 * Math.abs(dtt) * (Math.abs(tx - mt) + Math.abs(ty - mt0));
    errc += EPS4 * (Math.abs(dtt * ax) + Math.abs(dxy * at));
    steps += 1;
    mx0 = mx;
    mt0 = mt;
    if (
      errx > ERR_TOLERANCE * m2x || errt > ERR_TOLERANCE * m2t || errc * errc > ERR_TOLERANCE * ERR_TOLERANCE * (m2x * m2t) ||
      mx * mx * nf > DRIFT_MAX * m2x || mt * mt * nf > DRIFT_MAX * m2t || steps >= STEPS_MAX
    ) {
      store<f64>(s, ewma, EWMA); store<i32>(s, head, HEAD); store<f64>(s, seq, SEQ);
      store<i64>(s, minFl, MINH); store<i64>(s, maxFl, MAXH);
      recompute(s, 0, cap);
      writeRow(s, 0, cap, x, 0, o);
      x0 = load<f64>(s, X0); torg = load<f64>(s, TORG);
      mx0 = load<f64>(s, MEANX); mt0 = load<f64>(s, MEANT);
      m2x = load<f64>(s, M2X); m2t = load<f64>(s, M2T); cxt = load<f64>(s, CXT);
      errx = 0; errt = 0; errc = 0; steps = 0;
      continue;
    }
    writeFullRow(o, nf, x, x0 + mx, lo, hi, m2x, m2t, cxt, ewma);
  }
  store<f64>(s, ewma, EWMA); store<i32>(s, head, HEAD); store<f64>(s, seq, SEQ);
  store<i64>(s, minFl, MINH); store<i64>(s, maxFl, MAXH);
  store<f64>(s, mx0, MEANX); store<f64>(s, mt0, MEANT);
  store<f64>(s, m2x, M2X); store<f64>(s, m2t, M2T); store<f64>(s, cxt, CXT);
  store<f64>(s, errx, ERRX); store<f64>(s, errt, ERRT); store<f64>(s, errc, ERRC);
  store<i32>(s, steps, STEPS);
}

/** A full count window's row from the run's locals (the same formulas as writeRow). */
@inline function writeFullRow(o: usize, nf: f64, x: f64, meanX: f64, lo: f64, hi: f64, m2x: f64, m2t: f64, cxt: f64, ewma: f64): void {
  let mean = meanX;
  let m2 = m2x;
  if (lo == hi) { mean = lo; m2 = 0; } else if (m2 < 0) m2 = 0;
  if (mean < lo) mean = lo; else if (mean > hi) mean = hi;
  // std and std_pop in one pair of lanes: √(M2/(n − 1)) and √(M2/n), each lane the same
  // correctly rounded division and square root as a scalar one.
  const stds = f64x2.sqrt(f64x2.div(f64x2.splat(m2), f64x2.replace_lane(f64x2.splat(nf - 1), 1, nf)));
  const std = f64x2.extract_lane(stds, 0);
  store<f64>(o, nf, 0);
  store<f64>(o, mean, 8);
  v128.store(o, stds, 16);
  store<f64>(o, lo, 32);
  store<f64>(o, hi, 40);
  store<f64>(o, m2t > 0 ? cxt / m2t : NaN, 48);
  store<f64>(o, ewma, 56);
  store<f64>(o, std > 0 ? (x - mean) / std : NaN, 64);
  store<f64>(o, 0, 72);
}

/**
 * v / n with n = cap: a multiply by 2^−k when cap = 2^k, else the division. The same bits either
 * way: 2^−k is exact, so v·2^−k and v/2^k are both the correctly rounded v·2^−k (subnormals, ±∞,
 * signed zeros and NaN included).
 */
@inline function overCap(v: f64, nf: f64, cap: i32): f64 {
  if ((cap & (cap - 1)) == 0) return v * reinterpret<f64>(<i64>(1023 - ctz(cap)) << 52);
  return v / nf;
}

/**
 * One record at ring position p (value x, already in the ring) through the min (isMax false) or
 * max deque whose front slot and length are at state offsets fOff and lOff: its front entry
 * leaves when it is at ring position `leaving` (the record leaving the window; −1: none leaves
 * here), entries beyond x leave from the back, p joins at the back. Returns the value of the
 * front entry: the window's min (max).
 */
@inline function updateDeque(
  s: usize, cap: i32, mode: i32, fOff: u32, lOff: u32, leaving: i32, p: i32, x: f64, isMax: bool,
): f64 {
  const dq = dqPositionsAt(s, cap, mode, isMax);
  const fl = advanceDeque(s, dq, dequeSlots(cap), load<i32>(s + <usize>fOff), load<i32>(s + <usize>lOff), leaving, p, x, isMax);
  store<i64>(s + <usize>fOff, fl); // front slot, then length: fOff + 4 == lOff
  return dequeFront(s, dq, fl);
}

/**
 * The deque at dq (slotCount slots, front slot f, length l) after the record at ring position p
 * with value x (see updateDeque): the new front slot in the low 32 bits, the length in the high.
 */
@inline function advanceDeque(
  s: usize, dq: usize, slotCount: i32, f: i32, l: i32, leaving: i32, p: i32, x: f64, isMax: bool,
): i64 {
  if (l > 0 && <i32>load<u16>(dq + (<usize>f << 1)) == leaving) {
    f += 1;
    l -= 1;
  }
  l -= popsBeyond(s, dq + (<usize>(f + l) << 1), l, x, isMax);
  if (f + l == slotCount) {
    memory.copy(dq + (<usize>DQ_LEAD << 1), dq + (<usize>f << 1), <usize>l << 1);
    f = DQ_LEAD;
  }
  store<u16>(dq + (<usize>(f + l) << 1), <u16>p);
  return <i64><u32>f | (<i64>(l + 1) << 32);
}

/** The value of the front entry of the deque at dq whose front slot is the low half of fl. */
@inline function dequeFront(s: usize, dq: usize, fl: i64): f64 {
  return ringValue(s, <i32>load<u16>(dq + (<usize><u32>fl << 1)));
}

/**
 * How many entries x pops off the back of a deque of l entries whose back entry's slot ends at
 * `end`: the run of back entries whose values are beyond x — above it in the min deque, below it
 * in the max deque (`isMax`); NaN on either side is not beyond. The last four entries' positions
 * come in one load and their values are compared in two pairs of lanes, without branches
 * (whether the newest value pops is a coin toss to a branch predictor, and a loop's exit
 * mispredicts nearly every time); slots before the front (at most DQ_LEAD of them are read) are
 * masked off; a run through all four goes on in a loop.
 */
@inline function popsBeyond(s: usize, end: usize, l: i32, x: f64, isMax: bool): i32 {
  const four = load<u64>(end - 8); // slots back−3 … back, the back one in the top 16 bits
  const v0 = ringValue(s, <i32>(four & 0xffff));
  const v1 = ringValue(s, <i32>((four >> 16) & 0xffff));
  const v2 = ringValue(s, <i32>((four >> 32) & 0xffff));
  const v3 = ringValue(s, <i32>(four >> 48));
  const older = f64x2.replace_lane(f64x2.splat(v0), 1, v1);
  const newer = f64x2.replace_lane(f64x2.splat(v2), 1, v3);
  const xx = f64x2.splat(x);
  const beyond = isMax
    ? i64x2.bitmask(f64x2.lt(older, xx)) | (i64x2.bitmask(f64x2.lt(newer, xx)) << 2)
    : i64x2.bitmask(f64x2.gt(older, xx)) | (i64x2.bitmask(f64x2.gt(newer, xx)) << 2);
  // Bit 3 is the back entry; entries that exist: bits 3 down to 4 − min(l, 4).
  const present = (0xf0 >> min(l, 4)) & 0xf;
  // The run of ones from bit 3 down.
  let n = <i32>clz(~((beyond & present) << 28));
  if (n == 4) {
    while (n < l && (isMax
      ? ringValue(s, <i32>load<u16>(end - (<usize>(n + 1) << 1))) < x
      : ringValue(s, <i32>load<u16>(end - (<usize>(n + 1) << 1))) > x)) n++;
  }
  return n;
}

@inline function addErrors(s: usize, termX: f64, termT: f64, termC: f64): void {
  store<f64>(s, load<f64>(s, ERRX) + EPS4 * Math.abs(termX), ERRX);
  store<f64>(s, load<f64>(s, ERRT) + EPS4 * Math.abs(termT), ERRT);
  store<f64>(s, load<f64>(s, ERRC) + EPS4 * Math.abs(termC), ERRC);
  store<i32>(s, load<i32>(s, STEPS) + 1, STEPS);
}

function needsRecompute(s: usize, n: f64): bool {
  const m2x = load<f64>(s, M2X);
  const m2t = load<f64>(s, M2T);
  const mx = load<f64>(s, MEANX);
  const mt = load<f64>(s, MEANT);
  return (
    load<f64>(s, ERRX) > ERR_TOLERANCE * m2x ||
    load<f64>(s, ERRT) > ERR_TOLERANCE * m2t ||
    load<f64>(s, ERRC) > ERR_TOLERANCE * Math.sqrt(m2x * m2t) ||
    mx * mx * n > DRIFT_MAX * m2x ||
    mt * mt * n > DRIFT_MAX * m2t ||
    load<i32>(s, STEPS) >= STEPS_MAX
  );
}

function pushDeques(s: usize, mode: i32, cap: i32, p: i32, x: f64): void {
  updateDeque(s, cap, mode, MINH, MINL, -1, p, x, false);
  updateDeque(s, cap, mode, MAXH, MAXL, -1, p, x, true);
}

function evictOldest(s: usize, mode: i32, cap: i32): void {
  const head = load<i32>(s, HEAD);
  const len = load<i32>(s, LEN);
  const y = ringValue(s, head) - load<f64>(s, X0);
  const ty = entryTime(s, mode, cap, 0);
  if (len == 1) {
    store<f64>(s, 0, MEANX); store<f64>(s, 0, M2X);
    store<f64>(s, 0, MEANT); store<f64>(s, 0, M2T); store<f64>(s, 0, CXT);
    store<f64>(s, 0, ERRX); store<f64>(s, 0, ERRT); store<f64>(s, 0, ERRC);
  } else {
    const nf = <f64>(len - 1);
    const mx0 = load<f64>(s, MEANX);
    const mx = mx0 - (y - mx0) / nf;
    const mt0 = load<f64>(s, MEANT);
    const mt = mt0 - (ty - mt0) / nf;
    const termX = (y - mx0) * (y - mx);
    const termT = (ty - mt0) * (ty - mt);
    const termC = (ty - mt) * (y - mx0);
    store<f64>(s, load<f64>(s, M2X) - termX, M2X);
    store<f64>(s, load<f64>(s, M2T) - termT, M2T);
    store<f64>(s, load<f64>(s, CXT) - termC, CXT);
    store<f64>(s, mx, MEANX);
    store<f64>(s, mt, MEANT);
    addErrors(s, termX, termT, termC);
  }
  dropFrontIf(s, cap, mode, MINH, MINL, head, false);
  dropFrontIf(s, cap, mode, MAXH, MAXL, head, true);
  let h = head + 1; if (h >= cap) h = 0;
  store<i32>(s, h, HEAD);
  store<i32>(s, len - 1, LEN);
}

/** Drops the deque's front entry when it is at ring position `leaving`. */
@inline function dropFrontIf(s: usize, cap: i32, mode: i32, fOff: u32, lOff: u32, leaving: i32, isMax: bool): void {
  const f = load<i32>(s + <usize>fOff);
  const l = load<i32>(s + <usize>lOff);
  if (l > 0 && <i32>load<u16>(dqPositionsAt(s, cap, mode, isMax) + (<usize>f << 1)) == leaving) {
    store<i32>(s + <usize>fOff, f + 1);
    store<i32>(s + <usize>lOff, l - 1);
  }
}

/**
 * Exact two-pass moments over the window, after moving both origins to the oldest record
 * (value x0, slope-time 0), so the sums are of small numbers.
 */
function recompute(s: usize, mode: i32, cap: i32): void {
  const len = load<i32>(s, LEN);
  const head = load<i32>(s, HEAD);
  const x0 = ringValue(s, head);
  if (mode == 0) store<f64>(s, load<f64>(s, SEQ) - <f64>len, TORG);
  else store<f64>(s, load<f64>(timesAt(s, cap) + (<usize>head << 3)), TORG);
  store<f64>(s, x0, X0);
  let sx: f64 = 0, st: f64 = 0;
  for (let k = 0; k < len; k++) {
    let p = head + k; if (p >= cap) p -= cap;
    sx += ringValue(s, p) - x0;
    st += entryTime(s, mode, cap, k);
  }
  const nf = <f64>len;
  const mx = sx / nf;
  const mt = st / nf;
  let m2x: f64 = 0, m2t: f64 = 0, cxt: f64 = 0;
  for (let k = 0; k < len; k++) {
    let p = head + k; if (p >= cap) p -= cap;
    const dx = ringValue(s, p) - x0 - mx;
    const dt = entryTime(s, mode, cap, k) - mt;
    m2x += dx * dx; m2t += dt * dt; cxt += dt * dx;
  }
  store<f64>(s, mx, MEANX); store<f64>(s, m2x, M2X);
  store<f64>(s, mt, MEANT); store<f64>(s, m2t, M2T); store<f64>(s, cxt, CXT);
  store<f64>(s, 0, ERRX); store<f64>(s, 0, ERRT); store<f64>(s, 0, ERRC);
  store<i32>(s, 0, STEPS);
}

function writeRow(s: usize, mode: i32, cap: i32, x: f64, flags: f64, o: usize): void {
  const len = load<i32>(s, LEN);
  const nf = <f64>len;
  const lo = ringValue(s, <i32>load<u16>(dqPositionsAt(s, cap, mode, false) + (<usize>load<i32>(s, MINH) << 1)));
  const hi = ringValue(s, <i32>load<u16>(dqPositionsAt(s, cap, mode, true) + (<usize>load<i32>(s, MAXH) << 1)));
  let mean = load<f64>(s, X0) + load<f64>(s, MEANX);
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
