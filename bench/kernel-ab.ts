/**
 * Two builds of the kernel module side by side (`node dist/bench/kernel-ab.js <before.wasm>
 * [after.wasm]`): thread CPU ns per reading of the SPC kernel alone, the rolling kernel alone
 * (count window W = 64) and the two in a row (the engine's frames path), each build over its own
 * shared memory and the same staged readings, measured alternately (before, after, before, …)
 * so that a noisy machine weighs on both alike; the median of each and their ratio.
 *
 * Before timing, one pass from fresh state runs both builds call by call and compares their
 * output rows byte for byte (SPC rows and event lists, rolling rows): a rewrite of a kernel must not change a bit. A
 * difference is printed with its first record and the process exits with 1.
 *
 * The readings: `keys` keys (default 48, the e2e bench's 8 machines × 6 sensors) interleaved at
 * random, in-control normal noise per key with mean shifts, drifts, wide and narrow noise,
 * stuck runs and now and then a NaN, in calls of 4096 records (one frame's worth). With
 * `--group-keys g` each call holds the records of g keys only, the next g keys' in the next call
 * and so on round the 48: the engine's shape, where a task is one key group's buffer (16 groups
 * of the 48 keys: 3 keys a call) and its keys' state stays in the first-level cache. Without it
 * every call mixes all 48 keys (1.6 KB of state each, beyond the first-level cache).
 */
import { readFileSync } from "node:fs";
import { createSharedMemory, instantiateKernels, type KernelExports, SeededRandom } from "../engine/core/mod.js";
import { DEFAULT_SPC_PARAMS, SPC_OUT_FIELDS, spcInitArgs } from "../operators/spc/mod.js";
import { median, threadCpuMicros } from "./bench-kit.js";
import { PAGE_BYTES as PAGE } from "./kit/kernel-harness.js";

const WINDOW = 64;
const ROLLING_FIELDS = 10;
const CALL_RECORDS = 4096;
/** Passes timed as one sample (see timePass). */
const PASSES_PER_SAMPLE = 6;

interface Staged {
  keys: number;
  slots: Uint32Array;
  times: Float64Array;
  values: Float64Array;
}

/** One build over its own memory: every key's SPC and rolling state, the staged columns, one call's output rows. */
class Build {
  readonly k: KernelExports;
  readonly mem: WebAssembly.Memory;
  private readonly spcStride: number;
  private readonly rollStride: number;
  private readonly spcBase: number;
  private readonly rollBase: number;
  private readonly slots: number;
  private readonly times: number;
  private readonly values: number;
  readonly spcOut: number;
  readonly rollOut: number;
  readonly events: number;
  private readonly n: number;
  private readonly keys: number;

  constructor(path: string, data: Staged) {
    const module = new WebAssembly.Module(readFileSync(path));
    const probe = instantiateKernels(createSharedMemory(1), module);
    this.spcStride = probe.spcStateBytes();
    this.rollStride = probe.rollingStateBytes(0, WINDOW);
    this.keys = data.keys;
    this.n = data.values.length;
    let at = PAGE;
    const take = (bytes: number): number => {
      const p = at;
      at = Math.ceil((at + bytes) / 64) * 64;
      return p;
    };
    this.spcBase = take(this.keys * this.spcStride);
    this.rollBase = take(this.keys * this.rollStride);
    this.slots = take(this.n * 4);
    this.times = take(this.n * 8);
    this.values = take(this.n * 8);
    this.spcOut = take(CALL_RECORDS * SPC_OUT_FIELDS * 8);
    this.rollOut = take(CALL_RECORDS * ROLLING_FIELDS * 8);
    this.events = take((CALL_RECORDS + 1) * 4);
    this.mem = createSharedMemory(Math.ceil(at / PAGE));
    this.k = instantiateKernels(this.mem, module);
    const buf = this.mem.buffer;
    new Uint32Array(buf, this.slots, this.n).set(data.slots);
    new Float64Array(buf, this.times, this.n).set(data.times);
    new Float64Array(buf, this.values, this.n).set(data.values);
    this.reset();
  }

  reset(): void {
    const args = spcInitArgs(DEFAULT_SPC_PARAMS);
    for (let s = 0; s < this.keys; s++) {
      this.k.spcInit(this.spcBase + s * this.spcStride, ...args);
      this.k.rollingInit(this.rollBase + s * this.rollStride, 0, WINDOW, 0, 0.1, 1000);
    }
  }

  get calls(): number {
    return Math.ceil(this.n / CALL_RECORDS);
  }

  spc(call: number): void {
    const first = call * CALL_RECORDS;
    const m = Math.min(CALL_RECORDS, this.n - first);
    this.k.spcProcess(
      this.spcBase,
      this.spcStride,
      this.slots + first * 4,
      this.times + first * 8,
      this.values + first * 8,
      m,
      this.spcOut,
      this.events,
    );
  }

  rolling(call: number): void {
    const first = call * CALL_RECORDS;
    const m = Math.min(CALL_RECORDS, this.n - first);
    this.k.rollingProcess(
      this.rollBase,
      this.rollStride,
      this.slots + first * 4,
      this.times + first * 8,
      this.values + first * 8,
      m,
      this.rollOut,
    );
  }

  bytes(at: number, length: number): Uint8Array {
    return new Uint8Array(this.mem.buffer, at, length);
  }
}

