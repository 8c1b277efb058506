/**
 * A checkpoint of the whole serial job: the lines' kernel state (the engine checkpoint,
 * engine/core/checkpoint.ts), the ledger (batches, each line's last batch, counters, the exact serial
 * sets, both Bloom filter generations' bits and key counts) and the quarantine list, with the
 * source position (stream sequence) they cover.
 *
 * Encoding (little-endian):
 *   magic "LWSC" | u32 version (1) | u32 header length H | H bytes UTF-8 JSON header | body
 * The header names the parameters the state belongs to (kernel params, ledger options, quarantine
 * level: a restore into other ones is refused, naming what differs) and the byte length of each
 * body section. The body is deflateRaw (level 1) of the sections in this order:
 *   engine checkpoint | current filter bits | previous filter bits (0 bytes: none) |
 *   serials (u32 byte length + UTF-8 per serial, batch by batch) | ledger JSON | quarantine JSON
 * Deflate because a filter is mostly zero words until it fills (a 64 MB filter holding a few
 * hundred thousand keys deflates to a few MB); level 1 because a fuller filter barely compresses
 * and higher levels cost time for nothing. Every decoded length is checked against the header,
 * the header against this run's parameters, and the inflated body against the header's total.
 */
import { promisify } from "node:util";
import { deflateRaw, inflateRaw } from "node:zlib";
import { CheckpointError, decodeCheckpoint, encodeCheckpoint, type EngineCheckpoint } from "../../engine/core/mod.js";
import type { SerialParams } from "./layout.js";
import type { LedgerBatchSnapshot, LedgerSnapshot, SerialLedgerOptions } from "./ledger.js";
import type { QuarantineSnapshot } from "./quarantine.js";

export interface SerialCheckpoint {
  /** Source position covered (the last stream sequence whose event is in the state). */
  position: number;
  engine: EngineCheckpoint;
  ledger: LedgerSnapshot;
  quarantine: QuarantineSnapshot;
}

/** What a checkpoint must have been taken with to restore here. */
export interface SerialCheckpointFit {
  params: Readonly<SerialParams>;
  ledgerOptions: Readonly<SerialLedgerOptions>;
  quarantineLevel: string;
  /** Bytes of one filter generation under `ledgerOptions`. */
  filterBytes: number;
}

/** A serial checkpoint larger than this (header or inflated body) is refused. */
export const SERIAL_CHECKPOINT_BYTES_MAX = 1 << 30;
export const SERIAL_CHECKPOINT_HEADER_BYTES_MAX = 1 << 20;

export async function encodeSerialCheckpoint(c: SerialCheckpoint, fit: SerialCheckpointFit): Promise<Uint8Array> {
  const engine = encodeCheckpoint(c.engine);
  const { batches, current, previous, ...rest } = c.ledger;
  const serials = encodeSerials(batches);
  const ledgerJson = Buffer.from(
    JSON.stringify({
      ...rest,
      inserted: [current.inserted, previous?.inserted ?? null],
      batches: batches.map((b) => ({ ...b, serials: b.serials === null ? null : b.serials.count })),
    }),
  );
  const quarantineJson = Buffer.from(JSON.stringify(c.quarantine));
  const parts = [engine, current.bits, previous?.bits ?? new Uint8Array(0), serials, ledgerJson, quarantineJson];
  const sections = Object.fromEntries(SECTIONS.map((name, i) => [name, parts[i].length])) as Sections;
  const bodyBytes = parts.reduce((n, p) => n + p.length, 0);
  const body = await deflate(Buffer.concat(parts, bodyBytes), { level: 1 });
  const header = Buffer.from(
    JSON.stringify({
      position: c.position,
      params: fit.params,
      ledgerOptions: fit.ledgerOptions,
      quarantineLevel: fit.quarantineLevel,
      sections,
      bodyBytes,
    }),
  );
  const out = new Uint8Array(12 + header.length + body.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, VERSION, true);
  view.setUint32(8, header.length, true);
  out.set(header, 12);
  out.set(body, 12 + header.length);
  return out;
}

