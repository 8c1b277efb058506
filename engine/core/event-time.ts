/**
 * Event times from input cells: ISO-8601 (no zone means UTC) or epoch milliseconds, or a plain
 * number when the time column is a counter (`--time-unit number`).
 */
export type TimeUnit = "ms" | "number";

const ISO = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?))?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$/;
const NUMERIC = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** The time of a cell, or a string saying why it has none. */
export function parseEventTime(cell: unknown, unit: TimeUnit): number | string {
  if (typeof cell === "number") return Number.isFinite(cell) ? cell : `time ${cell} is not finite`;
  if (typeof cell !== "string" || cell.trim() === "") return "time is missing";
  const text = cell.trim();
  if (NUMERIC.test(text)) {
    const n = Number(text);
    return Number.isFinite(n) ? n : `time ${JSON.stringify(cell)} is not finite`;
  }
  if (unit === "number") return `time ${JSON.stringify(cell)} is not a number (--time-unit number)`;
  const m = ISO.exec(text);
  if (m === null) return `time ${JSON.stringify(cell)} is neither ISO-8601 nor epoch milliseconds`;
  const zone = m[3] === undefined ? "Z" : m[3].toUpperCase();
  const clock = m[2] === undefined ? "00:00:00" : m[2].replace(",", ".");
  const ms = Date.parse(`${m[1]}T${clock}${zone}`);
  return Number.isFinite(ms) ? ms : `time ${JSON.stringify(cell)} is not a valid date`;
}

/** A reading from a cell: a finite number or a numeric string; otherwise why not. */
export function parseReading(cell: unknown): number | string {
  if (typeof cell === "number") return Number.isFinite(cell) ? cell : `value ${cell} is not finite`;
  if (typeof cell !== "string" || cell.trim() === "") return "value is missing";
  const text = cell.trim();
  if (!NUMERIC.test(text)) return `value ${JSON.stringify(cell)} is not a number`;
  const n = Number(text);
  return Number.isFinite(n) ? n : `value ${JSON.stringify(cell)} is not finite`;
}

// ---- the same from bytes, for readers that keep a file's bytes (replay's CSV columns) ----
// Each decides only the cells whose text it is sure of: it writes the number to into[at] and
// returns true; for any other cell it returns false, and the caller decodes the cell and asks the
// text functions above, so the result is always theirs. The number goes into an array rather
// than being returned because V8 boxes a double returned from a call it does not inline.

/** ms per day. */
const DAY_MS = 86_400_000;
/** 10^k, k = 0 … 15: exact doubles. */
const POW10 = Array.from({ length: 16 }, (_, k) => Number(`1e${k}`));

/**
 * A cell of plain digits — 1 to 15 of them, no leading zero unless it is "0" — as its integer:
 * what parseEventTime reads from it in either unit (its timestamp text is the cell itself).
 */
export function epochDigitsFromBytes(bytes: Uint8Array, start: number, end: number, into: Float64Array, at: number): boolean {
  const n = end - start;
  if (n < 1 || n > 15 || (n > 1 && bytes[start] === 48)) return false;
  let v = 0;
  for (let i = start; i < end; i++) {
    const d = bytes[i] - 48;
    if (d < 0 || d > 9) return false;
    v = v * 10 + d;
  }
  into[at] = v;
  return true;
}

/**
 * `YYYY-MM-DDTHH:MM:SS`, with a space for the T, with `.fff` (three digits) and a final `Z` or
 * not, a real calendar date and clock (no 24:00, no leap second), as epoch ms (UTC) — what
 * parseEventTime makes of it in ms (Date.parse of the proleptic Gregorian date, no zone = UTC).
 */
export function isoTimeFromBytes(bytes: Uint8Array, s: number, end: number, into: Float64Array, at: number): boolean {
  const n = end - s;
  if (n < 19 || n > 24) return false;
  const zoned = bytes[end - 1] === 90; // Z
  const body = zoned ? n - 1 : n;
  if (body !== 19 && body !== 23) return false;
  if (bytes[s + 13] !== 58 || bytes[s + 16] !== 58) return false; // the clock's colons
  if (bytes[s + 10] !== 84 && bytes[s + 10] !== 32) return false; // T or space
  if (body === 23 && bytes[s + 19] !== 46) return false; // .
  const days = sameDate(bytes, s) ? lastDays : dayOf(bytes, s);
  if (days === NO_DAY) return false;
  const hour = digits(bytes, s + 11, 2);
  const minute = digits(bytes, s + 14, 2);
  const second = digits(bytes, s + 17, 2);
  const ms = body === 23 ? digits(bytes, s + 20, 3) : 0;
  // -1 (a non-digit) fails every comparison below.
  if (!(hour >= 0 && hour <= 23 && minute >= 0 && minute <= 59 && second >= 0 && second <= 59 && ms >= 0)) return false;
  into[at] = days * DAY_MS + hour * 3_600_000 + minute * 60_000 + second * 1000 + ms;
  return true;
}

/**
 * The last date read (`YYYY-MM-DD` bytes) and its day number: a file's rows mostly share their
 * date. Only a real date is kept; it starts as bytes no text has.
 */
const lastDate = new Uint8Array(10).fill(0xff);
let lastDays = 0;
/** dayOf: not a real calendar date. */
const NO_DAY = -1e9;

function sameDate(bytes: Uint8Array, s: number): boolean {
  for (let i = 0; i < 10; i++) if (bytes[s + i] !== lastDate[i]) return false;
  return true;
}

/** Days since 1970-01-01 of the `YYYY-MM-DD` at s (kept as the last date), or NO_DAY. */
function dayOf(bytes: Uint8Array, s: number): number {
  if (bytes[s + 4] !== 45 || bytes[s + 7] !== 45) return NO_DAY;
  const year = digits(bytes, s, 4);
  const month = digits(bytes, s + 5, 2);
  const day = digits(bytes, s + 8, 2);
  if (!(year >= 0 && month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(year, month))) return NO_DAY;
  lastDays = daysFromCivil(year, month, day);
  for (let i = 0; i < 10; i++) lastDate[i] = bytes[s + i];
  return lastDays;
}

/**
 * A decimal cell — an optional sign, digits with at most one point, at most 15 digits in all, no
 * exponent, no space — as the double Number() reads (m / 10^f is exact in both operands and
 * rounded once, so it is the correctly rounded value): what parseReading makes of it.
 */
export function decimalFromBytes(bytes: Uint8Array, start: number, end: number, into: Float64Array, at: number): boolean {
  if (start >= end) return false;
  let i = start;
  const sign = bytes[i];
  if (sign === 45 || sign === 43) i++;
  let m = 0;
  let count = 0;
  let point = -1;
  for (; i < end; i++) {
    const d = bytes[i] - 48;
    if (d >= 0 && d <= 9) {
      m = m * 10 + d;
      count++;
    } else if (d === -2 && point < 0) point = i;
    else return false;
  }
  if (count === 0 || count > 15) return false;
  const v = point < 0 ? m : m / POW10[end - point - 1];
  into[at] = sign === 45 ? -v : v;
  return true;
}

/** The `count` decimal digits at `at` as a number; -1 when one is not a digit. */
function digits(bytes: Uint8Array, at: number, count: number): number {
  let v = 0;
  for (let i = at; i < at + count; i++) {
    const d = bytes[i] - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

/** Days of `month` (1–12) of a proleptic Gregorian `year`. */
export function daysInMonth(year: number, month: number): number {
  if (month !== 2) return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms"). */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}
