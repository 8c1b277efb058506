/**
 * A plain-TypeScript port of kernels/rolling.ts — the same incremental algorithm over the same
 * byte layout and the same ABI (`process(stateBase, stateStride, slots, times, values, n, out)`,
 * pointers are byte offsets): values and slope-times relative to per-key origins, Welford add /
 * remove with the Pébay co-moment, a running rounding-error bound per moment that triggers an
 * exact two-pass recompute (also on mean drift and every 65536 updates), and monotonic min / max
 * deques of ring positions.
 *
 * Why it exists: the benchmark's WASM-versus-TypeScript ratio must compare like with like. The
 * test reference (kernels/reference/rolling-reference.ts) recomputes every window from scratch, so a
 * ratio against it measures the algorithm, not the compiler; this port measures the compiler.
 * Every floating-point operation is done in the kernel's order, so on the same input the port's
 * output rows are bit-identical to the kernel's; the benchmark counts the rows that are not, which
 * also tells when the kernel changed and this port did not follow.
 *
 * Non-goal: being the reference. A mistake copied from the kernel is copied here too; the tests
 * against RollingReference are what catch those.
 */

/** f64 per output row, as the kernel writes them. */
export const INCREMENTAL_OUT_FIELDS = 10;

/** The kernel's state bytes for a window (kernels/rolling.ts `rollingStateBytes`). */
export function incrementalStateBytes(mode: number, cap: number): number {
  const times = mode === 1 ? cap * 8 : 0;
  return (HEADER + cap * 8 + times + cap * 4 + 7) & ~7;
}

/** The rolling kernel in TypeScript, over a caller-owned buffer laid out as the kernel's memory. */
export class RollingIncremental {
  private readonly f64: Float64Array;
  private readonly i32: Int32Array;
  private readonly u32: Uint32Array;
  private readonly u16: Uint16Array;

  /** `buffer` holds state blocks, input columns and output rows at the offsets the calls name. */
  constructor(buffer: ArrayBuffer | SharedArrayBuffer) {
    this.f64 = new Float64Array(buffer);
    this.i32 = new Int32Array(buffer);
    this.u32 = new Uint32Array(buffer);
    this.u16 = new Uint16Array(buffer);
  }

  /** kernels/rolling.ts `rollingInit`: zeroes the block at `state` (8-byte aligned) and sets its parameters. */
  init(state: number, mode: 0 | 1, cap: number, span: number, alpha: number, timeScale: number): void {
    const s = state >>> 3;
    this.f64.fill(0, s, s + (incrementalStateBytes(mode, cap) >>> 3));
    this.i32[(state >>> 2) + MODE_I] = mode;
    this.i32[(state >>> 2) + CAP_I] = cap;
    this.f64[s + SPAN] = span;
    this.f64[s + ALPHA] = alpha;
    this.f64[s + TSCALE] = timeScale;
  }

  /** kernels/rolling.ts `rollingProcess`: n records, key state at stateBase + slots[i]·stateStride. */
  process(stateBase: number, stateStride: number, slots: number, times: number, values: number, n: number, out: number): number {
    const slot0 = slots >>> 2;
    const t0 = times >>> 3;
    const x0 = values >>> 3;
    for (let i = 0; i < n; i++) {
      const s = stateBase + this.u32[slot0 + i] * stateStride;
      this.step(s, this.f64[t0 + i], this.f64[x0 + i], out + i * 80);
    }
    return n;
  }

  // ---- internals: one method per kernel function, same names, same operation order ----