/** Decodes a serial checkpoint; CheckpointError when it is damaged or does not fit `fit`. */
export async function decodeSerialCheckpoint(bytes: Uint8Array, fit: SerialCheckpointFit): Promise<SerialCheckpoint> {
  if (bytes.length < 12) throw new CheckpointError(`serial checkpoint of ${bytes.length} bytes is truncated`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC) throw new CheckpointError("not a linewatch serial checkpoint (bad magic)");
  const version = view.getUint32(4, true);
  if (version !== VERSION) throw new CheckpointError(`serial checkpoint version ${version} is not supported (expected ${VERSION})`);
  const headerLength = view.getUint32(8, true);
  if (headerLength > SERIAL_CHECKPOINT_HEADER_BYTES_MAX || 12 + headerLength > bytes.length) {
    throw new CheckpointError(`serial checkpoint header of ${headerLength} bytes does not fit the ${bytes.length} bytes given`);
  }
  const header = parseJson<Header>(bytes.subarray(12, 12 + headerLength), "header");
  checkFit(header, fit);
  const s = header.sections;
  let total = 0;
  for (const name of SECTIONS) {
    const n = s?.[name];
    if (!Number.isInteger(n) || n < 0) throw new CheckpointError(`serial checkpoint: section ${name} has length ${n}`);
    total += n;
  }
  if (total !== header.bodyBytes || total > SERIAL_CHECKPOINT_BYTES_MAX)
    throw new CheckpointError(`serial checkpoint: sections of ${total} bytes, body of ${header.bodyBytes}`);
  if (s.filterCurrent !== fit.filterBytes || (s.filterPrevious !== 0 && s.filterPrevious !== fit.filterBytes)) {
    throw new CheckpointError(
      `serial checkpoint: filters of ${s.filterCurrent} and ${s.filterPrevious} bytes; this run's are ${fit.filterBytes}`,
    );
  }
  let body: Buffer;
  try {
    body = await inflate(bytes.subarray(12 + headerLength), { maxOutputLength: Math.max(1, header.bodyBytes) });
  } catch (cause) {
    throw new CheckpointError(`serial checkpoint: body does not inflate to ${header.bodyBytes} bytes (${(cause as Error).message})`, {
      cause,
    });
  }
  if (body.length !== header.bodyBytes)
    throw new CheckpointError(`serial checkpoint: body inflates to ${body.length} bytes, header says ${header.bodyBytes}`);
  let at = 0;
  const take = (name: SectionName): Uint8Array => body.subarray(at, (at += s[name]));
  const engine = decodeCheckpoint(take("engine"));
  if (engine.position !== header.position)
    throw new CheckpointError(`serial checkpoint: engine state covers ${engine.position}, the checkpoint ${header.position}`);
  const current = take("filterCurrent");
  const previous = take("filterPrevious");
  const serialBytes = take("serials");
  const ledgerJson = parseJson<LedgerJson>(take("ledger"), "ledger");
  const quarantine = parseJson<QuarantineSnapshot>(take("quarantine"), "quarantine list");
  if (!Array.isArray(ledgerJson.batches) || !Array.isArray(ledgerJson.lastBatchOfMachine) || !Array.isArray(ledgerJson.inserted)) {
    throw new CheckpointError("serial checkpoint: ledger lacks batches, lines or filter counts");
  }
  if (!Array.isArray(quarantine.entries) || !Array.isArray(quarantine.released))
    throw new CheckpointError("serial checkpoint: quarantine list lacks entries");
  const batches = decodeSerials(ledgerJson.batches, serialBytes, fit.ledgerOptions.exactSerialsMax);
  const [insertedCurrent, insertedPrevious] = ledgerJson.inserted;
  if ((insertedPrevious === null) !== (previous.length === 0))
    throw new CheckpointError("serial checkpoint: previous filter generation and its key count disagree");
  return {
    position: header.position,
    engine,
    ledger: {
      counters: ledgerJson.counters,
      batches,
      lastBatchOfMachine: ledgerJson.lastBatchOfMachine,
      current: { inserted: insertedCurrent as number, bits: current },
      previous: insertedPrevious === null ? null : { inserted: insertedPrevious, bits: previous },
    },
    quarantine,
  };
}

// ---- internals ----

const MAGIC = 0x4353574c; // "LWSC" little-endian
const VERSION = 1;
const SECTIONS = ["engine", "filterCurrent", "filterPrevious", "serials", "ledger", "quarantine"] as const;
type SectionName = (typeof SECTIONS)[number];
type Sections = Record<SectionName, number>;

const deflate = promisify(deflateRaw);
const inflate = promisify(inflateRaw);

