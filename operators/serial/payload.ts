/**
 * Writing serial events into the fixed-width payload (layout in serial-layout.ts) and reading
 * them back for output. ASCII text — all a valid GS1 record has — is written and read byte by
 * byte; anything else goes through UTF-8, truncated at whole characters.
 */
import {
  PAYLOAD,
  PAYLOAD_FIELD_BYTES,
  REC_BATCH_CLOSE,
  REC_GTIN_TRUNCATED,
  REC_SERIAL_NON_ASCII,
  REC_SERIAL_TRUNCATED,
  REC_TEXT_TRUNCATED,
} from "./layout.js";

/** The fields of one serial event as the payload carries them. */
export interface SerialFields {
  serial: string;
  gtin: string;
  batch: string;
  machine: string;
  operator: string;
  /** Arrival time in time units; NaN when unknown. */
  arrival: number;
  /** A batch-close event rather than a serial. */
  batchClose: boolean;
  /** Main-thread verdicts (ledger reason bits and marks). */
  ledgerBits: number;
}

/** The text fields of a payload, decoded. */
export interface DecodedSerial {
  serial: string;
  gtin: string;
  batch: string;
  machine: string;
  operator: string;
  arrival: number;
  ledgerBits: number;
  recordFlags: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Writes one event at `offset` (SERIAL_PAYLOAD_BYTES bytes; bytes past each field's length are
 * unspecified). Returns whether every text field is stored whole and in ASCII — then the payload
 * alone holds the event's text (what the ledger's `checkPayload` needs).
 */
export function encodeSerialFields(f: SerialFields, payload: Uint8Array, offset: number): boolean {
  // Readers go by the stored lengths: bytes past a field's length are left as they were (not
  // cleared: this runs for every event on the main thread).
  scratchF64[0] = f.arrival;
  for (let i = 0; i < 8; i++) payload[offset + PAYLOAD.arrival + i] = scratchBytes[i];
  writeU32(payload, offset + PAYLOAD.ledger, f.ledgerBits);
  let flags = f.batchClose ? REC_BATCH_CLOSE : 0;
  payload[offset + PAYLOAD.serialBytes] = writeText(f.serial, payload, offset + PAYLOAD.serial, PAYLOAD_FIELD_BYTES.serial);
  payload[offset + PAYLOAD.serialChars] = Math.min(255, written.chars);
  if (written.truncated) flags |= REC_SERIAL_TRUNCATED;
  if (written.nonAscii) flags |= REC_SERIAL_NON_ASCII;
  payload[offset + PAYLOAD.gtinBytes] = writeText(f.gtin, payload, offset + PAYLOAD.gtin, PAYLOAD_FIELD_BYTES.gtin);
  payload[offset + PAYLOAD.gtinChars] = Math.min(255, written.chars);
  if (written.truncated || written.nonAscii) flags |= REC_GTIN_TRUNCATED;
  let text = 0;
  let wide = written.nonAscii;
  payload[offset + PAYLOAD.batchBytes] = writeText(f.batch, payload, offset + PAYLOAD.batch, PAYLOAD_FIELD_BYTES.batch);
  text |= written.truncated ? 1 : 0;
  wide ||= written.nonAscii;
  payload[offset + PAYLOAD.machineBytes] = writeText(f.machine, payload, offset + PAYLOAD.machine, PAYLOAD_FIELD_BYTES.machine);
  text |= written.truncated ? 1 : 0;
  wide ||= written.nonAscii;
  payload[offset + PAYLOAD.operatorBytes] = writeText(f.operator, payload, offset + PAYLOAD.operator, PAYLOAD_FIELD_BYTES.operator);
  text |= written.truncated ? 1 : 0;
  wide ||= written.nonAscii;
  if (text !== 0) flags |= REC_TEXT_TRUNCATED;
  payload[offset + PAYLOAD.recordFlags] = flags;
  return (flags & (REC_SERIAL_TRUNCATED | REC_SERIAL_NON_ASCII | REC_GTIN_TRUNCATED | REC_TEXT_TRUNCATED)) === 0 && !wide;
}

