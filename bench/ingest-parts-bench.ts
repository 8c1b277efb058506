/**
 * Parts of an ingest worker's frame path, each the way it was and the way it is, on one thread
 * and the same data, alternately (so a busy machine slows both alike), with their ratio:
 *
 * - alert events: the SPC episode tracker handing each event to a function as a copy that the
 *   AlertEncoder then turns into numbers, against the tracker writing into the encoder as its
 *   sink (no copy per event). Rows of 48 keys in chunks of 4096 where a rule fires on one reading
 *   in 14 and an episode closes after 3 quiet readings: an event every 7 readings or so, about
 *   the simulator's rate in `bench e2e`'s frames row; both must give the same
 *   events (decoded, as JSON);
 * - episode ids: FNV-1a 64 in BigInt arithmetic against the two 32-bit halves (same ids);
 * - frames into a batch: decodeFrame, then the columns copied into the batch's (and the key
 *   indices mapped), against decodeFrameInto straight into the batch's columns and the indices
 *   mapped in place. Frames of 4096 readings of one machine (6 keys), int64 times, as the e2e
 *   publisher sends them.
 *
 *   node dist/bench/ingest-parts-bench.js [--rounds 7]
 */
import { pathToFileURL } from "node:url";
import { loadavg } from "node:os";
import { SeededRandom } from "../engine/core/mod.js";
import { median } from "./bench-kit.js";
import { decodeFrame, decodeFrameInto, encodeFrame } from "../connectors/wire/mod.js";
import {
  ALERT_FAMILIES,
  AlertEncoder,
  alertConditions,
  conditionWindows,
  DEFAULT_SPC_PARAMS,
  decodeAlerts,
  EpisodeTracker,
  episodeId,
  SPC_COL,
  SPC_OUT_FIELDS,
  WE_RULES,
} from "../operators/spc/mod.js";

const KEYS = 48;
const CHUNK = 4096;
const CHUNKS = 64;

interface Chunk {
  keyIds: Uint32Array;
  positions: Float64Array;
  times: Float64Array;
  values: Float64Array;
  length: number;
  rows: Float64Array;
  events: Uint32Array;
}

/** Chunks of SPC rows: keys round-robin, a WE rule bit on one reading in 14, every loud row listed. */
function alertChunks(): Chunk[] {
  const rng = new SeededRandom(13);
  const out: Chunk[] = [];
  for (let c = 0; c < CHUNKS; c++) {
    const rows = new Float64Array(CHUNK * SPC_OUT_FIELDS);
    const events: number[] = [];
    const ch = {
      keyIds: new Uint32Array(CHUNK),
      positions: new Float64Array(CHUNK),
      times: new Float64Array(CHUNK),
      values: new Float64Array(CHUNK),
    };
    for (let i = 0; i < CHUNK; i++) {
      const n = c * CHUNK + i;
      ch.keyIds[i] = n % KEYS;
      ch.positions[i] = n;
      ch.times[i] = 1_767_225_600_000 + Math.floor(n / KEYS) * 100;
      ch.values[i] = rng.normal();
      const at = i * SPC_OUT_FIELDS;
      rows[at + SPC_COL.cl] = 0;
      rows[at + SPC_COL.sigma] = 1;
      rows[at + SPC_COL.limits_version] = 1;
      if (rng.below(14) === 0) {
        rows[at + SPC_COL.we_mask] = WE_RULES[rng.below(WE_RULES.length)].bit;
        events.push(i);
      }
    }
    out.push({ ...ch, length: CHUNK, rows, events: Uint32Array.from(events) });
  }
  return out;
}

const KEY_NAMES = Array.from({ length: KEYS }, (_, k) => `M-${String(1 + Math.floor(k / 6)).padStart(3, "0")}/s${k % 6}`);
const keyName = (k: number): string => KEY_NAMES[k];
/** Each key's fields, made once per key (as the SPC analysis's cachedKeyFields). */
const FIELDS = new Map(KEY_NAMES.map((key) => [key, { machine_id: key.split("/")[0], sensor_type: key.split("/")[1] }]));
const keyFields = (key: string): Record<string, string> => FIELDS.get(key) as Record<string, string>;

/** Every chunk through a new tracker; the events' numbers and strings from each take, as the worker posts them. */
function trackAll(chunks: readonly Chunk[], sink: boolean): { events: number; json: string | null } {
  const encoder = new AlertEncoder();
  const conditions = alertConditions(conditionWindows(DEFAULT_SPC_PARAMS), DEFAULT_SPC_PARAMS);
  const settings = { families: ALERT_FAMILIES, closeAfter: 3, updateIntervalMs: 10_000 };
  const tracker = new EpisodeTracker(conditions, settings, sink ? encoder : (e) => encoder.add(e), (key) => keyFields(key));
  let first: string | null = null;
  for (const c of chunks) {
    tracker.observeChunk(c, c.rows, c.events, keyName);
    const taken = encoder.take();
    if (first === null && taken !== null) first = JSON.stringify(decodeAlerts(taken));
  }
  return { events: tracker.events, json: first };
}

/** FNV-1a 64 as it was: BigInt arithmetic. */
function episodeIdBigInt(key: string, family: string, openedAt: number, position: number): string {
  const text = `${key}\u0000${family}\u0000${openedAt}\u0000${position}`;
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < text.length; i++) {
    h ^= BigInt(text.charCodeAt(i));
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h.toString(16).padStart(16, "0");
}

