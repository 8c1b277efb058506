// Serial-number integrity per production line: GS1 check digits and format, sequence tests
// against recent serials, character statistics of a sliding window of the last K serials
// (Shannon entropy overall and per position, NIST SP 800-90B §6.3.1 most-common-value
// min-entropy), and the line's production rhythm (burst, gap, clock going backwards or ahead).
//
// Byte layouts (payload, reason bits, output row, parameters) are defined in
// operators/serial/layout.ts; this file mirrors them. The kernel decides reason bits 0–11; the
// main thread adds the cross-line verdicts (duplicates, behaviour) and the score.
//
// Definitions (the reference kernels/reference/serial-reference.ts implements the same):
// - GTIN: 8, 12, 13 or 14 digits whose last digit is the GS1 mod-10 check digit (GS1 General
//   Specifications §7.9.1: weights 3, 1, 3, … from the digit left of the check digit).
// - Serial: 1–20 characters, each in the GS1 AI encodable character set 82 (GenSpecs §7.11,
//   Figure 7.11-1). The first 20 bytes of a serial form its positions 0..19.
// - Sequence, against each of the R most recent serials of the line with the same length:
//   common prefix c; suffixes compared as numbers in base 10 (digits only), 36 (digits and one
//   letter case) or 62 (both cases), suffix lengths ≤ 15, 10, 8; a |difference| ≤ deltaMax is a
//   sequential step. A shared prefix ≥ prefixMin with ≥ prefixRepeat recent serials is a
//   repeated prefix. Identical serials are duplicates, not steps.
// - Window statistics over the serials in the window including the new one: overall Shannon
//   entropy H = log2 N − (1/N) Σ c log2 c over the N characters; MCV min-entropy
//   −log2 p_u, p̂ = mode/N, p_u = min(1, p̂ + z·sqrt(p̂(1 − p̂)/(N − 1))), z = 2.5758293035489008; the same per
//   position over the n_j serials long enough to have position j. Serial min-entropy H_s = Σ_j
//   MCV_j (0 where n_j < 2); guess probability = min(1, issued · 2^−H_s), issued = serials the
//   line has produced: the chance that a random guess hits one of them (EU FMD Art. 4(b): below
//   1/10,000). Serial surprisal S = Σ_j log2(n_j / count_j(c_j)) over the serial's own
//   characters (the window includes it): how predictable this serial was from the window.
//   A window of ≥ statMin serials is poor when its guess probability is above guessMax, healthy
//   otherwise; healthy windows teach the line's baseline H_ref (EWMA of H, weight 1/K). In a
//   poor window a serial is flagged low_entropy when S < surprisalRatio · L · H_ref (L: its
//   length) — it is one of the predictable ones; a random serial that merely shares the window
//   (after a sequential run, say) carries about L · H_ref bits and is not flagged. Before any
//   healthy window, every serial of a poor window is flagged.
// - Low variability: positions whose most common character holds ≥ share of n_j (n_j ≥
//   statMin); flagged when the serial carries that character at ≥ lowVarPositions of them.
// - Rhythm over production timestamps in arrival order: dt = t − previous t. Backwards: dt < 0.
//   Future: t > arrival + futureSkew (such records do not move the line's clock). Learned
//   interval: the mean of the first `warmup` intervals, then an EWMA (weight slowAlpha, /16 while
//   a burst lasts, frozen on a gap). Burst: after warm-up, the short-term EWMA (fastAlpha) below
//   burstRatio × learned. Gap: dt > gapFactor × learned. Above line rate: dt < minInterval.
//
// Entropy sums are kept exactly: the static table F[c] = round(c·log2 c · 2^32) (filled by the
// TypeScript side, operators/serial/layout.ts) turns Σ c log2 c into an integer below 2^53, so
// add/remove updates never drift. Modes are kept in O(1) with count-of-counts arrays: a count
// moves by ±1, so the mode moves by at most 1.
//
// The kernel allocates nothing and keeps no globals.

const POSITIONS: i32 = 20;
const ENTRY_BYTES: i32 = 24;
const FIXED: f64 = 4294967296.0;
// The unrounded 99.5 % normal quantile, as NIST's ea_non_iid (operators/serial/layout.ts MCV_Z).
const MCV_Z: f64 = 2.5758293035489008;

// GS1 AI encodable character set 82 as a 128-bit mask (bit c set: character code c allowed).
const AI82_LO: u64 = 0xffffffe600000000;
const AI82_HI: u64 = 0x07fffffe87fffffe;

// ---- payload (operators/serial/layout.ts PAYLOAD) ----
const P_ARRIVAL: u32 = 0;
const P_SERIAL_CHARS: u32 = 12;
const P_SERIAL_BYTES: u32 = 13;
const P_GTIN_BYTES: u32 = 14;
const P_REC_FLAGS: u32 = 18;
const P_GTIN_CHARS: u32 = 19;
const P_SERIAL: u32 = 20;
const P_GTIN: u32 = 52;
const REC_SERIAL_TRUNCATED: u32 = 1;
const REC_SERIAL_NON_ASCII: u32 = 2;
const REC_BATCH_CLOSE: u32 = 4;
const REC_GTIN_TRUNCATED: u32 = 8;

