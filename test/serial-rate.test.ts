/**
 * The serial job's hot path against what the job did before it (the engine's verdicts, the
 * checkpoint): MessagePack and JSON messages, as `linewatch run --nats` takes them, through
 * takeSerialMessage into a SerialJob. For each stream the test digests
 *   - every scored row (all 17 output fields bit for bit, the position, line and time, the
 *     payload's decoded fields), sorted — lines interleave differently with a pool;
 *   - the job's counters, the analysis's summary, the ledger's statistics, dead letters by reason;
 *   - the serial checkpoint taken at the end: its header and its inflated body (engine state,
 *     both filter generations' bits, the exact serial sets, the ledger and quarantine JSON), with
 *     the wall clock fixed so that `quarantined_at` is the same;
 * and compares the digests with the ones the job gave before the hot path was rewritten (same
 * streams, computed with the code of commit b4b2792), so every detection, flag, entropy, risk,
 * quarantine entry and checkpoint bit is what it was. On the main thread (no pool): with workers,
 * when a chunk is observed relative to the encoder is timing, and so are the confidence of a
 * filter duplicate (the filter's load then) and the quarantine list's order across lines.
 */
import { createHash } from "node:crypto";
import { inflateRawSync } from "node:zlib";
import { decode as decodeMsgpack } from "@msgpack/msgpack";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { SerialNatsInput } from "../connectors/nats/serial-input.js";
import { SerialJob } from "../engine/jobs/serial-job.js";
import { takeSerialMessage } from "../engine/jobs/serial-sources.js";
import { DEFAULT_SERIAL_PARAMS, SERIAL_OUT_FIELDS } from "../operators/serial/layout.js";
import type { SerialLedgerOptions } from "../operators/serial/ledger.js";
import { decodeSerialPayload } from "../operators/serial/payload.js";
import { serialAnalysis } from "../operators/serial/serial.js";
import { adversarialMessages, simulatorMessages, STREAM_SITE, type SerialMessage } from "./kit/serial-streams.js";

/** The processing clock of events without `received_timestamp`, and the wall clock of quarantine entries. */
const CLOCK = Date.UTC(2026, 0, 5, 7);

interface JobRun {
  workers: number;
  ledger?: Partial<SerialLedgerOptions>;
  patterns?: ReadonlyMap<string, RegExp>;
}

interface Digests {
  rows: string;
  counts: string;
  checkpoint: string;
}

const sha = (text: string | Uint8Array): string => createHash("sha256").update(text).digest("hex").slice(0, 24);

/** Runs the messages through a fresh job and digests what it made of them (module comment). */
async function digests(messages: readonly SerialMessage[], run: JobRun): Promise<Digests> {
  const rows: string[] = [];
  const bits = new Uint32Array(2 * SERIAL_OUT_FIELDS);
  const analysis = serialAnalysis({
    params: DEFAULT_SERIAL_PARAMS,
    timeUnit: "ms",
    clock: () => CLOCK,
    ledger: run.ledger,
    patterns: run.patterns,
    onRow: (row, ctx, payload) => {
      new Float64Array(bits.buffer).set(row);
      const d = decodeSerialPayload(payload);
      rows.push(`${ctx.position} ${ctx.keyId} ${ctx.key} ${ctx.time} ${Buffer.from(bits.buffer).toString("hex")} ${JSON.stringify(d)}`);
    },
  });
  const job = new SerialJob({ analysis, workers: run.workers, linesMax: 64, groups: 4, batchRecordsMax: 256 });
  const input = new SerialNatsInput(() => {}, STREAM_SITE);
  let checkpoint: Uint8Array;
  try {
    for (let i = 0; i < messages.length; i++) await takeSerialMessage(input, job, messages[i].subject, messages[i].data, i + 1);
    checkpoint = await job.checkpoint(messages.length);
  } finally {
    await job.close();
  }
  const counts = {
    job: job.countsNow(),
    input: input.counts(),
    summary: analysis.summary(),
    ledger: analysis.ledger.stats(),
    quarantine: analysis.quarantine.size,
  };
  return { rows: sha(rows.sort().join("\n")), counts: sha(JSON.stringify(counts)), checkpoint: checkpointDigest(checkpoint) };
}

/** The header and the inflated body: deflate's bytes may differ between zlib versions, what they hold may not. */
function checkpointDigest(bytes: Uint8Array): string {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(8, true);
  const header = bytes.subarray(0, 12 + headerLength);
  const body = inflateRawSync(bytes.subarray(12 + headerLength));
  return sha(Buffer.concat([header, body]));
}

describe("serial job hot path: verdicts and checkpoints as before", () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["Date"], now: CLOCK });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("serial - the simulator's stream (every attack kind), on the main thread", async () => {
    const d = await digests(simulatorMessages(40_000, 3), { workers: 0 });
    expect(d).toEqual(GOLDEN.simulator);
  }, 60_000);

  it("serial - an adversarial stream with a small filter, exact-set budget and batch table (rotations, drops, evictions)", async () => {
    const d = await digests(adversarialMessages(40_000, 4), {
      workers: 0,
      ledger: { filterCapacity: 6000, exactSerialsMax: 1500, batchesMax: 16 },
    });
    expect(d).toEqual(GOLDEN.adversarialSmallLedger);
  }, 60_000);

  it("serial - an adversarial stream, half of it changed, default ledger, serial patterns per GTIN", async () => {
    const messages = adversarialMessages(30_000, 5, 0.5);
    const first = decodeMsgpack(messages[0].data) as { gtin: string };
    const patterns = new Map([
      ["*", /^[0-9A-Z]{12}$/u],
      [first.gtin, /^[0-9A-Z]{8,14}$/u],
    ]);
    const d = await digests(messages, { workers: 0, patterns });
    expect(d).toEqual(GOLDEN.adversarialHalf);
  }, 60_000);
});

/** Digests of the job before the hot-path rewrite (module comment). */
const GOLDEN: Record<string, Digests> = {
  simulator: { rows: "08bc4e750b896851dbb42bd1", counts: "cf315abdfd3e02ee93f44765", checkpoint: "97386c339468ee0330d0bc07" },
  adversarialSmallLedger: { rows: "e6f08fd3e5ae9a5bd66ab1f0", counts: "cfb952807157fc33accac09d", checkpoint: "d5c0b58bea05319b532533bb" },
  adversarialHalf: { rows: "b6849204faea4ab4f196d831", counts: "f09b4b26c70b0a32a5efc0d6", checkpoint: "79eb04e99aa20bb3d9b661d1" },
};
