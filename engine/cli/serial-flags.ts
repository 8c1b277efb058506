/**
 * The `--serial-*` flags of the serial-integrity analysis (replay, `serial report`) and the one
 * place that turns them into its options. `--window K` sets the serial window too.
 */
import { readFileSync } from "node:fs";
import { type Command, Option } from "commander";
import { ConfigError, type TimeUnit } from "../core/mod.js";
import {
  DEFAULT_SERIAL_PARAMS,
  type SerialParams,
  DEFAULT_LEDGER_OPTIONS,
  type SerialLedgerOptions,
  DEFAULT_QUARANTINE_ENTRIES_MAX,
  type QuarantineEvent,
  parseSerialPatterns,
  serialAnalysis,
  type SerialAnalysis,
  type SerialAnalysisOptions,
} from "../../operators/serial/mod.js";
import { RotatingFileSink } from "../../connectors/files/mod.js";
import { SERIAL_ATTACKS, type SerialAttack } from "../../connectors/sim/mod.js";
import { integerOption, numberOption } from "./options.js";
import { durationIn } from "./options.js";

export const QUARANTINE_LEVELS = ["low", "medium", "high", "critical"] as const;

export interface SerialFlags {
  window?: number;
  serialRecent: number;
  serialDeltaMax: number;
  serialPrefixMin: number;
  serialPrefixRepeat: number;
  serialGuessMax: number;
  serialRateMax?: number;
  serialBurstRatio: number;
  serialGapFactor: number;
  serialFutureSkew?: string;
  serialBatchClose?: string;
  serialBatchMachines: number;
  serialFilterCapacity: number;
  serialFilterFp: number;
  serialPatterns?: string;
  serialQuarantine?: string;
  serialQuarantineEvents?: string;
  serialQuarantineLevel: (typeof QUARANTINE_LEVELS)[number];
  serialQuarantineMax: number;
}

/** Adds the serial flags (not --window, which the analysis flags own). */
export function addSerialFlags(command: Command): Command {
  const p = DEFAULT_SERIAL_PARAMS;
  const l = DEFAULT_LEDGER_OPTIONS;
  return command
    .option(
      "--serial-recent <n>",
      "serial: recent serials each new one is compared with",
      integerOption("--serial-recent", 1, 32),
      p.recent,
    )
    .option(
      "--serial-delta-max <n>",
      "serial: a step of at most n (base 10/36/62) from a recent serial is sequential; 0: off",
      numberOption("--serial-delta-max"),
      p.sequenceDeltaMax,
    )
    .option(
      "--serial-prefix-min <n>",
      "serial: shared prefix length that counts as repeated; 0: off",
      integerOption("--serial-prefix-min", 0, 20),
      p.prefixMin,
    )
    .option(
      "--serial-prefix-repeat <n>",
      "serial: recent serials that must share it",
      integerOption("--serial-prefix-repeat", 1, 32),
      p.prefixRepeat,
    )
    .option(
      "--serial-guess-max <p>",
      "serial: implied probability of guessing a valid serial above which entropy is flagged",
      numberOption("--serial-guess-max"),
      p.guessProbabilityMax,
    )
    .option(
      "--serial-rate-max <r>",
      "serial: most serials per second a line can print (per time unit with --time-unit number); faster is flagged",
    )
    .option(
      "--serial-burst-ratio <r>",
      "serial: burst when the short-term interval falls below r × the learned one",
      numberOption("--serial-burst-ratio"),
      p.burstRatio,
    )
    .option(
      "--serial-gap-factor <f>",
      "serial: gap when an interval exceeds f × the learned one; 0: off",
      numberOption("--serial-gap-factor"),
      p.gapFactor,
    )
    .option(
      "--serial-future-skew <D>",
      'serial: how far a production timestamp may be ahead of its arrival ("off": no check; default 60s, off with --time-unit number)',
    )
    .option(
      "--serial-batch-close <D>",
      'serial: a batch without events for D is closed; its next serial is "batch_reopened" (0: never; default 1h, 0 with --time-unit number)',
    )
    .option(
      "--serial-batch-machines <n>",
      "serial: machines a batch may run on (the first ones seen)",
      integerOption("--serial-batch-machines", 1, 64),
      l.batchMachinesMax,
    )
    .option(
      "--serial-filter-capacity <n>",
      "serial: serials per generation of the cross-batch duplicate filter (two are kept)",
      integerOption("--serial-filter-capacity", 1, 1e9),
      l.filterCapacity,
    )
    .option(
      "--serial-filter-fp <p>",
      "serial: false-positive rate of a full filter generation",
      numberOption("--serial-filter-fp"),
      l.filterFpRate,
    )
    .option("--serial-patterns <file>", 'serial: JSON {"gtins": {"<gtin>": "<regex>", "*": "<regex>"}}: the serial pattern per GTIN')
    .option("--serial-quarantine <file>", "serial: add quarantined serials to this list (JSON; `linewatch serial quarantine list`)")
    .option(
      "--serial-quarantine-events <file>",
      "serial: the quarantine output: one NDJSON line per quarantined event, with its reasons, as it happens",
    )
    .addOption(
      new Option("--serial-quarantine-level <level>", "serial: risk level from which events are quarantined")
        .choices(QUARANTINE_LEVELS)
        .default("high"),
    )
    .option(
      "--serial-quarantine-max <n>",
      "serial: most serials the quarantine list holds",
      integerOption("--serial-quarantine-max", 1, 1e8),
      DEFAULT_QUARANTINE_ENTRIES_MAX,
    );
}