// ---- reason bits (REASON) ----
const R_GTIN: i32 = 1 << 0;
const R_LENGTH: i32 = 1 << 1;
const R_CHARSET: i32 = 1 << 2;
const R_DELTA: i32 = 1 << 3;
const R_PREFIX: i32 = 1 << 4;
const R_LOWVAR: i32 = 1 << 5;
const R_ENTROPY: i32 = 1 << 6;
const R_BURST: i32 = 1 << 7;
const R_RATE: i32 = 1 << 8;
const R_GAP: i32 = 1 << 9;
const R_BACKWARDS: i32 = 1 << 10;
const R_FUTURE: i32 = 1 << 11;
const MARK_CONTROL: i32 = 1 << 25;

// ---- output row (SERIAL_COL), f64 offsets in bytes ----
export const SERIAL_OUT_FIELDS: i32 = 17;
const O_FLAGS: u32 = 0;
const O_H: u32 = 8;
const O_MCV: u32 = 16;
const O_HS: u32 = 24;
const O_GUESS: u32 = 32;
const O_WINDOW: u32 = 40;
const O_HPOS_MIN: u32 = 48;
const O_INTERVAL: u32 = 56;
const O_LEARNED: u32 = 64;
const O_DELTA: u32 = 72;
const O_ISSUED: u32 = 80;
const O_READY: u32 = 88;
const O_SURPRISAL: u32 = 96;

// ---- state block ----
const K: u32 = 0; //              i32  window length
const RECENT: u32 = 4; //         i32
const PREFIX_MIN: u32 = 8; //     i32
const PREFIX_REPEAT: u32 = 12; // i32
const LOWVAR_POS: u32 = 16; //    i32
const STAT_MIN: u32 = 20; //      i32
const WARMUP: u32 = 24; //        i32
const WCOUNT: u32 = 28; //        i32  serials in the window
const WNEXT: u32 = 32; //         i32  ring index the next serial goes to
const NCHARS: u32 = 36; //        i32  characters in the window
const MODE: u32 = 40; //          i32  count of the most common character
const INTERVALS: u32 = 44; //     i32  intervals learned (saturates)
const DELTA_MAX: u32 = 48; //     f64
const LOWVAR_SHARE: u32 = 56; //  f64
const GUESS_MAX: u32 = 64; //     f64
const FAST_ALPHA: u32 = 72; //    f64
const SLOW_ALPHA: u32 = 80; //    f64
const BURST_RATIO: u32 = 88; //   f64
const GAP_FACTOR: u32 = 96; //    f64
const MIN_INTERVAL: u32 = 104; // f64
const FUTURE_SKEW: u32 = 112; //  f64
const SUM_F: u32 = 120; //        f64  Σ F[count] over characters (exact integer)
const PREV_TIME: u32 = 128; //    f64  the line's clock: newest accepted production time (NaN)
const FAST: u32 = 136; //         f64  short-term EWMA interval
const SLOW: u32 = 144; //         f64  learned interval
const ISSUED: u32 = 152; //       f64  serials the line has produced
const SURPRISAL_RATIO: u32 = 160; // f64
const H_REF: u32 = 168; //         f64  baseline Shannon bits/char of the line's healthy windows (NaN)
const MCV_N: u32 = 176; //         i32  characters and mode the cached overall min-entropy was computed for
const MCV_MODE: u32 = 180; //      i32
const MCV_H: u32 = 184; //         f64  cached overall MCV min-entropy
// 192..255: unused
const POS_N: u32 = 256; //        u32 × 20  serials in the window with position j
const POS_MODE: u32 = 336; //     u32 × 20  count of the most common character at j
const POS_HN: u32 = 416; //       u32 × 20  n_j and mode_j the cached min-entropy was computed for
const POS_HM: u32 = 496; //       u32 × 20
const POS_SUM_F: u32 = 576; //    f64 × 20  Σ F[count] at j
const POS_HMIN: u32 = 736; //     f64 × 20  MCV min-entropy at j (cache)
const HIST: u32 = 896; //         u32 × 128 character counts
const POS_HIST: u32 = 1408; //    u16 × 20 × 128
const RING: u32 = 6528; //        ENTRY_BYTES × K: [stored length u8][20 bytes][3 unused]
// then COC: u16 × (20K + 1), POS_COC: u16 × 20 × (K + 1)

export function serialStateBytes(k: i32): i32 {
  return (<i32>RING + ENTRY_BYTES * k + 2 * (POSITIONS * k + 1) + 2 * POSITIONS * (k + 1) + 7) & ~7;
}