function ids(id: typeof episodeId, n: number): string {
  let last = "";
  for (let i = 0; i < n; i++) last = id(KEY_NAMES[i % KEYS], i & 1 ? "level" : "variation", 1_767_225_600_000 + i * 100, i);
  return last;
}

/** Frames of one machine's 6 keys, 4096 readings each, int64 times. */
function machineFrames(): Uint8Array[] {
  const rng = new SeededRandom(7);
  const keys = Array.from({ length: 6 }, (_, k) => `M-001.s${k}`);
  return Array.from({ length: 32 }, (_, f) => {
    const keyIndex = Array.from({ length: CHUNK }, (_, i) => i % 6);
    const times = Array.from({ length: CHUNK }, (_, i) => 1_767_225_600_000 + f * CHUNK + i);
    const values = Array.from({ length: CHUNK }, () => rng.normal());
    return encodeFrame({ keys, keyIndex, times, values }, { times: "int64" });
  });
}

const batch = { keyIds: new Uint32Array(CHUNK * 16), times: new Float64Array(CHUNK * 16), values: new Float64Array(CHUNK * 16) };
const engineIds = Uint32Array.from([40, 41, 42, 43, 44, 45]);

/** As before: decodeFrame, the zero-copy columns sliced off the message, then copied into the batch. */
function framesCopied(frames: readonly Uint8Array[]): number {
  let at = 0;
  for (const f of frames) {
    if (at + CHUNK > batch.times.length) at = 0;
    const d = decodeFrame(f);
    const times = d.zeroCopy ? d.times.slice() : d.times;
    const values = d.zeroCopy ? d.values.slice() : d.values;
    for (let i = 0; i < d.length; i++) batch.keyIds[at + i] = engineIds[d.keyIndex[i]];
    batch.times.set(times, at);
    batch.values.set(values, at);
    at += d.length;
  }
  return batch.values[at - 1];
}

/** As now: decodeFrameInto the batch, the key indices mapped in place. */
function framesInto(frames: readonly Uint8Array[]): number {
  let at = 0;
  const target = { ...batch, keyIndex: batch.keyIds, at: 0 };
  for (const f of frames) {
    if (at + CHUNK > batch.times.length) at = 0;
    target.at = at;
    const d = decodeFrameInto(f, target);
    for (let i = at; i < at + d.length; i++) batch.keyIds[i] = engineIds[batch.keyIds[i]];
    at += d.length;
  }
  return batch.values[at - 1];
}

/**
 * CPU ms of `fn`: the process's (user + system; this bench runs on one thread, V8's GC helpers
 * aside), less sensitive to other processes than wall time on a shared machine.
 */
function timed(fn: () => unknown): number {
  const t0 = process.cpuUsage();
  fn();
  const t = process.cpuUsage(t0);
  return (t.user + t.system) / 1000;
}

interface PartRow {
  label: string;
  unit: string;
  units: number;
  beforeMs: number[];
  afterMs: number[];
}

/** Alternately before and after, `rounds` times each after one warm-up of both. */
function alternate(label: string, unit: string, units: number, before: () => unknown, after: () => unknown, rounds: number): PartRow {
  before();
  after();
  const row: PartRow = { label, unit, units, beforeMs: [], afterMs: [] };
  for (let r = 0; r < rounds; r++) {
    row.beforeMs.push(timed(before));
    row.afterMs.push(timed(after));
  }
  return row;
}

function formatRow(r: PartRow): string {
  const ns = (ms: number) => ((ms * 1e6) / r.units).toFixed(1);
  const b = median(r.beforeMs);
  const a = median(r.afterMs);
  return `  ${r.label.padEnd(58)} ${ns(b).padStart(10)} ${ns(a).padStart(10)}   ${(b / a).toFixed(2).padStart(5)}×   (ns per ${r.unit})`;
}

function main(): void {
  const roundsAt = process.argv.indexOf("--rounds");
  const rounds = roundsAt > 0 ? Number(process.argv[roundsAt + 1]) : 7;
  const load = loadavg()[0];
  const chunks = alertChunks();
  const copied = trackAll(chunks, false);
  const sunk = trackAll(chunks, true);
  const agree = copied.events === sunk.events && copied.json === sunk.json && ids(episodeId, 5000) === ids(episodeIdBigInt, 5000);
  const frames = machineFrames();
  const rows = [
    alternate(
      "alert events: copy per event + encoder.add → sink",
      "reading",
      CHUNKS * CHUNK,
      () => trackAll(chunks, false),
      () => trackAll(chunks, true),
      rounds,
    ),
    alternate(
      "episode ids: BigInt → 32-bit halves, hex from a table",
      "id",
      20_000,
      () => ids(episodeIdBigInt, 20_000),
      () => ids(episodeId, 20_000),
      rounds,
    ),
    alternate(
      "frames into a batch: decodeFrame + copies → decodeFrameInto",
      "reading",
      frames.length * CHUNK * 20,
      () => {
        for (let k = 0; k < 20; k++) framesCopied(frames);
      },
      () => {
        for (let k = 0; k < 20; k++) framesInto(frames);
      },
      rounds,
    ),
  ];
  const lines = [
    `ingest worker parts, before → after, alternately ${rounds} rounds (medians of CPU time); Node ${process.version}, load average ${load.toFixed(2)} at start`,
    `  ${"part".padEnd(58)} ${"before".padStart(10)} ${"after".padStart(10)}   ratio`,
    ...rows.map(formatRow),
    `alert events per run: ${sunk.events} over ${CHUNKS * CHUNK} readings; same events and ids before and after: ${agree ? "yes" : "******** NO ********"}`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
  if (!agree) process.exitCode = 1;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