  /** One record of the key whose block is at byte `s`; fs / is index its f64 / i32 fields. */
  private step(s: number, t: number, x: number, o: number): void {
    const { f64, i32 } = this;
    const fs = s >>> 3;
    const is = s >>> 2;
    const mode = i32[is + MODE_I];
    const cap = i32[is + CAP_I];
    let seq = f64[fs + SEQ];
    if (mode === 0 && i32[is + LEN_I] === cap && cap > 1) {
      this.stepFullCountWindow(s, cap, seq, x, o);
      return;
    }
    let flags = 0;
    if (seq === 0) {
      f64[fs + TORG] = mode === 0 ? 0 : t;
      f64[fs + X0] = x;
      f64[fs + TMAX] = t;
      f64[fs + EWMA] = x;
    } else {
      if (t > f64[fs + TMAX]) f64[fs + TMAX] = t;
      const e = f64[fs + EWMA];
      f64[fs + EWMA] = e + f64[fs + ALPHA] * (x - e);
    }
    if (mode === 1) {
      const cutoff = f64[fs + TMAX] - f64[fs + SPAN];
      const tb = (s + HEADER + cap * 8) >>> 3;
      while (i32[is + LEN_I] > 0 && f64[tb + i32[is + HEAD_I]] <= cutoff) this.evictOldest(s, mode, cap);
    }
    if (i32[is + LEN_I] === cap) {
      if (mode === 1) {
        f64[fs + OVERFLOWS] = f64[fs + OVERFLOWS] + 1;
        flags = FLAG_TRUNCATED;
      }
      this.evictOldest(s, mode, cap);
    }
    const head = i32[is + HEAD_I];
    let len = i32[is + LEN_I];
    let p = head + len;
    if (p >= cap) p -= cap;
    f64[((s + HEADER) >>> 3) + p] = x;
    if (mode === 1) f64[((s + HEADER + cap * 8) >>> 3) + p] = t;
    len += 1;
    i32[is + LEN_I] = len;
    const tt = mode === 0 ? seq - f64[fs + TORG] : (t - f64[fs + TORG]) / f64[fs + TSCALE];
    seq += 1;
    f64[fs + SEQ] = seq;
    const xs = x - f64[fs + X0];
    const nf = len;
    const mx0 = f64[fs + MEANX];
    const dx = xs - mx0;
    const mx = mx0 + dx / nf;
    const mt0 = f64[fs + MEANT];
    const dt = tt - mt0;
    const mt = mt0 + dt / nf;
    f64[fs + MEANX] = mx;
    f64[fs + MEANT] = mt;
    const termX = dx * (xs - mx);
    const termT = dt * (tt - mt);
    const termC = dt * (xs - mx);
    f64[fs + M2X] = f64[fs + M2X] + termX;
    f64[fs + M2T] = f64[fs + M2T] + termT;
    f64[fs + CXT] = f64[fs + CXT] + termC;
    this.addErrors(s, termX, termT, termC);
    this.pushDeques(s, mode, cap, p, x);
    if (this.needsRecompute(s, nf)) this.recompute(s, mode, cap);
    this.writeRow(s, mode, cap, x, flags, o);
  }

  /** kernels/rolling.ts `stepFullCountWindow`: the replacement update of a full count window. */
  private stepFullCountWindow(s: number, cap: number, seq: number, x: number, o: number): void {
    const { f64, i32, u16 } = this;
    const fs = s >>> 3;
    const is = s >>> 2;
    const ring = (s + HEADER) >>> 3;
    const e = f64[fs + EWMA];
    const ewma = e + f64[fs + ALPHA] * (x - e);
    f64[fs + EWMA] = ewma;
    const head = i32[is + HEAD_I];
    const y = f64[ring + head];
    const minDq = minDqAt(s, cap, 0) >>> 1;
    const maxDq = minDq + cap;
    let mh = i32[is + MINH_I],
      ml = i32[is + MINL_I];
    if (ml > 0 && u16[minDq + mh] === head) {
      mh += 1;
      if (mh >= cap) mh = 0;
      ml -= 1;
    }
    let xh = i32[is + MAXH_I],
      xl = i32[is + MAXL_I];
    if (xl > 0 && u16[maxDq + xh] === head) {
      xh += 1;
      if (xh >= cap) xh = 0;
      xl -= 1;
    }
    f64[ring + head] = x;
    while (ml > 0 && f64[ring + dqGet(u16, minDq, cap, mh, ml - 1)] > x) ml--;
    let q = mh + ml;
    if (q >= cap) q -= cap;
    u16[minDq + q] = head;
    ml += 1;
    while (xl > 0 && f64[ring + dqGet(u16, maxDq, cap, xh, xl - 1)] < x) xl--;
    q = xh + xl;
    if (q >= cap) q -= cap;
    u16[maxDq + q] = head;
    xl += 1;
    i32[is + MINH_I] = mh;
    i32[is + MINL_I] = ml;
    i32[is + MAXH_I] = xh;
    i32[is + MAXL_I] = xl;
    let h = head + 1;
    if (h >= cap) h = 0;
    i32[is + HEAD_I] = h;
    f64[fs + SEQ] = seq + 1;
    const nf = cap;
    const x0 = f64[fs + X0];
    const torg = f64[fs + TORG];
    const xs = x - x0;
    const ys = y - x0;
    const tx = seq - torg;
    const ty = seq - nf - torg;
    const mx0 = f64[fs + MEANX];
    const mt0 = f64[fs + MEANT];
    const dxy = xs - ys;
    const dtt = tx - ty;
    const mx = mx0 + dxy / nf;
    const mt = mt0 + dtt / nf;
    const ax = xs - mx + (ys - mx0);
    const at = tx - mt + (ty - mt0);
    const termX = dxy * ax;
    const termT = dtt * at;
    const termC = 0.5 * (dtt * ax + dxy * at);
    const m2x = f64[fs + M2X] + termX;
    const m2t = f64[fs + M2T] + termT;
    const cxt = f64[fs + CXT] + termC;
    const errx = f64[fs + ERRX] + EPS4 * Math.abs(dxy) * (Math.abs(xs - mx) + Math.abs(ys - mx0));
    const errt = f64[fs + ERRT] + EPS4 * Math.abs(dtt) * (Math.abs(tx - mt) + Math.abs(ty - mt0));
    const errc = f64[fs + ERRC] + EPS4 * (Math.abs(dtt * ax) + Math.abs(dxy * at));
    const steps = i32[is + STEPS_I] + 1;
    f64[fs + MEANX] = mx;
    f64[fs + MEANT] = mt;
    f64[fs + M2X] = m2x;
    f64[fs + M2T] = m2t;
    f64[fs + CXT] = cxt;
    f64[fs + ERRX] = errx;
    f64[fs + ERRT] = errt;
    f64[fs + ERRC] = errc;
    i32[is + STEPS_I] = steps;
    if (
      errx > ERR_TOLERANCE * m2x ||
      errt > ERR_TOLERANCE * m2t ||
      errc * errc > ERR_TOLERANCE * ERR_TOLERANCE * (m2x * m2t) ||
      mx * mx * nf > DRIFT_MAX * m2x ||
      mt * mt * nf > DRIFT_MAX * m2t ||
      steps >= STEPS_MAX
    ) {
      this.recompute(s, 0, cap);
      this.writeRow(s, 0, cap, x, 0, o);
      return;
    }
    const lo = f64[ring + u16[minDq + mh]];
    const hi = f64[ring + u16[maxDq + xh]];
    writeMoments(f64, o, nf, lo, hi, x0 + mx, m2x, m2t > 0 ? cxt / m2t : NaN, ewma, x, 0);
  }