/** The serial analysis the flags describe (validated by the analysis itself). */
export function serialAnalysisFromFlags(
  flags: SerialFlags,
  timeUnit: TimeUnit,
  extra: Partial<SerialAnalysisOptions> = {},
): SerialAnalysis {
  const perSecond = timeUnit === "ms" ? 1000 : 1;
  const rateMax = flags.serialRateMax === undefined ? undefined : Number(flags.serialRateMax);
  if (rateMax !== undefined && !(rateMax > 0))
    throw new ConfigError("--serial-rate-max", `must be a positive rate, got ${flags.serialRateMax}`);
  const params: SerialParams = {
    ...DEFAULT_SERIAL_PARAMS,
    window: flags.window ?? DEFAULT_SERIAL_PARAMS.window,
    recent: flags.serialRecent,
    sequenceDeltaMax: flags.serialDeltaMax,
    prefixMin: flags.serialPrefixMin,
    prefixRepeat: flags.serialPrefixRepeat,
    guessProbabilityMax: flags.serialGuessMax,
    minInterval: rateMax === undefined ? 0 : perSecond / rateMax,
    burstRatio: flags.serialBurstRatio,
    gapFactor: flags.serialGapFactor,
    futureSkew: futureSkewOf(flags.serialFutureSkew, timeUnit),
  };
  const ledger: Partial<SerialLedgerOptions> = {
    batchCloseAfter: batchCloseOf(flags.serialBatchClose, timeUnit),
    batchMachinesMax: flags.serialBatchMachines,
    filterCapacity: flags.serialFilterCapacity,
    filterFpRate: flags.serialFilterFp,
  };
  let patterns: Map<string, RegExp> | undefined;
  if (flags.serialPatterns !== undefined) {
    let text: string;
    try {
      text = readFileSync(flags.serialPatterns, "utf8");
    } catch (cause) {
      throw new ConfigError("--serial-patterns", `cannot read ${flags.serialPatterns}: ${(cause as Error).message}`);
    }
    patterns = parseSerialPatterns(text, flags.serialPatterns);
  }
  const events = flags.serialQuarantineEvents === undefined ? null : new RotatingFileSink(flags.serialQuarantineEvents);
  // The quarantine events file and a caller's own handlers (the live run's outputs) both get them.
  const { onQuarantine, onStop, ...rest } = extra;
  return serialAnalysis({
    params,
    timeUnit,
    ledger,
    patterns,
    quarantineFile: flags.serialQuarantine,
    quarantineLevel: flags.serialQuarantineLevel,
    quarantineEntriesMax: flags.serialQuarantineMax,
    ...(events === null
      ? { onQuarantine, onStop }
      : {
          // Quarantine events are rare next to the stream: a write that has to wait for the disk does not hold the run.
          onQuarantine: (e: QuarantineEvent) => {
            void events.write(`${JSON.stringify(e)}\n`);
            onQuarantine?.(e);
          },
          onStop: () => {
            void events.close();
            onStop?.();
          },
        }),
    ...rest,
  });
}

/** Reads the serial flags that are durations: a wrong one is a ConfigError before a job starts. */
export function checkSerialDurations(flags: SerialFlags, timeUnit: TimeUnit): void {
  futureSkewOf(flags.serialFutureSkew, timeUnit);
  batchCloseOf(flags.serialBatchClose, timeUnit);
}

/** A clock's default (1 h) means nothing in a counter's units: off unless given. */
function batchCloseOf(text: string | undefined, timeUnit: TimeUnit): number {
  if (text === undefined) return timeUnit === "ms" ? DEFAULT_LEDGER_OPTIONS.batchCloseAfter : 0;
  return durationIn(text, timeUnit, "--serial-batch-close");
}

function futureSkewOf(text: string | undefined, timeUnit: TimeUnit): number {
  if (text === undefined) return timeUnit === "ms" ? DEFAULT_SERIAL_PARAMS.futureSkew : Infinity;
  return text === "off" ? Infinity : durationIn(text, timeUnit, "--serial-future-skew");
}

/** The attacks a `--serial-attacks` / `--attacks` value names: all, none, or a comma-separated list of SERIAL_ATTACKS. */
export function attackList(text: string, flag: string): SerialAttack[] {
  if (text === "all") return [...SERIAL_ATTACKS];
  if (text === "none" || text === "") return [];
  const list = text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  for (const a of list)
    if (!(SERIAL_ATTACKS as readonly string[]).includes(a))
      throw new ConfigError(flag, `unknown attack "${a}" (known: ${SERIAL_ATTACKS.join(", ")})`);
  return list as SerialAttack[];
}
