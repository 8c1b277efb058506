/**
 * `linewatch simulate-serials`: deterministic serial events of several lines, with labelled
 * injected attacks, to a file or stdout (NDJSON or CSV), and the attack labels (NDJSON).
 */
import { createWriteStream } from "node:fs";
import { Command, Option } from "commander";
import {
  DEFAULT_SERIAL_SIMULATOR_OPTIONS,
  SERIAL_ATTACKS,
  SERIAL_EVENT_FIELDS,
  SerialSimulator,
  formatSerialEventCsv,
  formatSerialEventNdjson,
  DEFAULT_SERIAL_PUBLISH,
  publishSerialEvents,
  type SerialEvent,
} from "../../connectors/sim/mod.js";
import { TextStreamWriter } from "../../connectors/files/mod.js";
import { ConfigError, parseDuration } from "../core/mod.js";
import { durationOption, integerOption, numberOption } from "./options.js";
import { attackList } from "./serial-flags.js";

interface SimulateSerialsFlags {
  seed: number;
  lines: number;
  rate: number;
  start: string;
  records?: number;
  duration?: string;
  alphabet: string;
  length: number;
  batchSerials: number;
  attacks: string;
  attackEvery: number;
  format: "ndjson" | "csv";
  out: string;
  labels?: string;
  nats?: string;
  site: string;
  payload: "msgpack" | "json";
  jetstream?: boolean;
  publishRate?: number;
}

export const SIMULATE_SERIALS_DEFAULT_RECORDS = 100_000;

export function simulateSerialsCommand(): Command {
  const d = DEFAULT_SERIAL_SIMULATOR_OPTIONS;
  return new Command("simulate-serials")
    .description("generate serial events of several lines with labelled attacks; the same flags give the same bytes")
    .option("--seed <n>", "PRNG seed", integerOption("--seed", -(2 ** 53) + 1, 2 ** 53 - 1), d.seed)
    .option("--lines <n>", "lines (machine ids M-001, M-002, …)", integerOption("--lines", 1, 999), d.lines)
    .option("--rate <r>", "serials per second per line", numberOption("--rate"), d.ratePerLine)
    .option("--start <iso>", "production time of the first event (ISO-8601 or epoch ms)", new Date(d.startTime).toISOString())
    .option(
      "--records <n>",
      `events to write (default ${SIMULATE_SERIALS_DEFAULT_RECORDS} unless --duration)`,
      integerOption("--records", 0, 2 ** 40),
    )
    .option("--duration <D>", "stop at this much production time: 90s, 15m, 1h", durationOption)
    .option("--alphabet <chars>", "characters of the random serials", d.alphabet)
    .option("--length <n>", "serial length", integerOption("--length", 1, 20), d.serialLength)
    .option(
      "--batch-serials <n>",
      "serials per batch (then a batch_close event)",
      integerOption("--batch-serials", 1, 2 ** 40),
      d.batchSerials,
    )
    .option("--attacks <list>", `attacks, comma separated, or all / none (${SERIAL_ATTACKS.join(", ")})`, "all")
    .option("--attack-every <n>", "events between attack starts", integerOption("--attack-every", 1, 2 ** 40), d.attackEvery)
    .addOption(new Option("--format <f>", "output format").choices(["ndjson", "csv"]).default("ndjson"))
    .option("--out <file>", "output file, or - for stdout", "-")
    .option("--labels <file>", "write one NDJSON line per attack: {attack, expected, machine_id, rows}")
    .option("--nats <url>", "publish the events to NATS (lw.<site>.serial.<line>, one event per message) instead of writing them")
    .option("--site <s>", "with --nats: site token of the subjects", DEFAULT_SERIAL_PUBLISH.site)
    .addOption(new Option("--payload <format>", "with --nats: message encoding").choices(["msgpack", "json"]).default("msgpack"))
    .option(
      "--jetstream",
      "with --nats: publish through JetStream and wait for the acks (a stream must capture lw.<site>.serial.>), with Nats-Msg-Id",
    )
    .option(
      "--publish-rate <n>",
      "with --nats: events per second at most (default: as fast as the server takes them)",
      numberOption("--publish-rate"),
    )
    .addHelpText(
      "after",
      `
Fields: ${SERIAL_EVENT_FIELDS.join(", ")} (timestamps ISO-8601 UTC with ms; event_type
serial or batch_close). Attacks and the anomaly type each must raise: duplicate → duplicate,
sequential → sequence, low_entropy → entropy, burst → temporal, wrong_machine → behavioral,
bad_gtin → pattern, future_timestamp → temporal, closed_batch → behavioral.`,
    )
    .action(simulateSerials);
}