  private addErrors(s: number, termX: number, termT: number, termC: number): void {
    const { f64, i32 } = this;
    const fs = s >>> 3;
    f64[fs + ERRX] = f64[fs + ERRX] + EPS4 * Math.abs(termX);
    f64[fs + ERRT] = f64[fs + ERRT] + EPS4 * Math.abs(termT);
    f64[fs + ERRC] = f64[fs + ERRC] + EPS4 * Math.abs(termC);
    i32[(s >>> 2) + STEPS_I] = i32[(s >>> 2) + STEPS_I] + 1;
  }

  private needsRecompute(s: number, n: number): boolean {
    const f64 = this.f64;
    const fs = s >>> 3;
    const m2x = f64[fs + M2X];
    const m2t = f64[fs + M2T];
    const mx = f64[fs + MEANX];
    const mt = f64[fs + MEANT];
    return (
      f64[fs + ERRX] > ERR_TOLERANCE * m2x ||
      f64[fs + ERRT] > ERR_TOLERANCE * m2t ||
      f64[fs + ERRC] > ERR_TOLERANCE * Math.sqrt(m2x * m2t) ||
      mx * mx * n > DRIFT_MAX * m2x ||
      mt * mt * n > DRIFT_MAX * m2t ||
      this.i32[(s >>> 2) + STEPS_I] >= STEPS_MAX
    );
  }

  private pushDeques(s: number, mode: number, cap: number, p: number, x: number): void {
    const { f64, i32, u16 } = this;
    const is = s >>> 2;
    const ring = (s + HEADER) >>> 3;
    const minDq = minDqAt(s, cap, mode) >>> 1;
    const mh = i32[is + MINH_I];
    let ml = i32[is + MINL_I];
    while (ml > 0 && f64[ring + dqGet(u16, minDq, cap, mh, ml - 1)] > x) ml--;
    let q = mh + ml;
    if (q >= cap) q -= cap;
    u16[minDq + q] = p;
    i32[is + MINL_I] = ml + 1;
    const maxDq = minDq + cap;
    const xh = i32[is + MAXH_I];
    let xl = i32[is + MAXL_I];
    while (xl > 0 && f64[ring + dqGet(u16, maxDq, cap, xh, xl - 1)] < x) xl--;
    q = xh + xl;
    if (q >= cap) q -= cap;
    u16[maxDq + q] = p;
    i32[is + MAXL_I] = xl + 1;
  }

