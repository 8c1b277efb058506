/**
 * Two builds of the kernel module side by side for the serial kernel (`node
 * dist/bench/serial-kernel-ab.js <before.wasm> [after.wasm] [rounds]`): thread CPU ns per event of
 * the serial kernel alone, each build over its own shared memory (bench/kit/serial-harness.ts) and
 * the same pre-encoded payloads of one seeded serial-simulator stream (16 lines by default, every attack kind,
 * as bench/serial-bench.ts), in calls of 4096 records, measured alternately (before, after, before,
 * …) so that a noisy machine weighs on both alike; the median of each and their ratio.
 *
 * Before timing, one pass from fresh state runs both builds call by call and compares their output
 * rows byte for byte (NaN payloads included): a rewrite of the kernel must not change a bit. A
 * difference is printed with its record and field and the process exits with 1.
 */
import { readFileSync } from "node:fs";
import { SerialSimulator } from "../connectors/sim/mod.js";
import { DEFAULT_SERIAL_PARAMS, SERIAL_OUT_FIELDS, SERIAL_PAYLOAD_BYTES, serialAnalysis } from "../operators/serial/mod.js";
import { median, threadCpuMicros } from "./bench-kit.js";
import { SerialKernelHarness } from "./kit/serial-harness.js";

const CALL_RECORDS = 4096;

interface Staged {
  n: number;
  slots: Uint32Array;
  times: Float64Array;
  payloads: Uint8Array;
}

function stage(n: number, lines: number, seed: number): Staged {
  const sim = new SerialSimulator({ seed, lines, attackEvery: Math.max(1000, Math.floor(n / 40)), batchSerials: 50_000 });
  const input = serialAnalysis({ params: { ...DEFAULT_SERIAL_PARAMS }, timeUnit: "ms", clock: () => Number.NaN }).input;
  const ids = new Map<string, number>();
  const slots = new Uint32Array(n);
  const times = new Float64Array(n);
  const payloads = new Uint8Array(n * SERIAL_PAYLOAD_BYTES);
  for (let i = 0; i < n; i++) {
    const e = sim.next();
    let id = ids.get(e.machine_id);
    if (id === undefined) ids.set(e.machine_id, (id = ids.size));
    slots[i] = id;
    times[i] = e.production_timestamp;
    input.encodeEvent(e, payloads, i * SERIAL_PAYLOAD_BYTES);
  }
  return { n, slots, times, payloads };
}

function build(path: string, lines: number): SerialKernelHarness {
  return new SerialKernelHarness({ ...DEFAULT_SERIAL_PARAMS }, lines, CALL_RECORDS, new WebAssembly.Module(readFileSync(path)));
}

/** Stages call `c` of the data into the harness and runs it; returns its rows. */
function runCall(h: SerialKernelHarness, d: Staged, c: number): Float64Array {
  const first = c * CALL_RECORDS;
  const m = Math.min(CALL_RECORDS, d.n - first);
  const { slots, times, payload } = h.staging();
  slots.set(d.slots.subarray(first, first + m));
  times.set(d.times.subarray(first, first + m));
  payload.set(d.payloads.subarray(first * SERIAL_PAYLOAD_BYTES, (first + m) * SERIAL_PAYLOAD_BYTES));
  return h.processStaged(m);
}

/** One pass from fresh state, call by call, rows compared bit for bit; the first difference or null. */
function compare(a: SerialKernelHarness, b: SerialKernelHarness, d: Staged): string | null {
  a.reset();
  b.reset();
  for (let c = 0; c * CALL_RECORDS < d.n; c++) {
    const x = runCall(a, d, c);
    const y = runCall(b, d, c);
    const xb = new BigUint64Array(x.buffer, x.byteOffset, x.length);
    const yb = new BigUint64Array(y.buffer, y.byteOffset, y.length);
    for (let j = 0; j < x.length; j++) {
      if (xb[j] !== yb[j]) {
        const record = c * CALL_RECORDS + Math.floor(j / SERIAL_OUT_FIELDS);
        return `record ${record}, field ${j % SERIAL_OUT_FIELDS}: ${x[j]} vs ${y[j]}`;
      }
    }
  }
  return null;
}

/** Thread CPU ns per event of one pass from fresh state over all the staged events. */
function timePass(h: SerialKernelHarness, d: Staged): number {
  h.reset();
  const t0 = threadCpuMicros();
  for (let c = 0; c * CALL_RECORDS < d.n; c++) runCall(h, d, c);
  return ((threadCpuMicros() - t0) * 1000) / d.n;
}

function main(): void {
  const args = process.argv.slice(2);
  const before = args[0];
  if (before === undefined) {
    process.stderr.write(
      "usage: node dist/bench/serial-kernel-ab.js <before kernels.wasm> [after kernels.wasm] [rounds] [events] [lines]\n",
    );
    process.exit(2);
  }
  const after = args[1] ?? new URL("../../build/kernels.wasm", import.meta.url).pathname;
  const rounds = Number(args[2] ?? 9);
  const n = Number(args[3] ?? 500_000);
  const lines = Number(args[4] ?? 16);
  const d = stage(n, lines, 1);
  const a = build(before, lines);
  const b = build(after, lines);
  const diff = compare(a, b, d);
  process.stdout.write(
    `before ${before}\nafter  ${after}\n${lines} lines, ${n} events, calls of ${CALL_RECORDS}, ${rounds} alternating rounds\n`,
  );
  process.stdout.write(diff === null ? "outputs: bit-identical (serial rows)\n" : `outputs: MISMATCH ${diff}\n`);
  const ta: number[] = [];
  const tb: number[] = [];
  timePass(a, d);
  timePass(b, d);
  for (let r = 0; r < rounds; r++) {
    ta.push(timePass(a, d));
    tb.push(timePass(b, d));
  }
  const ma = median(ta);
  const mb = median(tb);
  process.stdout.write(
    `serial kernel  before ${ma.toFixed(1).padStart(6)} ns/event   after ${mb.toFixed(1).padStart(6)} ns/event   after/before ${(mb / ma).toFixed(3)}\n`,
  );
  if (diff !== null) process.exit(1);
}

main();