/**
 * An event's text as byte ranges of a message (connectors/wire SerialRecordView fills one): ASCII
 * text, each field's bytes at `…Start` for `…Length` bytes (`operatorStart` −1: no operator).
 */
export interface SerialTextRanges {
  serialStart: number;
  serialLength: number;
  gtinStart: number;
  gtinLength: number;
  batchStart: number;
  batchLength: number;
  machineStart: number;
  machineLength: number;
  operatorStart: number;
  operatorLength: number;
}

/**
 * {@link encodeSerialFields} from ranges of `src` holding ASCII text: the bytes copied as they
 * are, with the same lengths and flags encodeSerialFields writes for those strings. Returns false,
 * writing nothing, when a field does not fit its width (encodeSerialFields would truncate it:
 * make the strings and call it instead).
 */
export function encodeSerialRanges(
  src: Uint8Array,
  r: SerialTextRanges,
  arrival: number,
  batchClose: boolean,
  ledgerBits: number,
  payload: Uint8Array,
  offset: number,
): boolean {
  const operatorLength = r.operatorStart < 0 ? 0 : r.operatorLength;
  if (
    r.serialLength > PAYLOAD_FIELD_BYTES.serial ||
    r.gtinLength > PAYLOAD_FIELD_BYTES.gtin ||
    r.batchLength > PAYLOAD_FIELD_BYTES.batch ||
    r.machineLength > PAYLOAD_FIELD_BYTES.machine ||
    operatorLength > PAYLOAD_FIELD_BYTES.operator
  ) {
    return false;
  }
  scratchF64[0] = arrival;
  for (let i = 0; i < 8; i++) payload[offset + PAYLOAD.arrival + i] = scratchBytes[i];
  writeU32(payload, offset + PAYLOAD.ledger, ledgerBits);
  payload[offset + PAYLOAD.serialChars] = r.serialLength;
  payload[offset + PAYLOAD.serialBytes] = r.serialLength;
  payload[offset + PAYLOAD.gtinChars] = r.gtinLength;
  payload[offset + PAYLOAD.gtinBytes] = r.gtinLength;
  payload[offset + PAYLOAD.batchBytes] = r.batchLength;
  payload[offset + PAYLOAD.machineBytes] = r.machineLength;
  payload[offset + PAYLOAD.operatorBytes] = operatorLength;
  payload[offset + PAYLOAD.recordFlags] = batchClose ? REC_BATCH_CLOSE : 0;
  copy(src, r.serialStart, r.serialLength, payload, offset + PAYLOAD.serial);
  copy(src, r.gtinStart, r.gtinLength, payload, offset + PAYLOAD.gtin);
  copy(src, r.batchStart, r.batchLength, payload, offset + PAYLOAD.batch);
  copy(src, r.machineStart, r.machineLength, payload, offset + PAYLOAD.machine);
  copy(src, r.operatorStart, operatorLength, payload, offset + PAYLOAD.operator);
  return true;
}

/**
 * The ASCII text of `bytes[at, at + length)` (one character per byte). Made in one call (a flat
 * string), not one character at a time: a string of n concatenations is a tree, and the ledger
 * compares its batches' and operators' strings with every event's bytes (charCodeAt walks the
 * tree). Past FROM_CODES_MAX characters, the loop (an argument per character would overflow the stack).
 */
export function asciiString(bytes: Uint8Array, at: number, length: number): string {
  if (length <= FROM_CODES_MAX) return String.fromCharCode.apply(null, bytes.subarray(at, at + length) as unknown as number[]);
  let s = "";
  for (let i = 0; i < length; i++) s += String.fromCharCode(bytes[at + i]);
  return s;
}

const FROM_CODES_MAX = 256;

function copy(src: Uint8Array, from: number, length: number, out: Uint8Array, to: number): void {
  for (let i = 0; i < length; i++) out[to + i] = src[from + i];
}

