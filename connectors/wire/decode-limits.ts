/**
 * Limits of every decoder in `connectors/`: the bytes of a message, the lengths inside it, and the
 * nesting depth. Each is checked before the memory it would cost is allocated, so a small hostile
 * message cannot make the process allocate more than a small multiple of its own size.
 *
 * Defaults are sized for the source schema (DESIGN.md §4): a sensor record is ~150–250 bytes with
 * seven short strings and numbers and no arrays; a frame fits the NATS server's default
 * `max_payload` (1 MiB).
 */
import { ConfigError } from "../../engine/core/mod.js";

export interface DecodeLimits {
  /** Bytes of one single-record message (MessagePack or JSON), checked before decoding. */
  recordBytesMax: number;
  /** Bytes of one frame message, checked before reading its header. */
  frameBytesMax: number;
  /** UTF-8 bytes of any string in a record (MessagePack `maxStrLength`; JSON after parsing). */
  stringBytesMax: number;
  /** UTF-8 bytes of one subject token — and so of `machine_id`, `sensor_type`, a line id. */
  tokenBytesMax: number;
  /** Bytes of a whole subject. */
  subjectBytesMax: number;
  /** Elements of any array in a record (the schema has none; unknown fields may). */
  arrayLengthMax: number;
  /** Entries of any map / object in a record. */
  mapEntriesMax: number;
  /** Bytes of a MessagePack binary value. */
  binBytesMax: number;
  /** Bytes of a MessagePack extension value (12 admits the 96-bit timestamp extension). */
  extBytesMax: number;
  /** Nesting depth of containers; a flat record is depth 1. */
  depthMax: number;
  /** Readings declared by one frame. */
  frameReadingsMax: number;
  /** Keys in one frame's key table. */
  frameKeysMax: number;
  /** UTF-8 bytes of one frame key (`<machine_id>.<sensor_type>`); at most 65 535 (a u16 on the wire). */
  frameKeyBytesMax: number;
}

export const DEFAULT_RECORD_BYTES_MAX = 4096;
/** The NATS server's default `max_payload`: a larger frame could not be published anyway. */
export const DEFAULT_FRAME_BYTES_MAX = 1_048_576;
export const DEFAULT_STRING_BYTES_MAX = 256;
export const DEFAULT_TOKEN_BYTES_MAX = 64;
export const DEFAULT_SUBJECT_BYTES_MAX = 256;
export const DEFAULT_ARRAY_LENGTH_MAX = 64;
export const DEFAULT_MAP_ENTRIES_MAX = 32;
export const DEFAULT_BIN_BYTES_MAX = 256;
export const DEFAULT_EXT_BYTES_MAX = 12;
export const DEFAULT_DEPTH_MAX = 8;
export const DEFAULT_FRAME_READINGS_MAX = 65_536;
export const DEFAULT_FRAME_KEYS_MAX = 65_536;
/** Two tokens and the dot between them. */
export const DEFAULT_FRAME_KEY_BYTES_MAX = 2 * DEFAULT_TOKEN_BYTES_MAX + 1;

/** Hard ceilings the wire format or the runtime imposes, whatever the configuration says. */
export const FRAME_KEY_BYTES_CEILING = 0xffff;
export const FRAME_COUNT_CEILING = 0xffff_ffff;
/** Deeper nesting is never data; the MessagePack scan keeps one counter per level. */
export const DEPTH_CEILING = 1024;
/** Typed arrays of more than 2 GiB are not what a message should ever become. */
export const MESSAGE_BYTES_CEILING = 0x7fff_ffff;

