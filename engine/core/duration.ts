/**
 * Human durations for command-line flags: `250ms`, `90s`, `15m`, `1h`, `24h`, `7d`, and compound
 * forms such as `1h30m`. A number needs its unit: `--span 15` could mean 15 ms or 15 s or 15
 * minutes, and a guess that is off by 1000 runs silently. Only `0` stands alone (zero in any unit).
 *
 * Units are lower case only, so `m` is always minutes (there is no month unit to confuse it with).
 */
import { LinewatchError } from "./errors.js";

/** The accepted forms, for messages and help. */
export const DURATION_FORMS = "500ms, 15s, 2m, 1h, 7d, 1h30m (or 0)";

/** Thrown by {@link parseDuration} for text that is not a duration. */
export class DurationParseError extends LinewatchError {
  constructor(
    /** The text as given. */
    readonly text: string,
    /** What is wrong with it, without the accepted forms. */
    readonly reason: string,
  ) {
    super(`invalid duration ${JSON.stringify(text)}: ${reason}; accepted forms: ${DURATION_FORMS}`);
  }
}

/** Milliseconds per unit suffix. */
export const DURATION_UNIT_MS: Readonly<Record<string, number>> = Object.freeze({
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
});

const PLAIN_NUMBER = /^\d+(?:\.\d+)?$/;
const ZERO = /^0+(?:\.0+)?$/;
const COMPOUND = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;

/**
 * Parses a duration into milliseconds (may be fractional, e.g. `0.5ms`; never negative).
 * Surrounding whitespace is ignored. Throws {@link DurationParseError} on anything else: a number
 * without a unit (other than 0), or a result beyond Number.MAX_SAFE_INTEGER ms.
 */
export function parseDuration(text: string): number {
  if (typeof text !== "string") throw new DurationParseError(String(text), "not a string");
  const trimmed = text.trim();
  if (trimmed === "") throw new DurationParseError(text, "empty");
  let ms: number;
  if (ZERO.test(trimmed)) {
    ms = 0;
  } else if (PLAIN_NUMBER.test(trimmed)) {
    throw new DurationParseError(text, "a number needs a unit");
  } else if (COMPOUND.test(trimmed)) {
    ms = 0;
    for (const match of trimmed.matchAll(PART)) ms += Number(match[1]) * DURATION_UNIT_MS[match[2]];
  } else {
    throw new DurationParseError(text, "expected a number followed by one of ms, s, m, h, d");
  }
  if (!Number.isFinite(ms) || ms > Number.MAX_SAFE_INTEGER) throw new DurationParseError(text, "too large");
  return ms;
}
