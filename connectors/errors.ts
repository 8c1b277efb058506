/**
 * Typed errors of the connectors (codecs, subjects, dead-letter). Each sets `name` (from
 * {@link LinewatchError}), keeps `cause`, and carries a machine-readable `reason` that the
 * dead-letter router counts by and tests assert on — never the message text.
 */
import { LinewatchError } from "../engine/core/mod.js";

/**
 * Why a message (or one reading of a frame) was rejected. Stable strings: they are dead-letter
 * headers, count labels and metric labels.
 */
export type DecodeReason =
  /** The message is larger than its limit (checked before any decoding). */
  | "too_large"
  /** The message ends before the content it declares (a cut-off frame, a string past the end). */
  | "truncated"
  /** Bytes remain after the complete value (or the frame's declared size). */
  | "trailing_bytes"
  /** Not valid MessagePack / JSON / frame syntax: unknown type byte, bad magic, invalid UTF-8, non-zero padding, key index out of range. */
  | "malformed"
  /** A frame of a version (or with flag bits) this build does not know. */
  | "unsupported_version"
  /** Containers nested deeper than `depthMax`. */
  | "too_deep"
  /** A declared length is over its limit: string, binary, extension, array, map, readings, keys. */
  | "length_exceeded"
  /** The top-level value is not a map / object. */
  | "not_a_record"
  /** A required field is absent or null. */
  | "missing_field"
  /** A field has the wrong type (a string value, a numeric machine id…). */
  | "wrong_type"
  /** A field has the right type but unusable content (empty id, a machine id that cannot be a subject token). */
  | "invalid_field"
  /** NaN or ±Infinity where a finite number is required. */
  | "not_finite"
  /** A timestamp that is neither epoch ms nor ISO-8601, or outside the representable date range. */
  | "bad_timestamp"
  /** The payload's machine/sensor disagrees with the subject it arrived on. */
  | "subject_mismatch"
  /** The subject itself is not one of ours or has invalid tokens. */
  | "bad_subject";

export const DECODE_REASONS: readonly DecodeReason[] = Object.freeze([
  "too_large",
  "truncated",
  "trailing_bytes",
  "malformed",
  "unsupported_version",
  "too_deep",
  "length_exceeded",
  "not_a_record",
  "missing_field",
  "wrong_type",
  "invalid_field",
  "not_finite",
  "bad_timestamp",
  "subject_mismatch",
  "bad_subject",
] as const);

/** Where in the input a decode failed, as far as it is known. */
export interface DecodeErrorContext {
  /** The record field concerned (`sensor_value`, `timestamp`…) or the frame part (`keyTable`, `keyIndex`…). */
  field?: string;
  /** The limit that was passed (`stringBytesMax`…). */
  limit?: string;
  /** Byte offset in the message. */
  offset?: number;
  /** The subject the message arrived on. */
  subject?: string;
  cause?: unknown;
}

/** A message (or frame) that cannot be accepted; `reason` says why in a countable way. */
export class DecodeError extends LinewatchError {
  readonly reason: DecodeReason;
  /** The message without the reason prefix. */
  readonly detail: string;
  readonly field?: string;
  readonly limit?: string;
  readonly offset?: number;
  readonly subject?: string;

  constructor(reason: DecodeReason, message: string, context: DecodeErrorContext = {}) {
    super(`${reason}: ${message}`, context.cause === undefined ? undefined : { cause: context.cause });
    this.reason = reason;
    this.detail = message;
    if (context.field !== undefined) this.field = context.field;
    if (context.limit !== undefined) this.limit = context.limit;
    if (context.offset !== undefined) this.offset = context.offset;
    if (context.subject !== undefined) this.subject = context.subject;
  }
}

/** A subject (or a token for one) that is not valid: wrong shape, empty token, `.`/`*`/`>`/whitespace, too long. */
export class SubjectError extends LinewatchError {
  readonly reason = "bad_subject" as const;

  constructor(
    readonly subject: string,
    message: string,
  ) {
    super(`subject ${JSON.stringify(subject.length > 300 ? `${subject.slice(0, 300)}…` : subject)}: ${message}`);
  }
}

/** What an encoder refuses (the decoder would reject it, or the format cannot carry it). */
export type EncodeReason = "invalid_field" | "wrong_type" | "missing_field" | "not_finite" | "bad_timestamp" | "length_exceeded";