function stage(keys: number, records: number, seed: number, groupKeys: number): Staged {
  const rng = new SeededRandom(seed);
  const slots = new Uint32Array(records);
  const times = new Float64Array(records);
  const values = new Float64Array(records);
  const level = new Float64Array(keys).map(() => rng.uniform(-50, 50));
  const scale = new Float64Array(keys).map(() => rng.uniform(0.5, 5));
  const episode = new Int32Array(keys); // records left in the key's episode
  const kind = new Int32Array(keys);
  const shift = new Float64Array(keys);
  const last = new Float64Array(keys);
  for (let i = 0; i < records; i++) {
    const s = groupKeys >= keys ? rng.below(keys) : ((Math.floor(i / CALL_RECORDS) * groupKeys) % keys) + rng.below(groupKeys);
    slots[i] = s;
    times[i] = 1_700_000_000_000 + i;
    if (episode[s] === 0 && rng.next() < 0.004) {
      episode[s] = rng.int(10, 80);
      kind[s] = rng.below(5);
      shift[s] = rng.uniform(-3, 3);
    }
    let x = level[s] + scale[s] * rng.normal();
    if (episode[s] > 0) {
      episode[s]--;
      const k = kind[s];
      if (k === 0) x += shift[s] * scale[s];
      else if (k === 1) x += shift[s] * scale[s] * (1 - episode[s] / 80);
      else if (k === 2) x = level[s] + (x - level[s]) * 2.5;
      else if (k === 3) x = level[s] + (x - level[s]) * 0.25;
      else x = last[s];
    }
    if (rng.next() < 0.001) x = Number.NaN;
    values[i] = x;
    last[s] = x;
  }
  return { keys, slots, times, values };
}

/** One pass from fresh state, call by call, rows compared byte for byte; the first difference or null. */
function compare(a: Build, b: Build): string | null {
  a.reset();
  b.reset();
  for (let c = 0; c < a.calls; c++) {
    a.spc(c);
    b.spc(c);
    a.rolling(c);
    b.rolling(c);
    // The event list is its count and that many indices (the slot after them is scratch).
    const listBytes = (1 + new Uint32Array(a.mem.buffer, a.events, 1)[0]) * 4;
    const checks: [string, number, number, number][] = [
      ["spc", a.spcOut, b.spcOut, CALL_RECORDS * SPC_OUT_FIELDS * 8],
      ["spc events", a.events, b.events, listBytes],
      ["rolling", a.rollOut, b.rollOut, CALL_RECORDS * ROLLING_FIELDS * 8],
    ];
    for (const [what, pa, pb, len] of checks) {
      const x = a.bytes(pa, len);
      const y = b.bytes(pb, len);
      for (let j = 0; j < len; j++) {
        if (x[j] !== y[j]) return `${what} differs: call ${c}, byte ${j}`;
      }
    }
  }
  return null;
}

type Variant = "spc" | "rolling" | "rolling+spc";

/**
 * Thread CPU ns per reading of PASSES_PER_SAMPLE passes over all the staged readings. The thread's
 * CPU time moves in scheduler ticks here (4 ms: both getrusage and schedstat), about a tenth of one
 * pass, which quantized single-pass medians to steps of 3.8 ns per reading.
 */
function timePass(b: Build, v: Variant, records: number): number {
  const t0 = threadCpuMicros();
  for (let p = 0; p < PASSES_PER_SAMPLE; p++) {
    for (let c = 0; c < b.calls; c++) {
      if (v !== "spc") b.rolling(c);
      if (v !== "rolling") b.spc(c);
    }
  }
  return ((threadCpuMicros() - t0) * 1000) / (records * PASSES_PER_SAMPLE);
}

function main(): void {
  const argv = process.argv.slice(2);
  const at = argv.indexOf("--group-keys");
  const groupKeys = at < 0 ? 48 : Number(argv[at + 1]);
  const args = at < 0 ? argv : [...argv.slice(0, at), ...argv.slice(at + 2)];
  const before = args[0];
  if (before === undefined || !(Number.isInteger(groupKeys) && groupKeys >= 1 && 48 % groupKeys === 0)) {
    process.stderr.write(
      "usage: node dist/bench/kernel-ab.js <before kernels.wasm> [after kernels.wasm] [rounds] [--group-keys g (a divisor of 48)]\n",
    );
    process.exit(2);
  }
  const after = args[1] ?? new URL("../../build/kernels.wasm", import.meta.url).pathname;
  const rounds = Number(args[2] ?? 9);
  const records = 1 << 20;
  const data = stage(48, records, 20261207, groupKeys);
  const a = new Build(before, data);
  const b = new Build(after, data);
  const diff = compare(a, b);
  process.stdout.write(
    `before ${before}\nafter  ${after}\n48 keys (${groupKeys} a call), ${records} readings, calls of ${CALL_RECORDS}, ${rounds} alternating rounds\n`,
  );
  process.stdout.write(
    diff === null ? "outputs: bit-identical (SPC rows, SPC event lists, rolling rows)\n" : `outputs: MISMATCH ${diff}\n`,
  );
  for (const v of ["spc", "rolling", "rolling+spc"] as const) {
    const ta: number[] = [];
    const tb: number[] = [];
    timePass(a, v, records);
    timePass(b, v, records);
    for (let r = 0; r < rounds; r++) {
      ta.push(timePass(a, v, records));
      tb.push(timePass(b, v, records));
    }
    const ma = median(ta);
    const mb = median(tb);
    process.stdout.write(
      `${v.padEnd(12)} before ${ma.toFixed(1).padStart(6)} ns/reading   after ${mb.toFixed(1).padStart(6)} ns/reading   after/before ${(mb / ma).toFixed(3)}\n`,
    );
  }
  if (diff !== null) process.exit(1);
}

main();
