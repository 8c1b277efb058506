/** Option parsers shared by the commands: they turn bad flag values into commander errors. */
import { InvalidArgumentError } from "commander";
import { ConfigError, DURATION_FORMS, DurationParseError, parseDuration, type TimeUnit } from "../core/mod.js";

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

/**
 * A duration flag (`15s`, `500ms`, `2m`, `1h`; see parseDuration): checked while the command line
 * is parsed, so a wrong value stops the command before it starts anything. The value stays the
 * text as given (help shows `1s`, not 1000); the command reads it with parseDuration.
 */
export function durationOption(text: string): string {
  try {
    parseDuration(text);
  } catch (error) {
    if (error instanceof DurationParseError) throw new InvalidArgumentError(`${error.reason}; accepted forms: ${DURATION_FORMS}`);
    throw error;
  }
  return text;
}

/**
 * A duration flag in the time column's units: a duration with its unit for clocks (`--time-unit
 * ms`), a plain number for counters (`--time-unit number`).
 */
export function durationIn(text: string, unit: TimeUnit, flag: string): number {
  if (unit === "ms") {
    try {
      return parseDuration(text);
    } catch (error) {
      if (!(error instanceof DurationParseError)) throw error;
      throw new ConfigError(flag, `${error.message}; a plain number needs --time-unit number (a time column that counts)`);
    }
  }
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0 || text.trim() === "")
    throw new ConfigError(flag, `expected a number in the time column's units, got "${text}"`);
  return n;
}
