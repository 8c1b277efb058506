/**
 * A score frame (connectors/wire/score-frame.ts) as a live-topic message: one per machine topic
 * per batch instead of one message per record. MessagePack subscribers receive
 * `{"kind":"score_frame","frame":<bin>}` (the frame's bytes, no re-encoding); JSON subscribers
 * `{"kind":"score_frame","frame":"<base64>"}` — the hub's JSON encoding calls `toJSON`, its
 * MessagePack encoding reads the own properties, so one object serves both.
 */
export class ScoreFrameMessage {
  readonly kind = "score_frame";

  constructor(readonly frame: Uint8Array) {}

  toJSON(): { kind: string; frame: string } {
    return { kind: this.kind, frame: Buffer.from(this.frame.buffer, this.frame.byteOffset, this.frame.byteLength).toString("base64") };
  }
}
