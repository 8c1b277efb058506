/**
 * A plain TypeScript reference of the serial kernel (kernels/serial.ts): the same definitions,
 * computed the obvious way — the window kept as a list of serials, every histogram, entropy and
 * mode recomputed from scratch for each event with −Σ p·log2 p — so that it shares no
 * incremental bookkeeping with the kernel. Rhythm is a recurrence on both sides and is written
 * out in the same order, so it agrees exactly.
 *
 * Fields 0–11 of the output row (operators/serial/layout.ts SERIAL_COL).
 */
import {
  gs1CheckDigitValid,
  isAi82Character,
  MARK_CONTROL,
  MCV_Z,
  PAYLOAD,
  REASON,
  REC_BATCH_CLOSE,
  REC_GTIN_TRUNCATED,
  REC_SERIAL_NON_ASCII,
  REC_SERIAL_TRUNCATED,
  SERIAL_COL as C,
  SERIAL_KERNEL_FIELDS,
  SERIAL_POSITIONS,
  type SerialParams,
} from "../../operators/serial/mod.js";

export function mcvMinEntropy(mode: number, n: number): number {
  if (n < 2) return 0;
  const p = mode / n;
  return 0 - Math.log2(Math.min(1, p + MCV_Z * Math.sqrt((p * (1 - p)) / (n - 1))));
}

export function shannon(counts: ArrayLike<number>, n: number): number {
  let h = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i];
    if (c > 0) h -= (c / n) * Math.log2(c / n);
  }
  return h;
}

interface Line {
  window: Uint8Array[];
  issued: number;
  prev: number;
  fast: number;
  slow: number;
  intervals: number;
  /** Baseline Shannon bits/char of healthy windows. */
  hRef: number;
}

export class SerialReference {
  private readonly lines = new Map<number, Line>();

  constructor(readonly params: SerialParams) {}

  /** The kernel row of one event, given its line, production time and payload record. */
  process(lineId: number, t: number, payload: Uint8Array, offset = 0): Float64Array {
    const row = new Float64Array(SERIAL_KERNEL_FIELDS).fill(Number.NaN);
    const p = this.params;
    const rec = payload[offset + PAYLOAD.recordFlags];
    if ((rec & REC_BATCH_CLOSE) !== 0) {
      row[C.flags] = MARK_CONTROL;
      return row;
    }
    let line = this.lines.get(lineId);
    if (line === undefined) {
      line = { window: [], issued: 0, prev: Number.NaN, fast: Number.NaN, slow: Number.NaN, intervals: 0, hRef: Number.NaN };
      this.lines.set(lineId, line);
    }
    let flags = 0;
    const gtinChars = payload[offset + PAYLOAD.gtinChars];
    const gtin = ascii(payload, offset + PAYLOAD.gtin, payload[offset + PAYLOAD.gtinBytes]);
    if ((rec & REC_GTIN_TRUNCATED) !== 0 || ![8, 12, 13, 14].includes(gtinChars) || gtin.length !== gtinChars || !gs1CheckDigitValid(gtin))
      flags |= REASON.gtin_check_digit;
    const chars = payload[offset + PAYLOAD.serialChars];
    const storedBytes = payload[offset + PAYLOAD.serialBytes];
    const stored = payload.slice(offset + PAYLOAD.serial, offset + PAYLOAD.serial + storedBytes);
    if (chars < 1 || chars > 20) flags |= REASON.serial_length;
    if ((rec & (REC_SERIAL_TRUNCATED | REC_SERIAL_NON_ASCII)) !== 0 || !stored.every((b) => isAi82Character(b)))
      flags |= REASON.serial_charset;

    const serial = stored.slice(0, Math.min(storedBytes, SERIAL_POSITIONS));
    let deltaMin = Number.NaN;
    if (serial.length > 0) {
      const recent = line.window.slice(-p.recent).reverse();
      deltaMin = smallestDelta(serial, recent);
      if (deltaMin <= p.sequenceDeltaMax) flags |= REASON.sequential_delta;
      if (repeatedPrefix(serial, recent, p)) flags |= REASON.repeated_prefix;
      line.window.push(serial);
      if (line.window.length > p.window) line.window.shift();
      line.issued++;
    }
    // Histograms of the window, from scratch.
    const overall = new Array<number>(128).fill(0);
    const pos = Array.from({ length: SERIAL_POSITIONS }, () => new Array<number>(128).fill(0));
    const n = new Array<number>(SERIAL_POSITIONS).fill(0);
    let N = 0;
    for (const s of line.window) {
      s.forEach((b, j) => {
        const k = b < 128 ? b : 0;
        overall[k]++;
        pos[j][k]++;
        n[j]++;
        N++;
      });
    }
    if (serial.length > 0) {
      let hits = 0;
      for (let j = 0; j < serial.length; j++) {
        if (n[j] < p.statisticsMinSerials) continue;
        const mode = Math.max(...pos[j]);
        if (mode < p.lowVariabilityShare * n[j]) continue;
        if (pos[j][serial[j] < 128 ? serial[j] : 0] === mode) hits++;
      }
      if (hits >= p.lowVariabilityPositions) flags |= REASON.low_position_variability;
    }
    // Surprisal of the serial under the window's per-position frequencies (itself included).
    let surprisal = serial.length > 0 ? 0 : Number.NaN;
    for (let j = 0; j < serial.length; j++) surprisal += Math.log2(n[j]) - Math.log2(pos[j][serial[j] < 128 ? serial[j] : 0]);
    const w = line.window.length;
    row[C.window_serials] = w;
    row[C.entropy_bits_per_char] = N >= 1 ? shannon(overall, N) : Number.NaN;
    row[C.min_entropy_mcv] = N >= 2 ? mcvMinEntropy(Math.max(...overall), N) : Number.NaN;
    if (w >= 2) {
      let hs = 0;
      let hmin = Infinity;
      for (let j = 0; j < SERIAL_POSITIONS; j++) {
        hs += mcvMinEntropy(Math.max(...pos[j]), n[j]);
        if (n[j] >= 2) hmin = Math.min(hmin, shannon(pos[j], n[j]));
      }
      const guess = Math.min(1, line.issued * 2 ** -hs);
      row[C.serial_min_entropy_bits] = hs;
      row[C.guess_probability] = guess;
      row[C.position_entropy_min] = hmin === Infinity ? Number.NaN : hmin;
      if (w >= p.statisticsMinSerials) {
        const h = row[C.entropy_bits_per_char];
        if (!(guess > p.guessProbabilityMax)) line.hRef = Number.isNaN(line.hRef) ? h : line.hRef + (h - line.hRef) / p.window;
        else if (Number.isNaN(line.hRef) || surprisal < p.surprisalRatio * serial.length * line.hRef) flags |= REASON.low_entropy;
      }
    }
    row[C.serial_surprisal_bits] = surprisal;
    flags |= this.rhythm(line, t, new DataView(payload.buffer, payload.byteOffset + offset, 8).getFloat64(0, true), row);
    row[C.flags] = flags;
    row[C.sequence_delta_min] = deltaMin;
    row[C.line_serials] = line.issued;
    row[C.readiness] = Math.min(1, w / p.window) * Math.min(1, line.intervals / p.rateWarmup);
    return row;
  }