/** A producer handed an encoder something it cannot put on the wire. */
export class EncodeError extends LinewatchError {
  constructor(
    readonly reason: EncodeReason,
    readonly field: string,
    message: string,
  ) {
    super(`${reason}: ${field}: ${message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// ClickHouse sink
// ---------------------------------------------------------------------------------------------

/**
 * What a failed ClickHouse request means for the sink:
 * - `transient`: may pass (network, timeouts, overload, too many parts…): retry with backoff, spill.
 * - `row`: the data was refused (a parse or type error): split the batch to find the row.
 * - `permanent`: retrying cannot help (syntax, unknown table, access): give up on the batch.
 */
export type ClickHouseFailureKind = "transient" | "row" | "permanent";

/**
 * ClickHouse server codes by name (src/Common/ErrorCodes.cpp; stable across versions). 18.16 puts
 * only the number in its text, so the name comes from here when it is known.
 */
export const CLICKHOUSE_CODES: Readonly<Record<number, string>> = Object.freeze({
  6: "CANNOT_PARSE_TEXT",
  16: "NO_SUCH_COLUMN_IN_TABLE",
  23: "CANNOT_READ_FROM_ISTREAM",
  24: "CANNOT_WRITE_TO_OSTREAM",
  25: "CANNOT_PARSE_ESCAPE_SEQUENCE",
  26: "CANNOT_PARSE_QUOTED_STRING",
  27: "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
  32: "ATTEMPT_TO_READ_AFTER_EOF",
  33: "CANNOT_READ_ALL_DATA",
  38: "CANNOT_PARSE_DATE",
  41: "CANNOT_PARSE_DATETIME",
  53: "TYPE_MISMATCH",
  60: "UNKNOWN_TABLE",
  62: "SYNTAX_ERROR",
  69: "ARGUMENT_OUT_OF_BOUND",
  70: "CANNOT_CONVERT_TYPE",
  72: "CANNOT_PARSE_NUMBER",
  81: "UNKNOWN_DATABASE",
  117: "INCORRECT_DATA",
  131: "TOO_LARGE_STRING_SIZE",
  159: "TIMEOUT_EXCEEDED",
  160: "TOO_SLOW",
  164: "READONLY",
  192: "UNKNOWN_USER",
  193: "WRONG_PASSWORD",
  202: "TOO_MANY_SIMULTANEOUS_QUERIES",
  203: "NO_FREE_CONNECTION",
  209: "SOCKET_TIMEOUT",
  210: "NETWORK_ERROR",
  225: "NO_ZOOKEEPER",
  236: "ABORTED",
  241: "MEMORY_LIMIT_EXCEEDED",
  242: "TABLE_IS_READ_ONLY",
  243: "NOT_ENOUGH_SPACE",
  252: "TOO_MANY_PARTS",
  285: "TOO_FEW_LIVE_REPLICAS",
  286: "UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE",
  319: "UNKNOWN_STATUS_OF_INSERT",
  321: "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
  349: "CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN",
  394: "QUERY_WAS_CANCELLED",
  425: "SYSTEM_ERROR",
  439: "CANNOT_SCHEDULE_TASK",
  473: "DEADLOCK_AVOIDED",
  497: "ACCESS_DENIED",
  516: "AUTHENTICATION_FAILED",
  999: "KEEPER_EXCEPTION",
  1000: "POCO_EXCEPTION",
});

/** Codes of conditions that pass on their own: overload, timeouts, network, replication, merges. */
const CLICKHOUSE_TRANSIENT_CODES = new Set([
  23, 24, 32, 159, 160, 202, 203, 209, 210, 225, 236, 241, 242, 243, 252, 285, 286, 319, 394, 425, 439, 473, 999, 1000,
]);
/** Codes of an insert whose data the server could not read: some row is bad, the request is fine. */
const CLICKHOUSE_ROW_CODES = new Set([6, 25, 26, 27, 33, 38, 41, 53, 69, 70, 72, 117, 131, 321, 349]);

/**
 * An error answered by a ClickHouse server. `code` is the server's number, parsed from the text
 * (`Code: 62, e.displayText() = DB::Exception: …` on 18.16, `Code: 62. DB::Exception: … (SYNTAX_ERROR)
 * (version …)` on current servers), so it works where the client library cannot parse it.
 */
export class ClickHouseError extends LinewatchError {
  /** The server's error code. */
  readonly code: number;
  /** `SYNTAX_ERROR`…: from the text on current servers, else from {@link CLICKHOUSE_CODES}, else `UNKNOWN`. */
  readonly type: string;
  /** The server's message without the code prefix and version suffix. */
  readonly serverMessage: string;
  readonly kind: ClickHouseFailureKind;
  /** 1-based row of an insert's data that the server names (`(at row N)`), when it does. */
  readonly atRow: number | undefined;

  /** `kind` overrides what the code says (e.g. a row error the sink gave up splitting is permanent). */
  constructor(
    code: number,
    serverMessage: string,
    options: { type?: string; atRow?: number; kind?: ClickHouseFailureKind; cause?: unknown } = {},
  ) {
    const type = options.type ?? CLICKHOUSE_CODES[code] ?? "UNKNOWN";
    super(`ClickHouse ${type} (code ${code}): ${serverMessage}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.type = type;
    this.serverMessage = serverMessage;
    this.kind = options.kind ?? clickHouseFailureKind(code);
    this.atRow = options.atRow;
  }

  /**
   * The ClickHouse error in a server's answer (or an error whose message is one), or null when
   * the text carries no `Code: N` (a network error, a proxy's HTML page…).
   */
  static parse(text: string, cause?: unknown): ClickHouseError | null {
    const m = /Code:\s*(\d+)\s*[.,]\s*(?:e\.displayText\(\)\s*=\s*)?(?:DB::Exception:\s*)?/.exec(text);
    if (m === null) return null;
    let message = text.slice(m.index + m[0].length);
    // 18.16: "…, e.what() = DB::Exception" and no name; current: "… (SYNTAX_ERROR) (version 24.3.1.1)".
    const old = /e\.displayText\(\)/.test(m[0]);
    message = message.replace(/,?\s*e\.what\(\)\s*=\s*[\w:]+\s*$/, "");
    let type: string | undefined;
    const t = old ? null : /\s*\(([A-Z][A-Z0-9_]{2,})\)(?:\s*\(version .*\))?[.\s]*$/s.exec(message);
    if (t !== null) {
      type = t[1];
      message = message.slice(0, t.index);
    }
    message = message.trim();
    const row = /\(at row (\d+)\)/.exec(message);
    return new ClickHouseError(Number(m[1]), message, {
      ...(type === undefined ? {} : { type }),
      ...(row === null ? {} : { atRow: Number(row[1]) }),
      ...(cause === undefined ? {} : { cause }),
    });
  }
}

/** How the sink treats a server code (see {@link ClickHouseFailureKind}). */
export function clickHouseFailureKind(code: number): ClickHouseFailureKind {
  if (CLICKHOUSE_ROW_CODES.has(code)) return "row";
  if (CLICKHOUSE_TRANSIENT_CODES.has(code)) return "transient";
  return "permanent";
}

/**
 * Why the sink cannot take rows: ClickHouse is away and the spill is full (`spill_full`) or
 * cannot be written (`spill_failed`: disk error), the sink is closed or broken (`closed`), or
 * it did not drain in the time given (`drain_timeout`).
 */
export type SinkUnavailableReason = "spill_full" | "spill_failed" | "closed" | "drain_timeout";

/**
 * The ClickHouse sink cannot make these rows durable: do not acknowledge them upstream (let the
 * source redeliver them later, or slow down). `cause` is the spill's {@link SpillFullError}, the
 * disk error, or the last ClickHouse or network error.
 */
export class SinkUnavailableError extends LinewatchError {
  constructor(
    readonly reason: SinkUnavailableReason,
    readonly rows: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${reason}: ${rows} rows not taken: ${message}`, options);
  }
}

/**
 * The local spill queue would pass `spillBytesMax` with this batch (the shape of the engine's
 * CapacityError: `limit` names the option to raise).
 */
export class SpillFullError extends LinewatchError {
  readonly limit = "spillBytesMax" as const;

  constructor(
    readonly spillBytes: number,
    readonly spillBytesMax: number,
    readonly batchBytes: number,
  ) {
    super(`spillBytesMax (${spillBytesMax}) reached: ${spillBytes} bytes spilled, a batch of ${batchBytes} bytes does not fit`);
  }
}

/** A spill file that cannot be read back (a damaged or foreign file in the spill directory). */
export class SpillFileError extends LinewatchError {
  constructor(
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${path}: ${message}`, options);
  }
}

