/**
 * A message's subject as the bytes it arrived in. nats.js 2.29 keeps them at `msg._msg.subject` (a
 * Uint8Array view of the read buffer, set by nats-base-client/parser.js `processMsgArgs`) and
 * decodes `msg.subject` from them only when asked; a JetStream message (jetstream/jsmsg.js
 * `JsMsgImpl`) wraps its message as `msg`, outside the JsMsg interface. Null when a nats.js
 * version keeps them elsewhere: callers then take the generic path.
 */
import type { JsMsg, Msg } from "nats";

export function rawSubject(msg: Msg): Uint8Array | null {
  const raw = (msg as unknown as { _msg?: { subject?: unknown } })._msg?.subject;
  return raw instanceof Uint8Array ? raw : null;
}

/** {@link rawSubject} of a JetStream message. */
export function rawJetStreamSubject(m: JsMsg): Uint8Array | null {
  const msg = (m as unknown as { msg?: Msg }).msg;
  return msg === undefined ? null : rawSubject(msg);
}
