/**
 * The CLI's root logger: made once from `--log-level` (or LINEWATCH_LOG_LEVEL) by the program's
 * preAction hook; commands hand it, or a child, to the jobs and connectors they start.
 */
import { createLogger, DEFAULT_LOG_LEVEL, type Logger, type LogLevel, parseLogLevel } from "../core/mod.js";

let root: Logger | null = null;

/** Makes the root logger at `level` (called before a command's action runs). */
export function configureLogging(level: LogLevel): Logger {
  root = createLogger({ level });
  return root;
}

/** The root logger; when no command set it up (a command built alone), at LINEWATCH_LOG_LEVEL or the default level. */
export function cliLogger(): Logger {
  const fromEnv = process.env.LINEWATCH_LOG_LEVEL;
  root ??= createLogger({ level: fromEnv === undefined ? DEFAULT_LOG_LEVEL : parseLogLevel(fromEnv, "LINEWATCH_LOG_LEVEL") });
  return root;
}