interface Header {
  position: number;
  params: Record<string, unknown>;
  ledgerOptions: Record<string, unknown>;
  quarantineLevel: string;
  sections: Sections;
  bodyBytes: number;
}

interface LedgerJson {
  counters: LedgerSnapshot["counters"];
  lastBatchOfMachine: Array<[string, string]>;
  inserted: [number, number | null];
  batches: Array<Omit<LedgerBatchSnapshot, "serials"> & { serials: number | null }>;
}

/** Names every parameter that differs between the checkpoint and this run. */
function checkFit(h: Header, fit: SerialCheckpointFit): void {
  if (!Number.isInteger(h.position) || h.position < 0)
    throw new CheckpointError(`serial checkpoint: position ${h.position} is not a stream position`);
  const differs: string[] = [];
  const compare = (what: string, theirs: Record<string, unknown> | undefined, mine: Readonly<object>) => {
    const m = mine as Record<string, unknown>;
    for (const k of new Set([...Object.keys(theirs ?? {}), ...Object.keys(m)])) {
      if (JSON.stringify(theirs?.[k]) !== JSON.stringify(m[k]))
        differs.push(`${what}.${k} ${JSON.stringify(theirs?.[k])} there, ${JSON.stringify(m[k])} here`);
    }
  };
  compare("serial", h.params, fit.params);
  compare("serial", h.ledgerOptions, fit.ledgerOptions);
  if (h.quarantineLevel !== fit.quarantineLevel) differs.push(`quarantine level ${h.quarantineLevel} there, ${fit.quarantineLevel} here`);
  if (differs.length > 0) {
    throw new CheckpointError(
      `serial checkpoint was taken with other parameters (${differs.join("; ")}): start with the same ones, or without the checkpoint`,
    );
  }
}

function encodeSerials(batches: readonly LedgerBatchSnapshot[]): Buffer {
  let bytes = 0;
  for (const b of batches) if (b.serials !== null) bytes += 4 * b.serials.count + b.serials.bytes.length;
  const out = Buffer.allocUnsafe(bytes);
  let at = 0;
  for (const b of batches) {
    if (b.serials === null) continue;
    const { count, ends } = b.serials;
    const utf8 = Buffer.from(b.serials.bytes.buffer, b.serials.bytes.byteOffset, b.serials.bytes.byteLength);
    let start = 0;
    for (let i = 0; i < count; i++) {
      out.writeUInt32LE(ends[i] - start, at);
      at += 4 + utf8.copy(out, at + 4, start, ends[i]);
      start = ends[i];
    }
  }
  return out;
}

function decodeSerials(batches: LedgerJson["batches"], bytes: Uint8Array, serialsMax: number): LedgerBatchSnapshot[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  let count = 0;
  const out = batches.map((b): LedgerBatchSnapshot => {
    if (b.serials === null) return { ...b, serials: null };
    if (!Number.isInteger(b.serials) || b.serials < 0 || (count += b.serials) > serialsMax) {
      throw new CheckpointError(`serial checkpoint: more exact serials than exactSerialsMax ${serialsMax}`);
    }
    // Lengths first (each within the section), then one copy of the batch's bytes.
    const ends = new Uint32Array(b.serials);
    let total = 0;
    let p = at;
    for (let i = 0; i < b.serials; i++) {
      if (p + 4 > buf.length) throw new CheckpointError("serial checkpoint: serials section is truncated");
      const n = buf.readUInt32LE(p);
      if (p + 4 + n > buf.length) throw new CheckpointError(`serial checkpoint: a serial of ${n} bytes runs past its section`);
      ends[i] = total += n;
      p += 4 + n;
    }
    const utf8 = new Uint8Array(total);
    let start = 0;
    for (let i = 0; i < b.serials; i++) {
      const n = ends[i] - start;
      utf8.set(buf.subarray(at + 4, at + 4 + n), start);
      at += 4 + n;
      start = ends[i];
    }
    return { ...b, serials: { count: b.serials, bytes: utf8, ends } };
  });
  if (at !== buf.length) throw new CheckpointError(`serial checkpoint: ${buf.length - at} bytes of serials left over`);
  return out;
}

function parseJson<T>(bytes: Uint8Array, what: string): T {
  try {
    const v = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8")) as unknown;
    if (v === null || typeof v !== "object") throw new Error("not an object");
    return v as T;
  } catch (cause) {
    throw new CheckpointError(`serial checkpoint: ${what} is not JSON`, { cause });
  }
}