/** Writes (or publishes) the events the flags ask for, then the attack labels. */
async function simulateSerials(flags: SimulateSerialsFlags): Promise<void> {
  const attacks = attackList(flags.attacks, "--attacks");
  const start = /^\d+$/.test(flags.start) ? Number(flags.start) : Date.parse(flags.start);
  if (!Number.isFinite(start)) throw new ConfigError("--start", `not a time: ${flags.start}`);
  const sim = new SerialSimulator({
    seed: flags.seed,
    lines: flags.lines,
    ratePerLine: flags.rate,
    startTime: start,
    alphabet: flags.alphabet,
    serialLength: flags.length,
    batchSerials: flags.batchSerials,
    attacks,
    attackEvery: attacks.length === 0 ? 0 : flags.attackEvery,
  });
  const end = flags.duration === undefined ? Infinity : start + parseDuration(flags.duration);
  const records = flags.records ?? (flags.duration === undefined ? SIMULATE_SERIALS_DEFAULT_RECORDS : Infinity);
  let written = 0;
  const next = (): SerialEvent | null => {
    if (written >= records) return null;
    const e = sim.next();
    if (e.production_timestamp >= end && e.attack !== "future_timestamp") return null;
    written++;
    return e;
  };
  if (flags.nats !== undefined) await publishEvents(next, flags.nats, flags);
  else await writeEvents(next, flags);
  await writeLabels(flags.labels, sim, written);
}

/** The events on NATS, one a message (JetStream with --jetstream), paced by --publish-rate. */
async function publishEvents(next: () => SerialEvent | null, url: string, flags: SimulateSerialsFlags): Promise<void> {
  const result = await publishSerialEvents(next, {
    ...DEFAULT_SERIAL_PUBLISH,
    url,
    site: flags.site,
    format: flags.payload,
    jetstream: flags.jetstream === true,
    rate: flags.publishRate ?? Infinity,
  });
  process.stderr.write(
    `simulate-serials: published ${result.events} events on lw.${flags.site}.serial.<line> in ${result.seconds.toFixed(2)} s ` +
      `(${Math.round(result.events / result.seconds)} events/s)${result.duplicatesReported ? `, ${result.duplicatesReported} reported duplicate by the server` : ""}\n`,
  );
}

/** The events to --out (stdout by default) as NDJSON or CSV. */
async function writeEvents(next: () => SerialEvent | null, flags: SimulateSerialsFlags): Promise<void> {
  const stream = flags.out === "-" ? process.stdout : createWriteStream(flags.out);
  const out = new TextStreamWriter(stream, { endStream: flags.out !== "-" });
  const format = flags.format === "csv" ? formatSerialEventCsv : formatSerialEventNdjson;
  if (flags.format === "csv") await out.write(`${SERIAL_EVENT_FIELDS.join(",")}\n`);
  for (let e = next(); e !== null; e = next()) await out.write(format(e));
  await out.end();
}

/** One NDJSON line per attack among the first `written` events. */
async function writeLabels(path: string | undefined, sim: SerialSimulator, written: number): Promise<void> {
  if (path === undefined) return;
  const labels = new TextStreamWriter(createWriteStream(path), { endStream: true });
  for (const l of sim.labels()) {
    const rows = l.rows.filter((r) => r < written);
    if (rows.length > 0) await labels.write(`${JSON.stringify({ ...l, rows })}\n`);
  }
  await labels.end();
}
