/**
 * A structural check of one MessagePack value, run before `@msgpack/msgpack` decodes it.
 *
 * Why: the library allocates what a header declares before it knows the bytes exist. `dd ff ff ff
 * ff` (5 bytes) asks for `new Array(4294967295)`; an array16 header (3 bytes) pre-sizes a 64 K-slot
 * array (512 KiB), so a few KB of nested headers become hundreds of MB. Its `max*Length` options
 * cap single lengths but not nesting depth, and not "more elements than bytes left". This walk
 * reads only headers, allocates nothing (one small stack), and rejects:
 * - a length over its limit (`length_exceeded`), containers deeper than `depthMax` (`too_deep`);
 * - a container declaring more elements than bytes remain, or a string/bin/ext past the end
 *   (`truncated`) — so what the library then allocates is bounded by the message size;
 * - the never-used type byte 0xc1 (`malformed`), bytes after the value (`trailing_bytes`).
 * Layout per the MessagePack spec (https://github.com/msgpack/msgpack/blob/master/spec.md).
 */
import { DEPTH_CEILING, type DecodeLimits } from "./decode-limits.js";
import { DecodeError } from "../errors.js";

type ScanLimits = Pick<DecodeLimits, "stringBytesMax" | "binBytesMax" | "extBytesMax" | "arrayLengthMax" | "mapEntriesMax" | "depthMax">;

/** Throws {@link DecodeError} unless `bytes` holds exactly one well-formed value within `limits`. */
export function scanMsgpack(bytes: Uint8Array, limits: ScanLimits, subject?: string): void {
  try {
    walk(bytes, limits);
  } catch (e) {
    if (e instanceof DecodeError && subject !== undefined) {
      throw new DecodeError(e.reason, e.detail, { limit: e.limit, offset: e.offset, subject });
    }
    throw e;
  }
}

/**
 * left[d]: values still to read in the container open at depth d (depth 0 is the top level). One
 * shared array — the walk is synchronous — because allocating a typed array per message costs as
 * much as the walk. Values fit: a container is pushed only with fewer items than bytes left.
 */
const left = new Int32Array(DEPTH_CEILING + 1);

