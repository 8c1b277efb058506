/** Option parsers shared by the commands: they turn bad flag values into commander errors. */
import { InvalidArgumentError } from "commander";
import { ConfigError, parseDuration, type TimeUnit } from "../core/mod.js";

export function integerOption(flag: string, min: number, max: number): (text: string) => number {
  return (text: string) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`${flag} must be an integer in ${min}..${max}, got "${text}"`);
    return n;
  };
}

export function numberOption(flag: string): (text: string) => number {
  return (text: string) => {
    const n = Number(text);
    if (!Number.isFinite(n) || text.trim() === "") throw new InvalidArgumentError(`${flag} must be a number, got "${text}"`);
    return n;
  };
}

/** A duration flag in the time column's units: ms for clocks, a plain number for counters. */
export function durationIn(text: string, unit: TimeUnit, flag: string): number {
  if (unit === "ms") return parseDuration(text);
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0 || text.trim() === "")
    throw new ConfigError(flag, `expected a number in the time column's units, got "${text}"`);
  return n;
}