  private rhythm(line: Line, t: number, arrival: number, row: Float64Array): number {
    const p = this.params;
    let flags = 0;
    let dt = Number.NaN;
    if (!Number.isNaN(arrival) && t > arrival + p.futureSkew) flags |= REASON.timestamp_future;
    else if (Number.isNaN(line.prev)) line.prev = t;
    else if (t < line.prev) flags |= REASON.timestamp_backwards;
    else {
      dt = t - line.prev;
      const k = line.intervals;
      const ready = k >= p.rateWarmup;
      if (p.minInterval > 0 && dt < p.minInterval) flags |= REASON.above_line_rate;
      const gap = ready && p.gapFactor > 0 && dt > p.gapFactor * line.slow;
      if (gap) flags |= REASON.long_gap;
      line.fast = k === 0 ? dt : line.fast + p.fastAlpha * (dt - line.fast);
      const burst = ready && line.fast < p.burstRatio * line.slow;
      if (burst) flags |= REASON.burst;
      if (k < p.rateWarmup) line.slow = k === 0 ? dt : line.slow + (dt - line.slow) / (k + 1);
      else if (!gap) line.slow = line.slow + (burst ? p.slowAlpha / 16 : p.slowAlpha) * (dt - line.slow);
      line.intervals = k + 1;
      line.prev = t;
    }
    row[C.interval] = dt;
    row[C.learned_interval] = line.slow;
    return flags;
  }
}

/** Value of a suffix in base 10, 36 (one letter case) or 62 (both); NaN when not a counter. */
function counterBase(a: Uint8Array, b: Uint8Array, from: number): number {
  let digits = false;
  let upper = false;
  let lower = false;
  for (const s of [a, b]) {
    for (let i = from; i < s.length; i++) {
      const c = s[i];
      if (c >= 48 && c <= 57) digits = true;
      else if (c >= 65 && c <= 90) upper = true;
      else if (c >= 97 && c <= 122) lower = true;
      else return Number.NaN;
    }
  }
  if (!upper && !lower) return digits ? 10 : Number.NaN;
  return upper && lower ? 62 : 36;
}

function digitsValue(s: Uint8Array, from: number, base: number): number {
  let v = 0;
  for (let i = from; i < s.length; i++) {
    const c = s[i];
    const d = c <= 57 ? c - 48 : c <= 90 ? c - 55 : base === 62 ? c - 61 : c - 87;
    v = v * base + d;
  }
  return v;
}

function smallestDelta(serial: Uint8Array, recent: readonly Uint8Array[]): number {
  let best = Number.NaN;
  for (const r of recent) {
    if (r.length !== serial.length) continue;
    let c = 0;
    while (c < serial.length && serial[c] === r[c]) c++;
    if (c === serial.length) continue;
    const base = counterBase(serial, r, c);
    if (Number.isNaN(base)) continue;
    if (serial.length - c > (base === 10 ? 15 : base === 36 ? 10 : 8)) continue;
    const d = Math.abs(digitsValue(serial, c, base) - digitsValue(r, c, base));
    if (!(d >= best)) best = d;
  }
  return best;
}

function repeatedPrefix(serial: Uint8Array, recent: readonly Uint8Array[], p: SerialParams): boolean {
  if (p.prefixMin === 0 || serial.length <= p.prefixMin) return false;
  let hits = 0;
  for (const r of recent) {
    if (r.length < p.prefixMin) continue;
    let same = true;
    for (let i = 0; i < p.prefixMin && same; i++) same = serial[i] === r[i];
    const identical = r.length === serial.length && r.every((b, i) => b === serial[i]);
    if (same && !identical) hits++;
  }
  return hits >= p.prefixRepeat;
}

function ascii(bytes: Uint8Array, at: number, len: number): string {
  let s = "";
  for (let i = 0; i < len; i++) s += String.fromCharCode(bytes[at + i]);
  return s;
}