/** Zeroes the block and sets the parameters (validated on the TypeScript side). */
export function serialInit(
  s: usize, k: i32, recent: i32, prefixMin: i32, prefixRepeat: i32, lowVarPositions: i32, statMin: i32, warmup: i32,
  deltaMax: f64, lowVarShare: f64, guessMax: f64, fastAlpha: f64, slowAlpha: f64, burstRatio: f64, gapFactor: f64,
  minInterval: f64, futureSkew: f64, surprisalRatio: f64,
): void {
  memory.fill(s, 0, serialStateBytes(k));
  store<i32>(s, k, K);
  store<i32>(s, recent, RECENT);
  store<i32>(s, prefixMin, PREFIX_MIN);
  store<i32>(s, prefixRepeat, PREFIX_REPEAT);
  store<i32>(s, lowVarPositions, LOWVAR_POS);
  store<i32>(s, statMin, STAT_MIN);
  store<i32>(s, warmup, WARMUP);
  store<f64>(s, deltaMax, DELTA_MAX);
  store<f64>(s, lowVarShare, LOWVAR_SHARE);
  store<f64>(s, guessMax, GUESS_MAX);
  store<f64>(s, fastAlpha, FAST_ALPHA);
  store<f64>(s, slowAlpha, SLOW_ALPHA);
  store<f64>(s, burstRatio, BURST_RATIO);
  store<f64>(s, gapFactor, GAP_FACTOR);
  store<f64>(s, minInterval, MIN_INTERVAL);
  store<f64>(s, futureSkew, FUTURE_SKEW);
  store<f64>(s, surprisalRatio, SURPRISAL_RATIO);
  store<f64>(s, NaN, PREV_TIME);
  store<f64>(s, NaN, FAST);
  store<f64>(s, NaN, SLOW);
  store<f64>(s, NaN, H_REF);
  store<i32>(s, -1, MCV_N);
}

/**
 * Processes n records of one key group: record i belongs to the line whose state is at
 * stateBase + slots[i]·stateStride, its production time is times[i], its payload at
 * payload + i·payloadBytes. Writes n rows of SERIAL_OUT_FIELDS f64 at out. `tables` is the
 * static F/L2 region. Returns n.
 */
export function serialProcess(
  stateBase: usize, stateStride: i32, slots: usize, times: usize, payload: usize, payloadBytes: i32, n: i32, out: usize,
  tables: usize,
): i32 {
  for (let i = 0; i < n; i++) {
    const s = stateBase + <usize>load<u32>(slots + (<usize>i << 2)) * <usize>stateStride;
    const p = payload + <usize>i * <usize>payloadBytes;
    const o = out + <usize>i * (<usize>SERIAL_OUT_FIELDS << 3);
    step(s, load<f64>(times + (<usize>i << 3)), p, o, tables);
  }
  return n;
}

/** 1 when the `len` ASCII digits at ptr end in their GS1 mod-10 check digit (len ≥ 2), else 0. */
export function gs1CheckDigitValid(ptr: usize, len: i32): i32 {
  if (len < 2) return 0;
  let sum: i32 = 0;
  for (let i = 0; i < len; i++) {
    const d = <i32>load<u8>(ptr + <usize>i) - 48;
    if (<u32>d > 9) return 0;
    // Weight 3 for the digit left of the check digit, then alternating 1, 3, …
    if (i < len - 1) sum += ((len - 1 - i) & 1) != 0 ? 3 * d : d;
  }
  const check = (10 - sum % 10) % 10;
  return check == <i32>load<u8>(ptr + <usize>(len - 1)) - 48 ? 1 : 0;
}

// ---- internals ----

function step(s: usize, t: f64, p: usize, o: usize, tables: usize): void {
  const rec = <u32>load<u8>(p, P_REC_FLAGS);
  if ((rec & REC_BATCH_CLOSE) != 0) {
    store<f64>(o, <f64>MARK_CONTROL, O_FLAGS);
    for (let f: u32 = 1; f < <u32>SERIAL_OUT_FIELDS; f++) store<f64>(o + (<usize>f << 3), NaN);
    return;
  }
  let flags: i32 = 0;
  const gtinChars = <i32>load<u8>(p, P_GTIN_CHARS);
  if ((rec & REC_GTIN_TRUNCATED) != 0 || !(gtinChars == 8 || gtinChars == 12 || gtinChars == 13 || gtinChars == 14)
    || <i32>load<u8>(p, P_GTIN_BYTES) != gtinChars || gs1CheckDigitValid(p + P_GTIN, gtinChars) == 0) flags |= R_GTIN;
  const chars = <i32>load<u8>(p, P_SERIAL_CHARS);
  const stored = <i32>load<u8>(p, P_SERIAL_BYTES);
  if (chars < 1 || chars > POSITIONS) flags |= R_LENGTH;
  if ((rec & (REC_SERIAL_TRUNCATED | REC_SERIAL_NON_ASCII)) != 0 || !inAi82(p + P_SERIAL, stored)) flags |= R_CHARSET;

  const k = load<i32>(s, K);
  const len = min(stored, POSITIONS);
  if (len > 0) {
    flags |= scanRecent(s, p + P_SERIAL, len, k, o);
    const count = load<i32>(s, WCOUNT);
    let slot = load<i32>(s, WNEXT);
    const e = ringEntry(s, slot);
    // A full window: the slot holds the serial that leaves it.
    const leaving = count == k ? <i32>load<u8>(e) : 0;
    if (count < k) store<i32>(s, count + 1, WCOUNT);
    const changed = replaceEntry(s, e, leaving, p + P_SERIAL, len, tables, k);
    slot++;
    store<i32>(s, slot == k ? 0 : slot, WNEXT);
    store<f64>(s, load<f64>(s, ISSUED) + 1, ISSUED);
    refreshPositionMinEntropy(s, changed);
    if (lowVariability(s, p + P_SERIAL, len)) flags |= R_LOWVAR;
  }
  flags |= windowStatistics(s, o, tables, k, p + P_SERIAL, len);
  flags |= rhythm(s, t, load<f64>(p, P_ARRIVAL), o);
  store<f64>(o, <f64>flags, O_FLAGS);
  if (len == 0) store<f64>(o, NaN, O_DELTA);
  store<f64>(o, load<f64>(s, ISSUED), O_ISSUED);
  const ready = min(1.0, <f64>load<i32>(s, WCOUNT) / <f64>k) * min(1.0, <f64>load<i32>(s, INTERVALS) / <f64>load<i32>(s, WARMUP));
  store<f64>(o, ready, O_READY);
}