  private evictOldest(s: number, mode: number, cap: number): void {
    const { f64, i32, u16 } = this;
    const fs = s >>> 3;
    const is = s >>> 2;
    const head = i32[is + HEAD_I];
    const len = i32[is + LEN_I];
    const y = f64[((s + HEADER) >>> 3) + head] - f64[fs + X0];
    const ty = this.entryTime(s, mode, cap, 0);
    if (len === 1) {
      f64[fs + MEANX] = 0;
      f64[fs + M2X] = 0;
      f64[fs + MEANT] = 0;
      f64[fs + M2T] = 0;
      f64[fs + CXT] = 0;
      f64[fs + ERRX] = 0;
      f64[fs + ERRT] = 0;
      f64[fs + ERRC] = 0;
    } else {
      const nf = len - 1;
      const mx0 = f64[fs + MEANX];
      const mx = mx0 - (y - mx0) / nf;
      const mt0 = f64[fs + MEANT];
      const mt = mt0 - (ty - mt0) / nf;
      const termX = (y - mx0) * (y - mx);
      const termT = (ty - mt0) * (ty - mt);
      const termC = (ty - mt) * (y - mx0);
      f64[fs + M2X] = f64[fs + M2X] - termX;
      f64[fs + M2T] = f64[fs + M2T] - termT;
      f64[fs + CXT] = f64[fs + CXT] - termC;
      f64[fs + MEANX] = mx;
      f64[fs + MEANT] = mt;
      this.addErrors(s, termX, termT, termC);
    }
    const minDq = minDqAt(s, cap, mode) >>> 1;
    let mh = i32[is + MINH_I];
    if (i32[is + MINL_I] > 0 && u16[minDq + mh] === head) {
      mh += 1;
      if (mh >= cap) mh = 0;
      i32[is + MINH_I] = mh;
      i32[is + MINL_I] = i32[is + MINL_I] - 1;
    }
    const maxDq = minDq + cap;
    let xh = i32[is + MAXH_I];
    if (i32[is + MAXL_I] > 0 && u16[maxDq + xh] === head) {
      xh += 1;
      if (xh >= cap) xh = 0;
      i32[is + MAXH_I] = xh;
      i32[is + MAXL_I] = i32[is + MAXL_I] - 1;
    }
    let h = head + 1;
    if (h >= cap) h = 0;
    i32[is + HEAD_I] = h;
    i32[is + LEN_I] = len - 1;
  }

  /** Slope-time of the ring entry k records after the oldest, relative to TORG. */
  private entryTime(s: number, mode: number, cap: number, k: number): number {
    const { f64, i32 } = this;
    const fs = s >>> 3;
    const is = s >>> 2;
    const len = i32[is + LEN_I];
    if (mode === 0) return f64[fs + SEQ] - len + k - f64[fs + TORG];
    let p = i32[is + HEAD_I] + k;
    if (p >= cap) p -= cap;
    return (f64[((s + HEADER + cap * 8) >>> 3) + p] - f64[fs + TORG]) / f64[fs + TSCALE];
  }

  private recompute(s: number, mode: number, cap: number): void {
    const { f64, i32 } = this;
    const fs = s >>> 3;
    const is = s >>> 2;
    const ring = (s + HEADER) >>> 3;
    const len = i32[is + LEN_I];
    const head = i32[is + HEAD_I];
    const x0 = f64[ring + head];
    if (mode === 0) f64[fs + TORG] = f64[fs + SEQ] - len;
    else f64[fs + TORG] = f64[((s + HEADER + cap * 8) >>> 3) + head];
    f64[fs + X0] = x0;
    let sx = 0;
    let st = 0;
    for (let k = 0; k < len; k++) {
      let p = head + k;
      if (p >= cap) p -= cap;
      sx += f64[ring + p] - x0;
      st += this.entryTime(s, mode, cap, k);
    }
    const nf = len;
    const mx = sx / nf;
    const mt = st / nf;
    let m2x = 0;
    let m2t = 0;
    let cxt = 0;
    for (let k = 0; k < len; k++) {
      let p = head + k;
      if (p >= cap) p -= cap;
      const dx = f64[ring + p] - x0 - mx;
      const dt = this.entryTime(s, mode, cap, k) - mt;
      m2x += dx * dx;
      m2t += dt * dt;
      cxt += dt * dx;
    }
    f64[fs + MEANX] = mx;
    f64[fs + M2X] = m2x;
    f64[fs + MEANT] = mt;
    f64[fs + M2T] = m2t;
    f64[fs + CXT] = cxt;
    f64[fs + ERRX] = 0;
    f64[fs + ERRT] = 0;
    f64[fs + ERRC] = 0;
    i32[is + STEPS_I] = 0;
  }

