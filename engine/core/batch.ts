/**
 * Columnar record batches: the unit that moves between sources, the engine and the kernels.
 *
 * A batch is a set of parallel typed arrays. Per-record JS objects exist only at the edges
 * (decoding single-record messages, events for humans); everything in between is columns.
 */

/** One column set of readings. `length` records are valid; the arrays may be longer (reused buffers). */
export interface RecordBatch {
  /** Number of valid records. */
  length: number;
  /** Key id of each record, from the engine's {@link KeyDictionary}. */
  keyIds: Uint32Array;
  /** Event time of each record: epoch milliseconds, or plain units when the time is a counter. */
  times: Float64Array;
  /** The reading. Finite by the time it reaches the engine (sources route NaN/Inf to dead-letter). */
  values: Float64Array;
  /** Source position of each record (0-based data row of a file, stream sequence of a message). */
  positions: Float64Array;
  /**
   * Fixed-width bytes per record (e.g. a serial number and its length), `payloadBytes` each,
   * record i at i·payloadBytes; absent when the engine carries no payload.
   */
  payload?: Uint8Array;
}

/** Allocates an empty batch able to hold `capacity` records (and `payloadBytes` bytes of payload each). */
export function allocateBatch(capacity: number, payloadBytes = 0): RecordBatch {
  const batch: RecordBatch = {
    length: 0,
    keyIds: new Uint32Array(capacity),
    times: new Float64Array(capacity),
    values: new Float64Array(capacity),
    positions: new Float64Array(capacity),
  };
  if (payloadBytes > 0) batch.payload = new Uint8Array(capacity * payloadBytes);
  return batch;
}

/** Appends one record; the caller checks capacity (`batch.length < batch.values.length`). */
export function appendRecord(batch: RecordBatch, keyId: number, time: number, value: number, position: number): void {
  const i = batch.length;
  batch.keyIds[i] = keyId;
  batch.times[i] = time;
  batch.values[i] = value;
  batch.positions[i] = position;
  batch.length = i + 1;
}