function walk(bytes: Uint8Array, limits: ScanLimits): void {
  const end = bytes.length;
  if (end === 0) throw new DecodeError("truncated", "empty message", { offset: 0 });
  if (limits.depthMax > DEPTH_CEILING) throw new RangeError(`depthMax ${limits.depthMax} is over ${DEPTH_CEILING}`);
  left[0] = 1;
  let depth = 0;
  let pos = 0;
  for (;;) {
    while (left[depth] === 0) {
      if (depth === 0) {
        if (pos !== end) throw new DecodeError("trailing_bytes", `${end - pos} byte(s) after the value`, { offset: pos });
        return;
      }
      depth--;
    }
    left[depth]--;
    if (pos >= end) throw new DecodeError("truncated", "message ends inside a container", { offset: pos });
    const h = bytes[pos];
    let size = 0; // payload bytes after the header
    let header = 1;
    let items = -1; // > -1: a container with this many values
    let limit = "";
    if (h <= 0x7f || h >= 0xe0 || h === 0xc0 || h === 0xc2 || h === 0xc3) {
      // fixint, nil, bool
    } else if (h <= 0x8f) {
      items = 2 * (h & 0x0f);
      limit = "mapEntriesMax";
      checkLength(h & 0x0f, limits.mapEntriesMax, limit, pos);
    } else if (h <= 0x9f) {
      items = h & 0x0f;
      limit = "arrayLengthMax";
      checkLength(items, limits.arrayLengthMax, limit, pos);
    } else if (h <= 0xbf) {
      size = h & 0x1f;
      checkLength(size, limits.stringBytesMax, "stringBytesMax", pos);
    } else {
      switch (h) {
        case 0xc1:
          throw new DecodeError("malformed", "type byte 0xc1 is never used", { offset: pos });
        case 0xc4:
        case 0xc5:
        case 0xc6: // bin 8/16/32
          header = 1 + lengthBytes(h - 0xc4);
          size = readLength(bytes, pos + 1, header - 1);
          checkLength(size, limits.binBytesMax, "binBytesMax", pos);
          break;
        case 0xc7:
        case 0xc8:
        case 0xc9: // ext 8/16/32: length, then a type byte
          header = 2 + lengthBytes(h - 0xc7);
          size = readLength(bytes, pos + 1, header - 2);
          checkLength(size, limits.extBytesMax, "extBytesMax", pos);
          break;
        case 0xca:
          size = 4;
          break;
        case 0xcb:
          size = 8;
          break;
        case 0xcc:
        case 0xd0:
          size = 1;
          break;
        case 0xcd:
        case 0xd1:
          size = 2;
          break;
        case 0xce:
        case 0xd2:
          size = 4;
          break;
        case 0xcf:
        case 0xd3:
          size = 8;
          break;
        case 0xd4:
        case 0xd5:
        case 0xd6:
        case 0xd7:
        case 0xd8: // fixext 1/2/4/8/16
          header = 2;
          size = 1 << (h - 0xd4);
          checkLength(size, limits.extBytesMax, "extBytesMax", pos);
          break;
        case 0xd9:
        case 0xda:
        case 0xdb: // str 8/16/32
          header = 1 + lengthBytes(h - 0xd9);
          size = readLength(bytes, pos + 1, header - 1);
          checkLength(size, limits.stringBytesMax, "stringBytesMax", pos);
          break;
        case 0xdc:
        case 0xdd: // array 16/32
          header = 1 + lengthBytes(h - 0xdc + 1);
          items = readLength(bytes, pos + 1, header - 1);
          limit = "arrayLengthMax";
          checkLength(items, limits.arrayLengthMax, limit, pos);
          break;
        default: {
          // 0xde, 0xdf: map 16/32
          header = 1 + lengthBytes(h - 0xde + 1);
          const entries = readLength(bytes, pos + 1, header - 1);
          limit = "mapEntriesMax";
          checkLength(entries, limits.mapEntriesMax, limit, pos);
          items = 2 * entries;
        }
      }
    }
    if (pos + header + size > end) {
      throw new DecodeError("truncated", `value at ${pos} needs ${header + size} bytes, ${end - pos} left`, { offset: pos });
    }
    pos += header + size;
    if (items > 0) {
      // Every value takes at least one byte: more values than bytes left cannot be genuine.
      if (items > end - pos) {
        throw new DecodeError("truncated", `container at ${pos - header} declares ${items} values, ${end - pos} byte(s) left`, {
          offset: pos - header,
          limit,
        });
      }
      if (depth + 1 > limits.depthMax) {
        throw new DecodeError("too_deep", `containers nested deeper than depthMax (${limits.depthMax})`, {
          offset: pos - header,
          limit: "depthMax",
        });
      }
      left[++depth] = items;
    } else if (items === 0 && depth + 1 > limits.depthMax) {
      throw new DecodeError("too_deep", `containers nested deeper than depthMax (${limits.depthMax})`, {
        offset: pos - header,
        limit: "depthMax",
      });
    }
  }
}

/** 8/16/32-bit length fields for variant 0/1/2. */
function lengthBytes(variant: number): number {
  return 1 << variant;
}

/** A big-endian length of `n` bytes at `at`; a length field past the end is a truncation. */
function readLength(bytes: Uint8Array, at: number, n: number): number {
  if (at + n > bytes.length) throw new DecodeError("truncated", `length field at ${at} runs past the end`, { offset: at });
  if (n === 1) return bytes[at];
  if (n === 2) return (bytes[at] << 8) | bytes[at + 1];
  return ((bytes[at] << 24) >>> 0) + ((bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]);
}

function checkLength(length: number, max: number, limit: string, offset: number): void {
  if (length > max) throw new DecodeError("length_exceeded", `declared length ${length} is over ${limit} (${max})`, { offset, limit });
}