/** A fresh copy of the defaults. */
export function defaultDecodeLimits(): DecodeLimits {
  return {
    recordBytesMax: DEFAULT_RECORD_BYTES_MAX,
    frameBytesMax: DEFAULT_FRAME_BYTES_MAX,
    stringBytesMax: DEFAULT_STRING_BYTES_MAX,
    tokenBytesMax: DEFAULT_TOKEN_BYTES_MAX,
    subjectBytesMax: DEFAULT_SUBJECT_BYTES_MAX,
    arrayLengthMax: DEFAULT_ARRAY_LENGTH_MAX,
    mapEntriesMax: DEFAULT_MAP_ENTRIES_MAX,
    binBytesMax: DEFAULT_BIN_BYTES_MAX,
    extBytesMax: DEFAULT_EXT_BYTES_MAX,
    depthMax: DEFAULT_DEPTH_MAX,
    frameReadingsMax: DEFAULT_FRAME_READINGS_MAX,
    frameKeysMax: DEFAULT_FRAME_KEYS_MAX,
    frameKeyBytesMax: DEFAULT_FRAME_KEY_BYTES_MAX,
  };
}

/** The defaults, shared and frozen: what decoders use when given no limits. */
export const DEFAULT_DECODE_LIMITS: Readonly<DecodeLimits> = Object.freeze(defaultDecodeLimits());

/**
 * The defaults overlaid with `limits` (undefined entries keep the default), checked one by one and
 * against each other. Throws {@link ConfigError} naming the option; returns a frozen object.
 */
export function validateDecodeLimits(limits: Partial<DecodeLimits> = {}): Readonly<DecodeLimits> {
  const l = defaultDecodeLimits();
  for (const [name, value] of Object.entries(limits)) {
    if (!(name in l)) throw new ConfigError(name, "is not a decode limit");
    if (value !== undefined) l[name as keyof DecodeLimits] = value;
  }
  integer(l, "recordBytesMax", 1, MESSAGE_BYTES_CEILING);
  integer(l, "frameBytesMax", 1, MESSAGE_BYTES_CEILING);
  integer(l, "stringBytesMax", 1, MESSAGE_BYTES_CEILING);
  integer(l, "tokenBytesMax", 1, MESSAGE_BYTES_CEILING);
  integer(l, "subjectBytesMax", 1, MESSAGE_BYTES_CEILING);
  integer(l, "arrayLengthMax", 0, FRAME_COUNT_CEILING);
  integer(l, "mapEntriesMax", REQUIRED_FIELDS, FRAME_COUNT_CEILING);
  integer(l, "binBytesMax", 0, MESSAGE_BYTES_CEILING);
  integer(l, "extBytesMax", 0, MESSAGE_BYTES_CEILING);
  integer(l, "depthMax", 1, DEPTH_CEILING);
  integer(l, "frameReadingsMax", 0, FRAME_COUNT_CEILING);
  integer(l, "frameKeysMax", 1, FRAME_COUNT_CEILING);
  integer(l, "frameKeyBytesMax", 3, FRAME_KEY_BYTES_CEILING);
  if (l.tokenBytesMax > l.stringBytesMax) {
    throw new ConfigError(
      "tokenBytesMax",
      `(${l.tokenBytesMax}) must not exceed stringBytesMax (${l.stringBytesMax}): ids are strings of the record`,
    );
  }
  if (l.stringBytesMax >= l.recordBytesMax) {
    throw new ConfigError("stringBytesMax", `(${l.stringBytesMax}) must be below recordBytesMax (${l.recordBytesMax})`);
  }
  if (l.tokenBytesMax > l.subjectBytesMax) {
    throw new ConfigError("tokenBytesMax", `(${l.tokenBytesMax}) must not exceed subjectBytesMax (${l.subjectBytesMax})`);
  }
  if (l.frameKeyBytesMax >= l.frameBytesMax) {
    throw new ConfigError("frameKeyBytesMax", `(${l.frameKeyBytesMax}) must be below frameBytesMax (${l.frameBytesMax})`);
  }
  return Object.freeze(l);
}

/** machine_id, sensor_type, timestamp, sensor_value. */
const REQUIRED_FIELDS = 4;

function integer(l: DecodeLimits, name: keyof DecodeLimits, min: number, max: number): void {
  const v = l[name];
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(name, `must be an integer from ${min} to ${max}, got ${String(v)}`);
  }
}