@inline function ringEntry(s: usize, slot: i32): usize {
  return s + RING + <usize>(slot * ENTRY_BYTES);
}

/** Ring entry of the serial `back` places before the newest (back = 0: the newest). */
@inline function recentEntry(s: usize, back: i32, k: i32): usize {
  let slot = load<i32>(s, WNEXT) - 1 - back;
  if (slot < 0) slot += k;
  return ringEntry(s, slot);
}

@inline function cocPtr(s: usize, k: i32): usize {
  return s + RING + <usize>(ENTRY_BYTES * k);
}

@inline function posCocPtr(s: usize, k: i32, j: i32): usize {
  return cocPtr(s, k) + <usize>(2 * (POSITIONS * k + 1)) + <usize>(2 * j * (k + 1));
}

function inAi82(ptr: usize, len: i32): bool {
  // Branch-free over the whole serial: its characters are digits and letters at random.
  let ok: u64 = 1;
  for (let i = 0; i < len; i++) {
    const c = <u64>load<u8>(ptr + <usize>i);
    const word = select<u64>(AI82_LO, AI82_HI, c < 64);
    ok &= (word >> (c & 63)) & select<u64>(1, 0, c < 128);
  }
  return ok != 0;
}

/** Bit i set where bytes i of the 20 at a and at b are equal (16-byte compares of bytes 0–15 and 4–19). */
@inline function equalMask20(a: usize, b: usize): i32 {
  const m0 = i8x16.bitmask(i8x16.eq(v128.load(a), v128.load(b)));
  const m1 = i8x16.bitmask(i8x16.eq(v128.load(a, 4), v128.load(b, 4)));
  return m0 | (m1 << 4);
}

/** Bit i set where byte i of the 16 in v lies in lo … lo + n − 1 (bytes compared unsigned). */
@inline function rangeMask16(v: v128, lo: i8, n: i8): i32 {
  return i8x16.bitmask(i8x16.lt_u(i8x16.sub(v, i8x16.splat(lo)), i8x16.splat(n)));
}

/** Bit i set where byte i of the 20 at p is an ASCII digit. */
@inline function digitMask20(p: usize): i32 {
  return rangeMask16(v128.load(p), 48, 10) | (rangeMask16(v128.load(p, 4), 48, 10) << 4);
}

/**
 * Character classes of the 20 bytes at p as three 20-bit masks: digits in bits 0–19, upper case
 * in 20–39, lower case in 40–59 (a byte in none of them is of class "other").
 */
@inline function classMasks(p: usize): u64 {
  const v0 = v128.load(p);
  const v1 = v128.load(p, 4);
  const d = rangeMask16(v0, 48, 10) | (rangeMask16(v1, 48, 10) << 4);
  const u = rangeMask16(v0, 65, 26) | (rangeMask16(v1, 65, 26) << 4);
  const l = rangeMask16(v0, 97, 26) | (rangeMask16(v1, 97, 26) << 4);
  return <u64>d | (<u64>u << 20) | (<u64>l << 40);
}

/**
 * Class bits (1 digit, 2 upper, 4 lower, 8 other) of the characters of two serials at the
 * positions in `positions` (bit i: position i), from their {@link classMasks}.
 */
@inline function suffixClasses(a: u64, b: u64, positions: i32): i32 {
  const m = <u64>positions;
  const both = a | b;
  const anyA = <i32>((a | (a >> 20) | (a >> 40)) & 0xfffff);
  const anyB = <i32>((b | (b >> 20) | (b >> 40)) & 0xfffff);
  return select(1, 0, (both & m) != 0) | select(2, 0, (both & (m << 20)) != 0) | select(4, 0, (both & (m << 40)) != 0)
    | select(8, 0, (positions & ~(anyA & anyB)) != 0);
}

