/**
 * What a failed ClickHouse request means (may pass, bad row, give up), and how long to wait
 * before the next attempt.
 *
 * The client library (`@clickhouse/client`) parses only the current servers' error format; on
 * 18.16 its errors are plain `Error`s whose message is the server's text. So the code is read
 * from the text here ({@link ClickHouseError.parse}), whatever the server version.
 */
import { ClickHouseError, type ClickHouseFailureKind } from "../errors.js";

export interface ClickHouseFailure {
  kind: ClickHouseFailureKind;
  /** The server's error when it answered with one; otherwise the error as thrown (network, timeout…). */
  error: Error;
}

/**
 * Classifies an error thrown by a request. A server answer with a code is judged by the code;
 * anything else — network errors, timeouts, a proxy's 502 page without a code — may pass and is
 * `transient` (bounded retries, then the spill keeps the data until ClickHouse answers).
 */
export function classifyFailure(error: unknown, format: "JSONEachRow" | "RowBinary" | "Native" = "JSONEachRow"): ClickHouseFailure {
  const e = error instanceof Error ? error : new Error(String(error));
  const parsed = error instanceof ClickHouseError ? error : ClickHouseError.parse(e.message, e);
  if (parsed !== null) {
    // ATTEMPT_TO_READ_AFTER_EOF may be a request cut short, but in a RowBinary or Native insert
    // the server answered, so it read the whole body: a String length read past the end means a
    // row whose bytes do not fit the table (a column of another width), a data error like 33's.
    if (format !== "JSONEachRow" && parsed.code === 32 && parsed.kind === "transient") {
      const asRow = new ClickHouseError(parsed.code, parsed.serverMessage, {
        type: parsed.type,
        kind: "row",
        cause: parsed,
        ...(parsed.atRow === undefined ? {} : { atRow: parsed.atRow }),
      });
      return { kind: "row", error: asRow };
    }
    return { kind: parsed.kind, error: parsed };
  }
  // ECONNREFUSED, ECONNRESET, socket hang up, the client's request timeout, an HTML 502…
  return { kind: "transient", error: e };
}

/**
 * Delay before retry `attempt` (0-based): exponential from `baseMs`, capped at `maxMs`, with
 * "equal jitter" (half fixed, half random) so that many writers that failed together do not
 * come back together, and no delay is ever near zero (AWS Architecture Blog, "Exponential
 * Backoff and Jitter", 2015).
 */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return ceiling / 2 + random() * (ceiling / 2);
}
