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