@inline function digitValue(c: i32, base: i32): i32 {
  if (c <= 57) return c - 48;
  if (c <= 90) return c - 55;
  return base == 62 ? c - 61 : c - 87;
}

/**
 * One pass over the R most recent serials of the line (before the new one enters). Sequence:
 * the smallest |difference| to a recent serial of the same length, written at O_DELTA (NaN: none
 * comparable); R_DELTA when it is ≤ deltaMax. Prefix: R_PREFIX when ≥ prefixRepeat recent serials
 * share the first prefixMin characters (serials longer than prefixMin only) without being
 * identical to it. The common prefix c of each pair comes from one 20-byte equality mask; the
 * character classes of the differing suffix from class masks (a class outside the suffix's
 * number base anywhere in the suffix rules the pair out, as a scan stopping at the first did).
 */
function scanRecent(s: usize, serial: usize, len: i32, k: i32, o: usize): i32 {
  const count = load<i32>(s, WCOUNT);
  const recent = min(load<i32>(s, RECENT), count);
  const need = load<i32>(s, PREFIX_MIN);
  const prefixOn = need != 0 && len > need;
  const lenMask = (1 << len) - 1;
  const own = classMasks(serial);
  const ownDigits = <i32>(own & 0xfffff);
  const ownAny = <i32>((own | (own >> 20) | (own >> 40)) & 0xfffff);
  let best: f64 = NaN;
  let hits = 0;
  for (let b = 0; b < recent; b++) {
    const e = recentEntry(s, b, k);
    const l = <i32>load<u8>(e);
    // Bits 20–31 of the inverted mask are set: c ≤ 20.
    const c = min(<i32>ctz(~equalMask20(serial, e + 1)), len);
    // A serial identical to a recent one is a duplicate, not a shared prefix.
    if (prefixOn && l >= need && c >= need && !(l == len && c == len)) hits++;
    if (l != len) continue;
    const digits = len - c;
    if (digits == 0 || digits > 15) continue;
    const suffix = lenMask & ~((1 << c) - 1);
    let classes = 1;
    if (digits > 10) {
      // Longer than 10 characters only a decimal counter fits in a double: digits only, the
      // serial's own suffix checked first (no load of the recent one's bytes when it fails).
      if ((ownDigits & suffix) != suffix || (digitMask20(e + 1) & suffix) != suffix) continue;
    } else {
      if ((suffix & ~ownAny) != 0) continue;
      classes = suffixClasses(own, classMasks(e + 1), suffix);
      if ((classes & 8) != 0) continue;
    }
    const base = classes == 1 ? 10 : (classes & 6) == 6 ? 62 : 36;
    const maxDigits = base == 10 ? 15 : base == 36 ? 10 : 8;
    if (digits > maxDigits) continue;
    let va: f64 = 0;
    let vb: f64 = 0;
    for (let i = c; i < len; i++) {
      va = va * <f64>base + <f64>digitValue(<i32>load<u8>(serial + <usize>i), base);
      vb = vb * <f64>base + <f64>digitValue(<i32>load<u8>(e + 1 + <usize>i), base);
    }
    const d = abs(va - vb);
    if (!(d >= best)) best = d;
  }
  store<f64>(o, best, O_DELTA);
  let flags = best == best && best <= load<f64>(s, DELTA_MAX) ? R_DELTA : 0;
  if (prefixOn && hits >= load<i32>(s, PREFIX_REPEAT)) flags |= R_PREFIX;
  return flags;
}

@inline function bucket(c: u32): u32 {
  return c < 128 ? c : 0;
}

/** Moves a count from c to c + d (d = ±1) in a count-of-counts array and its mode. */
@inline function cocMove(coc: usize, c: i32, d: i32, modePtr: usize): void {
  if (c > 0) store<u16>(coc + (<usize>c << 1), load<u16>(coc + (<usize>c << 1)) - 1);
  const next = c + d;
  if (next > 0) store<u16>(coc + (<usize>next << 1), load<u16>(coc + (<usize>next << 1)) + 1);
  const mode = load<i32>(modePtr);
  if (next > mode) store<i32>(modePtr, next);
  else if (d < 0 && c == mode && load<u16>(coc + (<usize>c << 1)) == 0) store<i32>(modePtr, c - 1);
}

/**
 * The first len (≤ 20) bytes at serial into the 20 at dst, zeros after them: two overlapping
 * 16-byte stores (bytes 0–15, 4–19), lanes at or past len cleared (no memory.copy/fill calls).
 */
@inline function storeSerial(dst: usize, serial: usize, len: i32): void {
  const iota = i8x16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const n = i8x16.splat(<i8>len);
  v128.store(dst, v128.and(v128.load(serial), i8x16.lt_u(iota, n)));
  v128.store(dst, v128.and(v128.load(serial, 4), i8x16.lt_u(i8x16.add(iota, i8x16.splat(4)), n)), 4);
}