  private writeRow(s: number, mode: number, cap: number, x: number, flags: number, o: number): void {
    const { f64, i32, u16 } = this;
    const fs = s >>> 3;
    const is = s >>> 2;
    const ring = (s + HEADER) >>> 3;
    const len = i32[is + LEN_I];
    const nf = len;
    const minDq = minDqAt(s, cap, mode) >>> 1;
    const lo = f64[ring + dqGet(u16, minDq, cap, i32[is + MINH_I], 0)];
    const hi = f64[ring + dqGet(u16, minDq + cap, cap, i32[is + MAXH_I], 0)];
    const m2t = f64[fs + M2T];
    const slope = len > 1 && m2t > 0 ? f64[fs + CXT] / m2t : NaN;
    writeMoments(f64, o, nf, lo, hi, f64[fs + X0] + f64[fs + MEANX], f64[fs + M2X], slope, f64[fs + EWMA], x, flags);
  }
}

// ---- state block layout: kernels/rolling.ts, byte offsets → typed-array field indices ----

const MODE_I = 0; // i32 fields: byte offset / 4
const CAP_I = 1;
const HEAD_I = 2;
const LEN_I = 3;
const MINH_I = 4;
const MINL_I = 5;
const MAXH_I = 6;
const MAXL_I = 7;
const SPAN = 4; // f64 fields: byte offset / 8
const ALPHA = 5;
const SEQ = 6;
const EWMA = 7;
const MEANX = 8; // mean of x − X0
const M2X = 9;
const MEANT = 10; // mean of the slope-times relative to TORG
const M2T = 11;
const CXT = 12;
const TMAX = 13;
const TSCALE = 14;
const OVERFLOWS = 15;
const TORG = 16;
const X0 = 17;
const ERRX = 18;
const ERRT = 19;
const ERRC = 20;
const STEPS_I = 42; // i32 at byte 168
const HEADER = 176;

const EPS4 = 4 * Number.EPSILON;
const ERR_TOLERANCE = 1e-11;
const DRIFT_MAX = 1e4;
const STEPS_MAX = 65536;
const FLAG_TRUNCATED = 1;

/** Byte offset of the min deque (u16 ring positions); the max deque follows it, cap entries later. */
function minDqAt(s: number, cap: number, mode: number): number {
  return s + HEADER + cap * 8 * (mode === 1 ? 2 : 1);
}

/** Entry k of a deque whose u16 index base is `dq` and whose head is `head`. */
function dqGet(u16: Uint16Array, dq: number, cap: number, head: number, k: number): number {
  let p = head + k;
  if (p >= cap) p -= cap;
  return u16[dq + p];
}

/**
 * Writes one output row at byte offset `o` (count, mean, std, std_pop, min, max, slope, ewma, z,
 * flags) from the window's moments, clamped as the kernel clamps them: a window of equal values has
 * m2 = 0 and that value as mean, a negative m2 (rounding) is 0, and the mean stays within [lo, hi].
 */
function writeMoments(
  f64: Float64Array,
  o: number,
  nf: number,
  lo: number,
  hi: number,
  meanIn: number,
  m2In: number,
  slope: number,
  ewma: number,
  x: number,
  flags: number,
): void {
  let mean = meanIn;
  let m2 = m2In;
  if (lo === hi) {
    mean = lo;
    m2 = 0;
  } else if (m2 < 0) m2 = 0;
  if (mean < lo) mean = lo;
  else if (mean > hi) mean = hi;
  const std = nf > 1 ? Math.sqrt(m2 / (nf - 1)) : NaN;
  const r = o >>> 3;
  f64[r] = nf;
  f64[r + 1] = mean;
  f64[r + 2] = std;
  f64[r + 3] = Math.sqrt(m2 / nf);
  f64[r + 4] = lo;
  f64[r + 5] = hi;
  f64[r + 6] = slope;
  f64[r + 7] = ewma;
  f64[r + 8] = std > 0 ? (x - mean) / std : NaN;
  f64[r + 9] = flags;
}