/** A WebSocket topic (or grant pattern) that is not valid: unknown root, bad level, too long. */
export class TopicError extends LinewatchError {
  constructor(
    readonly topic: string,
    message: string,
  ) {
    super(`topic ${JSON.stringify(topic.length > 300 ? `${topic.slice(0, 300)}…` : topic)}: ${message}`);
  }
}

/** The live (WebSocket + HTTP) server could not listen: the port is taken or the host is not local. */
export class ServerListenError extends LinewatchError {
  constructor(
    readonly host: string,
    readonly port: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot listen on ${host}:${port}: ${message}`, options);
  }
}

/**
 * A provider's answer to an API request that is not a success: thrown by a provider (or the
 * API's own checks) to reply with `status` and `{ "error": code, "message": … }`, e.g. 400
 * `bad_request` for a body it cannot use, 404 `not_found`, 409 `conflict`.
 */
export class ApiRequestError extends LinewatchError {
  /** The message without the status and code, as the reply's `message`. */
  readonly detail: string;

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${status} ${code}: ${message}`, options);
    this.detail = message;
  }
}

/** A server linewatch reads from or writes to is out of reach: refused, unknown host, timed out, or not authorised. */
export class ConnectError extends LinewatchError {
  constructor(
    readonly service: string,
    readonly address: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot connect to ${service} at ${address}: ${message}`, options);
  }
}

/** A local server that linewatch starts itself (nats-server, clickhouse-server) did not come up. */
export class LocalServerError extends LinewatchError {
  constructor(
    readonly server: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${server}: ${message}`, options);
  }
}