/** A count c ≥ 1 drops to c − 1 in a count-of-counts array; returns the new mode (cocMove with d = −1). */
@inline function cocRemove(coc: usize, c: i32, mode: i32): i32 {
  const at = coc + (<usize>c << 1);
  const left = <i32>load<u16>(at) - 1;
  store<u16>(at, <u16>left);
  if (c > 1) store<u16>(at - 2, load<u16>(at - 2) + 1);
  return c == mode && left == 0 ? c - 1 : mode;
}

/** A count c ≥ 0 rises to c + 1 in a count-of-counts array; returns the new mode (cocMove with d = +1). */
@inline function cocAdd(coc: usize, c: i32, mode: i32): i32 {
  const at = coc + (<usize>c << 1);
  if (c > 0) store<u16>(at, load<u16>(at) - 1);
  store<u16>(at + 2, load<u16>(at + 2) + 1);
  return max(mode, c + 1);
}

/** F[c + d] − F[c]: exact, both integers below 2^53. */
@inline function fChange(tables: usize, c: i32, d: i32): f64 {
  return load<f64>(tables + (<usize>(c + d) << 3)) - load<f64>(tables + (<usize>c << 3));
}

/**
 * Replaces the ring entry `e` (its serial of `leaving` characters leaves the window; 0: an empty
 * slot) by the serial of `len` characters at `serial`, in the counts, sums and modes. Where both
 * serials have the same character at a position, removing one and adding the other changes
 * nothing (every count comes back; the sums are exact integers), so that position is skipped;
 * elsewhere the leaving character is removed before the new one is added, so no count exceeds
 * the window's. Σ F[count] is summed in a local: every term is an integer below 2^53, so the sum
 * is exact in any order. Returns the positions (bit j) whose n_j or mode_j may have changed
 * (a position both serials hold: only where mode_j moved).
 */
function replaceEntry(s: usize, e: usize, leaving: i32, serial: usize, len: i32, tables: usize, k: i32): i32 {
  const coc = cocPtr(s, k);
  let sum = load<f64>(s, SUM_F);
  const both = min(leaving, len);
  let changed = 0;
  let mode = load<i32>(s, MODE);
  for (let j = 0; j < both; j++) {
    const a = bucket(<u32>load<u8>(e + 1 + <usize>j));
    const b = bucket(<u32>load<u8>(serial + <usize>j));
    if (a == b) continue;
    // a ≠ b: the two counts are distinct cells; the two changes of F are summed first (exact).
    const ha = s + HIST + (<usize>a << 2);
    const hb = s + HIST + (<usize>b << 2);
    const ca = <i32>load<u32>(ha);
    store<u32>(ha, <u32>(ca - 1));
    const cb = <i32>load<u32>(hb);
    store<u32>(hb, <u32>(cb + 1));
    mode = cocAdd(coc, cb, cocRemove(coc, ca, mode));
    sum += fChange(tables, ca, -1) + fChange(tables, cb, 1);
    const row = s + POS_HIST + (<usize>(j * 128) << 1);
    const pa = row + (<usize>a << 1);
    const pb = row + (<usize>b << 1);
    const pca = <i32>load<u16>(pa);
    store<u16>(pa, <u16>(pca - 1));
    const pcb = <i32>load<u16>(pb);
    store<u16>(pb, <u16>(pcb + 1));
    const pcoc = posCocPtr(s, k, j);
    const pmode = s + POS_MODE + (<usize>j << 2);
    const modeBefore = load<i32>(pmode);
    const modeAfter = cocAdd(pcoc, pcb, cocRemove(pcoc, pca, modeBefore));
    store<i32>(pmode, modeAfter);
    // n_j stays: only a moved mode_j can change the position's min-entropy.
    changed |= select(1 << j, 0, modeAfter != modeBefore);
    const ps = s + POS_SUM_F + (<usize>j << 3);
    store<f64>(ps, load<f64>(ps) + (fChange(tables, pca, -1) + fChange(tables, pcb, 1)));
  }
  store<i32>(s, mode, MODE);
  for (let j = both; j < leaving; j++) {
    const a = bucket(<u32>load<u8>(e + 1 + <usize>j));
    sum = countOverall(s, a, -1, tables, coc, sum);
    const ps = s + POS_SUM_F + (<usize>j << 3);
    store<f64>(ps, countPosition(s, j, a, -1, tables, posCocPtr(s, k, j), s + POS_MODE + (<usize>j << 2), load<f64>(ps)));
    const pn = s + POS_N + (<usize>j << 2);
    store<u32>(pn, load<u32>(pn) - 1);
  }
  for (let j = both; j < len; j++) {
    const b = bucket(<u32>load<u8>(serial + <usize>j));
    sum = countOverall(s, b, 1, tables, coc, sum);
    const ps = s + POS_SUM_F + (<usize>j << 3);
    store<f64>(ps, countPosition(s, j, b, 1, tables, posCocPtr(s, k, j), s + POS_MODE + (<usize>j << 2), load<f64>(ps)));
    const pn = s + POS_N + (<usize>j << 2);
    store<u32>(pn, load<u32>(pn) + 1);
  }
  store<f64>(s, sum, SUM_F);
  store<i32>(s, load<i32>(s, NCHARS) + len - leaving, NCHARS);
  store<u8>(e, <u8>len);
  storeSerial(e + 1, serial, len);
  // Positions past the shorter serial gained or lost a serial: n_j changed.
  const longer = max(leaving, len);
  return changed | (((1 << longer) - 1) & ~((1 << both) - 1));
}

