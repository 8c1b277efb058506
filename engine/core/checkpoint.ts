/**
 * Checkpoints of keyed state: the state blocks of a set of keys, with what the engine knows of
 * each key outside kernel memory (its newest time), and the source position the state covers.
 *
 * A key's state block holds no absolute pointers — every kernel addresses its block relative to
 * its start — so a key restores into whatever slot it gets in the new engine, which lets a
 * partition's keys move to another instance whose own keys already fill other slots.
 *
 * Encoding (little-endian):
 *   magic "LWCK" | u32 version (1) | u32 header length H | H bytes UTF-8 JSON header | state bytes
 * The JSON header: { kernels: [{name, stateBytesPerKey}], stateStride, position, keys: [{name,
 * newestTime}], analyses? } — key i's block is bytes [i·stateStride, (i+1)·stateStride) of the
 * state bytes; `analyses` (optional, absent in older checkpoints) holds, per analysis in engine
 * order, what it keeps of these keys outside kernel memory (RecordAnalysis.saveState: the SPC
 * analysis's open alert episodes), as JSON.
 */
import { CheckpointError } from "./errors.js";

export interface KeyCheckpoint {
  name: string;
  /** Newest event time seen for the key (null: none yet). */
  newestTime: number | null;
}

export interface EngineCheckpoint {
  /** The analyses the blocks belong to, in engine order; restore checks they match. */
  kernels: Array<{ name: string; stateBytesPerKey: number }>;
  stateStride: number;
  /** Source position the state covers (e.g. the last stream sequence processed), caller-defined. */
  position: number;
  keys: KeyCheckpoint[];
  /** keys.length × stateStride bytes. */
  state: Uint8Array;
  /** Per analysis (engine order): its state of these keys outside the kernel, JSON-able; null: none. */
  analyses?: unknown[];
}

const MAGIC = 0x4b43574c; // "LWCK" little-endian
const VERSION = 1;
/** A checkpoint header larger than this is refused on decode (bounded decoded length). */
export const CHECKPOINT_HEADER_BYTES_MAX = 64 * 1024 * 1024;

export function encodeCheckpoint(c: EngineCheckpoint): Uint8Array {
  const header = new TextEncoder().encode(
    JSON.stringify({
      kernels: c.kernels,
      stateStride: c.stateStride,
      position: c.position,
      keys: c.keys,
      ...(c.analyses === undefined ? {} : { analyses: c.analyses }),
    }),
  );
  const out = new Uint8Array(12 + header.length + c.state.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, VERSION, true);
  view.setUint32(8, header.length, true);
  out.set(header, 12);
  out.set(c.state, 12 + header.length);
  return out;
}

export function decodeCheckpoint(bytes: Uint8Array): EngineCheckpoint {
  if (bytes.length < 12) throw new CheckpointError(`checkpoint of ${bytes.length} bytes is truncated`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC) throw new CheckpointError("not a linewatch checkpoint (bad magic)");
  const version = view.getUint32(4, true);
  if (version !== VERSION) throw new CheckpointError(`checkpoint version ${version} is not supported (expected ${VERSION})`);
  const headerLength = view.getUint32(8, true);
  if (headerLength > CHECKPOINT_HEADER_BYTES_MAX || 12 + headerLength > bytes.length) {
    throw new CheckpointError(`checkpoint header of ${headerLength} bytes does not fit the ${bytes.length} bytes given`);
  }
  let header: Omit<EngineCheckpoint, "state">;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + headerLength))) as Omit<EngineCheckpoint, "state">;
  } catch (cause) {
    throw new CheckpointError("checkpoint header is not JSON", { cause });
  }
  const state = bytes.slice(12 + headerLength);
  if (!Array.isArray(header.keys) || !Number.isInteger(header.stateStride) || state.length !== header.keys.length * header.stateStride) {
    throw new CheckpointError(
      `checkpoint holds ${state.length} state bytes for ${header.keys?.length} keys of ${header.stateStride} bytes`,
    );
  }
  return { ...header, state };
}
