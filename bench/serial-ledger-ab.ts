/**
 * The serial ledger alone, two builds side by side on one thread (`node dist/bench/serial-ledger-ab.js
 * <before-dist> [rounds]`): the job benchmark's seeded messages (serial-job-bench.ts), read by the
 * schema reader and copied into payloads once, then asked of a fresh ledger of each build
 * (SerialInput.askPayloads, 1024 events a run, as the ledger thread asks a slot) in chunks of 16
 * runs, the two builds alternating chunk by chunk (who goes first alternating too), so that both
 * see the same load on a machine shared with other work. Per round: each build's CPU ns per event
 * (this thread's) and their ratio, and the verdict checksum (the last writer's bits of every event,
 * in order: both builds write the same bits, so it is serial-job-bench's ledger checksum).
 * The whole job's A/B is serial-job-ab.ts; this one isolates the ledger, whose changes of 5–10 %
 * the whole job's run-to-run swings hide.
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { SerialNatsInput } from "../connectors/nats/mod.js";
import { encodeSerialRanges, PAYLOAD, readU32, SERIAL_PAYLOAD_BYTES } from "../operators/serial/mod.js";
import { threadCpuMicros } from "./bench-kit.js";
import { messageAt, serialMessages } from "./serial-job-bench.js";

const EVENTS = 1_000_000;
const RUN = 1024;
const CHUNK = 16 * RUN;

interface Payloads {
  n: number;
  payload: Uint8Array;
  times: Float64Array;
  machines: string[];
}

interface AskingInput {
  askPayloads(payload: Uint8Array, offsets: Int32Array, machines: readonly string[], times: Float64Array, n: number): void;
}

type LedgerModule = typeof import("../operators/serial/ledger.js");
type SerialModule = typeof import("../operators/serial/serial.js");

/** The seeded stream's events in payloads, as the main thread writes them into a slot. */
function payloads(): Payloads {
  const s = serialMessages(EVENTS, 16, 1);
  const input = new SerialNatsInput(() => {}, "bench");
  const view = input.view;
  const p: Payloads = { n: 0, payload: new Uint8Array(EVENTS * SERIAL_PAYLOAD_BYTES), times: new Float64Array(EVENTS), machines: [] };
  for (let i = 0; i < s.n; i++) {
    const data = messageAt(s, i);
    const line = input.read(s.subjects[s.lineOf[i]], data);
    if (line === null) continue;
    encodeSerialRanges(data, view, view.received, view.batchClose, 0, p.payload, p.n * SERIAL_PAYLOAD_BYTES);
    p.times[p.n] = view.production;
    p.machines.push(line);
    p.n++;
  }
  return p;
}

/** A fresh ledger of the build at `dist`, behind its encoder. */
async function freshInput(dist: string): Promise<AskingInput> {
  const at = (path: string) => pathToFileURL(resolve(dist, path)).href;
  const ledger = (await import(at("operators/serial/ledger.js"))) as LedgerModule;
  const serial = (await import(at("operators/serial/serial.js"))) as SerialModule;
  return serial.serialInput({ timeUnit: "ms", patterns: undefined, clock: () => Number.NaN }, new ledger.SerialLedger({}));
}

/** Asks events [from, to) in runs of RUN; returns this thread's CPU µs. */
function ask(input: AskingInput, p: Payloads, offsets: Int32Array, from: number, to: number): number {
  const t0 = threadCpuMicros();
  for (let run = from; run < to; run += RUN) {
    const m = Math.min(RUN, to - run);
    for (let k = 0; k < m; k++) offsets[k] = (run + k) * SERIAL_PAYLOAD_BYTES;
    input.askPayloads(p.payload, offsets, p.machines.slice(run, run + m), p.times.subarray(run, run + m), m);
  }
  return threadCpuMicros() - t0;
}

function checksum(p: Payloads): number {
  let sum = 0;
  for (let k = 0; k < p.n; k++) sum = (sum + Math.imul(readU32(p.payload, k * SERIAL_PAYLOAD_BYTES + PAYLOAD.ledger), k + 1)) >>> 0;
  return sum;
}

/** One round: both builds' ledgers over the whole stream, chunk by chunk; their CPU ns per event. */
async function round(before: string, after: string, p: Payloads): Promise<[number, number]> {
  const b = await freshInput(before);
  const a = await freshInput(after);
  const offsets = new Int32Array(RUN);
  let tb = 0;
  let ta = 0;
  for (let from = 0; from < p.n; from += CHUNK) {
    const to = Math.min(p.n, from + CHUNK);
    if ((from / CHUNK) % 2 === 0) {
      tb += ask(b, p, offsets, from, to);
      ta += ask(a, p, offsets, from, to);
    } else {
      ta += ask(a, p, offsets, from, to);
      tb += ask(b, p, offsets, from, to);
    }
  }
  return [(tb * 1000) / p.n, (ta * 1000) / p.n];
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === undefined) throw new Error("usage: serial-ledger-ab.js <before-dist> [rounds]");
  const before = resolve(args[0]);
  const after = resolve(import.meta.dirname, "..");
  const rounds = Number(args[1] ?? 4);
  const p = payloads();
  process.stdout.write(
    `serial ledger A/B: ${p.n} events, ${rounds} rounds, chunks of ${CHUNK} alternately; before ${before}, after ${after}\n`,
  );
  const ratios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const [b, a] = await round(before, after, p);
    ratios.push(a / b);
    process.stdout.write(
      `  round ${r + 1}: before ${b.toFixed(0)}  after ${a.toFixed(0)} ns/event  after ÷ before ${(a / b).toFixed(3)}  checksum ${checksum(p)}\n`,
    );
  }
  ratios.sort((x, y) => x - y);
  process.stdout.write(`  median after ÷ before ${ratios[ratios.length >> 1].toFixed(3)}\n`);
}

void main();