/** Adds d (±1) occurrences of character b to the overall counts and mode; returns `sum` + the change of F[count]. */
@inline function countOverall(s: usize, b: u32, d: i32, tables: usize, coc: usize, sum: f64): f64 {
  const h = s + HIST + (<usize>b << 2);
  const c = <i32>load<u32>(h);
  store<u32>(h, <u32>(c + d));
  cocMove(coc, c, d, s + MODE);
  return sum + (load<f64>(tables + (<usize>(c + d) << 3)) - load<f64>(tables + (<usize>c << 3)));
}

/** Adds d (±1) occurrences of character b at position j (count and mode; n_j is the caller's); returns `sum` + the change of F[count]. */
@inline function countPosition(s: usize, j: i32, b: u32, d: i32, tables: usize, coc: usize, modePtr: usize, sum: f64): f64 {
  const ph = s + POS_HIST + (<usize>(j * 128 + <i32>b) << 1);
  const pc = <i32>load<u16>(ph);
  store<u16>(ph, <u16>(pc + d));
  cocMove(coc, pc, d, modePtr);
  return sum + (load<f64>(tables + (<usize>(pc + d) << 3)) - load<f64>(tables + (<usize>pc << 3)));
}

/** −log2 of the NIST SP 800-90B §6.3.1 upper bound on the most common value's probability. */
@inline function mcvMinEntropy(mode: i32, n: i32): f64 {
  if (n < 2) return 0;
  const p = <f64>mode / <f64>n;
  const pu = min(1.0, p + MCV_Z * Math.sqrt(p * (1.0 - p) / (<f64>n - 1.0)));
  return 0.0 - Math.log2(pu);
}

/**
 * Recomputes the cached per-position min-entropy where n_j or mode_j changed; only the positions
 * in `changed` (bit j) can have (elsewhere the cache is the one the previous serial left).
 */
function refreshPositionMinEntropy(s: usize, changed: i32): void {
  while (changed != 0) {
    const j = ctz(changed);
    changed &= changed - 1;
    const off = <usize>j << 2;
    const n = load<u32>(s + POS_N + off);
    const mode = load<u32>(s + POS_MODE + off);
    if (n == load<u32>(s + POS_HN + off) && mode == load<u32>(s + POS_HM + off)) continue;
    store<u32>(s + POS_HN + off, n);
    store<u32>(s + POS_HM + off, mode);
    store<f64>(s + POS_HMIN + (<usize>j << 3), mcvMinEntropy(<i32>mode, <i32>n));
  }
}

function lowVariability(s: usize, serial: usize, len: i32): bool {
  const statMin = <u32>load<i32>(s, STAT_MIN);
  const share = load<f64>(s, LOWVAR_SHARE);
  let hits = 0;
  for (let j = 0; j < len; j++) {
    const n = load<u32>(s + POS_N + (<usize>j << 2));
    if (n < statMin) continue;
    const mode = load<u32>(s + POS_MODE + (<usize>j << 2));
    if (<f64>mode < share * <f64>n) continue;
    const b = bucket(<u32>load<u8>(serial + <usize>j));
    if (<u32>load<u16>(s + POS_HIST + (<usize>(j * 128 + <i32>b) << 1)) == mode) hits++;
  }
  return hits >= load<i32>(s, LOWVAR_POS);
}