export function decodeSerialPayload(payload: Uint8Array, offset = 0): DecodedSerial {
  return {
    serial: readText(payload, offset + PAYLOAD.serial, payload[offset + PAYLOAD.serialBytes]),
    gtin: readText(payload, offset + PAYLOAD.gtin, payload[offset + PAYLOAD.gtinBytes]),
    batch: readText(payload, offset + PAYLOAD.batch, payload[offset + PAYLOAD.batchBytes]),
    machine: readText(payload, offset + PAYLOAD.machine, payload[offset + PAYLOAD.machineBytes]),
    operator: readText(payload, offset + PAYLOAD.operator, payload[offset + PAYLOAD.operatorBytes]),
    arrival: readF64(payload, offset + PAYLOAD.arrival),
    ledgerBits: readU32(payload, offset + PAYLOAD.ledger),
    recordFlags: payload[offset + PAYLOAD.recordFlags],
  };
}

/** The stored text of one field (serial, gtin, batch, machine, operator). */
export function payloadText(payload: Uint8Array, field: keyof typeof PAYLOAD_FIELD_BYTES, offset = 0): string {
  const at = { serial: PAYLOAD.serial, gtin: PAYLOAD.gtin, batch: PAYLOAD.batch, machine: PAYLOAD.machine, operator: PAYLOAD.operator }[
    field
  ];
  const len = {
    serial: PAYLOAD.serialBytes,
    gtin: PAYLOAD.gtinBytes,
    batch: PAYLOAD.batchBytes,
    machine: PAYLOAD.machineBytes,
    operator: PAYLOAD.operatorBytes,
  }[field];
  return readText(payload, offset + at, payload[offset + len]);
}

export function readU32(bytes: Uint8Array, at: number): number {
  return (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24)) >>> 0;
}

export function writeU32(bytes: Uint8Array, at: number, v: number): void {
  bytes[at] = v & 0xff;
  bytes[at + 1] = (v >>> 8) & 0xff;
  bytes[at + 2] = (v >>> 16) & 0xff;
  bytes[at + 3] = (v >>> 24) & 0xff;
}

export function readF64(bytes: Uint8Array, at: number): number {
  for (let i = 0; i < 8; i++) scratchBytes[i] = bytes[at + i];
  return scratchF64[0];
}

// ---- internals ----

/** Little-endian f64 bytes (every platform Node runs on is little-endian, as is WebAssembly). */
const scratchF64 = new Float64Array(1);
const scratchBytes = new Uint8Array(scratchF64.buffer);

/** What the last writeText wrote besides its byte count (a module scratch: no object per field). */
const written = { chars: 0, truncated: false, nonAscii: false };

/** Writes at most `max` bytes of `text`; returns the bytes written, details in `written`. */
function writeText(text: string, out: Uint8Array, at: number, max: number): number {
  const n = text.length;
  let i = 0;
  for (; i < n && i < max; i++) {
    const c = text.charCodeAt(i);
    if (c >= 128) break;
    out[at + i] = c;
  }
  written.chars = n;
  written.truncated = false;
  written.nonAscii = false;
  if (i === n) return n;
  let ascii = true;
  for (let j = i; j < n && ascii; j++) ascii = text.charCodeAt(j) < 128;
  if (ascii) {
    written.truncated = true;
    return max;
  }
  const r = encoder.encodeInto(text, out.subarray(at, at + max));
  let chars = 0;
  for (const _ of text) chars++;
  written.chars = chars;
  written.truncated = r.read < n;
  written.nonAscii = true;
  return r.written;
}

function readText(bytes: Uint8Array, at: number, len: number): string {
  let s = "";
  for (let i = 0; i < len; i++) {
    const c = bytes[at + i];
    if (c >= 128) return decoder.decode(bytes.subarray(at, at + len));
    s += String.fromCharCode(c);
  }
  return s;
}
