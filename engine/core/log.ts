/**
 * Structured logs through pino (https://getpino.io): one JSON object per line on stderr, with
 * `level` (its name: "info", "warn", …), `time` (ISO 8601), `component` (which part of linewatch
 * wrote it: "live", "clickhouse", "nats", "serial", …), `msg` and the fields of the event
 * (`{"level":"warn","component":"clickhouse","table":"ml_scores","msg":"row refused by the server",…}`).
 * When stderr is a terminal the same events are printed for people by pino-pretty.
 *
 * What goes here: diagnostic and operational events (a connection lost or restored, a spill, a
 * checkpoint that failed, a model swapped, a server started). What does not: the console output
 * people read as a report (the periodic summary, ALERT lines, the final counts of a run) — that
 * stays plain text on stdout/stderr.
 *
 * Modules take a {@link Logger} in their options and derive their own with
 * `log.child({ component: "…" })`; only the CLI creates the root with {@link createLogger}.
 */
import { type DestinationStream, type Logger, pino } from "pino";
import pinoPretty from "pino-pretty";
import { ConfigError } from "./errors.js";

export type { Logger };

/** pino's levels, quietest last; `silent` writes nothing. */
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const DEFAULT_LOG_LEVEL: LogLevel = "info";

export interface LoggerOptions {
  level?: LogLevel;
  /** Where the lines go; default: stderr (fd 2), written synchronously so nothing is lost at exit. */
  destination?: DestinationStream;
  /** Human-readable lines instead of JSON; default: when stderr is a terminal and no destination is given. */
  pretty?: boolean;
  /** The root's `component` (children usually set their own). */
  component?: string;
}

/** Checks a level name (from `--log-level` or LINEWATCH_LOG_LEVEL). */
export function parseLogLevel(text: string, source = "--log-level"): LogLevel {
  const level = text.trim().toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(level))
    throw new ConfigError(source, `"${text}" is not a log level; use one of ${LOG_LEVELS.join(", ")}`);
  return level as LogLevel;
}

/** The root logger of a process (the CLI makes one), or of a test writing to a capture stream. */
export function createLogger(o: LoggerOptions = {}): Logger {
  const pretty = o.pretty ?? (o.destination === undefined && process.stderr.isTTY === true);
  const destination =
    o.destination ??
    (pretty
      ? pinoPretty({
          destination: 2,
          sync: true,
          colorize: true,
          translateTime: "SYS:HH:MM:ss.l",
          // `12:00:01.250 WARN: clickhouse: unavailable {"spill_dir":"out/spill"}`: one line per event.
          messageFormat: "{if component}{component}: {end}{msg}",
          ignore: "pid,hostname,component",
          singleLine: true,
        })
      : pino.destination({ dest: 2, sync: true }));
  return pino(
    {
      level: o.level ?? DEFAULT_LOG_LEVEL,
      base: o.component === undefined ? { pid: process.pid } : { pid: process.pid, component: o.component },
      timestamp: pino.stdTimeFunctions.isoTime,
      // The level's name, not pino's number: `jq 'select(.level=="warn")'` reads as it says.
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

/** One event as a memory logger keeps it: pino's JSON object, parsed. */
export interface LogEntry {
  level: LogLevel;
  time: string;
  component?: string;
  msg: string;
  [field: string]: unknown;
}

/** A logger that keeps its events in memory (tests, benches); `onEntry` sees each one as it is logged. */
export function memoryLogger(o: { level?: LogLevel; onEntry?: (e: LogEntry) => void } = {}): { log: Logger; entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const destination: DestinationStream = {
    write(line: string): void {
      const e = JSON.parse(line) as LogEntry;
      entries.push(e);
      o.onEntry?.(e);
    },
  };
  return { log: createLogger({ level: o.level ?? "trace", destination, pretty: false }), entries };
}
