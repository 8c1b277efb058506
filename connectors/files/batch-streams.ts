/**
 * Reads a batch-stream file: NDJSON lines as `linewatch simulate --batches` writes them, each a
 * process reading (`"record_type":"process"`) or a quality outcome (`"record_type":"quality"`)
 * with the wire field names (connectors/wire/batch-codec.ts). Every line goes through the wire
 * decoder's field rules; the first line it rejects (or a line without a known `record_type`)
 * stops the read with an {@link InputError} naming the line and the decoder's reason.
 */
import { readFileSync, statSync } from "node:fs";
import { InputError } from "../../engine/core/mod.js";
import { DecodeError } from "../errors.js";
import {
  decodeFieldMap,
  DEFAULT_DECODE_LIMITS,
  type ProcessRecord,
  processRecordFromFields,
  type QualityRecord,
  qualityRecordFromFields,
} from "../wire/mod.js";

export interface BatchStreams {
  /** Process readings in file order. */
  process: ProcessRecord[];
  /** Quality outcomes in file order. */
  quality: QualityRecord[];
}

/** 2 GiB: more than Node reads into one string. */
export const BATCH_STREAM_FILE_BYTES_MAX = 0x7fff_ffff;

export function readBatchStreams(path: string): BatchStreams {
  let text: string;
  try {
    const size = statSync(path).size;
    if (size > BATCH_STREAM_FILE_BYTES_MAX)
      throw new InputError(`${path}: ${size} bytes is more than a batch-stream file (${BATCH_STREAM_FILE_BYTES_MAX} at most)`);
    text = readFileSync(path, "utf8");
  } catch (cause) {
    if (cause instanceof InputError) throw cause;
    throw new InputError(`${path}: cannot read the batch-stream file: ${(cause as Error).message}`, { cause });
  }
  return parseBatchStreams(text, path);
}

/** Parses the text of a batch-stream file; `source` names it in errors. */
export function parseBatchStreams(text: string, source = "batch-stream text"): BatchStreams {
  const out: BatchStreams = { process: [], quality: [] };
  let lineNo = 0;
  for (const line of text.split("\n")) {
    lineNo++;
    if (line.trim() === "") continue;
    const fail = (reason: string, message: string, cause?: unknown): never => {
      throw new InputError(`${source}:${lineNo}: ${reason}: ${message}`, cause === undefined ? undefined : { cause });
    };
    try {
      // The wire decoder's bounded decode: size, JSON syntax, depth and lengths, then a map.
      const fields = decodeFieldMap(TEXT.encode(line), DEFAULT_DECODE_LIMITS);
      if (fields.record_type === "process") out.process.push(processRecordFromFields(fields));
      else if (fields.record_type === "quality") out.quality.push(qualityRecordFromFields(fields));
      else fail("invalid_field", `record_type is ${JSON.stringify(fields.record_type ?? null)}, not "process" or "quality"`);
    } catch (cause) {
      if (cause instanceof DecodeError) fail(cause.reason, cause.detail, cause);
      throw cause;
    }
  }
  return out;
}

const TEXT = new TextEncoder();