/** Writes the window's entropy figures; returns R_ENTROPY for a predictable serial of a poor window. */
function windowStatistics(s: usize, o: usize, tables: usize, k: i32, serial: usize, len: i32): i32 {
  const l2 = tables + (<usize>(POSITIONS * k + 1) << 3);
  const wcount = load<i32>(s, WCOUNT);
  const nchars = load<i32>(s, NCHARS);
  const h = nchars >= 1 ? load<f64>(l2 + (<usize>nchars << 3)) - load<f64>(s, SUM_F) / (<f64>nchars * FIXED) : NaN;
  store<f64>(o, <f64>wcount, O_WINDOW);
  store<f64>(o, h, O_H);
  const mode = load<i32>(s, MODE);
  if (nchars != load<i32>(s, MCV_N) || mode != load<i32>(s, MCV_MODE)) {
    store<i32>(s, nchars, MCV_N);
    store<i32>(s, mode, MCV_MODE);
    store<f64>(s, mcvMinEntropy(mode, nchars), MCV_H);
  }
  store<f64>(o, nchars >= 2 ? load<f64>(s, MCV_H) : NaN, O_MCV);
  let hs: f64 = 0;
  let hposMin: f64 = Infinity;
  // Positions mostly share one n: one division for it, a multiplication per position.
  let lastN: i32 = -1;
  let inv: f64 = 0;
  for (let j = 0; j < POSITIONS; j++) {
    const n = <i32>load<u32>(s + POS_N + (<usize>j << 2));
    // n_j never grows with j (a serial holds positions 0 … its length − 1): from the first
    // position no serial reaches, every min-entropy term is +0, which leaves hs as it is.
    if (n == 0) break;
    hs += load<f64>(s + POS_HMIN + (<usize>j << 3));
    if (n >= 2) {
      if (n != lastN) {
        lastN = n;
        inv = 1.0 / (<f64>n * FIXED);
      }
      const hj = load<f64>(l2 + (<usize>n << 3)) - load<f64>(s + POS_SUM_F + (<usize>j << 3)) * inv;
      if (hj < hposMin) hposMin = hj;
    }
  }
  let surprisal: f64 = NaN;
  if (len > 0) {
    surprisal = 0;
    for (let j = 0; j < len; j++) {
      const n = <i32>load<u32>(s + POS_N + (<usize>j << 2));
      const b = bucket(<u32>load<u8>(serial + <usize>j));
      const c = <i32>load<u16>(s + POS_HIST + (<usize>(j * 128 + <i32>b) << 1));
      surprisal += load<f64>(l2 + (<usize>n << 3)) - load<f64>(l2 + (<usize>c << 3));
    }
  }
  store<f64>(o, surprisal, O_SURPRISAL);
  if (wcount < 2) {
    store<f64>(o, NaN, O_HS);
    store<f64>(o, NaN, O_GUESS);
    store<f64>(o, NaN, O_HPOS_MIN);
    return 0;
  }
  const guess = min(1.0, load<f64>(s, ISSUED) * Math.exp2(-hs));
  store<f64>(o, hs, O_HS);
  store<f64>(o, guess, O_GUESS);
  store<f64>(o, hposMin == Infinity ? NaN : hposMin, O_HPOS_MIN);
  if (wcount < load<i32>(s, STAT_MIN)) return 0;
  const href = load<f64>(s, H_REF);
  if (!(guess > load<f64>(s, GUESS_MAX))) {
    // A healthy window teaches the baseline, at the window's own pace (weight 1/K).
    store<f64>(s, href != href ? h : href + (h - href) / <f64>k, H_REF);
    return 0;
  }
  // A poor window: flag the predictable serials; with no healthy window seen yet, every serial.
  return href != href || surprisal < load<f64>(s, SURPRISAL_RATIO) * <f64>len * href ? R_ENTROPY : 0;
}

/** The line's production rhythm; writes interval and learned interval, returns the temporal bits. */
function rhythm(s: usize, t: f64, arrival: f64, o: usize): i32 {
  let flags: i32 = 0;
  let dt: f64 = NaN;
  const prev = load<f64>(s, PREV_TIME);
  if (arrival == arrival && t > arrival + load<f64>(s, FUTURE_SKEW)) {
    flags |= R_FUTURE;
  } else if (prev != prev) {
    store<f64>(s, t, PREV_TIME);
  } else if (t < prev) {
    flags |= R_BACKWARDS;
  } else {
    dt = t - prev;
    const warmup = load<i32>(s, WARMUP);
    const k = load<i32>(s, INTERVALS);
    const slow = load<f64>(s, SLOW);
    const minInterval = load<f64>(s, MIN_INTERVAL);
    if (minInterval > 0 && dt < minInterval) flags |= R_RATE;
    const gapFactor = load<f64>(s, GAP_FACTOR);
    const gap = k >= warmup && gapFactor > 0 && dt > gapFactor * slow;
    if (gap) flags |= R_GAP;
    const fast = k == 0 ? dt : load<f64>(s, FAST) + load<f64>(s, FAST_ALPHA) * (dt - load<f64>(s, FAST));
    store<f64>(s, fast, FAST);
    const burst = k >= warmup && fast < load<f64>(s, BURST_RATIO) * slow;
    if (burst) flags |= R_BURST;
    if (k < warmup) store<f64>(s, k == 0 ? dt : slow + (dt - slow) / <f64>(k + 1), SLOW);
    else if (!gap) store<f64>(s, slow + (burst ? load<f64>(s, SLOW_ALPHA) / 16.0 : load<f64>(s, SLOW_ALPHA)) * (dt - slow), SLOW);
    if (k < 0x3fffffff) store<i32>(s, k + 1, INTERVALS);
    store<f64>(s, t, PREV_TIME);
  }
  store<f64>(o, dt, O_INTERVAL);
  store<f64>(o, load<f64>(s, SLOW), O_LEARNED);
  return flags;
}
