/**
 * A score frame (connectors/wire/score-frame.ts) as a live-topic message: one per machine topic
 * per batch instead of one message per record. MessagePack subscribers receive
 * `{"kind":"score_frame","frame":<bin>}` (the frame's bytes, no re-encoding); JSON subscribers
 * `{"kind":"score_frame","frame":"<base64>"}` — the hub's JSON encoding calls `toJSON`, its
 * MessagePack encoding reads the own properties, so one object serves both.
 */
/** Buffers whose bytes are rewritten once a publish returns: a message viewing one is copied when kept. */
const lentBuffers = new WeakSet<ArrayBufferLike>();

/** Buffers of copies `lasting` made (reused by the next copy of the topic that keeps them). */
const copies = new WeakSet<ArrayBufferLike>();

/** Marks a buffer the caller rewrites after each publish (ScoreFrameMessage.lasting copies frames viewing it). */
export function lendFrameBuffer(buffer: ArrayBufferLike): void {
  lentBuffers.add(buffer);
}

export class ScoreFrameMessage {
  readonly kind = "score_frame";
  /**
   * The audit record of the frame's rows (an audited run only; docs/wire-formats.md): declared,
   * not a field, so a message without one has no `audit` member at all and encodes as before.
   */
  declare readonly audit?: FrameAudit;

  constructor(
    readonly frame: Uint8Array,
    audit?: FrameAudit | null,
  ) {
    if (audit != null) (this as { audit?: FrameAudit }).audit = audit;
  }

  /**
   * This message as one that may be kept past the publish: a frame viewing lent memory (an ingest
   * job's frame scratch, rewritten once the publish returns; see {@link lendFrameBuffer}) or
   * shared memory is copied; any other is this message. `previous`: the message this one replaces
   * (a topic's latest), whose copy's bytes may be written again — a copy per publish was again
   * external memory for V8 to collect while a subscriber was paced.
   */
  lasting(previous?: unknown): ScoreFrameMessage {
    const buffer = this.frame.buffer;
    if (!(buffer instanceof SharedArrayBuffer) && !lentBuffers.has(buffer)) return this;
    const n = this.frame.length;
    // The copy this replaces, when the caller keeps no other reference to it: its bytes are reused.
    const old = previous instanceof ScoreFrameMessage && copies.has(previous.frame.buffer) ? previous.frame.buffer : null;
    const bytes = old !== null && old.byteLength >= n ? new Uint8Array(old, 0, n) : new Uint8Array(Math.max(n, 4096));
    bytes.set(this.frame);
    copies.add(bytes.buffer);
    return new ScoreFrameMessage(bytes.subarray(0, n), this.audit);
  }

  toJSON(): { kind: string; frame: string; audit?: FrameAudit } {
    const frame = Buffer.from(this.frame.buffer, this.frame.byteOffset, this.frame.byteLength).toString("base64");
    return this.audit === undefined ? { kind: this.kind, frame } : { kind: this.kind, frame, audit: this.audit };
  }
}

/**
 * The audit record of a score frame's rows: the kernel and settings of the whole frame, and the
 * model of each generation — a row's `iforest_model_generation` column indexes `model_versions`
 * (empty without an isolation forest); `limits_version` is a column of the SPC analysis.
 */
export interface FrameAudit {
  kernel_hash: string;
  config_hash: string;
  model_versions: readonly string[];
}
